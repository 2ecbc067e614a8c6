"""Reading and writing SavedModel directories, losslessly, atomically, and safely under crashes.

A model is read from `saved_model.pb` (or `saved_model.pbtxt`) and written back in the same
format. An unedited model is written byte for byte as it was read, `fingerprint.pb` included; an
edited one gets the deterministic serialization TensorFlow itself writes and the fingerprint
TensorFlow would compute for it.

What makes a write safe, even when the process is killed at any moment or the disk fills up:

- `-o OUT`: the whole directory is built in a staging directory beside OUT
  (`.OUT.surgery-tmp-PID-XXXX`; other files hard-linked where the file system allows, copied
  otherwise), fsynced, and renamed into place only when complete: with `renameat2` (Linux),
  RENAME_NOREPLACE, so that two writers never clobber each other, or RENAME_EXCHANGE for
  `--force`, so that OUT is the old or the new directory at every instant. The input is never
  touched. A staging directory a killed run left is removed by the next write to the same OUT,
  once its owner is dead (its pid is gone and nobody holds its lock).
- A batch (`commit_group`) stages several copies this way, makes them durable together with one
  `syncfs` instead of several fsyncs each, and only then renames each into place: each OUT is
  still absent or complete at every instant. Its in-place edits (below) are each journaled
  as alone; the group takes each step for all of them, then one `syncfs` makes that step
  durable for all before the next (four per group instead of five fsyncs per model).
- `in_place`: `saved_model.pb` and `fingerprint.pb` must change as a pair; a pb with a stale
  fingerprint must never be seen. The new files are written as temporary files beside them
  and fsynced; then the old fingerprint is renamed to a backup, the new pb swapped with the
  old one (RENAME_EXCHANGE, the commit point; the old pb's second name, made just before, tells
  a recovery which side of the swap a killed run stopped on), the new fingerprint renamed into
  place, the backup and the old pb deleted.
  At every instant the directory holds the original, the edit, or one of them without a
  fingerprint (which TensorFlow accepts: a missing fingerprint is legal, a stale one is not).
  The temporary names, which share a transaction id, are the journal: the next command that
  opens the model rolls back (the pb temp file still exists: the backup is restored, the
  original is back byte for byte) or finishes (the pb was renamed: the new fingerprint goes
  into place) what a killed run left.
- `sync=False` (`--no-sync`) skips every fsync and syncfs, as `cp` and TensorFlow's own writer
  do: the renames above still make each write atomic when the process is killed (the page cache
  outlives it), but not when the machine loses power or the kernel crashes before the disk
  has the bytes.
- Concurrency: an in-place edit holds an exclusive `flock` on the model directory itself (no
  lock file inside the model) from reading to writing; a second one fails at once with a clear
  message instead of mixing or losing edits. Writing a copy holds a shared lock on its input.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import errno
import functools
import os
import re
import shutil
import socket
import stat
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError

from surgery.errors import SavedModelIOError, SchemaError, SurgeryWarning
from surgery.fingerprint import compute_fingerprint
from surgery.lazy import END, Holes, Piece, Release, Span, enabled, shrink
from surgery.schema import SavedModel, from_text, text_format_error, to_text
from surgery_proto import RENAME_PREFIX

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no advisory locks
    fcntl = None  # type: ignore[assignment]

PB = "saved_model.pb"
PBTXT = "saved_model.pbtxt"
CPB = "saved_model.cpb"
FINGERPRINT = "fingerprint.pb"
Format = Literal["pb", "pbtxt"]

TEMP_MARK = ".surgery-"
# `.NAME.surgery-KIND-PID-HEX`: the temporary files and directories this module makes.
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.surgery-(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<tx>[0-9a-f]+)$")
_SAVED_MODEL = cast(Descriptor, SavedModel.DESCRIPTOR)
_CHUNK = 1 << 20  # bytes per write(2): a kill or a full disk can land between any two


@dataclass
class Model:
    """A SavedModel read from disk: its proto, and where and how it was stored.

    A large binary model is read lazily: `holes` then holds the byte fields left on disk (see
    `surgery.lazy`), the proto has short tokens in their place, and `source` is the file with
    those tokens. `materialized()` gives the whole model in memory.
    """

    proto: SavedModel
    path: Path
    format: Format = "pb"
    source: bytes = field(default=b"", repr=False)
    stamp: tuple[int, int, int] | None = field(default=None, repr=False, compare=False)
    holes: Holes | None = field(default=None, repr=False, compare=False)

    @property
    def file_name(self) -> str:
        """`saved_model.pb` or `saved_model.pbtxt`, as `format` says."""
        return PB if self.format == "pb" else PBTXT

    @property
    def edited(self) -> bool:
        return not self.unchanged(self.serialize_shrunk())

    def unchanged(self, data: bytes) -> bool:
        """Whether `data`, the current serialization, is the model as it was read.

        Decided at write time, so that reading (show, check) never pays a serialization: the
        source is parsed again only when the bytes differ from it (an edit, a text-format
        model, or a file some other writer did not serialize canonically).
        """
        if self.format == "pb" and data == self.source:
            return True
        original = parse(self.source, self.format)
        return original.SerializeToString(deterministic=True) == data

    def serialize(self) -> bytes:
        """Deterministic binary serialization (map entries sorted), as TensorFlow writes it.

        All of it in memory, holes filled: `save` streams instead.
        """
        data = self.serialize_shrunk()
        if self.holes is None:
            return data
        return b"".join(bytes(c) for c in self.holes.chunks(self.pieces(data)))

    def serialize_shrunk(self) -> bytes:
        """The serialization of `proto` as it is: with the holes' tokens in a lazily read model."""
        return self.proto.SerializeToString(deterministic=True)

    def pieces(self, data: bytes) -> list[Piece]:
        """The file contents for `data`, a serialization of this model: spans for the holes."""
        if self.holes is None:
            return [data]
        return self.holes.expand(data, _SAVED_MODEL)

    def close(self) -> None:
        """Let go of the model file a lazily read model keeps open (the model is unusable after).

        If an in-place save replaced that file, this was its last reference: the kernel frees
        its blocks here, about a second per GB on a file system mounted with `discard` (the
        benchmark VM), so a large one is let go by a short-lived background process instead
        (`_let_go`) and the command does not wait for it.
        """
        fd = self.holes.detach() if self.holes is not None else None
        if fd is not None:
            _let_go(fd)

    def materialized(self) -> Model:
        """This model with every byte in memory (a copy, for a lazily read model)."""
        if self.holes is None:
            return self
        data = self.serialize()
        return Model(
            proto=parse(data, "pb"), path=self.path, format=self.format, source=data, stamp=self.stamp
        )


