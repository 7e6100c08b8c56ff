"""The web console in Debian's headless Chromium, against a server started here.

Events are written over REST with plain HTTP (an official client cannot be
imported beside our server); the page must show each in its live feed within a
second, open one as stored and as received, show a refusal's reason on the line
of the field it names, and cancel an import from the operations page. Every page
is photographed at a desktop and a phone width: the test prints the folder, and
copies go to screenshots/ at the top of the worktree.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import Running
from server.console import queries

from .cdp import DevTools, chromium
from .conftest import serve
from .pages import (
    CALLER_UNKNOWN,
    accessible,
    focus_and_press,
    go,
    no_problems,
    open_console,
    photograph,
    shown,
    text_of,
    until,
)

PROJECT = "console-test"
CATALOG = f"projects/{PROJECT}/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/default_branch"
TENANT = f"projects/{PROJECT}/tenants/jobs-site"
DEADLINE = 30.0
LIVE_WITHIN = 1.0  # seconds from a write's answer to its line in the feed
BIG_IMPORT_EVENTS = 200_000  # far more than the test needs to find it running
CONFIRM_SECONDS = 5  # operations.js CONFIRM_MS: a Cancel pressed once waits this long
OLDER_OPERATIONS = 120  # more than a page of ListOperations (100), and than the 50 shown
READER_KEY = "reader-key-for-the-console-test"

pytestmark = pytest.mark.timeout(240)


def rest(port: int, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One REST call: its HTTP status and JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     method=method, headers={
                                         "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


def write(port: int, **event: Any) -> dict[str, Any]:
    status, answer = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                          {"eventTime": "2026-01-01T00:00:00Z", **event})
    assert status == 200, answer
    return dict(answer)


TRIES = 20  # of one bad request


async def see_events_and_refusals(devtools_url: str, port: int, folder: Path) -> None:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/")
        # `/` leads to the console, which picks the one catalog that holds events.
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted a.event') !== null"), "the first event")
        assert await devtools.evaluate(session, "location.pathname") == "/console/"

        # Live: each write shows within a second of its answer.
        for n in range(5):
            write(port, eventType="home-page-view", visitorId=f"live-{n}")
            written = time.monotonic()
            await until(lambda n=n: devtools.evaluate(
                session, f"document.querySelector('#accepted').innerText.includes('live-{n}')"),
                f"live-{n} in the feed", within=LIVE_WITHIN)
            print(f"live-{n} shown {time.monotonic() - written:.3f}s after its answer")

        # A refused event: its reason beside the field it names.
        status, refused = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                               {"eventType": "add-to-cart", "visitorId": "v" * 200})
        assert status == 400, refused
        written = time.monotonic()
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#refused details') !== null"),
            "the refusal in the feed", within=LIVE_WITHIN)
        print(f"refusal shown {time.monotonic() - written:.3f}s after its answer")
        await focus_and_press(devtools, session, "#refused details summary")
        assert await devtools.evaluate(session, "document.querySelector('#refused details').open")
        marked = await devtools.evaluate(session, "[...document.querySelectorAll("
                                         "'#refused pre.json .line.bad')].map(e => e.innerText)")
        # Beside the field it names; a missing field, beside its parent.
        too_long, = [line for line in marked if line.startswith('    "visitorId": "vvvv')]
        assert "← user_event.visitor_id: " in too_long and "128" in too_long, marked
        missing, = [line for line in marked if line.startswith('  "userEvent": {')]
        assert "← user_event.product_details: " in missing, marked
        # One bad request sent again and again: a line that counts it, not a line a try.
        for _ in range(TRIES):
            status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                             {"eventType": "home-page-view", "sessionId": "again"})
            assert status == 400
        again = ("[...document.querySelectorAll('#refused details')]"
                 ".filter(d => d.textContent.includes('\"again\"'))")
        await until(lambda: devtools.evaluate(
            session, f"{again}.reduce((n, d) => n + Number((d.querySelector('.tag.repeats')"
                     f"?.innerText || '×1').slice(1)), 0) === {TRIES}"),
            "every try counted in the feed", within=LIVE_WITHIN)
        lines = await devtools.evaluate(session, f"{again}.length")
        assert 1 <= lines < TRIES, lines
        # the column counts tries: the first refusal and these
        assert await text_of(devtools, session, "#refused-h .count") == str(1 + TRIES)
        # opened, a line that counts says how often and when last
        counted = await devtools.evaluate(
            session, "[...document.querySelectorAll('#refused details')].filter(d => "
                     "d.querySelector('.tag.repeats')).map(d => d.textContent).join('|')")
        assert " times alike, the last at " in counted, counted
        await photograph(devtools, session, folder, "feed")
        await devtools.color_scheme(session, "dark")
        await photograph(devtools, session, folder, "feed-dark")
        await devtools.color_scheme(session, "light")

        # A refusal of another catalog of the project shows too, until the column is
        # narrowed (with the keyboard) to the requests that named this catalog.
        other = CATALOG.replace("default_catalog", "other_catalog")
        status, _ = rest(port, "POST", f"/v2/{other}/userEvents:write",
                         {"eventType": "home-page-view"})
        assert status == 400
        has_other = f"document.querySelector('#refused').textContent.includes({other!r})"
        await until(lambda: devtools.evaluate(session, has_other),
                    "the other catalog's refusal", within=LIVE_WITHIN)
        assert await text_of(devtools, session, "#refused-h .count") == str(2 + TRIES)
        for narrowed, shown in ((True, 1 + TRIES), (False, 2 + TRIES)):
            assert await devtools.evaluate(
                session, "(e => { e.focus(); return document.activeElement === e })"
                         "(document.querySelector('#refused-of-catalog'))")
            await devtools.press(session, " ")
            await until(lambda narrowed=narrowed, shown=shown: devtools.evaluate(
                session, f"document.querySelector('#refused-of-catalog').checked === "
                         f"{str(narrowed).lower()} && ({has_other}) === {str(not narrowed).lower()}"
                         f" && document.querySelector('#refused-h .count').innerText === "
                         f"'{shown}'"), f"the column narrowed: {narrowed}")
            if narrowed:
                about = await text_of(devtools, session, "#refused-h + label + p")
                assert about.startswith(f"Refused requests that named {CATALOG}"), about
                await photograph(devtools, session, folder, "feed-of-catalog")

        # Open an event with the keyboard: as stored (joined with the catalog) and as received.
        joined = await devtools.evaluate(session, "[...document.querySelectorAll("
                                         "'#accepted a.event')].find(a => a.innerText"
                                         ".includes('shopper')).dataset.id")
        await focus_and_press(devtools, session, f'#accepted a.event[data-id="{joined}"]')
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('#received-h')"),
                    "the event's page")
        # (the link names its catalog: it opens in another tab, or after a reload, too)
        assert await devtools.evaluate(session, "decodeURIComponent(location.hash)") == \
            f"#event/{joined}?parent={CATALOG}"
        stored = await text_of(devtools, session, "section[aria-labelledby=stored-h] pre")
        received = await text_of(devtools, session, "section[aria-labelledby=received-h]")
        assert '"title": "Two-person tent"' in stored, stored
        assert "Two-person tent" not in received and '"id": "tent-2p"' in received, received
        await photograph(devtools, session, folder, "event")
        # A link to it works in a fresh page too (found by reading the catalog).
        await devtools.evaluate(session, "window.old = true; location.reload()")
        await until(lambda: devtools.evaluate(
            session, "!window.old && document.querySelector('h2')?.innerText === "
                     f"'Event {joined}: detail-page-view'"), "the event's page, reloaded")
        assert "Two-person tent" in await text_of(devtools, session, "main")

        # Search with a filter.
        await go(devtools, session, "events?filter=visitorId%20%3D%20%22live-3%22",
                 ".results tbody tr")
        rows = await text_of(devtools, session, ".results tbody")
        assert "live-3" in rows and "live-2" not in rows, rows
        await photograph(devtools, session, folder, "events")
        await go(devtools, session, "events?filter=colour%20%3D%20%22green%22", ".results .error")
        error = await text_of(devtools, session, ".results .error")
        assert error.startswith("INVALID_ARGUMENT") and "filter" in error, error

        await go(devtools, session, "products", "tbody tr")
        products = await text_of(devtools, session, "tbody")
        assert "Two-person tent" in products and "Tents" in products, products
        await photograph(devtools, session, folder, "products")

        await go(devtools, session, "catalogs", "[aria-label=Tenants] tbody tr")
        sets = await text_of(devtools, session, "main")
        assert CATALOG in sets and TENANT in sets, sets
        await photograph(devtools, session, folder, "catalogs")

        await go(devtools, session, f"talent?tenant={TENANT}", "tbody tr")
        assert "event-1" in await text_of(devtools, session, "tbody")
        # a chooser of tenants alone, labelled Tenant, said "jobs-site (tenant)"; among
        # catalogs (Insights) a tenant is still said so
        chosen = "[...document.querySelectorAll('#{} option')].map(o => o.innerText)"
        assert await devtools.evaluate(session, chosen.format("tenant")) == ["jobs-site"]
        await photograph(devtools, session, folder, "talent")
        await go(devtools, session, "insights", "#data-set option")
        choices = await devtools.evaluate(session, chosen.format("data-set"))
        assert "jobs-site (tenant)" in choices and "default_catalog" in choices, choices
        await go(devtools, session, f"talent?tenant={TENANT}", "tbody tr")
        # An event opened by its id shows whole (its notes were nowhere on the page);
        # Escape closes it and gives the focus back.
        await focus_and_press(devtools, session, "tbody button.link")
        await until(lambda: devtools.evaluate(
            session, "!document.querySelector('section.opened').hidden"), "the client event")
        opened = await text_of(devtools, session, "section.opened")
        assert "Client event event-1" in opened and '"eventNotes": "from the search page"' \
            in opened and f'"{TENANT}/jobs/job-1"' in opened, opened
        assert await devtools.evaluate(
            session, "document.activeElement === document.querySelector('section.opened')")
        await photograph(devtools, session, folder, "talent-event")
        await devtools.press(session, "Escape")
        assert await devtools.evaluate(
            session, "document.querySelector('section.opened').hidden && "
                     "document.activeElement === document.querySelector('tbody button.link')")
        await no_problems(devtools, session)


def test_feed_shows_writes_live_opens_them_and_explains_refusals(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    status, _ = rest(port, "POST", f"/v2/{BRANCH}/products?productId=tent-2p", {
        "title": "Two-person tent", "categories": ["Tents"],
        "priceInfo": {"price": 199, "currencyCode": "EUR"}})
    assert status == 200
    write(port, eventType="detail-page-view", visitorId="shopper",
          productDetails=[{"product": {"id": "tent-2p"}, "quantity": 1}])
    status, answer = rest(port, "POST", f"/v4/{TENANT}/clientEvents", {
        "eventId": "event-1", "createTime": "2026-01-01T00:00:00Z",
        "eventNotes": "from the search page",
        "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/job-1"]}})
    assert status == 200, answer
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        asyncio.run(asyncio.wait_for(see_events_and_refusals(devtools_url, port, shots),
                                     DEADLINE * 4))


async def cancel_from_the_page(devtools_url: str, port: int, folder: Path) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#operations")
        running = "article.operation[data-state=running] button.cancel"
        await until(lambda: devtools.evaluate(session, f"!!document.querySelector({running!r})"),
                    "the import, running")
        name = await devtools.evaluate(
            session, f"document.querySelector({running!r}).closest('article').dataset.name")
        # a purge's metadata has no times: its card says nothing of them; the import's
        # says when it started
        started = await devtools.evaluate(session, "[...document.querySelectorAll("
                                          "'article.operation')].map(a => a.innerText).filter("
                                          "t => t.includes('Started ')).join('|')")
        assert re.search(r"Started \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, updated \d{4}-",
                         started) and "|" not in started, started
        await photograph(devtools, session, folder, "operations-running")
        # One press asks for another (one Enter stopped an import for good); pressed
        # again, it cancels.
        armed = time.monotonic()
        told = await accessible(devtools, session, running)
        await focus_and_press(devtools, session, running)
        assert await text_of(devtools, session, running) == "Press again to cancel"
        # A screen reader is told which operation each "Cancel" is of, and hears what
        # the first press asks: the focused button's new text is not read out.
        short = name.split("/operations/").pop()
        assert told == {"role": "button", "name": "Cancel", "description": short}, told
        assert await text_of(devtools, session, "main [role=status]") == (
            f"Press Cancel again within {CONFIRM_SECONDS} seconds to cancel {short}."), name
        await asyncio.sleep(1.5)  # (a refresh of the card meanwhile keeps it asking)
        assert await devtools.evaluate(
            session, f"document.querySelector({running!r}) === document.activeElement")
        assert await devtools.evaluate(session, f"!!document.querySelector({running!r})")
        await photograph(devtools, session, folder, "operations-confirm")
        if time.monotonic() - armed > CONFIRM_SECONDS - 2:
            # The photograph took seconds (a loaded machine): the press asked for comes
            # too close to CONFIRM_MS, or after it, and only asks again. Let it lapse and
            # arm it afresh (the import runs slowly too on such a machine).
            await until(lambda: devtools.evaluate(
                session, f"document.querySelector({running!r})?.innerText === 'Cancel'"),
                "the cancel to ask no more", CONFIRM_SECONDS * 3)
            await devtools.press(session, "Enter")
            assert await text_of(devtools, session, running) == "Press again to cancel"
        await devtools.press(session, "Enter")
        cancelled = f'article.operation[data-name="{name}"][data-state=cancelled]'

        async def cancelled_or_pressed_again() -> bool:
            # A press that came once the first had lapsed (a stall of seconds on a
            # loaded machine, between the check above and the key reaching the page)
            # only asks again: the next one cancels (one CI run waited 30 s for it).
            if await devtools.evaluate(session, f"!!document.querySelector({cancelled!r})"):
                return True
            if await devtools.evaluate(session, f"document.querySelector({running!r})"
                                                f"?.innerText") == "Press again to cancel":
                await devtools.press(session, "Enter")
            return False

        await until(cancelled_or_pressed_again, "the import, cancelled")
        # the focus stays with the operation (it went to the page's body with the button)
        assert await devtools.evaluate(
            session, "document.activeElement.closest('article')?.dataset.name") == name
        card = await text_of(devtools, session, f'article.operation[data-name="{name}"]')
        assert "valid: " in card and "successCount" not in card, card  # counts in words
        assert await devtools.evaluate(
            session, f"document.querySelector('article.operation[data-name=\"{name}\"] "
                     f".warning')?.innerText.length > 0"), card  # a cancel is no failure
        await photograph(devtools, session, folder, "operations-cancelled")
        await no_problems(devtools, session)
        # Opened afresh, the page still shows it, ended, on top: past the first page of
        # ListOperations (oldest first), an ended operation was never shown again.
        await devtools.evaluate(session, "window.notReloaded = true; location.reload()")
        await until(lambda: devtools.evaluate(
            session, f"!window.notReloaded && !!document.querySelector({cancelled!r})"),
            "the ended import, after a reload")
        assert await devtools.evaluate(
            session, "document.querySelector('article.operation').dataset.name") == name
        # Each refresh goes on from the last page read: the first page is not read again
        # (every page of the catalog's operations was read every second).
        await asyncio.sleep(1.5)
        firsts = ("performance.getEntriesByType('resource').filter(e => "
                  "e.name.includes('/operations?') && !e.name.includes('pageToken') && "
                  "!e.name.includes('filter')).length")
        before = await devtools.evaluate(session, firsts)
        await asyncio.sleep(3)  # three refreshes
        assert await devtools.evaluate(session, firsts) == before
        return str(name)


def test_operations_page_cancels_an_import(browser_executable: str, running: Running,
                                           shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    write(port, eventType="home-page-view", visitorId="first")  # the catalog exists
    # More operations than ListOperations' first page (it lists the oldest first): the
    # import came after them, and the page never showed it.
    for _ in range(OLDER_OPERATIONS):
        status, op = rest(port, "POST", f"/v2/{CATALOG}/userEvents:purge",
                          {"filter": 'visitorId = "first"', "force": False})
        assert status == 200, op
    deadline = time.monotonic() + DEADLINE
    while rest(port, "GET", f"/v2/{CATALOG}/operations?filter=done=false")[1]:
        assert time.monotonic() < deadline, "the counting purges did not end"
        time.sleep(0.05)
    bucket = Path(running.settings.gcs_root) / "history"
    bucket.mkdir(parents=True)
    (bucket / "events.json").write_text("".join(
        json.dumps({"eventType": "home-page-view", "visitorId": f"old-{n}",
                    "eventTime": "2025-06-01T00:00:00Z"}) + "\n"
        for n in range(BIG_IMPORT_EVENTS)))
    status, op = rest(port, "POST", f"/v2/{CATALOG}/userEvents:import", {
        "inputConfig": {"gcsSource": {"inputUris": ["gs://history/events.json"]}}})
    assert status == 200, op
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        name = asyncio.run(asyncio.wait_for(cancel_from_the_page(devtools_url, port, shots),
                                            DEADLINE * 2))
    assert name == op["name"]
    status, ended = rest(port, "GET", f"/v2/{name}")
    assert ended["done"] and ended["error"]["code"] == 1, ended  # CANCELLED
    assert int(ended["metadata"].get("successCount", 0)) < BIG_IMPORT_EVENTS


async def ask_for_the_key(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(session, "document.querySelector('dialog')?.open"),
                    "the key dialog")
        await photograph(devtools, session, folder, "key")
        assert await devtools.evaluate(session, "document.activeElement.id") == "key-input"
        await devtools.type_text(session, READER_KEY)
        await devtools.press(session, "Enter")
        # The key reads one project: the page reads it, with no project to name (it asked
        # which, though the server knew).
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#refused')?.innerText.includes('INVALID_ARGUMENT')"),
            "the refusal, read with the key")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted')?.innerText.includes('keyed')"),
            "the event, read with the key")
        await no_problems(devtools, session)
        # The products page reads with the same key (it was refused: "needs an admin key").
        await devtools.evaluate(session, "location.hash = '#products'")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main')?.innerText.includes('Keyed socks')"),
            "the product, read with the key")
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "products-reader")
        return {
            "socks": await devtools.evaluate(session, "[...document.querySelectorAll('main tr')]"
                                                      ".find(r => r.innerText.includes('Keyed "
                                                      "socks'))?.innerText"),
            "stored": await devtools.evaluate(session, "sessionStorage.getItem('footfall.apiKey')"),
            "left_in_dialog": await devtools.evaluate(
                session, "[document.getElementById('key-dialog').open, "
                         "document.getElementById('key-input').value]"),
            "urls": await devtools.evaluate(
                session, "performance.getEntriesByType('resource').map(e => e.name)"),
            "page": await devtools.evaluate(session, "location.href"),
        }


@contextlib.contextmanager
def keyed_shop(tmp_path: Path) -> Iterator[Running]:
    """A server that checks keys (READER_KEY, "writer-key" for writes, "admin-key" for
    products) holding one event the writer key wrote, of the visitor "keyed", and one
    product, "Keyed socks"."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {
        READER_KEY: {"projects": [PROJECT], "role": "reader", "name": "console"},
        "writer-key": {"projects": [PROJECT], "role": "writer", "name": "shop"},
        "admin-key": {"projects": [PROJECT], "role": "admin", "name": "ops"}}}))
    with serve(tmp_path, auth_file=str(keys)) as running:
        status, _ = rest(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                         {"eventType": "home-page-view", "visitorId": "keyed"},
                         {"x-goog-api-key": "writer-key"})
        assert status == 200
        status, _ = rest(running.http_port, "POST",
                         f"/v2/{CATALOG}/branches/default_branch/products?productId=socks",
                         {"title": "Keyed socks", "categories": ["Socks"]},
                         {"x-goog-api-key": "admin-key"})
        assert status == 200
        yield running


