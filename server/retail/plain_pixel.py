"""The event of a browser's pixel of the common shape, read and judged in one pass.

Most pixels carry a small event in the same few fields (what the tracker and
Google's pixel examples send: its type, visitor, page view, products by id; the
browser's facts filled in from its request). The general path decodes the request
(collect.decode_collect_request: protojson's plans, lenient_json), fills the
message from the browser's request and judges it field by field
(validation.user_event_violations): about 150 Python calls, 30 µs of the loop per
pixel. `event` reads such an event from its JSON object straight into the
UserEvent's constructor and checks the few rules its fields can break.

Anything else gives None, and so does anything the general path might refuse: the
general path then decodes, fills and judges it. So a refusal always comes from
the general path, in its words, and an event taken here is the one it would have
made (tests/unit/test_plain_pixel.py holds the two to each other).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
from footfall.retail.v2 import user_event_pb2

from server import json_keys
from server.retail.collect import (
    GET_EVENT_CHARS,
    MAX_ETS_MILLIS,
    MAX_URI_CHARS,
    Requester,
    normal_address,
)
from server.retail.validation import (
    EVENT_TYPES,
    MAX_AHEAD_SECONDS,
    MAX_ID,
    MAX_LONG_TEXT,
    MAX_USER_AGENT,
    NEEDS_PRODUCTS,
    is_ip_address,
)

# The event's top-level string fields read here, by their JSON names (a proto name,
# `visitor_id`, takes the general path), and the rules of each are checked below.
_STRINGS = {"eventType": "event_type", "visitorId": "visitor_id", "sessionId": "session_id",
            "pageViewId": "page_view_id", "uri": "uri", "referrerUri": "referrer_uri"}
_USER_INFO = {"userId": "user_id", "userAgent": "user_agent", "ipAddress": "ip_address"}
# The types with rules about fields not read here (a search's query, a category
# page's categories, a purchase's transaction): the general path judges them.
_OTHER_RULES = frozenset({"search", "category-page-view", "purchase-complete"})
_INT32_MAX = 2**31 - 1


class Plain(NamedTuple):
    """A pixel's event read here, the ids of the products it names (in order), and
    its size serialized."""

    event: user_event_pb2.UserEvent
    product_ids: list[str]
    size: int


def event(request: Any, requester: Requester, now_s: int, stamp: Callable[[], int],
          max_event_bytes: int, strict_event_types: bool) -> Plain | None:
    """The UserEvent the CollectUserEventRequest `request` of a browser's pixel
    carries, filled from `requester` as collect.fill_from_requester fills it, and
    valid (as validation.user_event_violations judges it with `now_s` and
    `strict_event_types`, and within `max_event_bytes`); its time is the request's
    `ets` when given, else `stamp()` (nanoseconds). None for a request of any other
    shape, or one that may break a rule: the general path then reads it, and
    refuses what it must."""
    text = request.user_event
    ets = request.ets
    if request.raw_json or request.prebuilt_rule or not text or len(text) > GET_EVENT_CHARS \
            or text[0] != "{" or len(request.uri) > MAX_URI_CHARS \
            or not 0 <= ets <= MAX_ETS_MILLIS or ets // 1000 > now_s + MAX_AHEAD_SECONDS:
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or json_keys.may_repeat(text, data):
        return None
    fields: dict[str, Any] = {}
    info: dict[str, str] | None = None
    details: list[dict[str, Any]] = []
    for key, value in data.items():
        name = _STRINGS.get(key)
        if name is not None:
            if type(value) is not str:
                return None
            fields[name] = value
        elif key == "productDetails":
            if type(value) is not list:
                return None
            for detail in value:
                product = _product_detail(detail)
                if product is None:
                    return None
                details.append(product)
            fields["product_details"] = details
        elif key == "userInfo":
            info = _user_info(value)
            if info is None:
                return None
        else:
            return None
    kind = fields.get("event_type", "")
    if not _fine_id(kind) or kind in _OTHER_RULES \
            or strict_event_types and kind not in EVENT_TYPES \
            or kind in NEEDS_PRODUCTS and not details \
            or not _fine_id(fields.get("visitor_id", "")) \
            or len(fields.get("session_id", "").encode()) > MAX_ID:
        return None
    # Filled as collect.decode_collect_request and fill_from_requester fill it.
    if requester.user_agent and not (info or {}).get("user_agent"):
        info = info if info is not None else {}
        info["user_agent"] = requester.user_agent[:MAX_USER_AGENT]
    if requester.ip_address and not (info or {}).get("ip_address"):
        address = normal_address(requester.ip_address)
        if address is not None:
            info = info if info is not None else {}
            info["ip_address"] = address
    if info is not None:
        fields["user_info"] = info
    uri = fields.get("uri", "") or request.uri
    if not uri and len(requester.page) <= MAX_LONG_TEXT:
        uri = requester.page
    if len(uri) > MAX_LONG_TEXT:
        return None
    if uri:
        fields["uri"] = uri
    if ets:
        fields["event_time"] = {"seconds": ets // 1000, "nanos": ets % 1000 * 1_000_000}
    else:
        now = stamp()
        fields["event_time"] = {"seconds": now // 10**9, "nanos": now % 10**9}
    try:
        made = user_event_pb2.UserEvent(**fields)
    except (ValueError, TypeError):  # (text protobuf will not take: the general path says why)
        return None
    # (with the server's time, which the general path checks the size without: one at
    # the bound by a few bytes takes the general path, which judges it)
    size = made.ByteSize()
    if size > max_event_bytes:
        return None
    return Plain(made, [detail["product"]["id"] for detail in details], size)


def _fine_id(value: str) -> bool:
    """Whether `value` is a given id that validation.id_violations lets pass."""
    return bool(value) and len(value) <= MAX_ID and "\0" not in value


def _product_detail(detail: Any) -> dict[str, Any] | None:
    """The ProductDetail of `detail`, `{"product": {"id": ...}}` and an optional
    quantity, as constructor arguments; None for any other, or an id it may not have."""
    if type(detail) is not dict:
        return None
    product = detail.get("product")
    if type(product) is not dict or len(product) != 1:
        return None
    product_id = product.get("id")
    if type(product_id) is not str or not _fine_id(product_id):
        return None
    if len(detail) == 1:
        return {"product": {"id": product_id}}
    quantity = detail.get("quantity")
    if len(detail) != 2 or type(quantity) is not int or not -_INT32_MAX - 1 <= quantity \
            <= _INT32_MAX:
        return None
    return {"product": {"id": product_id}, "quantity": {"value": quantity}}  # (an Int32Value)


def _user_info(value: Any) -> dict[str, str] | None:
    """The UserInfo of `value` (its user id, User-Agent and address) as constructor
    arguments; None for any other, or a value one of them may not have."""
    if type(value) is not dict:
        return None
    info: dict[str, str] = {}
    for key, text in value.items():
        name = _USER_INFO.get(key)
        if name is None or type(text) is not str:
            return None
        info[name] = text
    user_id = info.get("user_id", "")
    address = info.get("ip_address", "")
    if user_id and not _fine_id(user_id) or len(info.get("user_agent", "")) > MAX_USER_AGENT \
            or address and not is_ip_address(address):
        return None
    return info
