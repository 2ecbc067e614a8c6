"""Crash safety: kill -9 at every step of a write, and full disks and I/O errors in the middle of one.

A killed `-o` run leaves its input byte for byte as it was and OUT either absent or complete (with
`--force`: the old OUT or the new one, never neither). A killed `--in-place` run leaves the
original, the complete edit, or one of them without `fingerprint.pb` (legal for TensorFlow; a
stale fingerprint never appears); the next command that opens the model restores the original
byte for byte or finishes the edit, and the next write to the same OUT removes what the killed
run left. A failed write (ENOSPC, EIO) gives the same guarantees and one error line.

The kills come from tests/crash_runner.py: a child process counts the calls that change the file
system and SIGKILLs itself before the Nth. Every step of a small model's write is a kill point;
on a model inflated to tens of MB, kills land between the chunks of the big writes, and `kill -9`
from outside lands at timed moments.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import ROOT, copy_fixture, tree_bytes
from crash_runner import run_forked
from fuzzing import check_outcome, run
from surgery import storage
from surgery.edits import rename_signature
from surgery.schema import DataType, FingerprintDef
from surgery.storage import files as storage_files
from surgery.storage import locks as storage_locks

EDIT = ["rename-signature", "{model}", "fixed", "fixed_v2"]
LARGE_MB = 32
# The system calls that write a file's bytes: a large constant is copied by the kernel.
WRITES = ("write", "copy_file_range")
OLD_OUT = {"old.txt": b"old"}  # what OUT holds before a --force run replaces it


def edit_args(model: Path, *where: str | Path) -> list[str]:
    return [a.format(model=model) for a in EDIT] + [str(w) for w in where]


def steps_of(args: list[str]) -> list[str]:
    """Run to the end in a child process, counting the steps; the run must succeed."""
    code, steps = run_forked(args)
    assert code == 0, (args, code)
    return steps


def killed(args: list[str], at: int) -> None:
    """Run in a child process that gets SIGKILL just before step `at`."""
    code, _ = run_forked(args, kill_at=at)
    assert code == -signal.SIGKILL, (at, code)


def rerun(*args: str | Path) -> None:
    """A later run, in this process: it must succeed."""
    outcome = run([str(a) for a in args])
    assert outcome.status == 0, outcome.stderr


def normalized(tree: dict[str, bytes]) -> dict[str, bytes]:
    """A tree's files with fingerprint.pb's random uuid cleared (the only part two runs differ in)."""
    out = dict(tree)
    for name, data in tree.items():
        if Path(name).name == "fingerprint.pb":
            fingerprint = FingerprintDef.FromString(data)
            fingerprint.ClearField("uuid")
            out[name] = fingerprint.SerializeToString(deterministic=True)
    return out


def visible(tree: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in tree.items() if not any(storage.is_temporary(p) for p in Path(k).parts)}


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if storage.is_temporary(p.name))


def inflate(model: Path, megabytes: int) -> None:
    """Add a Const of `megabytes` MB to a function of the graph library (a few tens of MB to write)."""
    loaded = surgery.load(model)
    node = loaded.proto.meta_graphs[0].graph_def.library.function[0].node_def.add(name="inflated", op="Const")
    node.attr["dtype"].type = DataType.DT_FLOAT
    tensor = node.attr["value"].tensor
    tensor.dtype = DataType.DT_FLOAT
    count = megabytes << 18
    tensor.tensor_shape.dim.add().size = count
    tensor.tensor_content = random.Random(0).randbytes(4 * count)
    surgery.save(loaded, in_place=True)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = copy_fixture("module_multi", tmp_path_factory.mktemp("large"))
    inflate(model, LARGE_MB)
    return model


# --- -o OUT ------------------------------------------------------------------------------------


def _check_copy_after_kill(
    model: Path, before: dict[str, bytes], out: Path, done: dict[str, bytes], *, force: bool
) -> None:
    assert tree_bytes(model) == before, "the input changed"
    if out.exists():
        complete = (done, OLD_OUT) if force else (done,)
        assert normalized(tree_bytes(out)) in complete, "OUT exists but is not a complete result"
    assert [p.name for p in out.parent.iterdir() if not p.name.startswith(".")] in ([], [out.name])


def _kill_copy(
    model: Path, work: Path, points: list[int], *, force: bool, flags: tuple[str, ...] = ()
) -> int:
    """Kill `-o` (or `-o --force`) runs with `flags` at `points`; then rerun each to completion.
    Returns the kills."""
    before = tree_bytes(model)
    reference = work / "reference" / "out"
    reference.parent.mkdir(parents=True)
    if force:
        reference.mkdir()
        (reference / "old.txt").write_text("old")
    args = edit_args(model, "-o", reference, *(["--force"] if force else []), *flags)
    total = len(steps_of(args))
    done = normalized(tree_bytes(reference))
    for at in points or range(1, total + 1):
        out = work / f"kill{at}" / "out"
        out.parent.mkdir(parents=True)
        if force:
            out.mkdir()
            (out / "old.txt").write_text("old")
        args = edit_args(model, "-o", out, *(["--force"] if force else []), *flags)
        killed(args, at)
        _check_copy_after_kill(model, before, out, done, force=force)
        if force:
            assert out.is_dir(), "with --force, OUT is the old or the new directory at every moment"
        # The next run to the same OUT succeeds and removes what the killed one left.
        rerun(*edit_args(model, "-o", out, "--force"))
        assert normalized(tree_bytes(out)) == done
        assert temporaries(out.parent) == []
    return len(points) if points else total


# Without fsync, a write is still atomic under a kill: the page cache outlives the process.
FLAGS = pytest.mark.parametrize("flags", [(), ("--no-sync",)], ids=["sync", "no-sync"])


@FLAGS
def test_kill_at_every_step_of_a_copy(tmp_path: Path, flags: tuple[str, ...]) -> None:
    model = copy_fixture("module_multi", tmp_path / "in")
    kills = _kill_copy(model, tmp_path, [], force=False, flags=flags)
    assert kills >= 8


@FLAGS
def test_kill_at_every_step_of_a_forced_copy(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """With --force over an existing OUT: the old OUT or the new one, whole, at every moment."""
    model = copy_fixture("module_multi", tmp_path / "in")
    kills = _kill_copy(model, tmp_path, [], force=True, flags=flags)
    assert kills >= 10


@FLAGS
def test_kill_at_every_step_of_a_batch(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """A batch publishes its copies together (one sync for the group): killed at any step, each
    OUT under the root is absent or complete, and rerunning the batch finishes the rest."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for name in ("module_multi", "tf1_two_metagraphs", "lookup_asset"):
        copy_fixture(name, fleet)
    before = tree_bytes(fleet)
    plan = tmp_path / "plan.yaml"
    plan.write_text('operations:\n  - {op: rename-signature, regex: "^(.+)$", new: "v2_\\\\1"}\n')

    def batch(root: Path, *extra: str) -> list[str]:
        return ["apply", f"{fleet}/*", str(plan), "--output-root", str(root), "-j", "1", *flags, *extra]

    reference = tmp_path / "reference"
    steps = steps_of(batch(reference))
    done = {
        name: normalized(tree_bytes(reference / name)) for name in sorted(p.name for p in fleet.iterdir())
    }
    assert all("v2_" in str(surgery.load(reference / name).proto) for name in done)
    renames = [i + 1 for i, step in enumerate(steps) if step == "renameat2"]
    last_write = max(i + 1 for i, step in enumerate(steps) if step in WRITES)
    assert len(renames) == len(done) and renames[0] > last_write, (
        "one group: every copy written before the first is published"
    )
    published = set()
    for at in range(1, len(steps) + 1):
        root = tmp_path / f"kill{at}"
        killed(batch(root), at)
        assert tree_bytes(fleet) == before, "an input changed"
        outs = [p.name for p in root.iterdir() if not storage.is_temporary(p.name)] if root.exists() else []
        for name in outs:
            assert normalized(tree_bytes(root / name)) == done[name], f"step {at}: {name} is incomplete"
        published.add(len(outs))
        rerun(*batch(root, "--force"))
        assert {name: normalized(tree_bytes(root / name)) for name in done} == done
        assert temporaries(root) == []
    # The last step is the last rename: a kill before it leaves the other two published.
    assert published == {0, 1, 2}, "kills land before and between the group's renames"


