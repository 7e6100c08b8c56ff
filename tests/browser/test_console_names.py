"""Names a console URL gives (`#insights?parent=`, `#events?parent=`, `#talent?tenant=`)
go into the paths the page reads: checked first, they are read only when they are a
catalog's or a tenant's name. A link's `../` or `#` sent the funnel's automatic POST,
with the tab's key, to another route. And a tenant's page shows no catalog chooser
from the start, the key dialog over it too."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .cdp import DevTools, chromium
from .pages import no_problems, open_console, photograph, until
from .test_console import CATALOG, DEADLINE, PROJECT, READER_KEY, keyed_shop

# From /insights/v1/ + a catalog's 6 segments, eight `..` lead to the root: the funnel's
# POST went to the purge route (the `?` makes its `:runFunnel` a query).
UP = "/..".join([""] * 9)
OTHER_ROUTE = f"{CATALOG}{UP}/v2/{CATALOG}/userEvents:purge?"
TENANT = f"projects/{PROJECT}/tenants/jobs"
BAD = {  # a page's hash -> what it must say it did not read
    f"insights?parent={quote(OTHER_ROUTE, safe='/')}": "The parent this address names",
    f"insights?parent={quote(TENANT + '#x', safe='/')}": "The parent this address names",
    f"events?parent={quote(f'projects/{PROJECT}/locations/global/catalogs/..', safe='/')}":
        "The parent this address names",
    f"talent?tenant={quote(TENANT + '/../../x', safe='/')}": "The tenant this address names",
    f"feed?tenant={quote(TENANT + '%2F..', safe='/')}": "The tenant this address names",
}
# Every call of the API but the header's list of catalogs, by whatever path: none may
# be made with such a name.
READS = ("performance.getEntriesByType('resource').map(e => e.name).filter(n => "
         "/[/]v[0-9]/.test(n) && !/[/]catalogs([?]|$)/.test(n))")


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


async def name_a_project_with_dots(devtools_url: str, port: int) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/", READER_KEY)
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
    with keyed_shop(tmp_path) as running:
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
