"""The Store interface every backend implements (SQLite and PostgreSQL).

The interface is synchronous and thread-safe (coroutines call it through
`server.loop.off_loop`), except `write_user_events_async`, which the servicers
on the event loop await: each backend batches concurrent writes into one
transaction (group commit) so durability does not cost throughput, and answers
a batch's coroutines at once. Any method may raise
StoreUnavailable (UNAVAILABLE) while the database cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from server.store.console import (
    DataSetRow,
    KeptRejection,
    RejectionRow,
    ResetCounts,
    StoredClientEvent,
    StoredEvent,
)
from server.store.group_commit import Job, Join
from server.store.insights import EntrantEvents, TypedRow
from server.store.rows import (
    ClientEventQuery,
    ClientEventRow,
    CreatedClientEvent,
    EventQuery,
    EventRow,
    OperationRecord,
    ProductCheck,
    ProductsRead,
    Progress,
    Step,
    StepResult,
)


class Store(Protocol):
    def write_user_events(self, rows: Sequence[EventRow], *, wait: bool = True,
                          through_outage: bool = False) -> None:
        """Store `rows`, skipping exact duplicates. With `wait`, returns once they are
        committed (durable); without, at once (the next batch, or `close`, commits them).
        `through_outage` (without `wait`): rows nobody can send again (a browser's
        pixel) are queued while the store cannot commit, not refused (see queue_joined)."""

    async def write_user_events_async(self, rows: Sequence[EventRow], *,
                                      wait: bool = True) -> None:
        """write_user_events for a coroutine on a running loop: with `wait`, done
        once committed, costing no thread while it waits."""

    async def write_joined_async(self, join: Join, *, wait: bool = True) -> None:
        """write_user_events_async of the row `join` makes on the writer once it has
        read the products the event names (with those of the batch's other events);
        raises what `join.finish` raises, nothing written."""

    def queue_joined(self, join: Join, *, through_outage: bool = False) -> None:
        """write_joined_async without `wait`, for a caller that is no coroutine: queued
        for the next batch (an event `join.finish` refuses then is not stored, and told to
        `join.refused`);
        raises at once when rows nobody waits for cannot be accepted now. With
        `through_outage`, a store that cannot commit (PostgreSQL away, SQLite's disk
        full or its write lock held by another connection) is no such reason: the event
        is queued until it commits again, within the bounds of what waits for its commit."""

    @property
    def acknowledged_uncommitted(self) -> int:
        """Events written without `wait` that are not committed yet."""

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

    def newest_received_us(self) -> int | None:
        """When the last event stored was received (µs since 1970, by the clock of the
        server that took it); None when there is none, or it predates the column."""

    def scan_user_events(self, query: EventQuery, limit: int, after_id: int = 0,
                         max_bytes: int | None = None) -> list[tuple[int, bytes, bytes | None]]:
        """Like list_user_events, with each event's as-received form (or None); with
        `max_bytes`, ending with the event whose bytes (stored and received) pass it
        (a page holds at most one event more than fits): fewer than `limit` is then
        no end."""

    def create_client_event(self, row: ClientEventRow) -> CreatedClientEvent:
        """Insert `row` unless its (tenant, event_id) exists; the stored payload and
        whether this call created it."""

    def flush(self) -> None:
        """Wait until every write accepted so far is committed."""

    async def flush_async(self) -> None:
        """flush for a coroutine on a running loop, costing no thread while it waits."""

    def on_commit(self, listener: Callable[[list[Job]], None] | None) -> None:
        """From now on call `listener(jobs)` after each committed write transaction
        (for metrics), on the writer thread, with the batch's jobs: their futures are
        resolved (`job.rows` were stored; a function job's result, e.g. a run_step's
        StepResult, or its error). One listener at a time (None: none); what it raises
        is logged and never fails a write, but it holds up the next batch: keep it short.
        """

    def healthy(self) -> bool:
        """Whether the database answers now (health reports NOT_SERVING while not)."""

    @property
    def outages(self) -> int:
        """How many times the database was found unreachable since the store opened
        (by a write, a read or `healthy`): how the operation runner learns of an
        outage that its claims, writes that wait it out, never failed on."""

    def close(self) -> None:
        """Flush, then release every resource. Idempotent."""

    def page_token_key(self) -> bytes:
        """The secret that signs the page tokens of this store's lists, the same for
        every server on the store (server/page_tokens.py)."""

    def page_token_key_if_made(self) -> bytes | None:
        """page_token_key if one was made; None (and none made: a store that holds
        nothing else stays empty) when none was: no token can be of this store."""

    # -- products (branch is a full branch name with a numeric branch id) -----

    def get_products(self, branch: str, product_ids: Sequence[str]) -> dict[str, bytes]:
        """The serialized Products of `branch` among `product_ids` that exist."""

    def products_to_join(self, branch: str, product_ids: Sequence[str]) -> dict[str, bytes]:
        """get_products, for the writer's thread only (Join.read: the rows of its next
        batch), which may answer from what it read before if it makes sure, in the
        batch's transaction, that no product of `branch` changed since."""

    def read_products(self, branch: str, product_ids: Sequence[str]) -> ProductsRead:
        """get_products as a step made from them carries them (Step.products_read):
        with the ids asked for and the branch's generation before the read."""

    def list_products(self, branch: str, limit: int, after_id: str = "",
                      max_bytes: int | None = None) -> list[tuple[str, bytes]]:
        """Up to `limit` (product_id, serialized Product) with id > `after_id`, by id;
        with `max_bytes`, ending with the product that passes it (as
        scan_user_events)."""

    def create_product(self, branch: str, product_id: str, payload: bytes,
                       check: ProductCheck | None = None,
                       inventory_times: bytes | None = None) -> bool:
        """Insert unless present (False when it exists), with its inventory update
        times. `check(payload, products)` runs first, in the same transaction; what it
        raises is raised here, nothing written."""

    def update_product(self, branch: str, product_id: str,
                       change: Callable[[bytes | None], bytes | None],
                       check: ProductCheck | None = None,
                       inventory_times: Callable[[bytes | None], bytes] | None = None
                       ) -> bytes | None:
        """Atomically replace the product with `change(current)` (None: leave as is),
        `check(updated, products)` first in the same transaction; what is stored after.
        With `inventory_times`, its inventory update times become
        `inventory_times(current times)` (None when never set) in the same write."""

    def update_inventory(self, branch: str, product_id: str,
                         change: Callable[[bytes, bytes | None], tuple[bytes, bytes] | None],
                         record: OperationRecord | None = None) -> bool:
        """Atomically replace the product and its inventory update times (None when
        never set) with `change(product, times)` (None: leave both), and store the
        operation `record` with them; False, calling and storing nothing, when there
        is no such product."""

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

    def count_operations(self, prefix: str, done: bool | None) -> int:
        """How many operations list_operations would list over every page."""

    def delete_operation(self, name: str) -> bool: ...

    def forget_operations(self, ended_before_us: int) -> int:
        """Delete the operations that ended before `ended_before_us` (within a
        lease's length: see Statements.forget_operations); how many. A running
        operation is never deleted."""

    def request_cancel(self, name: str) -> OperationRecord | None:
        """Mark a running operation as to be cancelled; the record, or None."""

    def claim_operation(self, owner: str, now_us: int, lease_us: int,
                        can_take: Callable[[str], bool],
                        kinds: Collection[str] | None = None,
                        lapsed_before_us: int | None = None) -> OperationRecord | None:
        """Take the oldest unfinished operation that nobody holds (no lease, one that
        ran out before `lapsed_before_us` (None: `now_us`), or one `can_take(owner)`
        says is dead) and lease it to `owner`. With `kinds`, only an operation of one
        of those kinds (None: any kind). Taking it from a holder other than `owner`
        that still has its lease (dead, or whose lease ran out) counts a lost try:
        the record returned has it."""

    def run_step(self, name: str, owner: str, step: Step, lease_until_us: int,
                 progress: Callable[[StepResult], Progress]) -> StepResult:
        """Apply `step` and record `progress(result)` in one transaction; LeaseLost
        (nothing written) when `owner` no longer holds `name`, ProductsChanged (nothing
        written) when a product of `step.products_read` is no longer as read."""

    def release_operation(self, name: str, owner: str) -> None:
        """Give up the lease (on shutdown) so the next start resumes at once."""

    # -- insights (documented in server/store/insights.py) --------------------

    def typed_rows(self, query: EventQuery, bits: Mapping[str, int], entrant: str | None,
                   decode: Collection[str], limit: int,
                   after: tuple[int, int] | None = None) -> list[TypedRow]: ...

    def time_bounds(self, catalog: str) -> tuple[int, int] | None: ...

    def entrant_events(self, query: EventQuery, kinds: Mapping[str, str],
                       entrant: str) -> Iterator[EntrantEvents]: ...

    def visits(self, query: EventQuery, width_us: int
               ) -> Generator[tuple[int, str, str, int], None, None]: ...

    def product_days(self, catalog: str, first_day: int | None,
                     end_day: int | None) -> list[tuple[str, str, int, int, int, int, int, float]]:
        """The per-product rollups (rollups.py) of the catalog's days [first_day,
        end_day) (days since the epoch, UTC; None: no bound) summed per (product id,
        currency): views, add-to-carts, purchases, units, unpriced units, revenue.
        Currency "" carries the counts (revenue 0), a currency code the revenue;
        rollups.EVENTS ("", "*") the events of the three types, in views."""

    def data_version(self) -> object:
        """A value that changes once any write of any process has committed to the
        store since it was read (and a few other times): equal values read before
        a read and later say that nothing the read could see has changed meanwhile,
        so what it computed may serve again (server/insights/kept.py). Values are
        compared for equality only."""

    # -- the console (documented in server/store/console.py) ----------------

    def user_events_newest(self, query: EventQuery, limit: int,
                           before: tuple[int, int] | None = None,
                           containing: Sequence[bytes] = ()) -> list[StoredEvent]: ...

    def user_event_time_past(self, query: EventQuery, before: tuple[int, int] | None,
                             skip: int) -> int | None: ...

    def user_events_after(self, query: EventQuery, after_id: int,
                          limit: int) -> list[StoredEvent]: ...

    def last_id(self, table: str) -> int: ...

    def client_events_newest(self, tenant: str | ClientEventQuery, limit: int,
                             before: tuple[int, int] | None = None
                             ) -> list[StoredClientEvent]: ...

    def client_events_after(self, tenant: str | ClientEventQuery, after_id: int,
                            limit: int) -> list[StoredClientEvent]: ...

    def client_event_time_past(self, query: ClientEventQuery, before: tuple[int, int] | None,
                               skip: int) -> int | None: ...

    def count_client_events(self, query: ClientEventQuery) -> int: ...

    def add_rejections(self, rows: Sequence[RejectionRow] | Callable[[], Sequence[RejectionRow]],
                       keep: int, since_us: int, keep_per_project: int | None = None,
                       projects: Sequence[str] | None = None) -> Future[Any]: ...

    def rejections_newest(self, project: str | None, limit: int,
                          before_id: int | None = None,
                          parent: str | None = None) -> list[KeptRejection]: ...

    def rejections_after(self, project: str | None, after_id: int, limit: int,
                         parent: str | None = None) -> list[KeptRejection]: ...

    def data_sets(self, tenants: bool, prefix: str = "", after: str = "",
                  limit: int = 1000, counted: bool = True) -> tuple[list[DataSetRow], bool]: ...

    def reset_catalog(self, catalog: str) -> ResetCounts: ...

    def reset_tenant(self, tenant: str) -> ResetCounts: ...

    def reset_project(self, project: str) -> ResetCounts: ...
