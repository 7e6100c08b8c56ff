"""RejoinUserEvents: join stored events again with the current catalog, in batches."""

from __future__ import annotations

from functools import partial

import orjson
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.longrunning import operations_pb2

from server.config import Settings
from server.errors import FieldViolation, gather, raise_if_any
from server.names import parse_catalog
from server.operations import records
from server.operations.runner import JobContext
from server.retail import join
from server.retail.bulk_import import BATCH_BYTES
from server.store.rows import EventQuery, EventUpdate, Progress, Step, StepResult

KIND = "rejoin-user-events"
BATCH = 1_000  # events read at once, and at most about an import's batch of bytes
# ... and decoded and joined this many bytes of them at a time (an event larger alone):
# decoded, an event is far larger than its bytes, most of all one of many product
# details (a Product message each: 75 MB for 200,000 details in 1.4 MB), and a batch
# of 8 MiB of such events decoded at once took the server to 1.08 GB.
GROUP_BYTES = 1024 * 1024
Scope = user_event_service_pb2.RejoinUserEventsRequest.UserEventRejoinScope
# Google's scopes: UNSPECIFIED is all events.
_JOINED = {Scope.USER_EVENT_REJOIN_SCOPE_UNSPECIFIED: None, Scope.JOINED_EVENTS: True,
           Scope.UNJOINED_EVENTS: False}


def check_request(request: user_event_service_pb2.RejoinUserEventsRequest) -> EventQuery:
    """The events in scope (an unknown scope: all); INVALID_ARGUMENT for a bad parent."""
    violations: list[FieldViolation] = []
    catalog = gather(violations, parse_catalog, request.parent, "parent")
    raise_if_any(violations)
    # "Defaults to USER_EVENT_REJOIN_SCOPE_UNSPECIFIED if this field is not set, or set
    # to an invalid integer value" (Google's RejoinUserEventsRequest): all events
    return EventQuery(str(catalog), joined=_JOINED.get(request.user_event_rejoin_scope))


def new_operation(name: str, _create_time_ns: int) -> operations_pb2.Operation:
    return records.operation(name, user_event_service_pb2.RejoinUserEventsMetadata())


def run_rejoin(ctx: JobContext, max_event_bytes: int = Settings.max_event_bytes) -> None:
    """Re-join every event in scope; the response counts the events that joined (an
    event its products would make larger than `max_event_bytes` is left not joined)."""
    request = user_event_service_pb2.RejoinUserEventsRequest.FromString(ctx.record.request)
    query = check_request(request)
    meta = user_event_service_pb2.RejoinUserEventsMetadata()
    state = orjson.loads(ctx.record.checkpoint) if ctx.record.checkpoint else {
        "last_id": 0, "rejoined": 0}
    cancelled = ctx.record.cancel_requested

    def reading(_: StepResult) -> Progress:  # (a renewal while a scan runs: where it got)
        return Progress(orjson.dumps(state),
                        records.operation(ctx.record.name, meta).SerializeToString(), False)

    while not cancelled:
        ctx.check_stop()
        # (read_leased: a scope selects few events, so one batch's scan may pass over
        # millions of others, 0.34 s a million here, a lease at some 90 million)
        # (of bytes too: a thousand events of up to --max-event-bytes, stored and
        # received, were gigabytes read at once)
        batch = ctx.read_leased(partial(ctx.store.scan_user_events, query, BATCH,
                                        after_id=state["last_id"], max_bytes=BATCH_BYTES),
                                reading)
        if not batch:
            break
        updates: list[EventUpdate] = []
        joined_count = sum(_rejoin(ctx, query.catalog, group, updates, max_event_bytes)
                           for group in _groups(batch))
        after = {"last_id": batch[-1][0], "rejoined": state["rejoined"] + joined_count}

        def progress(_: StepResult, after: dict[str, int] = after) -> Progress:
            return Progress(orjson.dumps(after),
                            records.operation(ctx.record.name, meta).SerializeToString(), False)

        cancelled = ctx.step(Step(update_events=updates), progress).cancel_requested
        state = after
    response = user_event_service_pb2.RejoinUserEventsResponse(
        rejoined_user_events_count=state["rejoined"])
    ctx.finish(records.ended(ctx.record.name, meta, response, cancelled, "the rejoin"),
               orjson.dumps(state))


Row = tuple[int, bytes, bytes | None]


def _groups(batch: list[Row]) -> list[list[Row]]:
    """`batch` in groups of about GROUP_BYTES (stored and received), an event larger
    alone: each is decoded and joined once the one before is let go."""
    groups: list[list[Row]] = [[]]
    size = 0
    for row in batch:
        bytes_ = len(row[1]) + len(row[2] or b"")
        if groups[-1] and size + bytes_ > GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(row)
        size += bytes_
    return groups


def _rejoin(ctx: JobContext, catalog: str, group: list[Row], updates: list[EventUpdate],
            max_event_bytes: int) -> int:
    """Join the events of `group` with the catalog's products, adding their updates to
    `updates`; how many joined."""
    events = [user_event_pb2.UserEvent.FromString(source or payload)
              for _, payload, source in group]
    products = join.load_products(ctx.store, catalog, join.product_ids(events))
    joined_count = 0
    for (row_id, payload, source), event in zip(group, events, strict=True):
        received = source or payload
        # (serialized again rather than taken from join_within, which gives
        # `received` where the join left the event as it was: what a stored event
        # is rewritten with stays the event serialized by this version)
        joined, _ = join.join_within(catalog, event, products, received, max_event_bytes)
        joined_count += joined
        stored = event.SerializeToString(deterministic=True)
        updates.append(EventUpdate(row_id, joined, stored,
                                   received if stored != received else None))
    return joined_count
