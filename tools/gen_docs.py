"""Regenerate the parts of the docs derived from the code: the table of edits in docs/api.md
(from surgery/operations.py) and the table of commands in README.md (from the CLI, whose edit
commands are built from the same registry).

    python tools/gen_docs.py [--check]

Each table sits between `<!-- NAME: ... -->` and `<!-- end of NAME -->`; `--check` exits 1 when a
file differs from what would be written (tests/test_docs.py runs it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import click

from surgery.cli.command import cli  # the group, with every command registered
from surgery.operations import edits_table

ROOT = Path(__file__).resolve().parents[1]


def commands_table() -> str:
    """The README's markdown table of commands: usage and summary, in `--help`'s order."""
    group = cli
    context = click.Context(group, info_name="savedmodel-surgery")
    rows = ["| command | what it does |", "|---|---|"]
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        arguments = command.collect_usage_pieces(click.Context(command, info_name=name, parent=context))
        usage = " ".join(["savedmodel-surgery", name, *(a for a in arguments if a != "[OPTIONS]")])
        rows.append(f"| `{usage}` | {command.get_short_help_str(limit=300)} |")
    return "\n".join(rows)


TABLES: dict[Path, tuple[str, Callable[[], str]]] = {
    ROOT / "docs" / "api.md": ("edits", edits_table),
    ROOT / "README.md": ("commands", commands_table),
}


def rendered(path: Path, text: str) -> str:
    """`text` (the contents of `path`) with its generated table replaced by what the code says."""
    name, table = TABLES[path]
    block = re.compile(rf"(<!-- {name}: [^\n]*-->\n)(.*?)(<!-- end of {name} -->)", re.DOTALL)
    if block.search(text) is None:
        raise SystemExit(f"{path}: the markers of the table of {name} are missing")
    return block.sub(lambda m: m.group(1) + table() + "\n" + m.group(3), text, count=1)


def main(argv: list[str]) -> int:
    stale = []
    for path in TABLES:
        text = path.read_text()
        new = rendered(path, text)
        if new == text:
            continue
        if "--check" in argv:
            stale.append(path)
        else:
            path.write_text(new)
    for path in stale:
        print(f"{path} is stale: run `make docs`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
