"""TensorFlow's C++ SavedModel loader as an oracle: the loader TensorFlow Serving uses.

Runs in the TensorFlow venv but never imports the `tensorflow` Python package: it loads the
wheel's shared libraries with ctypes and calls the C API (`TF_LoadSessionFromSavedModel`, which
is the C++ `LoadSavedModel`, then `TF_SessionRun`). What it answers therefore comes from the C++
loader and session alone, with no Python-side checks or conversions in between.

    .venv-tf/bin/python tests/oracle/cc_oracle.py serve            # one JSON request per line
    .venv-tf/bin/python tests/oracle/cc_oracle.py once '<request>'  # one request, for debugging

The protocol is `tf_oracle.py`'s: one single-line JSON response per request line on the original
stdout, everything else on stderr. Requests: `{"op": "ping"}` and `{"op": "run", "model": DIR,
"loader": "cc", "cases": [...]}`, with the cases and outputs of the `v1` loader (see README.md).
A TensorFlow CHECK failure aborts this process; the client restarts it.
"""

from __future__ import annotations

import base64
import ctypes
import importlib.util
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

# numpy (with numpy.random) must be imported before TensorFlow's libraries are loaded.
import numpy as np
import numpy.random
import protocol

Json: TypeAlias = Any
"""A JSON-compatible value (dict, list, str, int, float, bool or None)."""

Case: TypeAlias = dict[str, Json]
"""One case: `{"tags": [...], "signature": str, "inputs": {key: input spec}, ...}`."""

Array: TypeAlias = np.ndarray[Any, Any]
"""A numpy array holding one tensor's values (strings as bytes objects)."""

# --- data types ------------------------------------------------------------------------------------

DTYPES: dict[str, int] = {
    "float32": 1,
    "float64": 2,
    "int32": 3,
    "uint8": 4,
    "int16": 5,
    "int8": 6,
    "string": 7,
    "complex64": 8,
    "int64": 9,
    "bool": 10,
    "qint8": 11,
    "quint8": 12,
    "qint32": 13,
    "bfloat16": 14,
    "qint16": 15,
    "quint16": 16,
    "uint16": 17,
    "complex128": 18,
    "float16": 19,
    "resource": 20,
    "variant": 21,
    "uint32": 22,
    "uint64": 23,
}
"""TensorFlow's `DType.name` for each `TF_DataType` (the `DataType` enum) this oracle knows."""

DTYPE_NAMES = {code: name for name, code in DTYPES.items()}
STRING = DTYPES["string"]
FLOATING = {"float16", "bfloat16", "float32", "float64"}
UNWRITABLE = {"complex64", "complex128", "resource", "variant"}
TSTRING_SIZE = 24
"""`sizeof(TF_TString)` on 64-bit platforms: one element of a DT_STRING tensor."""

ERROR_NAMES = {
    1: "CancelledError",
    2: "UnknownError",
    3: "InvalidArgumentError",
    4: "DeadlineExceededError",
    5: "NotFoundError",
    6: "AlreadyExistsError",
    7: "PermissionDeniedError",
    8: "ResourceExhaustedError",
    9: "FailedPreconditionError",
    10: "AbortedError",
    11: "OutOfRangeError",
    12: "UnimplementedError",
    13: "InternalError",
    14: "UnavailableError",
    15: "DataLossError",
    16: "UnauthenticatedError",
}
"""The `tf.errors` class TensorFlow's Python API raises for each `TF_Code`."""


def _numpy_dtype(name: str) -> np.dtype[Any]:
    """The numpy dtype of a TensorFlow dtype's values (object for strings, bytes per element)."""
    if name == "string":
        return np.dtype(object)
    if name == "bfloat16":
        import ml_dtypes  # installed with TensorFlow; numpy has no bfloat16

        bfloat16: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
        return bfloat16
    if name not in DTYPES or name.startswith("q") or name in ("resource", "variant"):
        raise TypeError(f"no numpy dtype for {name!r}")
    return np.dtype(name)


