"""Console list calls beside durable writes: what readers looping ListUserEvents with a
filter that selects nothing (each call reads window after window of the time order
for its budget, LIST_SECONDS, then answers an empty page with a token) cost another
project's durable WriteUserEvent calls (h2load, 8 callers).

    python -m bench.reader_flood [--rev REV --rev .] [--readers 0,2,4,8] [--seconds 10]
                                 [--rounds 2] [--events 100000] [--postgres] [--port P]
                                 [--insights | --counts | --lone] [--no-trickle]
                                 [--import EVENTS]
    python -m bench.reader_flood --in-flight 4,500 --calls counts [--filter F]
                                 [--template DB | --postgres-url URL]

--insights: the readers loop RunFunnel instead (FUNNEL: 10 steps by visitor, BY_ITEM,
over their project's `--events`: about 2 s of CPU each over 200,000), as an analyst's
script would. --lone: no writes and no readers but one caller, alone on a quiet
server, searching RARE over one project of `--events` from its first page to its last
(the console's walk to a rare type): its calls, seconds and the server's CPU.
--counts: the readers loop CountUserEvents of sessionId = "" (which decodes every
event of their project). --import N: no writes but an ImportUserEvents of N events
(4 files) into a fifth project, started 1 s after the readers: its seconds and the
server's CPU meanwhile.

--in-flight N,M --calls KIND: one reader (one channel, one client address: one party
of the budgets) keeps N (then M, in turns) calls in flight over PROJECTS[0], KIND
`counts` (CountUserEvents of NO_SESSION), `lists` (ListUserEvents of RARE, a page
read), `session-lists` (ListUserEvents of LIST_SESSION, a long read) or
`watch-rejections` / `watch-client-events` (each call a watch opened and cancelled
once its headers come: churn); beside it, 8 callers' durable writes to another
project, and the server's CPU split by thread (named for /proc by THREAD_NAMES): the
long and page reads' threads' CPU a second is what the budgets of reading time
(--list-read-ms each) bound. --template: a SQLite file filled beforehand (copied for
each server); --postgres-url: a database filled beforehand (the servers share it).

A store of 4 projects of `--events` events each (bench.data's events), filled once
and copied for each server; the readers spread over the 4 projects, one channel
each, auth off (as a developer's server runs). For each reader count: writes a
second, server CPU per write (from /proc: the readers' share included), the readers'
calls a second and the slowest call, and how long another caller's first page of a
filter took (the probe's, from another client address) meanwhile; a trickle of writes
runs from before the readers start (see Trickle; not with --no-trickle). With two revs,
their servers take turns in each round (`--rev BASE --rev .`), so the machine's load
moves both alike.
"""

from __future__ import annotations

import argparse
import asyncio
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
from footfall.insights.v1 import insights_pb2, insights_pb2_grpc
from footfall.retail.v2 import (
    import_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.protobuf import json_format

from bench import data, write
from bench.ab import exported, served_from
from bench.common import Server, footfall, postgres_database, wait_done
from bench.heavy import small_writes

PROJECTS = [f"projects/flood{k}/locations/global/catalogs/default_catalog" for k in range(4)]
RARE = 'eventType = "purchase-complete"'  # (bench.data's events have none)
COMMON = 'eventType = "search"'  # (a quarter of them)
NO_SESSION = 'sessionId = ""'  # (CountUserEvents decodes every event of the catalog)
WRITERS = 8
PROBE_SPACING = 0.5  # seconds between two of the probe's first pages
TRICKLE_SPACING = 0.25  # seconds between two of the trickle's writes
# h6's funnel (a59988d): the steps go round bench.data's types.
FUNNEL = [insights_pb2.FunnelStep(event_type=data.TYPES[k % len(data.TYPES)]) for k in range(10)]


def funnel_of(parent: str) -> insights_pb2.RunFunnelRequest:
    return insights_pb2.RunFunnelRequest(parent=parent, steps=FUNNEL,
                                         count_by=insights_pb2.VISITOR,
                                         breakdown=insights_pb2.BY_ITEM)


class Readers:
    """`count` readers, each looping ListUserEvents of RARE on a project of its own
    (in turn over PROJECTS), following the page tokens and starting again at the end;
    or (`insights`) RunFunnel of FUNNEL; or (`counts`) CountUserEvents of NO_SESSION."""

    def __init__(self, port: int, count: int, insights: bool = False,
                 counts: bool = False) -> None:
        self.port = port
        self.insights = insights
        self.counts = counts
        self.calls = 0
        self.failed = 0
        self.slowest = 0.0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(PROJECTS[k % 4],), daemon=True)
                        for k in range(count)]

    def _read(self, parent: str) -> None:
        if self.insights:
            self._funnels(parent)
            return
        if self.counts:
            self._counts(parent)
            return
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

    def _counts(self, parent: str) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = console_pb2_grpc.ConsoleServiceStub(channel)
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    stub.CountUserEvents(console_pb2.CountUserEventsRequest(
                        parent=parent, filter=NO_SESSION), timeout=60)
                    self.calls += 1
                except grpc.RpcError:
                    self.failed += 1
                    time.sleep(0.1)
                self.slowest = max(self.slowest, time.perf_counter() - began)

    def _funnels(self, parent: str) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = insights_pb2_grpc.InsightsServiceStub(channel)
            while not self.stop.is_set():
                began = time.perf_counter()
                call = stub.RunFunnel.future(funnel_of(parent), timeout=120)
                # (cancelled at the stop: a funnel waiting for its turn would hold the
                # next reader count's measure back for its turn and its second)
                while not call.done() and not self.stop.wait(0.05):
                    pass
                if not call.done():
                    call.cancel()
                    return
                if call.exception() is None:
                    self.calls += 1
                else:
                    self.failed += 1
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


