"""Batch runs: one plan over a fleet of models, in parallel workers, with one kind failing on purpose.

The fleet is COPIES copies of every fixture model. The plan renames `serving_default` to `serve`,
then prefixes every key with `v2_`; keras_functional already has a `serve` signature, so its first
operation is refused and its copies must fail without stopping (or touching) the others.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import surgery
from conftest import (
    FIXTURE_NAMES,
    FIXTURES,
    ROOT,
    Oracle,
    assert_serves,
    copy_fixture,
    expected_cases,
    run_cli,
    tree_bytes,
)
from surgery import batch as batch_module
from surgery import storage
from surgery.batch import Target, _RealPaths, apply_plan, batch_targets
from surgery.check import check
from surgery.errors import SavedModelIOError
from surgery.plans import load_plan
from surgery.runner import EditResult
from surgery.signatures import RESERVED_KEYS
from surgery.storage import group as storage_group

COPIES = 8
FAILING = "keras_functional"
FAILURE = "operations[0] (rename-signature): regex maps 'serving_default' onto the existing signature 'serve'"
PLAN = """\
operations:
  - {op: rename-signature, regex: "^serving_default$", new: serve}
  - {op: rename-signature, regex: "^(.+)$", new: "v2_\\\\1"}
"""
PREFIX = "savedmodel-surgery: error: "


def _renamed(key: str) -> str:
    return key if key in RESERVED_KEYS else "v2_" + ("serve" if key == "serving_default" else key)


def _kind(model: Path) -> str:
    return model.name.rsplit("_", 1)[0]


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    root.mkdir()
    for name in FIXTURE_NAMES:
        for i in range(COPIES):
            shutil.copytree(FIXTURES / name, root / f"{name}_{i}")
    return root


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def _models(fleet: Path) -> list[Path]:
    return sorted(p for p in fleet.iterdir() if p.is_dir())


def assert_edited(out: Path, kind: str) -> None:
    """`out` is the plan's result for a model of `kind`: check clean, every key renamed as planned."""
    edited = surgery.load(out)
    report = check(edited)
    assert report.ok, (out, report.findings)
    source = surgery.load(FIXTURES / kind).proto.meta_graphs
    assert len(edited.proto.meta_graphs) == len(source)
    for before, after in zip(source, edited.proto.meta_graphs, strict=True):
        assert list(after.meta_info_def.tags) == list(before.meta_info_def.tags)
        assert sorted(after.signature_def) == sorted(map(_renamed, before.signature_def)), out
    # Everything but the model file and its fingerprint is carried over as it was.
    others = {k: v for k, v in tree_bytes(out).items() if k not in ("saved_model.pb", "fingerprint.pb")}
    assert others == {
        k: v for k, v in tree_bytes(FIXTURES / kind).items() if k not in ("saved_model.pb", "fingerprint.pb")
    }


def assert_untouched(model: Path) -> None:
    assert tree_bytes(model) == tree_bytes(FIXTURES / _kind(model)), f"{model} was modified"


def assert_usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(PREFIX), line
    return line.removeprefix(PREFIX)


