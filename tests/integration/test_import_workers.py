"""Imports decoded in worker processes store exactly what the job's own thread
stores: the same rows byte for byte, the same operation, checkpoint and error file,
also when the job crashes and resumes, and when it is cancelled (issue 12, item 5)."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from footfall.retail.v2 import import_config_pb2, product_pb2
from google.longrunning import operations_pb2

from server.clock import FixedClock
from server.errors import Internal
from server.names import default_branch
from server.operations.runner import JobContext
from server.retail import bulk_import, import_events, import_products
from server.retail.bulk_import import BulkImport
from server.retail.line_pool import MAX_LOSSES, LinePool
from server.store import open_store
from server.store.base import Store
from server.store.rows import OperationRecord, Progress, Step, StepResult

PARENT = "projects/p/locations/global/catalogs/default_catalog"
BRANCH = default_branch(PARENT)
NOW_NS = 1_714_564_800 * 10**9
MAX_EVENT_BYTES = 2048  # lines of more than 2560 bytes are cut
OWNER = "test-owner"


@pytest.fixture(scope="module")
def pool() -> Iterator[LinePool]:
    pool = LinePool(2)
    yield pool
    pool.close()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_import, "BATCH", 7)  # many batches in flight at once


def event(rng: random.Random, i: int) -> dict[str, Any]:
    kind = rng.choice(["home-page-view", "detail-page-view", "add-to-cart", "search"])
    out: dict[str, Any] = {"eventType": kind, "visitorId": f"v{rng.randrange(40)}",
                           "eventTime": f"2024-01-{1 + i % 28:02d}T10:00:0{i % 10}Z",
                           "attributes": {"k": {"text": [f"t{i % 3}"]}, "a": {"numbers": [i]}}}
    if kind in ("detail-page-view", "add-to-cart"):
        # p0..p5 are in the catalog (join); p6..p9 are not (unjoined)
        out["productDetails"] = [{"product": {"id": f"p{rng.randrange(10)}"}, "quantity": 1}
                                 for _ in range(rng.randrange(1, 3))]
    if kind == "search":
        out["searchQuery"] = f"q{i}"
    return out


def corpus(seed: int, count: int) -> bytes:
    """Lines of every sort: good, duplicate, undecodable, invalid, too big, too big
    once joined, over-long, blank."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    for i in range(count):
        roll = rng.random()
        good = event(rng, i)
        if roll < 0.05:
            lines.append(b"{not json")
        elif roll < 0.08:
            lines.append(b"[1, 2]")
        elif roll < 0.11:
            lines.append(json.dumps({**good, "notAField": 1}).encode())
        elif roll < 0.16:
            lines.append(json.dumps({**good, "visitorId": ""}).encode())
        elif roll < 0.19:
            lines.append(json.dumps({**good, "uri": "u" * 2100}).encode())  # too big
        elif roll < 0.21:
            lines.append(json.dumps({**good, "uri": "u" * 3000}).encode())  # over-long line
        elif roll < 0.24:  # joins with p-big, whose description passes the limit
            lines.append(json.dumps({**good, "eventType": "detail-page-view",
                                     "productDetails": [{"product": {"id": "p-big"}}]}).encode())
        elif roll < 0.27:
            lines.append(b"   ")
        elif roll < 0.32 and lines:
            lines.append(lines[-1])  # a duplicate of the line before
        else:
            lines.append(json.dumps(good).encode())
    return b"\n".join(lines) + b"\n"


@dataclass
class Outcome:
    rows: list[tuple[Any, ...]]
    operation: bytes
    checkpoint: bytes | None
    errors: bytes


class Crash(Exception):
    """The process dies between two batches."""


@dataclass
class Interrupting(JobContext):
    """A job context that crashes or asks for a cancel before commit number `at`."""

    at: int = -1
    action: Callable[[], None] | None = None
    commits: int = 0

    def step(self, step: Step, progress: Callable[[StepResult], Progress]) -> StepResult:
        if self.commits == self.at and self.action is not None:
            self.action()
        self.commits += 1
        return super().step(step, progress)


