"""A talent client event sent again under its event_id with other content is
ALREADY_EXISTS naming the first field where it differs from the stored one, through
the official v4 and v4beta1 clients, on SQLite and on PostgreSQL (which the test
skips loudly without FOOTFALL_TEST_POSTGRES_DSN)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import talent_v4, talent_v4beta1
from google.protobuf import timestamp_pb2

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    running_server,
    sqlite_url,
    talent_beta_client,
    talent_client,
)

TENANT = "projects/footfall-interop/tenants/reused-ids"
JOBS = [f"{TENANT}/jobs/nurse-night", f"{TENANT}/jobs/nurse-day"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp(f"reused-ids-{request.param}")
    store = sqlite_url(workdir / "events.db") if request.param == "sqlite" else \
        request.getfixturevalue("postgres_databases").create("reused_ids")
    with running_server(workdir, store) as running:
        yield running


@pytest.fixture(scope="module")
def talent(server: ServerProcess) -> Iterator[talent_v4.EventServiceClient]:
    with talent_client(server.address) as client:
        yield client


@pytest.fixture(scope="module")
def talent_beta(server: ServerProcess) -> Iterator[talent_v4beta1.EventServiceClient]:
    with talent_beta_client(server.address) as client:
        yield client


def event(module: Any, event_id: str, **changes: Any) -> Any:
    """A VIEW of two jobs, as `module` (talent_v4 or talent_v4beta1) builds it, with
    `changes` to the event's fields (job_event_* to the job event's)."""
    job_event = {"type_": module.JobEvent.JobEventType.VIEW, "jobs": JOBS}
    fields: dict[str, Any] = {"request_id": "req-7781", "event_id": event_id,
                              "create_time": timestamp_pb2.Timestamp(seconds=1_716_213_787),
                              "event_notes": "from the second page"}
    for key, value in changes.items():
        if key.startswith("job_event_"):
            job_event[key.removeprefix("job_event_")] = value
        else:
            fields[key] = value
    return module.ClientEvent(job_event=module.JobEvent(**job_event), **fields)


@pytest.mark.parametrize(("changes", "field"), [
    ({"request_id": "req-0001"}, "client_event.request_id"),
    ({"create_time": timestamp_pb2.Timestamp(seconds=1_716_213_787, nanos=5)},
     "client_event.create_time"),
    ({"job_event_type_": talent_v4.JobEvent.JobEventType.BOOKMARK},
     "client_event.job_event.type"),
    ({"job_event_jobs": [JOBS[0], f"{TENANT}/jobs/other"]}, "client_event.job_event.jobs[1]"),
    ({"job_event_jobs": JOBS[:1]}, "client_event.job_event.jobs"),
    ({"event_notes": "another note", "request_id": "req-0001"}, "client_event.request_id"),
    ({"event_notes": "another note"}, "client_event.event_notes"),
], ids=["request_id", "create_time", "type", "a_job", "fewer_jobs", "the_first_of_two",
        "notes"])
def test_a_reused_id_names_the_field_that_differs(
        talent: talent_v4.EventServiceClient, changes: dict[str, Any], field: str,
        request: pytest.FixtureRequest) -> None:
    event_id = f"taken-{request.node.callspec.id}"
    original = event(talent_v4, event_id)
    talent.create_client_event(parent=TENANT, client_event=original, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.AlreadyExists) as taken:
        talent.create_client_event(parent=TENANT, client_event=event(
            talent_v4, event_id, **changes), timeout=RPC_DEADLINE)
    assert taken.value.message.endswith(f"by a different event: its {field} differs"), \
        taken.value.message
    assert event_id in taken.value.message
    # the stored event is untouched: its identical retry is answered it
    assert talent.create_client_event(parent=TENANT, client_event=original,
                                      timeout=RPC_DEADLINE) == original


def test_v4beta1_names_the_profile_v4_does_not_know(
        talent: talent_v4.EventServiceClient,
        talent_beta: talent_v4beta1.EventServiceClient) -> None:
    profile = f"{TENANT}/profiles/candidate-7"
    first = event(talent_v4beta1, "beta-profile", job_event_profile=profile)
    talent_beta.create_client_event(parent=TENANT, client_event=first, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.AlreadyExists) as taken:
        talent_beta.create_client_event(parent=TENANT, client_event=event(
            talent_v4beta1, "beta-profile", job_event_profile=f"{profile}-other"),
            timeout=RPC_DEADLINE)
    assert taken.value.message.endswith("its client_event.job_event.profile differs")
    # v4 cannot name a field it has not: the job event that holds it differs
    without = talent_v4.ClientEvent.deserialize(talent_v4beta1.ClientEvent.serialize(
        event(talent_v4beta1, "beta-profile")))
    with pytest.raises(exceptions.AlreadyExists) as taken:
        talent.create_client_event(parent=TENANT, client_event=without, timeout=RPC_DEADLINE)
    assert taken.value.message.endswith("its client_event.job_event differs")
