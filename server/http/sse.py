"""A server-streaming RPC over HTTP, as server-sent events (what a browser's
EventSource reads): one `data:` line of proto3 JSON per message.

The stream is opened (key, request, admission) before the answer starts, so a
refused one gets Google's JSON error with its HTTP code like any call; a
refusal met later, once the stream has begun, comes as an `error` event with
the same JSON. The messages come from the servicer's async iterator, on the
server's loop: an open stream costs no thread, and ends within a poll of its
client going away.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any, Protocol

from aiohttp import web
from google.protobuf.message import Message

from server.console.feed import SEND_SECONDS, close_stream
from server.errors import FootfallError, to_rpc_status
from server.http import transcode
from server.http.errors import error_body, http_status_of
from server.loop import in_decoder

log = logging.getLogger(__name__)

HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store",
           "X-Accel-Buffering": "no"}  # proxies that buffer (NGINX) pass each event on


def event(data: bytes, kind: str = "") -> bytes:
    """One server-sent event carrying `data` (split into `data:` lines if it has more)."""
    head = f"event: {kind}\n".encode() if kind else b""
    return head + b"".join(b"data: " + line + b"\n" for line in data.split(b"\n")) + b"\n"


class Encoded(Protocol):
    """A message shared by many streams that encodes itself once per form (see
    console.feed.Item)."""

    @property
    def size(self) -> int:
        """About how many bytes it holds (serialized)."""

    def json(self, form: Hashable, encode: Callable[[Message], bytes]) -> bytes: ...


async def respond(request: web.Request, opened: AsyncIterator[Message | Encoded],
                  output: transcode.Output,
                  decorate: Callable[[web.StreamResponse], Any]) -> web.StreamResponse:
    """Send each message of `opened` (an open stream) as an event until it ends or
    the client goes; `decorate` adds headers (CORS) before the answer starts."""
    output = dataclasses.replace(output, pretty=False)  # an event per line
    response = web.StreamResponse(headers=HEADERS)
    decorate(response)
    await response.prepare(request)
    encode = functools.partial(_json, output=output)
    form = output.enums_as_ints
    try:
        async for message in opened:
            if isinstance(message, Message):
                size, write = message.ByteSize(), functools.partial(encode, message)
            else:
                size, write = message.size, functools.partial(message.json, form, encode)
            # A large one is written off the loop, as a large answer is (the JSON of
            # one 2 MB event held every call of both transports for 0.7-1 s).
            data = await in_decoder(write) if size > transcode.LARGE_ANSWER_BYTES else write()
            # a client that takes nothing for SEND_SECONDS is let go (console/feed.py)
            async with asyncio.timeout(SEND_SECONDS):
                await response.write(event(data))
    except TimeoutError:
        await close_stream(opened)  # (what it held is let go before the connection is)
        if request.transport is not None:  # (an event cut short: the stream ends)
            request.transport.close()
    except FootfallError as refusal:
        status = to_rpc_status(refusal)
        await response.write(event(error_body(status, http_status_of(refusal)), "error"))
    except ConnectionError:  # the client went (reset, or lost while we wrote)
        pass
    finally:
        await close_stream(opened)  # (now, not when the stream is collected)
    return response


def _json(message: Message, output: transcode.Output) -> bytes:
    return transcode.response_json(message, output)
