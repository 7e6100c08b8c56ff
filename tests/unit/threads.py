"""Running a call on a thread of its own, for tests that need two at once, and
waiting for what it does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `call` on a started thread; its result (or exception) lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:  # handed to the test
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def until(probe: Callable[[], bool], what: str) -> None:
    """Poll `probe` for up to 10 s (nothing says when a call on another thread has
    reached the point a test waits for)."""
    checked = threading.Event()
    for _ in range(1000):
        if probe():
            return
        checked.wait(0.01)
    raise AssertionError(f"gave up waiting for {what}")
