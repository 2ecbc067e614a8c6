"""Tensor edits: a signature tensor's shape or dtype, and a graph tensor's name.

The three edits users otherwise make by re-exporting with TensorFlow (an input's shape, an
input tensor's name, an output's type), without it. Like every edit, each function validates
before it touches the model, so a refused edit leaves it as it was. Warnings (a lossy cast, a
shape change whose effect on the graph cannot be verified) are issued as `SurgeryWarning`s; the
CLI prints them in one line.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from surgery import tensor_values
from surgery.edits import (
    SignatureParts,
    TagSet,
    meta_graphs_with,
    refuse_reserved,
    select_meta_graphs,
    signature_parts,
)
from surgery.errors import EditError, SurgeryWarning
from surgery.model import Model
from surgery.schema import (
    AttrValue,
    DataType,
    FunctionDef,
    MetaGraphDef,
    NodeDef,
    SaverDef,
    TensorInfo,
    TensorProto,
    TensorShapeProto,
    TensorSpecProto,
    VariableDef,
    entry,
)
from surgery.shapes import Recorded, check_shape_change, more_specific
from surgery.signatures import input_order, tensor_names
from surgery.tensors import (
    Shape,
    dtype_name,
    parse_dtype,
    shape_from_proto,
    shape_to_proto,
    split_tensor_name,
    to_shape,
)

PLACEHOLDER_OPS = ("Placeholder", "PlaceholderWithDefault")

INSERTED = "_surgery_inserted"
"""The attr that marks a node an edit inserted; its value names the edit.

TensorFlow ignores attrs whose names start with `_` and that the op does not declare, so the
mark changes nothing it computes. A later edit finds its own nodes by it, to replace or remove
them, and never touches a node the user put there.
"""


def inserted_by(node: NodeDef) -> str | None:
    """The edit that inserted `node`, or None for a node of the model's own."""
    mark = node.attr.get(INSERTED)
    return mark.s.decode() if mark is not None else None


@dataclass
class _Tensor:
    """One signature tensor in one meta graph, with every place that records it."""

    meta: MetaGraphDef
    info: TensorInfo
    node: NodeDef | None  # the v1 graph node producing (output) or feeding (input) the tensor
    index: int  # output index of `node`
    parts: SignatureParts | None  # the TF2 side; None for a TF1-style model
    position: int  # flat position among the signature's inputs or outputs (sorted keys)


def _tensors(
    model: Model, signature: str, key: str, *, output: bool, tag_set: TagSet | None
) -> list[_Tensor]:
    """Every meta graph's copy of tensor `key` of `signature`, or a one-line refusal."""
    refuse_reserved(signature)
    side = "output" if output else "input"
    found = []
    for meta in meta_graphs_with(model, signature, tag_set):
        keys = getattr(entry(meta.signature_def, signature), side + "s")
        if key not in keys:
            raise EditError(
                f"signature {signature!r} has no {side} {key!r}: it has {', '.join(sorted(keys)) or 'none'}"
            )
        info = keys[key]
        if info.WhichOneof("encoding") != "name":
            raise EditError(
                f"{side} {key!r} of {signature!r} is a composite tensor ({info.WhichOneof('encoding')}): "
                "only plain tensors can be edited this way"
            )
        node_name, index = split_tensor_name(info.name)
        nodes = [n for n in meta.graph_def.node if n.name == node_name]
        parts = signature_parts(meta, signature)
        if parts is not None and _tensor_spec(parts, key, output) is None:
            raise EditError(
                f"{side} {key!r} of {signature!r} has no TensorSpec of its own in the object graph "
                "(part of a nested or composite structure): it cannot be edited on its own"
            )
        order = sorted(keys) if output else input_order(keys)
        found.append(_Tensor(meta, info, nodes[0] if nodes else None, index, parts, order.index(key)))
    return found


def _set_listed_shape(attrs: object, name: str, index: int, shape: TensorShapeProto) -> None:
    """Set entry `index` of a list-of-shapes attr (`_output_shapes`, `_input_shapes`) if present."""
    assert hasattr(attrs, "__contains__") and hasattr(attrs, "__getitem__")
    if name in attrs:
        shapes = attrs[name].list.shape
        if index < len(shapes):
            shapes[index].CopyFrom(shape)


def _wrapper_arg(parts: SignatureParts, position: int) -> str:
    return parts.wrapper.signature.input_arg[position].name


