"""TensorFlow's op registry: the OpDef of every op TensorFlow's C++ runtime knows.

Vendored as data (`surgery/data/tensorflow_ops.binpb`, from the TensorFlow release in
`surgery_proto.TENSORFLOW_VERSION`; `make protos` extracts it again) and read once, on first
use: the graph validator checks every node against it, as TensorFlow's loaders do.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.resources import files
from types import MappingProxyType

from surgery.schema import OpDef, OpList

DATA = "tensorflow_ops.binpb"


@functools.cache
def registry() -> Mapping[str, OpDef]:
    """Every registered op by name."""
    data = files("surgery").joinpath("data", DATA).read_bytes()
    return MappingProxyType({op.name: op for op in OpList.FromString(data).op})


def op_def(name: str) -> OpDef | None:
    """The OpDef of op `name`, or None when TensorFlow does not register it."""
    return registry().get(name)
