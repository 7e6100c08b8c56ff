"""axe-core, Deque's accessibility engine, run in every page of the console at a
desktop's and a phone's width, light and dark, with its rules as they come (WCAG 2.x
A and AA, and its best practices): no violation may be found, whatever its impact (not
only serious and critical: the one found, a second "Per product" landmark inside the
first on the insights page, was moderate). Each page is photographed as audited; what
was found is written to axe-pages.json and axe-key.json beside the screenshots.

axe-core is a test-only npm package (tests/browser/axe, installed by `make
test-tools`); without it the test skips, loudly, as without chromium.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from server.app import Running

from .cdp import DevTools
from .pages import CALLER_UNKNOWN, SCREENS, in_chromium, no_problems, open_console, until
from .test_console import CATALOG, PROJECT, READER_KEY, TENANT, keyed_shop, rest, write

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCHEMES = ("light", "dark")

# Rules not run, each with why (none: every rule axe runs by default passes).
DISABLED: dict[str, str] = {}
# Rules axe does not run by default, run here: a control a finger can hit on a phone
# (WCAG 2.2's 2.5.8, 24 by 24 CSS pixels, or that far from the next one).
ENABLED = ("target-size",)

pytestmark = pytest.mark.timeout(540)


def axe_source() -> str:
    if not AXE.exists():
        pytest.skip("ACCESSIBILITY TEST SKIPPED: axe-core is not installed "
                    "(`make test-tools` installs it: npm ci --prefix tests/browser/axe)")
    return AXE.read_text()


# Each page audited: its name, its URL's hash (`{event}`: an accepted event's link),
# what shows it is ready, and what is done on it before (the refusals opened).
PAGES = (
    # first, while the big import runs: its card has a Cancel button
    ("operations", "operations", "article.operation[data-state=running]",
     "document.querySelectorAll('details.samples').forEach(d => d.open = true)"),
    ("feed", "feed", "#accepted a.event", ""),
    ("refusals", "feed", "#refused details summary",  # (and the feed paused)
     "document.querySelectorAll('#refused details').forEach(d => d.open = true);"
     "document.getElementById('feed-pause').click()"),
    ("events", "events", ".results tbody a", ""),
    ("events-filtered", "events?filter=" + 'eventType%3D%22search%22', ".results tbody a", ""),
    ("event", "{event}", "pre.json", ""),
    ("products", "products", "main td[data-label=Availability]", ""),
    ("talent", "talent", "main tbody button.link", ""),
    ("insights", "insights", "main figure.insight svg",
     "document.querySelectorAll('main details').forEach(d => d.open = true)"),
    ("catalogs", "catalogs", "main tbody button.link", ""),
    ("feed-tenant", f"feed?tenant={TENANT}", "#accepted li a", ""),
    ("insights-tenant", f"insights?parent={TENANT}", "main figure.insight svg",
     "document.querySelectorAll('main details').forEach(d => d.open = true)"),
)


async def audit(devtools: DevTools, session: str, source: str) -> list[dict[str, Any]]:
    """The violations axe finds in the page as it is: rule, impact, the nodes."""
    if not await devtools.evaluate(session, "typeof axe !== 'undefined'"):
        await devtools.evaluate(session, source)
    rules = json.dumps({**{rule: {"enabled": True} for rule in ENABLED},
                        **{rule: {"enabled": False} for rule in DISABLED}})
    found = await devtools.evaluate(session, f"""axe.run(document, {{
        resultTypes: ["violations"], rules: {rules}}}).then(r => ({{
          passed: r.passes.length,
          ran: [...r.passes, ...r.incomplete, ...r.violations].map(v => v.id),
          violations: r.violations.map(v => ({{
            rule: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({{target: n.target.join(" "),
                                       summary: n.failureSummary, html: n.html.slice(0, 200)}}))
          }}))}}))""")
    # (a run that checked nothing would find nothing too)
    assert found["passed"] >= 10, found
    assert set(ENABLED) <= set(found["ran"]), found["ran"]
    return list(found["violations"])


async def audit_each_page(devtools_url: str, port: int, folder: Path) -> list[dict[str, Any]]:
    source = axe_source()
    found: list[dict[str, Any]] = []
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('#accepted a')"),
                    "the feed")
        event = await devtools.evaluate(
            session, "document.querySelector('#accepted a.event').getAttribute('href')")
        for name, hash_, ready, before in PAGES:
            hash_ = hash_.replace("{event}", event.lstrip("#"))
            await devtools.evaluate(session, f"location.hash = {hash_!r}")
            await until(lambda ready=ready: devtools.evaluate(
                session, f"!!document.querySelector({ready!r})"), f"the {name} page")
            await asyncio.sleep(0.5)  # (the rest of its reads)
            if before:
                await devtools.evaluate(session, before)
            found += await audit_screens(devtools, session, source, folder, name)
        await no_problems(devtools, session)
    return found


async def audit_screens(devtools: DevTools, session: str, source: str, folder: Path,
                        name: str) -> list[dict[str, Any]]:
    """The page audited at each width in each scheme, photographed as audited."""
    found = []
    for scheme in SCHEMES:
        await devtools.color_scheme(session, scheme)
        for screen, (width, height, mobile) in SCREENS.items():
            await devtools.viewport(session, width, height, mobile)
            await asyncio.sleep(0.3)  # one layout and paint
            for violation in await audit(devtools, session, source):
                found.append({"page": name, "screen": screen, "scheme": scheme, **violation})
            await devtools.screenshot(session, folder / f"axe-{name}-{screen}-{scheme}.png")
    await devtools.color_scheme(session, "light")
    await devtools.viewport(session, *SCREENS["desktop"])
    return found


def fill_a_shop(running: Running) -> None:
    """An event of each kind the pages show, a refusal, an import running and one
    whose lines failed, a product and a job site's event."""
    port = running.http_port
    write(port, eventType="home-page-view", visitorId="v-home")
    write(port, eventType="search", visitorId="v-search", searchQuery="tent")
    write(port, eventType="detail-page-view", visitorId="v-detail",
          productDetails=[{"product": {"id": "socks"}}])
    status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                     {"eventType": "add-to-cart", "visitorId": "v" * 200})
    assert status == 400
    status, answer = rest(port, "POST",
                          f"/v2/{CATALOG}/branches/default_branch/products?productId=socks",
                          {"title": "Socks", "categories": ["Clothes"]})
    assert status == 200, answer
    status, _ = rest(port, "POST", f"/v4/{TENANT}/clientEvents", {
        "eventId": "e-1", "createTime": "2026-01-01T00:00:00Z",
        "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j"]}})
    assert status == 200
    bucket = Path(running.settings.gcs_root) / "lines"
    bucket.mkdir(parents=True)
    (bucket / "bad.json").write_text('{"eventType": "search"}\n')
    status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:import", {
        "inputConfig": {"gcsSource": {"inputUris": ["gs://lines/bad.json"]}}})
    assert status == 200
    # Running while the operations page is audited: its Cancel button shows.
    (bucket / "many.json").write_text("".join(
        json.dumps({"eventType": "home-page-view", "visitorId": f"old-{n}",
                    "eventTime": "2025-06-01T00:00:00Z"}) + "\n" for n in range(200_000)))
    status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:import", {
        "inputConfig": {"gcsSource": {"inputUris": ["gs://lines/many.json"]}}})
    assert status == 200


