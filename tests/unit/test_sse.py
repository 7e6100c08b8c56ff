"""Server-sent events (server/http/sse.py) answered by a real aiohttp server."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.http import sse, transcode


class Opened:
    """An opened stream with nothing to send; says whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def __aiter__(self) -> Opened:
        return self

    async def __anext__(self) -> sse.Encoded:
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True


def test_a_client_gone_before_the_answer_starts_ends_the_stream_quietly(
        caplog: pytest.LogCaptureFixture) -> None:
    # A client that resets its connection while its watch opens (a reconnect storm
    # does so often): writing the answer's head raised "Cannot write to closing
    # transport" out of the handler, logged as an ERROR with its traceback, and the
    # opened stream was left for the collector to close.
    opened = Opened()
    outcome: list[object] = []
    answered = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # the client went while the stream was opening
        try:
            response = await sse.respond(request, opened, transcode.DEFAULT_OUTPUT,
                                         lambda _: None)
            outcome.append(response)
            return response
        except Exception as exc:
            outcome.append(exc)
            raise
        finally:
            answered.set()

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/watch", handler)
        async with TestServer(app) as server:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b"GET /watch HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert await reader.read() == b""  # closed, nothing answered
            writer.close()
            await answered.wait()  # (the handler goes on after the connection is closed)

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())
    assert isinstance(outcome[0], web.StreamResponse), outcome
    assert opened.closed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
