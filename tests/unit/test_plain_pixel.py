"""The plain pixel path (server.retail.plain_pixel) against the general one: for every
request, the row a browser's pixel is stored as is the same byte for byte whichever
path reads it, and a refused pixel is refused alike (the plain path refuses nothing:
it leaves such pixels to the general path)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from footfall.retail.v2 import product_pb2, user_event_service_pb2

from server.clock import FixedClock
from server.config import Settings
from server.errors import InvalidArgument
from server.retail import plain_pixel
from server.retail.collect import Requester
from server.retail.user_event_service import UserEventService

PARENT = "projects/p/locations/global/catalogs/default_catalog"
NOW_MS = 1_764_950_000_123
BROWSER = Requester(user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
                    ip_address="203.0.113.7", page="https://shop.example/p/1", in_url=True)
VIEW = {"eventType": "detail-page-view", "visitorId": "visitor-1",
        "productDetails": [{"product": {"id": "sku-1"}}]}
HOME = {"eventType": "home-page-view", "visitorId": "v-2", "pageViewId": "pv-1"}


class _Store:
    """What collect_queued queues, made into rows as the writer makes them, with the
    catalog's `products` (by id)."""

    def __init__(self, products: dict[str, Any]) -> None:
        self.rows: list[Any] = []
        self._products = products

    def queue_joined(self, join: Any, through_outage: bool = False) -> None:
        self.rows.append(join.finish({i: self._products[i] for i in join.product_ids
                                      if i in self._products}))

    def write_user_events(self, rows: list[Any], wait: bool,
                          through_outage: bool = False) -> None:
        self.rows.extend(rows)


def _service(products: dict[str, Any] | None = None,
             **settings: Any) -> tuple[UserEventService, _Store]:
    store = _Store(products or {})
    service = UserEventService(store, Settings(**settings),  # type: ignore[arg-type]
                               FixedClock(NOW_MS * 1_000_000), runner=None)  # type: ignore[arg-type]
    return service, store


def _collected(plain: bool, fields: dict[str, Any], requester: Requester | None,
               settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
               products: dict[str, Any] | None = None) -> Any:
    """The stored row of the pixel (as_params, but when it was received), or the
    InvalidArgument refusing it; `plain`: the plain path may take it; `products`: the
    catalog's, joined by the writer."""
    service, store = _service(products, **settings)
    request = user_event_service_pb2.CollectUserEventRequest(**{"parent": PARENT, **fields})
    with monkeypatch.context() as patch:
        if not plain:
            patch.setattr(plain_pixel, "event", lambda *args: None)
        try:
            service.collect_queued(request, requester)
        except InvalidArgument as refusal:
            return refusal
    (row,) = store.rows
    return replace(row, received_us=0).as_params()


def _both(fields: dict[str, Any], requester: Requester | None = BROWSER,
          monkeypatch: pytest.MonkeyPatch | None = None, **settings: Any) -> tuple[Any, Any]:
    assert monkeypatch is not None
    return (_collected(True, fields, requester, settings, monkeypatch),
            _collected(False, fields, requester, settings, monkeypatch))


def _event(event: dict[str, Any]) -> dict[str, Any]:
    return {"user_event": json.dumps(event)}


# Pixels of the shape the plain path reads: it takes each.
COMMON = {
    "the bench's": _event({**VIEW, "uri": "https://shop.example/p/1"}),
    "the tracker's, with ets": {**_event(HOME), "ets": NOW_MS - 5},
    "no uri: the Referer's": _event(VIEW),
    "the request's uri": {**_event(HOME), "uri": "https://shop.example/from-uri"},
    "a cart's, quantity and session": _event({
        "eventType": "add-to-cart", "visitorId": "v", "sessionId": "s-1",
        "referrerUri": "https://search.example/", "productDetails": [
            {"product": {"id": "a"}, "quantity": 2}, {"product": {"id": "b"}, "quantity": 0},
            {"product": {"id": "a"}, "quantity": -1}]}),
    "its own user info": _event({**HOME, "userInfo": {
        "userId": "u-1", "userAgent": "own agent", "ipAddress": "2001:db8::1"}}),
    "user info given empty": _event({**HOME, "userInfo": {}}),
    "user info fields given empty": _event({**HOME, "userInfo": {
        "userAgent": "", "ipAddress": "", "userId": ""}}),
    "a custom type": _event({**HOME, "eventType": "my-own-kind"}),
    "no products": _event({**HOME, "productDetails": []}),
    "text beyond ASCII": _event({**VIEW, "visitorId": "visitör-ü-東京",
                                 "pageViewId": "\u00e9\U0001f600"}),
    "ids at their bound": _event({**VIEW, "visitorId": "v" * 128, "sessionId": "s" * 128,
                                  "productDetails": [{"product": {"id": "p" * 128}}]}),
    "ets at the bound ahead": {**_event(HOME), "ets": NOW_MS + 86_400_000 - 123},
    "an empty uri given": _event({**HOME, "uri": ""}),
}


