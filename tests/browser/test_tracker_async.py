"""The tracker loaded async, as a shop loads every third-party tag: the README's
one-line stub takes the page's calls before the tracker has loaded, and the
tracker makes them once it has, in their order and as of their time, with
consent awaited, under a Content-Security-Policy, and with the tracker loaded twice."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from server.app import Running

from .test_tracker import CATALOG, DEADLINE, site_of
from .test_tracker_privacy_edges import visit_each

README = Path(__file__).resolve().parents[2] / "README.md"


def from_readme(pattern: str) -> str:
    found = re.search(pattern, README.read_text(), re.MULTILINE)
    assert found, pattern
    return found[1]


# The stub as the README gives it, and the hash it gives for a page's CSP.
STUB = from_readme(r"^<script>(window\.footfall=.*)</script>$")
STUB_HASH = from_readme(r"'(sha256-[A-Za-z0-9+/=]+)'` in `script-src`")

# The page's console is kept in window.said, with what its CSP refused and what threw;
# view() notes when it was called (and whether the stub took it) in window.calls, 5 ms
# after the one before, so that their order shows in their times.
HEAD = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>{csp}
<script nonce="shop">window.said = []; window.calls = [];
console.warn = (...words) => said.push("warn: " + words.join(" "));
console.error = (...words) => said.push("error: " + words.join(" "));
document.addEventListener("securitypolicyviolation",
  (e) => said.push(`csp: ${{e.blockedURI || "inline"}} (${{e.violatedDirective}})`));
window.addEventListener("error", (e) => said.push("error: " + e.message));
function view(name, track) {{
  const last = calls.length ? calls[calls.length - 1].at : 0;
  while (Date.now() < last + 5) {{ /* (5 ms at most) */ }}
  calls.push({{name: name, at: Date.now(), stubbed: Boolean(footfall.queue)}});
  return (track || footfall.track)({{eventType: "home-page-view",
                                    attributes: {{page: {{text: [name]}}}}}});
}}
</script>
<script>{stub}</script>
"""


def tag(running: Running, attributes: str = "") -> str:
    return (f'<script async src="http://127.0.0.1:{running.http_port}/footfall.js" '
            f'data-parent="{CATALOG}"{attributes}></script>')


def head(running: Running, csp: bool = False) -> str:
    gateway = f"http://127.0.0.1:{running.http_port}"
    policy = (f'\n<meta http-equiv="Content-Security-Policy" content="script-src \'nonce-shop\' '
              f"'{STUB_HASH}' {gateway}; img-src {gateway}; connect-src {gateway}\">")
    return HEAD.format(csp=policy if csp else "", stub=STUB)


def listed(running: Running, count: int) -> list[dict[str, Any]]:
    """The catalog's events, as ListUserEvents answers them, once there are `count`;
    oldest first."""
    url = f"http://127.0.0.1:{running.http_port}/console/v1/{CATALOG}/userEvents"
    deadline = time.monotonic() + DEADLINE
    while True:
        with urllib.request.urlopen(url, timeout=DEADLINE) as answer:
            events = [e["userEvent"] for e in json.load(answer).get("userEvents", [])]
        if len(events) >= count or time.monotonic() > deadline:
            return events[::-1]  # (latest eventTime first)
        time.sleep(0.1)


def millis(event: dict[str, Any]) -> int:
    at = datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
    return round(at.timestamp() * 1000)


def page_of(event: dict[str, Any]) -> str:
    return str(event["attributes"]["page"]["text"][0])


