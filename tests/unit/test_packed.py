"""Events are stored without the fields their columns hold, and read back byte-equal."""

from __future__ import annotations

import random
from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format, timestamp_pb2, wrappers_pb2
from google.protobuf.internal import encoder
from hypothesis import given
from hypothesis import strategies as st

from server.store.packed import PACKED, PACKED_USER, fields, pack, timestamp, unpack, varint
from server.store.rows import EventRow

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


def event(**fields: Any) -> Any:
    return json_format.ParseDict(fields, user_event_pb2.UserEvent())


def round_trip(message: Any) -> tuple[bytes, bytes]:
    """(stored, read back) for `message` as a row stores it."""
    row = EventRow.from_event(CATALOG, message, joined=False)
    stored = row.as_params()[8]
    return stored, unpack(stored, row.event_type, row.visitor_id, row.user_id,
                          row.event_time_us, row.event_time_ns)


@pytest.mark.parametrize("fields", [
    {"eventType": "home-page-view", "visitorId": "v", "eventTime": "2024-01-01T00:00:00Z"},
    {"eventType": "search", "visitorId": "v", "eventTime": "2024-01-01T00:00:00.123456789Z",
     "searchQuery": "shoes", "userInfo": {"userId": "u"}},
    {"eventType": "x" * 200, "visitorId": "é" * 128, "eventTime": "1970-01-01T00:00:00Z"},
    {"eventType": "home-page-view", "visitorId": "v", "eventTime": "1960-06-01T00:00:00.5Z"},
    {"visitorId": "v", "eventTime": "2024-01-01T00:00:00.000000001Z"},
    {"eventType": "home-page-view", "eventTime": "2024-01-01T00:00:00Z"},
    {"eventTime": "2024-01-01T00:00:00Z"},
], ids=["plain", "nanos", "long-fields", "before-1970", "no-type", "no-visitor", "only-time"])
def test_events_are_stored_packed_and_read_back_equal(fields: dict[str, Any]) -> None:
    message = event(**fields)
    payload = message.SerializeToString(deterministic=True)
    stored, read = round_trip(message)
    assert read == payload
    assert stored[:1] in (PACKED, PACKED_USER) and len(stored) < len(payload)


def test_events_the_columns_cannot_rebuild_are_stored_whole() -> None:
    no_time = event(eventType="home-page-view", visitorId="v")
    nul = event(eventType="home-page-view", visitorId="a\0b", eventTime="2024-01-01T00:00:00Z")
    for message in (no_time, nul):
        payload = message.SerializeToString(deterministic=True)
        stored, read = round_trip(message)
        assert stored == payload and read == payload
    # a row whose columns differ from its event (stored by hand) is never cut
    payload = nul.SerializeToString(deterministic=True)
    assert pack(payload, "home-page-view", "other", "", 1_704_067_200_000_000, 0) == payload
    assert unpack(b"", "t", "v", "u", 0, 0) == b""  # an empty event is no packed one


def test_random_events_read_back_equal() -> None:
    rng = random.Random(7)
    for _ in range(500):
        message = event(eventType=rng.choice(["", "search", "a" * rng.randrange(300)]),
                        visitorId=rng.choice(["", "v", "ü" * rng.randrange(100)]),
                        sessionId="s" * rng.randrange(3))
        message.event_time.seconds = rng.choice(
            [0, 1, -1, 1_700_000_000, -62_135_596_800, 253_402_300_799])
        message.event_time.nanos = rng.choice([0, 1, 999, 1000, 999_999_999])
        assert round_trip(message)[1] == message.SerializeToString(deterministic=True)


