"""Interrupts: SIGINT (Ctrl-C) or SIGTERM at any moment of a command.

The command ends with exit status 130 (SIGINT) or 143 (SIGTERM), one line on stderr saying what
it left (`interrupted: nothing was changed`, `interrupted after writing OUT`), no traceback; the
model is byte for byte as it was or completely edited, OUT absent or complete, and no temporary
file of the write is left for the next command to clean. A batch stops starting models, prints
the summary of those it finished (the JSON report with --json), stops its workers and removes
what they staged.

Precise moments come from tests/crash_runner.py: a forked child runs the command through its own
entry (`surgery.cli.run`, which installs the handlers) and is held before its Nth file-system step
while it gets the signal. Real subprocesses take the signal during their imports, in the middle
of a large model's write, and as a terminal's Ctrl-C reaches a batch's whole process group.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_crash import copy_model, inflate, normalized, temporaries

import surgery
from conftest import ROOT, copy_fixture, tree_bytes
from crash_runner import finish, run_forked, start_held
from surgery import interrupts, storage
from surgery.storage import files as storage_files
from surgery.storage import locks as storage_locks

SIGNALS = pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
PLAN = 'operations:\n  - {op: rename-signature, regex: "^(?!v2_)(.+)$", new: "v2_\\\\1"}\n'
LINE = re.compile(
    r"savedmodel-surgery: interrupted(?P<name> \(SIGTERM\))?"
    r"(?:(?P<nothing>: nothing was changed)| after writing (?P<written>.+)"
    r"|: (?P<count>\d+) model\(s\) written; the other (?P<rest>\d+) not done, left as they were)"
)


def steps_of(args: list[str]) -> list[str]:
    code, steps = run_forked(args)
    assert code == 0, (args, code)
    return steps


def held(args: list[str], at: int, signum: int, log: Path) -> tuple[int, str, re.Match[str]]:
    """Run the command held before step `at`, signal it there, let it go: its exit status, its
    stdout, and its one line on stderr (checked: no traceback, nothing else)."""
    gate = log.with_suffix(".gate")
    pid = start_held(args, pause_at=at, gate=gate, log=log)
    os.kill(pid, signum)
    time.sleep(0.02)  # the handler runs in the held process before it is let go
    gate.unlink()
    status = finish(pid)
    stderr = log.with_suffix(".err").read_text()
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, (at, stderr)
    line = LINE.fullmatch(lines[0])
    assert line is not None, (at, lines[0])
    assert (line["name"] is not None) == (signum == signal.SIGTERM)
    return status, log.with_suffix(".out").read_text(), line


def rename_args(model: Path, *where: str | Path) -> list[str]:
    return ["rename-signature", str(model), "fixed", "fixed_v2", *map(str, where)]


def convert_args(model: Path, *where: str | Path) -> list[str]:
    return ["convert", str(model), "--to", "pbtxt", *map(str, where)]


# --- one model, held before every step of its write --------------------------------------------


@SIGNALS
@pytest.mark.parametrize("command", [rename_args, convert_args], ids=["edit", "convert"])
def test_an_interrupted_copy_leaves_the_input_and_no_temporary_files(
    tmp_path: Path, signum: int, command: Callable[..., list[str]]
) -> None:
    """-o OUT interrupted before each of its steps: OUT absent (`nothing was changed`) or complete
    (`after writing OUT`: the signal came during the publishing rename, which finishes first);
    nothing else beside it, the input byte for byte as it was."""
    model = copy_fixture("module_multi", tmp_path / "in")
    before = tree_bytes(model)
    reference = tmp_path / "reference" / "out"
    reference.parent.mkdir()
    steps = steps_of(command(model, "-o", reference))
    done = normalized(tree_bytes(reference))
    outcomes = set()
    for at in range(1, len(steps) + 1):
        out = tmp_path / f"at{at}" / "out"
        out.parent.mkdir()
        status, stdout, line = held(command(model, "-o", out), at, signum, tmp_path / f"log{at}")
        assert status == 128 + signum and stdout == ""
        assert tree_bytes(model) == before, f"step {at}: the input changed"
        assert sorted(os.listdir(out.parent)) in ([], ["out"]), f"step {at}: {os.listdir(out.parent)}"
        if line["nothing"]:
            assert not out.exists(), f"step {at}: OUT written, but the line says nothing was"
        else:
            assert line["written"] == str(out)
            assert normalized(tree_bytes(out)) == done, f"step {at}: OUT is not complete"
        outcomes.add("written" if line["written"] else "nothing")
    assert outcomes == {"nothing", "written"}, "interrupts landed before the publishing rename and in it"


@SIGNALS
def test_an_interrupted_in_place_edit_leaves_the_original_or_the_edit_and_no_journal(
    tmp_path: Path, signum: int
) -> None:
    """--in-place interrupted before each of its steps: the original byte for byte or the complete
    edit with its fingerprint.pb, and none of the edit's temporary files left in the model (not
    even for the next command to clean): rolled back before the swap, finished during it."""
    original = copy_fixture("module_multi", tmp_path / "in")
    before = tree_bytes(original)
    reference = copy_model(original, tmp_path / "reference")
    steps = steps_of(rename_args(reference, "--in-place"))
    edited = normalized(tree_bytes(reference))
    outcomes = set()
    for at in range(1, len(steps) + 1):
        model = copy_model(original, tmp_path / f"at{at}")
        status, stdout, line = held(rename_args(model, "--in-place"), at, signum, tmp_path / f"log{at}")
        assert status == 128 + signum and stdout == ""
        assert temporaries(model) == [], f"step {at}: the edit's temporary files are left"
        tree = tree_bytes(model)
        if line["nothing"]:
            assert tree == before, f"step {at}: not the original byte for byte"
        else:
            assert line["written"] == str(model)
            assert normalized(tree) == edited, f"step {at}: not the complete edit"
        outcomes.add("written" if line["written"] else "nothing")
    assert outcomes == {"nothing", "written"}, "interrupts landed before the swap and during it"


@SIGNALS
def test_an_interrupt_in_the_middle_of_a_large_write(tmp_path: Path, signum: int) -> None:
    """A model of tens of MB, held in the middle of its big write (a chunk of many), in place
    and to OUT: the model as it was, no temporary file left of the half-written one."""
    large = copy_fixture("module_multi", tmp_path / "large")
    inflate(large, 32)
    before = tree_bytes(large)
    steps = steps_of(rename_args(copy_model(large, tmp_path / "probe"), "--in-place"))
    writes = [i + 1 for i, step in enumerate(steps) if step in ("write", "copy_file_range")]
    assert len(writes) >= 16, "the large model is written in many chunks"
    model = copy_model(large, tmp_path / "in_place")
    status, _, line = held(rename_args(model, "--in-place"), writes[len(writes) // 2], signum, tmp_path / "a")
    assert status == 128 + signum and line["nothing"]
    assert temporaries(model) == [] and tree_bytes(model) == before
    out = tmp_path / "copy" / "out"
    out.parent.mkdir()
    steps = steps_of(rename_args(large, "-o", tmp_path / "probe_out"))
    writes = [i + 1 for i, step in enumerate(steps) if step in ("write", "copy_file_range")]
    status, _, line = held(rename_args(large, "-o", out), writes[len(writes) // 2], signum, tmp_path / "b")
    assert status == 128 + signum and line["nothing"]
    assert os.listdir(out.parent) == [] and tree_bytes(large) == before


# --- batches -----------------------------------------------------------------------------------


def _fleet(tmp_path: Path, names: tuple[str, ...]) -> tuple[Path, Path]:
    fleet = tmp_path / "fleet"
    for name in names:
        copy_fixture(name, fleet)
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    return fleet, plan


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (a batch's workers)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found


def _held_batch(args: list[str], at: int, signum: int, log: Path) -> tuple[int, str, re.Match[str], set[int]]:
    """`held` for a batch, with the workers it had while held."""
    gate = log.with_suffix(".gate")
    pid = start_held(args, pause_at=at, gate=gate, log=log)
    workers = _children(pid)
    os.kill(pid, signum)
    time.sleep(0.02)
    gate.unlink()
    status = finish(pid)
    stderr = log.with_suffix(".err").read_text()
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, (at, stderr)
    line = LINE.fullmatch(lines[0])
    assert line is not None, (at, lines[0])
    return status, log.with_suffix(".out").read_text(), line, workers


def _assert_ended(workers: set[int]) -> None:
    deadline = time.monotonic() + 10
    while any(storage_locks.pid_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(storage_locks.pid_alive(pid) for pid in workers), "a worker outlived the batch"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@SIGNALS
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_an_interrupted_parallel_batch_reports_what_it_finished(
    tmp_path: Path, signum: int, as_json: bool
) -> None:
    """`apply --output-root -j 2` interrupted before each of the parent's steps (making the root,
    publishing each copy): the summary of the models finished, the others not written and none
    of the workers' staging directories left; the workers end with the batch."""
    names = ("module_multi", "tf1_two_metagraphs", "lookup_asset", "keras_functional")
    fleet, plan = _fleet(tmp_path, names)
    before = tree_bytes(fleet)

    def batch(root: Path) -> list[str]:
        return ["apply", f"{fleet}/*", str(plan), "--output-root", str(root), "-j", "2"] + (
            ["--json"] if as_json else []
        )

    reference = tmp_path / "reference"
    steps = steps_of(batch(reference))
    assert steps == ["mkdir"] + ["renameat2"] * len(names)
    done = {name: normalized(tree_bytes(reference / name)) for name in names}
    counts = set()
    for at in range(1, len(steps) + 1):
        root = tmp_path / f"at{at}"
        status, stdout, line, workers = _held_batch(batch(root), at, signum, tmp_path / f"log{at}")
        assert status == 128 + signum
        assert tree_bytes(fleet) == before, f"step {at}: an input changed"
        written = sorted(os.listdir(root)) if root.exists() else []
        assert not [n for n in written if storage.is_temporary(n)], f"step {at}: {written}"
        for name in written:
            assert normalized(tree_bytes(root / name)) == done[name], f"step {at}: {name} is incomplete"
        models = [str(fleet / name) for name in written]
        if as_json:
            report = json.loads(stdout)
            assert [r["model"] for r in report["results"]] == models
            assert all(r["ok"] and r["changed"] for r in report["results"])
            assert (report["ok"], report["failed"], report["interrupted"]) == (len(written), 0, True)
            assert report["unfinished"] == [str(fleet / n) for n in sorted(names) if n not in written]
        else:
            rows = [f"ok   {fleet / name} -> {root / name}" for name in written]
            assert stdout.splitlines() == [
                *rows,
                f"{len(written)} model(s): {len(written)} written, 0 failed",
            ]
        if written:
            assert (line["count"], line["rest"]) == (str(len(written)), str(len(names) - len(written)))
        else:
            assert line["nothing"]
        _assert_ended(workers)
        counts.add(len(written))
    assert 0 in counts and max(counts) >= 1, "interrupts landed before the first copy and after one"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@SIGNALS
