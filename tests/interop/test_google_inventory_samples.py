"""What Google's published Retail inventory samples send, sent as they send it, against
a `footfall serve` subprocess, asserting what the samples' own tests assert (see
test_google_product_samples.py for the product samples).

- python-docs-samples retail/interactive-tutorials/product/: set_inventory, add_ and
  remove_fulfillment_places (the last through the async client), on setup_cleanup's
  product (pickup-in-store at store0 and store1).
- java-docs-samples: the product named under `branches/0`, a UUID id, an
  available_quantity in SetInventory.
- nodejs-retail (tests/node/product_samples.test.js repeats them with the Node
  client): SetInventory with no set_mask at all (its test expects all four inventory
  fields set), same-day-delivery places.
- dotnet-docs-samples: SetInventory of the whole product CreateProduct answered.
- The tutorials' out-of-order steps (a set_time or add_time of yesterday).
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import retail_v2
from google.protobuf import field_mask_pb2

from .product_samples import (
    INVENTORY_PATHS,
    PICKUP,
    Client,
    Product,
    create_as_setup_does,
    default_branch,
    node_id,
    places,
    sample_id,
    stored_as,
)
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    finish,
    product_async_client,
    wait_until,
)


def test_the_python_set_inventory_sample_replaces_the_pickup_places(
        products: Client, branch: str) -> None:
    """set_inventory.py: on setup's product (pickup at store0, store1) a SetInventory of
    price, availability and pickup at store1, store2, its mask naming the four fields
    (available_quantity too, which it leaves unset), allow_missing, no set_time; polled
    with done(). Its test expects store1 and store2 in the product read back, under
    `branches/0`."""
    product_id = sample_id()
    create_as_setup_does(products, default_branch(branch), product_id)
    name = f"{default_branch(branch)}/products/{product_id}"

    price = retail_v2.PriceInfo()
    price.price = 12.0
    price.original_price = 48.0
    price.cost = 6.0
    price.currency_code = "USD"
    fulfillment = retail_v2.FulfillmentInfo()
    fulfillment.type_ = PICKUP
    fulfillment.place_ids = ["store1", "store2"]
    inventory = Product()
    inventory.name = name
    inventory.price_info = price
    inventory.fulfillment_info = [fulfillment]
    inventory.availability = "IN_STOCK"
    request = retail_v2.SetInventoryRequest()
    request.inventory = inventory
    request.allow_missing = True
    request.set_mask = field_mask_pb2.FieldMask(paths=INVENTORY_PATHS)
    operation = products.set_inventory(request, timeout=RPC_DEADLINE)
    wait_until(operation.done, "the set-inventory operation's done()")

    got = products.get_product(name=name, timeout=RPC_DEADLINE)
    assert got.name == stored_as(branch, product_id)
    assert places(got) == {PICKUP: ["store1", "store2"]}
    assert (got.price_info.price, got.price_info.cost) == (12.0, 6.0)
    assert not Product.pb(got).HasField("available_quantity")  # named, not sent: cleared
    products.delete_product(name=name, timeout=RPC_DEADLINE)


def test_the_java_set_inventory_sample_names_branch_0(products: Client, branch: str) -> None:
    """SetInventory.java: a UUID id, the product named under `branches/0`, an
    available_quantity of 5, waited for through the operation's future."""
    product_id = str(uuid.uuid4())
    create_as_setup_does(products, default_branch(branch), product_id)
    name = stored_as(branch, product_id)
    finish(products.set_inventory(request={
        "inventory": {"name": name, "price_info": {"price": 12.0, "original_price": 16.0,
                                                   "cost": 6.0, "currency_code": "USD"},
                      "fulfillment_info": [{"type_": PICKUP,
                                            "place_ids": ["store1", "store2"]}],
                      "availability": "IN_STOCK", "available_quantity": 5},
        "allow_missing": True, "set_mask": {"paths": INVENTORY_PATHS}},
        timeout=RPC_DEADLINE))
    got = products.get_product(name=name, timeout=RPC_DEADLINE)
    assert places(got) == {PICKUP: ["store1", "store2"]}
    assert got.available_quantity == 5
    products.delete_product(name=name, timeout=RPC_DEADLINE)


def test_the_out_of_order_steps_of_the_inventory_tutorials_change_nothing(
        products: Client, branch: str) -> None:
    """The set-inventory tutorial: the price changed and set_time "yesterday": "The
    inventory information isn't updated". The add-fulfillment tutorial: place_ids
    `"store4, store5, store6"` (one id) and add_time yesterday: "The fulfillment places
    information has no updates" (that id breaks the place id pattern: refused)."""
    created = create_as_setup_does(products, default_branch(branch), str(uuid.uuid4()))
    yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    operation = products.set_inventory(request={
        "inventory": {"name": created.name, "price_info": {"price": 20.0,
                                                           "currency_code": "USD"}},
        "set_mask": {"paths": INVENTORY_PATHS}, "set_time": yesterday, "allow_missing": True},
        timeout=RPC_DEADLINE)
    assert isinstance(finish(operation), retail_v2.SetInventoryResponse)
    assert products.get_product(name=created.name, timeout=RPC_DEADLINE) == created

    finish(products.add_fulfillment_places(request={
        "product": created.name, "type_": PICKUP, "place_ids": ["store4"],
        "add_time": yesterday, "allow_missing": True}, timeout=RPC_DEADLINE))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.add_fulfillment_places(request={
            "product": created.name, "type_": PICKUP, "place_ids": ["store4, store5, store6"],
            "add_time": yesterday, "allow_missing": True}, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["place_ids[0]"])
    assert products.get_product(name=created.name, timeout=RPC_DEADLINE) == created


