"""Watch streams: rows after a position, then each new one as it is stored.

A watch reads the store after its position, then waits: this process's commits
wake it at once (`Commits`, fed by the store's commit hook), and it reads again
every POLL_SECONDS anyway, for the rows other replicas commit. The read is by
id, so an idle poll is one index seek.

A watch is a coroutine on the server's loop (its reads go off the loop), so an
open stream costs no thread; `follow` is the whole loop, for both transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import grpc

from server.errors import FootfallError
from server.loop import off_loop
from server.policy import Admission, Policy

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how soon a watch sees what another replica stored


class Positioned(Protocol):
    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=Positioned)
T = TypeVar("T")


class Commits:
    """Counts this process's commits; watchers (coroutines of one loop) wait for
    the next one."""

    def __init__(self) -> None:
        self._count = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    def on_commit(self, _jobs: Sequence[Any]) -> None:
        """The store's commit hook (on its writer thread): wake every watcher."""
        self._count += 1
        if self._waiters and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    @property
    def count(self) -> int:
        return self._count

    async def wait(self, seen: int, seconds: float) -> None:
        """Return once a commit after the `seen`-th happened, or after `seconds`,
        or at once when closed."""
        if self._count != seen or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        waiter = self._loop.create_future()
        self._waiters.add(waiter)
        if self._count != seen:  # a commit between the check and the wait found nobody
            self._waiters.discard(waiter)
            return
        try:
            await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    def close(self) -> None:
        """Shutdown: every watch ends (call it on the loop)."""
        self._closed = True
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed


class Caller(Protocol):
    def done(self) -> bool: ...

    def time_remaining(self) -> float | None: ...


async def follow(read: Callable[[int], Sequence[R]], after: int, last: Callable[[], int],
                 commits: Commits, caller: Caller, poll: float = POLL_SECONDS
                 ) -> AsyncIterator[Sequence[R]]:
    """Batches of `read(position)` (rows with an id above it, in id order; called
    off the loop) from `after` on, for as long as `caller` is there, its deadline
    (if any) not passed, and the server runs.

    `last()` is the id of the last row stored: when it falls below the position
    (the newest rows were deleted, by a reset, and SQLite gives their ids again)
    the watch goes on from there, so it misses none of the rows stored next.
    """
    while not caller.done() and not commits.closed:
        remaining = caller.time_remaining()
        if remaining is not None and remaining <= 0:
            return
        seen = commits.count  # before the read: a commit during it wakes the wait
        top = await off_loop(last)  # before the read too: a row stored after it is read next
        rows = await off_loop(read, after)
        if rows:
            after = rows[-1].id
            yield rows
            continue
        after = min(after, top)
        await commits.wait(seen, poll if remaining is None else min(poll, remaining))


async def admitted(policy: Policy, method: str, transport: str, request: Any, context: Any,
                   open_stream: Callable[[], Awaitable[AsyncIterator[T]]]) -> AsyncIterator[T]:
    """`open_stream()`'s messages, once `policy` admits the call (as the envelope
    does a unary one) and the stream opens; raises the refusal. The call is
    counted and logged when the messages end."""
    started = time.perf_counter()
    admission = await policy.admit(method, context.invocation_metadata(), request, context)
    messages = await open_stream()
    return _recorded(messages, policy, method, transport, started, admission)


async def _recorded(messages: AsyncIterator[T], policy: Policy, method: str, transport: str,
                    started: float, admission: Admission | None) -> AsyncIterator[T]:
    """`messages`, with the call's log line once they end."""
    code = grpc.StatusCode.OK
    try:
        async for message in messages:
            yield message
    except FootfallError as exc:
        code = exc.code
        raise
    except asyncio.CancelledError:
        code = grpc.StatusCode.CANCELLED
        raise
    finally:
        policy.record(method, transport, code, time.perf_counter() - started, admission)
