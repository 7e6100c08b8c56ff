"""Group commit: one writer thread turns many concurrent writes into one transaction.

Callers hand in jobs and (usually) wait on a future; the writer takes every job
that is queued, applies them in order inside one transaction, commits once, and
only then resolves the futures. A durable write therefore costs one commit per
batch, not per event, and callers never see an answer before their data is safe.
After a batch of several, the next one waits a moment (GATHER_SECONDS) for as many
jobs as that one had: its callers, answered together, write again one after the
other as the server hands their calls over, and are committed together again
rather than over two or three commits (one job alone is never kept waiting).

A coroutine's job carries an asyncio future of its loop besides: once a batch
is settled, its futures are resolved with one `call_soon_threadsafe` per loop
(not one per job), so a thousand waiting writes cost the loop one wake-up.

When the database cannot be reached or its disk is full (`apply_batch` raises
StoreUnavailable, or StoreFull which is one), the batch's unresolved jobs are
carried over and retried with backoff: a waiting caller gives up after
`retry_seconds` (StoreUnavailable), rows nobody waits for (`write_async`) are
kept until they commit or `close` runs out of time.

A job `alone` (a purge's step: thousands of deletions) commits in a transaction
of its own, in its place in the queue: the writes queued before it commit before
it, those queued after it in the next transaction. So a write waits for one such
step at most, never for one in its own transaction too, and the step can see
(`waiting`) that writes wait behind it and end early.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any

from server.store.rows import EventRow, StoreUnavailable

log = logging.getLogger(__name__)

FIRST_RETRY_DELAY = 0.05  # seconds; doubles up to MAX_RETRY_DELAY while the database is away
# How long jobs that ride along (`submit_along`) wait before they join a batch of
# others (or make one of their own): what comes meanwhile goes in the same job.
ALONG_SECONDS = 0.1
MAX_RETRY_DELAY = 2.0
# How long a batch that nobody waits for (pixels, write_async) gathers more before
# its commit: fewer commits under a stream of pixels, each far below the bound of
# what a kill -9 may lose of them (README, "Pixels and kill -9").
LINGER_SECONDS = 0.005
# How long a batch of writes somebody waits for waits for as many as the last batch
# had (see GroupCommitter._gather). Measured at 16 callers (bench/REPORT.md,
# 2026-12-03): PostgreSQL 3.1-3.8 writes per batch to 8.2-8.5, 2,290 to 2,640 writes/s;
# SQLite at 4 callers 1,786 to 2,243 writes/s; none slower at 1 caller. 5 ms, not 2
# (2026-12-05, bench/ANALYSIS.md "Batches of callers"): at 64 callers the loop takes
# about 11 ms to hand all their writes over, so 2 ms cut each batch short and a commit
# (about 650 µs of CPU across the writer and the loop) served 12-16 writes; at 16
# callers the batch is whole within 3 ms either way.
GATHER_SECONDS = 0.005


class Unwaited:
    """The outcome of a job no thread waits for: one nobody waits for (write_async,
    pixels), or a coroutine's, whose loop's future is answered from it on that
    loop (`_pass_on`). The part of a Future the writer uses, without the lock and
    condition each Future makes (about 4 µs a write, made on the loop and set on
    the writer)."""

    __slots__ = ("_done", "_value", "_error")

    def __init__(self) -> None:
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        self._value, self._done = value, True

    def set_exception(self, error: BaseException) -> None:
        self._error, self._done = error, True

    def exception(self) -> BaseException | None:
        return self._error

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class Job:
    """A write: either event rows to insert, or a function run on the connection
    (or a Join: the one row the writer makes).

    `waited` is False for rows acknowledged before they commit (write_async,
    pixels);
    `awaited`, when a coroutine waits for it, is a future of that coroutine's loop
    (made on it), resolved like `future` once the batch is settled. A function job
    `first` runs before every other job of its batch (see apply_in_order); one
    `alone` is a batch of its own (see the module doc). A function job `again` may run
    again when the transaction it ran in was rolled back (its effects are its
    statements alone): the store then leaves it to be retried with the batch's rows
    rather than failing it. `relied`: what the store said its join's products were
    read as of (see GroupCommitter), once its row is made.
    """

    __slots__ = ("rows", "fn", "future", "waited", "submitted", "awaited", "first",
                 "alone", "again", "counted_out", "relied", "size")

    def __init__(self, rows: Sequence[EventRow] | None = None,
                 fn: Callable[[Any], Any] | None = None, *,
                 waited: bool = True, awaited: asyncio.Future[Any] | None = None,
                 first: bool = False, alone: bool = False, again: bool = False) -> None:
        self.rows = rows
        self.fn = fn
        self.first = first
        self.alone = alone
        self.again = again
        # a Future for a thread to wait on, else its lighter stand-in (Unwaited)
        self.future: Any = Future() if waited and awaited is None else Unwaited()
        self.waited = waited
        self.submitted = time.monotonic()
        self.awaited = awaited
        self.counted_out = False  # (unwaited) no longer in acknowledged_uncommitted
        self.relied: Any = None
        self.size = 0  # (unwaited) its bytes of events in acknowledged_uncommitted_bytes

    @property
    def row_count(self) -> int:
        """How many event rows the job writes."""
        return len(self.rows) if self.rows is not None else 0


class Join(Job):
    """A write of one event row the writer makes itself, once it has read the catalog
    products the event names: the events of one batch read their products with one
    read per catalog, not one each. `read(catalog, ids)` gives the products found
    (parsed), `finish(products)` the row (kept in `rows`), or raises what refuses the
    event. `refused`, for an event answered before its commit (a pixel), is told why
    it was not stored after all (on the writer's thread): its caller knows no more,
    so the refusal must be kept where a person sees it. `size`: the bytes of the event
    it holds (serialized), for one nobody waits for.

    Nobody waits for it (`waited` False, as the store queues it) unless a coroutine
    does (`GroupCommitter.submit_awaited`); no thread does. A subclass says how its
    row is made (`finish`): a write queued is that one object (and its outcome) until
    its commit."""

    __slots__ = ("catalog", "product_ids", "read", "refused")

    def __init__(self, catalog: str, product_ids: Sequence[str],
                 read: Callable[[str, list[str]], dict[str, Any]],
                 refused: Callable[[BaseException], None] | None = None,
                 size: int = 0) -> None:
        super().__init__(waited=False)
        self.catalog = catalog
        self.product_ids = product_ids
        self.read = read
        self.refused = refused
        self.size = size

    @property
    def row_count(self) -> int:
        return 1

    def finish(self, products: dict[str, Any]) -> EventRow:
        """The row of the event joined with `products` (those of `product_ids` the
        catalog holds); raises what refuses the event."""
        raise NotImplementedError


def row_size(row: EventRow) -> int:
    """The bytes of an event row's events (as stored, and as received if it differs)."""
    return len(row.payload) + len(row.source or b"")


def _pass_on(settled: list[tuple[asyncio.Future[Any], Future[Any]]]) -> None:
    """On a loop: hand each job's outcome to its asyncio future (unless its
    caller gave up on it already)."""
    for awaited, future in settled:
        if awaited.done():
            continue
        error = future.exception()
        if error is not None:
            awaited.set_exception(error)
        else:
            awaited.set_result(future.result())


def answer_coroutines(jobs: Sequence[Job]) -> None:
    """Resolve the asyncio futures of the settled `jobs`: one call per loop.
    A job answered this way is not answered again (a batch carried over for a
    retry is looked at again)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Future[Any]]]] = {}
    for job in jobs:
        awaited = job.awaited
        if awaited is not None and job.future.done():
            by_loop.setdefault(awaited.get_loop(), []).append((awaited, job.future))
            job.awaited = None
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_pass_on, settled)
        except RuntimeError:  # that loop is closed: nobody waits there any more
            pass


# A function job's result once its batch ran: (job, value, None) or (job, None, error).
Outcome = tuple[Job, Any, BaseException | None]


def commit_only(_conn: Any) -> None:
    """The function of a flush's job: nothing but the commit of its batch. A store
    may answer it with the batch's rows without a transaction of its own (no
    savepoint, no statement: see PostgresStore._applied_on)."""


def apply_in_order(jobs: Sequence[Job], insert: Callable[[list[EventRow]], object],
                   call: Callable[[Job], tuple[Any, BaseException | None]]) -> list[Outcome]:
    """Apply a batch's `jobs` in their order, inside the caller's transaction: each
    run of row jobs by one `insert` of all their rows, each function job by
    `call(job)` (its value and None, or None and the error that fails that job
    alone). What either raises fails the whole batch. Returns the function jobs'
    outcomes, for `settle` once the transaction has committed.

    Jobs marked `first` run before the others: a purge step may lock the events
    table (a rollup gap, on PostgreSQL), and must ask for it before the batch's
    inserts hold row locks another replica's writer may be waiting for (else the
    two wait on each other until PostgreSQL breaks the deadlock)."""
    outcomes: list[Outcome] = []
    pending: list[EventRow] = []
    if any(job.first for job in jobs):
        jobs = [job for job in jobs if job.first] + [job for job in jobs if not job.first]
    for job in jobs:
        if job.rows is not None:
            pending.extend(job.rows)
            continue
        if pending:
            insert(pending)
            pending = []
        value, error = call(job)
        outcomes.append((job, value, error))
    if pending:
        insert(pending)
    return outcomes


def settle(jobs: Sequence[Job], outcomes: list[Outcome]) -> None:
    """After the commit of `jobs`: answer their callers (the row jobs, then the
    function jobs by their `outcomes`)."""
    for job in jobs:
        if job.rows is not None:
            job.future.set_result(None)
    for job, value, error in outcomes:
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(value)


_STOP = object()
_ALONG = object()  # wakes the writer to note when jobs that ride along are due


class GroupCommitter:
    """Runs `apply_batch(jobs)` on a dedicated thread over whatever is queued.

    `apply_batch` must run all jobs in one transaction and commit; it sets each
    job's future result (or exception) only after the commit. If it raises
    StoreUnavailable, the jobs it left pending are retried (see the module doc);
    any other exception fails every pending job of the batch.
    """

    def __init__(self, apply_batch: Callable[[list[Job]], None], *,
                 max_batch: int = 2000, name: str = "footfall-writer",
                 retry_seconds: float = 5.0, close_seconds: float = 30.0,
                 linger_seconds: float = LINGER_SECONDS,
                 turn: AbstractContextManager[Any] | None = None,
                 relied: Callable[[str], Any] | None = None,
                 gather_seconds: float = GATHER_SECONDS) -> None:
        self._apply_batch = apply_batch
        # How long a batch waits for more after a batch of several (see `_take`).
        self._gather_seconds = gather_seconds
        self._last_batch = 0  # how many jobs the last batch taken had
        # While a batch gathers: how many queued jobs would complete it (0: none
        # gathers), and a lock held until `submit` sees that many queued.
        self._short = 0
        self._gathered = threading.Lock()
        self._gathered.acquire()
        # What the products read for a catalog's join jobs were read as of (asked
        # right after the read, on this thread): kept on each job whose row was made
        # from them, for `apply_batch` to check (see `rejoin`).
        self._relied = relied
        # Held around each `apply_batch`: the writers of other processes wait for it
        # (see `_commit_in_turn`).
        self._turn = turn
        self._max_batch = max_batch
        self._retry_seconds = retry_seconds
        self._close_seconds = close_seconds
        self._linger_seconds = linger_seconds
        self._lingering = False  # the writer lingers: a job somebody waits for sets _wake
        self._wake = threading.Event()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # a job `alone` taken from the queue while a batch of others was gathered: the
        # next batch, before anything still queued
        self._held: Job | None = None
        self._along: list[Job] = []  # jobs that ride with the next batch
        self._along_due = 0.0  # when they make a batch of their own
        self._others_taken = 0.0  # when the writer last took a batch of other jobs
        self._closed = False
        self._unwaited_rows = 0
        self._unwaited_bytes = 0  # of those rows' events (see Job.size)
        # join jobs whose catalog could not be read (the database away a moment):
        # tried again like a batch that could not commit (see _joined)
        self._unread: list[tuple[Job, StoreUnavailable]] = []
        self._away: StoreUnavailable | None = None  # why the last try failed (_pause)
        self.batches = 0  # committed batches, for tests (counted in `settle`)
        # Called on the writer thread with each committed batch (futures resolved);
        # how metrics see batch sizes without the store knowing about them.
        self.on_commit: Callable[[list[Job]], None] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def settle(self, jobs: Sequence[Job], outcomes: list[Outcome]) -> None:
        """`apply_batch`, once it has committed `jobs`: count the commit and their
        rows nobody waited for, then answer their callers (see the function
        `settle`). Counted first: a caller answered may look at `batches` and
        `acknowledged_uncommitted` at once (a flush that returned while the rows it
        waited for still counted let the next pixel be refused, as past
        MAX_UNCOMMITTED)."""
        self.batches += 1
        self._count_out([job for job in jobs if not job.waited])
        settle(jobs, outcomes)

    def _count_out(self, jobs: Sequence[Job]) -> None:
        """Take the rows of `jobs` (nobody waits for them) out of
        acknowledged_uncommitted, each job once."""
        done = size = 0
        for job in jobs:
            if not job.counted_out:
                job.counted_out = True
                done += job.row_count
                size += job.size
        if done:
            with self._lock:
                self._unwaited_rows -= done
                self._unwaited_bytes -= size

    def submit(self, job: Job) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            if not job.waited:
                if job.rows is not None:  # (a join's row, made later, is about its size)
                    job.size = sum(map(row_size, job.rows))
                self._unwaited_rows += job.row_count
                self._unwaited_bytes += job.size
            self._queue.put(job)
            if job.waited and self._lingering:
                self._wake.set()
            if self._short and (job.alone or self._queue.qsize() >= self._short):
                self._short = 0
                self._gathered.release()
        return job.future

    @property
    def lingering(self) -> bool:
        """Whether the writer holds a batch nobody waits for, gathering more."""
        return self._lingering

    @property
    def acknowledged_uncommitted(self) -> int:
        """Rows nobody waits for (write_async, pixels) that are not committed yet:
        what a kill -9 now would lose."""
        return self._unwaited_rows

    @property
    def acknowledged_uncommitted_bytes(self) -> int:
        """The bytes of events those rows hold (see Job.size)."""
        return self._unwaited_bytes

    def _settled(self, jobs: Sequence[Job]) -> None:
        """`jobs` are done with (committed or failed): count their unwaited rows out
        (if `settle` has not), and tell the joins answered before their commit that
        failed why."""
        done = [job for job in jobs if not job.waited and job.future.done()]
        for job in done:
            if isinstance(job, Join) and job.refused is not None \
                    and job.future.exception() is not None:
                self._tell_refused(job.refused, job.future.exception())
        self._count_out(done)

    @staticmethod
    def _tell_refused(refused: Callable[[BaseException], None], error: BaseException) -> None:
        try:
            refused(error)
        except Exception:  # keeping a refusal must never fail the writer
            log.exception("could not keep the refusal of an event acknowledged before "
                          "its commit: %s", error)

    def submit_rows(self, rows: Sequence[EventRow], *, waited: bool = True) -> Future[Any]:
        return self.submit(Job(rows=rows, waited=waited))

    def submit_awaited(self, rows: Sequence[EventRow] | None = None,
                       join: Join | None = None) -> asyncio.Future[Any]:
        """On a running loop: queue `rows` (or `join`, not yet submitted); a future of
        that loop, done once they are committed (or failed)."""
        awaited = asyncio.get_running_loop().create_future()
        if join is None:
            self.submit(Job(rows=rows, awaited=awaited))
        else:
            join.waited, join.awaited = True, awaited
            self.submit(join)
        return awaited

    def submit_fn(self, fn: Callable[[Any], Any], *, first: bool = False,
                  alone: bool = False, again: bool = False) -> Future[Any]:
        return self.submit(Job(fn=fn, first=first, alone=alone, again=again))

    @property
    def waiting(self) -> bool:
        """Whether jobs wait for the batch being applied (asked on the writer's thread
        by a long job `alone`, which may end early to let them go)."""
        return self._held is not None or not self._queue.empty()

    def submit_along(self, fn: Callable[[Any], Any]) -> Future[Any]:
        """Run `fn` on the connection in the first batch the writer takes for other
        jobs once ALONG_SECONDS have passed, or then in one of its own once the
        writer has taken no batch of others for ALONG_SECONDS: work nobody waits
        for (kept refusals) adds no commit of its own while writes flow, so the
        writes never wait behind one, and rides with one batch in ALONG_SECONDS at
        most, not with each. `flush` includes it at once.

        `fn` must do nothing but its statements once it has run (what it takes from
        elsewhere, it takes once: see console.add_rejections): in a transaction
        rolled back (its COMMIT not on its way) it runs again with the batch
        (`again`). Once it has run, nobody waits for it: what it took (refusals
        already answered) is kept until it commits or `close` runs out of time, as
        rows acknowledged before their commit are, not given up after
        `retry_seconds` (which lost what it took). Before, it is given up as a write
        is: it took nothing, and what it would take waits for the next."""
        job = Job(fn=fn, again=True)

        def run(conn: Any) -> Any:
            job.waited = False
            return fn(conn)

        job.fn = run
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            first = not self._along
            self._along.append(job)
            if first:
                self._along_due = time.monotonic() + ALONG_SECONDS
                self._queue.put(_ALONG)  # a writer waiting without a timeout learns of it
        return job.future

    def flush(self) -> None:
        """Return once every job submitted before this call is committed."""
        self.submit(self._flush_job()).result()

    def flush_awaited(self) -> asyncio.Future[Any]:
        """On a running loop: `flush` as a future of that loop, done once every job
        submitted before this call is committed (or failed). Cancelling it gives up
        that wait only, as for submit_awaited: the job's own Future, which the writer
        answers, is never cancelled."""
        awaited = asyncio.get_running_loop().create_future()
        self.submit(self._flush_job(awaited))
        return awaited

    def _flush_job(self, awaited: asyncio.Future[Any] | None = None) -> Job:
        """A job that does nothing but commit after what is queued before it: run
        again when its transaction is rolled back, it is tried again with the writes
        before it (`again`), as they are, rather than answered at once."""
        with self._lock:
            self._along_due = 0.0  # those that ride along too
        return Job(fn=commit_only, awaited=awaited, again=True)

    def close(self) -> None:
        """Commit what is queued (retrying for up to `close_seconds` if the database
        is away), then stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
            self._wake.set()
            if self._short:
                self._short = 0
                self._gathered.release()
        self._thread.join()

    def _take(self, batch: list[Job]) -> bool:
        """Add queued jobs to `batch` (blocking only when it is empty), and every
        job that rides along; True on _STOP.

        A batch carried over from a failed try takes everything queued (up to a
        job alone), so that waiting callers behind it are answered (or given up on)
        in time. A new batch of jobs nobody waits for lingers (see `_linger`).
        """
        limit = self._max_batch if not batch else None
        stop = False
        fresh = not batch
        if fresh:
            first = self._next()
            if first is _STOP:
                stop = True
            elif first is not None:
                batch.append(first)
        if not stop:
            stop = self._drain(batch, limit)
        if not stop and fresh and batch and self._linger_seconds > 0 \
                and not any(job.waited for job in batch):
            stop = self._linger(batch)
        elif not stop and fresh and batch and self._gather_seconds > 0 \
                and len(batch) < self._last_batch and not batch[0].alone:
            stop = self._gather(batch, self._last_batch)
        if fresh:
            self._last_batch = len(batch)
            if batch:
                self._others_taken = time.monotonic()
        self._take_along(batch, stop)
        return stop

    def _take_along(self, batch: list[Job], stop: bool) -> None:
        """Add the jobs that ride along to `batch` once they are due (or `flush`
        or _STOP made them so), unless it is a job alone."""
        if batch and batch[0].alone:
            return
        with self._lock:
            if stop or time.monotonic() >= self._along_due:
                batch.extend(self._along)
                self._along = []

    def _drain(self, batch: list[Job], limit: int | None, joins: bool = False) -> bool:
        """Add what is queued to `batch` (up to `limit` jobs in all), up to the next
        job alone (held for the next batch), nothing to a job alone; True on _STOP.
        `joins`: `batch` is to join a batch of others (no job alone may start it)."""
        while (limit is None or len(batch) < limit) and self._held is None \
                and not (batch and batch[0].alone):
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            if item is _ALONG:
                continue
            if item.alone and (batch or joins):
                self._held = item
                return False
            batch.append(item)
        return False

    def _linger(self, batch: list[Job]) -> bool:
        """Let `batch`, whose jobs nobody waits for (pixels, write_async), gather those
        that come within `linger_seconds` of its first: a commit (and a wake-up of
        this thread) for many, not a few, while nobody is kept waiting, since a job
        somebody waits for (or `close`) cuts it short. True on _STOP."""
        due = batch[0].submitted + self._linger_seconds
        with self._lock:
            self._lingering = True
            self._wake.clear()
        try:
            while True:
                start = len(batch)
                stop = self._drain(batch, self._max_batch)
                if stop or any(job.waited for job in batch[start:]) \
                        or len(batch) >= self._max_batch or self._held is not None:
                    return stop
                remaining = due - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.wait(remaining)
        finally:
            with self._lock:
                self._lingering = False

    def _gather(self, batch: list[Job], size: int) -> bool:
        """Let `batch` wait up to `gather_seconds` for as many jobs as the last batch
        had (`size`): several callers write at once, and each waits for its commit
        before it writes again, so the next batch would have taken a few of them and
        left the rest for one more commit. A lone caller (a last batch of one) is
        never kept waiting, and fewer callers than before wait `gather_seconds` once.
        True on _STOP.

        The writer sleeps once for them, not once per job: `submit` wakes it when
        enough are queued (or a job alone, or `close`). Woken by each job, the writer
        cost every write a futex wake on the submitting thread and a GIL hand-off
        both ways."""
        due = time.monotonic() + self._gather_seconds
        with self._lock:
            short = min(size, self._max_batch) - len(batch)
            if self._closed or self._held is not None or self._queue.qsize() >= short:
                short = 0
            self._short = short
        if short:
            woken = self._gathered.acquire(timeout=max(0.0, due - time.monotonic()))
            with self._lock:
                if not woken and self._short:
                    self._short = 0  # nobody came in time: nobody releases it now
                elif not woken:  # released as the wait timed out: held again for the next
                    self._gathered.acquire()
        return self._drain(batch, self._max_batch)

    def _next(self) -> Any:
        """The job held back, else the next queued job or _STOP, waiting for one; None
        once the jobs that ride along are due without another, and no batch of others
        was taken for ALONG_SECONDS (while batches come, the next is waited for)."""
        if self._held is not None:
            held, self._held = self._held, None
            return held
        while True:
            with self._lock:
                due = self._along_due if self._along else None
            if due is not None:
                # Between two batches of writes the writer waits a moment for the
                # callers answered to write again: a commit of their own made then (a
                # third of the kept refusals' jobs beside 16 callers' durable writes)
                # made those writes wait for it.
                due = max(due, self._others_taken + ALONG_SECONDS)
            try:
                item = self._queue.get(timeout=None if due is None
                                       else max(0.0, due - time.monotonic()))
            except queue.Empty:
                return None
            if item is not _ALONG:
                return item

    def _run(self) -> None:
        carried: list[Job] = []
        delay = FIRST_RETRY_DELAY
        stop_deadline: float | None = None
        while True:
            batch = carried
            if stop_deadline is None and self._take(batch):
                stop_deadline = time.monotonic() + self._close_seconds
            if not batch:
                return
            batch = self._joined(batch)
            carried = []
            if batch:  # (else each of its writes was refused, or could not be joined yet)
                try:
                    self._commit(batch, stop_deadline is not None)
                    delay = FIRST_RETRY_DELAY
                except StoreUnavailable as exc:
                    carried = self._unavailable(batch, exc, stop_deadline)
                except BaseException as exc:  # failed as a whole, not for want of the database
                    carried = self._commit_one_by_one(batch, exc, stop_deadline)
            unread, self._unread = self._unread, []
            for job, why in unread:
                carried += self._unavailable([job], why, stop_deadline)
            if carried:
                carried = self._pause(carried, delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
            if stop_deadline is not None and not carried:
                self._fail_leftovers()
                return

    def _commit(self, batch: list[Job], stopping: bool) -> None:
        """Apply and commit `batch`, then answer its callers and the listener."""
        if self._turn is None:
            self._apply_batch(batch)
        else:
            self._commit_in_turn(batch, stopping)
        answer_coroutines(batch)  # before the listener: callers first
        self._settled(batch)
        listener = self.on_commit  # once: another thread may unset it meanwhile
        if listener is not None:
            self._notify(listener, batch)

    def _unavailable(self, batch: list[Job], exc: StoreUnavailable,
                     stop_deadline: float | None) -> list[Job]:
        """The jobs of `batch` to try again once the database is back; the others
        are answered with `exc`."""
        self._away = exc
        carried = self._keep_for_retry(batch, exc, stop_deadline)
        answer_coroutines(batch)  # those given up on
        self._settled(batch)
        return carried

    def _pause(self, carried: list[Job], delay: float) -> list[Job]:
        """Wait `delay` before the next try of `carried`, answering meanwhile each
        job whose caller waits as its `retry_seconds` run out, with why the last try
        failed; the jobs still to try. Answered at the next try instead, a write that
        came just after one waited up to MAX_RETRY_DELAY more (the tries are that far
        apart once an outage lasts). No try is made for it: tries stay as few
        whatever comes, and the database back meanwhile is found at the next one. (A
        job queued during the pause has its `retry_seconds`, longer than any pause,
        still to run at the next try.)"""
        wake = time.monotonic() + delay
        while carried:
            due = self.answer_by(carried)
            if due is None or due >= wake:
                time.sleep(max(0.0, wake - time.monotonic()))
                break
            time.sleep(max(0.0, due - time.monotonic()))
            assert self._away is not None  # (set with the jobs carried)
            given_up = [job for job in carried if job.waited and not job.future.done()
                        and time.monotonic() - job.submitted >= self._retry_seconds]
            for job in given_up:
                job.future.set_exception(self._away)
            answer_coroutines(given_up)
            carried = [job for job in carried if not job.future.done()]
        return carried

    def answer_by(self, jobs: Sequence[Job]) -> float | None:
        """When the first of `jobs` whose caller waits is answered if the database is
        away (time.monotonic()): a try of the batch should not wait for it past
        then. None when none waits."""
        return min((job.submitted + self._retry_seconds for job in jobs
                    if job.waited and not job.future.done()), default=None)

    def _commit_one_by_one(self, batch: list[Job], error: BaseException,
                           stop_deadline: float | None) -> list[Job]:
        """After `batch` failed as a whole on something other than the database being
        away (a bug let through a row the database refuses, say): its row jobs are
        committed again one at a time, so that the bad one fails alone instead of
        taking with it the events acknowledged before their commit (pixels,
        write_async) and the writes waited for beside it. Its function jobs fail with
        `error`: they ran in the transaction rolled back, and running one twice may
        not be safe. Returns the jobs to retry if the database went away meanwhile."""
        log.error("a write batch of %d jobs failed; its event rows are committed again "
                  "one job at a time", len(batch), exc_info=error)
        again = [job for job in batch if job.rows is not None and not job.future.done()] \
            if len(batch) > 1 else []
        retried = {id(job) for job in again}
        self._fail([job for job in batch if id(job) not in retried], error)
        failed: list[Job] = []
        for i, job in enumerate(again):
            try:
                self._commit([job], True)  # (True: no other queued job joins it)
            except StoreUnavailable as exc:
                self._fail(failed, error)
                return self._unavailable(again[i:], exc, stop_deadline)
            except BaseException as exc:
                if not failed:
                    log.error("a write job of %d events failed alone", job.row_count,
                              exc_info=exc)
                job.future.set_exception(exc)
                failed.append(job)
        if failed:
            log.error("%d of the %d write jobs failed alone", len(failed), len(again))
        self._fail(failed, error)
        return []

    def _fail(self, jobs: list[Job], error: BaseException) -> None:
        """Answer the unanswered `jobs` with `error` (the others failed already), and
        say how many events acknowledged before their commit are lost with them."""
        lost = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)
            if not job.waited and job.future.exception() is not None:
                lost += job.row_count
        if lost:
            log.error("%d events acknowledged before their commit were NOT stored: %s",
                      lost, error)
        answer_coroutines(jobs)
        self._settled(jobs)

    def _commit_in_turn(self, batch: list[Job], stopping: bool) -> None:
        """`apply_batch(batch)` in this process's turn (`turn`), with the jobs
        queued while another process had it: they would wait out that commit and
        then one more of their own, so under several processes writing one
        database the batches grow instead of shrinking."""
        assert self._turn is not None
        with self._turn:
            if not stopping and len(batch) < self._max_batch and not batch[0].alone:
                more: list[Job] = []
                if self._drain(more, self._max_batch - len(batch), joins=True):
                    self._queue.put(_STOP)  # for the next `_take`: nothing comes after it
                self._take_along(more, False)  # (a `flush` drained may have made them due)
                batch.extend(self._joined(more))
            self._apply_batch(batch)

    def _joined(self, batch: list[Job]) -> list[Job]:
        """`batch` with the rows of its join jobs made (one product read per catalog);
        the jobs whose row could not be made are answered with why, and left out.
        Those whose catalog could not be read for want of the database are left out
        too, in `_unread`, to be tried again as a batch that could not commit is."""
        joins = [job for job in batch if isinstance(job, Join) and job.rows is None]
        if not joins:
            return batch
        wanted: dict[str, set[str]] = {}
        for join in joins:
            wanted.setdefault(join.catalog, set()).update(join.product_ids)
        found: dict[str, dict[str, Any] | BaseException] = {}
        failed: list[Join] = []
        for join in joins:
            if join.catalog not in found:
                try:
                    found[join.catalog] = join.read(join.catalog, sorted(wanted[join.catalog]))
                except Exception as exc:  # e.g. StoreUnavailable: these writes fail
                    found[join.catalog] = exc
            products = found[join.catalog]
            if isinstance(products, StoreUnavailable):
                self._unread.append((join, products))
                continue
            try:
                if isinstance(products, BaseException):
                    raise products
                join.rows = [join.finish(products)]
                if self._relied is not None:
                    join.relied = self._relied(join.catalog)
            except Exception as exc:
                join.future.set_exception(exc)
                failed.append(join)
        if not failed:
            return [job for job in batch if job.rows is not None or not isinstance(job, Join)]
        for join in failed:
            if not join.waited and join.refused is None:
                log.warning("an event acknowledged before its commit was not stored: %s",
                            join.future.exception())
        answer_coroutines(failed)
        self._settled(failed)
        return [job for job in batch if not job.future.done()
                and (job.rows is not None or not isinstance(job, Join))]

    def rejoin(self, batch: list[Job]) -> None:
        """For `apply_batch`, once it found that products its join jobs were made
        from had changed before it could commit (nothing committed): `batch` with
        the rows of its join jobs made again from products read now, in place (the
        jobs that cannot be made now are answered or kept for later, as in `_joined`)."""
        for job in batch:
            if isinstance(job, Join):
                job.rows = None
                job.relied = None
        batch[:] = self._joined(batch)

    def _notify(self, listener: Callable[[list[Job]], None], batch: list[Job]) -> None:
        try:
            listener(batch)
        except Exception:  # an observer must never fail a write
            log.exception("on_commit hook failed")

    def _keep_for_retry(self, batch: list[Job], exc: StoreUnavailable,
                        stop_deadline: float | None) -> list[Job]:
        """The jobs of a failed batch worth another try; the others fail with `exc`."""
        now = time.monotonic()
        giving_up = stop_deadline is not None and now >= stop_deadline
        kept: list[Job] = []
        lost_rows = 0
        for job in batch:
            if job.future.done():
                continue
            if giving_up or (job.waited and now - job.submitted >= self._retry_seconds):
                if not job.waited and job.rows is not None:
                    lost_rows += len(job.rows)
                job.future.set_exception(exc)
            else:
                kept.append(job)
        if lost_rows:
            log.error("no write could commit while closing: %d events acknowledged "
                      "with write_async were NOT stored: %s", lost_rows, exc)
        elif kept:
            log.warning("retrying %d queued writes: %s", len(kept), exc)
        return kept

    def _fail_leftovers(self) -> None:
        """After _STOP nothing new is accepted, but say so to anything still queued."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Job) and not item.future.done():
                item.future.set_exception(RuntimeError("store is closed"))
                answer_coroutines([item])
