"""Editing one model on disk: the path every edit takes, from the command line, a plan, a batch
worker or Python.

A `Job` says what to do: the model (a local path or a URL), the edit, where the result goes (a
new directory, a URL, or in place) and whether to write at all (`dry_run`). It is picklable
when its edit is (a plan's `apply`, an `OperationCall`), so a worker process or a distributed
engine can run it. `execute(job)` runs it and raises the library's errors; `run(job)` never
raises for a model that fails: it returns the report row, with the error in one line, the edit's
warnings and the time it took.

The edit itself: read (after finishing or undoing what a killed run left), lock, edit in memory,
refuse a result `check` finds newly inconsistent or the validator finds newly invalid, save.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surgery.check import disagreements
from surgery.diff import diff
from surgery.errors import ConsistencyError, EditError, SavedModelIOError, SurgeryError, SurgeryWarning
from surgery.findings import Finding
from surgery.graph_changes import graph_diff
from surgery.model import Model
from surgery.operations import OPERATIONS
from surgery.remote import fetched, is_url, local_path, refuse_existing, remote_in_place, remote_output
from surgery.storage import CommitGroup, load, model_lock, recover, save_edit

if TYPE_CHECKING:
    from surgery.reports import Change, GraphChange

Edit = Callable[[Model], object]
"""An edit in memory: changes the model it is given (what it returns is not used)."""


@dataclass(frozen=True)
class OperationCall:
    """One operation of the registry with its arguments, as a picklable edit."""

    name: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, model: Model) -> Model:
        operation = OPERATIONS.get(self.name)
        if operation is None:
            raise EditError(f"no edit {self.name!r}: the edits are {', '.join(OPERATIONS)}")
        return operation.apply(model, self.values)


@dataclass(frozen=True)
class Job:
    """One model to edit: `model` a path or URL; the result to `output` (a path or URL), or in
    place; with `dry_run`, in memory only."""

    model: str
    edit: Edit
    output: str | None = None
    in_place: bool = False
    force: bool = False
    dry_run: bool = False
    sync: bool = True

    def target(self) -> str | None:
        """Where the result goes (for a dry run: where it would go), if anywhere."""
        return self.output if self.output is not None else (self.model if self.in_place else None)


@dataclass
class EditResult:
    """What happened to one model: the runner's report row (one per model of a batch). `output` is
    where the result was written (with a dry run: would be), if anywhere."""

    model: str
    output: str | None
    ok: bool
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    changes: list[Change] | None = None
    """With a dry run: what the edit would change."""
    graph_changes: list[GraphChange] | None = None
    """With a dry run: the graph-level changes."""
    seconds: float | None = None
    """How long the model took, reading to writing."""
    changed: bool | None = None
    """Whether the edit changed the model: False when it leaves it as it was (in place, nothing is
    written; a copy to OUT is written all the same); None when the model failed."""

    def as_json(self, *, changes: bool = True) -> dict[str, Any]:
        """The row as JSON data (`apply --json`); `changes`: with the dry run's changes."""
        data: dict[str, Any] = {
            "model": self.model,
            "output": self.output,
            "ok": self.ok,
            "changed": self.changed,
            "error": self.error,
            "warnings": list(self.warnings),
        }
        if changes:
            for key, items in (("changes", self.changes), ("graph_changes", self.graph_changes)):
                data[key] = None if items is None else [item.model_dump() for item in items]
        data["seconds"] = self.seconds
        return data


def finding_line(finding: Finding) -> str:
    """One line for a check finding: `[tags] 'signature' code: message`."""
    where = f"[{','.join(finding.tags)}]" + (f" {finding.signature!r}" if finding.signature else "")
    return f"{where} {finding.code}: {finding.message}"


def execute(job: Job, *, group: CommitGroup | None = None) -> EditResult:
    """Run `job`; a `SurgeryError` (nothing written) when the model cannot be read, the edit is
    refused, the result would be inconsistent, or the write fails. `group`: stage the write in
    that commit group instead of publishing it (a batch's).

    Example:
        >>> rename = surgery.OperationCall("rename-signature", {"old": "fixed", "new": "f2"})
        >>> surgery.execute(surgery.Job("my_model", rename, output="renamed")).output
        'renamed'
        >>> preview = surgery.execute(surgery.Job("my_model", rename, dry_run=True))
        >>> [change.kind for change in preview.changes]
        ['signature-renamed']
    """
    if job.in_place and job.output is not None:
        raise EditError("give an output or in_place, not both")
    if job.dry_run:
        with _local_model(job.model) as local:
            model = load(local)
            edited = preview_edit(model, job.edit)
            changed = edited.serialize_shrunk() != model.serialize_shrunk()
            # Compared while a fetched copy is still there: large constants are read from it.
            changes, graph_changes = diff(model, edited), graph_diff(model, edited)
        if job.output is not None and is_url(job.output):
            refuse_existing(job.output, force=job.force)
        elif job.output is not None:
            check_output_free(local_path(job.output), force=job.force)
        return EditResult(
            model=job.model,
            output=job.target(),
            ok=True,
            changes=changes,
            graph_changes=graph_changes,
            changed=changed,
        )
    if not job.in_place and job.output is None:
        raise EditError("give an output or in_place: where the result goes")
    if job.in_place and is_url(job.model):
        with remote_in_place(job.model) as local:
            _, changed = _edit_and_save(local, job.edit, in_place=True, sync=job.sync)
        return EditResult(model=job.model, output=job.model, ok=True, changed=changed)
    if job.output is not None and is_url(job.output):
        with remote_output(job.output, force=job.force) as local_out, _local_model(job.model) as local:
            _, changed = _edit_and_save(local, job.edit, local_out, sync=job.sync)
        return EditResult(model=job.model, output=job.output, ok=True, changed=changed)
    with _local_model(job.model) as local:
        out = local_path(job.output) if job.output is not None else None
        written, changed = _edit_and_save(
            local, job.edit, out, in_place=job.in_place, force=job.force, sync=job.sync, group=group
        )
    return EditResult(model=job.model, output=str(written), ok=True, changed=changed)


