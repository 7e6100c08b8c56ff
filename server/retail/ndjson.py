"""Lines of a newline-delimited JSON file, each at most MAX_LINE_BYTES long.

A line longer than that is skipped in bounded chunks, never held in memory:
a 2 GB file of one line costs as little memory as a file of small lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

# One line is one event or product. Footfall's write paths take events of up to
# 1 MiB by default (--max-event-bytes); JSON spends more bytes than the binary
# form, so a line gets a quarter more.
MAX_LINE_BYTES = 1024 * 1024 + 256 * 1024
SKIP_CHUNK = 1024 * 1024  # what is read at a time while skipping an over-long line

# (the line, or None when it was longer than MAX_LINE_BYTES; the bytes it takes in
# the file, its newline included)
Line = tuple[bytes | None, int]


def read_lines(handle: BinaryIO, between_chunks: Callable[[], None]) -> Iterator[Line]:
    """The lines of `handle` from where it stands. `between_chunks` is called while an
    over-long line is skipped, between reads (it may raise to stop)."""
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
            yield raw, len(raw)
            continue
        size = len(raw)
        del raw
        while True:
            between_chunks()
            chunk = handle.readline(SKIP_CHUNK)
            size += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        yield None, size


def too_long(size: int) -> str:
    """Why a line of `size` bytes was skipped."""
    return (f"the line is {size} bytes; a line (one item) may hold at most "
            f"{MAX_LINE_BYTES} bytes")
