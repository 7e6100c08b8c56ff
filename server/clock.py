"""Time, injectable so tests and operations need no sleeps."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch."""


class SystemClock:
    def now_ns(self) -> int:
        return time.time_ns()


class FixedClock:
    """A clock that moves only when told to (for tests)."""

    def __init__(self, now_ns: int) -> None:
        self.value = now_ns

    def now_ns(self) -> int:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += int(seconds * 1e9)


class EventStamps:
    """The times the server gives the events sent without one. Two equal events with
    the same time are one event (the dedup index), so two writes of equal events
    stamped alike were stored once, though both were acknowledged: under
    `--processes 2` one write in 90,500 was lost so (two processes read the same
    nanosecond). So each stamp is later than the last this process gave, and, among
    `count` processes of one server, congruent to this process's `index` modulo
    `count` (in nanoseconds): no two events of one server get the same time."""

    def __init__(self, clock: Clock, index: int = 0, count: int = 1) -> None:
        self._clock = clock
        self._index = index
        self._count = count
        self._last = -1
        self._lock = threading.Lock()  # (the loop stamps; a test's threads may too)

    def now_ns(self) -> int:
        """A time for an event received now: the clock's, a few nanoseconds later at
        most (or, should the clock stand still or go back, just after the last)."""
        now = self._clock.now_ns()
        now += (self._index - now) % self._count
        with self._lock:
            if now <= self._last:
                now = self._last + self._count
            self._last = now
        return now
