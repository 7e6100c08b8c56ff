"""The fast JSON -> proto path must build exactly what json_format builds (with the
proto3 JSON rules it leaves out: protojson.check_texts), and fail exactly as it
fails, for every input: a hand-written corpus of edge cases plus property-based
random objects shaped like UserEvents and Products."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from footfall.retail.v2 import product_pb2, user_event_pb2
from footfall.talent.v4 import event_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from server import lenient_json, protojson
from server.protojson import parse_dict
from tests.unit.test_protojson_write import Every, messages


def outcome(data: Any, message_class: type) -> tuple[str, Any]:
    try:
        return "ok", parse_dict(data, message_class).SerializeToString(deterministic=True)
    except json_format.ParseError as exc:
        return "error", str(exc)


def reference(data: Any, message_class: type) -> tuple[str, Any]:
    """json_format's reading, with the proto3 JSON rules it leaves out (numbers in
    strings: protojson.check_texts)."""
    message = message_class()
    try:
        protojson.parse_into(data, message)
    except json_format.ParseError as exc:
        return "error", str(exc)
    return "ok", message.SerializeToString(deterministic=True)


def presence(message: Any) -> list[str]:
    """Which fields are set, recursively: equal bytes can still differ in presence."""
    out = []
    for field, value in message.ListFields():
        out.append(field.name)
        if field.message_type is not None and not field.is_repeated:
            out.extend(f"{field.name}.{p}" for p in presence(value))
    return out


CORPUS: list[dict[str, Any]] = [
    {"eventType": "home-page-view", "visitorId": "v"},
    {"event_type": "search", "visitor_id": "v", "search_query": "shoes", "offset": 20},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:59:59Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:59:59.123Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:59:59.123456789Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:59:59.1Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:59:59+02:00"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2023-02-29T00:00:00Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-13-01T00:00:00Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "0001-01-01T00:00:00Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": 5},
    {"eventType": "x", "productDetails": [{"product": {"id": "p", "priceInfo": {
        "price": 1, "originalPrice": 2.5, "currencyCode": "USD"}}, "quantity": 3}]},
    {"eventType": "x", "productDetails": [{"product": {"id": "p"}, "quantity": "3"}]},
    {"eventType": "x", "productDetails": [{"product": {"id": "p"}, "quantity": None}]},
    {"eventType": "x", "productDetails": [None]},
    {"eventType": "x", "productDetails": {}},
    {"eventType": "x", "userInfo": {}},
    {"eventType": "x", "userInfo": {"userId": "u", "directUserRequest": True}},
    {"eventType": "x", "userInfo": {"directUserRequest": 1}},
    {"eventType": "x", "attributes": {"k": {"text": ["a", "b"]}, "n": {"numbers": [1, 2.5]}}},
    {"eventType": "x", "attributes": {"k": {"text": ["a"], "searchable": False}}},
    {"eventType": "x", "attributes": {"k": {"text": ["a"], "indexable": True}}},
    {"eventType": "x", "attributes": {"k": None}},
    {"eventType": "x", "attributes": []},
    {"eventType": "x", "purchaseTransaction": {"revenue": 1e39, "currencyCode": "USD"}},
    {"eventType": "x", "purchaseTransaction": {"revenue": "NaN"}},
    {"eventType": "x", "purchaseTransaction": {"revenue": 12, "tax": -1.5}},
    {"eventType": "x", "offset": 2**31},
    {"eventType": "x", "offset": 1.0},
    {"eventType": "x", "offset": 1.5},
    {"eventType": "x", "offset": True},
    {"eventType": 5},
    {"eventType": "x", "unknownField": 1},
    {"eventType": "x", "visitorId": "a", "visitor_id": "b"},
    {"eventType": "x", "pageCategories": ["a", "b"], "experimentIds": []},
    {"eventType": "x", "completionDetail": {"completionAttributionToken": "t",
                                            "selectedPosition": 2}},
    {"eventType": "x", "entity": "shop", "sessionId": "s", "pageViewId": "pv"},
    {"eventType": "x", "productDetails": [{"product": {"id": "p", "type": "VARIANT"}}]},
    {"eventType": "x", "productDetails": [{"product": {"id": "p", "type": 2}}]},
    {"eventType": "x", "productDetails": [{"product": {"id": "p", "type": "NOPE"}}]},
    {"eventType": "x", "productDetails": [{"product": {"id": "p", "ttl": "3.5s"}}]},
    {"eventType": "x", "productDetails": [{"product": {"id": "p",
                                                        "retrievableFields": "title,uri"}}]},
    {"eventType": "x", "productDetails": [{"product": {"id": "p", "ttl": "1s",
                                                        "expireTime": "2030-01-01T00:00:00Z"}}]},
    {"eventType": "x", "productDetails": [{"product": {"id": "p", "images": [
        {"uri": "https://i", "height": 10, "width": 20}]}}]},
    # timestamps at the edges of the fast path's own reading
    {"eventType": "x", "visitorId": "v", "eventTime": "0000-01-01T00:00:00Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "9999-12-31T23:59:59.999999999Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "1969-12-31T23:59:59.5Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "1969-12-31T23:59:59.500Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-02-29T12:00:00Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T24:00:00Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:60:00Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:59:60Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:59:59z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31 23:59:59Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "\u0662024-01-31T23:59:59Z"},
    {"eventType": "x", "visitorId": "v", "eventTime": "2024-01-31T23:59:59Z\n"},
]


@pytest.mark.parametrize("data", CORPUS, ids=[json.dumps(c)[:60] for c in CORPUS])
def test_user_event_corpus(data: dict[str, Any]) -> None:
    fast, slow = outcome(data, user_event_pb2.UserEvent), reference(data,
                                                                     user_event_pb2.UserEvent)
    assert fast == slow
    if fast[0] == "ok":
        assert presence(parse_dict(data, user_event_pb2.UserEvent)) == presence(
            json_format.ParseDict(data, user_event_pb2.UserEvent()))


def _strategy(descriptor: Descriptor, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Random JSON objects for a message: mostly valid values, sometimes wrong kinds."""
    fields = {}
    for field in descriptor.fields:
        key = st.sampled_from([field.json_name, field.name])
        fields[field.name] = (key, _value(field, depth))
    names = sorted(fields)

    @st.composite
    def objects(draw: Any) -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=6)) if names else []
        out = {}
        for name in chosen:
            key_strategy, value_strategy = fields[name]
            out[draw(key_strategy)] = draw(value_strategy)
        return out

    return objects()


