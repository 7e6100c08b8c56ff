"""CreateClientEvent through the official talent clients (sync and async)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import talent_v4
from google.protobuf import json_format

from .support import RPC_DEADLINE, ServerProcess, assert_names_fields, talent_async_client

C = "client_event"
JobEventType = talent_v4.JobEvent.JobEventType
EVENT_TYPES = [t for t in JobEventType if t != JobEventType.JOB_EVENT_TYPE_UNSPECIFIED]


def job(tenant: str, job_id: str) -> str:
    return f"{tenant}/jobs/{job_id}"


def client_event(tenant: str, event_id: str, kind: str = "VIEW",
                 **changes: Any) -> dict[str, Any]:
    """A job-board event in proto3 JSON, as the talent docs show them: the
    request_id of the search that showed the jobs, the jobs acted upon."""
    event: dict[str, Any] = {
        "requestId": "a3f1c2d4-search-7781",
        "eventId": event_id,
        "createTime": "2024-05-20T14:03:07.250Z",
        "jobEvent": {"type": kind, "jobs": [job(tenant, "senior-data-engineer-berlin"),
                                            job(tenant, "platform-sre-remote")]},
        "eventNotes": "clicked from the second page of results",
    }
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def message(data: dict[str, Any]) -> talent_v4.ClientEvent:
    return talent_v4.ClientEvent.from_json(json.dumps(data))


def as_json(event: talent_v4.ClientEvent) -> dict[str, Any]:
    return json_format.MessageToDict(talent_v4.ClientEvent.pb(event))


def create(client: Any, parent: str, data: dict[str, Any]) -> talent_v4.ClientEvent:
    return client.create_client_event(parent=parent, client_event=message(data),
                                      timeout=RPC_DEADLINE)


def _fill(value: Any, tenant: str) -> Any:
    """Put the test's tenant into "{T}" (full name) and "{t}" (its id) placeholders."""
    text = json.dumps(value)
    return json.loads(text.replace("{T}", tenant)
                                  .replace("{t}", tenant.rsplit("/", 1)[1]))


@pytest.mark.parametrize("kind", [t.name for t in EVENT_TYPES])
def test_each_job_event_type_is_stored(talent: talent_v4.EventServiceClient, tenant: str,
                                       kind: str) -> None:
    sent = client_event(tenant, f"evt-{kind.lower()}", kind)
    assert as_json(create(talent, tenant, sent)) == as_json(message(sent))


def test_a_single_job_and_no_optional_fields(talent: talent_v4.EventServiceClient,
                                             tenant: str) -> None:
    sent = {"eventId": "evt-minimal", "createTime": "2024-05-20T14:03:07Z",
            "jobEvent": {"type": "APPLICATION_FINISH", "jobs": [job(tenant, "nurse-night")]}}
    assert as_json(create(talent, tenant, sent)) == sent


def test_an_identical_retry_returns_the_stored_event(talent: talent_v4.EventServiceClient,
                                                     tenant: str) -> None:
    sent = client_event(tenant, "evt-retry", "APPLICATION_START")
    first = create(talent, tenant, sent)
    again = create(talent, tenant, copy.deepcopy(sent))
    assert as_json(again) == as_json(first) == as_json(message(sent))


@pytest.mark.parametrize("changes", [
    pytest.param({"eventNotes": "another note"}, id="notes"),
    pytest.param({"createTime": "2024-05-20T14:03:08.250Z"}, id="create_time"),
    pytest.param({"requestId": "b0000000-search-0001"}, id="request_id"),
    pytest.param({"jobEvent": {"type": "BOOKMARK", "jobs": ["{T}/jobs/other"]}},
                 id="job_event"),
])
def test_a_different_event_with_a_used_id_already_exists(
        talent: talent_v4.EventServiceClient, tenant: str, changes: dict[str, Any]) -> None:
    original = client_event(tenant, "evt-taken")
    create(talent, tenant, original)
    changed = {**original, **_fill(changes, tenant)}
    with pytest.raises(exceptions.AlreadyExists) as taken:
        create(talent, tenant, changed)
    assert "evt-taken" in taken.value.message
    # The first event is untouched: an identical retry still returns it.
    assert as_json(create(talent, tenant, original)) == as_json(message(original))


def test_event_ids_are_unique_per_tenant_only(talent: talent_v4.EventServiceClient,
                                              tenant: str) -> None:
    other = f"{tenant}-other"
    first = create(talent, tenant, client_event(tenant, "evt-shared", "VIEW"))
    second = create(talent, other, client_event(other, "evt-shared", "HIRED"))
    assert first.job_event.type_ == JobEventType.VIEW
    assert second.job_event.type_ == JobEventType.HIRED


