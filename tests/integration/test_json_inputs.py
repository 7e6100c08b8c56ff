"""JSON as clients and their tools send it, over a real socket: a gzip body padded with
zero bytes, a pixel's event with a number whose double only is whole, and values of
the wrong JSON type named in JSON's words, not Python's."""

from __future__ import annotations

import gzip
import json
from urllib.parse import quote

import pytest

from server.app import Running
from server.store import EventQuery

from . import http_client

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
WRITE = f"/v2/{CATALOG}/userEvents:write"
EVENT = b'{"eventType": "home-page-view", "visitorId": "v"}'
JSON = {"Content-Type": "application/json"}


def stored(served: Running) -> int:
    served.store.flush()
    return served.store.count_user_events(EventQuery(CATALOG))


@pytest.mark.parametrize("zeros", [1, 512, 70_000])
def test_zero_bytes_after_a_gzip_body_are_padding(served: Running, zeros: int) -> None:
    # gzip -d and Python's gzip read over them (a tape's or a block device's padding);
    # the body was refused "not valid gzip".
    body = gzip.compress(EVENT, mtime=0) + b"\0" * zeros
    reply = http_client.call(served.http_port, "POST", WRITE, body,
                             {**JSON, "Content-Encoding": "gzip"})
    assert reply.status == 200, reply.body
    assert stored(served) == 1


def test_bytes_after_a_gzip_bodys_padding_are_refused(served: Running) -> None:
    body = gzip.compress(EVENT, mtime=0) + b"\0" * 8 + gzip.compress(EVENT, mtime=0)
    reply = http_client.call(served.http_port, "POST", WRITE, body,
                             {**JSON, "Content-Encoding": "gzip"})
    assert reply.status == 400, reply.body
    assert reply.error()["message"] == (
        "the request body is not valid gzip (its Content-Encoding header): after its gzip "
        "data and 8 zero bytes of padding it goes on with other bytes")
    assert stored(served) == 0


def _pixel(event: str) -> str:
    return f"/v2/{CATALOG}/userEvents:collect?userEvent={quote(event, safe='')}&ets=1"


@pytest.mark.parametrize("quantity", ["1e-400", "1.0000000000000000001"])
def test_a_pixels_integer_field_refuses_a_number_whose_double_only_is_whole(
        served: Running, quantity: str) -> None:
    # orjson reads 1e-400 as 0.0 and json_format took it: a quantity of 0 was stored.
    def cart(quantity: str) -> str:
        return ('{"eventType": "add-to-cart", "visitorId": "v", "productDetails": '
                f'[{{"product": {{"id": "p"}}, "quantity": {quantity}}}]}}')

    reply = http_client.call(served.http_port, "GET", _pixel(cart(quantity)))
    assert reply.status == 200  # the GIF, whatever the event
    assert stored(served) == 0
    said = reply.headers["X-Footfall-Error"]
    assert said.endswith("user_event.product_details[0].quantity: not a valid UserEvent in "
                         f"JSON: must be a whole number, got {quantity}"), said
    http_client.call(served.http_port, "GET", _pixel(cart("1e2")))
    assert stored(served) == 1


@pytest.mark.parametrize(("value", "got"), [
    ({"id": 1}, "got an object"), ([1, 2], "got an array of 2"), (1.5, "got a number, 1.5"),
    (True, "got true")])
def test_a_string_field_given_another_json_type_is_told_so_in_jsons_words(
        served: Running, value: object, got: str) -> None:
    body = json.dumps({"eventType": "home-page-view", "visitorId": "v", "sessionId": value})
    reply = http_client.call(served.http_port, "POST", WRITE, body.encode(), JSON)
    assert reply.status == 400
    assert reply.violations()["user_event.session_id"] == (
        f"Invalid JSON payload received: must be a JSON string, {got}")


def test_a_whole_number_given_an_object_is_told_so_in_jsons_words(served: Running) -> None:
    # json_format's words, "got dict", came through as they were.
    body = json.dumps({"eventType": "add-to-cart", "visitorId": "v", "productDetails": [
        {"product": {"id": "p"}, "quantity": {"value": 1}}]})
    reply = http_client.call(served.http_port, "POST", WRITE, body.encode(), JSON)
    assert reply.status == 400
    assert reply.violations()["user_event.product_details[0].quantity"] == (
        "Invalid JSON payload received: must be a whole number, got an object")
