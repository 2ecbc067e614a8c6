"""The bytes literals of protobuf's text format, in C (see surgery.text_holes)."""

from typing_extensions import Buffer

ScanState = tuple[int, int, int, int, int, int]

START_STATE: ScanState

def escape(data: Buffer, /) -> bytes: ...
def unescape(text: Buffer, final: bool, /) -> tuple[bytes, int]: ...
def scan(
    window: Buffer, base: int, minimum: int, state: ScanState, /
) -> tuple[list[tuple[int, int, int]], ScanState]: ...