# Only what a JSON document can hold: orjson refuses Infinity, NaN and numbers
# beyond a double, so no request or import line carries them.
ODD = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=3), st.booleans(),
                st.floats(allow_nan=False, allow_infinity=False, width=32))


def _single(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    F = FieldDescriptor
    if field.message_type is not None:
        name = field.message_type.full_name
        if name == "google.protobuf.Timestamp":
            return st.sampled_from(["2024-01-31T23:59:59Z", "2024-02-30T00:00:00Z",
                                    "1999-12-31T00:00:00.5Z", "2024-01-01T00:00:00.000001Z"])
        if name == "google.protobuf.Int32Value":
            return st.integers(-5, 5)
        if name.startswith("google.protobuf."):
            return st.sampled_from(["1s", "title,uri", "x"])
        if depth > 2:
            return st.just({})
        return _strategy(field.message_type, depth + 1)
    if field.type == F.TYPE_STRING:
        return st.text(max_size=5)
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32),
                         st.integers(-1000, 1000))
    if field.type == F.TYPE_ENUM:
        return st.sampled_from([v.name for v in field.enum_type.values] + ["BOGUS", 1])
    return st.integers(-(2**31), 2**31)


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        return st.dictionaries(st.text(max_size=3), _single(value_field, depth), max_size=2)
    single = _single(field, depth)
    if field.is_repeated:
        single = st.lists(single, max_size=3)
    return st.one_of(single, single, single, ODD) if depth < 2 else single


@settings(max_examples=300, deadline=None)
@given(_strategy(user_event_pb2.UserEvent.DESCRIPTOR, 0))
def test_random_user_events_match_json_format(data: dict[str, Any]) -> None:
    assert outcome(data, user_event_pb2.UserEvent) == reference(data, user_event_pb2.UserEvent)


@settings(max_examples=200, deadline=None)
@given(_strategy(product_pb2.Product.DESCRIPTOR, 0))
def test_random_products_match_json_format(data: dict[str, Any]) -> None:
    assert outcome(data, product_pb2.Product) == reference(data, product_pb2.Product)


