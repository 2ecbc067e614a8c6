"""The reports the library returns and the CLI prints as JSON: pydantic models, one per kind.

They live apart from the code that builds them so that pydantic is imported only when a
report is made: an edit on the command line builds none, and pydantic's import and first
validation would otherwise be about half of its start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from surgery.model import Format

Severity = Literal["error", "warning"]
"""How bad a finding is: an error, which some TensorFlow loader refuses or computes otherwise, or a
warning, which TensorFlow ignores."""

FingerprintAction = Literal["kept", "rewritten", "none"]


class Finding(BaseModel):
    """One disagreement: `code` names the kind, `message` says where and what. `severity` is
    `error` when a TensorFlow loader refuses the model or signature or the loaders compute
    different things, `warning` when TensorFlow ignores the place that disagrees. `function` and
    `node` say where a graph validator finding is (None otherwise)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    code: str
    severity: Severity
    tags: list[str]
    signature: str | None
    message: str
    function: str | None = None
    node: str | None = None


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


class BatchResult(BaseModel):
    """What happened to one model of a batch: `output` is the directory written, if any."""

    model_config = ConfigDict(defer_build=True)

    model: str
    output: str | None
    ok: bool
    error: str | None = None
    warnings: list[str] = []
    changes: list[Change] | None = None  # with --dry-run: what the edit would change
    graph_changes: list[GraphChange] | None = None  # with --dry-run: the graph-level changes
