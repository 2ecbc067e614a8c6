"""Single corruptions of a SavedModel's graphs, for the validator agreement tier.

Each kind of corruption changes one node (or one function's `ret` or argument) of either the v1
graph (`meta_graph.graph_def.node`, scope `graph`) or a function body
(`graph_def.library.function[*]`, scope `function`), the way a broken tool or a hand edit would.
`corrupt(proto, kind, scope, rng)` lists every place in that scope where the kind applies, in
proto order, picks one with `rng` (a `random.Random`) and changes it in place: the same proto
and the same `Random` state always give the same corruption. It returns what it did, or None
when the kind applies nowhere in that scope.

Nothing here asks TensorFlow or the toolkit whether the result is valid: which attrs an op
requires or defaults, which values it allows and which ops compute their output type from one
attr are tables taken from TensorFlow 2.21's op registry for the ops the test models use
(REQUIRED_ATTRS, DEFAULTED, DISALLOWED, OUTPUT_TYPE_ATTR), independent of the toolkit's own copy
of the registry that the validator under test reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from surgery.schema import AttrValue, DataType, FunctionDef, NodeDef, SavedModel

GRAPH = "graph"
FUNCTION = "function"
SCOPES = (GRAPH, FUNCTION)

CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
UNKNOWN_OP = "SurgeryNoSuchOp"
UNKNOWN_FUNCTION = "surgery_no_such_function"
MISSING_NODE = "surgery_no_such_node"
UNDECLARED_ATTR = "surgery_undeclared"
OUT_OF_RANGE = 57
"""An output index no node of the test models has (the widest call node returns 40 values)."""

REQUIRED_ATTRS: dict[str, tuple[str, ...]] = {
    # Attrs without a default in the op's OpDef (TensorFlow 2.21): a NodeDef must have them.
    "Add": ("T",),
    "AddV2": ("T",),
    "AssignVariableOp": ("dtype",),
    "BiasAdd": ("T",),
    "Cast": ("SrcT", "DstT"),
    "ConcatV2": ("N", "T"),
    "Const": ("value", "dtype"),
    "Conv2D": ("T", "strides", "padding"),
    "ExpandDims": ("T",),
    "Fill": ("T",),
    "Identity": ("T",),
    "MatMul": ("T",),
    "MaxPool": ("ksize", "strides", "padding"),
    "Mean": ("T",),
    "Mul": ("T",),
    "Pack": ("N", "T"),
    "PartitionedCall": ("Tin", "Tout", "f"),
    "Placeholder": ("dtype",),
    "PlaceholderWithDefault": ("dtype", "shape"),
    "ReadVariableOp": ("dtype",),
    "RealDiv": ("T",),
    "Relu": ("T",),
    "Reshape": ("T",),
    "RestoreV2": ("dtypes",),
    "SaveV2": ("dtypes",),
    "Shape": ("T",),
    "Sigmoid": ("T",),
    "Slice": ("T", "Index"),
    "Softmax": ("T",),
    "StatefulPartitionedCall": ("Tin", "Tout", "f"),
    "StaticRegexFullMatch": ("pattern",),
    "StridedSlice": ("T", "Index"),
    "Sub": ("T",),
    "Sum": ("T",),
    "Tanh": ("T",),
    "Transpose": ("T",),
    "VarHandleOp": ("dtype", "shape"),
    "VariableV2": ("shape", "dtype"),
}

DEFAULTED: dict[str, tuple[str, ...]] = {
    # Attrs with a default in the op's OpDef (TensorFlow 2.21): a NodeDef may leave them out.
    "AssignVariableOp": ("validate_shape",),
    "BiasAdd": ("data_format",),
    "Cast": ("Truncate",),
    "ConcatV2": ("Tidx",),
    "Conv2D": ("use_cudnn_on_gpu", "explicit_paddings", "data_format", "dilations"),
    "ExpandDims": ("Tdim",),
    "Fill": ("index_type",),
    "MatMul": ("transpose_a", "transpose_b"),
    "MaxPool": ("T", "explicit_paddings", "data_format"),
    "Mean": ("keep_dims", "Tidx"),
    "MergeV2Checkpoints": ("delete_old_dirs", "allow_missing_files"),
    "Pack": ("axis",),
    "PartitionedCall": ("config", "config_proto", "executor_type"),
    "Placeholder": ("shape",),
    "Reshape": ("Tshape",),
    "Shape": ("out_type",),
    "Squeeze": ("squeeze_dims",),
    "StatefulPartitionedCall": ("config", "config_proto", "executor_type"),
    "StridedSlice": ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"),
    "StringJoin": ("separator",),
    "Sum": ("keep_dims", "Tidx"),
    "Transpose": ("Tperm",),
    "VarHandleOp": ("container", "shared_name", "allowed_devices"),
}

_NOT_BOOL = [
    *("Add", "AddV2", "BiasAdd", "Conv2D", "MatMul", "Mean", "Mul", "RealDiv", "Relu", "Sigmoid"),
    *("Softmax", "Sub", "Sum", "Tanh", "Maximum", "Minimum", "Neg", "Square", "Sqrt", "Rsqrt"),
    *("Greater", "Less"),
]
DISALLOWED: dict[str, list[tuple[str, AttrValue]]] = {}
"""op -> (attr, a value outside the attr's `allowed_values`) for ops of the test models."""
for _op in _NOT_BOOL:
    DISALLOWED.setdefault(_op, []).append(("T", AttrValue(type=DataType.DT_BOOL)))
for _op, _attr in [
    ("Reshape", "Tshape"),
    ("Transpose", "Tperm"),
    ("Slice", "Index"),
    ("StridedSlice", "Index"),
    ("Shape", "out_type"),
    ("ConcatV2", "Tidx"),
    ("ExpandDims", "Tdim"),
    ("Sum", "Tidx"),
    ("Mean", "Tidx"),
    ("Fill", "index_type"),
]:
    DISALLOWED.setdefault(_op, []).append((_attr, AttrValue(type=DataType.DT_FLOAT)))
for _op in ("BiasAdd", "Conv2D", "MaxPool"):
    DISALLOWED.setdefault(_op, []).append(("data_format", AttrValue(s=b"NXYZ")))
for _op in ("Conv2D", "MaxPool"):
    DISALLOWED[_op].append(("padding", AttrValue(s=b"BOGUS")))

OUTPUT_TYPE_ATTR: dict[str, tuple[str, str]] = {
    # op -> (the attr that alone gives output 0's type, output 0's name in a function body)
    "Cast": ("DstT", "y"),
    "Placeholder": ("dtype", "output"),
    "ReadVariableOp": ("dtype", "value"),
    "Shape": ("out_type", "output"),
}

MALFORMED_DEVICES = ("/device:CPU:x", "/job:localhost/replica:zero/task:0", "not a device")
GPU_DEVICE = "/device:GPU:0"


@dataclass(frozen=True)
class Body:
    """The v1 graph of a meta graph, or one function of its library."""

    meta: int
    nodes: Any  # the repeated NodeDef field
    function: FunctionDef | None = None

    @property
    def scope(self) -> str:
        return GRAPH if self.function is None else FUNCTION

    @property
    def where(self) -> str:
        meta = f"meta graph {self.meta}, " if self.meta else ""
        return meta + (
            "the v1 graph" if self.function is None else f"function {self.function.signature.name}"
        )

    def ref(self, node: NodeDef, output: str, index: int) -> str:
        """How a consumer in this body names output `index` of `node` (`output` its arg name)."""
        if self.function is None:
            return node.name if index == 0 else f"{node.name}:{index}"
        return f"{node.name}:{output}:{index}"


def bodies(proto: SavedModel, scope: str) -> list[Body]:
    found = []
    for meta_index, meta in enumerate(proto.meta_graphs):
        if scope == GRAPH:
            found.append(Body(meta_index, meta.graph_def.node))
        else:
            found += [Body(meta_index, f.node_def, f) for f in meta.graph_def.library.function]
    return found


@dataclass(frozen=True)
class Corruption:
    """What `corrupt` changed: its kind, scope, where (graph or function), node ("" for a
    function's ret, arguments or the function itself) and how."""

    kind: str
    scope: str
    where: str
    node: str
    detail: str

    def __str__(self) -> str:
        node = f", node {self.node}" if self.node else ""
        return f"{self.kind} in {self.where}{node}: {self.detail}"


Site = tuple[Body, NodeDef, Any]
"""A place a kind applies: the body, the node (or the function for ret and arg kinds), and
whatever else the kind needs (an attr name, an input position, ...)."""


def _data_inputs(node: NodeDef) -> list[int]:
    return [i for i, ref in enumerate(node.input) if not ref.startswith("^")]


def _type_name(dtype: int) -> str:
    return DataType.Name(dtype)


def _other_type(dtype: int) -> int:
    return DataType.DT_INT32 if dtype != DataType.DT_INT32 else DataType.DT_FLOAT


# --- the kinds: each lists its sites and changes one -----------------------------------------


def _attr_sites(internal: bool) -> Callable[[Body], Iterator[Site]]:
    def sites(body: Body) -> Iterator[Site]:
        for node in body.nodes:
            for name in sorted(node.attr):
                if name.startswith("_") == internal:
                    yield body, node, name

    return sites


def _clear_attr(site: Site, rng: random.Random) -> str:
    _, node, name = site
    node.attr[name].Clear()
    return f"attr {name} present with no value"


def _defaulted_sites(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        for name in DEFAULTED.get(node.op, ()):
            yield body, node, name


def _clear_defaulted(site: Site, rng: random.Random) -> str:
    _, node, name = site
    present = name in node.attr
    node.attr[name].Clear()
    return f"attr {name} (it has a default) present with no value" + ("" if present else ", added")


def _unknown_op_sites(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        yield body, node, None


def _unknown_op(site: Site, rng: random.Random) -> str:
    _, node, _ = site
    old, node.op = node.op, UNKNOWN_OP
    return f"op {old} -> {UNKNOWN_OP}"


def _wrong_type(site: Site, rng: random.Random) -> str:
    _, node, name = site
    value = node.attr[name]
    old = value.WhichOneof("value")
    if old == "i":
        value.s = b"3"
        return f"attr {name} (int) set as s: '3'"
    value.i = 3
    return f"attr {name} ({old}) set as i: 3"


def _declared_valued_sites(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        for name in sorted(node.attr):
            if not name.startswith("_") and node.attr[name].WhichOneof("value") is not None:
                yield body, node, name


def _required_sites(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        for name in REQUIRED_ATTRS.get(node.op, ()):
            if name in node.attr:
                yield body, node, name


def _remove_attr(site: Site, rng: random.Random) -> str:
    _, node, name = site
    del node.attr[name]
    return f"required attr {name} of {node.op} removed"


def _with_data_input(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        for position in _data_inputs(node):
            yield body, node, position


def _dangling_input(site: Site, rng: random.Random) -> str:
    body, node, position = site
    old = node.input[position]
    node.input[position] = MISSING_NODE if body.function is None else f"{MISSING_NODE}:output:0"
    return f"input {position} {old} -> {node.input[position]}"


def _nodes_with_data_inputs(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        if _data_inputs(node):
            yield body, node, None


def _extra_input(site: Site, rng: random.Random) -> str:
    _, node, _ = site
    last = _data_inputs(node)[-1]
    node.input.insert(last + 1, node.input[last])
    return f"data input {node.input[last]} repeated as input {last + 1} (one input too many)"


def _missing_input(site: Site, rng: random.Random) -> str:
    _, node, _ = site
    last = _data_inputs(node)[-1]
    old = node.input.pop(last)
    return f"last data input {old} (input {last}) removed"


def _edge_sites(body: Body) -> Iterator[Site]:
    """Producers whose output 0's type is one attr, consumed by a node of the same body."""
    producers: dict[str, NodeDef] = {}
    for node in body.nodes:
        if node.op in OUTPUT_TYPE_ATTR and OUTPUT_TYPE_ATTR[node.op][0] in node.attr:
            producers[body.ref(node, OUTPUT_TYPE_ATTR[node.op][1], 0)] = node
            if body.function is None:
                producers[f"{node.name}:0"] = node
    for consumer in body.nodes:
        for position in _data_inputs(consumer):
            producer = producers.get(consumer.input[position])
            if producer is not None:
                yield body, consumer, (position, producer)


def _edge_dtype(site: Site, rng: random.Random) -> str:
    _, _, (position, producer) = site
    attr = producer.attr[OUTPUT_TYPE_ATTR[producer.op][0]]
    old = attr.type
    if producer.op == "Shape":
        attr.type = DataType.DT_INT64 if old == DataType.DT_INT32 else DataType.DT_INT32
    else:
        attr.type = _other_type(old)
    return (
        f"producer {producer.name} ({producer.op}) of input {position} now gives {_type_name(attr.type)} "
        f"(was {_type_name(old)})"
    )


def _ret_sites(body: Body) -> Iterator[Site]:
    if body.function is not None:
        for key in sorted(body.function.ret):
            yield body, body.function, key


def _missing_ret(site: Site, rng: random.Random) -> str:
    _, function, key = site
    old = function.ret[key]
    function.ret[key] = f"{MISSING_NODE}:output:0"
    return f"ret {key!r}: {old} -> {function.ret[key]}"


def _duplicate(site: Site, rng: random.Random) -> str:
    body, node, _ = site
    body.nodes.add().CopyFrom(node)
    return f"a second node named {node.name} ({node.op}) appended"


def _index_sites(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        for position in _data_inputs(node):
            parts = node.input[position].split(":")
            if body.function is None or len(parts) == 3:
                yield body, node, position


def _index_out_of_range(site: Site, rng: random.Random) -> str:
    body, node, position = site
    old = node.input[position]
    parts = old.split(":")
    if body.function is None:
        node.input[position] = f"{parts[0]}:{OUT_OF_RANGE}"
    else:
        node.input[position] = f"{parts[0]}:{parts[1]}:{OUT_OF_RANGE}"
    return f"input {position} {old} -> {node.input[position]}"


def _control_sites(body: Body) -> Iterator[Site]:
    sources = [n.name for n in body.nodes if not n.input]
    for node in body.nodes:
        if not _data_inputs(node):
            continue
        controls = [ref for ref in node.input if ref.startswith("^")]
        if controls:
            yield body, node, controls[-1]
        elif other := [s for s in sources if s != node.name]:
            yield body, node, "^" + other[0]


def _control_first(site: Site, rng: random.Random) -> str:
    _, node, control = site
    if control in node.input:
        node.input.remove(control)
        node.input.insert(0, control)
        return f"control input {control} moved before the data inputs"
    node.input.insert(0, control)
    return f"control input {control} added before the data inputs"


def _call_sites(library: Callable[[Body], dict[str, FunctionDef]]) -> Callable[[Body], Iterator[Site]]:
    def sites(body: Body) -> Iterator[Site]:
        functions = library(body)
        for node in body.nodes:
            f = node.attr.get("f")
            if node.op in CALL_OPS and f is not None and f.func.name in functions:
                yield body, node, functions[f.func.name]

    return sites


def _call_mismatch(site: Site, rng: random.Random) -> str:
    _, node, callee = site
    variants = ["Tout appended"]
    if node.attr["Tin"].list.type:
        variants.append("Tin changed")
    if node.attr["Tout"].list.type:
        variants.append("Tout changed")
    variant = rng.choice(variants)
    if variant == "Tout appended":
        node.attr["Tout"].list.type.append(DataType.DT_FLOAT)
        return (
            f"Tout + [DT_FLOAT]: {callee.signature.name} returns {len(callee.signature.output_arg)} value(s)"
        )
    attr = "Tin" if variant == "Tin changed" else "Tout"
    types = node.attr[attr].list.type
    i = rng.randrange(len(types))
    old = types[i]
    types[i] = _other_type(old)
    return f"{attr}[{i}] {_type_name(old)} -> {_type_name(types[i])}, unlike {callee.signature.name}'s"


def _disallowed_sites(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        for name, value in DISALLOWED.get(node.op, []):
            yield body, node, (name, value)


def _disallowed(site: Site, rng: random.Random) -> str:
    _, node, (name, value) = site
    node.attr[name].CopyFrom(value)
    shown = _type_name(value.type) if value.WhichOneof("value") == "type" else repr(value.s.decode())
    return f"attr {name} of {node.op} = {shown}, outside its allowed values"


def _all_nodes(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        yield body, node, None


def _bad_device(site: Site, rng: random.Random) -> str:
    _, node, _ = site
    node.device = rng.choice(MALFORMED_DEVICES)
    return f"device {node.device!r}"


def _gpu_device(site: Site, rng: random.Random) -> str:
    _, node, _ = site
    node.device = GPU_DEVICE
    return f"device {GPU_DEVICE!r} (a machine without a GPU)"


def _undeclared_attr(site: Site, rng: random.Random) -> str:
    _, node, _ = site
    node.attr[UNDECLARED_ATTR].i = 1
    return f"attr {UNDECLARED_ATTR} (i: 1) added, not in {node.op}'s OpDef"


def _func_attr_sites(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        for name in sorted(node.attr):
            if node.attr[name].WhichOneof("value") == "func":
                yield body, node, name


def _unknown_function(site: Site, rng: random.Random) -> str:
    _, node, name = site
    old = node.attr[name].func.name
    node.attr[name].func.name = UNKNOWN_FUNCTION
    return f"attr {name} names {UNKNOWN_FUNCTION} (was {old}), not in the library"


def _arg_sites(body: Body) -> Iterator[Site]:
    if body.function is None:
        return
    signature = body.function.signature
    for side, args in (("input_arg", signature.input_arg), ("output_arg", signature.output_arg)):
        for i, arg in enumerate(args):
            if arg.type != DataType.DT_INVALID:
                yield body, body.function, (side, i)


def _arg_type(site: Site, rng: random.Random) -> str:
    _, function, (side, i) = site
    arg = getattr(function.signature, side)[i]
    old = arg.type
    arg.type = _other_type(old)
    return f"{side} {i} ({arg.name}) {_type_name(old)} -> {_type_name(arg.type)}"


def _output_shapes_sites(body: Body) -> Iterator[Site]:
    for node in body.nodes:
        recorded = node.attr.get("_output_shapes")
        if recorded is not None and recorded.list.shape:
            yield body, node, None


def _output_shapes_count(site: Site, rng: random.Random) -> str:
    _, node, _ = site
    shapes = node.attr["_output_shapes"].list.shape
    old = len(shapes)
    if rng.random() < 0.5:
        shapes.add().CopyFrom(shapes[0])
    else:
        del shapes[-1]
    return f"_output_shapes lists {len(shapes)} shape(s), was {old} (one per output)"


def _dangling_control(site: Site, rng: random.Random) -> str:
    _, node, _ = site
    node.input.append("^" + MISSING_NODE)
    return f"control input ^{MISSING_NODE} added"


def _external_names(proto: SavedModel, meta: int) -> bytes:
    """Everything of a meta graph outside its graph's nodes and library, serialized: a node name
    found in it is referred to from outside the body (a TensorInfo, the saver, a collection)."""
    copy = type(proto.meta_graphs[meta])()
    copy.CopyFrom(proto.meta_graphs[meta])
    copy.graph_def.Clear()
    return copy.SerializeToString()


def _rename_sites(proto: SavedModel) -> Callable[[Body], Iterator[Site]]:
    def sites(body: Body) -> Iterator[Site]:
        outside = _external_names(proto, body.meta) if body.function is None else b""
        for node in body.nodes:
            if node.name.encode() not in outside:
                yield body, node, None

    return sites


def _bad_node_name(site: Site, rng: random.Random) -> str:
    """Rename a node to a name TensorFlow's node-name syntax refuses, and every reference to it in
    its body (inputs, and a function's ret) with it."""
    body, node, _ = site
    old = node.name
    new = f"{old} bad name!"
    node.name = new
    for other in body.nodes:
        for i, ref in enumerate(other.input):
            bare = ref.removeprefix("^")
            if bare == old or bare.startswith(old + ":"):
                other.input[i] = ref[: len(ref) - len(bare)] + new + bare[len(old) :]
    if body.function is not None:
        for key, ref in body.function.ret.items():
            if ref == old or ref.startswith(old + ":"):
                body.function.ret[key] = new + ref[len(old) :]
    return f"renamed to {new!r} (and every reference in its body)"


def _library_sites(proto: SavedModel) -> Callable[[Body], Iterator[Site]]:
    def sites(body: Body) -> Iterator[Site]:
        if body.function is not None:
            yield body, body.function, proto.meta_graphs[body.meta].graph_def.library.function

    return sites


def _duplicate_function(site: Site, rng: random.Random) -> str:
    _, function, library = site
    library.add().CopyFrom(function)
    return f"a second function named {function.signature.name} appended to the library"


@dataclass(frozen=True)
class Kind:
    name: str
    scopes: tuple[str, ...]
    sites: Callable[[Body], Iterator[Site]]
    apply: Callable[[Site, random.Random], str]
    summary: str


def _library_of(proto: SavedModel) -> Callable[[Body], dict[str, FunctionDef]]:
    def library(body: Body) -> dict[str, FunctionDef]:
        return {f.signature.name: f for f in proto.meta_graphs[body.meta].graph_def.library.function}

    return library


def kinds(proto: SavedModel) -> dict[str, Kind]:
    """Every kind of corruption, by name (the call kinds look callees up in `proto`)."""
    both = SCOPES
    table = [
        Kind("empty-attr", both, _attr_sites(False), _clear_attr, "a declared attr present with no value"),
        Kind("empty-internal-attr", both, _attr_sites(True), _clear_attr, "a `_` attr present with no value"),
        Kind(
            "empty-default-attr",
            both,
            _defaulted_sites,
            _clear_defaulted,
            "an attr with a default present with no value",
        ),
        Kind("unknown-op", both, _unknown_op_sites, _unknown_op, "an op no registry has"),
        Kind("attr-wrong-type", both, _declared_valued_sites, _wrong_type, "an attr of the wrong type"),
        Kind("required-attr-removed", both, _required_sites, _remove_attr, "an attr without default removed"),
        Kind("dangling-input", both, _with_data_input, _dangling_input, "an input naming no node"),
        Kind("extra-input", both, _nodes_with_data_inputs, _extra_input, "one data input too many"),
        Kind("missing-input", both, _nodes_with_data_inputs, _missing_input, "one data input too few"),
        Kind("edge-dtype", both, _edge_sites, _edge_dtype, "an edge of a type the consumer does not take"),
        Kind("missing-ret", (FUNCTION,), _ret_sites, _missing_ret, "a function ret naming no node"),
        Kind("duplicate-name", both, _all_nodes, _duplicate, "two nodes with one name"),
        Kind("output-index", both, _index_sites, _index_out_of_range, "an output index out of range"),
        Kind("control-first", both, _control_sites, _control_first, "a control input before a data input"),
        Kind(
            "call-mismatch",
            both,
            _call_sites(_library_of(proto)),
            _call_mismatch,
            "a call node's Tin/Tout unlike its callee",
        ),
        Kind(
            "disallowed-value", both, _disallowed_sites, _disallowed, "an attr value outside allowed_values"
        ),
        Kind("bad-device", both, _all_nodes, _bad_device, "a malformed device string"),
        Kind("gpu-device", both, _all_nodes, _gpu_device, "a node pinned to a GPU the machine lacks"),
        Kind("undeclared-attr", both, _all_nodes, _undeclared_attr, "an attr the OpDef does not declare"),
        Kind("unknown-function", both, _func_attr_sites, _unknown_function, "a func attr naming no function"),
        Kind("arg-type", (FUNCTION,), _arg_sites, _arg_type, "a function argument's type changed"),
        Kind(
            "output-shapes-count",
            both,
            _output_shapes_sites,
            _output_shapes_count,
            "_output_shapes with one shape too many or too few",
        ),
        Kind("dangling-control", both, _all_nodes, _dangling_control, "a control input naming no node"),
        Kind("bad-node-name", both, _rename_sites(proto), _bad_node_name, "a node name TensorFlow refuses"),
        Kind(
            "duplicate-function",
            (FUNCTION,),
            _library_sites(proto),
            _duplicate_function,
            "two functions with one name",
        ),
    ]
    return {k.name: k for k in table}


KINDS = tuple(kinds(SavedModel()))
"""The kind names, in table order."""


def corrupt(proto: SavedModel, kind: str, scope: str, rng: random.Random) -> Corruption | None:
    """Apply one corruption of `kind` in `scope` to `proto`, at a place `rng` picks; None when
    the kind applies nowhere in that scope."""
    chosen = kinds(proto)[kind]
    if scope not in chosen.scopes:
        return None
    sites = [site for body in bodies(proto, scope) for site in chosen.sites(body)]
    if not sites:
        return None
    site = sites[rng.randrange(len(sites))]
    body, node, _ = site
    name = node.name if isinstance(node, NodeDef) else ""
    detail = chosen.apply(site, rng)
    return Corruption(kind, scope, body.where, name, detail)
