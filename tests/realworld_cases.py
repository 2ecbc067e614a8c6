"""The real-world tier's models, sample inputs, edits and comparisons (see test_realworld.py).

The models live outside the repository, in `../shared/realworld/` beside the clone: TensorFlow
Serving's test models in `tfserving/` and models published on GitHub in `wild/`, whose
`manifest.json` gives per signature a sample input and the outputs TensorFlow computed for it.
Nothing here knows a particular model: inputs come from the manifest or from the signature
(`show --json`), tf.Example features from the graph's ParseExample nodes, and each edit picks
the signature and key it applies to. The tables of what is expected to differ from model to
model (loaders that refuse a model, signatures that are not run, refused edits) are in
test_realworld.py.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conftest import ROOT, run_cli
from surgery_proto.tensorflow.core.protobuf import saved_model_pb2

REALWORLD = ROOT.parent / "shared" / "realworld"
MANIFEST = REALWORLD / "wild" / "manifest.json"
RESERVED = ("__saved_model_init_op", "__saved_model_train_op")
FLOATS = ("float16", "bfloat16", "float32", "float64")
FLOAT32 = ("float32", "float32_ref")
"""A float32 output: a TF1 graph may return a ref variable's value (`Cast` takes it as is)."""
TFSERVING_PREFIX = "servables__tensorflow__saved_model_"

Case = dict[str, Any]
Cases = list[Case]

REL = 1e-4
"""Relative and absolute tolerance of an edited model's outputs against the original's."""
REL_FLOAT16 = 2e-2
"""Relative tolerance of an output cast to float16."""


# --- the models --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealModel:
    """One model of the tier: `tfserving/<dir>` (the `servables__tensorflow__saved_model_` prefix
    dropped), `wild/<dir>` or `scratch/<kind>` (built by the oracle's `build` op)."""

    id: str
    path: Path
    manifest: dict[str, Any] | None = None
    built_cases: Cases | None = field(default=None, compare=False)
    """For a scratch model, the cases the oracle's `build` op returned."""


def discover() -> list[RealModel]:
    """Every model under REALWORLD (none when it is missing)."""
    if not REALWORLD.is_dir():
        return []
    manifest = {m["name"]: m for m in json.loads(MANIFEST.read_text())["models"]}
    models = [
        RealModel(f"tfserving/{p.name.removeprefix(TFSERVING_PREFIX)}", p)
        for p in sorted((REALWORLD / "tfserving").iterdir())
        if p.is_dir()
    ]
    models += [
        RealModel(f"wild/{p.name}", p, manifest[p.name])
        for p in sorted((REALWORLD / "wild").iterdir())
        if p.is_dir()
    ]
    return models


@functools.cache
def describe(path: Path) -> dict[str, Any]:
    """`show --json` of the model (one meta graph: every model of the tier has one)."""
    result = run_cli("show", path, "--json", check=True)
    meta_graphs: list[dict[str, Any]] = json.loads(result.stdout)["meta_graphs"]
    assert len(meta_graphs) == 1, f"{path}: {len(meta_graphs)} meta graphs"
    return meta_graphs[0]


def user_signatures(path: Path) -> list[str]:
    """The model's signature keys other than TensorFlow's own, sorted."""
    return sorted(k for k in describe(path)["signatures"] if k not in RESERVED)


# --- sample inputs -----------------------------------------------------------------------------


def ramp7(shape: list[int]) -> Any:
    """The manifest's float fill: flat element i is 0.1 * ((i % 7) + 1), as nested lists (a bare
    number for a scalar), written 0.1 ... 0.7 to keep the JSON short (the same in every dtype)."""
    size = math.prod(shape)
    flat = np.round(0.1 * (np.arange(size) % 7 + 1), 1)
    return flat.reshape(shape).tolist()


def _nested(flat: list[Any], shape: list[int]) -> Any:
    """Row-major `flat` as nested lists of `shape` (a bare value for a scalar)."""
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape).tolist()


