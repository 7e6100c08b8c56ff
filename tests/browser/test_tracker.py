"""A real browser runs /footfall.js: headless Chromium opens a shop page (served
here on localhost) that loads the tracker and tracks a detail-page-view; the
event is stored with the browser's user agent, the page's URI and the visitor
id of the cookie the tracker set."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2

from server.app import Running
from server.store import EventQuery

from .cdp import DevTools, chromium
from .conftest import serve
from .pages import until

CATALOG = "projects/browser-test/locations/global/catalogs/default_catalog"
COOKIE = "_footfall_vid"
DEADLINE = 30.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<script>window.said = []; console.error = (...words) => said.push(words.join(" "));</script>
<script src="http://127.0.0.1:{gateway}/footfall.js" data-parent="{catalog}"{key}></script>
</head><body><h1>{title}</h1><a href="/second.html">next</a>
<script>
window.tracked = footfall.track({{eventType: "detail-page-view",
                                  productDetails: [{{product: {{id: "{sku}"}}, quantity: 1}}],
                                  attributes: {attributes}}});
</script></body></html>
"""
# The README's hand-written pixel, as a shop page on another host holds it: once
# plain, once with the referrer policy the README gives it.
PIXELS = """<!doctype html>
<html><head><meta charset="utf-8"><title>Pixels</title></head><body>
<img id="plain" width="1" height="1" alt="" src="{collect}{plain}">
<img id="whole" width="1" height="1" alt="" referrerpolicy="no-referrer-when-downgrade"
     src="{collect}{whole}">
</body></html>
"""
# Over 16 KiB of JSON: more than a GET may carry (sent by POST)
LARGE = json.dumps({"notes": {"text": ["n" * 100] * 200}})


@contextlib.contextmanager
def shop_of(running: Running, key: str = "", catalog: str = CATALOG) -> Iterator[str]:
    """A two-page shop on a port of its own (its script tags give `key` as
    data-api-key, if any, and `catalog` as data-parent); yields its base URL. The
    second page's event is over 16 KiB of JSON."""
    attribute = f' data-api-key="{key}"' if key else ""
    pages = {
        "/tents/2p.html": PAGE.format(title="Tent", gateway=running.http_port,
                                      catalog=catalog, sku="tent-2p", key=attribute,
                                      attributes="{}"),
        "/second.html": PAGE.format(title="Stove", gateway=running.http_port,
                                    catalog=catalog, sku="stove-1", key=attribute,
                                    attributes=LARGE),
        "/tents/pixels.html": PIXELS.format(
            collect=f"http://127.0.0.1:{running.http_port}/v2/{catalog}/userEvents:collect"
                    "?userEvent=",
            plain=urllib.parse.quote('{"eventType": "home-page-view", "visitorId": "plain"}'),
            whole=urllib.parse.quote('{"eventType": "home-page-view", "visitorId": "whole"}')),
    }

    with site_of(pages) as base:
        yield base


@pytest.fixture
def shop(running: Running) -> Iterator[str]:
    with shop_of(running) as base:
        yield base


async def tracked(devtools: DevTools, session: str, path: str) -> dict[str, Any]:
    """Once the page at `path` has tracked its event: whether the pixel loaded, and
    what the page knows (user agent, its URL, its cookie)."""
    ready = f"location.pathname === {path!r} && window.tracked !== undefined"
    # (an evaluation the link's navigation cuts short counts as not yet: it failed
    # CI once with "Inspected target navigated or closed")
    await until(lambda: devtools.evaluate(session, ready), f"{path} to track", DEADLINE)
    return {
        "sent": await devtools.evaluate(session, "window.tracked"),
        "user_agent": await devtools.evaluate(session, "navigator.userAgent"),
        "href": await devtools.evaluate(session, "location.href"),
        "cookie": await devtools.evaluate(session, "document.cookie"),
        "said": await devtools.evaluate(session, "window.said"),
    }


