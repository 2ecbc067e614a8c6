"""Large `saved_model.pb` files: their big byte fields stay on disk.

A model that captures large constants keeps almost all of its bytes in a few fields: a
constant's `tensor_content` (or a `string_val`). No edit or check reads them, so reading does
not parse them: `shrink` walks the file at the wire level and replaces each of those fields
(and each unknown field) of at least `HOLE_MIN` bytes by a short token, a "hole", recomputing
the length prefixes of the messages around it. What is left is a small valid SavedModel that
protobuf parses and the edits change as usual. Writing serializes that small model and `Holes.expand` puts the
original field records back where the tokens are, as `Span`s of the source file that are
copied (`copy_file_range`) and hashed through mapped windows: memory stays bounded by the small
part.

The result is byte for byte what a full parse would write: a hole is the field record exactly
as a canonical serializer writes it (its tag and length prefix are checked to be minimal, and
a bytes field is never checked for UTF-8), and expansion re-encodes every prefix on the path to it.
`SURGERY_FULL_PARSE=1` in the environment turns the whole mechanism off (for benchmarks).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import mmap
import os
import queue
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from surgery import _farmhash, _textformat
from surgery.wire import LENGTH, WireError, iter_fields
from surgery_proto import RENAME_PREFIX

HOLE_MIN = 1 << 16
"""A bytes field at least this long is left on disk."""

_TOKEN_HEAD = b"<<surgery-hole:"
_INDEX_DIGITS = 8
_TOKEN_LEN = len(_TOKEN_HEAD) + 16 + 1 + _INDEX_DIGITS + 2
_CODED_WINDOW = 4 << 20  # a coded span is read in windows of this size (escaped, it grows up to 4x)
# Spans are read through windows of this size mapped from the source file: reading 1 GB from the
# page cache into a buffer took 0.65-0.77 s on the benchmark VM, mapping and hashing it 0.22-0.30 s.
_WINDOW = 16 << 20
_RELEASE_STEP = 8 << 20  # pages are dropped in runs of at least this many bytes
END = 1 << 63  # a reader's mark once it will read nothing more
# copy_file_range cannot work here (old kernel, another file system, a special file): copy by hand.
_NO_COPY_RANGE = frozenset(
    {errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF}
)
# The fields that hold bulk data and that no edit or check reads: a constant's contents.
BULK_FIELDS = frozenset(
    RENAME_PREFIX + name
    for name in ("tensorflow.TensorProto.tensor_content", "tensorflow.TensorProto.string_val")
)


@contextlib.contextmanager
def mapped(fd: int, offset: int, length: int) -> Iterator[memoryview]:
    """`length` bytes of the file `fd` from `offset`, mapped read-only (no copy out of the cache).

    The size is checked first: a mapped page past the end of the file would kill the process
    (SIGBUS) where a read fails. The file is locked against this tool's writers and TensorFlow
    replaces files rather than truncating them, so only a foreign truncation in between is left.
    """
    shrank = OSError(f"the model file shrank while it was read (at byte {offset})")
    if os.fstat(fd).st_size < offset + length:
        raise shrank
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    try:
        window = mmap.mmap(fd, offset + length - start, access=mmap.ACCESS_READ, offset=start)
    except ValueError:  # cut short between the fstat and the mapping
        raise shrank from None
    with window:
        view = memoryview(window)
        try:
            with view[offset - start :] as part:
                yield part
        finally:
            view.release()


class Span(NamedTuple):
    """`length` bytes of the source file from `offset`."""

    offset: int
    length: int


class Coded(NamedTuple):
    """`length` bytes of the source file from `offset`, written through `codec`: `"unescape"`, the
    content of a text-format bytes literal decoded (`size` bytes), or `"escape"`, bytes written
    as such a literal's content (`size` -1: known once written). See `surgery.text_holes`."""

    offset: int
    length: int
    size: int
    codec: str


Piece = bytes | Span | Coded
Hole = Span | Coded
"""What a hole stands for: field records of a binary source (`Span`), or a bytes literal of a
text source (`Coded`, unescaped)."""


