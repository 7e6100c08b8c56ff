"""A refused JSON document is read again field by field: every wrong value is named,
each with the path and the words a refusal of it alone gives."""

from __future__ import annotations

from typing import Any

import pytest
from footfall.retail.v2 import import_config_pb2, product_pb2, user_event_pb2
from google.protobuf import json_format
from google.rpc import error_details_pb2

from server import json_problems, lenient_json, protojson
from server.errors import MAX_REPORTED_VIOLATIONS, FieldViolation, InvalidArgument, unlisted

UserEvent = user_event_pb2.UserEvent


def problems(document: dict[str, Any], message_class: type = UserEvent
             ) -> tuple[list[tuple[str, str]], int]:
    with pytest.raises(json_format.ParseError) as caught:
        lenient_json.parse_dict(document, message_class)
    return json_problems.listed(caught.value, message_class.DESCRIPTOR, document)


@pytest.mark.parametrize(("document", "paths"), [
    ({"eventType": 3, "visitorId": True, "eventTime": "yesterday"},
     ["event_type", "visitor_id", "event_time"]),
    ({"eventType": "search", "productDetails": [{"product": {"id": 1}}, {"quantity": "a"}]},
     ["product_details[0].product.id", "product_details[1].quantity"]),
    ({"attributes": {"a": {"text": [1]}, "b": "red", "c": {"numbers": ["x"]}}},
     ["attributes['a'].text[0]", "attributes['b']", "attributes['c'].numbers[0]"]),
    ({"visitorId": "v", "visitor_id": "w", "bogus": 1, "userInfo": {"visitorId": "x"}},
     ["visitor_id", "", "user_info"]),
    # the lenient forms are read first: one object for a list of one, a quoted boolean
    ({"productDetails": {"product": {"id": 1}}, "userInfo": {"directUserRequest": "yes"},
      "experimentIds": "e"},
     ["product_details[0].product.id", "user_info.direct_user_request"]),
    ({"purchaseTransaction": {"revenue": "lots", "tax": True, "currencyCode": "USD"}},
     ["purchase_transaction.revenue", "purchase_transaction.tax"]),
    # each wrong member of a list by its index, as a list of messages names its own
    ({"experimentIds": ["a", 5, {}], "pageCategories": [1, 2]},
     ["experiment_ids[1]", "experiment_ids[2]", "page_categories[0]", "page_categories[1]"]),
    ({"attributes": {"k": {"numbers": [1, "x", True], "text": ["a", None]}}},
     ["attributes['k'].numbers[1]", "attributes['k'].numbers[2]", "attributes['k'].text[1]"]),
    ({"productDetails": [1, {"product": {"id": "p"}}, "two"]},
     ["product_details[0]", "product_details[2]"]),
])
def test_every_wrong_value_is_named(document: dict[str, Any], paths: list[str]) -> None:
    found, more = problems(document)
    assert [path for path, _ in found] == paths and more == 0, found


def test_each_is_said_as_a_refusal_of_it_alone() -> None:
    found, _ = problems({"eventTime": "yesterday", "userInfo": {"visitorId": "x"},
                         "visitorID": "v"})
    said = dict(found)
    assert "not an RFC 3339 timestamp" in said["event_time"] and "'yesterday'" in \
        said["event_time"]
    assert "it is a field of UserEvent itself, not of UserInfo" in said["user_info"], said
    assert 'did you mean "visitorId"?' in said[""], said


def test_a_single_mistake_is_told_as_before() -> None:
    for document in ({"eventType": 3}, {"productDetails": [{"quantity": "a"}]},
                     {"attributes": {"k": {"numbers": ["x"]}}}, {"userInfo": {"visitorId": "v"}}):
        with pytest.raises(json_format.ParseError) as caught:
            protojson.parse_into(document, UserEvent())
        alone = protojson.parse_error(caught.value, UserEvent.DESCRIPTOR, document)
        found, _ = problems(document)
        assert found == [alone], (found, alone)


def test_a_map_key_is_spelled_as_the_rules_spell_it() -> None:
    """json_format names a map's key bare or not at all (`attributes.numbers`)."""
    found, _ = problems({"attributes": {"k": {"numbers": [{"a": 1}]}}})
    assert [path for path, _ in found] == ["attributes['k'].numbers[0]"], found


def wrong_texts(count: int) -> dict[str, Any]:
    return {"attributes": {f"k{i}": {"text": [i]} for i in range(count)}}