class Trickle:
    """A write every TRICKLE_SPACING from before the readers start: since 5982cbd the
    reads are paced only while events are written (within 2 s), and a funnel let go
    unpaced in a quiet spell (the 3 s between two reader counts) runs its seconds
    beside the writes that come after; this measures the writes' steady state."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        request = user_event_service_pb2.WriteUserEventRequest(
            parent=write.PARENT,
            user_event=json_format.ParseDict(write.EVENT, user_event_pb2.UserEvent()))
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)
            while not self.stop.wait(TRICKLE_SPACING):
                stub.WriteUserEvent(request, timeout=60)

    def __enter__(self) -> Trickle:
        self.thread.start()
        time.sleep(2 * TRICKLE_SPACING)  # (a write admitted)
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(70)


def measured(server: Server, readers: int, seconds: float, insights: bool = False,
             trickle: bool = True, counts: bool = False) -> dict[str, Any]:
    frame = write.frame_file()
    try:
        with Trickle(server.port) if trickle else contextlib.nullcontext(), \
                Readers(server.port, readers, insights, counts) as reading, \
                Probe(server.port) as probe:
            time.sleep(1.0)  # (the readers under way)
            calls, before = reading.calls, server.cpu_seconds()
            loads = small_writes(server.port, frame, WRITERS, seconds)
            cpu = server.cpu_seconds() - before
            calls = reading.calls - calls
    finally:
        frame.unlink()
    kind = "funnels" if insights else "counts" if counts else "lists"
    return {"readers": readers, "writes_per_s": loads["per_second"],
            "write_p50_ms": loads["p50_ms"], "write_p99_ms": loads["p99_ms"],
            "non_200": loads["non_200"],
            "server_cpu_us_per_write": round(cpu / max(loads["writes"], 1) * 1e6),
            f"{kind}_per_s": round(calls / seconds, 2), f"{kind}_failed": reading.failed,
            f"{kind}_slowest_s": round(reading.slowest, 2),
            "probe_median_ms": round(statistics.median(probe.millis or [0.0]), 1),
            "probe_max_ms": round(max(probe.millis or [0.0]), 1)}


LIST_SESSION = 'sessionId = "session-none"'  # (read window by window: a long read)
IN_FLIGHT_KINDS = ("counts", "lists", "session-lists", "watch-rejections", "watch-client-events")
# Imported first by the server (on PYTHONPATH: see thread_names): each thread of the
# server named in /proc as it is in Python, less "footfall-" (15 characters), so that
# its CPU can be told apart (Python 3.11 names no native thread).
THREAD_NAMES = """
import ctypes, threading
_prctl = ctypes.CDLL(None).prctl
_inner = threading.Thread._bootstrap_inner
def _named(self):
    try:
        _prctl(15, self.name.removeprefix("footfall-").encode()[:15], 0, 0, 0)
    except Exception:
        pass
    _inner(self)
