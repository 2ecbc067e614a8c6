"""The explanation `explain` returns: where a signature is defined, place by place (pydantic models),
and the walk that builds it from the `surgery.signatures` views.

Apart from the renderers (`surgery.explain.render`) so that pydantic is imported only when an
explanation is made, not by every command.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from surgery.errors import SurgeryError
from surgery.model import Model
from surgery.schema import FunctionDef, MetaGraphDef, NodeDef
from surgery.signatures import (
    RESERVED_KEYS,
    BoundInput,
    SavedFunctionView,
    Signature,
    TensorSpec,
    TF2Signature,
    call_node,
    called_function,
    called_functions,
    flat_names,
    function_library,
    saved_functions,
    tf2_signatures,
    v1_signatures,
)
from surgery.tensors import dtype_name, format_shape, split_tensor_name

PlaceKind = Literal[
    "signature_def",
    "call_node",
    "graph_nodes",
    "wrapper_function",
    "function",
    "bare_concrete_function",
    "concrete_function",
    "saved_function",
]


class _Model(BaseModel):
    # Built on first use.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Link(_Model):
    """An arrow from one place to another (`to` is a place id within the meta graph)."""

    to: str
    label: str


class Place(_Model):
    """One place a signature is defined: a proto message, where it lives, what it says."""

    id: str
    kind: PlaceKind
    title: str
    details: list[str] = []
    links: list[Link] = []
    missing: bool = False


class SignaturePath(_Model):
    """The places of one signature key, in the order the walkthrough visits them."""

    key: str
    places: list[Place]


class MetaGraphExplanation(_Model):
    tags: list[str]
    object_graph: bool
    signatures: list[SignaturePath]
    functions: list[SavedFunctionView]


class Explanation(_Model):
    meta_graphs: list[MetaGraphExplanation]


# --- building the explanation ------------------------------------------------------------------


def _spec(spec: TensorSpec, key: str = "") -> str:
    """`float32 (-1, 3)`, with the tensor name first when there is one (other than `key`)."""
    what = f"{spec.dtype} {format_shape(None if spec.shape is None else tuple(spec.shape))}"
    if spec.coo_sparse is not None:
        c = spec.coo_sparse
        where = f"sparse {c.indices_tensor_name}, {c.values_tensor_name}, {c.dense_shape_tensor_name}"
    elif spec.components is not None:
        where = "composite " + ", ".join(p.name or "?" for p in spec.components)
    else:
        where = spec.name if spec.name and spec.name != key else ""
    return f"{where}, {what}" if where else what


def bound_text(bound: list[BoundInput]) -> str:
    """`v (node 3, variable), node 5 (asset)`: the bound inputs, as the text and the pages show them."""
    return ", ".join(
        f"{b.name} (node {b.node_id}, {b.kind})" if b.name else f"node {b.node_id} ({b.kind})" for b in bound
    )


def _args(function: FunctionDef) -> list[str]:
    sig = function.signature
    args = ", ".join(f"{a.name}: {dtype_name(a.type)}" for a in sig.input_arg)
    results = ", ".join(f"{a.name}: {dtype_name(a.type)}" for a in sig.output_arg)
    return [f"args: {args or '(none)'}", f"results: {results or '(none)'}"]


def _signature_def(key: str, sig: Signature | None) -> Place:
    place_id = f"signature_def:{key}"
    title = f"SignatureDef signature_def[{key!r}]"
    if sig is None:
        return Place(id=place_id, kind="signature_def", title=title + ": missing", missing=True)
    details = [f"method: {sig.method_name or '(none)'}"]
    details += [f"input {k}: {_spec(s)}" for k, s in sig.inputs.items()]
    details += [f"output {k}: {_spec(s)}" for k, s in sig.outputs.items()]
    return Place(id=place_id, kind="signature_def", title=title, details=details)


def _graph_place(meta: MetaGraphDef, sig: Signature, nodes: dict[str, NodeDef]) -> Place:
    """The v1 graph's call node for the signature's outputs (`call_node`), or the plain graph nodes
    it uses."""
    node = call_node(meta, sig.outputs.values(), nodes=nodes)
    if node is not None:
        called = called_function(node)
        details = [f"fed: {', '.join(node.input) or '(nothing)'}"]
        links = [Link(to=f"function:{called}", label="f")] if called else []
        title = f"call node {node.name} (a {node.op} node of graph_def)"
        return Place(id=f"graph:{node.name}", kind="call_node", title=title, details=details, links=links)
    details = []
    for role, specs in (("feeds", sig.inputs), ("fetches", sig.outputs)):
        for key, spec in specs.items():
            for name in flat_names(spec):
                found = nodes.get(split_tensor_name(name)[0])
                op = found.op if found is not None else "missing from graph_def"
                details.append(f"{role} {key}: {name} ({op})")
    # Named after the nodes its plain (not composite) outputs are read from.
    fetched = sorted({split_tensor_name(s.name)[0] for s in sig.outputs.values() if s.name})
    title = "graph nodes (no call node: the signature runs the graph itself)"
    return Place(id="graph:" + ",".join(fetched), kind="graph_nodes", title=title, details=details)


def _saved_as(name: str, functions: list[SavedFunctionView]) -> list[str]:
    """Where a function is saved as a `tf.function`: `saved as tf.function 'f' (option 1 of 2)`."""
    out = []
    for function in functions:
        names = [c.name for c in function.concrete_functions]
        if name in names:
            out.append(
                f"saved as tf.function {function.path!r} (option {names.index(name) + 1} of {len(names)})"
            )
    return out


def _function_place(
    name: str, kind: PlaceKind, library: dict[str, FunctionDef], functions: list[SavedFunctionView]
) -> Place:
    label = "wrapper FunctionDef" if kind == "wrapper_function" else "FunctionDef"
    place_id = f"function:{name}"
    if name not in library:
        title = f"{label} {name}: missing from the function library"
        return Place(id=place_id, kind=kind, title=title, missing=True)
    function = library[name]
    calls = called_functions(function)
    saved = _saved_as(name, functions)
    if kind == "function" and not saved:
        saved = ["not saved as a tf.function: reached through the wrapper only"]
    details = [*_args(function), f"nodes: {len(function.node_def)}", *saved]
    links = [Link(to=f"function:{c}", label="calls") for c in calls]
    return Place(id=place_id, kind=kind, title=f"{label} {name}", details=details, links=links)


def _tf2_places(
    key: str, sig: TF2Signature | None, library: dict[str, FunctionDef], functions: list[SavedFunctionView]
) -> tuple[list[Place], list[Place]]:
    """(the wrapper and the functions it calls, the object graph's two places) for one signature."""
    if sig is None:
        title = f"SavedBareConcreteFunction signatures[{key!r}]: missing from the object graph"
        return [], [Place(id=f"bare:{key}", kind="bare_concrete_function", title=title, missing=True)]
    wrapper = _function_place(sig.function, "wrapper_function", library, functions)
    called = [_function_place(c, "function", library, functions) for c in sig.calls]
    bare = Place(
        id=f"object:{sig.node_id}",
        kind="bare_concrete_function",
        title=f"SavedBareConcreteFunction: object graph node {sig.node_id} (signatures[{key!r}])",
        details=[f"argument_keywords: {', '.join(sig.argument_keywords) or '(none)'}"],
        links=[Link(to=f"concrete:{sig.function}", label="concrete_function_name")],
    )
    details = [f"input {k}: {_spec(s, k)}" for k, s in sig.inputs.items()]
    details += [f"output {k}: {_spec(s, k)}" for k, s in sig.outputs.items()]
    if sig.bound_inputs:
        details.append(f"bound_inputs: {bound_text(sig.bound_inputs)}")
    concrete = Place(
        id=f"concrete:{sig.function}",
        kind="concrete_function",
        title=f"SavedConcreteFunction concrete_functions[{sig.function!r}]",
        details=details,
        links=[Link(to=f"function:{sig.function}", label="describes")],
    )
    return [wrapper, *called], [bare, concrete]


def explain_meta_graph(meta: MetaGraphDef, signature: str | None = None) -> MetaGraphExplanation:
    """The walkthrough for every signature of `meta` (or only `signature`) and its tf.functions."""
    v1 = v1_signatures(meta)
    tf2 = tf2_signatures(meta)
    functions = saved_functions(meta) if tf2 is not None else []
    library = function_library(meta)
    nodes = {n.name: n for n in meta.graph_def.node}
    keys = sorted(set(v1) | set(tf2 or {}))
    keys = [signature] if signature is not None else [k for k in keys if k not in RESERVED_KEYS]
    paths = []
    for key in keys:
        sig = v1.get(key)
        places = [_signature_def(key, sig)]
        if sig is not None:
            graph = _graph_place(meta, sig, nodes)
            places = [
                places[0].model_copy(update={"links": [Link(to=graph.id, label="fetched from")]}),
                graph,
            ]
        if tf2 is not None and key not in RESERVED_KEYS:  # TensorFlow's init op is v1-only
            functions_of, object_graph = _tf2_places(key, tf2.get(key), library, functions)
            places += functions_of + object_graph
        paths.append(SignaturePath(key=key, places=places))
    return MetaGraphExplanation(
        tags=list(meta.meta_info_def.tags),
        object_graph=tf2 is not None,
        signatures=paths,
        functions=functions,
    )


def build(model: Model, signature: str | None = None) -> Explanation:
    """`surgery.explain`: the walkthrough of every meta graph of `model`, or of `signature` only."""
    metas = list(model.proto.meta_graphs)
    if signature is not None:
        metas = [m for m in metas if _has(m, signature)]
        if not metas:
            keys = sorted(
                {k for m in model.proto.meta_graphs for k in m.signature_def if k not in RESERVED_KEYS}
            )
            raise SurgeryError(
                f"no signature {signature!r} in the model: it has {', '.join(keys) or 'none'}; "
                "give one of those, or no SIGNATURE for all"
            )
    return Explanation(meta_graphs=[explain_meta_graph(m, signature) for m in metas])


def _has(meta: MetaGraphDef, key: str) -> bool:
    tf2 = tf2_signatures(meta)
    return key in meta.signature_def or (tf2 is not None and key in tf2)
