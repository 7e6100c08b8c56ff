"""The servicers' cheap bounds, checked on a REST body's decoded JSON before it is read
into its request message.

json_format's parse of a body costs about 15 µs a field it sets, and the servicer's
count and size rules come only after it: a 9.2 MB write body of 400,000 product details
took 6.4 s of the server's CPU and 335 MB, only to be refused for the event's 2,800,021
bytes (over --max-event-bytes), and an inline import of 200,000 events took 2.4 s to be
told that at most 10,000 go inline. Counting the JSON's list, or a lower bound of the
event's serialized size, gives the same refusal (the same field, INVALID_ARGUMENT) in a
fraction of that. The refusal is then the request's one violation, as the servicer
makes an oversized event's: nothing else of the body is looked at. A body of up to
LARGE_REQUEST_BYTES costs little to parse, and is: its event's size is then told
exactly, by the servicer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf import descriptor
from google.protobuf.descriptor import FieldDescriptor

from server import protojson
from server.errors import FieldViolation
from server.policy.envelope import LARGE_REQUEST_BYTES
from server.policy.limits import EVENT_FIELDS, size_violation
from server.retail import import_events, import_products
from server.retail.bulk_import import SourceRules

# The inline sources a request type holds (every retail version's), with their rules.
_INLINE_SOURCES = {
    "ImportUserEventsRequest": import_events.SOURCES,
    "ImportProductsRequest": import_products.SOURCES,
}


@dataclass(frozen=True)
class BodyBounds:
    """What a request's JSON is held to before it is parsed."""

    max_event_bytes: int

    def violation(self, request: descriptor.Descriptor, document: Mapping[str, Any],
                  body_bytes: int) -> FieldViolation | None:
        """The servicer's refusal of the request `document` (a `request` in JSON, by
        any names, from a body of `body_bytes`) for its count or size, when its JSON
        makes it certain; else None."""
        rules = _INLINE_SOURCES.get(request.name) \
            if request.full_name.startswith("google.cloud.retail.") else None
        if rules is not None:
            items = _inline_items(request, document, rules)
            return rules.too_many_inline(len(items)) if isinstance(items, list) else None
        field_name = EVENT_FIELDS.get(request.full_name)
        if field_name is None or body_bytes <= LARGE_REQUEST_BYTES:
            return None
        field = request.fields_by_name[field_name]
        event = _one_of_names(document, field)
        if not isinstance(event, dict) or field.message_type is None:
            return None
        at_least = serialized_at_least(field.message_type, event, self.max_event_bytes)
        if at_least <= self.max_event_bytes:
            return None
        return size_violation(at_least, field_name, self.max_event_bytes, at_least=True)


def _one_of_names(document: Mapping[str, Any], field: FieldDescriptor) -> Any:
    """The value `document` gives `field`, under its JSON or its proto name; None for
    neither, or both (refused as given twice, as the parse says)."""
    by_json, by_name = document.get(field.json_name), document.get(field.name)
    if by_json is not None and by_name is not None and field.json_name != field.name:
        return None
    return by_json if by_json is not None else by_name


def _inline_items(request: descriptor.Descriptor, document: Mapping[str, Any],
                  rules: SourceRules) -> Any:
    """The JSON value of an import request's inline list (input_config's `rules.inline`
    source's `rules.items`), or None where it gives none."""
    value: Any = document
    message: Any = request  # (each a message: the names are fields of the contract)
    for name in ("input_config", rules.inline, rules.items):
        field = message.fields_by_name[name]
        if not isinstance(value, dict):
            return None
        value = _one_of_names(value, field)
        message = field.message_type
    return value


class _Kind(NamedTuple):
    """How a field's JSON value bounds its bytes serialized."""

    field: FieldDescriptor
    message: descriptor.Descriptor | None  # of a message (a map's value), walked
    least: int  # bytes at least of each string's length, list element or map entry
    twin: str | None  # of a JSON name, the proto name it differs from
    is_map: bool


