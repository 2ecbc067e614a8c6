"""Large `saved_model.pbtxt` files, and text rendered from a lazily read model, in bounded memory.

Reading: the text is scanned in windows (`surgery._textformat.scan`, which knows only comments
and string literals) for the bytes literals of a constant (`tensor_content:` or `string_val:`) of
at least `HOLE_MIN` bytes, written as protobuf's printer writes them. Each is set aside as a hole,
a short token literal in its place, exactly as `surgery.lazy` sets big fields of a binary file
aside; protobuf's own text format parses the rest. The hole is a `Coded` span of the file that
decodes to the literal's bytes, so the model is written back to binary (`Holes.expand`) and
fingerprinted window by window. A literal written any other way (another escaping, split in two,
in a list) is left to protobuf's parser: exact either way, bounded only for what TensorFlow and
protobuf write.

Writing: protobuf's printer renders the model with its tokens (a small text), and each token is
replaced by the bytes it stands for: a text source's literal as it is in the file, a binary
source's field records escaped window by window, one line each as the printer writes them. The
result is byte for byte `text_format.MessageToString` of the whole model.
"""

from __future__ import annotations

import mmap
import os
import re

from surgery import _textformat, lazy
from surgery.lazy import (
    Coded,
    Hole,
    Holes,
    Piece,
    Span,
    coalesce,
    mapped,
    new_prefix,
    token,
    token_index,
)
from surgery.schema import SavedModel, to_text
from surgery.wire import iter_fields

_WINDOW = 16 << 20  # the text is scanned through mapped windows of this size
# The line of a literal that is set aside, up to its opening quote, as protobuf prints it.
_BULK_LINE = re.compile(rb"\n[ \t]*(?:tensor_content|string_val)[ \t]*:[ \t]*\Z")
_LOOK_BACK = 512
_SPACE = b" \t\r\n\f\v"


def shrink_text(fd: int, size: int, minimum: int | None = None) -> tuple[bytes, Holes] | None:
    """The text of the file `fd` with its big bulk literals set aside, and the holes; None if it
    has none."""
    minimum = lazy.HOLE_MIN if minimum is None else minimum
    if size < minimum:
        return None
    literals: list[tuple[int, int, int]] = []
    state = _textformat.START_STATE
    for offset in range(0, size, _WINDOW):
        with mapped(fd, offset, min(_WINDOW, size - offset)) as view:
            found, state = _textformat.scan(view, offset, minimum, state)
        literals.extend(found)
    if not literals:
        return None
    prefix = new_prefix()
    spans: list[Hole] = []
    out: list[bytes] = []
    plain = 0
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as buf:
        for start, end, decoded in literals:
            if not _stands_alone(buf, start, end):
                continue
            out.append(buf[plain:start])
            out.append(token(prefix, len(spans)))
            spans.append(Coded(start, end - start, decoded, "unescape"))
            plain = end
        out.append(buf[plain:size])
    if not spans:
        return None
    data = b"".join(out)
    if data.count(prefix) != len(spans):
        return None  # the text holds a token's bytes (astronomically unlikely): read it whole
    return data, Holes(fd=os.dup(fd), size=size, prefix=prefix, spans=spans)


_POSITION = re.compile(r"^(\d+):(\d+) : ")


def in_file(message: str, text: bytes, holes: Holes) -> str:
    """Protobuf's parse error `message` about `text` (a file with literals set aside), with the
    column it names in the file itself: lines are the same, but on the error's line each literal
    set aside before the column took a token's width."""
    found = _POSITION.match(message)
    if found is None:
        return message
    line, column = int(found[1]), int(found[2])
    start = 0
    for _ in range(line - 1):
        start = text.find(b"\n", start) + 1
        if start == 0:
            return message
    width = len(token(holes.prefix, 0))
    position, shift = start + column - 1, 0
    hole = text.find(holes.prefix, start, position)
    while hole >= 0:
        literal = holes.spans[token_index(text[hole : hole + width])]
        shift += literal.length - width
        hole = text.find(holes.prefix, hole + width, position)
    return f"{line}:{column + shift} : {message[found.end() :]}"


def _stands_alone(buf: mmap.mmap, start: int, end: int) -> bool:
    """Whether the literal with content [start, end) is the whole value of a bulk field: alone on
    its line with the field's name, and no literal after it (adjacent literals are concatenated)."""
    before = (b"\n" if start - 1 <= _LOOK_BACK else b"") + buf[max(0, start - 1 - _LOOK_BACK) : start - 1]
    if _BULK_LINE.search(before) is None:
        return False
    position = end + 1
    while position < len(buf):
        byte = buf[position : position + 1]
        if byte in (b'"', b"'"):
            return False
        if byte == b"#":
            newline = buf.find(b"\n", position)
            if newline < 0:
                return True
            position = newline + 1
        elif byte and byte in _SPACE:
            position += 1
        else:
            return True
    return True


def render_text(proto: SavedModel, holes: Holes | None) -> list[Piece]:
    """The text format of `proto`, a model read lazily with `holes`, as pieces of its source."""
    text = to_text(proto).encode()
    if holes is None or holes.prefix not in text:
        return [text]
    pieces: list[Piece] = []
    plain = 0
    width = len(token(holes.prefix, 0))
    position = text.find(holes.prefix)
    while position >= 0:
        end = position + width
        hole = holes.spans[token_index(text[position:end])]
        if isinstance(hole, Coded):  # a literal of a text source, as protobuf writes it
            pieces += [text[plain:position], Span(hole.offset, hole.length)]
            plain = end
        else:  # field records of a binary source: a line each
            line = text.rfind(b"\n", 0, position) + 1
            line_end = text.index(b"\n", end) + 1
            head, tail = text[line:position], text[end:line_end]
            pieces.append(text[plain:line])
            for offset, length in _values(holes, hole):
                pieces += [head, Coded(offset, length, -1, "escape"), tail]
            plain = line_end
        position = text.find(holes.prefix, plain)
    pieces.append(text[plain:])
    return coalesce(pieces)


def _values(holes: Holes, span: Span) -> list[tuple[int, int]]:
    """Where the values of the field records in `span` are in the source file."""
    with mapped(holes.fd, span.offset, span.length) as view:
        return [
            (span.offset + start, end - start) for _, _, _, start, end in iter_fields(view, 0, span.length)
        ]
