"""The command line as a function: `main(argv)` runs one command and returns its exit status.

Every error becomes one line on stderr (a traceback only with --debug) and a status (see
`surgery.cli`); an interrupt ends the command with one line saying what it left; a result that
cannot be printed on stdout fails the command, a note that cannot be printed on stderr never does
(`surgery.cli.streams`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import traceback
import warnings
from pathlib import Path

import click

from surgery import interrupts
from surgery.cli import app, apply, edit, read  # noqa: F401  (each registers its commands on `cli`)
from surgery.cli.app import PROG, Failure, cli, color, show_warning, style
from surgery.cli.streams import Notes, Output, OutputLost
from surgery.errors import SurgeryError, one_line
from surgery.remote import is_url

__all__ = ["COMPLETE", "GLOBAL_FLAGS", "cli", "hoist_global_flags", "main"]

for _command in cli.commands.values():
    # Whole sentences in the command list: click would cut a long one mid-phrase.
    _command.short_help = _command.short_help or " ".join((_command.help or "").split("\n\n")[0].split())

COMPLETE = "_" + PROG.replace("-", "_").upper() + "_COMPLETE"
"""The variable click's shell completion runs the program with (and no arguments)."""

GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose", "--debug"})
"""The group's options, which users also type after the command (`show m -q`)."""

SIGPIPE_STATUS = 128 + 13
"""The status a shell shows for a program killed by SIGPIPE, as `yes | head -1` leaves `yes`."""


def hoist_global_flags(args: list[str]) -> list[str]:
    """`args` with the group's flags that follow the command moved before it (up to a `--`)."""
    first = next((i for i, arg in enumerate(args) if not arg.startswith("-")), len(args))
    head, rest = args[:first], args[first:]
    if "--" in rest:
        cut = rest.index("--")
        rest, tail = rest[:cut], rest[cut:]
    else:
        tail = []
    moved = [arg for arg in rest if arg in GLOBAL_FLAGS]
    return [*head, *moved, *(arg for arg in rest if arg not in GLOBAL_FLAGS), *tail]


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` (default: the process's arguments): its exit status."""
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    interrupts.reset()
    app.PROGRESS = app.Progress()
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Output(stdout), Notes(stderr)
    try:
        status = _main(args)
        interrupts.finish()
        return status
    except BaseException as err:
        signum = interrupts.signal_of(err)
        if signum is None:
            raise
        interrupts.finish()  # a second Ctrl-C while tidying up is ignored
        return _interrupted(signum)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _interrupted(signum: int) -> int:
    """Tidy up after an interrupt, say in one line what the command left, and its exit status."""
    line = app.PROGRESS.interrupted or _what_was_left()
    name = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
    newline = "\n" if signum == signal.SIGINT and sys.stderr.isatty() else ""  # after the terminal's ^C
    click.echo(f"{newline}{PROG}: interrupted{name}{one_line(line)}", err=True)
    return 128 + signum


def _what_was_left() -> str:
    """The end of the interrupt's line: what the command's writes left, once tidied up."""
    from surgery.storage.recovery import abandon

    done: list[str] = []
    unknown: list[str] = []
    for write in app.PROGRESS.writes:
        if is_url(write.target):
            unknown.append(write.target)
            continue
        with contextlib.suppress(Exception):  # best effort: the line is said all the same
            if write.output is None:
                abandon(model=Path(write.model))
            else:
                abandon(output=Path(write.output))
        if write.done():
            done.append(write.target)
    if unknown:
        return f": {', '.join(unknown)} may be partly written: rerun the command"
    if done:
        return f" after writing {', '.join(done)}"
    return ": nothing was changed"


def _output_lost(lost: OutputLost) -> int:
    """The status of a command whose result could not be printed on stdout."""
    if lost.errno == errno.EPIPE:
        return SIGPIPE_STATUS  # the reader went away, as `head` does: nothing to say
    written = app.PROGRESS.written
    if written:
        click.echo(
            f"{PROG}: {style('error', 'error')}: wrote {one_line(', '.join(written))}, but cannot "
            f"print the result on stdout: {one_line(lost.reason)}",
            err=True,
            color=color(),
        )
        return 1
    click.echo(
        f"{PROG}: {style('error', 'error')}: cannot print on stdout: {one_line(lost.reason)}",
        err=True,
        color=color(),
    )
    return 2


def _main(args: list[str]) -> int:
    debug = "--debug" in args
    if not args and not os.environ.get(COMPLETE):
        with click.Context(cli, info_name=PROG) as ctx:
            click.echo(ctx.get_help(), err=True)
        return 2
    warnings.showwarning = show_warning
    try:
        cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except Failure as failure:
        return failure.status
    except OutputLost as lost:
        return _output_lost(lost)
    except click.exceptions.Abort as err:
        if isinstance(err.__cause__, KeyboardInterrupt):
            raise err.__cause__ from None  # Python's own Ctrl-C, which click turns into Abort
        click.echo(f"{PROG}: aborted", err=True)
        return 2
    except click.ClickException as err:
        if debug:
            traceback.print_exc()
        click.echo(
            f"{PROG}: {style('error', 'error')}: {one_line(err.format_message())} (see --help)",
            err=True,
            color=color(),
        )
        return 2
    except SurgeryError as err:
        if debug:
            traceback.print_exc()
        click.echo(f"{PROG}: {style('error', 'error')}: {one_line(str(err))}", err=True, color=color())
        return 2
    except RecursionError:  # a structure nested deeper than any real one, past what the parsers check
        if debug:
            traceback.print_exc()
        click.echo(f"{PROG}: error: the input is nested too deeply to process: it is corrupt", err=True)
        return 2
    except MemoryError:
        click.echo(f"{PROG}: error: out of memory: the input is too large for this machine", err=True)
        return 2
    except OSError as err:  # an I/O failure outside the paths that report their own
        if debug:
            traceback.print_exc()
        where = f" ({err.filename})" if err.filename else ""
        click.echo(f"{PROG}: error: {one_line(err.strerror or str(err))}{one_line(where)}", err=True)
        return 2
    except Exception as err:  # a bug: still one line, the traceback behind --debug
        if debug:
            traceback.print_exc()
        click.echo(
            f"{PROG}: internal error: {type(err).__name__}: {one_line(str(err))} "
            "(rerun with --debug for details)",
            err=True,
        )
        return 2
    return 0
