"""The console's Content-Security-Policy allows scripts of this origin (`'self'`).
What else this origin answers is no script: a page that names a JSON answer,
/metrics or /healthz as a `<script src>` has it refused, by its type
(`X-Content-Type-Options: nosniff`). Without nosniff Chromium ran each of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.app import Running

from .cdp import DevTools, chromium
from .pages import no_problems, open_console, until
from .test_console import CATALOG, DEADLINE, write

# Answers of this origin whose bodies parse as JavaScript (`{}` is an empty block,
# `SERVING` a name; /metrics's `#` lines are not, and were run all the same).
SOURCES = ("/healthz", "/metrics", f"/console/v1/{CATALOG}/rejections",
           f"/console/v1/{CATALOG}/userEvents:count")
LOAD = """(async () => Object.fromEntries(await Promise.all(%s.map((src) =>
  new Promise((done) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = () => done([src, "ran"]);
    script.onerror = () => done([src, "refused"]);
    document.head.append(script);
  })))))()"""


async def load_as_scripts(devtools_url: str, port: int) -> dict[str, str]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#catalogs")
        await until(lambda: devtools.evaluate(session, "!!document.querySelector('main h2')"),
                    "the catalogs page")
        seen: dict[str, str] = await devtools.evaluate(session, LOAD % list(SOURCES))
        await no_problems(devtools, session)
        return seen


def test_this_origins_answers_are_refused_as_scripts(
        browser_executable: str, running: Running, tmp_path: Path) -> None:
    write(running.http_port, eventType="home-page-view", visitorId="v")
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(load_as_scripts(
            devtools_url, running.http_port), DEADLINE * 2))
    assert seen == dict.fromkeys(SOURCES, "refused"), seen