def test_typical_events_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the module: common events never reach json_format."""
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("fell back to json_format")

    monkeypatch.setattr(json_format, "ParseDict", refuse)
    for data in CORPUS[:6] + CORPUS[11:12] + CORPUS[19:22] + CORPUS[34:37]:
        if "+02:00" in json.dumps(data) or ".1Z" in json.dumps(data):
            continue
        parse_dict(data, user_event_pb2.UserEvent)


@pytest.mark.parametrize(("document", "path", "reason"), [
    ({"visitorId": 5}, "visitor_id", "must be a JSON string, got a number"),
    ({"eventTime": "2024-13-01T00:00:00Z"}, "event_time",
     "not an RFC 3339 timestamp such as 2024-01-01T00:00:00Z"),
    ({"offset": 1.5}, "offset", "Couldn't parse integer: 1.5"),
    ({"productDetails": [{"product": {"id": "x"}, "quantity": "a"}]},
     "product_details.quantity", "must be a whole number, got 'a'"),
    ({"attributes": {"k": {"numbers": ["x"]}}}, "attributes['k'].numbers[0]",
     "Couldn't parse float: x"),
    ({"userInfo": {"ipAddress": 3}}, "user_info.ip_address", "must be a JSON string, got a number"),
    ({"bogus": 1}, "", 'has no field named "bogus"'),
    ({"productDetails": [{"product": {"id": "x"}, "quantity": {"value": 1}}]},
     "product_details.quantity", "must be a whole number, got an object"),
    ({"attributes": {"k": {"numbers": [{"a": 1}]}}}, "attributes.numbers",
     "must be a number, got an object"),
    ({"experimentIds": "x"}, "experiment_ids", 'must be a JSON array, got "x"'),
    ({"attributes": {"k": {"text": "abc"}}}, "attributes['k'].text",
     'must be a JSON array, got "abc"'),
    ({"attributes": []}, "attributes", "must be a JSON object, got []"),
])
def test_a_json_format_error_names_the_proto_field_and_says_why(
        document: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(json_format.ParseError) as caught:
        json_format.ParseDict(document, user_event_pb2.UserEvent())
    named, said = protojson.parse_error(caught.value, user_event_pb2.UserEvent.DESCRIPTOR)
    assert (named, reason in said) == (path, True), said
    assert "%Y" not in said and "bytes-like" not in said and "Available Fields" not in said
    assert "real number" not in said and "[]" not in said.replace("got []", "")


@pytest.mark.parametrize(("document", "path"), [
    # json_format names no index for a wrapper (quantity), and a wrapper's own `value`
    ({"productDetails": [{"quantity": 1}, {"quantity": "x"}]}, "product_details[1].quantity"),
    ({"productDetails": [{"quantity": "1e999"}]}, "product_details[0].quantity"),
    ({"productDetails": [{"product": {"id": "a"}}, {"product": {"priceInfo": {"price": "c"}}}]},
     "product_details[1].product.price_info.price"),
    ({"userInfo": {"userId": 5}}, "user_info.user_id"),
    ({"attributes": {"a": {"text": ["x"]}, "b": {"numbers": ["n"]}}}, "attributes['b'].numbers[0]"),
])
def test_with_its_document_an_error_names_the_element_of_a_list(document: dict[str, Any],
                                                                 path: str) -> None:
    with pytest.raises(json_format.ParseError) as caught:
        json_format.ParseDict(document, user_event_pb2.UserEvent())
    named, _ = protojson.parse_error(caught.value, user_event_pb2.UserEvent.DESCRIPTOR,
                                     document)
    assert named == path


# -- numbers given as JSON strings -----------------------------------------------------

# (document, the field it names, what the reason says): quoted numbers Python's int()
# and float() read and the proto3 JSON mapping does not.
LOOSE_NUMBERS = [
    ({"productDetails": [{"quantity": 1}, {"quantity": "1_0"}]}, "product_details[1].quantity",
     "must be a whole number in ASCII digits (e.g. 10), got '1_0'"),
    ({"productDetails": [{"quantity": "\u0661"}]}, "product_details[0].quantity",
     "got '\u0661'"),  # ARABIC-INDIC DIGIT ONE
    ({"productDetails": [{"quantity": "\uff15"}]}, "product_details[0].quantity",
     "in ASCII digits"),  # FULLWIDTH DIGIT FIVE
    ({"productDetails": [{"quantity": "5\n"}]}, "product_details[0].quantity", "ASCII"),
    ({"productDetails": [{"quantity": "\t5"}]}, "product_details[0].quantity", "ASCII"),
    ({"offset": "1_0"}, "offset", "must be a whole number in ASCII digits"),
    ({"completionDetail": {"selectedPosition": "\u0663"}}, "completion_detail.selected_position",
     "ASCII digits"),
    ({"purchaseTransaction": {"revenue": "1_0.5"}}, "purchase_transaction.revenue",
     'must be a number in ASCII digits (e.g. 1.5), "NaN", "Infinity" or "-Infinity", '
     "got '1_0.5'"),
    ({"purchaseTransaction": {"revenue": "\u0661.5"}}, "purchase_transaction.revenue", "ASCII"),
    ({"purchaseTransaction": {"revenue": " 1.5"}}, "purchase_transaction.revenue", "ASCII"),
    ({"purchaseTransaction": {"revenue": "inf"}}, "purchase_transaction.revenue", "ASCII"),
    ({"purchaseTransaction": {"revenue": "-infinity"}}, "purchase_transaction.revenue", "ASCII"),
    ({"purchaseTransaction": {"revenue": "NAN"}}, "purchase_transaction.revenue", "ASCII"),
    ({"purchaseTransaction": {"revenue": "3.5e38"}}, "purchase_transaction.revenue",
     "out of range for a float, got '3.5e38'"),
    ({"attributes": {"a": {"text": ["x"]}, "b": {"numbers": [1, "1e400"]}}},
     "attributes['b'].numbers[1]", "out of range for a double"),
    ({"attributes": {"b": {"numbers": ["\u0661"]}}}, "attributes['b'].numbers[0]", "ASCII"),
    ({"productDetails": [{"product": {"type": "\u0661"}}]}, "product_details[0].product.type",
     "not a value of google.cloud.retail.v2.Product.Type (a name, or its number in ASCII "
     "digits), got '\u0661'"),
    # (upb reads a name up to a NUL: this was taken as PRIMARY)
    ({"productDetails": [{"product": {"type": "PRIMARY\u0000junk"}}]},
     "product_details[0].product.type", "got 'PRIMARY\\x00junk'"),
    ({"productDetails": [{"product": {"images": [{"uri": "u", "height": "1_0"}]}}]},
     "product_details[0].product.images[0].height", "ASCII digits"),
    ({"productDetails": [{"product": {"rating": {"ratingHistogram": [1, "\u0662"]}}}]},
     "product_details[0].product.rating.rating_histogram[1]", "ASCII digits"),
    ({"productDetails": [{"product": {"availableQuantity": "\u0665"}}]},
     "product_details[0].product.available_quantity", "ASCII digits"),
]


def refusals_of(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, reason) of the strict and the lenient parse's refusals of
    `document`, which json_format takes."""
    json_format.ParseDict(document, user_event_pb2.UserEvent())  # (it still does)
    found = []
    for parse in (parse_dict, lenient_json.parse_dict):
        with pytest.raises(json_format.ParseError) as caught:
            parse(document, user_event_pb2.UserEvent)
        found.append(protojson.parse_error(caught.value, user_event_pb2.UserEvent.DESCRIPTOR,
                                           document))
    return found


@pytest.mark.parametrize(("document", "path", "reason"), LOOSE_NUMBERS,
                         ids=[json.dumps(d, ensure_ascii=False)[:50] for d, _, _ in LOOSE_NUMBERS])
def test_a_number_in_a_string_is_read_in_ascii_digits_only(document: dict[str, Any],
                                                           path: str, reason: str) -> None:
    """json_format read every one of these (as 10, 1, 5, ..., inf, nan)."""
    for named, said in refusals_of(document):
        assert named == path and reason in said, (named, said)
    message = user_event_pb2.UserEvent()
    with pytest.raises(protojson.PlacedError):
        protojson.parse_into(document, message)
    assert message == user_event_pb2.UserEvent()  # nothing half-set
    with pytest.raises(protojson.PlacedError):
        protojson.parse_text(json.dumps(document), message)
    assert message == user_event_pb2.UserEvent()


