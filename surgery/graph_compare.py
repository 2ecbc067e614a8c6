"""How `graph_diff` compares two models' messages and describes what differs in them.

`Equal` says whether a message of one model equals one of the other by the bytes they would
serialize to. A lazily read model has tokens where its large constants are (`surgery.lazy`): they
are compared by the bytes they stand for, by size first and then by FarmHash streamed from the
file, and never read into memory; two copies of one lazily read model (a --dry-run) share their
tokens, so an untouched constant is equal to itself without any read. The short texts (an attr's
value, a tensor by its dtype, shape and size) and the field-by-field differences of messages are
what every kind of change `surgery.graph_changes` reports is written with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from surgery.lazy import Hole, Holes, Piece, Span, encode_varint, fingerprint64, is_hole, size_of, token_index
from surgery.model import Model
from surgery.schema import AttrValue, TensorShapeProto
from surgery.tensors import dtype_name, shape_from_proto

if TYPE_CHECKING:
    from surgery_proto.tensorflow.core.framework.tensor_pb2 import TensorProto

Hasher = Callable[[Sequence[Sequence[Piece]], Holes | None], list[int]]
"""FarmHash Fingerprint64 of streams of pieces, as `surgery.lazy.fingerprint64` computes it."""

# --- comparing messages whose large byte fields may be left on disk ------------------------------


class _Side:
    """One model's holes (None for a model read whole): sizes and hashes of the bytes they stand for."""

    def __init__(self, model: Model, hasher: Hasher) -> None:
        self.holes = model.holes
        self.hasher = hasher
        self._hashes: dict[Hole, int] = {}

    def has_token(self, data: bytes) -> bool:
        return self.holes is not None and self.holes.prefix in data

    def pieces(self, data: bytes, message: Message) -> list[Piece]:
        """The serialization `data` of `message` as in the file: spans where the tokens are."""
        return [data] if self.holes is None else self.holes.expand(data, cast(Descriptor, message.DESCRIPTOR))

    def span(self, value: bytes) -> Hole | None:
        """What a token stands for (None if `value` is not one of this model's tokens)."""
        if self.holes is None or not is_hole(value) or not value.startswith(self.holes.prefix):
            return None
        return self.holes.spans[token_index(value)]

    def span_hash(self, span: Hole) -> int:
        if span not in self._hashes:
            self._hashes[span] = self.hasher([[span]], self.holes)[0]
        return self._hashes[span]

    def stream_hash(self, pieces: Sequence[Piece]) -> int:
        return self.hasher([pieces], self.holes)[0]


class Equal:
    """Equality of two messages, one from each model, by the bytes they would serialize to; the
    bytes a token stands for are hashed by `hasher`."""

    def __init__(self, a: Model, b: Model, hasher: Hasher = fingerprint64) -> None:
        self.a, self.b = _Side(a, hasher), _Side(b, hasher)
        self.shared = self.a.holes is not None and self.a.holes is self.b.holes

    def __call__(self, x: Message, y: Message) -> bool:
        if x == y:
            # Two loads never share a token (each has a random prefix): equal tokens are one span.
            return True
        data_x, data_y = x.SerializeToString(deterministic=True), y.SerializeToString(deterministic=True)
        if data_x == data_y:
            return True
        if not (self.a.has_token(data_x) or self.b.has_token(data_y)):
            return False
        return self._same_pieces(self.a.pieces(data_x, x), self.b.pieces(data_y, y))

    def _same_pieces(self, xs: list[Piece], ys: list[Piece]) -> bool:
        if size_of(xs) != size_of(ys):
            return False
        aligned = len(xs) == len(ys) and all(
            x == y if isinstance(x, bytes) or isinstance(y, bytes) else size_of([x]) == size_of([y])
            for x, y in zip(xs, ys, strict=True)
        )
        if not aligned:  # one side read whole, or the constants moved: hash both streams
            return self.a.stream_hash(xs) == self.b.stream_hash(ys)
        for x, y in zip(xs, ys, strict=True):
            if not isinstance(x, bytes) and not isinstance(y, bytes):
                if self.shared and x == y:
                    continue
                if self.a.span_hash(x) != self.b.span_hash(y):
                    return False
        return True


# --- short texts for values ----------------------------------------------------------------------

_SHORT = 32  # a string or bytes value longer than this shows as its size
FEW = 8  # a list longer than this shows as its length
_DETAIL_MAX = 300  # a structure described longer than this is cut


