"""Measure the large-model targets ("large models at disk speed") with the real CLI, side by side in one run.

    .venv/bin/python benchmarks/run.py [--quick] [--runs 5] [--size-mb 1024] [--with-tensorflow] [--json F]

Every measurement is one subprocess (`.venv/bin/savedmodel-surgery`, `cp`, `python`), forked and
exec'd by a small launcher process that times it from fork to `os.wait4` and takes its peak RSS from
wait4's `ru_maxrss` (KiB on Linux; for a process that waited for children, the largest of them, not
their sum; never below the launcher's own RSS, shown as the floor): no polling. Each one runs
`--runs` times, interleaved round by round (every case once per round), and the table shows medians
(peak RSS: the largest of the runs). The models' files are read once before timing, so every run
starts with a warm page cache; between runs outputs are deleted and `sync` runs, untimed, so no run
pays for another's write-back. Columns: the tool as it is, the same command with
`SURGERY_FULL_PARSE=1` (the plain full-parse protobuf implementation of the same edit), and the
baselines `cp -r` of the model directory and `cp` of `saved_model.pb` alone (plus, opt-in, the
TensorFlow load + re-save route). It exits 0 whatever it measured and ends with `targets met: X/Y`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from build_models import BENCH_DIR, DEFAULT_CACHE, ROOT, TF_PYTHON, BuiltModel, ensure_models

VENV_BIN = ROOT / ".venv" / "bin"
CLI = VENV_BIN / "savedmodel-surgery"
PYTHON = VENV_BIN / "python"
FIXTURES = ROOT / "tests" / "fixtures" / "models"
WORK = BENCH_DIR / ".work"
RSS_LIMIT_MIB = 256.0
INPLACE_RSS_SLACK = 1.05  # "never more memory than the -o path", allowing 5% run-to-run noise
BATCH_MIN_UTILISATION = 0.90  # "all cores busy"
BATCH_OVERHEAD_FRACTION = 0.5  # "well under the interpreter's start-up time": at most half of it
FULL_PARSE = "SURGERY_FULL_PARSE"


@dataclass
class Sample:
    """One measured run."""

    wall_s: float
    user_s: float
    sys_s: float
    maxrss_mib: float
    exit_code: int
    background_s: float = 0.0
    """After the command ended, until the processes it left running ended (untimed)."""


@dataclass
class Series:
    """All runs of one command in one column."""

    samples: list[Sample] = field(default_factory=list)
    error: str = ""

    @property
    def wall(self) -> float:
        """Median wall time (s)."""
        return statistics.median(s.wall_s for s in self.samples) if self.samples else float("nan")

    @property
    def cpu(self) -> float:
        """Median user + sys time (s), children included."""
        return statistics.median(s.user_s + s.sys_s for s in self.samples) if self.samples else float("nan")

    @property
    def rss(self) -> float:
        """Largest peak RSS over the runs (MiB)."""
        return max((s.maxrss_mib for s in self.samples), default=float("nan"))


@dataclass
class Case:
    """A command to time: argv built from (model dir, output path); how its output is prepared."""

    key: str
    argv: Callable[[Path, Path], list[str]]
    # "out": writes OUT; "inplace": edits a fresh copy; "replace": OUT is a copy of saved_model.pb
    # to overwrite; "read": writes nothing
    kind: str
    ok_codes: tuple[int, ...] = (0,)
    full_parse: bool = True  # also run with SURGERY_FULL_PARSE=1 (the baseline column); False: once


# --- measuring --------------------------------------------------------------------------------------


# The launcher: a small interpreter (`python -S`) that forks, execs and wait4s each command. Linux
# records the pre-exec memory of a forked child in its ru_maxrss, so a command started straight from
# this (larger) process would report at least this process's peak RSS; from the launcher the floor is
# the launcher's own few MiB (measured and shown as the table's RSS floor). It is a subreaper: a
# process the command leaves running (an in-place edit's background free of the replaced file) is
# its child when the command ends, and is waited for, untimed, before the next command starts.
LAUNCHER = r"""
import ctypes, json, os, sys, time
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
for line in sys.stdin:
    job = json.loads(line)
    err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(err, 2)
            os.execvpe(job["argv"][0], job["argv"], job["env"])
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    os.close(err)
    code = os.waitstatus_to_exitcode(status)
    try:
        while True:
            os.wait()
    except ChildProcessError:
        pass
    background = time.perf_counter() - start - wall
    print(json.dumps([wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, code, background]), flush=True)
"""


class Launcher:
    """A persistent `python -S` child that runs each measured command (fork, exec, os.wait4)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[Sample, str]:
        """Run argv once; its Sample (wait4 in the launcher) and the start of its stderr."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with tempfile.NamedTemporaryFile(prefix="bench-stderr-") as err:
            job = {"argv": list(argv), "env": dict(os.environ if env is None else env), "stderr": err.name}
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
            wall, user, system, maxrss_kib, code, background = json.loads(self.proc.stdout.readline())
            text = Path(err.name).read_bytes()[:4000].decode(errors="replace").strip()
        return Sample(wall, user, system, maxrss_kib / 1024, code, background), text

    def close(self) -> None:
        """End the launcher."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


