"""Google's documented rules for a catalog Product, as pure functions.

`product_violations` checks one product on its own and returns every rule it
breaks, each naming the field path from the request's root
(`product.categories[2]`). `reference_violations` checks what a product says
about other products of its branch (its primary, its collection members), given
those products already read from the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from footfall.retail.v2 import product_pb2

from server import wellknown
from server.errors import FailedPrecondition, FieldViolation, InvalidArgument, entry_path
from server.retail.validation import (
    MAX_ID,
    MAX_LONG_TEXT,
    attribute_violations,
    price_violations,
    too_long,
    too_many,
)

PRIMARY = product_pb2.Product.PRIMARY
VARIANT = product_pb2.Product.VARIANT
COLLECTION = product_pb2.Product.COLLECTION

# A product's serialized bytes, at most: what answers it (CreateProduct, GetProduct) must
# fit the 4 MiB answers clients take by default. Google documents field limits only;
# a product at several of them at once (200 attributes of 400 texts of 256 characters)
# was stored and then answered RESOURCE_EXHAUSTED by the client, and never read again.
MAX_PRODUCT_BYTES = 2 * 1024 * 1024
MAX_TITLE = 1_000
MAX_ATTRIBUTES = 200
MAX_ATTRIBUTE_KEY = 128
MAX_COLLECTION_MEMBERS = 1_000
MAX_IMAGES = 300
MAX_PROMOTIONS = 10
MAX_PROMOTION_ID = 128
PROMOTION_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
MAX_RETRIEVABLE_FIELDS = 30
MAX_PLACE_IDS = 3_000
MAX_PLACE_ID = 30
FULFILLMENT_TYPES = (
    "pickup-in-store", "ship-to-store", "same-day-delivery", "next-day-delivery",
    "custom-type-1", "custom-type-2", "custom-type-3", "custom-type-4", "custom-type-5",
)
INDEXABLE_KEY = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_]*")
PLACE_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]+")
# The last expire_time a Timestamp holds (9999-12-31T23:59:59.999999999Z): a ttl that
# ends later has no expire_time to become.
LATEST_EXPIRE_NS = (wellknown.MAX_SECONDS + 1) * 1_000_000_000 - 1
TTL_TOO_LONG = "must end by 9999-12-31T23:59:59Z (expire_time is now + ttl)"

# Repeated string fields: (name, most values, most characters per value,
# whether empty values are refused). Limits as Google documents them.
_STRING_LISTS = (
    ("categories", 250, MAX_LONG_TEXT, True),
    ("brands", 30, 1_000, False),
    ("tags", 250, 1_000, False),
    ("sizes", 20, 128, False),
    ("materials", 20, 200, False),
    ("patterns", 20, 128, False),
    ("conditions", 1, 128, False),
)
_NESTED_LISTS = (
    ("audience", "genders", 5, 128),
    ("audience", "age_groups", 5, 128),
    ("color_info", "color_families", 5, 128),
    ("color_info", "colors", 75, 128),
)


def _strings(values: Sequence[str], path: str, most: int, longest: int, no_empty: bool,
             out: list[FieldViolation]) -> None:
    if len(values) > most:
        out.append(too_many(path, values, most))
    for i, value in enumerate(values):
        if no_empty and not value:
            out.append(FieldViolation(f"{path}[{i}]", "must not be empty"))
        elif len(value) > longest:
            out.append(too_long(f"{path}[{i}]", value, longest))


def is_gtin(value: str) -> bool:
    """True for a GTIN-8, -12, -13 or -14 whose check digit is right."""
    if len(value) not in (8, 12, 13, 14) or not value.isascii() or not value.isdigit():
        return False
    digits = [int(c) for c in value]
    # Weights 3,1,3,1... from the digit left of the check digit, going left.
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
    return (10 - total % 10) % 10 == digits[-1]


def product_violations(product: Any, path: str = "product") -> list[FieldViolation]:
    """Every rule `product` (with its type and primary already defaulted) breaks."""
    out: list[FieldViolation] = []
    size = product.ByteSize()
    if size > MAX_PRODUCT_BYTES:
        out.append(FieldViolation(path, f"is {size} bytes; at most {MAX_PRODUCT_BYTES} (the "
                                        "answer that carries it must fit a client's 4 MiB)"))
    kind = product.type
    if kind not in (PRIMARY, VARIANT, COLLECTION):
        out.append(FieldViolation(f"{path}.type", f"unknown product type {kind}"))
    if len(product.id) > MAX_ID:
        out.append(too_long(f"{path}.id", product.id, MAX_ID))

    if not product.title:
        out.append(FieldViolation(f"{path}.title", "is required"))
    elif len(product.title) > MAX_TITLE:
        out.append(too_long(f"{path}.title", product.title, MAX_TITLE))

    _grouping(product, path, out)

    if kind == PRIMARY and not product.categories:
        out.append(FieldViolation(f"{path}.categories", "is required for PRIMARY products"))
    for name, most, longest, no_empty in _STRING_LISTS:
        _strings(getattr(product, name), f"{path}.{name}", most, longest, no_empty, out)
    for parent, name, most, longest in _NESTED_LISTS:
        _strings(getattr(getattr(product, parent), name), f"{path}.{parent}.{name}",
                 most, longest, False, out)

    for name, limit in (("description", MAX_LONG_TEXT), ("uri", MAX_LONG_TEXT), ("gtin", MAX_ID)):
        value = getattr(product, name)
        if len(value) > limit:
            out.append(too_long(f"{path}.{name}", value, limit))
    if product.gtin and len(product.gtin) <= MAX_ID and not is_gtin(product.gtin):
        out.append(FieldViolation(f"{path}.gtin", f"is not a valid GTIN: {product.gtin!r}"))
    check_availability(product.availability, f"{path}.availability", out)

    _attributes(product.attributes, f"{path}.attributes", out)
    price_violations(product.price_info, f"{path}.price_info", out)
    _rating(product.rating, f"{path}.rating", out)
    check_fulfillment(product.fulfillment_info, f"{path}.fulfillment_info", out)
    _images(product.images, f"{path}.images", out)
    _times(product, path, out)
    _promotions(product.promotions, f"{path}.promotions", out)
    if len(product.retrievable_fields.paths) > MAX_RETRIEVABLE_FIELDS:
        out.append(FieldViolation(f"{path}.retrievable_fields",
                                  f"must name at most {MAX_RETRIEVABLE_FIELDS} paths, "
                                  f"got {len(product.retrievable_fields.paths)}"))
    return out


def _promotions(promotions: Sequence[Any], path: str, out: list[FieldViolation]) -> None:
    if len(promotions) > MAX_PROMOTIONS:
        out.append(too_many(path, promotions, MAX_PROMOTIONS))
    for i, promotion in enumerate(promotions):
        given = promotion.promotion_id
        if len(given) > MAX_PROMOTION_ID or not PROMOTION_ID.fullmatch(given):
            out.append(FieldViolation(
                f"{path}[{i}].promotion_id",
                f"must match [a-zA-Z][a-zA-Z0-9_]* and be at most {MAX_PROMOTION_ID} "
                f"characters (e.g. free_gift), got {given[:50]!r}"))


def _grouping(product: Any, path: str, out: list[FieldViolation]) -> None:
    """primary_product_id and collection_member_ids against the product's type."""
    primary = product.primary_product_id
    field = f"{path}.primary_product_id"
    if len(primary) > MAX_ID:
        out.append(too_long(field, primary, MAX_ID))
    if product.type == PRIMARY and primary and primary != product.id:
        out.append(FieldViolation(field, "must be empty or the product's own id for a PRIMARY "
                                         f"product, got {primary!r}"))
    if product.type == VARIANT and not primary:
        out.append(FieldViolation(field, "is required for VARIANT products"))
    members = product.collection_member_ids
    field = f"{path}.collection_member_ids"
    if members and product.type != COLLECTION:
        out.append(FieldViolation(field, "is only allowed on COLLECTION products"))
    if len(members) > MAX_COLLECTION_MEMBERS:
        out.append(too_many(field, members, MAX_COLLECTION_MEMBERS))


