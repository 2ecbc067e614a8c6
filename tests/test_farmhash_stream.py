"""surgery._farmhash: the streaming Fingerprint64 gives pyfarmhash's value for every input and split."""

from __future__ import annotations

import itertools
import mmap
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import farmhash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surgery._farmhash import Fingerprint64, fingerprint64

# Lengths where Hash64 changes path (0-16, 17-32, 33-64, the loop) or the last-64 window moves.
EDGES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 192, 193]


def reference(data: bytes) -> int:
    return int(farmhash.fingerprint64(data))  # type: ignore[arg-type]


def chunks(data: Any, cuts: list[int]) -> Iterator[Any]:
    """data[a:b] for consecutive cut points; repeated cuts give empty chunks."""
    points = [0, *sorted(cuts), len(data)]
    for a, b in itertools.pairwise(points):
        yield data[a:b]


def streamed(data: Any, cuts: list[int]) -> int:
    h = Fingerprint64(len(data))
    for chunk in chunks(data, cuts):
        h.update(chunk)
    return h.digest()


@st.composite
def data_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    size = draw(st.one_of(st.sampled_from(EDGES), st.integers(0, 3000)))
    data = draw(st.binary(min_size=size, max_size=size))
    cuts = draw(st.lists(st.integers(0, size), max_size=12))
    return data, cuts


def unaligned_view(data: bytes) -> memoryview:
    """A memoryview whose first byte sits at an odd address offset in its buffer."""
    return memoryview(b"\x00" + data)[1:]


def anonymous_mmap(data: bytes) -> mmap.mmap:
    m = mmap.mmap(-1, max(len(data), 1))
    m[: len(data)] = data
    return m


@given(data_and_cuts())
@settings(max_examples=400)
def test_stream_matches_pyfarmhash(case: tuple[bytes, list[int]]) -> None:
    data, cuts = case
    want = reference(data)
    assert streamed(data, cuts) == want
    assert fingerprint64(data) == want


@pytest.mark.parametrize("size", [*EDGES, 255, 256, 257, 1000, 4095, 4096, 4097])
def test_every_single_split_point(size: int) -> None:
    data = random.Random(size).randbytes(size)
    want = reference(data)
    for cut in range(size + 1):
        assert streamed(data, [cut]) == want, cut
    assert streamed(data, list(range(size + 1))) == want  # one byte at a time


BUFFER_KINDS: dict[str, Callable[[bytes], Any]] = {
    "bytearray": bytearray,
    "memoryview": memoryview,
    "unaligned_memoryview": unaligned_view,
}


@pytest.mark.parametrize("kind", sorted(BUFFER_KINDS))
@given(case=data_and_cuts())
@settings(max_examples=100)
def test_buffer_kinds(kind: str, case: tuple[bytes, list[int]]) -> None:
    data, cuts = case
    buf = BUFFER_KINDS[kind](data)
    assert streamed(buf, cuts) == reference(data)
    assert fingerprint64(buf) == reference(data)


@given(case=data_and_cuts())
@settings(max_examples=100)
def test_mmap_chunks(case: tuple[bytes, list[int]]) -> None:
    data, cuts = case
    with anonymous_mmap(data) as m:
        view = memoryview(m)[: len(data)]
        try:
            assert streamed(view, cuts) == reference(data)
            assert fingerprint64(view) == reference(data)
        finally:
            view.release()


def test_file_mmap_whole_and_chunked(tmp_path: Path) -> None:
    data = random.Random(7).randbytes(300_001)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert fingerprint64(m) == reference(data)
        h = Fingerprint64(len(m))
        h.update(m)
        assert h.digest() == reference(data)
        view = memoryview(m)
        try:
            assert streamed(view, [1, 64, 65, 70_000, 200_000]) == reference(data)
        finally:
            view.release()


def test_large_input_odd_chunks() -> None:
    """50 MB in odd chunk sizes, some above the size that releases the GIL."""
    data = random.Random(50).randbytes(50 * 1024 * 1024 + 17)
    want = reference(data)
    view = memoryview(data)
    h = Fingerprint64(len(data))
    pos = 0
    for size in itertools.cycle([1, 63, 65, 4095, 65_537, (1 << 20) + 3, 3 * (1 << 20) - 1, 7]):
        h.update(view[pos : pos + size])
        pos += size
        if pos >= len(data):
            break
    assert h.digest() == want
    assert fingerprint64(data) == want


