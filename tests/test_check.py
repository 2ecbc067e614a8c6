"""`check`: silent on every model TensorFlow wrote, and precise on a model corrupted in one place.

Each corruption below changes exactly one of the places that define a signature (signature_def,
the v1 graph's placeholders and call node, the signature-wrapper function, the object graph)
and asserts the complete list of findings: every (code, signature key) pair, so that a missed
problem and a false alarm both fail. Where one change legitimately disagrees with more than one
other place, a comment says why each finding is expected. Each code's severity, and the
TensorFlow runs behind it, are in test_check_severity.py.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from signature_cases import Cases, assert_serves_all, select

import surgery
from conftest import FIXTURE_NAMES, FIXTURES, LOADERS, ROOT, Oracle, run_cli
from surgery import CheckReport
from surgery.check import SEVERITIES, check
from surgery.schema import (
    DataType,
    FunctionDef,
    MetaGraphDef,
    NodeDef,
    SavedConcreteFunction,
    SavedObject,
)
from surgery.signatures import argument_name, input_order, signature_map_node, tf2_signatures
from surgery_proto.tensorflow.core.protobuf.trackable_object_graph_pb2 import TrackableObjectGraph

Corruption = Callable[[MetaGraphDef], None]
Pair = tuple[str, str | None]
ObjectReference = TrackableObjectGraph.TrackableObject.ObjectReference

KEY = "masked"  # module_multi's two-input, two-output signature: inputs a_dense, b_dense; outputs alpha, beta


# --- finding the places a signature is defined in -----------------------------------------


def _signature_map(meta: MetaGraphDef) -> SavedObject:
    map_id = signature_map_node(meta.object_graph_def)
    assert map_id is not None
    return meta.object_graph_def.nodes[map_id]


def _map_child(meta: MetaGraphDef, key: str = KEY) -> ObjectReference:
    return next(c for c in _signature_map(meta).children if c.local_name == key)


def _wrapper_name(meta: MetaGraphDef, key: str = KEY) -> str:
    node = meta.object_graph_def.nodes[_map_child(meta, key).node_id]
    name: str = node.bare_concrete_function.concrete_function_name
    return name


def _wrapper(meta: MetaGraphDef, key: str = KEY) -> FunctionDef:
    """The signature-wrapper FunctionDef in the graph's function library."""
    name = _wrapper_name(meta, key)
    return next(f for f in meta.graph_def.library.function if f.signature.name == name)


def _saved_function(meta: MetaGraphDef, key: str = KEY) -> SavedConcreteFunction:
    """The wrapper's SavedConcreteFunction (TensorSpecs and bound inputs)."""
    return meta.object_graph_def.concrete_functions[_wrapper_name(meta, key)]


def _graph_node(meta: MetaGraphDef, name: str) -> NodeDef:
    return next(n for n in meta.graph_def.node if n.name == name)


def _call_node(meta: MetaGraphDef, key: str = KEY) -> NodeDef:
    """The v1 graph's StatefulPartitionedCall whose outputs the signature fetches."""
    name = meta.signature_def[key].outputs["alpha"].name.partition(":")[0]
    return _graph_node(meta, name)


def _placeholder(meta: MetaGraphDef, input_key: str = "a_dense") -> NodeDef:
    return _graph_node(meta, meta.signature_def[KEY].inputs[input_key].name.partition(":")[0])


# --- the corruptions, one place each ---------------------------------------------------------


def _set_input_name(name: str) -> Corruption:
    def corrupt(meta: MetaGraphDef) -> None:
        meta.signature_def[KEY].inputs["a_dense"].name = name

    return corrupt


def _set_output_name(key: str, name: str) -> Corruption:
    def corrupt(meta: MetaGraphDef) -> None:
        meta.signature_def[KEY].outputs[key].name = name

    return corrupt


def _remove_map_child(meta: MetaGraphDef) -> None:
    children = _signature_map(meta).children
    del children[[c.local_name for c in children].index(KEY)]


def _rename_map_child(meta: MetaGraphDef) -> None:
    _map_child(meta).local_name = "masked2"


def _rename_input_in_signature_def(new: str) -> Corruption:
    def corrupt(meta: MetaGraphDef) -> None:
        inputs = meta.signature_def[KEY].inputs
        inputs[new].CopyFrom(inputs["a_dense"])
        del inputs["a_dense"]

    return corrupt


def _signature_def_input_dtype(meta: MetaGraphDef) -> None:
    meta.signature_def[KEY].inputs["a_dense"].dtype = DataType.DT_DOUBLE


