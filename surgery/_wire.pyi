"""C++'s deterministic map order for serialized protobuf bytes, in C (see surgery.wire)."""

from typing_extensions import Buffer

def canonicalize(buf: Buffer, table: tuple[bytes, ...], root: int, /) -> str | None: ...
