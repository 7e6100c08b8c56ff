"""The JSON forms Google's importer accepts beyond proto3 JSON, rewritten to proto3 JSON.

Import files made for Google (its own tutorial data among them) use forms that
protobuf's legacy JSON parsing accepts and strict proto3 JSON does not:

- one object where a repeated field is expected (`"productDetails": {...}`), and one
  value where a list of values is expected (`"experimentIds": "exp-1"`, the form of
  the event JSON in Google's own pages);
- a map as a list of `{"key": ..., "value": ...}` objects (`"attributes": [...]`);
- booleans in quotes (`"indexable": "true"`);
- FieldMask paths in snake_case (`"retrievableFields": "price_info,title"`).

Numbers in quotes, snake_case field names and timestamps with a numeric offset
(`+00:00`) are proto3 JSON already. `normalize` rewrites only those forms,
guided by the message's descriptor, and leaves everything else as it is, so a
document that is proto3 JSON comes back unchanged and what Google refuses (an
unknown field, `"yes"` for a boolean, a list for a single message, a text where a
list of messages is expected) is still refused by the strict parser that reads the
result. protobuf's own JSON converter (ProtoStreamObjectWriter, which Google's
published HTTP/JSON transcoder feeds) reads both one-item forms: its tests
`ImplicitPrimitiveList` and `ImplicitMessageList`. Read after the strict parse
failed: lines of import files, the JSON body of every request on the HTTP gateway
(Google's own purge example sends `"force": "false"`), and a pixel's event (Google's
JavaScript pixel example writes `experimentIds: "experiment-id"`).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from server import json_problems, protojson

M = TypeVar("M", bound=Message)

_F = FieldDescriptor
_BOOLS = {"true": True, "false": False}
_SNAKE = re.compile(r"_([a-z0-9])")


# A JSON text's strings: double-quoted (kept as they are) or single-quoted (rewritten),
# each to its closing quote or, unterminated, to the end: a match at every quote, never
# a failed scan to the end from each (that took the square of the length: a body of
# 80 KB of quotes and backslashes held the server 17 s).
_STRING = re.compile(r""""(?:[^"\\]|\\.)*(")?|'(?:[^'\\]|\\.)*(')?""", re.DOTALL)
_IN_SINGLE = re.compile(r'\\(.)|"', re.DOTALL)
# The longest body read in single quotes: a curl example's is a few lines, and each
# byte of a larger one costs what strict JSON never does.
SINGLE_QUOTED_MAX = 1024 * 1024


def double_quoted(body: bytes) -> bytes | None:
    """`body` with its single-quoted strings and keys written in double quotes, as
    Google's JSON front end reads them (the curl examples of its pages on managing
    user events send `--data "{ 'userEventRejoinScope': 'UNJOINED_EVENTS' }"`); None
    when it has none, is not UTF-8, or is longer than SINGLE_QUOTED_MAX. Within
    one, `\'` is a quote and a bare `"` is escaped; everything outside strings is left
    as it is, so what is still not JSON stays refused."""
    if len(body) > SINGLE_QUOTED_MAX:
        return None
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    if "'" not in text:
        return None
    parts: list[str] = []
    done = 0  # where the text not yet in `parts` starts
    for match in _STRING.finditer(text):
        double, single = match.groups()  # the closing quote, when there is one
        if double is None and single is None:
            return None  # a string that never ends: not JSON in any quotes
        if single is not None:
            parts += [text[done:match.start()],
                      '"' + _IN_SINGLE.sub(_unsingled, match.group()[1:-1]) + '"']
            done = match.end()
    return "".join([*parts, text[done:]]).encode() if parts else None


def _unsingled(match: re.Match[str]) -> str:
    escaped = match.group(1)
    if escaped is None:  # a bare double quote
        return '\\"'
    return "'" if escaped == "'" else "\\" + escaped


