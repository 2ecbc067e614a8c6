"""What `check` reports: a finding and its severity, as plain data.

Its own module so that the reports (pydantic, imported on first use) and `check` both use it
without importing each other, and an edit's own check imports no pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
"""How bad a finding is: an error, which some TensorFlow loader refuses or computes otherwise, or a
warning, which TensorFlow ignores."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One disagreement: `code` names the kind, `message` says where and what. `severity` is
    `error` when a TensorFlow loader refuses the model or signature or the loaders compute
    different things, `warning` when TensorFlow ignores the place that disagrees. `function` and
    `node` say where a graph validator finding is (None otherwise).

    A plain dataclass, not a pydantic model, so that an edit's own check (`disagreements`) imports
    no pydantic; the pydantic `CheckReport` holds findings as they are and serialises them.
    """

    code: str
    severity: Severity
    tags: list[str]
    signature: str | None
    message: str
    function: str | None = None
    node: str | None = None
