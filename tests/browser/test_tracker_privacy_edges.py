"""The tracker on a real shop's page, at the edges of consent and of Google
Analytics' cookie: answers a consent banner gives as strings, a no while GA's
cookie is awaited, a page left while it is, GA's session cookies, a cookie too
long to be a visitor, the script loaded twice, a visitor who never answers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.app import Running
from server.store import EventQuery

from .cdp import DevTools, chromium
from .pages import until
from .test_tracker import CATALOG, DEADLINE, site_of, stored
from .test_tracker_privacy import cookies

# `before` runs before the tracker loads, `body` after it; the page's console is kept
# in window.said.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script>window.said = [];
console.warn = (...words) => said.push("warn: " + words.join(" "));
console.error = (...words) => said.push("error: " + words.join(" "));
function view(name) {{
  return footfall.track({{eventType: "home-page-view", attributes: {{page: {{text: [name]}}}}}});
}}
{before}</script>
<script src="http://127.0.0.1:{gateway}/footfall.js" data-parent="{catalog}"{attributes}></script>
{more}
</head><body><a id="cart" href="/cart.html">Cart</a><script>
{body}
</script></body></html>
"""
CART = "<!doctype html><html><head><title>Cart</title></head><body>Cart</body></html>"


def page(running: Running, attributes: str = "", before: str = "", body: str = "",
         more: str = "") -> str:
    return PAGE.format(gateway=running.http_port, catalog=CATALOG, attributes=attributes,
                       before=before, body=body, more=more)


async def visit(devtools: DevTools, site: str, path: str, ready: str) -> dict[str, Any]:
    """The page at `path`, on a browser with no cookie before it, once `ready` (a
    JavaScript expression) is true: `window.seen`, the page's console, the cookies."""
    await devtools.send("Storage.clearCookies")
    session = await devtools.open_page(f"{site}{path}")
    await until(lambda: devtools.evaluate(session, ready), f"{path}: {ready}", DEADLINE)
    return {"seen": await devtools.evaluate(session, "window.seen"),
            "said": await devtools.evaluate(session, "window.said"),
            "cookies": await cookies(devtools)}


def visit_each(browser: str, profile: Path, site: str,
               paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each page of `paths` (path: when it is ready) in turn, in one browser."""
    async def scenario(devtools_url: str) -> dict[str, dict[str, Any]]:
        async with DevTools.connect(devtools_url) as devtools:
            return {path: await visit(devtools, site, path, ready)
                    for path, ready in paths.items()}

    with chromium(browser, profile) as devtools_url:
        return asyncio.run(asyncio.wait_for(scenario(devtools_url), DEADLINE * 2))


def pages_of(events: list[Any]) -> list[str]:
    return sorted(e.attributes["page"].text[0] for e in events)


def test_a_consent_of_denied_or_of_the_string_false_is_no_yes(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """footfall.consent took any truthy value as a yes: Google's consent mode's
    "denied", and a banner's "false" read back from its own cookie, set the tracker's
    cookie and sent what was held."""
    def answering(answer: str) -> str:
        return page(running, ' data-consent="wait"', body=f"""
window.seen = {{}};
view({answer!r}).then(sent => {{ seen.sent = sent; }});
seen.answer = footfall.consent({answer});""")

    pages = {"/denied.html": answering('"denied"'), "/false.html": answering('"false"'),
             "/granted.html": answering('"granted"')}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site, {
            "/denied.html": "window.seen?.sent !== undefined",
            "/false.html": "window.seen?.answer !== undefined",
            "/granted.html": "window.seen?.sent !== undefined"})
    assert seen["/denied.html"] == {"seen": {"answer": False, "sent": False}, "said": [],
                                    "cookies": {}}
    # no answer: the event is still held, nothing read or written
    assert seen["/false.html"] == {"seen": {"answer": None}, "cookies": {}, "said": [
        'error: footfall: footfall.consent("false") is no answer (true or "granted" is a '
        'yes, false or "denied" a no): nothing changes']}
    granted = seen["/granted.html"]
    assert granted["seen"] == {"answer": True, "sent": True}
    assert set(granted["cookies"]) == {"_footfall_vid"}
    events = stored(running, count=1)
    assert pages_of(events) == ['"granted"']
    assert events[0].visitor_id == granted["cookies"]["_footfall_vid"]["value"]


def test_a_no_while_ga_s_cookie_is_awaited_sends_nothing_and_sets_no_cookie(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A yes sends what was held, but an event then waits up to 2 s for GA's cookie:
    a no within them (the visitor changing their mind in the banner) was too late,
    the event was sent and, GA's cookie never coming, the tracker's own was set
    after the no."""
    pages = {"/changed.html": page(running, ' data-consent="wait" data-visitor-cookie="_ga"',
                                   body="""
window.seen = {};
view("changed").then(sent => { seen.sent = sent; });
footfall.consent(true);
setTimeout(() => { seen.no = footfall.consent(false); }, 300);""")}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site,
                          {"/changed.html": "window.seen?.sent !== undefined"})
    assert seen["/changed.html"] == {"seen": {"no": False, "sent": False}, "said": [],
                                     "cookies": {}}
    running.store.flush()
    assert stored(running, count=0) == []