def fill_catalog(store: Store) -> None:
    for k in range(6):
        product = product_pb2.Product(id=f"p{k}", title=f"Product {k}", categories=["C"])
        product.price_info.price = 10.0 + k
        product.price_info.currency_code = "EUR"
        store.create_product(BRANCH, f"p{k}", product.SerializeToString())
    big = product_pb2.Product(id="p-big", title="Big", description="d" * 1900,
                              categories=["C"])
    store.create_product(BRANCH, "p-big", big.SerializeToString())


def run(tmp_path: Path, job: BulkImport[Any, Any, Any], kind: str, request: Any,
        fill: Callable[[Store], None], interrupt: Callable[[Store, str], Callable[[], None]]
        | None = None, at: int = -1) -> Outcome:
    """Run `job` for `request` on a fresh SQLite store (interrupted before commit
    `at` by what `interrupt` makes, then run again when that was a crash)."""
    db = tmp_path / "events.db"
    store = open_store(f"sqlite:///{db}")
    fill(store)
    name = f"{PARENT}/operations/{kind}-1"
    store.create_operation(OperationRecord(
        name=name, kind=kind, done=False, create_time_us=NOW_NS // 1000,
        request=request.SerializeToString(),
        operation=bulk_import.new_operation(name, NOW_NS).SerializeToString()))
    clock = FixedClock(NOW_NS)
    try:
        while True:
            record = store.claim_operation(OWNER, clock.now_ns() // 1000, 10**9,
                                           lambda holder: True)
            if record is None:
                break
            action = interrupt(store, name) if interrupt is not None else None
            ctx = Interrupting(record, store, clock, OWNER, 10**9, threading.Event(),
                               at=at, action=action)
            clock.advance(1)
            try:
                job(ctx)
            except Crash:
                interrupt, at = None, -1  # the next try runs it to the end
        record = store.get_operation(name)
        assert record is not None and record.done
        rows = sqlite_rows(db, "user_events" if kind == import_events.KIND else "products")
        errors = tmp_path / "gcs/shop/errors"
        found = list(errors.glob("*")) if errors.exists() else []
        return Outcome(rows, record.operation, record.checkpoint,
                       found[0].read_bytes() if found else b"")
    finally:
        store.close()


def sqlite_rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    """The table's rows, but for when each was received (the wall clock of its batch)."""
    with sqlite3.connect(db) as conn:
        columns = [c for (_, c, *_) in conn.execute(f"PRAGMA table_info({table})")
                   if c != "received_us"]
        return conn.execute(f"SELECT {', '.join(columns)} FROM {table} "
                            f"ORDER BY rowid").fetchall()


def event_files(root: Path, seed: int) -> import_config_pb2.ImportUserEventsRequest:
    (root / "shop").mkdir(parents=True, exist_ok=True)
    (root / "shop/a.json").write_bytes(corpus(seed, 120))
    (root / "shop/b.json").write_bytes(corpus(seed + 1, 60))
    request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
    request.input_config.gcs_source.input_uris.append("gs://shop/*.json")
    request.errors_config.gcs_prefix = "gs://shop/errors"
    return request


def crash(store: Store, name: str) -> Callable[[], None]:
    def die() -> None:
        raise Crash(name)
    return die


def cancel(store: Store, name: str) -> Callable[[], None]:
    return lambda: store.request_cancel(name) and None


