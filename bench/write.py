"""WriteUserEvent under load: Footfall (durable) beside empty-handler servers
(threaded grpc, and grpc.aio on asyncio's loop and on uvloop's), the best of which
at each caller count is the bar.

Every request carries an event without event_time, so the server stamps each one
and no two are duplicates: every call is a real insert.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.protobuf import json_format

from bench.common import (
    PARENT,
    Server,
    empty_server,
    footfall,
    grpc_frame,
    h2load,
    postgres_available,
    postgres_database,
    summary,
)

PATH = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
EVENT = {
    "eventType": "detail-page-view", "visitorId": "visitor-123456", "sessionId": "s-1",
    "productDetails": [{"product": {"id": "sku-42"}, "quantity": 1}],
    "userInfo": {"userId": "u-9", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                 "ipAddress": "203.0.113.7"},
    "uri": "https://shop.example/p/42", "pageViewId": "pv-1",
    "attributes": {"campaign": {"text": ["autumn"]}},
}


def frame_file() -> Path:
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=json_format.ParseDict(EVENT, user_event_pb2.UserEvent()))
    path = Path(tempfile.mktemp(prefix="write-", suffix=".bin"))
    path.write_bytes(grpc_frame(request.SerializeToString()))
    return path


def stored(server: Server) -> int:
    """The events the running `server` holds, asked of it (not read from its file: a
    server of an older tree, bench.ab's, has a store this checkout's CLI would find
    lacking a migration)."""
    out = subprocess.run([sys.executable, "-m", "server", "events", "count", "--parent", PARENT,
                          "--server", f"127.0.0.1:{server.port}"],
                         capture_output=True, text=True, check=True).stdout
    return int(out)


def measure(server: Server, frame: Path, callers: tuple[int, ...], requests: int,
            reps: int) -> dict[str, Any]:
    h2load(server.port, PATH, frame, 4, min(requests, 500))  # warm-up
    out: dict[str, Any] = {}
    for c in callers:
        runs, cpu_us = [], []
        for _ in range(reps):
            before = server.cpu_seconds()
            runs.append(h2load(server.port, PATH, frame, c, requests))
            cpu_us.append((server.cpu_seconds() - before) / requests * 1e6)
        failed = sum(r.failed for r in runs)
        if failed:
            raise RuntimeError(f"{failed} calls failed at {c} callers")
        out[str(c)] = {"per_second": summary([r.per_second for r in runs]),
                       "p50_ms": summary([r.p50_ms for r in runs]),
                       "p99_ms": summary([r.p99_ms for r in runs]),
                       # server CPU (user + system, from /proc) per call: steadier than a
                       # rate on a shared machine
                       "cpu_us_per_call": summary(cpu_us)}
    return out


@contextmanager
def footfall_postgres() -> Iterator[Server]:
    with postgres_database() as url, footfall(url) as server:
        yield server


EMPTY = ("empty-threaded", "empty-aio", "empty-uvloop")
TARGETS = {
    "empty-threaded": lambda: empty_server("threaded"),
    "empty-aio": lambda: empty_server("aio"),
    "empty-uvloop": lambda: empty_server("uvloop"),
    "footfall-sqlite-full": lambda: footfall(),
    "footfall-sqlite-normal": lambda: footfall(sqlite_options="?synchronous=normal"),
    # every core: the load generator shares them, so compare CPU per call as well
    "footfall-sqlite-2-processes": lambda: footfall(None, "--processes", "2"),
    "footfall-postgres": footfall_postgres,
}


def run(requests: int = 10_000, reps: int = 3,
        callers: tuple[int, ...] = (1, 16, 64)) -> dict[str, Any]:
    """events/s, p50 and p99 per target and caller count, and Footfall's ratios to
    the best empty-handler server at each caller count."""
    frame = frame_file()
    results: dict[str, Any] = {}
    try:
        for name, make in TARGETS.items():
            if name == "footfall-postgres" and not postgres_available():
                print("PostgreSQL is not reachable: no PostgreSQL figures", flush=True)
                continue
            with make() as server:
                results[name] = measure(server, frame, callers, requests, reps)
                if name.startswith("footfall"):
                    expected = min(requests, 500) + requests * reps * len(callers)
                    if stored(server) != expected:
                        raise RuntimeError(f"{name}: stored {stored(server)}, not {expected}")
    finally:
        frame.unlink()
    for name in [k for k in results if k.startswith("footfall")]:
        results[name]["ratios"] = {c: ratios(results, name, c) for c in map(str, callers)}
    return results


def ratios(results: dict[str, Any], name: str, c: str) -> dict[str, Any]:
    best = max(EMPTY, key=lambda e: results[e][c]["per_second"]["median"])
    return {
        "vs": best,
        "throughput": results[name][c]["per_second"]["median"]
        / results[best][c]["per_second"]["median"],
        "p99": results[name][c]["p99_ms"]["median"] / results[best][c]["p99_ms"]["median"],
        # /proc counts in clock ticks (10 ms): a tiny run may see none at all
        "cpu": results[name][c]["cpu_us_per_call"]["median"]
        / (results[best][c]["cpu_us_per_call"]["median"] or float("nan")),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(requests=int(sys.argv[1]) if len(sys.argv) > 1 else 2000, reps=1),
                     indent=1))
