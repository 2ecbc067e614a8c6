"""Validator agreement tier: `check` says "error" exactly when TensorFlow refuses the model.

Each kind of corruptions.KINDS is applied once per scope (the v1 graph, a function body) to every
base model: the fixtures and a sample of `../shared/realworld/` (TF1 graphs and TF2 function
libraries), at a place picked by a `random.Random` keyed by model, kind and scope, so every run
corrupts the same nodes (SURGERY_AGREEMENT_DRAWS=N: N places each, a wider sweep). Each corrupted
model is written with `surgery.save` and then:

- TensorFlow's verdict: one oracle request per loader that loads the original (`tf2`, `cc`, then
  `v1`), running a probe case per tag set (a signature no model has: the error naming it means
  the loader loaded the model) and the model's cases (the fixtures' recorded cases; for
  real-world models the manifest's `signature_checks` inputs, or inputs made from the
  TensorInfos: numbers, or a tf.Example of every feature the model's ParseExample nodes parse).
  A loader refuses when the load fails, a case that ran on the original fails, or a case gives
  other outputs than the original did under that loader; TensorFlow refuses when any loader
  does. The TF2 loader imports every function of a TF2 model's library at load time; the
  v1 and C++ loaders import the v1 graph, and instantiate functions as the graph runs. `v1` is
  not asked when `cc` already refuses: it reads what `cc` reads, and its Python error formatting
  can spin for minutes on the C++ message (a regex over a whole function library).
- `check`'s verdict: `surgery.check(surgery.load(out)).errors > 0` (the CLI's exit 1).

Every disagreement must be listed in KNOWN with TensorFlow's reason; the test of each kind fails
on any other, and on a KNOWN entry that no longer matches anything (the validator has caught
up: remove it). Each test prints its kind's table and disagreements; the last one to finish
prints every kind's table (`-s`, or `-rP` under xdist). Without `.venv-tf` or
`../shared/realworld` the tier skips (one line); under CI (`CI` set) it fails.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from corruptions import KINDS, SCOPES, corrupt

import surgery
from conftest import FIXTURE_NAMES, FIXTURES, LOADERS, ROOT, Oracle, case_loaders, expected_cases
from surgery.schema import DataType

REALWORLD = ROOT.parent / "shared" / "realworld"
MANIFEST = REALWORLD / "wild" / "manifest.json"
PROBE = "__surgery_agreement_probe__"
REL = 1e-6
REFUSALS = ("refused", "differs")
"""A loader's verdicts that make TensorFlow's "refuses" (the others: "same", "not asked")."""
TIMEOUT = 30
"""Seconds an oracle request may take (they take 0.01-1 s) before its server is killed."""

DRAWS = int(os.environ.get("SURGERY_AGREEMENT_DRAWS", "1"))
"""Corruptions per model, kind and scope (each at a place of its own `random.Random`): a wider
sweep with SURGERY_AGREEMENT_DRAWS=N, about N times as long."""

REALWORLD_SAMPLE = (
    # TF1 graphs
    "tfserving/servables__tensorflow__saved_model_half_plus_two_cpu__00000123",
    "tfserving/servables__tensorflow__saved_model_counter__00000123",  # stateful; TF2 refuses it
    "wild/ast_cse_novars",  # constants and math, no variables
    "wild/tf12_mnist_customtag",  # tag set ["tag"], no signatures: loads only
    "wild/iris_keras_tfserving",  # tf.Example input
    "wild/oc_tf_model_serving",  # a TF1 graph with a dataset function
    # TF2 function libraries
    "tfserving/servables__tensorflow__saved_model_half_plus_two_tf2_cpu__00000123",
    "wild/mnist_ondevice_training",
    "wild/tcardio",
    "wild/tf23_marckarp",
    "wild/tf24_fashion_mnist",
    "wild/tfx_dicoding_feetbo90",  # tf.Example input (base64)
)
"""Small real-world models (at most 503 graph nodes, 31 functions)."""

NOT_RUN: dict[tuple[str, str], str] = {
    ("wild/mnist_ondevice_training", "train"): "trains: changes the variables",
    ("wild/mnist_ondevice_training", "save"): "writes a checkpoint file",
    ("wild/mnist_ondevice_training", "restore"): "reads a checkpoint file the tier does not have",
    ("wild/oc_tf_model_serving", "serving_default"): "a 1x320x640x3 input: a second per run",
}
"""(model, signature): not run, the model is only loaded."""


@dataclass(frozen=True)
class Known:
    """A disagreement TensorFlow explains: `pattern` is searched in `model: corruption`."""

    kind: str
    pattern: str
    tensorflow: str  # "refuses" or "accepts"
    reason: str


KNOWN: list[Known] = [
    Known(
        "gpu-device",
        r"the v1 graph, node ",
        "refuses",
        "TensorFlow Serving's C++ loader places the v1 graph without soft placement: a node pinned to "
        "/device:GPU:0 fails on a machine without a GPU ('Cannot assign a device for operation') and "
        "loads on one with a GPU; the Python loaders place it softly. check cannot know the serving "
        "machine (it passes TensorFlow Serving's own half_plus_two_gpu)",
    ),
]
"""Disagreements between `check` and TensorFlow, each with TensorFlow's reason."""


