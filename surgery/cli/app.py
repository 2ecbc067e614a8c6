"""The command line's group, its global options and what every command prints with.

The group (`cli`) with --quiet, --verbose and --debug; notes on stderr (`say`, `detail`); colours
(`style`, NO_COLOR); reading MODEL (a path or a URL fetched for the command); the options every
edit command takes; and the lines a diff is printed as.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from surgery import __version__
from surgery.errors import SurgeryWarning, one_line
from surgery.model import Model
from surgery.remote import (
    fetched,
    is_url,
    local_path,
)
from surgery.schema import TENSORFLOW_VERSION
from surgery.storage import load

if TYPE_CHECKING:
    from surgery.reports import Change, GraphChange

PROG = "savedmodel-surgery"


def identity(path: str) -> tuple[int, int, int] | None:
    """What tells a file or directory from the one a write puts in its place (None: absent)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns


@dataclass
class Write:
    """A write the running command has begun: in place (`output` None) or to `output`."""

    model: str
    output: str | None
    before: tuple[int, int, int] | None
    """The identity of what the write replaces (the model file in place; OUT, if it exists)."""

    @property
    def target(self) -> str:
        return self.output if self.output is not None else self.model

    def watched(self) -> str:
        """The path whose identity changes when the write is done."""
        if self.output is not None:
            return self.output
        pb = os.path.join(self.model, "saved_model.pb")
        return pb if os.path.lexists(pb) else os.path.join(self.model, "saved_model.pbtxt")

    def done(self) -> bool:
        """Whether the write was put in place (what is there is no longer what was)."""
        now = identity(self.watched())
        return now is not None and now != self.before


class Progress:
    """What the running command has written and is writing: the line it ends with when it is
    interrupted, or when the result it printed is lost, says it."""

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.written: list[str] = []
        self.interrupted: str | None = None
        """The line a command that tells its own interruption (a batch) ends with."""


PROGRESS = Progress()


def writing(model: str, output: str | None) -> None:
    """Note a write about to begin: of `model` in place (`output` None), or to `output`."""
    write = Write(model, output, None)
    if not is_url(write.target):
        write.before = identity(write.watched())
    PROGRESS.writes.append(write)


def wrote(what: str) -> None:
    """Note what the command has written (an output, a model, `N model(s)`)."""
    PROGRESS.written.append(what)


class Failure(Exception):
    """A failure already reported on stderr; carries the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# Colours: click.echo drops them when the stream is not a terminal, and NO_COLOR turns them off.
STYLES: dict[str, dict[str, Any]] = {
    "error": {"fg": "red", "bold": True},
    "warning": {"fg": "yellow", "bold": True},
    "ok": {"fg": "green", "bold": True},
    "fail": {"fg": "red", "bold": True},
    "heading": {"bold": True},
    "signature": {"fg": "cyan", "bold": True},
    "title": {"bold": True},
    "loader": {"fg": "blue"},
    "missing": {"fg": "red", "bold": True},
    "link": {"fg": "magenta"},
    "added": {"fg": "green"},
    "removed": {"fg": "red"},
    "changed": {"fg": "yellow"},
}


def style(role: str, text: str) -> str:
    """`text` marked up for `role` (see STYLES); plain when the role has no style."""
    return click.style(text, **STYLES[role]) if role in STYLES else text


def no_color() -> bool:
    """The NO_COLOR convention (no-color.org): set and not empty turns colours off."""
    return bool(os.environ.get("NO_COLOR"))


def global_options() -> dict[str, Any]:
    """The group-level options (--quiet, --verbose, --debug) of the running command."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return {}
    options: dict[str, Any] = ctx.find_root().obj or {}
    return options


def say(message: str) -> None:
    """A note on stderr about what was done ("wrote OUT"); --quiet silences it."""
    if not global_options().get("quiet"):
        click.echo(message, err=True)


def detail(message: str) -> None:
    """A note on stderr shown only with --verbose."""
    if global_options().get("verbose"):
        click.echo(f"{PROG}: {message}", err=True)


def model_dir(path: str) -> str:
    """A local directory holding MODEL: the path itself, or a URL's model fetched for this command.

    The fetched copy is a temporary directory removed when the command ends.
    """
    if not is_url(path):
        return local_path(path)
    ctx = click.get_current_context()
    local = ctx.with_resource(fetched(path))
    detail(f"fetched {path} into {local}")
    return str(local)


def load_model(path: str) -> Model:
    """`load` (a URL through a fetched copy), with what was read reported under --verbose."""
    model = load(model_dir(path))
    metas = len(model.proto.meta_graphs)
    name = model.file_name
    where = f"{path.rstrip('/')}/{name}" if is_url(path) else str(Path(path) / name)
    size = model.holes.size if model.holes else len(model.source)
    detail(f"read {where} ({size:,} bytes, {metas} meta graph(s))")
    return model


