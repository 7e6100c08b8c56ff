"""Background workers that run long-running operations stored in the store.

An operation is a row, not a coroutine: a worker claims it with a lease, runs
it in batches, and records progress with each batch's writes in one transaction
(`Store.run_step`), so a crash resumes exactly where the last commit left off.
Any process on the same store can claim work whose holder is gone: its lease has
expired, or it was a process on this host that no longer exists. While the
database is unreachable a job pauses (keeping its lease) and resumes from its
last committed step once it is back; that is not counted as a failure, nor is a
lease that ran out meanwhile (see `_lapsed_before`), nor a worker left busy at a
stop (its operation is let go).
A process claims only the kinds of operation it knows: one written by a newer
replica is left for a replica that knows it (never claimed, retried or failed here).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TypeVar

from google.longrunning import operations_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from server.clock import Clock
from server.errors import FootfallError, ResourceExhausted, to_rpc_status
from server.lines import counted
from server.operations import records
from server.operations.summary import summarize
from server.operations.wakeups import Wakeups
from server.store import Store
from server.store.rows import (
    LeaseLost,
    OperationRecord,
    Progress,
    Step,
    StepResult,
    StoreUnavailable,
)

log = logging.getLogger(__name__)


T = TypeVar("T")

MAX_TRIES = 3
# How long a stop waits to let go of the operations of workers still busy (see stop).
LET_GO_SECONDS = 2.0
# Operations whose failures are counted here at most: a job released for a retry may be
# finished by another replica, and its count must not stay forever.
MAX_COUNTED_FAILURES = 1_000


class StopRequested(Exception):
    """The process is shutting down: leave the job for the next start."""


@dataclass
class JobContext:
    """What a running job may use: its record, the store, time, and its lease."""

    record: OperationRecord
    store: Store
    clock: Clock
    owner: str
    lease_us: int
    _stopping: threading.Event
    # The final Operation once the job has recorded it (for the line it logs).
    ended: operations_pb2.Operation | None = field(default=None)
    # This try is the last: if the job crashes, the runner ends the operation with INTERNAL.
    last_try: bool = False
    # When the lease was last taken or renewed (microseconds; see keep_lease).
    leased_us: int = -1

    def __post_init__(self) -> None:
        if self.leased_us < 0:  # (made as the claim took the lease)
            self.leased_us = self.now_us()

    def now_us(self) -> int:
        return self.clock.now_ns() // 1000

    def step(self, step: Step, progress: Callable[[StepResult], Progress]) -> StepResult:
        """Apply one batch and its progress atomically; renews the lease. Raises
        LeaseLost if the operation was deleted or taken over."""
        now_us = self.now_us()
        result = self.store.run_step(self.record.name, self.owner, step,
                                     now_us + self.lease_us, progress)
        self.leased_us = now_us
        return result

    def keep_lease(self, progress: Callable[[StepResult], Progress]) -> None:
        """Renew the lease with a step that writes nothing but `progress`, once a third
        of it has passed since the last: for a job that reads for long between steps
        (a count over millions of rows). Its lease ran out while it worked, another
        process took it over as if it had died (a lost try), and the third take-over
        ended it INTERNAL. LeaseLost as `step`."""
        if self.now_us() - self.leased_us >= self.lease_us // 3:
            self.step(Step(), progress)

    def read_leased(self, read: Callable[[], T],
                    progress: Callable[[StepResult], Progress]) -> T:
        """What `read()` (one long read: a count over tens of millions of rows) returns,
        read on a thread of its own while this one keeps the lease (keep_lease, with
        `progress`). StopRequested when the process stops meanwhile (the read is left
        to end by itself); LeaseLost as `step`."""
        answer: Future[T] = Future()

        def run() -> None:
            try:
                answer.set_result(read())
            except BaseException as exc:  # (raised here, in the job's thread)
                answer.set_exception(exc)

        threading.Thread(target=run, name="footfall-ops-read", daemon=True).start()
        while True:
            try:
                return answer.result(timeout=self.lease_us / 3e6)
            except TimeoutError:
                self.check_stop()
                self.keep_lease(progress)

    def check_lease(self) -> None:
        """Raise LeaseLost if this run no longer holds its operation (deleted, or taken
        over once its lease ran out). For what a job writes outside the store before
        its step: the step's own check comes after, too late to spare a file that the
        new holder writes too."""
        current = self.store.get_operation(self.record.name)
        if current is None or current.lease_owner != self.owner:
            raise LeaseLost(self.record.name)

    def finish(self, operation: operations_pb2.Operation, checkpoint: bytes = b"") -> None:
        """Record the final Operation (with its response or error): done."""
        payload = operation.SerializeToString()
        self.step(Step(), lambda _: Progress(checkpoint, payload, True))
        self.ended = operation

    def check_stop(self) -> None:
        """Between batches: raise StopRequested when the process is shutting down."""
        if self._stopping.is_set():
            raise StopRequested(self.record.name)


Job = Callable[[JobContext], None]
# Builds the Operation clients see before its job starts, from its name and creation
# time (nanoseconds).
FirstOperation = Callable[[str, int], operations_pb2.Operation]


def _host_identity() -> str:
    """This host as lease owners name it: the host name, plus the PID namespace
    where there is one, since containers may share a host name but not their pids."""
    host = socket.gethostname().replace(":", "_")
    try:
        return f"{host}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return host


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OperationRunner:
    """Claims and runs operations on `workers` threads until stopped."""

    def __init__(self, store: Store, clock: Clock, jobs: Mapping[str, Job], *,
                 workers: int = 1, lease_seconds: float = 30.0,
                 poll_seconds: float = 1.0, max_pending: int = 0,
                 given_up: Callable[[str], None] | None = None,
                 settle: Mapping[str, Job] | None = None,
                 discard: Mapping[str, Job] | None = None,
                 kept_after_stop: bool = True) -> None:
        self._store = store
        # Whether the store outlives this process (not memory://): what a stop that
        # leaves a job unfinished says becomes of it (see _left_at_stop).
        self._kept_after_stop = kept_after_stop
        # For a kind, what drops what a try wrote outside the store past its last step
        # (the lines of a file past the size its checkpoint holds): run before the
        # runner ends an operation its job did not end (_end_with), as the job itself
        # does when it resumes.
        self._settle = dict(settle or {})
        # For a kind, what removes what a try left outside the store for a run of it
        # to finish (an export's NAME.part): run once an operation not done is deleted
        # (see `deleted`).
        self._discard = dict(discard or {})
        # Told the kind of each operation ended here unrun, its tries having ended
        # their process (metrics count it failed, as a crash on a last try).
        self._given_up = given_up
        self._max_pending = max_pending  # a project's operations not done, at most (0: any)
        self._clock = clock
        self._jobs = dict(jobs)
        self._workers = workers
        self._lease_us = int(lease_seconds * 1e6)
        self._poll = poll_seconds
        self._host = _host_identity()
        # Each worker thread leases as `{owner}/{i}`: a holder may claim its own job
        # again (to resume it), which must never be another thread of this process.
        self.owner = f"{self._host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # Failed tries of the operations released for a retry, oldest first.
        self._failures: dict[str, int] = {}
        self._failures_lock = threading.Lock()
        # The operation each worker (by owner) runs now: let go at a stop that leaves
        # the worker busy.
        self._running: dict[str, str] = {}
        # When the store last answered a claim, and its last outage as this process saw
        # it: (when it last answered before it, when it answered again, or None while
        # it is away). See _lapsed_before.
        self._answered_us = 0
        self._outage: tuple[int, int | None] | None = None
        self._outages_seen = store.outages  # (see _note_outages)
        self._outage_lock = threading.Lock()
        # WaitOperation callers, woken whenever a worker leaves an operation.
        self.wakeups = Wakeups()

    def start(self) -> None:
        for i in range(self._workers):
            thread = threading.Thread(target=self._loop, args=(f"{self.owner}/{i}",),
                                      name=f"footfall-ops-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, parent: str, kind: str, request: Message,
               first: FirstOperation) -> operations_pb2.Operation:
        """Store a new operation of `kind` under `parent`, wake a worker, and return
        `first(name, create_time_ns)`: the Operation clients see before the job starts
        (the time is the one stored, to the microsecond). RESOURCE_EXHAUSTED when the
        project has `max_pending` operations not done already."""
        if self._max_pending:
            # (a hundred inline imports of 9 MB each were all taken, their requests held
            # in the store until each ran)
            project = "/".join(str(parent).split("/")[:2])
            pending = self._store.count_operations(f"{project}/", done=False)
            if pending >= self._max_pending:
                raise ResourceExhausted(
                    f"{project} has {counted(pending, 'operation')} not done yet, its limit "
                    f"(--max-pending-operations): wait for some to end, or cancel some",
                    retry_after=5.0)
        operation = self.submit_named(records.new_name(parent, kind), kind, request, first)
        if operation is None:  # one chance in 10**18
            raise RuntimeError("a new operation's random name is taken")
        return operation

    def submit_named(self, name: str, kind: str, request: Message,
                     first: FirstOperation) -> operations_pb2.Operation | None:
        """Like submit, under `name`; None, storing nothing, when an operation of that
        name exists: how replicas agree that only one of them starts a scheduled job."""
        now_us = self._clock.now_ns() // 1000
        operation = first(name, now_us * 1000)
        if not self._store.create_operation(OperationRecord(
                name=name, kind=kind, done=False, create_time_us=now_us,
                request=request.SerializeToString(), operation=operation.SerializeToString())):
            return None
        self.notify()
        return operation

    def notify(self) -> None:
        """A new operation was stored: look for work now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current batch; unfinished jobs are released for the next start.

        Waits at most `timeout` seconds (None: as long as it takes) for the workers. A
        worker still busy then (e.g. held by a file system that does not answer) is
        left behind: its thread dies with the process, and its operation is let go
        all the same (no try is lost), to be taken up again at the next start or by
        another replica (or, if the store cannot be told, once its lease runs out).
        """
        self._stopping.set()
        self._wake.set()
        end = None if timeout is None else time.monotonic() + timeout
        busy: list[tuple[str, str]] = []
        for i, thread in enumerate(self._threads):
            thread.join(None if end is None else max(0.0, end - time.monotonic()))
            if thread.is_alive():
                log.warning("%s still busy after %ss; leaving it (%s)", thread.name, timeout,
                            "its operation is let go: it resumes at the next start, or on "
                            "another replica" if self._kept_after_stop else
                            "its operation ends unfinished with the memory:// store")
                owner = f"{self.owner}/{i}"
                name = self._running.get(owner)
                if name is not None:
                    busy.append((name, owner))
        if busy:
            # Let go, as a worker that stops between batches does: held, the job's
            # next claim (this host's next start, or another replica once the lease
            # ran out) counted a try lost to it, and three stops in the middle of a
            # long batch ended a sound job INTERNAL. Its worker's next step finds it
            # let go (LeaseLost). Not waited for long: the writer may be what holds it.
            letting_go = threading.Thread(target=self._let_go, args=(busy,), daemon=True,
                                          name="footfall-ops-let-go")
            letting_go.start()
            letting_go.join(LET_GO_SECONDS)

    def _let_go(self, busy: list[tuple[str, str]]) -> None:
        for name, owner in busy:
            try:
                self._store.release_operation(name, owner)
            except Exception as exc:  # (the database away): its lease runs out instead
                log.warning("could not let go of %s at the stop: %s", name, exc)

    def _holder_gone(self, holder: str) -> bool:
        host, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if host != self._host or not pid_text.isdigit():
            return False
        pid = int(pid_text)
        return pid != os.getpid() and not _pid_alive(pid)

    def _loop(self, owner: str) -> None:
        unable = False  # since the last look that worked: said once, not every second
        while not self._stopping.is_set():
            self._note_outages()
            now_us = self._clock.now_ns() // 1000
            try:
                record = self._store.claim_operation(
                    owner, now_us, self._lease_us, self._holder_gone,
                    kinds=self._jobs.keys(), lapsed_before_us=self._lapsed_before(now_us))
            except StoreUnavailable as exc:
                log.log(logging.DEBUG if unable else logging.WARNING,
                        "could not look for operations to run: %s (said once, until it can "
                        "look again)", exc.message)
                unable = True
                self._store_away()
                record = None
            except Exception:
                log.exception("could not look for operations to run")
                record = None
            else:
                if unable:
                    log.info("looking for operations to run again")
                unable = False
                self._note_outages()
                self._store_answered(self._clock.now_ns() // 1000)
            if record is None:
                self._wake.wait(self._poll)
                self._wake.clear()
                continue
            try:
                self._run(record, owner)
            except Exception:  # e.g. the database left while recording a failure
                log.exception("operation %s: could not record how it ended; it will be "
                              "picked up again", record.name)
                self._stopping.wait(self._poll)
            finally:
                self.wakeups.wake_all()

    def _store_away(self) -> None:
        """The store refused a claim or a job's step: an outage began (since it last
        answered), unless one is going on."""
        with self._outage_lock:
            if self._outage is None or self._outage[1] is not None:
                self._outage = (self._answered_us, None)

    def _note_outages(self) -> None:
        """As _store_away, if the store met an outage since the last look: a claim (a
        write) waits out one shorter than the store's retry_seconds (5 s) instead of
        failing, and the claims after it took over at once the leases that ran out
        meanwhile."""
        outages = self._store.outages
        with self._outage_lock:
            if outages == self._outages_seen:
                return
            self._outages_seen = outages
        self._store_away()

    def _store_answered(self, now_us: int) -> None:
        with self._outage_lock:
            self._answered_us = now_us
            if self._outage is not None and self._outage[1] is None:
                self._outage = (self._outage[0], now_us)

    def _lapsed_before(self, now_us: int) -> int:
        """Before when a lease must have run out for a claim to take its operation
        over: now, but within a lease of the end of an outage this process saw, when
        that outage began. A holder alive cannot renew its lease while the store is
        away: taken over then, its try was counted lost (three such outages ended a
        sound job INTERNAL), and its work since its last step was done again. A
        lease live when the outage began runs on until a lease after it ended: the
        holder takes its job up again meanwhile (or it is gone, and then it is taken
        over, and counted). An outage of this holder's alone (a network between it and
        the database, not this process) is not seen here: see README, "Jobs"."""
        with self._outage_lock:
            if self._outage is None:
                return now_us
            began, ended = self._outage
        if now_us < (now_us if ended is None else ended) + self._lease_us:
            return min(now_us, began)
        return now_us

    @property
    def counted_failures(self) -> int:
        """Operations whose failed tries are being counted (released for a retry)."""
        return len(self._failures)

    def _run(self, record: OperationRecord, owner: str) -> None:
        job = self._jobs.get(record.kind)
        context = JobContext(record, self._store, self._clock, owner, self._lease_us,
                             self._stopping)
        if job is None:  # not claimed by kind (see claim_operation); left all the same
            log.error("operation %s has unknown kind %r; leaving it", record.name, record.kind)
            self._store.release_operation(record.name, owner)
            self._stopping.wait(self._poll)
            return
        log.info("running %s", record.name)
        started = time.monotonic()
        # Counted again only if this try fails and is retried: every other ending
        # leaves nothing behind. A try that ended its process (or lost its lease) is
        # counted by the store (lost_tries), since the count kept here died with it.
        with self._failures_lock:
            tries = max(self._failures.pop(record.name, 0), record.lost_tries)
        if record.lost_tries:
            log.warning("operation %s: %d of its tries ended without letting it go (their "
                        "process died, or their lease ran out)", record.name, record.lost_tries)
        if tries >= MAX_TRIES:
            # Run again, it would end this process too: under --processes, three jobs
            # like it are the supervisor's five deaths a minute, and the server stops.
            log.error("operation %s ended the process running it %d times; ending it",
                      record.name, tries)
            self._end_with(context, status_pb2.Status(
                code=code_pb2.INTERNAL,
                message=f"the operation ended the process running it {tries} times (out of "
                        "memory, or killed?); see the server log"))
            if context.ended is not None:
                if self._given_up is not None:
                    self._given_up(record.kind)
                _log_end(context.ended, time.monotonic() - started)
            return
        context.last_try = tries + 1 >= MAX_TRIES
        self._running[owner] = record.name
        try:
            job(context)
        except StoreUnavailable as exc:  # before FootfallError: the database, not the client
            log.warning("%s paused, it resumes from its last committed step: %s",
                        record.name, exc.message)
            self._store_away()
            if tries:
                self._count_failures(record.name, tries)
            self._stopping.wait(self._poll)
        except FootfallError as exc:
            # The job found the request cannot be done (e.g. its file is gone since the
            # call): the client's problem, reported on the operation, not retried.
            log.info("%s ends with %s: %s", record.name, exc.code.name, exc.message)
            self._end_with(context, to_rpc_status(exc))
        except StopRequested:
            log.info("shutting down: %s", self._left_at_stop(record.name))
            with contextlib.suppress(StoreUnavailable):  # else the lease lapses by itself
                self._store.release_operation(record.name, owner)
        except LeaseLost:
            context.ended = self._ended_elsewhere(record.name)
            if context.ended is None:
                log.warning("%s was deleted or taken over; stopped working on it", record.name)
        except Exception:
            # A bug or a fault of the machine, not a client's mistake: retried (jobs are
            # idempotent), and ended with an error after a few tries, never left running.
            failures = tries + 1
            if failures < MAX_TRIES:
                log.exception("operation %s failed (try %d); it will be retried",
                              record.name, failures)
                self._count_failures(record.name, failures)
                self._store.release_operation(record.name, owner)
                self._stopping.wait(self._poll)
                return
            log.exception("operation %s failed %d times; ending it", record.name, failures)
            self._end_with(context, status_pb2.Status(
                code=code_pb2.INTERNAL, message="the operation failed; see the server log"))
        finally:
            self._running.pop(owner, None)
            if context.ended is not None:
                _log_end(context.ended, time.monotonic() - started)

    def _left_at_stop(self, name: str) -> str:
        """What becomes of the operation `name`, unfinished at a stop: resumed at the
        next start (or by another replica), or, on a memory:// store, nothing: it
        goes with the store, and "will resume" told of a start that never finds it."""
        if self._kept_after_stop:
            return f"{name} will resume at the next start"
        return (f"{name} stops unfinished and is lost with the memory:// store (nothing "
                f"of it is resumed: the next start begins empty)")

    def _ended_elsewhere(self, name: str) -> operations_pb2.Operation | None:
        """The operation `name` as ended by another than its holder, if it was: a reset
        of its catalog or project cancels it so (see ConsoleSql._cancel_running), done
        and held by nobody, where a holder's ending keeps its lease. None otherwise
        (deleted, taken over, or the store away)."""
        try:
            current = self._store.get_operation(name)
        except StoreUnavailable:
            return None
        if current is None or not current.done or current.lease_owner is not None:
            return None
        log.info("%s was ended while it ran (its catalog was reset); stopped working on it",
                 name)
        return operations_pb2.Operation.FromString(current.operation)

    def _count_failures(self, name: str, failures: int) -> None:
        with self._failures_lock:
            self._failures[name] = failures
            while len(self._failures) > MAX_COUNTED_FAILURES:
                del self._failures[next(iter(self._failures))]

    def deleted(self, record: OperationRecord) -> None:
        """`record`, not done, was deleted (DeleteOperation): no run of it comes again
        to finish or settle what its last try left outside the store, so it is removed
        here (a run holding it now stops at its next step, and removes it too)."""
        discard = self._discard.get(record.kind)
        if discard is None or record.done:
            return
        try:
            discard(JobContext(record, self._store, self._clock, "", self._lease_us,
                               self._stopping))
        except Exception:  # (the delete stands: what was left is said, not kept)
            log.exception("operation %s: deleted, but could not remove what it was writing",
                          record.name)

    def _end_with(self, context: JobContext, error: status_pb2.Status) -> None:
        """End the operation with `error`, keeping its metadata."""
        current = self._store.get_operation(context.record.name)
        if current is None or current.lease_owner != context.owner:
            return  # (deleted, or taken over: its files are the new holder's)
        settle = self._settle.get(current.kind)
        if settle is not None:
            try:
                settle(replace(context, record=current))
            except Exception:  # (a file that cannot be cut does not keep it running)
                log.exception("operation %s: could not cut back what it wrote", current.name)
        op = operations_pb2.Operation.FromString(current.operation)
        op.done = True
        op.error.CopyFrom(error)
        with contextlib.suppress(LeaseLost):
            context.finish(op, current.checkpoint or b"")


def _log_end(operation: operations_pb2.Operation, seconds: float) -> None:
    """One INFO line per job that ends: kind, outcome, this run's time, counts."""
    summary = summarize(operation)
    counts = "".join(f" {key}={value}" for key, value in summary.counts.items())
    error = f" error={summary.error!r}" if summary.error else ""
    log.info("operation ended: kind=%s state=%s seconds=%.3f%s name=%s%s", summary.kind,
             summary.state, seconds, counts, summary.name, error)