def _wrapper_result(parts: SignatureParts, position: int) -> tuple[str, NodeDef | None]:
    """The wrapper's result `position`: its output arg name and the body node returning it."""
    name = parts.wrapper.signature.output_arg[position].name
    node_name = parts.wrapper.ret.get(name, "").split(":")[0]
    nodes = [n for n in parts.wrapper.node_def if n.name == node_name]
    return name, nodes[0] if nodes else None


def _tensor_spec(parts: SignatureParts, key: str, output: bool) -> TensorSpecProto | None:
    """The object graph's TensorSpec for input (or output) `key` of a signature function."""
    if output:
        fields = parts.concrete.output_signature.dict_value.fields
    else:
        values = parts.concrete.canonicalized_input_signature.tuple_value.values
        if len(values) != 2:
            return None
        fields = values[1].dict_value.fields
    if key not in fields or fields[key].WhichOneof("kind") != "tensor_spec_value":
        return None
    return fields[key].tensor_spec_value


# --- set-shape ---------------------------------------------------------------------------------


def set_shape(
    model: Model,
    signature: str,
    key: str,
    shape: Shape | Sequence[int | None] | str,
    *,
    output: bool = False,
    tag_set: TagSet | None = None,
) -> Model:
    """Declare `shape` for input (or output) `key` of `signature` everywhere it is recorded.

    Relaxing (a fixed batch to -1, a dim or the rank to unknown) and tightening are done in the
    `TensorInfo`, the placeholder's `shape` and `_output_shapes`, the wrapper function's argument
    attrs and the object graph's TensorSpecs. A change that the graph contradicts is refused;
    one whose effect cannot be verified is done with a warning.

    `shape` is a tuple or list of dims (-1 unknown), `None` for unknown rank, or the command
    line's text (`"-1,4"`, `"?,4"`, `"*"`).

    Example:
        >>> model = surgery.set_shape(surgery.load("my_model"), "fixed", "row", [-1, 4])
        >>> model.proto.meta_graphs[0].signature_def["fixed"].inputs["row"].tensor_shape.dim[0].size
        -1
        >>> surgery.set_shape(model, "fixed", "row", "-1,5")
        Traceback (most recent call last):
        ...
        surgery.errors.EditError: the graph contradicts shape (-1, 5): ...
    """
    shape = to_shape(shape)
    tensors = _tensors(model, signature, key, output=output, tag_set=tag_set)
    proto = shape_to_proto(shape)
    side = "output" if output else "input"
    notes: list[str] = []
    old_shapes = {id(t): shape_from_proto(t.info.tensor_shape) for t in tensors}
    for tensor in tensors:
        old = old_shapes[id(tensor)]
        wrapper = tensor.parts.wrapper if tensor.parts is not None else None
        note = check_shape_change(
            tensor.meta, tensor.node, wrapper, tensor.position, old, shape, output, _recorded_shape(tensor)
        )
        if note is not None:
            notes.append(note)
    for tensor in tensors:
        tensor.info.tensor_shape.CopyFrom(proto)
        node, parts = tensor.node, tensor.parts
        if node is not None:
            if not output and node.op in PLACEHOLDER_OPS:
                node.attr["shape"].shape.CopyFrom(proto)
            _set_listed_shape(node.attr, "_output_shapes", tensor.index, proto)
        if parts is None:
            continue
        spec = _tensor_spec(parts, key, output)
        if spec is not None:
            spec.shape.CopyFrom(proto)
        wrapper = parts.wrapper
        if output:
            _, result = _wrapper_result(parts, tensor.position)
            if result is not None:
                _set_listed_shape(result.attr, "_output_shapes", 0, proto)
        else:
            arg_attrs = wrapper.arg_attr.get(tensor.position)
            if arg_attrs is not None:
                _set_listed_shape(arg_attrs.attr, "_output_shapes", 0, proto)
            _set_listed_shape(wrapper.attr, "_input_shapes", tensor.position, proto)
            _ensure_shape(
                wrapper, tensor.position, proto, tighten=more_specific(shape, old_shapes[id(tensor)])
            )
    for note in dict.fromkeys(notes):
        warnings.warn(SurgeryWarning(f"{side} {key!r} of {signature!r}: {note}"), stacklevel=2)
    return model


