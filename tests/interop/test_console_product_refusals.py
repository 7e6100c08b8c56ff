"""The refusals of product writes, kept for the console as those of event writes
are: every failed line of ImportProducts (inline and from a gs:// file), committed
with its batch, and every refused product write or import call, each with the
field at fault, seen through ListRejections and WatchRejections over gRPC (a
client made from reflection) and REST, on SQLite, memory and PostgreSQL, by
project and by catalog. Imports nothing of ours."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import retail_v2

from .console import Console, rest
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    finish,
    product_client,
    put_gcs,
    retail_client,
    wait_until,
)

PROJECT = "projects/footfall-product-refusals"
CATALOG = f"{PROJECT}/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/0"
PRODUCTS = "/google.cloud.retail.v2.ProductService/"
EVENTS = "/google.cloud.retail.v2.UserEventService/"


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def served(request: pytest.FixtureRequest,
           server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    if request.param == "memory":
        return server_factory(store="memory://")
    if request.param == "postgres":
        return server_factory(store=request.getfixturevalue("postgres_databases")
                              .create("product_refusals"))
    return server_factory()


def fields_of(rejection: dict[str, Any]) -> list[str]:
    return [v["field"] for v in rejection.get("fieldViolations", [])]


def kept_for(console: Console, operation: str, count: int) -> list[dict[str, Any]]:
    """The refusals of the import `operation`, newest first, once there are `count`."""
    def listed() -> list[dict[str, Any]] | None:
        found = [r for r in console.call("ListRejections", parent=PROJECT).get("rejections", [])
                 if r.get("operation") == operation]
        return found if len(found) >= count else None

    return wait_until(listed, f"{count} refusals of {operation}", deadline=10)


def test_failed_product_import_lines_are_kept_with_their_fields(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    products = product_client(served.address)
    console = Console(channels(served))
    watched = console.watch("WatchRejections", parent=PROJECT, afterId=0)
    inline = products.import_products(retail_v2.ImportProductsRequest(
        parent=BRANCH, input_config=retail_v2.ProductInputConfig(
            product_inline_source=retail_v2.ProductInlineSource(products=[
                retail_v2.Product(id="good-1", title="Good", categories=["C"]),
                retail_v2.Product(id="no-title", categories=["C"])]))))
    assert finish(inline).error_samples
    uri = put_gcs(served.gcs_root, "gs://footfall-test/product-refusals/products.json", [
        '{"id": "good-2", "title": "Good", "categories": ["C"]}',
        "{not json",
        '{"id": "no-title-either", "categories": ["C"]}',
    ])
    from_file = products.import_products(retail_v2.ImportProductsRequest(
        parent=BRANCH, input_config=retail_v2.ProductInputConfig(
            gcs_source=retail_v2.GcsSource(input_uris=[uri]))))
    assert len(finish(from_file).error_samples) == 2
    # the good lines were stored beside them
    assert products.get_product(name=f"{BRANCH}/products/good-2").title == "Good"

    [line] = kept_for(console, inline.operation.name, 1)
    assert line["method"] == PRODUCTS + "ImportProducts"
    assert line["transport"] == "IMPORT" and line["parent"] == BRANCH
    assert line["code"] == 3
    assert fields_of(line) == ["input_config.product_inline_source.products[1].title"]
    assert line["message"] == "input_config.product_inline_source.products[1].title: is required"
    invalid, not_json = kept_for(console, from_file.operation.name, 2)  # newest first
    assert invalid["message"] == f"{uri} line 3: product.title: is required"
    assert fields_of(invalid) == ["product.title"]
    assert not_json["message"].startswith(f"{uri} line 2: invalid JSON") \
        and not fields_of(not_json)
    # watched as they came, and listed by the catalog the branch is of, over REST too
    seen = [next(watched) for _ in range(3)]
    watched.cancel()
    assert [fields_of(r) for r in seen] == [
        ["input_config.product_inline_source.products[1].title"], [], ["product.title"]]
    of_catalog = rest(served.http_address, f"{CATALOG}/rejections").json()["rejections"]
    assert {r["operation"] for r in of_catalog} == {inline.operation.name,
                                                    from_file.operation.name}
    assert [fields_of(r) for r in of_catalog][0] == ["product.title"]


def test_refused_product_writes_are_kept_with_their_fields(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    products = product_client(served.address)
    with pytest.raises(exceptions.InvalidArgument, match="product.title"):
        products.create_product(parent=BRANCH, product=retail_v2.Product(categories=["C"]),
                                product_id="no-title", timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.NotFound):
        products.update_product(product=retail_v2.Product(
            name=f"{BRANCH}/products/never-made", title="T", categories=["C"]),
            timeout=RPC_DEADLINE)
    full = retail_v2.ImportProductsRequest.ReconciliationMode.FULL
    with pytest.raises(exceptions.InvalidArgument, match="reconciliation_mode"):
        products.import_products(retail_v2.ImportProductsRequest(
            parent=BRANCH, reconciliation_mode=full, input_config=retail_v2.ProductInputConfig(
                product_inline_source=retail_v2.ProductInlineSource(products=[
                    retail_v2.Product(id="a", title="A", categories=["C"])]))),
            timeout=RPC_DEADLINE)
    console = Console(channels(served))

    def listed() -> list[dict[str, Any]] | None:
        found = console.call("ListRejections", parent=PROJECT).get("rejections", [])
        return found if len(found) >= 3 else None

    imported, updated, created = wait_until(listed, "3 refusals", deadline=10)
    assert created["method"] == PRODUCTS + "CreateProduct" and created["transport"] == "GRPC"
    assert created["parent"] == BRANCH and fields_of(created) == ["product.title"]
    assert json.loads(created["requestJson"])["productId"] == "no-title"
    assert updated["method"] == PRODUCTS + "UpdateProduct" and updated["code"] == 5
    assert updated["parent"] == f"{BRANCH}/products/never-made"
    assert imported["method"] == PRODUCTS + "ImportProducts"
    assert fields_of(imported) == ["reconciliation_mode"]
    # the catalog's list holds them: a product's call names its branch or the product
    of_catalog = rest(served.http_address, f"{CATALOG}/rejections").json()["rejections"]
    assert [r["id"] for r in of_catalog] == [imported["id"], updated["id"], created["id"]]


def test_refused_inventory_and_bulk_calls_are_kept_with_their_fields(
        server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    served = server_factory()
    products = product_client(served.address)
    events = retail_client(served.address)
    product = f"{BRANCH}/products/shoe"
    with pytest.raises(exceptions.InvalidArgument) as places:
        products.add_fulfillment_places(retail_v2.AddFulfillmentPlacesRequest(
            product=product, type_="", place_ids=["store-1"]), timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.InvalidArgument) as purge:
        events.purge_user_events(retail_v2.PurgeUserEventsRequest(
            parent=CATALOG, filter="bogus", force=True), timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.InvalidArgument) as imported:
        events.import_user_events(retail_v2.ImportUserEventsRequest(
            parent=CATALOG, input_config=retail_v2.UserEventInputConfig()),
            timeout=RPC_DEADLINE)
    console = Console(channels(served))

    def listed() -> list[dict[str, Any]] | None:
        found = console.call("ListRejections", parent=CATALOG).get("rejections", [])
        return found if len(found) >= 3 else None

    kept = wait_until(listed, "3 refusals", deadline=10)
    assert [(r["method"], r["parent"], r["message"]) for r in kept] == [
        (EVENTS + "ImportUserEvents", CATALOG, imported.value.message),
        (EVENTS + "PurgeUserEvents", CATALOG, purge.value.message),
        (PRODUCTS + "AddFulfillmentPlaces", product, places.value.message)]
    assert [fields_of(r)[:1] for r in kept] == [["input_config"], ["filter"], ["type"]]
