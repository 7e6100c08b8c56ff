"""The per-product-per-day rollups (server/store/rollups.py) on memory, SQLite and
PostgreSQL: kept exact by every write, import, purge, rejoin and reset, filled
by their migration, and read by the per-product table for whole days only."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from footfall.insights.v1 import insights_pb2
from footfall.retail.v2 import purge_config_pb2, user_event_pb2
from google.longrunning import operations_pb2

from server.clock import SystemClock
from server.insights import tables
from server.operations.runner import JobContext, StopRequested
from server.retail import purge
from server.store import EventQuery, EventRow, open_store, packed, rollups, sql, sqlite
from server.store.group_commit import GroupCommitter
from server.store.rollups import product_counts
from server.store.rows import LeaseLost, OperationRecord, Progress, Step

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


def test_a_batch_of_several_statements_counts_its_duplicates_once(store: Any) -> None:
    # SQLite inserts these 40 rows as two statements (32 rows, then 8): a row of the
    # second that the first stored, or that the second holds twice, adds nothing.
    catalog = new_catalog()
    views = [event("detail-page-view", MIDNIGHT + HOUR, visitor=f"v{i}") for i in range(36)]
    store.write_user_events(rows(catalog, *views, views[3], views[33], views[0], views[35]))
    assert store.count_user_events(EventQuery(catalog)) == 36
    assert table(store, catalog)[0] == {"p1": (36, 0, 0, 0, {})}


def test_a_statement_of_rows_stored_before_and_duplicated_counts_only_the_new(
        store: Any) -> None:
    # SQLite inserts these 64 rows in one statement, which skips 14: the 60 keys it holds
    # are looked up again (as 32 and 28) to know which 50 it stored.
    catalog = new_catalog()
    views = [event("detail-page-view", MIDNIGHT + HOUR, visitor=f"v{i}") for i in range(60)]
    store.write_user_events(rows(catalog, *views[:10]))
    store.write_user_events(rows(catalog, *views, *views[5:9]))
    assert store.count_user_events(EventQuery(catalog)) == 60
    assert table(store, catalog)[0] == {"p1": (60, 0, 0, 0, {})}
    assert sorted(store.product_days(catalog, None, None)) == [
        ("", "*", 60, 0, 0, 0, 0, 0.0), ("p1", "", 60, 0, 0, 0, 0, 0.0)]


def test_the_keys_of_a_statement_that_skipped_rows_are_looked_up_in_few_shapes(
        tmp_path: Any) -> None:
    # Each row count is a statement SQLite parses anew unless its cache holds it.
    store = sqlite.SqliteStore(str(tmp_path / "events.db"))
    try:
        catalog = new_catalog()
        views = [event("detail-page-view", MIDNIGHT + HOUR, visitor=f"v{i}") for i in range(60)]
        store.write_user_events(rows(catalog, *views[:10]))
        looked_up: list[int] = []
        store._writer_conn.set_trace_callback(  # noqa: SLF001
            lambda sql: looked_up.append(sql.count("),")) if "AS k JOIN" in sql else None)
        store.write_user_events(rows(catalog, *views, *views[5:9]))
        assert [keys + 1 for keys in looked_up] == [32, 28]
        assert table(store, catalog)[0] == {"p1": (60, 0, 0, 0, {})}
    finally:
        store.close()


@pytest.mark.parametrize("product_days", [33, 63, 513, 545])
def test_a_batch_of_product_days_across_statement_shapes_counts_exactly(
        store: Any, product_days: int) -> None:
    # SQLite upserts a batch's rows (its products' and the day's EVENTS) in statements of
    # a few row counts (shapes.py): 33 as 32 and 1, 513 as 512 and 1. The second batch
    # adds to rows already there.
    catalog = new_catalog()
    products = [f"p{i:04}" for i in range(product_days - 1)]
    for visitor in ("v1", "v2"):
        store.write_user_events(rows(catalog, *(
            event("detail-page-view", MIDNIGHT + HOUR, product=p, visitor=visitor)
            for p in products)))
    assert table(store, catalog)[0] == {p: (2, 0, 0, 0, {}) for p in products}
    assert sorted(store.product_days(catalog, None, None)) == [
        ("", "*", 2 * len(products), 0, 0, 0, 0, 0.0),
        *((p, "", 2, 0, 0, 0, 0, 0.0) for p in products)]


class _Recorded:
    """A connection that records what it is given to run (Executes)."""

    def __init__(self) -> None:
        self.executed: list[tuple[str, list[Any]]] = []

    def execute(self, query: str, params: Any = ()) -> None:
        self.executed.append((query, list(params)))


def test_a_tally_is_upserted_by_statements_of_few_shapes_whatever_its_rows() -> None:
    # Each statement text is parsed anew unless sqlite3's cache of a connection's holds it.
    texts = set()
    for products in range(1100):
        tally = rollups.Tally()
        counts = tuple((f"p{i:04}", "", 1, 0, 0, 0, 0, 0.0) for i in range(products))
        tally.add(1, MIDNIGHT * 1_000_000, counts)
        db = _Recorded()
        tally.apply(db, sqlite.SQLITE)
        upserted = [params[i:i + 11] for query, params in db.executed
                    for i in range(0, len(params), 11)]
        assert [row[2] for row in upserted] == ["", *(p for p, *_ in counts)]
        texts.update(query for query, _ in db.executed)
    assert len(texts) == 47


def test_one_batch_of_new_rows_and_duplicates_counts_only_the_new(store: Any) -> None:
    # PostgreSQL sends a batch at once (pipeline mode) and counts it in the statement
    # that inserts it: what dedup skips, in the batch or already stored, adds nothing.
    catalog = new_catalog()
    viewed = event("detail-page-view", MIDNIGHT + HOUR)
    store.write_user_events(rows(catalog, viewed))
    bought = event("purchase-complete", MIDNIGHT + HOUR, product="p2", price=2.0, quantity=3)
    carted = event("add-to-cart", MIDNIGHT + 2 * HOUR, product="p2")
    other = event("home-page-view", MIDNIGHT + HOUR)
    other.ClearField("product_details")
    seen_again = event("detail-page-view", MIDNIGHT + DAY, visitor="v2")
    commits = store.commits
    store.write_user_events(rows(catalog, viewed, bought, carted, bought, other, seen_again,
                                 viewed, seen_again))
    assert store.commits == commits + 1
    assert store.count_user_events(EventQuery(catalog)) == 5
    assert table(store, catalog)[0] == {"p1": (2, 0, 0, 0, {}),
                                        "p2": (0, 1, 1, 3, {"USD": 6.0})}
    assert sorted(store.product_days(catalog, None, None)) == [
        ("", "*", 4, 0, 0, 0, 0, 0.0), ("p1", "", 2, 0, 0, 0, 0, 0.0),
        ("p2", "", 0, 1, 1, 3, 0, 0.0), ("p2", "USD", 0, 0, 0, 0, 0, 6.0)]


def test_revenue_of_one_batch_is_summed_in_the_order_of_its_events(store: Any) -> None:
    catalog = new_catalog()
    store.write_user_events(rows(catalog, *(
        event("purchase-complete", MIDNIGHT + i, price=price, currency="EUR", quantity=1,
              visitor=f"v{i}") for i, price in enumerate((1.0, 2.0**-53, 2.0**-53)))))
    # (1 + 2**-53) + 2**-53 == 1.0, 1 + (2**-53 + 2**-53) == 1 + 2**-52: as Python sums
    assert table(store, catalog)[0]["p1"][4] == {"EUR": 1.0}


def test_a_product_id_with_nul_is_counted(store: Any) -> None:
    # (PostgreSQL's text holds no NUL: it keeps U+FFFD, as for a visitor id)
    catalog = new_catalog()
    store.write_user_events(rows(catalog, event("detail-page-view", MIDNIGHT, product="p\0x")))
    [(product, currency, views, *_)] = [
        line for line in store.product_days(catalog, None, None) if line[:2] != ("", "*")]
    assert (product.replace("\ufffd", "\0"), currency, views) == ("p\0x", "", 1)


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


def test_a_project_reset_takes_the_rollups_of_its_catalogs_away(store: Any) -> None:
    catalog, beside = new_catalog(), new_catalog()
    elsewhere = "projects/pp/locations/global/catalogs/r"
    viewed = event("detail-page-view", MIDNIGHT)
    store.write_user_events(rows(catalog, viewed) + rows(beside, viewed) + rows(elsewhere, viewed))
    store.reset_project("p")
    assert table(store, catalog)[0] == table(store, beside)[0] == {}
    assert table(store, elsewhere)[0] == {"p1": (1, 0, 0, 0, {})}
    store.write_user_events(rows(catalog, viewed))
    assert table(store, catalog)[0] == {"p1": (1, 0, 0, 0, {})}


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


@pytest.mark.parametrize(("user_id", "marker"), [("", packed.PACKED), ("u1", packed.PACKED_USER),
                                                ("u1", None)])
def test_a_stored_event_counts_as_the_event_it_holds(user_id: str, marker: bytes | None) -> None:
    # The rollups read a stored event's lines without rebuilding it first: packed
    # with its user id or without, or kept whole, it counts as the event it holds.
    made = event("purchase-complete", MIDNIGHT + 7, product="p1", price=2.5, currency="EUR",
                 quantity=3)
    made.product_details.add().product.id = "p2"
    made.user_info.user_id = user_id
    made.user_info.user_agent = "agent"
    made.uri = "https://shop.example/p1"
    payload = made.SerializeToString(deterministic=True)
    stored = payload if marker is None else packed.pack(
        payload, made.event_type, made.visitor_id, user_id, (MIDNIGHT + 7) * 10**6, 0)
    assert stored[:1] == (marker or payload[:1])
    assert rollups.counts_of_stored(stored, made.event_type) == product_counts(made) == (
        ("p1", "", 0, 0, 1, 3, 0, 0.0), ("p2", "", 0, 0, 1, 1, 1, 0.0),
        ("p1", "EUR", 0, 0, 0, 0, 0, 7.5))
    assert rollups.counts_of_stored(stored, "search") is None


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
    forget = ["DROP TABLE product_days", "DROP TABLE rollup_gaps",
              "DELETE FROM schema_migrations WHERE version = 9"]
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


# -- purges by time alone: whole days dropped, not decoded (rollups.Gap) -------------------


class Purging:
    """The store, with `after_range` run once the purge has read its id range and
    `after_step(n)` after its n-th committed batch (1, 2, ...)."""

    def __init__(self, store: Any, after_range: Any = None, after_step: Any = None) -> None:
        self._store = store
        self._after_range, self._after_step = after_range, after_step
        self.steps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def event_id_range(self, query: EventQuery) -> Any:
        ids = self._store.event_id_range(query)
        if self._after_range is not None:
            self._after_range()
        return ids

    def run_step(self, *args: Any) -> Any:
        result = self._store.run_step(*args)
        self.steps += 1
        if self._after_step is not None:
            self._after_step(self.steps)
        return result


def start_purge(store: Any, catalog: str, text: str) -> str:
    name = f"{catalog}/operations/{purge.KIND}-{next(_names)}"
    request = purge_config_pb2.PurgeUserEventsRequest(parent=catalog, filter=text, force=True)
    store.create_operation(OperationRecord(name, purge.KIND, False, 1,
                                           request.SerializeToString(), b""))
    return name


def run_purge(store: Any, name: str, seen: Any = None) -> None:
    """Run the purge `name` as a worker would (claimed, then its job), through `seen`."""
    record = store.claim_operation("me", 0, 10**12, lambda _: False)
    assert record is not None and record.name == name
    purge.run_purge(JobContext(record, seen or store, SystemClock(), "me", 10**12,
                               threading.Event()))


def stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime('"%Y-%m-%dT%H:%M:%SZ"')


class Decoded:
    """Counts the events the rollups decode (rollups.counts_of_payload, and
    counts_of_stored for stored ones)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("counts_of_payload", "counts_of_stored"):
            real = getattr(rollups, name)

            def counting(*args: Any, real: Any = real) -> Any:
                self.count += 1
                return real(*args)

            monkeypatch.setattr(rollups, name, counting)


