"""Numbers given as JSON strings, over every road a JSON event or product takes into a
`footfall serve` subprocess: REST bodies (strict and with the forms Google's JSON
front end reads too), the browser's pixel, CollectUserEvent through the official
client, lines of imported files and inline imports.

The proto3 JSON mapping reads a quoted number in ASCII digits, with an optional
sign, fraction and exponent ("1e2" is 100, for integer fields too); protobuf's
Python json_format reads it with int() and float(), which also take "1_0" (10),
"١" (an Arabic-Indic one), "５" (a fullwidth five) and white space round it, and a
Timestamp or Duration with datetime and int(), which take the same digits. Each of
those is refused, naming the field, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    count_events,
    finish,
    list_events,
    put_gcs,
)

# Quoted numbers json_format read (as 10, 1, 5, 5, 5) and the proto3 JSON mapping does not.
LOOSE_WHOLE = ["1_0", "\u0661", "\uff15", "5\n", "\t5"]
LOOSE_NUMBER = ["1_0.5", "\u0661.5", " 1.5", "inf", "nan", "infinity"]
QUANTITY = "product_details[1].quantity"
PRICE = "product_details[0].product.price_info.price"


def cart(quantity: Any, **changes: Any) -> dict[str, Any]:
    """An add-to-cart of two products, the second `quantity` times."""
    return {"eventType": "add-to-cart", "visitorId": "v", "eventTime": "2024-05-20T10:00:00Z",
            "productDetails": [{"product": {"id": "tent"}, "quantity": 1},
                               {"product": {"id": "stakes"}, "quantity": quantity}],
            **changes}


def priced(price: Any) -> dict[str, Any]:
    return {"eventType": "detail-page-view", "visitorId": "v",
            "eventTime": "2024-05-20T10:00:00Z",
            "productDetails": [{"product": {"id": "tent", "priceInfo": {
                "price": price, "currencyCode": "EUR"}}}]}


def post(server: ServerProcess, path: str, document: Any) -> requests.Response:
    return requests.post(f"http://{server.http_address}/v2/{path}", json=document,
                         timeout=RPC_DEADLINE)


def violations(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    [bad] = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    return {v["field"]: v["description"] for v in bad["fieldViolations"]}


def stored_quantities(server: ServerProcess, catalog: str) -> list[int]:
    [event] = list_events(server.store, catalog, server.workdir)
    return [detail.get("quantity") for detail in event["productDetails"]]


# -- REST: userEvents:write ------------------------------------------------------------


@pytest.mark.parametrize("lenient", [False, True], ids=["proto3", "with-lenient-forms"])
@pytest.mark.parametrize("quantity", LOOSE_WHOLE)
def test_a_rest_write_refuses_a_whole_number_not_in_ascii_digits(
        server: ServerProcess, catalog: str, quantity: str, lenient: bool) -> None:
    # "experimentIds": "e" (one text for a list) sends the body to the lenient reading
    event = cart(quantity, **({"experimentIds": "e"} if lenient else {}))
    found = violations(post(server, f"{catalog}/userEvents:write", event))
    assert list(found) == [f"user_event.{QUANTITY}"]
    assert "must be a whole number in ASCII digits" in found[f"user_event.{QUANTITY}"]
    assert repr(quantity) in found[f"user_event.{QUANTITY}"]
    assert count_events(server.store, catalog, server.workdir) == 0


@pytest.mark.parametrize("price", LOOSE_NUMBER)
def test_a_rest_write_refuses_a_number_not_in_ascii_digits(server: ServerProcess,
                                                           catalog: str, price: str) -> None:
    found = violations(post(server, f"{catalog}/userEvents:write", priced(price)))
    assert list(found) == [f"user_event.{PRICE}"]
    assert "must be a number in ASCII digits" in found[f"user_event.{PRICE}"]
    assert count_events(server.store, catalog, server.workdir) == 0


@pytest.mark.parametrize(("quantity", "read"), [("+2", 2), ("2e0", 2), ("2.0", 2), ("1e2", 100),
                                                ("007", 7)])
def test_a_rest_write_reads_a_quoted_number_as_the_proto3_json_mapping_does(
        server: ServerProcess, catalog: str, quantity: str, read: int) -> None:
    answer = post(server, f"{catalog}/userEvents:write", cart(quantity))
    assert answer.status_code == 200, answer.text
    assert stored_quantities(server, catalog) == [1, read]


# -- the pixel, over HTTP and through the official client ------------------------------


@pytest.mark.parametrize("quantity", LOOSE_WHOLE)
def test_a_browser_pixel_with_a_loose_number_is_refused_naming_it(
        server: ServerProcess, catalog: str, quantity: str) -> None:
    answer = requests.get(f"http://{server.http_address}/v2/{catalog}/userEvents:collect",
                          params={"userEvent": json.dumps(cart(quantity))},
                          timeout=RPC_DEADLINE)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/gif"
    error = answer.headers["X-Footfall-Error"]
    assert f"user_event.{QUANTITY}: " in error and "ASCII digits" in error, error
    assert count_events(server.store, catalog, server.workdir) == 0


@pytest.mark.parametrize("text", [
    json.dumps(cart("1_0")),
    # a space before a colon: off the fast path, read by json_format.Parse
    json.dumps(cart("1_0")).replace('"visitorId":', '"visitorId" :'),
    json.dumps(cart("1_0", experimentIds="e")).replace('"visitorId":', '"visitorId" :'),
], ids=["fast-path", "json_format", "json_format-lenient"])
def test_collect_through_the_official_client_refuses_a_loose_number(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        text: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": text},
                                  timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, [f"user_event.{QUANTITY}"])
    assert "whole number in ASCII digits" in refused.value.message
    assert count_events(server.store, catalog, server.workdir) == 0


# -- imports ---------------------------------------------------------------------------


def test_an_import_line_with_a_loose_number_is_a_bad_line_naming_it(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    lines = [cart("2"), cart("1_0"),
             # one product detail as an object, as Google's tutorial files write it
             {**cart(1), "productDetails": {"product": {"id": "p"}, "quantity": "\u0661"}},
             {**priced("1_0.5")}]
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/events.json",
                  [json.dumps({**line, "visitorId": f"v{i}"}) for i, line in enumerate(lines)])
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": [uri]}}},
        timeout=RPC_DEADLINE)
    samples = [s.message for s in finish(operation).error_samples]
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (1, 3)
    assert samples == [
        f"{uri} line 2: not a UserEvent: {QUANTITY}: must be a whole number in ASCII digits "
        "(e.g. 10), got '1_0'",
        f"{uri} line 3: not a UserEvent: product_details[0].quantity: must be a whole number "
        "in ASCII digits (e.g. 10), got '\u0661'",
        f"{uri} line 4: not a UserEvent: {PRICE}: must be a number in ASCII digits (e.g. 1.5), "
        "\"NaN\", \"Infinity\" or \"-Infinity\", got '1_0.5'"]
    assert stored_quantities(server, catalog) == [1, 2]


def test_an_inline_import_over_rest_with_a_loose_number_is_refused_naming_it(
        server: ServerProcess, catalog: str) -> None:
    events = [cart(1), {**cart("\uff15"), "experimentIds": "e"}]
    found = violations(post(server, f"{catalog}/userEvents:import", {
        "inputConfig": {"userEventInlineSource": {"userEvents": events}}}))
    field = f"input_config.user_event_inline_source.user_events[1].{QUANTITY}"
    assert list(found) == [field] and "ASCII digits" in found[field], found
    assert count_events(server.store, catalog, server.workdir) == 0


# -- products --------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({"availableQuantity": "\u0661"}, "product.available_quantity", "whole number in ASCII"),
    ({"images": [{"uri": "https://i", "height": "1_0"}]}, "product.images[0].height",
     "whole number in ASCII"),
    ({"priceInfo": {"price": "1_0.5", "currencyCode": "EUR"}}, "product.price_info.price",
     "number in ASCII"),
    ({"type": "\u0661"}, "product.type", "its number in ASCII digits"),
])
def test_a_product_over_rest_with_a_loose_number_is_refused_naming_it(
        server: ServerProcess, products: retail_v2.ProductServiceClient, branch: str,
        changes: dict[str, Any], field: str, says: str) -> None:
    product = {"title": "Tent", "categories": ["Tents"], **changes}
    found = violations(post(server, f"{branch}/products?productId=tent", product))
    assert list(found) == [field] and says in found[field], found
    with pytest.raises(exceptions.NotFound):
        products.get_product(name=f"{branch}/products/tent", timeout=RPC_DEADLINE)


# -- Timestamps and Durations ----------------------------------------------------------

LOOSE_TIMES = ["\u0662\u0660\u0662\u0664-05-20T10:00:00Z", "2024-05-20T10:00:00.1_0Z",
               "2024-05-20T10:00:00+5:00", "2024-05-20T10:00:00.Z"]


@pytest.mark.parametrize("event_time", LOOSE_TIMES)
def test_an_event_time_not_in_ascii_digits_is_refused_on_every_road(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str, event_time: str) -> None:
    event = {"eventType": "home-page-view", "visitorId": "v", "eventTime": event_time}
    found = violations(post(server, f"{catalog}/userEvents:write", event))
    assert list(found) == ["user_event.event_time"] and "RFC 3339" in found[
        "user_event.event_time"]
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": json.dumps(event)},
                                  timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["user_event.event_time"])
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/events.json", [json.dumps(event)])
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": [uri]}}},
        timeout=RPC_DEADLINE)
    [sample] = [s.message for s in finish(operation).error_samples]
    assert sample.startswith(f"{uri} line 1: not a UserEvent: event_time: not an RFC 3339 "
                             "timestamp"), sample
    assert count_events(server.store, catalog, server.workdir) == 0


@pytest.mark.parametrize("ttl", ["1_0s", "\u0661s", "+1s", "1.5 s", "1.0000000001s"])
def test_a_product_ttl_not_in_ascii_digits_is_refused_naming_it(
        server: ServerProcess, products: retail_v2.ProductServiceClient, branch: str,
        ttl: str) -> None:
    product = {"title": "Tent", "categories": ["Tents"], "ttl": ttl}
    found = violations(post(server, f"{branch}/products?productId=tent", product))
    assert list(found) == ["product.ttl"] and "not a duration such as 1.5s" in found[
        "product.ttl"], found
    with pytest.raises(exceptions.NotFound):
        products.get_product(name=f"{branch}/products/tent", timeout=RPC_DEADLINE)
