"""Coverage-guided fuzzing with atheris (libFuzzer for Python), run by `make fuzz`.

Inputs are `saved_model.pb` files. The seeds are the fixtures and the regression corpus
(tests/fuzz_corpus/); the mutator mixes libFuzzer's byte-level mutations with the schema-aware
ones of tests/fuzzing.py (huge length prefixes, duplicate map keys, unknown enums, odd Unicode,
deep nesting, object-graph references, huge repeated fields). Every input goes through every
command (`fuzzing.exercise`), with coverage of the `surgery` package guiding the search.

A failure is shrunk and saved to tests/fuzz_corpus/ (the test-suite replays every file there),
and the run goes on. The run stops after -runs inputs or -max_total_time seconds and prints how
many inputs it ran and what failed; the exit status is 1 when something did.

    python tests/fuzz_atheris.py -runs=20000 -max_total_time=600
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

os.environ.setdefault("FUZZ_TIME_LIMIT", "300")  # instrumented code runs tens of times slower
with atheris.instrument_imports(include=["surgery"]):
    import fuzzing

MAX_LEN = 256 << 10  # big inputs are for the uninstrumented properties of test_fuzz.py
SHM = Path("/dev/shm")
WORK = Path(tempfile.mkdtemp(prefix="surgery-fuzz-", dir=SHM if SHM.is_dir() else None))
ARTIFACTS = Path(tempfile.gettempdir()) / "surgery-fuzz-artifacts"
DONORS = [fuzzing.fixture_bytes(name) for name in fuzzing.FIXTURE_NAMES]
STATS = {"executions": 0, "failures": 0}
KINDS: dict[str, Path] = {}
_AT_EXIT: list[object] = []  # keeps the C callback alive


def test_one_input(data: bytes) -> None:
    STATS["executions"] += 1
    try:
        fuzzing.exercise(data, WORK / "run")
    except fuzzing.FuzzFailure as failure:
        STATS["failures"] += 1
        kind = fuzzing.failure_kind(failure)
        if kind in KINDS:
            return
        small = fuzzing.shrink_failure(data, failure, WORK / "shrink")
        name = f"{failure.command}-{hashlib.sha256(small).hexdigest()[:10]}.pb"
        fuzzing.CORPUS.mkdir(exist_ok=True)
        (fuzzing.CORPUS / name).write_bytes(small)
        KINDS[kind] = fuzzing.CORPUS / name
        report = f"\nFAILURE {kind}\n  saved {len(small)} bytes to {KINDS[kind]}\n  {failure}"
        print(report[:2000], flush=True)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.3:
        return bytes(atheris.Mutate(data, max_size))
    mutated = data
    for _ in range(rng.choice([1, 1, 2, 3])):
        _, mutated = fuzzing.Mutator(rng, DONORS, max_size=MAX_LEN).mutate(mutated)
    return mutated[:max_size]


def _summary() -> None:
    print(
        f"\nfuzz_atheris: {STATS['executions']} inputs, {STATS['failures']} failing, "
        f"{len(KINDS)} distinct failure(s)" + "".join(f"\n  {k} -> {p}" for k, p in KINDS.items()),
        flush=True,
    )
    shutil.rmtree(WORK, ignore_errors=True)
    if KINDS:
        os._exit(1)


def main() -> None:
    seeds = WORK / "seeds"
    seeds.mkdir()
    for name in fuzzing.FIXTURE_NAMES:
        shutil.copy(fuzzing.FIXTURES / name / "saved_model.pb", seeds / f"{name}.pb")
    for entry in fuzzing.corpus_entries():
        if entry.suffix == ".pb":
            shutil.copy(entry, seeds / entry.name)
    # libFuzzer ends the process with C's exit(), which skips Python's atexit: register with libc's.
    _AT_EXIT.append(ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: _summary()))
    ctypes.CDLL(None).__cxa_atexit(_AT_EXIT[0], None, None)
    ARTIFACTS.mkdir(exist_ok=True)  # what libFuzzer itself keeps (inputs that crash the harness)
    argv = [
        sys.argv[0],
        f"-max_len={MAX_LEN}",
        "-timeout=900",  # per input, instrumented: above the harness's own limit per command
        "-report_slow_units=600",
        "-rss_limit_mb=4096",
        f"-artifact_prefix={ARTIFACTS}/",
        *sys.argv[1:],
    ]
    atheris.Setup([*argv, str(seeds)], test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
