"""Watch streams (issue 13): how soon a watcher sees an acknowledged write, and
what open watches cost the writers.

- latency: K watchers (grpc.aio WatchUserEvents streams) and one writer doing
  durable WriteUserEvent at a steady rate, all on one loop in this process; per
  event and watcher, the time from the write's answer to its arrival.
- watchers: h2load durable writes (16 and 64 callers) with no watch open and with
  N open on the catalog being written, a fresh server per rep, the two
  interleaved. The watchers run in a process of their own and count what each
  receives: every one must get every write. Server CPU per write from /proc beside
  each rate, and the watchers' process's own (it shares the cores). That process
  is bench/watchers.cc compiled (`client="cpp"`, when grpc++ is installed: it
  costs the shared cores far less than grpc.aio receiving the same bytes) or
  `python -m bench.watch` (`client="python"`).
Both with WatchUserEvents (a message per event) and WatchUserEventBatches (the
events stored since the last message, at most a message every 50 ms).
- distinct: durable writes of 2.3 KB events (h2load, 4 callers, for a fixed time)
  with 0, 200, 400 WatchUserEventBatches streams open, each of a filter of its own
  that selects every event (a feed each: each reads every row written), their
  clients taking the first message and then nothing (`reading` "first"), or
  taking every message ("all": then each must get every write). A fresh server
  for each count; its CPU per write from /proc beside each rate.
  `python -m bench.watch distinct [COUNTS...] [--reading all] [--seconds S] [-- FLAGS]`;
  `... distinct [COUNTS...] --against REV [--reps N]`: REV's tree and this
  checkout's in one run (`distinct_paired`). `--other`: meanwhile another
  project's watch, and a write to that project every half second (each once the
  last has come): how long after its answer each came (`other_s`), with one
  project's watches of distinct filters holding the budget of reading time.
- sends: grpc.aio's own cost of a watch's message, without Footfall: a bare
  grpc.aio server on uvloop whose WatchUserEventBatches streams each send a
  message of the same EVENTS bench events (as stored: about 260 bytes each) once
  a pace, woken a slice at a time over a quarter of it as the feeds wake theirs,
  to the compiled watchers. The server's CPU a message (this process alone, from
  its clock of CPU time) and the watchers', per message size.
  `python -m bench.watch sends [EVENTS...] [--watchers N] [--seconds S]`.
- fixed: what N batch watchers (the compiled client) cost at a fixed rate of durable
  writes (h2load --rps: the same writes a second with and without them, whatever
  the machine's other work lets the server reach): the server's CPU a second watched
  less none, the watchers' process's own, and the writes' p50/p99, a fresh server
  each, none and watched in turn; with `--against REV` REV's tree and this
  checkout's in alternating order. On a machine shared with other work the rates
  and CPU a write at 16 callers moved ±30% between runs of one tree (the watchers'
  cost is about fixed a second, so a write's share of it follows the rate reached);
  a second's CPU at one rate does not.
  `python -m bench.watch fixed [--rate R] [--callers C] [--seconds S] [--watchers N]
  [--reps N] [--against REV]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import uvloop
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2, user_event_service_pb2_grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from bench import write
from bench.common import (
    PARENT,
    ROOT,
    cpu_seconds,
    footfall,
    grpc_frame,
    h2load,
    h2load_path,
    percentile,
    summary,
)
from server.console.feed import WAKE_SLICE, WAKE_SPREAD
from server.store.packed import varint

WATCH = "/footfall.console.v1.ConsoleService/WatchUserEvents"
WATCH_BATCHES = "/footfall.console.v1.ConsoleService/WatchUserEventBatches"


def _event(n: int) -> user_event_service_pb2.WriteUserEventRequest:
    event = json_format.ParseDict(write.EVENT, user_event_pb2.UserEvent())
    event.session_id = f"w-{n}"  # how a watcher knows which write it got
    return user_event_service_pb2.WriteUserEventRequest(parent=PARENT, user_event=event)


async def _latency(port: int, watchers: int, rate: float, events: int,
                   batches: bool) -> list[float]:
    target = f"127.0.0.1:{port}"
    arrivals: list[dict[int, float]] = [{} for _ in range(watchers)]

    async def watch(seen: dict[int, float], stub: Any) -> None:
        # after_id 0: everything stored, so no write can slip in before the stream opens
        request = console_pb2.WatchUserEventsRequest(parent=PARENT, after_id=0)
        if batches:
            async for batch in stub.WatchUserEventBatches(request):
                now = time.perf_counter()
                for stored in batch.user_events:
                    seen[int(stored.user_event.session_id[2:])] = now
            return
        async for stored in stub.WatchUserEvents(request):
            seen[int(stored.user_event.session_id[2:])] = time.perf_counter()

    async with grpc.aio.insecure_channel(target) as watch_channel, \
            grpc.aio.insecure_channel(target) as write_channel:
        stub = console_pb2_grpc.ConsoleServiceStub(watch_channel)
        tasks = [asyncio.create_task(watch(seen, stub)) for seen in arrivals]
        writer = user_event_service_pb2_grpc.UserEventServiceStub(write_channel)
        try:
            await writer.WriteUserEvent(_event(-1))  # warm-up: every stream must see it
            await _until(lambda: all(-1 in seen for seen in arrivals), 30)
            answered: dict[int, float] = {}
            start = time.perf_counter()
            for n in range(events):
                await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
                await writer.WriteUserEvent(_event(n))
                answered[n] = time.perf_counter()
            await _until(lambda: all(len(seen) > events for seen in arrivals), 60)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    # an arrival before the write's answer counts as a negative latency, not as none
    return sorted((seen[n] - at) * 1000 for seen in arrivals for n, at in answered.items())


async def _until(done: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("the watchers did not receive every write")
        await asyncio.sleep(0.01)


def latency(watchers: int, rate: float, events: int, batches: bool = False) -> dict[str, Any]:
    with footfall() as server:
        began = server.cpu_seconds()
        millis = asyncio.run(_latency(server.port, watchers, rate, events, batches))
        cpu_us = (server.cpu_seconds() - began) / events * 1e6
    return {"watchers": watchers, "rpc": WATCH_BATCHES if batches else WATCH,
            "writes_per_second": rate, "writes": events,
            "arrivals": len(millis), "p50_ms": percentile(millis, 50),
            "p99_ms": percentile(millis, 99), "max_ms": millis[-1],
            "server_cpu_us_per_write": cpu_us}


CLIENTS = ("cpp", "python")
CPP_SOURCE = Path(__file__).resolve().parent / "watchers.cc"


@functools.cache
def cpp_watchers() -> Path | None:
    """bench/watchers.cc built (-O2) under build/, once per version of it; None
    when this machine has no grpc++ to build it with (`make test-tools` installs it)."""
    from tests.clients import builds  # the C++ client's build: g++ over Debian's grpc++

    digest = hashlib.sha256(CPP_SOURCE.read_bytes()).hexdigest()[:16]
    out = ROOT / "build" / "watchers" / digest
    if (out / "watchers").exists():
        return out / "watchers"
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{digest}-", dir=out.parent))
    try:
        shutil.copy(CPP_SOURCE, staging)
        builds.compile_cpp(staging, ["watchers"], "-O2")
        with contextlib.suppress(OSError):  # another process built it meanwhile
            staging.rename(out)  # whole or not at all: a build cut short is made again
    except builds.Unavailable:
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "watchers"


def default_client() -> str:
    """"cpp" when it builds here, else "python"."""
    return "cpp" if cpp_watchers() is not None else "python"


class Watchers:
    """`count` watch streams in a process of their own, counting what each gets:
    `client` "cpp" (bench/watchers.cc) or "python" (`_serve_counts`), both
    speaking the same lines on stdin and stdout."""

    def __init__(self, port: int, count: int, batches: bool, client: str = "cpp",
                 distinct: bool = False, reading: str = "all") -> None:
        """`distinct`: each stream of a filter of its own (python only: see
        `distinct_filter`); `reading` "first": each takes its first message, then
        nothing (python only)."""
        method = WATCH_BATCHES if batches else WATCH
        if (distinct or reading != "all") and client != "python":
            raise ValueError("distinct filters and clients that stop reading: python only")
        if client == "cpp":
            program = cpp_watchers()
            if program is None:
                raise RuntimeError("the C++ watchers do not build here: no grpc++ "
                                   "(make test-tools installs it)")
            request = console_pb2.WatchUserEventsRequest(parent=PARENT, after_id=0)
            command = [str(program), str(port), str(count), method,
                       request.SerializeToString().hex()]
        elif client == "python":
            command = [sys.executable, "-m", "bench.watch", str(port), str(count), method,
                       "distinct" if distinct else "same", reading]
        else:
            raise ValueError(f"client must be one of {CLIENTS}, got {client!r}")
        self.client = client
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, cwd=ROOT)

    def counts(self) -> list[int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.client} watchers ended ({self.process.wait()})")
        return [int(n) for n in line.split()]

    def wait_for(self, total: int, seconds: float) -> float:
        """Seconds until every watcher got `total` events; RuntimeError if not in time."""
        began = time.monotonic()
        while min(counts := self.counts()) < total:
            if time.monotonic() - began > seconds:
                raise RuntimeError(f"watchers got {min(counts)}..{max(counts)} of {total}")
            time.sleep(0.05)
        if max(counts) != total:
            raise RuntimeError(f"a watcher got {max(counts)} events, {total} were written")
        return time.monotonic() - began

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()  # its end of input: it cancels its streams and ends
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _one_rep(frame: Path, watchers: int, callers: tuple[int, ...],
             requests: int, batches: bool, client: str = "cpp",
             flags: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with footfall(None, *flags) as server:
        group = Watchers(server.port, watchers, batches, client) if watchers else None
        try:
            written = 500
            h2load(server.port, write.PATH, frame, 4, written)  # warm-up
            if group:
                group.wait_for(written, 60)
            for c in callers:
                before = server.cpu_seconds(), group.cpu_seconds() if group else 0.0
                load = h2load(server.port, write.PATH, frame, c, requests)
                cpu = server.cpu_seconds() - before[0]
                watcher_cpu = group.cpu_seconds() - before[1] if group else 0.0
                if load.failed:
                    raise RuntimeError(f"{load.failed} writes failed")
                written += requests
                # how long after the load the slowest watcher had every write
                lag = group.wait_for(written, 120) if group else 0.0
                out[str(c)] = {"per_second": load.per_second, "p99_ms": load.p99_ms,
                               "cpu_us_per_write": cpu / requests * 1e6, "catch_up_s": lag,
                               # the watchers' own process shares the cores
                               "watcher_cpu_us_per_write": watcher_cpu / requests * 1e6}
            out["received_per_watcher"] = written if group else 0
            if write.stored(server) != written:
                raise RuntimeError(f"stored {write.stored(server)}, not {written}")
        finally:
            if group:
                group.close()
    return out


def watchers_cost(watchers: int, callers: tuple[int, ...], requests: int,
                  reps: int, batches: bool = False, client: str | None = None,
                  flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """`client`: the watchers' process, "cpp" or "python" (None: `default_client()`);
    `flags`: the servers' own, with and without watchers."""
    client = client or default_client()
    frame = write.frame_file()
    runs: dict[str, list[dict[str, Any]]] = {"none": [], "watched": []}
    try:
        for _ in range(reps):  # interleaved
            runs["none"].append(_one_rep(frame, 0, callers, requests, batches, flags=flags))
            runs["watched"].append(_one_rep(frame, watchers, callers, requests, batches,
                                            client, flags))
    finally:
        frame.unlink()
    out: dict[str, Any] = {"watchers": watchers, "rpc": WATCH_BATCHES if batches else WATCH,
                           "client": client, "flags": list(flags),
                           "received_per_watcher": runs["watched"][0]["received_per_watcher"]}
    for c in map(str, callers):
        figures = {name: {key: summary([r[c][key] for r in reps_])
                          for key in ("per_second", "p99_ms", "cpu_us_per_write", "catch_up_s",
                                      "watcher_cpu_us_per_write")}
                   for name, reps_ in runs.items()}
        none, watched = figures["none"], figures["watched"]
        out[c] = figures | {
            "throughput_ratio": watched["per_second"]["median"] / none["per_second"]["median"],
            "p99_ratio": watched["p99_ms"]["median"] / none["p99_ms"]["median"],
            "cpu_ratio": watched["cpu_us_per_write"]["median"]
            / (none["cpu_us_per_write"]["median"] or float("nan"))}
    return out


