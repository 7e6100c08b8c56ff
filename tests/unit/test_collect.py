from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.protobuf import json_format

from server import protojson
from server.errors import InvalidArgument
from server.retail.collect import (
    GET_EVENT_CHARS,
    PIXEL_GIF,
    decode_collect_request,
    in_url_violations,
)

PARENT = "projects/p/locations/global/catalogs/default_catalog"
EVENT = {"eventType": "detail-page-view", "visitorId": "v1",
         "productDetails": [{"product": {"id": "sku"}}]}


def decode(**fields: object) -> user_event_pb2.UserEvent:
    request = user_event_service_pb2.CollectUserEventRequest(parent=PARENT, **fields)
    event = user_event_pb2.UserEvent()
    violations = decode_collect_request(request, event)
    if violations:
        raise InvalidArgument(violations)
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


def test_an_empty_prebuilt_rule_is_no_rule() -> None:
    # (`prebuiltRule=` from a template was refused as an unknown rule '')
    assert decode(raw_json=json.dumps(EVENT), prebuilt_rule="").visitor_id == "v1"


def test_raw_json_overrides_user_event() -> None:
    other = {**EVENT, "visitorId": "from-user-event"}
    assert decode(raw_json=json.dumps(EVENT), user_event=json.dumps(other)).visitor_id == "v1"


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"user_event": '{"eventType": "x",'}, "user_event",
     "not valid JSON: unexpected end of data at line 1 column 19, at the end (a '#' or '&'"),
    ({"user_event": '{eventType: 1}'}, "user_event", "not valid JSON: unexpected character, "
     "expected a string key at line 1 column 2, at 'eventType: 1}'"),
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


def test_pixel_is_a_well_formed_1x1_transparent_gif() -> None:
    """Walk the GIF block by block, as a decoder does."""
    gif = PIXEL_GIF
    assert gif[:6] == b"GIF89a"
    assert (int.from_bytes(gif[6:8], "little"), int.from_bytes(gif[8:10], "little")) == (1, 1)
    flags = gif[10]
    assert flags & 0x80, "has a global colour table"
    pos = 13 + 3 * 2 ** ((flags & 0x07) + 1)
    # Graphic control extension, transparency on.
    assert gif[pos:pos + 3] == b"\x21\xf9\x04" and gif[pos + 3] & 1
    pos += 3 + 4 + 1
    # Image descriptor: 1x1 at 0,0, no local table, then LZW data sub-blocks.
    assert gif[pos] == 0x2C
    assert gif[pos + 5:pos + 9] == b"\x01\x00\x01\x00" and gif[pos + 9] == 0
    pos += 10 + 1  # descriptor, LZW minimum code size
    while gif[pos] != 0:
        pos += gif[pos] + 1
    assert gif[pos + 1:] == b";", "trailer right after the image data"


# Texts the fast path must read exactly as json_format does, or leave to it.
JSON_TEXTS = ['NaN', '{"eventType": 1}', '{"unknownField": 1}',
              '{"eventType": "a", "eventType": "b"}', '{"a" : {"b": 1}}',
              '{"uri": "x\\":y", "visitorId": "v"}', json.dumps(EVENT),
              '{"eventTime": "2020-01-01T00:00:00.5Z", "attributes": {"a": {"numbers": [1.5]}}}']


@pytest.mark.parametrize(("text", "kind"), [
    ("[]", "an array of 0"), ('[{"eventType": "x"}]', "an array of 1"), ('"x"', "a text, 'x'"),
    ("1", "a number, 1"), ("null", "null"), ("true", "true")])
def test_a_pixel_event_that_is_no_json_object_is_refused_in_words(text: str, kind: str) -> None:
    """json_format read `[]` as an empty event, a text as the names of its letters
    ("has no field named 'x'"), and said "'int' object is not iterable" of a number."""
    for field in ("user_event", "raw_json"):
        with pytest.raises(InvalidArgument) as refused:
            decode(**{field: text})
        [violation] = refused.value.violations
        assert (violation.field, violation.description) == (
            field, f"must be a JSON object (a UserEvent), got {kind}")


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_a_pixel_event_reads_as_json_format_reads_it(text: str) -> None:
    expected = user_event_pb2.UserEvent()
    try:
        json_format.Parse(text, expected)
    except json_format.ParseError as exc:
        with pytest.raises(InvalidArgument) as refused:
            decode(user_event=text)
        path, reason = protojson.parse_error(exc, user_event_pb2.UserEvent.DESCRIPTOR)
        [violation] = refused.value.violations
        assert violation.field == ("user_event." + path).rstrip(".")
        if "duplicate key" in reason:  # (said as a REST body's is: see below)
            reason = "is given twice in one object"
        assert reason in violation.description
    else:
        assert decode(user_event=text) == expected


def test_a_plain_pixel_event_does_not_take_json_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """json_format takes about 150 µs an event: most of a pixel's cost."""
    def slow(*args: object) -> None:
        raise AssertionError("json_format.Parse was called")

    monkeypatch.setattr(json_format, "Parse", slow)
    assert decode(user_event=json.dumps(EVENT)).visitor_id == "v1"


