"""`show`: what a SavedModel serves, read from the proto alone.

The text form follows `saved_model_cli show --all` for the signatures (so it reads the same to
people used to it), then adds what the TF2 loader uses: for each signature the wrapper
function, what it calls and the variables it binds, and the saved `tf.function`s with each
concrete signature (polymorphic functions have several).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from surgery.edits import TagSet, meta_graphs_with, select_meta_graphs
from surgery.model import Model
from surgery.schema import MetaGraphDef
from surgery.signatures import (
    SavedFunctionView,
    TensorSpec,
    TF2Signature,
    saved_functions,
    tf2_signatures,
    v1_signatures,
)
from surgery.tensors import enum_name


def spec_json(spec: TensorSpec) -> dict[str, Any]:
    """The contract's tensor form: name, dtype, shape (+ composite encodings when present)."""
    out: dict[str, Any] = {"name": spec.name, "dtype": spec.dtype, "shape": spec.shape}
    if spec.coo_sparse is not None:
        out["coo_sparse"] = asdict(spec.coo_sparse)
    if spec.components is not None:
        out["components"] = [spec_json(c) for c in spec.components]
    return out


def meta_graph_json(meta: MetaGraphDef) -> dict[str, Any]:
    signatures = {
        key: {
            "method_name": sig.method_name,
            "inputs": {k: spec_json(v) for k, v in sig.inputs.items()},
            "outputs": {k: spec_json(v) for k, v in sig.outputs.items()},
        }
        for key, sig in v1_signatures(meta).items()
    }
    out: dict[str, Any] = {"tags": list(meta.meta_info_def.tags), "signatures": signatures}
    tf2 = tf2_signatures(meta)
    if tf2 is not None:
        out["object_graph"] = {
            "signatures": {
                key: {
                    "node_id": sig.node_id,
                    "function": sig.function,
                    "argument_keywords": sig.argument_keywords,
                    "calls": sig.calls,
                    "bound_inputs": [asdict(b) for b in sig.bound_inputs],
                }
                for key, sig in tf2.items()
            },
            "functions": [asdict(f) for f in saved_functions(meta)],
        }
    return out


def shown(model: Model, signature: str | None, tag_set: TagSet | None) -> list[MetaGraphDef]:
    """The meta graphs to show: all, the one with `tag_set`, and with `signature` only those that
    have it (as copies holding that signature alone); a one-line `EditError` when none is left."""
    if signature is None:
        return select_meta_graphs(model, tag_set)
    metas = []
    for meta in meta_graphs_with(model, signature, tag_set):
        copy = MetaGraphDef()
        copy.CopyFrom(meta)
        for key in [k for k in copy.signature_def if k != signature]:
            del copy.signature_def[key]
        metas.append(copy)
    return metas


def show_json(model: Model, *, signature: str | None = None, tag_set: TagSet | None = None) -> dict[str, Any]:
    """`show --json`: every meta graph's signatures, as both loaders read them (or only `signature`,
    only the meta graph with `tag_set`)."""
    return {"meta_graphs": [meta_graph_json(meta) for meta in shown(model, signature, tag_set)]}


def _tensor_lines(kind: str, key: str, spec: TensorSpec) -> list[str]:
    shape = "unknown_rank" if spec.shape is None else "(" + ", ".join(str(d) for d in spec.shape) + ")"
    lines = [
        f"    {kind}['{key}'] tensor_info:",
        f"        dtype: {enum_name(spec.dtype)}",
        f"        shape: {shape}",
    ]
    if spec.name is not None:
        lines.append(f"        name: {spec.name}")
    if spec.coo_sparse is not None:
        c = spec.coo_sparse
        lines.append(
            f"        coo_sparse: values={c.values_tensor_name} indices={c.indices_tensor_name} "
            f"dense_shape={c.dense_shape_tensor_name}"
        )
    if spec.components is not None:
        lines.append("        composite components: " + ", ".join(c.name or "?" for c in spec.components))
    return lines


def _tf2_lines(sig: TF2Signature) -> list[str]:
    lines = [f"  TF2 loader: {sig.function} (object graph node {sig.node_id})"]
    if sig.calls:
        lines.append("    calls: " + ", ".join(sig.calls))
    if sig.bound_inputs:
        bound = ", ".join(f"{b.name or b.kind} (node {b.node_id})" for b in sig.bound_inputs)
        lines.append(f"    binds: {bound}")
    return lines


def _function_lines(functions: list[SavedFunctionView]) -> list[str]:
    if not functions:
        return []
    lines = ["", "Concrete Functions:"]
    for function in functions:
        lines.append(f"  Function Name: '{function.path}'")
        for i, concrete in enumerate(function.concrete_functions, 1):
            lines.append(f"    Option #{i}: {concrete.name}")
            lines.append(f"      Callable with: {concrete.inputs}")
            lines.append(f"      Returns: {concrete.outputs}")
            if concrete.bound_inputs:
                bound = ", ".join(f"{b.name or b.kind} (node {b.node_id})" for b in concrete.bound_inputs)
                lines.append(f"      Binds: {bound}")
    return lines


def show_text(model: Model, *, signature: str | None = None, tag_set: TagSet | None = None) -> str:
    """`show`: saved_model_cli's layout, with what the TF2 loader reads beside each signature."""
    lines: list[str] = []
    for meta in shown(model, signature, tag_set):
        tags = ", ".join(meta.meta_info_def.tags)
        lines.append(f"MetaGraphDef with tag-set: '{tags}' contains the following SignatureDefs:")
        tf2 = tf2_signatures(meta)
        for key, sig in v1_signatures(meta).items():
            lines += ["", f"signature_def['{key}']:"]
            lines.append("  The given SavedModel SignatureDef contains the following input(s):")
            for k, spec in sig.inputs.items():
                lines += _tensor_lines("inputs", k, spec)
            lines.append("  The given SavedModel SignatureDef contains the following output(s):")
            for k, spec in sig.outputs.items():
                lines += _tensor_lines("outputs", k, spec)
            lines.append(f"  Method name is: {sig.method_name}")
            if tf2 is not None and key in tf2:
                lines += _tf2_lines(tf2[key])
        if tf2 is None:
            lines += ["", "(no object graph: a TF1-style model, served through signature_def only)"]
        elif signature is None:
            lines += _function_lines(saved_functions(meta))
        lines.append("")
    return printable("\n".join(lines))


def printable(text: str) -> str:
    """`text` with every control or invisible character (a terminal escape in a name) spelled out."""
    if text.isprintable() or all(c == "\n" or c.isprintable() for c in text):
        return text
    return "".join(c if c == "\n" or c.isprintable() else c.encode("unicode_escape").decode() for c in text)
