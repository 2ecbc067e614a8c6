"""Exit statuses that say what happened, whatever becomes of the standard streams and the input.

- A result that cannot be printed on stdout (closed, full, a pipe whose reader left) fails the
  command, in one line and without a traceback; a note that cannot be printed on stderr never
  changes the status of a command that did its work.
- A checkpoint index that is there but cannot be read stops an edit (no fingerprint.pb with a
  zero checkpoint_hash), and `convert` never replaces a correct fingerprint.pb by a wrong one.
- An edit that changes nothing says so; in place it writes nothing at all.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import surgery
from conftest import ROOT, copy_fixture, tree_bytes
from surgery import storage
from surgery.fingerprint import UnreadableIndex, checkpoint_hash
from surgery.schema import FingerprintDef

PROG = "savedmodel-surgery"
FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")


def surgery_cli(
    *args: str | Path, stdout: str = "pipe", stderr: str = "pipe"
) -> subprocess.CompletedProcess[str]:
    """The command with stdout and stderr each captured (`pipe`), closed (`closed`) or sent to
    /dev/full (`full`); what was captured comes back ("" otherwise)."""
    redirect = {"pipe": "", "closed": "{fd}>&-", "full": "{fd}>/dev/full"}
    shell = f'"$@" {redirect[stdout].format(fd=1)} {redirect[stderr].format(fd=2)}'
    command = ["sh", "-c", shell, "sh", sys.executable, "-m", "surgery", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if storage.is_temporary(name))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return copy_fixture("module_multi", tmp_path / "in")


# --- stdout ------------------------------------------------------------------------------------

READS = [
    ["show", "{model}"],
    ["show", "{model}", "--json"],
    ["check", "{model}"],
    ["diff", "{model}", "{model}"],
    ["explain", "{model}"],
    ["rename-signature", "{model}", "fixed", "f2", "--dry-run"],
    ["--help"],
]


@pytest.mark.parametrize("args", READS, ids=lambda a: " ".join(a).replace("{model}", "M"))
def test_a_command_whose_stdout_is_closed_fails_in_one_line(model: Path, args: list[str]) -> None:
    """`show MODEL >&-`: what the command is for cannot be printed: exit 2, one line, no traceback."""
    result = surgery_cli(*[a.format(model=model) for a in args], stdout="closed")
    assert (result.returncode, result.stderr) == (
        2,
        f"{PROG}: error: cannot print on stdout: stdout is closed\n",
    )


@needs_dev_full
def test_a_full_stdout_fails_a_read_in_one_line(model: Path) -> None:
    result = surgery_cli("show", model, "--json", stdout="full")
    assert (result.returncode, result.stderr) == (
        2,
        f"{PROG}: error: cannot print on stdout: No space left on device\n",
    )


def test_a_pipe_whose_reader_left_ends_quietly_as_sigpipe_would(model: Path) -> None:
    """`show MODEL | head -c1`: the reader went away; no message, and the status a program
    killed by SIGPIPE has (141), as `cat` or `yes` leave it."""
    read, write = os.pipe()
    os.close(read)
    with subprocess.Popen(
        [sys.executable, "-m", "surgery", "show", str(model)], stdout=write, stderr=subprocess.PIPE, cwd=ROOT
    ) as process:
        os.close(write)
        _, stderr = process.communicate(timeout=60)
    assert (process.returncode, stderr) == (141, b"")


def test_an_edit_that_prints_nothing_on_stdout_does_not_need_it(model: Path, tmp_path: Path) -> None:
    result = surgery_cli("rename-signature", model, "fixed", "f2", "-o", tmp_path / "out", stdout="closed")
    assert (result.returncode, result.stderr) == (0, f"wrote {tmp_path / 'out'}\n")
    assert "f2" in surgery.load(tmp_path / "out").proto.meta_graphs[0].signature_def


# --- stderr ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["full", "closed"])
@pytest.mark.parametrize("target", ["-o", "--in-place"])
def test_a_note_lost_on_stderr_never_fails_an_edit_that_was_written(
    model: Path, tmp_path: Path, where: str, target: str
) -> None:
    """`rename-signature m a b -o out 2>/dev/full` (or `2>&-`): the note `wrote out` is lost, the
    edit was written: exit 0."""
    out = tmp_path / "out"
    args = ["-o", out] if target == "-o" else ["--in-place"]
    result = surgery_cli("rename-signature", model, "fixed", "f2", *args, stderr=where)
    assert result.returncode == 0
    written = out if target == "-o" else model
    assert "f2" in surgery.load(written).proto.meta_graphs[0].signature_def
    assert leftovers(written.parent) == [] and leftovers(written) == []


@pytest.mark.parametrize("where", ["full", "closed"])
def test_a_lost_stderr_keeps_the_status_of_a_failure_and_of_a_warning(
    model: Path, tmp_path: Path, where: str
) -> None:
    refused = surgery_cli("rename-signature", model, "nope", "f2", "-o", tmp_path / "a", stderr=where)
    assert refused.returncode == 2 and not (tmp_path / "a").exists()
    warned = surgery_cli("set-dtype", model, "fixed", "row", "float16", "-o", tmp_path / "b", stderr=where)
    assert warned.returncode == 0 and (tmp_path / "b" / "saved_model.pb").is_file()


# --- a result lost after the write ----------------------------------------------------------------


@needs_dev_full
def test_convert_json_lost_on_a_full_stdout_fails_after_writing(model: Path, tmp_path: Path) -> None:
    """The JSON result the caller asked for is lost, the copy was written: exit 1, and the line
    says both."""
    out = tmp_path / "text"
    result = surgery_cli("convert", model, "--to", "pbtxt", "-o", out, "--json", stdout="full")
    assert (result.returncode, result.stderr) == (
        1,
        f"{PROG}: error: wrote {out}, but cannot print the result on stdout: No space left on device\n",
    )
    assert surgery.load(out).format == "pbtxt"


@needs_dev_full
def test_a_batch_summary_lost_on_a_full_stdout_fails_after_writing(model: Path, tmp_path: Path) -> None:
    other = Path(shutil.copytree(model, tmp_path / "other"))
    plan = tmp_path / "plan.yaml"
    plan.write_text("operations:\n  - {op: rename-signature, old: fixed, new: f2}\n")
    result = surgery_cli("apply", model, other, plan, "--suffix", "_v2", "--json", "-j", "1", stdout="full")
    assert (result.returncode, result.stderr) == (
        1,
        f"{PROG}: error: wrote 2 model(s), but cannot print the result on stdout: No space left on device\n",
    )
    assert all((Path(f"{m}_v2") / "saved_model.pb").is_file() for m in (model, other))


# --- the checkpoint index ------------------------------------------------------------------------


def unreadable_message(index: Path, reason: str) -> str:
    return (
        f"{PROG}: error: cannot read {index}: {reason}; fingerprint.pb hashes it: make it a readable "
        "file, or remove it if the model has no variables\n"
    )


@pytest.mark.parametrize("target", ["-o", "--in-place"])
def test_a_checkpoint_index_that_is_a_directory_stops_the_edit(
    model: Path, tmp_path: Path, target: str
) -> None:
    """Read as 0 before (TensorFlow's own fallback), which wrote a fingerprint.pb naming no
    checkpoint: now one line, exit 2, nothing written."""
    index = model / "variables" / "variables.index"
    index.unlink()
    index.mkdir()
    before = tree_bytes(model)
    out = tmp_path / "out"
    args = ["-o", out] if target == "-o" else ["--in-place"]
    result = surgery_cli("rename-signature", model, "fixed", "f2", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == unreadable_message(index, "it is a directory, not a regular file")
    assert tree_bytes(model) == before and leftovers(model) == []
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its permissions")
def test_a_checkpoint_index_without_read_permission_stops_the_edit(model: Path, tmp_path: Path) -> None:
    index = model / "variables" / "variables.index"
    index.chmod(0)
    try:
        result = surgery_cli("rename-signature", model, "fixed", "f2", "--in-place")
        assert (result.returncode, result.stderr) == (2, unreadable_message(index, "Permission denied"))
    finally:
        index.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_checkpoint_hash_is_zero_only_without_an_index(tmp_path: Path) -> None:
    """No variables/ or no index in it: 0, as TensorFlow records it. A FIFO there is opened
    without blocking (nobody writes into it) and refused: it is not a file."""
    model = copy_fixture("module_multi", tmp_path)
    index = model / "variables" / "variables.index"
    assert checkpoint_hash(model) != 0
    index.unlink()
    assert checkpoint_hash(model) == 0
    os.mkfifo(index)
    with pytest.raises(UnreadableIndex, match="it is a FIFO, a socket or a device, not a regular file"):
        checkpoint_hash(model)
    shutil.rmtree(model / "variables")
    assert checkpoint_hash(model) == 0
    (model / "variables").write_text("not a directory")
    assert checkpoint_hash(model) == 0
    (model / "variables").unlink()
    (model / "variables").mkdir()
    index.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UnreadableIndex, match="it is a broken symbolic link"):
        checkpoint_hash(model)


def test_convert_keeps_a_fingerprint_it_cannot_recheck(model: Path, tmp_path: Path) -> None:
    """The checkpoint index cannot be read, but the other four hashes match the content: the
    fingerprint.pb is carried over byte for byte (a conversion does not touch the checkpoint),
    with a warning that its checkpoint_hash was not checked."""
    index = model / "variables" / "variables.index"
    index.unlink()
    index.mkdir()
    out = tmp_path / "text"
    result = surgery_cli("convert", model, "--to", "pbtxt", "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fingerprint"] == "kept"
    assert result.stderr == (
        f"{PROG}: warning: cannot read {index} (it is a directory, not a regular file): fingerprint.pb "
        "is kept as it is, its checkpoint_hash unchecked\n"
    )
    assert (out / "fingerprint.pb").read_bytes() == (model / "fingerprint.pb").read_bytes()


def test_convert_refuses_a_stale_fingerprint_it_cannot_recompute(model: Path, tmp_path: Path) -> None:
    """A hand-edited text copy makes fingerprint.pb stale; with the checkpoint index unreadable,
    the new one cannot be computed: refused, nothing written (before: a checkpoint_hash of 0)."""
    text = tmp_path / "text"
    assert surgery_cli("convert", model, "--to", "pbtxt", "-o", text).returncode == 0
    pbtxt = text / "saved_model.pbtxt"
    pbtxt.write_text(
        pbtxt.read_text().replace("tensorflow/serving/predict", "tensorflow/serving/classify", 1)
    )
    index = text / "variables" / "variables.index"
    index.unlink()
    index.mkdir()
    out = tmp_path / "binary"
    result = surgery_cli("convert", text, "--to", "pb", "-o", out)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == unreadable_message(index, "it is a directory, not a regular file")
    assert not out.exists() and leftovers(tmp_path) == []
    stored = FingerprintDef.FromString((text / "fingerprint.pb").read_bytes())
    assert stored.checkpoint_hash != 0


# --- edits that change nothing -------------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry of `directory` (and itself) by inode, size and modification time."""
    entries = [directory, *sorted(directory.rglob("*"))]
    return {
        str(p.relative_to(directory)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
        for p in entries
    }


NO_OPS = [
    ["rename-signature", "{model}", "fixed", "fixed"],
    ["rename-tensor", "{model}", "fixed_row:0", "fixed_row:0"],
    ["set-shape", "{model}", "fixed", "row", "1,4"],
    ["set-method", "{model}", "fixed", "tensorflow/serving/predict"],
    ["rename-input", "{model}", "fixed", "row", "row"],
]


@pytest.mark.parametrize("args", NO_OPS, ids=lambda a: a[0])
def test_an_edit_that_changes_nothing_writes_nothing_in_place(model: Path, args: list[str]) -> None:
    """Same inodes, sizes and times, no lock or temporary file, and a note saying so."""
    before = snapshot(model)
    result = surgery_cli(*[a.format(model=model) for a in args], "--in-place")
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == f"no change: the edit leaves {model} as it is; nothing was written\n"
    assert snapshot(model) == before


def test_a_no_op_in_place_adds_no_fingerprint(model: Path) -> None:
    (model / "fingerprint.pb").unlink()
    before = snapshot(model)
    result = surgery_cli("set-method", model, "fixed", "tensorflow/serving/predict", "--in-place")
    assert result.returncode == 0 and result.stderr.startswith("no change: ")
    assert snapshot(model) == before and not (model / "fingerprint.pb").exists()


def test_an_edit_that_changes_nothing_still_writes_the_copy_asked_for(model: Path, tmp_path: Path) -> None:
    """-o OUT: the copy is written (the caller named OUT), the model's files byte for byte, and
    the note says it is unchanged."""
    out = tmp_path / "out"
    result = surgery_cli("set-shape", model, "fixed", "row", "1,4", "-o", out)
    assert result.returncode == 0
    assert result.stderr == f"wrote {out}, an unchanged copy: the edit leaves {model} as it is\n"
    assert tree_bytes(out) == tree_bytes(model)


IDEMPOTENT = 'operations:\n  - {op: rename-signature, regex: "^(?!v2_)(.+)$", new: "v2_\\\\1"}\n'


def test_a_batch_marks_the_models_it_leaves_unchanged(tmp_path: Path) -> None:
    """In place: the model already edited is unchanged (untouched on disk), the count says so;
    --json gives each row's `changed` and the `unchanged` count."""
    fleet = tmp_path / "fleet"
    done, fresh = copy_fixture("module_multi", fleet / "a"), copy_fixture("module_multi", fleet / "b")
    plan = tmp_path / "plan.yaml"
    plan.write_text(IDEMPOTENT)
    assert surgery_cli("apply", done, plan, "--in-place").returncode == 0
    before = snapshot(done)
    result = surgery_cli("apply", done, fresh, plan, "--in-place", "-j", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"ok   {done} -> {done} (unchanged)",
        f"ok   {fresh} -> {fresh}",
        "2 model(s): 1 written, 1 unchanged, 0 failed",
    ]
    assert snapshot(done) == before
    copies = surgery_cli("apply", done, fresh, plan, "--suffix", "_v2", "--json", "-j", "1")
    report = json.loads(copies.stdout)
    assert [r["changed"] for r in report["results"]] == [False, False]
    assert (report["ok"], report["unchanged"], report["failed"]) == (2, 2, 0)
    other = copy_fixture("module_multi", tmp_path / "c")
    text = surgery_cli("apply", done, other, plan, "--suffix", "_v3", "-j", "1")
    assert text.stdout.splitlines() == [
        f"ok   {done} -> {done}_v3 (unchanged)",
        f"ok   {other} -> {other}_v3",
        "2 model(s): 2 written (1 unchanged), 0 failed",
    ]
