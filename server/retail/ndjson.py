"""Lines of a newline-delimited JSON file, each at most MAX_LINE_BYTES long.

A line longer than that is skipped in bounded chunks, never held in memory:
a 2 GB file of one line costs as little memory as a file of small lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

# One line is one event or product. Footfall's write paths take events of up to
# 1 MiB by default (--max-event-bytes); JSON spends more bytes than the binary
# form, so a line gets a quarter more.
MAX_LINE_BYTES = 1024 * 1024 + 256 * 1024
SKIP_CHUNK = 1024 * 1024  # what is read at a time while skipping an over-long line

# readline(READ_LIMIT) answers a whole line of up to MAX_LINE_BYTES, or, for a
# longer line, its first READ_LIMIT bytes without a newline: skip_rest then.
READ_LIMIT = MAX_LINE_BYTES + 1


def skip_rest(handle: BinaryIO, between_chunks: Callable[[], None]) -> int:
    """Read past the rest of a cut line, SKIP_CHUNK at a time, calling
    `between_chunks` before each read (it may raise to stop); returns the bytes
    skipped, its newline included."""
    skipped = 0
    while True:
        between_chunks()
        chunk = handle.readline(SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def too_long(size: int) -> str:
    """Why a line of `size` bytes was skipped."""
    return (f"the line is {size} bytes; a line (one item) may hold at most "
            f"{MAX_LINE_BYTES} bytes")
