"""A gRPC call leaves nothing of Footfall's in reference cycles, only what grpc's own
method lookup leaves (5 objects a call without metadata, as an empty grpc.aio
handler's). Footfall counted every call in its caller's share with
`context.add_done_callback`, which grpc keeps in a list of the call's state that
its context refers to: each call left 9 more objects (the state, the context, the
list, the callback and what it held), 14 a durable write, which only a young
collection frees, and those collections held the loop, and every call in flight,
for milliseconds (server.policy.call_ends). Counted, not timed: every object the
collector finds unreachable after N calls, the collector off meanwhile."""

from __future__ import annotations

import dataclasses
import gc
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import (
    common_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

PARENT = "projects/p/locations/global/catalogs/default_catalog"
CALLS = 200
# What grpc's method lookup leaves a call (a closure's scope, the function, the call's
# details, its metadata and one object a metadata item: 5-6 here), and some room for
# whatever else the server did meanwhile; with the done-callback's cycle, 14-15.
MOST_A_CALL = 8
# Objects of a call that must never be in a cycle: its state and servicer context.
CALL_STATE = {"RPCState", "_ServicerContext"}
WRITER_KEY = "call-cycles-writer-key-0123456789ab"


@pytest.fixture(params=["auth off", "writer key"])
def keyed(request: pytest.FixtureRequest, settings: Settings, clock: FixedClock,
          tmp_path: Path) -> Iterator[tuple[Running, tuple[tuple[str, str], ...]]]:
    """A server, and the metadata of its calls."""
    key: tuple[tuple[str, str], ...] = ()
    if request.param == "writer key":
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps({"keys": {WRITER_KEY: {
            "projects": ["p"], "role": "writer", "name": "shop-frontend"}}}))
        settings = dataclasses.replace(settings, auth_file=str(keys))
        key = (("x-goog-api-key", WRITER_KEY),)
    server = start(settings, clock)
    yield server, key
    server.stop()


def left_in_cycles(calls: Callable[[], None]) -> tuple[int, Counter[str]]:
    """How many objects `calls()` left for the collector (the server's, in this
    process, and the client's), and how many of each type."""
    calls()  # (the first calls of a method make what lives on: its handlers, caches)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        calls()
        found = gc.collect()
        return found, Counter(type(thing).__name__ for thing in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def event(visitor: str, size: int = 0) -> user_event_pb2.UserEvent:
    attributes = {"a": common_pb2.CustomAttribute(text=["x" * 250] * (size // 250))} \
        if size else {}
    return user_event_pb2.UserEvent(event_type="home-page-view", visitor_id=visitor,
                                    attributes=attributes)


def test_durable_writes_leave_no_call_in_a_cycle(
        keyed: tuple[Running, tuple[tuple[str, str], ...]]) -> None:
    server, key = keyed
    written = 0
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)

        def writes() -> None:
            nonlocal written
            for _ in range(CALLS):
                written += 1
                stub.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                    parent=PARENT, user_event=event(f"visitor-{written}")),
                    metadata=key, timeout=30)

        found, kinds = left_in_cycles(writes)
    assert not CALL_STATE & set(kinds), kinds.most_common(12)
    assert found <= MOST_A_CALL * CALLS, kinds.most_common(12)


def test_large_answers_leave_no_call_in_a_cycle(running: Running) -> None:
    """A large answer is counted until its call ends (server.policy.unsent) as a
    call's share is: no cycle either."""
    pages = 20
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        writer = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        for n in range(40):  # 40 events of 2 KB: a page of 80 KB, a large answer
            writer.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=PARENT, user_event=event(f"visitor-{n}", 2000)), timeout=30)
        console = console_pb2_grpc.ConsoleServiceStub(channel)
        request = console_pb2.ListUserEventsRequest(parent=PARENT, page_size=40)
        assert console.ListUserEvents(request, timeout=30).ByteSize() > 64 * 1024

        def lists() -> None:
            for _ in range(pages):
                console.ListUserEvents(request, timeout=30)

        found, kinds = left_in_cycles(lists)
    assert not CALL_STATE & set(kinds), kinds.most_common(12)
    assert found <= MOST_A_CALL * pages, kinds.most_common(12)


def test_operation_waits_leave_no_call_in_a_cycle(running: Running) -> None:
    """WaitOperation woke its wait from a callback of the call's context (of no use:
    grpc cancels the call's task, and the wait with it, when the call ends), which
    left each wait's call in a cycle."""
    from footfall.retail.v2 import purge_config_pb2
    from google.longrunning import operations_pb2, operations_pb2_grpc
    from google.protobuf import duration_pb2

    waits = 50
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        events = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        operation = events.PurgeUserEvents(purge_config_pb2.PurgeUserEventsRequest(
            parent=PARENT, filter='eventType = "home-page-view"', force=True), timeout=30)
        operations = operations_pb2_grpc.OperationsStub(channel)
        request = operations_pb2.WaitOperationRequest(
            name=operation.name, timeout=duration_pb2.Duration(seconds=20))
        assert operations.WaitOperation(request, timeout=30).done

        def wait() -> None:
            for _ in range(waits):
                operations.WaitOperation(request, timeout=30)

        found, kinds = left_in_cycles(wait)
    assert not CALL_STATE & set(kinds), kinds.most_common(12)
    assert found <= MOST_A_CALL * waits, kinds.most_common(12)
