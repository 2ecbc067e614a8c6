"""Regenerate the parts of the docs derived from the code: the table of edits in docs/api.md.

    python tools/gen_docs.py [--check]

The table sits between `<!-- edits: ... -->` and `<!-- end of edits -->`; `--check` exits 1
when the file differs from what would be written (tests/test_docs.py runs it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from surgery.operations import edits_table

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api.md"
BLOCK = re.compile(r"(<!-- edits: [^\n]*-->\n)(.*?)(<!-- end of edits -->)", re.DOTALL)


def rendered(text: str) -> str:
    """`text` with the table of edits replaced by the registry's."""
    if BLOCK.search(text) is None:
        raise SystemExit(f"{API}: the markers of the table of edits are missing")
    return BLOCK.sub(lambda m: m.group(1) + edits_table() + "\n" + m.group(3), text, count=1)


def main(argv: list[str]) -> int:
    text = API.read_text()
    new = rendered(text)
    if "--check" in argv:
        if new != text:
            print(f"{API} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    API.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
