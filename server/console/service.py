"""footfall.console.v1.ConsoleService: reading back what the server holds.

Thin: each method parses its request, then hands over to `queries` (reads) or
the store (resets) and `watch` (streams).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc
from footfall.console.v1 import console_pb2, console_pb2_grpc

from server.console import queries
from server.console.watch import Commits, Positioned, admitted_stream, follow
from server.errors import FieldViolation, gather, raise_if_any
from server.names import parse_catalog, parse_tenant
from server.policy import Policy
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

    def ListUserEvents(self, request: console_pb2.ListUserEventsRequest,
                       context: grpc.ServicerContext) -> console_pb2.ListUserEventsResponse:
        """INVALID_ARGUMENT for a bad parent, filter, page size or token."""
        violations: list[FieldViolation] = []
        catalog = gather(violations, parse_catalog, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        events = gather(violations, queries.parse_filter, request.filter, str(catalog))
        raise_if_any(violations)
        return queries.list_user_events(self._store, events, size, request.page_token)

    def ListClientEvents(self, request: console_pb2.ListClientEventsRequest,
                         context: grpc.ServicerContext
                         ) -> console_pb2.ListClientEventsResponse:
        """INVALID_ARGUMENT for a bad parent, page size or token."""
        violations: list[FieldViolation] = []
        tenant = gather(violations, parse_tenant, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        raise_if_any(violations)
        return queries.list_client_events(self._store, str(tenant), size, request.page_token)

    def ListRejections(self, request: console_pb2.ListRejectionsRequest,
                       context: grpc.ServicerContext) -> console_pb2.ListRejectionsResponse:
        """INVALID_ARGUMENT for a bad parent, page size or token."""
        violations: list[FieldViolation] = []
        project = gather(violations, queries.parse_project, request.parent)
        size = gather(violations, queries.page_size, request.page_size)
        raise_if_any(violations)
        return queries.list_rejections(self._store, project, size, request.page_token)

    def ListCatalogs(self, request: console_pb2.ListCatalogsRequest,
                     context: grpc.ServicerContext) -> console_pb2.ListCatalogsResponse:
        """INVALID_ARGUMENT for a bad parent."""
        return queries.list_catalogs(self._store, queries.parse_project(request.parent))

    def ResetCatalog(self, request: console_pb2.ResetCatalogRequest,
                     context: grpc.ServicerContext) -> console_pb2.ResetResponse:
        """INVALID_ARGUMENT for a bad name."""
        return _reset(self._store.reset_catalog(str(parse_catalog(request.name, "name"))))

    def ResetTenant(self, request: console_pb2.ResetTenantRequest,
                    context: grpc.ServicerContext) -> console_pb2.ResetResponse:
        """INVALID_ARGUMENT for a bad name."""
        return _reset(self._store.reset_tenant(str(parse_tenant(request.name, "name"))))

    # -- streams ---------------------------------------------------------------

    def WatchUserEvents(self, request: console_pb2.WatchUserEventsRequest,
                        context: grpc.ServicerContext
                        ) -> Iterator[console_pb2.StoredUserEvent]:
        """INVALID_ARGUMENT for a bad parent or filter; then every event selected,
        until the caller goes."""
        def opened() -> Iterator[console_pb2.StoredUserEvent]:
            catalog = parse_catalog(request.parent)
            events = queries.parse_filter(request.filter, str(catalog))
            batches = self._follow(request, context, "user_events", lambda after: (
                self._store.user_events_after(events.query, after, queries.MAX_PAGE)))
            return (m for rows in batches for m in queries.matching(rows, events))

        return self._stream("WatchUserEvents", request, context, opened)

    def WatchClientEvents(self, request: console_pb2.WatchClientEventsRequest,
                          context: grpc.ServicerContext
                          ) -> Iterator[console_pb2.StoredClientEvent]:
        """INVALID_ARGUMENT for a bad parent; then every client event of the tenant."""
        def opened() -> Iterator[console_pb2.StoredClientEvent]:
            tenant = str(parse_tenant(request.parent))
            batches = self._follow(request, context, "client_events", lambda after: (
                self._store.client_events_after(tenant, after, queries.MAX_PAGE)))
            return (queries.stored_client_event(r) for rows in batches for r in rows)

        return self._stream("WatchClientEvents", request, context, opened)

    def WatchRejections(self, request: console_pb2.WatchRejectionsRequest,
                        context: grpc.ServicerContext) -> Iterator[console_pb2.Rejection]:
        """INVALID_ARGUMENT for a bad parent; then every refusal of the project."""
        def opened() -> Iterator[console_pb2.Rejection]:
            project = queries.parse_project(request.parent)
            batches = self._follow(request, context, "rejections", lambda after: (
                self._store.rejections_after(project, after, queries.MAX_PAGE)))
            return (queries.rejection(*r) for rows in batches for r in rows)

        return self._stream("WatchRejections", request, context, opened)

    def _follow(self, request: Any, context: grpc.ServicerContext, table: str,
                read: Callable[[int], Sequence[R]]) -> Iterator[Sequence[R]]:
        """Batches of the rows of `table` that `read(position)` gives, from the
        request's position (else from the last row stored now) on."""
        start = int(request.after_id) if request.HasField("after_id") \
            else self._store.last_id(table)
        return follow(read, start, lambda: self._store.last_id(table), self._commits, context)

    def _stream(self, name: str, request: Any, context: grpc.ServicerContext,
                opened: Callable[[], Iterator[T]]) -> Iterator[T]:
        """The messages of the stream `opened()` opens once the policy lets the
        call through (see watch.admitted_stream)."""
        return admitted_stream(self._policy, f"/{SERVICE}/{name}", request, context, opened)

