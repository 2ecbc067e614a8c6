"""Edits: functions that take a model, change it in memory and return it.

Each edit validates everything before it touches anything, so a refused edit leaves the
model as it was. The CLI and plan runner are thin layers over these functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from surgery.errors import EditError
from surgery.io import Model
from surgery.schema import MetaGraphDef
from surgery.signatures import RESERVED_KEYS, signature_map_node


def parse_tag_set(tags: str | Iterable[str]) -> frozenset[str]:
    """`serve,gpu` (or a list of tags) to a tag set."""
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    tag_set = frozenset(t.strip() for t in items if t.strip())
    if not tag_set:
        raise EditError("empty tag set: give comma-separated tags such as serve or serve,gpu")
    return tag_set


def _tags(meta: MetaGraphDef) -> str:
    return ",".join(meta.meta_info_def.tags)


def meta_graphs_with(model: Model, signature: str, tag_set: frozenset[str] | None) -> list[MetaGraphDef]:
    """The meta graphs an edit of `signature` applies to, or a one-line refusal.

    With a tag set: the meta graph with exactly that set, which must have the signature.
    Without: every meta graph that has the signature; at least one must.
    """
    metas = list(model.proto.meta_graphs)
    if tag_set is not None:
        chosen = [m for m in metas if frozenset(m.meta_info_def.tags) == tag_set]
        if not chosen:
            have = "; ".join(_tags(m) for m in metas)
            raise EditError(
                f"no meta graph has tag set {','.join(sorted(tag_set))!r} (the model has: {have})"
            )
        missing = [m for m in chosen if signature not in m.signature_def]
        if missing:
            raise EditError(
                f"meta graph {_tags(missing[0])!r} has no signature {signature!r}: "
                f"it has {', '.join(sorted(missing[0].signature_def)) or 'none'}"
            )
        return chosen
    chosen = [m for m in metas if signature in m.signature_def]
    if not chosen:
        keys = sorted({k for m in metas for k in m.signature_def if k not in RESERVED_KEYS})
        raise EditError(f"no signature {signature!r} in the model: it has {', '.join(keys) or 'none'}")
    return chosen


def _refuse_reserved(*keys: str) -> None:
    for key in keys:
        if key in RESERVED_KEYS:
            raise EditError(
                f"{key!r} is a reserved signature key that TensorFlow manages: it cannot be edited"
            )


def rename_signature(model: Model, old: str, new: str, *, tag_set: frozenset[str] | None = None) -> Model:
    """Rename signature key `old` to `new`, in `signature_def` and in the object graph's signature map."""
    _refuse_reserved(old, new)
    if not new:
        raise EditError("the new signature key is empty: give a name such as serving_default")
    metas = meta_graphs_with(model, old, tag_set)
    if old == new:
        return model
    for meta in metas:
        if new in meta.signature_def:
            raise EditError(
                f"meta graph {_tags(meta)!r} already has a signature {new!r}: remove or rename it first"
            )
    for meta in metas:
        meta.signature_def[new].CopyFrom(meta.signature_def[old])
        del meta.signature_def[old]
        graph = meta.object_graph_def
        map_id = signature_map_node(graph)
        if map_id is not None and 0 <= map_id < len(graph.nodes):
            for child in graph.nodes[map_id].children:
                if child.local_name == old:
                    child.local_name = new
    return model