def _placeholder_shape(meta: MetaGraphDef) -> None:
    _placeholder(meta).attr["shape"].shape.dim[1].size = 4


def _input_tensor_spec_shape(meta: MetaGraphDef) -> None:
    kwargs = _saved_function(meta).canonicalized_input_signature.tuple_value.values[1]
    kwargs.dict_value.fields["a_dense"].tensor_spec_value.shape.dim[1].size = 4


def _output_tensor_spec_dtype(meta: MetaGraphDef) -> None:
    _saved_function(meta).output_signature.dict_value.fields[
        "beta"
    ].tensor_spec_value.dtype = DataType.DT_INT32


def _wrapper_input_type(meta: MetaGraphDef) -> None:
    _wrapper(meta).signature.input_arg[0].type = DataType.DT_DOUBLE


def _wrapper_input_shape(meta: MetaGraphDef) -> None:
    _wrapper(meta).arg_attr[0].attr["_output_shapes"].list.shape[0].dim[1].size = 4


def _wrapper_output_removed(meta: MetaGraphDef) -> None:
    del _wrapper(meta).signature.output_arg[1]


def _wrapper_removed_from_library(meta: MetaGraphDef) -> None:
    functions = meta.graph_def.library.function
    del functions[[f.signature.name for f in functions].index(_wrapper_name(meta))]


def _argument_keyword_renamed(meta: MetaGraphDef) -> None:
    node = meta.object_graph_def.nodes[_map_child(meta).node_id]
    node.bare_concrete_function.argument_keywords[0] = "zzz"


def _bound_input_dangles(meta: MetaGraphDef) -> None:
    _saved_function(meta).bound_inputs[0] = 999


def _root_child_dangles(meta: MetaGraphDef) -> None:
    root = meta.object_graph_def.nodes[0]
    next(c for c in root.children if c.local_name == "w").node_id = 999


def _map_child_dangles(meta: MetaGraphDef) -> None:
    _map_child(meta).node_id = 999


def _swap_output_names(meta: MetaGraphDef) -> None:
    outputs = meta.signature_def[KEY].outputs
    outputs["alpha"].name, outputs["beta"].name = outputs["beta"].name, outputs["alpha"].name


def _call_node_calls_other_function(meta: MetaGraphDef) -> None:
    _call_node(meta).attr["f"].func.name = _wrapper_name(meta, "serving_default")


def _call_node_inputs_swapped(meta: MetaGraphDef) -> None:
    node = _call_node(meta)
    node.input[0], node.input[1] = node.input[1], node.input[0]


def _call_node_tout(meta: MetaGraphDef) -> None:
    _call_node(meta).attr["Tout"].list.type[0] = DataType.DT_DOUBLE


def _call_node_tin(meta: MetaGraphDef) -> None:
    _call_node(meta).attr["Tin"].list.type[0] = DataType.DT_DOUBLE


