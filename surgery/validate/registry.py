"""What TensorFlow's op registry says of an op, in the form validating a node of it needs.

A `Spec` holds an op's attrs (their types, defaults and constraints), its input and output
arguments and their dtypes where no attr sets them, and the GraphDef version that removed it; a
library function's signature gives one too, as TensorFlow checks a call of it as an op's node. A
registered op's is derived once per process (`op_spec`). `args_dtypes` works out a node's input
and output dtypes from its attrs, as TensorFlow does when it imports the node. An op TensorFlow
does not register may come from a custom-op library, which `custom_op_library` tells by its name.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from surgery.op_registry import op_def
from surgery.schema import AttrValue, OpDef

Types = list[int]
"""Dtypes (DataType numbers): an argument's, or all of a node's inputs or outputs."""

REF = 100  # DT_FLOAT_REF is DT_FLOAT + 100, and so on

ONEOF = {
    "string": "s",
    "int": "i",
    "float": "f",
    "bool": "b",
    "type": "type",
    "shape": "shape",
    "tensor": "tensor",
    "func": "func",
}
"""The `AttrValue` field that holds a value of each attr type an OpDef declares."""


@dataclass(frozen=True, slots=True)
class Arg:
    """An input or output argument of an op: its dtype, or the attrs that give its dtypes."""

    name: str
    type: int
    type_attr: str
    number_attr: str
    type_list_attr: str
    is_ref: bool


@dataclass(frozen=True, slots=True)
class Attr:
    """An attr an op declares: its type (`type`, `list(int)`...), default and constraints, and the
    `AttrValue` field a value of that type sets (`oneof`; for a list, `list` and `list_field`)."""

    name: str
    type: str
    default: AttrValue | None
    allowed: frozenset[int] | frozenset[bytes] | None
    minimum: int | None
    oneof: str
    list_field: str

    @property
    def constrained(self) -> bool:
        return self.allowed is not None or self.minimum is not None


@dataclass(frozen=True, slots=True)
class Spec:
    """What validating a node of one op needs, derived from its OpDef (or a function's signature).
    `fixed_inputs`/`fixed_outputs`: the dtypes, when no attr sets them."""

    name: str
    attrs: Mapping[str, Attr]
    required: frozenset[str]
    inputs: tuple[Arg, ...]
    outputs: tuple[Arg, ...]
    fixed_inputs: Types | None
    fixed_outputs: list[Types] | None
    removed_at: int | None
    removal_note: str
    func_attrs: frozenset[str]
    output_index: Mapping[str, int]


def _arg(arg: OpDef.ArgDef) -> Arg:
    return Arg(arg.name, arg.type, arg.type_attr, arg.number_attr, arg.type_list_attr, arg.is_ref)


def _attr(attr: OpDef.AttrDef) -> Attr:
    allowed: frozenset[int] | frozenset[bytes] | None = None
    if attr.HasField("allowed_values"):
        values = attr.allowed_values.list
        allowed = frozenset(values.type) if attr.type in ("type", "list(type)") else frozenset(values.s)
    is_list = attr.type.startswith("list(")
    return Attr(
        attr.name,
        attr.type,
        attr.default_value if attr.HasField("default_value") else None,
        allowed,
        attr.minimum if attr.has_minimum else None,
        "list" if is_list else ONEOF.get(attr.type, ""),
        ONEOF.get(attr.type[5:-1], "") if is_list else "",
    )


def _fixed(arg: Arg) -> Types | None:
    """An argument's dtypes when no attr sets them."""
    if arg.type_attr or arg.number_attr or arg.type_list_attr:
        return None
    return [arg.type + REF if arg.is_ref else arg.type]


def spec_of(op: OpDef) -> Spec:
    """What validating a node of `op` needs (a function's signature is an OpDef too)."""
    attrs = {a.name: _attr(a) for a in op.attr}
    inputs = tuple(_arg(a) for a in op.input_arg)
    outputs = tuple(_arg(a) for a in op.output_arg)
    fixed_in = [_fixed(a) for a in inputs]
    fixed_out = [_fixed(a) for a in outputs]
    return Spec(
        name=op.name,
        attrs=attrs,
        required=frozenset(name for name, a in attrs.items() if a.default is None),
        inputs=inputs,
        outputs=outputs,
        fixed_inputs=None if None in fixed_in else [t for types in fixed_in if types for t in types],
        fixed_outputs=None if None in fixed_out else [types for types in fixed_out if types is not None],
        removed_at=op.deprecation.version if op.HasField("deprecation") else None,
        removal_note=op.deprecation.explanation,
        func_attrs=frozenset(name for name, a in attrs.items() if a.type in ("func", "list(func)")),
        output_index={arg.name: i for i, arg in enumerate(outputs)},
    )


@functools.cache
def op_spec(name: str) -> Spec | None:
    """The registered op `name`, derived once per process (None: TensorFlow does not register it)."""
    op = op_def(name)
    return spec_of(op) if op is not None else None


# --- an argument's dtypes, as a node's attrs set them -------------------------------------------


def _attr_or_default(attrs: Mapping[str, AttrValue], spec: Spec, name: str) -> AttrValue | None:
    """An attr's value on the node (`attrs`: the declared ones, read once), else the op's default
    (AddDefaultsToNodeDef)."""
    value = attrs.get(name)
    if value is None:
        attr = spec.attrs.get(name)
        return attr.default if attr is not None else None
    return value


def _arg_dtypes(arg: Arg, attrs: Mapping[str, AttrValue], spec: Spec) -> Types | None:
    """An argument's dtypes as TensorFlow's AddArgToSig works them out (None: not computable)."""
    if arg.number_attr:
        number = _attr_or_default(attrs, spec, arg.number_attr)
        if number is None or number.WhichOneof("value") != "i" or number.i < 0:
            return None
        if arg.type:
            dtype = arg.type
        else:
            value = _attr_or_default(attrs, spec, arg.type_attr)
            if value is None or value.WhichOneof("value") != "type":
                return None
            dtype = value.type
        types = [dtype] * number.i
    elif arg.type_attr:
        value = _attr_or_default(attrs, spec, arg.type_attr)
        if value is None or value.WhichOneof("value") != "type":
            return None
        types = [value.type]
    elif arg.type_list_attr:
        value = _attr_or_default(attrs, spec, arg.type_list_attr)
        if value is None:
            return None
        types = list(value.list.type)
    else:
        types = [arg.type]
    if arg.is_ref:
        return [t + REF for t in types]
    return types


def args_dtypes(args: tuple[Arg, ...], attrs: Mapping[str, AttrValue], spec: Spec) -> list[Types] | None:
    """Each argument's dtypes; None when one of them is not computable."""
    out = []
    for arg in args:
        types = _arg_dtypes(arg, attrs, spec)
        if types is None:
            return None
        out.append(types)
    return out


# --- custom-op libraries, told from an op's name ------------------------------------------------

_TF_TEXT = "TF Text, pip package tensorflow-text"
_LIBRARY_PREFIXES = (
    ("TFText>", _TF_TEXT),
    ("Addons>", "TF Addons, pip package tensorflow-addons"),
    ("IO>", "TF I/O, pip package tensorflow-io"),
    ("TFRA>", "TF Recommenders-Addons, pip package tensorflow-recommenders-addons"),
    ("Scann>", "ScaNN, pip package scann"),
    ("SimpleML", "TF Decision Forests, pip package tensorflow-decision-forests"),
    ("Sentencepiece", "SentencePiece, pip package tf-sentencepiece or tensorflow-text"),
)
_LIBRARY_OPS = dict.fromkeys(
    (
        "CaseFoldUTF8",
        "ConstrainedSequence",
        "FindSourceOffsets",
        "MaxSpanningTree",
        "NormalizeUTF8",
        "NormalizeUTF8WithOffsets",
        "RegexSplitWithOffsets",
        "SentenceFragments",
        "SentencepieceDetokenizeOp",
        "SentencepieceIdToStringOp",
        "SentencepieceOp",
        "SentencepieceStringToIdOp",
        "SentencepieceTokenizeOp",
        "SentencepieceTokenizeWithOffsetsOp",
        "SentencepieceVocabSizeOp",
        "SplitMergeTokenizeWithOffsets",
        "TokenizerFromLogits",
        "UnicodeScriptTokenizeWithOffsets",
        "WhitespaceTokenizeWithOffsets",
        "WordpieceTokenizeWithOffsets",
    ),
    _TF_TEXT,
)


def custom_op_library(op: str) -> str | None:
    """The custom-op library an op unknown to TensorFlow likely comes from, by its name."""
    known = _LIBRARY_OPS.get(op)
    if known is not None:
        return known
    return next((library for prefix, library in _LIBRARY_PREFIXES if op.startswith(prefix)), None)
