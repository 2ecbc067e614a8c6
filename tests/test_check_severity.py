"""Each `check` code's severity, proven with TensorFlow.

A finding is an `error` when one of TensorFlow's loaders refuses the model or the signature, or
the loaders compute different things; a `warning` when TensorFlow ignores the place that
disagrees. Each case below corrupts module_multi in one place, as the finding describes, asserts
the complete list of (code, severity), and runs every recorded case of the corrupted signature
with the TF2 loader (`tf.saved_model.load(...).signatures[k]`), the v1 session loader and
TensorFlow's C++ `LoadSavedModel` (TensorFlow Serving's loader, which reads the v1 graph and
`signature_def` as the v1 loader does, and gives the same verdicts): for an error, a loader
refuses a case or computes other numbers; for a warning, every loader computes the recorded
outputs.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_check import (
    KEY,
    Corruption,
    _argument_keyword_renamed,
    _bound_input_dangles,
    _call_node_inputs_swapped,
    _call_node_tin,
    _call_node_tout,
    _corrupted,
    _input_tensor_spec_shape,
    _map_child,
    _output_tensor_spec_dtype,
    _placeholder,
    _placeholder_shape,
    _remove_map_child,
    _rename_input_in_signature_def,
    _saved_function,
    _set_output_name,
    _signature_def_input_dtype,
    _wrapper,
    _wrapper_input_shape,
    _wrapper_input_type,
    _wrapper_output_removed,
    _wrapper_removed_from_library,
)

import surgery
from conftest import LOADERS, ROOT, Oracle, assert_outputs, expected_cases, run_cli
from surgery.check import SEVERITIES, check
from surgery.schema import DataType, MetaGraphDef
from surgery.validate import SEVERITIES as VALIDATOR_SEVERITIES

Verdicts = dict[str, str]
SAME = {"tf2": "same", "v1": "same"}
REALWORLD = ROOT.parent / "shared" / "realworld"
HALF_PLUS_THREE = REALWORLD / "tfserving" / "servables__tensorflow__saved_model_half_plus_three__00000123"


# --- corruptions not in test_check's list --------------------------------------------------------


def _rename_output_in_signature_def(meta: MetaGraphDef) -> None:
    outputs = meta.signature_def[KEY].outputs
    outputs["alpha2"].CopyFrom(outputs["alpha"])
    del outputs["alpha"]


def _wrapper_input_removed(meta: MetaGraphDef) -> None:
    del _wrapper(meta).signature.input_arg[1]


def _signature_def_input_shape(meta: MetaGraphDef) -> None:
    meta.signature_def[KEY].inputs["a_dense"].tensor_shape.dim[1].size = 4


def _signature_def_output_dtype(meta: MetaGraphDef) -> None:
    meta.signature_def[KEY].outputs["alpha"].dtype = DataType.DT_DOUBLE


def _signature_def_output_shape(meta: MetaGraphDef) -> None:
    meta.signature_def[KEY].outputs["alpha"].tensor_shape.dim[1].size = 4


def _input_tensor_spec_dtype(meta: MetaGraphDef) -> None:
    kwargs = _saved_function(meta).canonicalized_input_signature.tuple_value.values[1]
    kwargs.dict_value.fields["a_dense"].tensor_spec_value.dtype = DataType.DT_DOUBLE


def _argument_keyword_renamed_without_function_spec(meta: MetaGraphDef) -> None:
    """Without a function spec, the loaded function has only the flat signature to go by."""
    _argument_keyword_renamed(meta)
    node = meta.object_graph_def.nodes[_map_child(meta).node_id]
    node.bare_concrete_function.ClearField("function_spec")


def _placeholder_dtype(meta: MetaGraphDef) -> None:
    _placeholder(meta).attr["dtype"].type = DataType.DT_DOUBLE


EVIDENCE = [
    # --- errors ---
    pytest.param(
        _set_output_name("alpha", "nope:0"),
        [("missing-tensor", "error")],
        {"tf2": "same", "v1": "refused"},
        id="missing-tensor",
    ),
    pytest.param(
        _remove_map_child,
        [("signature-keys", "error")],
        {"tf2": "refused", "v1": "same"},
        id="signature-keys",
    ),
    pytest.param(
        _rename_input_in_signature_def("a_x"),
        [("input-keys", "error"), ("input-keys", "error")],
        {"tf2": "same", "v1": "refused"},  # v1 now wants `a_x`, TF2 still `a_dense`
        id="input-keys",
    ),
    pytest.param(
        _rename_output_in_signature_def,
        [("output-keys", "error"), ("output-keys", "error")],
        {"tf2": "same", "v1": "refused"},  # v1 returns `alpha2`, TF2 `alpha`
        id="output-keys",
    ),
    pytest.param(
        _bound_input_dangles,
        [("dangling-reference", "error")],
        {"tf2": "refused", "v1": "same"},
        id="dangling-reference",
    ),
    pytest.param(
        _wrapper_removed_from_library,
        [("missing-function", "error"), ("missing-function", "error")],
        {"tf2": "refused", "v1": "refused"},
        id="missing-function",
    ),
    pytest.param(
        _wrapper_input_removed,
        # The call node still passes two user values (and the variable) to the wrapper, whose body
        # still reads the removed argument.
        [("wrapper-inputs", "error"), ("call-node", "error"), ("missing-input", "error")],
        {"tf2": "refused", "v1": "refused"},
        id="wrapper-inputs",
    ),
    pytest.param(
        _wrapper_output_removed,
        [("wrapper-outputs", "error"), ("call-node", "error")],
        {"tf2": "refused", "v1": "refused"},
        id="wrapper-outputs",
    ),
    pytest.param(
        _call_node_inputs_swapped,
        [("call-node", "error")],
        {"tf2": "same", "v1": "differs"},
        id="call-node-feeds",
    ),
    pytest.param(
        _wrapper_input_type,
        [("call-node", "error"), ("edge-dtype", "error")],
        {"tf2": "refused", "v1": "refused"},
        id="call-node-wrapper-argument-type",
    ),
    pytest.param(
        _call_node_tout,
        # The TensorInfo still says float32 (a warning); the call node's Tout is the error.
        [("call-output-dtype", "warning"), ("call-node", "error")],
        {"tf2": "same", "v1": "refused"},
        id="call-node-tout",
    ),
    pytest.param(
        _call_node_tin,
        [("call-input-dtype", "error"), ("call-node", "error")],
        {"tf2": "same", "v1": "refused"},
        id="call-input-dtype",
    ),
    pytest.param(
        _placeholder_dtype,
        [("placeholder-dtype", "warning"), ("call-input-dtype", "error")],
        {"tf2": "same", "v1": "refused"},
        id="call-input-dtype-placeholder",
    ),
    pytest.param(
        _placeholder_shape,
        [("placeholder-output-shapes", "error"), ("placeholder-shape", "warning")],
        {"tf2": "same", "v1": "refused"},
        id="placeholder-output-shapes",
    ),
    # --- warnings ---
    pytest.param(
        _signature_def_input_dtype,
        [("placeholder-dtype", "warning"), ("input-dtype", "warning")],
        SAME,  # the v1 loader feeds masked_a_dense by name, whatever the TensorInfo says
        id="placeholder-dtype",
    ),
    pytest.param(
        _signature_def_input_shape,
        [("placeholder-shape", "warning"), ("input-shape", "warning"), ("wrapper-input-shape", "warning")],
        SAME,
        id="placeholder-shape",
    ),
    pytest.param(_input_tensor_spec_shape, [("input-shape", "warning")], SAME, id="input-shape"),
    pytest.param(_input_tensor_spec_dtype, [("input-dtype", "warning")], SAME, id="input-dtype"),
    pytest.param(_output_tensor_spec_dtype, [("output-dtype", "warning")], SAME, id="output-dtype"),
    pytest.param(
        _signature_def_output_dtype,
        [("call-output-dtype", "warning"), ("output-dtype", "warning")],
        SAME,
        id="call-output-dtype",
    ),
    pytest.param(_signature_def_output_shape, [("output-shape", "warning")], SAME, id="output-shape"),
    pytest.param(_wrapper_input_shape, [("wrapper-input-shape", "warning")], SAME, id="wrapper-input-shape"),
    pytest.param(_argument_keyword_renamed, [("argument-keywords", "warning")], SAME, id="argument-keywords"),
    pytest.param(
        _argument_keyword_renamed_without_function_spec,
        [("argument-keywords", "warning")],
        SAME,
        id="argument-keywords-without-function-spec",
    ),
]


def _cases() -> list[dict[str, Any]]:
    return [c for c in expected_cases("module_multi") if c["signature"] == KEY]


def verdicts(oracle: Oracle, model: Path, cases: list[dict[str, Any]]) -> Verdicts:
    """Per loader: `refused` (a case fails), `differs` (other outputs) or `same` (every case)."""
    out = {}
    for loader in LOADERS:
        response = oracle.request(op="run", model=str(model), loader=loader, cases=cases)
        results = response["results"] if response["ok"] else [{"error": response["error"]}]
        verdict = "same"
        for case, result in zip(cases, results, strict=False):
            if "error" in result:
                verdict = "refused"
                break
            try:
                assert_outputs(result, case["outputs"])
            except AssertionError:
                verdict = "differs"
        out[loader] = verdict
    return out


@pytest.mark.parametrize(("corrupt", "findings", "expected"), EVIDENCE)
def test_severity_is_what_tensorflow_does(
    oracle: Oracle, tmp_path: Path, corrupt: Corruption, findings: list[tuple[str, str]], expected: Verdicts
) -> None:
    model = _corrupted(corrupt)
    report = check(model)
    assert sorted((f.code, f.severity) for f in report.findings) == sorted(findings), [
        f.message for f in report.findings
    ]
    assert report.ok == all(severity == "warning" for _, severity in findings)
    out = tmp_path / "corrupted"
    surgery.save(model, out)
    assert verdicts(oracle, out, _cases()) == {**expected, "cc": expected["v1"]}
    if "error" in {severity for _, severity in findings}:
        assert expected != SAME
    else:
        assert expected == SAME


def test_every_code_has_evidence() -> None:
    """Each code of check.SEVERITIES but the validator's (proven in test_validate.py) is proven by
    a case above, with that severity."""
    proven: dict[str, set[str]] = {}
    for param in EVIDENCE:
        for code, severity in param.values[1]:
            if code not in VALIDATOR_SEVERITIES:
                proven.setdefault(code, set()).add(severity)
    wanted = {code: {severity} for code, severity in SEVERITIES.items() if code not in VALIDATOR_SEVERITIES}
    assert proven == wanted


def test_a_renamed_argument_keyword_is_an_alias(oracle: Oracle, tmp_path: Path) -> None:
    """With argument_keywords saying `zzz` for `a_dense`, the TF2 signature takes either name,
    with or without a function spec: TensorFlow computes the same (hence a warning)."""
    zzz = copy.deepcopy(_cases())
    for case in zzz:
        case["inputs"]["zzz"] = case["inputs"].pop("a_dense")
    for corrupt in (_argument_keyword_renamed, _argument_keyword_renamed_without_function_spec):
        out = tmp_path / corrupt.__name__
        surgery.save(_corrupted(corrupt), out)
        for cases in (_cases(), zzz):
            for case, result in zip(cases, oracle.run(out, "tf2", cases), strict=True):
                assert_outputs(result, case["outputs"])


# --- TensorFlow Serving's half_plus_three ------------------------------------------------------


def _realworld_or_skip() -> None:
    if REALWORLD.is_dir():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {REALWORLD} is missing", pytrace=False)
    pytest.skip(f"{REALWORLD} is missing")


def test_half_plus_three_regress_dtype_is_a_warning(oracle: Oracle, tmp_path: Path) -> None:
    """Its regress TensorInfo says DT_FLOAT over the string placeholder tf_example: the v1 loader
    and TensorFlow Serving's C++ loader feed the serialized tf.Examples by name and regress them."""
    _realworld_or_skip()
    report = check(surgery.load(HALF_PLUS_THREE))
    assert [(f.code, f.severity, f.signature) for f in report.findings] == [
        ("placeholder-dtype", "warning", "tensorflow/serving/regress")
    ]
    assert report.ok and (report.errors, report.warnings) == (0, 1)
    examples = [{"x": {"float_list": [2.0]}}, {"x": {"float_list": [-4.0]}}]
    example = {"dtype": "string", "tf_examples": examples}
    case = {"signature": "tensorflow/serving/regress", "inputs": {"inputs": example}}
    regressed = {"dtype": "float32", "shape": [2, 1], "value": [[4.0], [1.0]]}  # 0.5 * x + 3
    for loader in ("v1", "cc"):
        assert oracle.run(HALF_PLUS_THREE, loader, [case]) == [{"outputs": {"outputs": regressed}}]
    assert run_cli("check", HALF_PLUS_THREE).returncode == 0
    assert run_cli("check", "--strict", HALF_PLUS_THREE).returncode == 1


