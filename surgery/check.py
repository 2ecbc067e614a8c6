"""`check`: do the places that define a signature agree?

A signature is defined in `signature_def`, the v1 graph (placeholders and the call node), the
signature-wrapper `FunctionDef` and the object graph (signature map, TensorSpecs). Every check
below compares two of them and reports a `Finding` when they disagree. A model TensorFlow wrote
has none.

Each code has one severity, from what TensorFlow 2.21 does with the disagreement (the tests in
`tests/test_check_severity.py` corrupt one place per code and load the result with the TF2 and v1
loaders):

- `error`: one of TensorFlow's loaders (`tf.saved_model.load(...).signatures[k]`, the v1 session
  loader, TensorFlow Serving's C++ `LoadSavedModel`) refuses the model or the signature, or the
  loaders compute different things for it.
- `warning`: TensorFlow ignores the place that disagrees, so every loader loads the model and
  computes the same; a client that reads that place (a TensorInfo's dtype or shape, say) is told
  something the graph does not do. TensorFlow Serving's own `saved_model_half_plus_three` declares
  its tf.Example regress input DT_FLOAT over a string placeholder, and Serving serves it.

`check` also runs the graph validator (`surgery.validate`): every node of the v1 graph and of every
function body against TensorFlow's op registry, as the loaders check them when they import the
graph; its findings name the function and node, and its codes follow the same severity rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING

from surgery.findings import Finding, Severity
from surgery.model import Model
from surgery.schema import FunctionDef, MetaGraphDef, NodeDef, SavedObject, SavedObjectGraph
from surgery.signatures import (
    CALL_OPS,
    RESERVED_KEYS,
    Signature,
    TensorSpec,
    TF2Signature,
    argument_name,
    call_node,
    called_function,
    flat_names,
    function_library,
    input_order,
    signature_map_node,
    tensor_names,
    tf2_signatures,
    user_keys,
    v1_signatures,
)
from surgery.storage.readwrite import accepts_path
from surgery.tensors import dtype_name, shape_from_proto, split_tensor_name
from surgery.validate import SEVERITIES as VALIDATOR_SEVERITIES
from surgery.validate import validate

if TYPE_CHECKING:
    from surgery.reports import CheckReport

SEVERITIES: dict[str, Severity] = {
    # A TensorInfo names a tensor the graph does not have: the v1 loader cannot feed or fetch it.
    "missing-tensor": "error",
    # A signature key only one loader has: the other refuses it.
    "signature-keys": "error",
    # An input or output key only one loader's signature has: the other refuses or omits it.
    "input-keys": "error",
    "output-keys": "error",
    # The object graph refers to a node or function that is not there: the TF2 loader fails.
    "dangling-reference": "error",
    "missing-function": "error",
    # The signature-wrapper takes or returns another number of values than the signature has.
    "wrapper-inputs": "error",
    "wrapper-outputs": "error",
    # The v1 call node calls another function, feeds or reads it out of order, or passes types
    # its function does not take or return: the v1 graph does not import, or computes otherwise.
    "call-node": "error",
    "call-input-dtype": "error",
    # A placeholder's shape contradicts its own `_output_shapes`: TensorFlow's importer refuses it.
    "placeholder-output-shapes": "error",
    # What the loaders ignore: TensorInfo dtypes and shapes (the v1 loader feeds and fetches by
    # name), the TF2 TensorSpecs, the wrapper's recorded argument shapes, and the signature's
    # `argument_keywords` (a TF2 caller may also use the TensorSpecs' keys).
    "placeholder-dtype": "warning",
    "placeholder-shape": "warning",
    "call-output-dtype": "warning",
    "input-dtype": "warning",
    "output-dtype": "warning",
    "input-shape": "warning",
    "output-shape": "warning",
    "wrapper-input-shape": "warning",
    "argument-keywords": "warning",
    # The graph validator's codes (surgery.validate): what TensorFlow's loaders refuse in a graph.
    **VALIDATOR_SEVERITIES,
}
"""Every finding code and its severity."""


@accepts_path
def check(model: Model, *, allow_ops: Collection[str] = ()) -> CheckReport:
    """Cross-check every meta graph of `model`: do all the places defining each signature agree,
    and does every node of its graph and functions validate as TensorFlow's loaders require?

    Returns a report with one `Finding` per disagreement (code, severity, tags, signature,
    message, and for the graph validator's findings the function and node), and the number of
    each severity: `ok` when there is no error (warnings are what TensorFlow ignores). A model
    TensorFlow wrote has no finding. `allow_ops`: ops a custom-op library registers on the
    serving side, accepted as they are.

    Example:
        >>> surgery.check(surgery.load("my_model"))
        CheckReport(ok=True, errors=0, warnings=0, findings=[])
    """
    from surgery.reports import CheckReport

    findings = disagreements(model, allow_ops=allow_ops)
    counts = Counter(f.severity for f in findings)
    return CheckReport(
        ok=not counts["error"], errors=counts["error"], warnings=counts["warning"], findings=findings
    )


def disagreements(model: Model, *, allow_ops: Collection[str] = ()) -> list[Finding]:
    """The findings `check(model)` reports, without the report (no pydantic: an edit builds none)."""
    return [d for meta in model.proto.meta_graphs for d in check_meta_graph(meta, allow_ops=allow_ops)]


def check_meta_graph(meta: MetaGraphDef, *, allow_ops: Collection[str] = ()) -> list[Finding]:
    """The findings of one meta graph, each with its code's severity: the places defining
    each signature, then the graph validator's findings."""
    tags = list(meta.meta_info_def.tags)
    v1 = v1_signatures(meta)
    nodes = {node.name: node for node in meta.graph_def.node}
    problems = list(_graph_references(meta, nodes))
    tf2 = tf2_signatures(meta)
    said: set[tuple[str, str]] = set()  # (code, node or function) the validator need not repeat
    if tf2 is not None:
        library = function_library(meta)
        problems += [
            *_object_graph_references(meta.object_graph_def, library),
            *_tf2_against_v1(v1, tf2),
            *_wrappers(tf2, library, v1),
            *_call_nodes(meta, v1, tf2, nodes, library),
        ]
        said = _already_said(
            problems, _signature_call_nodes(meta, v1, tf2, nodes), meta.object_graph_def, library
        )
    findings = [Finding(c, SEVERITIES[c], tags, s, m) for c, s, m in problems]
    findings += [
        Finding(i.code, SEVERITIES[i.code], tags, None, i.message, i.function, i.node)
        for i in validate(meta, allow_ops=allow_ops)
        if (i.code, i.subject) not in said
    ]
    return findings


def _already_said(
    problems: list[Problem],
    call_nodes: dict[str, NodeDef],
    graph: SavedObjectGraph,
    library: dict[str, FunctionDef],
) -> set[tuple[str, str]]:
    """What the validator would repeat of a signature's disagreements: a signature call node's
    types (`call-node`, `call-input-dtype` say them), a function the object graph names and the
    library lacks (`missing-function` says it)."""
    said = set()
    keys = {key for code, key, _ in problems if code in ("call-node", "call-input-dtype")}
    for key, node in call_nodes.items():
        if key in keys:
            said |= {("call-types", node.name), ("edge-dtype", node.name)}
    named = {name for node in graph.nodes for name in _concrete_names(node)} | set(graph.concrete_functions)
    said |= {("unknown-function", name) for name in named if name not in library}
    return said


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
    legacy = meta.graph_def.versions.producer <= _LEGACY_PLACEHOLDER_SHAPES
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
                        key, where, info.dtype, shape_from_proto(info.tensor_shape), node, index, legacy
                    )


