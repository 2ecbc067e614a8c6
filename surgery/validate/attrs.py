"""What is wrong with a node's attr value or device string, as TensorFlow's importer judges it.

`attr_problem` checks a value against the attr its op declares: its type as `AttrValueHasType`
sees it, a valid non-reference DataType, then the op's minimum and allowed values.
`device_problem` parses a device string as both the placer (C++) and the Python importer do,
since a string only one of them refuses fails only the loaders that use it. Both are pure
functions of the value, so the validator can remember their verdicts per node kind.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from surgery.schema import AttrValue, DataType
from surgery.tensors import dtype_name
from surgery.validate.registry import ONEOF, REF, Attr

# --- attr values --------------------------------------------------------------------------------

_KIND_TYPES = {oneof: name for name, oneof in ONEOF.items()}
_VALID_DTYPES = frozenset(DataType.values())
_ATTR_DTYPES = frozenset(t for t in _VALID_DTYPES if 0 < t < REF)
"""The dtypes an attr may hold: valid, neither DT_INVALID nor a reference type."""


def attr_kind(value: AttrValue) -> str:
    """The attr type a value holds, as an OpDef spells it (`list(int)`), `placeholder`, or ``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "list":
        fields = value.list.ListFields()
        return "list(" + ",".join(_KIND_TYPES.get(str(f.name), str(f.name)) for f, _ in fields) + ")"
    return _KIND_TYPES.get(str(kind), str(kind))


def attr_problem(value: AttrValue, attr: Attr) -> tuple[str, str] | None:
    """(code, why) when `value` does not fit `attr`: its type as TensorFlow's AttrValueHasType sees
    it (`attr-type`), then its minimum and allowed values (`attr-value`); None when it fits."""
    kind = value.WhichOneof("value")
    oneof = attr.oneof
    if kind == oneof:  # the common case, checked without building the kind's name
        if oneof == "type":
            if value.type not in _ATTR_DTYPES:
                return "attr-type", _dtype_problem(value.type)
        elif oneof == "list":
            fields = value.list.ListFields()
            if fields and (len(fields) > 1 or fields[0][0].name != attr.list_field):
                return "attr-type", f"is of type {attr_kind(value)} where the op declares {attr.type}"
            if attr.list_field == "type":
                bad = next((t for t in value.list.type if t not in _ATTR_DTYPES), None)
                if bad is not None:
                    return "attr-type", _dtype_problem(bad)
        if attr.constrained:
            problem = _constraint_problem(value, attr)
            if problem is not None:
                return "attr-value", problem
        return None
    if kind == "placeholder":
        return "attr-placeholder", value.placeholder
    if kind is None:
        if oneof == "list":
            return None  # TensorFlow reads an AttrValue with nothing set as an empty list
        return "attr-type", f"has no value (<Unknown AttrValue type>) where the op declares {attr.type}"
    return "attr-type", f"is of type {attr_kind(value)} where the op declares {attr.type}"


def _dtype_problem(dtype: int) -> str:
    if dtype not in _VALID_DTYPES:
        return f"holds DataType {dtype}, which is no DataType"
    if dtype == DataType.DT_INVALID:
        return "holds DT_INVALID"
    return f"holds the reference type {dtype_name(dtype)}, which an attr cannot"


def _constraint_problem(value: AttrValue, attr: Attr) -> str | None:
    """Why a well-typed value breaks `attr`'s minimum or allowed values (None: it does not)."""
    if attr.minimum is not None:
        if attr.type == "int":
            if value.i < attr.minimum:
                return f"is {value.i}, below the op's minimum {attr.minimum}"
        else:
            fields = value.list.ListFields()
            length = len(fields[0][1]) if fields else 0
            if length < attr.minimum:
                return f"has {length} element(s), fewer than the op's minimum {attr.minimum}"
    allowed = attr.allowed
    if allowed is not None:
        values: Iterable[int | bytes]
        if attr.type == "type":
            values = (value.type,)
        elif attr.type == "list(type)":
            values = value.list.type
        elif attr.type == "string":
            values = (value.s,)
        else:
            values = value.list.s
        for v in values:
            if v not in allowed:
                shown = dtype_name(v) if isinstance(v, int) else repr(v.decode(errors="replace"))
                return f"is {shown}, not one of the op's allowed values"
    return None


# --- devices ------------------------------------------------------------------------------------

_JOB = r"[A-Za-z][A-Za-z0-9_]*"
_DEVICE_TYPE = r"[A-Za-z][A-Za-z0-9_]*"
_NUMBER = r"[0-9]+"
_CC_PIECE = re.compile(
    rf"/job:(?:\*|{_JOB})|/replica:(?:\*|{_NUMBER})|/task:(?:\*|{_NUMBER})"
    rf"|/device:(?:\*|{_DEVICE_TYPE})(?::(?:\*|{_NUMBER}))?|/(?:cpu|CPU|gpu|GPU):(?:\*|{_NUMBER})"
)
_PY_DEVICE_TYPES = frozenset({"CPU", "GPU", "TPU", "CUSTOM", "EPU"})


@functools.cache
def device_problem(device: str) -> tuple[str, bool] | None:
    """Why TensorFlow cannot parse a device string, and whether only its C++ side fails: the
    placer's `ParseFullName`, and Python's `DeviceSpec.from_string`, which the Python importer
    applies and writes back canonical (None: both parse it)."""
    cc = device == "/" or _cc_parses(device)
    try:
        _py_parse(device)
    except ValueError:
        return "neither TensorFlow's Python importer nor its placer can parse it", False
    if not cc:
        return "TensorFlow's placer cannot parse it (only a full name such as /device:CPU:0)", True
    return None


def _cc_parses(device: str) -> bool:
    pos = 0
    while pos < len(device):
        match = _CC_PIECE.match(device, pos)
        if match is None:
            return False
        pos = match.end()
    return True


def _py_parse(device: str) -> None:
    """Raise ValueError where `tf.DeviceSpec.from_string` does."""
    device_type = None
    for piece in device.split("/"):
        parts = piece.split(":")
        if parts[0] in ("job",) and len(parts) == 2:
            continue
        if parts[0] in ("replica", "task") and len(parts) == 2:
            int(parts[1])
        elif len(parts) in (1, 2) and parts[0].upper() in _PY_DEVICE_TYPES:
            if device_type is not None:
                raise ValueError("two device types")
            device_type = parts[0]
            if len(parts) == 2 and parts[1] != "*":
                int(parts[1])
        elif len(parts) == 3 and parts[0] == "device":
            if device_type is not None:
                raise ValueError("two device types")
            device_type = parts[1]
            if parts[2] != "*":
                int(parts[2])
        elif parts[0]:
            raise ValueError(f"unknown attribute {parts[0]!r}")
