"""Small models the tests build on demand, for TensorFlow layouts no committed fixture has.

Runs only in the TensorFlow venv, through the oracle's `build` op (see README.md). Each builder
saves a SavedModel into the directory it is given and returns cases without outputs; the oracle
records the outputs with both loaders.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

Case = dict[str, Any]


class _CompositeOutputs(tf.Module):
    """`split(x)` returns a dense, a ragged, a sparse and a dense output (keys a, rg, sp, z)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def split(self, x: tf.Tensor) -> dict[str, Any]:
        return {
            "a": x * 2.5,
            "rg": tf.RaggedTensor.from_row_lengths(x * 10.0, [1, tf.size(x) - 1]),
            "sp": tf.sparse.from_dense(tf.reshape(x - 7.0, [1, -1])),
            "z": x + 100.0,
        }


@tf.function(
    input_signature=[
        tf.SparseTensorSpec([None, 3], tf.float32),
        tf.TensorSpec([None], tf.float32),
        tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1),
    ]
)
def _loose(sp: tf.SparseTensor, b: tf.Tensor, rg: tf.RaggedTensor) -> dict[str, tf.Tensor]:
    """A signature function that is no attribute of the saved object: TensorFlow keeps no
    SavedConcreteFunction (and so no composite TypeSpec) for the function it wraps."""
    return {"total": tf.sparse.reduce_sum(sp, axis=1) * b + tf.cast(tf.reduce_sum(rg, axis=1), tf.float32)}


def build_composites(path: Path) -> list[Case]:
    """Signatures `split` (composite outputs) and `loose` (composite inputs, no TypeSpecs saved)."""
    module = _CompositeOutputs()
    tf.saved_model.save(module, str(path), signatures={"split": module.split, "loose": _loose})
    sparse = {"indices": [[0, 0], [0, 2], [1, 1]], "values": [1.5, -4.0, 2.25], "dense_shape": [2, 3]}
    ragged = {"values": [1, 2, 3, 4, 5], "row_splits": [0, 3, 5]}
    return [
        {
            "tags": ["serve"],
            "signature": "split",
            "inputs": {"x": {"dtype": "float32", "value": [1.0, 2.0, 4.0]}},
        },
        {
            "tags": ["serve"],
            "signature": "loose",
            "inputs": {
                "sp": {"dtype": "float32", "sparse": sparse},
                "b": {"dtype": "float32", "value": [3.0, -0.5]},
                "rg": {"dtype": "int32", "ragged": ragged},
            },
        },
    ]


class _BigConstants(tf.Module):
    """Large constants in the three places TensorFlow puts them: a captured eager tensor (a Const
    of the graph), a constant in a function body, and a captured string tensor (a vocabulary)."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.table = tf.constant(rng.standard_normal((8, 40000)).astype(np.float32))  # 1.25 MB
        self.words = tf.constant([f"word{i:06d}" for i in range(20000)])  # 200 KB of strings

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 8], tf.float32, name="x"),
            tf.TensorSpec([None], tf.int32, name="ids"),
            tf.TensorSpec([None], tf.float32, name="bias"),
        ]
    )
    def score(self, x: tf.Tensor, ids: tf.Tensor, bias: tf.Tensor) -> dict[str, tf.Tensor]:
        inner = tf.constant(np.linspace(-1.0, 1.0, 8 * 30000, dtype=np.float32).reshape(8, 30000))
        return {
            "y": tf.reduce_sum(tf.matmul(x, self.table), axis=1) + tf.reduce_sum(tf.matmul(x, inner), axis=1),
            "n": tf.strings.length(tf.gather(self.words, ids)) + ids,
            "b": bias * 3.0,
        }


def build_big_constants(path: Path) -> list[Case]:
    """Signature `score` (inputs x, ids, bias; outputs y, n, b) over a few MB of constants."""
    module = _BigConstants()
    tf.saved_model.save(module, str(path), signatures={"score": module.score})
    return [
        {
            "tags": ["serve"],
            "signature": "score",
            "inputs": {
                "x": {"dtype": "float32", "value": [[0.5, -1.0, 2.0, 0.0, 1.0, 3.0, -2.0, 0.25]] * 2},
                "ids": {"dtype": "int32", "value": [7, 19999]},
                "bias": {"dtype": "float32", "value": [1.0, -2.0]},
            },
        }
    ]


def build_keras3_export(path: Path) -> list[Case]:
    """A Keras 3 functional model with two named inputs (`a` [None, 3], `b` [None, 2]) and two
    outputs (`score`, `prob`), written by `model.export()` as signature `serving_default` (whose
    function takes the inputs as one dict argument). Weights are fixed ramps."""
    import keras

    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(2,), name="b")
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(a)
    score = keras.layers.Dense(2, name="score")(keras.layers.Concatenate(name="concat")([hidden, b]))
    prob = keras.layers.Softmax(name="prob")(score)
    model = keras.Model(inputs={"a": a, "b": b}, outputs={"score": score, "prob": prob}, name="two_inputs")
    for weight in model.weights:
        size = int(np.prod(weight.shape))
        weight.assign(np.linspace(-1.0, 1.0, size, dtype=np.float32).reshape(weight.shape))
    model.export(str(path), verbose=False)
    return [
        {
            "tags": ["serve"],
            "signature": "serving_default",
            "inputs": {
                "a": {"dtype": "float32", "value": [[0.1, 0.2, 0.3], [1.5, -0.5, 2.0]]},
                "b": {"dtype": "float32", "value": [[0.4, 0.5], [-1.0, 0.25]]},
            },
        }
    ]


class _TimeStep(NamedTuple):
    """The first argument of a TF-Agents policy's `action`."""

    step_type: Any
    reward: Any
    discount: Any
    observation: Any


