"""Oracle tier for signature surgery: every edit, through both loaders, with check clean.

test_signature_matrix.py runs each operation on every other fixture kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from signature_cases import Cases, assert_refused_everywhere, assert_tensorflow_fingerprint, renamed, select

import surgery
from conftest import FIXTURES, Oracle, assert_serves, expected_cases, run_cli
from surgery import edits
from surgery.check import check
from surgery.errors import EditError


def _cases(name: str, signature: str, tags: list[str] | None = None) -> Cases:
    return select(expected_cases(name), signature, tags)


def _rename(cases: Cases, side: str, old: str, new: str) -> Cases:
    return renamed(cases, side, {old: new})


def _edited(oracle: Oracle, tmp_path: Path, name: str, *args: str) -> Path:
    """Run an edit command; the result is check clean and has TensorFlow's fingerprint."""
    out = tmp_path / "out"
    run_cli(args[0], FIXTURES / name, *args[1:], "-o", out, check=True)
    model = surgery.load(out)
    assert check(model).ok, check(model).findings
    assert_tensorflow_fingerprint(oracle, out)
    return out


def test_rename_input_that_moves_its_sorted_position(oracle: Oracle, tmp_path: Path) -> None:
    """a_dense -> z_dense sorts after b_dense: a wrong permutation would swap the two inputs' values."""
    out = _edited(oracle, tmp_path, "module_multi", "rename-input", "masked", "a_dense", "z_dense")
    cases = _cases("module_multi", "masked")
    assert_serves(oracle, out, _rename(cases, "inputs", "a_dense", "z_dense"))
    assert_refused_everywhere(oracle, out, cases)
    bare = surgery.load(out).proto.meta_graphs[0].object_graph_def
    assert any(list(n.bare_concrete_function.argument_keywords) == ["b_dense", "z_dense"] for n in bare.nodes)


def test_rename_output_that_moves_its_sorted_position(oracle: Oracle, tmp_path: Path) -> None:
    """alpha -> zeta sorts after beta: the call node's :0/:1 and the wrapper's results are reordered."""
    out = _edited(oracle, tmp_path, "module_multi", "rename-output", "masked", "alpha", "zeta")
    assert_serves(oracle, out, _rename(_cases("module_multi", "masked"), "outputs", "alpha", "zeta"))
    outputs = surgery.load(out).proto.meta_graphs[0].signature_def["masked"].outputs
    assert (outputs["beta"].name, outputs["zeta"].name) == (
        "StatefulPartitionedCall_1:0",
        "StatefulPartitionedCall_1:1",
    )


def test_rename_input_and_output_without_reordering(oracle: Oracle, tmp_path: Path) -> None:
    out = _edited(oracle, tmp_path, "module_multi", "rename-input", "serving_default", "b", "c")
    assert_serves(oracle, out, _rename(_cases("module_multi", "serving_default"), "inputs", "b", "c"))


def test_rename_keys_of_a_keras_export(oracle: Oracle, tmp_path: Path) -> None:
    args = ("rename-input", "serving_default", "feat_a", "zz_feat")
    out = _edited(oracle, tmp_path, "keras_functional", *args)
    assert_serves(
        oracle, out, _rename(_cases("keras_functional", "serving_default"), "inputs", "feat_a", "zz_feat")
    )


def test_rename_keys_of_a_tf1_model(oracle: Oracle, tmp_path: Path) -> None:
    out = _edited(
        oracle,
        tmp_path,
        "tf1_two_metagraphs",
        "rename-input",
        "predict",
        "x",
        "features",
        "--tag-set",
        "serve",
    )
    renamed = _rename(_cases("tf1_two_metagraphs", "predict", ["serve"]), "inputs", "x", "features")
    assert_serves(oracle, out, renamed + _cases("tf1_two_metagraphs", "predict", ["serve", "gpu"]))


def test_remove_signature(oracle: Oracle, tmp_path: Path) -> None:
    out = _edited(oracle, tmp_path, "module_multi", "remove-signature", "preprocess")
    assert_refused_everywhere(oracle, out, _cases("module_multi", "preprocess"))
    others = [c for c in expected_cases("module_multi") if c["signature"] != "preprocess"]
    assert_serves(oracle, out, others)


def test_copy_signature_serves_the_same(oracle: Oracle, tmp_path: Path) -> None:
    out = _edited(oracle, tmp_path, "module_multi", "copy-signature", "masked", "masked_alias")
    cases = _cases("module_multi", "masked")
    assert_serves(oracle, out, cases + [{**c, "signature": "masked_alias"} for c in cases])
    library = surgery.load(out).proto.meta_graphs[0].graph_def.library.function
    assert len(library) == len(
        surgery.load(FIXTURES / "module_multi").proto.meta_graphs[0].graph_def.library.function
    )


def test_shared_signature_keys_cannot_diverge(tmp_path: Path) -> None:
    model = edits.copy_signature(surgery.load(FIXTURES / "module_multi"), "masked", "masked_alias")
    with pytest.raises(EditError, match="shares its function with 'masked'"):
        edits.rename_input(model, "masked_alias", "a_dense", "z_dense")


