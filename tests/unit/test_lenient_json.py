"""Import lines in the forms Google's importer accepts decode to what their proto3-JSON
equivalent decodes to; lines that are proto3 JSON already decode exactly as the strict
parser decodes them; what Google refuses stays refused (issue 15, item 1)."""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import orjson
import pytest
from footfall.retail.v2 import product_pb2, user_event_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from server import lenient_json, protojson
from server.retail.bulk_import import decode_json_line
from tests.unit.test_protojson import _strategy

UserEvent = user_event_pb2.UserEvent
Product = product_pb2.Product


def decoded(doc: Any, message_class: type) -> bytes:
    message = decode_json_line(orjson.dumps(doc), message_class, message_class.__name__)
    return message.SerializeToString(deterministic=True)


def strict(doc: Any, message_class: type) -> bytes:
    return json_format.ParseDict(doc, message_class()).SerializeToString(deterministic=True)


def refusal(doc: Any, message_class: type) -> str:
    with pytest.raises(ValueError) as refused:
        decode_json_line(orjson.dumps(doc), message_class, message_class.__name__)
    return str(refused.value)


# (a lenient form, its proto3-JSON equivalent)
EVENT_FORMS = [
    ({"eventType": "detail-page-view", "visitorId": "v",
      "productDetails": {"product": {"id": "p1"}, "quantity": 2}},
     {"eventType": "detail-page-view", "visitorId": "v",
      "productDetails": [{"product": {"id": "p1"}, "quantity": 2}]}),
    ({"eventType": "home-page-view", "visitorId": "v",
      "attributes": [{"key": "channel", "value": {"text": ["email"]}},
                     {"key": "score", "value": {"numbers": [1.5]}}]},
     {"eventType": "home-page-view", "visitorId": "v",
      "attributes": {"channel": {"text": ["email"]}, "score": {"numbers": [1.5]}}}),
    ({"eventType": "home-page-view", "visitorId": "v",
      "userInfo": {"userId": "u", "directUserRequest": "true"}},
     {"eventType": "home-page-view", "visitorId": "v",
      "userInfo": {"userId": "u", "directUserRequest": True}}),
    ({"eventType": "home-page-view", "visitorId": "v",
      "attributes": {"a": {"text": ["x"], "indexable": "false", "searchable": "true"}}},
     {"eventType": "home-page-view", "visitorId": "v",
      "attributes": {"a": {"text": ["x"], "indexable": False, "searchable": True}}}),
    ({"event_type": "search", "visitor_id": "v", "search_query": "q", "offset": "20"},
     {"eventType": "search", "visitorId": "v", "searchQuery": "q", "offset": 20}),
    ({"eventType": "home-page-view", "visitorId": "v", "eventTime": "2021-12-12T10:27:42+00:00"},
     {"eventType": "home-page-view", "visitorId": "v", "eventTime": "2021-12-12T10:27:42Z"}),
    ({"eventType": "purchase-complete", "visitorId": "v",
      "purchaseTransaction": {"revenue": "16.5", "currencyCode": "USD"}},
     {"eventType": "purchase-complete", "visitorId": "v",
      "purchaseTransaction": {"revenue": 16.5, "currencyCode": "USD"}}),
    # One value where a list of values goes, as Google's pages write experimentIds.
    ({"eventType": "home-page-view", "visitorId": "v", "experimentIds": "exp-7"},
     {"eventType": "home-page-view", "visitorId": "v", "experimentIds": ["exp-7"]}),
    ({"eventType": "category-page-view", "visitorId": "v", "pageCategories": "Sale > Boots"},
     {"eventType": "category-page-view", "visitorId": "v", "pageCategories": ["Sale > Boots"]}),
    ({"eventType": "home-page-view", "visitorId": "v",
      "attributes": {"size": {"numbers": 42}, "tone": {"text": "warm"}}},
     {"eventType": "home-page-view", "visitorId": "v",
      "attributes": {"size": {"numbers": [42]}, "tone": {"text": ["warm"]}}}),
]

