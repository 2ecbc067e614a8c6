"""Edits change what they say and nothing else, and undoing an edit gives back the original.

Three ways an edit used to write a model TensorFlow refuses or that computes other numbers:
a shape walk that read attrs by subscript (inserting empty `AttrValue`s into function bodies),
a dtype change of an input with a default that left the default's `Const` behind, and a dtype
changed there and back that stacked two lossy casts. Each is proven through the loaders.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import (
    FIXTURE_NAMES,
    FIXTURES,
    LOADERS,
    ROOT,
    Oracle,
    assert_outputs,
    case_loaders,
    copy_fixture,
    expected_cases,
    run_cli,
    tree_bytes,
)
from surgery.schema import FingerprintDef, NodeDef, SavedModel
from surgery.tensor_edits import INSERTED, inserted_by

REALWORLD = ROOT.parent / "shared" / "realworld"
HALF_PLUS_TWO_TF2 = (
    REALWORLD / "tfserving" / "servables__tensorflow__saved_model_half_plus_two_tf2_cpu__00000123"
)


def _realworld(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path


def _attr_keys(proto: SavedModel) -> dict[tuple[str, str, str], list[str]]:
    """Every node's attr names, by (meta graph tags, function or '', node name)."""
    out: dict[tuple[str, str, str], list[str]] = {}
    for meta in proto.meta_graphs:
        tags = ",".join(meta.meta_info_def.tags)
        bodies: list[tuple[str, list[NodeDef]]] = [("", list(meta.graph_def.node))]
        bodies += [(f.signature.name, list(f.node_def)) for f in meta.graph_def.library.function]
        for scope, nodes in bodies:
            for node in nodes:
                out[(tags, scope, node.name)] = sorted(node.attr)
    return out


def _run(oracle: Oracle, model: Path, loader: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return oracle.run(model, loader, cases)


def test_set_shape_adds_no_attr_to_a_node_it_only_reads(oracle: Oracle, tmp_path: Path) -> None:
    # The Dense layers' MatMuls have no transpose_a: TensorFlow strips attrs that hold their default.
    model = copy_fixture("keras2_legacy", tmp_path)
    before = _attr_keys(surgery.load(model).proto)
    matmuls = [k for k in before if k[2].endswith("/MatMul")]
    assert matmuls and all("transpose_a" not in before[k] for k in matmuls)
    run_cli("set-shape", model, "serving_default", "features", "-1,-1", "--in-place", check=True)
    after = _attr_keys(surgery.load(model).proto)
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if before[k] != v} == {}
    cases = expected_cases("keras2_legacy")
    for loader in LOADERS:
        chosen = [c for c in cases if loader in case_loaders(c)]
        for case, result in zip(chosen, _run(oracle, model, loader, chosen), strict=True):
            assert_outputs(result, case["outputs"], rel=1e-6)


READ_MODELS = [FIXTURES / name for name in FIXTURE_NAMES] + sorted(
    p.parent for p in REALWORLD.glob("*/*/saved_model.pb")
)


@pytest.mark.parametrize("path", READ_MODELS, ids=lambda p: p.name)
def test_reading_a_model_leaves_its_bytes_as_they_were(path: Path) -> None:
    from surgery.show import show_json, show_text

    model = surgery.load(path)
    before = model.proto.SerializeToString(deterministic=True)
    surgery.check(model)
    surgery.explain(model)
    surgery.diff(model, model)
    show_text(model)
    show_json(model)
    assert model.proto.SerializeToString(deterministic=True) == before


def _same_model(a: Path, b: Path) -> None:
    """The same files byte for byte, but fingerprint.pb's uuid, which every write makes anew."""
    files_a, files_b = tree_bytes(a), tree_bytes(b)
    prints = [files.pop("fingerprint.pb", None) for files in (files_a, files_b)]
    assert files_a == files_b
    if prints[1] is not None:
        fields = [FingerprintDef.FromString(p or b"") for p in prints]
        for fingerprint in fields:
            fingerprint.ClearField("uuid")
        assert fields[0] == fields[1]


