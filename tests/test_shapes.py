"""The shape rules set-shape walks the graph with, on small hand-made graphs.

The oracle tier (test_tensor_edits.py) proves the edits in TensorFlow; these pin down each rule,
including ones no fixture exercises (Reshape to a constant, BiasAdd, transposed MatMul, Conv2D).
"""

from __future__ import annotations

import pytest

from surgery.errors import EditError
from surgery.schema import MetaGraphDef, NodeDef
from surgery.shapes import check_shape_change, compatible, more_specific
from surgery.tensors import Shape, shape_to_proto


def _node(name: str, op: str, *inputs: str, shape: Shape | bool = False, **attrs: object) -> NodeDef:
    node = NodeDef(name=name, op=op, input=list(inputs))
    if shape is not False:
        node.attr["_output_shapes"].list.shape.add().CopyFrom(shape_to_proto(shape))  # type: ignore[arg-type]
    for key, value in attrs.items():
        if isinstance(value, bool):
            node.attr[key].b = value
        elif isinstance(value, list):
            tensor = node.attr[key].tensor
            tensor.dtype = 3  # DT_INT32
            tensor.tensor_shape.dim.add().size = len(value)
            tensor.int_val.extend(value)
    return node


def _graph(*nodes: NodeDef) -> tuple[MetaGraphDef, NodeDef]:
    meta = MetaGraphDef()
    x = _node("x", "Placeholder", shape=(1, 4))
    meta.graph_def.node.extend([x, *nodes])
    return meta, meta.graph_def.node[0]


def _check(meta: MetaGraphDef, node: NodeDef, new: Shape, old: Shape = (1, 4)) -> str | None:
    return check_shape_change(meta, node, None, 0, old, new, False, False)


def test_reshape_to_a_constant_shape_holds_only_one_batch() -> None:
    meta, x = _graph(_node("c", "Const", value=[1, 4]), _node("r", "Reshape", "x", "c"))
    with pytest.raises(EditError, match=r"Reshape node 'r' reshapes it to the constant shape \(1, 4\)"):
        _check(meta, x, (-1, 4))
    with pytest.raises(EditError, match=r"cannot reshape 8 values to \(1, 4\)"):
        _check(meta, x, (2, 4))


def test_reshape_with_an_inferred_dim_follows_the_batch() -> None:
    meta, x = _graph(
        _node("c", "Const", value=[-1, 2]),
        _node("r", "Reshape", "x", "c"),
        _node("w", "Const", shape=(2,)),
        _node("add", "AddV2", "r", "w"),
        _node("v", "Const", shape=(3,)),
        _node("bad", "AddV2", "add", "v"),
    )
    with pytest.raises(
        EditError, match=r"AddV2 node 'bad' combines it with a tensor of shape \(3\): dims 2 and 3"
    ):
        _check(meta, x, (-1, 4))  # reshaped to (-1, 2), plus w[2]: (-1, 2), plus v[3]: 2 and 3 clash
    meta, x = _graph(_node("c", "Const", value=[-1, 2]), _node("r", "Reshape", "x", "c"))
    with pytest.raises(EditError, match=r"cannot reshape 5 values to \(-1, 2\)"):
        _check(meta, x, (1, 5), old=(1, 4))


def test_bias_add_needs_its_last_dim() -> None:
    meta, x = _graph(_node("b", "Const", shape=(4,)), _node("ba", "BiasAdd", "x", "b"))
    assert _check(meta, x, (-1, 4)) is None
    with pytest.raises(EditError, match="BiasAdd node 'ba' adds a bias of 4 values to its last dim"):
        _check(meta, x, (1, 5))


def test_matmul_contracts_the_transposed_dim() -> None:
    weights = _node("w", "Const", shape=(3, 4))
    meta, x = _graph(weights, _node("mm", "MatMul", "x", "w", transpose_b=True))
    assert _check(meta, x, (-1, 4)) is None
    with pytest.raises(EditError, match=r"multiplies it by a matrix of shape \(3, 4\): 3 != 4"):
        _check(meta, x, (-1, 3))
    with pytest.raises(EditError, match="MatMul node 'mm' needs a rank-2 input, not rank 3"):
        _check(meta, x, (-1, 2, 4))


def test_conv2d_is_rank_specific() -> None:
    meta, x = _graph(_node("f", "Const", shape=(3, 3, 4, 8)), _node("conv", "Conv2D", "x", "f"))
    with pytest.raises(EditError, match="Conv2D node 'conv' needs a rank-4 input, not rank 2"):
        _check(meta, x, (-1, 4))
    assert "could not be verified" in (_check(meta, x, (-1, 8, 8, 4), old=(1, 8, 8, 4)) or "")


def test_an_op_without_a_rule_warns_and_a_tightening_needs_no_walk() -> None:
    meta, x = _graph(_node("t", "TopKV2", "x", "k"))
    note = _check(meta, x, (-1, 4))
    assert note is not None and "past TopKV2 could not be verified" in note
    assert _check(meta, x, (1, 4), old=(-1, 4)) is None


def test_a_tensor_combined_with_itself_is_not_judged_by_its_old_shape() -> None:
    meta, x = _graph(_node("sq", "Mul", "x", "x", shape=(1, 4)))
    note = _check(meta, x, (-1, 5))
    assert note is not None and "Mul" in note


@pytest.mark.parametrize(
    ("a", "b", "compatible_", "a_tightens_b"),
    [
        ((1, 4), (-1, 4), True, True),
        ((-1, 4), (1, 4), True, False),
        ((1, 4), (1, 5), False, False),
        ((1, 4), None, True, True),
        (None, (1, 4), True, False),
        ((), (), True, True),
        ((4,), (1, 4), False, False),
    ],
)
def test_compatible_and_more_specific(a: Shape, b: Shape, compatible_: bool, a_tightens_b: bool) -> None:
    assert compatible(a, b) is compatible_
    assert more_specific(a, b) is a_tightens_b