def test_known_values() -> None:
    assert fingerprint64(b"") == Fingerprint64(0).digest() == 0x9AE16A3B2F90404F
    for data in (b"a", b"Hello", b"The quick brown fox jumps over the lazy dog" * 3):
        assert fingerprint64(data) == reference(data)


def test_digest_twice_and_empty_updates() -> None:
    data = bytes(range(200))
    h = Fingerprint64(len(data))
    h.update(b"")
    h.update(data[:100])
    h.update(memoryview(b""))
    h.update(data[100:])
    first = h.digest()
    h.update(b"")
    assert h.digest() == first == reference(data)


def test_overfeed_is_refused_and_leaves_the_state() -> None:
    data = bytes(range(256)) * 2
    h = Fingerprint64(len(data))
    h.update(data[:500])
    with pytest.raises(ValueError, match=r"13 more bytes would make 513 in all, more than the length 512"):
        h.update(data[500:] + b"!")
    h.update(data[500:])
    with pytest.raises(ValueError, match=r"more than the length 512"):
        h.update(b"x")
    assert h.digest() == reference(data)

    short = Fingerprint64(3)
    with pytest.raises(ValueError, match=r"4 more bytes would make 4 in all, more than the length 3"):
        short.update(b"abcd")
    short.update(b"abc")
    assert short.digest() == reference(b"abc")


@pytest.mark.parametrize("length", [0, 5, 64, 65, 1000])
def test_underfeed_digest(length: int) -> None:
    h = Fingerprint64(length)
    if length:
        h.update(b"\x01" * (length - 1))
        with pytest.raises(ValueError, match=rf"only {length - 1} of the {length} bytes .* were fed"):
            h.digest()
        h.update(b"\x01")
    assert h.digest() == reference(b"\x01" * length)


@pytest.mark.parametrize("bad", ["text", 12, None, [1, 2], 3.5])
def test_non_buffer_is_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="bytes-like object is required"):
        Fingerprint64(4).update(bad)
    with pytest.raises(TypeError, match="bytes-like object is required"):
        fingerprint64(bad)


def test_non_contiguous_buffer_is_refused() -> None:
    view = memoryview(bytes(range(10)))[::2]
    with pytest.raises(BufferError, match="contiguous"):
        Fingerprint64(5).update(view)


def test_bad_lengths() -> None:
    with pytest.raises(ValueError, match="length must be >= 0, got -1"):
        Fingerprint64(-1)
    with pytest.raises(ValueError, match="length must be >= 0"):
        Fingerprint64(-(1 << 70))
    with pytest.raises(OverflowError, match="length is too large"):
        Fingerprint64(1 << 64)
    with pytest.raises(TypeError):
        Fingerprint64("12")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Fingerprint64(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Fingerprint64()  # type: ignore[call-arg]
    assert Fingerprint64(length=0).digest() == reference(b"")


def test_reinit_starts_over() -> None:
    h = Fingerprint64(100)
    h.update(b"x" * 70)
    h.__init__(3)  # type: ignore[misc]
    h.update(b"abc")
    assert h.digest() == reference(b"abc")


def test_two_threads_two_hashers() -> None:
    blobs = [random.Random(i).randbytes(8 * 1024 * 1024 + i) for i in (1, 2)]
    results: dict[int, int] = {}

    def work(i: int) -> None:
        h = Fingerprint64(len(blobs[i]))
        view = memoryview(blobs[i])
        for pos in range(0, len(blobs[i]), 1 << 20):
            h.update(view[pos : pos + (1 << 20)])
        results[i] = h.digest()

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: reference(blobs[i]) for i in (0, 1)}


def test_same_hasher_from_two_threads_is_refused_not_corrupted() -> None:
    """While one thread feeds a large chunk (GIL released), the other is refused, never interleaved."""
    data = random.Random(3).randbytes(64 * 1024 * 1024)
    h = Fingerprint64(len(data))
    errors: list[BaseException] = []
    done = threading.Event()

    def feed() -> None:
        try:
            h.update(data)
        finally:
            done.set()

    thread = threading.Thread(target=feed)
    thread.start()
    while not done.is_set():
        try:
            h.update(b"")
            h.digest()
        except (RuntimeError, ValueError) as exc:
            errors.append(exc)
    thread.join()
    for exc in errors:
        if isinstance(exc, RuntimeError):
            assert "another thread is feeding this hasher" in str(exc)
        else:
            assert "bytes given to Fingerprint64() were fed" in str(exc)
    assert h.digest() == reference(data)
