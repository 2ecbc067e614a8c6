"""Bad input: one line on stderr, exit 2, no traceback, nothing written, the input untouched.

The contract: errors are `savedmodel-surgery: error: ...` on stderr, naming the thing that is
wrong and, where there is one, the fix; exit status 2; a traceback only with --debug; a failed
command leaves no output directory (and no temporary directory) behind and the input
byte-identical. Everything here runs the command line as a user would.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import surgery
from conftest import FIXTURES, ROOT, copy_fixture, run_cli, tree_bytes
from surgery.check import check
from surgery.schema import FingerprintDef, SavedModel

PREFIX = "savedmodel-surgery: error: "
COMMANDS = ["show", "check", "rename-signature"]
INIT_OP = "__saved_model_init_op"
TRAIN_OP = "__saved_model_train_op"


# --- helpers -----------------------------------------------------------------------------------


def _argv(command: str, model: Path, out: Path) -> list[str | Path]:
    if command == "rename-signature":
        return [command, model, "serving_default", "x", "-o", out]
    return [command, model]


def _snapshot(root: Path) -> tuple[list[str], dict[str, bytes]]:
    """Every entry under `root` (directories too) and every file's bytes."""
    entries = sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []
    return entries, tree_bytes(root) if root.exists() else {}


def _leftovers(directory: Path) -> list[str]:
    """Temporary directories or files a write left behind (`.OUT.surgery-tmp-...`, `...surgery-old-...`)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") and "surgery-" in p.name)


def assert_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, nothing on stdout, one `savedmodel-surgery: error:` line, no traceback; the message."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0].removeprefix(PREFIX)


def fail_cleanly(args: list[str | Path], *, inputs: Path, out: Path | None) -> str:
    """Run a command that must fail: the error message, after checking nothing was touched or left."""
    before = _snapshot(inputs)
    out_existed = out is not None and out.exists()
    message = assert_error(run_cli(*args))
    assert _snapshot(inputs) == before, "the input changed"
    if out is not None:
        assert out_existed or not out.exists(), f"{out} was created"
        if out.parent.exists():
            assert _leftovers(out.parent) == []
    return message


# --- inputs that are not a SavedModel ------------------------------------------------------------


def _model_with_pb(tmp_path: Path, data: Callable[[bytes], bytes]) -> tuple[Path, Path]:
    """A copy of module_multi whose saved_model.pb is replaced by `data(original bytes)`."""
    model = copy_fixture("module_multi", tmp_path)
    pb = model / "saved_model.pb"
    pb.write_bytes(data(pb.read_bytes()))
    return model, pb


def _graph_def_bytes(_: bytes) -> bytes:
    data: bytes = surgery.load(FIXTURES / "module_multi").proto.meta_graphs[0].graph_def.SerializeToString()
    return data


def _meta_graph_bytes(_: bytes) -> bytes:
    data: bytes = surgery.load(FIXTURES / "module_multi").proto.meta_graphs[0].SerializeToString()
    return data


def _fingerprint_bytes(_: bytes) -> bytes:
    """The model's own fingerprint.pb, a FingerprintDef (a plausible mix-up of the two files)."""
    fingerprint = FingerprintDef.FromString((FIXTURES / "module_multi" / "fingerprint.pb").read_bytes())
    data: bytes = fingerprint.SerializeToString()
    return data


NOT_A_SAVED_MODEL = "is not a valid SavedModel ("
CORRUPT = "): the file is truncated or corrupt"
NO_META_GRAPH = "holds no meta graph: it is empty, corrupt, or not a SavedModel"

