"""The group-commit writer and the coroutines that wait on it: a whole batch is
answered with one wake-up of the loop, a batch's events are joined with the
catalog after one read, and rows answered before their commit are counted until
they commit."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from server.errors import InvalidArgument
from server.store import EventQuery, group_commit, open_store
from server.store.group_commit import GroupCommitter, Job, apply_in_order, settle
from server.store.rows import StoreUnavailable

from .joins import MadeBy
from .test_store import CATALOG, row
from .threads import in_background

WRITERS = 50


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the calls other threads make into it."""

    wakeups = 0

    def call_soon_threadsafe(self, *args: Any, **kwargs: Any) -> Any:
        self.wakeups += 1
        return super().call_soon_threadsafe(*args, **kwargs)


class HeldWriter:
    """A GroupCommitter whose batches wait for `release`, remembering each batch."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()  # the writer is inside its first batch
        self.batches: list[list[Job]] = []
        self.committer = GroupCommitter(self._apply)

    def _apply(self, jobs: list[Job]) -> None:
        self.entered.set()
        self.release.wait(10)
        self.batches.append(list(jobs))
        settle(jobs, apply_in_order(jobs, lambda rows: None, lambda job: (job.fn(None), None)))


@pytest.fixture
def held() -> Iterator[HeldWriter]:
    writer = HeldWriter()
    yield writer
    writer.release.set()
    writer.committer.close()


def run(coroutine: Any) -> Any:
    loop = CountingLoop()
    try:
        return loop.run_until_complete(coroutine), loop.wakeups
    finally:
        loop.close()


def test_a_batch_of_waiting_coroutines_is_answered_with_one_wakeup(held: HeldWriter) -> None:
    async def write_all() -> None:
        blocker = held.committer.submit_rows([row("first")])  # the writer holds this batch
        held.entered.wait(10)
        waits = [held.committer.submit_awaited([row(f"v{i}")]) for i in range(WRITERS)]
        held.release.set()
        await asyncio.gather(*waits)
        blocker.result(10)

    _, wakeups = run(write_all())
    assert [len(batch) for batch in held.batches] == [1, WRITERS]
    assert wakeups == 1


def test_a_batch_reads_each_catalog_once_and_a_refused_join_fails_alone(
        held: HeldWriter) -> None:
    reads: list[tuple[str, list[str]]] = []

    def read(catalog: str, ids: list[str]) -> dict[str, Any]:
        reads.append((catalog, ids))
        return {pid: pid.upper() for pid in ids}

    def finish(name: str) -> Any:
        def made(products: dict[str, Any]) -> Any:
            if name == "too-big":
                raise InvalidArgument.field("user_event", "cannot be joined")
            return row(products[name])
        return made

    async def write_all() -> list[Any]:
        blocker = held.committer.submit_rows([row("first")])
        held.entered.wait(10)
        waits = [held.committer.submit_awaited(join=MadeBy("c", [name], read, finish(name)))
                 for name in ("a", "b", "too-big")]
        held.release.set()
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
        blocker.result(10)
        return outcomes

    outcomes, _ = run(write_all())
    assert reads == [("c", ["a", "b", "too-big"])]
    assert outcomes[:2] == [None, None] and isinstance(outcomes[2], InvalidArgument)
    assert [[r.visitor_id for job in batch for r in job.rows or ()]
            for batch in held.batches] == [["first"], ["A", "B"]]


def test_a_pixel_whose_catalog_could_not_be_read_a_moment_is_joined_again(
        held: HeldWriter) -> None:
    """The database away for one product read: the pixel naming products is tried
    again, as rows are, not dropped (it was kept as a refusal only), and the batch's
    other events commit meanwhile."""
    reads: list[str] = []
    refused: list[BaseException] = []

    def read(catalog: str, ids: list[str]) -> dict[str, Any]:
        reads.append(catalog)
        if len(reads) == 1:
            raise StoreUnavailable("the database is unreachable; try again later")
        return {pid: pid.upper() for pid in ids}

    held.committer.submit_rows([row("first")])
    held.entered.wait(10)
    pixel = held.committer.submit(MadeBy("c", ["x"], read, lambda p: row(p["x"]),
                                         refused.append))
    beside = held.committer.submit_rows([row("beside")], waited=False)
    held.release.set()
    deadline = time.monotonic() + 10
    while not pixel.done() and time.monotonic() < deadline:  # after a retry's delay
        time.sleep(0.01)
    assert pixel.exception() is None and beside.exception() is None and refused == []
    assert reads == ["c", "c"]
    assert [[r.visitor_id for job in batch for r in job.rows or ()]
            for batch in held.batches] == [["first"], ["beside"], ["X"]]
    assert held.committer.acknowledged_uncommitted == 0


def test_rows_answered_before_their_commit_are_counted_until_it(held: HeldWriter) -> None:
    held.committer.submit_rows([row("first")])
    held.entered.wait(10)
    held.committer.submit_rows([row("a"), row("b")], waited=False)
    held.committer.submit(MadeBy("c", ["x"], lambda c, ids: {}, lambda p: row("x")))
    assert held.committer.acknowledged_uncommitted == 3
    held.release.set()
    held.committer.flush()
    assert held.committer.acknowledged_uncommitted == 0


def test_a_job_that_rides_along_joins_the_next_batch_of_others(held: HeldWriter,
                                                                monkeypatch: Any) -> None:
    monkeypatch.setattr(group_commit, "ALONG_SECONDS", 0.0)  # due at once
    first = held.committer.submit_rows([row("a")])
    assert held.entered.wait(5)  # the writer is busy with it
    along = held.committer.submit_along(lambda _db: "along")
    written = held.committer.submit_rows([row("b")])
    held.release.set()
    first.result(5)
    written.result(5)
    assert along.result(5) == "along"
    # one batch for both: the job that rides along made no commit of its own
    assert [len(batch) for batch in held.batches] == [1, 2]


def test_jobs_that_ride_along_wait_their_delay_while_batches_pass(held: HeldWriter,
                                                                 monkeypatch: Any) -> None:
    """A flood's refusals ride with one batch in ALONG_SECONDS, not with each."""
    monkeypatch.setattr(group_commit, "ALONG_SECONDS", 60.0)
    held.release.set()
    along = [held.committer.submit_along(lambda _db, n=n: n) for n in range(3)]
    for name in ("a", "b", "c"):
        held.committer.submit_rows([row(name)]).result(5)
    assert not any(job.done() for job in along)
    assert [len(batch) for batch in held.batches] == [1, 1, 1]
    held.committer.flush()  # takes them at once
    assert [job.result(0) for job in along] == [0, 1, 2]
    assert [len(batch) for batch in held.batches] == [1, 1, 1, 4]


