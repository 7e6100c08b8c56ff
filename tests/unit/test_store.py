"""The store contract, run on every backend: memory, a SQLite file and PostgreSQL
(when FOOTFALL_TEST_POSTGRES_DSN is set; see tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.rpc import code_pb2

from server.clock import FixedClock
from server.errors import InvalidArgument
from server.operations.runner import MAX_TRIES, JobContext, OperationRunner
from server.store import (
    ClientEventRow,
    EventQuery,
    EventRow,
    Store,
    TimeBound,
    located,
    open_store,
    redacted,
    sql,
    sqlite,
    store_url_of,
)
from server.store.group_commit import Job
from server.store.migrations import MIGRATIONS, postgres_dialect
from server.store.rows import (
    LeaseLost,
    OperationRecord,
    ProductsChanged,
    Progress,
    Step,
    StepResult,
    StoreUnavailable,
    StoreUnusable,
)
from server.store.sql import MAX_UNCOMMITTED

from .joins import MadeBy
from .threads import in_background, until

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/0"
OPS = f"{CATALOG}/operations/"
SECOND = 1_000_000  # microseconds


def row(visitor: str = "v1", event_type: str = "home-page-view",
        time: str = "2024-01-01T00:00:00Z", catalog: str = CATALOG, joined: bool = True,
        **more: object) -> EventRow:
    event = json_format.ParseDict({"eventType": event_type, "visitorId": visitor,
                                   "eventTime": time, **more}, user_event_pb2.UserEvent())
    return EventRow.from_event(catalog, event, joined=joined)


def visitor(payload: bytes) -> str:
    return str(user_event_pb2.UserEvent.FromString(payload).visitor_id)


@pytest.fixture(params=["memory", "file", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "file":
        yield f"sqlite:///{tmp_path}/events.db"
    else:
        url: str = request.getfixturevalue("postgres_url")
        yield url
        request.getfixturevalue("postgres_databases").empty(url)


@pytest.fixture
def shared_url(store_url: str) -> str:
    """A store URL two stores (two replicas) can open at once."""
    if store_url == "memory://":
        pytest.skip("memory:// is one process's own")
    return store_url


@pytest.fixture
def stores(store_url: str) -> Iterator[Callable[[], Any]]:
    """`open()` opens a store on this test's URL; all are closed at teardown."""
    opened: list[Any] = []

    def open_one() -> Any:
        opened.append(open_store(store_url))
        return opened[-1]

    yield open_one
    for each in opened:
        each.close()


@pytest.fixture
def store(stores: Callable[[], Any]) -> Any:
    return stores()


# -- events ------------------------------------------------------------------------


def test_write_then_read(store: Store) -> None:
    store.write_user_events([row("a"), row("b")])
    assert store.count_user_events(EventQuery(CATALOG)) == 2
    listed = store.list_user_events(EventQuery(CATALOG), limit=10)
    assert [visitor(p) for _, p in listed] == ["a", "b"]


def test_exact_duplicates_are_stored_once(store: Store) -> None:
    store.write_user_events([row("a")])
    store.write_user_events([row("a"), row("a")])
    store.write_user_events([row("a", catalog=CATALOG + "x")])
    assert store.count_user_events(EventQuery(CATALOG)) == 1
    assert store.count_user_events(EventQuery(CATALOG + "x")) == 1


def test_a_large_batch_keeps_its_order_and_skips_duplicates(store: Store) -> None:
    # Large enough for PostgreSQL's COPY path, with duplicates inside and outside it.
    store.write_user_events([row("v0003"), row("v0500")])
    store.write_user_events([row(f"v{i:04d}") for i in range(1000)] + [row("v0007")])
    listed = store.list_user_events(EventQuery(CATALOG), limit=2000)
    expected = ["v0003", "v0500"] + [f"v{i:04d}" for i in range(1000) if i not in (3, 500)]
    assert [visitor(p) for _, p in listed] == expected


def test_queries_select_by_type_visitor_user_time_and_join(store: Store) -> None:
    store.write_user_events([
        row("a", "search", "2024-01-01T00:00:00Z", searchQuery="x"),
        row("a", "home-page-view", "2024-02-01T00:00:00Z", userInfo={"userId": "u1"}),
        row("b", "home-page-view", "2024-03-01T00:00:00Z", joined=False),
    ])
    feb = 1706745600 * SECOND

    def count(**terms: object) -> int:
        return store.count_user_events(EventQuery(CATALOG, **terms))  # type: ignore[arg-type]

    assert count(event_types=("home-page-view",)) == 2
    assert count(visitor_ids=("a",)) == 2
    assert count(user_ids=("u1",)) == 1
    assert count(after=TimeBound(feb, inclusive=True)) == 2
    assert count(after=TimeBound(feb, inclusive=False)) == 1
    assert count(before=TimeBound(feb, inclusive=False)) == 1
    assert count(before=TimeBound(feb, inclusive=True)) == 2
    assert count(visitor_ids=("a",), event_types=("search",)) == 1
    assert count(joined=True) == 2
    assert count(joined=False) == 1


def test_text_with_nul_is_stored_and_found(store: Store) -> None:
    store.write_user_events([row("nul\0visitor"), row("other")])
    assert store.count_user_events(EventQuery(CATALOG, visitor_ids=("nul\0visitor",))) == 1
    [(_, payload)] = store.list_user_events(EventQuery(CATALOG), limit=1)
    assert visitor(payload) == "nul\0visitor"  # the event itself is kept as sent


def test_listing_pages_by_id(store: Store) -> None:
    store.write_user_events([row(f"v{i}") for i in range(25)])
    seen: list[int] = []
    after = 0
    while page := store.list_user_events(EventQuery(CATALOG), limit=10, after_id=after):
        seen.extend(i for i, _ in page)
        after = page[-1][0]
    assert len(seen) == 25 == len(set(seen))
    assert seen == sorted(seen)


def test_scan_returns_the_event_as_received_beside_the_stored_one(store: Store) -> None:
    received = json_format.ParseDict({"eventType": "home-page-view", "visitorId": "s",
                                      "eventTime": "2024-01-01T00:00:00Z"},
                                     user_event_pb2.UserEvent())
    enriched = user_event_pb2.UserEvent()
    enriched.CopyFrom(received)
    enriched.attributes["joined"].text.append("yes")
    as_received = received.SerializeToString(deterministic=True)
    store.write_user_events([EventRow.from_event(CATALOG, enriched, True, as_received),
                             row("plain")])
    (_, payload, source), (_, _, plain_source) = store.scan_user_events(EventQuery(CATALOG), 10)
    assert user_event_pb2.UserEvent.FromString(payload) == enriched
    assert source is not None and user_event_pb2.UserEvent.FromString(source) == received
    assert plain_source is None


def _pages(read: Callable[[Any], list[Any]]) -> list[list[Any]]:
    """Every page of `read(after)`, from the start, each after the last of the one before."""
    pages: list[list[Any]] = []
    while page := read(pages[-1][-1][0] if pages else None):
        pages.append(page)
    return pages


def test_a_scan_bounded_by_bytes_ends_with_the_event_that_passes_them(store: Store) -> None:
    """Rejoin and export read a thousand events at once: of up to 2 MiB each, stored and
    received, gigabytes (h5: 20 events of 1.4 MB took a rejoin's server to 1.9 GB). With
    `max_bytes` a page ends with the event that passes them (as an import's batch ends
    with the line that passes its bytes), and the pages hold every event, in order."""
    sizes = [100_000] * 10 + [500_000] + [100_000] * 3  # (the 11th alone passes the bound)
    store.write_user_events([row(f"v{n:02d}", pageCategories=["x" * size])
                             for n, size in enumerate(sizes)])
    everything = store.scan_user_events(EventQuery(CATALOG), 100)
    pages = _pages(lambda after: store.scan_user_events(
        EventQuery(CATALOG), 100, after_id=after or 0, max_bytes=350_000))
    assert [len(page) for page in pages] == [4, 4, 3, 3]  # (the 4th, 8th, 11th pass it)
    assert [each for page in pages for each in page] == everything
    # the count still bounds a page; and a bound no page reaches changes nothing
    assert [len(page) for page in _pages(lambda after: store.scan_user_events(
        EventQuery(CATALOG), 3, after_id=after or 0, max_bytes=10**9))] == [3, 3, 3, 3, 2]
    assert store.scan_user_events(EventQuery(CATALOG, joined=False), 100,
                                  max_bytes=350_000) == []


def test_products_listed_by_bytes_end_with_the_product_that_passes_them(
        store: Store) -> None:
    for n in range(5):
        assert store.create_product(BRANCH, f"p{n}", bytes([n]) * 100_000)
    pages = _pages(lambda after: store.list_products(BRANCH, 100, after or "",
                                                     max_bytes=250_000))
    assert [[pid for pid, _ in page] for page in pages] == [["p0", "p1", "p2"], ["p3", "p4"]]
    assert [each for page in pages for each in page] == store.list_products(BRANCH, 100)
    assert [len(page) for page in _pages(lambda after: store.list_products(
        BRANCH, 2, after or "", max_bytes=10**9))] == [2, 2, 1]


