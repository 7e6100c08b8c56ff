"""Pages of other sites against the REST routes with auth off: what a browser
sends without asking first (a text/plain or form POST) changes nothing, an
Origin --cors-origins does not allow is refused, and a loopback listener answers
only loopback Host names (DNS rebinding). The pixel stays open."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from footfall.retail.v2 import user_event_pb2

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.store import EventQuery

from .http_client import Reply, call, query_value

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
WRITE = f"/v2/{CATALOG}/userEvents:write"
PURGE = f"/v2/{CATALOG}/userEvents:purge"
COLLECT = f"/v2/{CATALOG}/userEvents:collect"
EVIL = "https://evil.example"
SHOP = "https://shop.example"
PURGE_ALL = json.dumps({"filter": 'eventType = "home-page-view"', "force": True}).encode()


@pytest.fixture
def closed(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    """A loopback server with --cors-origins "" (no other site's pages)."""
    running = start(dataclasses.replace(settings, http_port=-1, cors_origins=()), clock)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def shop(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    """--cors-origins https://shop.example, and a proxy's name allowed."""
    running = start(dataclasses.replace(settings, http_port=-1, cors_origins=(SHOP + "/",),
                                        http_allowed_hosts=("events.shop.example",)), clock)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def default(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    """The default --cors-origins `*`."""
    assert Settings().cors_origins == ("*",)
    running = start(dataclasses.replace(settings, http_port=-1), clock)
    try:
        yield running
    finally:
        running.stop()


def visitors(running: Running) -> list[str]:
    running.store.flush()  # a pixel is answered before its commit
    rows = running.store.list_user_events(EventQuery(CATALOG), 100, 0)
    return sorted(user_event_pb2.UserEvent.FromString(p).visitor_id for _, p in rows)


def write(running: Running, visitor: str, **headers: str) -> Reply:
    return call(running.http_port, "POST", WRITE,
                {"eventType": "home-page-view", "visitorId": visitor}, headers)


def event_json(visitor: str) -> bytes:
    return json.dumps({"eventType": "home-page-view", "visitorId": visitor}).encode()


def no_operations(running: Running) -> bool:
    return call(running.http_port, "GET", f"/v2/{CATALOG}/operations").json() == {}


# -- what a page of another site can send without a preflight ---------------------------


@pytest.mark.parametrize("origin", [EVIL, None])
def test_a_text_plain_purge_is_refused_and_deletes_nothing(closed: Running,
                                                          origin: str | None) -> None:
    assert write(closed, "kept").status == 200
    headers = {"Content-Type": "text/plain;charset=UTF-8"} | ({"Origin": origin} if origin
                                                             else {})
    reply = call(closed.http_port, "POST", PURGE, PURGE_ALL, headers)
    if origin:  # a browser says where the page is from: refused for that
        assert reply.status == 403 and reply.error()["status"] == "PERMISSION_DENIED"
        assert "Origin 'https://evil.example'" in reply.error()["message"]
    else:  # and without it, for the body that is not declared JSON
        assert reply.status == 415 and reply.error()["status"] == "INVALID_ARGUMENT"
        assert "text/plain" in reply.violations()["Content-Type"]
    assert "Access-Control-Allow-Origin" not in reply.headers
    assert visitors(closed) == ["kept"] and no_operations(closed)


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", None])
def test_a_form_write_is_refused_and_stores_nothing(closed: Running,
                                                    content_type: str | None) -> None:
    # What an HTML form can post: a field whose name and value spell the JSON.
    body = event_json("form")[:-2] + b'", "x": "=y"}' if content_type != \
        "application/x-www-form-urlencoded" else urlencode({'{"a": "': "b"}).encode()
    headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
    reply = call(closed.http_port, "POST", WRITE, body, headers)
    assert reply.status == 415, reply.body
    assert set(reply.violations()) == {"Content-Type"}
    hinted = "(curl -d sends that: add -H 'Content-Type: application/json')"
    assert (hinted in reply.error()["message"]) == (
        content_type == "application/x-www-form-urlencoded"), reply.error()
    assert visitors(closed) == []


def test_a_foreign_origin_is_refused_even_with_json(closed: Running) -> None:
    reply = write(closed, "evil", Origin=EVIL)
    assert reply.status == 403 and "--cors-origins" in reply.error()["message"]
    assert write(closed, "null", Origin="null").status == 403  # sandboxed frames, files
    assert visitors(closed) == []


def test_a_delete_from_a_foreign_origin_is_refused(closed: Running) -> None:
    name = f"{CATALOG}/operations/none"
    reply = call(closed.http_port, "DELETE", f"/v2/{name}", headers={"Origin": EVIL})
    assert reply.status == 403
    # Without a body a DELETE needs no Content-Type: it gets to the servicer.
    assert call(closed.http_port, "DELETE", f"/v2/{name}").status == 404


# -- what is allowed --------------------------------------------------------------------


def test_an_allowed_origin_and_the_servers_own_pass(shop: Running) -> None:
    allowed = write(shop, "shop", Origin=SHOP)
    assert allowed.status == 200, allowed.body
    assert allowed.headers["Access-Control-Allow-Origin"] == SHOP
    own = write(shop, "own", Origin=f"http://127.0.0.1:{shop.http_port}")
    assert own.status == 200, own.body
    assert write(shop, "evil", Origin=EVIL).status == 403
    assert write(shop, "plain", **{"Content-Type": "application/json; charset=utf-8"}).status \
        == 200
    assert visitors(shop) == ["own", "plain", "shop"]


def test_a_purge_from_an_allowed_origin_runs(shop: Running) -> None:
    assert write(shop, "gone").status == 200
    reply = call(shop.http_port, "POST", PURGE, PURGE_ALL,
                 {"Origin": SHOP, "Content-Type": "application/json"})
    assert reply.status == 200 and reply.json()["name"].startswith(f"{CATALOG}/operations/")


def test_star_lets_every_page_record_events_and_nothing_else(default: Running) -> None:
    recorded = write(default, "from-a-shop-page", Origin=EVIL)
    assert recorded.status == 200, recorded.body
    assert recorded.headers["Access-Control-Allow-Origin"] == "*"
    asked = call(default.http_port, "OPTIONS", WRITE, None, {
        "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "POST" in asked.headers["Access-Control-Allow-Methods"]

    # A page of any site that the developer opens must not wipe or read a local server.
    purge = call(default.http_port, "POST", PURGE, PURGE_ALL,
                 {"Origin": EVIL, "Content-Type": "application/json"})
    assert purge.status == 403 and "--cors-origins" in purge.json()["error"]["message"]
    reset = call(default.http_port, "POST", f"/console/v1/{CATALOG}:reset", {},
                 {"Origin": EVIL})
    assert reset.status == 403
    asked = call(default.http_port, "OPTIONS", PURGE, None, {
        "Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Methods" not in asked.headers
    assert "Access-Control-Allow-Origin" not in asked.headers
    # (a read too: refused before it runs, not run and hidden from the page by the
    # browser for want of a CORS header)
    listed = call(default.http_port, "GET", f"/console/v1/{CATALOG}/userEvents", None,
                  {"Origin": EVIL})
    assert listed.status == 403 and "--cors-origins" in listed.error()["message"]
    assert "Access-Control-Allow-Origin" not in listed.headers
    assert visitors(default) == ["from-a-shop-page"]
    # The console, the server's own page, goes on working.
    own = call(default.http_port, "GET", f"/console/v1/{CATALOG}/userEvents", None,
               {"Origin": f"http://127.0.0.1:{default.http_port}"})
    assert own.status == 200 and own.json()["userEvents"]


def test_the_pixel_stays_open_to_every_page(closed: Running) -> None:
    event = {"eventType": "home-page-view", "visitorId": "get"}
    got = call(closed.http_port, "GET", f"{COLLECT}?user_event={query_value(event)}",
               headers={"Origin": EVIL, "Referer": f"{EVIL}/page"})
    assert got.status == 200 and "X-Footfall-Error" not in got.headers
    # POST collect (Google's form for long events) as navigator.sendBeacon sends it:
    body = json.dumps({"userEvent": json.dumps({"eventType": "home-page-view",
                                                "visitorId": "beacon"})}).encode()
    posted = call(closed.http_port, "POST", COLLECT, body,
                  {"Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8"})
    assert posted.status == 200, posted.body
    form = call(closed.http_port, "POST", COLLECT, body,
                {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415
    assert visitors(closed) == ["beacon", "get"]



@pytest.mark.parametrize("servers", ["default", "shop"])
def test_the_tracker_says_its_cors_headers_depend_on_the_origin(
        servers: str, request: pytest.FixtureRequest) -> None:
    """/footfall.js may be kept by a shared cache (public, max-age=300), and its CORS
    headers depend on the page's Origin: without `Vary: Origin`, a copy kept for a
    page's plain <script> (no Origin, no CORS header) was served to a page loading it
    with `crossorigin` (Subresource Integrity) or as a module, which the browser
    refuses; or a copy kept for one origin's page to another's."""
    running: Running = request.getfixturevalue(servers)
    for origin in (None, SHOP, EVIL):
        reply = call(running.http_port, "GET", "/footfall.js", None,
                     {"Origin": origin} if origin else {})
        assert reply.status == 200 and "public" in reply.headers["Cache-Control"]
        assert "origin" in reply.headers.get("Vary", "").lower(), (origin, reply.headers)
    allowed = call(running.http_port, "GET", "/footfall.js", None, {"Origin": SHOP})
    assert allowed.headers["Access-Control-Allow-Origin"] in (SHOP, "*")


# -- Host (DNS rebinding) ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "[::2]:80", "10.0.0.1", ""])
def test_a_foreign_host_is_refused_on_a_loopback_listener(closed: Running, host: str) -> None:
    for method, path, body in (("POST", WRITE, event_json("rebound")),
                               ("GET", f"/v2/{CATALOG}/operations", None),
                               ("GET", "/metrics", None), ("OPTIONS", WRITE, None)):
        reply = call(closed.http_port, method, path, body, {"Host": host})
        assert reply.status == 421, (method, path, reply.body)
        assert reply.error()["status"] == "PERMISSION_DENIED"
        assert "DNS rebinding" in reply.error()["message"]
    assert visitors(closed) == []


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8080", "app.localhost:1",
                                  "localhost.", "127.0.0.1", "127.1.2.3:8080", "[::1]",
                                  "[::1]:8080"])
def test_loopback_hosts_are_answered(closed: Running, host: str) -> None:
    reply = write(closed, "here", Host=host)
    assert reply.status == 200, reply.body


def test_allowed_hosts_are_answered(shop: Running) -> None:
    assert write(shop, "proxied", Host="events.shop.example:443").status == 200
    assert write(shop, "other", Host="other.shop.example").status == 421


def test_a_request_without_host_is_answered(closed: Running) -> None:
    """HTTP/1.0 has no Host, and no browser sends such a request."""
    with socket.create_connection(("127.0.0.1", closed.http_port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 200 ")


def _raw(running: Running, head: bytes) -> bytes:
    """The answer to a request head sent as it is, read until the server closes."""
    with socket.create_connection(("127.0.0.1", running.http_port), timeout=10) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("target", ["http://evil.example", "http://evil.example:8080",
                                    "https://EVIL.example", "http://127.0.0.1.evil.example",
                                    "http://user@evil.example", "http://[::2]"])
def test_an_absolute_target_must_name_this_server_whatever_host_says(closed: Running,
                                                                     target: str) -> None:
    # The request line of a request sent to a proxy: RFC 9112 section 3.2.2 has the
    # target's authority stand for the server, and the Host header ignored.
    pixel = f"{COLLECT}?userEvent={query_value({'eventType': 'home-page-view', 'visitorId': 'x'})}"
    authority = target.partition("://")[2].removeprefix("user@").lower()
    for method, path in (("GET", f"/v2/{CATALOG}/operations"), ("GET", "/metrics"),
                         ("OPTIONS", WRITE), ("GET", pixel)):
        answer = _raw(closed, f"{method} {target}{path} HTTP/1.1\r\n"
                              f"Host: 127.0.0.1:{closed.http_port}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 421 "), (method, path, answer[:300])
        assert f"the request target's authority {authority!r}" in answer.decode().lower()
    assert visitors(closed) == []


@pytest.mark.parametrize("target", ["http://localhost", "http://127.0.0.1:{port}",
                                    "HTTP://[::1]:{port}"])
def test_an_absolute_target_naming_this_server_is_answered(closed: Running,
                                                          target: str) -> None:
    target = target.format(port=closed.http_port)
    answer = _raw(closed, f"GET {target}/metrics HTTP/1.1\r\nHost: evil.example\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


def _head(running: Running, path: str) -> dict[str, str]:
    """The headers of a GET of `path`, its body left unread (a watch never ends)."""
    connection = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()


def _answers(running: Running) -> dict[str, Reply]:
    """An answer of each kind with a body, on each way one is written."""
    event = query_value({"eventType": "home-page-view", "visitorId": "x"})
    return {
        "a JSON answer": write(running, "v"),
        "a JSON refusal": write(running, ""),
        "no route": call(running.http_port, "GET", "/v2/nothing"),
        "a form POST": call(running.http_port, "POST", WRITE, b"a=1",
                            {"Content-Type": "application/x-www-form-urlencoded"}),
        "a pixel": call(running.http_port, "GET", f"{COLLECT}?userEvent={event}"),
        "a refused pixel": call(running.http_port, "GET", f"{COLLECT}?userEvent=%7B%7D"),
        "a pixel of no catalog": call(running.http_port, "GET",
                                      "/v2/projects/p/userEvents:collect?userEvent=%7B%7D"),
        "/metrics": call(running.http_port, "GET", "/metrics"),
        "/healthz": call(running.http_port, "GET", "/healthz"),
        "/footfall.js": call(running.http_port, "GET", "/footfall.js"),
        "the console": call(running.http_port, "GET", "/console/"),
    }


# Requests written by the connection, with no request aiohttp read (or one it could not)
UNREAD = (b"GET /healthz HTTP/0.9\r\n",
          b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n"
          b"Content-Length: 2\r\n")


def test_every_answer_with_a_body_says_nosniff(default: Running) -> None:
    # The console's CSP allows this origin's scripts: without nosniff Chromium ran a
    # <script src> of a JSON answer, of /metrics and of /healthz (tests/browser's
    # test_answers_as_scripts).
    for what, reply in _answers(default).items():
        assert reply.body, what
        assert reply.headers.get("X-Content-Type-Options") == "nosniff", (what, reply.status)
    watch = _head(default, "/console/v1/projects/-/rejections:watch")
    assert watch["content-type"] == "text/event-stream", watch
    assert watch.get("x-content-type-options") == "nosniff", watch
    for head in UNREAD:
        answer = _raw(default, head)
        assert b"\r\nX-Content-Type-Options: nosniff\r\n" in answer.partition(b"\r\n\r\n")[0], \
            answer[:400]


def test_no_answer_says_which_versions_serve_it(default: Running) -> None:
    # aiohttp said "Server: Python/3.11 aiohttp/3.14.5" on every answer, to anyone
    port = default.http_port
    replies = {**_answers(default),
               "a redirect": call(port, "GET", "/"),
               "a console file not changed": call(port, "GET", "/console/app.js", headers={
                   "If-None-Match": call(port, "GET", "/console/app.js").headers["ETag"]}),
               "a preflight": call(port, "OPTIONS", WRITE, headers={
                   "Origin": SHOP, "Access-Control-Request-Method": "POST"})}
    assert replies["a console file not changed"].status == 304
    for what, reply in replies.items():
        assert reply.headers.get_all("Server") == ["Footfall"], (what, reply.headers)
    watch = _head(default, "/console/v1/projects/-/rejections:watch")
    assert watch.get("server") == "Footfall", watch
    for head in UNREAD:
        answer = _raw(default, head).partition(b"\r\n\r\n")[0]
        assert b"aiohttp" not in answer and b"Python" not in answer, answer


# -- Fetch Metadata (embedding) -------------------------------------------------------

READ = f"/console/v1/{CATALOG}/userEvents"


@pytest.mark.parametrize(("site", "mode", "dest"), [
    ("cross-site", "navigate", "iframe"), ("cross-site", "no-cors", "image"),
    ("cross-site", "no-cors", "script"), ("cross-site", "no-cors", "empty"),
    ("same-site", "navigate", "frame"), ("cross-site", "no-cors", "object")])
def test_a_read_another_sites_page_embeds_is_refused(default: Running, site: str, mode: str,
                                                     dest: str) -> None:
    reply = call(default.http_port, "GET", READ, None, {
        "Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode, "Sec-Fetch-Dest": dest})
    assert reply.status == 403, reply.body
    message = reply.error()["message"]
    assert message.startswith("a page of another site may not embed GET /console/v1/"), message
    assert f"Sec-Fetch-Dest {dest!r}" in message and "only the pixel is open" in message


NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
PAGE = "http://a.localhost:8000/"  # another site's page (its origin, as Referer)


@pytest.mark.parametrize(("site", "more"), [
    # as Chromium 156 sends them: Sec-Fetch-Site none, the page's origin as Referer
    ("none", {"Sec-Purpose": "prefetch", "Referer": PAGE}),  # speculation rules
    ("none", {"Sec-Purpose": "prefetch;prerender", "Referer": PAGE}),
    ("none", {"Sec-Purpose": "prefetch"}),  # its rules' "referrer_policy": "no-referrer"
    ("cross-site", {"Sec-Purpose": "prefetch"}),  # as Fetch Metadata would have it
    ("same-site", {"Sec-Purpose": "prefetch;prerender"}),
    ("cross-site", {"Sec-Purpose": "prefetch;anonymous-client-ip"}),  # through a proxy
    ("cross-site", {"Purpose": "prefetch"}),  # the older name
])
def test_a_read_another_sites_page_has_prefetched_is_refused(
        default: Running, site: str, more: dict[str, str]) -> None:
    """A prefetch or prerender says it is a top-level navigation, and was answered as
    a link followed: a page of another site had the server read, or hold a watch
    open, for nobody, as an iframe of it did."""
    for path in (READ, "/console/v1/projects/-/rejections:watch"):
        reply = call(default.http_port, "GET", path, None,
                     {"Sec-Fetch-Site": site, **NAVIGATION, **more})
        assert reply.status == 403, reply.body
        message = reply.error()["message"]
        assert message.startswith("only this server's own pages may have the browser "
                                  "prefetch GET /console/v1/"), message
        assert f"Sec-Fetch-Site {site!r}" in message and "Sec-Purpose" in message, message


@pytest.mark.parametrize("headers", [
    # the console's own (Chromium: none, with this server as Referer), same-origin
    {"Sec-Fetch-Site": "none", "Sec-Purpose": "prefetch", "Referer": "http://127.0.0.1:{}/"},
    {"Sec-Fetch-Site": "none", "Sec-Purpose": "prefetch;prerender",
     "Referer": "http://127.0.0.1:{}/console/events?x=1"},
    {"Sec-Fetch-Site": "same-origin", "Sec-Purpose": "prefetch"},
    {"Sec-Fetch-Site": "none"},  # typed in: no prefetch
])
def test_a_read_this_servers_own_page_has_prefetched_is_answered(
        default: Running, headers: dict[str, str]) -> None:
    sent = {name: value.format(default.http_port) for name, value in headers.items()}
    reply = call(default.http_port, "GET", READ, None, {**NAVIGATION, **sent})
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("headers", [
    {},  # no browser
    {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
    {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
    # a link followed from another site's page (its fetch(): the Origin check's, below)
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}])
def test_reads_of_no_embedding_page_are_answered(default: Running,
                                                 headers: dict[str, str]) -> None:
    reply = call(default.http_port, "GET", READ, None, headers)
    assert reply.status == 200, reply.body


def test_the_pixel_may_be_embedded(default: Running) -> None:
    event = query_value({"eventType": "home-page-view", "visitorId": "img"})
    image = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
             "Sec-Fetch-Dest": "image"}
    for path in (f"{COLLECT}?userEvent={event}", f"{COLLECT}?userEvent={event}&$alt=json"):
        reply = call(default.http_port, "GET", path, None, image)
        assert reply.status == 200, reply.body
    assert visitors(default) == ["img", "img"]


# -- Origin of reads (fetch() in cors mode, EventSource) ---------------------------------

COUNT = f"/console/v1/{CATALOG}/userEvents:count"
READS = {  # a read of each kind, by the RPC that would run it
    "ListUserEvents": READ, "CountUserEvents": COUNT,
    "ComputeTotals": f"/insights/v1/{CATALOG}:computeTotals",
    "ListOperations": f"/v2/{CATALOG}/operations",
    "ListProducts": f"/v2/{CATALOG}/branches/0/products",
    "WatchRejections": "/console/v1/projects/-/rejections:watch"}
CORS_FETCH = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}


def answered(running: Running, rpc: str) -> list[str]:
    """The lines of /metrics that count calls of `rpc` answered OK."""
    page = call(running.http_port, "GET", "/metrics").body.decode()
    return [line for line in page.splitlines() if line.startswith("footfall_requests_total")
            and f'method="{rpc}"' in line and 'code="OK"' in line]


@pytest.mark.parametrize("servers", ["default", "closed", "shop"])
@pytest.mark.parametrize(("origin", "sent"), [
    (EVIL, {"Sec-Fetch-Site": "cross-site", **CORS_FETCH}),  # fetch(), EventSource
    ("http://a.localhost:8000", {"Sec-Fetch-Site": "same-site", **CORS_FETCH}),
    ("null", {"Sec-Fetch-Site": "cross-site", **CORS_FETCH}),  # a sandboxed frame, a file
    (EVIL, {}),  # a browser that sends no Fetch Metadata: its Origin alone
])
def test_a_read_a_page_of_an_origin_not_allowed_fetches_is_refused_before_it_runs(
        servers: str, origin: str, sent: dict[str, str], request: pytest.FixtureRequest) -> None:
    """The browser keeps the answer from a page whose origin --cors-origins does not
    allow (no CORS header), but the server ran the read first: a count over every
    event, an insights query, a watch, for any page a developer opens while a local
    server runs with auth off. `*` lets every page record events, and only that."""
    running: Running = request.getfixturevalue(servers)
    for rpc, path in READS.items():
        for method in ("GET", "HEAD"):
            reply = call(running.http_port, method, path, None, {"Origin": origin, **sent})
            assert reply.status == 403, (method, path, reply.body)
            assert "Access-Control-Allow-Origin" not in reply.headers
        message = call(running.http_port, "GET", path, None,
                       {"Origin": origin, **sent}).error()["message"]
        assert message.startswith(f"Origin {origin!r} may not call GET /"), message
        assert "--cors-origins does not allow it" in message, message
        assert ("list the origin by name" in message) == (servers == "default"), message
        assert answered(running, rpc) == [], rpc


def test_reads_of_allowed_origins_their_own_and_links_followed_are_answered(
        shop: Running) -> None:
    port = shop.http_port
    for rpc, path in READS.items():
        if rpc == "WatchRejections":  # (answered, never ending: its head is enough)
            continue
        for origin, site in ((SHOP, "cross-site"), (f"http://127.0.0.1:{port}", "same-origin")):
            reply = call(port, "GET", path, None,
                         {"Origin": origin, "Sec-Fetch-Site": site, **CORS_FETCH})
            assert reply.status == 200, (origin, path, reply.body)
        assert reply.headers.get("Access-Control-Allow-Origin") is None  # its own page
        assert call(port, "GET", path, None, {"Origin": SHOP}).headers[
            "Access-Control-Allow-Origin"] == SHOP
        # a link of another site's page followed (a browser sends no Origin with it)
        followed = call(port, "GET", path, None, {"Origin": EVIL, "Sec-Fetch-Site": "cross-site",
                                                  **NAVIGATION})
        assert followed.status == 200, (path, followed.body)
    # the pixel, fetched by any page
    event = query_value({"eventType": "home-page-view", "visitorId": "fetched"})
    pixel = call(port, "GET", f"{COLLECT}?userEvent={event}&$alt=json", None,
                 {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", **CORS_FETCH})
    assert pixel.status == 200, pixel.body
    assert visitors(shop) == ["fetched"]
