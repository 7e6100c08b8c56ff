"""Inventory updates as pure functions: what SetInventory, Add/RemoveFulfillmentPlaces
and Add/RemoveLocalInventories may ask, and how each changes a product.

Google's ordering rule: an update never overwrites one issued later. When each
inventory field, each fulfillment place and each local inventory field was last
set is kept beside the product (`Times`, stored as JSON); an update applies where
its time is at or after the recorded one (at: so a job that is run again after a
crash lands the same) and is ignored where it is older.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from footfall.retail.v2 import common_pb2
from google.protobuf import field_mask_pb2

from server import names
from server.errors import FieldViolation, InvalidArgument, entry_path, gather, raise_if_any
from server.retail.product_validation import (
    FULFILLMENT_TYPES,
    INDEXABLE_KEY,
    PLACE_ID_PATTERN,
    check_availability,
    check_fulfillment,
    unknown_fulfillment_type,
)
from server.retail.validation import price_violations, too_long, too_many

# The Product fields SetInventory may set (its set_mask paths), and the
# LocalInventory fields AddLocalInventories may set (its add_mask paths).
SET_MASK_PATHS = ("price_info", "availability", "available_quantity", "fulfillment_info")
ADD_MASK_PATHS = ("price_info", "attributes", "fulfillment_types")
# Limits as Google documents them for these requests.
MAX_REQUEST_PLACES = 2_000  # Add/RemoveFulfillmentPlaces.place_ids, and a type after adding
MAX_REQUEST_PLACE_ID = 10
MAX_LOCAL_INVENTORIES = 3_000  # per Add/RemoveLocalInventories request
MAX_LOCAL_ATTRIBUTES = 30
MAX_LOCAL_PLACE_ID = 128  # Footfall's: Google states no limit for a local place id
MAX_LOCAL_ATTRIBUTE_KEY = 32
MAX_LOCAL_ATTRIBUTE_TEXT = 256

ProductKey = tuple[str, str]  # (branch as stored, product id)

# An update's time, kept in `Times` to the nanosecond as a 64-bit integer (what the
# JSON it is stored as reads back exactly): 1677-09-21T00:12:44Z..2262-04-11T23:47:16Z.
TIME_FIELDS = ("set_time", "add_time", "remove_time")
EARLIEST_NS, LATEST_NS = -(2**63), 2**63 - 1
TIME_RANGE = "must be between 1677-09-21T00:12:44Z and 2262-04-11T23:47:16Z"


@dataclass
class Times:
    """When each piece of a product's inventory was last set, in ns since the epoch."""

    fields: dict[str, int] = field(default_factory=dict)  # price_info, availability, ...
    # per fulfillment type: when SetInventory last replaced its whole list of places
    replaced: dict[str, int] = field(default_factory=dict)
    # per fulfillment type and place: when it was last added or removed
    places: dict[str, dict[str, int]] = field(default_factory=dict)
    # per local inventory place: field (or "removed") -> when
    local: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, raw: bytes | None) -> Times:
        return cls() if raw is None else cls(**orjson.loads(raw))

    def dump(self) -> bytes:
        return orjson.dumps({"fields": self.fields, "replaced": self.replaced,
                             "places": self.places, "local": self.local})

    def place_time(self, kind: str, place: str) -> int | None:
        """When `place` was last set for fulfillment type `kind` (None: never)."""
        known = [t for t in (self.replaced.get(kind), self.places.get(kind, {}).get(place))
                 if t is not None]
        return max(known, default=None)


def _fresh(when: int, *recorded: int | None) -> bool:
    """Whether an update of time `when` may overwrite what was set at `recorded`."""
    return all(r is None or when >= r for r in recorded)


def _assign(target: Any, source: Any, name: str) -> None:
    """Set field `name` of `target` to its value in `source` (cleared when unset there)."""
    field_mask_pb2.FieldMask(paths=[name]).MergeMessage(
        source, target, replace_message_field=True, replace_repeated_field=True)


# -- changes -------------------------------------------------------------------------

def _places(product: Any, kind: str) -> list[str]:
    return next((list(i.place_ids) for i in product.fulfillment_info if i.type == kind), [])


