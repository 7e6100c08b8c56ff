"""The HTTP port over a raw socket: a request line of HTTP/1.2 to 1.9 is read as
HTTP/1.1 and answered in it (RFC 9110 §2.5; aiohttp's parser refused it 400 "Bad
status line"), however its line is cut into writes; a body is never read as a
request line; and a request that cannot be read is answered in HTTP/1.1 with
Connection: close (aiohttp answered it in HTTP/1.0)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from footfall.retail.v2 import user_event_pb2

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.store import EventQuery

BOUND = 10.0
CATALOG = "projects/p/locations/global/catalogs/default_catalog"
CLOSING = b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
SERVING = b"SERVING\n"


@pytest.fixture
def gateway(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1), clock)
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def raw(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield sock
    finally:
        sock.close()


def sent_in_writes(sock: socket.socket, *writes: bytes) -> bytes:
    """All the server answered to `writes`, each read by the server on its own
    (the next sent once the server has read the last), until it closed."""
    for write in writes:
        sock.sendall(write)
        time.sleep(0.05)  # (a write of its own: the server reads it before the next)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def assert_served_in_1_1(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:300]
    assert answer.endswith(b"\r\n\r\n" + SERVING), answer[-300:]


@pytest.mark.parametrize("writes", [
    [b"GET /healthz HTTP/1.2\r\n" + CLOSING],
    [b"GET /healthz HTTP/1.9\r\n" + CLOSING],
    [b"\r\nGET /healthz HTTP/1.2\r\n" + CLOSING],  # (an empty line before it is allowed)
    [b"GET /healthz HT", b"TP/1.2\r\n" + CLOSING],
    [b"GET /healthz HTTP/1.", b"2\r\n" + CLOSING],
    [b"GET /healthz HTTP/1.2", b"\r\n" + CLOSING],  # (llhttp refuses the digit itself)
    [b"GET /healthz HTTP/1.2\r", b"\n" + CLOSING],
    [b"GET /heal", b"thz ", b"HTTP/1", b".3", b"\r\n" + CLOSING],
])
def test_a_later_minor_version_of_http_1_is_read_as_1_1(gateway: Running,
                                                        writes: list[bytes]) -> None:
    with raw(gateway.http_port) as sock:
        assert_served_in_1_1(sent_in_writes(sock, *writes))


@pytest.mark.parametrize("first", [
    [b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
    [b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"\r\n"],  # (its end in a write)
    [b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r", b"\n"],
])
def test_so_is_a_later_request_on_a_kept_connection(gateway: Running,
                                                    first: list[bytes]) -> None:
    with raw(gateway.http_port) as sock:
        for write in first:
            sock.sendall(write)
            time.sleep(0.05)
        first = b""
        while not first.endswith(SERVING):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert_served_in_1_1(sent_in_writes(sock, b"GET /healthz HTTP/1.2\r\n" + CLOSING))


@pytest.mark.parametrize("version", [b"1.10", b"1.a", b"3.1"])
def test_what_is_no_version_of_http_1_is_refused_as_before(gateway: Running,
                                                           version: bytes) -> None:
    with raw(gateway.http_port) as sock:
        answer = sent_in_writes(sock, b"GET /healthz HTTP/" + version + b"\r\n" + CLOSING)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:300]
    assert b"Bad status line" in answer


def test_a_body_is_never_read_as_a_request_line(gateway: Running) -> None:
    # The body's first piece ends as a request line of HTTP/1.2 would: it is data.
    pieces = [b'{"eventType": "home-page-view", "visitorId": "v HTTP/1.2', b'"}']
    head = (b"POST /v2/" + CATALOG.encode() + b"/userEvents:write HTTP/1.2\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(b"".join(pieces))
            + CLOSING)
    with raw(gateway.http_port) as sock:
        answer = sent_in_writes(sock, head, *pieces)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:300]
    gateway.store.flush()
    [(_, stored)] = gateway.store.list_user_events(EventQuery(CATALOG), 10)
    assert user_event_pb2.UserEvent.FromString(stored).visitor_id == "v HTTP/1.2"


@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n",
    b"\x00\x01 not a request\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
])
def test_an_unreadable_request_is_answered_in_http_1_1_and_closed(gateway: Running,
                                                                  head: bytes) -> None:
    with raw(gateway.http_port) as sock:
        answer = sent_in_writes(sock, head)
    status, _, body = answer.partition(b"\r\n\r\n")
    lines = status.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 400 Bad Request", answer[:300]
    assert b"Connection: close" in lines  # (HTTP/1.1 keeps a connection unless told)
    assert json.loads(body)["error"]["status"] == "INVALID_ARGUMENT"


def test_a_header_ending_a_write_as_a_request_line_would_is_left_as_sent(gateway: Running) -> None:
    # A request whose head comes in the same write as the one before it, cut where a
    # header's value ends as " HTTP/1.2" would begin: the next write begins inside a
    # head, not with a request line, and the header is read as sent.
    event = json.dumps({"eventType": "home-page-view", "visitorId": "v1"})
    collect = (b"GET /v2/" + CATALOG.encode() + b"/userEvents:collect?userEvent="
               + urllib.parse.quote(event, safe="").encode() + b" HTTP/1.1\r\n")
    with raw(gateway.http_port) as sock:
        answer = sent_in_writes(
            sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + collect
            + b"User-Agent: probe", b" HTTP/1.2\r\n" + CLOSING)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2, answer[:600]
    gateway.store.flush()
    [(_, stored)] = gateway.store.list_user_events(EventQuery(CATALOG), 10)
    assert user_event_pb2.UserEvent.FromString(stored).user_info.user_agent == "probe HTTP/1.2"
