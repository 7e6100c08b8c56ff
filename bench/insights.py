"""Insights over a large catalog, computed in process as the servicer does
(`server.insights`): the shop funnel, the per-product table and the totals over
a SQLite store of N events (10,000 visitors, sessions of 10 events, 1,000
priced products; home, detail, add-to-cart, purchase and search events).

Beside each, baselines from the same run: reading and decoding the same events
(the Store's page reads and UserEvent.FromString, nothing computed); reading
each entrant's events gathered by the database (read.entrant_events, what the
shop funnel cannot avoid); reading a row per event of the columns it needs
(Store.typed_rows); the shop funnel as it was computed from those rows
(`by_rows`) and before it read columns (every event decoded, `decode_all`). The
same on PostgreSQL when one answers (FOOTFALL_BENCH_POSTGRES_DSN). Seconds of
wall time and of this process's CPU (/proc, via process_time; the reading
threads included) per run, and of the database's backends on PostgreSQL;
events per second of the whole question.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from footfall.insights.v1 import insights_pb2
from footfall.retail.v2 import user_event_pb2
from google.protobuf import timestamp_pb2

from bench.common import PARENT, postgres_available, postgres_database, summary
from server.insights import funnel_request, read, tables, totals
from server.store import EventRow, Store, open_store

# A visit: most visitors look, fewer add to cart, fewer buy (the types in a session).
FIRST_SECOND, SECONDS_APART = 1_700_000_000, 3  # the events' times: one every 3 s
VISIT = ("home-page-view", "detail-page-view", "search", "detail-page-view", "add-to-cart",
         "detail-page-view", "home-page-view", "detail-page-view", "add-to-cart",
         "purchase-complete")


def _rows(start: int, count: int) -> list[EventRow]:
    rows = []
    for n in range(start, start + count):
        kind = VISIT[n % len(VISIT)]
        event = user_event_pb2.UserEvent(event_type=kind, visitor_id=f"v-{(n // 10) % 10_000}",
                                         session_id=f"s-{n // 10}")
        event.event_time.CopyFrom(timestamp_pb2.Timestamp(seconds=FIRST_SECOND
                                                           + n * SECONDS_APART))
        if kind == "search":
            event.search_query = f"q-{n % 50}"
        elif kind != "home-page-view":
            detail = event.product_details.add()
            detail.product.id = f"p-{n % 1000}"
            detail.product.price_info.price = 1 + n % 100
            detail.product.price_info.currency_code = "USD" if n % 3 else "EUR"
            if kind == "purchase-complete":
                detail.quantity.value = 1 + n % 3
                event.purchase_transaction.revenue = 10
                event.purchase_transaction.currency_code = "USD"
        rows.append(EventRow.from_event(PARENT, event, joined=True))
    return rows


def _timed(fn: Callable[[], Any], reps: int,
           server_cpu: Callable[[], float] | None = None) -> dict[str, Any]:
    wall, cpu, server = [], [], []
    for _ in range(reps):
        began, began_cpu = time.perf_counter(), time.process_time()
        began_server = server_cpu() if server_cpu else 0.0
        fn()
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        if server_cpu:
            server.append(server_cpu() - began_server)
    out = {"seconds": summary(wall), "cpu_seconds": summary(cpu)}
    if server_cpu:
        out["server_cpu_seconds"] = summary(server)
    return out


def _backends_cpu(url: str) -> Callable[[], float]:
    """CPU seconds (/proc) the PostgreSQL backends serving `url`'s database have used:
    the database's own share of a question, which this process's CPU leaves out
    (only this benchmark uses its database; the server is on this machine)."""
    import psycopg

    ticks = os.sysconf("SC_CLK_TCK")

    def used() -> float:
        with psycopg.connect(url, autocommit=True) as conn:
            pids = [pid for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    return used


# Each ratio: a question, the baseline it is compared with.
RATIOS = (("shop_funnel", "read_funnel_types"), ("product_table", "read_all"),
          ("product_table_edges", "product_table"),
          ("totals", "read_all"), ("shop_funnel", "shop_funnel_decoded"),
          ("shop_funnel", "read_funnel_columns"), ("shop_funnel", "shop_funnel_rows"),
          ("shop_funnel", "read_entrant_events"))


def _analyze(url: str) -> None:
    """The planner's statistics of the table just filled, as autovacuum gathers them
    some time after a bulk load (without them PostgreSQL plans for a few rows)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE user_events")


