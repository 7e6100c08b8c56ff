"""A server-streaming RPC over HTTP, as server-sent events (what a browser's
EventSource reads): one `data:` line of proto3 JSON per message, then an `id:` line
when the message says where the stream is (a stored row's id, a batch's last): an
EventSource that reconnects sends it back as Last-Event-ID, and a watch asked so goes
on after it (its request's after_id), as the console does with afterId. The id comes
after the data, with the event's end: a client that takes it as its line comes (the
HTML spec takes it once the event is whole; npm's `eventsource` at once) and loses
the connection within the data has not read it, and reads the event again. The
stream begins with an event of its start alone (`id:`, no data), so that one that
reconnects before any event came goes on from where it began.

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
from aiohttp.abc import AbstractStreamWriter
from google.protobuf.message import Message

from server.console.feed import SEND_SECONDS, Batch, Item, close_stream, let_slow_client_go
from server.errors import FootfallError, InvalidArgument, to_rpc_status
from server.http import transcode
from server.http.errors import error_body, http_status_of
from server.http.headers import NO_STORE
from server.loop import in_stream_encoder

log = logging.getLogger(__name__)

HEADERS = {**NO_STORE, "Content-Type": "text/event-stream",
           "X-Accel-Buffering": "no"}  # proxies that buffer (NGINX) pass each event on


def event(data: bytes, kind: str = "") -> bytes:
    """One server-sent event carrying `data` (split into `data:` lines if it has more)."""
    head = f"event: {kind}\n".encode() if kind else b""
    return head + b"".join(b"data: " + line + b"\n" for line in data.split(b"\n")) + b"\n"


LAST_EVENT_ID = "Last-Event-ID"
_MOST_ID = 2**63 - 1  # (an int64 after_id)


def resumed(request: Message, last_event_id: str | None) -> Message:
    """`request` going on after `last_event_id` (an EventSource's Last-Event-ID, the
    `id:` of the last event it read) where it has an after_id; unchanged without
    the header. Reconnecting, an EventSource sends its first URL again with it: the
    header, newer, decides. A value that is no id is refused, naming the header."""
    if not last_event_id or "after_id" not in request.DESCRIPTOR.fields_by_name:
        return request
    text = last_event_id.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > _MOST_ID:
        raise InvalidArgument.field(LAST_EVENT_ID, (
            f"must be the id of the last event read (a whole number from 0 to {_MOST_ID}, "
            f"as the stream's id: lines give), got {last_event_id[:40]!r}"))
    request.after_id = int(text)  # type: ignore[attr-defined]
    return request


def position(message: object) -> int | None:
    """Where the stream is once `message` is read: its row's id, or its last row's
    for a batch; None when it says none (an EventSource keeps the last it read)."""
    if isinstance(message, Item):
        return message.id
    if isinstance(message, Batch):
        return next((chunk.items[-1].id for chunk in reversed(message.chunks)
                     if chunk.items), None)
    if isinstance(message, Message):
        fields = message.DESCRIPTOR.fields_by_name
        if "id" in fields and fields["id"].cpp_type == fields["id"].CPPTYPE_INT64:
            return int(message.id)  # type: ignore[attr-defined]
        if "user_events" in fields:  # (a UserEventBatch made for the occasion)
            listed = message.user_events  # type: ignore[attr-defined]
            return int(listed[-1].id) if listed else None
    return None


class Encoded(Protocol):
    """A message shared by many streams that encodes itself once per form (see
    console.feed.Item)."""

    @property
    def size(self) -> int:
        """About how many bytes it holds (serialized)."""

    def json_parts(self, form: Hashable, encode: Callable[[Message], bytes]) -> list[bytes]:
        """Its JSON (one line) as parts to send one after the other, shared by the
        streams that send it."""


def start_of(opened_by: Message) -> int | None:
    """Where a stream opened by the request `opened_by` began (the servicer writes it
    into its after_id): its first event, an `id:` without data, which an EventSource
    takes as its last event's id and dispatches nothing. A watch from now said where
    it was only with its first event: one that reconnected before any came sent no
    Last-Event-ID and missed what was stored meanwhile."""
    fields = opened_by.DESCRIPTOR.fields_by_name
    if "after_id" in fields and opened_by.HasField("after_id"):
        return int(opened_by.after_id)  # type: ignore[attr-defined]
    return None


async def respond(request: web.Request, opened: AsyncIterator[Message | Encoded],
                  output: transcode.Output,
                  decorate: Callable[[web.StreamResponse], Any],
                  start: int | None = None) -> web.StreamResponse:
    """Send each message of `opened` (an open stream) as an event until it ends or
    the client goes, after an event of `start` alone (start_of) when given;
    `decorate` adds headers (CORS) before the answer starts."""
    output = dataclasses.replace(output, pretty=False)  # an event per line
    response = web.StreamResponse(headers=HEADERS)
    decorate(response)
    encode = functools.partial(_json, output=output)
    form = output.enums_as_ints
    try:
        # (in the try: a client gone while the stream opened is no server error, and
        # what the stream holds is let go now)
        writer = await response.prepare(request)
        assert writer is not None
        if start is not None:
            await _write(response, writer, b"id: %d\n\n" % start)
        async for message in opened:
            await _send_message(response, writer, message, form, encode)
            del message  # (see _send_message)
    except TimeoutError:
        await let_slow_client_go(opened)  # (what it held let go before the connection is)
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


async def _send_message(response: web.StreamResponse, writer: AbstractStreamWriter,
                        message: Message | Encoded, form: Hashable,
                        encode: Callable[[Message], bytes]) -> None:
    """Send `message` as one event. A function of its own, its message let go by the
    caller once sent, so that no name holds the message or its JSON while the stream
    waits for the next: held by the loop's names, each stream kept its last message
    with its JSON outside feed.HELD_BYTES, as the gRPC watches did (see
    console.service._write_message)."""
    if isinstance(message, Message):
        size, made = message.ByteSize(), functools.partial(_one_part, encode, message)
    else:
        size, made = message.size, functools.partial(message.json_parts, form, encode)
    # A large one is made off the loop, as a large answer is (the JSON of one 2 MB
    # event held every call of both transports for 0.7-1 s), on a thread of the
    # streams' own (not the decoders' of the requests).
    parts = await in_stream_encoder(made) if size > transcode.LARGE_ANSWER_BYTES else made()
    at = position(message)
    await _send(response, writer, parts, b"" if at is None else b"id: %d\n" % at)


def _json(message: Message, output: transcode.Output) -> bytes:
    return transcode.response_json(message, output)


def _one_part(encode: Callable[[Message], bytes], message: Message) -> list[bytes]:
    return [encode(message)]


# How much of an event is handed to the connection at a time: a client that reads
# slowly holds at most about this much of its own (twice, with aiohttp's buffer)
# beside the JSON every stream shares. Framed whole, each of 100 streams that
# stopped reading held its own copy of a 10 MB event's JSON: 1.6 GB.
PIECE_BYTES = 64 * 1024


async def _send(response: web.StreamResponse, writer: AbstractStreamWriter,
                parts: list[bytes], tail: bytes = b"") -> None:
    """One event whose data is `parts` joined, then `tail` (its id: line: see the
    module's docstring), written PIECE_BYTES at a time; a client that takes no piece
    for SEND_SECONDS is let go (console/feed.py)."""
    pending = bytearray()
    # (one `data:` line: compact JSON holds no line break, its strings' are escaped)
    for part in (b"data: ", *parts, b"\n", tail, b"\n"):
        view = memoryview(part)
        while view:
            room = PIECE_BYTES - len(pending)
            pending += view[:room]
            view = view[room:]
            if len(pending) == PIECE_BYTES:
                await _write(response, writer, bytes(pending))
                pending.clear()
    if pending:
        await _write(response, writer, bytes(pending))


async def _write(response: web.StreamResponse, writer: AbstractStreamWriter,
                 piece: bytes) -> None:
    async with asyncio.timeout(SEND_SECONDS):
        await response.write(piece)
        # Nothing more while writing is paused (aiohttp's writer waits only every
        # 64 KiB): --http-send-timeout measures what the client took by what is
        # left of the buffer (see connections.Connection._check_sent).
        await writer.drain()
