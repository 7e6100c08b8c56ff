"""Timestamps and Durations out of their documented ranges.

protobuf's binary format carries any seconds and nanos; its JSON form (and so
every reply over HTTP, and `footfall events list --json`) cannot show a
Timestamp outside 0001-01-01..9999-12-31 or with nanos outside 0..999,999,999,
nor a Duration beyond +-10,000 years, nor a FieldMask path with an upper-case
letter (or a "_" not followed by a lower-case one). The gRPC side refuses such
values when it decodes a request, naming the field, so none is ever stored (one
stored event with such a path made every REST read of its catalog's events fail).
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Any

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from server.errors import FieldViolation, raise_if_any

TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"
FIELD_MASK = "google.protobuf.FieldMask"
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799  # 0001-01-01, 9999-12-31T23:59:59
MAX_DURATION_SECONDS = 315_576_000_000
MAX_NANOS = 999_999_999
_WELL_KNOWN = frozenset({TIMESTAMP, DURATION, FIELD_MASK})
_CAPITAL = re.compile(r"[A-Z]")


SINGLE, REPEATED, MAP = 0, 1, 2


@functools.cache
def _fields_to_check(message: Descriptor) -> dict[str, int]:
    """The message fields of `message` that are, or may contain, a Timestamp,
    Duration or FieldMask, each with its shape (computed once per type; cut at cycles)."""
    found = {}
    for field in message.fields:
        inner = field.message_type
        if inner is None or not _reaches(inner, frozenset()):
            continue
        if inner.GetOptions().map_entry:
            if inner.fields_by_name["value"].message_type is not None:
                found[field.name] = MAP
        else:
            found[field.name] = REPEATED if field.is_repeated else SINGLE
    return found


def _reaches(message: Descriptor | None, seen: frozenset[str]) -> bool:
    if message is None or message.full_name in seen:
        return False
    if message.full_name in _WELL_KNOWN:
        return True
    return any(_reaches(f.message_type, seen | {message.full_name}) for f in message.fields)


def _problem(value: Any) -> str | None:
    """What is wrong with a Timestamp or Duration, if anything."""
    seconds, nanos = value.seconds, value.nanos
    if value.DESCRIPTOR.full_name == TIMESTAMP:
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            return "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
        if not 0 <= nanos <= MAX_NANOS:
            return f"nanos must be 0..{MAX_NANOS}, got {nanos}"
        return None
    if not -MAX_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        return f"must be within +-{MAX_DURATION_SECONDS} seconds"
    if not -MAX_NANOS <= nanos <= MAX_NANOS or (seconds and nanos and (seconds < 0) != (nanos < 0)):
        return "nanos must be -999999999..999999999 with the sign of seconds"
    return None


def _snake_case(path: str) -> str:
    """`priceInfo.Price` as `price_info.price` (what a client meant, likely)."""
    return _CAPITAL.sub(lambda m: ("_" if m.start() and path[m.start() - 1] != "." else "")
                        + m[0].lower(), path)


def _mask_violations(mask: Any, path: str) -> list[FieldViolation]:
    """The paths of a FieldMask proto3 JSON cannot write (json_format's words: "Fail
    to print FieldMask to Json string"): not snake_case."""
    with contextlib.suppress(ValueError):
        mask.ToJsonString()
        return []
    found = []
    for i, given in enumerate(mask.paths):
        try:
            type(mask)(paths=[given]).ToJsonString()
        except ValueError:
            snake = _snake_case(given)
            found.append(FieldViolation(
                f"{path}.paths[{i}]", f"must be snake_case, as field mask paths are (proto3 "
                f"JSON cannot carry it), got {given[:100]!r}"
                + (f"; did you mean {snake[:100]!r}?" if snake != given else "")))
    return found


def violations(message: Message, path: str = "") -> list[FieldViolation]:
    """Every Timestamp or Duration in `message` out of its range, and FieldMask proto3
    JSON cannot write, by field path."""
    found: list[FieldViolation] = []
    name = message.DESCRIPTOR.full_name
    if name == FIELD_MASK:
        return _mask_violations(message, path or "request")
    if name in _WELL_KNOWN:
        why = _problem(message)
        if why is not None:
            found.append(FieldViolation(path or "request", why))
        return found
    wanted = _fields_to_check(message.DESCRIPTOR)
    if not wanted:
        return found
    for field, value in message.ListFields():  # set fields only: cheap for sparse messages
        shape = wanted.get(field.name)
        if shape is None:
            continue
        where = f"{path}.{field.name}" if path else field.name
        if shape == MAP:
            for key, item in value.items():
                found.extend(violations(item, f"{where}[{key!r}]"))
        elif shape == REPEATED:
            for i, item in enumerate(value):
                found.extend(violations(item, f"{where}[{i}]"))
        else:
            found.extend(violations(value, where))
    return found


@functools.cache
def _plan(message: Descriptor) -> tuple[bool, tuple[tuple[str, int], ...]]:
    """Whether `message` is a Timestamp, Duration or FieldMask, and its
    `_fields_to_check`."""
    if message.full_name in _WELL_KNOWN:
        return True, ()
    return False, tuple(_fields_to_check(message).items())


def _valid(message: Message) -> bool:
    """Whether `message` holds no bad value: `violations` without building paths
    (this runs on every gRPC call, so it stays lean)."""
    well_known, checks = _plan(message.DESCRIPTOR)
    if well_known:
        if message.DESCRIPTOR.full_name == FIELD_MASK:
            return not _mask_violations(message, "")
        return _problem(message) is None
    # Only the few fields that may hold one are looked at (ListFields would wrap
    # every field that is set: most of the cost of a request's check).
    for name, shape in checks:
        if shape == SINGLE:
            if message.HasField(name) and not _valid(getattr(message, name)):
                return False
            continue
        values = getattr(message, name)
        if values and not all(map(_valid, values.values() if shape == MAP else values)):
            return False
    return True


def check(message: Message) -> None:
    """INVALID_ARGUMENT listing every out-of-range Timestamp or Duration and every
    FieldMask proto3 JSON cannot write."""
    if not _valid(message):
        raise_if_any(violations(message))
