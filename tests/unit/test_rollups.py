"""The per-product-per-day rollups (server/store/rollups.py) on memory, SQLite and
PostgreSQL: kept exact by every write, import, purge, rejoin and reset, filled
by their migration, and read by the per-product table for whole days only."""

from __future__ import annotations

import itertools
import sqlite3
from typing import Any

import pytest
from footfall.insights.v1 import insights_pb2
from footfall.retail.v2 import user_event_pb2

from server.insights import tables
from server.store import EventQuery, EventRow, open_store, rollups
from server.store.rollups import product_counts
from server.store.rows import OperationRecord, Progress, Step

from . import test_store

store_url, stores, store = test_store.store_url, test_store.stores, test_store.store

MIDNIGHT = 1_699_920_000  # seconds: a UTC midnight
HOUR, DAY = 3600, 86400
_names = itertools.count()


def event(kind: str, time: int, product: str = "p1", price: float = 0.0,
          currency: str = "", quantity: int | None = None,
          visitor: str = "v1") -> user_event_pb2.UserEvent:
    made = user_event_pb2.UserEvent(event_type=kind, visitor_id=visitor)
    made.event_time.FromSeconds(time)
    detail = made.product_details.add()
    detail.product.id = product
    detail.product.price_info.price = price
    detail.product.price_info.currency_code = currency
    if quantity is not None:
        detail.quantity.value = quantity
    return made


def new_catalog() -> str:
    return f"projects/p/locations/global/catalogs/r{next(_names)}"


def rows(catalog: str, *events: user_event_pb2.UserEvent) -> list[EventRow]:
    return [EventRow.from_event(catalog, e, joined=True) for e in events]


def step(store: Any, catalog: str, work: Step) -> None:
    """Run `work` as one step of a new operation."""
    name = f"{catalog}/operations/o{next(_names)}"
    store.create_operation(OperationRecord(name, "k", False, 1, b"", b""))
    store.claim_operation("me", 0, 10**12, lambda _: False)
    store.run_step(name, "me", work, 10**12, lambda _: Progress(b"", b"", True))


def table(store: Any, catalog: str, start: int | None = None, end: int | None = None
          ) -> tuple[dict[str, tuple[Any, ...]], int]:
    """{product: (views, add-to-carts, purchases, units, {currency: revenue})}, events read."""
    request = insights_pb2.ListProductStatsRequest(parent=catalog, page_size=1000)
    if start is not None:
        request.start_time.FromSeconds(start)
    if end is not None:
        request.end_time.FromSeconds(end)
    answer = tables.list_product_stats(store, request)
    return {r.product_id: (r.views, r.add_to_carts, r.purchases, r.units,
                           {m.currency_code: m.amount for m in r.revenue})
            for r in answer.products}, answer.events_read


def test_duplicates_in_later_writes_and_imports_count_once(store: Any) -> None:
    catalog = new_catalog()
    bought = event("purchase-complete", MIDNIGHT + HOUR, price=1.5, currency="EUR", quantity=2)
    viewed = event("detail-page-view", MIDNIGHT + HOUR)
    store.write_user_events(rows(catalog, bought, viewed, viewed))
    store.write_user_events(rows(catalog, bought))
    step(store, catalog, Step(insert_events=rows(catalog, viewed, bought)))
    assert table(store, catalog)[0] == {"p1": (1, 0, 1, 2, {"EUR": 3.0})}
    assert sorted(store.product_days(catalog, None, None)) == [
        ("", "*", 2, 0, 0, 0, 0, 0.0), ("p1", "", 1, 0, 1, 2, 0, 0.0),
        ("p1", "EUR", 0, 0, 0, 0, 0, 3.0)]


def test_an_imported_row_without_counts_is_counted_from_its_payload(store: Any) -> None:
    catalog = new_catalog()
    [made] = rows(catalog, event("add-to-cart", MIDNIGHT, product="p2"))
    bare = EventRow(made.catalog, made.event_type, made.visitor_id, made.user_id,
                    made.event_time_us, made.joined, made.payload, made.key)
    assert bare.counts is None
    step(store, catalog, Step(insert_events=[bare]))
    assert table(store, catalog)[0] == {"p2": (0, 1, 0, 0, {})}


