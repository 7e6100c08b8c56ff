"""The console asks the server what its key grants (GET /console/v1/caller): a key of
one project goes straight to that project's events, with no project to name; a key
of two is offered those two, one button each. It asked "Which project?" of a key
granted one project, and had a key of several type their names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .conftest import serve
from .pages import focus_and_press, in_chromium, no_problems, open_console, photograph, until
from .test_console import rest
from .test_console_accessibility import audit_screens, axe_source, described, keep

ONE = "reader-of-one-shop-for-the-caller-test"
TWO = "reader-of-two-shops-for-the-caller-test"
WRITER = "writer-of-the-shops-for-the-caller-test"
SHOPS = ("shop-a", "shop-b")
ACCEPTED = "document.querySelector('#accepted')?.innerText || ''"
# What the page showed in <main> at any time: its headings, and whether the project's
# form (its text box) was ever on it, recorded from the first script on.
WATCH_MAIN = """
window.seenHeadings = []; window.formSeen = false;
new MutationObserver(() => {
  const main = document.getElementById('main');
  if (!main) return;
  const heading = main.querySelector('h2')?.textContent;
  if (heading && seenHeadings.at(-1) !== heading) seenHeadings.push(heading);
  if (main.querySelector('#project')) formSeen = true;
}).observe(document, {childList: true, subtree: true});
"""


def catalog(shop: str) -> str:
    return f"projects/{shop}/locations/global/catalogs/default_catalog"


@contextmanager
def shops(tmp_path: Path) -> Iterator[Running]:
    """A server checking keys, with an event in each shop's catalog (visitor
    "in-<shop>"); ONE reads shop-a, TWO reads both."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {
        ONE: {"projects": [SHOPS[0]], "role": "reader", "name": "one shop"},
        TWO: {"projects": list(SHOPS), "role": "reader", "name": "two shops"},
        WRITER: {"projects": list(SHOPS), "role": "writer", "name": "shops"}}}))
    with serve(tmp_path, auth_file=str(keys)) as running:
        for shop in SHOPS:
            status, answer = rest(running.http_port, "POST",
                                  f"/v2/{catalog(shop)}/userEvents:write",
                                  {"eventType": "home-page-view", "visitorId": f"in-{shop}",
                                   "eventTime": "2026-01-01T00:00:00Z"},
                                  {"x-goog-api-key": WRITER})
            assert status == 200, answer
        yield running


async def open_watched(devtools: DevTools, port: int, key: str) -> str:
    return await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed", key,
                              script=WATCH_MAIN)


async def one_then_two(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_watched(devtools, port, ONE)
        await until(lambda: devtools.evaluate(session, f"({ACCEPTED}).includes('in-shop-a')"),
                    "the one shop's event, with no project named")
        seen["one"] = await devtools.evaluate(session, """({
            headings: seenHeadings, formSeen, project: sessionStorage.getItem('footfall.project'),
            projectButton: document.getElementById('project-button').hidden,
            keyTitle: document.getElementById('key-button').title})""")
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "caller-one-project")

        session = await open_watched(devtools, port, TWO)
        await until(lambda: devtools.evaluate(
            session, "document.activeElement?.classList.contains('project-choice')"),
            "the choice of the key's projects")
        seen["offered"] = await devtools.evaluate(session, """({
            heading: document.querySelector('main h2').textContent,
            said: document.querySelector('main').innerText,
            choices: [...document.querySelectorAll('main .project-choice')].map(b => b.textContent),
            focused: document.activeElement.textContent})""")
        await photograph(devtools, session, folder, "caller-two-projects")
        await focus_and_press(devtools, session, ".project-choice[data-project='shop-b']")
        await until(lambda: devtools.evaluate(session, f"({ACCEPTED}).includes('in-shop-b')"),
                    "the chosen shop's event")
        seen["chosen"] = await devtools.evaluate(session, f"""({{
            feed: {ACCEPTED}, formSeen,
            catalog: document.getElementById('catalog').value,
            projectButton: document.getElementById('project-button').hidden}})""")
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "caller-two-projects-chosen")
    return seen


