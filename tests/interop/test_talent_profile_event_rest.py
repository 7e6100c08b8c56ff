"""A talent v4beta1 client event holding a profile_event (of v4beta1's earlier
contract, which Google has since taken out of it) sent as JSON over REST, against
a `footfall serve` subprocess: refused INVALID_ARGUMENT naming
client_event.profile_event with the message the official v4beta1 client gets over
gRPC for the same event, beside the event's other faults, and nothing stored. (The
JSON parser refused it as "client_event: ... has no field named profileEvent".)
Imports nothing of ours."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import talent_v4beta1
from google.protobuf import timestamp_pb2

from .support import RPC_DEADLINE, ServerProcess, field_violations

PROJECT = "projects/footfall-interop"
TENANT = f"{PROJECT}/tenants/profile-events-rest"
CREATED = "2024-05-20T14:03:07Z"
# The same ProfileEvent in JSON and as ClientEvent field 6 in binary: type VIEW (2),
# profiles (2), jobs (6).
PROFILE = {"type": "VIEW", "profiles": [f"{TENANT}/profiles/candidate-7"],
           "jobs": [f"{TENANT}/jobs/nurse-night"]}


def profile_bytes() -> bytes:
    inner = b"\x08\x02" + delimited(b"\x12", PROFILE["profiles"][0].encode()) \
        + delimited(b"\x32", PROFILE["jobs"][0].encode())
    return delimited(b"\x32", inner)


def delimited(tag: bytes, data: bytes) -> bytes:
    """A length-delimited field: its tag, its length (a varint) and `data`."""
    length, size = b"", len(data)
    while size > 0x7F:
        length += bytes([size & 0x7F | 0x80])
        size >>= 7
    return tag + length + bytes([size]) + data


def over_rest(server: ServerProcess, parent: str, event: dict[str, Any]) -> requests.Response:
    return requests.post(f"http://{server.http_address}/v4beta1/{parent}/clientEvents",
                         json={"clientEvent": event}, timeout=RPC_DEADLINE)


def violations(answer: requests.Response) -> list[tuple[str, str]]:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    [details] = error["details"]
    return [(v["field"], v["description"]) for v in details["fieldViolations"]]


def over_grpc(client: talent_v4beta1.EventServiceClient, event_id: str,
              created: bool = True) -> exceptions.InvalidArgument:
    sent = talent_v4beta1.ClientEvent(event_id=event_id)
    if created:
        sent.create_time = timestamp_pb2.Timestamp(seconds=1_716_213_787)
    talent_v4beta1.ClientEvent.pb(sent).MergeFromString(profile_bytes())
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.create_client_event(parent=TENANT, client_event=sent, timeout=RPC_DEADLINE)
    return refused.value


@pytest.mark.parametrize("name", ["profileEvent", "profile_event"])
def test_a_profile_event_over_rest_is_refused_as_over_grpc(
        talent_beta: talent_v4beta1.EventServiceClient, server: ServerProcess,
        name: str) -> None:
    grpc_refusal = over_grpc(talent_beta, "profiled")
    said = violations(over_rest(server, TENANT, {"eventId": "profiled", "createTime": CREATED,
                                                 name: PROFILE}))
    assert [field for field, _ in said] == ["client_event.profile_event"]
    assert field_violations(grpc_refusal) == ["client_event.profile_event"]
    assert grpc_refusal.message == f"{said[0][0]}: {said[0][1]}"
    assert "this server stores job events only" in said[0][1]


def test_beside_a_job_event_and_other_faults_too(
        talent_beta: talent_v4beta1.EventServiceClient, server: ServerProcess) -> None:
    job_event = {"type": "VIEW", "jobs": [f"{TENANT}/jobs/nurse-night"]}
    said = violations(over_rest(server, TENANT, {"eventId": "both", "createTime": CREATED,
                                                 "jobEvent": job_event,
                                                 "profileEvent": PROFILE}))
    assert [field for field, _ in said] == ["client_event.profile_event"]
    # ... all of an event's faults in one answer, as over gRPC
    said = violations(over_rest(server, TENANT, {"profileEvent": PROFILE}))
    assert [field for field, _ in said] == field_violations(
        over_grpc(talent_beta, "", created=False)) == [
        "client_event.event_id", "client_event.create_time", "client_event.profile_event"]
    # ... and for a project alone (its default tenant)
    said = violations(over_rest(server, PROJECT, {"eventId": "p", "createTime": CREATED,
                                                  "profileEvent": PROFILE}))
    assert [field for field, _ in said] == ["client_event.profile_event"]
    listed = requests.get(f"http://{server.http_address}/console/v1/{TENANT}/clientEvents",
                          timeout=RPC_DEADLINE)
    assert listed.status_code == 200 and listed.json() == {}, listed.text


def test_a_field_no_contract_had_is_still_refused_by_the_parser(server: ServerProcess) -> None:
    said = violations(over_rest(server, TENANT, {"eventId": "e", "createTime": CREATED,
                                                 "profileEvents": PROFILE}))
    assert said == [("client_event", 'Invalid JSON payload received: Message type '
                                     '"google.cloud.talent.v4beta1.ClientEvent" has no field '
                                     'named "profileEvents"')]
