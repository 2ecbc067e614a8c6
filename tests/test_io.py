"""Reading and writing: lossless round trips, atomic output, carried-over files."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import FIXTURE_NAMES, FIXTURES, copy_fixture, tree_bytes
from fuzzing import varint
from surgery import lazy, storage
from surgery import model as surgery_model
from surgery.edits import rename_signature
from surgery.schema import FingerprintDef, SavedModel, from_text, to_text
from surgery.storage import files as storage_files
from surgery.storage import locks as storage_locks


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_unedited_model_round_trips_byte_for_byte(name: str, tmp_path: Path) -> None:
    model = surgery.load(FIXTURES / name)
    assert model.serialize() == (FIXTURES / name / "saved_model.pb").read_bytes()
    surgery.save(model, tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(FIXTURES / name)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_text_format_converts_back_exactly(name: str) -> None:
    model = surgery.load(FIXTURES / name)
    again = from_text(to_text(model.proto), SavedModel())
    assert again.SerializeToString(deterministic=True) == model.source


def test_any_payloads_keep_tensorflow_type_urls_through_text() -> None:
    """TF1 asset collections hold Any payloads typed `tensorflow.AssetFileDef`: text format expands them."""
    from surgery_proto.tensorflow.core.protobuf.meta_graph_pb2 import AssetFileDef

    payload = AssetFileDef(filename="vocab.txt")
    payload.tensor_info.name = "Const:0"
    model = SavedModel()
    entry = model.meta_graphs.add().collection_def["saved_model_assets"].any_list.value.add()
    entry.type_url = "type.googleapis.com/tensorflow.AssetFileDef"
    entry.value = payload.SerializeToString()
    text = to_text(model)
    assert "[type.googleapis.com/tensorflow.AssetFileDef] {\n" in text
    assert 'filename: "vocab.txt"' in text
    assert from_text(text, SavedModel()).SerializeToString(deterministic=True) == model.SerializeToString(
        deterministic=True
    )


def test_pbtxt_model_is_read_and_written_as_text(tmp_path: Path) -> None:
    src = copy_fixture("module_multi", tmp_path)
    pb = src / "saved_model.pb"
    (src / "saved_model.pbtxt").write_text(to_text(surgery.load(src).proto))
    pb.unlink()
    model = surgery.load(src)
    assert model.format == "pbtxt"
    surgery.save(model, tmp_path / "same")
    assert (tmp_path / "same" / "saved_model.pbtxt").read_bytes() == (src / "saved_model.pbtxt").read_bytes()
    surgery.save(rename_signature(model, "fixed", "fixed_batch"), tmp_path / "edited")
    edited = surgery.load(tmp_path / "edited")
    assert edited.format == "pbtxt" and not (tmp_path / "edited" / "saved_model.pb").exists()
    assert "fixed_batch" in edited.proto.meta_graphs[0].signature_def


def test_unknown_fields_survive_an_edit(tmp_path: Path) -> None:
    """Fields this schema does not know (a newer TensorFlow's) are kept through load, edit, save."""
    src = copy_fixture("module_multi", tmp_path)
    model = surgery.load(src)
    # Field 999 (varint 7) on the SavedModel and field 998 (bytes) inside the first meta graph.
    meta = model.proto.meta_graphs[0].SerializeToString() + bytes([0xB2, 0x3E, 0x03]) + b"new"
    data = b"".join(
        [
            model.proto.SerializeToString().split(b"\x12", 1)[0],
            b"\x12" + varint(len(meta)) + meta,
            bytes([0xB8, 0x3E, 0x07]),
        ]
    )
    (src / "saved_model.pb").write_bytes(data)
    model = surgery.load(src)
    surgery.save(rename_signature(model, "fixed", "fixed_batch"), tmp_path / "out")
    out = (tmp_path / "out" / "saved_model.pb").read_bytes()
    assert bytes([0xB8, 0x3E, 0x07]) in out
    assert bytes([0xB2, 0x3E, 0x03]) + b"new" in out
    assert "fixed_batch" in SavedModel.FromString(out).meta_graphs[0].signature_def


def test_output_carries_every_other_file_hard_linked(tmp_path: Path) -> None:
    src = copy_fixture("keras2_legacy", tmp_path)
    (src / "assets.extra").mkdir()
    (src / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"warmup")
    model = rename_signature(surgery.load(src), "serving_default", "predict")
    out = surgery.save(model, tmp_path / "out")
    for rel in ["keras_metadata.pb", "variables/variables.index", "assets.extra/tf_serving_warmup_requests"]:
        assert (out / rel).read_bytes() == (src / rel).read_bytes()
        assert os.stat(out / rel).st_ino == os.stat(src / rel).st_ino, f"{rel} was copied, not hard-linked"
    assert (out / "saved_model.pb").read_bytes() != (src / "saved_model.pb").read_bytes()
    assert (out / "fingerprint.pb").read_bytes() != (src / "fingerprint.pb").read_bytes()


def test_in_place_replaces_only_the_model_files(tmp_path: Path) -> None:
    src = copy_fixture("module_multi", tmp_path)
    before = tree_bytes(src)
    surgery.save(rename_signature(surgery.load(src), "fixed", "fixed_batch"), in_place=True)
    after = tree_bytes(src)
    assert sorted(after) == sorted(before)
    assert {k for k in after if after[k] != before[k]} == {"saved_model.pb", "fingerprint.pb"}
    assert [p.name for p in src.iterdir() if "surgery-tmp" in p.name] == []


def _record_renames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every rename the save makes: (how, source name, target name)."""
    calls: list[tuple[str, str, str]] = []
    for name in ("rename", "replace"):
        real = getattr(os, name)

        def recorded(src: object, dst: object, *, _real: object = real, _name: str = name) -> None:
            calls.append((_name, Path(str(src)).name, Path(str(dst)).name))
            _real(src, dst)  # type: ignore[operator]

        monkeypatch.setattr(os, name, recorded)
    real2 = storage_files.rename2

    def recorded2(src: Path, dst: Path, flags: int) -> bool:
        calls.append((f"renameat2({flags})", src.name, dst.name))
        return bool(real2(src, dst, flags))

    monkeypatch.setattr(storage_files, "rename2", recorded2)
    return calls


def _in_place_edit(model: Path) -> tuple[bytes, bytes]:
    surgery.save(rename_signature(surgery.load(model), "fixed", "fixed_batch"), in_place=True)
    fingerprint = FingerprintDef.FromString((model / "fingerprint.pb").read_bytes())
    fingerprint.ClearField("uuid")
    return (model / "saved_model.pb").read_bytes(), fingerprint.SerializeToString(deterministic=True)


@pytest.mark.skipif(storage_files.renameat2() is None, reason="needs renameat2")
def test_in_place_swaps_the_model_file_instead_of_renaming_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RENAME_EXCHANGE, not a rename over the old pb (which makes ext4 write the new file out at once)."""
    model = copy_fixture("module_multi", tmp_path / "a")
    old_inode = os.stat(model / "saved_model.pb").st_ino
    calls = _record_renames(monkeypatch)
    _in_place_edit(model)
    pb_renames = [c for c in calls if c[2] == "saved_model.pb"]
    assert [c[0] for c in pb_renames] == [f"renameat2({storage_files.RENAME_EXCHANGE})"]
    assert pb_renames[0][1].startswith(".saved_model.pb.surgery-tmp-")
    assert os.stat(model / "saved_model.pb").st_ino != old_inode
    assert sorted(p.name for p in model.iterdir()) == sorted(
        p.name for p in (FIXTURES / "module_multi").iterdir()
    )


@pytest.mark.parametrize("missing", ["renameat2", "link"])
def test_in_place_without_exchange_or_links_renames_over_and_writes_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """Where the file system has no RENAME_EXCHANGE (or no hard links), a plain rename commits."""
    expected = _in_place_edit(copy_fixture("module_multi", tmp_path / "reference"))
    model = copy_fixture("module_multi", tmp_path / "b")
    if missing == "renameat2":
        monkeypatch.setattr(storage_files, "rename2", lambda src, dst, flags: False)
    else:

        def no_link(src: object, dst: object) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    calls = _record_renames(monkeypatch)
    assert _in_place_edit(model) == expected
    tried = [f"renameat2({storage_files.RENAME_EXCHANGE})"] if missing == "renameat2" else []
    assert [c[0] for c in calls if c[2] == "saved_model.pb"] == [*tried, "replace"]
    assert [p.name for p in model.iterdir() if storage.is_temporary(p.name)] == []


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("old")
    model = rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "fixed_batch")
    with pytest.raises(surgery.SavedModelIOError, match="already exists"):
        surgery.save(model, out)
    assert (out / "old").read_text() == "old"
    surgery.save(model, out, force=True)
    assert not (out / "old").exists()
    assert "fixed_batch" in surgery.load(out).proto.meta_graphs[0].signature_def
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    src = copy_fixture("module_multi", tmp_path)
    os.symlink("/etc/passwd", src / "variables" / "outside")
    model = rename_signature(surgery.load(src), "fixed", "fixed_batch")
    with pytest.raises(surgery.SavedModelIOError, match="links outside the model directory"):
        surgery.save(model, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["module_multi"]


def test_unedited_non_canonical_file_round_trips_byte_for_byte(tmp_path: Path) -> None:
    """A file in C++ map order (as TensorFlow's C++ writes it) is not re-serialized when unedited."""
    from typing import cast

    from google.protobuf.descriptor import Descriptor

    from surgery.wire import cpp_deterministic

    src = copy_fixture("module_multi", tmp_path)
    data = (src / "saved_model.pb").read_bytes()
    cpp = cpp_deterministic(data, cast(Descriptor, SavedModel.DESCRIPTOR))
    assert cpp != data
    (src / "saved_model.pb").write_bytes(cpp)
    model = surgery.load(src)
    assert not model.edited
    surgery.save(model, tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(src)
    assert rename_signature(model, "fixed", "fixed_batch").edited


# --- writes: permissions, leftovers of killed runs, systems without renameat2, stale reads ---------


def test_written_files_and_directories_get_ordinary_permissions(tmp_path: Path) -> None:
    """OUT gets the umask's mode (not a temporary directory's 0700); in place keeps each file's mode."""
    src = copy_fixture("module_multi", tmp_path / "in")
    (src / "saved_model.pb").chmod(0o640)
    (src / "fingerprint.pb").chmod(0o640)
    old_umask = os.umask(0o022)
    try:
        out = surgery.save(rename_signature(surgery.load(src), "fixed", "a"), tmp_path / "out")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755
    surgery.save(rename_signature(surgery.load(src), "fixed", "b"), in_place=True)
    assert stat.S_IMODE(os.stat(src / "saved_model.pb").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(src / "fingerprint.pb").st_mode) == 0o640


def test_next_write_removes_a_dead_runs_staging_directory(tmp_path: Path) -> None:
    """`.OUT.surgery-tmp-PID-X` of a dead process goes; a live process's, and other names, stay."""
    dead = tmp_path / ".out.surgery-tmp-999999999-abc"
    alive = tmp_path / f".out.surgery-tmp-{os.getppid()}-abc"
    other = tmp_path / ".other.surgery-tmp-999999999-abc"
    for leftover in (dead, alive, other):
        leftover.mkdir()
        (leftover / "saved_model.pb").write_bytes(b"partial")
    model = rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "a")
    surgery.save(model, tmp_path / "out")
    assert not dead.exists() and alive.exists() and other.exists()


def test_a_copy_never_carries_an_interrupted_edits_files(tmp_path: Path) -> None:
    """The in-place journal of a killed run is resolved on load, and never copied into OUT."""
    src = copy_fixture("module_multi", tmp_path / "in")
    (src / ".saved_model.pb.surgery-tmp-999999999-abc").write_bytes(b"half")
    out = surgery.save(surgery.load(src), tmp_path / "out")
    assert tree_bytes(out) == tree_bytes(FIXTURES / "module_multi")
    assert tree_bytes(src) == tree_bytes(FIXTURES / "module_multi")


@pytest.fixture
def no_renameat2(monkeypatch: pytest.MonkeyPatch) -> None:
    """A system without renameat2 (not Linux, old glibc): plain rename(2)."""
    from surgery.storage import files as storage_files

    monkeypatch.setattr(storage_files, "renameat2", lambda: None)


def test_output_without_renameat2(tmp_path: Path, no_renameat2: None) -> None:
    model = rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "a")
    out = surgery.save(model, tmp_path / "out")
    with pytest.raises(surgery.SavedModelIOError, match="already exists"):
        surgery.save(model, out)
    (out / "extra").write_text("old")
    surgery.save(model, out, force=True)
    assert not (out / "extra").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_forced_output_interrupted_without_renameat2_is_put_back(tmp_path: Path, no_renameat2: None) -> None:
    """Killed between moving the old OUT away and renaming the new one in: the next run restores it."""
    old = tmp_path / ".out.surgery-old-999999999-abc"
    old.mkdir()
    (old / "keep").write_text("the old output")
    model = rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "a")
    with pytest.raises(surgery.SavedModelIOError, match="already exists"):
        surgery.save(model, tmp_path / "out")
    assert (tmp_path / "out" / "keep").read_text() == "the old output"
    assert not old.exists()