def test_thousands_are_kept_to_what_an_answer_lists_and_counted_up_to_a_bound() -> None:
    # Each wrong value costs a parse of its own: a body of 2,700 took 23 ms of CPU to
    # refuse, against 6.4 to accept. Past WALKED the walk stops, saying "more than".
    first = [(f"attributes['k{i}'].text[0]", f"must be a JSON string, got a number, {i}")
             for i in range(MAX_REPORTED_VIOLATIONS)]
    with pytest.raises(json_format.ParseError) as caught:
        lenient_json.parse_dict(wrong_texts(json_problems.WALKED), UserEvent)
    assert json_problems.listed(caught.value, UserEvent.DESCRIPTOR) == (
        first, json_problems.WALKED - MAX_REPORTED_VIOLATIONS)
    assert not json_problems.stopped(caught.value)  # (all of them: counted exactly)
    for count in (json_problems.WALKED + 1, 10_000):
        with pytest.raises(json_format.ParseError) as caught:
            lenient_json.parse_dict(wrong_texts(count), UserEvent)
        assert json_problems.listed(caught.value, UserEvent.DESCRIPTOR) == (
            first, json_problems.WALKED - MAX_REPORTED_VIOLATIONS)
        assert json_problems.stopped(caught.value)
    violations = [FieldViolation(*problem) for problem in first]
    counted = InvalidArgument([*violations, *unlisted(900)])
    assert counted.message.endswith(
        "must be a JSON string, got a number, 99; and 900 more violations")
    at_least = InvalidArgument([*violations, *unlisted(900, stopped=True)])
    assert at_least.message.endswith(
        "must be a JSON string, got a number, 99; and more than 900 other violations")
    shorter = at_least.shorter_message(300)
    shown = shorter.count("must be a JSON string")
    assert shorter.endswith(f"; and more than {1_000 - shown} other violations"), shorter
    [bad] = [error_details_pb2.BadRequest.FromString(d.SerializeToString())
             for d in at_least.details()]
    assert len(bad.field_violations) == MAX_REPORTED_VIOLATIONS + 1
    assert (bad.field_violations[-1].field, bad.field_violations[-1].description) == (
        "", "and more than 900 other violations")


TWO_SOURCES = ('Message type "google.cloud.retail.v2.UserEventInputConfig" should not have '
               'multiple "source" oneof fields')
INLINE_TIME = "user_event_inline_source.user_events[0].event_time"


@pytest.mark.parametrize(("inline", "gcs", "paths"), [
    ({"userEvents": [{"eventTime": 5}]}, {"inputUris": ["gs://b/e"]}, [INLINE_TIME, ""]),
    ({"userEvents": [{"eventTime": 5}]}, {"inputUris": [5]},
     [INLINE_TIME, "", "gcs_source.input_uris[0]"]),
    (5, {"inputUris": ["gs://b/e"]}, ["user_event_inline_source", ""]),
    ({"userEvents": []}, {"inputUris": [5]}, ["", "gcs_source.input_uris[0]"]),
    ({"userEvents": []}, 5, ["", "gcs_source"]),
])
def test_two_of_one_oneof_are_named_so_beside_the_wrong_values_in_them(
        inline: Any, gcs: Any, paths: list[str]) -> None:
    # Parsed together for json_format's words, two of one oneof were refused for the
    # first wrong value in either: the first's was named twice, or the second's in
    # place of the two, and the wrong values in the second were not looked for
    found, more = problems({"userEventInlineSource": inline, "gcsSource": gcs},
                           import_config_pb2.UserEventInputConfig)
    assert [path for path, _ in found] == paths and more == 0, found
    assert found[paths.index("")] == ("", TWO_SOURCES)


def test_two_of_one_oneof_of_well_known_types_are_named_so_too() -> None:
    expiration = ('Message type "google.cloud.retail.v2.Product" should not have multiple '
                  '"expiration" oneof fields')
    for document, paths in (({"expireTime": 5, "ttl": "1s"}, ["expire_time", ""]),
                            ({"expireTime": "2024-01-01T00:00:00Z", "ttl": 5}, ["", "ttl"])):
        found, more = problems(document, product_pb2.Product)
        assert [path for path, _ in found] == paths and more == 0, found
        assert found[paths.index("")] == ("", expiration)


def test_a_product_too() -> None:
    found, _ = problems({"id": 1, "title": ["T"], "priceInfo": {"price": "cheap"}},
                        product_pb2.Product)
    assert [path for path, _ in found] == ["id", "title", "price_info.price"], found
