"""benchmarks/run.py's verdicts: each target judged against its baseline from the same run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import run


def _series(wall: float, rss: float = 40.0) -> run.Series:
    return run.Series(samples=[run.Sample(wall, wall / 2, wall / 4, rss, 0) for _ in range(3)])


def _results(**walls: float) -> dict[str, dict[str, run.Series]]:
    base = {
        "cp -r": 0.30,
        "cp -r + fsync": 0.60,
        "cp saved_model.pb": 0.30,
        "cp over an existing saved_model.pb": 1.10,
        "rename-signature": 0.55,
        "set-method": 0.55,
        "set-shape": 0.80,
        "show": 0.20,
        "rename-signature --in-place": 1.30,
    }
    base.update({k.replace("_", "-"): v for k, v in walls.items()})
    tools = {"rename-signature", "set-method", "set-shape", "show", "rename-signature --in-place"}
    return {
        key: {"tool": _series(wall), **({"full": _series(20.0, 9000.0)} if key in tools else {})}
        for key, wall in base.items()
    }


def _verdicts(results: dict[str, dict[str, run.Series]]) -> dict[str, run.Row]:
    return {row.case: row for row in run.judge_model("m", results)}


def test_targets_are_ratios_to_the_baselines_of_the_same_run() -> None:
    rows = _verdicts(_results())
    assert rows["rename-signature"].result == "PASS"
    assert rows["rename-signature"].ratio == pytest.approx(0.55 / 0.30)
    assert rows["set-shape"].result == "PASS"  # 2.67x, under 3x
    assert rows["show"].result == "PASS"
    assert rows["rename-signature"].full_wall == 20.0


def test_over_the_limit_fails() -> None:
    rows = _verdicts(_results(rename_signature=0.61, set_shape=0.91, show=1.0))
    assert [rows[k].result for k in ("rename-signature", "set-shape", "show")] == ["FAIL"] * 3


def test_in_place_is_judged_against_cp_of_the_pb_and_shows_the_replace_ratio() -> None:
    row = _verdicts(_results(**{"rename-signature --in-place": 0.55}))["rename-signature --in-place"]
    assert (row.baseline, row.result) == ("cp saved_model.pb", "PASS")
    assert row.ratio == pytest.approx(0.55 / 0.30)
    assert "0.50× cp over an existing pb" in row.note
    slow = _verdicts(_results())["rename-signature --in-place"]  # 1.30 s: 4.33x
    assert (slow.result, slow.ratio) == ("FAIL", pytest.approx(1.30 / 0.30))
    bloated = _results(**{"rename-signature --in-place": 0.55})
    bloated["rename-signature --in-place"]["tool"] = _series(0.55, rss=80.0)
    assert _verdicts(bloated)["rename-signature --in-place"].result == "FAIL"


def test_the_machine_line_says_whether_freed_pages_go_back_to_the_host(tmp_path: Path) -> None:
    assert run.page_reporting(tmp_path / "missing") == "none"
    (tmp_path / "page_reporting_order").write_text("9\n")
    (tmp_path / "min_free_ms").write_text("0\n")
    assert run.page_reporting(tmp_path) == "on (page_reporting_order=9, min_free_ms=0)"


def test_the_batch_is_judged_on_the_whole_run_and_notes_the_start_up() -> None:
    def series(wall: float, busy: float) -> run.Series:
        return run.Series(samples=[run.Sample(wall, busy * 0.8, busy * 0.2, 40.0, 0) for _ in range(3)])

    batch = run.BatchResult(
        models=1000,
        jobs=None,
        cores=2,
        tool=series(4.0, 7.0),  # 87.5% of 2 cores for 4 s
        full=series(4.0, 7.2),
        python_pass=series(0.04, 0.04),
        import_cli=series(0.5, 0.5),
    )
    row = run.judge_batch(batch)[-1]
    assert row.result == "FAIL"
    # 7.0 s busy, 0.5 s of it the start-up on one core: 6.5 / (3.5 s x 2 cores) = 93%.
    assert row.note.startswith("CPU utilisation 87.5% (93% after start-up, estimated); per model 8.0 ms")
    batch.tool = series(4.0, 7.3)
    assert run.judge_batch(batch)[-1].result == "PASS"
