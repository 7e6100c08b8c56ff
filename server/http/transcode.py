"""HTTP request -> request message, response message -> HTTP body (proto3 JSON).

The request is built the way google.api.http says: the body (`*`: the whole
request; a field name: that field), then path variables, then query parameters
for any field the path and body leave (only when the body is not `*`). A field
the path binds is the path's: the body or a query parameter may name it too only
with the same value (a REST client sends a resource's name in both); a different
one is INVALID_ARGUMENT naming the field, as the mapping gives it no place and
gateways disagree on which would win. Query names may be the proto name or the
JSON (lowerCamel) name, may be dotted into non-repeated message fields
(`userInfo.userId`), may repeat for a repeated field, and take enums by name or
number. Every name that is not a field is INVALID_ARGUMENT (except Google's
system parameters), and so is every unknown field in a JSON body: nothing a
client sends is dropped.
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import itertools
import random
import re
import sys
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
from google.protobuf import descriptor, field_mask_pb2, json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from server import json_keys, json_problems, lenient_json, protojson
from server.errors import (
    FieldViolation,
    InvalidArgument,
    UnreadValue,
    raise_if_any,
    unlisted,
)
from server.http.body_bounds import BodyBounds
from server.http.crosssite import NotJson
from server.http.routes import Route
from server.talent.validation import PROFILE_EVENT_NUMBER

# Google's system parameters: accepted with or without "$"; only `alt` and
# `prettyPrint` change anything here (`fields`, Google's mask of the response's fields,
# is not applied: the answer is whole, more than it asks for; see README).
SYSTEM_PARAMETERS = frozenset({
    "alt", "fields", "key", "prettyPrint", "quotaUser", "access_token", "callback",
    "upload_protocol", "uploadType", ".xgafv", "oauth_token", "userIp",
})
# Those of one value, refused given more than once (with or without "$", counted
# together) as a field that is not repeated is: `$alt` 900 times was taken, the first
# read. (`key` has a rule of its own: pixel.query_key.)
_ONCE = {name: bare for bare in ("alt", "fields", "prettyPrint")
         for name in (bare, "$" + bare)}
# Message types a query parameter may set from one string (their JSON form).
_QUERY_MESSAGES = frozenset({
    "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
})
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
# A '%' of a URL that begins no escape of two hex digits (RFC 3986 section 2.1): the
# path's decoding (templates) and the query's (yarl's) keep it as it is, so `cat%` and
# `cat%25` named one catalog, and `?productId=a%` made the product `a%`.
MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Output:
    """How to write a response: JSON enums as numbers, pretty-printed, and whether
    the caller asked for JSON explicitly (`$alt=json`)."""

    enums_as_ints: bool = False
    pretty: bool = True
    explicit_json: bool = False


DEFAULT_OUTPUT = Output()
_OUTPUT_PARAMETERS = ("alt", "$alt", "prettyPrint", "$prettyPrint")
# The longest `alt` read: `json;enum-encoding=string` and room for spaces
MAX_ALT_CHARS = 100


def _system_name(name: str) -> str | None:
    bare = name[1:] if name.startswith("$") else name
    return bare if bare in SYSTEM_PARAMETERS else None


def default_output(query: Mapping[str, str]) -> bool:
    """Whether `query` names no system parameter that changes the response format
    (most calls, every browser's pixel): then `output_of` is DEFAULT_OUTPUT."""
    return not any(name in query for name in _OUTPUT_PARAMETERS)


def check_query_text(decoded: Mapping[str, str], raw: str) -> None:
    """INVALID_ARGUMENT naming each parameter that holds a '%' beginning no escape of
    two hex digits (RFC 3986 section 2.1), or whose percent-encoded bytes are not
    UTF-8. The query as decoded (`decoded`) keeps such a '%' as itself, and holds
    U+FFFD where bytes were replaced; only then is the raw query (`raw`) read again,
    strictly: a '%' sent as %25 and a U+FFFD the client sent itself (%EF%BF%BD) are
    text like any other."""
    replaced = kept = False
    for name, value in decoded.items():
        replaced = replaced or "\ufffd" in name or "\ufffd" in value
        kept = kept or "%" in name or "%" in value
    if not replaced and not (kept and MALFORMED_ESCAPE.search(raw)):
        return
    violations = []
    for part in raw.split("&"):
        name, _, value = part.partition("=")
        problem = _malformed_escape(name, "name") or _malformed_escape(value, "value") \
            or _not_utf8(name) or _not_utf8(value)
        if problem is not None:
            violations.append(FieldViolation(urllib.parse.unquote_plus(name), problem))
    raise_if_any(violations)


# A parameter of a Content-Type: its name and value (a token, or a quoted string whose
# ';' and '=' are its text)
_TYPE_PARAMETER = re.compile(r';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
# The charsets of a Content-Type shown in its refusal, at most
_CHARSETS_SHOWN = 3


def check_content_type(value: str | None) -> None:
    """NotJson (415, INVALID_ARGUMENT) naming Content-Type when its `value` gives
    charset more than once, an error (RFC 6838 section 4.3): one reader takes the
    first, another the last (aiohttp, and so the UTF-8 check, the first: `charset=utf-8;
    charset=latin-1` was read as UTF-8), so what the body is in is not said."""
    if value is None or value.lower().count("charset") < 2:
        return
    charsets = [given.strip().strip('"') for name, given in _TYPE_PARAMETER.findall(value)
                if name.lower() == "charset"]
    if len(charsets) > 1:
        shown = ", ".join(repr(charset[:50]) for charset in charsets[:_CHARSETS_SHOWN])
        raise NotJson.field("Content-Type", (
            f"gives charset {len(charsets)} times ({shown}{', ...' if len(charsets) > 3 else ''}"
            f"): give it once, as utf-8, or not at all"))


def _malformed_escape(text: str, of: str) -> str | None:
    """Why `text`, the name or value (`of`) of a query parameter as sent, is no
    percent-encoded text: its first '%' that begins no escape; None if there is none."""
    return malformed_escape(text, f" of its {of}", of)


def malformed_escape(text: str, where: str, one: str) -> str | None:
    """Why `text` (a URL's path, a query parameter's name or value) is no
    percent-encoded text: "has a malformed percent-escape '%zz' at character N`where`:
    ... (a '%' of a `one` is written %25)", of its first '%' that begins no escape,
    counted from 1 as a filter's 'at character N' is; None if there is none."""
    malformed = MALFORMED_ESCAPE.search(text)
    if malformed is None:
        return None
    at = malformed.start()
    return (f"has a malformed percent-escape {text[at:at + 3]!r} at character {at + 1}{where}: "
            f"'%' begins an escape of two hex digits (a '%' of a {one} is written %25)")


def _not_utf8(text: str) -> str | None:
    """Why `text`, a name or value of a query parameter as sent, decodes to no UTF-8
    text: its first byte that is none; None if it does."""
    piece = urllib.parse.unquote_to_bytes(text.replace("+", " "))
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"is not UTF-8 text (byte {piece[bad.start]:#04x} at {bad.start})"
    return None


def output_of(query: Mapping[str, str]) -> Output:
    """The response format the system parameters ask for; INVALID_ARGUMENT for an
    `alt` other than json (with `;enum-encoding=int` or not)."""
    if default_output(query):
        return DEFAULT_OUTPUT
    enums_as_ints, explicit = False, False
    for name in ("alt", "$alt"):
        if name not in query:
            continue
        value = query[name]
        # (one longer than any sensible is refused unsplit: `json` and 260 KB of `;`,
        # no key needed, took 30 ms of the loop to split and check part by part)
        kind, *options = (part.strip() for part in value.split(";")) \
            if len(value) <= MAX_ALT_CHARS else ("", "")
        if kind != "json" or any(o not in ("enum-encoding=int", "enum-encoding=string", "")
                                 for o in options):
            raise InvalidArgument.field(name, f"only 'json' (optionally with "
                                              f"';enum-encoding=int') is supported, got "
                                              f"{query[name][:100]!r}")
        explicit = True
        enums_as_ints = enums_as_ints or "enum-encoding=int" in options
    pretty = all(query.get(n, "true").lower() != "false" for n in ("prettyPrint", "$prettyPrint"))
    return Output(enums_as_ints, pretty, explicit)


def _set(target: Message, name: str, value: Any) -> None:
    """Set field `name` of `target` from a proto3-JSON `value`, as protojson.parse_into
    does (raising its ParseError); a plain string field directly, since json_format's
    walk costs tens of µs and a pixel sets several."""
    field = target.DESCRIPTOR.fields_by_name.get(name)
    if field is not None and field.type == field.TYPE_STRING and not field.is_repeated \
            and isinstance(value, str):
        try:
            setattr(target, name, value)
            return
        except (ValueError, TypeError):  # e.g. not valid UTF-8: json_format says why
            pass
    protojson.parse_into({name: value}, target)


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what templates.Variable.decode leaves


def _bound_value(request: Message, field_path: str) -> Any:
    """The value of `request` at `field_path` (`product.name`), setting nothing."""
    *parents, leaf = field_path.split(".")
    return getattr(functools.reduce(getattr, parents, request), leaf)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _not_the_paths(field_path: str, path_value: Any, given: Any, where: str) -> FieldViolation:
    """The violation of a body or query (`where`) giving a path-bound field another value."""
    return FieldViolation(field_path, f"is bound by the URL path to {_shown(path_value)}; "
                                      f"{where} gives {_shown(given)}: leave it out or give "
                                      "the same value")


def _apply_path(request: Message, path_values: Mapping[str, str]) -> list[FieldViolation]:
    violations = []
    for field_path, value in path_values.items():
        if _NOT_UTF8.search(value):
            violations.append(FieldViolation(field_path, "is not UTF-8 text (in the URL "
                                                         "path)"))
            continue
        *parents, leaf = field_path.split(".")
        try:
            _set(functools.reduce(getattr, parents, request), leaf, value)
        except json_format.ParseError as exc:
            violations.append(FieldViolation(field_path, f"bad value in the URL path: "
                                                         f"{protojson.without_field_list(exc)}"))
    return violations


def _apply_body(request: Message, route: Route, body: bytes, bound: Iterable[str],
                bounds: BodyBounds | None) -> list[FieldViolation]:
    """The violations of the JSON `body` read into `request`; a value of the wrong type
    that the rest of its field reads around is an UnreadValue, holding the paths that
    read (`bound`, those the URL path sets, among them). A body past one of `bounds`
    is not read: that is its one violation."""
    if not body.strip():
        return []
    where = route.body if route.body != "*" else "body"
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        requoted = lenient_json.double_quoted(body)  # (Google's pages send '...' strings)
        if requoted is None:
            return [FieldViolation(where, "Invalid JSON payload received: "
                                          + protojson.syntax_problem(exc, body))]
        try:
            document, body = orjson.loads(requoted), requoted
        except orjson.JSONDecodeError as again:  # said where the rewritten one stops
            return [FieldViolation(where, "Invalid JSON payload received: "
                                          + protojson.syntax_problem(again, requoted)
                                          + " (its strings in single quotes read as double)")]
    if json_keys.may_repeat(body, document):  # orjson kept the last one: the first is lost
        key = json_keys.repeated_key(body)
        if key is not None:
            return [FieldViolation(where, f"Invalid JSON payload received: the key {key!r} "
                                          "is given twice in one object")]
    document = protojson.exact_numbers(body, document)  # (orjson read 1e-400 as 0.0)
    if route.body != "*":
        field = request.DESCRIPTOR.fields_by_name.get(route.body)
        if field is not None and field.message_type is not None and not field.is_repeated \
                and not isinstance(document, dict) and field.message_type.full_name \
                not in _QUERY_MESSAGES | {"google.protobuf.Value", "google.protobuf.ListValue"}:
            return [FieldViolation(where, "Invalid JSON payload received: the body must be a "
                                          f"JSON object (the {field.message_type.name})")]
        if field is not None and field.message_type is not None and \
                isinstance(document, dict) and len(document) == 1:
            [key] = document
            if key in (field.name, field.json_name) and \
                    key not in protojson.fields_by_any_name(field.message_type):
                # ({"userEvent": {...}} was told only that a UserEvent has no such field)
                return [FieldViolation(where, "Invalid JSON payload received: the body is "
                                              f"the {field.message_type.name} itself, not an "
                                              f"object holding it: send what {key!r} holds")]
        document = {route.body: document}
    elif not isinstance(document, dict):
        return [FieldViolation(where, "Invalid JSON payload received: the body must be a "
                                      "JSON object (the request message)")]
    else:
        misplaced = _fields_of_one_field(request, document)
        if misplaced is not None:
            return [misplaced]
    past = bounds.violation(cast(descriptor.Descriptor, request.DESCRIPTOR), document,
                            len(body)) if bounds is not None else None
    if past is not None:
        return [past]
    fields = protojson.fields_by_any_name(request.DESCRIPTOR)
    violations: list[FieldViolation] = []
    unread: list[int] = []  # of `violations`, those of values read around
    read = set(bound)  # the paths of the values that did read
    seen: set[str] = set()
    oneofs: dict[str, str] = {}
    for name, value in document.items():
        field = fields.get(name)
        if field is None:
            violations.append(FieldViolation(
                name, f"Invalid JSON payload received: unknown name {name!r} in "
                      f"{request.DESCRIPTOR.full_name}"))
            continue
        if field.name in seen:
            violations.append(FieldViolation(field.name, "given twice (as proto and JSON name)"))
            continue
        seen.add(field.name)
        oneof = field.containing_oneof
        if oneof is not None and value is not None:
            if oneof.name in oneofs:
                violations.append(FieldViolation(field.name, f"only one of {oneof.name} may be "
                                                             f"set, {oneofs[oneof.name]} is too"))
            oneofs[oneof.name] = field.name
        value, former = _without_former_field(field, value)
        try:
            try:
                protojson.merge_into({name: value}, request)
            except RecursionError:
                raise lenient_json.too_deep() from None
        except json_format.ParseError as exc:
            error = _parse_leniently(request, field, name, value, exc)
            if error is not None:
                problems, more = json_problems.listed(
                    error, cast(descriptor.Descriptor, request.DESCRIPTOR), {name: value})
                as_text = _AS_TEXT if type(value) is dict and _holds_json_text(request, field) \
                    else ""
                violations.extend(FieldViolation(path or field.name, "Invalid JSON payload "
                                                                     f"received: {reason}{as_text}")
                                  for path, reason in problems)
                if not _read_around(request, field, error):
                    violations.extend(unlisted(more, json_problems.stopped(error)))
                    continue
                unread.extend(range(len(violations) - len(problems), len(violations)))
                read.update(cast(json_problems.Refusal, error).read())
            else:
                read.add(field.name)
        else:
            read.add(field.name)
        if former is not None:
            getattr(request, field.name).MergeFromString(_empty_field(former.number))
            # (given, and so read: the servicer's refusal of it is said beside any
            # wrong value, as it is without one)
            read.add(f"{field.name}.{former.name}")
    # (each value's violation holds the paths read in the whole request)
    read_in_request = frozenset(read)
    for at in unread:
        violations[at] = UnreadValue(violations[at].field, violations[at].description,
                                     read_in_request)
    return violations


def _read_around(request: Message, field: FieldDescriptor, error: json_format.ParseError
                 ) -> bool:
    """Whether the body's value for `field`, refused with `error`, reads without its
    wrong values (json_problems.read_around): `request` then holds what did read, for
    the servicer's rules about it (PartlyRead)."""
    request.ClearField(field.name)  # (what the parse that refused it left half-done)
    if json_problems.read_around(error, request):
        return True
    request.ClearField(field.name)
    return False


# A POST collect's body carries the event as JSON in a JSON string; its event written
# as an object (the likeliest slip) was told only "must be a JSON string, got dict".
_AS_TEXT = (": user_event (and raw_json) holds the event's JSON as text, "
            '{"userEvent": "{\\"eventType\\": ...}"} (JSON.stringify(event))')


def _holds_json_text(request: Message, field: FieldDescriptor) -> bool:
    """Whether `field` of `request` is a string holding a UserEvent's JSON (collect's)."""
    return request.DESCRIPTOR.name == "CollectUserEventRequest" \
        and field.name in ("user_event", "raw_json")


def _fields_of_one_field(request: Message, document: dict[str, Any]) -> FieldViolation | None:
    """For a whole-body request (`body: "*"`) whose names it does not know are all
    fields of the message of one of its fields, left out: where they belong. Talent
    v4's body is the ClientEvent, v4beta1's the request holding it under
    `clientEvent`; v4's body sent to v4beta1 was told only that the request has no
    `eventId`, no `createTime` and no `jobEvent` (a field the message's contract took
    out, _FORMER_FIELDS, counts as one of its fields: a v4beta1 profile event so sent
    was told of `profileEvent` alone). None: the names are read as sent."""
    fields = protojson.fields_by_any_name(request.DESCRIPTOR)
    unknown = [name for name in document if name not in fields]
    if not unknown:
        return None
    holders = [field for field in request.DESCRIPTOR.fields
               if field.message_type is not None and not field.is_repeated
               and field.name not in document and field.json_name not in document
               and all(name in protojson.fields_by_any_name(field.message_type)
                       or name in _FORMER_FIELDS.get(field.message_type.full_name, ())
                       for name in unknown)]
    if len(holders) != 1:
        return None
    [holder] = holders
    held = holder.message_type.name if holder.message_type is not None else ""
    return FieldViolation(holder.name, (
        f"Invalid JSON payload received: {', '.join(map(repr, unknown))} "
        f"{'is a field' if len(unknown) == 1 else 'are fields'} of the "
        f"{held}, which this body holds under {holder.json_name!r}, "
        f"not of the {request.DESCRIPTOR.name} itself: send "
        f"{{\"{holder.json_name}\": {{...}}}}"))


# Fields a contract had and then took out, which clients built on the earlier contract
# still send: by message, under their JSON and proto names, each field. In binary such
# a field comes as an unknown field, where the servicer looks for it to refuse it by
# name (talent v4beta1's ClientEvent.profile_event: see server/talent/validation.py);
# in JSON the parser refused the object it was in as having "no field named" it. So it
# is taken out of the JSON and its message given an empty field of its number: the
# servicer answers both transports alike.
class _Former(NamedTuple):
    name: str  # its proto name, as the servicer's refusal names it
    number: int


_PROFILE_EVENT = _Former("profile_event", PROFILE_EVENT_NUMBER)
_FORMER_FIELDS: dict[str, dict[str, _Former]] = {
    "google.cloud.talent.v4beta1.ClientEvent": {"profileEvent": _PROFILE_EVENT,
                                                "profile_event": _PROFILE_EVENT},
}


def _without_former_field(field: FieldDescriptor, value: Any) -> tuple[Any, _Former | None]:
    """`value` (the JSON of the request's `field`) less the fields its message's contract
    took out (_FORMER_FIELDS), and one of them (None: it held none)."""
    former = _FORMER_FIELDS.get(field.message_type.full_name) \
        if field.message_type is not None and not field.is_repeated else None
    if former is None or not isinstance(value, dict) or not value.keys() & former.keys():
        return value, None
    given = next(former[key] for key in value if key in former)
    return {key: item for key, item in value.items() if key not in former}, given


def _empty_field(number: int) -> bytes:
    """A length-delimited field `number` of no bytes, in the binary form."""
    tag, out = number << 3 | 2, b""
    while tag > 0x7F:
        out += bytes([tag & 0x7F | 0x80])
        tag >>= 7
    return out + bytes([tag, 0])


def _parse_leniently(request: Message, field: FieldDescriptor, name: str, value: Any,
                     strict: json_format.ParseError) -> json_format.ParseError | None:
    """Parse `value`, which the strict parse refused (`strict`), once the forms Google's
    JSON front end accepts are rewritten (on every request, as Google's front end: see
    lenient_json); None when it parses, else what to report: the rewritten value's
    error, placed in it, when the rewriting changed something (`"experimentIds": "x"`
    beside an unknown field is refused for that field, not for the one read as a
    list), else `strict`; a json_problems.Refusal when the value has more than one
    problem."""
    descriptor_ = cast(descriptor.Descriptor, request.DESCRIPTOR)
    lenient = lenient_json.normalize({name: value}, descriptor_)
    if lenient == {name: value}:
        return json_problems.refused(strict, descriptor_, lenient)
    request.ClearField(field.name)  # what the strict parse left half-done
    try:
        protojson.merge_into(lenient, request)
    except json_format.ParseError as exc:
        request.ClearField(field.name)
        # placed in the rewritten value: one object there is a list of one
        return json_problems.refused(protojson.placed(exc, descriptor_, lenient), descriptor_,
                                     lenient)
    except RecursionError:
        request.ClearField(field.name)
        return lenient_json.too_deep()
    return None


def _query_field(request: Message, name: str
                 ) -> tuple[list[FieldDescriptor], str | None]:
    """The fields a query name walks through, or ([], why not)."""
    walked: list[FieldDescriptor] = []
    message: descriptor.Descriptor | None = cast(descriptor.Descriptor, request.DESCRIPTOR)
    for part in name.split("."):
        if message is None or (walked and message.full_name in _QUERY_MESSAGES):
            return [], f"{'.'.join(f.name for f in walked)} has no fields to set from the query"
        field = protojson.fields_by_any_name(message).get(part)
        if field is None:
            why = f"unknown query parameter: {message.full_name} has no field {part!r}"
            if any(c in name for c in '"{}:,'):
                # (a pixel's `userEvent={"searchQuery":"socks&shoes"}` sent as is: the
                # name was the rest of its JSON, and the event was refused, cut short)
                why += ("; it reads as the rest of a JSON value cut at an '&' left as is: "
                        "URL-encode the value whole (encodeURIComponent)")
            elif not walked and message.name == "CollectUserEventRequest":
                # (a pixel's cache buster of its own, `&cb=...` or `&_=...`, refused
                # the event with no word of the parameter Google has for it)
                why += ("; a pixel takes userEvent (or rawJson), uri, prebuiltRule and ets "
                        "(its cache buster: the time it was sent, in milliseconds)")
            return [], why
        if walked and walked[-1].is_repeated:
            return [], f"{walked[-1].name} is repeated: it cannot be set from the query"
        walked.append(field)
        message = field.message_type
    leaf = walked[-1]
    if leaf.message_type is not None and (
            leaf.message_type.GetOptions().map_entry
            or leaf.message_type.full_name not in _QUERY_MESSAGES):
        return [], f"{leaf.name} is a message: name one of its fields (e.g. {name}.x)"
    return walked, None


def _apply_query(request: Message, route: Route, query: Iterable[tuple[str, str]],
                 path_values: Mapping[str, str]) -> list[FieldViolation]:
    """The violations of the query parameters, each set in `request` otherwise. A
    name that walks to no field it may set is refused under the name as sent; a value
    its field cannot take, under the field's proto path (`?pageSize=abc` as
    `page_size`), as the service's own checks (`?pageSize=-1`) and the body's name
    it, and as Google's transcoding does: the same field was `pageSize` for one bad
    value and `page_size` for another."""
    grouped: dict[tuple[str, ...], tuple[str, list[FieldDescriptor], list[str]]] = {}
    violations = []
    once: dict[str, list[str]] = {}  # the names each system parameter of one value came by
    for name, value in query:
        if _system_name(name) is not None:
            if name in _ONCE:
                once.setdefault(_ONCE[name], []).append(name)
            continue
        if route.body == "*":
            violations.append(FieldViolation(name, "the request body carries the whole "
                                                   "request: send this field there"))
            continue
        walked, why = _query_field(request, name)
        if why is not None:
            violations.append(FieldViolation(name, why))
            continue
        path = tuple(f.name for f in walked)
        field_path = ".".join(path)
        if field_path in path_values:
            if value != path_values[field_path]:
                violations.append(_not_the_paths(field_path, path_values[field_path], value,
                                                 "the query"))
            continue
        if route.body and path[0] == route.body:
            violations.append(FieldViolation(field_path, f"is bound by the body "
                                                         f"({route.body}): send it there"))
            continue
        grouped.setdefault(path, (field_path, walked, []))[2].append(value)
    violations.extend(FieldViolation(names[0], f"given {len(names)} times; it is not "
                                               "repeated")
                      for names in once.values() if len(names) > 1)
    for field_path, walked, values in grouped.values():
        leaf = walked[-1]
        repeated = leaf.is_repeated
        if len(values) > 1 and not repeated:
            violations.append(FieldViolation(field_path, f"given {len(values)} times; it is "
                                                         "not repeated"))
            continue
        converted: list[Any] = [_BOOLS.get(v.lower(), v) if leaf.type == leaf.TYPE_BOOL else v
                                for v in values]
        if leaf.message_type is not None \
                and leaf.message_type.full_name == "google.protobuf.FieldMask":
            # `?updateMask=price_info` read as its paths, as a body's mask is
            converted = [_mask_json(v) for v in converted]
        bad = next((why for why in map(functools.partial(_number_problem, leaf), values)
                    if why is not None), None)
        if bad is not None:
            violations.append(FieldViolation(field_path, bad))
            continue
        target = functools.reduce(getattr, (field.name for field in walked[:-1]), request)
        try:
            _set(target, leaf.name, converted if repeated else converted[0])
        except json_format.ParseError as exc:
            why = _NUMBER_KINDS.get(_number_type(leaf)) or (
                # (json_format's words were "Failed to parse write_async field: Expected
                # true or false without quotes at WriteUserEventRequest.write_async.")
                f"must be one of {', '.join(_BOOLS)}" if leaf.type == leaf.TYPE_BOOL
                else protojson.without_field_list(exc))
            violations.append(FieldViolation(field_path, f"cannot take {values[0][:100]!r}: {why}"))
    return violations


def _mask_json(value: str) -> str:
    """A FieldMask's query value in its JSON form (lowerCamelCase paths, which the
    parse turns back into snake_case): its snake_case paths camelCased when that is
    what they come back as; a path that would not (`attributes.size_2` came back as
    `attributes.size2`, another attribute) is left as it is, for the parse to refuse
    rather than update what it does not name."""
    paths = []
    for path in value.split(","):
        camel = lenient_json.field_mask(path)
        if camel != path:
            mask = field_mask_pb2.FieldMask()
            with contextlib.suppress(ValueError):
                mask.FromJsonString(camel)
                if list(mask.paths) == [path]:
                    path = camel
        paths.append(path)
    return ",".join(paths)


# What a query parameter of a number field must be (json_format's own words are
# Python's: "invalid literal for int() with base 10").
_NUMBER_KINDS = {
    **dict.fromkeys(protojson.INT_RANGES, "must be a whole number"),
    **dict.fromkeys((FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE),
                    "must be a number"),
}
# The range of each number type (a float's is that of its largest finite value).
_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-2 ** 31, 2 ** 31 - 1, "an int32"),
    FieldDescriptor.CPPTYPE_ENUM: (-2 ** 31, 2 ** 31 - 1, "an enum number"),
    FieldDescriptor.CPPTYPE_INT64: (-2 ** 63, 2 ** 63 - 1, "an int64"),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2 ** 32 - 1, "a uint32"),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2 ** 64 - 1, "a uint64"),
    FieldDescriptor.CPPTYPE_FLOAT: (-3.4028234663852886e38, 3.4028234663852886e38, "a float"),
    FieldDescriptor.CPPTYPE_DOUBLE: (-sys.float_info.max, sys.float_info.max, "a double"),
}


