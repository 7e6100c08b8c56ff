"""Upgrading a database made by an older Footfall keeps its events and their rules."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format

from server.store import EventQuery, EventRow, TimeBound, open_store
from server.store.migrations import MIGRATIONS
from server.store.rows import OperationRecord, Progress, Step

from .old_schema import make_old_schema

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
OPS = f"{CATALOG}/operations/"


def row(visitor: str, time: str, event_type: str = "home-page-view",
        catalog: str = CATALOG) -> EventRow:
    event = json_format.ParseDict({"eventType": event_type, "visitorId": visitor,
                                   "eventTime": time}, user_event_pb2.UserEvent())
    return EventRow.from_event(catalog, event, joined=True)


def test_version_2_database_upgrades_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    make_old_schema(conn, "sqlite", 2)
    old = row("kept", "2024-01-01T00:00:00.000000500Z")
    conn.execute("INSERT INTO user_events (catalog, event_type, visitor_id, user_id, "
                 "event_time_us, joined, dedup_key, event, source) VALUES "
                 "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (old.catalog, old.event_type, old.visitor_id, old.user_id, old.event_time_us,
                  int(old.joined), old.key, old.payload, old.source))
    conn.close()

    store = open_store(f"sqlite:///{db}")
    try:
        assert store.count_user_events(EventQuery(CATALOG)) == 1
        store.write_user_events([old, row("new", "2024-01-01T00:00:00.000000700Z")])
        assert store.count_user_events(EventQuery(CATALOG)) == 2, "the old event is a duplicate"
        # 2024-01-01T00:00:00.0000006Z: new events compare to the nanosecond
        bound = TimeBound.at(1_704_067_200, 600, inclusive=False)
        assert store.count_user_events(EventQuery(CATALOG, after=bound)) == 1
        with store._reader() as reader:
            versions = [v for (v,) in reader.execute("SELECT version FROM schema_migrations")]
            indexes = {name for (name,) in reader.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'user_events'")}
        assert versions == [v for v, _, _ in MIGRATIONS]
        assert {"user_events_dedup", "user_events_visitor", "user_events_user"} <= indexes
    finally:
        store.close()


def test_a_new_store_says_so_in_one_line_and_an_upgrade_names_each_migration(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A memory:// store logged ten "applied migration" lines at every start, as if
    # an old store were being upgraded.
    caplog.set_level(logging.INFO, logger="server.store.migrations")
    open_store("memory://").close()
    assert [r.getMessage() for r in caplog.records] == [
        f"created the store's tables (schema version {MIGRATIONS[-1][0]})"]
    caplog.clear()
    db = tmp_path / "old.db"
    open_store(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (MIGRATIONS[-1][0],))
    conn.close()
    caplog.clear()
    open_store(f"sqlite:///{db}").close()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith(
        f"applied migration {MIGRATIONS[-1][0]}: {MIGRATIONS[-1][1]}"), said


def test_a_migration_of_the_other_engine_alone_says_so_on_sqlite(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Migration 15 (an index PostgreSQL alone needs) said "applied migration 15:
    # PostgreSQL: a catalog's events in the order stored" upgrading a SQLite store.
    db = tmp_path / "at-14.db"
    open_store(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version >= 15")
    conn.close()
    caplog.set_level(logging.INFO, logger="server.store.migrations")
    open_store(f"sqlite:///{db}").close()
    said = [r.getMessage() for r in caplog.records if "migration 15" in r.getMessage()]
    assert said == ["applied migration 15: a catalog's events in the order stored "
                    "(nothing to change on SQLite)"]
    assert "PostgreSQL" not in " ".join(r.getMessage() for r in caplog.records)


def test_time_bounds_compare_to_the_nanosecond(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/e.db")
    try:
        store.write_user_events([row("a", "2024-01-01T00:00:00.000000500Z"),
                                 row("b", "2024-01-01T00:00:00.000001Z"),
                                 row("c", "2024-01-01T00:00:00Z")])
        base = 1_704_067_200

        def count(**terms: object) -> int:
            return store.count_user_events(EventQuery(CATALOG, **terms))  # type: ignore[arg-type]

        assert count(after=TimeBound.at(base, 500, False)) == 1
        assert count(after=TimeBound.at(base, 500, True)) == 2
        assert count(after=TimeBound.at(base, 0, False)) == 2
        assert count(before=TimeBound.at(base, 500, False)) == 1
        assert count(before=TimeBound.at(base, 500, True)) == 2
        assert count(before=TimeBound.at(base, 1000, False)) == 2
        assert count(before=TimeBound.at(base, 0, True)) == 1
    finally:
        store.close()


def _old_key(catalog: str, payload: bytes) -> bytes:
    """The dedup key stores kept before migration 8: the whole 16-byte hash."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(catalog.encode() + b"\0" + payload)
    return digest.digest()