def paired(rev: str, watchers: int, callers: tuple[int, ...], requests: int,
           reps: int) -> dict[str, Any]:
    """What `watchers` batch watchers (the compiled client) cost durable writes under
    `rev`'s tree ("before") and this checkout's ("after") in one run: in each rep
    each tree runs `_one_rep` with none and then with the watchers, the trees'
    order alternating; the ratios (watched ÷ none) per rep and their medians."""
    from bench.ab import exported, served_from

    frame = write.frame_file()
    out: dict[str, Any] = {"rev": rev, "watchers": watchers, "before": [], "after": []}
    try:
        with exported(rev) as tree:
            for rep in range(reps):
                for side in ("before", "after") if rep % 2 == 0 else ("after", "before"):
                    with served_from(tree if side == "before" else None):
                        none = _one_rep(frame, 0, callers, requests, True)
                        watched = _one_rep(frame, watchers, callers, requests, True, "cpp")
                    out[side].append({str(c): {
                        "throughput_ratio": watched[str(c)]["per_second"]
                        / none[str(c)]["per_second"],
                        "p99_ratio": watched[str(c)]["p99_ms"] / none[str(c)]["p99_ms"],
                        "cpu_ratio": watched[str(c)]["cpu_us_per_write"]
                        / none[str(c)]["cpu_us_per_write"],
                        "none_per_second": none[str(c)]["per_second"]} for c in callers})
    finally:
        frame.unlink()
    for side in ("before", "after"):
        out[f"{side}_medians"] = {
            str(c): {key: statistics.median(r[str(c)][key] for r in out[side])
                     for key in ("throughput_ratio", "p99_ratio", "cpu_ratio")}
            for c in callers}
    return out


