"""`convert`: a SavedModel as text (`saved_model.pbtxt`) for review and diff, and back to binary.

Text format is what `SavedModelBuilder.save(as_text=True)` writes and what both TensorFlow loaders
read. Both directions go through the same proto: `pb -> pbtxt -> pb` gives back the original
`saved_model.pb` byte for byte when TensorFlow wrote it (its serialization is deterministic).

`fingerprint.pb` hashes the model's content, not its file: every hash is taken over the
deterministic binary serialization of the proto, which a text copy parses back to. TensorFlow's
`CreateFingerprintDef` only reads `saved_model.pb` (or `.cpb`) and fails on a text-only model, and
its text writer writes no fingerprint; its loaders read `fingerprint.pb` when present, whatever the
model file. So a conversion keeps `fingerprint.pb` as it is while it matches the content (and a
round trip is byte-exact, fingerprint included), and writes the fingerprint TensorFlow would
compute for the content, with a new uuid, when it does not (a hand-edited `saved_model.pbtxt`).
A model without `fingerprint.pb` (TF1) gets none.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from surgery.errors import EditError, SurgeryWarning
from surgery.fingerprint import UnreadableIndex, checkpoint_hash, compute_fingerprint
from surgery.model import FINGERPRINT, PB, PBTXT, Format, Model
from surgery.schema import FingerprintDef
from surgery.storage import load, save

if TYPE_CHECKING:
    from surgery.reports import ConvertResult, FingerprintAction

FORMATS: tuple[Format, ...] = ("pbtxt", "pb")
HASHES = (
    "saved_model_checksum",
    "graph_def_program_hash",
    "signature_def_hash",
    "saved_object_graph_hash",
    "checkpoint_hash",
)


def fingerprint_state(model: Model) -> FingerprintAction:
    """`kept` when the model's fingerprint.pb matches its content, `rewritten` when stale, else `none`.

    `rewritten` is also what an unreadable fingerprint.pb gets. A model TensorFlow could not
    fingerprint (a function name without a numeric suffix) keeps whatever it has. When the
    checkpoint index is there but cannot be read, a fingerprint.pb whose other hashes match is
    kept as it is, with a warning (its checkpoint_hash cannot be checked, and the conversion does
    not touch the checkpoint); a stale one cannot be recomputed, and the conversion is refused
    (`UnreadableIndex`): a wrong fingerprint.pb is never written.
    """
    path = model.path / FINGERPRINT
    if not path.is_file():
        return "none"
    computed = compute_fingerprint(
        model.proto, model.serialize_shrunk(), model.path, model.holes, checkpoint=False
    )
    if computed is None:
        return "kept"
    try:
        stored = FingerprintDef.FromString(path.read_bytes())
    except (DecodeError, OSError):
        stored = None
    content = [f for f in HASHES if f != "checkpoint_hash"]
    same = stored is not None and all(getattr(stored, f) == getattr(computed, f) for f in content)
    try:
        index_hash = checkpoint_hash(model.path)
    except UnreadableIndex as err:
        if not same:
            raise
        warnings.warn(
            SurgeryWarning(
                f"cannot read {err.index} ({err.reason}): fingerprint.pb is kept as it is, its "
                "checkpoint_hash unchecked"
            ),
            stacklevel=3,
        )
        return "kept"
    return "kept" if same and stored is not None and stored.checkpoint_hash == index_hash else "rewritten"


def converted(model: Model, to: Format) -> tuple[Model, FingerprintAction]:
    """`model` stored as `to`, ready for `surgery.save`, and what saving does to fingerprint.pb.

    The copy is the same model (its holes, big fields left on disk, included) to be written in
    format `to`: `save` renders it and carries fingerprint.pb over; for a stale fingerprint the
    source is left empty, which `save` treats as an edit and so writes a freshly computed
    fingerprint.
    """
    state = fingerprint_state(model)
    source = b"" if state == "rewritten" else model.source
    copy = Model(
        proto=model.proto,
        path=model.path,
        format=to,
        source=source,
        stamp=model.stamp,
        holes=model.holes,
        read_as=model.source_format,
    )
    return copy, state


def convert(
    model: Model | str | os.PathLike[str],
    output: str | os.PathLike[str],
    to: Format | None = None,
    *,
    force: bool = False,
    sync: bool = True,
) -> ConvertResult:
    """Write `model` (loaded, or the directory to load) to the new directory `output` in format `to`
    (`"pb"` or `"pbtxt"`; by default the other format than the model's).

    Every other file (variables/, assets/, ...) is carried over as `save` does, and `sync` is
    `save`'s. Raises a `SurgeryError` (nothing written) when the model cannot be read or the
    output is refused.

    Example:
        >>> result = surgery.convert("my_model", "my_model_text", "pbtxt")
        >>> result.file, result.fingerprint
        ('saved_model.pbtxt', 'kept')
        >>> surgery.load("my_model_text").format
        'pbtxt'
    """
    from surgery.reports import ConvertResult

    if to is not None and to not in FORMATS:
        raise EditError(f"unknown format {to!r}: give 'pbtxt' (text) or 'pb' (binary)")
    if not isinstance(model, Model):
        model = load(model)
    if to is None:
        to = "pb" if model.format == "pbtxt" else "pbtxt"
    copy, state = converted(model, to)
    out = save(copy, output, force=force, sync=sync)
    name = PBTXT if to == "pbtxt" else PB
    return ConvertResult(
        input=str(model.path),
        output=str(out),
        source_format=model.format,
        format=to,
        file=name,
        bytes=(Path(out) / name).stat().st_size,
        fingerprint=state,
    )
