"""fingerprint.pb: the five hashes equal what TensorFlow's CreateFingerprintDef computes."""

from __future__ import annotations

from pathlib import Path

import pytest

import surgery
from conftest import FIXTURE_NAMES, FIXTURES, Oracle, copy_fixture
from surgery.edits import rename_signature
from surgery.fingerprint import compute_fingerprint, fingerprint64, fingerprint_cat64
from surgery.schema import FingerprintDef

FIELDS = [
    "saved_model_checksum",
    "graph_def_program_hash",
    "signature_def_hash",
    "saved_object_graph_hash",
    "checkpoint_hash",
]


def _ours(model_dir: Path) -> dict[str, int]:
    model = surgery.load(model_dir)
    fingerprint = compute_fingerprint(model.proto, model.serialize(), model_dir)
    assert fingerprint is not None
    return {f: getattr(fingerprint, f) for f in FIELDS} | {"version_producer": fingerprint.version.producer}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fingerprint_of_every_fixture_matches_tensorflow(oracle: Oracle, name: str) -> None:
    assert _ours(FIXTURES / name) == oracle.fingerprint(FIXTURES / name)


@pytest.mark.parametrize("name", ["module_multi", "tf1_two_metagraphs", "keras_functional"])
def test_written_fingerprint_matches_tensorflow_after_an_edit(
    oracle: Oracle, name: str, tmp_path: Path
) -> None:
    model = surgery.load(FIXTURES / name)
    key = sorted(k for k in model.proto.meta_graphs[0].signature_def if not k.startswith("__"))[0]
    out = surgery.save(rename_signature(model, key, key + "_renamed"), tmp_path / "out")
    written = FingerprintDef.FromString((out / "fingerprint.pb").read_bytes())
    theirs = oracle.fingerprint(out)
    assert {f: getattr(written, f) for f in FIELDS} == {f: theirs[f] for f in FIELDS}
    assert written.version.producer == theirs["version_producer"] == 4
    assert (
        written.uuid
        and written.uuid
        != FingerprintDef.FromString(
            (FIXTURES / name / "fingerprint.pb").read_bytes()
            if (FIXTURES / name / "fingerprint.pb").exists()
            else b""
        ).uuid
    )


def test_map_order_is_cpp_order_not_upbs(oracle: Oracle, tmp_path: Path) -> None:
    """Keys where one is a prefix of another (`x`, `x_1`) sort differently in upb and C++."""
    src = copy_fixture("module_multi", tmp_path)
    model = surgery.load(src)
    sig = model.proto.meta_graphs[0].signature_def["masked"]
    sig.outputs["alpha_1"].CopyFrom(sig.outputs["alpha"])
    sig.inputs["b"].CopyFrom(sig.inputs["b_dense"])
    surgery.save(model, tmp_path / "out")
    assert _ours(tmp_path / "out") == oracle.fingerprint(tmp_path / "out")


def test_checkpoint_hash_is_zero_without_variables(oracle: Oracle, tmp_path: Path) -> None:
    src = copy_fixture("composite", tmp_path)
    for path in (src / "variables").iterdir():
        path.unlink()
    assert _ours(src)["checkpoint_hash"] == oracle.fingerprint(src)["checkpoint_hash"] == 0


def test_fingerprint_cat64_is_order_dependent() -> None:
    a, b = fingerprint64(b"a"), fingerprint64(b"b")
    assert fingerprint_cat64(a, b) != fingerprint_cat64(b, a)
    assert 0 <= fingerprint_cat64(a, b) < 2**64
