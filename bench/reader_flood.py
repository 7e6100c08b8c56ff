"""Console list calls beside durable writes: what readers looping ListUserEvents with a
filter that selects nothing (each call reads window after window of the time order
for its budget, LIST_SECONDS, then answers an empty page with a token) cost another
project's durable WriteUserEvent calls (h2load, 8 callers).

    python -m bench.reader_flood [--rev REV --rev .] [--readers 0,2,4,8] [--seconds 10]
                                 [--rounds 2] [--events 100000] [--postgres] [--port P]

A store of 4 projects of `--events` events each (bench.data's events), filled once
and copied for each server; the readers spread over the 4 projects, one channel
each, auth off (as a developer's server runs). For each reader count: writes a
second, server CPU per write (from /proc: the readers' share included), the readers'
calls a second and the slowest call, and how long another caller's first page of a
filter took (the probe's, from another client address) meanwhile. With two revs,
their servers take turns in each round (`--rev BASE --rev .`), so the machine's load
moves both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from footfall.console.v1 import console_pb2, console_pb2_grpc

from bench import data, write
from bench.ab import exported, served_from
from bench.common import Server, footfall, postgres_database
from bench.heavy import small_writes

PROJECTS = [f"projects/flood{k}/locations/global/catalogs/default_catalog" for k in range(4)]
RARE = 'eventType = "purchase-complete"'  # (bench.data's events have none)
COMMON = 'eventType = "search"'  # (a quarter of them)
WRITERS = 8
PROBE_SPACING = 0.5  # seconds between two of the probe's first pages


class Readers:
    """`count` readers, each looping ListUserEvents of RARE on a project of its own
    (in turn over PROJECTS), following the page tokens and starting again at the end."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.calls = 0
        self.failed = 0
        self.slowest = 0.0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(PROJECTS[k % 4],), daemon=True)
                        for k in range(count)]

    def _read(self, parent: str) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = console_pb2_grpc.ConsoleServiceStub(channel)
            token = ""
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    page = stub.ListUserEvents(console_pb2.ListUserEventsRequest(
                        parent=parent, filter=RARE, page_size=100, page_token=token), timeout=60)
                    token = page.next_page_token
                    self.calls += 1
                except grpc.RpcError:
                    self.failed += 1
                    token = ""
                    time.sleep(0.1)
                self.slowest = max(self.slowest, time.perf_counter() - began)

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(70)


class Probe:
    """Another caller (from ::1, where the readers call from 127.0.0.1: with auth off,
    a client address of its own) asking the first page of COMMON every PROBE_SPACING:
    how long each took."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.millis: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with grpc.insecure_channel(f"[::1]:{self.port}") as channel:
            stub = console_pb2_grpc.ConsoleServiceStub(channel)
            while not self.stop.wait(PROBE_SPACING):
                began = time.perf_counter()
                stub.ListUserEvents(console_pb2.ListUserEventsRequest(
                    parent=PROJECTS[0], filter=COMMON, page_size=50), timeout=60)
                self.millis.append((time.perf_counter() - began) * 1000)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(70)


def measured(server: Server, readers: int, seconds: float) -> dict[str, Any]:
    frame = write.frame_file()
    try:
        with Readers(server.port, readers) as reading, Probe(server.port) as probe:
            time.sleep(1.0)  # (the readers under way)
            calls, before = reading.calls, server.cpu_seconds()
            loads = small_writes(server.port, frame, WRITERS, seconds)
            cpu = server.cpu_seconds() - before
            calls = reading.calls - calls
    finally:
        frame.unlink()
    return {"readers": readers, "writes_per_s": loads["per_second"],
            "write_p99_ms": loads["p99_ms"], "non_200": loads["non_200"],
            "server_cpu_us_per_write": round(cpu / max(loads["writes"], 1) * 1e6),
            "lists_per_s": round(calls / seconds, 1), "list_failed": reading.failed,
            "list_slowest_s": round(reading.slowest, 2),
            "probe_median_ms": round(statistics.median(probe.millis or [0.0]), 1),
            "probe_max_ms": round(max(probe.millis or [0.0]), 1)}


@contextlib.contextmanager
def filled(events: int, postgres: bool) -> Iterator[str]:
    """The store the servers copy: a SQLite file (its path), or a PostgreSQL database
    (its URL: the servers share it, each writing its own events beside)."""
    if postgres:
        with postgres_database("h1_reader_flood") as url:
            for parent in PROJECTS:
                data.fill_store(url, parent, events)
            yield url
        return
    folder = data.temp_dir("footfall-reader-flood-")
    try:
        path = folder / "template.db"
        for parent in PROJECTS:
            data.fill_store(f"sqlite:///{path}", parent, events)
        yield str(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def server_of(rev: str | None, template: str, port: int) -> Iterator[Server]:
    with contextlib.ExitStack() as stack:
        tree = stack.enter_context(exported(rev)) if rev else None
        if template.startswith("postgresql://"):
            url = template
        else:
            folder = Path(tempfile.mkdtemp(prefix="footfall-reader-flood-"))
            stack.callback(shutil.rmtree, folder, True)
            shutil.copy(template, folder / "events.db")
            url = f"sqlite:///{folder / 'events.db'}"
        with served_from(tree):
            # (on every address: the probe calls from ::1)
            server = stack.enter_context(footfall(url, "--host", "::",
                                                  *(("--port", str(port)) if port else ())))
        yield server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rev", action="append", default=[],
                        help="a commit to measure (again: in turns); '.' or none: this checkout")
    parser.add_argument("--readers", default="0,2,4,8")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--events", type=int, default=100_000, help="of each project")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="the servers' gRPC port (0: any)")
    args = parser.parse_args()
    revs = [None if rev == "." else rev for rev in args.rev] or [None]
    counts = [int(n) for n in args.readers.split(",")]
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)
    with filled(args.events, args.postgres) as template:
        for round_ in range(args.rounds):
            for rev in revs if round_ % 2 == 0 else revs[::-1]:
                with server_of(rev, template, args.port) as server:
                    measured(server, 0, 2.0)  # warm-up
                    for readers in counts:
                        result = measured(server, readers, args.seconds)
                        print(json.dumps({"round": round_, "rev": rev or "checkout",
                                          "store": "postgres" if args.postgres else "sqlite",
                                          "load": round(os.getloadavg()[0], 1), **result}),
                              flush=True)


if __name__ == "__main__":
    sys.exit(main())
