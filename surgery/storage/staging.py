"""Writing a model to a new directory (`-o OUT`): staged beside OUT, then renamed into place.

The whole directory is built in a staging directory beside OUT (`.OUT.surgery-tmp-PID-TX`; the
model's other files hard-linked where the file system allows, copied otherwise), fsynced, and
renamed into place only when complete: with RENAME_NOREPLACE, so that two writers never clobber
each other, or RENAME_EXCHANGE for `--force`, so that OUT is the old or the new directory at
every instant. The input is never touched. The staging directory is locked while its run lives;
what a killed run left is removed by the next write to the same OUT (`surgery.storage.recovery`).
A commit group takes the staged copy (`stage_copy`) and publishes it with its others.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from surgery.errors import SavedModelIOError
from surgery.interrupts import deferred
from surgery.model import FINGERPRINT, PB, PBTXT, Model
from surgery.storage.files import (
    ACTIVE,
    Content,
    content_of,
    fsync,
    is_temporary,
    new_tx,
    not_written,
    publish,
    remove,
    temp_name,
    why,
    write_new,
)
from surgery.storage.locks import lock_made
from surgery.storage.recovery import clean_stale_outputs


def _resolve(path: Path) -> Path:
    """`path` with every symbolic link resolved; a link loop is a one-line error."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise SavedModelIOError(f"{path} is a symbolic link loop: remove or fix the link") from None


def check_output(source: Path, out: Path, *, force: bool) -> None:
    """Refuse an output that is the input, inside it or around it, or exists (without `force`)."""
    src = _resolve(source)
    dst = _resolve(out)
    if dst == src:
        raise SavedModelIOError(f"{out} is the input directory: use --in-place to edit it")
    if src in dst.parents:
        raise SavedModelIOError(f"{out} is inside the input directory {source}: choose an output outside it")
    if dst in src.parents:
        raise SavedModelIOError(f"{out} contains the input directory {source}: choose another output")
    if out.exists() or out.is_symlink():
        if not force:
            raise SavedModelIOError(
                f"{out} already exists: choose a new directory or replace it (--force, force=True)"
            )
        if not out.is_dir() or out.is_symlink():
            raise SavedModelIOError(
                f"{out} exists and is not a directory: remove it or choose another output"
            )
    parent = next((p for p in out.parents if p.exists() or p.is_symlink()), None)
    if parent is not None and not parent.is_dir():
        raise SavedModelIOError(f"{parent} is not a directory: {out} cannot be written under it")


def make_parents(out: Path, *, sync: bool) -> list[Path]:
    """Create the missing directories above `out` (as `mkdir -p`), durable with `sync`; those
    made, outermost first, for `remove_made` to take back if the write fails."""
    missing = [p for p in reversed(out.parents) if not p.exists()]
    made: list[Path] = []
    try:
        for path in missing:
            path.mkdir()
            made.append(path)
            if sync:
                fsync(path.parent)
    except OSError as err:
        remove_made(made)
        raise SavedModelIOError(f"cannot create {out.parent}: {why(err)}; nothing was written") from None
    except BaseException:  # an interrupt: what was made goes too
        remove_made([*made, *missing[len(made) : len(made) + 1]])
        raise
    return made


def remove_made(made: list[Path]) -> None:
    """Remove the directories `make_parents` made, innermost first, where they are still empty."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            path.rmdir()


@dataclass
class StagedCopy:
    """A staging directory beside `out`, locked while this run lives, published by rename."""

    path: Path
    out: Path
    replace: bool
    sync: bool = True
    """Whether it is made durable before it is published (`save(sync=...)`)."""
    fd: int = -1
    unsynced: list[Path] = field(default_factory=list)
    """What must be synced before it is published: files written or copied, directories made."""


def save_copy(
    model: Model, files: dict[str, Content], out: Path, *, edited: bool, force: bool, sync: bool
) -> None:
    """Write the model's directory to `out`: staged, made durable (with `sync`), published."""
    staged = stage_copy(model, files, out, edited=edited, force=force, sync=sync, grouped=False)
    try:
        for path in staged.unsynced if sync else []:
            fsync(path)
        with deferred():  # an interrupt lands before the rename or after it, never inside
            publish(staged.path, out, replace=force, sync=sync)
    except OSError as err:
        raise not_written(out, err) from None
    finally:
        drop_staging(staged)


