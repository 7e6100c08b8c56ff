"""The shared SQL layer's dialects: one statement, spelled for each driver.

What the statements do is tests/unit/test_store.py's business (every backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.store.postgres import POSTGRES
from server.store.rows import EventQuery, Step, TimeBound
from server.store.sql import Statements
from server.store.sqlite import SQLITE, SqliteStore

from .test_store import CATALOG, OPS, SECOND, never, operation, row, step_progress


def test_statements_are_written_once_and_spelled_for_each_driver() -> None:
    sqlite, postgres = Statements(SQLITE), Statements(POSTGRES)
    assert sqlite.lease == ("SELECT lease_owner, cancel_requested FROM operations "
                            "WHERE name = ?")
    assert postgres.lease == ("SELECT lease_owner, cancel_requested FROM operations "
                              "WHERE name = %s FOR UPDATE")
    assert postgres.products_containing.count("%s") == 4
    assert "position(%s::bytea in product) > 0" in postgres.products_containing
    for name, text in vars(postgres).items():
        if isinstance(text, str):
            assert "?" not in text, name


def test_a_percent_sign_is_refused_where_psycopg_would_read_it_as_a_parameter() -> None:
    assert SQLITE.spell("SELECT 5 % ?") == "SELECT 5 % ?"
    with pytest.raises(ValueError, match="literal %"):
        POSTGRES.spell("SELECT 5 % ?")


def test_a_list_is_one_array_or_one_parameter_a_value() -> None:
    assert SQLITE.among("kind", ["a", "b"]) == ("kind IN (?, ?)", ["a", "b"])
    assert POSTGRES.among("kind", ["a", "b"]) == ("kind = ANY(%s)", [["a", "b"]])


def test_a_querys_time_range_is_its_catalog_and_time_bounds_alone() -> None:
    after, before = TimeBound(10, True), TimeBound(20, False, 5)
    query = EventQuery("c", event_types=("view",), visitor_ids=("v",), user_ids=("u",),
                       after=after, before=before, joined=True, transports=(1,))
    assert query.time_range() == EventQuery("c", after=after, before=before)
    assert EventQuery("c", joined=False).time_range() == EventQuery("c")


def test_a_list_of_any_length_is_one_of_few_statement_texts_on_sqlite() -> None:
    # Each count of marks is a text sqlite3 keeps parsed in a connection's cache.
    texts = {SQLITE.among("id", list(range(n)))[0] for n in range(1, 1001)}
    assert len(texts) == 11  # 1, 2, 4, ... 1,024 marks
    assert SQLITE.among("id", [7, 8, 9]) == ("id IN (?, ?, ?, ?)", [7, 8, 9, 9])
    assert SQLITE.among("id", list(range(9000)))[0].count("?") == 9000  # (under SQLite's limit)


def test_a_rejoins_batches_of_every_size_share_few_statements(tmp_path: Path) -> None:
    # A rejoin reads each batch's events by their ids before it rewrites them: a
    # statement text for each count of ids, 31 MiB of the writer's cache over 512.
    store = SqliteStore(str(tmp_path / "events.db"))
    try:
        store.write_user_events([row(f"v{n}", joined=False) for n in range(60)])
        ids = [row_id for row_id, _ in store.list_user_events(EventQuery(CATALOG), 100)]
        store.create_operation(operation("rejoin"))
        store.claim_operation("w1", SECOND, 30 * SECOND, never)
        counts: list[int] = []

        def traced(sql: str) -> None:
            if "FROM user_events WHERE id IN (" in sql:
                counts.append(sql.split("WHERE id IN (")[1].split(")")[0].count(",") + 1)

        store._writer_conn.set_trace_callback(traced)  # noqa: SLF001
        for n in range(1, 61):
            step = Step(update_events=[(i, True, b"rejoined", None) for i in ids[:n]])
            store.run_step(OPS + "rejoin", "w1", step, 30 * SECOND, step_progress([]))
        assert len(counts) == 60
        assert sorted(set(counts)) == [1, 2, 4, 8, 16, 32, 64]
        assert len(store.scan_user_events(EventQuery(CATALOG, joined=True), 100)) == 60
    finally:
        store.close()
