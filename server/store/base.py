"""The Store interface every backend implements (SQLite and PostgreSQL).

The interface is synchronous and thread-safe: the gRPC server runs handlers on a
thread pool (the faster grpcio flavour on this machine, see README "Design
notes"), and each backend batches concurrent writes into one transaction
(group commit) so durability does not cost throughput. Any method may raise
StoreUnavailable (UNAVAILABLE) while the database cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from server.store.group_commit import Job
from server.store.rows import (
    ClientEventRow,
    EventQuery,
    EventRow,
    OperationRecord,
    ProductCheck,
    Progress,
    Step,
    StepResult,
)


class Store(Protocol):
    def write_user_events(self, rows: Sequence[EventRow], *, wait: bool = True) -> None:
        """Store `rows`, skipping exact duplicates. With `wait`, returns once they are
        committed (durable); without, at once (the next batch, or `close`, commits them)."""

    def count_user_events(self, query: EventQuery) -> int:
        """How many stored events `query` selects."""

    def list_user_events(self, query: EventQuery, limit: int,
                         after_id: int = 0) -> list[tuple[int, bytes]]:
        """Up to `limit` (row id, serialized UserEvent) pairs with id > `after_id`,
        in id order."""

    def event_id_range(self, query: EventQuery) -> tuple[int, int] | None:
        """(first, last) row ids between which every event `query` selects now lies,
        judged by its catalog and time terms alone (None: there is none): where a
        purge's walk starts and ends."""

    def catalogs_with_events_before(self, time_us: int) -> list[str]:
        """The catalogs holding at least one event older than `time_us`, in order."""

    def scan_user_events(self, query: EventQuery, limit: int,
                         after_id: int = 0) -> list[tuple[int, bytes, bytes | None]]:
        """Like list_user_events, with each event's as-received form (or None)."""

    def create_client_event(self, row: ClientEventRow) -> tuple[bytes, bool]:
        """Insert `row` unless its (tenant, event_id) exists; the stored payload and
        whether this call created it."""

    def flush(self) -> None:
        """Wait until every write accepted so far is committed."""

    def on_commit(self, listener: Callable[[list[Job]], None] | None) -> None:
        """From now on call `listener(jobs)` after each committed write transaction
        (for metrics), on the writer thread, with the batch's jobs: their futures are
        resolved (`job.rows` were stored; a function job's result, e.g. a run_step's
        StepResult, or its error). One listener at a time (None: none); what it raises
        is logged and never fails a write, but it holds up the next batch: keep it short.
        """

    def healthy(self) -> bool:
        """Whether the database answers now (health reports NOT_SERVING while not)."""

    def close(self) -> None:
        """Flush, then release every resource. Idempotent."""

    # -- products (branch is a full branch name with a numeric branch id) -----

    def get_products(self, branch: str, product_ids: Sequence[str]) -> dict[str, bytes]:
        """The serialized Products of `branch` among `product_ids` that exist."""

    def list_products(self, branch: str, limit: int, after_id: str = "") -> list[tuple[str, bytes]]:
        """Up to `limit` (product_id, serialized Product) with id > `after_id`, by id."""

    def create_product(self, branch: str, product_id: str, payload: bytes,
                       check: ProductCheck | None = None) -> bool:
        """Insert unless present (False when it exists). `check(payload, products)`
        runs first, in the same transaction; what it raises is raised here, nothing written."""

    def update_product(self, branch: str, product_id: str,
                       change: Callable[[bytes | None], bytes | None],
                       check: ProductCheck | None = None) -> bytes | None:
        """Atomically replace the product with `change(current)` (None: leave as is),
        `check(updated, products)` first in the same transaction; what is stored after."""

    def delete_product(self, branch: str, product_id: str,
                       check: ProductCheck | None = None) -> bool:
        """Delete; False when there was nothing to delete.

        `check(current, products)` says whether the delete may go (what it raises is
        raised here). It runs on a recent read, off the writer, and again inside the
        delete's transaction only if a product of the branch was written since: the
        delete commits only if the check holds for what it commits against.
        """

    # -- long-running operations ------------------------------------------

    def create_operation(self, record: OperationRecord) -> bool:
        """Store a new operation (not done, no lease); False, storing nothing, when
        an operation of that name exists."""

    def get_operation(self, name: str) -> OperationRecord | None: ...

    def list_operations(self, prefix: str, done: bool | None, limit: int,
                        after: tuple[int, str] | None = None) -> list[OperationRecord]:
        """Operations whose name starts with `prefix`, oldest first, after the
        (create_time_us, name) position `after`."""

    def delete_operation(self, name: str) -> bool: ...

    def request_cancel(self, name: str) -> OperationRecord | None:
        """Mark a running operation as to be cancelled; the record, or None."""

    def claim_operation(self, owner: str, now_us: int, lease_us: int,
                        can_take: Callable[[str], bool],
                        kinds: Collection[str] | None = None) -> OperationRecord | None:
        """Take the oldest unfinished operation that nobody holds (no lease, an
        expired one, or one `can_take(owner)` says is dead) and lease it to `owner`.
        With `kinds`, only an operation of one of those kinds (None: any kind)."""

    def run_step(self, name: str, owner: str, step: Step, lease_until_us: int,
                 progress: Callable[[StepResult], Progress]) -> StepResult:
        """Apply `step` and record `progress(result)` in one transaction; LeaseLost
        (nothing written) when `owner` no longer holds `name`."""

    def release_operation(self, name: str, owner: str) -> None:
        """Give up the lease (on shutdown) so the next start resumes at once."""