def _store_places(product: Any, kind: str, places: Iterable[str]) -> None:
    """Replace the places of fulfillment type `kind`; a type with none is dropped."""
    kept = [i for i in product.fulfillment_info if i.type != kind]
    places = list(places)
    if places:
        kept.append(common_pb2.FulfillmentInfo(type=kind, place_ids=places))
    kept.sort(key=lambda i: FULFILLMENT_TYPES.index(i.type) if i.type in FULFILLMENT_TYPES
              else len(FULFILLMENT_TYPES))
    del product.fulfillment_info[:]
    product.fulfillment_info.extend(kept)


def change_places(product: Any, times: Times, kind: str, places: Sequence[str], when: int,
                  present: bool) -> None:
    """Add (`present`) or remove `places` of fulfillment type `kind` at time `when`,
    each only where nothing later set it."""
    current = _places(product, kind)
    by_place = times.places.setdefault(kind, {})
    fresh = [p for p in dict.fromkeys(places) if _fresh(when, times.place_time(kind, p))]
    for place in fresh:
        by_place[place] = when
    if present:
        new = [p for p in fresh if p not in current]
        if len(current) + len(new) > MAX_REQUEST_PLACES:
            raise InvalidArgument.field("place_ids", f"{kind!r} would have "
                                                     f"{len(current) + len(new)} places, more "
                                                     f"than {MAX_REQUEST_PLACES}")
        _store_places(product, kind, current + new)
    else:
        gone = set(fresh)
        _store_places(product, kind, [p for p in current if p not in gone])


def replace_places(product: Any, times: Times, kind: str, places: Sequence[str],
                   when: int) -> None:
    """SetInventory's fulfillment_info for one type: its places become `places` as of
    `when`, except those added or removed later, which stay as they are."""
    if not _fresh(when, times.replaced.get(kind)):
        return
    by_place = times.places.get(kind, {})
    later = {p for p, t in by_place.items() if t > when}
    wanted = set(places)
    current = _places(product, kind)
    kept = [p for p in current if p in later or p in wanted]
    kept.extend(p for p in dict.fromkeys(places) if p not in later and p not in kept)
    times.replaced[kind] = when
    times.places[kind] = {p: t for p, t in by_place.items() if t > when}
    _store_places(product, kind, kept)


def set_inventory(product: Any, times: Times, inventory: Any, paths: Sequence[str],
                  when: int) -> None:
    """SetInventory: the fields `paths` name (all four when empty) take their values in
    `inventory` where nothing later set them; fulfillment_info replaces the places of
    the types it names."""
    for path in dict.fromkeys(paths or SET_MASK_PATHS):
        if path == "fulfillment_info":
            for info in inventory.fulfillment_info:
                replace_places(product, times, info.type, info.place_ids, when)
        elif _fresh(when, times.fields.get(path)):
            _assign(product, inventory, path)
            times.fields[path] = when


def add_local_inventories(product: Any, times: Times, inventories: Sequence[Any],
                          paths: Sequence[str], when: int) -> None:
    """AddLocalInventories: for each place, the fields `paths` name (all when empty)
    take the given values where nothing later set them or removed the place."""
    paths = list(dict.fromkeys(paths)) or list(ADD_MASK_PATHS)
    by_place = {i.place_id: i for i in product.local_inventories}
    for given in inventories:
        recorded = times.local.get(given.place_id, {})
        fresh = [p for p in paths if _fresh(when, recorded.get(p), recorded.get("removed"))]
        if not fresh:
            continue
        stored = by_place.get(given.place_id)
        if stored is None:
            stored = product.local_inventories.add(place_id=given.place_id)
            by_place[given.place_id] = stored
        for path in fresh:
            _assign(stored, given, path)
            recorded[path] = when
        times.local[given.place_id] = recorded


def remove_local_inventories(product: Any, times: Times, places: Sequence[str],
                             when: int) -> None:
    """RemoveLocalInventories: each place goes unless something of it was set later."""
    gone = {p for p in places if _fresh(when, *times.local.get(p, {}).values())}
    for place in gone:
        times.local[place] = {"removed": when}
    kept = [i for i in product.local_inventories if i.place_id not in gone]
    del product.local_inventories[:]
    product.local_inventories.extend(kept)


