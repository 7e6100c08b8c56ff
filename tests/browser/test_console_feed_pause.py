"""The live feed, paused, counts as held only what its resume will show: of more
events than a column keeps (KEPT), the newest KEPT (it said "210 new items held" and
the resume showed 200; the Talent events page alike, see
tests/interop/test_console_job_outcomes.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import focus_and_press, in_chromium, no_problems, open_console, photograph, until
from .test_console import write

KEPT = 200  # items the live feed keeps a column (feed.js)
SHOWN = "document.querySelectorAll('#accepted li').length"
HELD = "document.getElementById('feed-held').textContent"


async def pause_a_busy_feed(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(session, f"{SHOWN} === 3"), "the feed")
        await focus_and_press(devtools, session, "#feed-pause")
        for n in range(KEPT + 10):
            write(port, eventType="home-page-view", visitorId=f"while-paused-{n}")
        # (the column's count is of every event that came, shown or held)
        await until(lambda: devtools.evaluate(
            session, f"document.querySelector('#accepted-h .count').textContent === "
                     f"'{KEPT + 13}'"), "every event counted")
        seen: dict[str, Any] = {"paused": [await devtools.evaluate(session, SHOWN),
                                           await devtools.evaluate(session, HELD)]}
        await photograph(devtools, session, folder, "feed-paused-busy")
        await focus_and_press(devtools, session, "#feed-pause")
        seen["resumed"] = [await devtools.evaluate(session, SHOWN), await devtools.evaluate(
            session, "[...document.querySelectorAll('#accepted li')].map(li => li.innerText)"
                     ".filter(text => text.includes('while-paused-')).length"),
            await devtools.evaluate(session, HELD)]
        await no_problems(devtools, session)
        return seen


def test_a_paused_feed_counts_as_held_only_what_its_resume_shows(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    for n in range(3):
        write(running.http_port, eventType="home-page-view", visitorId=f"before-{n}")
    seen = in_chromium(browser_executable, tmp_path / "profile", pause_a_busy_feed,
                       running.http_port, shots)
    assert seen["paused"] == [3, f"{KEPT} new items held."], seen
    assert seen["resumed"] == [KEPT, KEPT, ""], seen