@pytest.mark.parametrize(("document", "expected"), [
    ({"offset": "+5"}, {"offset": 5}),
    ({"offset": "-5"}, {"offset": -5}),
    ({"offset": "007"}, {"offset": 7}),
    ({"offset": "1e2"}, {"offset": 100}),  # the mapping's own example, quoted
    ({"offset": "1.0"}, {"offset": 1}),
    ({"offset": "1E+1"}, {"offset": 10}),
    ({"productDetails": [{"quantity": "2"}]}, {"productDetails": [{"quantity": 2}]}),
    ({"purchaseTransaction": {"revenue": "1.5e1"}}, {"purchaseTransaction": {"revenue": 15.0}}),
    ({"purchaseTransaction": {"revenue": ".5"}}, {"purchaseTransaction": {"revenue": 0.5}}),
    ({"purchaseTransaction": {"revenue": "1."}}, {"purchaseTransaction": {"revenue": 1.0}}),
    ({"purchaseTransaction": {"revenue": "-Infinity"}},
     {"purchaseTransaction": {"revenue": "-Infinity"}}),
    ({"purchaseTransaction": {"revenue": "NaN"}}, {"purchaseTransaction": {"revenue": "NaN"}}),
    # the largest float, as written to 8 digits (a C++ cast rounds it down, finite)
    ({"purchaseTransaction": {"revenue": "3.4028235e38"}},
     {"purchaseTransaction": {"revenue": 3.4028235e38}}),
    ({"productDetails": [{"product": {"type": "2"}}]},
     {"productDetails": [{"product": {"type": "VARIANT"}}]}),
    ({"productDetails": [{"product": {"type": "+2"}}]},
     {"productDetails": [{"product": {"type": "VARIANT"}}]}),
])
def test_a_number_in_a_string_in_ascii_digits_reads_as_json_format_reads_it(
        document: dict[str, Any], expected: dict[str, Any]) -> None:
    for parse in (parse_dict, lenient_json.parse_dict):
        assert json_format.MessageToDict(parse(document, user_event_pb2.UserEvent)) == expected
    assert outcome(document, user_event_pb2.UserEvent) == reference(document,
                                                                    user_event_pb2.UserEvent)


NOT_NUMBERS = [
    ({"productDetails": [{"product": {"type": True}}]}, "product_details[0].product.type",
     "not a value of google.cloud.retail.v2.Product.Type (a name, or its number in ASCII "
     "digits), got true; its names: PRIMARY"),
    ({"productDetails": [{"product": {"availability": 1.5}}]},
     "product_details[0].product.availability", "got a number, 1.5"),
    ({"productDetails": [{"product": {"type": ["PRIMARY"]}}]},
     "product_details[0].product.type", "got an array of 1"),
    ({"productDetails": [{"product": {"type": {}}}]}, "product_details[0].product.type",
     "got an object"),
    ({"productDetails": [{"product": {"type": 1e300}}]}, "product_details[0].product.type",
     "out of range for an enum number, got a number, 1e+300"),
    ({"productDetails": [{"product": {"type": 2**31}}]}, "product_details[0].product.type",
     "out of range for an enum number, got a number, 2147483648"),
    ({"purchaseTransaction": {"revenue": True}}, "purchase_transaction.revenue",
     "must be a number, got true"),
    ({"productDetails": [{"product": {"priceInfo": {"price": False}}}]},
     "product_details[0].product.price_info.price", "must be a number, got false"),
    ({"attributes": {"k": {"numbers": [1, True]}}}, "attributes['k'].numbers[1]",
     "must be a number, got true"),
]


@pytest.mark.parametrize(("document", "path", "reason"), NOT_NUMBERS,
                         ids=[json.dumps(d)[:50] for d, _, _ in NOT_NUMBERS])
def test_a_boolean_or_a_fraction_is_no_enum_value_and_a_boolean_no_number(
        document: dict[str, Any], path: str, reason: str) -> None:
    """json_format took `true` as 1 (a price of 1.0, the enum's value 1), 1.5 as the
    enum's value 1, and said "unhashable type: 'list'" of a list for an enum."""
    for parse in (parse_dict, lenient_json.parse_dict):
        with pytest.raises(json_format.ParseError) as caught:
            parse(document, user_event_pb2.UserEvent)
        named, said = protojson.parse_error(caught.value, user_event_pb2.UserEvent.DESCRIPTOR,
                                            document)
        assert named == path and reason in said, (named, said)
    message = user_event_pb2.UserEvent()
    with pytest.raises(protojson.PlacedError):
        protojson.parse_into(document, message)
    assert message == user_event_pb2.UserEvent()  # nothing half-set


@pytest.mark.parametrize(("document", "path"), [
    ({"attributes": {"k": {"text": ["a", 5]}}}, "attributes['k'].text[1]"),
    ({"experimentIds": ["a", True]}, "experiment_ids[1]"),
    ({"productDetails": [{"product": {"id": "p", "attributes": {"c": {"text": [{}]}}}}]},
     "product_details[0].product.attributes['c'].text[0]"),
])
def test_a_text_field_given_no_text_is_named_with_its_key_and_index(document: dict[str, Any],
                                                                     path: str) -> None:
    """json_format said `attributes.text` and `experiment_ids`: no key, no index."""
    for parse in (parse_dict, lenient_json.parse_dict):
        with pytest.raises(json_format.ParseError) as caught:
            parse(document, user_event_pb2.UserEvent)
        named, said = protojson.parse_error(caught.value, user_event_pb2.UserEvent.DESCRIPTOR,
                                            document)
        assert named == path and said.startswith("must be a JSON string, got "), (named, said)


