"""Values as users type them are taken, values TensorFlow refuses are refused, from every entry point.

Dtypes as TensorFlow, its enum and Python code spell them; shapes with `None` for an unknown dim
in Python; shapes TensorFlow's `TensorShape` refuses (a dim below -1, a rank over 254, dims whose
running product reaches 2^63) refused in one line before anything is written, from Python, the
command line and plans; plan values of the declared types only; a key given twice in a plan
refused.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml

import surgery
from conftest import FIXTURES, run_cli
from surgery import plans
from surgery.errors import EditError
from surgery.tensors import parse_dtype, to_shape

MODEL = FIXTURES / "module_multi"


@pytest.mark.parametrize(
    "spelling", ["float16", "DT_HALF", "half", "tf.float16", "tf.dtypes.float16", "np.float16"]
)
def test_a_dtype_as_python_spells_it(tmp_path: Path, spelling: str) -> None:
    """Every spelling writes the model the canonical name writes."""
    out = tmp_path / "out"
    run_cli("set-dtype", MODEL, "preprocess", "as_float", spelling, "--output-key", "-o", out, check=True)
    with pytest.warns(surgery.SurgeryWarning, match="can lose precision"):
        reference = surgery.set_dtype(surgery.load(MODEL), "preprocess", "as_float", "float16", output=True)
    assert (out / "saved_model.pb").read_bytes() == reference.serialize()


def test_numpy_bool_and_unknown_names() -> None:
    assert parse_dtype("np.bool_") == parse_dtype("bool")
    with pytest.raises(EditError, match=r"unknown dtype 'tf\.floaty': use a TensorFlow dtype name"):
        parse_dtype("tf.floaty")


def test_none_is_an_unknown_dim_in_python() -> None:
    a = surgery.set_shape(surgery.load(MODEL), "fixed", "row", (None, 4))
    b = surgery.set_shape(surgery.load(MODEL), "fixed", "row", [-1, 4])
    assert a.serialize() == b.serialize()


@pytest.mark.parametrize(
    ("shape", "accepted"),
    [
        ([2**63 - 1], True),  # one such dim alone: TensorFlow takes it
        ([2**63 - 1, 3], False),
        ([-1, 2**63 - 1, 3], True),  # TensorFlow stops counting at the first unknown dim
        ([0, 2**63 - 1, 5], True),
        ([2**63 - 1, 5, 0], False),  # counted left to right: the overflow comes before the 0
        ([1] * 254, True),
        ([1] * 255, False),
        ([-5, 4], False),
        ([True, 4], False),
        ([2**63], False),
    ],
)
def test_shapes_as_tensorflow_takes_them(shape: list[int], accepted: bool) -> None:
    if accepted:
        assert to_shape(shape) == tuple(shape)
    else:
        with pytest.raises(EditError, match="bad shape"):
            to_shape(shape)


def test_a_refused_shape_from_the_command_line_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("set-shape", MODEL, "fixed", "row", f"{2**63 - 1},3", "-o", out)
    assert result.returncode == 2
    assert result.stderr == (
        "savedmodel-surgery: error: bad shape (9223372036854775807, 3): its dims multiply to 2^63 or more "
        "elements, which TensorFlow refuses\n"
    )
    assert not out.exists()


def test_a_python_shape_below_minus_one_is_refused() -> None:
    model = surgery.load(MODEL)
    before = model.serialize()
    with pytest.raises(EditError, match=r"bad shape \[-5, 4\]: each dim is an int >= 0, or None"):
        surgery.set_shape(model, "fixed", "row", [-5, 4])
    assert model.serialize() == before


@pytest.mark.parametrize("shape", [b"\x02\x04", bytearray(b"\x04"), memoryview(b"\x04")])
def test_bytes_are_not_a_shape(shape: object) -> None:
    """Bytes iterate as ints, but a shape given as bytes is a mistake, not dims [2, 4]."""
    model = surgery.load(MODEL)
    before = model.serialize()
    with pytest.raises(
        EditError, match=r"bad shape .*: give a list of dims such as \[None, 4\] or \[-1, 4\]$"
    ):
        surgery.set_shape(model, "fixed", "row", shape)  # type: ignore[arg-type]
    assert model.serialize() == before


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"shape": [True, 4]}, "operations[0].shape[0]: Input should be a valid integer"),
        ({"shape": ["4"]}, "operations[0].shape[0]: Input should be a valid integer"),
        ({"shape": [2**63 - 1, 3]}, "operations[0].shape: bad shape (9223372036854775807, 3)"),
        ({"shape": [-1, 4], "output": 1}, "operations[0].output: Input should be a valid boolean"),
    ],
)
def test_plan_values_of_the_declared_types_only(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    plan = tmp_path / "plan.json"
    operation = {"op": "set-shape", "signature": "fixed", "key": "row", **entry}
    plan.write_text(json.dumps({"operations": [operation]}))
    result = run_cli("apply", MODEL, plan, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_a_tag_set_on_an_edit_that_takes_none_is_refused(tmp_path: Path) -> None:
    """set-tags names its meta graph by `old`: a tag_set beside it was dropped without a word."""
    plan = tmp_path / "plan.json"
    operation = {"op": "set-tags", "old": ["serve"], "new": ["serve", "gpu"], "tag_set": ["serve"]}
    plan.write_text(json.dumps({"operations": [operation]}))
    result = run_cli("apply", MODEL, plan, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr == (
        "savedmodel-surgery: error: bad plan: operations[0]: set-tags takes no tag_set (its arguments "
        "name the meta graph it edits): remove it\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "plan.yaml",
            "operations:\n  - {op: set-method, signature: fixed, method: a, method: b}\n",
            "the key 'method' is given twice in one mapping (line 2): keep one",
        ),
        (
            "plan.json",
            '{"operations": [{"op": "set-method", "signature": "fixed", "method": "a", "method": "b"}]}',
            "the key 'method' is given twice in one mapping: keep one",
        ),
    ],
)
def test_a_key_given_twice_in_a_plan_is_refused(tmp_path: Path, name: str, text: str, message: str) -> None:
    plan = tmp_path / name
    plan.write_text(text)
    result = run_cli("apply", MODEL, plan, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr == f"savedmodel-surgery: error: plan {plan}: {message}\n"
    assert not (tmp_path / "out").exists()


def test_yaml_plans_are_read_by_the_c_loader_where_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml")
    assert issubclass(plans._PlanLoader, yaml.CSafeLoader)


def test_a_tag_set_string_is_one_set_of_comma_separated_tags() -> None:
    model = surgery.set_method(surgery.load(MODEL), "fixed", "tensorflow/serving/regress", tag_set="serve")
    assert model.proto.meta_graphs[0].signature_def["fixed"].method_name == "tensorflow/serving/regress"


def test_rename_tensor_checks_the_output_index_exists(tmp_path: Path) -> None:
    model = FIXTURES / "tf1_two_metagraphs"
    result = run_cli("rename-tensor", model, "input_x:1", "images:1", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr == (
        "savedmodel-surgery: error: node 'input_x' (Placeholder) has 1 output(s): there is no tensor "
        "input_x:1; rename input_x:0 (the index follows the node)\n"
    )
    assert not (tmp_path / "out").exists()


def test_set_method_refuses_an_empty_name() -> None:
    with pytest.raises(
        EditError, match=r"^the method name is empty: give one such as tensorflow/serving/predict$"
    ):
        surgery.set_method(surgery.load(MODEL), "fixed", " ")


@pytest.mark.parametrize(
    ("method", "near"),
    [
        ("tensorflow/serving/predcit", "tensorflow/serving/predict"),
        ("tensorflow/serving/regres", "tensorflow/serving/regress"),
        ("tensorflow/serving/classify", None),
        ("my_company/rank", None),
    ],
)
def test_set_method_warns_on_a_near_miss_of_a_serving_name(method: str, near: str | None) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = surgery.set_method(surgery.load(MODEL), "fixed", method)
    assert model.proto.meta_graphs[0].signature_def["fixed"].method_name == method  # custom names stay legal
    said = [str(w.message) for w in caught if issubclass(w.category, surgery.SurgeryWarning)]
    assert said == (
        []
        if near is None
        else [
            f"method {method!r} is not one of TensorFlow Serving's (did you mean {near}?); a custom method "
            "name is legal, but TF Serving's classify and regress APIs will not serve it"
        ]
    )
