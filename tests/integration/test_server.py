"""The server in-process, through our own generated stubs."""

from __future__ import annotations

import json
import threading
from typing import Any

import grpc
import pytest
from footfall.retail.v2 import (
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc
from google.protobuf import json_format, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.store import EventQuery, open_store

from . import http_client
from .conftest import NOW_NS

PARENT = "projects/p/locations/global/catalogs/default_catalog"
TENANT = "projects/p/tenants/t"


def event(**fields: object) -> user_event_pb2.UserEvent:
    body = {"eventType": "home-page-view", "visitorId": "v1", **fields}
    return json_format.ParseDict(body, user_event_pb2.UserEvent())


def retail(channel: grpc.Channel) -> user_event_service_pb2_grpc.UserEventServiceStub:
    return user_event_service_pb2_grpc.UserEventServiceStub(channel)


def bad_request(error: grpc.RpcError) -> error_details_pb2.BadRequest:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status in the trailers"
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    return detail


def test_write_stamps_time_and_stores(channel: grpc.Channel, running: Running) -> None:
    answer = retail(channel).WriteUserEvent(
        user_event_service_pb2.WriteUserEventRequest(parent=PARENT, user_event=event()))
    assert answer.event_time.ToNanoseconds() == NOW_NS
    assert answer.visitor_id == "v1"
    assert running.store.count_user_events(EventQuery(PARENT)) == 1


def test_equal_writes_stamped_at_one_time_are_two_events(channel: grpc.Channel,
                                                        running: Running) -> None:
    # Two equal events with one time are one event (dedup): two writes the server
    # stamped alike (the clock standing still here; two --processes reading the same
    # nanosecond) were both acknowledged and stored once.
    answers = [retail(channel).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=event())) for _ in range(3)]
    assert [a.event_time.ToNanoseconds() for a in answers] == [NOW_NS, NOW_NS + 1, NOW_NS + 2]
    assert running.store.count_user_events(EventQuery(PARENT)) == 3


def test_a_field_mask_proto3_json_cannot_write_is_refused_naming_it(
        channel: grpc.Channel, running: Running) -> None:
    # Stored, it made every REST read of the catalog's events answer 500 (json_format
    # cannot write a path with an upper-case letter); the fuzz test found it.
    bad = event(eventType="detail-page-view", productDetails=[{"product": {"id": "p1"}}])
    bad.product_details[0].product.retrievable_fields.paths.append("Title")
    with pytest.raises(grpc.RpcError) as caught:
        retail(channel).WriteUserEvent(
            user_event_service_pb2.WriteUserEventRequest(parent=PARENT, user_event=bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = bad_request(caught.value).field_violations
    assert violation.field == "user_event.product_details[0].product.retrievable_fields.paths[0]"
    assert violation.description == ("must be snake_case, as field mask paths are (proto3 JSON "
                                     "cannot carry it), got 'Title'; did you mean 'title'?")
    assert running.store.count_user_events(EventQuery(PARENT)) == 0


def test_write_keeps_a_given_time(channel: grpc.Channel) -> None:
    answer = retail(channel).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=event(eventTime="2023-01-02T03:04:05.5Z")))
    assert answer.event_time.ToJsonString() == "2023-01-02T03:04:05.500Z"


def test_invalid_write_lists_every_violation_with_details(channel: grpc.Channel,
                                                          running: Running) -> None:
    bad = event(visitorId="", eventType="detail-page-view", cartId="c")
    with pytest.raises(grpc.RpcError) as caught:
        retail(channel).WriteUserEvent(
            user_event_service_pb2.WriteUserEventRequest(parent="catalogs/x", user_event=bad))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in bad_request(error).field_violations]
    assert fields == ["parent", "user_event.visitor_id", "user_event.product_details",
                      "user_event.cart_id"]
    assert "user_event.visitor_id: is required" in error.details()
    assert running.store.count_user_events(EventQuery(PARENT)) == 0


def test_missing_user_event(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        retail(channel).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(parent=PARENT))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "user_event: is required"


