"""The graph validator: every node checked against TensorFlow's op registry, as its loaders do.

`check` compares the places that define a signature; this module checks what TensorFlow's loaders
check when they import a graph, so that a model they refuse is not called consistent:

- the v1 graph (`MetaGraphDef.graph_def`), which the v1 session loader and TensorFlow Serving's C++
  loader import node by node (`ImportGraphDef`: each node's op looked up, its attrs completed
  with the op's defaults and validated, its inputs counted and typed, the op's deprecation
  checked against `GraphDef.versions.producer`), and whose devices the placer parses;
- every function of the library (`FunctionDef.node_def`), which the TF2 loader imports one by one
  at load (`function_def_to_graph`: the same import, `node:output_arg:index` input names) and the
  v1 and C++ loaders instantiate when their graph calls it (`InstantiateFunction`);
- what the C++ loader checks of every node's constant at load (`ValidateSavedTensors`).

Each finding is an `Issue` with a code; `SEVERITIES` gives each code's severity, by `check`'s
rule: an error when a loader refuses the model (or fails running what the model's graph calls),
a warning when TensorFlow ignores it. A problem in a function body carries who meets it (`TF2`,
`CALL`, `CC`); one that no loader meets, in a function nothing the v1 graph calls, is an
`unused-function` warning. Validation reads no bulk bytes: a constant whose contents were left on
disk (`surgery.lazy`) is checked by its dtype and shape only. What the op registry says of each op
is derived once per process (`_op_spec`), and what a node's op, device and attrs give once per
meta graph.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from surgery import lazy
from surgery.op_registry import op_def
from surgery.schema import (
    TENSORFLOW_VERSION,
    AttrValue,
    DataType,
    FunctionDef,
    MetaGraphDef,
    NodeDef,
    OpDef,
    TensorInfo,
)
from surgery.tensors import dtype_name
from surgery.wire import read_varint

SEVERITIES: dict[str, Literal["error", "warning"]] = {
    # The op is neither registered in TensorFlow nor a function of the library: every loader
    # refuses the graph (`Op type not registered`), unless the server loads the op's library.
    "unknown-op": "error",
    # An attr the OpDef declares, without a default, is not set (`NodeDef missing attr`).
    "missing-attr": "error",
    # An attr holds no value (`<Unknown AttrValue type>`; an empty list is fine in the v1 graph)
    # or a value of another type than the OpDef declares, or an invalid or ref DataType.
    "attr-type": "error",
    # An attr's value is not among the OpDef's allowed values, or is below its minimum.
    "attr-value": "error",
    # A placeholder attr (`$T`) outside a function body, or one its function does not bind.
    "attr-placeholder": "error",
    # An attr the OpDef does not declare (and not `_`-prefixed): TensorFlow 2 logs it and ignores it.
    "unknown-attr": "warning",
    # An attr of a function body's node with no value set, declared or not: instantiating the
    # function fails (`Failed to bind all placeholders in <Unknown AttrValue type>`).
    "empty-attr": "error",
    # Another number of data inputs than the OpDef (and its number and type-list attrs) says.
    "input-count": "error",
    # A data input after a control input.
    "input-order": "error",
    # An input TensorFlow cannot parse: a control input with an output index, a function-body
    # input that is not `node:output_arg:index` or an argument name.
    "input-form": "error",
    # An input naming a node (or function argument, or output argument) that does not exist.
    "missing-input": "error",
    # An input reading an output index the source node does not have.
    "input-index": "error",
    # An edge whose dtype the consuming input does not accept.
    "edge-dtype": "error",
    # Two nodes (or a node and a function argument) with one name.
    "duplicate-node": "error",
    # A node name TensorFlow's importer refuses (characters, leading `_`).
    "node-name": "error",
    # A function output without a `ret`, a `ret` or `control_ret` naming nothing, a `ret` of
    # another dtype than its output argument.
    "function-ret": "error",
    # A call node whose `Tin`/`Tout` are not the types its function takes and returns.
    "call-types": "error",
    # A function attr (or gradient) naming a function the library does not have.
    "unknown-function": "error",
    # A function calling itself, directly (the C++ loader refuses) or through others (the TF2 loader).
    "recursive-function": "error",
    # A library function named like a registered op: the library cannot be added to a graph.
    "function-name": "error",
    # Two functions of the library with one name: the TF2 loader refuses the library; the C++
    # runtime takes an identical copy and refuses a different one.
    "duplicate-function": "error",
    # A PlaceholderWithDefault whose default has another dtype or an incompatible shape.
    "placeholder-default": "error",
    # A constant with a negative dim (the C++ loader refuses it at load), or one something reads
    # whose value has another dtype than the node says or another size than its shape.
    "const-value": "error",
    # `_output_shapes` listing fewer shapes than the node has outputs: the importer refuses it.
    "output-shapes": "error",
    # A device string TensorFlow's device parser refuses.
    "device": "error",
    # An op removed at the GraphDef version that produced the graph (`OpDef.deprecation`).
    "deprecated-op": "error",
    # An error in a function no loader instantiates (no call of the v1 graph reaches it, and the
    # TF2 loader does not check that problem at load): every loader loads the model.
    "unused-function": "warning",
    # An error TensorFlow meets only running the node (a call's types), in a v1 graph node no
    # signature, init or restore op runs: every loader loads the model.
    "unrun-node": "warning",
}
"""Every code the validator reports, and its severity."""


class Issue(NamedTuple):
    """One problem: a code of `SEVERITIES`, where (function and node, None for the graph or the
    function itself) and a message that says what is wrong and what to do. `subject`: what the
    finding is about, for a caller that may have said it already (the node; for `unknown-function`
    the function named)."""

    code: str
    function: str | None
    node: str | None
    message: str
    subject: str | None = None


# --- what the op registry says of an op, derived once per process ------------------------------

Types = list[int]
_REF = 100  # DT_FLOAT_REF is DT_FLOAT + 100, and so on

_ONEOF = {
    "string": "s",
    "int": "i",
    "float": "f",
    "bool": "b",
    "type": "type",
    "shape": "shape",
    "tensor": "tensor",
    "func": "func",
}


@dataclass(frozen=True, slots=True)
class _Arg:
    """An input or output argument of an op: its dtype, or the attrs that give its dtypes."""

    name: str
    type: int
    type_attr: str
    number_attr: str
    type_list_attr: str
    is_ref: bool


@dataclass(frozen=True, slots=True)
class _Attr:
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
class _Spec:
    """What validating a node of one op needs, derived from its OpDef (or a function's signature).
    `fixed_inputs`/`fixed_outputs`: the dtypes, when no attr sets them."""

    name: str
    attrs: Mapping[str, _Attr]
    required: frozenset[str]
    inputs: tuple[_Arg, ...]
    outputs: tuple[_Arg, ...]
    fixed_inputs: Types | None
    fixed_outputs: list[Types] | None
    removed_at: int | None
    removal_note: str
    func_attrs: frozenset[str]
    output_index: Mapping[str, int]


def _arg(arg: OpDef.ArgDef) -> _Arg:
    return _Arg(arg.name, arg.type, arg.type_attr, arg.number_attr, arg.type_list_attr, arg.is_ref)


def _attr(attr: OpDef.AttrDef) -> _Attr:
    allowed: frozenset[int] | frozenset[bytes] | None = None
    if attr.HasField("allowed_values"):
        values = attr.allowed_values.list
        allowed = frozenset(values.type) if attr.type in ("type", "list(type)") else frozenset(values.s)
    is_list = attr.type.startswith("list(")
    return _Attr(
        attr.name,
        attr.type,
        attr.default_value if attr.HasField("default_value") else None,
        allowed,
        attr.minimum if attr.has_minimum else None,
        "list" if is_list else _ONEOF.get(attr.type, ""),
        _ONEOF.get(attr.type[5:-1], "") if is_list else "",
    )


def _fixed(arg: _Arg) -> Types | None:
    """An argument's dtypes when no attr sets them."""
    if arg.type_attr or arg.number_attr or arg.type_list_attr:
        return None
    return [arg.type + _REF if arg.is_ref else arg.type]


def _spec_of(op: OpDef) -> _Spec:
    attrs = {a.name: _attr(a) for a in op.attr}
    inputs = tuple(_arg(a) for a in op.input_arg)
    outputs = tuple(_arg(a) for a in op.output_arg)
    fixed_in = [_fixed(a) for a in inputs]
    fixed_out = [_fixed(a) for a in outputs]
    return _Spec(
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
def _op_spec(name: str) -> _Spec | None:
    """The registered op `name`, derived once per process (None: TensorFlow does not register it)."""
    op = op_def(name)
    return _spec_of(op) if op is not None else None


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


# --- attr values --------------------------------------------------------------------------------

_KIND_TYPES = {oneof: name for name, oneof in _ONEOF.items()}
_VALID_DTYPES = frozenset(DataType.values())
_ATTR_DTYPES = frozenset(t for t in _VALID_DTYPES if 0 < t < _REF)
"""The dtypes an attr may hold: valid, neither DT_INVALID nor a reference type."""


def _kind(value: AttrValue) -> str:
    """The attr type a value holds, as an OpDef spells it (`list(int)`), `placeholder`, or ``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "list":
        fields = value.list.ListFields()
        return "list(" + ",".join(_KIND_TYPES.get(str(f.name), str(f.name)) for f, _ in fields) + ")"
    return _KIND_TYPES.get(str(kind), str(kind))


def _attr_problem(value: AttrValue, attr: _Attr) -> tuple[str, str] | None:
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
                return "attr-type", f"is of type {_kind(value)} where the op declares {attr.type}"
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
    return "attr-type", f"is of type {_kind(value)} where the op declares {attr.type}"


def _dtype_problem(dtype: int) -> str:
    if dtype not in _VALID_DTYPES:
        return f"holds DataType {dtype}, which is no DataType"
    if dtype == DataType.DT_INVALID:
        return "holds DT_INVALID"
    return f"holds the reference type {dtype_name(dtype)}, which an attr cannot"


def _constraint_problem(value: AttrValue, attr: _Attr) -> str | None:
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
def _device_problem(device: str) -> tuple[str, bool] | None:
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


# --- names and inputs ---------------------------------------------------------------------------

_NODE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_\-./]*(?:>[A-Za-z0-9.][A-Za-z0-9_\-./]*)*")


def _graph_input(text: str) -> tuple[str, int]:
    """A v1 graph input as TensorFlow's ParseTensorName reads it: (node, index), index -1 for `^node`."""
    if text.startswith("^"):
        return text[1:], -1
    node, colon, index = text.rpartition(":")
    if colon and node and index.isascii() and index.isdigit():
        return node, int(index)
    return text, 0


def _tensor_names(info: TensorInfo) -> Iterator[str]:
    """The graph tensors a TensorInfo names: dense, COO sparse or composite."""
    sparse = info.coo_sparse
    names = (info.name, sparse.values_tensor_name, sparse.indices_tensor_name, sparse.dense_shape_tensor_name)
    yield from (name for name in names if name)
    yield from (component.name for component in info.composite_tensor.components if component.name)


def _types_compatible(expected: int, actual: int) -> bool:
    """TensorFlow's TypesCompatible: equal, or a ref output into a non-ref input of its base type."""
    return expected == actual or (expected < _REF and actual - _REF == expected)


def _fmt_types(types: Iterable[int]) -> str:
    return "[" + ", ".join(dtype_name(t) for t in types) + "]"


# --- the validator ------------------------------------------------------------------------------

_Source = tuple[str, NodeDef | None, int] | None
"""A PlaceholderWithDefault's input: its text, the node it reads (None: an argument), its dtype."""

_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_CALLED_ATTRS = {
    "PartitionedCall": ("f",),
    "StatefulPartitionedCall": ("f",),
    "If": ("then_branch", "else_branch"),
    "StatelessIf": ("then_branch", "else_branch"),
    "While": ("cond", "body"),
    "StatelessWhile": ("cond", "body"),
    "Case": ("branches",),
    "StatelessCase": ("branches",),
}
"""The func attrs whose functions run with their node (calls, functional control flow)."""
_ITEM_SIZES = {
    DataType.DT_FLOAT: 4,
    DataType.DT_DOUBLE: 8,
    DataType.DT_INT32: 4,
    DataType.DT_UINT8: 1,
    DataType.DT_INT16: 2,
    DataType.DT_INT8: 1,
    DataType.DT_COMPLEX64: 8,
    DataType.DT_INT64: 8,
    DataType.DT_BOOL: 1,
    DataType.DT_QINT8: 1,
    DataType.DT_QUINT8: 1,
    DataType.DT_QINT32: 4,
    DataType.DT_BFLOAT16: 2,
    DataType.DT_QINT16: 2,
    DataType.DT_QUINT16: 2,
    DataType.DT_UINT16: 2,
    DataType.DT_COMPLEX128: 16,
    DataType.DT_HALF: 2,
    DataType.DT_UINT32: 4,
    DataType.DT_UINT64: 8,
}
"""Bytes per element of the dtypes whose `tensor_content` is a plain array."""


@dataclass(slots=True)
class _Node:
    """A node and its op, with its dtypes where they can be worked out (None where not): per
    output argument (`out_types`), all outputs (`flat`), and the data inputs it takes (`takes`)."""

    node: NodeDef
    spec: _Spec | None
    out_types: list[Types] | None = None
    flat: Types | None = None
    takes: Types | None = None
    unread: str | None = None  # for a Const: what is wrong with its value, if something reads it


# Who refuses a function whose body has a problem (a function's findings carry these flags):
TF2 = 1
"""The TF2 loader refuses the model at load: it imports every function of the library."""
CALL = 2
"""Instantiating the function fails: the v1 and C++ loaders refuse the model when its v1 graph
calls the function (they instantiate what the graph calls), the TF2 loader when a signature runs it."""
CC = 4
"""The C++ loader refuses the model at load whatever calls the function (its constant checks)."""
RUN_ONLY = 32
"""In the v1 graph: TensorFlow meets it only running the node (an error if a loader runs it)."""
CC_ONLY = 8
"""In the v1 graph: only the C++ loader refuses it (the Python v1 loader rewrites what it fixes)."""
PY_ONLY = 16
"""In the v1 graph: only the Python loaders refuse it (their import checks more)."""
PRUNED = 64
"""In a TF1 model's v1 graph: the TF2 loader fails running it (it prunes each signature, init and
restore op into a function, where the node must instantiate); the v1 and C++ loaders read it."""

_GRAPH_TAILS = {
    CC_ONLY: "; the C++ loader (TensorFlow Serving) refuses the graph (the Python v1 loader reads it)",
    PY_ONLY: "; the Python v1 loader refuses the graph (TensorFlow Serving's C++ loader reads it)",
    RUN_ONLY: "; the v1 and C++ loaders (TensorFlow Serving) fail running it",
    PRUNED: (
        "; the TF2 loader fails running it (it prunes the signature into a function, which cannot "
        "bind the attr); the v1 and C++ loaders (TensorFlow Serving) read it"
    ),
}

_FUNCTION_FLAGS = {
    "node-name": TF2,
    "output-shapes": TF2,
    "deprecated-op": TF2,
    "call-types": CALL,
    "empty-attr": CALL,
}
"""Who refuses a function for a finding of each code, where not TF2 | CALL."""


class _Scope:
    """The v1 graph or one function body: its findings, and the functions it calls."""

    def __init__(self, function: FunctionDef | None) -> None:
        self.function = function.signature.name if function is not None else None
        self.bound = frozenset(a.name for a in function.signature.attr) if function else frozenset()
        self.found: list[tuple[str, str | None, str, int, str | None]] = []
        self.calls: set[str] = set()  # the functions it calls (what instantiating it instantiates)
        self.refs: set[str] = set()  # every function it names (what the TF2 loader orders by)
        self.consumed: set[str] = set()  # the nodes whose outputs something reads

    def add(
        self, code: str, node: str | None, message: str, flags: int = 0, subject: str | None = None
    ) -> None:
        """A finding; in a function, `flags` say who refuses it (default: by its code). `subject`:
        what it is about, when not the node."""
        flags = flags or _FUNCTION_FLAGS.get(code, TF2 | CALL)
        self.found.append((code, node, message, flags, subject))

    def where(self, node: str | None) -> str:
        where = f"function {self.function!r}" if self.function is not None else "graph"
        return f"{where}, node {node!r}" if node is not None else where


class _Validator:
    """Validates one meta graph: the v1 graph, then every function of its library."""

    def __init__(self, meta: MetaGraphDef, allow_ops: Collection[str]) -> None:
        self.meta = meta
        self.allow_ops = frozenset(allow_ops)
        self.library: dict[str, FunctionDef] = {}
        self.duplicates: list[tuple[str, bool]] = []  # (name, whether the copy differs)
        for function in meta.graph_def.library.function:
            name = function.signature.name
            first = self.library.setdefault(name, function)
            if first is not function:
                differs = first.SerializeToString(deterministic=True) != function.SerializeToString(
                    deterministic=True
                )
                self.duplicates.append((name, differs))
        self.specs: dict[str, _Spec | None] = {}
        self.function_ops: set[str] = set()  # the ops that are functions of the library
        self.kinds: dict[
            tuple[bool, frozenset[str], bytes],
            tuple[tuple[tuple[str, str, int, str | None], ...], frozenset[str], frozenset[str], _Node],
        ] = {}
        self.tf2 = len(meta.object_graph_def.nodes) > 0
        self.producer = meta.graph_def.versions.producer

    def spec(self, op: str) -> _Spec | None:
        """The registered op, else a library function's signature (TensorFlow refuses a library
        whose function has an op's name, `function-name`: its nodes are checked as the op's)."""
        try:
            return self.specs[op]
        except KeyError:
            spec = _op_spec(op)
            function = self.library.get(op) if spec is None else None
            if function is not None:
                spec = _spec_of(function.signature)
                self.function_ops.add(op)
            self.specs[op] = spec
            return spec

    def run(self) -> list[Issue]:
        graph = _Scope(None)
        self.validate_graph(graph)
        tail = (
            "; the v1 and C++ loaders (TensorFlow Serving) refuse the graph"
            if self.tf2
            else "; TensorFlow's loaders refuse the graph"
        )
        issues = []
        run = self.run_nodes() if any(flags & (RUN_ONLY | PRUNED) for *_, flags, _ in graph.found) else set()
        for code, node, message, flags, subject in graph.found:
            if flags & PRUNED and self.tf2:
                continue  # the TF2 loader runs a TF2 model's functions, never its v1 graph
            if flags & (RUN_ONLY | PRUNED) and node not in run:
                message += (
                    f" ({code}); no signature, init or restore op runs this node, so every loader loads "
                    "the model: fix it before anything runs it (a v1 Saver's save runs the save call)"
                )
                code = "unrun-node"
            elif SEVERITIES[code] == "error":
                message += _GRAPH_TAILS.get(flags & (CC_ONLY | PY_ONLY | RUN_ONLY | PRUNED), tail)
            issues.append(Issue(code, None, node, f"{graph.where(node)}: {message}", subject or node))
        bodies = {}
        for name, function in self.library.items():
            scope = _Scope(function)
            _Body(self, scope, function).validate()
            bodies[name] = scope
        reached = _closure(graph.calls, {name: scope.calls for name, scope in bodies.items()})
        for name, scope in bodies.items():
            issues += self.library_issues(name, scope, called=name in reached)
        issues += self.recursion({name: scope.refs for name, scope in bodies.items()})
        for name, differs in self.duplicates:
            if differs:
                refusers = "every loader refuses the model (a different function with the same name)"
            elif self.tf2:
                refusers = "the TF2 loader refuses the model (the v1 and C++ loaders take an identical copy)"
            else:
                continue  # an identical copy in a TF1 model: every loader takes it
            issues.append(
                Issue(
                    "duplicate-function",
                    name,
                    None,
                    f"function {name!r}: the library has another function of this name, and {refusers}: "
                    "remove the copy, or rename it and its callers",
                )
            )
        return issues

    def run_nodes(self) -> set[str]:
        """The v1 graph's nodes the loaders run: what each signature's outputs need short of the
        tensors it feeds, and what the saver's restore and the collections' ops (init ops, table
        initializers) need, through data and control inputs."""
        meta = self.meta
        nodes = {node.name: node for node in meta.graph_def.node}
        seen: set[str] = set()

        def walk(start: Iterable[str], fed: Collection[str]) -> None:
            stack = [name.partition(":")[0].lstrip("^") for name in start if name]
            while stack:
                name = stack.pop()
                node = nodes.get(name)
                if node is None or name in seen:
                    continue
                seen.add(name)
                for text in node.input:
                    if text[:1] == "^":
                        stack.append(text[1:])
                        continue
                    source, index = _graph_input(text)
                    if f"{source}:{index}" not in fed:
                        stack.append(source)

        for signature in meta.signature_def.values():
            fed = {
                "{}:{}".format(*_graph_input(name))
                for info in signature.inputs.values()
                for name in _tensor_names(info)
            }
            walk((name for info in signature.outputs.values() for name in _tensor_names(info)), fed)
        walk((meta.saver_def.restore_op_name, meta.saver_def.filename_tensor_name), ())
        walk((n for c in meta.collection_def.values() for n in c.node_list.value), ())
        return seen

    # --- nodes, in the graph and in function bodies alike ---

    def node_header(self, scope: _Scope, node: NodeDef, *, in_function: bool) -> _Node:
        """Checks a node by itself (name, then op, device, attrs, constant) and works out its dtypes.

        Apart from its name and inputs, a node is mostly one of a few kinds (a model of 12,000
        nodes has some 300 distinct op, device and attrs): what those give is remembered, by the
        node's bytes without its name and inputs, for the rest of the meta graph.
        """
        name = node.name
        if _NODE_NAME.fullmatch(name) is None:
            scope.add(
                "node-name",
                name,
                "TensorFlow's importer refuses this name (it starts with a letter, digit or '.', then has "
                "letters, digits, '_', '-', '.', '/'): rename the node and its uses",
            )
        key = (in_function, scope.bound, _kind_bytes(node.SerializeToString()))
        known = self.kinds.get(key)
        if known is None:
            start, calls, refs = len(scope.found), scope.calls, scope.refs
            scope.calls, scope.refs = set(), set()
            info = self.node_kind(scope, node, in_function)
            found = tuple(
                (code, message, flags, subject) for code, _, message, flags, subject in scope.found[start:]
            )
            known = self.kinds[key] = (found, frozenset(scope.calls), frozenset(scope.refs), info)
            del scope.found[start:]
            scope.calls, scope.refs = calls, refs
        found, called, named, info = known
        for code, message, flags, subject in found:
            scope.add(code, name, message, flags, subject)
        scope.calls |= called
        scope.refs |= named
        return _Node(node, info.spec, info.out_types, info.flat, info.takes, info.unread)

    def node_kind(self, scope: _Scope, node: NodeDef, in_function: bool) -> _Node:
        """What a node's op, device and attrs say (its name and inputs aside)."""
        name = node.name
        device = node.device
        if device:
            problem = _device_problem(device)
            if problem is not None:
                why, cc_only = problem
                scope.add(
                    "device",
                    name,
                    f"device {device!r}: {why}: write it as /device:CPU:0 or clear it",
                    CALL | CC_ONLY if cc_only else TF2 | CALL,
                )
        attrs = node.attr
        op = node.op
        spec = self.spec(op)
        if spec is None:
            value = attrs.get("value")
            if value is not None:
                self.constant(scope, node, value)
            if op not in self.allow_ops:
                self.unknown_op(scope, node)
            return _Node(node, None)
        if op in self.function_ops:
            scope.calls.add(op)
            scope.refs.add(op)
        if spec.removed_at is not None:
            self.deprecation(scope, node, spec, in_function)
        ok = True
        required = 0
        shapes = value = None
        declared = spec.attrs
        values: dict[str, AttrValue] = {}
        for key in attrs:
            attr = declared.get(key) if key[:1] != "_" else None
            if attr is None:
                if in_function or key in ("_output_shapes", "value"):
                    attr_value = attrs.get(key)
                    assert attr_value is not None
                    if in_function and attr_value.WhichOneof("value") is None:
                        self.empty_attr(scope, name, key, CALL)
                    if key == "_output_shapes":
                        shapes = attr_value  # an empty one lists no shape, as TensorFlow reads it
                    elif key == "value":
                        value = attr_value
                if key[:1] != "_":
                    scope.add(
                        "unknown-attr",
                        name,
                        f"attr {key!r} is not declared by op {spec.name!r}; TensorFlow logs it and ignores "
                        "it (an attr of a newer TensorFlow?): remove it to silence the log",
                    )
                continue
            if attr.default is None:
                required += 1
            attr_value = attrs.get(key)
            assert attr_value is not None
            if attr_value.WhichOneof("value") is None and (in_function or attr.default is not None):
                ok = self.empty_declared(scope, name, spec, attr, in_function) and ok
                if attr.default is not None:
                    values[key] = attr.default  # what the Python importers make of it
                continue
            if attr_value.WhichOneof("value") is None and attr.oneof == "list":
                scope.add(
                    "empty-attr",
                    name,
                    f"attr {key!r} has no value (<Unknown AttrValue type>) where op {spec.name!r} declares "
                    f"{attr.type} with no default: set it to an empty list",
                    PRUNED,
                )
            values[key] = attr_value
            if key == "value":
                value = attr_value
            found = _attr_problem(attr_value, attr)
            if found is not None:
                ok = self.attr_problem(scope, name, spec, attr, found, in_function) and ok
            elif key in spec.func_attrs:
                self.func_refs(scope, name, op, key, attr_value, in_function)
        if required < len(spec.required):
            for key in sorted(spec.required - set(attrs)):
                scope.add(
                    "missing-attr",
                    name,
                    f"op {spec.name!r} needs attr {key!r} ({declared[key].type}), which the node does not "
                    "set and the op has no default for: set it",
                )
            ok = False
        unread = None
        if value is not None and self.constant(scope, node, value) and op == "Const":
            unread = _unread(node, value)
        if not ok:
            return _Node(node, spec, unread=unread)
        outputs = spec.fixed_outputs
        if outputs is None:
            outputs = _args_dtypes(spec.outputs, values, spec)
        takes = spec.fixed_inputs
        if takes is None:
            args = _args_dtypes(spec.inputs, values, spec)
            takes = [t for arg in args for t in arg] if args is not None else None
        flat = [t for arg in outputs for t in arg] if outputs is not None else None
        if shapes is not None and flat is not None:
            recorded = len(shapes.list.shape)
            if recorded < len(flat) and _kind(shapes) in ("", "list()", "list(shape)"):
                scope.add(
                    "output-shapes",
                    name,
                    f"_output_shapes lists {recorded} shape(s) for {len(flat)} output(s), which the importer "
                    "refuses: remove the attr or give every output its shape",
                )
        return _Node(node, spec, outputs, flat, takes, unread)

    def empty_attr(self, scope: _Scope, node: str, key: str, flags: int) -> None:
        """An attr with no value in a function body: instantiating the function fails to bind it."""
        scope.add(
            "empty-attr",
            node,
            f"attr {key!r} has no value (<Unknown AttrValue type>), and function instantiation fails to "
            "bind it (whether or not the op declares it): set a value or remove the attr",
            flags,
        )

    def empty_declared(self, scope: _Scope, node: str, spec: _Spec, attr: _Attr, in_function: bool) -> bool:
        """A declared attr with no value: the Python importers (the v1 loader's, the TF2 loader's of
        a function) set an attr with a default to it, the C++ side refuses a non-list one, and
        function instantiation any. False when the node's dtypes cannot be worked out for it."""
        if in_function:
            self.empty_attr(scope, node, attr.name, CALL if attr.default is not None else TF2 | CALL)
            return attr.default is not None
        if attr.oneof != "list":  # an empty list is a list: TensorFlow takes it
            scope.add(
                "attr-type",
                node,
                f"attr {attr.name!r} has no value (<Unknown AttrValue type>) where op {spec.name!r} declares "
                f"{attr.type}: set a {attr.type} value or remove the attr (the Python importers use its "
                "default, the C++ one does not)",
                CC_ONLY,
            )
        return True

    def attr_problem(
        self, scope: _Scope, node: str, spec: _Spec, attr: _Attr, problem: tuple[str, str], in_function: bool
    ) -> bool:
        """Reports an attr that does not fit its OpDef; False when the node's dtypes cannot be
        worked out for it (a wrong type, or a placeholder bound per call at best)."""
        code, why = problem
        if code == "attr-placeholder":
            if not in_function:
                why = "which only a function body can hold (its caller binds it)"
            elif why not in scope.bound:
                why = "which the function does not declare, so nothing binds it"
            else:
                return False
            scope.add(code, node, f"attr {attr.name!r} is the placeholder ${problem[1]}, {why}: set a value")
            return False
        if code == "attr-type":
            scope.add(code, node, f"attr {attr.name!r} {why} (op {spec.name!r}): set a {attr.type} value")
            return False
        scope.add(code, node, f"attr {attr.name!r} {why} (op {spec.name!r}): change it")
        return True

    def unknown_op(self, scope: _Scope, node: NodeDef) -> None:
        op = node.op
        if not op:
            what = "names no op"
        else:
            library = custom_op_library(op)
            what = f"runs op {op!r}, which TensorFlow {TENSORFLOW_VERSION} does not register"
            what += f" (likely from {library})" if library else " (a custom op, or a newer TensorFlow's)"
        scope.add(
            "unknown-op",
            node.name,
            f"{what}, and no function of the library has that name: serve the model where the op's "
            f"library is loaded and pass --allow-op {op or 'NAME'} to check it, or remove the node",
        )

    def deprecation(self, scope: _Scope, node: NodeDef, spec: _Spec, in_function: bool) -> None:
        """An op removed at the producer's GraphDef version: the graph importer refuses it. The TF2
        loader imports function bodies at TensorFlow's own version, so there any removed op fails."""
        assert spec.removed_at is not None
        if in_function:
            when = "the TF2 loader imports function bodies at TensorFlow's current GraphDef version"
        elif self.producer >= spec.removed_at:
            when = f"this graph was produced at version {self.producer}"
        else:
            return
        note = f" ({spec.removal_note})" if spec.removal_note else ""
        scope.add(
            "deprecated-op",
            node.name,
            f"op {spec.name!r} was removed at GraphDef version {spec.removed_at}{note} and {when}: "
            "replace the op",
        )

    def constant(self, scope: _Scope, node: NodeDef, value: AttrValue) -> bool:
        """A `value` tensor's shape, which the C++ loader checks of every node at load
        (ValidateSavedTensors); True when its contents can be read (then checked where read)."""
        if value.WhichOneof("value") != "tensor":
            return False
        shape = value.tensor.tensor_shape
        if shape.unknown_rank or any(d.size < 0 for d in shape.dim):
            scope.add(
                "const-value",
                node.name,
                "its value tensor has an unknown rank or a negative dimension: give the tensor its shape",
                TF2 | CALL | CC,
            )
            return False
        return True

    def read_constants(self, scope: _Scope, nodes: Mapping[str, _Node]) -> None:
        """What is wrong with the value of a constant something reads (`_Node.unread`): TensorFlow
        reads a constant's value only where it is used (shape inference, the Const kernel)."""
        for name in scope.consumed:
            info = nodes.get(name)
            if info is not None and info.unread is not None:
                scope.add("const-value", name, info.unread)

    def func_refs(
        self, scope: _Scope, node: str, scope_op: str, attr_name: str, value: AttrValue, in_function: bool
    ) -> None:
        """A func attr names a function of the library (the TF2 loader requires it in function
        bodies; a graph node may also name a registered op, which TensorFlow runs as a function).
        A call's function (`_CALLED_ATTRS`) is instantiated with its caller; a dataset's, say, only
        when the dataset runs."""
        names = [value.func.name] if value.HasField("func") else [f.name for f in value.list.func]
        called = attr_name in _CALLED_ATTRS.get(scope_op, ())
        for name in names:
            if name in self.library:
                scope.refs.add(name)
                if called:
                    scope.calls.add(name)
            elif name and (in_function or _op_spec(name) is None):
                scope.add(
                    "unknown-function",
                    node,
                    f"attr {attr_name!r} names function {name!r}, which the library does not have: add the "
                    "function or point the attr at one that exists",
                    subject=name,
                )

    def edge(
        self, scope: _Scope, node: NodeDef, position: int, text: str, actual: int, expected: int
    ) -> None:
        """A data edge: the graph importer takes a ref output into a non-ref input of its base type;
        function instantiation wants the types equal."""
        if scope.function is None and _types_compatible(expected, actual):
            return
        scope.add(
            "edge-dtype",
            node.name,
            f"input {position} ({text!r}) is {dtype_name(actual)} where op {node.op!r} takes "
            f"{dtype_name(expected)}: feed it a {dtype_name(expected)} or change the node's type attrs",
        )

    def inputs_done(self, scope: _Scope, info: _Node, data: int, default: _Source) -> None:
        """After a node's inputs: their count, a PlaceholderWithDefault's default, a call's types."""
        spec, node, takes = info.spec, info.node, info.takes
        if spec is None:
            return
        if takes is not None and data != len(takes):
            scope.add(
                "input-count",
                node.name,
                f"op {spec.name!r} takes {len(takes)} data input(s) {_fmt_types(takes)} as its attrs are "
                f"set, the node has {data}: fix the inputs, or the attrs that count them",
            )
        op = node.op
        if op == "PlaceholderWithDefault" and default is not None:
            self.placeholder_default(scope, node, default)
        elif op in _CALL_OPS:
            self.call_types(scope, node)

    def placeholder_default(
        self, scope: _Scope, node: NodeDef, default: tuple[str, NodeDef | None, int]
    ) -> None:
        """A PlaceholderWithDefault's default agrees with its dtype and (a constant's) with its shape."""
        text, source, actual = default
        dtype = node.attr.get("dtype")
        if dtype is None or dtype.WhichOneof("value") != "type":
            return
        if actual != dtype.type:
            scope.add(
                "placeholder-default",
                node.name,
                f"its default {text!r} is {dtype_name(actual)}, its dtype attr {dtype_name(dtype.type)}: "
                "make them agree",
            )
            return
        value = source.attr.get("value") if source is not None and source.op == "Const" else None
        shape = node.attr.get("shape")
        if value is None or shape is None or shape.shape.unknown_rank:
            return
        got = [d.size for d in value.tensor.tensor_shape.dim]
        want = [d.size for d in shape.shape.dim]
        if len(got) != len(want) or any(w >= 0 and g != w for g, w in zip(got, want, strict=True)):
            scope.add(
                "placeholder-default",
                node.name,
                f"its default {text!r} has shape {got}, its shape attr says {want}, which TensorFlow's "
                "shape inference refuses: make them agree",
            )

    def call_types(self, scope: _Scope, node: NodeDef) -> None:
        """A (Stateful)PartitionedCall's Tin and Tout are the types of the function it calls."""
        f = node.attr.get("f")
        function = self.library.get(f.func.name) if f is not None else None
        if function is None:
            return
        for attr_name, args, role in (
            ("Tin", function.signature.input_arg, "takes"),
            ("Tout", function.signature.output_arg, "returns"),
        ):
            recorded = node.attr.get(attr_name)
            wanted = [a.type for a in args]
            if recorded is None or DataType.DT_INVALID in wanted or any(a.number_attr for a in args):
                continue  # a polymorphic function: its types come with the call
            types = list(recorded.list.type)
            if types != wanted:
                scope.add(
                    "call-types",
                    node.name,
                    f"{attr_name} is {_fmt_types(types)} but function {function.signature.name!r} {role} "
                    f"{_fmt_types(wanted)}: make {attr_name} the function's types",
                    CALL if scope.function is not None else RUN_ONLY,
                )

    # --- the v1 graph ---

    def validate_graph(self, scope: _Scope) -> None:
        graph = self.meta.graph_def
        nodes: dict[str, _Node] = {}
        for node in graph.node:
            if node.name in nodes:
                scope.add("duplicate-node", node.name, "another node of the graph has this name: rename one")
                continue
            nodes[node.name] = self.node_header(scope, node, in_function=False)
        for info in nodes.values():
            self.graph_inputs(scope, info, nodes)
        self.read_constants(scope, nodes)
        for gradient in graph.library.gradient:
            for name in (gradient.function_name, gradient.gradient_func):
                if name not in self.library:
                    scope.add(
                        "unknown-function",
                        None,
                        f"the library's gradient entry names function {name!r}, which the library does not "
                        "have: remove the entry or add the function",
                        PY_ONLY,
                        name,
                    )

    def graph_inputs(self, scope: _Scope, info: _Node, nodes: dict[str, _Node]) -> None:
        """A v1 graph node's inputs: form, order, existence, output index and dtype, count."""
        node, takes = info.node, info.takes
        data = 0
        seen_control = 0
        default: _Source = None
        for text in node.input:
            source, index = _graph_input(text)
            if index < 0:
                seen_control = seen_control or 1
                if ":" in source:
                    scope.add(
                        "input-form",
                        node.name,
                        f"control input {text!r} has an output index; a control input is '^node'",
                    )
                elif source not in nodes:
                    scope.add(
                        "missing-input", node.name, f"control input {text!r} names no node of the graph"
                    )
                continue
            if seen_control == 1:
                seen_control = 2  # said once per node; the input still counts
                scope.add(
                    "input-order",
                    node.name,
                    f"data input {text!r} follows a control input, and TensorFlow wants data inputs first: "
                    "move the '^' inputs to the end",
                )
            position = data
            data += 1
            producer = nodes.get(source)
            if producer is None:
                scope.add("missing-input", node.name, f"input {text!r} names no node of the graph")
                continue
            scope.consumed.add(source)
            flat = producer.flat
            if flat is None:
                continue
            if index >= len(flat):
                scope.add(
                    "input-index",
                    node.name,
                    f"input {text!r} reads output {index} of {source!r}, which has {len(flat)} output(s)",
                )
                continue
            actual = flat[index]
            if position == 0 and node.op == "PlaceholderWithDefault":
                default = (text, producer.node, actual)
            elif takes is not None and position < len(takes) and actual != takes[position]:
                self.edge(scope, node, position, text, actual, takes[position])
        self.inputs_done(scope, info, data, default)

    # --- the library ---

    def library_issues(self, name: str, scope: _Scope, *, called: bool) -> list[Issue]:
        """A function's findings, each error saying which loaders refuse the model for it; an error
        no loader meets (the function is never instantiated) is an `unused-function` warning."""
        issues: list[Issue] = []
        if _op_spec(name) is not None:
            issues.append(
                Issue(
                    "function-name",
                    name,
                    None,
                    f"function {name!r}: TensorFlow registers an op of this name, so its loaders cannot add "
                    "the library to a graph: rename the function and its callers",
                )
            )
        for code, node, message, flags, subject in scope.found:
            text = f"{scope.where(node)}: {message}"
            if SEVERITIES[code] != "error":
                issues.append(Issue(code, name, node, text, subject or node))
                continue
            tail = self.refusal(flags, called)
            if tail:
                issues.append(Issue(code, name, node, f"{text}; {tail}", subject or node))
                continue
            why = (
                "no call of the v1 graph reaches this function and the TF2 loader does not check this at "
                "load, so every loader loads the model: fix it before anything calls the function, or "
                "remove it"
            )
            issues.append(Issue("unused-function", name, node, f"{text} ({code}); {why}", subject or node))
        return issues

    def refusal(self, flags: int, called: bool) -> str:
        """Which loaders refuse a model for a function problem with these flags ("": none)."""
        refusers = []
        if flags & TF2:
            refusers.append("the TF2 loader refuses the model")
        if flags & CALL and called:
            refusers.append("the v1 and C++ loaders fail instantiating it")
        elif flags & CC:
            refusers.append("the C++ loader (TensorFlow Serving) refuses the model at load")
        if flags & CALL and flags & TF2 and not called and not flags & CC:
            refusers.append("the v1 and C++ loaders (TensorFlow Serving) never run this function")
        return "; ".join(refusers)

    def recursion(self, calls: Mapping[str, set[str]]) -> list[Issue]:
        """Functions that call themselves: by name (the C++ loader's load-time check refuses it) or
        through func attrs and other functions (the TF2 loader refuses the cycle)."""
        issues = []
        for name in _cyclic(calls):
            function = self.library.get(name)
            by_name = function is not None and any(n.op == name for n in function.node_def)
            refusers = ["the C++ loader (TensorFlow Serving) refuses the model at load"] if by_name else []
            if self.tf2:
                refusers.append("the TF2 loader refuses it (a cyclic dependency between functions)")
            refusers = refusers or ["TensorFlow cannot instantiate it"]
            how = "calls itself by name" if by_name else "calls itself through func attrs or other functions"
            issues.append(
                Issue(
                    "recursive-function",
                    name,
                    None,
                    f"function {name!r} {how}, and a TensorFlow function cannot recurse: write a loop; "
                    + "; ".join(refusers),
                )
            )
        return issues


def _unread(node: NodeDef, value: AttrValue) -> str | None:
    """What is wrong with a Const's value as TensorFlow reads it: its dtype, and where it is in
    the model's bytes (not left on disk), its size for its shape (None: nothing)."""
    tensor = value.tensor
    declared = node.attr.get("dtype")
    if declared is not None and declared.WhichOneof("value") == "type" and tensor.dtype != declared.type:
        return (
            f"its value is {dtype_name(tensor.dtype)} but its dtype attr says {dtype_name(declared.type)}, "
            "which the Const kernel refuses: make them agree"
        )
    content = tensor.tensor_content
    size = _ITEM_SIZES.get(tensor.dtype)
    if content and size is not None and not lazy.is_hole(content):
        count = 1
        for d in tensor.tensor_shape.dim:
            count *= d.size
        if len(content) != count * size:
            return (
                f"its value holds {len(content)} bytes for {count} {dtype_name(tensor.dtype)} element(s) "
                f"of {size} byte(s), which TensorFlow cannot read: rewrite the constant"
            )
    return None


def _kind_bytes(data: bytes) -> bytes:
    """A serialized NodeDef without its name (field 1) and inputs (field 3): what makes its kind.

    TensorFlow and protobuf write a NodeDef's fields in number order, so they lead; a node written
    otherwise just gets a key of its own."""
    pos, end = 0, len(data)
    op = b""
    while pos < end and data[pos] in (0x0A, 0x12, 0x1A):  # name, op, input: length-delimited
        start = pos
        length = data[pos + 1] if pos + 1 < end else 0
        if length < 0x80:
            pos += 2 + length
        else:
            length, pos = read_varint(data, pos + 1, end)
            pos += length
        if data[start] == 0x12:
            op = data[start:pos]
    return op + data[pos:]


def _attr_or_default(attrs: Mapping[str, AttrValue], spec: _Spec, name: str) -> AttrValue | None:
    """An attr's value on the node (`attrs`: the declared ones, read once), else the op's default
    (AddDefaultsToNodeDef)."""
    value = attrs.get(name)
    if value is None:
        attr = spec.attrs.get(name)
        return attr.default if attr is not None else None
    return value


def _arg_dtypes(arg: _Arg, attrs: Mapping[str, AttrValue], spec: _Spec) -> Types | None:
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
        return [t + _REF for t in types]
    return types


def _args_dtypes(args: tuple[_Arg, ...], attrs: Mapping[str, AttrValue], spec: _Spec) -> list[Types] | None:
    """Each argument's dtypes; None when one of them is not computable."""
    out = []
    for arg in args:
        types = _arg_dtypes(arg, attrs, spec)
        if types is None:
            return None
        out.append(types)
    return out


class _Body:
    """One function body, its arguments and nodes named as InstantiateFunction and the TF2 loader's
    `function_def_to_graph` name them: `arg` for an argument, `node:output_arg:index` for a node's
    output (the only forms both read)."""

    def __init__(self, validator: _Validator, scope: _Scope, function: FunctionDef) -> None:
        self.validator = validator
        self.scope = scope
        self.function = function
        self.args: dict[str, Types | None] = {}
        self.nodes: dict[str, _Node] = {}

    def validate(self) -> None:
        validator, scope, function = self.validator, self.scope, self.function
        signature = function.signature
        for arg in signature.input_arg:
            if arg.name in self.args:
                scope.add("duplicate-node", None, f"two arguments are named {arg.name!r}: rename one")
            fixed = arg.type and not (arg.number_attr or arg.type_list_attr)
            self.args[arg.name] = [arg.type + _REF if arg.is_ref else arg.type] if fixed else None
        nodes, args = self.nodes, self.args
        for node in function.node_def:
            name = node.name
            if name in nodes or name in args:
                scope.add(
                    "duplicate-node",
                    name,
                    "another node or argument of the function has this name: rename one",
                )
                continue
            nodes[name] = validator.node_header(scope, node, in_function=True)
        for info in nodes.values():
            self.inputs(info)
        self.returns()
        validator.read_constants(scope, nodes)

    def resolve(self, text: str) -> tuple[NodeDef | None, Types | None] | None:
        """What a value name reads: (its node, None for an argument; its dtypes); None: nothing."""
        if text in self.args:
            return None, self.args[text]
        parts = text.split(":")
        if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit()):
            return None
        info = self.nodes.get(parts[0])
        if info is None or info.spec is None:
            return (info.node, None) if info is not None else None
        position = info.spec.output_index.get(parts[1])
        if position is None:
            return None
        if info.out_types is None:
            return info.node, None
        types = info.out_types[position]
        index = int(parts[2])
        return (info.node, [types[index]]) if index < len(types) else None

    def inputs(self, info: _Node) -> None:
        validator, scope, node, takes = self.validator, self.scope, info.node, info.takes
        nodes, args = self.nodes, self.args
        with_default = node.op == "PlaceholderWithDefault"
        data = 0
        seen_control = 0
        default: _Source = None
        for text in node.input:
            if text[:1] == "^":
                seen_control = seen_control or 1
                name = text[1:]
                if name not in nodes and name not in args:
                    scope.add(
                        "missing-input", node.name, f"control input {text!r} names no node of the function"
                    )
                continue
            if seen_control == 1:
                seen_control = 2  # said once per node; the input still counts
                scope.add(
                    "input-order",
                    node.name,
                    f"data input {text!r} follows a control input, and TensorFlow wants data inputs first: "
                    "move the '^' inputs to the end",
                )
            position = data
            data += 1
            actual = self.data_input(node, text)
            if actual is None:
                continue
            if position == 0 and with_default:
                source = nodes.get(text.partition(":")[0])
                default = (text, source.node if source is not None else None, actual)
            elif takes is not None and position < len(takes) and actual != takes[position]:
                validator.edge(scope, node, position, text, actual, takes[position])
        validator.inputs_done(scope, info, data, default)

    def cc_reads(self, name: str, suffix: str) -> bool:
        """Whether TensorFlow's C++ function instantiation reads `name:suffix`: an argument's
        element (`arg:0`) or a node's whole output argument (`node:output_arg`)."""
        if name in self.args:
            return suffix.isascii() and suffix.isdigit()
        info = self.nodes.get(name)
        return info is not None and info.spec is not None and suffix in info.spec.output_index

    def data_input(self, node: NodeDef, text: str) -> int | None:
        """A data input's dtype, reporting what does not resolve (None: unknown or reported)."""
        scope = self.scope
        if text in self.args:
            types = self.args[text]
            return types[0] if types is not None and len(types) == 1 else None
        parts = text.split(":")
        if len(parts) == 1 and text not in self.nodes:
            scope.add("missing-input", node.name, f"input {text!r} names no argument of the function")
            return None
        if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit()):
            known = len(parts) == 2 and self.cc_reads(parts[0], parts[1])
            scope.add(
                "input-form",
                node.name,
                f"input {text!r} is neither an argument of the function nor 'node:output_arg:index', the "
                "forms the TF2 loader reads in a function body"
                + (" (TensorFlow's C++ runtime reads it too)" if known else ""),
                TF2 if known else TF2 | CALL,
            )
            return None
        source, output, index_text = parts
        info = self.nodes.get(source)
        if info is None:
            scope.add("missing-input", node.name, f"input {text!r} names no node of the function")
            return None
        scope.consumed.add(source)
        spec = info.spec
        if spec is None:
            return None
        position = spec.output_index.get(output)
        if position is None:
            names = ", ".join(a.name for a in spec.outputs) or "none"
            scope.add(
                "missing-input",
                node.name,
                f"input {text!r}: op {spec.name!r} of {source!r} has no output {output!r} "
                f"(its outputs: {names})",
            )
            return None
        if info.out_types is None:
            return None
        types = info.out_types[position]
        index = int(index_text)
        if index >= len(types):
            scope.add(
                "input-index",
                node.name,
                f"input {text!r} reads element {index} of output {output!r} of {source!r}, which has "
                f"{len(types)}",
            )
            return None
        return types[index]

    def returns(self) -> None:
        """Every output argument has a `ret` naming a value of its dtype; control returns resolve."""
        scope, function = self.scope, self.function
        signature = function.signature
        for arg in signature.output_arg:
            value = function.ret.get(arg.name)
            if value is None:
                scope.add(
                    "function-ret", None, f"output {arg.name!r} has no ret: map it to a value of the body"
                )
                continue
            resolved = self.resolve(value)
            if resolved is not None and resolved[0] is not None:
                scope.consumed.add(resolved[0].name)
            if resolved is None:
                scope.add(
                    "function-ret", None, f"ret {arg.name!r} is {value!r}, which names no value of the body"
                )
                continue
            types = resolved[1]
            if types is not None and arg.type and types != [arg.type]:
                scope.add(
                    "function-ret",
                    None,
                    f"ret {arg.name!r} is {value!r}, a {dtype_name(types[0])}, where the output is declared "
                    f"{dtype_name(arg.type)}: return a {dtype_name(arg.type)}",
                    CALL,
                )
        for name in signature.control_output:
            target = function.control_ret.get(name)
            if target is None:
                scope.add("function-ret", None, f"control output {name!r} has no control_ret: add one", TF2)
            elif target not in self.nodes:
                scope.add(
                    "function-ret",
                    None,
                    f"control_ret {name!r} is {target!r}, which names no node of the body",
                    TF2,
                )


def _closure(start: Iterable[str], calls: Mapping[str, set[str]]) -> set[str]:
    """The functions `start` reach through `calls`, themselves included."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(calls.get(name, ()))
    return seen


def _cyclic(calls: Mapping[str, set[str]]) -> list[str]:
    """The functions on a cycle of `calls` (those that reach themselves), in name order."""
    return [name for name in sorted(calls) if name in _closure(calls.get(name, ()), calls)]


def validate(meta: MetaGraphDef, *, allow_ops: Collection[str] = ()) -> list[Issue]:
    """Every problem TensorFlow's loaders find in the v1 graph and the function library of `meta`.

    `allow_ops` are ops the caller's server registers although TensorFlow does not (a custom-op
    library's): their nodes are accepted as they are.
    """
    return _Validator(meta, allow_ops).run()
