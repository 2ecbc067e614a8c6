"""Writing a model in place: its model file and `fingerprint.pb` replaced as a pair, journaled.

A model file with a stale fingerprint must never be seen. The new files are written as
temporary files beside the old ones and fsynced (`stage_edit`); then the old fingerprint is
renamed to a backup, the new model file swapped with the old one (RENAME_EXCHANGE, the commit
point; the old file's second name, made just before, tells a recovery which side of the swap a
killed run stopped on), the new fingerprint renamed into place, the backup and the old model
file deleted (`commit_edits`). At every instant the directory holds the original, the edit, or
one of them without a fingerprint (which TensorFlow accepts: a missing fingerprint is legal, a
stale one is not). The temporary names, which share a transaction id, are the journal that
`surgery.storage.recovery` reads; a write that fails is undone here (`undo_edit`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from surgery.errors import SavedModelIOError
from surgery.interrupts import deferred
from surgery.model import FINGERPRINT, Model, let_go
from surgery.storage.files import (
    ACTIVE,
    Content,
    content_of,
    fsync_directories,
    new_tx,
    remove,
    swap_in,
    temp_name,
    why,
    write_new,
)
from surgery.storage.recovery import recover_held


@dataclass
class StagedEdit:
    """An in-place edit whose new files are written beside the model's, not yet swapped in.

    `commit_edits` swaps it in, alone (`save`) or together with a group's others. Its temporary
    names share the transaction id `tx` (which carries the writing process's id): the journal
    `recover` reads, whichever process of a run commits it.
    """

    path: Path
    main: str
    tx: str
    stamp: tuple[int, int, int] | None
    sync: bool = True
    fd: int = -1
    """A lock on the model directory (a duplicate of `model_lock`'s), held until committed."""
    temps: dict[str, Path] = field(default_factory=dict)
    """The new files not yet in place, by the name they replace."""
    backup: Path | None = None
    committed: bool = False

    def name(self, name: str, kind: str) -> Path:
        return self.path / temp_name(name, kind, self.tx)

    @property
    def journal(self) -> list[Path]:
        """Every name the transaction may make."""
        return [self.name(n, k) for n in (self.main, FINGERPRINT) for k in ("tmp", "old")]

    @property
    def unsynced(self) -> list[Path]:
        """What must be synced before the swap: the new files and the directory entries naming them."""
        return [*self.temps.values(), self.path]


def save_in_place(model: Model, files: dict[str, Content], *, sync: bool) -> None:
    """Replace the model file and fingerprint.pb as a pair (see the module docstring)."""
    edit = stage_edit(model, files, sync=sync, grouped=False)
    try:
        failures: dict[Path, SavedModelIOError] = {}
        with deferred():  # the swap is short: an interrupt waits for its end
            commit_edits([edit], fsync_directories, failures)
        if failures:
            raise failures[edit.path]
    finally:
        ACTIVE.difference_update(str(p) for p in edit.journal)
    with contextlib.suppress(OSError):
        info = os.stat(model.path / edit.main)
        written = files[edit.main]
        model.source = written if isinstance(written, bytes) else model.serialize_shrunk()
        model.stamp = (info.st_ino, info.st_size, info.st_mtime_ns)


def stage_edit(model: Model, files: dict[str, Content], *, sync: bool, grouped: bool) -> StagedEdit:
    """Write an edit's new files beside the model's (fsynced unless `grouped`: the group syncs)."""
    main = model.file_name
    refuse_changed_on_disk(model.stamp, model.path / main)
    edit = StagedEdit(model.path, main, new_tx(), model.stamp, sync)
    ACTIVE.update(str(p) for p in edit.journal)
    try:
        for name in (main, FINGERPRINT):
            content = content_of(files.get(name))
            if content is not None:
                edit.temps[name] = edit.name(name, "tmp")
                write_new(
                    edit.temps[name],
                    content,
                    like=model.path / main,
                    holes=model.holes,
                    sync=sync and not grouped,
                    writeback=sync,
                )
    except OSError as err:
        error = fail_edit(edit, err)
        ACTIVE.difference_update(str(p) for p in edit.journal)
        raise error from None
    except BaseException:  # an interrupt, or an error computing a file (fingerprint.pb's hashes)
        undo_edit(edit)
        ACTIVE.difference_update(str(p) for p in edit.journal)
        raise
    return edit


def commit_edits(
    edits: list[StagedEdit],
    barrier: Callable[[list[StagedEdit]], None],
    failures: dict[Path, SavedModelIOError],
    *,
    let_go_old: bool = False,
) -> None:
    """Swap staged edits in, step by step: each step for every edit, then one `barrier` making
    those steps durable, then the next step. Each edit keeps the journal's order (see the module
    docstring); a group of N pays one barrier per step instead of N. An edit that fails is undone
    (or, past its commit point, left finished as far as it got) and its error put in `failures`.
    """
    try:
        _commit_edits(edits, barrier, failures, let_go_old=let_go_old)
    except BaseException:  # an interrupt: each edit rolled back or finished, as its journal says
        for edit in edits:
            settle_edit(edit)
        raise


def settle_edit(edit: StagedEdit) -> None:
    """Roll back or finish an edit whose commit stopped part-way, as `recover` would after a
    kill: what is on disk decides (the swap done or not), not what this process last noted."""
    ACTIVE.difference_update(str(p) for p in edit.journal)
    recover_held(edit.path)
    edit.temps.clear()
    edit.backup = None


def _commit_edits(
    edits: list[StagedEdit],
    barrier: Callable[[list[StagedEdit]], None],
    failures: dict[Path, SavedModelIOError],
    *,
    let_go_old: bool,
) -> None:
    failed: set[int] = set()

    def fail(edit: StagedEdit, err: OSError | SavedModelIOError) -> None:
        failed.add(id(edit))
        if isinstance(err, SavedModelIOError):
            undo_edit(edit)
            failures[edit.path] = err
        else:
            failures[edit.path] = fail_edit(edit, err)

    for step in (_still_staged, _set_aside_fingerprint, _swap_model_file, _place_fingerprint):
        changed = []
        for edit in edits:
            if id(edit) in failed:
                continue
            try:
                if step(edit):
                    changed.append(edit)
            except (OSError, SavedModelIOError) as err:
                fail(edit, err)
        durable = [edit for edit in changed if edit.sync and id(edit) not in failed]
        try:
            if durable:
                barrier(durable)
        except OSError as err:
            for edit in durable:
                fail(edit, err)
    for edit in edits:
        if id(edit) not in failed:
            _finish_edit(edit, let_go_old=let_go_old)


def _still_staged(edit: StagedEdit) -> bool:
    """Refuse an edit whose model changed, or whose files went, while it waited: handed from a
    batch's worker to its parent, it was unlocked in between."""
    refuse_changed_on_disk(edit.stamp, edit.path / edit.main)
    for path in edit.temps.values():
        os.stat(path)  # FileNotFoundError: undone by another run's recovery
    return False


def _set_aside_fingerprint(edit: StagedEdit) -> bool:
    fingerprint = edit.path / FINGERPRINT
    if not os.path.lexists(fingerprint):
        return False
    os.rename(fingerprint, edit.name(FINGERPRINT, "old"))
    edit.backup = edit.name(FINGERPRINT, "old")
    return True


def _swap_model_file(edit: StagedEdit) -> bool:
    swap_in(edit.name(edit.main, "tmp"), edit.path / edit.main, edit.name(edit.main, "old"))
    del edit.temps[edit.main]
    edit.committed = True
    return True


def _place_fingerprint(edit: StagedEdit) -> bool:
    if FINGERPRINT not in edit.temps:
        return False
    os.replace(edit.temps[FINGERPRINT], edit.path / FINGERPRINT)
    del edit.temps[FINGERPRINT]
    return True


def _finish_edit(edit: StagedEdit, *, let_go_old: bool) -> None:
    """Delete what a committed edit no longer needs (if this fails, the next command that opens
    the model does it). With `let_go_old`, the old model file is freed by `let_go`: in a group,
    nothing else here holds it (alone, the model that was read does, until `Model.close`)."""
    if edit.backup is not None:
        remove(edit.backup)
        edit.backup = None
    old = edit.name(edit.main, "old")
    if not os.path.lexists(edit.name(edit.main, "tmp")):
        fd = None
        if let_go_old:
            with contextlib.suppress(OSError):
                fd = os.open(old, os.O_RDONLY)
        remove(old)  # the old model file's blocks are freed here, or where `fd` goes
        if fd is not None:
            let_go(fd)


def undo_edit(edit: StagedEdit) -> None:
    """Undo what a failed edit did: all of it before its commit point, the leftovers after it."""
    _undo(edit.path, edit.temps, edit.backup, committed=edit.committed)
    edit.backup = None
    if not edit.committed or not os.path.lexists(edit.name(edit.main, "tmp")):
        remove(edit.name(edit.main, "old"))  # the old file's second name, if made


def fail_edit(edit: StagedEdit, err: OSError) -> SavedModelIOError:
    """`undo_edit`, and what happened, in one line."""
    undo_edit(edit)
    if edit.committed:
        missing = (
            ""
            if os.path.lexists(edit.path / FINGERPRINT)
            else f" (without {FINGERPRINT}, which TensorFlow accepts)"
        )
        return SavedModelIOError(
            f"{edit.path} was edited{missing}, but the write did not finish cleanly ({why(err)}): "
            "check the disk, then rerun the edit or restore a backup"
        )
    return SavedModelIOError(f"cannot write {edit.path / edit.main}: {why(err)}; nothing was changed")


def drop_edit(edit: StagedEdit) -> None:
    """Let go of a staged edit's journal names and its model's lock."""
    ACTIVE.difference_update(str(p) for p in edit.journal)
    if edit.fd >= 0:
        os.close(edit.fd)
        edit.fd = -1


def _undo(directory: Path, temps: dict[str, Path], backup: Path | None, *, committed: bool) -> None:
    """After a failed write: restore the old fingerprint (when not committed), drop the temporaries."""
    if backup is not None and not committed:
        try:
            os.replace(backup, directory / FINGERPRINT)
        except OSError:
            return  # leave the journal for `recover`: the pb temp file says "not committed"
    elif backup is not None:
        remove(backup)
    # The pb's temporary file goes last: while it exists, `recover` reads the edit as not committed.
    for name in sorted(temps, key=lambda name: name != FINGERPRINT):
        remove(temps[name])


def refuse_changed_on_disk(stamp: tuple[int, int, int] | None, file: Path) -> None:
    """An in-place write of a model some other writer replaced since it was read would undo their edit."""
    if stamp is None:
        return
    try:
        info = os.stat(file)
    except OSError:
        info = None
    if info is None or (info.st_ino, info.st_size, info.st_mtime_ns) != stamp:
        raise SavedModelIOError(
            f"{file} changed on disk since it was read (another program edited it): load it again "
            "and redo the edit"
        )