def described(found: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['page']} {v['screen']} {v['scheme']}: {v['rule']} ({v['impact']}) x{len(v['nodes'])}"
        f" {v['nodes'][0]['target']}: {v['nodes'][0]['summary']}" for v in found)


def keep(found: list[dict[str, Any]], folder: Path, name: str) -> None:
    (folder / f"axe-{name}.json").write_text(json.dumps(found, indent=1))
    print(described(found))


def test_no_page_of_the_console_has_an_accessibility_violation(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    fill_a_shop(running)
    started = time.monotonic()
    found = in_chromium(browser_executable, tmp_path / "profile", audit_each_page,
                        running.http_port, shots, within=480)  # (a loaded CI took 249 s)
    print(f"audited in {time.monotonic() - started:.1f}s")
    keep(found, shots, "pages")
    assert not found, described(found)


async def audit_the_key_prompt(devtools_url: str, port: int, folder: Path
                               ) -> list[dict[str, Any]]:
    source = axe_source()
    async with DevTools.connect(devtools_url) as devtools:
        # (the project's form too: what a server that cannot say what a key grants asks;
        # the choice of a key's projects is audited in test_console_caller)
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/",
                                     script=CALLER_UNKNOWN)
        await until(lambda: devtools.evaluate(session, "document.querySelector('dialog')?.open"),
                    "the key dialog")
        found = await audit_screens(devtools, session, source, folder, "key")
        await devtools.press(session, "Escape")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main').innerText.includes('No API key given')"),
            "the page saying no key was given")
        found += await audit_screens(devtools, session, source, folder, "key-declined")
        await devtools.evaluate(session, "document.getElementById('key-button').click()")
        await until(lambda: devtools.evaluate(session, "document.querySelector('dialog')?.open"),
                    "the key dialog again")
        await devtools.type_text(session, READER_KEY)
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(session, "document.activeElement?.id === 'project'"),
                    "the project's form")
        found += await audit_screens(devtools, session, source, folder, "project")
        await devtools.type_text(session, PROJECT)
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted')?.innerText.includes('keyed')"),
            "the event, read with the reader key")
        await no_problems(devtools, session)
    return found


