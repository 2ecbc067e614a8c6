"""Converting a constant default to another dtype: exact or refused, never rounded."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgery.schema import DataType, TensorProto
from surgery.tensor_values import Unconvertible, converted, values

FLOAT32 = st.floats(width=32, allow_nan=False)


def _floats(xs: list[float], *, content: bool = False) -> TensorProto:
    tensor = TensorProto(dtype=DataType.DT_FLOAT)
    tensor.tensor_shape.dim.add().size = len(xs)
    if content:
        tensor.tensor_content = struct.pack(f"<{len(xs)}f", *xs)
    else:
        tensor.float_val.extend(xs)
    return tensor


def _fits_half(x: float) -> bool:
    try:
        return struct.unpack("<e", struct.pack("<e", x))[0] == x
    except OverflowError:
        return False


@given(st.lists(FLOAT32, min_size=1, max_size=5), st.booleans())
def test_float32_to_float16_is_exact_or_refused(xs: list[float], content: bool) -> None:
    tensor = _floats(xs, content=content)
    if all(_fits_half(x) for x in xs):
        half = converted(tensor, DataType.DT_HALF)
        assert values(half) == xs
        assert converted(half, DataType.DT_FLOAT) == tensor  # and back, in the same layout
    else:
        with pytest.raises(Unconvertible, match="does not fit float16"):
            converted(tensor, DataType.DT_HALF)


@given(st.lists(FLOAT32, min_size=1, max_size=5))
def test_float32_to_float64_and_back_is_the_same_tensor(xs: list[float]) -> None:
    tensor = _floats(xs)
    wide = converted(tensor, DataType.DT_DOUBLE)
    assert list(wide.double_val) == xs
    assert converted(wide, DataType.DT_FLOAT) == tensor


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=5))
def test_int64_to_int32_refuses_what_int32_cannot_hold(xs: list[int]) -> None:
    tensor = TensorProto(dtype=DataType.DT_INT64, int64_val=xs)
    if all(-(2**31) <= x < 2**31 for x in xs):
        assert list(converted(tensor, DataType.DT_INT32).int_val) == xs
    else:
        with pytest.raises(Unconvertible, match="does not fit int32"):
            converted(tensor, DataType.DT_INT32)


@pytest.mark.parametrize(
    ("value", "dtype", "fits"),
    [
        (2.5, DataType.DT_INT32, False),
        (3.0, DataType.DT_INT32, True),
        (1.0, DataType.DT_BOOL, True),
        (2.0, DataType.DT_BOOL, False),
        (70000.0, DataType.DT_HALF, False),
        (1.5, DataType.DT_BFLOAT16, True),
        (0.1, DataType.DT_BFLOAT16, False),
        (-1.0, DataType.DT_UINT8, False),
        (math.inf, DataType.DT_HALF, True),
    ],
)
def test_one_value(value: float, dtype: DataType, fits: bool) -> None:
    tensor = _floats([value])
    if fits:
        assert values(converted(tensor, dtype)) == [value]
    else:
        with pytest.raises(Unconvertible):
            converted(tensor, dtype)


def test_a_string_constant_is_refused() -> None:
    with pytest.raises(Unconvertible, match="its dtype is string"):
        converted(TensorProto(dtype=DataType.DT_STRING, string_val=[b"a"]), DataType.DT_FLOAT)