def test_the_csharp_set_inventory_sample_sends_the_whole_product(products: Client,
                                                                   branch: str) -> None:
    """SetInventorySample.cs: the product CreateProduct answered (title, categories,
    type, id...), its places and price changed, as the inventory; a set_time of now.
    Its test expects pickup-in-store at store1, store2, the price and IN_STOCK."""
    created = create_as_setup_does(products, default_branch(branch), uuid.uuid4().hex[:14])
    inventory = Product.deserialize(Product.serialize(created))
    inventory.fulfillment_info[0].place_ids = ["store1", "store2"]
    inventory.price_info.price = 12.0
    inventory.price_info.cost = 6.0
    finish(products.set_inventory(request={
        "inventory": inventory, "set_time": datetime.datetime.now(datetime.UTC),
        "allow_missing": True, "set_mask": {"paths": INVENTORY_PATHS}}, timeout=RPC_DEADLINE))
    got = products.get_product(name=created.name, timeout=RPC_DEADLINE)
    assert places(got) == {PICKUP: ["store1", "store2"]}
    assert (got.price_info.price, got.availability) == (12.0, Product.Availability.IN_STOCK)
    assert got.title == created.title


def test_the_node_set_inventory_sample_sends_no_set_mask(products: Client,
                                                         branch: str) -> None:
    """set-inventory.js: the product of setup-cleanup.js (no places), then a SetInventory
    of all four fields with no set_mask at all, its id and name as created. Its test
    expects each of the four as sent, and one fulfillment type: same-day-delivery.
    (Google's older reference: "If not set or set with empty paths, all inventory
    fields will be updated".)"""
    created = create_as_setup_does(products, default_branch(branch), node_id(), places=[])
    operation = products.set_inventory(request={
        "inventory": {"id": created.id, "name": created.name,
                      "price_info": {"price": 12.0, "original_price": 16.0, "cost": 6.0,
                                     "currency_code": "USD"},
                      "fulfillment_info": [{"type_": "same-day-delivery",
                                            "place_ids": ["store3", "store4"]}],
                      "available_quantity": 2, "availability": "IN_STOCK"},
        "allow_missing": True}, timeout=RPC_DEADLINE)
    finish(operation)
    got = products.get_product(name=created.name, timeout=RPC_DEADLINE)
    assert (got.price_info.price, got.price_info.original_price, got.price_info.cost,
            got.price_info.currency_code) == (12.0, 16.0, 6.0, "USD")
    assert places(got) == {"same-day-delivery": ["store3", "store4"]}
    assert (got.available_quantity, got.availability) == (2, Product.Availability.IN_STOCK)
    products.delete_product(name=created.name, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.NotFound):
        products.get_product(name=created.name, timeout=RPC_DEADLINE)


def test_the_add_fulfillment_places_samples(products: Client, branch: str) -> None:
    """add_fulfillment_places.py (and AddFulfillmentPlaces.java): store2 added to
    setup's pickup-in-store places, allow_missing, no add_time, polled with done();
    its test expects store1 and store2 read back. add-fulfillment-places.js adds three
    same-day-delivery places to the same product."""
    product_id = sample_id()
    create_as_setup_does(products, default_branch(branch), product_id)
    name = f"{default_branch(branch)}/products/{product_id}"
    request = retail_v2.AddFulfillmentPlacesRequest()
    request.product = name
    request.type_ = PICKUP
    request.place_ids = ["store2"]
    request.allow_missing = True
    operation = products.add_fulfillment_places(request, timeout=RPC_DEADLINE)
    wait_until(operation.done, "the add-fulfillment-places operation's done()")
    assert places(products.get_product(name=name, timeout=RPC_DEADLINE)) == {
        PICKUP: ["store0", "store1", "store2"]}

    finish(products.add_fulfillment_places(request={
        "product": name, "type_": "same-day-delivery",
        "place_ids": ["store1", "store2", "store3"], "allow_missing": True},
        timeout=RPC_DEADLINE))
    assert places(products.get_product(name=name, timeout=RPC_DEADLINE)) == {
        PICKUP: ["store0", "store1", "store2"],
        "same-day-delivery": ["store1", "store2", "store3"]}
    products.delete_product(name=name, timeout=RPC_DEADLINE)


def test_the_remove_fulfillment_places_sample_uses_the_async_client(
        server: ServerProcess, products: Client, branch: str, run: Any) -> None:
    """remove_fulfillment_places.py: store0 removed through ProductServiceAsyncClient,
    `await operation.result()`; its test expects store1 left and no store0."""
    created = create_as_setup_does(products, default_branch(branch), sample_id())

    async def remove() -> None:
        async with product_async_client(server.address) as client:
            request = retail_v2.RemoveFulfillmentPlacesRequest()
            request.product = created.name
            request.type_ = PICKUP
            request.place_ids = ["store0"]
            request.allow_missing = True
            operation = await client.remove_fulfillment_places(request, timeout=RPC_DEADLINE)
            assert isinstance(await operation.result(timeout=RPC_DEADLINE),
                              retail_v2.RemoveFulfillmentPlacesResponse)

    run(remove())
    assert places(products.get_product(name=created.name, timeout=RPC_DEADLINE)) == {
        PICKUP: ["store1"]}
    products.delete_product(name=created.name, timeout=RPC_DEADLINE)