def _number_type(leaf: FieldDescriptor) -> int:
    """The cpp type of the number `leaf` holds: its own, or its wrapper's
    (`google.protobuf.Int32Value` and the like)."""
    if leaf.message_type is not None and "value" in leaf.message_type.fields_by_name:
        return cast(int, leaf.message_type.fields_by_name["value"].cpp_type)
    return cast(int, leaf.cpp_type)


def _number_problem(leaf: FieldDescriptor, text: str) -> str | None:
    """Why `text` cannot set the number (or enum) field `leaf` from a query
    parameter, else None: it must be a JSON number in ASCII digits, whole for an
    integer, within the type's range (NaN and Infinity for a float); an enum's
    number, when it is not given by name, is a whole number within int32."""
    kind = _number_type(leaf)
    integer = kind in protojson.INT_RANGES
    if kind not in _RANGES or text in protojson.SPECIAL_FLOATS and not integer:
        return None
    shown = f"cannot take {text[:100]!r}"
    if leaf.enum_type is not None:
        if protojson.is_value_name(leaf.enum_type, text):
            return None
        if not protojson.WHOLE_NUMBER_TEXT.fullmatch(text):
            return f"{shown}: {protojson.not_a_value_of(leaf.enum_type)}; " \
                   f"{protojson.enum_names(leaf.enum_type, given=text)}"
    elif not protojson.NUMBER_TEXT.fullmatch(text):
        return f"{shown}: {_NUMBER_KINDS[kind]} in ASCII digits (e.g. 10)"
    low, high, type_name = _RANGES[kind]
    try:
        value = decimal.Decimal(text)
        whole = value == value.to_integral_value()
    except decimal.InvalidOperation:  # an exponent past what decimal holds (1e10**20)
        whole, value = False, decimal.Decimal("Infinity")
    if integer and not whole and value.is_finite():
        return f"{shown}: {_NUMBER_KINDS[kind]}"
    if not low <= value <= high:
        return f"{shown}: out of range for {type_name} ({low:g} to {high:g})" \
            if isinstance(low, float) else \
            f"{shown}: out of range for {type_name} ({low} to {high})"
    return None


