"""The command's standard streams: a result lost on stdout fails the command, a note lost on
stderr never does.

What a command prints on stdout is what the caller asked for (`show`, a `--json` report): a
write that fails there (a full disk, stdout closed, a pipe whose reader left) raises
`OutputLost`, and the command decides its exit status from what it had done by then. What it
prints on stderr (`wrote OUT`, warnings, error lines) is a note: a write that fails there is
dropped, and the exit status stays the one the command earned.
"""

from __future__ import annotations

import errno
import io
from typing import TextIO


class OutputLost(Exception):
    """What the command printed on stdout could not be written: `reason` says why."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(reason)
        self.errno = code
        self.reason = reason


class _Stream:
    """A text stream standing in for sys.stdout or sys.stderr (None: the process has none)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        return getattr(self.stream, "errors", None) or "strict"

    @property
    def closed(self) -> bool:
        return False

    def isatty(self) -> bool:
        try:
            return self.stream is not None and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self.stream is None:
            raise io.UnsupportedOperation("the stream is closed")
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        """Nothing: the stream underneath is the process's, not this wrapper's."""

    @property
    def buffer(self) -> _Binary:
        """The binary stream underneath (click writes bytes there), with the same policy."""
        return _Binary(self)

    def write(self, text: str) -> int:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def put(self, data: bytes) -> None:
        """Write `data` to the binary stream underneath."""
        raise NotImplementedError


class _Binary:
    """The binary side of a `_Stream`."""

    def __init__(self, owner: _Stream) -> None:
        self.owner = owner

    def write(self, data: bytes) -> int:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a bytes-like object is required, not {type(data).__name__}")
        self.owner.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        self.owner.flush()


def _put(stream: TextIO, data: bytes) -> None:
    stream.flush()
    binary = getattr(stream, "buffer", None)
    if binary is None:
        stream.write(data.decode(getattr(stream, "encoding", None) or "utf-8", "replace"))
    else:
        binary.write(data)
        binary.flush()


def _lost(err: OSError | ValueError) -> OutputLost:
    if isinstance(err, OSError):
        return OutputLost(err.errno, err.strerror or str(err))
    return OutputLost(errno.EBADF, "stdout is closed")


class Output(_Stream):
    """stdout: a write or flush that fails raises `OutputLost`."""

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        if self.stream is None:
            raise OutputLost(errno.EBADF, "stdout is closed")
        try:
            return self.stream.write(text)
        except (OSError, ValueError) as err:
            raise _lost(err) from None

    def flush(self) -> None:
        if self.stream is None:
            return
        try:
            self.stream.flush()
        except (OSError, ValueError) as err:
            raise _lost(err) from None

    def put(self, data: bytes) -> None:
        if not data:
            return
        if self.stream is None:
            raise OutputLost(errno.EBADF, "stdout is closed")
        try:
            _put(self.stream, data)
        except (OSError, ValueError) as err:
            raise _lost(err) from None


class Notes(_Stream):
    """stderr: best effort; once a write fails, the rest is dropped."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self.failed = stream is None

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not self.failed and self.stream is not None:
            try:
                self.stream.write(text)
            except (OSError, ValueError):
                self.failed = True
        return len(text)

    def flush(self) -> None:
        if not self.failed and self.stream is not None:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self.failed = True

    def put(self, data: bytes) -> None:
        if not self.failed and self.stream is not None:
            try:
                _put(self.stream, data)
            except (OSError, ValueError):
                self.failed = True
