"""`load` and `save`: reading a SavedModel directory, and writing it back losslessly and atomically.

A model is read from `saved_model.pb` (or `saved_model.pbtxt`) and written back in the same
format. An unedited model is written byte for byte as it was read, `fingerprint.pb` included;
an edited one gets the deterministic serialization TensorFlow itself writes and the fingerprint
TensorFlow would compute for it. `save` writes a new directory (`surgery.storage.staging`) or
the model's own files (`surgery.storage.journal`), alone or within a commit group
(`surgery.storage.group`), holding the model's lock (`surgery.storage.locks`) throughout;
`load` first finishes or undoes what a killed run left (`surgery.storage.recovery`).
"""

from __future__ import annotations

import functools
import os
import stat
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from google.protobuf.message import DecodeError

from surgery.errors import EditError, SavedModelIOError, SchemaError, SurgeryWarning
from surgery.fingerprint import compute_fingerprint
from surgery.lazy import END, Holes, Release, Span, enabled, shrink
from surgery.model import CPB, FINGERPRINT, PB, PBTXT, SAVED_MODEL_DESCRIPTOR, Format, Model, ModelLike, parse
from surgery.schema import SavedModel, text_format_error
from surgery.storage.files import Background, Content, why
from surgery.storage.group import CommitGroup
from surgery.storage.journal import refuse_changed_on_disk, save_in_place
from surgery.storage.locks import model_lock
from surgery.storage.recovery import recover
from surgery.storage.staging import check_output, make_parents, remove_made, save_copy
from surgery.text_holes import in_file, shrink_text
from surgery.wire import WireError
from surgery_proto import RENAME_PREFIX

P = ParamSpec("P")
R = TypeVar("R")


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
        raise SavedModelIOError(f"cannot read the directory {path}: {why(err)}") from None
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


def as_model(model: Model | str | os.PathLike[str]) -> Model:
    """`model` itself, or the model read from that directory; a one-line `EditError` for anything else."""
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load(model)
    raise EditError(
        f"expected a Model or the path of a SavedModel directory, not {type(model).__name__}: "
        "pass surgery.load(path) or the path itself"
    )