def test_jobs_that_ride_along_fall_due_between_writes_and_ride_with_the_next(
        held: HeldWriter, monkeypatch: Any) -> None:
    """A caller writing again and again leaves the writer idle a moment between its
    commits: jobs riding along that fall due in such a moment wait for its next
    write, not commit alone (a commit of their own beside a flood of kept refusals
    made the accepted writes wait for it, and split their next batch)."""
    monkeypatch.setattr(group_commit, "ALONG_SECONDS", 0.1)
    held.release.set()
    along = held.committer.submit_along(lambda _db: "along")
    began = time.monotonic()
    while not along.done() and time.monotonic() < began + 0.5:
        held.committer.submit_rows([row("w")]).result(5)
        time.sleep(0.01)  # idle between the writes: 1-2% of the time busy
    assert along.result(5) == "along"
    rode = [batch for batch in held.batches if any(job.future is along for job in batch)]
    assert [len(batch) for batch in rode] == [2]  # with a write, not alone


def test_a_job_that_rides_along_alone_commits_within_its_delay(held: HeldWriter) -> None:
    held.release.set()
    along = held.committer.submit_along(lambda _db: "alone")
    assert along.result(5) == "alone"
    assert [len(batch) for batch in held.batches] == [1]
    held.committer.submit_along(lambda _db: None)
    held.committer.flush()  # a flush takes it too
    assert [len(batch) for batch in held.batches] == [1, 2]


def test_jobs_that_ride_along_are_written_when_the_writer_closes(held: HeldWriter) -> None:
    held.release.set()
    along = held.committer.submit_along(lambda _db: "closing")
    held.committer.close()
    assert along.result(0) == "closing"


