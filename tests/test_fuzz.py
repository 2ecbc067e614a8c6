"""Hostile input: every command over mutated models, text-format models and plans, and nothing breaks.

Each input ends in a result or a one-line error with exit 2: no traceback, no hang, no change to
the input, no output or temporary file left by a failed edit, and memory bounded by a small
multiple of the input (tests/fuzzing.py has the harness and the mutators). Here the short runs:
derandomized and a few dozen examples per property, part of `make test`. `make fuzz` runs the
same properties with FUZZ_EXAMPLES random examples each, then coverage-guided atheris
(tests/fuzz_atheris.py). The inputs that once broke the tool (tests/fuzz_corpus/) are replayed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import surgery
from conftest import FIXTURES, ROOT
from fuzzing import (
    CORPUS,
    FIXTURE_NAMES,
    HOSTILE_PLANS,
    FuzzFailure,
    Mutator,
    corpus_entries,
    exercise,
    exercise_plan,
    fixture_bytes,
    mutate_text,
    replay,
    run,
    text_model,
    varint,
)
from surgery.schema import MetaGraphDef, SavedModel, StructuredValue
from surgery.wire import iter_fields

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))  # set by `make fuzz`
KINDS = sorted(Mutator(random.Random(0), []).kinds)


def budget(short: int) -> settings:
    """`short` derandomized examples in `make test`; FUZZ_EXAMPLES random ones in `make fuzz`."""
    return settings(
        max_examples=EXAMPLES or short,
        derandomize=not EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


@contextlib.contextmanager
def keep_failures(test: str, data: bytes, fmt: str = "pb") -> Iterator[None]:
    """In `make fuzz`, save a failing input to the corpus (the last written is hypothesis's smallest)."""
    try:
        yield
    except FuzzFailure:
        if EXAMPLES:
            CORPUS.mkdir(exist_ok=True)
            (CORPUS / f"hypothesis-{test}.{fmt}").write_bytes(data)
        raise


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- properties ----------------------------------------------------------------------------------


@budget(25)
@given(
    name=st.sampled_from(FIXTURE_NAMES),
    mutations=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 2**32)), min_size=1, max_size=3),
)
def test_mutated_models(work: Path, name: str, mutations: list[tuple[str, int]]) -> None:
    """Wire-level mutations of the fixtures: truncations, huge length prefixes, duplicated and deleted
    fields, unknown enum values, odd strings, wrong messages, deep nesting, object-graph references."""
    data = fixture_bytes(name)
    for kind, seed in mutations:
        _, data = Mutator(random.Random(seed)).mutate(data, kind)
    with keep_failures("mutated", data):
        exercise(data, work / "mutated")


odd_text = st.text(st.characters(codec="utf-8"), max_size=24)


@budget(20)
@given(
    key=odd_text,
    tensor=odd_text,
    dtype=st.integers(-3, 3000),
    dims=st.none() | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5),
    reference=st.integers(-2, 40),
    depth=st.integers(0, 120),
)
def test_hostile_names_and_values(
    work: Path, key: str, tensor: str, dtype: int, dims: list[int] | None, reference: int, depth: int
) -> None:
    """Signature keys in any Unicode, odd tensor names, unknown dtypes, any dims, any object reference."""
    proto = SavedModel.FromString(fixture_bytes("module_multi"))
    meta = proto.meta_graphs[0]
    meta.signature_def[key].CopyFrom(meta.signature_def["fixed"])
    info = meta.signature_def[key].inputs["row"]
    info.name = tensor
    info.dtype = dtype  # type: ignore[assignment]
    info.tensor_shape.Clear()
    if dims is None:
        info.tensor_shape.unknown_rank = True
    for size in dims or []:
        info.tensor_shape.dim.add().size = size
    graph = meta.object_graph_def
    graph.nodes[reference % len(graph.nodes)].children.add(node_id=reference, local_name=key)
    _nest(next(iter(graph.concrete_functions.values())).output_signature, depth)
    data = proto.SerializeToString()
    with keep_failures("hostile", data):
        exercise(data, work / "hostile")


def _nest(value: StructuredValue, depth: int) -> None:
    inner = StructuredValue()
    inner.CopyFrom(value)
    for _ in range(depth):
        outer = StructuredValue()
        outer.list_value.values.add().CopyFrom(inner)
        inner = outer
    value.CopyFrom(inner)


@budget(8)
@given(name=st.sampled_from(FIXTURE_NAMES), seeds=st.lists(st.integers(0, 2**32), min_size=1, max_size=3))
def test_mutated_text_models(work: Path, name: str, seeds: list[int]) -> None:
    """saved_model.pbtxt cut short, nested thousands deep, with odd tokens, names and numbers."""
    text = text_model(name)
    for seed in seeds:
        text = mutate_text(random.Random(seed), text)
    with keep_failures("text", text.encode(), "pbtxt"):
        exercise(text.encode(), work / "text", fmt="pbtxt", edits=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=20,
)
operation = st.fixed_dictionaries(
    {"op": st.sampled_from(["rename-signature", "set-shape", "set-dtype", "rename-tensor", "nope"])},
    optional={
        k: json_values for k in ("old", "new", "regex", "signature", "key", "shape", "dtype", "tag_set")
    },
)


