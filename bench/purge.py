"""Purge: Footfall's PurgeUserEvents of half the stored events beside a raw SQL
DELETE of the same rows on a copy of the same database; and write latency while
the purge runs beside write latency when idle (a purge must not stall ingestion)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from footfall.retail.v2 import purge_config_pb2, user_event_service_pb2_grpc

from bench import write
from bench.common import PARENT, Load, footfall, h2load, summary, wait_done
from bench.data import BASE_SECONDS, _rfc3339, fill_store, temp_dir


def raw_delete(db: Path, before_us: int) -> float:
    """Seconds for one DELETE of the same rows on a copy, committed durably."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = FULL")
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute("DELETE FROM user_events WHERE catalog_id = (SELECT id FROM catalogs "
                 "WHERE name = ?) AND event_time_us < ?", (PARENT, before_us))
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def footfall_purge(port: int, before: str) -> tuple[float, int]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        start = time.perf_counter()
        op = wait_done(channel, retail.PurgeUserEvents(purge_config_pb2.PurgeUserEventsRequest(
            parent=PARENT, filter=f'eventTime < "{before}"', force=True)))
        elapsed = time.perf_counter() - start
    response = purge_config_pb2.PurgeUserEventsResponse()
    op.response.Unpack(response)
    return elapsed, response.purged_events_count


def one(total: int, write_requests: int) -> dict[str, Any]:
    """One round on a fresh store: Footfall's purge alone, the raw DELETE on a copy,
    then write p99 idle and during a purge on a second copy."""
    folder = temp_dir("footfall-bench-purge-")
    try:
        db = folder / "events.db"
        fill_store(f"sqlite:///{db}", PARENT, total)
        for name in ("raw.db", "loaded.db"):
            shutil.copy(db, folder / name)
        # The copies' pages written back first (as scale.py does): else the kernel
        # flushes them while writes are measured, and a commit's fsync waits for
        # hundreds of MB (stalls of 230-370 ms seen in the idle writes' p99).
        os.sync()
        half = _rfc3339(BASE_SECONDS + total // 2)
        raw = raw_delete(folder / "raw.db", (BASE_SECONDS + total // 2) * 1_000_000)
        with footfall(f"sqlite:///{db}") as server:
            seconds, purged = footfall_purge(server.port, half)
        if purged != total // 2:
            raise RuntimeError(f"purged {purged}, expected {total // 2}")
        frame = write.frame_file()
        with footfall(f"sqlite:///{folder / 'loaded.db'}") as server:
            idle = h2load(server.port, write.PATH, frame, 16, write_requests)
            during: list[Load] = []
            loader = threading.Thread(target=lambda: during.append(
                h2load(server.port, write.PATH, frame, 16, write_requests)))
            loader.start()
            footfall_purge(server.port, half)
            loader.join()
        frame.unlink()
        return {"footfall_s": seconds, "raw_delete_s": raw, "idle_p99_ms": idle.p99_ms,
                "during_p99_ms": during[0].p99_ms}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(total: int = 1_000_000, reps: int = 3, write_requests: int = 4000) -> dict[str, Any]:
    runs = [one(total, write_requests) for _ in range(reps)]
    ours = summary([r["footfall_s"] for r in runs])
    raw = summary([r["raw_delete_s"] for r in runs])
    idle = summary([r["idle_p99_ms"] for r in runs])
    during = summary([r["during_p99_ms"] for r in runs])
    return {"events": total, "purged": total // 2, "footfall_seconds": ours,
            "raw_delete_seconds": raw, "ratio": ours["median"] / raw["median"],
            "write_p99_idle_ms": idle, "write_p99_during_ms": during,
            "p99_ratio": during["median"] / idle["median"]}