class TensorFlowError(Exception):
    """A non-OK `TF_Status`: written as `"<tf.errors class>: <TF_Message>"` like the v1 path's."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.kind = ERROR_NAMES.get(code, f"TF_Code{code}Error")


# --- the C API -------------------------------------------------------------------------------------


class Buffer(ctypes.Structure):
    """`TF_Buffer`: bytes owned by TensorFlow (a serialized MetaGraphDef here)."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("length", ctypes.c_size_t),
        ("data_deallocator", ctypes.c_void_p),
    ]


class Output(ctypes.Structure):
    """`TF_Output`: one output (`index`) of an operation in a `TF_Graph`."""

    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


def tensorflow_dir() -> Path:
    """The installed `tensorflow` package's directory, found without importing it."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the tensorflow package is not installed in this venv")
    return Path(next(iter(spec.submodule_search_locations)))


_P = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "TF_Version": (ctypes.c_char_p, []),
    "TF_NewStatus": (_P, []),
    "TF_DeleteStatus": (None, [_P]),
    "TF_GetCode": (ctypes.c_int, [_P]),
    "TF_Message": (ctypes.c_char_p, [_P]),
    "TF_NewGraph": (_P, []),
    "TF_DeleteGraph": (None, [_P]),
    "TF_NewSessionOptions": (_P, []),
    "TF_DeleteSessionOptions": (None, [_P]),
    "TF_NewBuffer": (ctypes.POINTER(Buffer), []),
    "TF_DeleteBuffer": (None, [ctypes.POINTER(Buffer)]),
    "TF_LoadSessionFromSavedModel": (
        _P,
        [
            _P,
            _P,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            _P,
            ctypes.POINTER(Buffer),
            _P,
        ],
    ),
    "TF_CloseSession": (None, [_P, _P]),
    "TF_DeleteSession": (None, [_P, _P]),
    "TF_GraphOperationByName": (_P, [_P, ctypes.c_char_p]),
    "TF_OperationNumOutputs": (ctypes.c_int, [_P]),
    "TF_OperationOutputType": (ctypes.c_int, [Output]),
    # session, run_options, (inputs, input_values, ninputs), (outputs, output_values, noutputs),
    # target_opers, ntargets, run_metadata, status
    "TF_SessionRun": (
        None,
        [_P, _P, *[ctypes.POINTER(Output), ctypes.POINTER(_P), ctypes.c_int] * 2, _P, ctypes.c_int, _P, _P],
    ),
    "TF_AllocateTensor": (_P, [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_size_t]),
    "TF_DeleteTensor": (None, [_P]),
    "TF_TensorData": (_P, [_P]),
    "TF_TensorByteSize": (ctypes.c_size_t, [_P]),
    "TF_TensorType": (ctypes.c_int, [_P]),
    "TF_NumDims": (ctypes.c_int, [_P]),
    "TF_Dim": (ctypes.c_int64, [_P, ctypes.c_int]),
    "TF_StringInit": (None, [_P]),
    "TF_StringCopy": (None, [_P, ctypes.c_char_p, ctypes.c_size_t]),
    "TF_StringGetDataPointer": (_P, [_P]),
    "TF_StringGetSize": (ctypes.c_size_t, [_P]),
}
"""Return and argument types of the C API functions used here (from `tensorflow/c/*.h`)."""


class CApi:
    """TensorFlow's C API from the wheel's `libtensorflow_cc.so.2`, with typed functions."""

    def __init__(self, directory: Path) -> None:
        # Both with RTLD_GLOBAL, the framework first: the C API's symbols live in both libraries.
        ctypes.CDLL(str(directory / "libtensorflow_framework.so.2"), mode=ctypes.RTLD_GLOBAL)
        self.lib = ctypes.CDLL(str(directory / "libtensorflow_cc.so.2"), mode=ctypes.RTLD_GLOBAL)
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(self.lib, name)
            function.restype = restype
            function.argtypes = argtypes

    def __getattr__(self, name: str) -> Any:
        """A C API function by name (`api.TF_NewGraph()`)."""
        return getattr(self.lib, name)

    def version(self) -> str:
        """`TF_Version()`: the TensorFlow release the libraries come from."""
        version: bytes = self.lib.TF_Version()
        return version.decode()

    @contextmanager
    def status(self) -> Iterator[Any]:
        """A fresh `TF_Status`, deleted on exit."""
        status = self.lib.TF_NewStatus()
        try:
            yield status
        finally:
            self.lib.TF_DeleteStatus(status)

    def check(self, status: Any) -> None:
        """Raise `TensorFlowError` when `status` is not OK."""
        code = self.lib.TF_GetCode(status)
        if code != 0:
            raise TensorFlowError(code, (self.lib.TF_Message(status) or b"").decode("utf-8", "replace"))

    # --- tensors ---

    def new_tensor(self, array: Array, dtype: str) -> Any:
        """A `TF_Tensor` of `dtype` holding `array` (strings as bytes); the caller deletes it."""
        dims = (ctypes.c_int64 * max(array.ndim, 1))(*array.shape)
        if dtype == "string":
            count = array.size
            tensor = self.lib.TF_AllocateTensor(STRING, dims, array.ndim, count * TSTRING_SIZE)
            base = self.lib.TF_TensorData(tensor)
            for index, value in enumerate(array.reshape(-1)):
                element = base + index * TSTRING_SIZE
                self.lib.TF_StringInit(element)
                self.lib.TF_StringCopy(element, value, len(value))
            return tensor
        contiguous = np.ascontiguousarray(array, dtype=_numpy_dtype(dtype))
        tensor = self.lib.TF_AllocateTensor(DTYPES[dtype], dims, array.ndim, contiguous.nbytes)
        if contiguous.nbytes:
            ctypes.memmove(self.lib.TF_TensorData(tensor), contiguous.ctypes.data, contiguous.nbytes)
        return tensor

    def tensor_dtype(self, tensor: Any) -> str:
        """The dtype name of a `TF_Tensor`."""
        code = self.lib.TF_TensorType(tensor)
        return DTYPE_NAMES.get(code, f"dtype_{code}")

    def tensor_array(self, tensor: Any) -> Array:
        """A copy of a `TF_Tensor`'s values as a numpy array (strings as bytes)."""
        shape = tuple(self.lib.TF_Dim(tensor, d) for d in range(self.lib.TF_NumDims(tensor)))
        dtype = self.tensor_dtype(tensor)
        count = int(np.prod(shape, dtype=np.int64))
        base = self.lib.TF_TensorData(tensor)
        if dtype == "string":
            values = []
            for index in range(count):
                element = base + index * TSTRING_SIZE
                size = self.lib.TF_StringGetSize(element)
                values.append(ctypes.string_at(self.lib.TF_StringGetDataPointer(element), size))
            strings = np.empty(count, dtype=object)
            strings[:] = values
            return strings.reshape(shape)
        numpy_dtype = _numpy_dtype(dtype)
        nbytes = count * numpy_dtype.itemsize
        if nbytes == 0:
            return np.empty(shape, dtype=numpy_dtype)
        raw = ctypes.string_at(base, nbytes)
        return np.frombuffer(raw, dtype=numpy_dtype).reshape(shape).copy()


