"""Heavy events beside small writes: what one client's large events (many attributes,
many product details, or the attributes' event as REST JSON), sent with a shop's
writer key at the pace the server allows them, cost another project's small durable
WriteUserEvent calls (h2load, its own writer key), and the worst stall of the loop
(seen as the latency of gRPC health checks asked every 20 ms meanwhile).

    python -m bench.heavy [--rev REV] [--kind attributes|products|rest] [--seconds 20]
    python -m bench.heavy --cpu [--kind ...]   # server CPU per heavy event, alone

Auth is on: the flood's large requests take their turns and their address's bytes
(policy.large). The figures to quote are the small writes' p99 and the probe's worst
beside the same run without the flood; the server's CPU per heavy event from /proc.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import write
from bench.ab import exported, served_from
from bench.common import Server, footfall, percentile

FLOOD_KEY = "flood-writer-key-0123456789abcdef"
SMALL_KEY = "small-writer-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef0123456"
SHOP = "projects/shop/locations/global/catalogs/default_catalog"
PATH = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"


def heavy_event(kind: str) -> user_event_pb2.UserEvent:
    """An event of 100,000 attributes (1.98 MB binary), or of 20,000 product details
    (0.37 MB): no event_time, so the server stamps each and none is a duplicate."""
    if kind == "products":
        event = user_event_pb2.UserEvent(event_type="add-to-cart", visitor_id="v-heavy")
        for i in range(20_000):
            detail = event.product_details.add()
            detail.product.id = f"sku-{i}"
            detail.quantity.value = 1
        return event
    event = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id="v-heavy")
    for i in range(100_000):
        event.attributes[f"k{i}"].text.append(f"v{i}")
    return event


def keys_file(folder: Path) -> Path:
    path = folder / "keys.json"
    path.write_text(json.dumps({"keys": {
        FLOOD_KEY: {"projects": ["shop"], "role": "writer", "name": "flood"},
        SMALL_KEY: {"projects": ["bench"], "role": "writer", "name": "small"},
        ADMIN_KEY: {"projects": ["*"], "role": "admin", "name": "admin"}}}))
    path.chmod(0o600)
    return path


class Flood:
    """Heavy events sent back to back (`senders` at once) until stopped."""

    def __init__(self, server: Server, kind: str, key: str, senders: int = 2) -> None:
        self.sent = self.refused = 0
        self.stop = threading.Event()
        event = heavy_event(kind)
        if kind == "rest":
            self.body = json.dumps({"eventType": event.event_type,
                                    "visitorId": event.visitor_id,
                                    **json_format.MessageToDict(event)}).encode()
            self.url = (f"http://127.0.0.1:{server.http_port}/v2/{SHOP}/userEvents:write")
        else:
            self.raw = user_event_service_pb2.WriteUserEventRequest(
                parent=SHOP, user_event=event).SerializeToString()
        self.kind, self.key, self.server = kind, key, server
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(senders)]

    def _send(self) -> None:
        if self.kind == "rest":
            while not self.stop.is_set():
                request = urllib.request.Request(self.url, self.body, method="POST", headers={
                    "content-type": "application/json", "x-goog-api-key": self.key})
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        answer.read()
                    self.sent += 1
                except Exception:
                    self.refused += 1
                    time.sleep(0.2)
            return
        with grpc.insecure_channel(f"127.0.0.1:{self.server.port}", options=[
                ("grpc.max_send_message_length", 16 << 20),
                ("grpc.max_receive_message_length", 16 << 20)]) as channel:
            call = channel.unary_unary(PATH)
            while not self.stop.is_set():
                try:
                    call(self.raw, metadata=[("x-goog-api-key", self.key)], timeout=60)
                    self.sent += 1
                except grpc.RpcError:
                    self.refused += 1
                    time.sleep(0.2)

    def __enter__(self) -> Flood:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(70)


class Probe:
    """gRPC health checks every 20 ms on one channel, with `key`: their latencies."""

    def __init__(self, port: int, key: str = SMALL_KEY) -> None:
        self.key = key
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.port = port
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            request = health_pb2.HealthCheckRequest()
            while not self.stop.is_set():
                started = time.perf_counter()
                check(request, metadata=[("x-goog-api-key", self.key)], timeout=30)
                self.latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(40)


def small_writes(port: int, frame: Path, callers: int, seconds: float) -> dict[str, float]:
    """h2load's durable writes for `seconds` (-D), with the small project's key."""
    log = Path(tempfile.mktemp(prefix="h2load-", suffix=".log"))
    args = ["h2load", "-D", str(round(seconds)), "-c", str(callers), "-m", "1",
            "-d", str(frame), "-H", "content-type: application/grpc", "-H", "te: trailers",
            "-H", f"x-goog-api-key: {SMALL_KEY}", "--log-file", str(log),
            f"http://127.0.0.1:{port}{write.PATH}"]
    # (h2load exits 1 when a call was still open at the end of -D: those are left out)
    ran = subprocess.run(args, capture_output=True, text=True)
    if not log.exists():
        raise RuntimeError(f"h2load: {ran.stdout[-2000:]} {ran.stderr[-2000:]}")
    lines = [line.split("\t") for line in log.read_text().splitlines()]
    log.unlink()
    times = sorted(int(line[2]) / 1000 for line in lines)
    failed = sum(1 for line in lines if line[1] != "200")
    return {"writes": len(times), "per_second": round(len(times) / seconds, 1),
            "p50_ms": round(percentile(times, 50), 2), "p99_ms": round(percentile(times, 99), 2),
            "max_ms": round(times[-1], 1) if times else 0.0, "non_200": failed}


@contextlib.contextmanager
def server_of(rev: str | None, folder: Path) -> Iterator[Server]:
    with contextlib.ExitStack() as stack:
        tree = stack.enter_context(exported(rev)) if rev else None
        stack.enter_context(served_from(tree))
        server = stack.enter_context(footfall(
            None, "--auth-file", str(keys_file(folder)), "--http-port", "0",
            "--max-request-bytes", str(8 << 20)))
        yield server


def flood_run(server: Server, kind: str, seconds: float, callers: int,
              flood: bool) -> dict[str, Any]:
    frame = write.frame_file()
    try:
        before = server.cpu_seconds()
        with Probe(server.port) as probe, \
                (Flood(server, kind, FLOOD_KEY) if flood else contextlib.nullcontext()) as sent:
            time.sleep(1.0)
            loads = small_writes(server.port, frame, callers, seconds)
        cpu = server.cpu_seconds() - before
    finally:
        frame.unlink()
    lat = sorted(probe.latencies)
    return {**loads, "heavy_sent": sent.sent if flood else 0,
            "heavy_refused": sent.refused if flood else 0,
            "probe_p99_ms": round(percentile(lat, 99), 1), "probe_max_ms": round(lat[-1], 1),
            "server_cpu_s": round(cpu, 2)}


def cpu_run(server: Server, kind: str, count: int) -> dict[str, Any]:
    """Server CPU per heavy event, sent one at a time with the admin key (no pacing)."""
    flood = Flood(server, kind, ADMIN_KEY, senders=1)
    flood.stop.set()  # (send by hand)
    before = server.cpu_seconds()
    started = time.perf_counter()
    if kind == "rest":
        for _ in range(count):
            request = urllib.request.Request(flood.url, flood.body, method="POST", headers={
                "content-type": "application/json", "x-goog-api-key": ADMIN_KEY})
            with urllib.request.urlopen(request, timeout=60) as answer:
                answer.read()
    else:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=[
                ("grpc.max_send_message_length", 16 << 20),
                ("grpc.max_receive_message_length", 16 << 20)]) as channel:
            call = channel.unary_unary(PATH)
            for _ in range(count):
                call(flood.raw, metadata=[("x-goog-api-key", ADMIN_KEY)], timeout=60)
    wall = time.perf_counter() - started
    return {"kind": kind, "events": count,
            "server_cpu_ms_per_event": round((server.cpu_seconds() - before) / count * 1000, 1),
            "wall_ms_per_event": round(wall / count * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rev", action="append", default=[],
                        help="a commit to measure (again: in turns); '.' or none: this checkout")
    parser.add_argument("--kind", default="attributes", choices=("attributes", "products", "rest"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()
    revs = [None if rev == "." else rev for rev in args.rev] or [None]
    folder = Path(tempfile.mkdtemp(prefix="footfall-heavy-"))
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)
    for round_ in range(args.rounds):
        for rev in revs:
            with server_of(rev, folder) as server:
                if args.cpu:
                    cpu_run(server, args.kind, 3)  # warm-up
                    result = cpu_run(server, args.kind, args.events)
                else:
                    quiet = flood_run(server, args.kind, args.seconds / 2, args.callers, False)
                    flooded = flood_run(server, args.kind, args.seconds, args.callers, True)
                    result = {"quiet": quiet, "flood": flooded}
            print(json.dumps({"round": round_, "rev": rev or "checkout", "kind": args.kind,
                              "load": round(os.getloadavg()[0], 1), **result}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
