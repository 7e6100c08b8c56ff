"""Upgrading a database made by an older Footfall keeps its events and their rules."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format

from server.store import EventQuery, EventRow, TimeBound, open_store
from server.store.migrations import MIGRATIONS, statement_for

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


def row(visitor: str, time: str) -> EventRow:
    event = json_format.ParseDict({"eventType": "home-page-view", "visitorId": visitor,
                                   "eventTime": time}, user_event_pb2.UserEvent())
    return EventRow.from_event(CATALOG, event, joined=True)


def test_version_2_database_upgrades_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL)")
    for version, description, statements in MIGRATIONS[:2]:
        for statement in statements:
            sql = statement_for(statement, "sqlite")
            assert sql is not None
            conn.execute(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, description))
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
