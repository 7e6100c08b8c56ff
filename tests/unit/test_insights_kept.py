"""The per-product and per-job tables kept for their next pages (server/insights/
kept.py), on every store: a table read once for all its pages while nothing is
written, read again once anything is (by this store, or another process's), the
same rows as computed afresh, and one computation of a question at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from footfall.insights.v1 import insights_pb2

from server.insights import tables
from server.insights.kept import Kept
from server.store import EventRow

from . import test_insights, test_store
from .test_insights import DAY, MIDNIGHT, T0, drawn_event, stored_client_events, stored_history

store_url, stores, store = test_store.store_url, test_store.stores, test_store.store


@pytest.fixture(autouse=True)
def token_key_made(store: Any) -> None:
    """The store's page token key made before a test (a store makes it when it first
    answers a page with a next one: a write, after which the tables are computed
    again once)."""
    store.page_token_key()


def counted_exactly(store: Any) -> bool:
    """Whether the tables computed can be counted exactly: on PostgreSQL the data
    version is the cluster's, which other tests' databases change meanwhile (a
    page then computes its table again, rightly: Store.data_version)."""
    return not type(store).__name__.startswith("Postgres")


def reads_of(store: Any, monkeypatch: pytest.MonkeyPatch, method: str) -> list[None]:
    """A list that grows by one for every call of the store's `method`."""
    calls: list[None] = []
    real = getattr(store, method)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(None)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, method, counted)
    return calls


def product_events(count: int, time: int = T0) -> list[dict[str, Any]]:
    """A view of each of `count` products (p0, p1, ...) at `time`, and a priced
    purchase of every third half a day later."""
    events = []
    for i in range(count):
        product = {"id": f"p{i}", "quantity": None, "price": 0.25 * i, "currency": "EUR",
                   "categories": []}
        events.append(drawn_event("detail-page-view", "v", time, products=[product]))
        if i % 3 == 0:
            events.append(drawn_event("purchase-complete", "v", time + DAY // 2,
                                      products=[product]))
    return events


def all_pages(list_stats: Callable[..., Any], store: Any, request: Any,
              kept: Kept | None) -> list[Any]:
    """Every page of the table `request` asks for."""
    pages = [list_stats(store, request, kept)]
    while pages[-1].next_page_token:
        pages.append(list_stats(store, _next(request, pages[-1].next_page_token), kept))
    return pages


def _next(request: Any, token: str) -> Any:
    """`request` asking for the page of `token`."""
    after = type(request)()
    after.CopyFrom(request)
    after.page_token = token
    return after