def _ensure_shape(wrapper: FunctionDef, position: int, shape: TensorShapeProto, *, tighten: bool) -> None:
    """Make the TF2 signature function enforce a tightened input shape, as the v1 placeholder does.

    TensorFlow 2.21's `signatures[key](...)` does not check arguments against the TensorSpecs,
    so a tightened shape is enforced by an `EnsureShape` at the wrapper's argument (one per
    argument, updated by later edits).
    """
    arg = wrapper.signature.input_arg[position]
    name = f"{arg.name}_ensure_shape"
    existing = [n for n in wrapper.node_def if n.name == name and n.op == "EnsureShape"]
    if existing:
        existing[0].attr["shape"].shape.CopyFrom(shape)
        _set_listed_shape(existing[0].attr, "_output_shapes", 0, shape)
        return
    if not tighten:
        return
    taken = {n.name for n in wrapper.node_def} | {a.name for a in wrapper.signature.input_arg}
    if name in taken:
        name = _unique_name(name, taken)
    _reroute(wrapper, {arg.name, f"{arg.name}:0"}, f"{name}:output:0")
    node = NodeDef(name=name, op="EnsureShape", input=[arg.name])
    node.attr["shape"].shape.CopyFrom(shape)
    node.attr["T"].type = arg.type
    node.attr["_output_shapes"].list.shape.add().CopyFrom(shape)
    node.attr[INSERTED].s = b"set-shape"
    wrapper.node_def.append(node)


def _recorded_shape(tensor: _Tensor) -> Recorded:
    """The shape TensorFlow inferred for the tensor when it traced the model; False if not recorded."""
    listed = tensor.node.attr.get("_output_shapes") if tensor.node is not None else None
    if listed is None:
        return False
    shapes = listed.list.shape
    return shape_from_proto(shapes[tensor.index]) if tensor.index < len(shapes) else False


# --- set-dtype ---------------------------------------------------------------------------------

_FLOAT_MANTISSA = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}
_INT_BITS = {
    "int8": (7, True),
    "int16": (15, True),
    "int32": (31, True),
    "int64": (63, True),
    "uint8": (8, False),
    "uint16": (16, False),
    "uint32": (32, False),
    "uint64": (64, False),
}
_COMPLEX_PART = {"complex64": "float32", "complex128": "float64"}
CASTABLE = frozenset(["bool", *_FLOAT_MANTISSA, *_INT_BITS, *_COMPLEX_PART])


def _float_covers(wide: str, narrow: str) -> bool:
    """Every value of float type `narrow` is exact in float type `wide`."""
    if wide == narrow:
        return True
    if "bfloat16" in (wide, narrow):  # bfloat16 has float32's range and fewer mantissa bits
        return narrow == "bfloat16" and wide in ("float32", "float64")
    return _FLOAT_MANTISSA[wide] > _FLOAT_MANTISSA[narrow]


def cast_is_lossless(src: str, dst: str) -> bool:
    """Whether TensorFlow's Cast from `src` to `dst` keeps every value exactly."""
    if src == dst or src == "bool":
        return True
    if dst == "bool":
        return False
    if dst in _COMPLEX_PART:
        if src in _COMPLEX_PART:
            return _float_covers(_COMPLEX_PART[dst], _COMPLEX_PART[src])
        return cast_is_lossless(src, _COMPLEX_PART[dst])
    if src in _COMPLEX_PART:
        return False  # drops the imaginary part
    if src in _INT_BITS:
        bits, signed = _INT_BITS[src]
        if dst in _INT_BITS:
            dst_bits, dst_signed = _INT_BITS[dst]
            return not (signed and not dst_signed) and dst_bits >= bits
        return _FLOAT_MANTISSA[dst] >= bits
    if dst in _INT_BITS:
        return False  # a float to an integer truncates
    return _float_covers(dst, src)


def _check_castable(src: str, dst: str, what: str) -> None:
    for name in (src, dst):
        if name not in CASTABLE:
            raise EditError(
                f"{what}: TensorFlow's Cast cannot convert {src} to {dst}; "
                f"it converts between bool, integer, float and complex types only"
            )


def _unique_name(base: str, taken: set[str]) -> str:
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _type_attr(node: NodeDef, name: str) -> DataType:
    value = node.attr.get(name)
    return value.type if value is not None else DataType.DT_INVALID


def _cast_node(name: str, source: str, src: DataType, dst: DataType, shapes: AttrValue | None) -> NodeDef:
    node = NodeDef(name=name, op="Cast", input=[source])
    node.attr["SrcT"].type = src
    node.attr["DstT"].type = dst
    node.attr["Truncate"].b = False
    if shapes is not None:
        node.attr["_output_shapes"].CopyFrom(shapes)
    node.attr[INSERTED].s = b"set-dtype"
    return node