class Recorder:
    """A GroupCommitter that lingers `linger_seconds`, remembering each batch."""

    def __init__(self, linger_seconds: float, turn: Any = None) -> None:
        self.batches: list[list[str]] = []
        self.committed = threading.Event()
        self.committer = GroupCommitter(self._apply, linger_seconds=linger_seconds, turn=turn)

    def _apply(self, jobs: list[Job]) -> None:
        self.batches.append([r.visitor_id for job in jobs for r in job.rows or ()]
                            + ["fn" for job in jobs if job.fn is not None])
        settle(jobs, apply_in_order(jobs, lambda rows: None, lambda job: (job.fn(None), None)))
        self.committed.set()


def test_rows_nobody_waits_for_linger_until_a_waited_job_comes() -> None:
    writer = Recorder(linger_seconds=60)
    try:
        for name in ("a", "b", "c"):
            unwaited = writer.committer.submit_rows([row(name)], waited=False)
            assert not isinstance(unwaited, Future)  # no lock and condition of its own
            if name == "a":  # the writer took it, and waits for more
                pause = threading.Event()
                for _ in range(10_000):  # polled, up to 10 s
                    if writer.committer.lingering or writer.batches:
                        break
                    pause.wait(0.001)
                assert writer.committer.lingering and not writer.batches
        assert writer.committer.acknowledged_uncommitted == 3
        # A job somebody waits for is not kept waiting for the linger (60 s).
        assert writer.committer.submit_fn(lambda _db: "done").result(10) == "done"
        assert writer.batches == [["a", "b", "c", "fn"]]
        assert writer.committer.acknowledged_uncommitted == 0
    finally:
        writer.committer.close()


def test_a_lingering_batch_commits_once_its_time_is_up() -> None:
    writer = Recorder(linger_seconds=0.05)
    try:
        writer.committer.submit_rows([row("a")], waited=False)
        assert writer.committed.wait(10)
        assert writer.batches == [["a"]]
    finally:
        writer.committer.close()


def test_closing_cuts_a_linger_short_and_commits_what_lingered() -> None:
    writer = Recorder(linger_seconds=60)
    writer.committer.submit_rows([row("a")], waited=False)
    closing = threading.Thread(target=writer.committer.close)
    closing.start()
    closing.join(10)
    assert not closing.is_alive()
    assert writer.batches == [["a"]]


def test_jobs_marked_first_run_before_the_rest_of_their_batch() -> None:
    # A purge step may lock the events table (PostgreSQL): it asks before the batch's
    # inserts hold row locks another replica may wait for, else the two deadlock.
    done: list[str] = []
    jobs = [Job(rows=["row 1"]), Job(fn=lambda _db: done.append("write")),  # type: ignore[list-item]
            Job(fn=lambda _db: done.append("purge step"), first=True),
            Job(rows=["row 2"])]  # type: ignore[list-item]
    inserts: list[int] = []
    outcomes = apply_in_order(jobs, lambda rows: inserts.append(len(done)),
                              lambda job: (job.fn(None), None))
    assert done == ["purge step", "write"]
    assert inserts == [1, 2]  # each run of rows where it was, after the step
    settle(jobs, outcomes)
    assert all(job.future.done() for job in jobs if job.fn is not None)


def described(batch: list[Job]) -> list[str]:
    """A batch's rows by visitor, then its function jobs ("alone" or "fn")."""
    return [r.visitor_id for job in batch for r in job.rows or ()] + [
        "alone" if job.alone else "fn" for job in batch if job.fn is not None]


def test_a_job_alone_commits_in_a_transaction_of_its_own_in_its_place(
        held: HeldWriter) -> None:
    # A purge's step: the writes queued behind it wait for it once, not again in a
    # transaction they share with the next step.
    blocker = held.committer.submit_rows([row("first")])
    assert held.entered.wait(10)
    before = held.committer.submit_rows([row("before")])
    alone = held.committer.submit_fn(lambda _db: "step", alone=True)
    after = [held.committer.submit_rows([row(name)]) for name in ("after", "later")]
    held.release.set()
    assert alone.result(10) == "step"
    assert [future.result(10) for future in (blocker, before, *after)] == [None] * 4
    assert [described(batch) for batch in held.batches] == [
        ["first"], ["before"], ["alone"], ["after", "later"]]


def test_a_job_alone_sees_whether_jobs_wait_behind_it(held: HeldWriter) -> None:
    seen: list[bool] = []

    def step(_db: Any) -> None:
        seen.append(held.committer.waiting)

    blocker = held.committer.submit_rows([row("first")])
    assert held.entered.wait(10)
    stepped = held.committer.submit_fn(step, alone=True)
    behind = held.committer.submit_rows([row("behind")])
    held.release.set()
    for future in (blocker, stepped, behind):
        future.result(10)
    held.committer.submit_fn(step, alone=True).result(10)
    assert seen == [True, False]


