"""The field a misspelt name most likely meant (server.near_names), compared by words."""

from __future__ import annotations

import pytest
from footfall.retail.v2 import product_pb2, user_event_pb2
from footfall.talent.v4 import event_pb2

from server.near_names import nearest, words

USER_EVENT = [field.json_name for field in user_event_pb2.UserEvent.DESCRIPTOR.fields]
PRODUCT = [field.json_name for field in product_pb2.Product.DESCRIPTOR.fields]
CLIENT_EVENT = [field.json_name for field in event_pb2.ClientEvent.DESCRIPTOR.fields]


@pytest.mark.parametrize(("name", "expected"), [
    ("event_name", ["event", "name"]),
    ("eventType", ["event", "type"]),
    ("visitorID", ["visitor", "id"]),
    ("experiment-ids", ["experiment", "id"]),
    ("pageCategories", ["page", "category"]),
    ("address", ["address"]),  # (no plural to take off)
])
def test_a_name_is_its_words_lower_case_and_singular(name: str, expected: list[str]) -> None:
    assert words(name) == expected


@pytest.mark.parametrize(("typed", "meant"), [
    # an event's name is its type (GA4's and Snowplow's event_name): difflib said
    # eventTime, whose "me" it shares
    ("event_name", "eventType"),
    ("eventName", "eventType"),
    ("eventname", "eventType"),  # run together: parted where a known word begins it
    ("event_typ", "eventType"),
    ("evnetType", "eventType"),
    ("eventTypes", "eventType"),
    ("event_timestamp", "eventTime"),
    ("timestamp", "eventTime"),
    ("purchase", "purchaseTransaction"),  # difflib: nothing
    ("user_ident", "userInfo"),  # difflib: nothing
    ("attribution", "attributionToken"),  # the same word before one spelt alike
    ("product_detail", "productDetails"),
    ("page_category", "pageCategories"),
    ("page_view", "pageViewId"),
    ("visitor_key", "visitorId"),
    ("search_term", "searchQuery"),
    ("refferer", "referrerUri"),
    ("url", "uri"),  # no word matches: the closest spelling
])
def test_a_user_event_field_misspelt_is_told_the_one_meant(typed: str, meant: str) -> None:
    assert nearest(typed, USER_EVENT) == meant


@pytest.mark.parametrize(("typed", "names", "meant"), [
    ("product_name", PRODUCT, "name"),  # the word itself before its synonym (type)
    ("idd", PRODUCT, "id"),
    ("titel", PRODUCT, "title"),
    ("category", PRODUCT, "categories"),
    ("create_timestamp", CLIENT_EVENT, "createTime"),
    ("job", CLIENT_EVENT, "jobEvent"),
    # a field sharing only a word that is neither the first nor all of either name is
    # no guess (the interop test of talent's REST events saw jobEvent suggested)
    ("profileEvents", CLIENT_EVENT, None),
])
def test_other_messages_fields_alike(typed: str, names: list[str], meant: str | None) -> None:
    assert nearest(typed, names) == meant


@pytest.mark.parametrize("typed", ["bogus", "id", "ids", "ab_test", "x", "", "z" * 10_000])
def test_a_name_like_none_is_told_none(typed: str) -> None:
    # (`id` alone matches every *Id field as well as any other: none is suggested)
    assert nearest(typed, USER_EVENT) is None