def _half_plus_two_case(x: float, dtype: str = "float32") -> list[dict[str, Any]]:
    return [
        {"tags": ["serve"], "signature": "serving_default", "inputs": {"x": {"dtype": dtype, "value": [x]}}}
    ]


def _default_const(model: Path) -> NodeDef:
    graph = surgery.load(model).proto.meta_graphs[0].graph_def
    return next(n for n in graph.node if n.name == "serving_default_x/input")


def test_set_dtype_of_an_input_with_a_default_converts_the_default(oracle: Oracle, tmp_path: Path) -> None:
    source = _realworld(HALF_PLUS_TWO_TF2)
    model = tmp_path / "m"
    shutil.copytree(source, model)
    base = {loader: _run(oracle, model, loader, _half_plus_two_case(3.0)) for loader in LOADERS}
    assert base["v1"][0]["outputs"]["y"]["value"] == [3.5]

    run_cli("set-dtype", model, "serving_default", "x", "float64", "--in-place", check=True)
    const = _default_const(model)
    assert const.attr["dtype"].type == const.attr["value"].tensor.dtype == 2  # DT_DOUBLE
    assert list(const.attr["value"].tensor.double_val) == [0.0]
    assert run_cli("check", model).returncode == 0
    for loader in LOADERS:
        got = _run(oracle, model, loader, _half_plus_two_case(3.0, "float64"))
        assert_outputs(got[0], base[loader][0]["outputs"])


def test_set_dtype_refuses_a_default_the_new_dtype_cannot_hold(tmp_path: Path) -> None:
    source = _realworld(HALF_PLUS_TWO_TF2)
    model = tmp_path / "m"
    shutil.copytree(source, model)
    proto = surgery.load(model)
    const = next(n for n in proto.proto.meta_graphs[0].graph_def.node if n.name == "serving_default_x/input")
    const.attr["value"].tensor.float_val[0] = 2.5
    surgery.save(proto, in_place=True)
    before = tree_bytes(model)
    result = run_cli("set-dtype", model, "serving_default", "x", "int32", "--in-place")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "savedmodel-surgery: error: input 'x' of 'serving_default': the default of serving_default_x "
        "cannot become int32: its value 2.5 does not fit int32; choose a dtype that holds it"
    ]
    assert tree_bytes(model) == before


def _pair(a: list[list[float]], b: list[list[float]]) -> list[dict[str, Any]]:
    inputs = {"a": {"dtype": "float32", "value": a}, "b": {"dtype": "float32", "value": b}}
    return [{"tags": ["serve"], "signature": "serving_default", "inputs": inputs}]


# a + b is 70000 (float16's largest finite value is 65504) and 0.3 (not a float16)
WIDE = _pair([[35000.0, 0.1, 3.0]], [[35000.0, 0.2, 4.0]])


def _sums(oracle: Oracle, model: Path, loader: str) -> tuple[str, list[Any]]:
    out = _run(oracle, model, loader, WIDE)[0]["outputs"]["sum"]
    return out["dtype"], out["value"]


@pytest.mark.parametrize("loader", LOADERS)
def test_set_dtype_there_and_back_gives_back_the_original(
    oracle: Oracle, tmp_path: Path, loader: str
) -> None:
    original = copy_fixture("module_multi", tmp_path)
    model = tmp_path / "edited"
    shutil.copytree(original, model)
    want = _sums(oracle, original, loader)
    assert 65504 < want[1][0][0] < 1e6

    edit = ("set-dtype", model, "serving_default", "sum", "--output-key")
    run_cli(*edit[:4], "float16", *edit[4:], "--in-place", check=True)
    dtype, value = _sums(oracle, model, loader)
    assert dtype == "float16" and math.isinf(value[0][0])  # the edit itself is lossy, as it warned
    run_cli(*edit[:4], "float32", *edit[4:], "--in-place", check=True)
    _same_model(model, original)
    assert _sums(oracle, model, loader) == want
    result = run_cli("diff", original, model)
    assert result.returncode == 0, result.stdout