def test_with_auth_the_page_asks_for_a_key_and_its_project_once_and_sends_the_key_as_a_header(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    with keyed_shop(tmp_path) as running:
        port = running.http_port
        status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                         {"eventType": "add-to-cart", "visitorId": "keyed"},
                         {"x-goog-api-key": "writer-key"})
        assert status == 400
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            seen = asyncio.run(asyncio.wait_for(ask_for_the_key(devtools_url, port, shots),
                                                DEADLINE * 2))
    assert seen["stored"] == READER_KEY
    assert seen["left_in_dialog"] == [False, ""], seen["left_in_dialog"]  # (once taken)
    # an availability left unset is what purges and exports count it as (the cell was empty)
    assert "unset (IN_STOCK)" in seen["socks"], seen["socks"]
    assert seen["urls"] and not any(READER_KEY in url for url in [*seen["urls"], seen["page"]])


async def read_why_import_lines_failed(devtools_url: str, port: int, shots: Path) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#operations")
        summary = "article.operation details.samples:not([hidden]) > summary"
        await until(lambda: devtools.evaluate(session, f"!!document.querySelector({summary!r})"),
                    "the failures of the import")
        await focus_and_press(devtools, session, summary)
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('details.samples')?.open"), "the failures open")
        await no_problems(devtools, session)
        await photograph(devtools, session, shots, "operations-failures")
        return await text_of(devtools, session, "article.operation")