def test_an_event_awaiting_ga_s_cookie_is_sent_when_its_page_is_left(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """An event waits up to 2 s for GA's cookie, on every page of a visitor whose GA
    is blocked: an add-to-cart whose button leads to the cart left its page before
    then, and was never sent."""
    pages = {"/tent.html": page(running, ' data-visitor-cookie="_ga"', body="""
document.getElementById("cart").addEventListener("click", () => view("add"));
setTimeout(() => document.getElementById("cart").click(), 200);"""),
             "/cart.html": CART}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site,
                          {"/tent.html": "location.pathname === '/cart.html'"})
    [added] = stored(running, count=1)
    assert pages_of([added]) == ["add"]
    # the tracker's own cookie, as after 2 s without GA's
    assert added.visitor_id == seen["/tent.html"]["cookies"]["_footfall_vid"]["value"]


def test_the_tracker_s_cookie_goes_once_ga_s_cookie_has_come(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A visitor whose GA cookie came after the 2 s the tracker waits for it (GA's
    script late, or its own consent given later) got the tracker's own cookie, which
    stayed for 13 months once GA's was the visitor, never read again."""
    pages = {"/late.html": page(running, ' data-visitor-cookie="_ga"', body="""
window.seen = {};
view("before").then(sent => {
  seen.before = document.cookie;
  document.cookie = "_ga=GA1.1.1234567890.1700000000; Path=/";
  return view("after");
}).then(sent => { seen.sent = sent; });""")}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site,
                          {"/late.html": "window.seen?.sent !== undefined"})
    late = seen["/late.html"]
    assert late["seen"]["sent"] is True and late["said"] == []
    own = late["seen"]["before"].removeprefix("_footfall_vid=")
    visitors = {e.attributes["page"].text[0]: e.visitor_id for e in stored(running, count=2)}
    assert visitors == {"before": own, "after": "1234567890.1700000000"}
    assert set(late["cookies"]) == {"_ga"}


