"""Text format in bounded memory (surgery/text_holes.py, surgery/_textformat.c).

Tier 1: the C loops against protobuf's own text format on any bytes: escaping is CEscape,
unescaping a canonical literal is CUnescape, and the scanner finds, window by window, exactly
the literals protobuf's printer would write. Tier 2: every fixture and every real-world model,
converted and edited as text with every constant left on disk (HOLE_MIN = 1), writes exactly the
bytes a full parse writes. Tier 3: what a hand-written text holds (other escapes, split literals,
comments, an `Any` payload) is parsed by protobuf, whole, and comes out the same. Tier 4
(oracle): a text copy of megabytes of constants, edited lazily, serves through every loader.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from google.protobuf import text_encoding
from hypothesis import given, settings
from hypothesis import strategies as st
from realworld_cases import discover
from signature_cases import Cases, assert_tensorflow_fingerprint, renamed

import surgery
from conftest import FIXTURES, Oracle, assert_serves, run_cli
from surgery import _textformat, lazy
from surgery.model import Model
from surgery.schema import DataType, FingerprintDef, SavedModel, to_text
from surgery.text_holes import shrink_text

FIXTURE_NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "saved_model.pb").is_file())
REALWORLD = [m for m in discover() if (m.path / "saved_model.pb").is_file()]

# --- the C loops against protobuf -----------------------------------------------------------------


@given(st.binary(max_size=600))
def test_escape_is_protobufs(data: bytes) -> None:
    assert _textformat.escape(data) == text_encoding.CEscape(data, False).encode()


@given(st.binary(max_size=600), st.lists(st.integers(1, 9), max_size=200))
def test_unescape_is_protobufs_in_any_windows(data: bytes, cuts: list[int]) -> None:
    text = _textformat.escape(data)
    assert text_encoding.CUnescape(text.decode()) == data
    out, position = [], 0
    for cut in [*cuts, len(text)]:
        window = text[position : position + cut]
        decoded, used = _textformat.unescape(window, position + len(window) == len(text))
        out.append(decoded)
        position += used
        if position == len(text):
            break
    else:
        decoded, used = _textformat.unescape(text[position:], True)
        out.append(decoded)
        position += used
    assert position == len(text) and b"".join(out) == data


@pytest.mark.parametrize("text", [b"\\x41", b"\\101", b"\\q", b"'", b"\xc3\xa9", b"\\0", b"\\400", b"ab\\"])
def test_unescape_refuses_what_protobuf_would_not_print(text: bytes) -> None:
    with pytest.raises(ValueError, match="not a literal as protobuf's printer writes it"):
        _textformat.unescape(text, True)


_PIECES = st.one_of(
    st.sampled_from([b"a", b" ", b"\n", b"#", b"'", b'"', b"\\", b"x", b"0", b"7", b"\\n", b'\\"', b"{"]),
    st.binary(max_size=3),
)


def _literals(text: bytes, minimum: int) -> list[tuple[int, int, int]]:
    """What the scanner must find, by protobuf's own tokenizer rules and printer."""
    found = []
    position = 0
    while position < len(text):
        byte = text[position : position + 1]
        if byte == b"#":
            end = text.find(b"\n", position)
            position = len(text) if end < 0 else end + 1
        elif byte in (b'"', b"'"):
            end, escaped = position + 1, False
            while end < len(text):
                c = text[end : end + 1]
                if c == b"\n":
                    break
                if escaped:
                    escaped = False
                elif c == b"\\":
                    escaped = True
                elif c == byte:
                    break
                end += 1
            if end >= len(text) or text[end : end + 1] == b"\n":
                position = end + 1 if end < len(text) else end  # unterminated: up to the line's end
                continue
            content = text[position + 1 : end]
            if byte == b'"' and len(content) >= minimum:
                try:
                    value = text_encoding.CUnescape(content.decode("utf-8"))
                    canonical = text_encoding.CEscape(value, False).encode() == content
                except (ValueError, UnicodeDecodeError):
                    canonical = False
                if canonical:
                    found.append((position + 1, end, len(value)))
            position = end + 1
        else:
            position += 1
    return found


