"""Realistic events, one per type, in the proto3 JSON shape Google's docs use.

Modelled on the sample payloads of Google's "About user events" and "Record
real-time user events" pages (same fields per type), with content of our own:
an outdoor-gear shop. Every example is valid; validation tests break one rule
at a time on a copy.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from google.cloud import retail_v2
from google.protobuf import json_format

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0.0.0 Safari/537.36")
SAFARI_IOS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
              "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")

_VISITOR = "GA1.2.1849301823.1716211200"
_SHOPPER = {"userId": "cust-000884213", "ipAddress": "203.0.113.45", "userAgent": CHROME,
            "directUserRequest": True}

# Google's event types (the published contract's list plus the ones Google's
# service documents elsewhere); each one's rules are in the validation tests.
GOOGLE_EVENTS: dict[str, dict[str, Any]] = {
    "home-page-view": {
        "eventType": "home-page-view",
        "visitorId": _VISITOR,
        "sessionId": f"{_VISITOR}-s1",
        "userInfo": _SHOPPER,
        "uri": "https://shop.example.com/",
        "referrerUri": "https://www.google.com/",
        "pageViewId": "pv-7d1c2a90",
        "experimentIds": ["home-hero-b"],
        "attributes": {"traffic_channel": {"text": ["organic"]}},
    },
    "category-page-view": {
        "eventType": "category-page-view",
        "visitorId": _VISITOR,
        "sessionId": f"{_VISITOR}-s1",
        "userInfo": _SHOPPER,
        "pageCategories": ["Camping > Tents > Backpacking Tents"],
        "filter": 'brands: ANY("Northpeak") AND price: IN(100.0e, 400.0e)',
        "uri": "https://shop.example.com/c/camping/tents/backpacking",
        "pageViewId": "pv-7d1c2a91",
    },
    "search": {
        "eventType": "search",
        "visitorId": _VISITOR,
        "sessionId": f"{_VISITOR}-s1",
        "userInfo": _SHOPPER,
        "searchQuery": "ultralight 2 person tent",
        "filter": 'availability: ANY("IN_STOCK")',
        "orderBy": "price desc",
        "offset": 24,
        "attributionToken": "srch-tok-5b2e90c1",
        "productDetails": [{"product": {"id": "TENT-2P-ULTRA"}},
                           {"product": {"id": "TENT-2P-TRAIL"}},
                           {"product": {"id": "TARP-SIL-3X3"}}],
        "uri": "https://shop.example.com/search?q=ultralight+2+person+tent&page=2",
    },
    "detail-page-view": {
        "eventType": "detail-page-view",
        "visitorId": _VISITOR,
        "sessionId": f"{_VISITOR}-s1",
        "userInfo": _SHOPPER,
        "attributionToken": "rec-tok-0c9d44e2",
        "experimentIds": ["pdp-gallery-a"],
        "productDetails": [{"product": {"id": "TENT-2P-ULTRA"}}],
        "uri": "https://shop.example.com/p/TENT-2P-ULTRA",
        "referrerUri": "https://shop.example.com/search?q=ultralight+2+person+tent",
        "pageViewId": "pv-7d1c2a92",
    },
    "add-to-cart": {
        "eventType": "add-to-cart",
        "visitorId": _VISITOR,
        "sessionId": f"{_VISITOR}-s1",
        "userInfo": _SHOPPER,
        "cartId": "cart-5521",
        "attributionToken": "rec-tok-0c9d44e2",
        "productDetails": [{"product": {"id": "TENT-2P-ULTRA"}, "quantity": 1},
                           {"product": {"id": "STAKE-TI-6PK"}, "quantity": 2}],
        "uri": "https://shop.example.com/p/TENT-2P-ULTRA",
    },
    "remove-from-cart": {
        "eventType": "remove-from-cart",
        "visitorId": _VISITOR,
        "sessionId": f"{_VISITOR}-s1",
        "userInfo": _SHOPPER,
        "productDetails": [{"product": {"id": "STAKE-TI-6PK"}, "quantity": 1}],
        "uri": "https://shop.example.com/cart",
    },
    "shopping-cart-page-view": {
        "eventType": "shopping-cart-page-view",
        "visitorId": _VISITOR,
        "sessionId": f"{_VISITOR}-s1",
        "userInfo": _SHOPPER,
        "cartId": "cart-5521",
        "productDetails": [{"product": {"id": "TENT-2P-ULTRA"}, "quantity": 1},
                           {"product": {"id": "STAKE-TI-6PK"}, "quantity": 1}],
        "uri": "https://shop.example.com/cart",
    },
    "purchase-complete": {
        "eventType": "purchase-complete",
        "visitorId": _VISITOR,
        "sessionId": f"{_VISITOR}-s1",
        "userInfo": _SHOPPER,
        "cartId": "cart-5521",
        "productDetails": [{"product": {"id": "TENT-2P-ULTRA"}, "quantity": 1},
                           {"product": {"id": "STAKE-TI-6PK"}, "quantity": 1}],
        # Float fields are float32 on the wire: values chosen to be exact.
        "purchaseTransaction": {"id": "ORD-2024-000123", "revenue": 412.5, "tax": 32.75,
                                "cost": 198.25, "currencyCode": "USD"},
        "uri": "https://shop.example.com/checkout/thank-you",
        "attributes": {"payment_method": {"text": ["card"]},
                       "shipping_days": {"numbers": [3]}},
    },
    "promotion-offered": {
        "eventType": "promotion-offered",
        "visitorId": _VISITOR,
        "productDetails": [{"product": {"id": "TENT-2P-ULTRA"}}],
        "attributes": {"promotion_id": {"text": ["SPRING-OUTDOOR-15"]}},
        "uri": "https://shop.example.com/p/TENT-2P-ULTRA",
    },
    "promotion-not-offered": {
        "eventType": "promotion-not-offered",
        "visitorId": _VISITOR,
        "productDetails": [{"product": {"id": "TENT-2P-TRAIL"}}],
        "uri": "https://shop.example.com/p/TENT-2P-TRAIL",
    },
}

# Types Google's service does not know; accepted unless --strict-event-types.
CUSTOM_EVENTS: dict[str, dict[str, Any]] = {
    # (Google records an autocomplete click as a search event with a completionDetail)
    "completion": {
        "eventType": "completion",
        "visitorId": _VISITOR,
        "completionDetail": {"completionAttributionToken": "cmpl-tok-11aa",
                             "selectedSuggestion": "ultralight tent",
                             "selectedPosition": 2},
        "uri": "https://shop.example.com/",
    },
    "page-view": {
        "eventType": "page-view",
        "visitorId": "GA1.2.99120034.1716300000",
        "userInfo": {"ipAddress": "2001:db8:85a3::8a2e:370:7334", "userAgent": SAFARI_IOS},
        "uri": "https://shop.example.com/help/returns",
        "pageViewId": "pv-a0b1",
    },
    "login": {
        "eventType": "login",
        "visitorId": "GA1.2.99120034.1716300000",
        "sessionId": "GA1.2.99120034.1716300000-s4",
        "userInfo": {"userId": "cust-000912001", "userAgent": SAFARI_IOS},
        "attributes": {"method": {"text": ["password"]}},
    },
    "signup": {
        "eventType": "signup",
        "visitorId": "GA1.2.99120034.1716300000",
        "userInfo": {"userId": "cust-000912002"},
        "attributes": {"newsletter": {"text": ["yes"]}, "age_bracket": {"numbers": [35]}},
        "uri": "https://shop.example.com/account/new",
    },
}

ALL_EVENTS = {**GOOGLE_EVENTS, **CUSTOM_EVENTS}


def example(event_type: str, **changes: Any) -> dict[str, Any]:
    """A deep copy of the example of `event_type` with top-level `changes`;
    a change to None deletes the key."""
    event = copy.deepcopy(ALL_EVENTS[event_type])
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def user_event(data: dict[str, Any]) -> retail_v2.UserEvent:
    """The official client's message for proto3 JSON `data`."""
    return retail_v2.UserEvent.from_json(json.dumps(data))


def as_json(event: retail_v2.UserEvent) -> dict[str, Any]:
    """proto3 JSON (camelCase, defaults omitted) of an official-client message."""
    return json_format.MessageToDict(retail_v2.UserEvent.pb(event))