def test_operations_say_why_lines_of_an_import_failed(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # The card said "failure: 2" and nothing more: the reasons were in the operation's
    # error samples, which the page never showed.
    source = Path(running.settings.gcs_root) / "shop" / "events.json"
    source.parent.mkdir(parents=True)
    source.write_text('{"eventType": "home-page-view", "visitorId": "v", '
                      '"eventTime": "2026-01-01T00:00:00Z"}\n'
                      '{"eventType": "add-to-cart", "visitorId": "v", '
                      '"eventTime": "2026-01-01T00:00:00Z"}\n'
                      'not json\n')
    status, op = rest(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:import", {
        "inputConfig": {"gcsSource": {"inputUris": ["gs://shop/events.json"]}},
        "errorsConfig": {"gcsPrefix": "gs://shop/errors/"}})
    assert status == 200, op
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        said = asyncio.run(asyncio.wait_for(
            read_why_import_lines_failed(devtools_url, running.http_port, shots), DEADLINE * 2))
    assert "Why lines failed" in said, said
    assert ("gs://shop/events.json line 2: user_event.product_details: at least one product is "
            "required for add-to-cart events") in said
    assert "gs://shop/events.json line 3: invalid JSON" in said
    assert f"Every failure is also in gs://shop/errors/{op['name'].split('/')[-1]}-errors.json." \
        in said


