"""A browser's pixel is answered once its event is valid and queued, not after
its commit (the GIF tells the browser nothing either way): while the writer is
held, pixels are answered and /metrics counts them as acknowledged but not
committed. With --durable-pixels, and for every other caller, the answer waits
for the commit."""

from __future__ import annotations

import dataclasses
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from server import store as store_module
from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.store import EventQuery, sqlite

from .http_client import call

CATALOG = "projects/shop/locations/global/catalogs/default_catalog"
GAUGE = "footfall_events_acknowledged_uncommitted"
HELD = 1.0  # seconds a durable answer is looked for while the writer is held


@pytest.fixture
def serving(settings: Settings, clock: FixedClock) -> Iterator[Any]:
    """`serving(**changes)` starts a server with its HTTP port; stopped at teardown."""
    started: list[Running] = []

    def serve(**changes: Any) -> Running:
        started.append(start(dataclasses.replace(settings, http_port=-1, **changes), clock))
        return started[-1]

    yield serve
    for running in started:
        running.stop()


def pixel_path(visitor: str) -> str:
    event = json.dumps({"eventType": "home-page-view", "visitorId": visitor})
    return f"/v2/{CATALOG}/userEvents:collect?userEvent={quote(event, safe='')}"


def hold_writer(running: Running) -> threading.Event:
    """Keep the store's writer busy (as a long job step would) until the event is set."""
    release = threading.Event()
    running.store._committer.submit_fn(lambda _conn: release.wait(30))  # type: ignore[attr-defined]
    return release


def uncommitted(running: Running) -> float:
    """The gauge of acknowledged events not committed, as /metrics shows it."""
    text = call(running.http_port, "GET", "/metrics").body.decode()
    return next(float(line.split()[1]) for line in text.splitlines()
                if line.startswith(GAUGE + " "))


def stored(running: Running) -> int:
    running.store.flush()
    return running.store.count_user_events(EventQuery(CATALOG))


def test_pixels_are_answered_before_their_commit(serving: Any) -> None:
    running = serving()
    release = hold_writer(running)
    try:
        for i in range(3):
            reply = call(running.http_port, "GET", pixel_path(f"v{i}"))
            assert reply.status == 200 and "X-Footfall-Error" not in reply.headers
        assert uncommitted(running) == 3
    finally:
        release.set()
    assert stored(running) == 3
    assert uncommitted(running) == 0


@pytest.mark.parametrize(("durable_pixels", "extra"), [(True, ""), (False, "&$alt=json")],
                         ids=["--durable-pixels", "$alt=json"])
def test_durable_pixels_and_json_callers_wait_for_the_commit(
        serving: Any, durable_pixels: bool, extra: str) -> None:
    running = serving(durable_pixels=durable_pixels)
    release = hold_writer(running)
    try:
        with pytest.raises(TimeoutError):  # no answer while the commit cannot happen
            with socket.create_connection(("127.0.0.1", running.http_port)) as sock:
                sock.settimeout(HELD)
                sock.sendall(f"GET {pixel_path('v') + extra} HTTP/1.1\r\n"
                             f"Host: 127.0.0.1\r\n\r\n".encode())
                sock.recv(100)
        assert uncommitted(running) == 0
    finally:
        release.set()
    assert stored(running) == 1


@pytest.mark.parametrize(("path", "said"), [
    (f"/console/v1/{CATALOG}/userEvents", '"visitorId": "v"'),
    (f"/console/v1/{CATALOG}/userEvents:count", '"count": "1"'),
    ("/console/v1/projects/shop/catalogs", f'"name": "{CATALOG}"'),
    (f"/insights/v1/{CATALOG}:computeTotals", '"eventType": "home-page-view"'),
], ids=["list", "count", "catalogs", "totals"])
def test_a_read_after_a_pixels_answer_waits_for_its_commit(
        serving: Any, path: str, said: str) -> None:
    # A test suite that sent a pixel and read the events at once did not find it
    # (committed a few milliseconds after its GIF), as it finds a write.
    running = serving()
    release = hold_writer(running)
    with socket.create_connection(("127.0.0.1", running.http_port)) as sock:
        try:
            assert call(running.http_port, "GET", pixel_path("v")).status == 200
            sock.settimeout(HELD)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Connection: close\r\n\r\n".encode())
            with pytest.raises(TimeoutError):  # no answer while the pixel waits
                sock.recv(100)
        finally:
            release.set()
        sock.settimeout(30)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and said in answer.decode(), answer


