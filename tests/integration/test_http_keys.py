"""API keys on the HTTP gateway: asked for before the body is read or parsed, as
gRPC asks before it decodes; the pixel's `?key=` counts the same."""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.store import EventQuery, EventRow

from .http_client import Reply, call, query_value

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
WRITE = f"/v2/{CATALOG}/userEvents:write"
KEY = "http-keys-test-writer-0123456789"
READER = "http-keys-test-reader-0123456789"
OTHER = "http-keys-test-other-writer-0123"
ADMIN = "http-keys-test-admin-01234567890"
LIMIT = 64 * 1024  # --max-request-bytes
EVERYTHING = EventQuery(CATALOG)
COLLECT = "/google.cloud.retail.v2.UserEventService/CollectUserEvent"


@pytest.fixture
def keyed(settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Running]:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {KEY: {"projects": ["p"], "role": "writer"},
                                         READER: {"projects": ["p"], "role": "reader"},
                                         OTHER: {"projects": ["p"], "role": "writer"},
                                         ADMIN: {"projects": ["p"], "role": "admin"}}}))
    running = start(dataclasses.replace(settings, http_port=-1, auth_file=str(keys),
                                        max_request_bytes=LIMIT), clock)
    try:
        yield running
    finally:
        running.stop()


def post(running: Running, body: bytes, **headers: str) -> Reply:
    return call(running.http_port, "POST", WRITE, body,
                {"Content-Type": "application/json", **headers})


def test_a_body_without_a_key_is_refused_before_it_is_read_or_parsed(keyed: Running) -> None:
    invalid = b'{"eventType": "home-page-view", "visitorId": '
    huge = b'{"eventType": "home-page-view", "visitorId": "' + b"x" * (3 * LIMIT) + b'"}'
    for body in (invalid, huge):
        reply = post(keyed, body)
        assert reply.status == 401, reply.body[:300]
        assert reply.error()["status"] == "UNAUTHENTICATED"
    # With the key, the bodies are what they are: no JSON, too large.
    assert post(keyed, invalid, **{"x-goog-api-key": KEY}).error()["status"] == \
        "INVALID_ARGUMENT"
    reply = post(keyed, huge, **{"x-goog-api-key": KEY})
    assert reply.status == 413 and reply.error()["status"] == "RESOURCE_EXHAUSTED"
    assert keyed.store.count_user_events(EVERYTHING) == 0


@pytest.mark.parametrize(("key", "path", "why"), [
    (KEY, "/insights/v1/projects/other/locations/global/catalogs/c:runFunnel",
     "PROJECT_NOT_GRANTED"),  # another project's
    (KEY, f"/insights/v1/{CATALOG}:runFunnel", "ROLE_NOT_ALLOWED"),  # a read, by a writer
    (READER, WRITE, "ROLE_NOT_ALLOWED"),  # a write, by a reader
])
def test_a_key_is_refused_before_the_body_when_its_path_is_not_its_own(
        keyed: Running, key: str, path: str, why: str) -> None:
    """The role, and the project the path names, before the body is read: a page's
    public writer key could make the server wait for (and hold) bodies of calls it
    could not make, and with 16 of them fill the room of every body."""
    with socket.create_connection(("127.0.0.1", keyed.http_port), timeout=10) as client:
        client.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"Content-Type: application/json\r\nx-goog-api-key: {key}\r\n"
                       f"Content-Length: {LIMIT}\r\n\r\n{{\"steps\": [".encode())
        answer = client.recv(65536).decode()  # at once, the body not sent: not waited for
    assert answer.startswith("HTTP/1.1 403"), answer
    assert why in answer, answer


