"""A watch's StoredUserEvent bytes made from the row (`queries.stored_user_event_wire`)
are those of the decoded message serialized (`stored_user_event(row).SerializeToString()`),
byte for byte, whatever the row holds; and so are a StoredClientEvent's. (A page of
a list is decoded from them: their length is what the message costs it.)"""

from __future__ import annotations

from typing import Any

import pytest
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import user_event_pb2
from footfall.talent.v4 import event_pb2
from footfall.talent.v4beta1 import event_pb2 as v4beta1_event_pb2
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st

from server.console import queries
from server.store.console import StoredClientEvent, StoredEvent

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
EVENT = {"eventType": "detail-page-view", "visitorId": "visitor-1", "sessionId": "s-1",
         "eventTime": "2026-12-01T10:00:00.123456Z",
         "productDetails": [{"product": {"id": "sku-42"}, "quantity": 1}],
         "userInfo": {"userId": "u-9", "ipAddress": "203.0.113.7"},
         "attributes": {"campaign": {"text": ["autumn"]}}}
ENRICHED = {**EVENT, "productDetails": [{"product": {"id": "sku-42", "title": "Boots",
                                                     "priceInfo": {"price": 42.5}}}]}


def payload(fields: dict[str, Any]) -> bytes:
    """An event as the store keeps it: a deterministic serialization."""
    return json_format.ParseDict(fields, user_event_pb2.UserEvent()).SerializeToString(
        deterministic=True)


def row(**changes: Any) -> StoredEvent:
    base = StoredEvent(id=7, catalog=CATALOG, payload=payload(EVENT), source=None, joined=True,
                       received_us=1_764_583_200_654_321, transport=1,
                       event_time_us=1_764_583_200_123_456)
    return base._replace(**changes)


def old_bytes(stored: StoredEvent) -> bytes:
    return queries.stored_user_event(stored).SerializeToString()


@pytest.mark.parametrize("stored", [
    row(),
    row(source=payload(EVENT), payload=payload(ENRICHED)),  # joining changed it
    row(joined=False),
    row(received_us=None),  # stored before Footfall kept it
    row(received_us=0),  # the epoch: a Timestamp set, and empty
    row(received_us=-1_500_001),  # before 1970: negative seconds, positive nanos
    row(received_us=1_000_000),  # whole seconds: no nanos
    row(transport=0),
    row(id=0),
    row(id=2**40),
    row(catalog=""),
    row(catalog="projects/é/locations/global/catalogs/c"),  # UTF-8 longer than its str
    row(payload=b""),  # an empty event is still a user_event set
    row(source=b""),
    row(payload=payload({**EVENT, "uri": "https://x/" + "y" * 300})),  # 2-byte length
], ids=["joined", "received-event", "unjoined", "no-receive-time", "epoch", "before-1970",
        "whole-seconds", "no-transport", "id-0", "large-id", "no-catalog", "utf8-catalog",
        "empty-event", "empty-received", "long-event"])
def test_the_row_bytes_are_the_message_bytes(stored: StoredEvent) -> None:
    assert queries.stored_user_event_wire(stored) == old_bytes(stored)


@given(id_=st.integers(0, 2**63 - 1), catalog=st.text(max_size=80),
       joined=st.booleans(), transport=st.integers(0, 4),
       received_us=st.none() | st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999),
       session=st.text(max_size=40), enriched=st.booleans())
def test_any_row_bytes_are_the_message_bytes(id_: int, catalog: str, joined: bool,
                                             transport: int, received_us: int | None,
                                             session: str, enriched: bool) -> None:
    event = {**EVENT, "sessionId": session}
    stored = row(id=id_, catalog=catalog, joined=joined, transport=transport,
                 received_us=received_us, payload=payload(event),
                 source=payload({**event, "pageViewId": "p"}) if enriched else None)
    assert queries.stored_user_event_wire(stored) == old_bytes(stored)


def test_an_event_of_several_attributes_is_the_same_message() -> None:
    """A map's entries are in the stored (sorted) order, which a serialization of the
    decoded message need not keep: the bytes may differ, the message does not."""
    event = {**EVENT, "attributes": {k: {"text": [k]} for k in ("b", "a", "d", "c")}}
    stored = row(payload=payload(event))
    decoded = console_pb2.StoredUserEvent.FromString(queries.stored_user_event_wire(stored))
    assert decoded == queries.stored_user_event(stored)


TENANT = "projects/p/tenants/t"
CLIENT_EVENT = {"requestId": "r-1", "eventId": "e-1", "createTime": "2026-12-01T10:00:00.5Z",
                "jobEvent": {"type": "VIEW", "jobs": ["projects/p/tenants/t/jobs/j-1"]},
                "eventNotes": "notes"}


def v4beta1_payload(profile: str) -> bytes:
    """CLIENT_EVENT as talent v4beta1 writes it with a JobEvent.profile, stored as v4's
    ClientEvent (the profile a field v4 does not know), as the server stores it."""
    event = json_format.ParseDict({**CLIENT_EVENT, "jobEvent": {
        **CLIENT_EVENT["jobEvent"], "profile": profile}}, v4beta1_event_pb2.ClientEvent())
    return event_pb2.ClientEvent.FromString(event.SerializeToString()).SerializeToString(
        deterministic=True)


def client_row(**changes: Any) -> StoredClientEvent:
    event = json_format.ParseDict(CLIENT_EVENT, event_pb2.ClientEvent())
    base = StoredClientEvent(id=7, tenant=TENANT,
                             payload=event.SerializeToString(deterministic=True),
                             received_us=1_764_583_200_654_321, transport=1)
    return base._replace(**changes)


@pytest.mark.parametrize("stored", [
    client_row(),
    client_row(received_us=None),
    client_row(received_us=0),
    client_row(received_us=-1_500_001),
    client_row(transport=0),
    client_row(id=0),
    client_row(id=2**40),
    client_row(tenant=""),
    client_row(tenant="projects/é/tenants/t"),
    client_row(payload=b""),
    client_row(payload=v4beta1_payload(profile="projects/p/tenants/t/profiles/c-7")),
    client_row(payload=v4beta1_payload(profile="é" * 200)),
], ids=["client-event", "no-receive-time", "epoch", "before-1970", "no-transport", "id-0",
        "large-id", "no-tenant", "utf8-tenant", "empty-event", "v4beta1-profile",
        "long-profile"])
def test_a_client_event_rows_bytes_are_the_message_bytes(stored: StoredClientEvent) -> None:
    assert queries.stored_client_event_wire(stored) == \
        queries.stored_client_event(stored).SerializeToString()


def test_v4beta1s_job_event_profile_is_shown_beside_the_v4_event() -> None:
    """v4's JobEvent has no profile: a v4beta1 event's was kept with it, yet the
    console (JSON of the v4 message) showed nothing of it."""
    profile = "projects/p/tenants/t/profiles/candidate-7"
    for stored in (queries.stored_client_event(client_row(payload=v4beta1_payload(profile))),
                   console_pb2.StoredClientEvent.FromString(queries.stored_client_event_wire(
                       client_row(payload=v4beta1_payload(profile))))):
        assert stored.job_event_profile == profile
        assert json_format.MessageToDict(stored)["jobEventProfile"] == profile
    assert queries.stored_client_event(client_row()).job_event_profile == ""
    for bad in (b"\x2a\x05\x1a", b"\x2a", b"\x2a\xff", b"\x0b"):  # (cut or not a message)
        assert queries.job_event_profile(bad) is None
