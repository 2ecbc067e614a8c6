"""Every signature operation on every fixture kind it applies to, proven by TensorFlow.

Each entry is one edit (as plan operations, applied in-process) whose result must be `check`
clean, carry the fingerprint TensorFlow computes for it, serve what it should through both
loaders (the TF2 loader and the v1 session loader TensorFlow Serving uses), and no longer serve
what the edit took away. On the tf-keras model, `tf_keras.models.load_model` must still load
it, see the edited signatures and compute the recorded numbers.

Edits that other modules already prove this way are not repeated: module_multi's key renames,
removal, copy, set-method and the contract plan, keras_functional's and tf1's input renames,
tf1's set-tags (test_signature_edits.py); rename-signature of every fixture
(test_rename_signature.py, here again as the regex plan); composite and coo_sparse input renames
(test_composite_signatures.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from signature_cases import (
    Cases,
    assert_refused_everywhere,
    assert_tensorflow_fingerprint,
    edit,
    renamed,
    select,
)

from conftest import FIXTURES, Oracle, assert_close, assert_serves, expected_cases

Transform = Callable[[Cases], Cases]


@dataclass(frozen=True)
class Entry:
    """One edit of one fixture and what the result must (`serves`) and must not (`gone`) serve."""

    fixture: str
    operations: list[dict[str, Any]]
    serves: Transform
    gone: Transform = lambda cases: []
    warns: str | None = None
    """A substring of the one warning the edit gives (none by default)."""
    signatures: Callable[[list[str]], list[str]] = field(default=lambda keys: keys)
    """From the fixture's signature keys to the ones the edited model has (for keras_load)."""

    @property
    def id(self) -> str:
        op = self.operations[0]
        return f"{'regex-plan' if 'regex' in op else op['op']}-{self.fixture}"


def _retagged(cases: Cases, signature: str, new: str) -> Cases:
    return [{**c, "signature": new} for c in cases if c["signature"] == signature]


def _without(cases: Cases, signature: str) -> Cases:
    return [c for c in cases if c["signature"] != signature]


def remove(fixture: str, signature: str) -> Entry:
    return Entry(
        fixture,
        [{"op": "remove-signature", "signature": signature}],
        serves=lambda cases: _without(cases, signature),
        gone=lambda cases: select(cases, signature),
        signatures=lambda keys: [k for k in keys if k != signature],
    )


def copy(fixture: str, src: str, dst: str) -> Entry:
    """The copy serves what the source does (the source itself is left out: capture_fn is stateful)."""
    return Entry(
        fixture,
        [{"op": "copy-signature", "src": src, "dst": dst}],
        serves=lambda cases: _without(cases, src) + _retagged(cases, src, dst),
        signatures=lambda keys: sorted([*keys, dst]),
    )


def set_method(fixture: str, signature: str) -> Entry:
    method = "tensorflow/serving/regress"
    return Entry(
        fixture,
        [{"op": "set-method", "signature": signature, "method": method}],
        serves=lambda cases: cases,
    )


def set_tags(fixture: str, old: list[str], new: list[str]) -> Entry:
    def move(cases: Cases) -> Cases:
        return [{**c, "tags": new} if sorted(c["tags"]) == sorted(old) else c for c in cases]

    return Entry(
        fixture,
        [{"op": "set-tags", "old": old, "new": new}],
        serves=move,
        gone=lambda cases: [c for c in cases if sorted(c["tags"]) == sorted(old)],
    )


def rename_key(
    fixture: str, side: str, signature: str, old: str, new: str, warns: str | None = None
) -> Entry:
    """The renamed key serves; the old one is refused (an output key no longer returned is an error)."""

    def serves(cases: Cases) -> Cases:
        return _without(cases, signature) + renamed(select(cases, signature), side, {old: new})

    op = "rename-input" if side == "inputs" else "rename-output"
    operation = {"op": op, "signature": signature, "old": old, "new": new}
    return Entry(fixture, [operation], serves, gone=lambda cases: select(cases, signature), warns=warns)


def regex_plan(fixture: str) -> Entry:
    return Entry(
        fixture,
        [{"op": "rename-signature", "regex": "^(.+)$", "new": "v2_\\1"}],
        serves=lambda cases: [{**c, "signature": "v2_" + c["signature"]} for c in cases],
        gone=lambda cases: cases,
        signatures=lambda keys: ["v2_" + k for k in keys],
    )