async def browse(devtools_url: str, first_page: str) -> list[dict[str, Any]]:
    """Open the first page, then follow its link to the second."""
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page(first_page)
        first = await tracked(devtools, session, "/tents/2p.html")
        await devtools.evaluate(session, "document.querySelector('a').click()")
        second = await tracked(devtools, session, "/second.html")
        return [first, second]


def stored(running: Running, count: int = 2) -> list[user_event_pb2.UserEvent]:
    """The catalog's events once `count` are stored (a beacon is sent when the
    browser finds the time)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        running.store.flush()  # a pixel is answered before its commit
        rows = running.store.list_user_events(EventQuery(CATALOG), 100, 0)
        if len(rows) >= count or time.monotonic() > deadline:
            return [user_event_pb2.UserEvent.FromString(payload) for _, payload in rows]
        time.sleep(0.1)


def visitor_cookie(cookies: str) -> str:
    values = [c.split("=", 1)[1] for c in cookies.split("; ") if c.startswith(f"{COOKIE}=")]
    assert len(values) == 1, cookies
    return values[0]


def test_tracker_in_chromium_stores_the_page_view(browser_executable: str, running: Running,
                                                  shop: str, tmp_path: Path) -> None:
    started = time.time()
    first_page = f"{shop}/tents/2p.html?colour=green"
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        first, second = asyncio.run(asyncio.wait_for(browse(devtools_url, first_page),
                                                     DEADLINE * 2))
    assert first["sent"] is True and second["sent"] is True
    assert first["said"] == second["said"] == []
    visitor = visitor_cookie(first["cookie"])
    assert visitor_cookie(second["cookie"]) == visitor  # the cookie outlives the page

    viewed, next_viewed = stored(running)
    assert viewed.event_type == "detail-page-view"
    assert viewed.visitor_id == visitor
    assert viewed.user_info.user_agent == first["user_agent"]
    assert "HeadlessChrome" in first["user_agent"] or "Chrome" in first["user_agent"]
    assert viewed.user_info.ip_address == "127.0.0.1"
    assert viewed.uri == first["href"] == first_page
    assert [p.product.id for p in viewed.product_details] == ["tent-2p"]
    assert abs(viewed.event_time.seconds - started) < 120  # from the page's clock
    assert viewed.page_view_id

    assert next_viewed.visitor_id == visitor
    assert next_viewed.uri == second["href"] == f"{shop}/second.html"
    assert next_viewed.referrer_uri == first_page  # document.referrer
    assert next_viewed.page_view_id and next_viewed.page_view_id != viewed.page_view_id
    assert [p.product.id for p in next_viewed.product_details] == ["stove-1"]
    # over 16 KiB of JSON: POSTed, whole
    assert len(next_viewed.attributes["notes"].text) == 200
    assert next_viewed.user_info.user_agent == second["user_agent"]
    assert abs(next_viewed.event_time.seconds - started) < 120


def test_with_auth_the_page_key_lets_the_tracker_in(browser_executable: str,
                                                    tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"page-writer-key": {
        "projects": ["browser-test"], "role": "writer", "name": "shop-page"}}}))
    with serve(tmp_path, auth_file=str(keys)) as running:
        for key in ("", "page-writer-key"):  # without it the pixels are refused
            with shop_of(running, key) as shop, \
                    chromium(browser_executable, tmp_path / f"profile{key}") as devtools_url:
                asyncio.run(asyncio.wait_for(browse(devtools_url, f"{shop}/tents/2p.html"),
                                             DEADLINE * 2))
        viewed = stored(running)
    assert [e.uri.rpartition("/")[2] for e in viewed] == ["2p.html", "second.html"]


def test_a_parent_that_names_no_catalog_sends_nothing_and_says_why(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A data-parent without its location: every pixel was refused (a GIF all the
    same, the reason in a header the page cannot read) and track() said true."""
    wrong = "projects/browser-test/catalogs/default_catalog"
    with shop_of(running, catalog=wrong) as shop, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        first, second = asyncio.run(asyncio.wait_for(browse(devtools_url, f"{shop}/tents/2p.html"),
                                                     DEADLINE * 2))
    assert first["sent"] is False and second["sent"] is False
    assert first["said"] == [f'footfall: the parent "{wrong}" is not a catalog\'s name '
                             "(projects/PROJECT/locations/global/catalogs/default_catalog): "
                             "nothing is sent"], first
    running.store.flush()
    assert running.store.rejections_newest(None, 10) == []  # nothing was sent


