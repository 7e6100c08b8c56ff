"""What the kernel holds of large answers whose clients read nothing: at most
connections.UNSENT_BYTES a connection (TCP_NOTSENT_LOWAT), the rest waits in the
server, within the budget of large answers and --http-send-timeout. The kernel took
up to its send buffer (4 MiB a connection on loopback) outside both."""

from __future__ import annotations

import dataclasses
import socket
import sys
import time
from collections.abc import Iterator
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
            while len(received) < len(page.body):
                chunk = sock.recv(1 << 20)
                assert chunk, "closed early"
                received += chunk
            assert received.endswith(page.body)
    finally:
        for sock in clients:
            sock.close()
