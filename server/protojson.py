"""Fast proto3-JSON -> message for the bulk paths (imports).

`json_format.ParseDict` walks every field in Python with many checks (about 6k
UserEvents/s). Here each message type gets a plan once (JSON key -> field and
converter); a parsed JSON object is turned into constructor arguments and the
message is built in one call into the C extension. Anything the plan does not
cover exactly — an unusual type, a value of the wrong kind, null, a key it does
not know — falls back to `json_format.ParseDict` for the whole object, so the
result and every error message are json_format's own. Tests compare both on a
corpus.

json_format reads a number given as a JSON string with Python's int() and
float(), which also take "1_0" (10), "١" (an Arabic-Indic one), "５", white space
round the number, "inf" and "nan" in any case, and a Timestamp or Duration with
int() and datetime, which take the same digits; the proto3 JSON mapping and
Google's own parser (protobuf's C++ one) read ASCII digits only. `check_texts`
refuses what they refuse before json_format reads a document (the fast path takes
no number from a string, and only timestamps it reads in ASCII digits), and
`parse_into` and `parse_text` are json_format with that check: every JSON path
uses them, so a value is read alike on each.
"""

from __future__ import annotations

import ast
import base64
import datetime
import decimal
import difflib
import functools
import json
import math
import operator
import re
import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import DecodeError, Message

from server import near_names
from server.errors import entry_path

_F = FieldDescriptor
M = TypeVar("M", bound=Message)


class _Fallback(Exception):
    """The fast path does not cover this value: use json_format."""


_FLOAT_TYPES = (_F.TYPE_FLOAT, _F.TYPE_DOUBLE)
_WRAPPERS = {"google.protobuf.Int32Value", "google.protobuf.Int64Value",
             "google.protobuf.UInt32Value", "google.protobuf.UInt64Value",
             "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
             "google.protobuf.BoolValue", "google.protobuf.StringValue"}
# The range of each integer field, by its cpp type (int32 for sint32 and sfixed32 too).
INT_RANGES = {_F.CPPTYPE_INT32: (-(2**31), 2**31 - 1), _F.CPPTYPE_UINT32: (0, 2**32 - 1),
              _F.CPPTYPE_INT64: (-(2**63), 2**63 - 1), _F.CPPTYPE_UINT64: (0, 2**64 - 1)}
# The common timestamp form: 2024-01-31T23:59:59Z with 0, 3, 6 or 9 fraction digits
# (ASCII digits: \d would take any script's).
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]{3}|[0-9]{6}|[0-9]{9}))?Z")
_EPOCH = datetime.datetime(1970, 1, 1)
_fromisoformat = datetime.datetime.fromisoformat


def _string(value: Any) -> Any:
    if type(value) is not str:
        raise _Fallback
    return value


def _bool(value: Any) -> Any:
    if type(value) is not bool:
        raise _Fallback
    return value


def _int(kind: int) -> Callable[[Any], Any]:
    low, high = INT_RANGES[kind]

    def convert(value: Any) -> Any:
        if type(value) is not int or not low <= value <= high:
            raise _Fallback
        return value

    return convert


def _float(kind: int) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is float:
            if kind == _F.TYPE_FLOAT and abs(value) > 3.4028234663852886e38:
                raise _Fallback
            return value
        if type(value) is int and abs(value) < 2**53:
            return float(value)
        raise _Fallback

    return convert


def _enum(field: FieldDescriptor) -> Callable[[Any], Any]:
    assert field.enum_type is not None  # an enum field
    names = {v.name: v.number for v in field.enum_type.values}

    def convert(value: Any) -> Any:
        if type(value) is str and value in names:
            return names[value]
        raise _Fallback

    return convert


def _timestamp(value: Any) -> Any:
    if type(value) is not str:
        raise _Fallback
    match = _TIMESTAMP.fullmatch(value)
    if match is None or value[11:13] == "24":  # (Python 3.14 reads 24:00 as the next day)
        raise _Fallback
    try:  # datetime checks the ranges as json_format does (31 February, year 0, hour 24)
        since = _fromisoformat(value[:19]) - _EPOCH
    except ValueError:
        raise _Fallback from None
    fraction = match.group(1)
    return {"seconds": since.days * 86_400 + since.seconds,
            "nanos": int(fraction.ljust(9, "0")) if fraction else 0}


def _wrapper(message: Descriptor) -> Callable[[Any], Any]:
    inner = _scalar(message.fields_by_name["value"])

    def convert(value: Any) -> Any:
        return {"value": inner(value)}

    return convert


