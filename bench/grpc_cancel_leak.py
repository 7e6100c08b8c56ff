"""Does grpcio's asyncio server keep native memory for each server-streaming call its
client cancels? (grpc/grpc#43360: a batch's grpc_op array, and what its operations
hold, is freed only when the awaiting coroutine takes the batch's event; a batch that
fails, or whose awaiter is cancelled, is never freed.) No footfall code: a grpc.aio
server on uvloop in a child process streams to a sync client that ends each call one
way; the server's glibc bytes in use (mallinfo2, after gc) are read through a unary
method every CALLS/4 calls. Run it against a new grpcio to see whether it still leaks.

    .venv/bin/python -m bench.grpc_cancel_leak MODE [--calls 2000] [--port 64600]

MODE: complete (the stream ends: the control), read-cancel (the client reads 3, then
cancels), unread-cancel (it reads none and cancels after 50 ms), catch-return (as
read-cancel, and the handler catches the cancellation and returns).
grpcio 1.85.4 (2026-12-07): complete 2 B a call, read-cancel 24, unread-cancel 40,
catch-return 117.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import subprocess
import sys
import time
from typing import Any

import grpc

PAYLOAD = b"x" * 300


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def in_use() -> int:
    gc.collect()
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    return int(libc.mallinfo2().uordblks)


async def serve(port: int, catch: bool) -> None:
    async def stream(request: bytes, context: Any) -> None:
        try:
            for _ in range(int(request or b"1000000")):
                await context.write(PAYLOAD)
                await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            if catch:
                return
            raise

    async def memory(_request: bytes, _context: Any) -> bytes:
        return str(in_use()).encode()

    handler = grpc.method_handlers_generic_handler("t.T", {
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Memory": grpc.unary_unary_rpc_method_handler(memory)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def drive(mode: str, calls: int, port: int) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stream = channel.unary_stream("/t.T/Stream")
    memory = channel.unary_unary("/t.T/Memory")

    def run(count: int) -> None:
        for _ in range(count):
            if mode == "complete":
                for _ in stream(b"5"):
                    pass
                continue
            call = stream(b"")
            if mode == "unread-cancel":
                time.sleep(0.05)
            else:
                for read, _ in enumerate(call):
                    if read >= 3:
                        break
            call.cancel()

    run(200)  # (grpc's pools and caches fill first)
    base = int(memory(b""))
    for step in range(1, 5):
        run(calls // 4)
        time.sleep(0.5)
        grown = int(memory(b"")) - base
        made = step * (calls // 4)
        print(f"{mode}: after {made} calls the server's bytes in use +{grown / 1024:.1f} KiB,"
              f" {grown / made:.0f} B a call", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["complete", "read-cancel", "unread-cancel",
                                         "catch-return", "serve"])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--port", type=int, default=64600)
    parser.add_argument("--catch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "serve":
        import uvloop

        uvloop.run(serve(args.port, args.catch))
        return
    command = [sys.executable, "-m", "bench.grpc_cancel_leak", "serve", "--port", str(args.port)]
    server = subprocess.Popen(command + (["--catch"] if args.mode == "catch-return" else []))
    try:
        time.sleep(1.5)
        drive(args.mode, args.calls, args.port)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
