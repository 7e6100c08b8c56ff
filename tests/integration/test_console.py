"""footfall.console.v1 in-process, through our own stubs and the HTTP gateway:
events and refusals read back, filtered, paged, watched and reset."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import user_event_service_pb2
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc
from google.protobuf import json_format

from server.app import Running, start
from server.config import Settings
from server.console import queries, rejections, sources
from server.store import EventRow

from . import http_client
from .test_server import PARENT, TENANT, bad_request, event, retail


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """With the HTTP gateway on a free port."""
    return dataclasses.replace(settings, http_port=-1, http_header_timeout=0.5)


@pytest.fixture
def console(channel: grpc.Channel) -> console_pb2_grpc.ConsoleServiceStub:
    return console_pb2_grpc.ConsoleServiceStub(channel)


def write(channel: grpc.Channel, **fields: Any) -> None:
    retail(channel).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=event(**fields)))


def visitors(answer: Any) -> list[str]:
    return [e.user_event.visitor_id for e in answer.user_events]


def test_events_are_listed_newest_first_in_pages(channel: grpc.Channel,
                                                 console: Any) -> None:
    for day in (3, 1, 2):
        write(channel, visitorId=f"day{day}", eventTime=f"2024-01-0{day}T00:00:00Z")
    first = console.ListUserEvents(console_pb2.ListUserEventsRequest(parent=PARENT, page_size=2))
    assert visitors(first) == ["day3", "day2"]
    rest = console.ListUserEvents(console_pb2.ListUserEventsRequest(
        parent=PARENT, page_size=2, page_token=first.next_page_token))
    assert visitors(rest) == ["day1"] and not rest.next_page_token
    stored = first.user_events[0]
    assert stored.catalog == PARENT and stored.joined
    assert stored.transport == console_pb2.GRPC and stored.receive_time.seconds > 0


FILTERS = [
    ('visitorId = "a"', ["a"]),
    ('sessionId = "s2"', ["b"]),
    ('productId = "sku-1"', ["c"]),
    # ids whose bytes the events hold elsewhere (an event's bytes are looked at before
    # it is decoded): a session of "s", a visitor's id, a product id's start
    ('sessionId = "s"', []),
    ('sessionId = "a"', []),
    ('productId = "sku"', []),
    ('sessionId = "s1" productId = "sku-1"', []),
    ("joined = false", ["c"]),
    ('joined = true eventType = "home-page-view"', ["b", "a"]),
    ("transport = GRPC", ["c", "b", "a"]),
    ("transport = PIXEL", []),
    # our own words, in any case (`footfall events list` writes [grpc]); Google's
    # eventType values keep their case
    ("transport = grpc", ["c", "b", "a"]),
    ("joined = FALSE transport = Grpc", ["c"]),
    ('eventType = "Home-Page-View"', []),
    ('eventTime > "2024-01-01T12:00:00Z"', ["c", "b"]),
]


@pytest.mark.parametrize(("text", "expected"), FILTERS)
def test_filters(channel: grpc.Channel, console: Any, text: str, expected: list[str]) -> None:
    write(channel, visitorId="a", sessionId="s1", eventTime="2024-01-01T00:00:00Z")
    write(channel, visitorId="b", sessionId="s2", eventTime="2024-01-02T00:00:00Z")
    write(channel, visitorId="c", eventType="detail-page-view", eventTime="2024-01-03T00:00:00Z",
          productDetails=[{"product": {"id": "sku-1"}}])  # no such product: not joined
    answer = console.ListUserEvents(console_pb2.ListUserEventsRequest(parent=PARENT,
                                                                      filter=text))
    assert visitors(answer) == expected
    counted = console.CountUserEvents(console_pb2.CountUserEventsRequest(parent=PARENT,
                                                                         filter=text))
    assert counted.count == len(expected)


@pytest.mark.parametrize("text", ["joined = true joined = false",
                                  "joined = false AND joined = TRUE"])
def test_a_filter_of_joined_both_true_and_false_is_refused(console: Any, text: str) -> None:
    """The later term replaced the earlier, where every term must hold: the first
    listed the events not joined, the second those joined."""
    with pytest.raises(grpc.RpcError) as caught:
        console.CountUserEvents(console_pb2.CountUserEventsRequest(parent=PARENT, filter=text))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [violation] = bad_request(caught.value).field_violations
    assert violation.field == "filter"
    assert violation.description.endswith("joined is given as both true and false: no "
                                          "event is both")


def test_pages_of_big_events_stay_within_a_clients_message_limit(channel: grpc.Channel,
                                                                 console: Any) -> None:
    # ~1 MiB each: a page of 1,000 would be a gigabyte; a gRPC client takes 4 MiB.
    big = {f"a{i}": {"text": [f"{i:03}" + "x" * 252] * 400} for i in range(10)}
    for i in range(7):
        write(channel, visitorId=f"big{i}", attributes=big,
              eventTime=f"2024-01-01T00:00:0{i}Z")
    seen, token, pages = [], "", 0
    while True:
        page = console.ListUserEvents(console_pb2.ListUserEventsRequest(
            parent=PARENT, page_size=1000, page_token=token))
        assert page.user_events and page.ByteSize() <= 4 * 1024 * 1024
        seen += visitors(page)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"big{i}" for i in reversed(range(7))] and pages >= 3


def test_pages_of_events_naming_many_products_hold_what_they_take_decoded(
        channel: grpc.Channel, console: Any) -> None:
    # A product takes ten bytes or so on the wire and about 230 decoded: pages of 3 MiB
    # of events naming 60,000 products each held 69 MB each until sent, and the events
    # read past a page's end were decoded too. (What a page holds decoded, and that it
    # decodes none it leaves out, is measured in tests/unit/test_console_page_memory.py:
    # the events are decoded straight into the page now, where no spy sees them.)
    products = [{"product": {"id": f"p{j}"}} for j in range(5_000)]
    for i in range(7):
        write(channel, visitorId=f"many{i}", eventType="detail-page-view",
              productDetails=products, eventTime=f"2024-01-01T00:00:0{i}Z")
    seen, token, pages = [], "", 0
    while True:
        page = console.ListUserEvents(console_pb2.ListUserEventsRequest(
            parent=PARENT, page_size=1000, page_token=token))
        # (7 events of some 60 KB each on the wire: one page of them before)
        assert 1 <= len(page.user_events) <= 2, visitors(page)
        seen += visitors(page)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"many{i}" for i in reversed(range(7))] and pages == 4


def test_a_filter_on_decoded_events_pages_all_the_way(channel: grpc.Channel,
                                                      console: Any) -> None:
    for i in range(7):
        write(channel, visitorId=f"v{i}", sessionId="s" if i % 2 else "other",
              eventTime=f"2024-01-01T00:00:0{i}Z")
    seen, token = [], ""
    while True:
        page = console.ListUserEvents(console_pb2.ListUserEventsRequest(
            parent=PARENT, filter='sessionId = "s"', page_size=2, page_token=token))
        seen += visitors(page)
        token = page.next_page_token
        if not token:
            break
    assert seen == ["v5", "v3", "v1"]


def test_a_watch_opened_just_after_a_reset_sends_none_of_what_it_deleted(
        channel: grpc.Channel, console: Any) -> None:
    """A watch from the first row read a page that was kept (PAGE_CACHE_SECONDS) for
    other watches catching up; one opened from the first row again just after a reset
    was given that page, and sent the deleted event (the console's event page, opened
    again after a reset, found the event still there)."""
    # (the live feed stays open across the reset, as the console's page of it did: the
    # catalog's feed is there, still at the deleted row until it reads again)
    live = Watched(console.WatchUserEvents(console_pb2.WatchUserEventsRequest(parent=PARENT),
                                           timeout=10))
    try:
        gone = live.first_of(channel, "gone")  # (gone-0, or a later one: the watch opens)
        request = console_pb2.WatchUserEventsRequest(parent=PARENT, after_id=0)
        before = Watched(console.WatchUserEvents(request, timeout=10))
        try:
            assert before.wait_for(lambda: gone in before.got, 5.0), before.got
        finally:
            before.close()
        console.ResetCatalog(console_pb2.ResetCatalogRequest(name=PARENT))
        after = Watched(console.WatchUserEvents(request, timeout=10))
        try:
            assert after.first_of(channel, "new").startswith("new-"), after.got
        finally:
            after.close()
    finally:
        live.close()


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"parent": "catalogs/x"}, "parent"),
    ({"filter": "colour = \"red\""}, "filter"),
    ({"filter": "transport = CARRIER_PIGEON"}, "filter"),
    ({"page_size": -1}, "page_size"),
    ({"page_token": "bm90IGEgdG9rZW4"}, "page_token"),
])
def test_bad_list_requests_name_their_field(console: Any, request_fields: dict[str, Any],
                                            field: str) -> None:
    request = console_pb2.ListUserEventsRequest(parent=PARENT)
    for name, value in request_fields.items():
        setattr(request, name, value)
    with pytest.raises(grpc.RpcError) as caught:
        console.ListUserEvents(request)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad_request(caught.value).field_violations] == [field]


def test_refused_writes_are_kept_with_their_fields(channel: grpc.Channel, running: Running,
                                                   console: Any) -> None:
    with pytest.raises(grpc.RpcError):
        write(channel, visitorId="")
    with pytest.raises(grpc.RpcError):
        retail(channel).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
            parent="nowhere", user_event=event()))
    write(channel)  # accepted: not kept
    running.store.flush()  # refusals are kept without the answer waiting for it
    answer = console.ListRejections(console_pb2.ListRejectionsRequest(parent="projects/-"))
    wrong_parent, no_visitor = answer.rejections
    assert no_visitor.method == "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
    assert no_visitor.transport == console_pb2.GRPC and no_visitor.parent == PARENT
    assert no_visitor.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [v.field for v in no_visitor.field_violations] == ["user_event.visitor_id"]
    assert '"eventType": "home-page-view"' in no_visitor.request_json
    assert [v.field for v in wrong_parent.field_violations] == ["parent"]
    # projects/p holds the one with a good parent; the other named no project
    mine = console.ListRejections(console_pb2.ListRejectionsRequest(parent="projects/p"))
    assert [r.id for r in mine.rejections] == [no_visitor.id]


def test_refusals_of_huge_parents_are_kept_cut_and_listed_a_page_at_a_time(
        channel: grpc.Channel, running: Running, console: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A dozen writes naming a megabyte parent were kept whole: the list of the
    # project's refusals passed the server's 10 MiB message limit (RESOURCE_EXHAUSTED).
    huge = PARENT + "x" * 1_000_000 + " "
    for n in range(12):
        with pytest.raises(grpc.RpcError):
            retail(channel).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=huge, user_event=event(sessionId=f"s{n}")))
    running.store.flush()
    answer = console.ListRejections(console_pb2.ListRejectionsRequest(parent="projects/p"))
    assert len(answer.rejections) == 12
    assert {r.parent for r in answer.rejections} == {
        huge[:rejections.KEPT_PARENT_CHARS] + "..."}
    # A page ends once it holds PAGE_BYTES (at least one refusal); the token goes on.
    monkeypatch.setattr(queries, "PAGE_BYTES", answer.rejections[0].ByteSize() * 5 // 2)
    seen, token = [], ""
    while True:
        page = console.ListRejections(console_pb2.ListRejectionsRequest(
            parent="projects/p", page_token=token))
        assert 1 <= len(page.rejections) <= 3
        seen += [r.id for r in page.rejections]
        token = page.next_page_token
        if not token:
            break
    assert seen == [r.id for r in answer.rejections]


def test_a_refusal_is_listed_right_after_its_answer(channel: grpc.Channel,
                                                    console: Any) -> None:
    # It is kept with a later commit (up to 0.1 s on): a list made at once still sees
    # it, as the README's quick start does with two curls in a row.
    for n in range(3):
        with pytest.raises(grpc.RpcError):
            write(channel, visitorId="", sessionId=f"s{n}")
        answer = console.ListRejections(console_pb2.ListRejectionsRequest(parent="projects/p"))
        assert len(answer.rejections) == n + 1
        assert f'"s{n}"' in answer.rejections[0].request_json


def test_pixel_refusals_are_kept(running: Running, console: Any) -> None:
    reply = http_client.call(
        running.http_port, "GET", f"/v2/{PARENT}/userEvents:collect?userEvent="
        + http_client.query_value('{"eventType": "home-page-view"}'))
    assert reply.status == 200  # the GIF, whatever happened
    running.store.flush()
    answer = console.ListRejections(console_pb2.ListRejectionsRequest(parent="projects/p"))
    assert answer.rejections[0].transport == console_pb2.PIXEL
    assert [v.field for v in answer.rejections[0].field_violations] == ["user_event.visitor_id"]


def test_client_events_catalogs_and_reset(channel: grpc.Channel, console: Any) -> None:
    talent = event_service_pb2_grpc.EventServiceStub(channel)
    for n in (1, 2):
        client_event = json_format.ParseDict(
            {"eventId": f"e{n}", "createTime": "2024-05-01T00:00:00Z",
             "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j"]}}, event_pb2.ClientEvent())
        talent.CreateClientEvent(event_service_pb2.CreateClientEventRequest(
            parent=TENANT, client_event=client_event))
    listed = console.ListClientEvents(console_pb2.ListClientEventsRequest(parent=TENANT))
    assert [e.client_event.event_id for e in listed.client_events] == ["e2", "e1"]
    write(channel)
    sets = console.ListCatalogs(console_pb2.ListCatalogsRequest(parent="projects/p"))
    assert [(c.name, c.event_count) for c in sets.catalogs] == [(PARENT, 1)]
    assert [(t.name, t.event_count) for t in sets.tenants] == [(TENANT, 2)]
    assert console.ResetCatalog(console_pb2.ResetCatalogRequest(name=PARENT)) \
        .deleted_events_count == 1
    assert console.ResetTenant(console_pb2.ResetTenantRequest(name=TENANT)) \
        .deleted_events_count == 2
    sets = console.ListCatalogs(console_pb2.ListCatalogsRequest(parent="projects/-"))
    assert not sets.catalogs and not sets.tenants


def test_a_reset_takes_the_refusals_made_just_before_it(channel: grpc.Channel,
                                                        console: Any) -> None:
    # Refusals are stored with a later commit (up to 0.1 s on): one made right before
    # a reset was stored after it, so a test suite resetting between tests found the
    # previous test's refusal in the next one.
    talent = event_service_pb2_grpc.EventServiceStub(channel)
    for n in range(3):
        with pytest.raises(grpc.RpcError):
            write(channel, visitorId="", sessionId=f"s{n}")
        with pytest.raises(grpc.RpcError):
            talent.CreateClientEvent(event_service_pb2.CreateClientEventRequest(
                parent=TENANT, client_event=event_pb2.ClientEvent(event_id=f"e{n}")))
        assert console.ResetCatalog(console_pb2.ResetCatalogRequest(
            name=PARENT)).deleted_rejections_count == 1
        assert console.ResetTenant(console_pb2.ResetTenantRequest(
            name=TENANT)).deleted_rejections_count == 1
        # (a list stores the refusals still to come first: none is)
        left = console.ListRejections(console_pb2.ListRejectionsRequest(parent="projects/p"))
        assert list(left.rejections) == []
    # and a project's reset, of both at once
    with pytest.raises(grpc.RpcError):
        write(channel, visitorId="", sessionId="s")
    with pytest.raises(grpc.RpcError):
        talent.CreateClientEvent(event_service_pb2.CreateClientEventRequest(
            parent=TENANT, client_event=event_pb2.ClientEvent(event_id="e")))
    assert console.ResetProject(console_pb2.ResetProjectRequest(
        name="projects/p")).deleted_rejections_count == 2
    left = console.ListRejections(console_pb2.ListRejectionsRequest(parent="projects/p"))
    assert list(left.rejections) == []


def test_rest_routes_come_from_the_annotations(running: Running, channel: grpc.Channel) -> None:
    write(channel, visitorId="a")
    reply = http_client.call(running.http_port, "GET",
                             f"/console/v1/{PARENT}/userEvents?filter=visitorId%20%3D%20%22a%22")
    assert reply.status == 200, reply.body
    assert [e["userEvent"]["visitorId"] for e in reply.json()["userEvents"]] == ["a"]
    # the filter's grammar is the one gRPC reads: our words in any case
    reply = http_client.call(running.http_port, "GET", f"/console/v1/{PARENT}/userEvents?"
                             + urllib.parse.urlencode({"filter": "transport = grpc"}))
    assert [e["userEvent"]["visitorId"] for e in reply.json()["userEvents"]] == ["a"], reply.body
    reset = http_client.call(running.http_port, "POST", f"/console/v1/{PARENT}:reset", {})
    assert reset.json() == {"deletedEventsCount": "1"}


class Watched:
    """The visitors of a watch's events, read on a thread of its own."""

    def __init__(self, stream: Any) -> None:
        self.got: list[str] = []
        self._stream = stream
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):  # CANCELLED at the end
            for stored in self._stream:
                with self._arrived:
                    self.got.append(stored.user_event.visitor_id)
                    self._arrived.notify_all()

    def wait_for(self, test: Any, seconds: float) -> bool:
        with self._arrived:
            return bool(self._arrived.wait_for(test, seconds))

    def first_of(self, channel: grpc.Channel, prefix: str) -> str:
        """Write events `prefix-N` until the watch sends one (it starts from a
        position this side cannot see); the first it sent."""
        for n in range(100):
            write(channel, visitorId=f"{prefix}-{n}")
            if self.wait_for(lambda: self.got, 0.2):
                break
        assert self.got, "the watch sent nothing"
        return self.got[0]

    def close(self) -> None:
        self._stream.cancel()
        self._reader.join(5)


