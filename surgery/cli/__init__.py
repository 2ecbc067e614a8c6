"""The `savedmodel-surgery` command line: a thin layer over the library.

Exit codes: 0 success; 1 `check` found an error (or, with --strict, a warning); 2 bad usage, bad
input or an I/O failure, reported in one line on stderr (a traceback only with --debug).
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import warnings
from typing import NoReturn

import click

from surgery.cli import apply, edit, read  # noqa: F401  (each registers its commands on `cli`)
from surgery.cli.app import PROG, Failure, cli, color, show_warning, style
from surgery.errors import SurgeryError, one_line

__all__ = ["cli", "main", "run"]

for _command in cli.commands.values():
    # Whole sentences in the command list: click would cut a long one mid-phrase.
    _command.short_help = _command.short_help or " ".join((_command.help or "").split("\n\n")[0].split())

COMPLETE = "_" + PROG.replace("-", "_").upper() + "_COMPLETE"
"""The variable click's shell completion runs the program with (and no arguments)."""

GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose", "--debug"})
"""The group's options, which users also type after the command (`show m -q`)."""


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
    """Entry point: run the CLI, turn errors into one line on stderr and an exit status."""
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
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
    except click.exceptions.Abort:
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


def run() -> NoReturn:
    """The `savedmodel-surgery` command: `main`, then exit without tearing the interpreter down.

    By then every file the command wrote is fsynced and closed, and its locks go with the
    process; the module teardown skipped here would add about 30 ms to every command.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # the reader of a pipe may have gone
            stream.flush()
    os._exit(status)
