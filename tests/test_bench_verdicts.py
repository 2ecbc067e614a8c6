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
        "cp saved_model.pb + fsync": 0.50,
        "cp over an existing saved_model.pb": 1.10,
        "rename-signature": 1.10,
        "set-method": 1.10,
        "set-shape": 1.70,
        "rename-signature --in-place": 0.90,
        "rename-signature --no-sync": 0.55,
        "set-method --no-sync": 0.55,
        "set-shape --no-sync": 0.80,
        "rename-signature --in-place --no-sync": 0.55,
        "show": 0.20,
    }
    base.update({k.replace("_", "-").replace("--", " --"): v for k, v in walls.items()})
    tools = {"rename-signature", "set-method", "set-shape", "show", "rename-signature --in-place"}
    return {
        key: {"tool": _series(wall), **({"full": _series(20.0, 9000.0)} if key in tools else {})}
        for key, wall in base.items()
    }


def _verdicts(results: dict[str, dict[str, run.Series]]) -> dict[str, run.Row]:
    return {row.case: row for row in run.judge_model("m", results)}


def test_targets_are_ratios_to_the_baselines_of_the_same_run() -> None:
    rows = _verdicts(_results())
    assert [rows[k].result for k in ("rename-signature", "set-shape", "show")] == ["PASS"] * 3
    assert rows["rename-signature"].full_wall == 20.0


def test_a_durable_edit_is_judged_against_a_durable_copy_and_no_sync_against_cp() -> None:
    rows = _verdicts(_results())
    durable, unsynced = rows["rename-signature"], rows["rename-signature --no-sync"]
    assert (durable.baseline, durable.ratio) == ("cp -r + fsync", pytest.approx(1.10 / 0.60))
    assert durable.limit == "≤ 2× cp -r + fsync, ≤ 256 MiB"
    assert durable.note == "3.67× cp -r"
    assert (unsynced.baseline, unsynced.ratio, unsynced.result) == (
        "cp -r",
        pytest.approx(0.55 / 0.30),
        "PASS",
    )
    assert unsynced.limit == "≤ 2× cp -r, ≤ 256 MiB"
    assert rows["set-shape --no-sync"].limit == "≤ 3× cp -r, ≤ 256 MiB"


def test_over_the_limit_fails() -> None:
    rows = _verdicts(
        _results(rename_signature=1.21, set_shape__no_sync=0.91, rename_signature__no_sync=0.61, show=1.0)
    )
    cases = ("rename-signature", "set-shape --no-sync", "rename-signature --no-sync", "show")
    assert [rows[k].result for k in cases] == ["FAIL"] * 4
    assert rows["set-shape"].result == "PASS"


def test_in_place_is_judged_against_cp_of_the_pb_and_shows_the_replace_ratio() -> None:
    rows = _verdicts(_results())
    durable, unsynced = rows["rename-signature --in-place"], rows["rename-signature --in-place --no-sync"]
    assert (durable.baseline, durable.result) == ("cp saved_model.pb + fsync", "PASS")
    assert durable.ratio == pytest.approx(0.90 / 0.50)
    assert durable.note == "3.00× cp saved_model.pb, 0.82× cp over an existing pb"
    assert (unsynced.baseline, unsynced.result) == ("cp saved_model.pb", "PASS")
    assert unsynced.ratio == pytest.approx(0.55 / 0.30)
    assert unsynced.note == "0.50× cp over an existing pb"
    slow = _verdicts(_results(rename_signature__in_place__no_sync=0.65))[
        "rename-signature --in-place --no-sync"
    ]
    assert (slow.result, slow.ratio) == ("FAIL", pytest.approx(0.65 / 0.30))
    # Never more memory than the -o path that writes the same way.
    bloated = _results()
    bloated["rename-signature --in-place --no-sync"]["tool"] = _series(0.55, rss=80.0)
    assert _verdicts(bloated)["rename-signature --in-place --no-sync"].result == "FAIL"
    assert _verdicts(bloated)["rename-signature --in-place"].result == "PASS"


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


def test_the_in_place_batch_is_a_note_against_the_output_root_batch() -> None:
    def series(wall: float, busy: float) -> run.Series:
        return run.Series(samples=[run.Sample(wall, busy * 0.8, busy * 0.2, 40.0, 0) for _ in range(3)])

    batch = run.BatchResult(
        models=1000,
        jobs=2,
        cores=2,
        tool=series(3.0, 5.4),
        full=series(3.0, 5.4),
        python_pass=series(0.04, 0.04),
        import_cli=series(0.2, 0.2),
        in_place=series(3.3, 5.0),
    )
    row = run.judge_batch(batch)[-1]
    assert (row.case, row.baseline, row.result) == ("apply -j 2 --in-place", "apply --output-root", "—")
    assert row.ratio == pytest.approx(1.1)
    assert row.note.startswith("not a target: CPU utilisation 75.8%")
    assert run.judge_batch(run.BatchResult(**{**batch.__dict__, "in_place": run.Series()}))[-1].case == (
        "apply -j 2 --output-root"
    )


def test_what_an_in_place_edit_leaves_running_is_noted_not_timed() -> None:
    results = _results()
    key = "rename-signature --in-place --no-sync"
    results[key]["tool"] = run.Series(
        samples=[run.Sample(0.55, 0.3, 0.2, 40.0, 0, background_s=b) for b in (0.9, 1.1, 1.0)]
    )
    row = _verdicts(results)[key]
    assert (row.wall, row.result) == (0.55, "PASS")
    assert row.note == (
        "0.50× cp over an existing pb; the replaced pb freed in the background, 1.00 s more (untimed)"
    )


def test_the_validator_rows_say_what_was_validated() -> None:
    """The validator's cost is measured in a process of its own, on a model it finds clean."""
    fixture = run.FIXTURES / "module_multi"
    (row,) = run.validator_rows([("module_multi", fixture)], 1)
    assert (row.model, row.case, row.result) == ("module_multi", "validate (in-process)", "not a target")
    assert row.note.startswith("10 functions, 109 nodes, 0 findings;"), row.note
    assert row.wall > 0 and row.rss > 0