def test_closing_commits_a_job_alone_queued_among_others(held: HeldWriter) -> None:
    held.committer.submit_rows([row("first")])
    assert held.entered.wait(10)
    queued = [held.committer.submit_rows([row("a")]),
              held.committer.submit_fn(lambda _db: "step", alone=True),
              held.committer.submit_rows([row("b")])]
    closing = threading.Thread(target=held.committer.close)
    closing.start()
    held.release.set()
    closing.join(10)
    assert not closing.is_alive()
    assert [future.result(0) for future in queued] == [None, "step", None]
    assert [described(batch) for batch in held.batches] == [["first"], ["a"], ["alone"], ["b"]]


class OtherProcess:
    """The writers' turn (`GroupCommitter(turn=...)`), held by the test as another
    process would hold it while it commits: the writer's turns come as the test
    `grant`s them; notes when the writer asks for one."""

    def __init__(self) -> None:
        self._turns = threading.Semaphore(0)
        self.asked = threading.Event()

    def grant(self, turns: int = 1) -> None:
        self._turns.release(turns)

    def __enter__(self) -> None:
        self.asked.set()
        assert self._turns.acquire(timeout=10)

    def __exit__(self, *_exc: object) -> None:
        self.asked.clear()


@pytest.fixture
def in_turns() -> Iterator[tuple[OtherProcess, Recorder]]:
    """A writer that commits in the turns another process grants it."""
    other = OtherProcess()
    writer = Recorder(linger_seconds=0, turn=other)
    yield other, writer
    other.grant(100)
    writer.committer.close()


def test_writes_queued_while_another_process_commits_join_the_batch_waiting_for_its_turn(
        in_turns: tuple[OtherProcess, Recorder]) -> None:
    other, writer = in_turns
    first = writer.committer.submit_rows([row("a")])
    assert other.asked.wait(10)  # the writer took "a" and waits for its turn
    later = [writer.committer.submit_rows([row(name)]) for name in "bcd"]
    other.grant()
    for future in (first, *later):
        future.result(10)
    # one commit, not one for "a" and then one more for the rest
    assert writer.batches == [["a", "b", "c", "d"]]


def test_a_job_alone_neither_joins_nor_takes_in_the_jobs_queued_during_a_wait_for_the_turn(
        in_turns: tuple[OtherProcess, Recorder]) -> None:
    other, writer = in_turns
    first = writer.committer.submit_fn(lambda _db: "step", alone=True)
    assert other.asked.wait(10)  # the writer took the step alone and waits for its turn
    queued = [writer.committer.submit_rows([row("a")]),
              writer.committer.submit_fn(lambda _db: "step", alone=True),
              writer.committer.submit_rows([row("b")])]
    other.grant(4)
    assert [future.result(10) for future in (first, *queued)] == ["step", None, "step", None]
    assert writer.batches == [["fn"], ["a"], ["fn"], ["b"]]


def test_a_flush_while_the_writer_waits_for_its_turn_commits_the_jobs_riding_along(
        in_turns: tuple[OtherProcess, Recorder]) -> None:
    other, writer = in_turns
    writer.committer.submit_rows([row("a")])
    assert other.asked.wait(10)
    along = writer.committer.submit_along(lambda _db: "kept refusals")
    flushing, flushed = in_background(writer.committer.flush)
    flushing.join(0.2)  # its job queued behind "a" (the writer waits for its turn)
    other.grant()  # one turn: a batch after it would wait
    flushing.join(10)
    assert flushed == [None]
    assert along.done() and along.result() == "kept refusals"


def test_closing_while_the_writer_waits_for_its_turn_commits_what_it_holds() -> None:
    other = OtherProcess()
    writer = Recorder(linger_seconds=0, turn=other)
    first = writer.committer.submit_rows([row("a")])
    assert other.asked.wait(10)
    closing = threading.Thread(target=writer.committer.close)
    closing.start()
    queued = []
    for _ in range(10_000):  # until close() has queued its stop (polled, up to 10 s)
        try:
            queued.append(writer.committer.submit_rows([row("b")]))  # before the stop
        except RuntimeError:  # "store is closed"
            break
        threading.Event().wait(0.001)
    other.grant(100)  # the writer finds the stop behind them as it takes its turn
    closing.join(10)
    assert not closing.is_alive()
    assert [future.result(0) for future in (first, *queued)] == [None] * (1 + len(queued))
    assert writer.batches == [["a", *("b" * len(queued))]]


