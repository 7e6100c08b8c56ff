"""The latency tail of durable writes beside the empty uvloop handler's, in one
interleaved run: a fresh server of each side every turn (empty, Footfall, empty,
Footfall, ...), each loaded by h2load at `--callers` after a warm-up, with the
server's CPU per call from /proc and every call's latency kept (h2load's log).

    python -m bench.tail [--turns 3] [--requests 10000] [--callers 16]
        [--port 62500] [--rev LABEL=REV ...] [--keep DIR] [--quiet CORES]
        [--variant LABEL NAME=VALUE ...]

Each `--rev` adds a Footfall server of that commit to every turn (exported as
bench.ab does, so edits made meanwhile in the checkout stay out of the run); each
`--variant` adds one more of this checkout, with those environment variables set
(a knob tried by hand); `--quiet CORES` runs a load again (after 2 s, up to
`--tries`) while the rest of the machine took more than that many cores during it
(from /proc/stat, less the server's and h2load's CPU);
`--keep DIR` keeps each turn's h2load log (start µs since the epoch, status,
µs taken) for a look at when the slow calls came.

Besides p50/p99 it says how the calls past the empty handler's p99 bunch: the
share of them that came within 10 ms of another such call. Calls slowed by a stall
(a collection, a slow fsync) come in bunches of about the callers; a call that
missed its batch and waited for the next is slow alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import write
from bench.ab import exported
from bench.common import (
    ROOT,
    Server,
    _stop,
    _wait_ready,
    cpu_seconds,
    h2load_path,
    percentile,
    summary,
)


def _free_port() -> int:
    """A port no one listens on now (--port 0: each server is told its own, as neither
    says which one it took where this reads it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def empty(port: int) -> Iterator[Server]:
    env = {**os.environ, "FOOTFALL_BENCH_PORT": str(port)}
    process = subprocess.Popen([sys.executable, str(ROOT / "bench/empty_server.py"), "uvloop"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        assert process.stdout is not None
        process.stdout.readline()
        yield Server(process, port, ROOT)
    finally:
        _stop(process)


@contextlib.contextmanager
def footfall(port: int, env: dict[str, str]) -> Iterator[Server]:
    workdir = Path(tempfile.mkdtemp(prefix="footfall-tail-"))
    args = [sys.executable, "-m", "server", "serve", "--port", str(port), "--http-port", "0",
            "--store", f"sqlite:///{workdir}/events.db", "--gcs-root", str(workdir / "gcs")]
    process = subprocess.Popen(args, cwd=workdir, stderr=subprocess.PIPE,
                               env={**os.environ, "FOOTFALL_LOG_LEVEL": "INFO", **env})
    try:
        _wait_ready(process)
        yield Server(process, port, workdir)
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def load(server: Server, frame: Path, callers: int, requests: int,
         keep: Path | None, name: str) -> dict[str, Any]:
    """One h2load run: rate, percentiles, CPU µs a call, bunching of the slow."""
    log = Path(tempfile.mktemp(prefix="h2load-", suffix=".log"))
    before = cpu_seconds(server.process.pid)
    busy, loader, started = machine_busy(), children_cpu(), time.monotonic()
    out = subprocess.run(
        [h2load_path(), "-n", str(requests), "-c", str(callers), "-m", "1", "-d", str(frame),
         "-H", "content-type: application/grpc", "-H", "te: trailers", "--log-file", str(log),
         f"http://127.0.0.1:{server.port}{write.PATH}"],
        capture_output=True, text=True, check=True).stdout
    served = cpu_seconds(server.process.pid) - before
    # what the rest of the machine took meanwhile, in cores (other work: a busy turn)
    others = (machine_busy() - busy - served - (children_cpu() - loader)) \
        / (time.monotonic() - started)
    cpu = served / requests * 1e6
    if " 0 failed" not in out:
        raise RuntimeError(f"{name}: calls failed:\n{out}")
    calls = [(int(start), int(took)) for start, _, took in
             (line.split("\t") for line in log.read_text().splitlines())]
    if keep is not None:
        shutil.copy(log, keep / f"{name}.log")
    log.unlink()
    times = sorted(took / 1000 for _, took in calls)
    first = min(start for start, _ in calls)
    last = max(start + took for start, took in calls)
    return {"per_second": requests / (last - first) * 1e6, "cpu_us": cpu,
            "p50": percentile(times, 50), "p90": percentile(times, 90),
            "p99": percentile(times, 99), "p999": percentile(times, 99.9), "max": times[-1],
            "others": max(0.0, others), "calls": calls}


def machine_busy() -> float:
    """CPU seconds every core has spent busy since boot (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's children that ended (h2load)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bunched(calls: list[tuple[int, int]], over_ms: float) -> tuple[int, float]:
    """How many calls took longer than `over_ms`, and the share of them that ended
    within 10 ms of another such call's end."""
    ends = sorted(start + took for start, took in calls if took / 1000 > over_ms)
    if not ends:
        return 0, 0.0
    near = sum(1 for i, end in enumerate(ends)
               if (i and end - ends[i - 1] <= 10_000) or (i + 1 < len(ends)
                                                          and ends[i + 1] - end <= 10_000))
    return len(ends), near / len(ends)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--port", type=int, default=0, help="0: a free one each")
    parser.add_argument("--rev", nargs="+", default=[])
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--quiet", type=float, help="run a load again (up to --tries) "
                        "while other work took more than this many cores")
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--variant", nargs="+", action="append", default=[])
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    frame = write.frame_file()
    sides: dict[str, list[dict[str, Any]]] = {"empty-uvloop": []}
    with contextlib.ExitStack() as stack:
        makers: dict[str, Any] = {"empty-uvloop": lambda port: empty(port)}
        for label, rev in (item.split("=", 1) for item in args.rev):
            tree = stack.enter_context(exported(rev))
            path = {"PYTHONPATH": f"{tree}{os.pathsep}{tree / 'generated'}"}
            makers[label] = lambda port, path=path: footfall(port, path)
        if not args.rev:
            makers["footfall"] = lambda port: footfall(port, {})
        for label, *settings in args.variant:
            env = dict(item.split("=", 1) for item in settings)
            makers[label] = lambda port, env=env: footfall(port, env)
        sides = {name: [] for name in makers}
        for turn in range(args.turns):
            order = list(makers.items())
            if turn % 2:
                order = [order[0], *order[1:][::-1]]
            for name, make in order:
                with make(args.port or _free_port()) as server:
                    write.h2load(server.port, write.PATH, frame, 4, 500)  # warm-up
                    for _ in range(args.tries):
                        run = load(server, frame, args.callers, args.requests, args.keep,
                                   f"{name}-{turn}")
                        if args.quiet is None or run["others"] <= args.quiet:
                            break
                        print(f"turn {turn} {name}: others took {run['others']:.2f} cores; "
                              "again", flush=True)
                        time.sleep(2)
                sides[name].append(run)
                print(f"turn {turn} {name}: others {run['others']:.2f} cores, "
                      f"{run['per_second']:,.0f}/s, CPU {run['cpu_us']:.0f} "
                      f"µs, p50 {run['p50']:.2f} p99 {run['p99']:.2f} p99.9 "
                      f"{run['p999']:.2f} max {run['max']:.1f} ms", flush=True)
    frame.unlink()
    base = summary([run["p99"] for run in sides["empty-uvloop"]])["median"]
    table: dict[str, Any] = {}
    for name, runs in sides.items():
        table[name] = {key: summary([run[key] for run in runs])
                       for key in ("per_second", "cpu_us", "p50", "p90", "p99", "p999", "max")}
        table[name]["p99_ratio"] = table[name]["p99"]["median"] / base
        # each turn's p99 to the empty handler's of the same turn: steadier on a busy machine
        empties = sides["empty-uvloop"]
        table[name]["p99_ratio_by_turn"] = summary(
            [run["p99"] / empty["p99"] for run, empty in zip(runs, empties, strict=True)])
        table[name]["others_cores"] = summary([run["others"] for run in runs])
        table[name]["slow_bunched"] = [bunched(run["calls"], run["p99"]) for run in runs]
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