def parse_dict(data: dict[str, Any], message_class: type[M]) -> M:
    """A `message_class` from parsed JSON: proto3 JSON, else with the forms above
    rewritten. Raises json_format.ParseError: the rewritten document's when the
    rewriting changed something (so it names what is still wrong; a
    protojson.PlacedError, its place found in the rewritten document, where one
    object stands for a list of one and a map may have been a list of entries),
    else the strict parse's; a json_problems.Refusal when the document has more
    than one problem."""
    descriptor = cast(Descriptor, message_class.DESCRIPTOR)
    try:
        return _parsed(data, message_class)
    except json_format.ParseError as strict:
        lenient = normalize(data, descriptor)
        if lenient == data:
            raise json_problems.refused(strict, descriptor, data) from None
    try:
        return _parsed(lenient, message_class)
    except json_format.ParseError as error:
        raise json_problems.refused(protojson.placed(error, descriptor, lenient), descriptor,
                                    lenient) from None


def _parsed(data: dict[str, Any], message_class: type[M]) -> M:
    try:
        return protojson.parse_dict(data, message_class)
    except RecursionError:
        raise too_deep() from None


def too_deep() -> json_format.ParseError:
    """What refuses JSON nested past the stack: json_format's own message for an
    object where a list goes takes the repr of what lies below, and raises
    RecursionError a few hundred levels down (its depth limit, 100 messages, is
    checked after)."""
    return json_format.ParseError("Message too deep: it nests deeper than the server reads")


def normalize(document: Any, message: Descriptor) -> Any:
    """`document` (parsed JSON for a `message`) with the lenient forms rewritten as
    proto3 JSON; a new object where something changed. Never raises: what it
    cannot read (nesting deeper than the stack, through Product.variants) comes
    back as it is, for the strict parser to refuse."""
    try:
        return _normalize(document, message)
    except RecursionError:
        return document


def _normalize(document: Any, message: Descriptor) -> Any:
    if type(document) is not dict:
        return document
    fields = protojson.fields_by_any_name(message)
    out = {}
    for key, value in document.items():
        field = fields.get(key)
        out[key] = value if field is None or value is None else _field_value(value, field)
    return out


def _field_value(value: Any, field: FieldDescriptor) -> Any:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        return _map(value, entry)
    if field.is_repeated:
        # One item where a list goes: an object for a list of messages, a text,
        # number or boolean for a list of values.
        one = dict if field.message_type is not None else (str, int, float, bool)
        items = [value] if isinstance(value, one) else value
        return [_single(i, field) for i in items] if type(items) is list else items
    return _single(value, field)


def _map(value: Any, entry: Descriptor) -> Any:
    # Only string keys make a map: any other (a list or an object cannot even be a
    # dict's key) leaves the list as it is, which the strict parser refuses.
    inner = entry.fields_by_name["value"]
    if type(value) is list and all(type(i) is dict and type(i.get("key")) is str
                                   and set(i) <= {"key", "value"} for i in value):
        # an entry without a value holds the default one, as a map entry on the wire
        # (a message's: {}; None went to the parser, which said "'NoneType' object
        # is not iterable")
        empty: dict[str, Any] | None = {} if inner.message_type is not None else None
        value = {i["key"]: i.get("value", empty) for i in value}
    if type(value) is not dict:
        return value
    return {k: v if v is None else _single(v, inner) for k, v in value.items()}


def _single(value: Any, field: FieldDescriptor) -> Any:
    message = field.message_type
    if message is None:
        if field.type == _F.TYPE_BOOL and type(value) is str:
            return _BOOLS.get(value, value)
        return value
    name = message.full_name
    if name == "google.protobuf.FieldMask":
        return field_mask(value)
    if name == "google.protobuf.BoolValue":
        return _BOOLS.get(value, value) if type(value) is str else value
    if name.startswith("google.protobuf."):  # Timestamp, Struct...: their own JSON forms
        return value
    return _normalize(value, message)


def field_mask(value: Any) -> Any:
    """`price_info,color_info.colors` as `priceInfo,colorInfo.colors` (a FieldMask's
    proto3 JSON form)."""
    if type(value) is not str:
        return value
    return _SNAKE.sub(lambda m: m.group(1).upper(), value)
