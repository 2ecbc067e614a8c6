"""MODEL and OUT as fsspec URLs: memory:// for reading and writing, a local HTTP server for reading.

memory:// is one store per process, so the commands run in-process (`surgery.cli.main`); every
test works under its own prefix and removes it afterwards.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

import surgery
from conftest import FIXTURES, tree_bytes
from surgery.cli import main

MEM = fsspec.filesystem("memory")
PB = "saved_model.pb"


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _store(prefix: str) -> dict[str, bytes]:
    """Every key under memory://`prefix` (relative) with its bytes."""
    root = f"/{prefix}/"
    return {path[len(root) :]: MEM.cat_file(path) for path in MEM.find(root)}


@pytest.fixture
def bucket() -> Iterator[str]:
    """A fresh memory:// prefix holding a copy of module_multi at `<prefix>/m`."""
    prefix = f"bucket-{uuid.uuid4().hex[:8]}"
    for rel, data in tree_bytes(FIXTURES / "module_multi").items():
        MEM.pipe_file(f"/{prefix}/m/{rel}", data)
    yield prefix
    if MEM.exists(f"/{prefix}"):
        MEM.rm(f"/{prefix}", recursive=True)


def _signatures(url_or_path: str | Path) -> list[str]:
    shown = surgery.load(url_or_path).proto.meta_graphs[0].signature_def
    return sorted(shown)


def _load_url(prefix: str, name: str) -> list[str]:
    """The signature keys of the model stored at memory://prefix/name, read back through a local copy."""
    local = Path(f"/tmp/{prefix}-{name}-{uuid.uuid4().hex[:6]}")
    try:
        for rel, data in _store(f"{prefix}/{name}").items():
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            (local / rel).write_bytes(data)
        assert surgery.check(surgery.load(local)).ok
        return _signatures(local)
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _no_temporary_keys(prefix: str) -> None:
    assert not [k for k in MEM.find(f"/{prefix}") if ".surgery-tmp-" in k]


