"""Helpers for the signature-edit oracle tests: edit in-process, then prove it with TensorFlow.

`edit` applies plan operations (the same dicts a plan file holds) with the library, requires
`check` to be clean and writes the result; `assert_tensorflow_fingerprint` compares the written
fingerprint.pb with what TensorFlow computes; `assert_serves_all` is `conftest.assert_serves`
(every loader, the C++ one included) for cases whose outputs may be SparseTensors or RaggedTensors.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import surgery
from conftest import LOADERS, Oracle, assert_close, assert_outputs, case_loaders
from surgery.check import check
from surgery.errors import SurgeryWarning
from surgery.model import Model
from surgery.plans import parse_plan
from surgery.schema import FingerprintDef

Cases = list[dict[str, Any]]
FINGERPRINT_FIELDS = [
    "saved_model_checksum",
    "graph_def_program_hash",
    "signature_def_hash",
    "saved_object_graph_hash",
    "checkpoint_hash",
]


def edit(src: Path, out: Path, operations: list[dict[str, Any]]) -> tuple[Model, list[str]]:
    """Apply `operations` as one plan to the model in `src`, require `check` clean, write `out`.

    Returns the model and the edits' warnings (`SurgeryWarning` messages).
    """
    model = surgery.load(src)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse_plan({"operations": operations}).apply(model)
    report = check(model)
    assert report.ok, [f.message for f in report.findings]
    surgery.save(model, out)
    return model, [str(w.message) for w in caught if issubclass(w.category, SurgeryWarning)]


def assert_tensorflow_fingerprint(oracle: Oracle, model_dir: Path) -> None:
    """The written fingerprint.pb holds the hashes TensorFlow's CreateFingerprintDef computes."""
    written = FingerprintDef.FromString((model_dir / "fingerprint.pb").read_bytes())
    theirs = oracle.fingerprint(model_dir)
    assert {f: getattr(written, f) for f in FINGERPRINT_FIELDS} == {f: theirs[f] for f in FINGERPRINT_FIELDS}
    assert written.version.producer == theirs["version_producer"]


def select(cases: Cases, signature: str, tags: list[str] | None = None) -> Cases:
    """The cases of one signature (in one tag set, when given)."""
    return [
        c
        for c in cases
        if c["signature"] == signature and (tags is None or sorted(c.get("tags", ["serve"])) == sorted(tags))
    ]


def renamed(cases: Cases, side: str, renames: dict[str, str]) -> Cases:
    """Copies of `cases` with input or output keys renamed (keys not named stay)."""
    out = copy.deepcopy(cases)
    for case in out:
        case[side] = {renames.get(k, k): v for k, v in case[side].items()}
    return out


def _assert_value(got: dict[str, Any], want: dict[str, Any], key: str) -> None:
    assert got["dtype"] == want["dtype"], f"{key}: dtype {got['dtype']} != {want['dtype']}"
    for kind in ("sparse", "ragged"):
        if kind in want:
            assert kind in got, f"{key}: {got} is no {kind} value"
            assert sorted(got[kind]) == sorted(want[kind]), f"{key}: {got[kind]} != {want[kind]}"
            for part, value in want[kind].items():
                assert_close(got[kind][part], value, path=f"{key}.{part}")
            return
    assert_outputs({"outputs": {key: got}}, {key: want})


def assert_serves_all(oracle: Oracle, model: Path, cases: Cases) -> None:
    """Every loader gives the recorded outputs, dense, sparse or ragged, for every case."""
    for loader in LOADERS:
        chosen = [c for c in cases if loader in case_loaders(c)]
        for case, result in zip(chosen, oracle.run(model, loader, chosen), strict=True):
            where = f"{loader} loader, signature {case['signature']!r}"
            assert "error" not in result, f"{where}: {result['error']}"
            got = sorted(result["outputs"])
            assert got == sorted(case["outputs"]), f"{where}: outputs {got}"
            for key, want in case["outputs"].items():
                _assert_value(result["outputs"][key], want, f"{where}: {key}")


def assert_refused_everywhere(oracle: Oracle, model: Path, cases: Cases) -> None:
    """Every case is an error in every loader (a removed signature, an old key)."""
    for loader in LOADERS:
        results = oracle.run(model, loader, cases)
        assert results and all("error" in r for r in results), (loader, results)