# The schemas an upgrade starts from: the release before migration 8 (at 4), and
# what main made before migration 8 was merged (4, then the console's 6 and 7).
BEFORE_8 = {"4": 4, "4+6+7": 6}


def old_database(dialect: str, tmp_path: Path,
                 request: pytest.FixtureRequest) -> tuple[str, Any]:
    """(URL, DB-API connection in autocommit) of a new empty database of `dialect`,
    for a test to make as an older Footfall left it."""
    if dialect == "sqlite":
        return (f"sqlite:///{tmp_path}/old.db",
                sqlite3.connect(tmp_path / "old.db", isolation_level=None))
    import psycopg

    url = request.getfixturevalue("postgres_databases").create("old")
    return url, psycopg.connect(url, autocommit=True)


@pytest.fixture(params=[(d, level) for d in ("sqlite", "postgresql") for level in BEFORE_8],
                ids=lambda p: f"{p[0]}-{p[1]}")
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any, bool]]:
    """(URL, DB-API connection, whether it has migration 6) of a database as a release
    before migration 8 left it; the connection is closed at teardown."""
    dialect, level = request.param
    url, conn = old_database(dialect, tmp_path, request)
    assert MIGRATIONS[BEFORE_8[level] - 1][0] < 8
    make_old_schema(conn, dialect, BEFORE_8[level])
    yield url, conn, level != "4"
    conn.close()


