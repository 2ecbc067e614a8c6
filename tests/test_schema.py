"""The vendored schema is TensorFlow's, and generated/ is what protos/ compiles to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from conftest import ROOT, TF_PYTHON, tree_bytes

sys.path.insert(0, str(ROOT / "tools"))
import gen_bindings


def _without_json_names(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """protoc fills in json_name, TensorFlow's compiled copies leave it out: compare without it."""
    copy = descriptor_pb2.FileDescriptorProto.FromString(file.SerializeToString())

    def strip(message: descriptor_pb2.DescriptorProto) -> None:
        for field in message.field:
            field.ClearField("json_name")
        for nested in message.nested_type:
            strip(nested)

    for message in copy.message_type:
        strip(message)
    return copy


def test_generated_is_fresh(tmp_path: Path) -> None:
    gen_bindings.generate(tmp_path)
    assert tree_bytes(tmp_path / "surgery_proto") == tree_bytes(ROOT / "generated" / "surgery_proto"), (
        "generated/ is stale: run `make generated` and commit it"
    )


def test_protos_are_tensorflows_schema(tmp_path: Path) -> None:
    """protoc on protos/ gives exactly the descriptors tensorflow-cpu 2.21 ships."""
    theirs_file = tmp_path / "tf.binpb"
    subprocess.run(
        [str(TF_PYTHON), str(ROOT / "tools" / "extract_protos.py"), "--descriptors", str(theirs_file)],
        check=True,
        capture_output=True,
    )
    theirs = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(theirs_file.read_bytes()).file}
    ours = {f.name: f for f in gen_bindings.compile_descriptors().file}
    assert len(theirs) == 22
    assert sorted(ours) == sorted(theirs)
    for name in sorted(theirs):
        assert _without_json_names(ours[name]) == _without_json_names(theirs[name]), name


def test_bindings_live_under_our_own_names() -> None:
    from surgery.schema import SavedModel, tensorflow_pool

    assert SavedModel.DESCRIPTOR.full_name == "surgery_proto.tensorflow.SavedModel"
    assert SavedModel.DESCRIPTOR.file.name == "surgery_proto/tensorflow/core/protobuf/saved_model.proto"
    # The private pool holds TensorFlow's own names for Any payloads, outside the default pool.
    assert (
        tensorflow_pool().FindMessageTypeByName("tensorflow.AssetFileDef").full_name
        == "tensorflow.AssetFileDef"
    )
