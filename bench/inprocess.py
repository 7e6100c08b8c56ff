"""Footfall's own CPU per pixel and per durable write, measured inside one server
process: the CPU time of the event loop's thread and of the group-commit writer's
thread (their own clocks), with no load generator and no sockets. On a busy shared
machine this is far steadier than a rate: it leaves out what the HTTP and gRPC
libraries do (the baselines' part) and counts only what our code adds.

    python bench/inprocess.py [--calls 4000] [--rounds 5] [--callers 16]

Prints one JSON line: the least and the median per call over the rounds. It
imports only `server`, so it runs against another tree too (PYTHONPATH), which is
how `bench.ab --inprocess` compares two commits.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import shutil
import statistics
import tempfile
import threading
import time
from types import SimpleNamespace
from typing import Any

from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web import Request
from footfall.retail.v2 import user_event_service_pb2
from google.protobuf import json_format
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from server import app
from server.config import Settings

PARENT = "projects/bench/locations/global/catalogs/default_catalog"
PIXEL = (f"/v2/{PARENT}/userEvents:collect?userEvent=%7B%22eventType%22%3A%22detail-page-view"
         "%22%2C%22visitorId%22%3A%22visitor-1%22%2C%22productDetails%22%3A%5B%7B%22product"
         "%22%3A%7B%22id%22%3A%22sku-1%22%7D%7D%5D%2C%22uri%22%3A%22https%3A%2F%2Fshop.example"
         "%2Fp%2F1%22%7D")
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Accept": "image/avif,image/webp,*/*", "Referer": "https://shop.example/p/1",
    "Accept-Language": "en-US,en;q=0.9", "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
}
WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
EVENT = {  # as bench/write.py sends it
    "eventType": "detail-page-view", "visitorId": "visitor-123456", "sessionId": "s-1",
    "productDetails": [{"product": {"id": "sku-42"}, "quantity": 1}],
    "userInfo": {"userId": "u-9", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                 "ipAddress": "203.0.113.7"},
    "uri": "https://shop.example/p/42", "pageViewId": "pv-1",
    "attributes": {"campaign": {"text": ["autumn"]}},
}


class _Transport:
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


class _GrpcContext:
    """What the gRPC guard and the servicers use of a grpc.aio context."""

    def __init__(self, request: bytes = b"") -> None:
        self._request = request

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "grpc-python/1.0"),)

    def time_remaining(self) -> float | None:
        return None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:40000"

    def add_done_callback(self, callback: Any) -> None:
        """(Run at once, as if the call had ended: grpc keeps it in a list until then.)"""
        callback(self)

    def done(self) -> bool:
        return False

    def code(self) -> None:
        return None

    def details(self) -> str:
        return ""

    async def abort_with_status(self, status: Any) -> None:
        raise RuntimeError(f"the bench call was refused: {status}")

    async def abort(self, code: Any, details: str = "") -> None:
        raise RuntimeError(f"the bench call was refused: {code} {details}")

    async def read(self) -> bytes:
        """The request's bytes, as grpc hands them to a handler that reads its own
        (since fe22da5 a unary call's, read within 60 s: server/rpc.py _read_in_time)."""
        return self._request


def _thread_clock(name_part: str) -> int:
    thread = next(t for t in threading.enumerate() if name_part in t.name)
    assert thread.ident is not None
    return time.pthread_getcpuclockid(thread.ident)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callers", type=int, default=16)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    folder = tempfile.mkdtemp(prefix="footfall-inprocess-")
    running = app.start(Settings(host="127.0.0.1", port=0, http_port=-1,
                                 store=f"sqlite:///{folder}/events.db",
                                 gcs_root=f"{folder}/gcs"))
    try:
        gateway = running.http
        assert gateway is not None
        headers = CIMultiDictProxy(CIMultiDict({"Host": f"127.0.0.1:{gateway.port}",
                                                **BROWSER_HEADERS}))
        protocol = SimpleNamespace(max_field_size=8190, max_line_length=8190, max_headers=128,
                                   transport=_Transport(), peername=("127.0.0.1", 40000),
                                   sockname=None, ssl_context=None)
        loop = running.loop.loop

        def pixel_request() -> Request:
            message = RawRequestMessage("GET", PIXEL, HttpVersion11, headers, (), False, None,
                                        False, False, URL(PIXEL, encoded=True))
            return Request(message, EMPTY_PAYLOAD, protocol, None, None, loop)  # type: ignore[arg-type]

        async def pixels(n: int) -> float:
            start = time.thread_time()
            for _ in range(n):
                answer = await gateway._handle(pixel_request())
                if answer.status != 200 or "X-Footfall-Error" in answer.headers:
                    raise RuntimeError(f"the bench pixel was refused: {answer.headers}")
            return time.thread_time() - start

        async def requests_only(n: int) -> float:
            start = time.thread_time()
            for _ in range(n):
                pixel_request()
            return time.thread_time() - start

        raw = user_event_service_pb2.WriteUserEventRequest(
            parent=PARENT, user_event=json_format.ParseDict(
                EVENT, user_event_service_pb2.WriteUserEventRequest().user_event)
        ).SerializeToString()
        details = SimpleNamespace(method=WRITE, invocation_metadata=())
        guard = _guard_of(running)
        handler = guard.service(details)  # type: ignore[arg-type]
        # A unary-unary handler takes the request's bytes; a stream-unary one (the
        # trees since fe22da5) reads them from its context.
        behaviour = handler.unary_unary or handler.stream_unary
        context = _GrpcContext(raw)
        # The collector as `serve` leaves it once started (start-up frozen, after the
        # guard is found: gc.get_objects leaves frozen objects out; the youngest
        # generation's threshold of the tree measured, where it sets one): what is
        # measured is what is served.
        gc.freeze()
        young = getattr(app, "YOUNG_COLLECTION", None)
        if young is not None:
            gc.set_threshold(young, *gc.get_threshold()[1:])

        async def writes(n: int) -> float:
            async def caller(count: int) -> None:
                for _ in range(count):
                    await behaviour(raw, context)
            start = time.thread_time()
            await asyncio.gather(*(caller(n // args.callers) for _ in range(args.callers)))
            return time.thread_time() - start

        writer = _thread_clock("writer")
        results: dict[str, Any] = {}
        base = min(running.loop.run(requests_only(args.calls), timeout=None) for _ in range(3))
        for name, work, made in (("pixel", pixels, base), ("write", writes, 0.0)):
            running.loop.run(work(min(args.calls, 1000)), timeout=None)  # warm-up
            running.store.flush()
            loop_us, writer_us = [], []
            for _ in range(args.rounds):
                before = time.clock_gettime(writer)
                loop_us.append((running.loop.run(work(args.calls), timeout=None) - made)
                               / args.calls * 1e6)
                running.store.flush()
                writer_us.append((time.clock_gettime(writer) - before) / args.calls * 1e6)
            results[name] = {"loop_us": {"min": min(loop_us),
                                         "median": statistics.median(loop_us)},
                             "writer_us": {"min": min(writer_us),
                                           "median": statistics.median(writer_us)}}
        print(json.dumps(results))
    finally:
        running.stop()
        shutil.rmtree(folder, ignore_errors=True)  # (each run left its store: 15-25 MB)


def _guard_of(running: Any) -> Any:
    """The server's CallGuard: the one generic handler of its grpc.aio server, which
    keeps it out of reach, so it is found among the live objects."""
    import gc

    from server.rpc import CallGuard

    return next(o for o in gc.get_objects() if isinstance(o, CallGuard))


if __name__ == "__main__":
    main()
