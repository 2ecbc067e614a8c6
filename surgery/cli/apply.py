"""The apply command: a plan file over one model or many."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from surgery.batch import Target, apply_plan, batch_targets, expand_models, is_pattern
from surgery.errors import SavedModelIOError
from surgery.operations import OPERATIONS
from surgery.remote import (
    is_url,
)
from surgery.runner import EditResult

if TYPE_CHECKING:
    from surgery.plans import Plan
from surgery.cli import app
from surgery.cli.app import (
    NO_SYNC_OPTION,
    Failure,
    change_line,
    cli,
    echo_graph_changes,
    print_json,
    style,
    wrote,
)
from surgery.cli.edit import run_edit
from surgery.cli.streams import OutputLost
from surgery.interrupts import signal_of


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
@NO_SYNC_OPTION
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
        run_edit(
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
        results = _run_batch(parsed, targets, force, jobs, as_json, dry_run=True, named=chosen > 0)
        _print_summary(results, as_json, dry_run=True)
        if any(not r.ok for r in results):
            raise Failure(1)
        return
    results = _run_batch(
        parsed, targets, force, jobs, as_json, sync=not no_sync, in_place=in_place, output_root=output_root
    )
    written = sum(r.ok and (r.changed is not False or not in_place) for r in results)
    if written:
        wrote(f"{written} model(s)")
    _print_summary(results, as_json, in_place=in_place)
    if not all(r.ok for r in results):
        raise Failure(1)


_OPERATIONS_HELP = "\n".join(
    ["\b", "The operations of a plan, with their fields (each also takes tag_set):"]
    + [f"  {operation.entry()}" for operation in OPERATIONS.values()]
)
apply_command.help = (apply_command.help or "").rstrip() + "\n\n" + _OPERATIONS_HELP


def _print_summary(
    results: list[EditResult],
    as_json: bool,
    *,
    dry_run: bool = False,
    in_place: bool = False,
    unfinished: list[str] | None = None,
) -> None:
    """One line per model and a count, or the --json summary; with `dry_run`, each model's diff.

    A model the plan leaves as it was is marked unchanged (in place, nothing was written for it;
    a copy was written all the same). `unfinished`: the models an interrupt left undone.
    """
    failed = sum(not r.ok for r in results)
    unchanged = sum(r.ok and r.changed is False for r in results)
    if as_json:
        ok = len(results) - failed
        dumped = [r.as_json(changes=dry_run) for r in results]
        extra: dict[str, object] = {"dry_run": True} if dry_run else {}
        if unfinished is not None:
            extra.update(interrupted=True, unfinished=unfinished)
        print_json({"results": dumped, "ok": ok, "failed": failed, "unchanged": unchanged, **extra})
        return
    for r in results:
        warned = "".join(f" (warning: {w})" for w in r.warnings)
        passed, failed_mark = style("ok", "ok  "), style("fail", "FAIL")
        target = f" -> {r.output}" if r.output is not None else ""
        same = " (unchanged)" if r.ok and r.changed is False and not dry_run else ""
        line = f"{passed} {r.model}{target}{same}{warned}" if r.ok else f"{failed_mark} {r.model}: {r.error}"
        click.echo(line)
        for change in r.changes or []:
            click.echo(f"     {change_line(change)}")
        if r.ok and dry_run and not r.changes:
            click.echo("     no signature-level differences")
        echo_graph_changes(r.graph_changes or [], indent="     ")
    ok, count = len(results) - failed, f"{len(results)} model(s)"
    if dry_run:
        click.echo(f"{count}: {ok} ok, {failed} failed; nothing written (dry run)")
    elif unchanged and in_place:
        click.echo(f"{count}: {ok - unchanged} written, {unchanged} unchanged, {failed} failed")
    elif unchanged:
        click.echo(f"{count}: {ok} written ({unchanged} unchanged), {failed} failed")
    else:
        click.echo(f"{count}: {ok} written, {failed} failed")


def _interrupted_line(results: list[EditResult], total: int, *, in_place: bool, dry_run: bool) -> str:
    """The end of the line an interrupted batch ends with: what it did, and what it left undone."""
    written = sum(r.ok and (r.changed is not False or not in_place) for r in results)
    if dry_run or not written:
        return ": nothing was changed"
    unchanged = sum(r.ok for r in results) - written
    failed = sum(not r.ok for r in results)
    parts = [f"{written} model(s) written"]
    parts += [f"{unchanged} unchanged"] if unchanged else []
    parts += [f"{failed} failed"] if failed else []
    return f": {', '.join(parts)}; the other {total - len(results)} not done, left as they were"


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


def _run_batch(
    plan: Plan,
    targets: list[Target],
    force: bool,
    jobs: int | None,
    as_json: bool,
    *,
    dry_run: bool = False,
    named: bool = True,
    sync: bool = True,
    in_place: bool = False,
    output_root: str | None = None,
) -> list[EditResult]:
    """Run the batch, with a progress bar on stderr when it is a terminal; `output_root` is made
    first, and removed if no model was written into it.

    Interrupted, it prints the summary of the models finished by then and lets the interrupt
    go on (the command then says what was left undone). `named`: whether the run named outputs
    (a dry run without one reports none).
    """
    finished: list[EditResult] = []
    created: Path | None = None

    def done(result: EditResult) -> None:
        if not named:
            result.output = None  # no output was named: nothing it would write to
        finished.append(result)

    try:
        created = _make_root(output_root)
        if not sys.stderr.isatty():
            results = apply_plan(
                plan, targets, force=force, jobs=jobs, on_result=done, dry_run=dry_run, sync=sync
            )
        else:
            with click.progressbar(length=len(targets), label="apply", file=sys.stderr) as bar:

                def step(result: EditResult) -> None:
                    done(result)
                    bar.update(1)

                results = apply_plan(
                    plan, targets, force=force, jobs=jobs, on_result=step, dry_run=dry_run, sync=sync
                )
    except BaseException as err:
        if signal_of(err) is None:
            raise
        order = {target.model: i for i, target in enumerate(targets)}
        finished.sort(key=lambda r: order.get(r.model, len(order)))
        seen = {r.model for r in finished}
        unfinished = [t.model for t in targets if t.model not in seen]
        _remove_if_unused(created, finished)
        with contextlib.suppress(OutputLost):  # the interrupt is what the command ends with
            _print_summary(finished, as_json, dry_run=dry_run, in_place=in_place, unfinished=unfinished)
        app.PROGRESS.interrupted = _interrupted_line(
            finished, len(targets), in_place=in_place, dry_run=dry_run
        )
        raise
    _remove_if_unused(created, results)
    if not named:
        for result in results:
            result.output = None
    return results


def _remove_if_unused(created: Path | None, results: list[EditResult]) -> None:
    """Remove the output root this run made when no model was written into it."""
    if created is not None and not any(r.ok for r in results):
        with contextlib.suppress(OSError):
            created.rmdir()
