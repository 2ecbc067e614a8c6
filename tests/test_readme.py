"""The README's examples run as written (on a copy of a fixture called my_model)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import surgery
from conftest import FIXTURES, ROOT

README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def _workdir(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "module_multi", tmp_path / "my_model")
    (plan,) = _blocks("yaml")
    (tmp_path / "plan.yaml").write_text(plan)
    return tmp_path


def test_shell_examples_run(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    blocks = _blocks("sh")
    assert len(blocks) >= 3
    for block in blocks:
        for line in block.strip().splitlines():
            result = subprocess.run(line, shell=True, cwd=work, env=env, capture_output=True, text=True)
            assert result.returncode == 0, f"{line}: {result.stderr}"
    assert (work / "renamed_model" / "saved_model.pb").exists()
    assert (work / "interface.json").read_text().startswith("{")
    planned = surgery.load(work / "planned_model").proto.meta_graphs[0].signature_def
    assert sorted(planned["v2_masked"].outputs) == ["beta", "zeta"]
    assert planned["v2_preprocess"].method_name == "tensorflow/serving/regress"
    relaxed = surgery.load(work / "relaxed_model").proto.meta_graphs[0].signature_def["fixed"]
    assert [d.size for d in relaxed.inputs["row"].tensor_shape.dim] == [-1, 4]
    assert [d.size for d in relaxed.outputs["out"].tensor_shape.dim] == [-1]
    half = surgery.load(work / "half_model").proto.meta_graphs[0].signature_def["preprocess"]
    assert half.outputs["as_float"].dtype == 19  # DT_HALF
    renamed = surgery.load(work / "tensor_renamed").proto.meta_graphs[0].signature_def["serving_default"]
    assert renamed.inputs["a"].name == "images:0"
    assert (work / "my_model_again" / "saved_model.pb").read_bytes() == (
        work / "my_model" / "saved_model.pb"
    ).read_bytes()
    assert '-    key: "serving_default"' in (work / "rename.diff").read_text()
    assert "signature &#x27;masked&#x27;" in (work / "my_model.html").read_text()
    assert (work / "my_model.dot").read_text().startswith("digraph savedmodel {")
    assert "complete -o nosort -F" in (work / "savedmodel-surgery-complete.bash").read_text()
    (preview,) = json.loads((work / "preview.json").read_text())["results"]
    assert preview["output"] == "planned_again"
    renamed = {"kind": "signature-renamed", "detail": "fixed -> v2_fixed", "signature": "fixed"}
    assert {**renamed, "tags": ["serve"]} in preview["changes"]
    assert not (work / "planned_again").exists()


def test_error_example_is_what_the_tool_prints(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    shown = re.search(r"^    (savedmodel-surgery: error: .*)$", README, re.MULTILINE)
    assert shown is not None
    result = subprocess.run(
        [BIN / "savedmodel-surgery", "rename-signature", "my_model", "serve", "predict", "-o", "out"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == shown.group(1)
    assert not (work / "out").exists()
