"""The tracker beside a shop's other scripts and its visitors' consent: Google
Analytics' cookie read as the visitor, never written; with data-consent="wait",
nothing read, written or sent until the page says the visitor agreed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools, chromium
from .pages import until
from .test_tracker import CATALOG, DEADLINE, site_of, stored

GA_VALUE = "GA1.1.1234567890.1700000000"
GA_CLIENT_ID = "1234567890.1700000000"  # what Google recommends as visitorId
# (GA's cookie lives two years, which Chromium cuts to 400 days: near the tracker's 395,
# it would not tell one cookie from the other)
GA_LIFE = 90 * 86400
SET_GA = f'document.cookie = "_ga={GA_VALUE}; Path=/; Max-Age={GA_LIFE}";'

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script>window.said = []; console.warn = (...words) => said.push(words.join(" "));
{before}</script>
<script src="http://127.0.0.1:{gateway}/footfall.js" data-parent="{catalog}"{attributes}></script>
</head><body><script>
window.tracked = footfall.track({{eventType: "home-page-view"}});
{after}
</script></body></html>
"""


async def cookies(devtools: DevTools) -> dict[str, dict[str, Any]]:
    """The browser's cookies by name."""
    return {c["name"]: c for c in (await devtools.send("Storage.getCookies"))["cookies"]}


async def visit_each(devtools_url: str, site: str, paths: list[str]) -> dict[str, Any]:
    """Each page once it has tracked its event, on a browser with no cookie before
    it: whether it was sent, what the page's console was told, the cookies after it."""
    seen = {}
    async with DevTools.connect(devtools_url) as devtools:
        for path in paths:
            await devtools.send("Storage.clearCookies")
            session = await devtools.open_page(f"{site}{path}")
            await until(lambda session=session: devtools.evaluate(
                session, "window.tracked !== undefined"), f"{path} to track", DEADLINE)
            seen[path] = {"sent": await devtools.evaluate(session, "window.tracked"),
                          "said": await devtools.evaluate(session, "window.said"),
                          "cookies": await cookies(devtools)}
            await devtools.send("Target.closeTarget", {"targetId": (await devtools.send(
                "Target.getTargetInfo", {}, session))["targetInfo"]["targetId"]})
    return seen


def test_google_analytics_client_id_is_the_visitor_and_its_cookie_is_left_alone(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """Google recommends GA's client id as visitorId. With cookieName "_ga" the
    tracker took the whole GA1.1.... value and wrote _ga again as its own 395-day
    cookie of the host; data-visitor-cookie="_ga" had no meaning."""
    def page(attributes: str, before: str = "", after: str = "") -> str:
        return PAGE.format(gateway=running.http_port, catalog=CATALOG, attributes=attributes,
                           before=before, after=after)

    pages = {
        "/read.html": page(' data-visitor-cookie="_ga"', before=SET_GA),
        # a shop that named GA's cookie as the tracker's own
        "/named.html": page(' data-cookie-name="_ga"', before=SET_GA),
        # GA's script, loading after the tracker, sets its cookie after the first event
        "/later.html": page(' data-visitor-cookie="_ga"',
                            after=f"setTimeout(() => {{ {SET_GA} }}, 300);"),
        # GA not there at all (blocked, or its consent refused)
        "/never.html": page(' data-visitor-cookie="_ga"'),
    }
    started = time.time()
    with site_of(pages) as site, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(visit_each(devtools_url, site, list(pages)),
                                            DEADLINE * 2))
    visitors = {e.uri.rpartition("/")[2]: e.visitor_id for e in stored(running, count=4)}
    assert all(s["sent"] is True for s in seen.values()), seen
    for path in ("/read.html", "/named.html", "/later.html"):
        assert visitors[path[1:]] == GA_CLIENT_ID, (path, visitors)
        ga = seen[path]["cookies"]["_ga"]
        # GA's cookie as GA set it: not rewritten for 395 days, and no cookie of ours
        assert ga["value"] == GA_VALUE, ga
        assert abs(ga["expires"] - (started + GA_LIFE)) < 120, (path, ga)
        assert set(seen[path]["cookies"]) == {"_ga"}, (path, seen[path]["cookies"])
    assert seen["/named.html"]["said"] == [
        'footfall: cookieName "_ga" names Google Analytics\' cookie, which the tracker never '
        'writes: the visitor is read from _ga, as data-visitor-cookie="_ga" does']
    # without GA's cookie, the tracker's own (after waiting for GA's a while)
    never = seen["/never.html"]["cookies"]
    assert set(never) == {"_footfall_vid"}, never
    assert visitors["never.html"] == never["_footfall_vid"]["value"]