@pytest.mark.parametrize("text", [
    '{"eventType" : "home-page-view", "visitorId": "v1", "experimentIds": "e"}',
    '{"eventType": "home-page-view", "visitorId"\n: "v1", "experimentIds": "e"}',
])
def test_a_pixel_event_off_the_fast_path_reads_the_lenient_forms_too(text: str) -> None:
    """A space (or a line break) before a colon sends the event to json_format, which
    read it strictly: "experimentIds": "e" was refused, and recorded without it."""
    event = decode(user_event=text)
    assert list(event.experiment_ids) == ["e"] and event.event_type == "home-page-view"


@pytest.mark.parametrize(("text", "field", "words"), [
    # (in a REST body's words: json_format's were "Failed to load JSON: Failed to load
    # JSON: duplicate key eventType")
    ('{"eventType": "a", "eventType": "b", "experimentIds": "e"}', "user_event",
     "not valid JSON: the key 'eventType' is given twice in one object"),
    # a space before a colon, or an escaped colon, hid the key given twice from the count
    ('{"eventType" : "a", "visitorId": "v", "visitorId": "w"}', "user_event",
     "the key 'visitorId' is given twice"),
    ('{"eventType": "a", "visitorId": "v", "visitorId": "\\u003a"}', "user_event",
     "the key 'visitorId' is given twice"),
    ('{"eventType" : "a", "visitorId": "v", "experimentIds": "e", "clicks": 1}',
     "user_event", "clicks"),
])
def test_a_pixel_event_off_the_fast_path_is_still_refused(text: str, field: str,
                                                          words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode(user_event=text)
    [violation] = caught.value.violations
    assert violation.field == field and words in violation.description, violation


CART = {"eventType": "add-to-cart", "visitorId": "v1",
        "productDetails": [{"product": {"id": "a"}, "quantity": 1},
                           {"product": {"id": "b"}, "quantity": "1_0"}]}


@pytest.mark.parametrize("text", [
    json.dumps(CART),
    quote(json.dumps(CART)),
    # a space before a colon: off the fast path, to json_format.Parse
    json.dumps(CART).replace('"visitorId":', '"visitorId" :'),
    # and the lenient forms read after it refused the text
    json.dumps({**CART, "experimentIds": "e"}).replace('"visitorId":', '"visitorId" :'),
], ids=["fast-path", "url-encoded", "json_format", "json_format-then-lenient"])
def test_a_pixel_event_reads_numbers_in_ascii_digits_only(text: str) -> None:
    """json_format.Parse read "1_0" as 10 (Python's int())."""
    for field in ("user_event", "raw_json"):
        if field == "raw_json" and not text.startswith("{"):
            continue
        with pytest.raises(InvalidArgument) as refused:
            decode(**{field: text})
        [violation] = refused.value.violations
        assert violation.field == f"{field}.product_details[1].quantity", violation
        assert "whole number in ASCII digits (e.g. 10), got '1_0'" in violation.description


@pytest.mark.parametrize("space", ["", " "], ids=["fast-path", "json_format"])
@pytest.mark.parametrize(("details", "field"), [
    ({"product": {"id": "a"}, "quantity": {"value": 1}}, "product_details[0].quantity"),
    ([{"product": {"id": "a", "attributes": [{"key": "k", "value": {"text": ["x"]}}]}},
      {"product": {"id": "b"}, "quantity": 1.5}], "product_details[1].quantity"),
], ids=["one-object", "after-a-map-as-entries"])
def test_a_pixel_event_read_leniently_names_the_element_at_fault(details: object, field: str,
                                                                 space: str) -> None:
    text = json.dumps({"eventType": "add-to-cart", "visitorId": "v", "productDetails": details})
    with pytest.raises(InvalidArgument) as refused:
        decode(user_event=text.replace('"visitorId":', f'"visitorId"{space}:'))
    [violation] = refused.value.violations
    assert violation.field == f"user_event.{field}", violation


@pytest.mark.parametrize("space", ["", " "], ids=["fast-path", "json_format"])
def test_a_pixel_event_time_is_read_in_ascii_digits_only(space: str) -> None:
    text = json.dumps({"eventType": "home-page-view", "visitorId": "v",
                       "eventTime": "2024-05-20T10:00:00.1_0Z"})
    with pytest.raises(InvalidArgument) as refused:
        decode(user_event=text.replace('"visitorId":', f'"visitorId"{space}:'))
    [violation] = refused.value.violations
    assert violation.field == "user_event.event_time" and "RFC 3339" in violation.description


@pytest.mark.parametrize("field", ["user_event", "raw_json"])
def test_an_event_in_a_url_is_at_most_16_kib(field: str) -> None:
    """"For larger user event payload over 16 KB, the POST method should be used
    instead, otherwise a 400 Bad Request error is returned" (CollectUserEvent)."""
    def request(chars: int) -> user_event_service_pb2.CollectUserEventRequest:
        text = '{"eventType": "home-page-view", "visitorId": "'
        text += "v" * (chars - len(text) - 2) + '"}'
        assert len(text) == chars
        return user_event_service_pb2.CollectUserEventRequest(**{field: text})

    assert GET_EVENT_CHARS == 16_384
    assert in_url_violations(request(16_384)) == []
    [violation] = in_url_violations(request(16_385))
    assert violation.field == field
    assert "at most 16,384 characters" in violation.description
    assert "got 16,385: POST a larger event" in violation.description