def test_an_enum_by_its_number_is_still_read() -> None:
    for number in (1, 1.0, 1e0):
        document = {"productDetails": [{"product": {"type": number}}]}
        read = parse_dict(document, user_event_pb2.UserEvent)
        assert read.product_details[0].product.type == product_pb2.Product.PRIMARY
        assert outcome(document, user_event_pb2.UserEvent) == reference(
            document, user_event_pb2.UserEvent)


def test_a_number_beside_a_loose_one_is_refused_in_a_product_too() -> None:
    document = {"title": "t", "availableQuantity": "\u0661", "priceInfo": {"price": "2"}}
    with pytest.raises(protojson.PlacedError) as caught:
        parse_dict(document, product_pb2.Product)
    assert caught.value.path == "available_quantity"


def test_with_its_document_an_error_names_the_field_of_a_oneof_json_format_leaves_out() -> None:
    """json_format's message names no step for a field in a oneof: `input_config:` was
    all an inline import's refusal named."""
    from footfall.retail.v2 import import_config_pb2
    request = import_config_pb2.ImportUserEventsRequest
    document = {"inputConfig": {"userEventInlineSource": {"userEvents": [
        {"eventType": "a"}, {"productDetails": [{"quantity": {"value": 1}}]}]}}}
    with pytest.raises(json_format.ParseError) as caught:
        json_format.ParseDict(document, request())
    assert protojson.parse_error(caught.value, request.DESCRIPTOR, document)[0] == \
        "input_config.user_event_inline_source.user_events[1].product_details[0].quantity"


# -- Timestamps and Durations given as JSON strings ------------------------------------

# json_format read each (datetime and int() take any script's digits and "_"; its
# Duration takes int()'s white space and sign, "1." and 10 fraction digits, rounded).
LOOSE_TIMES = [
    ({"eventTime": "\u0662\u0660\u0662\u0664-05-20T10:00:00Z"}, "event_time"),
    ({"eventTime": "2024-05-20T10:00:00.\u0661Z"}, "event_time"),
    ({"eventTime": "2024-05-20T10:00:00.1_0Z"}, "event_time"),
    ({"eventTime": "2024-05-20T10:00:00+0_1:00"}, "event_time"),
    ({"eventTime": "2024-05-20T10:00:00+05:3\u0660"}, "event_time"),
    ({"eventTime": "2024-05-20T10:00:00.Z"}, "event_time"),
    ({"eventTime": "2024-05-20T10:00:00+5:30"}, "event_time"),
    # json_format reads any two digits of an offset: this was 2024-05-16T07:21:00Z
    ({"eventTime": "2024-05-20T10:00:00+99:99"}, "event_time"),
    ({"eventTime": "2024-05-20T10:00:00+24:00"}, "event_time"),
    ({"eventTime": "2024-05-20T10:00:00-05:60"}, "event_time"),
    ({"eventTime": "2024-5-20T10:00:00Z"}, "event_time"),
    ({"eventTime": "2024-05-20T1:0:0Z"}, "event_time"),
    ({"productDetails": [{}, {"product": {"availableTime": "2024-05-2\u0660T10:00:00Z"}}]},
     "product_details[1].product.available_time"),
    ({"productDetails": [{"product": {"priceInfo": {
        "priceEffectiveTime": "2024-05-20T10:00:00.\uff11Z"}}}]},
     "product_details[0].product.price_info.price_effective_time"),
    ({"productDetails": [{"product": {"ttl": "1_0s"}}]}, "product_details[0].product.ttl"),
    ({"productDetails": [{"product": {"ttl": "\u0661s"}}]}, "product_details[0].product.ttl"),
    ({"productDetails": [{"product": {"ttl": " 1s"}}]}, "product_details[0].product.ttl"),
    ({"productDetails": [{"product": {"ttl": "+1s"}}]}, "product_details[0].product.ttl"),
    ({"productDetails": [{"product": {"ttl": "1.s"}}]}, "product_details[0].product.ttl"),
    ({"productDetails": [{"product": {"ttl": "1.5 s"}}]}, "product_details[0].product.ttl"),
    ({"productDetails": [{"product": {"ttl": "1.0000000001s"}}]},
     "product_details[0].product.ttl"),
    ({"productDetails": [{"product": {"ttl": "1.\u0665s"}}]}, "product_details[0].product.ttl"),
]


@pytest.mark.parametrize(("document", "path"), LOOSE_TIMES,
                         ids=[json.dumps(d, ensure_ascii=False)[:60] for d, _ in LOOSE_TIMES])
def test_a_timestamp_or_duration_is_read_in_ascii_digits_only(document: dict[str, Any],
                                                              path: str) -> None:
    for named, said in refusals_of(document):
        assert named == path, (named, said)
        assert ("RFC 3339" if path.endswith("time") else "not a duration such as 1.5s") in said