CORRUPTIONS = [
    # --- v1: TensorInfo names against the graph ---
    pytest.param(
        _set_output_name("alpha", "nope:0"),
        [("missing-tensor", KEY)],
        "'nope:0'",
        id="output-name-names-no-node",
    ),
    pytest.param(
        _set_input_name("nope:0"),
        # missing-tensor: no node `nope`. call-node: the call node is fed masked_a_dense, while
        # the signature's sorted inputs are now (nope, masked_b_dense): what a v1 client feeds
        # for a_dense no longer reaches the call node.
        [("missing-tensor", KEY), ("call-node", KEY)],
        "'nope:0'",
        id="input-name-names-no-node",
    ),
    pytest.param(
        _set_output_name("beta", "StatefulPartitionedCall_1:2"),
        # missing-tensor: the call node's Tout has 2 entries, so :2 does not exist. call-node:
        # beta is second in sorted key order, so it must be :1; `:2` breaks that too.
        [("missing-tensor", KEY), ("call-node", KEY)],
        "has 2 output(s)",
        id="output-index-beyond-tout",
    ),
    pytest.param(
        _set_input_name("masked_a_dense:1"),
        [("missing-tensor", KEY)],
        "masked_a_dense has 1 output(s)",
        id="placeholder-has-one-output",
    ),
    # --- the signature key: signature_def against the object graph's signature map ---
    pytest.param(
        _remove_map_child,
        [("signature-keys", KEY)],
        "not in the object graph's signature map",
        id="key-missing-from-signature-map",
    ),
    pytest.param(
        _rename_map_child,
        # The v1 key has no TF2 twin and the TF2 key has no v1 twin: one finding each.
        [("signature-keys", KEY), ("signature-keys", "masked2")],
        "but not in signature_def",
        id="key-renamed-in-signature-map-only",
    ),
    # --- input keys ---
    pytest.param(
        _rename_input_in_signature_def("a_x"),
        # a_x is only in signature_def, a_dense only in the TF2 TensorSpecs. `a_x` sorts where
        # `a_dense` did, so the wrapper and the call node still line up: nothing else.
        [("input-keys", KEY), ("input-keys", KEY)],
        "'a_x'",
        id="input-key-renamed-in-signature-def-only",
    ),
    pytest.param(
        _rename_input_in_signature_def("z_dense"),
        # The same two input-keys findings, and z_dense now sorts after b_dense: the call node
        # is fed (masked_a_dense, masked_b_dense) but the sorted inputs are (b_dense, z_dense),
        # so the call node is no longer fed in key order (call-node).
        [("input-keys", KEY), ("input-keys", KEY), ("call-node", KEY)],
        "'z_dense'",
        id="input-key-renamed-in-signature-def-only-reordered",
    ),
    pytest.param(
        _argument_keyword_renamed,
        [("argument-keywords", KEY)],
        "argument_keywords",
        id="argument-keyword-renamed",
    ),
    # --- dtypes and shapes ---
    pytest.param(
        _signature_def_input_dtype,
        # signature_def's dtype is compared with two places that both still say float32: the
        # placeholder (placeholder-dtype) and the TF2 TensorSpec (input-dtype).
        [("placeholder-dtype", KEY), ("input-dtype", KEY)],
        "float64",
        id="signature-def-input-dtype",
    ),
    pytest.param(
        _placeholder_shape,
        # The placeholder's shape attr disagrees with signature_def (placeholder-shape) and with
        # its own _output_shapes, which still says [-1, 3] (placeholder-output-shapes).
        [("placeholder-shape", KEY), ("placeholder-output-shapes", KEY)],
        "placeholder masked_a_dense has [-1, 4]",
        id="placeholder-shape-attr",
    ),
    pytest.param(
        _input_tensor_spec_shape,
        [("input-shape", KEY)],
        "TF2 TensorSpec [-1, 4]",
        id="canonicalized-input-signature-shape",
    ),
    pytest.param(
        _output_tensor_spec_dtype,
        [("output-dtype", KEY)],
        "TF2 TensorSpec int32",
        id="output-signature-dtype",
    ),
    # --- the signature-wrapper FunctionDef ---
    pytest.param(
        _wrapper_input_type,
        # The v1 call node passes a float32 (its Tin) where the wrapper now takes a float64, and
        # inside the wrapper the float64 argument feeds the float32 call of the inner function.
        [("call-node", KEY), ("edge-dtype", None)],
        "argument 0 (a_dense) is float64",
        id="wrapper-input-arg-type",
    ),
    pytest.param(
        _wrapper_input_shape,
        [("wrapper-input-shape", KEY)],
        "has shape [-1, 4]",
        id="wrapper-arg-attr-output-shapes",
    ),
    pytest.param(
        _wrapper_output_removed,
        # The signature has two outputs (wrapper-outputs) and the call node's Tout two types
        # (call-node) for the wrapper's one result.
        [("wrapper-outputs", KEY), ("call-node", KEY)],
        "returns 1 value(s), the signature has 2",
        id="wrapper-output-arg-removed",
    ),
    # --- the object graph's references ---
    pytest.param(
        _wrapper_removed_from_library,
        # Two places name the function: the signature's bare-concrete-function node and the
        # concrete_functions map. Object-graph findings carry no signature key.
        [("missing-function", None), ("missing-function", None)],
        "not in the function library",
        id="wrapper-removed-from-library",
    ),
    pytest.param(
        _bound_input_dangles,
        [("dangling-reference", None)],
        "binds node 999",
        id="bound-input-node-999",
    ),
    pytest.param(
        _root_child_dangles,
        [("dangling-reference", None)],
        "refers to node 999 ('w')",
        id="child-node-id-out-of-range",
    ),
    pytest.param(
        _map_child_dangles,
        # The dangling child, and (as a consequence) the TF2 loader cannot find `masked`.
        [("dangling-reference", None), ("signature-keys", KEY)],
        "refers to node 999 ('masked')",
        id="signature-map-child-out-of-range",
    ),
    # --- the v1 call node ---
    pytest.param(
        _swap_output_names,
        # Each output is at the other's index: one call-node finding per output.
        [("call-node", KEY), ("call-node", KEY)],
        "sorted key order puts it at StatefulPartitionedCall_1:0",
        id="output-tensor-names-swapped",
    ),
    pytest.param(
        _call_node_calls_other_function,
        [("call-node", KEY)],
        "calls '__inference_signature_wrapper_serve",
        id="call-node-f-attr",
    ),
    pytest.param(
        _call_node_inputs_swapped,
        [("call-node", KEY)],
        "is fed ['masked_b_dense', 'masked_a_dense']",
        id="call-node-inputs-swapped",
    ),
    pytest.param(
        _call_node_tout,
        # Tout disagrees with signature_def (call-output-dtype) and with the wrapper's result type
        # (call-node).
        [("call-output-dtype", KEY), ("call-node", KEY)],
        "StatefulPartitionedCall_1:0 is float64",
        id="call-node-tout",
    ),
    pytest.param(
        _call_node_tin,
        # The call node would take a float64 where masked_a_dense feeds a float32
        # (call-input-dtype) and the wrapper takes a float32 (call-node): the v1 graph does not
        # even import.
        [("call-input-dtype", KEY), ("call-node", KEY)],
        "float64",
        id="call-node-tin",
    ),
]