def test_an_interrupted_parallel_in_place_batch_leaves_each_model_whole(tmp_path: Path, signum: int) -> None:
    """`apply --in-place -j 2` interrupted before each of the parent's steps (it swaps in what the
    workers wrote): each model the original byte for byte or the complete edit, no journal left
    in any of them, and the summary names exactly the edited ones."""
    names = ("module_multi", "tf1_two_metagraphs", "lookup_asset", "keras_functional")
    original, plan = _fleet(tmp_path, names)
    before = {name: tree_bytes(original / name) for name in names}

    def batch(fleet: Path) -> list[str]:
        return ["apply", f"{fleet}/*", str(plan), "--in-place", "-j", "2"]

    reference = Path(copy_model(original, tmp_path / "reference"))
    steps = steps_of(batch(reference))
    edited = {name: normalized(tree_bytes(reference / name)) for name in names}
    for at in range(1, len(steps) + 1):
        fleet = copy_model(original, tmp_path / f"at{at}")
        status, stdout, line, workers = _held_batch(batch(fleet), at, signum, tmp_path / f"log{at}")
        assert status == 128 + signum
        changed = []
        for name in sorted(names):
            assert temporaries(fleet / name) == [], f"step {at}: {name} has the edit's temporary files"
            tree = tree_bytes(fleet / name)
            if tree != before[name]:
                assert normalized(tree) == edited[name], f"step {at}: {name} is not the complete edit"
                changed.append(name)
        rows = [f"ok   {fleet / name} -> {fleet / name}" for name in changed]
        assert stdout.splitlines() == [*rows, f"{len(changed)} model(s): {len(changed)} written, 0 failed"]
        assert line["count"] == str(len(changed)) if changed else line["nothing"]
        _assert_ended(workers)


