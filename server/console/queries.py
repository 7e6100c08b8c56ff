"""The console's reads, over a Store: filters, page tokens and the stored rows
made into console.v1 messages. Pure of transport: the servicer (and watches)
call these."""

from __future__ import annotations

import binascii
import functools
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from footfall.console.v1 import console_pb2
from footfall.retail.v2 import user_event_pb2
from google.protobuf.message import Message

from server import page_tokens
from server.console.client_filter import ClientEventFilter
from server.errors import InvalidArgument
from server.names import CatalogName, TenantName, parse_catalog, parse_tenant
from server.retail import purge_filter
from server.store import packed
from server.store.packed import timestamp, varint
from server.store.rows import ClientEventQuery, EventQuery, TimeBound

if TYPE_CHECKING:  # (a CLI that checks a filter before asking a server reads no store)
    from server.store.base import Store
    from server.store.console import StoredClientEvent, StoredEvent

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# Events one call reads at most while a sessionId or productId filter (checked on
# the decoded event) leaves its page short: a call's cost stays bounded, and the
# page token says where the next one goes on.
SCAN_LIMIT = page_tokens.SCAN_LIMIT
PAGE_BYTES = page_tokens.PAGE_BYTES  # (a page ends once its events pass it)
# ... where a product named by an event counts this many bytes, not the ten or so it
# takes on the wire: decoded, it takes about 230, and a page of 3 MiB of events naming
# 60,000 products each was 69 MB held until sent (17 MB of JSON); 30 such reads at
# once of one reader key took the server from 0.4 to 3.4 GB.
PRODUCT_BYTES = 256
READ_BATCH = 50  # events read from the store at a time while a page fills
# A call of a filter no index seeks (see list_user_events) reads windows of the time
# order for at least MIN_WINDOWS of them, then until LIST_SECONDS have passed, each at
# most WIDEST_WINDOW events: a rare event's first page within a few calls, where each
# call read one window of SCAN_LIMIT (a session among the oldest of 3M events: 600
# empty pages of 130 ms each).
MIN_WINDOWS = 3
LIST_SECONDS = 0.1
WIDEST_WINDOW = 64 * SCAN_LIMIT
_INT64 = 0xFFFF_FFFF_FFFF_FFFF  # a negative int64 is written as its two's complement
TRANSPORTS = {name: number for name, number in console_pb2.Transport.items() if number}
_PROJECT = re.compile(r"^projects/(?P<project>[^/]+)$")
ALL_PROJECTS = "-"


@dataclass(frozen=True)
class EventFilter:
    """What a console filter selects: an EventQuery for the store, plus the terms
    checked on each decoded event (all ANDed)."""

    query: EventQuery
    session_ids: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()

    @property
    def on_events(self) -> bool:
        """Whether some terms are checked on the decoded events."""
        return bool(self.session_ids or self.product_ids)

    @property
    def selects_nothing(self) -> bool:
        """Whether it can select no event, known before any is read: a productId of
        "" (every product an event names has an id), as `visitorId = ""` selects none
        (every event has a visitor). An empty value is the value "", as for every
        field (`userId = ""`: the events with no user id; `sessionId = ""`: those of
        no session); decoded, it read every event of the catalog to find none."""
        return "" in self.product_ids

    @functools.cached_property
    def needles(self) -> tuple[bytes, ...]:
        """The longest of the fields serialized that hold a session or product id
        looked for (none when none is, or it is ""): the stored bytes of an event
        selected hold it (see may_select). A field, not its UTF-8 bytes alone: the
        tag and length make it hold that id and no longer one (`session-12` was
        found in session-120 to session-12999999, 111,000 events of 3M of the bench
        corpus decoded in Python to find its 10). A session is UserEvent's field 21;
        a product id is Product's field 2, inside ProductDetail's product. One, not
        each: a filter of 5,000 characters names up to 416 ids, the same or
        substrings of one another, and each was looked for through every stored
        byte (in the store, then here): a CountUserEvents of 300 such terms over
        500 events of 50 KB cost 26 s of CPU, against 0.9 s for one. The others are
        checked on the decoded event (selects)."""
        fields = [_SESSION_TAG + _field(value) for value in self.session_ids if value] + \
            [_PRODUCT_ID_TAG + _field(value) for value in self.product_ids if value]
        return (max(fields, key=len),) if fields else ()

    def may_select(self, payload: bytes) -> bool:
        """False if the serialized event `payload` cannot be selected: the id of
        `needles` is not among its bytes (a string field holds its UTF-8 bytes as
        they are), so it need not be decoded."""
        return not self.selects_nothing and all(needle in payload for needle in self.needles)

    def selects(self, event: user_event_pb2.UserEvent) -> bool:
        named = {d.product.id for d in event.product_details}
        return all(s == event.session_id for s in self.session_ids) and \
            all(p in named for p in self.product_ids)


