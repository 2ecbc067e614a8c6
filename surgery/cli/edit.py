"""The edit commands, one per operation of the registry (`surgery.operations`), over the runner."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from surgery.edits import parse_tag_set
from surgery.errors import SurgeryWarning
from surgery.operations import OPERATIONS, Operation
from surgery.remote import (
    is_url,
)
from surgery.runner import Edit, Job, execute
from surgery.tensors import parse_dtype, parse_shape

if TYPE_CHECKING:
    pass
from surgery.cli.app import (
    DRY_RUN_OPTIONS,
    NO_SYNC_OPTION,
    PROG,
    TAG_SET_OPTION,
    cli,
    detail,
    echo_changes,
    echo_graph_changes,
    edit_options,
    files_line,
    print_json,
    say,
    writing,
    wrote,
)


def run_edit(
    model_path: str,
    output: str | None,
    in_place: bool,
    force: bool,
    edit: Edit,
    *,
    dry_run: bool = False,
    as_json: bool = False,
    sync: bool = True,
) -> None:
    """The runner's job for one model, its result printed: where it wrote, or the diff it would make.

    With `dry_run`, the same edit and refusals, in memory only: nothing is written (no output
    directory, no temporary file, no lock).
    """
    if in_place and output is not None:
        raise click.UsageError("give either -o/--output OUT or --in-place")
    if as_json and not dry_run:
        raise click.UsageError("--json goes with --dry-run: it prints the diff the edit would make")
    if not (in_place or dry_run or output is not None):
        raise click.UsageError("give either -o/--output OUT or --in-place")
    if not dry_run:
        writing(model_path, output)
    result = execute(Job(model_path, edit, output, in_place, force, dry_run, sync))
    if not dry_run:
        if result.changed is False and in_place:
            say(f"no change: the edit leaves {model_path} as it is; nothing was written")
            return
        wrote(str(result.output))
        if result.changed is False:
            say(f"wrote {result.output}, an unchanged copy: the edit leaves {model_path} as it is")
        else:
            say(f"wrote {result.output}")
        if result.output is not None and not is_url(result.output):
            detail(files_line(Path(result.output)))
        return
    changes, graph_changes = result.changes or [], result.graph_changes or []
    target = result.output
    if as_json:
        data = {"model": model_path, "output": target, "dry_run": True}
        graph = [c.model_dump() for c in graph_changes]
        print_json({**data, "changes": [c.model_dump() for c in changes], "graph_changes": graph})
    else:
        echo_changes(changes)
        echo_graph_changes(graph_changes)
    say("dry run: nothing written" + (f" (would write {target})" if target else ""))


_SHAPE_ARGS = {"ignore_unknown_options": True}  # a SHAPE such as -1,4 is an argument, not an option


_KEY_IS_OUTPUT = "\0key-is-output"


def _tensor_edit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Edit options where `--output-key` says KEY is an output and `-o/--output OUT` is the target.

    A bare `--output` (on its own, or before another option) also marks KEY as an output, as it
    did before `--output-key`: it still works, with a one-line note to write `--output-key`.
    """
    options = [
        click.option(
            "-o", "out", type=click.Path(path_type=str), help="Write the result to this new directory."
        ),
        click.option(
            "--output",
            "output_opt",
            is_flag=False,
            flag_value=_KEY_IS_OUTPUT,
            default=None,
            help="OUT: write the result there (a bare --output: the old spelling of --output-key).",
        ),
        click.option("--output-key", is_flag=True, help="KEY is an output, not an input."),
        click.option("--in-place", is_flag=True, help="Replace the model's own files atomically."),
        click.option("--force", is_flag=True, help="Replace OUT if it exists."),
        NO_SYNC_OPTION,
        TAG_SET_OPTION,
        *DRY_RUN_OPTIONS,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _target(out: str | None, output_opt: str | None, output_key: bool) -> tuple[str | None, bool]:
    """(output directory, whether KEY is an output) from -o, --output and --output-key."""
    if output_opt == _KEY_IS_OUTPUT:
        warnings.warn(
            SurgeryWarning(
                "a bare --output saying KEY is an output is the old spelling: write --output-key "
                "(--output OUT stays the output directory)"
            ),
            stacklevel=2,
        )
        return out, True
    if out is not None and output_opt is not None:
        raise click.UsageError("give the output directory once, with -o OUT or --output OUT")
    return out if out is not None else output_opt, output_key


# --- the edit commands, one per operation of the registry ---------------------------------------------

_PARSE: dict[str, Callable[[str], Any]] = {"shape": parse_shape, "dtype": parse_dtype}
"""Command-line text parsed before the model is read, so that a bad value is refused first."""


def _edit_help(operation: Operation) -> str:
    """The command's --help text: what it does, how, and its examples."""
    summary, _, details = operation.help.partition("\n\n")
    lines = [summary, ""]
    if details:
        lines += [details, ""]
    lines += ["\b", "Example:", *(f"  {PROG} {example}" for example in operation.examples)]
    return "\n".join(lines)


def _edit_command(operation: Operation) -> click.Command:
    """The command `NAME MODEL ARGS... [options]` of an operation: -o/--in-place/--dry-run and the
    rest as every edit takes them, its flags, and a bare `--output` where KEY may be an output."""
    key_may_be_output = any(a.name == "output" for a in operation.flags)

    def command(model: str, **params: Any) -> None:
        if key_may_be_output:
            output, params["output"] = _target(
                params.pop("out"), params.pop("output_opt"), params.pop("output_key")
            )
        else:
            output = params.pop("output")
        in_place, force = params.pop("in_place"), params.pop("force")
        dry_run, as_json, sync = params.pop("dry_run"), params.pop("as_json"), not params.pop("no_sync")
        for argument in operation.positional:
            parse = _PARSE.get(argument.kind)
            if parse is not None:
                params[argument.name] = parse(params[argument.name])
        if params.get("tag_set") is not None:
            params["tag_set"] = parse_tag_set(params["tag_set"])
        run_edit(
            model,
            output,
            in_place,
            force,
            lambda m: operation.apply(m, params),
            dry_run=dry_run,
            as_json=as_json,
            sync=sync,
        )

    # A bare --output says KEY is an output where it may be one; -o OUT / --output OUT the target.
    options = _tensor_edit_options if key_may_be_output else partial(edit_options, tag_set=operation.tag_set)
    func: Callable[..., Any] = options(command)
    for flag in reversed([f for f in operation.flags if f.name != "output"]):
        func = click.option(f"--{flag.name}", is_flag=True, help=flag.help)(func)
    for argument in reversed(operation.positional):
        func = click.argument(argument.name, metavar=argument.metavar)(func)
    func = click.argument("model", type=click.Path(path_type=str))(func)
    shape = any(a.kind == "shape" for a in operation.arguments)
    return click.command(
        operation.name, help=_edit_help(operation), context_settings=_SHAPE_ARGS if shape else None
    )(func)


for _operation in OPERATIONS.values():
    cli.add_command(_edit_command(_operation))