def test_an_interrupted_batch_in_one_process(tmp_path: Path) -> None:
    """`-j 1`: interrupted while it stages a group (before it publishes anything), nothing of
    the group is written and its staging directories go."""
    fleet, plan = _fleet(tmp_path, ("module_multi", "tf1_two_metagraphs", "lookup_asset"))
    before = tree_bytes(fleet)

    def batch(root: Path) -> list[str]:
        return ["apply", f"{fleet}/*", str(plan), "--output-root", str(root), "-j", "1"]

    steps = steps_of(batch(tmp_path / "reference"))
    first_publish = steps.index("renameat2") + 1
    for at in range(2, first_publish):
        root = tmp_path / f"at{at}"
        status, stdout, line, _ = _held_batch(batch(root), at, signal.SIGINT, tmp_path / f"log{at}")
        assert status == 130 and line["nothing"]
        assert stdout == "0 model(s): 0 written, 0 failed\n"
        assert not root.exists(), f"step {at}: {os.listdir(root)}"
        assert tree_bytes(fleet) == before


# --- real processes ----------------------------------------------------------------------------


@SIGNALS
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.06, 0.1, 0.15])
def test_an_interrupt_during_start_up(tmp_path: Path, signum: int, delay: float) -> None:
    """A signal in the first moments of the command (its imports take about 0.2 s) ends it as
    cleanly as a later one: the command's entry installs the handlers before importing the rest.
    The marker file says the handlers are in place: the interpreter's own start before it is
    Python's. So that the signal lands during the imports however loaded the machine is, the
    import of the module that reads the model waits (the signal ends the wait); whatever the
    delay, the imports are where the signal lands."""
    model = copy_fixture("module_multi", tmp_path)
    before = tree_bytes(model)
    marker = tmp_path / "installed"
    bootstrap = (
        "import pathlib, runpy, sys, time\n"
        "import surgery.interrupts as interrupts\n"
        "class Slow:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'surgery.storage.readwrite':\n"
        "            time.sleep(30)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Slow())\n"
        "installed = interrupts.install\n"
        "def install():\n"
        "    previous = installed()\n"
        f"    pathlib.Path({str(marker)!r}).touch()\n"
        "    return previous\n"
        "interrupts.install = install\n"
        "runpy.run_module('surgery', run_name='__main__', alter_sys=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", bootstrap, *rename_args(model, "--in-place")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert stdout == ""
    if process.returncode == 0:  # the command was done before the signal came
        assert stderr == f"wrote {model}\n"
        return
    assert process.returncode == 128 + signum, stderr
    line = LINE.fullmatch(stderr.removesuffix("\n"))
    assert line is not None, stderr
    assert temporaries(model) == []
    if line["nothing"]:
        assert tree_bytes(model) == before
    if delay <= 0.1:
        assert line["nothing"], "the imports alone take longer than that"


def _start(args: list[str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "surgery", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def _when(found: Callable[[], bool], process: subprocess.Popen[str]) -> bool:
    """Wait until `found()` (True) or the process ends (False)."""
    while process.poll() is None:
        if found():
            return True
        time.sleep(0.0005)
    return False


@SIGNALS
def test_an_interrupt_seen_in_the_middle_of_a_large_in_place_write(tmp_path: Path, signum: int) -> None:
    """From outside, as a user would: the signal goes once the new model file is half written
    (its temporary file is there and growing): the original back, the temporary file gone."""
    large = copy_fixture("module_multi", tmp_path / "large")
    inflate(large, 64)
    before = tree_bytes(large)
    size = (large / "saved_model.pb").stat().st_size

    def half_written(model: Path) -> Callable[[], bool]:
        def check() -> bool:
            for name in os.listdir(model):
                if name.startswith(".saved_model.pb.surgery-tmp-"):
                    try:
                        return 0 < os.stat(model / name).st_size < size // 2
                    except OSError:
                        return False
            return False

        return check

    caught = 0
    for attempt in range(5):
        model = copy_model(large, tmp_path / f"try{attempt}")
        process = _start(rename_args(model, "--in-place"))
        if not _when(half_written(model), process):
            process.communicate()
            continue
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
        assert (process.returncode, stdout) == (128 + signum, "")
        line = LINE.fullmatch(stderr.removesuffix("\n"))
        assert line is not None and line["nothing"], stderr
        assert temporaries(model) == [] and tree_bytes(model) == before
        caught += 1
    assert caught, "the write was never caught half-way"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_ctrl_c_to_a_batch_while_its_workers_write(tmp_path: Path, as_json: bool) -> None:
    """A terminal's Ctrl-C goes to the whole process group: sent while a worker is writing a
    large copy, the batch ends with 130, its summary (the JSON report with --json), none of the
    workers' staging directories left, and no worker alive."""
    large = copy_fixture("module_multi", tmp_path / "large")
    inflate(large, 32)
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for i in range(6):
        copy_model(large, fleet / f"m{i}")
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    before = tree_bytes(fleet)
    models = [str(fleet / f"m{i}" / "module_multi") for i in range(6)]
    args = ["apply", *models, str(plan), "--suffix", "_v2", "-j", "2", *(["--json"] if as_json else [])]
    process = _start(args, start_new_session=True)
    workers: set[int] = set()

    def a_worker_writes() -> bool:  # with workers, the parent stages nothing: they do
        workers.update(_children(process.pid))
        return any(storage.is_temporary(name) for i in range(6) for name in os.listdir(fleet / f"m{i}"))

    assert _when(a_worker_writes, process), "the batch ended before a worker wrote"
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    line = LINE.fullmatch(stderr.splitlines()[-1])
    assert line is not None, stderr
    written = [m for m in models if os.path.exists(m + "_v2")]
    for i in range(6):
        assert [n for n in os.listdir(fleet / f"m{i}") if storage.is_temporary(n)] == []
    for model in written:
        assert surgery.load(model + "_v2").proto.meta_graphs[0].signature_def.keys() >= {"v2_fixed"}
    if as_json:
        report = json.loads(stdout)
        assert [r["model"] for r in report["results"]] == written and report["interrupted"] is True
        assert report["unfinished"] == [m for m in models if m not in written]
    else:
        assert stdout.splitlines()[-1] == f"{len(written)} model(s): {len(written)} written, 0 failed"
    assert line["nothing"] if not written else line["count"] == str(len(written))
    assert {k: v for k, v in tree_bytes(fleet).items() if "_v2" not in k} == before
    _assert_ended(workers)


# --- the Python API ----------------------------------------------------------------------------


def _interrupt_at(at: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Raise KeyboardInterrupt (Python's Ctrl-C) just before the `at`-th file-system change."""
    count = [0]
    for name in ("write", "rename", "replace", "link", "unlink", "mkdir", "rmdir"):
        real = getattr(os, name)

        def step(*args: object, _real: Callable[..., object] = real, **kwargs: object) -> object:
            count[0] += 1
            if count[0] == at:
                raise KeyboardInterrupt
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, step)
    real_rename2 = storage_files.rename2

    def rename2(*args: object, **kwargs: object) -> object:
        count[0] += 1
        if count[0] == at:
            raise KeyboardInterrupt
        return real_rename2(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage_files, "rename2", rename2)
    return count


@pytest.mark.parametrize("where", ["in-place", "copy", "group"])
def test_keyboard_interrupt_in_the_python_api_leaves_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """`surgery.save` and a commit group, with Python's own KeyboardInterrupt before any step:
    it propagates, and the model is as it was or completely edited, with nothing of the write
    left beside it (the library installs no handler: its clean-up does it)."""
    original = copy_fixture("module_multi", tmp_path / "in")
    before = tree_bytes(original)

    def write(model: Path, out: Path) -> None:
        edited = surgery.rename_signature(surgery.load(model), "fixed", "fixed_v2")
        if where == "copy":
            surgery.save(edited, out)
        elif where == "in-place":
            surgery.save(edited, in_place=True)
        else:
            with storage.commit_group() as group:
                surgery.save(edited, in_place=True, group=group)

    reference = copy_model(original, tmp_path / "reference")
    with monkeypatch.context() as patch:
        count = _interrupt_at(10**9, patch)
        write(reference, tmp_path / "reference_out")
    total = count[0]
    done = normalized(tree_bytes(tmp_path / "reference_out" if where == "copy" else reference))
    interrupted = 0
    for at in range(1, total + 1):
        model = copy_model(original, tmp_path / f"at{at}")
        out = tmp_path / f"out{at}"
        with monkeypatch.context() as patch:
            _interrupt_at(at, patch)
            try:
                write(model, out)
            except KeyboardInterrupt:
                interrupted += 1
        assert temporaries(model) == [] and temporaries(tmp_path) == [], f"step {at}"
        result = tree_bytes(out if where == "copy" else model)
        if where == "copy":
            assert tree_bytes(model) == before and (not out.exists() or normalized(result) == done)
        else:
            assert result == before or normalized(result) == done, f"step {at}"
    assert interrupted >= total // 2


def test_the_library_installs_no_signal_handler(tmp_path: Path) -> None:
    """Using the API (an edit, a save, a batch with workers) leaves the caller's handlers alone."""
    model = copy_fixture("module_multi", tmp_path)
    model_, a, b = str(model), str(tmp_path / "a"), str(tmp_path / "b")
    code = (
        "import signal, sys, surgery\n"
        "from surgery.batch import Target, apply_plan\n"
        "from surgery.plans import load_plan\n"
        "before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))\n"
        f"edited = surgery.rename_signature(surgery.load({model_!r}), 'fixed', 'f2')\n"
        "surgery.save(edited, in_place=True)\n"
        f"plan = load_plan({str(tmp_path / 'plan.yaml')!r})\n"
        f"targets = [Target({model_!r}, {a!r}), Target({model_!r}, {b!r})]\n"
        "assert all(r.ok for r in apply_plan(plan, targets, jobs=2))\n"
        "after = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))\n"
        "assert before == after == (signal.default_int_handler, signal.SIG_DFL), (before, after)\n"
    )
    (tmp_path / "plan.yaml").write_text(PLAN)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@SIGNALS
def test_an_interrupt_python_wrapped_is_still_an_interrupt(signum: int) -> None:
    """An interrupt landing while a class is made during an import (a dataclass's fields call
    `__set_name__`) reaches the command wrapped in a RuntimeError by Python 3.11: it is still
    the interrupt (the command said nothing and printed a traceback)."""

    class Lands:
        def __set_name__(self, owner: type, name: str) -> None:
            raise interrupts.Interrupted(signum)

    with pytest.raises(BaseException) as caught:
        type("Made", (), {"field": Lands()})
    assert interrupts.signal_of(caught.value) == signum
    assert interrupts.signal_of(RuntimeError("another error")) is None
