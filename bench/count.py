"""`footfall events count --server`: what one count costs, by how it is counted,
over a served SQLite store of N events (one catalog, four event types).

- all, catalogs: no filter: the count ListCatalogs keeps (what the CLI does).
- all, dry-run purge: PurgeUserEvents with force=false, waited for, its
  operation deleted (what the CLI did before the console API; an admin key).
- filtered (a quarter of the events), pages: ListUserEvents paged through, 1,000
  a page (what the CLI does).
- filtered, dry-run purge: as above, with the filter.

The CLI's own code runs in this process (`server.__main__.main`), so its start
is not counted; the server's CPU per count comes from /proc. Interleaved reps,
medians; the ratios are to the dry-run purge of the same selection.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from footfall.retail.v2 import purge_config_pb2, user_event_service_pb2_grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from bench.common import PARENT, Server, footfall, summary
from bench.console import _rows
from server.__main__ import main
from server.store import open_store

SEARCH = 'eventType = "search"'  # a quarter of the events
EVERY_EVENT = 'eventTime >= "0001-01-01T00:00:00Z"'  # a purge filter may not be empty


def _cli(server: Server, filter_text: str) -> int:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["events", "count", "--server", f"127.0.0.1:{server.port}",
                     "--parent", PARENT, "--filter", filter_text])
    assert code == 0
    return int(out.getvalue())


def _dry_run(server: Server, filter_text: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        ops = operations_pb2_grpc.OperationsStub(channel)
        op = user_event_service_pb2_grpc.UserEventServiceStub(channel).PurgeUserEvents(
            purge_config_pb2.PurgeUserEventsRequest(parent=PARENT, filter=filter_text,
                                                    force=False))
        while not op.done:
            op = ops.WaitOperation(operations_pb2.WaitOperationRequest(
                name=op.name, timeout=duration_pb2.Duration(seconds=10)))
        ops.DeleteOperation(operations_pb2.DeleteOperationRequest(name=op.name))
    answer = purge_config_pb2.PurgeUserEventsResponse()
    op.response.Unpack(answer)
    return answer.purged_events_count


def run(size: int, reps: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-count-"))
    url = f"sqlite:///{workdir}/events.db"
    store = open_store(url)
    for start in range(0, size, 5_000):
        store.write_user_events(_rows(start, min(5_000, size - start)))
    store.close()
    ways: dict[str, tuple[Callable[[Server, str], int], str, int]] = {
        "all_catalogs": (_cli, "", size), "all_dry_run_purge": (_dry_run, EVERY_EVENT, size),
        "filtered_pages": (_cli, SEARCH, size // 4),
        "filtered_dry_run_purge": (_dry_run, SEARCH, size // 4)}
    millis: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    try:
        with footfall(url) as server:
            for _ in range(reps):
                for name, (count, filter_text, expected) in ways.items():  # interleaved
                    before, began = server.cpu_seconds(), time.perf_counter()
                    assert count(server, filter_text) == expected, name
                    millis[name].append((time.perf_counter() - began) * 1000)
                    cpu[name].append((server.cpu_seconds() - before) * 1000)
    finally:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    out: dict[str, Any] = {"events": size}
    for name in ways:
        out[name] = {"ms": summary(millis[name]), "server_cpu_ms": summary(cpu[name])}
    for selection in ("all", "filtered"):
        way = "catalogs" if selection == "all" else "pages"
        out[f"{selection}_ratio_ms_to_dry_run"] = (
            out[f"{selection}_{way}"]["ms"]["median"]
            / out[f"{selection}_dry_run_purge"]["ms"]["median"])
    return out
