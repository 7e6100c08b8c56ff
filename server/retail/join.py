"""Joining events with the product catalog.

An event is joined when every product it names exists in the catalog's default
branch; its products are then filled in from the catalog (title, categories,
price...), keeping a price_info the event carried itself, as Google describes.
Events that name no product count as joined.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from footfall.retail.v2 import product_pb2

from server.names import default_branch
from server.store import EventRow, Store
from server.store.group_commit import Join

log = logging.getLogger("footfall.join")

# An event joined is kept beside the event as received, and a console message of it
# (console.v1.StoredUserEvent) holds both: of two events of up to --max-event-bytes
# (2 MiB), it was 4,194,431 bytes, past the 4 MiB a gRPC client takes by default, so
# no page holding it, nor a watch reaching it, could be read by one (a writer key's
# event of 2 MiB less 10 bytes, naming a product of the catalog with another title).
# So the two together are at most CLIENT_MESSAGE_BYTES (or --max-event-bytes, when
# larger: no larger than an event not joined may be), less STORED_EVENT_ROOM: what
# such a message holds besides them (id, times, a catalog's name of up to 800
# characters).
CLIENT_MESSAGE_BYTES = 4 * 1024 * 1024
STORED_EVENT_ROOM = 1024
# An event of at most this many product details, each naming another product, is
# joined without first judging whether it may fit (_may_fit): each product's size
# costs an encoding of it to find (20 us for three products of 1 KB, 45% of the whole
# join, on every write of a catalog's products), and the event joined is measured
# after anyway. Copying each product once costs about what reading it from the store
# did; an event naming one product many times is judged first (one of 1.8 MB named
# 8 times took 49 ms to copy, against 1.2 ms to judge).
FEW_DETAILS = 8


def product_ids(events: Iterable[Any]) -> list[str]:
    return [d.product.id for e in events for d in e.product_details if d.product.id]


def load_products(store: Store, catalog: str, ids: list[str], *,
                  to_join: bool = False) -> dict[str, Any]:
    """The catalog's default-branch Products among `ids`, parsed. `to_join`: read
    by the writer for the rows of its batch (Join.read), which the store may answer
    from what it read before (see Store.products_to_join)."""
    if not ids:
        return {}
    branch = default_branch(catalog)
    found = store.products_to_join(branch, ids) if to_join else store.get_products(branch, ids)
    return {pid: product_pb2.Product.FromString(payload) for pid, payload in found.items()}


def join_with_catalog(event: Any, products: dict[str, Any]) -> bool:
    """Enrich `event` in place from `products` when all its products are there.

    Returns whether the event is joined; an unjoined event is left untouched.
    """
    details = event.product_details
    if not products:  # none of its products is in the catalog (or it names none)
        return not details
    if any(d.product.id not in products for d in details):
        return False
    for detail in details:
        own_price = None
        if detail.product.HasField("price_info"):
            own_price = type(detail.product.price_info)()
            own_price.CopyFrom(detail.product.price_info)
        detail.product.CopyFrom(products[detail.product.id])
        if own_price is not None:
            detail.product.price_info.CopyFrom(own_price)
    return True


def join_within(catalog: str, event: Any, products: dict[str, Any], received: bytes,
                max_event_bytes: int) -> tuple[bool, bytes]:
    """`join_with_catalog`, unless the products filled in would make `event` larger
    than `max_event_bytes`, or the two forms kept of it (joined, and as received)
    too large for one console message (see STORED_EVENT_ROOM): then it is left as
    `received` (its serialization before the join) and counts as not joined, with an
    INFO line in the log. Never refused: a refusal would tell a writer key which
    products the catalog holds, and how large.
    Whether it is joined, and its deterministic serialization: made here when the
    join changed it (its size judged by its length, not by one more encoding), else
    `received`."""
    if _judged_first(event) and not _may_fit(event, products, max_event_bytes):
        _left_unjoined(catalog, event, max_event_bytes)
        return False, received
    joined = join_with_catalog(event, products)
    if not (joined and event.product_details):  # (the event as it was received)
        return joined, received
    payload = event.SerializeToString(deterministic=True)
    # (the two forms are kept only when they differ: see EventRow.for_join)
    if len(payload) > max_event_bytes or (
            payload != received and len(payload) + len(received) >
            max(CLIENT_MESSAGE_BYTES, max_event_bytes) - STORED_EVENT_ROOM):
        event.Clear()
        event.MergeFromString(received)
        _left_unjoined(catalog, event, max_event_bytes)
        return False, received
    return True, payload


def _judged_first(event: Any) -> bool:
    """Whether `event` is judged (_may_fit) before it is joined: it has more than
    FEW_DETAILS product details, or names a product in two (see FEW_DETAILS)."""
    details = event.product_details
    if len(details) > FEW_DETAILS:
        return True
    if len(details) < 2:  # (most events: none named twice, and no list made to see it)
        return False
    ids = [detail.product.id for detail in details]
    return len(set(ids)) < len(ids)


def _may_fit(event: Any, products: dict[str, Any], max_event_bytes: int) -> bool:
    """False when `event` joined with `products` is sure to be larger than
    `max_event_bytes`, judged before a product is copied: an event of 2 MiB names
    a product up to 300,000 times, and each detail joined held a copy of it (a
    writer key's event of 700 KB naming one product of 4 KB 100,000 times took the
    server from 0.14 to 1.4 GB, to be let go once serialized). A detail joined
    holds at least its product's bytes less its price (the event may keep its own
    price) and the price's tag and length (4 bytes at most)."""
    least: dict[str, int] = {}
    total = 0
    for detail in event.product_details:
        size = least.get(detail.product.id)
        if size is None:
            product = products.get(detail.product.id)
            if product is None:
                return True  # (not joined at all: join_with_catalog says so)
            price = product.price_info.ByteSize() + 4 if product.HasField("price_info") else 0
            size = least[detail.product.id] = product.ByteSize() - price
        total += size
        if total > max_event_bytes:
            return False
    return True