_LAUNCHER: Launcher | None = None


def measure(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[Sample, str]:
    """Run argv once through the launcher; its Sample and the start of its stderr."""
    global _LAUNCHER
    if _LAUNCHER is None:
        _LAUNCHER = Launcher()
    return _LAUNCHER.run(argv, env)


def tool_env(full_parse: bool) -> dict[str, str]:
    """The environment of a tool run: SURGERY_FULL_PARSE=1 or unset."""
    env = {k: v for k, v in os.environ.items() if k != FULL_PARSE}
    env["NO_COLOR"] = "1"
    if full_parse:
        env[FULL_PARSE] = "1"
    return env


def remove(path: Path) -> None:
    """Delete a file or directory tree if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def settle(*paths: Path) -> None:
    """Untimed, between runs: delete outputs, then flush dirty pages so no run pays another's write-back."""
    for path in paths:
        remove(path)
    os.sync()


def warm(directory: Path) -> int:
    """Read every file under directory once (page cache warm-up); bytes read."""
    total = 0
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                while chunk := f.read(1 << 24):
                    total += len(chunk)
    return total


def run_case(case: Case, model: Path, env: dict[str, str] | None, series: Series) -> None:
    """Prepare, run and clean up one run of `case`, appending to `series`."""
    out = WORK / "out"
    settle(out)
    target = model
    if case.kind == "inplace":
        target = WORK / "inplace"
        remove(target)
        subprocess.run(["cp", "-r", str(model), str(target)], check=True)
        os.sync()
    elif case.kind == "replace":
        subprocess.run(["cp", str(model / "saved_model.pb"), str(out)], check=True)
        os.sync()
    sample, err = measure(case.argv(target, out), env)
    if sample.exit_code in case.ok_codes:
        series.samples.append(sample)
    elif not series.error:
        series.error = f"exit {sample.exit_code}: {err.splitlines()[-1] if err else 'no message'}"
    settle(out, WORK / "inplace")


# --- the cases ---------------------------------------------------------------------------------------


def model_cases(p: dict[str, str]) -> list[Case]:
    """The single-model targets and their baselines, for a model with edit parameters p."""
    sig = p["signature"]

    def cli(*args: str) -> list[str]:
        return [str(CLI), "-q", *args]

    def shell(script: str) -> Callable[[Path, Path], list[str]]:
        return lambda m, o: ["sh", "-c", script, "sh", str(m), str(o)]

    edits = [
        Case(
            "rename-signature",
            lambda m, o: cli("rename-signature", str(m), sig, p["signature_new"], "-o", str(o)),
            "out",
        ),
        Case("set-method", lambda m, o: cli("set-method", str(m), sig, p["method"], "-o", str(o)), "out"),
        Case(
            "rename-input (reorder)",
            lambda m, o: cli("rename-input", str(m), sig, p["input_old"], p["input_new"], "-o", str(o)),
            "out",
        ),
        Case(
            "rename-output (reorder)",
            lambda m, o: cli("rename-output", str(m), sig, p["output_old"], p["output_new"], "-o", str(o)),
            "out",
        ),
        Case(
            "set-shape",
            lambda m, o: cli("set-shape", str(m), sig, p["shape_key"], p["shape"], "-o", str(o)),
            "out",
        ),
        Case(
            "set-dtype",
            lambda m, o: cli("set-dtype", str(m), sig, p["dtype_key"], p["dtype"], "-o", str(o)),
            "out",
        ),
        Case(
            "rename-signature --in-place",
            lambda m, o: cli("rename-signature", str(m), sig, p["signature_new"], "--in-place"),
            "inplace",
        ),
    ]

    def baseline(key: str, argv: Callable[[Path, Path], list[str]], kind: str = "out") -> Case:
        return Case(key, argv, kind, full_parse=False)

    def cp_pb(m: Path, o: Path) -> list[str]:
        return ["cp", str(m / "saved_model.pb"), str(o)]

    return [
        baseline("cp -r", lambda m, o: ["cp", "-r", str(m), str(o)]),
        # `sync FILE...` fsyncs each file, as the tool does before it publishes.
        baseline("cp -r + fsync", shell('cp -r "$1" "$2" && find "$2" -type f -exec sync {} +')),
        baseline("cp saved_model.pb", cp_pb),
        baseline("cp saved_model.pb + fsync", shell('cp "$1/saved_model.pb" "$2" && sync "$2"')),
        # What replacing a file costs: the old one's blocks and cached pages are freed (an in-place edit
        # pays that too; a copy to a new path does not).
        baseline("cp over an existing saved_model.pb", cp_pb, "replace"),
        *edits,
        # The same edits without fsync, as cp and TensorFlow write (the full parse is not run again).
        *[Case(c.key + NO_SYNC, _no_sync(c.argv), c.kind, full_parse=False) for c in edits],
        Case("show", lambda m, o: cli("show", str(m)), "read"),
        Case("check", lambda m, o: cli("check", str(m)), "read"),
    ]


def _no_sync(argv: Callable[[Path, Path], list[str]]) -> Callable[[Path, Path], list[str]]:
    return lambda m, o: [*argv(m, o), NO_SYNC.strip()]


def tensorflow_case(p: dict[str, str]) -> Case:
    """Opt-in baseline: the same signature rename by TensorFlow load + re-save."""
    script = str(BENCH_DIR / "tf_resave.py")
    return Case(
        "TensorFlow load + re-save (rename-signature)",
        lambda m, o: [str(TF_PYTHON), script, str(m), p["signature"], p["signature_new"], str(o)],
        "out",
        full_parse=False,
    )


# --- targets -----------------------------------------------------------------------------------------

NO_SYNC = " --no-sync"
# The baseline that writes as the tool does: to the page cache only (--no-sync), or fsynced.
BASELINES = {False: ("cp -r", "cp saved_model.pb"), True: ("cp -r + fsync", "cp saved_model.pb + fsync")}
COPY_TARGETS = {"rename-signature": 2.0, "set-method": 2.0}
EDIT_TARGETS = {
    "rename-input (reorder)": 3.0,
    "rename-output (reorder)": 3.0,
    "set-shape": 3.0,
    "set-dtype": 3.0,
}


@dataclass
class Row:
    """One line of the table."""

    model: str
    case: str
    wall: float
    rss: float
    baseline: str = "—"
    ratio: float | None = None
    limit: str = "—"
    full_wall: float | None = None
    full_rss: float | None = None
    result: str = "—"
    note: str = ""


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def judge_model(name: str, results: dict[str, dict[str, Series]]) -> list[Row]:
    """Rows (with PASS/FAIL) for one model's results: results[case][column]."""
    rows: list[Row] = []
    wall = {key: cols["tool"].wall for key, cols in results.items()}
    for key, cols in results.items():
        edit = key.removesuffix(NO_SYNC)
        durable = edit == key
        copy_base, pb_base = BASELINES[durable]
        fast, full = cols["tool"], cols.get("full")
        row = Row(name, key, fast.wall, fast.rss, note=fast.error)
        if full is not None:
            row.full_wall, row.full_rss = full.wall, full.rss
            if full.error:
                row.note = (row.note + " | full-parse: " + full.error).strip(" |")
        failed = bool(fast.error) or not fast.samples
        rss_ok = fast.rss <= RSS_LIMIT_MIB
        if edit in COPY_TARGETS or edit in EDIT_TARGETS:
            factor = COPY_TARGETS.get(edit) or EDIT_TARGETS[edit]
            row.baseline, row.ratio = copy_base, fast.wall / wall[copy_base]
            row.limit = f"≤ {factor:g}× {copy_base}, ≤ {RSS_LIMIT_MIB:.0f} MiB"
            row.result = verdict(not failed and fast.wall <= factor * wall[copy_base] and rss_ok)
            if durable:
                row.note = (row.note + f" {fast.wall / wall['cp -r']:.2f}× cp -r").strip()
        elif key in ("show", "check"):
            row.limit = f"< 1 s, ≤ {RSS_LIMIT_MIB:.0f} MiB"
            row.result = verdict(not failed and fast.wall < 1.0 and rss_ok)
        elif edit == "rename-signature --in-place":
            # The baseline: cp of saved_model.pb alone, to a new file. Replacing a file also frees
            # the old one's blocks and cached pages, which that cp never pays: cp over an existing pb,
            # which does, is shown beside it (see docs/performance.md).
            o_rss = results["rename-signature" + ("" if durable else NO_SYNC)]["tool"].rss
            row.baseline, row.ratio = pb_base, fast.wall / wall[pb_base]
            row.limit = f"≤ 2× {pb_base}, RSS ≤ -o path ({o_rss:.0f} MiB)"
            row.result = verdict(
                not failed and fast.wall <= 2 * wall[pb_base] and fast.rss <= o_rss * INPLACE_RSS_SLACK
            )
            others = [("cp saved_model.pb", wall["cp saved_model.pb"])] if durable else []
            others.append(("cp over an existing pb", wall["cp over an existing saved_model.pb"]))
            note = ", ".join(f"{fast.wall / base:.2f}× {name}" for name, base in others)
            row.note = (row.note + " " + note + background_note(fast)).strip()
        elif key.startswith("TensorFlow"):
            row.baseline, row.ratio = "cp -r", fast.wall / wall["cp -r"]
            rename = results["rename-signature"]["tool"].wall
            row.note = (row.note + f" ({fast.wall / rename:.1f}× the tool's rename-signature)").strip()
        rows.append(row)
    return rows


def background_note(series: Series) -> str:
    """How long what a command left running (the background free of a replaced file) went on."""
    left = [s.background_s for s in series.samples]
    if not left or max(left) < 0.01:
        return ""
    return f"; the replaced pb freed in the background, {statistics.median(left):.2f} s more (untimed)"


# --- the batch ---------------------------------------------------------------------------------------


def make_fleet(count: int) -> tuple[Path, Path]:
    """`count` copies of the bundled fixtures (cycled) under WORK/fleet, and a plan for all of them."""
    fleet = WORK / "fleet"
    fixtures = sorted(p for p in FIXTURES.iterdir() if (p / "saved_model.pb").is_file())
    marker = fleet / f".complete-{count}"
    if not marker.exists():
        remove(fleet)
        fleet.mkdir(parents=True)
        for i in range(count):
            src = fixtures[i % len(fixtures)]
            shutil.copytree(src, fleet / f"{i:04d}_{src.name}")
        marker.touch()
    plan = WORK / "plan.yaml"
    plan.write_text('operations:\n  - {op: rename-signature, regex: "^(.+)$", new: "v2_\\\\1"}\n')
    return fleet, plan


@dataclass
class BatchResult:
    """The batch measurements and their verdict."""

    models: int
    jobs: int | None
    cores: int
    tool: Series
    full: Series
    python_pass: Series
    import_cli: Series
    in_place: Series = field(default_factory=Series)
    """`apply --in-place` over a fresh copy of the same models (for the notes: not a target)."""
    rows: list[Row] = field(default_factory=list)


def judge_batch(b: BatchResult) -> list[Row]:
    """Rows for the batch target: CPU utilisation and per-model cost vs interpreter start-up."""
    rows = [
        Row("startup", "python -c pass", b.python_pass.wall, b.python_pass.rss),
        Row("startup", 'python -c "import surgery.cli.command"', b.import_cli.wall, b.import_cli.rss),
    ]
    for name, series in (("tool", b.tool), ("full", b.full)):
        if not series.samples:
            rows.append(
                Row(
                    f"batch ×{b.models}",
                    f"apply {jobs_label(b.jobs)} ({name})",
                    float("nan"),
                    float("nan"),
                    note=series.error,
                )
            )
            continue
        util = utilisation(series, b.cores)
        after = statistics.median(after_startup(s, b.import_cli.wall, b.cores) for s in series.samples)
        per_model = series.wall * b.cores / b.models
        note = (
            f"CPU utilisation {util:.1%} ({after:.0%} after start-up, estimated); per model "
            f"{per_model * 1000:.1f} ms of core time = "
            f"{per_model / b.python_pass.wall:.2f}× `python -c pass`, "
            f"{per_model / b.import_cli.wall:.2f}× `import surgery.cli.command`"
        )
        if name == "tool":
            ok = (
                not series.error
                and util >= BATCH_MIN_UTILISATION
                and per_model <= BATCH_OVERHEAD_FRACTION * b.python_pass.wall
            )
            case = f"apply {jobs_label(b.jobs)} --output-root"
            row = Row(f"batch ×{b.models}", case, series.wall, series.rss)
            row.limit = (
                f"CPU ≥ {BATCH_MIN_UTILISATION:.0%}, per model ≤ {BATCH_OVERHEAD_FRACTION:g}× python start-up"
            )
            row.result = verdict(ok)
            row.full_wall, row.full_rss = b.full.wall, b.full.rss
            row.note = (note + (" | " + series.error if series.error else "")).strip()
            rows.append(row)
        else:
            rows[-1].note += f" | full-parse: {note}"
    if b.in_place.samples:
        util = utilisation(b.in_place, b.cores)
        row = Row(
            f"batch ×{b.models}", f"apply {jobs_label(b.jobs)} --in-place", b.in_place.wall, b.in_place.rss
        )
        row.baseline, row.ratio = "apply --output-root", b.in_place.wall / b.tool.wall
        row.note = f"not a target: CPU utilisation {util:.1%}; each model's pb and fingerprint.pb replaced"
        rows.append(row)
    return rows


def utilisation(series: Series, cores: int) -> float:
    """Median share of the cores' time the runs kept busy (user + sys over wall × cores)."""
    return statistics.median((s.user_s + s.sys_s) / (s.wall_s * cores) for s in series.samples)


def after_startup(sample: Sample, startup: float, cores: int) -> float:
    """Utilisation without the start-up: its `startup` seconds counted as one busy core and removed.

    An estimate, for the notes (the verdict is on the whole run): the command imports its modules on
    one core before it starts its workers, and that time is fixed while the rest grows with the batch.
    """
    busy = sample.user_s + sample.sys_s - startup
    return busy / ((sample.wall_s - startup) * cores)


def jobs_label(jobs: int | None) -> str:
    return f"-j {jobs}" if jobs else "(default -j)"


def record(series: Series, sample: Sample, err: str) -> None:
    """Add a successful run to `series`; the first failure becomes its error."""
    if sample.exit_code == 0:
        series.samples.append(sample)
    elif not series.error:
        series.error = f"exit {sample.exit_code}: {err.splitlines()[-1] if err else ''}"


def run_batch(count: int, jobs: int | None, cores: int, runs: int) -> BatchResult:
    """Time `apply MODELS PLAN --output-root DIR [-j jobs]` over count small models, and start-up."""
    fleet, plan = make_fleet(count)
    warm(fleet)
    # Every run writes a new output root, as a user's batch does; all are deleted at the end. Deleted
    # between runs, they slowed each next run (3.6 s, then up to 7 s): ext4 without a journal skips
    # inodes freed in the last 30 s at every allocation, and the scan is kernel time.
    outs = WORK / "fleet_out"
    settle(outs)
    result = BatchResult(count, jobs, cores, Series(), Series(), Series(), Series())
    startup = max(10, runs)
    for i in range(max(runs, startup)):
        if i < startup:
            startups = ((result.python_pass, "pass"), (result.import_cli, "import surgery.cli.command"))
            for series, code in startups:
                sample, _ = measure([str(PYTHON), "-c", code])
                series.samples.append(sample)
        if i < runs:
            for series, full in ((result.tool, False), (result.full, True)):
                out = outs / f"{'full' if full else 'tool'}-{i}"
                argv = [str(CLI), "-q", "apply", str(fleet / "*"), str(plan), "--output-root", str(out)]
                argv += ["-j", str(jobs)] if jobs else []
                settle()
                record(series, *measure(argv, tool_env(full)))
            copy = outs / f"in-place-{i}"
            shutil.copytree(fleet, copy)  # untimed: a fresh fleet to edit in place
            warm(copy)
            argv = [str(CLI), "-q", "apply", str(copy / "*"), str(plan), "--in-place"]
            settle()
            record(result.in_place, *measure(argv + (["-j", str(jobs)] if jobs else []), tool_env(False)))
    settle(outs)
    result.rows = judge_batch(result)
    return result


# --- machine and table -------------------------------------------------------------------------------


def _first(path: str, prefix: str) -> str:
    """The value of the first `prefix: value` line of a /proc file."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> dict[str, str]:
    """What the numbers came from."""
    fs = subprocess.run(
        ["findmnt", "-no", "SOURCE,FSTYPE,OPTIONS", "-T", str(WORK)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    proto = subprocess.run(
        [
            str(PYTHON),
            "-c",
            "import google.protobuf as p; from google.protobuf.internal import api_implementation as a; "
            "print(p.__version__, a.Type())",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    mem_kib = int(_first("/proc/meminfo", "MemTotal").split()[0] or 0)
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": str(len(os.sched_getaffinity(0))),
        "ram": f"{mem_kib / (1 << 20):.1f} GiB",
        "disk": fs or "unknown",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "protobuf": proto or "unknown",
        "commit": commit,
        "free page reporting": page_reporting(),
    }


PAGE_REPORTING = Path("/sys/module/page_reporting/parameters")


def page_reporting(params: Path = PAGE_REPORTING) -> str:
    """Whether a VM guest hands freed pages back to the host, and how soon: it decides what a fresh
    page costs, hence the copies every case makes (see docs/performance.md)."""
    if not params.is_dir():
        return "none"
    values = []
    for name in ("page_reporting_order", "min_free_ms"):
        with contextlib.suppress(OSError):
            values.append(f"{name}={(params / name).read_text().strip()}")
    return "on (" + ", ".join(values) + ")" if values else "on"


def fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    """A number for the table, or a dash."""
    if value is None or value != value:
        return "—"
    return f"{value:{spec}}{suffix}"


def rss_floor() -> float:
    """The smallest peak RSS a measured command can show: `true` through the launcher (MiB)."""
    return min(measure(["true"])[0].maxrss_mib for _ in range(3))


def table(rows: list[Row], runs: int, info: dict[str, str]) -> str:
    """The markdown table, with the machine and method in its header."""
    lines = [
        f"Medians of {runs} runs each (peak RSS: largest run; wait4 ru_maxrss). Page cache warmed once "
        "before timing (every input read in full); outputs deleted (the batch: a new output root each run) "
        "and `sync` run between runs, untimed. "
        f"Columns: the tool; `{FULL_PARSE}=1` (full-parse baseline); ratios vs the baseline command.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()),
        "",
        "| model | case | wall s | peak RSS MiB | baseline | ratio | target | "
        "full-parse wall s | full-parse RSS MiB | result | notes |",
        "|---|---|---:|---:|---|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.case} | {fmt(r.wall, '.3f')} | {fmt(r.rss, '.0f')} | {r.baseline} | "
            f"{fmt(r.ratio, '.2f', '×')} | {r.limit} | "
            f"{fmt(r.full_wall, '.3f')} | {fmt(r.full_rss, '.0f')} | {r.result} | {r.note} |"
        )
    return "\n".join(lines)


# --- the validator's cost ------------------------------------------------------------------------------

REALWORLD = ROOT.parent / "shared" / "realworld"
VALIDATOR_MODELS = (
    FIXTURES / "module_multi",
    REALWORLD / "wild" / "stock_lstm_aapl",  # a Keras LSTM: 176 functions
    REALWORLD / "wild" / "crypto_rnn",  # a Keras RNN: 296 functions, 12,833 nodes
)
VALIDATE = r"""
import json, resource, statistics, sys, time
import surgery
from surgery.validate import validate
start = time.perf_counter()
model = surgery.load(sys.argv[1])
loaded = time.perf_counter() - start
metas = model.proto.meta_graphs
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    found = [issue for meta in metas for issue in validate(meta)]
    times.append(time.perf_counter() - start)
print(json.dumps({
    "load_s": loaded,
    "validate_s": statistics.median(times),
    "functions": sum(len(m.graph_def.library.function) for m in metas),
    "nodes": sum(
        len(m.graph_def.node) + sum(len(f.node_def) for f in m.graph_def.library.function) for m in metas
    ),
    "findings": len(found),
    "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def validator_rows(paths: Sequence[tuple[str, Path]], runs: int) -> list[Row]:
    """What `check` and every edit spend validating the graph (in-process, after a lazy load):
    not a target; the edit rows above include it."""
    rows = []
    for name, path in paths:
        if not (path / "saved_model.pb").exists():
            continue
        done = subprocess.run(
            [str(PYTHON), "-c", VALIDATE, str(path), str(runs)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            error = done.stderr.strip()[-200:]
            rows.append(Row(name, "validate (in-process)", math.nan, math.nan, note=error))
            continue
        got = json.loads(done.stdout)
        rows.append(
            Row(
                name,
                "validate (in-process)",
                got["validate_s"],
                got["maxrss_mib"],
                result="not a target",
                note=(
                    f"{got['functions']} functions, {got['nodes']:,} nodes, {got['findings']} findings; "
                    f"the lazy load before it {got['load_s']:.3f} s; peak RSS of the whole process"
                ),
            )
        )
    return rows


# --- text format ---------------------------------------------------------------------------------------

TEXT_RSS_MIB = {"small": 1024.0, "large": 512.0}
"""Peak RSS limits of the text paths: a 40 MB model's, and a 1 GiB model's."""
TEXT_MODEL_MB = 40
MAKE_TEXT_MODEL = r"""
import os, random, shutil, sys
import surgery
from surgery.schema import DataType
source, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = surgery.load(source, lazy=False)
node = model.proto.meta_graphs[0].graph_def.node.add(name="big_constant", op="Const")
node.attr["dtype"].type = DataType.DT_FLOAT
tensor = node.attr["value"].tensor
tensor.dtype = DataType.DT_FLOAT
tensor.tensor_shape.dim.add().size = size // 4
tensor.tensor_content = random.Random(0).randbytes(size)
os.makedirs(out)
shutil.copytree(os.path.join(source, "variables"), os.path.join(out, "variables"))
with open(os.path.join(out, "saved_model.pb"), "wb") as f:
    f.write(model.proto.SerializeToString(deterministic=True))
"""


def text_model(cache: Path) -> tuple[Path, str]:
    """A model whose saved_model.pb holds a 40 MB constant (built once, from a fixture)."""
    path = cache / f"text-{TEXT_MODEL_MB}mb"
    if not (path / "saved_model.pb").is_file():
        remove(path)
        subprocess.run(
            [
                str(PYTHON),
                "-c",
                MAKE_TEXT_MODEL,
                str(FIXTURES / "module_multi"),
                str(path),
                str(TEXT_MODEL_MB << 20),
            ],
            check=True,
        )
    return path, "serving_default"


def text_rows(models: Sequence[tuple[str, Path, str, float]], runs: int) -> list[Row]:
    """The text paths of each model: convert to pbtxt and back (byte for byte the original), show
    and an edit of the text copy; peak RSS against `limit`, and MB of text a second."""
    rows = []
    text, back, edited = WORK / "text", WORK / "text-back", WORK / "text-edit"
    for name, model, signature, limit in models:
        cases = {
            "pb → pbtxt (convert)": lambda m=model: ["convert", str(m), "-o", str(text)],
            "pbtxt → pb (convert)": lambda: ["convert", str(text), "-o", str(back)],
            "show (pbtxt)": lambda: ["show", str(text)],
            "rename-signature (pbtxt) -o": lambda s=signature: [
                "rename-signature",
                str(text),
                s,
                "renamed",
                "-o",
                str(edited),
            ],
        }
        series = {key: Series() for key in cases}
        exact = True
        text_bytes = 0
        for round_no in range(runs):
            print(f"run.py: {name}: text round {round_no + 1}/{runs}", file=sys.stderr)
            for key, argv in cases.items():
                if key.startswith("pb →"):
                    settle(text)
                sample, err = measure([str(CLI), "-q", *argv()])
                record(series[key], sample, err)
                if key.startswith("pb →"):
                    text_bytes = (text / "saved_model.pbtxt").stat().st_size if sample.exit_code == 0 else 0
                if key.startswith("pbtxt →") and sample.exit_code == 0:
                    exact = exact and all(
                        (back / f).read_bytes() == (model / f).read_bytes()
                        for f in ("saved_model.pb", "fingerprint.pb")
                        if (model / f).exists()
                    )
                settle(back, edited)
        settle(text)
        for key, got in series.items():
            rate = text_bytes / got.wall / 1e6 if got.samples else math.nan
            ok = not got.error and bool(got.samples) and got.rss <= limit
            note = f"{rate:,.0f} MB of text/s ({text_bytes / 1e6:,.0f} MB of text)"
            if key.startswith("pbtxt →"):
                ok = ok and exact
                note += (
                    "; byte for byte the original pb and fingerprint.pb"
                    if exact
                    else "; NOT the original bytes"
                )
            rows.append(
                Row(
                    name,
                    key,
                    got.wall,
                    got.rss,
                    limit=f"≤ {limit:.0f} MiB",
                    result=verdict(ok),
                    note=(got.error + " " + note).strip(),
                )
            )
    return rows


# --- plans --------------------------------------------------------------------------------------------

PLAN_OPS = 65536
YAML_JSON_LIMIT = 5.0


def plan_rows(runs: int) -> list[Row]:
    """`apply --dry-run` of one plan of PLAN_OPS set-method edits, as JSON and as YAML (one flow
    mapping a line): the YAML against the JSON, whose loader is C all the way."""
    model, plans = WORK / "plan-model", WORK / "plans"
    remove(model)
    remove(plans)
    shutil.copytree(FIXTURES / "module_multi", model)
    plans.mkdir()
    entry = {"op": "set-method", "signature": "fixed", "method": "tensorflow/serving/predict"}
    (plans / "plan.json").write_text(json.dumps({"operations": [entry] * PLAN_OPS}))
    line = "  - {op: set-method, signature: fixed, method: tensorflow/serving/predict}\n"
    (plans / "plan.yaml").write_text("operations:\n" + line * PLAN_OPS)
    series = {kind: Series() for kind in ("json", "yaml")}
    for round_no in range(runs):
        print(f"run.py: plans: round {round_no + 1}/{runs}", file=sys.stderr)
        for kind, got in series.items():
            sample, err = measure(
                [str(CLI), "-q", "apply", str(model), str(plans / f"plan.{kind}"), "--dry-run"]
            )
            record(got, sample, err)
    name = f"module_multi, {PLAN_OPS:,} set-method edits"
    json_row = Row(
        name,
        "apply --dry-run (JSON plan)",
        series["json"].wall,
        series["json"].rss,
        note=series["json"].error,
    )
    yaml = series["yaml"]
    ratio = yaml.wall / series["json"].wall
    ok = not yaml.error and bool(yaml.samples) and ratio <= YAML_JSON_LIMIT
    yaml_row = Row(
        name,
        "apply --dry-run (YAML plan)",
        yaml.wall,
        yaml.rss,
        baseline="JSON plan",
        ratio=ratio,
        limit=f"≤ {YAML_JSON_LIMIT:g}× JSON plan",
        result=verdict(ok),
        note=(yaml.error + " PyYAML's C parser; the objects are built in Python").strip(),
    )
    remove(model)
    remove(plans)
    return [json_row, yaml_row]


# --- main --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Build or reuse the models, measure everything, print the table; always exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 64 MiB model, 3 runs, 200 batch models")
    parser.add_argument("--runs", type=int, help="runs per case (default 5; 3 with --quick)")
    parser.add_argument(
        "--size-mb", type=int, help="size of the large constant (default 1024; 64 with --quick)"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--route", choices=["auto", "tensorflow", "protobuf"], default="auto")
    parser.add_argument(
        "--placement", action="append", choices=["captured", "function"], help="default: both"
    )
    parser.add_argument(
        "--batch-models", type=int, help="models in the batch (default 1000; 200 with --quick)"
    )
    parser.add_argument(
        "--jobs", type=int, help="apply -j (default: the tool's own, one more than the cores)"
    )
    parser.add_argument("--no-batch", action="store_true", help="skip the batch target")
    parser.add_argument("--no-text", action="store_true", help="skip the text-format targets")
    parser.add_argument("--no-plans", action="store_true", help="skip the YAML-against-JSON plan target")
    parser.add_argument(
        "--no-full-parse", action="store_true", help=f"skip the {FULL_PARSE}=1 column (not a target)"
    )
    parser.add_argument("--no-models", action="store_true", help="skip the large models (the batch alone)")
    parser.add_argument(
        "--with-tensorflow", action="store_true", help="add the TensorFlow load + re-save route"
    )
    parser.add_argument("--json", type=Path, help="also save every sample and verdict here")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    size_mb = args.size_mb or (64 if args.quick else 1024)
    batch_models = args.batch_models or (200 if args.quick else 1000)
    placements = tuple(args.placement or ("captured", "function"))
    cores = len(os.sched_getaffinity(0))
    if not CLI.exists():
        print(f"run.py: {CLI} is missing: run `make bench` (it creates .venv/)", file=sys.stderr)
        return 2
    models: list[BuiltModel] = (
        [] if args.no_models else ensure_models(size_mb, args.cache, args.route, placements)
    )
    WORK.mkdir(parents=True, exist_ok=True)
    info = machine()
    info["RSS floor"] = f"{rss_floor():.1f} MiB (`true` through the launcher)"
    print("run.py: machine: " + json.dumps(info), file=sys.stderr)
    # Measure the tool as an install runs it, with its bytecode compiled (pip does it; an editable
    # install under PYTHONDONTWRITEBYTECODE=1 would recompile every module at every start).
    subprocess.run(
        [str(PYTHON), "-m", "compileall", "-q", str(ROOT / "surgery"), str(ROOT / "generated")], check=True
    )
    measure([str(PYTHON), "-c", "import surgery.cli.command"])  # warm the imports, untimed
    rows: list[Row] = []
    raw: dict[str, Any] = {
        "machine": info,
        "runs": runs,
        "models": [asdict(m) for m in models],
        "results": {},
    }
    batch_rows: list[Row] = []
    if not args.no_batch:
        # First, on a quiet disk: right after the large models (gigabytes written and deleted, with
        # `discard`), the same batch was 69-82% busy where it was 87-89% alone (why: not established).
        print(f"run.py: batch of {batch_models} models, {jobs_label(args.jobs)}", file=sys.stderr)
        batch = run_batch(batch_models, args.jobs, cores, runs)
        batch_rows = batch.rows
        raw["batch"] = asdict(batch)
    for built in models:
        model = Path(built.path)
        cases = model_cases(built.params)
        if args.no_full_parse:
            cases = [replace(c, full_parse=False) for c in cases]
        if args.with_tensorflow and TF_PYTHON.exists():
            cases.append(tensorflow_case(built.params))
        print(f"run.py: {built.name}: warming {warm(model):,} bytes into the page cache", file=sys.stderr)
        results: dict[str, dict[str, Series]] = {
            c.key: {"tool": Series(), **({"full": Series()} if c.full_parse else {})} for c in cases
        }
        for round_no in range(runs):
            print(f"run.py: {built.name}: round {round_no + 1}/{runs}", file=sys.stderr)
            # A new order each round (the same in every run of the benchmark), so that no case always
            # follows the same one: in a fixed order, `cp -r`, always first, took 1.1-2.1 s on this VM
            # where it takes 0.6-0.7 s alone.
            for case in random.Random(round_no).sample(cases, len(cases)):
                run_case(case, model, tool_env(False), results[case.key]["tool"])
                if case.full_parse:
                    run_case(case, model, tool_env(True), results[case.key]["full"])
        rows += judge_model(f"{built.name} ({built.pb_bytes / (1 << 20):.0f} MiB pb)", results)
        raw["results"][built.name] = {k: {c: asdict(s) for c, s in v.items()} for k, v in results.items()}
    validated = [(f"{m.name} ({m.pb_bytes / (1 << 20):.0f} MiB pb)", Path(m.path)) for m in models]
    validated += [(path.name, path) for path in VALIDATOR_MODELS]
    rows += validator_rows(validated, runs)
    if not args.no_text:
        small, small_signature = text_model(args.cache)
        size = (small / "saved_model.pb").stat().st_size
        texts = [(f"{small.name} ({size / 1e6:.0f} MB pb)", small, small_signature, TEXT_RSS_MIB["small"])]
        texts += [
            (
                f"{m.name} ({m.pb_bytes / (1 << 20):.0f} MiB pb)",
                Path(m.path),
                m.params["signature"],
                TEXT_RSS_MIB["large"],
            )
            for m in models[:1]
        ]
        rows += text_rows(texts, runs)
    if not args.no_plans:
        rows += plan_rows(runs)
    rows += batch_rows  # the batch's rows stay at the end of the table
    if _LAUNCHER is not None:
        _LAUNCHER.close()
    text = table(rows, runs, info)
    judged = [r for r in rows if r.result in ("PASS", "FAIL")]
    met = sum(r.result == "PASS" for r in judged)
    footer = f"targets met: {met}/{len(judged)}"
    print(text)
    print()
    print(footer)
    raw["rows"] = [asdict(r) for r in rows]
    raw["targets_met"] = [met, len(judged)]
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text(text + "\n\n" + footer + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