def _our_cast(node: NodeDef | None) -> NodeDef | None:
    """`node` if it is a Cast that set-dtype inserted."""
    if node is not None and node.op == "Cast" and inserted_by(node) == "set-dtype":
        return node
    return None


def _refs_to(nodes: Iterable[NodeDef], results: Iterable[str], name: str) -> int:
    """How many node inputs and function results read an output of node `name`."""
    refs = [*(ref.lstrip("^") for node in nodes for ref in node.input), *results]
    return sum(1 for ref in refs if ref == name or ref.startswith(name + ":"))


def _input_cast(wrapper: FunctionDef, position: int) -> NodeDef | None:
    """The Cast set-dtype put after the wrapper's argument `position`, if any."""
    arg = wrapper.signature.input_arg[position].name
    return next((n for n in wrapper.node_def if _our_cast(n) and list(n.input) == [arg]), None)


def _output_cast(wrapper: FunctionDef, position: int) -> NodeDef | None:
    """The Cast set-dtype put before the wrapper's result `position`, if only that result reads it."""
    source = wrapper.ret.get(wrapper.signature.output_arg[position].name, "")
    if not source.endswith(":y:0"):
        return None
    name = source[: -len(":y:0")]
    cast = _our_cast(next((n for n in wrapper.node_def if n.name == name), None))
    if cast is None or _refs_to(wrapper.node_def, wrapper.ret.values(), name) != 1:
        return None
    return cast


def _v1_input_cast(meta: MetaGraphDef, placeholder: str) -> NodeDef | None:
    """The Cast set-dtype put after a TF1 placeholder, if any."""
    feeds = ([placeholder], [f"{placeholder}:0"])
    return next((n for n in meta.graph_def.node if _our_cast(n) and list(n.input) in feeds), None)


def _v1_output_cast(tensor: _Tensor) -> NodeDef | None:
    """The Cast set-dtype put before a TF1 output, if nothing but that output reads it."""
    cast = _our_cast(tensor.node)
    if cast is None or tensor.index != 0 or _refs_to(tensor.meta.graph_def.node, (), cast.name):
        return None
    fetched = [
        name
        for sig in tensor.meta.signature_def.values()
        for side in (sig.inputs, sig.outputs)
        for info in side.values()
        for name in tensor_names(info)
        if split_tensor_name(name)[0] == cast.name
    ]
    return cast if len(fetched) == 1 else None


def _base_dtype(tensor: _Tensor, output: bool) -> DataType:
    """The tensor's dtype before set-dtype's own casts: setting it again removes them."""
    if tensor.parts is not None:
        wrapper = tensor.parts.wrapper
        cast = _output_cast(wrapper, tensor.position) if output else _input_cast(wrapper, tensor.position)
    elif output:
        cast = _v1_output_cast(tensor)
    else:
        cast = _v1_input_cast(tensor.meta, tensor.node.name) if tensor.node is not None else None
    if cast is None:
        return tensor.info.dtype
    return _type_attr(cast, "SrcT" if output else "DstT")


def _value_type(dtype: DataType) -> DataType:
    """The type a ref output (`float32_ref`, a TF1 variable's) holds: what a Cast of it reads."""
    name = dtype_name(dtype)
    return parse_dtype(name.removesuffix("_ref")) if name.endswith("_ref") else dtype


def _reroute(wrapper: FunctionDef, refs: set[str], target: str) -> None:
    """Every use of one of `refs` in the wrapper's body and results reads `target` instead."""
    for node in wrapper.node_def:
        for i, ref in enumerate(node.input):
            if ref in refs:
                node.input[i] = target
    for name, ref in list(wrapper.ret.items()):
        if ref in refs:
            wrapper.ret[name] = target


def _cast_wrapper_input(wrapper: FunctionDef, position: int, new: DataType, base: DataType) -> None:
    """The wrapper takes `new` at argument `position` and casts it to `base` before any use."""
    arg = wrapper.signature.input_arg[position]
    cast = _input_cast(wrapper, position)
    if cast is not None and new == base:
        _reroute(wrapper, {f"{cast.name}:y:0"}, arg.name)
        wrapper.node_def.remove(cast)
    elif cast is not None:
        cast.attr["SrcT"].type = new
    else:
        taken = {n.name for n in wrapper.node_def} | {a.name for a in wrapper.signature.input_arg}
        cast_name = _unique_name(f"{arg.name}_cast", taken)
        arg_attrs = wrapper.arg_attr.get(position)
        shapes = arg_attrs.attr.get("_output_shapes") if arg_attrs is not None else None
        _reroute(wrapper, {arg.name, f"{arg.name}:0"}, f"{cast_name}:y:0")
        wrapper.node_def.append(_cast_node(cast_name, arg.name, new, base, shapes))
    arg.type = new


