"""The `savedmodel-surgery` command line: a thin layer over the library.

Exit codes: 0 success; 1 `check` found an error (or, with --strict, a warning); 2 bad usage, bad
input or an I/O failure, reported in one line on stderr (a traceback only with --debug).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from surgery import __version__
from surgery.batch import (
    Target,
    apply_plan,
    batch_targets,
    check_output_free,
    edit_model,
    expand_models,
    finding_line,
    is_pattern,
    preview_edit,
)
from surgery.check import Disagreement, check, disagreements
from surgery.convert import FORMATS as CONVERT_FORMATS
from surgery.convert import convert
from surgery.diff import diff
from surgery.edits import parse_tag_set
from surgery.errors import SavedModelIOError, SurgeryError, SurgeryWarning, one_line
from surgery.explain import FORMATS as EXPLAIN_FORMATS
from surgery.explain import explain, explain_dot, explain_html, explain_text, render_svg
from surgery.graph_changes import graph_diff
from surgery.model import Format as ConvertFormat
from surgery.model import Model
from surgery.operations import OPERATIONS, Operation
from surgery.remote import (
    fetched,
    is_url,
    local_path,
    refuse_existing,
    remote_in_place,
    remote_output,
    url_name,
)
from surgery.schema import TENSORFLOW_VERSION
from surgery.show import show_json, show_text
from surgery.signatures import user_keys
from surgery.storage import load
from surgery.tensors import parse_dtype, parse_shape

if TYPE_CHECKING:
    from surgery.plans import Plan
    from surgery.reports import BatchResult, Change, Finding, GraphChange

PROG = "savedmodel-surgery"


class Failure(Exception):
    """A failure already reported on stderr; carries the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# Colours: click.echo drops them when the stream is not a terminal, and NO_COLOR turns them off.
_STYLES: dict[str, dict[str, Any]] = {
    "error": {"fg": "red", "bold": True},
    "warning": {"fg": "yellow", "bold": True},
    "ok": {"fg": "green", "bold": True},
    "fail": {"fg": "red", "bold": True},
    "heading": {"bold": True},
    "signature": {"fg": "cyan", "bold": True},
    "title": {"bold": True},
    "loader": {"fg": "blue"},
    "missing": {"fg": "red", "bold": True},
    "link": {"fg": "magenta"},
    "added": {"fg": "green"},
    "removed": {"fg": "red"},
    "changed": {"fg": "yellow"},
}


def _style(role: str, text: str) -> str:
    """`text` marked up for `role` (see _STYLES); plain when the role has no style."""
    return click.style(text, **_STYLES[role]) if role in _STYLES else text


def _no_color() -> bool:
    """The NO_COLOR convention (no-color.org): set and not empty turns colours off."""
    return bool(os.environ.get("NO_COLOR"))


