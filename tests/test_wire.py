"""Property tests for the wire layer: C++ map order, and no crash on arbitrary bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from surgery.schema import FunctionDef, NodeDef, SavedModel
from surgery.wire import WireError, cpp_deterministic, iter_fields, read_varint

keys = st.text(alphabet="ab_1é", max_size=4)


def _map_keys_in_wire_order(data: bytes, field_number: int, entry_type: type) -> list[object]:
    return [
        entry_type.FromString(data[start:end]).key
        for number, _, _, start, end in iter_fields(data, 0, len(data))
        if number == field_number
    ]


@given(st.dictionaries(keys, keys), st.dictionaries(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)))
def test_cpp_order_sorts_map_entries_as_std_less(ret: dict[str, str], ids: dict[int, int]) -> None:
    function = FunctionDef()
    function.ret.update(ret)
    function.resource_arg_unique_id.update(ids)
    data = cpp_deterministic(function.SerializeToString(deterministic=True), FunctionDef.DESCRIPTOR)
    assert FunctionDef.FromString(data) == function
    assert _map_keys_in_wire_order(data, 4, FunctionDef.RetEntry) == sorted(ret, key=lambda k: k.encode())
    assert _map_keys_in_wire_order(data, 8, FunctionDef.ResourceArgUniqueIdEntry) == sorted(ids)


@given(st.dictionaries(keys, st.dictionaries(keys, st.binary(max_size=3), max_size=3), max_size=4))
def test_nested_maps_are_sorted_and_lengths_kept(attrs: dict[str, dict[str, bytes]]) -> None:
    """Map values holding maps (NodeDef.attr -> AttrValue.func.attr) are sorted at every depth."""
    node = NodeDef(name="n")
    for key, inner in attrs.items():
        node.attr[key].func.name = "f"
        for inner_key, value in inner.items():
            node.attr[key].func.attr[inner_key].s = value
    original = node.SerializeToString(deterministic=True)
    data = cpp_deterministic(original, NodeDef.DESCRIPTOR)
    assert len(data) == len(original)
    assert NodeDef.FromString(data) == node
    assert _map_keys_in_wire_order(data, 5, NodeDef.AttrEntry) == sorted(attrs, key=lambda k: k.encode())


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_wire_error_or_walk_cleanly(data: bytes) -> None:
    try:
        for number, _, field_start, start, end in iter_fields(data, 0, len(data)):
            assert 0 <= field_start < start <= end <= len(data)
            assert number > 0
        cpp_deterministic(data, SavedModel.DESCRIPTOR)
    except WireError:
        pass


@given(st.integers(0, 2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = bytearray()
    rest = value
    while rest >= 0x80:
        encoded.append(rest & 0x7F | 0x80)
        rest >>= 7
    encoded.append(rest)
    assert read_varint(bytes(encoded), 0, len(encoded)) == (value, len(encoded))