def _pairs(report: CheckReport) -> list[Pair]:
    return sorted(((f.code, f.signature) for f in report.findings), key=repr)


def _corrupted(corrupt: Corruption) -> surgery.Model:
    model = surgery.load(FIXTURES / "module_multi")
    corrupt(model.proto.meta_graphs[0])
    return model


# --- clean models ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_is_clean(name: str) -> None:
    """A model TensorFlow wrote has no findings."""
    report = check(surgery.load(FIXTURES / name))
    assert report.findings == []
    assert report.ok


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_cli_check_of_every_fixture_exits_0(name: str) -> None:
    """`check MODEL` prints `MODEL: ok` and exits 0."""
    result = run_cli("check", FIXTURES / name)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{FIXTURES / name}: ok\n"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_cli_check_json_of_every_fixture(name: str) -> None:
    """`check MODEL --json` prints {"ok": true, "errors": 0, "warnings": 0, "findings": []}, exit 0."""
    result = run_cli("check", FIXTURES / name, "--json", "--strict")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "errors": 0, "warnings": 0, "findings": []}


# --- one corruption at a time ----------------------------------------------------------------


@pytest.mark.parametrize(("corrupt", "expected", "mentions"), CORRUPTIONS)
def test_corruption_is_reported_exactly(corrupt: Corruption, expected: list[Pair], mentions: str) -> None:
    """One change to one place gives exactly the expected findings, and nothing else."""
    report = check(_corrupted(corrupt))
    assert report.ok == all(SEVERITIES[code] == "warning" for code, _ in expected)
    assert _pairs(report) == sorted(expected, key=repr), [f.message for f in report.findings]
    assert all(f.severity == SEVERITIES[f.code] for f in report.findings)
    assert all(f.tags == ["serve"] for f in report.findings)
    assert any(mentions in f.message for f in report.findings), [f.message for f in report.findings]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # TensorFlow's ParseTensorName: `node:digits` with ASCII digits after the LAST colon;
        # anything else is a node name with output 0. So an index-less name is output 0 ...
        pytest.param("StatefulPartitionedCall_1", [], id="no-index-is-output-0"),
        # ... and these name nodes `StatefulPartitionedCall_1:0`, `...:x`, `...:`, `...:²`,
        # none of which exists.
        pytest.param(
            "StatefulPartitionedCall_1:0:1",
            [("missing-tensor", KEY)],
            id="two-colons",
        ),
        pytest.param(
            "StatefulPartitionedCall_1:x",
            [("missing-tensor", KEY)],
            id="non-numeric-index",
        ),
        pytest.param(
            "StatefulPartitionedCall_1:",
            [("missing-tensor", KEY)],
            id="empty-index",
        ),
        pytest.param(
            "StatefulPartitionedCall_1:\u00b2",
            [("missing-tensor", KEY)],
            id="superscript-digit-index",  # '²'.isdigit() is True, int('²') raises: check crashes
        ),
    ],
)
def test_tensor_names_are_parsed_as_tensorflow_does(name: str, expected: list[Pair]) -> None:
    """Output `alpha` named in ways TensorFlow parses as a missing node (or, index-less, as :0)."""
    report = check(_corrupted(_set_output_name("alpha", name)))
    assert _pairs(report) == expected, [f.message for f in report.findings]


