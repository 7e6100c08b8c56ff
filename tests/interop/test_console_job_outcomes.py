"""The console's job table shows all fourteen of a job's counts and rates, its four
outcome counts (ListJobStats' notifications, CVs sent, interviews granted, hires)
too, readably at a desktop's and a phone's width: every number and its name within
the table's box, none scrolled or cut away (a column each ran the table 218 px past
a desktop's width, so the page showed none of them). And the Talent events page,
paused, counts as held only what its resume will show (it counted every event and
refusal that came, those its lists would drop too). Client events written with the
official google-cloud-talent client, the page in Debian's headless Chromium. Imports
nothing of ours."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from browser.cdp import DevTools, chromium
from browser.pages import (
    SCREENS,
    focus_and_press,
    no_problems,
    open_console,
    photograph,
    until,
)
from google.api_core import exceptions
from google.cloud import talent_v4

from .console import Console
from .support import ServerProcess, talent_client

SERVICE = "footfall.insights.v1.InsightsService"
PROJECT = "projects/footfall-interop"
TENANT = f"{PROJECT}/tenants/job-outcomes"
TYPE = talent_v4.JobEvent.JobEventType
T = datetime.datetime(2026, 12, 1, 9, tzinfo=datetime.UTC)
KEPT = 200  # the rows the talent page keeps (feed.js KEPT)
LISTED = 100  # the refusals it lists (talent.js LISTED)

pytestmark = pytest.mark.timeout(240)

# Between a desktop's and a phone's width, where the table no longer fits (it scrolled in
# its box, 235 px of it at 1024): each job a card of tiles, as on a phone.
WIDTHS = {**SCREENS, "laptop": (1024, 768, False), "tablet": (768, 1024, True)}

# Each job's events: a number of each type, every column of nurse-7 another number.
EVENTS = {
    "nurse-7": {
        TYPE.IMPRESSION: 12, TYPE.VIEW: 11,
        TYPE.APPLICATION_START: 6, TYPE.APPLICATION_START_FROM_SEARCH: 4,
        TYPE.APPLICATION_FINISH: 5, TYPE.APPLICATION_QUICK_SUBMISSION: 2,
        TYPE.APPLICATION_COMPANY_SUBMIT: 2,
        TYPE.VIEW_REDIRECT: 4, TYPE.APPLICATION_REDIRECT: 2,
        TYPE.APPLICATION_REDIRECT_FROM_SEARCH: 2,
        TYPE.BOOKMARK: 7, TYPE.NOTIFICATION: 6, TYPE.SENT_CV: 5,
        TYPE.INTERVIEW_GRANTED: 4, TYPE.HIRED: 3},
    # a long id (on one line, it ran the table past a phone's card)
    "senior-backend-engineer-1234": {
        TYPE.IMPRESSION: 3, TYPE.VIEW: 5, TYPE.BOOKMARK: 1, TYPE.NOTIFICATION: 2,
        TYPE.SENT_CV: 1},
    # outcomes alone: no rate has a count to divide
    "cook-2": {TYPE.NOTIFICATION: 1, TYPE.HIRED: 2},
}
# What the table shows of each, by its label (the cells' data-label, an outcome's name).
SHOWN = {
    "nurse-7": {"Impressions": "12", "Views": "11", "Application starts": "10",
                "Application finishes": "9", "Redirects": "8", "Bookmarks": "7",
                "Notifications": "6", "CVs sent": "5", "Interviews granted": "4", "Hires": "3",
                "View events ÷ impressions": "91.7%", "Start events ÷ view events": "90.9%",
                "Finish events ÷ start events": "90.0%"},
    "senior-backend-engineer-1234": {
        "Impressions": "3", "Views": "5", "Application starts": "0",
        "Application finishes": "0", "Redirects": "0", "Bookmarks": "1", "Notifications": "2",
        "CVs sent": "1", "Interviews granted": "0", "Hires": "0",
        "View events ÷ impressions": "166.7%", "Start events ÷ view events": "0.0%",
        "Finish events ÷ start events": "–"},
    "cook-2": {"Impressions": "0", "Views": "0", "Application starts": "0",
               "Application finishes": "0", "Redirects": "0", "Bookmarks": "0",
               "Notifications": "1", "CVs sent": "0", "Interviews granted": "0", "Hires": "2",
               "View events ÷ impressions": "–", "Start events ÷ view events": "–",
               "Finish events ÷ start events": "–"},
}
# ListJobStats' fields, by the label the table gives them.
FIELDS = {"Impressions": "impressions", "Views": "views",
          "Application starts": "applicationStarts",
          "Application finishes": "applicationFinishes", "Redirects": "redirects",
          "Bookmarks": "bookmarks", "Notifications": "notifications", "CVs sent": "sentCvs",
          "Interviews granted": "interviewsGranted", "Hires": "hires"}

# Each row as {label: text}: an outcome by its name in the cell, the others by their
# column's (the label a phone's card shows).
READ_ROWS = """[...document.querySelectorAll('#jobs tbody tr')].map(tr => Object.fromEntries(
  [...tr.cells].flatMap(td => td.classList.contains('group')
    ? [...td.querySelectorAll('dl > div')].map(d =>
      [d.dataset.label, d.querySelector('dd').innerText])
    : [[td.dataset.label, td.innerText]])))"""
# What of the table is out of its box (scrolled or cut away): each cell's text and each
# outcome's name and number, by where the browser laid its glyphs; and how much of the
# box scrolls.
OUT_OF_SIGHT = """(() => {
  const box = document.querySelector('#jobs .table');
  const edge = box.getBoundingClientRect();
  const out = [];
  const texts = [...box.querySelectorAll('tbody td:not(.group), tbody dt, tbody dd, thead th')];
  for (const element of texts) {
    const range = document.createRange();
    range.selectNodeContents(element);
    for (const r of range.getClientRects()) {
      if (r.width && (r.left < edge.left - 0.5 || r.right > edge.right + 0.5)) {
        out.push(`${element.innerText}: ${Math.round(r.left)}..${Math.round(r.right)}`);
      }
    }
  }
  return {scrolls: box.scrollWidth - box.clientWidth, out};
})()"""
# At a phone's width each cell says its column's name itself (the headings are hidden).
LABELS = """[...document.querySelectorAll('#jobs tbody td:not(.group)')].map(td =>
  getComputedStyle(td, '::before').content.replace(/^"|"$/g, '') === td.dataset.label)
  .every(Boolean)"""


def job_events() -> Iterator[talent_v4.ClientEvent]:
    n = 0
    for job, counts in EVENTS.items():
        for kind, times in counts.items():
            for _ in range(times):
                n += 1
                yield talent_v4.ClientEvent(
                    request_id=f"r{n}", event_id=f"e{n}",
                    create_time=T + datetime.timedelta(minutes=n),
                    job_event=talent_v4.JobEvent(type_=kind, jobs=[f"{TENANT}/jobs/{job}"]))


def as_shown(job: dict[str, Any]) -> dict[str, str]:
    """ListJobStats' `job` as the table says it (counts only: the rates' own test is
    tests/interop/test_console_insights.py)."""
    return {label: f"{int(job.get(field, 0)):,}" for label, field in FIELDS.items()}


async def read_the_jobs(devtools_url: str, server: ServerProcess, insights: Console,
                        folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(
            devtools, f"http://{server.http_address}/console/#insights?parent={TENANT}")

        async def js(expression: str) -> Any:
            return await devtools.evaluate(session, expression)

        await until(lambda: js("document.querySelectorAll('#jobs tbody tr').length === 3"),
                    "the three jobs")
        seen: dict[str, Any] = {}
        for screen, (width, height, mobile) in WIDTHS.items():
            await devtools.viewport(session, width, height, mobile)
            await until(lambda width=width: js(f"innerWidth === {width}"), f"{screen} width")
            await js("document.getElementById('jobs').scrollIntoView()")
            seen[screen] = {"rows": await js(READ_ROWS), "sight": await js(OUT_OF_SIGHT),
                            "labels": await js(LABELS)}
            if screen not in SCREENS:  # (photograph() takes the other two)
                await devtools.screenshot(session, folder / f"insights-job-outcomes-{screen}.png")
        await devtools.viewport(session, *SCREENS["desktop"])
        seen["headings"] = await js("[...document.querySelectorAll('#jobs button.sort')]"
                                    ".map(b => b.dataset.order)")
        seen["options"] = await js("[...document.querySelectorAll('#jobs select option')]"
                                   ".map(o => o.value)")
        await photograph(devtools, session, folder, "insights-job-outcomes")
        await devtools.color_scheme(session, "dark")
        await photograph(devtools, session, folder, "insights-job-outcomes-dark")
        await devtools.color_scheme(session, "light")

        # Most hires first, by the keyboard: the Hires button in the Outcomes heading.
        await focus_and_press(devtools, session, "#jobs button.sort[data-order=hires]")
        by_hires = [j["job"].split("/")[-1] for j in insights.call(
            "ListJobStats", parent=TENANT, orderBy="hires desc", pageSize=20)["jobs"]]
        first_column = ("[...document.querySelectorAll('#jobs tbody tr')]"
                        ".map(tr => tr.cells[0].innerText).join()")
        await until(lambda: js(f"{first_column} === {','.join(by_hires)!r}"),
                    "the jobs, most hires first")
        seen["sorted"] = {
            "order": by_hires,
            "sort": await js("[...document.querySelectorAll('#jobs th[aria-sort]')]"
                             ".map(th => [th.dataset.label || th.querySelector('.group-title')"
                             "?.innerText, th.getAttribute('aria-sort')])"),
            "focused": await js("document.activeElement.dataset.order"),
            "arrow": await js("document.querySelector('#jobs button.sort[data-order=hires]')"
                              ".innerText"),
            "in the URL": await js("new URLSearchParams(location.hash.split('?')[1])"
                                   ".get('order')")}
        await no_problems(devtools, session)
        return seen


def test_the_job_table_shows_every_count_within_a_desktops_and_a_phones_width(
        browser_executable: str, server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel], shots: Path, tmp_path: Path) -> None:
    server = server_factory()
    with talent_client(server.address) as talent:
        for event in job_events():
            talent.create_client_event(parent=TENANT, client_event=event)
    insights = Console(channels(server), service=SERVICE)
    answered = {j["job"].split("/")[-1]: as_shown(j) for j in insights.call(
        "ListJobStats", parent=TENANT, orderBy="impressions desc", pageSize=20)["jobs"]}
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(read_the_jobs(devtools_url, server, insights, shots),
                                            200))
    for screen in WIDTHS:
        rows = {row.pop("Job"): row for row in seen[screen]["rows"]}
        assert rows == SHOWN, (screen, rows)
        for job, counts in answered.items():  # as the RPC answers, every count
            assert {label: rows[job][label] for label in counts} == counts, (screen, job)
        assert list(rows) == ["nurse-7", "senior-backend-engineer-1234", "cook-2"], screen
        assert seen[screen]["sight"] == {"scrolls": 0, "out": []}, (screen, seen[screen])
    for screen in ("laptop", "tablet", "phone"):  # (the headings hidden, each cell named)
        assert seen[screen]["labels"], seen[screen]
    outcomes = ["notifications", "sent_cvs", "interviews_granted", "hires"]
    assert seen["headings"] == ["job", "impressions", "views", "application_starts",
                                "application_finishes", "redirects", "bookmarks", *outcomes,
                                "view_rate", "application_start_rate",
                                "application_finish_rate"], seen["headings"]
    for order in outcomes:  # (the phone's way to sort, its headings hidden)
        assert f"{order} desc" in seen["options"] and order in seen["options"], seen["options"]
    assert seen["sorted"] == {"order": ["nurse-7", "cook-2", "senior-backend-engineer-1234"],
                              "sort": [["Outcomes", "descending"]], "focused": "hires",
                              "arrow": "Hires ▼",
                              "in the URL": "hires desc"}, seen


# -- the Talent events page, paused ------------------------------------------------

# Every number the page's hidden news region says (it speaks every few seconds at most),
# added up: what arrived, shown or held.
HEAR = """window.heard = {events: 0, refused: 0};
new MutationObserver(() => {
  const said = document.getElementById('feed-news').textContent;
  heard.events += Number(said.match(/([\\d,]+) new events?/)?.[1].replace(/,/g, '') || 0);
  heard.refused += Number(said.match(/([\\d,]+) requests? refused/)?.[1].replace(/,/g, '') || 0);
}).observe(document.getElementById('feed-news'), {childList: true, characterData: true,
                                                   subtree: true})"""
ROWS = "document.querySelectorAll('main tbody tr').length"
REFUSALS = "document.querySelectorAll('#tenant-refused li').length"


def refuse(talent: talent_v4.EventServiceClient, event_id: str) -> None:
    """A client event with no job event: refused, naming the tenant."""
    with pytest.raises(exceptions.InvalidArgument):
        talent.create_client_event(parent=TENANT, client_event=talent_v4.ClientEvent(
            request_id="r", event_id=event_id, create_time=T))


async def pause_the_talent_page(devtools_url: str, server: ServerProcess,
                                talent: talent_v4.EventServiceClient,
                                folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(
            devtools, f"http://{server.http_address}/console/#talent?tenant={TENANT}")

        async def js(expression: str) -> Any:
            return await devtools.evaluate(session, expression)

        # (the refusals are read after the events: once one is shown, both lists are in)
        await until(lambda: js(f"{ROWS} === 1 && {REFUSALS} === 1"), "the first of each")
        await js(HEAR)
        await focus_and_press(devtools, session, "#feed-pause")
        events = [talent_v4.ClientEvent(
            request_id="r", event_id=f"held-{n}", create_time=T + datetime.timedelta(minutes=n),
            job_event=talent_v4.JobEvent(type_=TYPE.VIEW, jobs=[f"{TENANT}/jobs/j"]))
            for n in range(KEPT + 10)]
        for n, event in enumerate(events):
            talent.create_client_event(parent=TENANT, client_event=event)
            if n < LISTED + 10:
                refuse(talent, f"refused-{n}")
        await until(lambda: js(f"heard.events === {KEPT + 10} && heard.refused === {LISTED + 10}"),
                    "every event and refusal, come while paused")
        seen: dict[str, Any] = {"paused": [await js(ROWS), await js(REFUSALS), await js(
            "document.getElementById('feed-held').textContent")]}
        await photograph(devtools, session, folder, "talent-paused")
        await focus_and_press(devtools, session, "#feed-pause")
        seen["resumed"] = [await js(ROWS), await js(REFUSALS),
                           await js("document.querySelector('main tbody tr button.link')"
                                    ".innerText"),
                           await js("document.querySelector('main tbody tr:last-child "
                                    "button.link').innerText"),
                           await js("document.getElementById('feed-held').textContent")]
        await no_problems(devtools, session)
        return seen


def test_a_paused_talent_page_counts_as_held_only_what_its_resume_shows(
        browser_executable: str, server_factory: Callable[..., ServerProcess], shots: Path,
        tmp_path: Path) -> None:
    """KEPT + 10 events and LISTED + 10 refusals came while paused: the resume shows
    the newest KEPT events (the table keeps no more) and LISTED refusals (the list
    shows no more), and the line said "320 new items held": every one that came."""
    server = server_factory()
    with talent_client(server.address) as talent:
        talent.create_client_event(parent=TENANT, client_event=talent_v4.ClientEvent(
            request_id="r", event_id="first", create_time=T,
            job_event=talent_v4.JobEvent(type_=TYPE.VIEW, jobs=[f"{TENANT}/jobs/j"])))
        refuse(talent, "refused-first")
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            seen = asyncio.run(asyncio.wait_for(
                pause_the_talent_page(devtools_url, server, talent, shots), 200))
    assert seen["paused"] == [1, 1, f"{KEPT + LISTED} new items held."], seen
    assert seen["resumed"] == [KEPT, LISTED, f"held-{KEPT + 9}", "held-10", ""], seen
