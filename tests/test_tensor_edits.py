"""Oracle tier for tensor surgery: set-shape, set-dtype with casts, rename-tensor."""

from __future__ import annotations

import copy
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import FIXTURES, LOADERS, Oracle, assert_serves, expected_cases, run_cli, tree_bytes
from surgery import edits
from surgery.check import check
from surgery.dtype_edits import cast_is_lossless, set_dtype
from surgery.errors import EditError, SurgeryWarning
from surgery.fingerprint import compute_fingerprint
from surgery.model import Model
from surgery.schema import FingerprintDef
from surgery.tensor_edits import rename_tensor, set_shape
from surgery.tensors import parse_dtype

Cases = list[dict[str, Any]]


def _cases(name: str, signature: str, tags: list[str] | None = None) -> Cases:
    return copy.deepcopy(
        [
            c
            for c in expected_cases(name)
            if c["signature"] == signature and (tags is None or c.get("tags", ["serve"]) == tags)
        ]
    )


def _edit(tmp_path: Path, name: str, edit: Callable[[Model], object]) -> tuple[Path, list[str]]:
    """Apply `edit` through the API, write it, and require check clean and the right fingerprint."""
    model = surgery.load(FIXTURES / name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        edit(model)
    report = check(model)
    assert report.ok, report.findings
    out = tmp_path / "out"
    surgery.save(model, out)
    written = surgery.load(out)
    if (out / "fingerprint.pb").exists():
        ours = compute_fingerprint(written.proto, written.serialize(), out)
        assert ours is not None
        assert FingerprintDef.FromString((out / "fingerprint.pb").read_bytes()).saved_model_checksum == (
            ours.saved_model_checksum
        )
    return out, [str(w.message) for w in caught if issubclass(w.category, SurgeryWarning)]


def _errors(oracle: Oracle, model: Path, cases: Cases) -> dict[str, list[str]]:
    """Each loader's error for each case ("" where it served)."""
    return {loader: [r.get("error", "") for r in oracle.run(model, loader, cases)] for loader in LOADERS}


def _all_refused(errors: dict[str, list[str]]) -> bool:
    return all(error for per_loader in errors.values() for error in per_loader)


# --- set-shape ---------------------------------------------------------------------------------

FIXED_BATCH_2 = {
    "tags": ["serve"],
    "signature": "fixed",
    "inputs": {"row": {"dtype": "float32", "value": [[0.5, 1.5, -2.0, 3.0], [1.0, 1.0, 1.0, 1.0]]}},
    "outputs": {"out": {"dtype": "float32", "shape": [2], "value": [9.5, 10.0]}},
}


def test_relax_a_fixed_batch_serves_a_batch_the_old_shape_rejected(oracle: Oracle, tmp_path: Path) -> None:
    """fixed takes row[1,4]: after -1,4 both loaders take a batch of 2 and compute the right sums."""
    # The v1 session checks feeds against the placeholder; TF 2.21's signatures[key] checks nothing,
    # and neither does the C++ session (TensorFlow Serving's): it computes the sums of both rows.
    assert _errors(oracle, FIXTURES / "module_multi", [FIXED_BATCH_2]) == {
        "tf2": [""],
        "v1": [
            "ValueError: Cannot feed value of shape (2, 4) for Tensor fixed_row:0, which has shape (1, 4)"
        ],
        "cc": [""],
    }
    out, caught = _edit(
        tmp_path,
        "module_multi",
        lambda m: (
            set_shape(m, "fixed", "row", (-1, 4)),
            set_shape(m, "fixed", "out", (-1,), output=True),
        ),
    )
    assert caught == []  # Mul with v[4] and Sum over axis 1 are verified: nothing to warn about
    assert_serves(oracle, out, [FIXED_BATCH_2, *_cases("module_multi", "fixed")])
    meta = surgery.load(out).proto.meta_graphs[0]
    placeholder = next(n for n in meta.graph_def.node if n.name == "fixed_row")
    assert [d.size for d in placeholder.attr["shape"].shape.dim] == [-1, 4]
    assert [d.size for d in placeholder.attr["_output_shapes"].list.shape[0].dim] == [-1, 4]


def test_relax_to_unknown_rank(oracle: Oracle, tmp_path: Path) -> None:
    """a_dense only meets elementwise ops broadcasting with w[3]: nothing contradicts, nothing to warn."""
    out, caught = _edit(tmp_path, "module_multi", lambda m: set_shape(m, "masked", "a_dense", None))
    assert caught == []
    assert_serves(oracle, out, _cases("module_multi", "masked"))
    info = surgery.load(out).proto.meta_graphs[0].signature_def["masked"].inputs["a_dense"]
    assert info.tensor_shape.unknown_rank


def test_a_change_past_ops_without_a_rule_warns(oracle: Oracle, tmp_path: Path) -> None:
    """words feeds a table lookup, whose shape rule this tool lacks: done, with a one-line warning."""
    out, caught = _edit(tmp_path, "lookup_asset", lambda m: set_shape(m, "serving_default", "words", None))
    assert caught == [
        "input 'words' of 'serving_default': only the declared shape changed: its effect past "
        "LookupTableFindV2 could not be verified, TensorFlow checks it when the model runs"
    ]
    assert_serves(oracle, out, _cases("lookup_asset", "serving_default"))


def test_tighten_rejects_a_batch_that_no_longer_fits(oracle: Oracle, tmp_path: Path) -> None:
    """serving_default a[-1,3] -> [2,3]: batch 2 still serves, batch 1 is refused by both loaders.

    TF 2.21's signature functions do not check TensorSpecs, so the edit adds an EnsureShape to the
    wrapper function for the TF2 loader; the v1 loader checks the placeholder's shape.
    """
    out, caught = _edit(tmp_path, "module_multi", lambda m: set_shape(m, "serving_default", "a", (2, 3)))
    assert caught == []
    cases = _cases("module_multi", "serving_default")
    assert_serves(oracle, out, cases)
    one = copy.deepcopy(cases[0])
    for key in ("a", "b"):
        one["inputs"][key]["value"] = one["inputs"][key]["value"][:1]
    assert _errors(oracle, FIXTURES / "module_multi", [one]) == {"tf2": [""], "v1": [""], "cc": [""]}
    errors = _errors(oracle, out, [one])
    assert "Shape of tensor a [1,3] is not compatible with expected shape [2,3]" in errors["tf2"][0]
    assert errors["v1"] == [
        "ValueError: Cannot feed value of shape (1, 3) for Tensor serving_default_a:0, which has shape (2, 3)"
    ]
    # The C++ session does not check feeds against the placeholder: the v1 graph's call node runs
    # the wrapper function, whose EnsureShape refuses the batch of 1.
    assert errors["cc"] == [
        "InvalidArgumentError: Shape of tensor _arg_serving_default_a_0_0 [1,3] is not compatible with "
        "expected shape [2,3].\n\t [[{{function_node __inference_signature_wrapper_serve_33}}"
        "{{node a_ensure_shape}}]]"
    ]


@pytest.mark.parametrize(
    ("key", "shape", "output", "message"),
    [
        ("row", (-1, 5), False, "Mul node 'mul' combines it with a tensor of shape (4): dims 5 and 4"),
        ("row", (4,), False, "Sum node 'Sum' reduces over axis [1] of a rank-1 tensor"),
        ("out", (2,), True, "the graph computes shape (1) for it, which contradicts (2)"),
    ],
)
def test_shapes_the_graph_contradicts_are_refused(
    tmp_path: Path, key: str, shape: tuple[int, ...], output: bool, message: str
) -> None:
    model = surgery.load(FIXTURES / "module_multi")
    before = model.serialize()
    with pytest.raises(EditError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        set_shape(model, "fixed", key, shape, output=output)
    assert model.serialize() == before


def test_set_shape_on_a_tf1_graph(oracle: Oracle, tmp_path: Path) -> None:
    """predict's x[-1,2] feeds MatMul with weights[2,2]: a third column is refused, a batch of 2 is fine."""
    with pytest.raises(EditError, match=r"MatMul node 'MatMul' multiplies it by a matrix of shape \(2, 2\)"):
        set_shape(surgery.load(FIXTURES / "tf1_two_metagraphs"), "predict", "x", (-1, 3))
    out, _ = _edit(tmp_path, "tf1_two_metagraphs", lambda m: set_shape(m, "predict", "x", (2, 2)))
    assert_serves(oracle, out, _cases("tf1_two_metagraphs", "predict"))
    for meta in surgery.load(out).proto.meta_graphs:
        placeholder = next(n for n in meta.graph_def.node if n.name == "input_x")
        assert [d.size for d in placeholder.attr["shape"].shape.dim] == [2, 2]


def test_set_shape_cli_takes_a_negative_shape_and_a_bare_output_flag(tmp_path: Path) -> None:
    model = tmp_path / "m"
    relaxed = tmp_path / "relaxed"
    run_cli("set-shape", FIXTURES / "module_multi", "fixed", "row", "-1,4", "-o", relaxed, check=True)
    bare = run_cli("set-shape", relaxed, "fixed", "out", "?", "--output", "--in-place", check=True)
    assert bare.stderr.splitlines()[0] == (
        "savedmodel-surgery: warning: a bare --output saying KEY is an output is the old spelling: write "
        "--output-key (--output OUT stays the output directory)"
    )
    run_cli("set-shape", relaxed, "fixed", "out", "*", "--output-key", "--output", model, check=True)
    signature = surgery.load(model).proto.meta_graphs[0].signature_def["fixed"]
    assert [d.size for d in signature.inputs["row"].tensor_shape.dim] == [-1, 4]
    assert signature.outputs["out"].tensor_shape.unknown_rank
    run_cli("set-shape", model, "fixed", "out", "1", "--output", "-o", tmp_path / "again", check=True)
    again = surgery.load(tmp_path / "again").proto.meta_graphs[0].signature_def["fixed"]
    assert [d.size for d in again.outputs["out"].tensor_shape.dim] == [1]


def test_set_shape_cli_refusal_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "m"
    source.mkdir()
    result = run_cli("set-shape", FIXTURES / "module_multi", "fixed", "row", "-1,5", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr == (
        "savedmodel-surgery: error: the graph contradicts shape (-1, 5): Mul node 'mul' combines it "
        "with a tensor of shape (4): dims 5 and 4 cannot broadcast\n"
    )
    assert not (tmp_path / "out").exists()


# --- set-dtype ---------------------------------------------------------------------------------


def _retype(cases: Cases, side: str, key: str, dtype: str, *, composite: str | None = None) -> Cases:
    """Cases with `key` of `dtype`; where a case gives the composite value instead, its dtype."""
    for case in cases:
        case[side][key if key in case[side] else composite or key]["dtype"] = dtype
    return cases


def test_input_dtype_gets_a_cast_where_it_enters(oracle: Oracle, tmp_path: Path) -> None:
    """preprocess x int32 -> int64: clients send int64, the wrapper casts to int32, same numbers."""
    out, caught = _edit(
        tmp_path, "module_multi", lambda m: set_dtype(m, "preprocess", "x", parse_dtype("int64"))
    )
    assert caught == [
        "input 'x' of 'preprocess': the inserted Cast from int64 to int32 can lose precision or range"
    ]
    cases = _cases("module_multi", "preprocess")
    assert_serves(oracle, out, _retype(copy.deepcopy(cases), "inputs", "x", "int64"))
    assert _all_refused(_errors(oracle, out, cases))  # int32 is no longer accepted
    meta = surgery.load(out).proto.meta_graphs[0]
    assert next(n for n in meta.graph_def.node if n.name == "preprocess_x").attr["dtype"].type == 9


def test_output_dtypes_get_a_cast_where_they_leave(oracle: Oracle, tmp_path: Path) -> None:
    """as_float float32 -> float16 (lossy: warns) and as_int int32 -> int64 (lossless: silent)."""
    out, caught = _edit(
        tmp_path,
        "module_multi",
        lambda m: (
            set_dtype(m, "preprocess", "as_float", parse_dtype("float16"), output=True),
            set_dtype(m, "preprocess", "as_int", parse_dtype("DT_INT64"), output=True),
        ),
    )
    assert caught == [
        "output 'as_float' of 'preprocess': the inserted Cast from float32 to float16 "
        "can lose precision or range"
    ]
    cases = _retype(_cases("module_multi", "preprocess"), "outputs", "as_float", "float16")
    assert_serves(oracle, out, _retype(cases, "outputs", "as_int", "int64"), rel=1e-3)


def test_float_input_of_a_two_input_signature(oracle: Oracle, tmp_path: Path) -> None:
    """masked b_dense float32 -> float64 at position 1 of 2: the other input keeps float32."""
    out, _ = _edit(
        tmp_path, "module_multi", lambda m: set_dtype(m, "masked", "b_dense", parse_dtype("float64"))
    )
    assert_serves(oracle, out, _retype(_cases("module_multi", "masked"), "inputs", "b_dense", "float64"))


def test_set_dtype_on_a_tf1_graph_casts_in_the_v1_graph(oracle: Oracle, tmp_path: Path) -> None:
    """predict x float32 -> float64 and y -> float64 in both meta graphs; preprocess raw -> int64."""
    out, _ = _edit(
        tmp_path,
        "tf1_two_metagraphs",
        lambda m: (
            set_dtype(m, "predict", "x", parse_dtype("float64")),
            set_dtype(m, "predict", "y", parse_dtype("float64"), output=True),
            set_dtype(m, "preprocess", "raw", parse_dtype("int64")),
        ),
    )
    predict = [c for c in copy.deepcopy(expected_cases("tf1_two_metagraphs")) if c["signature"] == "predict"]
    assert len(predict) == 2  # serve and serve,gpu
    cases = _retype(_retype(predict, "inputs", "x", "float64"), "outputs", "y", "float64")
    cases += _retype(_cases("tf1_two_metagraphs", "preprocess"), "inputs", "raw", "int64")
    assert_serves(oracle, out, cases)
    meta = surgery.load(out).proto.meta_graphs[0]
    assert meta.signature_def["predict"].outputs["y"].name == "output_y_as_float64:0"


@pytest.mark.parametrize(
    ("signature", "key", "dtype", "output", "message"),
    [
        ("preprocess", "x", "string", False, "Cast cannot convert string to int32"),
        ("preprocess", "as_float", "resource", True, "Cast cannot convert float32 to resource"),
        ("preprocess", "as_float", "variant", True, "Cast cannot convert float32 to variant"),
        ("preprocess", "nope", "int64", False, "signature 'preprocess' has no input 'nope': it has x"),
    ],
)
def test_casts_tensorflow_cannot_do_are_refused(
    signature: str, key: str, dtype: str, output: bool, message: str
) -> None:
    model = surgery.load(FIXTURES / "module_multi")
    before = model.serialize()
    with pytest.raises(EditError, match=message):
        set_dtype(model, signature, key, parse_dtype(dtype), output=output)
    assert model.serialize() == before


@pytest.mark.parametrize(
    ("src", "dst", "lossless"),
    [
        ("float16", "float32", True),
        ("float32", "float16", False),
        ("bfloat16", "float32", True),
        ("float16", "bfloat16", False),
        ("bfloat16", "float16", False),
        ("int32", "int64", True),
        ("int64", "int32", False),
        ("uint8", "int16", True),
        ("int8", "uint8", False),
        ("int16", "float32", True),
        ("int32", "float32", False),
        ("int32", "float64", True),
        ("float32", "int64", False),
        ("bool", "float16", True),
        ("float32", "bool", False),
        ("float32", "complex64", True),
        ("complex64", "float32", False),
        ("float64", "complex64", False),
    ],
)
def test_lossless_casts(src: str, dst: str, lossless: bool) -> None:
    assert cast_is_lossless(src, dst) is lossless


def test_set_dtype_cli_prints_the_warning_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "set-dtype", FIXTURES / "module_multi", "preprocess", "as_float", "float16", "--output-key", "-o", out
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "savedmodel-surgery: warning: output 'as_float' of 'preprocess': the inserted Cast from float32 to "
        "float16 can lose precision or range",
        f"wrote {out}",
    ]


# --- rename-tensor -----------------------------------------------------------------------------


def test_rename_tensors_of_a_tf1_model_with_two_meta_graphs(oracle: Oracle, tmp_path: Path) -> None:
    """input_x:0 -> images:0 and output_y:0 -> scores:0 in both meta graphs; the v1 loader serves."""
    out, _ = _edit(
        tmp_path,
        "tf1_two_metagraphs",
        lambda m: (
            rename_tensor(m, "input_x:0", "images:0"),
            rename_tensor(m, "output_y", "scores"),
            rename_tensor(m, "weights", "dense/kernel"),
            rename_tensor(m, "input_sparse/indices:0", "sparse_indices:0"),
        ),
    )
    assert_serves(oracle, out, expected_cases("tf1_two_metagraphs"))
    model = surgery.load(out)
    for meta in model.proto.meta_graphs:
        predict = meta.signature_def["predict"]
        assert (predict.inputs["x"].name, predict.outputs["y"].name) == ("images:0", "scores:0")
        assert (
            meta.signature_def["sparse_sum"].inputs["sp"].coo_sparse.indices_tensor_name == "sparse_indices:0"
        )
        names = {n.name for n in meta.graph_def.node}
        assert {"images", "scores", "dense/kernel"} <= names and not {
            "input_x",
            "output_y",
            "weights",
        } & names
        refs = [r for n in meta.graph_def.node for r in n.input]
        assert not [r for r in refs if r.lstrip("^").split(":")[0] in ("input_x", "output_y", "weights")]


def test_rename_a_placeholder_of_a_tf2_model(oracle: Oracle, tmp_path: Path) -> None:
    out, _ = _edit(tmp_path, "module_multi", lambda m: rename_tensor(m, "serving_default_a:0", "images:0"))
    assert_serves(oracle, out, _cases("module_multi", "serving_default"))
    info = surgery.load(out).proto.meta_graphs[0].signature_def["serving_default"].inputs["a"]
    assert info.name == "images:0"


@pytest.mark.parametrize(
    ("fixture", "old", "new", "message"),
    [
        ("tf1_two_metagraphs", "input_x:0", "output_y:0", "the graph already has a node 'output_y'"),
        ("tf1_two_metagraphs", "input_x:0", "images:1", "a tensor keeps its output index"),
        ("tf1_two_metagraphs", "input_x:0", "bad name:0", "'bad name' is not a name TensorFlow accepts"),
        ("tf1_two_metagraphs", "input_x:0", "_x:0", "'_x' is not a name TensorFlow accepts"),
        ("tf1_two_metagraphs", "nope:0", "x:0", "no node 'nope' in the graph"),
        ("module_multi", "StatefulPartitionedCall", "call", "only signature placeholders can be renamed"),
    ],
)
def test_rename_tensor_refusals(fixture: str, old: str, new: str, message: str) -> None:
    model = surgery.load(FIXTURES / fixture)
    before = model.serialize()
    with pytest.raises(EditError, match=message):
        rename_tensor(model, old, new)
    assert model.serialize() == before


def test_rename_tensor_cli_and_tag_set(tmp_path: Path) -> None:
    source = tmp_path / "src"
    out = tmp_path / "out"
    shutil.copytree(FIXTURES / "tf1_two_metagraphs", source)
    before = tree_bytes(source)
    run_cli("rename-tensor", source, "input_x:0", "images:0", "--tag-set", "serve,gpu", "-o", out, check=True)
    assert tree_bytes(source) == before
    metas = {",".join(m.meta_info_def.tags): m for m in surgery.load(out).proto.meta_graphs}
    assert metas["serve,gpu"].signature_def["predict"].inputs["x"].name == "images:0"
    assert metas["serve"].signature_def["predict"].inputs["x"].name == "input_x:0"


# --- every fixture kind ------------------------------------------------------------------------

MATRIX = [
    # fixture, signature, edits as (function, key, value, output), retyped cases as (side, key, dtype)
    (
        "example_model",
        "capture_fn",
        [(set_dtype, "x", "float64", False), (set_dtype, "output_0", "float64", True)],
    ),
    (
        "keras_functional",
        "serving_default",
        [(set_dtype, "feat_b", "float64", False), (set_shape, "feat_a", (-1, -1), False)],
    ),
    (
        "keras_functional",
        "serve",
        [(set_dtype, "output_0", "float64", True), (set_shape, "feat_b", (2, 2), False)],
    ),
    (
        "keras2_legacy",
        "serving_default",
        [(set_dtype, "features", "float16", False), (set_dtype, "logits", "float64", True)],
    ),
    ("keras2_legacy", "serving_default", [(set_shape, "features", (3, 3), False)]),
    (
        "lookup_asset",
        "serving_default",
        [(set_dtype, "ids", "int32", True), (set_shape, "words", (5,), False)],
    ),
    # TF 2.21 flattens composite arguments into one TensorSpec per component: sp_1 is the values
    (
        "composite",
        "serving_default",
        [(set_dtype, "rg_sum", "float64", True), (set_dtype, "sp_1", "float64", False)],
    ),
]


@pytest.mark.parametrize(("fixture", "signature", "steps"), MATRIX, ids=[f"{m[0]}-{m[1]}" for m in MATRIX])
def test_tensor_edits_on_every_fixture_kind(
    oracle: Oracle, tmp_path: Path, fixture: str, signature: str, steps: list[tuple[Any, str, Any, bool]]
) -> None:
    """Each edit on a real export of each kind: check clean, both loaders serve the recorded numbers."""

    def edit(model: Model) -> None:
        for function, key, value, output in steps:
            if function is set_dtype:
                set_dtype(model, signature, key, parse_dtype(value), output=output)
            else:
                set_shape(model, signature, key, value, output=output)

    out, _ = _edit(tmp_path, fixture, edit)
    cases = _cases(fixture, signature)
    assert cases
    for function, key, value, output in steps:
        if function is set_dtype:  # some cases give the SparseTensor `sp`, whose values are sp_1
            _retype(cases, "outputs" if output else "inputs", key, value, composite="sp")
    # float16 inputs hold the fixture's values exactly only to float16 precision
    assert_serves(oracle, out, cases, rel=1e-2 if any(s[2] == "float16" for s in steps) else 1e-6)


def test_tighten_then_relax_updates_the_one_ensure_shape(oracle: Oracle, tmp_path: Path) -> None:
    """The second edit reuses the EnsureShape the first added: batch 1 serves again through TF2."""
    out, _ = _edit(
        tmp_path,
        "module_multi",
        lambda m: (
            set_shape(m, "serving_default", "a", (2, 3)),
            set_shape(m, "serving_default", "a", (-1, 3)),
        ),
    )
    wrapper_nodes = [
        n.op
        for f in surgery.load(out).proto.meta_graphs[0].graph_def.library.function
        if f.signature.name == "__inference_signature_wrapper_serve_33"
        for n in f.node_def
    ]
    assert wrapper_nodes.count("EnsureShape") == 1
    one = _cases("module_multi", "serving_default")[0]
    for key in ("a", "b"):
        one["inputs"][key]["value"] = one["inputs"][key]["value"][:1]
    one["outputs"] = {k: {**v, "shape": [1, 3], "value": v["value"][:1]} for k, v in one["outputs"].items()}
    assert_serves(oracle, out, [one])


def test_a_placeholder_two_signatures_feed_keeps_its_dtype() -> None:
    """In a TF1 graph the cast goes after the placeholder, which a copied signature also feeds."""
    model = surgery.load(FIXTURES / "tf1_two_metagraphs")
    edits.copy_signature(model, "predict", "predict_alias", tag_set=frozenset(["serve"]))
    before = model.serialize()
    with pytest.raises(EditError, match="placeholder input_x also feeds 'x' of signature 'predict_alias'"):
        set_dtype(model, "predict", "x", parse_dtype("float64"), tag_set=frozenset(["serve"]))
    assert model.serialize() == before


def test_a_signature_sharing_its_function_with_a_copy_is_refused() -> None:
    model = surgery.load(FIXTURES / "module_multi")
    edits.copy_signature(model, "preprocess", "preprocess_alias")
    before = model.serialize()
    message = "'preprocess' shares its function with 'preprocess_alias' .* shapes and dtypes cannot differ"
    with pytest.raises(EditError, match=message):
        set_dtype(model, "preprocess", "x", parse_dtype("int64"))
    with pytest.raises(EditError, match=message):
        set_shape(model, "preprocess", "x", (4,))
    assert model.serialize() == before
