"""The fast path for large models (surgery/lazy.py): the same bytes as a full parse, and served.

Tier 1: every fixture and every operation, read lazily with every constant's bytes left on disk
(HOLE_MIN = 1), writes exactly the files a full parse writes, fingerprint.pb included.
Tier 2: a wire-level property: shrinking and expanding any message of constants gives its
canonical bytes back. Tier 3 (oracle): a model with megabytes of constants in the graph, in a
function body and in a vocabulary, edited lazily from the command line, serves the right numbers
through both loaders and carries the fingerprint TensorFlow computes.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import random
import shutil
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from signature_cases import Cases, assert_tensorflow_fingerprint, renamed

import surgery
import surgery.fingerprint
from conftest import FIXTURES, Oracle, assert_serves, copy_fixture, run_cli, tree_bytes
from surgery import lazy
from surgery.errors import EditError, SavedModelIOError
from surgery.model import Model
from surgery.plans import parse_plan
from surgery.schema import DataType, FingerprintDef, SavedModel
from surgery.storage import files as storage_files
from surgery.tensors import shape_from_proto

FIXTURE_NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "saved_model.pb").is_file())


def _operations(name: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """One of each edit on the fixture's first two signatures (its first input and output)."""
    meta = surgery.load(FIXTURES / name, lazy=False).proto.meta_graphs[0]
    out: list[tuple[str, list[dict[str, Any]]]] = []
    keys = [k for k in sorted(meta.signature_def) if not k.startswith("__")][:2]
    for key in keys:
        signature = meta.signature_def[key]
        out += [
            (f"rename-signature-{key}", [{"op": "rename-signature", "old": key, "new": f"zz_{key}"}]),
            (
                f"set-method-{key}",
                [{"op": "set-method", "signature": key, "method": "tensorflow/serving/regress"}],
            ),
            (f"copy-signature-{key}", [{"op": "copy-signature", "src": key, "dst": f"{key}_copy"}]),
            (f"remove-signature-{key}", [{"op": "remove-signature", "signature": key}]),
        ]
        for side, infos in (("input", signature.inputs), ("output", signature.outputs)):
            if not infos:
                continue
            first = sorted(infos)[0]
            out.append(
                (
                    f"rename-{side}-{key}",
                    [{"op": f"rename-{side}", "signature": key, "old": first, "new": f"zz_{first}"}],
                )
            )
            flag = {"output": True} if side == "output" else {}
            shape = shape_from_proto(infos[first].tensor_shape)
            if shape:
                relaxed = [-1, *shape[1:]]
                out.append(
                    (
                        f"set-shape-{side}-{key}",
                        [{"op": "set-shape", "signature": key, "key": first, "shape": relaxed, **flag}],
                    )
                )
            out.append(
                (
                    f"set-dtype-{side}-{key}",
                    [{"op": "set-dtype", "signature": key, "key": first, "dtype": "float64", **flag}],
                )
            )
    tags = list(meta.meta_info_def.tags)
    out.append(("set-tags", [{"op": "set-tags", "old": tags, "new": [*tags, "tpu"]}]))
    if name == "tf1_two_metagraphs":
        out.append(("rename-tensor", [{"op": "rename-tensor", "old": "input_x:0", "new": "images:0"}]))
    return out


CASES = [
    pytest.param(name, operations, id=f"{name}-{op_id}")
    for name in FIXTURE_NAMES
    for op_id, operations in _operations(name)
]


def _inflate(model: Model) -> None:
    """Add constants where TensorFlow puts them: the graph, a function body, a vocabulary."""
    rng = random.Random(len(model.serialize()))
    for meta in model.proto.meta_graphs:
        places = [meta.graph_def.node]
        if meta.graph_def.library.function:
            places.append(meta.graph_def.library.function[0].node_def)
        for i, nodes in enumerate(places):
            node = nodes.add(name=f"inflated_{i}", op="Const")
            node.attr["dtype"].type = DataType.DT_FLOAT
            tensor = node.attr["value"].tensor
            tensor.dtype = DataType.DT_FLOAT
            tensor.tensor_shape.dim.add().size = 1000
            tensor.tensor_content = rng.randbytes(4000)
            words = nodes.add(name=f"vocabulary_{i}", op="Const")
            words.attr["dtype"].type = DataType.DT_STRING
            strings = words.attr["value"].tensor
            strings.dtype = DataType.DT_STRING
            strings.tensor_shape.dim.add().size = 3
            strings.string_val.extend([b"w" * 100, b"short", rng.randbytes(300)])