async def read_where_an_export_wrote(devtools_url: str, port: int, shots: Path) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await shown(devtools, port, "operations",
                              "article.operation .output:not([hidden]) li",
                              "where the export wrote", shots, "operations-export")
        return await text_of(devtools, session, "article.operation .output")


def test_an_export_says_where_it_wrote(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """Its card said "done" and its times: the files it wrote were in its response
    only, which the page did not show."""
    write(running.http_port, eventType="home-page-view", visitorId="exported")
    status, op = rest(running.http_port, "POST", f"/v2beta/{CATALOG}/userEvents:export", {
        "outputConfig": {"gcsDestination": {"outputUriPrefix": "gs://shop/export/"}}})
    assert status == 200, op
    deadline = time.monotonic() + DEADLINE
    while not (done := rest(running.http_port, "GET", f"/v2beta/{op['name']}")[1]).get("done"):
        assert time.monotonic() < deadline, done
        time.sleep(0.05)
    uris = [r["outputUri"] for r in done["response"]["outputResult"]["gcsResult"]]
    assert uris and all(u.startswith("gs://shop/export/") for u in uris), done
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        said = asyncio.run(asyncio.wait_for(
            read_where_an_export_wrote(devtools_url, running.http_port, shots), DEADLINE * 2))
    assert [line for line in said.split("\n") if line] == ["Written to" if len(uris) == 1 else
                                f"Written to {len(uris)} places", *uris], said


async def enter_reader_key(devtools: DevTools, session: str) -> None:
    """In the key dialog open, READER_KEY (of PROJECT alone: no project is asked for);
    once keyed_shop's event shows in the feed."""
    await devtools.type_text(session, READER_KEY)
    await devtools.press(session, "Enter")
    await until(lambda: devtools.evaluate(
        session, "document.querySelector('#accepted')?.innerText.includes('keyed')"),
        "the event, read with the reader key")


async def change_a_key_that_reads_nothing(devtools_url: str, port: int, folder: Path,
                                          script: str) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/",
                                     script=script)
        dialog_open = "document.querySelector('dialog')?.open"
        await until(lambda: devtools.evaluate(session, dialog_open), "the key dialog")
        # The first time the server's words only repeat the dialog's.
        assert await text_of(devtools, session, "#key-why") == ""
        await devtools.type_text(session, "writer-key")
        await devtools.press(session, "Enter")
        # Said at once: it was asked for a project first, and told of its role only once
        # it had named one.
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main h2')?.textContent.startsWith('This key')"),
            "the writer key told it reads nothing")
        said = await text_of(devtools, session, "main")
        # (the header said "Catalog: not read yet" beside the refusal: nothing is read)
        said += "\nheader: " + await text_of(devtools, session, "header .context")
        # the focus is on the way out (it fell to the page's body: the form is hidden)
        assert await devtools.evaluate(session, "document.activeElement.id") == "key-button"
        await photograph(devtools, session, folder,
                         "key-reads-nothing" + ("-caller-unknown" if script else ""))
        # A way out other than closing the tab: the key can be changed.
        await focus_and_press(devtools, session, "#key-button:not([hidden])")
        await until(lambda: devtools.evaluate(session, dialog_open), "the key dialog again")
        if script:  # (the server cannot say the reader key's one project: it is named)
            await devtools.type_text(session, READER_KEY)
            await devtools.press(session, "Enter")
            await until(lambda: devtools.evaluate(
                session, "document.activeElement?.id === 'project'"), "the project's form")
            await devtools.type_text(session, PROJECT)
            await devtools.press(session, "Enter")
            await until(lambda: devtools.evaluate(
                session, "document.querySelector('#accepted')?.innerText.includes('keyed')"),
                "the event, read with the reader key")
        else:
            await enter_reader_key(devtools, session)
        await no_problems(devtools, session)
        return said


