"""Product rules, table-driven: each invalid case names the field it must flag."""

from __future__ import annotations

from typing import Any

import pytest
from footfall.retail.v2 import product_pb2
from google.protobuf import json_format

from server.retail.product_validation import (
    is_gtin,
    product_violations,
    reference_violations,
    referenced_ids,
)

BASE = {"id": "p1", "type": "PRIMARY", "primaryProductId": "p1", "title": "Shoe",
        "categories": ["Shoes"]}


def make(**fields: Any) -> product_pb2.Product:
    body = {**BASE, **fields}
    return json_format.ParseDict({k: v for k, v in body.items() if v is not None},
                                 product_pb2.Product())


def flagged(product: product_pb2.Product) -> list[str]:
    return [v.field for v in product_violations(product)]


VALID = [
    {},
    {"type": "VARIANT", "primaryProductId": "p0", "categories": None},
    {"type": "COLLECTION", "primaryProductId": None, "categories": None,
     "collectionMemberIds": ["a", "b"]},
    {"primaryProductId": None},
    {"gtin": "4006381333931", "uri": "https://x/" + "a" * 4000, "description": "d" * 5000,
     "brands": ["b"] * 30, "sizes": ["US:MENS:M"], "conditions": ["new"]},
    {"attributes": {"vendor": {"text": ["v1"], "indexable": True, "searchable": True},
                    "lengths_cm": {"numbers": [2.3]}}},
    {"priceInfo": {"currencyCode": "EUR", "price": 10, "originalPrice": 12,
                   "priceEffectiveTime": "2024-01-01T00:00:00Z"}},
    {"rating": {"ratingCount": 3, "averageRating": 4.5, "ratingHistogram": [0, 0, 1, 1, 1]}},
    {"fulfillmentInfo": [{"type": "pickup-in-store", "placeIds": ["store-1", "S_2"]},
                         {"type": "custom-type-1"}]},
    {"images": [{"uri": "https://img/1", "height": 10, "width": 0}]},
    {"availableTime": "2024-01-01T00:00:00Z", "expireTime": "2025-01-01T00:00:00Z"},
    {"title": "t" * 1000},
    # Google documents no rule for available_quantity ("The available quantity of the
    # item."), where it does for rating_count and an image's height and width (must be
    # nonnegative, else INVALID_ARGUMENT): a negative one is not refused.
    {"availableQuantity": -5},
    {"promotions": [{"promotionId": "id0LikeThis"}, {"promotionId": "ID_1_LIKE_THIS"},
                    {"promotionId": "p" * 128}]},
    {"retrievableFields": ",".join(f"attributes.k{i}" for i in range(30))},
]


@pytest.mark.parametrize("fields", VALID)
def test_valid_products_pass(fields: dict[str, Any]) -> None:
    assert flagged(make(**fields)) == []