def _scalar(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.type == _F.TYPE_STRING:
        return _string
    if field.type == _F.TYPE_BOOL:
        return _bool
    if field.cpp_type in INT_RANGES:
        return _int(field.cpp_type)
    if field.type in _FLOAT_TYPES:
        return _float(field.type)
    if field.type == _F.TYPE_ENUM:
        return _enum(field)
    raise _Fallback  # bytes and anything else: json_format handles them


def _unsupported(value: Any) -> Any:
    raise _Fallback


class _Plan:
    """How to turn one message type's JSON object into constructor arguments."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.fields: dict[str, tuple[str, Callable[[Any], Any]]] = {}
        self.oneofs: dict[str, str] = {}
        self.descriptor = descriptor

    def build(self) -> None:
        for field in self.descriptor.fields:
            convert = _value_converter(field)
            entry = (field.name, convert)
            self.fields[field.json_name] = entry
            self.fields[field.name] = entry
            if field.containing_oneof is not None:
                self.oneofs[field.name] = field.containing_oneof.name

    def convert(self, data: Any) -> dict[str, Any]:
        if type(data) is not dict:
            raise _Fallback
        out: dict[str, Any] = {}
        fields = self.fields
        seen_oneofs: set[str] | None = None
        for key, value in data.items():
            entry = fields.get(key)
            if entry is None or value is None:
                raise _Fallback
            name, convert = entry
            if name in out:  # the same field under its JSON and its proto name
                raise _Fallback
            if self.oneofs and name in self.oneofs:
                seen_oneofs = seen_oneofs or set()
                group = self.oneofs[name]
                if group in seen_oneofs:
                    raise _Fallback
                seen_oneofs.add(group)
            out[name] = convert(value)
        return out


_PLANS: dict[str, _Plan] = {}
# The plan of each message class parse_dict was given: finding it by the descriptor's
# full name took about 0.6 µs of a bench UserEvent's 8.7 (a class for each message type:
# GetMessageClass makes one per descriptor).
_CLASS_PLANS: dict[type[Message], _Plan] = {}


def _plan(descriptor: Descriptor) -> _Plan:
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        plan = _Plan(descriptor)
        _PLANS[descriptor.full_name] = plan  # before build: recursive types
        plan.build()
    return plan


def _message_converter(descriptor: Descriptor) -> Callable[[Any], Any]:
    name = descriptor.full_name
    if name == "google.protobuf.Timestamp":
        return _timestamp
    if name in _WRAPPERS:
        return _wrapper(descriptor)
    if name.startswith("google.protobuf."):
        return _unsupported  # Duration, FieldMask, Struct, Any...: json_format
    found: list[_Plan] = []  # the plan, looked up on first use (types may recurse)

    def convert(value: Any) -> Any:
        if not found:
            found.append(_plan(descriptor))
        return found[0].convert(value)

    return convert


def _value_converter(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        if key_field.type != _F.TYPE_STRING:
            return _unsupported
        try:
            value_convert = (_message_converter(value_field.message_type)
                             if value_field.message_type is not None else _scalar(value_field))
        except _Fallback:  # (a map of bytes; raised out of build, it left a plan half made)
            return _unsupported

        def convert_map(value: Any) -> Any:
            if type(value) is not dict:
                raise _Fallback
            return {k: value_convert(v) for k, v in value.items() if _not_none(v)}

        return convert_map
    try:
        single = (_message_converter(field.message_type) if field.message_type is not None
                  else _scalar(field))
    except _Fallback:
        single = _unsupported
    if not field.is_repeated:
        return single

    def convert_list(value: Any) -> Any:
        if type(value) is not list:
            raise _Fallback
        return [single(item) for item in value if _not_none(item)]

    return convert_list


def _not_none(value: Any) -> bool:
    if value is None:
        raise _Fallback
    return True


def reads_field(message_class: type[Message], key: str, value: Any) -> bool:
    """Whether the fast path reads `{key: value}` as a field of a `message_class`
    (its constructor taking what it makes): then json_format would too. False
    says nothing: json_format may read what the fast path does not cover."""
    try:
        entry = _plan(cast(Descriptor, message_class.DESCRIPTOR)).fields.get(key)
        if entry is None or value is None:
            return False
        message_class(**{entry[0]: entry[1](value)})
    except (_Fallback, ValueError, TypeError, RecursionError):
        return False
    return True


def _class_plan(message_class: type[Message]) -> _Plan:
    plan = _CLASS_PLANS.get(message_class)
    if plan is None:
        # At run time the Descriptor is upb's, which the stubs keep apart (isinstance agrees).
        plan = _CLASS_PLANS[message_class] = _plan(cast(Descriptor, message_class.DESCRIPTOR))
    return plan


def parse_dict(data: Any, message_class: type[M]) -> M:
    """`message_class` from a parsed proto3-JSON object, exactly as `parse_into`
    (json_format.ParseDict, with `check_texts`) makes it; raises
    json_format.ParseError as it does."""
    try:
        return message_class(**_class_plan(message_class).convert(data))
    # RecursionError: nesting deeper than the stack (Product.variants holds Products),
    # which json_format refuses past its own depth limit, as a ParseError.
    except (_Fallback, ValueError, TypeError, RecursionError):
        message = message_class()
        parse_into(data, message)
        return message


# -- numbers, Timestamps and Durations given as JSON strings -------------------------

# A number in a JSON string, as protobuf's C++ parser reads one (absl's SimpleAtoi and
# SimpleAtod, less the white space and the "inf" and "nan" it lets through): ASCII
# digits, an optional sign, fraction and exponent ("1e2" is 100 for an integer field
# too, as the proto3 JSON mapping says). A whole number must be whole once read.
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# An enum's number given as a string (no fraction, no exponent).
WHOLE_NUMBER_TEXT = re.compile(r"[+-]?[0-9]+")
# The only other strings a float or double field takes, spelled exactly so.
SPECIAL_FLOATS = frozenset({"NaN", "Infinity", "-Infinity"})
# RFC 3339 as the proto3 JSON mapping takes it: two digits a field, an upper-case T
# and Z, 1 to 9 fraction digits, an offset [+-]hh:mm of at most 23:59 (json_format
# leaves the date's and time's ranges to datetime, and reads any two digits of an
# offset: "+99:99" moved a time by four days); and a Duration: whole seconds, 1 to 9
# fraction digits, then "s".
_OFFSET_TEXT = r"[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]"
_TIMESTAMP_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                             rf"(?:\.[0-9]{{1,9}})?(?:Z|{_OFFSET_TEXT})")
_ANY_OFFSET = re.compile(r"[+-][0-9]{2}:[0-9]{2}")


def offset_problem(text: str) -> str | None:
    """Why the numeric offset that ends the RFC 3339 time `text` is none, else None
    (for the readers of times other than json_format's, Timestamp.FromJsonString
    among them, which take any two digits too)."""
    found = _ANY_OFFSET.search(text, max(len(text) - 6, 0))
    if found is None or found.end() != len(text) or re.fullmatch(_OFFSET_TEXT, found[0]):
        return None
    return f"its offset {found[0]} is no offset: hours up to 23, minutes up to 59"
_DURATION_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]{1,9})?s")
_MAX_DEPTH = MAX_DEPTH = 100  # json_format's own limit: it refuses a document nested deeper
_SHOWN = 100  # characters of a refused value that a message repeats
NULL_MAP_VALUE = "must not be null (a map's value: leave its key out)"


class PlacedError(json_format.ParseError):
    """A json_format.ParseError whose place is known: `path`, proto field names
    below the message parsed (`product_details[1].quantity`, `attributes[k]`), and
    `reason`. str() is the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def whole_number_problem(text: str) -> str | None:
    """Why `text` is no whole number in a JSON string, else None (a range is
    json_format's to judge: "1e999" reads, and is refused). json_format reads one with
    a fraction or exponent as a double, and takes it if that is whole: "1e-400" was
    read as 0 and "1.0000000000000000001" as 1; Google's Java parser reads the digits
    exactly and refuses them (`1e2`, `2.0` are whole, and read)."""
    if not NUMBER_TEXT.fullmatch(text):
        return f"must be a whole number in ASCII digits (e.g. 10), got {text[:_SHOWN]!r}"
    if text.isdigit() or not float(text).is_integer() or is_whole(text):
        return None  # (json_format refuses a fraction its double keeps: "1.5")
    return f"must be a whole number, got {text[:_SHOWN]!r}"


def is_whole(text: str) -> bool:
    """Whether the number `text` (NUMBER_TEXT) is a whole number, read exactly."""
    try:
        value = decimal.Decimal(text)
        return value == value.to_integral_value()
    except decimal.InvalidOperation:  # (an exponent past what decimal holds: 1e-10**20)
        digits, _, exponent = text.lower().partition("e")
        return not exponent.startswith("-") or not digits.strip("+-0.")


class InexactNumber(float):
    """A JSON number whose double is whole though its digits are not (1e-400 is 0.0,
    1.0000000000000000001 is 1.0): an integer field refuses it (`text`, as written).
    A float and a double field read it as the double it is."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> InexactNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number


# What a JSON number whose double may be whole though its digits are not holds: a
# negative exponent (1e-400 is 0.0; 100000000000000000001e-3 is 1e17), or 17 digits
# or more with a point, so 9 on one side of it (1.0000000000000000001 is 1.0). Each
# begins with a fixed text that the search skips to (one pattern with the four as
# alternatives took 8.4 us a 500-byte event and 18 ms a MB, against 2.4 us and 3.3 ms;
# orjson.loads: 1.5 us, 36 ms), and ends where a number outside a string does (white
# space, `,`, `]`, `}` or the end): a time's nine fraction digits ("...:00.123456789Z"),
# a Google Analytics client id ("1234567890.1700000000") and a UUID's "...4e-5f" lie in
# strings, and are passed over, where they had the whole text read again.
_NUMBER_END = r"(?=[\s,\]}]|\Z)"
# (Possessive: digits given back could not end a number either.)
_MAY_BE_INEXACT = tuple(re.compile((pattern + _NUMBER_END).encode()) for pattern in (
    r"e-(?<=[0-9]e-)[0-9]++", r"E-(?<=[0-9]E-)[0-9]++",
    r"\.[0-9]{9}[0-9]*+(?:[eE][+-]?[0-9]++)?", r"\.(?<=[0-9]{9}\.)[0-9]*+(?:[eE][+-]?[0-9]++)?"))
# The bytes of a JSON number, and how far before a match its first is looked for.
_NUMBER_BYTES = frozenset(b"0123456789+-.eE")
_NUMBER_REACH = 64


def exact_numbers(text: bytes | str, document: Any) -> Any:
    """`document`, orjson's reading of the JSON `text`; or, when `text` holds a
    number whose double is whole though its digits are not (orjson reads 1e-400 as
    0.0, 1.0000000000000000001 as 1.0, and json_format took them whole), `text` read
    again with each such number an InexactNumber, which an integer field refuses.
    Each JSON path calls it on what orjson read (a REST body, an import's line, a
    pixel's event), so such a number is judged alike on each. Told by a search and a
    look at what it finds: the common case reads nothing again."""
    if not _holds_inexact(text.encode() if isinstance(text, str) else text):
        return document
    try:
        return json.loads(text, parse_float=exact_float)
    except (ValueError, RecursionError):  # (nested past what json reads: orjson's stays)
        return document


def _holds_inexact(data: bytes) -> bool:
    """Whether the JSON `data` may hold a number whose double is whole though its
    digits are not (False: it holds none)."""
    for pattern in _MAY_BE_INEXACT:
        found = pattern.search(data)
        while found is not None:
            if _is_inexact_at(data, found):
                return True
            found = pattern.search(data, found.end())
    return False


def _is_inexact_at(data: bytes, found: re.Match[bytes]) -> bool:
    """Whether the number `found` ends (a match of _MAY_BE_INEXACT) is whole as a
    double though its digits are not; True when its start is past _NUMBER_REACH (the
    whole text is read again, which says for sure)."""
    start = found.start()
    reach = max(start - _NUMBER_REACH, 0)
    while start > reach and data[start - 1] in _NUMBER_BYTES:
        start -= 1
    if start == reach and reach > 0:
        return True
    token = data[start:found.end()].decode("ascii")
    try:
        value = float(token)
    except ValueError:  # (digits, signs and points that are no number: in a string)
        return False
    return value.is_integer() and not is_whole(token)


def exact_float(text: str) -> float:
    """The double of the JSON number `text`, an InexactNumber when it is whole and its
    digits are not (json.loads' parse_float)."""
    value = float(text)
    return InexactNumber(text) if value.is_integer() and not is_whole(text) else value


def number_problem(text: str, is_float: bool) -> str | None:
    """Why `text` is no number for a double (`is_float`: a float) field, else None:
    a number in ASCII digits within the type's range, or NaN, Infinity, -Infinity."""
    if text in SPECIAL_FLOATS:
        return None
    if not NUMBER_TEXT.fullmatch(text):
        return (f'must be a number in ASCII digits (e.g. 1.5), "NaN", "Infinity" or '
                f'"-Infinity", got {text[:_SHOWN]!r}')
    value = float(text)
    if math.isinf(value) or is_float and not _fits_float(value):
        return f"out of range for a {'float' if is_float else 'double'}, got {text[:_SHOWN]!r}"
    return None


def _fits_float(value: float) -> bool:
    """Whether a double stays finite as a float (as C++ casts one: a value past the
    largest float by half a step or more does not)."""
    try:
        struct.pack("<f", value)
    except OverflowError:
        return False
    return True


def not_a_value_of(enum: Any) -> str:
    return f"not a value of {enum.full_name} (a name, or its number in ASCII digits)"


def enum_names(enum: Any, most: int = 12, given: str | None = None) -> str:
    """"its names: A, B" of the values of `enum` (the first `most`; not *_UNSPECIFIED):
    what a caller who wrote another may mean; and, when the text `given` looks like one
    of them (`hired`, `VIEWED`), "; did you mean 'HIRED'?". The list alone left a job
    site's `hired` with no word of HIRED, a name past the first 12 of JobEventType."""
    names = [v.name for v in enum.values if not v.name.endswith("_UNSPECIFIED")]
    listed = f"its names: {', '.join(names[:most])}" + (", ..." if len(names) > most else "")
    near = _near_name(names, given) if given else None
    return f"{listed}; did you mean {near!r}?" if near else listed


def _near_name(names: list[str], given: str) -> str | None:
    """The name of `names` that `given` spells in another case or with '-' or ' ' for
    '_' (`add-to-cart`: ADD_TO_CART), else the closest one, if any is close."""
    # (a name is short: what is past 100 characters is no spelling of one)
    spelled = given[:100].upper().replace("-", "_").replace(" ", "_")
    if spelled in names:
        return spelled
    close = difflib.get_close_matches(spelled, names, n=1)
    return close[0] if close else None


def _scalar_problem(value: Any, field: FieldDescriptor) -> str | None:
    kind = field.cpp_type
    if type(value) is not str:
        return _not_text_problem(value, field, kind)
    if kind in INT_RANGES:
        return whole_number_problem(value)
    if kind in (_F.CPPTYPE_FLOAT, _F.CPPTYPE_DOUBLE):
        return number_problem(value, kind == _F.CPPTYPE_FLOAT)
    if kind == _F.CPPTYPE_ENUM:
        enum = field.enum_type
        assert enum is not None  # an enum field
        if is_value_name(enum, value) or WHOLE_NUMBER_TEXT.fullmatch(value):
            return None
        return (f"{not_a_value_of(enum)}, got {value[:_SHOWN]!r}; "
                f"{enum_names(enum, given=value)}")
    return None


def _not_text_problem(value: Any, field: FieldDescriptor, kind: int) -> str | None:
    """Why a JSON value other than a string is no value of a string, float, double or
    enum `field`, else None (json_format judges the rest: integers, booleans).
    json_format reads an enum with int() and a number with float(): `true` was taken
    as 1.0 for a price and as the enum's value 1 (IMPRESSION for a job event's type),
    `2.9` as the value 2, and a list or an object said "unhashable type: 'list'"."""
    if kind == _F.CPPTYPE_ENUM:
        if type(value) is int or type(value) is float and value.is_integer():
            if -(2**31) <= value < 2**31:
                return None  # a number json_format looks up
            # (json_format wrote 1e300 out whole, 301 digits: "Value out of range: 1000...")
            return f"out of range for an enum number, got {json_kind(value)}"
        enum = field.enum_type
        assert enum is not None  # an enum field
        return f"{not_a_value_of(enum)}, got {json_kind(value)}; {enum_names(enum)}"
    if kind in INT_RANGES and type(value) is InexactNumber:  # (json_format took it whole)
        return f"must be a whole number, got {value.text[:_SHOWN]}"
    if kind in (_F.CPPTYPE_FLOAT, _F.CPPTYPE_DOUBLE) and type(value) is bool:
        return f"must be a number, got {json_kind(value)}"
    if kind == _F.CPPTYPE_STRING:
        # (json_format refuses it naming Python's type, "got dict", and neither a map's
        # key nor a list's index: `attributes.text` for attributes["k"].text[1])
        return f"must be a JSON string, got {json_kind(value)}"
    return None


def is_value_name(enum: Any, text: str) -> bool:
    """Whether `text` is the name of a value of `enum`. (upb's values_by_name reads a
    name up to a NUL: "VIEW\\x00anything" was taken as VIEW.)"""
    return "\x00" not in text and text in enum.values_by_name


def _check_value(value: Any, field: FieldDescriptor, path: str, depth: int) -> None:
    message = field.message_type
    if message is None:
        why = _scalar_problem(value, field)
    elif message.full_name in _WRAPPERS:
        why = _scalar_problem(value, message.fields_by_name["value"])
    elif message.full_name == "google.protobuf.Timestamp":
        # (json_format's words for a number, seconds since 1970 as a client may send
        # them, were "Timestamp JSON value not a string: 1733300000")
        why = (f'must be a JSON string holding an RFC 3339 timestamp such as '
               f'"2024-01-01T00:00:00Z", got {json_kind(value)}') if type(value) is not str \
            else None if _TIMESTAMP_TEXT.fullmatch(value) else (
                "not an RFC 3339 timestamp such as 2024-01-01T00:00:00Z (two ASCII digits a "
                f"field, upper-case T and Z, offset +hh:mm up to 23:59), got "
                f"{value[:_SHOWN]!r}")
    elif message.full_name == "google.protobuf.Duration":
        why = (f'must be a JSON string holding a duration such as "1.5s", got '
               f'{json_kind(value)}') if type(value) is not str \
            else None if _DURATION_TEXT.fullmatch(value) else (
                "not a duration such as 1.5s (seconds in ASCII digits, at most 9 after the "
                f"point, then s), got {value[:_SHOWN]!r}")
    elif message.full_name.startswith("google.protobuf."):
        why = None  # Struct, Value, FieldMask, Any...: no number read from a string
    elif type(value) is list:  # (json_format's words were "unhashable type: 'dict'")
        why = f"expected one JSON object (a {message.name}), got an array"
    elif type(value) is not dict:
        # json_format read a text as the names of its letters ("has no field named
        # \"u\"" for "u1"), said "'int' object is not iterable", and took "" as {}.
        why = f"expected a JSON object (a {message.name}), got {json_kind(value)}"
        if message.name == "CustomAttribute":  # (the likeliest slip: "color": "red")
            why += ', e.g. {"text": ["red"]} or {"numbers": [1.5]}'
    else:
        _check_message(value, message, path, depth + 1)
        return
    if why is not None:
        raise PlacedError(path, why)


def json_kind(value: Any) -> str:
    """What JSON value `value` is, in words, with a glimpse of it: an object, an array,
    a text (a string), a number, true, false or null; never Python's names of them."""
    if value is None:
        return "null"
    if type(value) is bool:
        return str(value).lower()
    if type(value) is str:
        return f"a text, {value[:_SHOWN]!r}"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return f"a number, {value!r}"


def _check_message(data: Any, descriptor: Descriptor, path: str, depth: int) -> None:
    if type(data) is not dict or depth > _MAX_DEPTH:
        return  # not an object (or too deep): json_format refuses it in its own words
    fields = fields_by_any_name(descriptor)
    keys: dict[str, str] = {}  # field name -> the key that gave it
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            continue
        where = f"{path}.{field.name}" if path else field.name
        # (json_format compares the keys, so it let the last of the two win)
        if keys.setdefault(field.name, key) != key:
            raise PlacedError(where, given_twice(keys[field.name], key))
        if value is None:
            continue
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            if type(value) is dict:
                inner = entry.fields_by_name["value"]
                for name, item in value.items():
                    if item is None:  # (json_format's words: "'NoneType' object is not
                        # iterable", naming the map alone)
                        raise PlacedError(entry_path(where, name), NULL_MAP_VALUE)
                    _check_value(item, inner, entry_path(where, name), depth)
        elif field.is_repeated:
            if type(value) is list:
                for i, item in enumerate(value):
                    if item is not None:
                        _check_value(item, field, f"{where}[{i}]", depth)
        else:
            _check_value(value, field, where, depth)


def given_twice(first: str, then: str) -> str:
    """Why a field given under its JSON name and its proto name is refused."""
    return f"given twice, as {first!r} and {then!r} (its JSON and its proto name)"


@functools.cache
def fields_by_any_name(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """A message's fields by their JSON and their proto names (JSON takes either)."""
    found = {f.json_name: f for f in descriptor.fields}
    found.update({f.name: f for f in descriptor.fields})
    return found


def check_texts(data: Any, descriptor: Descriptor) -> None:
    """Raise PlacedError for the first number, enum number, Timestamp or Duration
    in `data` (parsed JSON for a `descriptor` message) given as a string the proto3
    JSON mapping does not read, though json_format would (see the module's words),
    or for a field given twice, under its JSON and its proto name."""
    _check_message(data, descriptor, "", 0)


def parse_into(data: Any, message: Message) -> None:
    """json_format.ParseDict(`data`, `message`) after `check_texts`: raises
    json_format.ParseError (a PlacedError for what the check refuses, with
    `message` left untouched)."""
    check_texts(data, cast(Descriptor, message.DESCRIPTOR))
    json_format.ParseDict(data, message)


def merge_into(data: Any, message: Message) -> None:
    """`parse_into(data, message)`, by the fast path when it reads `data` (a JSON object
    naming no field `message` holds already, so that merging its fields in sets them
    as json_format would): the same message, for a tenth of the CPU. A REST body went
    through json_format whole: an event of 180,000 product details (6.5 MB of JSON, a
    public writer key's to send) took 16 s of the server's CPU to write, an inline
    import of 10,000 events over REST ran at json_format's 6k a second. Anything the
    fast path does not read goes to parse_into on `message` itself, so a refusal, and
    what a refused parse leaves in `message`, are parse_into's own."""
    if type(data) is dict:
        message_class = type(message)
        plan = _class_plan(message_class)
        held = {field.name for field, _ in message.ListFields()}
        try:
            # (a key it does not know falls back: it may name no field at all)
            if not any(plan.fields[key][0] in held for key in data):
                message.MergeFrom(message_class(**plan.convert(data)))
                return
        except (_Fallback, KeyError, ValueError, TypeError, RecursionError, DecodeError):
            pass  # (DecodeError: nested past protobuf's depth, which parse_into names)
    parse_into(data, message)


def parse_text(text: str | bytes, message: Message) -> None:
    """json_format.Parse(`text`, `message`) with `check_texts` (its numbers read as
    exact_numbers reads them): raises json_format.ParseError (a PlacedError for what
    the check refuses, with `message` cleared)."""
    json_format.Parse(text, message)
    try:
        check_texts(json.loads(text, parse_float=exact_float),
                    cast(Descriptor, message.DESCRIPTOR))
    except PlacedError:
        message.Clear()
        raise


def placed(error: json_format.ParseError, descriptor: Descriptor, data: Any) -> PlacedError:
    """`error`, met parsing `data` as a `descriptor` message, as a PlacedError whose
    place is found in `data` (see parse_error): for a caller that reports against an
    earlier form of the document (lenient_json rewrites one object as a list of one,
    a list of map entries as a map), where the place could not be found."""
    if isinstance(error, PlacedError):
        return error
    return PlacedError(*parse_error(error, descriptor, data))


# -- message -> proto3 JSON ------------------------------------------------------------
#
# json_format.MessageToDict walks every field in Python through a chain of checks (an
# event of 40 fields took 170 us, a console page of 100 events 21 ms: more than the
# rest of the call). Here each message type gets a plan once (field -> JSON key and
# converter, for each set of options), and a message is written by one pass over its
# ListFields (the fields it sets, in json_format's order). What a plan does not cover —
# an extension, an enum with a JSON name of its own, an unknown number of a closed enum,
# a value json_format refuses (a Timestamp out of range, a FieldMask it cannot write) —
# is json_format's own answer, or error, for the whole message; Any, Struct, Value and
# ListValue are json_format's for that part. Tests compare both on a corpus.

_WRITTEN_BY_JSON_FORMAT = frozenset({"google.protobuf.Any", "google.protobuf.Struct",
                                     "google.protobuf.Value", "google.protobuf.ListValue"})
_WRITTEN_AS_TEXT = frozenset({"google.protobuf.Duration", "google.protobuf.FieldMask"})


def _written_float(value: float) -> Any:
    if value - value == 0:  # finite (inf - inf and NaN - NaN are NaN)
        return value
    return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


# The shortest double of each float json_format writes (type_checkers.ToShortestFloat
# formats it up to four times: 2 us, where prices and quantities repeat), up to
# _SHORTEST_KEPT of them.
_SHORTEST: dict[float, float] = {}
_SHORTEST_KEPT = 4096


def _written_single_float(value: float) -> Any:
    if value - value == 0:
        if not value:  # 0.0 and -0.0, one key, each written as itself
            return value
        shortest = _SHORTEST.get(value)
        if shortest is None:
            if len(_SHORTEST) >= _SHORTEST_KEPT:
                _SHORTEST.clear()
            shortest = _SHORTEST[value] = type_checkers.ToShortestFloat(value)
        return shortest
    return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


# The date of each day since the epoch that Timestamps name (datetime's arithmetic
# is most of Timestamp.ToJsonString's 6 us), up to _DATES_KEPT of them.
_DATES: dict[int, str] = {}
_DATES_KEPT = 4096
_TWO_DIGITS = [f"{n:02d}" for n in range(60)]


def _written_timestamp(stamp: Any) -> str:
    """Timestamp.ToJsonString in a fraction of its time; _Fallback out of range,
    where json_format refuses it."""
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (-62_135_596_800 <= seconds <= 253_402_300_799 and 0 <= nanos < 1_000_000_000):
        raise _Fallback
    days, second = divmod(seconds, 86_400)
    date = _DATES.get(days)
    if date is None:
        if len(_DATES) >= _DATES_KEPT:
            _DATES.clear()
        date = _DATES[days] = (_EPOCH + datetime.timedelta(days=days)).date().isoformat()
    hour, second = divmod(second, 3_600)
    minute, second = divmod(second, 60)
    # (joined from parts: "%02d" formatting took half of the time)
    clock = (date, "T", _TWO_DIGITS[hour], ":", _TWO_DIGITS[minute], ":", _TWO_DIGITS[second])
    if not nanos:
        return "".join((*clock, "Z"))
    if not nanos % 1_000_000:
        return "".join((*clock, ".", str(1_000 + nanos // 1_000_000)[1:], "Z"))
    if not nanos % 1_000:
        return "".join((*clock, ".", str(1_000_000 + nanos // 1_000)[1:], "Z"))
    return "".join((*clock, ".", str(1_000_000_000 + nanos)[1:], "Z"))


def _written_bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _written_enum(field: FieldDescriptor, numbers: bool) -> Callable[[Any], Any] | None:
    enum = field.enum_type
    assert enum is not None  # an enum field
    if numbers:
        return None
    if enum.full_name == "google.protobuf.NullValue":
        return _null
    if any(value.has_options for value in enum.values):
        raise _Fallback  # a JSON name of its own (pb.enumvalue.json) is json_format's
    names = {value.number: value.name for value in enum.values}
    if enum.is_closed:
        def closed(number: int) -> Any:
            return names[number]  # (KeyError: json_format refuses an unknown number)
        return closed
    return lambda number: names.get(number, number)  # an unknown number as itself


def _null(value: Any) -> None:
    return None


def _written_scalar(field: FieldDescriptor, numbers: bool) -> Callable[[Any], Any] | None:
    """What writes a value of the scalar `field` (None: the value as it is)."""
    kind = field.cpp_type
    if kind == _F.CPPTYPE_ENUM:
        return _written_enum(field, numbers)
    if field.type == _F.TYPE_BYTES:
        return _written_bytes
    if kind in (_F.CPPTYPE_INT64, _F.CPPTYPE_UINT64):
        return str
    if kind == _F.CPPTYPE_DOUBLE:
        return _written_float
    if kind == _F.CPPTYPE_FLOAT:
        return _written_single_float
    return None  # string, bool, 32-bit integers: as the message holds them


class _Writer:
    """How to write one message type (with one set of options) as a dict."""

    def __init__(self, descriptor: Descriptor, options: tuple[bool, bool]) -> None:
        self.descriptor = descriptor
        self.options = options
        self.fields: dict[FieldDescriptor, tuple[str, Callable[[Any], Any] | None]] = {}

    def build(self) -> None:
        proto_names, numbers = self.options
        for field in self.descriptor.fields:
            try:
                convert = _written_field(field, self.options)
            except _Fallback:
                convert = _unsupported
            self.fields[field] = (field.name if proto_names else field.json_name, convert)

    def write(self, message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fields = self.fields
        for field, value in message.ListFields():
            key, convert = fields[field]  # (KeyError: an extension, json_format's)
            out[key] = value if convert is None else convert(value)
        return out


_WRITERS: dict[tuple[str, tuple[bool, bool]], _Writer] = {}


def _writer(descriptor: Descriptor, options: tuple[bool, bool]) -> _Writer:
    writer = _WRITERS.get((descriptor.full_name, options))
    if writer is None:
        writer = _WRITERS[(descriptor.full_name, options)] = _Writer(descriptor, options)
        writer.build()  # (after it is kept: types may recurse)
    return writer


def _written_message(descriptor: Descriptor,
                     options: tuple[bool, bool]) -> Callable[[Any], Any]:
    """What writes a message of type `descriptor` as json_format does."""
    name = descriptor.full_name
    if descriptor.file.name == "google/protobuf/wrappers.proto":
        inner = _written_scalar(descriptor.fields_by_name["value"], options[1])
        if inner is None:
            return operator.attrgetter("value")
        return lambda wrapper: inner(wrapper.value)
    if name == "google.protobuf.Timestamp":
        return _written_timestamp
    if name in _WRITTEN_AS_TEXT:
        return operator.methodcaller("ToJsonString")
    if name in _WRITTEN_BY_JSON_FORMAT:
        proto_names, numbers = options
        return functools.partial(json_format.MessageToDict, use_integers_for_enums=numbers,
                                 preserving_proto_field_name=proto_names)
    # (a type that holds itself finds its writer kept, its fields still being planned)
    return _writer(descriptor, options).write


def _written_bool_key(key: bool) -> str:
    return "true" if key else "false"


def _written_field(field: FieldDescriptor,
                   options: tuple[bool, bool]) -> Callable[[Any], Any] | None:
    """What writes the value ListFields gives of `field` (None: the value as it is)."""
    kind = field.message_type
    if kind is not None and is_map_entry(kind):
        key_field, value_field = kind.fields_by_name["key"], kind.fields_by_name["value"]
        value_kind = value_field.message_type
        value = (_written_message(value_kind, options) if value_kind is not None
                 else _written_scalar(value_field, options[1]))
        key: Callable[[Any], str] | None = (
            _written_bool_key if key_field.type == _F.TYPE_BOOL
            else None if key_field.type == _F.TYPE_STRING else str)
        if key is None and value is None:
            return dict
        # (keys, then each value by its key: a map's items() is the abc's, a third slower)
        return lambda entries: {k if key is None else key(k):
                                entries[k] if value is None else value(entries[k])
                                for k in entries}
    single = (_written_message(kind, options) if kind is not None
              else _written_scalar(field, options[1]))
    if not field.is_repeated:
        return single
    if single is None:
        return list
    return lambda values: [single(v) for v in values]


# What writes each message class given message_to_dict, by its options.
_CLASS_WRITERS: dict[tuple[type[Message], tuple[bool, bool]], Callable[[Any], Any]] = {}


def message_to_dict(message: Message, *, use_integers_for_enums: bool = False,
                    preserving_proto_field_name: bool = False) -> Any:
    """json_format.MessageToDict(`message`) with those options, as it makes it (its
    SerializeToJsonError too), made by a plan of the message's type; a dict, or what
    a well-known type is written as (a Timestamp's string, a wrapper's value...)."""
    options = (preserving_proto_field_name, use_integers_for_enums)
    try:
        write = _CLASS_WRITERS.get((type(message), options))
        if write is None:
            write = _CLASS_WRITERS[(type(message), options)] = _written_message(
                cast(Descriptor, message.DESCRIPTOR), options)
        return write(message)
    except (_Fallback, KeyError, ValueError, TypeError, AttributeError, RecursionError,
            json_format.SerializeToJsonError):
        return json_format.MessageToDict(message, use_integers_for_enums=use_integers_for_enums,
                                         preserving_proto_field_name=preserving_proto_field_name)


# -- JSON that does not parse ---------------------------------------------------------

_NEAR = 24  # characters of a document shown where its JSON stops parsing


def syntax_problem(error: ValueError, document: bytes | str, *, one_line: bool = False) -> str:
    """What orjson's `error` (a JSONDecodeError) says of `document`, with the place
    and the text there: "invalid literal, expected 'null': line 1 column 1 (char 0)"
    left a reader of `not json` guessing; now "... at line 1 column 1, at 'not json'".
    With `one_line` (an import line, which its caller names by the file's line) the
    place is its column alone: "line 3: ... at line 1 column 1" named two lines."""
    msg, pos = getattr(error, "msg", str(error)), getattr(error, "pos", None)
    line, column = getattr(error, "lineno", None), getattr(error, "colno", None)
    if pos is None or line is None:
        return str(error)
    if isinstance(document, bytes) and "not valid UTF-8" in msg:
        return _not_utf8(document, one_line) or msg
    text = (document.decode("utf-8", "replace") if isinstance(document, bytes)
            else document).rstrip()  # (an import line's newline)
    near = text[pos:pos + _NEAR]
    shown = f"at {near!r}" + ("..." if len(text) > pos + _NEAR else "") if near.strip() \
        else "at the end"
    place = f"column {column}" if one_line else f"line {line} column {column}"
    return f"{msg} at {place}, {shown}"


def _not_utf8(document: bytes, one_line: bool = False) -> str | None:
    """Where `document` stops being UTF-8, and the byte there: orjson says "str is
    not valid UTF-8: surrogates not allowed: line 1 column 1 (char 0)" wherever
    the byte is (a Latin-1 "é" in the middle of a body, say). None if it decodes."""
    try:
        document.decode("utf-8")
    except UnicodeDecodeError as bad:
        start = bad.start
        line_start = document.rfind(b"\n", 0, start) + 1
        before = document[line_start:start].decode("utf-8", "replace")
        line = document.count(b"\n", 0, start) + 1
        place = "" if one_line else f"line {line} "
        return (f"not valid UTF-8: the byte 0x{document[start]:02x} at {place}column "
                f"{len(before) + 1} (byte {start}), after {before[-_NEAR:]!r}")
    return None


# -- json_format's errors, said as a field path and a reason --------------------------

_STEP = re.compile(r"Failed to parse (\w+) field: ")
_AT = re.compile(r" at \"?[A-Za-z_]\w*(?P<path>(?:\.[^\s\".]+)*)\"?\.*$")
_LISTED_FIELDS = re.compile(r"\s*Available Fields.*", re.DOTALL)
# Python's words inside json_format's messages, in the contract's
_PLAIN = [
    (re.compile(r"time data (?P<got>'[^']*') does not match format '[^']*'"),
     "not an RFC 3339 timestamp such as 2024-01-01T00:00:00Z"),
    (re.compile(r"expected string or bytes-like object, got '(?P<got>\w+)'"),
     "must be a JSON string, got {got}"),
    (re.compile(r"invalid literal for int\(\) with base 10: (?P<got>'.*')"),
     "must be a whole number, got {got}"),
    (re.compile(r"could not convert string to float: (?P<got>'.*')"),
     "must be a number, got {got}"),
    (re.compile(r"int\(\) argument must be a string, a bytes-like object or a real number, "
                r"not '(?P<got>\w+)'"), "must be a whole number, got {got}"),
    (re.compile(r"float\(\) argument must be a string or a real number, not '(?P<got>\w+)'"),
     "must be a number, got {got}"),
    (re.compile(r"Bool value (?P<got>True|False) is not acceptable for integer field"),
     "must be a whole number, got {got}"),
    (re.compile(r"repeated field \w+ must be in \[\] which is (?P<value>.*)"),
     "must be a JSON array, got {got}"),
    (re.compile(r"Map field \w+ must be in a dict which is (?P<value>.*)"),
     "must be a JSON object, got {got}"),
]
# What JSON calls the value of each Python type json_format names in its messages
# ("must be a whole number, got dict" was said of {} given for a quantity).
_JSON_NAMES = {"dict": "an object", "list": "an array", "str": "a text", "int": "a number",
               "float": "a number", "bool": "true or false", "NoneType": "null",
               "True": "true", "False": "false"}
# The longest Python value json_format writes in its message that is written again as
# JSON (a longer one is cut to _SHOWN characters as it is)
_REWRITTEN_CHARS = 10_000


def _as_json(written: str) -> str:
    """A value json_format wrote in its message as Python writes it (`[{'key': None}]`)
    as JSON writes it (`[{"key": null}]`), cut to about _SHOWN characters; quoted when
    it is no Python literal (a text is written bare)."""
    try:
        if len(written) > _REWRITTEN_CHARS:
            raise ValueError(written[:20])
        text = json.dumps(ast.literal_eval(written), ensure_ascii=False)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        # (json_format writes a text bare: `got x` for "x"; one too long to read stays)
        text = written if len(written) > _REWRITTEN_CHARS else json.dumps(
            written, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def without_field_list(error: Exception) -> str:
    """json_format's message of `error` without the fields it lists after it."""
    return _LISTED_FIELDS.sub("", str(error)).strip()


def parse_error(error: json_format.ParseError, descriptor: Any,
                data: Any = None) -> tuple[str, str]:
    """(`field.path[i]` of proto field names below `descriptor`, or "" when it names
    none; the reason) of a json_format error met parsing a `descriptor` message;
    with the JSON `data` parsed, the place in a list json_format leaves out (its
    messages of a wrapper, such as `quantity`, name no index) is found in it. A
    PlacedError says its own place."""
    if isinstance(error, PlacedError):
        return error.path, error.reason
    names, reason = said(error)
    return placed_names(descriptor, names, reason, data)


_TOO_DEEP = "Message too deep. "


def _to_first_repeat(names: list[str]) -> list[str]:
    """`names` up to the first that repeats one before it."""
    for i, name in enumerate(names):
        if name in names[:i]:
            return names[:i + 1]
    return names


def said(error: json_format.ParseError) -> tuple[list[str], str]:
    """(the JSON names json_format's `error` walks through, as it gives them; its
    reason in the contract's words) of an error other than a PlacedError."""
    text = without_field_list(error)
    names: list[str] = []
    while step := _STEP.match(text):
        names.append(step[1])
        text = text[step.end():]
    at = _AT.search(text)
    if at is not None:
        steps, names = names, [part for part in at["path"].split(".") if part]
        # "at" names the field itself, or (a list or map of the wrong kind) the
        # message holding it: then the field is the last step.
        if steps and steps[-1] not in {part.partition("[")[0] for part in names}:
            names.append(steps[-1])
        text = text[:at.start()]
    reason = text.rstrip(".").strip()
    if reason.startswith(_TOO_DEEP):
        # (one step a level: a product nesting its variants 150 deep was named by a
        # path of 100 "variants", and no index)
        names = _to_first_repeat(names)
        reason = f"nests messages too deep for protobuf ({reason[len(_TOO_DEEP):]})"
    for pattern, plain in _PLAIN:
        found = pattern.search(reason)
        if found is not None:
            got = _JSON_NAMES.get(found["got"], found["got"]) if "got" in pattern.groupindex \
                else _as_json(found["value"])
            reason = reason[:found.start()] + plain.format(got=got) + reason[found.end():]
    return names, reason


def placed_names(descriptor: Any, names: list[str], reason: str, data: Any = None,
                 root: Any = None, above: Sequence[str] = ()) -> tuple[str, str]:
    """(the proto field path of `names`, JSON names below `descriptor` that `said`
    gives, with the place in a list found in `data`; `reason` with the field a
    misspelt name looks like). With `root`: `descriptor` is the message that the
    JSON names `above` reach from `root`, and the path starts at `root`."""
    if data is not None and len(names) <= _PLACED_DEPTH:
        names = _placed(descriptor, names, data)
    if root is not None:
        descriptor, names = root, [*above, *names]
    return _proto_path(descriptor, names), _with_near_field(reason, descriptor, names)


def proto_path(descriptor: Descriptor, names: Sequence[str]) -> str:
    """JSON names (with `[...]` suffixes) below `descriptor` as proto field names."""
    return _proto_path(descriptor, list(names))


_NO_FIELD = re.compile(r'Message type "(?P<type>[\w.]+)" has no field named "(?P<name>[^"]*)"')


def _with_near_field(reason: str, descriptor: Any, path: list[str]) -> str:
    """`reason`, when it says a message has no field of a name, with the field of that
    message the name looks like (a new user's `visitorID` or `productDetail` was
    refused with no word of `visitorId` or `productDetails`), else the message above it
    on `path` (JSON names below `descriptor`) that has that field: Recommendations AI's
    events held `userInfo.visitorId`, which a UserEvent holds itself."""
    found = _NO_FIELD.search(reason)
    if found is None:
        return reason
    try:
        message = descriptor.file.pool.FindMessageTypeByName(found["type"])
    except KeyError:
        return reason
    typed, names = found["name"], [field.json_name for field in message.fields]
    # The same name in another case or snake_case; else the very name of a field of a
    # message above (surer than a likeness); else the field it looks like.
    same = [name for name in names if name.lower() == typed.lower().replace("_", "")]
    above = [descriptor]
    for part in path:
        field = _field_named(above[-1], part.partition("[")[0])
        if field is None or field.message_type is None:
            break
        above.append(field.message_type)
    owner = next((m for m in reversed(above) if m.full_name != message.full_name
                  and _field_named(m, typed) is not None), None)
    below = None if same or owner is not None else _holder_below(message, typed)
    near = same[0] if same else None if owner is not None or below is not None \
        else near_names.nearest(typed, names)
    if near is not None:
        hint = f'did you mean "{near}"?'
    elif owner is not None:
        hint = f"it is a field of {owner.name} itself, not of {message.name}"
    elif below is not None and below.message_type is not None:
        # (a Segment or GA4 user's userId at the top: near_names guesses no field whose
        # words end in another's kind, and userInfo was no longer named)
        hint = (f"it is a field of {below.json_name} ({below.message_type.name}), not of "
                f"{message.name} itself")
    else:
        return reason
    return f"{reason[:found.end()]} ({hint}){reason[found.end():]}"


def _holder_below(message: Descriptor, typed: str) -> FieldDescriptor | None:
    """The first field of `message` whose message (one of ours: no map's entry, no
    well-known type) has a field named `typed` (in any case, or in snake_case), or None."""
    wanted = typed.lower().replace("_", "")
    for field in message.fields:
        below = field.message_type
        if below is None or below.GetOptions().map_entry \
                or below.full_name.startswith("google.protobuf."):
            continue
        if any(name.json_name.lower() == wanted for name in below.fields):
            return field
    return None


# How deep a path `_placed` looks into, and how many elements of a list (each list on
# the way parses its elements again, so a refusal costs at most a few times its first
# parse): past either, json_format's path is kept.
_PLACED_DEPTH = 8
_PLACED_ITEMS = 1_000


def _placed(descriptor: Descriptor, names: list[str], data: Any) -> list[str]:
    """`names` (JSON or proto names, json_format's path) with the index of the
    first element json_format refuses added to a list of messages named without
    one, the field of a oneof json_format leaves out put back, and a wrapper's own
    `value` left out (it is not in the JSON)."""
    out: list[str] = []
    for i, part in enumerate(names):
        name, bracket, _ = part.partition("[")
        field = _field_named(descriptor, name)
        if field is None and isinstance(data, dict):
            # json_format names no step for a field of a oneof (an import's
            # user_event_inline_source): the one `data` sets whose message has `name`
            member = next((f for f in descriptor.fields if f.containing_oneof is not None
                           and f.message_type is not None and not f.is_repeated
                           and _json_value(data, f) is not None
                           and _field_named(f.message_type, name) is not None), None)
            if member is not None and member.message_type is not None:
                out.append(member.json_name)
                descriptor, data = member.message_type, _json_value(data, member)
                field = _field_named(descriptor, name)
        value = _json_value(data, field) if field is not None else None
        if field is None or value is None:
            return out + names[i:]
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            return out + names[i:]
        if field.message_type.full_name in _WRAPPERS:
            return [*out, part]  # its `value` is the wrapper's inside, not the caller's
        descriptor = field.message_type
        if field.is_repeated and not bracket and isinstance(value, list):
            bad = next((j for j, item in enumerate(value[:_PLACED_ITEMS])
                        if _refused(item, descriptor)), None)
            if bad is None:
                return out + names[i:]
            part, value = f"{part}[{bad}]", value[bad]
        elif bracket:
            index = part[len(name) + 1:-1]
            value = value[int(index)] if index.isdigit() and isinstance(value, list) \
                and int(index) < len(value) else None
        out.append(part)
        data = value
    return out


def _field_named(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    return fields_by_any_name(descriptor).get(name)


def _json_value(data: Any, field: FieldDescriptor) -> Any:
    """What the JSON object `data` gives `field` (under either name), or None."""
    if not isinstance(data, dict):
        return None
    return data.get(field.json_name, data.get(field.name))


def _refused(item: Any, descriptor: Descriptor) -> bool:
    """Whether json_format refuses `item` as a `descriptor` message."""
    try:
        json_format.ParseDict(item, message_factory.GetMessageClass(descriptor)())
    except Exception:  # a ParseError, or what json_format lets escape for odd input
        return True
    return False


def _proto_path(descriptor: Descriptor | None, parts: list[str]) -> str:
    """JSON names (with `[...]` suffixes) below `descriptor` as proto field names,
    as far as they name fields."""
    out = []
    for part in parts:
        name, bracket, index = part.partition("[")
        field = _field_named(descriptor, name) if descriptor is not None else None
        if field is None:
            break
        descriptor = field.message_type
        if descriptor is not None and is_map_entry(descriptor):
            descriptor = descriptor.fields_by_name["value"].message_type
            # (a key as json_format and the JSON give it, `attributes[k]`, in the words
            # of the rules' violations, `attributes['k']`)
            out.append(entry_path(field.name, index[:-1]) if bracket else field.name)
        else:
            out.append(field.name + bracket + index)
    return ".".join(out)


@functools.cache
def is_map_entry(descriptor: Descriptor) -> bool:
    """Whether `descriptor` is a map's entry (its options are made anew at each look)."""
    return bool(descriptor.GetOptions().map_entry)