def test_no_accessibility_violation_while_the_console_asks_for_a_key(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    with keyed_shop(tmp_path) as running:
        found = in_chromium(browser_executable, tmp_path / "profile", audit_the_key_prompt,
                            running.http_port, shots)
    keep(found, shots, "key")
    assert not found, described(found)



# Installed once the feed shows: each thing its live region says, with when.
HEAR = """window.heard = [];
const region = document.getElementById('feed-news');
new MutationObserver(() => heard.push({said: region.textContent, at: performance.now()}))
  .observe(region, {subtree: true, childList: true, characterData: true});"""
NEW_EVENTS = 12
NEW_REFUSALS = 2


async def hear_the_feed(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#accepted a.event').length === 3 && "
                     "!!document.querySelector('#refused details')"), "the feed")
        if not await devtools.evaluate(session, "!!document.getElementById('feed-news')"):
            return {"region": None}
        await devtools.evaluate(session, HEAR)
        await asyncio.sleep(2)  # (what was listed on opening is no news)
        seen: dict[str, Any] = {"on opening": await devtools.evaluate(session, "heard.length")}
        region = await devtools.evaluate(session, """(e => e && {
            role: e.getAttribute('role'),
            live: e.parentElement.closest('[aria-live]')?.getAttribute('aria-live') ?? null,
            listsLive: [...document.querySelectorAll('ol.feed')].some(
              l => l.closest('[aria-live],[role=status],[role=log]') !== null)})
            (document.getElementById('feed-news'))""")
        seen["region"] = region
        for n in range(NEW_EVENTS):
            write(port, eventType="home-page-view", visitorId=f"new-{n}")
            if n < NEW_REFUSALS:
                status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                                 {"eventType": "add-to-cart", "visitorId": f"bad-{n}"})
                assert status == 400
        await until(lambda: devtools.evaluate(
            session, f"document.querySelectorAll('#accepted a.event').length === "
                     f"{3 + NEW_EVENTS}"), "the new events")
        await asyncio.sleep(7)  # (the last of them said)
        seen["heard"] = await devtools.evaluate(session, "heard")
        await photograph_phone(devtools, session, folder)
        await no_problems(devtools, session)
        return seen


async def photograph_phone(devtools: DevTools, session: str, folder: Path) -> None:
    await devtools.viewport(session, *SCREENS["phone"])
    await asyncio.sleep(0.3)
    await devtools.screenshot(session, folder / "feed-heard-phone.png")


def test_the_live_feed_tells_a_screen_reader_what_came_every_few_seconds(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """A screen reader heard nothing of new events (no live region), and the lists
    made live would have read each of 200 events as it came. Now one hidden status
    sums up what came, at most every 5 s; what was there on opening is not said."""
    for n in range(3):
        write(running.http_port, eventType="home-page-view", visitorId=f"old-{n}")
    status, _ = rest(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                     {"eventType": "add-to-cart", "visitorId": "old-bad"})
    assert status == 400
    seen = in_chromium(browser_executable, tmp_path / "profile", hear_the_feed,
                       running.http_port, shots)
    assert seen["region"] == {"role": "status", "live": None, "listsLive": False}, seen
    assert seen["on opening"] == 0, seen
    sentences = seen["heard"]
    assert 1 <= len(sentences) <= 3, seen  # (not one a request)
    gaps = [b["at"] - a["at"] for a, b in zip(sentences, sentences[1:], strict=False)]
    assert all(gap >= 4500 for gap in gaps), seen
    events = refusals = 0
    for sentence in sentences:
        found = re.fullmatch(r"(?:(\d+) new events?)?(?:, )?(?:(\d+) requests? refused)?\.",
                             sentence["said"])
        assert found, sentence
        events += int(found[1] or 0)
        refusals += int(found[2] or 0)
    assert (events, refusals) == (NEW_EVENTS, NEW_REFUSALS), seen