def accepts_path(function: Callable[Concatenate[Model, P], R]) -> Callable[Concatenate[ModelLike, P], R]:
    """`function` taking, where its first argument is a `Model`, the path of one as well."""

    @functools.wraps(function)
    def wrapper(model: ModelLike, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return function(as_model(model), *args, **kwargs)

    return wrapper


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
            shrunk = None
            if lazy and enabled():
                shrunk = (
                    shrink(f.fileno(), info.st_size, SAVED_MODEL_DESCRIPTOR)
                    if fmt == "pb"
                    else shrink_text(f.fileno(), info.st_size)
                )
            if shrunk is None:
                data = f.read()
            else:
                data, holes = shrunk
    except OSError as err:
        raise SavedModelIOError(f"cannot read {file}: {why(err)}") from None
    try:
        proto = parse(data, fmt)
    # (an except clause is evaluated only when an exception reaches it: text format stays unloaded)
    except (DecodeError, text_format_error(), UnicodeDecodeError, RecursionError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        if holes is not None and fmt == "pbtxt":  # where protobuf sees the problem in the file
            detail = in_file(detail, data, holes)
            holes.close()
        detail = detail.replace(RENAME_PREFIX, "")
        raise SchemaError(
            f"{file} is not a valid SavedModel ({detail}): the file is truncated or corrupt"
        ) from None
    if holes is not None and fmt == "pbtxt" and not _holes_fit(proto, holes):
        holes.close()
        return load(path, lazy=False)
    if not proto.meta_graphs:
        raise SchemaError(f"{file} holds no meta graph: it is empty, corrupt, or not a SavedModel")
    stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
    return Model(proto=proto, path=directory, format=fmt, source=data, stamp=stamp, holes=holes)


def _holes_fit(proto: SavedModel, holes: Holes) -> bool:
    """Whether every literal a text model set aside is the value of a bulk field (not, say, inside
    an `Any`'s payload): the serialization of the model can then be expanded from them."""
    try:
        holes.expand(proto.SerializeToString(deterministic=True), SAVED_MODEL_DESCRIPTOR)
    except WireError:
        return False
    return True


def save(
    model: Model,
    output: str | os.PathLike[str] | None = None,
    *,
    in_place: bool = False,
    force: bool = False,
    sync: bool = True,
    group: CommitGroup | None = None,
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
            False skips that, and the write is atomic under a kill only (see docs/storage.md).
        group: a commit group (`surgery.storage.commit_group()`) that publishes this write
            with its others when it commits, instead of now; its `failures` then holds the
            error this call would raise.

    Returns:
        The directory written (or, in a group, to be written).

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
    return save_edit(model, output, in_place=in_place, force=force, sync=sync, group=group)[0]


def save_edit(
    model: Model,
    output: str | os.PathLike[str] | None = None,
    *,
    in_place: bool = False,
    force: bool = False,
    sync: bool = True,
    group: CommitGroup | None = None,
) -> tuple[Path, bool]:
    """`save`, and whether `model` differs from what was read (False: in place, nothing was written).

    What the edit path asks, so that an edit is serialized and compared with its source once.
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
        check_output(model.path, out, force=force)
    data = model.serialize_shrunk()
    edited = not model.unchanged(data)
    if (
        out is None
        and edited
        and model.holes is not None
        and model.source_format == model.format == "pb"
        and hasattr(os, "posix_fadvise")
    ):
        # The source file is replaced: its pages go as the copy and the hash pass them.
        model.holes.release = Release(model.holes.fd, ("copy", "hash"))
    if out is None:
        _refuse_what_is_not_ours(model.path, (model.file_name, FINGERPRINT))
    try:
        files = _model_files(model, data, edited=edited)
        if out is None:
            if group is not None:
                group.refuse_staged(model.path)  # its lock would say "another process"
            with model_lock(model.path, exclusive=True):
                if not edited:  # the files already hold these bytes
                    refuse_changed_on_disk(model.stamp, model.path / model.file_name)
                elif group is not None:
                    group.stage_edit(model, files, sync=sync)
                else:
                    save_in_place(model, files, sync=sync)
            return model.path, edited
        made = make_parents(out, sync=sync)
        try:
            with model_lock(model.path, exclusive=False):
                if group is not None:
                    group.stage_copy(model, files, out, edited=edited, force=force, sync=sync)
                else:
                    save_copy(model, files, out, edited=edited, force=force, sync=sync)
        except BaseException:
            remove_made(made)
            raise
        return out, edited
    except OSError as err:  # anything not already reported with its context
        where = model.path if in_place else output
        raise SavedModelIOError(f"cannot write {where}: {why(err)}; nothing was changed") from None
    finally:
        if model.holes is not None and model.holes.release is not None:
            model.holes.release.close()
            model.holes.release = None


def _refuse_what_is_not_ours(directory: Path, names: tuple[str, ...]) -> None:
    """Refuse an in-place edit that would replace one of `names` where it is not a regular file:
    a directory (with whatever it holds), a device, or a symbolic link (the link would become a
    file, its target left stale). Nothing is written."""
    for name in names:
        path = directory / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as err:
            raise SavedModelIOError(f"cannot read {path}: {why(err)}; nothing was changed") from None
        if stat.S_ISLNK(mode):
            what = "a symbolic link"
            fix = "edit the model it points to, or write a copy with -o OUT"
        elif stat.S_ISDIR(mode):
            what, fix = "a directory", "move it out of the model directory"
        elif not stat.S_ISREG(mode):
            what, fix = "not a regular file", "move it out of the model directory"
        else:
            continue
        raise SavedModelIOError(
            f"{path} is {what}, which an in-place edit would replace: {fix}; nothing was changed"
        )


def _model_files(model: Model, data: bytes, *, edited: bool) -> dict[str, Content]:
    """The contents of the model file (and fingerprint.pb, when edited) to write.

    A large model's fingerprint streams over the file's big spans (once, for the checksum and
    the graph hash together): it is computed on a thread while the model file is copied and
    synced, which wait on the kernel and the disk.
    """
    name = model.file_name
    converted = model.read_as is not None  # rendered anew, in its format, by `convert`
    if not edited and not converted:
        if model.holes is not None:
            return {name: [Span(0, model.holes.size)]}
        return {name: model.source}
    files: dict[str, Content] = {name: model.rendering(data)}
    if not edited:  # a conversion whose fingerprint.pb still matches: carried over as it is
        return files

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
        files[FINGERPRINT] = Background(fingerprint_file)
    else:
        fingerprint = fingerprint_file()
        if fingerprint is not None:
            files[FINGERPRINT] = fingerprint
    return files
