"""The live feed asks every 4 s whether the first event it shows is still stored (a
watch from just before it, waited on for 5 s: feed.js whileStored). An answer that
does not come within those 5 s (a busy server, or the browser's six connections to it
all held by other tabs' streams) is not an answer that the event is gone: the feed must
not empty its column and say that what it showed was deleted (h7's review of stop 63)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import in_chromium, open_console, until
from .test_console import write
from .test_console_feed_reset import ACCEPTED, ACCEPTED_HINT

# Every watch of the catalog's events from a given id (the feed's own stream of them is
# opened from now, with no afterId) answers 6 s late, as a server behind would.
SLOW_CHECKS = """
(() => {
  const fetched = window.fetch.bind(window);
  window.fetch = async (url, init) => {
    const text = String(url instanceof Request ? url.url : url);
    if (text.includes("userEvents:watch") && text.includes("afterId=")) {
      window.slowChecks = (window.slowChecks || 0) + 1;
      await new Promise((resolve) => setTimeout(resolve, 6000));
    }
    return fetched(url, init);
  };
})();
"""


async def slow_checks(devtools_url: str, port: int) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#feed")
        await devtools.send("Page.addScriptToEvaluateOnNewDocument", {"source": SLOW_CHECKS},
                            session)
        await devtools.send("Page.reload", {}, session)
        await until(lambda: devtools.evaluate(session, f"({ACCEPTED}).includes('kept-2')"),
                    "the events written before")
        # Two checks answered late (one every 4 s, each waited on for 5 s).
        await until(lambda: devtools.evaluate(session, "(window.slowChecks || 0) >= 2"),
                    "two checks of the first event", within=20.0)
        await until(lambda: devtools.evaluate(session, "(window.slowChecks || 0) >= 3"),
                    "a third check (the second one's answer had its time)", within=20.0)
        return {"hint": await devtools.evaluate(session, ACCEPTED_HINT),
                "accepted": await devtools.evaluate(session, ACCEPTED)}


def test_a_late_answer_is_not_said_to_be_a_deletion(browser_executable: str,
                                                    running: Running, tmp_path: Path) -> None:
    for n in range(3):
        write(running.http_port, eventType="home-page-view", visitorId=f"kept-{n}")
    seen = in_chromium(browser_executable, tmp_path / "profile", slow_checks,
                       running.http_port, within=90)
    assert "deleted" not in seen["hint"], seen
    assert "kept-0" in seen["accepted"], seen
