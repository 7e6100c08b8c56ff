"""Peak memory and CPU of one insights question over a filled store (bench/insights.py's
`fill`), each in a fresh Python subprocess: the growth of VmHWM (/proc/self/status)
from the moment the store is open to the answer, and the process's CPU seconds (and
on PostgreSQL its backends', of a database only this uses).

    python -m bench.insights_memory --url sqlite:///PATH --events N [--only NAME ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

QUESTIONS = ("shop_funnel", "product_funnel", "totals", "product_table", "product_table_edges")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _ask(url: str, name: str, events: int) -> dict[str, Any]:
    """In this process: the question `name` once, after a warm-up of the store."""
    from footfall.insights.v1 import insights_pb2

    from bench.common import PARENT
    from bench.insights import _backends_cpu, _product_table_with_edges
    from server.insights import funnel_request, tables, totals
    from server.store import open_store

    store = open_store(url)
    shop = funnel_request.parse(insights_pb2.RunFunnelRequest(parent=PARENT))
    conditioned = insights_pb2.RunFunnelRequest(parent=PARENT)
    for kind in ("detail-page-view", "add-to-cart", "purchase-complete"):
        conditioned.steps.add(event_type=kind, product_id="p-7" if kind == "detail-page-view"
                              else "")
    asked = {
        "shop_funnel": lambda: funnel_request.run(store, shop),
        "product_funnel": lambda: funnel_request.run(store, funnel_request.parse(conditioned)),
        "totals": lambda: totals.compute_totals(
            store, insights_pb2.ComputeTotalsRequest(parent=PARENT)),
        "product_table": lambda: tables.list_product_stats(
            store, insights_pb2.ListProductStatsRequest(parent=PARENT)),
        "product_table_edges": lambda: tables.list_product_stats(
            store, _product_table_with_edges(events)),
    }
    store.time_bounds(PARENT)
    backends = _backends_cpu(url) if url.startswith("postgresql") else None
    began_backends = backends() if backends else 0.0
    before = _status("VmRSS")
    began, began_cpu = time.perf_counter(), time.process_time()
    answer = asked[name]()
    used_backends = backends() - began_backends if backends else None
    out = {"question": name, "seconds": round(time.perf_counter() - began, 3),
           "cpu_seconds": round(time.process_time() - began_cpu, 3),
           "peak_growth_mb": round((_status("VmHWM") - before) / 1024, 1),
           "backends_cpu_seconds": used_backends,
           "answer_crc": zlib.crc32(answer.SerializeToString(deterministic=True))}
    store.close()
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--only", nargs="*", default=QUESTIONS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_ask(args.url, args.child, args.events)))
        return
    for name in args.only:
        done = subprocess.run([sys.executable, "-m", "bench.insights_memory", "--url", args.url,
                               "--events", str(args.events), "--child", name],
                              check=True, capture_output=True, text=True)
        print(done.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
