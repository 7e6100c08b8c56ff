"""A flood of large refused writes, over gRPC and HTTP from several callers, while the
store cannot take the refusals (SQLite locked by another connection): the refusals
waiting for it stay within their bytes (console.rejections.GATHERED_BYTES), and every
refusal is either kept once the store is free or counted in
footfall_rejections_not_kept, the log saying so: none is lost without a word."""

from __future__ import annotations

import json
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2, user_event_service_pb2_grpc
from google.protobuf import json_format

from .http_client import call

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
CALLERS = 2  # of each transport
EACH = 75  # refusals of each caller
X = "\U0001d54f"  # 4 bytes in UTF-8


class Served(NamedTuple):
    pid: int
    grpc_port: int
    http_port: int
    store: Path
    log: list[str]  # its lines so far


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    store = tmp_path / "events.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
         "--store", f"sqlite:///{store}"],
        cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    reader = threading.Thread(target=lambda: [(lines.put(line), log.append(line))
                                              for line in process.stderr or ()])
    reader.start()
    try:
        ports: dict[str, int] = {}
        while len(ports) < 2:
            found = re.search(r"serving (gRPC|HTTP) on 127\.0\.0\.1:(\d+)", lines.get(timeout=60))
            if found is not None:
                ports[found[1]] = int(found[2])
        yield Served(process.pid, ports["gRPC"], ports["HTTP"], store, log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join()


def refused_event(n: int) -> dict[str, object]:
    """An event of about 600 KB refused for its 150 currency codes, each quoted in its
    answer: a refusal kept as a row of about 85 KB (message and violations cut)."""
    return {"eventType": "detail-page-view", "visitorId": f"v{n}",
            "productDetails": [{"product": {"id": f"p{i}", "priceInfo": {
                "price": 1, "currencyCode": f"{n}-{i}" + X * 1000}}} for i in range(150)]}


def flood_grpc(port: int, caller: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        for n in range(EACH):
            request = user_event_service_pb2.WriteUserEventRequest(
                parent=CATALOG, user_event=json_format.ParseDict(
                    refused_event(caller * 1000 + n), user_event_pb2.UserEvent()))
            with pytest.raises(grpc.RpcError) as refused:
                stub.WriteUserEvent(request, timeout=60)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def flood_http(port: int, caller: int) -> None:
    for n in range(EACH):
        body = json.dumps(refused_event(caller * 1000 + 500 + n), ensure_ascii=False).encode()
        assert call(port, "POST", f"/v2/{CATALOG}/userEvents:write", body).status == 400


def metric(port: int, name: str) -> float:
    text = call(port, "GET", "/metrics").body.decode()
    return sum(float(found[1]) for found in re.finditer(
        rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    found = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert found is not None
    return int(found[1]) / 1024


def test_refusals_of_a_flood_wait_within_their_bytes_and_are_kept_or_counted(
        server: Served) -> None:
    before = rss_mib(server.pid)
    locker = sqlite3.connect(server.store, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # the store away: every refusal waits
        callers = [threading.Thread(target=flood, args=(port, caller)) for caller in
                   range(CALLERS) for flood, port in ((flood_grpc, server.grpc_port),
                                                       (flood_http, server.http_port))]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        not_kept = metric(server.http_port, "footfall_rejections_not_kept_total")
        most = rss_mib(server.pid, "VmHWM")
    finally:
        locker.close()  # (its transaction rolled back)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        # (a list commits the refusals that wait first)
        console_pb2_grpc.ConsoleServiceStub(channel).ListRejections(
            console_pb2.ListRejectionsRequest(parent="projects/p", page_size=1))
    with sqlite3.connect(f"file:{server.store}?mode=ro", uri=True) as kept_store:
        kept, kept_bytes = kept_store.execute(
            "SELECT COUNT(*), SUM(LENGTH(rejection)) FROM rejections").fetchone()
    refusals = 2 * CALLERS * EACH
    print(f"{refusals} refused: {kept} kept ({kept_bytes} bytes), {not_kept:.0f} not kept; "
          f"RSS {before:.0f} MiB before, {most:.0f} MiB at most")
    assert metric(server.http_port, "footfall_requests_total") >= refusals
    # 300 rows of ~85 KB (25 MB) waited unbound: now 16 MiB of them at most
    assert 0 < not_kept and kept + not_kept == refusals, (kept, not_kept)
    assert kept_bytes <= 16 * 1024 * 1024
    said = f"{not_kept:.0f} refused requests were not kept"
    deadline = time.monotonic() + 10  # (the line is read from the server's stderr)
    while said not in "".join(server.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    log = "".join(server.log)
    assert "refused requests are being let go unkept" in log, log[-3000:]
    assert said in log, log[-3000:]
