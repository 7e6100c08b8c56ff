"""What the stores keep: an event as its serialized proto plus the indexed columns
that filters and analytics need. Shared by every backend."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from server.console import origin
from server.errors import Unavailable
from server.store.packed import pack
from server.store.rollups import Counts, product_counts

if TYPE_CHECKING:
    from server.store.console import RejectionRow


def dedup_key(catalog: str, payload: bytes) -> bytes:
    """Canonical hash of an event: same catalog and same content, same key.

    `payload` must be a deterministic serialization (map entries sorted), so two
    equal events always hash alike. The key is only unique with the event's time
    (the dedup index), so 8 bytes are enough: the first 8 of a 16-byte BLAKE2b,
    which older stores kept whole (migration 8 cut them).
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(catalog.encode())
    digest.update(b"\0")
    digest.update(payload)
    return digest.digest()[:8]


# The catalogs a store keeps in memory (their ids, or that they have one), the latest
# learnt: a writer key (public in a shop's pages) can name catalogs without end, and
# each one was kept for good.
CATALOG_IDS_KEPT = 1_000


def keep_latest(catalogs: dict[str, Any]) -> None:
    """Let the first learnt of `catalogs` go, past CATALOG_IDS_KEPT (one let go is
    looked up again when it is next named)."""
    while len(catalogs) > CATALOG_IDS_KEPT:
        del catalogs[next(iter(catalogs))]


def to_micros(seconds: int, nanos: int) -> int:
    """Microseconds since the epoch (the time columns' unit) of a Timestamp's fields."""
    return seconds * 1_000_000 + nanos // 1000


def row_columns(event: Any) -> tuple[str, str, str, int, int]:
    """A UserEvent's event_type, visitor_id, user_id, event_time_us and event_time_ns
    as its row's columns hold them (its event_time set)."""
    time = event.event_time
    nanos = time.nanos
    return (event.event_type, event.visitor_id, event.user_info.user_id,
            to_micros(time.seconds, nanos), nanos % 1000)


@dataclass(slots=True)  # not frozen: that __init__ costs 1.5 µs a row more, on every write
class EventRow:
    """One retail user event as stored (nothing changes a row once made).

    `payload` is the event as reads return it (enriched from the catalog when it
    joined); `source` is the event as received when that differs, so a rejoin can
    enrich it again from a newer catalog. The dedup key hashes the event as
    received, so a re-import matches whatever the catalog did in between.
    """

    catalog: str
    event_type: str
    visitor_id: str
    user_id: str
    event_time_us: int
    joined: bool
    payload: bytes
    key: bytes
    source: bytes | None = None
    # nanoseconds within event_time_us (0-999): time filters compare to the nanosecond
    event_time_ns: int = 0
    # how and when it came (console.v1 Transport; wall-clock microseconds)
    transport: int = field(default_factory=origin.transport)
    received_us: int = field(default_factory=origin.now_us)
    # its lines in the per-product rollups (rollups.py), made here where the event is
    # parsed; None: the writer decodes the payload if its type counts
    counts: Counts | None = None
    # the payload as stored (packed.pack) when made already (by an import's worker
    # process, off the thread that inserts)
    packed: bytes | None = None

    @classmethod
    def from_event(cls, catalog: str, event: Any, joined: bool,
                   received: bytes | None = None) -> EventRow:
        """The row for a validated `UserEvent` whose event_time is set; `received`: its
        deterministic serialization before enrichment, when it was enriched."""
        payload = event.SerializeToString(deterministic=True)
        source = received if received is not None and received != payload else None
        return cls._of(catalog, event, joined, payload, source)

    @classmethod
    def for_join(cls, catalog: str, event: Any, received: bytes, payload: bytes,
                 joined: bool, came: tuple[int, int] | None = None) -> EventRow:
        """The row of `event` as `join_within` left it: `received` is its deterministic
        serialization before the join, `payload` after it (`received` again when the
        join did not change it). `came`: (transport, received_us) when the row is made
        away from the call (on the writer), else the call's own."""
        source = received if payload != received else None
        return cls._of(catalog, event, joined, payload, source, came)

    @classmethod
    def _of(cls, catalog: str, event: Any, joined: bool, payload: bytes,
            source: bytes | None, came: tuple[int, int] | None = None) -> EventRow:
        event_type, visitor_id, user_id, time_us, time_ns = row_columns(event)
        transport, received_us = came if came is not None else (origin.transport(),
                                                                 origin.now_us())
        return cls(catalog, event_type, visitor_id, user_id, time_us, joined, payload,
                   dedup_key(catalog, source if source is not None else payload), source,
                   time_ns, transport, received_us, product_counts(event))

    def stored(self) -> bytes:
        """The payload as the row's column holds it (packed, see packed.py)."""
        if self.packed is not None:
            return self.packed
        return pack(self.payload, self.event_type, self.visitor_id, self.user_id,
                    self.event_time_us, self.event_time_ns)

    def as_params(self) -> tuple[Any, ...]:
        """Values of the row's columns."""
        return (self.catalog, self.event_type, self.visitor_id, self.user_id,
                self.event_time_us, self.event_time_ns, int(self.joined), self.key,
                self.stored(), self.source, self.received_us, self.transport)


