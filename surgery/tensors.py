"""Dtypes and shapes: TensorFlow's names for them and their proto forms.

A shape is `None` for unknown rank, else a tuple of dims with `-1` for an unknown dim,
as TensorFlow's `TensorShape.as_list()` gives with `None` mapped to `-1`.
"""

from __future__ import annotations

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


def parse_dtype(text: str) -> DataType:
    """`float32`, `DT_FLOAT` (and `half`/`float`/`double`) to the DataType enum value."""
    key = text.strip()
    value = _BY_NAME.get(key) or _BY_NAME.get(key.lower())
    if not value or key.lower().endswith("_ref"):
        raise EditError(
            f"unknown dtype {text!r}: use a TensorFlow dtype name such as float32, int64, string or DT_FLOAT"
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