@settings(max_examples=300)
@given(st.lists(_PIECES, max_size=120), st.integers(0, 6), st.lists(st.integers(1, 17), max_size=40))
def test_scanner_finds_exactly_the_printed_literals_in_any_windows(
    pieces: list[bytes], minimum: int, cuts: list[int]
) -> None:
    text = b"".join(pieces)
    found: list[tuple[int, int, int]] = []
    state, position = _textformat.START_STATE, 0
    for cut in [*cuts, len(text)]:
        window = text[position : position + cut]
        more, state = _textformat.scan(window, position, minimum, state)
        found += more
        position += len(window)
    assert position == len(text)
    assert found == _literals(text, minimum)


# --- whole models: the same bytes as a full parse -------------------------------------------------


def _inflate(model: Model, seed: int) -> None:
    """Constants where TensorFlow puts them: a graph node and a vocabulary (the text's literals)."""
    rng = random.Random(seed)
    meta = model.proto.meta_graphs[0]
    node = meta.graph_def.node.add(name="inflated", op="Const")
    node.attr["dtype"].type = DataType.DT_FLOAT
    tensor = node.attr["value"].tensor
    tensor.dtype = DataType.DT_FLOAT
    tensor.tensor_shape.dim.add().size = 5000
    tensor.tensor_content = rng.randbytes(20000)
    words = meta.graph_def.node.add(name="vocabulary", op="Const")
    words.attr["dtype"].type = DataType.DT_STRING
    strings = words.attr["value"].tensor
    strings.dtype = DataType.DT_STRING
    strings.tensor_shape.dim.add().size = 3
    strings.string_val.extend([b"w" * 100, b"", rng.randbytes(3000)])


@pytest.fixture
def every_literal_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)


def _both_ways(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, exact: bool) -> None:
    """pb -> pbtxt -> pb and an edit of the text, lazily and whole: the same files (and, with
    `exact`, for a file TensorFlow 2 serialized, the original again)."""
    outputs = {}
    for mode, full in (("lazy", "0"), ("full", "1")):
        monkeypatch.setenv("SURGERY_FULL_PARSE", full)
        text, back, edited = tmp_path / f"{mode}_t", tmp_path / f"{mode}_b", tmp_path / f"{mode}_e"
        surgery.convert(source, text, "pbtxt")
        loaded = surgery.load(text)
        constants = b'tensor_content: "' in (text / "saved_model.pbtxt").read_bytes()
        if mode == "full":
            assert loaded.holes is None
        elif constants:
            assert loaded.holes is not None
        loaded.close()
        surgery.convert(text, back, "pb")
        meta = surgery.load(text).proto.meta_graphs[0]
        tags = list(meta.meta_info_def.tags)
        keys = sorted(k for k in meta.signature_def if not k.startswith("__"))
        edit = (
            surgery.rename_signature(text, keys[0], "zz_renamed", tag_set=tags)
            if keys
            else surgery.set_tags(text, tags, [*tags, "zz"])
        )
        surgery.save(edit, edited)
        outputs[mode] = [
            (text / "saved_model.pbtxt").read_bytes(),
            (back / "saved_model.pb").read_bytes(),
            (edited / "saved_model.pbtxt").read_bytes(),
            _hashes(back),
            _hashes(edited),
        ]
    assert outputs["lazy"] == outputs["full"]
    if exact:
        assert outputs["lazy"][1] == (source / "saved_model.pb").read_bytes()


def _hashes(model: Path) -> FingerprintDef | None:
    path = model / "fingerprint.pb"
    if not path.is_file():
        return None
    fingerprint = FingerprintDef.FromString(path.read_bytes())
    fingerprint.uuid = ""
    return fingerprint


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.usefixtures("every_literal_on_disk")
def test_fixture_as_text_writes_what_a_full_parse_writes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = surgery.load(FIXTURES / name, lazy=False)
    _inflate(model, len(name))
    source = tmp_path / "source"
    source.mkdir()
    (source / "saved_model.pb").write_bytes(model.serialize())
    _both_ways(source, tmp_path, monkeypatch, exact=True)


