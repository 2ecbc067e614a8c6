"""`show`: agrees with TensorFlow's own parse, and its text form is stable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import surgery
from conftest import FIXTURE_NAMES, FIXTURES, ROOT, Oracle, run_cli
from surgery.show import show_json, show_text

GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_show_json_agrees_with_tensorflow(oracle: Oracle, name: str) -> None:
    ours = show_json(surgery.load(FIXTURES / name))
    theirs = oracle.ok(op="describe", model=str(FIXTURES / name))["meta_graphs"]
    assert [{k: m[k] for k in ("tags", "signatures")} for m in ours["meta_graphs"]] == theirs


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_show_text_matches_golden(name: str) -> None:
    """Set UPDATE_GOLDEN=1 to rewrite the golden files after rebuilding the fixtures."""
    text = show_text(surgery.load(FIXTURES / name))
    golden = GOLDEN / f"show_{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_show_cli_json_is_the_contract_schema() -> None:
    result = run_cli("show", FIXTURES / "module_multi", "--json", check=True)
    data = json.loads(result.stdout)
    sig = data["meta_graphs"][0]["signatures"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["a"] == {"name": "serving_default_a:0", "dtype": "float32", "shape": [-1, 3]}
    assert sorted(sig["outputs"]) == ["prod", "sum"]
    assert data["meta_graphs"][0]["object_graph"]["signatures"]["masked"]["bound_inputs"][0]["name"] == "w"


def test_show_lists_polymorphic_concrete_functions() -> None:
    data = show_json(surgery.load(FIXTURES / "example_model"))
    functions = {f["path"]: f for f in data["meta_graphs"][0]["object_graph"]["functions"]}
    shapes = [c["inputs"] for c in functions["polymorphic_fn"]["concrete_functions"]]
    assert shapes == [
        "((TensorSpec(shape=(3,), dtype=tf.float32, name='x'),), {})",
        "((TensorSpec(shape=(2, 2), dtype=tf.float32, name='x'),), {})",
    ]
    bound = functions["capture_fn"]["concrete_functions"][0]["bound_inputs"]
    assert [(b["kind"], b["name"]) for b in bound] == [("variable", "weight")]


def test_show_never_needs_more_than_the_proto(tmp_path: Path) -> None:
    """A model whose variables are gone still shows (saved_model_cli would crash loading it)."""
    import shutil

    shutil.copytree(FIXTURES / "module_multi", tmp_path / "m")
    shutil.rmtree(tmp_path / "m" / "variables")
    assert "signature_def['masked']" in run_cli("show", tmp_path / "m", check=True).stdout


def test_show_text_spells_out_terminal_escapes(tmp_path: Path) -> None:
    """A signature key or tensor name holding control characters cannot drive the user's terminal."""
    model = surgery.load(FIXTURES / "module_multi")
    meta = model.proto.meta_graphs[0]
    meta.signature_def["\x1b[31mred\x07"].CopyFrom(meta.signature_def["fixed"])
    meta.signature_def["\x1b[31mred\x07"].inputs["row"].name = "row\r\x1b[2J:0"
    text = show_text(model)
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "signature_def['\\x1b[31mred\\x07']:" in text
    assert "name: row\\r\\x1b[2J:0" in text
    assert (
        show_text(surgery.load(FIXTURES / "module_multi")) == (GOLDEN / "show_module_multi.txt").read_text()
    )


# --- filters, and saved_model_cli's spellings ------------------------------------------------------


def test_show_one_signature_of_one_tag_set() -> None:
    """--signature and --tag-set narrow the output to what the full one says of them."""
    model = FIXTURES / "tf1_two_metagraphs"
    full = json.loads(run_cli("show", model, "--json", check=True).stdout)["meta_graphs"]
    one = json.loads(
        run_cli(
            "show", model, "--json", "--signature", "predict", "--tag-set", "gpu,serve", check=True
        ).stdout
    )
    (gpu,) = [m for m in full if sorted(m["tags"]) == ["gpu", "serve"]]
    assert one["meta_graphs"] == [{**gpu, "signatures": {"predict": gpu["signatures"]["predict"]}}]
    text = run_cli("show", model, "--signature", "predict", check=True).stdout
    assert text.count("signature_def['") == 2 and text.count("signature_def['predict']") == 2


def test_saved_model_cli_spellings_are_taken() -> None:
    model = FIXTURES / "tf1_two_metagraphs"
    ours = run_cli("show", model, "--tag-set", "serve", "--signature", "sparse_sum", check=True).stdout
    theirs = run_cli(
        "show", "--dir", model, "--tag_set", "serve", "--signature_def", "sparse_sum", check=True
    ).stdout
    assert ours == theirs
    assert (
        run_cli("show", "--dir", model, "--all", check=True).stdout
        == run_cli("show", model, check=True).stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--signature", "nope"], "no signature 'nope' in the model: it has predict, preprocess, sparse_sum"),
        (["--tag-set", "tpu"], "no meta graph has tag set 'tpu' (the model has: serve; serve,gpu)"),
        (
            ["--all", "--signature", "predict"],
            "--all shows everything: give it without --signature or --tag-set (see --help)",
        ),
    ],
)
def test_show_filters_refuse_in_one_line(args: list[str], message: str) -> None:
    result = run_cli("show", FIXTURES / "tf1_two_metagraphs", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"savedmodel-surgery: error: {message}\n"


def test_show_needs_one_model() -> None:
    result = run_cli("show")
    assert result.returncode == 2
    assert result.stderr.startswith("savedmodel-surgery: error: give MODEL (or --dir MODEL")
