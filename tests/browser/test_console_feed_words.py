"""What a new user's walk found on the live feed, each fixed and held here: a refusal
of 120 field violations named them all in its closed item (a screen and a half), and
a server gone was said three times (on top, and again in each column)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import Running, start
from server.config import Settings

from .cdp import DevTools
from .pages import in_chromium, no_problems, open_console, photograph, text_of, until
from .test_console import CATALOG, DEADLINE, rest, write

pytestmark = pytest.mark.timeout(240)

MISSING_IDS = 120  # products named without an id: a violation each
TRIES_WATCHED = 30  # looks, 0.1 s apart, at a page whose columns try again each second
CLOSED = "document.querySelector('#refused details.rejection')"


async def open_a_refusal_of_many(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(session, f"!!{CLOSED}"), "the refusal")
        await no_problems(devtools, session)
        closed = {"said": await text_of(devtools, session, "#refused details.rejection"),
                  "height": await devtools.evaluate(
                      session, f"{CLOSED}.getBoundingClientRect().height")}
        await photograph(devtools, session, folder, "feed-refusal-of-many-closed")
        await devtools.evaluate(session, f"{CLOSED}.querySelector('summary').click()")
        await until(lambda: devtools.evaluate(session, f"{CLOSED}.open"), "the refusal opened")
        opened = {"said": await text_of(devtools, session, "#refused details.rejection summary")}
        await photograph(devtools, session, folder, "feed-refusal-of-many-opened")
        await no_problems(devtools, session)
        return {"closed": closed, "opened": opened}


def test_a_closed_refusal_names_its_first_violations_and_counts_the_rest(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    status, _ = rest(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write", {
        "eventType": "detail-page-view", "visitorId": "v",
        "productDetails": [{"product": {"title": "no id"}}] * MISSING_IDS})
    assert status == 400
    seen = in_chromium(browser_executable, tmp_path / "profile", open_a_refusal_of_many,
                       running.http_port, shots)
    closed, opened = seen["closed"]["said"], seen["opened"]["said"]
    named = "user_event.product_details[{}].product.id: is required"
    assert all(named.format(i) in closed for i in range(3)), closed
    assert named.format(3) not in closed, closed
    # (the message names 100, then "and 20 more violations": 117 after the first 3)
    assert f"{named.format(2)}; and {MISSING_IDS - 3} more" in closed, closed
    assert seen["closed"]["height"] < 200, seen  # (was a screen and a half)
    assert all(named.format(i) in opened for i in range(100)), opened
    assert opened.rstrip().endswith("and 20 more violations"), opened
    assert f"and {MISSING_IDS - 3} more" not in opened, opened


def test_a_closed_refusal_of_more_than_were_looked_for_says_over(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # The server stops looking for a JSON document's wrong values past 1,000 found and
    # says "and more than 900 other violations": counted as one, the closed item said
    # "and 98 more".
    status, _ = rest(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write", {
        "eventType": "home-page-view", "visitorId": "v",
        "attributes": {f"k{i:04}": {"text": [i]} for i in range(1_200)}})
    assert status == 400
    seen = in_chromium(browser_executable, tmp_path / "profile", open_a_refusal_of_many,
                       running.http_port, shots)
    closed, opened = seen["closed"]["said"], seen["opened"]["said"]
    assert "user_event.attributes['k0002'].text[0]: Invalid JSON payload received: must be " \
           "a JSON string, got a number, 2; and over 997 more" in closed, closed
    assert opened.rstrip().endswith("and more than 900 other violations"), opened


class Restartable:
    """A server on free ports over a SQLite file, that a test may stop and start again
    on the same HTTP port (a page's stream ends as the server stops)."""

    def __init__(self, folder: Path) -> None:
        self.settings = Settings(port=0, http_port=-1, store=f"sqlite:///{folder}/events.db",
                                 grace_seconds=5)
        self.server: Running | None = start(self.settings)
        self.http_port = self.server.http_port

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.stop()

    def start(self) -> None:
        assert self.server is None
        self.server = start(dataclasses.replace(self.settings, http_port=self.http_port))


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Restartable]:
    served = Restartable(tmp_path)
    try:
        yield served
    finally:
        served.stop()


async def lose_the_server_on_the_feed(devtools_url: str, served: Restartable, folder: Path
                                      ) -> dict[str, Any]:
    port = served.http_port
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted')?.innerText.includes('here')"),
            "the feed")
        await asyncio.to_thread(served.stop)  # (its watches end: the columns ask again)
        gone = "!document.querySelector('#offline').hidden"
        await until(lambda: devtools.evaluate(session, gone), "the server said gone", 15)
        # each column tries again each second (RETRY_MS), and said it again each time:
        # what the page says, over a few of those tries
        said = []
        for _ in range(TRIES_WATCHED):
            said.append(await devtools.evaluate(session, "document.body.innerText"))
            await asyncio.sleep(0.1)
        await photograph(devtools, session, folder, "feed-server-gone")
        await asyncio.to_thread(served.start)
        await until(lambda: devtools.evaluate(session, f"!({gone})"), "the notice gone", 15)
        write(port, eventType="home-page-view", visitorId="back-again")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted').innerText.includes('back-again')"),
            "an event after the server came back", DEADLINE)
        await no_problems(devtools, session)
        return {"said": max(said, key=lambda text: text.count("did not answer"))}


def test_a_server_stopped_is_said_once_on_the_live_feed(
        browser_executable: str, restartable: Restartable, shots: Path, tmp_path: Path) -> None:
    write(restartable.http_port, eventType="home-page-view", visitorId="here")
    seen = in_chromium(browser_executable, tmp_path / "profile", lose_the_server_on_the_feed,
                       restartable, shots, within=DEADLINE * 3)
    assert seen["said"].count("did not answer") == 1, seen["said"]
