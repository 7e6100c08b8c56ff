"""Inventory RPCs and PurgeProducts through the official client: SetInventory,
Add/RemoveFulfillmentPlaces and Add/RemoveLocalInventories as long-running operations
(Google's samples' flows, the rule that an older update never overwrites a newer
one, bad input and missing products), and PurgeProducts with its filter.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import retail_v2
from google.protobuf import field_mask_pb2

from .support import RPC_DEADLINE, assert_names_fields, finish

Product = retail_v2.Product
Client = retail_v2.ProductServiceClient
# Later than any product these tests create: CreateProduct and UpdateProduct record the
# inventory fields they set as set when they are called.
NOW = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
INVENTORY_PATHS = ["price_info", "availability", "fulfillment_info", "available_quantity"]


def shirt(**changes: Any) -> Product:
    fields: dict[str, Any] = {"title": "Linen Shirt", "categories": ["Apparel > Shirts"],
                              "price_info": {"currency_code": "USD", "price": 40.0},
                              "availability": Product.Availability.IN_STOCK}
    fields.update(changes)
    return Product(**fields)


def create(products: Client, branch: str, product_id: str, **changes: Any) -> str:
    created = products.create_product(parent=branch, product=shirt(**changes),
                                      product_id=product_id, timeout=RPC_DEADLINE)
    return str(created.name)


def get(products: Client, name: str) -> Product:
    return products.get_product(name=name, timeout=RPC_DEADLINE)


def places(product: Product) -> dict[str, list[str]]:
    return {info.type_: list(info.place_ids) for info in product.fulfillment_info}


def set_inventory(products: Client, name: str, when: datetime.datetime, paths: list[str],
                  **inventory: Any) -> Any:
    return finish(products.set_inventory(request={
        "inventory": {"name": name, **inventory}, "set_time": when,
        "set_mask": field_mask_pb2.FieldMask(paths=paths), "allow_missing": True,
    }, timeout=RPC_DEADLINE))


def change_places(products: Client, name: str, add: bool, place_ids: list[str],
                  when: datetime.datetime, kind: str = "pickup-in-store") -> None:
    call = products.add_fulfillment_places if add else products.remove_fulfillment_places
    time_field = "add_time" if add else "remove_time"
    finish(call(request={"product": name, "type_": kind, "place_ids": place_ids,
                         time_field: when}, timeout=RPC_DEADLINE))


# -- SetInventory ------------------------------------------------------------------


def test_set_inventory_as_googles_sample_does_and_an_older_one_changes_nothing(
        products: Client, branch: str) -> None:
    name = create(products, branch, "inventory_test_product_id", available_quantity=3)
    operation = products.set_inventory(request={
        "inventory": {"name": name,
                      "price_info": {"price": 15.0, "original_price": 20.0, "cost": 8.0,
                                     "currency_code": "USD"},
                      "fulfillment_info": [{"type_": "pickup-in-store",
                                            "place_ids": ["store1", "store2"]}],
                      "availability": "IN_STOCK"},
        "set_time": NOW, "allow_missing": True,
        "set_mask": field_mask_pb2.FieldMask(paths=INVENTORY_PATHS)}, timeout=RPC_DEADLINE)
    assert "/branches/0/operations/set-inventory-" in operation.operation.name
    assert operation.done()  # applied before the answer
    assert isinstance(finish(operation), retail_v2.SetInventoryResponse)
    assert isinstance(operation.metadata, retail_v2.SetInventoryMetadata)
    stored = get(products, name)
    assert (stored.price_info.price, stored.price_info.cost) == (15.0, 8.0)
    assert places(stored) == {"pickup-in-store": ["store1", "store2"]}
    assert stored.available_quantity is None or stored.available_quantity == 0  # in the mask
    assert stored.title == "Linen Shirt"

    # Issued a day earlier, arriving later: every field it names was set since.
    set_inventory(products, name, NOW - datetime.timedelta(days=1), INVENTORY_PATHS,
                  price_info={"price": 99.0, "currency_code": "USD"},
                  availability="OUT_OF_STOCK",
                  fulfillment_info=[{"type_": "pickup-in-store", "place_ids": ["old"]}])
    assert get(products, name) == stored


def test_set_inventory_changes_only_what_the_mask_names(products: Client, branch: str) -> None:
    name = create(products, branch, "SHIRT-M")
    set_inventory(products, name, NOW, ["availability"], availability="OUT_OF_STOCK",
                  price_info={"price": 1.0, "currency_code": "USD"}, title="ignored")
    stored = get(products, name)
    assert stored.availability == Product.Availability.OUT_OF_STOCK
    assert (stored.price_info.price, stored.title) == (40.0, "Linen Shirt")

    # A newer price, then an older availability: each field keeps its own time.
    set_inventory(products, name, NOW + datetime.timedelta(minutes=1), ["price_info"],
                  price_info={"price": 35.0, "currency_code": "USD"})
    set_inventory(products, name, NOW - datetime.timedelta(minutes=1), ["availability"],
                  availability="PREORDER")
    stored = get(products, name)
    assert (stored.price_info.price, stored.availability) == (
        35.0, Product.Availability.OUT_OF_STOCK)


def test_set_inventory_replaces_the_places_of_the_types_it_names(
        products: Client, branch: str) -> None:
    name = create(products, branch, "SHIRT-L", fulfillment_info=[
        {"type_": "pickup-in-store", "place_ids": ["s1", "s2"]},
        {"type_": "same-day-delivery", "place_ids": ["r1"]}])
    set_inventory(products, name, NOW, ["fulfillment_info"],
                  fulfillment_info=[{"type_": "pickup-in-store", "place_ids": ["s3"]}])
    assert places(get(products, name)) == {"pickup-in-store": ["s3"],
                                           "same-day-delivery": ["r1"]}
    set_inventory(products, name, NOW, ["fulfillment_info"],
                  fulfillment_info=[{"type_": "same-day-delivery", "place_ids": []}])
    assert places(get(products, name)) == {"pickup-in-store": ["s3"]}


def test_create_and_update_product_record_the_inventory_they_set_as_set_now(
        products: Client, branch: str) -> None:
    name = create(products, branch, "SHIRT-XS", price_info=None)  # availability set
    yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    set_inventory(products, name, yesterday, ["price_info", "availability"],
                  price_info={"price": 20.0, "currency_code": "USD"},
                  availability="OUT_OF_STOCK")
    stored = get(products, name)  # the price was never set; the availability was, today
    assert (stored.price_info.price, stored.availability) == (20.0,
                                                              Product.Availability.IN_STOCK)

    set_inventory(products, name, NOW, ["price_info"],
                  price_info={"price": 25.0, "currency_code": "USD"})
    products.update_product(product={"name": name, "price_info": {
        "price": 50.0, "currency_code": "USD"}}, update_mask={"paths": ["price_info"]},
        timeout=RPC_DEADLINE)  # overwrites the price set for NOW, and its time
    set_inventory(products, name, yesterday + datetime.timedelta(hours=23), ["price_info"],
                  price_info={"price": 30.0, "currency_code": "USD"})  # before the update
    assert get(products, name).price_info.price == 50.0
    set_inventory(products, name, NOW, ["price_info"],
                  price_info={"price": 45.0, "currency_code": "USD"})
    assert get(products, name).price_info.price == 45.0


# -- fulfillment places ---------------------------------------------------------------


def test_fulfillment_places_follow_their_times_not_their_arrival(
        products: Client, branch: str) -> None:
    name = create(products, branch, "add_fulfillment_test_product_id")
    minute = datetime.timedelta(minutes=1)
    # Google's sample: three stores, one of them twice.
    change_places(products, name, True, ["store2", "store3", "store4", "store3"], NOW)
    assert places(get(products, name)) == {"pickup-in-store": ["store2", "store3", "store4"]}

    change_places(products, name, False, ["store3"], NOW - minute)  # older: ignored
    assert places(get(products, name))["pickup-in-store"] == ["store2", "store3", "store4"]
    change_places(products, name, False, ["store3"], NOW + minute)
    assert places(get(products, name))["pickup-in-store"] == ["store2", "store4"]
    change_places(products, name, True, ["store3", "store5"], NOW)  # store3: removed later
    assert places(get(products, name))["pickup-in-store"] == ["store2", "store4", "store5"]
    change_places(products, name, True, ["r1"], NOW, kind="custom-type-1")
    assert places(get(products, name)) == {"pickup-in-store": ["store2", "store4", "store5"],
                                           "custom-type-1": ["r1"]}

    # A SetInventory issued before the later removal does not bring store3 back.
    set_inventory(products, name, NOW, ["fulfillment_info"], fulfillment_info=[
        {"type_": "pickup-in-store", "place_ids": ["store3", "store9"]}])
    assert places(get(products, name))["pickup-in-store"] == ["store9"]


def test_adding_past_2000_places_of_a_type_is_refused(products: Client, branch: str) -> None:
    name = create(products, branch, "SHIRT-XL")
    change_places(products, name, True, [f"p{i}" for i in range(2000)], NOW)
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.add_fulfillment_places(request={
            "product": name, "type_": "pickup-in-store", "place_ids": ["one-more"]},
            timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["place_ids"])
    assert "2001" in refused.value.message
    assert len(places(get(products, name))["pickup-in-store"]) == 2000


# -- local inventories -------------------------------------------------------------------


def test_local_inventories_are_added_masked_and_removed_by_time(
        products: Client, branch: str) -> None:
    name = create(products, branch, "SHIRT-S")
    minute = datetime.timedelta(minutes=1)
    operation = products.add_local_inventories(request={
        "product": name, "add_time": NOW, "local_inventories": [
            {"place_id": "store-1", "price_info": {"price": 38.0, "currency_code": "USD"},
             "attributes": {"aisle": {"text": ["7"]}},
             "fulfillment_types": ["pickup-in-store"]},
            {"place_id": "store-2", "price_info": {"price": 39.0, "currency_code": "USD"}}]},
        timeout=RPC_DEADLINE)
    assert isinstance(finish(operation), retail_v2.AddLocalInventoriesResponse)
    stored = {i.place_id: i for i in get(products, name).local_inventories}
    assert stored["store-1"].attributes["aisle"].text == ["7"]
    assert (stored["store-1"].price_info.price, stored["store-2"].price_info.price) == (38.0,
                                                                                          39.0)

    # add_mask: only the price changes; a field named but not given is cleared.
    finish(products.add_local_inventories(request={
        "product": name, "add_time": NOW + minute,
        "add_mask": field_mask_pb2.FieldMask(paths=["price_info", "fulfillment_types"]),
        "local_inventories": [{"place_id": "store-1",
                               "price_info": {"price": 30.0, "currency_code": "USD"},
                               "attributes": {"aisle": {"text": ["9"]}}}]},
        timeout=RPC_DEADLINE))
    first = get(products, name).local_inventories[0]
    assert (first.place_id, first.price_info.price) == ("store-1", 30.0)
    assert (list(first.fulfillment_types), first.attributes["aisle"].text) == ([], ["7"])

    # Removing store-1 as of NOW: its price was set later, so it stays; store-2 goes.
    finish(products.remove_local_inventories(request={
        "product": name, "place_ids": ["store-1", "store-2"], "remove_time": NOW},
        timeout=RPC_DEADLINE))
    assert [i.place_id for i in get(products, name).local_inventories] == ["store-1"]
    # An add issued before that removal does not bring store-2 back.
    finish(products.add_local_inventories(request={
        "product": name, "add_time": NOW - minute,
        "local_inventories": [{"place_id": "store-2"}]}, timeout=RPC_DEADLINE))
    assert [i.place_id for i in get(products, name).local_inventories] == ["store-1"]

    # UpdateProduct leaves local inventories alone (they are output only there).
    products.update_product(product=shirt(name=name, title="Linen Shirt II"),
                            timeout=RPC_DEADLINE)
    assert [i.place_id for i in get(products, name).local_inventories] == ["store-1"]

    # Nor does ImportProducts replacing the whole product, inline or with a mask.
    for mask in (None, field_mask_pb2.FieldMask(paths=["title"])):
        finish(products.import_products(request={
            "parent": branch, "update_mask": mask, "input_config": {"product_inline_source": {
                "products": [shirt(id="SHIRT-S", title="Linen Shirt III")]}}},
            timeout=RPC_DEADLINE))
        imported = get(products, name)
        assert imported.title == "Linen Shirt III"
        assert [i.place_id for i in imported.local_inventories] == ["store-1"]


# -- missing products and bad input ----------------------------------------------------


def test_a_missing_product_is_not_found_unless_allow_missing(
        products: Client, branch: str) -> None:
    name = f"{branch}/products/NOPE"
    with pytest.raises(exceptions.NotFound) as missing:
        products.add_fulfillment_places(request={
            "product": name, "type_": "pickup-in-store", "place_ids": ["s1"]},
            timeout=RPC_DEADLINE)
    assert name in missing.value.message
    with pytest.raises(exceptions.NotFound):
        products.set_inventory(request={
            "inventory": {"name": name, "availability": "IN_STOCK"},
            "set_mask": field_mask_pb2.FieldMask(paths=["availability"])},
            timeout=RPC_DEADLINE)
    # allow_missing: the operation succeeds; Footfall keeps nothing (see README).
    finish(products.remove_local_inventories(request={
        "product": name, "place_ids": ["s1"], "allow_missing": True}, timeout=RPC_DEADLINE))
    with pytest.raises(exceptions.NotFound):
        get(products, name)


def _bad_requests(name: str) -> list[tuple[str, dict[str, Any], list[str]]]:
    mask = field_mask_pb2.FieldMask
    return [
        ("set_inventory", {"set_mask": mask(paths=["availability"])}, ["inventory"]),
        ("set_inventory", {"inventory": {"name": "projects/p/products/x"},
                           "set_mask": mask(paths=["availability"])}, ["inventory.name"]),
        # no set_mask: all four fields, each checked
        ("set_inventory", {"inventory": {"name": name, "price_info": {
            "price": 10.0, "original_price": 5.0, "currency_code": "USD"}}},
         ["inventory.price_info.original_price"]),
        ("set_inventory", {"inventory": {"name": name}, "set_mask": mask(paths=["title"])},
         ["set_mask.paths[0]"]),
        ("set_inventory", {"inventory": {"name": name, "fulfillment_info": [
            {"type_": "teleport", "place_ids": ["bad place"]}]},
            "set_mask": mask(paths=["fulfillment_info"])},
         ["inventory.fulfillment_info[0].type", "inventory.fulfillment_info[0].place_ids[0]"]),
        ("set_inventory", {"inventory": {"name": name, "price_info": {
            "price": 10.0, "original_price": 5.0, "currency_code": "US"}},
            "set_mask": mask(paths=["price_info"])},
         ["inventory.price_info.original_price", "inventory.price_info.currency_code"]),
        ("add_fulfillment_places", {"product": name, "type_": "pickup",
                                    "place_ids": ["store-0001x"]},
         ["type", "place_ids[0]"]),
        ("remove_fulfillment_places", {"product": name, "type_": "pickup-in-store"},
         ["place_ids"]),
        ("add_fulfillment_places", {"product": "", "type_": "pickup-in-store",
                                    "place_ids": ["s1"]}, ["product"]),
        ("add_local_inventories", {"product": name, "local_inventories": [
            {"price_info": {"price": 1.0}},
            {"place_id": "s2", "attributes": {"bad key": {"text": ["a", "b"]}},
             "fulfillment_types": ["pickup-in-store", "pickup-in-store"]}],
            "add_mask": mask(paths=["title"])},
         ["local_inventories[0].place_id", "local_inventories[1].attributes['bad key']",
          "local_inventories[1].fulfillment_types[1]", "add_mask.paths[0]"]),
        ("add_local_inventories", {"product": name}, ["local_inventories"]),
        ("remove_local_inventories", {"product": name, "place_ids": [""]}, ["place_ids[0]"]),
    ]


def test_bad_requests_are_refused_naming_each_field_and_change_nothing(
        products: Client, branch: str) -> None:
    name = create(products, branch, "SHIRT-BAD")
    before = get(products, name)
    for method, request, fields in _bad_requests(name):
        with pytest.raises(exceptions.InvalidArgument) as refused:
            getattr(products, method)(request=request, timeout=RPC_DEADLINE)
        assert_names_fields(refused.value, fields)
    assert get(products, name) == before


# -- PurgeProducts -----------------------------------------------------------------


def test_purge_products_counts_then_deletes_by_availability_with_variants(
        products: Client, branch: str) -> None:
    create(products, branch, "GONE", availability="OUT_OF_STOCK")
    create(products, branch, "GONE-1", type_=Product.Type.VARIANT, primary_product_id="GONE",
           categories=[])
    create(products, branch, "A-KEPT")  # in stock
    create(products, branch, "A-KEPT-1", type_=Product.Type.VARIANT,
           primary_product_id="A-KEPT", categories=[], availability="BACKORDER")
    create(products, branch, "KEPT-2", type_=Product.Type.VARIANT,
           primary_product_id="A-KEPT", categories=[])
    query = 'availability = "OUT_OF_STOCK" OR (availability = "BACKORDER")'

    counted = finish(products.purge_products(request={"parent": branch, "filter": query},
                                             timeout=RPC_DEADLINE))
    assert counted.purge_count == 3
    assert sorted(n.rpartition("/")[2] for n in counted.purge_sample) == [
        "A-KEPT-1", "GONE", "GONE-1"]
    assert len(list(products.list_products(parent=branch, timeout=RPC_DEADLINE))) == 5

    operation = products.purge_products(request={"parent": branch, "filter": query,
                                                 "force": True}, timeout=RPC_DEADLINE)
    assert "/branches/0/operations/purge-products-" in operation.operation.name
    purged = finish(operation)
    assert (purged.purge_count, list(purged.purge_sample)) == (3, [])
    assert operation.metadata.success_count == 3
    assert sorted(p.id for p in products.list_products(parent=branch, timeout=RPC_DEADLINE)) \
        == ["A-KEPT", "KEPT-2"]

    assert finish(products.purge_products(request={"parent": branch, "filter": "*",
                                                   "force": True},
                                          timeout=RPC_DEADLINE)).purge_count == 2
    assert list(products.list_products(parent=branch, timeout=RPC_DEADLINE)) == []


@pytest.mark.parametrize(("query", "why"), [
    ("", "is required"),
    ('create_time <= "2015-02-13T17:05:46Z"', "create_time is not supported"),
    ('title = "x"', "unknown field 'title'"),
    ('availability > "IN_STOCK"', "takes only ="),
    ('availability = "SOLD"', "unknown availability 'SOLD'"),
    ('availability = "IN_STOCK" AND', "expected a field name at the end"),
    ('availability "IN_STOCK"', "expected an operator at character 14"),
    (" OR ".join(['availability = "IN_STOCK"'] * 7), "more than 6 conditions"),
    ('(((availability = "IN_STOCK")))', "deeper than 2 levels"),
    ("*" * 5001, "at most 5000 characters"),
])
def test_purge_products_refuses_bad_filters(products: Client, branch: str, query: str,
                                            why: str) -> None:
    create(products, branch, "STAYS")
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.purge_products(request={"parent": branch, "filter": query, "force": True},
                                timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["filter"])
    assert why in refused.value.message
    assert [p.id for p in products.list_products(parent=branch, timeout=RPC_DEADLINE)] == [
        "STAYS"]
