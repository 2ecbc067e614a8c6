"""The shell examples of README.md and docs/*.md run as written (on a copy of a fixture called my_model).

Each file's ```sh blocks run line by line, in order, in a fresh directory holding a copy of a
bundled model called `my_model` and the README's plan as `plan.yaml`, with the venv's commands on
PATH; every line must exit 0. A ```text block right after a ```sh block shows what that block's
last command prints: each of its lines but `...` appears in the output, in order. Then the
file's checks below look at what the commands wrote. Commands that cannot run offline are shown
in ```console blocks, which do not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import FIXTURES, ROOT

README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def _fences(doc: Path) -> list[tuple[str, str, int, int]]:
    """(language, content, start, end) of every fenced block of `doc`, in order."""
    return [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(doc.read_text())]


def _blocks(doc: Path, language: str) -> list[str]:
    return [content for lang, content, _, _ in _fences(doc) if lang == language]


SHELL_DOCS = [doc for doc in DOCS if _blocks(doc, "sh")]


def _workdir(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "module_multi", tmp_path / "my_model")
    (plan,) = _blocks(README, "yaml")
    (tmp_path / "plan.yaml").write_text(plan)
    return tmp_path


def _run_shell_examples(doc: Path, work: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    text = doc.read_text()
    fences = _fences(doc)
    for index, (language, block, _, end) in enumerate(fences):
        if language != "sh":
            continue
        stdout = ""
        for line in block.strip().splitlines():
            result = subprocess.run(
                line, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, f"{doc.name}: {line}: {result.stderr}"
            stdout = result.stdout
        following = fences[index + 1] if index + 1 < len(fences) else None
        if following and following[0] == "text" and not text[end : following[2]].strip():
            shown = [line for line in following[1].splitlines() if line.strip() and line != "..."]
            printed = iter(stdout.splitlines())
            for line in shown:
                assert any(out == line for out in printed), (
                    f"{doc.name}: `{block.strip().splitlines()[-1]}` does not print {line!r} "
                    f"(in this order); it prints:\n{stdout}"
                )


def _readme_wrote(work: Path) -> None:
    renamed = surgery.load(work / "renamed_model").proto.meta_graphs[0].signature_def
    assert "predict" in renamed and "serving_default" not in renamed
    assert [d.size for d in renamed["fixed"].inputs["row"].tensor_shape.dim] == [-1, 4]
    planned = surgery.load(work / "planned_model").proto.meta_graphs[0].signature_def
    assert sorted(planned["v2_masked"].outputs) == ["beta", "zeta"]
    assert planned["v2_preprocess"].method_name == "tensorflow/serving/regress"
    # --dry-run wrote nothing
    assert sorted(p.name for p in work.iterdir()) == [
        "my_model",
        "plan.yaml",
        "planned_model",
        "renamed_model",
    ]


def _cli_wrote(work: Path) -> None:
    def signatures(name: str) -> Any:
        return surgery.load(work / name).proto.meta_graphs[0].signature_def

    assert (work / "interface.json").read_text().startswith("{")
    renamed = signatures("renamed_model")
    assert "predict" in renamed and "fixed_v2" in renamed and "fixed" not in renamed
    assert sorted(k for k in signatures("versioned_model") if not k.startswith("__")) == [
        "v2_fixed",
        "v2_masked",
        "v2_preprocess",
        "v2_serving_default",
    ]
    assert sorted(signatures("input_renamed")["masked"].inputs) == ["b_dense", "z_dense"]
    assert sorted(signatures("output_renamed")["masked"].outputs) == ["beta", "zeta"]
    assert "preprocess" not in signatures("slim_model")
    aliased = signatures("aliased_model")
    assert aliased["masked_alias"].inputs == aliased["masked"].inputs
    assert signatures("regress_model")["preprocess"].method_name == "tensorflow/serving/regress"
    (gpu,) = surgery.load(work / "gpu_model").proto.meta_graphs
    assert sorted(gpu.meta_info_def.tags) == ["gpu", "serve"]
    assert gpu.signature_def["fixed"].method_name == "tensorflow/serving/classify"
    relaxed = signatures("relaxed_model")["fixed"]
    assert [d.size for d in relaxed.inputs["row"].tensor_shape.dim] == [-1, 4]
    assert [d.size for d in relaxed.outputs["out"].tensor_shape.dim] == [-1]
    assert signatures("half_model")["preprocess"].outputs["as_float"].dtype == 19  # DT_HALF
    assert signatures("int64_model")["preprocess"].inputs["x"].dtype == 9  # DT_INT64
    assert signatures("tensor_renamed")["serving_default"].inputs["a"].name == "images:0"
    planned = signatures("planned_model")
    assert sorted(planned["v2_masked"].outputs) == ["beta", "zeta"]
    assert planned["v2_preprocess"].method_name == "tensorflow/serving/regress"
    assert (work / "fleet_v2" / "a" / "saved_model.pb").exists()
    assert (work / "fleet_v2" / "b" / "saved_model.pb").exists()
    batch = json.loads((work / "batch.json").read_text())
    assert (batch["ok"], batch["failed"]) == (2, 0)
    assert [r["output"] for r in batch["results"]] == ["fleet/a_v2", "fleet/b_v2"]
    (preview,) = json.loads((work / "preview.json").read_text())["results"]
    assert preview["output"] == "planned_again"
    renamed_change = {"kind": "signature-renamed", "detail": "fixed -> v2_fixed", "signature": "fixed"}
    assert {**renamed_change, "tags": ["serve"]} in preview["changes"]
    assert not (work / "planned_again").exists()
    assert (work / "my_model_again" / "saved_model.pb").read_bytes() == (
        work / "my_model" / "saved_model.pb"
    ).read_bytes()
    assert '-    key: "serving_default"' in (work / "rename.diff").read_text()
    assert "signature &#x27;masked&#x27;" in (work / "my_model.html").read_text()
    assert (work / "my_model.dot").read_text().startswith("digraph savedmodel {")
    assert json.loads((work / "explain.json").read_text())["meta_graphs"]
    assert (work / "quiet_model" / "saved_model.pb").exists()
    assert "complete -o nosort -F" in (work / "savedmodel-surgery-complete.bash").read_text()
    assert not (work / "out").exists()


CHECKS: dict[str, Callable[[Path], None]] = {"README.md": _readme_wrote, "cli.md": _cli_wrote}
"""What each file's shell examples wrote; a file without an entry only has to run."""


