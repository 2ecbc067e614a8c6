"""The `savedmodel-surgery` command line: a thin layer over the library.

Exit codes: 0 success; 1 `check` found problems; 2 bad usage, bad input or an I/O failure,
reported in one line on stderr (a traceback only with --debug).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from surgery import __version__
from surgery.check import Finding, check
from surgery.edits import parse_tag_set, rename_signature
from surgery.errors import ConsistencyError, SurgeryError
from surgery.io import Model, load, save
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
    before = set(check(model).findings)
    edit(model)
    new = [f for f in check(model).findings if f not in before]
    if new:
        raise ConsistencyError(
            f"the edit would leave the model inconsistent ({_finding_line(new[0])}); nothing written"
        )
    written = save(model, output, in_place=in_place, force=force)
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
    tags = parse_tag_set(tag_set) if tag_set is not None else None
    _run_edit(model, output, in_place, force, lambda m: rename_signature(m, old, new, tag_set=tags))


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
            raise
        click.echo(f"{PROG}: error: {err.format_message()} (see --help)", err=True)
        return 2
    except SurgeryError as err:
        if debug:
            raise
        click.echo(f"{PROG}: error: {err}", err=True)
        return 2
    except Exception as err:  # a bug: still one line, the traceback behind --debug
        if debug:
            raise
        click.echo(
            f"{PROG}: internal error: {type(err).__name__}: {err} (rerun with --debug for details)", err=True
        )
        return 2
    return 0
