"""A page of another site that embeds the REST routes (an iframe, an image, a
script of a read or a watch) reads nothing, and no longer has the server read or
watch for it either: it is refused by its Fetch Metadata before anything runs. An
iframe of a watch held it open as long as the page stayed, so a page could take
every watch a server allows (and with auth off, its address's connections, which a
local developer's own calls share): here 8 iframes took the 4 watches, and the
server's own answer to the next watch was RESOURCE_EXHAUSTED."""

from __future__ import annotations

import asyncio
import http.client
from pathlib import Path

from .cdp import DevTools, chromium
from .conftest import serve
from .pages import until
from .test_console import DEADLINE

WATCH = "/console/v1/projects/-/rejections:watch"
WATCHES = 4
EMBED = """(() => {
  for (let i = 0; i < %d; i++) {
    const frame = document.createElement("iframe");
    frame.src = "http://127.0.0.1:%d%s";
    document.body.append(frame);
  }
  return document.querySelectorAll("iframe").length;
})()"""


def watch_status(port: int) -> int:
    """The status of a watch opened now by a client that is no browser."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        connection.request("GET", WATCH)
        return connection.getresponse().status
    finally:
        connection.close()


async def embed_watches(devtools_url: str, port: int) -> int:
    async with DevTools.connect(devtools_url) as devtools:
        # about:blank's origin is no site of the server's: its frames are cross-site
        session = await devtools.open_page("about:blank")
        assert await devtools.evaluate(session, EMBED % (2 * WATCHES, port, WATCH)) \
            == 2 * WATCHES
        await until(lambda: devtools.evaluate(session, "[...document.querySelectorAll("
                                                       "'iframe')].every(f => f.contentWindow)"),
                    "the frames")
        await asyncio.sleep(2)  # (each frame's request made and answered, or held)
        return await asyncio.to_thread(watch_status, port)


def test_a_page_of_another_site_cannot_hold_the_watches_in_iframes(
        browser_executable: str, tmp_path: Path) -> None:
    with serve(tmp_path, max_watches=WATCHES, max_watches_per_project=WATCHES) as running, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        status = asyncio.run(asyncio.wait_for(embed_watches(devtools_url, running.http_port),
                                              DEADLINE * 2))
    assert status == 200, f"the server's next watch was answered {status}"
