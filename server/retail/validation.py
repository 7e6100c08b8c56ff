"""Google's documented rules for a retail UserEvent, as pure functions.

`user_event_violations` returns every violation it finds (never just the first),
each naming the field path from the request's root, e.g.
`user_event.product_details[0].product.id`.
"""

from __future__ import annotations

import difflib
import functools
import math
import socket
from collections.abc import Sized
from typing import Any

from google.protobuf import timestamp_pb2

from server.errors import FieldViolation, entry_path
from server.names import NUL_REFUSED

# Google's event types (UserEvent.event_type's allowed values in the retail v2
# reference); each has the rules below. Others are custom types. (An autocomplete
# click is a search event with a completion_detail: "completion" is no type of it.)
EVENT_TYPES = (
    "add-to-cart",
    "category-page-view",
    "detail-page-view",
    "home-page-view",
    "promotion-offered",
    "promotion-not-offered",
    "purchase-complete",
    "remove-from-cart",
    "search",
    "shopping-cart-page-view",
)
NEEDS_PRODUCTS = frozenset({"detail-page-view", "add-to-cart", "purchase-complete"})
CART_TYPES = frozenset({"add-to-cart", "purchase-complete", "shopping-cart-page-view"})

MAX_ID = 128
MAX_USER_AGENT = 1_000
MAX_FILTER = 1_000
MAX_LONG_TEXT = 5_000
MAX_ATTRIBUTE_VALUES = 400
MAX_ATTRIBUTE_TEXT = 256
# How far ahead of the server's clock an event_time may be (clocks differ). Later
# ones are refused: retention purges by event time, so an event stamped years ahead
# would outlive every --retain-days, and head every newest-first list meanwhile.
MAX_AHEAD_SECONDS = 86_400
# How deep an event's product may nest `variants` (Product's one field of its own
# type; output only, and Google reads an event's product by its id alone). Protobuf
# decodes 100 messages deep at most: an event nesting 97 was stored, and then every
# list holding it (the event inside a stored row inside a response) failed to decode,
# for good, as did a purge by its visitor.
MAX_VARIANT_DEPTH = 32


def too_long(path: str, value: Sized, limit: int, unit: str = "characters") -> FieldViolation:
    """`path`'s value, of len(`value`) `unit`, is over `limit`."""
    return FieldViolation(path, f"must be at most {limit} {unit}, got {len(value)}")


def too_many(path: str, values: Sized, most: int, unit: str = "values") -> FieldViolation:
    """`path` holds len(`values`) `unit`, more than `most`."""
    return FieldViolation(path, f"must have at most {most} {unit}, got {len(values)}")


def id_violations(value: str, path: str, limit: int, out: list[FieldViolation],
                  required: bool = True) -> None:
    """The first rule the id `value` breaks: given (when `required`), at most `limit`
    characters, no NUL (each id is kept in a column: see NUL_REFUSED)."""
    if not value:
        if required:
            out.append(FieldViolation(path, "is required"))
    elif len(value) > limit:
        out.append(too_long(path, value, limit))
    elif "\0" in value:
        out.append(FieldViolation(path, NUL_REFUSED))


def ahead_violations(time: Any, now_s: int | None, path: str,
                     out: list[FieldViolation]) -> None:
    """A violation of `path` when the Timestamp `time` is more than MAX_AHEAD_SECONDS
    after `now_s`, the server's time (None: not checked)."""
    if now_s is not None and time.seconds > now_s + MAX_AHEAD_SECONDS:
        out.append(FieldViolation(
            path, "must be at most a day after the server's time "
            f"({timestamp_pb2.Timestamp(seconds=now_s).ToJsonString()}), got "
            f"{time.ToJsonString()}"))


