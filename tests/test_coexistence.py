"""TensorFlow and surgery import together, in either order, and agree on the bytes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import FIXTURES, ROOT, TF_PYTHON

PROGRAM = """
import importlib, sys
first, second = sys.argv[1], sys.argv[2]
importlib.import_module(first); importlib.import_module(second)
import tensorflow as tf
import surgery
from tensorflow.core.protobuf import saved_model_pb2
data = open(sys.argv[3], "rb").read()
theirs = saved_model_pb2.SavedModel.FromString(data)
ours = surgery.load(sys.argv[3].rsplit("/", 1)[0])
assert ours.serialize() == theirs.SerializeToString(deterministic=True)
assert type(ours.proto) is not type(theirs)
same_keys = sorted(ours.proto.meta_graphs[0].signature_def) == sorted(theirs.meta_graphs[0].signature_def)
print(tf.__version__, same_keys)
"""


@pytest.mark.parametrize("order", [("tensorflow", "surgery"), ("surgery", "tensorflow")])
def test_tensorflow_and_surgery_in_one_interpreter(order: tuple[str, str]) -> None:
    model = FIXTURES / "module_multi" / "saved_model.pb"
    result = subprocess.run(
        [str(TF_PYTHON), "-c", PROGRAM, *order, str(model)],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["2.21.0", "True"]


def test_another_tensorflow_schema_in_the_default_pool() -> None:
    """A different TensorFlow version registers other `tensorflow/...` files: no clash with ours."""
    program = textwrap.dedent(
        """
        from google.protobuf import descriptor_pb2, descriptor_pool
        f = descriptor_pb2.FileDescriptorProto(name="tensorflow/core/framework/tensor_shape.proto",
                                               package="tensorflow", syntax="proto3")
        m = f.message_type.add(name="TensorShapeProto")
        m.field.add(name="future_field", number=99, type=9, label=1)
        descriptor_pool.Default().Add(f)
        import surgery
        from surgery.schema import TensorShapeProto
        assert [f.name for f in TensorShapeProto.DESCRIPTOR.fields] == ["dim", "unknown_rank"]
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
