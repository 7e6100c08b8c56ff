"""Retail validation rules, table-driven: each case names the field it must flag."""

from __future__ import annotations

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format, timestamp_pb2

from server.errors import FieldViolation
from server.retail.validation import (
    EVENT_TYPES,
    ahead_violations,
    id_violations,
    too_long,
    too_many,
    user_event_violations,
)

PRODUCT = [{"product": {"id": "sku-1"}, "quantity": 1}]
PURCHASE = {"id": "order-1", "revenue": 12.5, "currencyCode": "USD"}

VALID = {
    "home-page-view": {},
    "detail-page-view": {"productDetails": PRODUCT},
    "add-to-cart": {"productDetails": PRODUCT, "cartId": "cart-1"},
    "purchase-complete": {"productDetails": PRODUCT, "purchaseTransaction": PURCHASE,
                          "cartId": "cart-1"},
    "search": {"searchQuery": "shoes", "orderBy": "price desc", "offset": 10, "filter": "x"},
    "category-page-view": {"pageCategories": ["Shoes > Running"]},
    "shopping-cart-page-view": {"cartId": "c"},
    "remove-from-cart": {"productDetails": PRODUCT},
    "completion": {"completionDetail": {"selectedSuggestion": "shoe"}},
    "promotion-offered": {},
    "promotion-not-offered": {},
    "page-view": {},
    "login": {},
}


def make(event_type: str, **fields: object) -> user_event_pb2.UserEvent:
    body = {"eventType": event_type, "visitorId": "visitor-1", **fields}
    return json_format.ParseDict(body, user_event_pb2.UserEvent())


def flagged(event: user_event_pb2.UserEvent, **options: bool) -> list[str]:
    return [v.field for v in user_event_violations(event, **options)]


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_valid_events_pass(event_type: str) -> None:
    assert flagged(make(event_type, **VALID[event_type])) == []


def test_every_google_type_has_a_valid_example() -> None:
    assert set(EVENT_TYPES) <= set(VALID)


INVALID = [
    ("event type missing", make(""), "user_event.event_type"),
    ("visitor missing", json_format.ParseDict({"eventType": "home-page-view"},
                                              user_event_pb2.UserEvent()),
     "user_event.visitor_id"),
    ("visitor too long", make("home-page-view", visitorId="v" * 129), "user_event.visitor_id"),
    ("custom event type too long", make("t" * 129), "user_event.event_type"),
    ("session over 128 bytes", make("home-page-view", sessionId="é" * 65),
     "user_event.session_id"),
    ("user id too long", make("home-page-view", userInfo={"userId": "u" * 129}),
     "user_event.user_info.user_id"),
    ("user agent too long", make("home-page-view", userInfo={"userAgent": "a" * 1001}),
     "user_event.user_info.user_agent"),
    ("bad ip", make("home-page-view", userInfo={"ipAddress": "300.1.1.1"}),
     "user_event.user_info.ip_address"),
    ("detail view without products", make("detail-page-view"), "user_event.product_details"),
    ("add to cart without products", make("add-to-cart"), "user_event.product_details"),
    ("product without id", make("detail-page-view", productDetails=[{"product": {}}]),
     "user_event.product_details[0].product.id"),
    ("purchase without transaction", make("purchase-complete", productDetails=PRODUCT),
     "user_event.purchase_transaction"),
    ("zero revenue", make("purchase-complete", productDetails=PRODUCT,
                          purchaseTransaction={"revenue": 0, "currencyCode": "USD"}),
     "user_event.purchase_transaction.revenue"),
    ("bad currency", make("purchase-complete", productDetails=PRODUCT,
                          purchaseTransaction={"revenue": 1, "currencyCode": "usd"}),
     "user_event.purchase_transaction.currency_code"),
    ("unknown currency", make("purchase-complete", productDetails=PRODUCT,
                              purchaseTransaction={"revenue": 1, "currencyCode": "ZZZ"}),
     "user_event.purchase_transaction.currency_code"),
    ("transaction id too long", make("purchase-complete", productDetails=PRODUCT,
                                     purchaseTransaction={**PURCHASE, "id": "i" * 129}),
     "user_event.purchase_transaction.id"),
    ("transaction on a view", make("home-page-view", purchaseTransaction=PURCHASE),
     "user_event.purchase_transaction"),
    ("search without query or categories", make("search"), "user_event.search_query"),
    ("category view without categories", make("category-page-view"),
     "user_event.page_categories"),
    ("query off search", make("home-page-view", searchQuery="x"), "user_event.search_query"),
    ("order_by off search", make("home-page-view", orderBy="x"), "user_event.order_by"),
    ("offset off search", make("home-page-view", offset=3), "user_event.offset"),
    ("negative offset", make("search", searchQuery="x", offset=-1), "user_event.offset"),
    ("filter too long", make("search", searchQuery="x", filter="f" * 1001), "user_event.filter"),
    ("order_by too long", make("search", searchQuery="x", orderBy="o" * 1001),
     "user_event.order_by"),
    ("query too long", make("search", searchQuery="q" * 5001), "user_event.search_query"),
    ("uri too long", make("home-page-view", uri="u" * 5001), "user_event.uri"),
    ("cart id on a view", make("home-page-view", cartId="c"), "user_event.cart_id"),
    ("attribute key too long", make("home-page-view", attributes={"k" * 5001: {"text": ["a"]}}),
     "user_event.attributes['" + "k" * 50 + "']"),
    ("attribute with text and numbers",
     make("home-page-view", attributes={"k": {"text": ["a"], "numbers": [1]}}),
     "user_event.attributes['k']"),
    ("attribute with no value", make("home-page-view", attributes={"k": {}}),
     "user_event.attributes['k']"),
    ("empty attribute text", make("home-page-view", attributes={"k": {"text": [""]}}),
     "user_event.attributes['k'].text[0]"),
    # proto3 JSON reads these words as numbers; no revenue, price or measure is one
    ("NaN revenue", make("purchase-complete", productDetails=PRODUCT,
                         purchaseTransaction={"revenue": "NaN", "currencyCode": "USD"}),
     "user_event.purchase_transaction.revenue"),
    ("infinite tax", make("purchase-complete", productDetails=PRODUCT,
                          purchaseTransaction={**PURCHASE, "tax": "Infinity"}),
     "user_event.purchase_transaction.tax"),
    ("infinite product price",
     make("detail-page-view", productDetails=[{"product": {
         "id": "p", "priceInfo": {"price": "-Infinity", "currencyCode": "USD"}}}]),
     "user_event.product_details[0].product.price_info.price"),
    # PriceInfo's own rules hold for an event's price override as for a catalog's price
    ("product original price below its price",
     make("detail-page-view", productDetails=[{"product": {
         "id": "p", "priceInfo": {"price": 30, "originalPrice": 20, "currencyCode": "USD"}}}]),
     "user_event.product_details[0].product.price_info.original_price"),
    ("product price effective time without an original price",
     make("add-to-cart", productDetails=[{"product": {"id": "p", "priceInfo": {
         "price": 30, "currencyCode": "USD", "priceEffectiveTime": "2024-01-01T00:00:00Z"}}}]),
     "user_event.product_details[0].product.price_info.original_price"),
    ("NaN attribute number", make("home-page-view", attributes={"k": {"numbers": [1, "NaN"]}}),
     "user_event.attributes['k'].numbers[1]"),
]