@dataclass(frozen=True)
class TimeBound:
    """One side of an event-time range: `micros` since the epoch plus `nanos`
    (0-999) within that microsecond."""

    micros: int
    inclusive: bool
    nanos: int = 0

    @classmethod
    def at(cls, seconds: int, nanos: int, inclusive: bool) -> TimeBound:
        return cls(to_micros(seconds, nanos), inclusive, nanos % 1000)


@dataclass(frozen=True)
class EventQuery:
    """Which events of a catalog a read, count or purge selects (all terms ANDed)."""

    catalog: str
    event_types: tuple[str, ...] = ()
    visitor_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    after: TimeBound | None = None
    before: TimeBound | None = None
    joined: bool | None = None
    transports: tuple[int, ...] = ()  # console.v1 Transport numbers (the console's filter)

    def time_range(self) -> EventQuery:
        """The events of this query's catalog and time range, its other terms left out."""
        return EventQuery(self.catalog, after=self.after, before=self.before)


@dataclass(frozen=True)
class ClientEventQuery:
    """Which client events of a tenant a read selects in the database (all terms
    ANDed): of these event ids, created within [after_us, before_us] (microseconds,
    inclusive: the column holds no nanoseconds, so the console settles a bound
    within its microsecond on the decoded event), whose stored bytes hold each of
    `containing`."""

    tenant: str
    event_ids: tuple[str, ...] = ()
    after_us: int | None = None
    before_us: int | None = None
    containing: tuple[bytes, ...] = ()

    def where(self, placeholder: str, contains: str) -> tuple[str, list[Any]]:
        """SQL condition and parameters over client_events; `contains` is the
        dialect's test that a column holds a needle (its {column} and mark)."""
        terms = [f"tenant = {placeholder}"]
        params: list[Any] = [self.tenant]
        for event_id in self.event_ids:
            terms.append(f"event_id = {placeholder}")
            params.append(event_id)
        if self.after_us is not None:
            terms.append(f"create_time_us >= {placeholder}")
            params.append(self.after_us)
        if self.before_us is not None:
            terms.append(f"create_time_us <= {placeholder}")
            params.append(self.before_us)
        for needle in self.containing:
            terms.append(contains.format(column="event"))
            params.append(needle)
        return " AND ".join(terms), params


# The id buckets of the visitor and user indexes (migration 8) from the newest to the
# oldest event: with `visitor_id = ?` the index then seeks once per bucket, where
# without it every entry of the catalog would be read (measured on 1M events: 0.6 ms
# against 720 ms for the first page of one visitor).
ID_BUCKETS = ("(id >> 14) IN (WITH RECURSIVE b(k) AS (SELECT MAX(id) >> 14 FROM user_events "
              "UNION ALL SELECT k - 1 FROM b WHERE k > (SELECT MIN(id) >> 14 FROM user_events)) "
              "SELECT k FROM b)")


def catalog_term(catalog: str, placeholder: str = "?",
                 catalog_id: int | None = None) -> tuple[str, list[Any]]:
    """SQL condition and parameters: a row's catalog_id is `catalog`'s, its id
    (`catalog_id`, when known) written into the SQL itself (not a parameter, nor the
    lookup by name: the planner then weighs the catalog's own rows, see
    ConsoleSql._planned_catalog_id), else looked up by name."""
    if catalog_id is None:
        return f"catalog_id = (SELECT id FROM catalogs WHERE name = {placeholder})", [catalog]
    return f"catalog_id = {int(catalog_id)}", []


