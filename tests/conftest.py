"""Shared test helpers: fixture models, expected outputs, the CLI, and the TensorFlow oracle.

The oracle is real TensorFlow (tensorflow-cpu 2.21) running in its own venv (.venv-tf, made
by `make test`) as subprocesses; see tests/oracle/README.md. The toolkit's venv never has it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
EXPECTED = ROOT / "tests" / "fixtures" / "expected"
TF_PYTHON = ROOT / ".venv-tf" / "bin" / "python"
ORACLE_DIR = ROOT / "tests" / "oracle"
LOADERS = ("tf2", "v1", "cc")
"""The oracle's loaders: TF2's `tf.saved_model.load`, the v1 session loader in Python, and
TensorFlow's C++ `LoadSavedModel` (the loader TensorFlow Serving uses)."""
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
TF2_FIXTURES = [n for n in FIXTURE_NAMES if n != "tf1_two_metagraphs"]


def expected_cases(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((EXPECTED / f"{name}.json").read_text())["cases"]
    return cases


def copy_fixture(name: str, dest: Path) -> Path:
    """A private copy of a fixture model (tests never touch the committed files)."""
    target = dest / name
    shutil.copytree(FIXTURES / name, target)
    return target


def tree_bytes(path: Path) -> dict[str, bytes]:
    """Every file under `path` by relative name, for byte-for-byte comparisons."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def run_cli(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed command as a user would."""
    cmd = [sys.executable, "-m", "surgery", *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}): {result.stderr}")
    return result


def assert_close(actual: Any, expected: Any, *, rel: float = 1e-6, path: str = "") -> None:
    """Nested lists of numbers/strings equal within `rel` (and 1e-6 absolute)."""
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{path}: {actual!r} != {expected!r}"
        )
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, rel=rel, path=f"{path}[{i}]")
    elif isinstance(expected, float) or isinstance(actual, float):
        assert math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-6), (
            f"{path}: {actual!r} != {expected!r}"
        )
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def assert_outputs(result: dict[str, Any], expected: dict[str, Any], *, rel: float = 1e-6) -> None:
    assert "error" not in result, result.get("error")
    outputs = result["outputs"]
    assert sorted(outputs) == sorted(expected), f"output keys {sorted(outputs)} != {sorted(expected)}"
    for key, want in expected.items():
        got = outputs[key]
        assert got["dtype"] == want["dtype"], f"{key}: dtype {got['dtype']} != {want['dtype']}"
        assert got["shape"] == want["shape"], f"{key}: shape {got['shape']} != {want['shape']}"
        assert_close(got["value"], want["value"], rel=rel, path=key)


class OracleServer:
    """One persistent oracle process (`tf_oracle.py` or `cc_oracle.py`, mode `serve`): one JSON
    request and response per line. Started on first use; a process that dies (a TensorFlow CHECK
    failure aborts it) makes the request it was answering fail, and the next request restarts it."""

    def __init__(self, script: Path) -> None:
        self.script = script
        self.process: subprocess.Popen[str] | None = None
        self.stderr: IO[str] | None = None
        self.starts = 0

    def _start(self) -> subprocess.Popen[str]:
        """Start the server with TensorFlow's logging down to fatal errors, kept in a temp file."""
        if not TF_PYTHON.exists():
            raise RuntimeError(f"{TF_PYTHON} is missing: run `make test`, which creates the TensorFlow venv")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        if self.stderr is not None:
            self.stderr.close()
        # Lives as long as the server (closed on restart and in close()), so no `with`.
        self.stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(TF_PYTHON), str(self.script), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )
        self.starts += 1
        return self.process

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and read its response; a server that died answering it gives
        `{"ok": false, "error": "OracleCrash: ..."}` with TensorFlow's fatal log line."""
        process = self.process
        if process is None or process.poll() is not None:  # first use, or died since the last answer
            process = self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            return {"ok": False, "error": f"OracleCrash: {self._died(process)}"}
        response: dict[str, Any] = json.loads(line)
        return response

    def _died(self, process: subprocess.Popen[str]) -> str:
        """Reap a dead server and say why it died (its last fatal log line, if any)."""
        code = process.wait(timeout=60)
        self.process = None
        log = ""
        if self.stderr is not None:
            self.stderr.seek(0)
            log = self.stderr.read()
        fatal = [m.group(1) for m in re.finditer(r"^F\d{4} \S+\s+\d+ (.*)$", log, re.MULTILINE)]
        last = fatal[-1] if fatal else (log.strip().splitlines() or ["no output"])[-1]
        return f"{self.script.name} died (exit {code}) answering the request: {last.strip()}"

    def close(self) -> None:
        """End the server (EOF on its stdin) and wait for it."""
        process, self.process = self.process, None
        if process is not None:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=30)
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


class Oracle:
    """The oracle client: `loader="cc"` requests go to `cc_oracle.py` (TensorFlow's C++ loader,
    started on first use), every other request to `tf_oracle.py`."""

    def __init__(self) -> None:
        self.tf = OracleServer(ORACLE_DIR / "tf_oracle.py")
        self.cc = OracleServer(ORACLE_DIR / "cc_oracle.py")

    def request(self, **request: Any) -> dict[str, Any]:
        server = self.cc if request.get("loader") == "cc" else self.tf
        return server.request(request)

    def ok(self, **request: Any) -> dict[str, Any]:
        response = self.request(**request)
        assert response["ok"], response.get("error")
        return response

    def run(self, model: Path, loader: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self.ok(op="run", model=str(model), loader=loader, cases=cases)[
            "results"
        ]
        return results

    def fingerprint(self, model: Path) -> dict[str, int]:
        fingerprint: dict[str, int] = self.ok(op="fingerprint", model=str(model))["fingerprint"]
        return fingerprint

    def close(self) -> None:
        self.tf.close()
        self.cc.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the `oracle` fixture `oracle` (`-m "not oracle"` leaves them out)."""
    for item in items:
        if "oracle" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.oracle)


@pytest.fixture(scope="session")
def oracle() -> Iterator[Oracle]:
    """The TensorFlow oracle, one per pytest worker. Without .venv-tf its tests skip, except under
    CI (`CI` set), where a missing TensorFlow venv must not pass as skipped tests."""
    if not TF_PYTHON.exists():
        message = f"{TF_PYTHON} is missing: `make test` creates the TensorFlow venv"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {message}", pytrace=False)
        pytest.skip(message)
    client = Oracle()
    assert client.ok(op="ping")["tf_version"] == "2.21.0"
    yield client
    client.close()


def case_loaders(case: dict[str, Any]) -> tuple[str, ...]:
    """The loaders a case is for: all of `LOADERS`, or those its `loaders` names (naming `v1`,
    the TensorFlow Serving path, names the C++ loader `cc` too)."""
    named = case.get("loaders")
    if named is None:
        return LOADERS
    return tuple(loader for loader in LOADERS if loader in named or (loader == "cc" and "v1" in named))


def assert_serves(oracle: Oracle, model: Path, cases: list[dict[str, Any]], *, rel: float = 1e-6) -> None:
    """Every loader gives the recorded outputs for every case (unless a case names its loaders)."""
    for loader in LOADERS:
        chosen = [c for c in cases if loader in case_loaders(c)]
        for case, result in zip(chosen, oracle.run(model, loader, chosen), strict=True):
            try:
                assert_outputs(result, case["outputs"], rel=rel)
            except AssertionError as err:
                raise AssertionError(f"{loader} loader, signature {case['signature']!r}: {err}") from None
