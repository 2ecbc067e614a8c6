"""`graph_diff`: what differs between the graphs of two SavedModels.

It compares what runs (the v1 graph's nodes, the function library, the object graph, the rest of
each meta graph), so that an edit that leaves the signatures as they were but not the graph
still shows; signatures are `diff`'s. Here are the kinds of change, what each compares and how a
rename is told from a removal and an addition; how two messages compare (a lazily read model's
large constants included, never read into memory) and the short texts of values are
`surgery.graph_compare`'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from surgery.graph_compare import FEW, Equal, attr_parts, cut, field_parts, items_text
from surgery.lazy import fingerprint64
from surgery.model import Model, ModelLike
from surgery.schema import (
    CollectionDef,
    FunctionDef,
    GraphDef,
    MetaGraphDef,
    NodeDef,
    SavedObject,
    SavedObjectGraph,
    StructuredValue,
)
from surgery.signatures import (
    describe_structure,
)
from surgery.storage.readwrite import as_model
from surgery.tensors import dtype_name

if TYPE_CHECKING:
    from surgery.reports import GraphChange
    from surgery_proto.tensorflow.core.framework.op_def_pb2 import OpDef

__all__ = ["Equal", "graph_diff", "matched_meta_graphs", "renamed_nodes"]


def _change(tags: list[str], scope: str, kind: str, name: str, detail: str) -> GraphChange:
    """One `GraphChange` (pydantic, imported when a diff is made rather than with this module)."""
    from surgery.reports import GraphChange

    return GraphChange(tags=tags, scope=scope, kind=kind, name=name, detail=detail)


# --- nodes (of the v1 graph and of functions) ----------------------------------------------------


def _base(ref: str) -> str:
    """The node an input reference names: `^a`, `a:1` (graph) and `a:out:0` (function) -> `a`."""
    return ref.lstrip("^").split(":", 1)[0]


def _short_node(node: NodeDef) -> str:
    """`Cast(row)`: a node's op and inputs, the inputs cut to a few."""
    inputs = list(node.input)
    shown = ", ".join(inputs[:3]) + (f", +{len(inputs) - 3} more" if len(inputs) > 3 else "")
    return f"{node.op}({shown})"


def _without_identity(node: NodeDef) -> NodeDef:
    """The node with its name and inputs cleared: what a rename leaves as it was."""
    copy = NodeDef()
    copy.CopyFrom(node)
    copy.name = ""
    del copy.input[:]
    return copy


def renamed_nodes(
    nodes_a: Mapping[str, NodeDef], nodes_b: Mapping[str, NodeDef], eq: Equal
) -> dict[str, str]:
    """Old name -> new name for the nodes renamed from `a` to `b`.

    A removed node and an added one are a rename when a node in both reads the new one where it
    read the old one (rename-tensor updates every reference), or, with no such reader, when they
    are the only removed and added nodes of their op; either way their op, device and attrs agree.
    """
    removed = [n for n in nodes_a if n not in nodes_b]
    added = [n for n in nodes_b if n not in nodes_a]
    if not removed or not added:
        return {}
    removed_set, added_set = set(removed), set(added)
    evidence: dict[str, set[str]] = {}
    for name, x in nodes_a.items():
        y = nodes_b.get(name)
        if y is None or len(x.input) != len(y.input) or list(x.input) == list(y.input):
            continue
        for ref_x, ref_y in zip(x.input, y.input, strict=True):
            old, new = _base(ref_x), _base(ref_y)
            if old != new and old in removed_set and new in added_set:
                evidence.setdefault(old, set()).add(new)
    pairs: dict[str, str] = {}
    for old, news in evidence.items():
        if len(news) == 1:
            pairs[old] = next(iter(news))
    by_op: dict[str, tuple[list[str], list[str]]] = {}
    for name in removed:
        by_op.setdefault(nodes_a[name].op, ([], []))[0].append(name)
    for name in added:
        by_op.setdefault(nodes_b[name].op, ([], []))[1].append(name)
    for gone, new_names in by_op.values():
        if len(gone) == len(new_names) == 1 and gone[0] not in pairs:
            pairs[gone[0]] = new_names[0]
    taken: set[str] = set()
    out = {}
    for old, new in sorted(pairs.items()):
        x, y = nodes_a[old], nodes_b[new]
        if new in taken or x.op != y.op or len(x.input) != len(y.input):
            continue
        if eq(_without_identity(x), _without_identity(y)):
            out[old] = new
            taken.add(new)
    return out


