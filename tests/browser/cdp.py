"""Debian's Chromium, headless, driven over the DevTools protocol (CDP).

Just what the browser tests need: start the browser on a fresh profile, open a
page in a new target, evaluate JavaScript in it, press keys and type as a person
would, set the window's size and take screenshots. The websocket is aiohttp's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp

# Quiet, offline, no first-run: the browser talks to nothing but the test's pages.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--no-default-browser-check",
         "--disable-dev-shm-usage", "--disable-extensions", "--disable-sync", "--mute-audio",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")
DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")
START_DEADLINE = 30.0


def find_chromium() -> str | None:
    """Debian's chromium (never a downloaded browser)."""
    return shutil.which("chromium")


@contextlib.contextmanager
def chromium(executable: str, profile: Path, more: tuple[str, ...] = ()) -> Iterator[str]:
    """A running headless Chromium on the fresh profile `profile` (`more`: flags
    besides FLAGS); yields its
    browser websocket URL; the process is ended however the block ends. Its
    temporary files go in a folder of its own, removed with it: ended, it left a
    folder of them in the system's (300 a run of the suite). (A short path: its
    socket's must fit in 108 bytes, which one under the test's folder did not.)"""
    scratch = tempfile.mkdtemp(prefix="footfall-chromium-")
    proc = subprocess.Popen([executable, *FLAGS, *more, f"--user-data-dir={profile}",
                             "about:blank"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, errors="replace",
                            env={**os.environ, "TMPDIR": scratch})
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    log: list[str] = []

    def drain() -> None:  # the pipe must never fill
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True, name="chromium-log").start()
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise RuntimeError(f"no DevTools URL from chromium within {START_DEADLINE}s:"
                                   f"\n{''.join(log)}") from None
            if line is None:
                raise RuntimeError(f"chromium exited with {proc.wait()}:\n{''.join(log)}")
            found = DEVTOOLS.search(line)
            if found:
                break
        yield found[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)


class DevTools:
    """One CDP websocket: `send` a command (optionally to a session), await its result."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[DevTools]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url, max_msg_size=0) as socket:
            devtools = cls(socket)
            try:
                yield devtools
            finally:
                devtools._reader.cancel()

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            waiter = self._waiting.pop(data.get("id", -1), None)
            if waiter is None or waiter.done():
                continue  # an event: not needed here
            if "error" in data:
                waiter.set_exception(RuntimeError(f"CDP error: {data['error']}"))
            else:
                waiter.set_result(data.get("result", {}))
        for waiter in self._waiting.values():
            waiter.set_exception(RuntimeError("the DevTools connection closed"))

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[number] = waiter
        await self._socket.send_str(json.dumps(message))
        return await waiter

    async def open_page(self, url: str) -> str:
        """A new tab showing `url`; returns the session to talk to it."""
        target = await self.send("Target.createTarget", {"url": url})
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True})
        return str(attached["sessionId"])

    async def evaluate(self, session: str, expression: str) -> Any:
        """The value of `expression` in the page (awaited if it is a Promise)."""
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True}, session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def press(self, session: str, key: str, shift: bool = False) -> None:
        """Press and release `key` ("Enter", "Tab", " ", "ArrowDown") in the focused
        element (with Shift held: Shift+Tab goes back)."""
        codes = {"Enter": 13, "Tab": 9, " ": 32, "Escape": 27, "ArrowDown": 40}
        text = {"Enter": "\r", " ": " "}.get(key, "")
        for kind in ("keyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", {
                "type": kind, "key": key, "windowsVirtualKeyCode": codes[key],
                "modifiers": 8 if shift else 0,
                **({"text": text} if kind == "keyDown" and text else {})}, session)

    async def type_text(self, session: str, text: str) -> None:
        """Type `text` into the focused element."""
        await self.send("Input.insertText", {"text": text}, session)

    async def viewport(self, session: str, width: int, height: int, mobile: bool) -> None:
        """Show the page as on a screen `width` CSS pixels wide (a phone's with `mobile`)."""
        await self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            session)

    async def color_scheme(self, session: str, scheme: str) -> None:
        """Show the page as under a system theme of `scheme` ("light" or "dark")."""
        await self.send("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]}, session)

    async def screenshot(self, session: str, path: Path) -> Path:
        """The page as a PNG at `path`, the whole of it (not only the window; at most
        4000 pixels high)."""
        size = (await self.send("Page.getLayoutMetrics", {}, session))["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000),
                "scale": 1}
        shot = await self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": clip}, session)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
