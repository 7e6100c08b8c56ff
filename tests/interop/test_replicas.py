"""Two Footfall processes on one PostgreSQL database, as replicas behind a load
balancer: whatever one stores the other sees, an import whose replica is killed
is finished by the other (every event exactly once), and both list the same
operations.

Needs FOOTFALL_TEST_POSTGRES_DSN (see tests/conftest.py): skipped loudly without
it, never skipped in CI (.ci/run sets it). Imports nothing of ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import retail_v2, talent_v4
from google.cloud.retail_v2.services.product_service.transports import (
    ProductServiceGrpcTransport,
)
from google.longrunning import operations_pb2, operations_pb2_grpc

from .examples import example, user_event
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    count_events,
    list_events,
    retail_client,
    talent_client,
)

CATALOG = "projects/footfall-interop/locations/global/catalogs/replicas"
BRANCH = f"{CATALOG}/branches/default_branch"
TENANT = "projects/footfall-interop/tenants/replicas"
LEASE = "2"  # seconds: a job of a replica that died is free again soon after
IMPORT_FILES, LINES_PER_FILE = 8, 5_000
DEADLINE = 90.0  # seconds for the import to finish on the surviving replica


@pytest.fixture
def store(postgres_databases: Any) -> str:
    """A database of this test's own (skips when FOOTFALL_TEST_POSTGRES_DSN is unset)."""
    url: str = postgres_databases.create("replicas")
    return url


@pytest.fixture
def gcs_root(tmp_path: Path) -> Path:
    return tmp_path / "gcs"


@pytest.fixture
def replicas(server_factory: Callable[..., ServerProcess], store: str,
             gcs_root: Path) -> Callable[[], ServerProcess]:
    """`start()` starts one more replica on the test's database and gs:// root."""
    return lambda: server_factory("--lease-seconds", LEASE, "--gcs-root", str(gcs_root),
                                  store=store)


def operations_stub(channel: grpc.Channel) -> operations_pb2_grpc.OperationsStub:
    return operations_pb2_grpc.OperationsStub(channel)


def all_operations(stub: operations_pb2_grpc.OperationsStub, done: str = "") -> list[Any]:
    """(name, done) of every operation under CATALOG, page by page (3 a page)."""
    seen: list[Any] = []
    token = ""
    while True:
        page = stub.ListOperations(operations_pb2.ListOperationsRequest(
            name=CATALOG, page_size=3, page_token=token, filter=done), timeout=RPC_DEADLINE)
        seen.extend((op.name, op.done) for op in page.operations)
        token = page.next_page_token
        if not token:
            return seen


def wait_done(stub: operations_pb2_grpc.OperationsStub, name: str,
              deadline: float = DEADLINE) -> operations_pb2.Operation:
    end = time.monotonic() + deadline
    while True:
        op = stub.GetOperation(operations_pb2.GetOperationRequest(name=name),
                               timeout=RPC_DEADLINE)
        if op.done:
            return op
        assert time.monotonic() < end, f"{name} not done within {deadline}s"
        time.sleep(0.05)


def test_what_one_replica_stores_the_other_sees(
        replicas: Callable[[], ServerProcess], channels: Callable[[ServerProcess], grpc.Channel],
        store: str, tmp_path: Path) -> None:
    one, two = replicas(), replicas()
    event = user_event(example("home-page-view", visitorId="seen-by-both",
                               eventTime="2024-05-20T14:03:07Z"))
    with retail_client(one.address) as retail_one, retail_client(two.address) as retail_two:
        retail_one.write_user_event(request={"parent": CATALOG, "user_event": event},
                                    timeout=RPC_DEADLINE)
        assert count_events(store, CATALOG, tmp_path) == 1
        # The same event through the other replica is a duplicate of the stored one.
        retail_two.write_user_event(request={"parent": CATALOG, "user_event": event},
                                    timeout=RPC_DEADLINE)
        assert count_events(store, CATALOG, tmp_path) == 1

        # Long-running operations started on either replica, read on both.
        started = []
        for client, visitor in ((retail_one, "a"), (retail_two, "b"), (retail_one, "c"),
                                (retail_two, "d")):
            started.append(client.purge_user_events(
                request={"parent": CATALOG, "filter": f'visitorId = "{visitor}"',
                         "force": False}, timeout=RPC_DEADLINE).operation.name)
    stub_one = operations_stub(channels(one))
    stub_two = operations_stub(channels(two))
    for index, name in enumerate(started):
        done = wait_done((stub_one, stub_two)[index % 2], name)  # awaited on the other
        assert done == stub_one.GetOperation(operations_pb2.GetOperationRequest(name=name),
                                             timeout=RPC_DEADLINE)
    listed = all_operations(stub_one)
    assert sorted(name for name, _ in listed) == sorted(started)
    assert listed == all_operations(stub_two)
    assert all_operations(stub_one, "done=true") == all_operations(stub_two, "done=true") \
        == listed

    with talent_client(one.address) as talent_one, talent_client(two.address) as talent_two:
        client_event = talent_v4.ClientEvent(
            event_id="replicated", create_time={"seconds": 1_714_564_800},
            job_event={"type_": talent_v4.JobEvent.JobEventType.VIEW,
                       "jobs": [f"{TENANT}/jobs/j1"]})
        talent_one.create_client_event(parent=TENANT, client_event=client_event,
                                       timeout=RPC_DEADLINE)
        assert talent_two.create_client_event(parent=TENANT, client_event=client_event,
                                              timeout=RPC_DEADLINE) == client_event
        changed = talent_v4.ClientEvent(client_event)
        changed.job_event.jobs = [f"{TENANT}/jobs/j2"]
        with pytest.raises(exceptions.AlreadyExists):
            talent_two.create_client_event(parent=TENANT, client_event=changed,
                                           timeout=RPC_DEADLINE)

    products_one = retail_v2.ProductServiceClient(
        transport=ProductServiceGrpcTransport(channel=channels(one)))
    products_two = retail_v2.ProductServiceClient(
        transport=ProductServiceGrpcTransport(channel=channels(two)))
    created = products_one.create_product(
        parent=BRANCH, product_id="sku-1",
        product=retail_v2.Product(title="Tent", categories=["Outdoor > Tents"]),
        timeout=RPC_DEADLINE)
    assert products_two.get_product(name=created.name, timeout=RPC_DEADLINE) == created