def _cast_wrapper_output(wrapper: FunctionDef, position: int, new: DataType, base: DataType) -> None:
    """The wrapper's result `position` is cast from `base` to `new` on its way out."""
    arg = wrapper.signature.output_arg[position]
    cast = _output_cast(wrapper, position)
    if cast is not None and new == base:
        wrapper.ret[arg.name] = cast.input[0]
        wrapper.node_def.remove(cast)
    elif cast is not None:
        cast.attr["DstT"].type = new
    else:
        source = wrapper.ret.get(arg.name, "")
        taken = {n.name for n in wrapper.node_def} | {a.name for a in wrapper.signature.input_arg}
        cast_name = _unique_name(f"{arg.name}_cast", taken)
        producer = next((n for n in wrapper.node_def if n.name == source.split(":")[0]), None)
        shapes = producer.attr.get("_output_shapes") if producer is not None else None
        if shapes is not None and len(shapes.list.shape) > 1:
            index = int(source.rsplit(":", 1)[-1]) if source.count(":") == 2 else 0
            shapes = AttrValue(list=AttrValue.ListValue(shape=[shapes.list.shape[index]]))
        wrapper.node_def.append(_cast_node(cast_name, source, base, new, shapes))
        wrapper.ret[arg.name] = f"{cast_name}:y:0"
    arg.type = new


def _consumers(meta: MetaGraphDef, node: str, index: int) -> Iterator[tuple[NodeDef, int]]:
    """(node, input position) of every data input in the v1 graph that reads `node:index`."""
    refs = {f"{node}:{index}"} | ({node} if index == 0 else set())
    for consumer in meta.graph_def.node:
        for i, ref in enumerate(consumer.input):
            if ref in refs:
                yield consumer, i


def _other_signature_using(meta: MetaGraphDef, signature: str, key: str, tensor: str) -> str | None:
    """Another signature input or output that reads graph tensor `tensor` (`node` and `node:0` alike)."""
    wanted = split_tensor_name(tensor)
    for name, sig in meta.signature_def.items():
        for side in (sig.inputs, sig.outputs):
            for other_key, info in side.items():
                names = {split_tensor_name(n) for n in tensor_names(info)}
                if (name, other_key) != (signature, key) and wanted in names:
                    return f"{other_key!r} of signature {name!r}"
    return None


@dataclass
class _DtypePlan:
    """One tensor's dtype change, checked before anything is written."""

    tensor: _Tensor
    base: DataType
    default: tuple[NodeDef, TensorProto] | None  # an input's default Const and its converted value


def set_dtype(
    model: Model,
    signature: str,
    key: str,
    dtype: DataType | str,
    *,
    output: bool = False,
    tag_set: TagSet | None = None,
) -> Model:
    """Give input (or output) `key` of `signature` dtype `dtype`, inserting the `Cast` that keeps it right.

    An input takes the new dtype and is cast to the old one where it enters; an output is
    cast to the new dtype where it leaves. For a TF2 model the cast goes into the signature's
    wrapper function, which both loaders run; for a TF1 model into the v1 graph. An input with
    a constant default (`PlaceholderWithDefault`) gets its default converted, or the edit is
    refused when a default value would change. A Cast an earlier `set_dtype` inserted is
    replaced, and setting the original dtype again removes it.

    `dtype` is a name (`"float16"`, `"DT_HALF"`) or a `DataType` value. A lossy cast warns
    with a `SurgeryWarning`.

    Example:
        >>> model = surgery.set_dtype(surgery.load("my_model"), "preprocess", "x", "int64")
        >>> surgery.diff(surgery.load("my_model"), model)[0].detail
        'x: int32 -> int64'
    """
    if isinstance(dtype, str):
        dtype = parse_dtype(dtype)
    tensors = _tensors(model, signature, key, output=output, tag_set=tag_set)
    side = "output" if output else "input"
    what = f"{side} {key!r} of {signature!r}"
    new_name = dtype_name(dtype)
    plans: list[_DtypePlan] = []
    for tensor in tensors:
        if tensor.info.dtype == dtype:
            continue
        base = _value_type(_base_dtype(tensor, output))
        if dtype != base:
            src, dst = (dtype_name(base), new_name) if output else (new_name, dtype_name(base))
            _check_castable(src, dst, what)
        if tensor.node is None:
            raise EditError(f"{what}: tensor {tensor.info.name} is not in the graph; run check")
        if tensor.parts is None:
            _validate_v1_cast(tensor, signature, key, output, what)
        elif tensor.parts.call is None:
            raise EditError(f"{what}: no call node runs the signature's function; run check")
        default = None if output else _converted_default(tensor, dtype, what)
        plans.append(_DtypePlan(tensor, base, default))
    for plan in plans:
        src, dst = (dtype_name(plan.base), new_name) if output else (new_name, dtype_name(plan.base))
        if not cast_is_lossless(src, dst):
            warnings.warn(
                SurgeryWarning(f"{what}: the inserted Cast from {src} to {dst} can lose precision or range"),
                stacklevel=2,
            )
            break
    for plan in plans:
        tensor = plan.tensor
        tensor.info.dtype = dtype
        if plan.default is not None:
            const, value = plan.default
            const.attr["value"].tensor.CopyFrom(value)
            const.attr["dtype"].type = dtype
        if tensor.parts is not None:
            _set_dtype_tf2(tensor, key, dtype, plan.base, output)
        elif output:
            _set_dtype_v1_output(tensor, dtype, plan.base)
        else:
            _set_dtype_v1_input(tensor, dtype, plan.base)
    return model


