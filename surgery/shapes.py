"""What the graph says about a new declared shape: fine, contradicted, or not verifiable.

TensorFlow records the shape it inferred for every node output when it traced the model
(`_output_shapes`), and the shapes of constants and variables. Following a signature input
from its placeholder or wrapper argument through the ops it feeds (into called functions too),
a small set of shape rules (elementwise broadcasting, MatMul, BiasAdd, Reshape to a constant,
reductions over constant axes) tells whether a new shape contradicts what the graph holds. An
op without a rule here ends the walk on that path, and the change is reported as unverified.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from surgery.errors import EditError
from surgery.lazy import is_hole
from surgery.schema import FunctionDef, MetaGraphDef, NodeDef
from surgery.signatures import CALL_OPS, called_function
from surgery.tensors import Shape, format_shape, shape_from_proto

Recorded = Shape | Literal[False]  # a shape TensorFlow recorded, or False where it recorded none

_PASS_THROUGH = frozenset(
    [
        "Identity",
        "StopGradient",
        "Cast",
        "Neg",
        "Abs",
        "Exp",
        "Log",
        "Log1p",
        "Sqrt",
        "Rsqrt",
        "Square",
        "Relu",
        "Relu6",
        "Elu",
        "Selu",
        "Softplus",
        "Sigmoid",
        "Tanh",
        "Sin",
        "Cos",
        "Floor",
        "Ceil",
        "Round",
        "Sign",
        "Reciprocal",
        "LogicalNot",
        "IsNan",
        "IsFinite",
        "ZerosLike",
        "OnesLike",
        "CheckNumerics",
        "EnsureShape",
    ]
)
_BROADCAST = frozenset(
    [
        "Add",
        "AddV2",
        "Sub",
        "Mul",
        "RealDiv",
        "Div",
        "DivNoNan",
        "FloorDiv",
        "FloorMod",
        "TruncateDiv",
        "Maximum",
        "Minimum",
        "Pow",
        "SquaredDifference",
        "Equal",
        "NotEqual",
        "Less",
        "LessEqual",
        "Greater",
        "GreaterEqual",
        "LogicalAnd",
        "LogicalOr",
        "BiasAddGrad",
    ]
)
_REDUCE = frozenset(["Sum", "Mean", "Prod", "Max", "Min", "All", "Any", "EuclideanNorm"])
_RANK_2 = frozenset(["MatMul"])
_RANK_4 = frozenset(["Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool", "FusedBatchNormV3"])


@dataclass
class Verdict:
    """Contradictions found (the change cannot be right) and ops the walk could not follow."""

    contradictions: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)


def compatible(a: Shape, b: Shape) -> bool:
    """Whether some tensor could have both shapes."""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x == y or x < 0 or y < 0 for x, y in zip(a, b, strict=True))


def more_specific(a: Shape, b: Shape) -> bool:
    """Whether every tensor of shape `a` also has shape `b` (`a` tightens `b`)."""
    if b is None:
        return True
    if a is None:
        return False
    return len(a) == len(b) and all(y < 0 or x == y for x, y in zip(a, b, strict=True))


class _Body:
    """A graph or function body: nodes by name and the shapes TensorFlow recorded for them."""

    def __init__(self, nodes: list[NodeDef], function: FunctionDef | None) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.function = function

    def consumers(self, source: str, index: int) -> Iterator[tuple[NodeDef, int]]:
        for node in self.nodes.values():
            for i, ref in enumerate(node.input):
                if not ref.startswith("^") and self.resolve(ref) == (source, index):
                    yield node, i

    def resolve(self, ref: str) -> tuple[str, int]:
        """(node or argument name, flat output index); function refs are `node:arg:i`."""
        parts = ref.split(":")
        if len(parts) == 1:
            return parts[0], 0
        if len(parts) == 2:
            return parts[0], int(parts[1]) if parts[1].isdigit() else 0
        # `node:arg:i` is output i of the named output arg: the flat index for ops with one.
        return parts[0], int(parts[2]) if parts[2].isdigit() else -1

    def recorded(self, ref: str) -> Recorded:
        """The recorded shape of a node input, or False when unknown."""
        name, index = self.resolve(ref)
        if self.function is not None:
            for i, arg in enumerate(self.function.signature.input_arg):
                if arg.name == name:
                    attrs = self.function.arg_attr.get(i)
                    recorded = attrs.attr.get("_output_shapes") if attrs is not None else None
                    if recorded is not None and recorded.list.shape:
                        return shape_from_proto(recorded.list.shape[0])
                    return False
        node = self.nodes.get(name)
        listed = node.attr.get("_output_shapes") if node is not None else None
        if node is None or index < 0 or listed is None:
            value = node.attr.get("value") if node is not None else None
            if node is not None and node.op == "Const" and index == 0 and value is not None:
                return shape_from_proto(value.tensor.tensor_shape)
            return False
        shapes = listed.list.shape
        return shape_from_proto(shapes[index]) if index < len(shapes) else False

    def const_ints(self, ref: str) -> list[int] | None:
        node = self.nodes.get(self.resolve(ref)[0])
        value = node.attr.get("value") if node is not None else None
        if node is None or node.op != "Const" or value is None:
            return None
        tensor = value.tensor
        values = list(tensor.int_val) or list(tensor.int64_val)
        if is_hole(tensor.tensor_content):
            return None  # a large constant left on disk: never a shape or an axis list
        if tensor.tensor_content:
            width = 8 if tensor.dtype == 9 else 4  # DT_INT64 else DT_INT32
            content = tensor.tensor_content
            values = [
                int.from_bytes(content[i : i + width], "little", signed=True)
                for i in range(0, len(content), width)
            ]
        dims = [d.size for d in tensor.tensor_shape.dim]
        if dims and len(values) == 1 and dims[0] > 1:
            values = values * dims[0]
        return values


def _bool_attr(node: NodeDef, name: str) -> bool:
    """A bool attr, False when absent: TensorFlow strips attrs that hold their default."""
    value = node.attr.get(name)
    return value is not None and value.b


def _broadcast(a: Shape, b: Shape) -> Shape | str:
    """The broadcast shape, or a message when the two cannot broadcast."""
    if a is None or b is None:
        return None
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x >= 0 and y >= 0 and x != y and 1 not in (x, y):
            return f"dims {x} and {y} cannot broadcast"
        out.append(y if x == 1 else x if y == 1 or x >= 0 else y)
    return tuple(reversed(out))


class _Walk:
    def __init__(self, meta: MetaGraphDef, verdict: Verdict) -> None:
        self.library = {f.signature.name: f for f in meta.graph_def.library.function}
        self.verdict = verdict
        self.seen: set[tuple[int, str, int]] = set()

    def follow(self, body: _Body, source: str, index: int, shape: Shape, depth: int = 0) -> None:
        """Check every consumer of `source:index`, which now has `shape`."""
        key = (id(body), source, index)
        if key in self.seen or depth > 64:
            return
        self.seen.add(key)
        for node, position in list(body.consumers(source, index)):
            self._node(body, node, position, shape, depth)

    def _fail(self, node: NodeDef, message: str) -> None:
        self.verdict.contradictions.append(f"{node.op} node {node.name!r} {message}")

    def _node(self, body: _Body, node: NodeDef, position: int, shape: Shape, depth: int) -> None:
        op = node.op
        rank = None if shape is None else len(shape)
        if op in _PASS_THROUGH:
            self.follow(body, node.name, 0, shape, depth + 1)
        elif op in _BROADCAST and len([i for i in node.input if not i.startswith("^")]) == 2:
            other_ref = node.input[1 - position]
            other = body.recorded(other_ref)
            if other is False or body.resolve(other_ref)[0] == body.resolve(node.input[position])[0]:
                self.verdict.unverified.append(op)
                return
            result = _broadcast(shape, other)
            if isinstance(result, str):
                self._fail(node, f"combines it with a tensor of shape {format_shape(other)}: {result}")
                return
            self.follow(body, node.name, 0, result, depth + 1)
        elif op == "BiasAdd" and position == 0:
            bias = body.recorded(node.input[1])
            if rank is not None and rank < 2:
                self._fail(node, "needs rank 2 or more")
            elif bias and shape and shape[-1] >= 0 and bias[0] >= 0 and shape[-1] != bias[0]:
                self._fail(node, f"adds a bias of {bias[0]} values to its last dim")
            else:
                self.follow(body, node.name, 0, shape, depth + 1)
        elif op in _RANK_2 | _RANK_4:
            needed = 2 if op in _RANK_2 else 4
            if rank is not None and rank != needed:
                self._fail(node, f"needs a rank-{needed} input, not rank {rank}")
            elif op == "MatMul":
                self._matmul(body, node, position, shape, depth)
            else:
                self.verdict.unverified.append(op)
        elif op == "Reshape" and position == 0:
            self._reshape(body, node, shape, depth)
        elif op in _REDUCE and position == 0:
            self._reduce(body, node, shape, depth)
        elif op in CALL_OPS and called_function(node) in self.library:
            callee = self.library[called_function(node)]
            if position < len(callee.signature.input_arg):
                inner = _Body(list(callee.node_def), callee)
                self.follow(inner, callee.signature.input_arg[position].name, 0, shape, depth + 1)
        elif op == "NoOp":
            return
        else:
            self.verdict.unverified.append(op)

    def _matmul(self, body: _Body, node: NodeDef, position: int, shape: Shape, depth: int) -> None:
        other = body.recorded(node.input[1 - position])
        if shape is None or other is False or other is None:
            self.verdict.unverified.append("MatMul")
            return
        a, b = (shape, other) if position == 0 else (other, shape)
        ta, tb = _bool_attr(node, "transpose_a"), _bool_attr(node, "transpose_b")
        inner_a, inner_b = a[0 if ta else 1], b[1 if tb else 0]
        if inner_a >= 0 and inner_b >= 0 and inner_a != inner_b:
            self._fail(
                node, f"multiplies it by a matrix of shape {format_shape(other)}: {inner_a} != {inner_b}"
            )
            return
        self.follow(body, node.name, 0, (a[1 if ta else 0], b[0 if tb else 1]), depth + 1)

    def _reshape(self, body: _Body, node: NodeDef, shape: Shape, depth: int) -> None:
        target = body.const_ints(node.input[1])
        if target is None or shape is None:
            self.verdict.unverified.append("Reshape")
            return
        known = [d for d in target if d >= 0]
        fixed = 1
        for d in known:
            fixed *= d
        if any(d < 0 for d in shape):
            if -1 not in target:
                self._fail(node, f"reshapes it to the constant shape {format_shape(tuple(target))}")
                return
            self.follow(body, node.name, 0, tuple(target), depth + 1)
            return
        total = 1
        for d in shape:
            total *= d
        if (-1 in target and (fixed == 0 or total % fixed)) or (-1 not in target and total != fixed):
            self._fail(node, f"cannot reshape {total} values to {format_shape(tuple(target))}")
            return
        resolved = tuple(total // fixed if d < 0 else d for d in target) if fixed else tuple(target)
        self.follow(body, node.name, 0, resolved, depth + 1)

    def _reduce(self, body: _Body, node: NodeDef, shape: Shape, depth: int) -> None:
        axes = body.const_ints(node.input[1])
        if axes is None or shape is None:
            self.verdict.unverified.append(node.op)
            return
        rank = len(shape)
        if any(not -rank <= a < rank for a in axes):
            self._fail(node, f"reduces over axis {axes} of a rank-{rank} tensor")
            return
        drop = {a % rank for a in axes}
        keep = _bool_attr(node, "keep_dims")
        out = tuple(1 if i in drop else d for i, d in enumerate(shape) if keep or i not in drop)
        self.follow(body, node.name, 0, out, depth + 1)


def check_shape_change(
    meta: MetaGraphDef,
    node: NodeDef | None,
    wrapper: FunctionDef | None,
    position: int,
    old: Shape,
    new: Shape,
    output: bool,
    recorded: Recorded,
) -> str | None:
    """A one-line note when the change is unverified; an EditError when the graph contradicts it.

    A tightening that agrees with the old shape needs no proof (every input it allows was
    allowed before); other input changes are walked through the graph; an output's new shape
    is compared with the shape TensorFlow recorded for the tensor that produces it.
    """
    if output:
        if recorded is False:
            return "only the declared shape changed (the graph records no shape to check it against)"
        if not compatible(recorded, new):
            raise EditError(
                f"the graph computes shape {format_shape(recorded)} for it, which contradicts "
                f"{format_shape(new)}; TensorFlow would refuse to load the model"
            )
        if more_specific(recorded, new):
            return None
        return (
            f"only the declared shape changed: the graph records {format_shape(recorded)}, "
            "and TensorFlow does not check outputs against the declaration"
        )
    if more_specific(new, old):
        return None
    verdict = Verdict()
    walk = _Walk(meta, verdict)
    if wrapper is not None:
        walk.follow(
            _Body(list(wrapper.node_def), wrapper), wrapper.signature.input_arg[position].name, 0, new
        )
    elif node is not None:
        walk.follow(_Body(list(meta.graph_def.node), None), node.name, 0, new)
    if verdict.contradictions:
        raise EditError(f"the graph contradicts shape {format_shape(new)}: {verdict.contradictions[0]}")
    if verdict.unverified:
        ops = ", ".join(sorted(set(verdict.unverified)))
        return (
            f"only the declared shape changed: its effect past {ops} could not be verified, "
            "TensorFlow checks it when the model runs"
        )
    return None
