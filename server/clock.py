"""Time, injectable so tests and operations need no sleeps."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

# How far the wall clock may run ahead of the time elapsed before Unstepped takes it
# for a step: far more than NTP ever slews, far less than a day of deletions.
STEP_SECONDS = 600.0
# Linux's clock that counts time suspended and is never stepped; elsewhere the
# monotonic one.
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class Clock(Protocol):
    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch."""


class SystemClock:
    def now_ns(self) -> int:
        return time.time_ns()

    def elapsed_ns(self) -> int:
        """Nanoseconds since the machine started, its time suspended included; never
        stepped, whatever the wall clock does."""
        return time.clock_gettime_ns(_BOOTTIME)


class FixedClock:
    """A clock that moves only when told to (for tests)."""

    def __init__(self, now_ns: int) -> None:
        self.value = now_ns
        self._elapsed = 0

    def now_ns(self) -> int:
        return self.value

    def elapsed_ns(self) -> int:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        self.value += int(seconds * 1e9)
        self._elapsed += int(seconds * 1e9)

    def step(self, seconds: float) -> None:
        """Set the wall clock `seconds` later (earlier if negative) with no time elapsed:
        an NTP jump, a clock set by hand."""
        self.value += int(seconds * 1e9)


class Unstepped:
    """The wall clock as far as the time elapsed bears it out, for what deletes by age
    (retention, the operation sweep). From its first reading on, a reading of `clock`
    more than STEP_SECONDS ahead of that first one plus the time elapsed since (the
    clock's `elapsed_ns`: CLOCK_BOOTTIME) is a step forward (an NTP jump, a clock set
    wrong by hand) that it does not follow: it answers the first reading plus the time
    elapsed, and says so once, in the words of `what`. Until the process restarts,
    then, what is deleted by age waits as long as the step. A clock that goes back is
    followed (what is deleted by age waits longer), and read as the new reference."""

    def __init__(self, clock: Clock, what: str) -> None:
        self._clock = clock
        elapsed: Callable[[], int] | None = getattr(clock, "elapsed_ns", None)
        self._elapsed = elapsed or SystemClock().elapsed_ns
        self._what = what
        self._reference: tuple[int, int] | None = None  # (wall, elapsed) read together
        self._stepped = False

    def now_ns(self) -> int:
        wall, elapsed = self._clock.now_ns(), self._elapsed()
        if self._reference is None:
            self._reference = (wall, elapsed)
            return wall
        borne_out = self._reference[0] + (elapsed - self._reference[1])
        if wall < borne_out:
            self._reference = (wall, elapsed)
        if wall <= borne_out + STEP_SECONDS * 1e9:
            self._stepped = False
            return wall
        if not self._stepped:
            self._stepped = True
            log.error("%s: the wall clock stepped %.0f s ahead of the time elapsed since "
                      "this process first read it; %s goes on by the time elapsed, not by "
                      "the step, until the server restarts", self._what,
                      (wall - borne_out) / 1e9, self._what)
        return borne_out


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