@pytest.mark.parametrize("model", REALWORLD, ids=[m.id for m in REALWORLD])
@pytest.mark.usefixtures("every_literal_on_disk")
def test_realworld_as_text_writes_what_a_full_parse_writes(
    model: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = model.path  # type: ignore[attr-defined]
    source = tmp_path / "source"
    source.mkdir()
    (source / "saved_model.pb").write_bytes((path / "saved_model.pb").read_bytes())
    _both_ways(source, tmp_path, monkeypatch, exact=False)


def test_a_text_model_keeps_its_big_literals_on_disk(tmp_path: Path) -> None:
    """Read as text, a model holds its constants' tokens, not their bytes: show and check never
    read them, and the unedited copy is the file itself."""
    model = surgery.load(FIXTURES / "module_multi", lazy=False)
    node = model.proto.meta_graphs[0].graph_def.node.add(name="big", op="Const")
    node.attr["dtype"].type = DataType.DT_FLOAT
    node.attr["value"].tensor.tensor_content = os.urandom(1 << 20)
    source = tmp_path / "m"
    source.mkdir()
    (source / "saved_model.pbtxt").write_text(to_text(model.proto))
    loaded = surgery.load(source)
    assert loaded.holes is not None and len(loaded.holes.spans) == 1
    assert len(loaded.source) < (source / "saved_model.pbtxt").stat().st_size // 10
    assert surgery.check(loaded).ok
    surgery.save(loaded, tmp_path / "copy")
    copy = (tmp_path / "copy" / "saved_model.pbtxt").read_bytes()
    assert copy == (source / "saved_model.pbtxt").read_bytes()


# --- what a hand-written text holds: protobuf parses it, the same as whole ------------------------


def _hand_written(tmp_path: Path, text: str) -> tuple[SavedModel, Model]:
    directory = tmp_path / "hand"
    directory.mkdir(exist_ok=True)
    (directory / "saved_model.pbtxt").write_text(text)
    whole = surgery.load(directory, lazy=False).proto
    return whole, surgery.load(directory)


_GRAPH = """meta_graphs {{
  meta_info_def {{ tags: "serve" }}
  graph_def {{
    node {{
      name: "c"
      op: "Const"
      attr {{ key: "value" value {{ tensor {{ dtype: DT_STRING
{values}
      }} }} }}
    }}
  }}
}}
"""


@pytest.mark.usefixtures("every_literal_on_disk")
@pytest.mark.parametrize(
    ("values", "holes"),
    [
        ('string_val: "abc\\001"\nstring_val: "d\\\'e"', 2),  # as protobuf prints them
        ('string_val: "\\x41\\x42"', 0),  # another escaping
        ('string_val: "ab" "cd"', 0),  # adjacent literals are one value
        ('string_val: "ab"\n# a comment "with" a quote\n"cd"', 0),
        ("string_val: 'single'", 0),
        ('string_val: ["ab", "cd"]', 0),
        ('string_val: "ab"  # "not a literal"\nstring_val: "x"', 2),
        ('tensor_content: "\\000\\377"', 1),
        ('string_val:"tight"', 1),
        ('  string_val: "é"', 0),  # protobuf prints non-ASCII bytes as octal escapes
    ],
)
def test_hand_written_literals_parse_as_protobuf_parses_them(tmp_path: Path, values: str, holes: int) -> None:
    whole, lazily = _hand_written(tmp_path, _GRAPH.format(values=values))
    assert (len(lazily.holes.spans) if lazily.holes is not None else 0) == holes
    assert lazily.serialize() == whole.SerializeToString(deterministic=True)


_VALUE_LINES = st.one_of(
    st.binary(max_size=40).map(lambda b: 'string_val: "' + _textformat.escape(b).decode() + '"'),
    st.binary(max_size=40).map(lambda b: 'tensor_content: "' + _textformat.escape(b).decode() + '"'),
    st.sampled_from(
        [
            'string_val: "\\x41"',
            'string_val: "a" "b"',
            "string_val: 'q'",
            'string_val: "a" # "c"',
            '# string_val: "not a value"',
            'string_val: ["a", "b"]',
            'string_val:\n"next line"',
            'string_val: "unterminated',
            'string_val: "\\777"',
            "string_val: 1",
            'tensor_content: "abc" junk',
            'tensor_content: "abc" }',
        ]
    ),
)


@pytest.mark.filterwarnings("ignore:invalid octal escape:DeprecationWarning")
@settings(max_examples=150, deadline=None)
@given(st.lists(_VALUE_LINES, max_size=8))
def test_any_text_reads_lazily_as_protobuf_reads_it(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    """Whatever the literals, reading with every one of them set aside that can be gives the
    model a full parse gives, or the same error."""
    directory = tmp_path_factory.mktemp("text")
    (directory / "saved_model.pbtxt").write_text(_GRAPH.format(values="\n".join(lines)))
    outcomes = []
    for minimum in (1 << 30, 1):
        lazy.HOLE_MIN, saved = minimum, lazy.HOLE_MIN
        try:
            outcomes.append(surgery.load(directory).serialize())
        except surgery.SurgeryError as err:
            outcomes.append(str(err))
        finally:
            lazy.HOLE_MIN = saved
    assert outcomes[0] == outcomes[1]


@pytest.mark.usefixtures("every_literal_on_disk")
def test_a_literal_inside_an_any_payload_is_read_whole(tmp_path: Path) -> None:
    text = """meta_graphs {
  meta_info_def { tags: "serve" }
  collection_def {
    key: "k"
    value {
      any_list {
        value {
          [type.googleapis.com/tensorflow.TensorProto] {
            dtype: DT_FLOAT
            tensor_content: "\\000\\000\\200?"
          }
        }
      }
    }
  }
}
"""
    whole, lazily = _hand_written(tmp_path, text)
    assert lazily.holes is None
    assert lazily.serialize() == whole.SerializeToString(deterministic=True)


def test_shrink_text_leaves_a_small_text_alone(tmp_path: Path) -> None:
    path = tmp_path / "t"
    path.write_bytes(b'string_val: "abc"\n')
    fd = os.open(path, os.O_RDONLY)
    try:
        assert shrink_text(fd, path.stat().st_size) is None
        assert shrink_text(fd, path.stat().st_size, 1) is not None
    finally:
        os.close(fd)


# --- the oracle tier: a text copy of megabytes of constants, edited lazily, serves -----------------


@pytest.fixture(scope="module")
def big(oracle: Oracle, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Cases]:
    path = tmp_path_factory.mktemp("big") / "big_constants"
    cases: Cases = oracle.ok(op="build", kind="big_constants", model=str(path))["cases"]
    return path, cases


def test_a_text_copy_edited_lazily_serves(oracle: Oracle, big: tuple[Path, Cases], tmp_path: Path) -> None:
    """The text copy of a model with megabytes of constants (real threshold), edited from the
    command line with those constants left on disk, serves the same numbers through every loader
    as the binary edit, and converts back to the binary edit's bytes."""
    path, cases = big
    text = tmp_path / "text"
    assert run_cli("convert", path, "-o", text).returncode == 0
    loaded = surgery.load(text)
    assert loaded.holes is not None and len(loaded.holes.spans) == 2  # the two tensor_content literals
    assert len(loaded.source) < (text / "saved_model.pbtxt").stat().st_size // 2
    loaded.close()
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "operations:\n"
        "  - {op: rename-input, signature: score, old: bias, new: a_bias}\n"
        "  - {op: set-dtype, signature: score, key: b, dtype: float64, output: true}\n"
        "  - {op: rename-signature, old: score, new: predict}\n"
    )
    edited_text, edited_binary, back = tmp_path / "edited_text", tmp_path / "edited_binary", tmp_path / "back"
    for source, out in ((text, edited_text), (path, edited_binary)):
        result = run_cli("apply", source, plan, "-o", out)
        assert result.returncode == 0, result.stderr
    assert (edited_text / "saved_model.pbtxt").is_file()
    expected = renamed(cases, "inputs", {"bias": "a_bias"})
    for case in expected:
        case["signature"] = "predict"
        case["outputs"]["b"]["dtype"] = "float64"
    assert_serves(oracle, edited_text, expected)
    assert run_cli("convert", edited_text, "-o", back).returncode == 0
    assert (back / "saved_model.pb").read_bytes() == (edited_binary / "saved_model.pb").read_bytes()
    assert _hashes(back) == _hashes(edited_binary)
    assert_tensorflow_fingerprint(oracle, back)
