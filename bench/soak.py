"""A soak test for leaks: a real `footfall serve` driven for many minutes at a modest
rate with a mix of everything its clients do, and every process of it sampled from
/proc (RSS, peak RSS, open fds by kind, threads) and /metrics every --interval seconds;
with the probe (bench/soak_site, on by default) also its asyncio tasks by coroutine, its
live objects by type and, with --tracemalloc FRAMES, the lines whose memory grew.

    .venv/bin/python -m bench.soak [--minutes 20] [--warmup-minutes 4] [--store URL]
        [--processes N] [--port 57051 --http-port 57080] [--workdir /tmp/soak]
        [--tracemalloc 8] [--rate 1.0] [--only write_durable,pixel,...] [--malloc-trim]
        [--server-prefix "-m memray run --native -o /tmp/s.bin"]

The mix (per second at --rate 1, ~20 calls/s in all, a few % of a core for the driver):
durable writes over gRPC (official retail client) and REST, write_async, pixels (GET
collect), refused writes (gRPC, REST, pixel), talent client events (official talent
client; some refused), console lists and counts over gRPC and HTTP, insights reads,
gRPC watches (WatchUserEvents, WatchClientEvents, WatchRejections, WatchUserEventBatches)
and server-sent-event watches that end in every way (read then cancelled, deadlines,
never read, held unread while events flow), imports of local files with bad lines
(some cancelled), purges, rejoins, operations listed, polled, cancelled and deleted, and
resets of a scratch catalog, tenant and project.

Writes samples.jsonl (ours) and probe-PID.jsonl (the probe's) in --workdir, and prints
each measure's value after the warm-up, at the end, its peak, and its slope (per 10 min,
least squares over the samples after the warm-up): what grows on and on is a leak.
--only runs some of the mix's actions (a bisection by client kind: name them as in
Driver.start); --malloc-trim has the probe give glibc's free pages back at each sample
(RSS before and after: what grows after a trim is not free heap kept); --server-prefix
runs the server's interpreter under a tool (memray's native mode names the stacks whose
allocations stay alive).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import http.client
import itertools
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.api_core import exceptions as api_exceptions
from google.api_core import operations_v1
from google.cloud import retail_v2, talent_v4
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceGrpcTransport,
)
from google.cloud.talent_v4.services.event_service.transports import EventServiceGrpcTransport

from bench.common import process_tree

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "projects/soak"
CATALOG = f"{PROJECT}/locations/global/catalogs/default_catalog"
SCRATCH_CATALOG = f"{PROJECT}/locations/global/catalogs/scratch"
TENANT = f"{PROJECT}/tenants/jobs"
SCRATCH_TENANT = f"{PROJECT}/tenants/scratch"
SCRATCH_PROJECT = "projects/soak-scratch"
SCRATCH_PROJECT_CATALOG = f"{SCRATCH_PROJECT}/locations/global/catalogs/default_catalog"
VISITORS = 300
PRODUCTS = 50


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def message(*fields: tuple[int, str | int | bytes | None]) -> bytes:
    """A protobuf message of string, bytes (a nested message) and int fields, encoded by
    hand: footfall's protos (console, insights) name Google's retail package too, so
    they cannot be loaded beside the official clients in one process."""
    out = bytearray()
    for number, value in fields:
        if value is None:
            continue
        if isinstance(value, int):
            out += _varint(number << 3) + _varint(value)
        else:
            data = value.encode() if isinstance(value, str) else value
            out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


class Raw:
    """Calls of a service by method name, requests and answers as bytes."""

    def __init__(self, channel: grpc.Channel, service: str) -> None:
        self.channel = channel
        self.service = service

    def __getattr__(self, method: str) -> Callable[..., Any]:
        path = f"/{self.service}/{method}"
        if method.startswith("Watch"):
            return self.channel.unary_stream(path)
        return self.channel.unary_unary(path)


class Driver:
    def __init__(self, grpc_address: str, http_port: int, gcs_root: Path, rate: float,
                 stop: threading.Event) -> None:
        self.grpc_address = grpc_address
        self.http_port = http_port
        self.gcs_root = gcs_root
        self.rate = rate
        self.stop = stop
        self.channel = grpc.insecure_channel(grpc_address)
        self.retail = retail_v2.UserEventServiceClient(
            transport=UserEventServiceGrpcTransport(channel=self.channel))
        self.talent = talent_v4.EventServiceClient(
            transport=EventServiceGrpcTransport(channel=self.channel))
        self.console = Raw(self.channel, "footfall.console.v1.ConsoleService")
        self.insights = Raw(self.channel, "footfall.insights.v1.InsightsService")
        self.operations = operations_v1.OperationsClient(self.channel)
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.local = threading.local()
        self.imports = 0

    # -- plumbing ---------------------------------------------------------------------
    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def every(self, name: str, period: float, action: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            period_now = period / self.rate
            while not self.stop.wait(random.uniform(0.5, 1.5) * period_now):
                try:
                    action()
                    self.count(f"{name} ok")
                except grpc.RpcError as error:
                    self.count(f"{name} {error.code().name}")  # type: ignore[attr-defined]
                except api_exceptions.GoogleAPICallError as error:
                    self.count(f"{name} {type(error).__name__}")
                except (OSError, http.client.HTTPException) as error:
                    self.count(f"{name} {type(error).__name__}")
                except Exception as error:  # (a mistake of ours: counted, not fatal)
                    self.count(f"{name} !{type(error).__name__}: {error}"[:160])
        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def http(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        connection: http.client.HTTPConnection | None = getattr(self.local, "http", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
            self.local.http = connection
        data = None if body is None else json.dumps(body).encode()
        sent = dict(headers or {})
        if data is not None:
            sent["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                connection.request(method, path, body=data, headers=sent)
                answer = connection.getresponse()
                return answer.status, answer.read()
            except (OSError, http.client.HTTPException):
                # (a kept connection the server closed when idle: once more, anew)
                connection.close()
                if attempt:
                    self.local.http = None
                    raise
        raise AssertionError("unreachable")

    # -- events -----------------------------------------------------------------------
    @staticmethod
    def event(catalog_scratch: bool = False) -> retail_v2.UserEvent:
        visitor = f"v-{random.randrange(VISITORS)}"
        product = retail_v2.ProductDetail(
            product=retail_v2.Product(id=f"sku-{random.randrange(PRODUCTS)}"), quantity=1)
        kind = random.choice(["home-page-view", "detail-page-view", "add-to-cart",
                              "purchase-complete", "search"])
        event = retail_v2.UserEvent(event_type=kind, visitor_id=visitor,
                                    session_id=f"s-{random.randrange(1000)}")
        if kind in ("detail-page-view", "add-to-cart", "purchase-complete"):
            event.product_details = [product]
        if kind == "purchase-complete":
            event.purchase_transaction = retail_v2.PurchaseTransaction(
                revenue=10.0, currency_code="EUR")
        if kind == "search":
            event.search_query = "socks"
        return event

    def write_durable(self) -> None:
        catalog = SCRATCH_CATALOG if random.random() < 0.2 else CATALOG
        if random.random() < 0.1:
            catalog = SCRATCH_PROJECT_CATALOG
        self.retail.write_user_event(retail_v2.WriteUserEventRequest(
            parent=catalog, user_event=self.event()), timeout=30)

    def write_async(self) -> None:
        self.retail.write_user_event(retail_v2.WriteUserEventRequest(
            parent=CATALOG, user_event=self.event(), write_async=True), timeout=30)

    def write_rest(self) -> None:
        event = {"eventType": "detail-page-view", "visitorId": f"v-{random.randrange(VISITORS)}",
                 "productDetails": [{"product": {"id": f"sku-{random.randrange(PRODUCTS)}"}}]}
        status, _ = self.http("POST", f"/v2/{CATALOG}/userEvents:write", body=event)
        self.count(f"write_rest {status}")

    def pixel(self) -> None:
        event = {"eventType": "home-page-view", "visitorId": f"v-{random.randrange(VISITORS)}"}
        query = urllib.parse.urlencode({"userEvent": json.dumps(event),
                                        "ets": str(int(time.time() * 1000))})
        status, _ = self.http("GET", f"/v2/{CATALOG}/userEvents:collect?{query}",
                              headers={"User-Agent": "soak/1", "Referer": "https://shop/p"})
        self.count(f"pixel {status}")

    def refused(self) -> None:
        which = random.randrange(4)
        if which == 0:  # add-to-cart names no product
            try:
                self.retail.write_user_event(retail_v2.WriteUserEventRequest(
                    parent=CATALOG, user_event=retail_v2.UserEvent(
                        event_type="add-to-cart", visitor_id="v-bad")), timeout=30)
            except api_exceptions.InvalidArgument:
                self.count("refused grpc InvalidArgument")
        elif which == 1:  # an unknown field, a wrong type
            status, _ = self.http("POST", f"/v2/{CATALOG}/userEvents:write", body={
                "eventType": "home-page-view", "visitorId": 7, "notAField": True})
            self.count(f"refused rest {status}")
        elif which == 2:  # a pixel of bad JSON
            status, _ = self.http("GET", f"/v2/{CATALOG}/userEvents:collect?userEvent=%7Bbad")
            self.count(f"refused pixel {status}")
        else:  # a client event with no job
            try:
                self.talent.create_client_event(talent_v4.CreateClientEventRequest(
                    parent=TENANT, client_event=talent_v4.ClientEvent(
                        request_id="r", event_id=str(uuid.uuid4()),
                        create_time=datetime.datetime.now(datetime.UTC),
                        job_event=talent_v4.JobEvent(
                            type_=talent_v4.JobEvent.JobEventType.VIEW))), timeout=30)
            except api_exceptions.InvalidArgument:
                self.count("refused talent InvalidArgument")

    def talent_event(self) -> None:
        tenant = SCRATCH_TENANT if random.random() < 0.2 else TENANT
        kind = random.choice([talent_v4.JobEvent.JobEventType.IMPRESSION,
                              talent_v4.JobEvent.JobEventType.VIEW,
                              talent_v4.JobEvent.JobEventType.APPLICATION_START])
        self.talent.create_client_event(talent_v4.CreateClientEventRequest(
            parent=tenant, client_event=talent_v4.ClientEvent(
                request_id=f"search-{random.randrange(100)}", event_id=str(uuid.uuid4()),
                create_time=datetime.datetime.now(datetime.UTC),
                job_event=talent_v4.JobEvent(
                    type_=kind, jobs=[f"{tenant}/jobs/job-{random.randrange(20)}"]))),
            timeout=30)

    # -- reads ------------------------------------------------------------------------
    def console_list(self) -> None:
        which = random.randrange(7)
        if which == 0:
            self.console.ListUserEvents(message((1, CATALOG), (2, 50)), timeout=30)
        elif which == 1:
            visitor = f'visitorId = "v-{random.randrange(VISITORS)}"'
            self.console.ListUserEvents(message((1, CATALOG), (2, 20), (4, visitor)), timeout=30)
        elif which == 2:
            self.console.ListClientEvents(message(
                (1, TENANT), (2, 50), (4, "eventType = VIEW")), timeout=30)
        elif which == 3:
            self.console.ListRejections(message((1, PROJECT), (2, 50)), timeout=30)
        elif which == 4:
            self.console.ListCatalogs(message((1, PROJECT)),
                                      timeout=30)
        elif which == 5:
            status, body = self.http("GET", f"/console/v1/{CATALOG}/userEvents?pageSize=30")
            token = json.loads(body).get("nextPageToken") if status == 200 else None
            if token:  # the next page, by its token
                self.http("GET", f"/console/v1/{CATALOG}/userEvents?pageSize=30&pageToken="
                          + urllib.parse.quote(token))
            self.count(f"console_list http {status}")
        else:
            status, _ = self.http("GET", f"/console/v1/{PROJECT}/rejections?pageSize=20")
            self.count(f"console_list http-rejections {status}")

    def counts_and_insights(self) -> None:
        which = random.randrange(6)
        if which == 0:
            self.console.CountUserEvents(message(
                (1, CATALOG), (2, 'eventType = "add-to-cart"')), timeout=30)
        elif which == 1:
            self.console.CountClientEvents(message((1, TENANT)), timeout=30)
        elif which == 2:
            self.insights.RunFunnel(message(
                (1, CATALOG), (2, message((1, "detail-page-view"))),
                (2, message((1, "add-to-cart"))), (2, message((1, "purchase-complete")))),
                timeout=30)
        elif which == 3:
            self.insights.ListProductStats(message((1, CATALOG), (4, 20)), timeout=30)
        elif which == 4:
            self.insights.ListJobStats(message((1, TENANT)), timeout=30)
        else:
            status, _ = self.http(
                "GET", f"/console/v1/{CATALOG}/userEvents:count?filter="
                + urllib.parse.quote('eventType = "purchase-complete"'))
            self.count(f"count http {status}")

    # -- watches ----------------------------------------------------------------------
    def grpc_watch(self) -> None:
        which = random.randrange(4)
        kind = random.randrange(4)
        timeout = 2 if which == 1 else None
        if kind == 0:
            call = self.console.WatchUserEvents(message(
                (1, CATALOG), (3, 0 if random.random() < 0.3 else None)), timeout=timeout)
        elif kind == 1:
            call = self.console.WatchClientEvents(message((1, TENANT)), timeout=timeout)
        elif kind == 2:
            call = self.console.WatchRejections(message((1, PROJECT)), timeout=timeout)
        else:
            call = self.console.WatchUserEventBatches(message((1, CATALOG)), timeout=timeout)
        if which == 0:  # read a few, then cancel mid-stream
            for read, _ in enumerate(call):
                if read >= 3:
                    break
            call.cancel()
            self.count("grpc_watch read-cancel")
        elif which == 1:  # read until the deadline ends it
            try:
                for _ in call:
                    pass
            except grpc.RpcError as error:
                self.count(f"grpc_watch deadline {error.code().name}")  # type: ignore[attr-defined]
        elif which == 2:  # never read, cancel after a while
            self.stop.wait(random.uniform(1, 8))
            call.cancel()
            self.count("grpc_watch unread-cancel")
        else:  # never read, never cancelled: dropped (garbage collected)
            self.stop.wait(random.uniform(1, 5))
            del call
            self.count("grpc_watch dropped")

    def sse_watch(self) -> None:
        which = random.randrange(4)
        path = random.choice([f"/console/v1/{CATALOG}/userEvents:watch",
                              f"/console/v1/{TENANT}/clientEvents:watch",
                              f"/console/v1/{PROJECT}/rejections:watch",
                              f"/console/v1/{CATALOG}/userEvents:watch?afterId=0"])
        headers = "X-Server-Timeout: 2\r\n" if which == 1 else ""
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=30) as sock:
            if which == 3:  # a small receive buffer, never read: the server's sends pile up
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: "
                         f"text/event-stream\r\n{headers}\r\n".encode())
            if which == 0:  # read some, then go
                got = 0
                while got < 2000:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    got += len(chunk)
                self.count("sse_watch read-close")
            elif which == 1:  # read to the deadline's error event and the end
                while sock.recv(65536):
                    pass
                self.count("sse_watch deadline")
            elif which == 2:  # never read, close soon
                self.stop.wait(random.uniform(0.2, 5))
                self.count("sse_watch unread-close")
            else:  # never read while events flow
                self.stop.wait(random.uniform(10, 40))
                self.count("sse_watch held-unread")

    # -- bulk work --------------------------------------------------------------------
    def import_file(self) -> None:
        self.imports += 1
        folder = self.gcs_root / "soak"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events-{self.imports % 4}.json"
        lines = []
        for i in range(300):
            if i % 30 == 7:
                lines.append('{"eventType": "home-page-view", "visitorId": ')  # cut JSON
            elif i % 30 == 19:
                lines.append('{"eventType": "add-to-cart", "visitorId": "v-x"}')  # no product
            else:
                event = retail_v2.UserEvent.to_json(self.event(), indent=None)
                lines.append(event.replace("\n", ""))
        (folder / name).write_text("\n".join(lines) + "\n")
        request = retail_v2.ImportUserEventsRequest(parent=CATALOG)
        request.input_config.gcs_source.input_uris.append(f"gs://soak/{name}")
        request.errors_config.gcs_prefix = f"gs://soak/errors-{self.imports % 3}"
        operation = self.retail.import_user_events(request, timeout=30)
        if random.random() < 0.25:
            operation.cancel()
            self.count("import cancel")
        try:
            operation.result(timeout=120)
        except api_exceptions.GoogleAPICallError as error:
            self.count(f"import {type(error).__name__}")

    def purge(self) -> None:
        visitor = f"v-{random.randrange(VISITORS)}"
        operation = self.retail.purge_user_events(retail_v2.PurgeUserEventsRequest(
            parent=random.choice([CATALOG, SCRATCH_CATALOG]),
            filter=f'visitorId = "{visitor}"', force=random.random() < 0.8), timeout=30)
        operation.result(timeout=120)

    def rejoin(self) -> None:
        operation = self.retail.rejoin_user_events(retail_v2.RejoinUserEventsRequest(
            parent=CATALOG,
            user_event_rejoin_scope=retail_v2.RejoinUserEventsRequest.UserEventRejoinScope.
            UNJOINED_EVENTS), timeout=30)
        if random.random() < 0.3:
            self.operations.cancel_operation(operation.operation.name)
            self.count("rejoin cancel")
        try:
            operation.result(timeout=120)
        except api_exceptions.GoogleAPICallError as error:
            self.count(f"rejoin {type(error).__name__}")

    def operations_poll(self) -> None:
        listed = list(itertools.islice(self.operations.list_operations(CATALOG, ""), 20))
        self.count(f"operations listed {min(len(listed), 20) // 5 * 5}+")
        for operation in listed[:5]:
            self.operations.get_operation(operation.name, timeout=30)
            if not operation.done:
                self.operations.cancel_operation(operation.name, timeout=30)
                self.count("operations cancel")
        done = [operation for operation in listed if operation.done]
        if done and random.random() < 0.5:
            self.operations.delete_operation(done[-1].name, timeout=30)
            self.count("operations delete")

    def reset(self) -> None:
        which = random.randrange(3)
        if which == 0:
            self.console.ResetCatalog(message((1, SCRATCH_CATALOG)),
                                      timeout=60)
        elif which == 1:
            self.console.ResetTenant(message((1, SCRATCH_TENANT)),
                                     timeout=60)
        else:
            status, _ = self.http("POST", f"/console/v1/{SCRATCH_PROJECT}:reset", body={})
            self.count(f"reset project {status}")

    def start(self, only: set[str] | None = None) -> list[threading.Thread]:
        """Each action's threads; with `only`, those named in it alone (a bisection of
        what grows by client kind)."""
        plan: list[tuple[str, float, Callable[[], None], int]] = [
            ("write_durable", 0.25, self.write_durable, 2),
            ("write_async", 0.5, self.write_async, 1),
            ("write_rest", 1.0, self.write_rest, 1),
            ("pixel", 0.4, self.pixel, 1),
            ("refused", 1.0, self.refused, 1),
            ("talent", 0.5, self.talent_event, 1),
            ("console_list", 1.5, self.console_list, 1),
            ("counts_insights", 4.0, self.counts_and_insights, 1),
            ("grpc_watch", 1.0, self.grpc_watch, 3),
            ("sse_watch", 1.0, self.sse_watch, 3),
            ("import", 30.0, self.import_file, 1),
            ("purge", 20.0, self.purge, 1),
            ("rejoin", 45.0, self.rejoin, 1),
            ("operations", 10.0, self.operations_poll, 1),
            ("reset", 40.0, self.reset, 1),
        ]
        return [self.every(name, period, action) for name, period, action, threads in plan
                if only is None or name in only for _ in range(threads)]


# -- sampling ---------------------------------------------------------------------------
def fd_kind(target: str) -> str:
    if target.startswith(("socket:", "pipe:")):
        return target.split(":")[0]
    if target.startswith("anon_inode:"):
        return target
    if target.startswith("/dev/"):
        return target
    if ".db" in target or "postgres" in target:
        return "store:" + re.sub(r".*/", "", target)
    return "file:" + re.sub(r"\d+", "N", os.path.basename(target))


def sample_process(pid: int) -> dict[str, Any] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        kinds: collections.Counter[str] = collections.Counter()
        fds = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            fds += 1
            try:
                kinds[fd_kind(os.readlink(f"/proc/{pid}/fd/{fd}"))] += 1
            except FileNotFoundError:
                pass
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    found = {"pid": pid, "cmd": cmdline[:120],
             "rss_kib": int(fields["VmRSS"].split()[0]),
             "hwm_kib": int(fields["VmHWM"].split()[0]),
             "anon_kib": int(fields["RssAnon"].split()[0]),
             "threads": int(fields["Threads"]), "fds": fds, "fd_kinds": dict(kinds)}
    try:  # the mappings: arenas and thread stacks each one or two, mmapped blocks one
        found["maps"] = Path(f"/proc/{pid}/maps").read_text().count("\n")
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def scrape(http_port: int) -> dict[str, float]:
    """The gauges of /metrics (labels summed), and the counters' totals."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
        connection.close()
    except (OSError, http.client.HTTPException):
        return {}
    values: dict[str, float] = collections.defaultdict(float)
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name.endswith(("_bucket", "_sum", "_created")):
            continue
        try:
            values[name] += float(value)
        except ValueError:
            pass
    return dict(values)


