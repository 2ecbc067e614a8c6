"""Command-line comfort: help with examples, --json, --quiet/--verbose, colours, completion, --version."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, ROOT, copy_fixture, run_cli
from surgery.cli import cli
from surgery.schema import TENSORFLOW_VERSION

COMMANDS = sorted(cli.commands)  # type: ignore[attr-defined]
REPORTING = ["apply", "check", "convert", "diff", "explain", "show"]
ESC = "\x1b["


def _command(name: str) -> click.Command:
    command: click.Command = cli.commands[name]  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_an_example_in_its_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "savedmodel-surgery " + name in result.output


def test_the_group_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "Example" in result.output and "--quiet" in result.output and "--verbose" in result.output


@pytest.mark.parametrize("name", REPORTING)
def test_every_reporting_command_has_json(name: str) -> None:
    assert "as_json" in [p.name for p in _command(name).params]


def test_version_names_the_schema() -> None:
    result = run_cli("--version", check=True)
    assert result.stdout.strip().endswith(f"(TensorFlow {TENSORFLOW_VERSION} schema)")


def test_version_is_the_schema_the_protos_came_from() -> None:
    """The version printed is protos/TENSORFLOW_VERSION, the TensorFlow the .proto files were taken from."""
    from surgery import __version__

    schema = (ROOT / "protos" / "TENSORFLOW_VERSION").read_text().strip()
    assert schema == TENSORFLOW_VERSION
    result = run_cli("--version", check=True)
    assert result.stdout == f"savedmodel-surgery {__version__} (TensorFlow {schema} schema)\n"


# --- --quiet and --verbose -------------------------------------------------------------------------


def test_an_edit_says_what_it_wrote_unless_quiet(tmp_path: Path) -> None:
    model = FIXTURES / "module_multi"
    loud = run_cli("rename-signature", model, "fixed", "f2", "-o", tmp_path / "a", check=True)
    assert loud.stderr == f"wrote {tmp_path / 'a'}\n"
    quiet = run_cli("-q", "rename-signature", model, "fixed", "f2", "-o", tmp_path / "b", check=True)
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert (tmp_path / "b" / "saved_model.pb").exists()


def test_quiet_keeps_errors(tmp_path: Path) -> None:
    result = run_cli(
        "--quiet", "rename-signature", FIXTURES / "module_multi", "nope", "x", "-o", tmp_path / "o"
    )
    assert result.returncode == 2
    assert result.stderr.startswith("savedmodel-surgery: error: no signature 'nope'")


def test_verbose_says_what_it_read() -> None:
    result = run_cli("--verbose", "show", FIXTURES / "module_multi", "--json", check=True)
    size = (FIXTURES / "module_multi" / "saved_model.pb").stat().st_size
    path = FIXTURES / "module_multi" / "saved_model.pb"
    assert result.stderr == f"savedmodel-surgery: read {path} ({size:,} bytes, 1 meta graph(s))\n"
    json.loads(result.stdout)  # stdout stays machine-readable


def test_verbose_edit_lists_the_model_files_written(tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = run_cli(
        "-v", "rename-signature", FIXTURES / "module_multi", "fixed", "f2", "-o", out, check=True
    )
    wrote, files = result.stderr.splitlines()
    assert wrote == f"wrote {out}"
    size = (out / "saved_model.pb").stat().st_size
    assert files.startswith(f"savedmodel-surgery: {out}: saved_model.pb ({size:,} bytes), fingerprint.pb (")


def test_quiet_and_verbose_together_are_refused() -> None:
    result = run_cli("-q", "-v", "show", FIXTURES / "module_multi")
    assert result.returncode == 2
    assert result.stderr == "savedmodel-surgery: error: give --quiet or --verbose, not both (see --help)\n"


# --- colours ---------------------------------------------------------------------------------------


def test_colours_only_when_asked_for_a_terminal() -> None:
    """click strips styles when the output is not a terminal; CliRunner(color=True) plays one."""
    args = ["explain", str(FIXTURES / "example_model")]
    plain = CliRunner().invoke(cli, args)
    coloured = CliRunner().invoke(cli, args, color=True)
    assert plain.exit_code == coloured.exit_code == 0
    assert ESC not in plain.output
    assert ESC in coloured.output
    assert click.unstyle(coloured.output) == plain.output


def test_check_colours_its_verdict() -> None:
    result = CliRunner().invoke(cli, ["check", str(FIXTURES / "module_multi")], color=True)
    assert click.style("ok", fg="green", bold=True) in result.output


def test_no_color_turns_colours_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    result = CliRunner().invoke(cli, ["check", str(FIXTURES / "module_multi")], color=True)
    assert result.exit_code == 0 and ESC not in result.output


def test_piped_output_has_no_escape_codes(tmp_path: Path) -> None:
    for args in (["explain", FIXTURES / "module_multi"], ["check", FIXTURES / "module_multi"]):
        result = run_cli(*args, check=True)
        assert ESC not in result.stdout + result.stderr
    model = copy_fixture("module_multi", tmp_path)
    result = run_cli("rename-signature", model, "nope", "x", "-o", tmp_path / "o")
    assert ESC not in result.stderr and result.stderr.startswith("savedmodel-surgery: error: ")


# --- shell completion ------------------------------------------------------------------------------


def _complete(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "savedmodel-surgery")]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT)


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _savedmodel_surgery_completion savedmodel-surgery"),
        ("zsh", "compdef _savedmodel_surgery_completion savedmodel-surgery"),
        ("fish", "complete --no-files --command savedmodel-surgery"),
    ],
)
def test_completion_script(shell: str, marker: str) -> None:
    """The README's `_SAVEDMODEL_SURGERY_COMPLETE=bash_source savedmodel-surgery` gives a script."""
    result = _complete({"_SAVEDMODEL_SURGERY_COMPLETE": f"{shell}_source"})
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout


