"""How many bytes one event may take, on every path an event enters: writes and
pixels (gRPC and HTTP), talent client events and import lines.

Measured as the event's serialized size, before its fields are checked (an
oversized event is refused without looking further). An event that its products,
filled in from the catalog, would make larger is stored not joined (join.join_within).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from google.protobuf import descriptor
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from server import protojson
from server.errors import FieldViolation

# The request types whose field holds one event, held to --max-event-bytes serialized
# by their servicers: past it, its size is the event's one violation.
EVENT_FIELDS = {
    "google.cloud.retail.v2.WriteUserEventRequest": "user_event",
    "google.cloud.retail.v2beta.WriteUserEventRequest": "user_event",
    "google.cloud.retail.v2alpha.WriteUserEventRequest": "user_event",
    "google.cloud.talent.v4.CreateClientEventRequest": "client_event",
    "google.cloud.talent.v4beta1.CreateClientEventRequest": "client_event",
}


def event_size_violation(event: Any, path: str, limit: int) -> FieldViolation | None:
    """`path: is N bytes (M of them in FIELD); at most LIMIT (...)` when `event`
    serializes to more than `limit` bytes, else None. ByteSize runs in C: cheap next
    to decoding; the largest field is looked for only then."""
    found = event.ByteSize()
    if found <= limit:
        return None
    return size_violation(found, path, limit, largest=largest_field(event, found))


def size_violation(found: int, path: str, limit: int, at_least: bool = False,
                   largest: tuple[str, int] | None = None) -> FieldViolation:
    """`path: is N bytes; at most LIMIT (the server's --max-event-bytes)`, of an event
    of `found` bytes (more than `limit`); `at_least`: `found` is a lower bound (`is at
    least N bytes`), counted of its JSON; `largest`: the field (its path within the
    event) that holds the most of it and its bytes, said too, for the caller to know
    what to shorten (they once read only `client_event: is 3000009 bytes`)."""
    least = "at least " if at_least else ""
    within = f" ({least}{largest[1]} of them in {largest[0]})" if largest else ""
    return FieldViolation(path, f"is {least}{found} bytes{within}; at most {limit} "
                                f"(the server's --max-event-bytes)")


def json_size_violation(message: descriptor.Descriptor, document: dict[str, Any], path: str,
                        limit: int) -> FieldViolation | None:
    """`path: is at least N bytes (...); at most LIMIT (...)` when `document`, the JSON
    of a `message`, shows it would serialize to more than `limit` (serialized_at_least,
    of each of its fields: the largest is then told at no cost), so that it need not be
    parsed to be refused; else None."""
    fields = _fields_at_least(message, document, limit)
    at_least = sum(size for size, _, _ in fields)
    if at_least <= limit:
        return None
    largest = largest_json_field(message, fields, limit, at_least)
    return size_violation(at_least, path, limit, at_least=True, largest=largest)


def _fields_at_least(message: descriptor.Descriptor, document: dict[str, Any],
                     enough: int) -> list[tuple[int, str, Any]]:
    """Of each field `document` (the JSON of a `message`) sets, its bytes serialized at
    least (serialized_at_least, counted up to past `enough`), its proto name and its
    value. Their sum is the document's (a field under both its names counts once)."""
    kinds = _kinds(message)
    found = []
    for name, given in document.items():
        kind = kinds.get(name)
        if kind is None or kind.twin is not None and kind.twin in document:
            continue
        size = serialized_at_least(message, {name: given}, enough)
        if size:
            found.append((size, kind.twin or name, given))
    return found


# How many fields deep the largest field is looked for: a message type that holds its
# own (a Product's variants) nests as deep as its sender likes, each level measured.
_DEEPEST = 4


