"""Google's rules for a UserEvent, each proven through the official client.

Every refusal is INVALID_ARGUMENT whose message names the field path
(`user_event.visitor_id: ...`) and which carries a google.rpc.BadRequest detail
listing exactly the broken fields. Each case breaks one rule of a valid example.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import retail_v2
from google.rpc import error_details_pb2, status_pb2

from .examples import GOOGLE_EVENTS, example, user_event
from .support import (
    RPC_DEADLINE,
    Expected,
    MapEntry,
    ServerProcess,
    assert_names_fields,
    count_events,
    retail_async_client,
    retail_client,
    running_server,
    sqlite_url,
)

U = "user_event"
TRANSACTION = {"id": "ORD-1", "revenue": 19.5, "currencyCode": "EUR"}
TWO_BYTE, THREE_BYTE = "é", "€"  # UTF-8 sizes 2 and 3: session_id counts bytes


def case(name: str, event_type: str, changes: dict[str, Any],
         fields: Sequence[Expected]) -> Any:
    return pytest.param(event_type, changes, list(fields), id=name)


def url(length: int) -> str:
    """A URL of exactly `length` characters."""
    base = "https://shop.example.com/p/"
    return base + "x" * (length - len(base))


REFUSED = [
    case("event_type-missing", "home-page-view", {"eventType": None}, [f"{U}.event_type"]),
    case("visitor_id-missing", "home-page-view", {"visitorId": None}, [f"{U}.visitor_id"]),
    case("visitor_id-129-chars", "home-page-view", {"visitorId": "v" * 129},
         [f"{U}.visitor_id"]),
    case("visitor_id-129-multibyte-chars", "search", {"visitorId": TWO_BYTE * 129},
         [f"{U}.visitor_id"]),
    case("session_id-129-bytes", "home-page-view", {"sessionId": "s" * 129},
         [f"{U}.session_id"]),
    case("session_id-65-chars-130-bytes", "home-page-view", {"sessionId": TWO_BYTE * 65},
         [f"{U}.session_id"]),
    case("session_id-43-chars-129-bytes", "detail-page-view", {"sessionId": THREE_BYTE * 43},
         [f"{U}.session_id"]),
    case("user_id-129", "home-page-view", {"userInfo": {"userId": "u" * 129}},
         [f"{U}.user_info.user_id"]),
    case("user_agent-1001", "home-page-view", {"userInfo": {"userAgent": "a" * 1001}},
         [f"{U}.user_info.user_agent"]),
    *(case(f"ip_address-{label}", "home-page-view", {"userInfo": {"ipAddress": ip}},
           [f"{U}.user_info.ip_address"])
      for label, ip in [("octet-256", "256.10.0.1"), ("three-octets", "203.0.113"),
                        ("words", "localhost"), ("bad-ipv6", "2001:db8::zz"),
                        ("with-port", "203.0.113.45:8080")]),
    *(case(f"{kind}-without-products", kind, {"productDetails": None},
           [f"{U}.product_details"])
      for kind in ("detail-page-view", "add-to-cart", "purchase-complete")),
    case("product-without-id", "add-to-cart",
         {"productDetails": [{"product": {"id": "TENT-2P-ULTRA"}, "quantity": 1},
                             {"product": {"title": "Tent stakes"}, "quantity": 2}]},
         [f"{U}.product_details[1].product.id"]),
    case("product-id-129", "detail-page-view", {"productDetails": [{"product": {"id": "p" * 129}}]},
         [f"{U}.product_details[0].product.id"]),
    case("purchase-without-transaction", "purchase-complete", {"purchaseTransaction": None},
         [f"{U}.purchase_transaction"]),
    case("revenue-zero", "purchase-complete",
         {"purchaseTransaction": {**TRANSACTION, "revenue": 0}},
         [f"{U}.purchase_transaction.revenue"]),
    case("revenue-nan", "purchase-complete",
         {"purchaseTransaction": {**TRANSACTION, "revenue": "NaN"}},
         [f"{U}.purchase_transaction.revenue"]),
    *(case(f"currency-{label}", "purchase-complete",
           {"purchaseTransaction": {**TRANSACTION, "currencyCode": code}},
           [f"{U}.purchase_transaction.currency_code"])
      for label, code in [("missing", ""), ("two-letters", "US"), ("word", "DOLLAR"),
                          ("not-iso", "XYZ"), ("symbol", "$")]),
    # a product's price in an event: "usd" or "XYZ" stood as currencies of their own in
    # the insights' revenue
    *(case(f"product-currency-{label}", "add-to-cart",
           {"productDetails": [{"product": {"id": "TENT-2P-ULTRA", "priceInfo": {
               "price": 5, "currencyCode": code}}, "quantity": 1}]},
           [f"{U}.product_details[0].product.price_info.currency_code"])
      for label, code in [("lower-case", "usd"), ("not-iso", "XYZ")]),
    # PriceInfo's own rule, for an event's override as for a catalog's price
    case("product-original-price-below-price", "add-to-cart",
         {"productDetails": [{"product": {"id": "TENT-2P-ULTRA", "priceInfo": {
             "price": 30, "originalPrice": 20, "currencyCode": "EUR"}}, "quantity": 1}]},
         [f"{U}.product_details[0].product.price_info.original_price"]),
    case("transaction-id-129", "purchase-complete",
         {"purchaseTransaction": {**TRANSACTION, "id": "o" * 129}},
         [f"{U}.purchase_transaction.id"]),
    *(case(f"transaction-on-{kind}", kind, {"purchaseTransaction": TRANSACTION},
           [f"{U}.purchase_transaction"])
      for kind in ("detail-page-view", "add-to-cart", "login")),
    case("search-without-query-or-categories", "search", {"searchQuery": None},
         [f"{U}.search_query"]),
    case("category-page-view-without-categories", "category-page-view",
         {"pageCategories": None}, [f"{U}.page_categories"]),
    case("search_query-on-home-page-view", "home-page-view", {"searchQuery": "tent"},
         [f"{U}.search_query"]),
    case("search_query-on-category-page-view", "category-page-view", {"searchQuery": "tent"},
         [f"{U}.search_query"]),
    case("order_by-on-category-page-view", "category-page-view", {"orderBy": "price desc"},
         [f"{U}.order_by"]),
    case("offset-on-detail-page-view", "detail-page-view", {"offset": 10}, [f"{U}.offset"]),
    case("negative-offset", "search", {"offset": -1}, [f"{U}.offset"]),
    case("filter-1001", "category-page-view", {"filter": "f" * 1001}, [f"{U}.filter"]),
    case("order_by-1001", "search", {"orderBy": "o" * 1001}, [f"{U}.order_by"]),
    case("search_query-5001", "search", {"searchQuery": "q" * 5001}, [f"{U}.search_query"]),
    case("uri-5001", "home-page-view", {"uri": url(5001)}, [f"{U}.uri"]),
    # Google: "Other event types should not set this field. Otherwise, an
    # INVALID_ARGUMENT error is returned." (as for search_query)
    *(case(f"page_categories-on-{kind}", kind, {"pageCategories": ["Sales > Black Friday"]},
           [f"{U}.page_categories"])
      for kind in ("home-page-view", "detail-page-view", "add-to-cart")),
    case("attribute-key-5001", "home-page-view", {"attributes": {"k" * 5001: {"text": ["x"]}}},
         [MapEntry(f"{U}.attributes", "k" * 5001)]),
    case("attribute-text-and-numbers", "home-page-view",
         {"attributes": {"color": {"text": ["red"], "numbers": [3]}}},
         [MapEntry(f"{U}.attributes", "color")]),
    case("attribute-neither-text-nor-numbers", "signup",
         {"attributes": {"newsletter": {}}}, [MapEntry(f"{U}.attributes", "newsletter")]),
    case("attribute-empty-text-value", "home-page-view",
         {"attributes": {"color": {"text": ["red", ""]}}}, [MapEntry(f"{U}.attributes", "color")]),
    case("attribute-text-value-257", "home-page-view",
         {"attributes": {"color": {"text": ["c" * 257]}}}, [MapEntry(f"{U}.attributes", "color")]),
    case("attribute-401-text-values", "home-page-view",
         {"attributes": {"tags": {"text": [f"t{i}" for i in range(401)]}}},
         [MapEntry(f"{U}.attributes", "tags")]),
    case("attribute-401-numbers", "home-page-view",
         {"attributes": {"sizes": {"numbers": list(range(401))}}},
         [MapEntry(f"{U}.attributes", "sizes")]),
    *(case(f"cart_id-on-{kind}", kind, {"cartId": "cart-5521"}, [f"{U}.cart_id"])
      for kind in ("detail-page-view", "search", "remove-from-cart", "home-page-view")),
]

ACCEPTED = [
    case("visitor_id-128-multibyte-chars", "home-page-view", {"visitorId": TWO_BYTE * 128}, []),
    case("session_id-64-chars-128-bytes", "home-page-view", {"sessionId": TWO_BYTE * 64}, []),
    case("session_id-128-bytes", "home-page-view", {"sessionId": "s" * 128}, []),
    case("user_id-128", "home-page-view", {"userInfo": {"userId": "u" * 128}}, []),
    case("user_agent-1000", "home-page-view", {"userInfo": {"userAgent": "a" * 1000}}, []),
    case("ipv6", "home-page-view", {"userInfo": {"ipAddress": "2001:db8::8a2e:370:7334"}}, []),
    case("ipv4", "home-page-view", {"userInfo": {"ipAddress": "192.0.2.10"}}, []),
    case("transaction-id-128", "purchase-complete",
         {"purchaseTransaction": {**TRANSACTION, "id": "o" * 128}}, []),
    case("search-with-categories-only", "search",
         {"searchQuery": None, "pageCategories": ["Camping > Tents"]}, []),
    case("offset-zero", "search", {"offset": 0}, []),
    case("filter-1000", "category-page-view", {"filter": "f" * 1000}, []),
    case("order_by-1000", "search", {"orderBy": "o" * 1000}, []),
    case("search_query-5000", "search", {"searchQuery": "q" * 5000}, []),
    case("uri-5000", "home-page-view", {"uri": url(5000)}, []),
    # Google documents no limit for referrer_uri (5,000 is uri's)
    case("referrer_uri-20000", "detail-page-view", {"referrerUri": url(20000)}, []),
    case("page_categories-on-category-page-view", "category-page-view",
         {"pageCategories": ["Sales > Black Friday"]}, []),
    case("attribute-key-5000", "home-page-view",
         {"attributes": {"k" * 5000: {"numbers": [1]}}}, []),
    case("product-id-128", "detail-page-view",
         {"productDetails": [{"product": {"id": "p" * 128}}]}, []),
    case("attribute-400-values-of-256", "home-page-view",
         {"attributes": {"tags": {"text": ["t" * 256] * 400},
                         "sizes": {"numbers": list(range(400))}}}, []),
    *(case(f"cart_id-on-{kind}", kind, {"cartId": "cart-5521"}, [])
      for kind in ("add-to-cart", "purchase-complete", "shopping-cart-page-view")),
]

BAD_PARENTS = [
    pytest.param("", id="empty"),
    pytest.param("projects/p/locations/global", id="no-catalog"),
    pytest.param("projects/p/locations/global/catalogs/", id="empty-catalog-id"),
    pytest.param("projects/p/catalogs/default_catalog", id="no-location"),
    pytest.param("projects/p/locations/global/catalogs/default_catalog/branches/0",
                 id="branch"),
    pytest.param("catalogs/default_catalog", id="bare-catalog"),
    pytest.param("projects//locations/global/catalogs/default_catalog", id="empty-project"),
]


def write(client: Any, parent: str, event: Any) -> retail_v2.UserEvent:
    return client.write_user_event(request={"parent": parent, "user_event": event},
                                   timeout=RPC_DEADLINE)


def refusal(client: Any, parent: str, event: Any) -> exceptions.GoogleAPICallError:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        write(client, parent, event)
    return refused.value


@pytest.mark.parametrize(("event_type", "changes", "fields"), REFUSED)
def test_each_rule_is_refused_naming_the_field(retail: retail_v2.UserEventServiceClient,
                                               catalog: str, event_type: str,
                                               changes: dict[str, Any],
                                               fields: list[Expected]) -> None:
    event = user_event(example(event_type, **changes))
    assert_names_fields(refusal(retail, catalog, event), fields)


@pytest.mark.parametrize(("event_type", "changes", "fields"), ACCEPTED)
def test_limits_themselves_are_accepted(retail: retail_v2.UserEventServiceClient, catalog: str,
                                        event_type: str, changes: dict[str, Any],
                                        fields: list[Expected]) -> None:
    sent = user_event(example(event_type, **changes))
    assert write(retail, catalog, sent).visitor_id == sent.visitor_id


@pytest.mark.parametrize("parent", BAD_PARENTS)
def test_parent_must_be_a_catalog(retail: retail_v2.UserEventServiceClient,
                                  parent: str) -> None:
    error = refusal(retail, parent, user_event(example("home-page-view")))
    assert_names_fields(error, ["parent"])
    assert "projects/*/locations/*/catalogs/*" in error.message


def test_every_violation_is_reported_in_one_error(
        retail: retail_v2.UserEventServiceClient) -> None:
    event = user_event(example(
        "add-to-cart", visitorId=None, sessionId=THREE_BYTE * 50, productDetails=None,
        userInfo={"userId": "u" * 200, "userAgent": "a" * 1001, "ipAddress": "999.0.0.1"},
        searchQuery="tent", offset=-3, purchaseTransaction=TRANSACTION,
        uri="u" * 5001, attributes={"both": {"text": ["a"], "numbers": [1]}}))
    error = refusal(retail, "projects/p/catalogs/c", event)
    assert_names_fields(error, [
        "parent", f"{U}.visitor_id", f"{U}.session_id", f"{U}.user_info.user_id",
        f"{U}.user_info.user_agent", f"{U}.user_info.ip_address", f"{U}.product_details",
        f"{U}.search_query", f"{U}.offset", f"{U}.purchase_transaction", f"{U}.uri",
        MapEntry(f"{U}.attributes", "both"),
    ])


def test_the_detail_travels_as_grpc_status_details_bin(
        retail: retail_v2.UserEventServiceClient, catalog: str) -> None:
    """What api_core decodes for `exc.details` is on the wire as a google.rpc.Status."""
    error = refusal(retail, catalog, user_event(example("home-page-view", visitorId=None)))
    trailers = dict(error.response.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == 3 and status.message == error.message
    [packed] = status.details
    bad_request = error_details_pb2.BadRequest()
    assert packed.Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == [f"{U}.visitor_id"]


def test_missing_user_event_and_bad_parent_together(
        retail: retail_v2.UserEventServiceClient) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.write_user_event(request={"parent": "default_catalog"}, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["parent", "user_event"])


def test_refused_writes_store_nothing(retail: retail_v2.UserEventServiceClient, catalog: str,
                                      server: ServerProcess) -> None:
    """Every refused case goes to one catalog; only the one valid event is there after."""
    for param in REFUSED:
        event_type, changes, _ = param.values
        refusal(retail, catalog, user_event(example(event_type, **changes)))
    write(retail, catalog, user_event(example("home-page-view")))
    assert count_events(server.store, catalog, server.workdir) == 1


def test_async_client_sees_the_same_refusal(server: ServerProcess, catalog: str,
                                            run: Any) -> None:
    async def scenario() -> BaseException:
        async with retail_async_client(server.address) as client:
            with pytest.raises(exceptions.InvalidArgument) as refused:
                await client.write_user_event(
                    request={"parent": catalog, "user_event": user_event(example(
                        "purchase-complete", purchaseTransaction={**TRANSACTION,
                                                                  "currencyCode": "EURO"}))},
                    timeout=RPC_DEADLINE)
            return refused.value

    assert_names_fields(run(scenario()), [f"{U}.purchase_transaction.currency_code"])


# -- --strict-event-types ------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("strict-server")
    with running_server(workdir, sqlite_url(workdir / "events.db"),
                        "--strict-event-types") as running:
        yield running


@pytest.fixture(scope="module")
def strict_retail(strict: ServerProcess) -> Iterator[retail_v2.UserEventServiceClient]:
    with retail_client(strict.address) as client:
        yield client


@pytest.mark.parametrize("event_type", ["page-view", "login", "signup", "Home-Page-View",
                                        "completion"])
def test_strict_server_refuses_custom_types_listing_the_allowed(
        strict_retail: retail_v2.UserEventServiceClient, catalog: str, strict: ServerProcess,
        event_type: str) -> None:
    event = user_event(example("home-page-view", eventType=event_type))
    error = refusal(strict_retail, catalog, event)
    assert_names_fields(error, [f"{U}.event_type"])
    for allowed in GOOGLE_EVENTS:
        assert allowed in error.message
    assert count_events(strict.store, catalog, strict.workdir) == 0


def test_strict_server_refuses_a_custom_type_collected_too(
        strict_retail: retail_v2.UserEventServiceClient, catalog: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        strict_retail.collect_user_event(
            request={"parent": catalog,
                     "user_event": json.dumps(example("page-view"))}, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, [f"{U}.event_type"])


@pytest.mark.parametrize("event_type", list(GOOGLE_EVENTS))
def test_strict_server_accepts_google_types(strict_retail: retail_v2.UserEventServiceClient,
                                            catalog: str, event_type: str) -> None:
    got = write(strict_retail, catalog, user_event(example(event_type)))
    assert got.event_type == event_type
