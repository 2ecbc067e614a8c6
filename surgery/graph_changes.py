"""`graph_diff`: what differs between the graphs of two SavedModels.

It compares what runs (the v1 graph's nodes, the function library, the object graph, the rest of
each meta graph), so that an edit that leaves the signatures as they were but not the graph
still shows; signatures are `diff`'s.

A lazily read model has tokens where its large constants are (`surgery.lazy`): they are compared
by the bytes they stand for, by size first and then by FarmHash streamed from the file, and never
read into memory; two copies of one lazily read model (a --dry-run) share their tokens, so an
untouched constant is equal to itself without any read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from surgery.io import Model
from surgery.lazy import Piece, Span, encode_varint, fingerprint64, is_hole, size_of
from surgery.schema import (
    AttrValue,
    CollectionDef,
    FunctionDef,
    GraphDef,
    MetaGraphDef,
    NodeDef,
    SavedObject,
    SavedObjectGraph,
    StructuredValue,
    TensorShapeProto,
)
from surgery.signatures import (
    describe_structure,
)
from surgery.tensors import dtype_name, shape_from_proto

if TYPE_CHECKING:
    from surgery.reports import GraphChange
    from surgery_proto.tensorflow.core.framework.op_def_pb2 import OpDef
    from surgery_proto.tensorflow.core.framework.tensor_pb2 import TensorProto


class _GraphChange(NamedTuple):
    """A `GraphChange`'s fields, as `_Change` is to `Change`."""

    tags: list[str]
    scope: str
    kind: str
    name: str
    detail: str


# --- comparing messages whose large byte fields may be left on disk ------------------------------


class _Side:
    """One model's holes (None for a model read whole): sizes and hashes of the bytes they stand for."""

    def __init__(self, model: Model) -> None:
        self.holes = model.holes
        self._hashes: dict[Span, int] = {}

    def has_token(self, data: bytes) -> bool:
        return self.holes is not None and self.holes.prefix in data

    def pieces(self, data: bytes, message: Message) -> list[Piece]:
        """The serialization `data` of `message` as in the file: spans where the tokens are."""
        return [data] if self.holes is None else self.holes.expand(data, cast(Descriptor, message.DESCRIPTOR))

    def span(self, value: bytes) -> Span | None:
        """The field records a token stands for (None if `value` is not one of this model's tokens)."""
        if self.holes is None or not is_hole(value) or not value.startswith(self.holes.prefix):
            return None
        # A token is the prefix, the span's index in hex, and `>>` (see surgery.lazy).
        return self.holes.spans[int(value[len(self.holes.prefix) : -2], 16)]

    def span_hash(self, span: Span) -> int:
        if span not in self._hashes:
            self._hashes[span] = fingerprint64([[span]], self.holes)[0]
        return self._hashes[span]

    def stream_hash(self, pieces: Sequence[Piece]) -> int:
        return fingerprint64([pieces], self.holes)[0]


class Equal:
    """Equality of two messages, one from each model, by the bytes they would serialize to."""

    def __init__(self, a: Model, b: Model) -> None:
        self.a, self.b = _Side(a), _Side(b)
        self.shared = self.a.holes is not None and self.a.holes is self.b.holes

    def __call__(self, x: Message, y: Message) -> bool:
        if x == y:
            # Two loads never share a token (each has a random prefix): equal tokens are one span.
            return True
        data_x, data_y = x.SerializeToString(deterministic=True), y.SerializeToString(deterministic=True)
        if data_x == data_y:
            return True
        if not (self.a.has_token(data_x) or self.b.has_token(data_y)):
            return False
        return self._same_pieces(self.a.pieces(data_x, x), self.b.pieces(data_y, y))

    def _same_pieces(self, xs: list[Piece], ys: list[Piece]) -> bool:
        if size_of(xs) != size_of(ys):
            return False
        aligned = len(xs) == len(ys) and all(
            (x.length == y.length) if isinstance(x, Span) and isinstance(y, Span) else x == y
            for x, y in zip(xs, ys, strict=True)
        )
        if not aligned:  # one side read whole, or the constants moved: hash both streams
            return self.a.stream_hash(xs) == self.b.stream_hash(ys)
        for x, y in zip(xs, ys, strict=True):
            if isinstance(x, Span) and isinstance(y, Span):
                if self.shared and x == y:
                    continue
                if self.a.span_hash(x) != self.b.span_hash(y):
                    return False
        return True


