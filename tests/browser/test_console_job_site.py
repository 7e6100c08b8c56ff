"""A job site's first look at the console, held here: its client events were stored,
yet the live feed said "No catalog holds events yet" and Accepted 0 beside their
refusals; and on the talent page a job of a project's default tenant stood under two
names, by its id when an event named it in the tenant's form and in full
(projects/P/jobs/J) when it came as talent v4beta1's samples name it; and the requests
refused that named a tenant were to be found only among every project's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

PROJECT = "jobs-board"
DEFAULT_TENANT = f"projects/{PROJECT}/tenants/default_tenant"
OTHER_TENANT = f"projects/{PROJECT}/tenants/t1"


def client_event(port: int, parent: str, event_id: str, kind: str, jobs: list[str]) -> None:
    """One client event written over REST by talent v4beta1 (its parent a project
    alone: its default tenant)."""
    status, answer = rest(port, "POST", f"/v4beta1/{parent}/clientEvents", {"clientEvent": {
        "eventId": event_id, "requestId": "r1", "createTime": "2026-12-01T09:00:00Z",
        "jobEvent": {"type": kind, "jobs": jobs}}})
    assert status == 200, answer


async def look(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#refused li') !== null"), "the refusal")
        feed = await text_of(devtools, session, "main")
        await photograph(devtools, session, folder, "job-site-feed")
        await go(devtools, session, f"talent?tenant={DEFAULT_TENANT}", "tbody tr + tr")
        jobs = await devtools.evaluate(session, "[...document.querySelectorAll('tbody tr')]"
                                                ".map(r => r.cells[4].innerText)")
        await photograph(devtools, session, folder, "job-site-default-tenant")
        # (v4beta1's refusals of the project alone are kept under the project: said so)
        default_hint = await text_of(devtools, session, "section[aria-labelledby] p.hint")
        await go(devtools, session, f"talent?tenant={OTHER_TENANT}", "#tenant-refused li")
        await focus_and_press(devtools, session, "p.hint button.link")
        refused = {"focused": await devtools.evaluate(session, "document.activeElement.id"),
                   "items": await devtools.evaluate(
                       session, "[...document.querySelectorAll('#tenant-refused li')]"
                                ".map(li => li.querySelector('.message').innerText)")}
        await photograph(devtools, session, folder, "job-site-tenant-refused")
        await no_problems(devtools, session)
        return {"feed": feed, "jobs": jobs, "refused": refused, "default_hint": default_hint}


def test_a_job_site_sees_where_its_events_are_and_each_job_by_its_id(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    client_event(port, f"projects/{PROJECT}", "e1", "VIEW", [f"projects/{PROJECT}/jobs/nurse-7"])
    client_event(port, f"projects/{PROJECT}", "e2", "APPLICATION_START",
                 [f"{DEFAULT_TENANT}/jobs/nurse-7"])
    status, _ = rest(port, "POST", f"/v4/{OTHER_TENANT}/clientEvents", {"eventId": "bad"})
    assert status == 400
    client_event(port, OTHER_TENANT, "e3", "VIEW", [f"{OTHER_TENANT}/jobs/j1"])  # (v4beta1)
    # refused in another tenant: not on t1's page
    status, _ = rest(port, "POST", f"/v4/projects/{PROJECT}/tenants/t2/clientEvents",
                     {"eventId": "other"})
    assert status == 400
    seen = in_chromium(browser_executable, tmp_path / "profile", look, port, shots)
    assert "No catalog holds events yet" not in seen["feed"], seen["feed"]
    assert "Client events are stored in 2 tenants: see Talent events." in seen["feed"], seen
    assert seen["jobs"] == ["nurse-7", "nurse-7"], seen["jobs"]
    # A tenant's page shows the requests refused that named it (they were only among
    # every project's, on the live feed), and its hint leads to them.
    assert "nor does one that named the project alone" in seen["default_hint"], seen
    assert seen["refused"] == {"focused": "tenant-refused-h", "items": [
        "client_event.create_time: is required; client_event.job_event: is required"]}, seen