def history(days: int = 4) -> list[user_event_pb2.UserEvent]:
    """Each day: a view at 03:00 and 15:00, a purchase at 09:00 and an add-to-cart
    at 21:00, of products p0..p2; and a search (counts nowhere)."""
    made = []
    for day in range(days):
        at = MIDNIGHT + day * DAY
        made += [event("detail-page-view", at + 3 * HOUR, product=f"p{day % 3}"),
                 event("purchase-complete", at + 9 * HOUR, product="p1", price=1.5,
                       currency="EUR", quantity=day + 1),
                 event("detail-page-view", at + 15 * HOUR, product="p2"),
                 event("add-to-cart", at + 21 * HOUR, product=f"p{(day + 1) % 3}"),
                 event("search", at + 12 * HOUR)]
    return made


def seconds_of(made: user_event_pb2.UserEvent) -> int:
    return made.event_time.seconds


def assert_counted_as(store: Any, catalog: str, kept: list[user_event_pb2.UserEvent]) -> None:
    """The catalog's rollups are exactly those of `kept` written afresh."""
    mirror = new_catalog()
    store.write_user_events(rows(mirror, *kept))
    assert sorted(store.product_days(catalog, None, None)) == sorted(
        store.product_days(mirror, None, None))
    assert table(store, catalog) == table(store, mirror)


