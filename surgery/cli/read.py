"""The commands that read: show, check, diff, convert and explain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from surgery.check import check, disagreements
from surgery.convert import FORMATS as CONVERT_FORMATS
from surgery.convert import convert
from surgery.diff import diff
from surgery.edits import parse_tag_set
from surgery.errors import SurgeryError
from surgery.explain import FORMATS as EXPLAIN_FORMATS
from surgery.explain import explain, explain_dot, explain_html, explain_text, render_svg
from surgery.graph_changes import graph_diff
from surgery.model import Format as ConvertFormat
from surgery.remote import (
    is_url,
    local_path,
    remote_output,
    url_name,
)
from surgery.runner import finding_line
from surgery.show import show_json, show_text
from surgery.signatures import user_keys
from surgery.storage import load

if TYPE_CHECKING:
    pass
from surgery.cli.app import (
    NO_SYNC_OPTION,
    Failure,
    cli,
    detail,
    echo_changes,
    echo_graph_changes,
    load_model,
    print_json,
    say,
    style,
    writing,
    wrote,
)


@cli.command()
@click.argument("model", type=click.Path(path_type=str), required=False)
@click.option("--signature", "--signature_def", "signature", help="Only this signature.")
@click.option(
    "--tag-set", "--tag_set", "tag_set", help="Only the meta graph with exactly these tags (comma-separated)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--dir", "directory", type=click.Path(path_type=str), help="MODEL, as saved_model_cli spells it."
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Everything (what show prints anyway, as saved_model_cli's --all).",
)
def show(
    model: str | None,
    signature: str | None,
    tag_set: str | None,
    as_json: bool,
    directory: str | None,
    show_all: bool,
) -> None:
    """Show tag sets, signatures and functions of MODEL.

    saved_model_cli's spellings are taken too: --dir for MODEL, --tag_set, --signature_def, --all.

    \b
    Example:
      savedmodel-surgery show ./my_model
      savedmodel-surgery show ./my_model --signature masked
      savedmodel-surgery show ./my_model --json | jq '.meta_graphs[0].signatures | keys'
    """
    if (model is None) == (directory is None):
        raise click.UsageError("give MODEL (or --dir MODEL, as saved_model_cli spells it), once")
    path = model if model is not None else directory
    assert path is not None
    if show_all and (signature is not None or tag_set is not None):
        raise click.UsageError("--all shows everything: give it without --signature or --tag-set")
    loaded = load_model(path)
    tags = parse_tag_set(tag_set) if tag_set is not None else None
    if as_json:
        print_json(show_json(loaded, signature=signature, tag_set=tags))
    else:
        click.echo(show_text(loaded, signature=signature, tag_set=tags))


@cli.command("check")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too, not only on errors.")
@click.option(
    "--allow-op",
    "allow_ops",
    multiple=True,
    metavar="NAME",
    help="An op your server registers that TensorFlow does not (a custom-op library's): accept its "
    "nodes. Repeatable.",
)
def check_command(model: str, as_json: bool, strict: bool, allow_ops: tuple[str, ...]) -> None:
    """Check that every place defining a signature agrees, and that the graph validates (exit 1 on
    an error).

    \b
    Compares signature_def, the graph's placeholders and call nodes, the signature-wrapper
    functions and the object graph's TensorSpecs, as the v1 and TF2 loaders read them, and
    validates every node of the graph and its functions against TensorFlow's op registry, as the
    loaders do. An error makes a TensorFlow loader refuse the model or a signature compute
    something else; a warning is a disagreement TensorFlow ignores (exit 0, or 1 with --strict).
    Example:
      savedmodel-surgery check ./my_model
      savedmodel-surgery check ./my_model --strict --json
      savedmodel-surgery check ./text_model --allow-op CaseFoldUTF8
    """
    loaded = load_model(model)
    if as_json:  # the report (pydantic) only for JSON: the text needs its fields alone
        report = check(loaded, allow_ops=allow_ops)
        print_json(report.model_dump())
        if report.errors or (strict and report.warnings):
            raise Failure(1)
        return
    found = disagreements(loaded, allow_ops=allow_ops)
    for finding in found:
        click.echo(f"{style(finding.severity, finding.severity)}: {finding_line(finding)}")
    errors = sum(f.severity == "error" for f in found)
    cautions = len(found) - errors
    failed = bool(errors or (strict and cautions))
    if found:
        counts = f"{errors} error(s), {cautions} warning(s)"
        click.echo(f"{model}: {style('fail' if failed else 'warning', counts)}")
    else:
        click.echo(f"{model}: {style('ok', 'ok')}")
    if failed:
        raise Failure(1)


@cli.command("diff")
@click.argument("a", type=click.Path(path_type=str))
@click.argument("b", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff_command(a: str, b: str, as_json: bool) -> None:
    """Show what differs between two SavedModels: signatures, then graphs (exit 1 if anything).

    The signature-level differences come first (keys, inputs, outputs, dtypes, shapes, tensor
    names, methods), then the graph-level ones (nodes of the graph and of each function, the
    object graph); --json lists them under "changes" and "graph_changes".

    \b
    Example:
      savedmodel-surgery diff ./my_model ./patched
    """
    model_a, model_b = load_model(a), load_model(b)
    changes, graph_changes = diff(model_a, model_b), graph_diff(model_a, model_b)
    if as_json:
        graph = [c.model_dump() for c in graph_changes]
        print_json({"changes": [c.model_dump() for c in changes], "graph_changes": graph})
    else:
        echo_changes(changes)
        echo_graph_changes(graph_changes)
    if changes or graph_changes:
        raise Failure(1)


@cli.command("convert")
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "--to",
    "fmt",
    type=click.Choice(CONVERT_FORMATS),
    help="pbtxt: text format; pb: binary [default: the other than MODEL's].",
)
@click.option("-o", "--output", type=click.Path(path_type=str), help="Write the copy to this new directory.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@NO_SYNC_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print what was written, machine-readable.")
@click.option("--in-place", is_flag=True, hidden=True)
def convert_command(
    model: str,
    fmt: str | None,
    output: str | None,
    force: bool,
    no_sync: bool,
    as_json: bool,
    in_place: bool,
) -> None:
    """Write a copy of MODEL as saved_model.pbtxt (text, to review and diff) or saved_model.pb.

    Without --to, the other format than MODEL's: a binary model becomes text, a text one binary.

    \b
    Always a new directory: variables/, assets/ and other files come along. pb -> pbtxt -> pb
    gives back TensorFlow's saved_model.pb byte for byte. fingerprint.pb is kept while it matches
    the content and recomputed (as TensorFlow would) after a hand edit of the text.
    Example:
      savedmodel-surgery convert ./my_model --to pbtxt -o ./my_model_text
      savedmodel-surgery convert ./my_model_text --to pb -o ./my_model_again
    """
    if in_place:
        raise click.UsageError("convert always writes a new directory: give -o OUT instead of --in-place")
    if output is None:
        raise click.UsageError("give -o OUT, the new directory to write the copy to")
    to: ConvertFormat | None = None if fmt is None else ("pbtxt" if fmt == "pbtxt" else "pb")
    writing(model, output)
    if is_url(output):
        with remote_output(output, force=force) as local_out:  # refuses an existing OUT first
            result = convert(load_model(model), local_out, to, sync=not no_sync).model_copy(
                update={"output": output}
            )
    else:
        result = convert(load_model(model), local_path(output), to, force=force, sync=not no_sync)
    if is_url(model):
        result = result.model_copy(update={"input": model})
    wrote(output)
    detail(f"fingerprint.pb: {result.fingerprint}")
    if as_json:
        print_json(result.model_dump())
    else:
        what = f"{result.file}, {result.bytes:,} bytes; fingerprint.pb {result.fingerprint}"
        say(f"wrote {result.output} ({what})")


def _complete_signature(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion for SIGNATURE: the keys of the MODEL already typed."""
    try:
        model = load(ctx.params.get("model") or "")
    except SurgeryError:
        return []
    keys = {k for meta in model.proto.meta_graphs for k in user_keys(meta.signature_def)}
    return sorted(k for k in keys if k.startswith(incomplete))


