"""--dry-run on every edit: the edit is made in memory, its diff printed, and nothing is written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import FIXTURES, tree_bytes
from surgery.cli import main

PLAN = 'operations:\n  - {op: rename-signature, regex: "^(.+)$", new: "v2_\\\\1"}\n'

# (command line after the model, a line the diff must show); the model is a copy of module_multi.
EDITS: dict[str, tuple[list[str], str]] = {
    "rename-signature": (
        ["serving_default", "predict"],
        "'serving_default' signature-renamed: serving_default -> predict",
    ),
    "rename-input": (["masked", "a_dense", "z_dense"], "'masked' input-renamed: a_dense -> z_dense"),
    "rename-output": (["masked", "alpha", "zeta"], "'masked' output-renamed: alpha -> zeta"),
    "remove-signature": (["preprocess"], "'preprocess' signature-removed: preprocess"),
    "copy-signature": (["masked", "masked_alias"], "'masked_alias' signature-added: masked_alias"),
    "set-method": (
        ["preprocess", "tensorflow/serving/regress"],
        "'preprocess' method: tensorflow/serving/predict -> tensorflow/serving/regress",
    ),
    "set-tags": (["serve", "serve,gpu"], "[gpu,serve] meta-graph-added: gpu,serve"),
    "set-shape": (["fixed", "row", "-1,4"], "'fixed' input-shape: row: [1, 4] -> [-1, 4]"),
    "set-dtype": (
        ["preprocess", "as_float", "float16", "--output-key"],
        "'preprocess' output-dtype: as_float: float32 -> float16",
    ),
    "rename-tensor": (
        ["serving_default_a:0", "images:0"],
        "'serving_default' input-tensor: a: serving_default_a:0 -> images:0",
    ),
    "apply": (["plan.yaml"], "'masked' signature-renamed: masked -> v2_masked"),
}


def _snapshot(root: Path) -> tuple[dict[str, bytes], list[str]]:
    """Every file's bytes and every path (directories and temporary names too) under `root`."""
    return tree_bytes(root), sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(FIXTURES / "module_multi", tmp_path / "m")
    (tmp_path / "plan.yaml").write_text(PLAN)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _edit_args(name: str, model: str = "m") -> list[str]:
    args, _ = EDITS[name]
    if name == "apply":
        return ["apply", model, *args]
    return [name, model, *args]


@pytest.mark.parametrize("target", [["-o", "out"], ["--in-place"], []], ids=["output", "in-place", "none"])
@pytest.mark.parametrize("name", sorted(EDITS))
def test_dry_run_writes_nothing_and_prints_the_diff(
    work: Path, capsys: pytest.CaptureFixture[str], name: str, target: list[str]
) -> None:
    before = _snapshot(work)
    status, out, err = _run(capsys, *_edit_args(name), *target, "--dry-run")
    assert status == 0, err
    assert EDITS[name][1] in out
    assert _snapshot(work) == before
    assert not os.path.lexists(work / "out")
    assert err.splitlines()[-1].startswith("dry run: nothing written")


@pytest.mark.parametrize("name", sorted(EDITS))
def test_dry_run_json_is_the_diff_of_the_real_edit(
    work: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    status, out, err = _run(capsys, *_edit_args(name), "--dry-run", "--json")
    assert status == 0, err
    if name == "apply":  # apply --json is the batch summary: one result per model
        (result,) = json.loads(out)["results"]
        preview: list[dict[str, Any]] = result["changes"]
    else:
        data = json.loads(out)
        assert (data["model"], data["output"], data["dry_run"]) == ("m", None, True)
        preview = data["changes"]
    # No lock or journal was left: the real edit runs, and `diff` finds exactly what was previewed.
    status, _, err = _run(capsys, *_edit_args(name), "-o", "out")
    assert status == 0, err
    status, out, _ = _run(capsys, "diff", "m", "out", "--json")
    assert status == 1
    assert json.loads(out)["changes"] == preview


def test_dry_run_in_place_leaves_the_model_editable(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "rename-signature", "m", "fixed", "f2", "--in-place", "--dry-run")[0] == 0
    assert _run(capsys, "rename-signature", "m", "fixed", "f2", "--in-place")[0] == 0
    signatures = json.loads(_run(capsys, "show", "m", "--json")[1])["meta_graphs"][0]["signatures"]
    assert "f2" in signatures and "fixed" not in signatures


def test_batch_dry_run(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(work / "m", work / "n")
    (work / "broken").mkdir()
    before = _snapshot(work)
    status, out, _ = _run(
        capsys, "apply", "m", "n", "broken", "plan.yaml", "--output-root", "root", "--dry-run"
    )
    assert status == 1  # like a real batch: 1 when a model would fail
    assert _snapshot(work) == before
    assert not os.path.lexists(work / "root")
    lines = out.splitlines()
    assert lines[0] == "ok   m -> root/m"
    assert "     [serve] 'fixed' signature-renamed: fixed -> v2_fixed" in lines
    assert "ok   n -> root/n" in lines
    assert any(line.startswith("FAIL broken: ") for line in lines)
    assert lines[-1] == "3 model(s): 2 ok, 1 failed; nothing written (dry run)"
    status, out, _ = _run(capsys, "apply", "m", "n", "plan.yaml", "--dry-run", "--json", "-j", "2")
    assert status == 0
    data = json.loads(out)
    assert data["dry_run"] is True and data["ok"] == 2
    assert [r["output"] for r in data["results"]] == [None, None]
    assert all(len(r["changes"]) == 4 for r in data["results"])
    assert _snapshot(work) == before


def test_batch_dry_run_reports_an_existing_output(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "m_v2").mkdir()
    status, out, _ = _run(capsys, "apply", "m", "plan.yaml", "--suffix", "_v2", "--dry-run")
    assert status == 1
    assert "FAIL m: m_v2 already exists: choose a new directory or replace it (--force, force=True)" in out
    assert _run(capsys, "apply", "m", "plan.yaml", "--suffix", "_v2", "--dry-run", "--force")[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rename-signature", "m", "nope", "x"], "no signature 'nope'"),
        (["rename-signature", "missing", "a", "b"], "missing: no such directory"),
        (["set-shape", "m", "fixed", "row", "-1,5"], "the graph contradicts shape"),
        (["rename-signature", "m", "fixed", "x", "-o", "plan.yaml"], "plan.yaml already exists"),
        (
            ["rename-signature", "m", "fixed", "x", "-o", "out", "--in-place"],
            "give either -o/--output OUT or --in-place",
        ),
        (["rename-signature", "m", "fixed", "x", "-o", "out", "--json"], "--json goes with --dry-run"),
    ],
)
def test_dry_run_refusals_are_one_line_and_write_nothing(
    work: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = _snapshot(work)
    dry = [] if "--json" in args else ["--dry-run"]
    status, out, err = _run(capsys, *args, *dry)
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and message in err, err
    assert _snapshot(work) == before


def test_every_edit_command_has_dry_run() -> None:
    from surgery.cli import cli

    commands: dict[str, Any] = cli.commands  # type: ignore[attr-defined]
    editing = {n for n, c in commands.items() if any(p.name == "in_place" for p in c.params)}
    editing.discard("convert")  # always a new directory; --in-place is only there to be refused
    assert editing == set(EDITS)
    for name in editing:
        assert "dry_run" in [p.name for p in commands[name].params], name
