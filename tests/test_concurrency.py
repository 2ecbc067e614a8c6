"""Concurrent writers: one wins, the other fails with a clear message; never a mix, never a lost edit.

An in-place edit holds an exclusive advisory lock (flock) on the model directory itself from
reading the model to writing it; a copy (`-o`) holds a shared one on its input. The lock lives on
the directory's own file descriptor, so the model gains no lock file. Outputs are published with
RENAME_NOREPLACE (or swapped with RENAME_EXCHANGE under --force), so two runs writing the same
OUT never clobber or mix each other's files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import surgery
from conftest import FIXTURES, ROOT, copy_fixture, tree_bytes
from crash_runner import finish, start_paused
from fuzzing import check_outcome, run
from surgery import storage
from surgery.check import check

BUSY = "is in use by another savedmodel-surgery process"


def _signatures(model: Path) -> set[str]:
    return set(surgery.load(model).proto.meta_graphs[0].signature_def)


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if storage.is_temporary(p.name))


def test_second_in_place_edit_fails_while_the_first_writes(tmp_path: Path) -> None:
    """A held in the middle of its write: B's in-place edit and a copy from the model are refused."""
    model = copy_fixture("module_multi", tmp_path)
    gate = tmp_path / "gate"
    a = start_paused(
        ["rename-signature", str(model), "fixed", "fixed_a", "--in-place"], pause_at=2, gate=gate
    )
    try:
        b = run(["rename-signature", str(model), "masked", "masked_b", "--in-place"])
        check_outcome(b)
        assert b.status == 2
        assert b.stderr == (
            f"savedmodel-surgery: error: {model} {BUSY} (an in-place edit, or a copy being written from it): "
            "wait for it to finish and retry\n"
        )
        copy = run(["rename-signature", str(model), "masked", "masked_b", "-o", str(tmp_path / "copy")])
        assert copy.status == 2 and BUSY in copy.stderr
        assert not (tmp_path / "copy").exists()
        assert run(["show", str(model)]).status == 0  # reading needs no lock
    finally:
        gate.unlink()
        assert finish(a) == 0
    keys = _signatures(model)
    assert "fixed_a" in keys and "masked" in keys and "masked_b" not in keys
    assert check(surgery.load(model)).ok
    assert _temporaries(model) == []
    # Now that A is done, B goes through.
    assert run(["rename-signature", str(model), "masked", "masked_b", "--in-place"]).status == 0
    assert {"fixed_a", "masked_b"} <= _signatures(model)


def test_in_place_edit_fails_while_a_copy_is_written_from_the_model(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path / "in")
    gate = tmp_path / "gate"
    out = tmp_path / "out"
    a = start_paused(["rename-signature", str(model), "fixed", "x", "-o", str(out)], pause_at=3, gate=gate)
    try:
        b = run(["rename-signature", str(model), "masked", "y", "--in-place"])
        assert b.status == 2 and BUSY in b.stderr
        other = run(["rename-signature", str(model), "masked", "y", "-o", str(tmp_path / "other")])
        assert other.status == 0, other.stderr  # two copies from one model share the lock
    finally:
        gate.unlink()
        assert finish(a) == 0
    assert tree_bytes(model) == tree_bytes(FIXTURES / "module_multi")
    assert "x" in _signatures(out)


def test_racing_in_place_edits_never_lose_one(tmp_path: Path) -> None:
    """Real processes started together: each succeeds or is refused; every success is in the result."""
    model = copy_fixture("module_multi", tmp_path)
    renames = [("fixed", "fixed_1"), ("masked", "masked_2"), ("preprocess", "preprocess_3")]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "surgery", "rename-signature", str(model), old, new, "--in-place"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for old, new in renames
    ]
    keys_wanted = set()
    for (old, new), process in zip(renames, processes, strict=True):
        _, stderr = process.communicate(timeout=60)
        if process.returncode == 0:
            keys_wanted.add(new)
        else:
            assert process.returncode == 2 and BUSY in stderr and stderr.count("\n") == 1, stderr
            keys_wanted.add(old)
    assert keys_wanted <= _signatures(model)
    assert check(surgery.load(model)).ok
    assert _temporaries(model) == []


def _batch(root: Path, models: list[Path], plan: Path, *extra: str) -> subprocess.Popen[str]:
    args = ["apply", *map(str, models), str(plan), "--output-root", str(root), "--json", "--jobs", "2"]
    return subprocess.Popen(
        [sys.executable, "-m", "surgery", *args, *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("force", [False, True], ids=["no-force", "force"])
def test_two_batch_runs_into_one_output_root(tmp_path: Path, force: bool) -> None:
    """Each output is one run's complete result; without --force exactly one run writes each."""
    fleet = tmp_path / "fleet"
    models = [Path(shutil.copytree(FIXTURES / "module_multi", fleet / f"m{i}")) for i in range(6)]
    plan = tmp_path / "plan.yaml"
    plan.write_text("operations:\n  - {op: rename-signature, old: fixed, new: fixed_v2}\n")
    root = tmp_path / "root"
    root.mkdir()
    extra = ["--force"] if force else []
    runs = [_batch(root, models, plan, *extra), _batch(root, models, plan, *extra)]
    summaries = []
    for process in runs:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode in (0, 1), stderr
        summaries.append(json.loads(stdout))
    for model in models:
        results = [r for s in summaries for r in s["results"] if r["model"] == str(model)]
        written = [r for r in results if r["ok"]]
        if force:
            assert len(written) == 2, results
        else:
            assert len(written) == 1 and all("already exists" in r["error"] for r in results if not r["ok"])
        out = root / model.name
        assert "fixed_v2" in _signatures(out) and check(surgery.load(out)).ok
        assert sorted(p.name for p in out.iterdir()) == ["fingerprint.pb", "saved_model.pb", "variables"]
    assert sorted(p.name for p in root.iterdir()) == sorted(m.name for m in models)


def test_an_output_root_another_run_creates_meanwhile_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run that finds --output-root missing and then loses the race to create it goes on into it."""
    root = tmp_path / "root"
    real_makedirs = os.makedirs

    def raced(path: str, *args: object, **kwargs: object) -> None:
        real_makedirs(path)  # the other run wins
        raise FileExistsError(17, "File exists", path)

    monkeypatch.setattr(os, "makedirs", raced)
    plan = tmp_path / "plan.yaml"
    plan.write_text("operations:\n  - {op: set-method, signature: fixed, method: x/y}\n")
    outcome = run(["apply", str(FIXTURES / "module_multi"), str(plan), "--output-root", str(root)])
    check_outcome(outcome)
    assert outcome.status == 0, outcome.stderr
    assert (
        surgery.load(root / "module_multi").proto.meta_graphs[0].signature_def["fixed"].method_name == "x/y"
    )
