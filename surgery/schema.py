"""TensorFlow's SavedModel schema, as compiled into `generated/surgery_proto`.

The bindings live under the package `surgery_proto.tensorflow` so that they coexist with
any TensorFlow in the same interpreter (see tools/gen_bindings.py). What that rename
costs is handled here: `Any` type URLs written by TensorFlow name `tensorflow.X`, so text
format resolves them through a private descriptor pool holding the schema under
TensorFlow's own names.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from google.protobuf.message import Message

from surgery_proto import RENAME_PREFIX, TENSORFLOW_VERSION
from surgery_proto.tensorflow.core.framework import (
    attr_value_pb2,
    function_pb2,
    graph_pb2,
    node_def_pb2,
    op_def_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
    variable_pb2,
)
from surgery_proto.tensorflow.core.protobuf import (
    fingerprint_pb2,
    meta_graph_pb2,
    saved_model_pb2,
    saved_object_graph_pb2,
    saver_pb2,
    struct_pb2,
)

if TYPE_CHECKING:
    from google.protobuf import descriptor_pb2, descriptor_pool

K = TypeVar("K")
V = TypeVar("V")

AttrValue = attr_value_pb2.AttrValue
FunctionDef = function_pb2.FunctionDef
GraphDef = graph_pb2.GraphDef
NodeDef = node_def_pb2.NodeDef
OpDef = op_def_pb2.OpDef
OpList = op_def_pb2.OpList
TensorShapeProto = tensor_shape_pb2.TensorShapeProto
TensorProto = tensor_pb2.TensorProto
DataType = types_pb2.DataType
FingerprintDef = fingerprint_pb2.FingerprintDef
MetaGraphDef = meta_graph_pb2.MetaGraphDef
CollectionDef = meta_graph_pb2.CollectionDef
SignatureDef = meta_graph_pb2.SignatureDef
TensorInfo = meta_graph_pb2.TensorInfo
SavedModel = saved_model_pb2.SavedModel
SavedObjectGraph = saved_object_graph_pb2.SavedObjectGraph
SavedObject = saved_object_graph_pb2.SavedObject
SavedConcreteFunction = saved_object_graph_pb2.SavedConcreteFunction
SavedBareConcreteFunction = saved_object_graph_pb2.SavedBareConcreteFunction
StructuredValue = struct_pb2.StructuredValue
TypeSpecProto = struct_pb2.TypeSpecProto
TensorSpecProto = struct_pb2.TensorSpecProto
VariableDef = variable_pb2.VariableDef
SaverDef = saver_pb2.SaverDef

_PREFIX_PATH = RENAME_PREFIX.rstrip(".") + "/"

__all__ = [
    "TENSORFLOW_VERSION",
    "AttrValue",
    "DataType",
    "FingerprintDef",
    "FunctionDef",
    "GraphDef",
    "MetaGraphDef",
    "NodeDef",
    "SavedBareConcreteFunction",
    "SavedConcreteFunction",
    "SavedModel",
    "SavedObject",
    "SavedObjectGraph",
    "SignatureDef",
    "StructuredValue",
    "TensorInfo",
    "TensorShapeProto",
    "TypeSpecProto",
    "from_text",
    "to_text",
]


def _original_name(name: str) -> str:
    """`surgery_proto/tensorflow/x.proto` -> `tensorflow/x.proto` (paths and type names)."""
    for prefix in (_PREFIX_PATH, RENAME_PREFIX, "." + RENAME_PREFIX):
        if name.startswith(prefix):
            return ("." if prefix.startswith(".") else "") + name[len(prefix) :]
    return name


def _unrename(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        if field.HasField("type_name"):
            field.type_name = _original_name(field.type_name)
    for nested in message.nested_type:
        _unrename(nested)


@functools.cache
def tensorflow_pool() -> descriptor_pool.DescriptorPool:
    """A private pool holding the schema under TensorFlow's names (`tensorflow.MetaGraphDef`).

    Used only to resolve `Any` payloads in text format; it never touches the default pool.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool  # text format only: not at start-up

    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: object) -> None:
        name = file.name  # type: ignore[attr-defined]
        if name in added:
            return
        for dep in file.dependencies:  # type: ignore[attr-defined]
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)  # type: ignore[attr-defined]
        proto.name = _original_name(proto.name)
        proto.package = _original_name(proto.package)
        deps = [_original_name(d) for d in proto.dependency]
        del proto.dependency[:]
        proto.dependency.extend(deps)
        for message in proto.message_type:
            _unrename(message)
        pool.Add(proto)
        added.add(name)

    add(saved_model_pb2.DESCRIPTOR)
    add(fingerprint_pb2.DESCRIPTOR)
    return pool


def to_text(message: Message) -> str:
    """Text format as TensorFlow writes it, `Any` payloads expanded under their TensorFlow names."""
    from google.protobuf import text_format

    return text_format.MessageToString(message, descriptor_pool=tensorflow_pool())


def from_text(text: str, message: Message) -> Message:
    """Parse text format into `message`, resolving `[type.googleapis.com/tensorflow.X]` payloads."""
    from google.protobuf import text_format

    return text_format.Parse(text, message, descriptor_pool=tensorflow_pool())


def text_format_error() -> type[Exception]:
    """The error `from_text` raises on bad text (imported with text format, not at start-up)."""
    from google.protobuf import text_format

    return text_format.ParseError


def entry(mapping: Mapping[K, V], key: K) -> V:
    """`mapping[key]` for a protobuf map, which raises KeyError where a subscript would insert.

    Reading a protobuf map by subscript adds a default entry for a missing key (an
    `AttrValue` with no value, which TensorFlow refuses), so reads never subscript.
    """
    value = mapping.get(key)
    if value is None:
        raise KeyError(key)
    return value
