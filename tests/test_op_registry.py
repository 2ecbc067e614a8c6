"""The vendored op registry is TensorFlow's: the same bytes as the pinned wheel's C++ runtime gives."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import ROOT, TF_PYTHON
from surgery import op_registry
from surgery.schema import DataType


def test_the_registry_is_the_wheels() -> None:
    if not TF_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {TF_PYTHON} is missing", pytrace=False)
        pytest.skip(f"{TF_PYTHON} is missing: run make test")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    fresh = subprocess.run(
        [str(TF_PYTHON), str(ROOT / "tools" / "extract_ops.py"), "-"],
        capture_output=True,
        env=env,
        check=True,
    ).stdout
    vendored = (ROOT / "surgery" / "data" / op_registry.DATA).read_bytes()
    assert fresh == vendored, "surgery/data/tensorflow_ops.binpb is stale: run make protos"


def test_the_registry_holds_tensorflows_ops() -> None:
    ops = op_registry.registry()
    assert len(ops) > 1700
    matmul = op_registry.op_def("MatMul")
    assert matmul is not None
    assert [a.name for a in matmul.input_arg] == ["a", "b"]
    transpose_a = next(a for a in matmul.attr if a.name == "transpose_a")
    assert (transpose_a.type, transpose_a.default_value.b) == ("bool", False)
    t = next(a for a in matmul.attr if a.name == "T")
    assert DataType.DT_FLOAT in t.allowed_values.list.type
    assert op_registry.op_def("NoSuchOp") is None
    # Docs are dropped: the file carries what validation needs.
    assert not matmul.summary and not matmul.description
    # Test ops that only TensorFlow's Python package registers (1,910 ops there) are not.
    assert op_registry.op_def("AttrBoolList") is None