def _product_table_with_edges(size: int) -> insights_pb2.ListProductStatsRequest:
    """The product table from noon of the first day to noon of the last: whole days
    from the rollups, two half days from the events."""
    request = insights_pb2.ListProductStatsRequest(parent=PARENT)
    first_day = FIRST_SECOND // 86_400 + 1
    last_day = (FIRST_SECOND + (size - 1) * SECONDS_APART) // 86_400
    start = first_day * 86_400 + 43_200
    request.start_time.FromSeconds(start)
    # (a store of less than two days: one day from that noon)
    request.end_time.FromSeconds(max(last_day * 86_400 - 43_200, start + 86_400))
    return request


def questions(store: Store, size: int, reps: int,
              server_cpu: Callable[[], float] | None = None,
              only: Collection[str] = ()) -> dict[str, Any]:
    """Each question (`only` those named, when given) asked `reps` times, interleaved."""
    span = read.TimeRange()
    shop = funnel_request.parse(insights_pb2.RunFunnelRequest(parent=PARENT))
    letters = {kind: chr(ord("a") + i) for i, kind in enumerate(funnel_request.SHOP_FUNNEL)}
    edges = _product_table_with_edges(size)
    asked: dict[str, Callable[[], Any]] = {
        "read_all": lambda: sum(1 for _ in read.user_events(store, PARENT, span)),
        "read_funnel_types": lambda: sum(1 for _ in read.user_events(
            store, PARENT, span, funnel_request.SHOP_FUNNEL)),
        "read_funnel_columns": lambda: sum(len(rows) for rows in read.typed_pages(
            store, PARENT, span, {t: 1 for t in funnel_request.SHOP_FUNNEL}, "visitor_id",
            ())),
        "read_entrant_events": lambda: sum(1 for _ in read.entrant_events(
            store, PARENT, span, letters, "visitor_id")),  # (an iterator: read it all)
        "shop_funnel": lambda: funnel_request.run(store, shop),
        "shop_funnel_rows": lambda: funnel_request.run(store, shop, by_rows=True),
        "shop_funnel_decoded": lambda: funnel_request.run(store, shop, decode_all=True),
        "product_table": lambda: tables.list_product_stats(
            store, insights_pb2.ListProductStatsRequest(parent=PARENT)),
        # whole days from the rollups, the two half days at the edges from the events
        "product_table_edges": lambda: tables.list_product_stats(store, edges),
        "totals": lambda: totals.compute_totals(
            store, insights_pb2.ComputeTotalsRequest(parent=PARENT)),
    }
    if only:
        asked = {name: fn for name, fn in asked.items() if name in only}
    out: dict[str, Any] = {"events": size}
    for _ in range(reps):  # interleaved: each question once per round
        for name, fn in asked.items():
            out.setdefault(name, []).append(_timed(fn, 1, server_cpu))
    for name in asked:
        runs = out[name]
        wall = [r["seconds"]["median"] for r in runs]
        cpu = [r["cpu_seconds"]["median"] for r in runs]
        out[name] = {"seconds": summary(wall), "cpu_seconds": summary(cpu),
                     "events_per_second": size / summary(wall)["median"]}
        if server_cpu:
            out[name]["server_cpu_seconds"] = summary(
                [r["server_cpu_seconds"]["median"] for r in runs])
    for name, base in RATIOS:
        if name in asked and base in asked:
            out[name]["ratio_to_" + base] = (out[name]["seconds"]["median"]
                                             / out[base]["seconds"]["median"])
    return out


def _on(url: str, size: int, reps: int, only: Collection[str]) -> dict[str, Any]:
    began = time.perf_counter()
    fill(url, size)
    filled = time.perf_counter() - began
    store = open_store(url)
    try:
        postgres = url.startswith("postgresql")
        out = questions(store, size, reps, _backends_cpu(url) if postgres else None, only)
        out["fill_seconds"] = filled
        return out
    finally:
        store.close()


