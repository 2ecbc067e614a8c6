"""The `savedmodel-surgery` command line: a thin layer over the library.

Exit codes: 0 success; 1 `check` found problems; 2 bad usage, bad input or an I/O failure,
reported in one line on stderr (a traceback only with --debug).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

import click

from surgery import __version__, edits
from surgery.check import Finding, check
from surgery.diff import diff
from surgery.edits import parse_tag_set
from surgery.errors import ConsistencyError, SurgeryError
from surgery.io import Model, load, save
from surgery.plans import load_plan
from surgery.schema import TENSORFLOW_VERSION
from surgery.show import show_json, show_text

PROG = "savedmodel-surgery"


class Failure(Exception):
    """A failure already reported on stderr; carries the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name=PROG, message=f"%(prog)s %(version)s (TensorFlow {TENSORFLOW_VERSION} schema)"
)
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Edit TensorFlow SavedModels on disk with protobuf alone: no TensorFlow needed.

    Every edit writes a new directory (-o OUT) or, with --in-place, replaces the model's files
    atomically. The input is never modified otherwise.
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("model", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(model: str, as_json: bool) -> None:
    """Show tag sets, signatures and functions of MODEL.

    \b
    Example:
      savedmodel-surgery show ./my_model
      savedmodel-surgery show ./my_model --json | jq '.meta_graphs[0].signatures | keys'
    """
    loaded = load(model)
    if as_json:
        _print_json(show_json(loaded))
    else:
        click.echo(show_text(loaded))


def _finding_line(finding: Finding) -> str:
    where = f"[{','.join(finding.tags)}]" + (f" {finding.signature!r}" if finding.signature else "")
    return f"{where} {finding.code}: {finding.message}"


@cli.command("check")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check_command(model: str, as_json: bool) -> None:
    """Check that every place defining a signature agrees (exit 1 if not).

    \b
    Compares signature_def, the graph's placeholders and call nodes, the signature-wrapper
    functions and the object graph's TensorSpecs, as the v1 and TF2 loaders read them.
    Example:
      savedmodel-surgery check ./my_model
    """
    report = check(load(model))
    if as_json:
        _print_json(report.model_dump())
    elif report.ok:
        click.echo(f"{model}: ok")
    else:
        for finding in report.findings:
            click.echo(_finding_line(finding))
        click.echo(f"{model}: {len(report.findings)} problem(s)")
    if not report.ok:
        raise Failure(1)


def _edit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "-o", "--output", type=click.Path(path_type=str), help="Write the result to this new directory."
        ),
        click.option("--in-place", is_flag=True, help="Replace the model's own files atomically."),
        click.option("--force", is_flag=True, help="Replace OUTPUT if it exists."),
        click.option("--tag-set", help="Only the meta graph with exactly these tags (comma-separated)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_edit(
    model_path: str, output: str | None, in_place: bool, force: bool, edit: Callable[[Model], Model]
) -> None:
    """Load, edit, refuse a result that `check` finds newly inconsistent, then write."""
    if in_place == (output is not None):
        raise click.UsageError("give either -o/--output OUT or --in-place")
    model = load(model_path)
    # Problems the model already had are not the edit's: compare counts per kind, since a
    # rename legitimately changes the key an existing finding names.
    before = Counter(f.code for f in check(model).findings)
    edit(model)
    after = check(model).findings
    grown = {code for code, n in Counter(f.code for f in after).items() if n > before[code]}
    new = [f for f in after if f.code in grown]
    if new:
        raise ConsistencyError(
            f"the edit would leave the model inconsistent ({_finding_line(new[0])}); nothing written"
        )
    written = save(model, output, in_place=in_place, force=force)
    for warning in model.warnings:
        click.echo(f"{PROG}: warning: {warning}", err=True)
    click.echo(f"wrote {written}", err=True)


@cli.command("rename-signature")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("old")
@click.argument("new")
@_edit_options
def rename_signature_command(
    model: str, old: str, new: str, output: str | None, in_place: bool, force: bool, tag_set: str | None
) -> None:
    """Rename signature key OLD to NEW (for both the v1 and the TF2 loader).

    \b
    Example:
      savedmodel-surgery rename-signature ./my_model serving_default predict -o ./renamed
    """
    tags = _tags(tag_set)
    _run_edit(model, output, in_place, force, lambda m: edits.rename_signature(m, old, new, tag_set=tags))


def _tags(tag_set: str | None) -> frozenset[str] | None:
    return parse_tag_set(tag_set) if tag_set is not None else None


@cli.command("rename-input")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("signature")
@click.argument("old")
@click.argument("new")
@_edit_options
def rename_input_command(
    model: str,
    signature: str,
    old: str,
    new: str,
    output: str | None,
    in_place: bool,
    force: bool,
    tag_set: str | None,
) -> None:
    """Rename input key OLD of SIGNATURE to NEW.

    \b
    When the new key sorts elsewhere, the wrapper function's arguments and the call node's
    inputs are reordered to match, so both loaders keep handing each value to the right input.
    Example:
      savedmodel-surgery rename-input ./my_model serving_default input_1 images -o ./fixed
    """
    tags = _tags(tag_set)
    _run_edit(
        model, output, in_place, force, lambda m: edits.rename_input(m, signature, old, new, tag_set=tags)
    )