def test_ga_s_session_cookie_and_a_value_too_long_to_be_a_visitor_are_not_taken(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """data-visitor-cookie naming GA's session cookie (_ga_CONTAINER, whose value
    changes with every visit) made each visit another visitor; a cookie over the 128
    characters of a visitorId had every event refused while track said true."""
    session = ("document.cookie = '_ga_ABC123=GS1.1.1700000000.1.1.1700000100.0.0.0; Path=/';"
               "document.cookie = '_ga=GA1.1.111.222; Path=/';")
    long = f"document.cookie = '_ga=GA1.1.{'9' * 200}; Path=/';"
    track = "window.seen = {}; view(location.pathname).then(sent => { seen.sent = sent; });"
    pages = {"/session.html": page(running, ' data-visitor-cookie="_ga_ABC123"', session, track),
             "/long.html": page(running, ' data-visitor-cookie="_ga"', long, track)}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site,
                          {path: "window.seen?.sent !== undefined" for path in pages})
    assert seen["/session.html"]["said"] == [
        'warn: footfall: visitorCookie "_ga_ABC123" names one of Google Analytics\' session '
        "cookies, whose value changes with each visit: the visitor is read from _ga, GA's "
        "client id"]
    assert seen["/long.html"]["said"] == [
        "error: footfall: the cookie _ga holds 206 characters, more than a visitorId's 128: "
        "the visitor is the tracker's own cookie's"]
    visitors = {e.attributes["page"].text[0]: e.visitor_id for e in stored(running, count=2)}
    assert visitors == {"/session.html": "111.222",
                        "/long.html": seen["/long.html"]["cookies"]["_footfall_vid"]["value"]}
    running.store.flush()
    assert running.store.rejections_newest(None, 10) == []


def test_a_page_that_loads_the_tracker_twice_keeps_the_first(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A shop's own tag and a tag manager's: the second took over window.footfall, so
    the events the first held for consent were never sent (their Promises never
    settled), and the page's later events had another pageViewId. A second tag that
    asks for consent is heeded all the same."""
    def twice(first: str, second: str) -> str:
        tag = f'<script src="http://127.0.0.1:{running.http_port}/footfall.js" ' \
              f'data-parent="{CATALOG}"{second}></script>'
        return page(running, first, more=f'<script>window.firstSent = view("first");</script>'
                    f'{tag}', body="""
window.seen = {cookies: document.cookie};
footfall.consent(true);
Promise.all([firstSent, view("second")]).then(sent => { seen.sent = sent; });""")

    pages = {"/twice.html": twice(' data-consent="wait"', ' data-consent="wait"'),
             "/asks.html": twice("", ' data-consent="wait"')}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site,
                          {path: "window.seen?.sent !== undefined" for path in pages})
    twice_seen, asks = seen["/twice.html"], seen["/asks.html"]
    assert twice_seen["seen"] == {"cookies": "", "sent": [True, True]}
    assert twice_seen["said"] == [
        "warn: footfall: footfall.js is loaded twice on this page: the first one tracks, with "
        "its own settings; this one does nothing more"]
    # the first tag's event went before the second tag asked for consent; the second's
    # waited for the yes
    assert asks["seen"]["sent"] == [True, True]
    assert asks["said"] == [
        "warn: footfall: footfall.js is loaded twice on this page: the first one tracks, with "
        "its own settings (and this one's data-consent); this one does nothing more"]
    events = stored(running, count=4)
    assert pages_of(events) == ["first", "first", "second", "second"]
    for path in pages:
        views = {e.page_view_id for e in events if e.uri.endswith(path)}
        assert len(views) == 1, (path, views)


def test_the_events_held_for_a_visitor_who_never_answers_are_bounded(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A single-page shop whose visitor ignores the banner tracked on, every event
    held in the page for as long as it stayed open, all sent together on a yes."""
    pages = {"/spa.html": page(running, ' data-consent="wait"', body="""
window.seen = {};
const all = [];
for (let i = 0; i < 1001; i++) all.push(view("view " + i));
all[1000].then(sent => { seen.past = sent; });
setTimeout(() => {
  footfall.consent(true);
  Promise.all(all).then(sent => { seen.sent = sent.filter(Boolean).length; });
}, 100);""")}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site,
                          {"/spa.html": "window.seen?.sent !== undefined"})
    assert seen["/spa.html"]["seen"] == {"past": False, "sent": 1000}
    assert seen["/spa.html"]["said"] == [
        "warn: footfall: 1000 events are held for the visitor's consent: later ones are "
        "dropped until footfall.consent(true)"]
    running.store.flush()  # (every pixel was answered: its event is queued or committed)
    assert running.store.count_user_events(EventQuery(CATALOG)) == 1000