KERAS_INPUT = "keras_metadata.pb still names the Keras model input 'features'"
KERAS_OUTPUT = "keras_metadata.pb still names the Keras model output 'logits'"
GPU, SERVE = ["serve", "gpu"], ["serve"]

ENTRIES = [
    remove("example_model", "capture_fn"),
    remove("keras_functional", "serve"),
    remove("tf1_two_metagraphs", "sparse_sum"),
    remove("composite", "serving_default"),
    remove("lookup_asset", "serving_default"),
    remove("keras2_legacy", "serving_default"),
    copy("example_model", "capture_fn", "capture_alias"),
    copy("keras_functional", "serving_default", "predict"),
    copy("tf1_two_metagraphs", "predict", "infer"),
    copy("composite", "serving_default", "sums"),
    copy("lookup_asset", "serving_default", "lookup"),
    copy("keras2_legacy", "serving_default", "classify"),
    set_method("example_model", "capture_fn"),
    set_method("keras_functional", "serve"),
    set_method("tf1_two_metagraphs", "preprocess"),
    set_method("composite", "serving_default"),
    set_method("lookup_asset", "serving_default"),
    set_method("keras2_legacy", "serving_default"),
    set_tags("module_multi", SERVE, ["serve", "tpu"]),
    set_tags("example_model", SERVE, ["serve", "tpu"]),
    set_tags("keras_functional", SERVE, ["serve", "tpu"]),
    set_tags("tf1_two_metagraphs", SERVE, ["serve", "cpu"]),
    set_tags("composite", SERVE, ["serve", "tpu"]),
    set_tags("lookup_asset", SERVE, ["serve", "tpu"]),
    set_tags("keras2_legacy", SERVE, ["serve", "tpu"]),
    rename_key("example_model", "inputs", "capture_fn", "x", "amount"),
    rename_key("lookup_asset", "inputs", "serving_default", "words", "tokens"),
    rename_key("keras2_legacy", "inputs", "serving_default", "features", "a_features", warns=KERAS_INPUT),
    rename_key("example_model", "outputs", "capture_fn", "output_0", "weight"),
    rename_key("keras_functional", "outputs", "serve", "output_0", "scores"),
    rename_key("tf1_two_metagraphs", "outputs", "predict", "y", "scores"),
    rename_key("composite", "outputs", "serving_default", "sp_sum", "a_sum"),
    rename_key("lookup_asset", "outputs", "serving_default", "ids", "indices"),
    rename_key("keras2_legacy", "outputs", "serving_default", "logits", "scores", warns=KERAS_OUTPUT),
    *(regex_plan(name) for name in sorted({p.name for p in FIXTURES.iterdir()} - {"module_multi"})),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_signature_edit(oracle: Oracle, tmp_path: Path, entry: Entry) -> None:
    out = tmp_path / "out"
    _, warned = edit(FIXTURES / entry.fixture, out, entry.operations)
    assert_tensorflow_fingerprint(oracle, out)
    cases = expected_cases(entry.fixture)
    assert_serves(oracle, out, entry.serves(cases))
    if entry.gone(cases):
        assert_refused_everywhere(oracle, out, entry.gone(cases))
    if entry.warns is None:
        assert warned == []
    else:
        assert len(warned) == 1 and entry.warns in warned[0], warned
    op = entry.operations[0]
    if op["op"] == "set-method":
        described = [m["signatures"] for m in oracle.ok(op="describe", model=str(out))["meta_graphs"]]
        methods = {s[op["signature"]]["method_name"] for s in described if op["signature"] in s}
        assert methods == {op["method"]}
    if entry.fixture == "keras2_legacy":
        _assert_keras_loads(oracle, out, entry)


def _assert_keras_loads(oracle: Oracle, out: Path, entry: Entry) -> None:
    """tf_keras.models.load_model computes the recorded numbers and sees the edited signatures."""
    (case,) = expected_cases("keras2_legacy")
    loaded = oracle.ok(op="keras_load", model=str(out), inputs=case["inputs"])
    assert (loaded["input_names"], loaded["output_names"]) == (["features"], ["logits"])
    assert_close(loaded["outputs"]["logits"]["value"], case["outputs"]["logits"]["value"])
    assert sorted(loaded["signatures"]) == entry.signatures(["serving_default"])
    for served in entry.serves([case]):
        assert sorted(loaded["signatures"][served["signature"]]["inputs"]) == sorted(served["inputs"])
        assert sorted(loaded["signatures"][served["signature"]]["outputs"]) == sorted(served["outputs"])
