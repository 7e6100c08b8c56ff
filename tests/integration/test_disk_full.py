"""A full disk under the SQLite store, for real: a small tmpfs filled with a
ballast file. Writes are refused with UNAVAILABLE naming the full disk, health says
NOT_SERVING, a running import pauses; once the ballast is gone writes commit
again, health says SERVING and the import finishes with every event. Mounting
needs root: without it the test skips, saying so loudly."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from footfall.retail.v2 import (
    import_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2, json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import Running, start
from server.config import Settings
from server.store import EventQuery
from server.store.sqlite import ROOM_TO_RESUME
from tests.pixels import pixel_refusal

from .tmpfs import SmallDisk, mounted

PARENT = "projects/p/locations/global/catalogs/default_catalog"
TENANT = "projects/p/tenants/t"
DISK_BYTES = 2 * ROOM_TO_RESUME  # emptied, it has the room the store wants to resume
NOTICED = 20.0  # seconds within which a full disk, or room again, must show
IMPORTED = 6000  # events of the import that meets the full disk (steps of 1,000)
MAX_SMALL_WRITES = 2000  # far more than fit in a WAL file grown by one failed import step


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with mounted(tmp_path / "disk", DISK_BYTES) as small:
        yield small


@pytest.fixture
def running(disk: SmallDisk, tmp_path: Path) -> Iterator[Running]:
    server = start(Settings(host="127.0.0.1", port=0, store=f"sqlite:///{disk.path}/events.db",
                            grace_seconds=5, workers=8, gcs_root=str(tmp_path / "gcs")))
    yield server
    server.stop()


def event(visitor: str) -> user_event_pb2.UserEvent:
    return json_format.ParseDict({"eventType": "home-page-view", "visitorId": visitor,
                                  "eventTime": "2024-01-01T00:00:00Z"},
                                 user_event_pb2.UserEvent())


def serving(health: health_pb2_grpc.HealthStub) -> bool:
    """Whether the server's health check says SERVING."""
    answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return answer.status == health_pb2.HealthCheckResponse.SERVING


def eventually(probe: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + NOTICED
    while not probe():
        assert time.monotonic() < end, f"gave up after {NOTICED}s waiting for {what}"
        time.sleep(0.05)


def test_a_full_disk_refuses_writes_pauses_jobs_and_recovers(
        running: Running, disk: SmallDisk, tmp_path: Path) -> None:
    files = tmp_path / "gcs" / "shop"
    files.mkdir(parents=True)
    (files / "events.json").write_text("".join(
        json.dumps({"eventType": "home-page-view", "visitorId": f"imported-{i}",
                    "eventTime": "2024-01-01T00:00:00Z"}) + "\n" for i in range(IMPORTED)))
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        ops = operations_pb2_grpc.OperationsStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        def write(visitor: str, write_async: bool = False) -> None:
            retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=PARENT, user_event=event(visitor), write_async=write_async), timeout=30)

        for i in range(20):
            write(f"before-{i}")
        assert serving(health)

        disk.fill()
        disk.make_room(128 * 1024)  # enough to store the import's operation, not its events
        request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
        request.input_config.gcs_source.input_uris.append("gs://shop/events.json")
        operation = retail.ImportUserEvents(request, timeout=30)
        eventually(lambda: not serving(health), "health NOT_SERVING")

        # Small writes still commit while they fit in what the WAL file has already
        # taken of the disk; each one acknowledged must be there at the end.
        acknowledged = [f"before-{i}" for i in range(20)]
        for i in range(MAX_SMALL_WRITES):
            try:
                write(f"nearly-full-{i}")
            except grpc.RpcError as exc:
                refused = exc
                break
            acknowledged.append(f"nearly-full-{i}")
        else:
            pytest.fail(f"{MAX_SMALL_WRITES} writes committed on a full disk")
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert "disk holding the event store is full" in str(refused.details())
        with pytest.raises(grpc.RpcError) as refused_async:  # never acknowledged either
            write("refused-async", write_async=True)
        assert refused_async.value.code() == grpc.StatusCode.UNAVAILABLE
        paused = ops.GetOperation(operations_pb2.GetOperationRequest(name=operation.name),
                                  timeout=10)
        assert not paused.done  # paused, not ended

        disk.empty()
        eventually(lambda: serving(health), "health SERVING again")
        write("after")
        done = ops.WaitOperation(operations_pb2.WaitOperationRequest(
            name=operation.name, timeout=duration_pb2.Duration(seconds=30)), timeout=40)
    assert done.done and not done.HasField("error"), done.error
    meta = import_config_pb2.ImportMetadata()
    done.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (IMPORTED, 0)
    stored = {user_event_pb2.UserEvent.FromString(payload).visitor_id
              for _, payload in running.store.list_user_events(EventQuery(PARENT), 100_000)}
    assert stored == ({*acknowledged, "after"} | {f"imported-{i}" for i in range(IMPORTED)})


