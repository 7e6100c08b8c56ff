"""The servicers' cheap bounds, checked on a REST body's decoded JSON before it is read
into its request message.

Reading a body costs by the fields it sets (json_format's parse about 15 µs each; the
fast path, protojson.merge_into, which reads bodies since, a third to a tenth of that),
and the servicer's count and size rules come only after it: a 9.2 MB write body of
400,000 product details took 6.4 s of the server's CPU (2.5 s by the fast path) and
335 MB, only to be refused for the event's 2,800,021 bytes (over --max-event-bytes), and
an inline import of 200,000 events took 2.4 s (by json_format) to be told that at most
10,000 go inline. Counting the JSON's list, or a lower bound of the
event's serialized size, gives the same refusal (the same field, INVALID_ARGUMENT) in a
fraction of that. The refusal is then the request's one violation, as the servicer
makes an oversized event's: nothing else of the body is looked at. A body of up to
LARGE_REQUEST_BYTES costs little to parse, and is: its event's size is then told
exactly, by the servicer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor
from google.protobuf.descriptor import FieldDescriptor

from server.errors import FieldViolation
from server.policy.envelope import LARGE_REQUEST_BYTES
from server.policy.limits import EVENT_FIELDS, json_size_violation
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
        return json_size_violation(field.message_type, event, field_name, self.max_event_bytes)


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