def both_ways(tmp_path: Path, pool: LinePool, seed: int, **how: Any) -> tuple[Outcome, Outcome]:
    """The outcome in the job's thread, then with workers, in the same folder (the
    checkpoint names the files)."""
    outcomes = []
    folder = tmp_path / "run"
    for line_pool in (LinePool(0), pool):
        request = event_files(folder / "gcs", seed)
        job = import_events.ImportJob(folder / "gcs", False, MAX_EVENT_BYTES, line_pool)
        job.pool_min_bytes = 0
        outcomes.append(run(folder, job, import_events.KIND, request, fill_catalog, **how))
        shutil.rmtree(folder)
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_workers_store_what_the_thread_stores(tmp_path: Path, pool: LinePool,
                                              seed: int) -> None:
    thread, workers = both_ways(tmp_path, pool, seed)

    assert workers == thread
    assert len(multiprocessing.active_children()) == pool.processes  # they did the work
    assert thread.rows and thread.errors  # the corpus has both
    done = operations_pb2.Operation.FromString(thread.operation)
    meta = import_config_pb2.ImportMetadata()
    done.metadata.Unpack(meta)
    response = import_config_pb2.ImportUserEventsResponse()
    done.response.Unpack(response)
    assert meta.failure_count == thread.errors.count(b"\n") > 10
    assert response.import_summary.joined_events_count > 0
    assert response.import_summary.unjoined_events_count > 0


@pytest.mark.parametrize("at", [0, 3, 11])
def test_a_crash_resumes_alike(tmp_path: Path, pool: LinePool, at: int) -> None:
    thread, workers = both_ways(tmp_path, pool, 7, interrupt=crash, at=at)
    assert workers == thread
    uninterrupted, _ = both_ways(tmp_path / "whole", pool, 7)
    assert thread.rows == uninterrupted.rows and thread.errors == uninterrupted.errors


@pytest.mark.parametrize("at", [0, 5])
def test_a_cancel_ends_alike(tmp_path: Path, pool: LinePool, at: int) -> None:
    thread, workers = both_ways(tmp_path, pool, 9, interrupt=cancel, at=at)
    assert workers == thread
    assert operations_pb2.Operation.FromString(thread.operation).error.code == 1  # CANCELLED


def test_products_from_workers_are_the_thread_s(tmp_path: Path, pool: LinePool) -> None:
    rng = random.Random(5)
    lines = []
    for i in range(150):
        product: dict[str, Any] = {"id": f"s{rng.randrange(60)}", "title": f"T{i}",
                                   "categories": ["C"], "attributes": {"k": {"text": ["x"]}}}
        if i % 9 == 0:
            product["id"] = ""  # refused
        if i % 13 == 0:
            lines.append("{broken")
            continue
        lines.append(json.dumps(product))
    outcomes = []
    for line_pool in (LinePool(0), pool):
        root = tmp_path / "run" / "gcs"
        (root / "shop").mkdir(parents=True)
        (root / "shop/products.json").write_text("\n".join(lines) + "\n")
        request = import_config_pb2.ImportProductsRequest(parent=BRANCH)
        request.input_config.gcs_source.input_uris.append("gs://shop/products.json")
        request.errors_config.gcs_prefix = "gs://shop/errors"
        job = import_products.ImportProductsJob(root, line_pool)
        job.pool_min_bytes = 0
        outcomes.append(run(tmp_path / "run", job, import_products.KIND, request,
                            lambda store: None))
        shutil.rmtree(tmp_path / "run")
    assert outcomes[1] == outcomes[0]
    refused = sum(1 for i in range(150) if i % 13 == 0 or i % 9 == 0)
    assert outcomes[0].rows and outcomes[0].errors.count(b"\n") == refused


def kill_a_worker(store: Store, name: str) -> Callable[[], None]:
    def kill() -> None:
        workers = multiprocessing.active_children()
        if workers:  # none in the job's own thread
            os.kill(workers[0].pid, signal.SIGKILL)
    return kill


def stop_the_workers(store: Store, name: str) -> Callable[[], None]:
    """Every worker stopped: one stopped alone, holding no chunk at that moment (the
    other had taken them all), was never owed one, and the import ended with no worker
    found hung (failed so in a loaded CI run)."""
    def stop() -> None:
        for worker in multiprocessing.active_children():
            os.kill(worker.pid, signal.SIGSTOP)
    return stop


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("interrupt", "reason"), [(kill_a_worker, "died"),
                                                    (stop_the_workers, "hung")])