async def load_pixels(devtools_url: str, page: str) -> bool:
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page(page)
        loaded = ("document.readyState === 'complete' && document.images.length === 2 && "
                  "[...document.images].every(i => i.naturalWidth === 1)")
        return bool(await until(lambda: devtools.evaluate(session, loaded), "the pixels",
                                DEADLINE))


def test_a_pixel_on_another_host_names_its_page_only_with_the_readme_s_referrer_policy(
        browser_executable: str, running: Running, shop: str, tmp_path: Path) -> None:
    """A pixel's `uri` comes from its Referer, and a browser sends another host only
    the page's origin (Chrome's default policy, strict-origin-when-cross-origin):
    `referrerpolicy="no-referrer-when-downgrade"` on the image, as the README's
    pixel has it, sends the page's whole URL."""
    page = f"{shop}/tents/pixels.html?colour=green"
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        asyncio.run(asyncio.wait_for(load_pixels(devtools_url, page), DEADLINE))
    uris = {event.visitor_id: event.uri for event in stored(running)}
    assert uris == {"plain": f"{shop}/", "whole": page}, uris


# Google's Retail snippet ("Record real-time user events", JavaScript pixel), its
# script's src pointed at the tracker: logEvent comes before projectId, as there.
GOOGLE_SNIPPET = """<!doctype html>
<html><head><meta charset="utf-8"><title>Google's snippet</title></head><body>
<script type="text/javascript">
var user_event = {{
  "eventType": "detail-page-view",
  "visitorId": "visitor-of-the-snippet",
  "experimentIds": "experiment-id",
  "productDetails": [{{"product": {{"id": "tent-2p"}}}}]
}};
var _gre = _gre || [];
_gre.push(['apiKey', '{key}']);
_gre.push(['logEvent', user_event]);
_gre.push(['projectId', 'browser-test']);
_gre.push(['locationId', 'global']);
_gre.push(['catalogId', 'default_catalog']);
(function() {{
  var gre = document.createElement('script'); gre.type = 'text/javascript'; gre.async = true;
  gre.src = 'http://127.0.0.1:{gateway}/footfall.js';
  gre.onload = function () {{
    _gre.push(['logEvent', {{"eventType": "home-page-view", "visitorId": "pushed-later"}}]);
    window.loaded = true;
  }};
  var s = document.getElementsByTagName('script')[0]; s.parentNode.insertBefore(gre, s);
}})();
</script></body></html>
"""


async def open_snippet(devtools_url: str, page: str) -> None:
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page(page)
        await until(lambda: devtools.evaluate(session, "window.loaded === true"),
                    "the tracker loaded", DEADLINE)


