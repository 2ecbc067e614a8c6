"""Composite inputs and outputs (SparseTensor, RaggedTensor) keep their components together.

TensorFlow 2.21 gives a TF2 signature a composite input `sp` as flat keys `sp`, `sp_1`, `sp_2`
(only the wrapped function's TypeSpecs group them), a composite output as one key with a
`coo_sparse` or `composite_tensor` TensorInfo spread over several flat results, and a TF1
`coo_sparse` input as one key. Each is renamed as a whole, through both loaders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from signature_cases import (
    Cases,
    assert_refused_everywhere,
    assert_serves_all,
    assert_tensorflow_fingerprint,
    edit,
    renamed,
    select,
)

import surgery
from conftest import FIXTURES, Oracle, assert_serves, expected_cases, run_cli
from surgery import edits
from surgery.check import check
from surgery.errors import EditError
from surgery.signatures import composite_inputs, tf2_signatures

COMPOSITE = FIXTURES / "composite"
COMPONENTS = {"sp": 3, "rg": 2}


@pytest.fixture(scope="module")
def scratch(oracle: Oracle, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Cases]:
    """The oracle's `composites` scratch model: composite outputs (`split`) and a `loose` signature."""
    path = tmp_path_factory.mktemp("scratch") / "composites"
    cases: Cases = oracle.ok(op="build", kind="composites", model=str(path))["cases"]
    return path, cases


def _component_renames(old: str, new: str) -> dict[str, str]:
    return {old: new} | {f"{old}_{i}": f"{new}_{i}" for i in range(1, COMPONENTS[old])}


def _rename_input(signature: str, old: str, new: str, **fields: Any) -> list[dict[str, Any]]:
    return [{"op": "rename-input", "signature": signature, "old": old, "new": new, **fields}]


def _groups(model_dir: Path, signature: str) -> list[list[str]]:
    meta = surgery.load(model_dir).proto.meta_graphs[0]
    parts = edits.signature_parts(meta, signature)
    assert parts is not None
    return composite_inputs(meta, parts.wrapper, meta.signature_def[signature].inputs)


@pytest.mark.parametrize(
    ("old", "new"),
    [("sp", "a_sp"), ("rg", "zz"), ("sp", "zz")],
    ids=["sparse-moves-before-ragged", "ragged-moves-after-sparse", "sparse-keeps-its-place"],
)
def test_renaming_a_composite_input_renames_its_components(
    oracle: Oracle, tmp_path: Path, old: str, new: str
) -> None:
    out = tmp_path / "out"
    edit(COMPOSITE, out, _rename_input("serving_default", old, new))
    values, components = expected_cases("composite")
    # One case feeds the SparseTensor and RaggedTensor values, one their components by key.
    by_components = renamed([components], "inputs", _component_renames(old, new))
    assert_serves(oracle, out, renamed([values], "inputs", {old: new}) + by_components)
    assert_refused_everywhere(oracle, out, [values])
    assert_tensorflow_fingerprint(oracle, out)
    meta = surgery.load(out).proto.meta_graphs[0]
    keys = sorted(_component_renames(old, new).get(k, k) for k in components["inputs"])
    assert sorted(meta.signature_def["serving_default"].inputs) == keys
    tf2 = tf2_signatures(meta)
    assert tf2 is not None
    assert tf2["serving_default"].argument_keywords == keys and sorted(tf2["serving_default"].inputs) == keys
    mapping = _component_renames(old, new)
    groups = [[mapping.get(k, k) for k in group] for group in (["sp", "sp_1", "sp_2"], ["rg", "rg_1"])]
    assert sorted(_groups(out, "serving_default")) == sorted(groups)


@pytest.mark.parametrize("component", ["sp_1", "sp_2", "rg_1"])
def test_renaming_one_component_is_refused(tmp_path: Path, component: str) -> None:
    head = component.split("_")[0]
    out = tmp_path / "out"
    result = run_cli("rename-input", COMPOSITE, "serving_default", component, "values", "-o", out)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"is component {component[-1]} of the composite input {head!r}" in result.stderr
    assert f"rename {head!r}, which renames them together" in result.stderr
    assert not out.exists()


