"""What a review of the console by keyboard only and on a phone (390 x 844 at twice
the pixels, touch) found, each fixed and held here: side by side, the live feed's
refusals came after its accepted events in the order of Tab (100 presses and more);
back from an event's page, the focus went to the top of the list it was opened from;
the key prompt could be left only by Escape, which a phone's screen keyboard has not;
a line of JSON cut by a phone's width went on at the left edge, as if a line of its
own; a product's unset availability stood below its label on a phone; a funnel step's
conditions were ragged boxes and a stretched checkbox on a phone; the focus lost with
the key prompt or the project's form fell to the page's body; a control on a line of
its own was 23.2 px high, under a touch target's 24.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools, chromium
from .pages import (
    accessible,
    focus_and_press,
    in_chromium,
    no_problems,
    open_console,
    photograph,
    text_of,
    until,
)
from .test_console import (
    BIG_IMPORT_EVENTS,
    CATALOG,
    DEADLINE,
    TENANT,
    enter_reader_key,
    keyed_shop,
    rest,
    write,
)

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
EVENTS = 40
FOCUSED = "document.activeElement"


async def as_a_phone(devtools: DevTools, session: str) -> None:
    """The page as on a phone: its size, twice the pixels, touch."""
    await devtools.send("Emulation.setDeviceMetricsOverride", PHONE, session)
    await devtools.send("Emulation.setTouchEmulationEnabled",
                        {"enabled": True, "maxTouchPoints": 5}, session)
    await asyncio.sleep(0.3)  # one layout


async def tab_past_the_accepted(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(
            session, f"document.querySelectorAll('#accepted li').length === {EVENTS} && "
                     "!!document.querySelector('#refused li')"), "the feed")
        jump = "document.querySelector('p.jump').getBoundingClientRect()"
        seen = {"unfocused": await devtools.evaluate(session, f"{jump}.height")}
        # From the header's last control, as a keyboard user comes to the page.
        await devtools.evaluate(session, "document.getElementById('catalog').focus()")
        await devtools.press(session, "Tab")
        seen["first"] = await devtools.evaluate(session, f"{FOCUSED}.innerText")
        seen["shown"] = await devtools.evaluate(
            session, f"(r => r.height > 10 && r.width > 100)({jump})")
        await photograph(devtools, session, folder, "feed-jump-focused")
        await devtools.press(session, "Enter")
        seen["focused"] = await devtools.evaluate(session, f"{FOCUSED}.id")
        await devtools.press(session, "Tab")
        seen["next"] = await devtools.evaluate(
            session, f"{FOCUSED}.closest('[aria-labelledby=refused-h]') !== null")
        await no_problems(devtools, session)
        return seen


def test_side_by_side_the_keyboard_goes_past_the_accepted_events_to_the_refused(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """At a desktop's width the way down to the refusals was hidden: Tab went through
    every accepted event first (111 presses to the first refusal, 200 kept)."""
    for n in range(EVENTS):
        write(running.http_port, eventType="home-page-view", visitorId=f"v-{n}")
    status, _ = rest(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                     {"eventType": "add-to-cart", "visitorId": "v-bad"})
    assert status == 400
    seen = in_chromium(browser_executable, tmp_path / "profile", tab_past_the_accepted,
                       running.http_port, shots)
    assert seen["unfocused"] <= 1, seen  # (no room taken while the mouse reads the page)
    assert seen["first"] == "Go to the refused requests" and seen["shown"], seen
    assert seen["focused"] == "refused-h" and seen["next"], seen


async def open_and_come_back(devtools: DevTools, session: str, link: str) -> dict[str, Any]:
    """Opens the event of `link` (a selector) by the keyboard, goes back; what has the
    focus then, once the page is shown again."""
    opened = await devtools.evaluate(
        session, f"document.querySelector({link!r}).getAttribute('href')")
    await focus_and_press(devtools, session, link)
    await until(lambda: devtools.evaluate(session, "!!document.querySelector('pre.json')"),
                "the event's page")
    await devtools.evaluate(session, "history.back()")  # (Alt+Left, in a browser's frame)
    await until(lambda: devtools.evaluate(
        session, "!location.hash.startsWith('#event/') && "
                 "document.querySelectorAll('main a[href^=\"#event/\"]').length > 3"),
        "the list again")
    try:
        await until(lambda: devtools.evaluate(
            session, f"{FOCUSED}.getAttribute('href') === {opened!r}"), "the link focused", 3)
    except AssertionError:
        pass  # said by what is returned
    return {"opened": opened,
            "focused": await devtools.evaluate(session, f"{FOCUSED}.getAttribute('href')"),
            "in sight": await devtools.evaluate(
                session, f"(r => r.top >= 0 && r.bottom <= innerHeight)"
                         f"({FOCUSED}.getBoundingClientRect())")}


async def come_back_to_the_list(devtools_url: str, port: int, folder: Path) -> list[Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(
            session, f"document.querySelectorAll('#accepted a.event').length === {EVENTS}"),
            "the feed")
        await as_a_phone(devtools, session)
        seen = [await open_and_come_back(devtools, session, "#accepted li:nth-child(30) a")]
        await photograph(devtools, session, folder, "feed-back-from-an-event")
        await devtools.evaluate(session, "location.hash = 'events'")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('.results tbody tr').length > 30"), "events")
        seen.append(await open_and_come_back(
            devtools, session, ".results tbody tr:nth-child(25) a"))
        await photograph(devtools, session, folder, "events-back-from-an-event")
        await no_problems(devtools, session)
        return seen


def test_back_from_an_event_the_focus_is_on_the_link_that_opened_it(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """It went to the top of the page: the feed's events (or the search's) were to be
    tabbed through again to open the next one."""
    for n in range(EVENTS):
        write(running.http_port, eventType="home-page-view", visitorId=f"v-{n}",
              eventTime=f"2026-01-01T00:00:{n:02d}Z")
    seen = in_chromium(browser_executable, tmp_path / "profile", come_back_to_the_list,
                       running.http_port, shots)
    for back in seen:
        assert back["focused"] == back["opened"] and back["in sight"], seen


async def leave_the_prompt_by_touch(devtools_url: str, port: int, folder: Path
                                    ) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await as_a_phone(devtools, session)
        await until(lambda: devtools.evaluate(session, "document.querySelector('dialog')?.open"),
                    "the key dialog")
        await photograph(devtools, session, folder, "key-dialog-phone")
        await as_a_phone(devtools, session)  # (photograph ends at a desktop's size)
        box = await devtools.evaluate(session, """(() => {
            const later = [...document.querySelectorAll('dialog button')]
              .find(b => b.innerText === 'Not now');
            if (!later) return null;
            const r = later.getBoundingClientRect();
            return {x: r.x + r.width / 2, y: r.y + r.height / 2, height: r.height};
        })()""")
        if box is None:
            return {"button": None}
        for kind in ("touchStart", "touchEnd"):  # a tap
            await devtools.send("Input.dispatchTouchEvent", {
                "type": kind,
                "touchPoints": [{"x": box["x"], "y": box["y"]}] if kind == "touchStart" else []},
                session)
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main').innerText.includes('No API key given')"),
            "the page saying no key was given")
        await no_problems(devtools, session)
        return {"button": box, "open": await devtools.evaluate(session, "document.querySelector"
                                                                        "('dialog').open"),
                "key": await devtools.evaluate(session,
                                               "sessionStorage.getItem('footfall.apiKey')"),
                "offered": await devtools.evaluate(
                    session, "document.querySelector('#key-button:not([hidden])')?.innerText")}


def test_on_a_phone_the_key_prompt_can_be_left_without_a_key(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    """Escape alone closed it: a phone's screen keyboard has none, and the prompt,
    modal, could not be left without a key."""
    with keyed_shop(tmp_path) as running:
        with chromium(browser_executable, tmp_path / "profile") as devtools_url:
            seen = asyncio.run(asyncio.wait_for(
                leave_the_prompt_by_touch(devtools_url, running.http_port, shots),
                DEADLINE * 2))
    assert seen["button"] is not None, "no button leaves the prompt"
    assert seen["button"]["height"] >= 24, seen  # (a target a finger finds)
    assert seen["open"] is False and seen["key"] is None, seen
    assert seen["offered"] == "Enter key", seen


LONG_URI = "https://shop.example.com/p/" + "trail-tent-two-person-ultralight-" * 3


async def read_wrapped_json(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#events")
        await until(lambda: devtools.evaluate(
            session, "!!document.querySelector('.results tbody a')"), "the event")
        await devtools.evaluate(session, "location.hash = document.querySelector("
                                         "'.results tbody a').getAttribute('href')")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('pre.json')"),
                    "the event's page")
        await as_a_phone(devtools, session)
        measured = await devtools.evaluate(session, r"""(() => {
            const pre = document.querySelector('pre.json');
            const lines = [...pre.querySelectorAll('.line')];
            const uri = lines.find(l => l.textContent.includes('"uri"'));
            // the lines of text the uri's line takes, by their left edge
            const text = document.createRange();
            text.selectNodeContents(uri.firstChild);
            const rows = new Map();
            for (const r of text.getClientRects()) {
              const top = Math.round(r.top);
              rows.set(top, Math.min(rows.get(top) ?? Infinity, r.left));
            }
            const lefts = [...rows.entries()].sort((a, b) => a[0] - b[0]).map(e => e[1]);
            const probe = document.createElement('span');
            probe.textContent = 'x';
            pre.append(probe);
            const ch = probe.getBoundingClientRect().width;
            probe.remove();
            // a blank line between two lines of the JSON: a gap of a line's height
            const gaps = lines.slice(1).map((l, i) =>
              l.getBoundingClientRect().top - lines[i].getBoundingClientRect().bottom);
            let parsed = true;
            try { JSON.parse(pre.innerText); } catch { parsed = false; }
            // as copied: a line of text a line of the JSON, no blank line between
            const range = document.createRange();
            range.selectNodeContents(pre);
            getSelection().removeAllRanges();
            getSelection().addRange(range);
            const copied = getSelection().toString();
            getSelection().removeAllRanges();
            return {lefts, ch, gap: Math.max(...gaps), parsed, lines: lines.length,
                    copied: copied.trimEnd().split('\n').length,
                    blank: copied.includes('\n\n') || pre.innerText.includes('\n\n'),
                    wide: document.scrollingElement.scrollWidth - innerWidth};
        })()""")
        await photograph(devtools, session, folder, "event-wrapped-json")
        await no_problems(devtools, session)
        return dict(measured)


def test_on_a_phone_a_line_of_json_cut_short_goes_on_under_its_text(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """Cut by the phone's width, a value went on at the pre's left edge, left of its
    own key: it read as a line of its own, at no depth."""
    write(running.http_port, eventType="home-page-view", visitorId="phone", uri=LONG_URI)
    seen = in_chromium(browser_executable, tmp_path / "profile", read_wrapped_json,
                       running.http_port, shots)
    first, *rest_ = seen["lefts"]
    assert rest_, seen  # (cut, at a phone's width)
    # the key at depth 1 (2 characters in); what goes on, 2 more in than it
    assert all(left - first >= 3.5 * seen["ch"] for left in rest_), seen
    assert seen["gap"] < 2, seen  # no blank line between two lines
    assert seen["parsed"] and seen["wide"] <= 0, seen  # (copied, it is JSON still)
    assert seen["copied"] == seen["lines"] and not seen["blank"], seen


async def measure_an_unset_availability(devtools_url: str, port: int, folder: Path
                                        ) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#products")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector("
                                                       "'main td[data-label=Availability]')"),
                    "the product")
        await as_a_phone(devtools, session)
        measured = await devtools.evaluate(session, """(() => {
            const cell = document.querySelector('main td[data-label=Availability]');
            const said = cell.querySelector('.hint').getBoundingClientRect();
            const box = cell.getBoundingClientRect();
            const padding = parseFloat(getComputedStyle(cell).paddingTop);
            return {text: cell.innerText, below: said.top - box.top - padding,
                    after: box.bottom - said.bottom - padding};
        })()""")
        await photograph(devtools, session, folder, "products-unset-availability")
        await no_problems(devtools, session)
        return dict(measured)


def test_on_a_phone_an_unset_availability_stands_beside_its_label(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """A phone's card of cells is a grid, whose items are blocks: the hint's paragraph
    margins set "unset (IN_STOCK)" below its label, and a gap under it."""
    write(running.http_port, eventType="home-page-view", visitorId="v")  # (a catalog)
    status, answer = rest(running.http_port, "POST",
                          f"/v2/{CATALOG}/branches/default_branch/products?productId=socks",
                          {"title": "Socks", "categories": ["c"]})
    assert status == 200, answer
    seen = in_chromium(browser_executable, tmp_path / "profile", measure_an_unset_availability,
                       running.http_port, shots)
    assert "unset (IN_STOCK)" in seen["text"], seen
    assert abs(seen["below"]) < 1 and abs(seen["after"]) < 1, seen


async def leave_the_prompt_then_enter_a_key(devtools_url: str, port: int, folder: Path
                                            ) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(session, "document.querySelector('dialog')?.open"),
                    "the key dialog")
        await devtools.press(session, "Escape")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('main').innerText.includes('No API key given')"),
            "the page saying no key was given")
        await asyncio.sleep(0.5)  # (the catalogs' poll that shows the button)
        seen = {"declined": await devtools.evaluate(session, f"{FOCUSED}.id")}
        await photograph(devtools, session, folder, "key-declined-focus")
        if seen["declined"] != "key-button":
            return seen  # (Enter would press nothing)
        await devtools.press(session, "Enter")  # "Enter key", where the focus is
        await until(lambda: devtools.evaluate(session, "document.querySelector('dialog')?.open"),
                    "the key dialog again")
        await enter_reader_key(devtools, session)
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('#accepted li')"),
                    "the feed, read with the key")
        seen["read"] = await devtools.evaluate(session, f"{FOCUSED}.id")
        await devtools.press(session, "Tab")
        seen["next"] = await devtools.evaluate(session, f"main.contains({FOCUSED})")
        await no_problems(devtools, session)
        return seen


def test_the_focus_lost_with_the_key_prompt_or_the_project_form_goes_on_in_the_page(
        browser_executable: str, shots: Path, tmp_path: Path) -> None:
    """Both left the focus on the page's body: after the prompt, Tab went on from the
    top of the page to find "Enter key"; after the project was named, nothing had the
    focus in the page it opened."""
    with keyed_shop(tmp_path) as running:
        seen = in_chromium(browser_executable, tmp_path / "profile",
                           leave_the_prompt_then_enter_a_key, running.http_port, shots)
    assert seen == {"declined": "key-button", "read": "main", "next": True}, seen


async def measure_a_steps_conditions(devtools_url: str, port: int, folder: Path
                                     ) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#insights")
        await until(lambda: devtools.evaluate(
            session, "!!document.querySelector('details.conditions')"), "the funnel's steps")
        await as_a_phone(devtools, session)
        await devtools.evaluate(session, "document.querySelector('details.conditions')"
                                         ".open = true")
        await asyncio.sleep(0.3)  # one layout
        measured = await devtools.evaluate(session, """(() => {
            const conditions = document.querySelector('details.conditions');
            const boxes = [...conditions.querySelectorAll('input:not([type=checkbox])')]
              .map(e => Math.round(e.getBoundingClientRect().width));
            const check = conditions.querySelector('input[type=checkbox]');
            const r = check.getBoundingClientRect();
            const label = conditions.querySelector(`label[for="${check.id}"]`)
              .getBoundingClientRect();
            return {boxes, width: Math.round(conditions.getBoundingClientRect().width),
                    check: [Math.round(r.width), Math.round(r.height)],
                    beside: r.top < label.bottom && r.left >= label.right};
        })()""")
        await photograph(devtools, session, folder, "insights-conditions")
        await no_problems(devtools, session)
        return dict(measured)


def test_on_a_phone_a_steps_conditions_line_up(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """Each text box was as wide as its label (297 to 321 px, ragged), and the checkbox
    "Has a search query" a 13 px high box stretched over 172 px, on a line of its own."""
    write(running.http_port, eventType="home-page-view", visitorId="v")  # (a catalog)
    seen = in_chromium(browser_executable, tmp_path / "profile", measure_a_steps_conditions,
                       running.http_port, shots)
    assert max(seen["boxes"]) - min(seen["boxes"]) <= 1, seen
    assert max(seen["boxes"]) >= seen["width"] * 0.9, seen
    assert 16 <= seen["check"][0] <= 24 and 16 <= seen["check"][1] <= 24, seen
    assert seen["beside"], seen


# The controls of a line of their own (not words of a sentence), by page.
TARGETS = {"feed": "p.jump button, #refused summary",
           "operations": "details.samples > summary",
           "talent": "main tbody button.link",
           "catalogs": "main tbody button.link",
           "insights": "details.conditions > summary"}


async def measure_targets(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await as_a_phone(devtools, session)
        heights = {}
        for page, targets in TARGETS.items():
            await devtools.evaluate(session, f"location.hash = {page!r}")
            await until(lambda targets=targets: devtools.evaluate(
                session, f"!!document.querySelector({targets!r})"), f"the {page} page")
            await asyncio.sleep(0.3)  # (the rest of its list)
            heights[page] = await devtools.evaluate(
                session, f"[...document.querySelectorAll({targets!r})].map(e => "
                         f"e.getBoundingClientRect().height)")
            if page == "feed":
                await photograph(devtools, session, folder, "feed-targets")
                await as_a_phone(devtools, session)
        await no_problems(devtools, session)
        return heights


def test_on_a_phone_a_control_of_its_own_line_is_a_finger_high(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """One line of text made 23.2 px: under the 24 px of a touch target (WCAG 2.5.8)."""
    port = running.http_port
    write(port, eventType="home-page-view", visitorId="v")
    status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                     {"eventType": "add-to-cart", "visitorId": "v-bad"})
    assert status == 400
    bucket = Path(running.settings.gcs_root) / "lines"
    bucket.mkdir(parents=True)
    (bucket / "bad.json").write_text('{"eventType": "search"}\n')
    status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:import", {
        "inputConfig": {"gcsSource": {"inputUris": ["gs://lines/bad.json"]}}})
    assert status == 200
    status, _ = rest(port, "POST", f"/v4/{TENANT}/clientEvents", {
        "eventId": "e-1", "createTime": "2026-01-01T00:00:00Z",
        "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j"]}})
    assert status == 200
    heights = in_chromium(browser_executable, tmp_path / "profile", measure_targets, port,
                          shots)
    for page, found in heights.items():
        assert found and min(found) >= 24, (page, heights)


# What the focus is on after a key, and whether it can be seen: a ring (the console's
# 3 px outline) around something on the screen.
STOP = """(e => {
  const style = getComputedStyle(e), r = e.getBoundingClientRect();
  return {tag: e.tagName, id: e.id, href: e.getAttribute('href'),
          text: (e.innerText || e.value || '').trim().slice(0, 50),
          ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
          seen: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight};
})(document.activeElement)"""


async def tab_to(devtools: DevTools, session: str, wanted: str, stops: list[dict[str, Any]],
                 back: bool = False, limit: int = 60) -> None:
    """Presses Tab (Shift+Tab, `back`) until the focused element `e` is `wanted` (a JS
    condition on e); each stop on the way is kept in `stops`."""
    for _ in range(limit):
        await devtools.press(session, "Tab", shift=back)
        stops.append(await devtools.evaluate(session, STOP))
        if await devtools.evaluate(session, f"(e => {wanted})(document.activeElement)"):
            return
    raise AssertionError(f"{wanted}: not reached by {limit} presses of Tab: {stops[-limit:]}")


async def work_by_keys_alone(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('#accepted li')"),
                    "the feed")
        stops: list[dict[str, Any]] = []
        seen: dict[str, Any] = {}
        # Another page, from the header's links.
        await tab_to(devtools, session, "e.getAttribute('href') === '#events'", stops)
        seen["skip first"] = stops[0]["text"] == "Skip to the page"
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(
            session, "!!document.querySelector('.results tbody a')"), "the events page")
        # (what a screen reader says of where the focus went, and the tab's title)
        seen["landed"] = [await devtools.evaluate(session, f"{FOCUSED}.id"),
                          (await accessible(devtools, session, "main"))["name"],
                          await devtools.evaluate(session, "document.title")]
        # A search with the filter.
        await tab_to(devtools, session, "e.id === 'filter'", stops)
        await devtools.type_text(session, 'eventType = "search"')
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(
            session, "location.hash.includes('filter=') && "
                     "document.querySelectorAll('.results tbody tr').length === 1"),
            "the search's one event")
        seen["found"] = await text_of(devtools, session, ".results tbody tr")
        # An event opened.
        await tab_to(devtools, session, "e.matches('.results tbody a')", stops)
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('pre.json')"),
                    "the event's page")
        seen["opened"] = await devtools.evaluate(
            session, "document.querySelector('main pre.json').innerText.includes('tent')")
        seen["opened title"] = await devtools.evaluate(session, "document.title")
        # Loaded afresh, the event is read by its id: its heading, and so the title,
        # name its type once it is in.
        await devtools.evaluate(session, "window.notReloaded = true; location.reload()")
        await until(lambda: devtools.evaluate(
            session, "!window.notReloaded && !!document.querySelector('pre.json')"),
            "the event, read afresh")
        seen["reloaded title"] = await devtools.evaluate(session, "document.title")
        # Back up to the header, to the operations; an import cancelled.
        await tab_to(devtools, session, "e.getAttribute('href') === '#operations'", stops,
                     back=True)
        await devtools.press(session, "Enter")
        running = "article.operation[data-state=running] button.cancel"
        await until(lambda: devtools.evaluate(session, f"!!document.querySelector({running!r})"),
                    "the import, running")
        await tab_to(devtools, session, "e.matches('button.cancel')", stops)
        await devtools.press(session, "Enter")
        seen["asked"] = await text_of(devtools, session, "main [role=status]")
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(
            session, "!!document.querySelector('article.operation[data-state=cancelled]')"),
            "the import, cancelled")
        await photograph(devtools, session, folder, "keys-alone-cancelled")
        # A catalog chosen from the catalogs' page: its feed.
        await tab_to(devtools, session, "e.getAttribute('href') === '#catalogs'", stops,
                     back=True)
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(
            session, "!!document.querySelector('main tbody button.link')"), "the catalogs")
        await tab_to(devtools, session, "e.matches('main tbody button.link')", stops)
        await devtools.press(session, "Enter")
        await until(lambda: devtools.evaluate(
            session, "location.hash === '#feed' && !!document.querySelector('#accepted li')"),
            "the chosen catalog's feed")
        await no_problems(devtools, session)
        seen["unseen"] = [stop for stop in stops if not (stop["ring"] and stop["seen"])]
        seen["presses"] = len(stops)
        return seen


def test_by_keys_alone_pages_are_switched_searched_opened_and_an_import_cancelled(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """Tab, Shift+Tab, Enter and typing only, as a keyboard user: every stop of the
    focus on the way has a ring, on the screen."""
    port = running.http_port
    write(port, eventType="home-page-view", visitorId="v-home")
    write(port, eventType="search", visitorId="v-search", searchQuery="tent")
    bucket = Path(running.settings.gcs_root) / "history"
    bucket.mkdir(parents=True)
    (bucket / "events.json").write_text("".join(
        f'{{"eventType": "home-page-view", "visitorId": "old-{n}", '
        f'"eventTime": "2025-06-01T00:00:00Z"}}\n' for n in range(BIG_IMPORT_EVENTS)))
    status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:import", {
        "inputConfig": {"gcsSource": {"inputUris": ["gs://history/events.json"]}}})
    assert status == 200
    seen = in_chromium(browser_executable, tmp_path / "profile", work_by_keys_alone, port,
                       shots)
    assert seen["skip first"], seen
    assert seen["landed"] == ["main", "Events", "Events – Footfall console"], seen
    assert re.fullmatch(r"Event \d+: search – Footfall console", seen["opened title"]), seen
    assert seen["reloaded title"] == seen["opened title"], seen
    assert "v-search" in seen["found"] and seen["opened"], seen
    assert seen["asked"].startswith("Press Cancel again within"), seen
    assert seen["unseen"] == [], seen
    print(f"{seen['presses']} presses of Tab")


async def pause_the_feed(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        shown = "document.querySelectorAll('#accepted li').length"
        await until(lambda: devtools.evaluate(session, f"{shown} === 3"), "the feed")
        await devtools.evaluate(session, "document.getElementById('catalog').focus()")
        stops: list[dict[str, Any]] = []
        await tab_to(devtools, session, "e.id === 'feed-pause'", stops, limit=3)
        await devtools.press(session, "Enter")
        seen: dict[str, Any] = {"pressed": await devtools.evaluate(
            session, "document.getElementById('feed-pause').getAttribute('aria-pressed')")}
        for n in range(4):
            write(port, eventType="home-page-view", visitorId=f"while-paused-{n}")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted-h .count').textContent === '7'"),
            "the new events counted")
        await asyncio.sleep(0.5)  # (any of them, shown, would be by now)
        seen["paused"] = [await devtools.evaluate(session, shown),
                          await text_of(devtools, session, "#feed-held")]
        await photograph(devtools, session, folder, "feed-paused")
        await devtools.press(session, "Enter")
        seen["resumed"] = [await devtools.evaluate(session, shown),
                           await text_of(devtools, session, "#accepted li"),
                           await devtools.evaluate(session, f"{FOCUSED}.id")]
        await no_problems(devtools, session)
        seen["ringed"] = all(stop["ring"] and stop["seen"] for stop in stops)
        return seen


def test_the_live_feed_can_be_paused_and_resumed_from_the_keyboard(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """Its lists moved as events came, with nothing to stop them (WCAG 2.2.2): an
    event read near the bottom went from the page. Paused, what comes is counted and
    held; resumed, it is shown, the newest on top."""
    for n in range(3):
        write(running.http_port, eventType="home-page-view", visitorId=f"before-{n}")
    seen = in_chromium(browser_executable, tmp_path / "profile", pause_the_feed,
                       running.http_port, shots)
    assert seen["pressed"] == "true" and seen["ringed"], seen
    assert seen["paused"] == [3, "4 new items held."], seen
    assert seen["resumed"][0] == 7 and "while-paused-3" in seen["resumed"][1], seen
    assert seen["resumed"][2] == "feed-pause", seen


async def turn_a_column_while_paused(devtools_url: str, port: int, folder: Path
                                     ) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#accepted li').length === 1"), "the feed")
        await until(lambda: devtools.evaluate(
            session, "!!document.querySelector('#refused-of-catalog')"), "the catalog's box")
        await devtools.evaluate(session, "document.getElementById('feed-pause').click()")
        status, _ = rest(port, "POST", f"/v2/{CATALOG}/userEvents:write",
                         {"eventType": "add-to-cart", "visitorId": "held-refusal"})
        assert status == 400
        await until(lambda: devtools.evaluate(
            session, "document.getElementById('feed-held').textContent === '1 new item held.'"),
            "the refusal held")
        await devtools.evaluate(session, "document.getElementById('refused-of-catalog').click()")
        await asyncio.sleep(0.5)  # (its list read again, listed: not news)
        seen = {"turned": await text_of(devtools, session, "#feed-held")}
        write(port, eventType="home-page-view", visitorId="after-the-turn")
        await until(lambda: devtools.evaluate(
            session, "document.querySelector('#accepted-h .count').textContent === '2'"),
            "the event counted")
        seen["then"] = await text_of(devtools, session, "#feed-held")
        await no_problems(devtools, session)
        return seen


def test_a_column_started_again_while_paused_takes_its_held_items_from_the_count(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """Paused with a refusal held, "Only those that named this catalog" turned reads
    the refused column again and lets its held items go: the Pause line said "1 new
    item held." of an item no resume would show (h8)."""
    write(running.http_port, eventType="home-page-view", visitorId="before")
    seen = in_chromium(browser_executable, tmp_path / "profile", turn_a_column_while_paused,
                       running.http_port, shots)
    assert seen == {"turned": "Paused: what comes is held.", "then": "1 new item held."}, seen


