"""The Talent events page's filter box: a job site's tester narrows a tenant's client
events to a type or a request (the page showed every event, and the console's
ListClientEvents took no filter), the events arriving after the page opened are
shown only when the filter selects them, and a bad filter is said once, naming
`filter` and what is wrong, not asked again each second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import go, in_chromium, no_problems, open_console, photograph, text_of, until
from .test_console import rest
from .test_console_job_site import OTHER_TENANT, client_event

ROWS = "[...document.querySelectorAll('tbody tr')].map(r => r.cells[1].innerText)"


async def filter_the_talent_page(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await go(devtools, session, f"talent?tenant={OTHER_TENANT}", "tbody tr + tr + tr")
        seen: dict[str, Any] = {"all": await devtools.evaluate(session, ROWS)}
        # typed into the box and searched, as a tester does
        await devtools.evaluate(session, "document.getElementById('filter').value = "
                                         "'eventType = VIEW'; document.querySelector("
                                         "'form.search button').click()")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('tbody tr').length === 2"), "the two views")
        seen["views"] = await devtools.evaluate(session, ROWS)
        seen["hash"] = await devtools.evaluate(session, "decodeURIComponent(location.hash)")
        client_event(port, OTHER_TENANT, "later-shown", "IMPRESSION", [f"{OTHER_TENANT}/jobs/j"],
                     created="2026-12-01T10:00:00Z")
        client_event(port, OTHER_TENANT, "later-viewed", "VIEW", [f"{OTHER_TENANT}/jobs/j"],
                     created="2026-12-01T10:01:00Z")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('tbody tr').length === 3"), "the later view")
        seen["watched"] = await devtools.evaluate(session, ROWS)
        await photograph(devtools, session, folder, "talent-filter")
        await go(devtools, session, f"talent?tenant={OTHER_TENANT}&filter=eventType%20%3D%20NOPE",
                 "main p.error")
        seen["error"] = await text_of(devtools, session, "main p.error")
        await photograph(devtools, session, folder, "talent-filter-bad")
        await no_problems(devtools, session)
        return seen


def test_the_talent_page_shows_the_events_its_filter_selects(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    job = f"{OTHER_TENANT}/jobs/nurse-7"
    client_event(port, OTHER_TENANT, "e0", "VIEW", [job], created="2026-12-01T09:00:00Z")
    client_event(port, OTHER_TENANT, "e1", "IMPRESSION", [job], created="2026-12-01T09:01:00Z")
    client_event(port, OTHER_TENANT, "e2", "VIEW", [job], created="2026-12-01T09:02:00Z")
    seen = in_chromium(browser_executable, tmp_path / "profile", filter_the_talent_page, port,
                       shots)
    assert seen["all"] == ["e2", "e1", "e0"], seen
    assert seen["views"] == ["e2", "e0"], seen
    assert seen["hash"] == f"#talent?tenant={OTHER_TENANT}&filter=eventType+=+VIEW", seen
    assert seen["watched"] == ["later-viewed", "e2", "e0"], seen
    assert seen["error"].startswith("INVALID_ARGUMENT: filter: at character 13: NOPE is not "
                                    "a JobEventType"), seen["error"]


SHOWN = "(id => !document.getElementById(id).hidden)"


async def select_nothing(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await go(devtools, session, f"talent?tenant={OTHER_TENANT}&filter=eventType%20%3D%20HIRED",
                 "#tenant-no-events:not([hidden])")
        await until(lambda: devtools.evaluate(session, f"{SHOWN}('tenant-no-refusals')"),
                    "no refusal said")
        seen: dict[str, Any] = {
            "none": await text_of(devtools, session, "#tenant-no-events"),
            "rows": await devtools.evaluate(session, ROWS)}
        await photograph(devtools, session, folder, "talent-filter-none")
        client_event(port, OTHER_TENANT, "hired-1", "HIRED", [f"{OTHER_TENANT}/jobs/j"])
        status, _ = rest(port, "POST", f"/v4/{OTHER_TENANT}/clientEvents", {"eventId": "bad"})
        assert status == 400
        await until(lambda: devtools.evaluate(
            session, f"!{SHOWN}('tenant-no-events') && !{SHOWN}('tenant-no-refusals')"),
            "the notices gone once a row came")
        seen["after"] = await devtools.evaluate(session, ROWS)
        await no_problems(devtools, session)
        return seen


def test_a_filter_that_selects_nothing_says_so(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """A filter that selected no event showed no table and no word (a tenant without
    refusals, a bare heading): the tester could not tell it from a page still reading."""
    client_event(running.http_port, OTHER_TENANT, "e0", "VIEW", [f"{OTHER_TENANT}/jobs/j"])
    seen = in_chromium(browser_executable, tmp_path / "profile", select_nothing,
                       running.http_port, shots)
    assert seen["none"].startswith("No client event of this tenant matches the filter"), seen
    assert seen["rows"] == [], seen
    assert seen["after"] == ["hired-1"], seen