# --- short texts for values ----------------------------------------------------------------------

_SHORT = 32  # a string or bytes value longer than this shows as its size
_FEW = 8  # a list longer than this shows as its length
_DETAIL_MAX = 300  # a structure described longer than this is cut


def _cut(text: str, limit: int = _DETAIL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _bytes_text(value: bytes) -> str:
    if len(value) <= _SHORT:
        try:
            return repr(value.decode("ascii"))
        except UnicodeDecodeError:
            pass
    return f"<{len(value)} bytes>"


def _shape_text(shape: TensorShapeProto) -> str:
    dims = shape_from_proto(shape)
    return "unknown-rank" if dims is None else "[" + ", ".join(map(str, dims)) + "]"


def _items_text(items: list[str]) -> str:
    if len(items) <= _FEW:
        return "[" + ", ".join(items) + "]"
    return "[" + ", ".join(items[:3]) + f", ... {len(items)} items]"


def _record_size(value_length: int) -> int:
    """The size of a bytes field record of number < 16 holding `value_length` bytes."""
    return 1 + len(encode_varint(value_length)) + value_length


def _value_length(record_size: int) -> int:
    """The inverse of `_record_size`: a token's span is the whole record."""
    for prefix in range(1, 11):
        if len(encode_varint(record_size - 1 - prefix)) == prefix:
            return record_size - 1 - prefix
    return record_size


def _tensor_text(tensor: TensorProto, side: _Side) -> str:
    """`tensor float32 [2, 3] <24 bytes>`, or its values when there are few and short ones."""
    head = f"tensor {dtype_name(tensor.dtype)} {_shape_text(tensor.tensor_shape)}"
    if tensor.tensor_content:
        span = side.span(tensor.tensor_content)
        size = _value_length(span.length) if span is not None else len(tensor.tensor_content)
        return f"{head} <{size} bytes>"
    if tensor.string_val:
        spans = [side.span(s) for s in tensor.string_val]
        if len(spans) <= 4 and all(
            s is None and len(v) <= _SHORT for s, v in zip(spans, tensor.string_val, strict=True)
        ):
            return f"{head} " + _items_text([_bytes_text(v) for v in tensor.string_val])
        # Records, not strings: a token stands for a run of them, and counting would read it. (A
        # hole is at least HOLE_MIN bytes: never the few short strings shown above.)
        size = sum(
            s.length if s is not None else _record_size(len(v))
            for s, v in zip(spans, tensor.string_val, strict=True)
        )
        return f"{head} <{size} bytes of strings>"
    for field, values in tensor.ListFields():
        if field.name.endswith("_val") and field.is_repeated:
            if field.message_type is not None:
                return f"{head} <{len(values)} {field.name}>"
            items = [repr(v) for v in values]
            return f"{head} " + (_items_text(items) if len(items) <= 4 else f"<{len(items)} values>")
    return head


def _attr_text(value: AttrValue, side: _Side) -> str:
    """A short text for an attr value: small values in full, large ones by size."""
    kind = value.WhichOneof("value")
    if kind == "s":
        return _bytes_text(value.s)
    if kind in ("i", "f"):
        return repr(getattr(value, kind))
    if kind == "b":
        return "true" if value.b else "false"
    if kind == "type":
        return dtype_name(value.type)
    if kind == "shape":
        return _shape_text(value.shape)
    if kind == "tensor":
        return _tensor_text(value.tensor, side)
    if kind == "func":
        return f"func {value.func.name}" + (f" ({len(value.func.attr)} attrs)" if value.func.attr else "")
    if kind == "placeholder":
        return f"${value.placeholder}"
    if kind == "list":
        return _items_text(_list_items(value.list, side))
    return "(unset)"


def _list_items(values: AttrValue.ListValue, side: _Side) -> list[str]:
    items: list[str] = []
    items += [_bytes_text(s) for s in values.s]
    items += [repr(i) for i in values.i]
    items += [repr(f) for f in values.f]
    items += ["true" if b else "false" for b in values.b]
    items += [dtype_name(t) for t in values.type]
    items += [_shape_text(s) for s in values.shape]
    items += [_tensor_text(t, side) for t in values.tensor]
    items += [f"func {f.name}" for f in values.func]
    return items


def _attr_change(key: str, x: AttrValue, y: AttrValue, eq: Equal) -> str:
    """`attr T: float32 -> float16`; a long list by the positions that differ."""
    text_x, text_y = _attr_text(x, eq.a), _attr_text(y, eq.b)
    if x.WhichOneof("value") == y.WhichOneof("value") == "list":
        items_x, items_y = _list_items(x.list, eq.a), _list_items(y.list, eq.b)
        if len(items_x) == len(items_y) > _FEW:
            moved = [
                f"#{i} {p} -> {q}" for i, (p, q) in enumerate(zip(items_x, items_y, strict=True)) if p != q
            ]
            if moved:
                more = f", +{len(moved) - 3} more" if len(moved) > 3 else ""
                return f"attr {key}: " + ", ".join(moved[:3]) + more + f" (of {len(items_x)})"
    if text_x == text_y:
        return f"attr {key}: {text_x}, contents changed"
    return f"attr {key}: {text_x} -> {text_y}"


def _attr_parts(x: Mapping[str, AttrValue], y: Mapping[str, AttrValue], eq: Equal) -> list[tuple[str, str]]:
    """(key, `+attr key: value` / `-attr key: value` / `attr key: old -> new`) for each attr that differs."""
    parts = []
    for key in sorted(set(x) | set(y)):
        if key not in y:
            parts.append((key, f"-attr {key}: {_attr_text(x[key], eq.a)}"))
        elif key not in x:
            parts.append((key, f"+attr {key}: {_attr_text(y[key], eq.b)}"))
        elif not eq(x[key], y[key]):
            parts.append((key, _attr_change(key, x[key], y[key], eq)))
    return parts


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
        return [f"inputs: {_items_text(list(x.input))} -> {_items_text(list(y.input))}"]
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
    parts += [text for _, text in _attr_parts(x.attr, y.attr, eq)]
    parts += _field_parts(x, y, eq, skip=("name", "op", "input", "device", "attr"))
    return parts or ["other fields changed"]


def _node_changes(
    tags: list[str], scope: str, nodes_a: Sequence[NodeDef], nodes_b: Sequence[NodeDef], eq: Equal
) -> list[_GraphChange]:
    """Nodes added, removed, renamed and changed, by name."""
    by_a = {n.name: n for n in nodes_a}
    by_b = {n.name: n for n in nodes_b}
    renamed = renamed_nodes(by_a, by_b, eq)
    new_names = set(renamed.values())

    def change(kind: str, name: str, detail: str) -> _GraphChange:
        return _GraphChange(tags=tags, scope=scope, kind=kind, name=name, detail=detail)

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


# --- other messages, field by field --------------------------------------------------------------


def _field_parts(x: Message, y: Message, eq: Equal, skip: Iterable[str] = ()) -> list[str]:
    """`debug_info changed`: the top-level fields of `x` and `y` that differ, but those in `skip`."""
    parts = []
    skipped = set(skip)
    for field in x.DESCRIPTOR.fields:
        if field.name in skipped:
            continue
        if not _same_field(
            cast(FieldDescriptor, field), getattr(x, field.name), getattr(y, field.name), x, y, eq
        ):
            parts.append(f"{field.name} changed")
    return parts


def _same_field(field: FieldDescriptor, vx: Any, vy: Any, x: Message, y: Message, eq: Equal) -> bool:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if set(vx) != set(vy):
            return False
        value_field = field.message_type.fields_by_name["value"]
        if value_field.message_type is None:
            return all(vx[k] == vy[k] for k in vx)
        return all(eq(vx[k], vy[k]) for k in vx)
    if field.is_repeated:
        if len(vx) != len(vy):
            return False
        if field.message_type is None:
            return list(vx) == list(vy)
        return all(eq(p, q) for p, q in zip(vx, vy, strict=True))
    if field.message_type is not None:
        if x.HasField(field.name) != y.HasField(field.name):
            return False
        return eq(vx, vy)
    return bool(vx == vy)


def _map_changes(
    tags: list[str], scope: str, kind: str, x: Mapping[str, str], y: Mapping[str, str]
) -> list[_GraphChange]:
    """Entries of a string map (a function's `ret`, `control_ret`) added, removed and changed."""
    out = []
    for key in sorted(set(x) | set(y)):
        if key not in y:
            out.append(_GraphChange(tags, scope, f"{kind}-removed", key, x[key]))
        elif key not in x:
            out.append(_GraphChange(tags, scope, f"{kind}-added", key, y[key]))
        elif x[key] != y[key]:
            out.append(_GraphChange(tags, scope, f"{kind}-changed", key, f"{x[key]} -> {y[key]}"))
    return out


# --- functions -----------------------------------------------------------------------------------


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
) -> list[_GraphChange]:
    """A function's arguments (or results) by position: added, removed, changed."""
    out = []
    for i in range(max(len(x), len(y))):
        if i >= len(y):
            detail = f"#{i} {x[i].name}: {_arg_type(x[i])}"
            out.append(_GraphChange(tags, scope, f"{kind}-removed", x[i].name, detail))
        elif i >= len(x):
            detail = f"#{i} {y[i].name}: {_arg_type(y[i])}"
            out.append(_GraphChange(tags, scope, f"{kind}-added", y[i].name, detail))
        elif not eq(x[i], y[i]):
            parts = [f"{x[i].name} -> {y[i].name}"] if x[i].name != y[i].name else []
            if _arg_type(x[i]) != _arg_type(y[i]):
                parts.append(f"{_arg_type(x[i])} -> {_arg_type(y[i])}")
            parts += _field_parts(x[i], y[i], eq, skip=("name", "type", "type_attr", "number_attr", "is_ref"))
            where = f"#{i} {y[i].name}:" if x[i].name == y[i].name else f"#{i}"
            detail = f"{where} " + ("; ".join(parts) if parts else "other fields changed")
            out.append(_GraphChange(tags, scope, f"{kind}-changed", y[i].name, detail))
    return out


