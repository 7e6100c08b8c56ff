"""The per-product table over a catalog of many distinct products, through a
Footfall server subprocess over REST: seconds (and the server's CPU, /proc) of a
first page, of the next page (its token), and of the first page of another order
(units desc: not computed yet) asked by 8 readers at once; the server's peak RSS
after them.

The store: N events over several whole UTC days and part days at both ends
(4.2 days from 2023-11-14T22:13:20Z: 1.2M events 0.3 s apart), each
naming one of P products (`--products`, default N/2: most products are named
by one or two events), 60% views, 20% add-to-carts, 10% purchases priced in USD or
EUR, 10% home-page views. Two questions: the whole days alone (the rollups), and
from noon of the first day to noon of the last (two half days from the events).
`questions()` runs them on a server over a filled store; `run()` fills a SQLite
file (and a PostgreSQL database when one answers) first.

    .venv/bin/python -m bench.insights_products --sqlite sqlite:///F --fill \
        --events 1200000 --products 600000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from footfall.retail.v2 import user_event_pb2

from bench import insights
from bench.common import PARENT, footfall, postgres_available, postgres_database

FIRST_US, SPAN_US = 1_700_000_000_000_000, 360_000_000_000
DAY_S = 86_400
KINDS = ("detail-page-view",) * 6 + ("add-to-cart",) * 2 + ("purchase-complete",
                                                            "home-page-view")
READERS = 8


def _apart_us(events: int) -> int:
    return SPAN_US // events


def rows_of(events: int, products: int) -> Any:
    """rows(start, count) for insights.fill: `events` events naming one of
    `products`."""
    apart = _apart_us(events)

    from server.store import EventRow

    def rows(start: int, count: int) -> list[EventRow]:
        found = []
        for n in range(start, start + count):
            kind = KINDS[n % len(KINDS)]
            event = user_event_pb2.UserEvent(event_type=kind, visitor_id=f"v{n % 20_000}")
            at = FIRST_US + n * apart
            event.event_time.seconds, event.event_time.nanos = divmod(at, 1_000_000)
            event.event_time.nanos *= 1000
            if kind != "home-page-view":
                detail = event.product_details.add()
                # (a stride prime to `products`: every product, spread over the days)
                detail.product.id = f"sku-{(n * 7_919) % products:07d}"
                if kind == "purchase-complete":
                    detail.product.price_info.price = 1 + n % 97
                    detail.product.price_info.currency_code = "EUR" if n % 3 == 0 else "USD"
                    detail.quantity.value = 1 + n % 2
            found.append(EventRow.from_event(PARENT, event, joined=True))
        return found

    return rows


def ranges(events: int) -> dict[str, tuple[int, int]]:
    """(start, end) seconds of each question: whole days alone, and noon to noon."""
    first_day = FIRST_US // 1_000_000 // DAY_S + 1
    last_day = (FIRST_US + (events - 1) * _apart_us(events)) // 1_000_000 // DAY_S
    return {"whole_days": (first_day * DAY_S, last_day * DAY_S),
            "half_days_at_edges": (first_day * DAY_S - DAY_S // 2, last_day * DAY_S + DAY_S // 2)}


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _get(port: int, span: tuple[int, int], order: str, size: int, token: str = "") -> Any:
    query = {"startTime": _iso(span[0]), "endTime": _iso(span[1]), "orderBy": order,
             "pageSize": str(size)}
    if token:
        query["pageToken"] = token
    url = (f"http://127.0.0.1:{port}/insights/v1/{PARENT}/productStats?"
           + urllib.parse.urlencode(query))
    with urllib.request.urlopen(url, timeout=900) as answer:
        return json.loads(answer.read())


def questions(url: str, events: int, reps: int, ports: tuple[int, int] | None = None,
              order: str = "views desc", size: int = 20) -> dict[str, Any]:
    """Each question's first page, next page and 8 readers' first pages, `reps`
    times interleaved, on one server over the store at `url`."""
    extra = ("--port", str(ports[0]), "--http-port", str(ports[1])) if ports else ()
    out: dict[str, Any] = {"events": events, "load_average": [os.getloadavg()[0]]}
    with footfall(url, *extra) as server:
        port = server.http_port
        seen: dict[str, dict[str, list[float]]] = {}

        def timed(name: str, fn: Any) -> Any:
            cpu, began = server.cpu_seconds(), time.perf_counter()
            answer = fn()
            of = seen.setdefault(name, {"seconds": [], "server_cpu_seconds": []})
            of["seconds"].append(time.perf_counter() - began)
            of["server_cpu_seconds"].append(server.cpu_seconds() - cpu)
            return answer

        for _ in range(reps):
            for name, span in ranges(events).items():
                first = timed(f"{name}_first_page", lambda s=span: _get(port, s, order, size))
                timed(f"{name}_next_page",
                      lambda s=span, f=first: _get(port, s, order, size, f["nextPageToken"]))

                def together(s: tuple[int, int] = span) -> None:
                    threads = [threading.Thread(target=_get, args=(port, s, "units desc", size))
                               for _ in range(READERS)]
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()

                timed(f"{name}_{READERS}_readers_first_page", together)
            out["load_average"].append(os.getloadavg()[0])
        for name, of in seen.items():
            out[name] = {key: statistics.median(values) for key, values in of.items()}
        out["peak_rss_mib"] = server.peak_rss_kib() / 1024
    return out


def run(events: int, products: int, reps: int) -> dict[str, Any]:
    """`questions` over a SQLite file filled afresh, and a PostgreSQL database when
    one answers."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="footfall-bench-products-") as workdir:
        url = f"sqlite:///{Path(workdir)}/events.db"
        insights.fill(url, events, rows_of(events, products))
        out["sqlite"] = questions(url, events, reps)
    if postgres_available():
        with postgres_database() as url:
            insights.fill(url, events, rows_of(events, products))
            out["postgres"] = questions(url, events, reps)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", help="sqlite:///PATH")
    parser.add_argument("--postgres", help="postgresql://... (a database of its own)")
    parser.add_argument("--events", type=int, default=1_200_000)
    parser.add_argument("--products", type=int)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fill", action="store_true", help="write the events first")
    parser.add_argument("--ports", type=int, nargs=2, help="the server's gRPC and HTTP ports")
    parser.add_argument("--order", default="views desc")
    args = parser.parse_args()
    urls = [u for u in (args.sqlite, args.postgres) if u]
    if not urls:
        print(json.dumps(run(args.events, args.products or args.events // 2, args.reps),
                         indent=1))
        return
    if args.fill:
        for url in urls:
            insights.fill(url, args.events, rows_of(args.events,
                                                    args.products or args.events // 2))
    print(json.dumps({url.split(":")[0]: questions(url, args.events, args.reps,
                                                   args.ports, args.order)
                      for url in urls}, indent=1))


if __name__ == "__main__":
    main()