def test_a_watch_sees_each_new_event_at_once(channel: grpc.Channel, console: Any) -> None:
    write(channel, visitorId="before")  # stored before the watch: not sent
    watched = Watched(console.WatchUserEvents(console_pb2.WatchUserEventsRequest(
        parent=PARENT, filter='eventType = "home-page-view"'), timeout=20))
    try:
        assert watched.first_of(channel, "opening").startswith("opening-")
        for name in ("first", "second"):
            write(channel, visitorId=f"{name}-search", eventType="search", searchQuery="x")
            write(channel, visitorId=name)
            assert watched.wait_for(lambda: watched.got[-1] == name, 1.0), \
                watched.got  # noqa: B023
        assert "before" not in watched.got
        assert not any(v.endswith("-search") for v in watched.got)
    finally:
        watched.close()


def test_a_watch_says_it_is_open_before_any_event(channel: grpc.Channel, console: Any) -> None:
    # Its headers come once its position is fixed: an event written after them is sent
    # (they came with the first event, so a caller could not tell, and wrote too soon).
    stream = console.WatchUserEvents(console_pb2.WatchUserEventsRequest(
        parent=PARENT, filter='visitorId = "after-the-headers"'), timeout=10)
    try:
        stream.initial_metadata()  # (blocks until the headers come, or the call ends)
        write(channel, visitorId="after-the-headers")
        assert next(stream).user_event.visitor_id == "after-the-headers"
    finally:
        stream.cancel()


