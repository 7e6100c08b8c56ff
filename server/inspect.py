"""`footfall events ...` and `footfall operations ...`: read the store directly."""

from __future__ import annotations

import argparse
import sys

from footfall.retail.v2 import user_event_pb2
from google.longrunning import operations_pb2
from google.protobuf import json_format

from server.errors import FootfallError
from server.names import parse_catalog
from server.retail import purge_filter
from server.store import EventQuery, Store, open_store
from server.store.rows import StoreUnusable

PAGE = 1000


def _open(url: str) -> Store | None:
    """The store, or None after saying in one line why it cannot be opened."""
    try:
        return open_store(url)
    except (FootfallError, ValueError, OSError, StoreUnusable) as exc:
        print(f"footfall: cannot open the store: {exc}", file=sys.stderr)
        return None


def run_events(args: argparse.Namespace) -> int:
    """Count or print the events of a catalog that a filter selects; 2 on bad input."""
    try:
        catalog = str(parse_catalog(args.parent, "--parent"))
        query = (purge_filter.parse(args.filter, catalog, "--filter") if args.filter.strip()
                 else EventQuery(catalog))
    except FootfallError as exc:
        print(f"footfall: {exc.message}", file=sys.stderr)
        return 2
    store = _open(args.store)
    if store is None:
        return 1
    try:
        if args.events_command == "count":
            print(store.count_user_events(query))
            return 0
        left, after = args.limit, 0
        while left > 0 and (page := store.list_user_events(query, min(left, PAGE), after)):
            for _, payload in page:
                event = user_event_pb2.UserEvent.FromString(payload)
                if args.json:
                    print(json_format.MessageToJson(event, indent=None))
                else:
                    print(f"{event.event_time.ToJsonString()}  {event.event_type:<24} "
                          f"visitor={event.visitor_id}")
            left -= len(page)
            after = page[-1][0]
        return 0
    finally:
        store.close()


def run_operations(args: argparse.Namespace) -> int:
    """Print the operations under a parent, oldest first."""
    store = _open(args.store)
    if store is None:
        return 1
    done = None if args.done is None else args.done == "true"
    try:
        after = None
        while page := store.list_operations(args.parent, done, PAGE, after):
            for record in page:
                op = operations_pb2.Operation.FromString(record.operation)
                if args.json:
                    print(json_format.MessageToJson(op, indent=None))
                else:
                    state = ("running" if not op.done else
                             "failed" if op.HasField("error") else "done")
                    print(f"{state:<8} {op.name}")
            after = (page[-1].create_time_us, page[-1].name)
        return 0
    finally:
        store.close()
