"""A talent corpus for the insights benches: client events of one tenant, as a job
site's visitors leave them (requests that show jobs, then views, starts and
finishes of some), stored out of time order (as a site's several writers send
them), and the peak memory and CPU of the talent questions over it, each in a
fresh process (as bench/insights_memory.py for the retail ones).

    python -m bench.talent_corpus --url sqlite:///PATH --events N [--only NAME ...]
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TENANT = "projects/bench/tenants/site"
QUESTIONS = ("request_funnel", "job_funnel", "job_table", "request_funnel_whole")
JOBS = 5_000
DAY_US = 86_400_000_000
T0_US = 1_760_000_000_000_000
PAGE = 10_000


def _events(size: int, seed: int = 7) -> list[tuple[str, int, bytes]]:
    """(event_id, create time in µs, ClientEvent bytes): requests of 1-5 jobs shown,
    each shown job viewed by a third of them, a view started by a third, a start
    finished by a half, within an hour of the request, over 30 days."""
    from footfall.talent.v4 import event_pb2

    kind = event_pb2.JobEvent.JobEventType.Value
    rng = random.Random(seed)
    out: list[tuple[str, int, bytes]] = []
    request = 0
    while len(out) < size:
        request += 1
        at = T0_US + rng.randrange(30 * DAY_US)
        jobs = [f"{TENANT}/jobs/j{rng.randrange(JOBS)}" for _ in range(rng.randint(1, 5))]
        steps = [("IMPRESSION", jobs, at)]
        for job in jobs:
            later = at
            for name, odds in (("VIEW", 3), ("APPLICATION_START", 3), ("APPLICATION_FINISH", 2)):
                if rng.randrange(odds):
                    break
                later += rng.randrange(600_000_000)
                steps.append((name, [job], later))
        for name, named, when in steps:
            event = event_pb2.ClientEvent(request_id=f"r{request}",
                                          event_id=f"e{len(out)}")
            event.create_time.FromMicroseconds(when)
            event.job_event.type = kind(name)  # type: ignore[assignment]
            event.job_event.jobs.extend(named)
            out.append((event.event_id, when, event.SerializeToString()))
    del out[size:]
    # stored out of time order, but not wholly at random: writers a few minutes apart
    out.sort(key=lambda e: e[1] + rng.randrange(DAY_US))
    return out


def fill(url: str, size: int) -> None:
    """Store `size` client events of TENANT at `url` (SQLite or PostgreSQL) as the
    server's writer stores them: the create time column is the payload's."""
    from server.store import ClientEventRow, open_store

    store = open_store(url)
    try:
        # many writers at once, as a site's: the store commits them in groups
        with ThreadPoolExecutor(64) as pool:
            list(pool.map(store.create_client_event,
                          (ClientEventRow(TENANT, event_id, when, payload)
                           for event_id, when, payload in _events(size)), chunksize=256))
        store.flush()
    finally:
        store.close()


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _ask(url: str, name: str) -> dict[str, Any]:
    from footfall.insights.v1 import insights_pb2

    from server.insights import funnel_request, tables
    from server.store import open_store

    store = open_store(url)

    def funnel(count_by: str, breakdown: str = "BY_ITEM") -> Any:
        request = insights_pb2.RunFunnelRequest(
            parent=TENANT, count_by=count_by, breakdown=breakdown)
        return funnel_request.run(store, funnel_request.parse(request))

    asked = {
        "request_funnel": lambda: funnel("REQUEST"),
        "job_funnel": lambda: funnel("JOB"),
        "request_funnel_whole": lambda: funnel("REQUEST", "BREAKDOWN_UNSPECIFIED"),
        "job_table": lambda: tables.list_job_stats(
            store, insights_pb2.ListJobStatsRequest(parent=TENANT, page_size=100)),
    }
    store.client_events_after(TENANT, 0, 1)
    before = _status("VmRSS")
    began, began_cpu = time.perf_counter(), time.process_time()
    answer = asked[name]()
    out = {"question": name, "seconds": round(time.perf_counter() - began, 3),
           "cpu_seconds": round(time.process_time() - began_cpu, 3),
           "peak_growth_mb": round((_status("VmHWM") - before) / 1024, 1),
           "answer_crc": zlib.crc32(answer.SerializeToString(deterministic=True))}
    store.close()
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, help="fill the store with this many first")
    parser.add_argument("--only", nargs="*", default=QUESTIONS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_ask(args.url, args.child)))
        return
    if args.events:
        fill(args.url, args.events)
    for name in args.only:
        done = subprocess.run([sys.executable, "-m", "bench.talent_corpus", "--url", args.url,
                               "--child", name], check=True, capture_output=True, text=True)
        print(done.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