# The tags of UserEvent.session_id (field 21) and Product.id (field 2), each a
# length-delimited string.
_SESSION_TAG = varint(21 << 3 | 2)
_PRODUCT_ID_TAG = varint(2 << 3 | 2)


def _field(value: str) -> bytes:
    """`value`'s length and UTF-8 bytes, as a string field serializes them."""
    data = value.encode()
    return varint(len(data)) + data


class _Parser(purge_filter.Parser):
    """The purge grammar plus sessionId = "...", productId = "...",
    joined = true|false and transport = GRPC|REST|PIXEL|IMPORT (those two in any
    case: their words are ours; Google's own, eventType's, keep theirs)."""

    fields = "eventType, visitorId, userId, eventTime, sessionId, productId, joined, transport"

    def __init__(self, text: str, catalog: str) -> None:
        super().__init__(text, catalog)
        self.session_ids: list[str] = []
        self.product_ids: list[str] = []

    def other_term(self, name: purge_filter.Token) -> bool:
        if name.text not in ("sessionId", "productId", "joined", "transport"):
            return False
        self.take("op", f"'=' after {name.text}", ("=",))
        if name.text in ("sessionId", "productId"):
            value = self.quoted_value(name.text)
            (self.session_ids if name.text == "sessionId" else self.product_ids).append(value)
        elif name.text == "joined":
            token = self.peek()
            value = self.bare_value(name.text, "true or false", ("true", "false"))
            if self.query.joined is not None and self.query.joined != (value == "true"):
                # (the terms must all hold, and the later one replaced the earlier:
                # `joined = true joined = false` listed the events not joined)
                raise purge_filter.Fail(token.at if token is not None else name.at,
                                        "joined is given as both true and false: no event "
                                        "is both")
            self.query = replace(self.query, joined=value == "true")
        else:
            value = self.bare_value(name.text, f"one of {', '.join(TRANSPORTS)}",
                                    tuple(TRANSPORTS))
            self.query = replace(self.query,
                                 transports=(*self.query.transports, TRANSPORTS[value]))
        return True

    def bare_value(self, field: str, what: str, choices: tuple[str, ...]) -> str:
        """The choice among `choices` that the bare word after `field =` names, in
        any case (these words are ours: `footfall events list` writes the transport
        as [pixel], and `transport = pixel` was refused); Fail otherwise, saying how
        to write a choice given in quotes (every other field's value is quoted:
        `transport = "PIXEL"` was refused without a word of why)."""
        token = self.peek()
        if token is not None and token.kind in ("word", "string"):
            given = token.text[1:-1] if token.kind == "string" else token.text
            meant = next((c for c in choices if c.lower() == given.lower()), None)
            if meant is not None and token.kind == "word":
                self.pos += 1
                return meant
            if meant is not None:
                raise purge_filter.Fail(token.at, f"expected {what}, got {token.text!r}: "
                                                  f"write {field} = {meant}")
        return self.take("word", what, choices).text  # (Fails, saying what was expected)