def manifest_input(spec: dict[str, Any]) -> dict[str, Any]:
    """A CASE input from one manifest input: `fill` ramp7 or zeros, `values_flat`, `bytes_b64`."""
    dtype, shape = spec["dtype"], spec["shape"]
    if "bytes_b64" in spec:
        return {"dtype": dtype, "b64": _nested(spec["bytes_b64"], shape)}
    if spec.get("fill") == "ramp7":
        return {"dtype": dtype, "value": ramp7(shape)}
    if spec.get("fill") == "zeros":
        zero = 0.0 if dtype in FLOATS else False if dtype == "bool" else 0
        return {"dtype": dtype, "value": _nested([zero] * math.prod(shape), shape)}
    return {"dtype": dtype, "value": _nested(spec["values_flat"], shape)}


PARSERS = ("ParseExample", "ParseExampleV2")
CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def _parser(path: Path, tensor: str) -> tuple[Any, dict[str, Any]] | None:
    """The ParseExample node that parses the graph tensor `tensor` (following it through
    Identity nodes and into called functions), with the nodes of its graph or function body."""
    meta_graph = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes()).meta_graphs[0]
    functions = {f.signature.name: f for f in meta_graph.graph_def.library.function}

    def search(nodes: dict[str, Any], name: str, depth: int) -> tuple[Any, dict[str, Any]] | None:
        for node in nodes.values():
            for index, ref in enumerate(node.input):
                if ref.startswith("^") or ref.split(":")[0] != name:
                    continue
                if node.op in PARSERS and index == 0:
                    return node, nodes
                found = None
                if node.op == "Identity":
                    found = search(nodes, node.name, depth)
                elif node.op in CALLS and depth < 8:
                    body = functions[node.attr["f"].func.name]
                    arg = body.signature.input_arg[index].name
                    found = search({n.name: n for n in body.node_def}, arg, depth + 1)
                if found is not None:
                    return found
        return None

    return search({n.name: n for n in meta_graph.graph_def.node}, tensor.split(":")[0], 0)


def example_features(path: Path, tensor: str) -> dict[str, dict[str, list[Any]]] | None:
    """The dense features of a tf.Example for the ParseExample node that parses `tensor` (floats
    ramp7, ints 0, strings 'hello'), or None when no ParseExample parses it."""
    found = _parser(path, tensor)
    if found is None:
        return None
    node, nodes = found

    def const(ref: str) -> list[bytes]:
        return list(nodes[ref.split(":")[0]].attr["value"].tensor.string_val)

    if node.op == "ParseExample":  # one Const per key, after the sparse keys' Consts
        n_sparse, n_dense = node.attr["Nsparse"].i, node.attr["Ndense"].i
        keys = [const(ref)[0] for ref in node.input[2 + n_sparse : 2 + n_sparse + n_dense]]
    else:  # one Const vector per kind: serialized, names, sparse_keys, dense_keys, ...
        keys = const(node.input[3])
    features: dict[str, dict[str, list[Any]]] = {}
    for key, dtype, shape in zip(
        keys, node.attr["Tdense"].list.type, node.attr["dense_shapes"].list.shape, strict=True
    ):
        size = math.prod(d.size for d in shape.dim)
        if dtype == 1:  # DT_FLOAT
            features[key.decode()] = {"float_list": ramp7([size])}
        elif dtype == 9:  # DT_INT64
            features[key.decode()] = {"int64_list": [0] * size}
        else:
            features[key.decode()] = {"bytes_list": ["hello"] * size}
    return features


def signature_input(path: Path, info: dict[str, Any]) -> dict[str, Any]:
    """A CASE input made from a signature's TensorInfo: floats ramp7, ints zeros, bool False,
    strings 'hello' or a tf.Example where ParseExample reads them; unknown dims 1, unknown rank
    a scalar."""
    dtype, shape = info["dtype"], info["shape"]
    if dtype == "string" and (features := example_features(path, info["name"])) is not None:
        return {"dtype": dtype, "tf_examples": [features]}
    dims = [] if shape is None else [1 if d == -1 else d for d in shape]
    if dtype in FLOATS:
        return {"dtype": dtype, "value": ramp7(dims)}
    fill = "hello" if dtype == "string" else False if dtype == "bool" else 0
    return {"dtype": dtype, "value": _nested([fill] * math.prod(dims), dims)}


