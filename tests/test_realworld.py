"""Real-world tier: every edit on every SavedModel of `../shared/realworld/`, proven by TensorFlow.

The models were written by TensorFlow 1.0 to 2.15 and by people other than this project
(TensorFlow Serving's test models, models published on GitHub; see realworld_cases.py), plus a
Keras 3 `model.export()` the oracle builds. For each model:

- `show`, `show --json` (the same signatures TensorFlow's own parse gives) and `check` (exit 0,
  no error finding) work on the original;
- the baseline: each signature of the original runs under every loader that loads it (`tf2`,
  `v1`, `cc`), with the manifest's sample input or one made from the signature, and gives the
  outputs the manifest recorded; a loader that refuses the original is listed in
  LOADER_REFUSALS and not used for that model;
- each edit of realworld_cases.EDITS that applies, on a fresh copy through the CLI: the result is
  `check` clean, every loader that loaded the original computes the original's outputs for the
  same inputs (under the new names and dtypes), and its `fingerprint.pb`, if any, is the one
  TensorFlow computes. An edit may be refused (exit 2, one line) only as REFUSED_EDITS lists.

Without `../shared/realworld` or `.venv-tf` the tier skips (one line); under CI (`CI` set) it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from realworld_cases import (
    EDITS,
    REALWORLD,
    Cases,
    Edit,
    RealModel,
    describe,
    discover,
    is_canonical,
    manifest_outputs,
    output_mismatches,
    plan_edit,
    same_message,
    sample_cases,
)

from conftest import TF_PYTHON, Oracle, run_cli

LOADERS = ("tf2", "v1", "cc")
KERAS3 = "scratch/keras3_export"
PROBE = "__no_such_signature__"
"""A signature no model has: a loader that loaded the model names it in its error."""

GPU_PINNED = "was explicitly assigned to /device:GPU:0 but available devices are"
LOADER_REFUSALS: dict[tuple[str, str], str] = {
    # TF1 graphs that the TF2 loader (`load_v1_in_v2`) cannot prune into functions: a ref
    # variable as an output; TensorInfos whose shapes contradict the graph (which signature it
    # prunes first, and so the message, varies).
    ("tfserving/counter__00000123", "tf2"): r"Output 0 of node '\S+' has a reference type float_ref",
    ("tfserving/half_plus_three__00000123", "tf2"): (
        r"Shape must be rank 1 but is rank 0|Shapes must be equal rank, but are 2 and 0"
    ),
    # Pinned to /device:GPU:0: the C++ loader places the graph as written (the Python session
    # places it softly, on the CPU).
    ("tfserving/half_plus_two_gpu__00000123", "cc"): GPU_PINNED,
    ("tfserving/half_plus_two_gpu_trt__00000123", "cc"): GPU_PINNED,
}
"""(model, loader): the loader refuses the original with an error matching this regex, and is
not used for that model."""

NOT_RUN: dict[tuple[str, str], str] = {
    ("wild/mnist_ondevice_training", "train"): "trains: changes the variables the other signatures read",
    ("wild/mnist_ondevice_training", "save"): "writes a checkpoint file",
    ("wild/mnist_ondevice_training", "restore"): "reads a checkpoint file the tier does not have",
}
"""(model, signature): not run (the edits still apply to the model as a whole)."""

SIGNATURE_ERRORS: dict[tuple[str, str], str] = {
    # Its TensorInfo says float32 for `tf_example:0`, a string placeholder: no feed fits it.
    ("tfserving/half_plus_three__00000123", "tensorflow/serving/regress"): (
        r"tf_example:0 is string in the graph; the case feeds float32"
        r"|Expects arg\[0\] to be string but float is provided"
    ),
}
"""(model, signature): fails in the original under every loader that loads the model, with an
error matching this regex; not run."""

INPUT_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    # Its TensorInfos carry no shape (a scalar, to TensorFlow), but x:0 is a parsed (None, 1).
    ("tfserving/half_plus_three__00000123", "serving_default"): {"x": {"dtype": "float32", "value": [[0.1]]}},
}
"""(model, signature): inputs given by hand where the signature's TensorInfo misleads."""

