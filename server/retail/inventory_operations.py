"""The five inventory RPCs: each update is applied to its product and its operation
stored, done, in one transaction, before the call is answered.

Google queues these updates and runs them as long-running operations. Footfall's
update is one small write: made at once, it needs no worker and no waiting, a crash
leaves nothing half applied, and the operation the client polls is already done
(any replica can read it). Its request is stored with its time filled in (the
server's clock when the client gave none), as the ordering rule used it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from footfall.retail.v2 import product_service_pb2
from google.longrunning import operations_pb2

from server.errors import raise_if_any
from server.operations import records
from server.retail import inventory, products
from server.retail.product_validation import product_violations
from server.store.rows import OperationRecord

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


def _product_name(kind: Kind, request: Request) -> str:
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


@dataclass(frozen=True)
class Update:
    """One checked inventory update, ready for `Store.update_inventory`."""

    branch: str
    product_id: str
    change: Callable[[bytes, bytes | None], tuple[bytes, bytes]]
    record: OperationRecord  # the done operation, stored with the change
    operation: operations_pb2.Operation  # what the client gets
    shown_name: str  # the product as the request names it (for NOT_FOUND)


def prepare(kind_name: str, request: Request, now_ns: int) -> Update:
    """The update `request` asks for, as of its time or `now_ns`.

    INVALID_ARGUMENT naming each bad field (here, or from `change` when the product it
    would leave breaks a rule it did not break before: too many places of a type).
    """
    kind = KINDS[kind_name]
    branch, product_id = kind.check(request)
    stored = kind.request()
    stored.CopyFrom(request)
    if not stored.HasField(kind.time_field):
        getattr(stored, kind.time_field).FromNanoseconds(now_ns)
    when = getattr(stored, kind.time_field).ToNanoseconds()

    def change(payload: bytes, raw_times: bytes | None) -> tuple[bytes, bytes]:
        product = products.decode(payload, branch, product_id)
        times = inventory.Times.load(raw_times)
        kind.apply(product, times, stored, when)
        broken = product_violations(product)
        if broken:  # only those this update brought are its to report: of a field that
            # was sound (a product stored before MAX_PRODUCT_BYTES, whose size said
            # afresh differed each time, could not be changed at all, not even smaller)
            before = {v.field for v in product_violations(
                products.decode(payload, branch, product_id))}
            raise_if_any(v for v in broken if v.field not in before)
        return product.SerializeToString(), times.dump()

    name = records.new_name(branch, kind.name)
    operation = records.operation(name, kind.metadata(), response=kind.response())
    record = OperationRecord(name=name, kind=kind.name, done=True, create_time_us=now_ns // 1000,
                             request=stored.SerializeToString(),
                             operation=operation.SerializeToString())
    return Update(branch, product_id, change, record, operation, _product_name(kind, request))