def run(latency_watchers: int, rate: float, events: int, watchers: int,
        callers: tuple[int, ...], requests: int, reps: int) -> dict[str, Any]:
    return {"latency": latency(latency_watchers, rate, events),
            "latency_batches": latency(latency_watchers, rate, events, batches=True),
            # every write to every watch: without a budget (--watch-messages 0) each
            # watch receives them all as they come, and the cost of each message shows
            "watchers": watchers_cost(watchers, callers, requests, reps,
                                      flags=("--watch-messages", "0")),
            "watchers_batches": watchers_cost(watchers, callers, requests, reps, batches=True)}


def _counter(method: str) -> Callable[[bytes], int]:
    """How many events a message of `method` carries, without decoding them: a
    batch is read as a list of byte strings (field 1), in C."""
    if method == WATCH:
        return lambda _raw: 1
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto(
        name="bench_count.proto", package="bench", message_type=[descriptor_pb2.DescriptorProto(
            name="Count", field=[descriptor_pb2.FieldDescriptorProto(
                name="events", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)])]))
    count = message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.Count"))
    return lambda raw: len(count.FromString(raw).events)


async def _serve_counts(port: int, count: int, method: str, distinct: bool = False,
                        reading: str = "all") -> None:
    """The watcher process: `count` streams of `method` (`distinct`: each of its own
    filter); a line "count" on stdin answers each stream's count of events
    received; end of input ends it. `reading` "first": a stream takes its first
    message, then nothing (its call stays open)."""
    counts = [0] * count
    events_in = _counter(method)

    async def watch(k: int, channel: grpc.aio.Channel) -> None:
        call: Any = channel.unary_stream(method, request_serializer=None,
                                         response_deserializer=None)  # bytes: counted, not decoded
        request = console_pb2.WatchUserEventsRequest(
            parent=PARENT, filter=distinct_filter(k) if distinct else "")
        if reading == "all":  # everything stored; else what is stored from now on
            request.after_id = 0
        stream = call(request.SerializeToString())
        async for raw in stream:
            counts[k] += events_in(raw)
            if reading == "first":
                await asyncio.Event().wait()  # (until cancelled: the call stays open)

    loop = asyncio.get_running_loop()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        tasks = [asyncio.create_task(watch(k, channel)) for k in range(count)]
        while (line := await loop.run_in_executor(None, sys.stdin.readline)):
            if line.strip() == "count":
                print(" ".join(map(str, counts)), flush=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def distinct_filter(k: int) -> str:
    """A filter of its own for watch `k` (up to 86,400 of them) that selects every
    event stamped since 2000."""
    return f'eventTime > "2000-01-01T{k // 3600:02}:{k // 60 % 60:02}:{k % 60:02}Z"'


def _big_frame() -> Path:
    """A durable write's frame (h2load's), its event padded to about 2.3 KB."""
    event = json_format.ParseDict(write.EVENT, user_event_pb2.UserEvent())
    event.attributes["note"].text.extend(["n" * 200] * 10)
    request = user_event_service_pb2.WriteUserEventRequest(parent=PARENT, user_event=event)
    path = Path(tempfile.mktemp(prefix="write-", suffix=".bin"))
    path.write_bytes(grpc_frame(request.SerializeToString()))
    return path


def _timed_writes(port: int, frame: Path, callers: int, seconds: float) -> tuple[int, int, float]:
    """h2load's durable writes for `seconds`: (succeeded, failed, seconds taken)."""
    out = subprocess.run([h2load_path(), "-D", f"{seconds:g}", "-c", str(callers), "-m", "1",
                          "-d", str(frame), "-H", "content-type: application/grpc",
                          "-H", "te: trailers", f"http://127.0.0.1:{port}{write.PATH}"],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, "
                      r"(\d+) failed", out)
    took = re.search(r"finished in ([\d.]+)(ms|s)", out)
    assert found is not None and took is not None, out
    return (int(found[1]), int(found[2]),
            float(took[1]) / (1000 if took[2] == "ms" else 1))


OTHER = "projects/bench-other/locations/global/catalogs/default_catalog"


class _Other:
    """Another project's watch (WatchUserEvents, from now on) in a thread of its own,
    and writes to that project, one at a time, each once the last has come: the
    seconds from each write's answer to its event's arrival."""

    def __init__(self, port: int) -> None:
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._writes = user_event_service_pb2_grpc.UserEventServiceStub(self._channel)
        self._stream = console_pb2_grpc.ConsoleServiceStub(self._channel).WatchUserEvents(
            console_pb2.WatchUserEventsRequest(parent=OTHER))
        self._came: dict[str, float] = {}
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.seconds: list[float] = []

    def _watch(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for stored in self._stream:
                self._came[stored.user_event.visitor_id] = time.perf_counter()

    def write_and_wait(self, visitor: str, at_most: float = 300) -> float:
        self._writes.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
            parent=OTHER, user_event=user_event_pb2.UserEvent(
                event_type="home-page-view", visitor_id=visitor)), timeout=30)
        answered = time.perf_counter()
        while visitor not in self._came:
            if time.perf_counter() - answered > at_most:
                raise RuntimeError(f"the other project's watch never had {visitor}")
            time.sleep(0.005)
        return self._came[visitor] - answered

    def probe(self, until: float) -> None:
        """Writes, a half second apart, until the time `until` (perf_counter)."""
        n = 0
        while time.perf_counter() < until:
            self.seconds.append(self.write_and_wait(f"o-{n}"))
            n += 1
            time.sleep(0.5)

    def close(self) -> None:
        self._stream.cancel()
        self._thread.join(10)
        self._channel.close()


