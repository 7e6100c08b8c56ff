"""The insights' per-job rates say what they divide: client events over client events,
not searches and not job seekers, so 400% is a job viewed 4 times for 1 impression,
not a conversion gone wrong. (They were titled "View rate", "Start rate" and "Finish
rate", as the product's was "Purchases ÷ views" before it said it divides events.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools, chromium
from .pages import no_problems, open_console, photograph, until
from .test_console import DEADLINE, rest

TENANT = "projects/jobs-board/tenants/t1"
TITLES = ("View events ÷ impressions", "Start events ÷ view events",
          "Finish events ÷ start events")


def client_event(port: int, event_id: str, kind: str, job: str) -> None:
    status, answer = rest(port, "POST", f"/v4/{TENANT}/clientEvents", {
        "eventId": event_id, "requestId": "r1", "createTime": "2026-12-01T09:00:00Z",
        "jobEvent": {"type": kind, "jobs": [f"{TENANT}/jobs/{job}"]}})
    assert status == 200, answer


def write_known_events(port: int) -> None:
    """nurse-7: 1 impression, 4 views (opened again), 2 starts, 1 finish: 400%, 50%,
    50%. cook-2: 2 impressions, 1 view: 50%, and no start to divide by."""
    kinds = ["IMPRESSION"] + ["VIEW"] * 4 + ["APPLICATION_START"] * 2 + ["APPLICATION_FINISH"]
    for n, kind in enumerate(kinds):
        client_event(port, f"nurse-{n}", kind, "nurse-7")
    for n, kind in enumerate(("IMPRESSION", "IMPRESSION", "VIEW")):
        client_event(port, f"cook-{n}", kind, "cook-2")


async def read_the_table(devtools_url: str, port: int, shots: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(
            devtools, f"http://127.0.0.1:{port}/console/#insights?parent={TENANT}")
        rows = ("[...document.querySelectorAll('#jobs tbody tr')].map(tr => "
                "Object.fromEntries([...tr.cells].map(td => [td.dataset.label, td.innerText])))")
        await until(lambda: devtools.evaluate(session, f"{rows}.length === 2"), "the jobs")
        seen = {"rows": await devtools.evaluate(session, rows),
                "headings": await devtools.evaluate(
                    session, "[...document.querySelectorAll('#jobs th')]"
                             ".map(th => [th.innerText, th.title])"),
                "below": await devtools.evaluate(
                    session, "document.querySelector('#jobs p.about')?.innerText"),
                # each job's id on one line (beside the rates, "nurse-7" broke at its "-")
                "id_lines": await devtools.evaluate(
                    session, "[...document.querySelectorAll('#jobs tbody td:first-child span')]"
                             ".map(span => span.getClientRects().length)"),
                # (at a desktop's width the whole table shows, with no scrolling)
                "hidden_width": await devtools.evaluate(
                    session, "(t => t.scrollWidth - t.clientWidth)"
                             "(document.querySelector('#jobs .table'))")}
        await devtools.evaluate(session, "document.getElementById('jobs').scrollIntoView()")
        await photograph(devtools, session, shots, "insights-jobs")
        await no_problems(devtools, session)
        return seen


def test_the_per_job_rates_say_they_divide_events(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    write_known_events(running.http_port)
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(read_the_table(
            devtools_url, running.http_port, shots), DEADLINE * 2))
    rates = {row["Job"]: tuple(row.get(title) for title in TITLES) for row in seen["rows"]}
    assert rates == {"nurse-7": ("400.0%", "50.0%", "50.0%"),
                     "cook-2": ("50.0%", "0.0%", "–")}, seen["rows"]
    titled = {text.replace("▼", "").replace("▲", "").strip(): tip
              for text, tip in seen["headings"]}
    for title in TITLES:
        assert "a ratio of events, not of searches or job seekers" in titled[title], titled
    assert seen["hidden_width"] <= 0, seen["hidden_width"]
    assert seen["id_lines"] == [1, 1], seen["id_lines"]
    assert "passes 100% when a job is viewed more often than it was shown" in seen["below"]
    assert "its steps IMPRESSION and VIEW, Breakdown by job" in seen["below"], seen["below"]
