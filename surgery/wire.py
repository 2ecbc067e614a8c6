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
from collections.abc import Iterator

from google.protobuf.descriptor import Descriptor, FieldDescriptor

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


_SIGNED = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_ZIGZAG = {FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64}


def _map_key(entry: bytes | bytearray | memoryview, key_field: FieldDescriptor) -> bytes | int:
    """The key of a serialized map entry, as C++ `std::less` orders it."""
    text = key_field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)
    for number, wire_type, _, start, end in iter_fields(entry, 0, len(entry)):
        if number != 1 or (wire_type == LENGTH) != text:
            continue  # a key of the wrong wire type (a corrupt entry kept as unknown): not the key
        if wire_type == LENGTH:
            return bytes(entry[start:end])
        if wire_type == VARINT:
            value, _ = read_varint(entry, start, end)
        else:
            value = int.from_bytes(entry[start:end], "little")
        if key_field.type in _ZIGZAG:
            return (value >> 1) ^ -(value & 1)
        if key_field.type in _SIGNED:
            bits = 32 if key_field.type == FieldDescriptor.TYPE_SFIXED32 else 64
            return value - (1 << bits) if value >= 1 << (bits - 1) else value
        return value
    return b"" if text else 0


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


def _canonicalize(buf: bytearray, start: int, end: int, descriptor: Descriptor) -> None:
    fields = descriptor.fields_by_number
    run: list[tuple[int, int]] = []  # (entry field start, entry end) of the current map field
    run_field: FieldDescriptor | None = None

    def flush() -> None:
        if run_field is not None and len(run) > 1:
            key_field = _message_type(run_field).fields_by_number[1]
            chunks = []
            for chunk_start, chunk_end in run:
                _, _, _, value_start, _ = next(iter_fields(buf, chunk_start, chunk_end))
                chunks.append(
                    (_map_key(buf[value_start:chunk_end], key_field), bytes(buf[chunk_start:chunk_end]))
                )
            chunks.sort(key=lambda item: item[0])
            buf[run[0][0] : run[-1][1]] = b"".join(chunk for _, chunk in chunks)
        run.clear()

    for number, wire_type, field_start, value_start, value_end in iter_fields(buf, start, end):
        field = fields.get(number)
        if field is None or wire_type != LENGTH or field.type != FieldDescriptor.TYPE_MESSAGE:
            flush()
            run_field = None
            continue
        if _holds_map(_message_type(field)):
            _canonicalize(buf, value_start, value_end, _message_type(field))
        if _is_map(field):
            if run_field is None or run_field.number != field.number:
                flush()
                run_field = field
            run.append((field_start, value_end))
        else:
            flush()
            run_field = None
    flush()


def cpp_deterministic(data: bytes, descriptor: Descriptor) -> bytes:
    """C++'s deterministic serialization, from protobuf-python's deterministic bytes."""
    if not _holds_map(descriptor):
        return data
    buf = bytearray(data)
    _canonicalize(buf, 0, len(buf), descriptor)
    return bytes(buf)