@budget(20)
@given(plan=st.fixed_dictionaries({"operations": st.lists(operation, max_size=3)}) | json_values)
def test_generated_plans(work: Path, plan: Any) -> None:
    """Any JSON document as a plan: validated, applied, or refused in one line."""
    with keep_failures("plan", json.dumps(plan).encode(), "plan.json"):
        exercise_plan(json.dumps(plan), work / "plans", suffix=".json")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("index", range(len(HOSTILE_PLANS)))
def test_hostile_plans(tmp_path: Path, index: int, suffix: str) -> None:
    """Billion laughs, Python tags, deep nesting, huge numbers, bad encodings: never more than one line."""
    exercise_plan(HOSTILE_PLANS[index], tmp_path, suffix=suffix)


def test_plans_never_execute_anything(tmp_path: Path) -> None:
    """A plan with PyYAML's Python tags is refused as invalid YAML; nothing it names runs."""
    marker = tmp_path / "pwned"
    plan = f"!!python/object/apply:os.system ['touch {marker}']"
    outcome = exercise_plan(plan, tmp_path / "work")
    assert outcome.status == 2 and "could not determine a constructor" in outcome.stderr
    assert not marker.exists()


@pytest.mark.parametrize("entry", corpus_entries(), ids=lambda p: p.name)
def test_corpus(tmp_path: Path, entry: Path) -> None:
    """The inputs the fuzzers found breaking the tool, replayed through every command."""
    replay(entry, tmp_path)


# --- the named hostile inputs of the issue, one by one --------------------------------------------


def _fixture() -> SavedModel:
    return SavedModel.FromString(fixture_bytes("module_multi"))


def _model(tmp_path: Path, data: bytes) -> Path:
    model = tmp_path / "in" / "model"
    model.mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(data)
    return model


def test_length_prefix_claiming_gigabytes(tmp_path: Path) -> None:
    """A meta graph whose length prefix claims 8 GB: refused at once, without allocating it."""
    data = fixture_bytes("module_multi")
    _, _, start, value_start, _ = next(f for f in iter_fields(data, 0, len(data)) if f[0] == 2)
    hostile = data[: start + 1] + varint(8 << 30) + data[value_start:]
    model = _model(tmp_path, hostile)
    outcome = run(["show", str(model)])
    assert outcome.status == 2 and "is not a valid SavedModel" in outcome.stderr
    exercise(hostile, tmp_path / "all")


def test_duplicate_map_keys(tmp_path: Path) -> None:
    """Two signature_def entries with one key: the last wins (as in TensorFlow); copies stay lossless."""
    proto = _fixture()
    first = MetaGraphDef()
    first.signature_def["masked"].method_name = "first/duplicate"
    meta = first.SerializeToString() + proto.meta_graphs[0].SerializeToString()  # concatenation merges
    head = SavedModel(saved_model_schema_version=proto.saved_model_schema_version).SerializeToString()
    hostile = head + b"\x12" + varint(len(meta)) + meta
    model = _model(tmp_path, hostile)
    loaded = surgery.load(model)
    assert loaded.proto.meta_graphs[0].signature_def["masked"].method_name != "first/duplicate"
    surgery.save(loaded, tmp_path / "copy")
    assert (tmp_path / "copy" / "saved_model.pb").read_bytes() == hostile
    exercise(hostile, tmp_path / "all")


def test_unknown_enum_values(tmp_path: Path) -> None:
    """A dtype no TensorFlow knows: shown as dtype(N), checked, edited around."""
    proto = _fixture()
    proto.meta_graphs[0].signature_def["fixed"].inputs["row"].dtype = 4242  # type: ignore[assignment]
    model = _model(tmp_path, proto.SerializeToString())
    shown = run(["show", str(model), "--json"])
    assert shown.status == 0
    assert (
        json.loads(shown.stdout)["meta_graphs"][0]["signatures"]["fixed"]["inputs"]["row"]["dtype"]
        == "dtype(4242)"
    )
    exercise(proto.SerializeToString(), tmp_path / "all")


@pytest.mark.parametrize("key", ["é键😀", "a\nb", "\x1b[31mred", "x" * 10000, " ", "../../etc"])
def test_unicode_signature_keys(tmp_path: Path, key: str) -> None:
    """Any Unicode key works; in error messages it is escaped onto one line."""
    proto = _fixture()
    meta = proto.meta_graphs[0]
    meta.signature_def[key].CopyFrom(meta.signature_def["masked"])
    model = _model(tmp_path, proto.SerializeToString())
    shown = run(["show", str(model), "--json"])
    assert key in json.loads(shown.stdout)["meta_graphs"][0]["signatures"]
    refused = run(["rename-signature", str(model), key, "fixed", "-o", str(tmp_path / "out")])
    assert refused.status == 2 and refused.stderr.count("\n") == 1
    exercise(proto.SerializeToString(), tmp_path / "all", new=key)