def where_clause(query: EventQuery, placeholder: str = "?",
                 time: str = "event_time_us",
                 catalog_id: int | None = None) -> tuple[str, list[Any]]:
    """SQL condition and parameters for `query` over user_events, with the driver's
    `placeholder`; `time` is how its time bounds name event_time_us (written
    "+event_time_us", they keep the planner off the time index). `catalog_id`: the
    id of `query.catalog`, when known (see catalog_term)."""
    term, params = catalog_term(query.catalog, placeholder, catalog_id)
    terms = [term]
    if query.visitor_ids or query.user_ids:
        terms.append(ID_BUCKETS)
    for column, values in (("event_type", query.event_types),
                           ("visitor_id", query.visitor_ids),
                           ("user_id", query.user_ids)):
        for value in values:
            terms.append(f"{column} = {placeholder}")
            params.append(value)
    for bound, above in ((query.after, True), (query.before, False)):
        if bound is None:
            continue
        # event_time_us leads the index; event_time_ns only settles ties within the
        # microsecond, so the range stays an index range.
        wide, strict = (">=", ">") if above else ("<=", "<")
        edge = strict + ("=" if bound.inclusive else "")
        if bound.nanos == 0 and bound.inclusive == above:
            # at or after x.000, or before x.000: the microsecond alone decides
            terms.append(f"{time} {wide if above else strict} {placeholder}")
            params.append(bound.micros)
            continue
        terms.append(f"{time} {wide} {placeholder} AND (event_time_us {strict} "
                     f"{placeholder} OR event_time_ns {edge} {placeholder})")
        params.extend([bound.micros, bound.micros, bound.nanos])
    if query.joined is not None:
        terms.append(f"joined = {placeholder}")
        params.append(int(query.joined))
    for transport in query.transports:
        terms.append(f"transport = {placeholder}")
        params.append(transport)
    return " AND ".join(terms), params


class ProductReader(Protocol):
    """Reads of one branch inside a product write's transaction: a check sees
    exactly what the write commits against (every product write of the branch
    first takes its generation's lock, see sql.py), so no other write can slip in
    between."""

    def get(self, product_ids: Sequence[str]) -> dict[str, bytes]:
        """The serialized Products among `product_ids` that exist."""

    def containing(self, text: str) -> Iterator[tuple[str, bytes]]:
        """(product_id, serialized Product) of every product whose serialized form
        contains `text` (UTF-8), by id: the only products that can name it."""


# Runs inside a product write with the product as it is to be stored (create, update)
# or as it is (delete); raising aborts the write, which then changes nothing.
ProductCheck = Callable[[bytes, ProductReader], None]


@dataclass(frozen=True, slots=True)
class ClientEventRow:
    """One talent client event as stored; unique per (tenant, event_id)."""

    tenant: str
    event_id: str
    create_time_us: int
    payload: bytes
    transport: int = field(default_factory=origin.transport)
    received_us: int = field(default_factory=origin.now_us)


OPERATION_COLUMNS = ("name, kind, done, create_time_us, request, operation, checkpoint, "
                     "cancel_requested, lease_owner, lease_expires_us, lost_tries")


@dataclass(frozen=True)
class OperationRecord:
    """A long-running operation as stored: the google.longrunning.Operation the
    clients see, plus what the workers need to run, resume and hand it over."""

    name: str
    kind: str
    done: bool
    create_time_us: int
    request: bytes
    operation: bytes
    checkpoint: bytes | None = None
    cancel_requested: bool = False
    lease_owner: str | None = None
    lease_expires_us: int | None = None
    # Claims that took it over from a holder that never let it go (its process died
    # or its lease ran out): tries that may have ended their process, which the
    # runner's count of failures, kept in memory, cannot see.
    lost_tries: int = 0

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> OperationRecord:
        """The record from a row of OPERATION_COLUMNS."""
        return cls(
            name=row[0], kind=row[1], done=bool(row[2]), create_time_us=row[3],
            request=bytes(row[4]), operation=bytes(row[5]),
            checkpoint=None if row[6] is None else bytes(row[6]),
            cancel_requested=bool(row[7]), lease_owner=row[8], lease_expires_us=row[9],
            lost_tries=int(row[10]))

    def as_params(self) -> tuple[Any, ...]:
        """Values in OPERATION_COLUMNS order."""
        return (self.name, self.kind, int(self.done), self.create_time_us, self.request,
                self.operation, self.checkpoint, int(self.cancel_requested), self.lease_owner,
                self.lease_expires_us, self.lost_tries)