def test_in_place_save_refuses_a_model_changed_since_it_was_read(tmp_path: Path) -> None:
    """Two API users editing one model: the second save would silently drop the first's edit."""
    src = copy_fixture("module_multi", tmp_path)
    first = surgery.load(src)
    second = surgery.load(src)
    surgery.save(rename_signature(first, "fixed", "a"), in_place=True)
    with pytest.raises(surgery.SavedModelIOError, match="changed on disk since it was read"):
        surgery.save(rename_signature(second, "masked", "b"), in_place=True)
    assert "a" in surgery.load(src).proto.meta_graphs[0].signature_def
    # The first can go on editing: its record of the file follows its own writes.
    surgery.save(rename_signature(first, "masked", "c"), in_place=True)
    assert {"a", "c"} <= set(surgery.load(src).proto.meta_graphs[0].signature_def)


def test_lock_is_reentrant_and_refuses_another_holder(tmp_path: Path) -> None:
    from surgery.storage import model_lock

    src = copy_fixture("module_multi", tmp_path)
    with model_lock(src, exclusive=True), model_lock(src, exclusive=True):
        surgery.save(rename_signature(surgery.load(src), "fixed", "a"), in_place=True)
    with model_lock(src, exclusive=False):
        with (
            pytest.raises(surgery.SavedModelIOError, match="in use by another"),
            model_lock(src, exclusive=True),
        ):
            pass
        surgery.save(surgery.load(src), tmp_path / "copy")  # a copy shares the lock
    assert [p.name for p in src.iterdir() if "surgery" in p.name] == []