def _converted_default(tensor: _Tensor, dtype: DataType, what: str) -> tuple[NodeDef, TensorProto] | None:
    """For an input with a default: its Const and the default in `dtype`, or a one-line refusal."""
    node = tensor.node
    if node is None or node.op != "PlaceholderWithDefault":
        return None
    feeds = [ref for ref in node.input if not ref.startswith("^")]
    source = split_tensor_name(feeds[0])[0] if feeds else ""
    const = next((n for n in tensor.meta.graph_def.node if n.name == source), None)
    value = const.attr.get("value") if const is not None else None
    if const is None or const.op != "Const" or value is None:
        op = const.op if const is not None else "missing"
        raise EditError(
            f"{what}: the default of {node.name} comes from a {op} node, not a constant, so its dtype "
            "cannot change with the input's"
        )
    if _refs_to(tensor.meta.graph_def.node, (), const.name) != 1:
        raise EditError(
            f"{what}: the default of {node.name} ({const.name}) is read by other nodes too, which would "
            "change dtype with it"
        )
    try:
        return const, tensor_values.converted(value.tensor, dtype)
    except tensor_values.Unconvertible as err:
        raise EditError(
            f"{what}: the default of {node.name} cannot become {dtype_name(dtype)}: {err}; "
            "choose a dtype that holds it"
        ) from None


def _set_dtype_tf2(tensor: _Tensor, key: str, dtype: DataType, base: DataType, output: bool) -> None:
    parts = tensor.parts
    assert parts is not None and parts.call is not None and tensor.node is not None
    spec = _tensor_spec(parts, key, output)
    if spec is not None:
        spec.dtype = dtype
    call, attr = parts.call, "Tout" if output else "Tin"
    if output:
        _cast_wrapper_output(parts.wrapper, tensor.position, dtype, base)
    else:
        _cast_wrapper_input(parts.wrapper, tensor.position, dtype, base)
        tensor.node.attr["dtype"].type = dtype
    call.attr[attr].list.type[tensor.position] = dtype


def _validate_v1_cast(tensor: _Tensor, signature: str, key: str, output: bool, what: str) -> None:
    assert tensor.node is not None
    if not output:
        if tensor.node.op not in PLACEHOLDER_OPS:
            raise EditError(
                f"{what}: {tensor.info.name} is fed to a {tensor.node.op} node, not a Placeholder; "
                "only a placeholder's dtype can be changed"
            )
        other = _other_signature_using(tensor.meta, signature, key, tensor.info.name)
        if other is not None:
            raise EditError(
                f"{what}: placeholder {tensor.node.name} also feeds {other}, which would change dtype too; "
                "change that signature's input with it in a plan"
            )


def _single_shape(node: NodeDef, index: int) -> AttrValue | None:
    """`_output_shapes` of output `index` of `node` alone, for a Cast of that output."""
    listed = node.attr.get("_output_shapes")
    if listed is None or index >= len(listed.list.shape):
        return None
    return AttrValue(list=AttrValue.ListValue(shape=[listed.list.shape[index]]))


