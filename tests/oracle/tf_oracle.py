"""TensorFlow oracle: answers JSON requests about SavedModels using TensorFlow itself.

Runs only in the TensorFlow venv. The test-suite (in a venv without TensorFlow) starts it as a
subprocess:

    .venv-tf/bin/python tests/oracle/tf_oracle.py serve            # one JSON request per line
    .venv-tf/bin/python tests/oracle/tf_oracle.py once '<request>'  # one request, for debugging

Each request gets exactly one single-line JSON response on the original stdout. Everything else
that writes to stdout (Python or C++) is sent to stderr, so TensorFlow's noise cannot corrupt the
protocol. See README.md for the requests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from types import ModuleType
from typing import Any, TextIO


def _protect_stdout() -> TextIO:
    """Keep a private handle on fd 1 for responses and point fd 1 and sys.stdout at stderr."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def handle(oracle_ops: ModuleType, request: dict[str, Any]) -> dict[str, Any]:
    """Answer one request; failures become `{"ok": false, "error": "<type>: <message>"}`."""
    try:
        op = request["op"]
        if op == "ping":
            return {"ok": True, "tf_version": oracle_ops.tf.__version__}
        if op == "run":
            results = oracle_ops.run(request["model"], request["loader"], request["cases"])
            return {"ok": True, "results": results}
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
    except Exception as exc:  # the server must survive any request
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _answer(oracle_ops: ModuleType, line: str) -> str:
    """Parse one request line, answer it and serialize the response as one JSON line."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise TypeError("a request must be a JSON object")
        return json.dumps(handle(oracle_ops, request))
    except (TypeError, ValueError) as exc:  # a bad request line or an unserializable answer
        return json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def _respond(protocol: TextIO, response: str) -> None:
    """Write one response line and flush it."""
    protocol.write(response + "\n")
    protocol.flush()


def main(argv: list[str] | None = None) -> int:
    """Run `serve` (until EOF on stdin) or `once REQUEST`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("serve", help="answer one JSON request per stdin line until EOF")
    once = modes.add_parser("once", help="answer one JSON request given as an argument")
    once.add_argument("request")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    protocol = _protect_stdout()
    import oracle_ops  # imported only now, so import-time noise cannot reach the protocol

    if args.mode == "once":
        _respond(protocol, _answer(oracle_ops, args.request))
        return 0
    while line := sys.stdin.readline():
        _respond(protocol, _answer(oracle_ops, line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