def test_corruption_leaves_other_signatures_alone() -> None:
    """Findings name the corrupted signature only: the three others of module_multi stay clean."""
    report = check(_corrupted(_placeholder_shape))
    assert {f.signature for f in report.findings} == {KEY}


@pytest.mark.parametrize("meta_index", [0, 1])
def test_tf1_coo_sparse_component_names_no_node(meta_index: int) -> None:
    """A TF1 model: a SparseTensor component that names no node is found, in its own meta graph."""
    model = surgery.load(FIXTURES / "tf1_two_metagraphs")
    meta = model.proto.meta_graphs[meta_index]
    meta.signature_def["sparse_sum"].inputs["sp"].coo_sparse.indices_tensor_name = "nope:0"
    report = check(model)
    assert _pairs(report) == [("missing-tensor", "sparse_sum")]
    (finding,) = report.findings
    assert finding.tags == list(meta.meta_info_def.tags)
    assert "input 'sp': tensor 'nope:0' names no node" in finding.message


def test_tf1_meta_graphs_are_checked_separately() -> None:
    """The same corruption in both meta graphs gives one finding per meta graph, each with its tags."""
    model = surgery.load(FIXTURES / "tf1_two_metagraphs")
    for meta in model.proto.meta_graphs:
        meta.signature_def["predict"].outputs["y"].name = "gone:0"
    report = check(model)
    assert [(f.code, f.signature, f.tags) for f in report.findings] == [
        ("missing-tensor", "predict", ["serve"]),
        ("missing-tensor", "predict", ["serve", "gpu"]),
    ]


# --- the CLI on a corrupted model saved to disk ----------------------------------------------

FINDING_LINE = re.compile(
    r"^(?P<severity>error|warning): \[(?P<tags>[^\]]*)\]( '(?P<signature>[^']+)')? (?P<code>[a-z0-9-]+): "
    r"(?P<msg>.+)$"
)


def _save_corrupted(corrupt: Corruption, tmp_path: Path) -> Path:
    out = tmp_path / "corrupted"
    surgery.save(_corrupted(corrupt), out)
    return out


def test_cli_check_reports_each_finding_on_one_line(tmp_path: Path) -> None:
    """Exit 1, one `error: [serve] 'masked' <code>: <message>` line per finding, then the counts."""
    model = _save_corrupted(_swap_output_names, tmp_path)
    result = run_cli("check", model)
    assert (result.returncode, result.stderr) == (1, "")
    lines = result.stdout.splitlines()
    assert lines[-1] == f"{model}: 2 error(s), 0 warning(s)"
    assert lines[:-1] == [
        "error: [serve] 'masked' call-node: output 'alpha' is StatefulPartitionedCall_1:1, "
        "but sorted key order puts it at StatefulPartitionedCall_1:0",
        "error: [serve] 'masked' call-node: output 'beta' is StatefulPartitionedCall_1:0, "
        "but sorted key order puts it at StatefulPartitionedCall_1:1",
    ]


@pytest.mark.parametrize(
    ("corrupt", "expected", "status"),
    [
        pytest.param(
            _call_node_tin,
            [("call-input-dtype", KEY, "error"), ("call-node", KEY, "error")],
            1,
            id="call-node-tin",
        ),
        pytest.param(
            _signature_def_input_dtype,
            [("placeholder-dtype", KEY, "warning"), ("input-dtype", KEY, "warning")],
            0,
            id="signature-def-input-dtype",
        ),
        pytest.param(
            _placeholder_shape,
            [("placeholder-output-shapes", KEY, "error"), ("placeholder-shape", KEY, "warning")],
            1,
            id="placeholder-shape-attr",
        ),
        pytest.param(
            _bound_input_dangles, [("dangling-reference", None, "error")], 1, id="bound-input-node-999"
        ),
    ],
)
def test_cli_check_lines_match_the_api(
    tmp_path: Path, corrupt: Corruption, expected: list[tuple[str, str | None, str]], status: int
) -> None:
    """The text lines are the API's findings, each after its severity; a finding without a
    signature has no key in its line. Exit 1 on an error, 0 on warnings alone."""
    model = _save_corrupted(corrupt, tmp_path)
    result = run_cli("check", model)
    assert result.returncode == status, result.stderr
    *lines, summary = result.stdout.splitlines()
    errors = sum(severity == "error" for *_, severity in expected)
    assert summary == f"{model}: {errors} error(s), {len(expected) - errors} warning(s)"
    parsed = [FINDING_LINE.match(line) for line in lines]
    assert all(parsed), lines
    found = sorted(((m["code"], m["signature"], m["severity"]) for m in parsed if m), key=repr)
    assert found == sorted(expected, key=repr)
    assert all(m["tags"] == "serve" for m in parsed if m)
    findings = check(surgery.load(model)).findings
    assert [m["msg"] for m in parsed if m] == [f.message for f in findings]