def _function_changes(
    tags: list[str], name: str, x: FunctionDef, y: FunctionDef, eq: Equal
) -> list[_GraphChange]:
    """What changed in one function: its arguments and their attrs, results, attrs and nodes."""
    scope = f"function:{name}"
    sx, sy = x.signature, y.signature
    out = _arg_changes(tags, scope, "arg", sx.input_arg, sy.input_arg, eq)
    out += _arg_changes(tags, scope, "result", sx.output_arg, sy.output_arg, eq)
    fields = _field_parts(sx, sy, eq, skip=("input_arg", "output_arg"))
    if fields:
        out.append(_GraphChange(tags, scope, "signature-changed", name, ", ".join(fields)))
    for index in sorted(set(x.arg_attr) | set(y.arg_attr)):
        args = sy.input_arg if index < len(sy.input_arg) else sx.input_arg
        label = args[index].name if index < len(args) else f"#{index}"
        arg_x, arg_y = x.arg_attr.get(index), y.arg_attr.get(index)
        attrs_x = arg_x.attr if arg_x is not None else {}
        attrs_y = arg_y.attr if arg_y is not None else {}
        parts = [text for _, text in _attr_parts(attrs_x, attrs_y, eq)]
        if parts:
            out.append(_GraphChange(tags, scope, "arg-attr-changed", label, f"#{index} " + "; ".join(parts)))
    if dict(x.resource_arg_unique_id) != dict(y.resource_arg_unique_id):
        out.append(
            _GraphChange(tags, scope, "resource-arg-ids-changed", name, "resource_arg_unique_id changed")
        )
    out += _map_changes(tags, scope, "ret", x.ret, y.ret)
    out += _map_changes(tags, scope, "control-ret", x.control_ret, y.control_ret)
    for key, text in _attr_parts(x.attr, y.attr, eq):
        out.append(_GraphChange(tags, scope, "function-attr-changed", key, text))
    out += _node_changes(tags, scope, x.node_def, y.node_def, eq)
    if not out:
        out.append(_GraphChange(tags, scope, "function-changed", name, "other fields changed"))
    return out