def _renamed_ref(ref: str, renamed: Mapping[str, str]) -> str:
    """An input reference with its node renamed as `renamed` says (`^a`, `a:1`, `a:out:0` kept so)."""
    control = "^" if ref.startswith("^") else ""
    node, colon, rest = ref.lstrip("^").partition(":")
    return f"{control}{renamed.get(node, node)}{colon}{rest}"


def _input_parts(x: NodeDef, y: NodeDef) -> list[str]:
    if list(x.input) == list(y.input):
        return []
    if len(x.input) != len(y.input):
        return [f"inputs: {items_text(list(x.input))} -> {items_text(list(y.input))}"]
    moved = [
        f"input {i}: {p} -> {q}" for i, (p, q) in enumerate(zip(x.input, y.input, strict=True)) if p != q
    ]
    return moved[:3] + ([f"+{len(moved) - 3} more inputs"] if len(moved) > 3 else [])


def _node_parts(x: NodeDef, y: NodeDef, eq: Equal) -> list[str]:
    """What differs between two versions of one node, one short text each."""
    parts = [f"op: {x.op} -> {y.op}"] if x.op != y.op else []
    parts += _input_parts(x, y)
    if x.device != y.device:
        parts.append(f"device: {x.device!r} -> {y.device!r}")
    parts += [text for _, text in attr_parts(x.attr, y.attr, eq)]
    parts += field_parts(x, y, eq, skip=("name", "op", "input", "device", "attr"))
    return parts or ["other fields changed"]


def _node_changes(
    tags: list[str], scope: str, nodes_a: Sequence[NodeDef], nodes_b: Sequence[NodeDef], eq: Equal
) -> list[GraphChange]:
    """Nodes added, removed, renamed and changed, by name."""
    by_a = {n.name: n for n in nodes_a}
    by_b = {n.name: n for n in nodes_b}
    renamed = renamed_nodes(by_a, by_b, eq)
    new_names = set(renamed.values())

    def change(kind: str, name: str, detail: str) -> GraphChange:
        return _change(tags, scope, kind, name, detail)

    out = [
        change("node-added", n, _short_node(by_b[n]))
        for n in sorted(by_b)
        if n not in by_a and n not in new_names
    ]
    out += [
        change("node-removed", n, _short_node(by_a[n]))
        for n in sorted(by_a)
        if n not in by_b and n not in renamed
    ]
    for old, new in sorted(renamed.items(), key=lambda pair: pair[1]):
        out.append(change("node-renamed", new, f"{old} -> {new}"))
        # Its attrs are as they were (or it would not be paired); its inputs may have moved on.
        x, y = by_a[old], by_b[new]
        if [_renamed_ref(ref, renamed) for ref in x.input] != list(y.input):
            out.append(change("node-changed", new, "; ".join(_input_parts(x, y))))
    for name in sorted(set(by_a) & set(by_b)):
        x, y = by_a[name], by_b[name]
        if not eq(x, y):
            out.append(change("node-changed", name, "; ".join(_node_parts(x, y, eq))))
    return out


# --- functions -----------------------------------------------------------------------------------


def _map_changes(
    tags: list[str], scope: str, kind: str, x: Mapping[str, str], y: Mapping[str, str]
) -> list[GraphChange]:
    """Entries of a string map (a function's `ret`, `control_ret`) added, removed and changed."""
    out = []
    for key in sorted(set(x) | set(y)):
        if key not in y:
            out.append(_change(tags, scope, f"{kind}-removed", key, x[key]))
        elif key not in x:
            out.append(_change(tags, scope, f"{kind}-added", key, y[key]))
        elif x[key] != y[key]:
            out.append(_change(tags, scope, f"{kind}-changed", key, f"{x[key]} -> {y[key]}"))
    return out


