"""`graph_diff` and the graph-level section of `diff` and `--dry-run`: every edit's graph changes.

The signature level (`diff`) says what a client sees; the graph level says what runs: nodes of the
v1 graph and of each function, the functions' arguments, the object graph. Each edit's changes
are checked on the fixtures, a lazily read model is checked to compare as one read whole (without
its constants read into memory), and a signature renamed and edited in one plan to show as the
rename plus the edit.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import random
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import surgery
import surgery.reports
from conftest import FIXTURE_NAMES, FIXTURES, copy_fixture
from surgery import lazy
from surgery.cli import main
from surgery.model import Model
from surgery.reports import GraphChange
from surgery.runner import preview_edit
from surgery.schema import DataType

Edit = Callable[[Model], Model]
GRAPH_CHANGES = importlib.import_module("surgery.graph_changes")


def _copy(model: Model) -> Model:
    """An in-memory copy to edit (the holes of a lazily read model are shared, as --dry-run does)."""
    proto = type(model.proto)()
    proto.CopyFrom(model.proto)
    return dataclasses.replace(model, proto=proto)


def _edited(path: Path, edit: Edit) -> tuple[Model, Model]:
    before = surgery.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", surgery.SurgeryWarning)
        return before, edit(_copy(before))


def _rows(changes: list[GraphChange]) -> list[tuple[str, str, str, str, str]]:
    """(tags, scope with a function's name cut to `function`, kind, name, detail) of each change."""
    return [(",".join(c.tags), c.scope.split(":")[0], c.kind, c.name, c.detail) for c in changes]


def _find(changes: list[GraphChange], scope: str, kind: str, name: str | None = None) -> list[GraphChange]:
    return [
        c
        for c in changes
        if c.scope.split(":")[0] == scope and c.kind == kind and (name is None or c.name == name)
    ]


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- each edit's graph-level changes --------------------------------------------------------------


def test_set_dtype_of_an_input_tf2(tmp_path: Path) -> None:
    """The placeholder's dtype and the call node's Tin change; the wrapper function gains a Cast."""
    before, after = _edited(
        copy_fixture("module_multi", tmp_path), lambda m: surgery.set_dtype(m, "fixed", "row", "float16")
    )
    changes = surgery.graph_diff(before, after)
    (placeholder,) = _find(changes, "graph", "node-changed", "fixed_row")
    assert placeholder.detail == "attr dtype: float32 -> float16"
    (call,) = _find(changes, "graph", "node-changed", "StatefulPartitionedCall")
    assert call.detail == "attr Tin: [float32, resource] -> [float16, resource]"
    (cast,) = _find(changes, "function", "node-added")
    assert cast.detail == "Cast(row)" and cast.scope.startswith(
        "function:__inference_signature_wrapper_fixed"
    )
    (arg,) = _find(changes, "function", "arg-changed", "row")
    assert arg.detail == "#0 row: float32 -> float16"
    (rerouted,) = _find(changes, "function", "node-changed", "StatefulPartitionedCall")
    assert rerouted.detail.startswith(f"input 0: row -> {cast.name}")
    (spec,) = _find(changes, "object-graph", "concrete-function-changed")
    assert "dtype=tf.float32" in spec.detail and "dtype=tf.float16" in spec.detail
    assert not _find(changes, "graph", "node-added")
    assert {c.tags[0] for c in changes} == {"serve"}


def test_set_dtype_of_an_output_tf2(tmp_path: Path) -> None:
    before, after = _edited(
        copy_fixture("module_multi", tmp_path),
        lambda m: surgery.set_dtype(m, "preprocess", "as_float", "float16", output=True),
    )
    changes = surgery.graph_diff(before, after)
    (call,) = _find(changes, "graph", "node-changed", "StatefulPartitionedCall_2")
    assert call.detail == "attr Tout: [float32, int32] -> [float16, int32]"
    (cast,) = _find(changes, "function", "node-added")
    assert cast.detail.startswith("Cast(")
    (result,) = _find(changes, "function", "result-changed")
    assert result.detail.endswith("float32 -> float16")
    (ret,) = _find(changes, "function", "ret-changed")
    assert ret.detail.endswith(f"-> {cast.name}:y:0")


def test_set_dtype_tf1_inserts_a_cast_in_each_meta_graph(tmp_path: Path) -> None:
    model = copy_fixture("tf1_two_metagraphs", tmp_path)
    before, after = _edited(model, lambda m: surgery.set_dtype(m, "predict", "x", "float16"))
    changes = surgery.graph_diff(before, after)
    for tags in ("gpu,serve", "serve"):
        rows = [r for r in _rows(changes) if r[0] == tags]
        (added,) = [r for r in rows if r[2] == "node-added"]
        assert added[4] == "Cast(input_x)"
        assert (tags, "graph", "node-changed", "input_x", "attr dtype: float32 -> float16") in rows
        assert (tags, "graph", "node-changed", "MatMul", f"input 0: input_x -> {added[3]}") in rows
    before, after = _edited(model, lambda m: surgery.set_dtype(m, "predict", "y", "float16", output=True))
    added = _find(surgery.graph_diff(before, after), "graph", "node-added")
    assert [c.detail for c in added] == ["Cast(output_y)", "Cast(output_y)"]


def test_set_shape_changes_the_shape_attrs(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path)
    before, after = _edited(model, lambda m: surgery.set_shape(m, "fixed", "row", [-1, 4]))
    changes = surgery.graph_diff(before, after)
    (placeholder,) = _find(changes, "graph", "node-changed", "fixed_row")
    assert placeholder.detail == "attr _output_shapes: [[1, 4]] -> [[-1, 4]]; attr shape: [1, 4] -> [-1, 4]"
    (arg_attr,) = _find(changes, "function", "arg-attr-changed", "row")
    assert arg_attr.detail == "#0 attr _output_shapes: [[1, 4]] -> [[-1, 4]]"
    (spec,) = _find(changes, "object-graph", "concrete-function-changed")
    assert "shape=(1, 4)" in spec.detail and "shape=(None, 4)" in spec.detail
    # Tightening an unknown dim: the wrapper checks it with an EnsureShape.
    before, after = _edited(model, lambda m: surgery.set_shape(m, "masked", "a_dense", [8, 3]))
    changes = surgery.graph_diff(before, after)
    assert [c.detail for c in _find(changes, "function", "node-added")] == ["EnsureShape(a_dense)"]
    (placeholder,) = _find(changes, "graph", "node-changed", "masked_a_dense")
    assert "attr shape: [-1, 3] -> [8, 3]" in placeholder.detail


@pytest.mark.parametrize(
    ("fixture", "old", "new", "consumer"),
    [
        ("module_multi", "serving_default_a", "images", "StatefulPartitionedCall_3"),
        ("tf1_two_metagraphs", "input_x", "features", "MatMul"),
        ("tf1_two_metagraphs", "output_y", "result", None),
    ],
)
def test_rename_tensor_shows_a_renamed_node(
    tmp_path: Path, fixture: str, old: str, new: str, consumer: str | None
) -> None:
    before, after = _edited(
        copy_fixture(fixture, tmp_path), lambda m: surgery.rename_tensor(m, f"{old}:0", f"{new}:0")
    )
    changes = surgery.graph_diff(before, after)
    assert {c.kind for c in changes} <= {"node-renamed", "node-changed"}
    assert {(c.name, c.detail) for c in _find(changes, "graph", "node-renamed")} == {(new, f"{old} -> {new}")}
    readers = {(c.name, c.detail) for c in _find(changes, "graph", "node-changed")}
    assert readers == ({(consumer, f"input 0: {old} -> {new}")} if consumer else set())


def test_rename_input_reorders_the_wrapper_arguments(tmp_path: Path) -> None:
    before, after = _edited(
        copy_fixture("module_multi", tmp_path),
        lambda m: surgery.rename_input(m, "masked", "a_dense", "z_dense"),
    )
    rows = {r[2:] for r in _rows(surgery.graph_diff(before, after))}
    assert ("arg-changed", "b_dense", "#0 a_dense -> b_dense") in rows
    assert ("arg-changed", "z_dense", "#1 b_dense -> z_dense") in rows
    call = "input 0: masked_a_dense -> masked_b_dense; input 1: masked_b_dense -> masked_a_dense"
    assert ("node-changed", "StatefulPartitionedCall_1", call) in rows
    assert (
        "object-changed",
        "root.signatures.masked",
        "#14 argument_keywords: [a_dense, b_dense] -> [b_dense, z_dense]",
    ) in rows


def test_signature_level_edits_and_the_graph(tmp_path: Path) -> None:
    model = copy_fixture("module_multi", tmp_path)
    before, after = _edited(model, lambda m: surgery.rename_signature(m, "serving_default", "predict"))
    assert _rows(surgery.graph_diff(before, after)) == [
        (
            "serve",
            "object-graph",
            "object-changed",
            "root.signatures",
            "#8 children: -serving_default +predict",
        )
    ]
    before, after = _edited(model, lambda m: surgery.set_method(m, "fixed", "tensorflow/serving/regress"))
    assert surgery.graph_diff(before, after) == []  # signature_def only: `diff` reports it


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_identical_copies_show_nothing(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    copy = copy_fixture(name, tmp_path)
    assert surgery.graph_diff(surgery.load(FIXTURES / name), surgery.load(copy)) == []
    assert _run(capsys, "diff", FIXTURES / name, copy) == (0, "no signature-level differences\n", "")
    status, out, _ = _run(capsys, "diff", FIXTURES / name, copy, "--json")
    assert (status, json.loads(out)) == (0, {"changes": [], "graph_changes": []})


def test_set_dtype_there_and_back_shows_unless_the_model_is_what_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = copy_fixture("module_multi", tmp_path)
    half, back = tmp_path / "half", tmp_path / "back"
    assert _run(capsys, "set-dtype", model, "fixed", "row", "float16", "-o", half)[0] == 0
    assert _run(capsys, "set-dtype", half, "fixed", "row", "float32", "-o", back)[0] == 0
    status, out, _ = _run(capsys, "diff", model, half)
    assert status == 1 and "graph-level differences:" in out
    status, out, _ = _run(capsys, "diff", model, back)
    same = (model / "saved_model.pb").read_bytes() == (back / "saved_model.pb").read_bytes()
    assert (status == 0) == same, out
    if not same:
        assert "graph-level differences:" in out


# --- the command line ----------------------------------------------------------------------------


def _with_devices(path: Path, out: Path, *, functions: bool = False) -> Path:
    """A copy of the model at `path` whose graph nodes (and function nodes) name a device."""
    model = surgery.load(path)
    for meta in model.proto.meta_graphs:
        for node in meta.graph_def.node:
            node.device = "/device:CPU:0"
        for function in meta.graph_def.library.function if functions else []:
            for node in function.node_def:
                node.device = "/device:CPU:0"
    return surgery.save(model, out)


def test_a_graph_only_difference_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = surgery.load(FIXTURES / "module_multi")
    model.proto.meta_graphs[0].graph_def.node[0].device = "/device:CPU:0"
    changed = surgery.save(model, tmp_path / "changed")
    status, out, _ = _run(capsys, "diff", FIXTURES / "module_multi", changed)
    assert status == 1
    assert out == (
        "no signature-level differences\n"
        "graph-level differences:\n"
        "[serve] graph node-changed: scale: device: '' -> '/device:CPU:0'\n"
    )
    status, out, _ = _run(capsys, "diff", FIXTURES / "module_multi", changed, "--json")
    assert status == 1
    assert json.loads(out) == {
        "changes": [],
        "graph_changes": [
            {
                "tags": ["serve"],
                "scope": "graph",
                "kind": "node-changed",
                "name": "scale",
                "detail": "device: '' -> '/device:CPU:0'",
            }
        ],
    }


def test_text_is_bounded_and_json_carries_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph_only = _with_devices(FIXTURES / "module_multi", tmp_path / "graph")
    status, out, _ = _run(capsys, "diff", FIXTURES / "module_multi", graph_only)
    lines = out.splitlines()
    assert status == 1 and lines[:2] == ["no signature-level differences", "graph-level differences:"]
    graph = surgery.load(FIXTURES / "module_multi").proto.meta_graphs[0].graph_def
    nodes = sum(node.device != "/device:CPU:0" for node in graph.node)  # save and restore have it
    assert len(lines) == 2 + 8 + 1
    assert lines[-1] == f"  ... and {nodes - 8} more in [serve] graph"
    status, out, _ = _run(capsys, "diff", FIXTURES / "module_multi", graph_only, "--json")
    assert len(json.loads(out)["graph_changes"]) == nodes

    everywhere = _with_devices(FIXTURES / "module_multi", tmp_path / "all", functions=True)
    status, out, _ = _run(capsys, "diff", FIXTURES / "module_multi", everywhere, "--json")
    total = len(json.loads(out)["graph_changes"])
    status, out, _ = _run(capsys, "diff", FIXTURES / "module_multi", everywhere)
    lines = out.splitlines()[2:]
    shown = [line for line in lines if line.startswith("[serve] ")]
    assert len(shown) == 40
    more = [int(m) for m in re.findall(r"\.\.\. and (\d+) more", out)]
    assert len(shown) + sum(more) == total
    assert lines[-1].endswith("more in other scopes (--json lists every change)")


DRY_RUNS = [
    ["set-dtype", "fixed", "row", "float16"],
    ["set-dtype", "preprocess", "as_float", "float16", "--output-key"],
    ["set-shape", "masked", "a_dense", "8,3"],
    ["rename-tensor", "serving_default_a:0", "images:0"],
    ["rename-input", "masked", "a_dense", "z_dense"],
]


@pytest.mark.parametrize("edit", DRY_RUNS, ids=[" ".join(e) for e in DRY_RUNS])
def test_dry_run_shows_what_diff_shows_after_the_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: list[str]
) -> None:
    model = copy_fixture("module_multi", tmp_path)
    command, *args = edit
    status, preview_text, _ = _run(capsys, command, model, *args, "--dry-run")
    assert status == 0 and "graph-level differences:" in preview_text
    status, preview_json, _ = _run(capsys, command, model, *args, "--dry-run", "--json")
    assert status == 0
    assert _run(capsys, command, model, *args, "-o", tmp_path / "out")[0] == 0
    status, text, _ = _run(capsys, "diff", model, tmp_path / "out")
    assert status == 1 and text == preview_text
    status, out, _ = _run(capsys, "diff", model, tmp_path / "out", "--json")
    preview = json.loads(preview_json)
    assert json.loads(out) == {"changes": preview["changes"], "graph_changes": preview["graph_changes"]}
    assert preview["graph_changes"]


def test_batch_dry_run_carries_the_graph_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = copy_fixture("module_multi", tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {"operations": [{"op": "set-dtype", "signature": "fixed", "key": "row", "dtype": "float16"}]}
        )
    )
    status, out, _ = _run(capsys, "apply", model, plan, "--dry-run", "--json")
    assert status == 0
    (result,) = json.loads(out)["results"]
    assert any(c["kind"] == "node-added" and c["detail"] == "Cast(row)" for c in result["graph_changes"])
    status, out, _ = _run(capsys, "apply", model, plan, "--suffix", "_v2", "--dry-run")
    assert status == 0
    assert "     graph-level differences:" in out.splitlines()
    assert "     [serve] graph node-changed: fixed_row: attr dtype: float32 -> float16" in out.splitlines()
    status, out, _ = _run(capsys, "apply", model, plan, "-o", tmp_path / "out", "--json")
    assert status == 0 and "graph_changes" not in json.loads(out)["results"][0]