# --- the edit path: a new error refuses, a new warning warns ----------------------------------


def _saved(tmp_path: Path, corrupt: Callable[[MetaGraphDef], None]) -> Path:
    out = tmp_path / "model"
    surgery.save(_corrupted(corrupt), out)
    return out


def test_an_edit_that_copies_a_warning_writes_and_warns(oracle: Oracle, tmp_path: Path) -> None:
    """Copying a signature whose TensorInfo dtype is off copies its two warnings: the edit is
    written, with one line per new warning, and the copy serves."""
    model = _saved(tmp_path, _signature_def_input_dtype)
    out = tmp_path / "out"
    result = run_cli("copy-signature", model, KEY, "masked_copy", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[:-1] == [
        "savedmodel-surgery: warning: the edit leaves a disagreement TensorFlow ignores: [serve] "
        "'masked_copy' placeholder-dtype: input 'a_dense': signature says float64, placeholder "
        "masked_a_dense is float32",
        "savedmodel-surgery: warning: the edit leaves a disagreement TensorFlow ignores: [serve] "
        "'masked_copy' input-dtype: input 'a_dense': signature_def says float64, TF2 TensorSpec float32",
    ]
    report = check(surgery.load(out))
    assert (report.errors, report.warnings) == (0, 4)
    copies = [{**case, "signature": "masked_copy"} for case in _cases()]
    for loader in ("tf2", "v1"):
        for case, served in zip(copies, oracle.run(out, loader, copies), strict=True):
            assert_outputs(served, case["outputs"])


def test_an_edit_that_keeps_a_warning_is_silent(tmp_path: Path) -> None:
    """A warning the model already had is not the edit's: renaming its signature says nothing."""
    model = _saved(tmp_path, _signature_def_input_dtype)
    out = tmp_path / "out"
    result = run_cli("rename-signature", model, KEY, "renamed", "-o", out)
    assert (result.returncode, result.stderr) == (0, f"wrote {out}\n")


def test_an_edit_that_copies_an_error_is_refused(tmp_path: Path) -> None:
    """Copying a signature whose output names no tensor would add an error: refused, nothing written."""
    model = _saved(tmp_path, _set_output_name("alpha", "nope:0"))
    out = tmp_path / "out"
    result = run_cli("copy-signature", model, KEY, "masked_copy", "-o", out)
    assert result.returncode == 2
    refusal = "the edit would leave the model inconsistent ([serve] 'masked_copy' missing-tensor"
    assert refusal in result.stderr
    assert not out.exists()
