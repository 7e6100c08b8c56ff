"""ImportProducts: checked when called, then run as a resumable operation.

Products are upserted (INCREMENTAL reconciliation) in batches; with an
update_mask only the masked fields of existing products change, and products
not stored yet are not created (Google's rule for a masked import).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from footfall.retail.v2 import import_config_pb2, product_pb2

from server import names
from server.errors import FieldViolation, InvalidArgument, gather, raise_if_any
from server.operations.runner import JobContext
from server.retail import products
from server.retail.bulk_import import (
    BulkImport,
    Checked,
    ImportState,
    Item,
    SourceRules,
    check_sources,
    new_operation,
)
from server.retail.product_validation import product_violations
from server.store.rows import ProductPut, Step

KIND = "import-products"
MAX_INLINE_PRODUCTS = 10_000
SOURCES = SourceRules("product_inline_source", "products", "product", ("", "product"),
                      "Footfall reads 'product' (one proto3-JSON Product per line)",
                      max_inline=MAX_INLINE_PRODUCTS, inline_errors=True)
Request = import_config_pb2.ImportProductsRequest
Product = product_pb2.Product
Mode = Request.ReconciliationMode

__all__ = ["KIND", "ImportProductsJob", "check_request", "new_operation"]


def check_request(request: Request, gcs_root: Path, deadline: float | None = None) -> str:
    """What can be checked before the job runs; returns the (normalised) branch.

    INVALID_ARGUMENT naming each bad field; DEADLINE_EXCEEDED when `deadline`
    (time.monotonic()) passes while gs:// files are listed.
    """
    violations: list[FieldViolation] = []
    branch = gather(violations, names.parse_branch_key, request.parent, "parent")
    violations.extend(check_sources(request, gcs_root, SOURCES, deadline))
    if request.reconciliation_mode == Mode.FULL:
        violations.append(FieldViolation(
            "reconciliation_mode", "FULL is not supported by Footfall; use INCREMENTAL "
                                   "(products not in the source are kept)"))
    elif request.reconciliation_mode not in (Mode.RECONCILIATION_MODE_UNSPECIFIED,
                                             Mode.INCREMENTAL):
        violations.append(FieldViolation("reconciliation_mode",
                                         f"unknown mode {request.reconciliation_mode}"))
    if request.HasField("update_mask"):
        violations.extend(products.update_mask_violations(request.update_mask))
    raise_if_any(violations)
    return str(branch)


def import_id(product: Product, branch: str) -> str:
    """The id a product imports under: its `id`, else the id its `name` gives, as
    Google's importer reads it: a full name in `branch`, or the bare id."""
    if product.id or not product.name:
        return product.id
    if "/" not in product.name:
        return product.name
    try:
        name_branch, pid = names.parse_product_key(product.name)
    except InvalidArgument:
        return ""  # then `id` is required
    return pid if name_branch == branch else ""


@dataclass(frozen=True)
class ProductCheck:
    """Nothing to check alone: a product's rules apply once it is merged with the
    stored one (in `prepare`), so workers only decode its line."""

    message_class = Product

    def __call__(self, item: Item[Product]) -> Checked[Product]:
        return item

    def beside_unread(self, product: Product, unread: list[FieldViolation]
                      ) -> list[FieldViolation]:
        """None: a product's rules need the stored one it is merged with."""
        return []


class ImportProductsJob(BulkImport[Request, Product, Product]):
    """Runs import-products operations."""

    what = "the product import"
    line_field = "product"
    method = "/google.cloud.retail.v2.ProductService/ImportProducts"
    request_class = Request
    sources = SOURCES

    def item_check(self, request: Request, now_s: int) -> ProductCheck:
        return ProductCheck()

    def prepare(self, ctx: JobContext, request: Request,
                items: list[Checked[Product]]) -> tuple[list[str], Step]:
        branch = names.parse_branch_key(request.parent)
        paths = list(request.update_mask.paths) if request.HasField("update_mask") else None
        given_items = [item for item in items if not isinstance(item, str)]
        # The step commits only if these are still as read (else the batch is made
        # again): an UpdateProduct or AddLocalInventories between would be undone.
        read = ctx.store.read_products(branch, [pid for i in given_items
                                                if (pid := import_id(i.message, branch))])
        existing = read.products
        now = ctx.clock.now_ns()
        failures: list[str] = []
        upserts: dict[str, bytes] = {}
        for item in items:
            if isinstance(item, str):  # a line that could not be read or decoded
                failures.append(item)
                continue
            path, given = item.path("product"), item.message
            given.id = import_id(given, branch)
            violations = products.product_id_violations(given.id, f"{path}.id")
            if not violations:
                current = upserts.get(given.id) or existing.get(given.id)
                if paths is not None and current is None:
                    continue  # a masked import only updates: valid, but nothing to change
                if paths is not None and current is not None:
                    product = products.apply_update(
                        products.decode(current, branch, given.id), given, paths, now)
                else:
                    product = products.new_product(given, branch, given.id, now)
                    if current is not None:
                        # Output only here: AddLocalInventories' places outlive a
                        # re-import, as on Google.
                        product.local_inventories.extend(products.decode(
                            current, branch, given.id).local_inventories)
                violations = product_violations(product, path)
            if violations:
                failures.append(item.failure(violations))
                continue
            upserts[given.id] = product.SerializeToString()
        return failures, Step(put_products=[ProductPut(branch, pid, payload)
                                            for pid, payload in upserts.items()],
                              products_read=read)

    def response(self, state: ImportState) -> import_config_pb2.ImportProductsResponse:
        return import_config_pb2.ImportProductsResponse()
