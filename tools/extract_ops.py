"""Extract TensorFlow's op registry (every OpDef the C++ runtime knows) from a TensorFlow wheel.

The registry is the one TensorFlow Serving validates graphs against: the wheel's C API
(`TF_GetAllOpList` in `libtensorflow_cc.so.2`), loaded with ctypes in a process that never
imports the `tensorflow` package (whose Python side registers about a hundred test ops more).
Docs (summaries, descriptions) are dropped; the ops are sorted by name and serialized
deterministically, so the same wheel always gives the same bytes.

Runs in the TensorFlow venv (`make protos`):
  python tools/extract_ops.py OUT_FILE     # write the OpList
  python tools/extract_ops.py -            # write it to stdout (the parity test)
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from pathlib import Path

# NumPy first: the TensorFlow libraries crash the interpreter when they load before it.
import numpy
import numpy.random  # noqa: F401

from surgery_proto.tensorflow.core.framework.op_def_pb2 import OpList


class _Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t), ("deallocator", ctypes.c_void_p)]


def _library_dir() -> Path:
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("tensorflow is not installed in this venv")
    return Path(next(iter(spec.submodule_search_locations)))


def op_list() -> OpList:
    """Every registered OpDef, without docs, sorted by name."""
    lib = _library_dir()
    ctypes.CDLL(str(lib / "libtensorflow_framework.so.2"), mode=ctypes.RTLD_GLOBAL)
    cc = ctypes.CDLL(str(lib / "libtensorflow_cc.so.2"), mode=ctypes.RTLD_GLOBAL)
    cc.TF_GetAllOpList.restype = ctypes.POINTER(_Buffer)
    cc.TF_DeleteBuffer.argtypes = [ctypes.POINTER(_Buffer)]
    buffer = cc.TF_GetAllOpList()
    try:
        ops = OpList.FromString(ctypes.string_at(buffer.contents.data, buffer.contents.length))
    finally:
        cc.TF_DeleteBuffer(buffer)
    out = OpList()
    for op in sorted(ops.op, key=lambda op: op.name):
        op.ClearField("summary")
        op.ClearField("description")
        for arg in [*op.input_arg, *op.output_arg, *op.attr]:
            arg.ClearField("description")
        out.op.append(op)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    data = op_list().SerializeToString(deterministic=True)
    if argv[1] == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(argv[1]).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
