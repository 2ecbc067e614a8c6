"""The TensorFlow work behind each oracle request: run, fingerprint and describe SavedModels.

Runs only in the TensorFlow venv (`.venv-tf`). Imported by `tf_oracle.py` (after it has
protected its protocol stream) and by `tests/fixtures/make_fixtures.py`.

Nothing here knows about particular fixtures: signature keys, input and output keys and dtypes
come from the case, tensor names come from the model on disk.
"""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import fingerprint_pb2, meta_graph_pb2, struct_pb2
from tensorflow.python.saved_model import loader_impl, nested_structure_coder
from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

Json: TypeAlias = Any
"""A JSON-compatible value (dict, list, str, int, float, bool or None)."""

Case: TypeAlias = dict[str, Json]
"""One case: `{"tags": [...], "signature": str, "inputs": {key: input spec}, ...}`."""

InputValue: TypeAlias = tf.Tensor | tf.SparseTensor | tf.RaggedTensor
"""An eager value built from one input spec of a case."""

OutputValue: TypeAlias = tf.Tensor | tf.SparseTensor | tf.RaggedTensor
"""An eager value a signature returns for one output key."""


# --- case values -------------------------------------------------------------------------------


def _numpy_dtype(dtype: tf.DType) -> np.dtype[Any]:
    """The numpy dtype used to build arrays of `dtype` (object for strings)."""
    return np.dtype(object) if dtype == tf.string else np.dtype(dtype.as_numpy_dtype)


def _encode_strings(value: Json) -> Json:
    """Nested lists of str -> nested lists of utf-8 bytes."""
    if isinstance(value, list):
        return [_encode_strings(item) for item in value]
    return value.encode("utf-8")


def _decode_strings(value: Json) -> Json:
    """Nested lists of bytes -> nested lists of str (utf-8)."""
    if isinstance(value, list):
        return [_decode_strings(item) for item in value]
    return value.decode("utf-8")


def _array(value: Json, dtype: tf.DType) -> np.ndarray[Any, Any]:
    """A numpy array of `dtype` holding the JSON `value` (strings given as str)."""
    if dtype == tf.string:
        value = _encode_strings(value)
    return np.array(value, dtype=_numpy_dtype(dtype))


def _decode_b64(value: Json) -> Json:
    """Nested lists of base64 text -> nested lists of the bytes it encodes."""
    if isinstance(value, list):
        return [_decode_b64(item) for item in value]
    return base64.b64decode(value, validate=True)


def _tf_example(features: dict[str, dict[str, list[Json]]]) -> bytes:
    """A serialized `tf.train.Example` from `{name: {"float_list" | "int64_list" | "bytes_list": [...]}}`
    (bytes_list values as utf-8 text)."""
    feature = {}
    for name, typed in features.items():
        ((kind, values),) = typed.items()
        if kind == "bytes_list":
            values = _encode_strings(values)
        lists = {"float_list": tf.train.FloatList, "int64_list": tf.train.Int64List}
        feature[name] = tf.train.Feature(**{kind: lists.get(kind, tf.train.BytesList)(value=values)})
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def input_value(spec: dict[str, Json]) -> InputValue:
    """Build the eager tensor described by one input spec of a case.

    Args:
        spec: `{"dtype": name, "value": nested list}`, or with `"sparse": {"indices", "values",
            "dense_shape"}` or `"ragged": {"values", "row_splits"}` instead of `"value"`; a
            string tensor also as `"b64": nested list` (base64 of arbitrary bytes) or
            `"tf_examples": [features, ...]` (a vector of serialized `tf.train.Example`s).

    Returns:
        A `tf.Tensor`, `tf.SparseTensor` or `tf.RaggedTensor` of the given dtype.
    """
    dtype = tf.as_dtype(spec["dtype"])
    if "b64" in spec:
        return tf.constant(np.array(_decode_b64(spec["b64"]), dtype=object), dtype=dtype)
    if "tf_examples" in spec:
        return tf.constant([_tf_example(features) for features in spec["tf_examples"]], dtype=dtype)
    if "sparse" in spec:
        sparse = spec["sparse"]
        rank = len(sparse["dense_shape"])
        return tf.SparseTensor(
            indices=tf.constant(np.array(sparse["indices"], dtype=np.int64).reshape(-1, rank)),
            values=tf.constant(_array(sparse["values"], dtype), dtype=dtype),
            dense_shape=tf.constant(sparse["dense_shape"], dtype=tf.int64),
        )
    if "ragged" in spec:
        ragged = spec["ragged"]
        return tf.RaggedTensor.from_row_splits(
            values=tf.constant(_array(ragged["values"], dtype), dtype=dtype),
            row_splits=tf.constant(ragged["row_splits"], dtype=tf.int64),
        )
    return tf.constant(_array(spec["value"], dtype), dtype=dtype)


