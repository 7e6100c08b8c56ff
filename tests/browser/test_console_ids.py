"""Identifiers a client chose (a visitor id of 128 characters, Google's most) wrap
within a bounded width: one such id made the events table's Visitor column 1,231 px
wide at a desktop's width, pushed User, Came by and Joined out of sight, and broke
every event type over three lines."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import in_chromium, no_problems, open_console, photograph, until
from .test_console import CATALOG, DEADLINE, rest, write

LONG_VISITOR = "visitor-" + "0123456789abcdef" * 7 + "x" * 8  # 128 characters


async def events_table(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#events")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('.results tbody tr').length === 2"),
            "the events")
        measured = await devtools.evaluate(session, """(() => {
            const box = document.querySelector('.results .table');
            const width = (label) => document.querySelector(
                `.results td[data-label="${label}"]`).getBoundingClientRect();
            return {box: box.clientWidth, table: box.scrollWidth,
                    visitor: width('Visitor').width, type: width('Type').height,
                    typeLine: parseFloat(getComputedStyle(
                        document.querySelector('.results td[data-label="Type"]')).lineHeight)};
        })()""")
        await photograph(devtools, session, folder, "events-long-visitor")
        await no_problems(devtools, session)
        return dict(measured)


def test_a_long_visitor_id_wraps_within_its_column(browser_executable: str, running: Running,
                                                   shots: Path, tmp_path: Path) -> None:
    assert len(LONG_VISITOR) == 128
    write(running.http_port, eventType="detail-page-view", visitorId=LONG_VISITOR,
          productDetails=[{"product": {"id": "p"}}])
    write(running.http_port, eventType="home-page-view", visitorId="short")
    seen = in_chromium(browser_executable, tmp_path / "profile", events_table,
                       running.http_port, shots)
    assert seen["table"] <= seen["box"], seen  # no column out of sight
    assert seen["visitor"] < seen["box"] / 2, seen  # (it was 1,231 px of 1,248)
    # "detail-page-view" on one line (a cell's padding aside), not broken at its hyphens
    assert seen["type"] < 2 * seen["typeLine"] + 12, seen


async def products_column(devtools_url: str, port: int, folder: Path, column: str,
                          shot: str) -> list[str]:
    """The cells of `column` of the products page (two products or more), photographed
    as `shot`."""
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#products")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('.results tbody tr, main tbody tr').length "
                     ">= 2"), "the products")
        await photograph(devtools, session, folder, shot)
        return list(await devtools.evaluate(
            session, f"[...document.querySelectorAll('main td[data-label={column}]')]"
                     ".map(td => td.innerText)"))


def test_a_price_is_shown_as_stored(browser_executable: str, running: Running, shots: Path,
                                    tmp_path: Path) -> None:
    """1234.5 JPY showed as "1,235 JPY" (the yen's minor unit is none)."""
    write(running.http_port, eventType="home-page-view", visitorId="v")  # (a catalog)
    for sku, price, currency in (("a", 1234.5, "JPY"), ("b", 40, "EUR")):
        status, answer = rest(running.http_port, "POST",
                              f"/v2/{CATALOG}/branches/default_branch/products?productId={sku}",
                              {"title": sku, "categories": ["c"], "priceInfo": {"price": price,
                                                           "currencyCode": currency}})
        assert status == 200, answer
    prices = in_chromium(browser_executable, tmp_path / "profile", products_column,
                         running.http_port, shots, "Price", "products-prices")
    assert prices == ["1,234.5 JPY", "40.00 EUR"], prices


def test_a_products_stock_is_shown(browser_executable: str, running: Running, shots: Path,
                                   tmp_path: Path) -> None:
    """What the inventory RPCs set was shown nowhere in the console."""
    write(running.http_port, eventType="home-page-view", visitorId="v")  # (a catalog)
    branch = f"/v2/{CATALOG}/branches/default_branch/products"
    for sku, fields in (("plain", {}),
                        ("stocked", {"availableQuantity": 1200, "fulfillmentInfo": [
                            {"type": "pickup-in-store", "placeIds": ["s1", "s2"]},
                            {"type": "same-day-delivery", "placeIds": ["z1"]}]})):
        status, answer = rest(running.http_port, "POST", f"{branch}?productId={sku}",
                              {"title": sku, "categories": ["c"], **fields})
        assert status == 200, answer
    status, answer = rest(running.http_port, "POST", f"{branch}/stocked:addLocalInventories",
                          {"localInventories": [{"placeId": "store-1"}]})
    assert status == 200, answer
    deadline = time.monotonic() + DEADLINE
    while not rest(running.http_port, "GET", f"{branch}/stocked")[1].get("localInventories"):
        assert time.monotonic() < deadline, "the local inventory was not added"
        time.sleep(0.05)
    stock = in_chromium(browser_executable, tmp_path / "profile", products_column,
                        running.http_port, shots, "Stock", "products-stock")
    assert stock == ["", "1,200 available; pickup-in-store: 2 places; same-day-delivery: "
                         "1 place; 1 local inventory"], stock
