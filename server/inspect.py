"""`footfall events ...`, `footfall operations ...` and `footfall backup`.

Events and operations are read from the store, opened read-only (nothing is
created or changed, and a store that does not exist is refused), or from a
running server through its public API (`--server`, see server/remote.py).
Exit codes: 0 done, 1 the store or server cannot be used, 2 bad input.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Iterator

import grpc

# The messages operations carry in their Any fields (metadata, response, error
# details): imported so that json_format and the summary can unpack them.
from footfall.retail.v2 import (  # noqa: F401
    import_config_pb2,
    product_service_pb2,
    purge_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
)
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401

from server.errors import FootfallError
from server.names import parse_catalog
from server.operations.summary import summarize
from server.remote import RemoteError, ServerSource
from server.retail import purge_filter
from server.store import EventQuery, Store, open_store
from server.store.backup import BackupRefused, backup
from server.store.rows import StoreUnusable

PAGE = 1000
# What the server answers when the request, not the server, is wrong.
_CLIENT_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                 grpc.StatusCode.FAILED_PRECONDITION}


def _say(message: str) -> None:
    print(f"footfall: {message}", file=sys.stderr)


def _open(url: str) -> Store | None:
    """The store opened read-only, or None after saying in one line why not."""
    try:
        return open_store(url, read_only=True)
    except (FootfallError, ValueError, OSError, sqlite3.Error, StoreUnusable) as exc:
        _say(f"cannot open the store: {getattr(exc, 'message', exc)}")
        return None


def _remote_failed(exc: RemoteError) -> int:
    _say(f"the server answered {exc}")
    return 2 if exc.code in _CLIENT_CODES else 1


def run_events(args: argparse.Namespace) -> int:
    """Count or print the events of a catalog that a filter selects."""
    try:
        catalog = str(parse_catalog(args.parent, "--parent"))
        query = (purge_filter.parse(args.filter, catalog, "--filter") if args.filter.strip()
                 else EventQuery(catalog))
    except FootfallError as exc:
        _say(exc.message)
        return 2
    if args.server:
        return _events_from_server(args, catalog)
    store = _open(args.store)
    if store is None:
        return 1
    try:
        if args.events_command == "count":
            print(store.count_user_events(query))
            return 0
        for event in _events(store, query, args.limit):
            if args.json:
                print(json_format.MessageToJson(event, indent=None))
            else:
                print(f"{event.event_time.ToJsonString()}  {event.event_type:<24} "
                      f"visitor={event.visitor_id}")
        return 0
    finally:
        store.close()


def _events(store: Store, query: EventQuery, limit: int) -> Iterator[user_event_pb2.UserEvent]:
    left, after = limit, 0
    while left > 0 and (page := store.list_user_events(query, min(left, PAGE), after)):
        for _, payload in page:
            yield user_event_pb2.UserEvent.FromString(payload)
        left -= len(page)
        after = page[-1][0]


def _events_from_server(args: argparse.Namespace, catalog: str) -> int:
    if args.events_command == "list":
        _say("listing events needs a read API that Google's contracts do not have (Footfall's "
             "console API will add one); count them with `events count --server`, or list "
             "them from the store with --store")
        return 2
    source = ServerSource(args.server, args.key)
    try:
        print(source.count_events(catalog, args.filter))
        return 0
    except RemoteError as exc:
        return _remote_failed(exc)
    finally:
        source.close()


def run_operations(args: argparse.Namespace) -> int:
    """Print the operations under a parent, oldest first: state, kind, name, counts
    and error, or each Operation as proto3 JSON (--json)."""
    done = None if args.done is None else args.done == "true"
    if args.server:
        source = ServerSource(args.server, args.key)
        try:
            for op in source.operations(args.parent, done):
                _print_operation(op, args.json)
            return 0
        except RemoteError as exc:
            return _remote_failed(exc)
        finally:
            source.close()
    store = _open(args.store)
    if store is None:
        return 1
    try:
        after = None
        while page := store.list_operations(args.parent, done, PAGE, after):
            for record in page:
                _print_operation(operations_pb2.Operation.FromString(record.operation),
                                 args.json)
            after = (page[-1].create_time_us, page[-1].name)
        return 0
    finally:
        store.close()


def _print_operation(op: operations_pb2.Operation, as_json: bool) -> None:
    print(json_format.MessageToJson(op, indent=None) if as_json else summarize(op).line())


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
