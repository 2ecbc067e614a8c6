"""Shared test helpers: fixture models, expected outputs, the CLI, and the TensorFlow oracle.

The oracle is real TensorFlow (tensorflow-cpu 2.21) running in its own venv (.venv-tf, made
by `make test`) as a subprocess; see tests/oracle/README.md. The toolkit's venv never has it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
EXPECTED = ROOT / "tests" / "fixtures" / "expected"
TF_PYTHON = ROOT / ".venv-tf" / "bin" / "python"
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


class Oracle:
    """A persistent `tf_oracle.py serve` process: one JSON request and response per line."""

    def __init__(self) -> None:
        if not TF_PYTHON.exists():
            raise RuntimeError(f"{TF_PYTHON} is missing: run `make test`, which creates the TensorFlow venv")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        self.process = subprocess.Popen(
            [str(TF_PYTHON), str(ROOT / "tests" / "oracle" / "tf_oracle.py"), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def request(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the TensorFlow oracle exited")
        response: dict[str, Any] = json.loads(line)
        return response

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
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def oracle() -> Iterator[Oracle]:
    client = Oracle()
    assert client.ok(op="ping")["tf_version"] == "2.21.0"
    yield client
    client.close()


def assert_serves(oracle: Oracle, model: Path, cases: list[dict[str, Any]], *, rel: float = 1e-6) -> None:
    """Both loaders give the recorded outputs for every case (unless a case names its loaders)."""
    for loader in ("tf2", "v1"):
        chosen = [c for c in cases if loader in c.get("loaders", ("tf2", "v1"))]
        for case, result in zip(chosen, oracle.run(model, loader, chosen), strict=True):
            try:
                assert_outputs(result, case["outputs"], rel=rel)
            except AssertionError as err:
                raise AssertionError(f"{loader} loader, signature {case['signature']!r}: {err}") from None
