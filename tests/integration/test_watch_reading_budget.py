"""The console's watches share a budget of time for reading the store
(--watch-read-ms, console/pace.py's Reading): past it their feeds (one per
distinct filter) and the watches catching up by themselves read later, falling
behind the rows stored rather than slowing the writes. Falling behind must lose
nothing: each watch still gets every event, in id order, none twice, once the
writes stop. Real servers over a socket; the budget is made small enough that
the watches must wait for it (its waits are counted), and nothing here is timed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import grpc
import pytest
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2, user_event_service_pb2_grpc

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.console import feed

from .reading_budget import Counted, Watch, budgeted_server, distinct_filter

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
FILTERS = 16  # distinct filters watched, each selecting every event: a feed each
EVENTS = 150


@pytest.fixture
def budgeted(settings: Settings, clock: FixedClock,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Running, list[Counted]]]:
    """A server whose watches read the store at most 10 ms a second together."""
    with budgeted_server(settings, clock, monkeypatch, 10) as served:
        yield served


def write_events(port: int, first: int, count: int) -> None:
    """`count` events (visitors v-first...), a commit each."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        writes = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        for n in range(first, first + count):
            event = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id=f"v-{n}")
            event.attributes["note"].text.extend(["n" * 200] * 10)  # (reads cost more)
            writes.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=CATALOG, user_event=event), timeout=30)



def assert_every_event_once_in_order(watch: Watch, visitors: list[str]) -> None:
    assert watch.ids == sorted(set(watch.ids)), "out of order, or twice"
    assert watch.visitors == visitors


def test_many_distinct_filter_watches_fall_behind_and_miss_nothing(
        budgeted: tuple[Running, list[Counted]]) -> None:
    running, made = budgeted
    write_events(running.port, 0, EVENTS // 3)  # stored before the watches begin
    visitors = [f"v-{n}" for n in range(EVENTS)]
    last = running.store.last_id("user_events")
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        # Half of them from the first row: they catch up by themselves, and those
        # reads take their turn too; the others from the last row, on their feeds.
        from_start = [Watch(channel, "WatchUserEventBatches", CATALOG, EVENTS,
                            filter=distinct_filter(k), after_id=0)
                      for k in range(FILTERS // 2)]
        live = [Watch(channel, rpc, CATALOG, EVENTS - EVENTS // 3, filter=distinct_filter(k),
                      after_id=last)
                for k, rpc in zip(range(FILTERS // 2, FILTERS),
                                  ["WatchUserEventBatches", "WatchUserEvents"] * FILTERS,
                                  strict=False)]
        write_events(running.port, EVENTS // 3, EVENTS - EVENTS // 3)
        for watch in from_start + live:
            watch.join()
    reading, _sending = made  # (Watches makes its budget of reading first)
    assert reading.waits > 0, "the reads never waited for the budget: nothing fell behind"
    for watch in from_start:
        assert_every_event_once_in_order(watch, visitors)
    for watch in live:
        assert_every_event_once_in_order(watch, visitors[EVENTS // 3:])


@pytest.mark.parametrize("rpc", ["WatchUserEventBatches", "WatchUserEvents"])
def test_a_feed_held_back_by_the_budget_catches_up(
        settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
        rpc: str) -> None:
    """One feed alone, its budget far below what reading after each commit takes:
    it falls behind while the events are written, then catches up, exactly."""
    made: list[Counted] = []
    monkeypatch.setattr(Counted, "made", made)
    monkeypatch.setattr(feed, "Reading", Counted)
    running = start(dataclasses.replace(settings, http_port=-1, watch_read_ms=2), clock)
    try:
        write_events(running.port, 0, 1)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            watch = Watch(channel, rpc, CATALOG, EVENTS, after_id=0)
            while not watch.ids and watch.thread.is_alive():
                watch.thread.join(0.05)  # open: it has the first event
            write_events(running.port, 1, EVENTS - 1)
            watch.join()
        reading, _sending = made  # (Watches makes its budget of reading first)
        assert reading.waits > 0, "the feed never waited for the budget"
        assert_every_event_once_in_order(watch, [f"v-{n}" for n in range(EVENTS)])
    finally:
        running.stop()
