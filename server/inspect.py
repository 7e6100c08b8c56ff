"""`footfall events ...`: read what was recorded straight from the store."""

from __future__ import annotations

import argparse
import sys

from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format

from server.errors import FootfallError
from server.names import parse_catalog
from server.store import EventQuery, open_store


def run_events(args: argparse.Namespace) -> int:
    try:
        catalog = parse_catalog(args.parent, "--parent")
    except FootfallError as exc:
        print(f"footfall: {exc.message}", file=sys.stderr)
        return 2
    store = open_store(args.store)
    try:
        query = EventQuery(catalog=str(catalog))
        if args.events_command == "count":
            print(store.count_user_events(query))
            return 0
        for _, payload in store.list_user_events(query, limit=args.limit):
            event = user_event_pb2.UserEvent.FromString(payload)
            if args.json:
                print(json_format.MessageToJson(event, indent=None))
            else:
                print(f"{event.event_time.ToJsonString()}  {event.event_type:<24} "
                      f"visitor={event.visitor_id}")
        return 0
    finally:
        store.close()