PRODUCT_FORMS = [
    ({"id": "p", "title": "T", "retrievableFields": "price_info,color_info.color_families,title"},
     {"id": "p", "title": "T", "retrievableFields": "priceInfo,colorInfo.colorFamilies,title"}),
    ({"id": "p", "priceInfo": {"currencyCode": "USD", "price": "16", "originalPrice": "45.0"}},
     {"id": "p", "priceInfo": {"currencyCode": "USD", "price": 16, "originalPrice": 45}}),
    ({"id": "p", "attributes": [{"key": "eco", "value": {"text": ["yes"], "indexable": "true",
                                                         "searchable": "false"}}]},
     {"id": "p", "attributes": {"eco": {"text": ["yes"], "indexable": True,
                                        "searchable": False}}}),
    ({"id": "p", "images": {"uri": "https://i/1.jpg", "height": "300", "width": "400"}},
     {"id": "p", "images": [{"uri": "https://i/1.jpg", "height": 300, "width": 400}]}),
    ({"id": "p", "color_info": {"color_families": ["Black"]}, "available_quantity": "5"},
     {"id": "p", "colorInfo": {"colorFamilies": ["Black"]}, "availableQuantity": 5}),
    ({"id": "p", "publishTime": "2021-05-01T12:00:00.5-05:30"},
     {"id": "p", "publishTime": "2021-05-01T17:30:00.5Z"}),
]


@pytest.mark.parametrize(("lenient", "proto3"), EVENT_FORMS,
                         ids=[json.dumps(f[0])[:70] for f in EVENT_FORMS])
def test_each_event_form_alone(lenient: dict[str, Any], proto3: dict[str, Any]) -> None:
    assert decoded(lenient, UserEvent) == strict(proto3, UserEvent)


@pytest.mark.parametrize(("lenient", "proto3"), PRODUCT_FORMS,
                         ids=[json.dumps(f[0])[:70] for f in PRODUCT_FORMS])
def test_each_product_form_alone(lenient: dict[str, Any], proto3: dict[str, Any]) -> None:
    assert decoded(lenient, Product) == strict(proto3, Product)


def test_every_form_in_one_line() -> None:
    lenient = {"event_type": "detail-page-view", "visitorId": "v", "offset": "3",
               "eventTime": "2021-12-12T10:27:42.25+01:00",
               "userInfo": {"user_id": "u", "directUserRequest": "false"},
               "attributes": [{"key": "a", "value": {"text": ["x"], "indexable": "true"}}],
               "productDetails": {"product": {"id": "p", "retrievable_fields": "price_info",
                                              "priceInfo": {"price": "16"},
                                              "attributes": [{"key": "k", "value": {
                                                  "numbers": ["2"], "searchable": "true"}}]},
                                  "quantity": "2"}}
    proto3 = {"eventType": "detail-page-view", "visitorId": "v", "offset": 3,
              "eventTime": "2021-12-12T09:27:42.25Z",
              "userInfo": {"userId": "u", "directUserRequest": False},
              "attributes": {"a": {"text": ["x"], "indexable": True}},
              "productDetails": [{"product": {"id": "p", "retrievableFields": "priceInfo",
                                              "priceInfo": {"price": 16},
                                              "attributes": {"k": {"numbers": [2],
                                                                   "searchable": True}}},
                                  "quantity": 2}]}
    assert decoded(lenient, UserEvent) == strict(proto3, UserEvent)


