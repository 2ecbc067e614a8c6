"""TensorFlow oracle: answers JSON requests about SavedModels using TensorFlow itself.

Runs only in the TensorFlow venv. The test-suite (in a venv without TensorFlow) starts it as a
subprocess:

    .venv-tf/bin/python tests/oracle/tf_oracle.py serve            # one JSON request per line
    .venv-tf/bin/python tests/oracle/tf_oracle.py once '<request>'  # one request, for debugging

Each request gets exactly one single-line JSON response on the original stdout (`protocol.py`).
See README.md for the requests.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import protocol


def handle(oracle_ops: ModuleType, request: dict[str, Any]) -> dict[str, Any]:
    """Answer one request (`protocol.guarded` turns a failure into its error response)."""
    op = request["op"]
    if op == "ping":
        return {"ok": True, "tf_version": oracle_ops.tf.__version__}
    if op == "run":
        return {"ok": True, "results": oracle_ops.run(request["model"], request["loader"], request["cases"])}
    if op == "fingerprint":
        return {"ok": True, "fingerprint": oracle_ops.fingerprint(request["model"])}
    if op == "read_fingerprint":
        return {"ok": True, "fingerprint": oracle_ops.read_fingerprint(request["model"])}
    if op == "describe":
        return {"ok": True, **oracle_ops.describe(request["model"])}
    if op == "keras_load":
        library = request.get("library", "tf_keras")
        return {"ok": True, **oracle_ops.keras_load(request["model"], library, request.get("inputs"))}
    if op == "build":
        return {"ok": True, "cases": oracle_ops.build(request["kind"], request["model"])}
    raise ValueError(f"unknown op {op!r}")


def _start() -> protocol.Handler:
    import oracle_ops  # imported only now, so import-time noise cannot reach the protocol

    return lambda request: handle(oracle_ops, request)


if __name__ == "__main__":
    sys.exit(protocol.main((__doc__ or "").splitlines()[0], _start))
