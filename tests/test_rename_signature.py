"""rename-signature through both loaders: the new key serves the same numbers, the old is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import FIXTURES, LOADERS, TF2_FIXTURES, Oracle, assert_serves, expected_cases, run_cli
from surgery.check import check


def _renamed(
    cases: list[dict[str, Any]], old: str, new: str, tags: list[str] | None = None
) -> list[dict[str, Any]]:
    out = []
    for case in cases:
        if case["signature"] == old and (tags is None or sorted(case.get("tags", ["serve"])) == sorted(tags)):
            case = {**case, "signature": new}
        out.append(case)
    return out


@pytest.mark.parametrize("name", TF2_FIXTURES)
def test_rename_every_signature_of_tf2_fixtures(oracle: Oracle, name: str, tmp_path: Path) -> None:
    cases = expected_cases(name)
    old = cases[0]["signature"]
    out = tmp_path / "out"
    run_cli("rename-signature", FIXTURES / name, old, "renamed", "-o", out, check=True)
    assert check(surgery.load(out)).ok
    renamed = _renamed(cases, old, "renamed")
    assert_serves(oracle, out, renamed)
    gone = [r for loader in LOADERS for r in oracle.run(out, loader, [{**renamed[0], "signature": old}])]
    assert all("error" in r for r in gone)


def test_rename_with_tag_set_touches_one_meta_graph(oracle: Oracle, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_cli(
        "rename-signature",
        FIXTURES / "tf1_two_metagraphs",
        "predict",
        "infer",
        "--tag-set",
        "gpu,serve",
        "-o",
        out,
        check=True,
    )
    metas = {",".join(m.meta_info_def.tags): m for m in surgery.load(out).proto.meta_graphs}
    assert "predict" in metas["serve"].signature_def and "infer" not in metas["serve"].signature_def
    assert "infer" in metas["serve,gpu"].signature_def and "predict" not in metas["serve,gpu"].signature_def
    assert_serves(
        oracle, out, _renamed(expected_cases("tf1_two_metagraphs"), "predict", "infer", ["serve", "gpu"])
    )


def test_rename_without_tag_set_renames_in_every_meta_graph(oracle: Oracle, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_cli(
        "rename-signature", FIXTURES / "tf1_two_metagraphs", "sparse_sum", "row_sums", "-o", out, check=True
    )
    for meta in surgery.load(out).proto.meta_graphs:
        assert "row_sums" in meta.signature_def and "sparse_sum" not in meta.signature_def
    assert_serves(oracle, out, _renamed(expected_cases("tf1_two_metagraphs"), "sparse_sum", "row_sums"))


def test_rename_in_place(oracle: Oracle, tmp_path: Path) -> None:
    import shutil

    model = tmp_path / "m"
    shutil.copytree(FIXTURES / "module_multi", model)
    run_cli("rename-signature", model, "masked", "masked_v2", "--in-place", check=True)
    assert_serves(oracle, model, _renamed(expected_cases("module_multi"), "masked", "masked_v2"))