BAD_PB = [
    pytest.param(lambda data: data[: len(data) // 2], NOT_A_SAVED_MODEL, CORRUPT, id="truncated"),
    pytest.param(lambda _: random.Random(0).randbytes(5000), NOT_A_SAVED_MODEL, CORRUPT, id="random-bytes"),
    pytest.param(lambda _: b"", NO_META_GRAPH, "", id="empty-file"),
    # Valid protobuf of another message. A FingerprintDef's field 1 reads as the schema version;
    # its other fields do not fit SavedModel's and are kept as unknown: an empty SavedModel.
    pytest.param(_fingerprint_bytes, NO_META_GRAPH, "", id="fingerprint-def"),
    # A GraphDef's `library` (field 2) lands on SavedModel.meta_graphs: not a MetaGraphDef.
    pytest.param(_graph_def_bytes, NOT_A_SAVED_MODEL, CORRUPT, id="graph-def"),
    # A bare MetaGraphDef (the message inside a SavedModel) is not a SavedModel either.
    pytest.param(_meta_graph_bytes, NOT_A_SAVED_MODEL, CORRUPT, id="meta-graph-def"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("data", "says", "ends"), BAD_PB)
def test_bad_saved_model_pb(
    tmp_path: Path, command: str, data: Callable[[bytes], bytes], says: str, ends: str
) -> None:
    """A saved_model.pb that is not a SavedModel: one line naming the file and what is wrong with it."""
    model, pb = _model_with_pb(tmp_path / "in", data)
    out = tmp_path / "out"
    message = fail_cleanly(_argv(command, model, out), inputs=tmp_path / "in", out=out)
    assert message.startswith(f"{pb} {says}"), message
    assert message.endswith(ends), message


def test_bad_text_format(tmp_path: Path) -> None:
    """A saved_model.pbtxt that does not parse names the file and the parser's complaint."""
    model = tmp_path / "in" / "model"
    model.mkdir(parents=True)
    (model / "saved_model.pbtxt").write_text("garbage {\n")
    message = fail_cleanly(["show", model], inputs=tmp_path / "in", out=None)
    assert message.startswith(f"{model / 'saved_model.pbtxt'} is not a valid SavedModel ("), message
    assert "garbage" in message


def _missing(root: Path) -> tuple[Path, str]:
    path = root / "nowhere"
    return path, f"{path}: no such directory: give the SavedModel directory"


def _pb_file(root: Path) -> tuple[Path, str]:
    model = copy_fixture("module_multi", root)
    pb = model / "saved_model.pb"
    return pb, f"{pb} is a file, not a SavedModel directory: pass its directory {model}"


def _empty_dir(root: Path) -> tuple[Path, str]:
    path = root / "empty"
    path.mkdir()
    return path, f"{path} holds no saved_model.pb or saved_model.pbtxt: is it a SavedModel directory?"


def _other_files(root: Path) -> tuple[Path, str]:
    """A model directory whose saved_model.pb is gone: variables/, assets/, fingerprint.pb remain."""
    model = copy_fixture("module_multi", root)
    (model / "saved_model.pb").unlink()
    (model / "README.txt").write_text("not a model\n")
    return model, f"{model} holds no saved_model.pb or saved_model.pbtxt: is it a SavedModel directory?"


def _chunked(root: Path) -> tuple[Path, str]:
    path = root / "chunked"
    path.mkdir()
    (path / "saved_model.cpb").write_bytes(b"\x00" * 64)
    return path, (
        f"{path} holds a chunked saved_model.cpb (a model over 2 GB): "
        "only saved_model.pb and saved_model.pbtxt are supported"
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_missing, id="missing-directory"),
        pytest.param(_pb_file, id="file-not-directory"),
        pytest.param(_empty_dir, id="empty-directory"),
        pytest.param(_other_files, id="no-saved-model-file"),
        pytest.param(_chunked, id="chunked-cpb-only"),
    ],
)
def test_not_a_saved_model_directory(
    tmp_path: Path, command: str, make: Callable[[Path], tuple[Path, str]]
) -> None:
    """A path that is not a SavedModel directory: the exact message, with the fix where there is one."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    model, expected = make(inputs)
    out = tmp_path / "out"
    assert fail_cleanly(_argv(command, model, out), inputs=inputs, out=out) == expected


# --- rename-signature refusals -----------------------------------------------------------------


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A private copy of module_multi (signatures fixed, masked, preprocess, serving_default)."""
    return copy_fixture("module_multi", tmp_path / "in")


def _rename(model: Path, *args: str | Path) -> str:
    """rename-signature that must fail; the output (after -o) must not appear."""
    out = Path(args[args.index("-o") + 1]) if "-o" in args else None
    return fail_cleanly(["rename-signature", model, *args], inputs=model.parent, out=out)


def test_unknown_signature_lists_the_keys(model: Path, tmp_path: Path) -> None:
    """The error lists every signature the model has (without the reserved init op)."""
    message = _rename(model, "nope", "x", "-o", tmp_path / "out")
    assert message == "no signature 'nope' in the model: it has fixed, masked, preprocess, serving_default"


def test_rename_onto_an_existing_key(model: Path, tmp_path: Path) -> None:
    message = _rename(model, "masked", "fixed", "-o", tmp_path / "out")
    assert message == "meta graph 'serve' already has a signature 'fixed': remove or rename it first"


@pytest.mark.parametrize(
    ("old", "new", "reserved"),
    [
        (INIT_OP, "x", INIT_OP),
        ("masked", INIT_OP, INIT_OP),
        (TRAIN_OP, "x", TRAIN_OP),
        ("masked", TRAIN_OP, TRAIN_OP),
    ],
)
def test_reserved_keys_are_refused(model: Path, tmp_path: Path, old: str, new: str, reserved: str) -> None:
    """A reserved key is refused as OLD or NEW, whether or not the model has it."""
    message = _rename(model, old, new, "-o", tmp_path / "out")
    assert message == f"{reserved!r} is a reserved signature key that TensorFlow manages: it cannot be edited"


def test_tag_set_no_meta_graph_has(tmp_path: Path) -> None:
    """`--tag-set` naming no meta graph lists the tag sets the model has."""
    model = copy_fixture("tf1_two_metagraphs", tmp_path / "in")
    out = tmp_path / "out"
    message = _rename(model, "predict", "x", "--tag-set", "serve,tpu", "-o", out)
    assert message == "no meta graph has tag set 'serve,tpu' (the model has: serve; serve,gpu)"


def test_existing_output_is_refused_without_force(model: Path, tmp_path: Path) -> None:
    """An existing output directory is kept as it was, with a hint to pass --force."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    before = _snapshot(out)
    message = assert_error(run_cli("rename-signature", model, "masked", "x", "-o", out))
    assert message == f"{out} already exists: choose a new directory or replace it (--force, force=True)"
    assert _snapshot(out) == before
    assert _leftovers(tmp_path) == []


def test_existing_output_is_replaced_with_force(model: Path, tmp_path: Path) -> None:
    """With --force the existing output is replaced whole (its old files are gone)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    before = _snapshot(model.parent)
    result = run_cli("rename-signature", model, "masked", "renamed", "-o", out, "--force")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"wrote {out}\n"
    assert not (out / "keep.txt").exists()
    edited = surgery.load(out)
    keys = set(edited.proto.meta_graphs[0].signature_def)
    assert "renamed" in keys and "masked" not in keys
    assert check(edited).ok
    assert _snapshot(model.parent) == before
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "where",
    [pytest.param([], id="neither"), pytest.param(["-o", "OUT", "--in-place"], id="both")],
)
def test_exactly_one_of_output_and_in_place(model: Path, tmp_path: Path, where: list[str]) -> None:
    """Neither -o nor --in-place, or both: a usage error that names the two choices."""
    out = tmp_path / "out"
    args = [out if a == "OUT" else a for a in where]
    message = fail_cleanly(["rename-signature", model, "masked", "x", *args], inputs=model.parent, out=out)
    assert message == "give either -o/--output OUT or --in-place (see --help)"


