"""`fingerprint.pb`: the five hashes TensorFlow records for a SavedModel.

Follows `tensorflow/cc/saved_model/fingerprinting.cc` (TensorFlow 2.21), hashing with
FarmHash Fingerprint64 (`surgery._farmhash`, as `tensorflow::Fingerprint64` is):

1. saved_model_checksum: the deterministic serialization of the whole SavedModel.

Every hash is taken over C++'s deterministic serialization, whose map order differs from
protobuf-python's (see `surgery.wire.cpp_deterministic`).
2. graph_def_program_hash: meta graph 0's GraphDef after "SimpleDelete": call nodes'
   function names lose their numeric suffix and `config_proto`, DT_STRING constants lose
   their value, and `library` and `versions` are emptied (but stay present).
3. signature_def_hash: over signatures in key order, Cat(key), Cat(serialized SignatureDef).
4. saved_object_graph_hash: over `concrete_functions` in order of the name's numeric suffix,
   Cat(name without the suffix), Cat(serialized SavedConcreteFunction). Nodes are not hashed.
5. checkpoint_hash: the bytes of `variables/variables.index`, 0 without one (an index that is
   there and cannot be read is an error: TensorFlow would record 0 for it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from surgery import _farmhash, lazy
from surgery.errors import SavedModelIOError
from surgery.schema import (
    DataType,
    FingerprintDef,
    GraphDef,
    SavedConcreteFunction,
    SavedModel,
    SavedObjectGraph,
    SignatureDef,
)
from surgery.wire import cpp_deterministic

_MASK = (1 << 64) - 1
_KMUL = 0xC6A4A7935BD1E995
_PRODUCER = 4  # kFingerprintProducer as TensorFlow 2.21 writes it
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")


def fingerprint64(data: bytes | str) -> int:
    """FarmHash Fingerprint64, `tensorflow::Fingerprint64` (a str hashed as its UTF-8 bytes)."""
    return _farmhash.fingerprint64(data.encode() if isinstance(data, str) else data)


def _hash_message(message: Message, holes: lazy.Holes | None = None) -> int:
    """Fingerprint64 of the message as TensorFlow's C++ serializes it deterministically.

    With `holes`, the message is part of a lazily read model: the hash streams over its bytes.
    """
    data = message.SerializeToString(deterministic=True)
    return _hash_serialized(data, cast(Descriptor, message.DESCRIPTOR), holes)


def _hash_serialized(data: bytes, descriptor: Descriptor, holes: lazy.Holes | None) -> int:
    return _hash_all([(data, descriptor)], holes)[0]


def _hash_all(messages: list[tuple[bytes, Descriptor]], holes: lazy.Holes | None) -> list[int]:
    """Fingerprint64 of each serialized message in C++'s deterministic order; spans read once."""
    canonical = [(cpp_deterministic(data, descriptor), descriptor) for data, descriptor in messages]
    if holes is None:
        return [fingerprint64(data) for data, _ in canonical]
    return lazy.fingerprint64([holes.expand(data, descriptor) for data, descriptor in canonical], holes)


def _shift_mix(value: int) -> int:
    return value ^ (value >> 47)


def fingerprint_cat64(fp1: int, fp2: int) -> int:
    """`tensorflow::FingerprintCat64`: combine two fingerprints, order-dependent."""
    result = fp1 ^ _KMUL
    result ^= (_shift_mix((fp2 * _KMUL) & _MASK) * _KMUL) & _MASK
    result = (result * _KMUL) & _MASK
    result = (_shift_mix(result) * _KMUL) & _MASK
    return _shift_mix(result)


def suffix_uid(name: str) -> int | None:
    """The integer after the last `_` of a function name (`__inference_f_42` -> 42), if any."""
    tail = name.rsplit("_", 1)[-1]
    sign = -1 if tail.startswith("-") else 1
    digits = tail.lstrip("+-")
    return sign * int(digits) if digits.isdigit() else None


def _strip_suffix(name: str, uid: int) -> str:
    return name.removesuffix(str(uid))


def graph_def_program_hash(graph_def: GraphDef, holes: lazy.Holes | None = None) -> int:
    return _hash_message(_regularized(graph_def), holes)


def _regularized(graph_def: GraphDef) -> GraphDef:
    """The GraphDef as TensorFlow hashes it (see the module docstring, item 2)."""
    graph = GraphDef()
    graph.CopyFrom(graph_def)
    # C++ clears them through mutable_*(), which leaves them present (serialized, empty).
    for name in ("library", "versions"):
        graph.ClearField(name)
        getattr(graph, name).SetInParent()
    for node in graph.node:
        f = node.attr.get("f")
        if node.op in _CALL_OPS and f is not None:
            uid = suffix_uid(f.func.name)
            if uid is not None:
                f.func.name = _strip_suffix(f.func.name, uid)
            if "config_proto" in node.attr:
                node.attr["config_proto"].s = b""
        dtype, value = node.attr.get("dtype"), node.attr.get("value")
        if (
            node.op == "Const"
            and dtype is not None
            and dtype.type == DataType.DT_STRING
            and value is not None
        ):
            value.ClearField("value")
    return graph


