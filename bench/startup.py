"""Start-up of `footfall serve` as a test suite's emulator starts it: from exec to the
--ready-file existing, and to the first WriteUserEvent of the official client answered.

    python -m bench.startup [--runs 20] [--tree PATH ...] [--json FILE]

Each tree (a checkout; default this one) is run with PYTHONPATH=TREE ahead of the
editable install, on `memory://` and on a fresh SQLite file with HTTP off, and on
`memory://` with HTTP on a free port (README's fixture), in turns (tree by tree, start
by start, run by run), so a busy machine weighs on every side alike. A run starts
`python -m server serve --port 0 --http-port 0|-1 --ready-file F`, polls for F
every millisecond, then opens a plaintext channel and writes one event with
google-cloud-retail's client (its construction included: a fixture does that too).
CPU is the server's (user + system, from /proc) at the first answer. The figures are
wall-clock on a shared machine: quote the medians beside the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, _peak_rss_kib, cpu_seconds

CATALOG = "projects/bench/locations/global/catalogs/default_catalog"
FIGURES = ("ready_s", "first_write_s", "cpu_s", "rss_mib")


def _client(address: str) -> Any:
    import grpc
    from google.cloud import retail_v2
    from google.cloud.retail_v2.services.user_event_service.transports import (
        UserEventServiceGrpcTransport,
    )

    return retail_v2, retail_v2.UserEventServiceClient(
        transport=UserEventServiceGrpcTransport(channel=grpc.insecure_channel(address)))


# The starts measured: the store, and --http-port (0: off; -1: a free port, as
# README's fixture starts it, for the console API).
STARTS = {"memory://": ("memory://", "0"), "sqlite": ("sqlite", "0"),
          "memory:// + HTTP": ("memory://", "-1")}


def one_start(tree: Path, store: str, folder: Path, http_port: str = "0"
              ) -> dict[str, float]:
    """Seconds from exec to the ready file and to the first write answered, and the
    server's CPU seconds and peak RSS (MiB) then."""
    ready = folder / "ready.json"
    if store == "sqlite":
        store = f"sqlite:///{folder / 'events.db'}"
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules compiled once
    log = (folder / "server.log").open("wb")
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--store", store, "--port", "0",
         "--http-port", http_port, "--ready-file", str(ready)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = start + 30
        while not ready.exists():
            if server.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError((folder / "server.log").read_text())
            time.sleep(0.001)
        at_ready = time.perf_counter() - start
        ports = json.loads(ready.read_text())
        retail_v2, client = _client(ports["grpc"])
        client.write_user_event(retail_v2.WriteUserEventRequest(
            parent=CATALOG, user_event=retail_v2.UserEvent(event_type="home-page-view",
                                                           visitor_id="v")))
        at_write = time.perf_counter() - start
        cpu = cpu_seconds(server.pid)
        rss = _peak_rss_kib(server.pid) / 1024
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    return {"ready_s": at_ready, "first_write_s": at_write, "cpu_s": cpu, "rss_mib": rss}


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]}


def run(trees: list[Path], runs: int) -> dict[str, Any]:
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        str(tree): {start: [] for start in STARTS} for tree in trees}
    # Warm the client's own imports (a fixture's process has them loaded already) and
    # write each tree's bytecode, so no run pays for compiling (as an installed
    # Footfall does not).
    _client("127.0.0.1:1")
    for tree in trees:
        with tempfile.TemporaryDirectory(prefix="footfall-startup-") as folder:
            one_start(tree, "memory://", Path(folder))
    for _ in range(runs):
        for tree in trees:
            for start, (store, http_port) in STARTS.items():
                with tempfile.TemporaryDirectory(prefix="footfall-startup-") as folder:
                    samples[str(tree)][start].append(
                        one_start(tree, store, Path(folder), http_port))
    return {tree: {store: {what: _stats([s[what] for s in runs_of])
                           for what in FIGURES}
                   for store, runs_of in stores.items()}
            for tree, stores in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tree", type=Path, action="append",
                        help="a checkout to start (repeat for A/B; default this one)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = run(args.tree or [ROOT], args.runs)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    for tree, stores in results.items():
        print(tree)
        for store, figures in stores.items():
            print(f"  {store:<16} " + "  ".join(
                f"{what} median {row['median'] * 1000:6.0f} ms p90 {row['p90'] * 1000:6.0f} ms"
                for what, row in figures.items() if what.endswith("_s"))
                + f"  peak RSS median {figures['rss_mib']['median']:.0f} MiB")


if __name__ == "__main__":
    main()