def sample_cases(model: RealModel, not_run: set[str]) -> Cases:
    """One case per user signature not in `not_run`, in signature order."""
    if model.built_cases is not None:
        return [{k: v for k, v in c.items() if k != "outputs"} for c in model.built_cases]
    meta = describe(model.path)
    checks = (model.manifest or {}).get("signature_checks", {})
    cases = []
    for key in user_signatures(model.path):
        if key in not_run:
            continue
        check = checks.get(key)
        if check and check.get("run"):
            inputs = {k: manifest_input(v) for k, v in sorted(check["inputs"].items())}
        else:
            signature = meta["signatures"][key]
            inputs = {k: signature_input(model.path, v) for k, v in sorted(signature["inputs"].items())}
        cases.append({"tags": meta["tags"], "signature": key, "inputs": inputs})
    return cases


def manifest_outputs(model: RealModel, signature: str) -> dict[str, Any] | None:
    """The outputs the manifest records for a signature, as CASE outputs (None if none)."""
    check = (model.manifest or {}).get("signature_checks", {}).get(signature)
    if not check or not check.get("run"):
        return None
    outputs = {}
    for key, spec in check["outputs"].items():
        values = spec["values_flat"]
        if spec["dtype"] in FLOATS:  # NaN and infinities as strings
            values = [float(v) for v in values]
        outputs[key] = {"dtype": spec["dtype"], "shape": spec["shape"], "flat": values}
        if spec.get("truncated"):
            outputs[key]["truncated"] = True
    return outputs


# --- comparing outputs -------------------------------------------------------------------------


def flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for part in value for item in flatten(part)]
    return [value]


def close(a: Any, b: Any, rel: float) -> bool:
    """Equal within `rel` (relative and absolute), NaN equal to NaN; non-numbers exactly."""
    if isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=rel, abs_tol=REL)
    return bool(a == b)


def compare_values(got: list[Any], want: list[Any], rel: float) -> str | None:
    """None when equal; otherwise where they first differ."""
    if len(got) != len(want):
        return f"{len(got)} values != {len(want)}"
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if not close(a, b, rel):
            return f"value [{i}] {a!r} != {b!r}"
    return None


