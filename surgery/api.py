"""The public entry points for reading and writing models: `load` (alias `open`) and `save`.

They are `surgery.io`'s, documented for users (the examples run in the test-suite, from a
directory holding a copy of a bundled model called `my_model`).
"""

from __future__ import annotations

import os
from pathlib import Path

from surgery import io
from surgery.io import Model


def load(path: str | os.PathLike[str], *, lazy: bool = True) -> Model:
    """Read the SavedModel in directory `path` (`saved_model.pb` or `saved_model.pbtxt`).

    Nothing else is read: `variables/`, `assets/` and other files stay on disk and are carried
    over by `save`. TensorFlow is never imported.

    Args:
        path: the SavedModel directory.
        lazy: leave a large `saved_model.pb`'s big byte fields (large constants) on disk until
            the model is written, so memory stays small (the default); False reads it all.

    Returns:
        The model: its `proto` (a `SavedModel` message), `path` and `format` (`"pb"` or `"pbtxt"`).

    Raises:
        SavedModelIOError: the directory is missing, unreadable or holds no model file.
        SchemaError: the model file is not a valid SavedModel.

    Example:
        >>> model = surgery.load("my_model")
        >>> model.format, sorted(model.proto.meta_graphs[0].meta_info_def.tags)
        ('pb', ['serve'])
        >>> "serving_default" in model.proto.meta_graphs[0].signature_def
        True
    """
    return io.load(path, lazy=lazy)


open = load  # `surgery.open(path)`; left out of `surgery.__all__`, so `import *` never shadows the builtin


def save(
    model: Model,
    output: str | os.PathLike[str] | None = None,
    *,
    in_place: bool = False,
    force: bool = False,
) -> Path:
    """Write `model` to the new directory `output`, or over its own files with `in_place=True`.

    The output is built beside `output` and renamed into place when complete; `variables/`,
    `assets/` and every other file of the model's directory come along (hard-linked where the
    file system allows). An unedited model is written byte for byte as it was read; an edited
    one gets TensorFlow's deterministic serialization and a recomputed `fingerprint.pb`.

    Args:
        model: a model from `load`, edited or not.
        output: the new directory (refused if it exists, unless `force`).
        in_place: replace the model's own `saved_model.pb` and `fingerprint.pb` instead.
        force: replace an existing `output` (atomically).

    Returns:
        The directory written.

    Raises:
        SavedModelIOError: the output exists, is inside the input, or cannot be written;
            nothing was written.

    Example:
        >>> model = surgery.rename_signature(surgery.load("my_model"), "fixed", "fixed_v2")
        >>> surgery.save(model, "saved_copy")
        PosixPath('saved_copy')
        >>> "fixed_v2" in surgery.load("saved_copy").proto.meta_graphs[0].signature_def
        True
    """
    return io.save(model, output, in_place=in_place, force=force)
