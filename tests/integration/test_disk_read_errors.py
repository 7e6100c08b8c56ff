"""A disk that fails the store's reads and writes with I/O errors for a while (EIO: a
disk failing, a volume's path lost), for real (see loop_disk.py). A read is refused
UNAVAILABLE naming the store's disk, not INTERNAL, and so is a write whose BEGIN
IMMEDIATE meets the failing read; the server says so once, not with a traceback a
call; the pixels answered meanwhile are kept queued; once the disk works again reads
and writes answer as before. Needs root and a loop device: else the test skips."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import (
    product_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.protobuf import json_format

from server.app import Running, start
from server.config import Settings
from server.names import default_branch
from server.store import EventQuery
from server.store.sqlite import SqliteStore
from tests.pixels import pixel_refusal

from .loop_disk import FailingDisk, failing_disk
from .test_disk_full import NOTICED, event, eventually

PARENT = "projects/p/locations/global/catalogs/default_catalog"
WRITTEN = 50
READS = 5
WRITES = 3  # (each waits out the store's retries: 5 s)
SKU = "shirt-1"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[FailingDisk]:
    with failing_disk(tmp_path / "disk", 64 * 2**20) as failing:
        yield failing


@pytest.fixture
def running(disk: FailingDisk, tmp_path: Path) -> Iterator[Running]:
    server = start(Settings(host="127.0.0.1", port=0, http_port=-1,
                            store=f"sqlite:///{disk.path}/events.db", grace_seconds=5,
                            workers=4, gcs_root=str(tmp_path / "gcs")))
    yield server
    server.stop()



def writes_again(write: Callable[[str], None]) -> None:
    """Wait until `write("after")` commits again (the disk healed)."""

    def writes() -> bool:
        try:
            write("after")
        except grpc.RpcError:
            return False
        return True

    eventually(writes, "writes to commit again")


def test_reads_the_disk_fails_are_refused_unavailable_said_once_and_recover(
        running: Running, disk: FailingDisk, caplog: pytest.LogCaptureFixture) -> None:
    """Before, SQLite's "database disk image is malformed" (how it reports a read that
    met EIO inside a statement) answered INTERNAL, "see the server log", with a
    traceback a call there."""
    caplog.set_level(logging.INFO)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        console = console_pb2_grpc.ConsoleServiceStub(channel)

        def write(i: int) -> None:
            retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=PARENT, user_event=event(f"visitor-{i}")), timeout=30)

        for i in range(WRITTEN - 1):
            write(i)

        def count() -> int:
            return console.CountUserEvents(console_pb2.CountUserEventsRequest(
                parent=PARENT), timeout=30).count

        assert count() == WRITTEN - 1
        write(WRITTEN - 1)  # (after it the readers' SQLite caches are stale: pages are read)
        disk.fail()
        caplog.clear()
        for _ in range(READS):
            with pytest.raises(grpc.RpcError) as refused:
                count()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
            assert "disk holding the event store failed a read" in str(refused.value.details())
        said = [r.getMessage() for r in caplog.records]
        assert len([line for line in said if "fails the store's reads" in line]) == 1, said
        assert not [r for r in caplog.records if r.exc_info], said  # no traceback a call

        disk.heal()

        def reads() -> bool:
            try:
                return count() == WRITTEN
            except grpc.RpcError:
                return False

        eventually(reads, "reads to work again")
    assert any("gives the store's reads again" in r.getMessage() for r in caplog.records)


def test_writes_on_a_disk_failing_its_reads_are_refused_unavailable_and_pixels_wait(
        running: Running, disk: FailingDisk, caplog: pytest.LogCaptureFixture) -> None:
    """After the first write met the failing disk at its commit (an I/O error), SQLite
    reads the database afresh at the next BEGIN IMMEDIATE, and reports that read's EIO
    as "database disk image is malformed". Before, that went by the failing disk's
    handling: each write answered INTERNAL (a traceback a call), and the batch was
    committed again one write at a time, dropping the pixels acknowledged in it."""
    caplog.set_level(logging.INFO)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)

        def write(visitor: str) -> None:
            retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=PARENT, user_event=event(visitor)), timeout=30)

        write("before")
        disk.fail()
        caplog.clear()
        pixels = []
        for i in range(WRITES):
            with pytest.raises(grpc.RpcError) as refused:
                write(f"failing-{i}")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
            assert "I/O error" in str(refused.value.details())
            pixels.append(f"pixel-{i}")
            assert pixel_refusal(running.http_port, PARENT, {
                "eventType": "home-page-view", "visitorId": pixels[-1]}, NOTICED) is None
        said = [r.getMessage() for r in caplog.records]
        told = [line for line in said if "the disk fails the store's writes" in line]
        assert len(told) == 1, said
        assert "store unhealthy (its disk fails the store's writes (I/O errors)): health " \
            "NOT_SERVING" in said
        assert not [r for r in caplog.records if r.exc_info], said  # no traceback a call

        disk.heal()
        writes_again(write)
    running.store.flush()
    stored = [user_event_pb2.UserEvent.FromString(payload).visitor_id
              for _, payload in running.store.list_user_events(EventQuery(PARENT), 1000)]
    assert sorted(stored) == sorted({"before", *pixels, "after"})  # each once


def test_a_join_whose_products_the_disk_fails_to_read_is_unavailable_and_kept(
        running: Running, disk: FailingDisk, caplog: pytest.LogCaptureFixture) -> None:
    """The writer reads the products of its batch's joins (products_to_join) before it
    takes the write lock: on the failing disk that read let SQLite's own error out
    ("database disk image is malformed"), so a write naming a product answered INTERNAL
    and a pixel naming one, acknowledged, was dropped ("not stored"). Now the read is
    refused as every other read is (UNAVAILABLE naming the disk, said once), and the
    joins wait in the writer's queue until the disk works again."""
    caplog.set_level(logging.INFO)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)

        def write(visitor: str) -> None:
            retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=PARENT, user_event=viewed(visitor)), timeout=30)

        write("before")  # (not joined: the catalog holds no product yet)
        # The product written by another connection (as `serve --processes` or the CLI
        # write): the writer's own SQLite cache is stale then, and read afresh.
        other = SqliteStore(str(disk.path / "events.db"))
        try:
            other.create_product(default_branch(PARENT), SKU, product_pb2.Product(
                name=f"{default_branch(PARENT)}/products/{SKU}", id=SKU, title="A shirt",
                categories=["shirts"]).SerializeToString())
        finally:
            other.close()
        disk.fail()
        caplog.clear()
        with pytest.raises(grpc.RpcError) as refused:
            write("failing")
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
        assert "disk holding the event store failed a read" in str(refused.value.details())
        assert pixel_refusal(running.http_port, PARENT, json_format.MessageToDict(
            viewed("pixel")), NOTICED) is None
        said = [r.getMessage() for r in caplog.records]
        assert len([line for line in said if "fails the store's reads" in line]) == 1, said
        assert not [line for line in said if "was not stored" in line], said
        assert not [r for r in caplog.records if r.exc_info], said  # no traceback a call

        disk.heal()
        writes_again(write)
    running.store.flush()
    stored = {event.visitor_id: event.product_details[0].product.title for event in (
        user_event_pb2.UserEvent.FromString(payload)
        for _, payload in running.store.list_user_events(EventQuery(PARENT), 1000))}
    assert stored == {"before": "", "pixel": "A shirt", "after": "A shirt"}


def viewed(visitor: str) -> user_event_pb2.UserEvent:
    """A detail-page-view of SKU by `visitor`."""
    return json_format.ParseDict({
        "eventType": "detail-page-view", "visitorId": visitor,
        "eventTime": "2024-01-01T00:00:00Z", "productDetails": [{"product": {"id": SKU}}]},
        user_event_pb2.UserEvent())
