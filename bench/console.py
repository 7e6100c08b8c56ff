"""The console: the first page of a list over a large catalog, and what keeping
refusals costs the accepted writes.

- list: a SQLite store of N events (one catalog; 1,000 visitors, four event
  types, a session per 20 events), then the first page (100) of ListUserEvents
  as the servicer reads it (`queries.list_user_events`, in process): unfiltered,
  by visitor (one event in 1,000), by type, by session (checked on each decoded
  event). Median of `reps` calls each.
- rejections: accepted WriteUserEvent calls (h2load, 16 callers) while 4 more
  callers flood the server with refused WriteUserEvent calls, kept (the default
  --rejections-keep) against the same flood with keeping off (--rejections-keep
  0); a fresh server each, interleaved reps; the ratio is the cost of keeping.
  Server CPU per accepted call from /proc beside each rate (the flood's share
  included).
- flood: N refused writes (N well above --rejections-keep K, 16 callers), then
  the rejections table of the stopped server: at most K rows, and its last id
  shows every refusal was recorded (so the bound is the trimming, not loss).
"""

from __future__ import annotations

import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.protobuf import timestamp_pb2

from bench.common import PARENT, footfall, grpc_frame, h2load, h2load_path, summary
from bench.write import PATH as WRITE_PATH
from bench.write import frame_file as write_frame
from server.console import queries
from server.store import EventRow, open_store

TYPES = ("home-page-view", "detail-page-view", "search", "add-to-cart")
FILTERS = {"none": "", "visitor": 'visitorId = "v-7"', "type": 'eventType = "search"',
           "session": 'sessionId = "s-3"'}


def _rows(start: int, count: int) -> list[EventRow]:
    rows = []
    for n in range(start, start + count):
        event = user_event_pb2.UserEvent(event_type=TYPES[n % 4], visitor_id=f"v-{n % 1000}",
                                         session_id=f"s-{n // 20}")
        event.event_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1_700_000_000 + n))
        if event.event_type == "search":
            event.search_query = "shoes"
        rows.append(EventRow.from_event(PARENT, event, joined=True))
    return rows


def list_first_page(size: int, reps: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-console-"))
    store = open_store(f"sqlite:///{workdir}/events.db")
    try:
        for start in range(0, size, 5_000):
            store.write_user_events(_rows(start, min(5_000, size - start)))
        out: dict[str, Any] = {"events": size}
        for name, text in FILTERS.items():
            events = queries.parse_filter(text, PARENT)
            millis = []
            for _ in range(reps):
                began = time.perf_counter()
                page = queries.list_user_events(store, events, 100, "")
                millis.append((time.perf_counter() - began) * 1000)
            out[name] = {"ms": summary(millis), "returned": len(page.user_events)}
        return out
    finally:
        store.close()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def _refused_write() -> Path:
    return _frame(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=user_event_pb2.UserEvent(event_type="home-page-view")))


def _frame(message: Any) -> Path:
    path = Path(tempfile.mktemp(prefix="console-", suffix=".bin"))
    path.write_bytes(grpc_frame(message.SerializeToString()))
    return path


def refusal_cost(requests: int, reps: int) -> dict[str, Any]:
    accepted = write_frame()
    refused = _refused_write()
    # the same flood of refused writes, kept (the default retention) or not
    settings = {"kept": (), "not_kept": ("--rejections-keep", "0")}
    rates: dict[str, list[float]] = {name: [] for name in settings}
    cpu: dict[str, list[float]] = {name: [] for name in settings}
    try:
        for _ in range(reps):
            for name, flags in settings.items():  # interleaved, a fresh server each
                with footfall(None, *flags) as server:
                    h2load(server.port, WRITE_PATH, accepted, 4, min(requests, 500))  # warm-up
                    flood = subprocess.Popen(
                        [h2load_path(), "-n", "100000000", "-c", "4", "-m", "1", "-d",
                         str(refused), "-H", "content-type: application/grpc",
                         "-H", "te: trailers", f"http://127.0.0.1:{server.port}{WRITE_PATH}"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    try:
                        before = server.cpu_seconds()
                        load = h2load(server.port, WRITE_PATH, accepted, 16, requests)
                        cpu[name].append((server.cpu_seconds() - before) / requests * 1e6)
                    finally:
                        flood.terminate()
                        flood.wait()
                    rates[name].append(load.per_second)
    finally:
        accepted.unlink()
        refused.unlink()
    ratios = [k / n for k, n in zip(rates["kept"], rates["not_kept"], strict=True)]
    return {name: {"accepted_per_second": summary(rates[name]),
                   "server_cpu_us_per_accepted_call": summary(cpu[name])} for name in settings} | {
        "ratio_kept_to_not_kept": summary(ratios)}


def flood_bound(requests: int, keep: int) -> dict[str, Any]:
    """Rows left in the rejections table after `requests` refused writes."""
    workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-flood-"))
    frame = _refused_write()
    try:
        with footfall(f"sqlite:///{workdir}/events.db", "--rejections-keep", str(keep)) as server:
            began = server.cpu_seconds()
            load = h2load(server.port, WRITE_PATH, frame, 16, requests)
            cpu_us = (server.cpu_seconds() - began) / requests * 1e6
        # the server stopped: whatever it had queued is committed
        with sqlite3.connect(workdir / "events.db") as db:
            rows, last = db.execute("SELECT COUNT(*), MAX(id) FROM rejections").fetchone()
        db.close()
    finally:
        frame.unlink()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    if last < requests:
        raise RuntimeError(f"only {last} of {requests} refusals were recorded")
    return {"refused": requests, "keep": keep, "rows": rows, "recorded": last,
            "refused_per_second": load.per_second, "server_cpu_us_per_refusal": cpu_us}


def run(sizes: tuple[int, ...], reps: int, write_requests: int,
        flood: int, keep: int) -> dict[str, Any]:
    return {"list": [list_first_page(size, max(reps, 5)) for size in sizes],
            "refusals": refusal_cost(write_requests, reps),
            "flood": flood_bound(flood, keep)}