def test_unedited_in_place_save_writes_nothing(tmp_path: Path) -> None:
    src = copy_fixture("module_multi", tmp_path)
    inode = os.stat(src / "saved_model.pb").st_ino
    surgery.save(surgery.load(src), in_place=True)
    assert os.stat(src / "saved_model.pb").st_ino == inode


# --- copies published together (a batch's commit group) --------------------------------------


def _normalized_fingerprint(tree: dict[str, bytes]) -> dict[str, bytes]:
    from surgery.schema import FingerprintDef

    out = dict(tree)
    if "fingerprint.pb" in tree:
        fingerprint = FingerprintDef.FromString(tree["fingerprint.pb"])
        fingerprint.ClearField("uuid")
        out["fingerprint.pb"] = fingerprint.SerializeToString(deterministic=True)
    return out


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(device, inode) of every fsync from now on."""
    synced: list[tuple[int, int]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        synced.append((info.st_dev, info.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def _inode(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_group_writes_what_save_writes_alone(name: str, tmp_path: Path) -> None:
    from surgery.signatures import RESERVED_KEYS

    alone, grouped = tmp_path / "alone", tmp_path / "grouped"
    key = min(
        k for k in surgery.load(FIXTURES / name).proto.meta_graphs[0].signature_def if k not in RESERVED_KEYS
    )
    surgery.save(rename_signature(surgery.load(FIXTURES / name), key, "renamed"), alone)
    with storage.commit_group() as group:
        assert (
            surgery.save(
                rename_signature(surgery.load(FIXTURES / name), key, "renamed"), grouped, group=group
            )
            == grouped
        )
        assert not grouped.exists(), "published before the group commits"
    assert group.failures == {}
    assert _normalized_fingerprint(tree_bytes(grouped)) == _normalized_fingerprint(tree_bytes(alone))
    assert [p.name for p in tmp_path.iterdir() if storage.is_temporary(p.name)] == []


def test_a_group_syncs_the_file_system_once_then_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = storage_files.syncfs()
    assert real is not None, "this test runs on Linux"

    def syncfs(fd: int) -> int:
        calls.append(os.fstat(fd).st_dev)
        assert not any((tmp_path / f"out{i}").exists() for i in range(3)), "published before the sync"
        return real(fd)

    monkeypatch.setattr(storage_files, "syncfs", lambda: syncfs)
    synced = _record_fsyncs(monkeypatch)
    with storage.commit_group() as group:
        for i in range(3):
            surgery.save(
                rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"),
                tmp_path / f"out{i}",
                group=group,
            )
    assert group.failures == {}
    assert calls == [os.stat(tmp_path).st_dev]
    # Then only the outputs' parent, once: the files and directories were covered by syncfs.
    assert synced == [_inode(tmp_path)]
    for i in range(3):
        assert "f2" in surgery.load(tmp_path / f"out{i}").proto.meta_graphs[0].signature_def


def test_a_group_without_syncfs_fsyncs_every_file_and_directory_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_files, "syncfs", lambda: None)
    synced = _record_fsyncs(monkeypatch)
    out = tmp_path / "out"
    with storage.commit_group() as group:
        surgery.save(
            rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"), out, group=group
        )
    made = {_inode(p) for p in [out, *out.rglob("*")] if p.is_dir() or os.stat(p).st_nlink == 1}
    assert _inode(out / "saved_model.pb") in made and _inode(out / "variables") in made
    assert _inode(out / "variables" / "variables.index") not in made  # hard-linked to the input's
    assert set(synced) == made | {_inode(tmp_path)}
    assert len(synced) == len(made) + 1


def _fail_syncfs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every syncfs fail with EIO."""
    import ctypes
    import errno

    def syncfs(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(storage_files, "syncfs", lambda: syncfs)


def test_a_failed_sync_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_syncfs(monkeypatch)
    outs = [tmp_path / "a", tmp_path / "b"]
    with storage.commit_group() as group:
        for out in outs:
            surgery.save(
                rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"), out, group=group
            )
    assert {out: str(err) for out, err in group.failures.items()} == {
        out: f"cannot write {out}: Input/output error; nothing was written" for out in outs
    }
    assert list(tmp_path.iterdir()) == []


def test_a_failed_sync_still_publishes_the_copies_saved_without_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_syncfs(monkeypatch)
    synced, unsynced = tmp_path / "synced", tmp_path / "unsynced"
    with storage.commit_group() as group:
        surgery.save(
            rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"), synced, group=group
        )
        surgery.save(
            rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"),
            unsynced,
            sync=False,
            group=group,
        )
    assert {out: str(err) for out, err in group.failures.items()} == {
        synced: f"cannot write {synced}: Input/output error; nothing was written"
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unsynced"]
    assert "f2" in surgery.load(unsynced).proto.meta_graphs[0].signature_def


def test_a_group_fails_only_the_output_that_appeared_meanwhile(tmp_path: Path) -> None:
    taken, free = tmp_path / "taken", tmp_path / "free"
    with storage.commit_group() as group:
        for out in (taken, free):
            surgery.save(
                rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"), out, group=group
            )
        taken.mkdir()
        (taken / "theirs.txt").write_text("another writer's")
    assert list(group.failures) == [taken]
    assert str(group.failures[taken]) == (
        f"{taken} already exists (another run wrote it meanwhile): choose a new directory "
        "or replace it (--force, force=True)"
    )
    assert tree_bytes(taken) == {"theirs.txt": b"another writer's"}
    assert "f2" in surgery.load(free).proto.meta_graphs[0].signature_def
    assert sorted(p.name for p in tmp_path.iterdir()) == ["free", "taken"]


def test_a_group_whose_block_raises_publishes_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="stop"), storage.commit_group() as group:
        surgery.save(surgery.load(FIXTURES / "module_multi"), tmp_path / "out", group=group)
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_a_group_hands_its_copies_over_and_the_adopter_publishes_them(tmp_path: Path) -> None:
    """How a batch's workers leave the disk to their parent: the copy is staged, handed over
    unlocked and unpublished, then held (locked, this process's) and published by the adopter."""
    alone, out = tmp_path / "alone", tmp_path / "out"
    surgery.save(rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"), alone)
    with storage.commit_group() as worker:
        surgery.save(
            rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"), out, group=worker
        )
        [copy] = worker.hand_over()
    assert worker.staged == [] and worker.failures == {}
    assert not out.exists() and copy.path.is_dir() and copy.fd == -1
    assert storage_locks.lock_is_free(copy.path) and str(copy.path) not in storage_files.ACTIVE
    parent = storage.CommitGroup()
    parent.adopt([copy])
    assert not storage_locks.lock_is_free(copy.path) and str(copy.path) in storage_files.ACTIVE
    parent.commit()
    assert parent.failures == {}
    assert _normalized_fingerprint(tree_bytes(out)) == _normalized_fingerprint(tree_bytes(alone))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "out"]


def test_a_handed_over_copy_that_vanished_fails_alone(tmp_path: Path) -> None:
    gone, kept = tmp_path / "gone", tmp_path / "kept"
    with storage.commit_group() as worker:
        for out in (gone, kept):
            surgery.save(
                rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"), out, group=worker
            )
        staged = worker.hand_over()
    shutil.rmtree(staged[0].path)
    parent = storage.CommitGroup()
    parent.adopt(staged)
    parent.commit()
    assert {out: str(err) for out, err in parent.failures.items()} == {
        gone: f"cannot write {gone}: No such file or directory; nothing was written"
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert "f2" in surgery.load(kept).proto.meta_graphs[0].signature_def


def _edit_in_place(
    model: Path, new: str = "f2", *, sync: bool = True, group: storage.CommitGroup | None = None
) -> None:
    surgery.save(rename_signature(surgery.load(model), "fixed", new), in_place=True, sync=sync, group=group)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_group_edits_in_place_what_save_writes_alone(name: str, tmp_path: Path) -> None:
    from surgery.signatures import RESERVED_KEYS

    alone = copy_fixture(name, tmp_path / "alone")
    grouped = copy_fixture(name, tmp_path / "grouped")
    before = tree_bytes(grouped)
    key = min(k for k in surgery.load(alone).proto.meta_graphs[0].signature_def if k not in RESERVED_KEYS)
    surgery.save(rename_signature(surgery.load(alone), key, "renamed"), in_place=True)
    with storage.commit_group() as group:
        model = rename_signature(surgery.load(grouped), key, "renamed")
        assert surgery.save(model, in_place=True, group=group) == grouped
        visible = {k: v for k, v in tree_bytes(grouped).items() if not storage.is_temporary(k)}
        assert visible == before, "swapped in before the group commits"
        assert not storage_locks.lock_is_free(grouped), "the model stays locked until the commit"
    assert group.failures == {} and group.edits == []
    assert _normalized_fingerprint(tree_bytes(grouped)) == _normalized_fingerprint(tree_bytes(alone))
    assert storage_locks.lock_is_free(grouped)


def test_a_group_of_in_place_edits_syncs_once_per_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files, set-aside fingerprints, swapped model files, placed fingerprints: four syncfs for
    the group, each after that step is taken for every model (the journal's order, model by model)."""
    models = [copy_fixture("module_multi", tmp_path / str(i)) for i in range(3)]
    states: list[list[tuple[bool, bool]]] = []
    real = storage_files.syncfs()
    assert real is not None, "this test runs on Linux"

    def syncfs(fd: int) -> int:
        # per model: is the new pb swapped in, is a fingerprint.pb in place
        states.append(
            [
                (
                    "f2"
                    in surgery_model.parse((m / "saved_model.pb").read_bytes(), "pb")
                    .meta_graphs[0]
                    .signature_def,
                    (m / "fingerprint.pb").exists(),
                )
                for m in models
            ]
        )
        return real(fd)

    monkeypatch.setattr(storage_files, "syncfs", lambda: syncfs)
    synced = _record_fsyncs(monkeypatch)
    with storage.commit_group() as group:
        for model in models:
            _edit_in_place(model, group=group)
    assert group.failures == {}
    assert states == [
        [(False, True)] * 3,  # the new files written
        [(False, False)] * 3,  # the old fingerprints set aside
        [(True, False)] * 3,  # the new model files swapped in: committed
        [(True, True)] * 3,  # the new fingerprints in place
    ]
    assert synced == []
    for model in models:
        assert "f2" in surgery.load(model).proto.meta_graphs[0].signature_def
        assert [p.name for p in model.iterdir() if storage.is_temporary(p.name)] == []


def test_a_group_refuses_a_second_in_place_edit_of_one_model(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path)
    first = rename_signature(surgery.load(model), "fixed", "f2")
    second = rename_signature(surgery.load(model), "masked", "m2")
    with storage.commit_group() as group:
        surgery.save(first, in_place=True, group=group)
        with pytest.raises(surgery.SavedModelIOError) as err:
            surgery.save(second, in_place=True, group=group)
    assert str(err.value) == (
        f"{model} already has an in-place edit waiting in this commit group: "
        "make both edits to one loaded model and save it once"
    )
    assert group.failures == {}
    keys = surgery.load(model).proto.meta_graphs[0].signature_def
    assert "f2" in keys and "masked" in keys


def test_a_group_hands_in_place_edits_over_and_the_adopter_swaps_them_in(tmp_path: Path) -> None:
    alone = copy_fixture("module_multi", tmp_path / "alone")
    model = copy_fixture("module_multi", tmp_path / "model")
    before = tree_bytes(model)
    _edit_in_place(alone)
    with storage.commit_group() as worker:
        _edit_in_place(model, group=worker)
        [edit] = worker.hand_over()
    assert worker.edits == [] and worker.failures == {}
    assert isinstance(edit, storage.StagedEdit) and edit.fd == -1
    assert storage_locks.lock_is_free(model), "let go: the worker holds nothing"
    visible = {k: v for k, v in tree_bytes(model).items() if not storage.is_temporary(k)}
    assert visible == before
    parent = storage.CommitGroup()
    parent.adopt([edit])
    assert not storage_locks.lock_is_free(model)
    parent.commit()
    assert parent.failures == {}
    assert _normalized_fingerprint(tree_bytes(model)) == _normalized_fingerprint(tree_bytes(alone))
    assert storage_locks.lock_is_free(model)


def test_a_handed_over_edit_of_a_model_edited_meanwhile_fails_alone(tmp_path: Path) -> None:
    """Between the hand-over and the adoption the model is unlocked: another edit that gets in
    wins (it rolls the waiting one's files back), and the waiting edit fails instead of undoing it."""
    taken = copy_fixture("module_multi", tmp_path / "taken")
    kept = copy_fixture("module_multi", tmp_path / "kept")
    with storage.commit_group() as worker:
        _edit_in_place(taken, group=worker)
        _edit_in_place(kept, group=worker)
        staged = worker.hand_over()
    _edit_in_place(taken, "theirs")
    theirs = tree_bytes(taken)
    parent = storage.CommitGroup()
    parent.adopt(staged)
    parent.commit()
    assert {path: str(err) for path, err in parent.failures.items()} == {
        taken: f"{taken / 'saved_model.pb'} changed on disk since it was read (another program edited it): "
        "load it again and redo the edit"
    }
    assert tree_bytes(taken) == theirs
    assert "f2" in surgery.load(kept).proto.meta_graphs[0].signature_def
    for model in (taken, kept):
        assert [p.name for p in model.iterdir() if storage.is_temporary(p.name)] == []


def test_a_handed_over_edit_of_a_model_locked_meanwhile_fails_busy(tmp_path: Path) -> None:
    """The adopter locks the model again as `model_lock` would: held by another writer, the
    edit fails in one line and the model is untouched; the next load removes the edit's files."""
    import fcntl

    model = copy_fixture("module_multi", tmp_path)
    before = tree_bytes(model)
    with storage.commit_group() as worker:
        _edit_in_place(model, group=worker)
        staged = worker.hand_over()
    holder = os.open(model, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another writer's lock (another open file: it conflicts)
    try:
        parent = storage.CommitGroup()
        parent.adopt(staged)
        parent.commit()
    finally:
        os.close(holder)
    assert {path: str(err) for path, err in parent.failures.items()} == {
        model: f"{model} is in use by another savedmodel-surgery process (an in-place edit, or a copy "
        "being written from it): wait for it to finish and retry"
    }
    assert {k: v for k, v in tree_bytes(model).items() if not storage.is_temporary(k)} == before
    surgery.load(model)
    assert tree_bytes(model) == before


def test_a_failed_sync_leaves_every_in_place_edit_of_the_group_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_syncfs(monkeypatch)
    models = [copy_fixture("module_multi", tmp_path / str(i)) for i in range(2)]
    before = [tree_bytes(m) for m in models]
    unsynced = copy_fixture("module_multi", tmp_path / "unsynced")
    with storage.commit_group() as group:
        for model in models:
            _edit_in_place(model, group=group)
        _edit_in_place(unsynced, sync=False, group=group)
    assert {path: str(err) for path, err in group.failures.items()} == {
        m: f"cannot write {m / 'saved_model.pb'}: Input/output error; nothing was changed" for m in models
    }
    assert [tree_bytes(m) for m in models] == before
    assert "f2" in surgery.load(unsynced).proto.meta_graphs[0].signature_def


def test_a_group_whose_block_raises_leaves_its_in_place_edits_undone(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path)
    before = tree_bytes(model)
    with pytest.raises(RuntimeError, match="stop"), storage.commit_group() as group:
        _edit_in_place(model, group=group)
        raise RuntimeError("stop")
    assert tree_bytes(model) == before
    assert storage_locks.lock_is_free(model)


def test_a_copy_alone_fsyncs_the_directories_and_copied_files_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where hard links fail (another file system), the copied files are synced before publishing."""

    def no_link(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    synced = _record_fsyncs(monkeypatch)
    out = tmp_path / "out"
    surgery.save(rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2"), out)
    made = {_inode(p) for p in [out, *out.rglob("*")]}
    assert set(synced) == made | {_inode(tmp_path)}


# --- without sync (--no-sync) ----------------------------------------------------------------


def _record_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every fsync, syncfs and sync_file_range call from now on."""
    calls: list[str] = []
    real_fsync = os.fsync
    real_syncfs = storage_files.syncfs()
    real_range = storage_files.sync_file_range()
    assert real_syncfs is not None and real_range is not None, "this test runs on Linux"

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def syncfs(fd: int) -> int:
        calls.append("syncfs")
        return real_syncfs(fd)

    def sync_file_range(*args: int) -> int:
        calls.append("sync_file_range")
        return real_range(*args)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(storage_files, "syncfs", lambda: syncfs)
    monkeypatch.setattr(storage_files, "sync_file_range", lambda: sync_file_range)
    return calls


def _inflated(directory: Path) -> Path:
    """module_multi with a 4 MiB constant in a function: read lazily, its bytes copied by the kernel."""
    from surgery.schema import DataType

    model = copy_fixture("module_multi", directory)
    loaded = surgery.load(model)
    node = loaded.proto.meta_graphs[0].graph_def.library.function[0].node_def.add(name="big", op="Const")
    node.attr["dtype"].type = DataType.DT_FLOAT
    tensor = node.attr["value"].tensor
    tensor.dtype = DataType.DT_FLOAT
    tensor.tensor_shape.dim.add().size = 1 << 20
    tensor.tensor_content = bytes(range(256)) * (1 << 14)
    surgery.save(loaded, in_place=True)
    assert surgery.load(model).holes is not None
    return model


@pytest.mark.parametrize("large", [False, True], ids=["small", "lazily-read"])
@pytest.mark.parametrize("where", ["copy", "group", "in-place"])
def test_no_sync_writes_the_same_files_without_a_single_sync(
    where: str, large: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = ("synced", "recorded", "unsynced")
    models = {}
    for run in runs:
        source = (tmp_path / f"src-{run}").resolve()
        source.mkdir()
        models[run] = _inflated(source) if large else copy_fixture("module_multi", source)

    def write(run: str, *, sync: bool) -> Path:
        edited = rename_signature(surgery.load(models[run]), "fixed", "f2")
        if where == "in-place":
            return surgery.save(edited, in_place=True, sync=sync)
        out = tmp_path / f"out-{run}"
        if where == "copy":
            return surgery.save(edited, out, sync=sync)
        with storage.commit_group() as group:
            surgery.save(edited, out, sync=sync, group=group)
        assert group.failures == {}
        return out

    synced = write("synced", sync=True)
    calls = _record_syncs(monkeypatch)
    write("recorded", sync=True)
    assert "fsync" in calls, "the recorder sees the syncs of a normal write"
    assert "sync_file_range" in calls or not large, "a large file's writeback is started early"
    calls.clear()
    unsynced = write("unsynced", sync=False)
    assert calls == []
    assert _normalized_fingerprint(tree_bytes(unsynced)) == _normalized_fingerprint(tree_bytes(synced))
    assert [p for p in tmp_path.rglob("*") if storage.is_temporary(p.name)] == []


def test_a_group_syncs_only_the_copies_saved_with_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _record_syncs(monkeypatch)
    with storage.commit_group() as group:
        surgery.save(surgery.load(FIXTURES / "module_multi"), tmp_path / "unsynced", sync=False, group=group)
    assert calls == [] and (tmp_path / "unsynced").is_dir()
    with storage.commit_group() as group:
        surgery.save(surgery.load(FIXTURES / "module_multi"), tmp_path / "a", sync=False, group=group)
        surgery.save(surgery.load(FIXTURES / "module_multi"), tmp_path / "b", group=group)
    assert calls == ["syncfs", "fsync"]  # the file system once, then the outputs' parent


_WRITES = [
    ["rename-signature", "{m}", "fixed", "f2"],
    ["rename-input", "{m}", "fixed", "row", "r2"],
    ["rename-output", "{m}", "fixed", "out", "o2"],
    ["remove-signature", "{m}", "masked"],
    ["copy-signature", "{m}", "fixed", "f3"],
    ["set-method", "{m}", "fixed", "tensorflow/serving/regress"],
    ["set-tags", "{m}", "serve", "serve,gpu"],
    ["set-shape", "{m}", "fixed", "row", "-1,4"],
    ["set-dtype", "{m}", "fixed", "row", "float64"],
    ["rename-tensor", "{m}", "fixed_row:0", "rows:0"],
    ["apply", "{m}", "{plan}"],
    ["convert", "{m}", "--to", "pbtxt"],
]


# convert always writes a new directory; a batch (--output-root) is apply's.
_WRITE_CASES = [
    (command, target)
    for command in _WRITES
    for target in ("-o", "--in-place", "batch")
    if not (command[0] == "convert" and target == "--in-place")
    and (target != "batch" or command[0] == "apply")
]


@pytest.mark.parametrize(("command", "target"), _WRITE_CASES, ids=[f"{c[0]} {t}" for c, t in _WRITE_CASES])
def test_every_writing_command_takes_no_sync(
    command: list[str], target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--no-sync` writes what the command writes without it, and syncs nothing."""
    from fuzzing import run

    plan = tmp_path / "plan.yaml"
    plan.write_text("operations:\n  - {op: rename-signature, old: fixed, new: f2}\n")
    results = []
    for run_name, extra in (("plain", []), ("no-sync", ["--no-sync"])):
        model = copy_fixture("module_multi", tmp_path / run_name)
        out = tmp_path / run_name / ("root" if target == "batch" else "out")
        argv = [a.format(m=model, plan=plan) for a in command]
        if target == "batch":
            argv[1] = str(model.parent / "module_*")
        argv += {"-o": ["-o", str(out)], "--in-place": ["--in-place"], "batch": ["--output-root", str(out)]}[
            target
        ]
        calls = _record_syncs(monkeypatch)
        outcome = run([*argv, *extra])
        assert outcome.status == 0, outcome.stderr
        assert (calls == []) == bool(extra), calls
        written = model if target == "--in-place" else out / model.name if target == "batch" else out
        results.append(_normalized_fingerprint(tree_bytes(written)))
    assert results[0] == results[1]


def _old_file_fds(pid: int | str, inode: int) -> list[str]:
    """The descriptors of process `pid` open on the file with `inode`."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/fd/{fd}").st_ino == inode:
                found.append(fd)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_replaced_model_file_is_let_go_by_a_background_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the last reference to the replaced file frees its blocks (about a second per GB
    with `discard`): a spawned process holds it instead, its stdio on /dev/null (a caller reading
    the command's pipes does not wait for it), and ends; this process keeps nothing open."""
    from surgery.runner import edit_model

    model = copy_fixture("module_multi", tmp_path)
    old = os.stat(model / "saved_model.pb").st_ino
    spawned: list[tuple[list[str], Any, int]] = []
    reaped: list[int] = []
    real_spawn, real_waitpid = os.posix_spawn, os.waitpid

    def spawn(path: str, argv: list[str], env: Any, **kwargs: Any) -> int:
        pid = real_spawn(path, argv, env, **kwargs)
        spawned.append((argv, kwargs, pid))
        return pid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        result = real_waitpid(pid, options)
        reaped.append(os.waitstatus_to_exitcode(result[1]))
        return result

    monkeypatch.setattr(surgery_model, "FREE_IN_BACKGROUND", 0)
    monkeypatch.setattr(lazy, "HOLE_MIN", 256)  # read lazily: the file stays open until `close`
    monkeypatch.setattr(os, "posix_spawn", spawn)
    monkeypatch.setattr(os, "waitpid", waitpid)
    edit_model(model, lambda m: rename_signature(m, "fixed", "f2"), in_place=True)
    [(argv, kwargs, _)] = spawned
    assert argv[1:] == ["-S", "-I", "-c", ""] and kwargs["setsid"] is True
    assert kwargs["file_actions"] == [(os.POSIX_SPAWN_OPEN, n, os.devnull, os.O_RDWR, 0) for n in (0, 1, 2)]
    assert _old_file_fds("self", old) == [], "this process let go of the old file"
    deadline = time.monotonic() + 10
    while not reaped and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reaped == [0], "the background process ended, and was reaped"
    assert "f2" in surgery.load(model).proto.meta_graphs[0].signature_def


def test_a_file_still_named_or_small_is_closed_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[str] = []
    monkeypatch.setattr(os, "posix_spawn", lambda *args, **kwargs: spawned.append(args[0]))
    named = tmp_path / "named"
    named.write_bytes(b"x" * 100)
    monkeypatch.setattr(surgery_model, "FREE_IN_BACKGROUND", 0)
    fd = os.open(named, os.O_RDONLY)
    surgery_model.let_go(fd)
    monkeypatch.setattr(surgery_model, "FREE_IN_BACKGROUND", 101)
    small = os.open(named, os.O_RDONLY)
    named.unlink()
    surgery_model.let_go(small)
    assert spawned == []
    for descriptor in (fd, small):
        with pytest.raises(OSError):
            os.fstat(descriptor)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_group_lets_go_of_each_replaced_model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a group the read models are closed before the commit: the commit, which deletes each
    old model file, hands each to a background process."""
    from surgery.runner import edit_model

    models = [copy_fixture("module_multi", tmp_path / str(i)) for i in range(3)]
    olds = [os.stat(m / "saved_model.pb").st_ino for m in models]
    spawned: list[int] = []
    real_spawn = os.posix_spawn

    def spawn(path: str, argv: list[str], env: Any, **kwargs: Any) -> int:
        inherited = [fd for fd in map(int, os.listdir("/proc/self/fd")) if _inheritable(fd)]
        spawned.extend(ino for ino in (os.fstat(fd).st_ino for fd in inherited) if ino in olds)
        return real_spawn(path, argv, env, **kwargs)

    monkeypatch.setattr(surgery_model, "FREE_IN_BACKGROUND", 0)
    monkeypatch.setattr(os, "posix_spawn", spawn)
    with storage.commit_group() as group:
        for model in models:
            edit_model(model, lambda m: rename_signature(m, "fixed", "f2"), in_place=True, group=group)
        assert spawned == [], "nothing is replaced before the commit"
    assert group.failures == {}
    assert sorted(spawned) == sorted(olds), "each old model file, inherited by its own process"
    assert all(_old_file_fds("self", inode) == [] for inode in olds)


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:
        return False


def test_a_closed_model_reads_nothing_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `close`, saving a lazily read model fails in one line: never reading a file that
    reused its descriptor's number."""
    monkeypatch.setattr(lazy, "HOLE_MIN", 256)
    model = rename_signature(surgery.load(FIXTURES / "module_multi"), "fixed", "f2")
    assert model.holes is not None
    model.close()
    model.close()
    reused = os.open(FIXTURES / "module_multi" / "variables" / "variables.index", os.O_RDONLY)
    try:
        with pytest.raises(surgery.SavedModelIOError) as err:
            surgery.save(model, tmp_path / "out")
    finally:
        os.close(reused)
    assert str(err.value) == f"cannot write {tmp_path / 'out'}: Bad file descriptor; nothing was written"
    assert list(tmp_path.iterdir()) == []
