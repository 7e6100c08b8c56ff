"""`footfall events ...`, `rejections ...`, `talent-events ...`, `catalogs`,
`operations ...` and `footfall backup`.

They read the store, opened read-only (nothing is created or changed, and a
store that does not exist is refused), or a running server through its public
API (`--server`, see server/remote.py); both give the same console.v1 messages,
printed by server/lines.py. `tail` follows a server's watch until Ctrl-C.
Exit codes: 0 done, 1 the store or server cannot be used, 2 bad input.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc
from footfall.console.v1 import console_pb2

# The messages operations carry in their Any fields (metadata, response, error
# details): imported so that json_format and the summary can unpack them.
from footfall.retail.v2 import (  # noqa: F401
    import_config_pb2,
    purge_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
)
from google.longrunning import operations_pb2
from google.rpc import error_details_pb2  # noqa: F401

from server import lines
from server.console import queries
from server.errors import FootfallError
from server.names import parse_catalog, parse_tenant
from server.operations.summary import summarize
from server.remote import Connection, RemoteError, ServerSource
from server.store import Store, open_store
from server.store.backup import BackupRefused, backup
from server.store.rows import StoreUnusable

PAGE = queries.MAX_PAGE
# What the server answers when the request, not the server, is wrong.
_CLIENT_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                 grpc.StatusCode.FAILED_PRECONDITION}
# What each console record is printed as, and by which list RPC and field it comes.
_USER_EVENTS = ("ListUserEvents", "user_events", lines.user_event)
_CLIENT_EVENTS = ("ListClientEvents", "client_events", lines.client_event)
_REJECTIONS = ("ListRejections", "rejections", lines.rejection)


def _say(message: str) -> None:
    print(f"footfall: {message}", file=sys.stderr, flush=True)


def _open(url: str) -> Store | None:
    """The store opened read-only, or None after saying in one line why not."""
    try:
        return open_store(url, read_only=True)
    except (FootfallError, ValueError, OSError, sqlite3.Error, StoreUnusable) as exc:
        _say(f"cannot open the store: {getattr(exc, 'message', exc)}")
        return None


def _remote_failed(exc: RemoteError) -> int:
    advice = ""
    if exc.code is grpc.StatusCode.UNAUTHENTICATED:
        advice = ("; give an API key with the reader role (admin for operations) with --key "
                  "or FOOTFALL_KEY")
    _say(f"the server answered {exc}{advice}")
    return 2 if exc.code in _CLIENT_CODES else 1


class Source(Protocol):
    def rpc(self, name: str) -> Callable[[Any], Any]: ...

    def close(self) -> None: ...


class StoreSource:
    """The console's lists over the store itself: the messages a server answers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def rpc(self, name: str) -> Callable[[Any], Any]:
        method: Callable[[Any], Any] = getattr(self, name)
        return method

    def close(self) -> None:
        self.store.close()

    def ListUserEvents(self, request: console_pb2.ListUserEventsRequest  # noqa: N802
                       ) -> console_pb2.ListUserEventsResponse:
        events = queries.parse_filter(request.filter, request.parent, "--filter")
        return queries.list_user_events(self.store, events, request.page_size,
                                        request.page_token)

    def ListClientEvents(self, request: console_pb2.ListClientEventsRequest  # noqa: N802
                         ) -> console_pb2.ListClientEventsResponse:
        return queries.list_client_events(self.store, request.parent, request.page_size,
                                          request.page_token)

    def ListRejections(self, request: console_pb2.ListRejectionsRequest  # noqa: N802
                       ) -> console_pb2.ListRejectionsResponse:
        return queries.list_rejections(self.store, queries.parse_project(request.parent),
                                       request.page_size, request.page_token)

    def ListCatalogs(self, request: console_pb2.ListCatalogsRequest  # noqa: N802
                     ) -> console_pb2.ListCatalogsResponse:
        return queries.list_catalogs(self.store, queries.parse_project(request.parent))


class _Remote:
    """A ServerSource seen as a Source."""

    def __init__(self, server: ServerSource) -> None:
        self.server = server

    def rpc(self, name: str) -> Callable[[Any], Any]:
        method = getattr(self.server.console, name)
        return lambda request: self.server.call(method, request)

    def close(self) -> None:
        self.server.close()


def connection(args: argparse.Namespace) -> Connection:
    """The server, TLS and key the command line names; ValueError for a CA file
    that cannot be read."""
    ca = None
    if args.tls_ca:
        try:
            with open(args.tls_ca, "rb") as file:
                ca = file.read()
        except OSError as exc:
            raise ValueError(f"--tls-ca: cannot read {args.tls_ca}: {exc.strerror}") from None
    return Connection(args.server, args.key, args.tls, ca)


def _reading(args: argparse.Namespace, body: Callable[[Source], int]) -> int:
    """`body` over the store or server the command names, closed after; one line
    and an exit code for what goes wrong."""
    source: Source
    if getattr(args, "server", None):
        try:
            source = _Remote(ServerSource(connection(args)))
        except ValueError as exc:
            _say(str(exc))
            return 2
    else:
        store = _open(args.store)
        if store is None:
            return 1
        source = StoreSource(store)
    try:
        return body(source)
    except FootfallError as exc:
        _say(exc.message)
        return 2
    except RemoteError as exc:
        return _remote_failed(exc)
    finally:
        source.close()


