"""PurgeUserEvents: the filter is checked when called; deletion runs in batches.

Each batch deletes at most BATCH events and records how far it got in the same
transaction, so a huge purge never holds one giant transaction or stalls writes,
and a crash resumes where it stopped.
"""

from __future__ import annotations

from typing import Any

import orjson
from footfall.retail.v2 import purge_config_pb2

from server.errors import FieldViolation, gather, raise_if_any
from server.names import parse_catalog
from server.operations import records
from server.operations.runner import JobContext
from server.retail import purge_filter
from server.store.rows import EventQuery, Progress, Step, StepResult

KIND = "purge-user-events"
BATCH = 2_000


def check_request(request: Any) -> EventQuery:
    """The query the request's filter selects; INVALID_ARGUMENT naming each bad field."""
    violations: list[FieldViolation] = []
    catalog = gather(violations, parse_catalog, request.parent, "parent")
    query = gather(violations, purge_filter.parse, request.filter, str(catalog or ""))
    raise_if_any(violations)
    assert query is not None
    return query


def new_operation(name: str, _create_time_ns: int) -> Any:
    return records.operation(name, purge_config_pb2.PurgeMetadata())


def run_purge(ctx: JobContext) -> None:
    """Count (force=false) or delete (force=true) the selected events."""
    request = purge_config_pb2.PurgeUserEventsRequest.FromString(ctx.record.request)
    query = check_request(request)
    state = orjson.loads(ctx.record.checkpoint) if ctx.record.checkpoint else {
        "last_id": 0, "purged": 0}
    meta = purge_config_pb2.PurgeMetadata()
    cancelled = ctx.record.cancel_requested
    if not request.force and not cancelled:
        count = ctx.store.count_user_events(query)
        response = purge_config_pb2.PurgeUserEventsResponse(purged_events_count=count)
        ctx.finish(records.operation(ctx.record.name, meta, response=response))
        return
    while not cancelled:
        ctx.check_stop()
        after = dict(state)

        def progress(result: StepResult, after: dict[str, int] = after) -> Progress:
            after["purged"] += result.deleted
            if result.last_deleted_id:
                after["last_id"] = result.last_deleted_id
            return Progress(orjson.dumps(after),
                            records.operation(ctx.record.name, meta).SerializeToString(), False)

        result = ctx.step(Step(delete_events=query, delete_after_id=state["last_id"],
                               delete_limit=BATCH), progress)
        state = after
        cancelled = result.cancel_requested
        if result.deleted == 0 and result.last_deleted_id == 0:
            break
    response = purge_config_pb2.PurgeUserEventsResponse(purged_events_count=state["purged"])
    ctx.finish(records.ended(ctx.record.name, meta, response, cancelled, "the purge"),
               orjson.dumps(state))
