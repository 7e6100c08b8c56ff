"""The budget of reading time that the console's watches share (--watch-read-ms,
console/pace.py's Reading) hands its turns out fairly between projects: one
project's hundreds of feeds (a reader key watching distinct filters) wait behind
their own reads, and another project's watch has the next turn. And /metrics shows
the reads that waited, and those waiting now.

Real servers over a socket, their budget made so small that every feed waits for
it. Nothing is timed: the test looks at how many of project A's watches had their
event when project B's watch had its own (counters, not clocks), under a generous
deadline for everything to arrive."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2, user_event_service_pb2_grpc

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

from . import http_client
from .reading_budget import Counted, Watch, budgeted_server, distinct_filter

A = "projects/a/locations/global/catalogs/default_catalog"
B = "projects/b/locations/global/catalogs/default_catalog"
A_FEEDS = 30  # project A's watches, each of a filter of its own: a feed each
DEADLINE = 60.0  # seconds for anything to come, at most (generous: no timing here)


@pytest.fixture
def starved(settings: Settings, clock: FixedClock,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Running, list[Counted]]]:
    """A server whose watches read the store at most 1 ms a second together (a
    read of its small store costs a tenth of a millisecond or more: a few reads
    a second)."""
    with budgeted_server(settings, clock, monkeypatch, 1) as served:
        yield served


def write(port: int, parent: str, visitor: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent(
            user_event_service_pb2.WriteUserEventRequest(
                parent=parent, user_event=user_event_pb2.UserEvent(
                    event_type="home-page-view", visitor_id=visitor)), timeout=30)


def watch_from_start(channel: grpc.Channel, parent: str, wanted: int, **options: object) -> Watch:
    """A WatchUserEvents stream of `parent` from the first row (see Watch)."""
    return Watch(channel, "WatchUserEvents", parent, wanted, seconds=DEADLINE, after_id=0,
                 **options)


def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_one_projects_many_feeds_do_not_hold_back_another_projects_watch(
        starved: tuple[Running, list[Counted]]) -> None:
    running, made = starved
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        a_watches = [watch_from_start(channel, A, 1, filter=distinct_filter(k))
                     for k in range(A_FEEDS)]
        reading, _sending = made  # (Watches makes its budget of reading first)
        # Project A's feeds fill the line (each reads at every poll, and waits long).
        until(lambda: reading.waiting >= A_FEEDS // 2, "project A's feeds never waited")
        write(running.port, A, "a-1")  # each A feed's next read finds it
        write(running.port, B, "b-1")
        # A's watches that had their event when B's watch had each of its own.
        a_served: list[int] = []

        def on_b_event(_: int) -> None:
            a_served.append(sum(1 for watch in a_watches if watch.visitors))
            if len(a_served) == 1:  # the next: now B's watch reads on its feed
                write(running.port, B, "b-2")

        # B's watch opens now, from the first row: its read to catch up (and then its
        # feed's) asks for a turn after every one of A's feeds asked for theirs.
        b_watch = watch_from_start(channel, B, 2, on_event=on_b_event)
        b_watch.join()
        for watch in a_watches:
            watch.join()
    assert b_watch.visitors == ["b-1", "b-2"]
    assert b_watch.ids == sorted(set(b_watch.ids))
    for watch in a_watches:
        assert watch.visitors == ["a-1"]
    # In the order the reads asked, B's read came after every one of A's feeds had
    # read (A_FEEDS served, or all but one or two); in turn between the projects,
    # after a few.
    assert max(a_served) < A_FEEDS // 2, (
        f"{a_served} of project A's {A_FEEDS} feeds had read before project B's watch "
        "had its events")


METRIC = re.compile(r"^(footfall_watch_read_waits_total|footfall_watch_reads_waiting) (\S+)$",
                    re.MULTILINE)


def test_metrics_show_the_reads_that_waited_for_the_budget(
        settings: Settings, clock: FixedClock) -> None:
    running = start(dataclasses.replace(settings, http_port=-1, watch_read_ms=1), clock)
    try:
        values: dict[str, float] = {}

        def scraped() -> bool:
            page = http_client.call(running.http_port, "GET", "/metrics")
            assert page.status == 200
            values.update((name, float(value)) for name, value in METRIC.findall(
                page.body.decode()))
            return values.get("footfall_watch_reads_waiting", 0) >= 1

        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            watches = [watch_from_start(channel, A, 1, filter=distinct_filter(k)) for k in range(8)]
            until(scraped, "no read was shown waiting for --watch-read-ms")
            assert values["footfall_watch_read_waits_total"] >= 1
            write(running.port, A, "a-1")
            for watch in watches:
                watch.join()
                assert watch.visitors == ["a-1"]
    finally:
        running.stop()