def _set_dtype_v1_output(tensor: _Tensor, dtype: DataType, base: DataType) -> None:
    """A TF1 graph: the fetched tensor is cast, or set-dtype's own cast is changed or removed."""
    node, meta = tensor.node, tensor.meta
    assert node is not None
    cast = _v1_output_cast(tensor)
    if cast is not None and dtype == base:
        source, index = split_tensor_name(cast.input[0])
        tensor.info.name = f"{source}:{index}"
        meta.graph_def.node.remove(cast)
    elif cast is not None:
        cast.attr["DstT"].type = dtype
    else:
        taken = {n.name for n in meta.graph_def.node}
        cast_name = _unique_name(f"{node.name}_as_{dtype_name(dtype)}", taken)
        source = node.name if tensor.index == 0 else f"{node.name}:{tensor.index}"
        meta.graph_def.node.append(
            _cast_node(cast_name, source, base, dtype, _single_shape(node, tensor.index))
        )
        tensor.info.name = f"{cast_name}:0"


def _set_dtype_v1_input(tensor: _Tensor, dtype: DataType, base: DataType) -> None:
    """A TF1 graph: a Cast after the placeholder, or set-dtype's own cast changed or removed."""
    node, meta = tensor.node, tensor.meta
    assert node is not None
    cast = _v1_input_cast(meta, node.name)
    if cast is not None and dtype == base:
        for consumer, i in list(_consumers(meta, cast.name, 0)):
            consumer.input[i] = node.name
        meta.graph_def.node.remove(cast)
    elif cast is not None:
        cast.attr["SrcT"].type = dtype
    else:
        taken = {n.name for n in meta.graph_def.node}
        cast_name = _unique_name(f"{node.name}_as_{dtype_name(base)}", taken)
        for consumer, i in list(_consumers(meta, node.name, 0)):
            consumer.input[i] = cast_name
        meta.graph_def.node.append(_cast_node(cast_name, node.name, dtype, base, _single_shape(node, 0)))
    node.attr["dtype"].type = dtype


# --- rename-tensor -----------------------------------------------------------------------------

# tensorflow/python/framework/importer.py and ops.py: what TensorFlow accepts as a node name.
_VALID_NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$")


def _parse_rename(old: str, new: str) -> tuple[str, str]:
    old_node, old_index = split_tensor_name(old)
    new_node, new_index = split_tensor_name(new)
    if old_index != new_index:
        raise EditError(
            f"cannot rename {old} to {new}: a tensor keeps its output index; rename the node "
            f"({old_node} -> {new_node}) and the index follows"
        )
    if not _VALID_NODE_NAME.match(new_node):
        raise EditError(
            f"{new_node!r} is not a name TensorFlow accepts for a node: start with a letter, digit or '.', "
            "then letters, digits and _ . / \\ > -"
        )
    return old_node, new_node


def _rename_ref(ref: str, old: str, new: str) -> str:
    """A node input (`old`, `old:i`, `^old`) or tensor name pointing at node `old`, renamed."""
    control = ref.startswith("^")
    body = ref[1:] if control else ref
    node, sep, index = body.rpartition(":")
    if sep and index.isdigit() and node == old:
        return f"{'^' if control else ''}{new}:{index}"
    if body == old:
        return f"{'^' if control else ''}{new}"
    return ref


def _rename_info(info: TensorInfo, old: str, new: str) -> None:
    encoding = info.WhichOneof("encoding")
    if encoding == "name":
        info.name = _rename_ref(info.name, old, new)
    elif encoding == "coo_sparse":
        coo = info.coo_sparse
        coo.values_tensor_name = _rename_ref(coo.values_tensor_name, old, new)
        coo.indices_tensor_name = _rename_ref(coo.indices_tensor_name, old, new)
        coo.dense_shape_tensor_name = _rename_ref(coo.dense_shape_tensor_name, old, new)
    elif encoding == "composite_tensor":
        for component in info.composite_tensor.components:
            _rename_info(component, old, new)