@functools.cache
def _plain_fields(message: descriptor.Descriptor) -> dict[str, str]:
    """Field name by proto and JSON name, for the top-level string fields of
    `message` that are neither repeated nor in a oneof: what a path variable or a
    query parameter sets as it comes."""
    return {name: field.name for name, field in protojson.fields_by_any_name(message).items()
            if field.type == field.TYPE_STRING and not field.is_repeated
            and field.containing_oneof is None}


def _plain_request(route: Route, path_values: Mapping[str, str],
                   query: Iterable[tuple[str, str]]) -> Message | None:
    """The request when the path and query set only plain string fields, each once
    (a pixel, most reads), built in one call; None for anything else, which
    `build_request` then walks field by field (and reports)."""
    plain = _plain_fields(route.request_class.DESCRIPTOR)
    values: dict[str, str] = {}
    once: set[str] = set()
    for name, value in path_values.items():
        if name not in plain:
            return None
        values[name] = value
    for name, value in query:
        field = plain.get(name)
        if field is None:
            if _system_name(name) is None:
                return None
            single = _ONCE.get(name)
            if single is not None:
                if single in once:  # given twice: build_request says so
                    return None
                once.add(single)
            continue
        if field in values:  # given twice, or bound by the path: build_request says so
            return None
        values[field] = value
    try:
        request: Message = route.request_class(**values)
    except (ValueError, TypeError):  # e.g. not valid UTF-8: build_request says why
        return None
    return request


