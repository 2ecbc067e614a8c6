"""The fuzzing harness: hostile SavedModels and plans, and every command run over them.

Shared by the short property tests (tests/test_fuzz.py, part of `make test`), the corpus of
inputs that once broke the tool (tests/fuzz_corpus/, replayed by the same tests) and the long
coverage-guided runs of `make fuzz` (tests/fuzz_atheris.py).

`exercise` writes one input as a model's `saved_model.pb` (or `.pbtxt`) and runs every command of
the command line over it in this process, each under a time limit. The oracle: every command
ends with a result (exit 0, or 1 for check and diff) or a one-line `savedmodel-surgery: error:`
(exit 2) that is not an internal error; never a traceback, a hang, or a changed input; a failed
edit leaves no output and no temporary files behind.

The mutators work on the protobuf wire format, guided by the schema: truncations, random bytes,
length prefixes that claim gigabytes, duplicated fields (duplicate map keys), unknown enum values,
odd Unicode in strings (signature keys, tensor names), messages of the wrong type, deep nesting,
out-of-range and cyclic object-graph references, huge repeated fields.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from surgery.cli import main
from surgery.model import parse
from surgery.schema import SavedModel, to_text
from surgery.wire import LENGTH, VARINT, WireError, iter_fields, read_varint

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
CORPUS = ROOT / "tests" / "fuzz_corpus"
PREFIX = "savedmodel-surgery: "
MAX_SIZE = 4 << 20  # mutants stay below 4 MB: big enough for huge repeated fields, quick to run
# Seconds per command: far above what any input of MAX_SIZE takes (about 1 s); more under atheris,
# whose instrumentation slows Python code down tens of times.
TIME_LIMIT = float(os.environ.get("FUZZ_TIME_LIMIT", "20"))

FIXTURE_NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "saved_model.pb").is_file())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name / "saved_model.pb").read_bytes()


class FuzzFailure(AssertionError):
    """A command broke the contract on a fuzzed input; `command` names it."""

    def __init__(self, message: str, command: str = "in-place") -> None:
        super().__init__(message)
        self.command = command


class Hang(BaseException):
    """Raised by the alarm in a command that ran past TIME_LIMIT (BaseException: main() lets it out)."""


# --- running the command line in this process ----------------------------------------------------


@dataclass
class Outcome:
    argv: list[str]
    status: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run(argv: list[str], *, limit: float = TIME_LIMIT) -> Outcome:
    """`savedmodel-surgery ARGV` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _time_limit(limit):
            status = main(argv)
    except Hang as hang:
        return Outcome(argv, -1, out.getvalue(), f"a hang: {hang}")
    return Outcome(argv, status, out.getvalue(), err.getvalue())


def check_outcome(outcome: Outcome, *, allowed: tuple[int, ...] = (0, 2)) -> None:
    """The contract for one command: a result, or one `error:` line with exit 2; never a crash."""
    problem = None
    lines = outcome.stderr.splitlines()
    errors = [line for line in lines if not line.startswith(PREFIX + "warning: ")]
    if outcome.status not in allowed:
        problem = f"exit status {outcome.status}"
    elif "Traceback" in outcome.stderr:
        problem = "a traceback"
    elif "internal error" in outcome.stderr:
        problem = "an internal error"
    elif outcome.status == 2 and (len(errors) != 1 or not errors[0].startswith(PREFIX + "error: ")):
        problem = "not one error line"
    elif outcome.status == 2 and outcome.stdout:
        problem = "output on stdout with an error"
    elif outcome.status != 2 and [e for e in errors if not e.startswith((PREFIX, "wrote ", "no change: "))]:
        problem = "stray lines on stderr"
    if problem is not None:
        raise FuzzFailure(
            f"{' '.join(outcome.argv)}: {problem}: {outcome.stderr.strip()[-2000:]}", outcome.argv[0]
        )


# --- one input through every command -------------------------------------------------------------


@dataclass
class Names:
    """Names taken from the input itself, so that edits get past 'no such signature'."""

    signature: str = "serving_default"
    input: str = "x"
    output: str = "y"
    tensor: str = "x:0"
    tags: str = "serve"
    new: str = "renamed"