def test_a_body_expected_is_asked_for_only_once_the_key_is_checked(keyed: Running) -> None:
    """A client that sends Expect: 100-continue waits to be asked for its body:
    aiohttp asked every one at once, before the gateway checked its key, so a
    caller without one (or refused for its role, or whose body is too large)
    was invited to send its body, then refused."""
    body = b'{"eventType": "home-page-view", "visitorId": "v"}'

    def expecting(key: str, length: int = len(body), expect: str = "100-continue",
                  path: str = WRITE) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", keyed.http_port), timeout=10)
        client.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                       f"application/json\r\nContent-Length: {length}\r\nExpect: {expect}"
                       f"\r\n{key}\r\n".encode())
        return client

    def whole(client: socket.socket) -> bytes:  # all it is sent, till it is closed
        received = b""
        while chunk := client.recv(65536):
            received += chunk
        return received

    for key, length, status in (("", len(body), b"401"),
                                ("x-goog-api-key: not-a-key\r\n", len(body), b"401"),
                                (f"x-goog-api-key: {READER}\r\n", len(body), b"403"),
                                (f"x-goog-api-key: {KEY}\r\n", LIMIT + 1, b"413")):
        with expecting(key, length) as client:
            answer = whole(client)  # the answer, then the connection closes
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:300]
        assert b"100 Continue" not in answer
    with expecting(f"x-goog-api-key: {KEY}\r\n") as client:  # asked for, then served
        assert client.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.sendall(body)
        assert client.recv(65536).startswith(b"HTTP/1.1 200 OK")
    with expecting(f"x-goog-api-key: {KEY}\r\n", expect="something-else") as client:
        answer = whole(client)
    assert answer.startswith(b"HTTP/1.1 417"), answer[:300]
    assert b"only 100-continue is" in answer
    keyed.store.flush()
    assert keyed.store.count_user_events(EVERYTHING) == 1


def test_the_pixel_key_in_the_query_is_checked_up_front_too(keyed: Running) -> None:
    event = {"eventType": "home-page-view", "visitorId": "v1"}
    path = f"/v2/{CATALOG}/userEvents:collect?user_event={query_value(event)}"
    refused = call(keyed.http_port, "GET", path)
    assert refused.status == 200 and \
        refused.headers["X-Footfall-Error"].startswith("UNAUTHENTICATED: ")
    taken = call(keyed.http_port, "GET", f"{path}&key={KEY}")
    assert taken.status == 200 and "X-Footfall-Error" not in taken.headers
    # a system parameter may take a "$" (the gateway reads $alt and $key alike)
    also = call(keyed.http_port, "GET", f"{path.replace('v1', 'v2')}&%24key={KEY}")
    assert also.status == 200 and "X-Footfall-Error" not in also.headers
    keyed.store.flush()  # a pixel is answered before its commit
    assert keyed.store.count_user_events(EVERYTHING) == 2


def test_a_request_that_cannot_be_read_is_kept_in_the_project_its_url_names(
        keyed: Running) -> None:
    """Refused for its body (no JSON, an unknown field) or a query parameter, a
    write was kept without a parent: not among its project's refusals, so the
    project's readers never saw why, and any key could push them out."""
    for path, body in ((WRITE, b'{"eventType": '), (WRITE, b'{"nope": 1}'),
                       (f"{WRITE}?nope=1", b"{}")):
        assert call(keyed.http_port, "POST", path, body, {"x-goog-api-key": KEY}).status == 400
    pixel = f"/v2/{CATALOG}/userEvents:collect?userEvent=%7B%7D&nope=1&key={KEY}"
    assert "INVALID_ARGUMENT" in call(keyed.http_port, "GET", pixel).headers["X-Footfall-Error"]
    listed = call(keyed.http_port, "GET", "/console/v1/projects/p/rejections",
                  headers={"x-goog-api-key": READER}).json()["rejections"]
    assert [r.get("parent") for r in listed] == [CATALOG] * 4, listed
    # A key sending such a request to a project it is not granted keeps nothing (it
    # is refused for the project its path names, before its body is read).
    other = WRITE.replace("projects/p/", "projects/q/")
    for body in (b'{"nope": 1}', b"{"):
        assert call(keyed.http_port, "POST", other, body, {"x-goog-api-key": KEY}).status == 403
    keyed.store.flush()
    assert len(keyed.store.rejections_newest(None, 100)) == 4


