"""The graph validator (`surgery.validate`, run by `check`): one test per rule, and TensorFlow's word.

Each corruption below breaks one node (or one function's return, or the library) of a fixture the
way a broken tool or a hand edit would. `test_rule` asserts the complete list of `check`'s
findings for it: code, severity, signature, function, node and message. `test_tensorflow_agrees`
saves each corrupted model and asks TensorFlow's three loaders what they make of it (the TF2
loader `tf.saved_model.load`, the v1 session loader, TensorFlow Serving's C++ `LoadSavedModel`):
a probe case (a signature no model has: its error means the loader loaded the model) tells a model
refused at load from one that loads, and a recorded case of the fixture tells a signature that
fails from one that computes what it did. An error is a corruption some loader refuses; a warning
one that every loader loads and computes as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import surgery
from conftest import FIXTURES, ROOT, Oracle, assert_outputs, expected_cases, run_cli
from surgery import lazy
from surgery.check import SEVERITIES, check
from surgery.runner import edit_model
from surgery.schema import DataType, FunctionDef, MetaGraphDef, NodeDef
from surgery.validate import SEVERITIES as VALIDATOR_SEVERITIES
from surgery.validate import custom_op_library, validate

Corruption = Callable[[MetaGraphDef], None]
Finding = tuple[str, str, str | None, str | None, str | None, str]
"""(code, severity, signature, function, node, message)"""

TF2 = "module_multi"  # a tf.Module: v1 graph with call nodes, 10 functions, an object graph
TF1 = "tf1_two_metagraphs"  # a TF1 graph: no library, no object graph
MASKED = "__inference_masked_46"  # what signature 'masked' computes, called through its wrapper
WRAPPER = "__inference_signature_wrapper_masked_57"
FIXED = "__inference_fixed_66"
GRAPH_TAIL = "; the v1 and C++ loaders (TensorFlow Serving) refuse the graph"
CALLED_TAIL = "; the TF2 loader refuses the model; the v1 and C++ loaders fail instantiating it"


# --- places ----------------------------------------------------------------------------------


def _node(meta: MetaGraphDef, name: str) -> NodeDef:
    return next(n for n in meta.graph_def.node if n.name == name)


def _function(meta: MetaGraphDef, name: str) -> FunctionDef:
    return next(f for f in meta.graph_def.library.function if f.signature.name == name)


def _body_node(meta: MetaGraphDef, function: str, name: str) -> NodeDef:
    return next(n for n in _function(meta, function).node_def if n.name == name)


def _read(meta: MetaGraphDef) -> NodeDef:
    """A ReadVariableOp of the v1 graph that nothing reads: `v/Read/ReadVariableOp` (input `v`)."""
    return _node(meta, "v/Read/ReadVariableOp")


def _copy_function(meta: MetaGraphDef, source: str, name: str) -> FunctionDef:
    """A copy of a library function under a new name, which nothing calls."""
    function = meta.graph_def.library.function.add()
    function.CopyFrom(_function(meta, source))
    function.signature.name = name
    return function


# --- corruptions of the v1 graph ---------------------------------------------------------------


def unknown_op(meta: MetaGraphDef) -> None:
    _read(meta).op = "WordpieceTokenizeWithOffsets"


def missing_attr(meta: MetaGraphDef) -> None:
    del _read(meta).attr["dtype"]


def attr_type(meta: MetaGraphDef) -> None:
    _read(meta).attr["dtype"].i = 1


def attr_ref_type(meta: MetaGraphDef) -> None:
    _read(meta).attr["dtype"].type = DataType.DT_FLOAT_REF


def attr_placeholder(meta: MetaGraphDef) -> None:
    _read(meta).attr["dtype"].placeholder = "T"


def empty_default_attr(meta: MetaGraphDef) -> None:
    """A call node's executor_type (default "") with no value: the Python importer sets the
    default, the C++ one refuses it."""
    _node(meta, "StatefulPartitionedCall_1").attr["executor_type"].Clear()


def unknown_attr(meta: MetaGraphDef) -> None:
    _read(meta).attr["surgery_extra"].i = 3


def input_count(meta: MetaGraphDef) -> None:
    _read(meta).input.append("w")


def input_order(meta: MetaGraphDef) -> None:
    _read(meta).input.insert(0, "^NoOp")


def control_input_index(meta: MetaGraphDef) -> None:
    _read(meta).input.append("^NoOp:0")


def missing_input(meta: MetaGraphDef) -> None:
    _read(meta).input[0] = "no_such_node"


def input_index(meta: MetaGraphDef) -> None:
    _read(meta).input[0] = "v:1"


def edge_dtype(meta: MetaGraphDef) -> None:
    _read(meta).input[0] = "fixed_row"  # a float32 placeholder where a resource is read


def duplicate_node(meta: MetaGraphDef) -> None:
    meta.graph_def.node.add().CopyFrom(_read(meta))


def node_name(meta: MetaGraphDef) -> None:
    _read(meta).name = "_v_read"


def device(meta: MetaGraphDef) -> None:
    _read(meta).device = "bogus"


def local_device(meta: MetaGraphDef) -> None:
    _read(meta).device = "CPU:0"


def deprecated_op(meta: MetaGraphDef) -> None:
    node = meta.graph_def.node.add()
    node.name = "old"
    node.op = "PlaceholderV2"  # removed at GraphDef version 23
    node.attr["dtype"].type = DataType.DT_FLOAT
    node.attr["shape"].shape.unknown_rank = True


def const_negative_dim(meta: MetaGraphDef) -> None:
    _node(meta, "Const").attr["value"].tensor.tensor_shape.dim.add().size = -1


def unread_const_content(meta: MetaGraphDef) -> None:
    """A constant nothing reads holds 8 bytes for 3 floats: TensorFlow never reads it."""
    node = meta.graph_def.node.add()
    node.name = "table"
    node.op = "Const"
    node.attr["dtype"].type = DataType.DT_FLOAT
    tensor = node.attr["value"].tensor
    tensor.dtype = DataType.DT_FLOAT
    tensor.tensor_shape.dim.add().size = 3
    tensor.tensor_content = b"\0" * 8  # 2 floats for 3


def output_shapes(meta: MetaGraphDef) -> None:
    _read(meta).attr["_output_shapes"].Clear()


def save_call_types(meta: MetaGraphDef) -> None:
    """The saver's save call returns an int32 by its Tout, a string by its function: only a v1
    Saver's save runs it."""
    _node(meta, "StatefulPartitionedCall_4").attr["Tout"].list.type[0] = DataType.DT_INT32


def restore_call_types(meta: MetaGraphDef) -> None:
    """The same of the restore call, which every v1 load runs."""
    _node(meta, "StatefulPartitionedCall_5").attr["Tout"].list.type[0] = DataType.DT_INT32


def gradient(meta: MetaGraphDef) -> None:
    entry = meta.graph_def.library.gradient.add()
    entry.function_name = MASKED
    entry.gradient_func = "no_such_gradient"


def function_name(meta: MetaGraphDef) -> None:
    _copy_function(meta, FIXED, "Mul")


def duplicate_function(meta: MetaGraphDef) -> None:
    _copy_function(meta, FIXED, FIXED)


def different_duplicate_function(meta: MetaGraphDef) -> None:
    copy = _copy_function(meta, FIXED, FIXED)
    next(n for n in copy.node_def if n.name == "Sum").attr["keep_dims"].b = True