def distinct_rep(watches: int, seconds: float, callers: int = 4, reading: str = "first",
                 flags: tuple[str, ...] = (), other: bool = False) -> dict[str, Any]:
    """One server: `watches` batch watches of distinct filters (none: 0), then
    `callers` durable writers for `seconds` (`other`: and meanwhile another
    project's writes and watch: see _Other)."""
    frame = _big_frame()
    try:
        with footfall(None, *flags) as server:
            h2load(server.port, write.PATH, frame, 4, 500)  # warm-up
            written = 500
            group = Watchers(server.port, watches, True, "python", distinct=True,
                             reading=reading) if watches else None
            try:
                if group and reading == "all":  # every stream open: it took the 500
                    group.wait_for(written, 300)
                elif group:  # every stream open: it took a first message (of these writes)
                    began = time.monotonic()
                    while min(group.counts()) == 0:
                        if time.monotonic() - began > 300:
                            raise RuntimeError("the watches did not all open")
                        h2load(server.port, write.PATH, frame, 4, 20)
                        written += 20
                        time.sleep(0.5)
                probe = _Other(server.port) if other else None
                if probe is not None:
                    probe.write_and_wait("o-warm-up")  # (its watch is open)
                time.sleep(1)
                before = server.cpu_seconds(), group.cpu_seconds() if group else 0.0
                prober = threading.Thread(target=probe.probe, args=(
                    time.perf_counter() + seconds,)) if probe is not None else None
                if prober is not None:
                    prober.start()
                done, failed, took = _timed_writes(server.port, frame, callers, seconds)
                cpu = server.cpu_seconds() - before[0]
                if probe is not None and prober is not None:
                    prober.join()
                    probe.close()
                watcher_cpu = group.cpu_seconds() - before[1] if group else 0.0
                if failed:
                    raise RuntimeError(f"{failed} writes failed")
                # (the writes h2load cut short at the end may be stored too)
                stored = write.stored(server)
                if stored < written + done:
                    raise RuntimeError(f"stored {stored}, not {written + done}")
                written = stored
                out: dict[str, Any] = {
                    "watches": watches, "reading": reading, "flags": list(flags),
                    "writes": done, "per_second": done / took,
                    "cpu_us_per_write": cpu / done * 1e6,
                    "watcher_cpu_us_per_write": watcher_cpu / done * 1e6}
                if probe is not None:
                    out["other_s"] = [round(s, 3) for s in probe.seconds]
                if group and reading == "all":
                    # every watch gets every write, once: how long after the load
                    out["catch_up_s"] = group.wait_for(written, 600)
            finally:
                if group:
                    group.close()
    finally:
        frame.unlink()
    return out


