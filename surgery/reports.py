"""The reports the library returns and the CLI prints as JSON: pydantic models, one per kind.

They live apart from the code that builds them so that pydantic is imported only when a
report is made: an edit on the command line builds none, and pydantic's import and first
validation would otherwise be about half of its start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from surgery.io import Format

FingerprintAction = Literal["kept", "rewritten", "none"]


class Finding(BaseModel):
    """One disagreement: `code` names the kind, `message` says where and what."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    code: str
    tags: list[str]
    signature: str | None
    message: str


class CheckReport(BaseModel):
    model_config = ConfigDict(defer_build=True)

    ok: bool
    findings: list[Finding]


class Change(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    tags: list[str]
    signature: str | None
    kind: str
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


class BatchResult(BaseModel):
    """What happened to one model of a batch: `output` is the directory written, if any."""

    model_config = ConfigDict(defer_build=True)

    model: str
    output: str | None
    ok: bool
    error: str | None = None
    warnings: list[str] = []
    changes: list[Change] | None = None  # with --dry-run: what the edit would change