# The field as a proto path (json_format's own words name it in JSON).
@pytest.mark.parametrize(("doc", "field"), [
    ({"eventType": "x", "visitorId": "v", "notAField": 1}, "notAField"),
    ({"eventType": "x", "userInfo": {"directUserRequest": "yes"}}, "direct_user_request"),
    ({"eventType": "x", "userInfo": {"directUserRequest": "True"}}, "direct_user_request"),
    ({"eventType": "x", "userInfo": [{"userId": "u"}]}, "user_info"),
    ({"eventType": "x", "productDetails": "p1"}, "product_details"),
    ({"eventType": "x", "pageCategories": {"name": "shoes"}}, "page_categories"),
    ({"eventType": "x", "experimentIds": [["a"]]}, "experiment_ids"),
    ({"eventType": "x", "attributes": [{"key": "k", "value": {"text": ["a"]}, "extra": 1}]},
     "attributes"),
    ({"eventType": "x", "attributes": [{"value": {"text": ["a"]}}]}, "attributes"),
    ({"eventType": "x", "offset": "twenty"}, "offset"),
    ({"eventType": "x", "eventTime": "2021-12-12 10:27:42"}, "event_time"),
    ({"eventType": "x", "productDetails": {"product": {"id": "p", "retrievableFields":
                                                       "price_Info"}}}, "retrievable_fields"),
])
def test_what_google_refuses_stays_refused(doc: dict[str, Any], field: str) -> None:
    assert field in refusal(doc, UserEvent)


def test_a_map_entry_without_a_value_holds_the_default_value() -> None:
    """As a map entry on the wire: its value was None, refused in Python's words
    ("'NoneType' object is not iterable"); the empty attribute is then refused by
    validation, naming it."""
    assert decoded({"eventType": "x", "attributes": [{"key": "k"}]}, UserEvent) == \
        strict({"eventType": "x", "attributes": {"k": {}}}, UserEvent)


@pytest.mark.parametrize("depth", [600, 1000])
def test_a_line_nesting_past_the_stack_is_refused_alone(depth: int) -> None:
    """Products nested as variants (an object where a list goes) past the stack:
    json_format's error message took the repr of the rest and raised RecursionError,
    which failed the whole import (INTERNAL), not the line."""
    product = '{"id": "x", "variants": ' * depth + '{"id": "y"}' + "}" * depth
    line = ('{"eventType": "x", "visitorId": "v", "productDetails": [{"product": '
            + product + "}]}").encode()
    with pytest.raises(ValueError, match="not a UserEvent"):
        decode_json_line(line, UserEvent, "UserEvent")


def test_a_refused_line_names_what_is_still_wrong() -> None:
    """A line with a lenient form and a real mistake: the message is about the mistake."""
    why = refusal({"eventType": "x", "productDetails": {"product": {"id": "p"}},
                   "offset": "twenty"}, UserEvent)
    assert "offset" in why and "productDetails" not in why


def _valid(doc: dict[str, Any], message_class: type) -> bool:
    """Whether the strict reading (json_format, with protojson's check of numbers in
    strings) takes `doc`."""
    try:
        protojson.parse_into(doc, message_class())
    except json_format.ParseError:
        return False
    return True


@settings(max_examples=120, deadline=None)
@given(_strategy(UserEvent.DESCRIPTOR, 0))
def test_proto3_lines_decode_as_the_strict_parser_decodes(doc: dict[str, Any]) -> None:
    if _valid(doc, UserEvent):
        assert decoded(doc, UserEvent) == strict(doc, UserEvent)


INTEGERS = {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
            FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64}
FLOATS = {FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE}


def _loosen(doc: Any, message: Descriptor, draw: Any) -> Any:
    """`doc` (proto3 JSON of `message`) with lenient forms put in at random."""
    if type(doc) is not dict:
        return doc
    fields = {f.json_name: f for f in message.fields} | {f.name: f for f in message.fields}
    out = {}
    for key, value in doc.items():
        field = fields[key]
        out[field.name if draw(st.booleans()) else key] = _loosen_value(value, field, draw)
    return out


def _loosen_value(value: Any, field: FieldDescriptor, draw: Any) -> Any:
    if value is None:
        return value
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        inner = message.fields_by_name["value"]
        loose = {k: _loosen_one(v, inner, draw) for k, v in value.items()}
        if draw(st.booleans()):
            return [{"key": k, "value": v} for k, v in loose.items()]
        return loose
    if field.is_repeated and type(value) is list:
        items = [_loosen_one(v, field, draw) for v in value]
        if len(items) == 1 and type(items[0]) is dict and draw(st.booleans()):
            return items[0]
        return items
    return _loosen_one(value, field, draw)