class Sink(Protocol):
    """A file being written: `write` appends bytes; `wrote` counts bytes appended to `fd` directly."""

    fd: int

    def write(self, data: bytes | memoryview) -> None: ...

    def wrote(self, count: int) -> None: ...


def enabled() -> bool:
    """Whether reading leaves big fields on disk (not with SURGERY_FULL_PARSE=1)."""
    return os.environ.get("SURGERY_FULL_PARSE", "") in ("", "0")


def is_hole(value: bytes) -> bool:
    """Whether `value`, a bytes field of a lazily read model, stands for bytes left on disk."""
    return len(value) == _TOKEN_LEN and value.startswith(_TOKEN_HEAD)


def new_prefix() -> bytes:
    """The start of every token of one load: random, so that two loads never share a token."""
    return _TOKEN_HEAD + os.urandom(8).hex().encode() + b":"


def token(prefix: bytes, index: int) -> bytes:
    """The token that stands for hole number `index`."""
    return prefix + f"{index:0{_INDEX_DIGITS}x}".encode() + b">>"


def token_index(value: bytes) -> int:
    """The number of the hole a token (as `token` made it) stands for."""
    return int(value[-2 - _INDEX_DIGITS : -2], 16)


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _header(number: int, length: int) -> bytes:
    return encode_varint(number << 3 | LENGTH) + encode_varint(length)


class Release:
    """Drops the source file's cached pages once every reader has gone past them.

    For an in-place edit only, whose source file is replaced: its pages would be freed when the
    old file goes, all at once and after the copy. Dropped as the copy and the hash move on,
    they are freed while the copy runs and the kernel reuses them for the new file's pages at
    once (a 1 GB model in a VM: copying, syncing and renaming took 0.50-0.73 s this way, 0.6-3.5 s
    without). Each reader marks the offset below which it will read nothing more; the pages
    below the lowest mark go, on a thread of this object's own: dropping 1 GB costs 0.1 s of
    system time, which the copy paid in its own thread before (a 1 GB copy: 0.54-0.58 s, and
    0.46-0.50 s with the drops beside it). Readers on other threads mark concurrently; `close`
    waits for the drops asked for, and must come before the file is closed.
    """

    def __init__(self, fd: int, readers: Sequence[str]) -> None:
        self._fd = fd
        self._marks = dict.fromkeys(readers, 0)
        self._released = 0
        self._lock = threading.Lock()
        drops: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._drops: queue.SimpleQueue[tuple[int, int] | None] | None = drops
        self._dropper = threading.Thread(target=self._drop, args=(drops,), name="surgery-release")
        self._dropper.daemon = True
        self._dropper.start()

    def mark(self, reader: str, low: int) -> None:
        """`reader` reads nothing below `low` from now on (`END`: nothing more at all)."""
        with self._lock:
            if reader not in self._marks or self._drops is None:
                return
            self._marks[reader] = low
            upto = min(self._marks.values())
            start = self._released
            if upto <= start or (upto - start < _RELEASE_STEP and upto != END):
                return
            self._released = upto
            self._ask(start, 0 if upto == END else upto - start)

    def _ask(self, start: int, length: int) -> None:
        """Have the pages of [start, start + length) dropped (length 0: to the end of the file)."""
        assert self._drops is not None
        self._drops.put((start, length))

    def _drop(self, drops: queue.SimpleQueue[tuple[int, int] | None]) -> None:
        while (item := drops.get()) is not None:
            # Advisory: clean pages go, dirty ones are written back first and stay. A refusal
            # costs speed only, never the edit.
            with contextlib.suppress(OSError):
                os.posix_fadvise(self._fd, *item, os.POSIX_FADV_DONTNEED)

    def close(self) -> None:
        """Wait for the drops asked for so far; later marks drop nothing."""
        with self._lock:
            drops, self._drops = self._drops, None
        if drops is not None:
            drops.put(None)
            self._dropper.join()


