"""Pixel GETs over HTTP (wrk): Footfall's CollectUserEvent beside bare handlers
that answer the same GIF (aiohttp on asyncio's loop and on uvloop's; the faster is
the bar), measured in turns in one run. Every Footfall GET stores an event (the
server stamps the time, so none is a duplicate)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import quote

from bench.common import PARENT, ROOT, Server, footfall, summary

EVENT = ('{"eventType":"detail-page-view","visitorId":"visitor-1",'
         '"productDetails":[{"product":{"id":"sku-1"}}],"uri":"https://shop.example/p/1"}')
PATH = f"/v2/{PARENT}/userEvents:collect?userEvent={quote(EVENT)}"


# The bare handlers, by name: bench/bare_http.py's argument (its event loop).
BARE = {"bare": "asyncio", "bare-uvloop": "uvloop"}


@contextmanager
def bare(loop: str) -> Iterator[Server]:
    process = subprocess.Popen([sys.executable, str(ROOT / "bench/bare_http.py"), loop],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().split()[1])
        yield Server(process, 0, ROOT, port)
    finally:
        process.terminate()
        process.wait(10)


# wrk's latency units, in milliseconds.
_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


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
    p99, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
    return {"per_second": rate, "requests": count, "p99_ms": float(p99) * _MS[unit]}


def measured(server: Server, seconds: int, connections: int) -> tuple[float, float, float]:
    """(requests/s, server CPU µs per request from /proc, p99 ms) of one wrk run."""
    before = server.cpu_seconds()
    result = wrk(server.http_port, seconds, connections)
    return (result["per_second"], (server.cpu_seconds() - before) / result["requests"] * 1e6,
            result["p99_ms"])


def run(seconds: int = 10, reps: int = 3, connections: int = 16) -> dict[str, Any]:
    """Every server up at once and measured in turns (the bare ones first, then
    Footfall, then again), so that whatever else the machine does weighs on all
    alike; Footfall's ratios are to the bare handler of the higher rate ("vs")."""
    names = (*BARE, "footfall")
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    p99: dict[str, list[float]] = {name: [] for name in names}
    load = os.getloadavg()
    with ExitStack() as stack:
        servers = {name: stack.enter_context(bare(loop)) for name, loop in BARE.items()}
        servers["footfall"] = stack.enter_context(footfall())
        for server in servers.values():
            wrk(server.http_port, 1, connections)  # warm-up
        for _ in range(reps):
            for name, server in servers.items():
                rate, us, late = measured(server, seconds, connections)
                rates[name].append(rate)
                cpu[name].append(us)
                p99[name].append(late)
    best = max(BARE, key=lambda name: summary(rates[name])["median"])
    b, o = summary(rates[best]), summary(rates["footfall"])
    bc, oc = summary(cpu[best]), summary(cpu["footfall"])
    return {"connections": connections,
            "bare": {name: {"per_second": summary(rates[name]),
                            "cpu_us_per_call": summary(cpu[name]),
                            "p99_ms": summary(p99[name])} for name in BARE},
            "vs": best, "footfall_per_second": o, "ratio": o["median"] / b["median"],
            "footfall_cpu_us_per_call": oc, "cpu_ratio": oc["median"] / bc["median"],
            "footfall_p99_ms": summary(p99["footfall"]),
            "load_average": [load, os.getloadavg()]}


if __name__ == "__main__":
    print(run(seconds=3, reps=1))