@pytest.mark.parametrize(("case", "event", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_each_rule_names_its_field(case: str, event: user_event_pb2.UserEvent,
                                   field: str) -> None:
    assert field in flagged(event)


def test_all_violations_are_reported_not_just_the_first() -> None:
    event = make("purchase-complete", visitorId="v" * 200, cartId="c",
                 userInfo={"ipAddress": "nope"},
                 purchaseTransaction={"revenue": 0, "currencyCode": "EURO"})
    assert set(flagged(event)) == {
        "user_event.visitor_id",
        "user_event.user_info.ip_address",
        "user_event.product_details",
        "user_event.purchase_transaction.revenue",
        "user_event.purchase_transaction.currency_code",
    }


def test_strict_event_types_refuses_custom_types_and_lists_the_allowed() -> None:
    event = make("page-view")
    assert flagged(event) == []
    [violation] = user_event_violations(event, strict_event_types=True)
    assert violation.field == "user_event.event_type"
    assert "detail-page-view" in violation.description


def test_strict_event_types_say_which_type_of_googles_a_refused_one_looks_like() -> None:
    # a snake_case spelling is the usual slip: the list alone left it to the eye
    [violation] = user_event_violations(
        make("add_to_cart", productDetails=[{"product": {"id": "p1"}}]),
        strict_event_types=True)
    assert violation.description.endswith("; did you mean 'add-to-cart'?")
    [violation] = user_event_violations(make("signup"), strict_event_types=True)
    assert violation.description.endswith("shopping-cart-page-view")  # none is close


# UserEvent.event_type's allowed values, as the retail v2 reference lists them
GOOGLES_TYPES = ("add-to-cart", "remove-from-cart", "category-page-view", "detail-page-view",
                 "home-page-view", "promotion-offered", "promotion-not-offered",
                 "purchase-complete", "search", "shopping-cart-page-view")


def test_strict_event_types_are_the_types_googles_reference_lists() -> None:
    assert sorted(EVENT_TYPES) == sorted(GOOGLES_TYPES)
    # an autocomplete click is a search event with a completion_detail: "completion"
    # is no type of Google's, so the strict server refuses it as any other custom type
    chosen = {"completionDetail": {"selectedSuggestion": "shoe"}}
    assert flagged(make("completion", **chosen)) == []
    assert flagged(make("completion", **chosen), strict_event_types=True) == [
        "user_event.event_type"]
    assert flagged(make("search", searchQuery="sho", **chosen), strict_event_types=True) == []


def test_an_event_price_override_at_or_below_its_original_price_passes() -> None:
    for price in ({"price": 20, "originalPrice": 30}, {"price": 30, "originalPrice": 30},
                  {"price": 30}, {"price": 20, "originalPrice": 30,
                                  "priceExpireTime": "2024-01-01T00:00:00Z"}):
        event = make("detail-page-view", productDetails=[{"product": {
            "id": "p", "priceInfo": {**price, "currencyCode": "EUR"}}}])
        assert flagged(event) == [], price


def test_a_custom_event_type_of_128_characters_is_the_longest() -> None:
    assert flagged(make("t" * 128)) == []
    [violation] = user_event_violations(make("t" * 1_000_000))
    assert violation.description == "must be at most 128 characters, got 1000000"


def test_import_requires_event_time() -> None:
    assert "user_event.event_time" in flagged(make("home-page-view"), require_event_time=True)
    timed = make("home-page-view", eventTime="2024-01-01T00:00:00Z")
    assert flagged(timed, require_event_time=True) == []


def test_ipv6_is_accepted() -> None:
    assert flagged(make("home-page-view", userInfo={"ipAddress": "2001:db8::1"})) == []


def test_path_prefix_is_used_for_nested_events() -> None:
    event = make("detail-page-view")
    fields = [v.field for v in user_event_violations(event, "input_config.user_events[3]")]
    assert fields == ["input_config.user_events[3].product_details"]


@pytest.mark.parametrize(("value", "required", "said"), [
    ("", True, "is required"),
    ("", False, None),
    ("x" * 129, False, "must be at most 128 characters, got 129"),
    ("a\0b", True, "must not hold a NUL character (U+0000)"),
    ("x" * 128, True, None),
])
def test_id_violations_says_the_first_rule_an_id_breaks(value: str, required: bool,
                                                        said: str | None) -> None:
    out: list[FieldViolation] = []
    id_violations(value, "user_event.visitor_id", 128, out, required=required)
    assert out == ([] if said is None else [FieldViolation("user_event.visitor_id", said)])


def test_too_long_and_too_many_say_the_limit_and_the_size() -> None:
    assert str(too_long("a.b", "xyz", 2)) == "a.b: must be at most 2 characters, got 3"
    assert str(too_long("a.b", b"xyz", 2, "bytes")) == "a.b: must be at most 2 bytes, got 3"
    assert str(too_many("a.c", [1, 2, 3], 2)) == "a.c: must have at most 2 values, got 3"
    assert str(too_many("a.d", {"k": 1}, 0, "entries")) == \
        "a.d: must have at most 0 entries, got 1"


def test_ahead_violations_refuses_a_time_more_than_a_day_after_the_server_s() -> None:
    now_s = 1_700_000_000
    out: list[FieldViolation] = []
    ahead_violations(timestamp_pb2.Timestamp(seconds=now_s + 86_400), now_s, "t", out)
    ahead_violations(timestamp_pb2.Timestamp(seconds=now_s + 10**9), None, "t", out)
    assert out == []
    ahead_violations(timestamp_pb2.Timestamp(seconds=now_s + 86_401), now_s, "t", out)
    assert out == [FieldViolation("t", "must be at most a day after the server's time "
                                       "(2023-11-14T22:13:20Z), got 2023-11-15T22:13:21Z")]


@pytest.mark.parametrize(("event", "said"), [
    # (the line of type 'invalid' in Google's sample file user_events_some_invalid.json)
    (make("invalid", searchQuery="RockerJeans teenagers blue jeans"),
     "user_event.search_query: is only allowed on search events, not 'invalid', a custom "
     "event type (not one of Google's)"),
    (make("purchase", productDetails=PRODUCT, purchaseTransaction=PURCHASE),
     "user_event.purchase_transaction: is only allowed on purchase-complete events, not "
     "'purchase', a custom event type (not one of Google's: did you mean "
     "'purchase-complete'?)"),
    (make("add_to_cart", productDetails=PRODUCT, cartId="c"),
     "user_event.cart_id: is only allowed on add-to-cart, purchase-complete and "
     "shopping-cart-page-view events, not 'add_to_cart', a custom event type (not one "
     "of Google's: did you mean 'add-to-cart'?)"),
    (make("home-page-view", searchQuery="q"),
     "user_event.search_query: is only allowed on search events, not 'home-page-view'"),
])
def test_a_field_a_custom_type_may_not_carry_says_the_type_is_not_google_s(
        event: user_event_pb2.UserEvent, said: str) -> None:
    assert [str(v) for v in user_event_violations(event)] == [said]