def _arg_type(arg: OpDef.ArgDef) -> str:
    """`float32`, or the attr naming the type (`T`, `N * T`)."""
    if arg.type_list_attr:
        kind = arg.type_list_attr
    else:
        kind = dtype_name(arg.type) if arg.type else arg.type_attr
        if arg.number_attr:
            kind = f"{arg.number_attr} * {kind}"
    return kind + (" (ref)" if arg.is_ref else "")


def _arg_changes(
    tags: list[str], scope: str, kind: str, x: Sequence[OpDef.ArgDef], y: Sequence[OpDef.ArgDef], eq: Equal
) -> list[GraphChange]:
    """A function's arguments (or results) by position: added, removed, changed."""
    out = []
    for i in range(max(len(x), len(y))):
        if i >= len(y):
            detail = f"#{i} {x[i].name}: {_arg_type(x[i])}"
            out.append(_change(tags, scope, f"{kind}-removed", x[i].name, detail))
        elif i >= len(x):
            detail = f"#{i} {y[i].name}: {_arg_type(y[i])}"
            out.append(_change(tags, scope, f"{kind}-added", y[i].name, detail))
        elif not eq(x[i], y[i]):
            parts = [f"{x[i].name} -> {y[i].name}"] if x[i].name != y[i].name else []
            if _arg_type(x[i]) != _arg_type(y[i]):
                parts.append(f"{_arg_type(x[i])} -> {_arg_type(y[i])}")
            parts += field_parts(x[i], y[i], eq, skip=("name", "type", "type_attr", "number_attr", "is_ref"))
            where = f"#{i} {y[i].name}:" if x[i].name == y[i].name else f"#{i}"
            detail = f"{where} " + ("; ".join(parts) if parts else "other fields changed")
            out.append(_change(tags, scope, f"{kind}-changed", y[i].name, detail))
    return out


def _function_changes(
    tags: list[str], name: str, x: FunctionDef, y: FunctionDef, eq: Equal
) -> list[GraphChange]:
    """What changed in one function: its arguments and their attrs, results, attrs and nodes."""
    scope = f"function:{name}"
    sx, sy = x.signature, y.signature
    out = _arg_changes(tags, scope, "arg", sx.input_arg, sy.input_arg, eq)
    out += _arg_changes(tags, scope, "result", sx.output_arg, sy.output_arg, eq)
    fields = field_parts(sx, sy, eq, skip=("input_arg", "output_arg"))
    if fields:
        out.append(_change(tags, scope, "signature-changed", name, ", ".join(fields)))
    for index in sorted(set(x.arg_attr) | set(y.arg_attr)):
        args = sy.input_arg if index < len(sy.input_arg) else sx.input_arg
        label = args[index].name if index < len(args) else f"#{index}"
        arg_x, arg_y = x.arg_attr.get(index), y.arg_attr.get(index)
        attrs_x = arg_x.attr if arg_x is not None else {}
        attrs_y = arg_y.attr if arg_y is not None else {}
        parts = [text for _, text in attr_parts(attrs_x, attrs_y, eq)]
        if parts:
            out.append(_change(tags, scope, "arg-attr-changed", label, f"#{index} " + "; ".join(parts)))
    if dict(x.resource_arg_unique_id) != dict(y.resource_arg_unique_id):
        out.append(_change(tags, scope, "resource-arg-ids-changed", name, "resource_arg_unique_id changed"))
    out += _map_changes(tags, scope, "ret", x.ret, y.ret)
    out += _map_changes(tags, scope, "control-ret", x.control_ret, y.control_ret)
    for key, text in attr_parts(x.attr, y.attr, eq):
        out.append(_change(tags, scope, "function-attr-changed", key, text))
    out += _node_changes(tags, scope, x.node_def, y.node_def, eq)
    if not out:
        out.append(_change(tags, scope, "function-changed", name, "other fields changed"))
    return out


