"""Run the command line with its file-system changes counted; SIGKILL the process before the Nth one.

Every call that changes the file system (os.open with O_CREAT, write, rename, replace, renameat2,
link, unlink, rmdir, mkdir) is a step. `run_forked(argv, kill_at=N)` runs the command in a forked
child that kills itself with SIGKILL just before step N: no `finally`, no atexit, no flush,
exactly what `kill -9` does at that moment. With kill_at=0 the command runs to the end and the
list of steps it took comes back, so that tests/test_crash.py can kill a later run before each.

A fork, not a new interpreter, so that the many kill points of tests/test_crash.py cost
milliseconds each; `python tests/crash_runner.py ARGS` runs the same thing from a shell
(CRASH_KILL_AT=N in the environment). `start_held` holds a run before a step, through the
command's own entry, for tests/test_interrupts.py to interrupt it there.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from surgery.cli import main, run
from surgery.storage import files as storage_files

COUNTED = ("open", "write", "copy_file_range", "rename", "replace", "link", "unlink", "rmdir", "mkdir")


def install(kill_at: int, *, pause_at: int = 0, gate: Path | None = None) -> list[str]:
    """Count the steps of this process from now on; the list of steps.

    Before step `kill_at` the process SIGKILLs itself. Before step `pause_at` it creates the file
    `gate` and waits until someone deletes it (to hold a run in the middle of its write). The
    processes it forks (a batch's workers) count their own steps and are neither killed nor held.
    """
    steps: list[str] = []
    owner = os.getpid()

    def pause() -> None:
        assert gate is not None
        gate.touch()
        while gate.exists():
            time.sleep(0.005)

    def counted(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            if name == "open":
                flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
                if not flags & os.O_CREAT:
                    return function(*args, **kwargs)
            if name == "write" and not stat.S_ISREG(os.fstat(args[0]).st_mode):
                return function(*args, **kwargs)  # a pipe (a batch's workers): not the file system
            steps.append(name)
            if os.getpid() != owner:
                return function(*args, **kwargs)
            if len(steps) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if len(steps) == pause_at:
                pause()
            return function(*args, **kwargs)

        return step

    for name in COUNTED:
        setattr(os, name, counted(name, getattr(os, name)))
    storage_files.rename2 = counted("renameat2", storage_files.rename2)
    return steps


def run_forked(argv: list[str], *, kill_at: int = 0) -> tuple[int, list[str]]:
    """`savedmodel-surgery ARGV` in a forked child: its exit code (-9 when killed) and its steps."""
    with tempfile.NamedTemporaryFile("w+", suffix=".json") as log:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            status = 70
            try:
                steps = install(kill_at)
                with open(os.devnull, "w") as null:
                    sys.stdout = sys.stderr = null
                    status = main(argv)
                with open(log.name, "w") as f:  # io.open: not a counted step
                    json.dump(steps, f)
            finally:
                os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(wait_status)
        log.seek(0)
        text = log.read()
    return code, json.loads(text) if text else []


def start_paused(argv: list[str], *, pause_at: int, gate: Path) -> int:
    """Start `savedmodel-surgery ARGV` in a forked child that stops before step `pause_at`.

    Returns once the child is there (it has created `gate`); delete `gate` to let it go on, then
    `finish(pid)`.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            install(0, pause_at=pause_at, gate=gate)
            with open(os.devnull, "w") as null:
                sys.stdout = sys.stderr = null
                status = main(argv)
        finally:
            os._exit(status)
    deadline = time.monotonic() + 30
    while not gate.exists():
        ended, _ = os.waitpid(pid, os.WNOHANG)
        if ended or time.monotonic() > deadline:
            raise AssertionError(f"{argv} ended before step {pause_at}")
        time.sleep(0.005)
    return pid


def start_held(argv: list[str], *, pause_at: int, gate: Path, log: Path) -> int:
    """`savedmodel-surgery ARGV` through the command's own entry (`surgery.cli.run`, which installs
    its signal handlers) in a forked child that stops before step `pause_at`.

    Its stdout and stderr go to `log` with the suffixes `.out` and `.err`. Returns once the
    child is there (it has created `gate`): signal it, delete `gate`, then `finish(pid)`.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            for fd, suffix in ((1, ".out"), (2, ".err")):
                made = os.open(log.with_suffix(suffix), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(made, fd)
                os.close(made)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115  (the child's, until it exits)
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            sys.argv = ["savedmodel-surgery", *argv]
            install(0, pause_at=pause_at, gate=gate)
            run()
        finally:
            os._exit(70)
    deadline = time.monotonic() + 30
    while not gate.exists():
        ended, _ = os.waitpid(pid, os.WNOHANG)
        if ended or time.monotonic() > deadline:
            raise AssertionError(f"{argv} ended before step {pause_at}")
        time.sleep(0.005)
    return pid


def finish(pid: int) -> int:
    """Wait for a child of `start_paused`: its exit code."""
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status)


if __name__ == "__main__":
    steps = install(int(os.environ.get("CRASH_KILL_AT", "0")))
    status = main(sys.argv[1:])
    print(json.dumps(steps), file=sys.stderr)
    sys.exit(status)
