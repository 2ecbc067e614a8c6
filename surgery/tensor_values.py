"""The values of a small constant `TensorProto`, and the same values in another dtype.

`set-dtype` on an input that has a default (a `PlaceholderWithDefault` fed by a `Const`)
changes the default's dtype with it. Only numbers and bools are converted, and only where
every value survives the conversion exactly: a default that would change is refused.
"""

from __future__ import annotations

import math
import struct

from surgery.lazy import is_hole
from surgery.schema import DataType, TensorProto
from surgery.tensors import dtype_name

Number = bool | int | float

# dtype -> (struct format of one element, TensorProto's repeated field for it)
_LAYOUT: dict[int, tuple[str, str]] = {
    DataType.DT_FLOAT: ("f", "float_val"),
    DataType.DT_DOUBLE: ("d", "double_val"),
    DataType.DT_HALF: ("e", "half_val"),
    DataType.DT_BFLOAT16: ("H", "half_val"),
    DataType.DT_INT8: ("b", "int_val"),
    DataType.DT_INT16: ("h", "int_val"),
    DataType.DT_INT32: ("i", "int_val"),
    DataType.DT_INT64: ("q", "int64_val"),
    DataType.DT_UINT8: ("B", "int_val"),
    DataType.DT_UINT16: ("H", "int_val"),
    DataType.DT_UINT32: ("I", "uint32_val"),
    DataType.DT_UINT64: ("Q", "uint64_val"),
    DataType.DT_BOOL: ("?", "bool_val"),
}
_FLOATS = frozenset({DataType.DT_FLOAT, DataType.DT_DOUBLE, DataType.DT_HALF, DataType.DT_BFLOAT16})


class Unconvertible(Exception):
    """A constant whose values cannot be converted: the message says why."""


def _bfloat16_to_float(bits: int) -> float:
    value: float = struct.unpack("<f", struct.pack("<I", bits << 16))[0]
    return value


def _float_to_bfloat16(value: float) -> int | None:
    """The bfloat16 bits of `value`, or None when bfloat16 cannot hold it exactly."""
    if math.isnan(value):
        return 0x7FC0
    try:
        bits: int = struct.unpack("<I", struct.pack("<f", value))[0]
    except OverflowError:
        return None
    return None if bits & 0xFFFF else bits >> 16


def values(tensor: TensorProto) -> list[Number]:
    """The stored values of a numeric or bool tensor (a splat keeps its short form)."""
    if tensor.dtype not in _LAYOUT:
        raise Unconvertible(f"its dtype is {dtype_name(tensor.dtype)}")
    code, field = _LAYOUT[tensor.dtype]
    if tensor.tensor_content:
        if is_hole(tensor.tensor_content):
            raise Unconvertible("its values are too large to convert")
        count = len(tensor.tensor_content) // struct.calcsize(code)
        raw: list[Number] = list(struct.unpack(f"<{count}{code}", tensor.tensor_content))
    else:
        raw = list(getattr(tensor, field))
        if tensor.dtype == DataType.DT_HALF:
            raw = [struct.unpack("<e", struct.pack("<H", int(v)))[0] for v in raw]
    if tensor.dtype == DataType.DT_BFLOAT16:
        raw = [_bfloat16_to_float(int(v)) for v in raw]
    return raw


def _exact(value: Number, dtype: int) -> Number | None:
    """`value` in `dtype` (Python's view of it), or None when `dtype` cannot hold it exactly."""
    if dtype == DataType.DT_BOOL:
        return bool(value) if value in (0, 1) else None
    if dtype in _FLOATS:
        if dtype == DataType.DT_BFLOAT16:
            return float(value) if _float_to_bfloat16(float(value)) is not None else None
        code = _LAYOUT[dtype][0]
        try:
            packed: float = struct.unpack(f"<{code}", struct.pack(f"<{code}", float(value)))[0]
        except OverflowError:
            return None
        same = packed == value or (math.isnan(packed) and math.isnan(value))
        return packed if same and (not math.isinf(packed) or math.isinf(value)) else None
    if isinstance(value, float) and not value.is_integer():
        return None
    code = _LAYOUT[dtype][0]
    try:
        struct.pack(f"<{code}", int(value))
    except struct.error:
        return None
    return int(value)


def converted(tensor: TensorProto, dtype: DataType) -> TensorProto:
    """A copy of `tensor` holding the same values in `dtype`; Unconvertible if any would change."""
    if dtype not in _LAYOUT:
        raise Unconvertible(f"{dtype_name(dtype)} is not a numeric or bool dtype")
    old = values(tensor)
    new = [_exact(v, dtype) for v in old]
    for before, after in zip(old, new, strict=True):
        if after is None:
            raise Unconvertible(f"its value {before!r} does not fit {dtype_name(dtype)}")
    out = TensorProto(dtype=dtype)
    out.tensor_shape.CopyFrom(tensor.tensor_shape)
    code, field = _LAYOUT[dtype]
    exact = [v for v in new if v is not None]
    if dtype == DataType.DT_BFLOAT16:
        stored: list[Number] = [_float_to_bfloat16(float(v)) for v in exact]  # type: ignore[misc]
    elif dtype == DataType.DT_HALF and not tensor.tensor_content:
        stored = [struct.unpack("<H", struct.pack("<e", float(v)))[0] for v in exact]
    else:
        stored = exact
    if tensor.tensor_content:
        out.tensor_content = struct.pack(f"<{len(stored)}{code}", *stored)
    else:
        getattr(out, field).extend(stored)
    return out