def build_request(route: Route, path_values: Mapping[str, str],
                  query: Iterable[tuple[str, str]], body: bytes,
                  bounds: BodyBounds | None = None) -> Message:
    """The request message for a call on `route`; INVALID_ARGUMENT listing every
    bad body field, query parameter and path value, or the one bound of `bounds` its
    body is past (then not parsed)."""
    if not isinstance(query, Collection):  # read twice when the plain path gives up
        query = list(query)
    if not route.body and not body:
        plain = _plain_request(route, path_values, query)
        if plain is not None:
            return plain
    request = route.request_class()
    violations = []
    if route.body:
        violations.extend(_apply_body(request, route, body, path_values, bounds))
    elif body.strip():
        violations.append(FieldViolation("body", f"{route.http_method} "
                                                 f"{route.template.text} takes no body"))
    # (a proto3 field left at its default is one the body did not give)
    given = {field_path: value for field_path in path_values
             if (value := _bound_value(request, field_path))} if route.body else {}
    violations.extend(_apply_path(request, path_values))
    violations.extend(_not_the_paths(field_path, bound, value, "the body")
                      for field_path, value in given.items()
                      if (bound := _bound_value(request, field_path)) != value)
    violations.extend(_apply_query(request, route, query, path_values))
    if violations and all(isinstance(v, UnreadValue) for v in violations):
        raise PartlyRead(violations, request)
    raise_if_any(violations)
    return request