def _suffix_low(pieces: Sequence[Piece]) -> list[int]:
    """For each index, the lowest source offset any span from there on reads (`END`: none)."""
    low = [END] * (len(pieces) + 1)
    for index in range(len(pieces) - 1, -1, -1):
        piece = pieces[index]
        low[index] = low[index + 1] if isinstance(piece, bytes) else min(low[index + 1], piece.offset)
    return low


@dataclass(eq=False)
class Holes:
    """The byte ranges of a source file that a lazily read model left on disk.

    `release`, set by an in-place save, drops the source's pages behind the copy and the hash.
    """

    fd: int
    size: int
    prefix: bytes
    spans: list[Hole]
    release: Release | None = None

    def __post_init__(self) -> None:
        self._closer = weakref.finalize(self, os.close, self.fd)

    def close(self) -> None:
        self._closer()
        self.fd = -1  # reads fail from now on, never from a file that reused the number

    def detach(self) -> int | None:
        """The open source file, now the caller's to close (None if closed already); this object
        reads nothing more."""
        fd, self.fd = self.fd, -1
        return fd if self._closer.detach() is not None else None

    def expand(self, data: bytes, descriptor: Descriptor) -> list[Piece]:
        """The full serialization of `data` (a message of type `descriptor`), holes filled."""
        if self.prefix not in data:
            return [data]
        pieces: list[Piece] = []
        self._expand(data, 0, len(data), descriptor, pieces)
        return coalesce(pieces)

    def _expand(self, data: bytes, start: int, end: int, descriptor: Descriptor, out: list[Piece]) -> int:
        size = 0
        plain = start
        for number, wire_type, field_start, value_start, value_end in iter_fields(data, start, end):
            if wire_type != LENGTH or data.find(self.prefix, value_start, value_end) < 0:
                continue
            out.append(data[plain:field_start])
            size += field_start - plain
            plain = value_end
            if value_end - value_start == _TOKEN_LEN and data.startswith(self.prefix, value_start):
                hole = self.spans[token_index(data[value_start:value_end])]
                if isinstance(hole, Coded):  # a literal's bytes: the record is made around them
                    header = _header(number, hole.size)
                    out.append(header)
                    size += len(header)
                out.append(hole)
                size += hole.length if isinstance(hole, Span) else hole.size
                continue
            field = descriptor.fields_by_number.get(number)
            if field is None or field.message_type is None:
                raise WireError(f"a hole token inside field {number} of {descriptor.full_name}")
            inner: list[Piece] = []
            length = self._expand(data, value_start, value_end, field.message_type, inner)
            header = _header(number, length)
            out.append(header)
            out.extend(inner)
            size += len(header) + length
        out.append(data[plain:end])
        return size + end - plain

    def chunks(self, pieces: Sequence[Piece]) -> Iterator[bytes | memoryview]:
        """The bytes of `pieces` in order, spans in windows mapped from the source.

        A window's view is valid until the next one is asked for: use it, do not keep it.
        """
        for piece in pieces:
            if isinstance(piece, Coded):
                yield from self._coded(piece)
                continue
            if not isinstance(piece, Span):
                yield piece
                continue
            offset, left = piece
            while left:
                length = min(left, _WINDOW)
                with mapped(self.fd, offset, length) as view:
                    yield view
                offset += length
                left -= length

    def _coded(self, piece: Coded) -> Iterator[bytes]:
        """The bytes of a coded span, window by window (an escape cut by a window's end goes to
        the next one)."""
        offset, left = piece.offset, piece.length
        while left:
            length = min(left, _CODED_WINDOW)
            with mapped(self.fd, offset, length) as view:
                if piece.codec == "escape":
                    out, used = _textformat.escape(view), length
                else:
                    out, used = _textformat.unescape(view, length == left)
            yield out
            offset += used
            left -= used

    def write(self, sink: Sink, pieces: Sequence[Piece], chunk: int) -> None:
        """Write `pieces` to `sink`: bytes through its `write`, spans copied by the kernel.

        At most `chunk` bytes a system call, so that a kill or a full disk lands between two.
        """
        release = self.release
        low = _suffix_low(pieces) if release is not None else []
        for index, piece in enumerate(pieces):
            if isinstance(piece, Coded):
                for coded in self._coded(piece):
                    sink.write(coded)
                continue
            if not isinstance(piece, Span):
                sink.write(piece)
                continue
            offset, left = piece
            while left:
                try:
                    done = os.copy_file_range(self.fd, sink.fd, min(left, chunk), offset)
                except OSError as err:
                    if err.errno not in _NO_COPY_RANGE:
                        raise
                    for part in self.chunks([Span(offset, left)]):  # through user space
                        sink.write(part)
                    break
                if done <= 0:
                    raise OSError(f"the model file shrank while it was copied (at byte {offset})")
                sink.wrote(done)
                offset += done
                left -= done
                if release is not None:
                    release.mark("copy", min(offset, low[index + 1]))
        if release is not None:
            release.mark("copy", END)


