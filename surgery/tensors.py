"""Dtypes and shapes: TensorFlow's names for them and their proto forms.

A shape is `None` for unknown rank, else a tuple of dims with `-1` for an unknown dim,
as TensorFlow's `TensorShape.as_list()` gives with `None` mapped to `-1`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from surgery.errors import EditError
from surgery.schema import DataType, TensorShapeProto

Shape = tuple[int, ...] | None

# tf.dtypes.DType.name for the enum names whose rule (strip DT_, lowercase) does not hold.
_RENAMED = {"FLOAT": "float32", "DOUBLE": "float64", "HALF": "float16"}


def _short_name(enum_name: str) -> str:
    base = enum_name.removeprefix("DT_")
    ref = base.endswith("_REF")
    base = base.removesuffix("_REF")
    name = _RENAMED.get(base, base.lower())
    return name + "_ref" if ref else name


DTYPE_NAMES: dict[int, str] = {value: _short_name(name) for name, value in DataType.items()}
_BY_NAME: dict[str, int] = {name: value for value, name in DTYPE_NAMES.items()}
_BY_NAME.update({name: value for name, value in DataType.items()})
_BY_NAME.update({"half": DataType.DT_HALF, "float": DataType.DT_FLOAT, "double": DataType.DT_DOUBLE})


def dtype_name(dtype: int) -> str:
    """TensorFlow's short name (`float32`); `invalid` for DT_INVALID, `dtype(N)` for unknown enums."""
    return DTYPE_NAMES.get(dtype, f"dtype({dtype})")


def enum_name(name: str) -> str:
    """`float32` -> `DT_FLOAT`, as saved_model_cli prints dtypes."""
    value = _BY_NAME.get(name)
    return DataType.Name(value) if value is not None else name


_MODULES = ("tf.dtypes.", "tf.", "tensorflow.", "np.", "numpy.")
"""Prefixes of a dtype as Python code spells it (`tf.float32`, `np.float16`)."""


def parse_dtype(text: str) -> DataType:
    """A dtype as TensorFlow names it (`float32`), as its enum (`DT_FLOAT`), as Python code spells
    it (`tf.float32`, `np.float32`), or `half`/`float`/`double`, to the DataType enum value."""
    key = text.strip()
    for prefix in _MODULES:
        if key.startswith(prefix):
            key = key.removeprefix(prefix).rstrip("_")  # numpy's `np.bool_`
            break
    value = _BY_NAME.get(key) or _BY_NAME.get(key.lower())
    if not value or key.lower().endswith("_ref"):
        raise EditError(
            f"unknown dtype {text!r}: use a TensorFlow dtype name such as float32, int64, string, DT_FLOAT "
            "or tf.float32"
        )
    return cast("DataType", value)


def shape_from_proto(proto: TensorShapeProto) -> Shape:
    if proto.unknown_rank:
        return None
    return tuple(-1 if d.size < 0 else d.size for d in proto.dim)


def shape_to_proto(shape: Shape) -> TensorShapeProto:
    proto = TensorShapeProto()
    if shape is None:
        proto.unknown_rank = True
    else:
        for size in shape:
            proto.dim.add().size = size
    return proto


def parse_shape(text: str) -> Shape:
    """The command-line form: `-1,224,224,3`, `?,4`, `""` (scalar) or `*` (unknown rank)."""
    text = text.strip()
    if text == "*":
        return None
    if text == "":
        return ()
    dims: list[int] = []
    for part in text.strip("[]()").split(","):
        part = part.strip()
        if part in ("?", "-1", "None"):
            dims.append(-1)
        elif part.isascii() and part.isdigit() and int(part) < 2**63:
            dims.append(int(part))
        else:
            raise EditError(
                f"bad shape {text!r}: give comma-separated dims, -1 or ? for an unknown dim "
                '(e.g. -1,224,224,3), "" for a scalar, * for unknown rank'
            )
    return tuple(dims)


MAX_RANK = 254
"""The largest rank TensorFlow takes (`TensorShape::MaxDimensions`)."""


def to_shape(value: Shape | Sequence[int | None] | str) -> Shape:
    """A shape from the command line's text, or from Python: dims as ints, `None` or -1 for an
    unknown dim, `None` for an unknown rank. Refused as TensorFlow refuses it: a dim below -1, a
    rank over 254, known dims whose product reaches 2^63."""
    if isinstance(value, str):
        dims = parse_shape(value)
    elif value is None:
        return None
    else:
        try:
            if isinstance(value, (bytes, bytearray, memoryview)):  # iterable as ints, but no shape
                raise TypeError
            items = list(value)
        except TypeError:
            raise EditError(
                f"bad shape {value!r}: give a list of dims such as [None, 4] or [-1, 4]"
            ) from None
        dims = ()
        for dim in items:
            if dim is None:
                dim = -1
            if isinstance(dim, bool) or not isinstance(dim, int) or dim < -1:
                raise EditError(
                    f"bad shape {value!r}: each dim is an int >= 0, or None (-1) for an unknown dim"
                )
            dims += (dim,)
    if dims is None:
        return None
    if len(dims) > MAX_RANK:
        raise EditError(f"bad shape: rank {len(dims)} is over TensorFlow's limit of {MAX_RANK}")
    elements = 1  # as TensorFlow counts them: left to right, up to the first unknown dim
    for dim in dims:
        if dim < 0:
            break
        elements *= dim
        if elements >= 2**63:
            raise EditError(
                f"bad shape {format_shape(dims)}: its dims multiply to 2^63 or more elements, which "
                "TensorFlow refuses"
            )
    return dims


def format_shape(shape: Shape) -> str:
    """`(-1, 784)` as saved_model_cli prints it, `unknown_rank` for unknown rank."""
    if shape is None:
        return "unknown_rank"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def split_tensor_name(name: str) -> tuple[str, int]:
    """`node:3` -> ("node", 3) as TensorFlow's ParseTensorName: ASCII digits after the last colon
    are the output index, otherwise the whole name is the node (output 0); a leading `^` goes."""
    node, colon, index = name.rpartition(":")
    if colon and node and index and all("0" <= c <= "9" for c in index):
        return node.lstrip("^"), int(index)
    return name.lstrip("^"), 0