def _left_unjoined(catalog: str, event: Any, max_event_bytes: int) -> None:
    # (INFO, its type quoted: anyone with a writer key, public in a page, sends
    # these; a WARNING each, with a line break in the type, forged log lines)
    log.info("an event of %s (%.100r) is left not joined: its products filled in "
             "from the catalog would make it larger than --max-event-bytes (%d), or the "
             "two forms kept of it (joined, and as received) larger than a console "
             "message of it may be",
             catalog, event.event_type, max_event_bytes)


def joined_row(catalog: str, event: Any, products: dict[str, Any],
               max_event_bytes: int, came: tuple[int, int] | None = None,
               received: bytes | None = None) -> EventRow:
    """The row storing the valid `event` joined with `products` (see join_within).
    `came`: (transport, received_us) of the call, when the row is made on another
    thread; `received`: the event's deterministic serialization, when made already."""
    if received is None:
        received = event.SerializeToString(deterministic=True)
    joined, payload = join_within(catalog, event, products, received, max_event_bytes)
    return EventRow.for_join(catalog, event, received, payload, joined, came)


class JoinedLater(Join):
    """The write of one event the writer joins (in place): its row joined with the
    products given. Finished again, when the writer learns that the products it
    joined with had changed before the commit, it joins the event as it was
    received, not the one joined already. `came`: (transport, received_us) of the
    call; `received`: the event's deterministic serialization, if made."""

    __slots__ = ("_event", "_max_event_bytes", "_came", "_received", "_joined", "changed")

    def __init__(self, catalog: str, event: Any, product_ids: list[str],
                 read: Callable[[str, list[str]], dict[str, Any]], max_event_bytes: int,
                 came: tuple[int, int], received: bytes | None = None,
                 refused: Callable[[BaseException], None] | None = None,
                 size: int = 0) -> None:
        super().__init__(catalog, product_ids, read, refused, size)
        self._event = event
        self._max_event_bytes = max_event_bytes
        self._came = came
        self._received = received
        self._joined = False
        self.changed = False  # whether the join changed the event (its row says so)

    def finish(self, products: dict[str, Any]) -> EventRow:
        if self._received is None:
            self._received = self._event.SerializeToString(deterministic=True)
        elif self._joined:
            self._event.Clear()
            self._event.MergeFromString(self._received)
        self._joined = True
        row = joined_row(self.catalog, self._event, products, self._max_event_bytes,
                         self._came, self._received)
        self.changed = row.source is not None
        return row