# Up to this GraphDef version a Placeholder's scalar `shape` means an unknown shape (its shape function).
_LEGACY_PLACEHOLDER_SHAPES = 21


def _placeholder_shape(node: NodeDef, legacy: bool) -> tuple[int, ...] | None:
    """The shape TensorFlow infers for a Placeholder from its `shape` attr (None: unknown rank)."""
    attr = node.attr.get("shape")
    shape = shape_from_proto(attr.shape) if attr is not None else None
    return None if legacy and not shape else shape


def _compatible(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> bool:
    """Whether two shapes can describe the same tensor (-1 and an unknown rank match anything)."""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x < 0 or y < 0 or x == y for x, y in zip(a, b, strict=True))


def _tensor_agrees(
    key: str,
    where: str,
    dtype: int,
    shape: tuple[int, ...] | None,
    node: NodeDef,
    index: int,
    legacy: bool,
) -> Iterator[Problem]:
    if node.op == "Placeholder":
        recorded = node.attr.get("_output_shapes")
        if recorded is not None and recorded.list.shape:
            inferred = _placeholder_shape(node, legacy)
            output = shape_from_proto(recorded.list.shape[0])
            if not _compatible(inferred, output):
                yield (
                    "placeholder-output-shapes",
                    key,
                    f"{where}: placeholder {node.name} has shape {_fmt(inferred)} but records "
                    f"_output_shapes {_fmt(output)}, which TensorFlow's graph importer refuses",
                )
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


def _concrete_names(node: SavedObject) -> list[str]:
    """The concrete functions an object graph node names."""
    kind = node.WhichOneof("kind")
    if kind == "function":
        return list(node.function.concrete_functions)
    if kind == "bare_concrete_function":
        return [node.bare_concrete_function.concrete_function_name]
    return []


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
        for name in _concrete_names(node):
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
        keywords = sorted(argument_name(k) for k in theirs.argument_keywords)
        if keywords != sorted(argument_name(k) for k in theirs.inputs):
            yield (
                "argument-keywords",
                key,
                f"argument_keywords {sorted(theirs.argument_keywords)} differ from the input TensorSpecs "
                f"{sorted(theirs.inputs)}",
            )
        yield from _compare_specs(key, "input", ours.inputs, theirs.inputs, argument_name)
        yield from _compare_specs(key, "output", ours.outputs, theirs.outputs, str)


