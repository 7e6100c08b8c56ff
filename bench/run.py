"""`make bench` / `make bench-quick`: every benchmark in one run, then
bench/results/<date>.json and bench/REPORT.md (each figure beside its baseline
from the same run)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google import protobuf

from bench import (
    collect,
    console,
    count,
    imports,
    insights,
    insights_products,
    inventory,
    purge,
    scale,
    versions,
    watch,
    write,
)

HERE = Path(__file__).resolve().parent
PROFILES: dict[str, dict[str, Any]] = {
    "full": {"write": {"requests": 10_000, "reps": 3},
             "import": {"total": 1_000_000, "small": 10_000, "reps": 3},
             "purge": {"total": 1_000_000, "reps": 3, "write_requests": 4_000},
             "scale": {"sizes": (100_000, 1_000_000, 10_000_000), "write_requests": 5_000},
             "collect": {"seconds": 10, "reps": 3},
             "inventory": {"requests": 2_000, "reps": 3},
             "console": {"sizes": (100_000, 1_000_000, 10_000_000), "reps": 3,
                         "write_requests": 5_000, "flood": 100_000, "keep": 1_000},
             "watch": {"latency_watchers": 10, "rate": 200, "events": 3_000, "watchers": 200,
                       "callers": (16, 64), "requests": 5_000, "reps": 3},
             "insights": {"sizes": (1_000_000,), "reps": 3},
             "insights_products": {"events": 1_200_000, "products": 600_000, "reps": 3},
             "count": {"size": 1_000_000, "reps": 5},
             "versions": {"requests": 10_000, "reps": 3, "events": 200_000}},
    "quick": {"write": {"requests": 1_500, "reps": 1},
              "import": {"total": 20_000, "small": 2_000, "reps": 1},
              "purge": {"total": 20_000, "reps": 1, "write_requests": 1_000},
              "scale": {"sizes": (10_000, 50_000), "write_requests": 1_000},
              "collect": {"seconds": 3, "reps": 1},
              "inventory": {"requests": 500, "reps": 1},
              "console": {"sizes": (20_000,), "reps": 1, "write_requests": 1_000,
                          "flood": 10_000, "keep": 1_000, "paced_seconds": 3, "pairs": 3},
              "watch": {"latency_watchers": 4, "rate": 100, "events": 500, "watchers": 200,
                        "callers": (16, 64), "requests": 1_000, "reps": 1},
              "insights": {"sizes": (20_000,), "reps": 1},
              "insights_products": {"events": 20_000, "products": 10_000, "reps": 1},
              "count": {"size": 20_000, "reps": 3},
              "versions": {"requests": 1_500, "reps": 1, "events": 20_000}},
    # what the test suite runs so that no benchmark rots; the figures mean nothing
    "smoke": {"write": {"requests": 100, "reps": 1, "callers": (1, 4)},
              "import": {"total": 1_000, "small": 200, "reps": 1},
              "purge": {"total": 1_000, "reps": 1, "write_requests": 100},
              "scale": {"sizes": (1_000, 2_000), "write_requests": 100},
              "collect": {"seconds": 1, "reps": 1},
              "inventory": {"requests": 50, "reps": 1, "callers": 4},
              "console": {"sizes": (1_000,), "reps": 1, "write_requests": 100,
                          "flood": 300, "keep": 100, "paced_seconds": 1, "pairs": 1},
              "watch": {"latency_watchers": 2, "rate": 100, "events": 20, "watchers": 3,
                        "callers": (4,), "requests": 50, "reps": 1},
              "insights": {"sizes": (1_000,), "reps": 1},
              "insights_products": {"events": 1_000, "products": 500, "reps": 1},
              "count": {"size": 1_000, "reps": 1},
              "versions": {"requests": 100, "reps": 1, "callers": (4,), "events": 500}},
}


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    h2load = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(int(memory) / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "grpcio": grpc.__version__, "protobuf": protobuf.__version__,
            "sqlite": sqlite3.sqlite_version, "h2load": h2load.split("\n")[0],
            "load_average_at_start": os.getloadavg()}


def run(profile: str, only: set[str] | None = None,
        save: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every benchmark of `profile` (or those in `only`), in turn; `save(results)` after
    each, so that a long run that fails or is stopped keeps what it measured. A
    benchmark that fails is named in results["failed"] and the others still run."""
    settings = PROFILES[profile]
    results: dict[str, Any] = {"profile": profile, "machine": machine(),
                               "started": dt.datetime.now(dt.UTC).isoformat()}
    steps = {"write": write.run, "collect": collect.run, "import": imports.run,
             "purge": purge.run, "scale": scale.run, "inventory": inventory.run,
             "console": console.run, "watch": watch.run, "insights": insights.run,
             "insights_products": insights_products.run,
             "count": count.run, "versions": versions.run}
    for name, fn in steps.items():
        if only and name not in only:
            continue
        # What the last step (or `make setup` before the first) left in the page cache
        # is written out first: else it is written during the step, and every fsync of
        # the step waits behind it (section 1 of the run of 2026-12-03 08:00Z, right
        # after a fresh setup: 797 against 1,111 durable writes/s at 1 caller).
        os.sync()
        start = time.monotonic()
        print(f"== {name} ({profile})", flush=True)
        try:
            results[name] = fn(**settings[name])
        except Exception as exc:
            traceback.print_exc()
            results.setdefault("failed", {})[name] = f"{type(exc).__name__}: {exc}"
        else:
            results[name]["wall_seconds"] = time.monotonic() - start
        if save is not None:
            save(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--only", nargs="*",
                        help="write, collect, import, purge, scale, inventory, console, "
                             "watch, insights, insights_products, count, versions")
    parser.add_argument("--no-report", action="store_true", help="print JSON only")
    args = parser.parse_args()
    only = set(args.only) if args.only else None
    if args.no_report:
        results = run(args.profile, only)
        print(json.dumps(results, indent=1))
        sys.exit(1 if results.get("failed") else 0)
    from bench.report import with_run

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    out = HERE / "results" / f"{stamp}-{args.profile}.json"
    out.parent.mkdir(exist_ok=True)
    results = run(args.profile, only,
                  save=lambda so_far: out.write_text(json.dumps(so_far, indent=1) + "\n"))
    if results.get("failed"):
        print(f"FAILED: {', '.join(results['failed'])} (see above); the rest is reported")
    if args.profile == "full":
        report = HERE / "REPORT.md"
        report.write_text(with_run(report.read_text() if report.exists() else "", results))
    print(f"wrote {out}" + (" and bench/REPORT.md" if args.profile == "full" else ""))
    sys.exit(1 if results.get("failed") else 0)


if __name__ == "__main__":
    main()
