"""limits.serialized_at_least is a lower bound: an event it puts past
--max-event-bytes is refused unparsed, so it never counts a byte the parse does not
serialize (defaults, enum names, timestamps, a field under both its names)."""

from __future__ import annotations

from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2
from footfall.talent.v4 import event_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from server import lenient_json
from server.policy.limits import serialized_at_least

EVENTS: list[tuple[type[Message], dict[str, Any]]] = [
    (user_event_pb2.UserEvent, {"eventType": "detail-page-view", "visitorId": "v",
                                "productDetails": [{"product": {"id": "x"}}] * 300}),
    (user_event_pb2.UserEvent, {
        "eventType": "search", "visitor_id": "", "eventTime": "1970-01-01T00:00:00Z",
        "experimentIds": ["", "a"], "pageCategories": [""], "userInfo": {},
        "attributes": {"a": {"numbers": [0, 0.5]}, "b": {"text": ["", "é" * 10]}},
        "productDetails": [{}, {"product": {}}, {"product": {"id": "", "priceInfo": {}},
                                                 "quantity": 0}],
        "purchaseTransaction": {"id": "", "revenue": 0, "currencyCode": "USD"}}),
    (event_pb2.ClientEvent, {"eventId": "e", "createTime": "2026-01-01T00:00:00Z",
                             "jobEvent": {"type": "VIEW", "jobs": ["j"] * 50},
                             "eventNotes": ""}),
]


@pytest.mark.parametrize(("kind", "document"), EVENTS)
def test_the_bound_is_at_most_the_size_serialized(kind: type[Message],
                                                   document: dict[str, Any]) -> None:
    event = json_format.ParseDict(document, kind())
    bound = serialized_at_least(kind.DESCRIPTOR, document, 10 ** 9)
    assert 0 < bound <= event.ByteSize()


def test_a_field_under_both_names_counts_once() -> None:
    document = {"visitorId": "v" * 100, "visitor_id": "v" * 100}
    assert serialized_at_least(user_event_pb2.UserEvent.DESCRIPTOR, document, 10 ** 9) == 102


def test_counting_stops_once_past_enough() -> None:
    document = {"productDetails": [{"product": {"id": "x"}}] * 100_000}
    bound = serialized_at_least(user_event_pb2.UserEvent.DESCRIPTOR, document, 1000)
    assert 1000 < bound < 100_000 * 7


def test_one_object_for_a_list_counts_as_one_member_not_as_a_map() -> None:
    """Google's form of a list of one (lenient_json), its fields left at their
    defaults: counted as a map's entries (keys and all), 1,000 such details read
    50,021 bytes of an event of 19,021, so one within --max-event-bytes was refused."""
    detail = {"product": {"id": "p", "images": {"height": 0, "width": 0},
                          "promotions": {"promotionId": ""}, "fulfillmentInfo": {"type": ""},
                          "localInventories": {"placeId": ""}}}
    document = {"eventType": "detail-page-view", "visitorId": "v",
                "productDetails": [detail] * 1000}
    event = lenient_json.parse_dict(document, user_event_pb2.UserEvent)
    assert serialized_at_least(user_event_pb2.UserEvent.DESCRIPTOR, document,
                               10 ** 9) <= event.ByteSize()


def test_members_the_parse_refuses_are_no_bytes() -> None:
    document = {"productDetails": [None, 1, "x"] * 1000, "experimentIds": [None, {}] * 1000,
                "attributes": {"a": {"numbers": [None] * 1000}}}
    assert serialized_at_least(user_event_pb2.UserEvent.DESCRIPTOR, document, 10 ** 9) \
        == 2 + 1  # (the attributes' one entry and its key)
