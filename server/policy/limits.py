"""How many bytes one event may take, on every path an event enters: writes and
pixels (gRPC and HTTP), talent client events and import lines.

Measured as the event's serialized size, once before its fields are checked (an
oversized event is refused without looking further) and once more after its
products are filled in from the catalog, since that is what is stored and what
WriteUserEvent answers: a client accepts answers of at most 4 MiB by default.
"""

from __future__ import annotations

from typing import Any

from server.errors import FieldViolation


def event_size_violation(event: Any, path: str, limit: int,
                         joined: bool = False) -> FieldViolation | None:
    """`path: is N bytes; at most LIMIT` when `event` serializes to more than
    `limit` bytes, else None; `joined`: its products were filled in from the catalog
    (the stored event and the answer). ByteSize runs in C: cheap next to decoding."""
    found = event.ByteSize()
    if found <= limit:
        return None
    if joined:  # (its size then would tell a writer key how large a catalog product is)
        return FieldViolation(path, f"is over {limit} bytes once its products are filled "
                                    "in from the catalog")
    return FieldViolation(path, f"is {found} bytes; at most {limit}")
