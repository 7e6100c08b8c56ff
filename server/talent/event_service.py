"""google.cloud.talent EventService (v4, and its v4beta1 surface): client events,
unique per tenant by event_id.

v4beta1's ClientEvent is v4's, names and numbers alike, plus JobEvent.profile (3):
a v4beta1 event is read as a v4 one by its bytes, where the profile rides along as
a field v4 does not know (kept, so it is stored and answered back), and the same
event is the same row whichever version wrote it. v4beta1 also takes a project
alone as a parent, for its default tenant (jobs then named projects/*/jobs/*):
those events are kept under the tenant DEFAULT_TENANT_ID of the project.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
import grpc.aio
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc
from footfall.talent.v4beta1 import event_pb2 as v4beta1_event_pb2
from footfall.talent.v4beta1 import event_service_pb2 as v4beta1_service_pb2
from footfall.talent.v4beta1 import event_service_pb2_grpc as v4beta1_service_pb2_grpc
from google.protobuf.message import Message

from server import json_problems
from server.clock import Clock
from server.errors import AlreadyExists, FieldViolation, InvalidArgument, gather, raise_if_any
from server.loop import in_decoder, off_loop
from server.names import (
    JobName,
    TenantName,
    parse_job,
    parse_job_or_default_tenant_job,
    parse_tenant,
    parse_tenant_or_project,
)
from server.policy.auth import caller_reads
from server.policy.envelope import LARGE_REQUEST_BYTES
from server.policy.limits import event_size_violation
from server.store import ClientEventRow, Store
from server.store.rows import to_micros
from server.talent.difference import first_difference
from server.talent.validation import client_event_violations, holds_profile_event


class Judged(NamedTuple):
    """A client event judged (ClientEvents._judged): the tenant its parent names
    (None for a bad one), the event as v4's ClientEvent (None when there is none or
    it is over the size limit: not looked at), and every violation of both."""

    tenant: TenantName | None
    event: event_pb2.ClientEvent | None
    violations: list[FieldViolation]


class ClientEvents:
    """What both versions' CreateClientEvent do, over v4's message."""

    def __init__(self, store: Store, max_event_bytes: int, clock: Clock) -> None:
        self._store = store
        self._max_event_bytes = max_event_bytes
        self._clock = clock

    async def create(self, parent: str, sent: Message | None, event_type_name: str,
                     tenant_name: Callable[[str, str], TenantName] = parse_tenant,
                     job_name: Callable[[str, str], JobName] = parse_job,
                     profile_event: bool = False) -> bytes:
        """Store the client event `sent` (None when the request had none) under the
        tenant `parent`; returns the stored event's bytes (an identical retry's are
        the first event's).

        INVALID_ARGUMENT for a bad parent or event (one over the size limit is not
        looked at further; one created more than a day after the server's time);
        ALREADY_EXISTS (naming `event_type_name`, and the first field where the
        stored event differs) when another event of the tenant has its event_id.
        `tenant_name` and `job_name` parse the parent and the jobs (value, field);
        `profile_event`: the event came with v4beta1's former profile_event, refused
        naming it (see validation.PROFILE_EVENT_NUMBER).
        """
        judge = functools.partial(self._judged, parent, sent, tenant_name, job_name,
                                  profile_event)
        # (55,000 jobs of bad names, a writer key's 2 MB, held the loop 0.5 s while
        # each was told why: off the loop, as a retail event's rules)
        judged = await in_decoder(judge) \
            if sent is not None and sent.ByteSize() > LARGE_REQUEST_BYTES else judge()
        raise_if_any(judged.violations)
        tenant, event = judged.tenant, judged.event
        assert tenant is not None and event is not None
        payload = event.SerializeToString(deterministic=True)
        created = event.create_time
        stored, is_new = await off_loop(self._store.create_client_event, ClientEventRow(
            tenant=str(tenant), event_id=event.event_id,
            create_time_us=to_micros(created.seconds, created.nanos),
            payload=payload))
        if not is_new and stored != payload:
            assert sent is not None  # (compared as sent: v4beta1's profile by its name)
            # Which field differs is said only to a caller that may read the events: to
            # a writer key (public in a job site's pages) it told, field by field, whether
            # a guess was what an event of another visitor holds (which job, which notes).
            which = "which field differs is said to keys that may read client events"
            if caller_reads():
                differs = first_difference(type(sent).FromString(stored), sent, "client_event")
                which = f"its {differs or 'client_event'} differs"
            raise AlreadyExists(
                event_type_name, f"{tenant}/clientEvents/{event.event_id}",
                f"client_event.event_id {event.event_id!r} is already used in {tenant} "
                f"by a different event: {which}")
        return bytes(stored)

    def partly_read_refusal(self, parent: str, sent: Message | None,
                            found: list[FieldViolation],
                            tenant_name: Callable[[str, str], TenantName] = parse_tenant,
                            job_name: Callable[[str, str], JobName] = parse_job,
                            profile_event: bool = False) -> InvalidArgument:
        """The refusal of a REST request to create `sent` whose body held values of the
        wrong type (`found`, UnreadValues; `sent` read without them): they are said
        beside what the rules (see `create`) say of the values that did read."""
        violations = self._judged(parent, sent, tenant_name, job_name,
                                  profile_event).violations
        return InvalidArgument([*found, *json_problems.beside_unread(violations, found)])

    def _judged(self, parent: str, sent: Message | None,
                tenant_name: Callable[[str, str], TenantName],
                job_name: Callable[[str, str], JobName], profile_event: bool) -> Judged:
        """The tenant `parent` names, the event `sent` as v4's ClientEvent, and the
        violations of both (see `create`)."""
        violations: list[FieldViolation] = []
        tenant: TenantName | None = gather(violations, tenant_name, parent, "parent")
        event = None
        if sent is None:
            violations.append(FieldViolation("client_event", "is required"))
            return Judged(tenant, event, violations)
        too_big = event_size_violation(sent, "client_event", self._max_event_bytes)
        if too_big is not None:
            violations.append(too_big)
            return Judged(tenant, event, violations)
        # (v4beta1's read as v4's by its bytes; v4's as it came)
        event = sent if isinstance(sent, event_pb2.ClientEvent) \
            else event_pb2.ClientEvent.FromString(sent.SerializeToString())
        violations.extend(client_event_violations(
            event, tenant, self._clock.now_ns() // 1_000_000_000, job_name=job_name,
            profile_event=profile_event))
        return Judged(tenant, event, violations)


class EventService(event_service_pb2_grpc.EventServiceServicer):
    """google.cloud.talent.v4.EventService."""

    def __init__(self, events: ClientEvents) -> None:
        self._events = events

    async def CreateClientEvent(self, request: event_service_pb2.CreateClientEventRequest,
                                context: grpc.aio.ServicerContext) -> event_pb2.ClientEvent:
        """Store a client event; an identical retry returns the stored one
        (INVALID_ARGUMENT, ALREADY_EXISTS: see ClientEvents.create)."""
        stored = await self._events.create(
            request.parent, request.client_event if request.HasField("client_event") else None,
            event_pb2.ClientEvent.DESCRIPTOR.full_name)
        return event_pb2.ClientEvent.FromString(stored)

    def partly_read_refusal(self, method: str, request: Any, found: list[FieldViolation],
                            context: Any) -> InvalidArgument | None:
        """A REST body's values of the wrong type beside the rules about those that
        read (see ClientEvents.partly_read_refusal); None for another method."""
        if method != "CreateClientEvent":
            return None
        return self._events.partly_read_refusal(
            request.parent,
            request.client_event if request.HasField("client_event") else None, found)


class EventServiceV4beta1(v4beta1_service_pb2_grpc.EventServiceServicer):
    """google.cloud.talent.v4beta1.EventService, on the same rows as v4's."""

    def __init__(self, events: ClientEvents) -> None:
        self._events = events

    async def CreateClientEvent(self, request: v4beta1_service_pb2.CreateClientEventRequest,
                                context: grpc.aio.ServicerContext
                                ) -> v4beta1_event_pb2.ClientEvent:
        """As v4's; a parent of a project alone (projects/*) is its default tenant,
        whose jobs may be named projects/*/jobs/*; an event holding a profile_event
        (of v4beta1's earlier contract) is INVALID_ARGUMENT naming it."""
        sent = request.client_event if request.HasField("client_event") else None
        profile_event = sent is not None and holds_profile_event(sent)
        # (server/rpc.py leaves this method's unknown fields to it, to see that one)
        request.DiscardUnknownFields()
        stored = await self._events.create(
            request.parent, sent, v4beta1_event_pb2.ClientEvent.DESCRIPTOR.full_name,
            parse_tenant_or_project, parse_job_or_default_tenant_job, profile_event)
        return v4beta1_event_pb2.ClientEvent.FromString(stored)

    def partly_read_refusal(self, method: str, request: Any, found: list[FieldViolation],
                            context: Any) -> InvalidArgument | None:
        """As v4's (EventService.partly_read_refusal), with this version's names."""
        if method != "CreateClientEvent":
            return None
        sent = request.client_event if request.HasField("client_event") else None
        return self._events.partly_read_refusal(
            request.parent, sent, found, parse_tenant_or_project,
            parse_job_or_default_tenant_job, sent is not None and holds_profile_event(sent))
