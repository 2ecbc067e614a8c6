"""The TensorFlow route of a signature rename: load, then re-save (run in .venv-tf only).

    .venv-tf/bin/python benchmarks/tf_resave.py MODEL OLD NEW OUT

`tf.saved_model.load(MODEL)`, then `tf.saved_model.save(loaded, OUT, signatures=...)` with the
signature OLD under the key NEW and every other signature as it was: what one does without this tool.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf


def main(argv: list[str]) -> int:
    """Rename one signature by a TensorFlow load and re-save."""
    model, old, new, out = argv
    loaded = tf.saved_model.load(model)
    signatures = dict(loaded.signatures)
    signatures[new] = signatures.pop(old)
    tf.saved_model.save(loaded, out, signatures=signatures)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
