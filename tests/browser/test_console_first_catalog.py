"""The README's quick start opens the console, then sends an event: while no catalog
holds anything the console asks for the catalogs every half second, not every 3 s
(the first event showed after up to 3 s), and goes back to every 3 s once one does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import in_chromium, open_console, photograph, until
from .test_console import CATALOG, rest, write

POLLS = ("performance.getEntriesByType('resource').filter(e => "
         "e.name.includes('/catalogs?')).length")  # (ListCatalogs, not a catalog's calls)


async def first_event(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(session, POLLS), "the first read of catalogs")
        before = await devtools.evaluate(session, POLLS)
        await asyncio.sleep(2.6)
        empty = await devtools.evaluate(session, POLLS) - before
        write(port, eventType="home-page-view", visitorId="first")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main').innerText.includes('first')"),
            "the first event in the feed")
        await photograph(devtools, session, folder, "feed-first-event")
        before = await devtools.evaluate(session, POLLS)
        await asyncio.sleep(2.6)
        held = await devtools.evaluate(session, POLLS) - before
        return {"empty": empty, "held": held}


def test_the_first_catalog_is_looked_for_often(browser_executable: str, running: Running,
                                               shots: Path, tmp_path: Path) -> None:
    seen = in_chromium(browser_executable, tmp_path / "profile", first_event,
                       running.http_port, shots)
    assert seen["empty"] >= 3, seen  # every 0.5 s while there is none (it was every 3 s)
    assert seen["held"] <= 1, seen  # every 3 s once there is one


async def reset_under_the_page(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(session, "document.querySelector('a.event')"
                                                       "?.getAttribute('href')"), "the event")
        href = await devtools.evaluate(session,
                                       "document.querySelector('a.event').getAttribute('href')")
        await devtools.evaluate(session, f"location.hash = {href!r}")  # (from the tab's memory)
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('#stored-h')"),
                    "the event's page")
        await asyncio.sleep(1)  # (still stored: no note comes)
        before = await devtools.evaluate(session, "!!document.querySelector('[role=note]')")
        await devtools.evaluate(session, "location.hash = 'feed'")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('a.event')"),
                    "the feed again")  # (shown whole before the event's page is asked for)
        status, _ = rest(port, "POST", f"/console/v1/{CATALOG}:reset", {})
        assert status == 200
        await devtools.evaluate(session, f"location.hash = {href!r}")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('#stored-h')"),
                    "the event's page again")
        try:
            said = await until(lambda: devtools.evaluate(
                session, "document.querySelector('[role=note]')?.innerText"), "the note")
        except AssertionError:  # (what the page shows instead, to say why)
            raise AssertionError(await devtools.evaluate(
                session, "location.hash + ' | ' + document.querySelector('main').innerText"
                )) from None
        await photograph(devtools, session, folder, "event-after-reset")
        return {"before": before, "said": said}


def test_an_event_deleted_since_the_tab_saw_it_says_so(browser_executable: str,
                                                        running: Running, shots: Path,
                                                        tmp_path: Path) -> None:
    """After a reset, the feed's event opened as "Stored" from the tab's memory."""
    write(running.http_port, eventType="home-page-view", visitorId="gone-soon")
    seen = in_chromium(browser_executable, tmp_path / "profile", reset_under_the_page,
                       running.http_port, shots)
    assert seen["before"] is False, seen
    assert "no longer holds event" in seen["said"], seen
    assert "what follows is what this tab saw" in seen["said"], seen


async def chosen_catalog(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(
            session, "/in the shop|mistyped/.test(document.querySelector('main')?.innerText)"),
            "an event in the feed")
        await photograph(devtools, session, folder, "feed-beside-a-typo")
        return {"chosen": await devtools.evaluate(
                    session, "document.getElementById('catalog').value"),
                "feed": await devtools.evaluate(session,
                                                "document.querySelector('main').innerText")}


def test_the_console_opens_on_google_s_catalog_before_one_that_sorts_first(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # A quick start's typo: "default_catalg" holds events too, and sorts first.
    typo = CATALOG.replace("default_catalog", "default_catalg")
    status, answer = rest(running.http_port, "POST", f"/v2/{typo}/userEvents:write",
                          {"eventType": "home-page-view", "visitorId": "mistyped"})
    assert status == 200, answer
    write(running.http_port, eventType="home-page-view", visitorId="in the shop")
    seen = in_chromium(browser_executable, tmp_path / "profile", chosen_catalog,
                       running.http_port, shots)
    assert seen["chosen"] == CATALOG, seen  # (it was the typo's, the first by name)
    assert "in the shop" in seen["feed"] and "mistyped" not in seen["feed"], seen