# --- case values (as the v1 path builds them) ------------------------------------------------------


class Value:
    """One case input: its dtype and its components in `tf.nest.flatten(expand_composites=True)`
    order (dense: the array; SparseTensor: indices, values, dense_shape; RaggedTensor: values,
    row_splits), each with its own dtype."""

    def __init__(self, kind: str, components: list[tuple[Array, str]]) -> None:
        self.kind = kind
        self.components = components


def _encode_strings(value: Json) -> Json:
    """Nested lists of str -> nested lists of utf-8 bytes."""
    if isinstance(value, list):
        return [_encode_strings(item) for item in value]
    return value.encode("utf-8")


def _array(value: Json, dtype: str) -> Array:
    """A numpy array of `dtype` holding the JSON `value` (strings given as str)."""
    if dtype == "string":
        value = _encode_strings(value)
    return np.array(value, dtype=_numpy_dtype(dtype))


def _decode_b64(value: Json) -> Json:
    """Nested lists of base64 text -> nested lists of the bytes it encodes."""
    if isinstance(value, list):
        return [_decode_b64(item) for item in value]
    return base64.b64decode(value, validate=True)


def _varint(number: int) -> bytes:
    """A protobuf base-128 varint (a negative int64 as its 64-bit two's complement)."""
    number &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _tf_example(features: dict[str, dict[str, list[Json]]]) -> bytes:
    """A serialized `tf.train.Example` from `{name: {"float_list" | "int64_list" | "bytes_list": [...]}}`
    (bytes_list values as utf-8 text), written with the wire format alone (no TensorFlow here):
    Example.features (1) -> Features.feature (1, a map entry: key 1, value 2) -> Feature's
    bytes_list (1), float_list (2) or int64_list (3) -> their `value` (1, packed for numbers)."""
    entries = b""
    for name, typed in features.items():
        ((kind, values),) = typed.items()
        if kind == "bytes_list":
            listed = b"".join(_length_delimited(1, value.encode("utf-8")) for value in values)
        elif kind == "float_list":
            packed = struct.pack(f"<{len(values)}f", *values)
            listed = _length_delimited(1, packed) if values else b""
        elif kind == "int64_list":
            packed = b"".join(_varint(int(value)) for value in values)
            listed = _length_delimited(1, packed) if values else b""
        else:
            raise ValueError(f"unknown feature list {kind!r}: expected bytes_list, float_list or int64_list")
        feature = _length_delimited({"bytes_list": 1, "float_list": 2, "int64_list": 3}[kind], listed)
        entries += _length_delimited(
            1, _length_delimited(1, name.encode("utf-8")) + _length_delimited(2, feature)
        )
    return _length_delimited(1, entries)