def test_collect_answers_a_gif_and_stores(channel: grpc.Channel, running: Running) -> None:
    body = retail(channel).CollectUserEvent(user_event_service_pb2.CollectUserEventRequest(
        parent=PARENT, user_event=json.dumps({"eventType": "home-page-view", "visitorId": "px"}),
        uri="https://shop.example/", ets=1_700_000_000_000))
    assert body.content_type == "image/gif" and body.data.startswith(b"GIF89a")
    [(_, payload)] = running.store.list_user_events(EventQuery(PARENT), limit=5)
    stored = user_event_pb2.UserEvent.FromString(payload)
    assert stored.uri == "https://shop.example/"
    assert stored.event_time.ToMilliseconds() == 1_700_000_000_000


def test_collect_bad_json_says_where(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        retail(channel).CollectUserEvent(user_event_service_pb2.CollectUserEventRequest(
            parent=PARENT, user_event='{"eventType": "home-page-view" "visitorId": 1}'))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "user_event: " in caught.value.details()
    assert "column" in caught.value.details()


def client_event(event_id: str = "e1", kind: int = 1, jobs: tuple[str, ...] = (
        f"{TENANT}/jobs/j1",)) -> event_pb2.ClientEvent:
    return event_pb2.ClientEvent(
        request_id="r1", event_id=event_id, create_time=timestamp_pb2.Timestamp(seconds=100),
        job_event=event_pb2.JobEvent(type=kind, jobs=list(jobs)))  # type: ignore[arg-type]


def test_talent_retry_returns_stored_and_conflict_is_already_exists(
        channel: grpc.Channel) -> None:
    stub = event_service_pb2_grpc.EventServiceStub(channel)

    def create(e: event_pb2.ClientEvent) -> event_pb2.ClientEvent:
        return stub.CreateClientEvent(
            event_service_pb2.CreateClientEventRequest(parent=TENANT, client_event=e))

    assert create(client_event()) == client_event()
    assert create(client_event()) == client_event()
    with pytest.raises(grpc.RpcError) as caught:
        create(client_event(kind=2))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "'e1'" in caught.value.details()


def test_client_events_are_counted_as_their_commit_stores_them(served: Running) -> None:
    """footfall_events_stored_total{kind="client_event"} counts what a commit stored,
    as for user events: counted as its call was answered OK, an event whose caller
    gave up before its commit (its deadline) was stored and not counted, and an
    identical retry, which stores nothing, was counted again."""
    counted = 'footfall_events_stored_total{kind="client_event"}'

    def count() -> str:
        served.store.flush()  # (the listener runs after the callers are answered:
        served.store.flush()  # heard by the second flush)
        text = http_client.call(served.http_port, "GET", "/metrics").body.decode()
        return next((line for line in text.splitlines() if line.startswith(counted)), "")

    held, free = threading.Event(), threading.Event()

    def hold(_db: Any) -> None:
        held.set()
        free.wait(10)

    request = event_service_pb2.CreateClientEventRequest(parent=TENANT,
                                                         client_event=client_event())
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        stub = event_service_pb2_grpc.EventServiceStub(channel)
        holding = served.store._committer.submit_fn(hold)  # type: ignore[attr-defined]
        assert held.wait(5)
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateClientEvent(request, timeout=0.3)  # queued behind the writer's job
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        free.set()
        holding.result(timeout=10)
        assert count() == f"{counted} 1.0"  # stored by the commit after the deadline
        assert stub.CreateClientEvent(request) == client_event()  # a retry: nothing stored
        assert count() == f"{counted} 1.0"
    assert len(served.store.client_events_newest(TENANT, 10)) == 1


def test_talent_validation(channel: grpc.Channel) -> None:
    stub = event_service_pb2_grpc.EventServiceStub(channel)
    bad = client_event(event_id="", kind=0, jobs=("projects/p/tenants/other/jobs/j",
                                                  "not-a-job"))
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateClientEvent(
            event_service_pb2.CreateClientEventRequest(parent=TENANT, client_event=bad))
    fields = [v.field for v in bad_request(caught.value).field_violations]
    assert fields == ["client_event.event_id", "client_event.job_event.type",
                      "client_event.job_event.jobs[0]", "client_event.job_event.jobs[1]"]


def test_a_client_event_created_past_a_day_ahead_is_refused(channel: grpc.Channel,
                                                            clock: FixedClock) -> None:
    stub = event_service_pb2_grpc.EventServiceStub(channel)
    now_s = clock.now_ns() // 1_000_000_000
    for ahead, refused in ((86_400, False), (86_401, True)):
        event = client_event(event_id=f"ahead-{ahead}")
        event.create_time.seconds = now_s + ahead
        request = event_service_pb2.CreateClientEventRequest(parent=TENANT, client_event=event)
        if not refused:
            assert stub.CreateClientEvent(request) == event
            continue
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateClientEvent(request)
        [violation] = bad_request(caught.value).field_violations
        assert violation.field == "client_event.create_time", violation
        assert violation.description.startswith("must be at most a day after the server's "
                                                "time"), violation


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "google.cloud.retail.v2.UserEventService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {"google.cloud.retail.v2.UserEventService", "google.cloud.talent.v4.EventService",
            "google.cloud.retail.v2.ProductService"} <= services