def stage_copy(
    model: Model,
    files: dict[str, Content],
    out: Path,
    *,
    edited: bool,
    force: bool,
    sync: bool,
    grouped: bool,
) -> StagedCopy:
    """Build the model's directory beside `out`, unpublished (the caller publishes or drops it).

    Alone, each file is fsynced as it is written (a large one while its hash runs); `grouped`,
    the files written are left to the group's sync, with the rest of `unsynced`.
    """
    clean_stale_outputs(out)
    skip = {PB, PBTXT, FINGERPRINT} if edited else {PB, PBTXT}
    staged = _make_staging(out, replace=force, sync=sync)
    done = False
    try:
        staged.unsynced = _carry_over(model.path, staged.path, skip=skip)
        for name, data in files.items():
            content = content_of(data)
            if content is not None:
                path = staged.path / name
                write_new(path, content, holes=model.holes, sync=sync and not grouped, writeback=sync)
                if grouped:
                    staged.unsynced.append(path)
        staged.unsynced.append(staged.path)
        done = True
    except OSError as err:
        raise not_written(out, err) from None
    finally:
        if not done:
            drop_staging(staged)
    return staged


def _make_staging(out: Path, *, replace: bool, sync: bool) -> StagedCopy:
    """Create a locked temporary directory beside `out` (`drop_staging` removes it)."""
    path = out.parent / temp_name(out.name, "tmp", new_tx())
    staged = StagedCopy(path, out, replace, sync)
    try:
        os.mkdir(path)  # 0o777 less the umask, as the published directory should be
    except OSError as err:
        raise SavedModelIOError(f"cannot write into {out.parent}: {why(err)}") from None
    except BaseException:  # an interrupt: the directory may have been made
        drop_staging(staged)
        raise
    try:
        hold(staged)
    except OSError as err:
        drop_staging(staged)
        raise not_written(out, err) from None
    except BaseException:
        drop_staging(staged)
        raise
    return staged


def hold(staged: StagedCopy) -> None:
    """Mark the staging directory as this process's: in `ACTIVE`, and locked while this run
    lives (how the next run knows it is not dead)."""
    ACTIVE.add(str(staged.path))
    staged.fd = lock_made(staged.path)


def drop_staging(staged: StagedCopy) -> None:
    """Remove the staging directory unless it was published; release its lock."""
    remove(staged.path)
    ACTIVE.discard(str(staged.path))
    if staged.fd >= 0:
        os.close(staged.fd)
        staged.fd = -1


def _carry_over(source: Path, dest: Path, *, skip: set[str]) -> list[Path]:
    """Copy every other file of the model (variables/, assets/, keras_metadata.pb, ...).

    Returns what must be synced before `dest` is published: the files copied rather than linked,
    and the directories made (innermost first).
    """
    root = _resolve(source)
    made: list[Path] = []
    for entry in sorted(source.iterdir()):
        if entry.name in skip or is_temporary(entry.name):
            continue
        _copy_entry(entry, dest / entry.name, root, (), made)
    return made


def _copy_entry(src: Path, dst: Path, root: Path, parents: tuple[Path, ...], made: list[Path]) -> None:
    """Hard-link (or copy) `src` to `dst`; links are followed only inside the model directory."""
    if src.is_symlink():
        target = _resolve(src)
        if target in parents or target == root:
            raise SavedModelIOError(f"{src} links to a directory that contains it: remove the link loop")
        if root not in target.parents:
            raise SavedModelIOError(
                f"{src} links outside the model directory ({target}): refusing to copy it"
            )
        src = target
    mode = src.lstat().st_mode
    if stat.S_ISDIR(mode):
        dst.mkdir()
        for child in sorted(src.iterdir()):
            _copy_entry(child, dst / child.name, root, (*parents, _resolve(src)), made)
        made.append(dst)
    elif stat.S_ISREG(mode):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
            made.append(dst)
    else:
        raise SavedModelIOError(
            f"{src} is not a regular file or directory (a FIFO, socket or device): remove it from the model"
        )
