"""What an id or name kept in a column may hold, alike on every store: no NUL
(PostgreSQL's text cannot hold it and wrote U+FFFD, so `e\\x00` and `e\\ufffd` were one
id there and two on SQLite), and in a product id no white space, control or
invisible format character, as in every other segment of a name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from footfall.retail.v2 import (
    common_pb2,
    product_pb2,
    product_service_pb2,
    product_service_pb2_grpc,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

from .http_client import call

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/0"
TENANT = "projects/p/tenants/t"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, settings: Settings, clock: FixedClock,
           tmp_path: Path) -> Iterator[Running]:
    store = f"sqlite:///{tmp_path}/events.db"
    if request.param == "postgres":
        store = request.getfixturevalue("postgres_url")
    running = start(dataclasses.replace(settings, store=store, http_port=-1), clock)
    yield running
    running.stop()
    if request.param == "postgres":
        request.getfixturevalue("postgres_databases").empty(store)


@pytest.fixture
def channel(server: Running) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        yield chan


def refused_fields(call_: Any) -> list[str]:
    with pytest.raises(grpc.RpcError) as caught:
        call_()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [v.field for v in bad.field_violations]


def client_event(event_id: str, kind: int) -> event_pb2.ClientEvent:
    return event_pb2.ClientEvent(
        request_id="r", event_id=event_id, create_time=timestamp_pb2.Timestamp(seconds=100),
        job_event=event_pb2.JobEvent(type=kind, jobs=[f"{TENANT}/jobs/j"]))  # type: ignore[arg-type]


def test_a_client_event_id_with_nul_is_refused(channel: grpc.Channel) -> None:
    stub = event_service_pb2_grpc.EventServiceStub(channel)

    def create(event_id: str, kind: int) -> Any:
        return stub.CreateClientEvent(event_service_pb2.CreateClientEventRequest(
            parent=TENANT, client_event=client_event(event_id, kind)))

    assert refused_fields(lambda: create("e\x00", 1)) == ["client_event.event_id"]
    assert create("e\ufffd", 2).event_id == "e\ufffd"  # its own id, not another's


@pytest.mark.parametrize(("fields", "field"), [
    ({"event_type": "home-page-view\x00"}, "user_event.event_type"),
    ({"visitor_id": "v\x00"}, "user_event.visitor_id"),
    ({"user_info": common_pb2.UserInfo(user_id="u\x00")}, "user_event.user_info.user_id"),
    # an event's product id is kept in the product stats' column: PostgreSQL's text
    # stored U+FFFD there, so `p\0` and `p\ufffd` were one product in the insights
    ({"event_type": "detail-page-view", "product_details": [user_event_pb2.ProductDetail(
        product=product_pb2.Product(id="p\x00"))]}, "user_event.product_details[0].product.id"),
])
def test_user_event_ids_with_nul_are_refused(channel: grpc.Channel, fields: dict[str, Any],
                                             field: str) -> None:
    stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)
    event = user_event_pb2.UserEvent(**{"event_type": "home-page-view", "visitor_id": "v",
                                        **fields})
    assert refused_fields(lambda: stub.WriteUserEvent(
        user_event_service_pb2.WriteUserEventRequest(parent=CATALOG, user_event=event))) \
        == [field]


def post_product(server: Running, product_id: str) -> Any:
    return call(server.http_port, "POST", f"/v2/{BRANCH}/products?productId={product_id}",
                {"title": "Shoe", "categories": ["Shoes"]})


@pytest.mark.parametrize("product_id", ["a%00b", "a%20b", "a%E2%80%AEb", "a%07b",
                                        "a%C2%85b", "a%E2%80%8Bb", "a%EF%BB%BFb"])
def test_a_product_id_with_what_no_name_holds_is_refused_over_rest(
        server: Running, product_id: str) -> None:
    made = post_product(server, product_id)
    assert made.status == 400, made.body
    assert list(made.violations()) == ["product_id"]
    read = call(server.http_port, "GET", f"/v2/{BRANCH}/products/{product_id}")
    assert read.status == 400, read.body
    assert list(read.violations()) == ["name"]


def test_nul_and_its_replacement_are_not_one_product_id(server: Running) -> None:
    made = post_product(server, "a%00b")
    assert made.status == 400, made.body
    assert list(made.violations()) == ["product_id"]
    read = call(server.http_port, "GET", f"/v2/{BRANCH}/products/a%00b")
    assert read.status == 400, read.body
    assert list(read.violations()) == ["name"]
    assert post_product(server, "a%EF%BF%BDb").status == 200  # U+FFFD: a character as any
    got = call(server.http_port, "GET", f"/v2/{BRANCH}/products/a%EF%BF%BDb")
    assert got.status == 200 and got.json()["id"] == "a\ufffdb"


def test_a_product_id_with_white_space_and_a_control_is_refused_over_grpc(
        channel: grpc.Channel) -> None:
    stub = product_service_pb2_grpc.ProductServiceStub(channel)
    product = product_pb2.Product(title="Shoe", categories=["Shoes"])
    assert refused_fields(lambda: stub.CreateProduct(product_service_pb2.CreateProductRequest(
        parent=BRANCH, product_id="x y\u0007z", product=product))) == ["product_id"]
    assert refused_fields(lambda: stub.GetProduct(product_service_pb2.GetProductRequest(
        name=f"{BRANCH}/products/x y\u0007z"))) == ["name"]
    # an id may still hold '/' and any other character
    made = stub.CreateProduct(product_service_pb2.CreateProductRequest(
        parent=BRANCH, product_id="shoes/42-ß", product=product))
    assert made.id == "shoes/42-ß"