def output_json(array: np.ndarray[Any, Any], dtype: tf.DType) -> dict[str, Json]:
    """`{"dtype", "shape", "value"}` for one dense output (floats as float, strings as str)."""
    if dtype.is_complex or dtype in (tf.resource, tf.variant):
        raise TypeError(f"a {dtype.name} output cannot be written as JSON")
    if dtype == tf.string:
        value = _decode_strings(array.tolist())
    elif dtype.is_floating:
        value = array.astype(np.float64).tolist()
    else:
        value = array.tolist()
    return {"dtype": dtype.name, "shape": list(array.shape), "value": value}


def _values_json(tensor: tf.Tensor) -> Json:
    """The `value` of a dense tensor's output JSON."""
    return output_json(np.asarray(tensor.numpy()), tensor.dtype)["value"]


def value_json(value: OutputValue) -> dict[str, Json]:
    """One output as JSON: dense as `output_json`; a SparseTensor as `{"dtype", "sparse": {"indices",
    "values", "dense_shape"}}`; a RaggedTensor as `{"dtype", "ragged": {"values", "row_splits"}}`
    (`"nested_row_splits"`, a list, when its ragged_rank is above 1)."""
    if isinstance(value, tf.SparseTensor):
        parts = {"indices": value.indices, "values": value.values, "dense_shape": value.dense_shape}
        return {"dtype": value.dtype.name, "sparse": {k: _values_json(v) for k, v in parts.items()}}
    if isinstance(value, tf.RaggedTensor):
        splits = [_values_json(s) for s in value.nested_row_splits]
        ragged: dict[str, Json] = {"values": _values_json(value.flat_values)}
        if len(splits) == 1:
            ragged["row_splits"] = splits[0]
        else:
            ragged["nested_row_splits"] = splits
        return {"dtype": value.dtype.name, "ragged": ragged}
    return output_json(np.asarray(value.numpy()), value.dtype)


def _component_keys(key: str, count: int) -> list[str]:
    """Signature keys of a composite input's flattened components: `k`, `k_1`, `k_2`, ..."""
    return [key] + [f"{key}_{index}" for index in range(1, count)]


def _error(exc: BaseException) -> str:
    """The protocol's error string: `"<type>: <message>"`."""
    return f"{type(exc).__name__}: {exc}"


def _check_output_keys(case: Case, outputs: dict[str, Json]) -> None:
    """Raise KeyError when the case names an expected output the signature does not return."""
    missing = sorted(set(case.get("outputs", {})) - set(outputs))
    if missing:
        raise KeyError(f"output keys {missing} not in the signature's outputs {sorted(outputs)}")


# --- TF2 loader --------------------------------------------------------------------------------


def _tf2_kwargs(function: Any, inputs: dict[str, Json]) -> dict[str, tf.Tensor]:
    """Keyword arguments for a TF2 signature function, which takes dense tensors only.

    A composite value for key `k` is passed as its components: `k_indices`, `k_values`,
    `k_dense_shape` when the function has them (a TF1 coo_sparse input, as load_v1_in_v2 splits
    it), otherwise `k`, `k_1`, ... in `tf.nest.flatten(expand_composites=True)` order (how TF2
    flattens a composite input of a signature; the same keys the v1 path feeds).
    """
    parameters = function.structured_input_signature[1]
    kwargs: dict[str, tf.Tensor] = {}
    for key, spec in inputs.items():
        value = input_value(spec)
        if isinstance(value, tf.Tensor):
            kwargs[key] = value
        elif isinstance(value, tf.SparseTensor) and f"{key}_indices" in parameters:
            kwargs[f"{key}_indices"] = value.indices
            kwargs[f"{key}_values"] = value.values
            kwargs[f"{key}_dense_shape"] = value.dense_shape
        else:
            components = tf.nest.flatten(value, expand_composites=True)
            kwargs.update(zip(_component_keys(key, len(components)), components, strict=True))
    return kwargs