def tf1_duplicate_functions(meta: MetaGraphDef) -> None:
    """The TF1 graph gets a library holding one function twice: every loader takes the copy."""
    tf1_uncalled_function(meta)
    meta.graph_def.library.function.add().CopyFrom(meta.graph_def.library.function[0])
    function = meta.graph_def.library.function[0]
    next(n for n in function.node_def if n.name == "double").attr["T"].type = DataType.DT_FLOAT
    meta.graph_def.library.function[1].CopyFrom(function)


# --- corruptions of function bodies ------------------------------------------------------------


def body_unknown_op(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "mul").op = "SurgeryNoSuchOp"


def body_empty_attr(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "mul").attr["_surgery"].Clear()


def body_empty_declared_attr(meta: MetaGraphDef) -> None:
    """`fixed`'s Sum has no value for its type attr: the TF2 loader's import refuses it."""
    _body_node(meta, FIXED, "Sum").attr["T"].Clear()


def body_empty_default_attr(meta: MetaGraphDef) -> None:
    """`fixed`'s Sum has no value for keep_dims (default false): the TF2 loader's import sets the
    default, instantiation fails to bind it."""
    _body_node(meta, FIXED, "Sum").attr["keep_dims"].Clear()


def uncalled_empty_default_attr(meta: MetaGraphDef) -> None:
    """The same in a copy of `fixed` that nothing calls."""
    function = _copy_function(meta, FIXED, "__inference_uncalled_1")
    next(n for n in function.node_def if n.name == "Sum").attr["keep_dims"].Clear()


def body_empty_output_shapes(meta: MetaGraphDef) -> None:
    """A copy of `masked` that nothing calls: its `mul` lists its output shapes with no value."""
    function = _copy_function(meta, MASKED, "__inference_uncalled_1")
    next(n for n in function.node_def if n.name == "mul").attr["_output_shapes"].Clear()


def body_attr_value(meta: MetaGraphDef) -> None:
    """`Sum` reduces along int16 indices (its Tidx allows int32 and int64), and they are int16."""
    indices = _body_node(meta, FIXED, "Sum/reduction_indices")
    indices.attr["dtype"].type = DataType.DT_INT16
    indices.attr["value"].tensor.dtype = DataType.DT_INT16
    _body_node(meta, FIXED, "Sum").attr["Tidx"].type = DataType.DT_INT16


def body_attr_placeholder(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "mul").attr["T"].placeholder = "T"


def body_argument_index(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "mul").input[0] = "a_dense:0"


def body_missing_output(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "sub").input[0] = "mul:output:0"


def body_input_index(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "sub").input[0] = "mul:z:1"


def body_input_count(meta: MetaGraphDef) -> None:
    del _body_node(meta, MASKED, "sub").input[1]


def body_edge_dtype(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "mul").attr["T"].type = DataType.DT_DOUBLE


def body_duplicate_node(meta: MetaGraphDef) -> None:
    _function(meta, MASKED).node_def.add().CopyFrom(_body_node(meta, MASKED, "mul"))


def body_node_name(meta: MetaGraphDef) -> None:
    _body_node(meta, FIXED, "Sum/reduction_indices").name = "_indices"
    sum_node = _body_node(meta, FIXED, "Sum")
    sum_node.input[1] = "_indices:output:0"


def missing_ret(meta: MetaGraphDef) -> None:
    del _function(meta, MASKED).ret["identity"]


def ret_dtype(meta: MetaGraphDef) -> None:
    """`masked` declares its first output float64 and returns a float32."""
    _function(meta, MASKED).signature.output_arg[0].type = DataType.DT_DOUBLE


def control_ret(meta: MetaGraphDef) -> None:
    _function(meta, WRAPPER).control_ret["StatefulPartitionedCall"] = "nowhere"


def call_types(meta: MetaGraphDef) -> None:
    """The wrapper calls `masked` as returning float64 first, and passes that on: only the call
    and its callee disagree."""
    wrapper = _function(meta, WRAPPER)
    _body_node(meta, WRAPPER, "StatefulPartitionedCall").attr["Tout"].list.type[0] = DataType.DT_DOUBLE
    _body_node(meta, WRAPPER, "Identity").attr["T"].type = DataType.DT_DOUBLE
    wrapper.signature.output_arg[0].type = DataType.DT_DOUBLE
    _node(meta, "StatefulPartitionedCall_1").attr["Tout"].list.type[0] = DataType.DT_DOUBLE


def unknown_function(meta: MetaGraphDef) -> None:
    _body_node(meta, WRAPPER, "StatefulPartitionedCall").attr["f"].func.name = "no_such_function"


def recursive(meta: MetaGraphDef) -> None:
    function = _function(meta, MASKED)
    node = function.node_def.add()
    node.name = "again"
    node.op = MASKED  # a function called by name, as an op
    node.input.extend(arg.name for arg in function.signature.input_arg)


def body_deprecated_op(meta: MetaGraphDef) -> None:
    node = _function(meta, MASKED).node_def.add()
    node.name = "old"
    node.op = "PlaceholderV2"
    node.attr["dtype"].type = DataType.DT_FLOAT
    node.attr["shape"].shape.unknown_rank = True


def body_output_shapes(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "mul").attr["_output_shapes"].list.Clear()


def body_device(meta: MetaGraphDef) -> None:
    _body_node(meta, MASKED, "mul").device = "bogus"


def body_const_negative_dim(meta: MetaGraphDef) -> None:
    indices = _body_node(meta, FIXED, "Sum/reduction_indices")
    indices.attr["value"].tensor.tensor_shape.dim.add().size = -1


def body_const_content(meta: MetaGraphDef) -> None:
    """The reduction indices of `fixed` hold 3 bytes for one int32."""
    tensor = _body_node(meta, FIXED, "Sum/reduction_indices").attr["value"].tensor
    tensor.ClearField("int_val")
    tensor.tensor_shape.dim.add().size = 1
    tensor.tensor_content = b"\1\0\0"


def uncalled_ret_dtype(meta: MetaGraphDef) -> None:
    """A copy of `masked` that nothing calls, declaring a float64 output it returns as float32."""
    _copy_function(meta, MASKED, "__inference_uncalled_1").signature.output_arg[0].type = DataType.DT_DOUBLE


def uncalled_edge_dtype(meta: MetaGraphDef) -> None:
    function = _copy_function(meta, MASKED, "__inference_uncalled_1")
    next(n for n in function.node_def if n.name == "mul").attr["T"].type = DataType.DT_DOUBLE


# --- corruptions of the TF1 fixture ------------------------------------------------------------


def default_shape(meta: MetaGraphDef) -> None:
    _node(meta, "input_sparse/shape").attr["shape"].shape.dim[0].size = 3


def default_dtype(meta: MetaGraphDef) -> None:
    """The sparse input's dense shape defaults to an int32 constant, and is declared int64."""
    value = _node(meta, "input_sparse/shape_default").attr["value"].tensor
    value.dtype = DataType.DT_INT32
    value.ClearField("tensor_content")
    value.ClearField("int64_val")
    value.int_val.extend([2, 3])
    _node(meta, "input_sparse/shape_default").attr["dtype"].type = DataType.DT_INT32


