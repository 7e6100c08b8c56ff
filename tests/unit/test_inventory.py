"""The inventory rules as pure functions: each update applies where nothing later
set what it changes, whatever order the updates arrive in."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from footfall.retail.v2 import common_pb2, product_pb2, product_service_pb2
from google.protobuf import json_format

from server.errors import InvalidArgument
from server.retail import inventory
from server.retail.inventory import Times

PICKUP = "pickup-in-store"
Update = Callable[[Any, Times], None]


def product(**fields: Any) -> Any:
    return json_format.ParseDict({"id": "p1", **fields}, product_pb2.Product())


def places(item: Any, kind: str = PICKUP) -> list[str]:
    return next((list(i.place_ids) for i in item.fulfillment_info if i.type == kind), [])


def add(place: str, when: int) -> Update:
    return lambda p, t: inventory.change_places(p, t, PICKUP, [place], when, True)


def remove(place: str, when: int) -> Update:
    return lambda p, t: inventory.change_places(p, t, PICKUP, [place], when, False)


def replace(chosen: list[str], when: int) -> Update:
    return lambda p, t: inventory.replace_places(p, t, PICKUP, chosen, when)


def applied(updates: list[Update], start: Any | None = None) -> Any:
    item = product() if start is None else start
    times = Times()
    for update in updates:
        update(item, times)
        times = Times.load(times.dump())  # as the store keeps them between updates
    return item


@pytest.mark.parametrize(("updates", "expected"), [
    ([add("a", 10), remove("a", 5)], ["a"]),  # an older removal is ignored
    ([add("a", 10), remove("a", 10)], []),  # the same time: the later one lands
    ([remove("a", 10), add("a", 5)], []),  # an older add does not undo a removal
    ([replace(["a", "b"], 10), add("c", 5)], ["a", "b"]),  # older than the replacement
    ([add("c", 12), replace(["a"], 10)], ["c", "a"]),  # c was added after the replacement
    ([replace(["a"], 10), replace(["b"], 5)], ["a"]),  # an older replacement: nothing
    ([add("a", 1), add("b", 2), add("a", 3)], ["a", "b"]),  # no duplicates, order kept
])
def test_places_follow_the_latest_time(updates: list[Update], expected: list[str]) -> None:
    assert places(applied(updates)) == expected


def test_any_arrival_order_ends_the_same() -> None:
    updates = [add("a", 1), remove("a", 4), add("b", 2), replace(["a", "c"], 3),
               remove("c", 5), add("d", 6)]
    outcomes = {tuple(sorted(places(applied(list(order)))))
                for order in itertools.permutations(updates)}
    assert outcomes == {("d",)}


def test_a_type_left_without_places_is_dropped_and_others_stay() -> None:
    start = product(fulfillmentInfo=[{"type": "same-day-delivery", "placeIds": ["r1"]},
                                     {"type": PICKUP, "placeIds": ["s1"]}])
    item = applied([remove("s1", 1)], start)
    assert [(i.type, list(i.place_ids)) for i in item.fulfillment_info] == [
        ("same-day-delivery", ["r1"])]


def test_adding_past_2000_places_is_refused_and_changes_nothing() -> None:
    item, times = product(), Times()
    inventory.change_places(item, times, PICKUP, [f"p{i}" for i in range(2000)], 1, True)
    with pytest.raises(InvalidArgument) as refused:
        inventory.change_places(item, times, PICKUP, ["p0", "new"], 2, True)
    assert "2001 places" in refused.value.message
    assert len(places(item)) == 2000


def test_set_inventory_fields_keep_their_own_times() -> None:
    item, times = product(availability="IN_STOCK", priceInfo={"price": 5}), Times()
    given = product(availability="OUT_OF_STOCK", priceInfo={"price": 7},
                    availableQuantity=3, title="not an inventory field")
    inventory.set_inventory(item, times, given, ["price_info"], 10)
    inventory.set_inventory(item, times, given, ["availability", "price_info"], 5)
    assert (item.price_info.price, item.availability) == (7, product_pb2.Product.OUT_OF_STOCK)
    inventory.set_inventory(item, times, product(priceInfo={"price": 1}), ["price_info"], 9)
    assert item.price_info.price == 7  # set at 10 already
    inventory.set_inventory(item, times, product(), ["available_quantity", "price_info"], 11)
    assert not item.HasField("price_info") and not item.HasField("available_quantity")
    assert item.title == ""


def test_create_and_update_overwrite_the_times_of_what_they_set() -> None:
    item, times = product(), Times()
    inventory.change_places(item, times, PICKUP, ["a"], 50, True)
    inventory.set_inventory(item, times, product(priceInfo={"price": 1}), ["price_info"], 50)
    assert inventory.specified(product(availability="IN_STOCK", title="t",
                                       fulfillmentInfo=[{"type": PICKUP}])) == [
        "availability", "fulfillment_info"]
    times = inventory.overwritten(times, ["price_info", "fulfillment_info", "title"], 20)
    assert (times.fields, times.places) == ({"price_info": 20}, {})
    assert times.replaced[PICKUP] == times.replaced["custom-type-5"] == 20
    inventory.set_inventory(item, times, product(priceInfo={"price": 2}), ["price_info"], 30)
    inventory.change_places(item, times, PICKUP, ["a"], 19, False)  # before the overwrite
    assert (item.price_info.price, places(item)) == (2, ["a"])


def local(place: str, **fields: Any) -> Any:
    return json_format.ParseDict({"placeId": place, **fields}, common_pb2.LocalInventory())


def test_local_inventories_by_field_and_place() -> None:
    item, times = product(), Times()
    inventory.add_local_inventories(item, times, [
        local("s1", priceInfo={"price": 3}, fulfillmentTypes=[PICKUP]),
        local("s2", attributes={"aisle": {"text": ["4"]}})], [], 10)
    inventory.add_local_inventories(item, times, [local("s1", priceInfo={"price": 2})],
                                    ["price_info"], 9)  # older: ignored
    inventory.add_local_inventories(item, times, [local("s1")], ["fulfillment_types"], 11)
    first = item.local_inventories[0]
    assert (first.price_info.price, list(first.fulfillment_types)) == (3, [])

    inventory.remove_local_inventories(item, times, ["s1", "s2", "never"], 10)
    assert [i.place_id for i in item.local_inventories] == ["s1"]  # s1 changed at 11
    inventory.add_local_inventories(item, times, [local("s2")], ["price_info"], 9)
    assert [i.place_id for i in item.local_inventories] == ["s1"]  # removed at 10
    inventory.add_local_inventories(item, times, [local("s2")], ["price_info"], 10)
    assert [i.place_id for i in item.local_inventories] == ["s1", "s2"]


def test_times_survive_their_json() -> None:
    times = Times(fields={"price_info": -5}, replaced={PICKUP: 1},
                  places={PICKUP: {"a": 2**62}}, local={"s1": {"removed": 3}})
    assert Times.load(times.dump()) == times
    assert Times.load(None) == Times()


def _request(kind: type, **fields: Any) -> Any:
    return json_format.ParseDict(fields, kind())


NAME = "projects/p/locations/global/catalogs/c/branches/default_branch/products/p1"


@pytest.mark.parametrize(("check", "request_", "fields"), [
    (inventory.check_set_inventory,
     _request(product_service_pb2.SetInventoryRequest,
              inventory={"name": NAME, "availability": "IN_STOCK"},
              setMask="availability,priceInfo.price,title"),
     ["set_mask.paths[1]", "set_mask.paths[2]"]),
    (inventory.check_fulfillment_places,
     _request(product_service_pb2.AddFulfillmentPlacesRequest, product=NAME,
              type=PICKUP, placeIds=["ok", "x" * 11, "a b"] + ["p"] * 1998),
     ["place_ids", "place_ids[1]", "place_ids[2]"]),
    (inventory.check_add_local_inventories,
     _request(product_service_pb2.AddLocalInventoriesRequest, product=NAME,
              localInventories=[{"placeId": "s1", "attributes": {
                  "k": {"numbers": [1, 2]}, "t": {"text": ["x" * 257], "searchable": True}}},
                  {"placeId": "s1", "fulfillmentTypes": ["drone"]}]),
     ["local_inventories[0].attributes['k']", "local_inventories[0].attributes['t'].text[0]",
      "local_inventories[0].attributes['t'].searchable", "local_inventories[1].place_id",
      "local_inventories[1].fulfillment_types[0]"]),
    # As a product's attributes: no NaN or infinity (they were stored and shown).
    (inventory.check_add_local_inventories,
     _request(product_service_pb2.AddLocalInventoriesRequest, product=NAME,
              localInventories=[
                  {"placeId": "s1", "attributes": {"n": {"numbers": ["NaN"]}}},
                  {"placeId": "s2", "attributes": {"i": {"numbers": ["-Infinity"]}}}]),
     ["local_inventories[0].attributes['n'].numbers[0]",
      "local_inventories[1].attributes['i'].numbers[0]"]),
    (inventory.check_remove_local_inventories,
     _request(product_service_pb2.RemoveLocalInventoriesRequest, product="p1",
              placeIds=["s" * 129]),
     ["product", "place_ids[0]"]),
])
def test_requests_report_every_bad_field(check: Callable[[Any], Any], request_: Any,
                                         fields: list[str]) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check(request_)
    assert [v.field for v in refused.value.violations] == fields


def test_a_good_request_names_its_product() -> None:
    request = _request(product_service_pb2.SetInventoryRequest, inventory={"name": NAME},
                       setMask="fulfillmentInfo")
    assert inventory.check_set_inventory(request) == (
        "projects/p/locations/global/catalogs/c/branches/0", "p1")


def test_a_set_inventory_without_a_mask_sets_all_four_fields() -> None:
    """Google's Node.js samples send no set_mask; its older reference: "If not set or
    set with empty paths, all inventory fields will be updated"."""
    given = product(priceInfo={"price": 12, "currencyCode": "USD"}, availability="PREORDER",
                    availableQuantity=2, fulfillmentInfo=[{"type": "same-day-delivery",
                                                           "placeIds": ["s3"]}])
    request = _request(product_service_pb2.SetInventoryRequest,
                       inventory={"name": NAME, **json_format.MessageToDict(given)})
    assert inventory.check_set_inventory(request)[1] == "p1"
    item = product(title="kept", availability="IN_STOCK", availableQuantity=9,
                   fulfillmentInfo=[{"type": PICKUP, "placeIds": ["s1"]}])
    times = Times()
    inventory.set_inventory(item, times, request.inventory, request.set_mask.paths, 10)
    assert (item.price_info.price, item.availability, item.available_quantity.value) == (
        12, product_pb2.Product.PREORDER, 2)
    assert (places(item), places(item, "same-day-delivery"), item.title) == (
        ["s1"], ["s3"], "kept")
    assert set(times.fields) == {"price_info", "availability", "available_quantity"}