def specified(product: Any) -> list[str]:
    """The inventory fields (SetInventory's paths) `product` sets."""
    return [field.name for field, _ in product.ListFields() if field.name in SET_MASK_PATHS]


def overwritten(times: Times, paths: Iterable[str], when: int) -> Times:
    """`times` after CreateProduct or UpdateProduct set the inventory fields among
    `paths` at `when`: as Google does, whatever times were recorded for them."""
    for path in paths:
        if path == "fulfillment_info":
            for kind in FULFILLMENT_TYPES:
                times.replaced[kind] = when
                times.places.pop(kind, None)
        elif path in SET_MASK_PATHS:
            times.fields[path] = when
    return times


# -- requests ------------------------------------------------------------------------

def _checked(request: Any, name: str, path: str,
             rules: Callable[[list[FieldViolation]], None]) -> ProductKey:
    """The product `name` (the request's field `path`) names, once `rules` found no
    bad field and the request's time is one `Times` can keep; INVALID_ARGUMENT naming
    each bad field otherwise."""
    out: list[FieldViolation] = []
    located: ProductKey | None = gather(out, names.parse_product_key, name, path)
    rules(out)
    for when in TIME_FIELDS:
        if when in request.DESCRIPTOR.fields_by_name and request.HasField(when) and \
                not EARLIEST_NS <= getattr(request, when).ToNanoseconds() <= LATEST_NS:
            out.append(FieldViolation(when, TIME_RANGE))
    raise_if_any(out)
    assert located is not None
    return located


def _place_ids(places: Sequence[str], path: str, most: int, longest: int, pattern: bool,
               out: list[FieldViolation]) -> None:
    if not places:
        out.append(FieldViolation(path, "at least one place id is required"))
    elif len(places) > most:
        out.append(too_many(path, places, most))
    for i, place in enumerate(places):
        if not place:
            out.append(FieldViolation(f"{path}[{i}]", "must not be empty"))
        elif len(place) > longest or (pattern and not PLACE_ID_PATTERN.fullmatch(place)):
            rule = "match [a-zA-Z0-9_-]+ and be" if pattern else "be"
            out.append(FieldViolation(f"{path}[{i}]", f"must {rule} at most {longest} "
                                                      f"characters, got {place[:50]!r}"))


def _mask(paths: Sequence[str], allowed: Sequence[str], path: str,
          out: list[FieldViolation]) -> None:
    for i, given in enumerate(paths):
        if given not in allowed:
            out.append(FieldViolation(f"{path}.paths[{i}]", f"{given[:100]!r} cannot be set "
                                                            f"here; allowed: {', '.join(allowed)}"))


def check_set_inventory(request: Any) -> ProductKey:
    """The product a SetInventoryRequest names; INVALID_ARGUMENT naming each bad field."""
    if not request.HasField("inventory"):
        raise InvalidArgument.field("inventory", "is required")
    inventory, named = request.inventory, list(request.set_mask.paths)
    # No paths: all four. Google's Node.js samples send none, their tests expecting all
    # four set, as its reference once said ("If not set or set with empty paths, all
    # inventory fields will be updated"); today it asks for at least one, and its
    # method text says an empty mask preserves the inventory (README, SetInventory).
    paths = named or list(SET_MASK_PATHS)

    def rules(out: list[FieldViolation]) -> None:
        _mask(named, SET_MASK_PATHS, "set_mask", out)
        if "price_info" in paths:
            price_violations(inventory.price_info, "inventory.price_info", out)
        if "availability" in paths:
            check_availability(inventory.availability, "inventory.availability", out)
        if "fulfillment_info" in paths:
            check_fulfillment(inventory.fulfillment_info, "inventory.fulfillment_info", out)

    return _checked(request, inventory.name, "inventory.name", rules)


def check_fulfillment_places(request: Any) -> ProductKey:
    """The product an Add/RemoveFulfillmentPlacesRequest names; INVALID_ARGUMENT
    naming each bad field."""
    def rules(out: list[FieldViolation]) -> None:
        if request.type not in FULFILLMENT_TYPES:
            out.append(unknown_fulfillment_type("type", request.type[:50]))
        _place_ids(request.place_ids, "place_ids", MAX_REQUEST_PLACES, MAX_REQUEST_PLACE_ID,
                   True, out)

    return _checked(request, request.product, "product", rules)