def test_google_s_retail_snippet_records_with_its_script_pointed_here(
        browser_executable: str, tmp_path: Path) -> None:
    """A shop that has Google's snippet changes one URL, not its pages' code: the
    tracker reads the _gre queue (the key, the catalog's names, the events)."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"page-writer-key": {
        "projects": ["browser-test"], "role": "writer", "name": "shop-page"}}}))
    with serve(tmp_path, auth_file=str(keys)) as running:
        page = GOOGLE_SNIPPET.format(key="page-writer-key", gateway=running.http_port)

        with site_of({"/p.html": page}) as base, \
                chromium(browser_executable, tmp_path / "profile") as devtools_url:
            asyncio.run(asyncio.wait_for(open_snippet(devtools_url, f"{base}/p.html"),
                                         DEADLINE))
        events = stored(running)
    assert sorted((e.event_type, e.visitor_id) for e in events) == [
        ("detail-page-view", "visitor-of-the-snippet"), ("home-page-view", "pushed-later")]
    viewed = next(e for e in events if e.event_type == "detail-page-view")
    assert list(viewed.experiment_ids) == ["experiment-id"]
    assert [p.product.id for p in viewed.product_details] == ["tent-2p"]


# A shop's order page: a purchase of 1,000 lines is about 90 KB of JSON, more than
# navigator.sendBeacon takes (64 KiB, the browser's keepalive quota).
ORDER = """<!doctype html>
<html><head><meta charset="utf-8"><title>Order</title>
<script src="http://127.0.0.1:{gateway}/footfall.js" data-parent="{catalog}"></script>
</head><body><h1>Thank you</h1>
<script>
var lines = [];
for (var i = 0; i < 1000; i++) {{
  lines.push({{product: {{id: "sku-" + i, priceInfo: {{price: 1.25, currencyCode: "EUR"}}}},
              quantity: 2}});
}}
window.tracked = footfall.track({{eventType: "purchase-complete", productDetails: lines,
  purchaseTransaction: {{id: "order-1000", revenue: 2500, currencyCode: "EUR"}}}});
</script></body></html>
"""


async def order(devtools_url: str, page: str) -> Any:
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page(page)
        await until(lambda: devtools.evaluate(session, "window.tracked !== undefined"),
                    "the order page to track", DEADLINE)
        return await devtools.evaluate(session, "window.tracked")


def test_a_purchase_larger_than_a_beacon_takes_is_posted_all_the_same(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """sendBeacon refuses a body over 64 KiB (it returns false): the event of a
    large order was lost, and track() said false with no word why."""
    page = ORDER.format(gateway=running.http_port, catalog=CATALOG)

    with site_of({"/order.html": page}) as base, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        sent = asyncio.run(asyncio.wait_for(order(devtools_url, f"{base}/order.html"),
                                            DEADLINE))
    events = stored(running, count=1)
    assert sent is True
    [bought] = events
    assert bought.event_type == "purchase-complete"
    assert len(bought.product_details) == 1000
    assert bought.product_details[999].product.price_info.price == 1.25
    assert bought.purchase_transaction.revenue == 2500


async def open_and_track(devtools_url: str, page: str, path: str) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page(page)
        return await tracked(devtools, session, path)


def test_a_page_address_longer_than_google_takes_is_cut_not_refused(
        browser_executable: str, running: Running, shop: str, tmp_path: Path) -> None:
    """Google takes at most 5,000 characters of `uri`; the tracker filled it with the
    whole address, so every event of a page with a long query (a search's filters,
    an ad's click ids) was refused."""
    page = f"{shop}/tents/2p.html?filters=" + "a" * 5100
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(open_and_track(devtools_url, page, "/tents/2p.html"),
                                            DEADLINE))
    assert seen["href"] == page
    [viewed] = stored(running, count=1)
    assert viewed.uri == page[:5000]


# A page being written, with data-debug: a valid event, one refused for a field (by
# GET, and by POST for being over 16 KiB), all sent with the page's key.
DEBUGGED = """<!doctype html>
<html><head><meta charset="utf-8"><title>Debugged</title>
<script>window.said = []; console.warn = (...words) => said.push(words.join(" "));
window.refusals = [];
addEventListener("footfall:refused", ({{detail}}) => refusals.push(
  [detail.eventType, detail.status, detail.field, detail.reason, detail.event.pageViewId]));
</script>
<script src="http://127.0.0.1:{gateway}/footfall.js" data-parent="{catalog}"
        data-api-key="{key}" data-debug></script>
</head><body>
<script>
window.tracked = Promise.all([
  footfall.track({{eventType: "home-page-view"}}),
  footfall.track({{eventType: "add-to-cart"}}),
  footfall.track({{eventType: "add-to-cart", attributes: {large}}})]);
</script></body></html>
"""


