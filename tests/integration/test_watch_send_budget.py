"""Watches whose clients never read, each of a filter of its own, from the first
event, over events whose JSON is costly: the time the loop spends making and
sending their messages is budgeted (--watch-send-ms, console/pace.py's SendCost),
so the writes beside them keep most of their rate. Counted in messages alone
(--watch-messages), their sends took the loop from the writes. The rates are
compared within one run, with and without the watches: nothing absolute is timed."""

from __future__ import annotations

import json
import math
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import (
    import_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
EVENTS = 10_000
WATCHES = 100
SECONDS = 3.0  # each measure of the writes' rate


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A `footfall serve` on a memory store: its gRPC and HTTP ports."""
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
         "--store", "memory://"], cwd=tmp_path, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr or ()])
    reader.start()
    try:
        http = grpc_port = None
        while grpc_port is None:
            line = lines.get(timeout=60)
            if found := re.search(r"serving HTTP on 127\.0\.0\.1:(\d+)", line):
                http = int(found[1])
            if found := re.search(r"serving gRPC on 127\.0\.0\.1:(\d+)", line):
                grpc_port = int(found[1])
        assert http is not None
        yield grpc_port, http
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join()


def costly_event(n: int) -> user_event_pb2.UserEvent:
    """An event of 40 products: 1.9 KB of JSON, costly to print (a message each) for
    the 540 bytes of its message."""
    event = user_event_pb2.UserEvent(event_type="detail-page-view", visitor_id=f"v-{n}")
    event.event_time.FromSeconds(1_700_000_000 + n)
    for j in range(40):
        detail = event.product_details.add()
        detail.product.id = f"p{j}"
        detail.quantity.value = j + 1
    return event


def fill(port: int) -> None:
    """EVENTS costly events, imported; returns once they are all stored."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        events = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        for first in range(0, EVENTS, 500):
            request = import_config_pb2.ImportUserEventsRequest(parent=CATALOG)
            request.input_config.user_event_inline_source.user_events.extend(
                costly_event(n) for n in range(first, first + 500))
            events.ImportUserEvents(request, timeout=60)
        console = console_pb2_grpc.ConsoleServiceStub(channel)
        deadline = time.monotonic() + 60
        while console.CountUserEvents(console_pb2.CountUserEventsRequest(parent=CATALOG),
                                      timeout=10).count < EVENTS:  # (imports run by themselves)
            assert time.monotonic() < deadline, "the imports did not end"
            time.sleep(0.1)


def writes_a_second(port: int, seconds: float, writers: int = 2) -> float:
    """Durable writes a second, `writers` callers writing one after the other."""
    stop = time.monotonic() + seconds
    counts = [0] * writers

    def write(k: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            events = user_event_service_pb2_grpc.UserEventServiceStub(channel)
            while time.monotonic() < stop:
                events.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                    parent=CATALOG, user_event=user_event_pb2.UserEvent(
                        event_type="home-page-view", visitor_id=f"w-{k}")), timeout=60)
                counts[k] += 1

    began = time.monotonic()
    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - began)