REFUSED = [
    pytest.param({"eventId": None}, [f"{C}.event_id"], id="no-event_id"),
    pytest.param({"createTime": None}, [f"{C}.create_time"], id="no-create_time"),
    pytest.param({"jobEvent": None}, [f"{C}.job_event"], id="no-job_event"),
    # (a year ahead: it headed the tenant's newest events, and its "last event", until
    # the tenant was reset; a retail event_time is refused past a day ahead too)
    pytest.param({"createTime": "2999-01-01T00:00:00Z"}, [f"{C}.create_time"],
                 id="created-years-ahead"),
    pytest.param({"jobEvent": {"type": "JOB_EVENT_TYPE_UNSPECIFIED", "jobs": ["{T}/jobs/a"]}},
                 [f"{C}.job_event.type"], id="unspecified-type"),
    pytest.param({"jobEvent": {"jobs": ["{T}/jobs/a"]}}, [f"{C}.job_event.type"],
                 id="type-left-out"),
    pytest.param({"jobEvent": {"type": 999, "jobs": ["{T}/jobs/a"]}},
                 [f"{C}.job_event.type"], id="unknown-type-number"),
    pytest.param({"jobEvent": {"type": "VIEW"}}, [f"{C}.job_event.jobs"], id="no-jobs"),
    pytest.param({"jobEvent": {"type": "VIEW", "jobs": ["{T}/jobs/a",
                                                        "projects/footfall-interop/tenants/"
                                                        "someone-else/jobs/b"]}},
                 [f"{C}.job_event.jobs[1]"], id="job-in-another-tenant"),
    pytest.param({"jobEvent": {"type": "VIEW",
                               "jobs": ["projects/another-project/tenants/{t}/jobs/a"]}},
                 [f"{C}.job_event.jobs[0]"], id="job-in-another-project"),
    *(pytest.param({"jobEvent": {"type": "VIEW", "jobs": ["{T}/jobs/a", bad]}},
                   [f"{C}.job_event.jobs[1]"], id=f"malformed-job-{label}")
      for label, bad in [("bare-id", "senior-data-engineer"), ("empty", ""),
                         ("no-tenant", "projects/footfall-interop/jobs/a"),
                         ("trailing-slash", "{T}/jobs/"), ("extra-segment", "{T}/jobs/a/b")]),
]


@pytest.mark.parametrize(("changes", "fields"), REFUSED)
def test_each_rule_is_refused_naming_the_field(talent: talent_v4.EventServiceClient,
                                               tenant: str, changes: dict[str, Any],
                                               fields: list[str]) -> None:
    data = client_event(tenant, "evt-refused", **_fill(changes, tenant))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        create(talent, tenant, data)
    assert_names_fields(refused.value, fields)
    # Nothing was stored: the id is still free.
    assert create(talent, tenant, client_event(tenant, "evt-refused")).event_id == "evt-refused"


@pytest.mark.parametrize("parent", [
    pytest.param("", id="empty"),
    pytest.param("projects/footfall-interop", id="project-only"),
    pytest.param("projects/footfall-interop/tenants/", id="empty-tenant-id"),
    pytest.param("tenants/acme", id="no-project"),
    pytest.param("projects/footfall-interop/locations/global/catalogs/default_catalog",
                 id="a-retail-catalog"),
])
def test_parent_must_be_a_tenant(talent: talent_v4.EventServiceClient, parent: str) -> None:
    data = client_event("projects/footfall-interop/tenants/acme", "evt-bad-parent")
    with pytest.raises(exceptions.InvalidArgument) as refused:
        create(talent, parent, data)
    assert_names_fields(refused.value, ["parent"])
    assert "projects/*/tenants/*" in refused.value.message


def test_every_violation_is_reported_in_one_error(talent: talent_v4.EventServiceClient,
                                                  tenant: str) -> None:
    data = {"jobEvent": {"type": "JOB_EVENT_TYPE_UNSPECIFIED",
                         "jobs": ["not-a-job", job("projects/p2/tenants/t2", "x")]}}
    with pytest.raises(exceptions.InvalidArgument) as refused:
        create(talent, tenant, data)
    assert_names_fields(refused.value, [
        f"{C}.event_id", f"{C}.create_time", f"{C}.job_event.type",
        f"{C}.job_event.jobs[0]", f"{C}.job_event.jobs[1]"])


def test_missing_client_event_and_bad_parent_together(
        talent: talent_v4.EventServiceClient) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        talent.create_client_event(request={"parent": "acme"}, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["parent", C])


def test_async_client(server: ServerProcess, tenant: str, run: Any) -> None:
    events = [client_event(tenant, f"evt-async-{t.name.lower()}", t.name) for t in EVENT_TYPES]

    async def scenario() -> tuple[list[talent_v4.ClientEvent], talent_v4.ClientEvent,
                                  BaseException, BaseException]:
        async with talent_async_client(server.address) as client:
            created = await asyncio.gather(*(
                client.create_client_event(parent=tenant, client_event=message(e),
                                           timeout=RPC_DEADLINE) for e in events))
            retried = await client.create_client_event(
                parent=tenant, client_event=message(events[0]), timeout=RPC_DEADLINE)
            with pytest.raises(exceptions.AlreadyExists) as taken:
                await client.create_client_event(
                    parent=tenant, client_event=message({**events[0], "eventNotes": "edited"}),
                    timeout=RPC_DEADLINE)
            with pytest.raises(exceptions.InvalidArgument) as refused:
                await client.create_client_event(
                    parent=tenant, client_event=message(client_event(tenant, "x", "VIEW",
                                                                     createTime=None)),
                    timeout=RPC_DEADLINE)
            return list(created), retried, taken.value, refused.value

    created, retried, taken, refused = run(scenario())
    assert [as_json(e) for e in created] == [as_json(message(e)) for e in events]
    assert as_json(retried) == as_json(created[0])
    assert isinstance(taken, exceptions.AlreadyExists)
    assert_names_fields(refused, [f"{C}.create_time"])
