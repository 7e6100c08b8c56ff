"""What a new user's walk found on the live feed, each fixed and held here: a refusal
of 120 field violations named them all in its closed item (a screen and a half)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.app import Running

from .cdp import DevTools
from .pages import in_chromium, no_problems, open_console, photograph, text_of, until
from .test_console import CATALOG, rest

pytestmark = pytest.mark.timeout(240)

MISSING_IDS = 120  # products named without an id: a violation each
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
