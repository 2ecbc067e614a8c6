"""Tensor edits: a signature tensor's shape, and a graph tensor's name; and what the tensor edits share.

Two of the edits users otherwise make by re-exporting with TensorFlow (an input's shape, an
input tensor's name), without it; the third, an output's type, is `surgery.dtype_edits`, which
finds the tensor it edits and marks the nodes it inserts with what is here (`signature_tensors`,
`INSERTED`). Like every edit, each function validates before it touches the model, so a refused
edit leaves it as it was. Warnings (a shape change whose effect on the graph cannot be verified)
are issued as `SurgeryWarning`s; the CLI prints them in one line.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

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
    FunctionDef,
    MetaGraphDef,
    NodeDef,
    SaverDef,
    TensorInfo,
    TensorShapeProto,
    TensorSpecProto,
    VariableDef,
    entry,
)
from surgery.shapes import Recorded, check_shape_change, more_specific
from surgery.signatures import input_order
from surgery.storage.readwrite import accepts_path
from surgery.tensors import (
    Shape,
    shape_from_proto,
    shape_to_proto,
    split_tensor_name,
    to_shape,
)
from surgery.validate.registry import args_dtypes, op_spec

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
class SignatureTensor:
    """One signature tensor in one meta graph, with every place that records it."""

    meta: MetaGraphDef
    info: TensorInfo
    node: NodeDef | None  # the v1 graph node producing (output) or feeding (input) the tensor
    index: int  # output index of `node`
    parts: SignatureParts | None  # the TF2 side; None for a TF1-style model
    position: int  # flat position among the signature's inputs or outputs (sorted keys)


def signature_tensors(
    model: Model, signature: str, key: str, *, output: bool, tag_set: TagSet | None
) -> list[SignatureTensor]:
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
        if parts is not None and object_graph_spec(parts, key, output) is None:
            raise EditError(
                f"{side} {key!r} of {signature!r} has no TensorSpec of its own in the object graph "
                "(part of a nested or composite structure): it cannot be edited on its own"
            )
        order = sorted(keys) if output else input_order(keys)
        found.append(SignatureTensor(meta, info, nodes[0] if nodes else None, index, parts, order.index(key)))
    return found


def object_graph_spec(parts: SignatureParts, key: str, output: bool) -> TensorSpecProto | None:
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


def unique_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_1`, `base_2`, ...: the first not in `taken` (a name for an inserted node)."""
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def reroute(wrapper: FunctionDef, refs: set[str], target: str) -> None:
    """Every use of one of `refs` in the wrapper's body and results reads `target` instead."""
    for node in wrapper.node_def:
        for i, ref in enumerate(node.input):
            if ref in refs:
                node.input[i] = target
    for name, ref in list(wrapper.ret.items()):
        if ref in refs:
            wrapper.ret[name] = target


# --- set-shape ---------------------------------------------------------------------------------


def _set_listed_shape(attrs: object, name: str, index: int, shape: TensorShapeProto) -> None:
    """Set entry `index` of a list-of-shapes attr (`_output_shapes`, `_input_shapes`) if present."""
    assert hasattr(attrs, "__contains__") and hasattr(attrs, "__getitem__")
    if name in attrs:
        shapes = attrs[name].list.shape
        if index < len(shapes):
            shapes[index].CopyFrom(shape)


def _wrapper_result(parts: SignatureParts, position: int) -> tuple[str, NodeDef | None]:
    """The wrapper's result `position`: its output arg name and the body node returning it."""
    name = parts.wrapper.signature.output_arg[position].name
    node_name = parts.wrapper.ret.get(name, "").split(":")[0]
    nodes = [n for n in parts.wrapper.node_def if n.name == node_name]
    return name, nodes[0] if nodes else None


@accepts_path
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
    tensors = signature_tensors(model, signature, key, output=output, tag_set=tag_set)
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
        spec = object_graph_spec(parts, key, output)
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
            old = old_shapes[id(tensor)]
            _ensure_shape(wrapper, tensor.position, proto, tighten=shape != old and more_specific(shape, old))
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
        name = unique_name(name, taken)
    reroute(wrapper, {arg.name, f"{arg.name}:0"}, f"{name}:output:0")
    node = NodeDef(name=name, op="EnsureShape", input=[arg.name])
    node.attr["shape"].shape.CopyFrom(shape)
    node.attr["T"].type = arg.type
    node.attr["_output_shapes"].list.shape.add().CopyFrom(shape)
    node.attr[INSERTED].s = b"set-shape"
    wrapper.node_def.append(node)


def _recorded_shape(tensor: SignatureTensor) -> Recorded:
    """The shape TensorFlow inferred for the tensor when it traced the model; False if not recorded."""
    listed = tensor.node.attr.get("_output_shapes") if tensor.node is not None else None
    if listed is None:
        return False
    shapes = listed.list.shape
    return shape_from_proto(shapes[tensor.index]) if tensor.index < len(shapes) else False


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


def _refuse_missing_output(node: NodeDef, tensor: str) -> None:
    """Refuse a tensor name whose output index the node does not have (as its op declares it)."""
    _, index = split_tensor_name(tensor)
    spec = op_spec(node.op)
    if spec is None or index == 0:
        return
    outputs = spec.fixed_outputs or args_dtypes(spec.outputs, node.attr, spec)
    if outputs is None:
        return
    count = sum(len(types) for types in outputs)
    if index >= count:
        raise EditError(
            f"node {node.name!r} ({node.op}) has {count} output(s): there is no tensor {tensor}; "
            f"rename {node.name}:0 (the index follows the node)"
        )


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


@accepts_path
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
        _refuse_missing_output(node, old)
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
