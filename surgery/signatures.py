"""Typed views of a signature as each loader sees it.

- The v1 side (TensorFlow Serving, the C++ and session loaders): `MetaGraphDef.signature_def`,
  whose `TensorInfo.name`s are fed and fetched in `graph_def`.
- The TF2 side (`tf.saved_model.load(...).signatures`): the object graph's signature map, one
  `SavedBareConcreteFunction` per key, its `SavedConcreteFunction` (input and output
  TensorSpecs, bound variables) and the signature-wrapper `FunctionDef` it names.

These are frozen dataclasses, read by `show`, `check`, `diff` and `explain` alike; they are
views of proto messages, not reports, so building them costs no validation (pydantic is for the
reports, `surgery.reports`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgery.schema import (
    FunctionDef,
    MetaGraphDef,
    NodeDef,
    SavedConcreteFunction,
    SavedObjectGraph,
    StructuredValue,
    TensorInfo,
    TensorShapeProto,
    TypeSpecProto,
)
from surgery.tensors import dtype_name, shape_from_proto, split_tensor_name
from surgery.wire import LENGTH, WireError, iter_fields

INIT_OP_KEY = "__saved_model_init_op"
TRAIN_OP_KEY = "__saved_model_train_op"
RESERVED_KEYS = (INIT_OP_KEY, TRAIN_OP_KEY)
CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
KERAS_METADATA = "keras_metadata.pb"


@dataclass(frozen=True, kw_only=True, slots=True)
class CooSparse:
    values_tensor_name: str
    indices_tensor_name: str
    dense_shape_tensor_name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TensorSpec:
    """A tensor as a signature declares it; `shape` is None for unknown rank, -1 an unknown dim."""

    name: str | None
    dtype: str
    shape: list[int] | None
    coo_sparse: CooSparse | None = None
    components: list[TensorSpec] | None = None
    type_spec: str | None = None
    """The TypeSpec class of a composite value in the object graph (`SparseTensorSpec`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Signature:
    """One `SignatureDef`: what TensorFlow Serving serves under its key."""

    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


@dataclass(frozen=True, kw_only=True, slots=True)
class BoundInput:
    node_id: int
    kind: str
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TF2Signature:
    """A signature as the TF2 loader sees it, through the object graph."""

    node_id: int
    function: str
    argument_keywords: list[str]
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    calls: list[str]
    bound_inputs: list[BoundInput]


@dataclass(frozen=True, kw_only=True, slots=True)
class ConcreteFunction:
    name: str
    inputs: str
    outputs: str
    bound_inputs: list[BoundInput]


@dataclass(frozen=True, kw_only=True, slots=True)
class SavedFunctionView:
    """A `tf.function` saved on an object: polymorphic when it has several concrete functions."""

    path: str
    concrete_functions: list[ConcreteFunction]


def tensor_spec(info: TensorInfo) -> TensorSpec:
    encoding = info.WhichOneof("encoding")
    coo = None
    components = None
    if encoding == "coo_sparse":
        coo = CooSparse(
            values_tensor_name=info.coo_sparse.values_tensor_name,
            indices_tensor_name=info.coo_sparse.indices_tensor_name,
            dense_shape_tensor_name=info.coo_sparse.dense_shape_tensor_name,
        )
    elif encoding == "composite_tensor":
        components = [tensor_spec(c) for c in info.composite_tensor.components]
    shape = shape_from_proto(info.tensor_shape)
    return TensorSpec(
        name=info.name if encoding == "name" else None,
        dtype=dtype_name(info.dtype),
        shape=None if shape is None else list(shape),
        coo_sparse=coo,
        components=components,
    )


def v1_signatures(meta: MetaGraphDef) -> dict[str, Signature]:
    """`signature_def`, keys sorted."""
    return {
        key: Signature(
            method_name=sig.method_name,
            inputs={k: tensor_spec(info) for k, info in sorted(sig.inputs.items())},
            outputs={k: tensor_spec(info) for k, info in sorted(sig.outputs.items())},
        )
        for key, sig in sorted(meta.signature_def.items())
    }


def tensor_names(info: TensorInfo) -> list[str]:
    """Every graph tensor a TensorInfo refers to (one, or the components of a composite)."""
    encoding = info.WhichOneof("encoding")
    if encoding == "name":
        return [info.name]
    if encoding == "coo_sparse":
        c = info.coo_sparse
        return [c.values_tensor_name, c.indices_tensor_name, c.dense_shape_tensor_name]
    if encoding == "composite_tensor":
        return [name for comp in info.composite_tensor.components for name in tensor_names(comp)]
    return []


def flat_names(spec: TensorSpec) -> list[str]:
    """The tensors of a v1 TensorSpec in the order a signature function flattens them.

    That is `tf.nest.flatten(expand_composites=True)` order: a SparseTensor (`coo_sparse`) gives
    indices, values, dense_shape; a `composite_tensor` its components in turn.
    """
    if spec.coo_sparse is not None:
        coo = spec.coo_sparse
        return [coo.indices_tensor_name, coo.values_tensor_name, coo.dense_shape_tensor_name]
    if spec.components is not None:
        return [name for component in spec.components for name in flat_names(component)]
    return [spec.name] if spec.name is not None else []


# --- the TF2 side ----------------------------------------------------------------------


def signature_map_node(graph: SavedObjectGraph) -> int | None:
    """The node id of the root's `signatures` child, if any."""
    if not graph.nodes:
        return None
    for child in graph.nodes[0].children:
        if child.local_name == "signatures":
            return child.node_id
    return None


def _spec_from_structure(value: StructuredValue, name: str) -> TensorSpec | None:
    kind = value.WhichOneof("kind")
    if kind == "type_spec_value":
        return _composite_spec(value.type_spec_value, name)
    if kind != "tensor_spec_value":
        return None
    spec = value.tensor_spec_value
    shape = shape_from_proto(spec.shape)
    return TensorSpec(
        name=spec.name or name, dtype=dtype_name(spec.dtype), shape=None if shape is None else list(shape)
    )


def _composite_spec(type_spec: TypeSpecProto, name: str) -> TensorSpec:
    """A composite TypeSpec (SparseTensorSpec, RaggedTensorSpec) as a TensorSpec: its first shape
    and dtype (for these, the value's) and its class."""
    state = type_spec.type_state.tuple_value.values
    shapes = [v.tensor_shape_value for v in state if v.WhichOneof("kind") == "tensor_shape_value"]
    dtypes = [v.tensor_dtype_value for v in state if v.WhichOneof("kind") == "tensor_dtype_value"]
    shape = shape_from_proto(shapes[0]) if shapes else None
    cls = type_spec.type_spec_class_name or TypeSpecProto.TypeSpecClass.Name(type_spec.type_spec_class)
    return TensorSpec(
        name=name,
        dtype=dtype_name(dtypes[0]) if dtypes else "invalid",
        shape=None if shape is None else list(shape),
        type_spec=cls,
    )


def _dict_specs(value: StructuredValue) -> dict[str, TensorSpec]:
    """The TensorSpecs of a StructuredValue dict, keys sorted."""
    if value.WhichOneof("kind") != "dict_value":
        return {}
    fields = value.dict_value.fields
    specs = {key: _spec_from_structure(fields[key], key) for key in sorted(fields)}
    return {key: spec for key, spec in specs.items() if spec is not None}


def signature_inputs(function: SavedConcreteFunction) -> dict[str, TensorSpec]:
    """The keyword TensorSpecs of a signature function's `canonicalized_input_signature` ((), {...})."""
    sig = function.canonicalized_input_signature
    if sig.WhichOneof("kind") != "tuple_value" or len(sig.tuple_value.values) != 2:
        return {}
    return _dict_specs(sig.tuple_value.values[1])


def signature_outputs(function: SavedConcreteFunction) -> dict[str, TensorSpec]:
    """The TensorSpecs of a signature function's `output_signature` dict."""
    return _dict_specs(function.output_signature)


def argument_name(key: str) -> str:
    """The name a TF2 signature function gives the argument for input `key`.

    `tf.function` keeps the letters, digits and `_` of a keyword (anything else becomes `_`) and
    prefixes `arg_` unless it starts with a letter: TF-Agents' `0/observation` is argument
    `arg_0_observation`. `signature_def` and the signature's `argument_keywords` keep the key;
    the TF2 input signature's dict, the function spec and the wrapper's argument order use this
    name, and a TF2 caller may pass either (the loaded function renames keywords the same way).
    """
    swapped = "".join(c if c.isalnum() else "_" for c in key)
    return swapped if swapped[:1].isalpha() else "arg_" + swapped


def input_order(keys: Iterable[str]) -> list[str]:
    """Input keys in the order of the signature-wrapper's arguments and the v1 call node's feeds:
    sorted by `argument_name`, which sorts `x.2` after `x_1` (as `x_2`)."""
    return sorted(keys, key=lambda key: (argument_name(key), key))


def function_library(meta: MetaGraphDef) -> dict[str, FunctionDef]:
    return {f.signature.name: f for f in meta.graph_def.library.function}


def _flat_sizes(value: StructuredValue) -> list[int] | None:
    """How many flat tensors each leaf of a structure stands for, in `tf.nest.flatten` order.

    A TensorSpec is one; a composite TypeSpec its `num_flat_components`; None, Python constants
    and the like none. None when a composite does not say how many components it has.
    """
    kind = value.WhichOneof("kind")
    if kind in ("tensor_spec_value", "bounded_tensor_spec_value"):
        return [1]
    if kind == "type_spec_value":
        count = value.type_spec_value.num_flat_components
        return [count] if count > 0 else None
    if kind in ("list_value", "tuple_value"):
        children = list(getattr(value, kind).values)
    elif kind == "dict_value":
        fields = value.dict_value.fields
        children = [fields[key] for key in sorted(fields)]
    elif kind == "named_tuple_value":
        children = [pair.value for pair in value.named_tuple_value.values]
    else:
        return []
    sizes: list[int] = []
    for child in children:
        child_sizes = _flat_sizes(child)
        if child_sizes is None:
            return None
        sizes += child_sizes
    return sizes


def _user_name_runs(function: FunctionDef, count: int) -> list[int]:
    """Sizes of the runs of the first `count` arguments that share a `_user_specified_name`.

    TensorFlow names every component of a composite argument after the argument; a function
    traced with a TensorSpec named like another argument would look like one composite too.
    """
    names = [user_specified_name(function, i) for i in range(min(count, len(function.signature.input_arg)))]
    sizes: list[int] = []
    start = 0
    while start < len(names):
        end = start + 1
        while end < len(names) and names[end] is not None and names[end] == names[start]:
            end += 1
        sizes.append(end - start)
        start = end
    return sizes


def composite_inputs(meta: MetaGraphDef, wrapper: FunctionDef, keys: Iterable[str]) -> list[list[str]]:
    """The composite inputs of a TF2 signature, each as its component keys in flatten order.

    A signature takes a SparseTensor `sp` as three dense inputs `sp`, `sp_1`, `sp_2` (indices,
    values, dense_shape); nothing in `signature_def` or the wrapper ties them together. The
    function the wrapper calls does: its SavedConcreteFunction's input signature holds the
    composite TypeSpecs (with `num_flat_components`) when the object graph has one, and else
    its arguments' shared `_user_specified_name`. The wrapper's arguments follow `input_order`.
    """
    sorted_keys = input_order(keys)
    args = wrapper.signature.input_arg
    key_of = {args[i].name: key for i, key in enumerate(sorted_keys) if i < len(args)}
    calls = [n for n in wrapper.node_def if n.op in CALL_OPS and "f" in n.attr]
    if len(calls) != 1:
        return []
    refs = [ref for ref in calls[0].input if not ref.startswith("^")]
    inner = called_function(calls[0])
    graph = meta.object_graph_def
    sizes: list[int] | None
    saved = graph.concrete_functions.get(inner)
    if saved is not None:
        sizes = _flat_sizes(saved.canonicalized_input_signature)
    else:
        library = function_library(meta)
        user = next((i for i, ref in enumerate(refs) if ref not in key_of), len(refs))
        sizes = _user_name_runs(library[inner], user) if inner in library else None
    if sizes is None or sum(sizes) > len(refs):
        return []
    groups = []
    offset = 0
    for size in sizes:
        block = refs[offset : offset + size]
        offset += size
        if size > 1 and all(ref in key_of for ref in block):
            groups.append([key_of[ref] for ref in block])
    return groups


def called_functions(function: FunctionDef) -> list[str]:
    """The functions a FunctionDef calls through (Stateful)PartitionedCall nodes."""
    return [called_function(n) for n in function.node_def if n.op in CALL_OPS and "f" in n.attr]


def call_node(
    meta: MetaGraphDef,
    outputs: Iterable[TensorSpec] = (),
    *,
    calling: str | None = None,
    nodes: Mapping[str, NodeDef] | None = None,
) -> NodeDef | None:
    """The v1 graph's call node of a signature: the (Stateful)PartitionedCall node through which
    the v1 loader runs the signature's function.

    TensorFlow writes one per TF2 signature, fed the signature's placeholders, its outputs the
    signature's output tensors (`StatefulPartitionedCall_1:0`), its `f` the signature-wrapper.
    It is found as the v1 loader reaches it: the one node every tensor of the signature's
    `outputs` (each composite's components too) is read from, if that node is a call node; None
    when they read no node, several, or another op (a TF1 signature, which runs the graph itself).
    `check` and `explain` find it so: `check` to verify what it calls, `explain` to show it.
    `nodes` is the graph by name, when the caller has it already.

    With `calling` (a signature-wrapper's name), `outputs` are not looked at: it is the first call
    node of the graph whose `f` names that function. An edit of the wrapper finds it so, since it
    must update the node that calls the wrapper (its feeds, `Tin`, `Tout`), whatever the outputs
    read. In a model TensorFlow wrote the two agree; they differ in a model `check` finds
    inconsistent (outputs read from a call node of another function) and for a signature without
    outputs, which has a call node by `calling` only.
    """
    if calling is not None:
        return next(
            (n for n in meta.graph_def.node if n.op in CALL_OPS and called_function(n) == calling), None
        )
    callers = {split_tensor_name(t)[0] for spec in outputs for t in flat_names(spec)}
    if len(callers) != 1:
        return None
    if nodes is None:
        nodes = {n.name: n for n in meta.graph_def.node}
    node = nodes.get(callers.pop())
    return node if node is not None and node.op in CALL_OPS else None


def called_function(node: NodeDef) -> str:
    """The function a call node names in its `f` attr, or "" when it names none."""
    f = node.attr.get("f")
    return f.func.name if f is not None else ""


def user_specified_name(function: FunctionDef, position: int) -> bytes | None:
    """The `_user_specified_name` TensorFlow recorded for argument `position`, if any."""
    attrs = function.arg_attr.get(position)
    name = attrs.attr.get("_user_specified_name") if attrs is not None else None
    return name.s if name is not None else None


def bound_inputs(graph: SavedObjectGraph, function: SavedConcreteFunction) -> list[BoundInput]:
    out = []
    for node_id in function.bound_inputs:
        if 0 <= node_id < len(graph.nodes):
            node = graph.nodes[node_id]
            kind = node.WhichOneof("kind") or "unknown"
            name = node.variable.name if kind == "variable" else ""
        else:
            kind, name = "missing", ""
        out.append(BoundInput(node_id=node_id, kind=kind, name=name))
    return out


def tf2_signatures(meta: MetaGraphDef) -> dict[str, TF2Signature] | None:
    """The TF2 loader's signatures; None for a model without an object graph (TF1)."""
    if not meta.HasField("object_graph_def"):
        return None
    graph = meta.object_graph_def
    map_id = signature_map_node(graph)
    if map_id is None or not 0 <= map_id < len(graph.nodes):
        return {}
    library = function_library(meta)
    out: dict[str, TF2Signature] = {}
    for child in sorted(graph.nodes[map_id].children, key=lambda c: c.local_name):
        if not 0 <= child.node_id < len(graph.nodes):
            continue
        node = graph.nodes[child.node_id]
        if node.WhichOneof("kind") != "bare_concrete_function":
            continue
        bare = node.bare_concrete_function
        name = bare.concrete_function_name
        saved = graph.concrete_functions.get(name) or SavedConcreteFunction()
        out[child.local_name] = TF2Signature(
            node_id=child.node_id,
            function=name,
            argument_keywords=list(bare.argument_keywords),
            inputs=signature_inputs(saved),
            outputs=signature_outputs(saved),
            calls=called_functions(library[name]) if name in library else [],
            bound_inputs=bound_inputs(graph, saved),
        )
    return out


def _py_shape(proto: TensorShapeProto) -> str:
    """A shape as TensorFlow prints it: `(None, 3)`, `(4,)`, `()`; `None` for unknown rank."""
    shape = shape_from_proto(proto)
    if shape is None:
        return "None"
    dims = ["None" if d < 0 else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def describe_structure(value: StructuredValue) -> str:
    """A Python-like rendering of a StructuredValue (TensorSpecs, tuples, dicts, ...)."""
    kind = value.WhichOneof("kind")
    if kind == "tensor_spec_value":
        spec = value.tensor_spec_value
        name = f", name={spec.name!r}" if spec.name else ""
        return f"TensorSpec(shape={_py_shape(spec.shape)}, dtype=tf.{dtype_name(spec.dtype)}{name})"
    if kind == "bounded_tensor_spec_value":
        bounded = value.bounded_tensor_spec_value
        return f"BoundedTensorSpec(dtype=tf.{dtype_name(bounded.dtype)})"
    if kind == "type_spec_value":
        type_spec = value.type_spec_value
        cls = TypeSpecProto.TypeSpecClass.Name(type_spec.type_spec_class)
        label = type_spec.type_spec_class_name or cls.removesuffix("_SPEC").title().replace("_", "") + "Spec"
        return f"{label}({describe_structure(type_spec.type_state)})"
    if kind in ("list_value", "tuple_value"):
        items = [describe_structure(v) for v in getattr(value, kind).values]
        if kind == "list_value":
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if kind == "dict_value":
        fields = value.dict_value.fields
        return "{" + ", ".join(f"{k!r}: {describe_structure(fields[k])}" for k in sorted(fields)) + "}"
    if kind == "named_tuple_value":
        nt = value.named_tuple_value
        return f"{nt.name}(" + ", ".join(f"{p.key}={describe_structure(p.value)}" for p in nt.values) + ")"
    if kind == "none_value" or kind is None:
        return "None"
    if kind == "tensor_dtype_value":
        return f"tf.{dtype_name(value.tensor_dtype_value)}"
    if kind == "tensor_shape_value":
        return _py_shape(value.tensor_shape_value)
    return repr(getattr(value, kind))


def _object_paths(graph: SavedObjectGraph) -> dict[int, str]:
    """A dotted path from the root for every reachable node (breadth first: shortest path)."""
    paths = {0: ""} if graph.nodes else {}
    queue = [0] if graph.nodes else []
    while queue:
        node_id = queue.pop(0)
        for child in graph.nodes[node_id].children:
            if 0 <= child.node_id < len(graph.nodes) and child.node_id not in paths:
                prefix = paths[node_id]
                paths[child.node_id] = f"{prefix}.{child.local_name}" if prefix else child.local_name
                queue.append(child.node_id)
    return paths


def saved_functions(meta: MetaGraphDef) -> list[SavedFunctionView]:
    """The `tf.function`s saved on objects, each with its concrete functions."""
    graph = meta.object_graph_def
    paths = _object_paths(graph)
    out = []
    for node_id, node in enumerate(graph.nodes):
        if node.WhichOneof("kind") != "function" or node_id not in paths:
            continue
        out.append(
            SavedFunctionView(
                path=paths[node_id],
                concrete_functions=[_concrete(graph, name) for name in node.function.concrete_functions],
            )
        )
    return sorted(out, key=lambda f: f.path)


def _concrete(graph: SavedObjectGraph, name: str) -> ConcreteFunction:
    saved = graph.concrete_functions.get(name) or SavedConcreteFunction()
    return ConcreteFunction(
        name=name,
        inputs=describe_structure(saved.canonicalized_input_signature),
        outputs=describe_structure(saved.output_signature),
        bound_inputs=bound_inputs(graph, saved),
    )


def user_keys(keys: Iterable[str]) -> list[str]:
    """Signature keys without the reserved init/train op keys."""
    return sorted(k for k in keys if k not in RESERVED_KEYS)


# --- Keras 2 (tf-keras) ----------------------------------------------------------------


def _layer_refs(value: Any) -> Iterable[str]:
    """Layer names in a Functional config's `input_layers`/`output_layers` ([name, node, tensor])."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        yield value[0]
    elif isinstance(value, list):
        for item in value:
            yield from _layer_refs(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _layer_refs(item)


def _save_spec_names(value: Any) -> Iterable[str]:
    """The names of the TensorSpecs in a serialized `full_save_spec` (what a re-save traces with)."""
    if isinstance(value, dict):
        if value.get("type_spec") == "tf.TensorSpec":
            items = (value.get("serialized") or {}).get("items") or []
            if len(items) == 3 and isinstance(items[2], str):
                yield items[2]
        for item in value.values():
            yield from _save_spec_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _save_spec_names(item)


def keras_io_names(model_dir: Path) -> tuple[set[str], set[str]] | None:
    """The input and output names of the Keras model a tf-keras `keras_metadata.pb` describes.

    The file is tf-keras's SavedMetadata (nodes = 1; each node_id = 2, node_path = 3,
    identifier = 4, metadata = 5, a JSON string), read with the wire reader. The root's
    metadata holds the model config that `tf_keras.models.load_model` rebuilds the model from:
    its input and output layers name the model's `input_names` and `output_names`, which a
    Keras re-save uses as serving_default's keys. None when there is no such file.
    """
    path = model_dir / KERAS_METADATA
    if not path.is_file():
        return None
    inputs: set[str] = set()
    outputs: set[str] = set()
    try:
        data = path.read_bytes()
        for number, wire_type, _, start, end in iter_fields(data, 0, len(data)):
            if number != 1 or wire_type != LENGTH:
                continue
            node = {n: data[s:e] for n, w, _, s, e in iter_fields(data, start, end) if w == LENGTH}
            if node.get(3) != b"root":
                continue
            metadata = json.loads(node.get(5, b"{}"))
            config = metadata.get("config") or {}
            inputs.update(_layer_refs(config.get("input_layers", [])))
            outputs.update(_layer_refs(config.get("output_layers", [])))
            layers = config.get("layers") or []
            if metadata.get("class_name") == "Sequential" and layers:
                inputs.update(
                    layer.get("config", {}).get("name", "")
                    for layer in layers
                    if layer.get("class_name") == "InputLayer"
                )
                outputs.add(layers[-1].get("config", {}).get("name", ""))
            inputs.update(_save_spec_names(metadata.get("full_save_spec")))
    except (OSError, WireError, ValueError, AttributeError, TypeError):
        pass  # unreadable: nothing can be said about the Keras names
    return inputs - {""}, outputs - {""}