def test_old_database_upgrades_in_place(old_store: tuple[str, Any, bool]) -> None:
    url, conn, has_6 = old_store
    other = CATALOG.replace("default_catalog", "other")
    events = [(CATALOG, "v1", "home-page-view", "2024-01-01T00:00:00.000000500Z", None),
              (other, "v1", "home-page-view", "2024-01-01T00:00:01Z", None),
              (CATALOG, "v2", "search", "2024-01-01T00:00:02Z", b"as received"),
              (CATALOG, "v1", "search", "2024-01-01T00:00:03Z", None)]
    mark = "?" if url.startswith("sqlite") else "%s"
    stored = []
    # migration 6's columns, where the store has them: kept by the rebuild
    console = ", received_us, transport" if has_6 else ""
    for n, (catalog, visitor, kind, time, source) in enumerate(events):
        old = row(visitor, time, kind, catalog)
        key = _old_key(catalog, source if source is not None else old.payload)
        values = (catalog, kind, visitor, "", old.event_time_us, old.event_time_ns, 1, key,
                  old.payload, source) + ((1_000 + n, 1 + n % 2) if has_6 else ())
        conn.execute("INSERT INTO user_events (catalog, event_type, visitor_id, user_id, "
                     f"event_time_us, event_time_ns, joined, dedup_key, event, source{console}) "
                     f"VALUES ({', '.join([mark] * len(values))})", values)
        stored.append((old.payload, source))

    store = open_store(url)
    try:
        def read(catalog: str) -> list[tuple[bytes, bytes | None]]:
            return [(e, s) for _, e, s in store.scan_user_events(EventQuery(catalog), 10)]

        assert read(CATALOG) == [stored[0], stored[2], stored[3]]  # byte-equal, in order
        assert read(other) == [stored[1]]
        # the console reads them too, newest first, with how and when they came
        newest = store.user_events_newest(EventQuery(CATALOG), 10)
        assert [(e.catalog, e.payload, e.source) for e in newest] == \
            [(CATALOG, *stored[i]) for i in (3, 2, 0)]
        assert [(e.received_us, e.transport) for e in newest] == \
            ([(1_003, 2), (1_002, 1), (1_000, 1)] if has_6 else [(None, 0)] * 3)
        # dedup still matches what the old release stored (keys are cut, not remade)
        store.write_user_events([row("v1", events[0][3]), row("v1", events[1][3], catalog=other)])
        assert store.count_user_events(EventQuery(CATALOG)) == 3
        assert store.count_user_events(EventQuery(other)) == 1
        # purge filters by time, type and visitor
        after = TimeBound.at(1_704_067_201, 0, inclusive=True)
        assert store.count_user_events(EventQuery(CATALOG, after=after)) == 2
        assert store.count_user_events(EventQuery(CATALOG, event_types=("search",),
                                                  visitor_ids=("v1",))) == 1
        store.create_operation(OperationRecord(OPS + "purge", "purge", False, 0, b"", b""))
        store.claim_operation("w", 0, 60_000_000, lambda _: False)
        store.run_step(OPS + "purge", "w", Step(delete_events=EventQuery(
            CATALOG, visitor_ids=("v1",)), delete_until_id=10, delete_limit=10), 60_000_000,
            lambda _: Progress(b"", b"", False))
        assert read(CATALOG) == [stored[2]]
        assert read(other) == [stored[1]]
        assert store.catalogs_with_events_before(1_704_067_202_000_000) == [other]
    finally:
        store.close()
    # rows name their catalog by id, with 8-byte keys
    assert [n for (n,) in conn.execute("SELECT DISTINCT length(dedup_key) FROM user_events")] \
        == [8]
    assert sorted(n for (n,) in conn.execute("SELECT name FROM catalogs")) == [CATALOG, other]
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations "
                                           "ORDER BY version")]
    assert versions == [v for v, _, _ in MIGRATIONS]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_an_operation_stored_before_lost_tries_were_counted_counts_from_none(
        dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url, conn = old_database(dialect, tmp_path, request)
    try:
        # as the version before migration 14 (which added operations.lost_tries) left it
        make_old_schema(conn, dialect, [v for v, _, _ in MIGRATIONS].index(14))
        mark = "?" if dialect == "sqlite" else "%s"
        # held, when the upgrade came, by a process that died (its lease ran out)
        conn.execute("INSERT INTO operations (name, kind, done, create_time_us, request, "
                     "operation, cancel_requested, lease_owner, lease_expires_us) VALUES "
                     f"({mark}, 'purge', 0, 0, {mark}, {mark}, 0, 'gone-host:1:x', 5)",
                     (OPS + "held", b"", b""))
    finally:
        conn.close()
    store = open_store(url)
    try:
        stored = store.get_operation(OPS + "held")
        assert stored is not None and stored.lost_tries == 0
        claimed = store.claim_operation("w", 10, 1_000_000, lambda _: False)
        assert claimed is not None and claimed.lost_tries == 1
    finally:
        store.close()


def test_a_postgresql_store_of_17_checks_a_joined_writes_products_once_upgraded(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # Migration 18 adds the function a joined write of one catalog asks whether its
    # products changed (17's, over JSON, stays for several catalogs and for a replica
    # of the version before, still running).
    from server.store.postgres import PostgresStore

    from .test_store_postgres import BRANCH, product, stored, write_joined

    url, conn = old_database("postgresql", tmp_path, request)
    try:
        make_old_schema(conn, "postgresql", [v for v, _, _ in MIGRATIONS].index(18))
    finally:
        conn.close()
    first, second = PostgresStore(url), PostgresStore(url)
    try:
        first.write_user_events([row("warm-up", "2024-01-01T00:00:00Z")])
        second.create_product(BRANCH, "sku-1", product("Old title", 10.0))
        write_joined(first, "a")
        second.update_product(BRANCH, "sku-1", lambda _: product("New title", 20.0))
        write_joined(first, "b")
        assert stored(first) == {"a": ("Old title", 10.0, True), "b": ("New title", 20.0, True)}
    finally:
        first.close()
        second.close()
