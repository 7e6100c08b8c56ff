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
a chunk is decoded again from its lines, so none is lost or counted twice. Which of
the chunks the workers owed (of every map) killed them nobody can tell, so these are
suspects: each is sent again alone, one at a time across the maps, to a worker of its
own (on probation, started for the suspects and stopped once none is left), while
the maps' other chunks go to the workers as before. A worker on probation lost is
laid on the one chunk it owed: a chunk lost so MAX_LOSSES times ends its own map
with WorkersLost (the import fails naming its lines), never waits for ever; the
other maps, and the chunks around it, go on. Until a loss, nothing is on probation
and the maps cost what they did.
"""

from __future__ import annotations

import contextlib
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
from multiprocessing import resource_tracker
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
# A chunk on probation that loses its worker this many times ends its map (a line that
# kills the process decoding it would else kill them for ever).
MAX_LOSSES = 3
# How long `close`, while a map is in progress, lets the workers finish the chunk each
# is on before they are killed.
CLOSE_SECONDS = 2.0


def cores() -> int:
    """The cores this process's workers may run on (all the server's, under
    --processes too: server.cores)."""
    return len(server_cores.allowed())


def allowance(size: int) -> float:
    """Seconds a chunk of `size` bytes may be owed once next in line (WAIT_SECONDS)."""
    return WAIT_SECONDS + WAIT_SECONDS_PER_MIB * size / (1 << 20)


class WorkersLost(Exception):
    """The chunk `key`, decoded alone, lost its worker MAX_LOSSES times in a row, the
    last time for `reason` (died, hung)."""

    def __init__(self, key: object, reason: str, times: int) -> None:
        super().__init__(f"the import workers were given up on {times} times in a row "
                         f"(the last: {reason})")
        self.key, self.reason, self.times = key, reason, times


class _Hung(Exception):
    """A chunk is owed past its allowance."""


@contextlib.contextmanager
def signals_kept() -> Iterator[None]:
    """Run the block, then put back the calling thread's signal mask as it was.

    The first executor of a process starts multiprocessing's resource tracker, which
    unblocks SIGINT and SIGTERM in the thread that starts it (resource_tracker:
    "SIG_UNBLOCK" after spawning it), and every thread started from that one after it
    (the executor's own) inherits that. The server takes its signals with sigwait on
    one thread, every other one blocking them: a SIGTERM the kernel handed to one of
    these ended the server at once, undrained (1 in 10 SIGTERMs sent as an import's
    workers started, exit -15 and no "stopped" line)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def new_executor(processes: int, parent: int) -> ProcessPoolExecutor:
    """`processes` spawned workers (worker_setup, for the server process `parent`),
    the resource tracker started first with the signal mask kept (signals_kept), so
    that neither the calling thread nor the executor's threads, started from it at
    the first submit, take a signal the server waits for."""
    with signals_kept():
        resource_tracker.ensure_running()
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=worker_setup,
                               initargs=(parent, server_cores.allowed()))


class _Workers:
    """One set of worker processes (an executor), until given up on."""

    def __init__(self, processes: int) -> None:
        self.executor = new_executor(processes, os.getpid())

    def processes(self) -> list[BaseProcess]:
        # (the executor's own, started as work comes: read, never changed)
        return list((self.executor._processes or {}).values())  # type: ignore[attr-defined]

    def kill(self) -> None:
        """End them now, whatever they do (SIGKILL: a stopped process ends too); the
        executor, broken, fails the chunks they owe and reaps them."""
        _kill(self.processes())
        self.executor.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """End them once done with the chunk each is on (_stop)."""
        _stop([self])


def _stop(sets: list[_Workers], wait: bool = True) -> None:
    """End the workers of `sets` once done with the chunk each is on (within
    CLOSE_SECONDS, all together), or at once unless `wait`; else (stopped, or still
    starting on a busy machine) killed: the executor's own wait lasted for ever on a
    stopped worker, and held the server's SIGTERM. (Shut down before they are
    killed: killed first, an executor of Python 3.11 failed the futures a map had
    cancelled, its thread ended with InvalidStateError, and the process hung at its
    exit.)"""
    # (read first: the executors' shutdown forgets them)
    processes = [process for workers in sets for process in workers.processes()]
    for workers in sets:
        workers.executor.shutdown(wait=False, cancel_futures=True)
    if not wait or not _ended(processes):
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
    """An input of a map and, once sent, its answer to be and the workers that owe it;
    `suspect` once workers were lost owing it (it is sent again on probation, where
    it has lost its worker `losses` times)."""

    key: K
    x: X
    future: Future[R] | None = None
    workers: _Workers | None = None
    suspect: bool = False
    losses: int = 0

    def answered(self) -> bool:
        future = self.future
        return (future is not None and future.done() and not future.cancelled()
                and future.exception() is None)


