"""Events are stored without the fields their columns hold, and read back byte-equal."""

from __future__ import annotations

import random
from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.internal import encoder
from hypothesis import given
from hypothesis import strategies as st

from server.store.packed import PACKED, pack, timestamp, unpack, varint
from server.store.rows import EventRow

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


def event(**fields: Any) -> Any:
    return json_format.ParseDict(fields, user_event_pb2.UserEvent())


def round_trip(message: Any) -> tuple[bytes, bytes]:
    """(stored, read back) for `message` as a row stores it."""
    row = EventRow.from_event(CATALOG, message, joined=False)
    stored = row.as_params()[8]
    return stored, unpack(stored, row.event_type, row.visitor_id, row.event_time_us,
                          row.event_time_ns)


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
    assert stored[:1] == PACKED and len(stored) < len(payload)


def test_events_the_columns_cannot_rebuild_are_stored_whole() -> None:
    no_time = event(eventType="home-page-view", visitorId="v")
    nul = event(eventType="home-page-view", visitorId="a\0b", eventTime="2024-01-01T00:00:00Z")
    for message in (no_time, nul):
        payload = message.SerializeToString(deterministic=True)
        stored, read = round_trip(message)
        assert stored == payload and read == payload
    # a row whose columns differ from its event (stored by hand) is never cut
    payload = nul.SerializeToString(deterministic=True)
    assert pack(payload, "home-page-view", "other", 1_704_067_200_000_000, 0) == payload
    assert unpack(b"", "t", "v", 0, 0) == b""  # an empty event is no packed one


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
