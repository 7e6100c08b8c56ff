"""What a single large request may not do: hold the event loop, which serves every
call of both transports (a 10 MB gRPC write held a health check 5 s, a 2 MB pixel
1.4 s), nor make the server hold megabytes for a caller with no key (health,
reflection), nor keep a connection slot while it does nothing."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import grpc
import pytest
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2, user_event_service_pb2_grpc
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from server import app
from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.policy.envelope import LARGE_REQUEST_BYTES
from server.retail import collect, validation
from server.store import EventQuery
from server.talent import event_service

from .http_client import call

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


@pytest.fixture
def both(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1), clock)
    try:
        yield running
    finally:
        running.stop()


def record_threads(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[str]:
    """The names of the threads `module.name` runs on from now."""
    seen: list[str] = []
    original = getattr(module, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name.rpartition("_")[0] or
                    threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return seen


def categories(total: int) -> list[str]:
    return ["c" * 20] * (total // 20)


def test_a_large_grpc_write_is_decoded_and_checked_off_the_loop(
        both: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    checked_on = record_threads(monkeypatch, validation, "user_event_violations")
    with grpc.insecure_channel(f"127.0.0.1:{both.port}") as channel:
        write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
        for visitor, size in (("small", 0), ("large", LARGE_REQUEST_BYTES + 1000)):
            event = user_event_pb2.UserEvent(event_type="category-page-view",
                                             visitor_id=visitor, page_categories=["c"])
            event.page_categories.extend(categories(size))
            write(user_event_service_pb2.WriteUserEventRequest(parent=CATALOG,
                                                               user_event=event))
    assert checked_on == ["footfall-loop", "footfall-decode"]
    both.store.flush()
    assert both.store.count_user_events(EventQuery(CATALOG)) == 2


def test_a_large_client_event_is_checked_off_the_loop(
        both: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    # (55,000 jobs of bad names, a writer key's 2 MB, held the loop 0.5 s)
    checked_on = record_threads(monkeypatch, event_service, "client_event_violations")
    with grpc.insecure_channel(f"127.0.0.1:{both.port}") as channel:
        create = event_service_pb2_grpc.EventServiceStub(channel).CreateClientEvent
        for event_id, jobs in (("small", 1), ("large", LARGE_REQUEST_BYTES // 20)):
            event = event_pb2.ClientEvent(event_id=event_id, request_id="r",
                                          create_time=timestamp_pb2.Timestamp(seconds=100))
            event.job_event.type = event_pb2.JobEvent.VIEW
            event.job_event.jobs.extend(["projects/p/tenants/t/jobs/j"] * jobs)
            create(event_service_pb2.CreateClientEventRequest(
                parent="projects/p/tenants/t", client_event=event))
    assert checked_on == ["footfall-loop", "footfall-decode"]


def test_a_large_collect_is_parsed_and_checked_off_the_loop(
        both: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed_on = record_threads(monkeypatch, collect, "parse_event_json")
    checked_on = record_threads(monkeypatch, validation, "user_event_violations")
    for visitor, size in (("small", 0), ("large", LARGE_REQUEST_BYTES + 1000)):
        event = {"eventType": "category-page-view", "visitorId": visitor,
                 "pageCategories": ["c", *categories(size)]}
        for way in ("GET", "$alt=json", "POST"):  # a browser's pixel; durable collects
            text = json.dumps({**event, "sessionId": way})
            query = f"userEvent={quote(text, safe='')}"
            if way == "GET":
                reply = call(both.http_port, "GET",
                             f"/v2/{CATALOG}/userEvents:collect?{query}")
            elif way == "POST":
                reply = call(both.http_port, "POST", f"/v2/{CATALOG}/userEvents:collect",
                             {"userEvent": text})
            else:
                reply = call(both.http_port, "GET",
                             f"/v2/{CATALOG}/userEvents:collect?{query}&$alt=json")
            if size and way != "POST":  # over 16 KiB in a URL: refused unread, as on Google
                # (a pixel gets its GIF still, the reason in its header)
                assert reply.status == (200 if way == "GET" else 400), reply.headers
                assert "user_event: a GET collect carries at most 16,384 characters" in \
                    (reply.headers.get("X-Footfall-Error") or reply.body.decode())
            else:
                assert reply.status == 200 and "X-Footfall-Error" not in reply.headers, \
                    reply.headers
    assert parsed_on == checked_on == ["footfall-loop"] * 3 + ["footfall-decode"]
    both.store.flush()
    assert both.store.count_user_events(EventQuery(CATALOG)) == 4


def test_health_and_reflection_take_no_large_request(both: Running) -> None:
    """Anyone may call them, key or not: a health watch of an 8 MB service name held
    some 30 MB for as long as it stayed open (60 of them: 1.9 GB)."""
    with grpc.insecure_channel(f"127.0.0.1:{both.port}",
                               options=[("grpc.max_send_message_length", -1)]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
        big = health_pb2.HealthCheckRequest(service="s" * 100_000)
        for call_it in (lambda: health.Check(big, timeout=5),
                        lambda: next(health.Watch(big, timeout=5))):
            with pytest.raises(grpc.RpcError) as refused:
                call_it()
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "/grpc.health.v1.Health/" in refused.value.details()
            assert "at most 16384" in refused.value.details()
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo
        [listed] = reflect(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                           timeout=5)
        assert listed.list_services_response.service
        with pytest.raises(grpc.RpcError) as refused:
            list(reflect(iter([reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="s" * 100_000)]), timeout=5))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "at most 16384" in refused.value.details()


def test_an_idle_grpc_connection_is_closed(settings: Settings, clock: FixedClock,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """--grpc-max-connections idle connections, opened without a key and never used,
    shut every other client out for as long as they stayed; the client of one closed
    reconnects on its next call."""
    monkeypatch.setattr(app, "GRPC_IDLE_MS", 300)
    running = start(settings, clock)
    try:
        states: list[grpc.ChannelConnectivity] = []
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            channel.subscribe(states.append, try_to_connect=True)
            health = health_pb2_grpc.HealthStub(channel)
            health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            # The callbacks come on grpc's own thread, later than the call's answer: the
            # channel's first IDLE can still be the last state seen after the Check.
            deadline = time.monotonic() + 10
            while not (grpc.ChannelConnectivity.READY in states
                       and states[-1] is grpc.ChannelConnectivity.IDLE
                       and states.index(grpc.ChannelConnectivity.READY) < len(states) - 1):
                assert time.monotonic() < deadline, states
                time.sleep(0.05)
            health.Check(health_pb2.HealthCheckRequest(), timeout=5)  # connects again
    finally:
        running.stop()
