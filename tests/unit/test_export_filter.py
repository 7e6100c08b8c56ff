"""The export filters (ExportUserEvents, ExportProducts): Google's examples where they
meet what the store selects, each refusal naming the filter and the character, and
property-based: any input parses or is INVALID_ARGUMENT, never another exception."""

from __future__ import annotations

import pytest
from footfall.retail.v2 import product_pb2, user_event_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import InvalidArgument
from server.retail.export_filter import parse_events, parse_products
from server.store import TimeBound

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
JAN = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds
Product = product_pb2.Product


def test_empty_filter_exports_the_joined_events() -> None:
    chosen = parse_events("", CATALOG)
    assert chosen.query.joined is True and chosen.types == frozenset()
    assert chosen.query.after is None and chosen.query.before is None


def test_googles_examples() -> None:
    chosen = parse_events('eventTime > "2024-01-01T00:00:00Z" eventsMissingCatalogItems '
                          'eventTime<"2024-01-02T00:00:00Z" eventType=search', CATALOG)
    assert chosen.query.after == TimeBound(JAN, False)
    assert chosen.query.before == TimeBound(JAN + 86_400_000_000, False)
    assert chosen.query.joined is False
    assert chosen.query.event_types == ("search",)
    chosen = parse_events('eventTime > "2024-01-01T00:00:00Z" eventType = detail-page-view',
                          CATALOG)
    assert chosen.query.event_types == ("detail-page-view",)


def test_an_or_of_types_is_checked_per_event() -> None:
    chosen = parse_events('(eventType = "search" OR eventType = home-page-view) AND '
                          'eventTime >= "2024-01-01T00:00:00Z"', CATALOG)
    assert chosen.query.event_types == ()  # the store ANDs its type terms
    assert chosen.types == {"search", "home-page-view"}
    assert chosen.query.after == TimeBound(JAN, True)
    assert chosen.matches(user_event_pb2.UserEvent(event_type="search"))
    assert not chosen.matches(user_event_pb2.UserEvent(event_type="add-to-cart"))


def test_googles_own_or_examples_are_read() -> None:
    # ExportUserEventsRequest.filter, "Example 5: eventType = (detail-page-view OR search)"
    chosen = parse_events("eventType = (detail-page-view OR search)", CATALOG)
    assert chosen.types == {"detail-page-view", "search"}
    assert chosen.query.event_types == ()
    assert parse_events('eventType = ("search")', CATALOG).query.event_types == ("search",)
    # ExportProductsRequest.filter, "Example 5: availability = (IN_STOCK OR BACKORDER)"
    chosen_products = parse_products("availability = (IN_STOCK OR BACKORDER) AND "
                                     "productType = (primary OR variant)")
    assert chosen_products.availabilities == (Product.IN_STOCK, Product.BACKORDER)
    assert chosen_products.types == (Product.PRIMARY, Product.VARIANT)


def test_googles_not_example_is_read() -> None:
    # ExportUserEventsRequest.filter, "Example 3: eventsMissingCatalogItems eventType =
    # (NOT search) eventTime < ...": NOT inside eventType's parentheses
    chosen = parse_events('eventsMissingCatalogItems eventType = (NOT search) '
                          'eventTime < "2024-01-01T00:00:00Z"', CATALOG)
    assert chosen.query.joined is False and chosen.query.before == TimeBound(JAN, False)
    assert chosen.query.event_types == ()
    kinds = ("search", "home-page-view", "add-to-cart")
    assert [k for k in kinds if chosen.matches(user_event_pb2.UserEvent(event_type=k))] == [
        "home-page-view", "add-to-cart"]


@pytest.mark.parametrize(("text", "chosen"), [
    ("eventType = (NOT search OR NOT add-to-cart)", ["search", "home-page-view", "add-to-cart"]),
    ("eventType = (search OR NOT add-to-cart)", ["search", "home-page-view"]),
    ('eventType = (NOT "search")', ["home-page-view", "add-to-cart"]),
    ('eventType = (NOT search OR NOT search)', ["home-page-view", "add-to-cart"]),
])
def test_not_is_a_literal_of_the_parenthesised_or(text: str, chosen: list[str]) -> None:
    selection = parse_events(text, CATALOG)
    kinds = ("search", "home-page-view", "add-to-cart")
    assert [k for k in kinds
            if selection.matches(user_event_pb2.UserEvent(event_type=k))] == chosen