def _varint_bytes(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def largest_field(event: Message, total: int) -> tuple[str, int] | None:
    """The path within `event` (of `total` bytes serialized) of the field that holds
    the most of it, and its bytes serialized (tag included): of a top-level field, or,
    when a message field (or a list of one) holds more than half of the event, of the
    largest field within that, and so on. Each field is measured whole (a message's ByteSize,
    a text's length), never each element of a list: a list's bytes are what the other
    fields leave, or, when several lists of messages are set, told apart on one copy
    of `event` cleared a list at a time (a few serializations of it: only of a refused
    event)."""
    path, size, whole = "", total, total
    for _ in range(_DEEPEST):
        found = _largest_of(event, total)
        if found is None:
            break
        field, bytes_, value = found
        step = f"{path}.{field.name}" if path else field.name
        if field.is_repeated and field.message_type is not None \
                and not field.message_type.GetOptions().map_entry and len(value) == 1:
            step, value = f"{step}[0]", value[0]
        path, size = step, bytes_
        if not isinstance(value, Message) or bytes_ * 2 <= whole:
            break
        total = value.ByteSize()
        event = value
    return (path, size) if path else None


def _largest_of(message: Message, total: int) -> tuple[FieldDescriptor, int, Any] | None:
    """The field of `message` (`total` bytes serialized) that takes the most of it,
    its bytes and its value."""
    sizes: list[tuple[int, FieldDescriptor, Any]] = []
    lists: list[tuple[FieldDescriptor, Any]] = []  # of messages (a map's entries too)
    for field, value in message.ListFields():
        if field.is_repeated and field.message_type is not None:
            lists.append((field, value))
        elif isinstance(value, Message):
            inner = value.ByteSize()
            sizes.append((_varint_bytes(field.number << 3) + _varint_bytes(inner) + inner,
                          field, value))
        else:  # (a list of texts or numbers is copied in C: 0.1 s for 400,000)
            alone = type(message)()
            if field.is_repeated:
                getattr(alone, field.name).extend(value)
            else:
                setattr(alone, field.name, value)
            sizes.append((alone.ByteSize(), field, value))
    left = total - sum(size for size, _, _ in sizes)
    if len(lists) == 1:
        sizes.append((left, *lists[0]))
    elif lists and (not sizes or left > max(size for size, _, _ in sizes)):
        # (copied whole in C, 0.16 s for 400,000 product details: extended one by
        # one, 0.8 s; each's ByteSize, 0.3 s)
        cleared = type(message)()
        cleared.CopyFrom(message)
        for field, _ in message.ListFields():
            if field.is_repeated and field.message_type is not None:
                continue
            cleared.ClearField(field.name)
        for field, value in lists:
            cleared.ClearField(field.name)
            now = cleared.ByteSize()
            sizes.append((left - now, field, value))
            left = now
    if not sizes:
        return None
    size, field, value = max(sizes, key=lambda found: found[0])
    return field, size, value


def largest_json_field(message: descriptor.Descriptor, fields: list[tuple[int, str, Any]],
                       limit: int, whole: int) -> tuple[str, int] | None:
    """As largest_field, of the JSON of a `message` whose `fields` are counted
    (_fields_at_least) and whose bytes are at least `whole`: the path and the bytes at
    least of the field that holds the most of it, deeper as long as a message (or a list
    of one) holds more than half of the whole. Each level deeper walks the part it
    descends into once more (up to past `limit`)."""
    path, found = "", 0
    for _ in range(_DEEPEST):
        if not fields:
            break
        size, name, given = max(fields, key=lambda field: field[0])
        kind = _kinds(message)[name]
        step = f"{path}.{name}" if path else name
        if kind.is_repeated and not kind.is_map and type(given) is list \
                and len(given) == 1:
            step, given = f"{step}[0]", given[0]
        path, found = step, size
        if kind.is_map or kind.message is None or type(given) is not dict \
                or size * 2 <= whole:
            break
        message = kind.message
        fields = _fields_at_least(message, given, limit)
    return (path, found) if path else None


class _Kind(NamedTuple):
    """How a field's JSON value bounds its bytes serialized."""

    message: descriptor.Descriptor | None  # of a message (a map's value), walked
    least: int  # bytes at least of each string's length, list element or map entry
    twin: str | None  # of a JSON name, the proto name it differs from
    is_map: bool
    is_repeated: bool
    is_string: bool
    is_message: bool  # a message field (a map's too)


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
        kinds[name] = _Kind(walked, least, field.name if name != field.name else None,
                            is_map, field.is_repeated, field.type == field.TYPE_STRING,
                            kind is not None)
    return kinds


def serialized_at_least(message: descriptor.Descriptor, document: dict[str, Any],
                        enough: int) -> int:
    """A lower bound of the bytes `document`, the JSON of a `message`, serializes to
    once parsed (as long as it parses); counting stops once past `enough`. Only what
    is certain to be serialized counts: each set message field, list element and map
    entry, and each string's text; a number or enum, which may be its default, none.

    The objects are walked a type at a time, those of one type found together in one
    list (the 400,000 product details of a refused body, then their products): a
    stack of one object at a time took 2.6 us a detail, most of the refusal's cost."""
    total = 0
    walk: list[tuple[descriptor.Descriptor, list[dict[str, Any]]]] = [(message, [document])]
    while walk and total <= enough:
        message, values = walk.pop()
        kinds = _kinds(message)
        found: dict[descriptor.Descriptor, list[dict[str, Any]]] = {}
        for value in values:
            if total > enough:
                break
            for name, given in value.items():
                kind = kinds.get(name)
                if kind is None or given is None \
                        or kind.twin is not None and kind.twin in value:  # (given twice: once)
                    continue
                if type(given) is list:
                    if not kind.is_repeated:
                        continue
                    # (a member the parse refuses, a null or an object among texts, is no
                    # byte of the event: told a size it does not have, 1,100,000 nulls were
                    # refused for being "at least 2200021 bytes"; of numbers, nulls alone
                    # are left out)
                    if kind.is_string:
                        texts = [item for item in given if type(item) is str]
                        total += kind.least * len(texts) + sum(map(len, texts))
                    elif kind.message is not None:  # (a map as a list of entries: none walked)
                        members = [item for item in given if type(item) is dict]
                        total += kind.least * len(members)
                        if not kind.is_map:
                            found.setdefault(kind.message, []).extend(members)
                    else:
                        total += kind.least * (len(given) - given.count(None))
                elif type(given) is dict:
                    if kind.is_map:  # an entry's key, when not "", is its text
                        total += kind.least * len(given) + sum(map(len, given))
                        if kind.message is not None:
                            found.setdefault(kind.message, []).extend(
                                item for item in given.values() if type(item) is dict)
                    elif kind.is_message:
                        # (a message, or one standing for a list of one, as Google reads a
                        # repeated field: lenient_json; its keys are its fields, no map's)
                        total += 2
                        if kind.message is not None:
                            found.setdefault(kind.message, []).append(given)
                elif type(given) is str and kind.is_string and given and not kind.is_repeated:
                    total += 2 + len(given)
        walk.extend(found.items())
    return total