def _library_changes(tags: list[str], x: GraphDef, y: GraphDef, eq: Equal) -> list[_GraphChange]:
    by_x = {f.signature.name: f for f in x.library.function}
    by_y = {f.signature.name: f for f in y.library.function}

    def size(function: FunctionDef) -> str:
        sig = function.signature
        return f"{len(sig.input_arg)} args, {len(sig.output_arg)} results, {len(function.node_def)} nodes"

    out = []
    for name in sorted(set(by_x) | set(by_y)):
        scope = f"function:{name}"
        if name not in by_y:
            out.append(_GraphChange(tags, scope, "function-removed", name, size(by_x[name])))
        elif name not in by_x:
            out.append(_GraphChange(tags, scope, "function-added", name, size(by_y[name])))
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
                    f"argument_keywords: {_items_text(list(bx.argument_keywords))} -> "
                    f"{_items_text(list(by.argument_keywords))}"
                )
        elif kind_x == "function":
            fx, fy = list(x.function.concrete_functions), list(y.function.concrete_functions)
            if fx != fy:
                specific.append(f"concrete_functions: {_items_text(fx)} -> {_items_text(fy)}")
        parts += specific or [f"{kind_x} changed"]
    parts += _field_parts(x, y, eq, skip=("children", "dependencies", kind_x or "", kind_y or ""))
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
    return [f"{label}: " + _cut(", ".join(items))]


