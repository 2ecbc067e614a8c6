"""One plan over many models, in parallel worker processes.

`apply_plan` runs the runner's job (`surgery.runner`) for each model, in worker processes; one
failing model does not stop the others, and nothing is written for it. Copies and in-place edits are
published a few models at a time, made durable by one flush per step (`surgery.storage.commit_group`);
with workers, the workers only stage them and the parent makes them durable and publishes them
(an in-place edit's model lock goes along, `surgery.storage.LockChannel`), so no worker waits on the
disk. Workers end with their parent. Interrupted, the batch starts no other model, stops its
workers in the middle of theirs (SIGTERM, which unwinds a worker's chunk and removes what it
staged), publishes nothing more, and raises the interrupt with every model as it was or complete.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from surgery.errors import SavedModelIOError
from surgery.interrupts import Interrupted, deferred
from surgery.runner import EditResult, Job, error_line, run
from surgery.storage import CommitGroup, LockChannel, commit_group, recover
from surgery.storage.recovery import clean_stale_outputs

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from surgery.plans import Plan
    from surgery.storage import Staged

    Done = tuple[list[EditResult], list[Staged]]  # a worker's chunk: results, writes to publish


@dataclass(frozen=True)
class Target:
    """One model of a batch and where its result goes (`None`: in place)."""

    model: str
    output: str | None


def is_pattern(path: str) -> bool:
    """Whether `path` is a glob pattern the shell left unexpanded (and no file has that name)."""
    return glob.has_magic(path) and not os.path.lexists(path)


def expand_models(patterns: Sequence[str]) -> list[str]:
    """Model paths from paths and glob patterns the shell left unexpanded, in order, without repeats.

    A pattern is expanded only when no file of that literal name exists; one that matches
    nothing is an error.
    """
    models: list[str] = []
    seen: set[str] = set()
    real = _RealPaths()
    for pattern in patterns:
        if is_pattern(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise SavedModelIOError(f"no model matches {pattern!r}: check the pattern")
        else:
            matches = [pattern]
        for match in matches:
            key = real(match)
            if key not in seen:
                seen.add(key)
                models.append(match)
    return models


def _normalized(model: str) -> str:
    path = os.path.normpath(model)
    return path if os.path.basename(path) not in ("", ".", "..") else os.path.abspath(path)


def batch_targets(
    models: Sequence[str], *, suffix: str | None = None, output_root: str | None = None
) -> list[Target]:
    """Where each model's result goes: `<model><suffix>` beside it, `<output_root>/<name>`, or in place.

    Refuses, before anything is touched, two models mapped onto one output and an output that
    is itself one of the models.
    """
    if suffix is not None and output_root is not None:
        raise SavedModelIOError("give a suffix or an output root, not both")
    if suffix is None and output_root is None:
        return [Target(model, None) for model in models]
    targets: list[Target] = []
    for model in models:
        name = _normalized(model)
        if suffix is not None:
            targets.append(Target(model, name + suffix))
        else:
            assert output_root is not None
            targets.append(Target(model, os.path.join(output_root, os.path.basename(name))))
    real = _RealPaths()
    inputs = {real(t.model): t.model for t in targets}
    claimed: dict[str, str] = {}
    for target in targets:
        assert target.output is not None
        key = real(target.output)
        if key in claimed:
            raise SavedModelIOError(
                f"{claimed[key]} and {target.model} would both be written to {target.output}: "
                "rename one, or use --suffix"
            )
        if key in inputs:
            raise SavedModelIOError(
                f"the output {target.output} of {target.model} is the input {inputs[key]}: "
                "choose another suffix or output root"
            )
        claimed[key] = target.model
    return targets


class _RealPaths:
    """`os.path.realpath` that resolves each parent directory once (a batch's paths mostly share
    one): a path that is not a symbolic link is its parent's real path and its own name."""

    def __init__(self) -> None:
        self._parents: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        full = os.path.abspath(path)
        parent, name = os.path.split(full)
        if not name or ".." in path.split(os.sep) or os.path.islink(full):
            return os.path.realpath(path)  # ".." after a link is not what abspath makes of it
        if parent not in self._parents:
            self._parents[parent] = os.path.realpath(parent)
        return os.path.join(self._parents[parent], name)


