"""Trust: a model is data. Nothing in it runs, no path in it is followed, nothing is written outside OUT.

- The tool never executes anything from a model or a plan: no TensorFlow, no pickle, no eval,
  no subprocess, PyYAML's safe loader only.
- Copying a model copies the directory's entries, never the paths its protos name (asset file
  names); a link inside the model is followed only to a file inside the model.
- Writes go only to OUT (built beside it and renamed), or with --in-place to the model's own
  `saved_model.pb` and `fingerprint.pb`, replaced by rename: never through a link to elsewhere,
  never into a file the output shares (hard links) with its input.
"""

from __future__ import annotations

import builtins
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import FIXTURE_NAMES, FIXTURES, copy_fixture, run_cli, tree_bytes
from fuzzing import exercise, fixture_bytes
from surgery.edits import rename_signature
from surgery.schema import SavedModel


def _everything(root: Path) -> dict[str, bytes | None]:
    """Every entry under `root` (links as their target's name) and every regular file's bytes."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            out[key] = path.read_bytes()
        else:
            out[key] = None
    return out


def test_nothing_from_a_model_is_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command over every fixture with exec, eval, pickle, subprocess and os.system forbidden."""

    for name in FIXTURE_NAMES:  # first without the guard: imports run module code, legitimately
        exercise(fixture_bytes(name), tmp_path / "warm" / name)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("savedmodel-surgery tried to execute something")

    for module, name in [
        (builtins, "eval"),
        (builtins, "exec"),
        (builtins, "compile"),
        (pickle, "loads"),
        (pickle, "load"),
        (subprocess, "Popen"),
        (os, "system"),
        (os, "popen"),
        (os, "execv"),
        (os, "execve"),
        (os, "posix_spawn"),
    ]:
        monkeypatch.setattr(module, name, forbidden)
    for name in FIXTURE_NAMES:
        exercise(fixture_bytes(name), tmp_path / name, edits=name in ("module_multi", "tf1_two_metagraphs"))
    assert "tensorflow" not in sys.modules


def test_asset_paths_in_the_proto_are_never_followed(tmp_path: Path) -> None:
    """An asset file name pointing outside the model: the copy holds the model's files and no more."""
    model = copy_fixture("lookup_asset", tmp_path / "in")
    secret = tmp_path / "secret.txt"
    secret.write_text("not the model's")
    loaded = surgery.load(model)
    for meta in loaded.proto.meta_graphs:
        for asset in meta.asset_file_def:
            asset.filename = "../../secret.txt"
    surgery.save(loaded, model.parent / "hostile")
    shutil.rmtree(model)
    hostile = model.parent / "hostile"
    before = _everything(tmp_path)
    out = tmp_path / "out"
    result = run_cli("rename-signature", hostile, "serving_default", "x", "-o", out)
    assert result.returncode == 0, result.stderr
    after = _everything(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before
    assert sorted(p.relative_to(out).parts[0] for p in out.rglob("*")) == sorted(
        p.relative_to(hostile).parts[0] for p in hostile.rglob("*")
    )
    assert b"not the model's" not in b"".join(tree_bytes(out).values())


def test_links_inside_the_model_are_copied_as_files(tmp_path: Path) -> None:
    """A link to a file or directory inside the model is copied as what it points to, into OUT only."""
    model = copy_fixture("module_multi", tmp_path / "in")
    (model / "assets").symlink_to("variables")
    (model / "index.link").symlink_to(model / "variables" / "variables.index")
    before = _everything(tmp_path)
    out = tmp_path / "out"
    surgery.save(rename_signature(surgery.load(model), "masked", "x"), out)
    assert {k: v for k, v in _everything(tmp_path).items() if not k.startswith("out")} == before
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert (out / "assets" / "variables.index").read_bytes() == (
        model / "variables" / "variables.index"
    ).read_bytes()
    assert (out / "index.link").read_bytes() == (model / "variables" / "variables.index").read_bytes()


def test_in_place_never_writes_through_a_link(tmp_path: Path) -> None:
    """saved_model.pb and fingerprint.pb linked to files elsewhere: an in-place edit is refused
    (replacing the links would leave their targets stale), links and files kept; a copy is written."""
    model = copy_fixture("module_multi", tmp_path / "in")
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir()
    for name in ("saved_model.pb", "fingerprint.pb"):
        (model / name).rename(elsewhere / name)
        (model / name).symlink_to(elsewhere / name)
    before = tree_bytes(elsewhere)
    result = run_cli("rename-signature", model, "masked", "x", "--in-place")
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"savedmodel-surgery: error: {model / 'saved_model.pb'} is a symbolic link"
    )
    assert tree_bytes(elsewhere) == before
    assert (model / "saved_model.pb").is_symlink() and (model / "fingerprint.pb").is_symlink()
    run_cli("rename-signature", model, "masked", "x", "-o", tmp_path / "copy", check=True)
    assert tree_bytes(elsewhere) == before
    assert "x" in surgery.load(tmp_path / "copy").proto.meta_graphs[0].signature_def


def test_editing_the_output_in_place_leaves_the_input_alone(tmp_path: Path) -> None:
    """OUT shares its variables with the input (hard links); editing OUT in place never writes into them."""
    model = copy_fixture("keras2_legacy", tmp_path / "in")
    before = tree_bytes(model)
    out = tmp_path / "out"
    assert run_cli("rename-signature", model, "serving_default", "a", "-o", out).returncode == 0
    assert os.stat(out / "keras_metadata.pb").st_ino == os.stat(model / "keras_metadata.pb").st_ino
    assert run_cli("rename-signature", out, "a", "b", "--in-place").returncode == 0
    assert tree_bytes(model) == before


def test_a_model_never_makes_the_tool_write_elsewhere(tmp_path: Path) -> None:
    """Names in the proto that look like paths (keys, tensors, functions) stay names."""
    proto = SavedModel.FromString((FIXTURES / "module_multi" / "saved_model.pb").read_bytes())
    meta = proto.meta_graphs[0]
    meta.signature_def["../../escape"].CopyFrom(meta.signature_def["masked"])
    meta.meta_info_def.tags.append("/tmp/escape")
    model = tmp_path / "in" / "model"
    model.mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(proto.SerializeToString())
    before = _everything(tmp_path)
    out = tmp_path / "out"
    assert run_cli("rename-signature", model, "../../escape", "../x", "-o", out).returncode == 0
    assert {k: v for k, v in _everything(tmp_path).items() if not k.startswith("out")} == before
    assert sorted(p.name for p in out.iterdir()) == ["fingerprint.pb", "saved_model.pb"]
