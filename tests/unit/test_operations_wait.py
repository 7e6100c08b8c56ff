"""WaitOperation: woken by the runner rather than polling the store, bounded in
how many wait at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2

from server.clock import SystemClock
from server.errors import NotFound
from server.operations.runner import JobContext, OperationRunner
from server.operations.service import WAIT_POLL_SECONDS, OperationsService
from server.store.rows import OperationRecord
from server.store.sqlite import SqliteStore

from .threads import in_background, until

OPS = "projects/p/locations/global/catalogs/default_catalog/operations/"


def wait_to_end(service: OperationsService, request: operations_pb2.WaitOperationRequest) -> Any:
    """WaitOperation run to its end (on a loop of this thread)."""
    return asyncio.run(service.WaitOperation(request, None))


OPS = "projects/p/locations/global/catalogs/default_catalog/operations/"


class CountingStore(SqliteStore):
    """An in-memory store that counts how often operations are read."""

    def __init__(self) -> None:
        super().__init__(None)
        self.reads = 0

    def get_operation(self, name: str) -> OperationRecord | None:
        self.reads += 1
        return super().get_operation(name)


@pytest.fixture
def store() -> Iterator[CountingStore]:
    opened = CountingStore()
    yield opened
    opened.close()


def pending(store: Any, name: str, kind: str = "job") -> str:
    store.create_operation(OperationRecord(
        name=OPS + name, kind=kind, done=False, create_time_us=1, request=b"",
        operation=operations_pb2.Operation(name=OPS + name).SerializeToString()))
    return OPS + name


def wait_request(name: str, seconds: int) -> operations_pb2.WaitOperationRequest:
    return operations_pb2.WaitOperationRequest(name=name,
                                               timeout=duration_pb2.Duration(seconds=seconds))


def test_a_wait_is_woken_when_the_runner_ends_the_operation(store: CountingStore) -> None:
    release = threading.Event()

    def job(ctx: JobContext) -> None:
        release.wait(30)
        ctx.finish(operations_pb2.Operation(name=ctx.record.name, done=True))

    runner = OperationRunner(store, SystemClock(), {"job": job}, poll_seconds=0.02)
    # The store is read every 30 s at most: only the runner's signal can end this wait
    # within the 20 s it asks for.
    service = OperationsService(store, runner, poll_seconds=30)
    name = pending(store, "a")
    runner.start()
    try:
        thread, out = in_background(lambda: wait_to_end(service, wait_request(name, 20)))
        release.set()
        thread.join(10)
        assert not thread.is_alive(), "the wait was not woken by the end of the job"
    finally:
        release.set()
        runner.stop()
    assert out[0].done
    assert store.reads <= 4  # one per wake-up, not one per 10 ms


def test_a_wait_reads_the_store_slowly_for_other_replicas(store: CountingStore) -> None:
    name = pending(store, "b")
    service = OperationsService(store, None)  # the default poll: WAIT_POLL_SECONDS
    answer = wait_to_end(service, wait_request(name, 2))
    assert not answer.done
    assert store.reads <= 2 / WAIT_POLL_SECONDS + 2  # a 10 ms poll read it ~200 times
    # ...and sees an end it was not told of (another replica's) at the next poll.
    thread, out = in_background(lambda: wait_to_end(service, wait_request(name, 20)))
    finished = operations_pb2.Operation(name=name, done=True).SerializeToString()
    store._write(lambda conn: conn.execute(
        "UPDATE operations SET done = 1, operation = ? WHERE name = ?", (finished, name)))
    thread.join(10)
    assert not thread.is_alive() and out[0].done


def test_waits_past_the_limit_answer_at_once(store: CountingStore) -> None:
    name = pending(store, "c")
    service = OperationsService(store, None, poll_seconds=30, max_waits=2)
    waiting = [in_background(lambda: wait_to_end(service, wait_request(name, 60)))
               for _ in range(2)]
    # Both slots are taken once both waiters have registered with the wake-ups.
    until(lambda: service._wakeups.waiting == 2, "both slots to be taken")
    extra = wait_to_end(service, wait_request(name, 60))  # answers at once
    assert extra.name == name and not extra.done
    service._wakeups.close()  # a draining server lets the others go
    for thread, out in waiting:
        thread.join(10)
        assert not thread.is_alive() and not out[0].done


def test_a_deleted_operation_ends_its_waits_with_not_found(store: CountingStore) -> None:
    name = pending(store, "d")
    service = OperationsService(store, None, poll_seconds=30)
    thread, out = in_background(lambda: wait_to_end(service, wait_request(name, 20)))
    until(lambda: service._wakeups.waiting == 1, "the call to wait")
    asyncio.run(service.DeleteOperation(operations_pb2.DeleteOperationRequest(name=name), None))
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(out[0], NotFound)
    assert out[0].code == grpc.StatusCode.NOT_FOUND