def _library_changes(tags: list[str], x: GraphDef, y: GraphDef, eq: Equal) -> list[GraphChange]:
    by_x = {f.signature.name: f for f in x.library.function}
    by_y = {f.signature.name: f for f in y.library.function}

    def size(function: FunctionDef) -> str:
        sig = function.signature
        return f"{len(sig.input_arg)} args, {len(sig.output_arg)} results, {len(function.node_def)} nodes"

    out = []
    for name in sorted(set(by_x) | set(by_y)):
        scope = f"function:{name}"
        if name not in by_y:
            out.append(_change(tags, scope, "function-removed", name, size(by_x[name])))
        elif name not in by_x:
            out.append(_change(tags, scope, "function-added", name, size(by_y[name])))
        elif not eq(by_x[name], by_y[name]):
            out += _function_changes(tags, name, by_x[name], by_y[name], eq)
    return out


# --- the object graph ----------------------------------------------------------------------------


def _object_paths(graph: SavedObjectGraph) -> dict[int, str]:
    """Node id -> its first path from the root (`root.signatures.serving_default`)."""
    paths = {0: "root"} if graph.nodes else {}
    queue = deque([0] if graph.nodes else [])
    while queue:
        node_id = queue.popleft()
        for child in graph.nodes[node_id].children:
            if 0 <= child.node_id < len(graph.nodes) and child.node_id not in paths:
                paths[child.node_id] = f"{paths[node_id]}.{child.local_name}"
                queue.append(child.node_id)
    return paths


def _refs_parts(label: str, x: Sequence[Any], y: Sequence[Any]) -> list[str]:
    """`children: -serving_default +predict` for two lists of object references."""
    refs_x = [(r.local_name, r.node_id) for r in x]
    refs_y = [(r.local_name, r.node_id) for r in y]
    if refs_x == refs_y:
        return []
    gone = [f"-{n}" for n, i in refs_x if (n, i) not in refs_y]
    new = [f"+{n}" for n, i in refs_y if (n, i) not in refs_x]
    return [f"{label}: " + (" ".join(gone + new) if gone or new else "reordered")]


def _object_parts(x: SavedObject, y: SavedObject, eq: Equal) -> list[str]:
    kind_x, kind_y = x.WhichOneof("kind"), y.WhichOneof("kind")
    parts = [f"kind: {kind_x} -> {kind_y}"] if kind_x != kind_y else []
    parts += _refs_parts("children", x.children, y.children)
    parts += _refs_parts("dependencies", x.dependencies, y.dependencies)
    if kind_x == kind_y and kind_x is not None and not eq(getattr(x, kind_x), getattr(y, kind_x)):
        # What signature edits change in the kinds they touch; any other kind, coarsely.
        specific = []
        if kind_x == "bare_concrete_function":
            bx, by = x.bare_concrete_function, y.bare_concrete_function
            if bx.concrete_function_name != by.concrete_function_name:
                specific.append(f"function: {bx.concrete_function_name} -> {by.concrete_function_name}")
            if list(bx.argument_keywords) != list(by.argument_keywords):
                specific.append(
                    f"argument_keywords: {items_text(list(bx.argument_keywords))} -> "
                    f"{items_text(list(by.argument_keywords))}"
                )
        elif kind_x == "function":
            fx, fy = list(x.function.concrete_functions), list(y.function.concrete_functions)
            if fx != fy:
                specific.append(f"concrete_functions: {items_text(fx)} -> {items_text(fy)}")
        parts += specific or [f"{kind_x} changed"]
    parts += field_parts(x, y, eq, skip=("children", "dependencies", kind_x or "", kind_y or ""))
    return parts or ["other fields changed"]


