"""PurgeUserEvents: the filter is checked when called; deletion runs in batches.

Each batch deletes at most BATCH events among the next WINDOW ids and records
how far it got in the same transaction, so a huge purge never holds one giant
transaction or stalls writes, and a crash resumes where it stopped. The walk goes
from the first to the last id the filter's time range holds when the purge starts
(the time index tells), not over the whole table.

A purge by time alone does not decode the events of the UTC days it covers whole
to take them out of the product rollups: their rows are dropped at its first
batch instead (see server/store/rollups.py, Gap).
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
from server.store.rollups import time_only_gap
from server.store.rows import EventQuery, Progress, Step, StepResult

KIND = "purge-user-events"
# Events a step deletes at most, in one transaction when no write waits for it (one
# that does ends the step after its chunk: sql.DELETE_CHUNK). Half a bucket of the
# visitor and user indexes (16,384 ids, migration 8): a step over a dense range changes
# a bucket's pages of those indexes twice, not in each of 8 steps of 2,000. A purge of
# 500k of 1M (SQLite) writes 38,000 WAL frames in 62 commits, against 41,700 in 250
# (one DELETE: 35,100). A whole bucket (35,900 frames, 31 commits) was 0.1 s quicker
# still, but a write arriving mid-step waited for the commit of all of it: writes one
# every 20 ms during the purge took 7.6-9.1 ms (median), against 2.2-2.5 before and
# 2.5-3.7 with 8,192.
BATCH = 8_192
# ids a batch walks at most: when few events match (a visitor's), a batch still ends
# soon, so writes waiting behind it are not held up by a walk over the whole table
WINDOW = 20_000


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
    state: dict[str, Any] = orjson.loads(ctx.record.checkpoint) if ctx.record.checkpoint else {
        "last_id": 0, "purged": 0}
    meta = purge_config_pb2.PurgeMetadata()
    cancelled = ctx.record.cancel_requested

    def reading(_: StepResult) -> Progress:  # (while a read keeps the lease: nothing done)
        return Progress(ctx.record.checkpoint or b"",
                        records.operation(ctx.record.name, meta).SerializeToString(), False)

    if not request.force and not cancelled:
        # (read_leased: 0.53 s per 300,000 events of a type here, a lease at 17 million)
        count = ctx.read_leased(lambda: ctx.store.count_user_events(query), reading)
        response = purge_config_pb2.PurgeUserEventsResponse(purged_events_count=count)
        ctx.finish(records.operation(ctx.record.name, meta, response=response))
        return
    if "end_id" not in state:  # the walk's ends, once: events written later may stay
        ids = ctx.read_leased(lambda: ctx.store.event_id_range(query), reading)
        state["last_id"], state["end_id"] = (0, 0) if ids is None else (
            max(state["last_id"], ids[0] - 1), ids[1])
        days = time_only_gap(query)
        if days is not None and ids is not None:  # (its whole days and whole id range)
            state["uncount"] = [*days, state["last_id"], state["end_id"]]
    uncount = state.get("uncount")
    while not cancelled and state["last_id"] < state["end_id"]:
        ctx.check_stop()
        after = dict(state)

        def progress(result: StepResult, after: dict[str, int] = after) -> Progress:
            after["purged"] += result.deleted
            after["last_id"] = result.deleted_through
            return Progress(orjson.dumps(after),
                            records.operation(ctx.record.name, meta).SerializeToString(), False)

        result = ctx.step(Step(delete_events=query, delete_after_id=state["last_id"],
                               delete_until_id=min(state["end_id"], state["last_id"] + WINDOW),
                               delete_limit=BATCH,
                               uncount=None if uncount is None else tuple(uncount)),
                        progress)
        state = after
        cancelled = result.cancel_requested
    response = purge_config_pb2.PurgeUserEventsResponse(purged_events_count=state["purged"])
    ctx.finish(records.ended(ctx.record.name, meta, response, cancelled, "the purge"),
               orjson.dumps(state))