# A set message field takes its tag and length (two bytes) even when empty; so does an
# element of a repeated message or a map entry. A packed number takes at least one byte,
# a double or fixed64 eight, a float or fixed32 four; a string its tag, length and text.
_PACKED_LEAST = {
    FieldDescriptor.TYPE_DOUBLE: 8, FieldDescriptor.TYPE_FIXED64: 8,
    FieldDescriptor.TYPE_SFIXED64: 8, FieldDescriptor.TYPE_FLOAT: 4,
    FieldDescriptor.TYPE_FIXED32: 4, FieldDescriptor.TYPE_SFIXED32: 4,
}


@functools.cache
def _kinds(message: descriptor.Descriptor) -> dict[str, _Kind]:
    """By each JSON and proto name of `message`'s fields, how its value counts."""
    kinds = {}
    for name, field in protojson.fields_by_any_name(message).items():
        kind = field.message_type
        walked = kind if kind is not None \
            and not kind.full_name.startswith("google.protobuf.") else None
        is_map = kind is not None and bool(kind.GetOptions().map_entry)
        if kind is not None and is_map:
            value = kind.fields_by_name["value"].message_type
            walked = value if value is not None \
                and not value.full_name.startswith("google.protobuf.") else None
        least = 2 if kind is not None or field.type == field.TYPE_STRING \
            else _PACKED_LEAST.get(field.type, 1)
        kinds[name] = _Kind(field, walked, least, field.name if name != field.name else None,
                            is_map)
    return kinds


def serialized_at_least(message: descriptor.Descriptor, document: dict[str, Any],
                        enough: int) -> int:
    """A lower bound of the bytes `document`, the JSON of a `message`, serializes to
    once parsed (as long as it parses); counting stops once past `enough`. Only what
    is certain to be serialized counts: each set message field, list element and map
    entry, and each string's text; a number or enum, which may be its default, none."""
    total = 0
    walk: list[tuple[descriptor.Descriptor, dict[str, Any]]] = [(message, document)]
    kinds_of: dict[descriptor.Descriptor, dict[str, _Kind]] = {}
    while walk and total <= enough:
        message, value = walk.pop()
        kinds = kinds_of.get(message)
        if kinds is None:
            kinds = kinds_of[message] = _kinds(message)
        for name, given in value.items():
            kind = kinds.get(name)
            if kind is None or given is None \
                    or kind.twin is not None and kind.twin in value:  # (given twice: once)
                continue
            field = kind.field
            if type(given) is list:
                if not field.is_repeated:
                    continue
                # (a member the parse refuses, a null or an object among texts, is no
                # byte of the event: told a size it does not have, 1,100,000 nulls were
                # refused for being "at least 2200021 bytes"; of numbers, nulls alone
                # are left out)
                if field.type == field.TYPE_STRING:
                    texts = [item for item in given if type(item) is str]
                    total += kind.least * len(texts) + sum(map(len, texts))
                elif kind.message is not None:  # (a map as a list of entries: none walked)
                    members = [item for item in given if type(item) is dict]
                    total += kind.least * len(members)
                    if not kind.is_map:
                        walk.extend((kind.message, item) for item in members)
                else:
                    total += kind.least * (len(given) - given.count(None))
            elif type(given) is dict:
                if kind.is_map:  # an entry's key, when not "", is its text
                    total += kind.least * len(given) + sum(map(len, given))
                    if kind.message is not None:
                        walk.extend((kind.message, item) for item in given.values()
                                    if type(item) is dict)
                elif field.message_type is not None:
                    # (a message, or one standing for a list of one, as Google reads a
                    # repeated field: lenient_json; its keys are its fields, no map's)
                    total += 2
                    if kind.message is not None:
                        walk.append((kind.message, given))
            elif type(given) is str and field.type == field.TYPE_STRING and given \
                    and not field.is_repeated:
                total += 2 + len(given)
    return total