def _assert_workers_end(workers: set[int], at: int) -> None:
    """The processes that wrote these temporaries end with their killed parent (within 10 s)."""
    deadline = time.monotonic() + 10
    alive = storage_locks.pid_alive  # a zombie is not: nothing reaps an orphan's at once here
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(alive(pid) for pid in workers), f"step {at}: a worker outlived its parent"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_the_parent_of_a_parallel_batch_at_every_step(tmp_path: Path) -> None:
    """With workers, the parent publishes every copy (the workers only stage them): killed before
    any of its steps, the copies it published are complete, its workers end with it, and the
    next run to the same root removes the rest and finishes."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for name in ("module_multi", "tf1_two_metagraphs", "lookup_asset", "keras_functional"):
        copy_fixture(name, fleet)
    before = tree_bytes(fleet)
    plan = tmp_path / "plan.yaml"
    plan.write_text('operations:\n  - {op: rename-signature, regex: "^(.+)$", new: "v2_\\\\1"}\n')

    def batch(root: Path, *extra: str) -> list[str]:
        return ["apply", f"{fleet}/*", str(plan), "--output-root", str(root), "-j", "2", *extra]

    reference = tmp_path / "reference"
    steps = steps_of(batch(reference))
    done = {name: normalized(tree_bytes(reference / name)) for name in sorted(os.listdir(fleet))}
    assert steps == ["mkdir"] + ["renameat2"] * len(done), "the parent only makes the root and publishes"
    for at in range(1, len(steps) + 1):
        root = tmp_path / f"kill{at}"
        killed(batch(root), at)
        assert tree_bytes(fleet) == before, "an input changed"
        root.mkdir(exist_ok=True)  # killed before the first step, the run had not made it
        outs = [p.name for p in root.iterdir() if not storage.is_temporary(p.name)]
        assert len(outs) == max(0, at - 2), f"step {at}: the renames before it, and no other"
        for name in outs:
            assert normalized(tree_bytes(root / name)) == done[name], f"step {at}: {name} is incomplete"
        _assert_workers_end({int(n.split("-")[-2]) for n in temporaries(root)}, at)
        rerun(*batch(root, "--force"))
        assert {name: normalized(tree_bytes(root / name)) for name in done} == done
        assert temporaries(root) == []


# --- --in-place --------------------------------------------------------------------------------


def _pair(model: Path) -> tuple[bytes, bytes | None]:
    fingerprint = model / "fingerprint.pb"
    return (model / "saved_model.pb").read_bytes(), (
        normalized({"fingerprint.pb": fingerprint.read_bytes()})["fingerprint.pb"]
        if fingerprint.exists()
        else None
    )


def _kill_in_place(original: Path, work: Path, points: list[int] | None, flags: tuple[str, ...] = ()) -> int:
    """Kill in-place edits (with `flags`) of copies of `original` at `points` (None: every step).
    Returns the kills."""
    before = tree_bytes(original)
    reference = work / "reference"
    reference.mkdir()
    reference = copy_model(original, reference)
    total = len(steps_of(edit_args(reference, "--in-place", *flags)))
    edited = _pair(reference)
    old = _pair(original)
    states = set()
    for at in points if points is not None else range(1, total + 1):
        model = copy_model(original, work / f"kill{at}")
        killed(edit_args(model, "--in-place", *flags), at)
        pb, fingerprint = _pair(model)
        assert (pb, fingerprint) in {old, edited, (old[0], None), (edited[0], None)}, (
            f"step {at}: a saved_model.pb with a stale or broken fingerprint.pb"
        )
        assert visible(tree_bytes(model)).keys() <= before.keys()
        states.add(("old" if pb == old[0] else "new", fingerprint is not None))
        # The next command that opens the model, even `show`, restores or finishes the edit.
        rerun("show", model)
        assert temporaries(model) == []
        after = tree_bytes(model)
        if after["saved_model.pb"] == before["saved_model.pb"]:
            assert after == before, f"step {at}: not the original byte for byte"
        else:
            assert _pair(model) == edited, f"step {at}: not the complete edit"
            assert after.keys() == before.keys()
        if points is None:  # and the model can be edited again
            rerun("set-method", model, "masked", "tensorflow/serving/regress", "--in-place")
            assert temporaries(model) == []
    if points is None:
        assert ("old", False) in states and ("new", False) in states, (
            "some kill should have landed in the window without a fingerprint"
        )
    return total if points is None else len(points)


def copy_model(original: Path, parent: Path) -> Path:
    """A copy of `original` under `parent` (hard links would share the pb with the original)."""
    parent.mkdir(exist_ok=True)
    return Path(shutil.copytree(original, parent / original.name))


@FLAGS
def test_kill_at_every_step_of_an_in_place_edit(tmp_path: Path, flags: tuple[str, ...]) -> None:
    original = copy_fixture("module_multi", tmp_path / "in")
    assert _kill_in_place(original, tmp_path, None, flags) >= 7


# Idempotent, so that a rerun edits only what a killed run left unedited.
IDEMPOTENT_PLAN = 'operations:\n  - {op: rename-signature, regex: "^(?!v2_)(.+)$", new: "v2_\\\\1"}\n'


def _kill_in_place_batch(
    tmp_path: Path, names: tuple[str, ...], jobs: int, flags: tuple[str, ...]
) -> list[str]:
    """Kill `apply --in-place -j jobs` over copies of the fixtures `names` before each of its
    (the parent's) steps: every model is the original or the edit, each maybe without its
    fingerprint (never a stale one); the next command that opens a model restores or finishes
    it; rerunning the batch finishes the rest. Returns the steps of a whole run."""
    original = tmp_path / "original"
    for name in names:
        copy_fixture(name, original)
    before = {name: tree_bytes(original / name) for name in names}
    old = {name: _pair(original / name) for name in names}
    plan = tmp_path / "plan.yaml"
    plan.write_text(IDEMPOTENT_PLAN)

    def batch(fleet: Path) -> list[str]:
        return ["apply", f"{fleet}/*", str(plan), "--in-place", "-j", str(jobs), *flags]

    reference = Path(shutil.copytree(original, tmp_path / "reference"))
    steps = steps_of(batch(reference))
    edited = {name: _pair(reference / name) for name in names}
    files = {name: before[name].keys() | tree_bytes(reference / name).keys() for name in names}
    assert all(edited[name][0] != old[name][0] for name in names)
    edited_models = set()
    for at in range(1, len(steps) + 1):
        fleet = Path(shutil.copytree(original, tmp_path / f"kill{at}"))
        killed(batch(fleet), at)
        count = 0
        for name in names:
            pb, fingerprint = _pair(fleet / name)
            assert (pb, fingerprint) in {
                old[name],
                edited[name],
                (old[name][0], None),
                (edited[name][0], None),
            }, f"step {at}: {name} has a saved_model.pb with a stale or broken fingerprint.pb"
            assert visible(tree_bytes(fleet / name)).keys() <= files[name]
            count += pb == edited[name][0]
        edited_models.add(count)
        _assert_workers_end({int(n.split("-")[-2]) for name in names for n in temporaries(fleet / name)}, at)
        for name in names:  # the next command that opens a model restores or finishes its edit
            rerun("show", fleet / name)
            assert temporaries(fleet / name) == []
            after = tree_bytes(fleet / name)
            assert after == before[name] or (
                _pair(fleet / name) == edited[name] and after.keys() == tree_bytes(reference / name).keys()
            ), f"step {at}: {name} is neither the original byte for byte nor the complete edit"
        rerun(*batch(fleet))
        assert {name: _pair(fleet / name) for name in names} == edited
        assert all(temporaries(fleet / name) == [] for name in names)
        shutil.rmtree(fleet)
    assert edited_models == set(range(len(names) + 1)), "kills land before, between and after the swaps"
    return steps


@FLAGS
def test_kill_at_every_step_of_an_in_place_batch(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """A batch edits its models in place as a group (one sync per step for all of them)."""
    steps = _kill_in_place_batch(tmp_path, ("module_multi", "tf1_two_metagraphs", "lookup_asset"), 1, flags)
    swaps = [i for i, step in enumerate(steps) if step == "renameat2"]
    last_write = max(i for i, step in enumerate(steps) if step in WRITES)
    assert len(swaps) == 3 and swaps[0] > last_write, (
        "one group: every model's files written before the first swap"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_the_parent_of_a_parallel_in_place_batch_at_every_step(tmp_path: Path) -> None:
    """With workers, the workers write each edit's files and the parent swaps them in."""
    names = ("module_multi", "tf1_two_metagraphs", "lookup_asset", "keras_functional")
    steps = _kill_in_place_batch(tmp_path, names, 2, ())
    assert not {"write", "open", "copy_file_range"} & set(steps), "the parent writes no file"
    assert steps.count("renameat2") == len(names)


def test_kill_in_the_middle_of_large_writes(tmp_path: Path, large: Path) -> None:
    """A model of tens of MB: kills between the chunks of its big writes, for -o and in place."""
    steps = steps_of(edit_args(large, "-o", tmp_path / "probe"))
    writes = [i + 1 for i, step in enumerate(steps) if step in WRITES]
    assert len(writes) >= LARGE_MB // 2, "the large model is written in many chunks"
    middle = [writes[len(writes) // 4], writes[len(writes) // 2], writes[-1]]
    _kill_copy(large, tmp_path / "copy", middle, force=False)
    steps = steps_of(edit_args(copy_model(large, tmp_path / "probe2"), "--in-place"))
    writes = [i + 1 for i, step in enumerate(steps) if step in WRITES]
    middle = [writes[len(writes) // 3], writes[-1], len(steps)]
    (tmp_path / "in_place").mkdir()
    _kill_in_place(large, tmp_path / "in_place", middle)


def _kill_after(seconds: float, args: list[str]) -> None:
    """Start the command as a user would, and `kill -9` it after `seconds`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "surgery", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _duration(args: list[str]) -> float:
    start = time.monotonic()
    assert subprocess.run([sys.executable, "-m", "surgery", *args], cwd=ROOT).returncode == 0
    return time.monotonic() - start


FRACTIONS = (0.35, 0.6, 0.8, 0.95)  # of a whole run, interpreter start included


def test_kill_at_timed_moments_from_outside(tmp_path: Path, large: Path) -> None:
    """`kill -9` from another process at moments spread over a large in-place edit."""
    before = tree_bytes(large)
    model = copy_model(large, tmp_path / "timing")
    duration = _duration(edit_args(model, "--in-place"))
    edited = _pair(model)
    old = _pair(large)
    for i, fraction in enumerate(FRACTIONS):
        model = copy_model(large, tmp_path / f"t{i}")
        _kill_after(duration * fraction, edit_args(model, "--in-place"))
        assert _pair(model) in {old, edited, (old[0], None), (edited[0], None)}
        rerun("show", model)
        assert temporaries(model) == []
        assert tree_bytes(model) == before or _pair(model) == edited


def test_kill_at_timed_moments_of_a_copy_from_outside(tmp_path: Path, large: Path) -> None:
    """`kill -9` from another process at moments spread over writing a large copy."""
    before = tree_bytes(large)
    reference = tmp_path / "reference"
    duration = _duration(edit_args(large, "-o", reference))
    done = normalized(tree_bytes(reference))
    for i, fraction in enumerate(FRACTIONS):
        out = tmp_path / f"t{i}" / "out"
        out.parent.mkdir()
        _kill_after(duration * fraction, edit_args(large, "-o", out))
        _check_copy_after_kill(large, before, out, done, force=False)
        rerun(*edit_args(large, "-o", out, "--force"))
        assert temporaries(out.parent) == []


# --- full disks and I/O errors, in process -----------------------------------------------------


class Fault:
    """Make the Nth file-system change (or every one from the Nth on) fail with `code`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: int, code: int, *, sticky: bool = False) -> None:
        self.count = 0
        self.at = at
        self.code = code
        self.sticky = sticky
        self.hit = False
        for name in ("write", "copy_file_range", "fsync", "rename", "replace", "link", "mkdir", "unlink"):
            monkeypatch.setattr(os, name, self.wrap(getattr(os, name)))
        monkeypatch.setattr(storage_files, "rename2", self.wrap(storage_files.rename2))

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            full = (
                self.sticky
                and self.count > self.at
                and function.__name__ in ("write", "copy_file_range", "mkdir", "link")
            )
            if self.count == self.at or full:
                self.hit = True
                raise OSError(self.code, os.strerror(self.code))
            return function(*args, **kwargs)

        return step


def _count_steps(monkeypatch: pytest.MonkeyPatch, write: Callable[[], object]) -> int:
    with monkeypatch.context() as patch:
        fault = Fault(patch, 10**9, errno.EIO)
        write()
    return fault.count


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_failing_copy_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """ENOSPC or EIO at any step of `-o`: one SavedModelIOError, the input untouched, no OUT, no debris."""
    model = copy_fixture("module_multi", tmp_path / "in")
    before = tree_bytes(model)
    edited = rename_signature(surgery.load(model), "fixed", "fixed_v2")
    total = _count_steps(monkeypatch, lambda: surgery.save(edited, tmp_path / "probe"))
    failures = 0
    for at in range(1, total + 1):
        out = tmp_path / f"out{at}"
        with monkeypatch.context() as patch:
            fault = Fault(patch, at, code, sticky=code == errno.ENOSPC)
            try:
                surgery.save(edited, out)
            except surgery.SavedModelIOError as err:
                failures += 1
                assert "\n" not in str(err) and os.strerror(code) in str(err)
                assert not out.exists()
            else:  # the failing step was cleanup after the output was complete
                assert normalized(tree_bytes(out)) == normalized(tree_bytes(tmp_path / "probe"))
        assert fault.hit
        assert tree_bytes(model) == before
        assert temporaries(tmp_path) == []
    assert failures >= total // 2


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_failing_in_place_edit_keeps_a_consistent_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """A failure at any step of an in-place write: the original, or the edit (without a fingerprint)."""
    original = copy_fixture("module_multi", tmp_path / "in")
    before = tree_bytes(original)
    probe = copy_model(original, tmp_path / "probe")
    total = _count_steps(
        monkeypatch, lambda: surgery.save(rename_signature(surgery.load(probe), "fixed", "x"), in_place=True)
    )
    edited_pb, edited_fingerprint = _pair(probe)
    for at in range(1, total + 1):
        model = copy_model(original, tmp_path / f"m{at}")
        edited = rename_signature(surgery.load(model), "fixed", "x")
        with monkeypatch.context() as patch:
            Fault(patch, at, code, sticky=code == errno.ENOSPC)
            try:
                surgery.save(edited, in_place=True)
            except surgery.SavedModelIOError as err:
                message = str(err)
            else:  # the failing step was the last clean-up: the edit is complete, the debris goes on load
                surgery.load(model)
                assert temporaries(model) == [] and _pair(model) == (edited_pb, edited_fingerprint)
                continue
        assert "\n" not in message and os.strerror(code) in message
        assert temporaries(model) == []
        after = tree_bytes(model)
        if "was edited" in message:  # failed after the commit point: the edit, maybe without a fingerprint
            assert after["saved_model.pb"] == edited_pb
            assert ("fingerprint.pb" in after) == ("without fingerprint.pb" not in message)
            if "fingerprint.pb" in after:
                assert normalized(after)["fingerprint.pb"] == edited_fingerprint
        else:
            assert after == before, f"step {at}: the model changed"


def test_disk_full_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user sees: one line naming the output and the cause, exit 2, nothing written."""
    model = copy_fixture("module_multi", tmp_path / "in")
    out = tmp_path / "out"
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        if len(data) > 1000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    outcome = run(["rename-signature", str(model), "fixed", "x", "-o", str(out)])
    check_outcome(outcome)
    assert outcome.status == 2
    assert (
        outcome.stderr
        == f"savedmodel-surgery: error: cannot write {out}: No space left on device; nothing was written\n"
    )
    outcome = run(["rename-signature", str(model), "fixed", "x", "--in-place"])
    assert outcome.status == 2
    assert "No space left on device; nothing was changed" in outcome.stderr
    assert not out.exists() and temporaries(tmp_path) == [] and temporaries(model) == []


def test_interrupted_in_place_edit_is_rolled_back_by_the_next_command(tmp_path: Path) -> None:
    """The journal, by hand: an uncommitted edit (the pb still a temporary file) is undone on load."""
    model = copy_fixture("module_multi", tmp_path)
    before = tree_bytes(model)
    tx = "999999999-abc"  # a pid no process has
    (model / f".saved_model.pb.surgery-tmp-{tx}").write_bytes(b"half a new model")
    os.rename(model / "fingerprint.pb", model / f".fingerprint.pb.surgery-old-{tx}")
    surgery.load(model)
    assert tree_bytes(model) == before


def test_interrupted_in_place_edit_is_finished_by_the_next_command(tmp_path: Path) -> None:
    """A committed edit (the pb renamed, the new fingerprint still a temporary file) is completed."""
    model = copy_fixture("module_multi", tmp_path)
    tx = "999999999-abc"
    (model / f".fingerprint.pb.surgery-tmp-{tx}").write_bytes(b"new fingerprint")
    os.rename(model / "fingerprint.pb", model / f".fingerprint.pb.surgery-old-{tx}")
    surgery.load(model)
    assert (model / "fingerprint.pb").read_bytes() == b"new fingerprint"
    assert temporaries(model) == []


def _swap_journal(tmp_path: Path, *, swapped: bool) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """By hand, what a run killed around its RENAME_EXCHANGE leaves: the old pb's second name made,
    and the new pb at its temporary name (`swapped=False`) or at saved_model.pb (`swapped=True`,
    the temporary name then naming the old pb). The model, its tree before, the edit's tree."""
    model = copy_fixture("module_multi", tmp_path / "in")
    before = tree_bytes(model)
    rerun("set-method", model, "masked", "tensorflow/serving/regress", "-o", tmp_path / "edited")
    edited = tree_bytes(tmp_path / "edited")
    tx = "999999999-abc"
    temp, old = model / f".saved_model.pb.surgery-tmp-{tx}", model / f".saved_model.pb.surgery-old-{tx}"
    os.link(model / "saved_model.pb", old)
    if swapped:
        os.rename(model / "saved_model.pb", temp)
        (model / "saved_model.pb").write_bytes(edited["saved_model.pb"])
    else:
        temp.write_bytes(edited["saved_model.pb"])
    (model / f".fingerprint.pb.surgery-tmp-{tx}").write_bytes(edited["fingerprint.pb"])
    os.rename(model / "fingerprint.pb", model / f".fingerprint.pb.surgery-old-{tx}")
    return model, before, edited


def test_an_edit_killed_before_its_exchange_is_rolled_back(tmp_path: Path) -> None:
    """The old pb's second name is there, but the temporary pb is another file: not committed."""
    model, before, _ = _swap_journal(tmp_path, swapped=False)
    surgery.load(model)
    assert tree_bytes(model) == before
    assert temporaries(model) == []


def test_an_edit_killed_after_its_exchange_is_finished(tmp_path: Path) -> None:
    """The temporary pb and the old pb's second name are one file: the swap happened, committed."""
    model, before, edited = _swap_journal(tmp_path, swapped=True)
    surgery.load(model)
    assert tree_bytes(model) == {**before, **{k: edited[k] for k in ("saved_model.pb", "fingerprint.pb")}}
    assert temporaries(model) == []


def test_a_handed_over_edit_keeps_its_model_locked(tmp_path: Path) -> None:
    """A batch's worker passes each in-place edit's lock to its parent over a socket: the model is
    locked from its read to its swap, even after the worker is gone, so a command that opens it
    meanwhile leaves the edit's files alone and another in-place edit of it fails at once."""
    import pickle

    model = copy_fixture("module_multi", tmp_path)
    before = tree_bytes(model)
    channel = storage.LockChannel()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: stages the edit, hands it over, and ends
        try:
            with storage.commit_group() as group:
                surgery.save(rename_signature(surgery.load(model), "fixed", "f2"), in_place=True, group=group)
                staged = group.hand_over(channel)
            os.write(write, pickle.dumps(staged))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        staged = pickle.loads(pipe.read())
    assert os.waitpid(pid, 0)[1] == 0
    try:
        assert not storage_locks.lock_is_free(model), "the lock outlives the worker"
        surgery.load(model)  # its recovery needs the lock: the staged files stay
        assert len(temporaries(model)) == 2 and visible(tree_bytes(model)) == before
        outcome = run(["set-method", str(model), "fixed", "tensorflow/serving/regress", "--in-place"])
        assert outcome.status == 2 and "is in use by another savedmodel-surgery process" in outcome.stderr
        parent = storage.CommitGroup()
        parent.adopt(staged, channel)
        parent.commit()
    finally:
        channel.close()
    assert parent.failures == {} and temporaries(model) == []
    assert storage_locks.lock_is_free(model)
    assert "f2" in surgery.load(model).proto.meta_graphs[0].signature_def


def test_a_live_writers_files_are_left_alone(tmp_path: Path) -> None:
    """Recovery needs the model's lock: while another process holds it, nothing is touched."""
    model = copy_fixture("module_multi", tmp_path)
    leftover = model / ".saved_model.pb.surgery-tmp-999999999-abc"  # a pid no process has
    leftover.write_bytes(b"x")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)",
            str(model),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        surgery.load(model)
        assert leftover.exists()
    finally:
        holder.kill()
        holder.wait()
    surgery.load(model)
    assert not leftover.exists()


def test_a_copy_from_a_model_with_an_interrupted_edit_starts_from_the_original(tmp_path: Path) -> None:
    """`-o` from a model a killed in-place run left: the model is restored first, the copy is of it."""
    model = copy_fixture("module_multi", tmp_path / "in")
    before = tree_bytes(model)
    tx = "999999999-abc"
    (model / f".saved_model.pb.surgery-tmp-{tx}").write_bytes(b"half a new model")
    os.rename(model / "fingerprint.pb", model / f".fingerprint.pb.surgery-old-{tx}")
    rerun("set-method", model, "masked", "tensorflow/serving/regress", "-o", tmp_path / "out")
    assert tree_bytes(model) == before
    assert (tmp_path / "out" / "fingerprint.pb").exists()