def _compare_specs(
    key: str,
    side: str,
    v1: dict[str, TensorSpec],
    tf2: dict[str, TensorSpec],
    name_of: Callable[[str], str],
) -> Iterator[Problem]:
    """signature_def's specs against the TF2 ones, matched as TensorFlow matches them: an input by
    its `argument_name` (signature_def keeps `0/observation`, the TF2 dict has `arg_0_observation`),
    an output by its key."""
    ours: dict[str, str] = {}
    for name in sorted(v1):
        first = ours.setdefault(name_of(name), name)
        if first != name:
            yield (
                f"{side}-keys",
                key,
                f"{side}s {first!r} and {name!r} of signature_def are one TF2 argument {name_of(name)!r}",
            )
    theirs = {name_of(name): name for name in sorted(tf2)}
    for arg in sorted(set(ours) - set(theirs)):
        yield (
            f"{side}-keys",
            key,
            f"{side} {ours[arg]!r} is in signature_def but not in the TF2 {side} signature",
        )
    for arg in sorted(set(theirs) - set(ours)):
        yield (
            f"{side}-keys",
            key,
            f"{side} {theirs[arg]!r} is in the TF2 {side} signature but not in signature_def",
        )
    for arg in sorted(set(ours) & set(theirs)):
        name = ours[arg]
        a, b = v1[name], tf2[theirs[arg]]
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
    """The signature-wrapper FunctionDef takes one argument per input, in `input_order`, and
    returns one value per flat output, in sorted key order."""
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
            for i, name in enumerate(input_order(inputs)):
                spec = inputs[name]
                arg_attrs = function.arg_attr.get(i)
                recorded = arg_attrs.attr.get("_output_shapes") if arg_attrs is not None else None
                if recorded is not None and recorded.list.shape:
                    shape = shape_from_proto(recorded.list.shape[0])
                    if (list(shape) if shape is not None else None) != spec.shape:
                        yield (
                            "wrapper-input-shape",
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


def _call_nodes(
    meta: MetaGraphDef,
    v1: dict[str, Signature],
    tf2: dict[str, TF2Signature],
    nodes: dict[str, NodeDef],
    library: dict[str, FunctionDef],
) -> Iterator[Problem]:
    """The v1 graph's call node for a signature calls its TF2 wrapper, fed in `input_order`, read
    in sorted key order, with the types the wrapper takes and returns."""
    for key, node in _signature_call_nodes(meta, v1, tf2, nodes).items():
        outputs = sorted(v1[key].outputs.items())
        flat = [(name, tensor) for name, spec in outputs for tensor in flat_names(spec)]
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
        function = library.get(called)
        if function is not None:
            yield from _call_types(key, node, function)
        inputs = v1[key].inputs
        feeds = [split_tensor_name(fed_name)[0] for k in input_order(inputs) if (fed_name := inputs[k].name)]
        if [split_tensor_name(i)[0] for i in node.input[: len(feeds)]] != feeds:
            yield (
                "call-node",
                key,
                f"{node.name} is fed {list(node.input[: len(feeds)])}, the inputs in argument order are "
                f"{feeds}",
            )


def _signature_call_nodes(
    meta: MetaGraphDef, v1: dict[str, Signature], tf2: dict[str, TF2Signature], nodes: dict[str, NodeDef]
) -> dict[str, NodeDef]:
    """The v1 graph's call node (`call_node`) of each signature both loaders have."""
    found = {}
    for key in sorted(set(tf2) & set(v1)):
        node = call_node(meta, v1[key].outputs.values(), nodes=nodes)
        if node is not None:
            found[key] = node
    return found


def _call_types(key: str, node: NodeDef, function: FunctionDef) -> Iterator[Problem]:
    """A call node's `Tin` and `Tout` are the types of the function it calls: the v1 graph does
    not import otherwise."""
    name = function.signature.name
    for attr, side, args in (
        ("Tin", "input", function.signature.input_arg),
        ("Tout", "output", function.signature.output_arg),
    ):
        recorded = node.attr.get(attr)
        if recorded is None:
            continue
        types = list(recorded.list.type)
        role = "argument" if side == "input" else "result"
        if len(types) != len(args):
            yield (
                "call-node",
                key,
                f"{node.name} has {len(types)} {side}(s) in {attr}, {name} has {len(args)} {role}(s)",
            )
            continue
        for i, (passed, arg) in enumerate(zip(types, args, strict=True)):
            if passed != arg.type:
                yield (
                    "call-node",
                    key,
                    f"{node.name} {side} {i} is {dtype_name(passed)} in {attr}, {name}'s {role} {i} "
                    f"({arg.name}) is {dtype_name(arg.type)}",
                )