def signature_def_hash(signature_defs: dict[str, SignatureDef], holes: lazy.Holes | None = None) -> int:
    result = 0
    for key in sorted(signature_defs, key=lambda k: k.encode()):
        result = fingerprint_cat64(result, fingerprint64(key))
        result = fingerprint_cat64(result, _hash_message(signature_defs[key], holes))
    return result


def saved_object_graph_hash(object_graph: SavedObjectGraph, holes: lazy.Holes | None = None) -> int | None:
    """None when a function name has no numeric suffix: TensorFlow cannot fingerprint it either."""
    by_uid: dict[int, tuple[str, SavedConcreteFunction]] = {}
    for name, function in object_graph.concrete_functions.items():
        uid = suffix_uid(name)
        if uid is None:
            return None
        by_uid.setdefault(uid, (name, function))
    result = 0
    for uid in sorted(by_uid):
        name, function = by_uid[uid]
        result = fingerprint_cat64(result, fingerprint64(_strip_suffix(name, uid)))
        result = fingerprint_cat64(result, _hash_message(function, holes))
    return result


class UnreadableIndex(SavedModelIOError):
    """`variables/variables.index` is there but cannot be read: no checkpoint_hash can be computed."""

    def __init__(self, index: Path, reason: str) -> None:
        super().__init__(
            f"cannot read {index}: {reason}; fingerprint.pb hashes it: make it a readable file, "
            "or remove it if the model has no variables"
        )
        self.index = index
        self.reason = reason


def checkpoint_hash(model_dir: Path) -> int:
    """Fingerprint64 of `variables/variables.index`; 0 when the model has none (no `variables/`,
    or no index in it), as TensorFlow records it.

    An index that is there but cannot be read (a directory, a FIFO, a device, a broken link, no
    permission, an I/O error) raises `UnreadableIndex`: TensorFlow would record 0 for it, a
    fingerprint that no longer says which checkpoint the model goes with. A FIFO or a device is
    refused before it is read (it could block, or never end).
    """
    index = model_dir / "variables" / "variables.index"
    try:
        info = os.stat(index)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(index):
            raise UnreadableIndex(index, "it is a broken symbolic link") from None
        return 0
    except OSError as err:
        raise UnreadableIndex(index, err.strerror or str(err)) from None
    _refuse_irregular(index, info.st_mode)
    try:
        fd = os.open(index, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        raise UnreadableIndex(index, err.strerror or str(err)) from None
    try:
        _refuse_irregular(index, os.fstat(fd).st_mode)  # replaced since the stat: never block on it
        with os.fdopen(os.dup(fd), "rb") as f:
            return fingerprint64(f.read())
    except OSError as err:
        raise UnreadableIndex(index, err.strerror or str(err)) from None
    finally:
        os.close(fd)


def _refuse_irregular(index: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "a FIFO, a socket or a device"
        raise UnreadableIndex(index, f"it is {what}, not a regular file")


def compute_fingerprint(
    saved_model: SavedModel,
    serialized: bytes,
    model_dir: Path,
    holes: lazy.Holes | None = None,
    *,
    checkpoint: bool = True,
) -> FingerprintDef | None:
    """The FingerprintDef TensorFlow's `CreateFingerprintDef` gives, without a uuid.

    `serialized` is the deterministic serialization of `saved_model`; `model_dir` holds
    the checkpoint (its `variables/variables.index`); `holes`, those of a lazily read model.
    None where TensorFlow would fail too. Without `checkpoint`, the checkpoint is not read and
    its hash is left 0 (the four hashes of the model's content alone). Raises `UnreadableIndex`
    for an index that is there but cannot be read.
    """
    meta = saved_model.meta_graphs[0]
    object_graph_hash = saved_object_graph_hash(meta.object_graph_def, holes)
    if object_graph_hash is None:
        return None
    index_hash = checkpoint_hash(model_dir) if checkpoint else 0  # before the long hashes
    # The two hashes over the whole graph, computed side by side: a captured constant is read once.
    graph = _regularized(meta.graph_def).SerializeToString(deterministic=True)
    streams = [(serialized, SavedModel.DESCRIPTOR), (graph, GraphDef.DESCRIPTOR)]
    checksum, graph_hash = _hash_all([(data, cast(Descriptor, d)) for data, d in streams], holes)
    fingerprint = FingerprintDef(
        saved_model_checksum=checksum,
        graph_def_program_hash=graph_hash,
        signature_def_hash=signature_def_hash(dict(meta.signature_def), holes),
        saved_object_graph_hash=object_graph_hash,
        checkpoint_hash=index_hash,
    )
    fingerprint.version.producer = _PRODUCER
    return fingerprint