# --- a signature renamed and edited ---------------------------------------------------------------


def _plan_diff(
    tmp_path: Path, fixture: str, operations: list[dict[str, Any]]
) -> list[tuple[str | None, str, str]]:
    """`diff --json`'s signature-level changes from the fixture to the result of the plan."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"operations": operations}))
    out = tmp_path / f"out_{len(list(tmp_path.glob('out_*')))}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", surgery.SurgeryWarning)
        model = surgery.load_plan(plan).apply(surgery.load(FIXTURES / fixture))
    surgery.save(model, out)
    changes = surgery.diff(surgery.load(FIXTURES / fixture), surgery.load(out))
    return [(c.signature, c.kind, c.detail) for c in changes if c.tags == ["serve"]]


def test_a_renamed_and_edited_signature_tf2(tmp_path: Path) -> None:
    changes = _plan_diff(
        tmp_path,
        "module_multi",
        [
            {"op": "rename-signature", "old": "masked", "new": "scored"},
            {"op": "rename-output", "signature": "scored", "old": "alpha", "new": "zeta"},
            {"op": "set-shape", "signature": "scored", "key": "a_dense", "shape": [8, 3]},
        ],
    )
    assert changes == [
        ("masked", "signature-renamed", "masked -> scored"),
        ("scored", "input-shape", "a_dense: [-1, 3] -> [8, 3]"),
        ("scored", "output-renamed", "alpha -> zeta"),
        ("scored", "output-tensor", "zeta: StatefulPartitionedCall_1:0 -> StatefulPartitionedCall_1:1"),
        ("scored", "output-tensor", "beta: StatefulPartitionedCall_1:1 -> StatefulPartitionedCall_1:0"),
    ]


def test_a_renamed_and_edited_signature_tf1(tmp_path: Path) -> None:
    """A TF1 signature is what it fetches: the edit's Cast and a renamed node are seen through."""
    changes = _plan_diff(
        tmp_path,
        "tf1_two_metagraphs",
        [
            {"op": "rename-signature", "old": "predict", "new": "p2"},
            {"op": "set-dtype", "signature": "p2", "key": "y", "dtype": "float16", "output": True},
        ],
    )
    assert changes[:2] == [
        ("predict", "signature-renamed", "predict -> p2"),
        ("p2", "output-dtype", "y: float32 -> float16"),
    ]
    assert [c[1] for c in changes[2:]] == ["output-tensor"]
    changes = _plan_diff(
        tmp_path,
        "tf1_two_metagraphs",
        [
            {"op": "rename-signature", "old": "predict", "new": "p2"},
            {"op": "rename-tensor", "old": "output_y:0", "new": "result:0"},
        ],
    )
    assert changes == [
        ("predict", "signature-renamed", "predict -> p2"),
        ("p2", "output-tensor", "y: output_y:0 -> result:0"),
    ]