def test_a_second_set_dtype_replaces_the_first_cast(oracle: Oracle, tmp_path: Path) -> None:
    original = copy_fixture("module_multi", tmp_path)
    model = tmp_path / "edited"
    shutil.copytree(original, model)
    edit = ("set-dtype", model, "serving_default", "sum", "--output-key")
    run_cli(*edit[:4], "float16", *edit[4:], "--in-place", check=True)
    run_cli(*edit[:4], "float64", *edit[4:], "--in-place", check=True)
    # One cast, float32 -> float64: the numbers are float32's, not float16's.
    meta = surgery.load(model).proto.meta_graphs[0]
    casts = [n for f in meta.graph_def.library.function for n in f.node_def if inserted_by(n) == "set-dtype"]
    assert [(c.attr["SrcT"].type, c.attr["DstT"].type) for c in casts] == [(1, 2)]
    for loader in LOADERS:
        dtype, value = _sums(oracle, model, loader)
        want = _sums(oracle, original, loader)[1]
        assert dtype == "float64"
        assert value[0][0] == want[0][0]
        assert value[0][1] == pytest.approx(want[0][1], rel=1e-7)  # float32's 0.3, not float16's 0.2998


def test_set_dtype_there_and_back_on_a_tf1_graph(oracle: Oracle, tmp_path: Path) -> None:
    original = copy_fixture("tf1_two_metagraphs", tmp_path)
    model = tmp_path / "edited"
    shutil.copytree(original, model)
    sig = _tf1_float_signature(original)
    for flag in ("--output-key", None):
        key = sig["outputs"] if flag else sig["inputs"]
        edit = ["set-dtype", model, sig["key"], key]
        run_cli(*edit, "float64", *([flag] if flag else []), "--in-place", check=True)
        assert tree_bytes(model) != tree_bytes(original)
        run_cli(*edit, "float32", *([flag] if flag else []), "--in-place", check=True)
        _same_model(model, original)
    cases = [
        c for c in json.loads((ROOT / "tests/fixtures/expected/tf1_two_metagraphs.json").read_text())["cases"]
    ]
    for loader in ("v1", "cc"):
        chosen = [c for c in cases if loader in case_loaders(c)]
        for case, result in zip(chosen, _run(oracle, model, loader, chosen), strict=True):
            assert_outputs(result, case["outputs"])


def _tf1_float_signature(model: Path) -> dict[str, str]:
    """A signature of the TF1 fixture with a float32 placeholder input and a float32 output."""
    meta = surgery.load(model).proto.meta_graphs[0]
    nodes = {n.name: n for n in meta.graph_def.node}
    for key, sig in sorted(meta.signature_def.items()):
        ins = [
            k
            for k, i in sorted(sig.inputs.items())
            if i.dtype == 1 and nodes[i.name.split(":")[0]].op == "Placeholder"
        ]
        outs = [k for k, i in sorted(sig.outputs.items()) if i.dtype == 1]
        if ins and outs:
            return {"key": key, "inputs": ins[0], "outputs": outs[0]}
    raise AssertionError("no float signature in the TF1 fixture")


def test_a_users_own_cast_is_never_touched(tmp_path: Path) -> None:
    original = copy_fixture("module_multi", tmp_path)
    model = tmp_path / "edited"
    shutil.copytree(original, model)
    meta = surgery.load(original).proto.meta_graphs[0]
    users = [n.name for f in meta.graph_def.library.function for n in f.node_def if n.op == "Cast"]
    assert users, "the fixture's preprocess signature casts x itself"
    edit = ("set-dtype", model, "preprocess", "as_float", "--output-key")
    run_cli(*edit[:4], "float64", *edit[4:], "--in-place", check=True)
    run_cli(*edit[:4], "int32", *edit[4:], "--in-place", check=True)
    meta = surgery.load(model).proto.meta_graphs[0]
    casts = [n for f in meta.graph_def.library.function for n in f.node_def if n.op == "Cast"]
    assert sorted(n.name for n in casts if inserted_by(n) is None) == sorted(users)
    assert [n.attr["DstT"].type for n in casts if inserted_by(n) == "set-dtype"] == [3]  # DT_INT32
    run_cli(*edit[:4], "float32", *edit[4:], "--in-place", check=True)
    _same_model(model, original)


def test_the_mark_is_an_attr_tensorflow_ignores() -> None:
    assert INSERTED.startswith("_")