@pytest.mark.parametrize(("document", "path", "example"), [
    ({"eventTime": 1733300000}, "event_time", '"2024-01-01T00:00:00Z", got a number, 1733300000'),
    ({"eventTime": {"seconds": 1}}, "event_time", '"2024-01-01T00:00:00Z", got an object'),
    ({"productDetails": [{"product": {"ttl": 90}}]}, "product_details[0].product.ttl",
     '"1.5s", got a number, 90'),
])
def test_a_time_that_is_no_json_string_is_told_the_form_it_takes(
        document: dict[str, Any], path: str, example: str) -> None:
    # Seconds since 1970 as a number, the likeliest slip, were told "Timestamp JSON
    # value not a string: 1733300000": no word of the form to write instead.
    for parse in (parse_dict, lenient_json.parse_dict):
        with pytest.raises(json_format.ParseError) as caught:
            parse(document, user_event_pb2.UserEvent)
        named, said = protojson.parse_error(caught.value, user_event_pb2.UserEvent.DESCRIPTOR,
                                            document)
        assert (named, said.startswith("must be a JSON string holding"), example in said) \
            == (path, True, True), said


@pytest.mark.parametrize("document", [
    {"eventTime": "2024-05-20T10:00:00Z"},
    {"eventTime": "2024-05-20T10:00:00.5Z"},
    {"eventTime": "2024-05-20T10:00:00.123456789Z"},
    {"eventTime": "2024-05-20T10:00:00+00:00"},  # as Google's tutorial files write it
    {"eventTime": "2024-05-20T10:00:00.25-07:30"},
    {"productDetails": [{"product": {"ttl": "1s"}}]},
    {"productDetails": [{"product": {"ttl": "-1.5s"}}]},
    {"productDetails": [{"product": {"ttl": "01.000000001s"}}]},
])
def test_a_timestamp_or_duration_in_ascii_digits_reads_as_json_format_reads_it(
        document: dict[str, Any]) -> None:
    expected = json_format.ParseDict(document, user_event_pb2.UserEvent())
    for parse in (parse_dict, lenient_json.parse_dict):
        assert parse(document, user_event_pb2.UserEvent) == expected


@pytest.mark.parametrize(("document", "said"), [
    # orjson said "invalid literal, expected 'null': line 1 column 1 (char 0)"
    (b"not json", "invalid literal, expected 'null' at line 1 column 1, at 'not json'"),
    (b'{"a": 1,}', "trailing comma is not allowed at line 1 column 8, at ',}'"),
    (b'{"a": 1', "unexpected end of data at line 1 column 8, at the end"),
    ('{"é": x' + "y" * 40, "at line 1 column 7, at 'xyyyyyyyyyyyyyyyyyyyyyyy'..."),
    (b"{\n\n", "unexpected end of data at line 3 column 1, at the end"),
    # orjson said "str is not valid UTF-8: surrogates not allowed: line 1 column 1
    # (char 0)" wherever the byte was
    (b'{"visitorId": "caf\xe9"}',
     "not valid UTF-8: the byte 0xe9 at line 1 column 19 (byte 18), after '{\"visitorId\": \"caf'"),
    (b'{\n "a": "\xc3\xa9",\n "b": "x\xff"}',
     "not valid UTF-8: the byte 0xff at line 3 column 9 (byte 22), after ' \"b\": \"x'"),
])
def test_json_that_does_not_parse_is_said_with_its_place_and_text(
        document: bytes | str, said: str) -> None:
    with pytest.raises(orjson.JSONDecodeError) as error:
        orjson.loads(document)
    assert said in protojson.syntax_problem(error.value, document)


@pytest.mark.parametrize(("line", "said"), [
    (b"not json", "invalid literal, expected 'null' at column 1, at 'not json'"),
    (b'{"a": 1,}\n', "trailing comma is not allowed at column 8, at ',}'"),
    (b'{"visitorId": "caf\xe9"}',
     "not valid UTF-8: the byte 0xe9 at column 19 (byte 18), after '{\"visitorId\": \"caf'"),
])
def test_an_import_line_that_does_not_parse_is_said_by_its_column_alone(
        line: bytes, said: str) -> None:
    # Its caller names the file's line ("gs://b/e.json line 3: ..."): "at line 1"
    # beside it named another line.
    with pytest.raises(orjson.JSONDecodeError) as error:
        orjson.loads(line)
    problem = protojson.syntax_problem(error.value, line, one_line=True)
    assert said in problem and "line" not in problem, problem


@pytest.mark.parametrize(("document", "path", "says"), [
    ({"eventType": "x", "visitorId": "a", "visitor_id": "b"}, "visitor_id",
     "given twice, as 'visitorId' and 'visitor_id' (its JSON and its proto name)"),
    ({"visitor_id": None, "visitorId": "b"}, "visitor_id",
     "given twice, as 'visitor_id' and 'visitorId'"),
    ({"productDetails": [{"product": {"priceInfo": {"price": 1}, "price_info": {"price": 2}}}]},
     "product_details[0].product.price_info", "given twice, as 'priceInfo' and 'price_info'"),
    ({"experimentIds": ["e"], "experiment_ids": ["f"]}, "experiment_ids", "given twice"),
    # one list where one object goes: json_format said "unhashable type: 'dict'"
    ({"userInfo": [{"userId": "u"}]}, "user_info",
     "expected one JSON object (a UserInfo), got an array"),
    ({"attributes": {"k": [{"text": ["x"]}]}}, "attributes['k']",
     "expected one JSON object (a CustomAttribute), got an array"),
])
def test_a_field_twice_or_a_list_for_an_object_is_refused_naming_it(
        document: dict[str, Any], path: str, says: str) -> None:
    # json_format compares the keys, not the fields they name: of a field given under
    # both names the last was kept, silently.
    for parse in (lambda: parse_dict(document, user_event_pb2.UserEvent),
                  lambda: protojson.parse_into(document, user_event_pb2.UserEvent())):
        with pytest.raises(protojson.PlacedError) as refused:
            parse()
        assert refused.value.path == path and says in refused.value.reason, refused.value


