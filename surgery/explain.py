"""`explain`: the path from a signature key to the function that runs, place by place.

Seed 002 walks one model through the five places TensorFlow defines a function's inputs; this
does the same for any model, read from the `surgery.signatures` views:

1. the `SignatureDef` (what the v1 loader and TensorFlow Serving feed and fetch),
2. the v1 graph's call node that those tensors belong to,
3. the signature-wrapper `FunctionDef` it calls (outputs as a dict, as v1 expects),
4. the function the wrapper calls (the traced `tf.function`, also saved on its object),
5. the object graph's `SavedBareConcreteFunction` under `signatures` (what the TF2 loader finds),
6. its `SavedConcreteFunction`: the input and output TensorSpecs and the bound variables;

then every saved `tf.function` with each of its concrete signatures (several when polymorphic).
Rendered as an indented text tree, Graphviz DOT, a self-contained HTML page, or JSON.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from surgery.errors import SurgeryError
from surgery.io import Model
from surgery.schema import FunctionDef, MetaGraphDef, NodeDef
from surgery.signatures import (
    CALL_OPS,
    RESERVED_KEYS,
    BoundInput,
    SavedFunctionView,
    Signature,
    TensorSpec,
    TF2Signature,
    called_functions,
    function_library,
    saved_functions,
    tf2_signatures,
    v1_signatures,
)
from surgery.tensors import dtype_name, format_shape

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
FORMATS = ("text", "dot", "svg", "html")


class _Model(BaseModel):
    # Built on first use: the CLI imports this module for every command.
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


def _bound(bound: list[BoundInput]) -> str:
    return ", ".join(
        f"{b.name} (node {b.node_id}, {b.kind})" if b.name else f"node {b.node_id} ({b.kind})" for b in bound
    )


def _tensor_node(name: str) -> str:
    """`StatefulPartitionedCall:1` -> `StatefulPartitionedCall` (and `^ctrl` -> `ctrl`)."""
    return name.lstrip("^").split(":")[0]


def _tensor_names(spec: TensorSpec) -> list[str]:
    """The graph tensors a signature's TensorInfo names (one, three for coo_sparse, or components)."""
    if spec.coo_sparse is not None:
        c = spec.coo_sparse
        return [c.indices_tensor_name, c.values_tensor_name, c.dense_shape_tensor_name]
    if spec.components is not None:
        return [name for component in spec.components for name in _tensor_names(component)]
    return [spec.name] if spec.name else []


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


def _graph_place(sig: Signature, nodes: dict[str, NodeDef]) -> Place:
    """The v1 graph's call node for the signature's outputs, or the plain graph nodes it uses."""
    fetched = sorted({_tensor_node(s.name) for s in sig.outputs.values() if s.name})
    if len(fetched) == 1 and fetched[0] in nodes and nodes[fetched[0]].op in CALL_OPS:
        node = nodes[fetched[0]]
        called = node.attr["f"].func.name if "f" in node.attr else ""
        details = [f"fed: {', '.join(node.input) or '(nothing)'}"]
        links = [Link(to=f"function:{called}", label="f")] if called else []
        title = f"call node {node.name} (a {node.op} node of graph_def)"
        return Place(id=f"graph:{node.name}", kind="call_node", title=title, details=details, links=links)
    details = []
    for role, specs in (("feeds", sig.inputs), ("fetches", sig.outputs)):
        for key, spec in specs.items():
            for name in _tensor_names(spec):
                found = nodes.get(_tensor_node(name))
                op = found.op if found is not None else "missing from graph_def"
                details.append(f"{role} {key}: {name} ({op})")
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
        details.append(f"bound_inputs: {_bound(sig.bound_inputs)}")
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
            graph = _graph_place(sig, nodes)
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


def explain(model: Model, signature: str | None = None) -> Explanation:
    """The walkthrough of every meta graph; with `signature`, of that key only (an error if no meta
    graph has it).

    Render it with `explain_text`, `explain_dot` or `explain_html`, or `model_dump()` it.

    Example:
        >>> explanation = surgery.explain(surgery.load("my_model"), "masked")
        >>> [p.key for p in explanation.meta_graphs[0].signatures]
        ['masked']
        >>> print(surgery.explain_text(explanation).splitlines()[1])
          signature 'masked'
    """
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


_LOADERS: dict[PlaceKind, str] = {
    "signature_def": "v1 loader, TensorFlow Serving",
    "call_node": "v1 loader",
    "graph_nodes": "v1 loader",
    "wrapper_function": "both loaders",
    "function": "both loaders",
    "bare_concrete_function": "TF2 loader",
    "concrete_function": "TF2 loader",
    "saved_function": "TF2 loader",
}


# --- text --------------------------------------------------------------------------------------


Style = Callable[[str, str], str]
"""`style(role, text)`: how the text form marks up a piece (roles: heading, signature, title,
loader, missing, link). The CLI colours them on a terminal; the default leaves text plain."""


def plain(role: str, text: str) -> str:
    """The identity style: no markup."""
    return text


