"""Watches whose clients never read, each of a filter of its own (a feed of its own),
while large events are written: what the server holds stays bounded (feed.HELD_BYTES),
where each such watch held 20 to 85 MB and a few hundred of them gigabytes."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2, user_event_service_pb2_grpc
from google.protobuf import json_format

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
WATCHES = 40
EVENTS = 60
TEXT = "t" * 250  # 400 of them in each of 10 attributes: an event of about 1 MB


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found is not None
    return int(found[1]) / 1024


class Served(NamedTuple):
    pid: int
    port: int
    log: list[str]  # its lines so far


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    """A `footfall serve` on a memory store."""
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
         "--store", "memory://"], cwd=tmp_path, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    reader = threading.Thread(target=lambda: [(lines.put(line), log.append(line))
                                              for line in process.stderr or ()])
    reader.start()
    try:
        while (ready := re.search(r"serving gRPC on 127\.0\.0\.1:(\d+)",
                                  lines.get(timeout=60))) is None:
            pass
        yield Served(process.pid, int(ready[1]), log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join()


def big_event(n: int) -> user_event_pb2.UserEvent:
    return json_format.ParseDict({
        "eventType": "home-page-view", "visitorId": f"v-{n}",
        "attributes": {f"a{k}": {"text": [TEXT] * 400} for k in range(10)}},
        user_event_pb2.UserEvent())


@pytest.mark.parametrize("rpc", ["WatchUserEventBatches", "WatchUserEvents"])
def test_watches_that_never_read_hold_a_bounded_number_of_bytes(
        server: Served, rpc: str) -> None:
    pid, port = server.pid, server.port
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        console = console_pb2_grpc.ConsoleServiceStub(channel)
        writes = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        before = rss_mib(pid)
        # each of a filter of its own, so that no two share a feed; none is ever read
        watches = [getattr(console, rpc)(console_pb2.WatchUserEventsRequest(
            parent=CATALOG, filter=f'eventTime > "2020-01-01T00:00:00.{i:06d}Z"'))
            for i in range(WATCHES)]
        most = before
        for n in range(EVENTS):
            writes.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=CATALOG, user_event=big_event(n)))
            most = max(most, rss_mib(pid))
        for watch in watches:
            watch.cancel()
        time.sleep(1)  # (the server meets each cancel as it writes)
    # A caller gone while a message was written to it ends its watch quietly: each was
    # an ERROR with a 17-line traceback.
    assert not [line for line in server.log if " ERROR " in line or "Traceback" in line], \
        "".join(server.log)
    # Unbounded, the 40 watches held 40 x (a queued read and a message being sent) of
    # these events: gigabytes. Bounded: HELD_BYTES (32 MiB) of rows and their copies, and
    # what grpc holds of each watch's message being sent.
    print(f"{rpc}: {most - before:.0f} MiB more with {WATCHES} watches")
    assert most - before < 1024, f"{most - before:.0f} MiB more with {WATCHES} watches"


def test_many_feeds_of_small_events_hold_no_read_beside_the_bound(server: Served) -> None:
    # Each feed kept its last read (its rows and their bytes) while it waited for the
    # next, outside HELD_BYTES: 200 watches of batches, each of a filter of its own,
    # whose clients read nothing, while 4 writers sent events of about 2 kB, held 350
    # to 680 MiB more within 10 s (bounded: about 140).
    pid, port = server.pid, server.port
    event = json_format.ParseDict({
        "eventType": "home-page-view", "visitorId": "v-0",
        "attributes": {f"a{k}": {"text": ["x" * 100] * 2} for k in range(10)}},
        user_event_pb2.UserEvent())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        console = console_pb2_grpc.ConsoleServiceStub(channel)
        watches = [console.WatchUserEventBatches(console_pb2.WatchUserEventsRequest(
            parent=CATALOG, filter=f'eventTime > "2020-01-01T00:00:00.{i:06d}Z"'))
            for i in range(200)]
        time.sleep(2)  # (every watch open, its feed reading)
        before = rss_mib(pid)
        stop = time.monotonic() + 10

        def writer() -> None:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as own:
                writes = user_event_service_pb2_grpc.UserEventServiceStub(own)
                while time.monotonic() < stop:
                    writes.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                        parent=CATALOG, user_event=event))

        writers = [threading.Thread(target=writer) for _ in range(4)]
        for thread in writers:
            thread.start()
        most = before
        while time.monotonic() < stop:
            time.sleep(0.25)
            most = max(most, rss_mib(pid))
        for thread in writers:
            thread.join()
        for watch in watches:
            watch.cancel()
    print(f"{most - before:.0f} MiB more with 200 feeds")
    # HELD_BYTES (32 MiB) of rows, their bytes, and grpc's copies of the messages sent
    assert most - before < 300, f"{most - before:.0f} MiB more with 200 feeds"
