"""Worker processes for the CPU work of file imports: decoding and checking lines.

One Python thread decodes and checks about 30k events/s; the job's thread then has
its inserts left to do. Here chunks of lines go to `processes` worker processes
while the job's thread reads ahead and inserts, in order, what they return. At
most `2 × processes + 1` chunks are in flight, so memory stays flat whatever the
files hold.

The pool belongs to one server process and is shared by its operation workers;
it starts at the first file import that is worth it and ends with the server.
Workers are spawned (never forked from a process with gRPC threads), ignore the
signals that stop the server (it stops them), and exit by themselves when the
server process is gone (even after `kill -9`).

Should a worker die (killed, out of memory), or owe a chunk past its allowance
(`allowance`: stopped, deadlocked, swapped out), the workers are given up on (killed;
counted in `replaced`), others start, and the chunks not yet answered are sent again:
a chunk is decoded again from its lines, so none is lost or counted twice. A map
that loses its workers MAX_LOSSES times in a row while it awaits the same chunk
ends with WorkersLost (the import fails saying where), never waits for ever.
"""

from __future__ import annotations

import contextvars
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar, cast

from server import cores as server_cores

log = logging.getLogger(__name__)

A = TypeVar("A")
K = TypeVar("K")
X = TypeVar("X")
R = TypeVar("R")

PARENT_POLL_SECONDS = 0.5
_END = object()
# How long a chunk may be owed once it is next in line (in the queue the workers take
# from: at most a chunk per worker before it) before the workers are taken for hung.
# A worker decodes and checks 2-4 MiB of lines a second (an 8 MiB chunk of events of
# thousands of attributes, at load 6 on 2 cores) and starts in 0.1-0.5 s: 20 s and 2 s
# a MiB leave a machine ten times slower room for the chunks before it and its own.
WAIT_SECONDS = 20.0
WAIT_SECONDS_PER_MIB = 2.0
# How often a wait for a chunk looks whether it is overdue and whether the job must
# stop (`check_stop`: a SIGTERM does not wait for a hung worker's allowance).
LOOK_SECONDS = 0.2
# Workers given up on this many times in a row while one chunk is awaited: the map
# ends (a line that kills the process decoding it would else kill them for ever).
MAX_LOSSES = 3
# How long `close` lets the workers finish the chunk each is on before they are killed.
CLOSE_SECONDS = 2.0


def cores() -> int:
    """The cores this process's workers may run on (all the server's, under
    --processes too: server.cores)."""
    return len(server_cores.allowed())


def allowance(size: int) -> float:
    """Seconds a chunk of `size` bytes may be owed once next in line (WAIT_SECONDS)."""
    return WAIT_SECONDS + WAIT_SECONDS_PER_MIB * size / (1 << 20)


class WorkersLost(Exception):
    """The workers were given up on MAX_LOSSES times in a row while the chunk `key`
    was awaited, the last time for `reason` (died, hung)."""

    def __init__(self, key: object, reason: str, times: int) -> None:
        super().__init__(f"the import workers were given up on {times} times in a row "
                         f"(the last: {reason})")
        self.key, self.reason, self.times = key, reason, times


class _Hung(Exception):
    """A chunk is owed past its allowance."""


class _Workers:
    """One set of worker processes (an executor), until given up on."""

    def __init__(self, processes: int) -> None:
        self.executor = ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_setup, initargs=(os.getpid(), server_cores.allowed()))

    def processes(self) -> list[BaseProcess]:
        # (the executor's own, started as work comes: read, never changed)
        return list((self.executor._processes or {}).values())  # type: ignore[attr-defined]

    def kill(self) -> None:
        """End them now, whatever they do (SIGKILL: a stopped process ends too); the
        executor, broken, fails the chunks they owe and reaps them."""
        _kill(self.processes())
        self.executor.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """End them once done with the chunk each is on (within CLOSE_SECONDS); else
        (stopped, or still starting on a busy machine) killed: the executor's own wait
        lasted for ever on a stopped worker, and held the server's SIGTERM."""
        processes = self.processes()  # (forgotten by the executor's shutdown)
        self.executor.shutdown(wait=False, cancel_futures=True)
        if not _ended(processes):
            _kill(processes)