def cut(text: str, limit: int = _DETAIL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _bytes_text(value: bytes) -> str:
    if len(value) <= _SHORT:
        try:
            return repr(value.decode("ascii"))
        except UnicodeDecodeError:
            pass
    return f"<{len(value)} bytes>"


def _shape_text(shape: TensorShapeProto) -> str:
    dims = shape_from_proto(shape)
    return "unknown-rank" if dims is None else "[" + ", ".join(map(str, dims)) + "]"


def items_text(items: list[str]) -> str:
    if len(items) <= FEW:
        return "[" + ", ".join(items) + "]"
    return "[" + ", ".join(items[:3]) + f", ... {len(items)} items]"


def _record_size(value_length: int) -> int:
    """The size of a bytes field record of number < 16 holding `value_length` bytes."""
    return 1 + len(encode_varint(value_length)) + value_length


def _value_length(record_size: int) -> int:
    """The inverse of `_record_size`: a token's span is the whole record."""
    for prefix in range(1, 11):
        if len(encode_varint(record_size - 1 - prefix)) == prefix:
            return record_size - 1 - prefix
    return record_size


def _tensor_text(tensor: TensorProto, side: _Side) -> str:
    """`tensor float32 [2, 3] <24 bytes>`, or its values when there are few and short ones."""
    head = f"tensor {dtype_name(tensor.dtype)} {_shape_text(tensor.tensor_shape)}"
    if tensor.tensor_content:
        span = side.span(tensor.tensor_content)
        if span is None:
            size = len(tensor.tensor_content)
        else:  # a binary file's record, or a text file's literal (its decoded size)
            size = _value_length(span.length) if isinstance(span, Span) else span.size
        return f"{head} <{size} bytes>"
    if tensor.string_val:
        spans = [side.span(s) for s in tensor.string_val]
        if len(spans) <= 4 and all(
            s is None and len(v) <= _SHORT for s, v in zip(spans, tensor.string_val, strict=True)
        ):
            return f"{head} " + items_text([_bytes_text(v) for v in tensor.string_val])
        # Records, not strings: a token stands for a run of them, and counting would read it. (A
        # hole is at least HOLE_MIN bytes: never the few short strings shown above.)
        size = sum(
            _record_size(len(v) if s is None else s.size) if not isinstance(s, Span) else s.length
            for s, v in zip(spans, tensor.string_val, strict=True)
        )
        return f"{head} <{size} bytes of strings>"
    for field, values in tensor.ListFields():
        if field.name.endswith("_val") and field.is_repeated:
            if field.message_type is not None:
                return f"{head} <{len(values)} {field.name}>"
            items = [repr(v) for v in values]
            return f"{head} " + (items_text(items) if len(items) <= 4 else f"<{len(items)} values>")
    return head


def _attr_text(value: AttrValue, side: _Side) -> str:
    """A short text for an attr value: small values in full, large ones by size."""
    kind = value.WhichOneof("value")
    if kind == "s":
        return _bytes_text(value.s)
    if kind in ("i", "f"):
        return repr(getattr(value, kind))
    if kind == "b":
        return "true" if value.b else "false"
    if kind == "type":
        return dtype_name(value.type)
    if kind == "shape":
        return _shape_text(value.shape)
    if kind == "tensor":
        return _tensor_text(value.tensor, side)
    if kind == "func":
        return f"func {value.func.name}" + (f" ({len(value.func.attr)} attrs)" if value.func.attr else "")
    if kind == "placeholder":
        return f"${value.placeholder}"
    if kind == "list":
        return items_text(_list_items(value.list, side))
    return "(unset)"


def _list_items(values: AttrValue.ListValue, side: _Side) -> list[str]:
    items: list[str] = []
    items += [_bytes_text(s) for s in values.s]
    items += [repr(i) for i in values.i]
    items += [repr(f) for f in values.f]
    items += ["true" if b else "false" for b in values.b]
    items += [dtype_name(t) for t in values.type]
    items += [_shape_text(s) for s in values.shape]
    items += [_tensor_text(t, side) for t in values.tensor]
    items += [f"func {f.name}" for f in values.func]
    return items


def _attr_change(key: str, x: AttrValue, y: AttrValue, eq: Equal) -> str:
    """`attr T: float32 -> float16`; a long list by the positions that differ."""
    text_x, text_y = _attr_text(x, eq.a), _attr_text(y, eq.b)
    if x.WhichOneof("value") == y.WhichOneof("value") == "list":
        items_x, items_y = _list_items(x.list, eq.a), _list_items(y.list, eq.b)
        if len(items_x) == len(items_y) > FEW:
            moved = [
                f"#{i} {p} -> {q}" for i, (p, q) in enumerate(zip(items_x, items_y, strict=True)) if p != q
            ]
            if moved:
                more = f", +{len(moved) - 3} more" if len(moved) > 3 else ""
                return f"attr {key}: " + ", ".join(moved[:3]) + more + f" (of {len(items_x)})"
    if text_x == text_y:
        return f"attr {key}: {text_x}, contents changed"
    return f"attr {key}: {text_x} -> {text_y}"


def attr_parts(x: Mapping[str, AttrValue], y: Mapping[str, AttrValue], eq: Equal) -> list[tuple[str, str]]:
    """(key, `+attr key: value` / `-attr key: value` / `attr key: old -> new`) for each attr that differs."""
    parts = []
    for key in sorted(set(x) | set(y)):
        if key not in y:
            parts.append((key, f"-attr {key}: {_attr_text(x[key], eq.a)}"))
        elif key not in x:
            parts.append((key, f"+attr {key}: {_attr_text(y[key], eq.b)}"))
        elif not eq(x[key], y[key]):
            parts.append((key, _attr_change(key, x[key], y[key], eq)))
    return parts


# --- other messages, field by field --------------------------------------------------------------


def field_parts(x: Message, y: Message, eq: Equal, skip: Iterable[str] = ()) -> list[str]:
    """`debug_info changed`: the top-level fields of `x` and `y` that differ, but those in `skip`."""
    parts = []
    skipped = set(skip)
    for field in x.DESCRIPTOR.fields:
        if field.name in skipped:
            continue
        if not _same_field(
            cast(FieldDescriptor, field), getattr(x, field.name), getattr(y, field.name), x, y, eq
        ):
            parts.append(f"{field.name} changed")
    return parts


def _same_field(field: FieldDescriptor, vx: Any, vy: Any, x: Message, y: Message, eq: Equal) -> bool:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if set(vx) != set(vy):
            return False
        value_field = field.message_type.fields_by_name["value"]
        if value_field.message_type is None:
            return all(vx[k] == vy[k] for k in vx)
        return all(eq(vx[k], vy[k]) for k in vx)
    if field.is_repeated:
        if len(vx) != len(vy):
            return False
        if field.message_type is None:
            return list(vx) == list(vy)
        return all(eq(p, q) for p, q in zip(vx, vy, strict=True))
    if field.message_type is not None:
        if x.HasField(field.name) != y.HasField(field.name):
            return False
        return eq(vx, vy)
    return bool(vx == vy)