def test_output_inside_the_input(model: Path) -> None:
    out = model / "sub"
    message = _rename(model, "masked", "x", "-o", out)
    assert message == f"{out} is inside the input directory {model}: choose an output outside it"
    assert not out.exists()


@pytest.mark.parametrize("spelling", ["{m}", "{m}/", "{m}/../{name}"])
def test_output_is_the_input(model: Path, spelling: str) -> None:
    """The input as output, however spelled: refused with a hint to use --in-place."""
    out = spelling.format(m=model, name=model.name)
    message = _rename(model, "masked", "x", "-o", out)
    assert message == f"{Path(out)} is the input directory: use --in-place to edit it"


def test_output_containing_the_input(model: Path) -> None:
    """An output that is a parent of the input would swallow it, even with --force."""
    out = model.parent
    message = _rename(model, "masked", "x", "-o", out, "--force")
    assert message == f"{out} contains the input directory {model}: choose another output"


def test_output_parents_are_made_as_mkdir_p_would(model: Path, tmp_path: Path) -> None:
    """-o a/b/out makes a/ and a/b/, as --output-root does; a refused edit makes none."""
    out = tmp_path / "no" / "such" / "out"
    message = _rename(model, "nothing", "x", "-o", out)
    assert message.startswith("no signature 'nothing' in the model")
    assert not (tmp_path / "no").exists()
    run_cli("rename-signature", model, "masked", "x", "-o", out, check=True)
    assert "x" in surgery.load(out).proto.meta_graphs[0].signature_def


