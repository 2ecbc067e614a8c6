"""The `savedmodel-surgery` command line: a thin layer over the library.

Exit codes: 0 success; 1 `check` found an error (or, with --strict, a warning), a batch a model
that failed, or a command that wrote its output could not print its result on stdout; 2 bad
usage, bad input or an I/O failure, reported in one line on stderr (a traceback only with
--debug); 130 and 143 interrupted by SIGINT and SIGTERM, with one line saying what was left;
141 stdout's reader went away (`| head`), as for a program SIGPIPE kills.

This module is light on purpose: `run` installs the interrupt handlers before anything heavy is
imported, so that a Ctrl-C in the first moments of a command ends it as cleanly as a later one.
The command line itself is `surgery.cli.command`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from surgery import interrupts

if TYPE_CHECKING:
    from surgery.cli.command import COMPLETE, GLOBAL_FLAGS, cli, hoist_global_flags

__all__ = ["COMPLETE", "GLOBAL_FLAGS", "cli", "hoist_global_flags", "main", "run"]

PROG = "savedmodel-surgery"


def __getattr__(name: str) -> Any:
    if name in ("COMPLETE", "GLOBAL_FLAGS", "cli", "hoist_global_flags"):
        from surgery.cli import command

        return getattr(command, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` (default: the process's arguments): its exit status."""
    from surgery.cli.command import main as run_command

    return run_command(argv)


def run() -> NoReturn:
    """The `savedmodel-surgery` command: `main`, then exit without tearing the interpreter down.

    SIGINT and SIGTERM raise an exception that unwinds the command (`surgery.interrupts`), so
    that what it was writing is removed or finished; SIGTERM would otherwise kill it outright.
    By the exit every file the command wrote is fsynced and closed, and its locks go with the
    process; the module teardown skipped here would add about 30 ms to every command.
    """
    previous = interrupts.install()
    try:
        _open_standard_descriptors()
        status = main()
    except BaseException as err:  # an interrupt before `main` took over: nothing was begun
        signum = interrupts.signal_of(err)
        if signum is None:
            raise
        interrupts.finish()
        with contextlib.suppress(Exception):
            sys.stderr.write(f"{PROG}: interrupted{_signal_name(signum)}: nothing was changed\n")
        status = 128 + signum
    interrupts.finish()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, or a pipe whose reader left
            stream.flush()
    interrupts.restore(previous)
    os._exit(status)


def _signal_name(signum: int) -> str:
    return "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"


def _open_standard_descriptors() -> None:
    """Open /dev/null on a standard descriptor the command was started without (`>&-`).

    Otherwise the next file the command opens takes that number, and a stray write to it (a
    library's, a child process's) would land in that file. Python has set the stream itself to
    None: a command that prints on a closed stdout fails (`surgery.cli.streams`).
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
