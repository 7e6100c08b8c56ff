"""The events an insight reads, through the Store's public reads only (never SQL
on the events table, whose columns are changing), page by page.

User events are read latest first in keyset pages of the (catalog, event time)
index, the one read whose page costs the same wherever it starts; every insight
is indifferent to the order it is fed. Each event comes with its store id: the
order of storing breaks ties between events of one time, so every answer is the
same on every backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from footfall.retail.v2 import user_event_pb2
from footfall.talent.v4 import event_pb2
from google.protobuf.message import Message

from server.errors import FieldViolation, InvalidArgument, gather, raise_if_any
from server.loop import between_reads
from server.names import (
    DEFAULT_TENANT_ID,
    CatalogName,
    TenantName,
    parse_catalog,
    parse_tenant,
)
from server.store import Store
from server.store.console import may_continue
from server.store.insights import EntrantEvents, TypedRow
from server.store.rows import EventQuery, TimeBound

T = TypeVar("T")

PAGE = 5000
ROWS_PAGE = 50_000  # typed rows: a few numbers and a name each, a few MB a page
# Typed rows with payloads are read a tenth as many a page: a page of 50,000, as it
# was fetched and decoded, was ~35 MB of the server's peak memory (bench/insights_memory.py).
DECODED_SHARE = 10
# Rows of Store.visits read between two checks for a caller gone (see visits).
VISITS_CHECKED = 2000
# Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799


@dataclass(frozen=True)
class TimeRange:
    """[start, end): each bound in microseconds since the epoch (None: unbounded)
    and nanoseconds (0-999) past that microsecond, to the nanosecond as events keep
    their times and as a filter's range selects them (a request's 10:00:00.0000005
    counted the event of 10:00:00.0000001 in the range it started, and left the one
    of 10:00:00.0000001 out of the range it ended)."""

    start_us: int | None = None
    end_us: int | None = None
    start_ns: int = 0
    end_ns: int = 0

    def holds(self, time_us: int, nanos: int = 0) -> bool:
        """Whether the time `time_us` (and `nanos` past it) is within the range."""
        start, end = self.start_us, self.end_us  # (no tuples: a test per client event read)
        return ((start is None or time_us > start or (time_us == start and nanos >= self.start_ns))
                and (end is None or time_us < end or (time_us == end and nanos < self.end_ns)))

    def clipped(self, first_us: int | None, end_us: int | None) -> TimeRange:
        """The part of this range within [first_us, end_us) (whole microseconds; None:
        that side unbounded)."""
        start = self._start()
        if first_us is not None and (start is None or (first_us, 0) > start):
            start = (first_us, 0)
        end = self._end()
        if end_us is not None and (end is None or (end_us, 0) < end):
            end = (end_us, 0)
        return TimeRange(None if start is None else start[0], None if end is None else end[0],
                         0 if start is None else start[1], 0 if end is None else end[1])

    def empty(self) -> bool:
        """Whether no time is within the range."""
        start, end = self._start(), self._end()
        return start is not None and end is not None and end <= start

    def first_whole_us(self) -> int | None:
        """The first microsecond all of which is within the range (None: unbounded)."""
        return None if self.start_us is None else self.start_us + (1 if self.start_ns else 0)

    def end_whole_us(self) -> int | None:
        """The microsecond after the last any of which is within the range."""
        return None if self.end_us is None else self.end_us + (1 if self.end_ns else 0)

    def _start(self) -> tuple[int, int] | None:
        return None if self.start_us is None else (self.start_us, self.start_ns)

    def _end(self) -> tuple[int, int] | None:
        return None if self.end_us is None else (self.end_us, self.end_ns)


def event_query(catalog: str, span: TimeRange) -> EventQuery:
    """The catalog's events within `span`."""
    return EventQuery(
        catalog,
        after=None if span.start_us is None else TimeBound(span.start_us, True, span.start_ns),
        before=None if span.end_us is None else TimeBound(span.end_us, False, span.end_ns))