def test_output_under_a_file_is_refused(model: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a directory")
    out = tmp_path / "plain" / "sub" / "out"
    message = assert_error(run_cli("rename-signature", model, "masked", "x", "-o", out))
    assert message == f"{tmp_path / 'plain'} is not a directory: {out} cannot be written under it"
    assert (tmp_path / "plain").read_text() == "not a directory"


def test_empty_new_key(model: Path, tmp_path: Path) -> None:
    message = _rename(model, "masked", "", "-o", tmp_path / "out")
    assert message == "the new signature key is empty: give a name such as serving_default"


def test_in_place_refusal_leaves_the_model_alone(model: Path) -> None:
    """A refused --in-place edit writes nothing, not even a temporary file beside the model's files."""
    message = fail_cleanly(
        ["rename-signature", model, "masked", "fixed", "--in-place"], inputs=model.parent, out=None
    )
    assert message == "meta graph 'serve' already has a signature 'fixed': remove or rename it first"
    assert _leftovers(model) == []


# --- --debug -----------------------------------------------------------------------------------


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """With --debug the same error comes with its traceback (and still a failing status)."""
    missing = tmp_path / "nowhere"
    result = run_cli("--debug", "show", missing)
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert f"SavedModelIOError: {missing}: no such directory" in result.stderr


def test_debug_keeps_exit_status_2(tmp_path: Path) -> None:
    """The contract's exit codes do not depend on --debug: bad input is 2, not check's 1."""
    result = run_cli("--debug", "show", tmp_path / "nowhere")
    assert "Traceback" in result.stderr
    assert result.returncode == 2


def test_nesting_beyond_the_parser_limit(tmp_path: Path) -> None:
    """A well-formed pb nested deeper than protobuf's depth limit is one line too, not a crash."""
    proto = SavedModel()
    meta = proto.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    value = meta.object_graph_def.concrete_functions["f"].output_signature
    for _ in range(300):
        value = value.list_value.values.add()
    model = tmp_path / "in" / "deep"
    model.mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(proto.SerializeToString())
    for command in ("show", "check"):
        message = fail_cleanly([command, model], inputs=tmp_path / "in", out=None)
        assert message.startswith(f"{model / 'saved_model.pb'} {NOT_A_SAVED_MODEL}"), message
        assert message.endswith(CORRUPT), message


def test_edit_of_a_model_with_an_existing_problem_keeps_it_and_succeeds(tmp_path: Path) -> None:
    """A problem the model already had is not the edit's: the edit is written, the problem stays reported."""
    broken = tmp_path / "broken"
    model = surgery.load(FIXTURES / "module_multi")
    model.proto.meta_graphs[0].signature_def["masked"].inputs["a_dense"].name = "nope:0"
    surgery.save(model, broken)
    out = tmp_path / "out"
    result = run_cli("rename-signature", broken, "masked", "masked_v2", "-o", out)
    assert result.returncode == 0, result.stderr
    findings = check(surgery.load(out)).findings
    assert [(f.code, f.signature) for f in findings] == [
        ("missing-tensor", "masked_v2"),
        ("call-node", "masked_v2"),
    ]


# --- paths: both formats, permissions, links, special files --------------------------------------


def test_both_pb_and_pbtxt(tmp_path: Path) -> None:
    """Reading uses saved_model.pb as TensorFlow does, with a warning; an edit is refused with the fix."""
    from surgery.schema import to_text

    model = copy_fixture("module_multi", tmp_path / "in")
    (model / "saved_model.pbtxt").write_text(to_text(surgery.load(model).proto))
    shown = run_cli("show", model, "--json")
    assert shown.returncode == 0
    assert shown.stderr == (
        f"savedmodel-surgery: warning: {model} holds both saved_model.pb and saved_model.pbtxt: reading "
        "saved_model.pb, as TensorFlow does; saved_model.pbtxt is ignored\n"
    )
    before = _snapshot(tmp_path / "in")
    result = run_cli("rename-signature", model, "masked", "x", "-o", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"{PREFIX}{model} holds both saved_model.pb and saved_model.pbtxt: an edit would leave one of them "
        "stale; delete the one TensorFlow should not read (it reads saved_model.pb) and retry"
    )
    assert _snapshot(tmp_path / "in") == before and not (tmp_path / "out").exists()


def _drop_file_permissions_override() -> None:
    """In the child: without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER, root obeys modes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP: gone from the program exec'd next


def run_unprivileged(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command as a user whom file modes bind (root drops its capabilities to override them)."""
    drop = _drop_file_permissions_override if os.geteuid() == 0 else None
    cmd = [sys.executable, "-m", "surgery", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, preexec_fn=drop)


@pytest.fixture
def modes_bind(tmp_path: Path) -> None:
    """Skip where file modes cannot be made to bind (root that cannot drop its capabilities)."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        if run_unprivileged("show", probe).stderr.count("Permission denied") == 0:
            result = subprocess.run(["cat", str(probe)], preexec_fn=_drop_file_permissions_override)
            if result.returncode == 0:
                pytest.skip("file modes do not bind here")
    finally:
        probe.unlink()


def test_unreadable_model_file(tmp_path: Path, modes_bind: None) -> None:
    model = copy_fixture("module_multi", tmp_path / "in")
    (model / "saved_model.pb").chmod(0)
    assert assert_error(run_unprivileged("show", model)) == (
        f"cannot read {model / 'saved_model.pb'}: Permission denied"
    )


def test_unreadable_model_directory(tmp_path: Path, modes_bind: None) -> None:
    model = copy_fixture("module_multi", tmp_path / "in")
    model.chmod(0)
    try:
        message = assert_error(
            run_unprivileged("rename-signature", model, "masked", "x", "-o", tmp_path / "o")
        )
    finally:
        model.chmod(0o755)
    assert message == f"Invalid value for 'MODEL': Path {str(model)!r} is not readable. (see --help)"


def test_unreadable_model_directory_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the command line's check: the directory is named, not reported as holding no model."""
    model = copy_fixture("module_multi", tmp_path)

    def denied(path: object) -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(surgery.SavedModelIOError) as error:
        surgery.load(model)
    assert str(error.value) == f"cannot read the directory {model}: Permission denied"


def test_read_only_output_location(tmp_path: Path, modes_bind: None) -> None:
    model = copy_fixture("module_multi", tmp_path / "in")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        message = assert_error(
            run_unprivileged("rename-signature", model, "masked", "x", "-o", parent / "out")
        )
        assert _leftovers(parent) == [] and not (parent / "out").exists()
    finally:
        parent.chmod(0o755)
    assert message == f"cannot write into {parent}: Permission denied"


def test_read_only_model_in_place(tmp_path: Path, modes_bind: None) -> None:
    """A model directory we may not write: --in-place fails in one line and changes nothing."""
    model = copy_fixture("module_multi", tmp_path / "in")
    before = _snapshot(model)
    model.chmod(0o555)
    try:
        message = assert_error(run_unprivileged("rename-signature", model, "masked", "x", "--in-place"))
    finally:
        model.chmod(0o755)
    assert message == f"cannot write {model / 'saved_model.pb'}: Permission denied; nothing was changed"
    assert _snapshot(model) == before


def test_broken_symlink_as_model(tmp_path: Path) -> None:
    link = tmp_path / "in" / "model"
    link.parent.mkdir()
    link.symlink_to(tmp_path / "gone")
    message = fail_cleanly(["show", link], inputs=tmp_path / "in", out=None)
    assert message == f"{link} is a broken symbolic link (or a link loop): fix the link"


def test_symlinked_model_directory_works(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(model)
    result = run_cli("rename-signature", link, "masked", "x", "--in-place")
    assert result.returncode == 0, result.stderr
    assert "x" in surgery.load(model).proto.meta_graphs[0].signature_def
    assert link.is_symlink()


def test_output_is_a_symlink_to_the_input(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "alias"
    out.symlink_to(model)
    message = _rename(model, "masked", "x", "-o", out, "--force")
    assert message == f"{out} is the input directory: use --in-place to edit it"


def test_output_is_a_dangling_symlink(model: Path, tmp_path: Path) -> None:
    """A link where OUT should go is never written through, with or without --force."""
    out = tmp_path / "dangling"
    out.symlink_to(tmp_path / "elsewhere")
    assert (
        _rename(model, "masked", "x", "-o", out)
        == f"{out} already exists: choose a new directory or replace it (--force, force=True)"
    )
    message = _rename(model, "masked", "x", "-o", out, "--force")
    assert message == f"{out} exists and is not a directory: remove it or choose another output"
    assert not (tmp_path / "elsewhere").exists() and out.is_symlink()


def test_output_path_is_a_link_loop(model: Path, tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    message = _rename(model, "masked", "x", "-o", loop / "out")
    assert message == f"{loop / 'out'} is a symbolic link loop: remove or fix the link"


def test_link_loop_inside_the_model(model: Path, tmp_path: Path) -> None:
    """variables/again -> .. would copy forever: refused, nothing written."""
    (model / "variables" / "again").symlink_to("..")
    message = _rename(model, "masked", "x", "-o", tmp_path / "out")
    assert (
        message
        == f"{model / 'variables' / 'again'} links to a directory that contains it: remove the link loop"
    )


def test_saved_model_pb_is_a_directory(tmp_path: Path) -> None:
    model = tmp_path / "in" / "model"
    (model / "saved_model.pb").mkdir(parents=True)
    message = fail_cleanly(["show", model], inputs=tmp_path / "in", out=None)
    assert message == (
        f"{model / 'saved_model.pb'} is not a regular file (a directory, a device, a FIFO or a broken link): "
        "it must be the model's proto file"
    )


def test_fifo_inside_the_model(model: Path, tmp_path: Path) -> None:
    """A FIFO would block a copy forever: refused by name, nothing written."""
    os.mkfifo(model / "assets.pipe")
    message = _rename(model, "masked", "x", "-o", tmp_path / "out")
    assert message == (
        f"{model / 'assets.pipe'} is not a regular file or directory (a FIFO, socket or device): "
        "remove it from the model"
    )


def test_fifo_as_the_checkpoint_index(model: Path, tmp_path: Path) -> None:
    """A FIFO where variables/variables.index should be: no hang hashing it for the fingerprint,
    and no fingerprint without its hash: one error line, nothing written, in place or not."""
    index = model / "variables" / "variables.index"
    index.unlink()
    os.mkfifo(index)
    before = _snapshot(model)

    def edit(*where: str | Path) -> subprocess.CompletedProcess[str]:
        cmd = ["timeout", "60", sys.executable, "-m", "surgery", "rename-signature", model, "masked", "x"]
        return subprocess.run([*map(str, cmd), *map(str, where)], capture_output=True, text=True)

    expected = (
        f"cannot read {index}: it is a FIFO, a socket or a device, not a regular file; fingerprint.pb "
        "hashes it: make it a readable file, or remove it if the model has no variables"
    )
    assert assert_error(edit("-o", tmp_path / "out")) == expected
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
    assert assert_error(edit("--in-place")) == expected
    assert _snapshot(model) == before and _leftovers(model) == []


# --- never replace what the tool did not write ------------------------------------------------------


def test_a_fingerprint_pb_directory_is_never_replaced_in_place(model: Path, tmp_path: Path) -> None:
    """A directory named fingerprint.pb (with files in it) would be swapped out by an in-place edit:
    refused in one line, the directory and the model as they were; a copy (-o) is written."""
    (model / "fingerprint.pb").unlink()
    (model / "fingerprint.pb").mkdir()
    (model / "fingerprint.pb" / "notes.txt").write_text("someone's data")
    before = _snapshot(model)
    message = assert_error(run_cli("rename-signature", model, "masked", "x", "--in-place"))
    assert message == (
        f"{model / 'fingerprint.pb'} is a directory, which an in-place edit would replace: "
        "move it out of the model directory; nothing was changed"
    )
    assert _snapshot(model) == before
    run_cli("rename-signature", model, "masked", "x", "-o", tmp_path / "copy", check=True)
    assert (tmp_path / "copy" / "fingerprint.pb").is_file() and _snapshot(model) == before


def test_a_symlinked_model_file_is_not_replaced_in_place(model: Path, tmp_path: Path) -> None:
    """saved_model.pb a link to a file elsewhere: an in-place edit would turn the link into a file
    and leave its target stale; refused, the link kept. A link to the model directory edits."""
    target = tmp_path / "elsewhere.pb"
    (model / "saved_model.pb").rename(target)
    (model / "saved_model.pb").symlink_to(target)
    message = assert_error(run_cli("rename-signature", model, "masked", "x", "--in-place"))
    assert message == (
        f"{model / 'saved_model.pb'} is a symbolic link, which an in-place edit would replace: "
        "edit the model it points to, or write a copy with -o OUT; nothing was changed"
    )
    assert (model / "saved_model.pb").is_symlink() and target.read_bytes() == (
        FIXTURES / "module_multi" / "saved_model.pb"
    ).read_bytes()
