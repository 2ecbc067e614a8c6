"""The C++ map-order walk of `surgery.wire.cpp_deterministic`, in Python: the reference the C one
(`surgery/_wire.c`) must match, byte for byte and error for error, on any input."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from surgery.wire import LENGTH, VARINT, _holds_map, _is_map, _message_type, iter_fields, read_varint

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
    """What `surgery.wire.cpp_deterministic` gives, computed in Python."""
    if not _holds_map(descriptor):
        return data
    buf = bytearray(data)
    _canonicalize(buf, 0, len(buf), descriptor)
    return bytes(buf)