NOT_A_PLACEHOLDER = "is fed to a Identity node, not a Placeholder; only a placeholder's dtype can be changed"
REFUSED_EDITS: dict[tuple[str, str], str] = {
    # TensorFlow Serving's TF1 half_plus_* models feed `x:0` (and `x2:0`), the Identity of a feature
    # ParseExample parsed, in every float input: a Cast cannot be put in front of a tensor that
    # the graph computes, and the ParseExample fixes its dtype.
    **{
        (f"tfserving/{name}", "set-dtype-input"): NOT_A_PLACEHOLDER
        for name in (
            "half_plus_three__00000123",
            "half_plus_two_2_versions__00000123",
            "half_plus_two_2_versions__00000124",
            "half_plus_two_cpu__00000123",
            "half_plus_two_cpu_with_empty_saved_model_config__00000123",
            "half_plus_two_cpu_with_saved_model_config__00000123",
            "half_plus_two_gpu__00000123",
            "half_plus_two_gpu_trt__00000123",
            "half_plus_two_mkl__00000123",
            "half_plus_two_mlmd__00000123",
        )
    },
    # The same in a Keras model exported by hand: predict-iris's input is the parsed `x:0`.
    ("wild/iris_keras_tfserving", "set-dtype-input"): NOT_A_PLACEHOLDER,
    # The input is the output of the dataset iterator the model was trained through.
    ("wild/oc_tf_model_serving", "set-dtype-input"): (
        "IteratorGetNext:0 is fed to a IteratorGetNext node, not a Placeholder"
    ),
}
"""(model, edit): the CLI refuses the edit (exit 2, one line holding this message), for a
legitimate reason given beside each entry."""


# --- the models ----------------------------------------------------------------------------------

CORPUS = discover()
MODELS: dict[str, RealModel] = {m.id: m for m in CORPUS}
MODEL_IDS = [*MODELS, KERAS3]


def _prerequisites(model_id: str) -> None:
    """Skip (fail under CI) without the corpus or the TensorFlow venv, in one line."""
    missing = []
    if model_id != KERAS3 and not REALWORLD.is_dir():
        missing.append(f"{REALWORLD} is missing")
    if not TF_PYTHON.exists():
        missing.append(f"{TF_PYTHON} is missing (`make test` creates it)")
    if missing:
        message = "real-world tier: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {message}", pytrace=False)
        pytest.skip(message)


def test_corpus_present() -> None:
    """The corpus is there (else the tier has no models: skip, or fail under CI)."""
    _prerequisites("wild/")
    assert len(CORPUS) == 27, [m.id for m in CORPUS]


_SCRATCH: dict[str, RealModel] = {}


def _model(model_id: str, oracle: Oracle, tmp_path_factory: pytest.TempPathFactory) -> RealModel:
    """The model; the Keras 3 export is built once per session (worker) through the oracle."""
    if model_id != KERAS3:
        return MODELS[model_id]
    if model_id not in _SCRATCH:
        path = tmp_path_factory.mktemp("realworld") / "keras3_export"
        cases = oracle.ok(op="build", kind="keras3_export", model=str(path))["cases"]
        _SCRATCH[model_id] = RealModel(model_id, path, built_cases=cases)
    return _SCRATCH[model_id]


# --- running cases -------------------------------------------------------------------------------


def _run(oracle: Oracle, model: Path, loader: str, cases: Cases) -> list[dict[str, Any]] | None:
    """The loader's results for the cases, or None when the oracle does not know the loader."""
    try:
        return oracle.run(model, loader, cases)
    except AssertionError as err:
        if "unknown loader" in str(err):
            return None
        raise


def _probe(tags: list[str]) -> dict[str, Any]:
    return {"tags": tags, "signature": PROBE, "inputs": {}}


def _loaded(result: dict[str, Any]) -> bool:
    """Whether the probe's result shows a loaded model (its error names the missing signature)."""
    return PROBE in result.get("error", "")


def _strip(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != "outputs"}


@dataclass
class Baseline:
    """The original's cases and, per loader that loads it, the outputs it gives."""

    tags: list[str]
    cases: Cases
    recorded: dict[str, Cases] = field(default_factory=dict)
    """Loader -> the cases with the outputs that loader computed."""
    refused: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def runnable(self) -> list[str]:
        return sorted({c["signature"] for c in self.cases})


_BASELINES: dict[str, Baseline] = {}


def baseline(oracle: Oracle, model: RealModel) -> Baseline:
    """Run the original under every loader (one request each) and check what each gives: the
    refusals LOADER_REFUSALS lists and no others, SIGNATURE_ERRORS' errors, every other case
    served. Computed once per model and worker."""
    if model.id in _BASELINES:
        return _BASELINES[model.id]
    not_run = {s for (m, s) in NOT_RUN if m == model.id}
    erring = {s: message for (m, s), message in SIGNATURE_ERRORS.items() if m == model.id}
    everything = sample_cases(model, not_run)
    for case in everything:
        case["inputs"].update(INPUT_OVERRIDES.get((model.id, case["signature"]), {}))
    cases = [c for c in everything if c["signature"] not in erring]
    tags = describe(model.path)["tags"]
    result = Baseline(tags, cases)
    problems = []
    for loader in LOADERS:
        results = _run(oracle, model.path, loader, [*everything, _probe(tags)])
        if results is None:
            result.unknown.append(loader)
            continue
        *served, probe = results
        refusal = LOADER_REFUSALS.get((model.id, loader))
        if not _loaded(probe):
            result.refused[loader] = probe.get("error", "")
            if refusal is None or not re.search(refusal, probe.get("error", "")):
                problems.append(f"{loader} refuses the original: {probe.get('error')}")
            continue
        if refusal is not None:
            problems.append(f"{loader} loads the original, which LOADER_REFUSALS says it refuses")
        recorded = []
        for case, outcome in zip(everything, served, strict=True):
            key = case["signature"]
            if key in erring:
                if not re.search(erring[key], outcome.get("error", "")):
                    problems.append(f"{loader} {key!r}: {outcome} (expected the error {erring[key]!r})")
            elif "error" in outcome:
                problems.append(f"{loader} {key!r}: {outcome['error']}")
            else:
                recorded.append({**case, "outputs": outcome["outputs"]})
        result.recorded[loader] = recorded
    assert not problems, f"{model.id}: " + "\n".join(problems)
    assert result.recorded, f"{model.id}: no loader loads it"
    _BASELINES[model.id] = result
    return result