@cli.command("rename-output")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("signature")
@click.argument("old")
@click.argument("new")
@_edit_options
def rename_output_command(
    model: str,
    signature: str,
    old: str,
    new: str,
    output: str | None,
    in_place: bool,
    force: bool,
    tag_set: str | None,
) -> None:
    """Rename output key OLD of SIGNATURE to NEW.

    \b
    When the new key sorts elsewhere, the wrapper's results, the call node's outputs and the
    `:i` tensor names are reordered to match.
    Example:
      savedmodel-surgery rename-output ./my_model serving_default output_0 scores -o ./fixed
    """
    tags = _tags(tag_set)
    _run_edit(
        model, output, in_place, force, lambda m: edits.rename_output(m, signature, old, new, tag_set=tags)
    )


@cli.command("remove-signature")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("signature")
@_edit_options
def remove_signature_command(
    model: str, signature: str, output: str | None, in_place: bool, force: bool, tag_set: str | None
) -> None:
    """Delete SIGNATURE (for both loaders).

    \b
    Example:
      savedmodel-surgery remove-signature ./my_model preprocess -o ./slim
    """
    tags = _tags(tag_set)
    _run_edit(model, output, in_place, force, lambda m: edits.remove_signature(m, signature, tag_set=tags))


@cli.command("copy-signature")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("src")
@click.argument("dst")
@_edit_options
def copy_signature_command(
    model: str, src: str, dst: str, output: str | None, in_place: bool, force: bool, tag_set: str | None
) -> None:
    """Add DST as a second signature that serves exactly what SRC serves.

    \b
    Example:
      savedmodel-surgery copy-signature ./my_model predict serving_default -o ./aliased
    """
    tags = _tags(tag_set)
    _run_edit(model, output, in_place, force, lambda m: edits.copy_signature(m, src, dst, tag_set=tags))


@cli.command("set-method")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("signature")
@click.argument("method")
@_edit_options
def set_method_command(
    model: str,
    signature: str,
    method: str,
    output: str | None,
    in_place: bool,
    force: bool,
    tag_set: str | None,
) -> None:
    """Set the method_name of SIGNATURE (e.g. tensorflow/serving/regress).

    \b
    Example:
      savedmodel-surgery set-method ./my_model serving_default tensorflow/serving/predict --in-place
    """
    tags = _tags(tag_set)
    _run_edit(model, output, in_place, force, lambda m: edits.set_method(m, signature, method, tag_set=tags))


@cli.command("set-tags")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("old_tags")
@click.argument("new_tags")
@click.option(
    "-o", "--output", type=click.Path(path_type=str), help="Write the result to this new directory."
)
@click.option("--in-place", is_flag=True, help="Replace the model's own files atomically.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
def set_tags_command(
    model: str, old_tags: str, new_tags: str, output: str | None, in_place: bool, force: bool
) -> None:
    """Change the tag set OLD_TAGS of one meta graph to NEW_TAGS (comma-separated).

    \b
    Example:
      savedmodel-surgery set-tags ./my_model serve,gpu serve,tpu -o ./tpu_model
    """
    _run_edit(
        model, output, in_place, force, lambda m: edits.set_tags(m, old_tags.split(","), new_tags.split(","))
    )


@cli.command("apply")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("plan", type=click.Path(path_type=str))
@click.option(
    "-o", "--output", type=click.Path(path_type=str), help="Write the result to this new directory."
)
@click.option("--in-place", is_flag=True, help="Replace the model's own files atomically.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
def apply_command(model: str, plan: str, output: str | None, in_place: bool, force: bool) -> None:
    """Apply the edits of a PLAN file (JSON or YAML) as one edit.

    \b
    The plan is validated whole before anything is touched; if any operation is refused or
    the result would not be consistent, nothing is written. Example plan.yaml:
      operations:
        - {op: rename-signature, old: serving_default, new: predict}
        - {op: rename-input, signature: predict, old: input_1, new: images}
    Example:
      savedmodel-surgery apply ./my_model plan.yaml -o ./patched
    """
    parsed = load_plan(plan)
    _run_edit(model, output, in_place, force, parsed.apply)


@cli.command("diff")
@click.argument("a", type=click.Path(path_type=str))
@click.argument("b", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff_command(a: str, b: str, as_json: bool) -> None:
    """Show what differs between two SavedModels, signature by signature (exit 1 if anything).

    \b
    Example:
      savedmodel-surgery diff ./my_model ./patched
    """
    changes = diff(load(a), load(b))
    if as_json:
        _print_json({"changes": [c.model_dump() for c in changes]})
    else:
        for change in changes:
            where = f"[{','.join(change.tags)}]" + (f" {change.signature!r}" if change.signature else "")
            click.echo(f"{where} {change.kind}: {change.detail}")
        if not changes:
            click.echo("no signature-level differences")
    if changes:
        raise Failure(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turn errors into one line on stderr and an exit status."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except Failure as failure:
        return failure.status
    except click.exceptions.Abort:
        click.echo(f"{PROG}: aborted", err=True)
        return 2
    except click.ClickException as err:
        if debug:
            traceback.print_exc()
        click.echo(f"{PROG}: error: {err.format_message()} (see --help)", err=True)
        return 2
    except SurgeryError as err:
        if debug:
            traceback.print_exc()
        click.echo(f"{PROG}: error: {err}", err=True)
        return 2
    except Exception as err:  # a bug: still one line, the traceback behind --debug
        if debug:
            traceback.print_exc()
        click.echo(
            f"{PROG}: internal error: {type(err).__name__}: {err} (rerun with --debug for details)", err=True
        )
        return 2
    return 0
