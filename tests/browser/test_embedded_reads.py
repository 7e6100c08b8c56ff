"""A page of another site that embeds the REST routes (an iframe, an image, a
script of a read or a watch) reads nothing, and no longer has the server read or
watch for it either: it is refused by its Fetch Metadata before anything runs. An
iframe of a watch held it open as long as the page stayed, so a page could take
every watch a server allows (and with auth off, its address's connections, which a
local developer's own calls share): here 8 iframes took the 4 watches, and the
server's own answer to the next watch was RESOURCE_EXHAUSTED. A page that fetch()es
a read (cors mode) from an origin --cors-origins does not allow is refused before
it runs too: the browser kept the answer from it, after the server had counted."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# A page of another site that has the browser prefetch and prerender watches (its
# speculation rules, its own page's only script), as Chromium sends them: Sec-Fetch-
# Site none, the page's origin as Referer, or no Referer when the rules say so.
SPECULATION = """<!doctype html><title>another site</title>
<script type="speculationrules">{"prefetch": [{"source": "list", "urls": %s}],
"prerender": [{"source": "list", "urls": %s, "referrer_policy": "no-referrer"}]}</script>"""


@contextlib.contextmanager
def another_site(page: bytes) -> Iterator[int]:
    """A server of another site's one page, on a free port of 127.0.0.1; its port."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="another-site")
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def watch_statuses(port: int, count: int) -> list[int]:
    """The statuses of `count` watches opened together by a client that is no browser."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
                   for _ in range(count)]
    try:
        for connection in connections:
            connection.request("GET", WATCH)
        return [connection.getresponse().status for connection in connections]
    finally:
        for connection in connections:
            connection.close()


async def speculate(devtools_url: str, page: str, port: int) -> list[int]:
    async with DevTools.connect(devtools_url) as devtools:
        await devtools.open_page(page)
        await asyncio.sleep(3)  # (each speculation made and answered, or held)
        return await asyncio.to_thread(watch_statuses, port, WATCHES)


def test_a_page_of_another_site_cannot_hold_the_watches_by_prefetching_them(
        browser_executable: str, tmp_path: Path) -> None:
    """Speculation rules' prefetch and prerender say they are a link followed, and
    were answered as one: each held a watch for nobody (here 2 prefetches and 2
    prerenders took the 4 watches, and the server's own next watch was 429); now
    every watch is the server's own to give."""
    with serve(tmp_path, max_watches=WATCHES, max_watches_per_project=WATCHES) as running, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        watches = [f"http://127.0.0.1:{running.http_port}/console/v1/projects/p/locations/"
                   f"global/catalogs/c{i}/userEvents:watch" for i in range(WATCHES)]
        page = SPECULATION % (json.dumps(watches[:2]), json.dumps(watches[2:]))
        with another_site(page.encode()) as site:
            statuses = asyncio.run(asyncio.wait_for(
                speculate(devtools_url, f"http://a.localhost:{site}/", running.http_port),
                DEADLINE * 2))
    assert statuses == [200] * WATCHES, f"the server's own watches were answered {statuses}"


CATALOG = "projects/p/locations/global/catalogs/default_catalog"
COUNT = f"/console/v1/{CATALOG}/userEvents:count"
FETCH = """fetch("http://127.0.0.1:%d%s").then(
  answer => answer.json().then(read => "read " + JSON.stringify(read)),
  error => "kept from the page: " + error.message)"""


def write(port: int, visitor: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        connection.request("POST", f"/v2/{CATALOG}/userEvents:write",
                           json.dumps({"eventType": "home-page-view", "visitorId": visitor}),
                           {"Content-Type": "application/json"})
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def counts_run(port: int) -> dict[str, float]:
    """The calls of CountUserEvents the server has counted, by status code."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        connection.request("GET", "/metrics")
        page = connection.getresponse().read().decode()
    finally:
        connection.close()
    counted: dict[str, float] = {}
    for line in page.splitlines():
        if line.startswith("footfall_requests_total{") and 'method="CountUserEvents"' in line:
            labels, _, value = line.rpartition(" ")
            counted[labels.partition('code="')[2].partition('"')[0]] = float(value)
    return counted


async def fetch_from(devtools_url: str, page: str, port: int) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page(page)
        # (a new tab is about:blank until the page comes, whose fetch() says Origin null)
        await until(lambda: devtools.evaluate(session, f"location.href === {page!r} && "
                                                       f"document.readyState === 'complete'"),
                    page)
        result: str = await devtools.evaluate(session, FETCH % (port, COUNT))
        return result


def test_a_page_of_an_origin_not_allowed_cannot_have_the_server_count_for_it(
        browser_executable: str, tmp_path: Path) -> None:
    """A page's fetch() in cors mode of a read: the browser keeps the answer from a
    page whose origin --cors-origins does not allow, but the server counted (over
    millions of events, as often as the page asked) before it did. Now it refuses
    first, and counts for the page of an origin listed."""
    page = b"<!doctype html><title>another site</title>"
    with another_site(page) as site, \
            serve(tmp_path, cors_origins=(f"http://b.localhost:{site}",)) as running, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        port = running.http_port
        for visitor in ("v1", "v2"):
            write(port, visitor)
        foreign = asyncio.run(asyncio.wait_for(
            fetch_from(devtools_url, f"http://a.localhost:{site}/", port), DEADLINE * 2))
        assert foreign == "kept from the page: Failed to fetch", foreign
        run = counts_run(port)
        assert run == {"PERMISSION_DENIED": 1.0}, f"the server ran the page's read: {run}"
        listed = asyncio.run(asyncio.wait_for(
            fetch_from(devtools_url, f"http://b.localhost:{site}/", port), DEADLINE * 2))
        assert listed == 'read {"count":"2"}', listed
        assert counts_run(port) == {"PERMISSION_DENIED": 1.0, "OK": 1.0}