@pytest.mark.parametrize(("document", "said"), [
    ({"visitorID": "v"}, 'has no field named "visitorID" (did you mean "visitorId"?)'),
    ({"productDetail": []}, 'has no field named "productDetail" (did you mean "productDetails"?)'),
    ({"productDetails": [{"product": {"idd": "p"}}]},
     'Product" has no field named "idd" (did you mean "id"?)'),
    ({"bogus": 1}, 'has no field named "bogus"'),  # (like no field: nothing offered)
    # compared by words: event_name was told eventTime (name and time share "me")
    ({"event_name": "x"}, 'has no field named "event_name" (did you mean "eventType"?)'),
    ({"event_timestamp": "x"},
     'has no field named "event_timestamp" (did you mean "eventTime"?)'),
    ({"purchase": {}}, 'has no field named "purchase" (did you mean "purchaseTransaction"?)'),
    # Recommendations AI's events held the visitor in userInfo
    ({"userInfo": {"visitorId": "v"}},
     'UserInfo" has no field named "visitorId" (it is a field of UserEvent itself, not of '
     'UserInfo)'),
    ({"productDetails": [{"product": {"id": "p", "quantity": 2}}]},
     'Product" has no field named "quantity" (it is a field of ProductDetail itself, not of '
     'Product)'),
])
def test_an_unknown_field_is_told_the_field_its_name_looks_like(document: dict[str, Any],
                                                                 said: str) -> None:
    with pytest.raises(json_format.ParseError) as caught:
        json_format.ParseDict(document, user_event_pb2.UserEvent())
    _, reason = protojson.parse_error(caught.value, user_event_pb2.UserEvent.DESCRIPTOR,
                                      document)
    assert reason.endswith(said), reason


def merged(data: Any, message: Any) -> tuple[str, Any, list[str]]:
    """What protojson.merge_into leaves in `message` (or its error), and its presence."""
    try:
        protojson.merge_into(data, message)
    except json_format.ParseError as exc:
        return "error", str(exc), presence(message)
    return "ok", message.SerializeToString(deterministic=True), presence(message)


def parsed_into(data: Any, message: Any) -> tuple[str, Any, list[str]]:
    try:
        protojson.parse_into(data, message)
    except json_format.ParseError as exc:
        return "error", str(exc), presence(message)
    return "ok", message.SerializeToString(deterministic=True), presence(message)


@pytest.mark.parametrize("data", CORPUS, ids=[json.dumps(c)[:60] for c in CORPUS])
def test_merging_a_body_in_reads_as_parse_into(data: dict[str, Any]) -> None:
    """A REST body's field merged into its request (which holds the URL path's fields
    already) by the fast path is what parse_into makes of it, or refuses alike."""
    from footfall.retail.v2 import user_event_service_pb2

    def request() -> Any:
        return user_event_service_pb2.WriteUserEventRequest(parent="projects/p")

    assert merged({"userEvent": data}, request()) == parsed_into({"userEvent": data}, request())
    assert merged(data, user_event_pb2.UserEvent(visitor_id="held")) == \
        parsed_into(data, user_event_pb2.UserEvent(visitor_id="held"))


@settings(max_examples=200, deadline=None)
@given(_strategy(user_event_pb2.UserEvent.DESCRIPTOR, 0))
def test_random_events_merged_in_read_as_parse_into(data: dict[str, Any]) -> None:
    held = user_event_pb2.UserEvent(event_type="held", session_id="s")
    held.product_details.add().product.id = "kept"
    again = user_event_pb2.UserEvent()
    again.CopyFrom(held)
    assert merged(data, held) == parsed_into(data, again)


def test_a_body_field_the_message_holds_already_is_read_by_json_format() -> None:
    """What a merge would not set as json_format sets it (an empty text over one held,
    a list held already) is left to it."""
    held = user_event_pb2.UserEvent(visitor_id="v", experiment_ids=["a"])
    protojson.merge_into({"visitorId": "", "experimentIds": ["b"]}, held)
    assert held == user_event_pb2.UserEvent(experiment_ids=["b"])