def _options() -> dict[str, Any]:
    """The group-level options (--quiet, --verbose, --debug) of the running command."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return {}
    options: dict[str, Any] = ctx.find_root().obj or {}
    return options


def _say(message: str) -> None:
    """A note on stderr about what was done ("wrote OUT"); --quiet silences it."""
    if not _options().get("quiet"):
        click.echo(message, err=True)


def _detail(message: str) -> None:
    """A note on stderr shown only with --verbose."""
    if _options().get("verbose"):
        click.echo(f"{PROG}: {message}", err=True)


def _model_dir(path: str) -> str:
    """A local directory holding MODEL: the path itself, or a URL's model fetched for this command.

    The fetched copy is a temporary directory removed when the command ends.
    """
    if not is_url(path):
        return local_path(path)
    ctx = click.get_current_context()
    local = ctx.with_resource(fetched(path))
    _detail(f"fetched {path} into {local}")
    return str(local)


def _load(path: str) -> Model:
    """`load` (a URL through a fetched copy), with what was read reported under --verbose."""
    model = load(_model_dir(path))
    metas = len(model.proto.meta_graphs)
    name = model.file_name
    where = f"{path.rstrip('/')}/{name}" if is_url(path) else str(Path(path) / name)
    size = model.holes.size if model.holes else len(model.source)
    _detail(f"read {where} ({size:,} bytes, {metas} meta graph(s))")
    return model


def _files(directory: Path) -> str:
    """`OUT: saved_model.pb (27,220 bytes), fingerprint.pb (58 bytes)`: the model files written."""
    names = ("saved_model.pb", "saved_model.pbtxt", "fingerprint.pb")
    files = [f"{n} ({(directory / n).stat().st_size:,} bytes)" for n in names if (directory / n).is_file()]
    return f"{directory}: {', '.join(files)}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name=PROG, message=f"%(prog)s %(version)s (TensorFlow {TENSORFLOW_VERSION} schema)"
)
@click.option(
    "-q", "--quiet", is_flag=True, help="No notes on stderr (such as 'wrote OUT'); errors still show."
)
@click.option("-v", "--verbose", is_flag=True, help="More notes on stderr: what was read and written.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool, debug: bool) -> None:
    """Edit TensorFlow SavedModels on disk with protobuf alone: no TensorFlow needed.

    Every edit writes a new directory (-o OUT) or, with --in-place, replaces the model's files
    atomically. The input is never modified otherwise. --dry-run on an edit prints the diff it
    would make and writes nothing. MODEL and OUT may be fsspec URLs (gs://, s3://, http:// to
    read; pip install 'savedmodel-surgery[remote]'). Colours show on a terminal only (NO_COLOR
    turns them off). Shell completion: see the README (eval "$(_SAVEDMODEL_SURGERY_COMPLETE=bash_source
    savedmodel-surgery)").

    \b
    Example:
      savedmodel-surgery show ./my_model
      savedmodel-surgery --quiet rename-signature ./my_model serving_default predict -o ./renamed
    """
    if quiet and verbose:
        raise click.UsageError("give --quiet or --verbose, not both")
    if _no_color():
        ctx.color = False
    ctx.obj = {"debug": debug, "quiet": quiet, "verbose": verbose}


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
    loaded = _load(model)
    if as_json:
        _print_json(show_json(loaded))
    else:
        click.echo(show_text(loaded))


def _finding_line(finding: Finding | Disagreement) -> str:
    return finding_line(finding)


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
    loaded = _load(model)
    if as_json:  # the report (pydantic) only for JSON: the text needs its fields alone
        report = check(loaded, allow_ops=allow_ops)
        _print_json(report.model_dump())
        if report.errors or (strict and report.warnings):
            raise Failure(1)
        return
    found = disagreements(loaded, allow_ops=allow_ops)
    for finding in found:
        click.echo(f"{_style(finding.severity, finding.severity)}: {_finding_line(finding)}")
    errors = sum(f.severity == "error" for f in found)
    cautions = len(found) - errors
    failed = bool(errors or (strict and cautions))
    if found:
        counts = f"{errors} error(s), {cautions} warning(s)"
        click.echo(f"{model}: {_style('fail' if failed else 'warning', counts)}")
    else:
        click.echo(f"{model}: {_style('ok', 'ok')}")
    if failed:
        raise Failure(1)


_NO_SYNC_OPTION = click.option(
    "--no-sync",
    is_flag=True,
    help=(
        "Skip fsync (as cp and TensorFlow do): faster on slow disks; a killed run still leaves "
        "the old or the new model, but a power cut may leave the output incomplete."
    ),
)


def _edit_options(func: Callable[..., Any], *, tag_set: bool = True) -> Callable[..., Any]:
    """The target and write options every edit command takes (`--tag-set` where it applies)."""
    options = [
        click.option(
            "-o", "--output", type=click.Path(path_type=str), help="Write the result to this new directory."
        ),
        click.option("--in-place", is_flag=True, help="Replace the model's own files atomically."),
        click.option("--force", is_flag=True, help="Replace OUTPUT if it exists."),
        _NO_SYNC_OPTION,
        *([_TAG_SET_OPTION] if tag_set else []),
        *_DRY_RUN_OPTIONS,
    ]
    for option in reversed(options):
        func = option(func)
    return func


_TAG_SET_OPTION = click.option(
    "--tag-set", help="Only the meta graph with exactly these tags (comma-separated)."
)

_DRY_RUN_OPTIONS = [
    click.option(
        "--dry-run",
        is_flag=True,
        help="Edit in memory and print the diff it would make; write nothing (-o/--in-place optional).",
    ),
    click.option(
        "--json", "as_json", is_flag=True, help="With --dry-run: the diff as JSON (as diff --json)."
    ),
]


def _run_edit(
    model_path: str,
    output: str | None,
    in_place: bool,
    force: bool,
    edit: Callable[[Model], Model],
    *,
    dry_run: bool = False,
    as_json: bool = False,
    sync: bool = True,
) -> None:
    """Load, edit, refuse a result that `check` finds newly inconsistent, then write.

    With `dry_run`, the same edit and refusals, in memory only: the diff it would make is
    printed and nothing is written (no output directory, no temporary file, no lock).
    """
    if in_place and output is not None:
        raise click.UsageError("give either -o/--output OUT or --in-place")
    if dry_run:
        _preview(model_path, output, in_place, force, edit, as_json)
        return
    if as_json:
        raise click.UsageError("--json goes with --dry-run: it prints the diff the edit would make")
    if not in_place and output is None:
        raise click.UsageError("give either -o/--output OUT or --in-place")
    if in_place and is_url(model_path):
        with remote_in_place(model_path) as local:
            edit_model(local, edit, in_place=True, sync=sync)
        _say(f"wrote {model_path}")
        return
    if output is not None and is_url(output):
        with remote_output(output, force=force) as local_out:  # refuses an existing OUT first
            edit_model(_model_dir(model_path), edit, local_out, sync=sync)
        _say(f"wrote {output}")
        return
    out = local_path(output) if output is not None else None
    written = edit_model(_model_dir(model_path), edit, out, in_place=in_place, force=force, sync=sync)
    _say(f"wrote {written}")
    _detail(_files(written))


def _preview(
    model_path: str,
    output: str | None,
    in_place: bool,
    force: bool,
    edit: Callable[[Model], Model],
    as_json: bool,
) -> None:
    """--dry-run: edit in memory, print the diff from the model to the result, write nothing."""
    model = _load(model_path)
    edited = preview_edit(model, edit)
    changes, graph_changes = diff(model, edited), graph_diff(model, edited)
    if output is not None and is_url(output):
        refuse_existing(output, force=force)
    elif output is not None:
        check_output_free(local_path(output), force=force)
    target = output if output is not None else (model_path if in_place else None)
    if as_json:
        data = {"model": model_path, "output": target, "dry_run": True}
        graph = [c.model_dump() for c in graph_changes]
        _print_json({**data, "changes": [c.model_dump() for c in changes], "graph_changes": graph})
    else:
        _echo_changes(changes)
        _echo_graph_changes(graph_changes)
    _say("dry run: nothing written" + (f" (would write {target})" if target else ""))


@cli.command("apply")
@click.argument("paths", metavar="MODEL... PLAN", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "-o", "--output", type=click.Path(path_type=str), help="Write the result to this new directory."
)
@click.option("--in-place", is_flag=True, help="Replace each model's own files atomically.")
@click.option("--suffix", help="Write each model's result beside it, to <model><SUFFIX>.")
@click.option(
    "--output-root",
    type=click.Path(path_type=str),
    help="Write each model's result to DIR/<name of the model's directory>.",
)
@click.option("--force", is_flag=True, help="Replace outputs that exist.")
@_NO_SYNC_OPTION
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1), help="Worker processes for several models [default: CPUs+1]."
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary of the run.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Edit in memory and print the diff each model would get; write nothing (outputs optional).",
)
def apply_command(
    paths: tuple[str, ...],
    output: str | None,
    in_place: bool,
    suffix: str | None,
    output_root: str | None,
    force: bool,
    no_sync: bool,
    jobs: int | None,
    as_json: bool,
    dry_run: bool,
) -> None:
    """Apply the edits of a PLAN file (JSON or YAML) as one edit, to one model or many.

    \b
    The plan is validated whole before anything is touched; if any operation is refused or
    the result would not be consistent, nothing is written. Example plan.yaml:
      operations:
        - {op: rename-signature, old: serving_default, new: predict}
        - {op: rename-input, signature: predict, old: input_1, new: images}
    Example:
      savedmodel-surgery apply ./my_model plan.yaml --dry-run   # the diff it would make
      savedmodel-surgery apply ./my_model plan.yaml -o ./patched

    \b
    Several models (paths, or glob patterns such as 'models/*' expanded here when the shell
    did not) are edited in parallel, each as one edit, each result written with --suffix
    beside its model, under --output-root, or --in-place. A model that fails does not stop
    the others. A summary line per model follows; exit status 0 when every model was
    written, 1 when some failed (like check and diff, 1 means the run found failures),
    2 for bad usage or a bad plan, when nothing is touched.
      savedmodel-surgery apply 'models/*' plan.yaml --output-root ./patched --jobs 4
    """
    if not paths:
        raise click.MissingParameter(param_type="argument", param_hint="'MODEL'")
    if len(paths) == 1:
        raise click.MissingParameter(param_type="argument", param_hint="'PLAN'")
    from surgery.plans import load_plan  # YAML and the plan models: only `apply` needs them

    *patterns, plan = paths
    several = len(patterns) > 1 or any(is_pattern(p) for p in patterns)
    if not (several or suffix is not None or output_root is not None or as_json):
        parsed = load_plan(plan)
        _run_edit(
            patterns[0],
            output,
            in_place,
            force,
            parsed.apply,
            dry_run=dry_run,
            as_json=as_json,
            sync=not no_sync,
        )
        return
    # Several models: everything is checked before the first model is touched.
    chosen = [output is not None, in_place, suffix is not None, output_root is not None].count(True)
    if chosen > 1 or (chosen == 0 and not dry_run):
        raise click.UsageError(
            "give one of --suffix SUFFIX, --output-root DIR or --in-place (or -o OUT for one model)"
        )
    if suffix is not None and (not suffix or os.sep in suffix):
        raise click.BadParameter(f"{suffix!r}: give a non-empty name without '/'", param_hint="--suffix")
    if os.path.isdir(plan):
        raise click.UsageError(f"PLAN {plan} is a directory: the last argument must be the plan file")
    urls = [p for p in [*patterns, output or "", output_root or ""] if is_url(p)]
    if urls:
        raise click.UsageError(
            f"{urls[0]}: a batch run takes local models and outputs; "
            "give one URL model with -o OUT or --in-place"
        )
    parsed = load_plan(plan)
    models = expand_models(patterns)
    if output is not None and len(models) > 1:
        raise click.UsageError(
            f"-o/--output takes one model, not {len(models)}: use --suffix, --output-root or --in-place"
        )
    if output is not None:
        targets = [Target(models[0], output)]
    else:
        targets = batch_targets(models, suffix=suffix, output_root=output_root)
    if dry_run:
        results = _run_with_progress(parsed, targets, force, jobs, dry_run=True)
        for result in results if chosen == 0 else []:
            result.output = None  # no output was named: nothing it would write to
        _print_summary(results, as_json, dry_run=True)
        if any(not r.ok for r in results):
            raise Failure(1)
        return
    created = _make_root(output_root)
    results = _run_with_progress(parsed, targets, force, jobs, sync=not no_sync)
    failed = sum(not r.ok for r in results)
    if created is not None and failed == len(results):
        with contextlib.suppress(OSError):
            created.rmdir()  # nothing was written into the root this run made
    _print_summary(results, as_json)
    if failed:
        raise Failure(1)


def _print_summary(results: list[BatchResult], as_json: bool, *, dry_run: bool = False) -> None:
    """One line per model and a count, or the --json summary; with `dry_run`, each model's diff."""
    failed = sum(not r.ok for r in results)
    if as_json:
        ok = len(results) - failed
        exclude = None if dry_run else {"changes", "graph_changes"}
        dumped = [r.model_dump(exclude=exclude) for r in results]
        extra = {"dry_run": True} if dry_run else {}
        _print_json({"results": dumped, "ok": ok, "failed": failed, **extra})
        return
    for r in results:
        warned = "".join(f" (warning: {w})" for w in r.warnings)
        passed, failed_mark = _style("ok", "ok  "), _style("fail", "FAIL")
        target = f" -> {r.output}" if r.output is not None else ""
        click.echo(f"{passed} {r.model}{target}{warned}" if r.ok else f"{failed_mark} {r.model}: {r.error}")
        for change in r.changes or []:
            click.echo(f"     {_change_line(change)}")
        if r.ok and dry_run and not r.changes:
            click.echo("     no signature-level differences")
        _echo_graph_changes(r.graph_changes or [], indent="     ")
    if dry_run:
        click.echo(
            f"{len(results)} model(s): {len(results) - failed} ok, {failed} failed; nothing written (dry run)"
        )
    else:
        click.echo(f"{len(results)} model(s): {len(results) - failed} written, {failed} failed")


