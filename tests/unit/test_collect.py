from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2

from server.errors import InvalidArgument
from server.retail.collect import PIXEL_GIF, decode_collect_request

PARENT = "projects/p/locations/global/catalogs/default_catalog"
EVENT = {"eventType": "detail-page-view", "visitorId": "v1",
         "productDetails": [{"product": {"id": "sku"}}]}


def decode(**fields: object) -> user_event_pb2.UserEvent:
    request = user_event_service_pb2.CollectUserEventRequest(parent=PARENT, **fields)
    event = user_event_pb2.UserEvent()
    decode_collect_request(request, event)
    return event


def test_plain_and_url_encoded_json_decode_alike() -> None:
    plain = decode(user_event=json.dumps(EVENT))
    encoded = decode(user_event=quote(json.dumps(EVENT)))
    assert plain == encoded
    assert plain.product_details[0].product.id == "sku"


def test_uri_and_ets_fill_only_missing_fields() -> None:
    event = decode(user_event=json.dumps(EVENT), uri="https://shop/p/1", ets=1_700_000_000_123)
    assert event.uri == "https://shop/p/1"
    assert event.event_time.ToMilliseconds() == 1_700_000_000_123
    own = decode(user_event=json.dumps({**EVENT, "uri": "https://own",
                                        "eventTime": "2024-01-01T00:00:00Z"}),
                 uri="https://other", ets=5)
    assert own.uri == "https://own"
    assert own.event_time.ToJsonString() == "2024-01-01T00:00:00Z"


def test_raw_json_without_rule_is_a_user_event() -> None:
    assert decode(raw_json=json.dumps(EVENT)).visitor_id == "v1"


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"user_event": '{"eventType": "x",'}, "user_event", "Failed to load JSON"),
    ({"user_event": '{"noSuchField": 1}'}, "user_event", "noSuchField"),
    ({"user_event": "x" * 2_000_001}, "user_event", "at most 2000000"),
    ({"user_event": json.dumps(EVENT), "uri": "u" * 5001}, "uri", "at most 5000"),
    ({"raw_json": json.dumps(EVENT), "prebuilt_rule": "ga4_bq"}, "prebuilt_rule", "ga4_bq"),
    ({}, "user_event", "required"),
    ({"raw_json": "[1]"}, "raw_json", "UserEvent"),
])
def test_bad_requests(fields: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode(**fields)
    assert any(v.field == field and words in v.description for v in caught.value.violations), \
        caught.value.message


def test_pixel_is_a_1x1_transparent_gif() -> None:
    assert PIXEL_GIF.startswith(b"GIF89a")
    width, height = int.from_bytes(PIXEL_GIF[6:8], "little"), int.from_bytes(PIXEL_GIF[8:10],
                                                                             "little")
    assert (width, height) == (1, 1)
    gce = PIXEL_GIF.index(b"\x21\xf9\x04")
    assert PIXEL_GIF[gce + 3] & 1, "transparency flag set"
    assert PIXEL_GIF.endswith(b";")