def test_one_project_goes_straight_in_and_two_are_offered_as_a_choice(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    with shops(tmp_path) as running:
        seen = in_chromium(browser_executable, tmp_path / "profile", one_then_two,
                           running.http_port, shots)
    one = seen["one"]
    assert "Which project?" not in one["headings"] and not one["formSeen"], one
    assert one["project"] == SHOPS[0], one
    assert one["projectButton"], one  # (no other project to change to)
    assert one["keyTitle"] == "Reading with the key one shop (reader)", one
    offered = seen["offered"]
    assert offered["heading"] == "Which project?", offered
    assert offered["choices"] == list(SHOPS) and offered["focused"] == SHOPS[0], offered
    assert "This key may read 2 projects" in offered["said"], offered
    chosen = seen["chosen"]
    assert "in-shop-a" not in chosen["feed"] and not chosen["formSeen"], chosen
    assert chosen["catalog"] == catalog(SHOPS[1]), chosen
    assert not chosen["projectButton"], chosen  # ("Change project": the other one)


async def audit_the_choice(devtools_url: str, port: int, folder: Path) -> list[dict[str, Any]]:
    source = axe_source()
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_watched(devtools, port, TWO)
        await until(lambda: devtools.evaluate(
            session, "document.activeElement?.classList.contains('project-choice')"),
            "the choice of the key's projects")
        found = await audit_screens(devtools, session, source, folder, "project-choice")
        await no_problems(devtools, session)
    return found


def test_no_accessibility_violation_in_the_choice_of_projects(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    with shops(tmp_path) as running:
        found = in_chromium(browser_executable, tmp_path / "profile", audit_the_choice,
                            running.http_port, shots)
    keep(found, shots, "project-choice")
    assert not found, described(found)


# What the page shows, and whether anything of it was a refusal (in red) or a read.
WRITER_SEEN = """({
  heading: document.querySelector('main h2')?.textContent,
  said: document.querySelector('main').innerText,
  refusals: document.querySelectorAll('main .error').length,
  headings: seenHeadings, formSeen,
  reads: performance.getEntriesByType('resource').map(r => new URL(r.name).pathname)
    .filter(path => path.startsWith('/console/v1/') && path !== '/console/v1/caller'),
  chooser: document.getElementById('catalog').hidden,
  current: document.querySelector('nav a[aria-current=page]')?.textContent,
  focused: document.activeElement.id,
  keyButton: document.getElementById('key-button').textContent,
  keyTitle: document.getElementById('key-button').title,
  title: document.title})"""


async def a_writer_key(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_watched(devtools, port, WRITER)
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main h2')?.textContent === 'This key writes only'"),
            "the page saying the key writes only")
        seen["feed"] = await devtools.evaluate(session, WRITER_SEEN)
        await photograph(devtools, session, folder, "caller-writer-key")
        for page in ("events", "insights", "talent"):
            await devtools.evaluate(session, f"location.hash = {page!r}")
            await until(lambda: devtools.evaluate(
                session, "document.querySelector('main h2')?.textContent.length > 0"),
                f"the {page} page")
            seen[page] = await devtools.evaluate(session, WRITER_SEEN)
        await no_problems(devtools, session)
        seen["audit"] = await audit_screens(devtools, session, axe_source(), folder,
                                            "writer-key")
    return seen


def test_a_writer_key_is_told_it_writes_only_not_refused_a_read(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    # GetCaller refused a writer key, and so did the catalogs' list: the page said
    # "This key may not read" over the list's PERMISSION_DENIED, in red, on every page.
    with shops(tmp_path) as running:
        seen = in_chromium(browser_executable, tmp_path / "profile", a_writer_key,
                           running.http_port, shots)
    feed = seen["feed"]
    assert feed["said"] == ("This key writes only\n\nIt may send events to projects shop-a and "
                            "shop-b, not read them. To see events, use a reader or admin key "
                            "(Change key, above)."), feed
    # (never asked which of its two projects to read, nor refused: nothing is read)
    assert feed["headings"] == ["This key writes only"] and not feed["formSeen"], feed
    assert feed["refusals"] == 0 and feed["reads"] == [], feed
    assert feed["chooser"] and feed["focused"] == "key-button", feed
    assert feed["current"] == "Live feed", feed
    assert (feed["keyButton"], feed["keyTitle"]) == ("Change key",
                                                     "The key shops writes only"), feed
    assert feed["title"] == "This key writes only – Footfall console", feed
    for page in ("events", "insights", "talent"):
        assert seen[page]["said"] == feed["said"] and seen[page]["reads"] == [], seen[page]
    keep(seen["audit"], shots, "writer-key")
    assert not seen["audit"], described(seen["audit"])