def parse(data: bytes, fmt: Format) -> SavedModel:
    """The SavedModel in `data` (binary or text format); protobuf's errors as they come."""
    proto = SavedModel()
    if fmt == "pb":
        proto.ParseFromString(data)
    else:
        from_text(data.decode("utf-8"), proto)
    return proto


def _why(err: OSError) -> str:
    return err.strerror or str(err)


def _not_written(out: Path, err: OSError) -> SavedModelIOError:
    return SavedModelIOError(f"cannot write {out}: {_why(err)}; nothing was written")


def _resolve(path: Path) -> Path:
    """`path` with every symbolic link resolved; a link loop is a one-line error."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise SavedModelIOError(f"{path} is a symbolic link loop: remove or fix the link") from None


def find_model_file(path: Path) -> tuple[Path, Format]:
    """The proto file of a SavedModel directory; a one-line error if there is none."""
    if not path.exists():
        if path.is_symlink():
            raise SavedModelIOError(f"{path} is a broken symbolic link (or a link loop): fix the link")
        raise SavedModelIOError(f"{path}: no such directory: give the SavedModel directory")
    if not path.is_dir():
        hint = f": pass its directory {path.parent}" if path.name in (PB, PBTXT) else ""
        raise SavedModelIOError(f"{path} is a file, not a SavedModel directory{hint}")
    try:
        with os.scandir(path) as entries:
            next(entries, None)  # a directory we may not read would look empty below
    except OSError as err:
        raise SavedModelIOError(f"cannot read the directory {path}: {_why(err)}") from None
    if (path / PB).is_file():
        if (path / PBTXT).is_file():
            warnings.warn(
                SurgeryWarning(
                    f"{path} holds both {PB} and {PBTXT}: reading {PB}, as TensorFlow does; "
                    f"{PBTXT} is ignored"
                ),
                stacklevel=3,
            )
        return path / PB, "pb"
    if (path / PBTXT).is_file():
        return path / PBTXT, "pbtxt"
    if (path / CPB).is_file():
        raise SavedModelIOError(
            f"{path} holds a chunked {CPB} (a model over 2 GB): only saved_model.pb and "
            "saved_model.pbtxt are supported"
        )
    for name in (PB, PBTXT):
        if os.path.lexists(path / name):
            raise SavedModelIOError(
                f"{path / name} is not a regular file (a directory, a device, a FIFO or a broken link): "
                "it must be the model's proto file"
            )
    raise SavedModelIOError(f"{path} holds no {PB} or {PBTXT}: is it a SavedModel directory?")


def load(path: str | os.PathLike[str], *, lazy: bool = True) -> Model:
    """Read the SavedModel in directory `path` (`saved_model.pb` or `saved_model.pbtxt`).

    Nothing else is read: `variables/`, `assets/` and other files stay on disk and are carried
    over by `save`. TensorFlow is never imported.

    Args:
        path: the SavedModel directory.
        lazy: leave a large `saved_model.pb`'s big byte fields (large constants) on disk until
            the model is written, so memory stays small (the default); False reads it all.

    Returns:
        The model: its `proto` (a `SavedModel` message), `path` and `format` (`"pb"` or `"pbtxt"`).

    Raises:
        SavedModelIOError: the directory is missing, unreadable or holds no model file.
        SchemaError: the model file is not a valid SavedModel.

    Example:
        >>> model = surgery.load("my_model")
        >>> model.format, sorted(model.proto.meta_graphs[0].meta_info_def.tags)
        ('pb', ['serve'])
        >>> "serving_default" in model.proto.meta_graphs[0].signature_def
        True
    """
    directory = Path(path)
    file, fmt = find_model_file(directory)
    recover(directory)
    holes: Holes | None = None
    try:
        with open(file, "rb") as f:
            info = os.fstat(f.fileno())
            shrunk = (
                shrink(f.fileno(), info.st_size, _SAVED_MODEL) if lazy and fmt == "pb" and enabled() else None
            )
            if shrunk is None:
                data = f.read()
            else:
                data, holes = shrunk
    except OSError as err:
        raise SavedModelIOError(f"cannot read {file}: {_why(err)}") from None
    try:
        proto = parse(data, fmt)
    # (an except clause is evaluated only when an exception reaches it: text format stays unloaded)
    except (DecodeError, text_format_error(), UnicodeDecodeError, RecursionError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        detail = detail.replace(RENAME_PREFIX, "")
        raise SchemaError(
            f"{file} is not a valid SavedModel ({detail}): the file is truncated or corrupt"
        ) from None
    if not proto.meta_graphs:
        raise SchemaError(f"{file} holds no meta graph: it is empty, corrupt, or not a SavedModel")
    stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
    return Model(proto=proto, path=directory, format=fmt, source=data, stamp=stamp, holes=holes)


def save(
    model: Model,
    output: str | os.PathLike[str] | None = None,
    *,
    in_place: bool = False,
    force: bool = False,
    sync: bool = True,
) -> Path:
    """Write `model` to the new directory `output`, or over its own files with `in_place=True`.

    The output is built beside `output` and renamed into place when complete; `variables/`,
    `assets/` and every other file of the model's directory come along (hard-linked where the
    file system allows). An unedited model is written byte for byte as it was read; an edited
    one gets TensorFlow's deterministic serialization and a recomputed `fingerprint.pb`.

    Args:
        model: a model from `load`, edited or not.
        output: the new directory (refused if it exists, unless `force`).
        in_place: replace the model's own `saved_model.pb` and `fingerprint.pb` instead.
        force: replace an existing `output` (atomically).
        sync: fsync what was written before it is published (so that it survives a power cut);
            False skips that, and the write is atomic under a kill only (see the module docstring).

    Returns:
        The directory written.

    Raises:
        SavedModelIOError: the output exists, is inside the input, or cannot be written;
            nothing was written.

    Example:
        >>> model = surgery.rename_signature(surgery.load("my_model"), "fixed", "fixed_v2")
        >>> surgery.save(model, "saved_copy")
        PosixPath('saved_copy')
        >>> "fixed_v2" in surgery.load("saved_copy").proto.meta_graphs[0].signature_def
        True
    """
    if in_place == (output is not None):
        raise SavedModelIOError("give either an output directory or in_place=True")
    if (model.path / PB).is_file() and (model.path / PBTXT).is_file():
        raise SavedModelIOError(
            f"{model.path} holds both {PB} and {PBTXT}: an edit would leave one of them stale; "
            f"delete the one TensorFlow should not read (it reads {PB}) and retry"
        )
    out = None if output is None else Path(output)
    if out is not None:
        _check_output(model.path, out, force=force)
    data = model.serialize_shrunk()
    edited = not model.unchanged(data)
    if out is None and edited and model.holes is not None and hasattr(os, "posix_fadvise"):
        # The source file is replaced: its pages go as the copy and the hash pass them.
        model.holes.release = Release(model.holes.fd, ("copy", "hash"))
    try:
        files = _model_files(model, data, edited=edited)
        if out is None:
            group = _GROUP.get()
            if group is not None:
                group.refuse_staged(model.path)  # its lock would say "another process"
            with model_lock(model.path, exclusive=True):
                if not edited:  # the files already hold these bytes
                    _refuse_changed_on_disk(model.stamp, model.path / model.file_name)
                elif group is not None:
                    group.stage_edit(model, files, sync=sync)
                else:
                    _save_in_place(model, files, sync=sync)
            return model.path
        with model_lock(model.path, exclusive=False):
            _save_copy(model, files, out, edited=edited, force=force, sync=sync)
        return out
    except OSError as err:  # anything not already reported with its context
        where = model.path if in_place else output
        raise SavedModelIOError(f"cannot write {where}: {_why(err)}; nothing was changed") from None
    finally:
        if model.holes is not None and model.holes.release is not None:
            model.holes.release.close()
            model.holes.release = None


class _Background:
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


Content = bytes | list[Piece] | _Background


def _model_files(model: Model, data: bytes, *, edited: bool) -> dict[str, Content]:
    """The contents of the model file (and fingerprint.pb, when edited) to write.

    A large model's fingerprint streams over the file's big spans (once, for the checksum and
    the graph hash together): it is computed on a thread while the model file is copied and
    synced, which wait on the kernel and the disk.
    """
    name = model.file_name
    if not edited:
        if model.holes is not None:
            return {name: [Span(0, model.holes.size)]}
        return {name: model.source}
    files: dict[str, Content] = {
        name: to_text(model.proto).encode() if model.format == "pbtxt" else model.pieces(data)
    }

    release = model.holes.release if model.holes is not None else None

    def fingerprint_file() -> bytes | None:
        try:
            fingerprint = compute_fingerprint(model.proto, data, model.path, model.holes)
        finally:
            if release is not None:
                release.mark("hash", END)
        if fingerprint is None:
            return None
        fingerprint.uuid = str(uuid.uuid4().int)  # TensorFlow writes a random 128-bit number in decimal
        return fingerprint.SerializeToString(deterministic=True)

    if model.holes is not None:
        files[FINGERPRINT] = _Background(fingerprint_file)
    else:
        fingerprint = fingerprint_file()
        if fingerprint is not None:
            files[FINGERPRINT] = fingerprint
    return files


FREE_IN_BACKGROUND = 64 << 20
"""A deleted file at least this large is let go by a background process (`_let_go`)."""


def _let_go(fd: int) -> None:
    """Close `fd`; if it is the last reference to a large deleted file, in a background process.

    Closing the last reference frees the file's blocks: measured on the benchmark VM (ext4
    mounted with `discard`), 0.9-1.1 s for 1 GB, nearly all of it waiting on the disk, and
    `rm` of that file takes as long. A process spawned with the descriptor inherited holds it
    instead, and the kernel frees the file when that process ends, moments later. Never a
    leftover: the file has no name, and if the process is killed or the machine stops, the
    kernel (or the file system's orphan list at the next mount) frees it all the same.
    """
    try:
        info = os.fstat(fd)
        if info.st_nlink != 0 or info.st_size < FREE_IN_BACKGROUND or not sys.executable:
            return
        os.set_inheritable(fd, True)
        null = [(os.POSIX_SPAWN_OPEN, n, os.devnull, os.O_RDWR, 0) for n in (0, 1, 2)]
        pid = os.posix_spawn(
            sys.executable, [sys.executable, "-S", "-I", "-c", ""], {}, file_actions=null, setsid=True
        )
        # Reaped by a thread, so that a long-lived caller keeps no zombie; a command that ends
        # first leaves it to init.
        threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    except (OSError, AttributeError, NotImplementedError):  # no posix_spawn or setsid: the close frees it
        pass
    finally:
        os.close(fd)


# --- locks -----------------------------------------------------------------------------------


@dataclass
class _Held:
    fd: int
    exclusive: bool
    depth: int


_HELD: dict[tuple[int, int], _Held] = {}  # this process's locks, by the directory's (device, inode)
_HELD_PID = os.getpid()


def _held() -> dict[tuple[int, int], _Held]:
    """The lock registry, emptied in a forked child (its locks are its parent's)."""
    global _HELD_PID
    if os.getpid() != _HELD_PID:
        _HELD.clear()
        _HELD_PID = os.getpid()
    return _HELD


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
    _held()[key] = _Held(fd, exclusive, 1)
    try:
        yield
    finally:
        _held().pop(key, None)
        os.close(fd)  # releases the lock


def _take_lock(fd: int, directory: Path, *, exclusive: bool) -> bool:
    """flock the open directory `fd` without waiting: True if locked, False where the file system
    does not do locks (some network ones: go on without); `_busy` if another process holds one."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise _busy(directory) from None
        return False
    return True


def _lock_is_free(path: Path) -> bool:
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


def _pid_alive(pid: int) -> bool:
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


# --- leftovers of killed runs ----------------------------------------------------------------

_ACTIVE: set[str] = set()  # temporary paths this process is using right now


def _temp_name(name: str, kind: str, tx: str) -> str:
    return f".{name}.surgery-{kind}-{tx}"


def _new_tx() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of the temporary files or directories a write makes."""
    return _TEMP_RE.match(name) is not None


def _leftovers(directory: Path, name: str | None = None) -> list[tuple[Path, re.Match[str]]]:
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _TEMP_RE.match(entry)
        if match and (name is None or match["name"] == name) and str(directory / entry) not in _ACTIVE:
            found.append((directory / entry, match))
    return found


def _remove(path: Path) -> None:
    if not os.path.lexists(path):
        return
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def recover(directory: str | os.PathLike[str]) -> None:
    """Roll back or finish an in-place edit a killed run left in `directory`; best effort.

    Only when nobody is editing the model (its lock is free, or held by this process), so a live
    writer's files are never touched. See the module docstring for the rules.
    """
    path = Path(directory)
    if not [m for _, m in _leftovers(path) if m["name"] in (PB, PBTXT, FINGERPRINT)]:
        return
    with contextlib.suppress(OSError):
        info = os.stat(path)
        held = _held().get((info.st_dev, info.st_ino))
        if held is not None and not held.exclusive:
            return  # this process is copying the model: it does not edit it
    try:
        with model_lock(path, exclusive=True):
            _recover_locked(path)
    except SavedModelIOError:
        return  # someone is editing it: theirs to finish


def _recover_locked(path: Path) -> None:
    transactions: dict[str, dict[tuple[str, str], Path]] = {}
    for file, match in _leftovers(path):
        if match["name"] not in (PB, PBTXT, FINGERPRINT):
            continue  # not an in-place edit's (a copy written beside the model, say)
        transactions.setdefault(f"{match['pid']}-{match['tx']}", {})[(match["name"], match["kind"])] = file
    for files in transactions.values():
        pb_temps = [files.pop(key) for key in ((PB, "tmp"), (PBTXT, "tmp")) if key in files]
        # Killed between the exchange and unlinking the temporary name: committed (see `_swap_in`).
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
            _fsync(path)
        except OSError:
            continue  # cannot write here: the journal stays as it is, for a run that can
        # The pb's temporary file goes last: while it exists, the edit reads as not committed
        # (unless it is the swapped old file: that goes first, while its second name tells).
        for leftover in [*swapped, new_fingerprint, backup, *files.values(), *pb_temps]:
            if leftover is not None:
                _remove(leftover)


def _is_swapped(files: dict[tuple[str, str], Path], temp: Path) -> bool:
    """Whether the pb temporary `temp` is the old model file, by its second name (see `_swap_in`)."""
    match = _TEMP_RE.match(temp.name)
    old = files.get((match["name"], "old")) if match else None
    try:
        return old is not None and os.path.samefile(temp, old)
    except OSError:
        return False


def _clean_stale_outputs(out: Path) -> None:
    """Remove what killed runs left beside `out` (their staging directories), once their owner is dead.

    A replaced output (`surgery-old`, left only where RENAME_EXCHANGE is missing) is put back when
    `out` itself is gone: the run that moved it away died before its replacement was in place.
    """
    for path, match in _leftovers(out.parent, out.name):
        if _pid_alive(int(match["pid"])) or not _lock_is_free(path):
            continue
        if match["kind"] == "old" and not os.path.lexists(out):
            with contextlib.suppress(OSError):
                os.rename(path, out)
                continue
        _remove(path)


# --- writing a copy (-o) ---------------------------------------------------------------------


def _check_output(source: Path, out: Path, *, force: bool) -> None:
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
            raise SavedModelIOError(f"{out} already exists: choose a new directory or pass --force")
        if not out.is_dir() or out.is_symlink():
            raise SavedModelIOError(
                f"{out} exists and is not a directory: remove it or choose another output"
            )
    if not out.parent.is_dir():
        raise SavedModelIOError(f"{out.parent}: no such directory to write {out.name} into")


def _save_copy(
    model: Model, files: dict[str, Content], out: Path, *, edited: bool, force: bool, sync: bool
) -> None:
    _clean_stale_outputs(out)
    skip = {PB, PBTXT, FINGERPRINT} if edited else {PB, PBTXT}
    group = _GROUP.get()
    staged = _make_staging(out, replace=force, sync=sync)
    handed_over = False
    try:
        staged.unsynced = _carry_over(model.path, staged.path, skip=skip)
        for name, data in files.items():
            content = data.result() if isinstance(data, _Background) else data
            if content is not None:
                # Alone, each file is fsynced as it is written (a large one while its hash runs).
                path = staged.path / name
                _write_new(path, content, holes=model.holes, sync=sync and group is None, writeback=sync)
                if group is not None:
                    staged.unsynced.append(path)
        staged.unsynced.append(staged.path)
        if group is not None:
            group.staged.append(staged)  # the group makes it durable, publishes it and drops it
            handed_over = True
            return
        for path in staged.unsynced if sync else []:
            _fsync(path)
        _publish(staged.path, out, replace=force, sync=sync)
    except OSError as err:
        raise _not_written(out, err) from None
    finally:
        if not handed_over:
            _drop_staging(staged)


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


def _make_staging(out: Path, *, replace: bool, sync: bool) -> StagedCopy:
    """Create a locked temporary directory beside `out` (`_drop_staging` removes it)."""
    path = out.parent / _temp_name(out.name, "tmp", _new_tx())
    try:
        os.mkdir(path)  # 0o777 less the umask, as the published directory should be
    except OSError as err:
        raise SavedModelIOError(f"cannot write into {out.parent}: {_why(err)}") from None
    staged = StagedCopy(path, out, replace, sync)
    try:
        _hold(staged)
    except OSError as err:
        _drop_staging(staged)
        raise _not_written(out, err) from None
    return staged


def _hold(staged: StagedCopy) -> None:
    """Mark the staging directory as this process's: in `_ACTIVE`, and locked while this run
    lives (how the next run knows it is not dead)."""
    _ACTIVE.add(str(staged.path))
    if fcntl is not None:
        staged.fd = os.open(staged.path, os.O_RDONLY)
        with contextlib.suppress(OSError):
            fcntl.flock(staged.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _drop_staging(staged: StagedCopy) -> None:
    """Remove the staging directory unless it was published; release its lock."""
    _remove(staged.path)
    _ACTIVE.discard(str(staged.path))
    if staged.fd >= 0:
        os.close(staged.fd)
        staged.fd = -1


def _drop_edit(edit: StagedEdit) -> None:
    """Let go of a staged edit's journal names and its model's lock."""
    _ACTIVE.difference_update(str(p) for p in edit.journal)
    if edit.fd >= 0:
        os.close(edit.fd)
        edit.fd = -1


# --- writing many copies together (batches) --------------------------------------------------


class CommitGroup:
    """The writes `save` staged inside `commit_group()`: made durable together, then published.

    A copy must be on disk before it is renamed into place, and an in-place edit's new files
    before they are swapped in. Alone, that is an fsync of every file and directory a write
    made, each a flush of the disk's cache: on the 2-CPU VM of the benchmarks, four flushes were
    1.5 ms of a small model's 6 ms, and its workers spent a third of their time waiting on them.
    A group makes everything its writes hold durable at once (one `syncfs` per file system: one
    flush for all of them), then publishes each copy exactly as `save` would have, syncing each
    output's parent directory once, and swaps the in-place edits in step by step, one flush per
    step for all of them (`_commit_edits`). A write saved with `sync=False` gets no flush.
    """

    def __init__(self) -> None:
        self.staged: list[StagedCopy] = []
        self.edits: list[StagedEdit] = []
        self.failures: dict[Path, SavedModelIOError] = {}
        """The outputs (or edited models) that could not be published, each with the error
        `save` would have raised."""

    def refuse_staged(self, path: Path) -> None:
        """Refuse a second in-place edit of a model: swapped in after the first, it would undo it."""
        with contextlib.suppress(OSError):
            info = os.stat(path)
            if any(os.path.samestat(os.stat(edit.path), info) for edit in self.edits):
                raise SavedModelIOError(
                    f"{path} already has an in-place edit waiting in this commit group: "
                    "make both edits to one loaded model and save it once"
                )

    def stage_edit(self, model: Model, files: dict[str, Content], *, sync: bool) -> None:
        """Write an in-place edit's files and keep its model locked until the commit."""
        info = os.stat(model.path)
        held = _held().get((info.st_dev, info.st_ino))
        lock = os.dup(held.fd) if held is not None else -1  # outlives `model_lock`: until the commit
        try:
            edit = _stage_edit(model, files, sync=sync, grouped=True)
        except BaseException:
            if lock >= 0:
                os.close(lock)
            raise
        edit.fd = lock
        self.edits.append(edit)

    def commit(self) -> None:
        """Make the staged writes durable and put them in place; failures go to `failures`."""
        staged, self.staged = self.staged, []
        edits, self.edits = self.edits, []
        if not staged and not edits:
            return  # handed over, or nothing saved
        try:
            durable: list[Staged] = [s for s in staged if s.sync] + [e for e in edits if e.sync]
            try:
                _make_durable(durable)
            except OSError as err:
                for s in durable:  # a write saved without sync never waited on the disk: it goes on
                    if isinstance(s, StagedEdit):
                        self.failures[s.path] = _fail_edit(s, err)
                    else:
                        self.failures[s.out] = _not_written(s.out, err)
            self._publish(staged)
            live = [e for e in edits if e.path not in self.failures]
            _commit_edits(live, _sync_dirs, self.failures, let_go=True)
        finally:
            for s in staged:
                _drop_staging(s)
            for edit in edits:
                _drop_edit(edit)

    def _publish(self, staged: list[StagedCopy]) -> None:
        parents: dict[Path, None] = {}
        for s in staged:
            if s.out in self.failures:
                continue
            try:
                _publish(s.path, s.out, replace=s.replace, sync=False)
                if s.sync:
                    parents[s.out.parent] = None
            except SavedModelIOError as err:
                self.failures[s.out] = err
            except OSError as err:
                self.failures[s.out] = _not_written(s.out, err)
        for parent in parents:  # published: what is left is best effort, as in `_publish`
            with contextlib.suppress(OSError):
                _fsync(parent)

    def discard(self) -> None:
        """Drop the staged writes unpublished (an in-place edit's files are deleted: nothing changed)."""
        staged, self.staged = self.staged, []
        edits, self.edits = self.edits, []
        for s in staged:
            _drop_staging(s)
        for edit in edits:
            _undo_edit(edit)
            _drop_edit(edit)

    def hand_over(self, channel: LockChannel | None = None) -> list[Staged]:
        """The staged writes, unpublished, for another process of this run to `adopt` and commit.

        This process lets go of them (their locks, its `_ACTIVE` entries); until they are adopted,
        their names, which carry this process's id, keep other runs' clean-up off them while it
        lives. How a batch's workers leave the waits on the disk to their parent. An in-place
        edit's model lock goes through `channel` to the adopter, held all the way; without one,
        the model is unlocked in between, and the adopter locks it again and, at the commit,
        refuses the edit if the model changed or its files went meanwhile.
        """
        staged: list[Staged] = [*self.staged, *self.edits]
        self.staged, self.edits = [], []
        for s in staged:
            if isinstance(s, StagedEdit):
                _ACTIVE.difference_update(str(p) for p in s.journal)
                if s.fd >= 0 and channel is not None:
                    channel.send(s.tx, s.fd)
            else:
                _ACTIVE.discard(str(s.path))
            if s.fd >= 0:
                os.close(s.fd)
                s.fd = -1
        return staged

    def adopt(self, staged: list[Staged], channel: LockChannel | None = None) -> None:
        """Take over writes another process of this run handed over: committed with this group's.

        An in-place edit's lock is taken from `channel` if it came through it, else taken again."""
        for s in staged:
            if isinstance(s, StagedEdit):
                s.fd = channel.take(s.tx) if channel is not None else -1
                self._adopt_edit(s)
                continue
            try:
                _hold(s)
            except OSError as err:
                self.failures[s.out] = _not_written(s.out, err)
                _drop_staging(s)
                continue
            self.staged.append(s)

    def _adopt_edit(self, edit: StagedEdit) -> None:
        """Lock the model again, as `model_lock` would (its lock did not come through a channel)."""
        _ACTIVE.update(str(p) for p in edit.journal)
        if fcntl is not None and edit.fd < 0:
            with contextlib.suppress(OSError):  # not openable: the commit's first step says why
                edit.fd = os.open(edit.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                if edit.fd >= 0 and not _take_lock(edit.fd, edit.path, exclusive=True):
                    os.close(edit.fd)
                    edit.fd = -1
            except SavedModelIOError as err:  # another process edits it: the next load recovers ours
                self.failures[edit.path] = err
                _drop_edit(edit)
                return
        self.edits.append(edit)


class LockChannel:
    """Carries in-place edits' model locks from a batch's workers to their parent.

    A lock belongs to the open file it was taken on, and a descriptor sent over a Unix socket
    (SCM_RIGHTS) keeps that file open while in flight: the model stays locked from its read in
    the worker to its swap in the parent. Made before the workers are forked (they inherit it);
    if every process of the run dies, the kernel drops what is in flight and the locks go.
    """

    def __init__(self) -> None:
        self._receiver, self._sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._receiver.setblocking(False)  # (recv_fds ignores its flags before Python 3.12)
        self._received: dict[str, int] = {}

    def send(self, tx: str, fd: int) -> None:
        """Send the lock `fd` of the transaction `tx` (a worker's; it may close its own after)."""
        socket.send_fds(self._sender, [tx.encode()], [fd])

    def take(self, tx: str) -> int:
        """The lock sent for `tx`, now the caller's to close; -1 if none came."""
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._receiver, 256, 1)
            except BlockingIOError:
                break
            for fd in fds:
                os.set_inheritable(fd, False)
                self._received[message.decode()] = fd
        return self._received.pop(tx, -1)

    def close(self) -> None:
        """Close the sockets and any lock nobody took."""
        for fd in self._received.values():
            os.close(fd)
        self._received.clear()
        self._receiver.close()
        self._sender.close()


_GROUP: contextvars.ContextVar[CommitGroup | None] = contextvars.ContextVar("commit_group", default=None)


@contextlib.contextmanager
def commit_group() -> Iterator[CommitGroup]:
    """Within it, `save` stages each write; they are published together at the end.

    `save(model, output)` returns the output it will publish; `save(model, in_place=True)`
    writes the new files beside the model's and keeps the model locked, and the group swaps
    them in (each edit still its own journaled transaction). The group's `failures` then names
    the outputs and models that could not be written (the same errors `save` raises alone). If
    the block raises, nothing it staged is published and every model is left as it was.
    """
    group = CommitGroup()
    token = _GROUP.set(group)
    try:
        yield group
    except BaseException:
        group.discard()
        raise
    finally:
        _GROUP.reset(token)
    group.commit()


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's syncfs (Linux), or None."""
    return _linux_libc("syncfs", ctypes.c_int)


def _make_durable(staged: Sequence[Staged]) -> None:
    """Put on disk everything the staging directories hold: syncfs once per file system, or
    (without it) an fsync of every file and directory each one made."""
    function = _syncfs()
    if function is None:
        for s in staged:
            for path in s.unsynced:
                _fsync(path)
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


def _sync_dirs(edits: list[StagedEdit]) -> None:
    """Make the renames in the edits' model directories durable: one syncfs per file system (it
    commits the journal), or an fsync of each directory."""
    if _syncfs() is None:
        _fsync_dirs(edits)
    else:
        _make_durable(edits)


_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


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
def _renameat2() -> Callable[..., int] | None:
    """libc's renameat2 (Linux, glibc 2.28+), or None."""
    return _linux_libc(
        "renameat2", ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint
    )


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """renameat2(src, dst, flags): True when done, False when the system cannot do it (fall back)."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(dst))


def _publish(staging: Path, out: Path, *, replace: bool, sync: bool = True) -> None:
    """Rename the finished directory into place: never over another writer's, atomically over --force's.

    With `sync`, the parent directory is then synced (a group syncs each parent once instead).
    """
    if not _place_new(staging, out):
        if not replace:
            raise SavedModelIOError(
                f"{out} already exists (another run wrote it meanwhile): choose a new directory "
                "or pass --force"
            )
        _replace_existing(staging, out)
    # Published: what is left is best effort (a leftover is removed by the next write to OUT).
    if sync:
        with contextlib.suppress(OSError):
            _fsync(out.parent)


def _place_new(staging: Path, out: Path) -> bool:
    """Rename `staging` to `out` if nothing is there (False if something is)."""
    try:
        if _rename2(staging, out, _RENAME_NOREPLACE):
            return True
    except FileExistsError:
        return False
    if os.path.lexists(out):
        return False
    os.rename(staging, out)  # without renameat2: a writer between the check and here would be replaced
    return True


def _replace_existing(staging: Path, out: Path) -> None:
    """Swap `staging` and the existing `out` atomically, or (without renameat2) move `out` aside first."""
    if _rename2(staging, out, _RENAME_EXCHANGE):
        _remove(staging)  # the old output, now under the staging name
        return
    trash = out.parent / _temp_name(out.name, "old", _new_tx())
    _ACTIVE.add(str(trash))
    try:
        os.rename(out, trash)
        try:
            os.rename(staging, out)
        except OSError:
            os.rename(trash, out)
            raise
        _remove(trash)
    finally:
        _ACTIVE.discard(str(trash))


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


# --- writing in place ------------------------------------------------------------------------


@dataclass
class StagedEdit:
    """An in-place edit whose new files are written beside the model's, not yet swapped in.

    `_commit_edits` swaps it in, alone (`save`) or together with a group's others. Its temporary
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
        return self.path / _temp_name(name, kind, self.tx)

    @property
    def journal(self) -> list[Path]:
        """Every name the transaction may make."""
        return [self.name(n, k) for n in (self.main, FINGERPRINT) for k in ("tmp", "old")]

    @property
    def unsynced(self) -> list[Path]:
        """What must be synced before the swap: the new files and the directory entries naming them."""
        return [*self.temps.values(), self.path]


Staged = StagedCopy | StagedEdit


def _save_in_place(model: Model, files: dict[str, Content], *, sync: bool) -> None:
    """Replace the model file and fingerprint.pb as a pair (see the module docstring)."""
    edit = _stage_edit(model, files, sync=sync, grouped=False)
    try:
        failures: dict[Path, SavedModelIOError] = {}
        _commit_edits([edit], _fsync_dirs, failures)
        if failures:
            raise failures[edit.path]
    finally:
        _ACTIVE.difference_update(str(p) for p in edit.journal)
    with contextlib.suppress(OSError):
        info = os.stat(model.path / edit.main)
        written = files[edit.main]
        model.source = written if isinstance(written, bytes) else model.serialize_shrunk()
        model.stamp = (info.st_ino, info.st_size, info.st_mtime_ns)


def _stage_edit(model: Model, files: dict[str, Content], *, sync: bool, grouped: bool) -> StagedEdit:
    """Write an edit's new files beside the model's (fsynced unless `grouped`: the group syncs)."""
    main = model.file_name
    _refuse_changed_on_disk(model.stamp, model.path / main)
    edit = StagedEdit(model.path, main, _new_tx(), model.stamp, sync)
    _ACTIVE.update(str(p) for p in edit.journal)
    try:
        for name in (main, FINGERPRINT):
            data = files.get(name)
            content = data.result() if isinstance(data, _Background) else data
            if content is not None:
                edit.temps[name] = edit.name(name, "tmp")
                _write_new(
                    edit.temps[name],
                    content,
                    like=model.path / main,
                    holes=model.holes,
                    sync=sync and not grouped,
                    writeback=sync,
                )
    except OSError as err:
        error = _fail_edit(edit, err)
        _ACTIVE.difference_update(str(p) for p in edit.journal)
        raise error from None
    return edit


def _commit_edits(
    edits: list[StagedEdit],
    barrier: Callable[[list[StagedEdit]], None],
    failures: dict[Path, SavedModelIOError],
    *,
    let_go: bool = False,
) -> None:
    """Swap staged edits in, step by step: each step for every edit, then one `barrier` making
    those steps durable, then the next step. Each edit keeps the journal's order (see the module
    docstring); a group of N pays one barrier per step instead of N. An edit that fails is undone
    (or, past its commit point, left finished as far as it got) and its error put in `failures`.
    """
    failed: set[int] = set()

    def fail(edit: StagedEdit, err: OSError | SavedModelIOError) -> None:
        failed.add(id(edit))
        if isinstance(err, SavedModelIOError):
            _undo_edit(edit)
            failures[edit.path] = err
        else:
            failures[edit.path] = _fail_edit(edit, err)

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
            _finish_edit(edit, let_go=let_go)


def _still_staged(edit: StagedEdit) -> bool:
    """Refuse an edit whose model changed, or whose files went, while it waited: handed from a
    batch's worker to its parent, it was unlocked in between."""
    _refuse_changed_on_disk(edit.stamp, edit.path / edit.main)
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
    _swap_in(edit.name(edit.main, "tmp"), edit.path / edit.main, edit.name(edit.main, "old"))
    del edit.temps[edit.main]
    edit.committed = True
    return True


def _place_fingerprint(edit: StagedEdit) -> bool:
    if FINGERPRINT not in edit.temps:
        return False
    os.replace(edit.temps[FINGERPRINT], edit.path / FINGERPRINT)
    del edit.temps[FINGERPRINT]
    return True


def _finish_edit(edit: StagedEdit, *, let_go: bool) -> None:
    """Delete what a committed edit no longer needs (if this fails, the next command that opens
    the model does it). With `let_go`, the old model file is freed by `_let_go`: in a group,
    nothing else here holds it (alone, the model that was read does, until `Model.close`)."""
    if edit.backup is not None:
        _remove(edit.backup)
        edit.backup = None
    old = edit.name(edit.main, "old")
    if not os.path.lexists(edit.name(edit.main, "tmp")):
        fd = None
        if let_go:
            with contextlib.suppress(OSError):
                fd = os.open(old, os.O_RDONLY)
        _remove(old)  # the old model file's blocks are freed here, or where `fd` goes
        if fd is not None:
            _let_go(fd)


def _undo_edit(edit: StagedEdit) -> None:
    """Undo what a failed edit did: all of it before its commit point, the leftovers after it."""
    _undo(edit.path, edit.temps, edit.backup, committed=edit.committed)
    edit.backup = None
    if not edit.committed or not os.path.lexists(edit.name(edit.main, "tmp")):
        _remove(edit.name(edit.main, "old"))  # the old file's second name, if made


def _fail_edit(edit: StagedEdit, err: OSError) -> SavedModelIOError:
    """`_undo_edit`, and what happened, in one line."""
    _undo_edit(edit)
    if edit.committed:
        missing = (
            ""
            if os.path.lexists(edit.path / FINGERPRINT)
            else f" (without {FINGERPRINT}, which TensorFlow accepts)"
        )
        return SavedModelIOError(
            f"{edit.path} was edited{missing}, but the write did not finish cleanly ({_why(err)}): "
            "check the disk, then rerun the edit or restore a backup"
        )
    return SavedModelIOError(f"cannot write {edit.path / edit.main}: {_why(err)}; nothing was changed")


def _fsync_dirs(edits: list[StagedEdit]) -> None:
    for edit in edits:
        _fsync(edit.path)


def _swap_in(new: Path, target: Path, old: Path) -> None:
    """Put the file `new` at `target` atomically, the old `target` left at `old` (the commit point).

    `old` is first made a second name of the old file; then RENAME_EXCHANGE swaps `new` and
    `target`, and `new` (now naming the old file too) is unlinked. A plain rename over a file
    makes ext4 write the renamed file out at once (auto_da_alloc: 1.3 s for 1 GB on the bench
    machine, the old file's freeing included); an exchange does not, and the old file is freed
    at the caller's `_remove(old)`. The journal reads: `new` and `old` the same file means
    committed (see `_recover_locked`). Without links or RENAME_EXCHANGE: a plain rename.
    """
    try:
        os.link(target, old)
    except OSError:
        os.replace(new, target)
        return
    if not _rename2(new, target, _RENAME_EXCHANGE):
        os.replace(new, target)
        return
    with contextlib.suppress(OSError):  # committed: a leftover `new` is read as such while `old` is there
        os.unlink(new)


def _undo(directory: Path, temps: dict[str, Path], backup: Path | None, *, committed: bool) -> None:
    """After a failed write: restore the old fingerprint (when not committed), drop the temporaries."""
    if backup is not None and not committed:
        try:
            os.replace(backup, directory / FINGERPRINT)
        except OSError:
            return  # leave the journal for `recover`: the pb temp file says "not committed"
    elif backup is not None:
        _remove(backup)
    # The pb's temporary file goes last: while it exists, `recover` reads the edit as not committed.
    for name in sorted(temps, key=lambda name: name != FINGERPRINT):
        _remove(temps[name])


def _refuse_changed_on_disk(stamp: tuple[int, int, int] | None, file: Path) -> None:
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


# --- files -----------------------------------------------------------------------------------


_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[..., int] | None:
    """libc's sync_file_range (Linux), or None."""
    return _linux_libc("sync_file_range", ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint)


class _Writer:
    """Appends to a new file, at most `_CHUNK` bytes a system call, and (with `writeback`) starts
    each chunk's writeback as soon as it is written.

    The file is fsynced at the end either way; started early, the disk writes while the next
    chunks are copied and that fsync has little left to wait for (a 1 GB model: copy + fsync
    0.70 s without, 0.38 s with, where `cp` alone takes 0.30 s).
    """

    def __init__(self, fd: int, *, writeback: bool = True) -> None:
        self.fd = fd
        self._writeback = writeback
        self._written = 0
        self._started = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            count = os.write(self.fd, view[:_CHUNK])
            view = view[count:]
            self.wrote(count)

    def wrote(self, count: int) -> None:
        """Account for `count` bytes appended to the file (by `write` or by a kernel copy)."""
        self._written += count
        if self._writeback and self._written - self._started >= _CHUNK:
            function = _sync_file_range()
            if function is not None:  # advisory: a failure shows up in the closing fsync
                function(self.fd, self._started, self._written - self._started, _SYNC_FILE_RANGE_WRITE)
            self._started = self._written


def _write_new(
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
        writer = _Writer(fd, writeback=writeback)
        if isinstance(data, bytes):
            writer.write(data)
        else:
            assert holes is not None or all(isinstance(p, bytes) for p in data)
            if holes is None:
                writer.write(b"".join(p for p in data if isinstance(p, bytes)))
            else:
                holes.write(writer, data, _CHUNK)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    """fsync a file or directory by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