def _snapshot(root: Path) -> tuple[list[str], dict[str, bytes]]:
    """Every entry under `root` (directories too) and every file's bytes."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")), tree_bytes(root)


def _renamed_cases(kind: str) -> list[dict[str, Any]]:
    return [{**case, "signature": _renamed(case["signature"])} for case in expected_cases(kind)]


def test_a_fleet_under_an_output_root(oracle: Oracle, fleet: Path, plan: Path, tmp_path: Path) -> None:
    """A quoted glob, expanded by the tool; every output checked, a few run in TensorFlow."""
    out = tmp_path / "out"
    result = run_cli("apply", f"{fleet}/*", plan, "--output-root", out, "-j", "2")
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    models = _models(fleet)
    assert len(models) == COPIES * len(FIXTURE_NAMES) >= 50
    lines = result.stdout.splitlines()
    assert len(lines) == len(models) + 1
    failed = [m for m in models if _kind(m) == FAILING]
    assert lines[-1] == f"{len(models)} model(s): {len(models) - len(failed)} written, {len(failed)} failed"
    for model, line in zip(models, lines, strict=False):
        assert_untouched(model)
        if model in failed:
            assert line == f"FAIL {model}: {FAILURE}"
            assert not (out / model.name).exists()
        else:
            assert line == f"ok   {model} -> {out / model.name}"
            assert_edited(out / model.name, _kind(model))
    assert sorted(p.name for p in out.iterdir()) == sorted(m.name for m in models if m not in failed)
    for kind in FIXTURE_NAMES:
        if kind != FAILING:
            assert_serves(oracle, out / f"{kind}_0", _renamed_cases(kind))


def test_json_summary_with_a_suffix(fleet: Path, plan: Path) -> None:
    """Paths as a shell would expand them; results in the order given."""
    models = _models(fleet)[::-1]
    result = run_cli("apply", *models, plan, "--suffix", "_v2", "--json", "-j", "2")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    failed = [m for m in models if _kind(m) == FAILING]
    assert (summary["ok"], summary["failed"]) == (len(models) - len(failed), len(failed))
    assert [r["model"] for r in summary["results"]] == [str(m) for m in models]
    for model, entry in zip(models, summary["results"], strict=True):
        assert_untouched(model)
        seconds = entry.pop("seconds")  # the runner's time for the model, failed or not
        assert isinstance(seconds, float) and seconds > 0
        output = Path(f"{model}_v2")
        if model in failed:
            assert entry == {
                "model": str(model),
                "output": None,
                "ok": False,
                "changed": None,
                "error": FAILURE,
                "warnings": [],
            }
            assert not output.exists()
        else:
            assert entry == {
                "model": str(model),
                "output": str(output),
                "ok": True,
                "changed": True,
                "error": None,
                "warnings": [],
            }
            assert_edited(output, _kind(model))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_in_place(oracle: Oracle, fleet: Path, plan: Path, jobs: str) -> None:
    """Grouped: in one process, or the workers write the new files and the parent swaps them in."""
    result = run_cli("apply", f"{fleet}/*", plan, "--in-place", "-j", jobs)
    assert result.returncode == 1, result.stderr
    for model in _models(fleet):
        if _kind(model) == FAILING:
            assert f"FAIL {model}: {FAILURE}" in result.stdout
            assert_untouched(model)
        else:
            assert f"ok   {model} -> {model}\n" in result.stdout
            assert_edited(model, _kind(model))
    assert not [p for p in fleet.rglob("*") if "surgery-" in p.name]  # no temporary files left
    assert_serves(oracle, fleet / "module_multi_3", _renamed_cases("module_multi"))


def test_all_written_exits_0_in_one_process_or_several(fleet: Path, plan: Path, tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = run_cli(
            "apply", f"{fleet}/module_multi_*", f"{fleet}/tf1_*", plan, "--output-root", out, "-j", jobs
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == f"{2 * COPIES} model(s): {2 * COPIES} written, 0 failed"
        for model in [*fleet.glob("module_multi_*"), *fleet.glob("tf1_*")]:
            assert_edited(out / model.name, _kind(model))


def test_globs_are_expanded_once_and_taken_literally_when_a_file_has_that_name(
    fleet: Path, plan: Path, tmp_path: Path
) -> None:
    odd = shutil.copytree(FIXTURES / "module_multi", tmp_path / "odd[1]")
    result = run_cli(
        "apply", f"{fleet}/module_multi_*", fleet / "module_multi_0", odd, plan, "--suffix", ".x"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{COPIES + 1} model(s): {COPIES + 1} written, 0 failed"
    assert_edited(tmp_path / "odd[1].x", "module_multi")
    assert len(list(fleet.glob("*.x"))) == COPIES
    nothing = run_cli("apply", f"{fleet}/nope_*", fleet / "module_multi_0", plan, "--suffix", ".y")
    assert assert_usage_error(nothing) == f"no model matches '{fleet}/nope_*': check the pattern"
    assert not list(fleet.glob("*.y"))


def test_output_root_collision_is_refused_upfront(plan: Path, tmp_path: Path) -> None:
    for side in ("a", "b"):
        shutil.copytree(FIXTURES / "module_multi", tmp_path / side / "model")
    out = tmp_path / "out"
    result = run_cli("apply", tmp_path / "a" / "model", tmp_path / "b" / "model", plan, "--output-root", out)
    message = assert_usage_error(result)
    assert message == (
        f"{tmp_path / 'a' / 'model'} and {tmp_path / 'b' / 'model'} would both be written to "
        f"{out / 'model'}: rename one, or use --suffix"
    )
    assert not out.exists()


def test_an_output_that_is_another_input_is_refused(fleet: Path, plan: Path) -> None:
    renamed = fleet / "module_multi_0_v2"
    shutil.copytree(FIXTURES / "module_multi", renamed)
    result = run_cli("apply", fleet / "module_multi_0", renamed, plan, "--suffix", "_v2", "--force")
    assert "is the input" in assert_usage_error(result)
    assert_untouched(fleet / "module_multi_0")
    assert tree_bytes(renamed) == tree_bytes(FIXTURES / "module_multi")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-o", "OUT"], "-o/--output takes one model, not 3: use --suffix, --output-root or --in-place"),
        ([], "give one of --suffix SUFFIX, --output-root DIR or --in-place (or -o OUT for one model)"),
        (["--suffix", "_x", "--in-place"], "give one of --suffix SUFFIX, --output-root DIR or --in-place"),
        (["--suffix", ""], "Invalid value for --suffix: '': give a non-empty name without '/'"),
        (["--suffix", "_x", "-j", "0"], "0 is not in the range x>=1"),
    ],
)
def test_usage_errors_touch_nothing(fleet: Path, plan: Path, options: list[str], message: str) -> None:
    before = _snapshot(fleet.parent)
    result = run_cli(
        "apply",
        f"{fleet}/composite_[0-2]",
        plan,
        *[fleet.parent / "OUT" if o == "OUT" else o for o in options],
    )
    assert message in assert_usage_error(result)
    assert _snapshot(fleet.parent) == before


def test_the_last_path_must_be_the_plan(fleet: Path) -> None:
    result = run_cli(
        "apply", fleet / "composite_0", fleet / "composite_1", fleet / "composite_2", "--in-place"
    )
    assert assert_usage_error(result) == (
        f"PLAN {fleet / 'composite_2'} is a directory: the last argument must be the plan file (see --help)"
    )


@pytest.mark.parametrize("mode", [["--output-root", "OUT"], ["--suffix", "_v2"], ["--in-place"]])
def test_a_bad_plan_writes_nothing(fleet: Path, tmp_path: Path, mode: list[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("operations:\n  - {op: set-method, signature: serving_default}\n")
    before = _snapshot(tmp_path)
    result = run_cli("apply", f"{fleet}/*", bad, *[tmp_path / "out" if m == "OUT" else m for m in mode])
    assert assert_usage_error(result) == "bad plan: operations[0].method: Field required"
    assert _snapshot(tmp_path) == before


def test_the_single_model_form_is_unchanged(plan: Path, tmp_path: Path) -> None:
    """One model and -o or --in-place: `wrote OUT` on stderr, and a refused plan is exit 2."""
    out = tmp_path / "out"
    result = run_cli("apply", FIXTURES / "module_multi", plan, "-o", out)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", f"wrote {out}\n")
    assert_edited(out, "module_multi")
    refused = run_cli("apply", FIXTURES / FAILING, plan, "-o", tmp_path / "refused")
    assert assert_usage_error(refused) == FAILURE
    assert not (tmp_path / "refused").exists()
    neither = run_cli("apply", FIXTURES / "module_multi", plan)
    assert assert_usage_error(neither) == "give either -o/--output OUT or --in-place (see --help)"


def test_a_progress_bar_on_a_terminal(fleet: Path, plan: Path, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "surgery",
            "apply",
            f"{fleet}/module_multi_*",
            plan,
            "--output-root",
            tmp_path / "o",
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
        cwd=ROOT,
        text=True,
    )
    os.close(follower)
    terminal = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not select.select([leader], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert b"apply" in terminal and b"100%" in terminal
    assert stdout.splitlines()[-1] == f"{COPIES} model(s): {COPIES} written, 0 failed"


def test_library_api(fleet: Path, tmp_path: Path) -> None:
    """apply_plan: results in the targets' order, one callback each, the same in one process or two."""
    (tmp_path / "plan.yaml").write_text(PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    models = [str(m) for m in _models(fleet) if _kind(m) in ("module_multi", FAILING)]
    runs: list[list[EditResult]] = []
    for jobs in (1, 2):
        seen: list[EditResult] = []
        targets = batch_targets(models, output_root=str(tmp_path / f"out{jobs}"))
        (tmp_path / f"out{jobs}").mkdir()
        results = apply_plan(plan, targets, jobs=jobs, on_result=seen.append)
        assert sorted(r.model for r in seen) == sorted(models)
        assert [r.model for r in results] == models
        runs.append(results)
    assert [(r.ok, r.error) for r in runs[0]] == [(r.ok, r.error) for r in runs[1]]
    assert [r.ok for r in runs[0]] == [_kind(Path(m)) != FAILING for m in models]
    assert batch_targets(["a/m/", "b"], suffix=".x") == [Target("a/m/", "a/m.x"), Target("b", "b.x")]
    with pytest.raises(SavedModelIOError, match="would both be written to"):
        batch_targets(["a/m", "b/m"], output_root="out")


def test_warnings_of_each_model_are_in_its_summary_line(tmp_path: Path) -> None:
    """A lossy cast warns once per model, on that model's line (and in --json), not from the workers."""
    models = [copy_fixture("module_multi", tmp_path / str(i)) for i in range(3)]
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "operations:\n  - {op: set-dtype, signature: fixed, key: out, dtype: float16, output: true}\n"
    )
    result = run_cli("apply", *models, plan, "--suffix", "_half", "-j", "2")
    assert result.returncode == 0, result.stderr
    warning = "output 'out' of 'fixed': the inserted Cast from float32 to float16 can lose precision or range"
    assert result.stdout.splitlines() == [
        *(f"ok   {m} -> {m}_half (warning: {warning})" for m in models),
        "3 model(s): 3 written, 0 failed",
    ]
    assert "warning" not in result.stderr
    summary = json.loads(run_cli("apply", *models, plan, "--suffix", "_h2", "--json").stdout)
    assert [r["warnings"] for r in summary["results"]] == [[warning]] * 3