@pytest.mark.parametrize("caller", ["said", "unknown"])
def test_a_key_that_may_not_read_can_be_changed_from_the_project_page(
        caller: str, browser_executable: str, shots: Path, tmp_path: Path) -> None:
    # A writer key was asked for a project, then again and again: "Change key" stayed
    # hidden on that page, and only closing the tab forgot the key. (The server says
    # what the key grants, a writer key's too; one that cannot say, as before
    # GetCaller, refuses the catalogs' list for the key's role.)
    with keyed_shop(tmp_path) as running:
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            said = asyncio.run(asyncio.wait_for(
                change_a_key_that_reads_nothing(devtools_url, running.http_port, shots,
                                                CALLER_UNKNOWN if caller == "unknown" else ""),
                DEADLINE * 2))
    if caller == "said":
        assert said.startswith(f"This key writes only\n\nIt may send events to project "
                               f"{PROJECT}, not read them. To see events, use a reader or "
                               "admin key (Change key, above)."), said
    else:  # (the refusal's reason says it is the key's role, not the project named)
        assert "This key's role may not read any project: use a reader or admin key (Change " \
               "key, above)." in said, said
    assert said.endswith("\nheader: Change key"), said


async def see_totals_of_year_1_and_today(devtools_url: str, port: int, shots: Path) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await shown(devtools, port, f"insights?parent={CATALOG}&granularity=HOUR",
                              "#visitors-chart svg", "the hourly charts", shots,
                              "insights-sparse")
        # the hours of year 1 and of 2026 say their years (the labels read "01-01 00:00")
        labels = await devtools.evaluate(session, "[...document.querySelectorAll("
                                                  "'#visitors-chart text.axis')].map(t => "
                                                  "t.textContent).join('|')")
        assert "0001-01-01 00:00" in labels and "2026-01-01 00:00" in labels, labels
        return await text_of(devtools, session, "#sparse-time")


