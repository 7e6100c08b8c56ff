"""PurgeProducts' filter: Google's grammar over availability, and what it refuses."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from footfall.retail.v2 import product_pb2, purge_config_pb2
from google.longrunning import operations_pb2

from server.clock import FixedClock
from server.errors import InvalidArgument
from server.operations.runner import JobContext, OperationRunner, StopRequested
from server.retail import products, purge_products
from server.retail.purge_products import parse_filter
from server.store import Store, open_store
from server.store.rows import OperationRecord, Step

Availability = product_pb2.Product.Availability
ALL = [product_pb2.Product(id=name, availability=Availability.Value(name))
       for name in ("IN_STOCK", "OUT_OF_STOCK", "PREORDER", "BACKORDER")]


@pytest.mark.parametrize(("text", "selected"), [
    ("*", ["IN_STOCK", "OUT_OF_STOCK", "PREORDER", "BACKORDER"]),
    ('availability = "PREORDER"', ["PREORDER"]),
    ('availability="PREORDER" OR availability = "BACKORDER"', ["PREORDER", "BACKORDER"]),
    ('availability = "PREORDER" AND availability = "BACKORDER"', []),
    ('availability = "IN_STOCK" OR availability = "PREORDER" AND availability = "BACKORDER"',
     ["IN_STOCK"]),  # AND binds tighter
    ('(availability = "IN_STOCK" OR availability = "PREORDER") and '
     '(availability = "PREORDER" or (availability = "BACKORDER"))', ["PREORDER"]),
])
def test_filters_select(text: str, selected: list[str]) -> None:
    matches = parse_filter(text)
    assert [p.id for p in ALL if matches(p)] == selected


def test_a_product_stored_with_no_availability_is_in_stock() -> None:
    """As Google's default says (and as export reads it): stored before the default
    was filled, such a product survived a purge of the IN_STOCK ones."""
    unset = product_pb2.Product(id="unset")
    assert parse_filter('availability = "IN_STOCK"')(unset)
    assert not parse_filter('availability = "OUT_OF_STOCK"')(unset)


@pytest.mark.parametrize(("text", "message"), [
    ("  ", 'filter: is required; "*" purges every product'),
    ("* *", "filter: unexpected character at character 1"),
    ('availability = "IN_STOCK" OR', "filter: expected a field name at the end"),
    ('availability = "IN_STOCK")', "filter: expected AND, OR or the end at character 26"),
    ('(availability = "IN_STOCK"', "filter: expected ) at the end"),
    ('availability = IN_STOCK', "filter: expected a double-quoted value at character 16"),
    ('availability != "IN_STOCK"', "filter: availability takes only =, got '!=' at character 14"),
    ('create_time > "2024-01-01T00:00:00Z"', "filter: create_time is not supported"),
])
def test_bad_filters_say_where(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_filter(text)
    assert refused.value.message.startswith(message)


BRANCH = "projects/p/locations/global/catalogs/c/branches/0"
NAME = f"{BRANCH}/operations/purge-products-1"


class StopAfter(threading.Event):
    """A stop request that comes after `checks` checks: a shutdown between batches."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        return self.checks < 0


@pytest.fixture
def store() -> Iterator[Store]:
    opened = open_store("memory://")
    yield opened
    opened.close()


def _run(store: Store, stopping: threading.Event) -> None:
    record = store.claim_operation("w1", 0, 10**9, lambda _: False)
    assert record is not None
    purge_products.run_purge_products(JobContext(record, store, FixedClock(0), "w1", 10**9,
                                                 stopping))


def _submit(store: Store, query: str) -> None:
    request = purge_config_pb2.PurgeProductsRequest(parent=BRANCH, filter=query, force=True)
    store.create_operation(OperationRecord(
        name=NAME, kind=purge_products.KIND, done=False, create_time_us=0,
        request=request.SerializeToString(),
        operation=purge_products.new_operation(NAME, 0).SerializeToString()))


