"""Catalog products as pure functions: ids, defaults, update and read masks.

Used by ProductService and by product import. Products are stored under the
branch name `server.names.parse_branch_key` gives and always carry their full
`name` and `id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from footfall.retail.v2 import product_pb2
from google.api import field_behavior_pb2
from google.protobuf import field_mask_pb2

from server.errors import Aborted, FieldViolation
from server.names import MAX_PRODUCT_ID, product_id_problem, product_name
from server.retail.product_validation import LATEST_EXPIRE_NS, PRIMARY
from server.retail.validation import too_long

RESOURCE_TYPE = "google.cloud.retail.v2.Product"
_DESCRIPTOR = product_pb2.Product.DESCRIPTOR


def _behaviour(field: Any) -> set[int]:
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


# Read from the contract's field_behavior annotations, so a new field is handled
# as the contract says without touching this module.
IMMUTABLE = frozenset(f.name for f in _DESCRIPTOR.fields
                      if field_behavior_pb2.IMMUTABLE in _behaviour(f))
OUTPUT_ONLY = frozenset(f.name for f in _DESCRIPTOR.fields
                        if field_behavior_pb2.OUTPUT_ONLY in _behaviour(f))
UPDATABLE = frozenset(_DESCRIPTOR.fields_by_name) - IMMUTABLE - OUTPUT_ONLY
# How many times in a row a job tries one batch (made at first, then again each time a
# product it was made from was written before its step committed: ProductsChanged);
# past it, the operation ends ABORTED (a branch whose products are written without
# pause never let it commit).
MAX_REMAKES = 20
# What ListProducts returns when read_mask is empty, as Google documents it.
DEFAULT_READ_FIELDS = ("name", "id", "title", "uri", "images", "price_info", "brands")
# The paths a read_mask may name: about three times the fields of a Product (34), so
# a mask past it names one again. (A million paths took 1.5 s of CPU to list their
# violations, a million of them, of which 100 are reported.)
MAX_READ_MASK_PATHS = 100
# The paths an update_mask may name: every field and an `attributes.<key>` for each of
# a product's 200 attributes removed and 200 set, with room to spare. (A million paths
# took 1.2 s of CPU to list their violations, as a read_mask's did.)
MAX_UPDATE_MASK_PATHS = 1_000


# -- ids and stored products ----------------------------------------------

def product_id_violations(product_id: str, field: str = "product_id") -> list[FieldViolation]:
    """Rules for a client-chosen product id: required, at most 128 characters, no
    white space, control or invisible format character (NUL among them), and
    (since it may hold '/') no empty, `.` or `..` segment, which a URL would lose."""
    if not product_id:
        return [FieldViolation(field, "is required")]
    if len(product_id) > MAX_PRODUCT_ID:
        return [too_long(field, product_id, MAX_PRODUCT_ID)]
    problem = product_id_problem(product_id)
    if problem is not None:
        return [FieldViolation(field, problem)]
    if any(part in ("", ".", "..") for part in product_id.split("/")):
        return [FieldViolation(field, "must not have an empty, '.' or '..' part between "
                                      f"slashes (no URL could name it), got {product_id!r}")]
    return []


def decode(payload: bytes, branch: str, product_id: str) -> Any:
    """A stored product, with its name and id set from where it is stored."""
    product = product_pb2.Product.FromString(payload)
    product.name = product_name(branch, product_id)
    product.id = product_id
    return product


# -- defaults --------------------------------------------------------------

def apply_defaults(product: Any, now_ns: int) -> None:
    """Apply Google's defaults in place: type PRIMARY, a primary's own id as its
    primary_product_id, `ttl` turned into `expire_time`; output-only fields dropped.
    (An unset availability stays unset, and reads as IN_STOCK where it counts.)"""
    if product.type == product_pb2.Product.TYPE_UNSPECIFIED:
        product.type = PRIMARY
    if product.type == PRIMARY and not product.primary_product_id:
        product.primary_product_id = product.id
    if product.HasField("ttl") and product.ttl.ToNanoseconds() >= 0:
        # A negative ttl, or one that ends past what a Timestamp holds, stays, so
        # validation can name it.
        expires = now_ns + product.ttl.ToNanoseconds()
        if expires <= LATEST_EXPIRE_NS:
            product.expire_time.FromNanoseconds(expires)  # also clears the ttl (one oneof)
    product.ClearField("variants")
    product.price_info.ClearField("price_range")
    if not product.price_info.ListFields():
        product.ClearField("price_info")


def new_product(request_product: Any, branch: str, product_id: str, now_ns: int) -> Any:
    """A copy of `request_product` as it is to be stored under `product_id`.

    The client's `name` is ignored (the server names products) and output-only
    `local_inventories` are dropped.
    """
    product = product_pb2.Product()
    product.CopyFrom(request_product)
    product.name = product_name(branch, product_id)
    product.id = product_id
    product.ClearField("local_inventories")
    apply_defaults(product, now_ns)
    return product


# -- update masks ----------------------------------------------------------

def update_mask_violations(mask: Any, field: str = "update_mask") -> list[FieldViolation]:
    """Every mask path UpdateProduct cannot apply: unknown, immutable, output-only,
    or nested (only `attributes.<key>` reaches inside a field); more than
    MAX_UPDATE_MASK_PATHS paths, at once (one violation, none looked at)."""
    if len(mask.paths) > MAX_UPDATE_MASK_PATHS:
        return [FieldViolation(f"{field}.paths", f"must name at most {MAX_UPDATE_MASK_PATHS:,} "
                                                 f"paths, got {len(mask.paths):,}")]
    out: list[FieldViolation] = []
    for i, path in enumerate(mask.paths):
        where = f"{field}.paths[{i}]"
        head, dot, rest = path.partition(".")
        if head == "attributes" and dot:
            if not rest:
                out.append(FieldViolation(where, "attributes.<key> needs a key"))
        elif head not in _DESCRIPTOR.fields_by_name:
            out.append(FieldViolation(where, f"unknown Product field {path!r}"))
        elif head in IMMUTABLE:
            out.append(FieldViolation(where, f"{head} is immutable and cannot be updated"))
        elif head in OUTPUT_ONLY:
            out.append(FieldViolation(where, f"{head} is output only and cannot be updated"))
        elif dot:
            out.append(FieldViolation(where, f"only whole fields can be updated, not {path!r} "
                                             "(attributes.<key> is the one exception)"))
    return out


def immutable_violations(current: Any, patch: Any, path: str = "product") -> list[FieldViolation]:
    """A patch that sets `type` or `id` to a value other than the stored one."""
    out: list[FieldViolation] = []
    if patch.type and patch.type != current.type:
        out.append(FieldViolation(f"{path}.type", f"is immutable: stored {_type(current.type)}, "
                                                  f"got {_type(patch.type)}"))
    if patch.id and patch.id != current.id:
        out.append(FieldViolation(f"{path}.id", f"is immutable: stored {current.id!r}, "
                                                f"got {patch.id[:50]!r}"))
    return out


def _type(value: int) -> str:
    known = value in product_pb2.Product.Type.values()
    return str(product_pb2.Product.Type.Name(value)) if known else str(value)


def apply_update(current: Any, patch: Any, paths: Sequence[str], now_ns: int) -> Any:
    """`current` with the fields of `patch` that `paths` name (all updatable
    fields when `paths` is empty). `paths` must have passed
    `update_mask_violations`; immutable and output-only fields keep their values."""
    updated = product_pb2.Product()
    if not paths:
        updated.CopyFrom(patch)
        for name in sorted(IMMUTABLE | OUTPUT_ONLY):
            updated.ClearField(name)
            _copy_field(current, updated, name)
        apply_defaults(updated, now_ns)
        return updated
    updated.CopyFrom(current)
    whole = [p for p in paths if "." not in p]
    if whole:
        field_mask_pb2.FieldMask(paths=whole).MergeMessage(
            patch, updated, replace_message_field=True, replace_repeated_field=True)
    for path in paths:
        head, _, key = path.partition(".")
        if head == "attributes" and key:
            if key in patch.attributes:
                updated.attributes[key].CopyFrom(patch.attributes[key])
            elif key in updated.attributes:
                del updated.attributes[key]
    apply_defaults(updated, now_ns)
    return updated


def _copy_field(source: Any, target: Any, name: str) -> None:
    """Copy one top-level field (any kind) from `source` to a cleared `target`."""
    field = _DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        getattr(target, name).extend(getattr(source, name))
    elif field.message_type is not None:
        if source.HasField(name):
            getattr(target, name).CopyFrom(getattr(source, name))
    else:
        setattr(target, name, getattr(source, name))


# -- read masks ------------------------------------------------------------

def read_mask_violations(mask: Any, field: str = "read_mask") -> list[FieldViolation]:
    """Mask paths ListProducts cannot return: anything but `*` or a Product field;
    more than MAX_READ_MASK_PATHS paths, at once (one violation, none looked at)."""
    if len(mask.paths) > MAX_READ_MASK_PATHS:
        return [FieldViolation(f"{field}.paths", f"must name at most {MAX_READ_MASK_PATHS} "
                                                 f"paths, got {len(mask.paths):,}")]
    return [FieldViolation(f"{field}.paths[{i}]", f"unknown Product field {path!r}")
            for i, path in enumerate(mask.paths)
            if path != "*" and path not in _DESCRIPTOR.fields_by_name]


def apply_read_mask(product: Any, paths: Sequence[str]) -> Any:
    """The fields of `product` that `paths` name (Google's default set when empty,
    everything for `*`); `name` is always kept."""
    if "*" in paths:
        return product
    wanted = sorted(set(paths or DEFAULT_READ_FIELDS) | {"name"})
    shown = product_pb2.Product()
    field_mask_pb2.FieldMask(paths=wanted).MergeMessage(product, shown)
    return shown


def remade_too_often(what: str) -> Aborted:
    """ABORTED, for a job (`what`: "the product import") one of whose batches was made
    MAX_REMAKES times over."""
    return Aborted(f"{what} stopped: one of its batches was made {MAX_REMAKES} times over, "
                   "each time a product it was made from was written before it could commit "
                   "(UpdateProduct, inventory, another import or purge of the branch); what "
                   "committed before it is kept: run it again once those writes are fewer")
