"""A server-streaming RPC over HTTP, as server-sent events (what a browser's
EventSource reads): one `data:` line of proto3 JSON per message.

The stream is opened (key, request, admission) before the answer starts, so a
refused one gets Google's JSON error with its HTTP code like any call; a
refusal met later, once the stream has begun, comes as an `error` event with
the same JSON. Each open stream reads on a thread of `pool` (the servicer's
iterator blocks while it waits for the next message) and ends within a poll
of its client going away.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from google.protobuf.message import Message

from server.errors import FootfallError, to_rpc_status
from server.http import transcode
from server.http.errors import error_body, http_status_of

log = logging.getLogger(__name__)

_END = object()
HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store",
           "X-Accel-Buffering": "no"}  # proxies that buffer (NGINX) pass each event on


def event(data: bytes, kind: str = "") -> bytes:
    """One server-sent event carrying `data` (split into `data:` lines if it has more)."""
    head = f"event: {kind}\n".encode() if kind else b""
    return head + b"".join(b"data: " + line + b"\n" for line in data.split(b"\n")) + b"\n"


async def respond(request: web.Request, opened: Iterator[Message], output: transcode.Output,
                  pool: concurrent.futures.Executor,
                  decorate: Callable[[web.StreamResponse], Any]) -> web.StreamResponse:
    """Send each message of `opened` (an open stream) as an event until it ends or
    the client goes; `decorate` adds headers (CORS) before the answer starts."""
    loop = asyncio.get_running_loop()
    output = dataclasses.replace(output, pretty=False)  # an event per line
    response = web.StreamResponse(headers=HEADERS)
    decorate(response)
    await response.prepare(request)
    try:
        while True:
            message = await loop.run_in_executor(pool, next, opened, _END)
            if message is _END:
                break
            assert isinstance(message, Message)
            await response.write(event(transcode.response_json(message, output)))
    except FootfallError as refusal:
        status = to_rpc_status(refusal)
        await response.write(event(error_body(status, http_status_of(refusal)), "error"))
    except ConnectionResetError:
        pass  # the client went: its stream ends at its next poll (it checks is_active)
    return response