def test_cli_check_json_on_a_corrupted_model(tmp_path: Path) -> None:
    """`--json` gives ok, the counts and the findings (code, severity, tags, signature, message)."""
    model = _save_corrupted(_placeholder_shape, tmp_path)
    result = run_cli("check", model, "--json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data == {
        "ok": False,
        "errors": 1,
        "warnings": 1,
        "findings": [
            {
                "code": "placeholder-output-shapes",
                "severity": "error",
                "tags": ["serve"],
                "signature": "masked",
                "message": "input 'a_dense': placeholder masked_a_dense has shape [-1, 4] but records "
                "_output_shapes [-1, 3], which TensorFlow's graph importer refuses",
                "function": None,
                "node": None,
            },
            {
                "code": "placeholder-shape",
                "severity": "warning",
                "tags": ["serve"],
                "signature": "masked",
                "message": "input 'a_dense': signature says shape [-1, 3], "
                "placeholder masked_a_dense has [-1, 4]",
                "function": None,
                "node": None,
            },
        ],
    }


def test_cli_check_json_lists_every_code(tmp_path: Path) -> None:
    """Several findings in JSON: the codes and signature keys of the API's report, in its order."""
    model = _save_corrupted(_rename_map_child, tmp_path)
    result = run_cli("check", model, "--json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert (data["ok"], data["errors"], data["warnings"]) == (False, 2, 0)
    assert [(f["code"], f["severity"], f["signature"], f["tags"]) for f in data["findings"]] == [
        ("signature-keys", "error", "masked", ["serve"]),
        ("signature-keys", "error", "masked2", ["serve"]),
    ]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_cli_check_strict_fails_on_warnings(tmp_path: Path, as_json: bool) -> None:
    """Warnings alone exit 0 (`ok` true); with --strict they exit 1. Errors exit 1 either way."""
    json_flag = ["--json"] if as_json else []
    (tmp_path / "warned").mkdir()
    (tmp_path / "broken").mkdir()
    warned = _save_corrupted(_input_tensor_spec_shape, tmp_path / "warned")
    broken = _save_corrupted(_swap_output_names, tmp_path / "broken")
    assert run_cli("check", warned, *json_flag).returncode == 0
    strict = run_cli("check", "--strict", warned, *json_flag)
    assert (strict.returncode, strict.stderr) == (1, "")
    if as_json:
        assert {k: v for k, v in json.loads(strict.stdout).items() if k != "findings"} == {
            "ok": True,
            "errors": 0,
            "warnings": 1,
        }
    else:
        assert strict.stdout.splitlines() == [
            "warning: [serve] 'masked' input-shape: input 'a_dense': signature_def says [-1, 3], "
            "TF2 TensorSpec [-1, 4]",
            f"{warned}: 0 error(s), 1 warning(s)",
        ]
    for flags in ([], ["--strict"]):
        assert run_cli("check", *flags, broken, *json_flag).returncode == 1


def test_cli_check_tf1_tags_in_the_line(tmp_path: Path) -> None:
    """A finding in a two-tag meta graph is printed with both tags: `[serve,gpu] 'sparse_sum' ...`."""
    model = surgery.load(FIXTURES / "tf1_two_metagraphs")
    model.proto.meta_graphs[1].signature_def["sparse_sum"].inputs[
        "sp"
    ].coo_sparse.values_tensor_name = "nope:0"
    out = surgery.save(model, tmp_path / "corrupted")
    result = run_cli("check", out)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "error: [serve,gpu] 'sparse_sum' missing-tensor: input 'sp': tensor 'nope:0' names no node of "
        "the graph",
        f"{out}: 1 error(s), 0 warning(s)",
    ]


# --- nested inputs: TensorSpecs named as TF-Agents' PolicySaver names them ----------------------

NESTED_KEYS = ["0/discount", "0/observation", "0/reward", "0/step_type", "1/carry"]