def test_insights_draw_the_hours_that_hold_events_when_they_span_millions(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # A writer may store an event of year 1: the page filled every hour from it to
    # today (17 million) and threw "Map maximum size exceeded" after a minute.
    for when in ("0001-01-01T00:00:00Z", "2026-01-01T00:00:00Z"):
        write(running.http_port, eventType="home-page-view", visitorId="v", eventTime=when)
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        said = asyncio.run(asyncio.wait_for(
            see_totals_of_year_1_and_today(devtools_url, running.http_port, shots),
            DEADLINE * 2))
    assert said.startswith("Only the hours that hold events are drawn"), said


async def see_an_empty_table_on_a_phone(devtools_url: str, port: int, shots: Path) -> float:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#insights?"
                                               f"parent={CATALOG}")
        empty = "document.querySelector('.stats td[colspan]')"
        await until(lambda: devtools.evaluate(session, f"!!{empty}"), "the empty product table")
        await devtools.viewport(session, 390, 844, True)
        await asyncio.sleep(0.3)  # one layout
        shift = await devtools.evaluate(  # of the text, not of the cell's box
            session, f"(td => {{ const text = document.createRange(); "
                     f"text.selectNodeContents(td); return text.getBoundingClientRect().left - "
                     f"td.closest('table').getBoundingClientRect().left }})({empty})")
        await no_problems(devtools, session)
        await photograph(devtools, session, shots, "insights-empty-table")
        return float(shift)


def test_an_empty_table_says_so_from_its_left_edge_on_a_phone(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # On a phone each cell is a grid of its label and its value: the one cell of
    # "Nothing in this time range." has no label, and its text stood in the value
    # column, pushed 8rem to the right.
    write(running.http_port, eventType="home-page-view", visitorId="v")  # no product
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        shift = asyncio.run(asyncio.wait_for(
            see_an_empty_table_on_a_phone(devtools_url, running.http_port, shots), DEADLINE * 2))
    assert shift < 1, shift


async def open_a_link_to_another_catalog(devtools_url: str, port: int, other: str,
                                         shots: Path) -> dict[str, str]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#insights?"
                                               f"parent={other}&granularity=HOUR")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('.headline')"),
                    "the totals")
        seen = {"page": await devtools.evaluate(session, "document.getElementById('data-set')"
                                                         ".value"),
                "header": await devtools.evaluate(session, "document.getElementById('catalog')"
                                                           ".value"),
                "headline": await text_of(devtools, session, ".headline")}
        await photograph(devtools, session, shots, "insights-linked-catalog")
        # Choosing another catalog in the header: the page and its URL follow it.
        await devtools.evaluate(session, f"(s => {{ s.value = {CATALOG!r}; "
                                         f"s.dispatchEvent(new Event('change')); }})"
                                         f"(document.getElementById('catalog'))")
        await until(lambda: devtools.evaluate(
            session, f"document.getElementById('data-set')?.value === {CATALOG!r}"),
            "the page following the header")
        seen["hash"] = await devtools.evaluate(session, "decodeURIComponent(location.hash)")
        await no_problems(devtools, session)
        return seen


def test_a_link_to_a_catalogs_insights_opens_that_catalog(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # A fresh tab showed the header's first catalog (and rewrote the link's parent to it).
    other = CATALOG.replace("default_catalog", "zz_other")
    write(running.http_port, eventType="home-page-view", visitorId="v")
    for visitor in ("a", "b"):
        status, _ = rest(running.http_port, "POST", f"/v2/{other}/userEvents:write",
                         {"eventType": "home-page-view", "visitorId": visitor})
        assert status == 200
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(
            open_a_link_to_another_catalog(devtools_url, running.http_port, other, shots),
            DEADLINE * 2))
    assert (seen["page"], seen["header"]) == (other, other), seen
    assert seen["headline"].startswith("2 distinct visitors"), seen
    assert f"parent={CATALOG}" in seen["hash"] and "granularity=HOUR" in seen["hash"], seen


async def open_the_feed_over_history(devtools_url: str, port: int, shots: Path) -> list[str]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        rows = "[...document.querySelectorAll('#accepted a.event')].map(a => a.innerText)"
        await until(lambda: devtools.evaluate(session, f"{rows}.length >= 100"), "the first page")
        await asyncio.sleep(2)  # what a watch would send again comes within a poll
        shown = await devtools.evaluate(session, rows)
        write(port, eventType="home-page-view", visitorId="after-the-page",
              eventTime="2026-12-01T00:00:00Z")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted').innerText.includes('after-the-page')"),
            "a new event", within=LIVE_WITHIN)
        await no_problems(devtools, session)
        await photograph(devtools, session, shots, "feed-over-history")
        return [str(row) for row in shown]


def test_the_live_feed_shows_history_imported_once_not_again_as_new(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # The page (newest by event time) held the lowest ids of an import whose times go
    # back line by line; the watch began after the page's highest id and sent the
    # other 50 as if they had just arrived (on a store of 400k, tens of thousands).
    status, op = rest(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:import", {
        "inputConfig": {"userEventInlineSource": {"userEvents": [
            {"eventType": "home-page-view", "visitorId": f"hist-{i}",
             "eventTime": f"2025-01-01T{23 - i // 60:02d}:{59 - i % 60:02d}:00Z"}
            for i in range(150)]}}})
    assert status == 200, op
    status, done = rest(running.http_port, "GET", f"/v2/{op['name']}")
    while not done.get("done"):
        time.sleep(0.05)
        status, done = rest(running.http_port, "GET", f"/v2/{op['name']}")
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        shown = asyncio.run(asyncio.wait_for(
            open_the_feed_over_history(devtools_url, running.http_port, shots), DEADLINE * 2))
    # (a row's lines: its time, type, visitor, transport)
    visitors = [next((line for line in row.split("\n") if line.startswith("hist-")), row)
                for row in shown]
    assert len(visitors) == 100 and len(set(visitors)) == 100, visitors
    # the newest 100 by time, newest on top: hist-0 to hist-99, none of the 50 older ones
    assert visitors == [f"hist-{i}" for i in range(100)], visitors


