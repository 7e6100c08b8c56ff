"""Durable WriteUserEvent at one caller (issue 12's bar: PostgreSQL >= 0.8x SQLite),
by an older commit and by this checkout, each on SQLite (synchronous=full) and on
PostgreSQL (a fresh database each, dropped afterwards), in rotating turns: rates,
p50, and per write the server's CPU (every thread) and that of its PostgreSQL
backends, read in nanoseconds from /proc/PID/schedstat (a tick of /proc/PID/stat is
10 ms, a few writes).

    python -m bench.pg_write REV [--requests 1500] [--reps 10] [--callers 1]
        [--port 0] [--database-prefix footfall_pg_write]

`--port N`: the servers listen on N to N+3 (0: free ports of their own);
`--database-prefix`: what the names of its databases begin with. On a
shared machine trust the CPU per write (the least over the turns too) before the
rates, which the others' load moves by half.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench import write
from bench.ab import exported
from bench.common import ADMIN_DSN, h2load, postgres_database, process_tree


def cpu_ns(pid: int) -> int:
    """CPU time of `pid`, its threads and its children, in nanoseconds."""
    total = 0
    for process in process_tree(pid):
        for task in Path(f"/proc/{process}/task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
                pass
    return total


def backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to `database`."""
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        return [pid for (pid,) in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]


@contextmanager
def serving(tree: Path | None, store: str, port: int) -> Iterator[tuple[int, int]]:
    """A server of `tree` (None: this checkout) on `store`: its pid and port."""
    folder = Path(tempfile.mkdtemp(prefix="footfall-pg-write-"))
    env = {**os.environ, "FOOTFALL_LOG_LEVEL": "WARNING"}
    if tree is not None:
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'generated'}"
    ready = folder / "ready"
    store = store.replace("FOLDER", str(folder))
    with open(folder / "log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(port), "--http-port", "-1",
             "--store", store, "--gcs-root", str(folder / "gcs"), "--ready-file", str(ready)],
            cwd=folder, env=env, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() or not ready.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "log").read_text())
            time.sleep(0.05)
        yield process.pid, _port(ready.read_text())
    finally:
        process.terminate()
        process.wait(30)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def _port(ready: str) -> int:
    """The gRPC port a --ready-file names (server/ready_file.py)."""
    import json

    return int(json.loads(ready)["grpcPort"])


def run(rev: str, requests: int, reps: int, callers: int, port: int,
        prefix: str = "footfall_pg_write") -> dict[str, Any]:
    frame = write.frame_file()
    servers: dict[str, tuple[int, int, str | None]] = {}
    try:
        with exported(rev) as tree, ExitStack() as stack:
            for side, code in (("before", tree), ("after", None)):
                for kind in ("sqlite", "postgres"):
                    database = None
                    store = "sqlite:///FOLDER/events.db"
                    if kind == "postgres":
                        store = stack.enter_context(postgres_database(prefix))
                        database = store.rsplit("/", 1)[1]
                    pid, bound = stack.enter_context(
                        serving(code, store, port + len(servers) if port else 0))
                    servers[f"{kind}-{side}"] = (pid, bound, database)
            for _, bound, _ in servers.values():
                h2load(bound, write.PATH, frame, callers, min(requests, 500))  # warm-up
            runs: dict[str, dict[str, list[float]]] = {
                name: {"rate": [], "p50": [], "server": [], "backend": []} for name in servers}
            names = list(servers)
            loads = []
            for rep in range(reps):
                loads.append(os.getloadavg()[0])
                turn = rep % len(names)
                for name in names[turn:] + names[:turn]:
                    pid, bound, database = servers[name]
                    pids = backends(database) if database else []
                    server, backend = cpu_ns(pid), sum(map(cpu_ns, pids))
                    load = h2load(bound, write.PATH, frame, callers, requests)
                    if load.failed:
                        raise RuntimeError(f"{name}: {load.failed} calls failed")
                    runs[name]["server"].append((cpu_ns(pid) - server) / requests / 1e3)
                    runs[name]["backend"].append(
                        (sum(map(cpu_ns, pids)) - backend) / requests / 1e3)
                    runs[name]["rate"].append(load.per_second)
                    runs[name]["p50"].append(load.p50_ms)
    finally:
        frame.unlink()
    table: dict[str, Any] = {name: {what: {"median": statistics.median(values),
                                           "min": min(values), "max": max(values)}
                                    for what, values in found.items()}
                             for name, found in runs.items()}
    for side in ("before", "after"):
        table[f"ratio-{side}"] = (table[f"postgres-{side}"]["rate"]["median"]
                                  / table[f"sqlite-{side}"]["rate"]["median"])
    table["load_average"] = os.getloadavg()
    table["load_seen"] = (min(loads), max(loads))  # (1-minute, as each rep began)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--callers", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--database-prefix", default="footfall_pg_write")
    args = parser.parse_args()
    table = run(args.rev, args.requests, args.reps, args.callers, args.port,
                args.database_prefix)
    seen = table.pop("load_seen")
    print(f"before = {args.rev}; load average "
          f"{'/'.join(f'{x:.1f}' for x in table.pop('load_average'))} at the end, "
          f"{seen[0]:.1f}-{seen[1]:.1f} as the reps began")
    print(f"{'':18}{'per s':>7} {'(range)':>11} {'p50 ms':>7} {'server us':>10} {'(least)':>8} "
          f"{'backend us':>11} {'(least)':>8}")
    for name, row in table.items():
        if name.startswith("ratio"):
            continue
        rates = f"{row['rate']['min']:.0f}-{row['rate']['max']:.0f}"
        print(f"{name:18}{row['rate']['median']:7.0f} {rates:>11} {row['p50']['median']:7.3f} "
              f"{row['server']['median']:10.1f} {row['server']['min']:8.1f} "
              f"{row['backend']['median']:11.1f} {row['backend']['min']:8.1f}")
    print(f"PostgreSQL / SQLite: before {table['ratio-before']:.3f}, "
          f"after {table['ratio-after']:.3f}")


if __name__ == "__main__":
    main()
