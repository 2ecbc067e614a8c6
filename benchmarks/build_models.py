"""Build the large SavedModels the benchmark edits, into a cache directory (skipped when already valid).

    .venv/bin/python benchmarks/build_models.py [--size-mb 1024] [--cache benchmarks/.models]

Route A (the default when `.venv-tf/` exists): TensorFlow saves a tf.Module holding one constant of
SIZE_MB MiB (`benchmarks/tf_build.py`), in two variants: `captured` (a captured eager tensor, which
TensorFlow stores as a `Const` node of `graph_def.node`) and `function` (`tf.constant` inside a
`tf.function` body, a `Const` in a `FunctionDef` of `graph_def.library`).

Route B (`--route protobuf`, or no `.venv-tf/`): no TensorFlow; the bundled fixture `module_multi`
inflated with protobuf by one unreferenced `Const` node of SIZE_MB MiB added to `graph_def.node`
(its `fingerprint.pb` is dropped, as it would be stale). Labelled `pb-inflated` everywhere.

Each model `NAME/` has a manifest `NAME.json` beside it (written last), with the edit parameters the
benchmark uses, where the constant was found in the file, and the build's wall time and peak RSS.
A model is valid when its manifest has this builder's version and its `saved_model.pb` the size the
manifest records.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_CACHE = BENCH_DIR / ".models"
TF_PYTHON = ROOT / ".venv-tf" / "bin" / "python"
FIXTURE = ROOT / "tests" / "fixtures" / "models" / "module_multi"
BUILD_VERSION = 1
SEED = 0
# TensorFlow's peak RSS while saving, per MiB of constant (measured with TF 2.21 at 1 GiB: 8.7 GiB for
# `captured`, 19.4 GiB for `function`, which copies the constant through every FunctionDef conversion).
TF_RSS_PER_MIB = {"captured": 9.0, "function": 20.0}

# What the benchmark edits in each kind of model (all TF-made variants share the interface).
TF_PARAMS: dict[str, str] = {
    "signature": "serving_default",
    "signature_new": "predict",
    "method": "tensorflow/serving/regress",
    "input_old": "a_dense",  # a_dense, b_dense, c_index -> b_dense, c_index, z_dense: a reorder
    "input_new": "z_dense",
    "output_old": "alpha",  # alpha, beta -> beta, zeta
    "output_new": "zeta",
    "shape_key": "a_dense",
    "shape": "8,4",
    "dtype_key": "a_dense",
    "dtype": "float16",
}
PB_PARAMS: dict[str, str] = {
    "signature": "masked",
    "signature_new": "predict",
    "method": "tensorflow/serving/regress",
    "input_old": "a_dense",
    "input_new": "z_dense",
    "output_old": "alpha",
    "output_new": "zeta",
    "shape_key": "a_dense",
    "shape": "8,3",
    "dtype_key": "a_dense",
    "dtype": "float16",
}


@dataclass
class BuiltModel:
    """One cached model and its manifest."""

    name: str
    path: str
    route: str
    placement: str
    size_mb: int
    pb_bytes: int
    params: dict[str, str]
    located: str = ""
    build_wall_s: float = 0.0
    build_peak_rss_mb: float = 0.0
    version: int = BUILD_VERSION
    extra: dict[str, Any] = field(default_factory=dict)


def manifest_path(cache: Path, name: str) -> Path:
    """Where the manifest of model `name` lives (beside, not inside, the model)."""
    return cache / f"{name}.json"


def load_valid(cache: Path, name: str) -> BuiltModel | None:
    """The cached model `name`, or None when it is absent, stale or incomplete."""
    try:
        data = json.loads(manifest_path(cache, name).read_text())
        model = BuiltModel(**data)
    except (OSError, ValueError, TypeError):
        return None
    pb = Path(model.path) / "saved_model.pb"
    if model.version != BUILD_VERSION or not pb.is_file() or pb.stat().st_size != model.pb_bytes:
        return None
    return model


def run_measured(argv: list[str]) -> tuple[float, float]:
    """Run argv to completion; its wall time (s) and peak RSS (MiB, from wait4). Raises on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"build failed (exit {proc.returncode}): {' '.join(argv)}")
    return wall, usage.ru_maxrss / 1024