# Whole days from the rollups, and a range with part days at its edges (events read).
RANGES = [(MIDNIGHT, MIDNIGHT + 3 * DAY), (MIDNIGHT + DAY // 2, MIDNIGHT + 2 * DAY + 7)]


@pytest.mark.parametrize("span", RANGES)
@pytest.mark.parametrize("order", ["", "product_id desc", "view_to_purchase_rate"])
def test_next_pages_of_a_product_table_read_the_store_no_more(
        store: Any, monkeypatch: pytest.MonkeyPatch, span: tuple[int, int], order: str) -> None:
    # views in the part day of the second range, purchases in its whole day
    catalog, _ = stored_history(store, product_events(25, MIDNIGHT + DAY // 2 + 60), [], None)
    request = insights_pb2.ListProductStatsRequest(parent=catalog, page_size=4,
                                                   order_by=order)
    request.start_time.FromSeconds(span[0])
    request.end_time.FromSeconds(span[1])
    afresh = all_pages(tables.list_product_stats, store, request, None)
    rollups = reads_of(store, monkeypatch, "product_days")
    events = reads_of(store, monkeypatch, "typed_rows")
    kept = Kept()
    pages = all_pages(tables.list_product_stats, store, request, kept)
    assert len(pages) == 7
    # byte for byte what each page computed afresh gives, tokens included
    assert [p.SerializeToString(deterministic=True) for p in pages] == \
        [p.SerializeToString(deterministic=True) for p in afresh]
    if counted_exactly(store):
        assert kept.computed == 1
        assert len(rollups) == 1  # (7 without the kept table: one a page)
        assert len(events) <= 2  # the part days' events, read for the first page alone


def test_next_pages_of_a_job_table_read_the_store_no_more(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant, _ = stored_client_events(store, [
        {"request": "r", "id": f"e{i}", "time": T0 + i, "type": "IMPRESSION",
         "jobs": [f"{test_insights.JOB_TENANT}/jobs/j{i}"]} for i in range(12)])
    request = insights_pb2.ListJobStatsRequest(parent=tenant, page_size=5)
    afresh = all_pages(tables.list_job_stats, store, request, None)
    reads = reads_of(store, monkeypatch, "client_events_after")
    kept = Kept()
    pages = all_pages(tables.list_job_stats, store, request, kept)
    assert [p.SerializeToString(deterministic=True) for p in pages] == \
        [p.SerializeToString(deterministic=True) for p in afresh]
    assert len(pages) == 3
    if counted_exactly(store):
        assert kept.computed == 1
        assert len(reads) == 1  # (3 without the kept table)


@pytest.mark.parametrize("writer", ["this store", "another process"])
def test_a_page_after_a_write_sees_it(stores: Callable[[], Any], store_url: str,
                                      writer: str) -> None:
    if writer == "another process" and store_url == "memory://":
        pytest.skip("memory:// is one process's own")
    store = stores()
    other = store if writer == "this store" else stores()  # (another replica's writes)
    catalog, _ = stored_history(store, product_events(6), [], None)
    request = insights_pb2.ListProductStatsRequest(parent=catalog, page_size=2,
                                                   order_by="product_id")
    kept = Kept()
    first = tables.list_product_stats(store, request, kept)
    assert [p.product_id for p in first.products] == ["p0", "p1"]
    # a new product, p00, sorts between p0 and p1
    event = test_insights.user_event(drawn_event("detail-page-view", "w", T0, products=[
        {"id": "p00", "quantity": None, "price": 0.0, "currency": "", "categories": []}]))
    other.write_user_events([EventRow.from_event(catalog, event, joined=True)])
    second = tables.list_product_stats(store, _next(request, first.next_page_token), kept)
    assert [p.product_id for p in second.products] == ["p1", "p2"]  # p00 took a place
    again = tables.list_product_stats(store, request, kept)
    assert [p.product_id for p in again.products] == ["p0", "p00"]
    if counted_exactly(store):
        assert kept.computed == 2  # nothing written since the second page's table


@pytest.mark.parametrize("writes", ["none", "between every two reads"])
def test_readers_of_one_question_at_once_compute_it_once(
        store: Any, monkeypatch: pytest.MonkeyPatch, writes: str) -> None:
    if not counted_exactly(store):
        pytest.skip("counted on SQLite (see counted_exactly)")
    if writes != "none":  # (as a busy PostgreSQL cluster's snapshot: never the same)
        versions = iter(range(10**6))
        monkeypatch.setattr(store, "data_version", lambda: next(versions))
    catalog, _ = stored_history(store, product_events(10), [], None)
    request = insights_pb2.ListProductStatsRequest(parent=catalog, page_size=3)
    kept = Kept()
    reading, go_on = threading.Event(), threading.Event()
    real = store.product_days

    def held(*args: Any) -> Any:
        reading.set()
        assert go_on.wait(30)
        return real(*args)

    monkeypatch.setattr(store, "product_days", held)
    answers: list[Any] = []
    readers = [threading.Thread(
        target=lambda: answers.append(tables.list_product_stats(store, request, kept)))
        for _ in range(8)]
    for reader in readers:
        reader.start()
    assert reading.wait(30)
    deadline = time.monotonic() + 30
    while sum(turn[1] for turn in kept._turns.values()) < 8:  # all 8 in its turn's queue
        assert time.monotonic() < deadline
        time.sleep(0.01)
    go_on.set()
    for reader in readers:
        reader.join(30)
    assert len(answers) == 8 and len({a.SerializeToString() for a in answers}) == 1
    # the first, and (the store written meanwhile) one for the 7 come while it computed
    assert kept.computed == (1 if writes == "none" else 2)


def test_tables_kept_are_bounded_in_count_rows_and_age(store: Any) -> None:
    if not counted_exactly(store):
        pytest.skip("counted on SQLite (see counted_exactly)")
    catalog, _ = stored_history(store, product_events(5), [], None)
    now = [0.0]
    kept = Kept(tables=2, rows=10, seconds=60, clock=lambda: now[0])

    def ask(order: str, size: int = 2) -> None:
        tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(
            parent=catalog, page_size=size, order_by=order), kept)

    for order in ("views", "units", "views", "purchases", "views"):
        ask(order)
    # views kept throughout (used last), units let go for purchases: 3 computed
    assert kept.computed == 3
    ask("units")
    assert kept.computed == 4  # (and purchases let go: two kept)
    ask("views")
    assert kept.computed == 4
    now[0] = 61
    ask("views")
    assert kept.computed == 5  # too old
    big = Kept(rows=4)
    for _ in range(2):
        tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(
            parent=catalog, page_size=2), big)
    assert big.computed == 2  # 5 rows: more than it keeps


def test_the_data_version_changes_with_every_write_of_any_process(
        stores: Callable[[], Any], store_url: str) -> None:
    store = stores()
    others = [store] if store_url == "memory://" else [store, stores()]
    catalog, _ = stored_history(store, product_events(1), [], None)
    for other in others:
        before = store.data_version()
        assert store.data_version() == before  # (reads change nothing)
        tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(parent=catalog))
        assert store.data_version() == before
        event = test_insights.user_event(drawn_event("detail-page-view", "w", T0 + 5, products=[
            {"id": "q", "quantity": None, "price": 0.0, "currency": "", "categories": []}]))
        other.write_user_events([EventRow.from_event(catalog, event, joined=True)])
        assert store.data_version() != before
