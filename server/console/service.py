"""footfall.console.v1.ConsoleService: reading back what the server holds.

Thin: each method parses its request, then hands over to `queries` (reads) or
the store (resets) and `watch` (streams).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio
from footfall.console.v1 import console_pb2, console_pb2_grpc
from grpc_status import rpc_status

from server.console import queries
from server.console.watch import Commits, Positioned, admitted, follow
from server.errors import FieldViolation, gather, raise_if_any
from server.loop import off_loop
from server.names import parse_catalog, parse_tenant
from server.policy import Policy
from server.policy.envelope import Envelope
from server.rpc import TRANSPORT, status_of
from server.store import Store
from server.store.console import ResetCounts

T = TypeVar("T")
R = TypeVar("R", bound=Positioned)
SERVICE = console_pb2.DESCRIPTOR.services_by_name["ConsoleService"].full_name


def _reset(counts: ResetCounts) -> console_pb2.ResetResponse:
    return console_pb2.ResetResponse(
        deleted_events_count=counts.events, deleted_products_count=counts.products,
        deleted_rejections_count=counts.rejections, deleted_operations_count=counts.operations)


class ConsoleService(console_pb2_grpc.ConsoleServiceServicer):
    """Lists, watches and resets; `policy` admits the streams (the envelope does
    the unary calls)."""

    def __init__(self, store: Store, commits: Commits, policy: Policy) -> None:
        self._store = store
        self._commits = commits
        self._policy = policy
        self._envelope = Envelope(policy, TRANSPORT)  # refuses the gRPC streams

    async def ListUserEvents(self, request: console_pb2.ListUserEventsRequest,
                       context: grpc.aio.ServicerContext) -> console_pb2.ListUserEventsResponse:
        """INVALID_ARGUMENT for a bad parent, filter, page size or token."""
        violations: list[FieldViolation] = []
        catalog = gather(violations, parse_catalog, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        events = gather(violations, queries.parse_filter, request.filter, str(catalog))
        raise_if_any(violations)
        return await off_loop(queries.list_user_events, self._store, events, size,
                              request.page_token)

    async def CountUserEvents(self, request: console_pb2.CountUserEventsRequest,
                              context: grpc.aio.ServicerContext
                              ) -> console_pb2.CountUserEventsResponse:
        """INVALID_ARGUMENT for a bad parent or filter."""
        violations: list[FieldViolation] = []
        catalog = gather(violations, parse_catalog, request.parent)
        events = gather(violations, queries.parse_filter, request.filter, str(catalog))
        raise_if_any(violations)
        count = await off_loop(queries.count_user_events, self._store, events)
        return console_pb2.CountUserEventsResponse(count=count)

    async def ListClientEvents(self, request: console_pb2.ListClientEventsRequest,
                         context: grpc.aio.ServicerContext
                         ) -> console_pb2.ListClientEventsResponse:
        """INVALID_ARGUMENT for a bad parent, page size or token."""
        violations: list[FieldViolation] = []
        tenant = gather(violations, parse_tenant, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        raise_if_any(violations)
        return await off_loop(queries.list_client_events, self._store, str(tenant), size,
                              request.page_token)

    async def ListRejections(self, request: console_pb2.ListRejectionsRequest,
                       context: grpc.aio.ServicerContext) -> console_pb2.ListRejectionsResponse:
        """INVALID_ARGUMENT for a bad parent, page size or token."""
        violations: list[FieldViolation] = []
        project = gather(violations, queries.parse_project, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        raise_if_any(violations)
        return await off_loop(queries.list_rejections, self._store, project, size,
                              request.page_token)

    async def ListCatalogs(self, request: console_pb2.ListCatalogsRequest,
                     context: grpc.aio.ServicerContext) -> console_pb2.ListCatalogsResponse:
        """INVALID_ARGUMENT for a bad parent."""
        return await off_loop(queries.list_catalogs, self._store,
                              queries.parse_project(request.parent))

    async def ResetCatalog(self, request: console_pb2.ResetCatalogRequest,
                     context: grpc.aio.ServicerContext) -> console_pb2.ResetResponse:
        """INVALID_ARGUMENT for a bad name."""
        name = str(parse_catalog(request.name, "name"))
        return _reset(await off_loop(self._store.reset_catalog, name))

    async def ResetTenant(self, request: console_pb2.ResetTenantRequest,
                    context: grpc.aio.ServicerContext) -> console_pb2.ResetResponse:
        """INVALID_ARGUMENT for a bad name."""
        name = str(parse_tenant(request.name, "name"))
        return _reset(await off_loop(self._store.reset_tenant, name))

    # -- streams ---------------------------------------------------------------

    async def WatchUserEvents(self, request: console_pb2.WatchUserEventsRequest,
                              context: grpc.aio.ServicerContext
                              ) -> AsyncIterator[console_pb2.StoredUserEvent]:
        """INVALID_ARGUMENT for a bad parent or filter; then every event selected,
        until the caller goes."""
        async for message in self._grpc_stream("WatchUserEvents", request, context):
            yield message

    async def WatchClientEvents(self, request: console_pb2.WatchClientEventsRequest,
                                context: grpc.aio.ServicerContext
                                ) -> AsyncIterator[console_pb2.StoredClientEvent]:
        """INVALID_ARGUMENT for a bad parent; then every client event of the tenant."""
        async for message in self._grpc_stream("WatchClientEvents", request, context):
            yield message

    async def WatchRejections(self, request: console_pb2.WatchRejectionsRequest,
                              context: grpc.aio.ServicerContext
                              ) -> AsyncIterator[console_pb2.Rejection]:
        """INVALID_ARGUMENT for a bad parent; then every refusal of the project."""
        async for message in self._grpc_stream("WatchRejections", request, context):
            yield message

    async def open_stream(self, name: str, request: Any, context: Any,
                          transport: str = "http") -> AsyncIterator[Any]:
        """The messages of the watch `name`, once the policy lets the call through and
        the stream opens; raises the refusal. What the gateway calls for HTTP."""
        opener = {"WatchUserEvents": self._user_events,
                  "WatchClientEvents": self._client_events,
                  "WatchRejections": self._rejections}[name]
        return await admitted(self._policy, f"/{SERVICE}/{name}", transport, request, context,
                              lambda: opener(request, context))

    async def _grpc_stream(self, name: str, request: Any,
                           context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """The watch over gRPC: a refusal before it opens aborts with its status."""
        started = time.perf_counter()
        try:
            messages = await self.open_stream(name, request, context, TRANSPORT)
        except Exception as exc:
            refusal = self._envelope.refuse(f"/{SERVICE}/{name}", exc, started, context)
            await context.abort_with_status(rpc_status.to_status(status_of(refusal)))
            return
        async for message in messages:
            yield message

    async def _user_events(self, request: Any, context: Any
                           ) -> AsyncIterator[console_pb2.StoredUserEvent]:
        catalog = parse_catalog(request.parent)
        events = queries.parse_filter(request.filter, str(catalog))
        batches = await self._follow(request, context, "user_events", lambda after: (
            self._store.user_events_after(events.query, after, queries.MAX_PAGE)))
        return (m async for rows in batches for m in queries.matching(rows, events))

    async def _client_events(self, request: Any, context: Any
                             ) -> AsyncIterator[console_pb2.StoredClientEvent]:
        tenant = str(parse_tenant(request.parent))
        batches = await self._follow(request, context, "client_events", lambda after: (
            self._store.client_events_after(tenant, after, queries.MAX_PAGE)))
        return (queries.stored_client_event(r) async for rows in batches for r in rows)

    async def _rejections(self, request: Any, context: Any
                          ) -> AsyncIterator[console_pb2.Rejection]:
        project = queries.parse_project(request.parent)
        batches = await self._follow(request, context, "rejections", lambda after: (
            self._store.rejections_after(project, after, queries.MAX_PAGE)))
        return (queries.rejection(*r) async for rows in batches for r in rows)

    async def _follow(self, request: Any, context: Any, table: str,
                      read: Callable[[int], Sequence[R]]) -> AsyncIterator[Sequence[R]]:
        """Batches of the rows of `table` that `read(position)` gives, from the
        request's position (else from the last row stored now) on."""
        start = int(request.after_id) if request.HasField("after_id") \
            else await off_loop(self._store.last_id, table)
        return follow(read, start, lambda: self._store.last_id(table), self._commits, context)
