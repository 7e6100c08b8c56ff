"""The deterministic encoding of a large event, made in a process of its own.

An event's stored bytes are its deterministic serialization (the dedup key hashes
them): for a map, upb sorts its entries first, in one C call that holds the
interpreter's lock throughout, on whichever thread makes it (100,000 attributes:
30-100 ms, against 3-4 ms unsorted), and the loop, which serves every call, waits
for it. Here the unsorted encoding (one pass) goes to a worker process, which
decodes it and encodes it sorted: the same bytes, made on another interpreter. The
unsorted encoding is the message's answer too (what grpc, or the JSON of a large REST
answer, would make of it again on the loop).

The worker is spawned (never forked from a process with gRPC threads) at the first
large event, ignores Ctrl-C, and exits by itself once the server is gone. Should it
die, or owe an encoding past its allowance (`allowance`: stopped, deadlocked, swapped
out), the encoding is made here (killed first, if alive), and the next one starts
another. A wait for it ends as soon as its caller goes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import Any

from server.errors import Cancelled
from server.loop import abandoned
from server.retail.line_pool import new_executor, signals_kept

log = logging.getLogger(__name__)

# How long the worker may owe an encoding before it is taken for hung: killed, that
# event encoded here, another worker started by the next. The worker encodes 20-60 MB
# a second (a 2 MB event of 100,000 attributes in 70-105 ms at load 5), starts in
# 0.1-0.5 s, and an encoding may wait behind another (two decoder threads send them):
# 10 s and 1 s a MiB leave a machine a hundred times slower room, and bound what a
# hung worker costs a large call (12 s at the default --max-event-bytes of 2 MiB).
WAIT_SECONDS = 10.0
WAIT_SECONDS_PER_MIB = 1.0
# How often a wait for the worker looks whether its caller went (cancelled, its
# deadline passed, the drain's grace over): it gives back its decoder thread (one of
# the two that every large request needs) within this long.
LOOK_SECONDS = 0.2
# How long `close` lets an idle worker end by itself before it is killed (one that
# owes an encoding is killed at once: nobody waits for it once the calls are drained).
CLOSE_SECONDS = 2.0

_lock = threading.Lock()
# Workers given up on, by why (for /metrics): "died" (ended by itself or killed by
# someone), "hung" (owed an encoding past its allowance; killed here).
replaced = {"died": 0, "hung": 0}


def allowance(size: int) -> float:
    """Seconds the worker has to encode an event of `size` bytes (see WAIT_SECONDS)."""
    return WAIT_SECONDS + WAIT_SECONDS_PER_MIB * size / (1 << 20)


def _sorted(kind: Any, unsorted: bytes) -> bytes:
    """In the worker: `unsorted` (a serialized `kind`) encoded deterministically."""
    return kind.FromString(unsorted).SerializeToString(deterministic=True)


class _Worker:
    """One worker process and the encodings it owes, each with the time it is due by."""

    def __init__(self) -> None:
        self.executor = new_executor(1, os.getpid())  # (its signal mask kept)
        self._owed: dict[Future[bytes], float] = {}  # (under _lock)

    def submit(self, kind: Any, unsorted: bytes) -> Future[bytes]:
        """`unsorted` to encode; raises BrokenProcessPool (it died) or RuntimeError
        (shut down meanwhile)."""
        with signals_kept():  # (see line_pool.signals_kept)
            future = self.executor.submit(_sorted, kind, unsorted)
        with _lock:
            self._owed[future] = time.monotonic() + allowance(len(unsorted))
        future.add_done_callback(self._paid)  # (at once, if done already)
        return future

    def _paid(self, future: Future[bytes]) -> None:
        """`future` is owed no more (its done-callback; and by its waiter once it has
        the result: a future wakes its waiters before it runs its callbacks, and a
        stop made at once found the worker still owing, and killed it unreaped)."""
        with _lock:
            self._owed.pop(future, None)

    def overdue(self) -> bool:
        """Whether an encoding it owes (anyone's: its caller may have gone) is past due."""
        now = time.monotonic()
        with _lock:
            return any(due <= now for due in self._owed.values())

    def owes(self) -> bool:
        with _lock:
            return bool(self._owed)

    def processes(self) -> list[BaseProcess]:
        # (ProcessPoolExecutor's own: Python 3.14's kill_workers reads them as well)
        return list((self.executor._processes or {}).values())  # type: ignore[attr-defined]

    def kill(self) -> None:
        """End it now, whatever it is doing (SIGKILL: a stopped process ends too);
        the encodings it owes fail (BrokenProcessPool; cancelled, those not sent yet),
        and their waits end."""
        processes = self.processes()
        for process in processes:
            process.kill()
        self.executor.shutdown(wait=False, cancel_futures=True)
        ends = time.monotonic() + CLOSE_SECONDS
        for process in processes:
            _reaped(process, ends)  # (a SIGKILL ends it at once)

    def stop(self) -> None:
        """End it: once idle, by itself within CLOSE_SECONDS; else killed."""
        processes = self.processes()
        if self.owes():
            self.kill()
            return
        self.executor.shutdown(wait=False, cancel_futures=True)
        ends = time.monotonic() + CLOSE_SECONDS
        for process in processes:
            if not _reaped(process, ends):  # (stopped, or swapped out)
                process.kill()
                _reaped(process, time.monotonic() + CLOSE_SECONDS)


def _reaped(process: BaseProcess, ends: float) -> bool:
    """Whether `process` ended by `ends` (time.monotonic()), waited for. (`join` returns
    once the process has closed its end of the sentinel pipe, which a worker does as it
    exits, a few milliseconds before it can be reaped: it was then left unreaped, still
    among the server's children.)"""
    while True:
        process.join(max(0.0, ends - time.monotonic()))
        if process.exitcode is not None:
            return True
        if time.monotonic() >= ends:
            return False
        time.sleep(0.005)


_worker: _Worker | None = None
# Set by the last server's `close`, until an `open`: a large event written meanwhile (a
# call its grace left running) is encoded here; it started a worker nobody closed.
_closed = False
_servers = 0  # started and not yet stopped, in this process (tests start several)


class _Overdue(Exception):
    """The worker owes an encoding past its allowance."""


def _ready() -> _Worker | None:
    """The worker to send an encoding to (started if need be), or None to make it here:
    once closed, and when the worker is found overdue (given up on: the next starts
    another)."""
    global _worker
    with _lock:
        if _closed:
            return None
        if _worker is None:
            _worker = _Worker()
        worker = _worker
    if worker.overdue():
        _give_up(worker, "hung")
        return None
    return worker


def _give_up(worker: _Worker, reason: str) -> None:
    """Forget `worker` (unless another call did, or `close`), counted by `reason`, and
    end it: the next large event starts another."""
    global _worker
    with _lock:
        if _worker is not worker:
            return
        _worker = None
        replaced[reason] += 1
    if reason == "hung":
        log.warning("the encoding process owed an encoding past its allowance (%.0f s "
                    "and %.0f s a MiB: stopped, deadlocked or swapped out?): killed; another "
                    "starts for the next large event", WAIT_SECONDS, WAIT_SECONDS_PER_MIB)
        worker.kill()
    else:
        log.warning("the encoding process died; another starts for the next large event")
        worker.executor.shutdown(wait=False, cancel_futures=True)


def _awaited(worker: _Worker, future: Future[bytes]) -> bytes:
    """What `worker` made for `future`. Raises _Overdue once it owes any encoding past
    its allowance, CANCELLED once the caller went, BrokenProcessPool once it died."""
    while True:
        try:
            made = future.result(timeout=LOOK_SECONDS)
        except TimeoutError:
            if abandoned():
                future.cancel()  # (not sent to the worker yet: never sent)
                raise Cancelled("the caller went before its event was encoded") from None
            if worker.overdue():
                raise _Overdue from None
        else:
            worker._paid(future)  # noqa: SLF001  # (see _paid)
            return made


def encodings(message: Any) -> tuple[bytes, bytes]:
    """`message.SerializeToString()`, and its deterministic serialization made by the
    worker process, or here (see the module). Blocking: call it off the loop, with
    `in_decoder` (whose caller's going ends the wait, CANCELLED)."""
    unsorted = message.SerializeToString()
    worker = _ready()
    if worker is None:
        return unsorted, message.SerializeToString(deterministic=True)
    try:
        return unsorted, _awaited(worker, worker.submit(type(message), unsorted))
    except BrokenProcessPool:
        _give_up(worker, "died")
    except _Overdue:
        _give_up(worker, "hung")
    except (CancelledError, RuntimeError):  # (given up on by another call; closed: a stop)
        pass
    return unsorted, message.SerializeToString(deterministic=True)


def deterministic(message: Any) -> bytes:
    """`message.SerializeToString(deterministic=True)`, made as `encodings` makes it."""
    return encodings(message)[1]


def open() -> None:  # noqa: A001  # (the module's, as close)
    """A server starts: the next large event may start a worker."""
    global _closed, _servers
    with _lock:
        _closed, _servers = False, _servers + 1


def close() -> None:
    """A server stops: the last one stops the worker, if started (see _Worker.stop),
    and large events are encoded here until the next `open`."""
    global _worker, _closed, _servers
    with _lock:
        _servers = max(0, _servers - 1)
        if _servers:
            return
        worker, _worker, _closed = _worker, None, True
    if worker is not None:
        worker.stop()