def _loosen_one(value: Any, field: FieldDescriptor, draw: Any) -> Any:
    message = field.message_type
    if value is None:
        return value
    if message is None:
        quotable = {bool: field.type == FieldDescriptor.TYPE_BOOL,
                    int: field.cpp_type in INTEGERS | FLOATS, float: field.cpp_type in FLOATS}
        if quotable.get(type(value), False) and draw(st.booleans()):
            return json.dumps(value)
        return value
    if message.full_name == "google.protobuf.FieldMask" and type(value) is str:
        return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), value)
    if message.full_name.startswith("google.protobuf."):
        return value
    return _loosen(value, message, draw)


@st.composite
def loosened(draw: Any, message_class: type) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = draw(_strategy(message_class.DESCRIPTOR, 0))
    if not _valid(doc, message_class):
        return {}, {}
    return _loosen(doc, message_class.DESCRIPTOR, draw), doc


@settings(max_examples=120, deadline=None)
@given(loosened(UserEvent))
def test_loosened_events_decode_as_their_proto3_form(pair: tuple[dict, dict]) -> None:
    loose, exact = pair
    assert decoded(loose, UserEvent) == strict(exact, UserEvent)


@settings(max_examples=100, deadline=None)
@given(loosened(Product))
def test_loosened_products_decode_as_their_proto3_form(pair: tuple[dict, dict]) -> None:
    loose, exact = pair
    assert decoded(loose, Product) == strict(exact, Product)


# A line read leniently names the element of a list as a proto3 line does: one object
# for a list is its element [0], and an element before it in a lenient form (a map as
# a list of entries, which the strict parse refuses) is not the one at fault.
MAP_AS_LIST = {"product": {"id": "a", "attributes": [{"key": "k", "value": {"text": ["x"]}}]}}
PLACED = [
    ({"productDetails": {"product": {"id": "p"}, "quantity": {"value": 1}}},
     "product_details[0].quantity", "must be a whole number, got an object"),
    ({"productDetails": {"product": {"id": "p"}, "quantity": 1.5}},
     "product_details[0].quantity", "Couldn't parse integer: 1.5"),  # (was quantity.value)
    ({"productDetails": {"product": {"id": "p"}, "quantity": "1.5"}},
     "product_details[0].quantity", 'non-integer string: "1.5"'),
    ({"productDetails": {"product": {"id": "p", "colour": "red"}}},
     "product_details[0].product", 'no field named "colour"'),
    ({"productDetails": [MAP_AS_LIST, {"product": {"id": "b"}, "quantity": {"value": 1}}]},
     "product_details[1].quantity", "must be a whole number, got an object"),
    ({"productDetails": [MAP_AS_LIST, {"product": {"id": "b", "priceInfo": {"price": [1]}}}]},
     "product_details[1].product.price_info.price", "must be a number, got an array"),
    ({"experimentIds": "e", "productDetails": [{"product": {"id": "a"}},
                                               {"product": {"id": "b"}, "quantity": True}]},
     "product_details[1].quantity", "must be a whole number, got true"),
    ({"productDetails": {"product": {"id": "p", "images": {"uri": "u", "height": 1.5}}}},
     "product_details[0].product.images[0].height", "Couldn't parse integer: 1.5"),
]


@pytest.mark.parametrize(("doc", "field", "why"), PLACED,
                         ids=[json.dumps(d)[:60] for d, _, _ in PLACED])
def test_a_line_read_leniently_names_the_element_at_fault(doc: dict[str, Any], field: str,
                                                          why: str) -> None:
    said = refusal({"eventType": "add-to-cart", "visitorId": "v", **doc}, UserEvent)
    assert said.startswith(f"not a UserEvent: {field}: ") and why in said, said


