"""The reports the library returns and the CLI prints as JSON: pydantic models, one per kind.

They live apart from the code that builds them so that pydantic is imported only when a
report is made: an edit on the command line builds none, and pydantic's import and first
validation would otherwise be about half of its start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from surgery.findings import Finding as Finding  # a plain dataclass, held as it is
from surgery.model import Format

FingerprintAction = Literal["kept", "rewritten", "none"]


class CheckReport(BaseModel):
    """What `check` found: `ok` when no finding is an error; `errors` and `warnings` count them."""

    model_config = ConfigDict(defer_build=True)

    ok: bool
    errors: int
    warnings: int
    findings: list[Finding]


class Change(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    tags: list[str]
    signature: str | None
    kind: str
    detail: str


class GraphChange(BaseModel):
    """One graph-level change: in meta graph `tags`, in `scope` (`graph`, `function:NAME`,
    `object-graph` or `meta-graph`), what `kind` of change to `name`, and a short `detail`."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    tags: list[str]
    scope: str
    kind: str
    name: str
    detail: str


class ConvertResult(BaseModel):
    """What `convert` wrote: the model file, its size, and what became of `fingerprint.pb`."""

    model_config = ConfigDict(defer_build=True)

    input: str
    output: str
    source_format: Format
    format: Format
    file: str
    bytes: int
    fingerprint: FingerprintAction
