"""What a review of the console in Chromium found, each fixed and held here: the skip
link left the page; choosers showed "projects/p/locations/glob" for every catalog; a
long tenant's name widened a phone's page; counts stood unformatted, and 600,000 read as
60000 over 0; "Failed to fetch" stood on every page when the server was out of reach,
and the events page never tried again; a reader key's operations page said its refusal
again every second; the insights drew a range typed but not applied, said a wrong range
three times as INVALID_ARGUMENT, kept the rows of the range before beside an error, and
dropped the focus in the per-product pager; an unjoined event said "joining changed
nothing" beside "Joined: no".
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools, chromium
from .pages import (
    focus_and_press,
    go,
    in_chromium,
    no_problems,
    open_console,
    photograph,
    text_of,
    until,
)
from .test_console import (
    CATALOG,
    DEADLINE,
    PROJECT,
    READER_KEY,
    keyed_shop,
    rest,
    write,
)

LONG_CATALOG = CATALOG.replace("default_catalog", "spring_collection_" + "x" * 40)
LONG_TENANT = f"projects/{PROJECT}/tenants/careers-portal-emea-region-graduate-programmes"
IMPORTED = 1_234  # events of one inline import: a count with a thousands separator


def imported(port: int) -> None:
    """IMPORTED events in LONG_CATALOG, through one inline import, done."""
    status, op = rest(port, "POST", f"/v2/{LONG_CATALOG}/userEvents:import", {
        "inputConfig": {"userEventInlineSource": {"userEvents": [
            {"eventType": "home-page-view", "visitorId": f"v-{n}",
             "eventTime": "2026-01-01T00:00:00Z"} for n in range(IMPORTED)]}}})
    assert status == 200, op
    deadline = time.monotonic() + DEADLINE
    while not rest(port, "GET", f"/v2/{op['name']}")[1].get("done"):
        assert time.monotonic() < deadline, "the import did not end"
        time.sleep(0.05)


async def review_the_frame(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(
            devtools, f"http://127.0.0.1:{port}/console/#events?filter=eventType%20%3D%20"
                      "%22home-page-view%22")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('.results "
                                                       "tbody tr')"), "the events")
        before = await devtools.evaluate(session, "location.hash")
        # Skip to the page: the focus goes to the page, which stays as it is.
        await focus_and_press(devtools, session, "a.skip")
        skipped = {"hash": await devtools.evaluate(session, "location.hash"), "before": before,
                   "focused": await devtools.evaluate(session, "document.activeElement.id"),
                   "rows": await text_of(devtools, session, ".results tbody")}
        await focus_and_press(devtools, session, "#count-events")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#events-counted').innerText.endsWith('.')"),
            "the count")
        skipped["counted"] = await text_of(devtools, session, "#events-counted")
        choices = await devtools.evaluate(
            session, "[...document.querySelectorAll('#catalog option')].map(o => [o.text, "
                     "o.title])")
        await go(devtools, session, "catalogs", "[aria-label=Catalogs] tbody tr")
        counts = await devtools.evaluate(
            session, "[...document.querySelectorAll('[aria-label=Catalogs] td.number')]"
                     ".map(td => [td.innerText, getComputedStyle(td).whiteSpace])")
        await photograph(devtools, session, folder, "review-catalogs")
        await go(devtools, session, f"talent?tenant={LONG_TENANT}", "tbody tr")
        jobs = await text_of(devtools, session, "tbody td[data-label=Jobs]")
        # a tenant's page reads no catalog: the header's chooser steps aside
        chooser_on_talent = await devtools.evaluate(
            session, "document.querySelector('#catalog').checkVisibility()")
        # (photograph fails when the page is wider than the phone's screen)
        await photograph(devtools, session, folder, "review-talent-long-tenant")
        unjoined = await devtools.evaluate(
            session, f"fetch('/console/v1/{CATALOG}/userEvents?filter=visitorId%20%3D%20"
                     "%22browser%22').then(r => r.json()).then(j => j.userEvents[0].id)")
        await go(devtools, session, f"event/{unjoined}?parent={CATALOG}", "#received-h")
        received = await text_of(devtools, session, "section[aria-labelledby=received-h]")
        await no_problems(devtools, session)
        chooser_on_event = await devtools.evaluate(
            session, "document.querySelector('#catalog').checkVisibility()")
        return {"skipped": skipped, "choices": choices, "counts": counts, "jobs": jobs,
                "received": received, "chooser": [chooser_on_talent, chooser_on_event]}


def test_the_frame_names_things_briefly_fits_a_phone_and_keeps_its_page(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    write(port, eventType="home-page-view", visitorId="home")
    write(port, eventType="detail-page-view", visitorId="browser",
          productDetails=[{"product": {"id": "not-in-the-catalog"}}])
    imported(port)
    status, answer = rest(port, "POST", f"/v4/{LONG_TENANT}/clientEvents", {
        "eventId": "e-1", "createTime": "2026-01-01T00:00:00Z",
        "jobEvent": {"type": "APPLICATION_FINISH", "jobs": [f"{LONG_TENANT}/jobs/graduate-7"]}})
    assert status == 200, answer
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(review_the_frame(devtools_url, port, shots),
                                            DEADLINE * 3))
    skipped = seen["skipped"]
    assert skipped["hash"] == skipped["before"] and skipped["focused"] == "main", skipped
    assert "home" in skipped["rows"], skipped  # (the feed showed instead, its filter lost)
    assert skipped["counted"] == "1 event matches.", skipped  # (no count was on the page)
    assert sorted(seen["choices"]) == sorted([
        ["default_catalog", CATALOG], [LONG_CATALOG.rsplit("/", 1)[1], LONG_CATALOG]]), seen
    assert [f"{IMPORTED:,}", "nowrap"] in seen["counts"], seen["counts"]
    assert seen["jobs"] == "graduate-7", seen["jobs"]  # the tenant's job by its id
    assert "it was not joined" in seen["received"], seen["received"]
    assert seen["chooser"] == [False, True], seen["chooser"]  # (on talent, it did nothing)


async def lose_the_server(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#events")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('.results "
                                                       "tbody tr')"), "the events")
        await devtools.send("Network.enable", {}, session)
        offline = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        await devtools.send("Network.emulateNetworkConditions", {"offline": True, **offline},
                            session)
        await go(devtools, session, "events?filter=visitorId%20%3D%20%22home%22",
                 ".results .failed")
        said = await text_of(devtools, session, "main")
        await photograph(devtools, session, folder, "review-server-gone")
        await devtools.send("Network.emulateNetworkConditions", {"offline": False, **offline},
                            session)
        await focus_and_press(devtools, session, ".results .failed button")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('.results tbody')?.innerText.includes('home')"),
            "the events, asked again")
        after = await text_of(devtools, session, "main")
        # the operations page, refused once the network is gone, is asked again by itself
        await devtools.send("Network.emulateNetworkConditions", {"offline": True, **offline},
                            session)
        await go(devtools, session, "operations", "[role=status] .error")
        await devtools.send("Network.emulateNetworkConditions", {"offline": False, **offline},
                            session)
        await until(lambda: devtools.evaluate(
            session, "!document.querySelector('[role=status] .error')"),
            "the operations page, back")
        await no_problems(devtools, session)
        return {"said": said, "after": after}


def test_a_server_out_of_reach_is_said_in_words_and_asked_again(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    write(running.http_port, eventType="home-page-view", visitorId="home")
    seen = in_chromium(browser_executable, tmp_path / "profile", lose_the_server,
                       running.http_port, shots, within=DEADLINE * 3)
    assert "Failed to fetch" not in seen["said"], seen["said"]
    assert "UNAVAILABLE: The server did not answer" in seen["said"], seen["said"]
    assert "did not answer" not in seen["after"], seen["after"]


async def lose_the_server_of_an_empty_store(devtools_url: str, port: int, folder: Path
                                            ) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#events")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main')?.innerText.includes('No catalog')"),
            "the page of an empty store")
        offline = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        await devtools.send("Network.enable", {}, session)
        await devtools.send("Network.emulateNetworkConditions", {"offline": True, **offline},
                            session)
        shown = "!document.querySelector('#offline').hidden"
        await until(lambda: devtools.evaluate(session, shown), "the notice", 15)
        said = await text_of(devtools, session, "#offline")
        await photograph(devtools, session, folder, "review-empty-server-gone")
        await devtools.send("Network.emulateNetworkConditions", {"offline": False, **offline},
                            session)
        await until(lambda: devtools.evaluate(session, f"!({shown})"), "the notice gone", 15)
        return {"said": said}


def test_a_server_gone_is_said_over_a_page_read_before(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """A page shown before the server went (no catalog holds events yet) went on
    saying so, with no word of the server gone."""
    seen = in_chromium(browser_executable, tmp_path / "profile",
                       lose_the_server_of_an_empty_store, running.http_port, shots)
    assert seen["said"].startswith("The server did not answer"), seen
    assert "What the page shows was read before" in seen["said"], seen


async def read_operations_with_a_reader_key(devtools_url: str, port: int) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#operations",
                                     READER_KEY, PROJECT)
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('[role=status]')?.innerText.includes('admin key')"),
            "the refusal, in words")
        asked = ("performance.getEntriesByType('resource').filter(e => "
                 "e.name.includes('/operations')).length")
        await asyncio.sleep(0.5)  # (a first page shown again as the catalogs came)
        before = await devtools.evaluate(session, asked)
        await asyncio.sleep(3)  # three refreshes, had it gone on asking
        return {"asked": await devtools.evaluate(session, asked) - before,
                "said": await text_of(devtools, session, "[role=status]")}


def test_a_reader_keys_operations_page_says_why_once_and_stops_asking(
        browser_executable: str, tmp_path: Path) -> None:
    with keyed_shop(tmp_path) as running:
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            seen = asyncio.run(asyncio.wait_for(
                read_operations_with_a_reader_key(devtools_url, running.http_port),
                DEADLINE * 2))
    assert seen["asked"] == 0, seen  # (two calls a second, each refused again)
    assert seen["said"].startswith("This key may not read operations: they need an admin key")


async def use_the_insights(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#insights?"
                                               f"parent={CATALOG}")
        await until(lambda: devtools.evaluate(
            session, "!!document.querySelector('#products tbody tr td.number')"),
            "the per-product table")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('.headline')"),
                    "the totals")
        headings = await text_of(devtools, session, "main")
        # The pager: Next, then Previous, keep the focus on a button that works.
        await focus_and_press(devtools, session, "#products button.next")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#products .pages').innerText === 'Page 2'"),
            "page 2")
        await devtools.press(session, "Enter")  # (on Previous: Next is off on the last page)
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#products .pages').innerText === 'Page 1'"),
            "page 1 again")
        focused = await devtools.evaluate(session, "document.activeElement.className")
        # A range typed but not applied is not what "Per" reads.
        await devtools.evaluate(session, "document.querySelector('#start').value = "
                                         "'2026-01-02T00:00'")
        await devtools.evaluate(session, "(s => { s.value = 'HOUR'; s.dispatchEvent("
                                         "new Event('change')) })(document.querySelector("
                                         "'#granularity'))")
        await until(lambda: devtools.evaluate(
            session, "performance.getEntriesByType('resource').some(e => "
                     "e.name.includes('granularity=HOUR'))"), "the hourly totals asked")
        hourly = await devtools.evaluate(
            session, "performance.getEntriesByType('resource').filter(e => "
                     "e.name.includes('granularity=HOUR')).map(e => e.name)")
        await until(lambda: devtools.evaluate(
            session, "!document.querySelector('.totals[aria-busy]')"), "the hourly totals")
        # Until before From, applied: said once, in words, and nothing asked again.
        rows_before = await text_of(devtools, session, "#products tbody")
        await devtools.evaluate(session, "document.querySelector('#end').value = "
                                         "'2026-01-01T00:00'")
        await focus_and_press(devtools, session, ".scope button[type=submit]")
        await until(lambda: devtools.evaluate(
            session, "!!document.querySelector('.scope + .error:not([hidden])')"),
            "the range refused")
        errors = await devtools.evaluate(
            session, "[...document.querySelectorAll('main .error')].filter(e => !e.hidden)"
                     ".map(e => e.innerText)")
        await photograph(devtools, session, folder, "review-insights-bad-range")
        await no_problems(devtools, session)
        return {"headings": headings, "focused": focused, "hourly": hourly, "errors": errors,
                "rows_before": rows_before,
                "rows_after": await text_of(devtools, session, "#products tbody")}


def test_insights_read_the_range_applied_and_say_a_wrong_one_once(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    for n in range(25):  # more products than a page of the table (20)
        write(port, eventType="detail-page-view", visitorId=f"v-{n}",
              eventTime=f"2026-01-01T{n % 24:02d}:00:00Z",
              productDetails=[{"product": {"id": f"sku-{n:02d}"}}])
    write(port, eventType="search", visitorId="v-0", searchQuery="tent",
          eventTime="2026-01-03T00:00:00Z")
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(use_the_insights(devtools_url, port, shots),
                                            DEADLINE * 3))
    assert "Price × units" in seen["headings"] and "Detail-view rate" in seen["headings"]
    assert "next" in seen["focused"], seen["focused"]  # (it fell to the page's body)
    assert seen["hourly"] and not any("startTime" in url for url in seen["hourly"]), seen
    assert seen["errors"] == ["“Until” must come after “From”: nothing was read again."], seen
    assert seen["rows_after"] == seen["rows_before"], seen  # the range applied still shows
    json.dumps(seen)  # (all of it plain data)


async def measure_long_step_names(devtools_url: str, port: int, folder: Path) -> list[Any]:
    funnel = json.dumps({"steps": [{"eventType": "detail-page-view", "productId": "W" * 120},
                                   {"eventType": "add-to-cart", "category": "M" * 200}]})
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#insights?"
                                               f"parent={CATALOG}&funnel={funnel}")
        fits = ("[...document.querySelectorAll('#funnel-chart svg text.name')].map(t => "
                "[t.firstChild.textContent.endsWith('…'), Math.round(t.getComputedTextLength()), "
                "Math.round(t.closest('svg').getBoundingClientRect().width)])")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#funnel-chart svg text.name').length === 2"),
            "the funnel's steps")
        measured = [await devtools.evaluate(session, fits)]
        await photograph(devtools, session, folder, "review-long-step-names")
        await devtools.viewport(session, 390, 844, True)
        await asyncio.sleep(0.5)  # (the chart is drawn again for the width)
        measured.append(await devtools.evaluate(session, fits))
        await no_problems(devtools, session)
        return measured


def test_a_long_step_name_is_cut_to_its_charts_width(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # Cut at 7.5 px a letter, capitals ran past the chart (and were cut unmarked by
    # the phone's screen).
    write(running.http_port, eventType="detail-page-view", visitorId="v",
          productDetails=[{"product": {"id": "W" * 120}}])
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        measured = asyncio.run(asyncio.wait_for(
            measure_long_step_names(devtools_url, running.http_port, shots), DEADLINE * 2))
    for width in measured:
        assert width and all(drawn <= box for _, drawn, box in width), measured
        assert all(cut for cut, _, _ in width), measured  # cut, and marked so


async def come_back_asking_for_a_key(devtools_url: str, port: int, folder: Path
                                     ) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed",
                                     READER_KEY, PROJECT)
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main')?.innerText.includes('keyed')"), "the feed")
        offline = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        await devtools.send("Network.enable", {}, session)
        await devtools.send("Network.emulateNetworkConditions", {"offline": True, **offline},
                            session)
        gone = "!document.querySelector('#offline').hidden"
        await until(lambda: devtools.evaluate(session, gone), "the server said gone", 15)
        # back, but no longer knowing the tab's key (restarted with another keys file)
        await devtools.evaluate(session, "sessionStorage.setItem('footfall.apiKey', 'forgot')")
        await devtools.send("Network.emulateNetworkConditions", {"offline": False, **offline},
                            session)
        await until(lambda: devtools.evaluate(session, "document.querySelector('#key-dialog')"
                                                       ".open"), "the key dialog", 15)
        said = ("[document.querySelector('#offline').hidden ? '' : "
                "document.querySelector('#offline').innerText, "
                "document.querySelector('main').innerText].join(' ')")
        try:
            await until(lambda: devtools.evaluate(
                session, f"!{said}.includes('did not answer')"), "the notices gone", 10)
        finally:
            await photograph(devtools, session, folder, "review-back-asking-for-a-key")
        return {"said": await devtools.evaluate(session, said)}


def test_a_server_back_that_asks_for_a_key_is_no_longer_said_gone(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    """The server answered 401 (restarted with keys the tab's is not among) and the
    key dialog stood over "The server did not answer", on top and in both columns
    of the live feed, until a key was given."""
    with keyed_shop(tmp_path) as running:
        seen = in_chromium(browser_executable, tmp_path / "profile",
                           come_back_asking_for_a_key, running.http_port, shots,
                           within=DEADLINE * 3)
    assert "did not answer" not in seen["said"], seen
