"""The exceptions savedmodel-surgery raises.

    SurgeryError                 root: every error the toolkit raises on purpose
    ├── SavedModelIOError        a path is missing, unreadable, unwritable, or not a SavedModel
    ├── SchemaError              the bytes are not a valid SavedModel proto
    ├── EditError                an edit was refused (unknown signature, name clash, ...)
    └── ConsistencyError         the result would not be a consistent SavedModel
    SurgeryWarning               an edit was done, with a caveat (a lossy cast, an unverified shape)

Messages are one line naming what is wrong and, where there is one, the fix; the CLI
prints them (through `one_line`, since a name from a hostile model may hold a newline or a
terminal escape) and exits with status 2.
"""

from __future__ import annotations


class SurgeryError(Exception):
    """Root of the toolkit's exceptions."""


class SavedModelIOError(SurgeryError):
    """A path is missing, unreadable, unwritable, or not a SavedModel directory."""


class SchemaError(SurgeryError):
    """The file is not a valid SavedModel protocol buffer."""


class EditError(SurgeryError):
    """An edit was refused; nothing was changed."""


class ConsistencyError(SurgeryError):
    """An edit would leave the places that define a signature disagreeing."""


class SurgeryWarning(UserWarning):
    """An edit was done, with a caveat the user should read (the CLI prints it in one line)."""


def one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped (`\\n`, `\\x1b`), for stderr."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