def test_a_refused_composite_rename_leaves_the_model_unchanged(scratch: tuple[Path, Cases]) -> None:
    """`sp` -> `q` would make `q_1`, which an earlier rename already took: refused before any change."""
    model = edits.rename_input(surgery.load(scratch[0]), "loose", "b", "q_1")
    before = model.serialize()
    with pytest.raises(EditError, match="already has an input 'q_1'"):
        edits.rename_input(model, "loose", "sp", "q")
    assert model.serialize() == before


def test_composite_outputs_are_checked_as_tensorflow_writes_them(scratch: tuple[Path, Cases]) -> None:
    """`split` returns 7 flat values for 4 keys; check used to report 4 problems on it."""
    report = check(surgery.load(scratch[0]))
    assert report.ok, [f.message for f in report.findings]


@pytest.mark.parametrize(
    ("old", "new"),
    [("a", "zz"), ("sp", "a_sp"), ("rg", "zz_rg")],
    ids=["dense-moves-past-composites", "sparse-moves-first", "ragged-moves-last"],
)
def test_renaming_an_output_moves_composite_blocks(
    oracle: Oracle, scratch: tuple[Path, Cases], tmp_path: Path, old: str, new: str
) -> None:
    src, cases = scratch
    out = tmp_path / "out"
    edit(src, out, [{"op": "rename-output", "signature": "split", "old": old, "new": new}])
    split = renamed(select(cases, "split"), "outputs", {old: new})
    assert_serves_all(oracle, out, split + select(cases, "loose"))
    assert_tensorflow_fingerprint(oracle, out)
    outputs = surgery.load(out).proto.meta_graphs[0].signature_def["split"].outputs
    encodings = {"a": "name", "z": "name", "sp": "coo_sparse", "rg": "composite_tensor"}
    assert {k: v.WhichOneof("encoding") for k, v in outputs.items()} == {
        {old: new}.get(k, k): e for k, e in encodings.items()
    }


def test_composite_input_of_a_function_without_type_specs(
    oracle: Oracle, scratch: tuple[Path, Cases], tmp_path: Path
) -> None:
    """`loose` wraps a function the object graph has no TypeSpecs for: `_user_specified_name` groups."""
    src, cases = scratch
    assert sorted(_groups(src, "loose")) == [["rg", "rg_1"], ["sp", "sp_1", "sp_2"]]
    out = tmp_path / "out"
    edit(src, out, _rename_input("loose", "sp", "zz"))
    assert_serves_all(oracle, out, renamed(select(cases, "loose"), "inputs", {"sp": "zz"}))
    assert_tensorflow_fingerprint(oracle, out)
    assert sorted(surgery.load(out).proto.meta_graphs[0].signature_def["loose"].inputs) == [
        "b",
        "rg",
        "rg_1",
        "zz",
        "zz_1",
        "zz_2",
    ]


def test_a_coo_sparse_input_is_one_key(oracle: Oracle, tmp_path: Path) -> None:
    """TF1's `sp` renames alone; the TF2 loader's split arguments follow (`features_indices`, ...)."""
    out = tmp_path / "out"
    edit(FIXTURES / "tf1_two_metagraphs", out, _rename_input("sparse_sum", "sp", "features"))
    split = {f"sp_{part}": f"features_{part}" for part in ("indices", "values", "dense_shape")}
    cases = select(expected_cases("tf1_two_metagraphs"), "sparse_sum")
    assert_serves(oracle, out, renamed(renamed(cases, "inputs", {"sp": "features"}), "inputs", split))
    assert_refused_everywhere(oracle, out, [c for c in cases if "sp" in c["inputs"]])
    assert_tensorflow_fingerprint(oracle, out)
    for meta in surgery.load(out).proto.meta_graphs:
        assert meta.signature_def["sparse_sum"].inputs["features"].WhichOneof("encoding") == "coo_sparse"