def sampler(server_pid: int, http_port: int, workdir: Path, interval: float,
            stop: threading.Event, driver: Driver) -> None:
    started = time.monotonic()
    with open(workdir / "samples.jsonl", "a") as out:
        while True:
            processes = [s for s in (sample_process(p) for p in process_tree(server_pid)) if s]
            record = {"time": time.time(), "elapsed": round(time.monotonic() - started, 1),
                      "processes": processes, "metrics": scrape(http_port),
                      "driver": dict(driver.counts), "driver_cpu": os.times()[0] + os.times()[1]}
            out.write(json.dumps(record) + "\n")
            out.flush()
            if stop.wait(interval):
                return


# -- the report -------------------------------------------------------------------------
def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope, per 10 minutes."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    dx = sum((x - mean_x) ** 2 for x, _ in points)
    return 0.0 if dx == 0 else sum((x - mean_x) * (y - mean_y) for x, y in points) / dx * 600


def measures(workdir: Path) -> dict[str, list[tuple[float, float]]]:
    """Every measure as (seconds since the start, value), of ours and the probe's."""
    series: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    samples = [json.loads(line) for line in (workdir / "samples.jsonl").read_text().splitlines()]
    start = samples[0]["time"]
    for sample in samples:
        at = sample["time"] - start
        for process in sample["processes"]:
            who = _who(process["cmd"], process["pid"])
            for key in ("rss_kib", "hwm_kib", "anon_kib", "maps", "threads", "fds"):
                if key in process:
                    series[f"{who} {key}"].append((at, process[key]))
            for kind, count in process["fd_kinds"].items():
                series[f"{who} fd {kind}"].append((at, count))
        for name, value in sample["metrics"].items():
            if not name.endswith(("_total", "_count")):
                series[f"metric {name}"].append((at, value))
    for path in sorted(workdir.glob("probe-*.jsonl")):
        pid = path.stem.split("-")[1]
        for line in path.read_text().splitlines():
            record = json.loads(line)
            at = record["time"] - start
            series[f"probe {pid} tasks"].append((at, record["tasks"]))
            series[f"probe {pid} objects"].append((at, record["objects"]))
            for name in ("traced_bytes", "python_blocks", "malloc_arena", "malloc_mmapped",
                         "malloc_in_use", "malloc_free", "malloc_heaps", "sqlite_memory_used",
                         "rss_before_trim_kib", "rss_after_trim_kib"):
                if name in record:
                    series[f"probe {pid} {name}"].append((at, record[name]))
            for name, count in record["task_names"].items():
                series[f"probe {pid} task {name}"].append((at, count))
            for name, count in record["types"].items():
                series[f"probe {pid} type {name}"].append((at, count))
    return series


