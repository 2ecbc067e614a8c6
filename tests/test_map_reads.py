"""Reading a model never writes to it: no protobuf map is read by subscript.

On protobuf's maps, `m[key]` inserts a default entry when `key` is absent (an empty
`AttrValue`, an empty string), so a read can change the model: TensorFlow then refuses a
function body with an attr that has no value. Reads go through `.get()` or `in`; a subscript
is allowed only where the code writes through it (an assignment target, `del`, or a chain that
ends in a mutating call such as `CopyFrom`). The map fields are taken from the vendored
protos' descriptors, so a new map field is covered without editing this test.
"""

from __future__ import annotations

import ast

import pytest
from google.protobuf.descriptor import Descriptor

from conftest import ROOT
from surgery import schema

MUTATORS = frozenset(
    {
        "CopyFrom",
        "MergeFrom",
        "ParseFromString",
        "MergeFromString",
        "Clear",
        "ClearField",
        "add",
        "append",
        "extend",
        "remove",
        "pop",
        "SetInParent",
    }
)


def _map_fields() -> frozenset[str]:
    """The name of every map field reachable from the messages `surgery.schema` exposes."""
    names: set[str] = set()
    seen: set[str] = set()

    def walk(descriptor: Descriptor) -> None:
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if field.message_type is not None:
                if field.message_type.GetOptions().map_entry:
                    names.add(field.name)
                walk(field.message_type)

    for value in vars(schema).values():
        descriptor = getattr(value, "DESCRIPTOR", None)
        if isinstance(descriptor, Descriptor):
            walk(descriptor)
    return frozenset(names)


MAP_FIELDS = _map_fields()


def _writes_through(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether the chain of attributes and calls above `node` ends in a write."""
    child, parent = node, parents.get(node)
    while isinstance(parent, ast.Attribute | ast.Subscript) and parent.value is child:
        if isinstance(parent.ctx, ast.Store | ast.Del):
            return True
        grand = parents.get(parent)
        if isinstance(parent, ast.Attribute) and parent.attr in MUTATORS and isinstance(grand, ast.Call):
            return grand.func is parent
        child, parent = parent, grand
    return isinstance(parent, ast.AugAssign) and parent.target is child


def map_subscript_reads(source: str) -> list[tuple[int, str]]:
    """(line, code) of every subscript of a map field that reads rather than writes."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Subscript) or not isinstance(node.ctx, ast.Load):
            continue
        if not (isinstance(node.value, ast.Attribute) and node.value.attr in MAP_FIELDS):
            continue
        if not _writes_through(node, parents):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_map_fields_are_found() -> None:
    expected = {"attr", "ret", "arg_attr", "signature_def", "concrete_functions", "inputs", "outputs"}
    assert expected <= MAP_FIELDS


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("x = node.attr['T'].type", True),
        ("if node.attr['f'].func.name: pass", True),
        ("shapes = node.attr['_output_shapes'].list.shape", True),
        ("f(meta.signature_def[key])", True),
        ("node.attr['T'].type = 1", False),
        ("node.attr['shape'].shape.CopyFrom(proto)", False),
        ("node.attr['_output_shapes'].list.shape.add().CopyFrom(s)", False),
        ("wrapper.ret[name] = value", False),
        ("del meta.signature_def[old]", False),
        ("x = node.attr.get('T')", False),
        ("x = items[0]", False),
    ],
)
def test_the_check_tells_reads_from_writes(source: str, flagged: bool) -> None:
    assert bool(map_subscript_reads(source)) is flagged


SURGERY = ROOT / "surgery"


@pytest.mark.parametrize("module", sorted(str(p.relative_to(SURGERY)) for p in SURGERY.rglob("*.py")))
def test_no_map_is_read_by_subscript(module: str) -> None:
    reads = map_subscript_reads((SURGERY / module).read_text())
    assert not reads, f"surgery/{module} reads protobuf maps by subscript (use .get or `in`): {reads}"
