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
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar, cast

from server import cores as server_cores

log = logging.getLogger(__name__)

A = TypeVar("A")
K = TypeVar("K")
X = TypeVar("X")
R = TypeVar("R")

PARENT_POLL_SECONDS = 0.5
_END = object()


def cores() -> int:
    """The cores this process's workers may run on (all the server's, under
    --processes too: server.cores)."""
    return len(server_cores.allowed())


class LinePool:
    """Up to `processes` worker processes (`-1`: one per core; `0`: none, so
    `ordered_map` runs in the calling thread)."""

    def __init__(self, processes: int) -> None:
        self.processes = cores() if processes < 0 else processes
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def ordered_map(self, fn: Callable[[A, X], R], fixed: A,
                    inputs: Iterator[tuple[K, X]]) -> Iterator[tuple[K, R]]:
        """`(key, fn(fixed, x))` for each `(key, x)` of `inputs`, in order, computed
        in the workers while the caller uses earlier answers. `fn` and `fixed` must
        pickle (module-level). A worker that dies raises BrokenProcessPool; the next
        call starts new ones."""
        executor = self._ready()
        if executor is None:
            for key, x in inputs:
                yield key, fn(fixed, x)
            return
        window: deque[tuple[K, Future[R]]] = deque()
        try:
            for key, x in inputs:
                window.append((key, executor.submit(fn, fixed, x)))
                if len(window) > 2 * self.processes:
                    oldest, future = window.popleft()
                    yield oldest, future.result()
            while window:
                oldest, future = window.popleft()
                yield oldest, future.result()
        except BrokenProcessPool:  # from submit or result: a worker died
            self._discard(executor)
            raise
        finally:  # stopped early (cancelled, shutting down, failed): drop the rest
            for _, future in window:
                future.cancel()

    def _ready(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self.processes == 0 or self._closed:
                return None
            if self._executor is None:
                log.info("starting %d import worker processes", self.processes)
                self._executor = ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn"),
                    initializer=worker_setup,
                    initargs=(os.getpid(), server_cores.allowed()))
            return self._executor

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        """Forget `broken` (unless another job did already): the next map starts new
        workers."""
        with self._lock:
            if self._executor is broken:
                self._executor = None
        log.warning("an import worker process died; new ones start for the next try")
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (after the chunk each is on); later maps run in the
        calling thread."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


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
    by a SIGTERM sent to the whole group costs the import one try, which resumes."""
    server_cores.spread(cores)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_without, args=(parent,), daemon=True,
                     name="footfall-parent-watch").start()


def _exit_without(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(0)
