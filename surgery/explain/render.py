"""Drawing an explanation: an indented text tree, Graphviz DOT (and SVG through Graphviz), or a
self-contained HTML page.

No pydantic is imported here: the functions take an explanation already built
(`surgery.explain.build`), whose models they read.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING

from surgery.errors import SurgeryError

if TYPE_CHECKING:
    from surgery.explain.build import Explanation, Place, PlaceKind
    from surgery.signatures import SavedFunctionView

FORMATS = ("text", "dot", "svg", "html")


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
    from surgery.explain.build import bound_text

    lines = []
    for i, c in enumerate(function.concrete_functions, 1):
        lines.append(f"option {i}: {c.name}")
        lines.append(f"  callable with: {c.inputs}")
        lines.append(f"  returns: {c.outputs}")
        if c.bound_inputs:
            lines.append(f"  bound_inputs: {bound_text(c.bound_inputs)}")
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
    from surgery.explain.build import Link, Place

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
