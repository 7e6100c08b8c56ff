"""Waking the callers waiting on operations (WaitOperation) when something changes.

Each waiter holds an Event of its own while it waits; `wake_all` sets every one,
and the waiter reads the store again. The runner calls it whenever this process
stops working on an operation (done, failed, paused or released), the service
when an operation is deleted; changes made by other replicas are seen by the
waiters' slow poll. Nothing is kept once a waiter leaves, so nothing grows.
`close` (the server is draining) wakes every waiter for good.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Wakeups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[threading.Event] = set()
        self.closed = False

    @contextmanager
    def waiter(self) -> Iterator[threading.Event]:
        """An Event that `wake_all` sets while the block runs."""
        wake = threading.Event()
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