@pytest.fixture(scope="module")
def inflated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fixture with constants added (what the edits of the fast-path tests start from)."""
    root = tmp_path_factory.mktemp("inflated")
    for name in FIXTURE_NAMES:
        model = surgery.load(FIXTURES / name, lazy=False)
        _inflate(model)
        surgery.save(model, root / name)
    return root


def _edited(model: Model, operations: list[dict[str, Any]]) -> str | None:
    """Apply the plan; the EditError's message when it is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parse_plan({"operations": operations}).apply(model)
    except EditError as err:
        return str(err)
    return None


def _files(directory: Path) -> dict[str, bytes]:
    """The model files written, fingerprint.pb's random uuid cleared."""
    out = {}
    for name in ("saved_model.pb", "fingerprint.pb"):
        if (directory / name).exists():
            out[name] = (directory / name).read_bytes()
    if "fingerprint.pb" in out:
        fingerprint = FingerprintDef.FromString(out["fingerprint.pb"])
        fingerprint.ClearField("uuid")
        out["fingerprint.pb"] = fingerprint.SerializeToString(deterministic=True)
    return out


@pytest.fixture
def every_constant_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)


@pytest.mark.usefixtures("every_constant_on_disk")
@pytest.mark.parametrize(("name", "operations"), CASES)
def test_fast_path_writes_what_a_full_parse_writes(
    tmp_path: Path, inflated: Path, name: str, operations: list[dict[str, Any]]
) -> None:
    fast = surgery.load(inflated / name)
    full = surgery.load(inflated / name, lazy=False)
    assert fast.holes is not None and len(fast.holes.spans) >= 4, "the constants are left on disk"
    assert full.holes is None
    refused = _edited(fast, operations)
    assert refused == _edited(full, operations)
    if refused is not None:
        return
    surgery.save(fast, tmp_path / "fast")
    surgery.save(full, tmp_path / "full")
    assert _files(tmp_path / "fast") == _files(tmp_path / "full")
    assert fast.serialize() == full.serialize()


@pytest.mark.usefixtures("every_constant_on_disk")
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_unedited_and_in_place(tmp_path: Path, inflated: Path, name: str) -> None:
    """An unedited copy is the input byte for byte; an in-place edit equals the -o one."""
    model = Path(shutil.copytree(inflated / name, tmp_path / "in"))
    assert surgery.load(model).holes is not None
    surgery.save(surgery.load(model), tmp_path / "copy")
    assert tree_bytes(tmp_path / "copy") == tree_bytes(model)
    key = next(
        k for k in sorted(surgery.load(model).proto.meta_graphs[0].signature_def) if not k.startswith("__")
    )
    plan = [{"op": "rename-signature", "old": key, "new": "renamed"}]
    for target in ("-o", "in-place"):
        loaded = surgery.load(model if target == "in-place" else inflated / name)
        assert _edited(loaded, plan) is None
        if target == "-o":
            surgery.save(loaded, tmp_path / "out")
        else:
            surgery.save(loaded, in_place=True)
    assert _files(model) == _files(tmp_path / "out")


def _const_model(contents: list[bytes], strings: list[list[bytes]], tail: bytes = b"") -> bytes:
    proto = SavedModel()
    meta = proto.meta_graphs.add()
    for i, content in enumerate(contents):
        node = meta.graph_def.node.add(name=f"c{i}", op="Const")
        node.attr["value"].tensor.tensor_content = content
    for i, values in enumerate(strings):
        node = meta.graph_def.library.function.add().node_def.add(name=f"s{i}", op="Const")
        node.attr["value"].tensor.string_val.extend(values)
    return proto.SerializeToString(deterministic=True) + tail