@pytest.mark.parametrize(("text", "why"), [
    # NOT outside eventType's parentheses, as Google's grammar says: refused
    ("eventType = NOT search", "at character 13: NOT is taken inside eventType's "
                               "parentheses only: eventType = (NOT search)"),
    ("eventType = (NOT)", "at character 17: expected a value for eventType, got ')'"),
    ("eventType = (NOT NOT a)", "at character 18: expected a value for eventType, got 'NOT'"),
    ("eventType = (a b)", "at character 16: expected OR or ')', got 'b'"),
    ("eventType = (a OR", "expected a value for eventType, but the filter ends"),
    ("eventType = ()", "at character 14: expected a value for eventType, got ')'"),
    ("eventType = (search OR OR)", "at character 24: expected a value for eventType, got 'OR'"),
    ("eventType = (OR)", "at character 14: expected a value for eventType, got 'OR'"),
    ("eventType = AND", "at character 13: expected a value for eventType, got 'AND'"),
    ("eventType = (a) eventType = b", "at character 17: eventType is given twice"),
    ('visitorId = "v"', "at character 1: unknown term 'visitorId'"),
    ('eventType = "search\0"', "at character 13: a value must not hold a NUL character"),
    ("(eventType = a OR NOT eventType = b)", "at character 19: NOT is taken inside "
                                             "eventType's parentheses only"),
    ("NOT eventType = a", "at character 1: NOT is taken inside eventType's parentheses only"),
    ("eventType = a eventType = b", "at character 15: eventType is given twice"),
    ('eventTime > "2024-01-01T00:00:00Z" eventTime > "2024-01-02T00:00:00Z"',
     "at character 46: eventTime > is given twice"),
    ('eventTime > "2024-01-02T00:00:00Z" eventTime < "2024-01-01T00:00:00Z"',
     "at character 48: the eventTime range is empty"),
    ('eventTime >= "2024-01-01T00:00:00Z" eventTime < "2024-01-01T00:00:00Z"',
     "the eventTime range is empty"),
    ('eventTime = "2024-01-01T00:00:00Z"', "at character 11: expected one of > >= < <="),
    ('eventTime > "yesterday"', "is not an RFC 3339 time"),
    ("(eventType = a", "at character 15: expected OR or ')', but the filter ends"),
    ("eventType = ", "expected a value for eventType, but the filter ends"),
    ("eventType = a $", "at character 15: unexpected character '$'"),
    ("eventsMissingCatalogItems AND", "at character 27: AND must be followed by a term"),
])
def test_bad_event_filters_name_the_field_and_place(text: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_events(text, CATALOG)
    assert str(caught.value).startswith("filter: ")
    assert why in str(caught.value)


def test_a_single_inclusive_instant_is_a_range() -> None:
    chosen = parse_events('eventTime >= "2024-01-01T00:00:00Z" '
                          'eventTime <= "2024-01-01T00:00:00Z"', CATALOG)
    assert chosen.query.after == chosen.query.before == TimeBound(JAN, True)


def test_product_filters() -> None:
    assert parse_products("").matches(Product(type=Product.VARIANT))
    chosen = parse_products("(availability = IN_STOCK OR availability = \"PREORDER\") "
                            "productType = primary")
    assert chosen.matches(Product(type=Product.PRIMARY))  # unset availability: in stock
    assert chosen.matches(Product(type=Product.PRIMARY, availability=Product.PREORDER))
    assert not chosen.matches(Product(type=Product.PRIMARY, availability=Product.BACKORDER))
    assert not chosen.matches(Product(type=Product.VARIANT))
    assert parse_products("productType = Variant").matches(Product(type=Product.VARIANT))


@pytest.mark.parametrize(("text", "why"), [
    ('lastModifiedTime > "2024-01-01T00:00:00Z"', "Footfall keeps no modification time"),
    ('tag = "sale"', "tag expressions are not supported"),
    ("productType = collection", "productType must be primary or variant"),
    ("availability = SOLD_OUT", "availability must be one of IN_STOCK"),
    ("(productType = primary OR NOT productType = variant)", "NOT is not supported"),
    ("brand = x", "unknown term 'brand'; filter on productType, availability"),
    ("availability = (IN_STOCK OR OR)", "expected a value for availability, got 'OR'"),
])
def test_bad_product_filters_name_the_field(text: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_products(text)
    assert str(caught.value).startswith("filter: ") and why in str(caught.value)


def test_over_long_filters_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="filter: must be at most 5000 characters"):
        parse_events("eventsMissingCatalogItems " * 300, CATALOG)


WORDS = st.sampled_from(["eventTime", "eventType", "eventsMissingCatalogItems", "OR", "AND",
                         "NOT", "(", ")", "=", ">", "<=", '"2024-01-01T00:00:00Z"', '"x"',
                         "search", "productType", "availability", "IN_STOCK", "primary"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(WORDS, max_size=12).map(" ".join)))
def test_any_input_parses_or_is_invalid_argument(text: str) -> None:
    for parse in (lambda t: parse_events(t, CATALOG), parse_products):
        try:
            parse(text)
        except InvalidArgument as exc:
            assert str(exc).startswith("filter: ")


@pytest.mark.parametrize("text", [
    'eventTime > "2024-01-01T00:00:00Z"',
    "eventType = detail-page-view",
    "eventType = (detail-page-view OR search)",
    "eventType = (NOT search)",
    '(eventType = "search" OR eventType = "home-page-view")',
    "eventsMissingCatalogItems",
    'eventTime >= "2024-01-01T00:00:00Z" eventTime < "2024-02-01T00:00:00Z" eventType = search',
])
def test_the_readme_forms_parse(text: str) -> None:
    """The forms README's "Export" section lists, as written there."""
    parse_events(text, CATALOG)