class PartlyRead(InvalidArgument):
    """A request whose body held values of the wrong type (UnreadValue, each holding
    the paths of the values that did read) and nothing else wrong: `request` is the
    rest of it, read, for the rules about those values to be said beside them, as for
    a pixel's event (see HttpGateway)."""

    def __init__(self, violations: list[FieldViolation], request: Message) -> None:
        super().__init__(violations)
        self.request = request


def path_request(route: Route, path_values: Mapping[str, str]) -> Message:
    """The request of a call on `route` with the fields its URL path binds alone:
    what a refusal keeps of a request whose body or query cannot be read.
    INVALID_ARGUMENT for a path value that cannot be read either."""
    request = route.request_class()
    raise_if_any(_apply_path(request, path_values))
    return request


# An answer (or a streamed message) larger than this, serialized, is written as JSON
# off the loop (server.http.answers), as a large request is read: json_format wrote
# about 3 MB a second, and on the loop the echo of a 2 MB event (a
# WriteUserEvent of 60,000 products, which any writer key may send) held every call
# of both transports for 0.45-1.0 s, and so did its line in each open console feed.
# (protojson.message_to_dict, which writes answers since, takes about a third of
# json_format's time: such an echo would still hold the loop for 0.15-0.3 s.)
LARGE_ANSWER_BYTES = 64 * 1024
# A smaller message may set tens of thousands of fields all the same, and the writer's
# time goes by the fields it writes (json_format's about 2 us each, message_to_dict's
# about a third of that), not by bytes: an event of 9,000
# product details is 63 KB, 792 KB of JSON, and took 30 ms of the loop's CPU for each
# GET (a /healthz meanwhile took 7-10 ms, at worst 200 ms; now 0.4 ms, at worst 68).
# Past about this many fields (what 64 KiB of a page of events sets: a field for each 10
# bytes), its JSON is written off the loop too.
FIELDS_ON_LOOP = LARGE_ANSWER_BYTES // 8
# The elements of a list (or map) of messages whose fields are counted to estimate the
# list's: counting every element costs about half as much as writing them.
FIELDS_SAMPLED = 8