def names_of(data: bytes, fmt: str, new: str = "renamed") -> Names:
    names = Names(new=new)
    try:
        proto = parse(data, "pb" if fmt == "pb" else "pbtxt")
    except Exception:
        return names
    for meta in proto.meta_graphs:
        keys = sorted(k for k in meta.signature_def if not k.startswith("__saved_model"))
        if keys:
            sig = meta.signature_def[keys[0]]
            names.signature = keys[0]
            names.tags = ",".join(meta.meta_info_def.tags)
            names.input = min(sig.inputs, default=names.input)
            names.output = min(sig.outputs, default=names.output)
            if names.input in sig.inputs and sig.inputs[names.input].name:
                names.tensor = sig.inputs[names.input].name
            break
    return names


def _plan(n: Names) -> str:
    ops = [
        {"op": "rename-signature", "regex": "^(.+)$", "new": "v2_\\1"},
        {"op": "rename-output", "signature": "v2_" + n.signature, "old": n.output, "new": n.new},
        {"op": "set-method", "signature": "v2_" + n.signature, "method": "tensorflow/serving/regress"},
    ]
    return json.dumps({"operations": ops})


def edit_commands(n: Names) -> list[list[str]]:
    """Every edit command, each with names that fit the model (without the output option)."""
    s = n.signature
    return [
        ["rename-signature", s, n.new],
        ["rename-input", s, n.input, n.new],
        ["rename-output", s, n.output, n.new],
        ["remove-signature", s],
        ["copy-signature", s, n.new],
        ["set-method", s, "tensorflow/serving/regress"],
        ["set-tags", n.tags, "serve,tpu"],
        ["set-shape", s, n.input, "-1"],
        ["set-shape", s, n.output, "*", "--output-key"],
        ["set-dtype", s, n.input, "float16"],
        ["set-dtype", s, n.output, "float64", "--output-key"],
        ["rename-tensor", n.tensor, n.new + ":0"],
    ]


@dataclass
class Report:
    """What one input did: how many commands ran, and their exit statuses."""

    commands: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))
    }


def exercise(
    data: bytes,
    workdir: Path,
    *,
    fmt: str = "pb",
    new: str = "renamed",
    edits: bool = True,
    plan: str | None = None,
    only: str | None = None,
) -> Report:
    """Run every command over `data` as a model file; raises FuzzFailure when one breaks the contract.

    `only` limits the run to the commands of that name (to shrink a failing input quickly).
    """
    report = Report()
    model = workdir / "model"
    if workdir.exists():
        shutil.rmtree(workdir)
    model.mkdir(parents=True)
    (model / f"saved_model.{fmt}").write_bytes(data)
    names = names_of(data, fmt, new)
    before = _snapshot(model)
    reference = str(FIXTURES / "module_multi")

    def one(argv: list[str], allowed: tuple[int, ...] = (0, 2), out: Path | None = None) -> Outcome:
        if only is not None and argv[0] != only:
            return Outcome(argv, 2, "", "")
        outcome = run(argv)
        check_outcome(outcome, allowed=allowed)
        report.commands += 1
        report.statuses[argv[0]] = outcome.status
        if _snapshot(model) != before:
            raise FuzzFailure(f"{' '.join(argv)}: the input changed", argv[0])
        if out is not None and outcome.status != 0 and out.exists():
            raise FuzzFailure(f"{' '.join(argv)}: failed, yet {out} was written", argv[0])
        leftovers = [p.name for p in workdir.iterdir() if "surgery-" in p.name]
        leftovers += [p.name for p in model.iterdir() if "surgery-" in p.name]
        if leftovers:
            raise FuzzFailure(f"{' '.join(argv)}: left {leftovers} behind", argv[0])
        return outcome

    shown = one(["show", str(model), "--json"])
    if shown.status == 0:
        try:
            json.loads(shown.stdout)
        except ValueError as err:
            raise FuzzFailure(f"show --json printed invalid JSON: {err}", "show") from None
    one(["show", str(model)])
    one(["check", str(model)], (0, 1, 2))
    one(["check", str(model), "--json"], (0, 1, 2))
    one(["diff", str(model), reference], (0, 1, 2))
    one(["diff", reference, str(model)], (0, 1, 2))
    if not edits:
        return report
    for i, command in enumerate(edit_commands(names)):
        out = workdir / f"out{i}"
        done = one([command[0], str(model), *command[1:], "-o", str(out)], out=out)
        if done.status == 0:
            written = run(["show", str(out), "--json"])
            check_outcome(written, allowed=(0,))
            shutil.rmtree(out)
    plan_file = workdir / "plan.json"
    plan_file.write_text(plan if plan is not None else _plan(names))
    out = workdir / "planned"
    if one(["apply", str(model), str(plan_file), "-o", str(out)], out=out).status == 0:
        shutil.rmtree(out)
    if only not in (None, "in-place"):
        return report
    # In place, on a copy: the copy is either the complete edit or untouched.
    copy = workdir / "copy"
    shutil.copytree(model, copy)
    outcome = run(["rename-signature", str(copy), names.signature, names.new, "--in-place"])
    check_outcome(outcome)
    if outcome.status == 0:
        check_outcome(run(["show", str(copy)]), allowed=(0,))
    elif _snapshot(copy) != before:
        raise FuzzFailure("a failed --in-place edit changed the model")
    report.commands += 1
    shutil.rmtree(copy)
    return report


