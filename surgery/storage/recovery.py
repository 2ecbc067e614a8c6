"""What killed runs left: in-place edits rolled back or finished, staging directories removed.

The temporary names of an in-place edit share a transaction id and are its journal: the next
command that opens the model rolls back what a killed run left (the new model file's temporary
still exists: the set-aside fingerprint is restored, the original is back byte for byte) or
finishes it (the new model file was swapped in: the new fingerprint goes into place). It does so
only while nobody edits the model (its lock is free), so a live writer's files are never touched.
A staging directory, or an output set aside by `--force`, that a killed run left beside an output
is removed (or put back) by the next write to that output, once its owner is dead: its pid is
gone and nobody holds its lock.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from surgery.errors import SavedModelIOError
from surgery.model import FINGERPRINT, PB, PBTXT
from surgery.storage.files import ACTIVE, TEMP_RE, fsync, remove
from surgery.storage.locks import held_lock, lock_is_free, model_lock, pid_alive


def _leftovers(directory: Path, name: str | None = None) -> list[tuple[Path, re.Match[str]]]:
    """The temporaries in `directory` (standing in for `name`) that this process is not using."""
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = TEMP_RE.match(entry)
        if match and (name is None or match["name"] == name) and str(directory / entry) not in ACTIVE:
            found.append((directory / entry, match))
    return found


def recover(directory: str | os.PathLike[str]) -> None:
    """Roll back or finish an in-place edit a killed run left in `directory`; best effort.

    Only when nobody is editing the model (its lock is free, or held by this process), so a live
    writer's files are never touched. See the module docstring for the rules.
    """
    path = Path(directory)
    if not [m for _, m in _leftovers(path) if m["name"] in (PB, PBTXT, FINGERPRINT)]:
        return
    with contextlib.suppress(OSError):
        held = held_lock(path)
        if held is not None and not held.exclusive:
            return  # this process is copying the model: it does not edit it
    try:
        with model_lock(path, exclusive=True):
            _recover_locked(path)
    except SavedModelIOError:
        return  # someone is editing it: theirs to finish


def recover_held(directory: Path) -> None:
    """`recover` for a model this process holds the lock of: its own edit, stopped part-way."""
    with contextlib.suppress(OSError):
        _recover_locked(directory)


def abandon(model: Path | None = None, output: Path | None = None) -> None:
    """Tidy up after this process's write was interrupted: its in-place edit of `model` rolled
    back or finished, and its staging directories beside `output` removed; best effort.

    What the interrupted write's own clean-up left, if anything (an interrupt during it), is
    then read as a killed run's: this process lets go of every temporary name it held.
    """
    ACTIVE.clear()
    if model is not None:
        recover(model)
    if output is not None:
        clean_stale_outputs(output)


def _recover_locked(path: Path) -> None:
    transactions: dict[str, dict[tuple[str, str], Path]] = {}
    for file, match in _leftovers(path):
        if match["name"] not in (PB, PBTXT, FINGERPRINT):
            continue  # not an in-place edit's (a copy written beside the model, say)
        transactions.setdefault(f"{match['pid']}-{match['tx']}", {})[(match["name"], match["kind"])] = file
    for files in transactions.values():
        pb_temps = [files.pop(key) for key in ((PB, "tmp"), (PBTXT, "tmp")) if key in files]
        # Killed between the exchange and unlinking the temporary name: committed (see `swap_in`).
        swapped = [temp for temp in pb_temps if _is_swapped(files, temp)]
        pb_temps = [temp for temp in pb_temps if temp not in swapped]
        backup = files.pop((FINGERPRINT, "old"), None)
        new_fingerprint = files.pop((FINGERPRINT, "tmp"), None)
        try:
            if pb_temps:  # not committed: the original fingerprint comes back
                if backup is not None:
                    os.replace(backup, path / FINGERPRINT)
                    backup = None
            elif new_fingerprint is not None:  # committed: the edit is finished
                os.replace(new_fingerprint, path / FINGERPRINT)
                new_fingerprint = None
            fsync(path)
        except OSError:
            continue  # cannot write here: the journal stays as it is, for a run that can
        # The pb's temporary file goes last: while it exists, the edit reads as not committed
        # (unless it is the swapped old file: that goes first, while its second name tells).
        for leftover in [*swapped, new_fingerprint, backup, *files.values(), *pb_temps]:
            if leftover is not None:
                remove(leftover)


def _is_swapped(files: dict[tuple[str, str], Path], temp: Path) -> bool:
    """Whether the pb temporary `temp` is the old model file, by its second name (see `swap_in`)."""
    match = TEMP_RE.match(temp.name)
    old = files.get((match["name"], "old")) if match else None
    try:
        return old is not None and os.path.samefile(temp, old)
    except OSError:
        return False


def clean_stale_outputs(out: Path) -> None:
    """Remove what killed runs left beside `out` (their staging directories), once their owner is dead.

    A replaced output (`surgery-old`, left only where RENAME_EXCHANGE is missing) is put back when
    `out` itself is gone: the run that moved it away died before its replacement was in place.
    """
    for path, match in _leftovers(out.parent, out.name):
        if pid_alive(int(match["pid"])) or not lock_is_free(path):
            continue
        if match["kind"] == "old" and not os.path.lexists(out):
            with contextlib.suppress(OSError):
                os.rename(path, out)
                continue
        remove(path)