def written_off_loop(message: Message, size: int) -> bool:
    """Whether the JSON of `message` (`size` bytes serialized) is written off the loop
    (server.http.answers): over LARGE_ANSWER_BYTES, or setting more than about
    FIELDS_ON_LOOP fields."""
    # (a field set takes a byte or more: a message of fewer bytes needs no counting)
    return size > LARGE_ANSWER_BYTES or (
        size > FIELDS_ON_LOOP and _fields_set(message) > FIELDS_ON_LOOP)


@functools.cache
def _map_of(kind: descriptor.Descriptor) -> str:
    """What a repeated field of `kind` is: "" a list, "scalars" or "messages" a map
    of them (the descriptor's options and fields are made anew at each look: 50 us)."""
    if not kind.GetOptions().map_entry:
        return ""
    return "scalars" if kind.fields_by_name["value"].message_type is None else "messages"


def _fields_set(message: Message) -> float:
    """About how many fields `message` sets, its messages' included, each element of
    a list or map one: the messages of a list or map of more than FIELDS_SAMPLED are
    taken to set as many as FIELDS_SAMPLED of them do (a list's spread along it from
    a random start, so that which are counted cannot be foreseen)."""
    count = 0.0
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None:
            count += len(value) if field.is_repeated else 1
            continue
        if not field.is_repeated:
            count += 1 + _fields_set(value)
            continue
        total = len(value)
        count += total
        entries = _map_of(kind)
        if entries == "scalars":
            continue
        if entries:
            sample = list(itertools.islice(value.values(), FIELDS_SAMPLED))
        elif total <= FIELDS_SAMPLED:
            sample = list(value)
        else:
            step = total / FIELDS_SAMPLED
            start = random.random() * step
            sample = [value[int(start + i * step)] for i in range(FIELDS_SAMPLED)]
        if sample:
            count += total * sum(map(_fields_set, sample)) / len(sample)
    return count


def response_json(message: Message, output: Output) -> bytes:
    """`message` in proto3 JSON (lowerCamel names, defaults left out)."""
    document = protojson.message_to_dict(message, use_integers_for_enums=output.enums_as_ints)
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 if output.pretty else 0)
