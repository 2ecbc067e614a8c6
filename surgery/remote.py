"""Models in remote storage: fsspec URLs (`gs://`, `s3://`, `memory://`, `http://`, ...) as MODEL and OUT.

Local paths never come here: they go through `surgery.storage`, with its atomic renames and locks.
A URL is handled around that code, through a local temporary directory:

- **Reading**: every object under the URL (the whole model directory: `saved_model.pb`,
  `variables/`, `assets/`, ...) is fetched into a temporary directory, and the model is read
  from there. Over HTTP the directory is listed from the server's index page.
- **Writing a new OUT**: the result is built locally as for a local OUT, then uploaded under a
  temporary prefix beside it (`OUT.surgery-tmp-XXXX/`); only when that upload is complete are
  the final keys written, by copies within the store: every other file first, then
  `saved_model.pb` (the commit point: a reader never finds a new `saved_model.pb` without the
  files it needs), then `fingerprint.pb` (the old one is deleted before `saved_model.pb` is
  replaced, so a stale fingerprint never sits beside a new model: a missing one is legal).
  Keys an earlier OUT had that the new one does not are deleted after the commit; the temporary
  prefix last. An OUT that exists is refused, unless `force`, before anything is done.
- **In place**: the model is fetched, edited in place locally, and the files that changed
  (`saved_model.pb`, `fingerprint.pb`) are put back the same way.

Object stores rename nothing atomically, so this is as far as all-or-nothing goes there: a
failure before the commit leaves the final `saved_model.pb` as it was (or absent), with an
error line; a reader racing a write may briefly see new variables beside the old
`saved_model.pb`. There is no lock: two writers to one URL each leave a complete model, the
last one's. HTTP is read-only.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from surgery.errors import SavedModelIOError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
PB, PBTXT, FINGERPRINT = "saved_model.pb", "saved_model.pbtxt", "fingerprint.pb"
_EXTRAS = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3"}
TEMP_MARK = ".surgery-tmp-"


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a URL (`scheme://...`) rather than a local path; `file://` counts as local."""
    text = os.fspath(path)
    return isinstance(text, str) and bool(_URL.match(text)) and not text.startswith("file://")


def local_path(path: str) -> str:
    """`file:///a/b` as `/a/b`; anything else unchanged."""
    return path.removeprefix("file://") if path.startswith("file://") else path


def url_name(url: str) -> str:
    """The last component of a URL's path (`gs://bucket/models/m/` -> `m`)."""
    return PurePosixPath(url.split("://", 1)[1].rstrip("/")).name or url


def _protocol(url: str) -> str:
    return url.split("://", 1)[0].lower()


def _filesystem(url: str) -> tuple[Any, str]:
    """fsspec's file system for `url` and the path within it; one-line errors for what is missing."""
    try:
        import fsspec
    except ImportError:
        raise SavedModelIOError(
            f"{url}: URLs need fsspec: pip install 'savedmodel-surgery[remote]'"
        ) from None
    protocol = _protocol(url)
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise SavedModelIOError(
            f"{url}: unknown protocol {protocol}:// (fsspec knows file systems such as gs://, s3://, "
            "memory://, http://)"
        ) from None
    except ImportError as err:
        extra = _EXTRAS.get(protocol, "remote")
        raise SavedModelIOError(
            f"{url}: {protocol}:// needs a package that is not installed ({_first_line(err)}): "
            f"pip install 'savedmodel-surgery[{extra}]'"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url.rstrip("/"))
    except Exception as err:
        raise SavedModelIOError(f"{url}: cannot open the file system: {_first_line(err)}") from None
    return fs, str(path).rstrip("/")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _why(err: BaseException) -> str:
    """An fsspec back end's exception in a few words."""
    if isinstance(err, FileNotFoundError):
        return "not found"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return _first_line(err)


def _files(fs: Any, root: str) -> dict[str, str]:
    """Every file under `root`: relative POSIX path -> the file system's path. Nothing outside `root`."""
    found = fs.find(root)
    files: dict[str, str] = {}
    base = fs._strip_protocol(root).rstrip("/") + "/"
    for full in found:
        stripped = fs._strip_protocol(full)
        if not stripped.startswith(base):
            continue  # an index page's link elsewhere (a parent, another host)
        rel = stripped[len(base) :]
        parts = PurePosixPath(rel).parts
        if not rel or rel.endswith("/") or any(p in ("", ".", "..") for p in parts):
            continue
        files[rel] = full
    return files


