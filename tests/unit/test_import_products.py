"""ImportProducts merges its batch with the stored products: a write of one of them
that lands between the job's read and its step (UpdateProduct, AddLocalInventories)
is kept, never undone by the import; writes that land before every try of a batch
end the import ABORTED."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from footfall.retail.v2 import import_config_pb2, product_pb2
from google.longrunning import operations_pb2

from server.clock import FixedClock
from server.operations.runner import JobContext, OperationRunner
from server.retail import bulk_import, import_products, products
from server.store import Store, open_store
from server.store.rows import OperationRecord, Step

BRANCH = "projects/p/locations/global/catalogs/default_catalog/branches/0"
NAME = ("projects/p/locations/global/catalogs/default_catalog/operations/"
        f"{import_products.KIND}-1")
NOW_US = 1_714_564_800_000_000
LEASE_US = 30_000_000


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store("memory://" if request.param == "memory"
                        else f"sqlite:///{tmp_path}/events.db")
    yield opened
    opened.close()


def stored(store: Store, product_id: str) -> product_pb2.Product:
    return product_pb2.Product.FromString(store.get_products(BRANCH, [product_id])[product_id])


def add_a_brand(payload: bytes | None) -> bytes:
    product = product_pb2.Product.FromString(payload or b"")
    product.brands.append("Acme")
    return product.SerializeToString()


def add_a_place(payload: bytes | None) -> bytes:
    product = product_pb2.Product.FromString(payload or b"")
    product.local_inventories.add(place_id="store-1")
    return product.SerializeToString()


@pytest.mark.parametrize(("mask", "meanwhile"), [
    (["title"], add_a_brand),  # UpdateProduct of another field
    (None, add_a_place),  # AddLocalInventories: its places outlive a re-import
])
def test_a_product_written_while_its_import_runs_keeps_that_write(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        mask: list[str] | None, meanwhile: object) -> None:
    first = product_pb2.Product(id="p1", title="Old title", categories=["Shoes"])
    store.create_product(BRANCH, "p1", first.SerializeToString())
    request = import_config_pb2.ImportProductsRequest(
        parent=BRANCH, input_config={"product_inline_source": {"products": [
            {"id": "p1", "title": "New title", "categories": ["Shoes"]}]}})
    if mask is not None:
        request.update_mask.paths.extend(mask)
    store.create_operation(OperationRecord(
        NAME, import_products.KIND, False, 0, request.SerializeToString(),
        import_products.new_operation(NAME, 0).SerializeToString()))
    run_step = store.run_step
    writes = []

    def written_before_the_step(*args: object, **kwargs: object) -> object:
        if not writes:  # the batch is merged with p1 as it was: another write lands
            writes.append(store.update_product(BRANCH, "p1", meanwhile))  # type: ignore[arg-type]
        return run_step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "run_step", written_before_the_step)
    record = store.claim_operation("w1", NOW_US, LEASE_US, lambda _: True)
    assert record is not None
    import_products.ImportProductsJob(tmp_path)(JobContext(
        record, store, FixedClock(NOW_US * 1000), "w1", LEASE_US, threading.Event()))

    product = stored(store, "p1")
    assert product.title == "New title"
    if meanwhile is add_a_brand:
        assert list(product.brands) == ["Acme"]
    else:
        assert [place.place_id for place in product.local_inventories] == ["store-1"]
    done = store.get_operation(NAME)
    assert done is not None and done.done


def retitled(payload: bytes | None) -> bytes:
    product = product_pb2.Product.FromString(payload or b"")
    product.title += "!"
    return product.SerializeToString()


def test_a_batch_whose_products_are_written_before_every_commit_ends_it_aborted(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A product written again before each try of its batch's step (a client updating
    it without pause): the batch is made again MAX_REMAKES times, not for ever, and the
    import ends ABORTED saying why, keeping the batches that committed before."""
    monkeypatch.setattr(bulk_import, "BATCH", 1)
    store.create_product(BRANCH, "p2", product_pb2.Product(
        id="p2", title="Old", categories=["Shoes"]).SerializeToString())
    request = import_config_pb2.ImportProductsRequest(
        parent=BRANCH, input_config={"product_inline_source": {"products": [
            {"id": "p1", "title": "One", "categories": ["Shoes"]},
            {"id": "p2", "title": "Two", "categories": ["Shoes"]}]}})
    store.create_operation(OperationRecord(
        NAME, import_products.KIND, False, 0, request.SerializeToString(),
        import_products.new_operation(NAME, 0).SerializeToString()))
    run_step = store.run_step
    tries = []

    def written_before_the_step(name: str, owner: str, step: Step, *args: object) -> object:
        if any(pid == "p2" for _, pid, _ in step.put_products):
            tries.append(store.update_product(BRANCH, "p2", retitled))
            assert len(tries) < 1_000, "made again for ever"
        return run_step(name, owner, step, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "run_step", written_before_the_step)
    job = import_products.ImportProductsJob(tmp_path)
    runner = OperationRunner(store, FixedClock(NOW_US * 1000), {import_products.KIND: job},
                             settle={import_products.KIND: job.settle})
    claimed = store.claim_operation("w1", NOW_US, LEASE_US, lambda _: True)
    assert claimed is not None
    runner._run(claimed, "w1")

    done = store.get_operation(NAME)
    assert done is not None and done.done
    ended = operations_pb2.Operation.FromString(done.operation)
    assert ended.error.code == 10  # ABORTED
    assert ended.error.message.startswith(
        "the product import stopped: one of its batches was made 20 times over")
    assert len(tries) == products.MAX_REMAKES
    assert stored(store, "p1").title == "One"
    assert stored(store, "p2").title == "Old" + "!" * products.MAX_REMAKES
    meta = import_config_pb2.ImportMetadata()
    assert ended.metadata.Unpack(meta) and meta.success_count == 1  # p1's batch