# 12:00 on day 0 to 06:00 on day 3: days 1 and 2 whole, day 0's and day 3's edges partial
START, END = MIDNIGHT + 12 * HOUR, MIDNIGHT + 3 * DAY + 6 * HOUR
BETWEEN = f"eventTime > {stamp(START)} eventTime < {stamp(END)}"


def kept_after(made: list[user_event_pb2.UserEvent]) -> list[user_event_pb2.UserEvent]:
    return [e for e in made if not START < seconds_of(e) < END]


def test_a_purge_by_time_decodes_only_the_events_of_its_part_days(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, made = new_catalog(), history()
    store.write_user_events(rows(catalog, *made))
    decoded = Decoded(monkeypatch)
    run_purge(store, start_purge(store, catalog, BETWEEN))
    # day 0's purchase at 09:00 and view at 03:00 stay; its 15:00 view and 21:00
    # add-to-cart go, decoded, as does day 3's view at 03:00; days 1 and 2: dropped
    assert decoded.count == 3
    assert_counted_as(store, catalog, kept_after(made))
    assert store.product_days(catalog, MIDNIGHT // DAY + 1, MIDNIGHT // DAY + 3) == []


def test_a_purge_whose_steps_end_early_for_waiting_writes_ends_the_same(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Writes wait behind every step (as under load): each ends after its first chunk,
    # here one event; what the purge deletes, says and leaves counted is the same.
    monkeypatch.setattr(sql, "DELETE_CHUNK", 1)
    monkeypatch.setattr(GroupCommitter, "waiting", property(lambda _committer: True))
    catalog, made = new_catalog(), history()
    store.write_user_events(rows(catalog, *made))
    decoded = Decoded(monkeypatch)
    name = start_purge(store, catalog, BETWEEN)
    seen = Purging(store)
    run_purge(store, name, seen)
    kept = kept_after(made)
    assert seen.steps == len(made) - len(kept) + 1  # one event a step, then the end
    assert decoded.count == 3
    assert_counted_as(store, catalog, kept)
    response = purge_config_pb2.PurgeUserEventsResponse()
    operations_pb2.Operation.FromString(store.get_operation(name).operation).response.Unpack(
        response)
    assert response.purged_events_count == len(made) - len(kept)


def test_a_purge_before_a_time_or_of_every_time_drops_those_days(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, made = new_catalog(), history()
    store.write_user_events(rows(catalog, *made))
    decoded = Decoded(monkeypatch)
    run_purge(store, start_purge(store, catalog, f"eventTime < {stamp(MIDNIGHT + 2 * DAY)}"))
    assert decoded.count == 0
    assert_counted_as(store, catalog, made[10:])
    run_purge(store, start_purge(store, catalog, f"eventTime >= {stamp(MIDNIGHT)}"))
    assert decoded.count == 0
    assert store.product_days(catalog, None, None) == []


def test_a_purge_by_time_and_visitor_decodes_as_before(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, made = new_catalog(), history()
    store.write_user_events(rows(catalog, *made))
    decoded = Decoded(monkeypatch)
    run_purge(store, start_purge(store, catalog, f'{BETWEEN} visitorId = "v1"'))
    assert decoded.count == 11  # the product events between START and END
    assert_counted_as(store, catalog, kept_after(made))


def test_events_written_into_purged_whole_days_meanwhile_stay_counted(
        stores: Any, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # another replica writes, where there can be one
    store = stores()
    writer = store if store_url == "memory://" else stores()
    monkeypatch.setattr(purge, "WINDOW", 3)  # a few batches
    catalog, made = new_catalog(), history()
    store.write_user_events(rows(catalog, *made))
    late = [event("purchase-complete", MIDNIGHT + DAY + 10 * HOUR, price=2.5, quantity=3),
            event("detail-page-view", MIDNIGHT + 2 * DAY + HOUR, product="p7")]
    # after the purge read its range, before its first batch (which counts them again),
    # and after its first batch
    seen = Purging(store, after_range=lambda: writer.write_user_events(rows(catalog, late[0])),
                   after_step=lambda n: n == 1 and writer.write_user_events(
                       rows(catalog, late[1])))
    decoded = Decoded(monkeypatch)
    run_purge(store, start_purge(store, catalog, BETWEEN), seen)
    assert seen.steps > 3
    assert decoded.count == 3 + 1  # the part days' events, and the first late one
    assert_counted_as(store, catalog, kept_after(made) + late)


def test_a_cancelled_purge_counts_again_what_it_left_of_its_whole_days(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purge, "WINDOW", 4)
    catalog, made = new_catalog(), history()
    store.write_user_events(rows(catalog, *made))
    name = start_purge(store, catalog, BETWEEN)
    seen = Purging(store, after_step=lambda n: n == 1 and store.request_cancel(name))
    decoded = Decoded(monkeypatch)
    run_purge(store, name, seen)
    assert store.get_operation(name).done and seen.steps == 3  # two batches, then the end
    # ids 3-10 walked (days 0 and 1: ids 1-5, 6-10); day 2 is left, counted again
    kept = [e for i, e in enumerate(made) if not (START < seconds_of(e) < END and i < 10)]
    assert store.count_user_events(EventQuery(catalog)) == len(kept)
    assert decoded.count == 2 + 4  # day 0's two deleted, day 2's four counted again
    assert_counted_as(store, catalog, kept)


def test_a_purge_resumed_after_a_stop_keeps_its_gap_and_ends_exact(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purge, "WINDOW", 4)
    catalog, made = new_catalog(), history()
    store.write_user_events(rows(catalog, *made))
    name = start_purge(store, catalog, BETWEEN)

    def crash(n: int) -> None:
        if n == 2:
            raise StopRequested(name)  # the process stops after two committed batches

    with pytest.raises(StopRequested):
        run_purge(store, name, Purging(store, after_step=crash))
    store.release_operation(name, "me")
    late = event("add-to-cart", MIDNIGHT + 2 * DAY + HOUR, product="p8")
    store.write_user_events(rows(catalog, late))
    decoded = Decoded(monkeypatch)
    run_purge(store, name, Purging(store))
    assert decoded.count == 1  # the one part-day event left: day 3's at 03:00
    assert_counted_as(store, catalog, [*kept_after(made), late])


def test_deleting_a_running_purge_counts_again_what_it_left(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purge, "WINDOW", 7)
    catalog, made = new_catalog(), history()
    store.write_user_events(rows(catalog, *made))
    name = start_purge(store, catalog, BETWEEN)
    with pytest.raises(LeaseLost):
        run_purge(store, name, Purging(store, after_step=lambda n: store.delete_operation(name)))
    # one batch walked ids 3-9
    kept = [e for i, e in enumerate(made) if not (START < seconds_of(e) < END and i < 9)]
    assert store.count_user_events(EventQuery(catalog)) == len(kept)
    assert_counted_as(store, catalog, kept)


def test_other_purges_and_rejoins_of_events_in_a_gap_leave_the_rollups_exact(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purge, "WINDOW", 1)
    catalog, made = new_catalog(), history()
    for i, e in enumerate(made):
        e.visitor_id = f"v{i}"
    store.write_user_events(rows(catalog, *made))
    ids = {user_event_pb2.UserEvent.FromString(payload).visitor_id: i
           for i, payload in store.list_user_events(EventQuery(catalog), 100)}
    repriced = event("purchase-complete", MIDNIGHT + 2 * DAY + 9 * HOUR, price=9.0, quantity=9,
                     visitor="v11")
    name = start_purge(store, catalog, BETWEEN)

    def meanwhile(n: int) -> None:
        if n == 1:  # the gap is open: day 2's events are in it, not yet deleted
            step(store, catalog, Step(delete_events=EventQuery(catalog, visitor_ids=("v10",)),
                                      delete_until_id=2**62, delete_limit=10))
            step(store, catalog, Step(update_events=[
                (ids["v11"], True, repriced.SerializeToString(deterministic=True), None)]))

    # a later event of day 2 (the gap leaves it counted): what a wrong take-away would hit
    late = event("detail-page-view", MIDNIGHT + 2 * DAY + HOUR, product="p2", visitor="late")
    seen = Purging(store, after_range=lambda: store.write_user_events(rows(catalog, late)),
                   after_step=lambda n: (meanwhile(n), n == 1 and store.request_cancel(name)))
    run_purge(store, name, seen)
    # two batches walked ids 3 and 4; the visitor purge took id 11 (day 2's first)
    kept = [e for i, e in enumerate(made)
            if i != 10 and not (START < seconds_of(e) < END and i < 4)]
    kept = [repriced if e.visitor_id == "v11" else e for e in kept] + [late]
    assert store.count_user_events(EventQuery(catalog)) == len(kept)
    assert_counted_as(store, catalog, kept)


def test_a_purge_by_time_beside_a_replica_writing_into_its_days_ends_exact(
        stores: Any, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Writes really at the same time as the batches (on PostgreSQL from a second store,
    # as a replica would): whatever the purge did not delete is counted, and only that.
    store = stores()
    writer = store if store_url == "memory://" else stores()
    monkeypatch.setattr(purge, "WINDOW", 2)
    catalog, made = new_catalog(), history(6)
    store.write_user_events(rows(catalog, *made))
    stop = threading.Event()
    written: list[user_event_pb2.UserEvent] = []

    def write() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            late = event("purchase-complete", MIDNIGHT + (1 + n % 4) * DAY + n, price=0.5,
                         product=f"q{n % 3}", quantity=1 + n % 2, visitor=f"w{n}")
            writer.write_user_events(rows(catalog, late))
            written.append(late)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        run_purge(store, start_purge(store, catalog, BETWEEN))
    finally:
        stop.set()
        thread.join()
    assert written
    left = [user_event_pb2.UserEvent.FromString(payload)
            for _, payload in store.list_user_events(EventQuery(catalog), 10_000)]
    assert len(left) >= len(kept_after(made))
    assert_counted_as(store, catalog, left)