def write_import_files(root: Path) -> list[str]:
    """IMPORT_FILES files of LINES_PER_FILE distinct events; their visitor ids."""
    folder = root / "shop" / "replicas"
    folder.mkdir(parents=True)
    visitors = []
    for f in range(IMPORT_FILES):
        lines = []
        for i in range(LINES_PER_FILE):
            visitor = f"visitor-{f}-{i:05d}"
            visitors.append(visitor)
            lines.append(f'{{"eventType": "home-page-view", "visitorId": "{visitor}", '
                         f'"eventTime": "2024-05-20T14:{i // 3600 % 60:02d}:{i % 60:02d}Z"}}')
        (folder / f"part-{f}.json").write_text("\n".join(lines) + "\n")
    return visitors


def import_metadata(op: operations_pb2.Operation) -> retail_v2.ImportMetadata:
    return retail_v2.ImportMetadata.deserialize(op.metadata.value)


@pytest.mark.timeout(180)
def test_an_import_whose_replica_is_killed_is_finished_by_the_other(
        replicas: Callable[[], ServerProcess], channels: Callable[[ServerProcess], grpc.Channel],
        store: str, gcs_root: Path, tmp_path: Path) -> None:
    visitors = write_import_files(gcs_root)
    total = len(visitors)
    one, two = replicas(), replicas()
    with retail_client(one.address) as retail_one:
        name = retail_one.import_user_events(request={
            "parent": CATALOG,
            "input_config": {"gcs_source": {"input_uris": ["gs://shop/replicas/*.json"]}},
        }, timeout=RPC_DEADLINE).operation.name
    stub_one, stub_two = operations_stub(channels(one)), operations_stub(channels(two))

    # Mid-way: some batches committed, most not.
    end = time.monotonic() + DEADLINE
    while True:
        op = stub_one.GetOperation(operations_pb2.GetOperationRequest(name=name),
                                   timeout=RPC_DEADLINE)
        assert not op.done, "the import finished before it could be interrupted; make it larger"
        if import_metadata(op).success_count >= 2_000:
            break
        assert time.monotonic() < end, "the import made no progress"
        time.sleep(0.02)
    # Whichever replica claimed the job dies without a word (normally `one`, which
    # was told of the new operation; `two` only polls).
    running = f"running {name}"
    holder, survivor, survivor_stub = (one, two, stub_two) if running in one.log_text() \
        else (two, one, stub_one)
    assert running in holder.log_text()
    holder.kill()

    done = wait_done(survivor_stub, name)
    assert running in survivor.log_text(), "the survivor did not take the job over"
    assert not done.HasField("error"), done.error
    response = retail_v2.ImportUserEventsResponse.deserialize(done.response.value)
    assert list(response.error_samples) == []
    metadata = import_metadata(done)
    assert (metadata.success_count, metadata.failure_count) == (total, 0)  # no batch twice
    summary = response.import_summary
    assert summary.joined_events_count + summary.unjoined_events_count == total
    assert count_events(store, CATALOG, tmp_path) == total  # nothing lost
    stored = [e["visitorId"] for e in list_events(store, CATALOG, tmp_path, limit=total + 10)]
    assert sorted(stored) == sorted(visitors)  # nothing doubled
    assert all_operations(survivor_stub) == [(name, True)]
