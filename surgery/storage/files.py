"""The file-system steps every write is made of: new files, temporary names, syncs and renames.

The lowest storage layer. It wraps the Linux system calls the standard library lacks
(`renameat2`, `syncfs`, `sync_file_range`: each None or False elsewhere, and the callers fall
back), writes new files in bounded chunks (a kill or a full disk can land between any two),
names the temporary files and directories of a write (`.NAME.surgery-KIND-PID-TX`, the names the
next run's recovery reads), makes what a write made durable, and puts a finished directory or
file in place atomically (`publish`, `swap_in`). Every call of these wrappers goes through this
module, so that replacing one here (a test counting or failing steps) replaces it everywhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import shutil
import stat
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, cast

from surgery.errors import SavedModelIOError
from surgery.lazy import Holes, Piece

CHUNK = 1 << 20
"""Bytes per write(2): a kill or a full disk can land between any two."""


def why(err: OSError) -> str:
    """The reason an OSError gives, for a one-line message."""
    return err.strerror or str(err)


def not_written(out: Path, err: OSError) -> SavedModelIOError:
    """The error of a copy to `out` that failed before anything was published."""
    return SavedModelIOError(f"cannot write {out}: {why(err)}; nothing was written")


# --- temporary names ---------------------------------------------------------------------------

TEMP_MARK = ".surgery-"
"""What every temporary name holds (`.NAME.surgery-KIND-PID-TX`)."""

TEMP_RE = re.compile(r"^\.(?P<name>.+)\.surgery-(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<tx>[0-9a-f]+)$")
"""A temporary file or directory a write makes: NAME is what it stands in for, KIND `tmp` (new)
or `old` (set aside), PID the writing process, TX the transaction."""

ACTIVE: set[str] = set()
"""The temporary paths this process is using right now: never anyone's leftovers."""


def temp_name(name: str, kind: str, tx: str) -> str:
    """The temporary name of kind `kind` standing in for `name` in transaction `tx`."""
    return f".{name}.surgery-{kind}-{tx}"


def new_tx() -> str:
    """A new transaction id: this process's id and a random part."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of the temporary files or directories a write makes."""
    return TEMP_RE.match(name) is not None


def remove(path: Path) -> None:
    """Delete a file or a directory tree if it is there; best effort."""
    if not os.path.lexists(path):
        return
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


# --- system calls ----------------------------------------------------------------------------

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYNC_FILE_RANGE_WRITE = 2


def _linux_libc(name: str, *argtypes: type) -> Callable[..., int] | None:
    """The libc function `name` returning an int, with errno kept (Linux only), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return cast(Callable[..., int], function)


@functools.cache
def syncfs() -> Callable[[int], int] | None:
    """libc's syncfs (Linux), or None."""
    return _linux_libc("syncfs", ctypes.c_int)


@functools.cache
def renameat2() -> Callable[..., int] | None:
    """libc's renameat2 (Linux, glibc 2.28+), or None."""
    return _linux_libc(
        "renameat2", ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint
    )


@functools.cache
def sync_file_range() -> Callable[..., int] | None:
    """libc's sync_file_range (Linux), or None."""
    return _linux_libc("sync_file_range", ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint)


def rename2(src: Path, dst: Path, flags: int) -> bool:
    """renameat2(src, dst, flags): True when done, False when the system cannot do it (fall back)."""
    function = renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(dst))


# --- new files ---------------------------------------------------------------------------------


class Background:
    """A function run on a daemon thread (a failed command never waits for it); `result()` joins."""

    def __init__(self, function: Callable[[], bytes | None]) -> None:
        self._function = function
        self._value: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._function()
        except BaseException as err:  # re-raised in the caller's thread
            self._error = err

    def result(self) -> bytes | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


Content = bytes | list[Piece] | Background
"""What a file of a write will hold: bytes, pieces of the model's source file, or a background
computation of its bytes (None: the file is not written)."""


def content_of(data: Content | None) -> bytes | list[Piece] | None:
    """The bytes or pieces to write, waiting for a background computation."""
    return data.result() if isinstance(data, Background) else data


class Writer:
    """Appends to a new file, at most `CHUNK` bytes a system call, and (with `writeback`) starts
    each chunk's writeback as soon as it is written.

    The file is fsynced at the end either way; started early, the disk writes while the next
    chunks are copied and that fsync has little left to wait for.
    """

    def __init__(self, fd: int, *, writeback: bool = True) -> None:
        self.fd = fd
        self._writeback = writeback
        self._written = 0
        self._started = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            count = os.write(self.fd, view[:CHUNK])
            view = view[count:]
            self.wrote(count)

    def wrote(self, count: int) -> None:
        """Account for `count` bytes appended to the file (by `write` or by a kernel copy)."""
        self._written += count
        if self._writeback and self._written - self._started >= CHUNK:
            function = sync_file_range()
            if function is not None:  # advisory: a failure shows up in the closing fsync
                function(self.fd, self._started, self._written - self._started, _SYNC_FILE_RANGE_WRITE)
            self._started = self._written


