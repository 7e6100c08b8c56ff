"""The shared SQL layer's dialects: one statement, spelled for each driver.

What the statements do is tests/unit/test_store.py's business (every backend)."""

from __future__ import annotations

import pytest

from server.store.postgres import POSTGRES
from server.store.rows import EventQuery, TimeBound
from server.store.sql import Statements
from server.store.sqlite import SQLITE


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