def input_value(spec: dict[str, Json]) -> Value:
    """The components of one input spec of a case (the v1 path's `input_value`, flattened)."""
    dtype = spec["dtype"]
    if dtype not in DTYPES:
        raise TypeError(f"Cannot convert the value to a TensorFlow DType: {dtype!r}")
    if "b64" in spec or "tf_examples" in spec:
        if dtype != "string":
            raise TypeError(f"a b64 or tf_examples input must be a string tensor, not {dtype}")
        if "b64" in spec:
            return Value("dense", [(np.array(_decode_b64(spec["b64"]), dtype=object), dtype)])
        examples = [_tf_example(features) for features in spec["tf_examples"]]
        strings = np.empty(len(examples), dtype=object)
        strings[:] = examples
        return Value("dense", [(strings, dtype)])
    if "sparse" in spec:
        sparse = spec["sparse"]
        rank = len(sparse["dense_shape"])
        return Value(
            "sparse",
            [
                (np.array(sparse["indices"], dtype=np.int64).reshape(-1, rank), "int64"),
                (_array(sparse["values"], dtype), dtype),
                (np.array(sparse["dense_shape"], dtype=np.int64), "int64"),
            ],
        )
    if "ragged" in spec:
        ragged = spec["ragged"]
        return Value(
            "ragged",
            [
                (_array(ragged["values"], dtype), dtype),
                (np.array(ragged["row_splits"], dtype=np.int64), "int64"),
            ],
        )
    return Value("dense", [(_array(spec["value"], dtype), dtype)])


def output_json(array: Array, dtype: str) -> dict[str, Json]:
    """`{"dtype", "shape", "value"}` for one dense output (floats as float, strings as str)."""
    if dtype in UNWRITABLE:
        raise TypeError(f"a {dtype} output cannot be written as JSON")
    if dtype == "string":
        value = _decode_strings(array.tolist())
    elif dtype in FLOATING:
        value = array.astype(np.float64).tolist()
    else:
        value = array.tolist()
    return {"dtype": dtype, "shape": list(array.shape), "value": value}