def _shrunk_round_trip(tmp_path: Path, data: bytes, minimum: int) -> tuple[bytes, int]:
    file = tmp_path / "m.pb"
    file.write_bytes(data)
    fd = os.open(file, os.O_RDONLY)
    try:
        result = lazy.shrink(fd, len(data), SavedModel.DESCRIPTOR, minimum)
    finally:
        os.close(fd)
    if result is None:  # what `load` then does: parse it whole
        return SavedModel.FromString(data).SerializeToString(deterministic=True), 0
    shrunk, holes = result
    assert len(shrunk) <= len(data)
    parsed = SavedModel.FromString(shrunk).SerializeToString(deterministic=True)
    out = b"".join(bytes(c) for c in holes.chunks(holes.expand(parsed, SavedModel.DESCRIPTOR)))
    holes.close()
    return out, len(holes.spans)


@settings(max_examples=60, deadline=None)
@given(
    contents=st.lists(st.binary(max_size=300), max_size=5),
    strings=st.lists(st.lists(st.binary(max_size=200), max_size=4), max_size=3),
    minimum=st.integers(min_value=1, max_value=256),
)
def test_shrink_then_expand_gives_the_canonical_bytes(
    tmp_path_factory: pytest.TempPathFactory, contents: list[bytes], strings: list[list[bytes]], minimum: int
) -> None:
    data = _const_model(contents, strings)
    out, holes = _shrunk_round_trip(tmp_path_factory.mktemp("p"), data, minimum)
    assert out == data
    least = max(minimum, lazy._TOKEN_LEN + 1)
    runs = [len(b"".join(lazy._header(8, len(v)) + v for v in values)) for values in strings]
    big = sum(len(c) >= least for c in contents) + sum(n >= max(minimum, 2 * lazy._TOKEN_LEN) for n in runs)
    assert holes == (big if len(data) >= minimum else 0)


def _field(number: int, payload: bytes, *, pad: bool = False) -> bytes:
    """A length-delimited field record; `pad` writes its length with one byte too many."""
    length = lazy.encode_varint(len(payload))
    if pad:
        length = bytes([*length[:-1], length[-1] | 0x80, 0])
    return lazy.encode_varint(number << 3 | 2) + length + payload


def _const_with(tensor: bytes) -> bytes:
    """A SavedModel whose one graph node is a Const holding the TensorProto bytes `tensor`."""
    entry = _field(1, b"value") + _field(2, _field(8, tensor))
    node = _field(1, b"c") + _field(2, b"Const") + _field(5, entry)
    return _field(2, _field(2, _field(1, node)))


@pytest.mark.parametrize(
    ("tensor", "holes"),
    [
        (_field(4, b"A" * 200, pad=True), 0),  # a length prefix one byte longer than it need be
        (_field(4, b"A" * 200) + _field(4, b"B" * 5), 1),  # given twice: the last one counts
        (_field(4, b"B" * 5) + _field(4, b"A" * 200), 1),
        (_field(4, b"A" * 200) + _field(4, b"C" * 300), 2),
        (_field(8, b"A" * 100) + _field(8, b"D" * 200) + _field(4, b"E" * 150), 2),  # string_val: one run
        (_field(8, b"A" * 100) + _field(4, b"E" * 150) + _field(8, b"D" * 200), 3),  # two runs
    ],
    ids=["overlong", "big-then-small", "small-then-big", "big-then-big", "run", "runs"],
)
def test_records_are_written_as_a_full_parse_writes_them(tmp_path: Path, tensor: bytes, holes: int) -> None:
    """Non-canonical input: the parser's rules, not the input's bytes, decide what is written."""
    data = _const_with(tensor)
    expected = SavedModel.FromString(data).SerializeToString(deterministic=True)
    assert _shrunk_round_trip(tmp_path, data, 16) == (expected, holes)


