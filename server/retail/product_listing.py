"""ListProducts: its filters, page tokens and pages, and scanning a branch for
products. ProductReads answers it over a store, for the servicer and for
`footfall products list` reading a store file alike.

Google documents four filter forms; anything else is INVALID_ARGUMENT:
  (empty)                         every product of the branch
  primary_product_id = "ID"       the VARIANTs of primary ID
  collection_product_id = "ID"    the members of collection ID
  type = "PRIMARY"|"VARIANT"|"COLLECTION"
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from footfall.retail.v2 import product_pb2, product_service_pb2

from server import names, page_tokens
from server.errors import FieldViolation, InvalidArgument, NotFound, gather, raise_if_any
from server.retail import products
from server.retail.product_validation import COLLECTION, VARIANT
from server.retail.products import decode

if TYPE_CHECKING:  # (`footfall products list --server` checks its filter here)
    from server.store import Store

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000
_SCAN_BATCH = 200  # products read at once (each of up to product_validation.MAX_PRODUCT_BYTES)
# ... and at most about this many bytes of them, a batch ending with the product that
# passes it: 200 products of 2 MiB each were 400 MB held by one scan, and a scan runs
# on each reading thread (--workers) at once.
SCAN_BYTES = 4 * 1024 * 1024
# Products one call of ListProducts reads at most while its filter (a type, a
# primary's variants) leaves its page short, as the console's lists do: one that
# matched none read the whole branch in one call (50,000 products: 0.29 s of a
# reading thread, and on with the branch). Google: a page may hold fewer than
# page_size; the next_page_token goes on from the last product read.
SCAN_LIMIT = page_tokens.SCAN_LIMIT

_FILTER = re.compile(r'^\s*(?P<key>primary_product_id|collection_product_id|type)\s*=\s*'
                     r'"(?P<value>(?:[^"\\]|\\.)*)"\s*$')
_TYPES = ("PRIMARY", "VARIANT", "COLLECTION")


@dataclass(frozen=True)
class ProductFilter:
    """A parsed filter: `key` is '' (everything) or one of the documented keys."""

    key: str = ""
    value: str = ""

    def matches(self, product: Any) -> bool:
        """Whether `product` passes (collection membership is decided by the caller)."""
        if self.key == "primary_product_id":
            return bool(product.type == VARIANT and product.primary_product_id == self.value)
        if self.key == "type":
            return bool(product.type == product_pb2.Product.Type.Value(self.value))
        return True


def parse_filter(text: str, field: str = "filter") -> ProductFilter:
    """The filter `text` means; INVALID_ARGUMENT naming `field` when unsupported."""
    if not text.strip():
        return ProductFilter()
    match = _FILTER.match(text)
    if not match:
        raise InvalidArgument.field(
            field, 'filter not supported; use primary_product_id = "ID", '
                   'collection_product_id = "ID" or type = "PRIMARY|VARIANT|COLLECTION", '
                   f"got {text[:200]!r}")
    value = re.sub(r"\\(.)", r"\1", match["value"])
    if match["key"] == "type" and value not in _TYPES:
        raise InvalidArgument.field(field, f"type must be one of {', '.join(_TYPES)}, "
                                           f"got {value!r}")
    if not value:
        raise InvalidArgument.field(field, f"{match['key']} needs a product id")
    return ProductFilter(match["key"], value)


def page_size(requested: int, field: str = "page_size") -> int:
    """100 when unset, at most 1000; INVALID_ARGUMENT when negative."""
    if requested < 0:
        raise InvalidArgument.field(field, f"must not be negative, got {requested}")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def query_fingerprint(*parts: str) -> str:
    """A short digest of the request fields a page token is bound to."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def encode_page_token(key: bytes, after_id: str, fingerprint: str) -> str:
    """A token to resume after `after_id` for the same query, signed with the store's
    `key` (see page_tokens)."""
    return page_tokens.signed(key, json.dumps([after_id, fingerprint],
                                              separators=(",", ":")).encode())


def decode_page_token(key: bytes | None, token: str, fingerprint: str) -> str:
    """The product id to resume after ('' for no token).

    INVALID_ARGUMENT naming page_token when the token was not signed with `key`
    (changed, made up, or of an earlier Footfall) or came from a different query.
    """
    if not token:
        return ""
    try:
        after_id, made_for = json.loads(page_tokens.body_of(key, token))
        if not isinstance(after_id, str) or not isinstance(made_for, str):
            raise ValueError(token)
    except (ValueError, TypeError):  # (signed, yet not ours: never written here)
        raise InvalidArgument.field("page_token", "is not a token this server issued") from None
    if made_for != fingerprint:
        raise InvalidArgument.field("page_token", "was issued for a different parent, filter "
                                                  "or read_mask; those must not change while "
                                                  "paging")
    return str(after_id)


@dataclass
class Scanned:
    """How far a scan read: at most `limit` products (None: all of them); the id of
    the last product read, and whether it stopped at `limit` with more to read."""

    limit: int | None = None
    read: int = 0
    last_id: str = ""
    cut: bool = False