# --- where is the constant? A wire-level walk that never copies the big field -----------------------


def _varint(buf: mmap.mmap | bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at pos; (value, next position)."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: mmap.mmap | bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(field number, value start, value end) of the length-delimited fields in buf[start:end]."""
    found: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            found.append((number, pos, pos + length))
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire} at {pos}")
    return found


def _string(buf: mmap.mmap | bytes, start: int, end: int, number: int) -> str:
    """The first string field `number` of the message buf[start:end]."""
    for num, s, e in _fields(buf, start, end):
        if num == number:
            return bytes(buf[s:e]).decode(errors="replace")
    return ""


def locate_largest_node(pb: Path) -> str:
    """Where the largest NodeDef of the first meta graph sits: graph_def.node or a FunctionDef."""
    best = (0, "")
    with open(pb, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        meta = next((s, e) for n, s, e in _fields(buf, 0, len(buf)) if n == 2)
        graph = next((s, e) for n, s, e in _fields(buf, *meta) if n == 2)
        for num, s, e in _fields(buf, *graph):
            if num == 1 and e - s > best[0]:  # GraphDef.node
                where = f"graph_def.node {_string(buf, s, e, 1)!r} (op {_string(buf, s, e, 2)})"
                best = (e - s, where)
            elif num == 2:  # GraphDef.library
                for fnum, fs, fe in _fields(buf, s, e):
                    if fnum != 1:
                        continue
                    parts = _fields(buf, fs, fe)
                    name = next((_string(buf, ps, pe, 1) for n, ps, pe in parts if n == 1), "")
                    for n, ns, ne in parts:
                        if n == 3 and ne - ns > best[0]:  # FunctionDef.node_def
                            node = f"{_string(buf, ns, ne, 1)!r} (op {_string(buf, ns, ne, 2)})"
                            best = (ne - ns, f"graph_def.library.function {name!r} node_def {node}")
    return f"{best[1]}, {best[0] / (1 << 20):.1f} MiB"


# --- the two routes ---------------------------------------------------------------------------------


def available_mib() -> float:
    """MemAvailable from /proc/meminfo (MiB), or infinity when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return float("inf")


def build_tf(cache: Path, size_mb: int, placement: str) -> BuiltModel:
    """Route A: TensorFlow saves the model (in .venv-tf), measured with wait4."""
    name = f"tf-{placement}-{size_mb}mb"
    need = TF_RSS_PER_MIB[placement] * size_mb + 1024
    if need > available_mib():
        raise SystemExit(
            f"build_models: saving {name} takes about {need / 1024:.0f} GiB of memory and only "
            f"{available_mib() / 1024:.0f} GiB is available: use a smaller --size-mb, "
            "--placement captured, or --route protobuf"
        )
    out = cache / name
    shutil.rmtree(out, ignore_errors=True)
    argv = [str(TF_PYTHON), str(BENCH_DIR / "tf_build.py"), str(out), f"--size-mb={size_mb}"]
    wall, rss = run_measured([*argv, f"--placement={placement}", f"--seed={SEED}"])
    pb = out / "saved_model.pb"
    return BuiltModel(
        name=name,
        path=str(out),
        route="tensorflow",
        placement=placement,
        size_mb=size_mb,
        pb_bytes=pb.stat().st_size,
        params=dict(TF_PARAMS),
        located=locate_largest_node(pb),
        build_wall_s=round(wall, 2),
        build_peak_rss_mb=round(rss, 1),
    )


def inflate_fixture(out: Path, size_mb: int) -> None:
    """Route B body: module_multi plus one unreferenced Const node of size_mb MiB (run in .venv)."""
    import numpy as np

    from surgery_proto.tensorflow.core.framework import types_pb2
    from surgery_proto.tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(FIXTURE, out)
    (out / "fingerprint.pb").unlink(missing_ok=True)  # stale after the edit; a missing one is legal
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((out / "saved_model.pb").read_bytes())
    node = proto.meta_graphs[0].graph_def.node.add()
    node.name = "bench_inflated_constant"
    node.op = "Const"
    count = size_mb * (1 << 20) // 4
    node.attr["dtype"].type = types_pb2.DT_FLOAT
    tensor = node.attr["value"].tensor
    tensor.dtype = types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add().size = count
    tensor.tensor_content = np.random.default_rng(SEED).random(count, dtype=np.float32).tobytes()
    (out / "saved_model.pb").write_bytes(proto.SerializeToString(deterministic=True))


def build_pb(cache: Path, size_mb: int) -> BuiltModel:
    """Route B: inflate the fixture in a child process of this interpreter, measured with wait4."""
    name = f"pb-inflated-{size_mb}mb"
    out = cache / name
    shutil.rmtree(out, ignore_errors=True)
    code = f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); import build_models as b; "
    code += f"b.inflate_fixture(b.Path({str(out)!r}), {size_mb})"
    wall, rss = run_measured([sys.executable, "-c", code])
    pb = out / "saved_model.pb"
    return BuiltModel(
        name=name,
        path=str(out),
        route="protobuf (no TensorFlow: inflated fixture)",
        placement="inflated",
        size_mb=size_mb,
        pb_bytes=pb.stat().st_size,
        params=dict(PB_PARAMS),
        located=locate_largest_node(pb),
        build_wall_s=round(wall, 2),
        build_peak_rss_mb=round(rss, 1),
    )


def default_route() -> str:
    """`tensorflow` when the TF venv exists, else `protobuf`."""
    return "tensorflow" if TF_PYTHON.exists() else "protobuf"


def ensure_models(
    size_mb: int,
    cache: Path = DEFAULT_CACHE,
    route: str = "auto",
    placements: tuple[str, ...] = ("captured", "function"),
    force: bool = False,
) -> list[BuiltModel]:
    """Build whatever is missing or stale; every requested model, valid."""
    cache.mkdir(parents=True, exist_ok=True)
    route = default_route() if route == "auto" else route
    wanted = (
        [f"tf-{p}-{size_mb}mb" for p in placements] if route == "tensorflow" else [f"pb-inflated-{size_mb}mb"]
    )
    models: list[BuiltModel] = []
    for name in wanted:
        cached = None if force else load_valid(cache, name)
        if cached is not None:
            print(f"build_models: {name} is cached ({cached.pb_bytes:,} bytes)", file=sys.stderr)
            models.append(cached)
            continue
        print(f"build_models: building {name} ...", file=sys.stderr)
        manifest_path(cache, name).unlink(missing_ok=True)
        if route == "tensorflow":
            built = build_tf(cache, size_mb, name.split("-")[1])
        else:
            built = build_pb(cache, size_mb)
        manifest_path(cache, name).write_text(json.dumps(asdict(built), indent=2) + "\n")
        print(
            f"build_models: {name}: {built.pb_bytes:,} bytes in {built.build_wall_s:.1f} s, "
            f"peak RSS {built.build_peak_rss_mb:.0f} MiB; constant at {built.located}",
            file=sys.stderr,
        )
        models.append(built)
    return models


def main(argv: list[str] | None = None) -> int:
    """Command line: build (or confirm) the cached models and print their manifests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the constant in MiB")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--route", choices=["auto", "tensorflow", "protobuf"], default="auto")
    parser.add_argument(
        "--placement",
        action="append",
        choices=["captured", "function"],
        help="TensorFlow variants to build (default: both)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    args = parser.parse_args(argv)
    placements = tuple(args.placement or ("captured", "function"))
    models = ensure_models(args.size_mb, args.cache, args.route, placements, args.force)
    print(json.dumps([asdict(m) for m in models], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
