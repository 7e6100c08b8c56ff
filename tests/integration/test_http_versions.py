"""Request lines of HTTP versions the HTTP port does not speak, sent over a raw
socket: HTTP/0.9 (with or without a version) and "HTTP/2.0" were answered in that
version ("HTTP/2.0 200 OK"), and a bare HTTP/0.9 line waited for the head deadline
and was closed without a word. Each is answered 505 in HTTP/1.1, and closed."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import time
from collections.abc import Iterator

import pytest

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.store import EventQuery

HEADER_TIMEOUT = 5.0  # seconds: an answer that waits for the head deadline fails below
BOUND = 10.0
CATALOG = "projects/p/locations/global/catalogs/default_catalog"
HOST = b"Host: 127.0.0.1\r\n"


@pytest.fixture
def gateway(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1,
                                        http_header_timeout=HEADER_TIMEOUT), clock)
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def raw(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    try:
        yield sock
    finally:
        sock.close()


def until_closed(sock: socket.socket) -> tuple[float, bytes]:
    """(seconds until the server closed `sock`, all it sent)."""
    started, received = time.monotonic(), b""
    while chunk := sock.recv(65536):
        received += chunk
    return time.monotonic() - started, received


def assert_refused_505(answer: bytes, version: str) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 505 HTTP Version Not Supported", answer[:300]
    assert b"Connection: close" in lines
    assert b"Content-Type: application/json; charset=utf-8" in lines
    error = json.loads(body)["error"]
    assert (error["code"], error["status"]) == (505, "UNIMPLEMENTED")
    assert error["message"].startswith(f"this server speaks HTTP/1.1 (and 1.0), not {version}")


@pytest.mark.parametrize(("head", "version"), [
    (b"GET /healthz\r\n", "HTTP/0.9"),  # (a simple request: no version, no headers)
    (b"GET /healthz\n", "HTTP/0.9"),
    (b"\r\nGET /healthz\r\n", "HTTP/0.9"),
    (b"GET /healthz\r\n\r\n", "HTTP/0.9"),
    (b"GET /healthz HTTP/0.9\r\n" + HOST + b"\r\n", "HTTP/0.9"),
    (b"GET /healthz HTTP/2.0\r\n" + HOST + b"\r\n", "HTTP/2.0"),
    (b"GET /metrics HTTP/2.0\r\n" + HOST + b"Connection: keep-alive\r\n\r\n", "HTTP/2.0"),
])
def test_a_request_of_another_version_is_answered_505_in_http_1_1_and_closed(
        gateway: Running, head: bytes, version: str) -> None:
    with raw(gateway.http_port) as sock:
        sock.sendall(head)
        seconds, answer = until_closed(sock)
    assert seconds < HEADER_TIMEOUT / 2  # at once, not at the head deadline
    assert_refused_505(answer, version)


def test_an_http_0_9_line_in_pieces_is_answered_when_it_ends(gateway: Running) -> None:
    with raw(gateway.http_port) as sock:
        sock.sendall(b"GET /hea")
        time.sleep(0.1)  # (its own segment)
        sock.sendall(b"lthz\r\n")
        _, answer = until_closed(sock)
    assert_refused_505(answer, "HTTP/0.9")


def test_a_write_of_another_version_stores_nothing(gateway: Running) -> None:
    body = b'{"eventType": "home-page-view", "visitorId": "v"}'
    with raw(gateway.http_port) as sock:
        sock.sendall(b"POST /v2/" + CATALOG.encode() + b"/userEvents:write HTTP/2.0\r\n" + HOST
                     + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                     + body)
        _, answer = until_closed(sock)
    assert_refused_505(answer, "HTTP/2.0")
    gateway.store.flush()
    assert gateway.store.count_user_events(EventQuery(CATALOG)) == 0


def test_requests_before_it_on_the_connection_are_answered_first(gateway: Running) -> None:
    with raw(gateway.http_port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n"
                     b"GET /healthz HTTP/2.0\r\n" + HOST + b"\r\n")
        _, answer = until_closed(sock)
    first, _, rest = answer.partition(b"SERVING\n")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:300]
    assert_refused_505(rest, "HTTP/2.0")


def test_a_request_sent_with_the_end_of_a_body_before_it_is_refused_too(
        gateway: Running) -> None:
    """A request line that comes in the write that ends the body before it (a client
    that pipelines behind a POST whose body it sent apart) was read where the body's
    bytes are, and answered "HTTP/2.0 200 OK"."""
    body = b'{"eventType": "home-page-view", "visitorId": "v"}'
    with raw(gateway.http_port) as sock:
        sock.sendall(b"POST /v2/" + CATALOG.encode() + b"/userEvents:write HTTP/1.1\r\n" + HOST
                     + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        time.sleep(0.1)  # (the body in a write of its own)
        sock.sendall(body + b"GET /healthz HTTP/2.0\r\n" + HOST + b"\r\n")
        _, answer = until_closed(sock)
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:300]
    assert_refused_505(rest[rest.index(b"HTTP/"):], "HTTP/2.0")


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
def test_http_1_0_and_1_1_are_answered_in_their_version(gateway: Running,
                                                        version: bytes) -> None:
    with raw(gateway.http_port) as sock:
        sock.sendall(b"GET /healthz HTTP/" + version + b"\r\n" + HOST
                     + b"Connection: close\r\n\r\n")
        _, answer = until_closed(sock)
    assert answer.startswith(b"HTTP/" + version + b" 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nSERVING\n")
