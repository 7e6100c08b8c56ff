"""A job site's first look at the console, held here: its client events were stored,
yet the live feed said "No catalog holds events yet" and Accepted 0 beside their
refusals; and on the talent page a job of a project's default tenant stood under two
names, by its id when an event named it in the tenant's form and in full
(projects/P/jobs/J) when it came as talent v4beta1's samples name it; and the requests
refused that named a tenant were to be found only among every project's. Then: the
live feed's accepted column showed user events only (a tenant's client events were
nowhere on it); talent v4beta1's refusals of the project alone were not among its
default tenant's; a tenant's events came in the order stored, not by create time; and
an event's JobEvent.profile (v4beta1's) was not in its JSON; Insights, with no
catalog, showed the first tenant's funnel under a header saying "Catalog: no catalog yet";
and the feed's refusals said "CreateClientEvent" of v4 and v4beta1 alike.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from server.app import Running

from .cdp import DevTools
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
from .test_console import rest

KEPT = 200  # items the live feed keeps a column (feed.js), and the talent page its rows
PROJECT = "jobs-board"
DEFAULT_TENANT = f"projects/{PROJECT}/tenants/default_tenant"
OTHER_TENANT = f"projects/{PROJECT}/tenants/t1"


PROFILE = f"{DEFAULT_TENANT}/profiles/candidate-7"


def client_event(port: int, parent: str, event_id: str, kind: str, jobs: list[str],
                 created: str = "2026-12-01T09:00:00Z", **job_event: str) -> None:
    """One client event written over REST by talent v4beta1 (its parent a project
    alone: its default tenant)."""
    status, answer = rest(port, "POST", f"/v4beta1/{parent}/clientEvents", {"clientEvent": {
        "eventId": event_id, "requestId": "r1", "createTime": created,
        "jobEvent": {"type": kind, "jobs": jobs, **job_event}}})
    assert status == 200, answer


ITEMS = "[...document.querySelectorAll('#accepted li')].map(li => li.innerText)"


async def look(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#refused li').length === 3 && "
                     "document.querySelectorAll('#accepted li').length === 3"),
            "the refusals, and the first tenant's client events")
        feed = await text_of(devtools, session, "main")
        accepted = await devtools.evaluate(session, ITEMS)
        methods = await devtools.evaluate(
            session, "[...document.querySelectorAll('#refused summary strong')]"
                     ".map(s => s.innerText)")
        await photograph(devtools, session, folder, "job-site-feed")
        await go(devtools, session, f"feed?tenant={OTHER_TENANT}", "#accepted li a[href]")
        other_feed = {"items": await devtools.evaluate(session, ITEMS),
                      "hint": await text_of(devtools, session, "#accepted-h + p"),
                      "chooser_hidden": await devtools.evaluate(
                          session, "document.getElementById('catalog').hidden")}
        await photograph(devtools, session, folder, "job-site-tenant-feed")
        # Insights with no catalog: the first tenant's, its header chooser aside too
        await go(devtools, session, "insights", "#data-set")
        insights = {"parent": await devtools.evaluate(
                        session, "new URLSearchParams(location.hash.split('?')[1]).get('parent')"),
                    "chooser_hidden": await devtools.evaluate(
                        session, "document.getElementById('catalog').hidden")}
        await go(devtools, session, f"talent?tenant={DEFAULT_TENANT}", "tbody tr + tr + tr")
        rows = await devtools.evaluate(session, "[...document.querySelectorAll('tbody tr')]"
                                                ".map(r => [r.cells[1].innerText, "
                                                "r.cells[4].innerText])")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#tenant-refused li') !== null"),
            "the default tenant's refusal")
        default_refused = await devtools.evaluate(
            session, "[...document.querySelectorAll('#tenant-refused li')]"
                     ".map(li => li.querySelector('.message').innerText)")
        default_hint = await text_of(devtools, session, "section[aria-labelledby] p.hint")
        await photograph(devtools, session, folder, "job-site-default-tenant")
        # the event written with a profile, opened whole
        await focus_and_press(devtools, session, "tbody tr button.link")
        await until(lambda: devtools.evaluate(
            session, "!document.querySelector('section.opened').hidden"), "the event opened")
        opened = await text_of(devtools, session, "section.opened")
        await photograph(devtools, session, folder, "job-site-event-profile")
        await go(devtools, session, f"talent?tenant={OTHER_TENANT}", "#tenant-refused li")
        await focus_and_press(devtools, session, "p.hint button.link")
        refused = {"focused": await devtools.evaluate(session, "document.activeElement.id"),
                   "items": await devtools.evaluate(
                       session, "[...document.querySelectorAll('#tenant-refused li')]"
                                ".map(li => li.querySelector('.message').innerText)")}
        await photograph(devtools, session, folder, "job-site-tenant-refused")
        await no_problems(devtools, session)
        return {"feed": feed, "accepted": accepted, "methods": methods,
                "other_feed": other_feed, "rows": rows,
                "default_refused": default_refused, "default_hint": default_hint,
                "opened": opened, "refused": refused, "insights": insights}


def test_a_job_site_sees_where_its_events_are_and_each_job_by_its_id(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    client_event(port, f"projects/{PROJECT}", "e1", "VIEW", [f"projects/{PROJECT}/jobs/nurse-7"])
    client_event(port, f"projects/{PROJECT}", "e2", "APPLICATION_START",
                 [f"{DEFAULT_TENANT}/jobs/nurse-7"], created="2026-12-01T09:30:00Z",
                 profile=PROFILE)
    # sent late: created before the others, stored after them
    client_event(port, f"projects/{PROJECT}", "e0", "IMPRESSION",
                 [f"projects/{PROJECT}/jobs/nurse-7"], created="2026-12-01T08:00:00Z")
    status, _ = rest(port, "POST", f"/v4/{OTHER_TENANT}/clientEvents", {"eventId": "bad"})
    assert status == 400
    client_event(port, OTHER_TENANT, "e3", "VIEW", [f"{OTHER_TENANT}/jobs/j1"])  # (v4beta1)
    # refused in another tenant: not on t1's page
    status, _ = rest(port, "POST", f"/v4/projects/{PROJECT}/tenants/t2/clientEvents",
                     {"eventId": "other"})
    assert status == 400
    # refused by v4beta1 for the project alone: its default tenant's
    status, _ = rest(port, "POST", f"/v4beta1/projects/{PROJECT}/clientEvents",
                     {"clientEvent": {"eventId": "late", "createTime": "2026-12-01T10:00:00Z"}})
    assert status == 400
    seen = in_chromium(browser_executable, tmp_path / "profile", look, port, shots)
    assert "No catalog holds events yet" not in seen["feed"], seen["feed"]
    # With no catalog, the feed follows the first tenant's client events beside the
    # refusals, newest by create time on top, and says where the other tenant's are.
    assert f"Stored in {DEFAULT_TENANT}" in seen["feed"], seen["feed"]
    assert "the other 1 tenant under Talent events" in seen["feed"], seen["feed"]
    assert [item.split()[2:] for item in seen["accepted"]] == [
        ["APPLICATION_START", "jobs", "nurse-7", "event", "e2", "REST"],
        ["VIEW", "jobs", "nurse-7", "event", "e1", "REST"],
        ["IMPRESSION", "jobs", "nurse-7", "event", "e0", "REST"]], seen["accepted"]
    # Each refusal names its RPC with its API version, as `footfall rejections` does
    # (it said "CreateClientEvent" alone, of v4 and v4beta1 alike).
    assert seen["methods"] == ["talent.v4beta1.EventService/CreateClientEvent"] + [
        "talent.v4.EventService/CreateClientEvent"] * 2, seen["methods"]
    # A tenant named in the URL: its events (the header's catalog chooser steps aside).
    assert [item.split()[2:] for item in seen["other_feed"]["items"]] == [
        ["VIEW", "jobs", "j1", "event", "e3", "REST"]], seen["other_feed"]
    assert seen["other_feed"]["hint"].startswith(f"Stored in {OTHER_TENANT}: the latest 100 "
                                                 "by create time"), seen["other_feed"]
    assert seen["other_feed"]["chooser_hidden"], seen["other_feed"]
    # Insights, asked for no data set, shows the first tenant's: not under a header
    # that said "Catalog: no catalog yet"
    assert seen["insights"] == {"parent": DEFAULT_TENANT, "chooser_hidden": True}, seen
    # The talent page: newest by create time on top (e0, sent last, is the oldest),
    # each job by its id.
    assert seen["rows"] == [["e2", "nurse-7"], ["e1", "nurse-7"], ["e0", "nurse-7"]], seen
    # v4beta1's refusal of the project alone is the default tenant's, and the hint
    # no longer says it is elsewhere.
    assert seen["default_refused"] == ["client_event.job_event: is required"], seen
    assert "project alone" not in seen["default_hint"], seen["default_hint"]
    # an event opened whole shows v4beta1's JobEvent.profile, as it was written
    assert f'"profile": "{PROFILE}"' in seen["opened"], seen["opened"]
    # A tenant's page shows the requests refused that named it (they were only among
    # every project's, on the live feed), and its hint leads to them.
    assert seen["refused"] == {"focused": "tenant-refused-h", "items": [
        "client_event.create_time: is required; client_event.job_event: is required"]}, seen


async def look_at_a_results_page(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#accepted li').length === 2"),
            "the two client events")
        accepted = await devtools.evaluate(session, ITEMS)
        await go(devtools, session, f"talent?tenant={OTHER_TENANT}", "tbody tr + tr")
        rows = await devtools.evaluate(session, "[...document.querySelectorAll('tbody tr')]"
                                                ".map(r => r.cells[4].innerText)")
        await photograph(devtools, session, folder, "job-site-results-page")
        await focus_and_press(devtools, session, "tbody tr + tr button.link")
        await until(lambda: devtools.evaluate(
            session, "!document.querySelector('section.opened').hidden"), "the event opened")
        opened = await text_of(devtools, session, "section.opened")
        await no_problems(devtools, session)
        return {"accepted": accepted, "rows": rows, "opened": opened}


def test_an_impression_of_a_results_page_names_its_first_jobs_on_a_line(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """An impression names every job a results page showed: each was written out on
    the talent page's line and the live feed's, and one of 5,000 jobs filled the table
    (the other columns squeezed to a word a line). A line names the first ten and how
    many more; the event opened whole names them all."""
    port = running.http_port
    jobs = [f"{OTHER_TENANT}/jobs/job-{i}" for i in range(1200)]
    client_event(port, OTHER_TENANT, "shown", "IMPRESSION", jobs)
    client_event(port, OTHER_TENANT, "viewed", "VIEW", jobs[:1], created="2026-12-01T09:01:00Z")
    seen = in_chromium(browser_executable, tmp_path / "profile", look_at_a_results_page, port,
                       shots)
    first_ten = ", ".join(f"job-{i}" for i in range(10))
    assert seen["rows"] == ["job-0", f"{first_ten}, and 1,190 more"], seen["rows"]
    assert " ".join(seen["accepted"][1].split()).split(" jobs ")[1].startswith(
        f"{first_ten}, and 1,190 more event shown"), seen["accepted"]
    assert f"{OTHER_TENANT}/jobs/job-1199" in seen["opened"], seen["opened"][-300:]


async def look_at_the_catalog_pages(devtools_url: str, port: int,
                                    folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#accepted li').length === 1"),
            "the first tenant's client event")
        seen = {}
        for page in ("events", "operations", "products"):
            await go(devtools, session, page, "main p.hint a[href='#talent']")
            seen[page] = await devtools.evaluate(
                session, "[...document.querySelectorAll('main p.hint')].at(-1).innerText")
            await photograph(devtools, session, folder, f"job-site-{page}")
        await focus_and_press(devtools, session, "main p.hint a[href='#talent']")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('tbody tr')"),
                    "the talent page")
        seen["then"] = await devtools.evaluate(session, "location.hash")
        await no_problems(devtools, session)
        return seen


def test_a_job_sites_catalog_pages_say_where_its_client_events_are(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """Events, Operations and Products read a catalog: with client events of two tenants
    and no catalog, they said only "No catalog holds events or products yet", as if
    nothing had been stored."""
    port = running.http_port
    client_event(port, f"projects/{PROJECT}", "e1", "VIEW", [f"projects/{PROJECT}/jobs/j1"])
    client_event(port, OTHER_TENANT, "e2", "VIEW", [f"{OTHER_TENANT}/jobs/j1"])
    seen = in_chromium(browser_executable, tmp_path / "profile", look_at_the_catalog_pages,
                       port, shots)
    for page in ("events", "operations", "products"):
        assert seen[page] == ("No catalog holds events or products yet. The client events "
                              "of 2 talent tenants are under Talent events."), seen
    assert seen["then"] == "#talent", seen


async def follow_the_talent_page_to_the_refusals(devtools_url: str, port: int,
                                                 folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#talent")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector("
                                                       "'main p.hint a[href=\"#feed\"]')"),
                    "the empty talent page's link to the live feed")
        seen = {"said": await text_of(devtools, session, "main p.hint")}
        await photograph(devtools, session, folder, "job-site-every-event-refused")
        await focus_and_press(devtools, session, "main p.hint a[href='#feed']")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#refused li').length === 1"), "the refusal")
        seen["then"] = await devtools.evaluate(session, "location.hash")
        seen["refused"] = await text_of(devtools, session, "#refused li")
        await no_problems(devtools, session)
        return seen


def test_the_talent_page_of_a_job_site_whose_events_were_all_refused_leads_to_why(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """A job site whose first client events were all refused holds no tenant: Talent
    events said only "No tenant holds client events yet", and where the reasons were
    was not said."""
    status, _ = rest(running.http_port, "POST", f"/v4/{OTHER_TENANT}/clientEvents", {
        "eventId": "e1", "createTime": "2026-12-01T09:00:00Z",
        "jobEvent": {"type": "VIEW", "jobs": ["j1"]}})  # (a job by its id alone)
    assert status == 400
    seen = in_chromium(browser_executable, tmp_path / "profile",
                       follow_the_talent_page_to_the_refusals, running.http_port, shots)
    assert seen["said"] == ("No tenant holds client events yet. Client events refused are "
                            "under Live feed, each with why."), seen
    assert seen["then"] == "#feed", seen
    assert "client_event.job_event.jobs[0]" in seen["refused"], seen


async def wait_for_the_first_tenant(devtools_url: str, port: int, folder: Path,
                                    page: str) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#{page}")
        empty = {"talent": "No tenant holds client events yet.",
                 "insights": "No catalog or tenant holds events yet."}[page]
        await until(lambda: devtools.evaluate(
            session, f"!!document.querySelector('main')?.innerText.includes({empty!r})"),
            f"{page}, empty")
        client_event(port, OTHER_TENANT, "first", "VIEW", [f"{OTHER_TENANT}/jobs/j1"])
        # (the console reads the tenants every few seconds: within 10 s, not on reload)
        shown = {"talent": "document.querySelector('tbody tr button.link')?.innerText",
                 "insights": "document.querySelector('#data-set')?.value"}[page]
        seen = await until(lambda: devtools.evaluate(session, shown),
                           f"the first tenant on {page}", within=10)
        await photograph(devtools, session, folder, f"job-site-first-event-{page}")
        await no_problems(devtools, session)
        return str(seen)


@pytest.mark.parametrize("page, shown", [("talent", "first"), ("insights", OTHER_TENANT)])
def test_the_talent_page_and_insights_show_the_first_tenant_once_it_appears(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path, page: str,
        shown: str) -> None:
    """Opened before a job site's first client event, Talent events and Insights said
    "No tenant holds client events yet" (and "No catalog or tenant ...") until they
    were reloaded; the live feed, which follows the first tenant, showed it."""
    assert in_chromium(browser_executable, tmp_path / "profile", wait_for_the_first_tenant,
                       running.http_port, shots, page) == shown


ROWS = "document.querySelectorAll('main tbody tr').length"
TOP = "document.querySelector('main tbody tr button.link').innerText"


async def leave_the_talent_page_open(devtools_url: str, port: int, folder: Path
                                     ) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools,
                                     f"http://127.0.0.1:{port}/console/#talent?tenant={OTHER_TENANT}")
        await until(lambda: devtools.evaluate(session, f"{ROWS} === 1"), "the first event")
        await asyncio.sleep(0.5)  # (its refusals' list, read after it: what comes is news)
        for n in range(KEPT + 10):
            client_event(port, OTHER_TENANT, f"live-{n}", "VIEW", [f"{OTHER_TENANT}/jobs/j1"])
        last = f"live-{KEPT + 9}"
        await until(lambda: devtools.evaluate(session, f"{TOP} === {last!r}"), "the last event")
        seen: dict[str, Any] = {"live": [await devtools.evaluate(session, ROWS),
                                         await devtools.evaluate(session, TOP)]}
        await devtools.evaluate(session, "document.getElementById('feed-pause').click()")
        for n in range(KEPT + 10):
            client_event(port, OTHER_TENANT, f"held-{n}", "VIEW", [f"{OTHER_TENANT}/jobs/j1"])
        # (held as many as the resume shows: of KEPT + 10 that came, the newest KEPT;
        # tests/interop/test_console_job_outcomes.py waits for every one)
        await until(lambda: devtools.evaluate(
            session, f"document.getElementById('feed-held').textContent === "
                     f"'{KEPT} new items held.'"), "the events held")
        await devtools.evaluate(session, "document.getElementById('feed-pause').click()")
        # (the last of them shown live, if it came after the resume)
        newest = f"held-{KEPT + 9}"
        await until(lambda: devtools.evaluate(session, f"{TOP} === {newest!r}"), "the last held")
        seen["resumed"] = [await devtools.evaluate(session, ROWS),
                           await devtools.evaluate(session, TOP),
                           await devtools.evaluate(
                               session, "document.querySelector('main tbody tr:last-child "
                                        "button.link').innerText")]
        await photograph(devtools, session, folder, "talent-kept")
        await no_problems(devtools, session)
        return seen


def test_the_talent_page_keeps_the_newest_events_as_the_live_feed_does(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """The talent page added a row for each client event that came and let none go: a
    page left open on a busy tenant grew for hours (the live feed keeps 200 items a
    column), and a long pause held every event for the resume to build."""
    client_event(running.http_port, OTHER_TENANT, "first", "VIEW", [f"{OTHER_TENANT}/jobs/j1"])
    seen = in_chromium(browser_executable, tmp_path / "profile", leave_the_talent_page_open,
                       running.http_port, shots)
    assert seen["live"] == [KEPT, f"live-{KEPT + 9}"], seen
    # the newest KEPT of those held, the oldest of them at the bottom
    assert seen["resumed"] == [KEPT, f"held-{KEPT + 9}", "held-10"], seen