def _tree(lines: list[str], items: list[tuple[str, list[str]]], prefix: str) -> None:
    """Append `items` (a title and its detail lines each) as box-drawing tree branches."""
    for i, (title, details) in enumerate(items):
        last = i == len(items) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{title}")
        inner = prefix + ("    " if last else "│   ")
        lines += [f"{inner}    {d}" for d in details]


def _links(place: Place) -> list[str]:
    """`-> f: __inference_signature_wrapper_12`: where the place leads."""
    return [f"-> {link.label}: {link.to.split(':', 1)[1]}" for link in place.links]


def _concrete_lines(function: SavedFunctionView) -> list[str]:
    lines = []
    for i, c in enumerate(function.concrete_functions, 1):
        lines.append(f"option {i}: {c.name}")
        lines.append(f"  callable with: {c.inputs}")
        lines.append(f"  returns: {c.outputs}")
        if c.bound_inputs:
            lines.append(f"  bound_inputs: {_bound(c.bound_inputs)}")
    return lines


def explain_text(explanation: Explanation, style: Style = plain) -> str:
    """An indented tree: meta graph, signature, then its places in walkthrough order.

    Example:
        >>> text = surgery.explain_text(surgery.explain(surgery.load("my_model"), "fixed"))
        >>> text.splitlines()[0]
        'MetaGraphDef [serve]'
    """
    lines: list[str] = []
    for meta in explanation.meta_graphs:
        lines.append(style("heading", f"MetaGraphDef [{', '.join(meta.tags)}]"))
        if not meta.object_graph:
            lines.append("  (no object graph: a TF1-style model, served through signature_def only)")
        for path in meta.signatures:
            lines.append("  " + style("signature", f"signature {path.key!r}"))
            steps = []
            for i, p in enumerate(path.places, 1):
                title = style("missing" if p.missing else "title", f"{i}. {p.title}")
                loader = style("loader", f"[{_LOADERS[p.kind]}]")
                steps.append((f"{title}  {loader}", p.details + [style("link", x) for x in _links(p)]))
            _tree(lines, steps, "    ")
        if meta.functions:
            lines.append("  " + style("heading", "saved tf.functions"))
            items = []
            for function in meta.functions:
                count = len(function.concrete_functions)
                poly = ", polymorphic" if count > 1 else ""
                title = style("title", f"SavedFunction {function.path!r} ({count} concrete{poly})")
                items.append((title, _concrete_lines(function)))
            _tree(lines, items, "    ")
        lines.append("")
    return "\n".join(lines)


# --- DOT ---------------------------------------------------------------------------------------

_COLOURS: dict[PlaceKind, str] = {
    "signature_def": "#dbeafe",
    "call_node": "#e0e7ff",
    "graph_nodes": "#e0e7ff",
    "wrapper_function": "#fef3c7",
    "function": "#fde68a",
    "bare_concrete_function": "#dcfce7",
    "concrete_function": "#bbf7d0",
    "saved_function": "#fce7f3",
}


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_label(title: str, details: list[str]) -> str:
    """A left-aligned multi-line label: title, then details (`\\l` ends each line)."""
    body = "".join(line.replace("\\", "\\\\").replace('"', '\\"') + "\\l" for line in [title, *details])
    return '"' + body + '"'


