"""Large requests of writer and reader keys take turns (policy.large): what a turn
costs the others, on a real server and store."""

from __future__ import annotations

import dataclasses
import gc
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import grpc
import pytest
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2, user_event_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

KEYS = {"writer-of-project-a-0123456789": "a", "writer-of-project-b-0123456789": "b"}
LOCKED_SECONDS = 2.0


@pytest.fixture
def keyed(settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Running]:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {key: {"projects": [project], "role": "writer"}
                                         for key, project in KEYS.items()}}))
    running = start(dataclasses.replace(settings, auth_file=str(keys)), clock)
    try:
        yield running
    finally:
        running.stop()


def large_write(channel: grpc.Channel, key: str, visitor: str) -> float:
    """A durable write of an event of about 80 KB with `key`, to its project: how long
    it took (seconds)."""
    event = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id=visitor)
    for i in range(400):
        event.attributes[f"pad{i}"].text.append("x" * 200)
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=f"projects/{KEYS[key]}/locations/global/catalogs/default_catalog",
        user_event=event)
    began = time.monotonic()
    user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent(
        request, metadata=[("x-goog-api-key", key)], timeout=60)
    return time.monotonic() - began


def test_a_large_write_that_waited_for_a_locked_store_holds_back_no_other_key(
        keyed: Running, settings: Settings) -> None:
    # Its turn was charged its wall time: project a's write waited 3 s for the store
    # (locked by another connection: a backup, the sqlite3 shell), and project b's next
    # large write on the idle server then waited 5.8 s for its turn (twice the wait).
    a, b = KEYS
    with grpc.insecure_channel(f"127.0.0.1:{keyed.port}") as channel:
        large_write(channel, a, "first")
        lock = sqlite3.connect(settings.store.removeprefix("sqlite:///"), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        took: list[float] = []
        waiting = threading.Thread(target=lambda: took.append(large_write(channel, a, "v1")))
        waiting.start()
        time.sleep(LOCKED_SECONDS)
        lock.execute("COMMIT")
        lock.close()
        waiting.join(30)
        assert took and took[0] >= LOCKED_SECONDS * 0.9  # (it did wait for the store)
        assert large_write(channel, b, "v2") < LOCKED_SECONDS / 2


def _held_requests() -> list[str]:
    """The frames that the collector alone would free holding bytes of over 1 MB (a
    request's), by name."""
    return [frame.f_code.co_name for frame in gc.get_objects()
            if isinstance(frame, FrameType) and any(
                isinstance(value, bytes) and len(value) > 1_000_000
                for value in frame.f_locals.values())]


def _none_held(refuse: Callable[[], grpc.RpcError]) -> None:
    """Three refusals made by `refuse`, the collector off: none left holding its request."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            assert refuse().code() == grpc.StatusCode.INVALID_ARGUMENT
        deadline = time.monotonic() + 5  # (the call's task ends just after its answer)
        while _held_requests() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _held_requests() == []
    finally:
        gc.enable()


def test_a_refused_request_is_let_go_without_waiting_for_the_collector(
        running: Running) -> None:
    # grpc keeps an abort's exception in the call's state, which the guard's frame held
    # through its context: a cycle, and in it each refused request's bytes (and, through
    # the refusal's traceback, its decoded message), until the collector's next run,
    # which serve makes rarer (app.YOUNG_COLLECTION): 30 refusals of 2 MB held some
    # 120 MB more.
    event = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id="v")
    for i in range(2000):
        event.attributes[f"k{i}"].text.append("x" * 600)  # (over 256 characters: refused)
    request = user_event_service_pb2.WriteUserEventRequest(
        parent="projects/p/locations/global/catalogs/default_catalog", user_event=event)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)

        def refuse() -> grpc.RpcError:
            with pytest.raises(grpc.RpcError) as refused:
                stub.WriteUserEvent(request, timeout=30)
            return refused.value

        _none_held(refuse)


def test_a_refused_stream_is_let_go_without_waiting_for_the_collector(
        running: Running) -> None:
    # ... and so a stream refused before it opens, in the frames that handed its request
    # on: a health watch of 2 MB (anyone's, no key needed; the largest, --max-request-
    # bytes) held it until the collector ran
    request = health_pb2.HealthCheckRequest(service="s" * 2_000_000)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def refuse() -> grpc.RpcError:
            with pytest.raises(grpc.RpcError) as refused:
                list(stub.Watch(request, timeout=30))
            return refused.value

        _none_held(refuse)
