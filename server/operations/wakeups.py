"""Waking the callers waiting on operations (WaitOperation) when something changes.

Each waiter is a coroutine holding a Wake of its own while it waits; `wake_all`
(from any thread: the runner's workers call it) sets every one on its loop, and
the waiter reads the store again. The runner calls it whenever this process
stops working on an operation (done, failed, paused or released), the service
when an operation is deleted; changes made by other replicas are seen by the
waiters' slow poll. Nothing is kept once a waiter leaves, so nothing grows.
`close` (the server is draining) wakes every waiter for good.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Wake:
    """One waiter's flag: set from any thread, waited for on its loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # its loop is closed: nobody waits any more
            pass

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, seconds: float) -> None:
        """Until set, or `seconds` at most."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            pass


class Wakeups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[Wake] = set()
        self.closed = False

    @contextmanager
    def waiter(self) -> Iterator[Wake]:
        """A Wake (of the running loop) that `wake_all` sets while the block runs."""
        wake = Wake()
        with self._lock:
            self._waiting.add(wake)
        try:
            yield wake
        finally:
            with self._lock:
                self._waiting.discard(wake)

    def close(self) -> None:
        """Waiters should answer now: the process is shutting down."""
        self.closed = True
        self.wake_all()

    def wake_all(self) -> None:
        with self._lock:
            waiting = list(self._waiting)
        for wake in waiting:
            wake.set()

    @property
    def waiting(self) -> int:
        """How many waiters there are now."""
        return len(self._waiting)
