"""Oracle tier: what this tool writes serves the recorded numbers through both loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

import surgery
from conftest import FIXTURE_NAMES, FIXTURES, Oracle, assert_serves, expected_cases


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_serves_recorded_outputs(oracle: Oracle, name: str) -> None:
    assert_serves(oracle, FIXTURES / name, expected_cases(name))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_written_copy_serves_recorded_outputs(oracle: Oracle, name: str, tmp_path: Path) -> None:
    out = surgery.save(surgery.load(FIXTURES / name), tmp_path / "out")
    assert_serves(oracle, out, expected_cases(name))


def test_oracle_notices_wrong_numbers(oracle: Oracle) -> None:
    """The oracle tier can fail: a case with altered expectations is caught."""
    case = expected_cases("module_multi")[0]
    altered = {
        **case,
        "outputs": {k: {**v, "value": [[0.0] * 3] * len(v["value"])} for k, v in case["outputs"].items()},
    }
    with pytest.raises(AssertionError):
        assert_serves(oracle, FIXTURES / "module_multi", [altered])
