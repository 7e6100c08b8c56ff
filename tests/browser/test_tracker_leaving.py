"""Events tracked as their page is left reach the server: tracked in the click of a
link to the cart, or just before `location.href = ...`, and tracked as the page is
hidden (a phone's browser sent to the background) or closed. The tracker's server
is reached over a slow link, as a phone reaches a third-party host (its connection
takes a second: DNS, TCP, TLS), and the browser keeps no page in its back/forward
cache (as Firefox and Safari often do not either, nor Chrome a page that is not
eligible): an image whose page goes before its request has left is never fetched,
and a plain fetch is cancelled. A beacon is sent whatever becomes of its page."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from server.app import Running

from .cdp import DevTools, chromium
from .pages import until
from .test_tracker import DEADLINE, site_of, stored
from .test_tracker_privacy_edges import CART, page, pages_of

CONNECTING = 1.0  # seconds the slow link takes to open a connection
NO_BACK_FORWARD_CACHE = ("--disable-features=BackForwardCache",)


def receive(end: socket.socket) -> bytes:
    """What `end` has sent (b"" once it has closed, or reset)."""
    try:
        return end.recv(65536)
    except OSError:
        return b""


@contextlib.contextmanager
def slow_link(port: int, requests: list[bytes]) -> Iterator[str]:
    """A link to the server's HTTP port `port` whose every connection takes
    CONNECTING seconds to open: what the browser sent on one it gave up within them
    never arrives, as it never left. Yields its URL; the method of the first request
    of each connection that went through is added to `requests`."""
    class Link(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            browser: socket.socket = self.request
            sent = b""
            opened = time.monotonic() + CONNECTING
            while (left := opened - time.monotonic()) > 0:
                if select.select([browser], [], [], left)[0]:
                    got = receive(browser)
                    if not got:
                        return  # given up while connecting
                    sent += got
            if sent:
                requests.append(sent.split(b" ", 1)[0])
            with socket.create_connection(("127.0.0.1", port)) as server:
                server.sendall(sent)
                while True:
                    ready = select.select([browser, server], [], [], DEADLINE)[0]
                    if not ready:
                        return
                    for end in ready:
                        got = receive(end)
                        if not got:
                            return
                        (server if end is browser else browser).sendall(got)

    link = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Link)
    link.daemon_threads = True
    thread = threading.Thread(target=link.serve_forever, daemon=True, name="slow-link")
    thread.start()
    try:
        yield f"http://127.0.0.1:{link.server_address[1]}"
    finally:
        link.shutdown()
        link.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def shop_over_slow_links(running: Running, bodies: dict[str, tuple[str, str]],
                         requests: dict[str, list[bytes]]) -> Iterator[str]:
    """A shop whose page /NAME.html (NAME: each of `bodies`, its data-attributes and
    its script) sends to the server over a slow link of its own (a connection of its
    own to open), with /cart.html; yields its base URL. The requests of each link go
    to `requests[NAME]`."""
    with contextlib.ExitStack() as links:
        pages = {"/cart.html": CART}
        for name, (attributes, body) in bodies.items():
            requests[name] = []
            link = links.enter_context(slow_link(running.http_port, requests[name]))
            pages[f"/{name}.html"] = page(running, f' data-endpoint="{link}"{attributes}',
                                          body=body)
        with site_of(pages) as site:
            yield site


async def close(devtools: DevTools, session: str) -> None:
    target = await devtools.send("Target.getTargetInfo", {}, session)
    await devtools.send("Target.closeTarget", {"targetId": target["targetInfo"]["targetId"]})


def test_an_event_tracked_as_a_link_leaves_its_page_is_stored(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """An add-to-cart tracked in the click of a link to the cart, or just before the
    page's script goes there, was sent as an image, whose page went before its
    request left: lost. An event of a page that stays still goes as the pixel."""
    bodies = {
        "link": ("", """
document.getElementById("cart").addEventListener("click", () => view("link"));
setTimeout(() => document.getElementById("cart").click(), 100);"""),
        "script": ("", """
setTimeout(() => { view("script"); location.href = "/cart.html"; }, 100);"""),
        "stays": ("", """
window.seen = {}; view("stays").then(sent => { seen.sent = sent; });"""),
    }
    requests: dict[str, list[bytes]] = {}

    async def scenario(devtools_url: str) -> object:
        async with DevTools.connect(devtools_url) as devtools:
            for name in ("link", "script"):
                session = await devtools.open_page(f"{site}/{name}.html")
                await until(lambda session=session: devtools.evaluate(
                    session, "location.pathname === '/cart.html'"), f"{name}: the cart")
            session = await devtools.open_page(f"{site}/stays.html")
            return await until(lambda: devtools.evaluate(session, "window.seen?.sent"),
                               "the pixel of a page that stays")

    with shop_over_slow_links(running, bodies, requests) as site, \
            chromium(browser_executable, tmp_path / "profile",
                     NO_BACK_FORWARD_CACHE) as devtools_url:
        assert asyncio.run(asyncio.wait_for(scenario(devtools_url), DEADLINE * 2)) is True
        events = stored(running, count=3)
    assert pages_of(events) == ["link", "script", "stays"]
    # by beacon as the page went; the pixel of a page that stays is as it was
    assert requests == {"link": [b"POST"], "script": [b"POST"], "stays": [b"GET"]}


def test_an_event_tracked_as_its_page_is_hidden_or_closed_is_stored(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """An event tracked as the page is hidden (where Google advises a page to send
    what it has: a phone's browser sent to the background may end the page with no
    pagehide) went as an image, lost when the page was closed before its request
    left; and one tracked with data-debug as the page was closed went by a fetch that
    the closing cancelled."""
    bodies = {
        "hidden": ("", """
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") { view("hidden"); window.hid = true; }
});
window.ready = true;"""),
        "debug": (" data-debug", """
