"""What the console says where it had nothing, or the wrong thing, to say (events
written with the official google-cloud-retail and google-cloud-talent clients):
- a job site with no catalog: its live feed follows a tenant's client events, below a
  header that said "Catalog: no catalog yet", as if the feed showed nothing;
- an empty Refused column said nothing, as if still reading (the talent page says
  "None yet");
- Insights of a shop sending page views and searches alone: its per-product table said
  "Nothing in this time range." beside its charts of the range's events;
- at 1280 px (a laptop) the header went onto two lines once "Change project" showed.
Each page photographed at 1366, 1280 and 390 px."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from server.app import Running

from . import official_clients, pages
from .cdp import DevTools
from .conftest import serve
from .pages import in_chromium, no_problems, open_console, text_of, until

pytestmark = pytest.mark.timeout(240)

PROJECT = "said-plainly"
CATALOG = f"projects/{PROJECT}/locations/global/catalogs/default_catalog"
TENANT = f"projects/{PROJECT}/tenants/jobs"
T = "2026-12-01T09:00:00Z"
# A desktop, the laptop where the header wrapped, and a phone.
WIDTHS = {"1366": (1366, 900, False), "1280": (1280, 800, False), "390": (390, 844, True)}


def event(visitor: str, kind: str = "home-page-view", **more: Any) -> dict[str, Any]:
    return {"eventType": kind, "visitorId": visitor, "eventTime": T, **more}


def client_event(event_id: str, tenant: str = TENANT) -> dict[str, Any]:
    return {"talent": tenant, "event": {
        "requestId": "r1", "eventId": event_id, "createTime": T,
        "jobEvent": {"type": "VIEW", "jobs": [f"{tenant}/jobs/nurse-7"]}}}


def written(running: Running, *writes: dict[str, Any]) -> list[str]:
    """What each write got from the official clients (run in a process of their own)."""
    return official_clients.write(f"127.0.0.1:{running.port}", list(writes))


async def photograph(devtools: DevTools, session: str, folder: Path, name: str) -> None:
    """`name`-1366.png, -1280.png and -390.png of the page as it is, and back to 1280."""
    await pages.photograph(devtools, session, folder, name, WIDTHS, "1280")


CHOOSER_SHOWN = ("!document.getElementById('catalog').hidden && "
                 "!document.querySelector('label[for=catalog]').hidden")
ACCEPTED_ITEMS = "document.querySelectorAll('#accepted li').length"


async def job_site_feed(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(session, f"{ACCEPTED_ITEMS} === 2"),
                    "the tenant's client events")
        seen = {"header": await text_of(devtools, session, "header"),
                "chooser": await devtools.evaluate(session, CHOOSER_SHOWN),
                "hint": await text_of(devtools, session, "#accepted-h + p")}
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "said-job-site-feed")
    return seen


def test_a_job_sites_feed_is_not_headed_no_catalog_yet(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    assert written(running, client_event("seen-1"), client_event("seen-2")) == ["OK"] * 2
    seen = in_chromium(browser_executable, tmp_path / "profile", job_site_feed,
                       running.http_port, shots)
    assert "no catalog yet" not in seen["header"], seen
    assert not seen["chooser"], seen
    assert f"Stored in {TENANT}" in seen["hint"], seen


NONE = "document.getElementById('{}-none')"
SAYS_NONE = f"(e => e && !e.hidden && e.innerText)({NONE})"
CLICK_OF_CATALOG = "document.getElementById('refused-of-catalog').click()"


async def nothing_refused(devtools_url: str, port: int, grpc_port: int,
                          folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(session, f"{ACCEPTED_ITEMS} === 1"),
                    "the event")
        seen["refused"] = await until(lambda: devtools.evaluate(
            session, SAYS_NONE.format("refused")), "the empty refused column said so")
        seen["accepted"] = await devtools.evaluate(session, SAYS_NONE.format("accepted"))
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "said-feed-none-refused")
        # Only those that named the catalog: read again, none yet again
        await devtools.evaluate(session, CLICK_OF_CATALOG)
        seen["of_catalog"] = await until(lambda: devtools.evaluate(
            session, "document.getElementById('refused-of-catalog').checked && "
                     + SAYS_NONE.format("refused")), "none of the catalog")
        await devtools.evaluate(session, CLICK_OF_CATALOG)
        # the first refusal: "None yet" goes
        assert official_clients.write(f"127.0.0.1:{grpc_port}", [  # (no product)
            {"retail": CATALOG, "event": event("refused-1", "add-to-cart")}]) == [
            "INVALID_ARGUMENT"]
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#refused li').length === 1"),
            "the refusal")
        seen["after"] = await devtools.evaluate(session, SAYS_NONE.format("refused"))
        await no_problems(devtools, session)
    return seen


def test_an_empty_refused_column_says_none_yet(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    assert written(running, {"retail": CATALOG, "event": event("accepted-1")}) == ["OK"]
    seen = in_chromium(browser_executable, tmp_path / "profile", nothing_refused,
                       running.http_port, running.port, shots, within=120)
    said = "None yet; each one shows here as it comes."
    assert seen["refused"] == said and seen["of_catalog"] == said, seen
    assert seen["accepted"] is False, seen  # (hidden: it holds the event)
    assert seen["after"] is False, seen


PER_PRODUCT = "document.querySelector('#products tbody')?.innerText || ''"


async def per_product(devtools_url: str, port: int, folder: Path) -> dict[str, str]:
    seen = {}
    async with DevTools.connect(devtools_url) as devtools:
        for name, query in (("events", ""), ("nothing", "&start=2027-01-01T00:00:00Z"
                                                       "&end=2027-01-02T00:00:00Z")):
            session = await open_console(
                devtools, f"http://127.0.0.1:{port}/console/#insights?parent={CATALOG}{query}")
            seen[name] = await until(lambda s=session: devtools.evaluate(s, PER_PRODUCT),
                                     "the per-product table")
            await until(lambda s=session: devtools.evaluate(
                s, "!!document.querySelector('#events-read')"), "the totals")
            await no_problems(devtools, session)
            if name == "events":
                await devtools.evaluate(session, "document.getElementById('products')"
                                                 ".scrollIntoView()")
                await photograph(devtools, session, folder, "said-insights-no-product")
    return seen


def test_per_product_says_the_range_holds_events_none_naming_a_product(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    assert written(running, {"retail": CATALOG, "event": event("v1")},
                   {"retail": CATALOG, "event": event("v1", "search", searchQuery="shoes")}
                   ) == ["OK"] * 2
    seen = in_chromium(browser_executable, tmp_path / "profile", per_product,
                       running.http_port, shots, within=120)
    assert seen["events"] == ("2 events in this time range, none of which names a product: "
                              "only detail-page-view, add-to-cart and purchase-complete "
                              "events do."), seen
    assert seen["nothing"] == "Nothing in this time range.", seen


READER = "reader-of-two-shops-for-the-header-test"
WRITER = "writer-of-two-shops-for-the-header-test"
SHOPS = ("shop-a", "shop-b")
# Whether every part of the header shown stands on the line of its title (each one's
# middle within the title's height), and the header's height.
ONE_LINE = """(() => {
  const title = document.querySelector('header h1').getBoundingClientRect();
  const parts = [...document.querySelectorAll('header nav a, header .context > *')]
    .filter((e) => !e.hidden).map((e) => [e.id || e.innerText, e.getBoundingClientRect()]);
  return {off: parts.filter(([, r]) => (r.top + r.bottom) / 2 < title.top ||
                                       (r.top + r.bottom) / 2 > title.bottom).map(([n]) => n),
          high: Math.round(document.querySelector('header').getBoundingClientRect().height),
          spare: Math.round(document.querySelector('header .context').getBoundingClientRect().left -
                            document.querySelector('header nav').getBoundingClientRect().right)};
})()"""


async def header_of_a_project(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed",
                                     READER, SHOPS[0])
        await until(lambda: devtools.evaluate(
            session, "document.getElementById('project-button')?.hidden === false && "
                     f"{ACCEPTED_ITEMS} === 1"), "the project's event, Change project")
        for width, (wide, high, mobile) in WIDTHS.items():
            await devtools.viewport(session, wide, high, mobile)
            await asyncio.sleep(0.3)  # one layout
            seen[width] = await devtools.evaluate(session, ONE_LINE)
        await no_problems(devtools, session)
        await photograph(devtools, session, folder, "said-header-project")
    return seen


def test_the_header_of_a_project_fits_a_laptops_line(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {
        READER: {"projects": list(SHOPS), "role": "reader", "name": "two"},
        WRITER: {"projects": list(SHOPS), "role": "writer", "name": "shops"}}}))
    with serve(tmp_path, auth_file=str(keys)) as running:
        catalog = f"projects/{SHOPS[0]}/locations/global/catalogs/default_catalog"
        assert written(running, {"retail": catalog, "event": event("in-a"), "key": WRITER}
                       ) == ["OK"]
        seen = in_chromium(browser_executable, tmp_path / "profile", header_of_a_project,
                           running.http_port, shots)
    assert seen["1366"]["off"] == [] and seen["1280"]["off"] == [], seen
    assert seen["1280"]["high"] == seen["1366"]["high"], seen
    assert seen["1280"]["spare"] >= 48, seen  # (room for a catalog's longer name)
