"""The registry of edits (`surgery.operations`): every edit declared once, and everything derived from it.

The command line's edit commands, the plan schema, the docs' table and the Python API follow the
registry; each test tier that runs "one of every edit" covers every operation of it, so a new
edit that lacks a case in a tier fails here, naming the tier.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import test_dry_run
import test_lazy
from realworld_cases import EDITS as REALWORLD_EDITS

import surgery
from conftest import FIXTURES, run_cli
from fuzzing import Names, edit_commands
from surgery.cli import cli
from surgery.operations import OPERATIONS, Operation

NAMES = sorted(OPERATIONS)


def _command(name: str) -> click.Command:
    command: click.Command = cli.commands[name]  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("name", NAMES)
def test_each_operation_is_a_command_a_plan_entry_and_a_function(name: str) -> None:
    operation = OPERATIONS[name]
    command = _command(name)
    arguments = [p.human_readable_name for p in command.params if isinstance(p, click.Argument)]
    assert arguments == ["MODEL", *(a.metavar for a in operation.positional)]
    options = {opt for p in command.params for opt in p.opts}
    assert {"-o", "--in-place", "--force", "--no-sync", "--dry-run", "--json"} <= options
    assert ("--tag-set" in options) == operation.tag_set
    assert {f"--{flag.name}" for flag in operation.flags} <= options
    assert getattr(surgery, operation.function.__name__) is operation.function
    assert operation.function.__name__ in surgery.__all__


def test_the_commands_are_the_registry_and_the_rest() -> None:
    others = {"apply", "check", "convert", "diff", "explain", "show"}
    assert set(cli.commands) == set(OPERATIONS) | others  # type: ignore[attr-defined]


def test_an_operation_runs_the_same_from_python_the_cli_and_a_plan(tmp_path: Path) -> None:
    """The regex rename, which once lived in the plan schema alone: the three routes write the
    same bytes."""
    fixture = FIXTURES / "module_multi"
    run_cli("rename-signature", fixture, "^(.+)$", "v2_\\1", "--regex", "-o", tmp_path / "cli", check=True)
    plan = tmp_path / "plan.json"
    entry = {"op": "rename-signature", "regex": "^(.+)$", "new": "v2_\\1"}
    plan.write_text(json.dumps({"operations": [entry]}))
    run_cli("apply", fixture, plan, "-o", tmp_path / "plan", check=True)
    surgery.save(
        surgery.rename_signature(surgery.load(fixture), "^(.+)$", "v2_\\1", regex=True), tmp_path / "py"
    )
    written = {route: (tmp_path / route / "saved_model.pb").read_bytes() for route in ("cli", "plan", "py")}
    assert written["cli"] == written["plan"] == written["py"]
    keys = sorted(surgery.load(tmp_path / "py").proto.meta_graphs[0].signature_def)
    assert keys == ["__saved_model_init_op", "v2_fixed", "v2_masked", "v2_preprocess", "v2_serving_default"]


def test_a_tag_set_is_taken_as_the_command_line_spells_it() -> None:
    model = surgery.load(FIXTURES / "tf1_two_metagraphs")
    surgery.set_method(model, "predict", "tensorflow/serving/regress", tag_set="gpu,serve")
    methods = {
        tuple(m.meta_info_def.tags): m.signature_def["predict"].method_name for m in model.proto.meta_graphs
    }
    assert methods == {
        ("serve",): "tensorflow/serving/predict",
        ("serve", "gpu"): "tensorflow/serving/regress",
    }


# --- every tier covers every operation -----------------------------------------------------------


def _lazy_ops() -> set[str]:
    return {entry["op"] for case in test_lazy.CASES for entry in case.values[1]}  # type: ignore[union-attr]


def _fuzz_ops() -> set[str]:
    names = Names(signature="s", input="i", output="o", tags="serve", tensor="t:0", new="n")
    return {argv[0] for argv in edit_commands(names)}


TIERS = {
    "fuzzing.edit_commands (fuzz and bad-input tiers)": (_fuzz_ops, set()),
    "test_lazy.CASES (the lazy path against the full parse)": (_lazy_ops, set()),
    "test_dry_run.EDITS (dry runs write nothing)": (lambda: set(test_dry_run.EDITS) - {"apply"}, set()),
    "realworld_cases.EDITS (the real-world tier)": (
        lambda: (
            {"set-dtype" if e.startswith("set-dtype-") else e for e in REALWORLD_EDITS} - {"apply", "convert"}
        ),
        {
            "set-tags": "the fixtures' tier proves it on every fixture; real-world models add nothing to a "
            "rename of the tag set",
            "rename-tensor": "renames a graph node by a name each model spells its own way",
        },
    ),
}


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_every_tier_covers_every_operation(tier: str) -> None:
    covered, exempt = TIERS[tier]
    missing = set(OPERATIONS) - covered() - set(exempt)
    assert not missing, f"{tier} has no case of {sorted(missing)}: add one"
    assert not set(exempt) & covered(), "an exempt operation is covered now: drop the exemption"


def test_an_operation_is_declared_with_help_and_examples() -> None:
    for operation in OPERATIONS.values():
        assert isinstance(operation, Operation)
        assert operation.summary.endswith(".") and operation.examples
        assert all(example.startswith(operation.name + " ") for example in operation.examples)