def exercise_plan(text: str, workdir: Path, *, suffix: str = ".yaml") -> Outcome:
    """Apply a hostile plan file to a copy of a fixture: a result or one error line, nothing else."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    model = shutil.copytree(FIXTURES / "module_multi", workdir / "model")
    plan = workdir / f"plan{suffix}"
    plan.write_bytes(text.encode("utf-8", "surrogatepass"))
    out = workdir / "out"
    outcome = run(["apply", str(model), str(plan), "-o", str(out)])
    check_outcome(outcome)
    if outcome.status != 0 and out.exists():
        raise FuzzFailure("a failed plan wrote its output")
    return outcome


# --- the wire-format mutators --------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One field of a serialized message; positions are absolute, `chain` lists its ancestors."""

    start: int
    tag_end: int
    value_start: int
    end: int
    number: int
    wire_type: int
    field: FieldDescriptor | None
    chain: tuple[Span, ...]


def varint(value: int) -> bytes:
    """The wire encoding of `value` (negative numbers as their 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def spans(data: bytes, descriptor: Descriptor, *, limit: int = 50_000) -> list[Span]:
    """Every field of `data` at every depth the schema describes (up to `limit` fields)."""
    found: list[Span] = []

    def walk(start: int, end: int, desc: Descriptor, chain: tuple[Span, ...]) -> None:
        try:
            for number, wire_type, field_start, value_start, value_end in iter_fields(data, start, end):
                if len(found) >= limit:
                    return
                _, tag_end = read_varint(data, field_start, value_start)
                fd = desc.fields_by_number.get(number)
                span = Span(field_start, tag_end, value_start, value_end, number, wire_type, fd, chain)
                found.append(span)
                deep_enough = len(chain) >= 200  # past protobuf's limit (100): no need to look further
                if (
                    wire_type == LENGTH
                    and fd is not None
                    and fd.type == FieldDescriptor.TYPE_MESSAGE
                    and not deep_enough
                ):
                    assert fd.message_type is not None
                    walk(value_start, value_end, fd.message_type, (*chain, span))
        except WireError:
            return

    walk(0, len(data), descriptor, ())
    return found


def replace(data: bytes, span_chain: tuple[Span, ...], start: int, end: int, new: bytes) -> bytes:
    """Replace data[start:end] by `new`, re-encoding the length prefix of every enclosing field."""
    for ancestor in reversed(span_chain):
        inner = data[ancestor.value_start : ancestor.end]
        inner = inner[: start - ancestor.value_start] + new + inner[end - ancestor.value_start :]
        new = data[ancestor.start : ancestor.tag_end] + varint(len(inner)) + inner
        start, end = ancestor.start, ancestor.end
    return data[:start] + new + data[end:]


ODD_STRINGS = [
    "",
    "é",
    "键",
    "signature\nkey",
    "a\x00b",
    "../../etc/passwd",
    "/abs/path",
    "x:0:1",
    "^x",
    "node:-1",
    "\u202etxt.exe",
    "😀" * 3,
    " ",
    "a" * 5000,
    "__saved_model_init_op",
    "Ω:99999999999999999999",
]
VARINTS = [0, 1, 2, 3, 7, 100, 999, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1]


class Mutator:
    """Schema-aware and byte-level mutations of a serialized SavedModel, driven by one Random."""

    def __init__(
        self, rng: random.Random, donors: list[bytes] | None = None, max_size: int = MAX_SIZE
    ) -> None:
        self.rng = rng
        self.max_size = max_size
        self.donors = donors if donors is not None else [fixture_bytes(n) for n in FIXTURE_NAMES]
        self.kinds: dict[str, Callable[[bytes], bytes | None]] = {
            "truncate": self.truncate,
            "flip": self.flip,
            "random_bytes": self.random_bytes,
            "huge_length": self.huge_length,
            "duplicate_field": self.duplicate_field,
            "delete_field": self.delete_field,
            "varint_value": self.varint_value,
            "string_value": self.string_value,
            "wrong_message": self.wrong_message,
            "repeat_field": self.repeat_field,
            "deep_nest": self.deep_nest,
            "object_reference": self.object_reference,
            "splice_donor": self.splice_donor,
        }

    def mutate(self, data: bytes, kind: str | None = None) -> tuple[str, bytes]:
        """One mutation (of `kind`, or a random one that applies); returns (kind, new bytes)."""
        for _ in range(10):
            chosen = kind or self.rng.choice(sorted(self.kinds))
            result = self.kinds[chosen](data)
            if result is not None and len(result) <= self.max_size:
                return chosen, result
        return "truncate", self.truncate(data) or b""

    def _spans(self, data: bytes, keep: Callable[[Span], bool] = lambda s: True) -> list[Span]:
        return [s for s in spans(data, SavedModel.DESCRIPTOR) if keep(s)]

    def _pick(self, data: bytes, keep: Callable[[Span], bool] = lambda s: True) -> Span | None:
        found = self._spans(data, keep)
        return self.rng.choice(found) if found else None

    def truncate(self, data: bytes) -> bytes | None:
        return data[: self.rng.randrange(len(data))] if data else None

    def flip(self, data: bytes) -> bytes | None:
        if not data:
            return None
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, 8)):
            buf[self.rng.randrange(len(buf))] ^= 1 << self.rng.randrange(8)
        return bytes(buf)

    def random_bytes(self, data: bytes) -> bytes | None:
        return self.rng.randbytes(self.rng.choice([1, 10, 100, 5000]))

    def huge_length(self, data: bytes) -> bytes | None:
        span = self._pick(data, lambda s: s.wire_type == LENGTH)
        if span is None:
            return None
        claim = self.rng.choice(
            [2**31 - 1, 2**31, 2**32 + 5, 2**62, 2**64 - 1, span.end - span.value_start + 1]
        )
        return data[: span.tag_end] + varint(claim) + data[span.value_start :]

    def duplicate_field(self, data: bytes) -> bytes | None:
        span = self._pick(data)
        if span is None:
            return None
        copy = data[span.start : span.end]
        return replace(data, span.chain, span.start, span.end, copy + copy)

    def delete_field(self, data: bytes) -> bytes | None:
        span = self._pick(data)
        return None if span is None else replace(data, span.chain, span.start, span.end, b"")

    def varint_value(self, data: bytes) -> bytes | None:
        span = self._pick(data, lambda s: s.wire_type == VARINT)
        if span is None:
            return None
        value = self.rng.choice([*VARINTS, self.rng.getrandbits(64)])
        return replace(data, span.chain, span.value_start, span.end, varint(value))

    def string_value(self, data: bytes) -> bytes | None:
        strings = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)
        span = self._pick(
            data, lambda s: s.wire_type == LENGTH and s.field is not None and s.field.type in strings
        )
        if span is None:
            return None
        text = self.rng.choice(ODD_STRINGS).encode()
        if self.rng.random() < 0.1:
            text = b"\xff\xfe" + text  # not UTF-8: the parser must refuse a string field
        body = varint(len(text)) + text
        return replace(data, span.chain, span.tag_end, span.end, body)

    def wrong_message(self, data: bytes) -> bytes | None:
        found = self._spans(data, lambda s: s.wire_type == LENGTH)
        if len(found) < 2:
            return None
        target, donor = self.rng.sample(found, 2)
        value = data[donor.value_start : donor.end]
        return replace(data, target.chain, target.tag_end, target.end, varint(len(value)) + value)

    def repeat_field(self, data: bytes) -> bytes | None:
        span = self._pick(data)
        if span is None:
            return None
        copy = data[span.start : span.end]
        times = min(self.rng.choice([10, 1000, 100_000]), (self.max_size - len(data)) // max(len(copy), 1))
        return replace(data, span.chain, span.start, span.end, copy * max(times, 2))

    def deep_nest(self, data: bytes) -> bytes | None:
        """Wrap a StructuredValue (or AttrValue list) in many levels of lists."""
        span = self._pick(
            data,
            lambda s: (
                s.wire_type == LENGTH
                and s.field is not None
                and s.field.message_type is not None
                and s.field.message_type.name == "StructuredValue"
            ),
        )
        if span is None:
            return None
        inner = data[span.value_start : span.end]
        for _ in range(self.rng.choice([20, 60, 95, 99, 101, 150, 400])):
            values = b"\x0a" + varint(len(inner)) + inner  # ListValue.values (1)
            inner = b"\x9a\x03" + varint(len(values)) + values  # StructuredValue.list_value (51)
        return replace(data, span.chain, span.tag_end, span.end, varint(len(inner)) + inner)

    def object_reference(self, data: bytes) -> bytes | None:
        """Point an object-graph reference at itself, its parent, the root, or far past the end."""
        refs = ("node_id", "bound_inputs", "concrete_functions")
        span = self._pick(
            data, lambda s: s.wire_type == VARINT and s.field is not None and s.field.name in refs
        )
        if span is None:
            return None
        value = self.rng.choice([0, 1, 2, 3, -1, 2**31 - 1, 10**6, self.rng.randrange(64)])
        return replace(data, span.chain, span.value_start, span.end, varint(value))

    def splice_donor(self, data: bytes) -> bytes | None:
        donor = self.rng.choice(self.donors)
        target = self._pick(data)
        pieces = self._spans(donor)
        if target is None or not pieces:
            return None
        piece = self.rng.choice(pieces)
        return replace(data, target.chain, target.start, target.start, donor[piece.start : piece.end])


def failure_kind(failure: FuzzFailure) -> str:
    """What a failure is, without the paths and values that differ between inputs (for deduplication)."""
    text = str(failure)
    problem = text.split(": ", 2)[1] if text.count(": ") >= 2 else text
    tail = re.sub(r"'[^']*'|\"[^\"]*\"|[0-9]+|/\S+", "_", text.rsplit(": ", 1)[-1])[:120]
    return f"{failure.command}: {problem}: {tail}"


def minimize(
    data: bytes, fails: Callable[[bytes], bool], *, budget: int = 3000, seconds: float = 120
) -> bytes:
    """Greedy, schema-aware shrinking: drop fields at any depth, largest first, while `fails(data)` holds.

    Stops after `budget` tries or `seconds`, with the smallest failing input found so far.
    """
    best = data
    tries = 0
    progress = True
    deadline = time.monotonic() + seconds
    while progress and tries < budget and time.monotonic() < deadline:
        progress = False
        for span in sorted(spans(best, SavedModel.DESCRIPTOR), key=lambda s: s.start - s.end):
            tries += 1
            candidate = replace(best, span.chain, span.start, span.end, b"")
            if fails(candidate):
                best, progress = candidate, True
                break  # the spans changed: walk the smaller input again
            if tries >= budget or time.monotonic() > deadline:
                break
    return best


def shrink_failure(data: bytes, failure: FuzzFailure, workdir: Path, *, fmt: str = "pb") -> bytes:
    """A smaller input that fails in the same way (same command, same kind of failure)."""
    kind = failure_kind(failure)

    def fails(candidate: bytes) -> bool:
        try:
            exercise(candidate, workdir, fmt=fmt, only=failure.command)
        except FuzzFailure as again:
            return failure_kind(again) == kind
        return False

    return minimize(data, fails) if fmt == "pb" else data


def mutate_text(rng: random.Random, text: str) -> str:
    """Mutations of a text-format model: cuts, deep nesting, odd tokens, huge numbers."""
    kind = rng.randrange(6)
    if kind == 0:
        return text[: rng.randrange(len(text) + 1)]
    if kind == 1:
        depth = rng.choice([50, 200, 1000, 5000])
        return "meta_graphs { " * depth + "}" * depth + text
    if kind == 2:
        pos = rng.randrange(len(text) + 1)
        token = rng.choice(["{", "}", '"', "\\", ":", "999999999999999999999999", "-", "\x00", "é", "[", "<"])
        return text[:pos] + token + text[pos:]
    if kind == 3:
        return text.replace("DT_FLOAT", rng.choice(["DT_NOPE", "99", "-1", "DT_FLOAT_REF"]), 1)
    if kind == 4:
        return text.replace("size: -1", f"size: {rng.choice(['9223372036854775808', '-2', '1e9'])}", 1)
    pos = rng.randrange(len(text) + 1)
    return text[:pos] + rng.choice(ODD_STRINGS) + text[pos:]


HOSTILE_PLANS = [
    "",
    "[]",
    "operations: 5",
    "operations:\n  - op: rename-signature\n    old: a\n    new: b\n    extra: 1\n",
    "operations: [{op: rename-signature, old: masked, new: !!python/object/apply:os.system ['true']}]",
    "!!python/object/apply:os.system ['touch pwned']",
    "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: &e [*d, *d]\nf: &f [*e, *e]\n"
    "g: &g [*f, *f]\nh: &h [*g, *g]\ni: &i [*h, *h]\noperations: [*i, *i, *i]\n",
    "operations: [" * 2000 + "]" * 2000,
    "operations:\n  - {op: set-shape, signature: fixed, key: row, shape: [99999999999999999999999]}\n",
    "operations:\n  - {op: rename-signature, regex: '(', new: x}\n",
    "operations:\n  - {op: rename-signature, regex: '^(.+)$', new: '\\\\9'}\n",
    "operations:\n  - {op: set-dtype, signature: fixed, key: row, dtype: {a: b}}\n",
    "\x00\x01\x02",
    "\udcff",
    "key: [unclosed",
    "operations:\n\t- bad indent",
    "- - - - -",
]


def text_model(name: str) -> str:
    return to_text(SavedModel.FromString(fixture_bytes(name)))


def corpus_entries() -> list[Path]:
    """The saved inputs that once broke the tool: `NAME.pb`, `NAME.pbtxt` or `NAME.plan.yaml`."""
    return (
        sorted(p for p in CORPUS.iterdir() if p.is_file() and p.name != "README.md")
        if CORPUS.exists()
        else []
    )


def replay(entry: Path, workdir: Path) -> Any:
    """Run one corpus entry through the harness (raises FuzzFailure if it still breaks the tool)."""
    if entry.name.endswith((".plan.yaml", ".plan.json")):
        return exercise_plan(entry.read_text(errors="surrogateescape"), workdir, suffix=entry.suffix)
    fmt = "pbtxt" if entry.suffix == ".pbtxt" else "pb"
    return exercise(entry.read_bytes(), workdir, fmt=fmt)


if __name__ == "__main__":  # a quick look at one input: python tests/fuzzing.py FILE
    print(replay(Path(sys.argv[1]), Path("/tmp/surgery-fuzz-replay")))
