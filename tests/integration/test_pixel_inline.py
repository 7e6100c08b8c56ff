"""A browser's pixel served inline (server.http.pixel: no task, future or coroutine
of its own) gives exactly what the long way through the envelope gives: the same
answers and headers, the same stored events, the same counts in /metrics, the
same refusals kept for the console, with keys, roles and quotas on or off.

Each case is sent to two servers on the same clock: one as it runs, one whose
gateway takes the long way for every pixel."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.console import origin
from server.store import EventQuery

from .http_client import Reply, call

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
OTHER = "projects/q/locations/global/catalogs/default_catalog"
KEY = "pixel-inline-test-writer-0123456789"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
           "Referer": "https://shop.example/p/1", "X-Forwarded-For": "203.0.113.9"}
# Headers that differ between any two answers.
VARYING = {"Date", "Server"}


def pixel(event: Any, catalog: str = CATALOG, field: str = "userEvent", extra: str = "") -> str:
    text = event if isinstance(event, str) else json.dumps(event)
    return f"/v2/{catalog}/userEvents:collect?{field}={quote(text, safe='')}{extra}"


PRODUCT_VIEW = {"eventType": "detail-page-view", "visitorId": "v1",
                "productDetails": [{"product": {"id": "sku-1"}}]}
HOME = {"eventType": "home-page-view", "visitorId": "v2"}
CASES: list[tuple[str, dict[str, str]]] = [
    (pixel(PRODUCT_VIEW), {}),  # joined on the writer
    (pixel(HOME), BROWSER),  # filled from the browser's request
    (pixel(HOME, field="user_event", extra="&uri=https%3A%2F%2Fshop%2Fx&ets=1700000000000"), {}),
    (pixel(HOME, field="rawJson"), {"Origin": "https://shop.example"}),  # CORS
    (pixel({"eventType": "home-page-view"}), BROWSER),  # refused: no visitor
    (pixel('{"eventType": "home-page-view", "visitorId": "v", "visitorId": "w"}'), {}),
    (pixel("{not json"), {}),
    (pixel(HOME, extra="&nope=1"), {}),  # unknown parameter
    (pixel(HOME, field="rawJson", extra="&prebuiltRule=ga4_bq"), {}),  # a oneof
    (pixel(HOME, catalog="projects/-/locations/global/catalogs/default_catalog"), {}),
    (pixel(HOME, extra="&key=" + KEY), {}),
    (pixel(HOME, catalog=OTHER, extra="&key=" + KEY), {}),  # another project's key
    (pixel(HOME), {"Authorization": "Bearer " + KEY}),
    (pixel(HOME, extra="&key=unknown-key-0123456789"), {}),
    (pixel(PRODUCT_VIEW, extra="&key=" + KEY), {}),  # past the quota, with keys on
]
# Pixels not served inline: a JSON caller, a deadline.
LONG_WAY: list[tuple[str, dict[str, str]]] = [
    (pixel(HOME, extra="&$alt=json"), {}),
    (pixel(HOME), {"X-Server-Timeout": "30"}),
]


@dataclasses.dataclass
class Pair:
    inline: Running
    long: Running
    served_inline: list[str]  # the paths the inline server's gateway served inline


@pytest.fixture
def pair(settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Callable[..., Pair]]:
    """`pair(**changes)`: two servers with the same settings and clock; the second
    takes the long way for every pixel. Stopped at teardown."""
    started: list[Running] = []

    def serve(**changes: Any) -> Pair:
        servers = []
        for name in ("inline", "long"):
            folder = tmp_path / name
            folder.mkdir()
            servers.append(start(dataclasses.replace(
                settings, http_port=-1, store=f"sqlite:///{folder}/events.db", **changes),
                clock))
            started.append(servers[-1])
        inline, long = servers
        served: list[str] = []
        assert inline.http is not None and long.http is not None
        gateway = inline.http
        serve_inline = gateway._pixel

        def counted(request: Any, *args: Any) -> Any:
            served.append(request.path_qs)
            return serve_inline(request, *args)

        gateway._pixel = counted  # type: ignore[method-assign]
        long.http._collect_queued = None  # the long way, as with --durable-pixels
        return Pair(inline, long, served)

    yield serve
    for running in started:
        running.stop()


def answered(reply: Reply) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in reply.headers.items() if k not in VARYING)
    return reply.status, headers, reply.body


def stored(running: Running) -> list[bytes]:
    running.store.flush()
    return [payload for _, payload in running.store.list_user_events(EventQuery(CATALOG), 100)]


def pixels_stored(running: Running) -> int:
    return running.store.count_user_events(EventQuery(CATALOG, transports=(origin.PIXEL,)))


def kept(running: Running) -> list[bytes]:
    running.store.flush()
    return [r.payload for r in running.store.rejections_newest(None, 100)]


def counted_calls(running: Running) -> list[str]:
    text = call(running.http_port, "GET", "/metrics").body.decode()
    return sorted(line for line in text.splitlines()
                  if line.startswith(("footfall_requests_total{",
                                      "footfall_request_duration_seconds_count{")))


def products(running: Running) -> None:
    """sku-1 in the catalog, so that the product view is joined."""
    body = {"title": "Shoe", "categories": ["Shoes"], "id": "sku-1"}
    reply = call(running.http_port, "POST", f"/v2/{CATALOG}/branches/0/products?productId=sku-1",
                 body)
    assert reply.status == 200, reply.body


def compare(pair: Pair, cases: list[tuple[str, dict[str, str]]]) -> None:
    for path, headers in cases:
        inline = call(pair.inline.http_port, "GET", path, headers=headers)
        long = call(pair.long.http_port, "GET", path, headers=headers)
        assert answered(inline) == answered(long), path
        assert (inline.body[:6] == b"GIF89a") is ("$alt=json" not in path), path
    assert stored(pair.inline) == stored(pair.long)
    assert pixels_stored(pair.inline) == pixels_stored(pair.long)
    assert kept(pair.inline) == kept(pair.long)
    assert counted_calls(pair.inline) == counted_calls(pair.long)


def test_inline_pixels_give_what_the_long_way_gives(pair: Callable[..., Pair]) -> None:
    servers = pair()
    for running in (servers.inline, servers.long):
        products(running)
    compare(servers, CASES)
    assert b"Shoe" in stored(servers.inline)[0]  # joined
    # the valid events of CATALOG, each its own: the clock stands still here, but two
    # events the server stamps are never given one time (two writes of equal events
    # were stored once)
    assert len(stored(servers.inline)) == 8
    assert len(kept(servers.inline)) == 6  # no visitor, twice, JSON, nope, rule, parent
    assert len(servers.served_inline) == len(CASES)


def test_inline_pixels_with_keys_roles_and_quotas(pair: Callable[..., Pair],
                                                  tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {KEY: {"projects": ["p"], "role": "writer"}}}))
    servers = pair(auth_file=str(keys), quota_writes_per_minute=2)
    compare(servers, CASES)
    assert len(stored(servers.inline)) == 2  # by query key, by header; then the quota
    assert len(servers.served_inline) == len(CASES)
    refusals = [line for line in counted_calls(servers.inline) if 'code="OK"' not in line]
    assert any('code="UNAUTHENTICATED"' in line for line in refusals)
    assert any('code="PERMISSION_DENIED"' in line for line in refusals)
    assert any('code="RESOURCE_EXHAUSTED"' in line for line in refusals)


def test_json_callers_and_deadlines_take_the_long_way(pair: Callable[..., Pair]) -> None:
    servers = pair()
    compare(servers, LONG_WAY)
    assert servers.served_inline == []
    assert len(stored(servers.inline)) == 2  # the same event twice: two writes, two times


def test_durable_pixels_are_never_served_inline(settings: Settings, clock: FixedClock) -> None:
    running = start(dataclasses.replace(settings, http_port=-1, durable_pixels=True), clock)
    try:
        assert running.http is not None and running.http._collect_queued is None
        reply = call(running.http_port, "GET", pixel(HOME))
        assert reply.status == 200 and "X-Footfall-Error" not in reply.headers
        assert len(stored(running)) == 1
    finally:
        running.stop()


def test_a_time_too_far_ahead_given_as_ets_names_ets(pair: Callable[..., Pair]) -> None:
    # A pixel that sent only `ets` was told of `user_event.event_time`, a field it never
    # set; one whose own eventTime is too far ahead still names that.
    servers = pair()
    far = "&ets=99999999999999"  # (5138)
    for running in (servers.inline, servers.long):
        reply = call(running.http_port, "GET", pixel(HOME, extra=far))
        assert reply.headers["X-Footfall-Error"].startswith(
            "INVALID_ARGUMENT: ets: as the event's time, must be at most a day after the "
            "server's time"), reply.headers["X-Footfall-Error"]
        own = call(running.http_port, "GET", pixel(
            {**HOME, "eventTime": "5138-11-16T09:46:39Z"}, extra=far + "&$alt=json"))
        assert own.status == 400
        [violation] = own.json()["error"]["details"][0]["fieldViolations"]
        assert violation["field"] == "user_event.event_time"
    assert stored(servers.inline) == stored(servers.long) == []
