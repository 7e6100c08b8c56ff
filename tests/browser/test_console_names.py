"""Names a console URL gives (`#insights?parent=`, `#events?parent=`, `#talent?tenant=`)
go into the paths the page reads: checked first, they are read only when they are a
catalog's or a tenant's name. A link's `../` or `#` sent the funnel's automatic POST,
with the tab's key, to another route. A name the server takes that holds '?', '#',
'%' or '\\' is read where it is named: each segment goes into the path percent-encoded.
And a tenant's page shows no catalog chooser from the start, the key dialog over it
too."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from .cdp import DevTools, chromium
from .conftest import serve
from .pages import focus_and_press, go, no_problems, open_console, photograph, until
from .test_console import CATALOG, DEADLINE, PROJECT, READER_KEY, keyed_shop, rest

# From /insights/v1/ + a catalog's 6 segments, eight `..` lead to the root: the funnel's
# POST went to the purge route (the `?` makes its `:runFunnel` a query).
UP = "/..".join([""] * 9)
OTHER_ROUTE = f"{CATALOG}{UP}/v2/{CATALOG}/userEvents:purge?"
TENANT = f"projects/{PROJECT}/tenants/jobs"
BAD = {  # a page's hash -> what it must say it did not read
    f"insights?parent={quote(OTHER_ROUTE, safe='/')}": "The parent this address names",
    f"events?parent={quote(f'projects/{PROJECT}/locations/global/catalogs/..', safe='/')}":
        "The parent this address names",
    f"talent?tenant={quote(TENANT + '/../../x', safe='/')}": "The tenant this address names",
    f"feed?tenant={quote(TENANT + '/..', safe='/')}": "The tenant this address names",
}
# Every call of the API but the header's list of catalogs and what the key grants
# (GetCaller), by whatever path: none may be made with such a name.
READS = ("performance.getEntriesByType('resource').map(e => e.name).filter(n => "
         "/[/]v[0-9]/.test(n) && !/[/]catalogs([?]|$)/.test(n) && "
         "!n.endsWith('/console/v1/caller'))")


async def open_bad_links(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        for n, hash_ in enumerate(BAD):
            session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#{hash_}",
                                         READER_KEY, PROJECT)
            seen[hash_] = {"said": await until(lambda session=session: devtools.evaluate(
                session, "document.querySelector('main p.error')?.innerText || ''"),
                f"{hash_} refused")}
            await asyncio.sleep(0.5)  # (what a page reads, it asks for at once)
            seen[hash_]["reads"] = await devtools.evaluate(session, READS)
            if n == 0:
                await photograph(devtools, session, folder, "names-a-bad-parent")
            await no_problems(devtools, session)
        # a good name is read as before
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#insights?"
                                               f"parent={CATALOG}", READER_KEY, PROJECT)
        await until(lambda: devtools.evaluate(
            session, f"{READS}.some(n => n.endsWith('{CATALOG}:runFunnel'))"), "the funnel")
        await no_problems(devtools, session)
    return seen


def test_a_name_in_a_link_that_is_no_catalog_or_tenant_is_not_read(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    with keyed_shop(tmp_path) as running:
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            seen = asyncio.run(asyncio.wait_for(
                open_bad_links(devtools_url, running.http_port, shots), DEADLINE * 3))
    for hash_, words in BAD.items():
        assert seen[hash_]["reads"] == [], (hash_, seen[hash_])
        assert seen[hash_]["said"].startswith(words), (hash_, seen[hash_])
        assert "nothing was read with it" in seen[hash_]["said"], seen[hash_]
    assert "projects/P/locations/L/catalogs/C" in seen[next(iter(BAD))]["said"]


# A key granted a project whose id no path can carry (a keys file may hold it): the
# console offers no such project (GetCaller names it), and asks which to read.
DOTS_KEY = "reader-of-a-project-named-dots"


async def name_a_project_with_dots(devtools_url: str, port: int) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/", DOTS_KEY)
        await until(lambda: devtools.evaluate(
            session, "document.activeElement?.id === 'project'"), "the project's form")
        await devtools.evaluate(session, "document.querySelector('#project').value = '..'")
        await devtools.press(session, "Enter")
        said = await until(lambda: devtools.evaluate(
            session, "document.querySelector('main form + p.error')?.innerText"),
            "the project refused")
        await no_problems(devtools, session)
        return {"said": said, "stored": await devtools.evaluate(
            session, "sessionStorage.getItem('footfall.project')"),
            "reads": await devtools.evaluate(session, "performance.getEntriesByType("
                                                      "'resource').map(e => e.name).filter("
                                                      "n => n.includes('/v1/catalogs'))")}


def test_a_project_id_that_no_path_can_carry_is_not_read(
        browser_executable: str, tmp_path: Path) -> None:
    # 'projects/..' read /console/v1/catalogs: another route than the project's
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {DOTS_KEY: {"projects": [".."], "role": "reader"}}}))
    with serve(tmp_path, auth_file=str(keys)) as running:
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            seen = asyncio.run(asyncio.wait_for(
                name_a_project_with_dots(devtools_url, running.http_port), DEADLINE * 2))
    assert seen["said"].startswith('The project named, "projects/..", is not a project'), seen
    assert seen["stored"] is None and seen["reads"] == [], seen


async def open_a_tenant_page_without_a_key(devtools_url: str, port: int,
                                           folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#talent?"
                                               f"tenant={TENANT}")
        await until(lambda: devtools.evaluate(session, "document.querySelector('#key-dialog')"
                                                       "?.open"), "the key dialog")
        await photograph(devtools, session, folder, "names-tenant-page-asking-a-key")
        return await devtools.evaluate(
            session, "[document.querySelector('#catalog'), "
                     "document.querySelector('label[for=catalog]')].map(e => e.hidden ? '' : "
                     "e.innerText || e.value || 'shown')")


def test_a_tenant_page_shows_no_catalog_chooser_behind_the_key_dialog(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    # The header said "Catalog: no catalog yet" behind the dialog: the chooser was
    # stepped aside only once the first list of catalogs was read.
    with keyed_shop(tmp_path) as running:
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            shown = asyncio.run(asyncio.wait_for(open_a_tenant_page_without_a_key(
                devtools_url, running.http_port, shots), DEADLINE * 2))
    assert shown == ["", ""], shown


async def catalog_chooser_before_and_after_the_key(devtools_url: str, port: int,
                                                   folder: Path) -> list[str]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(session, "document.querySelector('#key-dialog')"
                                                       "?.open"), "the key dialog")
        await photograph(devtools, session, folder, "names-feed-asking-a-key")
        # (what the header shows of it: nothing, hidden with its label)
        chooser = ("[document.querySelector('#catalog'), document.querySelector("
                   "'label[for=catalog]')].some(e => e.hidden) ? '' : "
                   "document.querySelector('#catalog').innerText")
        before = await devtools.evaluate(session, chooser)
        await devtools.type_text(session, READER_KEY)
        await devtools.press(session, "Enter")
        # (a key of one project: no project's form, where nothing showed in the header)
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted')?.innerText.includes('keyed')"),
            "the event, read with the reader key")
        return [before, await devtools.evaluate(session, chooser)]


def test_the_catalog_chooser_says_no_catalog_only_once_it_has_read_them(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    # Behind the key dialog it said "no catalog yet" of a project it had not read (the
    # shop holds one). (Beside the project's form nothing shows until a project is
    # named: test_console_second_review; a key of one project is asked none.)
    with keyed_shop(tmp_path) as running:
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            shown = asyncio.run(asyncio.wait_for(catalog_chooser_before_and_after_the_key(
                devtools_url, running.http_port, shots), DEADLINE * 2))
    assert shown == ["not read yet", "default_catalog"], shown


# Names the server takes that a URL's path cannot carry as they are: '?' ends the path,
# '#' starts the fragment, '%41' is read as 'A', '\' as '/'. (White space is in no name:
# the server refuses it.) Listed, each was read at the wrong route (NOT_FOUND).
ODD_CATALOG = f"projects/{PROJECT}/locations/global/catalogs/shop?x=1#top%41\\é&+:a"
ODD_TENANT = f"projects/{PROJECT}/tenants/jobs?#%25"
# Every call of the API the page made that was refused (a watch let go has no status).
FAILED_READS = ("performance.getEntriesByType('resource').filter(e => /[/]v[0-9]/.test(e.name)"
                " && e.responseStatus >= 300).map(e => `${e.responseStatus} ${e.name}`)")


async def open_odd_names(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    main = "document.querySelector('main').innerText"
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#catalogs",
                                     READER_KEY, PROJECT)
        button = (f"[...document.querySelectorAll('main button.link')]"
                  f".find(b => b.innerText === {ODD_CATALOG!r})")
        await until(lambda: devtools.evaluate(session, f"!!{button}"), "the catalog listed")
        await until(lambda: devtools.evaluate(session, f"{main}.includes({ODD_TENANT!r})"),
                    "the tenant listed")
        await photograph(devtools, session, folder, "names-odd-listed")
        await devtools.evaluate(session, f"{button}.click()")  # (chosen: its live feed)
        seen["feed"] = await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted')?.innerText.includes('odd-visitor')"
                     " && document.querySelector('#accepted').innerText"), "its feed")
        seen["chosen"] = await devtools.evaluate(session,
                                                 "document.getElementById('catalog').value")
        await photograph(devtools, session, folder, "names-odd-feed")
        await go(devtools, session, "#events", "#count-events")
        await until(lambda: devtools.evaluate(session, f"{main}.includes('odd-visitor')"),
                    "its events found")
        await focus_and_press(devtools, session, "#count-events")
        seen["counted"] = await until(lambda: devtools.evaluate(
            session, "/stored/.test(document.querySelector('#events-counted')?.innerText) && "
                     "document.querySelector('#events-counted').innerText"), "its count")
        await photograph(devtools, session, folder, "names-odd-events")
        # the event opened from a link of its own (as in another tab: read by its id)
        await devtools.evaluate(session, "location.hash = document.querySelector("
                                         "'main table a').getAttribute('href')")
        await devtools.evaluate(session, "location.reload()")
        seen["event"] = await until(lambda: devtools.evaluate(
            session, "document.querySelector('#stored-h') && document.querySelector("
                     "'.facts').innerText"), "the event's page")
        await photograph(devtools, session, folder, "names-odd-event")
        await go(devtools, session, f"#talent?{urlencode({'tenant': ODD_TENANT})}", "main table")
        seen["talent"] = await until(lambda: devtools.evaluate(
            session, f"{main}.includes('odd-job-event') && {main}"), "the tenant's events")
        await photograph(devtools, session, folder, "names-odd-tenant")
        # the funnel's POST goes to the catalog's route (a '#' in a link's parent cut it)
        await go(devtools, session, f"#insights?{urlencode({'parent': ODD_CATALOG})}", "main")
        funnel = f"/insights/v1/{quote(ODD_CATALOG, safe='/')}:runFunnel"
        seen["funnel"] = await until(lambda: devtools.evaluate(
            session, f"{READS}.some(n => n.endsWith({funnel!r}))"), "the catalog's funnel")
        await no_problems(devtools, session)
        seen["failed"] = await devtools.evaluate(session, FAILED_READS)
        seen["errors"] = await devtools.evaluate(
            session, "[...document.querySelectorAll('main .error')].map(e => e.innerText)"
                     ".filter(Boolean)")
    return seen


def test_a_name_that_a_path_cannot_carry_as_it_is_is_listed_opened_and_read(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    with keyed_shop(tmp_path) as running:
        status, answer = rest(running.http_port, "POST",
                              f"/v2/{quote(ODD_CATALOG, safe='/')}/userEvents:write",
                              {"eventType": "home-page-view", "visitorId": "odd-visitor"},
                              {"x-goog-api-key": "writer-key"})
        assert status == 200, answer
        status, answer = rest(running.http_port, "POST",
                              f"/v4/{quote(ODD_TENANT, safe='/')}/clientEvents",
                              {"eventId": "odd-job-event", "requestId": "r1",
                               "createTime": "2026-12-01T09:00:00Z",
                               "jobEvent": {"type": "VIEW", "jobs": [f"{ODD_TENANT}/jobs/j1"]}},
                              {"x-goog-api-key": "writer-key"})
        assert status == 200, answer
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            seen = asyncio.run(asyncio.wait_for(
                open_odd_names(devtools_url, running.http_port, shots), DEADLINE * 4))
        # the CLI reads it too (over gRPC: the name is a field, in no path)
        listed = subprocess.run([sys.executable, "-m", "server", "events", "list", "--server",
                                 f"127.0.0.1:{running.port}", "--parent", ODD_CATALOG],
                                env={**os.environ, "FOOTFALL_KEY": READER_KEY},
                                capture_output=True, text=True, timeout=DEADLINE)
    assert listed.returncode == 0 and "visitor=odd-visitor" in listed.stdout, listed
    assert seen["chosen"] == ODD_CATALOG, seen
    assert "odd-visitor" in seen["feed"] and "keyed" not in seen["feed"], seen
    assert seen["counted"] == "1 event stored.", seen
    assert f"Catalog\n{ODD_CATALOG}\n" in seen["event"], seen
    assert "odd-job-event" in seen["talent"], seen
    assert seen["failed"] == [] and seen["errors"] == [], seen
