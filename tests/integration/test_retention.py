"""--retain-days: older events are purged at start and every period, as ordinary
purge operations, one per catalog and period even with several replicas."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from footfall.retail.v2 import (
    import_config_pb2,
    purge_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import json_format

from server.app import announce, start
from server.clock import FixedClock
from server.config import Settings, add_serve_arguments, settings_from_args
from server.operations.runner import OperationRunner
from server.retail import purge
from server.retail.retention import Retention, operation_name
from server.store import EventQuery, EventRow, Store, open_store

from .cli import CATALOG, footfall, wait
from .http_client import call, query_value

OTHER = "projects/q/locations/global/catalogs/default_catalog"
NOW_NS = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z
HOUR = 3600.0
HOURS_SINCE_1970 = 1_714_564_800 // 3600


def row(visitor: str, time: str, catalog: str = CATALOG) -> EventRow:
    event = json_format.ParseDict({"eventType": "home-page-view", "visitorId": visitor,
                                   "eventTime": time}, user_event_pb2.UserEvent())
    return EventRow.from_event(catalog, event, joined=True)


def visitors(store: Store, catalog: str = CATALOG) -> list[str]:
    return [user_event_pb2.UserEvent.FromString(p).visitor_id
            for _, p in store.list_user_events(EventQuery(catalog), 100)]


@pytest.fixture(params=["file", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "file":
        yield f"sqlite:///{tmp_path}/events.db"
    else:
        url: str = request.getfixturevalue("postgres_url")
        yield url
        request.getfixturevalue("postgres_databases").empty(url)


@pytest.fixture
def stores(store_url: str) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(open_store(store_url))
        return opened[-1]

    yield open_one
    for each in opened:
        each.close()


def retention(store: Store, clock: FixedClock) -> Retention:
    """A Retention of 30 days whose runner is never started: the test sees the
    operations it creates, not their outcome."""
    runner = OperationRunner(store, clock, {})
    return Retention(store, runner, clock, days=30, interval_seconds=HOUR)


def test_one_purge_per_catalog_with_old_events_and_period(stores: Callable[[], Store]) -> None:
    store = stores()
    store.write_user_events([row("old", "2024-03-01T00:00:00Z"),
                             row("new", "2024-04-30T00:00:00Z"),
                             row("recent-only", "2024-04-30T00:00:00Z", OTHER)])
    clock = FixedClock(NOW_NS)
    first = retention(store, clock)
    name = operation_name(CATALOG, HOURS_SINCE_1970)
    assert name == f"{CATALOG}/operations/purge-user-events-retention-{HOURS_SINCE_1970}"
    assert first.tick() == [name]  # OTHER has nothing older than 30 days
    record = store.get_operation(name)
    assert record is not None and record.kind == purge.KIND and not record.done
    request = purge_config_pb2.PurgeUserEventsRequest.FromString(record.request)
    assert (request.parent, request.filter, request.force) == (
        CATALOG, 'eventTime < "2024-04-01T12:00:00Z"', True)
    assert first.tick() == []  # the same period: nothing new
    clock.advance(HOUR)
    assert first.tick() == [operation_name(CATALOG, HOURS_SINCE_1970 + 1)]


def test_replicas_starting_together_create_one_purge(stores: Callable[[], Store]) -> None:
    seed = stores()
    seed.write_user_events([row("old", "2024-03-01T00:00:00Z"),
                            row("old", "2024-03-01T00:00:00Z", OTHER)])
    replicas = [retention(stores(), FixedClock(NOW_NS)) for _ in range(4)]
    created: list[list[str]] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(len(replicas))

    def tick(each: Retention) -> None:
        gate.wait()
        try:
            created.append(each.tick())
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=tick, args=(each,)) for each in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(name for names in created for name in names) == sorted(
        [operation_name(CATALOG, HOURS_SINCE_1970), operation_name(OTHER, HOURS_SINCE_1970)])
    assert len(seed.list_operations("projects/", None, 10)) == 2


def test_a_server_with_retention_purges_old_events_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    seed = open_store(url)
    seed.write_user_events([row("old", "2024-03-01T00:00:00Z"),
                            row("day-31", "2024-03-31T12:00:00Z"),
                            row("day-29", "2024-04-02T12:00:00Z"),
                            row("other-old", "2024-01-01T00:00:00Z", OTHER)])
    seed.close()
    running = start(Settings(host="127.0.0.1", port=0, store=url, grace_seconds=5,
                             retain_days=30), FixedClock(NOW_NS))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            ops = operations_pb2_grpc.OperationsStub(channel)
            # the purge is an ordinary operation, listed like any other
            name = operation_name(CATALOG, HOURS_SINCE_1970)
            done = wait(ops, name)
            response = purge_config_pb2.PurgeUserEventsResponse()
            assert done.response.Unpack(response) and response.purged_events_count == 2
            wait(ops, operation_name(OTHER, HOURS_SINCE_1970))
            listed = ops.ListOperations(operations_pb2.ListOperationsRequest(name=CATALOG))
            assert [op.name for op in listed.operations] == [name]
        assert visitors(running.store) == ["day-29"]
        assert visitors(running.store, OTHER) == []
    finally:
        running.stop()


def test_the_start_says_the_retention_in_words(caplog: pytest.LogCaptureFixture) -> None:
    # (it said "events older than 1 days")
    caplog.set_level("INFO", logger="footfall")
    announce(Settings(retain_days=1), 50051, 0)
    assert "retention: events older than 1 day are purged at start and then every 3600 s" \
        in caplog.messages


def test_the_flag_and_its_variable(tmp_path: Path) -> None:
    def parse(args: list[str], env: dict[str, str]) -> Any:
        parser = argparse.ArgumentParser()
        add_serve_arguments(parser, env)
        return settings_from_args(parser.parse_args(args))

    assert parse([], {}).retain_days == 0
    assert parse(["--retain-days", "90"], {}).retain_days == 90
    assert parse([], {"FOOTFALL_RETAIN_DAYS": "7"}).retain_days == 7
    negative = footfall("serve", "--retain-days", "-1", "--store", "memory://", cwd=tmp_path)
    assert negative.returncode == 2
    assert negative.stderr == "footfall serve: error: --retain-days must not be negative, " \
                              "got -1\n"


def test_an_event_stamped_past_tomorrow_is_refused_on_every_path(tmp_path: Path) -> None:
    """Retention purges by event time: an event stamped in 9999 would outlive every
    --retain-days (and head every newest-first list), so a write, a pixel and an
    import line may carry a time at most a day after the server's (NOW_NS)."""
    running = start(Settings(host="127.0.0.1", port=0, http_port=-1, grace_seconds=5,
                             store=f"sqlite:///{tmp_path}/events.db"), FixedClock(NOW_NS))
    far = {"eventType": "home-page-view", "visitorId": "far", "eventTime": "9999-12-31T00:00:00Z"}
    why = ("user_event.event_time: must be at most a day after the server's time "
           "(2024-05-01T12:00:00Z), got 9999-12-31T00:00:00Z")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
            with pytest.raises(grpc.RpcError) as refused:
                write(user_event_service_pb2.WriteUserEventRequest(
                    parent=CATALOG, user_event=json_format.ParseDict(
                        far, user_event_pb2.UserEvent())))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.details() == why
            pixel = call(running.http_port, "GET", f"/v2/{CATALOG}/userEvents:collect"
                         f"?userEvent={query_value(far)}")
            assert pixel.headers["X-Footfall-Error"] == f"INVALID_ARGUMENT: {why}"
            request = import_config_pb2.ImportUserEventsRequest(parent=CATALOG)
            events = request.input_config.user_event_inline_source.user_events
            json_format.ParseDict(far, events.add())
            json_format.ParseDict(far | {"visitorId": "tomorrow",
                                         "eventTime": "2024-05-02T12:00:00Z"}, events.add())
            ops = operations_pb2_grpc.OperationsStub(channel)
            started = user_event_service_pb2_grpc.UserEventServiceStub(channel) \
                .ImportUserEvents(request)
            metadata = import_config_pb2.ImportMetadata()
            assert wait(ops, started.name).metadata.Unpack(metadata)
            assert (metadata.success_count, metadata.failure_count) == (1, 1)
        assert visitors(running.store) == ["tomorrow"]
    finally:
        running.stop()
