"""`check`: do the places that define a signature agree?

Seed 002 lists five places a function's inputs are defined; a signature adds the v1 graph
(placeholders and the call node). Every check below compares two of them and reports a
`Finding` when they disagree. A model TensorFlow wrote has none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from surgery.io import Model
from surgery.schema import FunctionDef, MetaGraphDef, NodeDef, SavedObjectGraph
from surgery.signatures import (
    CALL_OPS,
    RESERVED_KEYS,
    Signature,
    TensorSpec,
    TF2Signature,
    called_function,
    flat_names,
    function_library,
    signature_map_node,
    tensor_names,
    tf2_signatures,
    user_keys,
    v1_signatures,
)
from surgery.tensors import dtype_name, shape_from_proto, split_tensor_name

if TYPE_CHECKING:
    from surgery.reports import CheckReport


class Disagreement(NamedTuple):
    """A `Finding`'s fields, without the report: what an edit's own check compares."""

    code: str
    tags: list[str]
    signature: str | None
    message: str


def check(model: Model) -> CheckReport:
    """Cross-check every meta graph of `model`: do all the places defining each signature agree?

    Returns a report, `ok` when clean, with one `Finding` per disagreement otherwise (code,
    tags, signature, message). A model TensorFlow wrote is clean.

    Example:
        >>> surgery.check(surgery.load("my_model"))
        CheckReport(ok=True, findings=[])
    """
    from surgery.reports import CheckReport, Finding

    findings = [Finding(**d._asdict()) for d in disagreements(model)]
    return CheckReport(ok=not findings, findings=findings)


def disagreements(model: Model) -> list[Disagreement]:
    """What `check(model)` reports, as plain records (no pydantic: the edit path builds no report)."""
    return [d for meta in model.proto.meta_graphs for d in check_meta_graph(meta)]


def check_meta_graph(meta: MetaGraphDef) -> list[Disagreement]:
    tags = list(meta.meta_info_def.tags)
    v1 = v1_signatures(meta)
    nodes = {node.name: node for node in meta.graph_def.node}
    findings = [Disagreement(c, tags, s, m) for c, s, m in _graph_references(meta, nodes)]
    tf2 = tf2_signatures(meta)
    if tf2 is not None:
        library = function_library(meta)
        problems = [
            *_object_graph_references(meta.object_graph_def, library),
            *_tf2_against_v1(v1, tf2),
            *_wrappers(tf2, library, v1),
            *_call_nodes(meta, v1, tf2, nodes),
        ]
        findings += [Disagreement(c, tags, s, m) for c, s, m in problems]
    return findings


Problem = tuple[str, str | None, str]


def _output_count(node: NodeDef) -> int | None:
    """How many outputs a node has, where the node says so itself."""
    tout = node.attr.get("Tout")
    if node.op in CALL_OPS and tout is not None:
        return len(tout.list.type)
    if node.op == "Placeholder":
        return 1
    return None


def _graph_references(meta: MetaGraphDef, nodes: dict[str, NodeDef]) -> Iterator[Problem]:
    """v1: every TensorInfo names a tensor of the graph; placeholders and call outputs agree."""
    for key, sig in sorted(meta.signature_def.items()):
        for side, infos in (("input", sig.inputs), ("output", sig.outputs)):
            for io_key, info in sorted(infos.items()):
                where = f"{side} {io_key!r}"
                for tensor in tensor_names(info):
                    node_name, index = split_tensor_name(tensor)
                    node = nodes.get(node_name)
                    if node is None:
                        yield "missing-tensor", key, f"{where}: tensor {tensor!r} names no node of the graph"
                        continue
                    count = _output_count(node)
                    if count is not None and index >= count:
                        yield (
                            "missing-tensor",
                            key,
                            f"{where}: {tensor!r} but {node_name} has {count} output(s)",
                        )
                        continue
                    if info.WhichOneof("encoding") != "name" or key in RESERVED_KEYS:
                        continue
                    yield from _tensor_agrees(
                        key, where, info.dtype, shape_from_proto(info.tensor_shape), node, index
                    )


def _tensor_agrees(
    key: str, where: str, dtype: int, shape: tuple[int, ...] | None, node: NodeDef, index: int
) -> Iterator[Problem]:
    if node.op == "Placeholder":
        declared_dtype = node.attr.get("dtype")
        if declared_dtype is not None and declared_dtype.type != dtype:
            yield (
                "placeholder-dtype",
                key,
                f"{where}: signature says {dtype_name(dtype)}, placeholder {node.name} is "
                f"{dtype_name(declared_dtype.type)}",
            )
        declared_shape = node.attr.get("shape")
        if declared_shape is not None:
            declared = shape_from_proto(declared_shape.shape)
            if declared != shape:
                yield (
                    "placeholder-shape",
                    key,
                    f"{where}: signature says shape {_fmt(shape)}, "
                    f"placeholder {node.name} has {_fmt(declared)}",
                )
    elif node.op in CALL_OPS and (tout := node.attr.get("Tout")) is not None:
        produced = tout.list.type[index]
        if produced != dtype:
            yield (
                "call-output-dtype",
                key,
                f"{where}: signature says {dtype_name(dtype)}, {node.name}:{index} is {dtype_name(produced)}",
            )


def _fmt(shape: tuple[int, ...] | list[int] | None) -> str:
    return "unknown rank" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _object_graph_references(graph: SavedObjectGraph, library: dict[str, FunctionDef]) -> Iterator[Problem]:
    """Node references stay inside the node list; named functions exist."""
    count = len(graph.nodes)
    for node_id, node in enumerate(graph.nodes):
        for ref in [*node.children, *node.dependencies]:
            if not 0 <= ref.node_id < count:
                yield (
                    "dangling-reference",
                    None,
                    f"object graph node {node_id} refers to node {ref.node_id} ({ref.local_name!r}) "
                    f"of {count}",
                )
        kind = node.WhichOneof("kind")
        names = []
        if kind == "function":
            names = list(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            names = [node.bare_concrete_function.concrete_function_name]
        for name in names:
            if name not in graph.concrete_functions:
                yield (
                    "missing-function",
                    None,
                    f"object graph node {node_id} names {name!r}, not in concrete_functions",
                )
            if name not in library:
                yield (
                    "missing-function",
                    None,
                    f"object graph node {node_id} names {name!r}, not in the function library",
                )
    for name, function in sorted(graph.concrete_functions.items()):
        if name not in library:
            yield "missing-function", None, f"concrete function {name!r} is not in the function library"
        for node_id in function.bound_inputs:
            if not 0 <= node_id < count:
                yield "dangling-reference", None, f"{name!r} binds node {node_id}, outside the {count} nodes"
    map_id = signature_map_node(graph)
    if map_id is not None and not 0 <= map_id < count:
        yield (
            "dangling-reference",
            None,
            f"the root's 'signatures' child is node {map_id}, outside the {count} nodes",
        )


def _tf2_against_v1(v1: dict[str, Signature], tf2: dict[str, TF2Signature]) -> Iterator[Problem]:
    v1_keys = set(user_keys(v1))
    tf2_keys = set(tf2)
    for key in sorted(v1_keys - tf2_keys):
        yield (
            "signature-keys",
            key,
            "in signature_def but not in the object graph's signature map (TF2 loader)",
        )
    for key in sorted(tf2_keys - v1_keys):
        yield (
            "signature-keys",
            key,
            "in the object graph's signature map but not in signature_def (v1 loader)",
        )
    for key in sorted(v1_keys & tf2_keys):
        ours, theirs = v1[key], tf2[key]
        if sorted(theirs.argument_keywords) != sorted(theirs.inputs):
            yield (
                "input-keys",
                key,
                f"argument_keywords {sorted(theirs.argument_keywords)} differ from the input TensorSpecs "
                f"{sorted(theirs.inputs)}",
            )
        for side, a, b in (("input", ours.inputs, theirs.inputs), ("output", ours.outputs, theirs.outputs)):
            yield from _compare_specs(key, side, a, b)


def _compare_specs(
    key: str, side: str, v1: dict[str, TensorSpec], tf2: dict[str, TensorSpec]
) -> Iterator[Problem]:
    for name in sorted(set(v1) - set(tf2)):
        yield f"{side}-keys", key, f"{side} {name!r} is in signature_def but not in the TF2 {side} signature"
    for name in sorted(set(tf2) - set(v1)):
        yield f"{side}-keys", key, f"{side} {name!r} is in the TF2 {side} signature but not in signature_def"
    for name in sorted(set(v1) & set(tf2)):
        a, b = v1[name], tf2[name]
        if _composite(a) or _composite(b):
            continue  # a SparseTensorSpec and a coo_sparse TensorInfo describe dtype and shape differently
        if a.dtype != b.dtype:
            yield (
                f"{side}-dtype",
                key,
                f"{side} {name!r}: signature_def says {a.dtype}, TF2 TensorSpec {b.dtype}",
            )
        if a.shape != b.shape:
            yield (
                f"{side}-shape",
                key,
                f"{side} {name!r}: signature_def says {_fmt(a.shape)}, TF2 TensorSpec {_fmt(b.shape)}",
            )


def _composite(spec: TensorSpec) -> bool:
    return spec.coo_sparse is not None or spec.components is not None or spec.type_spec is not None


def _wrappers(
    tf2: dict[str, TF2Signature], library: dict[str, FunctionDef], v1: dict[str, Signature]
) -> Iterator[Problem]:
    """The signature-wrapper FunctionDef takes the inputs and returns the outputs in sorted key order."""
    for key, sig in sorted(tf2.items()):
        function = library.get(sig.function)
        if function is None:
            continue
        args = function.signature.input_arg
        user = len(args) - len(sig.bound_inputs)
        inputs = v1[key].inputs if key in v1 else sig.inputs
        if user != len(inputs):
            yield (
                "wrapper-inputs",
                key,
                f"{sig.function} takes {user} input(s), the signature has {len(inputs)}",
            )
        else:
            for i, (name, spec) in enumerate(sorted(inputs.items())):
                if dtype_name(args[i].type) != spec.dtype:
                    yield (
                        "wrapper-inputs",
                        key,
                        f"{sig.function} argument {i} ({args[i].name}) is {dtype_name(args[i].type)}, input "
                        f"{name!r} is {spec.dtype}",
                    )
                arg_attrs = function.arg_attr.get(i)
                attrs = arg_attrs.attr if arg_attrs is not None else {}
                recorded = attrs.get("_output_shapes")
                if recorded is not None and recorded.list.shape:
                    shape = shape_from_proto(recorded.list.shape[0])
                    if (list(shape) if shape is not None else None) != spec.shape:
                        yield (
                            "wrapper-inputs",
                            key,
                            f"{sig.function} argument {i} ({args[i].name}) has shape {_fmt(shape)}, input "
                            f"{name!r} is {_fmt(spec.shape)}",
                        )
        if key not in v1:
            continue  # reported as signature-keys; only signature_def says how a composite flattens
        results = function.signature.output_arg
        outputs = v1[key].outputs
        count = sum(len(flat_names(spec)) for spec in outputs.values())
        if len(results) != count:
            yield (
                "wrapper-outputs",
                key,
                f"{sig.function} returns {len(results)} value(s), the signature has {count}"
                + (f" (its {len(outputs)} outputs flattened)" if count != len(outputs) else ""),
            )
            continue
        offset = 0
        for name, spec in sorted(outputs.items()):
            i = offset
            offset += len(flat_names(spec))
            if not _composite(spec) and dtype_name(results[i].type) != spec.dtype:
                yield (
                    "wrapper-outputs",
                    key,
                    f"{sig.function} result {i} is {dtype_name(results[i].type)}, "
                    f"output {name!r} is {spec.dtype}",
                )


def _call_nodes(
    meta: MetaGraphDef, v1: dict[str, Signature], tf2: dict[str, TF2Signature], nodes: dict[str, NodeDef]
) -> Iterator[Problem]:
    """The v1 graph's call node for a signature calls its TF2 wrapper, fed and read in key order."""
    for key in sorted(set(tf2) & set(v1)):
        outputs = sorted(v1[key].outputs.items())
        flat = [(name, tensor) for name, spec in outputs for tensor in flat_names(spec)]
        callers = {split_tensor_name(tensor)[0] for _, tensor in flat}
        if len(callers) != 1:
            continue
        node = nodes.get(callers.pop())
        if node is None or node.op not in CALL_OPS:
            continue
        called = called_function(node)
        if called != tf2[key].function:
            yield (
                "call-node",
                key,
                f"{node.name} calls {called!r}, the TF2 signature uses {tf2[key].function!r}",
            )
        for i, (name, tensor) in enumerate(flat):
            if split_tensor_name(tensor)[1] != i:
                yield (
                    "call-node",
                    key,
                    f"output {name!r} is {tensor}, but sorted key order puts it at {node.name}:{i}",
                )
        tin = node.attr.get("Tin")
        taken_types = list(tin.list.type) if tin is not None else []
        for i, feed in enumerate(node.input[: len(taken_types)]):
            source = nodes.get(split_tensor_name(feed)[0])
            if (
                source is None
                or source.op != "Placeholder"
                or (fed_dtype := source.attr.get("dtype")) is None
            ):
                continue
            fed, taken = fed_dtype.type, taken_types[i]
            if fed != taken:
                yield (
                    "call-input-dtype",
                    key,
                    f"{node.name} input {i} takes {dtype_name(taken)}, placeholder {source.name} is "
                    f"{dtype_name(fed)}",
                )
        feeds = [split_tensor_name(s.name)[0] for _, s in sorted(v1[key].inputs.items()) if s.name]
        if [split_tensor_name(i)[0] for i in node.input[: len(feeds)]] != feeds:
            yield (
                "call-node",
                key,
                f"{node.name} is fed {list(node.input[: len(feeds)])}, the sorted inputs are {feeds}",
            )
