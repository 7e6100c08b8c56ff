"""A talent tenant's client events and refusals as the console lists them, written
through the official google-cloud-talent clients (v4 and v4beta1) to a `footfall
serve` subprocess, read back over the console's REST routes:

- the events newest first by their create time, each once across pages (issue 13:
  they came in the order stored);
- talent v4beta1's refusals of a project alone (its default tenant) among the
  default tenant's, as its events are;
- a v4beta1 event holding a profile_event (of v4beta1's earlier contract, which
  Google has since taken out of it) refused naming that field.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import talent_v4, talent_v4beta1
from google.protobuf import timestamp_pb2

from .support import RPC_DEADLINE, ServerProcess, assert_names_fields, wait_until

VIEW = talent_v4beta1.JobEvent.JobEventType.VIEW


def listed(server: ServerProcess, path: str, **query: Any) -> dict[str, Any]:
    answer = requests.get(f"http://{server.http_address}/console/v1/{path}", params=query,
                          timeout=RPC_DEADLINE)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def beta_event(tenant: str, event_id: str, seconds: int = 1_716_213_787
               ) -> talent_v4beta1.ClientEvent:
    return talent_v4beta1.ClientEvent(
        event_id=event_id, create_time=timestamp_pb2.Timestamp(seconds=seconds),
        job_event=talent_v4beta1.JobEvent(type_=VIEW, jobs=[f"{tenant}/jobs/nurse-night"]))


def test_a_tenants_events_are_listed_by_create_time_in_pages(
        talent: talent_v4.EventServiceClient, server: ServerProcess, tenant: str) -> None:
    """Sent out of order (a late event, two of one second), listed latest create time
    first, of one time the last stored first; pages of 2 give each once."""
    for event_id, seconds in (("e1", 300), ("e2", 100), ("e3", 400), ("e4", 300),
                              ("e5", 200), ("e6", 300)):
        talent.create_client_event(parent=tenant, client_event=talent_v4.ClientEvent(
            event_id=event_id, create_time=timestamp_pb2.Timestamp(seconds=1_716_213_000
                                                                   + seconds),
            job_event=talent_v4.JobEvent(type_=talent_v4.JobEvent.JobEventType.VIEW,
                                         jobs=[f"{tenant}/jobs/j"])), timeout=RPC_DEADLINE)
    newest = ["e3", "e6", "e4", "e1", "e5", "e2"]
    whole = listed(server, f"{tenant}/clientEvents")
    assert [e["clientEvent"]["eventId"] for e in whole["clientEvents"]] == newest
    seen, token = [], ""
    while True:
        page = listed(server, f"{tenant}/clientEvents", pageSize=2, pageToken=token)
        seen += [e["clientEvent"]["eventId"] for e in page.get("clientEvents", [])]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert seen == newest


def test_v4beta1_refusals_of_a_project_alone_are_its_default_tenants(
        talent_beta: talent_v4beta1.EventServiceClient, talent: talent_v4.EventServiceClient,
        server: ServerProcess, request: pytest.FixtureRequest) -> None:
    """Its events are kept under projects/P/tenants/default_tenant: its refusals are
    listed there too (they were only the project's, and the tenant's page said so).
    The refusal still says the parent as sent; v4, which takes no project alone,
    keeps its refusal under the project alone."""
    project = f"projects/{request.node.name.replace('_', '-')[:50]}"
    tenant = f"{project}/tenants/default_tenant"
    with pytest.raises(exceptions.InvalidArgument):
        talent_beta.create_client_event(parent=project, client_event=talent_v4beta1.ClientEvent(
            event_id="refused-beta"), timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.InvalidArgument):
        talent.create_client_event(parent=project, client_event=talent_v4.ClientEvent(
            event_id="refused-v4"), timeout=RPC_DEADLINE)

    def both() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = listed(server, f"{project}/rejections").get(
            "rejections", [])
        return found if len(found) == 2 else None

    everything = wait_until(both, "both refusals", 10)
    assert [r["parent"] for r in everything] == [project, project]
    [of_tenant] = listed(server, f"{tenant}/rejections")["rejections"]
    assert of_tenant["method"] == "/google.cloud.talent.v4beta1.EventService/CreateClientEvent"
    assert of_tenant["parent"] == project  # (as sent)
    assert '"refused-beta"' in of_tenant["requestJson"]
    # (a reset of the tenant forgets them with its events)
    reset = requests.post(f"http://{server.http_address}/console/v1/{tenant}:reset",
                          json={}, timeout=RPC_DEADLINE)
    assert reset.status_code == 200, reset.text
    assert reset.json().get("deletedRejectionsCount") == "1", reset.text
    assert [r["method"] for r in listed(server, f"{project}/rejections")["rejections"]] == [
        "/google.cloud.talent.v4.EventService/CreateClientEvent"]


# A ProfileEvent as a client built on v4beta1's earlier contract sends it, as
# ClientEvent field 6: type VIEW (1: 2), profiles (2), jobs (6).
def profile_event(tenant: str) -> bytes:
    inner = b"\x08\x02" + delimited(b"\x12", f"{tenant}/profiles/candidate-7".encode()) \
        + delimited(b"\x32", f"{tenant}/jobs/nurse-night".encode())
    return delimited(b"\x32", inner)


def delimited(tag: bytes, data: bytes) -> bytes:
    """A length-delimited field: its tag, its length (a varint) and `data`."""
    length, size = b"", len(data)
    while size > 0x7F:
        length += bytes([size & 0x7F | 0x80])
        size >>= 7
    return tag + length + bytes([size]) + data


def test_a_v4beta1_profile_event_is_refused_naming_it(
        talent_beta: talent_v4beta1.EventServiceClient, talent: talent_v4.EventServiceClient,
        server: ServerProcess, tenant: str) -> None:
    """Google's v4beta1 no longer has ClientEvent.profile_event (google-cloud-talent's
    talent_v4beta1 has no ProfileEvent), yet clients built on its earlier contract
    send one: refused naming it (it was dropped unseen and the event refused as one
    without a job_event), nothing stored."""
    sent = talent_v4beta1.ClientEvent(event_id="profiled",
                                      create_time=timestamp_pb2.Timestamp(seconds=1_716_213_787))
    talent_v4beta1.ClientEvent.pb(sent).MergeFromString(profile_event(tenant))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        talent_beta.create_client_event(parent=tenant, client_event=sent, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["client_event.profile_event"])
    assert "this server stores job events only" in refused.value.message
    # beside a job_event too (it would have been dropped, the job event stored)
    both = beta_event(tenant, "both")
    talent_v4beta1.ClientEvent.pb(both).MergeFromString(profile_event(tenant))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        talent_beta.create_client_event(parent=tenant, client_event=both, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["client_event.profile_event"])
    # ... and with the event's other faults, all in one answer
    bad = talent_v4beta1.ClientEvent(event_id="")
    talent_v4beta1.ClientEvent.pb(bad).MergeFromString(profile_event(tenant))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        talent_beta.create_client_event(parent=tenant, client_event=bad, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["client_event.event_id", "client_event.create_time",
                                        "client_event.profile_event"])
    assert listed(server, f"{tenant}/clientEvents") == {}
    # Another field v4beta1 does not know is dropped, as before: the event is stored
    # without it (v4's same event is its identical retry).
    other = beta_event(tenant, "unknown-field")
    talent_v4beta1.ClientEvent.pb(other).MergeFromString(b"\x52\x04note")  # field 10
    created = talent_beta.create_client_event(parent=tenant, client_event=other,
                                              timeout=RPC_DEADLINE)
    assert talent_v4beta1.ClientEvent.serialize(created) == \
        talent_v4beta1.ClientEvent.serialize(beta_event(tenant, "unknown-field"))
    as_v4 = talent_v4.ClientEvent.deserialize(talent_v4beta1.ClientEvent.serialize(
        beta_event(tenant, "unknown-field")))
    assert talent.create_client_event(parent=tenant, client_event=as_v4,
                                      timeout=RPC_DEADLINE) == as_v4
