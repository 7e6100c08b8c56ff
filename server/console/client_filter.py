"""The console's filter of a tenant's client events (ListClientEvents,
CountClientEvents, WatchClientEvents, `footfall talent-events --filter`):

    filter  := term ( ["AND"] term )*
    term    := "eventType" "=" (WORD | STRING)       (a JobEventType name, any case)
             | ("job" | "requestId" | "eventId") "=" STRING
             | "createTime" (">" | ">=" | "<" | "<=") STRING      (RFC 3339)
             | ("createTime" | "create_time") ":" "[" STRING "," STRING "]"

The user events' grammar (purge_filter) read over other fields: its tokens,
quoting, time bounds and refusals are theirs. Every term must hold: a job term
selects the events naming that job among theirs (a job's id alone, without '/', is the
tenant's job of that id), two event types select none.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from footfall.talent.v4 import event_pb2

from server.names import DEFAULT_TENANT_ID
from server.retail import purge_filter
from server.store.packed import varint
from server.store.rows import ClientEventQuery, TimeBound

if TYPE_CHECKING:
    from server.store.console import StoredClientEvent

# The names a filter may give, by number (JOB_EVENT_TYPE_UNSPECIFIED left out: the
# server stores no event of it).
JOB_EVENT_TYPES = {name: number for name, number in event_pb2.JobEvent.JobEventType.items()
                   if number}
_TEXT_FIELDS = {"job": "jobs", "requestId": "request_ids", "eventId": "event_ids"}
_TIME_FIELDS = ("createTime", "create_time")
# The tags of ClientEvent.request_id (field 1) and JobEvent.jobs (field 2), each a
# length-delimited string, and of JobEvent.type (field 1, a varint): what the stored
# bytes of an event holding one hold. (Two bytes of a type may stand elsewhere too,
# which the decoded event settles; they stand in few events of another type: a count
# of a type no event had decoded each of 300,000, 3.2 s of CPU.)
_REQUEST_ID_TAG = varint(1 << 3 | 2)
_JOB_TAG = varint(2 << 3 | 2)
_TYPE_TAG = varint(1 << 3 | 0)


@dataclass(frozen=True)
class ClientEventFilter:
    """What a client-event filter selects in `tenant` (all terms ANDed): the store
    seeks the event ids and create-time range, and looks for the bytes of one job
    or request id; the rest is checked on the decoded event (`selects`)."""

    tenant: str
    event_types: tuple[int, ...] = ()
    jobs: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    after: TimeBound | None = None
    before: TimeBound | None = None

    @property
    def decoded_terms(self) -> bool:
        """Whether it has terms only the decoded event can settle (its type, jobs
        and request id: no column holds them)."""
        return bool(self.event_types or self.jobs or self.request_ids)

    @functools.cached_property
    def edges(self) -> frozenset[int]:
        """The microseconds (create_time_us) of the time bounds that the column
        alone cannot settle: `createTime > "...T00:00:00Z"` selects of the events
        of that microsecond those past its first nanosecond."""
        return frozenset(bound.micros for bound, above in ((self.after, True),
                                                             (self.before, False))
                         if bound is not None and not (bound.nanos == 0
                                                       and bound.inclusive == above))

    @property
    def on_events(self) -> bool:
        """Whether some events read must be decoded to know whether it selects them."""
        return self.decoded_terms or bool(self.edges)

    @functools.cached_property
    def query(self) -> ClientEventQuery:
        """The store's part: the tenant, event ids, the create-time range widened
        to whole microseconds (`edges`), and the longest job, request id or type
        field looked for (one: each is checked on the decoded event anyway; a field,
        tag and length, so that a job holding it in a longer name is not found)."""
        # (An empty request id is no field at all in the bytes, proto3 leaving an
        # empty string out: `requestId = ""` is left to the decoded event.)
        # (a job of two names, in a project's default tenant: the end both share)
        fields = [_REQUEST_ID_TAG + _field(v) for v in self.request_ids if v] + \
            [_JOB_TAG + _field(v) if len(job_names(self.tenant, v)) == 1
             else f"/jobs/{v.rpartition('/jobs/')[2]}".encode() for v in self.jobs] + \
            [_TYPE_TAG + varint(t) for t in self.event_types]
        after = None if self.after is None else self.after.micros
        before = None if self.before is None else self.before.micros - (
            0 if self.before.inclusive or self.before.nanos else 1)
        return ClientEventQuery(self.tenant, self.event_ids, after, before,
                                (max(fields, key=len),) if fields else ())

    def selects(self, event: event_pb2.ClientEvent) -> bool:
        """Whether the decoded `event` holds to every term."""
        created = event.create_time.seconds * 1_000_000_000 + event.create_time.nanos
        return all(t == event.job_event.type for t in self.event_types) \
            and all(any(n in event.job_event.jobs for n in job_names(self.tenant, j))
                    for j in self.jobs) \
            and all(r == event.request_id for r in self.request_ids) \
            and all(e == event.event_id for e in self.event_ids) \
            and _within(created, self.after, True) and _within(created, self.before, False)

    def selects_row(self, row: StoredClientEvent) -> bool:
        """Whether it selects the stored event `row`, which the store's `query`
        found: decoded only when its terms or the row's microsecond need it."""
        if not self.decoded_terms and row.create_time_us not in self.edges:
            return True
        return self.selects(event_pb2.ClientEvent.FromString(row.payload))


