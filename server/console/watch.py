"""Watch streams: rows after a position, then each new one as it is stored.

A watch reads the store after its position, then waits: this process's commits
wake it at once (`Commits`, fed by the store's commit hook), and it reads again
every POLL_SECONDS anyway, for the rows other replicas commit. The read is by
id, so an idle poll is one index seek.

The streams run on the threaded gRPC server as generators (a thread of the
stream lane each); `follow` is the whole loop, kept free of grpc so that the
async core can drive the same reads from a coroutine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import grpc
from grpc_status import rpc_status

from server.errors import FootfallError, Internal
from server.policy import Admission, Policy
from server.rpc import TRANSPORT, status_of

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how soon a watch sees what another replica stored


class Positioned(Protocol):
    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=Positioned)
T = TypeVar("T")


class Commits:
    """Counts this process's commits; watchers wait for the next one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._closed = False

    def on_commit(self, _jobs: Sequence[Any]) -> None:
        """The store's commit hook (on its writer thread): wake every watcher."""
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    @property
    def count(self) -> int:
        return self._count

    def wait(self, seen: int, seconds: float) -> None:
        """Return once a commit after the `seen`-th happened, or after `seconds`,
        or at once when closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._count != seen or self._closed, seconds)

    def close(self) -> None:
        """Shutdown: every watch ends."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Caller(Protocol):
    def is_active(self) -> bool: ...

    def time_remaining(self) -> float | None: ...


def follow(read: Callable[[int], Sequence[R]], after: int, last: Callable[[], int],
           commits: Commits, caller: Caller, poll: float = POLL_SECONDS
           ) -> Iterator[Sequence[R]]:
    """Batches of `read(position)` (rows with an id above it, in id order) from
    `after` on, for as long as `caller` is active, its deadline (if any) not
    passed, and the server runs.

    `last()` is the id of the last row stored: when it falls below the position
    (the newest rows were deleted, by a reset, and SQLite gives their ids again)
    the watch goes on from there, so it misses none of the rows stored next.
    """
    while caller.is_active() and not commits.closed:
        remaining = caller.time_remaining()
        if remaining is not None and remaining <= 0:
            return
        seen = commits.count  # before the read: a commit during it wakes the wait
        top = last()  # before the read too: a row stored after it is read next time
        rows = read(after)
        if rows:
            after = rows[-1].id
            yield rows
            continue
        after = min(after, top)
        commits.wait(seen, poll if remaining is None else min(poll, remaining))


def admitted_stream(policy: Policy, method: str, request: Any, context: Any,
                    open_stream: Callable[[], Iterator[T]]) -> Iterator[T]:
    """`open_stream()`'s messages, once `policy` admits the call (as the envelope
    does a unary one) and the stream opens; counted and logged when it ends.

    A refusal aborts a gRPC call with its status; over HTTP (a context without
    `abort_with_status`) it is raised, for the gateway to record and render.
    """
    started = time.perf_counter()
    abort = getattr(context, "abort_with_status", None)
    transport = TRANSPORT if abort is not None else "http"
    admission: Admission | None = None
    try:
        admission = policy.admit(method, context.invocation_metadata(), request, context)
        messages = open_stream()
    except Exception as exc:
        if abort is None:
            raise
        if isinstance(exc, FootfallError):
            refusal = exc
        else:
            log.exception("%s failed", method)
            refusal = Internal(f"internal error in {method}; see the server log")
        policy.record(method, transport, refusal.code, time.perf_counter() - started, admission,
                      refusal.message)
        abort(rpc_status.to_status(status_of(refusal)))
        raise AssertionError("abort_with_status returned") from exc
    return _recorded(messages, policy, method, transport, started, admission)


def _recorded(messages: Iterator[T], policy: Policy, method: str, transport: str,
              started: float, admission: Admission | None) -> Iterator[T]:
    """`messages`, with the call's log line once they end."""
    yield from messages
    policy.record(method, transport, grpc.StatusCode.OK, time.perf_counter() - started,
                  admission)