@pytest.fixture(scope="module")
def nested(oracle: Oracle, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Cases]:
    """The oracle's `nested_args` scratch model: `action(*args)` over a time step and a policy
    state (inputs `0/step_type`, ..., `1/carry`) and `mixed` (inputs `x.2`, `x_1`)."""
    path = tmp_path_factory.mktemp("scratch") / "nested_args"
    cases: Cases = oracle.ok(op="build", kind="nested_args", model=str(path))["cases"]
    return path, cases


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("a_dense", "a_dense"),
        ("0/observation", "arg_0_observation"),
        ("42", "arg_42"),
        ("_42", "arg__42"),
        ("a%$#", "a___"),
        ("96ab.cd//?53", "arg_96ab_cd___53"),
        ("x.2", "x_2"),
        ("B", "B"),
    ],
)
def test_argument_name(key: str, name: str) -> None:
    """TensorFlow's renaming of a keyword into a function argument name."""
    assert argument_name(key) == name


def test_nested_args_are_checked_as_tensorflow_writes_them(nested: tuple[Path, Cases]) -> None:
    """signature_def and argument_keywords keep `0/observation`, the TF2 input signature's dict
    has `arg_0_observation`; `mixed`'s wrapper takes `x_1` before `x.2` (`x_2`). No finding."""
    model = surgery.load(nested[0])
    meta = model.proto.meta_graphs[0]
    tf2 = tf2_signatures(meta)
    assert tf2 is not None
    assert (
        sorted(meta.signature_def["action"].inputs) == sorted(tf2["action"].argument_keywords) == NESTED_KEYS
    )
    assert sorted(tf2["action"].inputs) == [argument_name(k) for k in NESTED_KEYS]
    assert sorted(tf2["action"].inputs) == [f"arg_{k.replace('/', '_')}" for k in NESTED_KEYS]
    wrapper = next(f for f in meta.graph_def.library.function if f.signature.name == tf2["mixed"].function)
    names = [wrapper.arg_attr[i].attr["_user_specified_name"].s.decode() for i in range(2)]
    assert names == input_order(meta.signature_def["mixed"].inputs) == ["x_1", "x.2"]
    report = check(model)
    assert (report.ok, report.findings) == (True, [])


@pytest.mark.parametrize("signature", ["action", "mixed"])
def test_copy_signature_of_nested_args_serves(
    oracle: Oracle, nested: tuple[Path, Cases], tmp_path: Path, signature: str
) -> None:
    """copy-signature works on it, and the copy computes the original's outputs in both loaders."""
    path, cases = nested
    out = tmp_path / "out"
    result = run_cli("copy-signature", path, signature, "copied", "-o", out)
    assert result.returncode == 0, result.stderr
    assert check(surgery.load(out)).findings == []
    copied = [{**case, "signature": "copied"} for case in select(cases, signature)]
    assert_serves_all(oracle, out, cases + copied)


@pytest.mark.parametrize(
    ("signature", "old", "new"),
    [
        ("action", "0/observation", "0/obs"),  # keeps its place in the arguments
        ("action", "0/observation", "2/observation"),  # moves after 1/carry
        ("mixed", "x_1", "x.9"),  # x_9 now sorts after x.2's x_2
        ("mixed", "x.2", "a"),
    ],
)
def test_rename_input_of_nested_args_serves(
    oracle: Oracle, nested: tuple[Path, Cases], tmp_path: Path, signature: str, old: str, new: str
) -> None:
    """rename-input follows TensorFlow's argument names (`arg_0_obs`) and their order; check
    finds nothing, and every loader takes the new key with the original's outputs."""
    path, cases = nested
    out = tmp_path / "out"
    result = run_cli("rename-input", path, signature, old, new, "-o", out)
    assert result.returncode == 0, result.stderr
    assert check(surgery.load(out)).findings == []
    renamed = []
    for case in select(cases, signature):
        inputs = {(new if k == old else k): v for k, v in case["inputs"].items()}
        renamed.append({**case, "inputs": inputs})
    assert_serves_all(oracle, out, renamed)


def test_rename_input_refuses_a_key_with_another_keys_argument_name(nested: tuple[Path, Cases]) -> None:
    result = run_cli("rename-input", nested[0], "mixed", "x.2", "x_1", "--dry-run")
    assert result.returncode == 2
    assert "already has an input 'x_1'" in result.stderr
    result = run_cli("rename-input", nested[0], "mixed", "x.2", "x/1", "--dry-run")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "savedmodel-surgery: error: input 'x/1' of signature 'mixed' would be TensorFlow's keyword "
        "argument 'x_1', as 'x_1' is already: choose another key"
    )


