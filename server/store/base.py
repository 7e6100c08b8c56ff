"""The Store interface every backend implements (SQLite now, PostgreSQL later).

The interface is synchronous and thread-safe: the gRPC server runs handlers on a
thread pool (the faster grpcio flavour on this machine, see README "Design
notes"), and each backend batches concurrent writes into one transaction
(group commit) so durability does not cost throughput.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from server.store.rows import ClientEventRow, EventQuery, EventRow


class Store(Protocol):
    def write_user_events(self, rows: Sequence[EventRow], *, wait: bool = True) -> None:
        """Store `rows`, skipping exact duplicates.

        With `wait`, returns once they are committed (durable); without, returns at
        once and the rows are committed in the next batch (flushed by `close`).
        """

    def count_user_events(self, query: EventQuery) -> int:
        """How many stored events `query` selects."""

    def list_user_events(self, query: EventQuery, limit: int,
                         after_id: int = 0) -> list[tuple[int, bytes]]:
        """Up to `limit` (row id, serialized UserEvent) pairs with id > `after_id`,
        in id order."""

    def create_client_event(self, row: ClientEventRow) -> tuple[bytes, bool]:
        """Insert `row` unless its (tenant, event_id) exists.

        Returns the stored payload and whether this call created it.
        """

    def flush(self) -> None:
        """Wait until every write accepted so far is committed."""

    def close(self) -> None:
        """Flush, then release every resource. Idempotent."""