def test_a_worker_killed_or_stopped_mid_import_is_replaced_in_the_same_try(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        interrupt: Callable[[Store, str], Callable[[], None]], reason: str) -> None:
    """The chunks the lost workers owed are decoded again by others: the try goes on
    and ends as if nothing had happened (no retry, so the very same operation), and
    the workers given up on are counted. A stopped one was waited for for ever."""
    # (a hung worker's allowance: new workers start in seconds on a loaded machine)
    monkeypatch.setattr("server.retail.line_pool.WAIT_SECONDS", 15.0)
    pool = LinePool(2)
    try:
        thread, workers = both_ways(tmp_path, pool, 11, interrupt=interrupt, at=4)
        assert workers == thread
        assert pool.replaced == {"died": 0, "hung": 0} | {reason: 1}
        assert len(multiprocessing.active_children()) == 2  # the lost ones are gone
        for worker in multiprocessing.active_children():
            assert worker_state(worker.pid) != "T"  # (none left stopped)
    finally:
        pool.close()


def worker_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


# How long the line of visitor "slow" takes to check: longer than workers take to start
# and die on a loaded machine.
SLOW_SECONDS = 3.0


@dataclass(frozen=True)
class DeadlyCheck(import_events.EventCheck):
    """An event check whose worker process dies at the line of visitor `deadly`, and
    takes SLOW_SECONDS over that of visitor `slow`."""

    deadly: str = "deadly"
    slow: str = "slow"

    def __call__(self, item: Any) -> Any:
        if item.message.visitor_id == self.deadly:
            os._exit(3)
        if item.message.visitor_id == self.slow:
            time.sleep(SLOW_SECONDS)
        return super().__call__(item)


class DeadlyImport(import_events.ImportJob):
    def item_check(self, request: Any, now_s: int) -> import_events.EventCheck:
        check = super().item_check(request, now_s)
        return DeadlyCheck(check.catalog, check.strict_event_types, check.max_event_bytes,
                           check.now_s)


def visits(root: Path, name: str, visitors: dict[int, str]) -> str:
    """A file of 30 events (`visitors`: their visitors by index, v<index> for the
    others), as gs://shop/<name>."""
    lines = [json.dumps({"eventType": "home-page-view", "visitorId": visitors.get(i, f"v{i}"),
                         "eventTime": "2024-01-02T10:00:00Z"}) for i in range(30)]
    (root / "shop").mkdir(parents=True, exist_ok=True)
    (root / "shop" / name).write_text("\n".join(lines) + "\n")
    return f"gs://shop/{name}"


