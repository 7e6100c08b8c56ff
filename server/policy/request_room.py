"""The room of the gRPC requests being read or served at once, in bytes
(--max-request-bytes-held): the bound the HTTP side's request bodies have
(gateway.BODIES_HELD), which gRPC's requests had not.

grpc takes a request in whole before Footfall may look at it, and does not tell its
size until then: 300 calls of 9 MiB at once (auth off, anyone may send them) took
the server from 60 MB to 3.4 GB. So a call's request is read only once there is
room for the largest one (--max-request-bytes), and, read, holds its actual size
until the call ends. A call not yet let read holds no more than its stream's HTTP/2
window in grpc's core (app.STREAM_WINDOW_BYTES: grpc's own, grown by its bandwidth
probe, let it take in whole requests no one had asked for).

Calls waiting for room are let read in the order they came, and wait at most
WAIT_SECONDS: then RESOURCE_EXHAUSTED, naming the flag. A read that has gone on for
SLOW_READ_SECONDS while others wait is ended to make room (a client that sends the
headers and trickles its request would otherwise keep every other one waiting).
Touched on the loop only.
"""

from __future__ import annotations

import asyncio
import collections
import time

from server.errors import ResourceExhausted

WAIT_SECONDS = 10.0
SLOW_READ_SECONDS = 5.0
SLOW = "slow read"  # why a read was cancelled to make room (CancelledError's argument)


class RequestRoom:
    """`room` bytes (at least `most`, the largest request) for the requests of calls
    being read (each counted as `most` until it is in) or served (counted as their
    size)."""

    def __init__(self, room: int, most: int, wait_seconds: float | None = None,
                 slow_seconds: float | None = None) -> None:
        self.most = most
        self.room = max(room, most)
        self.held = 0  # bytes of requests read, their calls not yet ended
        self.wait_seconds = WAIT_SECONDS if wait_seconds is None else wait_seconds
        self.slow_seconds = SLOW_READ_SECONDS if slow_seconds is None else slow_seconds
        self._reading: dict[asyncio.Task[object], float] = {}  # oldest first: its start
        self._waiting: collections.deque[asyncio.Event] = collections.deque()

    @property
    def reading(self) -> int:
        return len(self._reading)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _fits(self) -> bool:
        taken = self.held + len(self._reading) * self.most
        return taken == 0 or taken + self.most <= self.room

    async def enter(self) -> None:
        """Once the current task (a call's) may read its request: call `read` once it
        is in, or `leave` if it never comes. RESOURCE_EXHAUSTED after `wait_seconds`
        without room."""
        task = asyncio.current_task()
        assert task is not None
        if not self._waiting and self._fits():
            self._reading[task] = time.monotonic()
            return
        turn = asyncio.Event()
        self._waiting.append(turn)
        deadline = time.monotonic() + self.wait_seconds
        try:
            while True:
                self._end_slow_read()
                if self._waiting[0] is turn and self._fits():
                    self._reading[task] = time.monotonic()
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ResourceExhausted(
                        f"the gRPC requests being read or served hold the room of all of "
                        f"them ({self.room} bytes, --max-request-bytes-held); retry "
                        f"shortly", retry_after=1.0)
                oldest = next(iter(self._reading.values()), None)
                if oldest is not None and self._room_in_reads():
                    # (looked at again once the oldest read is slow)
                    left = min(left, max(0.01, oldest + self.slow_seconds - time.monotonic()))
                turn.clear()
                try:
                    async with asyncio.timeout(left):
                        await turn.wait()
                except TimeoutError:
                    pass
        finally:
            self._waiting.remove(turn)
            self._wake()  # (the next one's turn: this one entered, or gave up)

    def read(self, size: int) -> None:
        """The current task's request is in: it holds `size` bytes (until `done`)."""
        self._reading.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        self.held += size
        self._wake()

    def leave(self) -> None:
        """The current task's read ended without a request."""
        if self._reading.pop(asyncio.current_task(), None) is not None:  # type: ignore[arg-type]
            self._wake()

    def done(self, size: int) -> None:
        """A call that held `size` bytes has ended."""
        self.held -= size
        self._wake()

    def _wake(self) -> None:
        if self._waiting and self._fits():
            self._waiting[0].set()

    def _room_in_reads(self) -> bool:
        """Whether ending a read would make room for another."""
        return bool(self._reading) and self.held + len(self._reading) * self.most <= self.room

    def _end_slow_read(self) -> None:
        """Cancel the oldest read, when it has gone on for slow_seconds and there is no
        room but its: it ends UNAVAILABLE (see rpc._UnreadRequests)."""
        if self._fits() or not self._room_in_reads():
            return
        task, started = next(iter(self._reading.items()))
        if time.monotonic() - started >= self.slow_seconds:
            del self._reading[task]
            task.cancel(SLOW)
            self._wake()