def _make_root(output_root: str | None) -> Path | None:
    """Create the --output-root directory if needed; returns it when this run created it."""
    if output_root is None or os.path.isdir(output_root):
        return None
    try:
        os.makedirs(output_root)
    except FileExistsError:
        if os.path.isdir(output_root):
            return None  # another run made it meanwhile: theirs, and shared
        raise SavedModelIOError(f"{output_root} exists and is not a directory: choose another root") from None
    except OSError as err:
        raise SavedModelIOError(f"cannot create {output_root}: {err.strerror or err}") from None
    return Path(output_root)


def _run_with_progress(
    plan: Plan,
    targets: list[Target],
    force: bool,
    jobs: int | None,
    *,
    dry_run: bool = False,
    sync: bool = True,
) -> list[BatchResult]:
    """Run the batch, with a progress bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return apply_plan(plan, targets, force=force, jobs=jobs, dry_run=dry_run, sync=sync)
    with click.progressbar(length=len(targets), label="apply", file=sys.stderr) as bar:
        return apply_plan(
            plan,
            targets,
            force=force,
            jobs=jobs,
            on_result=lambda _: bar.update(1),
            dry_run=dry_run,
            sync=sync,
        )


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
    model_a, model_b = _load(a), _load(b)
    changes, graph_changes = diff(model_a, model_b), graph_diff(model_a, model_b)
    if as_json:
        graph = [c.model_dump() for c in graph_changes]
        _print_json({"changes": [c.model_dump() for c in changes], "graph_changes": graph})
    else:
        _echo_changes(changes)
        _echo_graph_changes(graph_changes)
    if changes or graph_changes:
        raise Failure(1)


def _change_line(change: Change) -> str:
    """`[serve] 'masked' output-renamed: alpha -> zeta`, the kind coloured."""
    where = f"[{','.join(change.tags)}]" + (f" {change.signature!r}" if change.signature else "")
    return f"{where} {_style(_change_role(change.kind), change.kind)}: {change.detail}"


def _echo_changes(changes: list[Change]) -> None:
    for change in changes:
        click.echo(_change_line(change))
    if not changes:
        click.echo("no signature-level differences")


# Graph-level changes in text: at most this many lines for one scope of one meta graph (a
# function, the graph, the object graph) and in all; --json lists every change.
_GRAPH_LINES_PER_SCOPE = 8
_GRAPH_LINES = 40


def _graph_change_line(change: GraphChange) -> str:
    """`[serve] function:f node-added: row_cast: Cast(row)`, the kind coloured."""
    what = change.detail if change.detail == change.name or change.kind.endswith("-renamed") else None
    what = what or f"{change.name}: {change.detail}"
    kind = _style(_change_role(change.kind), change.kind)
    return f"[{','.join(change.tags)}] {change.scope} {kind}: {what}"


def _echo_graph_changes(changes: list[GraphChange], indent: str = "") -> None:
    """A heading, then one line per change; long scopes and long lists cut with `... and N more`."""
    if not changes:
        return
    click.echo(f"{indent}{_style('heading', 'graph-level differences:')}")
    per_scope: dict[tuple[tuple[str, ...], str], list[GraphChange]] = {}
    for change in changes:
        per_scope.setdefault((tuple(change.tags), change.scope), []).append(change)
    shown = skipped = 0
    for (tags, scope), group in per_scope.items():
        room = min(_GRAPH_LINES_PER_SCOPE, _GRAPH_LINES - shown)
        if room <= 0:
            skipped += len(group)
            continue
        for change in group[:room]:
            click.echo(f"{indent}{_graph_change_line(change)}")
        shown += min(room, len(group))
        if len(group) > room:
            click.echo(f"{indent}  ... and {len(group) - room} more in [{','.join(tags)}] {scope}")
    if skipped:
        click.echo(f"{indent}... and {skipped} more in other scopes (--json lists every change)")


def _change_role(kind: str) -> str:
    """The colour of a diff line: added green, removed red, everything else changed."""
    return next((end for end in ("added", "removed") if kind.endswith(end)), "changed")


@cli.command("convert")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--to", "fmt", type=click.Choice(CONVERT_FORMATS), help="pbtxt: text format; pb: binary.")
@click.option("-o", "--output", type=click.Path(path_type=str), help="Write the copy to this new directory.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@_NO_SYNC_OPTION
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
    if fmt is None:
        raise click.UsageError("give the format to write: --to pbtxt (text) or --to pb (binary)")
    to: ConvertFormat = "pbtxt" if fmt == "pbtxt" else "pb"
    if is_url(output):
        with remote_output(output, force=force) as local_out:  # refuses an existing OUT first
            result = convert(_load(model), local_out, to, sync=not no_sync).model_copy(
                update={"output": output}
            )
    else:
        result = convert(_load(model), local_path(output), to, force=force, sync=not no_sync)
    if is_url(model):
        result = result.model_copy(update={"input": model})
    _detail(f"fingerprint.pb: {result.fingerprint}")
    if as_json:
        _print_json(result.model_dump())
    else:
        what = f"{result.file}, {result.bytes:,} bytes; fingerprint.pb {result.fingerprint}"
        _say(f"wrote {result.output} ({what})")


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
    explanation = explain(_load(model), signature)
    if as_json:
        _print_json(explanation.model_dump())
    elif fmt == "text":
        click.echo(explain_text(explanation, _style), nl=False)
    elif fmt == "html":
        title = url_name(model) if is_url(model) else Path(model).name or model
        click.echo(explain_html(explanation, title), nl=False)
    else:
        dot = explain_dot(explanation)
        click.echo(render_svg(dot) if fmt == "svg" else dot, nl=False)


_SHAPE_ARGS = {"ignore_unknown_options": True}  # a SHAPE such as -1,4 is an argument, not an option


_KEY_IS_OUTPUT = "\0key-is-output"


def _tensor_edit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Edit options where a bare `--output` says KEY is an output and `--output OUT` is the target.

    The command-line contract gives set-shape and set-dtype both `-o/--output OUT` and a bare `--output`
    flag: `--output` followed by a value is the output directory, on its own (or before
    another option) it marks KEY as an output. `--output-key` says the latter unambiguously.
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
            help="OUT: write the result there; bare: KEY is an output, not an input.",
        ),
        click.option("--output-key", is_flag=True, help="KEY is an output (same as a bare --output)."),
        click.option("--in-place", is_flag=True, help="Replace the model's own files atomically."),
        click.option("--force", is_flag=True, help="Replace OUT if it exists."),
        _NO_SYNC_OPTION,
        _TAG_SET_OPTION,
        *_DRY_RUN_OPTIONS,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _target(out: str | None, output_opt: str | None, output_key: bool) -> tuple[str | None, bool]:
    """(output directory, whether KEY is an output) from -o, --output and --output-key."""
    if output_opt == _KEY_IS_OUTPUT:
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
        _run_edit(
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
    options = _tensor_edit_options if key_may_be_output else partial(_edit_options, tag_set=operation.tag_set)
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


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Edits' caveats as one line on stderr; other warnings as Python prints them."""
    if issubclass(category, SurgeryWarning):
        click.echo(
            f"{PROG}: {_style('warning', 'warning')}: {one_line(str(message))}", err=True, color=_color()
        )
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def _color() -> bool | None:
    """Outside a command's context: False under NO_COLOR, else None (colour on a terminal only)."""
    return False if _no_color() else None


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turn errors into one line on stderr and an exit status."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    warnings.showwarning = _show_warning
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
        click.echo(
            f"{PROG}: {_style('error', 'error')}: {one_line(err.format_message())} (see --help)",
            err=True,
            color=_color(),
        )
        return 2
    except SurgeryError as err:
        if debug:
            traceback.print_exc()
        click.echo(f"{PROG}: {_style('error', 'error')}: {one_line(str(err))}", err=True, color=_color())
        return 2
    except RecursionError:  # a structure nested deeper than any real one, past what the parsers check
        if debug:
            traceback.print_exc()
        click.echo(f"{PROG}: error: the input is nested too deeply to process: it is corrupt", err=True)
        return 2
    except MemoryError:
        click.echo(f"{PROG}: error: out of memory: the input is too large for this machine", err=True)
        return 2
    except OSError as err:  # an I/O failure outside the paths that report their own
        if debug:
            traceback.print_exc()
        where = f" ({err.filename})" if err.filename else ""
        click.echo(f"{PROG}: error: {one_line(err.strerror or str(err))}{one_line(where)}", err=True)
        return 2
    except Exception as err:  # a bug: still one line, the traceback behind --debug
        if debug:
            traceback.print_exc()
        click.echo(
            f"{PROG}: internal error: {type(err).__name__}: {one_line(str(err))} "
            "(rerun with --debug for details)",
            err=True,
        )
        return 2
    return 0


def run() -> NoReturn:
    """The `savedmodel-surgery` command: `main`, then exit without tearing the interpreter down.

    By then every file the command wrote is fsynced and closed, and its locks go with the
    process; the module teardown skipped here would add about 30 ms to every command.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # the reader of a pipe may have gone
            stream.flush()
    os._exit(status)