def test_a_watch_by_session_sends_that_session_alone(channel: grpc.Channel,
                                                     console: Any) -> None:
    watched = Watched(console.WatchUserEvents(console_pb2.WatchUserEventsRequest(
        parent=PARENT, filter='sessionId = "s"'), timeout=20))
    try:
        for n in range(100):  # (it starts from a position this side cannot see)
            write(channel, visitorId=f"opening-{n}", sessionId="s")
            if watched.wait_for(lambda: watched.got, 0.2):
                break
        opened = len(watched.got)
        # events whose bytes hold the session's id elsewhere (a visitor, a longer session)
        for visitor, session in (("s", "other"), ("a", "s1"), ("b", "s"), ("s1", "x"),
                                 ("c", "s")):
            write(channel, visitorId=visitor, sessionId=session)
        assert watched.wait_for(lambda: watched.got[-1:] == ["c"], 5.0), watched.got
        assert watched.got[opened:] == ["b", "c"]
    finally:
        watched.close()


def test_a_watch_from_a_position_sends_what_came_after_it(channel: grpc.Channel,
                                                          console: Any) -> None:
    for name in ("a", "b", "c"):
        write(channel, visitorId=name, eventTime=f"2024-01-0{ord(name) - 96}T00:00:00Z")
    oldest = console.ListUserEvents(console_pb2.ListUserEventsRequest(parent=PARENT)) \
        .user_events[-1]
    stream = console.WatchUserEvents(console_pb2.WatchUserEventsRequest(
        parent=PARENT, after_id=oldest.id), timeout=10)
    try:
        assert [next(stream).user_event.visitor_id for _ in range(2)] == ["b", "c"]
    finally:
        stream.cancel()


