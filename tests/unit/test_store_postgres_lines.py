"""A one-row write's rollup lines (rollups.new_lines) go to PostgreSQL as parameters
of its one statement, a VALUES list upserted as it is, not as JSON read, grouped,
summed and sorted by the database (its CPU per write: every batch at one caller);
JSON stays for a row of more lines than ONE_ROW_LINES, or of two lines that
PostgreSQL's text makes one (NUL kept as U+FFFD), which it sums. So does the branch
and generation a joined write's products were read as of. What is sent is read
from libpq's trace of the writer's connection (a statement shape not prepared yet is
sent with its text). Skipped unless FOOTFALL_TEST_POSTGRES_DSN is set.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator

import pytest
from footfall.retail.v2 import user_event_pb2
from psycopg import pq

from server.store.postgres import ONE_ROW_LINES, PostgresStore
from server.store.rows import EventRow

from .test_store_postgres import BRANCH, CATALOG, product, row, write_joined

MIDNIGHT = 1_699_920_000  # seconds: a UTC midnight
DAY = 1_699_920_000 // 86400


@pytest.fixture
def store(postgres_url: str, postgres_databases: object) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_url)
    try:
        opened.write_user_events([row("warm-up")])  # its catalog committed
        yield opened
    finally:
        opened.close()
        postgres_databases.empty(postgres_url)  # type: ignore[attr-defined]


def sent(store: PostgresStore, it: Callable[[], object]) -> str:
    """What the writer's connection sent while `it` ran (libpq's trace, its lines
    from the client)."""
    conn = store._writer_conn  # noqa: SLF001
    assert conn is not None
    with tempfile.NamedTemporaryFile("r") as trace:
        fd = os.open(trace.name, os.O_WRONLY)
        try:
            conn.pgconn.trace(fd)
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                it()
            finally:
                conn.pgconn.untrace()
        finally:
            os.close(fd)
        return "\n".join(line for line in trace.read().splitlines() if line.startswith("F"))


def viewed(*products: str, visitor: str = "v1") -> EventRow:
    """One detail-page-view of `products`, a row of its own."""
    made = user_event_pb2.UserEvent(event_type="detail-page-view", visitor_id=visitor)
    made.event_time.FromSeconds(MIDNIGHT + 60)
    for product_id in products:
        made.product_details.add().product.id = product_id
    return EventRow.from_event(CATALOG, made, joined=True)


@pytest.mark.parametrize("products", [1, 3, ONE_ROW_LINES - 1])
def test_a_one_row_write_sends_its_rollup_lines_as_parameters(
        store: PostgresStore, products: int) -> None:
    ids = [f"p{n}" for n in range(products)]
    text = sent(store, lambda: store.write_user_events([viewed(*ids)]))
    assert "INSERT INTO product_days" in text and "VALUES" in text, text
    assert "json_to_recordset" not in text, text
    store.write_user_events([viewed(*ids, visitor="v2")])  # (the same counts, added)
    assert sorted(store.product_days(CATALOG, DAY, DAY + 1)) == [
        ("", "*", 2, 0, 0, 0, 0, 0.0), *((pid, "", 2, 0, 0, 0, 0, 0.0) for pid in ids)]


def test_a_row_of_more_lines_sends_them_as_json(store: PostgresStore) -> None:
    ids = [f"p{n}" for n in range(ONE_ROW_LINES)]  # (and the line of the events)
    text = sent(store, lambda: store.write_user_events([viewed(*ids)]))
    assert "json_to_recordset" in text, text
    assert sorted(store.product_days(CATALOG, DAY, DAY + 1)) == [
        ("", "*", 1, 0, 0, 0, 0, 0.0), *((pid, "", 1, 0, 0, 0, 0, 0.0) for pid in ids)]


def test_two_lines_one_in_postgresql_are_summed_as_json(store: PostgresStore) -> None:
    # Two products to Python, one to PostgreSQL: as parameters they were one row
    # upserted twice by one statement, which PostgreSQL refuses (the write failed).
    text = sent(store, lambda: store.write_user_events([viewed("p\0x", "p\ufffdx")]))
    assert "json_to_recordset" in text, text
    assert sorted(store.product_days(CATALOG, DAY, DAY + 1)) == [
        ("", "*", 1, 0, 0, 0, 0, 0.0), ("p\ufffdx", "", 2, 0, 0, 0, 0, 0.0)]


def test_a_joined_write_of_one_catalog_asks_about_its_branch_without_json(
        store: PostgresStore) -> None:
    # Whether the products it was joined with changed, by the branch and generation
    # they were read as of, as parameters of their own: JSON of one record, read into
    # records, looked up and aggregated, cost the database 20-25 us more a write.
    store.create_product(BRANCH, "sku-1", product("Title", 10.0))
    text = sent(store, lambda: write_joined(store, "v1"))
    assert "footfall_branch_unchanged" in text and "::json" not in text, text
    assert "footfall_products_unchanged" not in text, text
