"""The baseline: a gRPC server whose WriteUserEvent does no work (echoes the event).

Run with `threaded`, `aio` (on asyncio's own loop) or `uvloop` (grpc.aio on uvloop's,
as Footfall serves); prints `PORT <n>` once serving, stops on SIGTERM. It decodes and
encodes the same messages as Footfall, so the ratio between the two isolates what
Footfall adds per call.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
import uvloop
from footfall.retail.v2 import user_event_service_pb2_grpc

# The port to listen on (0: a free one, said on stdout); bench/tail.py gives one.
PORT = int(os.environ.get("FOOTFALL_BENCH_PORT", "0"))


class Echo(user_event_service_pb2_grpc.UserEventServiceServicer):
    def WriteUserEvent(self, request, context):  # noqa: N802 - gRPC method name
        return request.user_event


class AsyncEcho(user_event_service_pb2_grpc.UserEventServiceServicer):
    async def WriteUserEvent(self, request, context):  # noqa: N802
        return request.user_event


def run_threaded(workers: int) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    user_event_service_pb2_grpc.add_UserEventServiceServicer_to_server(Echo(), server)
    port = server.add_insecure_port(f"127.0.0.1:{PORT}")
    server.start()
    print(f"PORT {port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()


async def run_aio() -> None:
    server = grpc.aio.server()
    user_event_service_pb2_grpc.add_UserEventServiceServicer_to_server(AsyncEcho(), server)
    port = server.add_insecure_port(f"127.0.0.1:{PORT}")
    await server.start()
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    if sys.argv[1] == "threaded":
        run_threaded(int(sys.argv[2]) if len(sys.argv) > 2 else 32)
    elif sys.argv[1] == "uvloop":
        uvloop.run(run_aio())
    else:
        asyncio.run(run_aio())
