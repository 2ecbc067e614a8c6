"""SIGINT and SIGTERM as an exception that unwinds the program, raised once, never mid-commit.

Python turns SIGINT into KeyboardInterrupt, which unwinds the program so that its clean-up runs
(the storage layer removes what a write in progress made), while SIGTERM kills it outright, with
no clean-up at all. The command line (`surgery.cli.run`) installs `handle` for both: the first
signal raises `Interrupted` where the program is; later ones are ignored while it unwinds; and a
step that must not stop half-way once begun (a batch publishing what it staged) defers it to the
step's end (`deferred`). The library installs no handler in its caller's process: there, Ctrl-C
is Python's KeyboardInterrupt, which the same clean-up handles, and `deferred` does nothing.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | None
"""What `signal.signal` takes and returns: a function, SIG_DFL, SIG_IGN or None."""

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised where the program was so that it unwinds: `signum` says which.

    A BaseException, as KeyboardInterrupt is, so that `except Exception` lets it through.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return signal.Signals(self.signum).name


class _State:
    """This process's interrupt, as `handle` and `deferred` share it."""

    def __init__(self) -> None:
        self.raised: int | None = None
        """The signal raised: the program is unwinding, and later signals are ignored."""
        self.pending: int | None = None
        """A signal that arrived during a deferred step: raised at its end."""
        self.depth = 0
        self.done = False
        """The command has finished: what is left is exiting, and signals are ignored."""


_state = _State()


def handle(signum: int, frame: FrameType | None) -> None:
    """The handler the command line installs: raise `Interrupted` once, or defer it."""
    if _state.done or _state.raised is not None:
        return
    if _state.depth:
        _state.pending = _state.pending or signum
        return
    _state.raised = signum
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A step that must finish once begun: an interrupt arriving during it is raised at its end.

    Only where `handle` is installed; without it (the Python API), Ctrl-C lands where it lands.
    """
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        signum = _state.pending
        if not _state.depth and signum is not None and _state.raised is None and not _state.done:
            _state.raised, _state.pending = signum, None
            raise Interrupted(signum)


def install() -> dict[int, Handler]:
    """Make SIGINT and SIGTERM raise `Interrupted` in this process; the handlers replaced.

    A signal the process was started ignoring (a background job of a shell without job control
    ignores SIGINT) stays ignored.
    """
    reset()
    previous: dict[int, Handler] = {}
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handle)
    return previous


def restore(previous: dict[int, Handler]) -> None:
    """Put back the handlers `install` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def reset() -> None:
    """Forget any interrupt: a new command starts."""
    global _state
    _state = _State()


def finish() -> None:
    """The command is done: signals from now on are ignored (exiting is all that is left)."""
    _state.done = True


def signal_of(err: BaseException) -> int | None:
    """The signal `err` stands for: `Interrupted`'s, SIGINT for Python's KeyboardInterrupt, or None.

    Followed down the chain of causes: Python wraps what some places raise (a class's
    `__set_name__`, as a dataclass is made during an import, wraps it in a RuntimeError).
    """
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, Interrupted):
            return cause.signum
        if isinstance(cause, KeyboardInterrupt):
            return signal.SIGINT
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None
