"""grpcurl, knowing nothing but what server reflection tells it."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from google.cloud import retail_v2, talent_v4
from google.protobuf import json_format

from .support import ServerProcess, list_events

USER_EVENT_SERVICE = "google.cloud.retail.v2.UserEventService"
EVENT_SERVICE = "google.cloud.talent.v4.EventService"
PRODUCT_SERVICE = "google.cloud.retail.v2.ProductService"
OPERATIONS = "google.longrunning.Operations"
HEALTH = "grpc.health.v1.Health"


def grpcurl_run(grpcurl: str, server: ServerProcess, *args: str, flags: tuple[str, ...] = (),
                data: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """`grpcurl -plaintext [flags] [-d JSON] ADDRESS args...`"""
    command = [grpcurl, "-plaintext", "-max-time", "10", *flags]
    if data is not None:
        command += ["-d", json.dumps(data)]
    return subprocess.run([*command, server.address, *args],
                          capture_output=True, text=True, timeout=30)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"grpcurl failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def test_list_shows_the_services_health_and_reflection(grpcurl: str,
                                                        server: ServerProcess) -> None:
    services = set(ok(grpcurl_run(grpcurl, server, "list")).split())
    assert {USER_EVENT_SERVICE, EVENT_SERVICE, PRODUCT_SERVICE, OPERATIONS, HEALTH} <= services
    assert services & {"grpc.reflection.v1.ServerReflection",
                       "grpc.reflection.v1alpha.ServerReflection"}


def test_describe_user_event_service(grpcurl: str, server: ServerProcess) -> None:
    text = ok(grpcurl_run(grpcurl, server, "describe", USER_EVENT_SERVICE))
    for rpc, answer in [("WriteUserEvent", ".google.cloud.retail.v2.UserEvent"),
                        ("CollectUserEvent", ".google.api.HttpBody"),
                        ("ImportUserEvents", ".google.longrunning.Operation"),
                        ("PurgeUserEvents", ".google.longrunning.Operation"),
                        ("RejoinUserEvents", ".google.longrunning.Operation")]:
        assert f"rpc {rpc} (" in text
        assert f"returns ( {answer} )" in text.split(f"rpc {rpc} (", 1)[1].split("\n", 1)[0]
    assert "/v2/{parent=projects/*/locations/*/catalogs/*}/userEvents:write" in text


def test_describe_user_event_matches_the_official_descriptor(grpcurl: str,
                                                             server: ServerProcess) -> None:
    text = ok(grpcurl_run(grpcurl, server, "describe", "google.cloud.retail.v2.UserEvent"))
    assert "message UserEvent {" in text
    for field in retail_v2.UserEvent.pb().DESCRIPTOR.fields:
        assert f" {field.name} = {field.number}" in text, field.name


def test_write_user_event_through_reflection(grpcurl: str, server: ServerProcess,
                                             catalog: str) -> None:
    event = {"eventType": "detail-page-view", "visitorId": "GA1.2.555.1716211200",
             "eventTime": "2024-05-20T14:03:07.250Z",
             "productDetails": [{"product": {"id": "TENT-2P-ULTRA"}, "quantity": 1}],
             "userInfo": {"userId": "cust-1", "ipAddress": "198.51.100.7"}}
    out = ok(grpcurl_run(grpcurl, server, f"{USER_EVENT_SERVICE}/WriteUserEvent",
                         data={"parent": catalog, "userEvent": event}))
    # grpcurl may print proto field names or JSON names; parsing accepts both.
    answered = json_format.ParseDict(json.loads(out), retail_v2.UserEvent.pb()())
    assert json_format.MessageToDict(answered) == event
    assert list_events(server.store, catalog, server.workdir) == [event]


def test_create_client_event_through_reflection(grpcurl: str, server: ServerProcess,
                                                tenant: str) -> None:
    event = {"requestId": "search-81", "eventId": "evt-grpcurl",
             "createTime": "2024-05-20T14:03:07Z",
             "jobEvent": {"type": "APPLICATION_START", "jobs": [f"{tenant}/jobs/nurse-night"]}}
    out = ok(grpcurl_run(grpcurl, server, f"{EVENT_SERVICE}/CreateClientEvent",
                         data={"parent": tenant, "clientEvent": event}))
    answered = json_format.ParseDict(json.loads(out), talent_v4.ClientEvent.pb()())
    assert json_format.MessageToDict(answered) == event


def test_an_invalid_call_shows_invalid_argument(grpcurl: str, server: ServerProcess) -> None:
    result = grpcurl_run(grpcurl, server, f"{USER_EVENT_SERVICE}/WriteUserEvent",
                         data={"parent": "projects/p/catalogs/c",
                               "userEvent": {"eventType": "home-page-view"}})
    assert result.returncode != 0
    assert "Code: InvalidArgument" in result.stderr
    assert "user_event.visitor_id: is required" in result.stderr


def test_an_invalid_call_carries_bad_request_details(grpcurl: str,
                                                     server: ServerProcess) -> None:
    result = grpcurl_run(grpcurl, server, f"{EVENT_SERVICE}/CreateClientEvent",
                         flags=("-format-error",),
                         data={"parent": "projects/p/tenants/t", "clientEvent": {}})
    assert result.returncode != 0
    status = json.loads(result.stdout or result.stderr)
    assert status["code"] == 3  # INVALID_ARGUMENT
    [detail] = status["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    fields = {v["field"] for v in detail.get("fieldViolations", detail.get("field_violations"))}
    assert {"client_event.event_id", "client_event.create_time",
            "client_event.job_event"} <= fields


@pytest.mark.parametrize("service", ["", USER_EVENT_SERVICE, EVENT_SERVICE])
def test_health_check_is_serving(grpcurl: str, server: ServerProcess, service: str) -> None:
    out = ok(grpcurl_run(grpcurl, server, f"{HEALTH}/Check", data={"service": service}))
    assert json.loads(out) == {"status": "SERVING"}
