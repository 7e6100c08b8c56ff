"""The console: the first page of a list over a large catalog, and what keeping
refusals costs the accepted writes.

- list: a SQLite store of N events (one catalog; 1,000 visitors, four event
  types, a session per 20 events), then the first page (100) of ListUserEvents
  as the servicer reads it (`queries.list_user_events`, in process): unfiltered,
  by visitor (one event in 1,000), by type, by session (checked on each decoded
  event). Median of `reps` calls each.
- rejections: accepted WriteUserEvent calls (h2load, 16 callers) while 4 more
  callers flood the server with refused WriteUserEvent calls, kept (the default
  --rejections-keep) against the same flood with keeping off (--rejections-keep
  0); a fresh server each, interleaved reps; the ratio is the cost of keeping.
  Server CPU per accepted call from /proc beside each rate (the flood's share
  included).
- flood: N refused pixels, no two alike (alike ones are kept as one row that
  counts them), from 4 HTTP/1.1 connections (N well above --rejections-keep K),
  then the rejections table of the stopped server: at most K rows, and its last
  id shows every refusal was recorded (so the bound is the trimming, not loss).
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.protobuf import timestamp_pb2

from bench.common import PARENT, Server, footfall, grpc_frame, h2load, h2load_path, summary
from bench.write import PATH as WRITE_PATH
from bench.write import frame_file as write_frame
from server.console import queries
from server.store import EventRow, open_store

TYPES = ("home-page-view", "detail-page-view", "search", "add-to-cart")
FILTERS = {"none": "", "visitor": 'visitorId = "v-7"', "type": 'eventType = "search"',
           "session": 'sessionId = "s-3"'}


def _rows(start: int, count: int) -> list[EventRow]:
    rows = []
    for n in range(start, start + count):
        event = user_event_pb2.UserEvent(event_type=TYPES[n % 4], visitor_id=f"v-{n % 1000}",
                                         session_id=f"s-{n // 20}")
        event.event_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1_700_000_000 + n))
        if event.event_type == "search":
            event.search_query = "shoes"
        rows.append(EventRow.from_event(PARENT, event, joined=True))
    return rows


def list_first_page(size: int, reps: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-console-"))
    store = open_store(f"sqlite:///{workdir}/events.db")
    try:
        for start in range(0, size, 5_000):
            store.write_user_events(_rows(start, min(5_000, size - start)))
        out: dict[str, Any] = {"events": size}
        for name, text in FILTERS.items():
            events = queries.parse_filter(text, PARENT)
            millis = []
            for _ in range(reps):
                began = time.perf_counter()
                page = queries.list_user_events(store, events, 100, "")
                millis.append((time.perf_counter() - began) * 1000)
            out[name] = {"ms": summary(millis), "returned": len(page.user_events)}
        return out
    finally:
        store.close()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def _refused_write() -> Path:
    return _frame(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=user_event_pb2.UserEvent(event_type="home-page-view")))


def _frame(message: Any) -> Path:
    path = Path(tempfile.mktemp(prefix="console-", suffix=".bin"))
    path.write_bytes(grpc_frame(message.SerializeToString()))
    return path


# Refused pixels a second from each of 4 connections, beside the accepted writes
# (closed loop, a pixel would outrun the writes 15 to 1): about what 4 callers of
# refused writes send.
UNLIKE_RATE = 250


def refusal_cost(requests: int, reps: int, alike: bool = True) -> dict[str, Any]:
    """Accepted writes beside a flood of refusals kept against the same flood not
    kept. `alike`: the flood is one bad write sent again and again by 4 callers
    (kept as a few rows that count it); else refused pixels, no two alike (a row
    each), UNLIKE_RATE a second from each of 4 connections."""
    accepted = write_frame()
    refused = _refused_write()
    # the same flood of refused writes, kept (the default retention) or not
    settings = {"kept": (), "not_kept": ("--rejections-keep", "0")}
    rates: dict[str, list[float]] = {name: [] for name in settings}
    cpu: dict[str, list[float]] = {name: [] for name in settings}
    try:
        for _ in range(reps):
            for name, flags in settings.items():  # interleaved, a fresh server each
                with footfall(None, *flags) as server:
                    h2load(server.port, WRITE_PATH, accepted, 4, min(requests, 500))  # warm-up
                    flood: list[subprocess.Popen[Any]] = [*_flood(server, refused)] \
                        if alike else _unlike_pixels(server, requests * 10, rate=UNLIKE_RATE)
                    try:
                        before = server.cpu_seconds()
                        load = h2load(server.port, WRITE_PATH, accepted, 16, requests)
                        cpu[name].append((server.cpu_seconds() - before) / requests * 1e6)
                    finally:
                        for process in flood:
                            process.terminate()
                            process.wait()
                    rates[name].append(load.per_second)
    finally:
        accepted.unlink()
        refused.unlink()
    ratios = [k / n for k, n in zip(rates["kept"], rates["not_kept"], strict=True)]
    return {"flood": "one request again and again" if alike else "refused pixels, no two alike"} \
        | {name: {"accepted_per_second": summary(rates[name]),
                  "server_cpu_us_per_accepted_call": summary(cpu[name])} for name in settings} \
        | {"ratio_kept_to_not_kept": summary(ratios)}


def _flood(server: Server, frame: Path) -> list[subprocess.Popen[bytes]]:
    """4 connections sending the refused write `frame` as fast as they are answered."""
    return [subprocess.Popen(
        [h2load_path(), "-n", "100000000", "-c", "4", "-m", "1", "-d", str(frame),
         "-H", "content-type: application/grpc", "-H", "te: trailers",
         f"http://127.0.0.1:{server.port}{WRITE_PATH}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def _unlike_pixels(server: Server, count: int, floods: int = 4,
                   rate: int | None = None) -> list[subprocess.Popen[str]]:
    """`floods` HTTP/1.1 connections each sending `count` // `floods` refused pixels
    (no visitor), no two alike, as fast as they are answered (or `rate` a second
    each)."""
    share = -(-count // floods)
    processes = []
    for k in range(floods):  # each from its own list: h2load starts every client on line 1
        uris = server.workdir / f"uris-{k}.txt"
        uris.write_text("".join(
            f"http://127.0.0.1:{server.http_port}/v2/{PARENT}/userEvents:collect?"
            f"userEvent=%7B%22eventType%22%3A%22home-page-view%22%2C"
            f"%22sessionId%22%3A%22flood-{k}-{n}%22%7D\n" for n in range(share)))
        processes.append(subprocess.Popen(
            [h2load_path(), "--h1", "-n", str(share), "-c", "1", "-i", str(uris),
             *(["--rps", str(rate)] if rate else [])],
            stdout=subprocess.PIPE, text=True))
    return processes


def refusal_cpu(reps: int, accepted_rps: int = 30, flood_rps: int = 150,
                load_seconds: int = 6) -> dict[str, Any]:
    """Server CPU a second, refusals kept or not, with every rate fixed (closed loops
    swing more than the bar): accepted writes from 16 callers at `accepted_rps` each
    for `load_seconds`, beside a flood at `flood_rps` from each of 4 connections, alike
    (one refused write) or unlike (refused pixels, no two alike). Low enough rates
    that the server keeps up, so that what keeping costs shows as CPU, not as a rate."""
    accepted, refused = write_frame(), _refused_write()
    runs: list[dict[str, Any]] = []
    try:
        for _ in range(reps):
            for flood_kind in ("alike", "unlike"):
                for arm, flags in (("kept", ()), ("not_kept", ("--rejections-keep", "0"))):
                    with footfall(None, *flags) as server:
                        _paced(server, accepted, 4, 100, 400).communicate()  # warm-up
                        flood = [_paced(server, refused, 4, flood_rps, 10 ** 8)] \
                            if flood_kind == "alike" else \
                            _unlike_pixels(server, flood_rps * 4 * 60, rate=flood_rps)
                        try:
                            time.sleep(0.5)
                            before, began = server.cpu_seconds(), time.monotonic()
                            out = _paced(server, accepted, 16, accepted_rps,
                                         accepted_rps * 16 * load_seconds).communicate()[0]
                            used = server.cpu_seconds() - before
                            seconds = time.monotonic() - began
                        finally:
                            for process in flood:
                                process.terminate()
                                process.wait()
                    if " 0 failed" not in out:
                        raise RuntimeError(f"accepted writes failed:\n{out}")
                    runs.append({"flood": flood_kind, "arm": arm, "seconds": seconds,
                                 "server_cpu_per_second": used / seconds})
    finally:
        accepted.unlink()
        refused.unlink()
    out_: dict[str, Any] = {"accepted_per_second": accepted_rps * 16,
                            "flood_per_second": flood_rps * 4, "runs": runs}
    for flood_kind in ("alike", "unlike"):
        cpu = {arm: summary([r["server_cpu_per_second"] for r in runs
                             if r["flood"] == flood_kind and r["arm"] == arm])
               for arm in ("kept", "not_kept")}
        out_[flood_kind] = cpu | {"ratio": cpu["kept"]["median"] / cpu["not_kept"]["median"]}
    return out_


def refusal_cpu_together(reps: int, accepted_rps: int = 30, flood_rps: int = 150,
                         load_seconds: int = 6, flood_kind: str = "unlike",
                         trees: dict[str, Path | None] | None = None) -> dict[str, Any]:
    """`refusal_cpu`'s measure with the two arms (refusals kept, and not kept) served
    at the same moment under the same loads, so that what else the machine does
    weighs on both alike: one after the other, the ratio of single runs swung from
    0.99 to 1.16 beside other work (load average 2 to 4), as much as the bar allows
    three times over. A fresh pair of servers each rep; the ratio of each pair, and
    their median. `trees`: the code each arm's servers run, by a name (None: this
    checkout; bench.ab.exported makes one of a commit), each tree's pair in turns."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.ab import footfall_from

    accepted, refused = write_frame(), _refused_write()
    arms = {"kept": (), "not_kept": ("--rejections-keep", "0")}
    trees = trees or {"": None}
    cpu: dict[str, list[float]] = {f"{tree}{arm}": [] for tree in trees for arm in arms}
    ratios: dict[str, list[float]] = {tree: [] for tree in trees}

    def measured(server: Server) -> float:
        before, began = server.cpu_seconds(), time.monotonic()
        out = _paced(server, accepted, 16, accepted_rps,
                     accepted_rps * 16 * load_seconds).communicate()[0]
        used, seconds = server.cpu_seconds() - before, time.monotonic() - began
        if " 0 failed" not in out:
            raise RuntimeError(f"accepted writes failed:\n{out}")
        return used / seconds

    try:
        with ThreadPoolExecutor(2) as pool:
            for _ in range(reps):
                for tree, code in trees.items():
                    with contextlib.ExitStack() as stack:
                        servers = {arm: stack.enter_context(footfall_from(code, False, *flags))
                                   for arm, flags in arms.items()}
                        for server in servers.values():
                            _paced(server, accepted, 4, 100, 400).communicate()  # warm-up
                        floods = [process for server in servers.values() for process in (
                            [_paced(server, refused, 4, flood_rps, 10 ** 8)]
                            if flood_kind == "alike" else
                            _unlike_pixels(server, flood_rps * 4 * 60, rate=flood_rps))]
                        try:
                            time.sleep(0.5)
                            runs = {arm: pool.submit(measured, server)
                                    for arm, server in servers.items()}
                            used = {arm: run.result() for arm, run in runs.items()}
                        finally:
                            for process in floods:
                                process.terminate()
                                process.wait()
                    for arm, value in used.items():
                        cpu[f"{tree}{arm}"].append(value)
                    ratios[tree].append(used["kept"] / used["not_kept"])
    finally:
        accepted.unlink()
        refused.unlink()
    return {"accepted_per_second": accepted_rps * 16, "flood_per_second": flood_rps * 4,
            "flood": flood_kind, "server_cpu_per_second": {k: summary(v) for k, v in cpu.items()},
            "ratio_kept_to_not_kept": {tree or "this": summary(r) | {"each": r}
                                       for tree, r in ratios.items()}}