def hostile_watches(port: int, count: int = WATCHES) -> list[socket.socket]:
    """`count` server-sent-event watches from the first event, each of a filter of its
    own (a feed of its own), whose clients never read (with room for megabytes each
    in their sockets, so that their sends go on)."""
    opened = []
    for k in range(count):
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        client.connect(("127.0.0.1", port))
        selected = quote(f'eventTime > "2020-01-01T00:00:00.{k:06d}Z"')
        client.sendall(f"GET /console/v1/{CATALOG}/userEvents:watch?afterId=1&filter={selected} "
                       f"HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        opened.append(client)
    return opened


def test_writes_keep_their_rate_beside_watches_that_never_read(
        ports: tuple[int, int]) -> None:
    grpc_port, http_port = ports
    fill(grpc_port)
    ratios = []
    # Up to three rounds, each the rate alone then beside new watches: the two measures
    # of a round fall on different moments of other workers' load (in `.ci/run` a round
    # read 1,161 and 341, 0.29, where the same tree alone read 0.50-0.61 and beside a
    # busy core 0.53-0.63); unbudgeted watches leave 0.06 in every round.
    for _round in range(3):
        alone = writes_a_second(grpc_port, SECONDS)
        watches = hostile_watches(http_port)
        try:
            time.sleep(1)  # (every watch open and sending)
            beside = writes_a_second(grpc_port, SECONDS)
        finally:
            for client in watches:
                client.close()
        print(f"{alone:.0f} writes/s alone, {beside:.0f} beside {WATCHES} watches "
              f"({beside / alone:.2f})")
        ratios.append(beside / alone)
        if beside / alone > 0.4:
            break
        time.sleep(1)  # (the watches closed, their feeds gone)
    # Counted in messages alone (4,000 a second), the watches' JSON took the loop: 1,737
    # writes/s alone, 108 beside them (0.06); 1,696 and 514 (0.30). Budgeted by the
    # loop's time (100 ms a second): 1,749 and 1,292 (0.74), 1,715 and 1,329 (0.78) on a
    # quiet machine; in `make test`, beside two other workers, 1,318 and 642 (0.49). 0.4
    # is still above anything the unbudgeted watches left.
    assert max(ratios) > 0.4, f"beside the watches / alone, each round: {ratios}"


def live_watch(port: int, seen: dict[int, float], stop: threading.Event) -> None:
    """A server-sent-event watch of a filter of its own, from now, whose client reads
    at once: when each event of visitor `live-N` came (N: its time, monotonic)."""
    with socket.create_connection(("127.0.0.1", port)) as client:
        selected = quote('eventTime > "2020-01-01T00:00:00.999999Z"')
        client.sendall(f"GET /console/v1/{CATALOG}/userEvents:watch?filter={selected} "
                       f"HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        client.settimeout(0.5)
        read = b""
        while not stop.is_set():
            try:
                data = client.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                return
            now = time.monotonic()
            *lines, read = (read + data).split(b"\n")
            for line in lines:
                if line.startswith(b"data: "):
                    visitor = json.loads(line[6:])["userEvent"]["visitorId"]
                    seen[int(visitor.removeprefix("live-"))] = now


def test_a_live_watch_sees_new_events_at_once_beside_watches_that_never_read(
        ports: tuple[int, int]) -> None:
    grpc_port, http_port = ports
    fill(grpc_port)
    watches = hostile_watches(http_port, 200)
    seen: dict[int, float] = {}
    stop = threading.Event()
    reader = threading.Thread(target=live_watch, args=(http_port, seen, stop))
    reader.start()
    written = []
    try:
        time.sleep(2)  # (every watch open and sending)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            events = user_event_service_pb2_grpc.UserEventServiceStub(channel)
            for n in range(100):  # an event every 0.1 s
                written.append(time.monotonic())
                events.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                    parent=CATALOG, user_event=user_event_pb2.UserEvent(
                        event_type="home-page-view", visitor_id=f"live-{n}")), timeout=60)
                time.sleep(0.1)
        deadline = time.monotonic() + 5
        while len(seen) < len(written) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        reader.join()
        for client in watches:
            client.close()
    late = sorted(seen.get(n, math.inf) - at for n, at in enumerate(written))
    print(f"the live watch saw the events {late[50]:.3f} s (p50), {late[90]:.3f} s (p90), "
          f"{late[-1]:.3f} s (most) after their writes")
    # Beside 200 watches of filters of their own from the first event, whose clients
    # read nothing: 56 of 100 events not seen 5 s after the last write (the live
    # watch's chunk found no room in HELD_BYTES, filled by theirs, and it read by
    # itself, waiting for room); once it found room, its feed read once a second,
    # counted with theirs: 0.56 s (p50), 0.97 s (p90), 1.1 s (most). Now 0.05-0.07 s
    # (p50), 0.1-0.35 s (p90), 0.4-1 s (most); alone, 0.004 s (p50), 0.010 s (most).
    # (0.8: more than twice the worst p90 seen on a shared machine, below the 0.97 of
    # the read spacing alone)
    assert late[90] < 0.8, f"{late[50]:.3f} s (p50), {late[90]:.3f} s (p90)"
    assert late[-1] < 3, f"{late[-1]:.3f} s (most)"