@cli.command("explain")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("signature", required=False, shell_complete=_complete_signature)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPLAIN_FORMATS),
    default="text",
    show_default=True,
    help="An indented tree, Graphviz DOT, SVG (needs Graphviz's dot) or one self-contained HTML page.",
)
@click.option("--json", "as_json", is_flag=True, help="The same tree, machine-readable.")
def explain_command(model: str, signature: str | None, fmt: str, as_json: bool) -> None:
    """Walk each signature of MODEL (or only SIGNATURE) through every place that defines it.

    \b
    SignatureDef -> the v1 graph's call node -> the wrapper FunctionDef -> the function it
    calls -> the object graph's SavedBareConcreteFunction -> its SavedConcreteFunction
    (TensorSpecs, bound variables); then each saved tf.function with its concrete signatures.
    Example:
      savedmodel-surgery explain ./my_model masked
      savedmodel-surgery explain ./my_model --format html > my_model.html
      savedmodel-surgery explain ./my_model --format dot | dot -Tpng > my_model.png
    """
    if as_json and fmt != "text":
        raise click.UsageError(f"--json is the tree as JSON: give it without --format {fmt}")
    explanation = explain(load_model(model), signature)
    if as_json:
        print_json(explanation.model_dump())
    elif fmt == "text":
        click.echo(explain_text(explanation, style), nl=False)
    elif fmt == "html":
        title = url_name(model) if is_url(model) else Path(model).name or model
        click.echo(explain_html(explanation, title), nl=False)
    else:
        dot = explain_dot(explanation)
        click.echo(render_svg(dot) if fmt == "svg" else dot, nl=False)