class RefusesBad:
    """A GroupCommitter whose database refuses any batch holding the row of visitor
    "bad" (as it would a row a bug let through), and is away (StoreUnavailable)
    for the first `away` tries of a lone row job; remembers the rows it committed."""

    def __init__(self, away: int = 0) -> None:
        self.away = away
        self.committed: list[list[str]] = []
        self.committer = GroupCommitter(self._apply, linger_seconds=0)

    def _apply(self, jobs: list[Job]) -> None:
        names = [r.visitor_id for job in jobs for r in job.rows or ()]
        if "bad" in names:
            raise RuntimeError("the database refuses the row of 'bad'")
        if len(jobs) == 1 and names and self.away:
            self.away -= 1
            raise StoreUnavailable("the database is away")
        settle(jobs, apply_in_order(jobs, lambda rows: None, lambda job: (job.fn(None), None)))
        if names:
            self.committed.append(names)


@pytest.mark.parametrize("away", [0, 2])
def test_a_batch_the_database_refuses_is_committed_again_job_by_job(away: int) -> None:
    writer = RefusesBad(away)
    entered, held = threading.Event(), threading.Event()
    writer.committer.submit_fn(lambda _db: (entered.set(), held.wait(10)))
    assert entered.wait(10)  # the writer is busy: the next jobs make one batch
    jobs = [writer.committer.submit(Job(rows=[row(name)], waited=name == "waited"))
            for name in ("early", "bad", "waited", "late")]
    step = writer.committer.submit_fn(lambda _db: "ran")  # runs in the refused transaction
    held.set()
    try:
        with pytest.raises(RuntimeError, match="refuses"):
            step.result(10)
        assert jobs[2].result(10) is None
        writer.committer.flush()
        with pytest.raises(RuntimeError, match="refuses"):
            jobs[1].result()
        # "bad" fails alone; the others are stored one at a time, in their order (the
        # database away meanwhile only delays them)
        assert writer.committed == [["early"], ["waited"], ["late"]]
        assert writer.committer.acknowledged_uncommitted == 0
    finally:
        writer.committer.close()


def test_a_flush_whose_waiter_gave_up_commits_and_troubles_no_batch(
        caplog: pytest.LogCaptureFixture) -> None:
    # A read that stops waiting for a flush (its deadline, its caller gone) cancels
    # only its own wait: the flush job still runs, and its batch is answered as any.
    store = open_store("memory://")
    try:
        release = threading.Event()
        held = store._committer.submit_fn(lambda _conn: release.wait(10))  # type: ignore[attr-defined]

        async def give_up() -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(store.flush_async(), 0.05)

        with caplog.at_level(logging.ERROR):
            asyncio.run(give_up())
            # a write queued behind the flush, in its batch
            written = store._committer.submit_rows([row("v")])  # type: ignore[attr-defined]
            release.set()
            written.result(5)
            store.flush()
        assert held.result(5) is True
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert store.count_user_events(EventQuery(CATALOG)) == 1
    finally:
        store.close()


def test_callers_answered_together_are_committed_together() -> None:
    # Callers answered by one commit write again a moment apart (a server's loop
    # hands their calls over one by one): the next batch waits for as many as the
    # last had, rather than commit the first alone and the rest behind it.
    batches: list[int] = []

    def apply(jobs: list[Job]) -> None:
        batches.append(len(jobs))
        settle(jobs, apply_in_order(jobs, lambda rows: None, lambda job: (None, None)))

    committer = GroupCommitter(apply, gather_seconds=1.0)
    try:
        release = threading.Event()
        first = committer.submit_fn(lambda db: release.wait(10), alone=True)  # a batch of one
        held = [committer.submit_rows([row(f"a{i}")]) for i in range(4)]  # queued meanwhile
        release.set()  # (held, not slept: a stalled machine queued them after it ended)
        for future in [first, *held]:
            future.result(10)
        assert batches == [1, 4]
        again = []
        for i in range(4):
            again.append(committer.submit_rows([row(f"b{i}")]))
            time.sleep(0.05)
        for future in again:
            future.result(10)
        assert batches[-1] == 4
        committer.submit_rows([row("c")]).result(10)  # fewer than before: waited once
        started = time.monotonic()
        committer.submit_rows([row("d")]).result(10)  # a lone caller: never kept waiting
        assert time.monotonic() - started < 0.9  # (the gathering would wait 1 s)
        assert batches[-2:] == [1, 1]
    finally:
        committer.close()