@pytest.mark.parametrize("fields", COMMON.values(), ids=COMMON.keys())
def test_a_common_pixel_takes_the_plain_path_and_is_stored_as_by_the_general_one(
        fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    taken = []
    event = plain_pixel.event

    def spied(*args: Any) -> Any:
        taken.append(event(*args))
        return taken[-1]

    monkeypatch.setattr(plain_pixel, "event", spied)
    plain = _collected(True, fields, BROWSER, {}, monkeypatch)
    monkeypatch.undo()
    general = _collected(False, fields, BROWSER, {}, monkeypatch)
    assert taken and taken[0] is not None
    assert not isinstance(general, InvalidArgument), general
    assert plain == general


CATALOG = {pid: product_pb2.Product(
    name=f"{PARENT}/branches/0/products/{pid}", id=pid, title=f"Product {pid}",
    categories=["Socks"], price_info={"price": 4.5, "currency_code": "EUR"})
    for pid in ("sku-1", "a", "b", "p" * 128)}


@pytest.mark.parametrize("fields", COMMON.values(), ids=COMMON.keys())
def test_a_common_pixel_joined_with_the_catalog_is_stored_alike(
        fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _collected(True, fields, BROWSER, {}, monkeypatch, CATALOG)
    general = _collected(False, fields, BROWSER, {}, monkeypatch, CATALOG)
    assert not isinstance(general, InvalidArgument), general
    assert plain == general


REQUESTERS = {
    "none": None,
    "nothing known": Requester(in_url=True),
    "an address no parser takes": replace(BROWSER, ip_address="not-an-address"),
    "a long agent": replace(BROWSER, user_agent="a" * 1_500),
    "a long Referer": replace(BROWSER, page="https://shop.example/" + "p" * 5_000),
    "an address to normalise": replace(BROWSER, ip_address="2001:DB8:0:0::1"),
}


@pytest.mark.parametrize("requester", REQUESTERS.values(), ids=REQUESTERS.keys())
@pytest.mark.parametrize("fields", [COMMON["the bench's"], COMMON["no uri: the Referer's"],
                                    COMMON["its own user info"]], ids=["uri", "Referer", "own"])
def test_the_browser_fills_in_alike(fields: dict[str, Any], requester: Requester | None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    plain, general = _both(fields, requester, monkeypatch)
    assert not isinstance(general, InvalidArgument), general
    assert plain == general


# Pixels the plain path leaves to the general one, which stores them.
UNUSUAL = {
    "proto names": _event({"event_type": "home-page-view", "visitor_id": "v"}),
    "its own time": _event({**HOME, "eventTime": "2025-01-01T00:00:00Z"}),
    "attributes": _event({**HOME, "attributes": {"k": {"text": ["v"]}}}),
    "URL-encoded": {"user_event": quote(json.dumps(HOME))},
    "white space first": {"user_event": " " + json.dumps(HOME)},
    "one experiment id, not a list": _event({**HOME, "experimentIds": "e"}),
    "raw_json": {"raw_json": json.dumps(HOME)},
    "a price": _event({**VIEW, "productDetails": [
        {"product": {"id": "a", "priceInfo": {"price": 2.5, "currencyCode": "EUR"}}}]}),
    "a search": _event({"eventType": "search", "visitorId": "v", "searchQuery": "socks"}),
    "a quantity as text": _event({**VIEW, "productDetails": [
        {"product": {"id": "a"}, "quantity": "2"}]}),
    "direct user request": _event({**HOME, "userInfo": {"directUserRequest": True}}),
    "a purchase": _event({"eventType": "purchase-complete", "visitorId": "v",
                          "productDetails": [{"product": {"id": "a"}}],
                          "purchaseTransaction": {"revenue": 3, "currencyCode": "USD"}}),
    "a category page": _event({"eventType": "category-page-view", "visitorId": "v",
                               "pageCategories": ["Shoes"]}),
    "a null": _event({**HOME, "sessionId": None}),
}

# Pixels refused, and the field the refusal names first.
REFUSED = {
    "no type": (_event({"visitorId": "v"}), "user_event.event_type"),
    "a NUL in the type": (_event({**HOME, "eventType": "a\0b"}), "user_event.event_type"),
    "a long type": (_event({**HOME, "eventType": "t" * 129}), "user_event.event_type"),
    "no visitor": (_event({"eventType": "home-page-view"}), "user_event.visitor_id"),
    "a long visitor": (_event({**HOME, "visitorId": "v" * 129}), "user_event.visitor_id"),
    "a NUL in the visitor": (_event({**HOME, "visitorId": "v\0"}), "user_event.visitor_id"),
    "a visitor not text": (_event({**HOME, "visitorId": 5}), "user_event.visitor_id"),
    "a session of 130 bytes": (_event({**HOME, "sessionId": "\u00e9" * 65}),
                               "user_event.session_id"),
    "a view of no product": (_event({**VIEW, "productDetails": []}),
                             "user_event.product_details"),
    "an empty product id": (_event({**VIEW, "productDetails": [{"product": {"id": ""}}]}),
                            "user_event.product_details[0].product.id"),
    "a product of no id": (_event({**VIEW, "productDetails": [{"product": {}}]}),
                           "user_event.product_details[0].product.id"),
    "a long product id": (_event({**VIEW, "productDetails": [{"product": {"id": "p" * 129}}]}),
                          "user_event.product_details[0].product.id"),
    "a quantity past int32": (_event({**VIEW, "productDetails": [
        {"product": {"id": "a"}, "quantity": 2**31}]}),
        "user_event.product_details[0].quantity"),
    "a long user id": (_event({**HOME, "userInfo": {"userId": "u" * 129}}),
                       "user_event.user_info.user_id"),
    "a long agent": (_event({**HOME, "userInfo": {"userAgent": "a" * 1_001}}),
                     "user_event.user_info.user_agent"),
    "no address": (_event({**HOME, "userInfo": {"ipAddress": "999.1.1.1"}}),
                   "user_event.user_info.ip_address"),
    "a long uri": (_event({**HOME, "uri": "https://shop.example/" + "u" * 5_000}),
                   "user_event.uri"),
    "a long uri in the request": ({**_event(HOME), "uri": "u" * 5_001}, "uri"),
    "a negative ets": ({**_event(HOME), "ets": -1}, "ets"),
    "an ets past the year 9999": ({**_event(HOME), "ets": 253_402_300_800_000}, "ets"),
    "an ets two days ahead": ({**_event(HOME), "ets": NOW_MS + 2 * 86_400_000}, "ets"),
    "a key given twice": ({"user_event": '{"eventType": "home-page-view", "visitorId": "a", '
                                         '"visitorId": "b"}'}, "user_event"),
    "no JSON": ({"user_event": '{"eventType": '}, "user_event"),
    "a list": ({"user_event": "[]"}, "user_event"),
    "over 16 KiB": (_event({**HOME, "pageViewId": "p" * 16_400}), "user_event"),
    "a cart id on a view": (_event({**VIEW, "cartId": "c"}), "user_event.cart_id"),
    "a bad parent": ({**_event(HOME), "parent": "projects/p"}, "parent"),
    "an unknown rule": ({**_event(HOME), "prebuilt_rule": "ga4_bq"}, "prebuilt_rule"),
    "no event": ({}, "user_event"),
}


@pytest.mark.parametrize("fields", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_an_unusual_pixel_takes_the_general_path(fields: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    service, _ = _service()
    request = user_event_service_pb2.CollectUserEventRequest(parent=PARENT, **fields)
    assert service._plain(request, BROWSER) is None
    plain, general = _both(fields, BROWSER, monkeypatch)
    assert not isinstance(general, InvalidArgument), general
    assert plain == general


@pytest.mark.parametrize(("fields", "field"), REFUSED.values(), ids=REFUSED.keys())
def test_a_pixel_is_refused_alike_whichever_path_reads_it(
        fields: dict[str, Any], field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plain, general = _both(fields, BROWSER, monkeypatch)
    assert isinstance(general, InvalidArgument), general
    assert general.violations[0].field == field
    assert isinstance(plain, InvalidArgument)
    assert plain.violations == general.violations


@pytest.mark.parametrize("settings", [{"strict_event_types": True}, {"max_event_bytes": 150}],
                         ids=["strict types", "small events"])
def test_the_servers_own_bounds_are_applied_alike(settings: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a custom type and an event of 150-odd bytes (with the browser's facts): refused
    # under these settings; Google's type and a smaller one are not
    refused = _event({**VIEW, "eventType": "my-own-kind", "pageViewId": "p" * 40})
    plain, general = _both(refused, BROWSER, monkeypatch, **settings)
    assert isinstance(general, InvalidArgument), general
    assert isinstance(plain, InvalidArgument)
    assert plain.violations == general.violations
    taken = _event(VIEW)
    plain, general = _both(taken, Requester(in_url=True), monkeypatch, **settings)
    assert not isinstance(general, InvalidArgument), general
    assert plain == general