def _who(cmd: str, pid: int) -> str:
    if "spawn_main" in cmd or "multiprocessing" in cmd:
        return f"child {pid}"
    return f"proc {pid}"


def report(workdir: Path, warmup: float, every_measure: bool = False) -> str:
    lines = [f"{'measure':60} {'after warm-up':>14} {'end':>12} {'peak':>12} {'slope/10min':>12}"]
    for name, points in sorted(measures(workdir).items()):
        steady = [(x, y) for x, y in points if x >= warmup] or points
        first, last = steady[0][1], steady[-1][1]
        peak = max(y for _, y in points)
        slope = _slope(steady)
        grows = abs(slope) > 0.02 * max(abs(first), 1) and last > first
        if not every_measure and ("probe" in name and " type " in name and not grows):
            continue
        if not every_measure and " task " in name and not grows:
            continue
        lines.append(f"{name[:60]:60} {first:14.0f} {last:12.0f} {peak:12.0f} {slope:12.1f}"
                     + ("  <- grows" if grows else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--warmup-minutes", type=float, default=4)
    parser.add_argument("--interval", type=float, default=30)
    parser.add_argument("--store", default="")
    parser.add_argument("--processes", default="1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--http-port", type=int, default=-1)
    parser.add_argument("--workdir", default="")
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES")
    parser.add_argument("--no-probe", action="store_true")
    parser.add_argument("--server-prefix", default="", metavar="COMMAND",
                        help="run the server's interpreter under this (e.g. 'memray run "
                        "--native -o /tmp/s.bin'): `python COMMAND -m server serve ...`")
    parser.add_argument("--only", default="", metavar="ACTION,...",
                        help="run only these of the mix's actions (names as in Driver.start)")
    parser.add_argument("--malloc-trim", action="store_true",
                        help="the probe calls malloc_trim(0) at each sample and records the "
                        "RSS before and after: what it gives back was free heap kept")
    parser.add_argument("--report-only", action="store_true",
                        help="print the report of --workdir's samples, run nothing")
    parser.add_argument("--every-measure", action="store_true")
    args = parser.parse_args()
    if args.report_only:
        print(report(Path(args.workdir), args.warmup_minutes * 60, args.every_measure))
        return
    workdir = Path(args.workdir or f"/tmp/footfall-soak-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    store = args.store or f"sqlite:///{workdir}/soak.db"
    ready = workdir / "ready.json"
    environment = dict(os.environ)
    if not args.no_probe:
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "bench" / "soak_site"), environment.get("PYTHONPATH", "")])
        environment["SOAK_PROBE"] = str(workdir)
        environment["SOAK_PROBE_SECONDS"] = str(args.interval)
        if args.malloc_trim:
            environment["SOAK_MALLOC_TRIM"] = "1"
        if args.tracemalloc:
            environment["SOAK_TRACEMALLOC"] = str(args.tracemalloc)
            environment["SOAK_TRACEMALLOC_BASE"] = str(
                max(1, int(args.warmup_minutes * 60 / args.interval)))
    command = [sys.executable, *shlex.split(args.server_prefix), "-m", "server", "serve",
               "--host", "127.0.0.1", "--port", str(args.port), "--http-port", str(args.http_port),
               "--store", store, "--gcs-root", str(workdir / "gcs"),
               "--processes", args.processes, "--ready-file", str(ready),
               "--stop-with-parent", "--log-level", "WARNING"]
    with open(workdir / "server.log", "ab") as log:
        server = subprocess.Popen(command, env=environment, stderr=log, stdout=log, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: see {workdir}/server.log")
            time.sleep(0.2)
        time.sleep(0.2)
        addresses = json.loads(ready.read_text())
        print(f"serving {addresses}; pid {server.pid}; samples in {workdir}", flush=True)
        stop = threading.Event()
        driver = Driver(addresses["grpc"], addresses["httpPort"], workdir / "gcs",
                        args.rate, stop)
        threading.Thread(target=sampler, args=(server.pid, addresses["httpPort"], workdir,
                                               args.interval, stop, driver),
                         daemon=True).start()
        driver.start({name for name in args.only.split(",") if name} or None)
        ends = time.monotonic() + args.minutes * 60
        while time.monotonic() < ends and server.poll() is None:
            time.sleep(min(30.0, max(0.0, ends - time.monotonic())))
            print(f"{time.strftime('%H:%M:%S')} {sum(driver.counts.values())} actions",
                  flush=True)
        stop.set()
        time.sleep(2)
        print(json.dumps(dict(sorted(driver.counts.items())), indent=1))
        print(report(workdir, args.warmup_minutes * 60))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