def _rename_nested_in_signature_def(meta: MetaGraphDef) -> None:
    inputs = meta.signature_def["action"].inputs
    inputs["0/obs"].CopyFrom(inputs["0/observation"])
    del inputs["0/observation"]


def _rename_nested_in_tf2_dict(meta: MetaGraphDef) -> None:
    tf2 = tf2_signatures(meta)
    assert tf2 is not None
    kwargs = meta.object_graph_def.concrete_functions[tf2["action"].function].canonicalized_input_signature
    fields = kwargs.tuple_value.values[1].dict_value.fields
    fields["arg_0_obs"].CopyFrom(fields["arg_0_observation"])
    del fields["arg_0_observation"]


def _rename_nested_argument_keyword(meta: MetaGraphDef) -> None:
    tf2 = tf2_signatures(meta)
    assert tf2 is not None
    keywords = meta.object_graph_def.nodes[tf2["action"].node_id].bare_concrete_function.argument_keywords
    keywords[list(keywords).index("0/observation")] = "0/obs"


@pytest.mark.parametrize(
    ("corrupt", "expected", "refused_by"),
    [
        pytest.param(
            _rename_nested_in_signature_def,
            [("input-keys", "error"), ("input-keys", "error")],
            {"v1", "cc"},
            id="signature-def",
        ),
        pytest.param(
            _rename_nested_in_tf2_dict,
            # The TF2 dict's `arg_0_obs` is neither signature_def's key nor an argument keyword's.
            [("argument-keywords", "warning"), ("input-keys", "error"), ("input-keys", "error")],
            {"tf2"},
            id="tf2-input-signature",
        ),
        pytest.param(
            _rename_nested_argument_keyword, [("argument-keywords", "warning")], set(), id="argument-keyword"
        ),
    ],
)
def test_a_nested_key_renamed_in_one_place_is_caught(
    oracle: Oracle,
    nested: tuple[Path, Cases],
    tmp_path: Path,
    corrupt: Corruption,
    expected: list[tuple[str, str]],
    refused_by: set[str],
) -> None:
    """`0/observation` renamed in one place only: check reports it, and the loader that no longer
    takes `0/observation` refuses the case (a renamed argument keyword is an alias: no refusal)."""
    path, cases = nested
    model = surgery.load(path)
    corrupt(model.proto.meta_graphs[0])
    report = check(model)
    assert sorted((f.code, f.severity) for f in report.findings) == sorted(expected)
    assert {f.signature for f in report.findings} == {"action"}
    out = surgery.save(model, tmp_path / "out")
    action = select(cases, "action")
    for loader in LOADERS:
        results = oracle.run(out, loader, action)
        assert all(("error" in r) == (loader in refused_by) for r in results), (loader, results)


# --- every model TensorFlow wrote or TensorFlow Serving serves --------------------------------

REALWORLD = ROOT.parent / "shared" / "realworld"
REALWORLD_WARNINGS = {
    # TensorFlow Serving's 2017 test model declares the tf.Example input of its regress signature
    # DT_FLOAT over the string placeholder tf_example; the v1 loader feeds it by name, and
    # TensorFlow Serving's Regress API builds that input itself from tf.Examples.
    "tfserving/servables__tensorflow__saved_model_half_plus_three__00000123": [
        ("placeholder-dtype", "warning", "tensorflow/serving/regress")
    ],
}
"""The only findings on the corpus and the fixtures: warnings, per model."""


def _models() -> dict[str, Path]:
    """The real-world models (`tfserving/NAME`, `wild/NAME`) and the fixtures (`fixtures/NAME`)."""
    models = {f"fixtures/{name}": FIXTURES / name for name in FIXTURE_NAMES}
    if not REALWORLD.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {REALWORLD} is missing", pytrace=False)
        pytest.skip(f"{REALWORLD} is missing")
    for group in ("tfserving", "wild"):
        for path in sorted((REALWORLD / group).iterdir()):
            if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
                models[f"{group}/{path.name}"] = path
    return models


def test_no_error_on_any_model_tensorflow_wrote() -> None:
    """Every model of the corpus and every fixture: no error, and only the warnings listed."""
    models = _models()
    assert len(models) >= len(FIXTURE_NAMES) + 27, sorted(models)
    found = {}
    for name, path in models.items():
        findings = check(surgery.load(path)).findings
        if findings:
            found[name] = [(f.code, f.severity, f.signature) for f in findings]
    assert found == REALWORLD_WARNINGS