def parse_filter(text: str, catalog: str, field: str = "filter") -> EventFilter:
    """The events of `catalog` that `text` selects (empty: all); INVALID_ARGUMENT
    naming `field` and the character for a filter that does not parse."""
    if not text.strip():
        return EventFilter(EventQuery(catalog))

    def run() -> EventFilter:
        parser = _Parser(text, catalog)
        query = parser.parse()
        # (each id once: a term given again selects nothing more, and is checked
        # on every event decoded)
        return EventFilter(query, tuple(dict.fromkeys(parser.session_ids)),
                           tuple(dict.fromkeys(parser.product_ids)))

    return purge_filter.checked(text, field, run)


def parse_project(value: str, field: str = "parent") -> str | None:
    """The project of `projects/PROJECT`; None for `projects/-` (every project)."""
    match = _PROJECT.match(value)
    if match is None:
        raise InvalidArgument.field(field, f"must be projects/PROJECT (projects/- for every "
                                           f"project), got {value[:200]!r}")
    project = match["project"]
    return None if project == ALL_PROJECTS else project


class RejectionScope(NamedTuple):
    """Which refusals a list or watch is of: a project's (None: every project's),
    and of those the ones whose request named `parent` (None: any)."""

    project: str | None
    parent: str | None = None


def parse_rejection_scope(value: str, field: str = "parent") -> RejectionScope:
    """`projects/PROJECT` (`projects/-`: every project), or a catalog or tenant
    name: the refusals of requests that named it as their parent."""
    if _PROJECT.match(value):
        return RejectionScope(parse_project(value, field))
    try:
        name: CatalogName | TenantName = parse_catalog(value, field) \
            if "/catalogs/" in value else parse_tenant(value, field)
    except InvalidArgument:
        raise InvalidArgument.field(
            field, f"must be projects/PROJECT (projects/- for every project), a catalog "
                   f"(projects/P/locations/L/catalogs/C) or a tenant (projects/P/tenants/T), "
                   f"got {value[:200]!r}") from None
    return RejectionScope(name.project, str(name))


def counted(view: int) -> bool:
    """Whether a ListCatalogs `view` asks for counts (FULL, and UNSPECIFIED as
    FULL); INVALID_ARGUMENT naming `view` for a value the contract does not have."""
    if view not in console_pb2.DataSetView.values():
        names = ", ".join(f"{n} ({v})" for v, n in sorted(
            (v, n) for n, v in console_pb2.DataSetView.items()))
        raise InvalidArgument.field("view", f"unknown view {view}; use {names}")
    return view != console_pb2.DATA_SET_VIEW_BASIC


def page_size(value: int) -> int:
    if value < 0:
        raise InvalidArgument.field("page_size", f"must not be negative, got {value}")
    return min(value or DEFAULT_PAGE, MAX_PAGE)


_TOKEN_NUMBER = re.compile(rb"-?[0-9]{1,19}")


def _numbers(body: bytes, parts: int) -> tuple[int, ...]:
    """The `parts` integers of a token's `body`; INVALID_ARGUMENT for other bytes."""
    texts = body.split(b".")
    # as _signed_token writes them: plain decimals a database integer holds
    numbers = tuple(int(t) for t in texts if _TOKEN_NUMBER.fullmatch(t))
    if len(numbers) != parts or len(texts) != parts \
            or not all(-(2 ** 63) <= n < 2 ** 63 for n in numbers):
        raise InvalidArgument.field("page_token", "is not a page token of this list")
    return numbers


def _signed_token(store: Store, *position: int) -> str:
    """A page token of `position`, signed with `store`'s key (see page_tokens)."""
    return page_tokens.signed(store.page_token_key(), ".".join(map(str, position)).encode())


def _position(store: Store, token: str, parts: int,
              question: int) -> tuple[int, ...] | None:
    """The position (`parts` integers) of a token `store`'s servers signed for
    `question`; None for no token; INVALID_ARGUMENT for another's, or a forged one."""
    if not token:
        return None
    found = _numbers(page_tokens.body_of(store.page_token_key_if_made(), token), parts + 1)
    if found[-1] != question:
        raise page_tokens.of_another_list()
    return found[:-1]


def _time(micros: int | None, into: object) -> None:
    if micros is not None:
        into.FromMicroseconds(micros)  # type: ignore[attr-defined]