class _NestedArgs(tf.Module):
    """A policy saved as TF-Agents' PolicySaver saves one: `action(*args)` over a nested
    structure (a time step and a policy state) of TensorSpecs named `0/step_type`, ...,
    `1/carry`; and `mixed(*args)`, whose inputs `x.2` and `x_1` sort the other way as the
    argument names TensorFlow makes of them (`x_2`, `x_1`)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable([[0.5, -1.0], [2.0, 0.25]])

    @tf.function
    def action(self, *args: Any) -> dict[str, tf.Tensor]:
        time_step, policy_state = args
        logits = tf.matmul(time_step.observation, self.w) * time_step.discount[:, None]
        logits += time_step.reward[:, None] + policy_state["carry"]
        chosen = tf.argmax(logits, axis=1, output_type=tf.int32) + time_step.step_type
        return {"action": chosen, "logits": logits}

    @tf.function
    def mixed(self, *args: Any) -> dict[str, tf.Tensor]:
        return {"y": args[0] * 10.0 + args[1]}


def build_nested_args(path: Path) -> list[Case]:
    """Signatures `action` (inputs `0/step_type`, `0/reward`, `0/discount`, `0/observation`,
    `1/carry`; outputs `action`, `logits`) and `mixed` (inputs `x.2`, `x_1`; output `y`)."""
    module = _NestedArgs()
    time_step = _TimeStep(
        step_type=tf.TensorSpec([None], tf.int32, name="0/step_type"),
        reward=tf.TensorSpec([None], tf.float32, name="0/reward"),
        discount=tf.TensorSpec([None], tf.float32, name="0/discount"),
        observation=tf.TensorSpec([None, 2], tf.float32, name="0/observation"),
    )
    policy_state = {"carry": tf.TensorSpec([None, 2], tf.float32, name="1/carry")}
    signatures = {
        "action": module.action.get_concrete_function(time_step, policy_state),
        "mixed": module.mixed.get_concrete_function(
            tf.TensorSpec([None], tf.float32, name="x.2"), tf.TensorSpec([None], tf.float32, name="x_1")
        ),
    }
    tf.saved_model.save(module, str(path), signatures=signatures)
    return [
        {
            "tags": ["serve"],
            "signature": "action",
            "inputs": {
                "0/step_type": {"dtype": "int32", "value": [1, 0, 2]},
                "0/reward": {"dtype": "float32", "value": [0.5, -1.0, 0.0]},
                "0/discount": {"dtype": "float32", "value": [1.0, 0.5, 0.25]},
                "0/observation": {"dtype": "float32", "value": [[1.0, 2.0], [3.0, -1.0], [-2.0, 0.5]]},
                "1/carry": {"dtype": "float32", "value": [[0.1, 0.2], [0.3, -0.4], [0.0, 0.0]]},
            },
        },
        {
            "tags": ["serve"],
            "signature": "mixed",
            "inputs": {
                "x.2": {"dtype": "float32", "value": [1.0, 2.0]},
                "x_1": {"dtype": "float32", "value": [3.0, 4.0]},
            },
        },
    ]


BUILDERS: dict[str, Callable[[Path], list[Case]]] = {
    "composites": build_composites,
    "big_constants": build_big_constants,
    "keras3_export": build_keras3_export,
    "nested_args": build_nested_args,
}
