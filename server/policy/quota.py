"""Write quotas: a token bucket per project, so one project's flood never slows
another.

Each project may spend `per_minute` tokens a minute, with a burst of up to a
minute's worth: one per write (WriteQuota), or one per request byte of a write
(ByteQuota), so a few huge events cannot fill the store either. A refused call
is RESOURCE_EXHAUSTED with a google.rpc.RetryInfo saying when enough tokens are
due. Time comes from an injectable clock, so tests need no sleeps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from server.clock import Clock, SystemClock
from server.errors import ResourceExhausted

# Buckets that are full again are forgotten (a full bucket is a new one); the
# sweep runs whenever the table grows past this many projects.
SWEEP_AT = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated_ns: int


class TokenBuckets:
    """Per-project token buckets refilled at `per_minute` tokens a minute, holding
    at most `burst` (a minute's worth by default)."""

    def __init__(self, per_minute: int, clock: Clock | None = None,
                 burst: float | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self._capacity = float(burst or per_minute)  # (a minute's worth unless given)
        self._per_ns = per_minute / 60e9
        self._clock = clock or SystemClock()
        self._buckets: dict[str, _Bucket] = {}
        self._sweep_at = SWEEP_AT
        self._lock = threading.Lock()

    def _refilled(self, bucket: _Bucket, now_ns: int) -> float:
        elapsed = max(now_ns - bucket.updated_ns, 0)  # a clock set back refills nothing
        return min(self._capacity, bucket.tokens + elapsed * self._per_ns)

    def try_take(self, project: str, amount: float = 1.0) -> float | None:
        """Spend `amount` of `project`'s tokens (at most the burst): None
        when granted, else the seconds until they are due."""
        now = self._clock.now_ns()
        with self._lock:
            bucket = self._buckets.get(project)
            if bucket is None:
                if len(self._buckets) >= self._sweep_at:
                    self._sweep(now)
                bucket = self._buckets[project] = _Bucket(self._capacity, now)
            bucket.tokens = self._refilled(bucket, now)
            bucket.updated_ns = max(bucket.updated_ns, now)
            if bucket.tokens >= amount:
                bucket.tokens -= amount
                return None
            return (amount - bucket.tokens) / (self._per_ns * 1e9)

    def give_back(self, project: str, amount: float = 1.0) -> None:
        """Return `amount` tokens taken for a call refused after all (by another quota)."""
        with self._lock:
            bucket = self._buckets.get(project)
            if bucket is not None:
                bucket.tokens = min(self._capacity, bucket.tokens + amount)

    def _sweep(self, now_ns: int) -> None:
        """Forget full buckets (under the lock); grows the threshold if few were."""
        full = [p for p, b in self._buckets.items() if self._refilled(b, now_ns) >= self._capacity]
        for project in full:
            del self._buckets[project]
        self._sweep_at = max(SWEEP_AT, 2 * len(self._buckets))

    def __len__(self) -> int:
        return len(self._buckets)


class WriteQuota(TokenBuckets):
    """One token per event write."""

    def take(self, project: str) -> None:
        """Spend a token; RESOURCE_EXHAUSTED with a RetryInfo when there is none."""
        wait = self.try_take(project)
        if wait is not None:
            raise ResourceExhausted(
                f"write quota of project {project!r} exhausted ({self.per_minute} writes "
                f"per minute); retry in {wait:.2f}s", retry_after=wait)


class ByteQuota(TokenBuckets):
    """One token per request byte of an event write."""

    def take(self, project: str, size: int) -> None:
        """Spend `size` tokens; RESOURCE_EXHAUSTED with a RetryInfo when there are
        too few, without one when `size` is more than a minute's worth (waiting
        would not help)."""
        if size > self.per_minute:
            raise ResourceExhausted(
                f"a write of {size} bytes is more than the byte quota of project "
                f"{project!r} ({self.per_minute} bytes per minute)")
        wait = self.try_take(project, size)
        if wait is not None:
            raise ResourceExhausted(
                f"byte quota of project {project!r} exhausted ({self.per_minute} bytes "
                f"per minute); retry in {wait:.2f}s", retry_after=wait)
