"""Every benchmark script runs end to end on tiny sizes, so none of them rots.

Figures from these sizes mean nothing and nothing here asserts on speed; what is
checked is that each benchmark completes, verifies its own work (stored and purged
counts) and yields a report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(620)
def test_every_benchmark_runs_on_tiny_sizes() -> None:
    missing = [tool for tool in ("h2load", "wrk") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"LOUD SKIP: {', '.join(missing)} missing (Debian's nghttp2-client, wrk); "
                    "`make test-tools` installs them")
    out = subprocess.run([sys.executable, "-m", "bench.run", "--profile", "smoke",
                          "--no-report"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)  # (a loaded CI's run took more than 280 s)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout[out.stdout.index("{"):])
    assert {"write", "collect", "import", "purge", "scale", "inventory", "console", "watch",
            "versions", "machine"} <= set(results)
    assert results["collect"]["footfall_per_second"]["median"] > 0
    for target in ("empty-threaded", "empty-aio", "empty-uvloop", "footfall-sqlite-full",
                   "footfall-sqlite-normal"):
        assert results["write"][target]["4"]["per_second"]["median"] > 0
    assert results["import"]["footfall_per_second"]["median"] > 0
    assert results["purge"]["purged"] == 500
    assert len(results["scale"]["points"]) == 2
    assert results["inventory"]["set_inventory"]["per_second"]["median"] > 0
    assert [p["none"]["returned"] for p in results["console"]["list"]] == [100]
    assert results["console"]["refusals"]["ratio_kept_to_not_kept"]["median"] > 0
    assert all(results["console"]["refusals_paced"][kind]["ratio"] > 0
               for kind in ("alike", "unlike"))
    assert all(results["console"]["refusals_together"][kind]["ratio_kept_to_not_kept"]["this"]
               ["median"] > 0 for kind in ("alike", "unlike"))
    flood = results["console"]["flood"]  # it checks every refusal was recorded
    assert flood["rows"] == flood["keep"] < flood["refused"]
    watch = results["watch"]  # it checks every watcher received every write
    assert watch["latency"]["arrivals"] == 2 * 20
    assert watch["watchers"]["received_per_watcher"] == 500 + 50
    assert results["count"]["filtered_pages"]["ms"]["median"] > 0  # it checks its counts
    products = results["insights_products"]["sqlite"]  # (a table of 500 products)
    assert products["whole_days_next_page"]["seconds"] > 0
    versions = results["versions"]  # it checks what was stored and re-imported
    assert set(versions["write"]["4"]["ratios"]) == {"v2", "v2beta", "v2alpha"}
    assert versions["export"]["export_per_second"]["median"] > 0

    sys.path.insert(0, str(ROOT))
    from bench.report import render

    report = render(results)
    for heading in ("## 1. WriteUserEvent", "## 2. Pixel", "## 3. Import", "## 4. Purge",
                    "## 5. Scale", "## 6. Inventory", "## 7. Console",
                    "## 8. `events count --server`", "## 9. Insights", "## 10. Watch streams"):
        assert heading in report
    assert "loaded at the same moment" in report


def test_a_run_replaces_only_the_part_of_the_report_it_wrote() -> None:
    """`make bench` rewrites its own part of bench/REPORT.md and keeps what was written
    by hand after it (a report without the marks is kept whole, but its title)."""
    sys.path.insert(0, str(ROOT))
    from bench.report import BEGIN, EARLIER, END, with_run

    machine = {"cpu": "cpu", "cores": 2, "memory_gib": 1.0, "kernel": "k", "python": "3",
               "grpcio": "g", "protobuf": "p", "sqlite": "s", "h2load": "h",
               "load_average_at_start": (0.1, 0.2, 0.3)}

    def results(started: str, failed: dict[str, str] | None = None) -> dict[str, object]:
        return {"profile": "full", "machine": machine, "started": started,
                **({"failed": failed} if failed else {})}

    old = "# Footfall benchmark report\n\nGenerated long ago.\n\n## Analysis\n\nBy hand.\n"
    first = with_run(old, results("run-1"))
    assert first.startswith("# Footfall benchmark report\n\n" + BEGIN)
    assert "run-1" in first and "Generated long ago." in first.split(END)[1]
    assert first.split(END)[1].lstrip().startswith(EARLIER)
    second = with_run(first + "\nAdded later by hand.\n", results("run-2", {"purge": "boom"}))
    assert "run-1" not in second and "run-2" in second.split(END)[0]
    assert "- purge: boom" in second.split(END)[0]
    assert second.split(END)[1] == (first.split(END)[1] + "\nAdded later by hand.\n")
    assert second.count(BEGIN) == second.count(END) == 1


@pytest.mark.timeout(120)
def test_the_in_process_bench_runs() -> None:
    """bench/inprocess.py (what `bench.ab --only inprocess` runs under either tree) serves
    its pixels and durable writes: since unary calls read their own request (server/rpc.py
    _read_in_time) it called a handler the guard no longer gave and stopped with a
    TypeError."""
    out = subprocess.run([sys.executable, str(ROOT / "bench/inprocess.py"), "--calls", "64",
                          "--rounds", "1"], cwd=ROOT, capture_output=True, text=True,
                         timeout=110)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.splitlines()[-1])
    for kind in ("pixel", "write"):
        assert figures[kind]["loop_us"]["min"] > 0