def test_convert_of_a_lazily_read_model_holds_every_byte(
    tmp_path: Path, inflated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    fast = surgery.load(inflated / "module_multi")
    assert fast.holes is not None
    surgery.convert(fast, tmp_path / "text", "pbtxt")
    text = (tmp_path / "text" / "saved_model.pbtxt").read_text()
    assert "surgery-hole" not in text and "w" * 100 in text
    surgery.convert(tmp_path / "text", tmp_path / "back", "pb")
    assert tree_bytes(tmp_path / "back") == tree_bytes(inflated / "module_multi")


def test_full_parse_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    assert surgery.load(FIXTURES / "module_multi").holes is not None
    monkeypatch.setenv("SURGERY_FULL_PARSE", "1")
    assert surgery.load(FIXTURES / "module_multi").holes is None


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_failing_kernel_copy_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """A full disk while a large constant is copied: one line, no OUT, the input untouched."""
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    model = copy_fixture("module_multi", tmp_path / "in")
    before = tree_bytes(model)

    def failing(*args: Any) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", failing)
    loaded = surgery.load(model)
    assert _edited(loaded, [{"op": "set-method", "signature": "fixed", "method": "x/y"}]) is None
    with pytest.raises(SavedModelIOError) as caught:
        surgery.save(loaded, tmp_path / "out")
    assert str(caught.value) == f"cannot write {tmp_path / 'out'}: {os.strerror(code)}; nothing was written"
    with pytest.raises(SavedModelIOError, match="nothing was changed"):
        surgery.save(loaded, in_place=True)
    assert tree_bytes(model) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_kernel_copy_unsupported_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)

    def unsupported(*args: Any) -> int:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    loaded = surgery.load(FIXTURES / "module_multi")
    assert _edited(loaded, [{"op": "set-method", "signature": "fixed", "method": "x/y"}]) is None
    surgery.save(loaded, tmp_path / "out")
    full = surgery.load(FIXTURES / "module_multi", lazy=False)
    assert _edited(full, [{"op": "set-method", "signature": "fixed", "method": "x/y"}]) is None
    surgery.save(full, tmp_path / "full")
    assert _files(tmp_path / "out") == _files(tmp_path / "full")


def _holes_over(tmp_path: Path, data: bytes, spans: list[lazy.Span]) -> lazy.Holes:
    file = tmp_path / "source"
    file.write_bytes(data)
    return lazy.Holes(fd=os.open(file, os.O_RDONLY), size=len(data), prefix=b"<<never>>", spans=spans)


@settings(max_examples=80, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=3000),
    layout=st.lists(
        st.lists(st.one_of(st.binary(max_size=70), st.integers(min_value=0, max_value=5)), max_size=8),
        min_size=1,
        max_size=4,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=6),
)
def test_streams_hash_side_by_side_as_they_hash_alone(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, layout: list[list[bytes | int]], cuts: list[int]
) -> None:
    """Streams of bytes and spans, shared or not, in any order: each hash is its one-shot hash."""
    edges = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    spans = [lazy.Span(a, b - a) for a, b in itertools.pairwise(edges)]
    streams = [[p if isinstance(p, bytes) else spans[p % len(spans)] for p in stream] for stream in layout]
    holes = _holes_over(tmp_path_factory.mktemp("s"), data, spans)
    try:
        expected = [
            surgery.fingerprint.fingerprint64(
                b"".join(p if isinstance(p, bytes) else data[p.offset : p.offset + p.length] for p in stream)
            )
            for stream in streams
        ]
        assert lazy.fingerprint64(streams, holes) == expected
    finally:
        holes.close()