def distinct(counts: tuple[int, ...] = (0, 200, 400), seconds: float = 10,
             reading: str = "first", flags: tuple[str, ...] = (),
             other: bool = False) -> list[dict[str, Any]]:
    """`distinct_rep` for each count of watches, in turn."""
    results = []
    for watches in counts:
        results.append(distinct_rep(watches, seconds, reading=reading, flags=flags,
                                    other=other))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return results


def distinct_paired(rev: str, counts: tuple[int, ...] = (0, 200, 400), seconds: float = 10,
                    reps: int = 1, other: bool = False) -> dict[str, Any]:
    """`distinct_rep` for each count under `rev`'s tree ("before") and this
    checkout's ("after") in one run, the trees' order alternating by rep."""
    from bench.ab import exported, served_from

    out: dict[str, Any] = {"rev": rev, "seconds": seconds, "before": [], "after": []}
    with exported(rev) as tree:
        for rep in range(reps):
            for side in ("before", "after") if rep % 2 == 0 else ("after", "before"):
                with served_from(tree if side == "before" else None):
                    for watches in counts:
                        out[side].append(distinct_rep(watches, seconds, other=other))
                        print(side, json.dumps(out[side][-1]), file=sys.stderr, flush=True)
    return out


def _distinct_main(args: list[str]) -> None:
    flags: list[str] = []
    if "--" in args:
        at = args.index("--")
        args, flags = args[:at], args[at + 1:]
    reading, seconds, counts, rev, reps, other = "first", 10.0, [], "", 1, False
    while args:
        arg = args.pop(0)
        if arg == "--against":  # a paired run: REV's tree before, this checkout's after
            rev = args.pop(0)
        elif arg == "--other":
            other = True
        elif arg == "--reps":
            reps = int(args.pop(0))
        elif arg == "--reading":
            reading = args.pop(0)
        elif arg == "--seconds":
            seconds = float(args.pop(0))
        else:
            counts.append(int(arg))
    if rev:
        print(json.dumps(distinct_paired(rev, tuple(counts) or (0, 200, 400), seconds, reps,
                                         other), indent=1))
        return
    print(json.dumps(distinct(tuple(counts) or (0, 200, 400), seconds, reading,
                              tuple(flags), other), indent=1))