def explain_dot(explanation: Explanation) -> str:
    """Graphviz DOT: one cluster per meta graph, one box per place, arrows as the loaders follow them.

    Example:
        >>> surgery.explain_dot(surgery.explain(surgery.load("my_model"))).startswith("digraph savedmodel {")
        True
    """
    out = [
        "digraph savedmodel {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", fontsize=12];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for m, meta in enumerate(explanation.meta_graphs):
        out.append(f"  subgraph cluster_{m} {{")
        out.append(f"    label={_dot_string('MetaGraphDef [' + ', '.join(meta.tags) + ']')};")
        places: dict[str, Place] = {}
        for path in meta.signatures:
            for place in path.places:
                places.setdefault(place.id, place)
        for function in meta.functions:
            fid = f"saved_function:{function.path}"
            links = [
                Link(to=f"function:{c.name}", label=f"option {i}")
                for i, c in enumerate(function.concrete_functions, 1)
            ]
            title = f"SavedFunction {function.path!r}"
            places[fid] = Place(id=fid, kind="saved_function", title=title, links=links)
            for c in function.concrete_functions:
                details = [f"callable with: {c.inputs}", f"returns: {c.outputs}"]
                places.setdefault(
                    f"function:{c.name}",
                    Place(
                        id=f"function:{c.name}",
                        kind="function",
                        title=f"FunctionDef {c.name}",
                        details=details,
                    ),
                )
        for place in places.values():
            colour = "#fecaca" if place.missing else _COLOURS[place.kind]
            node = _dot_string(f"{m}/{place.id}")
            out.append(f'    {node} [label={_dot_label(place.title, place.details)}, fillcolor="{colour}"];')
        for path in meta.signatures:
            key = _dot_string(f"{m}/key:{path.key}")
            out.append(f'    {key} [label={_dot_string(path.key)}, shape=ellipse, fillcolor="#ffffff"];')
            if path.places:
                out.append(f'    {key} -> {_dot_string(f"{m}/{path.places[0].id}")} [label="v1"];')
            bare = [p for p in path.places if p.kind == "bare_concrete_function"]
            if bare:
                out.append(f'    {key} -> {_dot_string(f"{m}/{bare[0].id}")} [label="TF2"];')
        for place in places.values():
            for link in place.links:
                if link.to in places:
                    src, dst = _dot_string(f"{m}/{place.id}"), _dot_string(f"{m}/{link.to}")
                    out.append(f"    {src} -> {dst} [label={_dot_string(link.label)}];")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def render_svg(dot: str) -> str:
    """SVG from DOT through Graphviz's `dot` program; a one-line error when it is not installed."""
    program = shutil.which("dot")
    if program is None:
        raise SurgeryError(
            "svg needs Graphviz's 'dot' program, which is not installed: install graphviz "
            "(apt-get install graphviz), or use --format dot and render it elsewhere"
        )
    result = subprocess.run([program, "-Tsvg"], input=dot, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (
            result.stderr.strip().splitlines()[0] if result.stderr.strip() else f"exit {result.returncode}"
        )
        raise SurgeryError(f"Graphviz 'dot' failed to render the graph ({detail})")
    return result.stdout


# --- HTML --------------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #1f2937; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #d1d5db; }
details { margin: .6em 0; } summary { cursor: pointer; font-weight: 600; font-size: 1.05em; }
ol.path { list-style: none; padding-left: 0; counter-reset: step; }
ol.path > li { counter-increment: step; border-left: 4px solid #9ca3af; margin: .5em 0 .5em 1em;
  padding: .4em .8em; border-radius: 4px; }
ol.path > li::before { content: counter(step) ". "; font-weight: 600; }
li.signature_def { background: #dbeafe; } li.call_node, li.graph_nodes { background: #e0e7ff; }
li.wrapper_function { background: #fef3c7; } li.function { background: #fde68a; }
li.bare_concrete_function { background: #dcfce7; } li.concrete_function { background: #bbf7d0; }
li.missing { background: #fecaca; border-left-color: #dc2626; }
.title { font-weight: 600; } .loader { color: #6b7280; font-size: .85em; margin-left: .5em; }
ul.details { margin: .3em 0 0 0; padding-left: 1.2em; font-family: ui-monospace, monospace; font-size: .9em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #d1d5db; padding: .2em .5em;
  text-align: left; vertical-align: top; font-family: ui-monospace, monospace; font-size: .9em; }
""".strip()


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def explain_html(explanation: Explanation, title: str = "SavedModel") -> str:
    """One self-contained page: inline CSS, no script, no external resources.

    Example:
        >>> page = surgery.explain_html(surgery.explain(surgery.load("my_model")), "my_model")
        >>> page.startswith("<!DOCTYPE html>"), "<script" in page
        (True, False)
    """
    body: list[str] = [f"<h1>How {_esc(title)} serves its signatures</h1>"]
    body.append(
        "<p>For each signature: the places TensorFlow defines it, in the order the loaders follow them "
        "(v1: SignatureDef, then the graph; TF2: the object graph's signature map).</p>"
    )
    for meta in explanation.meta_graphs:
        body.append(f"<h2>MetaGraphDef [{_esc(', '.join(meta.tags))}]</h2>")
        if not meta.object_graph:
            body.append("<p>No object graph: a TF1-style model, served through signature_def only.</p>")
        for path in meta.signatures:
            body.append(
                f'<details open class="signature"><summary>signature {_esc(repr(path.key))}</summary>'
            )
            body.append('<ol class="path">')
            for place in path.places:
                cls = place.kind + (" missing" if place.missing else "")
                loader = _LOADERS[place.kind]
                body.append(f'<li class="{cls}"><span class="title">{_esc(place.title)}</span>')
                body.append(f'<span class="loader">{_esc(loader)}</span>')
                lines = place.details + _links(place)
                if lines:
                    body.append(
                        '<ul class="details">' + "".join(f"<li>{_esc(d)}</li>" for d in lines) + "</ul>"
                    )
                body.append("</li>")
            body.append("</ol></details>")
        if meta.functions:
            body.append("<h3>Saved tf.functions</h3>")
            body.append(
                "<table><tr><th>function</th><th>option</th><th>callable with</th><th>returns</th></tr>"
            )
            for function in meta.functions:
                for i, c in enumerate(function.concrete_functions, 1):
                    body.append(
                        f"<tr><td>{_esc(function.path)}</td><td>{i}: {_esc(c.name)}</td>"
                        f"<td>{_esc(c.inputs)}</td><td>{_esc(c.outputs)}</td></tr>"
                    )
            body.append("</table>")
    head = (
        '<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}: explain</title>\n<style>\n{_CSS}\n</style>"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{head}\n</head>\n<body>\n'
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