def write_new(
    path: Path,
    data: bytes | list[Piece],
    *,
    like: Path | None = None,
    holes: Holes | None = None,
    sync: bool = True,
    writeback: bool = True,
) -> None:
    """Create `path` (it must not exist), write `data`, fsync; with the permissions of `like`.

    `data` is bytes, or pieces whose spans `holes` copies from the model's source file. Without
    `sync`, the caller makes the file durable (a commit group's syncfs) or nobody does
    (`save(sync=False)`, which passes `writeback=False` too: the disk is left to the kernel).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if like is not None:
            with contextlib.suppress(OSError):
                info = os.stat(like)
                os.fchmod(fd, stat.S_IMODE(info.st_mode))
                if os.geteuid() == 0:
                    os.fchown(fd, info.st_uid, info.st_gid)  # root editing someone's model keeps it theirs
        writer = Writer(fd, writeback=writeback)
        if isinstance(data, bytes):
            writer.write(data)
        else:
            assert holes is not None or all(isinstance(p, bytes) for p in data)
            if holes is None:
                writer.write(b"".join(p for p in data if isinstance(p, bytes)))
            else:
                holes.write(writer, data, CHUNK)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


# --- durability --------------------------------------------------------------------------------


def fsync(path: Path) -> None:
    """fsync a file or directory by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Durable(Protocol):
    """A write not yet durable: its directory, and what it made there that must be synced."""

    @property
    def path(self) -> Path: ...

    @property
    def unsynced(self) -> list[Path]: ...


def make_durable(staged: Sequence[Durable]) -> None:
    """Put on disk everything the writes made: syncfs once per file system, or (without it) an
    fsync of every file and directory each one made."""
    function = syncfs()
    if function is None:
        for s in staged:
            for path in s.unsynced:
                fsync(path)
        return
    synced: set[int] = set()
    for s in staged:
        device = os.stat(s.path).st_dev
        if device in synced:
            continue
        fd = os.open(s.path, os.O_RDONLY)
        try:
            if function(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code), str(s.path))
        finally:
            os.close(fd)
        synced.add(device)


def fsync_directories(staged: Sequence[Durable]) -> None:
    """fsync each write's directory (the renames in it)."""
    for s in staged:
        fsync(s.path)


def sync_directories(staged: Sequence[Durable]) -> None:
    """Make the renames in the writes' directories durable: one syncfs per file system (it
    commits the file system's journal), or an fsync of each directory."""
    if syncfs() is None:
        fsync_directories(staged)
    else:
        make_durable(staged)


# --- putting things in place -------------------------------------------------------------------


def publish(staging: Path, out: Path, *, replace: bool, sync: bool = True) -> None:
    """Rename the finished directory into place: never over another writer's, atomically over --force's.

    With `sync`, the parent directory is then synced (a group syncs each parent once instead).
    """
    if not _place_new(staging, out):
        if not replace:
            raise SavedModelIOError(
                f"{out} already exists (another run wrote it meanwhile): choose a new directory "
                "or replace it (--force, force=True)"
            )
        _replace_existing(staging, out)
    # Published: what is left is best effort (a leftover is removed by the next write to OUT).
    if sync:
        with contextlib.suppress(OSError):
            fsync(out.parent)


def _place_new(staging: Path, out: Path) -> bool:
    """Rename `staging` to `out` if nothing is there (False if something is)."""
    try:
        if rename2(staging, out, RENAME_NOREPLACE):
            return True
    except FileExistsError:
        return False
    if os.path.lexists(out):
        return False
    os.rename(staging, out)  # without renameat2: a writer between the check and here would be replaced
    return True


def _replace_existing(staging: Path, out: Path) -> None:
    """Swap `staging` and the existing `out` atomically, or (without renameat2) move `out` aside first."""
    if rename2(staging, out, RENAME_EXCHANGE):
        remove(staging)  # the old output, now under the staging name
        return
    trash = out.parent / temp_name(out.name, "old", new_tx())
    ACTIVE.add(str(trash))
    try:
        os.rename(out, trash)
        try:
            os.rename(staging, out)
        except BaseException:  # an I/O error, or an interrupt: the old output back, or gone
            if not os.path.lexists(out):
                os.rename(trash, out)
            else:
                remove(trash)
            raise
        remove(trash)
    finally:
        ACTIVE.discard(str(trash))


def swap_in(new: Path, target: Path, old: Path) -> None:
    """Put the file `new` at `target` atomically, the old `target` left at `old` (the commit point).

    `old` is first made a second name of the old file; then RENAME_EXCHANGE swaps `new` and
    `target`, and `new` (now naming the old file too) is unlinked. A plain rename over a file
    makes ext4 write the renamed file out at once (auto_da_alloc); an exchange does not, and the
    old file is freed where the caller removes `old`. The journal reads: `new` and `old` the same
    file means committed (see `surgery.storage.recovery`). Without links or RENAME_EXCHANGE: a
    plain rename.
    """
    try:
        os.link(target, old)
    except OSError:
        os.replace(new, target)
        return
    if not rename2(new, target, RENAME_EXCHANGE):
        os.replace(new, target)
        return
    with contextlib.suppress(OSError):  # committed: a leftover `new` is read as such while `old` is there
        os.unlink(new)