@contextlib.contextmanager
def fetched(url: str) -> Iterator[Path]:
    """The model directory at `url`, fetched whole into a temporary directory (removed afterwards)."""
    fs, root = _filesystem(url)
    with tempfile.TemporaryDirectory(prefix="surgery-fetch-") as tmp:
        local = Path(tmp) / (url_name(url) or "model")
        local.mkdir()
        try:
            files = _files(fs, root)
            if not files:
                hint = (
                    " (over HTTP the server must list the directory in an index page)"
                    if _protocol(url).startswith("http")
                    else ""
                )
                raise SavedModelIOError(f"{url}: no such model: nothing is stored under that URL{hint}")
            if PB not in files and PBTXT not in files:
                raise SavedModelIOError(f"{url} holds no {PB} or {PBTXT}: is it a SavedModel directory?")
            for rel, remote in files.items():
                target = local / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(remote, str(target))
        except SavedModelIOError:
            raise
        except Exception as err:
            raise SavedModelIOError(f"cannot read {url}: {_why(err)}") from None
        yield local


class _Target:
    """A model directory at a URL that files are published to (see the module docstring)."""

    def __init__(self, url: str) -> None:
        if _protocol(url) in ("http", "https"):
            raise SavedModelIOError(
                f"{url}: http(s):// is read-only here: write to a local path or an object store (gs://, s3://)"
            )
        self.url = url
        self.fs, self.root = _filesystem(url)

    def exists(self) -> bool:
        try:
            return bool(self.fs.exists(self.root))
        except Exception as err:
            raise SavedModelIOError(f"cannot read {self.url}: {_why(err)}") from None

    def publish(self, files: dict[str, Path], *, remove_stale: bool) -> None:
        """Upload `files` (relative POSIX name -> local file): temporary prefix, then the final keys.

        `saved_model.pb`/`.pbtxt` is copied after every other file, and the old `fingerprint.pb`
        deleted just before it; the new `fingerprint.pb` follows it. Then, with `remove_stale`,
        keys the URL held that the new model does not are deleted; the temporary prefix last.
        """
        fs, root = self.fs, self.root
        staging = f"{root}{TEMP_MARK}{os.urandom(4).hex()}"
        try:
            for rel, path in files.items():
                fs.put_file(str(path), f"{staging}/{rel}")
        except Exception as err:
            _remove_quietly(fs, staging)
            raise SavedModelIOError(
                f"cannot write {self.url}: upload failed ({_why(err)}); nothing was written"
            ) from None
        except BaseException:  # an interrupt: the temporary prefix goes too
            _remove_quietly(fs, staging)
            raise
        model_files = [n for n in (PB, PBTXT) if n in files]
        first = [rel for rel in files if rel not in (PB, PBTXT, FINGERPRINT)]
        committed = False
        try:
            old = set(_files(fs, root)) if remove_stale and fs.exists(root) else set()
            for rel in first:
                fs.copy(f"{staging}/{rel}", f"{root}/{rel}")
            if model_files:
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(f"{root}/{FINGERPRINT}")
            for rel in model_files:
                fs.copy(f"{staging}/{rel}", f"{root}/{rel}")
            committed = True
            if FINGERPRINT in files:
                fs.copy(f"{staging}/{FINGERPRINT}", f"{root}/{FINGERPRINT}")
            for rel in sorted(old - set(files)):
                fs.rm_file(f"{root}/{rel}")
        except Exception as err:
            state = (
                "the new saved_model.pb is in place, but fingerprint.pb or an old file may be missing or left"
                if committed
                else "saved_model.pb was not replaced"
            )
            raise SavedModelIOError(f"cannot write {self.url}: {_why(err)}; {state}") from None
        finally:
            _remove_quietly(fs, staging)


def _remove_quietly(fs: Any, path: str) -> None:
    with contextlib.suppress(Exception):
        if fs.exists(path):
            fs.rm(path, recursive=True)


def refuse_existing(url: str, *, force: bool = False) -> None:
    """Refuse an OUT URL that cannot be written (http, unknown protocol) or exists without `force`."""
    if _Target(url).exists() and not force:
        raise SavedModelIOError(
            f"{url} already exists: choose a new location or replace it (--force, force=True)"
        )


@contextlib.contextmanager
def remote_output(url: str, *, force: bool = False) -> Iterator[Path]:
    """A local path (not yet created) to build OUT in; uploaded to `url` when the block succeeds.

    Checks the URL and refuses an existing OUT without `force` before the block runs.
    """
    refuse_existing(url, force=force)
    target = _Target(url)
    with tempfile.TemporaryDirectory(prefix="surgery-out-") as tmp:
        local = Path(tmp) / (url_name(url) or "model")
        yield local
        files = {p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*")) if p.is_file()}
        target.publish(files, remove_stale=True)


@contextlib.contextmanager
def remote_in_place(url: str) -> Iterator[Path]:
    """The model at `url`, fetched: edit it in place locally; the files that changed go back."""
    target = _Target(url)
    with fetched(url) as local:
        before = _snapshot(local)
        yield local
        after = _snapshot(local)
        changed = {rel: local / rel for rel, data in after.items() if before.get(rel) != data}
        if changed:
            target.publish(changed, remove_stale=False)


def _snapshot(directory: Path) -> dict[str, bytes]:
    """The model files an in-place edit may change, by name."""
    return {n: (directory / n).read_bytes() for n in (PB, PBTXT, FINGERPRINT) if (directory / n).is_file()}