@pytest.mark.parametrize(("asked", "field"), [
    ({"filter": "nonsense"}, "filter"),
    ({"after_id": -1}, "after_id"),  # (read as 0: every row again)
])
def test_a_bad_watch_is_refused_naming_the_field(console: Any, asked: dict[str, Any],
                                                 field: str) -> None:
    for watch, request in ((console.WatchUserEvents, console_pb2.WatchUserEventsRequest),
                           (console.WatchRejections, console_pb2.WatchRejectionsRequest)):
        if field not in request.DESCRIPTOR.fields_by_name:
            continue
        parent = PARENT if watch is console.WatchUserEvents else "projects/p"
        stream = watch(request(parent=parent, **asked), timeout=10)
        with pytest.raises(grpc.RpcError) as caught:
            next(stream)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in bad_request(caught.value).field_violations] == [field]


@pytest.mark.parametrize(("raw", "field"), [
    # a filter past what any watch takes (a filter is at most 5,000 characters)
    (console_pb2.WatchUserEventsRequest(parent=PARENT, filter="x" * 100_000)
     .SerializeToString(), "filter"),
    # a valid message (the last parent wins), decoded whole on the loop before
    (console_pb2.WatchUserEventsRequest(parent=PARENT).SerializeToString() * 2_000, "parent"),
])
def test_a_watch_request_over_64_kib_is_refused_undecoded_naming_its_field(
        channel: grpc.Channel, raw: bytes, field: str) -> None:
    """A watch is decoded on the loop: a valid one is small, so one over
    LARGE_REQUEST_BYTES (up to --max-request-bytes of a reader key's) is refused
    before it is decoded, naming the field that takes most of it."""
    watch = channel.unary_stream(f"/{console_pb2.DESCRIPTOR.package}.ConsoleService/"
                                 "WatchUserEvents",
                                 request_serializer=lambda sent: sent,
                                 response_deserializer=console_pb2.StoredUserEvent.FromString)
    assert len(raw) > 64 * 1024
    with pytest.raises(grpc.RpcError) as caught:
        next(watch(raw, timeout=5))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert [v.field for v in bad_request(caught.value).field_violations] == [field]
    assert f"takes at most {64 * 1024}" in caught.value.details()


@pytest.mark.parametrize("view", [3, 99, -1])
def test_an_unknown_catalogs_view_is_refused_naming_the_field(console: Any, view: int) -> None:
    """It was read as DATA_SET_VIEW_FULL: a client asking for a view of a later
    contract would get every event counted and think it got what it asked."""
    with pytest.raises(grpc.RpcError) as caught:
        console.ListCatalogs(console_pb2.ListCatalogsRequest(parent="projects/-", view=view))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad_request(caught.value).field_violations] == ["view"]


def test_a_watch_over_http_is_server_sent_events(running: Running,
                                                 channel: grpc.Channel) -> None:
    write(channel, visitorId="before")
    conn = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
    try:
        conn.request("GET", f"/console/v1/{PARENT}/userEvents:watch?afterId=0")
        answer = conn.getresponse()
        assert answer.status == 200
        assert answer.getheader("Content-Type") == "text/event-stream"
        # quiet for longer than a request head may take: the stream stays open
        threading.Event().wait(running.settings.http_header_timeout * 2)
        write(channel, visitorId="after")
        seen = []
        while len(seen) < 2:
            line = answer.readline()  # (the chunked body decoded)
            if line.startswith(b"data: "):
                seen.append(json.loads(line[6:])["userEvent"]["visitorId"])
        assert seen == ["before", "after"]
    finally:
        conn.close()


