"""The gRPC requests read or served at once hold at most --max-request-bytes-held
(policy.request_room), over a real socket: a call past it waits for room, and is
refused RESOURCE_EXHAUSTED naming the flag when none comes; a read that trickles
while others wait is ended to make room."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import user_event_service_pb2

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.policy import request_room

from .test_server import PARENT, event, retail

MOST = 64 * 1024  # --max-request-bytes


def _serve(settings: Settings, clock: FixedClock, held: int) -> Iterator[Running]:
    server = start(dataclasses.replace(settings, max_request_bytes=MOST,
                                       max_request_bytes_held=held), clock)
    yield server
    server.stop()


@pytest.fixture
def room_of_one(settings: Settings, clock: FixedClock, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    """A server whose requests have room for one of the largest: one held, however
    small, leaves no room for another read."""
    monkeypatch.setattr(request_room, "WAIT_SECONDS", 1.0)
    yield from _serve(settings, clock, MOST)


@pytest.fixture
def room_of_two(settings: Settings, clock: FixedClock, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    monkeypatch.setattr(request_room, "WAIT_SECONDS", 10.0)
    monkeypatch.setattr(request_room, "SLOW_READ_SECONDS", 0.5)
    yield from _serve(settings, clock, 2 * MOST)


def _write(channel: grpc.Channel, visitor: str, timeout: float = 10) -> None:
    retail(channel).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=event(visitorId=visitor)), timeout=timeout)


def test_a_call_finding_no_room_for_its_request_is_refused_naming_the_flag(
        room_of_one: Running) -> None:
    """A watch holds its request while it stays open: with room for one request, a
    write waits, is refused RESOURCE_EXHAUSTED naming the flag, and goes through once
    the watch has ended. (Without the room every request was read as it came.)"""
    with grpc.insecure_channel(f"127.0.0.1:{room_of_one.port}") as channel:
        console = console_pb2_grpc.ConsoleServiceStub(channel)
        watch = console.WatchUserEvents(console_pb2.WatchUserEventsRequest(parent=PARENT),
                                        timeout=30)
        try:
            refused = None
            for n in range(100):  # (until the watch's request is in: it is sent at once)
                try:
                    _write(channel, f"before-{n}")
                except grpc.RpcError as exc:
                    refused = exc
                    break
                time.sleep(0.05)
            assert refused is not None, "no write was refused"
            assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, refused.details()
            assert "--max-request-bytes-held" in (refused.details() or "")
        finally:
            watch.cancel()
        _write(channel, "written")


def test_a_request_trickling_in_while_others_wait_is_ended_to_make_room(
        room_of_two: Running) -> None:
    """Two calls whose requests never come hold the room of two; a third waits until
    the oldest has read for SLOW_READ_SECONDS, which ends it UNAVAILABLE, and is
    written. (Without the room the stalled calls waited 60 s, the third not at all.)"""
    method = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
    release = threading.Event()

    def never_sent() -> Iterator[bytes]:
        release.wait(20)
        return
        yield b""  # (a generator: its request never comes)

    with grpc.insecure_channel(f"127.0.0.1:{room_of_two.port}") as channel:
        stalled = channel.stream_unary(method, request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
        calls = [stalled.future(never_sent(), timeout=8) for _ in range(2)]
        try:
            grpc.channel_ready_future(channel).result(timeout=5)
            _write(channel, "after-the-stalled")
            ended = calls[0].exception(timeout=5)
        finally:
            release.set()
            for call in calls:
                call.cancel()
    assert isinstance(ended, grpc.RpcError)
    assert ended.code() is grpc.StatusCode.UNAVAILABLE, ended.details()
    assert "--max-request-bytes-held" in (ended.details() or "")