def test_a_purge_cancelled_before_it_runs_deletes_nothing(store: Store) -> None:
    store.create_product(BRANCH, "p0", product_pb2.Product(id="p0").SerializeToString())
    _submit(store, "*")
    store.request_cancel(NAME)
    _run(store, threading.Event())
    record = store.get_operation(NAME)
    assert record is not None and record.done
    assert operations_pb2.Operation.FromString(record.operation).error.code == 1  # CANCELLED
    assert [pid for pid, _ in store.list_products(BRANCH, 20)] == ["p0"]


def test_a_purge_stopped_between_batches_resumes_and_counts_each_product_once(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purge_products, "BATCH", 3)
    # Primaries p0, p2, ... p8, each with one variant (p1 of p0, ...); p0 and the variant
    # p5 are out of stock: p0 goes with its variant p1, and p5 alone.
    for i in range(10):
        kind = product_pb2.Product.VARIANT if i % 2 else product_pb2.Product.PRIMARY
        stock = product_pb2.Product.OUT_OF_STOCK if i in (0, 5) else product_pb2.Product.IN_STOCK
        item = product_pb2.Product(id=f"p{i}", type=kind, availability=stock,
                                   primary_product_id=f"p{i - i % 2}")
        store.create_product(BRANCH, item.id, item.SerializeToString())
    _submit(store, 'availability = "OUT_OF_STOCK"')

    with pytest.raises(StopRequested):  # after two batches (p0-p5) of the variants' pass
        _run(store, StopAfter(2))
    assert len(store.list_products(BRANCH, 20)) == 8  # p1 and p5 went
    store.release_operation(NAME, "w1")
    _run(store, threading.Event())

    record = store.get_operation(NAME)
    assert record is not None and record.done
    done = operations_pb2.Operation.FromString(record.operation)
    response = purge_config_pb2.PurgeProductsResponse()
    assert done.response.Unpack(response)
    assert (response.purge_count, done.metadata.type_url.rpartition(".")[2]) == (
        3, "PurgeProductsMetadata")
    assert [pid for pid, _ in store.list_products(BRANCH, 20)] == [
        "p2", "p3", "p4", "p6", "p7", "p8", "p9"]