threading.Thread._bootstrap_inner = _named
"""


@contextlib.contextmanager
def thread_names() -> Iterator[None]:
    """While the block runs, servers started have their threads named (THREAD_NAMES),
    whatever PYTHONPATH names besides (served_from's tree)."""
    folder = Path(tempfile.mkdtemp(prefix="footfall-thread-names-"))
    (folder / "sitecustomize.py").write_text(THREAD_NAMES)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), before) if p)
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
        shutil.rmtree(folder, ignore_errors=True)


def threads_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each kind of thread of process `pid` (its name less the number of
    a pool's thread), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    kinds: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = (task / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        kind = name.rstrip("0123456789").rstrip("_") or name
        kinds[kind] = kinds.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return kinds


def database_cpu(url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving the database of `url` (by pid),
    from /proc ({} for SQLite): the database's own work, which no budget of the
    server's threads' CPU counts."""
    if not url.startswith("postgresql:"):
        return {}
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(url, autocommit=True) as connection:
        pids = [row[0] for row in connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,))]
    tick = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    return cpu


class InFlight:
    """One reader keeping `count` calls of `kind` (IN_FLIGHT_KINDS) in flight over
    PROJECTS[0], on one channel: its calls answered (watches: opened) and failed."""

    def __init__(self, port: int, count: int, kind: str, filter_: str | None = None) -> None:
        self.port, self.count, self.kind = port, count, kind
        self.filter = filter_ if filter_ is not None else {
            "counts": NO_SESSION, "lists": RARE, "session-lists": LIST_SESSION}.get(kind, "")
        self.calls = 0
        self.failed: dict[str, int] = {}
        self.stop = threading.Event()
        self.running: Any = None

    async def _run(self) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = console_pb2_grpc.ConsoleServiceStub(channel)
            callers = [asyncio.ensure_future(self._call(stub)) for _ in range(self.count)]
            while not self.stop.is_set():
                await asyncio.sleep(0.05)
            for caller in callers:
                caller.cancel()
            await asyncio.gather(*callers, return_exceptions=True)

    async def _call(self, stub: Any) -> None:
        token = ""
        while True:
            try:
                if self.kind == "counts":
                    await stub.CountUserEvents(console_pb2.CountUserEventsRequest(
                        parent=PROJECTS[0], filter=self.filter), timeout=120)
                elif self.kind in ("lists", "session-lists"):
                    page = await stub.ListUserEvents(console_pb2.ListUserEventsRequest(
                        parent=PROJECTS[0], filter=self.filter, page_size=100,
                        page_token=token), timeout=120)
                    token = page.next_page_token
                else:
                    project = PROJECTS[0].split("/locations/")[0]
                    if self.kind == "watch-rejections":
                        call = stub.WatchRejections(console_pb2.WatchRejectionsRequest(
                            parent=project), timeout=120)
                    else:
                        call = stub.WatchClientEvents(console_pb2.WatchClientEventsRequest(
                            parent=project), timeout=120)
                    try:
                        # (the headers come once the watch is open, its position fixed;
                        # a refusal ends the call at once, its status then raised)
                        await call.initial_metadata()
                        if call.done():
                            await call
                    finally:
                        call.cancel()
                self.calls += 1
            except grpc.aio.AioRpcError as error:
                name = error.code().name
                self.failed[name] = self.failed.get(name, 0) + 1
                token = ""
                await asyncio.sleep(0.1)

    def __enter__(self) -> InFlight:
        self.running = asyncio.run_coroutine_threadsafe(self._run(), _client_loop())
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.running.result(130)


_CLIENT_LOOP: list[asyncio.AbstractEventLoop] = []


def _client_loop() -> asyncio.AbstractEventLoop:
    """The one loop, on a thread of its own, of every InFlight's calls: grpc.aio's
    poller keeps the first loop it served (a second asyncio.run had it call a closed one)."""
    if not _CLIENT_LOOP:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        _CLIENT_LOOP.append(loop)
    return _CLIENT_LOOP[0]


def measured_in_flight(server: Server, count: int, kind: str, seconds: float,
                       filter_: str | None = None) -> dict[str, Any]:
    """Durable writes beside `count` calls of `kind` in flight (InFlight): the writes a
    second, the server's CPU per write, the reader's calls a second, and the CPU a
    second of each kind of the server's threads (loop, long-read, page-read, store...)."""
    frame = write.frame_file()
    try:
        with Trickle(server.port), InFlight(server.port, count, kind, filter_) as reading:
            time.sleep(3.0)  # (the calls under way, the budget's spell past)
            calls, before = reading.calls, server.cpu_seconds()
            database = database_cpu(server.store_url)
            threads, began = threads_cpu(server.process.pid), time.perf_counter()
            loads = small_writes(server.port, frame, WRITERS, seconds)
            took = time.perf_counter() - began
            cpu = server.cpu_seconds() - before
            after = threads_cpu(server.process.pid)
            database_after = database_cpu(server.store_url)
            calls = reading.calls - calls
    finally:
        frame.unlink()
    split = {kind_: round((after.get(kind_, 0.0) - threads.get(kind_, 0.0)) / took, 3)
             for kind_ in sorted(after)}
    return {"in_flight": count, "kind": kind, "filter": reading.filter,
            "writes_per_s": loads["per_second"],
            "write_p50_ms": loads["p50_ms"], "write_p99_ms": loads["p99_ms"],
            "write_max_ms": loads["max_ms"], "non_200": loads["non_200"],
            "server_cpu_per_s": round(cpu / took, 3),
            "server_cpu_us_per_write": round(cpu / max(loads["writes"], 1) * 1e6),
            "calls_per_s": round(calls / took, 2), "failed": reading.failed,
            "database_cpu_per_s": round(sum(cpu - database.get(pid, 0.0) for pid, cpu
                                            in database_after.items()) / took, 3),
            "thread_cpu_per_s": {k: v for k, v in split.items() if v >= 0.005}}


IMPORTED = "projects/floodimport/locations/global/catalogs/default_catalog"


def imported_beside(server: Server, readers: int, events: int, insights: bool = False
                    ) -> dict[str, Any]:
    """An ImportUserEvents of `events` (bench.data's, 4 files) while `readers` read,
    nothing else written: how long it took, the server's CPU meanwhile, the readers'
    calls a second."""
    folder = server.workdir / "gcs" / "flood" / f"import-{readers}"
    data.write_files(folder, events, 4)
    request = import_config_pb2.ImportUserEventsRequest(parent=IMPORTED)
    request.input_config.gcs_source.input_uris.append(f"gs://flood/import-{readers}/*.json")
    with Readers(server.port, readers, insights) as reading, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        time.sleep(1.0)  # (the readers under way)
        stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        calls, cpu, began = reading.calls, server.cpu_seconds(), time.perf_counter()
        done = wait_done(channel, stub.ImportUserEvents(request, timeout=60))
        took = time.perf_counter() - began
        cpu = server.cpu_seconds() - cpu
        calls = reading.calls - calls
    metadata = import_config_pb2.ImportMetadata()
    done.metadata.Unpack(metadata)
    kind = "funnels" if insights else "lists"
    return {"readers": readers, "imported": metadata.success_count,
            "import_seconds": round(took, 2), "events_per_s": round(events / took),
            "server_cpu_s": round(cpu, 2), f"{kind}_per_s": round(calls / took, 2)}


def lone_search(server: Server) -> dict[str, Any]:
    """One caller's walk of RARE over PROJECTS[0], first page to last, nothing else
    asked of the server (nor written: the pages' budget holds only while events are)."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = console_pb2_grpc.ConsoleServiceStub(channel)
        calls, found, token = 0, 0, ""
        cpu, began = server.cpu_seconds(), time.perf_counter()
        while True:
            page = stub.ListUserEvents(console_pb2.ListUserEventsRequest(
                parent=PROJECTS[0], filter=RARE, page_size=100, page_token=token), timeout=60)
            calls, found, token = calls + 1, found + len(page.user_events), page.next_page_token
            if not token:
                break
        took = time.perf_counter() - began
    return {"calls": calls, "found": found, "seconds": round(took, 2),
            "calls_per_s": round(calls / took, 2),
            "server_cpu_s": round(server.cpu_seconds() - cpu, 2)}


@contextlib.contextmanager
def filled(events: int, postgres: bool, projects: list[str]) -> Iterator[str]:
    """The store the servers copy: a SQLite file (its path), or a PostgreSQL database
    (its URL: the servers share it, each writing its own events beside)."""
    if postgres:
        with postgres_database("h1_reader_flood") as url:
            for parent in projects:
                data.fill_store(url, parent, events)
            yield url
        return
    folder = data.temp_dir("footfall-reader-flood-")
    try:
        path = folder / "template.db"
        for parent in projects:
            data.fill_store(f"sqlite:///{path}", parent, events)
        yield str(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def server_of(rev: str | None, template: str, port: int, named: bool = False
              ) -> Iterator[Server]:
    """A server of `rev` on a copy of `template` (`named`: its threads named, see
    THREAD_NAMES)."""
    with contextlib.ExitStack() as stack:
        tree = stack.enter_context(exported(rev)) if rev else None
        if template.startswith("postgresql://"):
            url = template
        else:
            folder = Path(tempfile.mkdtemp(prefix="footfall-reader-flood-"))
            stack.callback(shutil.rmtree, folder, True)
            shutil.copy(template, folder / "events.db")
            url = f"sqlite:///{folder / 'events.db'}"
        with served_from(tree), thread_names() if named else contextlib.nullcontext():
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
    parser.add_argument("--no-trickle", action="store_true",
                        help="no writes before h2load's: the readers start in a quiet spell")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--insights", action="store_true", help="the readers loop RunFunnel")
    mode.add_argument("--counts", action="store_true",
                      help='the readers loop CountUserEvents of sessionId = ""')
    mode.add_argument("--lone", action="store_true",
                      help="one search of RARE alone on a quiet server (one project)")
    parser.add_argument("--in-flight", default="",
                        help="calls one reader keeps in flight, in turns (e.g. 4,500)")
    parser.add_argument("--calls", choices=IN_FLIGHT_KINDS, default="counts",
                        help="what --in-flight's calls are")
    parser.add_argument("--filter", default=None,
                        help="the filter of --in-flight's counts and lists (else each kind's)")
    parser.add_argument("--template", default="", help="a SQLite store filled beforehand")
    parser.add_argument("--postgres-url", default="", help="a database filled beforehand")
    parser.add_argument("--import", dest="import_events", type=int, default=0,
                        help="no writes but an import of this many events beside the readers")
    args = parser.parse_args()
    revs = [None if rev == "." else rev for rev in args.rev] or [None]
    counts = [int(n) for n in args.readers.split(",")]
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)
    if args.in_flight:
        in_flight(args, revs)
        return
    with filled(args.events, args.postgres, PROJECTS[:1] if args.lone else PROJECTS) as template:
        for round_ in range(args.rounds):
            for rev in revs if round_ % 2 == 0 else revs[::-1]:
                with server_of(rev, template, args.port) as server:
                    head = {"round": round_, "rev": rev or "checkout",
                            "store": "postgres" if args.postgres else "sqlite"}
                    if args.lone:
                        print(json.dumps({**head, "load": round(os.getloadavg()[0], 1),
                                          **lone_search(server)}), flush=True)
                        continue
                    if args.import_events:
                        for readers in counts:
                            print(json.dumps({**head, "load": round(os.getloadavg()[0], 1),
                                              **imported_beside(server, readers,
                                                                args.import_events,
                                                                args.insights)}), flush=True)
                            time.sleep(3.0)  # (the reads under way end)
                        continue
                    measured(server, 0, 2.0)  # warm-up
                    for readers in counts:
                        result = measured(server, readers, args.seconds, args.insights,
                                          not args.no_trickle, args.counts)
                        if args.insights or args.counts:
                            time.sleep(3.0)  # (the funnel each reader had under way ends)
                        print(json.dumps({**head, "load": round(os.getloadavg()[0], 1),
                                          **result}), flush=True)


def in_flight(args: argparse.Namespace, revs: list[str | None]) -> None:
    """--in-flight: each count of calls in turn, each rev in turn, for --rounds."""
    template = args.postgres_url or args.template
    with contextlib.ExitStack() as stack:
        if not template:
            template = stack.enter_context(filled(args.events, args.postgres, PROJECTS[:1]))
        for round_ in range(args.rounds):
            for rev in revs if round_ % 2 == 0 else revs[::-1]:
                with server_of(rev, template, args.port, named=True) as server:
                    head = {"round": round_, "rev": rev or "checkout",
                            "store": "postgres" if template.startswith("postgresql:")
                            else "sqlite"}
                    measured(server, 0, 2.0)  # warm-up
                    for count in (int(n) for n in args.in_flight.split(",")):
                        result = measured_in_flight(server, count, args.calls, args.seconds,
                                                    args.filter)
                        print(json.dumps({**head, "load": round(os.getloadavg()[0], 1),
                                          **result}), flush=True)
                        time.sleep(3.0)  # (the reads under way end)


if __name__ == "__main__":
    sys.exit(main())