def _run_tf2_case(loaded: Any, case: Case) -> dict[str, Json]:
    """Call `loaded.signatures[signature](**inputs)` and convert its output dict."""
    signatures = loaded.signatures
    if case["signature"] not in signatures:
        raise KeyError(f"signature {case['signature']!r} not in {sorted(signatures.keys())}")
    function = signatures[case["signature"]]
    result = function(**_tf2_kwargs(function, case["inputs"]))
    outputs = {key: value_json(value) for key, value in sorted(result.items())}
    _check_output_keys(case, outputs)
    return outputs


def run_tf2(model_dir: str, cases: list[Case]) -> list[dict[str, Json]]:
    """Run cases through `tf.saved_model.load`, loading once per tag set, in case order."""
    loaded: dict[tuple[str, ...], Any] = {}
    results: list[dict[str, Json]] = []
    for case in cases:
        tags = tuple(case.get("tags", ["serve"]))
        try:
            if tags not in loaded:
                loaded[tags] = tf.saved_model.load(model_dir, tags=list(tags))
            results.append({"outputs": _run_tf2_case(loaded[tags], case)})
        except Exception as exc:  # any failure becomes this case's error
            results.append({"error": _error(exc)})
    return results


# --- v1 session loader (the TensorFlow Serving path) -------------------------------------------


def _feeds_for_input(
    signature: meta_graph_pb2.SignatureDef, key: str, value: InputValue
) -> dict[str, tf.Tensor]:
    """Map graph tensor names to the values fed for one case input, by its TensorInfo encoding.

    A dense TensorInfo (`name`) of a composite value means a TF2-written signature whose
    components sit under keys `key`, `key_1`, ... in `tf.nest.flatten(expand_composites=True)`
    order. TF1's `coo_sparse` names the three SparseTensor tensors; `composite_tensor` lists its
    components in flatten order.
    """
    if key not in signature.inputs:
        raise KeyError(f"input {key!r} not in the signature's inputs {sorted(signature.inputs)}")
    info = signature.inputs[key]
    components = tf.nest.flatten(value, expand_composites=True)
    encoding = info.WhichOneof("encoding")
    if encoding == "coo_sparse":
        if not isinstance(value, tf.SparseTensor):
            raise TypeError(f"input {key!r} is a coo_sparse TensorInfo; the case must give 'sparse'")
        coo = info.coo_sparse
        return {
            coo.indices_tensor_name: value.indices,
            coo.values_tensor_name: value.values,
            coo.dense_shape_tensor_name: value.dense_shape,
        }
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


def _run_v1_case(
    session: tf.compat.v1.Session, meta_graph: meta_graph_pb2.MetaGraphDef, case: Case
) -> dict[str, Json]:
    """Feed the case's inputs and fetch every output of its signature in a loaded session.

    Like TensorFlow Serving's C++ session (and unlike Python's `Session.run`, which would convert
    the array), a value whose dtype differs from the fed graph tensor's dtype is an error.
    """
    if case["signature"] not in meta_graph.signature_def:
        raise KeyError(f"signature {case['signature']!r} not in {sorted(meta_graph.signature_def)}")
    signature = meta_graph.signature_def[case["signature"]]
    feeds: dict[str, tf.Tensor] = {}
    for key, spec in case["inputs"].items():
        feeds.update(_feeds_for_input(signature, key, input_value(spec)))
    for name, value in feeds.items():
        graph_dtype = session.graph.get_tensor_by_name(name).dtype
        if value.dtype != graph_dtype:
            raise TypeError(f"{name} is {graph_dtype.name} in the graph; the case feeds {value.dtype.name}")
    fetches = {key: _fetch_names(info) for key, info in signature.outputs.items()}
    arrays = session.run(fetches, feed_dict={name: value.numpy() for name, value in feeds.items()})
    outputs = {key: _fetched_json(session, signature.outputs[key], arrays[key]) for key in sorted(fetches)}
    _check_output_keys(case, outputs)
    return outputs


def _fetch_names(info: meta_graph_pb2.TensorInfo) -> list[str]:
    """The graph tensors to fetch for one output TensorInfo, in flatten order."""
    encoding = info.WhichOneof("encoding")
    if encoding == "coo_sparse":
        coo = info.coo_sparse
        return [coo.indices_tensor_name, coo.values_tensor_name, coo.dense_shape_tensor_name]
    if encoding == "composite_tensor":
        return [component.name for component in info.composite_tensor.components]
    return [info.name]