@pytest.mark.parametrize("doc", SHELL_DOCS, ids=[doc.name for doc in SHELL_DOCS])
def test_shell_examples_run(doc: Path, tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    _run_shell_examples(doc, work)
    check = CHECKS.get(doc.name)
    if check is not None:
        check(work)


def test_the_readme_and_the_cli_page_have_shell_examples() -> None:
    assert len(_blocks(README, "sh")) >= 3
    assert ROOT / "docs" / "cli.md" in SHELL_DOCS
    for name in CHECKS:
        assert name in {doc.name for doc in SHELL_DOCS}, f"{name} has checks but no ```sh block"


def test_the_readme_fits_on_a_screen() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_every_plan_shown_is_the_readme_plan() -> None:
    """The examples run with the README's plan as plan.yaml; a page that shows a plan shows that one."""
    (plan,) = _blocks(README, "yaml")
    for doc in DOCS:
        for shown in _blocks(doc, "yaml"):
            assert shown == plan, f"{doc.name} shows another plan than the README's plan.yaml"


def test_shell_examples_stay_offline() -> None:
    """Lines that need a network or root (URLs, apt-get) go in ```console blocks, shown but not run."""
    for doc in SHELL_DOCS:
        for block in _blocks(doc, "sh"):
            for line in block.splitlines():
                assert not re.search(r"\b(gs|s3|https?)://|apt-get|sudo", line), f"{doc.name}: {line}"


def test_error_example_is_what_the_tool_prints(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    shown = re.search(
        r"^    (savedmodel-surgery: error: .*)$", (ROOT / "docs" / "cli.md").read_text(), re.MULTILINE
    )
    assert shown is not None
    result = subprocess.run(
        [BIN / "savedmodel-surgery", "rename-signature", "my_model", "serve", "predict", "-o", "out"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == shown.group(1)
    assert not (work / "out").exists()


def _anchors(doc: Path) -> set[str]:
    """GitHub's anchors for the headings of `doc` (outside fenced blocks)."""
    text = FENCE.sub("", doc.read_text())
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_links_between_the_pages_resolve() -> None:
    """Every relative link of README.md and docs/*.md names a file that exists, and a heading of it."""
    for doc in DOCS:
        text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", doc.read_text()))  # no code
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"\w+://", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            assert linked.exists(), f"{doc.name}: link to {target}: no such file"
            if anchor:
                assert anchor in _anchors(linked), f"{doc.name}: link to {target}: no such heading"
