"""The baseline for pixel GETs: an aiohttp server whose collect route only answers
the same 1x1 GIF (no decoding, no storing), on asyncio's own loop or (argument
`uvloop`) on uvloop's, as Footfall serves. Prints `PORT <n>`; stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop
from aiohttp import web

from server.retail.collect import PIXEL_CONTENT_TYPE, PIXEL_GIF


async def pixel(request: web.Request) -> web.Response:
    return web.Response(body=PIXEL_GIF, content_type=PIXEL_CONTENT_TYPE,
                        headers={"Cache-Control": "no-store"})


async def main() -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", pixel)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        uvloop.run(main())
    else:
        asyncio.run(main())