def test_calls_made_before_an_async_tracker_loads_are_made_in_order_as_of_their_time(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """With `async` on its tag, the tracker ran after the page's inline scripts, whose
    footfall.track and a consent banner's footfall.consent threw "footfall is not
    defined". Through the README's stub, under a CSP that lets it in by its hash, they
    are made once the tracker loads; a tracker that took the stub for a first copy of
    itself made none of them."""
    assert STUB_HASH == "sha256-" + base64.b64encode(
        hashlib.sha256(STUB.encode()).digest()).decode()
    # Its consent awaited, the stub's events and its yes from before the tracker, and
    # an event after the tracker has loaded.
    waits = head(running, csp=True) + tag(running, ' data-consent="wait"') + """
</head><body><script nonce="shop">
const sent = [view("before the tag"), view("in the body")];
const answer = footfall.consent(true);
addEventListener("load", () => {
  sent.push(view("once loaded"));
  Promise.all([Promise.all(sent), answer]).then(([sent, answer]) => {
    window.seen = {sent: sent, answer: answer, calls: calls};
  });
});
</script></body></html>"""
    # The tracker's tag added 300 ms after the page's first event, as a tag manager
    # does; a page that kept the stub's footfall.track calls it once the tracker is in.
    later = head(running) + f"""</head><body><script nonce="shop">
const tracker = "http://127.0.0.1:{running.http_port}/footfall.js", parent = "{CATALOG}";
""" + """const kept = footfall.track;
const sent = [view("first")];
setTimeout(() => {
  sent.push(view("second"));
  const script = document.createElement("script");
  script.async = true;
  script.src = tracker;
  script.setAttribute("data-parent", parent);
  script.onload = () => {
    window.loadedAt = Date.now();
    sent.push(view("third"), view("through the kept stub", kept));
    Promise.all(sent).then(sent => {
      window.seen = {sent: sent, calls: calls, loadedAt: loadedAt};
    });
  };
  document.head.appendChild(script);
}, 300);
</script></body></html>"""
    pages = {"/waits.html": waits, "/later.html": later}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site,
                          {path: "window.seen !== undefined" for path in pages})

    waited = seen["/waits.html"]
    assert waited["said"] == []  # nothing thrown, nothing the CSP refused
    assert waited["seen"]["sent"] == [True, True, True]
    assert waited["seen"]["answer"] is True
    before_the_tag, _, once_loaded = waited["seen"]["calls"]
    assert before_the_tag["stubbed"] is True and once_loaded["stubbed"] is False
    assert set(waited["cookies"]) == {"_footfall_vid"}
    kept = seen["/later.html"]
    assert kept["said"] == []
    assert kept["seen"]["sent"] == [True] * 4
    assert [c["stubbed"] for c in kept["seen"]["calls"]] == [True, True, False, False]

    events = listed(running, count=7)
    times = {f"/{e['uri'].rpartition('/')[2]} {page_of(e)}": millis(e) for e in events}
    calls = {f"{path} {c['name']}": c for path in pages for c in seen[path]["seen"]["calls"]}
    assert set(times) == set(calls)
    for name, call in calls.items():
        # at the time the page made the call, not when the tracker made it: the clock
        # read by the stub (or the tracker) right after the page read it (within 100
        # ms: a CI run under load once had 17 between the two; the tracker loads 300 ms
        # and more after the calls it was not there for)
        late = times[name] - call["at"]
        assert 0 <= late <= 100, (name, late)
    for path in pages:
        on_page = [page_of(e) for e in events if e["uri"].endswith(path)]
        assert on_page == [c["name"] for c in seen[path]["seen"]["calls"]], on_page
        assert len({e["pageViewId"] for e in events if e["uri"].endswith(path)}) == 1
    # the page's time, 300 ms and more before the tracker had loaded
    assert times["/later.html first"] <= kept["seen"]["loadedAt"] - 300


def test_a_stub_is_no_first_copy_and_its_no_drops_what_it_tracked(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    """Two async tags after the stub (a shop's own and a tag manager's): the first to
    load replaces the stub and makes its calls, the second changes nothing. A no
    made through the stub drops what the stub tracked, its Promises saying false."""
    twice = head(running) + tag(running, ' data-consent="wait"') + tag(running) + """
</head><body><script nonce="shop">
const sent = view("once");
const answer = footfall.consent("granted");
addEventListener("load", () => {
  Promise.all([sent, answer]).then(([sent, answer]) => {
    window.seen = {sent: sent, answer: answer};
  });
});
</script></body></html>"""
    denied = head(running) + tag(running, ' data-consent="wait"') + """
</head><body><script nonce="shop">
Promise.all([view("denied"), footfall.consent("denied"), footfall.init({})])
  .then(([sent, answer, config]) => {
    window.seen = {sent: sent, answer: answer, consent: config.consent};
  });
</script></body></html>"""
    pages = {"/twice.html": twice, "/denied.html": denied}
    with site_of(pages) as site:
        seen = visit_each(browser_executable, tmp_path / "profile", site,
                          {path: "window.seen !== undefined" for path in pages})

    assert seen["/twice.html"]["seen"] == {"sent": True, "answer": True}
    [warned] = seen["/twice.html"]["said"]
    assert warned.startswith("warn: footfall: footfall.js is loaded twice on this page")
    assert seen["/denied.html"] == {"seen": {"sent": False, "answer": False,
                                             "consent": "wait"},
                                    "said": [], "cookies": {}}
    # (sent with the first copy's pageViewId once, its pixel answered before the page's
    # Promise said so: a second copy's, had it sent one too, with it)
    assert [page_of(e) for e in listed(running, count=1)] == ["once"]
