"""keras_metadata.pb: what tf-keras records, and the one warning signature edits give about it.

`tf_keras.models.load_model` rebuilds the model from keras_metadata.pb (one SavedMetadata node
per Keras object: node_id and node_path into the object graph, and the layer config as JSON)
and takes `model.signatures` from the object graph. No signature edit renumbers object-graph
nodes, so every edit loads, computes the same numbers and shows its signatures
(test_signature_matrix.py proves it for each operation). What the metadata keeps is the Keras
model's own input and output names: a rename of a signature key that is one of them leaves
`model.input_names`/`output_names` (and the serving_default a Keras re-save writes) on the old
name, so the edit warns.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import surgery
from conftest import FIXTURES, Oracle, run_cli
from surgery import edits
from surgery.errors import SurgeryWarning
from surgery.signatures import KERAS_METADATA, keras_io_names

KERAS2 = FIXTURES / "keras2_legacy"
PREFIX = "savedmodel-surgery: warning: keras_metadata.pb still names the Keras model"


def test_the_metadata_names_the_keras_inputs_and_outputs() -> None:
    assert keras_io_names(KERAS2) == ({"features"}, {"logits"})
    assert keras_io_names(FIXTURES / "keras_functional") is None  # Keras 3 export() writes none


def test_renaming_a_keras_input_warns_on_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("rename-input", KERAS2, "serving_default", "features", "feats", "-o", out, check=True)
    warning, wrote = result.stderr.strip().splitlines()
    assert warning == (
        f"{PREFIX} input 'features': tf_keras.models.load_model keeps it in model.input_names "
        "(and a Keras re-save writes serving_default with it), not 'feats'"
    )
    assert wrote == f"wrote {out}"
    assert (out / KERAS_METADATA).read_bytes() == (KERAS2 / KERAS_METADATA).read_bytes()


def test_a_plan_prints_each_warning(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    operations = [
        {"op": "rename-input", "signature": "serving_default", "old": "features", "new": "x"},
        {"op": "rename-output", "signature": "serving_default", "old": "logits", "new": "y"},
        {"op": "rename-signature", "old": "serving_default", "new": "predict"},
    ]
    plan.write_text(json.dumps({"operations": operations}))
    result = run_cli("apply", KERAS2, plan, "-o", tmp_path / "out", check=True)
    warnings = [line for line in result.stderr.splitlines() if line.startswith(PREFIX)]
    assert [w.split("'")[1] for w in warnings] == ["features", "logits"]


def test_edits_that_keep_the_keras_names_do_not_warn(tmp_path: Path) -> None:
    for args in (
        ["rename-signature", KERAS2, "serving_default", "predict"],
        ["copy-signature", KERAS2, "serving_default", "classify"],
        ["set-method", KERAS2, "serving_default", "tensorflow/serving/classify"],
    ):
        result = run_cli(*args, "-o", tmp_path / str(args[0]), check=True)
        assert "warning" not in result.stderr, result.stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = edits.rename_input(surgery.load(KERAS2), "serving_default", "features", "a")
        edits.rename_input(model, "serving_default", "a", "b")  # 'a' is no Keras name: no second warning
    assert [w.category for w in caught] == [SurgeryWarning]


def test_unreadable_metadata_gives_no_warning(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(KERAS2, model_dir)
    (model_dir / KERAS_METADATA).write_bytes(b"\x0a\xff\xff")
    assert keras_io_names(model_dir) == (set(), set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        edits.rename_input(surgery.load(model_dir), "serving_default", "features", "feats")
    assert caught == []


def test_keras_3_load_model_refuses_saved_model_directories(oracle: Oracle) -> None:
    """Keras 3 reloads a SavedModel only as a TFSMLayer: there is no Keras model to keep in step."""
    response = oracle.request(op="keras_load", library="keras", model=str(FIXTURES / "keras_functional"))
    assert not response["ok"] and "File format not supported" in response["error"]