def _decode_strings(value: Json) -> Json:
    """Nested lists of bytes -> nested lists of str (utf-8)."""
    if isinstance(value, list):
        return [_decode_strings(item) for item in value]
    return value.decode("utf-8")


def _component_keys(key: str, count: int) -> list[str]:
    """Signature keys of a composite input's flattened components: `k`, `k_1`, `k_2`, ..."""
    return [key] + [f"{key}_{index}" for index in range(1, count)]


def _error(exc: BaseException) -> str:
    """The protocol's error string: `"<type>: <message>"` (a `tf.errors` class for TensorFlow's)."""
    kind = exc.kind if isinstance(exc, TensorFlowError) else type(exc).__name__
    return f"{kind}: {exc}"


def _check_output_keys(case: Case, outputs: dict[str, Json]) -> None:
    """Raise KeyError when the case names an expected output the signature does not return."""
    missing = sorted(set(case.get("outputs", {})) - set(outputs))
    if missing:
        raise KeyError(f"output keys {missing} not in the signature's outputs {sorted(outputs)}")


# --- the C++ loader --------------------------------------------------------------------------------


class Session:
    """One model loaded by `TF_LoadSessionFromSavedModel` for one tag set: graph, session and the
    MetaGraphDef the loader returns (parsed with the project's own generated protos)."""

    def __init__(self, api: CApi, model_dir: str, tags: tuple[str, ...]) -> None:
        from surgery.schema import MetaGraphDef

        self.api = api
        self.graph = api.TF_NewGraph()
        self.session: Any = None
        options = api.TF_NewSessionOptions()
        buffer = api.TF_NewBuffer()
        try:
            with api.status() as status:
                tag_array = (ctypes.c_char_p * max(len(tags), 1))(*[t.encode() for t in tags])
                self.session = api.TF_LoadSessionFromSavedModel(
                    options, None, model_dir.encode(), tag_array, len(tags), self.graph, buffer, status
                )
                api.check(status)
            self.meta_graph = MetaGraphDef.FromString(ctypes.string_at(buffer[0].data, buffer[0].length))
        except BaseException:
            self.close()
            raise
        finally:
            api.TF_DeleteBuffer(buffer)
            api.TF_DeleteSessionOptions(options)

    def close(self) -> None:
        """Close and delete the session, then the graph."""
        if self.session:
            with self.api.status() as status:
                self.api.TF_CloseSession(self.session, status)
                self.api.TF_DeleteSession(self.session, status)
            self.session = None
        if self.graph:
            self.api.TF_DeleteGraph(self.graph)
            self.graph = None

    def output(self, name: str) -> Output:
        """The `TF_Output` of a tensor name `op:index`, refused as Python's graph would refuse it."""
        op_name, colon, index_text = name.rpartition(":")
        if not colon or not index_text.isdigit():
            raise ValueError(f"The name {name!r} looks like an (invalid) Operation name, not a Tensor.")
        operation = self.api.TF_GraphOperationByName(self.graph, op_name.encode())
        if not operation:
            raise KeyError(
                f"The name {name!r} refers to a Tensor which does not exist. "
                f"The operation, {op_name!r}, does not exist in the graph."
            )
        index = int(index_text)
        outputs = self.api.TF_OperationNumOutputs(operation)
        if index >= outputs:
            raise KeyError(
                f"The name {name!r} refers to a Tensor which does not exist. "
                f"The operation, {op_name!r}, exists but only has {outputs} outputs."
            )
        return Output(operation, index)

    def run(self, feeds: dict[str, tuple[Array, str]], fetches: list[str]) -> dict[str, tuple[Array, str]]:
        """`TF_SessionRun` feeding `feeds` (name -> (array, dtype)), fetching each distinct name.

        The values go to the C++ session as they are: a dtype that differs from the graph
        tensor's is refused by TensorFlow itself, as in TensorFlow Serving.
        """
        api = self.api
        inputs = [self.output(name) for name in feeds]
        unique = list(dict.fromkeys(fetches))
        outputs = [self.output(name) for name in unique]
        tensors = [api.new_tensor(array, dtype) for array, dtype in feeds.values()]
        results = (_P * max(len(unique), 1))()
        try:
            with api.status() as status:
                api.TF_SessionRun(
                    self.session,
                    None,
                    (Output * max(len(inputs), 1))(*inputs),
                    (_P * max(len(tensors), 1))(*tensors),
                    len(inputs),
                    (Output * max(len(outputs), 1))(*outputs),
                    results,
                    len(outputs),
                    None,
                    0,
                    None,
                    status,
                )
                api.check(status)
            return {
                name: (api.tensor_array(results[i]), api.tensor_dtype(results[i]))
                for i, name in enumerate(unique)
            }
        finally:
            for tensor in tensors:
                api.TF_DeleteTensor(tensor)
            for i in range(len(unique)):
                if results[i]:
                    api.TF_DeleteTensor(results[i])


