"""Driving a console page in Chromium as a person would, for any browser test
(imports nothing of ours, so a test beside the official clients may use it too):
wait for what the page shows, press keys in it, photograph it at a desktop and a
phone width with no CSP refusal or script error on the way. Screenshots go to a
test's temporary folder and are copied to screenshots/ at the top of the worktree.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from .cdp import DevTools, chromium

DEADLINE = 30.0
SCREENS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
COPIES = Path(__file__).resolve().parents[2] / "screenshots"


@contextlib.contextmanager
def screenshots(tmp_path: Path, name: str) -> Iterator[Path]:
    """A folder for the screenshots of test `name`, copied to screenshots/ when
    the block ends."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    print(f"\nscreenshots of {name}: {folder}")
    yield folder
    COPIES.mkdir(exist_ok=True)
    for shot in folder.iterdir():
        shutil.copy(shot, COPIES / shot.name)


# What DevTools answers an evaluation that a navigation (a reload) cut short.
_NAVIGATED = ("Inspected target navigated or closed", "Execution context was destroyed",
              "Cannot find context with specified id")


async def until(check: Callable[[], Awaitable[Any]], what: str,
                within: float = DEADLINE) -> Any:
    """The first truthy value of `check()`, asked every 20 ms (one cut short by a
    navigation counts as falsy); fails after `within`."""
    end = time.monotonic() + within
    while True:
        try:
            value = await check()
        except RuntimeError as error:
            if not any(said in str(error) for said in _NAVIGATED):
                raise
            value = None
        if value:
            return value
        assert time.monotonic() < end, f"{what}: not within {within}s"
        await asyncio.sleep(0.02)


async def photograph(devtools: DevTools, session: str, folder: Path, name: str,
                     screens: dict[str, tuple[int, int, bool]] = SCREENS,
                     back_to: str = "desktop") -> None:
    """`name`-desktop.png and `name`-phone.png (or one for each of `screens`) of the page
    as it is, and back to `back_to`. At every width nothing may be wider than the screen."""
    for screen, (width, height, mobile) in screens.items():
        await devtools.viewport(session, width, height, mobile)
        await asyncio.sleep(0.3)  # one layout and paint
        # Against the width asked for: a phone's innerWidth grows to fit what overflows.
        overflow = await devtools.evaluate(
            session, f"Math.max(document.documentElement.scrollWidth, innerWidth) - {width}")
        assert overflow <= 0, f"{name} is {overflow}px wider than a {width}px screen"
        await devtools.screenshot(session, folder / f"{name}-{screen}.png")
    await devtools.viewport(session, *screens[back_to])


# Installed before the page's own scripts: what the CSP refused and what threw.
WATCH_PROBLEMS = """
window.problems = [];
document.addEventListener("securitypolicyviolation",
  (e) => problems.push(`CSP refused ${e.blockedURI || "inline"} (${e.violatedDirective})`));
window.addEventListener("error", (e) => problems.push(`error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => problems.push(`rejection: ${e.reason}`));
"""


# Installed before the page's own scripts: the server cannot say what a key grants
# (GET /console/v1/caller is NOT_FOUND, as from a server before GetCaller): the console
# falls back on its project's form, where a project id is typed.
CALLER_UNKNOWN = """
const fetchAsItIs = window.fetch;
window.fetch = (url, init) => String(url).startsWith("/console/v1/caller")
  ? Promise.resolve(new Response(JSON.stringify({error: {code: 404, status: "NOT_FOUND",
      message: "no route"}}), {status: 404, headers: {"Content-Type": "application/json"}}))
  : fetchAsItIs(url, init);
"""


async def open_console(devtools: DevTools, url: str, key: str | None = None,
                       project: str | None = None, script: str = "") -> str:
    """A tab showing `url` at the desktop size, its problems recorded from the start;
    `key` and `project`: as if entered in this tab before (sessionStorage); `script`:
    run before the page's own (CALLER_UNKNOWN, say)."""
    session = await devtools.open_page("about:blank")
    await devtools.send("Page.enable", {}, session)
    given = "".join(f"sessionStorage.setItem({name!r}, {value!r});" for name, value in (
        ("footfall.apiKey", key), ("footfall.project", project)) if value is not None)
    await devtools.send("Page.addScriptToEvaluateOnNewDocument",
                        {"source": WATCH_PROBLEMS + given + script}, session)
    await devtools.viewport(session, *SCREENS["desktop"])
    await devtools.send("Page.navigate", {"url": url}, session)
    return session


async def no_problems(devtools: DevTools, session: str) -> None:
    problems = await devtools.evaluate(session, "window.problems")
    assert problems == [], problems


async def text_of(devtools: DevTools, session: str, selector: str) -> str:
    return str(await devtools.evaluate(
        session, f"document.querySelector({selector!r})?.innerText || ''"))


async def go(devtools: DevTools, session: str, hash_: str, ready: str) -> None:
    """Show the page `hash_` and wait until `ready` (a selector) is on it."""
    await devtools.evaluate(session, f"location.hash = {hash_!r}")
    await until(lambda: devtools.evaluate(session, f"!!document.querySelector({ready!r})"),
                f"{hash_} showing {ready}")


async def focus_and_press(devtools: DevTools, session: str, selector: str) -> None:
    """Focus `selector` and press Enter: what a keyboard user does."""
    assert await devtools.evaluate(
        session, f"(e => {{ e.focus(); return document.activeElement === e }})"
                 f"(document.querySelector({selector!r}))"), selector
    await devtools.press(session, "Enter")


def in_chromium(executable: str, profile: Path, scenario: Callable[..., Awaitable[Any]],
                *args: Any, within: float = DEADLINE * 2) -> Any:
    """What `scenario(devtools_url, *args)` returns, run in a Chromium of its own (its
    profile in `profile`) within `within` seconds."""
    with chromium(executable, profile) as devtools_url:
        return asyncio.run(asyncio.wait_for(scenario(devtools_url, *args), within))


async def shown(devtools: DevTools, port: int, hash_: str, selector: str, what: str,
                folder: Path, name: str) -> str:
    """A console tab at `#hash_` once `selector` is on the page, with no problem,
    photographed as `name`; its session."""
    session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#{hash_}")
    await until(lambda: devtools.evaluate(session, f"!!document.querySelector({selector!r})"),
                what)
    await no_problems(devtools, session)
    await photograph(devtools, session, folder, name)
    return session


async def accessible(devtools: DevTools, session: str, selector: str) -> dict[str, str]:
    """What a screen reader is told of the element `selector`: its role, name and
    description, as the browser's accessibility tree has them."""
    document = await devtools.send("DOM.getDocument", {"depth": 0}, session)
    found = await devtools.send("DOM.querySelector", {
        "nodeId": document["root"]["nodeId"], "selector": selector}, session)
    assert found.get("nodeId"), selector
    tree = await devtools.send("Accessibility.getPartialAXTree", {
        "nodeId": found["nodeId"], "fetchRelatives": False}, session)
    node = tree["nodes"][0]
    return {part: str(node.get(part, {}).get("value", "")) for part in
            ("role", "name", "description")}