def _attributes(attributes: Any, path: str, out: list[FieldViolation]) -> None:
    attribute_violations(attributes, path, out)
    if len(attributes) > MAX_ATTRIBUTES:
        out.append(too_many(path, attributes, MAX_ATTRIBUTES, "entries"))
    for key in sorted(attributes):
        value = attributes[key]
        where = entry_path(path, key)
        if MAX_ATTRIBUTE_KEY < len(key) <= MAX_LONG_TEXT:  # longer keys are flagged above
            out.append(FieldViolation(where, f"key must be at most {MAX_ATTRIBUTE_KEY} "
                                             f"characters, got {len(key)}"))
        if value.HasField("indexable") and value.indexable and key \
                and not INDEXABLE_KEY.fullmatch(key):
            out.append(FieldViolation(where, "the key of an indexable attribute must match "
                                             "[a-zA-Z0-9][a-zA-Z0-9_]*"))
        if value.HasField("searchable") and not value.text:
            out.append(FieldViolation(f"{where}.searchable",
                                      "may only be set on text attributes"))


def _rating(rating: Any, path: str, out: list[FieldViolation]) -> None:
    if rating.rating_count < 0:
        out.append(FieldViolation(f"{path}.rating_count",
                                  f"must not be negative, got {rating.rating_count}"))
    if rating.average_rating and not 1 <= rating.average_rating <= 5:
        out.append(FieldViolation(f"{path}.average_rating",
                                  f"must be between 1 and 5, got {rating.average_rating:g}"))
    if rating.rating_histogram and len(rating.rating_histogram) != 5:
        out.append(FieldViolation(f"{path}.rating_histogram",
                                  "must be empty or have exactly 5 values, "
                                  f"got {len(rating.rating_histogram)}"))