def _feeds_for_input(signature: Any, key: str, value: Value) -> dict[str, tuple[Array, str]]:
    """Map graph tensor names to the values fed for one case input, by its TensorInfo encoding.

    As the v1 path: `coo_sparse` names the three SparseTensor tensors; `composite_tensor` lists
    its components; a dense TensorInfo of a composite value means TF2's layout, components under
    keys `key`, `key_1`, ... in flatten order.
    """
    if key not in signature.inputs:
        raise KeyError(f"input {key!r} not in the signature's inputs {sorted(signature.inputs)}")
    info = signature.inputs[key]
    components = value.components
    encoding = info.WhichOneof("encoding")
    if encoding == "coo_sparse":
        if value.kind != "sparse":
            raise TypeError(f"input {key!r} is a coo_sparse TensorInfo; the case must give 'sparse'")
        coo = info.coo_sparse
        names = [coo.indices_tensor_name, coo.values_tensor_name, coo.dense_shape_tensor_name]
        return dict(zip(names, components, strict=True))
    if encoding == "composite_tensor":
        names = [component.name for component in info.composite_tensor.components]
    else:
        keys = _component_keys(key, len(components))
        missing = [k for k in keys if k not in signature.inputs]
        if missing:
            raise KeyError(f"component keys {missing} of input {key!r} not in the signature")
        names = [signature.inputs[k].name for k in keys]
    if len(names) != len(components):
        raise ValueError(f"input {key!r}: {len(components)} components for {len(names)} tensors")
    return dict(zip(names, components, strict=True))


def _fetch_names(info: Any) -> list[str]:
    """The graph tensors to fetch for one output TensorInfo, in flatten order."""
    encoding = info.WhichOneof("encoding")
    if encoding == "coo_sparse":
        coo = info.coo_sparse
        return [coo.indices_tensor_name, coo.values_tensor_name, coo.dense_shape_tensor_name]
    if encoding == "composite_tensor":
        return [component.name for component in info.composite_tensor.components]
    return [info.name]


def _values_json(fetched: tuple[Array, str]) -> Json:
    """The `value` of a dense tensor's output JSON."""
    return output_json(*fetched)["value"]


def _ragged_rank(type_spec: Any) -> int:
    """The ragged_rank a RaggedTensorSpec's state records: its (shape, dtype, ragged_rank, ...)."""
    values = type_spec.type_state.tuple_value.values
    if len(values) < 3 or values[2].WhichOneof("kind") != "int64_value":
        raise ValueError(f"a RaggedTensorSpec state without a ragged_rank: {type_spec.type_state}")
    return int(values[2].int64_value)