def check_add_local_inventories(request: Any) -> ProductKey:
    """The product an AddLocalInventoriesRequest names; INVALID_ARGUMENT naming each
    bad field."""
    def rules(out: list[FieldViolation]) -> None:
        inventories = request.local_inventories
        if not inventories:
            out.append(FieldViolation("local_inventories", "at least one is required"))
        elif len(inventories) > MAX_LOCAL_INVENTORIES:
            out.append(too_many("local_inventories", inventories, MAX_LOCAL_INVENTORIES))
        seen: set[str] = set()
        for i, inventory in enumerate(inventories):
            where = f"local_inventories[{i}]"
            _local_place_id(inventory.place_id, f"{where}.place_id", seen, out)
            price_violations(inventory.price_info, f"{where}.price_info", out)
            _local_attributes(inventory.attributes, f"{where}.attributes", out)
            _fulfillment_types(inventory.fulfillment_types, f"{where}.fulfillment_types", out)
        _mask(request.add_mask.paths, ADD_MASK_PATHS, "add_mask", out)

    return _checked(request, request.product, "product", rules)


def check_remove_local_inventories(request: Any) -> ProductKey:
    """The product a RemoveLocalInventoriesRequest names; INVALID_ARGUMENT naming each
    bad field."""
    return _checked(request, request.product, "product", lambda out: _place_ids(
        request.place_ids, "place_ids", MAX_LOCAL_INVENTORIES, MAX_LOCAL_PLACE_ID, False, out))


def _local_place_id(place: str, path: str, seen: set[str], out: list[FieldViolation]) -> None:
    if not place:
        out.append(FieldViolation(path, "is required"))
    elif len(place) > MAX_LOCAL_PLACE_ID:
        out.append(too_long(path, place, MAX_LOCAL_PLACE_ID))
    elif place in seen:
        out.append(FieldViolation(path, f"place {place[:50]!r} appears more than once"))
    seen.add(place)


def _local_attributes(attributes: Any, path: str, out: list[FieldViolation]) -> None:
    """Google's rules for the attributes of one place: few, short keys, one value each."""
    if len(attributes) > MAX_LOCAL_ATTRIBUTES:
        out.append(too_many(path, attributes, MAX_LOCAL_ATTRIBUTES, "entries"))
    for key in sorted(attributes):
        value = attributes[key]
        where = entry_path(path, key)
        if len(key) > MAX_LOCAL_ATTRIBUTE_KEY or not INDEXABLE_KEY.fullmatch(key):
            out.append(FieldViolation(where, f"key must match [a-zA-Z0-9][a-zA-Z0-9_]* and be "
                                             f"at most {MAX_LOCAL_ATTRIBUTE_KEY} characters"))
        if len(value.text) + len(value.numbers) != 1:
            out.append(FieldViolation(where, "must have exactly one value (one text or one "
                                             "number)"))
        for j, text in enumerate(value.text):
            if len(text) > MAX_LOCAL_ATTRIBUTE_TEXT:
                out.append(too_long(f"{where}.text[{j}]", text, MAX_LOCAL_ATTRIBUTE_TEXT))
        for j, number in enumerate(value.numbers):
            if not math.isfinite(number):  # as a product's attributes: no NaN, no infinity
                out.append(FieldViolation(f"{where}.numbers[{j}]",
                                          f"must be a finite number, got {number}"))
        if value.searchable:
            out.append(FieldViolation(f"{where}.searchable", "local attributes are not "
                                                             "searchable"))


def _fulfillment_types(types: Sequence[str], path: str, out: list[FieldViolation]) -> None:
    seen: set[str] = set()
    for i, kind in enumerate(types):
        if kind not in FULFILLMENT_TYPES:
            out.append(unknown_fulfillment_type(f"{path}[{i}]", kind[:50]))
        elif kind in seen:
            out.append(FieldViolation(f"{path}[{i}]", f"{kind!r} appears more than once"))
        seen.add(kind)