def _switches(thread: threading.Thread) -> int:
    """How many times `thread` has slept (its voluntary context switches)."""
    status = open(f"/proc/self/task/{thread.native_id}/status").read()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])


@pytest.mark.skipif(not hasattr(threading.Thread, "native_id")
                    or not __import__("os").path.exists("/proc/self/task"),
                    reason="reads the writer's context switches from /proc (Linux)")
def test_a_gathering_batch_sleeps_once_for_the_jobs_it_waits_for() -> None:
    # Each job that comes while a batch gathers would wake the writer (a futex wake
    # on the submitting thread, a GIL hand-off both ways) only to wait again: the
    # writer sleeps until as many as it waits for are queued.
    batches: list[int] = []

    def apply(jobs: list[Job]) -> None:
        batches.append(len(jobs))
        settle(jobs, apply_in_order(jobs, lambda rows: None, lambda job: (None, None)))

    committer = GroupCommitter(apply, gather_seconds=5.0)
    try:
        release = threading.Event()
        first = committer.submit_fn(lambda db: release.wait(10), alone=True)
        held = [committer.submit_rows([row(f"a{i}")]) for i in range(5)]
        release.set()
        for future in [first, *held]:
            future.result(10)
        assert batches == [1, 5]  # the next batch gathers 5
        again = [committer.submit_rows([row("b0")])]
        deadline = time.monotonic() + 10
        while not committer._short and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)  # until the writer took it, and waits for 4 more
        time.sleep(0.05)  # (gone to sleep)
        slept = _switches(committer._thread)  # type: ignore[attr-defined]
        for i in range(1, 4):
            again.append(committer.submit_rows([row(f"b{i}")]))
            time.sleep(0.05)
        woken = _switches(committer._thread) - slept  # type: ignore[attr-defined]
        assert batches == [1, 5]  # still gathering
        again.append(committer.submit_rows([row("b4")]))
        for future in again:
            future.result(10)
        assert batches == [1, 5, 5]
        assert woken == 0
    finally:
        committer.close()


def test_a_job_alone_or_close_ends_the_gathering_at_once() -> None:
    # A batch gathering for more stops waiting when a job alone comes (it commits
    # after the batch, on its own) or when the committer closes.
    batches: list[int] = []
    running, release = threading.Event(), threading.Event()

    def apply(jobs: list[Job]) -> None:
        if not batches:  # (the job alone holds the writer while the rows are queued:
            running.set()  # a writer slow to wake on a busy machine took two of them,
            release.wait(10)  # then the other two, [1, 2, 2, ...])
        batches.append(len(jobs))
        settle(jobs, apply_in_order(jobs, lambda rows: None, lambda job: (None, None)))

    committer = GroupCommitter(apply, gather_seconds=5.0)
    first = committer.submit_fn(lambda db: None, alone=True)
    assert running.wait(10)
    held = [committer.submit_rows([row(f"a{i}")]) for i in range(4)]
    release.set()
    for future in [first, *held]:
        future.result(10)
    started = time.monotonic()
    written = committer.submit_rows([row("b")])
    time.sleep(0.1)
    alone = committer.submit_fn(lambda db: None, alone=True)
    written.result(10)
    alone.result(10)
    assert batches == [1, 4, 1, 1]
    last = committer.submit_rows([row("c")])  # gathers for 4 (its last batch was 1: no)
    last.result(10)
    more = committer.submit_rows([row("d")])
    more.result(10)
    assert time.monotonic() - started < 4  # (each gathering would wait 5 s)
    committer.submit_fn(lambda db: release.wait(10), alone=True)
    queued = [committer.submit_rows([row(f"e{i}")]) for i in range(3)]
    for future in queued:
        future.result(10)
    again = committer.submit_rows([row("f")])  # gathers for 3
    time.sleep(0.1)
    started = time.monotonic()
    committer.close()
    assert time.monotonic() - started < 4
    again.result(0)
