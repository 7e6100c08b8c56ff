"""What heavy events cost the event loop, measured inside one server process: the CPU of
the loop's thread and of the decoders' and the writer's (their own clocks) per event,
and the lateness of a 2 ms ticker on the loop while a child process sends the events
(bench.heavy's shapes, one at a time, 0.3 s apart, over gRPC).

    python -m bench.heavy_loop [attributes|products] [EVENTS]

Imports only `server` (and bench.heavy in the child), so it runs against another tree
too (PYTHONPATH=tree:tree/generated), as bench.ab does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

from server import app
from server.config import Settings

CLIENT = """
import sys, time
import grpc
from footfall.retail.v2 import user_event_service_pb2
from bench.heavy import PATH, SHOP, heavy_event
raw = user_event_service_pb2.WriteUserEventRequest(
    parent=SHOP, user_event=heavy_event(sys.argv[1])).SerializeToString()
channel = grpc.insecure_channel(sys.argv[2], options=[
    ("grpc.max_send_message_length", 1 << 24), ("grpc.max_receive_message_length", 1 << 24)])
call = channel.unary_unary(PATH)
for _ in range(2):  # (warm-up: the encoder's process starts)
    call(raw, timeout=60)
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[3])):
    call(raw, timeout=60)
    time.sleep(0.3)
print("done", flush=True)
"""


def _clocks(name_part: str) -> float:
    return sum(time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
               for thread in threading.enumerate()
               if name_part in thread.name and thread.ident is not None)


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "attributes"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    logging.disable(logging.INFO)
    folder = tempfile.mkdtemp(prefix="footfall-heavy-loop-")
    running = app.start(Settings(host="127.0.0.1", port=0, http_port=-1,
                                 store=f"sqlite:///{folder}/events.db",
                                 gcs_root=f"{folder}/gcs"))
    lates: list[float] = []

    async def ticker() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.002)
            lates.append(time.perf_counter() - started - 0.002)

    running.loop.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(ticker()))
    client = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CLIENT), kind,
                               f"127.0.0.1:{running.port}", str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert client.stdin is not None and client.stdout is not None
    try:
        client.stdout.readline()
        time.sleep(0.5)
        names = ("footfall-loop", "footfall-decode", "writer")
        before = {name: _clocks(name) for name in names}
        lates.clear()
        client.stdin.write("\n")
        client.stdin.flush()
        client.stdout.readline()
        after = {name: _clocks(name) for name in names}
        seen = sorted(lates)
        print(json.dumps({
            "kind": kind, "events": count,
            **{f"{name}_ms_per_event": round((after[name] - before[name]) / count * 1000, 1)
               for name in names},
            "late_max_ms": round(seen[-1] * 1000, 1),
            "late_p99_ms": round(seen[int(len(seen) * 0.99)] * 1000, 1),
            "late_over_20ms": sum(1 for late in seen if late > 0.02)}))
    finally:
        client.wait(60)
        running.stop()


if __name__ == "__main__":
    main()
