"""The five inventory RPCs as long-running operations, one kind each.

The request is checked when called and stored with its time filled in (the server's
clock when the client gave none), so a job that runs again after a crash applies the
same update at the same time: the ordering rule of `inventory` makes that a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from footfall.retail.v2 import product_service_pb2
from google.longrunning import operations_pb2

from server.errors import NotFound, raise_if_any
from server.operations import records
from server.operations.runner import JobContext
from server.retail import inventory, products
from server.retail.product_validation import product_violations

Request = Any  # one of the five request messages
Apply = Callable[[Any, inventory.Times, Any, int], None]  # (product, times, request, when)


@dataclass(frozen=True)
class Kind:
    """One inventory RPC: its request, how it is checked and applied, and its answers."""

    name: str  # the operation kind (names operations `.../operations/<name>-<digits>`)
    request: Any  # the request message class
    check: Callable[[Request], inventory.ProductKey]
    product_field: str  # where the request names the product (for NOT_FOUND)
    time_field: str
    apply: Apply
    metadata: Any  # the metadata and response message classes
    response: Any


def product_name(kind: Kind, request: Request) -> str:
    """The product name as the request gives it."""
    if kind.product_field == "inventory.name":
        return str(request.inventory.name)
    return str(getattr(request, kind.product_field))


S = product_service_pb2
KINDS = {kind.name: kind for kind in (
    Kind("set-inventory", S.SetInventoryRequest, inventory.check_set_inventory,
         "inventory.name", "set_time",
         lambda p, t, r, when: inventory.set_inventory(p, t, r.inventory, r.set_mask.paths, when),
         S.SetInventoryMetadata, S.SetInventoryResponse),
    Kind("add-fulfillment-places", S.AddFulfillmentPlacesRequest,
         inventory.check_fulfillment_places, "product", "add_time",
         lambda p, t, r, when: inventory.change_places(p, t, r.type, r.place_ids, when, True),
         S.AddFulfillmentPlacesMetadata, S.AddFulfillmentPlacesResponse),
    Kind("remove-fulfillment-places", S.RemoveFulfillmentPlacesRequest,
         inventory.check_fulfillment_places, "product", "remove_time",
         lambda p, t, r, when: inventory.change_places(p, t, r.type, r.place_ids, when, False),
         S.RemoveFulfillmentPlacesMetadata, S.RemoveFulfillmentPlacesResponse),
    Kind("add-local-inventories", S.AddLocalInventoriesRequest,
         inventory.check_add_local_inventories, "product", "add_time",
         lambda p, t, r, when: inventory.add_local_inventories(
             p, t, r.local_inventories, r.add_mask.paths, when),
         S.AddLocalInventoriesMetadata, S.AddLocalInventoriesResponse),
    Kind("remove-local-inventories", S.RemoveLocalInventoriesRequest,
         inventory.check_remove_local_inventories, "product", "remove_time",
         lambda p, t, r, when: inventory.remove_local_inventories(p, t, r.place_ids, when),
         S.RemoveLocalInventoriesMetadata, S.RemoveLocalInventoriesResponse),
)}


def stamped(kind: Kind, request: Request, now_ns: int) -> Request:
    """A copy of `request` whose time field is set (to `now_ns` when the client gave none)."""
    copy = kind.request()
    copy.CopyFrom(request)
    if not copy.HasField(kind.time_field):
        getattr(copy, kind.time_field).FromNanoseconds(now_ns)
    return copy


def first_operation(kind: Kind) -> Callable[[str, int], operations_pb2.Operation]:
    return lambda name, _create_time_ns: records.operation(name, kind.metadata())


def run(ctx: JobContext) -> None:
    """Apply the stored update to its product in one transaction, then finish.

    Ends NOT_FOUND when the product is gone (unless allow_missing: then the update
    is dropped, see README), INVALID_ARGUMENT when the product it would leave breaks
    a rule (too many places of a type).
    """
    kind = KINDS[ctx.record.kind]
    request = kind.request.FromString(ctx.record.request)
    branch, product_id = kind.check(request)
    when = getattr(request, kind.time_field).ToNanoseconds()

    def change(payload: bytes, raw_times: bytes | None) -> tuple[bytes, bytes]:
        product = products.decode(payload, branch, product_id)
        stored_breaks = set(product_violations(product))  # not this update's to report
        times = inventory.Times.load(raw_times)
        kind.apply(product, times, request, when)
        raise_if_any(v for v in product_violations(product) if v not in stored_breaks)
        return product.SerializeToString(), times.dump()

    if not ctx.store.update_inventory(branch, product_id, change) and not request.allow_missing:
        raise NotFound(products.RESOURCE_TYPE, product_name(kind, request))
    ctx.finish(records.operation(ctx.record.name, kind.metadata(), response=kind.response()))
