"""Before/after in one run: Footfall's pixel GET and durable WriteUserEvent, served
by this checkout and by an older commit, beside the bare aiohttp and empty grpc.aio
baselines (each on asyncio's loop and on uvloop's; the ratios are to the one of the
higher rate), all started at once and measured in turns (baselines, before, after,
then again), so a busy machine weighs on every side alike.

    python -m bench.ab REV [--reps 3] [--seconds 5] [--requests 10000]
        [--callers 16 64] [--only pixel|write|inprocess]

`--only write-postgres` measures durable writes on PostgreSQL (a fresh database
each, dropped afterwards) and on SQLite (synchronous=full) under either tree, in
rotating turns, with the ratios PostgreSQL / SQLite of each tree (issue 12's bar).
`--only write-processes` does the same with `--processes 2` against one process
(SQLite), the ratios 2 / 1 of each tree.

`--only import` imports `--events` lines (300,000) into a fresh server of either tree
and the json_format baseline (bench/imports.py) in turns, CPU per event beside each.

`--only inprocess` runs bench/inprocess.py (our own CPU per call, measured inside
the server on its threads' clocks) under either tree in turn instead;
`--only pixel-together` (`write-together`) loads both servers with wrk (h2load) at
the same moment.

REV is exported with `git archive` into a temporary folder and run from there
(PYTHONPATH before the editable install). The figures to trust on a shared
machine are the server CPU per call (from /proc); rates are given beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import collect, write
from bench.common import (
    ROOT,
    Server,
    empty_server,
    footfall,
    h2load,
    postgres_database,
    summary,
)

# The empty-handler baselines of the write comparison, by name: bench/empty_server.py's
# flavour (grpc.aio on asyncio's loop, and on uvloop's as Footfall serves).
EMPTY = {"empty-aio": "aio", "empty-uvloop": "uvloop"}


@contextlib.contextmanager
def exported(rev: str) -> Iterator[Path]:
    """The tree of `rev`, in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="footfall-ab-"))
    try:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def served_from(tree: Path | None) -> Iterator[None]:
    """Servers started meanwhile run `tree`'s code (None: this checkout's, as the
    environment has it); PYTHONPATH as it was afterwards."""
    saved = os.environ.get("PYTHONPATH")
    if tree is not None:
        os.environ["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'generated'}"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@contextlib.contextmanager
def footfall_from(tree: Path | None, postgres: bool = False, *extra: str) -> Iterator[Server]:
    """A Footfall server run from `tree` (None: this checkout), on a fresh SQLite
    file or (`postgres`) a fresh PostgreSQL database.

    PYTHONPATH names `tree` only while the server starts: a server of this checkout
    started while an older one runs must not inherit it (until 2026-12-01 it did, so
    the "after" of every run compared the older tree with itself)."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if postgres else None
        with served_from(tree):
            server = stack.enter_context(footfall(url, *extra))
        yield server


def _pixel(servers: dict[str, Server], seconds: int, reps: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {name: [] for name in servers}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    p99: dict[str, list[float]] = {name: [] for name in servers}
    for server in servers.values():
        collect.wrk(server.http_port, 1, 16)  # warm-up
    for rep in range(reps):
        for name, server in _turns(servers, rep, len(collect.BARE)):
            rate, us, late = collect.measured(server, seconds, 16)
            rates[name].append(rate)
            cpu[name].append(us)
            p99[name].append(late)
    table = _table(rates, cpu, tuple(collect.BARE))
    for name in servers:
        table[name]["p99_ms"] = summary(p99[name])
    return table


def _side_by_side(servers: dict[str, Server], seconds: int, reps: int) -> dict[str, Any]:
    """Before and after under two wrk runs at the same moment, so that whatever else
    the machine does weighs on both alike: CPU per request of each (the rates share
    the cores, so they are each other's baseline)."""
    from concurrent.futures import ThreadPoolExecutor

    rates: dict[str, list[float]] = {"before": [], "after": []}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    p99: dict[str, list[float]] = {"before": [], "after": []}
    with ThreadPoolExecutor(2) as pool:
        for _ in range(reps):
            runs = {name: pool.submit(collect.measured, servers[name], seconds, 16)
                    for name in rates}
            for name, run in runs.items():
                rate, us, late = run.result()
                rates[name].append(rate)
                cpu[name].append(us)
                p99[name].append(late)
    table = _table(rates, cpu, ("before",))
    for name in rates:
        table[name]["p99_ms"] = summary(p99[name])
    return table


def _writes_side_by_side(servers: dict[str, Server], frame: Path, callers: int,
                         requests: int, reps: int) -> dict[str, Any]:
    """Durable writes from two h2load runs at the same moment (see _side_by_side)."""
    from concurrent.futures import ThreadPoolExecutor

    def measured(server: Server) -> tuple[float, float, float]:
        before = server.cpu_seconds()
        load = h2load(server.port, write.PATH, frame, callers, requests)
        if load.failed:
            raise RuntimeError(f"{load.failed} calls failed")
        return load.per_second, (server.cpu_seconds() - before) / requests * 1e6, load.p99_ms

    rates: dict[str, list[float]] = {"before": [], "after": []}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    p99: dict[str, list[float]] = {"before": [], "after": []}
    with ThreadPoolExecutor(2) as pool:
        for _ in range(reps):
            runs = {name: pool.submit(measured, servers[name]) for name in rates}
            for name, run in runs.items():
                rate, us, late = run.result()
                rates[name].append(rate)
                cpu[name].append(us)
                p99[name].append(late)
    table = _table(rates, cpu, ("before",))
    for name in rates:
        table[name]["p99_ms"] = summary(p99[name])
    return table


def _turns(servers: dict[str, Server], rep: int, baselines: int) -> list[tuple[str, Server]]:
    """The baselines (the first `baselines` of `servers`) first, then before and
    after, in turn first."""
    turns = list(servers.items())
    base, others = turns[:baselines], turns[baselines:]
    return [*base, *(others if rep % 2 == 0 else others[::-1])]


def _write(servers: dict[str, Server], frame: Path, callers: int, requests: int,
           reps: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {name: [] for name in servers}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    p99: dict[str, list[float]] = {name: [] for name in servers}
    for server in servers.values():
        h2load(server.port, write.PATH, frame, callers, min(requests, 1000))  # warm-up
    for rep in range(reps):
        for name, server in _turns(servers, rep, len(EMPTY)):
            before = server.cpu_seconds()
            load = h2load(server.port, write.PATH, frame, callers, requests)
            if load.failed:
                raise RuntimeError(f"{name}: {load.failed} calls failed")
            cpu[name].append((server.cpu_seconds() - before) / requests * 1e6)
            rates[name].append(load.per_second)
            p99[name].append(load.p99_ms)
    table = _table(rates, cpu, tuple(EMPTY))
    for name in servers:
        table[name]["p99_ms"] = summary(p99[name])
    return table


def _write_rotating(servers: dict[str, Server], frame: Path, callers: int, requests: int,
                    reps: int, kinds: tuple[str, str]) -> dict[str, Any]:
    """Durable writes of every server ("<kind>-before", "<kind>-after") in
    rotating turns (each goes first once in len(servers) reps); rates, p99 and
    server CPU per write, and each tree's ratios of the first of `kinds` to the
    second."""
    names = list(servers)
    runs: dict[str, dict[str, list[float]]] = {
        name: {"rate": [], "cpu": [], "p99": []} for name in names}
    for server in servers.values():
        h2load(server.port, write.PATH, frame, callers, min(requests, 1000))  # warm-up
    for rep in range(reps):
        turn = rep % len(names)
        for name in names[turn:] + names[:turn]:
            server = servers[name]
            before = server.cpu_seconds()
            load = h2load(server.port, write.PATH, frame, callers, requests)
            if load.failed:
                raise RuntimeError(f"{name}: {load.failed} calls failed")
            runs[name]["cpu"].append((server.cpu_seconds() - before) / requests * 1e6)
            runs[name]["rate"].append(load.per_second)
            runs[name]["p99"].append(load.p99_ms)
    table: dict[str, Any] = {name: {"per_second": summary(r["rate"]),
                                    "cpu_us_per_call": summary(r["cpu"]),
                                    "p99_ms": summary(r["p99"])} for name, r in runs.items()}
    for side in ("before", "after"):
        measured, base = table[f"{kinds[0]}-{side}"], table[f"{kinds[1]}-{side}"]
        for row, other in ((measured, base), (base, base)):
            row["ratio"] = row["per_second"]["median"] / other["per_second"]["median"]
            row["cpu_ratio"] = (row["cpu_us_per_call"]["median"]
                                / other["cpu_us_per_call"]["median"])
    return table


def _table(rates: dict[str, list[float]], cpu: dict[str, list[float]],
           baselines: tuple[str, ...]) -> dict[str, Any]:
    """Every server's rate and CPU per call, and their ratios to those of the
    baseline of the highest median rate among `baselines` (each row's "vs")."""
    best = max(baselines, key=lambda name: summary(rates[name])["median"])
    base_rate = summary(rates[best])["median"]
    base_cpu = summary(cpu[best])["median"]
    out: dict[str, Any] = {}
    for name in rates:
        r, c = summary(rates[name]), summary(cpu[name])
        out[name] = {"per_second": r, "cpu_us_per_call": c, "vs": best,
                     "ratio": r["median"] / base_rate, "cpu_ratio": c["median"] / base_cpu}
    return out


def _inprocess(tree: Path, reps: int) -> dict[str, Any]:
    """bench/inprocess.py run by either tree in turn, `reps` times each: our own
    CPU per pixel and per durable write (loop and writer threads), the least seen."""
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for rep in range(reps):
        for name in (("before", "after") if rep % 2 == 0 else ("after", "before")):
            env = dict(os.environ)
            if name == "before":
                env["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'generated'}"
            out = subprocess.run([sys.executable, str(ROOT / "bench/inprocess.py")], env=env,
                                 capture_output=True, text=True, check=True, cwd=tree).stdout
            runs[name].append(json.loads(out.splitlines()[-1]))
    table: dict[str, Any] = {}
    for name, found in runs.items():
        for kind in ("pixel", "write"):
            for thread in ("loop_us", "writer_us"):
                table.setdefault(f"{kind}_{thread}", {})[name] = min(
                    r[kind][thread]["min"] for r in found)
    return table


def _import(tree: Path, events: int, reps: int) -> dict[str, Any]:
    """ImportUserEvents of `events` lines (bench/imports.py) under either tree beside
    the json_format baseline: each rep runs the baseline, then a fresh server of each
    tree (their order alternating). The baseline's CPU is this process's own."""
    from bench import imports
    from bench.data import temp_dir, write_files

    rates: dict[str, list[float]] = {"baseline": [], "before": [], "after": []}
    cpu: dict[str, list[float]] = {name: [] for name in rates}
    folder = temp_dir("footfall-bench-import-ab-")
    try:
        files = write_files(folder / "events", events)
        for rep in range(reps):
            started = time.process_time()
            rates["baseline"].append(imports.baseline(files, folder / f"baseline-{rep}.db"))
            cpu["baseline"].append((time.process_time() - started) / events * 1e6)
            for name in (("before", "after") if rep % 2 == 0 else ("after", "before")):
                with served_from(tree if name == "before" else None):
                    measured = imports.footfall_import(events)
                rates[name].append(measured["per_second"])
                cpu[name].append(measured["cpu_us_per_event"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _table(rates, cpu, ("baseline",))


# The --only modes of four servers, a kind measured against a base kind under either
# tree: (measured kind, base kind) and each kind's footfall_from arguments.
_PAIRED: dict[str, tuple[tuple[str, str], dict[str, tuple[Any, ...]]]] = {
    "write-postgres": (("postgres", "sqlite"), {"postgres": (True,), "sqlite": (False,)}),
    "write-processes": (("two", "one"), {"two": (False, "--processes", "2"), "one": (False,)}),
}


def run(rev: str, reps: int, seconds: int, requests: int, callers: tuple[int, ...],
        only: str | None, events: int = 300_000) -> dict[str, Any]:
    results: dict[str, Any] = {"before": rev, "load_average": os.getloadavg()}
    with exported(rev) as tree, contextlib.ExitStack() as stack:
        if only == "import":
            results["import"] = _import(tree, events, reps)
            results["load_average_after"] = os.getloadavg()
            return results
        if only == "inprocess":
            results["inprocess"] = _inprocess(tree, reps)
            results["load_average_after"] = os.getloadavg()
            return results
        if only == "pixel-together":
            servers = {"before": stack.enter_context(footfall_from(tree)),
                       "after": stack.enter_context(footfall_from(None))}
            for server in servers.values():
                collect.wrk(server.http_port, 1, 16)  # warm-up
            results["pixel_together"] = _side_by_side(servers, seconds, reps)
            results["load_average_after"] = os.getloadavg()
            return results
        if only in _PAIRED:
            kinds, arguments = _PAIRED[only]
            frame = write.frame_file()
            stack.callback(frame.unlink)
            servers = {f"{kind}-{side}": stack.enter_context(
                           footfall_from(tree if side == "before" else None, *arguments[kind]))
                       for side in ("before", "after") for kind in reversed(kinds)}
            for c in callers:
                results[f"write_{c}"] = _write_rotating(servers, frame, c, requests, reps,
                                                        kinds)
            results["load_average_after"] = os.getloadavg()
            return results
        if only == "write-together":
            frame = write.frame_file()
            stack.callback(frame.unlink)
            servers = {"before": stack.enter_context(footfall_from(tree)),
                       "after": stack.enter_context(footfall_from(None))}
            for server in servers.values():
                h2load(server.port, write.PATH, frame, 4, 500)  # warm-up
            for c in callers:
                results[f"write_{c}_together"] = _writes_side_by_side(servers, frame, c,
                                                                     requests, reps)
            results["load_average_after"] = os.getloadavg()
            return results
        if only in (None, "pixel"):
            servers = {name: stack.enter_context(collect.bare(loop))
                       for name, loop in collect.BARE.items()}
            servers["before"] = stack.enter_context(footfall_from(tree))
            servers["after"] = stack.enter_context(footfall_from(None))
            results["pixel"] = _pixel(servers, seconds, reps)
            stack.close()
        if only in (None, "write"):
            frame = write.frame_file()
            stack.callback(frame.unlink)
            servers = {name: stack.enter_context(empty_server(flavour))
                       for name, flavour in EMPTY.items()}
            servers["before"] = stack.enter_context(footfall_from(tree))
            servers["after"] = stack.enter_context(footfall_from(None))
            for c in callers:
                results[f"write_{c}"] = _write(servers, frame, c, requests, reps)
    results["load_average_after"] = os.getloadavg()
    return results


def _print(results: dict[str, Any]) -> None:
    print(f"before = {results['before']}; load average "
          f"{'/'.join(f'{x:.1f}' for x in results['load_average'])} at start, "
          f"{'/'.join(f'{x:.1f}' for x in results['load_average_after'])} at end")
    for section, table in results.items():
        if section == "inprocess":
            print("\nour own CPU per call, in-process (least over the runs):")
            for what, row in table.items():
                print(f"  {what:<18} before {row['before']:7.1f} us  after {row['after']:7.1f}"
                      f" us  ({row['after'] / row['before']:.2f}x)")
            continue
        if not isinstance(table, dict):
            continue
        width = max(8, *(len(name) for name in table))
        vs = next(iter(table.values())).get("vs", "the baseline")
        print(f"\n{section} (x base: against {vs}):")
        print(f"{'':<{len(section) + 2}}{'server':<{width}} {'per s':>9} {'x base':>7} "
              f"{'CPU us':>8} {'x base':>7} {'p99 ms':>7}")
        for name, row in table.items():
            p99 = row.get("p99_ms", {}).get("median", float("nan"))
            print(f"{'':<{len(section) + 2}}{name:<{width}} "
                  f"{row['per_second']['median']:>9,.0f} {row['ratio']:>7.2f} "
                  f"{row['cpu_us_per_call']['median']:>8,.0f} {row['cpu_ratio']:>7.2f} "
                  f"{p99:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--callers", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--events", type=int, default=300_000,
                        help="lines imported by each server (--only import)")
    parser.add_argument("--only", choices=("pixel", "write", "inprocess", "pixel-together",
                                           "write-together", "write-postgres",
                                           "write-processes", "import"),
                        help="inprocess: bench/inprocess.py under both trees instead; "
                             "pixel-together, write-together: before and after loaded "
                             "at the same time; write-postgres: durable writes on "
                             "PostgreSQL and SQLite under both trees; write-processes: "
                             "--processes 2 and 1 under both trees; import: "
                             "ImportUserEvents under both trees beside the json_format "
                             "baseline (CPU per event)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = run(args.rev, args.reps, args.seconds, args.requests, tuple(args.callers),
                  args.only, args.events)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    _print(results)


if __name__ == "__main__":
    main()