def stored_user_event(row: StoredEvent) -> console_pb2.StoredUserEvent:
    message = console_pb2.StoredUserEvent(id=row.id, catalog=row.catalog, joined=row.joined,
                                          transport=row.transport)  # type: ignore[arg-type]
    message.user_event.ParseFromString(row.payload)
    if row.source is not None:
        message.received_event.ParseFromString(row.source)
    _time(row.received_us, message.receive_time)
    return message


def stored_user_event_wire(row: StoredEvent) -> bytes:
    """`stored_user_event(row)` serialized, made from the row's bytes as they are:
    its events are not decoded and encoded again. The fields in number order, as
    protobuf writes them; an event's own bytes are those stored (a deterministic
    serialization), so a map of several entries may be in another order than
    `SerializeToString` of the decoded message would write (the same message).
    Each field's parts written into one list, the catalog's field made once for
    all its rows: this runs for every row a watch sends (a batched feed's read of
    hundreds of rows at a time), and a call a field took 2.7-2.9 µs a row of the
    bench corpus where this takes 1.8-2.0."""
    payload = row.payload
    parts = [b"\x08", varint(row.id & _INT64)] if row.id else []
    if row.catalog:
        parts.append(_catalog_field(row.catalog))
    parts += (b"\x1a", varint(len(payload)), payload)
    if row.source is not None:
        parts += (b"\x22", varint(len(row.source)), row.source)
    if row.joined:
        parts.append(b"\x28\x01")
    if row.received_us is not None:
        stamp = _stamp(row.received_us)
        parts += (b"\x32", varint(len(stamp)), stamp)
    if row.transport:
        parts += (b"\x38", varint(row.transport & _INT64))
    return b"".join(parts)


@functools.lru_cache(maxsize=256)
def _catalog_field(catalog: str) -> bytes:
    """StoredUserEvent's field 2 holding `catalog`, serialized: the same for every
    row of a read, made once rather than for each."""
    data = catalog.encode()
    return b"\x12" + varint(len(data)) + data


