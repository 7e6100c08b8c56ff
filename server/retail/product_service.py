"""google.cloud.retail.v2.ProductService: catalog CRUD over the store.

Rules live in `products`, `product_validation` and `product_listing`; this
module parses, calls them, talks to the store (`off_loop`: the methods are
coroutines on the server's loop) and answers. Checks that read other
products (a variant's primary, what refers to a product being deleted) are handed
to the store, which runs them in the write's own transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from footfall.retail.v2 import (
    import_config_pb2,
    product_pb2,
    product_service_pb2,
    product_service_pb2_grpc,
    purge_config_pb2,
)
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from server import names
from server.clock import Clock
from server.console.pace import Listing
from server.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    gather,
    raise_if_any,
)
from server.loop import long_read, off_loop
from server.operations.runner import OperationRunner
from server.policy import deadline_of
from server.policy.auth import project_of
from server.policy.envelope import reader_of
from server.retail import (
    import_products,
    inventory,
    inventory_operations,
    product_listing,
    products,
    purge_products,
)
from server.retail.product_validation import (
    COLLECTION,
    PRIMARY,
    VARIANT,
    check_variant_siblings,
    product_violations,
    reference_violations,
    referenced_ids,
)
from server.store import Store
from server.store.rows import ProductCheck, ProductReader


def _project(parent: str) -> str:
    """Whose reads a request's are (see loop.long_read): its parent's project."""
    return project_of(parent) or parent


def _variants_of(stored_now: ProductReader, branch: str, primary: str,
                 but: str) -> Iterator[product_pb2.Product]:
    """The stored variants of the product `primary`, but the product `but`."""
    for pid, payload in stored_now.containing(primary):
        if pid != but:
            other = products.decode(payload, branch, pid)
            if other.type == VARIANT and other.primary_product_id == primary:
                yield other


def _in_a_collection(member: str, collection: str) -> InvalidArgument:
    """Why the product `member` cannot be deleted (nor its primary with force)."""
    return InvalidArgument.field("name", f"product {member!r} is a member of collection "
                                         f"{collection!r}; remove it from the collection first")


class ProductService(product_service_pb2_grpc.ProductServiceServicer):
    """The product reads take their caller's turns in budgets of reading time while
    events are written (none: no bound): a page of ListProducts in `lists` (the
    console's pages'), the v2alpha total_size in `long_reads` (the insights'). A
    reader key may call them, and a filtered page reads up to 5,000 products, a
    count the whole branch."""

    def __init__(self, store: Store, clock: Clock, runner: OperationRunner,
                 gcs_root: Path, lists: Listing | None = None,
                 long_reads: Listing | None = None) -> None:
        self._store = store
        self._clock = clock
        self._runner = runner
        self._gcs_root = gcs_root
        self._reads = product_listing.ProductReads(store)
        self._lists = lists or Listing(0, time.monotonic)  # (no bound)
        self._long_reads = long_reads or Listing(0, time.monotonic)

    # -- helpers -----------------------------------------------------------

    @staticmethod
    def _references_hold(branch: str, product_id: str) -> ProductCheck:
        """The store's check before a product is written: INVALID_ARGUMENT when it
        names a primary or members of the wrong kind (or a missing primary), or when
        a variant would break a rule shared with its primary's other variants
        (product_validation.check_variant_siblings)."""
        def check(payload: bytes, stored_now: ProductReader) -> None:
            product = products.decode(payload, branch, product_id)
            wanted = referenced_ids(product)
            stored = stored_now.get(wanted) if wanted else {}
            found = {pid: products.decode(p, branch, pid) for pid, p in stored.items()}
            raise_if_any(reference_violations(product, found))
            if product.type == VARIANT and product.primary_product_id:
                primary = product.primary_product_id
                before = stored_now.get([product_id]).get(product_id)
                was = products.decode(before, branch, product_id) if before else None
                joining = was is None or was.type != VARIANT or was.primary_product_id != primary
                check_variant_siblings(product, _variants_of(stored_now, branch, primary,
                                                             but=product_id), joining)

        return check

    @staticmethod
    def _nothing_refers_to(branch: str, product_id: str) -> ProductCheck:
        """The store's check before a product is deleted: INVALID_ARGUMENT for a
        PRIMARY that still has variants, or a member of a COLLECTION."""
        def check(payload: bytes, stored_now: ProductReader) -> None:
            product = products.decode(payload, branch, product_id)

            def refers_to_it(other: product_pb2.Product) -> bool:
                if other.type == COLLECTION:
                    return product_id in other.collection_member_ids
                return bool(product.type == PRIMARY and other.type == VARIANT
                            and other.primary_product_id == product_id)

            def referrers() -> Iterator[product_pb2.Product]:
                for pid, found in stored_now.containing(product_id):
                    other = products.decode(found, branch, pid)
                    if refers_to_it(other):
                        yield other

            blockers = list(islice(referrers(), 5))
            variants = [b.id for b in blockers if b.type == VARIANT]
            collections = [b.id for b in blockers if b.type == COLLECTION]
            if variants:
                raise InvalidArgument.field("name", f"primary product {product_id!r} still has "
                                                    f"variants ({', '.join(variants)}); delete "
                                                    "them first")
            if collections:
                raise _in_a_collection(product_id, collections[0])

        return check

    # -- CRUD --------------------------------------------------------------

    async def CreateProduct(self, request: product_service_pb2.CreateProductRequest,
                      context: grpc.aio.ServicerContext) -> product_pb2.Product:
        """Store a new product; returns it as stored (name, id and defaults set).

        INVALID_ARGUMENT for a bad parent, product_id or product (all listed);
        ALREADY_EXISTS when the id is taken in the branch.
        """
        violations: list[FieldViolation] = []
        branch = gather(violations, names.parse_branch_key, request.parent, "parent")
        violations.extend(products.product_id_violations(request.product_id))
        if not request.HasField("product"):
            violations.append(FieldViolation("product", "is required"))
        elif request.product.id and request.product.id != request.product_id:
            violations.append(FieldViolation("product.id", "must be empty or equal product_id"))
        raise_if_any(violations)
        now_ns = self._clock.now_ns()
        product = products.new_product(request.product, branch, request.product_id, now_ns)
        raise_if_any(product_violations(product))
        fields = inventory.specified(product)
        times = inventory.overwritten(inventory.Times(), fields, now_ns).dump() if fields \
            else None
        if not await off_loop(self._store.create_product, branch, product.id,
                              product.SerializeToString(),
                              self._references_hold(branch, product.id), times):
            raise AlreadyExists(products.RESOURCE_TYPE, product.name)
        return product

    async def GetProduct(self, request: product_service_pb2.GetProductRequest,
                   context: grpc.aio.ServicerContext) -> product_pb2.Product:
        """The product `name` names (`default_branch` reads branch 0).

        INVALID_ARGUMENT for a malformed name; NOT_FOUND when there is no such product.
        """
        branch, product_id = names.parse_product_key(request.name, "name")
        return await off_loop(self._reads.must_get, branch, product_id, request.name)

    async def ListProducts(self, request: product_service_pb2.ListProductsRequest,
                     context: grpc.aio.ServicerContext) -> product_service_pb2.ListProductsResponse:
        """One page of the branch's products in id order (product_listing.ProductReads.page).
        A filtered one may read the whole branch for its page (type = "COLLECTION" in a
        branch of primaries): a long read, in its project's turn (16 of one reader key's
        at once, over 200k products, held the pool every call uses, and another
        project's product and console reads waited 5 to 10 s)."""
        if request.filter.strip():
            return await self._lists.read(reader_of(context), long_read, self._reads.page,
                                          request, share=_project(request.parent))
        return await self._lists.read(reader_of(context), off_loop, self._reads.page, request)

    async def count_products(self, parent: str, filter_text: str) -> int:
        """How many products ListProducts would return for `parent` and `filter_text`
        over all its pages (the v2alpha total_size). INVALID_ARGUMENT and NOT_FOUND
        as ListProducts."""
        violations: list[FieldViolation] = []
        branch = gather(violations, names.parse_branch_key, parent, "parent")
        query = gather(violations, product_listing.parse_filter, filter_text)
        raise_if_any(violations)
        # (each product of the branch read and decoded: a long read, as a filtered page)
        count: int = await self._long_reads.read(reader_of(None), long_read,
                                                 self._reads.count, branch, query,
                                                 share=_project(parent))
        return count

    async def delete_variants(self, name: str) -> int:
        """Delete the variants of the primary product `name` (v2alpha's force);
        how many went. Nothing for a product that is not a primary. INVALID_ARGUMENT
        for a malformed name or a variant that a collection still holds; NOT_FOUND
        when there is no such product."""
        branch, product_id = names.parse_product_key(name, "name")
        primary = await off_loop(self._reads.must_get, branch, product_id, name)
        if primary.type != PRIMARY:
            return 0
        variants = await off_loop(self._reads.ids, branch, product_listing.ProductFilter(
            "primary_product_id", product_id))
        # Refused before anything goes: a variant or the primary in a collection.
        held = await off_loop(self._reads.first_in_a_collection, branch,
                              {product_id, *variants})
        if held is not None:
            raise _in_a_collection(*held)
        deleted = 0
        for variant in variants:
            deleted += await off_loop(self._store.delete_product, branch, variant,
                                      self._nothing_refers_to(branch, variant))
        return deleted

    async def UpdateProduct(self, request: product_service_pb2.UpdateProductRequest,
                      context: grpc.aio.ServicerContext) -> product_pb2.Product:
        """Change the product `product.name` names; returns it as stored.

        With update_mask only the named fields change (`attributes.<key>` sets or
        removes one key); without, every updatable field is replaced. A missing
        product is created when allow_missing is set (the mask is then ignored).
        INVALID_ARGUMENT for a bad name, mask or resulting product, or (without a
        mask) a different `type` or `id`; NOT_FOUND when missing and not allow_missing.
        """
        violations: list[FieldViolation] = []
        if not request.HasField("product"):
            raise InvalidArgument.field("product", "is required")
        located = gather(violations, names.parse_product_key, request.product.name,
                         "product.name")
        violations.extend(products.update_mask_violations(request.update_mask))
        raise_if_any(violations)
        branch, product_id = located
        patch = request.product
        paths = list(request.update_mask.paths)
        now_ns = self._clock.now_ns()

        def merge(current: product_pb2.Product | None) -> product_pb2.Product:
            """The product to store given what is stored now; raises as documented."""
            if current is None:
                if not request.allow_missing:
                    raise NotFound(products.RESOURCE_TYPE, patch.name)
                if patch.id and patch.id != product_id:
                    raise InvalidArgument.field("product.id", "must be empty or match "
                                                              "product.name")
                updated = products.new_product(patch, branch, product_id, now_ns)
            else:
                if not paths:  # with a mask, fields outside it are ignored
                    raise_if_any(products.immutable_violations(current, patch))
                updated = products.apply_update(current, patch, paths, now_ns)
            raise_if_any(product_violations(updated))
            return updated

        # The inventory fields it sets: named by the mask, all of them without one, or
        # those the new product has when it is created.
        asked = [p for p in paths if p in inventory.SET_MASK_PATHS] if paths \
            else list(inventory.SET_MASK_PATHS)
        fields = list(asked)

        # Merged and checked in the store's transaction: a concurrent update is never
        # lost, and the products it refers to cannot change in between. Run more than
        # once (on a read for the check first; again after a rollback), each run says
        # the fields afresh: one that found the product missing said those of the
        # product it made, and the next, finding it made meanwhile, kept them.
        def change(payload: bytes | None) -> bytes:
            current = None if payload is None else products.decode(payload, branch, product_id)
            updated = merge(current)
            fields[:] = inventory.specified(updated) if current is None else asked
            return bytes(updated.SerializeToString())

        def stamp(raw_times: bytes | None) -> bytes:
            """The inventory update times: those it sets are now's, whatever they were."""
            return inventory.overwritten(inventory.Times.load(raw_times), fields, now_ns).dump()

        stored = await off_loop(self._store.update_product, branch, product_id, change,
                                self._references_hold(branch, product_id), stamp)
        assert stored is not None  # `change` always returns a product
        return products.decode(stored, branch, product_id)

    async def DeleteProduct(self, request: product_service_pb2.DeleteProductRequest,
                      context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        """Delete the product `name` names; returns Empty.

        INVALID_ARGUMENT for a malformed name, a PRIMARY that still has variants,
        or a member of a COLLECTION; NOT_FOUND when there is no such product.
        """
        branch, product_id = names.parse_product_key(request.name, "name")
        if not await off_loop(self._store.delete_product, branch, product_id,
                              self._nothing_refers_to(branch, product_id)):
            raise NotFound(products.RESOURCE_TYPE, request.name)
        return empty_pb2.Empty()

    # -- import: a long-running operation ----------------------------------

    async def ImportProducts(self, request: import_config_pb2.ImportProductsRequest,
                       context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Start a product import operation (under the branch); INVALID_ARGUMENT for
        what can be checked now: parent, source, sizes, files, mode, update_mask;
        DEADLINE_EXCEEDED when listing the files outlasts the call."""
        branch = await off_loop(import_products.check_request, request, self._gcs_root,
                                deadline_of(context))
        return await off_loop(self._runner.submit, branch, import_products.KIND, request,
                              import_products.new_operation)

    async def PurgeProducts(self, request: purge_config_pb2.PurgeProductsRequest,
                            context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Start a product purge operation (under the branch); INVALID_ARGUMENT for a
        bad parent or filter."""
        branch, _ = purge_products.check_request(request)
        return await off_loop(self._runner.submit, branch, purge_products.KIND, request,
                              purge_products.new_operation)

    # -- inventory: long-running operations, one kind per RPC -----------------

    async def _update_inventory(self, kind: str, request: Any) -> operations_pb2.Operation:
        """Apply an inventory update; returns its operation, done.

        INVALID_ARGUMENT naming each bad field, or when the product it would leave
        breaks a rule; NOT_FOUND when the product does not exist and allow_missing is
        not set (with it, the operation is stored and nothing else: see README).
        """
        update = inventory_operations.prepare(kind, request, self._clock.now_ns())
        if not await off_loop(self._store.update_inventory, update.branch, update.product_id,
                              update.change, update.record):
            if not request.allow_missing:
                raise NotFound(products.RESOURCE_TYPE, update.shown_name)
            await off_loop(self._store.create_operation, update.record)
        return update.operation

    async def SetInventory(
            self, request: product_service_pb2.SetInventoryRequest,
            context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Set the inventory fields `set_mask` names, where no later update set them."""
        return await self._update_inventory("set-inventory", request)

    async def AddFulfillmentPlaces(
            self, request: product_service_pb2.AddFulfillmentPlacesRequest,
            context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Add places to one fulfillment type, where no later update removed them."""
        return await self._update_inventory("add-fulfillment-places", request)

    async def RemoveFulfillmentPlaces(
            self, request: product_service_pb2.RemoveFulfillmentPlacesRequest,
            context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Remove places from one fulfillment type, where no later update added them."""
        return await self._update_inventory("remove-fulfillment-places", request)

    async def AddLocalInventories(
            self, request: product_service_pb2.AddLocalInventoriesRequest,
            context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Set fields of the inventories at places, where no later update set them."""
        return await self._update_inventory("add-local-inventories", request)

    async def RemoveLocalInventories(
            self, request: product_service_pb2.RemoveLocalInventoriesRequest,
            context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Remove the inventories at places, where no later update set them."""
        return await self._update_inventory("remove-local-inventories", request)