def check_availability(availability: int, path: str, out: list[FieldViolation]) -> None:
    """A violation of `path` when `availability` is no Product.Availability."""
    if availability not in product_pb2.Product.Availability.values():
        out.append(FieldViolation(path, f"unknown availability {availability}"))


def unknown_fulfillment_type(path: str, shown: str) -> FieldViolation:
    """`path` holds `shown`, which is no fulfillment type."""
    return FieldViolation(path, f"unknown fulfillment type {shown!r}; "
                                f"allowed: {', '.join(FULFILLMENT_TYPES)}")


def check_fulfillment(infos: Sequence[Any], path: str, out: list[FieldViolation]) -> None:
    seen: set[str] = set()
    for i, info in enumerate(infos):
        where = f"{path}[{i}]"
        if info.type not in FULFILLMENT_TYPES:
            out.append(unknown_fulfillment_type(f"{where}.type", info.type))
        elif info.type in seen:
            out.append(FieldViolation(f"{where}.type",
                                      f"fulfillment type {info.type!r} appears more than once"))
        seen.add(info.type)
        if len(info.place_ids) > MAX_PLACE_IDS:
            out.append(too_many(f"{where}.place_ids", info.place_ids, MAX_PLACE_IDS))
        for j, place in enumerate(info.place_ids):
            if len(place) > MAX_PLACE_ID or not PLACE_ID_PATTERN.fullmatch(place):
                out.append(FieldViolation(f"{where}.place_ids[{j}]",
                                          f"must match [a-zA-Z0-9_-]+ and be at most "
                                          f"{MAX_PLACE_ID} characters, got {place[:50]!r}"))


def _images(images: Sequence[Any], path: str, out: list[FieldViolation]) -> None:
    if len(images) > MAX_IMAGES:
        out.append(too_many(path, images, MAX_IMAGES))
    for i, image in enumerate(images):
        where = f"{path}[{i}]"
        if not image.uri:
            out.append(FieldViolation(f"{where}.uri", "is required"))
        elif len(image.uri) > MAX_LONG_TEXT:
            out.append(too_long(f"{where}.uri", image.uri, MAX_LONG_TEXT))
        for name in ("height", "width"):
            if getattr(image, name) < 0:
                out.append(FieldViolation(f"{where}.{name}",
                                          f"must not be negative, got {getattr(image, name)}"))