@contextlib.contextmanager
def site_of(pages: dict[str, str]) -> Iterator[str]:
    """A shop on a port of its own serving `pages` (path: HTML, filled in later
    too); yields its base URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = pages.get(self.path.split("?")[0])  # (and no favicon)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True, name="shop")
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=5)


async def debugged(devtools_url: str, page: str) -> tuple[Any, list[str]]:
    """What the page's track() Promises said, and its console's warnings."""
    sent, said, _ = await debugged_with_refusals(devtools_url, page)
    return sent, said


async def debugged_with_refusals(devtools_url: str,
                                 page: str) -> tuple[Any, list[str], list[list[str]]]:
    """What the page's track() Promises said, its console's warnings, and the
    footfall:refused events it heard ([eventType, status, field, reason, pageViewId])."""
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page(page)
        await until(lambda: devtools.evaluate(session, "window.tracked !== undefined"),
                    "the page to track", DEADLINE)
        sent = await devtools.evaluate(session, "window.tracked")
        return (sent, await devtools.evaluate(session, "window.said"),
                await devtools.evaluate(session, "window.refusals"))


def test_with_data_debug_a_refused_event_says_false_and_the_page_hears_why(
        browser_executable: str, tmp_path: Path) -> None:
    """A pixel's reason is in a header an image cannot read, and a wrong key's
    refusals are kept in no console: a shop page with a mistyped key lost every
    event, and nothing said so but the server's log. With data-debug the page's
    console says why, track() says false (it said true, the server's refusal
    notwithstanding) and window hears a footfall:refused event of the reason and
    field, by GET and by POST (the event over 16 KiB) alike."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"page-writer-key": {
        "projects": ["browser-test"], "role": "writer", "name": "shop-page"}}}))
    pages: dict[str, str] = {}
    with site_of(pages) as shop, serve(tmp_path, auth_file=str(keys)) as running:
        for name, key in (("/right.html", "page-writer-key"), ("/wrong.html", "wrong-key")):
            pages[name] = DEBUGGED.format(gateway=running.http_port, catalog=CATALOG, key=key,
                                          large=LARGE)
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            right = asyncio.run(asyncio.wait_for(
                debugged_with_refusals(devtools_url, f"{shop}/right.html"), DEADLINE))
            wrong = asyncio.run(asyncio.wait_for(
                debugged_with_refusals(devtools_url, f"{shop}/wrong.html"), DEADLINE))
        events = stored(running, count=1)
    reason = ("INVALID_ARGUMENT: user_event.product_details: at least one product is required "
              "for add-to-cart events")
    refused = f'footfall: the server refused the "add-to-cart" event: {reason}'
    sent, said, refusals = right
    assert sent == [True, False, False]
    assert said == [refused, refused]
    [page_view_id] = {one.pop() for one in refusals}
    assert page_view_id
    assert refusals == [["add-to-cart", "INVALID_ARGUMENT", "user_event.product_details",
                         reason]] * 2
    unknown = "UNAUTHENTICATED: API key not valid; pass a valid API key"
    sent, said, refusals = wrong
    assert sent == [False, False, False]
    assert sorted(said) == [  # (the three answers may come in any order)
        f'footfall: the server refused the "{kind}" event: {unknown}'
        for kind in ("add-to-cart", "add-to-cart", "home-page-view")]
    assert sorted(one[:4] for one in refusals) == [
        [kind, "UNAUTHENTICATED", "", unknown]
        for kind in ("add-to-cart", "add-to-cart", "home-page-view")]
    assert [e.event_type for e in events] == ["home-page-view"]