def test_a_copy_the_group_cannot_publish_fails_alone(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An output that appears between a model's write and its group's commit: that model's result
    is the error `save` gives alone, and the rest of the group is published."""
    (tmp_path / "plan.yaml").write_text(PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    models = [str(m) for m in _models(fleet) if _kind(m) == "module_multi"][:3]
    root = tmp_path / "out"
    root.mkdir()
    targets = batch_targets(models, output_root=str(root))
    taken = Path(targets[1].output or "")
    commit = storage.CommitGroup.commit

    def another_writer_first(group: storage.CommitGroup) -> None:
        assert len(group.staged) == 3, "the three copies are one group"
        taken.mkdir()
        commit(group)

    monkeypatch.setattr(storage.CommitGroup, "commit", another_writer_first)
    results = apply_plan(plan, targets, jobs=1)
    assert [(r.ok, r.output) for r in results] == [
        (True, targets[0].output),
        (False, None),
        (True, targets[2].output),
    ]
    assert results[1].error == (
        f"{taken} already exists (another run wrote it meanwhile): choose a new directory "
        "or replace it (--force, force=True)"
    )
    assert list(taken.iterdir()) == []
    for result in (results[0], results[2]):
        assert_edited(Path(result.output or ""), "module_multi")


def test_workers_stage_and_the_parent_makes_durable_and_publishes(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers, no worker waits on the disk: every sync and rename is the parent's, and a
    copy it cannot publish (its output appeared meanwhile) fails alone, as in one process."""
    (tmp_path / "plan.yaml").write_text(PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    models = [str(m) for m in _models(fleet) if _kind(m) == "module_multi"]
    root = tmp_path / "out"
    root.mkdir()
    targets = batch_targets(models, output_root=str(root))
    taken = Path(targets[1].output or "")
    log = tmp_path / "calls.log"
    make_durable, publish = storage_group.make_durable, storage_group.publish

    def logged(name: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with log.open("a") as f:  # from any process: the workers are forked
                f.write(f"{name} {os.getpid()}\n")
            if name == "publish" and args[1] == taken:
                taken.mkdir(exist_ok=True)
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(storage_group, "make_durable", logged("sync", make_durable))
    monkeypatch.setattr(storage_group, "publish", logged("publish", publish))
    results = apply_plan(plan, targets, jobs=2)
    calls = [line.split() for line in log.read_text().splitlines()]
    assert {pid for _, pid in calls} == {str(os.getpid())}
    assert [name for name, _ in calls].count("publish") == len(models)
    assert 1 <= [name for name, _ in calls].count("sync") <= len(models)
    assert [(r.ok, r.output) for r in results] == [
        (i != 1, t.output if i != 1 else None) for i, t in enumerate(targets)
    ]
    assert results[1].error == (
        f"{taken} already exists (another run wrote it meanwhile): choose a new directory "
        "or replace it (--force, force=True)"
    )
    assert list(taken.iterdir()) == []
    for result in results[:1] + results[2:]:
        assert_edited(Path(result.output or ""), "module_multi")
    assert sorted(p.name for p in root.iterdir()) == sorted(Path(t.output or "").name for t in targets)


def test_a_worker_that_dies_fails_its_models_and_publishes_nothing_half_done(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-batch (out of memory, kill -9): the models not finished fail with one
    line each, the ones published before are complete, and a rerun cleans up and finishes."""
    import surgery.runner as runner

    (tmp_path / "plan.yaml").write_text(PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    models = [str(m) for m in _models(fleet) if _kind(m) == "module_multi"]
    fatal = models[len(models) // 2]
    edit_model = runner._edit_and_save

    def dies_on_one(path: str, *args: Any, **kwargs: Any) -> tuple[Path, bool]:
        if path == fatal:
            os._exit(9)  # in the worker: as a kill -9 would
        return edit_model(path, *args, **kwargs)

    monkeypatch.setattr(runner, "_edit_and_save", dies_on_one)
    root = tmp_path / "out"
    root.mkdir()
    targets = batch_targets(models, output_root=str(root))
    results = apply_plan(plan, targets, jobs=2)
    failed = [r for r in results if not r.ok]
    assert fatal in [r.model for r in failed]
    for result in failed:
        assert result.output is None and (result.error or "").startswith("worker failed: ")
        assert "\n" not in (result.error or "")
    published = sorted(p.name for p in root.iterdir() if not storage.is_temporary(p.name))
    assert published == sorted(Path(r.output or "").name for r in results if r.ok)
    for name in published:
        assert_edited(root / name, "module_multi")
    monkeypatch.setattr(runner, "_edit_and_save", edit_model)
    rerun = apply_plan(plan, batch_targets(models, output_root=str(root)), force=True, jobs=2)
    assert all(r.ok for r in rerun)
    assert sorted(p.name for p in root.iterdir()) == sorted(Path(m).name for m in models)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b", "c", "link", "rel", "dangling", "f", "x", "..", "."]),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_real_paths_are_os_path_realpath(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str], absolute: bool
) -> None:
    """The batch's path resolution (one realpath per parent directory) agrees with os.path.realpath."""
    root = tmp_path_factory.getbasetemp() / "realpaths"
    if not root.exists():
        (root / "a" / "b").mkdir(parents=True)
        (root / "c").mkdir()
        (root / "link").symlink_to(root / "a" / "b")
        (root / "a" / "rel").symlink_to("../c")
        (root / "dangling").symlink_to("nowhere")
        (root / "a" / "b" / "f").touch()
    path = os.path.join(str(root) if absolute else "", *parts)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert _RealPaths()(path) == os.path.realpath(path)
    finally:
        os.chdir(cwd)


def test_in_place_groups_hold_at_most_group_bytes_of_new_model_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group's new files wait beside the old ones until it commits: in place, a group ends
    before its model files pass GROUP_BYTES (a model larger than that is a group of its own)."""
    sizes = [30, 30, 30, 100, 10, 10]
    targets = []
    for i, size in enumerate(sizes):
        (tmp_path / f"m{i}").mkdir()
        (tmp_path / f"m{i}" / "saved_model.pb").write_bytes(b"x" * size)
        targets.append(Target(str(tmp_path / f"m{i}"), None))
    monkeypatch.setattr(batch_module, "GROUP_BYTES", 64)
    assert batch_module._chunks(targets, 1) == [range(0, 2), range(2, 3), range(3, 4), range(4, 6)]
    copies = [Target(t.model, f"{t.model}_v2") for t in targets]
    assert batch_module._chunks(copies, 1) == [range(0, 6)], "copies are the outputs themselves"