async def open_event_links(devtools_url: str, port: int, links: list[str],
                           shots: Path) -> list[str]:
    """The text of the page each link (a hash) opens, in a fresh tab each."""
    said = []
    async with DevTools.connect(devtools_url) as devtools:
        for n, link in enumerate(links):
            session = await open_console(devtools, f"http://127.0.0.1:{port}/console/{link}")
            await until(lambda session=session: devtools.evaluate(
                session, "!!document.querySelector('#received-h, main p.error')"),
                f"the page of {link}")
            await no_problems(devtools, session)
            await photograph(devtools, session, shots, f"event-link-{n}")
            said.append(await text_of(devtools, session, "main"))
    return said


def test_an_event_link_opens_its_event_in_a_fresh_tab(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # The page looked for the event among the newest 5,000 by time of the header's
    # catalog (the first one): a link of another catalog, or of an older event, said
    # "No event ... among the newest 5000".
    other = CATALOG.replace("default_catalog", "a_first_catalog")
    write(running.http_port, eventType="home-page-view", visitorId="in-the-default")
    status, written = rest(running.http_port, "POST", f"/v2/{other}/userEvents:write",
                           {"eventType": "search", "visitorId": "linked", "searchQuery": "tent"})
    assert status == 200, written
    write(running.http_port, eventType="home-page-view", visitorId="after-it")
    status, page = rest(running.http_port, "GET", f"/console/v1/{other}/userEvents")
    [stored] = page["userEvents"]
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        said = asyncio.run(asyncio.wait_for(open_event_links(
            devtools_url, running.http_port,
            [f"#event/{stored['id']}?parent={other}", f"#event/{stored['id']}?parent={CATALOG}",
             f"#event/99999?parent={other}", f"#event/0?parent={other}"], shots),
            DEADLINE * 2))
    assert f"Event {stored['id']}: search" in said[0] and '"visitorId": "linked"' in said[0], \
        said[0]
    assert f"No event {stored['id']} in {CATALOG}." in said[1], said[1]
    assert f"No event 99999 in {other}." in said[2], said[2]
    assert f"No event 0 in {other}." in said[3], said[3]  # (not a watch after -1, refused)


async def search_a_named_catalog(devtools_url: str, port: int, catalog: str,
                                 shots: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await shown(devtools, port, f"events?parent={catalog}", ".results tbody tr",
                              "the events", shots, "events-of-a-named-catalog")
        return {"rows": await text_of(devtools, session, ".results tbody"),
                "chosen": await devtools.evaluate(session, "document.querySelector("
                                                           "'#catalog').value")}


def test_an_events_link_searches_the_catalog_it_names(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # #events?parent=... searched the header's first catalog, whatever it named.
    named = CATALOG.replace("default_catalog", "z_last_catalog")
    write(running.http_port, eventType="home-page-view", visitorId="in-the-default")
    status, written = rest(running.http_port, "POST", f"/v2/{named}/userEvents:write",
                           {"eventType": "home-page-view", "visitorId": "in-the-named"})
    assert status == 200, written
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(search_a_named_catalog(
            devtools_url, running.http_port, named, shots), DEADLINE * 2))
    assert seen["chosen"] == named, seen
    assert "in-the-named" in seen["rows"] and "in-the-default" not in seen["rows"], seen


async def read_type_tags(devtools_url: str, port: int, shots: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        feed = await shown(devtools, port, "feed", "a.event .tag.warn", "the slip's tag",
                           shots, "feed-unknown-type")
        links = await devtools.evaluate(feed, "[...document.querySelectorAll('a.event')]"
                                              ".map(a => a.innerText)")
        search = await shown(devtools, port, f"events?parent={CATALOG}", ".results tbody tr",
                             "the events", shots, "events-unknown-type")
        rows = await devtools.evaluate(search, "[...document.querySelectorAll("
                                               "'.results tbody tr')].map(r => r.innerText)")
        return {"links": links, "rows": rows}


def test_an_event_type_google_does_not_know_is_tagged(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # "purchase" for purchase-complete was stored (as it is without
    # --strict-event-types) and counted by no funnel step; nothing on the page said so.
    write(running.http_port, eventType="purchase", visitorId="slip")
    write(running.http_port, eventType="home-page-view", visitorId="fine")
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(read_type_tags(
            devtools_url, running.http_port, shots), DEADLINE * 2))
    for lines in (seen["links"], seen["rows"]):
        [slip] = [line for line in lines if "slip" in line]
        [fine] = [line for line in lines if "fine" in line]
        assert "purchase not a Google type" in " ".join(slip.split()), lines
        assert "not a Google type" not in fine, lines


async def step_through_tenants(devtools_url: str, port: int, tenants: list[str]) -> list[str]:
    """The focused element's id after each ArrowDown in the talent page's tenant chooser."""
    focused = []
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#talent?"
                                               f"tenant={tenants[0]}")
        await until(lambda: devtools.evaluate(session, "!!document.getElementById('tenant')"),
                    "the tenant chooser")
        await devtools.evaluate(session, "document.getElementById('tenant').focus()")
        for tenant in tenants[1:]:
            await devtools.press(session, "ArrowDown")
            await until(lambda tenant=tenant: devtools.evaluate(
                session, f"decodeURIComponent(location.hash).includes({tenant!r})"),
                f"the page of {tenant}")
            focused.append(await devtools.evaluate(session, "document.activeElement.id"))
        await no_problems(devtools, session)
    return focused


def test_arrow_keys_step_through_the_tenants_keeping_the_focus(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    # Each arrow key shows the next tenant's page: the focus went to the page as a
    # whole, and a keyboard user could not step on to the one after.
    tenants = [f"projects/{PROJECT}/tenants/t{n}" for n in range(3)]
    for tenant in tenants:
        status, answer = rest(running.http_port, "POST", f"/v4/{tenant}/clientEvents", {
            "eventId": "e-1", "createTime": "2026-01-01T00:00:00Z",
            "jobEvent": {"type": "VIEW", "jobs": [f"{tenant}/jobs/j"]}})
        assert status == 200, answer
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        focused = asyncio.run(asyncio.wait_for(
            step_through_tenants(devtools_url, running.http_port, tenants), DEADLINE * 2))
    assert focused == ["tenant", "tenant"], focused


async def read_times_in_kolkata(devtools_url: str, port: int) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await devtools.send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"},
                            session)
        await devtools.evaluate(session, "location.hash = '#events'")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main').innerText.includes('year-one')"),
            "the events")
        assert await devtools.evaluate(session, "new Date(0).getHours()") == 5  # (+05:30)
        await no_problems(devtools, session)
        return await text_of(devtools, session, "main")


def test_times_show_in_utc_whatever_the_browsers_zone(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    # Events showed in the browser's zone, unlabelled, beside the insights' UTC:
    # 1999-12-31T23:59:59Z was "2000-01-01 05:29:59" in Kolkata; year 1 was "1-01-01".
    write(running.http_port, eventType="home-page-view", visitorId="eve",
          eventTime="1999-12-31T23:59:59Z")
    write(running.http_port, eventType="home-page-view", visitorId="year-one",
          eventTime="0001-01-01T00:00:00Z")
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        said = asyncio.run(asyncio.wait_for(
            read_times_in_kolkata(devtools_url, running.http_port), DEADLINE * 2))
    assert "1999-12-31 23:59:59Z" in said and "0001-01-01 00:00:00Z" in said, said


async def read_the_counts_of_one_event(devtools_url: str, port: int) -> list[str]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#insights?"
                                               f"parent={CATALOG}")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('.headline')"),
                    "the totals")
        funnel_hint = ("[...document.querySelectorAll('p.hint')].map(p => p.innerText)"
                       ".find(t => t.endsWith(' read.'))")
        await until(lambda: devtools.evaluate(session, funnel_hint), "the funnel's count")
        await no_problems(devtools, session)
        return [await text_of(devtools, session, ".headline"),
                await devtools.evaluate(session, funnel_hint)]