def size_of(pieces: Sequence[Piece]) -> int:
    """The number of bytes `pieces` stand for (not for escaped pieces, whose size is not known)."""
    total = 0
    for piece in pieces:
        if isinstance(piece, Coded):
            assert piece.size >= 0, "the size of an escaped piece is known once it is written"
            total += piece.size
        else:
            total += piece.length if isinstance(piece, Span) else len(piece)
    return total


def coalesce(pieces: list[Piece]) -> list[Piece]:
    """`pieces` with adjacent bytes joined and empty ones left out."""
    out: list[Piece] = []
    run: list[bytes] = []
    for piece in pieces:
        if not isinstance(piece, bytes):
            if run:
                out.append(b"".join(run))
                run = []
            out.append(piece)
        elif piece:
            run.append(piece)
    if run:
        out.append(b"".join(run))
    return out


class _Shrinker:
    def __init__(self, buf: mmap.mmap, minimum: int) -> None:
        self.buf = buf
        self.minimum = minimum
        self.prefix = new_prefix()
        self.spans: list[Hole] = []

    def token(self, span: Span) -> bytes:
        self.spans.append(span)
        return token(self.prefix, len(self.spans) - 1)

    def hole_fits(self, number: int, field_start: int, value_start: int, value_end: int) -> bool:
        """A record a canonical serializer would write exactly so: minimal tag and length."""
        return self.buf[field_start:value_start] == _header(number, value_end - value_start)

    def message(self, start: int, end: int, descriptor: Descriptor | None, out: list[bytes]) -> int:
        """Append the shrunken payload of the message in [start, end) to `out`; its length.

        A run of consecutive records of a repeated bulk field (a vocabulary's `string_val`)
        becomes one hole, as a single big record does.
        """
        edits: list[tuple[int, int, list[bytes]]] = []  # (start, end, replacement) in order
        repeated = _repeated_bulk(descriptor)
        run = [0, 0, 0, True]  # field number (0: none), first start, last end, all canonical
        for number, wire_type, field_start, value_start, value_end in iter_fields(self.buf, start, end):
            if wire_type == LENGTH and number in repeated:
                fits = self.hole_fits(number, field_start, value_start, value_end)
                if number == run[0] and field_start == run[2]:
                    run[2] = value_end
                    run[3] = run[3] and fits
                else:
                    self._close(run, edits)
                    run = [number, field_start, value_end, fits]
                continue
            self._close(run, edits)
            if wire_type != LENGTH or value_end - value_start < self.minimum:
                continue
            field = None if descriptor is None else descriptor.fields_by_number.get(number)
            if field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
                inner: list[bytes] = []
                before = len(self.spans)
                length = self.message(value_start, value_end, field.message_type, inner)
                if len(self.spans) > before:
                    edits.append((field_start, value_end, [_header(number, length), *inner]))
            elif (
                (field is None or field.full_name in BULK_FIELDS)
                and value_end - value_start > _TOKEN_LEN
                and self.hole_fits(number, field_start, value_start, value_end)
            ):
                edits.append((field_start, value_end, self.hole(number, field_start, value_end)))
            # else: a field the edits read, or packed numbers: kept as it is
        self._close(run, edits)
        size = 0
        plain = start
        for edit_start, edit_end, replacement in edits:
            out.append(self.buf[plain:edit_start])
            out.extend(replacement)
            size += edit_start - plain + sum(len(r) for r in replacement)
            plain = edit_end
        out.append(self.buf[plain:end])
        return size + end - plain

    def hole(self, number: int, start: int, end: int) -> list[bytes]:
        """The record that stands for the records in [start, end): field `number`, a token."""
        token = self.token(Span(start, end - start))
        return [_header(number, len(token)), token]

    def _close(self, run: list[Any], edits: list[tuple[int, int, list[bytes]]]) -> None:
        number, run_start, run_end, canonical = run
        if number and canonical and run_end - run_start >= max(self.minimum, 2 * _TOKEN_LEN):
            edits.append((run_start, run_end, self.hole(number, run_start, run_end)))
        run[0] = 0