def _leaves(value: StructuredValue, path: str, out: dict[str, str]) -> dict[str, str]:
    """Path -> text of each leaf (a TensorSpec, None, a constant) of a structure."""
    kind = value.WhichOneof("kind")
    children: list[tuple[str, StructuredValue]] = []
    if kind in ("list_value", "tuple_value"):
        children = [(f"#{i}", v) for i, v in enumerate(getattr(value, kind).values)]
    elif kind == "dict_value":
        children = sorted(value.dict_value.fields.items())
    elif kind == "named_tuple_value":
        children = [(pair.key, pair.value) for pair in value.named_tuple_value.values]
    else:
        out[path or "(value)"] = describe_structure(value)
    for key, child in children:
        _leaves(child, f"{path}.{key}" if path else key, out)
    return out


def _structure_parts(label: str, x: StructuredValue, y: StructuredValue) -> list[str]:
    """`inputs: -a, +z, row: TensorSpec(...) -> TensorSpec(...)`: the leaves that differ."""
    leaves_x, leaves_y = _leaves(x, "", {}), _leaves(y, "", {})
    if leaves_x == leaves_y:
        return [] if describe_structure(x) == describe_structure(y) else [f"{label}: structure changed"]
    items = [f"-{p}" for p in leaves_x if p not in leaves_y]
    items += [f"+{p}" for p in leaves_y if p not in leaves_x]
    items += [
        f"{p}: {leaves_x[p]} -> {leaves_y[p]}"
        for p in leaves_x
        if p in leaves_y and leaves_x[p] != leaves_y[p]
    ]
    return [f"{label}: " + cut(", ".join(items))]


def _object_graph_changes(
    tags: list[str], x: SavedObjectGraph, y: SavedObjectGraph, eq: Equal
) -> list[GraphChange]:
    """Objects (by node id) and concrete functions (by name) added, removed or changed, coarsely."""
    scope = "object-graph"
    paths_x, paths_y = _object_paths(x), _object_paths(y)
    out = []
    for i in range(max(len(x.nodes), len(y.nodes))):
        if i >= len(y.nodes):
            label = paths_x.get(i, f"node {i}")
            out.append(_change(tags, scope, "object-removed", label, f"#{i} {x.nodes[i].WhichOneof('kind')}"))
        elif i >= len(x.nodes):
            label = paths_y.get(i, f"node {i}")
            out.append(_change(tags, scope, "object-added", label, f"#{i} {y.nodes[i].WhichOneof('kind')}"))
        elif not eq(x.nodes[i], y.nodes[i]):
            label = paths_y.get(i, paths_x.get(i, f"node {i}"))
            detail = f"#{i} " + "; ".join(_object_parts(x.nodes[i], y.nodes[i], eq))
            out.append(_change(tags, scope, "object-changed", label, detail))
    fx, fy = x.concrete_functions, y.concrete_functions
    for name in sorted(set(fx) | set(fy)):
        if name not in fy:
            out.append(_change(tags, scope, "concrete-function-removed", name, name))
        elif name not in fx:
            out.append(_change(tags, scope, "concrete-function-added", name, name))
        elif not eq(fx[name], fy[name]):
            cx, cy = fx[name], fy[name]
            parts = []
            for field, label in (
                ("canonicalized_input_signature", "inputs"),
                ("output_signature", "outputs"),
            ):
                parts += _structure_parts(label, getattr(cx, field), getattr(cy, field))
            parts += field_parts(cx, cy, eq, skip=("canonicalized_input_signature", "output_signature"))
            out.append(
                _change(tags, scope, "concrete-function-changed", name, "; ".join(parts or ["changed"]))
            )
    return out


# --- a meta graph --------------------------------------------------------------------------------