def test_a_count_longer_than_its_lease_keeps_it(store: Store,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run walks every product before its one step: over 5 million, the 30 s of
    a lease. Under --processes the other process took the count over as if its holder
    had died, and the third take-over ended it INTERNAL ("ended the process running it
    3 times"), 600,000 products with --lease-seconds 2."""
    monkeypatch.setattr(purge_products, "BATCH", 2)
    for i in range(10):
        stock = product_pb2.Product.OUT_OF_STOCK if i % 2 else product_pb2.Product.IN_STOCK
        store.create_product(BRANCH, f"p{i}", product_pb2.Product(
            id=f"p{i}", availability=stock).SerializeToString())
    request = purge_config_pb2.PurgeProductsRequest(parent=BRANCH,
                                                    filter='availability = "OUT_OF_STOCK"')
    store.create_operation(OperationRecord(
        name=NAME, kind=purge_products.KIND, done=False, create_time_us=0,
        request=request.SerializeToString(),
        operation=purge_products.new_operation(NAME, 0).SerializeToString()))
    lease_us, clock = 1_000_000, FixedClock(0)
    record = store.claim_operation("w1", 0, lease_us, lambda _: False)
    assert record is not None
    list_products = store.list_products

    def slowly(*args: object) -> object:  # each page takes half a lease to read
        clock.advance(0.5)
        assert store.claim_operation("w2", clock.now_ns() // 1000, lease_us,
                                     lambda _: False) is None, "the lease ran out"
        return list_products(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "list_products", slowly)
    purge_products.run_purge_products(JobContext(record, store, clock, "w1", lease_us,
                                                 threading.Event()))

    done = store.get_operation(NAME)
    assert done is not None and done.done
    response = purge_config_pb2.PurgeProductsResponse()
    assert operations_pb2.Operation.FromString(done.operation).response.Unpack(response)
    assert response.purge_count == 5


def _in_stock(payload: bytes | None) -> bytes:
    product = product_pb2.Product.FromString(payload or b"")
    product.availability = product_pb2.Product.IN_STOCK
    return product.SerializeToString()


@pytest.mark.parametrize(("deleting", "written", "kept"), [
    ("p2", "p2", ["p2"]),  # a product the filter selected
    ("p1", "p0", ["p0", "p1"]),  # a variant in stock selected by its primary's match
])
def test_a_product_written_to_no_longer_match_before_its_batch_commits_is_kept(
        store: Store, monkeypatch: pytest.MonkeyPatch, deleting: str, written: str,
        kept: list[str]) -> None:
    """A batch's products are read, then deleted in a later step: an UpdateProduct
    landing between them that makes one no longer selected keeps it (Google's purge
    deletes only what its filter selects), as it keeps a product written after."""
    out = product_pb2.Product.OUT_OF_STOCK
    for item in (product_pb2.Product(id="p0", type=product_pb2.Product.PRIMARY,
                                     availability=out),
                 product_pb2.Product(id="p1", type=product_pb2.Product.VARIANT,
                                     primary_product_id="p0"),
                 product_pb2.Product(id="p2", availability=out)):
        store.create_product(BRANCH, item.id, item.SerializeToString())
    _submit(store, 'availability = "OUT_OF_STOCK"')
    run_step = store.run_step
    writes = []

    def written_before_the_step(name: str, owner: str, step: Step,
                                *args: object) -> object:
        if not writes and (BRANCH, deleting) in step.delete_products:
            writes.append(store.update_product(BRANCH, written, _in_stock))
        return run_step(name, owner, step, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "run_step", written_before_the_step)
    _run(store, threading.Event())

    record = store.get_operation(NAME)
    assert record is not None and record.done and writes
    response = purge_config_pb2.PurgeProductsResponse()
    assert operations_pb2.Operation.FromString(record.operation).response.Unpack(response)
    assert [pid for pid, _ in store.list_products(BRANCH, 20)] == kept
    assert response.purge_count == 3 - len(kept)


def _retitled(payload: bytes | None) -> bytes:
    product = product_pb2.Product.FromString(payload or b"")
    product.title += "!"
    return product.SerializeToString()


def test_a_batch_whose_products_are_written_before_every_commit_ends_it_aborted(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A product written again before each try of its batch's step (a client updating
    it without pause): the batch is chosen again MAX_REMAKES times, not for ever, and
    the purge ends ABORTED saying why, keeping what committed before."""
    monkeypatch.setattr(purge_products, "BATCH", 1)
    for pid in ("p0", "p1"):
        store.create_product(BRANCH, pid, product_pb2.Product(id=pid).SerializeToString())
    _submit(store, "*")
    run_step = store.run_step
    tries = []

    def written_before_the_step(name: str, owner: str, step: Step, *args: object) -> object:
        if (BRANCH, "p1") in step.delete_products:
            tries.append(store.update_product(BRANCH, "p1", _retitled))
            assert len(tries) < 1_000, "chosen again for ever"
        return run_step(name, owner, step, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "run_step", written_before_the_step)
    runner = OperationRunner(store, FixedClock(0), {purge_products.KIND:
                                                    purge_products.run_purge_products})
    claimed = store.claim_operation("w1", 0, 10**9, lambda _: False)
    assert claimed is not None
    runner._run(claimed, "w1")

    record = store.get_operation(NAME)
    assert record is not None and record.done
    ended = operations_pb2.Operation.FromString(record.operation)
    assert ended.error.code == 10  # ABORTED
    assert ended.error.message.startswith(
        "the product purge stopped: one of its batches was made 20 times over")
    assert len(tries) == products.MAX_REMAKES
    assert [pid for pid, _ in store.list_products(BRANCH, 20)] == ["p1"]
    meta = purge_config_pb2.PurgeProductsMetadata()
    assert ended.metadata.Unpack(meta) and meta.success_count == 1  # p0's batch