def claimed(store: Store, uri: str, number: int) -> OperationRecord:
    """An import of `uri` (operation `number`), claimed."""
    request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
    request.input_config.gcs_source.input_uris.append(uri)
    name = f"{PARENT}/operations/{import_events.KIND}-{number}"
    store.create_operation(OperationRecord(
        name=name, kind=import_events.KIND, done=False, create_time_us=NOW_NS // 1000,
        request=request.SerializeToString(),
        operation=bulk_import.new_operation(name, NOW_NS).SerializeToString()))
    record = store.claim_operation(OWNER, NOW_NS // 1000, 10**9, lambda holder: True)
    assert record is not None and record.name == name
    return record


def assert_stopped_at_the_deadly_chunk(store: Store, db: Path, name: str,
                                       raised: BaseException | None) -> None:
    """The import of `name` (a file of 30 lines, the deadly one the 18th) ended INTERNAL
    naming the lines of the chunk of the deadly line (batches of 7: 15-21), and what is
    stored is what its checkpoint counts: the batches before it, none of it."""
    assert isinstance(raised, Internal), raised
    assert "gs://shop/a.json lines 15-21:" in raised.message, raised.message
    assert "given up on 3 times in a row" in raised.message
    record = store.get_operation(name)
    assert record is not None and not record.done
    state = bulk_import.ImportState.load(record.checkpoint)
    assert (state.success, state.failure, state.line) == (14, 0, 14)
    assert len(sqlite_rows(db, "user_events")) == 14


@pytest.mark.timeout(120)
def test_a_line_that_kills_its_worker_ends_the_import_saying_where(tmp_path: Path) -> None:
    """The workers are replaced a few times, then the import ends INTERNAL naming the
    lines of the chunk. The chunk before it, slow, is still decoded when the deadly one
    kills its worker: it was blamed (the oldest not yet answered), named and stopped at;
    each chunk the workers owed is now decoded again alone, and only the deadly one
    kills."""
    root = tmp_path / "gcs"
    uri = visits(root, "a.json", {10: "slow", 17: "deadly"})
    pool = LinePool(2)
    job = DeadlyImport(root, False, MAX_EVENT_BYTES, pool)
    job.pool_min_bytes = 0
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        record = claimed(store, uri, 1)
        with pytest.raises(Internal) as raised:
            job(JobContext(record, store, FixedClock(NOW_NS), OWNER, 10**9, threading.Event()))
        assert_stopped_at_the_deadly_chunk(store, tmp_path / "events.db", record.name,
                                           raised.value)
        # (once with the chunks beside it, then MAX_LOSSES times alone)
        assert pool.replaced == {"died": MAX_LOSSES + 1, "hung": 0}
    finally:
        pool.close()
        store.close()


@pytest.mark.timeout(120)
def test_a_line_that_kills_its_worker_ends_its_own_import_not_one_beside_it(
        tmp_path: Path) -> None:
    """Two imports share the workers; one has a deadly line, the other a slow line
    decoded while it kills them: the other was blamed for every loss and ended too.
    Now it ends as if alone, every line stored and counted once, and the first ends
    at its deadly chunk."""
    pool = LinePool(2)
    raised: dict[str, BaseException | None] = {}
    stores: dict[str, Store] = {}
    try:
        jobs = []
        for number, (name, visitors) in enumerate([("deadly", {17: "deadly"}),
                                                    ("innocent", {3: "slow"})], 1):
            root = tmp_path / name / "gcs"
            uri = visits(root, "a.json", visitors)
            job = DeadlyImport(root, False, MAX_EVENT_BYTES, pool)
            job.pool_min_bytes = 0
            stores[name] = store = open_store(f"sqlite:///{tmp_path / name / 'events.db'}")
            ctx = JobContext(claimed(store, uri, number), store, FixedClock(NOW_NS), OWNER,
                             10**9, threading.Event())
            jobs.append(threading.Thread(target=ended, args=(job, ctx, raised, name)))
        for each in jobs:
            each.start()
        for each in jobs:
            each.join()
        assert_stopped_at_the_deadly_chunk(stores["deadly"], tmp_path / "deadly/events.db",
                                           f"{PARENT}/operations/{import_events.KIND}-1",
                                           raised["deadly"])
        assert raised["innocent"] is None
        record = stores["innocent"].get_operation(f"{PARENT}/operations/{import_events.KIND}-2")
        assert record is not None and record.done
        done = operations_pb2.Operation.FromString(record.operation)
        meta = import_config_pb2.ImportMetadata()
        done.metadata.Unpack(meta)
        assert (done.error.code, meta.success_count, meta.failure_count) == (0, 30, 0)
        assert len(sqlite_rows(tmp_path / "innocent/events.db", "user_events")) == 30
        assert pool.replaced == {"died": MAX_LOSSES + 1, "hung": 0}
    finally:
        pool.close()
        for store in stores.values():
            store.close()


def ended(job: BulkImport[Any, Any, Any], ctx: JobContext,
          raised: dict[str, BaseException | None], name: str) -> None:
    """Run `job`; what it raised (None) in raised[name]."""
    try:
        job(ctx)
    except Exception as error:  # (checked by the test)
        raised[name] = error
    else:
        raised[name] = None
