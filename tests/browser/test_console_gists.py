"""What the console says of an event before it is opened: the live feed's line
carries each type's most telling field (a search's query, the products viewed or
added, a purchase's revenue), and an event's page sums it up above its JSON (a
purchase of 1,000 lines had its revenue after them all)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools, chromium
from .pages import SCREENS, focus_and_press, go, no_problems, open_console, photograph, until
from .test_console import DEADLINE, write

ORDER_LINES = 1000


def write_one_of_each(port: int) -> None:
    write(port, eventType="search", visitorId="searcher",
          searchQuery="two-person tent & stove, ultralight, under 2 kg")
    write(port, eventType="detail-page-view", visitorId="viewer",
          productDetails=[{"product": {"id": "tent-2p"}}])
    write(port, eventType="add-to-cart", visitorId="adder",
          productDetails=[{"product": {"id": "tent-2p"}, "quantity": 2},
                          {"product": {"id": "stove-1"}}, {"product": {"id": "mug"}},
                          {"product": {"id": "spork"}}])
    write(port, eventType="category-page-view", visitorId="browser",
          pageCategories=["Tents > Two-person"])
    write(port, eventType="home-page-view", visitorId="arriver")
    write(port, eventType="purchase-complete", visitorId="buyer",
          productDetails=[{"product": {"id": f"sku-{i % 600}",
                                       "priceInfo": {"price": 1.25, "currencyCode": "EUR"}},
                           "quantity": 2} for i in range(ORDER_LINES)],
          purchaseTransaction={"id": "order-1000", "revenue": 2530.5, "tax": 20.5,
                               "cost": 10, "currencyCode": "EUR"})


# Where the revenue is on the event's page: its line's top, and whether it comes
# before the JSON.
REVENUE = """(() => {
  const dd = [...document.querySelectorAll('section.summary dt')]
    .find(dt => dt.innerText === 'Revenue')?.nextElementSibling;
  if (!dd) return null;
  const json = document.querySelector('pre.json');
  return {text: dd.innerText, top: dd.getBoundingClientRect().top, height: innerHeight,
          beforeJson: !!(dd.compareDocumentPosition(json) & Node.DOCUMENT_POSITION_FOLLOWING)};
})()"""


async def read_the_feed_and_the_order(devtools_url: str, port: int,
                                      shots: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        lines = ("Object.fromEntries([...document.querySelectorAll('#accepted a.event')]"
                 ".map(a => [a.querySelector('strong').innerText, "
                 "a.querySelector('.gist')?.innerText ?? null]))")
        await until(lambda: devtools.evaluate(session, f"Object.keys({lines}).length === 6"),
                    "the six events in the feed")
        seen: dict[str, Any] = {"lines": await devtools.evaluate(session, lines)}
        await photograph(devtools, session, shots, "feed-gists")
        order = await devtools.evaluate(
            session, "[...document.querySelectorAll('#accepted a.event')].find(a => "
                     "a.querySelector('strong').innerText === 'purchase-complete').dataset.id")
        await focus_and_press(devtools, session, f'#accepted a.event[data-id="{order}"]')
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('#stored-h')"),
                    "the purchase's page")
        seen["summary"] = await devtools.evaluate(
            session, "[...document.querySelectorAll('section.summary dt')]"
                     ".map(dt => [dt.innerText, dt.nextElementSibling.innerText])")
        for screen, (width, height, mobile) in SCREENS.items():
            await devtools.viewport(session, width, height, mobile)
            await asyncio.sleep(0.3)  # one layout
            seen[screen] = await devtools.evaluate(session, REVENUE)
        await photograph(devtools, session, shots, "purchase-summary")
        # the search page's rows say it too, and a search's page sums it up
        await go(devtools, session, "events", ".results tbody tr")
        rows = ("Object.fromEntries([...document.querySelectorAll('.results tbody tr')].map("
                "tr => [tr.querySelector('[data-label=Type]').innerText, "
                "tr.querySelector('[data-label=About]').innerText]))")
        await until(lambda: devtools.evaluate(session, f"Object.keys({rows}).length === 6"),
                    "the six events found")
        seen["rows"] = await devtools.evaluate(session, rows)
        await photograph(devtools, session, shots, "events-about")
        await devtools.evaluate(session, "location.hash = [...document.querySelectorAll("
                                         "'.results tbody tr')].find(tr => tr.querySelector("
                                         "'[data-label=Type]').innerText === 'search')"
                                         ".querySelector('a').getAttribute('href')")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('h2')?.innerText.endsWith(': search') && "
                     "!!document.querySelector('#summary-h')"), "the search's page")
        seen["search"] = await devtools.evaluate(
            session, "[...document.querySelectorAll('section.summary dt')]"
                     ".map(dt => [dt.innerText, dt.nextElementSibling.innerText])")
        await no_problems(devtools, session)
        return seen


def test_feed_lines_say_what_each_event_is_about_and_a_purchase_is_summed_up_on_top(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    write_one_of_each(running.http_port)
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(read_the_feed_and_the_order(
            devtools_url, running.http_port, shots), DEADLINE * 2))
    about = {
        "search": "“two-person tent & stove, ultralight, un…”",  # (cut to 40 characters)
        "detail-page-view": "tent-2p",
        "add-to-cart": "tent-2p ×2, stove-1 +2 more",
        "category-page-view": "Tents > Two-person",
        "home-page-view": None,
        "purchase-complete": "2,530.50 EUR · 1,000 lines",
    }
    assert seen["lines"] == about, seen["lines"]
    assert seen["rows"] == {**about, "home-page-view": ""}, seen["rows"]
    assert seen["search"] == [["Visitor", "searcher"],
                              ["Search query", "“two-person tent & stove, ultralight, under 2 kg”"]]
    assert seen["summary"] == [
        ["Visitor", "buyer"],
        ["Revenue", "2,530.50 EUR (tax 20.50 EUR, cost 10.00 EUR)"],
        ["Order", "order-1000"],
        ["Products", "1,000 lines, 600 products: sku-0 ×2, sku-1 ×2 +998 more"],
        ["Quantity", "2,000 units in all"],
        ["Price × quantity", "2,500.00 EUR"],
    ], seen["summary"]
    for screen in SCREENS:  # on the first screen, above the 1,000 lines of JSON
        revenue = seen[screen]
        assert revenue and revenue["beforeJson"] and revenue["top"] < revenue["height"], (
            screen, revenue)