def _fetched_json(info: Any, fetched: list[tuple[Array, str]]) -> dict[str, Json]:
    """Rebuild an output from the tensors fetched for its TensorInfo and write it as JSON, as the
    v1 path writes the SparseTensor or RaggedTensor it packs them into."""
    encoding = info.WhichOneof("encoding")
    if encoding == "name":
        return output_json(*fetched[0])
    if encoding == "coo_sparse":
        return _sparse_json(fetched)
    if encoding == "composite_tensor":
        from surgery.schema import TypeSpecProto

        spec = info.composite_tensor.type_spec
        if spec.type_spec_class == TypeSpecProto.SPARSE_TENSOR_SPEC and len(fetched) == 3:
            return _sparse_json(fetched)
        if spec.type_spec_class == TypeSpecProto.RAGGED_TENSOR_SPEC:
            rank = _ragged_rank(spec)
            if len(fetched) != rank + 1:
                raise ValueError(f"a ragged_rank {rank} RaggedTensor from {len(fetched)} tensors")
            if rank == 0:
                return output_json(*fetched[0])
            splits = [_values_json(s) for s in fetched[1:]]
            ragged: dict[str, Json] = {"values": _values_json(fetched[0])}
            if rank == 1:
                ragged["row_splits"] = splits[0]
            else:
                ragged["nested_row_splits"] = splits
            return {"dtype": fetched[0][1], "ragged": ragged}
        raise NotImplementedError(f"a {spec.type_spec_class_name or 'composite'} output cannot be rebuilt")
    raise NotImplementedError(f"a TensorInfo with encoding {encoding!r} cannot be fetched")


def _sparse_json(fetched: list[tuple[Array, str]]) -> dict[str, Json]:
    """A SparseTensor output from its fetched indices, values and dense_shape."""
    parts = dict(zip(("indices", "values", "dense_shape"), fetched, strict=True))
    return {"dtype": parts["values"][1], "sparse": {k: _values_json(v) for k, v in parts.items()}}


def _run_case(session: Session, case: Case) -> dict[str, Json]:
    """Feed the case's inputs and fetch every output of its signature in a loaded session."""
    meta_graph = session.meta_graph
    if case["signature"] not in meta_graph.signature_def:
        raise KeyError(f"signature {case['signature']!r} not in {sorted(meta_graph.signature_def)}")
    signature = meta_graph.signature_def[case["signature"]]
    feeds: dict[str, tuple[Array, str]] = {}
    for key, spec in case["inputs"].items():
        feeds.update(_feeds_for_input(signature, key, input_value(spec)))
    fetches = {key: _fetch_names(info) for key, info in signature.outputs.items()}
    fetched = session.run(feeds, [name for names in fetches.values() for name in names])
    outputs = {
        key: _fetched_json(signature.outputs[key], [fetched[name] for name in fetches[key]])
        for key in sorted(fetches)
    }
    _check_output_keys(case, outputs)
    return outputs


def run_cc(api: CApi, model_dir: str, cases: list[Case]) -> list[dict[str, Json]]:
    """Run cases through the C++ loader, loading once per tag set, in case order."""
    sessions: dict[tuple[str, ...], Session] = {}
    results: list[dict[str, Json]] = []
    try:
        for case in cases:
            tags = tuple(case.get("tags", ["serve"]))
            try:
                if tags not in sessions:
                    sessions[tags] = Session(api, model_dir, tags)
                results.append({"outputs": _run_case(sessions[tags], case)})
            except Exception as exc:  # any failure becomes this case's error
                results.append({"error": _error(exc)})
    finally:
        for session in sessions.values():
            session.close()
    return results


# --- the protocol ----------------------------------------------------------------------------------


def handle(api: CApi, request: dict[str, Any]) -> dict[str, Any]:
    """Answer one request (`protocol.guarded` turns a failure into its error response)."""
    op = request["op"]
    if op == "ping":
        return {"ok": True, "tf_version": api.version(), "python_tensorflow": "tensorflow" in sys.modules}
    if op == "run":
        if request["loader"] != "cc":
            raise ValueError(f"unknown loader {request['loader']!r}; expected ['cc']")
        return {"ok": True, "results": run_cc(api, request["model"], request["cases"])}
    raise ValueError(f"unknown op {op!r}")


def _start() -> protocol.Handler:
    api = CApi(tensorflow_dir())  # loaded only now, so its noise cannot reach the protocol
    return lambda request: handle(api, request)


if __name__ == "__main__":
    sys.exit(protocol.main((__doc__ or "").splitlines()[0], _start))