window.addEventListener("pagehide", () => view("debug"));
window.ready = true;"""),
    }
    requests: dict[str, list[bytes]] = {}

    async def scenario(devtools_url: str) -> None:
        async with DevTools.connect(devtools_url) as devtools:
            hidden = await devtools.open_page(f"{site}/hidden.html")
            await until(lambda: devtools.evaluate(hidden, "window.ready === true"),
                        "the page to load")
            target = await devtools.send("Target.getTargetInfo", {}, hidden)
            window = await devtools.send("Browser.getWindowForTarget",
                                         {"targetId": target["targetInfo"]["targetId"]})
            await devtools.send("Browser.setWindowBounds", {
                "windowId": window["windowId"], "bounds": {"windowState": "minimized"}})
            await until(lambda: devtools.evaluate(hidden, "window.hid === true"),
                        "the page to be hidden")
            await close(devtools, hidden)
            debug = await devtools.open_page(f"{site}/debug.html")
            await until(lambda: devtools.evaluate(debug, "window.ready === true"),
                        "the page to load")
            await close(devtools, debug)

    with shop_over_slow_links(running, bodies, requests) as site, \
            chromium(browser_executable, tmp_path / "profile",
                     NO_BACK_FORWARD_CACHE) as devtools_url:
        asyncio.run(asyncio.wait_for(scenario(devtools_url), DEADLINE * 2))
        events = stored(running, count=2)
    assert pages_of(events) == ["debug", "hidden"]


def test_with_data_debug_an_event_over_64_kib_of_a_hidden_page_is_sent_all_the_same(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A page being left sends with data-debug by a fetch that outlives it (keepalive),
    which the browser refuses for a body over its 64 KiB: such an event (an order of
    many lines) goes by an ordinary fetch, which ends with the page, not nowhere."""
    lines = {"text": ["n" * 200] * 350}  # about 70 KiB of JSON
    pages = {"/order.html": page(running, " data-debug", body="window.ready = true;")}

    async def scenario(devtools_url: str) -> object:
        async with DevTools.connect(devtools_url) as devtools:
            session = await devtools.open_page(f"{site}/order.html")
            await until(lambda: devtools.evaluate(session, "window.ready === true"),
                        "the page to load")
            target = await devtools.send("Target.getTargetInfo", {}, session)
            window = await devtools.send("Browser.getWindowForTarget",
                                         {"targetId": target["targetInfo"]["targetId"]})
            await devtools.send("Browser.setWindowBounds", {
                "windowId": window["windowId"], "bounds": {"windowState": "minimized"}})
            await until(lambda: devtools.evaluate(
                session, "document.visibilityState === 'hidden'"), "the page to be hidden")
            return await devtools.evaluate(session, f"""Promise.all([
                footfall.track({{eventType: "home-page-view", attributes: {{
                    page: {{text: ["small"]}}}}}}),
                footfall.track({{eventType: "home-page-view", attributes: {{
                    page: {{text: ["order"]}}, lines: {lines}}}}})]).then(sent => [sent, said])""")

    with site_of(pages) as site, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        sent = asyncio.run(asyncio.wait_for(scenario(devtools_url), DEADLINE * 2))
    assert sent == [[True, True], []]
    assert pages_of(stored(running, count=2)) == ["order", "small"]


def test_a_page_opened_in_a_background_tab_is_not_being_left(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A page hidden from its start (a product opened in a background tab, as shoppers
    open them) is not being left: its event waits for GA's cookie as on any page.
    Taken for one being left, it went at once with the tracker's own visitor."""
    pages = {"/tab.html": page(running, ' data-visitor-cookie="_ga"', body="""
window.seen = {hidden: document.visibilityState};
window.addEventListener("pageshow", () => setTimeout(() => {
  setTimeout(() => { document.cookie = "_ga=GA1.1.42.1700000000; Path=/"; }, 300);
  view("tab").then(sent => { seen.sent = sent; });
}, 0));""")}

    async def scenario(devtools_url: str) -> object:
        async with DevTools.connect(devtools_url) as devtools:
            session = await devtools.open_page("about:blank")
            target = await devtools.send("Target.getTargetInfo", {}, session)
            window = await devtools.send("Browser.getWindowForTarget",
                                         {"targetId": target["targetInfo"]["targetId"]})
            await devtools.send("Browser.setWindowBounds", {
                "windowId": window["windowId"], "bounds": {"windowState": "minimized"}})
            await devtools.send("Page.navigate", {"url": f"{site}/tab.html"}, session)
            return await until(lambda: devtools.evaluate(
                session, "window.seen?.sent !== undefined && window.seen"), "the page to track")

    with site_of(pages) as site, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(scenario(devtools_url), DEADLINE * 2))
    assert seen == {"hidden": "hidden", "sent": True}
    [event] = stored(running, count=1)
    assert event.visitor_id == "42.1700000000"
