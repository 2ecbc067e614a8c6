"""The Python API as people call it: a path where a model is expected, a short repr, errors from
the library's own tree in words that fit Python."""

from __future__ import annotations

from pathlib import Path

import pytest

import surgery
from conftest import FIXTURES

MODEL = FIXTURES / "module_multi"


def test_a_path_is_taken_wherever_a_model_is() -> None:
    loaded = surgery.load(MODEL)
    assert surgery.check(str(MODEL)).ok and surgery.check(MODEL).findings == surgery.check(loaded).findings
    assert surgery.diff(MODEL, str(MODEL)) == [] and surgery.graph_diff(MODEL, loaded) == []
    assert surgery.explain(MODEL, "masked").model_dump() == surgery.explain(loaded, "masked").model_dump()
    edited = surgery.rename_signature(str(MODEL), "fixed", "f2")
    assert edited.serialize() == surgery.rename_signature(surgery.load(MODEL), "fixed", "f2").serialize()
    assert (MODEL / "saved_model.pb").read_bytes() == loaded.source  # the edit of a path is in memory


@pytest.mark.parametrize("not_a_model", [42, None, b"my_model"])
def test_anything_else_is_an_edit_error_that_says_what_to_pass(not_a_model: object) -> None:
    with pytest.raises(surgery.EditError) as raised:
        surgery.set_method(not_a_model, "fixed", "m")  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"expected a Model or the path of a SavedModel directory, not {type(not_a_model).__name__}: "
        "pass surgery.load(path) or the path itself"
    )


def test_a_model_prints_in_one_line() -> None:
    text = repr(surgery.load(FIXTURES / "tf1_two_metagraphs"))
    assert text == (
        f"Model({str(FIXTURES / 'tf1_two_metagraphs')!r}, format='pb', meta graphs: "
        "[serve] predict, preprocess, sparse_sum; [serve,gpu] predict, sparse_sum)"
    )


def test_an_existing_output_is_refused_in_words_for_python_too(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(surgery.SavedModelIOError, match=r"already exists: .* \(--force, force=True\)$"):
        surgery.save(surgery.load(MODEL), tmp_path / "out")