def rename_tensor(model: Model, old: str, new: str, *, tag_set: TagSet | None = None) -> Model:
    """Rename graph tensor `old` (`input_x:0`, or the node `input_x`) to `new`, and every reference to it.

    Renames the node in the v1 graph of every meta graph that has it, and its references: node
    inputs (`name`, `name:i`, `^name`), colocation attrs, every `TensorInfo` of every signature
    (plain, `coo_sparse`, `composite_tensor`), `collection_def` and `saver_def`. In a TF2 model
    only a signature's placeholder can be renamed: the rest of its graph lives in functions.

    Example:
        >>> model = surgery.rename_tensor(surgery.load("my_model"), "serving_default_a:0", "images:0")
        >>> model.proto.meta_graphs[0].signature_def["serving_default"].inputs["a"].name
        'images:0'
    """
    old_node, new_node = _parse_rename(old, new)
    metas = [
        m for m in select_meta_graphs(model, tag_set) if any(n.name == old_node for n in m.graph_def.node)
    ]
    if not metas:
        raise EditError(
            f"no node {old_node!r} in the graph of any chosen meta graph: see show for tensor names"
        )
    if old_node == new_node:
        return model
    for meta in metas:
        if any(n.name == new_node for n in meta.graph_def.node):
            raise EditError(f"the graph already has a node {new_node!r}: choose another name")
        node = next(n for n in meta.graph_def.node if n.name == old_node)
        if meta.HasField("object_graph_def") and node.op not in PLACEHOLDER_OPS:
            raise EditError(
                f"{old_node!r} is a {node.op} node of a TF2 model: only signature placeholders can be "
                "renamed there (the rest of the model lives in functions that the TF2 loader rebuilds)"
            )
        blocked = _collections_refusal(meta, old_node)
        if blocked is not None:
            raise EditError(
                f"collection {blocked!r} refers to {old_node!r} inside serialized protos this tool cannot "
                "rewrite (control-flow contexts): rename it with TensorFlow instead"
            )
    colocation = (f"loc:@{old_node}".encode(), f"loc:@{new_node}".encode())
    for meta in metas:
        for node in meta.graph_def.node:
            if node.name == old_node:
                node.name = new_node
            for i, ref in enumerate(node.input):
                node.input[i] = _rename_ref(ref, old_node, new_node)
            colocated = node.attr.get("_class")
            if colocated is not None:
                values = colocated.list.s
                for i, value in enumerate(values):
                    if value == colocation[0]:
                        values[i] = colocation[1]
        for sig in meta.signature_def.values():
            for info in [*sig.inputs.values(), *sig.outputs.values()]:
                _rename_info(info, old_node, new_node)
        saver = meta.saver_def
        for field in ("filename_tensor_name", "save_tensor_name", "restore_op_name"):
            setattr(saver, field, _rename_ref(getattr(saver, field), old_node, new_node))
        _rename_in_collections(meta, old_node, new_node)
    return model


# Collections whose bytes_list entries are VariableDef protos (tf.compat.v1.GraphKeys).
_VARIABLE_COLLECTIONS = frozenset(
    [
        "variables",
        "trainable_variables",
        "local_variables",
        "model_variables",
        "moving_average_variables",
        "metric_variables",
        "global_step",
    ]
)


def _rename_in_collections(meta: MetaGraphDef, old: str, new: str) -> None:
    """Rename node `old` in `collection_def`: node lists, VariableDefs and SaverDefs."""
    for name, collection in meta.collection_def.items():
        kind = collection.WhichOneof("kind")
        if kind == "node_list":
            values = collection.node_list.value
            for i, ref in enumerate(values):
                values[i] = _rename_ref(ref, old, new)
        elif kind == "bytes_list":
            values_b = collection.bytes_list.value
            for i, data in enumerate(values_b):
                values_b[i] = _rename_serialized(name, data, old, new)


def _rename_serialized(collection: str, data: bytes, old: str, new: str) -> bytes:
    try:
        if collection in _VARIABLE_COLLECTIONS:
            variable = VariableDef.FromString(data)
            for field in ("variable_name", "initial_value_name", "initializer_name", "snapshot_name"):
                setattr(variable, field, _rename_ref(getattr(variable, field), old, new))
            return variable.SerializeToString(deterministic=True)
        if collection == "savers":
            saver = SaverDef.FromString(data)
            for field in ("filename_tensor_name", "save_tensor_name", "restore_op_name"):
                setattr(saver, field, _rename_ref(getattr(saver, field), old, new))
            return saver.SerializeToString(deterministic=True)
    except DecodeError:
        raise EditError(
            f"collection {collection!r} holds a value that does not parse: the model is corrupt; "
            "remove the collection or re-export the model"
        ) from None
    return data


def _collections_refusal(meta: MetaGraphDef, old: str) -> str | None:
    """A collection that refers to `old` in a form this module cannot rewrite (control-flow contexts)."""
    needle = old.encode()
    for name, collection in meta.collection_def.items():
        if collection.WhichOneof("kind") != "bytes_list" or name in _VARIABLE_COLLECTIONS | {"savers"}:
            continue
        if any(needle in data for data in collection.bytes_list.value):
            return name
    return None