def user_events(store: Store, catalog: str, span: TimeRange,
                event_types: Sequence[str] = ()) -> Iterator[tuple[int, user_event_pb2.UserEvent]]:
    """(id, UserEvent) of the catalog's events within `span`, of `event_types`
    (every type when empty), latest first. One pass: a query's type terms are
    ANDed, and no index leads with the type, so types are checked here."""
    types = frozenset(event_types)
    query = event_query(catalog, span)
    before: tuple[int, int] | None = None
    while True:
        between_reads()
        rows = store.user_events_newest(query, PAGE, before)
        for row in rows:
            event = user_event_pb2.UserEvent.FromString(row.payload)
            if not types or event.event_type in types:
                yield row.id, event
        if not may_continue(rows, PAGE):
            return
        before = (rows[-1].event_time_us, rows[-1].id)


def typed_pages(store: Store, catalog: str, span: TimeRange, bits: Mapping[str, int],
                entrant: str | None, decode: Collection[str]) -> Iterator[list[TypedRow]]:
    """Pages of Store.typed_rows over the catalog's events of `bits`' types within
    `span`, in (event time, id) order."""
    query = event_query(catalog, span)
    page = max(1, ROWS_PAGE // DECODED_SHARE) if decode else ROWS_PAGE
    after: tuple[int, int] | None = None
    while True:
        between_reads()
        rows = store.typed_rows(query, bits, entrant, decode, page, after)
        yield rows
        if len(rows) < page:
            return
        after = (rows[-1][0], rows[-1][1])


def entrant_events(store: Store, catalog: str, span: TimeRange, kinds: Mapping[str, str],
                   entrant: str) -> Iterator[EntrantEvents]:
    """Each entrant's events of `kinds`' types within `span` (Store.entrant_events),
    one entrant at a time: (entrant, events, times, kinds) in (event time, id) order,
    '' for the events of no entrant.

    In one read, each entrant whole as the database groups it: read in slices of
    time (two at once, for a second core), an entrant's pieces were joined in
    Python, so every entrant's events were held until the last slice was read."""
    bounds = store.time_bounds(catalog)
    if bounds is None:
        return
    for gathered in store.entrant_events(event_query(catalog, span), kinds, entrant):
        between_reads()
        yield gathered


def visits(store: Store, catalog: str, span: TimeRange, width_us: int
           ) -> Iterator[tuple[int, str, str, int]]:
    """Store.visits of the catalog's events within `span`, checked for a caller gone
    every VISITS_CHECKED rows, as the other reads are between their pages: streamed
    and unchecked, a ComputeTotals whose caller went read every (bucket, type,
    visitor) of its range (a row per visitor a day and type) for nobody.

    The stream is closed here, on this thread, however this ends: left to the
    exception of a caller gone (its traceback holds this frame, and its thread's
    future the exception), it held SQLite's read transaction (the WAL's every
    checkpoint) or PostgreSQL's pooled connection in its transaction (a reset's
    TRUNCATE waited on it) until the loop let the exception go, and closed it there."""
    rows = store.visits(event_query(catalog, span), width_us)
    try:
        while True:
            between_reads()
            some = list(itertools.islice(rows, VISITS_CHECKED))
            if not some:
                return
            yield from some
    finally:
        rows.close()


def client_events(store: Store, tenant: str, span: TimeRange
                  ) -> Iterator[tuple[int, event_pb2.ClientEvent]]:
    """(id, ClientEvent) of the tenant's client events created within `span`, in
    storage order; in a project's default tenant each job by the tenant's name of it
    (see _one_name_a_job)."""
    rename = _one_name_a_job(tenant)
    after = 0
    while True:
        between_reads()
        rows = store.client_events_after(tenant, after, PAGE)
        for row in rows:
            event = event_pb2.ClientEvent.FromString(row.payload)
            if span.holds(micros(event.create_time), event.create_time.nanos % 1000):
                if rename is not None:
                    rename(event)
                yield row.id, event
        if not may_continue(rows, PAGE):
            return
        after = rows[-1].id


def _one_name_a_job(tenant: str) -> Callable[[event_pb2.ClientEvent], None] | None:
    """For a project's default tenant, what renames an event's jobs named as talent
    v4beta1 names them (projects/P/jobs/J) to the tenant's form
    (projects/P/tenants/default_tenant/jobs/J): its events may give a job either
    name, and counted by name one job was two rows of the job table, two groups of a
    breakdown and two entrants counted by JOB, each with part of its events. None
    for any other tenant, whose jobs have one name."""
    project, _, tenant_id = tenant.removeprefix("projects/").partition("/tenants/")
    if tenant_id != DEFAULT_TENANT_ID:
        return None
    short, full = f"projects/{project}/jobs/", f"{tenant}/jobs/"

    def rename(event: event_pb2.ClientEvent) -> None:
        jobs = event.job_event.jobs
        if any(job.startswith(short) for job in jobs):
            jobs[:] = [full + job.removeprefix(short) if job.startswith(short) else job
                       for job in jobs]
    return rename


def micros(time: object) -> int:
    """Microseconds since the epoch of a Timestamp."""
    return int(time.seconds) * 1_000_000 + int(time.nanos) // 1000  # type: ignore[attr-defined]


def parse_catalog_not_tenant(parent: str, refusal: str) -> CatalogName:
    """The catalog `parent` names; INVALID_ARGUMENT naming `parent` otherwise, saying
    of a talent tenant `refusal` (formatted with `parent`): what a job site asks for
    in its place (it was told only the form of a catalog's name, as if it had mistyped
    one)."""
    return _parse_not(parse_catalog, parse_tenant, parent, refusal)


def parse_tenant_not_catalog(parent: str, refusal: str) -> TenantName:
    """The tenant `parent` names; INVALID_ARGUMENT naming `parent` otherwise, saying of
    a retail catalog `refusal`, as parse_catalog_not_tenant does of a tenant."""
    return _parse_not(parse_tenant, parse_catalog, parent, refusal)


def _parse_not(parse: Callable[[str], T], other: Callable[[str], object], parent: str,
               refusal: str) -> T:
    """`parse(parent)`; for a name `other` reads, INVALID_ARGUMENT saying `refusal`."""
    try:
        return parse(parent)
    except InvalidArgument:
        if gather([], other, parent) is None:
            raise
    raise InvalidArgument.field("parent", refusal.format(parent=parent))


def parse_range(request: object) -> TimeRange:
    """The [start_time, end_time) of a request (each optional); INVALID_ARGUMENT
    when a time is malformed or the end is not after the start."""
    bounds: list[tuple[int, int] | None] = []
    violations: list[FieldViolation] = []
    for field in ("start_time", "end_time"):
        time = getattr(request, field)
        if not request.HasField(field):  # type: ignore[attr-defined]
            bounds.append(None)
        elif not 0 <= time.nanos < 1_000_000_000 or not MIN_SECONDS <= time.seconds <= MAX_SECONDS:
            violations.append(FieldViolation(field, "must be a time between years 1 and 9999"))
            bounds.append(None)
        else:
            bounds.append((micros(time), time.nanos % 1000))
    start, end = bounds
    if start is not None and end is not None and end <= start:
        violations.append(FieldViolation("end_time", "must be after start_time"))
    raise_if_any(violations)
    return TimeRange(None if start is None else start[0], None if end is None else end[0],
                     0 if start is None else start[1], 0 if end is None else end[1])


def parse_duration(request: object, field: str, default_us: int) -> int:
    """A positive Duration field in microseconds (`default_us` when unset);
    INVALID_ARGUMENT otherwise."""
    if not request.HasField(field):  # type: ignore[attr-defined]
        return default_us
    value = getattr(request, field)
    us = micros(value)
    if us <= 0 or (value.seconds > 0 and value.nanos < 0):
        # (times are kept in microseconds: 0.000000001s was told only "must be positive")
        raise InvalidArgument.field(field, "must be at least a microsecond (0.000001s), got "
                                           f"{value.ToJsonString()}")
    return us


def fitting(items: Sequence[Message], budget: int) -> int:
    """How many of `items`, from the first, fit in `budget` bytes of an answer (each
    with its field's tag and length): what keeps an answer under a client's message
    limit however much the events hold."""
    size = 0
    for i, item in enumerate(items):
        size += item.ByteSize() + 6
        if size > budget:
            return i
    return len(items)
