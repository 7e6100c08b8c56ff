"""Insights of a talent tenant whose client sent only profile events (talent
v4beta1's former kind, which Footfall refuses: it stores job events only): the
per-job table said "Nothing in this time range.", as if nothing had been sent, while
the store kept each refusal. It now says what was refused, from those refusals (the
tenant's ListRejections), and where to see them; a range that holds nothing is still
"Nothing in this time range."."""

from __future__ import annotations

import json
from pathlib import Path

from server.app import Running

from .cdp import DevTools
from .pages import in_chromium, no_problems, open_console, photograph, until
from .test_console import rest

TENANT = "projects/job-site/tenants/candidates"
PER_JOB = "document.querySelector('#jobs tbody')?.innerText || ''"
LINK = "document.querySelector('#jobs tbody a')?.getAttribute('href') || ''"


def profile_event(port: int, event_id: str) -> None:
    """A talent v4beta1 client event holding a profile_event, sent over REST: refused."""
    status, answer = rest(port, "POST", f"/v4beta1/{TENANT}/clientEvents", {"clientEvent": {
        "eventId": event_id, "requestId": "r1", "createTime": "2026-12-01T09:00:00Z",
        "profileEvent": {"type": "VIEW", "profiles": [f"{TENANT}/profiles/p1"]}}})
    assert status == 400 and "client_event.profile_event" in json.dumps(answer), answer


async def per_job(devtools_url: str, port: int, folder: Path) -> dict[str, str]:
    seen = {}
    async with DevTools.connect(devtools_url) as devtools:
        for name, query in (("refused", ""), ("nothing", "&start=2020-01-01T00:00:00Z"
                                                        "&end=2020-01-02T00:00:00Z")):
            session = await open_console(
                devtools, f"http://127.0.0.1:{port}/console/#insights?parent={TENANT}{query}")
            seen[name] = await until(lambda s=session: devtools.evaluate(s, PER_JOB),
                                     "the per-job table")
            seen[f"{name} link"] = await devtools.evaluate(session, LINK)
            await no_problems(devtools, session)
            if name == "refused":
                await devtools.evaluate(session, "document.getElementById('jobs')"
                                                 ".scrollIntoView()")
                await photograph(devtools, session, folder, "insights-only-profile-events")
    return seen


def test_the_job_table_of_a_tenant_of_profile_events_says_they_were_refused(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    for n in range(3):
        profile_event(running.http_port, f"p{n}")
    status, _ = rest(running.http_port, "POST", f"/v4/{TENANT}/clientEvents", {"eventId": "x"})
    assert status == 400  # (another refusal of the tenant: no create_time nor job_event)
    seen = in_chromium(browser_executable, tmp_path / "profile", per_job, running.http_port,
                       shots, within=120)
    assert seen["refused"] == (
        "No job events are stored in this time range: 3 profile events sent to this tenant "
        "were refused, as Footfall stores job events only (profile events were talent "
        "v4beta1's, since taken out of it), and 1 other request was refused. Its talent "
        "events page shows each refusal and why."), seen
    assert seen["refused link"] == "#talent?tenant=projects%2Fjob-site%2Ftenants%2Fcandidates"
    # (the refusals are of now: none in 2020)
    assert (seen["nothing"], seen["nothing link"]) == ("Nothing in this time range.", ""), seen