def test_set_method(oracle: Oracle, tmp_path: Path) -> None:
    out = _edited(oracle, tmp_path, "module_multi", "set-method", "preprocess", "tensorflow/serving/regress")
    described = oracle.ok(op="describe", model=str(out))["meta_graphs"][0]["signatures"]
    assert described["preprocess"]["method_name"] == "tensorflow/serving/regress"
    assert_serves(oracle, out, _cases("module_multi", "preprocess"))


def test_set_tags(oracle: Oracle, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_cli("set-tags", FIXTURES / "tf1_two_metagraphs", "serve,gpu", "serve,tpu", "-o", out, check=True)
    assert_tensorflow_fingerprint(oracle, out)
    cases = [
        {**c, "tags": ["serve", "tpu"]} for c in _cases("tf1_two_metagraphs", "predict", ["serve", "gpu"])
    ]
    assert_serves(oracle, out, cases + _cases("tf1_two_metagraphs", "predict", ["serve"]))


CONTRACT_PLAN = {
    "operations": [
        {"op": "rename-signature", "old": "serving_default", "new": "predict"},
        {"op": "rename-input", "signature": "masked", "old": "a_dense", "new": "z_dense"},
        {"op": "rename-output", "signature": "masked", "old": "alpha", "new": "zeta"},
        {"op": "copy-signature", "src": "masked", "dst": "masked_alias"},
        {"op": "set-method", "signature": "preprocess", "method": "tensorflow/serving/regress"},
        {"op": "rename-signature", "regex": "^(.+)$", "new": "v2_\\1"},
    ]
}


def test_apply_a_plan(oracle: Oracle, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(CONTRACT_PLAN))
    out = _edited(oracle, tmp_path, "module_multi", "apply", str(plan))
    masked = _rename(
        _rename(_cases("module_multi", "masked"), "inputs", "a_dense", "z_dense"), "outputs", "alpha", "zeta"
    )
    cases = [{**c, "signature": "v2_masked"} for c in masked] + [
        {**c, "signature": "v2_masked_alias"} for c in masked
    ]
    cases += [{**c, "signature": "v2_predict"} for c in _cases("module_multi", "serving_default")]
    assert_serves(oracle, out, cases)
    assert sorted(surgery.load(out).proto.meta_graphs[0].signature_def) == [
        "__saved_model_init_op",
        "v2_fixed",
        "v2_masked",
        "v2_masked_alias",
        "v2_predict",
        "v2_preprocess",
    ]


def test_empty_plan_is_a_byte_exact_round_trip(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("operations: []\n")
    out = tmp_path / "out"
    run_cli("apply", FIXTURES / "module_multi", plan, "-o", out, check=True)
    for name in ("saved_model.pb", "fingerprint.pb"):
        assert (out / name).read_bytes() == (FIXTURES / "module_multi" / name).read_bytes()


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ([{"op": "set-shapes", "signature": "x"}], "operations[0]: Input tag 'set-shapes'"),
        ([{"op": "rename-input", "signature": "masked", "old": "a"}], "operations[0].new: Field required"),
        (
            [{"op": "set-method", "signature": "x", "method": "m", "colour": 1}],
            "operations[0].colour: Extra inputs",
        ),
        ([{"op": "rename-signature", "new": "x"}], "give exactly one of old (a key) or regex"),
        ([{"op": "rename-signature", "regex": "(", "new": "x"}], "regex does not compile"),
        ([{"op": "rename-signature", "regex": "^.*$", "new": "same"}], "regex maps both"),
        ([{"op": "rename-signature", "old": "masked", "new": "fixed"}], "already has a signature 'fixed'"),
        ([{"op": "rename-signature", "old": "__saved_model_init_op", "new": "x"}], "reserved signature key"),
        (
            [
                {"op": "remove-signature", "signature": "fixed"},
                {"op": "set-method", "signature": "fixed", "method": "m"},
            ],
            "operations[1] (set-method): no signature 'fixed'",
        ),
    ],
)
def test_bad_plans_are_refused_whole(tmp_path: Path, operations: list[dict[str, Any]], message: str) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"operations": operations}))
    result = run_cli("apply", FIXTURES / "module_multi", plan, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_diff_reports_what_a_plan_did(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"operations": CONTRACT_PLAN["operations"][:3]}))
    run_cli("apply", FIXTURES / "module_multi", plan, "-o", tmp_path / "out", check=True)
    result = run_cli("diff", FIXTURES / "module_multi", tmp_path / "out", "--json")
    assert result.returncode == 1
    kinds = {(c["signature"], c["kind"], c["detail"]) for c in json.loads(result.stdout)["changes"]}
    assert kinds == {
        ("serving_default", "signature-renamed", "serving_default -> predict"),
        ("masked", "input-renamed", "a_dense -> z_dense"),
        ("masked", "output-renamed", "alpha -> zeta"),
        # The reorder swapped the call node's outputs: zeta (was alpha) is now :1, beta :0.
        ("masked", "output-tensor", "zeta: StatefulPartitionedCall_1:0 -> StatefulPartitionedCall_1:1"),
        ("masked", "output-tensor", "beta: StatefulPartitionedCall_1:1 -> StatefulPartitionedCall_1:0"),
    }
    same = run_cli("diff", FIXTURES / "module_multi", FIXTURES / "module_multi")
    assert same.returncode == 0 and "no signature-level differences" in same.stdout
