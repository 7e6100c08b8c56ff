"""SQLite under `serve --processes N`: the products a joined write relied on are
checked once its writer holds the write lock, as on PostgreSQL (two stores on one
file, as two processes are: each its own writer and writers' turn)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from footfall.retail.v2 import common_pb2, product_pb2, user_event_pb2
from google.protobuf import json_format

from server.names import default_branch
from server.retail import join
from server.store import EventQuery
from server.store.sqlite import SqliteStore

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
BRANCH = default_branch(CATALOG)


def product(title: str, price: float) -> bytes:
    return product_pb2.Product(id="sku-1", title=title, price_info=common_pb2.PriceInfo(
        price=price, currency_code="USD")).SerializeToString()


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    path = str(tmp_path / "events.db")
    first, second = SqliteStore(path), SqliteStore(path)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def write_joined(store: SqliteStore, visitor: str, between: Any = None) -> None:
    """A detail-page-view of sku-1 written through `store` as WriteUserEvent writes
    it (joined by the writer), waited for; `between()` runs once the writer has read
    its products, before it takes the write lock."""
    event = json_format.ParseDict({
        "eventType": "detail-page-view", "visitorId": visitor,
        "eventTime": "2024-01-01T00:00:00Z",
        "productDetails": [{"product": {"id": "sku-1"}}]}, user_event_pb2.UserEvent())
    calls = []

    def read(catalog: str, ids: list[str]) -> dict[str, Any]:
        found = join.load_products(store, catalog, ids, to_join=True)
        calls.append(ids)
        if between is not None and len(calls) == 1:
            between()
        return found

    asyncio.run(store.write_joined_async(join.JoinedLater(
        CATALOG, event, ["sku-1"], read, 1_000_000, (1, 0))))


def stored(store: SqliteStore) -> dict[str, tuple[str, float]]:
    """visitor: (the product's title, its price) of every stored event."""
    found = {}
    for _, payload in store.list_user_events(EventQuery(CATALOG), 100):
        event = user_event_pb2.UserEvent.FromString(payload)
        found[event.visitor_id] = (event.product_details[0].product.title,
                                   event.product_details[0].product.price_info.price)
    return found


def test_a_product_changed_by_another_process_before_the_write_lock_is_joined_as_changed(
        two: tuple[SqliteStore, SqliteStore]) -> None:
    """The writer joins the first jobs of a batch before it takes the writers' turn
    and the write lock: a product another process changed and committed in between
    was joined as it was before, and the event stored after the change with the old
    product. Now the batch looks at the products' generations once it holds the lock,
    and joins again those that moved."""
    first, second = two
    second.create_product(BRANCH, "sku-1", product("Old title", 10.0))
    write_joined(first, "a")
    write_joined(first, "b", between=lambda: second.update_product(
        BRANCH, "sku-1", lambda _: product("New title", 20.0)))
    write_joined(first, "c")
    assert stored(first) == {"a": ("Old title", 10.0), "b": ("New title", 20.0),
                             "c": ("New title", 20.0)}


def test_a_product_deleted_by_another_process_before_the_write_lock_is_not_joined(
        two: tuple[SqliteStore, SqliteStore]) -> None:
    first, second = two
    second.create_product(BRANCH, "sku-1", product("Old title", 10.0))
    write_joined(first, "a", between=lambda: second.delete_product(BRANCH, "sku-1"))
    assert stored(first) == {"a": ("", 0.0)}