def output_mismatches(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Differences between a run's outputs and the expected ones (keys, dtypes, shapes, values).

    An expected output may carry `rel` (its tolerance) and gives `value` (nested, as the oracle
    writes it) or `flat` (row-major; `truncated`: only the first values)."""
    problems = []
    if sorted(got) != sorted(want):
        return [f"output keys {sorted(got)} != {sorted(want)}"]
    for key, expected in want.items():
        actual = got[key]
        if actual["dtype"] != expected["dtype"]:
            problems.append(f"{key}: dtype {actual['dtype']} != {expected['dtype']}")
            continue
        if actual.get("shape") != expected.get("shape"):
            problems.append(f"{key}: shape {actual.get('shape')} != {expected.get('shape')}")
            continue
        values = flatten(actual["value"])
        wanted = expected["flat"] if "flat" in expected else flatten(expected["value"])
        if expected.get("truncated"):
            values = values[: len(wanted)]
        if (problem := compare_values(values, wanted, expected.get("rel", REL))) is not None:
            problems.append(f"{key}: {problem}")
    return problems


# --- edits -------------------------------------------------------------------------------------

EDITS = (
    "rename-signature",
    "rename-input",
    "rename-output",
    "set-shape",
    "set-dtype-output",
    "set-dtype-input",
    "set-method",
    "copy-signature",
    "remove-signature",
    "apply",
    "convert",
)
"""Every edit the tier makes, each on a fresh copy of every model it applies to."""


@dataclass
class Edit:
    """One edit as CLI arguments (`MODEL` and `OUT` filled in by `command`) and what the edited
    model must serve: `expect` maps the original's cases (with the outputs one loader gave) to
    the edited model's; `gone` lists cases that must now fail."""

    args: list[str]
    expect: Callable[[Cases], Cases]
    gone: Callable[[Cases], Cases] = lambda cases: []
    plan: dict[str, Any] | None = None

    def command(self, model: Path, out: Path, plan_file: Path) -> list[str | Path]:
        if self.plan is not None:
            plan_file.write_text(json.dumps(self.plan))
            return ["apply", model, plan_file, "-o", out]
        return [self.args[0], model, *self.args[1:], "-o", out]


def _signature_renamed(old: str, new: str) -> Callable[[Cases], Cases]:
    return lambda cases: [{**c, "signature": new} if c["signature"] == old else c for c in cases]


def _key_renamed(signature: str, side: str, old: str, new: str) -> Callable[[Cases], Cases]:
    def rename(cases: Cases) -> Cases:
        out = copy.deepcopy(cases)
        for case in out:
            if case["signature"] == signature:
                case[side] = {new if k == old else k: v for k, v in case[side].items()}
        return out

    return rename


def _retyped(signature: str, side: str, key: str, dtype: str, rel: float = REL) -> Callable[[Cases], Cases]:
    def retype(cases: Cases) -> Cases:
        out = copy.deepcopy(cases)
        for case in out:
            if case["signature"] == signature:
                case[side][key]["dtype"] = dtype
                if side == "outputs":
                    case[side][key]["rel"] = rel
        return out

    return retype


def _copied(src: str, dst: str) -> Callable[[Cases], Cases]:
    """Each case of `src` followed by the same case on `dst` (same state for a stateful model)."""

    def copied(cases: Cases) -> Cases:
        out = []
        for case in cases:
            out.append(case)
            if case["signature"] == src:
                out.append({**case, "signature": dst})
        return out

    return copied


def _of(signature: str) -> Callable[[Cases], Cases]:
    return lambda cases: [c for c in cases if c["signature"] == signature]


def _without(signature: str) -> Callable[[Cases], Cases]:
    return lambda cases: [c for c in cases if c["signature"] != signature]


def _compose(*steps: Callable[[Cases], Cases]) -> Callable[[Cases], Cases]:
    def composed(cases: Cases) -> Cases:
        for step in steps:
            cases = step(cases)
        return cases

    return composed


def _first_fixed_dim(shape: list[int] | None) -> int | None:
    if shape is None:
        return None
    return next((i for i, d in enumerate(shape) if d != -1), None)


def plan_edit(model: RealModel, name: str, runnable: list[str]) -> Edit | str:
    """The edit `name` of `model`, on the first of its run signatures it applies to (the
    primary one first: serving_default, else the first in order), or why it does not apply."""
    meta = describe(model.path)
    signatures = meta["signatures"]
    if not runnable:
        if name == "convert":
            return Edit(["convert"], expect=lambda cases: cases)
        return "no signature that the tier runs"
    primary = "serving_default" if "serving_default" in runnable else runnable[0]
    order = [primary, *[k for k in runnable if k != primary]]

    def inputs(key: str) -> dict[str, Any]:
        result: dict[str, Any] = signatures[key]["inputs"]
        return result

    def outputs(key: str) -> dict[str, Any]:
        result: dict[str, Any] = signatures[key]["outputs"]
        return result

    if name == "rename-signature":
        new = f"{primary}_renamed"
        return Edit(["rename-signature", primary, new], _signature_renamed(primary, new), gone=_of(primary))
    if name == "rename-input":
        sig = next((k for k in order if inputs(k)), None)
        if sig is None:
            return "no signature with inputs"
        old = min(inputs(sig))
        return Edit(["rename-input", sig, old, f"zz_{old}"], _key_renamed(sig, "inputs", old, f"zz_{old}"))
    if name == "rename-output":
        sig = order[0]
        old = min(outputs(sig))
        return Edit(["rename-output", sig, old, f"zz_{old}"], _key_renamed(sig, "outputs", old, f"zz_{old}"))
    if name == "set-shape":
        for side in ("inputs", "outputs"):
            for sig in order:
                for key, info in sorted(signatures[sig][side].items()):
                    dim = _first_fixed_dim(info["shape"])
                    if dim is None:
                        continue
                    shape = [-1 if i == dim else d for i, d in enumerate(info["shape"])]
                    flag = ["--output-key"] if side == "outputs" else []
                    text = ",".join(map(str, shape))
                    return Edit(["set-shape", sig, key, text, *flag], lambda cases: cases)
        return "no fixed dim in any input or output"
    if name == "set-dtype-output":
        for sig in order:
            key = next((k for k, v in sorted(outputs(sig).items()) if v["dtype"] in FLOAT32), None)
            if key is not None:
                return Edit(
                    ["set-dtype", sig, key, "float16", "--output-key"],
                    _retyped(sig, "outputs", key, "float16", REL_FLOAT16),
                )
        return "no float32 output"
    if name == "set-dtype-input":
        for sig in order:
            key = next((k for k, v in sorted(inputs(sig).items()) if v["dtype"] == "float32"), None)
            if key is not None:
                return Edit(["set-dtype", sig, key, "float64"], _retyped(sig, "inputs", key, "float64"))
        return "no float32 input"
    if name == "set-method":
        method = signatures[primary]["method_name"]
        new_method = "tensorflow/serving/regress"
        if method == new_method:
            new_method = "tensorflow/serving/predict"
        return Edit(["set-method", primary, new_method], lambda cases: cases)
    if name == "copy-signature":
        dst = f"{primary}_copy"
        return Edit(["copy-signature", primary, dst], _copied(primary, dst))
    if name == "remove-signature":
        others = [k for k in user_signatures(model.path) if k != primary]
        if not others:
            return "one signature only"
        victim = others[-1]
        return Edit(["remove-signature", victim], _without(victim), gone=_of(victim))
    if name == "apply":  # the primary signature renamed, its first input and output renamed, the
        # output cast to float16 (if float32) and the method changed, as one plan
        new = "planned"
        operations: list[dict[str, Any]] = [{"op": "rename-signature", "old": primary, "new": new}]
        steps = [_signature_renamed(primary, new)]
        if inputs(primary):
            old = min(inputs(primary))
            operations.append({"op": "rename-input", "signature": new, "old": old, "new": f"zz_{old}"})
            steps.append(_key_renamed(new, "inputs", old, f"zz_{old}"))
        old = min(outputs(primary))
        operations.append({"op": "rename-output", "signature": new, "old": old, "new": f"zz_{old}"})
        steps.append(_key_renamed(new, "outputs", old, f"zz_{old}"))
        if outputs(primary)[old]["dtype"] == "float32":  # then the renamed output cast to float16
            cast = {"op": "set-dtype", "signature": new, "key": f"zz_{old}", "dtype": "float16"}
            operations.append({**cast, "output": True})
            steps.append(_retyped(new, "outputs", f"zz_{old}", "float16", REL_FLOAT16))
        operations.append({"op": "set-method", "signature": new, "method": "tensorflow/serving/regress"})
        return Edit(["apply"], _compose(*steps), gone=_of(primary), plan={"operations": operations})
    if name == "convert":
        return Edit(["convert"], expect=lambda cases: cases)
    raise ValueError(f"unknown edit {name!r}")


# --- files -------------------------------------------------------------------------------------


def is_canonical(pb: bytes) -> bool:
    """Whether `pb` is protobuf-python's deterministic serialization of the message it holds, as
    TensorFlow 2.21's Python writer gives it. Other writers differ: TF1's, and the C++
    serializer's map order (Keras 2 models of TF 2.2 to 2.15 here), which a text copy cannot
    tell apart; for those the round trip keeps the message, not the bytes."""
    message = saved_model_pb2.SavedModel.FromString(pb)
    return bool(message.SerializeToString(deterministic=True) == pb)


def same_message(a: bytes, b: bytes) -> bool:
    return bool(saved_model_pb2.SavedModel.FromString(a) == saved_model_pb2.SavedModel.FromString(b))