def is_ip_address(text: str) -> bool:
    """True for a plain IPv4 (dotted quad) or IPv6 address, as inet_pton reads them."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except (OSError, ValueError):
            continue
        return True
    return False


@functools.lru_cache(maxsize=512)
def is_currency_code(code: str) -> bool:
    """True for a current three-letter ISO 4217 code such as USD."""
    # pycountry (with importlib.metadata, which it reads its version with) only once
    # a code is checked: some 30 ms of each start otherwise (bench/startup.py).
    import pycountry

    return (len(code) == 3 and code.isascii() and code.isupper()
            and pycountry.currencies.get(alpha_3=code) is not None)


def currency_violations(code: str, path: str, out: list[FieldViolation]) -> None:
    """A violation of `path` when `code` (given) is no current ISO 4217 code."""
    if code and not is_currency_code(code):
        out.append(FieldViolation(path, "must be a three-letter ISO 4217 code such as USD, "
                                        f"got {code!r}"))


def _kind_label(kind: str) -> str:
    """`kind` quoted, as the rules a type gates name it; a custom type is said to be one,
    with the type of Google's it looks like. (Google's own sample file of user events
    holds a search_query on a line of type 'invalid': Google refuses the type, and a
    message naming the field alone sent the reader to the wrong one; so did a
    `purchase` for `purchase-complete`.)"""
    if not kind or kind in EVENT_TYPES:
        return repr(kind)
    near = _near_type(kind)
    hint = f": did you mean {near!r}?" if near else ""
    return f"{kind!r}, a custom event type (not one of Google's{hint})"


def _near_type(kind: str) -> str | None:
    """The type of Google's that `kind` looks like (`add_to_cart`, `purchase`), if any."""
    near = difflib.get_close_matches(kind[:MAX_ID], EVENT_TYPES, n=1)
    return near[0] if near else None


def _unknown_type(kind: str) -> str:
    """Why --strict-event-types refuses `kind`: Google's types, and the one it looks
    like. (The list alone left `add_to_cart` to be told apart from `add-to-cart` by eye.)"""
    near = _near_type(kind)
    hint = f"; did you mean {near!r}?" if near else ""
    return f"unknown event type {kind!r}; allowed: {', '.join(EVENT_TYPES)}{hint}"


def user_event_violations(event: Any, path: str = "user_event", *,
                          strict_event_types: bool = False,
                          require_event_time: bool = False,
                          now_s: int | None = None) -> list[FieldViolation]:
    """Every rule `event` breaks; empty when it may be stored.

    `strict_event_types` refuses types outside Google's list, as Google does;
    `require_event_time` is the import rule (a write sets a missing time to now);
    `now_s`, the server's time: an event_time more than MAX_AHEAD_SECONDS after it
    is refused.
    """
    out: list[FieldViolation] = []
    kind = event.event_type

    if not kind:
        out.append(FieldViolation(f"{path}.event_type", "is required"))
    elif "\0" in kind:  # the event type, visitor and user ids are columns
        out.append(FieldViolation(f"{path}.event_type", NUL_REFUSED))
    elif len(kind) > MAX_ID:
        # (a custom type is Footfall's: Google takes its list only. A megabyte's type
        # was stored, and then came back whole in every totals bucket and list line,
        # while a funnel's step may name one of 128 characters at most)
        out.append(too_long(f"{path}.event_type", kind, MAX_ID))
    elif strict_event_types and kind not in EVENT_TYPES:
        out.append(FieldViolation(f"{path}.event_type", _unknown_type(kind)))

    id_violations(event.visitor_id, f"{path}.visitor_id", MAX_ID, out)
    session_id = event.session_id.encode()
    if len(session_id) > MAX_ID:
        out.append(too_long(f"{path}.session_id", session_id, MAX_ID, "bytes"))

    if require_event_time and not event.HasField("event_time"):
        out.append(FieldViolation(f"{path}.event_time", "is required"))
    ahead_violations(event.event_time, now_s, f"{path}.event_time", out)

    _user_info(event.user_info, f"{path}.user_info", out)
    _page_fields(event, kind, path, out)
    _products(event, kind, path, out)
    _purchase(event, kind, path, out)

    if event.cart_id and kind not in CART_TYPES:
        out.append(FieldViolation(f"{path}.cart_id",
                                  "is only allowed on add-to-cart, purchase-complete "
                                  "and shopping-cart-page-view events, "
                                  f"not {_kind_label(kind)}"))

    # (Google documents no limit for referrer_uri: the event's size bounds it)
    if len(event.uri) > MAX_LONG_TEXT:
        out.append(too_long(f"{path}.uri", event.uri, MAX_LONG_TEXT))

    attribute_violations(event.attributes, f"{path}.attributes", out)
    return out