def _object_graph_changes(
    tags: list[str], x: SavedObjectGraph, y: SavedObjectGraph, eq: Equal
) -> list[_GraphChange]:
    """Objects (by node id) and concrete functions (by name) added, removed or changed, coarsely."""
    scope = "object-graph"
    paths_x, paths_y = _object_paths(x), _object_paths(y)
    out = []
    for i in range(max(len(x.nodes), len(y.nodes))):
        if i >= len(y.nodes):
            label = paths_x.get(i, f"node {i}")
            out.append(
                _GraphChange(tags, scope, "object-removed", label, f"#{i} {x.nodes[i].WhichOneof('kind')}")
            )
        elif i >= len(x.nodes):
            label = paths_y.get(i, f"node {i}")
            out.append(
                _GraphChange(tags, scope, "object-added", label, f"#{i} {y.nodes[i].WhichOneof('kind')}")
            )
        elif not eq(x.nodes[i], y.nodes[i]):
            label = paths_y.get(i, paths_x.get(i, f"node {i}"))
            detail = f"#{i} " + "; ".join(_object_parts(x.nodes[i], y.nodes[i], eq))
            out.append(_GraphChange(tags, scope, "object-changed", label, detail))
    fx, fy = x.concrete_functions, y.concrete_functions
    for name in sorted(set(fx) | set(fy)):
        if name not in fy:
            out.append(_GraphChange(tags, scope, "concrete-function-removed", name, name))
        elif name not in fx:
            out.append(_GraphChange(tags, scope, "concrete-function-added", name, name))
        elif not eq(fx[name], fy[name]):
            cx, cy = fx[name], fy[name]
            parts = []
            for field, label in (
                ("canonicalized_input_signature", "inputs"),
                ("output_signature", "outputs"),
            ):
                parts += _structure_parts(label, getattr(cx, field), getattr(cy, field))
            parts += _field_parts(cx, cy, eq, skip=("canonicalized_input_signature", "output_signature"))
            out.append(
                _GraphChange(tags, scope, "concrete-function-changed", name, "; ".join(parts or ["changed"]))
            )
    return out