class LinePool:
    """Up to `processes` worker processes (`-1`: one per core; `0`: none, so
    `ordered_map` runs in the calling thread), and one more while chunks are on
    probation (see the module)."""

    def __init__(self, processes: int) -> None:
        self.processes = cores() if processes < 0 else processes
        self._workers: _Workers | None = None
        self._lock = threading.Lock()
        self._closed = False
        # The worker that decodes the suspects, one at a time (the map sending one holds
        # `_probation` until it is answered), and how many suspects the maps hold: once
        # none is left, the worker is stopped.
        self._probation_workers: _Workers | None = None
        self._probation = threading.Lock()
        self._suspects = 0
        # Sets of workers given up on, by why (for /metrics): "died" (one ended: killed
        # by someone, out of memory), "hung" (owed a chunk past its allowance).
        self.replaced = {"died": 0, "hung": 0}
        # The maps in progress (under _lock): with none, what the workers still decode
        # is nobody's (see close).
        self._maps = 0

    def ordered_map(self, fn: Callable[[A, X], R], fixed: A, inputs: Iterator[tuple[K, X]],
                    size: Callable[[X], int] = lambda x: 0,
                    check_stop: Callable[[], None] = lambda: None
                    ) -> Generator[tuple[K, R], None, None]:
        """`(key, fn(fixed, x))` for each `(key, x)` of `inputs`, in order, computed
        in the workers while the caller uses earlier answers. `fn` and `fixed` must
        pickle (module-level); `size(x)`: the bytes of `x` (its allowance). Workers
        that die or hang are replaced and their chunks sent again, each alone (see the
        module); raises WorkersLost when one of this map's chunks, alone, loses its
        worker MAX_LOSSES times, BrokenProcessPool when workers are lost once the pool
        is closed, and what `check_stop` raises (called while an answer is awaited)."""
        if self._ready() is None:
            for key, x in inputs:
                yield key, fn(fixed, x)
            return
        window: deque[_Sent[K, X, R]] = deque()
        with self._lock:
            self._maps += 1
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
                self._cleared(sent)
            with self._lock:
                self._maps -= 1

    def _oldest(self, window: deque[_Sent[K, X, R]], fn: Callable[[A, X], R], fixed: A,
                size: Callable[[X], int], check_stop: Callable[[], None]) -> tuple[K, R]:
        """The answer of the window's first input, taken out of it."""
        first = window[0]
        if not first.suspect:
            try:
                answer = _awaited(cast(Future[R], first.future), size(first.x), check_stop)
            except (BrokenProcessPool, CancelledError):  # (cancelled: given up on elsewhere)
                self._lost(window, cast(_Workers, first.workers), "died")
            except _Hung:
                self._lost(window, cast(_Workers, first.workers), "hung")
            else:
                window.popleft()
                return first.key, answer
        answer = self._on_probation(first, fn, fixed, size, check_stop)
        window.popleft()
        return first.key, answer

    def _lost(self, window: deque[_Sent[K, X, R]], workers: _Workers, reason: str) -> None:
        """Give up on `workers` (unless done already): the inputs of `window` they
        have not answered become suspects."""
        self._give_up(workers, reason)
        for sent in window:
            if sent.workers is workers and not sent.suspect and not sent.answered():
                sent.future, sent.suspect = None, True
                with self._lock:
                    self._suspects += 1

    def _on_probation(self, sent: _Sent[K, X, R], fn: Callable[[A, X], R], fixed: A,
                      size: Callable[[X], int], check_stop: Callable[[], None]) -> R:
        """What `sent`, a suspect, answers, decoded alone by the probation worker (once
        no other map's suspect is). Raises WorkersLost once the worker is lost owing it
        MAX_LOSSES times, BrokenProcessPool once the pool is closed, and what
        `check_stop` raises."""
        while not self._probation.acquire(timeout=LOOK_SECONDS):
            check_stop()
        try:
            while True:
                self._submit(self._probation_ready, sent, fn, fixed)
                try:
                    answer = _awaited(cast(Future[R], sent.future), size(sent.x), check_stop)
                except (BrokenProcessPool, CancelledError):
                    reason = "died"
                except _Hung:
                    reason = "hung"
                else:
                    self._cleared(sent)
                    return answer
                if self._closed:  # (stopped by close, not lost)
                    raise BrokenProcessPool("the import workers were stopped (the server stops)")
                self._give_up(cast(_Workers, sent.workers), reason)
                sent.losses += 1
                if sent.losses >= MAX_LOSSES:
                    raise WorkersLost(sent.key, reason, sent.losses)
        finally:
            self._drop_if_owed(sent)
            self._probation.release()

    def _drop_if_owed(self, sent: _Sent[K, X, R]) -> None:
        """Kill the probation worker if it still decodes `sent`, whose map ends (stopped):
        the next suspect would wait behind it (taken for hung behind a hung one), and a
        SIGTERM does not wait for it. Not counted: nothing was lost."""
        future = sent.future
        if future is None or future.done():
            return
        with self._lock:
            owing = self._probation_workers
            if owing is None or sent.workers is not owing:
                return
            self._probation_workers = None
        owing.kill()

    def _cleared(self, sent: _Sent[K, X, R]) -> None:
        """`sent` is no longer a suspect (answered, or its map ended); the probation
        worker, idle, is stopped once no suspect is left."""
        if not sent.suspect:
            return
        sent.suspect = False
        with self._lock:
            self._suspects -= 1
            idle = self._probation_workers if self._suspects == 0 else None
            if idle is not None:
                self._probation_workers = None
        if idle is not None:
            idle.stop()

    def _send(self, window: deque[_Sent[K, X, R]], fn: Callable[[A, X], R], fixed: A) -> None:
        """Send the inputs of `window` not yet sent, but for suspects (to new workers if
        need be)."""
        for sent in window:
            if sent.future is None and not sent.suspect:
                self._submit(self._ready, sent, fn, fixed)

    def _submit(self, ready: Callable[[], _Workers | None], sent: _Sent[K, X, R],
                fn: Callable[[A, X], R], fixed: A) -> None:
        """Send `sent` to the workers `ready` gives (others if they died)."""
        for _ in range(MAX_LOSSES):
            workers = ready()
            if workers is None:
                raise BrokenProcessPool("the import workers were stopped (the server stops)")
            try:
                with signals_kept():  # (a tracker killed since is started again)
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

    def _probation_ready(self) -> _Workers | None:
        with self._lock:
            if self._closed:
                return None
            if self._probation_workers is None:
                log.info("starting an import worker process to decode again, one at a "
                         "time, the chunks owed by the workers lost")
                self._probation_workers = _Workers(1)
            return self._probation_workers

    def _give_up(self, workers: _Workers, reason: str) -> None:
        """Forget `workers` (unless another map did already), counted by `reason`, and
        kill them: the next chunk sent starts others."""
        with self._lock:
            if workers is self._workers:
                self._workers = None
            elif workers is self._probation_workers:
                self._probation_workers = None
            else:
                return
            self.replaced[reason] += 1
        if reason == "hung":
            log.warning("an import worker process owed a chunk of lines past its allowance "
                        "(%.0f s and %.0f s a MiB: stopped, deadlocked or swapped out?): "
                        "the workers are killed, others decode their chunks again, each "
                        "alone", WAIT_SECONDS, WAIT_SECONDS_PER_MIB)
        else:
            log.warning("an import worker process died; others decode the chunks its "
                        "workers owed again, each alone")
        workers.kill()

    def close(self) -> None:
        """Stop the workers: at once when no map is in progress (a server's stop: its
        jobs have ended theirs), else after the chunk each is on (killed after
        CLOSE_SECONDS); later maps run in the calling thread.

        With no map in progress, no answer the workers owe is waited for by anyone
        (a map's end drops what it sent), so they are killed rather than waited for:
        a worker still starting took, once up, the chunk queued for it, and the stop
        waited CLOSE_SECONDS for an answer nobody would read (a SIGTERM as an
        import's workers started took 2.4 s where it takes 0.3)."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, None
            probation, self._probation_workers = self._probation_workers, None
            owed = self._maps > 0
        _stop([each for each in (workers, probation) if each is not None], wait=owed)


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