def run(sizes: tuple[int, ...], reps: int, only: Collection[str] = ()) -> dict[str, Any]:
    """The questions (those in `only`, when given) over stores of each size."""
    results = []
    for size in sizes:
        workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-insights-"))
        try:
            on_sqlite = _on(f"sqlite:///{workdir}/events.db", size, reps, only)
        finally:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)
        if postgres_available():
            with postgres_database() as url:
                on_sqlite["postgres"] = _on(url, size, reps, only)
            for name in ("shop_funnel", "product_table"):
                if name in on_sqlite:
                    on_sqlite[f"postgres_to_sqlite_{name}"] = (
                        on_sqlite["postgres"][name]["seconds"]["median"]
                        / on_sqlite[name]["seconds"]["median"])
        results.append(on_sqlite)
    return {"sizes": results}


def fill(url: str, size: int,
         rows: Callable[[int, int], list[EventRow]] | None = None) -> None:
    """Write `size` events into the store at `url`, 10,000 a commit: `rows(start,
    count)` of them (the bench's own, _rows, by default)."""
    make = rows or _rows
    store = open_store(url)
    try:
        for start in range(0, size, 10_000):
            store.write_user_events(make(start, min(10_000, size - start)))
    finally:
        store.close()
    if url.startswith("postgresql"):
        _analyze(url)


def interleaved(sqlite_url: str, postgres_url: str | None, size: int, reps: int,
                only: Collection[str]) -> dict[str, Any]:
    """`questions` (`only` those) over stores that already hold the bench's `size`
    events (`fill`), one round on SQLite then one on PostgreSQL, `reps` times: the
    ratio of the two is of one moment, whatever else the machine is doing."""
    stores = {"sqlite": open_store(sqlite_url)}
    if postgres_url:
        stores["postgres"] = open_store(postgres_url)
    cpu = {"sqlite": None, "postgres": _backends_cpu(postgres_url) if postgres_url else None}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in stores}
    load = [os.getloadavg()[0]]
    try:
        for _ in range(reps):
            for name, store in stores.items():
                rounds[name].append(questions(store, size, 1, cpu[name], only))
            load.append(os.getloadavg()[0])
    finally:
        for store in stores.values():
            store.close()
    out: dict[str, Any] = {"events": size, "load_average": load}
    for name, runs in rounds.items():
        merged: dict[str, Any] = {"events": size}
        for question in runs[0]:
            if question == "events" or question.startswith("ratio"):
                continue
            merged[question] = {key: summary([r[question][key]["median"] for r in runs])
                                for key in ("seconds", "cpu_seconds", "server_cpu_seconds")
                                if key in runs[0][question]}
            merged[question]["events_per_second"] = size / merged[question]["seconds"]["median"]
        for question, base in RATIOS:
            if question in merged and base in merged:
                merged[question]["ratio_to_" + base] = (merged[question]["seconds"]["median"]
                                                        / merged[base]["seconds"]["median"])
        out[name] = merged
    if "postgres" in out:
        out["postgres_to_sqlite_shop_funnel"] = (
            out["postgres"]["shop_funnel"]["seconds"]["median"]
            / out["sqlite"]["shop_funnel"]["seconds"]["median"])
    return out


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Insights questions over stores filled with "
                                                 "the bench's events, SQLite and PostgreSQL "
                                                 "interleaved.")
    parser.add_argument("--sqlite", required=True, help="sqlite:///PATH")
    parser.add_argument("--postgres", help="postgresql://... (a database of its own)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fill", action="store_true", help="write the events first")
    parser.add_argument("--only", nargs="*", default=(), help="question names")
    args = parser.parse_args()
    if args.fill:
        for url in filter(None, (args.sqlite, args.postgres)):
            fill(url, args.events)
    print(json.dumps(interleaved(args.sqlite, args.postgres, args.events, args.reps,
                                 args.only), indent=1))


if __name__ == "__main__":
    main()
