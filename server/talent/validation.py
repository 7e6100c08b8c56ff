"""Rules for a talent ClientEvent, as a pure function over the message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from footfall.talent.v4 import event_pb2
from google.protobuf import unknown_fields

from server.errors import FieldViolation, gather
from server.names import (
    DEFAULT_TENANT_ID,
    JobName,
    TenantName,
    parse_job,
    parse_job_or_default_tenant_job,
)
from server.retail.validation import ahead_violations, id_violations, too_long

MAX_ID = 255
# proto3 keeps an enum number it does not know: only the contract's are events.
_KNOWN_TYPES = frozenset(event_pb2.JobEvent.JobEventType.values())
# ClientEvent.profile_event (a ProfileEvent, of the oneof `event` beside job_event):
# talent v4beta1's until Google took its Profile API out of v4beta1, and never v4's.
# Neither contract has it now, yet a client built on the older v4beta1 sends it: its
# event was refused as one without a job_event ("job_event: is required"), the
# field it held dropped unseen as every unknown field is (server/rpc.py).
PROFILE_EVENT_NUMBER = 6
PROFILE_EVENT_REFUSED = ("is not stored: this server stores job events only (profile events "
                         "were talent v4beta1's, and Google has since removed them from "
                         "v4beta1; v4 has none); send the event as a job_event")


def holds_profile_event(event: Any) -> bool:
    """Whether the v4beta1 ClientEvent `event`, as it came (its unknown fields not
    dropped yet), holds a profile_event (PROFILE_EVENT_NUMBER)."""
    unknown = unknown_fields.UnknownFieldSet(event)
    return any(unknown[i].field_number == PROFILE_EVENT_NUMBER for i in range(len(unknown)))


def _default_tenant_said(tenant: TenantName, job_name: Callable[[str, str], JobName]) -> str:
    """Of the tenant that a v4beta1 parent of a project alone names, how its jobs are
    named: such a caller, told only of a tenant "default_tenant" it never wrote, did not
    see that its parent had named one (`projects/p` beside a job of `projects/p/tenants/t`)."""
    if tenant.tenant != DEFAULT_TENANT_ID or job_name is not parse_job_or_default_tenant_job:
        return ""
    project = tenant.project
    return (f" (project {project}'s default tenant, which a parent of the project alone, "
            f"'projects/{project}', names: its jobs are projects/{project}/jobs/* or {tenant}/"
            "jobs/*; for a job of another tenant, make that tenant the parent)")


def client_event_violations(event: Any, tenant: TenantName | None, now_s: int | None = None,
                            path: str = "client_event",
                            job_name: Callable[[str, str], JobName] = parse_job,
                            profile_event: bool = False) -> list[FieldViolation]:
    """Every rule `event` breaks for the tenant `tenant` (None if the parent was bad).

    Needs event_id, create_time and a job_event of a known type naming at least
    one job, every job in the parent's project and tenant; `now_s`, the server's
    time: a create_time more than MAX_AHEAD_SECONDS after it is refused, as a
    retail event_time is (one stamped a year ahead headed the tenant's newest
    events, and its "last event", until the tenant was reset). `job_name` parses
    a job's name (value, field). `profile_event`: the event came with one
    (`holds_profile_event`), refused naming it (not as one lacking a job_event).
    """
    out: list[FieldViolation] = []
    # (the event id is the key of its column, unique per tenant)
    id_violations(event.event_id, f"{path}.event_id", MAX_ID, out)
    if len(event.request_id) > MAX_ID:
        out.append(too_long(f"{path}.request_id", event.request_id, MAX_ID))
    if not event.HasField("create_time"):
        out.append(FieldViolation(f"{path}.create_time", "is required"))
    ahead_violations(event.create_time, now_s, f"{path}.create_time", out)
    if profile_event:
        out.append(FieldViolation(f"{path}.profile_event", PROFILE_EVENT_REFUSED))
    if not event.HasField("job_event"):
        if not profile_event:
            out.append(FieldViolation(f"{path}.job_event", "is required"))
        return out
    job_event = event.job_event
    if job_event.type == 0:
        out.append(FieldViolation(f"{path}.job_event.type",
                                  "must not be JOB_EVENT_TYPE_UNSPECIFIED"))
    elif job_event.type not in _KNOWN_TYPES:
        out.append(FieldViolation(f"{path}.job_event.type",
                                  f"{job_event.type} is not a JobEventType"))
    if not job_event.jobs:
        out.append(FieldViolation(f"{path}.job_event.jobs", "at least one job is required"))
    for i, job in enumerate(job_event.jobs):
        field = f"{path}.job_event.jobs[{i}]"
        name = gather(out, job_name, job, field)
        if name is not None and tenant is not None and name.tenant != tenant:
            out.append(FieldViolation(field, f"job {job!r} is not in the parent tenant "
                                             f"{tenant}{_default_tenant_said(tenant, job_name)}"))
    return out