# --- a meta graph --------------------------------------------------------------------------------


def _meta_graph_changes(tags: list[str], x: MetaGraphDef, y: MetaGraphDef, eq: Equal) -> list[_GraphChange]:
    """Everything but the signatures (which `diff` compares): graph, functions, object graph, rest."""
    out = _node_changes(tags, "graph", x.graph_def.node, y.graph_def.node, eq)
    fields = _field_parts(x.graph_def, y.graph_def, eq, skip=("node", "library"))
    if fields:
        out.append(_GraphChange(tags, "graph", "graph-changed", "graph_def", ", ".join(fields)))
    fields = _field_parts(x.graph_def.library, y.graph_def.library, eq, skip=("function",))
    if fields:  # gradients
        out.append(_GraphChange(tags, "graph", "library-changed", "library", ", ".join(fields)))
    out += _library_changes(tags, x.graph_def, y.graph_def, eq)
    if x.HasField("object_graph_def") or y.HasField("object_graph_def"):
        out += _object_graph_changes(tags, x.object_graph_def, y.object_graph_def, eq)
    scope = "meta-graph"
    for key in sorted(set(x.collection_def) | set(y.collection_def)):
        cx, cy = x.collection_def.get(key), y.collection_def.get(key)
        if cy is None:
            out.append(_GraphChange(tags, scope, "collection-removed", key, key))
        elif cx is None:
            out.append(_GraphChange(tags, scope, "collection-added", key, key))
        elif not eq(cx, cy):
            out.append(_GraphChange(tags, scope, "collection-changed", key, _collection_text(cx, cy)))
    skip = ("graph_def", "object_graph_def", "signature_def", "collection_def", "meta_info_def")
    fields = _field_parts(x, y, eq, skip=skip)
    fields += [
        f"meta_info_def.{f}" for f in _field_parts(x.meta_info_def, y.meta_info_def, eq, skip=("tags",))
    ]
    if fields:
        out.append(_GraphChange(tags, scope, "meta-graph-changed", ",".join(tags), ", ".join(fields)))
    return out


def _collection_text(cx: CollectionDef, cy: CollectionDef) -> str:
    kind_x, kind_y = cx.WhichOneof("kind"), cy.WhichOneof("kind")
    if kind_x != kind_y or kind_x is None:
        return f"kind: {kind_x} -> {kind_y}"
    values_x, values_y = getattr(cx, kind_x).value, getattr(cy, kind_y).value
    if kind_x == "node_list" and len(values_x) == len(values_y) <= _FEW:
        return f"{_items_text(list(values_x))} -> {_items_text(list(values_y))}"
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


def graph_diff(a: Model, b: Model) -> list[GraphChange]:
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
    eq = Equal(a, b)
    out: list[_GraphChange] = []
    for label, meta_a, meta_b in matched_meta_graphs(a, b):
        if meta_a is not None and meta_b is not None and meta_a is not meta_b:
            out += _meta_graph_changes(label, meta_a, meta_b, eq)
    from surgery.reports import GraphChange

    return [GraphChange(**change._asdict()) for change in out]