def scan(store: Store, branch: str, keep: Callable[[Any], bool], after_id: str = "",
         needle: str = "", scanned: Scanned | None = None) -> Iterator[Any]:
    """Every product of `branch` after `after_id` that `keep` accepts, in id order,
    among the first `scanned.limit` read (when given: `scanned` says how far it read).

    `needle`, when given, is text any kept product's serialized form contains;
    rows without it are skipped unparsed (a cheap prefilter for id references).
    """
    marker = needle.encode()
    scanned = scanned or Scanned()
    while True:
        batch = _SCAN_BATCH if scanned.limit is None \
            else min(_SCAN_BATCH, scanned.limit - scanned.read)
        rows = store.list_products(branch, batch, after_id, max_bytes=SCAN_BYTES)
        held = 0
        for product_id, payload in rows:
            held += len(payload)
            scanned.read += 1
            scanned.last_id = product_id
            if marker and marker not in payload:
                continue
            product = decode(payload, branch, product_id)
            if keep(product):
                yield product
        if not rows or (len(rows) < batch and held < SCAN_BYTES):  # (not cut by its bytes)
            return
        after_id = rows[-1][0]
        if scanned.limit is not None and scanned.read >= scanned.limit:
            scanned.cut = True  # (more may follow: the next call reads on from here)
            return


class ProductReads:
    """The products of a store as ProductService reads them (blocking: the
    servicer calls these off the loop)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, branch: str, product_id: str) -> product_pb2.Product | None:
        found = self._store.get_products(branch, [product_id]).get(product_id)
        return None if found is None else decode(found, branch, product_id)

    def must_get(self, branch: str, product_id: str, shown_name: str) -> product_pb2.Product:
        product = self.get(branch, product_id)
        if product is None:
            raise NotFound(products.RESOURCE_TYPE, shown_name)
        return product

    def page(self, request: product_service_pb2.ListProductsRequest
             ) -> product_service_pb2.ListProductsResponse:
        """One page of the branch's products in id order, with a next_page_token
        when more follow; fields as read_mask says (Google's default set if empty).

        INVALID_ARGUMENT for a bad parent, negative page_size, unsupported filter,
        unknown read_mask path, or a page_token from another query; NOT_FOUND
        when the filter names a primary or collection that does not exist.
        """
        violations: list[FieldViolation] = []
        branch = gather(violations, names.parse_branch_key, request.parent, "parent")
        size = gather(violations, page_size, request.page_size)
        query = gather(violations, parse_filter, request.filter)
        violations.extend(products.read_mask_violations(request.read_mask))
        raise_if_any(violations)
        fingerprint = query_fingerprint(branch, request.filter,
                                        ",".join(request.read_mask.paths))
        # (the store's key read only for a token: a list of one page writes nothing, so
        # a new store stays empty, a copy's target)
        after_id = decode_page_token(self._store.page_token_key_if_made(), request.page_token,
                                     fingerprint) if request.page_token else ""
        answer = product_service_pb2.ListProductsResponse()
        held = 0
        last = ""  # the id of the last product shown (a read_mask may leave `id` out)
        # (without a filter every product read is shown: its page bounds the call)
        scanned = Scanned(SCAN_LIMIT if query.key else None)
        for product in self.matching(branch, query, after_id, scanned):
            shown = products.apply_read_mask(product, request.read_mask.paths)
            weight = shown.ByteSize()  # (which serializes it: measured once)
            if len(answer.products) == size or (
                    answer.products and held + weight > page_tokens.PAGE_BYTES):
                answer.next_page_token = encode_page_token(self._store.page_token_key(),
                                                           last, fingerprint)
                break
            answer.products.append(shown)
            held += weight
            last = product.id
        else:
            if scanned.cut:  # short (or empty), but this call has read enough
                answer.next_page_token = encode_page_token(self._store.page_token_key(),
                                                           scanned.last_id, fingerprint)
        return answer

    def matching(self, branch: str, query: ProductFilter, after_id: str,
                 scanned: Scanned | None = None) -> Iterator[product_pb2.Product]:
        """The products the filter selects after `after_id`, by id, read as they are
        taken (of the branch's first `scanned.limit` when given, `scanned` saying how
        far it read: a collection's members are read by id, never scanned); NOT_FOUND
        (at once) when it names a primary or collection that does not exist."""
        if query.key == "collection_product_id":
            return self._collection_members(branch, query.value, after_id)
        if query.key == "primary_product_id":
            self.must_get(branch, query.value, names.product_name(branch, query.value))
        return scan(self._store, branch, query.matches, after_id,
                    needle=query.value if query.key == "primary_product_id" else "",
                    scanned=scanned)

    def count(self, branch: str, query: ProductFilter) -> int:
        """How many products the filter selects (each read and let go)."""
        return sum(1 for _ in self.matching(branch, query, ""))

    def ids(self, branch: str, query: ProductFilter) -> list[str]:
        """The ids of the products the filter selects, by id."""
        return [product.id for product in self.matching(branch, query, "")]

    def first_in_a_collection(self, branch: str, ids: set[str]) -> tuple[str, str] | None:
        """(member, collection) of the first collection of `branch` holding one of
        `ids`, or None."""
        for collection in scan(self._store, branch, lambda p: p.type == COLLECTION):
            for member in collection.collection_member_ids:
                if member in ids:
                    return member, collection.id
        return None

    def _collection_members(self, branch: str, collection_id: str,
                            after_id: str) -> Iterator[product_pb2.Product]:
        """The existing members of the collection, after `after_id`, by id (NOT_FOUND
        at once, before the first is taken, when the collection does not exist)."""
        name = names.product_name(branch, collection_id)
        collection = self.must_get(branch, collection_id, name)
        members = sorted(m for m in set(collection.collection_member_ids) if m > after_id)

        def read() -> Iterator[product_pb2.Product]:
            for start in range(0, len(members), _SCAN_BATCH):
                part = members[start:start + _SCAN_BATCH]
                stored = self._store.get_products(branch, part)
                yield from (decode(stored[m], branch, m) for m in part if m in stored)
        return read()