def _job(plan: Plan, target: Target, *, force: bool, dry_run: bool, sync: bool) -> Job:
    """The runner's job for one model of the batch: a copy to its output, or in place."""
    in_place = target.output is None
    return Job(target.model, plan.apply, target.output, in_place, force, dry_run, sync)


# A worker's share of the batch, set once when the worker starts (not sent with every model).
_JOB: tuple[Plan, bool, bool, bool, LockChannel | None] | None = None

Mask = set[int | signal.Signals]

_STOP_SIGNALS: Mask = {signal.SIGINT, signal.SIGTERM}
"""What stops a batch: Ctrl-C (the parent's to handle) and SIGTERM."""


class _Worker:
    """A worker's state as its SIGTERM handler sees it."""

    running = False
    """Running a chunk: SIGTERM raises there, so that the chunk unwinds and its writes go."""
    stopped: int | None = None
    """The signal that stopped the worker: it runs no more chunks."""


class WorkerStopped(Exception):
    """A worker was stopped (SIGTERM) before it finished its chunk: nothing of it was written."""


def _start_worker(
    parent: int, plan: Plan, force: bool, dry_run: bool, sync: bool, channel: LockChannel | None
) -> None:
    """Workers leave Ctrl-C to the parent, which cancels what has not started and stops them
    (SIGTERM) in the middle of what has; they end with it. Signals stay blocked until then."""
    global _JOB
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    _die_with(parent)
    _JOB = (plan, force, dry_run, sync, channel)
    _set_mask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _set_mask(how: int, signals: Mask) -> Mask:
    """`signal.pthread_sigmask` where there is one (POSIX): the mask it replaced."""
    if not hasattr(signal, "pthread_sigmask"):
        return set()
    return signal.pthread_sigmask(how, signals)


def _stop_worker(signum: int, frame: FrameType | None) -> None:
    """SIGTERM in a worker: the chunk it runs unwinds (its staged writes removed); no more chunks."""
    first = _Worker.stopped is None
    _Worker.stopped = signum
    if first and _Worker.running:
        _Worker.running = False
        raise Interrupted(signum)


_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """End this worker when `parent` dies: a killed run must not leave its workers waiting forever
    for work (holding their copies' locks). Linux signals it; elsewhere a thread watches."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before that
        os._exit(1)


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _run_chunk(chunk: list[Target]) -> Done:
    """A worker's share: each model edited and its copy (or in-place edit) staged, and handed to
    the parent unpublished (it makes them durable and publishes them: `_commit_chunks`), so that
    workers never wait on the disk."""
    assert _JOB is not None
    plan, force, dry_run, sync, channel = _JOB
    if _Worker.stopped is not None:
        raise WorkerStopped(f"stopped by {signal.Signals(_Worker.stopped).name}")
    try:
        with commit_group() as group:
            _Worker.running = True
            try:
                jobs = [_job(plan, t, force=force, dry_run=dry_run, sync=sync) for t in chunk]
                results = [run(job) if dry_run else run(job, group=group) for job in jobs]
            finally:
                _Worker.running = False  # from here, a SIGTERM waits: the chunk goes to the parent
            staged = group.hand_over(channel)  # in place, each model's lock goes to the parent
    except Interrupted as err:
        raise WorkerStopped(f"stopped by {err}") from None
    return results, staged


def run_group(
    plan: Plan, targets: Sequence[Target], *, force: bool, dry_run: bool, sync: bool = True
) -> list[EditResult]:
    """The runner's job for each target, the copies published together at the end.

    A copy that could not be published (its output appeared meanwhile, the disk failed) turns
    into that model's failed result, with the error `save` gives alone.
    """
    results: list[EditResult] = []
    _run_here(plan, targets, results.append, force=force, dry_run=dry_run, sync=sync)
    return results


def _settled(results: list[EditResult], failures: dict[Path, SavedModelIOError]) -> list[EditResult]:
    """`results` with each copy its group could not publish turned into that model's failure."""
    for result in results:
        failure = failures.get(Path(result.output)) if result.ok and result.output else None
        if failure is not None:
            result.ok, result.output = False, None
            result.error = error_line(failure, result.model)
    return results