def files_line(directory: Path) -> str:
    """`OUT: saved_model.pb (27,220 bytes), fingerprint.pb (58 bytes)`: the model files written."""
    names = ("saved_model.pb", "saved_model.pbtxt", "fingerprint.pb")
    files = [f"{n} ({(directory / n).stat().st_size:,} bytes)" for n in names if (directory / n).is_file()]
    return f"{directory}: {', '.join(files)}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name=PROG, message=f"%(prog)s %(version)s (TensorFlow {TENSORFLOW_VERSION} schema)"
)
@click.option(
    "-q", "--quiet", is_flag=True, help="No notes on stderr (such as 'wrote OUT'); errors still show."
)
@click.option("-v", "--verbose", is_flag=True, help="More notes on stderr: what was read and written.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool, debug: bool) -> None:
    """Edit TensorFlow SavedModels on disk with protobuf alone: no TensorFlow needed.

    Every edit writes a new directory (-o OUT) or, with --in-place, replaces the model's files
    atomically. The input is never modified otherwise. --dry-run on an edit prints the diff it
    would make and writes nothing. MODEL and OUT may be fsspec URLs (gs://, s3://, http:// to
    read; pip install 'savedmodel-surgery[remote]'). Colours show on a terminal only (NO_COLOR
    turns them off). Shell completion: see the README (eval "$(_SAVEDMODEL_SURGERY_COMPLETE=bash_source
    savedmodel-surgery)").

    \b
    Example:
      savedmodel-surgery show ./my_model
      savedmodel-surgery --quiet rename-signature ./my_model serving_default predict -o ./renamed
    """
    if quiet and verbose:
        raise click.UsageError("give --quiet or --verbose, not both")
    if no_color():
        ctx.color = False
    ctx.obj = {"debug": debug, "quiet": quiet, "verbose": verbose}


NO_SYNC_OPTION = click.option(
    "--no-sync",
    is_flag=True,
    help=(
        "Skip fsync (as cp and TensorFlow do): faster on slow disks; a killed run still leaves "
        "the old or the new model, but a power cut may leave the output incomplete."
    ),
)


def edit_options(func: Callable[..., Any], *, tag_set: bool = True) -> Callable[..., Any]:
    """The target and write options every edit command takes (`--tag-set` where it applies)."""
    options = [
        click.option(
            "-o", "--output", type=click.Path(path_type=str), help="Write the result to this new directory."
        ),
        click.option("--in-place", is_flag=True, help="Replace the model's own files atomically."),
        click.option("--force", is_flag=True, help="Replace OUTPUT if it exists."),
        NO_SYNC_OPTION,
        *([TAG_SET_OPTION] if tag_set else []),
        *DRY_RUN_OPTIONS,
    ]
    for option in reversed(options):
        func = option(func)
    return func


TAG_SET_OPTION = click.option(
    "--tag-set", help="Only the meta graph with exactly these tags (comma-separated)."
)

DRY_RUN_OPTIONS = [
    click.option(
        "--dry-run",
        is_flag=True,
        help="Edit in memory and print the diff it would make; write nothing (-o/--in-place optional).",
    ),
    click.option(
        "--json", "as_json", is_flag=True, help="With --dry-run: the diff as JSON (as diff --json)."
    ),
]


def change_line(change: Change) -> str:
    """`[serve] 'masked' output-renamed: alpha -> zeta`, the kind coloured."""
    where = f"[{','.join(change.tags)}]" + (f" {change.signature!r}" if change.signature else "")
    return f"{where} {style(_change_role(change.kind), change.kind)}: {change.detail}"


def echo_changes(changes: list[Change]) -> None:
    for change in changes:
        click.echo(change_line(change))
    if not changes:
        click.echo("no signature-level differences")


# Graph-level changes in text: at most this many lines for one scope of one meta graph (a
# function, the graph, the object graph) and in all; --json lists every change.
_GRAPH_LINES_PER_SCOPE = 8
_GRAPH_LINES = 40


def graph_change_line(change: GraphChange) -> str:
    """`[serve] function:f node-added: row_cast: Cast(row)`, the kind coloured."""
    what = change.detail if change.detail == change.name or change.kind.endswith("-renamed") else None
    what = what or f"{change.name}: {change.detail}"
    kind = style(_change_role(change.kind), change.kind)
    return f"[{','.join(change.tags)}] {change.scope} {kind}: {what}"


def echo_graph_changes(changes: list[GraphChange], indent: str = "") -> None:
    """A heading, then one line per change; long scopes and long lists cut with `... and N more`."""
    if not changes:
        return
    click.echo(f"{indent}{style('heading', 'graph-level differences:')}")
    per_scope: dict[tuple[tuple[str, ...], str], list[GraphChange]] = {}
    for change in changes:
        per_scope.setdefault((tuple(change.tags), change.scope), []).append(change)
    shown = skipped = 0
    for (tags, scope), group in per_scope.items():
        room = min(_GRAPH_LINES_PER_SCOPE, _GRAPH_LINES - shown)
        if room <= 0:
            skipped += len(group)
            continue
        for change in group[:room]:
            click.echo(f"{indent}{graph_change_line(change)}")
        shown += min(room, len(group))
        if len(group) > room:
            click.echo(f"{indent}  ... and {len(group) - room} more in [{','.join(tags)}] {scope}")
    if skipped:
        click.echo(f"{indent}... and {skipped} more in other scopes (--json lists every change)")


def _change_role(kind: str) -> str:
    """The colour of a diff line: added green, removed red, everything else changed."""
    return next((end for end in ("added", "removed") if kind.endswith(end)), "changed")


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Edits' caveats as one line on stderr; other warnings as Python prints them."""
    if issubclass(category, SurgeryWarning):
        click.echo(
            f"{PROG}: {style('warning', 'warning')}: {one_line(str(message))}", err=True, color=color()
        )
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def color() -> bool | None:
    """Outside a command's context: False under NO_COLOR, else None (colour on a terminal only)."""
    return False if no_color() else None