@pytest.mark.parametrize(
    ("fixture", "removed", "source", "added"),
    [
        ("module_multi", "masked", "fixed", "masked_new"),
        ("tf1_two_metagraphs", "predict", "preprocess", "p2"),
    ],
)
def test_unrelated_signatures_removed_and_added_are_not_paired(
    tmp_path: Path, fixture: str, removed: str, source: str, added: str
) -> None:
    changes = _plan_diff(
        tmp_path,
        fixture,
        [
            {"op": "remove-signature", "signature": removed},
            {"op": "copy-signature", "src": source, "dst": added},
        ],
    )
    assert changes == [(removed, "signature-removed", removed), (added, "signature-added", added)]
    # Renamed instead of copied, the source is the one paired: not the removed signature.
    changes = _plan_diff(
        tmp_path,
        fixture,
        [
            {"op": "remove-signature", "signature": removed},
            {"op": "rename-signature", "old": source, "new": added},
        ],
    )
    assert (source, "signature-renamed", f"{source} -> {added}") in changes
    assert (removed, "signature-removed", removed) in changes
    assert len(changes) == 2


# --- large constants: a lazily read model ---------------------------------------------------------


def _inflate(path: Path, out: Path, seed: int = 0) -> Path:
    """A copy of the model with constants in the graph and in a function: bytes and strings."""
    rng = random.Random(seed)
    model = surgery.load(path, lazy=False)
    for meta in model.proto.meta_graphs:
        places = [meta.graph_def.node]
        if meta.graph_def.library.function:
            places.append(meta.graph_def.library.function[0].node_def)
        for i, nodes in enumerate(places):
            node = nodes.add(name=f"big_{i}", op="Const")
            node.attr["dtype"].type = DataType.DT_FLOAT
            tensor = node.attr["value"].tensor
            tensor.dtype = DataType.DT_FLOAT
            tensor.tensor_shape.dim.add().size = 1000
            tensor.tensor_content = rng.randbytes(4000)
            words = nodes.add(name=f"words_{i}", op="Const")
            words.attr["dtype"].type = DataType.DT_STRING
            strings = words.attr["value"].tensor
            strings.dtype = DataType.DT_STRING
            strings.tensor_shape.dim.add().size = 5
            strings.string_val.extend([b"w" * 100, b"short", rng.randbytes(300), b"x", b"y"])
    return surgery.save(model, out)