def _stored_entry() -> bytes:
    """A bench event as a watch of batches sends it: a StoredUserEvent as the
    store gives it, as an element of a UserEventBatch's list."""
    event = json_format.ParseDict(write.EVENT, user_event_pb2.UserEvent())
    event.event_time.GetCurrentTime()
    stored = console_pb2.StoredUserEvent(id=1_000_000, catalog=PARENT, user_event=event,
                                         transport=console_pb2.GRPC)
    stored.receive_time.GetCurrentTime()
    wire = stored.SerializeToString()
    return b"\x0a" + varint(len(wire)) + wire


async def _sends(events: int, watchers: int, pace: float, seconds: float,
                 port: int) -> dict[str, Any]:
    """`watchers` streams of a bare grpc.aio server, each sending a message of
    `events` stored events once every `pace` seconds (see the module's "sends")."""
    message = _stored_entry() * events
    loop = asyncio.get_running_loop()
    waiting: list[asyncio.Future[None]] = []
    sent = 0

    async def stream(_request: bytes, context: grpc.aio.ServicerContext) -> None:
        nonlocal sent
        while True:
            turn = loop.create_future()
            waiting.append(turn)
            await turn
            await context.write(message)
            sent += 1

    def wake(turns: list[asyncio.Future[None]]) -> None:
        for turn in turns:
            if not turn.done():
                turn.set_result(None)

    async def paced() -> None:
        # as a feed of batches wakes its watches (feed._wake): WAKE_SLICE a turn of
        # the loop, spread over WAKE_SPREAD of the pace
        while True:
            await asyncio.sleep(pace)
            due = waiting[:]
            waiting.clear()
            slices = range(0, len(due), WAKE_SLICE)
            for n, start in enumerate(slices):
                loop.call_later(pace * WAKE_SPREAD * n / len(slices), wake,
                                due[start:start + WAKE_SLICE])

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "footfall.console.v1.ConsoleService", {"WatchUserEventBatches":
                                               grpc.unary_stream_rpc_method_handler(stream)}),))
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    pacing = asyncio.create_task(paced())
    group = Watchers(port, watchers, True, "cpp")
    try:
        began = time.monotonic()
        while min(await asyncio.to_thread(group.counts)) == 0:  # every stream open
            if time.monotonic() - began > 60:
                raise RuntimeError("the watchers did not all open")
            await asyncio.sleep(0.1)
        await asyncio.sleep(2 * pace)
        before = time.process_time(), group.cpu_seconds(), sent
        await asyncio.sleep(seconds)
        cpu, watcher_cpu = time.process_time() - before[0], group.cpu_seconds() - before[1]
        messages = sent - before[2]
    finally:
        await asyncio.to_thread(group.close)
        pacing.cancel()
        await server.stop(None)
    return {"events": events, "message_kib": round(len(message) / 1024, 1),
            "watchers": watchers, "pace_s": pace, "messages": messages,
            "server_cpu_us_per_message": cpu / messages * 1e6,
            "watcher_cpu_us_per_message": watcher_cpu / messages * 1e6}


