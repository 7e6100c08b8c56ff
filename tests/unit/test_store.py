"""The store contract, run on every backend (memory and a SQLite file)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format

from server.store import ClientEventRow, EventQuery, EventRow, TimeBound, open_store
from server.store.migrations import MIGRATIONS
from server.store.sqlite import SqliteStore

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


def row(visitor: str = "v1", event_type: str = "home-page-view",
        time: str = "2024-01-01T00:00:00Z", catalog: str = CATALOG, **more: object) -> EventRow:
    event = json_format.ParseDict({"eventType": event_type, "visitorId": visitor,
                                   "eventTime": time, **more}, user_event_pb2.UserEvent())
    return EventRow.from_event(catalog, event, joined=True)


@pytest.fixture(params=["memory", "file"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/events.db"


@pytest.fixture
def store(store_url: str) -> Iterator[SqliteStore]:
    opened = open_store(store_url)
    assert isinstance(opened, SqliteStore)
    yield opened
    opened.close()


def test_write_then_read(store: SqliteStore) -> None:
    store.write_user_events([row("a"), row("b")])
    assert store.count_user_events(EventQuery(CATALOG)) == 2
    listed = store.list_user_events(EventQuery(CATALOG), limit=10)
    visitors = [user_event_pb2.UserEvent.FromString(p).visitor_id for _, p in listed]
    assert visitors == ["a", "b"]


def test_exact_duplicates_are_stored_once(store: SqliteStore) -> None:
    store.write_user_events([row("a")])
    store.write_user_events([row("a"), row("a")])
    store.write_user_events([row("a", catalog=CATALOG + "x")])
    assert store.count_user_events(EventQuery(CATALOG)) == 1
    assert store.count_user_events(EventQuery(CATALOG + "x")) == 1


def test_queries_select_by_type_visitor_user_and_time(store: SqliteStore) -> None:
    store.write_user_events([
        row("a", "search", "2024-01-01T00:00:00Z", searchQuery="x"),
        row("a", "home-page-view", "2024-02-01T00:00:00Z", userInfo={"userId": "u1"}),
        row("b", "home-page-view", "2024-03-01T00:00:00Z"),
    ])
    feb = 1706745600 * 1_000_000

    def count(**terms: object) -> int:
        return store.count_user_events(EventQuery(CATALOG, **terms))  # type: ignore[arg-type]

    assert count(event_types=("home-page-view",)) == 2
    assert count(visitor_ids=("a",)) == 2
    assert count(user_ids=("u1",)) == 1
    assert count(after=TimeBound(feb, inclusive=True)) == 2
    assert count(after=TimeBound(feb, inclusive=False)) == 1
    assert count(before=TimeBound(feb, inclusive=False)) == 1
    assert count(visitor_ids=("a",), event_types=("search",)) == 1


def test_listing_pages_by_id(store: SqliteStore) -> None:
    store.write_user_events([row(f"v{i}") for i in range(25)])
    seen: list[int] = []
    after = 0
    while page := store.list_user_events(EventQuery(CATALOG), limit=10, after_id=after):
        seen.extend(i for i, _ in page)
        after = page[-1][0]
    assert len(seen) == 25 == len(set(seen))


def test_concurrent_writers_share_commits(store: SqliteStore) -> None:
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


def test_client_events_are_unique_per_tenant(store: SqliteStore) -> None:
    first = ClientEventRow("projects/p/tenants/t", "e1", 1, b"one")
    assert store.create_client_event(first) == (b"one", True)
    assert store.create_client_event(ClientEventRow("projects/p/tenants/t", "e1", 2, b"two")) \
        == (b"one", False)
    assert store.create_client_event(ClientEventRow("projects/p/tenants/u", "e1", 2, b"two")) \
        == (b"two", True)


def test_a_failing_job_does_not_undo_its_batch(store: SqliteStore) -> None:
    def boom(conn: object) -> None:
        raise RuntimeError("job failed")

    failing = store._committer.submit_fn(boom)
    store.write_user_events([row("kept")])
    with pytest.raises(RuntimeError):
        failing.result()
    assert store.count_user_events(EventQuery(CATALOG)) == 1


def test_file_store_survives_reopen_and_flushes_async_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db/events.db"
    store = open_store(url)
    store.write_user_events([row("sync")])
    for i in range(500):
        store.write_user_events([row(f"async-{i}")], wait=False)
    store.close()
    store.close()  # idempotent
    reopened = open_store(url)
    try:
        assert reopened.count_user_events(EventQuery(CATALOG)) == 501
    finally:
        reopened.close()


def test_migrations_apply_once_even_when_opened_concurrently(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    opened: list[SqliteStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            s = open_store(url)
            assert isinstance(s, SqliteStore)
            opened.append(s)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with opened[0]._reader() as conn:
            versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [version for version, _, _ in MIGRATIONS]
    finally:
        for s in opened:
            s.close()


@pytest.mark.parametrize("url", ["mysql://x", "sqlite://", "nonsense"])
def test_unknown_store_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)