@functools.cache
def _repeated_bulk(descriptor: Descriptor | None) -> frozenset[int]:
    """The numbers of the repeated bulk fields of messages of this type."""
    if descriptor is None:
        return frozenset()
    return frozenset(f.number for f in descriptor.fields if f.full_name in BULK_FIELDS and f.is_repeated)


def shrink(
    fd: int, size: int, descriptor: Descriptor, minimum: int | None = None
) -> tuple[bytes, Holes] | None:
    """The file's message with its big fields left on disk, and the holes; None if it has none.

    None too when the file is not well-formed at the wire level: the caller parses it whole,
    which reports the problem as protobuf sees it.
    """
    minimum = HOLE_MIN if minimum is None else minimum
    if size < minimum:
        return None
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as buf:
        shrinker = _Shrinker(buf, minimum)
        out: list[bytes] = []
        try:
            shrinker.message(0, size, descriptor, out)
        except (WireError, RecursionError):
            return None
        data = b"".join(out)
        out.clear()
    if not shrinker.spans or data.count(shrinker.prefix) != len(shrinker.spans):
        return None  # no holes, or (astronomically unlikely) the model holds a token's bytes
    return data, Holes(fd=os.dup(fd), size=size, prefix=shrinker.prefix, spans=shrinker.spans)


def fingerprint64(streams: Sequence[Sequence[Piece]], holes: Holes | None) -> list[int]:
    """FarmHash Fingerprint64 of each stream of pieces, reading each span from disk once.

    The streams hash side by side: whatever span the streams wait for first (in file order) is
    read once, in chunks, and fed to every stream waiting for it. A SavedModel's checksum and
    its graph hash both run over a constant captured in the graph: one read serves both.
    """
    if holes is None or all(isinstance(p, bytes) for stream in streams for p in stream):
        return [
            _farmhash.fingerprint64(b"".join(p for p in stream if isinstance(p, bytes))) for stream in streams
        ]
    states = [_farmhash.Fingerprint64(size_of(stream)) for stream in streams]
    positions = [0] * len(streams)
    waiting: dict[Hole, list[int]] = {}

    def advance(index: int) -> None:
        """Feed stream `index` its bytes up to its next span, and wait there."""
        stream = streams[index]
        while positions[index] < len(stream):
            piece = stream[positions[index]]
            if not isinstance(piece, bytes):
                waiting.setdefault(piece, []).append(index)
                return
            states[index].update(piece)
            positions[index] += 1

    release = holes.release
    lows = [_suffix_low(stream) for stream in streams] if release is not None else []
    for index in range(len(streams)):
        advance(index)
    while waiting:
        span = min(waiting)
        readers = waiting.pop(span)
        # What the streams read after this span (or, waiting elsewhere, from their next span on).
        beyond = (
            min((lows[i][positions[i] + (i in readers)] for i in range(len(streams))), default=END)
            if release is not None
            else END
        )
        read = span.offset
        for chunk in holes.chunks([span]):
            # The windows read before this one are unmapped by now: their pages can go.
            if release is not None:
                release.mark("hash", min(read, beyond))
            for index in readers:
                states[index].update(chunk)
            read += len(chunk)
        if release is not None:
            release.mark("hash", min(read, beyond))
        for index in readers:
            positions[index] += 1
            advance(index)
    return [int(state.digest()) for state in states]