def _delimited(tag: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
    """A length-delimited field's parts: its tag, its length and `data`."""
    return tag, varint(len(data)), data


def _stamp(micros: int) -> bytes:
    """The Timestamp `micros` serialized, as Timestamp.FromMicroseconds sets it."""
    seconds, micros = divmod(micros, 1_000_000)
    return timestamp(seconds, micros * 1000)


def stored_client_event(row: StoredClientEvent) -> console_pb2.StoredClientEvent:
    message = console_pb2.StoredClientEvent(id=row.id, tenant=row.tenant,
                                            transport=row.transport)  # type: ignore[arg-type]
    message.client_event.ParseFromString(row.payload)
    _time(row.received_us, message.receive_time)
    profile = job_event_profile(row.payload)
    if profile:
        message.job_event_profile = profile.decode("utf-8", "replace")
    return message


# A stored client event is v4's ClientEvent; one written by talent v4beta1 may hold
# its JobEvent.profile, a field v4's JobEvent does not know (kept with the event).
_JOB_EVENT, _PROFILE = 5, 3


def job_event_profile(payload: bytes) -> bytes | None:
    """The JobEvent.profile (v4beta1's) in the serialized ClientEvent `payload`, as
    its bytes; None when it has none (or `payload` does not read as a message)."""
    job_event = _last_delimited(payload, _JOB_EVENT)
    return None if job_event is None else _last_delimited(job_event, _PROFILE)


def _last_delimited(data: bytes, number: int) -> bytes | None:
    """The content of the last length-delimited field `number` among the fields
    serialized in `data` (its top level only); None when there is none, or when
    `data` is not a serialized message. (Read here rather than decoded: a list's
    events are made from their bytes.)"""
    found = None
    try:
        for field, wire_type, _, value, end in packed.fields(data):
            if end > len(data):
                return None
            if field == number and wire_type == 2:
                found = data[value:end]
    except ValueError:  # (a group: no field of a client event)
        return None
    return found


def stored_client_event_wire(row: StoredClientEvent) -> bytes:
    """`stored_client_event(row)` serialized, made from the row's bytes as they
    are (as `stored_user_event_wire`)."""
    parts: list[bytes] = []
    if row.id:
        parts += (b"\x08", varint(row.id & _INT64))
    if row.tenant:
        parts += _delimited(b"\x12", row.tenant.encode())
    parts += _delimited(b"\x1a", row.payload)
    if row.received_us is not None:
        parts += _delimited(b"\x22", _stamp(row.received_us))
    if row.transport:
        parts += (b"\x28", varint(row.transport & _INT64))
    profile = job_event_profile(row.payload)
    if profile:
        parts += _delimited(b"\x32", profile)
    return b"".join(parts)


def _windowed(events: EventFilter) -> bool:
    """Whether `events` has terms no index seeks (event type, joined, transport,
    or a session or product id) and no visitor or user, whose index finds them:
    its pages are read a window of the time order at a time (see _window)."""
    query = events.query
    return bool(query.event_types or query.joined is not None or query.transports
                or events.on_events) and not (query.visitor_ids or query.user_ids)


def _window(store: Store, query: EventQuery, before: tuple[int, int] | None,
            width: int) -> tuple[EventQuery, int | None]:
    """`query` cut to the next `width` events of its catalog's time order (and those
    of the same microsecond as the last), and the event time its window ends at
    (None: not cut, the window reaches the catalog's oldest). The store walks the
    time index until a page fills: a type that no event has read the whole catalog
    in one statement that nothing stops (0.6 s of a pool thread at 300k events,
    half a minute at 10M), however often asked."""
    edge = store.user_event_time_past(query, before, width - 1)
    if edge is None or (query.after is not None and query.after.micros >= edge):
        return query, None
    return replace(query, after=TimeBound(edge, True)), edge


def _next_width(width: int, seconds: float, left: float) -> int:
    """The width of the window after one of `width` events read in `seconds`, with
    `left` seconds of the call's budget left: what this pace reads in them, at most
    four times as many and WIDEST_WINDOW, at least SCAN_LIMIT."""
    paced = width * left / seconds if seconds > 0 else WIDEST_WINDOW
    return int(max(SCAN_LIMIT, min(paced, 4 * width, WIDEST_WINDOW)))


def list_user_events(store: Store, events: EventFilter, size: int,
                     token: str) -> console_pb2.ListUserEventsResponse:
    """A page of the selected events, latest event time first; short (or empty),
    with a token to go on, once the call has spent its budget.

    A filter no index seeks (see _windowed) is read a window of the time order at a
    time, each window's events sought in the database (the stored bytes of those
    of a session or product id must hold it: no other row is sent or unpacked),
    window after window until the page fills, for at least MIN_WINDOWS windows and
    then until LIST_SECONDS have passed, each window as wide as the last one's pace
    says fits in what is left. A call looked through 5,000 events, one window: a
    session among the oldest of 3M events was 600 empty pages of 130 ms each."""
    from server.loop import between_reads
    from server.store.console import may_continue

    question = page_tokens.question(events)
    position = _position(store, token, 2, question)
    before = None if position is None else (position[0], position[1])
    answer = console_pb2.ListUserEventsResponse()
    if events.selects_nothing:  # (the token checked all the same)
        return answer
    windowed = _windowed(events)
    # (sought in the database within a window alone: there, no read can walk far)
    needles = events.needles if windowed else ()
    began = time.monotonic()
    width, windows, room = SCAN_LIMIT, 0, PAGE_BYTES

    def after_last() -> console_pb2.ListUserEventsResponse:
        last = answer.user_events[-1]  # full: the next page starts after it
        answer.next_page_token = _signed_token(
            store, last.user_event.event_time.ToMicroseconds(), last.id, question)
        return answer

    while True:  # a window at a time (one, the whole catalog, when not windowed)
        window_began = time.monotonic()
        query, window_end = _window(store, events.query, before, width) if windowed \
            else (events.query, None)
        read = 0
        while True:
            between_reads()
            want = size - len(answer.user_events)
            batch = min(want, READ_BATCH) if not events.on_events \
                else max(want, 100) if windowed else min(max(want, 100), SCAN_LIMIT - read)
            rows = store.user_events_newest(query, batch, before, containing=needles)
            read += len(rows)
            found = 0
            for row in rows:  # decoded one at a time: none past the page's end
                products = 0
                if events.on_events:  # (before its message is made: most are left out)
                    selected = _selected_products(events, row.payload)
                    if selected is None:
                        continue
                    products = selected
                # its bytes (as long as its message serialized): what it costs at
                # least, known before it is decoded, so one that cannot fit is not
                wire = stored_user_event_wire(row)
                least = len(wire) + PRODUCT_BYTES * products
                found += 1
                if found > want or (answer.user_events and least > room):
                    return after_last()
                # Decoded into the page, once: a message decoded apart is copied when
                # appended (25 MB decoded and 26 MB copied for an event of 60,000
                # products).
                message = answer.user_events.add()
                message.MergeFromString(wire)
                cost = len(wire) + PRODUCT_BYTES * len(message.user_event.product_details)
                if cost > room and len(answer.user_events) > 1:
                    # its products took it past the page's end (its memory stays the
                    # page's until the page goes: one event, as one decoded apart was)
                    del answer.user_events[-1]
                    return after_last()
                room -= cost
            if found == want and len(rows) == batch:
                return after_last()
            if not may_continue(rows, batch):
                break  # the window's end
            before = (rows[-1].event_time_us, rows[-1].id)
            # short, but this call read enough: one window's events (a window is as
            # wide as a sparser one's pace says fits, or holds a whole microsecond's
            # events) were all read and decoded before the budget was looked at
            if read >= SCAN_LIMIT if not windowed else \
                    windows + 1 >= MIN_WINDOWS and time.monotonic() - began >= LIST_SECONDS:
                answer.next_page_token = _signed_token(store, *before, question)
                return answer
        if window_end is None:
            return answer  # the last page
        before = (window_end, 0)  # on from before the window's time
        windows += 1
        now = time.monotonic()
        left = LIST_SECONDS - (now - began)
        if windows >= MIN_WINDOWS and left <= 0:
            answer.next_page_token = _signed_token(store, *before, question)
            return answer
        width = _next_width(width, now - window_began, max(left, 0.0))


def _selected_products(events: EventFilter, payload: bytes) -> int | None:
    """How many products the stored event `payload` names if `events` selects it;
    None if not. Checked on the event decoded apart, and let go: an event decoded
    into a page stays in the page's memory until the page goes, even taken out.
    One whose bytes lack a session or product id looked for is not decoded."""
    if not events.may_select(payload):
        return None
    event = user_event_pb2.UserEvent.FromString(payload)
    return len(event.product_details) if events.selects(event) else None


def count_user_events(store: Store, events: EventFilter) -> int:
    """How many events `events` selects: counted by the store, or, with terms on
    decoded events, by decoding the events the store finds holding the bytes of
    every session and product id looked for (among those its terms select)."""
    from server.loop import between_reads

    if not events.on_events:
        return store.count_user_events(events.query)
    if events.selects_nothing:
        return 0
    count, before = 0, None
    while rows := store.user_events_newest(events.query, SCAN_LIMIT, before,
                                           containing=events.needles):
        between_reads()
        count += sum(1 for row in rows if _selected_products(events, row.payload) is not None)
        before = (rows[-1].event_time_us, rows[-1].id)
    return count


def list_client_events(store: Store, events: ClientEventFilter | str, size: int,
                       token: str) -> console_pb2.ListClientEventsResponse:
    """A page of the tenant's client events that `events` selects (a tenant's name:
    all of them), latest create time first (of one time, the last stored first);
    its token holds the last one's (create time, id).

    A type, job or request id is sought in the database by its bytes (see
    ClientEventFilter.query) a window of the time order at a time, as
    list_user_events reads its windows: for at least MIN_WINDOWS of them, then
    until LIST_SECONDS have passed, so such a page may be short (even empty), with
    a token to go on. (One statement over the whole tenant sought a type no event
    had through each of 300,000 events, 0.27 s of CPU, however often asked.)"""
    from server.loop import between_reads
    from server.store.console import may_continue

    if isinstance(events, str):
        events = ClientEventFilter(events)
    question = page_tokens.question(events.tenant) if events == ClientEventFilter(events.tenant) \
        else page_tokens.question(events)  # (a token of the unfiltered list stays good)
    position = _position(store, token, 2, question)
    before = None if position is None else (position[0], position[1])
    answer = console_pb2.ListClientEventsResponse()
    # (windowed by its decoded terms, not by the bytes sought: `requestId = ""`
    # seeks none, and read the whole tenant in one call for a page)
    windowed = events.decoded_terms
    room, began, width, windows = PAGE_BYTES, time.monotonic(), SCAN_LIMIT, 0

    def going_on() -> console_pb2.ListClientEventsResponse:
        if before is not None:
            answer.next_page_token = _signed_token(store, *before, question)
        return answer

    while True:  # a window at a time (one, the whole tenant, when not windowed)
        window_began = time.monotonic()
        query, window_end = _client_window(store, events.query, before, width) if windowed \
            else (events.query, None)
        while True:
            between_reads()
            want = size - len(answer.client_events)
            if want <= 0:
                return going_on()  # the next page starts after the last one in this one
            # (with terms on the decoded events some rows read may be left out)
            batch = max(want, 100) if events.on_events else min(want, READ_BATCH)
            rows = store.client_events_newest(query, batch, before)
            kept = [row for row in rows if events.selects_row(row)]
            had = len(answer.client_events)
            room, full = _decode_within(answer.client_events,
                                        map(stored_client_event_wire, kept[:want]), room)
            taken = len(answer.client_events) - had
            if full or taken < len(kept):
                if taken:
                    before = (kept[taken - 1].create_time_us, kept[taken - 1].id)
                return going_on()
            if rows:  # every one selected went in: on after the last row read
                before = (rows[-1].create_time_us, rows[-1].id)
            if not may_continue(rows, batch):
                break  # the window's end
        if window_end is None:
            return answer  # the last page
        before = (window_end, 0)  # on from before the window's time
        windows += 1
        now = time.monotonic()
        left = LIST_SECONDS - (now - began)
        if windows >= MIN_WINDOWS and left <= 0:
            return going_on()
        width = _next_width(width, now - window_began, max(left, 0.0))


def _client_window(store: Store, query: ClientEventQuery, before: tuple[int, int] | None,
                   width: int) -> tuple[ClientEventQuery, int | None]:
    """`query` cut to the next `width` events of its tenant's time order (and those
    of the same microsecond as the last), and the create time its window ends at
    (None: not cut, the window reaches the tenant's oldest), as _window."""
    edge = store.client_event_time_past(query, before, width - 1)
    if edge is None or (query.after_us is not None and query.after_us >= edge):
        return query, None
    return replace(query, after_us=edge), edge


def count_client_events(store: Store, events: ClientEventFilter) -> int:
    """How many client events `events` selects: counted by the store, less, of the
    events of a time bound's microsecond the column cannot settle, those the bound
    leaves out; with terms on the decoded events, by decoding each the store finds
    (holding the bytes of a job or request id looked for)."""
    if not events.decoded_terms:
        count = store.count_client_events(events.query)
        query = events.query
        for micros in events.edges:
            # (an edge outside the range the store counted, as of bounds that
            # contradict, took nothing from the count: none to take off)
            if (query.after_us is not None and micros < query.after_us) or \
                    (query.before_us is not None and micros > query.before_us):
                continue
            edge = replace(query, after_us=micros, before_us=micros)
            count -= sum(1 for row in _client_rows(store, edge) if not events.selects_row(row))
        return count
    return sum(1 for row in _client_rows(store, events.query) if events.selects_row(row))


def _client_rows(store: Store, query: ClientEventQuery) -> Iterator[StoredClientEvent]:
    """Every client event `query` selects, read SCAN_LIMIT at a time."""
    from server.loop import between_reads
    from server.store.console import may_continue

    before = None
    while True:
        between_reads()
        rows = store.client_events_newest(query, SCAN_LIMIT, before)
        yield from rows
        if not may_continue(rows, SCAN_LIMIT) or not rows:
            return
        before = (rows[-1].create_time_us, rows[-1].id)


def list_rejections(store: Store, scope: RejectionScope, size: int,
                    token: str) -> console_pb2.ListRejectionsResponse:
    # (here: it imports the server's call policy, its metrics and operations, which a
    # CLI that only parses a filter before asking a server never needs)
    from server.console import rejections

    question = page_tokens.question(scope)
    position = _position(store, token, 1, question)
    rows = store.rejections_newest(scope.project, size,
                                   None if position is None else position[0], scope.parent)
    answer = console_pb2.ListRejectionsResponse()
    # as a page of events: at least one, then what fits
    _, full = _add_within(answer.rejections, (rejections.shown(*row) for row in rows),
                          PAGE_BYTES)
    if full or len(rows) == size:
        answer.next_page_token = _signed_token(store, answer.rejections[-1].id, question)
    return answer


def _decode_within(page: Any, wires: Iterable[bytes], room: int) -> tuple[int, bool]:
    """Decode the serialized messages `wires` into the repeated field `page`, each
    once, while they fit in `room` bytes (the first always goes in); (the room
    left, whether one did not fit). (A message decoded apart is copied when
    appended: twice the memory of a large one.)"""
    for wire in wires:
        if len(page) and len(wire) > room:
            return room, True
        page.add().MergeFromString(wire)
        room -= len(wire)
    return room, False


def _add_within(page: Any, messages: Iterable[Message], room: int) -> tuple[int, bool]:
    """Append `messages` to the repeated field `page` while they fit in `room` bytes
    (the first always goes in); (the room left, whether one did not fit)."""
    for message in messages:
        cost = message.ByteSize()
        if len(page) and cost > room:
            return room, True
        page.append(message)
        room -= cost
    return room, False


def list_catalogs(store: Store, project: str | None, size: int, token: str,
                  counted: bool = True) -> console_pb2.ListCatalogsResponse:
    """A page of the data sets of `project` (every project: None): the catalogs by
    name, then the tenants; their names alone unless `counted`."""
    prefix = "" if project is None else f"projects/{project}/"
    answer = console_pb2.ListCatalogsResponse()
    first, after = _data_set_position(store, token)
    for kind in range(first, len(_DATA_SETS)):
        rows, more = store.data_sets(kind == 1, prefix, after, size, counted)
        into = answer.tenants if kind else answer.catalogs
        for row in rows:
            data_set = into.add(name=row.name)
            if counted and row.events:  # (a catalog of products only: no count, no time)
                data_set.event_count = row.events
                data_set.last_event_time.FromMicroseconds(row.last_event_us)
                _time(row.last_received_us, data_set.last_receive_time)
        if more:
            answer.next_page_token = _data_set_token(store, kind, rows[-1].name if rows else after)
            break
        # (a page the catalogs filled asks the tenants for none: only whether any follow)
        size -= len(rows)
        after = ""
    return answer


_DATA_SETS = ("catalogs", "tenants")


def _data_set_token(store: Store, kind: int, after: str) -> str:
    return page_tokens.signed(store.page_token_key(), f"{_DATA_SETS[kind]}:{after}".encode())


def _data_set_position(store: Store, token: str) -> tuple[int, str]:
    """(0 for the catalogs, 1 for the tenants; the name the page starts after) of a
    ListCatalogs page token; (0, "") for none. INVALID_ARGUMENT for one this server
    did not make."""
    if not token:
        return 0, ""
    body = page_tokens.body_of(store.page_token_key_if_made(), token)
    try:
        kind, _, after = body.decode().partition(":")
        return _DATA_SETS.index(kind), after
    except (ValueError, binascii.Error):  # (a UnicodeDecodeError is a ValueError)
        raise InvalidArgument.field("page_token", "is not a page token of this list") from None