def filled(disk: SmallDisk,
           retail: user_event_service_pb2_grpc.UserEventServiceStub) -> None:
    """`disk` filled, then written to through `retail` until a write meets it full."""
    disk.fill()
    for i in range(MAX_SMALL_WRITES):
        try:
            retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=PARENT, user_event=event(f"v-{i}")), timeout=30)
        except grpc.RpcError:
            return


def test_a_client_event_that_meets_the_full_disk_waits_for_room(
        running: Running, disk: SmallDisk) -> None:
    """README: a synchronous write waits up to 5 s for room. A client event (a
    function job of the writer, as product writes are) was refused at once."""
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        talent = event_service_pb2_grpc.EventServiceStub(channel)
        filled(disk, retail)
        outcome: list[object] = []

        def create() -> None:
            started = time.monotonic()
            try:
                talent.CreateClientEvent(event_service_pb2.CreateClientEventRequest(
                    parent=TENANT, client_event=json_format.ParseDict(
                        {"eventId": "waits-for-room", "createTime": "2024-01-01T00:00:00Z",
                         "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j"]}},
                        event_pb2.ClientEvent())), timeout=30)
                outcome.append(time.monotonic() - started)
            except grpc.RpcError as exc:
                outcome.append(exc)

        creating = threading.Thread(target=create)
        creating.start()
        time.sleep(1.0)
        disk.empty()
        creating.join(30)
    [took] = outcome
    assert isinstance(took, float), took
    assert 1.0 <= took < 5.0


def test_a_full_disk_is_said_once_not_every_second(
        running: Running, disk: SmallDisk, caplog: pytest.LogCaptureFixture) -> None:
    """README: the log says `the disk is full` once. The job runner, which looks for
    jobs every second in a write, added `could not look for operations to run` to it
    every second for as long as the disk stayed full."""
    caplog.set_level(logging.INFO)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        filled(disk, retail)
        eventually(lambda: not serving(health), "health NOT_SERVING")

        def looks_failed() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                    and r.getMessage().startswith("could not look for operations to run")]

        eventually(lambda: bool(looks_failed()), "the runner to meet the full disk")
        time.sleep(3.5)  # (what is asserted is that nothing more comes: the runner looks
        # every second)
        assert len(looks_failed()) == 1, looks_failed()
        disk.empty()
        eventually(lambda: serving(health), "health SERVING again")
        eventually(lambda: any(r.getMessage() == "looking for operations to run again"
                               for r in caplog.records), "the runner to say it looks again")


def test_pixels_that_meet_the_full_disk_are_stored_once_there_is_room(
        disk: SmallDisk, tmp_path: Path) -> None:
    """A browser never sends a pixel again: refused while the disk was full, each was
    answered with its GIF and kept only as a refusal, itself queued until there was room
    (8 s of a full disk under 300 pixels a second: 3,762 of 9,079 not among the events).
    Queued instead, as the refusal was, they are stored once there is room."""
    running = start(Settings(host="127.0.0.1", port=0, http_port=-1,
                             store=f"sqlite:///{disk.path}/events.db", grace_seconds=5,
                             workers=4, gcs_root=str(tmp_path / "gcs")))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)

            filled(disk, retail)
            eventually(lambda: not serving(health), "health NOT_SERVING")
            assert [pixel_refusal(running.http_port, PARENT, {
                "eventType": "home-page-view", "visitorId": visitor}, NOTICED)
                for visitor in ("pixel-1", "pixel-2")] == [None, None]
            disk.empty()
            eventually(lambda: serving(health), "health SERVING again")
            running.store.flush()
            pixels = {user_event_pb2.UserEvent.FromString(payload).visitor_id
                      for _, payload in running.store.list_user_events(EventQuery(PARENT), 100)
                      } & {"pixel-1", "pixel-2"}
            assert pixels == {"pixel-1", "pixel-2"}
    finally:
        running.stop()