BASE = {"eventType": "detail-page-view", "visitorId": "v", "eventTime": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize("fields", [
    {"userInfo": {"userId": "user-1"}},
    {"userInfo": {"userId": "user-1", "ipAddress": "198.51.100.7", "userAgent": "Mozilla"}},
    {"userInfo": {"userId": "ü" * 200, "userAgent": "a" * 300}},  # two-byte lengths
    {"userInfo": {"userId": "u", "directUserRequest": True},
     "productDetails": [{"product": {"id": "p" * 200}, "quantity": 1}],
     "attributes": {"k": {"text": ["x" * 150]}}, "experimentIds": ["e1", "e2"],
     "attributionToken": "t", "cartId": "c", "searchQuery": "q", "pageCategories": ["a"],
     "purchaseTransaction": {"revenue": 1.5, "currencyCode": "EUR"},
     "uri": "https://shop.example/", "sessionId": "s", "entity": "e"},
], ids=["only-user-id", "bench-shape", "long", "every-field-before-and-after"])
def test_the_user_id_is_stored_once(fields: dict[str, Any]) -> None:
    message = event(**BASE, **fields)
    payload = message.SerializeToString(deterministic=True)
    stored, read = round_trip(message)
    assert read == payload
    assert stored[:1] == PACKED_USER
    user_id = message.user_info.user_id.encode()
    assert user_id not in stored
    # the marker byte and the rest, less the user id's field and what user_info's
    # length loses with it
    field = 1 + len(varint(len(user_id))) + len(user_id)
    assert len(stored) == (1 + len(payload) - len(_prefix_bytes(message)) - field
                           - _shorter_length(message, field))


def _prefix_bytes(message: Any) -> bytes:
    head = user_event_pb2.UserEvent(event_type=message.event_type,
                                    visitor_id=message.visitor_id)
    head.event_time.CopyFrom(message.event_time)
    return head.SerializeToString(deterministic=True)


def _shorter_length(message: Any, field: int) -> int:
    """How many bytes user_info's length takes fewer without the user id's field."""
    whole = message.user_info.ByteSize()
    return len(varint(whole)) - len(varint(whole - field))


def test_a_user_id_the_event_does_not_hold_is_not_cut() -> None:
    message = event(**BASE, userInfo={"userId": "u", "userAgent": "a"})
    payload = message.SerializeToString(deterministic=True)
    row = EventRow.from_event(CATALOG, message, joined=False)
    for column in ("other", "", "a\0b"):  # not the event's; none; not kept exactly
        stored = pack(payload, row.event_type, row.visitor_id, column, row.event_time_us,
                      row.event_time_ns)
        assert stored[:1] == PACKED
        assert unpack(stored, row.event_type, row.visitor_id, column, row.event_time_us,
                      row.event_time_ns) == payload
    # no user id in the event, so none in its column
    plain = event(**BASE, userInfo={"userAgent": "a"})
    assert round_trip(plain)[0][:1] == PACKED


def test_events_stored_before_the_user_id_was_cut_read_as_they_did() -> None:
    message = event(**BASE, userInfo={"userId": "user-1", "userAgent": "a"})
    payload = message.SerializeToString(deterministic=True)
    row = EventRow.from_event(CATALOG, message, joined=False)
    older = PACKED + payload[len(_prefix_bytes(message)):]  # as migration 8 stored it
    assert unpack(older, row.event_type, row.visitor_id, row.user_id, row.event_time_us,
                  row.event_time_ns) == payload
    assert unpack(payload, row.event_type, row.visitor_id, row.user_id, row.event_time_us,
                  row.event_time_ns) == payload  # stored whole


def test_a_damaged_event_marked_without_its_user_id_is_an_error_not_a_wrong_event() -> None:
    with pytest.raises(ValueError, match="user_info"):
        unpack(PACKED_USER + b"\x0a\x01x", "t", "v", "u", 0, 0)


user_infos = st.fixed_dictionaries({}, optional={
    "userId": st.text(min_size=1, max_size=150), "ipAddress": st.sampled_from(["10.0.0.1"]),
    "userAgent": st.text(max_size=200), "directUserRequest": st.booleans()})


@given(user_infos, st.lists(st.text(max_size=140), max_size=3), st.text(max_size=300),
       st.text(max_size=5))
def test_random_user_infos_read_back_equal(info: dict[str, Any], experiments: list[str],
                                          query: str, entity: str) -> None:
    message = event(**BASE, userInfo=info, experimentIds=experiments, searchQuery=query,
                    entity=entity)
    payload = message.SerializeToString(deterministic=True)
    stored, read = round_trip(message)
    assert read == payload
    assert (stored[:1] == PACKED_USER) == bool(message.user_info.user_id
                                               and "\0" not in message.user_info.user_id)


# every size of varint, its edges most of all
_EDGES = [0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, 0x1F_FFFF, 0x20_0000, 0xFFF_FFFF, 0x1000_0000,
          0x7_FFFF_FFFF, 0x8_0000_0000, 2**63 - 1, 2**64 - 1]


@pytest.mark.parametrize("value", _EDGES)
def test_varints_are_protobufs_at_every_size_edge(value: int) -> None:
    assert varint(value) == encoder._VarintBytes(value)


@given(st.integers(0, 2**64 - 1))
def test_varints_are_protobufs(value: int) -> None:
    assert varint(value) == encoder._VarintBytes(value)


@given(st.integers(-62_135_596_800, 253_402_300_799), st.integers(0, 999_999_999))
def test_timestamps_are_protobufs(seconds: int, nanos: int) -> None:
    expected = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert timestamp(seconds, nanos) == expected.SerializeToString(deterministic=True)


def test_fields_are_read_from_their_tags_and_lengths() -> None:
    """packed.fields, which the oversized-request check (rpc) and the v4beta1 profile
    reader (console.queries) share: every kind of field, in order, and where each
    value lies; a message cut short ends past its end; a group cannot be skipped."""
    event = user_event_pb2.UserEvent(
        event_type="search", visitor_id="v", session_id="s",
        product_details=[user_event_pb2.ProductDetail(quantity=wrappers_pb2.Int32Value(value=3))],
        search_query="q" * 300, page_view_id="p")
    event.event_time.FromSeconds(1)
    data = event.SerializeToString(deterministic=True)
    read = list(fields(data))
    assert [number for number, *_ in read] == [f.number for f, _ in event.ListFields()]
    assert read[-1][4] == len(data)
    assert all(a[4] == b[2] for a, b in zip(read, read[1:], strict=False))  # (contiguous)
    number = user_event_pb2.UserEvent.DESCRIPTOR.fields_by_name["search_query"].number
    query = next(f for f in read if f[0] == number)  # (a two-byte length)
    assert query[1] == 2 and data[query[3]:query[4]] == b"q" * 300
    assert list(fields(data[:-1]))[-1][4] == len(data)  # (cut short: past its end)
    with pytest.raises(ValueError, match="wire type 3"):
        list(fields(b"\x0b"))  # field 1, a group's start

