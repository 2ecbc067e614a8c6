"""`diff`: what differs between two SavedModels, signature by signature."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from surgery.io import Model
from surgery.signatures import Signature, TensorSpec, v1_signatures

if TYPE_CHECKING:
    from surgery.reports import Change


class _Change(NamedTuple):
    """A `Change`'s fields: the report (a pydantic model) is made once the walk is done."""

    tags: list[str]
    signature: str | None
    kind: str
    detail: str


def _io_changes(
    tags: list[str], key: str, side: str, a: dict[str, TensorSpec], b: dict[str, TensorSpec]
) -> list[_Change]:
    out = []
    removed = {k: a[k] for k in a if k not in b}
    added = {k: b[k] for k in b if k not in a}
    for old, spec in sorted(removed.items()):
        # A rename keeps dtype and shape; a reordering rename may also move the tensor.
        candidates = [n for n, o in sorted(added.items()) if o == spec]
        candidates += [n for n, o in sorted(added.items()) if (o.dtype, o.shape) == (spec.dtype, spec.shape)]
        if candidates:
            new = candidates[0]
            out.append(_Change(tags=tags, signature=key, kind=f"{side}-renamed", detail=f"{old} -> {new}"))
            if added[new].name != spec.name:
                detail = f"{new}: {spec.name} -> {added[new].name}"
                out.append(_Change(tags=tags, signature=key, kind=f"{side}-tensor", detail=detail))
            del added[new]
        else:
            out.append(_Change(tags=tags, signature=key, kind=f"{side}-removed", detail=old))
    out += [_Change(tags=tags, signature=key, kind=f"{side}-added", detail=k) for k in sorted(added)]
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.dtype != y.dtype:
            out.append(
                _Change(
                    tags=tags, signature=key, kind=f"{side}-dtype", detail=f"{name}: {x.dtype} -> {y.dtype}"
                )
            )
        if x.shape != y.shape:
            out.append(
                _Change(
                    tags=tags, signature=key, kind=f"{side}-shape", detail=f"{name}: {x.shape} -> {y.shape}"
                )
            )
        if x.name != y.name:
            out.append(
                _Change(
                    tags=tags, signature=key, kind=f"{side}-tensor", detail=f"{name}: {x.name} -> {y.name}"
                )
            )
    return out


def _signature_changes(tags: list[str], a: dict[str, Signature], b: dict[str, Signature]) -> list[_Change]:
    out = []
    removed = {k: a[k] for k in a if k not in b}
    added = {k: b[k] for k in b if k not in a}
    for old, sig in sorted(removed.items()):
        match = next((new for new, other in sorted(added.items()) if other == sig), None)
        if match is not None:
            out.append(
                _Change(tags=tags, signature=old, kind="signature-renamed", detail=f"{old} -> {match}")
            )
            del added[match]
        else:
            out.append(_Change(tags=tags, signature=old, kind="signature-removed", detail=old))
    out += [_Change(tags=tags, signature=k, kind="signature-added", detail=k) for k in sorted(added)]
    for key in sorted(set(a) & set(b)):
        if a[key].method_name != b[key].method_name:
            detail = f"{a[key].method_name or '(none)'} -> {b[key].method_name or '(none)'}"
            out.append(_Change(tags=tags, signature=key, kind="method", detail=detail))
        out += _io_changes(tags, key, "input", a[key].inputs, b[key].inputs)
        out += _io_changes(tags, key, "output", a[key].outputs, b[key].outputs)
    return out


def diff(a: Model, b: Model) -> list[Change]:
    """Signature-level changes from model `a` to model `b`, meta graphs matched by tag set.

    Each `Change` has the meta graph's `tags`, the `signature`, a `kind` (`signature-renamed`,
    `input-added`, `output-dtype`, `method`, ...) and a `detail`.

    Example:
        >>> before = surgery.load("my_model")
        >>> after = surgery.rename_output(surgery.load("my_model"), "masked", "alpha", "zeta")
        >>> [(c.kind, c.detail) for c in surgery.diff(before, after)][0]
        ('output-renamed', 'alpha -> zeta')
    """
    metas_a = {frozenset(m.meta_info_def.tags): m for m in a.proto.meta_graphs}
    metas_b = {frozenset(m.meta_info_def.tags): m for m in b.proto.meta_graphs}
    out: list[_Change] = []
    for tags in sorted(metas_a.keys() | metas_b.keys(), key=sorted):
        label = sorted(tags)
        if tags not in metas_b:
            out.append(_Change(tags=label, signature=None, kind="meta-graph-removed", detail=",".join(label)))
        elif tags not in metas_a:
            out.append(_Change(tags=label, signature=None, kind="meta-graph-added", detail=",".join(label)))
        else:
            out += _signature_changes(label, v1_signatures(metas_a[tags]), v1_signatures(metas_b[tags]))
    from surgery.reports import Change

    return [Change(**change._asdict()) for change in out]
