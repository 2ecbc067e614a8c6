"""`make test`'s set-up of Graphviz and Chromium (tools/browser_deps.sh), with apt-get, id and sudo stubbed.

The script runs with PATH holding only the stubs, so what it finds and calls is exactly what
each test gives it; it must never fail, and must say in one line why the tests will skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "tools" / "browser_deps.sh"
BASH = shutil.which("bash") or "/bin/bash"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def _run(
    tmp_path: Path,
    *,
    present: tuple[str, ...] = (),
    uid: int = 0,
    apt: str | None = None,
    sudo: bool = False,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the script; `apt` is the stub apt-get's body (None: no apt-get). Returns the apt-get calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    for name in present:
        _stub(bin_dir, name, "exit 0")
    _stub(bin_dir, "id", f"echo {uid}")
    if apt is not None:
        _stub(bin_dir, "apt-get", f'echo "$*" >> {log}\n{apt}')
    if sudo:  # passwordless: `sudo -n true` works; the command after `env VAR=value` runs
        body = '[ "$1" = -n ] && shift; [ "$1" = true ] && exit 0; echo "sudo $*" >> LOG; shift 2; "$@"'
        _stub(bin_dir, "sudo", body.replace("LOG", str(log)))
    result = subprocess.run(
        [BASH, str(SCRIPT)], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


INSTALL = "install -y --no-install-recommends"


def test_nothing_to_do_when_both_are_there(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, present=("dot", "chromium"), apt="exit 1")
    assert (result.returncode, result.stdout, result.stderr, calls) == (0, "", "", [])


def test_chromium_browser_counts_as_chromium(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, present=("dot", "chromium-browser"), apt="exit 1")
    assert (result.returncode, result.stdout, calls) == (0, "", [])


def test_no_apt_get_says_why_in_one_line(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, present=("dot",))
    assert result.returncode == 0
    assert result.stdout == (
        "browser-deps: chromium missing and no apt-get here: the explain SVG and headless-browser "
        "tests will skip (install chromium to run them)\n"
    )


def test_not_root_without_sudo_says_why(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, uid=1000, apt="exit 0")
    assert result.returncode == 0 and calls == []
    assert result.stdout == (
        "browser-deps: graphviz chromium missing, and apt-get needs root (no passwordless sudo): "
        "the explain SVG and headless-browser tests will skip\n"
    )


def test_root_installs_without_update_when_that_works(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, apt="exit 0")
    assert result.returncode == 0
    assert calls == [f"{INSTALL} graphviz chromium"]
    assert result.stdout.startswith("browser-deps: installing graphviz chromium with apt-get")


def test_update_only_after_a_failed_install(tmp_path: Path) -> None:
    # The first install fails (stale package lists); after update it works.
    state = tmp_path / "updated"
    apt = (
        f'[ "$1" = update ] && : > {state} && exit 0; [ -e {state} ] && exit 0; '
        'echo "E: Unable to locate package graphviz"; exit 100'
    )
    result, calls = _run(tmp_path, present=("chromium",), apt=apt)
    assert result.returncode == 0
    assert calls == [f"{INSTALL} graphviz", "update", f"{INSTALL} graphviz"]
    assert len(result.stdout.splitlines()) == 1  # only "installing ...": it worked


def test_a_failed_install_is_one_line_and_not_an_error(tmp_path: Path) -> None:
    apt = 'echo "Reading package lists..."; echo "E: Unable to locate package chromium"; exit 100'
    result, calls = _run(tmp_path, present=("dot",), apt=apt)
    assert result.returncode == 0
    assert calls == [f"{INSTALL} chromium", "update"]  # update failed too: no second install
    *_, last = result.stdout.splitlines()
    assert last == (
        "browser-deps: apt-get could not install chromium (E: Unable to locate package chromium): "
        "the explain SVG and headless-browser tests will skip"
    )


def test_passwordless_sudo_is_used(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, uid=1000, apt="exit 0", sudo=True, present=("chromium",))
    assert result.returncode == 0
    assert calls == [
        f"sudo env DEBIAN_FRONTEND=noninteractive apt-get {INSTALL} graphviz",
        f"{INSTALL} graphviz",
    ]


def test_make_test_runs_it_first() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:(.*)$", makefile, re.MULTILINE)
    assert test_rule is not None and "browser-deps" in test_rule.group(1).split()
    assert re.search(r"^browser-deps:\n\t@bash tools/browser_deps.sh$", makefile, re.MULTILINE)


@pytest.mark.parametrize("program", ["dot", "chromium"])
def test_the_explain_tests_still_name_what_they_skip_for(program: str) -> None:
    source = (ROOT / "tests" / "test_explain.py").read_text()
    reasons = {
        "dot": "Graphviz's dot is not installed (apt-get install graphviz)",
        "chromium": "no chromium here (Debian's chromium package renders the page)",
    }
    assert reasons[program] in source