def _paced(server: Server, frame: Path, clients: int, rate: int,
           requests: int) -> subprocess.Popen[str]:
    """h2load sending `frame` (a WriteUserEvent) from `clients` connections at `rate`
    calls a second each."""
    return subprocess.Popen(
        [h2load_path(), "-n", str(requests), "-c", str(clients), "-m", "1", "--rps", str(rate),
         "-d", str(frame), "-H", "content-type: application/grpc", "-H", "te: trailers",
         f"http://127.0.0.1:{server.port}{WRITE_PATH}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def flood_bound(requests: int, keep: int, floods: int = 4) -> dict[str, Any]:
    """Rows left in the rejections table after `requests` refused pixels, each
    unlike the others (alike ones would be kept as one row that counts them), from
    `floods` HTTP/1.1 connections."""
    workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-flood-"))
    try:
        with footfall(f"sqlite:///{workdir}/events.db", "--rejections-keep", str(keep)) as server:
            began, start = server.cpu_seconds(), time.monotonic()
            loads = _unlike_pixels(server, requests, floods)
            outs = [load.communicate()[0] for load in loads]
            seconds = time.monotonic() - start
            refused = -(-requests // floods) * floods
            cpu_us = (server.cpu_seconds() - began) / refused * 1e6
        if any(" 0 failed" not in out for out in outs):
            raise RuntimeError("refused pixels were not all answered:\n" + "\n".join(outs))
        # the server stopped: whatever it had queued is committed
        with sqlite3.connect(workdir / "events.db") as db:
            rows, last = db.execute("SELECT COUNT(*), MAX(id) FROM rejections").fetchone()
        db.close()
    finally:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    if last < refused:
        raise RuntimeError(f"only {last} of {refused} refusals were recorded")
    return {"refused": refused, "keep": keep, "rows": rows, "recorded": last,
            "refused_per_second": refused / seconds, "server_cpu_us_per_refusal": cpu_us}


def run(sizes: tuple[int, ...], reps: int, write_requests: int,
        flood: int, keep: int, paced_seconds: int = 6, pairs: int = 8) -> dict[str, Any]:
    """`paced_seconds`: how long each run of `refusal_cpu` (`reps` of each arm) and of
    `refusal_cpu_together` (`pairs` of servers, each flood) loads the server: the closed-loop ratios
    beside a flood swing by more than the 5% the bar allows (bench/REPORT.md,
    2026-12-01 and 2026-12-05), the CPU at fixed rates less, and the two arms served at
    the same moment least."""
    return {"list": [list_first_page(size, max(reps, 5)) for size in sizes],
            "refusals": refusal_cost(write_requests, reps),
            "refusals_unlike": refusal_cost(write_requests, reps, alike=False),
            "refusals_paced": refusal_cpu(reps, load_seconds=paced_seconds),
            "refusals_together": {kind: refusal_cpu_together(
                pairs, load_seconds=paced_seconds, flood_kind=kind)
                for kind in ("alike", "unlike")},
            "flood": flood_bound(flood, keep)}


def main() -> None:
    """`python -m bench.console paced [--reps 5] [--rev REV] [--flood unlike|alike]`:
    `refusal_cpu_together` alone (with --rev, this checkout and REV in turns)."""
    import argparse
    import json

    from bench.ab import exported

    parser = argparse.ArgumentParser(prog="python -m bench.console")
    parser.add_argument("what", choices=["paced"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rev")
    parser.add_argument("--flood", choices=["unlike", "alike"], default="unlike")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        trees: dict[str, Path | None] = {"": None}
        if args.rev:
            trees = {"before:": stack.enter_context(exported(args.rev)), "after:": None}
        print(json.dumps(refusal_cpu_together(args.reps, load_seconds=args.seconds,
                                              flood_kind=args.flood, trees=trees), indent=1))


if __name__ == "__main__":
    main()