def _grouped(*values: str) -> Any:
    """A parameter kept with its model's other tests on one worker (`--dist loadgroup`)."""
    return pytest.param(*values, marks=pytest.mark.xdist_group(f"realworld-{values[0]}"))


# --- the original --------------------------------------------------------------------------------


def _check_clean(model: Path) -> list[str]:
    """`check --json`: problems unless it exits 0 with no error finding (a finding without a
    severity counts as an error)."""
    result = run_cli("check", model, "--json")
    try:
        findings = json.loads(result.stdout)["findings"]
    except (ValueError, KeyError):
        return [f"check exited {result.returncode}: {result.stdout}{result.stderr}"]
    errors = [f for f in findings if f.get("severity", "error") == "error"]
    if result.returncode != 0 or errors:
        return [f"check exited {result.returncode}: {json.dumps(errors or findings)}"]
    return []


@pytest.mark.parametrize("model_id", [_grouped(m) for m in MODEL_IDS])
def test_show_and_check(model_id: str, oracle: Oracle, tmp_path_factory: pytest.TempPathFactory) -> None:
    """show prints every signature, show --json gives the signatures TensorFlow's parse gives,
    and check finds nothing wrong with the original."""
    _prerequisites(model_id)
    model = _model(model_id, oracle, tmp_path_factory)
    text = run_cli("show", model.path)
    assert text.returncode == 0, text.stderr
    for key in describe(model.path)["signatures"]:
        assert f"signature_def['{key}']" in text.stdout
    ours = json.loads(run_cli("show", model.path, "--json", check=True).stdout)["meta_graphs"]
    theirs = oracle.ok(op="describe", model=str(model.path))["meta_graphs"]
    assert [{"tags": m["tags"], "signatures": m["signatures"]} for m in ours] == theirs
    assert _check_clean(model.path) == []