def sends(sizes: tuple[int, ...] = (1, 100, 300, 450), watchers: int = 200,
          pace: float = 0.2, seconds: float = 10, port: int = 0) -> dict[str, Any]:
    """`_sends` for each message size (in events), and the server's CPU a message
    fitted (least squares) as a part of its own and a part per KiB."""
    runs = [uvloop.run(_sends(events, watchers, pace, seconds, port)) for events in sizes]
    for run in runs:
        print(json.dumps(run), file=sys.stderr, flush=True)
    out: dict[str, Any] = {"runs": runs}
    if len(runs) > 1:
        fit = statistics.linear_regression([r["message_kib"] for r in runs],
                                           [r["server_cpu_us_per_message"] for r in runs])
        out |= {"server_us_per_message": fit.intercept, "server_us_per_kib": fit.slope}
    return out


def _sends_main(args: list[str]) -> None:
    sizes, watchers, seconds = [], 200, 10.0
    while args:
        arg = args.pop(0)
        if arg == "--watchers":
            watchers = int(args.pop(0))
        elif arg == "--seconds":
            seconds = float(args.pop(0))
        else:
            sizes.append(int(arg))
    print(json.dumps(sends(tuple(sizes) or (1, 100, 300, 450), watchers, seconds=seconds),
                     indent=1))


def _at_rate(port: int, frame: Path, callers: int, rate: int, requests: int
             ) -> tuple[float, float, float]:
    """Seconds, p50 and p99 (ms) of `requests` durable writes from h2load, `callers`
    connections each sending `rate / callers` a second."""
    log = Path(tempfile.mktemp(prefix="h2load-", suffix=".log"))
    began = time.monotonic()
    subprocess.run([h2load_path(), "-n", str(requests), "-c", str(callers), "-m", "1",
                    f"--rps={max(1, rate // callers)}", "-d", str(frame),
                    "-H", "content-type: application/grpc", "-H", "te: trailers",
                    "--log-file", str(log), f"http://127.0.0.1:{port}{write.PATH}"],
                   capture_output=True, text=True, check=True)
    seconds = time.monotonic() - began
    times = sorted(int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines())
    log.unlink()
    return seconds, percentile(times, 50), percentile(times, 99)


