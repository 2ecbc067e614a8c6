"""The runner (`surgery.runner`): one model on disk, from Python as from the command line.

A job is picklable and runs the same in a worker process; the Python API edits a URL as the
command does; `run` reports where `execute` raises; the command line is a thin layer over it.
"""

from __future__ import annotations

import multiprocessing
import pickle
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import fsspec
import pytest

import surgery
from conftest import FIXTURES, run_cli, tree_bytes
from surgery.model import parse
from surgery.runner import EditResult, Job, OperationCall, execute, run

MODEL = FIXTURES / "module_multi"
MEM = fsspec.filesystem("memory")
RENAME = OperationCall("rename-signature", {"old": "fixed", "new": "f2"})


def test_a_job_runs_the_same_in_a_worker_process(tmp_path: Path) -> None:
    """Pickled to a fresh process (spawn: nothing inherited), it writes what it writes here."""
    job = Job(str(MODEL), RENAME, output=str(tmp_path / "worker"))
    assert pickle.loads(pickle.dumps(job)) == job
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(run, job).result()
    local = run(Job(str(MODEL), RENAME, output=str(tmp_path / "here")))
    assert (remote.ok, remote.output, local.ok) == (True, str(tmp_path / "worker"), True)
    assert (tmp_path / "worker" / "saved_model.pb").read_bytes() == (
        tmp_path / "here" / "saved_model.pb"
    ).read_bytes()


def test_the_command_line_writes_what_the_runner_writes(tmp_path: Path) -> None:
    run_cli("rename-signature", MODEL, "fixed", "f2", "-o", tmp_path / "cli", check=True)
    execute(Job(str(MODEL), RENAME, output=str(tmp_path / "py")))
    assert (tmp_path / "cli" / "saved_model.pb").read_bytes() == (
        tmp_path / "py" / "saved_model.pb"
    ).read_bytes()


def test_run_reports_what_execute_raises(tmp_path: Path) -> None:
    wrong = OperationCall("set-method", {"signature": "nope", "method": "m"})
    job = Job(str(MODEL), wrong, output=str(tmp_path / "out"))
    with pytest.raises(surgery.EditError) as raised:
        execute(job)
    result = run(job)
    assert isinstance(result, EditResult)
    assert (result.ok, result.output, result.error) == (False, None, str(raised.value))
    assert result.seconds is not None and result.seconds > 0
    assert not (tmp_path / "out").exists()


def test_an_unknown_operation_is_refused_in_one_line() -> None:
    result = run(Job(str(MODEL), OperationCall("rename-signatures", {}), dry_run=True))
    assert result.error is not None and result.error.startswith("no edit 'rename-signatures': the edits are ")


def test_a_job_needs_a_target_unless_it_is_a_dry_run() -> None:
    with pytest.raises(surgery.EditError, match="give an output or in_place"):
        execute(Job(str(MODEL), RENAME))
    with pytest.raises(surgery.EditError, match="not both"):
        execute(Job(str(MODEL), RENAME, output="x", in_place=True))


@pytest.fixture
def bucket() -> Iterator[str]:
    prefix = f"runner-{uuid.uuid4().hex[:8]}"
    for rel, data in tree_bytes(MODEL).items():
        MEM.pipe_file(f"/{prefix}/m/{rel}", data)
    yield prefix
    if MEM.exists(f"/{prefix}"):
        MEM.rm(f"/{prefix}", recursive=True)


def test_python_edits_a_url_in_place_and_to_a_url(bucket: str) -> None:
    """What `rename-signature memory://... --in-place` and `-o memory://...` do, from Python."""
    result = execute(Job(f"memory://{bucket}/m", RENAME, in_place=True))
    assert (result.ok, result.output) == (True, f"memory://{bucket}/m")
    data = MEM.cat_file(f"/{bucket}/m/saved_model.pb")
    assert "f2" in parse(data, "pb").meta_graphs[0].signature_def
    back = OperationCall("rename-signature", {"old": "f2", "new": "fixed"})
    copied = execute(Job(f"memory://{bucket}/m", back, output=f"memory://{bucket}/copy"))
    assert copied.output == f"memory://{bucket}/copy"
    assert MEM.cat_file(f"/{bucket}/copy/saved_model.pb") == (MODEL / "saved_model.pb").read_bytes()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"signature": "fixed"}, "set-method: argument 'method' is missing; it takes signature, method"),
        (
            {"signature": "fixed", "method": "m", "colour": 1},
            "set-method: no argument 'colour'; it takes signature, method",
        ),
    ],
)
def test_an_operation_call_with_wrong_arguments_is_an_edit_error(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(surgery.EditError) as raised:
        execute(Job(str(MODEL), OperationCall("set-method", values), dry_run=True))
    assert str(raised.value) == message
