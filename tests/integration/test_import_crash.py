"""An import (of events, of products) whose server was killed (kill -9) right after
a batch with failed lines committed: once the next server has finished it, the
console lists every failed line once (ListRejections), as many as its failure_count.
(The refusals were kept by a job of their own after the batch committed: the kill
between the two lost that batch's.)

The servers are real (`python -m server serve` on one store and --gcs-root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from footfall.retail.v2 import import_config_pb2

from server.console import rejections
from server.retail import import_events, import_products
from server.store import open_store
from server.store.rows import OperationRecord

from .killed_server import ended, killed, run_until, serve

PROJECT = "projects/footfall-crash"
CATALOG = f"{PROJECT}/locations/global/catalogs/default_catalog"
NAME = f"{CATALOG}/operations/{import_events.KIND}-5"
BATCHES = 4  # of two lines: one good, one without event_time

SMALL = """
from server.retail import bulk_import
bulk_import.BATCH = 2
"""
# The first server kills itself right after the import's first step committed.
KILL = SMALL + """
import os, signal
from server.operations.runner import JobContext
step = JobContext.step
def step_then_die(self, *args, **kwargs):
    result = step(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return result
JobContext.step = step_then_die
"""


def killed_after_a_batch_then_ended(tmp_path: Path, store_url: str, name: str, job: Any,
                                    request: Any) -> tuple[Any, list[Any]]:
    """The import `request` of `job` (import_events or import_products) as operation
    `name`: a server killed once its first batch is in, then one that ends it; the
    operation ended, and the refusals listed for CATALOG."""
    store = open_store(store_url)
    try:
        store.create_operation(OperationRecord(
            name, job.KIND, False, 0, request.SerializeToString(),
            job.new_operation(name, 0).SerializeToString()))
        killed(tmp_path, serve(tmp_path, store_url, KILL))
        record = store.get_operation(name)
        assert record is not None and record.checkpoint and not record.done  # a batch in
        run_until(tmp_path, serve(tmp_path, store_url, SMALL),
                  lambda: ended(store, name) is not None, "the import never ended")
        done = ended(store, name)
        assert done is not None
        return done, [rejections.shown(kept.id, kept.payload) for kept in
                      store.rejections_newest(None, 100, parent=CATALOG)]
    finally:
        store.close()


@pytest.mark.timeout(180)
def test_an_import_killed_after_a_batch_lists_each_failed_line_once(
        tmp_path: Path, crash_store_url: str) -> None:
    (tmp_path / "gcs/shop").mkdir(parents=True)
    (tmp_path / "gcs/shop/events.json").write_text("".join(
        f'{{"eventType": "home-page-view", "visitorId": "v{i}", '
        f'"eventTime": "2024-01-01T00:00:00Z"}}\n'
        f'{{"eventType": "home-page-view", "visitorId": "late-{i}"}}\n'
        for i in range(BATCHES)))
    request = import_config_pb2.ImportUserEventsRequest(
        parent=CATALOG, input_config={"gcs_source": {"input_uris": ["gs://shop/events.json"]}})
    done, listed = killed_after_a_batch_then_ended(
        tmp_path, crash_store_url, NAME, import_events, request)
    meta = import_config_pb2.ImportMetadata()
    assert done.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (BATCHES, BATCHES)
    assert sorted(r.message for r in listed) == [
        f"gs://shop/events.json line {2 * i + 2}: user_event.event_time: is required"
        for i in range(BATCHES)]
    assert {r.operation for r in listed} == {NAME}


@pytest.mark.timeout(180)
def test_a_product_import_killed_after_a_batch_lists_each_failed_line_once(
        tmp_path: Path, crash_store_url: str) -> None:
    # (a product import's failed lines were kept nowhere before: none listed at all)
    branch = f"{CATALOG}/branches/0"
    name = f"{branch}/operations/{import_products.KIND}-5"
    (tmp_path / "gcs/shop").mkdir(parents=True)
    (tmp_path / "gcs/shop/products.json").write_text("".join(
        f'{{"id": "p{i}", "title": "P", "categories": ["C"]}}\n'
        f'{{"id": "untitled-{i}", "categories": ["C"]}}\n'
        for i in range(BATCHES)))
    request = import_config_pb2.ImportProductsRequest(
        parent=branch, input_config={"gcs_source": {"input_uris": ["gs://shop/products.json"]}})
    # (listed with the catalog's: the branch is the catalog's)
    done, listed = killed_after_a_batch_then_ended(
        tmp_path, crash_store_url, name, import_products, request)
    meta = import_config_pb2.ImportMetadata()
    assert done.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (BATCHES, BATCHES)
    assert sorted(r.message for r in listed) == [
        f"gs://shop/products.json line {2 * i + 2}: product.title: is required"
        for i in range(BATCHES)]
    assert {(r.operation, r.parent, r.method) for r in listed} == {
        (name, branch, "/google.cloud.retail.v2.ProductService/ImportProducts")}
    assert {tuple(v.field for v in r.field_violations) for r in listed} == {("product.title",)}