def _user_info(info: Any, path: str, out: list[FieldViolation]) -> None:
    id_violations(info.user_id, f"{path}.user_id", MAX_ID, out, required=False)
    if len(info.user_agent) > MAX_USER_AGENT:
        out.append(too_long(f"{path}.user_agent", info.user_agent, MAX_USER_AGENT))
    if info.ip_address:
        if not is_ip_address(info.ip_address):
            out.append(FieldViolation(f"{path}.ip_address",
                                      f"must be an IPv4 or IPv6 address, got {info.ip_address!r}"))


def _page_fields(event: Any, kind: str, path: str, out: list[FieldViolation]) -> None:
    if kind == "search" and not event.search_query and not event.page_categories:
        out.append(FieldViolation(f"{path}.search_query",
                                  "search events need search_query or page_categories"))
    if kind == "category-page-view" and not event.page_categories:
        out.append(FieldViolation(f"{path}.page_categories",
                                  "is required for category-page-view events"))
    if event.page_categories and kind not in ("search", "category-page-view"):
        out.append(FieldViolation(f"{path}.page_categories",
                                  "is only allowed on search and category-page-view events, "
                                  f"not {_kind_label(kind)}"))
    if kind != "search":
        for name in ("search_query", "order_by"):
            if getattr(event, name):
                out.append(FieldViolation(f"{path}.{name}", "is only allowed on search "
                                          f"events, not {_kind_label(kind)}"))
        if event.offset:
            out.append(FieldViolation(f"{path}.offset", "is only allowed on search events, "
                                      f"not {_kind_label(kind)}"))
    if event.offset < 0:
        out.append(FieldViolation(f"{path}.offset", f"must not be negative, got {event.offset}"))
    for name, limit in (("filter", MAX_FILTER), ("order_by", MAX_FILTER),
                        ("search_query", MAX_LONG_TEXT)):
        value = getattr(event, name)
        if len(value) > limit:
            out.append(too_long(f"{path}.{name}", value, limit))


def _products(event: Any, kind: str, path: str, out: list[FieldViolation]) -> None:
    details = event.product_details
    if not details:
        if kind in NEEDS_PRODUCTS:
            out.append(FieldViolation(f"{path}.product_details",
                                      f"at least one product is required for {kind} events"))
        return
    for i, detail in enumerate(details):
        product = detail.product
        # (the product's stats keep its id in a column of its own)
        id_violations(product.id, f"{path}.product_details[{i}].product.id", MAX_ID, out)
        if product.variants and _variant_depth(product) > MAX_VARIANT_DEPTH:
            out.append(FieldViolation(
                f"{path}.product_details[{i}].product.variants",
                f"nests variants more than {MAX_VARIANT_DEPTH} deep (variants are output "
                "only: an event's product is read by its id)"))
        if product.HasField("price_info"):
            # (an event's price overrides the catalog's: PriceInfo's rules hold for it
            # too; a code of no currency, or "usd", stood as a currency of its own in
            # insights)
            price_violations(product.price_info,
                             f"{path}.product_details[{i}].product.price_info", out)


def _variant_depth(product: Any) -> int:
    """How deep `product` nests variants, counted to MAX_VARIANT_DEPTH + 1 at most."""
    depth, level = 0, list(product.variants)
    while level and depth <= MAX_VARIANT_DEPTH:
        depth += 1
        level = [variant for held in level for variant in held.variants]
    return depth


def price_violations(price: Any, path: str, out: list[FieldViolation]) -> None:
    """The rules PriceInfo states of itself (a catalog product's, an inventory
    update's, an event's override of its product's), for the PriceInfo `price` at
    `path`: finite numbers, an ISO 4217 code when given, an original_price (when
    given) at least the price, and one given when a price_effective_time or
    price_expire_time is."""
    finite_violations(price, ("price", "original_price", "cost"), path, out)
    currency_violations(price.currency_code, f"{path}.currency_code", out)
    if price.original_price and price.original_price < price.price:
        out.append(FieldViolation(f"{path}.original_price",
                                  f"must be at least price ({price.price:g}), "
                                  f"got {price.original_price:g}"))
    for name in ("price_effective_time", "price_expire_time"):
        if price.HasField(name) and not price.original_price:
            out.append(FieldViolation(f"{path}.original_price",
                                      f"is required when {name} is set"))
            break