def test_concurrent_writers_share_commits(store: Any) -> None:
    threads, per_thread = 32, 40
    start = threading.Barrier(threads)

    def writer(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            store.write_user_events([row(f"t{t}-{i}")])

    before = store.commits
    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert store.count_user_events(EventQuery(CATALOG)) == threads * per_thread
    # Group commit: many waiting writers ride on one transaction.
    assert store.commits - before < threads * per_thread


def test_on_commit_hears_each_committed_batch(store: Store) -> None:
    heard: list[list[Any]] = []
    store.on_commit(heard.append)
    store.write_user_events([row("a"), row("b")])
    store.create_client_event(ClientEventRow("projects/p/tenants/t", "e1", 1, b"one"))
    # The listener runs after a batch's callers are answered; the batch of a second
    # flush starts only once the first flush's batch was heard.
    store.flush()
    store.flush()
    jobs = [job for batch in heard for job in batch]
    assert [visitor(r.payload) for job in jobs if job.rows is not None for r in job.rows] \
        == ["a", "b"]
    assert (b"one", True) in [job.future.result() for job in jobs if job.rows is None]
    store.on_commit(None)
    store.flush()
    store.flush()
    before = len(heard)
    store.write_user_events([row("c")])
    store.flush()
    assert len(heard) == before


def test_on_commit_hears_a_batch_only_once_another_store_sees_it(
        stores: Callable[[], Any], shared_url: str) -> None:
    """The listener (footfall_events_stored_total's count) runs after the commit, never
    before: a process killed between the two leaves a batch stored and uncounted
    (README, Scaling out), never one counted and not stored."""
    writer, other = stores(), stores()
    seen: list[tuple[int, int]] = []  # (rows heard so far, rows the other store sees)
    heard = 0

    def listener(jobs: list[Any]) -> None:
        nonlocal heard
        heard += sum(len(job.rows) for job in jobs if job.rows is not None)
        seen.append((heard, other.count_user_events(EventQuery(CATALOG))))

    writer.on_commit(listener)
    for i in range(3):
        writer.write_user_events([row(f"a{i}"), row(f"b{i}")])
    writer.flush()  # (the listener runs after the callers are answered: heard by the
    writer.flush()  # second flush, as in test_on_commit_hears_each_committed_batch)
    writer.on_commit(None)
    assert seen and all(counted <= stored for counted, stored in seen), seen
    assert seen[-1] == (6, 6)


def test_client_events_are_unique_per_tenant(store: Store) -> None:
    first = ClientEventRow("projects/p/tenants/t", "e1", 1, b"one")
    assert store.create_client_event(first) == (b"one", True)
    assert store.create_client_event(ClientEventRow("projects/p/tenants/t", "e1", 2, b"two")) \
        == (b"one", False)
    assert store.create_client_event(ClientEventRow("projects/p/tenants/u", "e1", 2, b"two")) \
        == (b"two", True)


def test_a_failing_job_does_not_undo_its_batch(store: Any) -> None:
    def boom(conn: object) -> None:
        raise RuntimeError("job failed")

    failing = store._committer.submit_fn(boom)
    store.write_user_events([row("kept")])
    with pytest.raises(RuntimeError):
        failing.result()
    assert store.count_user_events(EventQuery(CATALOG)) == 1


def test_a_row_the_database_refuses_fails_alone_not_the_rest_of_its_batch(
        store: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A bug letting through a row the database refuses (a time past 64 bits here)
    loses that row's write only: the events acknowledged before their commit and the
    write waited for in the same batch are stored."""
    busy, free = threading.Event(), threading.Event()

    def hold(_db: Any) -> None:  # the writer is busy while the batch gathers
        busy.set()
        free.wait(10)

    committer = store._committer  # noqa: SLF001
    committer.submit(Job(fn=hold))
    assert busy.wait(10)
    store.write_user_events([row("early")], wait=False)
    store.write_user_events([replace(row("bad"), event_time_us=2**64)], wait=False)
    store.write_user_events([row("late")], wait=False)
    waited = committer.submit(Job(rows=[row("waited")]))
    free.set()
    assert waited.result(10) is None
    store.flush()
    stored = store.list_user_events(EventQuery(CATALOG), 10)
    assert sorted(visitor(payload) for _, payload in stored) == ["early", "late", "waited"]
    assert store.acknowledged_uncommitted == 0
    assert "1 events acknowledged before their commit were NOT stored" in caplog.text


def test_a_sqlite_batch_of_a_known_catalog_runs_no_statement_for_its_id(tmp_path: Path) -> None:
    """A catalog seen committed is known by its id: a durable write's batch runs its
    insert, its rollups and the transaction's two ends, nothing for the catalog nor
    to learn which rows are new when all are."""
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    try:
        store.write_user_events([row("first", "detail-page-view", productDetails=[
            {"product": {"id": "p1"}}])])
        ran: list[str] = []
        store._writer_conn.set_trace_callback(ran.append)  # noqa: SLF001
        store.write_user_events([row("second", "detail-page-view", productDetails=[
            {"product": {"id": "p1"}}])])
        store._writer_conn.set_trace_callback(None)  # noqa: SLF001
        assert [statement.split(" (")[0].split(" VALUES")[0] for statement in ran] == [
            "BEGIN IMMEDIATE", "INSERT OR IGNORE INTO user_events", "INSERT INTO product_days",
            "COMMIT"]
        assert store.count_user_events(EventQuery(CATALOG)) == 2
    finally:
        store.close()


def test_a_sqlite_store_keeps_the_ids_of_at_most_a_thousand_catalogs(tmp_path: Path) -> None:
    """A writer key (public in a shop's pages) can name catalogs without end, and the
    writer kept each one's id for good: each 60,000 catalogs more, of names of 180
    characters, grew a server by 18 MB (6 MB now, its caches). It keeps the latest
    1,000; one it let go is looked up again."""
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    try:
        catalogs = [f"projects/p/locations/l/catalogs/c{i}" for i in range(1_500)]
        for start in range(0, len(catalogs), 250):
            store.write_user_events([row(f"v{i}", catalog=catalogs[i])
                                     for i in range(start, start + 250)])
        assert len(store._catalog_ids) == 1_000  # noqa: SLF001
        store.write_user_events([row("again", catalog=catalogs[0])])  # (let go first)
        assert [visitor(p) for _, p in store.list_user_events(EventQuery(catalogs[0]), 10)] \
            == ["v0", "again"]
        assert len(store._catalog_ids) == 1_000  # noqa: SLF001
        assert store.count_user_events(EventQuery(catalogs[-1])) == 1
    finally:
        store.close()


def test_a_postgres_store_keeps_at_most_a_thousand_catalogs_written_and_read(
        postgres_url: str) -> None:
    """The writer kept each catalog it saw made, for good, and the reads each id they
    found (see ConsoleReads._planned_catalog_id): a writer key can name catalogs
    without end, and a reader key read each. It keeps the latest 1,000 of each."""
    store = open_store(postgres_url)
    try:
        catalogs = [f"projects/p/locations/l/catalogs/read-{i}" for i in range(1_200)]
        for start in range(0, len(catalogs), 300):
            store.write_user_events([row(f"v{i}", catalog=catalogs[i])
                                     for i in range(start, start + 300)])
        assert len(store._catalogs) == 1_000  # noqa: SLF001  (those the writer saw made)
        for catalog in catalogs:  # (as a watch catches up)
            assert len(store.user_events_after(EventQuery(catalog), 0, 1)) == 1
        assert len(store._known_catalog_ids) == 1_000  # noqa: SLF001
        assert [visitor(e.payload) for e in store.user_events_after(
            EventQuery(catalogs[0]), 0, 1)] == ["v0"]  # (let go first, looked up again)
    finally:
        store.close()


@pytest.mark.parametrize("undone", ["job", "batch"])
def test_a_catalog_added_in_what_is_rolled_back_is_not_taken_as_known(
        store: Any, undone: str) -> None:
    """The id a catalog was given in a job (or a whole batch) that was rolled back
    names no catalog: a later write of that catalog gives it one again, and its
    events are found under its name."""
    catalog = f"{CATALOG}-undone-{undone}"

    def insert_then_fail(db: Any) -> None:
        store._insert_events(db, [row("lost", catalog=catalog)])  # noqa: SLF001
        raise RuntimeError("the job failed after inserting")

    if undone == "job":
        with pytest.raises(RuntimeError):
            store._committer.submit_fn(insert_then_fail).result(10)  # noqa: SLF001
    else:
        with pytest.raises((OverflowError, TypeError)):  # (sqlite3's, orjson's)
            store.write_user_events([row("first", catalog=catalog),
                                     replace(row("bad", catalog=catalog), event_time_us=2**64)])
    store.write_user_events([row("other", catalog=f"{CATALOG}-other")])  # (could reuse the id)
    store.write_user_events([row("kept", catalog=catalog)])
    assert [visitor(payload) for _, payload in
            store.list_user_events(EventQuery(catalog), 10)] == ["kept"]
    assert [visitor(payload) for _, payload in
            store.list_user_events(EventQuery(f"{CATALOG}-other"), 10)] == ["other"]


def test_events_answered_before_their_commit_are_refused_past_a_bound(store: Any) -> None:
    """A writer held up (another connection's lock, a slow disk) no longer gathers
    pixels and write_async events without end, all lost to a kill -9: past
    MAX_UNCOMMITTED they are refused UNAVAILABLE until it catches up."""
    busy, free = threading.Event(), threading.Event()

    def hold(_db: Any) -> None:
        busy.set()
        free.wait(30)

    store._committer.submit(Job(fn=hold))  # noqa: SLF001
    assert busy.wait(10)
    store.write_user_events([row(f"v{i}") for i in range(MAX_UNCOMMITTED)], wait=False)
    for more in (lambda: store.write_user_events([row("over")], wait=False),
                 lambda: store.queue_joined(MadeBy(CATALOG, ["p"], lambda c, ids: {},
                                                 lambda products: row("joined")))):
        with pytest.raises(StoreUnavailable, match="more than 20,000 events wait"):
            more()
    assert store.acknowledged_uncommitted == MAX_UNCOMMITTED
    free.set()
    store.flush()
    store.write_user_events([row("after")], wait=False)  # taken again
    store.flush()
    assert store.count_user_events(EventQuery(CATALOG)) == MAX_UNCOMMITTED + 1


def test_events_answered_before_their_commit_are_refused_past_a_bound_of_bytes(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event may be 2 MiB: behind a lock, 20,000 of them (MAX_UNCOMMITTED) would
    hold 40 GB (400 write_async events of 1.8 MB took a server from 0.2 to 0.9 GB).
    Past MAX_UNCOMMITTED_BYTES of them they are refused as past MAX_UNCOMMITTED; an
    event of any size is taken when none waits."""
    monkeypatch.setattr(sql, "MAX_UNCOMMITTED_BYTES", 1024 * 1024)
    def big(n: int) -> EventRow:  # 300 KB
        return row(f"big-{n}", attributes={"a": {"text": ["t" * 1000] * 300}})

    busy, free = threading.Event(), threading.Event()

    def hold(_db: Any) -> None:
        busy.set()
        free.wait(30)

    store._committer.submit(Job(fn=hold))  # noqa: SLF001
    assert busy.wait(10)
    for n in range(3):
        store.write_user_events([big(n)], wait=False)
    for more in (lambda: store.write_user_events([big(3)], wait=False),
                 lambda: store.queue_joined(MadeBy(CATALOG, ["p"], lambda c, ids: {},
                                                 lambda products: big(4), size=300_000))):
        with pytest.raises(StoreUnavailable, match="more than 1 MiB of events wait"):
            more()
    assert store.acknowledged_uncommitted == 3
    free.set()
    store.flush()
    huge = row("huge", attributes={"a": {"text": ["t" * 1000] * 2000}})  # 2 MB
    store.write_user_events([huge], wait=False)  # alone, taken whatever its size
    store.flush()
    assert store.count_user_events(EventQuery(CATALOG)) == 4


def test_async_writes_are_flushed_by_flush_and_close(shared_url: str) -> None:
    store = open_store(shared_url)
    store.write_user_events([row("sync")])
    for i in range(10):
        store.write_user_events([row(f"flushed-{i}")], wait=False)
    store.flush()
    assert store.count_user_events(EventQuery(CATALOG)) == 11
    for i in range(500):
        store.write_user_events([row(f"async-{i}")], wait=False)
    store.close()
    store.close()  # idempotent
    reopened = open_store(shared_url)
    try:
        assert reopened.count_user_events(EventQuery(CATALOG)) == 511
    finally:
        reopened.close()


def test_a_second_store_on_the_same_database_sees_every_write(
        shared_url: str, stores: Callable[[], Any]) -> None:
    one, two = stores(), stores()
    one.write_user_events([row("from-one")])
    two.write_user_events([row("from-one"), row("from-two")])  # the first is a duplicate
    assert one.count_user_events(EventQuery(CATALOG)) == 2
    assert two.create_client_event(ClientEventRow("projects/p/tenants/t", "e", 1, b"x"))[1]
    assert one.create_client_event(ClientEventRow("projects/p/tenants/t", "e", 1, b"y")) \
        == (b"x", False)


def test_sqlite_writers_of_several_processes_take_turns_by_the_lock_beside_the_file(
        tmp_path: Path) -> None:
    # Another process's writer in its turn holds the flock on events.db-lock: a
    # write waits for it (not for SQLite's sleeps between tries of its own lock).
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    other = os.open(tmp_path / "events.db-lock", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        thread, out = in_background(lambda: store.write_user_events([row("a")]))
        assert poll(lambda: waiting_for_the_turn(tmp_path / "events.db-lock"))
        assert thread.is_alive() and store.count_user_events(EventQuery(CATALOG)) == 0
        fcntl.flock(other, fcntl.LOCK_UN)
        thread.join(10)
        assert out == [None] and store.count_user_events(EventQuery(CATALOG)) == 1
        store.close()  # ... and lets go of the file, the waiting thread's open too
        assert opens_of(tmp_path / "events.db-lock") == 1  # the test's own
    finally:
        os.close(other)
        store.close()


def test_a_sqlite_writer_waits_for_a_stopped_process_no_longer_than_its_turn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    # A process that holds the turn and never lets go (stopped by SIGSTOP, say):
    # the write goes on to SQLite's own lock after TURN_SECONDS, and is stored.
    monkeypatch.setattr(sqlite, "TURN_SECONDS", 0.2)
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    other = os.open(tmp_path / "events.db-lock", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        store.write_user_events([row("a")])
        assert store.count_user_events(EventQuery(CATALOG)) == 1
        assert "held the writers' turn for 0.2 s" in caplog.text
        # ... and closing the store ends such a wait at once.
        monkeypatch.setattr(sqlite, "TURN_SECONDS", 60.0)
        thread, out = in_background(lambda: store.write_user_events([row("b")]))
        assert poll(lambda: waiting_for_the_turn(tmp_path / "events.db-lock"))
        closing, _ = in_background(store.close)
        closing.join(10)
        thread.join(10)
        assert not closing.is_alive() and out == [None]
    finally:
        os.close(other)
        store.close()


def test_the_sqlite_writers_lock_is_as_open_as_the_database(tmp_path: Path) -> None:
    # Another user allowed to write the database (a group, say) can take the turn.
    open_store(f"sqlite:///{tmp_path}/events.db").close()
    os.chmod(tmp_path / "events.db", 0o660)
    (tmp_path / "events.db-lock").unlink()
    open_store(f"sqlite:///{tmp_path}/events.db").close()
    assert (tmp_path / "events.db-lock").stat().st_mode & 0o777 == 0o660


def test_a_sqlite_purge_step_gives_way_to_another_processs_waiting_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A purge's step of one process holds the writers' turn (the flock beside the
    # file): once a write of another process waits for it, the step ends after the
    # chunk it is deleting, as it does for a write of its own process, and the write
    # commits before the purge's next step; nothing is lost. (Before, the step saw
    # only its own process's queue and deleted its whole batch while the other
    # waited.) Two stores of this process stand for the two: each takes the turn,
    # and says it waits for it, through opens of the file of its own.
    monkeypatch.setattr(sql, "DELETE_CHUNK", 2)
    url, lock_file = f"sqlite:///{tmp_path}/events.db", tmp_path / "events.db-lock"
    purging, writing = open_store(url), open_store(url)
    try:
        purging.write_user_events([row(f"v{i}") for i in range(10)])
        ids = sorted(i for i, _ in purging.list_user_events(EventQuery(CATALOG), 20))
        purging.create_operation(operation("purge"))
        purging.claim_operation("w1", SECOND, 30 * SECOND, never)
        late: list[tuple[threading.Thread, list[Any]]] = []

        def hold() -> None:  # in the first chunk's DELETE, the step holding the turn
            if not late:
                late.append(in_background(lambda: writing.write_user_events([row("late")])))
                until(lambda: waiting_for_the_turn(lock_file), "the write to wait its turn")

        def arm(conn: Any) -> None:
            conn.create_function("hold_step", 0, hold)
            conn.execute("CREATE TEMP TRIGGER hold AFTER DELETE ON user_events "
                         "BEGIN SELECT hold_step(); END")

        purging._committer.submit_fn(arm).result(10)  # noqa: SLF001
        seen: list[StepResult] = []
        step = Step(delete_events=EventQuery(CATALOG), delete_after_id=ids[0] - 1,
                    delete_until_id=ids[-1], delete_limit=10)
        first = purging.run_step(OPS + "purge", "w1", step, 30 * SECOND, step_progress(seen))
        assert (first.deleted, first.deleted_through) == (2, ids[1])
        ((thread, out),) = late
        thread.join(10)
        assert out == [None]
        assert sorted(visitor(payload) for _, payload in purging.list_user_events(
            EventQuery(CATALOG), 20)) == ["late"] + [f"v{i}" for i in range(2, 10)]
        rest = purging.run_step(OPS + "purge", "w1", replace(step, delete_after_id=ids[1]),
                                30 * SECOND, step_progress(seen))
        assert (rest.deleted, rest.deleted_through) == (8, ids[-1])  # none waits: the rest
        assert [visitor(payload) for _, payload in
                writing.list_user_events(EventQuery(CATALOG), 20)] == ["late"]
    finally:
        purging.close()
        writing.close()


def test_a_sqlite_job_alone_runs_without_a_savepoint_and_fails_whole(
        tmp_path: Path) -> None:
    # A purge's step is its transaction's only job: it runs without the savepoint that
    # keeps a job's failure from undoing the others of its batch (under one SQLite
    # copies every page the job changes into a statement journal: for a purge of 500k
    # events 130 MB written to temporary files). A job alone that fails still leaves
    # nothing behind, and the store writes on.
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    try:
        store.write_user_events([row(f"v{i}") for i in range(10)])
        ids = sorted(i for i, _ in store.list_user_events(EventQuery(CATALOG), 20))
        store.create_operation(operation("purge"))
        store.claim_operation("w1", SECOND, 30 * SECOND, never)
        said: list[str] = []
        store._committer.submit_fn(  # noqa: SLF001
            lambda conn: conn.set_trace_callback(said.append)).result(10)
        step = Step(delete_events=EventQuery(CATALOG), delete_after_id=ids[0] - 1,
                    delete_until_id=ids[-1] - 5, delete_limit=10)
        result = store.run_step(OPS + "purge", "w1", step, 30 * SECOND, step_progress([]))
        assert (result.deleted, result.deleted_through) == (5, ids[-1] - 5)
        assert any(statement.startswith("DELETE FROM user_events") for statement in said)
        assert not [statement for statement in said if "SAVEPOINT" in statement.upper()]

        def fail(conn: Any) -> None:
            conn.execute("DELETE FROM user_events")
            raise RuntimeError("the job fails after its DELETE")

        with pytest.raises(RuntimeError, match="after its DELETE"):
            store._committer.submit_fn(fail).result(10)  # noqa: SLF001
        assert store.count_user_events(EventQuery(CATALOG)) == 5
        store.write_user_events([row("after")])
        assert store.count_user_events(EventQuery(CATALOG)) == 6
    finally:
        store.close()


WAIT_FOR_THE_TURN = """
import sys
from footfall.retail.v2 import user_event_pb2
from server.store import EventRow, open_store
event = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id="killed")
event.event_time.FromJsonString("2024-01-01T00:00:00Z")
open_store(sys.argv[1]).write_user_events([EventRow.from_event(sys.argv[2], event, joined=True)])
"""


def test_a_process_killed_while_its_write_waited_for_the_turn_leaves_no_wait_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What says a writer waits for the turn (a lock of the open file) goes with its
    # process, even by kill -9: steps do not give way for ever to a write that no
    # longer waits.
    monkeypatch.setattr(sql, "DELETE_CHUNK", 2)
    url, lock_file = f"sqlite:///{tmp_path}/events.db", tmp_path / "events.db-lock"
    store = open_store(url)
    other = os.open(lock_file, os.O_RDWR)
    child: subprocess.Popen[bytes] | None = None
    try:
        store.write_user_events([row(f"v{i}") for i in range(10)])
        ids = sorted(i for i, _ in store.list_user_events(EventQuery(CATALOG), 20))
        fcntl.flock(other, fcntl.LOCK_EX)  # the turn, held
        child = subprocess.Popen([sys.executable, "-c", WAIT_FOR_THE_TURN, url, CATALOG])
        assert poll(lambda: waiting_for_the_turn(lock_file) or child.poll() is not None)
        assert child.poll() is None and store._writers.others_wait()  # noqa: SLF001
        child.kill()
        child.wait(10)
        assert not store._writers.others_wait()  # noqa: SLF001
        fcntl.flock(other, fcntl.LOCK_UN)
        store.create_operation(operation("purge"))
        store.claim_operation("w1", SECOND, 30 * SECOND, never)
        result = store.run_step(OPS + "purge", "w1", Step(
            delete_events=EventQuery(CATALOG), delete_after_id=ids[0] - 1,
            delete_until_id=ids[-1], delete_limit=10), 30 * SECOND, step_progress([]))
        assert (result.deleted, result.deleted_through) == (10, ids[-1])
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait(10)
        os.close(other)
        store.close()


def waiting_for_the_turn(lock_file: Path) -> bool:
    """Whether a process waits for the flock of `lock_file` (/proc/locks: `->`)."""
    inode = lock_file.stat().st_ino
    return any(line.split()[1] == "->" and line.split()[-3].endswith(f":{inode}")
               for line in Path("/proc/locks").read_text().splitlines())


def opens_of(path: Path) -> int:
    """How many file descriptors of this process are open on `path`."""
    return sum(os.readlink(fd) == str(path) for fd in Path("/proc/self/fd").iterdir()
               if fd.is_symlink() and fd.exists())


def poll(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether `condition` holds within `seconds` (asked every 10 ms)."""
    pause = threading.Event()
    for _ in range(int(seconds * 100)):
        if condition():
            return True
        pause.wait(0.01)
    return condition()


def test_the_store_is_healthy(store: Store) -> None:
    assert store.healthy()


# -- products ----------------------------------------------------------------------


def test_products_create_get_list_update_delete(store: Store) -> None:
    assert store.create_product(BRANCH, "b", b"B")
    assert store.create_product(BRANCH, "a", b"A")
    assert not store.create_product(BRANCH, "a", b"other")  # exists: left as it was
    assert store.create_product(f"{CATALOG}/branches/1", "a", b"A1")
    assert store.get_products(BRANCH, ["a", "missing", "a"]) == {"a": b"A"}
    assert store.get_products(BRANCH, []) == {}
    assert store.list_products(BRANCH, 10) == [("a", b"A"), ("b", b"B")]
    assert store.list_products(BRANCH, 1, after_id="a") == [("b", b"B")]

    assert store.update_product(BRANCH, "a", lambda current: (current or b"") + b"+") == b"A+"
    assert store.update_product(BRANCH, "a", lambda current: None) == b"A+"  # unchanged
    assert store.update_product(BRANCH, "new", lambda current: b"N" if current is None
                                else b"bad") == b"N"  # an upsert
    assert store.update_product(BRANCH, "none", lambda current: None) is None
    assert store.get_products(BRANCH, ["a", "new", "none"]) == {"a": b"A+", "new": b"N"}

    assert store.delete_product(BRANCH, "a")
    assert not store.delete_product(BRANCH, "a")
    assert [pid for pid, _ in store.list_products(BRANCH, 10)] == ["b", "new"]


def test_products_page_in_byte_order(store: Store) -> None:
    ids = ["B", "a", "_x", "Z-9", "é", "a0", "0"]
    for product_id in ids:
        store.create_product(BRANCH, product_id, product_id.encode())
    assert [pid for pid, _ in store.list_products(BRANCH, 100)] == \
        sorted(ids, key=lambda s: s.encode())


def test_concurrent_updates_of_one_product_lose_nothing(store: Store) -> None:
    store.create_product(BRANCH, "counter", b"0")

    def increment() -> None:
        for _ in range(20):
            store.update_product(BRANCH, "counter",
                                 lambda current: str(int(current or b"0") + 1).encode())

    threads = [threading.Thread(target=increment) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get_products(BRANCH, ["counter"]) == {"counter": b"100"}


def test_product_checks_see_the_branch_and_abort_their_write(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("server.store.sql.PRODUCT_SCAN_BATCH", 2)
    for pid in ("a", "b", "c", "d", "e"):
        store.create_product(BRANCH, pid, f"names x{pid}".encode() if pid != "c" else b"-")
    store.create_product(f"{CATALOG}/branches/1", "z", b"names xz")
    seen: dict[str, object] = {}

    def look(payload: bytes, products: Any) -> None:
        seen["payload"] = payload
        seen["get"] = products.get(["b", "missing", "b"])
        seen["containing"] = [pid for pid, _ in products.containing("names x")]
        raise ValueError("refused")

    with pytest.raises(ValueError):
        store.create_product(BRANCH, "new", b"N", look)
    assert seen == {"payload": b"N", "get": {"b": b"names xb"},
                    "containing": ["a", "b", "d", "e"]}  # by id, in batches, this branch only
    with pytest.raises(ValueError):
        store.update_product(BRANCH, "a", lambda current: b"A2", look)
    assert seen["payload"] == b"A2"
    with pytest.raises(ValueError):
        store.delete_product(BRANCH, "b", look)
    assert seen["payload"] == b"names xb"
    # Nothing was written by a refused check.
    assert store.get_products(BRANCH, ["new", "a", "b"]) == {"a": b"names xa", "b": b"names xb"}
    assert not store.delete_product(BRANCH, "missing", look)  # no product: no check


def primary_must_exist(payload: bytes, products: Any) -> None:
    """A variant's check: the product its payload names must exist."""
    primary = payload.decode().rpartition(" ")[2]
    if primary not in products.get([primary]):
        raise LookupError(f"no primary {primary}")


def nothing_may_name_it(product_id: str) -> Callable[[bytes, Any], None]:
    def check(_payload: bytes, products: Any) -> None:
        named_by = [pid for pid, _ in products.containing(f"of {product_id}")]
        if named_by:
            raise LookupError(f"{product_id} is named by {named_by}")

    return check


@pytest.fixture(params=["same store", "another replica"])
def other_writer(request: pytest.FixtureRequest, store: Store,
                 stores: Callable[[], Any]) -> Store:
    """Who makes the conflicting write: this store (another caller), or a second store
    on the same database (another replica)."""
    if request.param == "same store":
        return store
    request.getfixturevalue("shared_url")
    opened: Store = stores()
    return opened


# How long a check gives a conflicting write to slip in.
SLIP_IN_SECONDS = 0.5


def test_a_variant_cannot_slip_in_while_its_primary_is_deleted(
        store: Store, other_writer: Store) -> None:
    store.create_product(BRANCH, "P", b"primary")
    late: list[tuple[threading.Thread, list[object]]] = []

    def check_then_let_a_variant_try(payload: bytes, products: Any) -> None:
        nothing_may_name_it("P")(payload, products)
        if not late:  # nothing names P now; a variant of P tries to get in before the delete
            late.append(in_background(lambda: other_writer.create_product(
                BRANCH, "V", b"variant of P", primary_must_exist)))
            late[0][0].join(SLIP_IN_SECONDS)

    try:
        deleted: object = store.delete_product(BRANCH, "P", check_then_let_a_variant_try)
    except LookupError as exc:
        deleted = exc
    thread, out = late[0]
    thread.join(30)
    stored = set(store.get_products(BRANCH, ["P", "V"]))
    # One of the two won; never both (a variant without its primary).
    if deleted is True:
        assert isinstance(out[0], LookupError) and stored == set()
    else:
        assert isinstance(deleted, LookupError) and out == [True] and stored == {"P", "V"}


def test_a_primary_deleted_between_a_variants_read_check_and_its_write_refuses_it(
        store: Store, other_writer: Store) -> None:
    """A create checks on a read first (its scans of the branch must not hold up the
    writer, and every event write behind it), then again in its transaction only if the
    branch changed since: a delete slipping in between is seen there."""
    store.create_product(BRANCH, "P", b"primary")
    calls: list[tuple[threading.Thread, list[object]]] = []

    def check_then_let_a_delete_in(payload: bytes, products: Any) -> None:
        primary_must_exist(payload, products)
        if not calls:  # on the read: nothing is locked, the delete goes through
            calls.append(in_background(lambda: other_writer.delete_product(
                BRANCH, "P", nothing_may_name_it("P"))))
            calls[0][0].join(30)

    with pytest.raises(LookupError):  # checked again, in its transaction
        store.create_product(BRANCH, "V", b"variant of P", check_then_let_a_delete_in)
    assert calls[0][1] == [True]  # the delete was made
    assert store.get_products(BRANCH, ["P", "V"]) == {}  # never a variant without primary


def test_a_primary_cannot_be_deleted_while_a_variant_of_it_is_created(
        store: Store, other_writer: Store) -> None:
    store.create_product(BRANCH, "P", b"primary")
    late: list[tuple[threading.Thread, list[object]]] = []
    checks: list[int] = []

    def check_then_let_a_delete_try(payload: bytes, products: Any) -> None:
        primary_must_exist(payload, products)
        checks.append(1)
        if len(checks) == 1:  # on the read: another write, so the transaction checks again
            other_writer.create_product(BRANCH, "other", b"unrelated")
            return
        late.append(in_background(lambda: other_writer.delete_product(
            BRANCH, "P", nothing_may_name_it("P"))))
        late[0][0].join(SLIP_IN_SECONDS)
        assert late[0][0].is_alive(), "a write slipped in between a check and its write"

    assert store.create_product(BRANCH, "V", b"variant of P", check_then_let_a_delete_try)
    assert len(checks) == 2
    thread, out = late[0]
    thread.join(30)
    assert isinstance(out[0], LookupError)  # the delete's check saw the variant
    assert set(store.get_products(BRANCH, ["P", "V"])) == {"P", "V"}


def test_a_delete_checks_on_a_read_and_again_only_after_a_change(store: Store) -> None:
    calls: list[int] = []

    def counted(meanwhile: Callable[[], object] | None = None) -> Callable[[bytes, Any], None]:
        def check(_payload: bytes, _products: Any) -> None:
            calls.append(1)
            if meanwhile is not None and len(calls) == 1:
                # Off the writer (a check inside its transaction would wait forever here).
                thread, out = in_background(meanwhile)
                thread.join(10)
                assert out and not isinstance(out[0], Exception)

        return check

    store.create_product(BRANCH, "P", b"primary")
    assert store.delete_product(BRANCH, "P", counted())
    assert calls == [1]  # the writer did not scan the branch again
    for meanwhile, checks in ((lambda: store.write_user_events([row("a")]), [1]),
                              (lambda: store.create_product(BRANCH, "Q", b"q"), [1, 1])):
        calls.clear()
        store.create_product(BRANCH, "P", b"primary")
        assert store.delete_product(BRANCH, "P", counted(meanwhile))
        assert calls == checks  # checked again inside only when a product changed


# -- operations --------------------------------------------------------------------


def operation(name: str, created_s: int = 1, done: bool = False) -> OperationRecord:
    return OperationRecord(name=OPS + name, kind="kind", done=done,
                           create_time_us=created_s * SECOND, request=b"request " + name.encode(),
                           operation=b"op " + name.encode())


def never(_holder: str) -> bool:
    return False


def test_operations_create_get_list_delete(store: Store) -> None:
    for i, name in enumerate(["b", "a", "c"]):
        store.create_operation(operation(name, created_s=10 if name != "c" else 5, done=i == 1))
    store.create_operation(OperationRecord(
        name="projects/other/locations/global/catalogs/x/operations/z", kind="kind", done=False,
        create_time_us=0, request=b"", operation=b""))
    got = store.get_operation(OPS + "a")
    assert got == OperationRecord(name=OPS + "a", kind="kind", done=True,
                                  create_time_us=10 * SECOND, request=b"request a",
                                  operation=b"op a")
    assert store.get_operation(OPS + "nope") is None

    names = [r.name.rsplit("/", 1)[1] for r in store.list_operations(CATALOG + "/", None, 10)]
    assert names == ["c", "a", "b"]  # oldest first, then by name
    assert [r.name for r in store.list_operations("projects/", None, 10)][0].startswith(
        "projects/other/")
    assert [r.name[-1] for r in store.list_operations(CATALOG + "/", True, 10)] == ["a"]
    assert [r.name[-1] for r in store.list_operations(CATALOG + "/", False, 10)] == ["c", "b"]
    first = store.list_operations(CATALOG + "/", None, 1)
    rest = store.list_operations(CATALOG + "/", None, 10,
                                 after=(first[0].create_time_us, first[0].name))
    assert [r.name[-1] for r in first + rest] == ["c", "a", "b"]
    assert store.list_operations(CATALOG + "_", None, 10) == []  # a prefix, not a pattern

    assert store.delete_operation(OPS + "a")
    assert not store.delete_operation(OPS + "a")
    assert store.get_operation(OPS + "a") is None


def test_an_operation_name_is_taken_once(store: Store) -> None:
    """What lets replicas agree on one scheduled job: the second insert of a name
    stores nothing and says so."""
    assert store.create_operation(operation("once", created_s=10))
    assert not store.create_operation(operation("once", created_s=99, done=True))
    stored = store.get_operation(OPS + "once")
    assert stored is not None and (stored.create_time_us, stored.done) == (10 * SECOND, False)


def test_catalogs_with_events_before_a_time(store: Store) -> None:
    store.write_user_events([
        row("a", time="2024-01-01T00:00:00Z"),
        row("b", time="2024-03-01T00:00:00Z"),
        row("c", time="2024-03-01T00:00:00Z", catalog=CATALOG + "2"),
        row("d", time="2023-06-01T00:00:00Z", catalog=CATALOG + "3"),
    ])
    february = 1_706_745_600 * SECOND  # 2024-02-01T00:00:00Z
    assert store.catalogs_with_events_before(february) == [CATALOG, CATALOG + "3"]
    assert store.catalogs_with_events_before(february + 31 * 86_400 * SECOND) == [
        CATALOG, CATALOG + "2", CATALOG + "3"]
    assert store.catalogs_with_events_before(0) == []


def test_a_read_only_store_reads_and_writes_nothing(shared_url: str,
                                                     stores: Callable[[], Any]) -> None:
    writer = stores()
    writer.write_user_events([row("a"), row("b")])
    writer.create_operation(operation("kept"))
    reader = open_store(shared_url, read_only=True)
    try:
        assert reader.count_user_events(EventQuery(CATALOG)) == 2
        assert [r.name for r in reader.list_operations(OPS, None, 10)] == [OPS + "kept"]
        with pytest.raises(Exception):  # noqa: B017 - the database itself refuses
            reader.create_operation(operation("refused"))
    finally:
        reader.close()
    assert writer.get_operation(OPS + "refused") is None


def test_read_only_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no store at .*missing.db"):
        open_store(f"sqlite:///{tmp_path}/folder/missing.db", read_only=True)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its folder was created
    (tmp_path / "notes.txt").write_text("not a database, but long enough to be read " * 40)
    # said as `serve` says it
    with pytest.raises(ValueError, match="notes.txt is not a SQLite database .it does not "
                                         "start with the SQLite header"):
        open_store(f"sqlite:///{tmp_path}/notes.txt", read_only=True)
    (tmp_path / "folder.db").mkdir()
    with pytest.raises(ValueError, match="folder.db is a directory, not a database file"):
        open_store(f"sqlite:///{tmp_path}/folder.db", read_only=True)
    import sqlite3

    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ValueError, match="is not a Footfall store"):
        open_store(f"sqlite:///{tmp_path}/other.db", read_only=True)
    # A store whose schema page is damaged (its header intact) is said to be damaged,
    # as `serve` says it, not "not a Footfall store": `events list` and `backup` then
    # told its owner to name another store.
    open_store(f"sqlite:///{tmp_path}/damaged.db").close()
    with open(tmp_path / "damaged.db", "r+b") as file:
        file.seek(100)  # past the 100-byte header: the schema table's b-tree page
        file.write(b"\xee" * 300)
    with pytest.raises(ValueError, match=r"damaged.db is damaged: database disk image is "
                                         r"malformed$"):
        open_store(f"sqlite:///{tmp_path}/damaged.db", read_only=True)
    with pytest.raises(ValueError, match="memory:// store lives inside the server"):
        open_store("memory://", read_only=True)
    open_store(f"sqlite:///{tmp_path}/old.db").close()
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as if the last migration were new
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (MIGRATIONS[-1][0],))
    with pytest.raises(ValueError, match="older schema .* start `footfall serve` on it"):
        open_store(f"sqlite:///{tmp_path}/old.db", read_only=True)


@pytest.mark.parametrize(("path", "url"), [("/srv/shop/copy.db", "sqlite:////srv/shop/copy.db"),
                                         ("data/copy.db", "sqlite:///data/copy.db")])
def test_a_path_where_a_store_url_belongs_is_told_its_url(path: str, url: str) -> None:
    # every command's --store takes a path (store_url_of, at the command line); one
    # given to open_store in code was told only "use sqlite:///PATH", which reads as 3 slashes
    with pytest.raises(ValueError, match="unknown store URL") as told:
        open_store(path)
    assert f"{url} for that path" in str(told.value)


@pytest.mark.parametrize("url", ["postgress://me:s3cret@db.internal/footfall",
                                 "mysql://me:s3cret@db.internal/shop",
                                 "https://me:s3cret@footfall.internal:8080"])
@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_url_refused_says_no_password(url: str, read_only: bool) -> None:
    # A scheme mistyped (postgress://) was refused quoting its password, in a line
    # logged at ERROR; as USER:PASSWORD@HOST:PORT/DB is, it is said as ***.
    with pytest.raises(ValueError, match="unknown store URL") as told:
        open_store(url, read_only=read_only)
    assert "s3cret" not in str(told.value) and "me:***@" in str(told.value), told.value


@pytest.mark.parametrize("url", ["host=db.internal user=me password=s3cret dbname=shop",
                                 "dbname=shop password = 's3cret and more'",
                                 "postgresql://me@db.internal/shop?sslmode=require&password=s3cret",
                                 # (a key's passphrase, for sslkey; the first keyword made
                                 # a SQLite file of that name)
                                 "host=db.internal sslpassword=s3cret dbname=shop",
                                 "sslpassword='s3cret and more' host=db.internal dbname=shop",
                                 "postgresql://me@db.internal/shop?sslpassword=s3cret&x=1"])
def test_a_password_of_a_keyword_value_store_url_is_never_said(url: str) -> None:
    # libpq's keyword/value connection string (psycopg takes it too) given to --store
    # is a path by its look: it was quoted whole, twice, its password with it.
    assert "s3cret" not in redacted(url) and "password=***" in redacted(url).replace(" ", "")
    if not url.startswith("postgresql:"):
        # ... nor taken for a SQLite file's path at the command line (a file of that
        # name was made and served on, empty, its name in the start line)
        assert store_url_of(url) == url
        with pytest.raises(ValueError, match="unknown store URL") as told:
            open_store(url)
        assert "s3cret" not in str(told.value), told.value
        assert "KEY=VALUE connection string" in str(told.value), told.value
        assert "sqlite:///" not in str(told.value), told.value


@pytest.mark.parametrize(("url", "shown"), [
    # a password's `/`, `?`, `#` or `@` unencoded: what followed it was shown (urlparse
    # ends the host's part at the first of `/?#`)
    ("postgresql://me:s3/cret@db.internal/shop", "postgresql://me:***@db.internal/shop"),
    ("postgresql://me:s3?cret@db.internal/shop", "postgresql://me:***@db.internal/shop"),
    ("postgresql://me:s3#cret@db.internal/shop", "postgresql://me:***@db.internal/shop"),
    ("postgresql://me:s3@cret@db.internal:5432/shop?sslmode=require",
     "postgresql://me:***@db.internal:5432/shop?sslmode=require"),
    ("postgresql://me:2024/s3cret@db.internal/shop", "postgresql://me:***@db.internal/shop"),
    ("postgresql://me:s3/c?r#et@db.internal/shop?user=a@b",
     "postgresql://me:***@db.internal/shop?user=a@b"),
    ("postgres://:s3cret@[::1]:5432/shop", "postgres://:***@[::1]:5432/shop"),
    # sslpassword= (the passphrase of sslkey), a parameter's value to its `&`, its
    # name percent-encoded too (libpq decodes it)
    ("postgresql://me@db.internal/shop?sslpassword=s3cret",
     "postgresql://me@db.internal/shop?sslpassword=***"),
    ("postgresql://me@db.internal/shop?sslmode=require&sslpassword=s3#cret&application_name=a",
     "postgresql://me@db.internal/shop?sslmode=require&sslpassword=***&application_name=a"),
    ("postgresql://me@db.internal/shop?password=s3#cret", "postgresql://me@db.internal/shop?password=***"),
    ("postgresql://me@db.internal/shop?pass%77ord=s3cret",
     "postgresql://me@db.internal/shop?pass%77ord=***"),
    ("host=db.internal sslpassword=s3cret dbname=shop",
     "host=db.internal sslpassword=*** dbname=shop"),
    # no password: as it is
    ("postgresql://db.internal:5432/shop?user=me@corp", "postgresql://db.internal:5432/shop?user=me@corp"),
    ("postgresql://me@h1:5432,h2:5433/shop", "postgresql://me@h1:5432,h2:5433/shop"),
    ("postgresql://[::1]:5432/shop?user=a@b", "postgresql://[::1]:5432/shop?user=a@b"),
    ("sqlite:///./data/footfall.db?synchronous=normal", "sqlite:///./data/footfall.db?synchronous=normal"),
])
def test_every_password_of_a_store_url_is_hidden(url: str, shown: str) -> None:
    assert redacted(url) == shown
    if not url.startswith("sqlite:"):  # (the start line's form; a SQLite path made absolute)
        assert located(url) == shown


def test_a_store_url_refused_hides_a_password_with_a_slash() -> None:
    # (a mistyped scheme's refusal quotes the URL, and is logged at ERROR)
    with pytest.raises(ValueError, match="unknown store URL") as told:
        open_store("postgress://me:s3/cr?et@db.internal/footfall")
    assert "s3" not in str(told.value) and "me:***@db.internal" in str(told.value), told.value


@pytest.mark.parametrize(("given", "url"), [
    ("copy.db", "sqlite:///copy.db"), ("./data/copy.db", "sqlite:///./data/copy.db"),
    ("/srv/shop/copy.db", "sqlite:////srv/shop/copy.db"),
    ("backup:monday.db", "sqlite:///backup:monday.db"),  # (no store's scheme: a file's name)
    # (a folder named as a server's address, the file in it named as a SQLite file is)
    ("10:30/footfall.db", "sqlite:///10:30/footfall.db"),
    ("run-2024-06-01T10:30/events.SQLite3", "sqlite:///run-2024-06-01T10:30/events.SQLite3"),
    ("localhost:5432/footfall", "localhost:5432/footfall"),  # (an address: open_store says so)
    ("u@db:5432/shop.dbs", "u@db:5432/shop.dbs"),
    ("sqlite:///copy.db", "sqlite:///copy.db"), ("sqlite:/copy.db", "sqlite:/copy.db"),
    ("memory://", "memory://"), ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("mysql://h/db", "mysql://h/db")])
def test_copy_and_backup_read_a_path_as_the_sqlite_file_there(given: str, url: str) -> None:
    # (a URL is left for open_store to take or refuse: sqlite:/copy.db and mysql:// are
    # refused there, saying how a store is named)
    assert store_url_of(given) == url


def test_cancel_marks_running_operations_only(store: Store) -> None:
    store.create_operation(operation("running"))
    store.create_operation(operation("finished", done=True))
    running = store.request_cancel(OPS + "running")
    assert running is not None and running.cancel_requested
    finished = store.request_cancel(OPS + "finished")
    assert finished is not None and not finished.cancel_requested
    assert store.request_cancel(OPS + "missing") is None


def test_claim_takes_the_oldest_free_operation_and_leases_it(store: Store) -> None:
    store.create_operation(operation("new", created_s=2))
    store.create_operation(operation("old", created_s=1))
    store.create_operation(operation("done", created_s=0, done=True))
    now = 100 * SECOND
    first = store.claim_operation("w1", now, 30 * SECOND, never)
    assert first is not None and first.name == OPS + "old" and first.request == b"request old"
    held = store.get_operation(OPS + "old")
    assert held is not None
    assert (held.lease_owner, held.lease_expires_us) == ("w1", now + 30 * SECOND)

    second = store.claim_operation("w2", now, 30 * SECOND, never)
    assert second is not None and second.name == OPS + "new"
    assert store.claim_operation("w3", now, 30 * SECOND, never) is None  # all held
    # The holder itself may claim its own again (e.g. after a paused run).
    again = store.claim_operation("w1", now, 30 * SECOND, never)
    assert again is not None and again.name == OPS + "old"


def test_claim_takes_the_projects_in_turn(store: Store) -> None:
    """Oldest first whatever their project, 40 imports one project's admin queued
    kept another project's purge waiting behind all of them: a project's n-th
    operation not done comes before any project's (n+1)-th."""
    def of(project: str, name: str, created_s: int) -> OperationRecord:
        return OperationRecord(
            name=f"projects/{project}/locations/global/catalogs/c/operations/{name}",
            kind="kind", done=False, create_time_us=created_s * SECOND, request=b"",
            operation=b"")

    for n in range(1, 6):
        store.create_operation(of("busy", f"import-{n}", n))
    store.create_operation(of("quiet", "purge", 10))
    now = 100 * SECOND
    claimed = [store.claim_operation(f"w{n}", now, 30 * SECOND, never) for n in range(4)]
    assert [c.name.split("/")[1] + "/" + c.name.rpartition("/")[2] for c in claimed
            if c is not None] == ["busy/import-1", "quiet/purge", "busy/import-2",
                                  "busy/import-3"]


def test_claim_takes_over_an_expired_lease_or_a_dead_holder(store: Store) -> None:
    store.create_operation(operation("job"))
    now = 100 * SECOND
    assert store.claim_operation("dead-host:1:x", now, 10 * SECOND, never) is not None
    assert store.claim_operation("other", now + 10 * SECOND, 10 * SECOND, never) is None
    expired = store.claim_operation("other", now + 10 * SECOND + 1, 10 * SECOND, never)
    assert expired is not None and expired.lease_owner == "dead-host:1:x"

    asked: list[str] = []

    def gone(holder: str) -> bool:
        asked.append(holder)
        return holder == "other"

    taken = store.claim_operation("third", now + 11 * SECOND, 10 * SECOND, gone)
    assert taken is not None and taken.name == OPS + "job"
    assert asked == ["other"]
    record = store.get_operation(OPS + "job")
    assert record is not None and record.lease_owner == "third"


def test_claim_takes_only_the_kinds_it_is_given(store: Store) -> None:
    store.create_operation(OperationRecord(
        name=OPS + "newer", kind="from-a-newer-version", done=False, create_time_us=SECOND,
        request=b"", operation=b""))
    store.create_operation(operation("known", created_s=2))
    claimed = store.claim_operation("w1", SECOND, 60 * SECOND, never, kinds={"kind"})
    assert claimed is not None and claimed.name == OPS + "known"
    assert store.claim_operation("w2", SECOND, 60 * SECOND, never, kinds={"kind"}) is None
    assert store.claim_operation("w2", SECOND, 60 * SECOND, never, kinds=()) is None
    newer = store.get_operation(OPS + "newer")
    assert newer is not None and newer.lease_owner is None  # left for a replica that knows it
    anything = store.claim_operation("w3", SECOND, 60 * SECOND, never)
    assert anything is not None and anything.name == OPS + "newer"


def test_released_operations_are_claimed_at_once(store: Store) -> None:
    store.create_operation(operation("job"))
    store.claim_operation("w1", SECOND, 60 * SECOND, never)
    store.release_operation(OPS + "job", "someone-else")  # not the holder: no effect
    assert store.claim_operation("w2", SECOND, 60 * SECOND, never) is None
    store.release_operation(OPS + "job", "w1")
    claimed = store.claim_operation("w2", SECOND, 60 * SECOND, never)
    assert claimed is not None and claimed.name == OPS + "job"


def step_progress(seen: list[StepResult], done: bool = False,
                  checkpoint: bytes = b"ckpt") -> Callable[[StepResult], Progress]:
    def progress(result: StepResult) -> Progress:
        seen.append(result)
        return Progress(checkpoint, b"op after " + checkpoint, done)

    return progress


def test_run_step_inserts_counts_and_records_progress_atomically(store: Store) -> None:
    store.create_operation(operation("import"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    store.write_user_events([row("old", joined=False)])
    rows = [row("j1"), row("u1", joined=False), row("old", joined=False), row("j2"),
            row("j1")]
    seen: list[StepResult] = []
    result = store.run_step(OPS + "import", "w1", Step(insert_events=rows), 99 * SECOND,
                            step_progress(seen))
    assert result == StepResult(inserted=3, inserted_joined=2)
    assert seen == [result]
    record = store.get_operation(OPS + "import")
    assert record is not None
    assert (record.checkpoint, record.operation, record.done, record.lease_expires_us) == \
        (b"ckpt", b"op after ckpt", False, 99 * SECOND)
    assert store.count_user_events(EventQuery(CATALOG)) == 4

    big = [row(f"big-{i}", joined=i % 3 == 0) for i in range(300)]  # COPY-sized
    result = store.run_step(OPS + "import", "w1", Step(insert_events=big), 99 * SECOND,
                            step_progress(seen, done=True, checkpoint=b"end"))
    assert (result.inserted, result.inserted_joined) == (300, 100)
    record = store.get_operation(OPS + "import")
    assert record is not None and record.done and record.checkpoint == b"end"
    assert store.claim_operation("w2", 1000 * SECOND, SECOND, never) is None  # done


def test_operations_that_ended_before_a_time_are_forgotten_and_running_ones_never(
        store: Store) -> None:
    """What keeps the operations table bounded (--operations-keep-days): an ended
    operation counts from the lease its last step took (when it ended, plus the
    lease), one stored done from its creation."""
    store.create_operation(operation("ended", created_s=1))
    store.claim_operation("w1", 100 * SECOND, 30 * SECOND, never)
    store.run_step(OPS + "ended", "w1", Step(), 130 * SECOND, step_progress([], done=True))
    store.create_operation(operation("running", created_s=3))  # its lease ran out long ago
    store.claim_operation("w2", 4 * SECOND, SECOND, never)
    store.create_operation(operation("stored-done", created_s=50, done=True))
    store.create_operation(operation("recent", created_s=200, done=True))

    def kept() -> list[str]:
        return [r.name.rsplit("/", 1)[1] for r in store.list_operations(OPS, None, 10)]

    assert store.forget_operations(50 * SECOND) == 0  # nothing ended before 50 s
    assert store.forget_operations(51 * SECOND) == 1
    assert kept() == ["ended", "running", "recent"]
    assert store.forget_operations(130 * SECOND) == 0
    assert store.forget_operations(131 * SECOND) == 1
    assert store.forget_operations(10**9 * SECOND) == 1
    assert kept() == ["running"]
    assert store.forget_operations(10**9 * SECOND) == 0


def test_an_operation_lets_its_request_go_when_it_ends(store: Store) -> None:
    """Nothing reads an ended operation's request again; an inline import's (MBs of
    events) was kept as long as the operation (--operations-keep-days)."""
    store.create_operation(dataclasses.replace(operation("job"), request=b"x" * 100_000))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    store.run_step(OPS + "job", "w1", Step(), 2 * SECOND, step_progress([]))
    running = store.get_operation(OPS + "job")
    assert running is not None and running.request == b"x" * 100_000  # still needed
    store.run_step(OPS + "job", "w1", Step(), 3 * SECOND, step_progress([], done=True))
    ended = store.get_operation(OPS + "job")
    assert ended is not None and ended.done and ended.request == b""


def test_run_step_without_the_lease_raises_and_writes_nothing(store: Store) -> None:
    store.create_operation(operation("job"))
    store.claim_operation("w1", SECOND, SECOND, never)
    store.claim_operation("w2", 3 * SECOND, 30 * SECOND, never)  # w1's lease expired: taken
    seen: list[StepResult] = []
    with pytest.raises(LeaseLost):
        store.run_step(OPS + "job", "w1", Step(insert_events=[row("lost")]), 99 * SECOND,
                       step_progress(seen))
    with pytest.raises(LeaseLost):
        store.run_step(OPS + "missing", "w1", Step(), 99 * SECOND, step_progress(seen))
    assert seen == []
    assert store.count_user_events(EventQuery(CATALOG)) == 0
    record = store.get_operation(OPS + "job")
    assert record is not None and record.checkpoint is None and record.lease_owner == "w2"

    store.delete_operation(OPS + "job")
    with pytest.raises(LeaseLost):
        store.run_step(OPS + "job", "w2", Step(), 99 * SECOND, step_progress(seen))


def test_run_step_reports_a_cancel_request(store: Store) -> None:
    store.create_operation(operation("job"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    seen: list[StepResult] = []
    assert not store.run_step(OPS + "job", "w1", Step(), SECOND, step_progress(seen)) \
        .cancel_requested
    store.request_cancel(OPS + "job")
    assert store.run_step(OPS + "job", "w1", Step(), SECOND, step_progress(seen)) \
        .cancel_requested


@pytest.mark.parametrize("chunk", [sql.DELETE_CHUNK, 1])
def test_run_step_deletes_in_batches_after_a_position(
        store: Store, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # (a step deletes its batch one chunk at a time: alone, to the same end)
    monkeypatch.setattr(sql, "DELETE_CHUNK", chunk)
    store.write_user_events([row(f"v{i}", "search" if i % 2 else "home-page-view",
                                 searchQuery="q" if i % 2 else None) for i in range(10)]
                            + [row("elsewhere", catalog=CATALOG + "x")])
    store.create_operation(operation("purge"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    query = EventQuery(CATALOG, event_types=("search",))
    seen: list[StepResult] = []
    ids = [i for i, _ in store.list_user_events(EventQuery(CATALOG), 10)]
    after = ids[0] - 1
    batches = []
    while after < ids[-1]:
        # at most 2 events, among the next 5 ids at most
        result = store.run_step(OPS + "purge", "w1", Step(
            delete_events=query, delete_after_id=after, delete_until_id=min(after + 5, ids[-1]),
            delete_limit=2), 30 * SECOND, step_progress(seen))
        batches.append((result.deleted, result.deleted_through - ids[0] + 1))
        after = result.deleted_through
    # a full batch stops at its last event, one short of it at the end of its ids
    assert batches == [(2, 4), (2, 8), (1, 10)]
    assert store.count_user_events(query) == 0
    assert store.count_user_events(EventQuery(CATALOG)) == 5
    assert store.count_user_events(EventQuery(CATALOG + "x")) == 1


def test_a_write_queued_behind_a_purge_step_commits_after_its_first_chunk(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A purge's step commits in a transaction of its own, and deletes DELETE_CHUNK
    events at a time: with a write queued behind it, it ends after its first chunk
    (saying how far none is left), so the write waits for one chunk, not a whole
    step nor that step again in its own transaction; the next step goes on."""
    monkeypatch.setattr(sql, "DELETE_CHUNK", 2)
    store.write_user_events([row(f"v{i}") for i in range(10)])
    ids = sorted(i for i, _ in store.list_user_events(EventQuery(CATALOG), 10))
    store.create_operation(operation("purge"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    busy, free = threading.Event(), threading.Event()

    def hold(_db: Any) -> None:  # the writer is busy while the step and the write queue
        busy.set()
        free.wait(10)

    held = Job(fn=hold)
    committed: list[list[str]] = []
    store.on_commit(lambda batch: committed.append(
        ["held" if job is held else "rows" if job.rows is not None else
         "step" if job.alone else "fn" for job in batch]))
    committer = store._committer  # noqa: SLF001
    committer.submit(held)
    assert busy.wait(10)
    seen: list[StepResult] = []
    step = Step(delete_events=EventQuery(CATALOG), delete_after_id=ids[0] - 1,
                delete_until_id=ids[-1], delete_limit=10)
    purging, out = in_background(lambda: store.run_step(OPS + "purge", "w1", step,
                                                        30 * SECOND, step_progress(seen)))
    until(lambda: committer.waiting, "the step to queue behind the held batch")
    write = committer.submit(Job(rows=[row("late")]))
    free.set()
    purging.join(10)
    assert write.result(10) is None
    (result,) = out
    assert (result.deleted, result.deleted_through) == (2, ids[1])
    rest = store.run_step(OPS + "purge", "w1", replace(step, delete_after_id=ids[1]),
                          30 * SECOND, step_progress(seen))
    assert (rest.deleted, rest.deleted_through) == (8, ids[-1])  # nothing waits: all of it
    # (heard after their callers are answered: those before this step's batch)
    assert committed[committed.index(["held"]):][:3] == [["held"], ["step"], ["rows"]]
    assert [visitor(payload) for _, payload in
            store.list_user_events(EventQuery(CATALOG), 10)] == ["late"]
    store.on_commit(None)


def test_event_id_range_bounds_a_query_by_its_time_terms(store: Store) -> None:
    assert store.event_id_range(EventQuery(CATALOG)) is None
    store.write_user_events([row("a", time="2024-01-01T00:00:00Z"),
                             row("b", time="2024-01-01T00:00:01Z"),
                             row("c", time="2024-01-01T00:00:02Z", catalog=CATALOG + "x"),
                             row("d", time="2024-01-01T00:00:03Z")])
    a, b, c, d = (i for i, _ in sorted(
        store.list_user_events(EventQuery(CATALOG), 10)
        + store.list_user_events(EventQuery(CATALOG + "x"), 10)))
    start = 1_704_067_200 * SECOND
    assert store.event_id_range(EventQuery(CATALOG)) == (a, d)
    assert store.event_id_range(EventQuery(
        CATALOG, after=TimeBound(start + SECOND, True))) == (b, d)
    assert store.event_id_range(EventQuery(
        CATALOG, before=TimeBound(start + 3 * SECOND, False))) == (a, b)
    assert store.event_id_range(EventQuery(
        CATALOG, after=TimeBound(start + 4 * SECOND, True))) is None


def test_run_step_updates_events_and_puts_products(store: Store) -> None:
    store.write_user_events([row("a", joined=False), row("b", joined=False)])
    (first, _), (second, _) = store.list_user_events(EventQuery(CATALOG), 2)
    store.create_operation(operation("rejoin"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    store.create_product(BRANCH, "p1", b"old")
    step = Step(update_events=[(first, True, b"enriched-a", b"received-a"),
                               (second, False, b"plain-b", None)],
                put_products=[(BRANCH, "p1", b"new"), (BRANCH, "p2", b"two")])
    store.run_step(OPS + "rejoin", "w1", step, 30 * SECOND, step_progress([]))
    assert store.scan_user_events(EventQuery(CATALOG, joined=True), 10) == \
        [(first, b"enriched-a", b"received-a")]
    assert store.scan_user_events(EventQuery(CATALOG, joined=False), 10) == \
        [(second, b"plain-b", None)]
    assert store.get_products(BRANCH, ["p1", "p2"]) == {"p1": b"new", "p2": b"two"}


def test_inventory_times_live_beside_the_product_and_go_with_it(store: Store) -> None:
    seen: list[tuple[bytes, bytes | None]] = []

    def stamp(payload: bytes, times: bytes | None) -> tuple[bytes, bytes]:
        seen.append((payload, times))
        return payload + b"+", (times or b"") + b"t"

    assert not store.update_inventory(BRANCH, "p1", stamp)  # no such product
    assert seen == []
    store.create_product(BRANCH, "p1", b"P")
    assert store.update_inventory(BRANCH, "p1", stamp)
    assert store.update_inventory(BRANCH, "p1", lambda payload, times: None)  # unchanged
    assert store.update_inventory(BRANCH, "p1", stamp)
    assert seen == [(b"P", None), (b"P+", b"t")]
    assert store.get_products(BRANCH, ["p1"]) == {"p1": b"P++"}
    # A product write of another kind keeps the times; a delete takes them.
    store.update_product(BRANCH, "p1", lambda current: b"Q")
    store.update_inventory(BRANCH, "p1", stamp)
    assert seen[-1] == (b"Q", b"tt")
    assert store.delete_product(BRANCH, "p1")
    store.create_product(BRANCH, "p1", b"R")
    store.update_inventory(BRANCH, "p1", stamp)
    assert seen[-1] == (b"R", None)

    def refuse(payload: bytes, times: bytes | None) -> tuple[bytes, bytes]:
        raise InvalidArgument.field("place_ids", "too many")

    # The operation it answers with is stored in the same transaction, or not at all.
    done = OperationRecord(name=OPS + "set-inventory-1", kind="set-inventory", done=True,
                           create_time_us=SECOND, request=b"request", operation=b"done")
    assert not store.update_inventory(BRANCH, "missing", stamp, done)
    assert store.get_operation(done.name) is None
    with pytest.raises(InvalidArgument):
        store.update_inventory(BRANCH, "p1", refuse, done)
    assert store.get_products(BRANCH, ["p1"]) == {"p1": b"R+"}
    assert store.get_operation(done.name) is None
    assert store.update_inventory(BRANCH, "p1", lambda payload, times: None, done)
    assert store.get_operation(done.name) == done

    # Create and update may set the times with the product, in the same write.
    store.create_product(BRANCH, "p2", b"S", inventory_times=b"created")
    store.update_inventory(BRANCH, "p2", stamp)
    assert seen[-1] == (b"S", b"created")
    given: list[bytes | None] = []

    def times(current: bytes | None) -> bytes:
        given.append(current)
        return b"updated"

    store.update_product(BRANCH, "p2", lambda current: b"T", inventory_times=times)
    store.update_product(BRANCH, "p3", lambda current: b"U", inventory_times=times)  # upsert
    store.update_product(BRANCH, "p2", lambda current: None, inventory_times=times)  # no change
    assert given == [b"createdt", None]
    for product_id, payload in (("p2", b"T"), ("p3", b"U")):
        store.update_inventory(BRANCH, product_id, stamp)
        assert seen[-1] == (payload, b"updated")


def test_a_step_made_from_products_read_commits_only_while_they_are_as_read(
        store: Store, other_writer: Store) -> None:
    """A product import merges its batch with the products it read: a write of one
    of them before its step commits (an UpdateProduct, a product created) makes the
    step write nothing, rather than undo that write; a write of another does not."""
    store.create_operation(operation("import"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    store.create_product(BRANCH, "p1", b"one")

    def put(read: Any, product_id: str, payload: bytes, checkpoint: bytes) -> None:
        store.run_step(OPS + "import", "w1", Step(put_products=[
            (BRANCH, product_id, payload)], products_read=read), 30 * SECOND,
            step_progress([], checkpoint=checkpoint))

    read = store.read_products(BRANCH, ["p1", "p2", "p1"])
    assert (list(read.product_ids), dict(read.products)) == (["p1", "p2"], {"p1": b"one"})
    other_writer.create_product(BRANCH, "elsewhere", b"x")  # the branch moved
    put(read, "p1", b"one, imported", b"first")
    assert store.get_products(BRANCH, ["p1"]) == {"p1": b"one, imported"}

    read = store.read_products(BRANCH, ["p1", "p2"])
    other_writer.update_product(BRANCH, "p1", lambda _: b"updated")
    with pytest.raises(ProductsChanged):
        put(read, "p1", b"one, imported again", b"lost")
    read = store.read_products(BRANCH, ["p1", "p2"])
    other_writer.create_product(BRANCH, "p2", b"two")
    with pytest.raises(ProductsChanged):
        put(read, "p1", b"updated, imported", b"lost")
    assert store.get_products(BRANCH, ["p1", "p2"]) == {"p1": b"updated", "p2": b"two"}
    record = store.get_operation(OPS + "import")
    assert record is not None and record.checkpoint == b"first"


def test_run_step_deletes_products_and_counts_them(store: Store) -> None:
    store.create_operation(operation("purge-products"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    for product_id in ("a", "b", "c"):
        store.create_product(BRANCH, product_id, product_id.encode())
    store.create_product(f"{CATALOG}/branches/1", "a", b"other branch")
    result = store.run_step(OPS + "purge-products", "w1", Step(delete_products=[
        (BRANCH, "a"), (BRANCH, "c"), (BRANCH, "gone")]), 30 * SECOND, step_progress([]))
    assert result.deleted == 2
    assert [pid for pid, _ in store.list_products(BRANCH, 10)] == ["b"]
    assert store.get_products(f"{CATALOG}/branches/1", ["a"]) == {"a": b"other branch"}


def test_a_step_deleting_products_read_commits_only_while_they_are_as_read(
        store: Store, other_writer: Store) -> None:
    """A product purge chooses its batch from the products it read: a write of one of
    them before its step commits (the UpdateProduct that makes it no longer match)
    makes the step delete nothing; a write of another product does not."""
    store.create_operation(operation("purge-products"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    for product_id in ("a", "b", "c"):
        store.create_product(BRANCH, product_id, b"selected")

    def delete(read: Any, product_id: str) -> int:
        return store.run_step(OPS + "purge-products", "w1", Step(
            delete_products=[(BRANCH, product_id)], products_read=read), 30 * SECOND,
            step_progress([])).deleted

    read = store.read_products(BRANCH, ["a", "b"])
    other_writer.update_product(BRANCH, "c", lambda _: b"not read")  # the branch moved
    assert delete(read, "a") == 1
    read = store.read_products(BRANCH, ["b"])
    other_writer.update_product(BRANCH, "b", lambda _: b"no longer selected")
    with pytest.raises(ProductsChanged):
        delete(read, "b")
    assert store.get_products(BRANCH, ["a", "b", "c"]) == {
        "b": b"no longer selected", "c": b"not read"}


def test_a_failing_progress_leaves_no_trace(store: Store) -> None:
    store.create_operation(operation("job"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)

    def broken(_: StepResult) -> Progress:
        raise ValueError("progress failed")

    with pytest.raises(ValueError):
        store.run_step(OPS + "job", "w1", Step(insert_events=[row("x")]), SECOND, broken)
    assert store.count_user_events(EventQuery(CATALOG)) == 0
    record = store.get_operation(OPS + "job")
    assert record is not None and record.checkpoint is None


def test_two_replicas_never_claim_the_same_operation(
        shared_url: str, stores: Callable[[], Any]) -> None:
    replicas = [stores(), stores()]
    for i in range(20):
        replicas[0].create_operation(operation(f"job-{i:02d}", created_s=i))
    claimed: dict[str, list[str]] = {"r0": [], "r1": []}
    start = threading.Barrier(2)

    def claim_all(index: int) -> None:
        mine = claimed[f"r{index}"]
        start.wait()
        # One owner per claim, as one worker thread each (an owner may claim its own again).
        while (got := replicas[index].claim_operation(f"r{index}/{len(mine)}", SECOND,
                                                      60 * SECOND, never)) is not None:
            mine.append(got.name)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = claimed["r0"] + claimed["r1"]
    assert sorted(every) == [OPS + f"job-{i:02d}" for i in range(20)]  # each exactly once


def test_a_step_racing_a_takeover_is_applied_by_one_replica_only(
        shared_url: str, stores: Callable[[], Any]) -> None:
    one, two = stores(), stores()
    one.create_operation(operation("job"))
    one.claim_operation("r1", SECOND, SECOND, never)
    results: dict[str, object] = {}
    start = threading.Barrier(2)

    def step_as_r1() -> None:
        start.wait()
        try:
            one.run_step(OPS + "job", "r1", Step(insert_events=[row("by-r1")]), 60 * SECOND,
                         step_progress([], checkpoint=b"r1"))
            results["r1"] = "applied"
        except LeaseLost:
            results["r1"] = "lost"

    def take_over_as_r2() -> None:
        start.wait()
        results["r2"] = two.claim_operation("r2", 5 * SECOND, 60 * SECOND, never)

    threads = [threading.Thread(target=step_as_r1), threading.Thread(target=take_over_as_r2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = one.get_operation(OPS + "job")
    assert record is not None
    if results["r1"] == "applied":  # r1 stepped first and renewed its lease: no takeover
        assert results["r2"] is None and record.lease_owner == "r1"
        assert one.count_user_events(EventQuery(CATALOG)) == 1
    else:  # r2 took over first: r1's step wrote nothing
        assert results["r2"] is not None and record.lease_owner == "r2"
        assert record.checkpoint is None
        assert one.count_user_events(EventQuery(CATALOG)) == 0


def counting_job(total: int) -> Callable[[JobContext], None]:
    """A job that stores event `step-{n}` at each of `total` steps, resuming from its
    checkpoint (the next n)."""

    def job(ctx: JobContext) -> None:
        done = int(ctx.record.checkpoint or b"0")
        while done < total:
            ctx.check_stop()
            ctx.step(Step(insert_events=[row(f"step-{done}")]),
                     lambda _r, n=done: Progress(str(n + 1).encode(), b"running", False))
            done += 1
        ctx.finish(operations_pb2.Operation(name=ctx.record.name, done=True), str(done).encode())

    return job


def wait_for(probe: Callable[[], object], what: str, seconds: float = 20.0) -> None:
    """Poll `probe` until it is truthy (an event to wait on does not exist here)."""
    done = threading.Event()
    deadline = threading.Timer(seconds, done.set)
    deadline.start()
    try:
        while not probe():
            assert not done.wait(0.02), f"gave up waiting for {what}"
    finally:
        deadline.cancel()


def test_a_runner_takes_over_when_the_lease_of_another_host_expires(store: Store) -> None:
    now_us = 1_000_000 * SECOND
    store.create_operation(operation("job"))
    # A replica on another host claims the job, commits one step, then is heard of no more.
    gone = "another-host:4242:feedbeef/0"
    assert store.claim_operation(gone, now_us, 2 * SECOND, never) is not None
    store.run_step(OPS + "job", gone, Step(insert_events=[row("step-0")]), now_us + 2 * SECOND,
                   lambda _r: Progress(b"1", b"running", False))

    clock = FixedClock((now_us + 3 * SECOND) * 1000)  # its lease is over
    runner = OperationRunner(store, clock, {"kind": counting_job(5)}, lease_seconds=30,
                             poll_seconds=0.02)
    runner.start()
    try:
        wait_for(lambda: (op := store.get_operation(OPS + "job")) is not None and op.done,
                 "the job to be finished by the runner")
    finally:
        runner.stop()
    listed = store.list_user_events(EventQuery(CATALOG), limit=10)
    assert [visitor(p) for _, p in listed] == [f"step-{n}" for n in range(5)]  # each once
    record = store.get_operation(OPS + "job")
    assert record is not None and record.checkpoint == b"5"
    assert record.lease_owner is not None and record.lease_owner.startswith(runner.owner)


def test_a_runner_leaves_operations_of_unknown_kinds_and_runs_the_rest(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    # Written by a newer replica, older than the job behind it.
    store.create_operation(OperationRecord(
        name=OPS + "newer", kind="from-a-newer-version", done=False, create_time_us=SECOND,
        request=b"", operation=b"op newer"))
    store.create_operation(operation("job", created_s=2))
    runner = OperationRunner(store, FixedClock(0), {"kind": counting_job(3)}, poll_seconds=0.02)
    with caplog.at_level(logging.DEBUG, logger="server.operations.runner"):
        runner.start()
        try:
            wait_for(lambda: (op := store.get_operation(OPS + "job")) is not None and op.done,
                     "the job behind the unknown one to run")
            # The runner keeps looking for work (a transaction each), ~50 times a second:
            # give a hot loop the time to show (the old one logged ~10k lines a second).
            looked = store.commits  # type: ignore[attr-defined]
            wait_for(lambda: store.commits >= looked + 20,  # type: ignore[attr-defined]
                     "the runner to look for work again")
        finally:
            runner.stop()
    lines = [r for r in caplog.records if r.name == "server.operations.runner"]
    assert len(lines) <= 3, [r.getMessage() for r in lines[:5]]
    newer = store.get_operation(OPS + "newer")
    assert newer is not None and not newer.done and newer.lease_owner is None


def test_a_job_stopped_between_batches_is_let_go_for_the_next_start(store: Store) -> None:
    """A runner stopped while its job runs (the job sees it at ctx.check_stop) lets the
    operation go: held, the next start (same host and pid here, its lease not run out)
    could not take it up, and one that did counted a try lost to each stop, so that
    MAX_TRIES stops in one long job ended a sound job INTERNAL."""
    store.create_operation(operation("job"))
    waiting = threading.Event()

    def job(ctx: JobContext) -> None:  # a batch a start, then waits to be stopped
        done = int(ctx.record.checkpoint or b"0")
        ctx.step(Step(insert_events=[row(f"step-{done}")]),
                 lambda _r: Progress(str(done + 1).encode(), b"running", False))
        if done + 1 > MAX_TRIES:
            ctx.finish(operations_pb2.Operation(name=ctx.record.name, done=True),
                       str(done + 1).encode())
            return
        waiting.set()
        while True:
            ctx.check_stop()
            waiting.wait(0.01)

    for start in range(MAX_TRIES + 1):
        waiting.clear()
        runner = OperationRunner(store, FixedClock(0), {"kind": job}, poll_seconds=0.01)
        runner.start()
        try:
            wait_for(lambda: waiting.is_set() or ((op := store.get_operation(OPS + "job"))
                                                  is not None and op.done),
                     f"start {start + 1} to take the job up")
        finally:
            runner.stop()
        record = store.get_operation(OPS + "job")
        assert record is not None and (record.done or record.lease_owner is None), record
    assert record is not None and record.done and record.checkpoint == str(MAX_TRIES + 1).encode()
    assert not operations_pb2.Operation.FromString(record.operation).HasField("error")
    listed = store.list_user_events(EventQuery(CATALOG), limit=10)
    assert sorted(visitor(p) for _, p in listed) == [f"step-{n}" for n in range(MAX_TRIES + 1)]


def failing_once_then(ending: str) -> Callable[[JobContext], None]:
    """A job that fails (a bug) on its first try, then ends as `ending` says."""
    tries: list[int] = []

    def job(ctx: JobContext) -> None:
        tries.append(1)
        if len(tries) == 1 or ending == "fails-again":
            raise RuntimeError("a bug")
        if ending == "succeeds":
            ctx.finish(operations_pb2.Operation(name=ctx.record.name, done=True))
        elif ending == "is-refused":
            raise InvalidArgument.field("input_config", "the file is gone")
        elif ending == "is-deleted":
            ctx.store.delete_operation(ctx.record.name)
            ctx.step(Step(), lambda _: Progress(b"", b"", True))  # raises LeaseLost

    return job


def test_a_runner_forgets_the_failures_of_operations_however_they_end(store: Store) -> None:
    endings = ["succeeds", "is-refused", "is-deleted", "fails-again"]
    for i, ending in enumerate(endings):
        store.create_operation(OperationRecord(
            name=OPS + ending, kind=ending, done=False, create_time_us=i, request=b"",
            operation=operations_pb2.Operation(name=OPS + ending).SerializeToString()))
    runner = OperationRunner(store, FixedClock(0),
                             {ending: failing_once_then(ending) for ending in endings},
                             poll_seconds=0.01)
    runner.start()
    try:
        wait_for(lambda: all((op := store.get_operation(OPS + e)) is None or op.done
                             for e in endings), "every operation to end")
    finally:
        runner.stop()
    assert runner.counted_failures == 0
    failed = store.get_operation(OPS + "fails-again")
    assert failed is not None
    assert operations_pb2.Operation.FromString(failed.operation).error.code == code_pb2.INTERNAL


def test_claims_count_the_tries_that_never_let_the_operation_go(store: Store) -> None:
    store.create_operation(operation("job"))
    now = 100 * SECOND
    first = store.claim_operation("w1", now, 10 * SECOND, never)
    assert first is not None and first.lost_tries == 0
    store.release_operation(OPS + "job", "w1")  # a clean stop: not a lost try
    second = store.claim_operation("w2", now, 10 * SECOND, never)
    assert second is not None and second.lost_tries == 0
    again = store.claim_operation("w2", now, 10 * SECOND, never)  # its own, after a pause
    assert again is not None and again.lost_tries == 0
    taken = store.claim_operation("w3", now, 10 * SECOND, lambda holder: holder == "w2")
    assert taken is not None and taken.lost_tries == 1  # its holder's process is gone
    expired = store.claim_operation("w4", now + 10 * SECOND + 1, 10 * SECOND, never)
    assert expired is not None and expired.lost_tries == 2
    stored = store.get_operation(OPS + "job")
    assert stored is not None and stored.lost_tries == 2


def test_a_claim_takes_over_only_a_lease_that_ran_out_before_it_is_told(store: Store) -> None:
    store.create_operation(operation("job"))
    now = 100 * SECOND
    assert store.claim_operation("w1", now, 10 * SECOND, never) is not None
    later = now + 20 * SECOND  # w1's lease ran out at now + 10 s
    assert store.claim_operation("w2", later, 10 * SECOND, never,
                                 lapsed_before_us=now + 5 * SECOND) is None
    taken = store.claim_operation("w2", later, 10 * SECOND, never, lapsed_before_us=later)
    assert taken is not None and taken.lost_tries == 1


class StoreAway:
    """`store`, whose claims are refused (StoreUnavailable) while `away`, as the
    database's are while it cannot be reached; each claim tried is counted."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.away = False
        self.claims = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def claim_operation(self, *args: Any, **options: Any) -> OperationRecord | None:
        self.claims += 1
        if self.away:
            raise StoreUnavailable("the database is unreachable; try again later")
        return self._store.claim_operation(*args, **options)


def test_a_lease_that_ran_out_while_the_store_was_away_is_not_taken_over_at_once(
        store: Store) -> None:
    """The holder of a job (another replica, alive) cannot renew its lease while the
    database is away: taken over as soon as it was back, its try counted lost, and
    three such outages ended a sound job INTERNAL. It has a lease from the end of the
    outage to take its job up again; then, gone, it is taken over (and counted)."""
    store.create_operation(operation("job"))
    holder = "other-host:4242:feedbeef/0"
    assert store.claim_operation(holder, 100 * SECOND, 10 * SECOND, never) is not None
    away = StoreAway(store)
    clock = FixedClock(105 * SECOND * 1000)
    ran: list[int] = []

    def job(ctx: JobContext) -> None:
        ran.append(ctx.record.lost_tries)
        ctx.finish(operations_pb2.Operation(name=ctx.record.name, done=True))

    runner = OperationRunner(away, clock, {"kind": job},  # type: ignore[arg-type]
                             lease_seconds=10, poll_seconds=0.01)
    runner.start()
    try:
        away.away = True
        tried = away.claims
        wait_for(lambda: away.claims > tried + 2, "the runner to find the store away")
        clock.advance(7)  # 112 s: the holder's lease ran out at 110 s, during the outage
        away.away = False
        tried = away.claims
        wait_for(lambda: away.claims > tried + 5, "the runner to look for work again")
        held = store.get_operation(OPS + "job")
        assert held is not None and held.lease_owner == holder and held.lost_tries == 0
        assert ran == []
        clock.advance(11)  # a lease after the outage: the holder did not come back
        wait_for(lambda: ran, "the job to be taken over")
    finally:
        runner.stop()
    assert ran == [1]


def test_a_worker_left_busy_by_a_stop_lets_its_operation_go(store: Store) -> None:
    """A stop leaves a worker still busy after its timeout (a batch longer than the
    grace, a file system that does not answer) to die with the process: its lease
    was kept, so the next start counted a try lost to the job, and three such stops
    ended it INTERNAL."""
    store.create_operation(operation("job"))
    started, go_on = threading.Event(), threading.Event()
    lost: list[BaseException] = []

    def job(ctx: JobContext) -> None:
        started.set()
        go_on.wait(20)
        try:
            ctx.step(Step(), lambda _: Progress(b"", b"", False))
        except LeaseLost as exc:
            lost.append(exc)
            raise

    runner = OperationRunner(store, FixedClock(0), {"kind": job}, poll_seconds=0.01)
    runner.start()
    assert started.wait(20)
    runner.stop(timeout=0.05)
    let_go = store.get_operation(OPS + "job")
    assert let_go is not None and let_go.lease_owner is None
    go_on.set()  # its next step finds the operation let go
    wait_for(lambda: lost, "the worker left busy to find its operation let go")
    # the next start (its holder is gone): no try lost
    again = store.claim_operation("next-start", 0, SECOND, lambda _holder: True)
    assert again is not None and again.lost_tries == 0


def test_a_runner_ends_an_operation_whose_tries_ended_their_process(store: Store) -> None:
    """A job that kills its process (out of memory, a crash in native code) was
    claimed again at every start, for ever: the failures counted in memory died
    with it. The store counts them; past MAX_TRIES the operation ends, not run."""
    store.create_operation(OperationRecord(
        name=OPS + "job", kind="kind", done=False, create_time_us=0, request=b"",
        operation=operations_pb2.Operation(name=OPS + "job").SerializeToString()))
    for i in range(MAX_TRIES):  # each try's process died holding it (its lease ran out)
        assert store.claim_operation(f"gone-host:{i}:x", (2 * i - 20) * SECOND, SECOND, never)
    ran: list[JobContext] = []
    runner = OperationRunner(store, FixedClock(0), {"kind": ran.append}, poll_seconds=0.01)
    runner.start()
    try:
        wait_for(lambda: (op := store.get_operation(OPS + "job")) is not None and op.done,
                 "the operation to end")
    finally:
        runner.stop()
    assert ran == []
    ended = store.get_operation(OPS + "job")
    assert ended is not None and ended.lost_tries == MAX_TRIES
    error = operations_pb2.Operation.FromString(ended.operation).error
    assert error.code == code_pb2.INTERNAL
    assert f"ended the process running it {MAX_TRIES} times" in error.message


# -- migrations and URLs -------------------------------------------------------------


def applied_versions(store: Any) -> list[int]:
    if hasattr(store, "_pool"):  # PostgreSQL
        rows = store._fetch("SELECT version FROM schema_migrations ORDER BY version", ())
        return [v for (v,) in rows]
    with store._reader() as conn:
        return [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


@pytest.fixture
def empty_database_url(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A store URL naming an empty database (for the migrations to build)."""
    if store_url == "memory://":
        pytest.skip("memory:// is one process's own")
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/fresh.db"
    url: str = request.getfixturevalue("postgres_databases").create("fresh")
    return url


def open_concurrently(url: str, openers: int = 4) -> tuple[list[Any], list[BaseException]]:
    """The stores `openers` threads opened on `url` at once, and what the others raised."""
    opened: list[Any] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(open_store(url))
        except BaseException as exc:  # collected, for the caller to assert on
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(openers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return opened, errors


def test_migrations_apply_once_even_when_opened_concurrently(empty_database_url: str) -> None:
    opened, errors = open_concurrently(empty_database_url)
    try:
        assert errors == []
        assert applied_versions(opened[0]) == [version for version, _, _ in MIGRATIONS]
    finally:
        for s in opened:
            s.close()


def test_a_store_a_newer_footfall_migrated_is_refused(empty_database_url: str) -> None:
    """A migration this version does not know: the store may hold rows it misreads, so
    it neither serves nor reads it (a read of a packed row would fail, or worse)."""
    open_store(empty_database_url).close()
    if empty_database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(empty_database_url.removeprefix("sqlite:///")) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future')")
    else:
        import psycopg

        with psycopg.connect(empty_database_url, autocommit=True) as pg:
            pg.execute("INSERT INTO schema_migrations VALUES (99, 'from the future')")
    newer = "was migrated by a newer Footfall .it has migration 99, which this version"
    with pytest.raises(StoreUnusable, match=newer):
        open_store(empty_database_url)
    with pytest.raises(ValueError, match=newer):
        open_store(empty_database_url, read_only=True)


def test_postgres_dialect_maps_sqlite_types() -> None:
    assert postgres_dialect("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB, n TEXT NOT NULL, "
                            "x INTEGER, y SMALLINT)") == (
        'CREATE TABLE t (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, b BYTEA, '
        'n TEXT COLLATE "C" NOT NULL, x INTEGER, y SMALLINT)')
    assert postgres_dialect("ALTER TABLE t ADD COLUMN s BLOB") == \
        "ALTER TABLE t ADD COLUMN s BYTEA"


@pytest.mark.parametrize("url", ["mysql://x", "sqlite://", "nonsense", "memory:/", "memory://shop",
                                 "memory://?x=1"])
def test_unknown_store_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


def test_a_relative_sqlite_path_that_reads_as_an_absolute_one_is_warned_of(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    # sqlite:///tmp/x.db (three slashes) made ./tmp/x.db under the working folder,
    # said only by the absolute path on the ready line.
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.WARNING, logger="server.store")
    for url in ("sqlite:///./tmp/a.db", "sqlite:///not-a-top-folder/b.db",
                f"sqlite:///{tmp_path}/c.db", "sqlite:///./var/e.db"):
        open_store(url).close()
    assert caplog.messages == []
    shutil.rmtree(tmp_path / "tmp")
    open_store("sqlite:///tmp/d.db").close()
    assert caplog.messages == [f"sqlite:///tmp/d.db is the file {tmp_path}/tmp/d.db under the "
                               "working folder; sqlite:////tmp/d.db (four slashes) is /tmp/d.db"]
    caplog.clear()
    open_store("sqlite:///tmp/d.db").close()  # (./tmp is there now: meant, it seems)
    assert caplog.messages == []


def test_the_wal_stays_bounded_under_a_steady_stream_of_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Background checkpoints alone never let the WAL start over while writes keep
    coming (it once grew to 61 GB in a benchmark); the writer must checkpoint too."""
    import server.store.sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "WAL_AUTOCHECKPOINT_PAGES", 200)
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    wal = tmp_path / "events.db-wal"
    peak = 0
    try:
        for batch in range(60):
            store.write_user_events([row(f"v{batch}-{i}") for i in range(500)])
            peak = max(peak, wal.stat().st_size if wal.exists() else 0)
    finally:
        store.close()
    # 30,000 events are about 15 MB of WAL frames; bounded means a few times the threshold
    assert peak < 20 * 200 * 4096, f"WAL reached {peak / 2**20:.1f} MiB"


def test_processes_starting_on_one_new_file_all_open_it(tmp_path: Path) -> None:
    """Switching a new file to WAL is refused at once ("database is locked", no busy
    wait) while another connection holds it; every opener must wait its turn. Before,
    about one round in ten failed."""
    for round_ in range(30):
        opened, errors = open_concurrently(f"sqlite:///{tmp_path}/new-{round_}.db")
        for store in opened:
            store.close()
        assert errors == [], f"round {round_}"


def test_ids_are_never_given_twice(store: Store) -> None:
    store.write_user_events([row("a"), row("b", time="2024-01-02T00:00:00Z")])
    (_, _), (newest, _) = store.list_user_events(EventQuery(CATALOG), 10)
    store.create_operation(operation("purge"))
    store.claim_operation("w1", SECOND, 30 * SECOND, never)
    store.run_step(OPS + "purge", "w1", Step(delete_events=EventQuery(CATALOG, visitor_ids=("b",)),
                                             delete_until_id=newest, delete_limit=10),
                   30 * SECOND, step_progress([]))
    store.write_user_events([row("c")])
    assert [i for i, _ in store.list_user_events(EventQuery(CATALOG), 10)][-1] > newest


def test_reads_from_threads_that_ended_leave_no_connection_open(store: Store) -> None:
    # An event import's helper thread reads products for one run, then ends: its
    # connection (and the database's files it holds open) must not stay behind.
    store.write_user_events([row("a")])

    def count() -> None:
        assert store.count_user_events(EventQuery(CATALOG)) == 1

    count()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(40):
        reader = threading.Thread(target=count)
        reader.start()
        reader.join()
    assert len(os.listdir("/proc/self/fd")) <= before + 4


def test_operations_are_counted_by_prefix_and_state(store: Store) -> None:
    store.create_operation(operation("a"))
    store.create_operation(operation("b", done=True))
    store.create_operation(dataclasses.replace(operation("c"), name="projects/other/operations/c"))
    assert store.count_operations(OPS, done=False) == 1
    assert store.count_operations(OPS, done=True) == 1
    assert store.count_operations(OPS, done=None) == 2
    assert store.count_operations("projects/", done=False) == 2
    assert store.count_operations("projects/none/", done=None) == 0


def test_a_product_writes_check_runs_on_a_read_not_on_the_writer(store: Store) -> None:
    """A variant's check scans the branch for its primary's variants: on the writer,
    inside the write's transaction, a create over 30,000 products held every event
    write behind it (median 3 → 122 ms). With nothing written meanwhile, it runs once,
    on the caller's thread."""
    store.create_product(BRANCH, "P", b"primary")
    ran_on: list[str] = []

    def check(payload: bytes, products: Any) -> None:
        ran_on.append(threading.current_thread().name)
        primary_must_exist(payload, products)

    assert store.create_product(BRANCH, "V", b"variant of P", check)
    store.update_product(BRANCH, "V", lambda current: b"variant2 of P", check)
    assert store.delete_product(BRANCH, "V", check)
    assert ran_on == [threading.current_thread().name] * 3
