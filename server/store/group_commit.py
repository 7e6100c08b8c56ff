"""Group commit: one writer thread turns many concurrent writes into one transaction.

Callers hand in jobs and (usually) wait on a future; the writer takes every job
that is queued, applies them in order inside one transaction, commits once, and
only then resolves the futures. A durable write therefore costs one commit per
batch, not per event, and callers never see an answer before their data is safe.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from server.store.rows import EventRow

log = logging.getLogger(__name__)


class Job:
    """A write: either event rows to insert, or a function run on the connection."""

    __slots__ = ("rows", "fn", "future")

    def __init__(self, rows: Sequence[EventRow] | None = None,
                 fn: Callable[[Any], Any] | None = None) -> None:
        self.rows = rows
        self.fn = fn
        self.future: Future[Any] = Future()


_STOP = object()


class GroupCommitter:
    """Runs `apply_batch(jobs)` on a dedicated thread over whatever is queued.

    `apply_batch` must run all jobs in one transaction and commit; it sets each
    job's future result (or exception) only after the commit. If it raises, every
    job of the batch that is still pending fails with that error.
    """

    def __init__(self, apply_batch: Callable[[list[Job]], None], *,
                 max_batch: int = 2000, name: str = "footfall-writer") -> None:
        self._apply_batch = apply_batch
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self.batches = 0  # committed batches, for metrics and tests
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            self._queue.put(job)
        return job.future

    def submit_rows(self, rows: Sequence[EventRow]) -> Future[Any]:
        return self.submit(Job(rows=rows))

    def submit_fn(self, fn: Callable[[Any], Any]) -> Future[Any]:
        return self.submit(Job(fn=fn))

    def flush(self) -> None:
        """Return once every job submitted before this call is committed."""
        self.submit_fn(lambda _conn: None).result()

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                self._apply_batch(batch)
                self.batches += 1
            except BaseException as exc:  # the batch failed as a whole: tell every waiter
                log.exception("write batch of %d jobs failed", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
