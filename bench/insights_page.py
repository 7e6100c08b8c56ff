"""The console's Insights page over a large catalog: what the page adds to the
insights calls it makes.

A SQLite store of N events (2,000 visitors, 500 products priced in USD, EUR
and JPY, sessions of ten events a minute apart over about N/1,400 hours), served by
a Footfall subprocess. Baseline: the three calls the page makes when it opens
(RunFunnel of the shop funnel, ComputeTotals, the first page of
ListProductStats), one after the other over REST from this process. Then the
page in headless Chromium, opened afresh `reps` times, per day and per hour:
the wall time from navigation until the funnel chart, the events chart and the
product table are drawn. Server CPU (user + system, /proc) per open beside each.
The ratio page/baseline says what the page costs over its calls (it makes them
at once, so it can be below 1).

    .venv/bin/python -m bench.insights_page --events 200000 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from footfall.retail.v2 import user_event_pb2
from google.protobuf import timestamp_pb2

from bench import insights
from bench.common import PARENT, footfall
from server.store import EventRow
from tests.browser.cdp import DevTools, chromium, find_chromium

VISIT = ("home-page-view", "search", "detail-page-view", "detail-page-view", "add-to-cart",
         "home-page-view", "detail-page-view", "add-to-cart", "detail-page-view",
         "purchase-complete")
CURRENCIES = ("USD", "EUR", "JPY")
START = 1_700_000_000
READY = ("document.querySelectorAll('#funnel-chart g.step').length === 4 && "
         "!!document.querySelector('#events-chart svg') && "
         "document.querySelectorAll('#products tbody tr').length > 0")


def rows(start: int, count: int) -> list[EventRow]:
    """Events `start` to `start + count`: visits of ten, one a minute within a
    session, 2.6 s between sessions' starts."""
    found = []
    for n in range(start, start + count):
        session, step = divmod(n, len(VISIT))
        kind = VISIT[step]
        event = user_event_pb2.UserEvent(event_type=kind, visitor_id=f"v{session % 2000}",
                                         session_id=f"s{session}")
        event.event_time.CopyFrom(timestamp_pb2.Timestamp(seconds=START + session * 26 + step * 60))
        if kind == "search":
            event.search_query = f"q{session % 40}"
        elif kind != "home-page-view":
            detail = event.product_details.add()
            detail.product.id = f"p{(session * 7 + step) % 500}"
            detail.product.price_info.price = 5 + session % 50
            detail.product.price_info.currency_code = CURRENCIES[session % 3]
            if kind == "purchase-complete":
                detail.quantity.value = 1 + session % 3
                event.purchase_transaction.revenue = detail.product.price_info.price * (
                    1 + session % 3)
                event.purchase_transaction.currency_code = CURRENCIES[session % 3]
        found.append(EventRow.from_event(PARENT, event, joined=True))
    return found


def rest(port: int, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/insights/v1/{path}", data=data,
                                     method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return json.loads(answer.read())


def baseline(port: int, granularity: str) -> None:
    """The calls the page makes on opening, one after the other."""
    steps = [{"eventType": t} for t in ("home-page-view", "detail-page-view", "add-to-cart",
                                        "purchase-complete")]
    rest(port, "POST", f"{PARENT}:runFunnel", {"steps": steps, "countBy": "VISITOR",
                                               "conversionWindow": "86400s"})
    rest(port, "GET", f"{PARENT}:computeTotals?granularity={granularity}&topQueries=10")
    rest(port, "GET", f"{PARENT}/productStats?orderBy=views%20desc&pageSize=20")


async def open_page(devtools: DevTools, url: str) -> float:
    """Seconds from navigating to `url` until the page is drawn."""
    session = await devtools.open_page("about:blank")
    await devtools.send("Emulation.setDeviceMetricsOverride", {
        "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
    began = time.perf_counter()
    await devtools.send("Page.navigate", {"url": url}, session)
    while not await devtools.evaluate(session, READY):
        await asyncio.sleep(0.005)
    took = time.perf_counter() - began
    await devtools.send("Target.closeTarget", {"targetId": (await devtools.send(
        "Target.getTargetInfo", {}, session))["targetInfo"]["targetId"]})
    return took


def measure(server: Any, action: Any, reps: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(reps):
        cpu = server.cpu_seconds()
        began = time.perf_counter()
        action()
        walls.append(time.perf_counter() - began)
        cpus.append(server.cpu_seconds() - cpu)
    return {"seconds": statistics.median(walls), "server_cpu_seconds": statistics.median(cpus)}


def run(size: int, reps: int) -> dict[str, Any]:
    executable = find_chromium()
    assert executable, "Debian's chromium is needed (apt-get install chromium)"
    workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-page-"))
    url = f"sqlite:///{workdir}/events.db"
    insights.fill(url, size, rows)
    out: dict[str, Any] = {"events": size}
    with footfall(url) as server, chromium(executable, workdir / "profile") as devtools_url:
        base = f"http://127.0.0.1:{server.http_port}/console/#insights?parent={PARENT}"

        async def pages(granularity: str) -> list[tuple[float, float]]:
            found = []
            async with DevTools.connect(devtools_url) as devtools:
                await open_page(devtools, base)  # the first load reads the files
                for _ in range(reps):
                    cpu = server.cpu_seconds()
                    wall = await open_page(devtools, f"{base}&granularity={granularity}")
                    found.append((wall, server.cpu_seconds() - cpu))
            return found

        for granularity in ("DAY", "HOUR"):
            calls = measure(server, lambda g=granularity: baseline(server.http_port, g), reps)
            seen = asyncio.run(pages(granularity))
            page = {"seconds": statistics.median(w for w, _ in seen),
                    "server_cpu_seconds": statistics.median(c for _, c in seen)}
            out[granularity.lower()] = {
                "calls": calls, "page": page,
                "page_to_calls": page["seconds"] / calls["seconds"],
                "cpu_page_to_calls": page["server_cpu_seconds"] / calls["server_cpu_seconds"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.reps), indent=2))


if __name__ == "__main__":
    main()