def fixed_rep(frame: Path, watchers: int, rate: int, callers: int,
              seconds: float) -> dict[str, Any]:
    """One server: `rate` durable writes a second for `seconds` with `watchers` batch
    watchers open (0: none); its CPU a second, the watchers' process's, the writes'
    p50 and p99, and the load average as it ended."""
    requests = int(rate * seconds)
    with footfall(None) as server:
        group = Watchers(server.port, watchers, True, "cpp") if watchers else None
        try:
            h2load(server.port, write.PATH, frame, 4, 500)  # warm-up
            if group:
                group.wait_for(500, 60)
            before = server.cpu_seconds(), group.cpu_seconds() if group else 0.0
            took, p50, p99 = _at_rate(server.port, frame, callers, rate, requests)
            cpu = server.cpu_seconds() - before[0]
            watcher_cpu = group.cpu_seconds() - before[1] if group else 0.0
            if group:
                group.wait_for(500 + requests, 120)
        finally:
            if group:
                group.close()
    return {"seconds": took, "cpu_per_second": cpu / took,
            "watcher_cpu_per_second": watcher_cpu / took, "p50_ms": p50, "p99_ms": p99,
            "load_average": os.getloadavg()[0]}


def fixed(watchers: int = 200, rate: int = 400, callers: int = 4, seconds: float = 10,
          reps: int = 3, rev: str = "") -> dict[str, Any]:
    """`fixed_rep` with none and with `watchers`, `reps` times, under this checkout
    (and `rev`'s tree beside it, in alternating order, when given); per side the
    medians of the server's CPU a second watched less none, of the watchers' own, and
    of the p99 watched over none."""
    from bench.ab import exported, served_from

    frame = write.frame_file()
    out: dict[str, Any] = {"watchers": watchers, "rate": rate, "callers": callers,
                           "rev": rev or None}
    sides = ("before", "after") if rev else ("after",)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    try:
        with exported(rev) if rev else contextlib.nullcontext() as tree:
            for rep in range(reps):
                for side in sides if rep % 2 == 0 else sides[::-1]:
                    with served_from(tree if side == "before" else None):
                        none = fixed_rep(frame, 0, rate, callers, seconds)
                        watched = fixed_rep(frame, watchers, rate, callers, seconds)
                    runs[side].append({"none": none, "watched": watched})
                    print(side, json.dumps(runs[side][-1]), file=sys.stderr, flush=True)
    finally:
        frame.unlink()
    for side, reps_ in runs.items():
        out[side] = {"reps": reps_, "medians": {
            "extra_cpu_per_second": statistics.median(
                r["watched"]["cpu_per_second"] - r["none"]["cpu_per_second"] for r in reps_),
            "watcher_cpu_per_second": statistics.median(
                r["watched"]["watcher_cpu_per_second"] for r in reps_),
            "p99_ratio": statistics.median(
                r["watched"]["p99_ms"] / r["none"]["p99_ms"] for r in reps_)}}
    return out


def _fixed_main(args: list[str]) -> None:
    named = {"--watchers": 200, "--rate": 400, "--callers": 4, "--seconds": 10.0,
             "--reps": 3, "--against": ""}
    while args:
        arg = args.pop(0)
        if arg not in named:
            raise SystemExit(f"unknown argument {arg!r}; known: {', '.join(named)}")
        named[arg] = type(named[arg])(args.pop(0))
    print(json.dumps(fixed(int(named["--watchers"]), int(named["--rate"]),
                           int(named["--callers"]), float(named["--seconds"]),
                           int(named["--reps"]), str(named["--against"])), indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "distinct":
        _distinct_main(sys.argv[2:])
    elif sys.argv[1] == "sends":
        _sends_main(sys.argv[2:])
    elif sys.argv[1] == "fixed":
        _fixed_main(sys.argv[2:])
    else:
        asyncio.run(_serve_counts(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                  *(sys.argv[4:5] == ["distinct"],), *sys.argv[5:6]))
