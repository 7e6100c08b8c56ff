"""The live feed of a catalog reset under it (a test suite's reset between its tests):
it showed the deleted events and refusals on, the new ones on top of them, until the
page was reloaded. It reads its columns again, and says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import in_chromium, no_problems, open_console, photograph, until
from .test_console import CATALOG, PROJECT, rest, write
from .test_console_job_site import OTHER_TENANT, client_event

ACCEPTED = "document.querySelector('#accepted')?.innerText || ''"
REFUSED = "document.querySelector('#refused')?.textContent || ''"  # (closed ones too)
ACCEPTED_HINT = "document.querySelector('#accepted-h + p')?.innerText || ''"
# (the column asks every 4 s, and waits up to 5 s for an event stored)
SEEN_WITHIN = 20.0


def refuse(port: int, visitor: str) -> None:
    status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                     {"eventTime": "2026-01-01T00:00:00Z", "eventType": "add-to-cart",
                      "visitorId": visitor})  # (no product: refused)
    assert status == 400


async def reset_under_the_feed(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(
            session, f"({ACCEPTED}).includes('before-2') && "
                     f"({REFUSED}).includes('before-refused')"),
            "the events and the refusal written before")

        # Reset with nothing written after: the columns empty. (The keyboard was on an
        # event: it stays in its column.)
        assert await devtools.evaluate(
            session, "(e => { e.focus(); return document.activeElement === e })"
                     "(document.querySelector('#accepted a.event'))")
        status, _ = rest(port, "POST", f"/console/v1/projects/{PROJECT}:reset", {})
        assert status == 200
        await until(lambda: devtools.evaluate(
            session, f"!({ACCEPTED}).includes('before-') && !({REFUSED}).includes('before-')"),
            "the deleted events and refusal gone", within=SEEN_WITHIN)
        seen["emptied"] = await devtools.evaluate(session, ACCEPTED_HINT)
        seen["focus"] = await devtools.evaluate(session, "document.activeElement.id")

        # Written again (as a suite's next test does): only the new ones show.
        write(port, eventType="home-page-view", visitorId="after-0")
        status, _ = rest(port, "POST", f"/console/v1/projects/{PROJECT}:reset", {})
        assert status == 200
        for n in range(1, 3):
            write(port, eventType="home-page-view", visitorId=f"after-{n}")
        refuse(port, "after-refused")
        await until(lambda: devtools.evaluate(
            session, f"({ACCEPTED}).includes('after-2') && !({ACCEPTED}).includes('after-0')"
                     f" && ({REFUSED}).includes('after-refused')"),
            "only what was written after the second reset", within=SEEN_WITHIN)
        seen["accepted"] = await devtools.evaluate(session, ACCEPTED)
        seen["count"] = await devtools.evaluate(
            session, "document.querySelector('#accepted-h .count').innerText")
        seen["lines"] = await devtools.evaluate(
            session, "document.querySelectorAll('#accepted a.event').length")
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "feed-after-reset")
    return seen


def test_the_feed_reads_again_what_a_reset_deleted(browser_executable: str, running: Running,
                                                   shots: Path, tmp_path: Path) -> None:
    for n in range(3):
        write(running.http_port, eventType="home-page-view", visitorId=f"before-{n}")
    refuse(running.http_port, "before-refused")
    seen = in_chromium(browser_executable, tmp_path / "profile", reset_under_the_feed,
                       running.http_port, shots, within=120)
    assert "the events shown before were deleted (a reset, a purge or retention)" \
        in seen["emptied"], seen
    assert seen["focus"] == "accepted-h", seen
    assert seen["count"] == "2" and seen["lines"] == 2, seen
    assert "after-1" in seen["accepted"], seen


TABLE = "document.querySelector('main table')?.innerText || ''"


async def reset_under_the_talent_page(devtools_url: str, port: int,
                                      folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#talent?"
                                               f"tenant={OTHER_TENANT}")
        await until(lambda: devtools.evaluate(session, f"({TABLE}).includes('before-1')"),
                    "the client events written before")
        status, _ = rest(port, "POST", f"/console/v1/{OTHER_TENANT}:reset", {})
        assert status == 200
        client_event(port, OTHER_TENANT, "after-0", "VIEW", [f"{OTHER_TENANT}/jobs/j"])
        await until(lambda: devtools.evaluate(
            session, f"({TABLE}).includes('after-0') && !({TABLE}).includes('before-')"),
            "only what was written after the reset", within=SEEN_WITHIN)
        said = await devtools.evaluate(
            session, "document.querySelector('#tenant-read-again').innerText")
        rows = await devtools.evaluate(session, "document.querySelectorAll('main tbody tr')"
                                                ".length")
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "talent-after-reset")
    return {"said": said, "rows": rows}


def test_the_talent_page_reads_again_what_a_reset_deleted(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    for n in range(2):
        client_event(running.http_port, OTHER_TENANT, f"before-{n}", "VIEW",
                     [f"{OTHER_TENANT}/jobs/j"])
    seen = in_chromium(browser_executable, tmp_path / "profile", reset_under_the_talent_page,
                       running.http_port, shots, within=120)
    assert seen["rows"] == 1, seen
    assert "the client events shown before were deleted (a reset)" in seen["said"], seen