def test_a_span_two_streams_share_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checksum and the graph hash both cover a captured constant: one read serves both."""
    data = bytes(range(256)) * 40_000  # 10 MB: three 4 MB windows
    span = lazy.Span(1000, len(data) - 2000)
    holes = _holes_over(tmp_path, data, [span])
    monkeypatch.setattr(lazy, "_WINDOW", 4 << 20)
    reads: list[int] = []
    real = lazy.mapped

    def counted(fd: int, offset: int, length: int) -> Any:
        reads.append(length)
        return real(fd, offset, length)

    monkeypatch.setattr(lazy, "mapped", counted)
    try:
        checksum, graph = lazy.fingerprint64([[b"head", span, b"tail"], [b"graph", span]], holes)
    finally:
        holes.close()
    assert sum(reads) == span.length
    whole = data[span.offset : span.offset + span.length]
    assert checksum == surgery.fingerprint.fingerprint64(b"head" + whole + b"tail")
    assert graph == surgery.fingerprint.fingerprint64(b"graph" + whole)


def test_writeback_starts_chunk_by_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large model file's writeback is started after each chunk, over the whole file, in order."""
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    started: list[tuple[int, int]] = []

    def sync_file_range(fd: int, offset: int, count: int, flags: int) -> int:
        assert flags == 2  # SYNC_FILE_RANGE_WRITE: start, do not wait
        started.append((offset, count))
        return 0

    monkeypatch.setattr(storage_files, "sync_file_range", lambda: sync_file_range)
    monkeypatch.setattr(storage_files, "CHUNK", 4096)
    loaded = surgery.load(copy_fixture("module_multi", tmp_path / "in"))
    assert loaded.holes is not None
    assert _edited(loaded, [{"op": "set-method", "signature": "fixed", "method": "x/y"}]) is None
    surgery.save(loaded, tmp_path / "out")
    size = (tmp_path / "out" / "saved_model.pb").stat().st_size
    assert size > 4 * 4096
    assert [o for o, _ in started] == [0, *(o + n for o, n in started[:-1])]  # contiguous, from 0
    assert all(n >= 4096 for _, n in started) and size - sum(n for _, n in started) < 4096
    monkeypatch.setattr(storage_files, "sync_file_range", lambda: None)  # no such call (not Linux)
    surgery.save(loaded, tmp_path / "plain")
    assert _files(tmp_path / "plain") == _files(tmp_path / "out")


class _Reads:
    """What a save or a hash reads from a source file and which ranges it drops from the cache, in order.

    `posix_fadvise` only records: a test checks that nothing is read again once dropped, and that
    nothing is dropped while it is mapped (the kernel would keep those pages).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fd: int) -> None:
        self.fd = fd
        self.events: list[tuple[str, int, int]] = []
        self.mapped: list[tuple[int, int]] = []
        self.wrong: list[str] = []
        self._lock = threading.Lock()
        real_copy, real_mapped = os.copy_file_range, lazy.mapped

        def copy(src: int, dst: int, count: int, offset_src: int | None = None, *args: Any) -> int:
            done = real_copy(src, dst, count, offset_src, *args)
            if src == fd and offset_src is not None:
                self.events.append(("read", offset_src, done))
            return done

        @contextlib.contextmanager
        def mapped(src: int, offset: int, length: int) -> Iterator[memoryview]:
            if src == fd:
                self.events.append(("read", offset, length))
            with real_mapped(src, offset, length) as view:
                with self._lock:
                    self.mapped.append((offset, offset + length))
                try:
                    yield view
                finally:
                    with self._lock:
                        self.mapped.remove((offset, offset + length))

        real_ask = lazy.Release._ask

        def ask(release: lazy.Release, offset: int, length: int) -> None:
            # A drop asked for while a reader has the range mapped would keep those pages.
            end = offset + length if length else 1 << 62
            with self._lock:
                self.wrong.extend(
                    f"{offset}..{end} dropped while {start}..{stop} is mapped"
                    for start, stop in self.mapped
                    if stop > offset and start < end
                )
            real_ask(release, offset, length)

        def fadvise(target: int, offset: int, length: int, advice: int) -> None:
            # Called on the release's own thread: what is wrong is recorded, and asserted by the test.
            if target != fd or advice != os.POSIX_FADV_DONTNEED:
                self.wrong.append(f"fadvise({target}, {offset}, {length}, {advice})")
            self.events.append(("drop", offset, length or (1 << 62)))

        monkeypatch.setattr(os, "copy_file_range", copy)
        monkeypatch.setattr(lazy, "mapped", mapped)
        monkeypatch.setattr(os, "posix_fadvise", fadvise)
        monkeypatch.setattr(lazy.Release, "_ask", ask)

    def drops(self) -> list[tuple[int, int]]:
        return [(o, n) for kind, o, n in self.events if kind == "drop"]

    def assert_nothing_read_once_dropped(self) -> None:
        assert self.wrong == []
        dropped: list[tuple[int, int]] = []
        for kind, offset, length in self.events:
            if kind == "drop":
                dropped.append((offset, offset + length))
            else:
                for start, end in dropped:
                    assert offset + length <= start or offset >= end, (
                        f"bytes {offset}..{offset + length} read after {start}..{end} was dropped"
                    )


_SET_METHOD = [{"op": "set-method", "signature": "fixed", "method": "x/y"}]


def _copy_and_reference(tmp_path: Path, inflated: Path) -> Path:
    """A copy of the inflated module_multi to edit in place (returned), and `_SET_METHOD` of it
    written to tmp_path/out: what the in-place edit must write."""
    reference = surgery.load(inflated / "module_multi")
    assert _edited(reference, _SET_METHOD) is None
    surgery.save(reference, tmp_path / "out")
    return Path(shutil.copytree(inflated / "module_multi", tmp_path / "in"))


@pytest.fixture
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every constant on disk, written and dropped 512 bytes at a time: many steps on a small model."""
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    monkeypatch.setattr(lazy, "_RELEASE_STEP", 512)
    monkeypatch.setattr(lazy, "_WINDOW", 512)
    monkeypatch.setattr(storage_files, "CHUNK", 512)


