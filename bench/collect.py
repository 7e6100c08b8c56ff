"""Pixel GETs over HTTP (wrk): Footfall's CollectUserEvent beside a bare handler
that answers the same GIF, measured in turns in one run. Every Footfall GET stores
an event (the server stamps the time, so none is a duplicate)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from bench.common import PARENT, ROOT, Server, footfall, summary

EVENT = ('{"eventType":"detail-page-view","visitorId":"visitor-1",'
         '"productDetails":[{"product":{"id":"sku-1"}}],"uri":"https://shop.example/p/1"}')
PATH = f"/v2/{PARENT}/userEvents:collect?userEvent={quote(EVENT)}"


@contextmanager
def bare() -> Iterator[Server]:
    process = subprocess.Popen([sys.executable, str(ROOT / "bench/bare_http.py")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().split()[1])
        yield Server(process, 0, ROOT, port)
    finally:
        process.terminate()
        process.wait(10)


def wrk(port: int, seconds: int, connections: int) -> dict[str, float]:
    wrk_bin = shutil.which("wrk")
    if wrk_bin is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does)")
    out = subprocess.run([wrk_bin, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True,
                         check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    if re.search(r"Non-2xx or 3xx responses", out):
        raise RuntimeError(f"pixel GETs failed:\n{out}")
    return {"per_second": rate, "requests": count}


def measured(server: Server, seconds: int, connections: int) -> tuple[float, float]:
    """(requests/s, server CPU µs per request from /proc) of one wrk run."""
    before = server.cpu_seconds()
    result = wrk(server.http_port, seconds, connections)
    return result["per_second"], (server.cpu_seconds() - before) / result["requests"] * 1e6


def run(seconds: int = 10, reps: int = 3, connections: int = 16) -> dict[str, Any]:
    """Both servers up at once and measured in turns (bare first, then Footfall,
    then again), so that whatever else the machine does weighs on both alike."""
    rates: dict[str, list[float]] = {"bare": [], "footfall": []}
    cpu: dict[str, list[float]] = {"bare": [], "footfall": []}
    load = os.getloadavg()
    with bare() as base, footfall() as ours:
        servers = {"bare": base, "footfall": ours}
        for server in servers.values():
            wrk(server.http_port, 1, connections)  # warm-up
        for _ in range(reps):
            for name, server in servers.items():
                rate, us = measured(server, seconds, connections)
                rates[name].append(rate)
                cpu[name].append(us)
    b, o = summary(rates["bare"]), summary(rates["footfall"])
    bc, oc = summary(cpu["bare"]), summary(cpu["footfall"])
    return {"connections": connections, "bare_per_second": b, "footfall_per_second": o,
            "ratio": o["median"] / b["median"], "bare_cpu_us_per_call": bc,
            "footfall_cpu_us_per_call": oc, "cpu_ratio": oc["median"] / bc["median"],
            "load_average": [load, os.getloadavg()]}


if __name__ == "__main__":
    print(run(seconds=3, reps=1))
