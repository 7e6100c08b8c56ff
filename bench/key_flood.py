"""One key's holder keeping many cheap calls in flight beside another key's durable
writes: what it costs those writes, and an admin's health checks, with the flood's key
unpaced and paced (calls_per_second in the keys file).

    python -m bench.key_flood [--paces none,300] [--in-flight 500] [--seconds 10]
                              [--rounds 2] [--callers 16]

Auth is on. The flood is a reader key of a project of its own keeping `--in-flight`
ListUserEvents calls in flight (a grpc.aio client in a process of its own), each
refused INVALID_ARGUMENT at once for its filter (`((`): the cheapest call a key can
make again and again. Beside it, h2load's durable WriteUserEvent calls (`--callers`,
one in flight each) with a writer key of another project, and an admin key's gRPC
health checks every 20 ms. For each pace of the flood's key (a server each, in turns
in each round): the writes a second and their p99 alone, then with the flood; the
flood's calls a second, the health checks' p99 and the server's CPU from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from footfall.console.v1 import console_pb2

from bench import write
from bench.common import Server, footfall, percentile
from bench.heavy import ADMIN_KEY, SMALL_KEY, Probe, small_writes

READER_KEY = "flood-reader-key-0123456789abcdef"
FLOOD = "projects/flood/locations/global/catalogs/default_catalog"
LIST = "/footfall.console.v1.ConsoleService/ListUserEvents"


def keys_file(folder: Path, pace: float | None) -> Path:
    path = folder / "keys.json"
    flood: dict[str, Any] = {"projects": ["flood"], "role": "reader", "name": "flood"}
    if pace is not None:
        flood["calls_per_second"] = pace
    path.write_text(json.dumps({"keys": {
        READER_KEY: flood,
        SMALL_KEY: {"projects": ["bench"], "role": "writer", "name": "small"},
        ADMIN_KEY: {"projects": ["*"], "role": "admin", "name": "admin"}}}))
    path.chmod(0o600)
    return path


async def _flood(port: int, in_flight: int, seconds: float) -> int:
    """Keep `in_flight` refused lists in flight for `seconds`: how many ended."""
    request = console_pb2.ListUserEventsRequest(parent=FLOOD, filter="((").SerializeToString()
    ended = 0
    stop = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(LIST)

        async def one() -> None:
            nonlocal ended
            while time.monotonic() < stop:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await call(request, metadata=(("x-goog-api-key", READER_KEY),), timeout=30)
                ended += 1

        await asyncio.gather(*(one() for _ in range(in_flight)))
    return ended


@contextlib.contextmanager
def flooding(port: int, in_flight: int, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """The flood in a process of its own (its CPU is not the measure's)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.key_flood", "--flood-only", str(port), str(in_flight),
         str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.wait(seconds + 60)


def run_one(server: Server, in_flight: int, seconds: float, callers: int) -> dict[str, Any]:
    frame = write.frame_file()
    try:
        with Probe(server.port, ADMIN_KEY) as probe:
            quiet = small_writes(server.port, frame, callers, seconds / 2)
        quiet["probe_p99_ms"] = round(percentile(sorted(probe.latencies), 99), 2)
        before = server.cpu_seconds()
        with Probe(server.port, ADMIN_KEY) as probe, \
                flooding(server.port, in_flight, seconds + 2) as flood:
            time.sleep(1.0)
            flooded = small_writes(server.port, frame, callers, seconds)
            assert flood.stdout is not None
            flood_calls = int(flood.stdout.read().strip() or 0)
        cpu = server.cpu_seconds() - before
    finally:
        frame.unlink()
    flooded["probe_p99_ms"] = round(percentile(sorted(probe.latencies), 99), 2)
    flooded["flood_per_second"] = round(flood_calls / (seconds + 2), 1)
    flooded["server_cpu_s"] = round(cpu, 2)
    return {"alone": quiet, "flooded": flooded,
            "writes_kept": round(flooded["per_second"] / quiet["per_second"], 3)}


def main() -> None:
    if sys.argv[1:2] == ["--flood-only"]:
        port, in_flight, seconds = sys.argv[2:5]
        print(asyncio.run(_flood(int(port), int(in_flight), float(seconds))))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--paces", default="none,300",
                        help="the flood key's calls_per_second, in turns ('none': unpaced)")
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    paces = [None if pace == "none" else float(pace) for pace in args.paces.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="footfall-key-flood-"))
    for round_ in range(args.rounds):
        for pace in paces:
            with footfall(None, "--auth-file", str(keys_file(folder, pace))) as server:
                result = run_one(server, args.in_flight, args.seconds, args.callers)
            print(json.dumps({"round": round_, "pace": pace,
                              "load": round(os.getloadavg()[0], 1), **result}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