def client_event(port: int, event_id: str) -> None:
    status, answer = rest(port, "POST", f"/v4/{TENANT}/clientEvents", {
        "eventId": event_id, "createTime": "2026-01-01T00:00:00Z",
        "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j"]}})
    assert status == 200, answer


async def pause_the_talent_page(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#talent")
        rows = "document.querySelectorAll('main tbody tr').length"
        await until(lambda: devtools.evaluate(session, f"{rows} === 1"), "the client event")
        await asyncio.sleep(0.5)  # (its refusals' list, read after it)
        await devtools.evaluate(session, "document.getElementById('tenant').focus()")
        stops: list[dict[str, Any]] = []
        # (past the filter box, its Search and its three example filters since the
        # page took a filter, then the hint's links)
        await tab_to(devtools, session, "e.id === 'feed-pause'", stops, limit=14)
        await devtools.press(session, "Enter")
        for n in range(2):
            client_event(port, f"while-paused-{n}")
        await until(lambda: devtools.evaluate(
            session, "document.getElementById('feed-held').textContent.startsWith('2 ')"),
            "both held")
        said = await until(lambda: devtools.evaluate(
            session, "document.getElementById('feed-news').textContent"), "the news")
        seen = {"said": said, "paused": [await devtools.evaluate(session, rows),
                                         await text_of(devtools, session, "#feed-held")]}
        await photograph(devtools, session, folder, "talent-paused")
        await devtools.press(session, "Enter")
        seen["resumed"] = await devtools.evaluate(session, rows)
        await no_problems(devtools, session)
        return seen


def test_the_talent_page_says_what_came_and_can_be_paused(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    """The talent page's list grows as client events come, as the live feed's: it
    said nothing of them to a screen reader, and could not be stopped."""
    client_event(running.http_port, "before")
    seen = in_chromium(browser_executable, tmp_path / "profile", pause_the_talent_page,
                       running.http_port, shots)
    # (the first said at once, alone, or both together)
    assert seen["said"] in ("1 new event.", "2 new events."), seen
    assert seen["paused"] == [1, "2 new items held."] and seen["resumed"] == 3, seen
