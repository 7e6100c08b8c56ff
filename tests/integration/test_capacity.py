"""Calls that stay open (WaitOperation, streams) never take the capacity that
writes and health need, with the default --workers.

No assertion here is a timing: how long writes take beside the waits is the
bench's to measure (bench/REPORT.md); a test holds what makes them fast, that a
waiting call costs the server no thread."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from footfall.retail.v2 import (
    import_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from server.app import Running, start
from server.config import Settings

PARENT = "projects/p/locations/global/catalogs/default_catalog"
WAITS = 200
WRITERS = 16
WRITES_EACH = 60
WRITE_DEADLINE = 5.0
STORE_THREAD = re.compile(r"footfall-store_(\d+)")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    # The default --workers (32) and wait limit: the figures the issue names.
    server = start(Settings(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path}/events.db",
                            grace_seconds=5, gcs_root=str(tmp_path / "gcs")))
    yield server
    server.stop()


def event(visitor: str) -> user_event_pb2.UserEvent:
    return user_event_pb2.UserEvent(event_type="home-page-view", visitor_id=visitor)


def write_p99(channel: grpc.Channel, tag: str) -> float:
    """p99 latency (s) of WRITERS threads writing WRITES_EACH events each; inf if
    any write failed (a starved server answers DEADLINE_EXCEEDED)."""
    stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)
    latencies: list[float] = []
    start_together = threading.Barrier(WRITERS)

    def writer(i: int) -> None:
        start_together.wait()
        for n in range(WRITES_EACH):
            request = user_event_service_pb2.WriteUserEventRequest(
                parent=PARENT, user_event=event(f"{tag}-{i}-{n}"))
            began = time.perf_counter()
            try:
                stub.WriteUserEvent(request, timeout=WRITE_DEADLINE)
            except grpc.RpcError:
                latencies.append(math.inf)
                return
            latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return latencies[max(math.ceil(len(latencies) * 0.99) - 1, 0)]


def server_threads(workers: int) -> tuple[set[str], set[threading.Thread]]:
    """The server's named threads, its store pool's counted as one name each (at most
    `workers` of them), and every other thread of this process (the test's)."""
    named, others = set(), set()
    for thread in threading.enumerate():
        pool = STORE_THREAD.fullmatch(thread.name)
        if pool:
            assert int(pool.group(1)) < workers, thread.name
        if thread.name.startswith("footfall-"):
            named.add("footfall-store" if pool else thread.name)
        else:
            others.add(thread)
    return named, others


def test_200_waits_cost_no_thread_and_leave_writes_and_health_their_capacity(
        running: Running) -> None:
    # Nobody runs jobs: the import stays unfinished, so every wait lasts until it is
    # cancelled below (a wait may last 600 s).
    running.runner.stop()
    channels = [grpc.insecure_channel(f"127.0.0.1:{running.port}") for _ in range(5)]
    writes_channel, wait_channels = channels[0], channels[1:]
    workers = running.settings.workers
    try:
        op = user_event_service_pb2_grpc.UserEventServiceStub(writes_channel).ImportUserEvents(
            import_config_pb2.ImportUserEventsRequest(
                parent=PARENT, input_config=import_config_pb2.UserEventInputConfig(
                    user_event_inline_source=import_config_pb2.UserEventInlineSource(
                        user_events=[event("imported")]))))
        health = health_pb2_grpc.HealthStub(writes_channel)
        idle = write_p99(writes_channel, "idle")
        named_idle, others_idle = server_threads(workers)
        answered = threading.Semaphore(0)
        waits = []
        for i in range(WAITS):
            stub = operations_pb2_grpc.OperationsStub(wait_channels[i % len(wait_channels)])
            call = stub.WaitOperation.future(operations_pb2.WaitOperationRequest(
                name=op.name, timeout=duration_pb2.Duration(seconds=120)), timeout=180)
            call.add_done_callback(lambda _, done=answered: done.release())
            waits.append(call)
        # Waits past the limit answer at once (the operation as it is); let that
        # burst pass. The old code never answered one.
        settled = time.monotonic() + 10
        early = sum(answered.acquire(timeout=max(settled - time.monotonic(), 0))
                    for _ in range(WAITS - running.settings.max_wait_operations))
        loaded = write_p99(writes_channel, "loaded")
        named, others = server_threads(workers)
        try:
            serving = health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
        except grpc.RpcError as exc:
            serving = exc.code()
        still_waiting = sum(not call.done() for call in waits)
        for call in waits:
            call.cancel()
        print(f"write p99 ({WRITERS} writers): idle {idle * 1000:.1f} ms, "
              f"during {still_waiting} waits {loaded * 1000:.1f} ms")
        assert serving == health_pb2.HealthCheckResponse.SERVING, serving
        assert still_waiting == running.settings.max_wait_operations, early
        # Every write answered within its deadline beside the waits (inf if one was not).
        assert loaded < WRITE_DEADLINE, (idle, loaded)
        # The waits took no thread of the server: its named threads are the ones it had
        # (its store pool at most --workers), and the only threads that came are grpc's
        # pollers of the client channels the waits use, one each. A server answering a
        # call on a thread of its own (a grpc executor's, as before the async core)
        # showed about --workers more.
        assert named == named_idle, sorted(named ^ named_idle)
        came = sorted(thread.name for thread in others - others_idle)
        assert len(came) <= len(wait_channels), came
        for call in waits:
            if not call.cancelled():
                answer = call.result()
                assert answer.name == op.name and not answer.done
    finally:
        for channel in channels:
            channel.close()


def test_open_streams_leave_writes_and_health_their_capacity(running: Running) -> None:
    # More reflection streams (grpcurl opens one per call) than --workers, each kept
    # open by a client that has not finished sending.
    streams = running.settings.workers + 8
    finish = threading.Event()

    def requests() -> Iterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        finish.wait(60)

    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        calls = [reflection.ServerReflectionInfo(requests(), timeout=30) for _ in range(streams)]
        try:
            for call in calls[:running.settings.workers]:  # as many streams being served
                assert next(call).list_services_response.service
            write = user_event_service_pb2.WriteUserEventRequest(parent=PARENT,
                                                                 user_event=event("v"))
            user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent(
                write, timeout=WRITE_DEADLINE)
            assert health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2).status == \
                health_pb2.HealthCheckResponse.SERVING
            for call in calls[running.settings.workers:]:
                assert next(call).list_services_response.service
        finally:
            finish.set()
            for call in calls:
                call.cancel()


