"""Two replicas on one PostgreSQL database, or two server processes on one SQLite
file: write latency through replica B while replica A purges half of N events
(`eventTime < half`, bench/purge.py's purge), before (REV) and after (this
checkout), in one run.

    python -m bench.purge_replicas REV [--events 1000000] [--reps 1] [--callers 16]
        [--sqlite] [--db-prefix footfall_bench] [--json FILE]

The events are stored once, and analyzed on PostgreSQL; each side purges a copy of
that database (CREATE DATABASE ... TEMPLATE, or a copy of the SQLite file) with both
replicas run from its tree (REV exported as bench/ab.py does). B's durable
WriteUserEvent calls (h2load, `callers` at once) run from the purge's start to its
end, in runs of WRITES calls; then as many with the purge done ("idle"), on the same
servers. Reported per side: B's write p50/p99 and rate during the purge and idle,
the purge's wall seconds, A's and B's CPU seconds (/proc, server and its processes)
and, on PostgreSQL, the PostgreSQL server's (every process named postgres: other
databases' work on a shared machine counts too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import psycopg
from footfall.retail.v2 import purge_config_pb2, user_event_service_pb2_grpc

from bench import write
from bench.ab import exported, served_from
from bench.common import (
    ADMIN_DSN,
    PARENT,
    Server,
    footfall,
    h2load_path,
    percentile,
    postgres_database,
    summary,
    wait_done,
)
from bench.data import BASE_SECONDS, _rfc3339, fill_store, temp_dir

WRITES = 2_000  # calls of one h2load run while the purge goes on


def _latencies_ms(port: int, frame: Path, callers: int, requests: int) -> list[float]:
    """Each call's milliseconds, of `requests` WriteUserEvent calls by `callers` at once
    (every call must succeed)."""
    log = Path(tempfile.mktemp(prefix="h2load-", suffix=".log"))
    try:
        out = subprocess.run(
            [h2load_path(), "-n", str(requests), "-c", str(callers), "-m", "1", "-d",
             str(frame), "-H", "content-type: application/grpc", "-H", "te: trailers",
             "--log-file", str(log), f"http://127.0.0.1:{port}{write.PATH}"],
            capture_output=True, text=True, check=True).stdout
        if " 0 failed" not in out:
            raise RuntimeError(f"calls failed: {out}")
        return [int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines()]
    finally:
        log.unlink(missing_ok=True)


def postgres_cpu_seconds() -> float:
    """CPU (user + system) of every process named postgres, from /proc."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, _, tail = (entry / "stat").read_text().partition(") ")
        except OSError:
            continue
        if head.endswith("(postgres"):
            fields = tail.split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _purge(port: int, before: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        op = wait_done(channel, user_event_service_pb2_grpc.UserEventServiceStub(
            channel).PurgeUserEvents(purge_config_pb2.PurgeUserEventsRequest(
                parent=PARENT, filter=f'eventTime < "{before}"', force=True)))
    response = purge_config_pb2.PurgeUserEventsResponse()
    op.response.Unpack(response)
    return response.purged_events_count


def _side(tree: Path | None, url: str, total: int, callers: int) -> dict[str, Any]:
    frame = write.frame_file()
    try:
        with contextlib.ExitStack() as stack:
            with served_from(tree):
                a = stack.enter_context(footfall(url))
                b = stack.enter_context(footfall(url))
            _latencies_ms(b.port, frame, callers, 500)  # warm-up
            during: list[float] = []
            done = threading.Event()
            cpu = _cpus(a, b)
            began = time.perf_counter()
            purged: list[int] = []
            purging = threading.Thread(target=lambda: (
                purged.append(_purge(a.port, _rfc3339(BASE_SECONDS + total // 2))),
                done.set()))
            purging.start()
            while not done.is_set():
                during.extend(_latencies_ms(b.port, frame, callers, WRITES))
            purging.join()
            wall = time.perf_counter() - began
            used = {key: after - cpu[key] for key, after in _cpus(a, b).items()}
            if purged != [total // 2]:
                raise RuntimeError(f"purged {purged}, not {total // 2}")
            idle_began = time.perf_counter()
            idle = _latencies_ms(b.port, frame, callers, len(during))
            idle_wall = time.perf_counter() - idle_began
    finally:
        frame.unlink()
    during.sort()
    idle.sort()
    return {"purge_s": wall, "writes_during": len(during),
            "during_p50_ms": percentile(during, 50), "during_p99_ms": percentile(during, 99),
            "during_max_ms": during[-1], "during_per_s": len(during) / wall,
            "idle_p50_ms": percentile(idle, 50), "idle_p99_ms": percentile(idle, 99),
            "idle_per_s": len(idle) / idle_wall,
            **{f"{key}_cpu_s": value for key, value in used.items()}}


def _cpus(a: Server, b: Server) -> dict[str, float]:
    cpus = {"a": a.cpu_seconds(), "b": b.cpu_seconds()}
    if a.store_url.startswith("postgresql"):
        cpus["postgres"] = postgres_cpu_seconds()
    return cpus


def run(revs: list[str], total: int, reps: int, callers: int, prefix: str,
        sqlite: bool = False) -> dict[str, Any]:
    sides = [*revs, "after"]
    seen: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    if sqlite:
        _run_sqlite(sides, seen, total, reps, callers)
        return _result(seen, total, callers)
    with postgres_database(prefix) as filled:
        fill_store(filled, PARENT, total)
        with psycopg.connect(filled, autocommit=True) as conn:
            # as autovacuum would before long (and `footfall copy` does): without
            # statistics each chunk of a purge read the whole time index (README)
            conn.execute("ANALYZE")
        base, template = filled.rsplit("/", 1)
        with contextlib.ExitStack() as stack:
            trees = {rev: stack.enter_context(exported(rev)) for rev in revs}
            for rep in range(reps):
                for side in sides[rep % len(sides):] + sides[:rep % len(sides)]:
                    name = f"{template}_copy"
                    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
                    try:
                        seen[side].append(_side(trees.get(side), f"{base}/{name}", total,
                                                callers))
                    finally:
                        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                    print(side, json.dumps(seen[side][-1]), flush=True)
    return _result(seen, total, callers)


def _run_sqlite(sides: list[str], seen: dict[str, list[dict[str, Any]]], total: int,
                reps: int, callers: int) -> None:
    """The SQLite sides: both servers of a side on one copy of one filled file."""
    folder = temp_dir("footfall-bench-purge-replicas-")
    try:
        filled = folder / "filled.db"
        fill_store(f"sqlite:///{filled}", PARENT, total)
        with contextlib.ExitStack() as stack:
            trees = {side: stack.enter_context(exported(side)) for side in sides[:-1]}
            for rep in range(reps):
                for side in sides[rep % len(sides):] + sides[:rep % len(sides)]:
                    copy = folder / "copy.db"
                    shutil.copy(filled, copy)
                    os.sync()  # (else the kernel writes the copy back while writes wait)
                    try:
                        seen[side].append(_side(trees.get(side), f"sqlite:///{copy}", total,
                                                callers))
                    finally:
                        for name in ("copy.db", "copy.db-wal", "copy.db-shm", "copy.db-lock"):
                            (folder / name).unlink(missing_ok=True)
                    print(side, json.dumps(seen[side][-1]), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _result(seen: dict[str, list[dict[str, Any]]], total: int,
            callers: int) -> dict[str, Any]:
    result: dict[str, Any] = {"events": total, "purged": total // 2, "callers": callers,
                              "load_average": os.getloadavg()[0]}
    for side, runs in seen.items():
        result[side] = {key: summary([r[key] for r in runs]) for key in runs[0]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs="+")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--sqlite", action="store_true",
                        help="two server processes on one SQLite file, not PostgreSQL")
    parser.add_argument("--db-prefix", default="footfall_bench")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    result = run(args.revs, args.events, args.reps, args.callers, args.db_prefix,
                 args.sqlite)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