# --- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["show", "--json"], ["check", "--json"], ["explain", "--json"]])
def test_reading_a_url_is_reading_the_model(
    bucket: str, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    name, *flags = command
    local = _run(capsys, name, FIXTURES / "module_multi", *flags)
    remote = _run(capsys, name, f"memory://{bucket}/m", *flags)
    assert remote == local
    assert remote[0] == 0


def test_diff_between_a_url_and_a_path(bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    MEM.rm_file(f"/{bucket}/m/fingerprint.pb")  # diff reads signatures only
    status, out, _ = _run(capsys, "diff", f"memory://{bucket}/m", FIXTURES / "module_multi")
    assert (status, out) == (0, "no signature-level differences\n")


# --- writing ---------------------------------------------------------------------------------------


def test_edit_from_url_to_url(bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = _store(f"{bucket}/m")
    status, _, err = _run(
        capsys, "rename-signature", f"memory://{bucket}/m", "fixed", "f2", "-o", f"memory://{bucket}/out"
    )
    assert (status, err) == (0, f"wrote memory://{bucket}/out\n")
    assert _store(f"{bucket}/m") == before
    written = _store(f"{bucket}/out")
    assert sorted(written) == sorted(before)  # the whole directory, variables included
    assert written["variables/variables.index"] == before["variables/variables.index"]
    assert "f2" in _load_url(bucket, "out")
    _no_temporary_keys(bucket)


def test_edit_local_to_url_and_url_to_local(
    bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = FIXTURES / "module_multi"
    assert _run(capsys, "rename-signature", model, "fixed", "f2", "-o", f"memory://{bucket}/up")[0] == 0
    assert "f2" in _load_url(bucket, "up")
    status, _, err = _run(
        capsys, "rename-signature", f"memory://{bucket}/up", "f2", "f3", "-o", tmp_path / "down"
    )
    assert status == 0, err
    assert "f3" in _signatures(tmp_path / "down")
    assert (tmp_path / "down" / "variables" / "variables.index").read_bytes() == (
        model / "variables" / "variables.index"
    ).read_bytes()


def test_in_place_on_a_url_changes_only_the_model_files(
    bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _store(f"{bucket}/m")
    status, _, err = _run(
        capsys, "set-method", f"memory://{bucket}/m", "preprocess", "tensorflow/serving/regress", "--in-place"
    )
    assert (status, err) == (0, f"wrote memory://{bucket}/m\n")
    after = _store(f"{bucket}/m")
    assert sorted(after) == sorted(before)
    assert {k for k in after if after[k] != before[k]} == {PB, "fingerprint.pb"}
    _no_temporary_keys(bucket)


def test_an_existing_url_is_refused_before_anything(bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = _store(bucket)
    # The input does not even exist: OUT is checked first.
    status, out, err = _run(
        capsys, "rename-signature", f"memory://{bucket}/missing", "a", "b", "-o", f"memory://{bucket}/m"
    )
    assert (status, out) == (2, "")
    assert err == (
        f"savedmodel-surgery: error: memory://{bucket}/m already exists: "
        "choose a new location or replace it (--force, force=True)\n"
    )
    assert _store(bucket) == before


def test_force_replaces_and_drops_stale_keys(bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    MEM.pipe_file(f"/{bucket}/out/stale.txt", b"old")
    MEM.pipe_file(f"/{bucket}/out/{PB}", b"old")
    status, _, err = _run(
        capsys,
        "rename-signature",
        f"memory://{bucket}/m",
        "fixed",
        "f2",
        "-o",
        f"memory://{bucket}/out",
        "--force",
    )
    assert status == 0, err
    assert "stale.txt" not in _store(f"{bucket}/out")
    assert "f2" in _load_url(bucket, "out")


def test_convert_to_a_url(bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(
        capsys, "convert", f"memory://{bucket}/m", "--to", "pbtxt", "-o", f"memory://{bucket}/text", "--json"
    )
    assert status == 0
    result = json.loads(out)
    assert (result["input"], result["output"]) == (f"memory://{bucket}/m", f"memory://{bucket}/text")
    assert "saved_model.pbtxt" in _store(f"{bucket}/text")


def test_dry_run_on_urls_writes_nothing(bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = _store(bucket)
    status, out, _ = _run(
        capsys,
        "rename-signature",
        f"memory://{bucket}/m",
        "fixed",
        "f2",
        "-o",
        f"memory://{bucket}/out",
        "--dry-run",
    )
    assert status == 0 and "signature-renamed: fixed -> f2" in out
    assert (
        _run(capsys, "rename-signature", f"memory://{bucket}/m", "fixed", "f2", "--in-place", "--dry-run")[0]
        == 0
    )
    assert _store(bucket) == before


# --- failures half-way: the final saved_model.pb is absent or old ---------------------------------


def _fail_on(monkeypatch: pytest.MonkeyPatch, method: str, when: Any) -> None:
    original = getattr(MemoryFileSystem, method)

    @functools.wraps(original)
    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if when(*args):
            raise OSError(5, "Input/output error")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, method, failing)


@pytest.mark.parametrize(
    ("method", "when"),
    [
        ("put_file", lambda lpath, rpath, *a: str(rpath).endswith("variables.index")),  # uploading
        ("put_file", lambda lpath, rpath, *a: str(rpath).endswith(PB)),
        ("cp_file", lambda src, dst, *a: str(dst).endswith("variables.index")),  # copying to the final keys
        ("cp_file", lambda src, dst, *a: str(dst).endswith(PB)),
    ],
    ids=["upload-variables", "upload-pb", "copy-variables", "copy-pb"],
)
@pytest.mark.parametrize("existing", [False, True], ids=["new", "force"])
def test_a_failed_upload_leaves_no_new_model(
    bucket: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    when: Any,
    existing: bool,
) -> None:
    if existing:
        for rel, data in _store(f"{bucket}/m").items():
            MEM.pipe_file(f"/{bucket}/out/{rel}", data)
    old = _store(f"{bucket}/out")
    _fail_on(monkeypatch, method, when)
    args = ["rename-signature", f"memory://{bucket}/m", "fixed", "f2", "-o", f"memory://{bucket}/out"]
    status, out, err = _run(capsys, *args, *(["--force"] if existing else []))
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith(
        f"savedmodel-surgery: error: cannot write memory://{bucket}/out: "
    )
    now = _store(f"{bucket}/out")
    assert now.get(PB) == old.get(PB)  # absent, or the old one
    if method == "put_file":
        assert now == old  # the upload never reached the final keys
        assert err.rstrip().endswith("nothing was written")
    else:
        assert err.rstrip().endswith("saved_model.pb was not replaced")
    _no_temporary_keys(bucket)


def test_a_failed_in_place_upload_keeps_the_old_model(
    bucket: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _store(f"{bucket}/m")
    _fail_on(monkeypatch, "cp_file", lambda src, dst, *a: str(dst).endswith(PB))
    status, _, err = _run(capsys, "rename-signature", f"memory://{bucket}/m", "fixed", "f2", "--in-place")
    assert status == 2 and "saved_model.pb was not replaced" in err
    after = _store(f"{bucket}/m")
    assert after[PB] == before[PB]
    assert "fingerprint.pb" not in after  # removed before the commit: never stale beside a new pb
    _no_temporary_keys(bucket)


# --- errors: one line, exit 2, nothing written --------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "memory://{b}/nope"], "memory://{b}/nope: no such model: nothing is stored under that URL"),
        (["show", "zzz://x/m"], "zzz://x/m: unknown protocol zzz://"),
        (
            ["check", "memory://{b}/m/variables"],
            "memory://{b}/m/variables holds no saved_model.pb or saved_model.pbtxt",
        ),
        (
            ["rename-signature", "memory://{b}/m", "fixed", "f2", "-o", "http://127.0.0.1:9/out"],
            "http(s):// is read-only",
        ),
        (
            ["apply", "memory://{b}/m", "plan.yaml", "--suffix", "_v2"],
            "a batch run takes local models and outputs",
        ),
    ],
)
def test_url_errors_are_one_line(
    bucket: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = _store(bucket)
    status, out, err = _run(capsys, *[a.format(b=bucket) for a in args])
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1 and message.format(b=bucket) in err, err
    assert _store(bucket) == before


def test_a_cloud_protocol_without_its_package_names_the_extra(capsys: pytest.CaptureFixture[str]) -> None:
    # gcsfs is not a test dependency: its absence is the case tested.
    if "gcsfs" in sys.modules or _importable("gcsfs"):
        pytest.skip("gcsfs is installed here")
    status, _, err = _run(capsys, "show", "gs://bucket/model")
    assert status == 2
    assert err.rstrip().endswith("pip install 'savedmodel-surgery[gcs]'")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_without_fsspec_a_url_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec raises ImportError
    status, _, err = _run(capsys, "show", "s3://bucket/model")
    assert (status, err) == (
        2,
        "savedmodel-surgery: error: s3://bucket/model: URLs need fsspec: "
        "pip install 'savedmodel-surgery[remote]'\n",
    )


def test_permission_denied_is_one_line(
    bucket: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Any, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(MemoryFileSystem, "get_file", denied)
    status, _, err = _run(capsys, "show", f"memory://{bucket}/m")
    assert (status, err) == (
        2,
        f"savedmodel-surgery: error: cannot read memory://{bucket}/m: permission denied\n",
    )


def test_local_paths_and_file_urls_stay_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = shutil.copytree(FIXTURES / "module_multi", tmp_path / "m")
    status, _, err = _run(
        capsys, "rename-signature", f"file://{model}", "fixed", "f2", "-o", f"file://{tmp_path}/out"
    )
    assert status == 0, err
    assert "f2" in _signatures(tmp_path / "out")


# --- HTTP: read-only ---------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_root() -> Iterator[str]:
    """A local HTTP server serving the fixture models read-only (GET and HEAD, with index pages)."""
    handler = functools.partial(_Quiet, directory=str(FIXTURES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_show_check_diff_explain_over_http(http_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("module_multi", "tf1_two_metagraphs"):
        assert _run(capsys, "show", f"{http_root}/{name}", "--json") == _run(
            capsys, "show", FIXTURES / name, "--json"
        )
        assert _run(capsys, "check", f"{http_root}/{name}")[0] == 0
    status, out, _ = _run(capsys, "diff", f"{http_root}/module_multi", f"{http_root}/tf1_two_metagraphs")
    assert status == 1 and "signature-removed" in out
    status, out, _ = _run(capsys, "explain", f"{http_root}/module_multi/", "--format", "html")
    assert status == 0 and "How module_multi serves its signatures" in out


def test_edit_from_http_to_local(http_root: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(
        capsys, "rename-signature", f"{http_root}/module_multi", "fixed", "f2", "-o", tmp_path / "out"
    )
    assert status == 0, err
    assert "f2" in _signatures(tmp_path / "out")
    assert tree_bytes(tmp_path / "out" / "variables") == tree_bytes(FIXTURES / "module_multi" / "variables")


def test_http_is_read_only(http_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(
        capsys, "rename-signature", f"{http_root}/module_multi", "fixed", "f2", "--in-place"
    )
    assert status == 2 and "http(s):// is read-only here" in err
    status, _, err = _run(capsys, "show", f"{http_root}/no_such_model")
    assert status == 2
    assert "no such model" in err or "not found" in err, err