INVALID = [
    ({"title": ""}, "product.title"),
    ({"title": "t" * 1001}, "product.title"),
    ({"id": "x" * 129, "primaryProductId": None}, "product.id"),
    ({"primaryProductId": "other"}, "product.primary_product_id"),
    ({"type": "VARIANT", "primaryProductId": ""}, "product.primary_product_id"),
    ({"type": "VARIANT", "primaryProductId": "p" * 129}, "product.primary_product_id"),
    ({"collectionMemberIds": ["a"]}, "product.collection_member_ids"),
    ({"type": "COLLECTION", "primaryProductId": None,
      "collectionMemberIds": ["m"] * 1001}, "product.collection_member_ids"),
    ({"categories": []}, "product.categories"),
    ({"categories": ["ok", ""]}, "product.categories[1]"),
    ({"categories": ["c"] * 251}, "product.categories"),
    ({"categories": ["c" * 5001]}, "product.categories[0]"),
    ({"brands": ["b"] * 31}, "product.brands"),
    ({"brands": ["b" * 1001]}, "product.brands[0]"),
    ({"tags": ["t" * 1001]}, "product.tags[0]"),
    ({"sizes": ["s"] * 21}, "product.sizes"),
    ({"materials": ["m" * 201]}, "product.materials[0]"),
    ({"patterns": ["p" * 129]}, "product.patterns[0]"),
    ({"conditions": ["new", "used"]}, "product.conditions"),
    ({"audience": {"genders": ["g"] * 6}}, "product.audience.genders"),
    ({"colorInfo": {"colors": ["c" * 129]}}, "product.color_info.colors[0]"),
    ({"description": "d" * 5001}, "product.description"),
    ({"uri": "u" * 5001}, "product.uri"),
    ({"gtin": "4006381333932"}, "product.gtin"),
    ({"gtin": "abc"}, "product.gtin"),
    ({"attributes": {"k": {}}}, "product.attributes['k']"),
    ({"attributes": {"k" * 129: {"text": ["v"]}}}, f"product.attributes[{'k' * 50!r}]"),
    ({"attributes": {"bad key": {"text": ["v"], "indexable": True}}},
     "product.attributes['bad key']"),
    ({"attributes": {"n": {"numbers": [1], "searchable": True}}},
     "product.attributes['n'].searchable"),
    ({"attributes": {"k": {"text": [""]}}}, "product.attributes['k'].text[0]"),
    ({"attributes": {f"k{i}": {"text": ["v"]} for i in range(201)}}, "product.attributes"),
    ({"priceInfo": {"currencyCode": "XYZ"}}, "product.price_info.currency_code"),
    ({"priceInfo": {"price": 10, "originalPrice": 5}}, "product.price_info.original_price"),
    ({"priceInfo": {"price": "NaN", "currencyCode": "USD"}}, "product.price_info.price"),
    ({"priceInfo": {"price": 1, "cost": "Infinity"}}, "product.price_info.cost"),
    ({"attributes": {"weight": {"numbers": ["-Infinity"]}}},
     "product.attributes['weight'].numbers[0]"),
    ({"priceInfo": {"price": 10, "priceExpireTime": "2024-01-01T00:00:00Z"}},
     "product.price_info.original_price"),
    ({"rating": {"ratingCount": -1}}, "product.rating.rating_count"),
    ({"rating": {"averageRating": 6}}, "product.rating.average_rating"),
    ({"rating": {"ratingHistogram": [1, 2]}}, "product.rating.rating_histogram"),
    ({"fulfillmentInfo": [{"type": "teleport"}]}, "product.fulfillment_info[0].type"),
    ({"fulfillmentInfo": [{"type": "ship-to-store"}, {"type": "ship-to-store"}]},
     "product.fulfillment_info[1].type"),
    ({"fulfillmentInfo": [{"type": "ship-to-store", "placeIds": ["a b"]}]},
     "product.fulfillment_info[0].place_ids[0]"),
    ({"fulfillmentInfo": [{"type": "ship-to-store", "placeIds": ["x" * 31]}]},
     "product.fulfillment_info[0].place_ids[0]"),
    ({"images": [{"uri": ""}]}, "product.images[0].uri"),
    ({"images": [{"uri": "u", "height": -1}]}, "product.images[0].height"),
    ({"images": [{"uri": "u"}] * 301}, "product.images"),
    ({"promotions": [{"promotionId": "p"}] * 11}, "product.promotions"),
    *(({"promotions": [{"promotionId": given}]}, "product.promotions[0].promotion_id")
      for given in ("free gift", "1abc", "a" * 129, "10%-off", "")),
    ({"retrievableFields": ",".join(f"attributes.k{i}" for i in range(31))},
     "product.retrievable_fields"),
    ({"availableTime": "2024-01-02T00:00:00Z", "expireTime": "2024-01-01T00:00:00Z"},
     "product.expire_time"),
    ({"publishTime": "2024-01-01T00:00:00Z", "expireTime": "2024-01-01T00:00:00Z"},
     "product.expire_time"),
    ({"ttl": "-5s"}, "product.ttl"),
]


@pytest.mark.parametrize(("fields", "field"), INVALID)
def test_invalid_products_name_the_field(fields: dict[str, Any], field: str) -> None:
    assert field in flagged(make(**fields))


def test_unknown_enum_numbers_are_refused() -> None:
    product = make()
    product.type = 7  # type: ignore[assignment]
    product.availability = 9  # type: ignore[assignment]
    assert {"product.type", "product.availability"} <= set(flagged(product))


def test_every_violation_is_reported_not_just_the_first() -> None:
    product = make(title="", categories=[], uri="u" * 5001, images=[{"uri": ""}])
    assert flagged(product) == ["product.title", "product.categories", "product.uri",
                                "product.images[0].uri"]


@pytest.mark.parametrize(("value", "valid"), [
    ("4006381333931", True), ("73513537", True), ("036000291452", True),
    ("10036000291459", True), ("4006381333930", False), ("123", False),
    ("40063813339a1", False), ("٤٠٠٦٣٨١٣٣٣٩٣١", False),
])
def test_gtin_check_digit(value: str, valid: bool) -> None:
    assert is_gtin(value) is valid


def typed(kind: str, **fields: Any) -> product_pb2.Product:
    return json_format.ParseDict({"type": kind, **fields}, product_pb2.Product())


REFERENCES = [
    (typed("VARIANT", id="v", primaryProductId="p"), {"p": typed("PRIMARY")}, []),
    (typed("VARIANT", id="v", primaryProductId="p"), {}, ["product.primary_product_id"]),
    (typed("VARIANT", id="v", primaryProductId="p"), {"p": typed("VARIANT")},
     ["product.primary_product_id"]),
    (typed("COLLECTION", id="c", collectionMemberIds=["a", "gone", "c2"]),
     {"a": typed("VARIANT"), "c2": typed("COLLECTION")}, ["product.collection_member_ids[2]"]),
    (typed("PRIMARY", id="p", primaryProductId="p"), {}, []),
]


@pytest.mark.parametrize(("product", "found", "fields"), REFERENCES)
def test_reference_rules(product: product_pb2.Product, found: dict[str, Any],
                         fields: list[str]) -> None:
    assert [v.field for v in reference_violations(product, found)] == fields


def test_referenced_ids_are_what_the_rules_need() -> None:
    assert referenced_ids(typed("VARIANT", id="v", primaryProductId="p")) == ["p"]
    assert referenced_ids(typed("COLLECTION", id="c", collectionMemberIds=["a", "a", "c"])) \
        == ["a"]
    assert referenced_ids(typed("PRIMARY", id="p", primaryProductId="p")) == []
