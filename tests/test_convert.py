"""`convert`: text copies for review, byte-exact round trips, both loaders, fingerprint.pb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bad_input import fail_cleanly

import surgery
from conftest import (
    FIXTURE_NAMES,
    FIXTURES,
    Oracle,
    assert_serves,
    copy_fixture,
    expected_cases,
    run_cli,
    tree_bytes,
)
from surgery.convert import HASHES, convert
from surgery.fingerprint import compute_fingerprint
from surgery.schema import FingerprintDef


def _round_trip(name: str, tmp_path: Path) -> tuple[Path, Path]:
    text = tmp_path / "text"
    back = tmp_path / "back"
    convert(FIXTURES / name, text, "pbtxt")
    convert(text, back, "pb")
    return text, back


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_pb_to_pbtxt_to_pb_is_byte_exact(name: str, tmp_path: Path) -> None:
    """Every file comes back as it was: saved_model.pb, fingerprint.pb, variables/, assets/."""
    text, back = _round_trip(name, tmp_path)
    assert tree_bytes(back) == tree_bytes(FIXTURES / name)
    written = tree_bytes(text)
    assert "saved_model.pb" not in written
    assert written.pop("saved_model.pbtxt").startswith(b"saved_model_schema_version: 1\nmeta_graphs {\n")
    assert written == {k: v for k, v in tree_bytes(FIXTURES / name).items() if k != "saved_model.pb"}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_both_forms_serve_in_tensorflow(oracle: Oracle, name: str, tmp_path: Path) -> None:
    """The text copy and the copy converted back both serve the recorded outputs, both loaders."""
    text, back = _round_trip(name, tmp_path)
    assert surgery.load(text).format == "pbtxt"
    assert_serves(oracle, text, expected_cases(name))
    assert_serves(oracle, back, expected_cases(name))


def test_tensorflow_fingerprints_nothing_of_a_text_model(oracle: Oracle, tmp_path: Path) -> None:
    """TensorFlow 2.21's CreateFingerprintDef reads saved_model.pb (or .cpb) only: for a text model it
    gives what it gives for an empty directory, every hash 0 (producer 5). The fingerprint.pb a
    conversion keeps holds the hashes TensorFlow computes for the same content in binary form,
    and the loaders read fingerprint.pb whatever the model file is.
    """
    text, back = _round_trip("module_multi", tmp_path)
    (tmp_path / "empty").mkdir()
    from_text = oracle.fingerprint(text)
    assert from_text == oracle.fingerprint(tmp_path / "empty")
    assert [from_text[f] for f in HASHES] == [0] * 5
    stored = oracle.ok(op="read_fingerprint", model=str(text))["fingerprint"]
    computed = oracle.fingerprint(back)
    assert {f: stored[f] for f in HASHES} == {f: computed[f] for f in HASHES}
    assert all(computed[f] for f in HASHES)


def test_hand_edited_text_gets_a_fresh_fingerprint(oracle: Oracle, tmp_path: Path) -> None:
    text = tmp_path / "text"
    result = convert(FIXTURES / "module_multi", text, "pbtxt")
    assert result.fingerprint == "kept"
    pbtxt = text / "saved_model.pbtxt"
    edited = pbtxt.read_text().replace(
        'method_name: "tensorflow/serving/predict"', 'method_name: "custom"', 1
    )
    pbtxt.write_text(edited)
    back = convert(text, tmp_path / "back", "pb")
    assert back.fingerprint == "rewritten"
    written = FingerprintDef.FromString((tmp_path / "back" / "fingerprint.pb").read_bytes())
    theirs = oracle.fingerprint(tmp_path / "back")
    assert {f: getattr(written, f) for f in HASHES} == {f: theirs[f] for f in HASHES}
    original = FingerprintDef.FromString((FIXTURES / "module_multi" / "fingerprint.pb").read_bytes())
    assert written.uuid and written.uuid != original.uuid
    assert written.signature_def_hash != original.signature_def_hash


def test_stale_fingerprint_is_rewritten_even_for_text(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path)
    (model / "fingerprint.pb").write_bytes(b"\x08\x01")  # saved_model_checksum 1: not this model's
    result = convert(model, tmp_path / "text", "pbtxt")
    assert result.fingerprint == "rewritten"
    written = FingerprintDef.FromString((tmp_path / "text" / "fingerprint.pb").read_bytes())
    loaded = surgery.load(model)
    expected = compute_fingerprint(loaded.proto, loaded.serialize(), model)
    assert expected is not None
    assert {f: getattr(written, f) for f in HASHES} == {f: getattr(expected, f) for f in HASHES}


def test_a_model_without_fingerprint_gets_none(tmp_path: Path) -> None:
    result = convert(FIXTURES / "tf1_two_metagraphs", tmp_path / "text", "pbtxt")
    assert result.fingerprint == "none"
    assert not (tmp_path / "text" / "fingerprint.pb").exists()


def test_text_to_text_normalizes(tmp_path: Path) -> None:
    text = tmp_path / "text"
    convert(FIXTURES / "example_model", text, "pbtxt")
    pbtxt = text / "saved_model.pbtxt"
    pbtxt.write_text(pbtxt.read_text().replace("\n  ", "\n        "))  # a reviewer's reindent
    convert(text, tmp_path / "again", "pbtxt")
    assert (tmp_path / "again" / "saved_model.pbtxt").read_bytes() == (
        tmp_path / "text" / "saved_model.pbtxt"
    ).read_bytes().replace(b"\n        ", b"\n  ")
    assert convert(text, tmp_path / "again2", "pbtxt").fingerprint == "kept"


# --- the command line --------------------------------------------------------------------------


def test_cli_reports_what_it_wrote(tmp_path: Path) -> None:
    result = run_cli("convert", FIXTURES / "module_multi", "--to", "pbtxt", "-o", tmp_path / "t", check=True)
    assert result.stdout == ""
    size = (tmp_path / "t" / "saved_model.pbtxt").stat().st_size
    assert (
        result.stderr == f"wrote {tmp_path / 't'} (saved_model.pbtxt, {size:,} bytes; fingerprint.pb kept)\n"
    )


def test_cli_json(tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run_cli("convert", FIXTURES / "example_model", "--to", "pb", "-o", out, "--json", check=True)
    assert json.loads(result.stdout) == {
        "input": str(FIXTURES / "example_model"),
        "output": str(out),
        "source_format": "pb",
        "format": "pb",
        "file": "saved_model.pb",
        "bytes": (FIXTURES / "example_model" / "saved_model.pb").stat().st_size,
        "fingerprint": "kept",
    }


def test_cli_quiet_says_nothing(tmp_path: Path) -> None:
    result = run_cli("--quiet", "convert", FIXTURES / "module_multi", "--to", "pbtxt", "-o", tmp_path / "t")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--to", "pbtxt"], "give -o OUT, the new directory to write the copy to"),
        (["--to", "json", "-o", "OUT"], "Invalid value for '--to'"),
        (["--to", "pbtxt", "--in-place"], "convert always writes a new directory: give -o OUT"),
    ],
)
def test_cli_usage_errors(tmp_path: Path, args: list[str], says: str) -> None:
    model = copy_fixture("module_multi", tmp_path)
    out = tmp_path / "OUT"
    argv = ["convert", model, *[str(out) if a == "OUT" else a for a in args]]
    assert says in fail_cleanly(argv, inputs=model, out=out)


def test_without_to_the_format_flips(tmp_path: Path) -> None:
    """A binary model becomes text and a text one binary, as `--to` would have said."""
    run_cli("convert", FIXTURES / "module_multi", "-o", tmp_path / "text", check=True)
    assert (tmp_path / "text" / "saved_model.pbtxt").is_file()
    run_cli("convert", tmp_path / "text", "-o", tmp_path / "binary", check=True)
    assert (tmp_path / "binary" / "saved_model.pb").read_bytes() == (
        FIXTURES / "module_multi" / "saved_model.pb"
    ).read_bytes()
    result = surgery.convert(tmp_path / "binary", tmp_path / "py")
    assert (result.source_format, result.format) == ("pb", "pbtxt")


def test_an_unknown_format_from_python_is_an_edit_error(tmp_path: Path) -> None:
    with pytest.raises(
        surgery.EditError, match=r"^unknown format 'txt': give 'pbtxt' \(text\) or 'pb' \(binary\)$"
    ):
        surgery.convert(FIXTURES / "module_multi", tmp_path / "out", "txt")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_cli_refuses_an_existing_output_without_force(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path)
    out = tmp_path / "t"
    out.mkdir()
    message = fail_cleanly(["convert", model, "--to", "pbtxt", "-o", out], inputs=model, out=out)
    assert message == f"{out} already exists: choose a new directory or replace it (--force, force=True)"
    run_cli("convert", model, "--to", "pbtxt", "-o", out, "--force", check=True)
    assert (out / "saved_model.pbtxt").exists()


def test_cli_corrupt_model_leaves_nothing(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path)
    (model / "saved_model.pb").write_bytes(b"\xff" * 100)
    out = tmp_path / "t"
    message = fail_cleanly(["convert", model, "--to", "pbtxt", "-o", out], inputs=model, out=out)
    assert "is not a valid SavedModel" in message
