"""What a client sent is shown as it is, characters that show nothing included: a
product id holding U+202E (RIGHT-TO-LEFT OVERRIDE) turned the rest of its line
around, so that a purchase of `sku\u202e1` ×2 read "sku2× 1" in the feed and under
Events, and a visitor id `visitor-\u202egnp.exe\u202c-\u200b` read
"visitor-exe.png-" (a zero-width space at its end): a person saw another product,
quantity and visitor than were stored, and a filter typed from the page found
nothing. Such characters are now shown as their JSON escapes, marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import SCREENS, in_chromium, no_problems, open_console, photograph, until
from .test_console import write

# Bidirectional embeddings, overrides, isolates and marks, and characters of no width
HIDDEN = ("\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068"
          "\u2069\ufeff")
SPOOFED_SKU = "sku\u202e1"
SPOOFED_VISITOR = "visitor-\u202egnp.exe\u202c-\u200b"
SPOOFED_TYPE = "purchase\u202e-complete"

# The page's text with any of HIDDEN in it, and what the lines say
READ = """(() => {
  const hidden = new RegExp("[%s]", "u");
  const text = (selector) => [...document.querySelectorAll(selector)].map((e) => e.innerText);
  return {hidden: [...document.body.innerText].filter((c) => hidden.test(c))
            .map((c) => c.codePointAt(0).toString(16)),
          lines: text(%r), marked: text(".escape").length};
})()"""


# On a phone a row is a card, each cell a grid of its label and its value: the marks
# of the Events table whose left edge is in the labels' column (the cell's first 8rem)
UNDER_THE_LABELS = """[...document.querySelectorAll('.results td .escape')].filter((mark) =>
  mark.getBoundingClientRect().left - mark.closest('td').getBoundingClientRect().left
    < 8 * parseFloat(getComputedStyle(document.documentElement).fontSize))
  .map((mark) => mark.closest('td').dataset.label + ': ' + mark.closest('td').innerText)"""


def read(selector: str) -> str:
    return READ % ("".join(f"\\\\u{ord(c):04x}" for c in HIDDEN), selector)


async def pages(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    seen = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('a.event').length === 3"), "the feed")
        seen["feed"] = await devtools.evaluate(session, read("a.event"))
        await photograph(devtools, session, folder, "feed-hidden-characters")
        await devtools.evaluate(session, "location.hash = 'events'")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('.results tbody tr').length === 3"), "events")
        seen["events"] = await devtools.evaluate(session, read(".results tbody tr"))
        await photograph(devtools, session, folder, "events-hidden-characters")
        await devtools.viewport(session, *SCREENS["phone"])
        seen["phone_marks"] = await devtools.evaluate(session, UNDER_THE_LABELS)
        await devtools.viewport(session, *SCREENS["desktop"])
        await devtools.evaluate(
            session, "document.querySelector('.results tbody tr a[href^=\"#event/\"]').click()")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('pre.json')"),
                    "the event's page")
        seen["event"] = await devtools.evaluate(session, read("h2, pre.json"))
        await photograph(devtools, session, folder, "event-hidden-characters")
        await no_problems(devtools, session)
    return seen


def test_characters_that_reorder_or_hide_text_are_shown_as_escapes(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    write(port, eventType="detail-page-view", visitorId=SPOOFED_VISITOR,
          productDetails=[{"product": {"id": "tent"}}])
    write(port, eventType="purchase-complete", visitorId="v2", eventTime="2026-01-01T00:00:01Z",
          productDetails=[{"product": {"id": SPOOFED_SKU}, "quantity": 2}],
          purchaseTransaction={"revenue": 2, "currencyCode": "USD"})
    write(port, eventType=SPOOFED_TYPE, visitorId="v3", eventTime="2026-01-01T00:00:02Z")
    seen = in_chromium(browser_executable, tmp_path / "profile", pages, port, shots)
    # a mark in the middle of a cell's text was a grid item of its own: on a phone it
    # went under the labels and the rest of the text to a line below ("About: sku",
    # then "\\u202e" as a label and "1 ×2" beside it)
    assert seen.pop("phone_marks") == []
    for page, found in seen.items():
        assert found["hidden"] == [], (page, found)
        assert found["marked"] > 0, (page, found)
    feed = "\n".join(seen["feed"]["lines"])
    assert "sku\\u202e1 ×2" in feed, feed  # (not "sku2× 1")
    assert "visitor-\\u202egnp.exe\\u202c-\\u200b" in feed, feed
    assert "purchase\\u202e-complete" in feed, feed
    events = "\n".join(seen["events"]["lines"])
    assert "sku\\u202e1 ×2" in events and "visitor-\\u202egnp.exe" in events, events
    event = "\n".join(seen["event"]["lines"])
    # the newest first: the event of the spoofed type, its heading and its JSON
    assert "Event 3: purchase\\u202e-complete" in event, event
    assert '"eventType": "purchase\\u202e-complete"' in event, event
