"""Watch streams: what wakes them (`Commits`, fed by the store's commit hook) and
how a stream is admitted and recorded like a unary call. The feeds that read
for them are in `feed`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import grpc

from server.errors import DeadlineExceeded, FootfallError, Internal, PermissionDenied
from server.policy import Admission, Policy
from server.policy.auth import Grant
from server.policy.envelope import client_of

log = logging.getLogger(__name__)

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


class _Keyed:
    """The caller of a watch admitted with an API key: gone too once the keys are
    read again (SIGHUP) without one that still allows the watch, `refusal` then
    saying why. A key revoked, or its role lowered, ends the watches it opened."""

    __slots__ = ("_caller", "_recheck", "refusal")

    def __init__(self, caller: Caller, recheck: Callable[[], FootfallError | None]) -> None:
        self._caller = caller
        self._recheck = recheck
        self.refusal: FootfallError | None = None

    def done(self) -> bool:
        if self.refusal is None:
            self.refusal = self._recheck()
        return self.refusal is not None or self._caller.done()

    def time_remaining(self) -> float | None:
        return self._caller.time_remaining()

    @property
    def add_done_callback(self) -> Callable[[Callable[[Any], None]], None] | None:
        """Its call's, if it is a gRPC call."""
        return getattr(self._caller, "add_done_callback", None)


async def admitted(policy: Policy, method: str, transport: str, request: Any, context: Any,
                   open_stream: Callable[[Caller], Awaitable[AsyncIterator[T]]],
                   grant: Grant | None = None) -> AsyncIterator[T]:
    """`open_stream(caller)`'s messages, once `policy` admits the call (as the
    envelope does a unary one; `grant`: what authenticate_early found, else the key
    is looked up here) and the stream opens; raises the refusal. `caller`
    is `context`, or stands for it with the call's key checked again whenever the
    keys are (see _Keyed). The call is counted and logged when the messages end."""
    started = time.perf_counter()
    metadata = context.invocation_metadata()
    # The recheck first: it notes the keys as they are now, so keys read again while
    # the call is admitted (before its stream starts) are checked against as well.
    recheck = policy.recheck(method, metadata, request)
    try:
        admission = await policy.admit(method, metadata, request, context, grant=grant)
    except PermissionDenied:  # (its key's role or project: past the key's budget, paced)
        await policy.denied(method, metadata, client_of(context))
        raise
    caller = context if recheck is None else _Keyed(context, recheck)
    messages = await open_stream(caller)
    recorded = _recorded(messages, policy, method, transport, started, admission, caller)
    # Started up to its first yield, so that a stream closed (or let go) before its
    # first message is asked for is counted too: a client gone before the answer
    # began, a HEAD (see Answered). Unstarted, a generator's close runs no `finally`.
    await anext(recorded)
    return recorded  # type: ignore[return-value]  # (its first yield, None, is taken)


class Answered(Exception):  # noqa: N818  (not an error: thrown to end a stream)
    """Thrown into an admitted watch's stream by end_answered."""


async def end_answered(stream: AsyncIterator[Any]) -> None:
    """End an admitted watch's stream whose call was answered without its messages
    (a HEAD's headers): counted OK, not as a caller gone."""
    throw = getattr(stream, "athrow", None)
    if throw is not None:
        with contextlib.suppress(Answered, StopAsyncIteration):
            await throw(Answered())


async def _recorded(messages: AsyncIterator[T], policy: Policy, method: str, transport: str,
                    started: float, admission: Admission | None,
                    caller: Caller) -> AsyncIterator[T | None]:
    """None (see admitted), then `messages`, with the call's log line once they end;
    the refusal of a key no longer allowed (raised after the messages sent)."""
    code = grpc.StatusCode.OK
    try:
        try:
            yield None
        except Answered:
            return
        async for message in messages:
            yield message
            # (not held while the next is awaited: see http.sse._send_message)
            del message
        gone = caller.done()  # (a _Keyed caller's checks its key again, too)
        if isinstance(caller, _Keyed) and caller.refusal is not None:
            raise caller.refusal
        # The feed ends a watch whose deadline passed (nothing else ends an HTTP
        # caller's X-Server-Timeout, and it ended a gRPC watch before grpc did): said
        # so, not as a watch that ended well; and one whose caller went.
        if _past_deadline(caller):
            raise DeadlineExceeded("the watch's deadline passed")
        if gone:
            code = grpc.StatusCode.CANCELLED
    except FootfallError as exc:
        code = exc.code
        raise
    except (asyncio.CancelledError, GeneratorExit):
        # Ended before its messages did: grpc cancelled it, or its transport closed
        # it as its caller went (a client too slow is let go with an Unavailable).
        code = (grpc.StatusCode.DEADLINE_EXCEEDED if _past_deadline(caller)
                else grpc.StatusCode.CANCELLED)
        raise
    except Exception:
        # A bug: ended as a unary call's is (INTERNAL, its traceback logged), not
        # counted OK, nor left to the transport (an aiohttp ERROR, an UNKNOWN).
        code = grpc.StatusCode.INTERNAL
        raise Internal.bug(method, log) from None
    finally:
        policy.record(method, transport, code, time.perf_counter() - started, admission)


def _past_deadline(caller: Caller) -> bool:
    remaining = caller.time_remaining()
    return remaining is not None and remaining <= 0