def _fetched_json(
    session: tf.compat.v1.Session, info: meta_graph_pb2.TensorInfo, arrays: list[Any]
) -> dict[str, Json]:
    """Rebuild an output from the arrays fetched for its TensorInfo and write it as JSON."""
    encoding = info.WhichOneof("encoding")
    if encoding == "name":
        return output_json(np.asarray(arrays[0]), session.graph.get_tensor_by_name(info.name).dtype)
    tensors = [tf.constant(array) for array in arrays]
    if encoding == "coo_sparse":
        return value_json(tf.SparseTensor(*tensors))
    if encoding == "composite_tensor":
        struct = struct_pb2.StructuredValue(type_spec_value=info.composite_tensor.type_spec)
        spec = nested_structure_coder.decode_proto(struct)
        return value_json(tf.nest.pack_sequence_as(spec, tensors, expand_composites=True))
    raise NotImplementedError(f"a TensorInfo with encoding {encoding!r} cannot be fetched")


def run_v1(model_dir: str, cases: list[Case]) -> list[dict[str, Json]]:
    """Run cases through `tf.compat.v1.saved_model.loader.load` and `Session.run`.

    Loads once per tag set (one graph and session each) and runs the cases in order.
    """
    sessions: dict[tuple[str, ...], tuple[tf.compat.v1.Session, meta_graph_pb2.MetaGraphDef]] = {}
    results: list[dict[str, Json]] = []
    with contextlib.ExitStack() as stack:
        for case in cases:
            tags = tuple(case.get("tags", ["serve"]))
            try:
                if tags not in sessions:
                    graph = tf.Graph()
                    # Not entered as a context manager: that would make `graph` the default
                    # graph, and the case inputs must be built as eager tensors.
                    session = tf.compat.v1.Session(graph=graph)
                    stack.callback(session.close)
                    with graph.as_default():
                        meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), model_dir)
                    sessions[tags] = (session, meta_graph)
                results.append({"outputs": _run_v1_case(*sessions[tags], case)})
            except Exception as exc:  # any failure becomes this case's error
                results.append({"error": _error(exc)})
    return results


def run(model_dir: str, loader: str, cases: list[Case]) -> list[dict[str, Json]]:
    """Run cases with the `"tf2"` or `"v1"` loader; one `{"outputs"}` or `{"error"}` each."""
    runners = {"tf2": run_tf2, "v1": run_v1}
    if loader not in runners:
        raise ValueError(f"unknown loader {loader!r}; expected one of {sorted(runners)}")
    return runners[loader](model_dir, cases)


# --- fingerprints ------------------------------------------------------------------------------


def _fingerprint_json(fingerprint: fingerprint_pb2.FingerprintDef) -> dict[str, int]:
    """The five hashes and the producer version of a FingerprintDef."""
    return {
        "saved_model_checksum": fingerprint.saved_model_checksum,
        "graph_def_program_hash": fingerprint.graph_def_program_hash,
        "signature_def_hash": fingerprint.signature_def_hash,
        "saved_object_graph_hash": fingerprint.saved_object_graph_hash,
        "checkpoint_hash": fingerprint.checkpoint_hash,
        "version_producer": fingerprint.version.producer,
    }


def fingerprint(model_dir: str) -> dict[str, int]:
    """The fingerprint TensorFlow computes for the model as it is on disk now."""
    serialized = fingerprinting.CreateFingerprintDef(model_dir)
    return _fingerprint_json(fingerprint_pb2.FingerprintDef.FromString(serialized))


def read_fingerprint(model_dir: str) -> dict[str, Json] | None:
    """The model's `fingerprint.pb` as written (plus `uuid`), or None when there is none."""
    path = Path(model_dir) / "fingerprint.pb"
    if not path.exists():
        return None
    stored = fingerprint_pb2.FingerprintDef.FromString(path.read_bytes())
    return {**_fingerprint_json(stored), "uuid": stored.uuid}


# --- describe ----------------------------------------------------------------------------------