def test_a_pixel_of_a_path_that_names_no_catalog_is_kept_for_a_key_of_its_project(
        keyed: Running) -> None:
    """A tracker whose data-parent left out the location: every event refused, and
    only a header of the GIF and a log line said so, nothing where a reader looks."""
    mistyped = "projects/p/catalogs/default_catalog"
    event = "%7B%22eventType%22%3A%22home-page-view%22%7D"
    for key in (KEY, "", "not-a-key"):  # (only the first is kept: no key, no row)
        path = f"/v2/{mistyped}/userEvents:collect?userEvent={event}&key={key}"
        reply = call(keyed.http_port, "GET", path)
        assert reply.status == 200 and reply.headers["Content-Type"] == "image/gif"
        assert reply.headers["X-Footfall-Error"].startswith("NOT_FOUND: no route for GET")
    # a key of another project keeps nothing there either
    other = f"/v2/projects/q/catalogs/c/userEvents:collect?userEvent={event}&key={KEY}"
    assert "NOT_FOUND" in call(keyed.http_port, "GET", other).headers["X-Footfall-Error"]
    listed = call(keyed.http_port, "GET", "/console/v1/projects/p/rejections",
                  headers={"x-goog-api-key": READER}).json()["rejections"]
    assert [(r["parent"], r["transport"], r["method"], r["keyName"], r["code"])
            for r in listed] == [(mistyped, "PIXEL", COLLECT, "key #1", 5)], listed
    assert listed[0]["message"].startswith("no route for GET /v2/projects/p/catalogs/"), listed
    assert json.loads(listed[0]["requestJson"]) == {
        "parent": mistyped, "userEvent": '{"eventType":"home-page-view"}'}, listed
    keyed.store.flush()
    assert len(keyed.store.rejections_newest(None, 100)) == 1
    # each one counted, kept or not (those without a key of the project were not)
    page = call(keyed.http_port, "GET", "/metrics").body.decode()
    assert 'footfall_requests_total{code="NOT_FOUND",method="CollectUserEvent",service=' \
           '"google.cloud.retail.v2.UserEventService",transport="http"} 4.0' in page


def test_a_pixel_of_a_path_begun_with_two_slashes_is_kept_for_its_project(
        keyed: Running) -> None:
    """An endpoint written with a trailing slash sends //v2/...: no route, as on
    Google, and its refusal was kept under the parent "/v2/projects/p/...", which
    no reader of project p was shown."""
    catalog = "projects/p/locations/global/catalogs/default_catalog"
    event = "%7B%22eventType%22%3A%22home-page-view%22%7D"
    reply = call(keyed.http_port, "GET",
                 f"//v2/{catalog}/userEvents:collect?userEvent={event}&key={KEY}")
    assert reply.headers["X-Footfall-Error"].startswith("NOT_FOUND: no route for GET //v2/")
    listed = call(keyed.http_port, "GET", "/console/v1/projects/p/rejections",
                  headers={"x-goog-api-key": READER}).json()["rejections"]
    assert [(r["parent"], r["code"]) for r in listed] == [(catalog, 5)], listed


def test_a_missing_key_is_told_the_ways_http_sends_one(keyed: Running) -> None:
    """A pixel (an <img> sends no header) was told to send a header; a call that sent
    key= was told it sent no key, though Google's clients send key= everywhere."""
    event = '{"eventType":"home-page-view","visitorId":"v"}'
    pixel = call(keyed.http_port, "GET", f"/v2/{CATALOG}/userEvents:collect?userEvent={event}")
    assert pixel.status == 200 and pixel.body[:6] == b"GIF89a"
    assert "a pixel sends it as its key parameter (?key=KEY; the tracker: data-api-key)" in \
        pixel.headers["X-Footfall-Error"]
    asked = call(keyed.http_port, "POST", f"{WRITE}?key={KEY}",
                 {"eventType": "home-page-view", "visitorId": "v"})
    assert asked.status == 401 and asked.error()["details"][0]["reason"] == "API_KEY_MISSING"
    assert "reads the key parameter of a pixel (GET or POST userEvents:collect) only" in \
        asked.error()["message"]
    plain = call(keyed.http_port, "POST", WRITE, {"eventType": "home-page-view",
                                                  "visitorId": "v"})
    assert plain.error()["message"].startswith("this server requires an API key: send it as "
                                               "the x-goog-api-key header")
    assert keyed.store.count_user_events(EVERYTHING) == 0