@pytest.mark.parametrize("route", ["watch", "watchBatches"])
def test_a_large_event_is_written_as_json_off_the_loop_for_a_watch(
        running: Running, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch,
        route: str) -> None:
    # json_format writes about 3 MB a second: on the loop, the line of a 2 MB event in
    # each open console feed held every call of both transports for 0.7-1 s.
    from server.http import transcode
    written_on: dict[str, str] = {}
    write_json = transcode.response_json

    def recording(message: Any, *args: Any) -> Any:
        written_on[message.user_event.visitor_id] = threading.current_thread().name
        return write_json(message, *args)

    monkeypatch.setattr(transcode, "response_json", recording)
    write(channel, visitorId="small")
    write(channel, visitorId="large", eventType="category-page-view",
          pageCategories=["c" * 20] * 4_000)  # 80 KB, past LARGE_ANSWER_BYTES
    conn = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
    try:
        conn.request("GET", f"/console/v1/{PARENT}/userEvents:{route}?afterId=0")
        answer = conn.getresponse()
        seen: list[str] = []
        while len(seen) < 2:
            line = answer.readline()  # (the chunked body decoded)
            if line.startswith(b"data: "):
                data = json.loads(line[6:])
                seen += [e["userEvent"]["visitorId"] for e in data.get("userEvents", [data])]
        assert seen == ["small", "large"]
    finally:
        conn.close()
    # (on the streams' own thread: on the decoders', one reader's watches of large
    # events held up every project's large writes for seconds)
    assert written_on["large"].startswith("footfall-encode")
    if route == "watch":  # (of a batch, its size decides: here both are in one)
        assert written_on["small"] == "footfall-loop"


def test_a_refused_watch_over_http_is_a_json_error(running: Running) -> None:
    reply = http_client.call(running.http_port, "GET",
                             f"/console/v1/{PARENT}/userEvents:watch?filter=nonsense")
    assert reply.status == 400
    assert reply.violations() == {"filter": "at character 1: unknown field 'nonsense'; filter on "
                                            "eventType, visitorId, userId, eventTime, sessionId, "
                                            "productId, joined, transport"}


def test_a_flood_of_refusals_keeps_only_the_latest(settings: Settings, clock: Any) -> None:
    flooded = start(dataclasses.replace(settings, rejections_keep=5), clock)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{flooded.port}") as chan:
            for n in range(40):
                with pytest.raises(grpc.RpcError):
                    retail(chan).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                        parent=PARENT, user_event=event(visitorId="", sessionId=f"s{n}")))
        flooded.store.flush()
        kept = flooded.store.rejections_after(None, 0, 100)
        assert len(kept) == 5
        assert rejections.shown(*kept[-1]).request_json.count('"s39"') == 1
    finally:
        flooded.stop()


def test_a_watch_goes_on_across_a_reset(channel: grpc.Channel, console: Any) -> None:
    for n in range(30):
        write(channel, visitorId=f"old-{n}")
    last = max(e.id for e in console.ListUserEvents(
        console_pb2.ListUserEventsRequest(parent=PARENT)).user_events)
    watched = Watched(console.WatchUserEvents(console_pb2.WatchUserEventsRequest(
        parent=PARENT, after_id=last), timeout=10))
    try:
        console.ResetCatalog(console_pb2.ResetCatalogRequest(name=PARENT))
        # SQLite gives the new events ids the watch has passed already: it must
        # notice and go on (the first may land before it does; within 20 it has,
        # where without noticing it would wait for ids past the 30 old ones)
        first = watched.first_of(channel, "new")
        assert first.startswith("new-") and int(first.rsplit("-", 1)[1]) < 20
    finally:
        watched.close()


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"parent": "catalogs/x"}, "parent"),
    ({"filter": 'sessionId = "s" colour = "red"'}, "filter"),
])
def test_bad_count_requests_name_their_field(console: Any, request_fields: dict[str, Any],
                                             field: str) -> None:
    request = console_pb2.CountUserEventsRequest(**{"parent": PARENT, **request_fields})
    with pytest.raises(grpc.RpcError) as caught:
        console.CountUserEvents(request)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad_request(caught.value).field_violations] == [field]


@pytest.fixture
def one_watch(settings: Settings, clock: Any) -> Iterator[Running]:
    """A server that lets one watch be open at a time."""
    server = start(dataclasses.replace(settings, max_watches=1), clock)
    yield server
    server.stop()


def test_one_project_cannot_take_every_watch(settings: Settings, clock: Any) -> None:
    """A reader key of one project held every watch of the server (1,000 of a filter
    each that never sends), and every other project's console was refused."""
    server = start(dataclasses.replace(settings, max_watches=4), clock)  # 2 a project
    other = "projects/q/locations/global/catalogs/default_catalog"
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
            console = console_pb2_grpc.ConsoleServiceStub(chan)
            request = console_pb2.WatchUserEventsRequest(parent=PARENT)
            held = [Watched(console.WatchUserEvents(request, timeout=20)) for _ in range(2)]
            try:
                for n, watched in enumerate(held):
                    watched.first_of(chan, f"open-{n}")
                with pytest.raises(grpc.RpcError) as caught:
                    next(console.WatchUserEvents(request, timeout=5))
                assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "project 'p' has 2 watches open" in caught.value.details()
                assert "--max-watches-per-project" in caught.value.details()
                reply = http_client.call(server.http_port, "GET",
                                         f"/console/v1/{PARENT}/userEvents:watch")
                assert reply.status == 429
                # another project's watch opens (from its one event, stored before)
                retail(chan).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                    parent=other, user_event=event(visitorId="q-1")), timeout=10)
                theirs = Watched(console.WatchUserEvents(console_pb2.WatchUserEventsRequest(
                    parent=other, after_id=0), timeout=20))
                try:
                    assert theirs.wait_for(lambda: theirs.got == ["q-1"], 10), theirs.got
                finally:
                    theirs.close()
            finally:
                for watched in held:
                    watched.close()
    finally:
        server.stop()


@pytest.mark.parametrize(("filter_text", "thread"), [
    ('sessionId = "s-1"', "footfall-long-read"),  # each row decoded: a long read
    ('eventType = "home-page-view"', "footfall-store"),  # the store selects: the pool
])
def test_a_watch_catching_up_over_decoded_rows_reads_as_a_long_read(
        channel: grpc.Channel, console: Any, monkeypatch: pytest.MonkeyPatch,
        filter_text: str, thread: str) -> None:
    """20 watches by session, from afterId 1 over 200k events, each decoded every
    event on the pool every call uses (another project's writes 360/s -> 20/s)."""
    seen: list[str] = []  # the threads its reads ran on (the shared feed's among them)
    read = sources.UserEvents.read

    def recording(self: sources.UserEvents, after: int) -> Any:
        seen.append(threading.current_thread().name.rpartition("_")[0])
        return read(self, after)

    monkeypatch.setattr(sources.UserEvents, "read", recording)
    write(channel, visitorId="v-1", sessionId="s-1")
    watched = Watched(console.WatchUserEvents(console_pb2.WatchUserEventsRequest(
        parent=PARENT, filter=filter_text, after_id=0), timeout=20))
    try:
        assert watched.wait_for(lambda: watched.got == ["v-1"], 10), watched.got
    finally:
        watched.close()
    # (the shared feed's own reads of what comes next run on the pool either way)
    assert ("footfall-long-read" in seen) == (thread == "footfall-long-read"), seen


