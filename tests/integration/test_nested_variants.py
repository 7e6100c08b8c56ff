"""A product nesting its output-only `variants` deep inside a request: found by an
attacker's probe (helper h5). Each test passes once the server refuses such nesting
with INVALID_ARGUMENT (or drops the output-only field) on every route."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import (
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.protobuf import json_format

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

from .http_client import call

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/0"
MAX_VARIANT_DEPTH = 32  # (server.retail.validation's, as the README gives it)


def nested(depth: int) -> dict[str, Any]:
    """A product whose `variants` hold one product, `depth` times over."""
    product: dict[str, Any] = {"id": "p1"}
    for _ in range(depth):
        product = {"id": "p1", "variants": [product]}
    return product


def event(depth: int) -> dict[str, Any]:
    return {"eventType": "detail-page-view", "visitorId": "v1",
            "productDetails": [{"product": nested(depth)}]}


ROUTES = {
    "write v2": lambda d: ("POST", f"/v2/{CATALOG}/userEvents:write", event(d)),
    "write v2beta": lambda d: ("POST", f"/v2beta/{CATALOG}/userEvents:write", event(d)),
    "import inline": lambda d: ("POST", f"/v2/{CATALOG}/userEvents:import", {
        "inputConfig": {"userEventInlineSource": {"userEvents": [event(d)]}}}),
    "create product": lambda d: ("POST", f"/v2/{BRANCH}/products?productId=x", {
        "title": "t", "categories": ["c"], "variants": [nested(d)]}),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_rest_body_nested_past_protobuf_depth_is_invalid_argument(served: Running,
                                                                  route: str) -> None:
    method, path, body = ROUTES[route](150)
    reply = call(served.http_port, method, path, body)
    assert reply.status == 400, reply.body[:300]
    assert reply.error()["status"] == "INVALID_ARGUMENT"


def test_an_event_written_can_be_listed_by_our_grpc_stubs(served: Running) -> None:
    reply = call(served.http_port, "POST", f"/v2/{CATALOG}/userEvents:write", event(97))
    if reply.status == 400:  # refused: nothing unreadable was stored
        return
    assert reply.status == 200, reply.body[:300]
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        page = console_pb2_grpc.ConsoleServiceStub(channel).ListUserEvents(
            console_pb2.ListUserEventsRequest(parent=CATALOG), timeout=10)
    assert len(page.user_events) == 1


def finished(port: int, name: str) -> dict[str, Any]:
    """The operation `name` once done (over REST, within 30 s)."""
    deadline = time.monotonic() + 30
    while not (operation := call(port, "GET", f"/v2/{name}").json()).get("done"):
        assert time.monotonic() < deadline, operation
        time.sleep(0.05)
    return operation  # type: ignore[no-any-return]


def listing_status(port: int, catalog: str) -> int:
    return call(port, "GET", f"/console/v1/{catalog}/userEvents").status


def test_a_pixel_never_stores_an_event_its_catalog_cannot_list(served: Running) -> None:
    catalog = "projects/p/locations/global/catalogs/pixel"
    pixel = (f"/v2/{catalog}/userEvents:collect?$alt=json&userEvent="
             + quote(json.dumps(event(110)), safe=""))
    reply = call(served.http_port, "GET", pixel)
    assert reply.status in (200, 400), reply.body[:300]
    served.store.flush()  # a pixel is answered before its commit
    assert listing_status(served.http_port, catalog) == 200


@pytest.fixture
def gcs_served(settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1,
                                        gcs_root=str(tmp_path / "gcs")), clock)
    yield running
    running.stop()


def test_a_file_import_never_stores_an_event_its_catalog_cannot_list(
        gcs_served: Running, tmp_path: Path) -> None:
    catalog = "projects/p/locations/global/catalogs/imported"
    folder = tmp_path / "gcs" / "bucket"
    folder.mkdir(parents=True)
    line = {**event(150), "eventTime": "2024-05-01T11:00:00Z"}
    (folder / "events.json").write_text(json.dumps(line) + "\n")
    started = call(gcs_served.http_port, "POST", f"/v2/{catalog}/userEvents:import", {
        "inputConfig": {"gcsSource": {"inputUris": ["gs://bucket/events.json"]}}})
    assert started.status == 200, started.body[:300]
    finished(gcs_served.http_port, started.json()["name"])
    assert listing_status(gcs_served.http_port, catalog) == 200


def test_a_purge_removes_what_a_pixel_stored(served: Running) -> None:
    catalog = "projects/p/locations/global/catalogs/purged"
    pixel = (f"/v2/{catalog}/userEvents:collect?$alt=json&userEvent="
             + quote(json.dumps(event(110)), safe=""))
    assert call(served.http_port, "GET", pixel).status in (200, 400)
    served.store.flush()
    started = call(served.http_port, "POST", f"/v2/{catalog}/userEvents:purge",
                   {"filter": 'visitorId = "v1"', "force": True})
    assert started.status == 200, started.body[:300]
    operation = finished(served.http_port, started.json()["name"])
    assert "error" not in operation, operation


def test_an_event_nesting_variants_past_the_bound_is_refused_naming_them(
        served: Running) -> None:
    """The bound holds on every transport: the refusal names the field, and an event
    at the bound is stored and listed, whole, by our own gRPC stubs."""
    field = "user_event.product_details[0].product.variants"
    reply = call(served.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                 event(MAX_VARIANT_DEPTH + 1))
    assert reply.status == 400, reply.body[:300]
    assert list(reply.violations()) == [field]
    assert "more than 32 deep" in reply.violations()[field]
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        deep = user_event_pb2.UserEvent()
        json_format.ParseDict(event(MAX_VARIANT_DEPTH + 1), deep)
        with pytest.raises(grpc.RpcError) as refused:
            retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                parent=CATALOG, user_event=deep), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in str(refused.value.details())
        at_bound = user_event_pb2.UserEvent()
        json_format.ParseDict(event(MAX_VARIANT_DEPTH), at_bound)
        retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=at_bound), timeout=10)
        page = console_pb2_grpc.ConsoleServiceStub(channel).ListUserEvents(
            console_pb2.ListUserEventsRequest(parent=CATALOG), timeout=10)
    [listed] = page.user_events
    assert listed.user_event.product_details[0].product == at_bound.product_details[0].product


def test_a_body_past_protobuf_depth_is_refused_by_a_short_path(served: Running) -> None:
    """json_format's error holds a step a level; the refusal names the path to the
    first repeated field, with its indexes, not 100 of them."""
    reply = call(served.http_port, "POST", f"/v2/{CATALOG}/userEvents:write", event(150))
    assert reply.status == 400, reply.body[:300]
    [(field, reason)] = reply.violations().items()
    assert field == "user_event.product_details[0].product.variants[0].variants[0]"
    assert "nests messages too deep for protobuf" in reason
