"""Save a SavedModel holding one large float32 constant, with real TensorFlow (run in .venv-tf only).

    .venv-tf/bin/python benchmarks/tf_build.py OUT --size-mb 1024 --placement captured

`--placement captured`: the constant is an eager tensor attribute of the tf.Module, captured by the
signature functions; TensorFlow saves it as a `Const` node of the meta graph's `graph_def.node`
(and a `tf.TrackableConstant` in the object graph). `--placement function`: `tf.constant(...)`
inside the body of one shared `tf.function`, so it is a `Const` in that function's `FunctionDef`
(`graph_def.library.function[].node_def`), stored once however many signatures call it.

Both models have two signatures with several inputs: `serving_default` (`a_dense`, `b_dense`:
float32 `[batch, 4]`; `c_index`: int32 `[batch]`; outputs `alpha`, `beta`) and `score` (`x`, `idx`;
output `score`). The constant's values come from `np.random.default_rng(seed)`.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

F32 = tf.float32
PREDICT_SPEC = [
    tf.TensorSpec([None, 4], F32, name="a_dense"),
    tf.TensorSpec([None, 4], F32, name="b_dense"),
    tf.TensorSpec([None], tf.int32, name="c_index"),
]
SCORE_SPEC = [tf.TensorSpec([None, 4], F32, name="x"), tf.TensorSpec([None], tf.int32, name="idx")]


def table(size_mb: int, seed: int) -> np.ndarray:
    """The constant: size_mb MiB of float32 values from a seeded generator."""
    return np.random.default_rng(seed).random(size_mb * (1 << 20) // 4, dtype=np.float32)


def _predict(a_dense: tf.Tensor, b_dense: tf.Tensor, picked: tf.Tensor) -> dict[str, tf.Tensor]:
    """The serving_default computation around the looked-up values."""
    alpha = a_dense * tf.expand_dims(picked, 1) + b_dense
    beta = tf.reduce_sum(a_dense - b_dense, axis=1) + picked
    return {"alpha": alpha, "beta": beta}


class Captured(tf.Module):
    """The constant is a captured eager tensor: a graph_def Const node when saved."""

    def __init__(self, values: np.ndarray) -> None:
        super().__init__()
        self.table = tf.constant(values)

    @tf.function(input_signature=PREDICT_SPEC)
    def predict(self, a_dense: tf.Tensor, b_dense: tf.Tensor, c_index: tf.Tensor) -> dict[str, tf.Tensor]:
        return _predict(a_dense, b_dense, tf.gather(self.table, c_index))

    @tf.function(input_signature=SCORE_SPEC)
    def score(self, x: tf.Tensor, idx: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"score": tf.reduce_sum(x, axis=1) * tf.gather(self.table, idx)}


class InFunction(tf.Module):
    """The constant is built inside one shared tf.function: a FunctionDef Const when saved."""

    def __init__(self, values: np.ndarray) -> None:
        super().__init__()
        self._values = values

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def lookup(self, idx: tf.Tensor) -> tf.Tensor:
        return tf.gather(tf.constant(self._values), idx)

    @tf.function(input_signature=PREDICT_SPEC)
    def predict(self, a_dense: tf.Tensor, b_dense: tf.Tensor, c_index: tf.Tensor) -> dict[str, tf.Tensor]:
        return _predict(a_dense, b_dense, self.lookup(c_index))

    @tf.function(input_signature=SCORE_SPEC)
    def score(self, x: tf.Tensor, idx: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"score": tf.reduce_sum(x, axis=1) * self.lookup(idx)}


def main(argv: list[str] | None = None) -> int:
    """Build one model into OUT (which must not exist)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--placement", choices=["captured", "function"], default="captured")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    values = table(args.size_mb, args.seed)
    module: Captured | InFunction = Captured(values) if args.placement == "captured" else InFunction(values)
    if args.placement == "captured":
        del values  # the eager tensor holds its own copy
    # Trace before saving (the in-function variant traces `lookup` once; both signatures share it).
    signatures = {
        "serving_default": module.predict.get_concrete_function(),
        "score": module.score.get_concrete_function(),
    }
    if isinstance(module, InFunction):
        module._values = np.zeros(0, np.float32)  # the traced graph holds the constant now
    tf.saved_model.save(module, args.out, signatures=signatures)
    print(f"saved {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
