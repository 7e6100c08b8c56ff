"""google.cloud.retail.v2.UserEventService: parse, validate, store, answer.

The methods are coroutines on the server's loop: validation runs there, the
event write awaits the group commit, other store work goes `off_loop`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from footfall.retail.v2 import (
    import_config_pb2,
    purge_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.api import httpbody_pb2
from google.longrunning import operations_pb2

from server import json_problems
from server.clock import Clock, EventStamps
from server.config import Settings
from server.console import origin
from server.errors import FieldViolation, InvalidArgument, UnreadValue, gather, raise_if_any
from server.http.transcode import LARGE_ANSWER_BYTES
from server.loop import in_decoder, large_call, off_loop
from server.names import parse_catalog
from server.operations.runner import OperationRunner
from server.policy import deadline_of
from server.policy.envelope import LARGE_REQUEST_BYTES
from server.policy.limits import event_size_violation
from server.retail import (
    collect,
    encoder,
    import_events,
    join,
    plain_pixel,
    purge,
    rejoin,
    validation,
)
from server.retail.bulk_import import check_sources
from server.store import EventRow, Store

log = logging.getLogger(__name__)
# Told why an event answered before its commit was refused at it (see Join.refused).
Refused = Callable[[BaseException], None]


class UserEventService(user_event_service_pb2_grpc.UserEventServiceServicer):
    def __init__(self, store: Store, settings: Settings, clock: Clock,
                 runner: OperationRunner, process: int = 0) -> None:
        """`process`: this process's index among the server's --processes (see
        EventStamps)."""
        self._store = store
        self._stamps = EventStamps(clock, process, settings.processes)
        self._strict = settings.strict_event_types
        self._max_event_bytes = settings.max_event_bytes
        self._durable_pixels = settings.durable_pixels
        self._clock = clock
        self._runner = runner
        self._gcs_root = Path(settings.gcs_root)

    def _violations(self, parent: str, event: user_event_pb2.UserEvent, path: str,
                    found: list[FieldViolation] | None = None,
                    time_field: str | None = None) -> tuple[Any, list[FieldViolation]]:
        """The catalog `parent` names (None if it names none) and every violation of
        `event` for it: the parent's, those already `found` in the request, and the
        event's own (unless the event could not be decoded at all, which `found`
        then says, or is over the size limit, which is then its one violation; with
        values of the wrong type, those about the values that did read, unless its
        type is one of them: most rules hang on it). `time_field`: the request field
        the event's time came from (a pixel's `ets`), which its violation names."""
        violations: list[FieldViolation] = []
        catalog = gather(violations, parse_catalog, parent, "parent")
        violations.extend(found or [])
        # A JSON error anywhere in the event (`user_event.product_details`) leaves it
        # undecoded: checking what is left would report fields the caller did send.
        # Values of the wrong type alone leave the rest read (UnreadValue).
        if not any(((v.field == path or v.field.startswith(f"{path}."))
                    and not isinstance(v, UnreadValue)) or v.field == f"{path}.event_type"
                   for v in found or []):
            too_big = event_size_violation(event, path, self._max_event_bytes)
            own = [too_big] if too_big is not None else validation.user_event_violations(
                event, path, strict_event_types=self._strict,
                now_s=self._clock.now_ns() // 10**9)
            violations.extend(json_problems.beside_unread(own, found) if found else own)
        if time_field is not None:  # (not the event's own eventTime of the wrong type)
            violations = [FieldViolation(time_field, f"as the event's time, {v.description}")
                          if v.field == f"{path}.event_time" and not isinstance(v, UnreadValue)
                          else v for v in violations]
        return catalog, violations

    def _checked(self, parent: str, event: user_event_pb2.UserEvent, path: str,
                 found: list[FieldViolation] | None = None,
                 time_field: str | None = None) -> str:
        """The catalog `parent` names, once `event` is valid for it (stamped with the
        time now if it has none). INVALID_ARGUMENT listing every violation (see
        `_violations`)."""
        catalog, violations = self._violations(parent, event, path, found, time_field)
        raise_if_any(violations)
        if not event.HasField("event_time"):
            event.event_time.FromNanoseconds(self._stamps.now_ns())
        return str(catalog)

    def _joined_later(self, name: str, event: user_event_pb2.UserEvent, ids: list[str],
                      refused: Refused | None = None, received: bytes | None = None,
                      size: int = 0) -> join.JoinedLater:
        """The write of `event` joined by the writer, which reads the products of its
        whole batch at once; the event is not touched here until the write is done.
        The row is made on the writer's thread: how and when the event came is known
        here, in the call's context (server.console.origin). `refused`: see Join;
        `received`: the event's deterministic serialization, if made; `size`: its
        size serialized, for a write nobody waits for (what bounds only those)."""
        return join.JoinedLater(name, event, ids, self._products_to_join, self._max_event_bytes,
                                (origin.transport(), origin.now_us()), received, refused, size)

    async def _store_event(self, parent: str, event: user_event_pb2.UserEvent, path: str,
                           wait: bool, found: list[FieldViolation] | None = None,
                           answered: bool = True, time_field: str | None = None
                           ) -> bytes | None:
        """Validate `event` for the catalog `parent` (see `_checked`), stamp its
        time, store it. `answered`: the caller gets the event back, as received and
        stamped: not joined with the catalog, whose products a writer key may not
        read (nor, with auth off, a page of any origin). INVALID_ARGUMENT listing
        every violation. Of a large event that is `answered`, its serialization as
        it is left (what its answer is made of), else None."""
        # A large event's every pass (its rules, its encodings, its hash) is made on a
        # decoder's thread, its deterministic encoding on the encoder's process, never
        # on the loop: one of 100,000 attributes cost the loop 70-80 ms of its CPU in
        # passes made back to back (its size, its deterministic encoding alone 30-100
        # ms, its answer's), and those made on another thread held the interpreter's
        # lock as long. Decided by the call's request (the envelope's `large`, by its
        # bytes), or by the event's size (1.5 us for a small one) where it was not.
        large = large_call() or event.ByteSize() > LARGE_REQUEST_BYTES
        made = await in_decoder(self._made, parent, event, path, wait, found, answered,
                                time_field, True) if large \
            else self._made(parent, event, path, wait, found, answered, time_field)
        name, ids, row, received, size, wire = made
        if row is not None:  # (no product named: the row is made)
            await self._store.write_user_events_async([row], wait=wait)
            return wire if answered else None
        if wait or not answered:
            joining = self._joined_later(name, event, ids, received=received, size=size)
            await self._store.write_joined_async(joining, wait=wait)
            changed = joining.changed
        else:  # the answer (write_async) comes before the commit
            products = await off_loop(self._read_products, name, ids)
            joined = await in_decoder(self._joined_row, name, event, products, received) \
                if large else self._joined_row(name, event, products, received)
            await self._store.write_user_events_async([joined], wait=wait)
            changed = joined.source is not None
        if not answered:
            return None
        if changed:  # (joined in place by then)
            assert received is not None
            if large:
                return await in_decoder(_restored_wire, event, received)
            _restored(event, received)
            return None
        # (a join that left its row as it was may yet have copied products in place,
        # their maps in another order: the answer is made of the event as it is left)
        return await in_decoder(event.SerializeToString) if large else None

    def _made(self, parent: str, event: user_event_pb2.UserEvent, path: str, wait: bool,
              found: list[FieldViolation] | None, answered: bool, time_field: str | None,
              large: bool = False) -> _Made:
        """What `_store_event` stores of `event` once it is valid (see `_checked`). A
        `large` one's deterministic serialization is made by the encoder's process
        (server.retail.encoder), and its serialization kept to answer it."""
        name = self._checked(parent, event, path, found, time_field)
        ids = join.product_ids([event])
        wire, received = encoder.encodings(event) if large else (None, None)
        if not ids:
            return (name, ids, join.joined_row(name, event, {}, self._max_event_bytes,
                                               received=received), None, 0, wire)
        if answered and received is None:
            received = event.SerializeToString(deterministic=True)
        size = 0 if wait or answered else \
            len(received) if received is not None else event.ByteSize()
        return name, ids, None, received, size, wire

    def _joined_row(self, name: str, event: user_event_pb2.UserEvent, products: dict[str, Any],
                    received: bytes | None) -> EventRow:
        return join.joined_row(name, event, products, self._max_event_bytes, received=received)

    def _read_products(self, catalog: str, ids: list[str]) -> dict[str, Any]:
        return join.load_products(self._store, catalog, ids)

    def _products_to_join(self, catalog: str, ids: list[str]) -> dict[str, Any]:
        """Join.read: on the writer's thread (see Store.products_to_join)."""
        return join.load_products(self._store, catalog, ids, to_join=True)

    async def WriteUserEvent(self, request: user_event_service_pb2.WriteUserEventRequest,
                             context: grpc.aio.ServicerContext) -> user_event_pb2.UserEvent:
        """Store one event (durably unless write_async); returns it as sent, with its
        time (and with user_info.direct_user_request, the address and User-Agent the
        call came with, where the event left them empty).

        INVALID_ARGUMENT for a bad parent or event.
        """
        if not request.HasField("user_event"):
            raise InvalidArgument([*_parent_violations(request.parent),
                                   FieldViolation("user_event", "is required")])
        event = request.user_event  # ours (decoded for this call): stamped and joined in place
        _fill_direct_request(event, context)
        wire = await self._store_event(request.parent, event, "user_event",
                                       wait=not request.write_async)
        if wire is not None and len(wire) > LARGE_ANSWER_BYTES:
            # A large event is answered as its serialization, made off the loop: the
            # bytes grpc would make of it on the loop (4-35 ms for 100,000 attributes),
            # and those the REST gateway makes of an answer this large to write its
            # JSON on a decoder's thread (see http.answers).
            return wire  # type: ignore[return-value]
        return event

    def partly_read_refusal(self, method: str, request: Any, found: list[FieldViolation],
                            context: Any) -> InvalidArgument | None:
        """The refusal of a REST call to `method` whose body held values of the wrong
        type (`found`, UnreadValues), `request` holding the rest of it: they are said
        beside what the rules say of the values that did read, as for a pixel's event
        (see `_violations`), or for an import's sources (but the files they name: see
        bulk_import.check_sources) and inline events. None for a method whose rules are
        not said so."""
        time_field = None
        if method == "WriteUserEvent" and request.HasField("user_event"):
            event, path = request.user_event, "user_event"
            _fill_direct_request(event, context)  # (judged as WriteUserEvent would)
        elif method == "CollectUserEvent" and any(v.field == "raw_json" for v in found):
            # A raw_json that read would be the event (user_event is then ignored): what
            # the rules say of the event hangs on it, and waits; the request's own do not
            return InvalidArgument([*_parent_violations(request.parent), *found,
                                    *json_problems.beside_unread(
                                        collect.request_violations(request), found)])
        elif method == "CollectUserEvent":
            event, path, decoded, time_field = self._collected(
                request, collect.requester_of(context))
            # (what the request's own wrong values leave out, `user_event` given as an
            # object and so `is required`, waits for them)
            found = [*found, *json_problems.beside_unread(decoded, found)]
        elif method == "ImportUserEvents":
            # An inline event's rules are failures of the import when it runs; refused
            # for its wrong values, it is told of them at once. (No catalog: its rules
            # need none.)
            check = import_events.EventCheck("", self._strict, self._max_event_bytes,
                                             self._clock.now_ns() // 10**9)
            sources = check_sources(request, self._gcs_root, import_events.SOURCES,
                                    files=False)  # (import_events.check_request's, but files)
            return InvalidArgument([*_parent_violations(request.parent), *found,
                                    *json_problems.beside_unread(sources, found),
                                    *import_events.inline_rules(request, check, found)])
        else:
            return None
        return InvalidArgument(self._violations(request.parent, event, path, found,
                                                time_field)[1])

    async def CollectUserEvent(self, request: user_event_service_pb2.CollectUserEventRequest,
                               context: grpc.aio.ServicerContext) -> httpbody_pb2.HttpBody:
        """Store the event a pixel carries; answers a 1x1 transparent GIF. Over HTTP,
        what the event leaves empty is filled from the browser's request. A browser's
        pixel is answered once its event is valid and queued (committed with the next
        group), since the GIF tells it nothing either way (unless --durable-pixels);
        every other caller, once the event is committed.

        INVALID_ARGUMENT for bad JSON, size limits, unknown rules, a bad event.
        """
        requester = collect.requester_of(context)
        # A large event (up to 2,000,000 characters of JSON) takes the parser a second
        # or more: decoded and checked off the loop, which serves every call.
        large = len(request.user_event) + len(request.raw_json) > LARGE_REQUEST_BYTES
        if not self._durable_pixels and collect.answers_gif_only(context):
            queue = functools.partial(self.collect_queued, request, requester,
                                      getattr(context, "refused_later", None))
            if large:
                await in_decoder(queue)
            else:
                queue()
        else:
            event, path, found, time_field = await in_decoder(
                self._collected, request, requester) if large \
                else self._collected(request, requester)
            await self._store_event(request.parent, event, path, wait=True, found=found,
                                    answered=False, time_field=time_field)
        return collect.pixel_body()

    @property
    def queues_pixels(self) -> bool:
        """Whether a browser's pixel is answered once queued (not --durable-pixels)."""
        return not self._durable_pixels

    def collect_queued(self, request: user_event_service_pb2.CollectUserEventRequest,
                       requester: collect.Requester | None,
                       refused: Refused | None = None) -> None:
        """CollectUserEvent for a browser's pixel, answered before its commit, with no
        coroutine (the HTTP gateway calls it inline): the event decoded, filled from
        `requester`, checked, and queued for the next group commit. `refused` is
        told why, should the commit refuse it after all (a catalog product that cannot
        be decoded, a failure of its row): the answer is gone by then.

        INVALID_ARGUMENT as CollectUserEvent; UNAVAILABLE when more events wait for
        their commit than may (Store.queue_joined), or a PostgreSQL store's tables were
        changed under it: queued through a database away, a full disk or a lock held, a
        pixel is refused only past those bounds.
        """
        plain = self._plain(request, requester)
        if plain is not None:
            name, (event, ids, size) = plain
        else:
            event, path, found, time_field = self._collected(request, requester)
            name = self._checked(request.parent, event, path, found, time_field)
            ids = join.product_ids([event])
            size = event.ByteSize() if ids else 0  # (a join's alone is needed)
        if ids:
            self._store.queue_joined(self._joined_later(name, event, ids, refused, size=size),
                                     through_outage=True)
        else:
            row = join.joined_row(name, event, {}, self._max_event_bytes)
            self._store.write_user_events([row], wait=False, through_outage=True)

    def _plain(self, request: user_event_service_pb2.CollectUserEventRequest,
               requester: collect.Requester | None
               ) -> tuple[str, plain_pixel.Plain] | None:
        """The catalog and the event of a pixel of the common shape, valid and with its
        time, read in one pass (see plain_pixel); None for any other, which
        `_collected` and `_checked` read and judge."""
        if requester is None:
            return None
        try:
            catalog = str(parse_catalog(request.parent))
        except InvalidArgument:  # (`_checked` says why, with the event's violations)
            return None
        plain = plain_pixel.event(request, requester, self._clock.now_ns() // 10**9,
                                  self._stamps.now_ns, self._max_event_bytes, self._strict)
        return (catalog, plain) if plain is not None else None

    def _collected(self, request: user_event_service_pb2.CollectUserEventRequest,
                   requester: collect.Requester | None
                   ) -> tuple[user_event_pb2.UserEvent, str, list[FieldViolation], str | None]:
        """The event a collect request carries (filled from the browser's request
        when it came over HTTP), the request field it came in, the request's
        violations, and "ets" when the event's time is the request's `ets` (a
        pixel that sent only that was told of a `user_event.event_time`)."""
        if requester is not None and requester.in_url:  # (refused unread, as Google does)
            raise_if_any(collect.in_url_violations(request))
        event = user_event_pb2.UserEvent()
        # (an event whose JSON shows it is over --max-event-bytes is left unparsed: its
        # size is then its one violation, as a REST body's is: http.body_bounds)
        found = collect.decode_collect_request(request, event, self._max_event_bytes)
        if requester is not None:
            collect.fill_from_requester(event, requester)
        return (event, "raw_json" if request.raw_json else "user_event", found,
                "ets" if collect.time_from_ets(request, event) else None)

    async def ImportUserEvents(self, request: import_config_pb2.ImportUserEventsRequest,
                               context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Start an import operation; INVALID_ARGUMENT for what can be checked now
        (parent, source, sizes, files that do not exist, unsupported sources);
        DEADLINE_EXCEEDED when listing the files outlasts the call."""
        catalog = await off_loop(import_events.check_request, request, self._gcs_root,
                                 deadline_of(context))
        return await off_loop(self._runner.submit, catalog, import_events.KIND, request,
                              import_events.new_operation)

    async def PurgeUserEvents(self, request: purge_config_pb2.PurgeUserEventsRequest,
                              context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Start a purge (force=false only counts); INVALID_ARGUMENT for a bad
        parent or filter, saying where."""
        query = purge.check_request(request)
        return await off_loop(self._runner.submit, query.catalog, purge.KIND, request,
                              purge.new_operation)

    async def RejoinUserEvents(self, request: user_event_service_pb2.RejoinUserEventsRequest,
                               context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Start a rejoin of the events in scope; INVALID_ARGUMENT for a bad parent
        or scope."""
        query = rejoin.check_request(request)
        return await off_loop(self._runner.submit, query.catalog, rejoin.KIND, request,
                              rejoin.new_operation)


# What UserEventService._made makes of a valid event: the catalog's name, the products
# it names, its row when it names none (nothing to join), its deterministic
# serialization when it is answered (kept, to answer it as received once joined) or
# large, its size for a write nobody waits for (0 else: see _joined_later), and a large
# one's serialization (what its answer is made of). (A tuple: a NamedTuple made for
# every small write cost it 0.3 us more.)
_Made = tuple[str, list[str], EventRow | None, bytes | None, int, bytes | None]


def _restored(event: user_event_pb2.UserEvent, received: bytes) -> None:
    """`event` as `received` (its serialization before it was joined in place)."""
    event.Clear()
    event.MergeFromString(received)


def _restored_wire(event: user_event_pb2.UserEvent, received: bytes) -> bytes:
    """`_restored`, then its serialization (what its answer is made of)."""
    _restored(event, received)
    return event.SerializeToString()


def _fill_direct_request(event: user_event_pb2.UserEvent, context: Any) -> None:
    """Fill the User-Agent and address `event` leaves empty from the call's, when its
    user_info.direct_user_request says it came from the end user's device: "ip_address
    and user_agent can be populated from the HTTP request" (Google's UserInfo)."""
    if event.user_info.direct_user_request:
        collect.fill_from_requester(event, collect.direct_requester(context))


def _parent_violations(parent: str) -> list[FieldViolation]:
    """What is wrong with `parent` as a catalog's name (nothing when it names one)."""
    problems: list[FieldViolation] = []
    gather(problems, parse_catalog, parent, "parent")
    return problems