def _purchase(event: Any, kind: str, path: str, out: list[FieldViolation]) -> None:
    field = f"{path}.purchase_transaction"
    has = event.HasField("purchase_transaction")
    if kind == "purchase-complete":
        if not has:
            out.append(FieldViolation(field, "is required for purchase-complete events"))
            return
    elif has:
        out.append(FieldViolation(field, "is only allowed on purchase-complete events, "
                                         f"not {_kind_label(kind)}"))
        return
    if not has:
        return
    purchase = event.purchase_transaction
    finite_violations(purchase, ("revenue", "tax", "cost"), field, out)
    if purchase.revenue == 0:
        out.append(FieldViolation(f"{field}.revenue", "must not be zero"))
    if not purchase.currency_code:
        out.append(FieldViolation(f"{field}.currency_code", "is required"))
    currency_violations(purchase.currency_code, f"{field}.currency_code", out)
    if len(purchase.id) > MAX_ID:
        out.append(too_long(f"{field}.id", purchase.id, MAX_ID))


def finite_violations(message: Any, names: tuple[str, ...], path: str,
                      out: list[FieldViolation]) -> None:
    """The float fields `names` of `message` that are NaN or infinite (proto3 JSON
    reads "NaN" and "Infinity"; no price or revenue is either)."""
    for name in names:
        value = getattr(message, name)
        if not math.isfinite(value):
            out.append(FieldViolation(f"{path}.{name}", f"must be a finite number, got {value}"))


def _fine(key: str, value: Any) -> bool:
    """Whether one attribute entry breaks no rule (the quick test of every entry)."""
    if not key or len(key) > MAX_LONG_TEXT:
        return False
    text, numbers = value.text, value.numbers
    if text:
        if numbers or len(text) > MAX_ATTRIBUTE_VALUES:
            return False
        if len(text) == 1:  # (most attributes: a third of the time)
            return 0 < len(text[0]) <= MAX_ATTRIBUTE_TEXT
        return all(0 < len(t) <= MAX_ATTRIBUTE_TEXT for t in text)
    return 0 < len(numbers) <= MAX_ATTRIBUTE_VALUES and all(map(math.isfinite, numbers))


def attribute_violations(attributes: Any, path: str, out: list[FieldViolation]) -> None:
    """Rules for a map<string, CustomAttribute>: key length, one kind of value, sizes.

    One quick pass over the map; only the bad entries are then described, in key
    order (so messages are stable), at a cost linear in the entries.
    """
    if not attributes:
        return
    # (by key, not items(): a map's ItemsView is a Python generator, 0.4 µs more an event)
    bad = [key for key in attributes if not _fine(key, attributes[key])]
    if not bad:
        return
    for key in sorted(bad):
        value = attributes[key]
        where = entry_path(path, key)
        text, numbers = value.text, value.numbers
        if not key:
            out.append(FieldViolation(path, "attribute keys must not be empty"))
        elif len(key) > MAX_LONG_TEXT:
            out.append(FieldViolation(where, f"key must be at most {MAX_LONG_TEXT} characters, "
                                             f"got {len(key)}"))
        if bool(text) == bool(numbers):
            out.append(FieldViolation(where, "exactly one of text or numbers must be set"))
        for name, values in (("text", text), ("numbers", numbers)):
            if len(values) > MAX_ATTRIBUTE_VALUES:
                out.append(too_many(f"{where}.{name}", values, MAX_ATTRIBUTE_VALUES))
        for j, number in enumerate(numbers):
            if not math.isfinite(number):
                out.append(FieldViolation(f"{where}.numbers[{j}]",
                                          f"must be a finite number, got {number}"))
        for j, value_text in enumerate(text):
            if not value_text:
                out.append(FieldViolation(f"{where}.text[{j}]", "must not be empty"))
            elif len(value_text) > MAX_ATTRIBUTE_TEXT:
                out.append(too_long(f"{where}.text[{j}]", value_text, MAX_ATTRIBUTE_TEXT))
