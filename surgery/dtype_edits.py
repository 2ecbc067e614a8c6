"""The dtype edit: a signature tensor's dtype, changed with the `Cast` that keeps the model right.

An input takes the new dtype and is cast to the old one where it enters; an output is cast to
the new dtype where it leaves: in the signature's wrapper function for a TF2 model (both loaders
run it), in the v1 graph for a TF1 model. The casts are marked as set-dtype's (`INSERTED`), so
that a later set-dtype replaces or removes them and never touches a node the user put there.
Like every edit, it validates before it touches the model; a lossy cast warns with a
`SurgeryWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from surgery import tensor_values
from surgery.edits import TagSet
from surgery.errors import EditError, SurgeryWarning
from surgery.model import Model
from surgery.schema import AttrValue, DataType, FunctionDef, MetaGraphDef, NodeDef, TensorProto
from surgery.signatures import tensor_names
from surgery.storage.readwrite import accepts_path
from surgery.tensor_edits import (
    INSERTED,
    PLACEHOLDER_OPS,
    SignatureTensor,
    inserted_by,
    object_graph_spec,
    reroute,
    signature_tensors,
    unique_name,
)
from surgery.tensors import dtype_name, parse_dtype, split_tensor_name

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


def _v1_output_cast(tensor: SignatureTensor) -> NodeDef | None:
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


def _base_dtype(tensor: SignatureTensor, output: bool) -> DataType:
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


def _cast_wrapper_input(wrapper: FunctionDef, position: int, new: DataType, base: DataType) -> None:
    """The wrapper takes `new` at argument `position` and casts it to `base` before any use."""
    arg = wrapper.signature.input_arg[position]
    cast = _input_cast(wrapper, position)
    if cast is not None and new == base:
        reroute(wrapper, {f"{cast.name}:y:0"}, arg.name)
        wrapper.node_def.remove(cast)
    elif cast is not None:
        cast.attr["SrcT"].type = new
    else:
        taken = {n.name for n in wrapper.node_def} | {a.name for a in wrapper.signature.input_arg}
        cast_name = unique_name(f"{arg.name}_cast", taken)
        arg_attrs = wrapper.arg_attr.get(position)
        shapes = arg_attrs.attr.get("_output_shapes") if arg_attrs is not None else None
        reroute(wrapper, {arg.name, f"{arg.name}:0"}, f"{cast_name}:y:0")
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
        cast_name = unique_name(f"{arg.name}_cast", taken)
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

    tensor: SignatureTensor
    base: DataType
    default: tuple[NodeDef, TensorProto] | None  # an input's default Const and its converted value


@accepts_path
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
    tensors = signature_tensors(model, signature, key, output=output, tag_set=tag_set)
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


def _converted_default(
    tensor: SignatureTensor, dtype: DataType, what: str
) -> tuple[NodeDef, TensorProto] | None:
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


def _set_dtype_tf2(tensor: SignatureTensor, key: str, dtype: DataType, base: DataType, output: bool) -> None:
    parts = tensor.parts
    assert parts is not None and parts.call is not None and tensor.node is not None
    spec = object_graph_spec(parts, key, output)
    if spec is not None:
        spec.dtype = dtype
    call, attr = parts.call, "Tout" if output else "Tin"
    if output:
        _cast_wrapper_output(parts.wrapper, tensor.position, dtype, base)
    else:
        _cast_wrapper_input(parts.wrapper, tensor.position, dtype, base)
        tensor.node.attr["dtype"].type = dtype
    call.attr[attr].list.type[tensor.position] = dtype


def _validate_v1_cast(tensor: SignatureTensor, signature: str, key: str, output: bool, what: str) -> None:
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


def _set_dtype_v1_output(tensor: SignatureTensor, dtype: DataType, base: DataType) -> None:
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
        cast_name = unique_name(f"{node.name}_as_{dtype_name(dtype)}", taken)
        source = node.name if tensor.index == 0 else f"{node.name}:{tensor.index}"
        meta.graph_def.node.append(
            _cast_node(cast_name, source, base, dtype, _single_shape(node, tensor.index))
        )
        tensor.info.name = f"{cast_name}:0"


def _set_dtype_v1_input(tensor: SignatureTensor, dtype: DataType, base: DataType) -> None:
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
        cast_name = unique_name(f"{node.name}_as_{dtype_name(base)}", taken)
        for consumer, i in list(_consumers(meta, node.name, 0)):
            consumer.input[i] = cast_name
        meta.graph_def.node.append(_cast_node(cast_name, node.name, dtype, base, _single_shape(node, 0)))
    node.attr["dtype"].type = dtype
