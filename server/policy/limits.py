"""How many bytes one event may take, on every path an event enters: writes and
pixels (gRPC and HTTP), talent client events and import lines.

Measured as the event's serialized size, before its fields are checked (an
oversized event is refused without looking further). An event that its products,
filled in from the catalog, would make larger is stored not joined (join.join_within).
"""

from __future__ import annotations

from typing import Any

from server.errors import FieldViolation

# The request types whose field holds one event, held to --max-event-bytes serialized
# by their servicers: past it, its size is the event's one violation.
EVENT_FIELDS = {
    "google.cloud.retail.v2.WriteUserEventRequest": "user_event",
    "google.cloud.retail.v2beta.WriteUserEventRequest": "user_event",
    "google.cloud.retail.v2alpha.WriteUserEventRequest": "user_event",
    "google.cloud.talent.v4.CreateClientEventRequest": "client_event",
    "google.cloud.talent.v4beta1.CreateClientEventRequest": "client_event",
}


def event_size_violation(event: Any, path: str, limit: int) -> FieldViolation | None:
    """`path: is N bytes; at most LIMIT` when `event` serializes to more than
    `limit` bytes, else None. ByteSize runs in C: cheap next to decoding."""
    found = event.ByteSize()
    if found <= limit:
        return None
    return size_violation(found, path, limit)


def size_violation(found: int, path: str, limit: int, at_least: bool = False) -> FieldViolation:
    """`path: is N bytes; at most LIMIT`, of an event of `found` bytes (more than `limit`);
    `at_least`: `found` is a lower bound (`is at least N bytes`), counted of its JSON."""
    return FieldViolation(path, f"is {'at least ' if at_least else ''}{found} bytes; "
                                f"at most {limit}")