# (every use of document.cookie is counted, the tracker's included)
CONSENT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Consent</title>
<script>
window.said = []; console.warn = (...words) => said.push(words.join(" "));
window.cookieUses = 0;
const jar = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
Object.defineProperty(document, "cookie", {{configurable: true,
  get() {{ cookieUses += 1; return jar.get.call(document); }},
  set(value) {{ cookieUses += 1; jar.set.call(document, value); }}}});
</script>
<script src="http://127.0.0.1:{gateway}/footfall.js" data-parent="{catalog}"
        data-consent="{consent}"></script>
</head><body><script>
window.trackedAt = Date.now();
window.tracked = Promise.all([
  footfall.track({{eventType: "home-page-view"}}),
  footfall.track({{eventType: "search", searchQuery: "tent"}})]);
window.done = false;
window.tracked.then(() => {{ window.done = true; }});
</script></body></html>
"""


async def waited(devtools: DevTools, session: str, running: Running) -> dict[str, Any]:
    """What a page that has tracked two events has done a second later."""
    await until(lambda: devtools.evaluate(session, "window.trackedAt !== undefined"),
                "the page to track", DEADLINE)
    await asyncio.sleep(1.0)  # what the tracker would send meanwhile has come
    return {"done": await devtools.evaluate(session, "window.done"),
            "cookie uses": await devtools.evaluate(session, "window.cookieUses"),
            "cookies": await cookies(devtools), "events": len(stored(running, count=0)),
            "said": await devtools.evaluate(session, "window.said")}


async def consent_twice(devtools_url: str, site: str, running: Running) -> dict[str, Any]:
    """A visitor who says yes on one page, then no on the next; then a page whose
    data-consent is mistyped."""
    seen: dict[str, Any] = {}
    async with DevTools.connect(devtools_url) as devtools:
        session = await devtools.open_page(f"{site}/wait.html")
        seen["before"] = await waited(devtools, session, running)
        seen["yes"] = await devtools.evaluate(session, "footfall.consent(true)")
        seen["sent"] = await devtools.evaluate(session, "window.tracked")
        seen["tracked_at"] = await devtools.evaluate(session, "window.trackedAt") / 1000
        seen["consented_cookies"] = await cookies(devtools)
        # the next page: tracked, then a no
        await devtools.send("Page.navigate", {"url": f"{site}/wait.html"}, session)
        await until(lambda: devtools.evaluate(session, "window.trackedAt !== undefined"),
                    "the next page to track", DEADLINE)
        seen["no"] = await devtools.evaluate(session, "footfall.consent(false)")
        seen["refused"] = await devtools.evaluate(session, "window.tracked")
        seen["after_no"] = await devtools.evaluate(
            session, "footfall.track({eventType: 'home-page-view'})")
        seen["refused_cookies"] = await cookies(devtools)
        await devtools.send("Page.navigate", {"url": f"{site}/typo.html"}, session)
        seen["typo"] = await waited(devtools, session, running)
    return seen


def test_with_data_consent_wait_nothing_is_read_written_or_sent_before_a_yes(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """A shop in the EU may set no cookie before its visitor consents: the tracker
    set its cookie and sent each event as the page tracked it."""
    pages = {f"/{name}.html": CONSENT_PAGE.format(gateway=running.http_port, catalog=CATALOG,
                                                  consent=consent)
             for name, consent in (("wait", "wait"), ("typo", "wiat"))}
    with site_of(pages) as site, \
            chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(consent_twice(devtools_url, site, running),
                                            DEADLINE * 2))
    nothing = {"done": False, "cookie uses": 0, "cookies": {}, "events": 0}
    assert seen["before"] == {**nothing, "said": []}, seen["before"]
    assert seen["yes"] is True and seen["sent"] == [True, True]
    events = stored(running, count=2)
    assert sorted(e.event_type for e in events) == ["home-page-view", "search"]
    visitor = seen["consented_cookies"]["_footfall_vid"]["value"]
    assert {e.visitor_id for e in events} == {visitor}
    # each at the time it was tracked, not when consent came
    for event in events:
        assert abs(event.event_time.ToMilliseconds() / 1000 - seen["tracked_at"]) < 0.5, event
    # a no: what was held is dropped, nothing more is sent, the tracker's cookie goes
    assert seen["no"] is False and seen["refused"] == [False, False]
    assert seen["after_no"] is False
    assert "_footfall_vid" not in seen["refused_cookies"], seen["refused_cookies"]
    # a mistyped data-consent waits as "wait" does, and says so
    assert seen["typo"] == {**nothing, "events": 2, "said": [
        'footfall: consent "wiat" is not known ("wait" is): nothing is sent before '
        'footfall.consent(true), as with "wait"']}, seen["typo"]
    running.store.flush()
    assert len(stored(running, count=0)) == 2
    assert running.store.rejections_newest(None, 10) == []
