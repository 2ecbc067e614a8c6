"""The `cc` oracle loader (TensorFlow's C++ `LoadSavedModel`, as TensorFlow Serving loads models)
agrees with the Python v1 session loader on every committed fixture, refuses what TensorFlow's C++
code refuses with TensorFlow's own message, and a C++ CHECK failure costs one request, not the run.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from signature_cases import assert_serves_all

from conftest import (
    FIXTURE_NAMES,
    FIXTURES,
    ORACLE_DIR,
    TF_PYTHON,
    Oracle,
    assert_outputs,
    case_loaders,
    expected_cases,
)
from surgery.schema import DataType, MetaGraphDef, SavedModel

Cases = list[dict[str, Any]]


def _cc_cases(name: str) -> Cases:
    """The fixture's expected cases the C++ loader is for (every case the v1 loader is for)."""
    return [c for c in expected_cases(name) if "cc" in case_loaders(c)]


def _variant(src: Path, dest: Path, mutate: Callable[[MetaGraphDef], None]) -> Path:
    """A copy of the model in `src` with `mutate` applied to every meta graph of saved_model.pb."""
    shutil.copytree(src, dest)
    saved_model = SavedModel.FromString((dest / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        mutate(meta_graph)
    (dest / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    (dest / "fingerprint.pb").unlink(missing_ok=True)  # its checksum no longer matches
    return dest


def _node(meta_graph: MetaGraphDef, name: str) -> Any:
    return next(n for n in meta_graph.graph_def.node if n.name == name)


def _tf1_serve_cases() -> Cases:
    """tf1_two_metagraphs' cases in the `serve` tag set: predict, preprocess, sparse_sum."""
    return [c for c in _cc_cases("tf1_two_metagraphs") if c.get("tags") == ["serve"]]


# --- agreement -----------------------------------------------------------------------------------


def test_the_cc_server_never_imports_tensorflow(oracle: Oracle) -> None:
    pong = oracle.ok(op="ping", loader="cc")
    assert pong == {"ok": True, "tf_version": "2.21.0", "python_tensorflow": False}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_cc_gives_what_v1_gives_on_every_fixture(oracle: Oracle, name: str) -> None:
    """Every recorded case, in one request per loader: identical JSON, and the recorded outputs."""
    cases = _cc_cases(name)
    assert cases
    cc = oracle.run(FIXTURES / name, "cc", cases)
    assert cc == oracle.run(FIXTURES / name, "v1", cases)
    for case, result in zip(cases, cc, strict=True):
        assert_outputs(result, case["outputs"])


def test_the_fixture_cases_feed_strings_sparse_and_ragged_inputs() -> None:
    """The agreement above covers every kind of input the cases can give."""
    specs = [spec for name in FIXTURE_NAMES for case in _cc_cases(name) for spec in case["inputs"].values()]
    assert any(spec["dtype"] == "string" for spec in specs)
    assert any("sparse" in spec for spec in specs)  # coo_sparse (TF1) and TF2's sp, sp_1, sp_2
    assert any("ragged" in spec for spec in specs)
    assert any(spec["dtype"] == "int64" and "value" in spec for spec in specs)  # composites as keys


def test_cc_rebuilds_sparse_and_ragged_outputs(oracle: Oracle, tmp_path: Path) -> None:
    """A `coo_sparse` and a `composite_tensor` (RaggedTensorSpec) output come back as v1 gives them."""
    path = tmp_path / "composites"
    cases: Cases = oracle.ok(op="build", kind="composites", model=str(path))["cases"]
    outputs = cases[0]["outputs"]
    assert "sparse" in outputs["sp"] and "ragged" in outputs["rg"]
    assert oracle.run(path, "cc", cases) == oracle.run(path, "v1", cases)
    assert_serves_all(oracle, path, cases)


def test_a_dtype_other_than_the_graph_tensors_is_refused_by_the_session(oracle: Oracle) -> None:
    """The C++ session refuses the feed itself (v1 refuses it before Session.run would convert)."""
    case = copy.deepcopy(next(c for c in _cc_cases("module_multi") if c["signature"] == "preprocess"))
    case["inputs"]["x"]["dtype"] = "int64"
    model = FIXTURES / "module_multi"
    assert oracle.run(model, "cc", [case]) == [
        {"error": "InvalidArgumentError: Expects arg[0] to be int32 but int64 is provided"}
    ]
    assert oracle.run(model, "v1", [case]) == [
        {"error": "TypeError: preprocess_x:0 is int32 in the graph; the case feeds int64"}
    ]


# --- refusals ------------------------------------------------------------------------------------


def test_a_corrupted_op_attr_is_refused_with_tensorflows_message(oracle: Oracle, tmp_path: Path) -> None:
    """MatMul's T says int32 while its inputs are float: the C++ session's graph refuses to build."""

    def corrupt(meta_graph: MetaGraphDef) -> None:
        _node(meta_graph, "MatMul").attr["T"].type = DataType.Value("DT_INT32")

    model = _variant(FIXTURES / "tf1_two_metagraphs", tmp_path / "bad_attr", corrupt)
    message = "Input 0 of node MatMul was passed float from input_x:0 incompatible with expected int32."
    cases = _tf1_serve_cases()
    assert oracle.run(model, "cc", cases) == [{"error": f"InvalidArgumentError: {message}"}] * len(cases)
    assert oracle.run(model, "v1", cases) == [{"error": f"ValueError: {message}"}] * len(cases)


def test_a_constant_with_a_negative_dim_is_refused_by_the_loader(oracle: Oracle, tmp_path: Path) -> None:
    """The C++ loader's check of saved constants refuses it before the session is made."""

    def corrupt(meta_graph: MetaGraphDef) -> None:
        value = _node(meta_graph, "weights/Initializer/initial_value").attr["value"].tensor
        value.tensor_shape.dim[0].size = -5

    model = _variant(FIXTURES / "tf1_two_metagraphs", tmp_path / "negative_dim", corrupt)
    cases = _tf1_serve_cases()
    assert oracle.run(model, "cc", cases) == [
        {
            "error": 'FailedPreconditionError: Saved model contains node "weights/Initializer/initial_value" '
            '(op "Const") which initializes from a tensor with -1 elements'
        }
    ] * len(cases)
    v1 = oracle.run(model, "v1", cases)
    assert all(r["error"].startswith("ValueError: Shape [-5,2] is not fully defined for ") for r in v1)


def test_a_node_pinned_to_a_gpu_is_refused_on_a_cpu_only_machine(oracle: Oracle, tmp_path: Path) -> None:
    """TensorFlow's default C++ session options do not place softly; Python's v1 session (TF2's
    default config) moves the node to the CPU and serves."""

    def pin(meta_graph: MetaGraphDef) -> None:
        _node(meta_graph, "MatMul").device = "/device:GPU:0"

    model = _variant(FIXTURES / "tf1_two_metagraphs", tmp_path / "gpu", pin)
    cases = _tf1_serve_cases()
    message = (
        "InvalidArgumentError: Cannot assign a device for operation MatMul: {{node MatMul}} was "
        "explicitly assigned to /device:GPU:0 but available devices are "
        "[ /job:localhost/replica:0/task:0/device:CPU:0 ]. "
        "Make sure the device specification refers to a valid device.\n\t [[MatMul]]"
    )
    assert oracle.run(model, "cc", cases) == [{"error": message}] * len(cases)
    assert oracle.run(model, "v1", cases) == oracle.run(FIXTURES / "tf1_two_metagraphs", "v1", cases)


def test_a_signature_naming_tensors_not_in_the_graph(oracle: Oracle, tmp_path: Path) -> None:
    """The C++ loader loads it (signatures are not checked at load); running names what is missing.

    The C API addresses a tensor through an operation of the imported graph, so a missing name is
    refused before TensorFlow sees it, with the message Python's graph gives for it.
    """

    def corrupt(meta_graph: MetaGraphDef) -> None:
        meta_graph.signature_def["predict"].outputs["y"].name = "nope:0"
        meta_graph.signature_def["sparse_sum"].inputs["sp"].coo_sparse.values_tensor_name = "ghost:3"

    model = _variant(FIXTURES / "tf1_two_metagraphs", tmp_path / "missing", corrupt)
    cases = _tf1_serve_cases()
    assert [c["signature"] for c in cases] == ["predict", "preprocess", "sparse_sum"]
    nope = "The name 'nope:0' refers to a Tensor which does not exist. The operation, 'nope', does not exist"
    ghost = (
        "The name 'ghost:3' refers to a Tensor which does not exist. The operation, 'ghost', does not exist"
    )
    cc = oracle.run(model, "cc", cases)
    assert cc[0] == {"error": f'KeyError: "{nope} in the graph."'}
    assert cc[1] == oracle.run(FIXTURES / "tf1_two_metagraphs", "cc", cases)[1]
    assert cc[2] == {"error": f'KeyError: "{ghost} in the graph."'}
    v1 = oracle.run(model, "v1", cases)
    fetch = "Argument `fetch` = nope:0 cannot be interpreted as a Tensor."
    assert v1[0] == {"error": f'ValueError: {fetch} ("{nope} in the graph.")'}
    assert v1[1:] == cc[1:]


def test_unknown_requests_are_errors_and_the_server_survives(oracle: Oracle) -> None:
    started = oracle.cc.starts
    assert oracle.request(op="describe", loader="cc", model=str(FIXTURES / "module_multi")) == {
        "ok": False,
        "error": "ValueError: unknown op 'describe'",
    }
    missing = oracle.run(FIXTURES / "no_such_model", "cc", _cc_cases("module_multi")[:1])
    assert missing[0]["error"].startswith(
        "NotFoundError: Could not find SavedModel .pb or .pbtxt at supplied"
    )
    assert oracle.run(FIXTURES / "example_model", "cc", _cc_cases("example_model"))[0]["outputs"]
    assert oracle.cc.starts == started


# --- crashes -------------------------------------------------------------------------------------


def test_a_check_failure_fails_one_request_and_the_server_restarts(oracle: Oracle, tmp_path: Path) -> None:
    """A constant of 2**40 x 2**40 elements: the C++ loader's shape CHECK aborts the process (the v1
    loader refuses the graph with a ValueError). The client says so and starts a new server."""

    def corrupt(meta_graph: MetaGraphDef) -> None:
        value = _node(meta_graph, "weights/Initializer/initial_value").attr["value"].tensor
        for dim in value.tensor_shape.dim:
            dim.size = 2**40

    model = _variant(FIXTURES / "tf1_two_metagraphs", tmp_path / "huge", corrupt)
    cases = _tf1_serve_cases()
    v1 = oracle.run(model, "v1", cases)
    assert all(
        r["error"].startswith("ValueError: Shape [1099511627776,1099511627776] is too large") for r in v1
    )

    oracle.ok(op="ping", loader="cc")
    started = oracle.cc.starts
    crashed = oracle.request(op="run", model=str(model), loader="cc", cases=cases)
    assert crashed == {
        "ok": False,
        "error": "OracleCrash: cc_oracle.py died (exit -6) answering the request: "
        "tensor_shape.cc:424] Check failed: 0 <= new_num_elements (0 vs. -1)",
    }
    fixture = FIXTURES / "tf1_two_metagraphs"
    assert oracle.run(fixture, "cc", cases) == oracle.run(fixture, "v1", cases)
    assert oracle.cc.starts == started + 1


@pytest.mark.usefixtures("oracle")  # skips, or fails under CI, without .venv-tf
def test_once_mode_writes_one_json_line_and_nothing_else() -> None:
    """TensorFlow's start-up noise goes to stderr; stdout is the protocol stream alone."""
    model = str(FIXTURES / "lookup_asset")
    request = {"op": "run", "model": model, "loader": "cc", "cases": _cc_cases("lookup_asset")}
    result = subprocess.run(
        [str(TF_PYTHON), str(ORACLE_DIR / "cc_oracle.py"), "once", json.dumps(request)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "CUDA_VISIBLE_DEVICES": ""},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    response = json.loads(result.stdout)
    assert response["ok"] and "outputs" in response["results"][0]
    assert result.stderr  # TensorFlow did log, elsewhere
