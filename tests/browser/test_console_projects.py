"""A key granted two projects (not every one): the console offers them (GetCaller says
which), and another is read by "Change project", with the keyboard alone. Another
project could be read only by entering the key again ("Change key"), and the catalog
chosen in the first went on being read, named in the header, under the second."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .conftest import serve
from .pages import (
    focus_and_press,
    in_chromium,
    no_problems,
    open_console,
    photograph,
    text_of,
    until,
)
from .test_console import rest

KEY = "reader-of-two-shops-for-the-console-test"
WRITER = "writer-of-two-shops"
SHOPS = ("shop-a", "shop-b")


def catalog(shop: str) -> str:
    return f"projects/{shop}/locations/global/catalogs/default_catalog"


@contextmanager
def two_shops(tmp_path: Path) -> Iterator[Running]:
    """A server checking keys, with an event in each shop's catalog (visitor
    "in-<shop>"), and KEY reading both shops."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {
        KEY: {"projects": list(SHOPS), "role": "reader", "name": "two"},
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


ACCEPTED = "document.querySelector('#accepted')?.innerText || ''"


async def name_one_then_the_other(devtools_url: str, port: int,
                                  folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed", KEY)
        await until(lambda: devtools.evaluate(
            session, f"document.activeElement?.dataset.project === {SHOPS[0]!r}"),
            "the choice of the key's projects")
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(session, f"({ACCEPTED}).includes('in-shop-a')"),
                    "the first shop's event")
        # chosen in the header (its one catalog), as a person does: kept for the tab
        await devtools.evaluate(session, "(c => c.dispatchEvent(new Event('change')))"
                                         "(document.getElementById('catalog'))")
        assert await devtools.evaluate(
            session, "sessionStorage.getItem('footfall.catalog')") == catalog(SHOPS[0])
        seen["button"] = await text_of(devtools, session, "#project-button:not([hidden])")
        await photograph(devtools, session, folder, "projects-first")
        await focus_and_press(devtools, session, "#project-button")
        await until(lambda: devtools.evaluate(
            session, f"document.activeElement?.dataset.project === {SHOPS[0]!r}"),
            "the choice again")
        seen["asked"] = await text_of(devtools, session, "main")
        await devtools.press(session, "Tab")
        assert await devtools.evaluate(session, "document.activeElement.dataset.project") \
            == SHOPS[1]
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(session, f"({ACCEPTED}).includes('in-shop-b')"),
                    "the second shop's event")
        seen["chosen"] = await devtools.evaluate(session,
                                                 "document.getElementById('catalog').value")
        seen["feed"] = await devtools.evaluate(session, ACCEPTED)
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "projects-second")
    return seen


def test_a_key_of_two_projects_reads_the_other_by_changing_the_project(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    with two_shops(tmp_path) as running:
        seen = in_chromium(browser_executable, tmp_path / "profile", name_one_then_the_other,
                           running.http_port, shots)
    assert seen["button"] == "Change project", seen
    # (not "may not read shop-a")
    assert "This key may read 2 projects, one at a time" in seen["asked"], seen
    assert seen["chosen"] == catalog("shop-b"), seen
    assert "in-shop-a" not in seen["feed"], seen
