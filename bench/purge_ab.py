"""Purge before/after in one run: bench/purge.py's purge (`eventTime < half` of N
events, one a second) run in process by this checkout and by older commits, in
turns on copies of one SQLite store, beside a raw DELETE of the same rows on
another copy (purge.raw_delete), so a busy machine weighs on every side alike.

    python -m bench.purge_ab REV [REV ...] [--events 1000000] [--reps 3] [--json FILE]

Each side runs in a process of its own (REV exported as bench/ab.py does), which
reports the purge's wall time and its own CPU time (user + system, from
/proc/self/stat: the writer thread's decoding is in it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.ab import exported
from bench.common import PARENT, ROOT, summary
from bench.data import BASE_SECONDS, _rfc3339, fill_store, temp_dir
from bench.purge import raw_delete

# Run by each side with its own tree first on the path: only what both trees have.
_CHILD = """
import json, os, sys, threading, time
from footfall.retail.v2 import purge_config_pb2
from server.clock import SystemClock
from server.operations.runner import JobContext
from server.retail import purge
from server.store import open_store
from server.store.rows import OperationRecord

def cpu():
    fields = open("/proc/self/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

url, parent, before = sys.argv[1:4]
store = open_store(url)
name = parent + "/operations/purge-user-events-bench"
request = purge_config_pb2.PurgeUserEventsRequest(
    parent=parent, filter='eventTime < "' + before + '"', force=True)
store.create_operation(OperationRecord(name, purge.KIND, False, 1,
                                       request.SerializeToString(), b""))
record = store.claim_operation("bench", 0, 10**12, lambda _: False)
cpu0, wall0 = cpu(), time.perf_counter()
purge.run_purge(JobContext(record, store, SystemClock(), "bench", 10**12, threading.Event()))
wall, used = time.perf_counter() - wall0, cpu() - cpu0
response = purge_config_pb2.PurgeUserEventsResponse()
from google.longrunning import operations_pb2
operations_pb2.Operation.FromString(store.get_operation(name).operation).response.Unpack(
    response)
store.close()
print(json.dumps({"wall_s": wall, "cpu_s": used, "purged": response.purged_events_count}))
"""


def _side(tree: Path | None, url: str, before: str) -> dict[str, Any]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'generated'}"
    out = subprocess.run([sys.executable, "-c", _CHILD, url, PARENT, before], env=env,
                         cwd=tree or ROOT, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run(revs: list[str], total: int, reps: int) -> dict[str, Any]:
    """Medians (min, max) of each side's purge wall and CPU seconds: each REV, then
    "after" (this checkout), in a rotating order."""
    folder = temp_dir("footfall-bench-purge-ab-")
    half_s = BASE_SECONDS + total // 2
    sides = [*revs, "after"]
    seen: dict[str, dict[str, list[float]]] = {
        side: {"wall_s": [], "cpu_s": []} for side in sides}
    raw: list[float] = []
    loads = [os.getloadavg()[0]]
    try:
        db = folder / "events.db"
        fill_store(f"sqlite:///{db}", PARENT, total)
        with contextlib.ExitStack() as stack:
            trees = {rev: stack.enter_context(exported(rev)) for rev in revs}
            for rep in range(reps):
                copy = folder / "copy.db"
                shutil.copy(db, copy)
                raw.append(raw_delete(copy, half_s * 1_000_000))
                for side in sides[rep % len(sides):] + sides[:rep % len(sides)]:
                    shutil.copy(db, copy)
                    for suffix in ("-wal", "-shm"):
                        Path(f"{copy}{suffix}").unlink(missing_ok=True)
                    got = _side(trees.get(side), f"sqlite:///{copy}", _rfc3339(half_s))
                    if got["purged"] != total // 2:
                        raise RuntimeError(f"{side} purged {got['purged']}, not {total // 2}")
                    for key in ("wall_s", "cpu_s"):
                        seen[side][key].append(got[key])
                loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result: dict[str, Any] = {"events": total, "purged": total // 2, "load_average": loads,
                              "raw_delete_s": summary(raw)}
    for side, values in seen.items():
        result[side] = {key: summary(v) for key, v in values.items()}
        result[side]["wall_to_raw"] = (result[side]["wall_s"]["median"]
                                       / result["raw_delete_s"]["median"])
    for side in revs:
        result[side]["after_to_this"] = {
            key: result["after"][key]["median"] / result[side][key]["median"]
            for key in ("wall_s", "cpu_s")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs="+")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    result = run(args.revs, args.events, args.reps)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
