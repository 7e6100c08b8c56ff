"""footfall.console.v1.ConsoleService: reading back what the server holds.

Thin: each method parses its request, then hands over to `queries` (reads) or
the store (resets) and `watch` (streams).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import grpc
import grpc.aio
from footfall.console.v1 import console_pb2, console_pb2_grpc
from google.protobuf.message import Message
from grpc_status import rpc_status

from server.console import client_filter, origin, queries, sources
from server.console.feed import (
    SEND_SECONDS,
    SLOW_CLIENT,
    Batch,
    Item,
    Watches,
    close_stream,
    let_slow_client_go,
)
from server.console.pace import Listing
from server.console.watch import Caller, admitted
from server.errors import FieldViolation, FootfallError, InvalidArgument, gather, raise_if_any
from server.http.transcode import LARGE_ANSWER_BYTES
from server.loop import long_read, off_loop, page_read
from server.names import (
    CatalogName,
    TenantName,
    parse_catalog,
    parse_project,
    parse_tenant,
    parse_tenant_or_project,
)
from server.policy import Policy
from server.policy.auth import ANY_PROJECT, Grant, MissingKey, Role, caller_grant
from server.policy.envelope import Envelope, reader_of
from server.rpc import TRANSPORT, status_of
from server.store import Store, answered_stored, committed_a_while, packed
from server.store.console import ConsoleSql, ResetCounts

# What a watch that sends one message a row is asked with.
WatchRequest = (console_pb2.WatchUserEventsRequest | console_pb2.WatchClientEventsRequest
                | console_pb2.WatchRejectionsRequest)

log = logging.getLogger(__name__)
SERVICE = console_pb2.DESCRIPTOR.services_by_name["ConsoleService"].full_name


def _reset(counts: ResetCounts) -> console_pb2.ResetResponse:
    return console_pb2.ResetResponse(
        deleted_events_count=counts.events, deleted_products_count=counts.products,
        deleted_rejections_count=counts.rejections, deleted_operations_count=counts.operations,
        cancelled_operations_count=counts.cancelled)


_ROLES = {Role.WRITER: console_pb2.Caller.WRITER, Role.READER: console_pb2.Caller.READER,
          Role.ADMIN: console_pb2.Caller.ADMIN}


def _caller(grant: Grant) -> console_pb2.Caller:
    """What `grant` may do, as GetCaller says it: never the key, nor its digest."""
    projects = [ANY_PROJECT] if ANY_PROJECT in grant.projects else sorted(grant.projects)
    return console_pb2.Caller(keys_checked=True, projects=projects, role=_ROLES[grant.role],
                              key_name=grant.name)


Named = TypeVar("Named", CatalogName, TenantName)


def _one_named(name: Named) -> Named:
    """`name`, unless a segment of it is `-`: Google's APIs read `-` as every
    collection (AIP-159) in a list's parent, never in the name of one resource to
    change, and a reset of `catalogs/-` deleted nothing and answered {}, as if the
    catalogs were reset. INVALID_ARGUMENT naming `name`, pointing at ResetProject."""
    segments = (name.location, name.catalog) if isinstance(name, CatalogName) \
        else (name.tenant,)
    if "-" in segments:
        kind = "catalog" if isinstance(name, CatalogName) else "tenant"
        raise InvalidArgument.field(
            "name", f"'-' names no {kind} ({name}): a reset takes no wildcard; to reset every "
                    f"catalog and tenant of the project, call ResetProject (POST "
                    f"/console/v1/projects/{name.project}:reset)")
    return name


Page = TypeVar("Page", bound=Message)


def _as_sent(read: Callable[..., Page], *args: Any) -> Page | bytes:
    """The page `read(*args)` makes, serialized in the thread that made it for a
    gRPC call (grpc would serialize it on the loop), or if it is large (as the
    gateway serializes an answer it writes as JSON off the loop): a page of large
    events waits to be sent, or written as JSON, as its bytes (1.1 MB for an
    event of 60,000 products), not decoded (25 MB). 30 such reads at once held up
    to 750 MB of pages waiting for the loop."""
    page = read(*args)
    if origin.transport() == origin.GRPC or page.ByteSize() > LARGE_ANSWER_BYTES:
        return page.SerializeToString()
    return page


# A message of a gRPC watch of batches at most (at least one event): a batch of all
# the events queued for a watch, or of the page a watch catching up read (up to
# 1,000 events), was one message, 6 to 9 MB of events of 1.5 MB, past the 4 MiB a
# gRPC client takes by default: such a client's watch ended RESOURCE_EXHAUSTED there,
# each time it came back. (Server-sent events have no such bound.)
BATCH_MESSAGE_BYTES = queries.PAGE_BYTES


def _batch_messages(wire: bytes) -> Iterator[bytes]:
    """The UserEventBatch `wire` (its events alone: field 1, repeated) as messages
    of at most BATCH_MESSAGE_BYTES, each of at least one event, in order."""
    if len(wire) <= BATCH_MESSAGE_BYTES:
        yield wire
        return
    start = 0
    for _number, _kind, begin, _value, end in packed.fields(wire):
        if end - start > BATCH_MESSAGE_BYTES and begin > start:
            yield wire[start:begin]
            start = begin
    yield wire[start:]


async def _write_message(write: Callable[[bytes], Awaitable[None]], wire: bytes,
                         batched: bool) -> None:
    """Write a watch's message `wire` (as several when `batched` and large). A
    function of its own so that no name holds the bytes once they are written: a
    local of the watch's loop kept each watch's last message while it waited for
    the next, outside feed.HELD_BYTES (200 watches of clients that read nothing,
    events of 2 kB: 230-520 MiB more, against about 100)."""
    if batched and len(wire) > BATCH_MESSAGE_BYTES:
        for part in _batch_messages(wire):
            await write(part)
    else:
        await write(wire)


class _SendClock:
    """Calls `too_slow` once a message has been written for SEND_SECONDS, with one
    timer for the watch, not one for each message: uvloop's timer, made and
    cancelled for each message, was a tenth of the loop's work of a send (about
    4,000 of 41,000 instructions, 200 watches of batches; grpc's own not counted).
    The timer, due SEND_SECONDS after the write it was set for began, sets itself
    again for the write then being made, if any."""

    __slots__ = ("_loop", "_too_slow", "_began", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, too_slow: Callable[[], None]) -> None:
        self._loop = loop
        self._too_slow = too_slow
        self._began: float | None = None  # (loop time) when the write being made began
        self._timer: asyncio.TimerHandle | None = None

    def writing(self) -> None:
        self._began = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._began + SEND_SECONDS, self._due)

    def written(self) -> None:
        self._began = None

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self) -> None:
        self._timer = None
        if self._began is None:
            return  # (the next write sets it again)
        due = self._began + SEND_SECONDS
        if self._loop.time() >= due:
            self._too_slow()
        else:
            self._timer = self._loop.call_at(due, self._due)


# What opening a watch and closing it costs the server (its CPU, seconds), charged to
# its caller in the lists' budget of reading time: 1.1-1.7 ms (grpc's, the loop's, the
# store's last row), 400-500 a second from one reader keeping 4 opening and cancelling
# at once; unpaced, such a reader took durable writes from 1,330-1,850 a second to
# 240-510, and keeping 500 at once to 7-35 (SQLite; on PostgreSQL alike).
OPEN_SECONDS = 0.0015


class ConsoleService(console_pb2_grpc.ConsoleServiceServicer):
    """Lists, watches and resets; `policy` admits the streams (the envelope does
    the unary calls); the pages of the lists take turns in `lists`, the counts in
    `long_reads` (none: no bound)."""

    def __init__(self, store: Store, watches: Watches, policy: Policy,
                 lists: Listing | None = None, long_reads: Listing | None = None) -> None:
        self._store = store
        self._watches = watches
        self._policy = policy
        self._lists = lists or Listing(0, time.monotonic)  # (no bound)
        self._long_reads = long_reads or Listing(0, time.monotonic)
        # The counts, whose work is the database's on PostgreSQL (a count of the store
        # is one statement), are charged their threads' time by the clock there.
        self._counted_elsewhere = isinstance(store, ConsoleSql) and store.reads_elsewhere
        self._envelope = Envelope(policy, TRANSPORT)  # refuses the gRPC streams

    async def ListUserEvents(self, request: console_pb2.ListUserEventsRequest,
                             context: grpc.aio.ServicerContext
                             ) -> console_pb2.ListUserEventsResponse | bytes:
        """INVALID_ARGUMENT for a bad parent, filter, page size or token. The page
        is answered serialized over gRPC, and over HTTP when large (see _as_sent),
        as are those of the lists below."""
        violations: list[FieldViolation] = []
        catalog = gather(violations, parse_catalog, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        events = gather(violations, queries.parse_filter, request.filter, str(catalog))
        raise_if_any(violations)
        await answered_stored(self._store)
        if events.on_events:  # (by sessionId or productId it reads windows for LIST_SECONDS)
            # a long read, in its project's turn: 64 such lists at once of one reader
            # key held the pool every call uses, and another project's product and
            # console reads waited 7 s
            return await self._lists.read(reader_of(context), long_read, _as_sent,
                                          queries.list_user_events, self._store, events, size,
                                          request.page_token, share=catalog.project)
        # (a page of 1,000 events holds a thread for up to a second: see loop.page_read)
        return await self._lists.read(reader_of(context), page_read, _as_sent,
                                      queries.list_user_events, self._store, events, size,
                                      request.page_token, share=catalog.project)

    async def CountUserEvents(self, request: console_pb2.CountUserEventsRequest,
                              context: grpc.aio.ServicerContext
                              ) -> console_pb2.CountUserEventsResponse:
        """INVALID_ARGUMENT for a bad parent or filter."""
        violations: list[FieldViolation] = []
        catalog = gather(violations, parse_catalog, request.parent)
        events = gather(violations, queries.parse_filter, request.filter, str(catalog))
        raise_if_any(violations)
        await answered_stored(self._store)
        # (by sessionId or productId it decodes every event the other terms select; a
        # count of the store reads its index through: 0.1 s a million) a long read, in
        # its caller's turn of the long reads' budget, as an insight
        count: int = await self._long_reads.read(reader_of(context), long_read,
                                                 queries.count_user_events, self._store,
                                                 events, share=catalog.project,
                                                 elsewhere=self._counted_elsewhere)
        return console_pb2.CountUserEventsResponse(count=count)

    async def ListClientEvents(self, request: console_pb2.ListClientEventsRequest,
                               context: grpc.aio.ServicerContext
                               ) -> console_pb2.ListClientEventsResponse | bytes:
        """INVALID_ARGUMENT for a bad parent, filter, page size or token. A project
        alone is its default tenant (as talent v4beta1 and `talent-events list` read
        it)."""
        violations: list[FieldViolation] = []
        tenant = gather(violations, parse_tenant_or_project, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        events = gather(violations, client_filter.parse, request.filter, str(tenant))
        raise_if_any(violations)
        # (by type, job or request id it reads rows for LIST_SECONDS: a long read)
        return await self._lists.read(reader_of(context),
                                      long_read if events.on_events else page_read, _as_sent,
                                      queries.list_client_events, self._store, events,
                                      size, request.page_token, share=tenant.project)

    async def CountClientEvents(self, request: console_pb2.CountClientEventsRequest,
                                context: grpc.aio.ServicerContext
                                ) -> console_pb2.CountClientEventsResponse:
        """INVALID_ARGUMENT for a bad parent or filter."""
        violations: list[FieldViolation] = []
        tenant = gather(violations, parse_tenant_or_project, request.parent)
        events = gather(violations, client_filter.parse, request.filter, str(tenant))
        raise_if_any(violations)
        # (by type, job or request id it decodes every event of the tenant: a long read,
        # in its caller's turn of the long reads' budget, as CountUserEvents)
        count: int = await self._long_reads.read(reader_of(context), long_read,
                                                 queries.count_client_events, self._store,
                                                 events, share=tenant.project,
                                                 elsewhere=self._counted_elsewhere)
        return console_pb2.CountClientEventsResponse(count=count)

    async def ListRejections(self, request: console_pb2.ListRejectionsRequest,
                             context: grpc.aio.ServicerContext
                             ) -> console_pb2.ListRejectionsResponse | bytes:
        """INVALID_ARGUMENT for a bad parent, page size or token."""
        violations: list[FieldViolation] = []
        scope = gather(violations, queries.parse_rejection_scope, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        raise_if_any(violations)
        # A caller that lists right after a refused call sees it, as it sees an
        # accepted write (unless the store cannot commit it now: see committed_a_while).
        await self._commit_waiting_refusals(a_while=True)
        return await self._lists.read(reader_of(context), page_read, _as_sent,
                                      queries.list_rejections, self._store, scope, size,
                                      request.page_token, share=scope.project or "-")

    async def _commit_waiting_refusals(self, a_while: bool = False) -> None:
        """Return once the refusals made so far are stored: they ride along with a
        later commit (up to 0.1 s on). `a_while`: or once committed_a_while gives up
        (a read; a reset needs the writer itself, so it waits for it either way)."""
        kept = self._policy.rejections
        if kept is None or not kept.waiting():
            return
        if a_while:
            await committed_a_while(self._store, "the refusals kept")
        else:
            await self._store.flush_async()

    async def ListCatalogs(self, request: console_pb2.ListCatalogsRequest,
                     context: grpc.aio.ServicerContext) -> console_pb2.ListCatalogsResponse:
        """INVALID_ARGUMENT for a bad parent, page size, view or token."""
        violations: list[FieldViolation] = []
        project = gather(violations, queries.parse_project, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        counted = gather(violations, queries.counted, request.view)
        raise_if_any(violations)
        await answered_stored(self._store)
        # counted, each catalog's events are counted (0.1 s a million): a long read, in
        # its caller's turn of the long reads' budget
        if counted:
            return await self._long_reads.read(reader_of(context), long_read,
                                               queries.list_catalogs, self._store, project,
                                               size, request.page_token, True,
                                               share=project or "-",
                                               elsewhere=self._counted_elsewhere)
        return await off_loop(queries.list_catalogs, self._store, project, size,
                              request.page_token, False)

    async def GetCaller(self, request: console_pb2.GetCallerRequest,
                        context: grpc.aio.ServicerContext) -> console_pb2.Caller:
        """What the call's key grants (every project when no keys are checked), any
        key's, a writer's too (the console tells it that it writes only); the envelope
        has refused a call without a known key (UNAUTHENTICATED) already."""
        if not self._policy.auth.enabled:
            return console_pb2.Caller(keys_checked=False, projects=[ANY_PROJECT])
        grant = caller_grant()
        if grant is None:  # (the envelope sets it for every guarded call)
            raise MissingKey()
        return _caller(grant)

    async def ResetCatalog(self, request: console_pb2.ResetCatalogRequest,
                     context: grpc.aio.ServicerContext) -> console_pb2.ResetResponse:
        """INVALID_ARGUMENT for a bad name, or one with a `-` (see _one_named)."""
        name = str(_one_named(parse_catalog(request.name, "name")))
        return await self._reset(self._store.reset_catalog, name)

    async def ResetTenant(self, request: console_pb2.ResetTenantRequest,
                    context: grpc.aio.ServicerContext) -> console_pb2.ResetResponse:
        """INVALID_ARGUMENT for a bad name, or one with a `-` (see _one_named)."""
        name = str(_one_named(parse_tenant(request.name, "name")))
        return await self._reset(self._store.reset_tenant, name)

    async def ResetProject(self, request: console_pb2.ResetProjectRequest,
                     context: grpc.aio.ServicerContext) -> console_pb2.ResetResponse:
        """INVALID_ARGUMENT for a bad name (projects/- too: no reset of every project)."""
        return await self._reset(self._store.reset_project, parse_project(request.name, "name"))

    async def _reset(self, reset: Callable[[str], ResetCounts],
                     name: str) -> console_pb2.ResetResponse:
        """What `reset(name)` deleted, once the refusals made before it are stored
        (else one made just before, a test's last call, was stored after the reset,
        and the next test found it); then no watch sends a page read before it."""
        await self._commit_waiting_refusals()
        counts = await off_loop(reset, name)
        self._watches.forget_pages()
        return _reset(counts)

    # -- streams ---------------------------------------------------------------

    async def WatchUserEvents(self, request: console_pb2.WatchUserEventsRequest,
                              context: grpc.aio.ServicerContext) -> None:
        """INVALID_ARGUMENT for a bad parent or filter, RESOURCE_EXHAUSTED past
        --max-watches; then every event selected (each a serialized
        StoredUserEvent), until the caller goes."""
        await self._grpc_watch("WatchUserEvents", request, context)

    async def WatchUserEventBatches(self, request: console_pb2.WatchUserEventsRequest,
                                    context: grpc.aio.ServicerContext) -> None:
        """As WatchUserEvents, several events to a message (each a serialized
        UserEventBatch), at most one every feed.BATCH_SECONDS."""
        await self._grpc_watch("WatchUserEventBatches", request, context)

    async def WatchClientEvents(self, request: console_pb2.WatchClientEventsRequest,
                                context: grpc.aio.ServicerContext) -> None:
        """INVALID_ARGUMENT for a bad parent; then every client event of the tenant
        (a project alone: its default tenant, as ListClientEvents reads it)."""
        await self._grpc_watch("WatchClientEvents", request, context)

    async def WatchRejections(self, request: console_pb2.WatchRejectionsRequest,
                              context: grpc.aio.ServicerContext) -> None:
        """INVALID_ARGUMENT for a bad parent; then every refusal of the project."""
        await self._grpc_watch("WatchRejections", request, context)

    async def open_stream(self, name: str, request: Any, context: Any,
                          transport: str = "http", grant: Grant | None = None
                          ) -> AsyncIterator[Item | Batch]:
        """The items (see feed.Item; Batches for WatchUserEventBatches) of the
        watch `name`, once the policy lets the call through (`grant`: the key's, as
        the envelope screened it) and the stream opens; raises the refusal. What
        the gateway calls for HTTP."""
        # (each opener takes its own request class: `request` is the one `name` takes)
        openers: dict[str, Callable[..., Awaitable[AsyncIterator[Any]]]] = {
            "WatchUserEvents": self._user_events,
            "WatchUserEventBatches": self._user_event_batches,
            "WatchClientEvents": self._client_events,
            "WatchRejections": self._rejections}
        opener = openers[name]
        return await admitted(self._policy, f"/{SERVICE}/{name}", transport, request, context,
                              lambda caller: opener(request, caller), grant)

    async def _grpc_watch(self, name: str, request: Any,
                          context: grpc.aio.ServicerContext) -> None:
        """The watch `name` over gRPC: a refusal before it opens aborts with its
        status; then each message is written to `context` as the same bytes for
        every watch (the guard sends bytes as they are). Written here, not
        yielded: each generator between the feed and grpc would cost every
        message of every watch."""
        started = time.perf_counter()
        method, grant = f"/{SERVICE}/{name}", None
        try:
            # (the key first, so that the log line of a refusal names it)
            grant = self._envelope.screen(method, tuple(context.invocation_metadata() or ()))
            messages = await self.open_stream(name, request, context, TRANSPORT, grant)
        except Exception as exc:
            refusal = self._envelope.refuse(method, exc, started, context, grant=grant)
            await context.abort_with_status(rpc_status.to_status(status_of(refusal)))
            return
        write = context.write
        batched = name == "WatchUserEventBatches"
        let_go: list[asyncio.Future[None]] = []  # the stream's closing, once let go

        def slow_client() -> None:
            # grpc can neither cancel a message being sent nor send a status while one
            # is (TOO_MANY_OPERATIONS; the call then hung until the client's deadline,
            # or for ever): the feed lets go of what the watch holds now, and the call
            # ends with UNAVAILABLE once the client takes that message (or when it
            # goes, or its deadline passes).
            let_go.append(asyncio.ensure_future(let_slow_client_go(messages)))

        # a client that takes nothing for SEND_SECONDS is let go (feed.py)
        clock = _SendClock(asyncio.get_running_loop(), slow_client)
        try:
            # The headers say the watch is open and its position fixed: a client that
            # waits for them (grpc-go's Header(), C++'s WaitForInitialMetadata) knows an
            # event it writes next will come. Sent with the first message only, a test
            # that opened a watch without after_id and then wrote could miss its event.
            # (Within the try: a caller gone as they are sent ends the stream here, as it
            # does later, not when the stream is collected.)
            await context.send_initial_metadata(())
            async for message in messages:
                clock.writing()
                try:
                    await _write_message(write, message.wire(), batched)
                except Exception as gone:
                    # The caller went while a message was being written (grpc's
                    # ExecuteBatchError): the watch ends as a cancelled call does, with
                    # no status sent to no one. Raised as it was, it was logged as an
                    # ERROR with its traceback, 17 lines a watch; returning, grpc sent
                    # the status beside the failed write, and logged that instead.
                    log.debug("a watch's caller went while it was sent to: %r", gone)
                    raise asyncio.CancelledError() from None
                finally:
                    clock.written()
                if let_go:
                    await let_go[0]
                    await context.abort(grpc.StatusCode.UNAVAILABLE, SLOW_CLIENT)
                # (not held while the next is awaited: see _write_message; the item kept
                # its bytes, 20 idle watches of their own filters 12 MB)
                del message
        except FootfallError as refusal:  # (the key that opened it no longer allows it)
            await context.abort_with_status(rpc_status.to_status(status_of(refusal)))
        finally:
            clock.stop()
            await close_stream(messages)  # (a second close, once let go, does nothing)

    async def _user_events(self, request: console_pb2.WatchUserEventsRequest,
                           context: Caller) -> AsyncIterator[Item]:
        catalog = parse_catalog(request.parent)
        events = queries.parse_filter(request.filter, str(catalog))
        return await self._items(request, context, "user_events",
                                 sources.UserEvents(self._store, events, request.filter),
                                 catalog.project)

    async def _user_event_batches(self, request: console_pb2.WatchUserEventsRequest,
                                  context: Caller) -> AsyncIterator[Batch]:
        catalog = parse_catalog(request.parent)
        events = queries.parse_filter(request.filter, str(catalog))
        source = sources.UserEvents(self._store, events, request.filter)
        start = await self._start(request, "user_events", catalog.project, context)
        return self._watches.batches(source.key, source, start, context, "userEvents",
                                     catalog.project)

    async def _client_events(self, request: console_pb2.WatchClientEventsRequest,
                             context: Caller) -> AsyncIterator[Item]:
        tenant = parse_tenant_or_project(request.parent)
        events = client_filter.parse(request.filter, str(tenant))
        return await self._items(request, context, "client_events",
                                 sources.ClientEvents(self._store, str(tenant), events,
                                                      request.filter), tenant.project)

    async def _rejections(self, request: console_pb2.WatchRejectionsRequest,
                          context: Caller) -> AsyncIterator[Item]:
        scope = queries.parse_rejection_scope(request.parent)
        return await self._items(request, context, "rejections",
                                 sources.Rejections(self._store, scope),
                                 scope.project or queries.ALL_PROJECTS)

    async def _items(self, request: WatchRequest, context: Caller, table: str,
                     source: sources.UserEvents | sources.ClientEvents | sources.Rejections,
                     project: str) -> AsyncIterator[Item]:
        """The items of `source` from the request's position (else from the last
        row stored now) on; RESOURCE_EXHAUSTED past --max-watches (or those of
        `project`, the project watched)."""
        start = await self._start(request, table, project, context)
        return self._watches.items(source.key, source, start, context, project)

    async def _start(self, request: WatchRequest, table: str, project: str,
                     context: Caller) -> int:
        """Where a watch starts (once the turn of `context`'s caller has come): the
        request's position, else the last row of `table` now. RESOURCE_EXHAUSTED past
        --max-watches, or those of `project` (before any read); INVALID_ARGUMENT for a
        negative position (it read as 0: every row again, where the CLI refuses --after
        -5)."""
        if request.HasField("after_id") and request.after_id < 0:
            raise InvalidArgument.field("after_id", f"must not be negative, got {request.after_id}"
                                        " (0: from the first row)")
        # Its caller's turn first, among the list pages (see OPEN_SECONDS): watches opened
        # and cancelled again and again are paced as pages read again and again are.
        await self._lists.pay(reader_of(context), OPEN_SECONDS)
        self._watches.admit(project)
        last = await off_loop(self._store.last_id, table)
        # a position past the last row (its rows were reset): from the last row on
        start = min(int(request.after_id), last) if request.HasField("after_id") else last
        # (written into the request: over HTTP the stream's first id: line, so that an
        # EventSource that reconnects before any event came goes on from here)
        request.after_id = start
        return start