LIMIT = 4


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Running]:
    server = start(Settings(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path}/events.db",
                            grace_seconds=5, gcs_root=str(tmp_path / "gcs"),
                            max_concurrent_rpcs=LIMIT))
    yield server
    server.stop()


def test_calls_past_the_concurrency_limit_are_refused_at_once_and_later_ones_served(
        limited: Running) -> None:
    finish = threading.Event()

    def requests() -> Iterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        finish.wait(60)

    write = user_event_service_pb2.WriteUserEventRequest(parent=PARENT, user_event=event("v"))
    with grpc.insecure_channel(f"127.0.0.1:{limited.port}") as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        writes = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        calls = [reflection.ServerReflectionInfo(requests(), timeout=30) for _ in range(LIMIT)]
        try:
            for call in calls:  # each one is being served: it holds its place
                assert next(call).list_services_response.service
            began = time.monotonic()
            with pytest.raises(grpc.RpcError) as refused:
                writes.WriteUserEvent(write, timeout=WRITE_DEADLINE)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() - began < WRITE_DEADLINE / 2
        finally:
            finish.set()
            for call in calls:
                call.cancel()
        # The places free up as the streams end.
        deadline = time.monotonic() + 10
        while True:
            try:
                writes.WriteUserEvent(write, timeout=WRITE_DEADLINE)
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or \
                        time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


STREAMS = 3


@pytest.fixture
def few_streams(tmp_path: Path) -> Iterator[Running]:
    server = start(Settings(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path}/events.db",
                            grace_seconds=5, gcs_root=str(tmp_path / "gcs"),
                            max_streams=STREAMS))
    yield server
    server.stop()


def test_streams_anyone_may_open_never_take_the_calls_of_writes_and_health(
        few_streams: Running) -> None:
    finish = threading.Event()

    def requests() -> Iterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        finish.wait(60)

    write = user_event_service_pb2.WriteUserEventRequest(parent=PARENT, user_event=event("v"))
    with grpc.insecure_channel(f"127.0.0.1:{few_streams.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=30)
                   for _ in range(STREAMS)]
        try:
            for watch in watches:  # each one is open: it holds its place
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            for more in (lambda: next(health.Watch(health_pb2.HealthCheckRequest(), timeout=5)),
                         lambda: next(reflection.ServerReflectionInfo(requests(), timeout=5))):
                with pytest.raises(grpc.RpcError) as refused:
                    more()
                assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "--max-streams" in str(refused.value.details())
            # Calls that are no stream go on.
            user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent(
                write, timeout=WRITE_DEADLINE)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == \
                health_pb2.HealthCheckResponse.SERVING
        finally:
            finish.set()
            for watch in watches:
                watch.cancel()
        # A place frees up when a stream ends.
        deadline = time.monotonic() + 10
        while True:
            try:
                assert next(health.Watch(health_pb2.HealthCheckRequest(), timeout=5)).status
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or \
                        time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.mark.parametrize("method", [
    "/google.cloud.retail.v2.UserEventService/WriteUserEvent",
    "/grpc.health.v1.Health/Watch",
])
def test_calls_whose_requests_never_come_do_not_hold_every_place(
        limited: Running, method: str) -> None:
    """A call's headers sent and its one request never: grpc held the call, one of
    --max-concurrent-rpcs, for as long as the client liked, and LIMIT of them had
    every other call refused RESOURCE_EXHAUSTED. Past a quarter of the limit waiting
    for their requests, the one waiting longest is ended UNAVAILABLE."""
    finish = threading.Event()

    def never() -> Iterator[bytes]:
        finish.wait(60)
        yield from ()

    write = user_event_service_pb2.WriteUserEventRequest(parent=PARENT, user_event=event("v"))
    with grpc.insecure_channel(f"127.0.0.1:{limited.port}") as channel:
        unsent = channel.stream_stream(method, request_serializer=None,
                                       response_deserializer=None)
        held = [unsent(never(), timeout=30) for _ in range(LIMIT)]
        writes = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        try:
            deadline = time.monotonic() + 10
            while sum(call.done() for call in held) < LIMIT - 1:
                assert time.monotonic() < deadline, "the calls waiting longest were not ended"
                time.sleep(0.05)
            ended = [(call.code(), call.details()) for call in held if call.done()]
            assert all(code == grpc.StatusCode.UNAVAILABLE and "makes room" in (details or "")
                       for code, details in ended), ended
            writes.WriteUserEvent(write, timeout=WRITE_DEADLINE)  # served, not refused
        finally:
            finish.set()
            for call in held:
                call.cancel()
