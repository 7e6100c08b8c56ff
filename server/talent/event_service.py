"""google.cloud.talent.v4.EventService: client events, unique per tenant by event_id."""

from __future__ import annotations

import grpc
import grpc.aio
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc

from server.clock import Clock
from server.errors import AlreadyExists, FieldViolation, gather, raise_if_any
from server.loop import off_loop
from server.names import TenantName, parse_tenant
from server.policy.limits import event_size_violation
from server.store import ClientEventRow, Store
from server.store.rows import to_micros
from server.talent.validation import client_event_violations


class EventService(event_service_pb2_grpc.EventServiceServicer):
    def __init__(self, store: Store, max_event_bytes: int, clock: Clock) -> None:
        self._store = store
        self._max_event_bytes = max_event_bytes
        self._clock = clock

    async def CreateClientEvent(self, request: event_service_pb2.CreateClientEventRequest,
                                context: grpc.aio.ServicerContext) -> event_pb2.ClientEvent:
        """Store a client event; an identical retry returns the stored one.

        INVALID_ARGUMENT for a bad parent or event (one over the size limit is not
        looked at further; one created more than a day after the server's time);
        ALREADY_EXISTS when another event of the tenant has its event_id.
        """
        violations: list[FieldViolation] = []
        tenant: TenantName | None = gather(violations, parse_tenant, request.parent, "parent")
        if not request.HasField("client_event"):
            violations.append(FieldViolation("client_event", "is required"))
        else:
            too_big = event_size_violation(request.client_event, "client_event",
                                           self._max_event_bytes)
            violations.extend([too_big] if too_big is not None
                              else client_event_violations(
                                  request.client_event, tenant,
                                  self._clock.now_ns() // 1_000_000_000))
        raise_if_any(violations)
        assert tenant is not None
        event = request.client_event
        payload = event.SerializeToString(deterministic=True)
        created = event.create_time
        stored, is_new = await off_loop(self._store.create_client_event, ClientEventRow(
            tenant=str(tenant), event_id=event.event_id,
            create_time_us=to_micros(created.seconds, created.nanos),
            payload=payload))
        if not is_new and stored != payload:
            raise AlreadyExists(
                "google.cloud.talent.v4.ClientEvent", f"{tenant}/clientEvents/{event.event_id}",
                f"client_event.event_id {event.event_id!r} is already used in {tenant} "
                "by a different event")
        return event_pb2.ClientEvent.FromString(stored)
