"""What the validator checks of a node's inputs, in the v1 graph and in function bodies alike.

The v1 graph names a node's output `node:index` and a function body `node:output_arg:index` (or
an argument's name), so each reads an input its own way (`ScopeNodes.control_input` and
`data_input`, in `surgery.validate.graph` and `surgery.validate.body`); the rest is one walk:
data inputs before control inputs, each data input's dtype against what the op takes, their
count, a PlaceholderWithDefault's default, a call's `Tin`/`Tout` against its function's
signature, and the value of each constant something reads.
"""

from __future__ import annotations

from collections.abc import Iterable

from surgery.schema import DataType, NodeDef
from surgery.tensors import dtype_name
from surgery.validate.nodes import CALL, RUN_ONLY, Node, NodeChecker, Scope
from surgery.validate.registry import REF

_Source = tuple[str, NodeDef | None, int] | None
"""A PlaceholderWithDefault's input: its text, the node it reads (None: an argument), its dtype."""

_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})


def _types_compatible(expected: int, actual: int) -> bool:
    """TensorFlow's TypesCompatible: equal, or a ref output into a non-ref input of its base type."""
    return expected == actual or (expected < REF and actual - REF == expected)


def _fmt_types(types: Iterable[int]) -> str:
    return "[" + ", ".join(dtype_name(t) for t in types) + "]"


class ScopeNodes:
    """The nodes of one scope (the v1 graph or a function body), by name, and the checks of their
    inputs; a subclass reads an input as its scope names it."""

    def __init__(self, checker: NodeChecker, scope: Scope) -> None:
        self.checker = checker
        self.scope = scope
        self.nodes: dict[str, Node] = {}

    def control_input(self, node: NodeDef, text: str) -> None:
        """Reports what is wrong with a control input (`^name`)."""
        raise NotImplementedError

    def data_input(self, node: NodeDef, text: str) -> int | None:
        """A data input's dtype, reporting what does not resolve (None: unknown or reported)."""
        raise NotImplementedError

    def default_source(self, text: str) -> NodeDef | None:
        """The node a resolved data input reads (None: a function argument)."""
        raise NotImplementedError

    def inputs(self, info: Node) -> None:
        """A node's inputs: control inputs last, each data input resolved and typed, then their
        count and what the node's op wants of them."""
        scope, node, takes = self.scope, info.node, info.takes
        with_default = node.op == "PlaceholderWithDefault"
        data = 0
        seen_control = 0
        default: _Source = None
        for text in node.input:
            if text[:1] == "^":
                seen_control = seen_control or 1
                self.control_input(node, text)
                continue
            if seen_control == 1:
                seen_control = 2  # said once per node; the input still counts
                scope.add(
                    "input-order",
                    node.name,
                    f"data input {text!r} follows a control input, and TensorFlow wants data inputs first: "
                    "move the '^' inputs to the end",
                )
            position = data
            data += 1
            actual = self.data_input(node, text)
            if actual is None:
                continue
            if position == 0 and with_default:
                default = (text, self.default_source(text), actual)
            elif takes is not None and position < len(takes) and actual != takes[position]:
                self.edge(node, position, text, actual, takes[position])
        self.inputs_done(info, data, default)

    def edge(self, node: NodeDef, position: int, text: str, actual: int, expected: int) -> None:
        """A data edge: the graph importer takes a ref output into a non-ref input of its base type;
        function instantiation wants the types equal."""
        scope = self.scope
        if scope.function is None and _types_compatible(expected, actual):
            return
        scope.add(
            "edge-dtype",
            node.name,
            f"input {position} ({text!r}) is {dtype_name(actual)} where op {node.op!r} takes "
            f"{dtype_name(expected)}: feed it a {dtype_name(expected)} or change the node's type attrs",
        )

    def inputs_done(self, info: Node, data: int, default: _Source) -> None:
        """After a node's inputs: their count, a PlaceholderWithDefault's default, a call's types."""
        spec, node, takes = info.spec, info.node, info.takes
        if spec is None:
            return
        if takes is not None and data != len(takes):
            self.scope.add(
                "input-count",
                node.name,
                f"op {spec.name!r} takes {len(takes)} data input(s) {_fmt_types(takes)} as its attrs are "
                f"set, the node has {data}: fix the inputs, or the attrs that count them",
            )
        op = node.op
        if op == "PlaceholderWithDefault" and default is not None:
            self.placeholder_default(node, default)
        elif op in _CALL_OPS:
            self.call_types(node)

    def placeholder_default(self, node: NodeDef, default: tuple[str, NodeDef | None, int]) -> None:
        """A PlaceholderWithDefault's default agrees with its dtype and (a constant's) with its shape."""
        scope = self.scope
        text, source, actual = default
        dtype = node.attr.get("dtype")
        if dtype is None or dtype.WhichOneof("value") != "type":
            return
        if actual != dtype.type:
            scope.add(
                "placeholder-default",
                node.name,
                f"its default {text!r} is {dtype_name(actual)}, its dtype attr {dtype_name(dtype.type)}: "
                "make them agree",
            )
            return
        value = source.attr.get("value") if source is not None and source.op == "Const" else None
        shape = node.attr.get("shape")
        if value is None or shape is None or shape.shape.unknown_rank:
            return
        got = [d.size for d in value.tensor.tensor_shape.dim]
        want = [d.size for d in shape.shape.dim]
        if len(got) != len(want) or any(w >= 0 and g != w for g, w in zip(got, want, strict=True)):
            scope.add(
                "placeholder-default",
                node.name,
                f"its default {text!r} has shape {got}, its shape attr says {want}, which TensorFlow's "
                "shape inference refuses: make them agree",
            )

    def call_types(self, node: NodeDef) -> None:
        """A (Stateful)PartitionedCall's Tin and Tout are the types of the function it calls."""
        scope = self.scope
        f = node.attr.get("f")
        function = self.checker.library.get(f.func.name) if f is not None else None
        if function is None:
            return
        for attr_name, args, role in (
            ("Tin", function.signature.input_arg, "takes"),
            ("Tout", function.signature.output_arg, "returns"),
        ):
            recorded = node.attr.get(attr_name)
            wanted = [a.type for a in args]
            if recorded is None or DataType.DT_INVALID in wanted or any(a.number_attr for a in args):
                continue  # a polymorphic function: its types come with the call
            types = list(recorded.list.type)
            if types != wanted:
                scope.add(
                    "call-types",
                    node.name,
                    f"{attr_name} is {_fmt_types(types)} but function {function.signature.name!r} {role} "
                    f"{_fmt_types(wanted)}: make {attr_name} the function's types",
                    CALL if scope.function is not None else RUN_ONLY,
                )

    def read_constants(self) -> None:
        """What is wrong with the value of a constant something reads (`Node.unread`): TensorFlow
        reads a constant's value only where it is used (shape inference, the Const kernel)."""
        scope, nodes = self.scope, self.nodes
        for name in scope.consumed:
            info = nodes.get(name)
            if info is not None and info.unread is not None:
                scope.add("const-value", name, info.unread)
