"""The operations page of a catalog reset under it: the reset deleted the finished
operations, and their cards stayed; "No operation yet." was then said above them,
and beside the next operation's card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import in_chromium, no_problems, open_console, photograph, until
from .test_console import CATALOG, rest, write
from .test_console_second_review import finished

CARDS = "[...document.querySelectorAll('article.operation')].map(a => a.innerText)"
MAIN = "document.querySelector('main').innerText"
NOBODY = {"filter": 'visitorId = "nobody"', "force": True}


async def reset_under_the_operations(devtools_url: str, port: int,
                                     folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#operations")
        await until(lambda: devtools.evaluate(session, f"{CARDS}.length === 1"),
                    "the purge's card")
        status, _ = rest(port, "POST", f"/console/v1/{CATALOG}:reset", {})
        assert status == 200
        await until(lambda: devtools.evaluate(
            session, f"{CARDS}.length === 0 && {MAIN}.includes('No operation yet.')"),
            "no card once the reset deleted the operation")
        seen["second"] = finished(port, f"/v2/{CATALOG}/userEvents:purge", NOBODY)["name"]
        await until(lambda: devtools.evaluate(session, f"{CARDS}.length === 1"),
                    "the second purge's card")
        seen["cards"] = await devtools.evaluate(session, CARDS)
        seen["main"] = await devtools.evaluate(session, MAIN)
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "operations-after-reset")
    return seen


def test_the_operations_page_drops_what_a_reset_deleted(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    write(running.http_port, eventType="home-page-view", visitorId="someone")
    finished(running.http_port, f"/v2/{CATALOG}/userEvents:purge", NOBODY)
    seen = in_chromium(browser_executable, tmp_path / "profile", reset_under_the_operations,
                       running.http_port, shots)
    assert "No operation yet." not in seen["main"], seen
    assert seen["second"].split("/").pop() in seen["cards"][0], seen