def _kill(processes: list[BaseProcess]) -> None:
    for process in processes:
        process.kill()
    _ended(processes)


def _ended(processes: list[BaseProcess]) -> bool:
    """Whether all of `processes` ended within CLOSE_SECONDS (`join` returns once one
    has gone, whichever thread reaps it: the executor's does)."""
    ends = time.monotonic() + CLOSE_SECONDS
    for process in processes:
        process.join(max(0.0, ends - time.monotonic()))
    return not any(process.is_alive() for process in processes)


@dataclass
class _Sent(Generic[K, X, R]):
    """An input of a map and, once sent, its answer to be and the workers that owe it."""

    key: K
    x: X
    future: Future[R] | None = None
    workers: _Workers | None = None

    def answered(self) -> bool:
        future = self.future
        return (future is not None and future.done() and not future.cancelled()
                and future.exception() is None)


class LinePool:
    """Up to `processes` worker processes (`-1`: one per core; `0`: none, so
    `ordered_map` runs in the calling thread)."""

    def __init__(self, processes: int) -> None:
        self.processes = cores() if processes < 0 else processes
        self._workers: _Workers | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Sets of workers given up on, by why (for /metrics): "died" (one ended: killed
        # by someone, out of memory), "hung" (owed a chunk past its allowance).
        self.replaced = {"died": 0, "hung": 0}

    def ordered_map(self, fn: Callable[[A, X], R], fixed: A, inputs: Iterator[tuple[K, X]],
                    size: Callable[[X], int] = lambda x: 0,
                    check_stop: Callable[[], None] = lambda: None
                    ) -> Generator[tuple[K, R], None, None]:
        """`(key, fn(fixed, x))` for each `(key, x)` of `inputs`, in order, computed
        in the workers while the caller uses earlier answers. `fn` and `fixed` must
        pickle (module-level); `size(x)`: the bytes of `x` (its allowance). Workers
        that die or hang are replaced and their chunks sent again (see the module);
        raises WorkersLost when that happens MAX_LOSSES times in a row,
        BrokenProcessPool when it happens once the pool is closed, and what
        `check_stop` raises (called while an answer is awaited)."""
        if self._ready() is None:
            for key, x in inputs:
                yield key, fn(fixed, x)
            return
        window: deque[_Sent[K, X, R]] = deque()
        try:
            for key, x in inputs:
                window.append(_Sent(key, x))
                self._send(window, fn, fixed)
                if len(window) > 2 * self.processes:
                    yield self._oldest(window, fn, fixed, size, check_stop)
            while window:
                yield self._oldest(window, fn, fixed, size, check_stop)
        finally:  # stopped early (cancelled, shutting down, failed): drop the rest
            for sent in window:
                if sent.future is not None:
                    sent.future.cancel()

    def _oldest(self, window: deque[_Sent[K, X, R]], fn: Callable[[A, X], R], fixed: A,
                size: Callable[[X], int], check_stop: Callable[[], None]) -> tuple[K, R]:
        """The answer of the window's first input, taken out of it."""
        losses = 0
        while True:
            first = window[0]
            try:
                answer = _awaited(cast(Future[R], first.future), size(first.x), check_stop)
            except (BrokenProcessPool, CancelledError):  # (cancelled: given up on elsewhere)
                reason = "died"
            except _Hung:
                reason = "hung"
            else:
                window.popleft()
                return first.key, answer
            losses += 1
            self._give_up(cast(_Workers, first.workers), reason)
            if losses >= MAX_LOSSES:
                raise WorkersLost(first.key, reason, losses)
            for sent in window:  # what the lost workers owed, to others
                if not sent.answered():
                    sent.future = None
            self._send(window, fn, fixed)

    def _send(self, window: deque[_Sent[K, X, R]], fn: Callable[[A, X], R], fixed: A) -> None:
        """Send the inputs of `window` not yet sent (to new workers if need be)."""
        for _ in range(MAX_LOSSES):
            workers = self._ready()
            if workers is None:
                raise BrokenProcessPool("the import workers were stopped (the server stops)")
            try:
                for sent in window:
                    if sent.future is None:
                        sent.future = workers.executor.submit(fn, fixed, sent.x)
                        sent.workers = workers
                return
            except (BrokenProcessPool, RuntimeError):  # (died; or given up on elsewhere)
                self._give_up(workers, "died")
        raise BrokenProcessPool("the import workers died as they were started")

    def _ready(self) -> _Workers | None:
        with self._lock:
            if self.processes == 0 or self._closed:
                return None
            if self._workers is None:
                log.info("starting %d import worker processes", self.processes)
                self._workers = _Workers(self.processes)
            return self._workers

    def _give_up(self, workers: _Workers, reason: str) -> None:
        """Forget `workers` (unless another map did already), counted by `reason`, and
        kill them: the next chunk sent starts others."""
        with self._lock:
            if self._workers is not workers:
                return
            self._workers = None
            self.replaced[reason] += 1
        if reason == "hung":
            log.warning("an import worker process owed a chunk of lines past its allowance "
                        "(%.0f s and %.0f s a MiB: stopped, deadlocked or swapped out?): "
                        "the workers are killed, others decode their chunks again",
                        WAIT_SECONDS, WAIT_SECONDS_PER_MIB)
        else:
            log.warning("an import worker process died; others decode its chunks again")
        workers.kill()

    def close(self) -> None:
        """Stop the workers (after the chunk each is on; killed after CLOSE_SECONDS);
        later maps run in the calling thread."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.stop()


def _awaited(future: Future[R], size: int, check_stop: Callable[[], None]) -> R:
    """What `future` (a chunk of `size` bytes) answers. Raises _Hung once it is owed
    past its allowance counted from when it was next in line (running: in the queue
    the workers take from), BrokenProcessPool once its workers died, CancelledError
    once they were given up on (by another map), and what `check_stop` raises."""
    next_in_line: float | None = None
    while True:
        try:
            return future.result(timeout=LOOK_SECONDS)
        except TimeoutError:
            check_stop()
            if next_in_line is None:
                if future.running():
                    next_in_line = time.monotonic()
            elif time.monotonic() - next_in_line > allowance(size):
                raise _Hung from None


def ahead(items: Generator[X, None, None]) -> Generator[X, None, None]:
    """`items`, the next one made in a thread of its own (in the caller's context
    variables) while the caller uses the one before: work between two items of the
    caller (a commit's wait) overlaps the making of the next. Closing this closes
    `items` once the thread is done with it. The thread is a daemon, as the
    operation runner's are: one stuck in a file system that does not answer does
    not hold the process at exit."""
    context = contextvars.copy_context()
    asked: queue.SimpleQueue[bool] = queue.SimpleQueue()
    made: queue.SimpleQueue[tuple[object, BaseException | None]] = queue.SimpleQueue()

    def make() -> None:
        while asked.get():
            try:
                made.put((context.run(next, items, _END), None))
            except BaseException as exc:  # the caller raises it
                made.put((_END, exc))

    thread = threading.Thread(target=make, name="footfall-ahead", daemon=True)
    thread.start()
    try:
        asked.put(True)
        while True:
            item, error = made.get()
            if error is not None:
                raise error
            if item is _END:
                return
            asked.put(True)
            yield cast(X, item)
    finally:
        asked.put(False)
        thread.join()
        items.close()


def worker_setup(parent: int, cores: frozenset[int]) -> None:
    """In each worker: run on `cores` (the server process's, not the one it keeps to
    under --processes), leave Ctrl-C (SIGINT, sent to the whole terminal's group) to the
    server, and exit when it is gone. SIGTERM is left as it is: the executor ends the
    workers with it when one of them died (one killed while holding the queue's lock
    would otherwise leave the others, and the import, waiting for ever); a worker killed
    by a SIGTERM sent to the whole group is replaced as any that died."""
    server_cores.spread(cores)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_without, args=(parent,), daemon=True,
                     name="footfall-parent-watch").start()


def _exit_without(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(0)
