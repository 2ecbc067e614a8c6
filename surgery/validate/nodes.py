"""What the validator checks of a node by itself, in the v1 graph and in function bodies alike.

`NodeChecker` holds one meta graph's context (its library, what each op is, whether it is a TF2
model) and checks each node's name, op, device, attrs and constant value, working out its input
and output dtypes for the checks of its inputs. Apart from its name and inputs, a node is mostly
one of a few kinds, so what a kind gives is worked out once per meta graph. A finding goes to the
node's `Scope` (the v1 graph, or one function body) with flags saying which loaders meet it:
how a finding becomes an error or a warning depends on where it is, which `surgery.validate.graph`
and `surgery.validate.library` decide. Validation reads no bulk bytes: a constant whose contents
were left on disk (`surgery.lazy`) is checked by its dtype and shape only.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from surgery import lazy
from surgery.schema import TENSORFLOW_VERSION, AttrValue, DataType, FunctionDef, MetaGraphDef, NodeDef
from surgery.tensors import dtype_name
from surgery.validate.attrs import attr_kind, attr_problem, device_problem
from surgery.validate.registry import Attr, Spec, Types, args_dtypes, custom_op_library, op_spec, spec_of
from surgery.wire import read_varint

_NODE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_\-./]*(?:>[A-Za-z0-9.][A-Za-z0-9_\-./]*)*")

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
class Node:
    """A node and its op, with its dtypes where they can be worked out (None where not): per
    output argument (`out_types`), all outputs (`flat`), and the data inputs it takes (`takes`)."""

    node: NodeDef
    spec: Spec | None
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

_FUNCTION_FLAGS = {
    "node-name": TF2,
    "output-shapes": TF2,
    "deprecated-op": TF2,
    "call-types": CALL,
    "empty-attr": CALL,
}
"""Who refuses a function for a finding of each code, where not TF2 | CALL."""


class Scope:
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


class NodeChecker:
    """Checks the nodes of one meta graph, in its v1 graph and its function bodies alike, knowing
    its library (`library`: by name, the first of each; `duplicates`: the others)."""

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
        self.specs: dict[str, Spec | None] = {}
        self.function_ops: set[str] = set()  # the ops that are functions of the library
        self.kinds: dict[
            tuple[bool, frozenset[str], bytes],
            tuple[tuple[tuple[str, str, int, str | None], ...], frozenset[str], frozenset[str], Node],
        ] = {}
        self.tf2 = len(meta.object_graph_def.nodes) > 0
        self.producer = meta.graph_def.versions.producer

    def spec(self, op: str) -> Spec | None:
        """The registered op, else a library function's signature (TensorFlow refuses a library
        whose function has an op's name, `function-name`: its nodes are checked as the op's)."""
        try:
            return self.specs[op]
        except KeyError:
            spec = op_spec(op)
            function = self.library.get(op) if spec is None else None
            if function is not None:
                spec = spec_of(function.signature)
                self.function_ops.add(op)
            self.specs[op] = spec
            return spec

    def node_header(self, scope: Scope, node: NodeDef, *, in_function: bool) -> Node:
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
        return Node(node, info.spec, info.out_types, info.flat, info.takes, info.unread)

    def node_kind(self, scope: Scope, node: NodeDef, in_function: bool) -> Node:
        """What a node's op, device and attrs say (its name and inputs aside)."""
        name = node.name
        device = node.device
        if device:
            problem = device_problem(device)
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
            return Node(node, None)
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
            found = attr_problem(attr_value, attr)
            if found is not None:
                ok = self.report_attr_problem(scope, name, spec, attr, found, in_function) and ok
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
            return Node(node, spec, unread=unread)
        outputs = spec.fixed_outputs
        if outputs is None:
            outputs = args_dtypes(spec.outputs, values, spec)
        takes = spec.fixed_inputs
        if takes is None:
            args = args_dtypes(spec.inputs, values, spec)
            takes = [t for arg in args for t in arg] if args is not None else None
        flat = [t for arg in outputs for t in arg] if outputs is not None else None
        if shapes is not None and flat is not None:
            recorded = len(shapes.list.shape)
            if recorded < len(flat) and attr_kind(shapes) in ("", "list()", "list(shape)"):
                scope.add(
                    "output-shapes",
                    name,
                    f"_output_shapes lists {recorded} shape(s) for {len(flat)} output(s), which the importer "
                    "refuses: remove the attr or give every output its shape",
                )
        return Node(node, spec, outputs, flat, takes, unread)

    def empty_attr(self, scope: Scope, node: str, key: str, flags: int) -> None:
        """An attr with no value in a function body: instantiating the function fails to bind it."""
        scope.add(
            "empty-attr",
            node,
            f"attr {key!r} has no value (<Unknown AttrValue type>), and function instantiation fails to "
            "bind it (whether or not the op declares it): set a value or remove the attr",
            flags,
        )

    def empty_declared(self, scope: Scope, node: str, spec: Spec, attr: Attr, in_function: bool) -> bool:
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

    def report_attr_problem(
        self, scope: Scope, node: str, spec: Spec, attr: Attr, problem: tuple[str, str], in_function: bool
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

    def unknown_op(self, scope: Scope, node: NodeDef) -> None:
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

    def deprecation(self, scope: Scope, node: NodeDef, spec: Spec, in_function: bool) -> None:
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

    def constant(self, scope: Scope, node: NodeDef, value: AttrValue) -> bool:
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

    def func_refs(
        self, scope: Scope, node: str, scope_op: str, attr_name: str, value: AttrValue, in_function: bool
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
            elif name and (in_function or op_spec(name) is None):
                scope.add(
                    "unknown-function",
                    node,
                    f"attr {attr_name!r} names function {name!r}, which the library does not have: add the "
                    "function or point the attr at one that exists",
                    subject=name,
                )


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