def in_turn(records: Iterable[OperationRecord]) -> list[OperationRecord]:
    """Operations not done (given oldest first) in the order they are claimed: each
    project's first (oldest) before any project's second, and so on; oldest first
    within a turn. Oldest first alone, 40 imports one project queued kept another
    project's purge waiting behind all of them."""
    seen: dict[str, int] = {}
    ranked: list[tuple[int, int, OperationRecord]] = []
    for record in records:
        project = record.name.split("/", 2)[1] if record.name.startswith("projects/") else ""
        seen[project] = turn = seen.get(project, 0) + 1
        ranked.append((turn, len(ranked), record))
    return [record for _, _, record in sorted(ranked, key=lambda r: (r[0], r[1]))]


# The records of a Step are named tuples, not dataclasses: the stores hand them to
# their database drivers as parameter rows.
class ProductPut(NamedTuple):
    """A product to store, replacing the one of that id in the branch."""

    branch: str
    product_id: str
    payload: bytes  # the serialized Product


class EventUpdate(NamedTuple):
    """A stored event rewritten (by a rejoin)."""

    row_id: int
    joined: bool
    payload: bytes  # the serialized UserEvent as reads return it
    source: bytes | None  # as received, when that differs from `payload`


@dataclass(frozen=True)
class ProductsRead:
    """Products of a branch as a job read them (Store.read_products), and the branch's
    generation read before them: a step whose product writes were made from them
    commits only if none of them changed since (else ProductsChanged)."""

    branch: str
    generation: int  # (0: no product of the branch was ever written)
    product_ids: Sequence[str]  # every id read
    products: Mapping[str, bytes]  # those found: the serialized Product


@dataclass(frozen=True)
class Step:
    """The writes of one batch of a job; applied atomically with the job's progress."""

    insert_events: Sequence[EventRow] = ()
    put_products: Sequence[ProductPut] = ()
    # what put_products were made from (a merge with the stored products), or
    # delete_products chosen from (a purge's filter), if anything
    products_read: ProductsRead | None = None
    delete_products: Sequence[tuple[str, str]] = ()  # (branch, product_id)
    update_events: Sequence[EventUpdate] = ()
    # delete up to `delete_limit` events the query selects with an id in
    # (delete_after_id, delete_until_id]
    delete_events: EventQuery | None = None
    delete_after_id: int = 0
    delete_until_id: int = 0
    delete_limit: int = 0
    # a time-only purge's whole days, [first_us, end_us), and its whole id range
    # (after, until]: their events stop counting in the rollups before this step
    # deletes any (rollups.Gap; once per operation)
    uncount: tuple[int, int, int, int] | None = None
    # refusals for the console (an import's failed lines), kept with the batch
    rejections: Sequence[RejectionRow] = ()


class CreatedClientEvent(NamedTuple):
    """What create_client_event answers: the event stored under the id, and whether
    this call stored it (else an event stored before holds the id). The commit
    listener counts those stored (footfall_events_stored_total)."""

    event: bytes
    is_new: bool


@dataclass(frozen=True)
class StepResult:
    inserted: int = 0
    inserted_joined: int = 0
    deleted: int = 0  # events, or products (a step deletes one kind)
    # every event the delete selects with an id up to this one is gone (0: no delete)
    deleted_through: int = 0
    cancel_requested: bool = False


@dataclass(frozen=True)
class Progress:
    """What a job records after a step: its checkpoint and the Operation clients see."""

    checkpoint: bytes
    operation: bytes
    done: bool


class LeaseLost(Exception):
    """The operation was deleted or taken over by another worker: stop working on it."""


class ProductsChanged(Exception):
    """A product a step's writes were made from (Step.products_read) was written by
    another write before the step committed: nothing was written; read and make the
    step again."""


class StoreUnavailable(Unavailable):
    """The database cannot be reached (or a write's transaction was lost with its
    connection): UNAVAILABLE, worth retrying. Writes that raise it were not
    acknowledged; event rows are retried by the store itself.

    `message` is what callers see, so it never names the database (host, port,
    database, user, file); `detail` says what went wrong for the log, and `str()`
    (what logs print) has both.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message


class StoreFull(StoreUnavailable):
    """The disk holding the database is full, so a write could not commit:
    UNAVAILABLE like an unreachable database (nothing was written; retry later, or on another
    replica), and handled the same way: health NOT_SERVING, jobs pause."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("the disk holding the event store is full: nothing was written; "
                         "try again later", detail)


class StoreUnusable(Exception):
    """The store cannot be used at all (not a database, damaged, a directory, on a
    read-only file system): start-up stops with this one-line message."""


class StoreRefused(StoreUnavailable):
    """The database refused the connection for good (no such database or role, a
    wrong password): a mistake in the configuration, not an outage."""