def _records(source: Source, kind: tuple[str, str, Any], request: Any,
             limit: int | None) -> Iterator[Any]:
    """The records a list RPC answers, page after page, at most `limit`."""
    rpc, field, _ = kind
    fetch = source.rpc(rpc)
    left = sys.maxsize if limit is None else limit
    while left > 0:
        request.page_size = min(left, PAGE)
        reply = fetch(request)
        found = list(getattr(reply, field))[:left]
        yield from found
        left -= len(found)
        if not reply.next_page_token:
            return
        request.page_token = reply.next_page_token


def _print(records: Iterator[Any], line: Callable[[Any], str], as_json: bool) -> int:
    for record in records:
        print(lines.as_json(record) if as_json else line(record), flush=True)
    return 0


def run_events(args: argparse.Namespace) -> int:
    """Count, print or follow the events of a catalog that a filter selects."""
    try:
        catalog = str(parse_catalog(args.parent, "--parent"))
        events = queries.parse_filter(args.filter, catalog, "--filter")
    except FootfallError as exc:
        _say(exc.message)
        return 2
    if args.events_command == "tail":
        request = console_pb2.WatchUserEventsRequest(parent=catalog, filter=args.filter)
        return _tail(args, "WatchUserEvents", request, lines.user_event)
    listing = console_pb2.ListUserEventsRequest(parent=catalog, filter=args.filter)

    def count(source: Source) -> int:
        if isinstance(source, StoreSource) and not events.on_events:
            print(source.store.count_user_events(events.query))
        elif not args.filter.strip():  # the server counts each catalog's events already
            reply = source.rpc("ListCatalogs")(console_pb2.ListCatalogsRequest(
                parent=catalog.split("/locations/")[0]))
            print(next((c.event_count for c in reply.catalogs if c.name == catalog), 0))
        else:
            print(sum(1 for _ in _records(source, _USER_EVENTS, listing, None)))
        return 0

    if args.events_command == "count":
        return _reading(args, count)
    return _reading(args, lambda source: _print(
        _records(source, _USER_EVENTS, listing, args.limit), lines.user_event, args.json))


def run_talent_events(args: argparse.Namespace) -> int:
    """Print or follow the client events of a tenant, newest first."""
    try:
        tenant = str(parse_tenant(args.parent, "--parent"))
    except FootfallError as exc:
        _say(exc.message)
        return 2
    if args.talent_events_command == "tail":
        return _tail(args, "WatchClientEvents",
                     console_pb2.WatchClientEventsRequest(parent=tenant), lines.client_event)
    request = console_pb2.ListClientEventsRequest(parent=tenant)
    return _reading(args, lambda source: _print(
        _records(source, _CLIENT_EVENTS, request, args.limit), lines.client_event, args.json))


def run_rejections(args: argparse.Namespace) -> int:
    """Print or follow the refused requests of a project (every project: projects/-)."""
    try:
        queries.parse_project(args.parent, "--parent")
    except FootfallError as exc:
        _say(exc.message)
        return 2
    if args.rejections_command == "tail":
        return _tail(args, "WatchRejections",
                     console_pb2.WatchRejectionsRequest(parent=args.parent), lines.rejection)
    request = console_pb2.ListRejectionsRequest(parent=args.parent)
    return _reading(args, lambda source: _print(
        _records(source, _REJECTIONS, request, args.limit), lines.rejection, args.json))


def run_catalogs(args: argparse.Namespace) -> int:
    """Print the catalogs, then the tenants, that hold events, with their counts."""
    def body(source: Source) -> int:
        reply = source.rpc("ListCatalogs")(console_pb2.ListCatalogsRequest(parent=args.parent))
        return _print(iter([*reply.catalogs, *reply.tenants]), lines.data_set, args.json)

    return _reading(args, body)


def _tail(args: argparse.Namespace, watch: str, request: Any,
          line: Callable[[Any], str]) -> int:
    """Print what the `watch` stream sends until Ctrl-C (exit 0)."""
    if args.after is not None:
        request.after_id = args.after

    def body(source: Source) -> int:
        assert isinstance(source, _Remote)
        server = source.server
        try:
            return _print(server.follow(getattr(server.console, watch), request, _say), line,
                          args.json)
        except KeyboardInterrupt:
            return 0

    return _reading(args, body)


def run_operations(args: argparse.Namespace) -> int:
    """Print the operations under a parent, oldest first: state, kind, name, counts
    and error, or each Operation as proto3 JSON (--json)."""
    done = None if args.done is None else args.done == "true"

    def body(source: Source) -> int:
        ops = source.server.operations(args.parent, done) if isinstance(source, _Remote) \
            else _stored_operations(source, args.parent, done)
        return _print(ops, lambda op: summarize(op).line(), args.json)

    return _reading(args, body)


def _stored_operations(source: Source, parent: str,
                       done: bool | None) -> Iterator[operations_pb2.Operation]:
    assert isinstance(source, StoreSource)
    after = None
    while page := source.store.list_operations(parent, done, PAGE, after):
        for record in page:
            yield operations_pb2.Operation.FromString(record.operation)
        after = (page[-1].create_time_us, page[-1].name)


def run_backup(args: argparse.Namespace) -> int:
    """Copy the store to DEST; 2 (with advice) for a store this cannot copy."""
    try:
        size = backup(args.store, args.dest)
    except (BackupRefused, FileExistsError) as exc:
        _say(str(exc))
        return 2
    except (FootfallError, ValueError, OSError, sqlite3.Error) as exc:
        _say(f"cannot back up: {getattr(exc, 'message', exc)}")
        return 1
    print(f"backed up to {args.dest} ({size} bytes)")
    return 0