def test_a_read_waits_for_a_pixels_commit_a_while_only(
        serving: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A store that cannot commit now (a long step, its disk full, its database away)
    # is read as it is: the console is what shows why, and must answer.
    monkeypatch.setattr(store_module, "ANSWERED_WAIT_SECONDS", 0.2)
    running = serving()
    release = hold_writer(running)
    try:
        assert call(running.http_port, "GET", pixel_path("v")).status == 200
        counted = call(running.http_port, "GET", f"/console/v1/{CATALOG}/userEvents:count")
        assert counted.status == 200 and json.loads(counted.body) == {}  # (a count of 0)
        assert uncommitted(running) == 1  # answered while the pixel still waits
    finally:
        release.set()
    assert stored(running) == 1


def test_a_list_of_refusals_waits_for_their_commit_a_while_only(
        serving: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # As a read of events: a refusal just made is listed once committed, but a
    # store that cannot commit now is listed as it is (the list waited for the
    # writer for as long as it was held: a long step, a database away).
    monkeypatch.setattr(store_module, "ANSWERED_WAIT_SECONDS", 0.2)
    running = serving()
    release = hold_writer(running)
    try:
        refused = call(running.http_port, "GET", pixel_path(""))  # no visitorId
        assert refused.status == 200 and "visitor_id" in refused.headers["X-Footfall-Error"]
        started = time.monotonic()
        listed = call(running.http_port, "GET", "/console/v1/projects/shop/rejections")
        assert listed.status == 200 and json.loads(listed.body) == {}  # none stored yet
        assert time.monotonic() - started < HELD
    finally:
        release.set()
    [kept] = kept_rejections(running)
    assert "visitor_id" in kept["message"]


# -- a pixel refused at its commit is kept, not lost --------------------------------------

REFUSED_LATER = "footfall_events_refused_after_answer_total"


def fat_pixel_path(visitor: str) -> str:
    event = json.dumps({"eventType": "detail-page-view", "visitorId": visitor,
                        "productDetails": [{"product": {"id": "fat2"}}]})
    return f"/v2/{CATALOG}/userEvents:collect?userEvent={quote(event, safe='')}"


def kept_rejections(running: Running) -> list[dict[str, Any]]:
    """The console's rejections of the shop, as a reader sees them over REST."""
    running.store.flush()
    reply = call(running.http_port, "GET", "/console/v1/projects/shop/rejections")
    assert reply.status == 200, reply.body
    return list(reply.json().get("rejections", []))


def refused_later(running: Running) -> dict[str, float]:
    text = call(running.http_port, "GET", "/metrics").body.decode()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith(REFUSED_LATER + "{")}


@pytest.mark.parametrize("headers", [{}, {"X-Server-Timeout": "30"}],
                         ids=["inline", "through-the-envelope"])
def test_a_pixel_whose_product_cannot_be_read_is_kept_as_a_refusal(
        serving: Any, settings: Settings, headers: dict[str, str]) -> None:
    """A product row that does not decode (written by hand, or damaged) fails the
    join on the writer, after the pixel's answer: the event is kept as a refusal
    and counted, never dropped unseen."""
    running = serving()
    other = sqlite3.connect(settings.store.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("INSERT INTO products (branch, product_id, product) VALUES (?, ?, ?)",
                  (f"{CATALOG}/branches/0", "fat2", b"\xff\xff\xff"))
    other.close()
    reply = call(running.http_port, "GET", fat_pixel_path("px"), headers=headers)
    assert reply.status == 200 and "X-Footfall-Error" not in reply.headers  # answered first
    assert stored(running) == 0
    [rejection] = kept_rejections(running)
    assert rejection["method"] == "/google.cloud.retail.v2.UserEventService/CollectUserEvent"
    assert (rejection["transport"], rejection["parent"]) == ("PIXEL", CATALOG)
    assert "fat2" in rejection["requestJson"]
    [(metric, count)] = refused_later(running).items()
    assert 'method="CollectUserEvent"' in metric and 'transport="http"' in metric
    assert count == 1.0


@pytest.mark.parametrize(("way", "query"), [("write", ""), ("write", "?writeAsync=true"),
                                            ("pixel", "")], ids=["write", "write_async", "pixel"])
def test_an_event_too_large_once_joined_is_stored_as_received_not_joined(
        serving: Any, way: str, query: str) -> None:
    """Refusing it told a writer key that the product was there, and large."""
    running = serving(max_event_bytes=3000)
    product = {"id": "fat2", "title": "Fat", "categories": ["C"], "description": "d" * 2950}
    made = call(running.http_port, "POST",
                f"/v2/{CATALOG}/branches/0/products?productId=fat2", product)
    assert made.status == 200, made.body
    if way == "pixel":
        reply = call(running.http_port, "GET", fat_pixel_path("px"))
        assert reply.status == 200 and "X-Footfall-Error" not in reply.headers
    else:
        event = {"eventType": "detail-page-view", "visitorId": "px",
                 "productDetails": [{"product": {"id": "fat2"}}]}
        reply = call(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write{query}", event)
        assert reply.status == 200, reply.body
        assert reply.json()["productDetails"] == [{"product": {"id": "fat2"}}]  # as sent
    running.store.flush()
    listed = call(running.http_port, "GET", f"/console/v1/{CATALOG}/userEvents").json()
    [one] = listed["userEvents"]
    assert "joined" not in one and "receivedEvent" not in one
    assert one["userEvent"]["productDetails"] == [{"product": {"id": "fat2"}}]
    assert kept_rejections(running) == [] and refused_later(running) == {}


def test_a_pixel_whose_catalog_cannot_be_read_a_moment_is_stored_once_it_can(
        serving: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """It was refused after its answer (kept as a refusal, the event lost): it waits,
    as events that name no product do, until the database answers again."""
    from server.retail import join
    from server.store.rows import StoreUnavailable

    def away(*_: Any, **__: Any) -> Any:
        raise StoreUnavailable("the database is away")

    running = serving()
    monkeypatch.setattr(join, "load_products", away)
    reply = call(running.http_port, "GET", fat_pixel_path("px"))
    assert reply.status == 200 and "X-Footfall-Error" not in reply.headers
    time.sleep(0.3)  # tries while the catalog cannot be read
    assert stored(running) == 0 and running.store.acknowledged_uncommitted == 1
    monkeypatch.undo()
    deadline = time.monotonic() + 10
    while stored(running) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored(running) == 1 and running.store.acknowledged_uncommitted == 0
    assert kept_rejections(running) == [] and not refused_later(running)


def test_a_pixel_nested_deeper_than_json_is_written_is_refused_not_a_crash(
        serving: Any) -> None:
    """orjson reads 1,024 levels and writes 255: a pixel between the two was INTERNAL."""
    running = serving()
    event = '{"eventType":"home-page-view","visitorId":"v","x":' + "[" * 300 + "]" * 300 + "}"
    reply = call(running.http_port, "GET",
                 f"/v2/{CATALOG}/userEvents:collect?userEvent={quote(event, safe='')}")
    assert reply.status == 200 and reply.body[:6] == b"GIF89a"
    assert "X-Footfall-Error" in reply.headers
    [rejection] = kept_rejections(running)
    assert rejection["code"] == 3 and rejection["fieldViolations"][0]["field"] == "user_event"


def test_pixels_answered_while_another_connection_holds_the_write_lock_are_stored(
        serving: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another connection to the file (the sqlite3 shell, a second server) holding its
    write lock past busy_timeout failed the writer's batch, and the pixels answered
    before it were dropped: not stored, not kept, not counted. They wait, and are
    committed once the lock is let go; so do those that come meanwhile (a browser
    never sends one again: refused, they were kept only as refusals)."""
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 200)
    running = serving()
    other = sqlite3.connect(settings.store.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    sent = 0
    try:
        for i in range(3):
            reply = call(running.http_port, "GET", pixel_path(f"v{i}"))
            assert reply.status == 200 and "X-Footfall-Error" not in reply.headers
            sent += 1
        # the writer's BEGIN gives up after 0.2 s: pixels of the next second meet the lock
        until = time.monotonic() + 1.0
        while time.monotonic() < until:
            reply = call(running.http_port, "GET", pixel_path(f"late-{sent}"))
            assert reply.status == 200 and "X-Footfall-Error" not in reply.headers, \
                reply.headers.get("X-Footfall-Error")
            sent += 1
            time.sleep(0.05)
        assert uncommitted(running) >= 3
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert stored(running) == sent
    assert uncommitted(running) == 0


def test_a_write_refused_for_its_body_keeps_the_body_as_sent(serving: Any) -> None:
    """Kept as its path named it only, the console showed `{"parent": ...}` and marked
    the violation on the `{`: what was sent could not be seen."""
    running = serving()
    write = f"/v2/{CATALOG}/userEvents:write"
    reply = call(running.http_port, "POST", write,
                 {"eventType": "home-page-view", "visitorId": "v1", "unknownField": 1})
    assert reply.status == 400
    reply = call(running.http_port, "POST", write, b"{not json", {"Content-Type":
                                                                   "application/json"})
    assert reply.status == 400
    bad_time = {"eventType": "home-page-view", "visitorId": "v2", "eventTime": "yesterday"}
    assert call(running.http_port, "POST", write, bad_time).status == 400
    kept = kept_rejections(running)
    assert len(kept) == 3, kept
    unknown, = [r for r in kept if "unknownField" in r["message"]]
    assert json.loads(unknown["requestJson"]) == {
        "parent": CATALOG,
        "userEvent": {"eventType": "home-page-view", "visitorId": "v1", "unknownField": 1}}
    timed, = [r for r in kept if '"v2"' in r["requestJson"]]
    assert json.loads(timed["requestJson"])["userEvent"] == bad_time
    [field] = [v["field"] for v in timed["fieldViolations"]]
    assert field == "user_event.event_time"
    garbled, = [r for r in kept if r not in (unknown, timed)]
    assert json.loads(garbled["requestJson"]) == {"parent": CATALOG, "userEvent": "{not json"}


def test_a_body_too_long_to_keep_is_kept_as_its_start_where_it_goes(serving: Any) -> None:
    """A refused body over the few KB a refusal keeps was kept as a JSON string, each of
    its quotes escaped: the console showed `"clientEvent": "{\\"eventId\\": ...`, as if the
    client had sent a text. Its start is kept as it came, in its place, said cut."""
    running = serving()
    tenant = "projects/shop/tenants/t"
    event = {"eventId": "big", "createTime": "2026-12-01T00:00:00Z",
             "jobEvent": {"type": "VIEW", "jobs": [f"{tenant}/jobs/j1"]},
             "eventNotes": "x" * 3_000_000}
    reply = call(running.http_port, "POST", f"/v4/{tenant}/clientEvents", event)
    assert reply.status == 400, reply.body
    whole = {"parent": tenant, "clientEvent": event}  # v4beta1: the body is the request
    reply = call(running.http_port, "POST", f"/v4beta1/{tenant}/clientEvents", whole)
    assert reply.status == 400, reply.body
    kept = kept_rejections(running)
    assert [r["requestTruncated"] for r in kept] == [True, True], kept
    beta, v4 = kept
    assert v4["requestJson"].startswith(
        f'{{"parent":"{tenant}","clientEvent":{{"eventId": "big", "createTime": '), \
        v4["requestJson"][:200]
    assert beta["requestJson"].startswith(
        f'{{"parent": "{tenant}", "clientEvent": {{"eventId": "big", '), beta["requestJson"][:200]
    assert all(len(r["requestJson"]) == 4096 for r in kept), [len(r["requestJson"]) for r in kept]


def test_events_answered_before_their_commit_count_by_their_bytes(serving: Any) -> None:
    """The bound of what waits for its commit is in bytes too (an event may be 2 MiB):
    a pixel and a write_async that name a product (their rows made by the writer) count
    their event's bytes while they wait, not nothing."""
    running = serving()
    padded = {"eventType": "detail-page-view", "productDetails": [{"product": {"id": "p"}}],
              "uri": "https://shop.example.com/" + "p" * 4000}
    release = hold_writer(running)
    try:
        pixel = json.dumps({**padded, "visitorId": "px"})
        reply = call(running.http_port, "GET",
                     f"/v2/{CATALOG}/userEvents:collect?userEvent={quote(pixel, safe='')}")
        assert reply.status == 200 and "X-Footfall-Error" not in reply.headers, \
            reply.headers["X-Footfall-Error"]
        reply = call(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write?writeAsync=true",
                     {**padded, "visitorId": "wa"})
        assert reply.status == 200, reply.body
        committer = running.store._committer  # type: ignore[attr-defined]
        assert running.store.acknowledged_uncommitted == 2
        assert committer.acknowledged_uncommitted_bytes >= 2 * 4000
    finally:
        release.set()
    assert stored(running) == 2