def _times(product: Any, path: str, out: list[FieldViolation]) -> None:
    # products.apply_defaults turns a ttl into expire_time; one left is one it could not.
    if product.HasField("ttl"):
        out.append(FieldViolation(f"{path}.ttl", "must not be negative"
                                  if product.ttl.ToNanoseconds() < 0 else TTL_TOO_LONG))
    if not product.HasField("expire_time"):
        return
    expires = product.expire_time.ToNanoseconds()
    for name in ("available_time", "publish_time"):
        if product.HasField(name) and expires <= getattr(product, name).ToNanoseconds():
            out.append(FieldViolation(f"{path}.expire_time", f"must be later than {name}"))


def referenced_ids(product: Any) -> list[str]:
    """Ids of other products whose type `reference_violations` needs to know."""
    ids = list(product.collection_member_ids) if product.type == COLLECTION else []
    if product.type == VARIANT and product.primary_product_id:
        ids.append(product.primary_product_id)
    return [i for i in dict.fromkeys(ids) if i and i != product.id]


# "A maximum of 2,000 products are allowed to share the same Type.PRIMARY Product.
# Otherwise, an INVALID_ARGUMENT error is returned." (Product.primary_product_id)
MAX_VARIANTS = 2_000


def check_variant_siblings(product: Any, siblings: Iterable[Any], joining: bool,
                           path: str = "product") -> None:
    """The rules a VARIANT `product` must keep with the other variants of its primary
    (`siblings`, without itself), as Google states them: at most MAX_VARIANTS share
    one primary (INVALID_ARGUMENT; counted only when the product `joining` them was
    not a variant of that primary already), and variants of one primary "must share
    the same currency_code. Otherwise, a FAILED_PRECONDITION error is returned."
    (PriceInfo)."""
    own = product.price_info.currency_code
    count = 0
    for sibling in siblings:
        count += 1
        if joining and count >= MAX_VARIANTS:
            raise InvalidArgument.field(
                f"{path}.primary_product_id",
                f"product {product.primary_product_id!r} has {MAX_VARIANTS:,} variants "
                "already; at most 2,000 products may share one PRIMARY product")
        theirs = sibling.price_info.currency_code
        if own and theirs and own != theirs:
            raise FailedPrecondition(
                "CURRENCY_CODE", f"{path}.price_info.currency_code",
                f"{path}.price_info.currency_code: {own!r}, but variant {sibling.id!r} of "
                f"the same primary product {product.primary_product_id!r} is priced in "
                f"{theirs!r}; variants of one primary must share one currency_code")


def reference_violations(product: Any, found: Mapping[str, Any],
                         path: str = "product") -> list[FieldViolation]:
    """Rules about the products `product` names; `found` maps id -> stored Product.

    A VARIANT's primary must exist and be PRIMARY; collection members may be
    missing but, when present, must be PRIMARY or VARIANT.
    """
    out: list[FieldViolation] = []
    if product.type == VARIANT and product.primary_product_id:
        primary = found.get(product.primary_product_id)
        field = f"{path}.primary_product_id"
        if primary is None:
            out.append(FieldViolation(field, f"no product {product.primary_product_id!r} "
                                             "in this branch"))
        elif primary.type != PRIMARY:
            out.append(FieldViolation(field, f"product {product.primary_product_id!r} is "
                                             f"{product_pb2.Product.Type.Name(primary.type)}, "
                                             "not PRIMARY"))
    if product.type == COLLECTION:
        for i, member_id in enumerate(product.collection_member_ids):
            member = found.get(member_id)
            if member is not None and member.type not in (PRIMARY, VARIANT):
                out.append(FieldViolation(f"{path}.collection_member_ids[{i}]",
                                          f"member {member_id!r} must be PRIMARY or VARIANT"))
    return out