def test_watches_past_the_limit_are_refused(one_watch: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{one_watch.port}") as chan:
        console = console_pb2_grpc.ConsoleServiceStub(chan)
        request = console_pb2.WatchUserEventsRequest(parent=PARENT)
        first = Watched(console.WatchUserEvents(request, timeout=20))
        try:
            first.first_of(chan, "open")  # it is open and sending
            with pytest.raises(grpc.RpcError) as caught:
                next(console.WatchUserEvents(request, timeout=5))
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "--max-watches" in caught.value.details()
            reply = http_client.call(one_watch.http_port, "GET",
                                     f"/console/v1/{PARENT}/userEvents:watch")
            assert reply.status == 429
        finally:
            first.close()
        # its place is free once the server has seen it go
        for _ in range(50):
            again = Watched(console.WatchUserEvents(request, timeout=20))
            try:
                if again.first_of(chan, "again"):
                    break
            except AssertionError:
                pass
            finally:
                again.close()
        else:
            raise AssertionError("no watch opened after the first closed")


def test_a_watch_of_batches_sends_every_event_in_order(channel: grpc.Channel,
                                                       console: Any) -> None:
    write(channel, visitorId="before")
    stream = console.WatchUserEventBatches(console_pb2.WatchUserEventsRequest(
        parent=PARENT, after_id=0, filter='eventType = "home-page-view"'), timeout=20)
    try:
        seen: list[str] = []
        for batch in stream:
            seen += [e.user_event.visitor_id for e in batch.user_events]
            if seen == ["before"]:  # then twenty in quick succession: fewer messages
                for n in range(20):
                    write(channel, visitorId=f"v{n}", eventType="search", searchQuery="x")
                    write(channel, visitorId=f"v{n}")
            if len(seen) == 21:
                break
        assert seen == ["before", *(f"v{n}" for n in range(20))]
    finally:
        stream.cancel()


def test_many_watches_each_get_every_event_once_in_order(channel: grpc.Channel,
                                                         console: Any) -> None:
    """Forty watches, of batches and of single events, woken a few a turn of the
    loop while four callers write: each gets every event once, in the order
    stored."""
    request = console_pb2.WatchUserEventsRequest(parent=PARENT, after_id=0)
    streams = [console.WatchUserEventBatches(request, timeout=30) for _ in range(30)] + \
        [console.WatchUserEvents(request, timeout=30) for _ in range(10)]
    got: list[list[tuple[int, str]]] = [[] for _ in streams]

    def read(stream: Any, into: list[tuple[int, str]]) -> None:
        with contextlib.suppress(grpc.RpcError):  # CANCELLED at the end
            for message in stream:
                events = message.user_events if hasattr(message, "user_events") \
                    else [message]
                into += [(e.id, e.user_event.visitor_id) for e in events]
                if len(into) >= 100:
                    return

    def write_some(caller: int) -> None:
        for n in range(25):
            write(channel, visitorId=f"c{caller}-{n}")

    readers = [threading.Thread(target=read, args=pair, daemon=True)
               for pair in zip(streams, got, strict=True)]
    try:
        for reader in readers:
            reader.start()
        writers = [threading.Thread(target=write_some, args=(c,)) for c in range(4)]
        for writer in writers:
            writer.start()
        for thread in (*writers, *readers):
            thread.join(30)
        written = {f"c{c}-{n}" for c in range(4) for n in range(25)}
        for events in got:
            assert len(events) == 100 and {v for _, v in events} == written
            assert [i for i, _ in events] == sorted({i for i, _ in events})
    finally:
        for stream in streams:
            stream.cancel()


def test_a_watch_of_batches_over_http(running: Running, channel: grpc.Channel) -> None:
    write(channel, visitorId="before")
    conn = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
    try:
        conn.request("GET", f"/console/v1/{PARENT}/userEvents:watchBatches?afterId=0")
        answer = conn.getresponse()
        assert answer.status == 200
        write(channel, visitorId="after")
        seen: list[str] = []
        while len(seen) < 2:
            line = answer.readline()  # (the chunked body decoded)
            if line.startswith(b"data: "):
                batch = json.loads(line[6:])
                seen += [e["userEvent"]["visitorId"] for e in batch["userEvents"]]
        assert seen == ["before", "after"]
        assert batch["userEvents"][-1]["transport"] == "GRPC"
    finally:
        conn.close()


def test_watches_over_http_leave_room_for_writes(settings: Settings, clock: Any) -> None:
    # Idle watches hold their connections: without a share of their own, as many as
    # --http-max-connections of them would leave no room for a pixel or a write.
    few = start(dataclasses.replace(settings, http_max_connections=4), clock)
    watch = f"/console/v1/{PARENT}/userEvents:watch"
    opened = [http.client.HTTPConnection("127.0.0.1", few.http_port, timeout=10)
              for _ in range(2)]
    try:
        for n, conn in enumerate(opened):  # half of the 4 connections, of two projects
            conn.request("GET", watch.replace("projects/p/", f"projects/p{n}/"))
            assert conn.getresponse().status == 200
        refused = http_client.call(few.http_port, "GET", watch)
        assert refused.status == 429 and b"--http-max-connections" in refused.body
        wrote = http_client.call(few.http_port, "POST", f"/v2/{PARENT}/userEvents:write",
                                 {"eventType": "home-page-view", "visitorId": "room"})
        assert wrote.status == 200
    finally:
        for conn in opened:
            conn.close()
        few.stop()


def test_watches_opened_at_once_over_http_keep_to_their_share(settings: Settings,
                                                              clock: Any) -> None:
    # The share is taken before a stream opens (which awaits the store): opens made at
    # the same moment must not all pass the check.
    few = start(dataclasses.replace(settings, http_max_connections=8), clock)
    watch = f"/console/v1/{PARENT}/userEvents:watch"
    conns = [http.client.HTTPConnection("127.0.0.1", few.http_port, timeout=10)
             for _ in range(8)]
    try:
        barrier = threading.Barrier(len(conns))

        def open_one(n: int) -> int:
            barrier.wait()
            conns[n].request("GET", watch.replace("projects/p/", f"projects/p{n}/"))
            return conns[n].getresponse().status

        with concurrent.futures.ThreadPoolExecutor(len(conns)) as pool:
            statuses = sorted(pool.map(open_one, range(len(conns))))
        assert statuses == [200] * 4 + [429] * 4
    finally:
        for conn in conns:
            conn.close()
        few.stop()


def test_one_project_cannot_take_every_http_stream(settings: Settings, clock: Any) -> None:
    # Its share of the HTTP streams is as --max-watches-per-project is of --max-watches
    # (half): one project's reader key held all 500 of 500, and the console live feeds of
    # every other project were refused.
    few = start(dataclasses.replace(settings, http_max_connections=8), clock)
    watch = f"/console/v1/{PARENT}/userEvents:watch"
    opened = [http.client.HTTPConnection("127.0.0.1", few.http_port, timeout=10)
              for _ in range(2)]
    try:
        for conn in opened:  # half of the 4 streams there may be
            conn.request("GET", watch)
            assert conn.getresponse().status == 200
        refused = http_client.call(few.http_port, "GET", watch)
        assert refused.status == 429 and b"--max-watches-per-project" in refused.body
        other = http.client.HTTPConnection("127.0.0.1", few.http_port, timeout=10)
        opened.append(other)
        other.request("GET", watch.replace("projects/p/", "projects/another/"))
        assert other.getresponse().status == 200
    finally:
        for conn in opened:
            conn.close()
        few.stop()


# A product every event of visited() names, its id longer than any session's.
HELD = "a-product-every-event-names"


def visited(count: int) -> list[EventRow]:
    """`count` events, each of a session of its own named session-N, each naming the
    product HELD."""
    return [EventRow.from_event(PARENT, event(visitorId=f"v{n}", sessionId=f"session-{n}",
                                              productDetails=[{"product": {"id": HELD}}]),
                                joined=True) for n in range(count)]


def test_a_filter_no_index_seeks_reads_windows_of_the_time_order_within_a_budget(
        running: Running, console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # An event type that only the oldest of 26 events has: the first page read the
    # whole catalog in one statement to find it (at 300k events, 0.6 s of a pool
    # thread a call). Then a call looked at one window of SCAN_LIMIT events, and
    # came back empty with a token (600 empty pages for an event among the oldest of
    # 3M). Now a call reads windows until its page fills: at least MIN_WINDOWS (each
    # at least SCAN_LIMIT wide), then for LIST_SECONDS, and its token goes on.
    monkeypatch.setattr(queries, "SCAN_LIMIT", 10)
    running.store.write_user_events([EventRow.from_event(
        PARENT, event(eventType="rare" if n == 0 else "home-page-view", visitorId=f"v{n}",
                      eventTime=f"2026-01-01T00:00:{n:02d}Z"), joined=True)
        for n in range(26)])

    def pages(text: str, size: int) -> list[list[str]]:
        pages, token = [], ""
        while True:
            answer = console.ListUserEvents(console_pb2.ListUserEventsRequest(
                parent=PARENT, filter=text, page_size=size, page_token=token))
            pages.append(visitors(answer))
            if not (token := answer.next_page_token):
                return pages

    assert pages('eventType = "rare"', 5) == [["v0"]]
    assert [len(page) for page in pages('eventType = "home-page-view"', 50)] == [25]
    # (one window a call at most: the call's reads stay bounded, its token goes on)
    monkeypatch.setattr(queries, "MIN_WINDOWS", 1)
    monkeypatch.setattr(queries, "LIST_SECONDS", 0.0)
    assert pages('eventType = "rare"', 5) == [[], [], ["v0"]]


def test_a_call_stops_within_a_window_once_its_budget_is_spent(
        running: Running, console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A window is as wide as the last one's pace says fits (up to 320,000 events), or
    # wider: it holds every event of its last microsecond. Its events were all read
    # before the budget was looked at, and each holding the field sought (a product
    # every event names, beside a session none has) is decoded: one call of a
    # reader key read and decoded 250 here, one window, where its budget (none)
    # allowed a batch. It stops within the window, its token on from the last read.
    monkeypatch.setattr(queries, "SCAN_LIMIT", 10)
    monkeypatch.setattr(queries, "MIN_WINDOWS", 1)
    monkeypatch.setattr(queries, "LIST_SECONDS", 0.0)
    rows = visited(250)  # (all of one event time: one window)
    rows[60] = EventRow.from_event(PARENT, event(
        visitorId="found", sessionId="session-", productDetails=[{"product": {"id": HELD}}]),
        joined=True)
    running.store.write_user_events(rows)
    decoded = 0
    selected = queries._selected_products

    def counted(*args: Any) -> Any:
        nonlocal decoded
        decoded += 1
        return selected(*args)

    monkeypatch.setattr(queries, "_selected_products", counted)
    pages, token, most = [], "", 0
    while True:
        decoded = 0
        answer = console.ListUserEvents(console_pb2.ListUserEventsRequest(
            parent=PARENT, filter=NO_SESSION,
            page_size=50, page_token=token))
        most = max(most, decoded)
        pages.append(visitors(answer))
        if not (token := answer.next_page_token):
            break
    assert [v for page in pages for v in page] == ["found"]
    assert most <= 100  # (a batch: the window's reads are of 100 events)
    assert len(pages) >= 3


def test_an_empty_session_or_product_id_is_the_value_as_for_every_field(
        running: Running, console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty value is the value "", as `userId = ""` selects the events with no
    user id: `sessionId = ""` those of no session (read window by window, as any
    sessionId), `productId = ""` none, known before any event is read
    (every product an event names has an id), as `visitorId = ""` selects none: it
    read and decoded every event of the catalog to find none (300,000: 8.9 s of CPU
    for a count, and a list walked them 5,000 a call)."""
    monkeypatch.setattr(queries, "SCAN_LIMIT", 10)
    running.store.write_user_events([EventRow.from_event(PARENT, event(
        visitorId=f"v{n}", eventTime=f"2026-01-01T00:00:{n:02d}Z", productDetails=[
            {"product": {"id": f"p{n}"}}], **({"sessionId": f"s{n}"} if n % 2 else {})),
        joined=True) for n in range(25)])

    def listed(text: str) -> list[list[str]]:
        pages, token = [], ""
        while True:
            answer = console.ListUserEvents(console_pb2.ListUserEventsRequest(
                parent=PARENT, filter=text, page_size=50, page_token=token))
            pages.append(visitors(answer))
            if not (token := answer.next_page_token):
                return pages

    def count(text: str) -> int:
        return int(console.CountUserEvents(console_pb2.CountUserEventsRequest(
            parent=PARENT, filter=text)).count)

    unsessioned = [f"v{n}" for n in range(24, -1, -2)]  # (newest first)
    assert listed('sessionId = ""') == [unsessioned]  # (25 events: within MIN_WINDOWS)
    assert count('sessionId = ""') == 13
    assert count('userId = ""') == 25 and count('visitorId = ""') == 0
    reads = 0
    read = running.store.user_events_newest

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return read(*args, **kwargs)

    monkeypatch.setattr(running.store, "user_events_newest", counted)
    assert listed('productId = ""') == [[]]
    assert count('productId = ""') == 0
    assert listed('productId = "" AND sessionId = "s1"') == [[]]
    assert reads == 0


class SlowReads:
    """The running server's store, its reads of newest events counted and slowed."""

    def __init__(self, running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        self.longest_gap = 0.0  # between the starts of two reads, as the machine runs now
        self._last: float | None = None
        self._running = running
        read = running.store.user_events_newest

        def slow(*args: Any, **kwargs: Any) -> Any:
            now = time.monotonic()
            if self._last is not None:
                self.longest_gap = max(self.longest_gap, now - self._last)
            self._last = now
            self.reads += 1
            time.sleep(0.02)
            return read(*args, **kwargs)

        monkeypatch.setattr(running.store, "user_events_newest", slow)
        monkeypatch.setattr(queries, "SCAN_LIMIT", 10)  # a count reads 10 events a time

    def settled(self) -> int:
        """The count of reads once they stop: none for three times the longest gap
        seen between two (a loaded machine's gaps are longer); fails if they go on
        for 30 s."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            before = self.reads
            time.sleep(max(0.1, 3 * self.longest_gap))
            if self.reads == before:
                return before
        pytest.fail(f"reads go on: {self.reads}")

    def once_ended(self) -> int:
        """The count of reads once /metrics counts the count as ended: its reading
        was told to stop then (within 30 s)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counted = self.reads
            if counts_of_count(self._running):
                return counted
            time.sleep(0.01)
        pytest.fail("the count never ended")


def counts_of_count(running: Running) -> list[str]:
    """The lines of footfall_requests_total for CountUserEvents in /metrics."""
    metrics = http_client.call(running.http_port, "GET", "/metrics").body.decode()
    return [line for line in metrics.splitlines() if line.startswith("footfall_requests_total")
            and "CountUserEvents" in line]


# A session no event has, beside a product every event of visited() names, whose
# field (the longer, the one sought in the stored bytes) every event holds: each is
# read and decoded.
NO_SESSION = f'productId = "{HELD}" AND sessionId = "session-"'
COUNT_SESSION = (f"/console/v1/{PARENT}/userEvents:count?filter="
                 + urllib.parse.quote(NO_SESSION))
# The reads a count by NO_SESSION makes of visited(EVENTS) (SCAN_LIMIT 10): 2 s or more.
EVENTS = 1_000
READS = EVENTS // 10
# What a count told to stop reads after that: the read under way, which ends first.
READ_UNDER_WAY = 1


def test_a_long_read_past_its_deadline_stops_and_is_recorded_so(
        running: Running, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch) -> None:
    # A count by session reads every event: 1,000 events, 10 a read, 20 ms a read
    # (2 s in all). Past its X-Server-Timeout it is answered 504, stops reading
    # (told to as it is answered: a read under way ends), and is counted in /metrics as
    # what it answered, not OK once it ends.
    running.store.write_user_events(visited(EVENTS))
    reads = SlowReads(running, monkeypatch)
    reply = http_client.call(running.http_port, "GET", COUNT_SESSION,
                             headers={"X-Server-Timeout": "0.2"})
    answered = reads.reads
    assert reply.status == 504
    assert reads.settled() <= answered + READ_UNDER_WAY < READS
    counted = counts_of_count(running)
    assert len(counted) == 1 and 'code="DEADLINE_EXCEEDED"' in counted[0], counted


def test_a_long_read_whose_caller_went_stops(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    running.store.write_user_events(visited(EVENTS))
    reads = SlowReads(running, monkeypatch)
    with socket.create_connection(("127.0.0.1", running.http_port)) as sock:
        sock.sendall(f"GET {COUNT_SESSION} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        deadline = time.monotonic() + 30
        while reads.reads < 3:
            assert time.monotonic() < deadline, "the count did not start"
            time.sleep(0.01)
    ended = reads.once_ended()  # (however long a loaded machine took to see it go)
    assert reads.settled() <= ended + READ_UNDER_WAY < READS


def test_a_long_read_past_its_grpc_deadline_stops(
        running: Running, console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    running.store.write_user_events(visited(EVENTS))
    reads = SlowReads(running, monkeypatch)
    with pytest.raises(grpc.RpcError) as ended:
        console.CountUserEvents(console_pb2.CountUserEventsRequest(
            parent=PARENT, filter=NO_SESSION), timeout=0.2)
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    ended = reads.once_ended()  # (the client's deadline passed on its clock, the server's
    assert reads.settled() <= ended + READ_UNDER_WAY < READS  # own stops the read)


def test_a_large_page_is_the_same_over_both_transports(running: Running, channel: grpc.Channel,
                                                        console: Any) -> None:
    # (a page past LARGE_ANSWER_BYTES is serialized where it is made, and sent as
    # those bytes over gRPC, and written as JSON from them over REST)
    for i in range(2):
        write(channel, visitorId=f"large{i}", eventType="category-page-view",
              pageCategories=["c" * 20] * 4_000, eventTime=f"2024-01-01T00:00:0{i}Z")
    page = console.ListUserEvents(console_pb2.ListUserEventsRequest(parent=PARENT))
    assert visitors(page) == ["large1", "large0"] and page.ByteSize() > 128 * 1024
    reply = http_client.call(running.http_port, "GET", f"/console/v1/{PARENT}/userEvents")
    assert reply.status == 200
    assert reply.json() == json_format.MessageToDict(page)