def _constants_changed(path: Path, out: Path) -> Path:
    """The model with its graph's bytes constant rewritten (same size) and its strings grown."""
    model = surgery.load(path, lazy=False)
    for meta in model.proto.meta_graphs:
        nodes = {n.name: n for n in meta.graph_def.node}
        tensor = nodes["big_0"].attr["value"].tensor
        tensor.tensor_content = bytes(b ^ 1 for b in tensor.tensor_content)
        nodes["words_0"].attr["value"].tensor.string_val.append(b"z" * 200)
    return surgery.save(model, out)


@pytest.fixture
def every_constant_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazy, "HOLE_MIN", 1)


EDITS: dict[str, Edit] = {
    "set-dtype": lambda m: surgery.set_dtype(m, "fixed", "row", "float16"),
    "set-shape": lambda m: surgery.set_shape(m, "masked", "a_dense", [8, 3]),
    "rename-tensor": lambda m: surgery.rename_tensor(m, "serving_default_a:0", "images:0"),
    "rename-input": lambda m: surgery.rename_input(m, "masked", "a_dense", "z_dense"),
}


@pytest.mark.usefixtures("every_constant_on_disk")
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_lazily_read_model_compares_as_one_read_whole(tmp_path: Path, edit: str) -> None:
    base = _inflate(FIXTURES / "module_multi", tmp_path / "base")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", surgery.SurgeryWarning)
        edited = surgery.save(EDITS[edit](surgery.load(base, lazy=False)), tmp_path / "edited")
    changed = _constants_changed(edited, tmp_path / "changed")
    for other in (edited, changed):
        lazy_a, lazy_b = surgery.load(base), surgery.load(other)
        assert lazy_a.holes is not None and lazy_b.holes is not None
        whole = surgery.graph_diff(surgery.load(base, lazy=False), surgery.load(other, lazy=False))
        assert surgery.graph_diff(lazy_a, lazy_b) == whole
        assert surgery.graph_diff(lazy_a, surgery.load(other, lazy=False)) == whole
        assert surgery.graph_diff(surgery.load(base, lazy=False), lazy_b) == whole
        assert surgery.diff(lazy_a, lazy_b) == surgery.diff(surgery.load(base), surgery.load(other))
    rows = {r[1:] for r in _rows(surgery.graph_diff(surgery.load(edited), surgery.load(changed)))}
    assert rows == {
        (
            "graph",
            "node-changed",
            "big_0",
            "attr value: tensor float32 [1000] <4000 bytes>, contents changed",
        ),
        (
            "graph",
            "node-changed",
            "words_0",
            "attr value: tensor string [5] <418 bytes of strings> -> "
            "tensor string [5] <621 bytes of strings>",
        ),
    }


