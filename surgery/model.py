"""A SavedModel as read from disk: `Model`, its file names and formats, and `parse`.

Every module that reads or edits a model needs `Model`; none of them needs the disk layer
(`surgery.storage`), which reads and writes models and imports this module. A model is kept as
it was read, so that an unedited one is written back byte for byte: `source` holds the bytes of
its `saved_model.pb` (or `saved_model.pbtxt`), and a large model leaves its big byte fields on disk
(`holes`, see `surgery.lazy` and, for text, `surgery.text_holes`) until it is written or closed.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from google.protobuf.descriptor import Descriptor

from surgery.lazy import Holes, Piece
from surgery.schema import SavedModel, from_text
from surgery.text_holes import render_text

PB = "saved_model.pb"
PBTXT = "saved_model.pbtxt"
CPB = "saved_model.cpb"
FINGERPRINT = "fingerprint.pb"
Format = Literal["pb", "pbtxt"]

SAVED_MODEL_DESCRIPTOR = cast(Descriptor, SavedModel.DESCRIPTOR)
"""The descriptor of `SavedModel`, as `surgery.lazy` walks the wire format by it."""


@dataclass
class Model:
    """A SavedModel read from disk: its proto, and where and how it was stored.

    A large model is read lazily: `holes` then holds the byte fields left on disk (see
    `surgery.lazy`), the proto has short tokens in their place, and `source` is the file with
    those tokens; `serialize()` gives every byte. `format` is the format the model is written in;
    `read_as`, set by `convert`, the one `source` is in (the model is then rendered anew).
    """

    proto: SavedModel
    path: Path
    format: Format = "pb"
    source: bytes = field(default=b"", repr=False)
    stamp: tuple[int, int, int] | None = field(default=None, repr=False, compare=False)
    holes: Holes | None = field(default=None, repr=False, compare=False)
    read_as: Format | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        """One line: where, the format, and each meta graph's tags and signatures (not the proto)."""
        metas = "; ".join(
            f"[{','.join(meta.meta_info_def.tags)}] {', '.join(sorted(meta.signature_def))}"
            for meta in self.proto.meta_graphs
        )
        return f"Model({str(self.path)!r}, format={self.format!r}, meta graphs: {metas or 'none'})"

    @property
    def file_name(self) -> str:
        """`saved_model.pb` or `saved_model.pbtxt`, as `format` says."""
        return PB if self.format == "pb" else PBTXT

    @property
    def source_format(self) -> Format:
        """The format of `source`: the one the model was read in."""
        return self.read_as or self.format

    @property
    def edited(self) -> bool:
        return not self.unchanged(self.serialize_shrunk())

    def unchanged(self, data: bytes) -> bool:
        """Whether `data`, the current serialization, is the model as it was read.

        Decided at write time, so that reading (show, check) never pays a serialization: the
        source is parsed again only when the bytes differ from it (an edit, a text-format
        model, or a file some other writer did not serialize canonically).
        """
        if self.source_format == "pb" and data == self.source:
            return True
        original = parse(self.source, self.source_format)
        return original.SerializeToString(deterministic=True) == data

    def serialize(self) -> bytes:
        """Deterministic binary serialization (map entries sorted), as TensorFlow writes it.

        All of it in memory, holes filled: `save` streams instead.
        """
        data = self.serialize_shrunk()
        if self.holes is None:
            return data
        return b"".join(bytes(c) for c in self.holes.chunks(self.pieces(data)))

    def serialize_shrunk(self) -> bytes:
        """The serialization of `proto` as it is: with the holes' tokens in a lazily read model."""
        return self.proto.SerializeToString(deterministic=True)

    def rendering(self, data: bytes) -> list[Piece]:
        """The contents of the model file in `format`, for `data`, a serialization of this model."""
        if self.format == "pbtxt":
            return render_text(self.proto, self.holes)
        return self.pieces(data)

    def pieces(self, data: bytes) -> list[Piece]:
        """The file contents for `data`, a serialization of this model: spans for the holes."""
        if self.holes is None:
            return [data]
        return self.holes.expand(data, SAVED_MODEL_DESCRIPTOR)

    def close(self) -> None:
        """Let go of the model file a lazily read model keeps open (the model is unusable after).

        If an in-place save replaced that file, this was its last reference: the kernel frees
        its blocks here, which takes a while for a large file on some file systems, so a large
        one is let go by a short-lived background process instead (`let_go`) and the command
        does not wait for it.
        """
        fd = self.holes.detach() if self.holes is not None else None
        if fd is not None:
            let_go(fd)


def parse(data: bytes, fmt: Format) -> SavedModel:
    """The SavedModel in `data` (binary or text format); protobuf's errors as they come."""
    proto = SavedModel()
    if fmt == "pb":
        proto.ParseFromString(data)
    else:
        from_text(data.decode("utf-8"), proto)
    return proto


FREE_IN_BACKGROUND = 64 << 20
"""A deleted file at least this large is let go by a background process (`let_go`)."""


def let_go(fd: int) -> None:
    """Close `fd`; if it is the last reference to a large deleted file, in a background process.

    Closing the last reference frees the file's blocks, which can take as long as writing them
    (see docs/storage.md). A process spawned with the descriptor inherited holds it instead, and
    the kernel frees the file when that process ends, moments later. Never a leftover: the file
    has no name, and if the process is killed or the machine stops, the kernel (or the file
    system's orphan list at the next mount) frees it all the same.
    """
    try:
        info = os.fstat(fd)
        if info.st_nlink != 0 or info.st_size < FREE_IN_BACKGROUND or not sys.executable:
            return
        os.set_inheritable(fd, True)
        null = [(os.POSIX_SPAWN_OPEN, n, os.devnull, os.O_RDWR, 0) for n in (0, 1, 2)]
        pid = os.posix_spawn(
            sys.executable, [sys.executable, "-S", "-I", "-c", ""], {}, file_actions=null, setsid=True
        )
        # Reaped by a thread, so that a long-lived caller keeps no zombie; a command that ends
        # first leaves it to init.
        threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    except (OSError, AttributeError, NotImplementedError):  # no posix_spawn or setsid: the close frees it
        pass
    finally:
        os.close(fd)


ModelLike = Model | str | os.PathLike[str]
"""What the functions that read a model take: a `Model`, or the path of its directory."""
