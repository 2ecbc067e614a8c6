"""Protocol-buffer wire format: walking serialized messages without parsing them.

Used where parsing would cost too much or would not give TensorFlow's bytes. Today:
`cpp_deterministic` turns protobuf-python's deterministic serialization into the one
TensorFlow's C++ writes, which is what `fingerprint.pb`'s hashes are taken over. The two
differ only in the order of map entries: C++ sorts keys with `std::less` (a string before
its extensions, integers ascending) while upb does not. Reordering the entries of a map
never changes the length of the message holding it, so the fix is a permutation of byte
ranges, done in place.
"""

from __future__ import annotations

import functools
import mmap
import struct
from collections.abc import Iterator

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from surgery._wire import canonicalize

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5


class WireError(ValueError):
    """The bytes are not a well-formed protocol buffer."""


Buffer = bytes | bytearray | memoryview | mmap.mmap


def read_varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at `pos`; returns (value, position after it)."""
    result = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7


def iter_fields(buf: Buffer, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (field number, wire type, field start, value start, value end) for each field.

    For LENGTH fields the value is the payload after the length prefix; for VARINT fields
    the varint itself; groups are not supported (TensorFlow's schema has none).
    """
    pos = start
    while pos < end:
        field_start = pos
        tag, pos = read_varint(buf, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            _, value_end = read_varint(buf, pos, end)
        elif wire_type == LENGTH:
            length, pos = read_varint(buf, pos, end)
            value_end = pos + length
        elif wire_type == FIXED64:
            value_end = pos + 8
        elif wire_type == FIXED32:
            value_end = pos + 4
        else:
            raise WireError(f"unsupported wire type {wire_type}")
        if value_end > end:
            raise WireError("field runs past the end of its message")
        yield number, wire_type, field_start, pos, value_end
        pos = value_end


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None, field.full_name
    return field.message_type


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and bool(_message_type(field).GetOptions().map_entry)


@functools.cache
def _holds_map(descriptor: Descriptor) -> bool:
    """Whether messages of this type can contain a map field at any depth."""
    seen: set[str] = set()

    def visit(desc: Descriptor) -> bool:
        if desc.full_name in seen:
            return False
        seen.add(desc.full_name)
        return any(
            _is_map(f) or (f.type == FieldDescriptor.TYPE_MESSAGE and visit(_message_type(f)))
            for f in desc.fields
        )

    return visit(descriptor)


_KEY_KINDS = {
    FieldDescriptor.TYPE_STRING: 1,
    FieldDescriptor.TYPE_BYTES: 1,
    FieldDescriptor.TYPE_INT32: 3,
    FieldDescriptor.TYPE_INT64: 3,
    FieldDescriptor.TYPE_SFIXED64: 3,
    FieldDescriptor.TYPE_SFIXED32: 4,
    FieldDescriptor.TYPE_SINT32: 5,
    FieldDescriptor.TYPE_SINT64: 5,
}  # how surgery._wire compares a map key: 1 as bytes, 3-5 as signed integers, else 2 (unsigned)
_CODE_MAP, _CODE_WALK = 1, 2


@functools.cache
def _table(root: Descriptor) -> tuple[bytes, ...]:
    """The schema table `surgery._wire.canonicalize` walks: root first, then every message type
    reachable from it that can hold a map, each as int32 codes by field number (see _wire.c)."""
    index = {root.full_name: 0}
    types = [root]
    table: list[bytes] = []
    for desc in types:  # grows as new types are reached
        codes: dict[int, int] = {}
        for field in desc.fields:
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            child = _message_type(field)
            code = 0
            if _is_map(field):
                key = child.fields_by_number[1]
                code |= _CODE_MAP | _KEY_KINDS.get(key.type, 2) << 2
            if _holds_map(child):
                if child.full_name not in index:
                    index[child.full_name] = len(types)
                    types.append(child)
                code |= _CODE_WALK | index[child.full_name] << 8
            if code:
                codes[field.number] = code
        dense = [codes.get(number, 0) for number in range(max(codes, default=0) + 1)]
        table.append(struct.pack(f"={len(dense)}i", *dense))
    return tuple(table)


def cpp_deterministic(data: bytes, descriptor: Descriptor) -> bytes:
    """C++'s deterministic serialization, from protobuf-python's deterministic bytes."""
    if not _holds_map(descriptor):
        return data
    buf = bytearray(data)
    error = canonicalize(buf, _table(descriptor), 0)
    if error is not None:
        raise WireError(error)
    return bytes(buf)