@pytest.mark.parametrize("model_id", [_grouped(m) for m in MODEL_IDS])
def test_baseline(model_id: str, oracle: Oracle, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every loader that loads the original serves every run signature, with the outputs the
    manifest (or the oracle's build) recorded: a check of the harness itself."""
    _prerequisites(model_id)
    model = _model(model_id, oracle, tmp_path_factory)
    base = baseline(oracle, model)
    recorded_by_build = {c["signature"]: c["outputs"] for c in model.built_cases or []}
    problems = []
    for loader, cases in base.recorded.items():
        for case in cases:
            key = case["signature"]
            want = manifest_outputs(model, key) or recorded_by_build.get(key)
            if want is not None:
                problems += [f"{loader} {key!r}: {p}" for p in output_mismatches(case["outputs"], want)]
    assert not problems, "\n".join(problems)


# --- the edits -----------------------------------------------------------------------------------


def _serves(oracle: Oracle, base: Baseline, model: Path, edit: Edit) -> list[str]:
    """Problems with what the edited model serves, loader by loader: the original's outputs
    under the new names, the cases the edit took away gone, the model loaded."""
    problems = []
    for loader, recorded in base.recorded.items():
        expected = edit.expect(recorded)
        gone = [_strip(c) for c in edit.gone(base.cases)]
        run = [*(_strip(c) for c in expected), *gone, _probe(base.tags)]
        results = _run(oracle, model, loader, run)
        assert results is not None
        served, lost, probe = results[: len(expected)], results[len(expected) : -1], results[-1]
        if not _loaded(probe):
            problems.append(f"{loader} refuses the edited model: {probe.get('error')}")
            continue
        for case, outcome in zip(expected, served, strict=True):
            where = f"{loader} {case['signature']!r}"
            if "error" in outcome:
                problems.append(f"{where}: {outcome['error']}")
            else:
                problems += [f"{where}: {p}" for p in output_mismatches(outcome["outputs"], case["outputs"])]
        for case, outcome in zip(gone, lost, strict=True):
            if "error" not in outcome:
                problems.append(f"{loader} {case['signature']!r} still serves")
    return problems


def _fingerprint(
    oracle: Oracle, model: Path, *, content: Path | None = None, kept: int | None = None
) -> list[str]:
    """The model's fingerprint.pb (if any) against TensorFlow's CreateFingerprintDef of `content`
    (the model itself by default; for a text model its binary form, since TensorFlow hashes
    `saved_model.pb` only), every field but uuid; version producer `kept` is allowed too (the
    original's, on a fingerprint an unedited model keeps)."""
    if not (model / "fingerprint.pb").exists():
        return []
    written = oracle.ok(op="read_fingerprint", model=str(model))["fingerprint"]
    theirs = oracle.fingerprint(content or model)
    differ = {k: (written[k], v) for k, v in theirs.items() if written[k] != v}
    if kept is not None and written["version_producer"] == kept:
        differ.pop("version_producer", None)
    return [f"fingerprint.pb differs from TensorFlow's (written, theirs): {differ}"] if differ else []


def _verify(oracle: Oracle, base: Baseline, model: Path, edit: Edit, **fingerprint: Any) -> list[str]:
    return [
        *_check_clean(model),
        *_fingerprint(oracle, model, **fingerprint),
        *_serves(oracle, base, model, edit),
    ]


def _assert_refused(result: Any, refusal: str) -> None:
    assert result.returncode == 2, f"exit {result.returncode}, expected the refusal {refusal!r}"
    assert result.stderr.count("\n") == 1 and refusal in result.stderr, result.stderr


@pytest.mark.parametrize(("model_id", "edit_name"), [_grouped(m, e) for m in MODEL_IDS for e in EDITS])
def test_edit(
    model_id: str, edit_name: str, oracle: Oracle, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The edit, through the CLI on a fresh copy: check clean, TensorFlow's fingerprint, and every
    loader that loaded the original computes its outputs; or refused as REFUSED_EDITS says."""
    _prerequisites(model_id)
    model = _model(model_id, oracle, tmp_path_factory)
    base = baseline(oracle, model)
    edit = plan_edit(model, edit_name, base.runnable)
    if isinstance(edit, str):
        assert (model_id, edit_name) not in REFUSED_EDITS
        pytest.skip(f"{edit_name} does not apply to {model_id}: {edit}")
    source = tmp_path / "model"
    shutil.copytree(model.path, source)
    refusal = REFUSED_EDITS.get((model_id, edit_name))
    if edit_name == "convert":
        _convert(oracle, base, source, tmp_path, refusal)
        return
    out = tmp_path / "out"
    result = run_cli(*edit.command(source, out, tmp_path / "plan.json"))
    if refusal is not None:
        _assert_refused(result, refusal)
        return
    command = " ".join(str(arg).replace(f"{tmp_path}/", "") for arg in result.args[3:])
    assert result.returncode == 0, f"{command}: exit {result.returncode}: {result.stderr}"
    problems = _verify(oracle, base, out, edit)
    assert not problems, f"{command}:\n" + "\n".join(problems)


def _convert(oracle: Oracle, base: Baseline, source: Path, tmp_path: Path, refusal: str | None) -> None:
    """To pbtxt and back: the text form serves, and the binary form is the original again (byte
    for byte where the original is canonical, the same message otherwise); a fingerprint.pb is
    TensorFlow's for the content (or the original's, kept)."""
    text, back = tmp_path / "text", tmp_path / "back"
    result = run_cli("convert", source, "--to", "pbtxt", "-o", text)
    if refusal is not None:
        _assert_refused(result, refusal)
        return
    assert result.returncode == 0, result.stderr
    assert (text / "saved_model.pbtxt").exists() and not (text / "saved_model.pb").exists()
    result = run_cli("convert", text, "--to", "pb", "-o", back)
    assert result.returncode == 0, result.stderr
    original, again = (source / "saved_model.pb").read_bytes(), (back / "saved_model.pb").read_bytes()
    if is_canonical(original):
        assert again == original, "the round trip changed a canonical saved_model.pb"
    else:
        assert same_message(again, original), "the round trip changed the SavedModel message"
    kept = None
    if (source / "fingerprint.pb").exists():
        kept = oracle.ok(op="read_fingerprint", model=str(source))["fingerprint"]["version_producer"]
    identity = Edit(["convert"], expect=lambda cases: cases)
    problems = [f"pbtxt: {p}" for p in _verify(oracle, base, text, identity, content=back, kept=kept)]
    problems += [f"pb: {p}" for p in [*_check_clean(back), *_fingerprint(oracle, back, kept=kept)]]
    assert not problems, "\n".join(problems)