def run(job: Job, *, group: CommitGroup | None = None) -> EditResult:
    """`execute(job)` as a report row: a failure becomes its one-line error (a bug too, so that a
    batch's other models go on); the edit's `SurgeryWarning`s and the seconds it took are recorded.

    Example:
        >>> wrong = surgery.OperationCall("set-method", {"signature": "nope", "method": "m"})
        >>> result = surgery.run(surgery.Job("my_model", wrong, in_place=True))
        >>> result.ok, result.error
        (False, "no signature 'nope' in the model: it has fixed, masked, preprocess, serving_default")
    """
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SurgeryWarning)
            result = execute(job, group=group)
    except SurgeryError as err:
        result = EditResult(model=job.model, output=None, ok=False, error=error_line(err, job.model))
    except Exception as err:  # a bug: reported for this model, the others go on
        error = f"internal error: {type(err).__name__}: {error_line(err, job.model)}"
        result = EditResult(model=job.model, output=None, ok=False, error=error)
    else:
        result.warnings = list(
            dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, SurgeryWarning))
        )
    result.seconds = time.perf_counter() - start
    return result


def error_line(err: BaseException, model: str) -> str:
    """A model's error in one line, without the model's name in front (its row names it)."""
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    return message.removeprefix(f"{model}: ")


@contextmanager
def _local_model(model: str) -> Iterator[str]:
    """A local directory holding `model`: the path itself, or a URL's model fetched for the job."""
    if not is_url(model):
        yield local_path(model)
        return
    with fetched(model) as local:
        yield str(local)


def edit_model(
    path: str | os.PathLike[str],
    edit: Edit,
    output: str | os.PathLike[str] | None = None,
    *,
    in_place: bool = False,
    force: bool = False,
    sync: bool = True,
    group: CommitGroup | None = None,
) -> Path:
    """Load the model at `path`, `edit` it, refuse a newly inconsistent result, then save it
    (`sync` and `group`: as `surgery.save`'s). Returns the directory written.

    The model directory is locked from reading to writing (exclusively for an in-place edit), so
    that a concurrent in-place edit fails at once instead of one of them being lost. An edit that
    changes nothing writes nothing in place (a copy to `output` is written all the same).
    """
    written, _ = _edit_and_save(path, edit, output, in_place=in_place, force=force, sync=sync, group=group)
    return written


def _edit_and_save(
    path: str | os.PathLike[str],
    edit: Edit,
    output: str | os.PathLike[str] | None = None,
    *,
    in_place: bool = False,
    force: bool = False,
    sync: bool = True,
    group: CommitGroup | None = None,
) -> tuple[Path, bool]:
    """`edit_model`, and whether the edit changed the model (False: its proto serializes as before)."""
    recover(path)  # an in-place edit a killed run left: finished or undone before anything else
    with model_lock(path, exclusive=in_place):
        model = load(path)
        try:
            _edit_checked(model, edit)
            return save_edit(model, output, in_place=in_place, force=force, sync=sync, group=group)
        finally:
            model.close()  # a model file the save replaced is freed in the background


def preview_edit(model: Model, edit: Edit) -> Model:
    """What `edit_model` would write, in memory only: the edited copy of `model` (`model` untouched).

    The same edit and the same consistency check as `edit_model`, so a refusal is the one the
    real run would give; nothing is written and no lock is taken.
    """
    proto = type(model.proto)()
    proto.CopyFrom(model.proto)
    edited = replace(model, proto=proto)
    _edit_checked(edited, edit)
    return edited


def check_output_free(output: str | os.PathLike[str], *, force: bool = False) -> None:
    """Refuse, as the write would, an existing `output` without `force` (for a dry run)."""
    if os.path.lexists(output) and not force:
        raise SavedModelIOError(
            f"{output} already exists: choose a new directory or replace it (--force, force=True)"
        )


def _edit_checked(model: Model, edit: Edit) -> None:
    """`edit` the model in memory; a `ConsistencyError` if `check` finds a new error in it.

    A new warning (a disagreement TensorFlow ignores) does not refuse the edit, whose result
    loads and computes as the model did: it is issued as a `SurgeryWarning`. Problems the model
    already had are not the edit's: counts are compared per kind, since a rename legitimately
    changes the key an existing finding names.
    """
    found = disagreements(model)
    before = Counter(d.code for d in found)
    edit(model)
    after = disagreements(model)
    grown = {code for code, n in Counter(f.code for f in after).items() if n > before[code]}
    seen = {_finding_key(d) for d in found}
    new = [f for f in after if f.code in grown and _finding_key(f) not in seen]
    new += [f for f in after if f.code in grown - {n.code for n in new}]  # a renamed finding grew
    errors = [f for f in new if f.severity == "error"]
    if errors:
        raise ConsistencyError(
            f"the edit would leave the model inconsistent ({finding_line(errors[0])}); nothing written"
        )
    for finding in new:
        warnings.warn(
            SurgeryWarning(f"the edit leaves a disagreement TensorFlow ignores: {finding_line(finding)}"),
            stacklevel=3,
        )


def _finding_key(finding: Finding) -> tuple[str, tuple[str, ...], str | None, str]:
    return finding.code, tuple(finding.tags), finding.signature, finding.message