def test_insights_count_one_event_and_one_visitor_in_the_singular(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    # "1 distinct visitors, 1 events read"
    write(running.http_port, eventType="home-page-view", visitorId="v")
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        said = asyncio.run(asyncio.wait_for(
            read_the_counts_of_one_event(devtools_url, running.http_port), DEADLINE * 2))
    assert said == ["1 distinct visitor, 1 event read", "1 event read."]


async def page_through_catalogs(devtools_url: str, port: int, shots: Path) -> None:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#catalogs")
        rows = "document.querySelectorAll('[aria-label=Catalogs] tbody tr').length"
        await until(lambda: devtools.evaluate(session, f"{rows} === 100"), "the first page")
        assert not await devtools.evaluate(
            session, "document.querySelector('[aria-label=Tenants]').offsetParent")
        await photograph(devtools, session, shots, "catalogs-first-page")
        await focus_and_press(devtools, session, "main > button:not([hidden])")  # More
        await until(lambda: devtools.evaluate(session, f"{rows} === 101"), "the second page")
        assert TENANT in await text_of(devtools, session, "[aria-label=Tenants]")
        assert await devtools.evaluate(
            session, "[...document.querySelectorAll('main button')].every(b => b.hidden || "
                     "b.classList.contains('link'))"), "More is gone after the last page"
        # ... and the focus stays on the page (it went to the body with the button)
        assert await devtools.evaluate(
            session, "document.querySelector('main').contains(document.activeElement) && "
                     "document.activeElement !== document.querySelector('main')")
        await no_problems(devtools, session)
        await photograph(devtools, session, shots, "catalogs-second-page")


def test_catalogs_page_shows_a_page_at_a_time(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # A writer key may fill a project with catalogs: the page showed them all at once.
    for n in range(101):
        status, answer = rest(running.http_port, "POST", f"/v2/projects/{PROJECT}/locations/"
                              f"global/catalogs/c{n:03}/userEvents:write",
                              {"eventType": "home-page-view", "visitorId": "v"})
        assert status == 200, answer
    status, answer = rest(running.http_port, "POST", f"/v4/{TENANT}/clientEvents", {
        "eventId": "event-1", "createTime": "2026-01-01T00:00:00Z",
        "eventNotes": "from the search page",
        "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/job-1"]}})
    assert status == 200, answer
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        asyncio.run(asyncio.wait_for(page_through_catalogs(devtools_url, running.http_port, shots),
                                     DEADLINE * 2))


async def find_the_rare_event(devtools_url: str, port: int, shots: Path) -> None:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/"
                                     "#events?filter=eventType%20%3D%20%22rare%22")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('.results tbody tr').length === 1"),
            "the one rare event")
        shown = await text_of(devtools, session, ".results")
        assert "rare-visitor" in shown and "No event matches" not in shown, shown
        await no_problems(devtools, session)
        await photograph(devtools, session, shots, "events-rare")


def test_events_page_follows_short_pages_to_a_rare_event(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A call looks through one window of SCAN_LIMIT events at most here (10; by
    # default it goes on for LIST_SECONDS): the first pages of a type only the oldest
    # of 35 events has are empty, each with a token.
    monkeypatch.setattr(queries, "SCAN_LIMIT", 10)
    monkeypatch.setattr(queries, "MIN_WINDOWS", 1)
    monkeypatch.setattr(queries, "LIST_SECONDS", 0.0)
    write(running.http_port, eventType="rare", visitorId="rare-visitor")
    for n in range(34):
        write(running.http_port, eventType="home-page-view", visitorId=f"v{n}",
              eventTime=f"2026-01-02T00:00:{n:02d}Z")
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        asyncio.run(asyncio.wait_for(find_the_rare_event(devtools_url, running.http_port, shots),
                                     DEADLINE))