# --- the base models and their cases ------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    id: str
    path: Path


BASES = [Base(f"fixtures/{name}", FIXTURES / name) for name in FIXTURE_NAMES] + [
    Base(rel, REALWORLD / rel) for rel in REALWORLD_SAMPLE
]


def _nested(flat: list[Any], shape: list[int]) -> Any:
    """Row-major `flat` as nested lists of `shape`."""
    if not shape:
        return flat[0]
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nested(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _manifest_input(spec: dict[str, Any]) -> dict[str, Any]:
    """A CASE input from a manifest input (`fill` ramp7 or zeros, `values_flat`, `bytes_b64`)."""
    dtype, shape = spec["dtype"], spec["shape"]
    if "bytes_b64" in spec:
        return {"dtype": dtype, "b64": _nested(spec["bytes_b64"], shape)}
    size = math.prod(shape)
    if spec.get("fill") == "ramp7":
        flat = [round(0.1 * (i % 7 + 1), 1) for i in range(size)]
    elif spec.get("fill") == "zeros":
        flat = [0.0 if dtype.startswith(("float", "bfloat")) else 0] * size
    else:
        flat = spec["values_flat"]
    return {"dtype": dtype, "value": _nested(flat, shape)}


_NUMERIC = {
    DataType.DT_FLOAT: ("float32", 0.5),
    DataType.DT_DOUBLE: ("float64", 0.5),
    DataType.DT_INT32: ("int32", 1),
    DataType.DT_INT64: ("int64", 1),
}


def _example_features(proto: Any) -> dict[str, dict[str, list[Any]]]:
    """One tf.Example feature per dense key any ParseExample node of the model (v1 graph or
    function body) parses: floats 0.5, ints 0, strings 'hello'. ParseExample ignores the keys it
    does not parse, so this one example serves every signature that takes tf.Examples."""
    features: dict[str, dict[str, list[Any]]] = {}
    for meta in proto.meta_graphs:
        for nodes in [meta.graph_def.node, *(f.node_def for f in meta.graph_def.library.function)]:
            by_name = {n.name: n for n in nodes}

            def keys(ref: str, by_name: dict[str, Any] = by_name) -> list[bytes]:
                node = by_name.get(ref.split(":")[0])
                return list(node.attr["value"].tensor.string_val) if node is not None else []

            for node in nodes:
                if node.op == "ParseExample":
                    start = 2 + node.attr["Nsparse"].i
                    dense = [
                        k for ref in node.input[start : start + node.attr["Ndense"].i] for k in keys(ref)
                    ]
                elif node.op == "ParseExampleV2":
                    dense = keys(node.input[3])
                else:
                    continue
                for key, dtype, shape in zip(
                    dense, node.attr["Tdense"].list.type, node.attr["dense_shapes"].list.shape, strict=False
                ):
                    size = math.prod(max(d.size, 1) for d in shape.dim)
                    feature = (
                        {"float_list": [0.5] * size}
                        if dtype == DataType.DT_FLOAT
                        else {"int64_list": [0] * size}
                        if dtype == DataType.DT_INT64
                        else {"bytes_list": ["hello"] * size}
                    )
                    features[key.decode()] = feature
    return features


def _signature_input(info: Any, features: dict[str, Any]) -> dict[str, Any] | None:
    """A CASE input for a dense TensorInfo: numbers (unknown dims 1, unknown rank [1]), or one
    tf.Example with `features` for a string; None for any other."""
    if info.WhichOneof("encoding") != "name":
        return None
    if info.dtype == DataType.DT_STRING and features:
        return {"dtype": "string", "tf_examples": [features]}
    if info.dtype not in _NUMERIC:
        return None
    dtype, fill = _NUMERIC[info.dtype]
    shape = [1] if info.tensor_shape.unknown_rank else [max(d.size, 1) for d in info.tensor_shape.dim]
    return {"dtype": dtype, "value": _nested([fill] * math.prod(shape), shape)}


@cache
def base_cases(base_id: str) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The model's probe cases (one per tag set) and, per loader, its cases."""
    base = next(b for b in BASES if b.id == base_id)
    proto = surgery.load(base.path, lazy=False).proto
    probes = [
        {"tags": list(m.meta_info_def.tags), "signature": PROBE, "inputs": {}} for m in proto.meta_graphs
    ]
    if base_id.startswith("fixtures/"):
        recorded = expected_cases(base.path.name)
        cases = {loader: [c for c in recorded if loader in case_loaders(c)] for loader in LOADERS}
        return probes, cases
    checks: dict[str, Any] = {}
    if base_id.startswith("wild/"):
        manifest = {m["name"]: m for m in json.loads(MANIFEST.read_text())["models"]}
        checks = manifest[base.path.name].get("signature_checks", {})
    run = []
    features = _example_features(proto)
    for meta in proto.meta_graphs:
        tags = list(meta.meta_info_def.tags)
        for key, signature in sorted(meta.signature_def.items()):
            if key.startswith("__") or (base_id, key) in NOT_RUN:
                continue
            check = checks.get(key)
            if check is not None:
                if check.get("run"):
                    inputs = {k: _manifest_input(v) for k, v in sorted(check["inputs"].items())}
                    run.append({"tags": tags, "signature": key, "inputs": inputs})
                continue
            made = {k: _signature_input(v, features) for k, v in sorted(signature.inputs.items())}
            if all(v is not None for v in made.values()):
                run.append({"tags": tags, "signature": key, "inputs": made})
    return probes, dict.fromkeys(LOADERS, run)


# --- TensorFlow's verdict ---------------------------------------------------------------------


def _line(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else message
    return first[:240]


def _same(a: Any, b: Any) -> bool:
    """Equal outputs: nested lists and dicts, floats within REL, NaN equal to NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL, abs_tol=REL)
    return bool(a == b)


def _run(oracle: Oracle, model: Path, loader: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One request; a request that failed whole (an OracleCrash, or no answer in TIMEOUT seconds:
    the server is killed) fails every case."""
    server = oracle.cc if loader == "cc" else oracle.tf
    timed_out = threading.Event()

    def kill() -> None:
        process = server.process
        if process is not None and process.poll() is None:
            timed_out.set()
            process.kill()

    timer = threading.Timer(TIMEOUT, kill)
    timer.start()
    try:
        response = oracle.request(op="run", model=str(model), loader=loader, cases=cases)
    finally:
        timer.cancel()
    if timed_out.is_set():
        response = {"ok": False, "error": f"Timeout: no answer in {TIMEOUT} s"}
    if not response["ok"]:
        return [{"error": response["error"]} for _ in cases]
    results: list[dict[str, Any]] = response["results"]
    return results


@dataclass
class Baseline:
    """What a loader does with the original: None if it refuses it, else the cases that ran and
    their outputs."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)


def _loaded(result: dict[str, Any]) -> bool:
    return PROBE in result.get("error", "")


_BASELINES: dict[tuple[str, str], Baseline | None] = {}


def baseline(oracle: Oracle, base: Base, loader: str) -> Baseline | None:
    key = (base.id, loader)
    if key not in _BASELINES:
        probes, cases = base_cases(base.id)
        results = _run(oracle, base.path, loader, probes + cases[loader])
        if not all(_loaded(r) for r in results[: len(probes)]):
            _BASELINES[key] = None
        else:
            ran = [
                (c, r) for c, r in zip(cases[loader], results[len(probes) :], strict=True) if "outputs" in r
            ]
            _BASELINES[key] = Baseline([c for c, _ in ran], [r["outputs"] for _, r in ran])
    return _BASELINES[key]


def loader_verdict(
    oracle: Oracle, base: Base, model: Path, loader: str, original: Baseline
) -> tuple[str, str]:
    """("refused", why), ("differs", where) or ("same", "")."""
    probes, _ = base_cases(base.id)
    results = _run(oracle, model, loader, probes + original.cases)
    for result in results[: len(probes)]:
        if not _loaded(result):
            return "refused", _line(result["error"])
    for case, result, want in zip(original.cases, results[len(probes) :], original.outputs, strict=True):
        if "error" in result:
            return "refused", f"signature {case['signature']!r}: {_line(result['error'])}"
        if not _same(result["outputs"], want):
            return "differs", f"signature {case['signature']!r} computes other outputs"
    return "same", ""


# --- the comparison ----------------------------------------------------------------------------


@dataclass
class Outcome:
    model: str
    kind: str
    scope: str
    corruption: str
    loaders: dict[str, list[str]]  # loader -> [verdict, message], for the loaders that load the original
    tensorflow: str  # "refuses" or "accepts"
    check: str  # "error", "ok" or "crash"
    check_detail: str
    explained: str | None = None

    @property
    def agrees(self) -> bool:
        return _agrees(asdict(self))

    def describe(self) -> str:
        refusing = [f"{name}: {v} ({m})" for name, (v, m) in self.loaders.items() if v in REFUSALS]
        said = f"check {self.check}" + (f" ({self.check_detail})" if self.check_detail else "")
        tf = "; ".join(refusing) if refusing else "every loader " + "/".join(self.loaders) + " serves it"
        return f"{self.model}: {self.corruption}\n    TensorFlow {self.tensorflow}: {tf}\n    {said}"


def _agrees(outcome: dict[str, Any]) -> bool:
    """check errs exactly when TensorFlow refuses (a crash of check never agrees)."""
    return outcome["check"] != "crash" and (outcome["tensorflow"] == "refuses") == (
        outcome["check"] == "error"
    )


def _check_verdict(model: Path) -> tuple[str, str]:
    try:
        report = surgery.check(surgery.load(model))
    except Exception as exc:  # a crash of check is a disagreement, whatever TensorFlow says
        return "crash", f"{type(exc).__name__}: {_line(str(exc))}"
    errors = [f"{f.code}: {f.message}" for f in report.findings if f.severity == "error"]
    return ("error" if errors else "ok"), _line(errors[0]) if errors else ""


def _explain(outcome: Outcome, used: set[int]) -> None:
    subject = f"{outcome.model}: {outcome.corruption}"
    for i, known in enumerate(KNOWN):
        if (
            known.kind == outcome.kind
            and known.tensorflow == outcome.tensorflow
            and outcome.check != "crash"
            and re.search(known.pattern, subject)
        ):
            outcome.explained = known.reason
            used.add(i)
            return


def run_kind(oracle: Oracle, kind: str, tmp_path: Path) -> list[Outcome]:
    outcomes = []
    for number, base in enumerate(BASES):
        for scope, draw in itertools.product(SCOPES, range(DRAWS)):
            model = surgery.load(base.path, lazy=False)
            key = f"{base.id}/{kind}/{scope}" + (f"/{draw}" if draw else "")
            corruption = corrupt(model.proto, kind, scope, random.Random(key))
            if corruption is None:
                continue
            out = tmp_path / f"{number}-{scope}-{draw}"
            surgery.save(model, out, sync=False)
            verdicts = {}
            for loader in ("tf2", "cc", "v1"):
                original = baseline(oracle, base, loader)
                if original is None:
                    continue
                if loader == "v1" and verdicts.get("cc", ["same"])[0] != "same":
                    verdicts[loader] = ["not asked", "the C++ loader refuses"]  # see the docstring
                    continue
                verdicts[loader] = list(loader_verdict(oracle, base, out, loader, original))
            refuses = any(v in REFUSALS for v, _ in verdicts.values())
            check, detail = _check_verdict(out)
            outcomes.append(
                Outcome(
                    base.id,
                    kind,
                    scope,
                    str(corruption),
                    verdicts,
                    "refuses" if refuses else "accepts",
                    check,
                    detail,
                )
            )
    return outcomes


# --- the summary ---------------------------------------------------------------------------------


def _row(kind: str, outcomes: list[dict[str, Any]]) -> str:
    n = len(outcomes)
    refused = sum(o["tensorflow"] == "refuses" for o in outcomes)
    by = {
        loader: sum(o["loaders"].get(loader, ["same"])[0] in REFUSALS for o in outcomes) for loader in LOADERS
    }
    errors = sum(o["check"] == "error" for o in outcomes)
    agree = sum(_agrees(o) for o in outcomes)
    explained = sum(o["explained"] is not None for o in outcomes)
    rate = f"{100 * agree / n:5.1f}%" if n else "    -"
    loaders = " ".join(f"{by[loader]:3d}" for loader in LOADERS)
    return (
        f"{kind:22s} {n:6d} {refused:7d} {loaders}  {errors:6d} {agree:6d} {rate}  {explained:5d} "
        f"{n - agree - explained:5d}"
    )


def summary(rows: dict[str, list[dict[str, Any]]]) -> str:
    header = (
        f"{'kind':22s} {'models':>6s} {'TF refs':>7s} {'tf2':>3s} {' v1':>3s} {' cc':>3s}  "
        f"{'check!':>6s} {'agree':>6s} {'rate':>6s}  {'known':>5s} {'unexp':>5s}"
    )
    lines = [header] + [_row(kind, rows[kind]) for kind in KINDS if kind in rows]
    if len(rows) > 1:
        lines.append(_row("overall", [o for kind in rows for o in rows[kind]]))
    lines.append(
        "TF refs: TensorFlow refuses (tf2, v1, cc: that loader; v1 is asked only where cc serves); "
        "check!: check errs; known, unexp: disagreements KNOWN explains, and the others"
    )
    return "\n".join(lines)


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory all xdist workers of this run share (pytest's base temp for one process)."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "validator-agreement"
    shared.mkdir(exist_ok=True)
    return shared


def _record(tmp_path_factory: pytest.TempPathFactory, kind: str, outcomes: list[Outcome]) -> str:
    """Write this kind's outcomes where the other workers see them; every kind's table once all
    kinds are in, this kind's alone before."""
    shared = _shared_dir(tmp_path_factory)
    temporary = shared / f".{kind}.{os.getpid()}"
    temporary.write_text(json.dumps([asdict(o) for o in outcomes]))
    temporary.rename(shared / f"{kind}.json")
    rows = {p.stem: json.loads(p.read_text()) for p in shared.glob("*.json")}
    if set(rows) >= set(KINDS):
        return summary(rows)
    return summary({kind: rows[kind]})


# --- the test ----------------------------------------------------------------------------------


def _prerequisites() -> None:
    if REALWORLD.is_dir():
        return
    message = f"validator agreement tier: {REALWORLD} is missing"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {message}", pytrace=False)
    pytest.skip(message)


@pytest.mark.parametrize("kind", KINDS)
def test_check_agrees_with_tensorflow(
    oracle: Oracle, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, kind: str
) -> None:
    """For each corruption of this kind, `check` errs exactly when a TensorFlow loader refuses
    the corrupted model or computes other outputs, unless KNOWN explains the difference."""
    _prerequisites()
    start = time.monotonic()
    outcomes = run_kind(oracle, kind, tmp_path)
    used: set[int] = set()
    for outcome in outcomes:
        if not outcome.agrees:
            _explain(outcome, used)
    table = _record(tmp_path_factory, kind, outcomes)
    unexplained = [o for o in outcomes if not o.agrees and o.explained is None]
    stale = [k for i, k in enumerate(KNOWN) if k.kind == kind and i not in used]
    print(f"\n{kind}: {len(outcomes)} corrupted models in {time.monotonic() - start:.1f} s\n{table}")
    for outcome in outcomes:
        if not outcome.agrees:
            mark = "UNEXPLAINED" if outcome.explained is None else f"known: {outcome.explained}"
            print(f"{mark}\n{outcome.describe()}")
    report = [f"{len(unexplained)} unexplained disagreement(s) of {len(outcomes)} ({kind}):"]
    report += [o.describe() for o in unexplained]
    report += [f"KNOWN entry matches nothing now (remove it): {k}" for k in stale]
    assert not unexplained and not stale, "\n".join([*report, table])