def test_stop_flushes_async_writes(settings: Settings) -> None:
    server = start(settings)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        stub = retail(chan)
        for i in range(300):
            stub.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=PARENT, user_event=event(visitorId=f"v{i}"), write_async=True))
    server.stop()
    store = open_store(settings.store)
    try:
        assert store.count_user_events(EventQuery(PARENT)) == 300
    finally:
        store.close()


def test_server_faults_are_internal_not_unknown(channel: grpc.Channel, running: Running) -> None:
    running.store.close()  # every later write now fails inside the server
    with pytest.raises(grpc.RpcError) as caught:
        retail(channel).WriteUserEvent(
            user_event_service_pb2.WriteUserEventRequest(parent=PARENT, user_event=event()))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "WriteUserEvent" in caught.value.details()


def test_fields_the_contract_does_not_know_are_dropped_not_stored(
        channel: grpc.Channel, running: Running) -> None:
    # A client built from another contract: the same event with an unknown field 999
    # (string "j1", "j2") inside user_event. Google's front end drops such fields.
    known = event(eventTime="2023-01-02T03:04:05Z").SerializeToString()
    write = channel.unary_unary("/google.cloud.retail.v2.UserEventService/WriteUserEvent",
                                request_serializer=None,
                                response_deserializer=user_event_pb2.UserEvent.FromString)
    for tag in (b"j1", b"j2"):
        unknown = b"\xba\x3e" + bytes([len(tag)]) + tag  # field 999, length-delimited
        user_event = known + unknown
        request = user_event_service_pb2.WriteUserEventRequest(parent=PARENT) \
            .SerializeToString() + b"\x12" + bytes([len(user_event)]) + user_event
        answer = write(request)
        assert b"\xba\x3e" not in answer.SerializeToString()  # not echoed back
    # The same event twice: stored once.
    assert running.store.count_user_events(EventQuery(PARENT)) == 1


BAD_UTF8 = b"\x0a\x03\xff\xfe\xfd"  # field 1 (a string) holding no UTF-8


@pytest.mark.parametrize("method", [
    "/footfall.console.v1.ConsoleService/WatchUserEvents",
    "/footfall.console.v1.ConsoleService/WatchUserEventBatches",
    "/footfall.console.v1.ConsoleService/WatchClientEvents",
    "/footfall.console.v1.ConsoleService/WatchRejections",
    "/grpc.health.v1.Health/Watch",
])
def test_a_stream_request_that_does_not_decode_is_invalid_argument(
        channel: grpc.Channel, method: str, caplog: pytest.LogCaptureFixture) -> None:
    """grpc's own decoding answered UNKNOWN and logged an ERROR with a traceback,
    for every such call (health and reflection need no key)."""
    stream = channel.unary_stream(method, request_serializer=None,
                                  response_deserializer=None)
    with pytest.raises(grpc.RpcError) as caught:
        next(iter(stream(BAD_UTF8, timeout=10)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert [v.field for v in bad_request(caught.value).field_violations] == ["request"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_reflection_request_that_does_not_decode_is_invalid_argument(
        channel: grpc.Channel, caplog: pytest.LogCaptureFixture) -> None:
    method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    stream = channel.stream_stream(method, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as caught:
        next(iter(stream(iter([BAD_UTF8]), timeout=10)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