def _meta_graph_changes(tags: list[str], x: MetaGraphDef, y: MetaGraphDef, eq: Equal) -> list[GraphChange]:
    """Everything but the signatures (which `diff` compares): graph, functions, object graph, rest."""
    out = _node_changes(tags, "graph", x.graph_def.node, y.graph_def.node, eq)
    fields = field_parts(x.graph_def, y.graph_def, eq, skip=("node", "library"))
    if fields:
        out.append(_change(tags, "graph", "graph-changed", "graph_def", ", ".join(fields)))
    fields = field_parts(x.graph_def.library, y.graph_def.library, eq, skip=("function",))
    if fields:  # gradients
        out.append(_change(tags, "graph", "library-changed", "library", ", ".join(fields)))
    out += _library_changes(tags, x.graph_def, y.graph_def, eq)
    if x.HasField("object_graph_def") or y.HasField("object_graph_def"):
        out += _object_graph_changes(tags, x.object_graph_def, y.object_graph_def, eq)
    scope = "meta-graph"
    for key in sorted(set(x.collection_def) | set(y.collection_def)):
        cx, cy = x.collection_def.get(key), y.collection_def.get(key)
        if cy is None:
            out.append(_change(tags, scope, "collection-removed", key, key))
        elif cx is None:
            out.append(_change(tags, scope, "collection-added", key, key))
        elif not eq(cx, cy):
            out.append(_change(tags, scope, "collection-changed", key, _collection_text(cx, cy)))
    skip = ("graph_def", "object_graph_def", "signature_def", "collection_def", "meta_info_def")
    fields = field_parts(x, y, eq, skip=skip)
    fields += [
        f"meta_info_def.{f}" for f in field_parts(x.meta_info_def, y.meta_info_def, eq, skip=("tags",))
    ]
    if fields:
        out.append(_change(tags, scope, "meta-graph-changed", ",".join(tags), ", ".join(fields)))
    return out


def _collection_text(cx: CollectionDef, cy: CollectionDef) -> str:
    kind_x, kind_y = cx.WhichOneof("kind"), cy.WhichOneof("kind")
    if kind_x != kind_y or kind_x is None:
        return f"kind: {kind_x} -> {kind_y}"
    values_x, values_y = getattr(cx, kind_x).value, getattr(cy, kind_y).value
    if kind_x == "node_list" and len(values_x) == len(values_y) <= FEW:
        return f"{items_text(list(values_x))} -> {items_text(list(values_y))}"
    return f"{kind_x}: {len(values_x)} -> {len(values_y)} items, contents changed"


def matched_meta_graphs(
    a: Model, b: Model
) -> list[tuple[list[str], MetaGraphDef | None, MetaGraphDef | None]]:
    """Each tag set of either model (sorted), with its meta graph in `a` and in `b` (None if absent)."""
    metas_a = {frozenset(m.meta_info_def.tags): m for m in a.proto.meta_graphs}
    metas_b = {frozenset(m.meta_info_def.tags): m for m in b.proto.meta_graphs}
    return [
        (sorted(tags), metas_a.get(tags), metas_b.get(tags))
        for tags in sorted(metas_a.keys() | metas_b.keys(), key=sorted)
    ]


def graph_diff(a: ModelLike, b: ModelLike) -> list[GraphChange]:
    """Graph-level changes from model `a` to model `b`, for each meta graph in both (by tag set).

    Each `GraphChange` has the meta graph's `tags`, a `scope` (`graph` for the v1 graph,
    `function:NAME` for a function of the library, `object-graph`, `meta-graph` for collections,
    the saver and the rest), a `kind` (`node-added`, `node-changed`, `function-removed`,
    `arg-attr-changed`, ...), the `name` of what changed and a short `detail`. Meta graphs in one
    model only are `diff`'s to report; signatures are `diff`'s too.

    A lazily read model is compared without reading its large constants into memory.

    Example:
        >>> before = surgery.load("my_model")
        >>> after = surgery.set_dtype(surgery.load("my_model"), "fixed", "row", "float16")
        >>> [(c.scope, c.kind, c.name) for c in surgery.graph_diff(before, after)][:2]
        [('graph', 'node-changed', 'StatefulPartitionedCall'), ('graph', 'node-changed', 'fixed_row')]
    """
    a, b = as_model(a), as_model(b)
    eq = Equal(a, b, fingerprint64)  # this module's, looked up at each call: a caller may swap it
    out: list[GraphChange] = []
    for label, meta_a, meta_b in matched_meta_graphs(a, b):
        if meta_a is not None and meta_b is not None and meta_a is not meta_b:
            out += _meta_graph_changes(label, meta_a, meta_b, eq)
    return out
