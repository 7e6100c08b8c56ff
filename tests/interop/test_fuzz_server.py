"""Random requests through a running server: random UserEvents and ClientEvents
through the official clients, random bytes as gRPC requests, random JSON bodies
and query strings over HTTP. Every answer is OK or a deliberate error, never
UNKNOWN or INTERNAL, and the server stays healthy (and readable by the CLI)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2, talent_v4
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .examples import GOOGLE_EVENTS
from .support import RPC_DEADLINE, ServerProcess, list_events, retail_client, talent_client

# FOOTFALL_FUZZ_EXAMPLES=5000 for a deeper run than the default one.
FUZZ = settings(max_examples=int(os.environ.get("FOOTFALL_FUZZ_EXAMPLES", "150")),
                deadline=None, suppress_health_check=list(HealthCheck))
CATALOG = "projects/footfall-interop/locations/global/catalogs/fuzz"
TENANT = "projects/footfall-interop/tenants/fuzz"
# Codes a client's request may deliberately get; anything else is a server bug.
DELIBERATE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS,
              grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
              grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OUT_OF_RANGE}
HTTP_DELIBERATE = {400, 404, 405, 409, 413, 429}

_I32, _U32 = (-(2**31), 2**31 - 1), (0, 2**32 - 1)
_I64, _U64 = (-(2**63), 2**63 - 1), (0, 2**64 - 1)
_INTS = {
    FieldDescriptor.TYPE_INT32: _I32, FieldDescriptor.TYPE_SINT32: _I32,
    FieldDescriptor.TYPE_SFIXED32: _I32, FieldDescriptor.TYPE_UINT32: _U32,
    FieldDescriptor.TYPE_FIXED32: _U32, FieldDescriptor.TYPE_INT64: _I64,
    FieldDescriptor.TYPE_SINT64: _I64, FieldDescriptor.TYPE_SFIXED64: _I64,
    FieldDescriptor.TYPE_UINT64: _U64, FieldDescriptor.TYPE_FIXED64: _U64,
}
TEXT = (st.text(max_size=12) | st.sampled_from(["", "x" * 129, "x" * 1001, "USD", "usd",
                                               "10.0.0.1", "::1", "not-an-ip"])
        | st.text(min_size=200, max_size=300))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INTS:
        low, high = _INTS[kind]
        return st.integers(low, high) | st.sampled_from([0, 1, -1] if low < 0 else [0, 1])
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:  # known values and unknown ones (open enums)
        return st.sampled_from([v.number for v in field.enum_type.values]) | st.integers(-5, 50)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=20)
    if field.name == "event_type":
        return st.sampled_from(sorted(GOOGLE_EVENTS)) | TEXT
    return TEXT


# Time values at and beyond the edges of what Timestamp and Duration allow.
SECONDS = st.sampled_from([-62_135_596_801, -62_135_596_800, 0, 1_714_564_800,
                           253_402_300_799, 253_402_300_800, 315_576_000_001, -1]) \
    | st.integers(-(2**63), 2**63 - 1)
NANOS = st.sampled_from([-1, 0, 999_999_999, 1_000_000_000]) | st.integers(-(2**31), 2**31 - 1)


def _fill(draw: st.DrawFn, message: Message, depth: int, one_in: int) -> None:
    """Set about one field in `one_in` of `message` (and of its children) to anything."""
    if message.DESCRIPTOR.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        message.seconds, message.nanos = draw(SECONDS), draw(NANOS)  # type: ignore[attr-defined]
        return
    for field in message.DESCRIPTOR.fields:
        if draw(st.integers(1, one_in)) != 1:
            continue
        if field.message_type is not None:
            if depth >= 3:
                continue
            if field.message_type.GetOptions().map_entry:
                target = getattr(message, field.name)
                key_field, value_field = field.message_type.fields
                for key in draw(st.lists(_scalar(key_field), max_size=3)):
                    if value_field.message_type is not None:
                        _fill(draw, target[key], depth + 1, one_in)
                    else:
                        target[key] = draw(_scalar(value_field))
            elif field.is_repeated:
                for _ in range(draw(st.integers(0, 2))):
                    _fill(draw, getattr(message, field.name).add(), depth + 1, one_in)
            else:
                child = getattr(message, field.name)
                child.SetInParent()
                _fill(draw, child, depth + 1, one_in)
        elif field.is_repeated:
            getattr(message, field.name).extend(draw(st.lists(_scalar(field), max_size=3)))
        else:
            setattr(message, field.name, draw(_scalar(field)))


@st.composite
def messages(draw: st.DrawFn, cls: Any, valid: dict[str, Any] | None = None) -> Any:
    """A message of the official proto-plus class `cls` whose fields may hold anything
    their type allows, nested three deep: either made up from nothing, or the `valid`
    one (proto3 JSON) with a few fields changed, so that the server's deeper checks
    and its storage see odd values too."""
    if valid is not None and draw(st.booleans()):
        message = cls.pb()()
        json_format.ParseDict(valid, message)
        _fill(draw, message, 0, 8)
    else:
        message = cls.pb()()
        _fill(draw, message, 0, 3)
    return cls.wrap(message)


VALID_EVENT = {"eventType": "detail-page-view", "visitorId": "fuzz",
               "eventTime": "2024-05-01T12:00:00Z",
               "productDetails": [{"product": {"id": "p-1"}, "quantity": 1}]}
VALID_CLIENT_EVENT = {"eventId": "e", "createTime": "2024-05-01T12:00:00Z",
                      "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j"]}}


def check(call: Any) -> None:
    try:
        call()
    except exceptions.GoogleAPICallError as exc:
        assert exc.grpc_status_code in DELIBERATE, f"{exc.grpc_status_code}: {exc.message}"


@pytest.fixture(scope="module")
def retail(server: ServerProcess) -> Iterator[retail_v2.UserEventServiceClient]:
    with retail_client(server.address) as client:
        yield client


@pytest.fixture(scope="module")
def talent(server: ServerProcess) -> Iterator[talent_v4.EventServiceClient]:
    with talent_client(server.address) as client:
        yield client


@FUZZ
@given(event=messages(retail_v2.UserEvent, VALID_EVENT),
       write_async=st.booleans())
def test_random_user_events(retail: retail_v2.UserEventServiceClient,
                            event: retail_v2.UserEvent, write_async: bool) -> None:
    check(lambda: retail.write_user_event(request={
        "parent": CATALOG, "user_event": event, "write_async": write_async},
        timeout=RPC_DEADLINE))


@FUZZ
@given(event=messages(talent_v4.ClientEvent, VALID_CLIENT_EVENT))
def test_random_client_events(talent: talent_v4.EventServiceClient,
                              event: talent_v4.ClientEvent) -> None:
    check(lambda: talent.create_client_event(request={"parent": TENANT, "client_event": event},
                                             timeout=RPC_DEADLINE))


@FUZZ
@given(request=messages(retail_v2.CollectUserEventRequest,
                       {"parent": CATALOG, "userEvent": json.dumps(VALID_EVENT)}))
def test_random_collect_requests(retail: retail_v2.UserEventServiceClient,
                                 request: retail_v2.CollectUserEventRequest) -> None:
    request.parent = CATALOG if request.parent != "" else request.parent
    check(lambda: retail.collect_user_event(request=request, timeout=RPC_DEADLINE))


@FUZZ
@given(method=st.sampled_from(["WriteUserEvent", "CollectUserEvent", "PurgeUserEvents",
                               "ImportUserEvents", "RejoinUserEvents"]),
       payload=st.binary(max_size=64))
def test_random_bytes_as_grpc_requests(server: ServerProcess, method: str,
                                       payload: bytes) -> None:
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(f"/google.cloud.retail.v2.UserEventService/{method}",
                                   request_serializer=None, response_deserializer=None)
        try:
            call(payload, timeout=RPC_DEADLINE)
        except grpc.RpcError as exc:
            assert exc.code() in DELIBERATE, f"{exc.code()}: {exc.details()}"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=12)
FIELD_NAMES = st.sampled_from(["eventType", "visitorId", "eventTime", "userInfo", "attributes",
                               "productDetails", "purchaseTransaction", "sessionId", "offset",
                               "userEvent", "filter", "force", "inputConfig", "rawJson"])


@FUZZ
@given(path=st.sampled_from(["userEvents:write", "userEvents:collect", "userEvents:purge",
                             "userEvents:import", "userEvents:rejoin"]),
       body=st.dictionaries(FIELD_NAMES | st.text(max_size=6), JSON, max_size=5).map(json.dumps)
       | JSON.map(json.dumps) | st.text(max_size=40),
       query=st.dictionaries(FIELD_NAMES | st.sampled_from(["$alt", "key", "ets", "writeAsync"]),
                             st.text(max_size=12), max_size=3))
def test_random_json_bodies_over_http(server: ServerProcess, path: str, body: str,
                                      query: dict[str, str]) -> None:
    reply = requests.post(f"http://{server.http_address}/v2/{CATALOG}/{path}", params=query,
                          data=body.encode(), headers={"Content-Type": "application/json"},
                          timeout=RPC_DEADLINE)
    assert reply.status_code < 300 or reply.status_code in HTTP_DELIBERATE, reply.text
    if reply.status_code >= 300:
        assert reply.json()["error"]["status"] != "INTERNAL"


def test_the_server_is_healthy_and_what_it_stored_is_readable(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=RPC_DEADLINE)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    list_events(server.store, CATALOG, server.workdir, limit=100_000)