GROUP_SIZE = 8  # models whose copies are published together: 1,000 took the same time with 8, 16 or 32


GROUP_BYTES = 64 << 20
"""In place, a group's new model files wait beside the old ones until it commits: a group of
large models holds at most this much of them (or one model), not GROUP_SIZE times a model."""


def _chunks(targets: Sequence[Target], workers: int) -> list[range]:
    """Index ranges of the targets run as one group each: in one process, GROUP_SIZE at a time;
    handed to workers, a few at a time, so that every worker still gets several chunks. In
    place, a chunk also ends before its models' files pass GROUP_BYTES."""
    count = len(targets)
    size = GROUP_SIZE if workers <= 1 else max(1, min(GROUP_SIZE, count // (workers * 8)))
    chunks = [range(start, min(start + size, count)) for start in range(0, count, size)]
    if all(target.output is not None for target in targets):
        return chunks
    return [part for chunk in chunks for part in _split_by_size(chunk, targets)]


def _split_by_size(chunk: range, targets: Sequence[Target]) -> list[range]:
    parts: list[range] = []
    start, total = chunk.start, 0
    for index in chunk:
        size = _model_file_size(targets[index].model)
        if index > start and total + size > GROUP_BYTES:
            parts.append(range(start, index))
            start, total = index, 0
        total += size
    parts.append(range(start, chunk.stop))
    return parts


def _model_file_size(model: str) -> int:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        with contextlib.suppress(OSError):
            return os.stat(os.path.join(model, name)).st_size
    return 0  # its load will say why


def default_jobs() -> int:
    """One worker more than the CPUs this process may use (the parent publishes the copies
    meanwhile). 1,000 small models on 2 CPUs, when each worker still waited on its own syncfs:
    2.9-4.0 s with 2 workers, 2.4-3.8 s with 3, 2.6-3.7 s with 4; since the parent does it,
    2 and 3 workers are alike (2.6-3.6 s; the machine's own drift was larger)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cpus + 1


def apply_plan(
    plan: Plan,
    targets: Sequence[Target],
    *,
    force: bool = False,
    jobs: int | None = None,
    on_result: Callable[[EditResult], None] | None = None,
    dry_run: bool = False,
    sync: bool = True,
) -> list[EditResult]:
    """Apply `plan` to every target in up to `jobs` worker processes (default: `default_jobs()`).

    Returns one result per target, in the targets' order; `on_result` is called as each one
    finishes. With one job (or one target) the work runs in this process. With `dry_run`,
    nothing is written: each result carries the changes the plan would make.
    `sync=False` writes without fsync (`surgery.save`).

    Interrupted (KeyboardInterrupt, or the command line's SIGTERM), it starts no other model,
    removes what it staged and did not publish (a worker in the middle of its models is stopped
    and removes its own), and raises the interrupt once its workers have ended: every model is
    then as it was or completely edited, and `on_result` was called for each of the latter.
    """
    workers = min(jobs or default_jobs(), len(targets))
    report = on_result or (lambda result: None)
    if workers <= 1:
        results: list[EditResult] = []

        def keep(result: EditResult) -> None:
            results.append(result)
            report(result)

        for chunk in _chunks(targets, 1):
            chosen = [targets[i] for i in chunk]
            _run_here(plan, chosen, keep, force=force, dry_run=dry_run, sync=sync)
        return results
    done: dict[int, EditResult] = {}
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait  # only with workers

    in_place = not dry_run and any(target.output is None for target in targets)
    channel = LockChannel() if in_place else None
    start = (os.getpid(), plan, force, dry_run, sync, channel)
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=start)
    futures: dict[Future[Done], range] = {}
    handled: set[Future[Done]] = set()
    try:
        # The workers start with these signals blocked: until their own handlers are in place,
        # a Ctrl-C would reach them with this process's.
        blocked = _set_mask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            for chunk in _chunks(targets, workers):
                futures[pool.submit(_run_chunk, [targets[i] for i in chunk])] = chunk
        finally:
            _set_mask(signal.SIG_SETMASK, blocked)
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            with deferred():  # published and reported together, or neither
                handled.update(finished)
                for index, result in _commit_chunks(targets, [(futures[f], f) for f in finished], channel):
                    done[index] = result
                    report(result)
    except BaseException:
        _stop(pool, futures, handled, targets, channel)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if channel is not None:
            channel.close()
    return [done[index] for index in range(len(targets))]


def _run_here(
    plan: Plan,
    targets: Sequence[Target],
    report: Callable[[EditResult], None],
    *,
    force: bool,
    dry_run: bool,
    sync: bool,
) -> None:
    """`run_group`, each result reported: the group's writes are published and their results
    reported as one step, which an interrupt does not cut."""
    if dry_run:
        for target in targets:
            report(run(_job(plan, target, force=force, dry_run=True, sync=sync)))
        return
    group = CommitGroup()
    try:
        results = [run(_job(plan, t, force=force, dry_run=False, sync=sync), group=group) for t in targets]
    except BaseException:
        group.discard()
        raise
    with deferred():
        group.commit()
        for result in _settled(results, group.failures):
            report(result)


def _stop(
    pool: ProcessPoolExecutor,
    futures: dict[Future[Done], range],
    handled: set[Future[Done]],
    targets: Sequence[Target],
    channel: LockChannel | None,
) -> None:
    """After an interrupt: cancel the chunks not started, stop the workers in the middle of
    theirs, wait for them, and remove whatever was staged and not published."""
    for future in futures:
        future.cancel()
    for pid in list((getattr(pool, "_processes", None) or {}).keys()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    pool.shutdown(wait=True, cancel_futures=True)
    started = [f for f in futures if f not in handled and not f.cancelled()]
    group = CommitGroup()
    for future in started:
        with contextlib.suppress(Exception):
            group.adopt(future.result()[1], channel)
    group.discard()
    if channel is not None:
        channel.close()
    for future in started:
        for index in futures[future]:
            target = targets[index]
            with contextlib.suppress(Exception):
                if target.output is None:
                    recover(target.model)
                else:
                    clean_stale_outputs(Path(target.output))


def _commit_chunks(
    targets: Sequence[Target], finished: list[tuple[range, Future[Done]]], channel: LockChannel | None
) -> list[tuple[int, EditResult]]:
    """The results of the chunks workers finished, their copies published first: all made durable
    together (one flush for every chunk that finished since the last), while the workers go on."""
    group = CommitGroup()
    chunks: list[tuple[range, list[EditResult]]] = []
    try:
        for chunk, future in finished:
            try:
                results, staged = future.result()
            except Exception as err:  # a worker process died (killed, out of memory) or was stopped
                error = f"worker failed: {err}"
                results = [
                    EditResult(model=targets[i].model, output=None, ok=False, error=error) for i in chunk
                ]
                staged = []
            group.adopt(staged, channel)
            chunks.append((chunk, results))
    except BaseException:
        group.discard()
        raise
    group.commit()
    return [
        pair
        for chunk, results in chunks
        for pair in zip(chunk, _settled(results, group.failures), strict=True)
    ]
