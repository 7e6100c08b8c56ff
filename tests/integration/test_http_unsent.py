"""What the kernel holds of large answers whose clients read nothing: at most
connections.UNSENT_BYTES a connection (TCP_NOTSENT_LOWAT), the rest waits in the
server, within the budget of large answers and --http-send-timeout. The kernel took
up to its send buffer (4 MiB a connection on loopback) outside both. And a client
that reads slowly, but more than --http-send-timeout asks, keeps its connection."""

from __future__ import annotations

import dataclasses
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

from . import http_client

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
PAGE = f"/console/v1/{CATALOG}/userEvents?pageSize=1"
EVENT_CHARS = 3_000_000  # one event's page: about as many bytes of JSON
CLIENTS = 4
HELD = 256 * 1024  # at most, a connection: twice connections.UNSENT_BYTES (what is in flight)
BOUND = 10.0  # seconds

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/net/tcp")


@pytest.fixture
def served(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1,
                                        max_event_bytes=EVENT_CHARS + 10_000), clock)
    try:
        written = http_client.call(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                                   {"eventType": "category-page-view", "visitorId": "v",
                                    "pageCategories": ["c" * EVENT_CHARS]})
        assert written.status == 200, written.body[:300]
        yield running
    finally:
        running.stop()


def unsent_by_connection(port: int) -> dict[int, int]:
    """The bytes queued to send (not yet acknowledged by the client) on each
    established connection the server at `port` accepted, by the client's port."""
    queued = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        if state == "01" and int(local.split(":")[1], 16) == port:
            queued[int(remote.split(":")[1], 16)] = int(queues.split(":")[0], 16)
    return queued


def settled(port: int, clients: set[int]) -> dict[int, int]:
    """unsent_by_connection once each of `clients` has an answer queued and none
    changed in three looks a tenth of a second apart."""
    deadline, last, same = time.monotonic() + BOUND, None, 0
    while time.monotonic() < deadline:
        now = {client: queued for client, queued in unsent_by_connection(port).items()
               if client in clients}
        started = len(now) == len(clients) and all(now.values())
        same = same + 1 if started and now == last else 0
        if same == 3:
            return now
        last = now
        time.sleep(0.1)
    raise AssertionError(f"the answers did not settle: {last}")


def test_the_kernel_holds_little_of_answers_nobody_reads(served: Running) -> None:
    page = http_client.call(served.http_port, "GET", PAGE)
    assert page.status == 200 and len(page.body) > EVENT_CHARS
    clients = []
    try:
        for _ in range(CLIENTS):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # (it takes little)
            sock.connect(("127.0.0.1", served.http_port))
            sock.sendall(f"GET {PAGE} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            clients.append(sock)
        queued = settled(served.http_port, {sock.getsockname()[1] for sock in clients})
        assert max(queued.values()) < HELD, queued
        # ... and a client that reads gets the whole page
        for sock in clients[:1]:
            sock.settimeout(BOUND)
            received = b""
            # (its head comes first: read until the body's end, not its length, has come)
            while not received.endswith(page.body):
                chunk = sock.recv(1 << 20)
                assert chunk, f"closed early: {received[-200:]!r}"
                received += chunk
    finally:
        for sock in clients:
            sock.close()



SEND_TIMEOUT = 1.0  # seconds (--http-send-timeout)
# What the slow client takes each SEND_TIMEOUT: half again the SEND_PIECE_BYTES asked,
# and well short of the 128 KiB that the send watch asked once aiohttp had written
# more into the buffer while writing was paused.
TAKEN_A_TIMEOUT = 96 * 1024
SLOW_PAGE_CHARS = 500_000  # about 5 s of reading at that pace
WATCHED = 60  # events of WATCHED_CHARS each: about as much
WATCHED_CHARS = 8_000


@pytest.fixture
def slow_served(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1,
                                        http_send_timeout=SEND_TIMEOUT), clock)
    try:
        yield running
    finally:
        running.stop()


def write_event(running: Running, visitor: str, category: str) -> None:
    written = http_client.call(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                               {"eventType": "category-page-view", "visitorId": visitor,
                                "pageCategories": [category]})
    assert written.status == 200, written.body[:300]


def read_slowly(running: Running, path: str, done: Callable[[bytearray], bool]) -> None:
    """GET `path` and read its answer at TAKEN_A_TIMEOUT a SEND_TIMEOUT (catching up
    when late, on a busy machine) until `done` says what came is enough."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # (the kernel takes little)
        sock.settimeout(BOUND)
        sock.connect(("127.0.0.1", running.http_port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        received, started = bytearray(), time.monotonic()
        while not done(received):
            chunk = sock.recv(8192)
            assert chunk, f"closed after {len(received):,} bytes"
            received += chunk
            due = started + len(received) / TAKEN_A_TIMEOUT * SEND_TIMEOUT
            time.sleep(max(0.0, due - time.monotonic()))


# An answer written in pieces, or a stream of many events, arms the send watch again
# and again as the buffer fills: a client taking 96 KiB each second, more than the
# 64 KiB a second README asks (--http-send-timeout 1), keeps its connection. It was
# cut: the piece aiohttp wrote into the paused buffer hid half of what it took.

def test_a_client_taking_more_than_a_piece_each_send_timeout_gets_a_whole_page(
        slow_served: Running) -> None:
    write_event(slow_served, "v", "c" * SLOW_PAGE_CHARS)
    page = http_client.call(slow_served.http_port, "GET", PAGE)
    assert page.status == 200 and len(page.body) > SLOW_PAGE_CHARS
    read_slowly(slow_served, PAGE, lambda received: received.endswith(page.body))


def test_a_client_taking_more_than_a_piece_each_send_timeout_gets_every_watched_event(
        slow_served: Running) -> None:
    for n in range(WATCHED):
        write_event(slow_served, f"v{n}", f"{n}-" + "c" * WATCHED_CHARS)
    read_slowly(slow_served, f"/console/v1/{CATALOG}/userEvents:watch?afterId=0",
                lambda received: received.count(b"\ndata: ") >= WATCHED)