def test_one_key_holds_at_most_a_quarter_of_the_room_of_all_bodies(keyed: Running) -> None:
    """One key (a page's writer key is public) held the room of every body for a
    minute with 16 bodies sent slowly: every REST call with a body, whoever made
    it, was refused meanwhile."""
    from server.http.gateway import BODIES_HELD
    padded = b'{"eventType": "home-page-view", "visitorId": "v"}' + b" " * (LIMIT - 100)

    def head(key: str) -> bytes:
        return (f"POST {WRITE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                f"application/json\r\nx-goog-api-key: {key}\r\nContent-Length: "
                f"{len(padded)}\r\n\r\n").encode()

    # (from addresses of their own: a writer key's client address holds a quarter of
    # the key's part, one body here; see test_writer_key_bodies)
    held = [socket.create_connection(("127.0.0.1", keyed.http_port), timeout=10,
                                     source_address=(f"127.0.0.{n + 1}", 0))
            for n in range(BODIES_HELD // 4)]
    try:
        for sock in held:  # all but the last byte: each body is being read
            sock.sendall(head(KEY) + padded[:-1])
        deadline = time.monotonic() + 20
        while True:  # once they are read, one more of the same key does not fit
            assert time.monotonic() < deadline, "no body of the key was refused"
            with socket.create_connection(("127.0.0.1", keyed.http_port), timeout=10,
                                          source_address=("127.0.0.99", 0)) as sock:
                sock.sendall(head(KEY) + padded)
                answer = sock.recv(65536)
            if answer.startswith(b"HTTP/1.1 429"):
                break
            time.sleep(0.05)
        assert b"this caller's request bodies hold a quarter" in answer, answer[:500]
        with socket.create_connection(("127.0.0.1", keyed.http_port), timeout=10) as sock:
            sock.sendall(head(OTHER) + padded)  # another key's is read and served
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        for sock in held:  # the held ones are served in full
            sock.sendall(padded[-1:])
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


def test_a_keys_bodies_held_are_still_its_own_after_a_sighup(keyed: Running) -> None:
    """A key's bodies were counted by its Grant object's id, and a SIGHUP makes a new
    Grant of every key: the key's next bodies were counted from nothing again."""
    from server.app import _reload_keys
    from server.http.gateway import BODIES_HELD
    padded = b'{"eventType": "home-page-view", "visitorId": "v"}' + b" " * (LIMIT - 100)
    head = (f"POST {WRITE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            f"\r\nx-goog-api-key: {KEY}\r\nContent-Length: {len(padded)}\r\n\r\n").encode()

    def one_more() -> bytes:
        with socket.create_connection(("127.0.0.1", keyed.http_port), timeout=10,
                                      source_address=("127.0.0.99", 0)) as sock:
            sock.sendall(head + padded)
            return sock.recv(65536)

    # (from addresses of their own: see test_one_key_holds_at_most_a_quarter_...)
    held = [socket.create_connection(("127.0.0.1", keyed.http_port), timeout=10,
                                     source_address=(f"127.0.0.{n + 1}", 0))
            for n in range(BODIES_HELD // 4)]
    try:
        for sock in held:  # all but the last byte: each body is being read
            sock.sendall(head + padded[:-1])
        deadline = time.monotonic() + 20
        while not one_more().startswith(b"HTTP/1.1 429"):  # once they are read
            assert time.monotonic() < deadline, "no body of the key was refused"
            time.sleep(0.05)
        _reload_keys(keyed, "")  # (what SIGHUP runs: the same keys, read again)
        answer = one_more()
        assert b"this caller's request bodies hold a quarter" in answer, answer[:500]
        for sock in held:
            sock.sendall(padded[-1:])
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


def test_a_key_in_a_body_that_cannot_be_read_is_not_kept(keyed: Running) -> None:
    """A pixel's POST given its key in the body as well (no field of the request is
    named key, so the body is refused unread): the refusal kept the body as sent,
    key and all, for every reader of the project to see."""
    collect = f"/v2/{CATALOG}/userEvents:collect?key={KEY}"
    for body in (b'{"userEvent": "{}", "key": "%s"}' % KEY.encode(),
                 b'{"key" : "%s", "userEvent": ' % KEY.encode()):  # (and not JSON at all)
        reply = call(keyed.http_port, "POST", collect, body, {"Content-Type": "text/plain"})
        assert reply.status == 400, reply
    listed = call(keyed.http_port, "GET", "/console/v1/projects/p/rejections",
                  headers={"x-goog-api-key": READER}).json()["rejections"]
    assert len(listed) == 2, listed
    for rejection in listed:
        assert KEY not in json.dumps(rejection), rejection
        assert "(not kept: an API key)" in rejection["requestJson"], rejection


def test_a_429_of_the_quota_says_when_to_retry_in_a_header_too(
        settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    """An HTTP client reads Retry-After, not the RetryInfo in the body: a write past
    the quota said when to retry only there."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {KEY: {"projects": ["p"], "role": "writer"}}}))
    running = start(dataclasses.replace(settings, http_port=-1, auth_file=str(keys),
                                        quota_writes_per_minute=2), clock)
    try:
        body = b'{"eventType": "home-page-view", "visitorId": "v"}'
        replies = [post(running, body, **{"x-goog-api-key": KEY}) for _ in range(3)]
    finally:
        running.stop()
    assert [r.status for r in replies] == [200, 200, 429], replies
    [retry] = [d for d in replies[2].json()["error"]["details"]
               if d["@type"].endswith("google.rpc.RetryInfo")]
    seconds = float(retry["retryDelay"].rstrip("s"))
    assert replies[2].headers["Retry-After"] == str(max(1, math.ceil(seconds))), replies[2]
    assert "Retry-After" not in replies[0].headers


def test_an_authorization_header_of_another_scheme_is_said_to_be_unread(keyed: Running) -> None:
    """`Authorization: Basic ...` (a reverse proxy's password, say) was told only that a
    key was wanted, though the call carried a header that looked like one."""
    basic = {"Authorization": "Basic dXNlcjpwYXNz", "Content-Type": "application/json"}
    event = {"eventType": "home-page-view", "visitorId": "v1"}
    refused = call(keyed.http_port, "POST", f"/v2/{CATALOG}/userEvents:write", event,
                   headers=basic)
    assert refused.status == 401, refused
    message = json.loads(refused.body)["error"]["message"]
    assert "not 'Basic'" in message and "Bearer KEY" in message, message
    assert "dXNlcjpwYXNz" not in refused.body.decode()
    taken = call(keyed.http_port, "POST", f"/v2/{CATALOG}/userEvents:write", event,
                 headers={**basic, "Authorization": f"Bearer {KEY}"})
    assert taken.status == 200, taken


def test_pages_nobody_reads_without_a_key_leave_the_room_of_answers_to_keys(
        keyed: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large answers count against their budget while they are sent, a key's within
    its share; a page anyone may ask for without a key (/metrics, the tracker) is
    not counted (it is bounded by the connections and --http-send-timeout): else
    clients without a key that read nothing filled the room, and every key's large
    answers were refused meanwhile."""
    from server.http import tracker
    monkeypatch.setattr(tracker, "SCRIPT", "//" + "x" * 6_000_000)  # (more than a socket takes)
    keyed.store.write_user_events([EventRow.from_event(CATALOG, json_format.ParseDict(
        {"eventType": "category-page-view", "visitorId": "v",
         "pageCategories": ["c" * 200_000]}, user_event_pb2.UserEvent()), joined=True)])
    unread = []
    try:
        for _ in range(3):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", keyed.http_port))
            sock.sendall(b"GET /footfall.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            unread.append(sock)
        for sock in unread:  # their answers are being sent (looked at, not taken)
            assert sock.recv(1, socket.MSG_PEEK) == b"H"
        page = call(keyed.http_port, "GET", f"/console/v1/{CATALOG}/userEvents",
                    headers={"x-goog-api-key": READER})
        assert page.status == 200, page.body[:300]
        assert len(page.body) > 200_000
    finally:
        for sock in unread:
            sock.close()


def test_a_writer_key_is_not_told_which_field_of_a_stored_client_event_differs(
        keyed: Running, clock: FixedClock) -> None:
    # A reused event_id's refusal named the first field where the stored event
    # differs: a job site's writer key (public in its pages) learnt field by field
    # whether a guess (which job, which notes) was what another visitor's event holds.
    path = "/v4/projects/p/tenants/t/clientEvents"
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now_ns() // 10**9))
    stored = {"createTime": created, "requestId": "r", "eventId": "e-1",
              "jobEvent": {"type": "VIEW", "jobs": ["projects/p/tenants/t/jobs/secret"]}}
    guess = {**stored, "jobEvent": {"type": "VIEW", "jobs": ["projects/p/tenants/t/jobs/guess"]}}

    def send(event: dict[str, object], key: str) -> Reply:
        return call(keyed.http_port, "POST", path, json.dumps(event).encode(),
                    {"Content-Type": "application/json", "x-goog-api-key": key})

    assert send(stored, KEY).status == 200
    refused = send(guess, KEY)
    assert refused.status == 409
    assert refused.error()["message"].endswith(
        "by a different event: which field differs is said to keys that may read client "
        "events")
    assert send(guess, ADMIN).error()["message"].endswith(
        "by a different event: its client_event.job_event.jobs[0] differs")
    assert send(stored, KEY).status == 200  # (an identical retry is answered as before)
