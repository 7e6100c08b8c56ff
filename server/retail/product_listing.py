"""ListProducts filters and page tokens, and scanning a branch for products.

Google documents four filter forms; anything else is INVALID_ARGUMENT:
  (empty)                         every product of the branch
  primary_product_id = "ID"       the VARIANTs of primary ID
  collection_product_id = "ID"    the members of collection ID
  type = "PRIMARY"|"VARIANT"|"COLLECTION"
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from footfall.retail.v2 import product_pb2

from server.errors import InvalidArgument
from server.retail.product_validation import VARIANT
from server.retail.products import decode
from server.store import Store

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000
_SCAN_BATCH = 500

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


def encode_page_token(after_id: str, fingerprint: str) -> str:
    """An opaque token: resume after `after_id` for the same query."""
    raw = json.dumps([after_id, fingerprint], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str, field: str = "page_token") -> str:
    """The product id to resume after ('' for no token).

    INVALID_ARGUMENT when the token is not ours or came from a different query.
    """
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        after_id, made_for = json.loads(raw)
        if not isinstance(after_id, str) or not isinstance(made_for, str):
            raise ValueError(token)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidArgument.field(field, "is not a token this server issued") from None
    if made_for != fingerprint:
        raise InvalidArgument.field(field, "was issued for a different parent, filter or "
                                           "read_mask; those must not change while paging")
    return str(after_id)


def scan(store: Store, branch: str, keep: Callable[[Any], bool], after_id: str = "",
         needle: str = "") -> Iterator[Any]:
    """Every product of `branch` after `after_id` that `keep` accepts, in id order.

    `needle`, when given, is text any kept product's serialized form contains;
    rows without it are skipped unparsed (a cheap prefilter for id references).
    """
    marker = needle.encode()
    while True:
        rows = store.list_products(branch, _SCAN_BATCH, after_id)
        for product_id, payload in rows:
            if marker and marker not in payload:
                continue
            product = decode(payload, branch, product_id)
            if keep(product):
                yield product
        if len(rows) < _SCAN_BATCH:
            return
        after_id = rows[-1][0]
