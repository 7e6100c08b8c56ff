"""Lines of a newline-delimited JSON file, each at most MAX_LINE_BYTES long.

A line longer than that is skipped in bounded chunks, never held in memory:
a 2 GB file of one line costs as little memory as a file of small lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from server.config import Settings


def line_limit(max_event_bytes: int) -> int:
    """The longest line an import reads, for events of up to `max_event_bytes`
    (--max-event-bytes): JSON spends more bytes than the binary form, so a line gets
    a quarter more. A reader asks readline for one byte more: a line of up to the
    limit comes whole, a longer one cut and without its newline (skip_rest then)."""
    return max_event_bytes + max_event_bytes // 4


# One line is one event or product: 2.5 MiB at the default --max-event-bytes.
MAX_LINE_BYTES = line_limit(Settings.max_event_bytes)
SKIP_CHUNK = 1024 * 1024  # what is read at a time while skipping an over-long line


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


def too_long(field: str, what: str, size: int, limit: int = MAX_LINE_BYTES) -> str:
    """Why a line of `size` bytes, holding the `field` (user_event, product) of one
    `what` (event, product), was skipped: named as a violation of its item is."""
    return (f"{field}: its line is {size} bytes; a line (one {what}) may hold at most "
            f"{limit} bytes")
