"""The oracle servers' line protocol: one JSON request per stdin line, one JSON line back.

Shared by `tf_oracle.py` (TensorFlow's Python loaders) and `cc_oracle.py` (its C++ loader).
Everything else that writes to stdout, Python or C++, is sent to stderr before TensorFlow is
loaded, so its noise cannot corrupt the protocol stream.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _protect_stdout() -> TextIO:
    """Keep a private handle on fd 1 for responses and point fd 1 and sys.stdout at stderr."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def guarded(handle: Handler, request: dict[str, Any]) -> dict[str, Any]:
    """`handle(request)`, or `{"ok": false, "error": "<type>: <message>"}` when it raises."""
    try:
        return handle(request)
    except Exception as exc:  # the server must survive any request
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def answer(handle: Handler, line: str) -> str:
    """Parse one request line, answer it and serialize the response as one JSON line."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise TypeError("a request must be a JSON object")
        return json.dumps(guarded(handle, request))
    except (TypeError, ValueError) as exc:  # a bad request line or an unserializable answer
        return json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def _respond(protocol: TextIO, response: str) -> None:
    protocol.write(response + "\n")
    protocol.flush()


def main(description: str, start: Callable[[], Handler], argv: list[str] | None = None) -> int:
    """Run `serve` (until EOF on stdin) or `once REQUEST`; `start` loads TensorFlow and returns
    the request handler, called only once stdout is protected."""
    parser = argparse.ArgumentParser(description=description)
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("serve", help="answer one JSON request per stdin line until EOF")
    once = modes.add_parser("once", help="answer one JSON request given as an argument")
    once.add_argument("request")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    protocol = _protect_stdout()
    handle = start()
    if args.mode == "once":
        _respond(protocol, answer(handle, args.request))
        return 0
    while line := sys.stdin.readline():
        _respond(protocol, answer(handle, line))
    return 0