def test_odd_tensor_names(tmp_path: Path) -> None:
    proto = _fixture()
    for i, info in enumerate(proto.meta_graphs[0].signature_def["masked"].inputs.values()):
        info.name = ["", ":", "a:b:c", "^ctrl", "x:-1", "x:99999999999999999999", "名前:0"][i % 7]
    exercise(proto.SerializeToString(), tmp_path / "all")


def test_cyclic_and_out_of_range_object_graph_references(tmp_path: Path) -> None:
    """Children that point at themselves, at the root and past the end: no hang, no crash."""
    proto = _fixture()
    graph = proto.meta_graphs[0].object_graph_def
    for node_id, node in enumerate(graph.nodes):
        node.children.add(node_id=node_id, local_name="self")
        node.children.add(node_id=0, local_name="root")
        node.children.add(node_id=10**6, local_name="far")
    graph.nodes[0].children[0].node_id = -1
    for function in graph.concrete_functions.values():
        function.bound_inputs.extend([-5, 10**6, 0])
    exercise(proto.SerializeToString(), tmp_path / "all")


def test_text_format_nested_beyond_the_stack(tmp_path: Path) -> None:
    """A pbtxt nested 100000 deep: one error line, not a RecursionError."""
    text = (
        "meta_graphs { object_graph_def { concrete_functions { key: 'f' value { output_signature "
        + ("{ list_value { values " * 100_000)
        + "}" * 200_003
    )
    model = tmp_path / "in" / "model"
    model.mkdir(parents=True)
    (model / "saved_model.pbtxt").write_text(text)
    outcome = run(["show", str(model)])
    assert outcome.status == 2 and outcome.stderr.count("\n") == 1, outcome.stderr


# --- memory -------------------------------------------------------------------------------------

# VmHWM, the peak resident size of this process image (ru_maxrss would carry the parent's over a fork).
PEAK = (
    "import re, sys\n"
    "from surgery.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "status_file = open('/proc/self/status').read()\n"
    "print(int(re.search(r'VmHWM:\\s*(\\d+) kB', status_file).group(1)) * 1024, file=sys.stderr)\n"
    "sys.exit(status)\n"
)


def _peak(*args: str | Path) -> int:
    """Peak resident memory (bytes) of one command in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK, *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode in (0, 1, 2), result.stderr
    return int(result.stderr.splitlines()[-1])


def _huge_shape(proto: SavedModel) -> None:
    shape = proto.meta_graphs[0].signature_def["fixed"].inputs["row"].tensor_shape
    for _ in range(1_000_000):
        shape.dim.add().size = 1


def _huge_node_list(proto: SavedModel) -> None:
    graph = proto.meta_graphs[0].graph_def
    template = graph.node[0]
    for i in range(100_000):
        graph.node.add().CopyFrom(template)
        graph.node[-1].name = f"copy_{i}"


def _huge_string(proto: SavedModel) -> None:
    proto.meta_graphs[0].meta_info_def.tags.append("x" * 1_000_000)


@pytest.fixture(scope="module")
def baseline() -> int:
    """The peak of show and check on a small model: the interpreter and libraries."""
    return max(_peak("show", FIXTURES / "module_multi"), _peak("check", FIXTURES / "module_multi"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("inflate", [_huge_shape, _huge_node_list, _huge_string], ids=lambda f: f.__name__)
def test_memory_stays_a_small_multiple_of_the_input(
    tmp_path: Path, baseline: int, inflate: Callable[[SavedModel], None]
) -> None:
    """Huge repeated fields: show and check grow linearly, at most ~40x the input (measured: 3x for one
    huge string, 8-10x for 100,000 graph nodes, 33-37x for a million 4-byte shape dims, each a Python
    object), so a hostile model needs as much memory as its size predicts, no more."""
    proto = _fixture()
    inflate(proto)
    data = proto.SerializeToString()
    model = _model(tmp_path, data)
    for command in ("show", "check"):
        grown = _peak(command, model) - baseline
        assert grown < 48 * len(data), f"{command}: {grown / 2**20:.0f} MB for {len(data) / 2**20:.1f} MB"


def test_function_lists_shorter_than_the_signature(tmp_path: Path) -> None:
    """A wrapper function with fewer arguments or results than its signature's keys (found by atheris
    for arguments): a rename that reorders them is refused in one line."""
    proto = _fixture()
    for function in proto.meta_graphs[0].graph_def.library.function:
        del function.signature.input_arg[1:]
        del function.signature.output_arg[1:]
    model = _model(tmp_path, proto.SerializeToString())
    for command in (
        ["rename-input", "masked", "a_dense", "z_dense"],
        ["rename-output", "masked", "alpha", "zeta"],
    ):
        outcome = run([command[0], str(model), *command[1:], "-o", str(tmp_path / "out")])
        assert outcome.status == 2 and "the model is inconsistent; run check" in outcome.stderr, (
            outcome.stderr
        )
    exercise(proto.SerializeToString(), tmp_path / "all")