def test_a_product_line_read_leniently_names_the_element_at_fault() -> None:
    said = refusal({"id": "p", "title": "t", "images": {"uri": "u", "width": {"w": 1}},
                    "attributes": [{"key": "k", "value": {"text": ["x"]}}]}, Product)
    assert said.startswith("not a Product: images[0].width: "), said


@pytest.mark.parametrize(("body", "read"), [
    # Google's pages on managing user events
    (b"{ 'userEventRejoinScope': 'UNJOINED_EVENTS' }",
     {"userEventRejoinScope": "UNJOINED_EVENTS"}),
    (b"{'filter':'eventTime > \"2019-12-23T18:25:43.511Z\"', 'force':'true'}",
     {"filter": 'eventTime > "2019-12-23T18:25:43.511Z"', "force": "true"}),
    (b"{'a': 'it\\'s', 'b': 'two\\nlines', 'c': \"'kept'\"}",
     {"a": "it's", "b": "two\nlines", "c": "'kept'"}),
    ("{'caf\u00e9': ['\u00e9t\u00e9', 1, null]}".encode(),
     {"caf\u00e9": ["\u00e9t\u00e9", 1, None]}),
])
def test_single_quoted_strings_are_read_as_double_quoted(body: bytes, read: Any) -> None:
    rewritten = lenient_json.double_quoted(body)
    assert rewritten is not None and json.loads(rewritten) == read


@pytest.mark.parametrize("body", [
    b'{"a": "it\'s"}',  # a quote inside a JSON string: nothing to rewrite
    b"{'unterminated: 1}",
    b"\xff{'a': 1}",  # not UTF-8
    b"{}",
])
def test_nothing_to_rewrite_is_none(body: bytes) -> None:
    assert lenient_json.double_quoted(body) is None


def test_what_is_not_json_in_any_quotes_stays_refused() -> None:
    rewritten = lenient_json.double_quoted(b"{'force': True, 'n': 1,}")
    assert rewritten == b'{"force": True, "n": 1,}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(rewritten)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("unit", [b"'\\", b"'\"\\\"\\", b"\"'"])
def test_a_body_of_quotes_that_never_close_is_read_in_one_pass(unit: bytes) -> None:
    """A quote whose string never closed sent the search to the end of the body from
    every quote: 80 KB held the server 17 s, and a body of 1 MiB would have held it
    most of an hour (a hang guard: far below the timeout once read in one pass)."""
    body = unit * (lenient_json.SINGLE_QUOTED_MAX // len(unit))
    assert lenient_json.double_quoted(body) is None
    assert lenient_json.double_quoted(body + b"!" * lenient_json.SINGLE_QUOTED_MAX) is None


def test_a_line_cut_short_is_said_where_it_stops_in_that_line() -> None:
    """Read with its line break, it was "unexpected end of data at line 2 column 1"; its
    caller names the file's line, so the place is its column alone ("line 3: ... at line
    1 column 18" named two lines)."""
    for ending in (b"\n", b"\r\n", b""):
        with pytest.raises(ValueError) as refused:
            decode_json_line(b'{"eventType": "x"' + ending, user_event_pb2.UserEvent, "UserEvent")
        assert "at column 18," in str(refused.value) and "line" not in str(refused.value), \
            refused.value


def test_a_gzip_files_first_line_says_the_file_is_compressed() -> None:
    """An import of `events.json.gz` read its bytes as they lie: line 1 was told "not
    valid UTF-8: the byte 0x8b at column 2 (byte 1)", which names no cause."""
    line = gzip.compress(b'{"eventType": "home-page-view", "visitorId": "v"}\n')
    with pytest.raises(ValueError, match=r"^invalid JSON: the file is gzip-compressed "
                                         r"\(it begins with gzip's bytes 1f 8b\); .*gunzip"):
        decode_json_line(line.split(b"\n")[0], UserEvent, "UserEvent")