def tensor_info_json(info: meta_graph_pb2.TensorInfo) -> dict[str, Json]:
    """One TensorInfo in the `show --json` schema, parsed by TensorFlow."""
    shape = tf.TensorShape(info.tensor_shape)
    encoding = info.WhichOneof("encoding")
    described: dict[str, Json] = {
        "name": info.name if encoding == "name" else None,
        "dtype": "invalid" if info.dtype == types_pb2.DT_INVALID else tf.as_dtype(info.dtype).name,
        "shape": None if shape.rank is None else [-1 if d is None else d for d in shape.as_list()],
    }
    if encoding == "coo_sparse":
        described["coo_sparse"] = {
            "values_tensor_name": info.coo_sparse.values_tensor_name,
            "indices_tensor_name": info.coo_sparse.indices_tensor_name,
            "dense_shape_tensor_name": info.coo_sparse.dense_shape_tensor_name,
        }
    elif encoding == "composite_tensor":
        described["components"] = [
            tensor_info_json(component) for component in info.composite_tensor.components
        ]
    return described


def describe(model_dir: str) -> dict[str, Json]:
    """Tag sets and signatures of every meta graph, in file order (signature keys sorted)."""
    saved_model = loader_impl.parse_saved_model(model_dir)
    meta_graphs = []
    for meta_graph in saved_model.meta_graphs:
        signatures = {
            key: {
                "method_name": signature.method_name,
                "inputs": {k: tensor_info_json(v) for k, v in sorted(signature.inputs.items())},
                "outputs": {k: tensor_info_json(v) for k, v in sorted(signature.outputs.items())},
            }
            for key, signature in sorted(meta_graph.signature_def.items())
        }
        meta_graphs.append({"tags": list(meta_graph.meta_info_def.tags), "signatures": signatures})
    return {"meta_graphs": meta_graphs}


# --- Keras ---------------------------------------------------------------------------------------


def keras_load(
    model_dir: str, library: str = "tf_keras", inputs: dict[str, Json] | None = None
) -> dict[str, Json]:
    """What a Keras `load_model` makes of a SavedModel directory, and what the model computes.

    Args:
        model_dir: the SavedModel directory.
        library: `"tf_keras"` (`tf_keras.models.load_model`, the Keras 2 loader that reads
            `keras_metadata.pb`) or `"keras"` (Keras 3's `keras.models.load_model`, which refuses
            SavedModel directories: the error is the answer).
        inputs: optional input specs (the case format); the model is called with them, as a dict
            when there are several, the bare value when there is one.

    Returns:
        `{"class", "input_names", "output_names", "signatures": {key: {"inputs": [...],
        "outputs": [...]}}}` plus `"outputs": {name: OUTPUT}` when `inputs` were given (a single
        output is keyed by the model's output name).
    """
    if library == "tf_keras":
        import tf_keras

        model = tf_keras.models.load_model(model_dir)
    elif library == "keras":
        import keras

        model = keras.models.load_model(model_dir)
    else:
        raise ValueError(f"unknown library {library!r}; expected 'tf_keras' or 'keras'")
    signatures = getattr(model, "signatures", {})
    described: dict[str, Json] = {
        "class": type(model).__name__,
        "input_names": list(getattr(model, "input_names", None) or []),
        "output_names": list(getattr(model, "output_names", None) or []),
        "signatures": {
            key: {
                "inputs": sorted(signatures[key].structured_input_signature[1]),
                "outputs": sorted(signatures[key].structured_outputs),
            }
            for key in sorted(signatures.keys())
        },
    }
    if inputs:
        values = {key: input_value(spec) for key, spec in inputs.items()}
        result = model(values if len(values) > 1 else next(iter(values.values())))
        if isinstance(result, dict):
            named = dict(result)
        elif isinstance(result, (list, tuple)):
            named = dict(zip(described["output_names"], result, strict=True))
        else:
            named = {(described["output_names"] or ["output_0"])[0]: result}
        described["outputs"] = {key: value_json(value) for key, value in sorted(named.items())}
    return described


# --- scratch models ------------------------------------------------------------------------------


def build(kind: str, model_dir: str) -> list[Case]:
    """Save a scratch model of `kind` (see `scratch_models.BUILDERS`) and record its cases.

    Outputs are recorded with the TF2 loader and must be what the v1 loader gives too.
    """
    import scratch_models

    if kind not in scratch_models.BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(scratch_models.BUILDERS)}")
    cases = scratch_models.BUILDERS[kind](Path(model_dir))
    recorded = []
    for case, tf2, v1 in zip(cases, run_tf2(model_dir, cases), run_v1(model_dir, cases), strict=True):
        if "error" in tf2 or tf2 != v1:
            raise AssertionError(f"{kind}/{case['signature']}: tf2 {tf2} v1 {v1}")
        recorded.append({**case, "outputs": tf2["outputs"]})
    return recorded