def job_names(tenant: str, job: str) -> tuple[str, ...]:
    """The names the events of `tenant` may give `job`: in a project's default tenant,
    both talent v4beta1's (projects/P/jobs/J) and the tenant's
    (projects/P/tenants/default_tenant/jobs/J), as a funnel step's job and the
    insights take them (one row of the job table, named the tenant's way: that name
    copied into a filter found none of the events that gave the other)."""
    project, _, tenant_id = tenant.removeprefix("projects/").partition("/tenants/")
    if tenant_id != DEFAULT_TENANT_ID:
        return (job,)
    short, full = f"projects/{project}/jobs/", f"{tenant}/jobs/"
    for given, other in ((short, full), (full, short)):
        if job.startswith(given):
            return job, other + job[len(given):]
    return (job,)


def _field(value: str) -> bytes:
    data = value.encode()
    return varint(len(data)) + data


def _within(nanos: int, bound: TimeBound | None, above: bool) -> bool:
    if bound is None:
        return True
    edge = bound.micros * 1000 + bound.nanos
    if above:
        return nanos >= edge if bound.inclusive else nanos > edge
    return nanos <= edge if bound.inclusive else nanos < edge


class _Parser(purge_filter.Parser):
    """The grammar above: purge_filter's reading of terms, time bounds and ranges
    (its query holds the createTime bounds), over the client event's fields."""

    fields = "eventType, job, requestId, eventId, createTime"

    def __init__(self, text: str, tenant: str) -> None:
        super().__init__(text, tenant)
        self.event_types: list[int] = []
        self.texts: dict[str, list[str]] = {attribute: [] for attribute in _TEXT_FIELDS.values()}

    def term(self) -> None:
        token = self.peek()
        if token is None or token.kind != "word" or token.text not in (
                "eventType", *_TEXT_FIELDS, *_TIME_FIELDS):
            if token is not None and token.kind == "word" and token.text in (
                    "visitorId", "userId", "eventTime", "event_time"):
                # (the user events' fields: a job site that copied a retail filter)
                raise purge_filter.Fail(token.at, f"{token.text} is a user event's field; "
                                                  f"filter client events on {self.fields}")
            super().term()  # (says what is wrong: OR, NOT, an unknown field, no field)
            return
        self.pos += 1
        if token.text in _TIME_FIELDS:
            self.time_term(token)
            return
        self.take("op", f"'=' after {token.text}", ("=",))
        if token.text == "eventType":
            self.event_types.append(self.job_event_type())
            return
        value = self.quoted_value(token.text)
        if token.text == "job" and value and "/" not in value:
            # A job's id alone, as the lists print it (`jobs=j1`) and a funnel step takes
            # it: the tenant's job of that id, the only one its events may name. It was
            # compared with the events' full names, and selected none, without a word.
            value = f"{self.query.catalog}/jobs/{value}"
        self.texts[_TEXT_FIELDS[token.text]].append(value)

    def time_term(self, name: purge_filter.Token) -> None:
        op = self.take("op", f"one of > >= < <= or ':' after {name.text}",
                       (">", ">=", "<", "<=", ":"))
        if op.text == ":":
            self.range()
            return
        if name.text != "createTime":
            raise purge_filter.Fail(name.at, "use createTime with > >= < <=")
        nanos = purge_filter.rfc3339_nanos(self.take("string", "a quoted RFC 3339 time"))
        bound = purge_filter.time_bound(nanos, op.text in (">=", "<="))
        if op.text.startswith(">"):
            self.bound_after(bound)
        else:
            self.bound_before(bound)

    def job_event_type(self) -> int:
        """The JobEventType number the value after `eventType =` names, bare or
        quoted, in any case (the names are Google's: VIEW, APPLICATION_START)."""
        token = self.peek()
        if token is None or token.kind not in ("word", "string"):
            self.take("word", "a JobEventType, e.g. VIEW")  # (Fails, saying so)
        assert token is not None
        given = purge_filter.unquote(token) if token.kind == "string" else token.text
        number = JOB_EVENT_TYPES.get(given.upper())
        if number is None:
            raise purge_filter.Fail(token.at, f"{token.text} is not a JobEventType; use one of "
                                              f"{', '.join(JOB_EVENT_TYPES)}")
        self.pos += 1
        return number


def parse(text: str, tenant: str, field: str = "filter") -> ClientEventFilter:
    """The client events of `tenant` that `text` selects (empty: all);
    INVALID_ARGUMENT naming `field` and the character for a filter that does
    not parse, or is too long."""
    if not text.strip():
        return ClientEventFilter(tenant)

    def run() -> ClientEventFilter:
        parser = _Parser(text, tenant)
        times = parser.parse()

        def once(values: list[str]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(values))  # (a term given again selects nothing more)

        return ClientEventFilter(tenant, tuple(dict.fromkeys(parser.event_types)),
                                 once(parser.texts["jobs"]), once(parser.texts["request_ids"]),
                                 once(parser.texts["event_ids"]), times.after, times.before)

    return purge_filter.checked(text, field, run)