def tf1_uncalled_function(meta: MetaGraphDef) -> None:
    """A TF1 graph gets a library function that nothing calls, whose body does not import."""
    function = meta.graph_def.library.function.add()
    function.signature.name = "uncalled"
    arg = function.signature.input_arg.add()
    arg.name = "x"
    arg.type = DataType.DT_FLOAT
    out = function.signature.output_arg.add()
    out.name = "y"
    out.type = DataType.DT_FLOAT
    node = function.node_def.add()
    node.name = "double"
    node.op = "Mul"
    node.input.extend(["x", "x"])
    node.attr["T"].type = DataType.DT_DOUBLE
    function.ret["y"] = "double:z:0"


RULES = [
    pytest.param(
        unknown_op,
        TF2,
        [
            (
                "unknown-op",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': runs op 'WordpieceTokenizeWithOffsets', which "
                    "TensorFlow 2.21.0 does not register (likely from TF Text, pip package "
                    "tensorflow-text), and no function of the library has that name: serve the model "
                    "where the op's library is loaded and pass --allow-op WordpieceTokenizeWithOffsets "
                    "to check it, or remove the node"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="unknown-op",
    ),
    pytest.param(
        missing_attr,
        TF2,
        [
            (
                "missing-attr",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': op 'ReadVariableOp' needs attr 'dtype' "
                    "(type), which the node does not set and the op has no default for: set it"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="missing-attr",
    ),
    pytest.param(
        attr_type,
        TF2,
        [
            (
                "attr-type",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': attr 'dtype' is of type int where the op "
                    "declares type (op 'ReadVariableOp'): set a type value"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="attr-type",
    ),
    pytest.param(
        attr_ref_type,
        TF2,
        [
            (
                "attr-type",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': attr 'dtype' holds the reference type "
                    "float32_ref, which an attr cannot (op 'ReadVariableOp'): set a type value"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="attr-ref-type",
    ),
    pytest.param(
        attr_placeholder,
        TF2,
        [
            (
                "attr-placeholder",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': attr 'dtype' is the placeholder $T, which "
                    "only a function body can hold (its caller binds it): set a value"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="attr-placeholder",
    ),
    pytest.param(
        empty_default_attr,
        TF2,
        [
            (
                "attr-type",
                "error",
                None,
                None,
                "StatefulPartitionedCall_1",
                (
                    "graph, node 'StatefulPartitionedCall_1': attr 'executor_type' has no value "
                    "(<Unknown AttrValue type>) where op 'StatefulPartitionedCall' declares string: set "
                    "a string value or remove the attr (the Python importers use its default, the C++ "
                    "one does not); the C++ loader (TensorFlow Serving) refuses the graph (the Python "
                    "v1 loader reads it)"
                ),
            ),
        ],
        id="empty-default-attr",
    ),
    pytest.param(
        unknown_attr,
        TF2,
        [
            (
                "unknown-attr",
                "warning",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': attr 'surgery_extra' is not declared by op "
                    "'ReadVariableOp'; TensorFlow logs it and ignores it (an attr of a newer "
                    "TensorFlow?): remove it to silence the log"
                ),
            ),
        ],
        id="unknown-attr",
    ),
    pytest.param(
        input_count,
        TF2,
        [
            (
                "input-count",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': op 'ReadVariableOp' takes 1 data input(s) "
                    "[resource] as its attrs are set, the node has 2: fix the inputs, or the attrs that "
                    "count them"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="input-count",
    ),
    pytest.param(
        input_order,
        TF2,
        [
            (
                "input-order",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': data input 'v' follows a control input, and "
                    "TensorFlow wants data inputs first: move the '^' inputs to the end"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="input-order",
    ),
    pytest.param(
        control_input_index,
        TF2,
        [
            (
                "input-form",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': control input '^NoOp:0' has an output index; "
                    "a control input is '^node'"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="control-input-index",
    ),
    pytest.param(
        missing_input,
        TF2,
        [
            (
                "missing-input",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                ("graph, node 'v/Read/ReadVariableOp': input 'no_such_node' names no node of the graph")
                + GRAPH_TAIL,
            ),
        ],
        id="missing-input",
    ),
    pytest.param(
        input_index,
        TF2,
        [
            (
                "input-index",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': input 'v:1' reads output 1 of 'v', which has "
                    "1 output(s)"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="input-index",
    ),
    pytest.param(
        edge_dtype,
        TF2,
        [
            (
                "edge-dtype",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': input 0 ('fixed_row') is float32 where op "
                    "'ReadVariableOp' takes resource: feed it a resource or change the node's type "
                    "attrs"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="edge-dtype",
    ),
    pytest.param(
        duplicate_node,
        TF2,
        [
            (
                "duplicate-node",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                ("graph, node 'v/Read/ReadVariableOp': another node of the graph has this name: rename one")
                + GRAPH_TAIL,
            ),
        ],
        id="duplicate-node",
    ),
    pytest.param(
        node_name,
        TF2,
        [
            (
                "node-name",
                "error",
                None,
                None,
                "_v_read",
                (
                    "graph, node '_v_read': TensorFlow's importer refuses this name (it starts with a "
                    "letter, digit or '.', then has letters, digits, '_', '-', '.', '/'): rename the "
                    "node and its uses"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="node-name",
    ),
    pytest.param(
        device,
        TF2,
        [
            (
                "device",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': device 'bogus': neither TensorFlow's Python "
                    "importer nor its placer can parse it: write it as /device:CPU:0 or clear it"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="device",
    ),
    pytest.param(
        local_device,
        TF2,
        [
            (
                "device",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': device 'CPU:0': TensorFlow's placer cannot "
                    "parse it (only a full name such as /device:CPU:0): write it as /device:CPU:0 or "
                    "clear it; the C++ loader (TensorFlow Serving) refuses the graph (the Python v1 "
                    "loader reads it)"
                ),
            ),
        ],
        id="local-device",
    ),
    pytest.param(
        deprecated_op,
        TF2,
        [
            (
                "deprecated-op",
                "error",
                None,
                None,
                "old",
                (
                    "graph, node 'old': op 'PlaceholderV2' was removed at GraphDef version 23 "
                    "(Placeholder now behaves the same as PlaceholderV2.) and this graph was produced "
                    "at version 2474: replace the op"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="deprecated-op",
    ),
    pytest.param(
        const_negative_dim,
        TF2,
        [
            (
                "const-value",
                "error",
                None,
                None,
                "Const",
                (
                    "graph, node 'Const': its value tensor has an unknown rank or a negative dimension: "
                    "give the tensor its shape"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="const-negative-dim",
    ),
    pytest.param(
        unread_const_content,
        TF2,
        [],
        id="unread-const-content",
    ),
    pytest.param(
        output_shapes,
        TF2,
        [
            (
                "output-shapes",
                "error",
                None,
                None,
                "v/Read/ReadVariableOp",
                (
                    "graph, node 'v/Read/ReadVariableOp': _output_shapes lists 0 shape(s) for 1 "
                    "output(s), which the importer refuses: remove the attr or give every output its "
                    "shape"
                )
                + GRAPH_TAIL,
            ),
        ],
        id="output-shapes",
    ),
    pytest.param(
        save_call_types,
        TF2,
        [
            (
                "unrun-node",
                "warning",
                None,
                None,
                "StatefulPartitionedCall_4",
                (
                    "graph, node 'StatefulPartitionedCall_4': Tout is [int32] but function "
                    "'__inference__traced_save_146' returns [string]: make Tout the function's types "
                    "(call-types); no signature, init or restore op runs this node, so every loader "
                    "loads the model: fix it before anything runs it (a v1 Saver's save runs the save "
                    "call)"
                ),
            ),
        ],
        id="save-call-types",
    ),
    pytest.param(
        restore_call_types,
        TF2,
        [
            (
                "call-types",
                "error",
                None,
                None,
                "StatefulPartitionedCall_5",
                (
                    "graph, node 'StatefulPartitionedCall_5': Tout is [int32] but function "
                    "'__inference__traced_restore_164' returns [string]: make Tout the function's "
                    "types; the v1 and C++ loaders (TensorFlow Serving) fail running it"
                ),
            ),
        ],
        id="restore-call-types",
    ),
    pytest.param(
        gradient,
        TF2,
        [
            (
                "unknown-function",
                "error",
                None,
                None,
                None,
                (
                    "graph: the library's gradient entry names function 'no_such_gradient', which the "
                    "library does not have: remove the entry or add the function; the Python v1 loader "
                    "refuses the graph (TensorFlow Serving's C++ loader reads it)"
                ),
            ),
        ],
        id="gradient",
    ),
    pytest.param(
        function_name,
        TF2,
        [
            (
                "function-name",
                "error",
                None,
                "Mul",
                None,
                (
                    "function 'Mul': TensorFlow registers an op of this name, so its loaders cannot add "
                    "the library to a graph: rename the function and its callers"
                ),
            ),
        ],
        id="function-name",
    ),
    pytest.param(
        duplicate_function,
        TF2,
        [
            (
                "duplicate-function",
                "error",
                None,
                "__inference_fixed_66",
                None,
                (
                    "function '__inference_fixed_66': the library has another function of this name, "
                    "and the TF2 loader refuses the model (the v1 and C++ loaders take an identical "
                    "copy): remove the copy, or rename it and its callers"
                ),
            ),
        ],
        id="duplicate-function",
    ),
    pytest.param(
        different_duplicate_function,
        TF2,
        [
            (
                "duplicate-function",
                "error",
                None,
                "__inference_fixed_66",
                None,
                (
                    "function '__inference_fixed_66': the library has another function of this name, "
                    "and every loader refuses the model (a different function with the same name): "
                    "remove the copy, or rename it and its callers"
                ),
            ),
        ],
        id="different-duplicate-function",
    ),
    pytest.param(
        tf1_duplicate_functions,
        TF1,
        [],
        id="tf1-duplicate-functions",
    ),
    pytest.param(
        body_unknown_op,
        TF2,
        [
            (
                "unknown-op",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': runs op 'SurgeryNoSuchOp', which "
                    "TensorFlow 2.21.0 does not register (a custom op, or a newer TensorFlow's), and no "
                    "function of the library has that name: serve the model where the op's library is "
                    "loaded and pass --allow-op SurgeryNoSuchOp to check it, or remove the node"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-unknown-op",
    ),
    pytest.param(
        body_empty_attr,
        TF2,
        [
            (
                "empty-attr",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': attr '_surgery' has no value "
                    "(<Unknown AttrValue type>), and function instantiation fails to bind it (whether "
                    "or not the op declares it): set a value or remove the attr; the v1 and C++ loaders "
                    "fail instantiating it"
                ),
            ),
        ],
        id="body-empty-attr",
    ),
    pytest.param(
        body_empty_declared_attr,
        TF2,
        [
            (
                "empty-attr",
                "error",
                None,
                "__inference_fixed_66",
                "Sum",
                (
                    "function '__inference_fixed_66', node 'Sum': attr 'T' has no value (<Unknown "
                    "AttrValue type>), and function instantiation fails to bind it (whether or not the "
                    "op declares it): set a value or remove the attr"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-empty-declared-attr",
    ),
    pytest.param(
        body_empty_default_attr,
        TF2,
        [
            (
                "empty-attr",
                "error",
                None,
                "__inference_fixed_66",
                "Sum",
                (
                    "function '__inference_fixed_66', node 'Sum': attr 'keep_dims' has no value "
                    "(<Unknown AttrValue type>), and function instantiation fails to bind it (whether "
                    "or not the op declares it): set a value or remove the attr; the v1 and C++ loaders "
                    "fail instantiating it"
                ),
            ),
        ],
        id="body-empty-default-attr",
    ),
    pytest.param(
        uncalled_empty_default_attr,
        TF2,
        [
            (
                "unused-function",
                "warning",
                None,
                "__inference_uncalled_1",
                "Sum",
                (
                    "function '__inference_uncalled_1', node 'Sum': attr 'keep_dims' has no value "
                    "(<Unknown AttrValue type>), and function instantiation fails to bind it (whether "
                    "or not the op declares it): set a value or remove the attr (empty-attr); no call "
                    "of the v1 graph reaches this function and the TF2 loader does not check this at "
                    "load, so every loader loads the model: fix it before anything calls the function, "
                    "or remove it"
                ),
            ),
        ],
        id="uncalled-empty-default-attr",
    ),
    pytest.param(
        body_empty_output_shapes,
        TF2,
        [
            (
                "unused-function",
                "warning",
                None,
                "__inference_uncalled_1",
                "mul",
                (
                    "function '__inference_uncalled_1', node 'mul': attr '_output_shapes' has no value "
                    "(<Unknown AttrValue type>), and function instantiation fails to bind it (whether "
                    "or not the op declares it): set a value or remove the attr (empty-attr); no call "
                    "of the v1 graph reaches this function and the TF2 loader does not check this at "
                    "load, so every loader loads the model: fix it before anything calls the function, "
                    "or remove it"
                ),
            ),
            (
                "output-shapes",
                "error",
                None,
                "__inference_uncalled_1",
                "mul",
                (
                    "function '__inference_uncalled_1', node 'mul': _output_shapes lists 0 shape(s) for "
                    "1 output(s), which the importer refuses: remove the attr or give every output its "
                    "shape; the TF2 loader refuses the model"
                ),
            ),
        ],
        id="body-empty-output-shapes",
    ),
    pytest.param(
        body_attr_value,
        TF2,
        [
            (
                "attr-value",
                "error",
                None,
                "__inference_fixed_66",
                "Sum",
                (
                    "function '__inference_fixed_66', node 'Sum': attr 'Tidx' is int16, not one of the "
                    "op's allowed values (op 'Sum'): change it"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-attr-value",
    ),
    pytest.param(
        body_attr_placeholder,
        TF2,
        [
            (
                "attr-placeholder",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': attr 'T' is the placeholder $T, "
                    "which the function does not declare, so nothing binds it: set a value"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-attr-placeholder",
    ),
    pytest.param(
        body_argument_index,
        TF2,
        [
            (
                "input-form",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': input 'a_dense:0' is neither an "
                    "argument of the function nor 'node:output_arg:index', the forms the TF2 loader "
                    "reads in a function body (TensorFlow's C++ runtime reads it too); the TF2 loader "
                    "refuses the model"
                ),
            ),
        ],
        id="body-argument-index",
    ),
    pytest.param(
        body_missing_output,
        TF2,
        [
            (
                "missing-input",
                "error",
                None,
                "__inference_masked_46",
                "sub",
                (
                    "function '__inference_masked_46', node 'sub': input 'mul:output:0': op 'Mul' of "
                    "'mul' has no output 'output' (its outputs: z)"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-missing-output",
    ),
    pytest.param(
        body_input_index,
        TF2,
        [
            (
                "input-index",
                "error",
                None,
                "__inference_masked_46",
                "sub",
                (
                    "function '__inference_masked_46', node 'sub': input 'mul:z:1' reads element 1 of "
                    "output 'z' of 'mul', which has 1"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-input-index",
    ),
    pytest.param(
        body_input_count,
        TF2,
        [
            (
                "input-count",
                "error",
                None,
                "__inference_masked_46",
                "sub",
                (
                    "function '__inference_masked_46', node 'sub': op 'Sub' takes 2 data input(s) "
                    "[float32, float32] as its attrs are set, the node has 1: fix the inputs, or the "
                    "attrs that count them"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-input-count",
    ),
    pytest.param(
        body_edge_dtype,
        TF2,
        [
            (
                "edge-dtype",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': input 0 ('a_dense') is float32 where "
                    "op 'Mul' takes float64: feed it a float64 or change the node's type attrs"
                )
                + CALLED_TAIL,
            ),
            (
                "edge-dtype",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': input 1 "
                    "('mul/ReadVariableOp:value:0') is float32 where op 'Mul' takes float64: feed it a "
                    "float64 or change the node's type attrs"
                )
                + CALLED_TAIL,
            ),
            (
                "edge-dtype",
                "error",
                None,
                "__inference_masked_46",
                "sub",
                (
                    "function '__inference_masked_46', node 'sub': input 0 ('mul:z:0') is float64 where "
                    "op 'Sub' takes float32: feed it a float32 or change the node's type attrs"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-edge-dtype",
    ),
    pytest.param(
        body_duplicate_node,
        TF2,
        [
            (
                "duplicate-node",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': another node or argument of the "
                    "function has this name: rename one"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-duplicate-node",
    ),
    pytest.param(
        body_node_name,
        TF2,
        [
            (
                "node-name",
                "error",
                None,
                "__inference_fixed_66",
                "_indices",
                (
                    "function '__inference_fixed_66', node '_indices': TensorFlow's importer refuses "
                    "this name (it starts with a letter, digit or '.', then has letters, digits, '_', "
                    "'-', '.', '/'): rename the node and its uses; the TF2 loader refuses the model"
                ),
            ),
        ],
        id="body-node-name",
    ),
    pytest.param(
        missing_ret,
        TF2,
        [
            (
                "function-ret",
                "error",
                None,
                "__inference_masked_46",
                None,
                (
                    "function '__inference_masked_46': output 'identity' has no ret: map it to a value "
                    "of the body"
                )
                + CALLED_TAIL,
            ),
        ],
        id="missing-ret",
    ),
    pytest.param(
        ret_dtype,
        TF2,
        [
            (
                "call-types",
                "error",
                None,
                "__inference_signature_wrapper_masked_57",
                "StatefulPartitionedCall",
                (
                    "function '__inference_signature_wrapper_masked_57', node "
                    "'StatefulPartitionedCall': Tout is [float32, float32] but function "
                    "'__inference_masked_46' returns [float64, float32]: make Tout the function's "
                    "types; the v1 and C++ loaders fail instantiating it"
                ),
            ),
            (
                "function-ret",
                "error",
                None,
                "__inference_masked_46",
                None,
                (
                    "function '__inference_masked_46': ret 'identity' is 'Identity:output:0', a "
                    "float32, where the output is declared float64: return a float64; the v1 and C++ "
                    "loaders fail instantiating it"
                ),
            ),
        ],
        id="ret-dtype",
    ),
    pytest.param(
        control_ret,
        TF2,
        [
            (
                "function-ret",
                "error",
                None,
                "__inference_signature_wrapper_masked_57",
                None,
                (
                    "function '__inference_signature_wrapper_masked_57': control_ret "
                    "'StatefulPartitionedCall' is 'nowhere', which names no node of the body; the TF2 "
                    "loader refuses the model"
                ),
            ),
        ],
        id="control-ret",
    ),
    pytest.param(
        call_types,
        TF2,
        [
            (
                "call-output-dtype",
                "warning",
                "masked",
                None,
                None,
                "output 'alpha': signature says float32, StatefulPartitionedCall_1:0 is float64",
            ),
            (
                "call-types",
                "error",
                None,
                "__inference_signature_wrapper_masked_57",
                "StatefulPartitionedCall",
                (
                    "function '__inference_signature_wrapper_masked_57', node "
                    "'StatefulPartitionedCall': Tout is [float64, float32] but function "
                    "'__inference_masked_46' returns [float32, float32]: make Tout the function's "
                    "types; the v1 and C++ loaders fail instantiating it"
                ),
            ),
        ],
        id="call-types",
    ),
    pytest.param(
        unknown_function,
        TF2,
        [
            (
                "unknown-function",
                "error",
                None,
                "__inference_signature_wrapper_masked_57",
                "StatefulPartitionedCall",
                (
                    "function '__inference_signature_wrapper_masked_57', node "
                    "'StatefulPartitionedCall': attr 'f' names function 'no_such_function', which the "
                    "library does not have: add the function or point the attr at one that exists"
                )
                + CALLED_TAIL,
            ),
        ],
        id="unknown-function",
    ),
    pytest.param(
        recursive,
        TF2,
        [
            (
                "recursive-function",
                "error",
                None,
                "__inference_masked_46",
                None,
                (
                    "function '__inference_masked_46' calls itself by name, and a TensorFlow function "
                    "cannot recurse: write a loop; the C++ loader (TensorFlow Serving) refuses the "
                    "model at load; the TF2 loader refuses it (a cyclic dependency between functions)"
                ),
            ),
        ],
        id="recursive",
    ),
    pytest.param(
        body_deprecated_op,
        TF2,
        [
            (
                "deprecated-op",
                "error",
                None,
                "__inference_masked_46",
                "old",
                (
                    "function '__inference_masked_46', node 'old': op 'PlaceholderV2' was removed at "
                    "GraphDef version 23 (Placeholder now behaves the same as PlaceholderV2.) and the "
                    "TF2 loader imports function bodies at TensorFlow's current GraphDef version: "
                    "replace the op; the TF2 loader refuses the model"
                ),
            ),
        ],
        id="body-deprecated-op",
    ),
    pytest.param(
        body_output_shapes,
        TF2,
        [
            (
                "output-shapes",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': _output_shapes lists 0 shape(s) for "
                    "1 output(s), which the importer refuses: remove the attr or give every output its "
                    "shape; the TF2 loader refuses the model"
                ),
            ),
        ],
        id="body-output-shapes",
    ),
    pytest.param(
        body_device,
        TF2,
        [
            (
                "device",
                "error",
                None,
                "__inference_masked_46",
                "mul",
                (
                    "function '__inference_masked_46', node 'mul': device 'bogus': neither TensorFlow's "
                    "Python importer nor its placer can parse it: write it as /device:CPU:0 or clear it"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-device",
    ),
    pytest.param(
        body_const_negative_dim,
        TF2,
        [
            (
                "const-value",
                "error",
                None,
                "__inference_fixed_66",
                "Sum/reduction_indices",
                (
                    "function '__inference_fixed_66', node 'Sum/reduction_indices': its value tensor "
                    "has an unknown rank or a negative dimension: give the tensor its shape"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-const-negative-dim",
    ),
    pytest.param(
        body_const_content,
        TF2,
        [
            (
                "const-value",
                "error",
                None,
                "__inference_fixed_66",
                "Sum/reduction_indices",
                (
                    "function '__inference_fixed_66', node 'Sum/reduction_indices': its value holds 3 "
                    "bytes for 1 int32 element(s) of 4 byte(s), which TensorFlow cannot read: rewrite "
                    "the constant"
                )
                + CALLED_TAIL,
            ),
        ],
        id="body-const-content",
    ),
    pytest.param(
        uncalled_ret_dtype,
        TF2,
        [
            (
                "unused-function",
                "warning",
                None,
                "__inference_uncalled_1",
                None,
                (
                    "function '__inference_uncalled_1': ret 'identity' is 'Identity:output:0', a "
                    "float32, where the output is declared float64: return a float64 (function-ret); no "
                    "call of the v1 graph reaches this function and the TF2 loader does not check this "
                    "at load, so every loader loads the model: fix it before anything calls the "
                    "function, or remove it"
                ),
            ),
        ],
        id="uncalled-ret-dtype",
    ),
    pytest.param(
        uncalled_edge_dtype,
        TF2,
        [
            (
                "edge-dtype",
                "error",
                None,
                "__inference_uncalled_1",
                "mul",
                (
                    "function '__inference_uncalled_1', node 'mul': input 0 ('a_dense') is float32 "
                    "where op 'Mul' takes float64: feed it a float64 or change the node's type attrs; "
                    "the TF2 loader refuses the model; the v1 and C++ loaders (TensorFlow Serving) "
                    "never run this function"
                ),
            ),
            (
                "edge-dtype",
                "error",
                None,
                "__inference_uncalled_1",
                "mul",
                (
                    "function '__inference_uncalled_1', node 'mul': input 1 "
                    "('mul/ReadVariableOp:value:0') is float32 where op 'Mul' takes float64: feed it a "
                    "float64 or change the node's type attrs; the TF2 loader refuses the model; the v1 "
                    "and C++ loaders (TensorFlow Serving) never run this function"
                ),
            ),
            (
                "edge-dtype",
                "error",
                None,
                "__inference_uncalled_1",
                "sub",
                (
                    "function '__inference_uncalled_1', node 'sub': input 0 ('mul:z:0') is float64 "
                    "where op 'Sub' takes float32: feed it a float32 or change the node's type attrs; "
                    "the TF2 loader refuses the model; the v1 and C++ loaders (TensorFlow Serving) "
                    "never run this function"
                ),
            ),
        ],
        id="uncalled-edge-dtype",
    ),
    pytest.param(
        default_shape,
        TF1,
        [
            (
                "placeholder-default",
                "error",
                None,
                None,
                "input_sparse/shape",
                (
                    "graph, node 'input_sparse/shape': its default 'input_sparse/shape_default' has "
                    "shape [2], its shape attr says [3], which TensorFlow's shape inference refuses: "
                    "make them agree; TensorFlow's loaders refuse the graph"
                ),
            ),
        ],
        id="default-shape",
    ),
    pytest.param(
        default_dtype,
        TF1,
        [
            (
                "placeholder-default",
                "error",
                None,
                None,
                "input_sparse/shape",
                (
                    "graph, node 'input_sparse/shape': its default 'input_sparse/shape_default' is "
                    "int32, its dtype attr int64: make them agree; TensorFlow's loaders refuse the "
                    "graph"
                ),
            ),
        ],
        id="default-dtype",
    ),
    pytest.param(
        tf1_uncalled_function,
        TF1,
        [
            (
                "edge-dtype",
                "error",
                None,
                "uncalled",
                "double",
                (
                    "function 'uncalled', node 'double': input 0 ('x') is float32 where op 'Mul' takes "
                    "float64: feed it a float64 or change the node's type attrs; the TF2 loader refuses "
                    "the model; the v1 and C++ loaders (TensorFlow Serving) never run this function"
                ),
            ),
            (
                "edge-dtype",
                "error",
                None,
                "uncalled",
                "double",
                (
                    "function 'uncalled', node 'double': input 1 ('x') is float32 where op 'Mul' takes "
                    "float64: feed it a float64 or change the node's type attrs; the TF2 loader refuses "
                    "the model; the v1 and C++ loaders (TensorFlow Serving) never run this function"
                ),
            ),
            (
                "unused-function",
                "warning",
                None,
                "uncalled",
                None,
                (
                    "function 'uncalled': ret 'y' is 'double:z:0', a float64, where the output is "
                    "declared float32: return a float32 (function-ret); no call of the v1 graph reaches "
                    "this function and the TF2 loader does not check this at load, so every loader "
                    "loads the model: fix it before anything calls the function, or remove it"
                ),
            ),
        ],
        id="tf1-uncalled-function",
    ),
]


VERDICTS: dict[str, tuple[str, str, str]] = {
    # What (tf2, v1, cc) make of each corruption: `load` (the loader refuses the model), `run`
    # (it loads the model and the signature fails), `crash` (TensorFlow dies), `same` (it loads the
    # model and the signature computes what it did).
    "unknown_op": ("same", "load", "load"),
    "missing_attr": ("same", "load", "load"),
    "attr_type": ("same", "load", "load"),
    "attr_ref_type": ("same", "load", "load"),
    "attr_placeholder": ("same", "load", "load"),
    "unknown_attr": ("same", "same", "same"),
    "empty_default_attr": ("same", "same", "load"),
    "input_count": ("same", "load", "load"),
    "input_order": ("same", "load", "load"),
    "control_input_index": ("same", "load", "load"),
    "missing_input": ("same", "load", "load"),
    "input_index": ("same", "load", "load"),
    "edge_dtype": ("same", "load", "load"),
    "duplicate_node": ("same", "load", "load"),
    "node_name": ("same", "load", "load"),
    "device": ("same", "load", "load"),
    "local_device": ("same", "same", "load"),
    "deprecated_op": ("same", "load", "load"),
    "const_negative_dim": ("same", "load", "load"),
    "unread_const_content": ("same", "same", "same"),
    "output_shapes": ("same", "load", "load"),
    "gradient": ("same", "load", "same"),
    "save_call_types": ("same", "same", "same"),
    "restore_call_types": ("same", "load", "load"),
    "function_name": ("load", "load", "load"),
    "duplicate_function": ("load", "same", "same"),
    "different_duplicate_function": ("load", "load", "load"),
    "tf1_duplicate_functions": ("same", "same", "same"),
    "body_unknown_op": ("load", "load", "load"),
    "body_empty_attr": ("run", "load", "load"),
    "body_empty_declared_attr": ("load", "load", "load"),
    "body_empty_default_attr": ("same", "load", "load"),
    "uncalled_empty_default_attr": ("same", "same", "same"),
    "body_empty_output_shapes": ("load", "same", "same"),
    "body_attr_value": ("load", "load", "load"),
    "body_attr_placeholder": ("load", "load", "load"),
    "body_argument_index": ("load", "same", "same"),
    "body_missing_output": ("load", "load", "load"),
    "body_input_index": ("load", "load", "load"),
    "body_input_count": ("load", "load", "load"),
    "body_edge_dtype": ("load", "load", "load"),
    "body_duplicate_node": ("load", "load", "load"),
    "body_node_name": ("load", "same", "same"),
    "missing_ret": ("load", "load", "load"),
    "ret_dtype": ("same", "load", "load"),
    "control_ret": ("load", "same", "same"),
    "call_types": ("run", "run", "run"),
    "unknown_function": ("load", "run", "run"),
    "recursive": ("load", "crash", "load"),
    "body_deprecated_op": ("load", "same", "same"),
    "body_output_shapes": ("load", "same", "same"),
    "body_device": ("load", "run", "run"),
    "body_const_negative_dim": ("load", "load", "load"),
    "body_const_content": ("load", "load", "load"),
    "uncalled_ret_dtype": ("same", "same", "same"),
    "uncalled_edge_dtype": ("load", "same", "same"),
    "default_shape": ("load", "load", "load"),
    "default_dtype": ("load", "load", "load"),
    "tf1_uncalled_function": ("load", "same", "same"),
}

PROBE = {"signature": "__surgery_validate_probe__", "inputs": {}}
"""A case for a signature no model has: a loader that says so has loaded the model."""


def _corrupted(fixture: str, corrupt: Corruption) -> surgery.Model:
    model = surgery.load(FIXTURES / fixture)
    corrupt(model.proto.meta_graphs[0])
    return model


def _findings(model: surgery.Model, **kwargs: Any) -> list[Finding]:
    report = check(model, **kwargs)
    return [(f.code, f.severity, f.signature, f.function, f.node, f.message) for f in report.findings]


def _case(fixture: str) -> dict[str, Any]:
    """A recorded case of the signature the corruptions touch (`masked`; `sparse_sum` in TF1)."""
    signature = "masked" if fixture == TF2 else "sparse_sum"
    return next(c for c in expected_cases(fixture) if c["signature"] == signature and "loaders" not in c)


def _verdict(oracle: Oracle, model: Path, loader: str, case: dict[str, Any]) -> str:
    response = oracle.request(op="run", model=str(model), loader=loader, cases=[PROBE, case])
    if not response["ok"]:
        assert response["error"].startswith("OracleCrash"), response["error"]
        return "crash"
    probe, result = response["results"]
    if PROBE["signature"] not in probe.get("error", ""):
        return "load"
    if "error" in result:
        return "run"
    assert_outputs(result, case["outputs"])
    return "same"


# --- the rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(("corrupt", "fixture", "expected"), RULES)
def test_rule(corrupt: Corruption, fixture: str, expected: list[Finding]) -> None:
    """One corruption gives exactly these findings: code, severity, where, and the message."""
    model = _corrupted(fixture, corrupt)
    assert _findings(model) == expected
    assert check(model).ok == all(severity == "warning" for _, severity, *_ in expected)


@pytest.mark.parametrize(("corrupt", "fixture", "expected"), RULES)
def test_tensorflow_agrees(
    oracle: Oracle, tmp_path: Path, corrupt: Corruption, fixture: str, expected: list[Finding]
) -> None:
    """What the three loaders do with the corrupted model, and that `check` calls it an error
    exactly when one of them refuses it (at load, or running the signature)."""
    out = tmp_path / "corrupted"
    surgery.save(_corrupted(fixture, corrupt), out)
    case = _case(fixture)
    verdicts = tuple(_verdict(oracle, out, loader, case) for loader in ("tf2", "v1", "cc"))
    assert verdicts == VERDICTS[corrupt.__name__]
    errors = [finding for finding in expected if finding[1] == "error"]
    assert bool(errors) == (verdicts != ("same", "same", "same"))


def test_every_rule_is_proven() -> None:
    """Every corruption has TensorFlow's verdicts, and every code a corruption that shows it with
    its severity (`unused-function`: an error no loader meets is a warning)."""
    names = {param.values[0].__name__ for param in RULES}  # type: ignore[union-attr]
    assert names == set(VERDICTS)
    shown = {(code, severity) for param in RULES for code, severity, *_ in param.values[2]}  # type: ignore[union-attr]
    assert {(code, VALIDATOR_SEVERITIES[code]) for code in VALIDATOR_SEVERITIES} <= shown
    assert all(SEVERITIES[code] == severity for code, severity in VALIDATOR_SEVERITIES.items())


# --- allowing a custom op ----------------------------------------------------------------------


def test_an_allowed_op_is_accepted_as_it_is(tmp_path: Path) -> None:
    """`allow_ops` (`check --allow-op NAME`) accepts an op a custom-op library registers on the
    serving side: its node is not checked, and nothing else changes."""
    model = _corrupted(TF2, unknown_op)
    assert _findings(model, allow_ops={"WordpieceTokenizeWithOffsets"}) == []
    assert [f[0] for f in _findings(model, allow_ops={"CaseFoldUTF8"})] == ["unknown-op"]
    out = tmp_path / "text_model"
    surgery.save(model, out)
    refused = run_cli("check", out)
    assert refused.returncode == 1
    assert "--allow-op WordpieceTokenizeWithOffsets" in refused.stdout
    accepted = run_cli(
        "check", out, "--allow-op", "CaseFoldUTF8", "--allow-op", "WordpieceTokenizeWithOffsets"
    )
    assert (accepted.returncode, accepted.stdout) == (0, f"{out}: ok\n")


@pytest.mark.parametrize(
    ("op", "library"),
    [
        ("WordpieceTokenizeWithOffsets", "TF Text, pip package tensorflow-text"),
        ("SentencepieceOp", "TF Text, pip package tensorflow-text"),
        ("TFText>FastWordpieceTokenizeWithOffsets", "TF Text, pip package tensorflow-text"),
        ("SentencepieceEncodeSparse", "SentencePiece, pip package tf-sentencepiece or tensorflow-text"),
        ("Addons>GatherTree", "TF Addons, pip package tensorflow-addons"),
        ("IO>DecodeJSON", "TF I/O, pip package tensorflow-io"),
        ("SimpleMLInferenceOpWithHandle", "TF Decision Forests, pip package tensorflow-decision-forests"),
        ("MyCustomOp", None),
    ],
)
def test_the_likely_custom_op_library(op: str, library: str | None) -> None:
    assert custom_op_library(op) == library


# --- what check reports ------------------------------------------------------------------------


def test_check_json_names_the_function_and_node(tmp_path: Path) -> None:
    """`check --json`: a validator finding has the function and node it is in; the places
    defining a signature have neither (null)."""
    out = tmp_path / "model"
    surgery.save(_corrupted(TF2, call_types), out)
    result = run_cli("check", out, "--json")
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert [(f["code"], f["function"], f["node"]) for f in findings] == [
        ("call-output-dtype", None, None),
        ("call-types", WRAPPER, "StatefulPartitionedCall"),
    ]


def test_a_finding_the_signature_checks_make_is_not_repeated() -> None:
    """A signature call node whose Tin disagrees with its wrapper: `call-node` and
    `call-input-dtype` say it, not the validator's `call-types` and `edge-dtype` again."""
    model = surgery.load(FIXTURES / TF2)
    _node(model.proto.meta_graphs[0], "StatefulPartitionedCall_1").attr["Tin"].list.type[0] = (
        DataType.DT_DOUBLE
    )
    assert sorted(f[0] for f in _findings(model)) == ["call-input-dtype", "call-node"]


# --- never reading what a lazily read model left on disk ---------------------------------------


def test_constants_left_on_disk_are_checked_by_dtype_and_shape_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every constant's bytes left on disk, every fixture validates clean and its constants
    stay on disk; a constant read whose contents are on disk is checked by dtype and shape, and
    its bytes are not read (the hole's token is not taken for its contents)."""
    model = surgery.load(FIXTURES / TF2)
    meta = model.proto.meta_graphs[0]
    table = meta.graph_def.node.add()
    table.name, table.op = "table", "Const"
    table.attr["dtype"].type = DataType.DT_FLOAT
    tensor = table.attr["value"].tensor
    tensor.dtype = DataType.DT_FLOAT
    tensor.tensor_shape.dim.add().size = 100
    tensor.tensor_content = bytes(400)
    reader = meta.graph_def.node.add()
    reader.name, reader.op = "table/read", "Identity"
    reader.input.append("table")
    reader.attr["T"].type = DataType.DT_FLOAT
    surgery.save(model, tmp_path / "table")
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)
    for path in [*(p for p in sorted(FIXTURES.iterdir()) if p.is_dir()), tmp_path / "table"]:
        model = surgery.load(path)
        spans = len(model.holes.spans) if model.holes is not None else 0
        assert check(model).findings == [], path.name
        assert (len(model.holes.spans) if model.holes is not None else 0) == spans
    meta = model.proto.meta_graphs[0]
    assert lazy.is_hole(_node(meta, "table").attr["value"].tensor.tensor_content)
    _node(meta, "table").attr["dtype"].type = DataType.DT_INT32
    _node(meta, "table/read").attr["T"].type = DataType.DT_INT32
    assert [f[:5] for f in _findings(model)] == [("const-value", "error", None, None, "table")]


# --- the edit path -----------------------------------------------------------------------------


def test_an_edit_that_adds_a_validator_error_is_refused(tmp_path: Path) -> None:
    """Every edit compares `check` before and after: a new graph error refuses it, nothing written."""
    out = tmp_path / "out"
    with pytest.raises(surgery.ConsistencyError, match="missing-input: graph, node 'v/Read/ReadVariableOp'"):
        edit_model(FIXTURES / TF2, lambda model: missing_input(model.proto.meta_graphs[0]), out)
    assert not out.exists()


def test_an_edit_that_adds_a_validator_warning_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.warns(surgery.SurgeryWarning, match="unknown-attr: graph, node 'v/Read/ReadVariableOp'"):
        edit_model(FIXTURES / TF2, lambda model: unknown_attr(model.proto.meta_graphs[0]), out)
    assert [f[0] for f in _findings(surgery.load(out))] == ["unknown-attr"]


def test_a_model_with_a_custom_op_can_still_be_edited(tmp_path: Path) -> None:
    """An error the model already has is not the edit's: renaming a signature of a model with a
    custom op is written, and the op is still reported."""
    model = tmp_path / "text_model"
    surgery.save(_corrupted(TF2, unknown_op), model)
    out = tmp_path / "out"
    result = run_cli("rename-signature", model, "masked", "scored", "-o", out)
    assert result.returncode == 0, result.stderr
    assert [f[0] for f in _findings(surgery.load(out))] == ["unknown-op"]


# --- models TensorFlow wrote -------------------------------------------------------------------

REALWORLD = ROOT.parent / "shared" / "realworld"


def _realworld() -> list[Path]:
    return sorted(p for p in REALWORLD.glob("*/*") if p.is_dir()) if REALWORLD.is_dir() else []


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_every_fixture_validates(name: str) -> None:
    meta_graphs = surgery.load(FIXTURES / name).proto.meta_graphs
    assert [issue for meta in meta_graphs for issue in validate(meta)] == []


@pytest.mark.parametrize("path", _realworld(), ids=lambda p: p.name)
def test_every_real_world_model_validates(path: Path) -> None:
    """Models TensorFlow wrote and TF Serving serves (TF 1.0 to 2.15, GPU and TensorRT variants,
    TF-Agents, TFX): the validator finds nothing in them."""
    meta_graphs = surgery.load(path).proto.meta_graphs
    assert [issue for meta in meta_graphs for issue in validate(meta)] == []


def test_the_real_world_models_are_there() -> None:
    if not REALWORLD.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {REALWORLD} is missing", pytrace=False)
        pytest.skip(f"{REALWORLD} is missing")
    assert len(_realworld()) >= 25


@pytest.mark.parametrize(
    "device",
    [
        "/job:localhost/replica:0/task:0/device:CPU:0",
        "/device:GPU:0",
        "/device:GPU:*",
        "/cpu:0",
        "/GPU:1",
        "/job:worker/task:3",
        "/device:TPU_SYSTEM:0",
        "/",
    ],
)
def test_devices_tensorflow_writes_are_accepted(device: str) -> None:
    model = surgery.load(FIXTURES / TF2)
    _read(model.proto.meta_graphs[0]).device = device
    assert _findings(model) == []


HALF_PLUS_TWO = REALWORLD / "tfserving" / "servables__tensorflow__saved_model_half_plus_two_cpu__00000123"
"""A TF1 model TensorFlow Serving's tests serve: `classify_x_to_y` parses a tf.Example."""


def _without_sparse_types(meta: MetaGraphDef) -> str:
    """Clears ParseExample's `sparse_types` (list(type), no default) to no value; its name."""
    node = next(n for n in meta.graph_def.node if n.op == "ParseExample")
    node.attr["sparse_types"].Clear()
    return node.name


@pytest.mark.parametrize("reached", [True, False], ids=["reached", "unreached"])
def test_an_empty_list_attr_of_a_tf1_graph_fails_only_the_tf2_loader(
    oracle: Oracle, tmp_path: Path, reached: bool
) -> None:
    """A list attr with no default and no value: the v1 and C++ loaders read an empty list, the
    TF2 loader prunes the signature into a function whose instantiation cannot bind it. An error
    where a signature reaches the node, a warning where nothing runs it."""
    if not HALF_PLUS_TWO.is_dir():
        pytest.skip(f"{HALF_PLUS_TWO} is missing")
    model = surgery.load(HALF_PLUS_TWO)
    meta = model.proto.meta_graphs[0]
    node = _without_sparse_types(meta)
    if not reached:  # the signatures that parse a tf.Example go
        parsing = [
            key
            for key, signature in meta.signature_def.items()
            if any(info.dtype == DataType.DT_STRING for info in signature.inputs.values())
        ]
        for key in parsing:
            del meta.signature_def[key]
    message = (
        f"graph, node {node!r}: attr 'sparse_types' has no value (<Unknown AttrValue type>) where op "
        "'ParseExample' declares list(type) with no default: set it to an empty list"
    )
    if reached:
        expected = [
            (
                "empty-attr",
                "error",
                None,
                None,
                node,
                message + "; the TF2 loader fails running it (it prunes the signature into a function, which "
                "cannot bind the attr); the v1 and C++ loaders (TensorFlow Serving) read it",
            )
        ]
    else:
        expected = [
            (
                "unrun-node",
                "warning",
                None,
                None,
                node,
                message + " (empty-attr); no signature, init or restore op runs this node, so every loader "
                "loads the model: fix it before anything runs it (a v1 Saver's save runs the save call)",
            )
        ]
    assert _findings(model) == expected
    out = tmp_path / "corrupted"
    surgery.save(model, out)
    if not reached:
        return
    case = {
        "signature": "classify_x_to_y",
        "inputs": {"inputs": {"dtype": "string", "tf_examples": [{"x": {"float_list": [3.0]}}]}},
        "outputs": {"scores": {"dtype": "float32", "shape": [1, 1], "value": [[3.5]]}},
    }
    verdicts = tuple(_verdict(oracle, out, loader, case) for loader in ("tf2", "v1", "cc"))
    assert verdicts == ("run", "same", "same")