def test_a_large_body_merged_in_never_reaches_json_format(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("fell back to json_format")

    event = {"eventType": "add-to-cart", "visitorId": "v", "eventTime": "2024-01-31T23:59:59Z",
             "productDetails": [{"product": {"id": "p"}, "quantity": 1}] * 5000}
    expected = user_event_pb2.UserEvent()
    json_format.ParseDict(event, expected)
    monkeypatch.setattr(json_format, "ParseDict", refuse)
    message = user_event_pb2.UserEvent()
    protojson.merge_into(event, message)
    assert message == expected


def _bytes_map_class() -> Any:
    """A proto3 message `BytesMap` of a map of bytes (which the fast path leaves to
    json_format) and, numbered after it, a text."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName("footfall_test/bytes_map.proto")
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(
            name="footfall_test/bytes_map.proto", package="footfall_test", syntax="proto3")
        message = file.message_type.add(name="BytesMap")
        entry = message.nested_type.add(name="BlobsEntry")
        entry.options.map_entry = True
        label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
        entry.field.add(name="key", number=1, type=FieldDescriptor.TYPE_STRING,
                        json_name="key", label=label)
        entry.field.add(name="value", number=2, type=FieldDescriptor.TYPE_BYTES,
                        json_name="value", label=label)
        message.field.add(name="blobs", number=1, type=FieldDescriptor.TYPE_MESSAGE,
                          type_name=".footfall_test.BytesMap.BlobsEntry", json_name="blobs",
                          label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)
        message.field.add(name="name", number=2, type=FieldDescriptor.TYPE_STRING,
                          json_name="name", label=label)
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("footfall_test.BytesMap"))


def test_a_type_with_a_map_of_bytes_is_planned_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A map of bytes is json_format's to read, and the plan of its message type still
    covers the type's other fields. Its plan's build raised _Fallback out of merge_into
    (a body of a new type, the first time) and left a plan without the fields after
    the map, which no later call took."""
    bytes_map = _bytes_map_class()
    monkeypatch.setattr(protojson, "_PLANS", {})  # (planned afresh)
    monkeypatch.setattr(protojson, "_CLASS_PLANS", {})
    for data in ({"name": "n"}, {"blobs": {"k": "AAE="}, "name": "n"}):
        assert merged(data, bytes_map()) == parsed_into(data, bytes_map())
        assert outcome(data, bytes_map) == reference(data, bytes_map)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("read by json_format")

    monkeypatch.setattr(json_format, "ParseDict", refuse)
    message = bytes_map()
    protojson.merge_into({"name": "n"}, message)
    assert message == bytes_map(name="n")


@pytest.mark.parametrize("message_class", [Every, product_pb2.Product], ids=["Every", "Product"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_bodies_merged_into_random_messages_read_as_parse_into(message_class: Any,
                                                                      data: Any) -> None:
    """Into a message holding any fields (oneofs, optional fields, maps, wrappers,
    messages of its own type), the JSON of another, some of its values null, merges as
    parse_into reads it: where it names a held field the fast path leaves it to
    json_format, and elsewhere a merge sets what json_format sets (a oneof's other
    member cleared, presence kept)."""
    held = data.draw(messages(message_class.DESCRIPTOR))
    try:
        document = json_format.MessageToDict(data.draw(messages(message_class.DESCRIPTOR)),
                                             preserving_proto_field_name=data.draw(st.booleans()))
    except json_format.SerializeToJsonError:
        return  # (what proto3 JSON cannot write)
    for key in data.draw(st.lists(st.sampled_from(sorted(document)), unique=True, max_size=2)
                         if document else st.just([])):
        document[key] = None
    again = message_class()
    again.CopyFrom(held)
    assert either(merged, document, held) == either(parsed_into, document, again)


def either(read: Any, document: Any, message: Any) -> Any:
    """What `read` makes of `document` into `message`, or the error json_format raises
    that is no ParseError (an AttributeError for a null repeated Value: on both paths)."""
    try:
        return read(document, message)
    except Exception as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize(("given", "meant"), [
    ("hired", "HIRED"),  # past the first 12 names, which the list ends before
    ("Interview_Granted", "INTERVIEW_GRANTED"),
    ("sent-cv", "SENT_CV"),
    ("VIEWED", "VIEW"),
    ("view", "VIEW"),
])
def test_an_enum_name_misspelt_is_told_the_name_it_looks_like(given: str, meant: str) -> None:
    """JobEventType has 15 names and the message lists 12: `hired` was told a list
    without HIRED. Now the name it looks like is said, whether listed or not."""
    document = {"type": given, "jobs": ["projects/p/tenants/t/jobs/j"]}
    for parse in (parse_dict, lenient_json.parse_dict):
        with pytest.raises(json_format.ParseError) as caught:
            parse(document, event_pb2.JobEvent)
        named, said = protojson.parse_error(caught.value, event_pb2.JobEvent.DESCRIPTOR,
                                            document)
        assert named == "type", (named, said)
        assert said.endswith(f"NOTIFICATION, ...; did you mean '{meant}'?"), said


def test_an_enum_name_like_none_is_told_the_names_alone() -> None:
    document = {"type": "zzzz", "jobs": ["projects/p/tenants/t/jobs/j"]}
    with pytest.raises(json_format.ParseError) as caught:
        parse_dict(document, event_pb2.JobEvent)
    _, said = protojson.parse_error(caught.value, event_pb2.JobEvent.DESCRIPTOR, document)
    assert said.endswith("NOTIFICATION, ..."), said
    assert "did you mean" not in said, said


@pytest.mark.parametrize("text", [
    b'{"eventTime": "2024-05-20T10:00:00.123456789Z", "n": 1.5}',  # a time's nine digits
    b'{"visitorId": "1234567890.1700000000"}',  # a Google Analytics client id
    b'{"sessionId": "6f1c34e-5f6a-4b1e-9c3e-0d2b8e4a7c11"}',  # a UUID's "4e-5"
    b'{"price": 10.200000000000001, "small": 1.5e-3}',  # not whole: read as orjson reads
])
def test_exact_numbers_reads_nothing_again_where_no_number_needs_it(text: bytes) -> None:
    # Each of these had the whole document read again by json (the search found a
    # time's fraction, an id's digits): 9 us and more of an import line's 30.
    document = orjson.loads(text)
    assert protojson.exact_numbers(text, document) is document


@pytest.mark.parametrize(("text", "digits"), [
    (b'{"q": 1e-400}', "1e-400"), (b'[1, -1E-400 ]', "-1E-400"),
    (b'{"q":1.0000000000000000001}', "1.0000000000000000001"),
    (b'{"q": [2, 100000000000000000001e-3]}', "100000000000000000001e-3"),
    ('{"q": 1e-400\n}', "1e-400"),  # a pixel's event comes as text
])
def test_exact_numbers_keeps_the_digits_of_a_number_whose_double_only_is_whole(
        text: bytes | str, digits: str) -> None:
    found = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif type(value) is protojson.InexactNumber:
            found.append(value.text)

    walk(protojson.exact_numbers(text, orjson.loads(text)))
    assert found == [digits]
