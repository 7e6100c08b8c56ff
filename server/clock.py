"""Time, injectable so tests and operations need no sleeps."""

from __future__ import annotations

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
