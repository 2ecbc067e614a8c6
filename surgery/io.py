"""Reading and writing SavedModel directories, losslessly and atomically.

A model is read from `saved_model.pb` (or `saved_model.pbtxt`) and written back in the same
format. What makes the write safe:

- `-o OUT`: the whole directory is built in a temporary directory beside OUT (other files
  hard-linked where the file system allows, copied otherwise) and renamed into place only
  when complete. The input is never touched.
- `in_place`: `saved_model.pb` and `fingerprint.pb` are each written to a temporary file,
  fsynced and renamed over the old one.
- An unedited model is written byte for byte as it was read, `fingerprint.pb` included;
  an edited one gets the deterministic serialization TensorFlow itself writes and the
  fingerprint TensorFlow would compute for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from google.protobuf.message import DecodeError
from google.protobuf.text_format import ParseError

from surgery.errors import SavedModelIOError, SchemaError
from surgery.fingerprint import compute_fingerprint
from surgery.schema import SavedModel, from_text, to_text
from surgery_proto import RENAME_PREFIX

PB = "saved_model.pb"
PBTXT = "saved_model.pbtxt"
CPB = "saved_model.cpb"
FINGERPRINT = "fingerprint.pb"
Format = Literal["pb", "pbtxt"]


@dataclass
class Model:
    """A SavedModel read from disk: its proto, and where and how it was stored."""

    proto: SavedModel
    path: Path
    format: Format = "pb"
    source: bytes = field(default=b"", repr=False)
    warnings: list[str] = field(default_factory=list, repr=False)
    """One line each: what an edit could not keep consistent (the CLI prints them to stderr)."""

    @property
    def edited(self) -> bool:
        return not self.unchanged(self.serialize())

    def unchanged(self, data: bytes) -> bool:
        """Whether `data`, the current serialization, is the model as it was read.

        Decided at write time, so that reading (show, check) never pays a serialization: the
        source is parsed again only when the bytes differ from it (an edit, a text-format
        model, or a file some other writer did not serialize canonically).
        """
        if self.format == "pb" and data == self.source:
            return True
        original = SavedModel()
        if self.format == "pb":
            original.ParseFromString(self.source)
        else:
            from_text(self.source.decode("utf-8"), original)
        return original.SerializeToString(deterministic=True) == data

    def serialize(self) -> bytes:
        """Deterministic binary serialization (map entries sorted), as TensorFlow writes it."""
        return self.proto.SerializeToString(deterministic=True)


def find_model_file(path: Path) -> tuple[Path, Format]:
    """The proto file of a SavedModel directory; a one-line error if there is none."""
    if not path.exists():
        raise SavedModelIOError(f"{path}: no such directory: give the SavedModel directory")
    if not path.is_dir():
        hint = f": pass its directory {path.parent}" if path.name in (PB, PBTXT) else ""
        raise SavedModelIOError(f"{path} is a file, not a SavedModel directory{hint}")
    if (path / PB).is_file():
        return path / PB, "pb"
    if (path / PBTXT).is_file():
        return path / PBTXT, "pbtxt"
    if (path / CPB).is_file():
        raise SavedModelIOError(
            f"{path} holds a chunked {CPB} (a model over 2 GB): only saved_model.pb and "
            "saved_model.pbtxt are supported"
        )
    raise SavedModelIOError(f"{path} holds no {PB} or {PBTXT}: is it a SavedModel directory?")


def load(path: str | os.PathLike[str]) -> Model:
    """Read the SavedModel in directory `path`."""
    directory = Path(path)
    file, fmt = find_model_file(directory)
    try:
        data = file.read_bytes()
    except OSError as err:
        raise SavedModelIOError(f"cannot read {file}: {err.strerror or err}") from None
    proto = SavedModel()
    try:
        if fmt == "pb":
            proto.ParseFromString(data)
        else:
            from_text(data.decode("utf-8"), proto)
    except (DecodeError, ParseError, UnicodeDecodeError, RecursionError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        detail = detail.replace(RENAME_PREFIX, "")
        raise SchemaError(
            f"{file} is not a valid SavedModel ({detail}): the file is truncated or corrupt"
        ) from None
    if not proto.meta_graphs:
        raise SchemaError(f"{file} holds no meta graph: it is empty, corrupt, or not a SavedModel")
    return Model(proto=proto, path=directory, format=fmt, source=data)


def save(
    model: Model,
    output: str | os.PathLike[str] | None = None,
    *,
    in_place: bool = False,
    force: bool = False,
) -> Path:
    """Write `model` to the new directory `output`, or over its own files with `in_place`."""
    if in_place == (output is not None):
        raise SavedModelIOError("give either an output directory or in_place=True")
    data = model.serialize()
    edited = not model.unchanged(data)
    files = _model_files(model, data, edited=edited)
    if in_place:
        for name, data in files.items():
            _replace_file(model.path / name, data)
        stale = model.path / FINGERPRINT
        if edited and FINGERPRINT not in files and stale.exists():
            stale.unlink()  # TensorFlow could not fingerprint the edited model either
        return model.path
    assert output is not None
    out = Path(output)
    _check_output(model.path, out, force=force)
    with _staging_dir(out) as staging:
        _carry_over(model.path, staging, skip={PB, PBTXT, FINGERPRINT} if edited else {PB, PBTXT})
        for name, data in files.items():
            _write_file(staging / name, data)
        _fsync_dir(staging)
        _publish(staging, out)
    return out


def _model_files(model: Model, data: bytes, *, edited: bool) -> dict[str, bytes]:
    """The bytes of the model file (and fingerprint.pb, when edited) to write."""
    name = PB if model.format == "pb" else PBTXT
    if not edited:
        return {name: model.source}
    files = {name: to_text(model.proto).encode() if model.format == "pbtxt" else data}
    fingerprint = compute_fingerprint(model.proto, data, model.path)
    if fingerprint is not None:
        fingerprint.uuid = str(uuid.uuid4().int)  # TensorFlow writes a random 128-bit number in decimal
        files[FINGERPRINT] = fingerprint.SerializeToString(deterministic=True)
    return files


def _check_output(source: Path, out: Path, *, force: bool) -> None:
    src = source.resolve()
    dst = out.resolve()
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


@contextlib.contextmanager
def _staging_dir(out: Path) -> Iterator[Path]:
    """A temporary directory beside `out`, removed unless it was published."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.surgery-tmp-", dir=out.parent))
    except OSError as err:
        raise SavedModelIOError(f"cannot write into {out.parent}: {err.strerror or err}") from None
    try:
        yield staging
    except OSError as err:
        raise SavedModelIOError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, out: Path) -> None:
    """Rename the finished directory into place; an existing `out` (with --force) goes last."""
    if not out.exists():
        os.rename(staging, out)
    else:
        trash = out.parent / f".{out.name}.surgery-old-{uuid.uuid4().hex[:8]}"
        os.rename(out, trash)
        try:
            os.rename(staging, out)
        except OSError:
            os.rename(trash, out)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    _fsync_dir(out.parent)


def _carry_over(source: Path, dest: Path, *, skip: set[str]) -> None:
    """Copy every other file of the model (variables/, assets/, keras_metadata.pb, ...)."""
    root = source.resolve()
    for entry in sorted(source.iterdir()):
        if entry.name in skip:
            continue
        _copy_entry(entry, dest / entry.name, root)


def _copy_entry(src: Path, dst: Path, root: Path) -> None:
    if src.is_symlink():
        target = src.resolve()
        if root not in target.parents:
            raise SavedModelIOError(
                f"{src} links outside the model directory ({target}): refusing to copy it"
            )
        src = target
    if src.is_dir():
        dst.mkdir()
        for child in sorted(src.iterdir()):
            _copy_entry(child, dst / child.name, root)
    elif src.is_file():
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _replace_file(path: Path, data: bytes) -> None:
    """Atomically replace `path`: write a temporary file beside it, fsync, rename."""
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.surgery-tmp-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise SavedModelIOError(f"cannot write {path}: {err.strerror or err}") from None
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