def test_bash_script_is_valid_bash(tmp_path: Path) -> None:
    script = tmp_path / "complete.bash"
    script.write_text(_complete({"_SAVEDMODEL_SURGERY_COMPLETE": "bash_source"}).stdout)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_completion_of_commands_and_signature_keys() -> None:
    commands = _complete(
        {
            "_SAVEDMODEL_SURGERY_COMPLETE": "bash_complete",
            "COMP_WORDS": "savedmodel-surgery ex",
            "COMP_CWORD": "1",
        }
    )
    assert commands.stdout.split() == ["plain,explain"]
    model = str(FIXTURES / "module_multi")
    keys = _complete(
        {
            "_SAVEDMODEL_SURGERY_COMPLETE": "bash_complete",
            "COMP_WORDS": f"savedmodel-surgery explain {model} ",
            "COMP_CWORD": "3",
        }
    )
    assert keys.stdout.split() == [f"plain,{k}" for k in ["fixed", "masked", "preprocess", "serving_default"]]


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """What the command writes to stdout and stderr when both are a terminal (a pseudo-terminal)."""
    primary, secondary = pty.openpty()
    command = [sys.executable, "-m", "surgery", *args]
    process = subprocess.Popen(
        command, stdout=secondary, stderr=secondary, env={**os.environ, **env}, cwd=ROOT
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the command exited and closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode()


def test_errors_are_coloured_on_a_terminal_unless_no_color() -> None:
    coloured = _on_a_terminal(["show", "nope"], {})
    assert (
        f"savedmodel-surgery: {click.style('error', fg='red', bold=True)}: nope: no such directory"
        in coloured
    )
    plain = _on_a_terminal(["show", "nope"], {"NO_COLOR": "1"})
    assert ESC not in plain and "savedmodel-surgery: error: nope: no such directory" in plain


# What only some commands need: YAML and the plan models (apply), the process pool (batches),
# pydantic and the reports (check, diff, explain, convert, --json).
LATER = ("yaml", "surgery.plans", "concurrent.futures.process", "pydantic", "surgery.reports")


def test_an_edit_starts_without_what_only_other_commands_need(tmp_path: Path) -> None:
    """Start-up is a third of a 1 GB edit's time: what only other commands need loads on first use."""
    code = f"import sys, surgery.cli; print(' '.join(m for m in {LATER!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""
    import surgery
    import surgery.plans
    import surgery.reports
    from surgery.explain import build as explain_build

    assert surgery.Plan is surgery.plans.Plan and surgery.load_plan is surgery.plans.load_plan
    assert surgery.CheckReport is surgery.reports.CheckReport and surgery.Finding is surgery.reports.Finding
    assert surgery.Change is surgery.reports.Change and surgery.ConvertResult is surgery.reports.ConvertResult
    assert surgery.Explanation is explain_build.Explanation
    assert callable(surgery.check) and callable(surgery.diff) and callable(surgery.explain)
    assert set(surgery.__all__) <= set(dir(surgery))
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = surgery.nothing  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "args",
    [
        ["rename-signature", "{model}", "serving_default", "predict", "-o", "{out}"],
        ["set-shape", "{model}", "fixed", "row", "-1,4", "--in-place"],
        ["show", "{model}", "--json"],
    ],
    ids=["rename-signature", "set-shape-in-place", "show-json"],
)
def test_edits_and_show_run_without_pydantic(tmp_path: Path, args: list[str]) -> None:
    """The whole run, check before and after the edit included, builds no report (no pydantic)."""
    model = copy_fixture("module_multi", tmp_path / "m")
    argv = [a.format(model=model, out=tmp_path / "out") for a in args]
    code = (
        "import sys, surgery.cli\n"
        f"sys.argv = ['savedmodel-surgery', *{argv!r}]\n"
        "status = surgery.cli.main()\n"
        f"print(status, ' '.join(m for m in {LATER!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.splitlines()[-1] == "0 "


def test_the_command_exits_with_mains_status_after_flushing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` (the console script) flushes what it printed, even into a pipe whose reader left,
    and exits at once with `main`'s status."""
    import surgery.cli as cli_module

    class GonePipe(io.StringIO):
        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    kept = io.StringIO()
    exits: list[int] = []
    monkeypatch.setattr(sys, "stdout", GonePipe())
    monkeypatch.setattr(sys, "stderr", kept)
    monkeypatch.setattr(cli_module, "main", lambda: (print("error line", file=sys.stderr), 2)[1])

    def exit_now(status: int) -> None:
        exits.append(status)
        raise SystemExit(status)

    monkeypatch.setattr(os, "_exit", exit_now)
    with pytest.raises(SystemExit):
        cli_module.run()
    assert exits == [2] and kept.getvalue() == "error line\n"


# --- as people type it -----------------------------------------------------------------------------


def test_global_flags_after_the_command(tmp_path: Path) -> None:
    """-q, -v and --debug are taken after the command as before it."""
    quiet = run_cli(
        "rename-signature", FIXTURES / "module_multi", "fixed", "f2", "-o", tmp_path / "a", "-q", check=True
    )
    assert quiet.stderr == ""
    loud = run_cli("show", FIXTURES / "module_multi", "--json", "-v", check=True)
    assert loud.stderr.startswith("savedmodel-surgery: read ")
    debug = run_cli("show", tmp_path / "missing", "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_a_flag_after_a_double_dash_is_an_argument(tmp_path: Path) -> None:
    from surgery.cli import hoist_global_flags

    assert hoist_global_flags(["show", "m", "-q"]) == ["-q", "show", "m"]
    assert hoist_global_flags(["--debug", "show", "m", "-v"]) == ["--debug", "-v", "show", "m"]
    assert hoist_global_flags(["rename-signature", "m", "--", "-q", "x"]) == [
        "rename-signature",
        "m",
        "--",
        "-q",
        "x",
    ]


def test_no_arguments_prints_the_usage_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("Usage: savedmodel-surgery [OPTIONS] COMMAND [ARGS]...\n")
    assert "\\n" not in result.stderr and len(result.stderr.splitlines()) > 20


def test_the_command_list_shows_whole_sentences() -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    listed = result.output.split("Commands:\n", 1)[1]
    assert "..." not in listed
    for name in COMMANDS:
        summary = _command(name).get_short_help_str()
        assert summary.endswith((".", ")")), (name, summary)


def test_apply_help_lists_every_operation_and_its_fields() -> None:
    from surgery.operations import OPERATIONS

    result = CliRunner().invoke(cli, ["apply", "--help"])
    for operation in OPERATIONS.values():
        assert f"  {operation.entry()}\n" in result.output
