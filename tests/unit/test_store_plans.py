"""Which index serves which read of events: the plans SQLite picks for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.store import EventQuery, TimeBound
from server.store.rows import where_clause
from server.store.sqlite import SqliteStore

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "events.db"))
    yield opened
    opened.close()


def plan(store: SqliteStore, sql: str, params: list[Any]) -> str:
    with store._reader() as conn:
        return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize(("terms", "index"), [
    ({"visitor_ids": ("v1",)}, "user_events_visitor"),
    ({"user_ids": ("u1",)}, "user_events_user"),
])
def test_a_visitor_or_user_filter_seeks_its_index_once_per_id_bucket(
        store: SqliteStore, terms: dict[str, Any], index: str) -> None:
    where, params = where_clause(EventQuery(CATALOG, **terms))
    found = plan(store, f"SELECT id FROM user_events WHERE {where} ORDER BY id DESC LIMIT 50",
                 params)
    column = "visitor_id" if "visitor_ids" in terms else "user_id"
    assert f"{index} (catalog_id=? AND <expr>=? AND {column}=?)" in found


def test_the_newest_events_of_a_catalog_are_read_from_the_time_index(
        store: SqliteStore) -> None:
    where, params = where_clause(EventQuery(CATALOG, event_types=("search",)))
    found = plan(store, f"SELECT id, event FROM user_events WHERE {where} "
                 "ORDER BY event_time_us DESC LIMIT 50", params)
    assert "user_events_dedup (catalog_id=?)" in found
    assert "TEMP B-TREE" not in found  # no sort: the index gives the order


def test_a_purge_bounds_its_walk_from_the_time_index_alone(store: SqliteStore) -> None:
    query = EventQuery(CATALOG, visitor_ids=("v1",), before=TimeBound(10, False))
    where, params = where_clause(EventQuery(CATALOG, before=query.before))
    found = plan(store, f"SELECT MIN(id), MAX(id) FROM user_events WHERE {where}", params)
    assert "COVERING INDEX user_events_dedup (catalog_id=? AND event_time_us<?)" in found
    assert store.event_id_range(query) is None
