"""The pages of the console's lists take turns in a budget of reading time
(--list-read-ms, console/pace.py's Listing), fair between callers: one reader key's
(with auth off, one client address's) flood of list calls waits behind its own pages,
and another caller's page has the next turn. Each page comes whole, once its turn
has come.

Real servers over a socket, their budget made so small that the flood's pages wait
for it. Nothing is timed: the test counts the flood's pages answered while the other
caller's page was asked and answered (counters, not clocks), under generous deadlines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.insights.v1 import insights_pb2, insights_pb2_grpc
from footfall.retail.v2 import (
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.protobuf import timestamp_pb2

from server import app
from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.console import pace
from server.store import EventRow

from . import http_client

A = "projects/a/locations/global/catalogs/default_catalog"
B = "projects/b/locations/global/catalogs/default_catalog"
C = "projects/c/locations/global/catalogs/default_catalog"
A_KEY = "list-reading-test-reader-a-0123456"
B_KEY = "list-reading-test-reader-b-0123456"
W_KEY = "list-reading-test-writer-c-0123456"
EVENTS = 300  # of each project: a page of 100 of them costs a few milliseconds to read
FLOOD = 8  # the flood's callers, each asking page after page
DEADLINE = 60.0  # seconds for anything to come, at most (generous: no timing here)
READ_MS = 5  # the budget: a page or two a second (few of them answered while a call travels)


class Seen(pace.Listing):
    """The server's budget of the lists, kept where the test can see its line."""

    made: list[Seen] = []

    def __init__(self, read_ms: int, last_write: Callable[[], float],
                 sliced: bool = False) -> None:
        super().__init__(read_ms, last_write, sliced)
        self.reads: list[str] = []  # the name of what each read in the budget ran
        Seen.made.append(self)

    async def read(self, party: Any, run: Any, fn: Any, /, *args: Any, **options: Any) -> Any:
        self.reads.append(fn.__name__)
        return await super().read(party, run, fn, *args, **options)


@contextlib.contextmanager
def writing(running: Running, key: str | None = None) -> Iterator[None]:
    """An event written to a third project every tenth of a second meanwhile, over
    gRPC (as `key`, a writer's): the budget holds while events are written (see
    pace.Listing)."""
    stop = threading.Event()
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)
    metadata = [("x-goog-api-key", key)] if key else []
    failed: list[grpc.RpcError] = []

    def write() -> None:
        n = 0
        while not stop.wait(0.1):
            event = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id=f"w-{n}")
            event.event_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1_700_000_000 + n))
            try:
                stub.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                    parent=C, user_event=event), metadata=metadata, timeout=DEADLINE)
            except grpc.RpcError as error:
                failed.append(error)
                return
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join(DEADLINE)
        channel.close()
    assert not failed, failed[0]


def fill(running: Running) -> None:
    rows = []
    for parent in (A, B):
        for n in range(EVENTS):
            event = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id=f"v-{n}")
            event.event_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1_700_000_000 + n))
            event.attributes["note"].text.extend(["n" * 100] * 10)  # (reads cost more)
            rows.append(EventRow.from_event(parent, event, joined=True))
    running.store.write_user_events(rows)


@pytest.fixture(params=["keys", "addresses"])
def budgeted(request: pytest.FixtureRequest, settings: Settings, clock: FixedClock,
             tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[tuple[Running, Seen, dict[str, str]]]:
    """A server (gRPC only) whose lists read at most READ_MS a second, its budget,
    and how its two callers reach it: by key (auth on, a reader key each), or by
    client address (auth off; 127.0.0.1 and ::1)."""
    made: list[Seen] = []
    monkeypatch.setattr(Seen, "made", made)
    monkeypatch.setattr(app, "Listing", Seen)
    changes: dict[str, object] = {"http_port": -1, "list_read_ms": READ_MS}
    if request.param == "keys":
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps({"keys": {
            A_KEY: {"projects": ["a", "b"], "role": "reader"},
            B_KEY: {"projects": ["a", "b"], "role": "reader"},
            W_KEY: {"projects": ["c"], "role": "writer"}}}))
        keys.chmod(0o600)
        changes["auth_file"] = str(keys)
        callers = {"a": A_KEY, "b": B_KEY, "writer": W_KEY}
    else:
        changes["host"] = "::"  # (reached from two loopback addresses)
        callers = {"a": "127.0.0.1", "b": "[::1]", "writer": ""}
    running = start(dataclasses.replace(settings, **changes), clock)  # type: ignore[arg-type]
    try:
        fill(running)
        listing, _ = made  # (the lists' budget; then the insights')
        with writing(running, callers["writer"]):
            yield running, listing, callers
    finally:
        running.stop()


class Caller:
    """ListUserEvents calls as `who` (a key, or a loopback address to call)."""

    def __init__(self, port: int, who: str) -> None:
        if who in ("127.0.0.1", "[::1]"):
            self.channel = grpc.insecure_channel(f"{who}:{port}")
            self.metadata: list[tuple[str, str]] = []
        else:
            self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            self.metadata = [("x-goog-api-key", who)]
        # (connected before it asks: no page is counted while it connects)
        grpc.channel_ready_future(self.channel).result(timeout=DEADLINE)
        self.stub = console_pb2_grpc.ConsoleServiceStub(self.channel)

    def page(self, parent: str) -> console_pb2.ListUserEventsResponse:
        return self.stub.ListUserEvents(console_pb2.ListUserEventsRequest(
            parent=parent, page_size=100), metadata=self.metadata, timeout=DEADLINE)


