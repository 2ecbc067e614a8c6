"""Property tests for the wire layer: C++ map order, the C walk against its Python reference, and
no crash on arbitrary bytes."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURE_NAMES, FIXTURES
from fuzzing import varint
from surgery.schema import FunctionDef, GraphDef, MetaGraphDef, NodeDef, SavedModel, SavedObjectGraph
from surgery.wire import WireError, cpp_deterministic, iter_fields, read_varint
from wire_reference import cpp_deterministic as reference

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


# --- the C walk (surgery/_wire.c) against the Python reference (tests/wire_reference.py) -------------

FIXTURE_BYTES = [(FIXTURES / name / "saved_model.pb").read_bytes() for name in FIXTURE_NAMES]


def _outcome(walk: object, data: bytes, descriptor: Descriptor) -> bytes | str:
    """The bytes a walk gives, or the WireError it raises, as a comparable value."""
    try:
        return walk(data, descriptor)  # type: ignore[operator, no-any-return]
    except WireError as err:
        return f"WireError: {err}"


def _assert_same(data: bytes, descriptor: Descriptor) -> bytes | str:
    fast = _outcome(cpp_deterministic, data, descriptor)
    assert fast == _outcome(reference, data, descriptor)
    return fast


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_c_walk_matches_the_reference_on_every_fixture(name: str) -> None:
    model = SavedModel.FromString((FIXTURES / name / "saved_model.pb").read_bytes())
    data = model.SerializeToString(deterministic=True)
    fast = _assert_same(data, SavedModel.DESCRIPTOR)
    assert isinstance(fast, bytes)
    assert SavedModel.FromString(fast) == model
    for meta in model.meta_graphs:
        _assert_same(meta.graph_def.SerializeToString(deterministic=True), GraphDef.DESCRIPTOR)
        _assert_same(meta.object_graph_def.SerializeToString(deterministic=True), SavedObjectGraph.DESCRIPTOR)


@given(
    st.dictionaries(keys, st.dictionaries(keys, st.integers(-(2**63), 2**63 - 1), max_size=3), max_size=4),
    st.dictionaries(st.integers(0, 2**32 - 1), keys, max_size=4),
    st.dictionaries(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), max_size=4),
)
def test_c_walk_matches_the_reference_on_nested_maps(
    attrs: dict[str, dict[str, int]], arg_names: dict[int, str], ids: dict[int, int]
) -> None:
    """Maps at several depths and of string and integer keys, inside a SavedModel."""
    model = SavedModel()
    meta = model.meta_graphs.add()
    function = meta.graph_def.library.function.add()
    node = function.node_def.add(name="n")
    for key, inner in attrs.items():
        node.attr[key].func.name = "f"
        for inner_key, value in inner.items():
            node.attr[key].func.attr[inner_key].i = value
    for index, name in arg_names.items():
        function.arg_attr[index].attr[name].s = name.encode()
    function.resource_arg_unique_id.update(ids)
    for name in attrs:
        meta.signature_def[name].method_name = name
    data = model.SerializeToString(deterministic=True)
    fast = _assert_same(data, SavedModel.DESCRIPTOR)
    assert isinstance(fast, bytes) and SavedModel.FromString(fast) == model


@settings(max_examples=300)
@given(st.sampled_from(FIXTURE_BYTES), st.data())
def test_c_walk_matches_the_reference_on_damaged_models(original: bytes, data: st.DataObject) -> None:
    """Bytes overwritten, removed or cut: the same bytes, or the same WireError, from both walks."""
    buf = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(buf) - 1))
        action = data.draw(st.sampled_from(["overwrite", "delete", "cut"]))
        if action == "overwrite":
            buf[at : at + 1] = data.draw(st.binary(min_size=1, max_size=2))
        elif action == "delete":
            del buf[at : at + data.draw(st.integers(1, 8))]
        else:
            del buf[at:]
        if not buf:
            break
    _assert_same(bytes(buf), SavedModel.DESCRIPTOR)


@settings(max_examples=300)
@given(st.binary(max_size=300), st.sampled_from([SavedModel, MetaGraphDef, NodeDef, FunctionDef]))
def test_c_walk_matches_the_reference_on_arbitrary_bytes(data: bytes, message: type) -> None:
    _assert_same(data, message.DESCRIPTOR)


def test_deep_nesting_is_a_wire_error() -> None:
    """Past 512 levels of messages (upb parses 100) the C walk stops with a WireError."""
    value = b""
    for _ in range(600):  # AttrValue.func (10) -> NameAttrList.attr (2) -> entry.value (2) -> ...
        entry = b"\x12" + varint(len(value)) + value
        func = b"\x12" + varint(len(entry)) + entry
        value = b"\x52" + varint(len(func)) + func
    entry = b"\x12" + varint(len(value)) + value
    node = b"\x2a" + varint(len(entry)) + entry
    with pytest.raises(WireError, match="nested too deeply"):
        cpp_deterministic(node, NodeDef.DESCRIPTOR)