@pytest.mark.usefixtures("every_constant_on_disk")
def test_a_dry_run_reads_no_constant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both sides of a --dry-run share the holes of one read: an untouched constant is not hashed."""
    model = surgery.load(_inflate(FIXTURES / "module_multi", tmp_path / "base"))
    assert model.holes is not None and len(model.holes.spans) >= 4

    def no_read(*args: Any) -> list[int]:
        raise AssertionError("a constant was read")

    monkeypatch.setattr(GRAPH_CHANGES, "fingerprint64", no_read)
    for edit in EDITS.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", surgery.SurgeryWarning)
            edited = preview_edit(model, edit)
        changes = surgery.graph_diff(model, edited)
        assert changes and not any(c.name.startswith(("big_", "words_")) for c in changes)


@pytest.mark.usefixtures("every_constant_on_disk")
def test_constants_of_two_reads_are_hashed_only_when_their_sizes_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _inflate(FIXTURES / "module_multi", tmp_path / "base")
    grown = surgery.load(base, lazy=False)
    for node in grown.proto.meta_graphs[0].graph_def.node:
        if node.name == "big_0":
            node.attr["value"].tensor.tensor_content += b"\0" * 4
    grown_path = surgery.save(grown, tmp_path / "grown")
    hashed: list[int] = []  # the size of each span hashed
    real = GRAPH_CHANGES.fingerprint64

    def counted(streams: Any, holes: Any) -> list[int]:
        hashed.extend(piece.length for stream in streams for piece in stream if isinstance(piece, lazy.Span))
        return real(streams, holes)

    monkeypatch.setattr(GRAPH_CHANGES, "fingerprint64", counted)
    changes = surgery.graph_diff(surgery.load(base), surgery.load(grown_path))
    assert [(c.name, c.detail) for c in changes] == [
        ("big_0", "attr value: tensor float32 [1000] <4000 bytes> -> tensor float32 [1000] <4004 bytes>")
    ]
    # The other constants are equal: hashed, once a side; big_0's sizes differ: not hashed.
    assert hashed and len(hashed) % 2 == 0
    # A 4000-byte record is 4003 bytes: big_1's (in a function), one a side, not big_0's.
    assert hashed.count(4003) == 2 and 4007 not in hashed


def test_graph_change_is_a_public_report() -> None:
    assert surgery.GraphChange is surgery.reports.GraphChange
    assert "GraphChange" in surgery.__all__ and "graph_diff" in surgery.__all__
    change = GraphChange(tags=["serve"], scope="graph", kind="node-added", name="c", detail="Cast(x)")
    assert list(change.model_dump()) == ["tags", "scope", "kind", "name", "detail"]