def test_with_data_debug_an_answer_cors_hides_is_said_too(browser_executable: str,
                                                          tmp_path: Path) -> None:
    """A server whose --cors-origins leaves the shop out records its events (the
    pixel is open) but lets the page read no answer: debug's fetch failed, and
    track() said false without a word."""
    pages: dict[str, str] = {}
    with site_of(pages) as shop, serve(tmp_path, cors_origins=()) as running:
        pages["/p.html"] = DEBUGGED.format(gateway=running.http_port, catalog=CATALOG, key="",
                                           large=LARGE)
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            sent, said = asyncio.run(asyncio.wait_for(debugged(devtools_url, f"{shop}/p.html"),
                                                      DEADLINE))
        events = stored(running, count=1)
    gone = (f"footfall: no answer this page may read from http://127.0.0.1:{running.http_port} "
            f"(it is down, or --cors-origins does not list {shop})")
    assert sent == [False, False, False]
    assert said == [gone] * 3
    assert [e.event_type for e in events] == ["home-page-view"]


def test_an_endpoint_written_with_a_trailing_slash_records(browser_executable: str,
                                                           running: Running,
                                                           tmp_path: Path) -> None:
    """data-endpoint="https://events.example.com/", as an origin is often written:
    the tracker sent //v2/..., which no route matches, and every event was refused
    NOT_FOUND while track() said true."""
    page = PAGE.format(title="Tent", gateway=running.http_port, catalog=CATALOG, sku="tent-2p",
                       key=f' data-endpoint="http://127.0.0.1:{running.http_port}/"',
                       attributes="{}")
    with site_of({"/tents/2p.html": page}) as shop, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(
            open_and_track(devtools_url, f"{shop}/tents/2p.html", "/tents/2p.html"), DEADLINE))
    assert seen["sent"] is True
    [viewed] = stored(running, count=1)
    assert [p.product.id for p in viewed.product_details] == ["tent-2p"]
    running.store.flush()
    assert running.store.rejections_newest(None, 10) == []



async def across_hosts(devtools_url: str, pages: list[str]) -> list[dict[str, Any]]:
    """Each of `pages` (URLs) in turn, in one tab, once it has tracked its event."""
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page("about:blank")
        seen = []
        for page in pages:
            await devtools.send("Page.navigate", {"url": page}, session)
            seen.append(await tracked(devtools, session, urllib.parse.urlsplit(page).path))
        return seen


def test_a_cookie_domain_keeps_one_visitor_across_the_shop_s_hosts(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A shop on www.shop.test whose checkout is on checkout.shop.test: each host had
    a cookie of its own, so a visitor became another at the checkout and no funnel
    reached purchase-complete. data-cookie-domain sets the cookie for both, and
    takes over from the cookies each host had before it was given."""
    def page(path: str, domain: str) -> str:
        return PAGE.format(title=path, gateway=running.http_port, catalog=CATALOG,
                           sku="tent-2p", key=domain, attributes="{}")

    pages: dict[str, str] = {}
    hosts = ("--host-resolver-rules=MAP *.shop.test 127.0.0.1",)
    with site_of(pages) as site, \
            chromium(browser_executable, tmp_path / "profile", hosts) as devtools_url:
        port = site.rpartition(":")[2]
        www = f"http://www.shop.test:{port}/tents/2p.html"
        checkout = f"http://checkout.shop.test:{port}/second.html"
        for domain in ("", ' data-cookie-domain="shop.test"'):
            pages.update({"/tents/2p.html": page("/tents/2p.html", domain),
                          "/second.html": page("/second.html", domain)})
            seen = asyncio.run(asyncio.wait_for(across_hosts(
                devtools_url, [www, checkout] if not domain else [www, checkout, www]),
                DEADLINE * 2))
            assert all(s["sent"] for s in seen)
    before = stored(running, count=5)[:2]
    after = stored(running, count=5)[2:]
    assert before[0].visitor_id != before[1].visitor_id  # each host's own cookie
    assert [e.uri.split(":")[1] for e in after] == [
        "//www.shop.test", "//checkout.shop.test", "//www.shop.test"]
    assert len({e.visitor_id for e in after}) == 1, [e.visitor_id for e in after]
    assert after[0].visitor_id == visitor_cookie(seen[-1]["cookie"])
