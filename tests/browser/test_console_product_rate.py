"""The insights' per-product rate says what it divides: purchase-complete events
over detail-page-view events, not visitors and not units, so 350% is a product
bought 7 times for 2 views of its page, not a conversion gone wrong. (It was
titled "Purchases ÷ views", which a person read as a share of viewers.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools, chromium
from .pages import no_problems, open_console, photograph, until
from .test_console import DEADLINE, write

TITLE = "Purchase events ÷ view events"


def write_known_events(port: int) -> None:
    """tent-2p: 2 views (visitors a and b), 7 purchases of 3 units (a 5 times, c, who
    never viewed it, twice): 350% of events, where visitors would say 50% (a of a and
    b) and units 1,050%. stove-1: 4 views, 1 purchase: 25%."""
    for visitor in ("a", "b"):
        write(port, eventType="detail-page-view", visitorId=visitor,
              productDetails=[{"product": {"id": "tent-2p"}}])
    for n, visitor in enumerate(("a",) * 5 + ("c",) * 2):  # (each its order: no duplicate)
        write(port, eventType="purchase-complete", visitorId=visitor,
              productDetails=[{"product": {"id": "tent-2p"}, "quantity": 3}],
              purchaseTransaction={"id": f"order-{n}", "revenue": 300, "currencyCode": "EUR"})
    for visitor in "defg":
        write(port, eventType="detail-page-view", visitorId=visitor,
              productDetails=[{"product": {"id": "stove-1"}}])
    write(port, eventType="purchase-complete", visitorId="d",
          productDetails=[{"product": {"id": "stove-1"}}],
          purchaseTransaction={"revenue": 40, "currencyCode": "EUR"})


async def read_the_table(devtools_url: str, port: int, shots: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#insights")
        rows = ("[...document.querySelectorAll('#products tbody tr')].map(tr => "
                "Object.fromEntries([...tr.cells].map(td => [td.dataset.label, td.innerText])))")
        await until(lambda: devtools.evaluate(session, f"{rows}.length === 2"), "the products")
        column = ("[...document.querySelectorAll('#products th')]"
                  ".find(th => th.querySelector('[data-order=view_to_purchase_rate]'))")
        seen = {"rows": await devtools.evaluate(session, rows),
                "heading": await devtools.evaluate(session, f"{column}.innerText"),
                "tooltip": await devtools.evaluate(session, f"{column}.title"),
                "below": await devtools.evaluate(
                    session, "document.querySelector('#products p.about')?.innerText")}
        await devtools.evaluate(session, "document.getElementById('products').scrollIntoView()")
        await photograph(devtools, session, shots, "insights-products")
        await no_problems(devtools, session)
        return seen


def test_the_per_product_rate_says_it_divides_events_not_visitors(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    write_known_events(running.http_port)
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(read_the_table(
            devtools_url, running.http_port, shots), DEADLINE * 2))
    rates = {row["Product"]: (row["Views"], row["Purchases"], row["Units"], row.get(TITLE))
             for row in seen["rows"]}
    assert rates == {"tent-2p": ("2", "7", "21", "350.0%"),
                     "stove-1": ("4", "1", "1", "25.0%")}, seen["rows"]
    assert seen["heading"].startswith(TITLE), seen
    for said in (seen["tooltip"], seen["below"]):
        assert "a ratio of events, not of visitors" in said, seen
        assert "passes 100% when the product is bought more often" in said, seen
        assert "the funnel above, its steps detail-page-view and purchase-complete, " \
               "Breakdown by product" in said, seen
