"""The documentation runs: every ```python block of README.md and docs/*.md, and every public docstring.

Each file's blocks run in order in one namespace, in a fresh directory holding a copy of a
bundled model called `my_model` and the README's plan as `plan.yaml`; their asserts are the test.
Every public function's docstring shows a use, run as a doctest in a directory of its own.
"""

from __future__ import annotations

import doctest
import inspect
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import FIXTURES, ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PUBLIC_FUNCTIONS = [
    *sorted(name for name in surgery.__all__ if inspect.isfunction(getattr(surgery, name))),
    "open",
]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.DOTALL)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(FIXTURES / "module_multi", tmp_path / "my_model")
    (plan,) = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    (tmp_path / "plan.yaml").write_text(plan)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_doc_has_python_examples() -> None:
    assert (ROOT / "docs" / "api.md") in DOCS
    for doc in DOCS:
        assert _python_blocks(doc), f"{doc.name} has no ```python example"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_python_blocks_run(doc: Path, workdir: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "__doc_example__"}
    for index, block in enumerate(_python_blocks(doc)):
        code = compile(block, f"{doc.name} python block {index + 1}", "exec")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", surgery.SurgeryWarning)  # the examples record their own
            exec(code, namespace)


def test_the_readme_example_wrote_what_it_says(workdir: Path) -> None:
    test_python_blocks_run(ROOT / "README.md", workdir)
    assert (workdir / "api_model" / "fingerprint.pb").exists()
    assert (workdir / "api_model_text" / "saved_model.pbtxt").exists()


def _docstring_examples(func: Callable[..., Any], name: str) -> doctest.DocTest:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(inspect.getdoc(func) or "", {"surgery": surgery}, name, None, 0)
    return test


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_every_public_function_has_a_running_docstring_example(name: str, workdir: Path) -> None:
    test = _docstring_examples(getattr(surgery, name), f"surgery.{name}")
    assert test.examples, f"surgery.{name}'s docstring has no >>> example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", surgery.SurgeryWarning)
        result = runner.run(test)
    assert result.failed == 0, f"surgery.{name}: {result.failed} docstring example(s) failed (see stdout)"


def test_the_package_docstring_example_runs(workdir: Path) -> None:
    test = _docstring_examples(surgery, "surgery")
    assert test.examples
    assert doctest.DocTestRunner().run(test).failed == 0


def test_open_is_load_and_does_not_shadow_the_builtin() -> None:
    assert surgery.open is surgery.load
    assert "open" not in surgery.__all__
    namespace: dict[str, Any] = {}
    exec("from surgery import *", namespace)
    assert "open" not in namespace and "load" in namespace


def test_every_public_name_is_documented_in_the_api_page() -> None:
    page = (ROOT / "docs" / "api.md").read_text()
    for name in [*surgery.__all__, "open"]:
        if name != "__version__":
            assert name in page, f"docs/api.md does not mention surgery.{name}"


def test_the_documented_load_and_save_take_what_storage_takes() -> None:
    """surgery.load/save document surgery.storage's; a parameter added there must be added here too."""
    from surgery import storage

    for name in ("load", "save"):
        ours = inspect.signature(getattr(surgery, name)).parameters
        theirs = inspect.signature(getattr(storage, name)).parameters
        assert list(ours) == list(theirs), name


def test_the_table_of_edits_is_the_registry() -> None:
    """docs/api.md's table of edits is what `make docs` renders from surgery/operations.py."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
