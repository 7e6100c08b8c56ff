"""Which index serves which read of events: the plans SQLite picks for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.store import EventQuery, TimeBound
from server.store.rows import where_clause
from server.store.sql import SqlStore
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


def recording_reads(store: SqlStore[Any]) -> list[tuple[str, list[Any]]]:
    """The reads `store` makes from now on, each (SQL, parameters)."""
    seen: list[tuple[str, list[Any]]] = []
    fetch = store._fetch

    def recorded(sql: str, params: Any) -> list[Any]:
        seen.append((sql, list(params)))
        return fetch(sql, params)

    stream = store._stream

    def streamed(sql: str, params: Any, size: int) -> Any:
        seen.append((sql, list(params)))
        return stream(sql, params, size)

    store._fetch = recorded  # type: ignore[method-assign, assignment]
    store._stream = streamed  # type: ignore[method-assign, assignment]
    return seen


def console_plan(store: SqliteStore, read: Any) -> str:
    """The plan of the one query `read(store)` runs."""
    seen = recording_reads(store)
    read(store)
    [(sql, params)] = seen
    return plan(store, sql, params)


VISITOR = EventQuery(CATALOG, visitor_ids=("v1",))


@pytest.mark.parametrize("read", [
    lambda s: s.user_events_newest(VISITOR, 50),
    lambda s: s.user_events_newest(VISITOR, 50, (1_000, 7)),  # a later page
    lambda s: s.user_events_after(VISITOR, 7, 50),
], ids=["newest", "newest-later-page", "after"])
def test_the_console_finds_a_visitors_events_by_id_bucket(store: SqliteStore, read: Any) -> None:
    found = console_plan(store, read)
    assert "user_events_visitor (catalog_id=? AND <expr>=? AND visitor_id=?" in found


@pytest.mark.parametrize("terms", [
    {},
    {"event_types": ("search",)},
    {"joined": True},
    {"after": TimeBound(1_000, True), "before": TimeBound(9_000, False)},
    {"after": TimeBound(1_000, True, 5), "before": TimeBound(9_000, False, 5)},
    {"after": TimeBound(1_000, True)},
    {"event_types": ("search",), "after": TimeBound(1_000, True),
     "before": TimeBound(9_000, False)},
], ids=["all", "type", "joined", "time-range", "time-range-nanos", "from-a-time",
        "type-and-time-range"])
def test_a_watch_walks_the_rowid_from_where_it_is(
        store: SqliteStore, terms: dict[str, Any]) -> None:
    """What came since its position, in id order, up to its limit: not every entry of
    the catalog, nor the whole range from the time index (a filter with both ends of a
    time range took SQLite there: 300 such watches held every store thread, and
    another project's one-page list waited seconds), nor every entry of its id bucket
    sorted by id (with no statistics SQLite took the bucketed user index for a filter
    of event types: about 14 ms a read whatever it found)."""
    found = console_plan(store, lambda s: s.user_events_after(EventQuery(CATALOG, **terms),
                                                              70_000, 50))
    assert "SEARCH user_events USING INTEGER PRIMARY KEY (rowid>?)" in found
    assert "user_events_user" not in found and "user_events_dedup" not in found
    # (no sort of the rows walked: the page's own sorts come after it, over the page)
    walked = found.split("SEARCH user_events USING ")[1].split("SCAN (subquery")[0]
    assert "TEMP B-TREE" not in walked
