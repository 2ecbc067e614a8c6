"""`diff`: what differs between two SavedModels, signature by signature.

`diff` compares what a client sees (signature keys, inputs, outputs, dtypes, shapes, tensor
names, methods); `surgery.graph_changes.graph_diff` compares what runs. A signature renamed
and edited shows as the rename and then the edit under its new key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from surgery.graph_changes import Equal, matched_meta_graphs, renamed_nodes
from surgery.model import ModelLike
from surgery.schema import (
    MetaGraphDef,
    NodeDef,
)
from surgery.signatures import (
    Signature,
    TensorSpec,
    flat_names,
    signature_map_node,
    v1_signatures,
)
from surgery.storage.readwrite import as_model
from surgery.tensor_edits import inserted_by
from surgery.tensors import split_tensor_name

if TYPE_CHECKING:
    from surgery.reports import Change


def _change(*, tags: list[str], signature: str | None, kind: str, detail: str) -> Change:
    """One `Change` (pydantic, imported when a diff is made rather than with this module)."""
    from surgery.reports import Change

    return Change(tags=tags, signature=signature, kind=kind, detail=detail)


# --- signature level -----------------------------------------------------------------------------


def _io_changes(
    tags: list[str], key: str, side: str, a: dict[str, TensorSpec], b: dict[str, TensorSpec]
) -> list[Change]:
    out = []
    removed = {k: a[k] for k in a if k not in b}
    added = {k: b[k] for k in b if k not in a}
    for old, spec in sorted(removed.items()):
        # A rename keeps dtype and shape; a reordering rename may also move the tensor.
        candidates = [n for n, o in sorted(added.items()) if o == spec]
        candidates += [n for n, o in sorted(added.items()) if (o.dtype, o.shape) == (spec.dtype, spec.shape)]
        if candidates:
            new = candidates[0]
            out.append(_change(tags=tags, signature=key, kind=f"{side}-renamed", detail=f"{old} -> {new}"))
            if added[new].name != spec.name:
                detail = f"{new}: {spec.name} -> {added[new].name}"
                out.append(_change(tags=tags, signature=key, kind=f"{side}-tensor", detail=detail))
            del added[new]
        else:
            out.append(_change(tags=tags, signature=key, kind=f"{side}-removed", detail=old))
    out += [_change(tags=tags, signature=key, kind=f"{side}-added", detail=k) for k in sorted(added)]
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.dtype != y.dtype:
            out.append(
                _change(
                    tags=tags, signature=key, kind=f"{side}-dtype", detail=f"{name}: {x.dtype} -> {y.dtype}"
                )
            )
        if x.shape != y.shape:
            out.append(
                _change(
                    tags=tags, signature=key, kind=f"{side}-shape", detail=f"{name}: {x.shape} -> {y.shape}"
                )
            )
        if x.name != y.name:
            out.append(
                _change(
                    tags=tags, signature=key, kind=f"{side}-tensor", detail=f"{name}: {x.name} -> {y.name}"
                )
            )
    return out


def _edit_changes(tags: list[str], key: str, x: Signature, y: Signature) -> list[Change]:
    """What changed in one signature, `x` before and `y` after, reported under `key`."""
    out = []
    if x.method_name != y.method_name:
        detail = f"{x.method_name or '(none)'} -> {y.method_name or '(none)'}"
        out.append(_change(tags=tags, signature=key, kind="method", detail=detail))
    out += _io_changes(tags, key, "input", x.inputs, y.inputs)
    out += _io_changes(tags, key, "output", x.outputs, y.outputs)
    return out


def _wrappers(meta: MetaGraphDef) -> dict[str, str]:
    """Signature key -> the signature-wrapper function the TF2 loader runs for it (TF2 models)."""
    if not meta.HasField("object_graph_def"):
        return {}
    graph = meta.object_graph_def
    map_id = signature_map_node(graph)
    if map_id is None or not 0 <= map_id < len(graph.nodes):
        return {}
    out = {}
    for child in graph.nodes[map_id].children:
        if 0 <= child.node_id < len(graph.nodes):
            node = graph.nodes[child.node_id]
            if node.WhichOneof("kind") == "bare_concrete_function":
                out[child.local_name] = node.bare_concrete_function.concrete_function_name
    return out


class _Identity:
    """Tells whether a signature removed from `a` and one added in `b` are one signature, renamed.

    A signature is what it runs: in a TF2 model, its signature-wrapper function (which the
    edits keep, renamed key or not); in a TF1 model, the tensors it fetches, followed in `b`
    back through the nodes an edit inserted (marked `_surgery_inserted`) and through renamed nodes.
    Two signatures running different functions or fetching different tensors are never paired.
    """

    def __init__(self, meta_a: MetaGraphDef, meta_b: MetaGraphDef, eq: Equal) -> None:
        self.meta_a, self.meta_b, self.eq = meta_a, meta_b, eq
        self.wrappers_a, self.wrappers_b = _wrappers(meta_a), _wrappers(meta_b)
        self._graph: tuple[set[str], dict[str, NodeDef], dict[str, str]] | None = None

    def related(self, key_a: str, a: Signature, key_b: str, b: Signature) -> bool:
        wrapper_a, wrapper_b = self.wrappers_a.get(key_a), self.wrappers_b.get(key_b)
        if wrapper_a is not None and wrapper_b is not None:
            return wrapper_a == wrapper_b
        if a == b:
            return True
        fetches_a = {name for spec in a.outputs.values() for name in flat_names(spec)}
        fetches_b = {self._in_a(name) for spec in b.outputs.values() for name in flat_names(spec)}
        return bool(fetches_a) and fetches_a == fetches_b

    def _in_a(self, tensor: str) -> str:
        """`tensor` of `b`'s graph under the name it has in `a`'s, through inserted and renamed nodes."""
        if self._graph is None:
            nodes_a = {n.name: n for n in self.meta_a.graph_def.node}
            nodes_b = {n.name: n for n in self.meta_b.graph_def.node}
            renamed = renamed_nodes(nodes_a, nodes_b, self.eq)
            self._graph = (set(nodes_a), nodes_b, {new: old for old, new in renamed.items()})
        names_a, nodes_b, renamed_back = self._graph
        node, index = split_tensor_name(tensor)
        seen: set[str] = set()
        while node not in names_a and node not in renamed_back and node not in seen:
            seen.add(node)
            inserted = nodes_b.get(node)
            if inserted is None or inserted_by(inserted) is None or not inserted.input:
                break
            node, index = split_tensor_name(inserted.input[0])
        node = renamed_back.get(node, node)
        return f"{node}:{index}"


def _signature_changes(
    tags: list[str], a: dict[str, Signature], b: dict[str, Signature], identity: _Identity
) -> list[Change]:
    out = []
    removed = {k: a[k] for k in a if k not in b}
    added = {k: b[k] for k in b if k not in a}
    for old, sig in sorted(removed.items()):
        # An identical signature first (a plain rename), then one that runs the same thing.
        candidates = sorted(added, key=lambda new: (added[new] != sig, new))
        match = next((new for new in candidates if identity.related(old, sig, new, added[new])), None)
        if match is not None:
            out.append(
                _change(tags=tags, signature=old, kind="signature-renamed", detail=f"{old} -> {match}")
            )
            out += _edit_changes(tags, match, sig, added.pop(match))
        else:
            out.append(_change(tags=tags, signature=old, kind="signature-removed", detail=old))
    out += [_change(tags=tags, signature=k, kind="signature-added", detail=k) for k in sorted(added)]
    for key in sorted(set(a) & set(b)):
        out += _edit_changes(tags, key, a[key], b[key])
    return out


def diff(a: ModelLike, b: ModelLike) -> list[Change]:
    """Signature-level changes from model `a` to model `b`, meta graphs matched by tag set.

    Each `Change` has the meta graph's `tags`, the `signature`, a `kind` (`signature-renamed`,
    `input-added`, `output-dtype`, `method`, ...) and a `detail`. A signature renamed and edited
    shows as `signature-renamed` and then the edit's changes under the new key. `graph_diff`
    compares the graphs.

    Example:
        >>> before = surgery.load("my_model")
        >>> after = surgery.rename_output(surgery.load("my_model"), "masked", "alpha", "zeta")
        >>> [(c.kind, c.detail) for c in surgery.diff(before, after)][0]
        ('output-renamed', 'alpha -> zeta')
    """
    a, b = as_model(a), as_model(b)
    out: list[Change] = []
    eq = Equal(a, b)
    for label, meta_a, meta_b in matched_meta_graphs(a, b):
        if meta_b is None:
            out.append(_change(tags=label, signature=None, kind="meta-graph-removed", detail=",".join(label)))
        elif meta_a is None:
            out.append(_change(tags=label, signature=None, kind="meta-graph-added", detail=",".join(label)))
        else:
            identity = _Identity(meta_a, meta_b, eq)
            out += _signature_changes(label, v1_signatures(meta_a), v1_signatures(meta_b), identity)
    return out