def test_purging_every_event_of_a_product_lists_it_no_more(store: Any) -> None:
    catalog = new_catalog()
    store.write_user_events(rows(
        catalog, event("purchase-complete", MIDNIGHT, price=10.0, visitor="gone"),
        event("detail-page-view", MIDNIGHT, product="p2", visitor="gone"),
        event("detail-page-view", MIDNIGHT + DAY, product="p2", visitor="kept")))
    step(store, catalog, Step(delete_events=EventQuery(catalog, visitor_ids=("gone",)),
                              delete_until_id=2**62, delete_limit=1000))
    assert table(store, catalog)[0] == {"p2": (1, 0, 0, 0, {})}
    # no row is left counting nothing: the purged day has none
    assert store.product_days(catalog, MIDNIGHT // DAY, MIDNIGHT // DAY + 1) == []


def test_a_rejoin_that_changes_a_price_or_a_product_moves_its_counts(store: Any) -> None:
    catalog = new_catalog()
    bought = event("purchase-complete", MIDNIGHT, price=1.5, currency="USD", quantity=2)
    viewed = event("detail-page-view", MIDNIGHT, product="p1")
    store.write_user_events(rows(catalog, bought, viewed))
    ids = {user_event_pb2.UserEvent.FromString(payload).event_type: i
           for i, payload in store.list_user_events(EventQuery(catalog), 10)}
    repriced = event("purchase-complete", MIDNIGHT, price=10.0, currency="EUR", quantity=2)
    renamed = event("detail-page-view", MIDNIGHT, product="p9")
    step(store, catalog, Step(update_events=[
        (ids["purchase-complete"], True, repriced.SerializeToString(deterministic=True), None),
        (ids["detail-page-view"], True, renamed.SerializeToString(deterministic=True), None)]))
    assert table(store, catalog)[0] == {"p1": (0, 0, 1, 2, {"EUR": 20.0}),
                                        "p9": (1, 0, 0, 0, {})}


def test_a_catalog_reset_takes_its_rollups_away(store: Any) -> None:
    catalog, other = new_catalog(), new_catalog()
    viewed = event("detail-page-view", MIDNIGHT)
    store.write_user_events(rows(catalog, viewed) + rows(other, viewed))
    store.reset_catalog(catalog)
    assert table(store, catalog)[0] == {}
    store.write_user_events(rows(catalog, viewed))
    assert table(store, catalog)[0] == {"p1": (1, 0, 0, 0, {})}
    assert table(store, other)[0] == {"p1": (1, 0, 0, 0, {})}


class ReadsSeen:
    """The store, noting the time ranges of the events read through it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.ranges: list[tuple[int | None, int | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def typed_rows(self, query: EventQuery, *args: Any) -> Any:
        if args[-1] is None:  # (its first page)
            self.ranges.append((query.after and query.after.micros,
                                query.before and query.before.micros))
        return self._store.typed_rows(query, *args)


def test_whole_days_come_from_the_rollups_and_part_days_from_the_events(store: Any) -> None:
    catalog = new_catalog()
    store.write_user_events(rows(catalog, *(
        event("detail-page-view", MIDNIGHT + day * DAY + 12 * HOUR) for day in range(3))))
    seen = ReadsSeen(store)
    # 06:00 on day 0 to 18:00 on day 2: day 1 is whole, the others are read as events
    start, end = MIDNIGHT + 6 * HOUR, MIDNIGHT + 2 * DAY + 18 * HOUR
    assert table(seen, catalog, start, end) == ({"p1": (3, 0, 0, 0, {})}, 3)
    assert seen.ranges == [(start * 10**6, (MIDNIGHT + DAY) * 10**6),
                           ((MIDNIGHT + 2 * DAY) * 10**6, end * 10**6)]
    # at midnights, or unbounded: whole days only, no event read
    seen.ranges.clear()
    assert table(seen, catalog, MIDNIGHT, MIDNIGHT + 2 * DAY) == ({"p1": (2, 0, 0, 0, {})}, 2)
    assert table(seen, catalog) == ({"p1": (3, 0, 0, 0, {})}, 3)
    assert seen.ranges == []
    # within one day: the events
    assert table(seen, catalog, MIDNIGHT + HOUR, MIDNIGHT + 13 * HOUR) == (
        {"p1": (1, 0, 0, 0, {})}, 1)
    assert seen.ranges == [((MIDNIGHT + HOUR) * 10**6, (MIDNIGHT + 13 * HOUR) * 10**6)]


def test_an_event_before_1970_counts_in_its_own_day(store: Any) -> None:
    catalog = new_catalog()
    store.write_user_events(rows(catalog, event("detail-page-view", -1)))
    assert sorted(store.product_days(catalog, -1, 0)) == [("", "*", 1, 0, 0, 0, 0, 0.0),
                                                          ("p1", "", 1, 0, 0, 0, 0, 0.0)]
    assert store.product_days(catalog, 0, None) == []


def test_an_event_counts_its_products_once_and_its_unpriced_units(store: Any) -> None:
    made = event("purchase-complete", MIDNIGHT, product="p1", quantity=2)
    again = made.product_details.add()
    again.product.id = "p1"
    again.product.price_info.price = 2.0
    assert product_counts(made) == (("p1", "", 0, 0, 1, 3, 2, 0.0),
                                    ("p1", "USD", 0, 0, 0, 0, 0, 2.0))
    catalog = new_catalog()
    store.write_user_events(rows(catalog, made))
    answer = tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(
        parent=catalog))
    assert answer.notes == [tables.PRICE_NOTE.format(2)]


def test_an_upgraded_store_counts_the_events_it_already_held(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if store_url == "memory://":
        pytest.skip("memory:// is one process's own")
    monkeypatch.setattr(rollups, "_FILL_PAGE", 2)  # pages that add to the same rows
    catalog = new_catalog()
    first = open_store(store_url)
    try:
        first.write_user_events(rows(
            catalog, event("purchase-complete", MIDNIGHT, price=1.5, quantity=3),
            event("detail-page-view", MIDNIGHT + DAY), event("search", MIDNIGHT),
            event("detail-page-view", MIDNIGHT + DAY + 1)))
        expected = sorted(first.product_days(catalog, None, None))
    finally:
        first.close()
    forget = ["DROP TABLE product_days", "DELETE FROM schema_migrations WHERE version = 9"]
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url[len("sqlite:///"):]) as conn:
            for sql in forget:
                conn.execute(sql)
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            for sql in forget:
                conn.execute(sql)
    upgraded = open_store(store_url)
    try:
        assert sorted(upgraded.product_days(catalog, None, None)) == expected == [
            ("", "*", 3, 0, 0, 0, 0, 0.0), ("p1", "", 2, 0, 1, 3, 0, 0.0),
            ("p1", "USD", 0, 0, 0, 0, 0, 4.5)]
    finally:
        upgraded.close()
