"""Advisory locks on model directories, and whether the process that made a file is still alive.

An in-place edit holds an exclusive `flock` on the model directory itself (no lock file inside
the model) from reading to writing, so that a second one fails at once with a clear message
instead of mixing or losing edits; writing a copy holds a shared lock on its input. Locks are
re-entrant within a process (`model_lock` keeps a registry by device and inode). A run also
locks each staging directory it makes, so that the next run can tell a live writer's temporaries
from a killed one's (`lock_is_free`, `pid_alive`).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from surgery.errors import SavedModelIOError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no advisory locks
    fcntl = None  # type: ignore[assignment]


@dataclass
class Held:
    """A lock this process holds on a directory: the descriptor it is taken on, and how often."""

    fd: int
    exclusive: bool
    depth: int


_HELD: dict[tuple[int, int], Held] = {}  # this process's locks, by the directory's (device, inode)
_HELD_PID = os.getpid()


def _held() -> dict[tuple[int, int], Held]:
    """The lock registry, emptied in a forked child (its locks are its parent's)."""
    global _HELD_PID
    if os.getpid() != _HELD_PID:
        _HELD.clear()
        _HELD_PID = os.getpid()
    return _HELD


def held_lock(path: Path) -> Held | None:
    """This process's `model_lock` on the directory `path`, if it holds one (OSError if it is gone)."""
    info = os.stat(path)
    return _held().get((info.st_dev, info.st_ino))


def _busy(path: Path) -> SavedModelIOError:
    return SavedModelIOError(
        f"{path} is in use by another savedmodel-surgery process (an in-place edit, or a copy being "
        "written from it): wait for it to finish and retry"
    )


@contextlib.contextmanager
def model_lock(path: str | os.PathLike[str], *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory lock on the directory `path` itself: exclusive to edit it, shared to copy it.

    Fails at once (SavedModelIOError) when another process holds a conflicting lock. Re-entrant in
    one process. A path that is not an openable directory is not locked: reading it reports why.
    """
    directory = Path(path)
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield
        return
    info = os.fstat(fd)
    key = (info.st_dev, info.st_ino)
    held = _held().get(key)
    if held is not None:
        os.close(fd)
        if exclusive and not held.exclusive:
            # flock would drop the shared lock before trying for the exclusive one: refuse instead
            raise _busy(directory)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
        return
    try:
        locked = _take_lock(fd, directory, exclusive=exclusive)
    except SavedModelIOError:
        os.close(fd)
        raise
    if not locked:
        os.close(fd)
        yield
        return
    _held()[key] = Held(fd, exclusive, 1)
    try:
        yield
    finally:
        _held().pop(key, None)
        os.close(fd)  # releases the lock


def _take_lock(fd: int, directory: Path, *, exclusive: bool) -> bool:
    """flock the open directory `fd` without waiting: True if locked, False where the file system
    does not do locks (some network ones: go on without); a busy error if another process holds one."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise _busy(directory) from None
        return False
    return True


def lock_again(directory: Path) -> int:
    """Lock the model directory exclusively, as `model_lock` would, outside of it: the descriptor
    holding the lock (the caller closes it), or -1 where it cannot be opened or locked (the write
    goes on without, as `model_lock`'s does); a busy error if another process holds a lock."""
    if fcntl is None:
        return -1
    fd = -1
    with contextlib.suppress(OSError):  # not openable: the write's first step says why
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    if fd < 0:
        return -1
    try:
        if not _take_lock(fd, directory, exclusive=True):
            os.close(fd)
            return -1
    except SavedModelIOError:
        os.close(fd)
        raise
    return fd


def lock_made(path: Path) -> int:
    """Open what this run just made and lock it, best effort, while this run lives: the
    descriptor (closing it releases the lock), or -1 where there are no locks."""
    if fcntl is None:
        return -1
    fd = os.open(path, os.O_RDONLY)
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def lock_is_free(path: Path) -> bool:
    """Whether nobody holds a lock on `path` (a file or directory a run made); False if unsure."""
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def pid_alive(pid: int) -> bool:
    """Whether the process `pid` (the writer a temporary name names) may still be writing."""
    if pid == os.getpid():
        return False  # ours: a leftover from a process that had our pid before, or from us
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # someone else's process
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether `pid` has ended but is not reaped yet (Linux; a killed run's workers are, until
    whoever inherited them reaps them): it holds nothing any more."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return False