@pytest.mark.usefixtures("small_steps")
def test_an_in_place_edit_drops_the_source_pages_behind_the_copy_and_the_hash(
    tmp_path: Path, inflated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file an in-place edit replaces leaves the page cache as the copy and the hash pass it."""
    model = _copy_and_reference(tmp_path, inflated)
    loaded = surgery.load(model)
    assert loaded.holes is not None and sum(span.length for span in loaded.holes.spans) > 8 * 512
    reads = _Reads(monkeypatch, loaded.holes.fd)
    assert _edited(loaded, _SET_METHOD) is None
    surgery.save(loaded, in_place=True)

    assert _files(model) == _files(tmp_path / "out")
    drops = reads.drops()
    assert len(drops) >= 4, "dropped as the copy goes, not all at the end"
    assert [o for o, _ in drops] == [0, *(o + n for o, n in drops[:-1])]  # contiguous, from 0
    assert drops[-1][1] == 1 << 62, "the last drop runs to the end of the file"
    reads.assert_nothing_read_once_dropped()
    assert loaded.holes.release is None
    assert "surgery-release" not in [t.name for t in threading.enumerate()], "save waited for the drops"


def test_pages_are_dropped_on_a_thread_of_their_own_and_close_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy does not pay for the drops; `close` returns once every drop asked for is done."""
    (tmp_path / "source").write_bytes(bytes(1 << 16))
    fd = os.open(tmp_path / "source", os.O_RDONLY)
    dropped: list[tuple[int, int, str]] = []
    go = threading.Event()

    def slow(target: int, offset: int, length: int, advice: int) -> None:
        assert go.wait(10)
        dropped.append((offset, length, threading.current_thread().name))

    monkeypatch.setattr(os, "posix_fadvise", slow)
    monkeypatch.setattr(lazy, "_RELEASE_STEP", 1)
    try:
        release = lazy.Release(fd, ("copy", "hash"))
        release.mark("copy", 8192)
        release.mark("hash", 4096)
        release.mark("hash", lazy.END)
        release.mark("copy", lazy.END)
        assert dropped == [], "asked for, not done in the reader's thread"
        go.set()
        release.close()
        name = "surgery-release"
        assert dropped == [(0, 4096, name), (4096, 4096, name), (8192, 0, name)]
        release.mark("copy", lazy.END)
        release.close()
        assert len(dropped) == 3
        assert "surgery-release" not in [t.name for t in threading.enumerate()]
    finally:
        os.close(fd)


def test_a_copy_keeps_the_source_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written to -o, the model stays as it was: its cached pages stay too."""
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    loaded = surgery.load(copy_fixture("module_multi", tmp_path / "in"))
    assert loaded.holes is not None
    reads = _Reads(monkeypatch, loaded.holes.fd)
    assert _edited(loaded, [{"op": "set-method", "signature": "fixed", "method": "x/y"}]) is None
    surgery.save(loaded, tmp_path / "out")
    assert [kind for kind, _, _ in reads.events if kind == "read"], "the spans were read"
    assert reads.drops() == []


def test_without_posix_fadvise_an_in_place_edit_drops_nothing(
    tmp_path: Path, inflated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the call does not exist (macOS), the edit is the same, the pages just stay."""
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    monkeypatch.delattr(os, "posix_fadvise")
    model = _copy_and_reference(tmp_path, inflated)
    loaded = surgery.load(model)
    assert _edited(loaded, _SET_METHOD) is None
    surgery.save(loaded, in_place=True)
    assert _files(model) == _files(tmp_path / "out")


@pytest.mark.usefixtures("small_steps")
def test_a_refused_page_drop_does_not_fail_the_edit(
    tmp_path: Path, inflated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """posix_fadvise is advice: if the kernel refuses it, the edit goes on and writes the same files."""
    calls: list[int] = []

    def refused(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append(offset)
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(os, "posix_fadvise", refused)
    model = _copy_and_reference(tmp_path, inflated)
    loaded = surgery.load(model)
    assert _edited(loaded, _SET_METHOD) is None
    surgery.save(loaded, in_place=True)
    assert calls, "the drops were asked for"
    assert _files(model) == _files(tmp_path / "out")


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=3000),
    order=st.lists(st.integers(min_value=0, max_value=7), min_size=1, max_size=10),
    streams=st.lists(
        st.lists(st.one_of(st.binary(max_size=20), st.integers(min_value=0, max_value=7)), max_size=8),
        min_size=1,
        max_size=3,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=6),
    copy_first=st.booleans(),
    window=st.integers(min_value=1, max_value=4000),
)
def test_pages_are_dropped_only_behind_every_reader(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    order: list[int],
    streams: list[list[bytes | int]],
    cuts: list[int],
    copy_first: bool,
    window: int,
) -> None:
    """Spans in any order, shared between the copy and the hash streams, read in windows of any
    size: the bytes stay right, no byte is read after its page was dropped nor dropped while
    mapped; once both are done, the rest of the file goes."""
    edges = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    spans = [lazy.Span(a, b - a) for a, b in itertools.pairwise(edges)]
    copy_pieces = [spans[i % len(spans)] for i in order]
    hash_streams = [[p if isinstance(p, bytes) else spans[p % len(spans)] for p in s] for s in streams]
    directory = tmp_path_factory.mktemp("r")
    holes = _holes_over(directory, data, spans)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(lazy, "_RELEASE_STEP", 1)
        monkeypatch.setattr(lazy, "_WINDOW", window)
        reads = _Reads(monkeypatch, holes.fd)
        release = holes.release = lazy.Release(holes.fd, ("copy", "hash"))

        def copy() -> None:
            fd = os.open(directory / "out", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            try:
                holes.write(storage_files.Writer(fd), copy_pieces, 100)
            finally:
                os.close(fd)

        try:
            if copy_first:  # the copy has let go of everything: the hash's marks decide
                copy()
            hashes = lazy.fingerprint64(hash_streams, holes)
            release.mark("hash", lazy.END)
            if not copy_first:
                copy()
        finally:
            release.close()
            holes.close()
    whole = [data[p.offset : p.offset + p.length] for p in copy_pieces]
    assert (directory / "out").read_bytes() == b"".join(whole)
    expected = [
        surgery.fingerprint.fingerprint64(
            b"".join(p if isinstance(p, bytes) else data[p.offset : p.offset + p.length] for p in s)
        )
        for s in hash_streams
    ]
    assert hashes == expected
    reads.assert_nothing_read_once_dropped()
    drops = reads.drops()
    assert drops and drops[-1][1] == 1 << 62
    assert [o for o, _ in drops] == [0, *(o + n for o, n in drops[:-1])]


# --- the oracle tier: megabytes of constants, read lazily with the real threshold ----------------------


@pytest.fixture(scope="module")
def big(oracle: Oracle, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Cases]:
    path = tmp_path_factory.mktemp("big") / "big_constants"
    cases: Cases = oracle.ok(op="build", kind="big_constants", model=str(path))["cases"]
    return path, cases


def test_big_constants_are_left_on_disk(big: tuple[Path, Cases]) -> None:
    path, _ = big
    model = surgery.load(path)
    assert model.holes is not None
    # The vocabulary's 20000 string_val records (tag, length, "word000123") as one run; the function
    # body's constant (8 x 30000 floats) and the captured table (8 x 40000), each a tensor_content
    # record with its 4-byte tag and length.
    spans = sorted(span.length for span in model.holes.spans)
    assert spans == [20000 * 12, 4 + 4 * 8 * 30000, 4 + 4 * 8 * 40000]
    assert len(model.source) < (path / "saved_model.pb").stat().st_size // 10


def test_big_constants_edited_lazily_serve(oracle: Oracle, big: tuple[Path, Cases], tmp_path: Path) -> None:
    """rename-input with a reorder, set-shape, set-dtype and rename-signature, from the command line."""
    path, cases = big
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "operations:\n"
        "  - {op: rename-input, signature: score, old: bias, new: a_bias}\n"
        "  - {op: rename-output, signature: score, old: y, new: a_y}\n"
        "  - {op: set-shape, signature: score, key: ids, shape: [2]}\n"
        "  - {op: set-dtype, signature: score, key: b, dtype: float64, output: true}\n"
        "  - {op: rename-signature, old: score, new: predict}\n"
    )
    out = tmp_path / "out"
    result = run_cli("apply", path, plan, "-o", out)
    assert result.returncode == 0, result.stderr
    expected = renamed(renamed(cases, "inputs", {"bias": "a_bias"}), "outputs", {"y": "a_y"})
    for case in expected:
        case["signature"] = "predict"
        case["outputs"]["b"]["dtype"] = "float64"
    assert_serves(oracle, out, expected)
    assert_tensorflow_fingerprint(oracle, out)
    in_place = tmp_path / "in_place"
    surgery.save(surgery.load(path), in_place)
    result = run_cli("apply", in_place, plan, "--in-place")
    assert result.returncode == 0, result.stderr
    assert _files(in_place) == _files(out)


def test_a_source_file_cut_short_fails_the_read_not_the_process(tmp_path: Path) -> None:
    """Spans are read through mappings, where a page past the end of the file would kill the
    process: a file truncated under a lazily read model fails with an error instead."""
    data = bytes(range(256)) * 64
    span = lazy.Span(100, len(data) - 200)
    holes = _holes_over(tmp_path, data, [span])
    try:
        os.truncate(tmp_path / "source", 5000)
        with pytest.raises(OSError, match=r"^the model file shrank while it was read \(at byte 100\)$"):
            lazy.fingerprint64([[b"head", span]], holes)
        with pytest.raises(OSError, match="shrank"):
            list(holes.chunks([span]))
    finally:
        holes.close()


def test_a_source_file_cut_short_after_its_size_was_checked_fails_the_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mapping itself refuses a file shorter than asked (the size checked a moment before)."""
    data = bytes(range(256)) * 64
    span = lazy.Span(100, len(data) - 200)
    holes = _holes_over(tmp_path, data, [span])
    real_fstat = os.fstat

    def stale(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        return os.stat_result((*info[:6], len(data), *info[7:10]))

    try:
        os.truncate(tmp_path / "source", 5000)
        monkeypatch.setattr(os, "fstat", stale)
        with pytest.raises(OSError, match=r"^the model file shrank while it was read \(at byte 100\)$"):
            list(holes.chunks([span]))
    finally:
        monkeypatch.undo()
        holes.close()


def test_saving_a_model_whose_file_was_cut_short_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    model = copy_fixture("module_multi", tmp_path / "in")
    loaded = surgery.load(model)
    assert loaded.holes is not None
    assert _edited(loaded, _SET_METHOD) is None
    os.truncate(model / "saved_model.pb", 100)
    shrank = r"the model file shrank while it was (copied|read) \(at byte \d+\); nothing was written$"
    with pytest.raises(SavedModelIOError, match=shrank):
        surgery.save(loaded, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