class Flood:
    """FLOOD threads asking pages of A as `who`, one after the other, until stopped:
    how many were answered, each a whole page."""

    def __init__(self, port: int, who: str) -> None:
        self.caller = Caller(port, who)
        self.answered = 0
        self.errors: list[grpc.RpcError] = []
        self.short: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._ask) for _ in range(FLOOD)]
        for thread in self.threads:
            thread.start()

    def _ask(self) -> None:
        while not self.stop.is_set():
            try:
                page = self.caller.page(A)
            except grpc.RpcError as error:
                self.errors.append(error)
                return
            if len(page.user_events) != 100:
                self.short.append(len(page.user_events))
            self.answered += 1

    def end(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(DEADLINE)
        self.caller.channel.close()
        assert not self.errors, self.errors[0]
        assert not self.short, f"pages of {self.short} events, not 100"


def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_one_callers_flood_of_list_calls_does_not_hold_back_another_callers_page(
        budgeted: tuple[Running, Seen, dict[str, str]]) -> None:
    running, listing, callers = budgeted
    flood = Flood(running.port, callers["a"])
    other = Caller(running.port, callers["b"])
    try:
        # The flood's pages fill the line (each waits for the budget).
        until(lambda: listing.reading.waiting >= FLOOD // 2, "the flood's pages never waited")
        # The flood's pages answered while each of the other caller's was asked and
        # answered: in the order they asked, every page of the flood's line (FLOOD // 2
        # or more); in turns between callers, the one being read and those already given
        # their turn or on their way back (up to 3 were seen under load), a few at most.
        answered_meanwhile = []
        for _ in range(3):
            until(lambda: listing.reading.waiting >= FLOOD // 2, "the flood's line emptied")
            before = flood.answered
            page = other.page(B)
            answered_meanwhile.append(flood.answered - before)
            assert len(page.user_events) == 100
            assert page.next_page_token
    finally:
        flood.end()
        other.channel.close()
    assert flood.answered > 0
    # (the middle of three rounds: a round's count may take in pages whose turns were
    # given before the other page was asked, up to 7 seen in a first round under load;
    # in the order they asked, every round counts FLOOD // 2 or more)
    assert sorted(answered_meanwhile)[1] <= 2, (
        f"{answered_meanwhile} of the flood's pages were answered while the other "
        f"caller's page waited (the flood had {FLOOD // 2} or more in line)")


METRIC = re.compile(r"^(footfall_list_read_waits_total|footfall_list_reads_waiting) (\S+)$",
                    re.MULTILINE)


def test_metrics_show_the_pages_that_waited_for_the_budget(
        settings: Settings, clock: FixedClock) -> None:
    running = start(dataclasses.replace(settings, http_port=-1, list_read_ms=1), clock)
    try:
        fill(running)
        values: dict[str, float] = {}

        def scraped() -> bool:
            page = http_client.call(running.http_port, "GET", "/metrics")
            assert page.status == 200
            values.update((name, float(value)) for name, value in METRIC.findall(
                page.body.decode()))
            return values.get("footfall_list_reads_waiting", 0) >= 1

        with writing(running):
            flood = Flood(running.port, "127.0.0.1")
            try:
                until(scraped, "no page was shown waiting for --list-read-ms")
            finally:
                flood.end()
        assert values["footfall_list_read_waits_total"] >= 1
    finally:
        running.stop()


def test_a_server_that_writes_nothing_reads_the_pages_unpaced(
        settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget is there to keep the writes' pace: paced with no write to keep, a
    search of a rare filter on a quiet server came two calls a second."""
    made: list[Seen] = []
    monkeypatch.setattr(Seen, "made", made)
    monkeypatch.setattr(app, "Listing", Seen)
    running = start(dataclasses.replace(settings, http_port=-1, list_read_ms=READ_MS), clock)
    try:
        fill(running)
        listing, _ = made  # (the lists' budget; then the insights')
        with writing(running):  # (events written a while, then no more)
            time.sleep(0.5)
        time.sleep(pace.WRITING_SECONDS + 0.5)
        flood = Flood(running.port, "127.0.0.1")
        try:
            until(lambda: flood.answered >= 5 * FLOOD, "the flood's pages")
        finally:
            flood.end()
        assert listing.reading.waits == 0
    finally:
        running.stop()


def test_insights_take_turns_in_a_budget_of_their_own_while_events_are_written(
        budgeted: tuple[Running, Seen, dict[str, str]]) -> None:
    """One funnel at a time of one reader key (a second of CPU over 200,000 events)
    took another key's durable writes to a tenth of their rate: insights are paced as
    the list pages are, in a budget of their own (a funnel holds no page back)."""
    running, lists, callers = budgeted
    _, insights = Seen.made
    caller = Caller(running.port, callers["a"])
    stub = insights_pb2_grpc.InsightsServiceStub(caller.channel)
    try:
        for _ in range(50):  # (until one waits: each costs a little of the budget)
            request = insights_pb2.RunFunnelRequest(parent=A, steps=[
                insights_pb2.FunnelStep(event_type="home-page-view"),
                insights_pb2.FunnelStep(event_type="detail-page-view")])
            request.start_time.FromSeconds(1_700_000_000)  # (the events' days)
            request.end_time.FromSeconds(1_700_000_000 + EVENTS)
            funnel = stub.RunFunnel(request, metadata=caller.metadata, timeout=DEADLINE)
            assert funnel.events_read == EVENTS
            if insights.reading.waits:
                break
        assert insights.reading.waits >= 1
        # The lists' budget is another: their next page goes at once.
        assert len(Caller(running.port, callers["b"]).page(B).user_events) == 100
        assert lists.reading.waits == 0
    finally:
        caller.channel.close()


def test_a_browsers_pixel_is_a_write_that_paces_the_lists(
        settings: Settings, clock: FixedClock) -> None:
    """The budget holds while events are written, pixels among them (the README says
    so): a pixel served inline (the way a browser's is, with no --durable-pixels)
    skips the envelope, and the lists of a shop written to by pixels alone were never
    paced."""
    running = start(dataclasses.replace(settings, http_port=-1), clock)
    try:
        assert running.policy is not None
        before = time.monotonic()
        served_inline: list[str] = []
        gateway = running.http
        assert gateway is not None
        serve_inline = gateway._pixel

        def noted(request: Any, *args: Any) -> Any:
            served_inline.append(request.path)
            return serve_inline(request, *args)

        gateway._pixel = noted  # type: ignore[method-assign]
        event = quote(json.dumps({"eventType": "home-page-view", "visitorId": "v"}), safe="")
        answer = http_client.call(running.http_port, "GET",
                                  f"/v2/{C}/userEvents:collect?userEvent={event}")
        assert answer.status == 200 and answer.body[:6] == b"GIF89a"
        assert served_inline  # (the way a browser's pixel is served)
        assert running.policy.last_write >= before
    finally:
        running.stop()


@pytest.mark.parametrize("read", ["count of a session", "count of a type", "catalogs counted"])
def test_the_consoles_counts_are_read_in_the_long_reads_budget(
        budgeted: tuple[Running, Seen, dict[str, str]], read: str) -> None:
    """A count reads rows of the store as a page does (sessionId = "" decodes every
    event of the catalog; a count of a type reads its index through, 0.1 s a million;
    ListCatalogs counts each catalog's events): read at once, outside any budget, a
    flood of them kept no write's pace. They take turns with the insights, whose
    reads take seconds as theirs may, not with the pages (another caller's page
    waited 5 s beside 8 callers looping counts of 2 s)."""
    running, pages, callers = budgeted
    _, lists = Seen.made  # (the long reads')
    caller = Caller(running.port, callers["a"])
    try:
        if read == "catalogs counted":
            answer = caller.stub.ListCatalogs(console_pb2.ListCatalogsRequest(
                parent="projects/a", view=console_pb2.DATA_SET_VIEW_FULL),
                metadata=caller.metadata, timeout=DEADLINE)
            assert [(c.name, c.event_count) for c in answer.catalogs] == [(A, EVENTS)]
            assert lists.reads == ["list_catalogs"]
        else:
            where = 'sessionId = ""' if read == "count of a session" \
                else 'eventType = "home-page-view"'
            count = caller.stub.CountUserEvents(console_pb2.CountUserEventsRequest(
                parent=A, filter=where), metadata=caller.metadata, timeout=DEADLINE)
            assert count.count == EVENTS
            assert lists.reads == ["count_user_events"]
        # ... and without counts, ListCatalogs reads the names alone (a seek each)
        caller.stub.ListCatalogs(console_pb2.ListCatalogsRequest(
            parent="projects/a", view=console_pb2.DATA_SET_VIEW_BASIC),
            metadata=caller.metadata, timeout=DEADLINE)
        assert len(lists.reads) == 1
        assert not pages.reads
    finally:
        caller.channel.close()


@pytest.mark.parametrize("filter_", ["", 'type = "COLLECTION"'])
def test_a_page_of_products_is_read_in_the_lists_budget(
        budgeted: tuple[Running, Seen, dict[str, str]], filter_: str) -> None:
    """A reader key may list products too, and a filtered page reads up to 5,000 of
    them: such pages kept no write's pace."""
    from footfall.retail.v2 import product_service_pb2, product_service_pb2_grpc

    running, lists, callers = budgeted
    caller = Caller(running.port, callers["a"])
    try:
        products = product_service_pb2_grpc.ProductServiceStub(caller.channel)
        page = products.ListProducts(product_service_pb2.ListProductsRequest(
            parent=f"{A}/branches/0", filter=filter_), metadata=caller.metadata,
            timeout=DEADLINE)
        assert not page.products
        assert lists.reads == ["page"]
    finally:
        caller.channel.close()
