"""An event as stored: without the fields its row's columns already hold.

A deterministic serialization of a UserEvent starts with event_type (field 1),
visitor_id (2) and event_time (3), which the row keeps as columns too; stored twice
they were about 40 of the 240 bytes of a row of the bench corpus. So the stored
event is a 0 byte (no field is numbered 0: no serialized event starts with it)
followed by the rest, and a read puts the fields back from the columns, byte for
byte. An event the columns cannot rebuild exactly is stored whole, as every event
stored before migration 8 is.

The user id is a column too, and the first field of user_info (field 12), which
follows fields 4-11 (each length-delimited, each skipped by its length). An event
stored without it starts with a 1 byte (field 0 again) instead: its user_info is
kept, shorter by the user id's field, and a read puts that field back. 11 of the
bench corpus's 300 bytes a row; events stored before keep their 0 byte and read
as they did. (A Footfall older than this cannot read the new rows: it fails to
decode them.)
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

PACKED = b"\0"
PACKED_USER = b"\1"  # packed, and its user_info without the user id
# What a read of an event selects for `unpack`, in its order.
UNPACK_COLUMNS = "event_type, visitor_id, user_id, event_time_us, event_time_ns, event"
_USER_INFO = 0x62  # field 12, length-delimited: a one-byte tag


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]  # the varints of 0-127 (most lengths)


def varint(value: int) -> bytes:
    """`value` (not negative) as a protobuf base-128 varint. The sizes of an id,
    a time's seconds (5 bytes) and nanos written out: this runs several times for
    every event stored and every event a watch sends, and a loop over the bytes
    costs half as much again."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value < 0x20_0000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if value < 0x1000_0000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80,
                      value >> 14 & 0x7F | 0x80, value >> 21))
    if value < 0x8_0000_0000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80,
                      value >> 14 & 0x7F | 0x80, value >> 21 & 0x7F | 0x80, value >> 28))
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def timestamp(seconds: int, nanos: int) -> bytes:
    """A google.protobuf.Timestamp serialized: seconds (field 1, as int64: a time
    before 1970 in ten bytes) and nanos (field 2), each left out when 0."""
    return ((_seconds_field(seconds) if seconds else b"")
            + (b"\x10" + varint(nanos) if nanos else b""))


@lru_cache(maxsize=64)
def _seconds_field(seconds: int) -> bytes:
    """A Timestamp's field 1 holding `seconds`. Kept for the next rows: those a
    read or a write goes through are mostly of the same second, and a time's
    seconds take a varint of 5 bytes (0.35 µs to make, 0.08 to find)."""
    return b"\x08" + varint(seconds & 0xFFFF_FFFF_FFFF_FFFF)


def _prefix(event_type: str, visitor_id: str, time_us: int, time_ns: int) -> bytes:
    """Fields 1-3 as a deterministic serialization writes them (proto3 omits empty
    strings and zero numbers; an event_time that is set is always written). Tags
    written out (field 1, 2, 3 length-delimited; seconds 1, nanos 2 varint): this
    runs for every stored and every read event."""
    seconds, micros = divmod(time_us, 1_000_000)
    stamp = timestamp(seconds, micros * 1000 + time_ns)
    parts = [_event_type_field(event_type)] if event_type else []
    if visitor_id:
        data = visitor_id.encode()
        parts += (b"\x12", varint(len(data)), data)
    parts += (b"\x1a", _ONE_BYTE[len(stamp)], stamp)  # (17 bytes at most)
    return b"".join(parts)


@lru_cache(maxsize=256)
def _event_type_field(event_type: str) -> bytes:
    """Field 1 holding `event_type`, serialized: kept, as the few kinds of event
    come again and again."""
    data = event_type.encode()
    return b"\x0a" + varint(len(data)) + data


def pack(payload: bytes, event_type: str, visitor_id: str, user_id: str, time_us: int,
         time_ns: int) -> bytes:
    """`payload` as stored in a row with these columns."""
    if "\0" in event_type or "\0" in visitor_id:
        return payload  # PostgreSQL's columns hold NUL as U+FFFD: not rebuilt exactly
    prefix = _prefix(event_type, visitor_id, time_us, time_ns)
    if not payload.startswith(prefix):
        return payload
    start = len(prefix)
    if user_id and "\0" not in user_id:
        field = _user_id_field(user_id)
        at = _user_info(payload, start)
        if at is not None:
            tag_end, content, end = at
            if end - content >= len(field) and payload.startswith(field, content):
                return b"".join((PACKED_USER, payload[start:tag_end],
                                 varint(end - content - len(field)),
                                 payload[content + len(field):]))
    return PACKED + payload[start:]


def unpack(stored: bytes, event_type: str, visitor_id: str, user_id: str, time_us: int,
           time_ns: int) -> bytes:
    """The serialized event a row with these columns holds as `stored`."""
    marker = stored[:1]
    if marker == PACKED:
        return _prefix(event_type, visitor_id, time_us, time_ns) + stored[1:]
    if marker != PACKED_USER:
        return stored
    at = _user_info(stored, 1)
    if at is None:
        raise ValueError("a stored event marked as kept without its user id has no user_info")
    tag_end, content, end = at
    field = _user_id_field(user_id)
    return b"".join((_prefix(event_type, visitor_id, time_us, time_ns), stored[1:tag_end],
                     varint(end - content + len(field)), field, stored[content:]))


def own_fields(stored: bytes) -> bytes:
    """The fields `stored` holds itself, without what its row's columns add back
    (unpack): a UserEvent's serialization all the same, lacking those fields (a
    user_info without its user id is one still)."""
    return stored[1:] if stored[:1] in (PACKED, PACKED_USER) else stored


def _user_id_field(user_id: str) -> bytes:
    """UserInfo's field 1 holding `user_id`, serialized."""
    data = user_id.encode()
    return b"\x0a" + varint(len(data)) + data


def _user_info(data: bytes, at: int) -> tuple[int, int, int] | None:
    """Where the user_info field is in `data`, a serialized event's fields from
    field 4 on starting at `at`: (the end of its tag, the start and the end of its
    content); None when it has none. Only the one-byte tags of fields 4-12 are
    stepped over (fields 4-11 are all strings, messages or maps: length-delimited);
    anything else ends the search."""
    size = len(data)
    while at < size:
        tag = data[at]
        if tag & 7 != 2 or not 0x22 <= tag <= _USER_INFO:
            return None
        if at + 1 < size and data[at + 1] < 0x80:  # most lengths: one byte
            length, content = data[at + 1], at + 2
        else:
            length, content = read_varint(data, at + 1)
        if content + length > size:
            return None
        if tag == _USER_INFO:
            return at + 1, content, content + length
        at = content + length
    return None


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint at `at` in `data` and where it ends (past the end of `data`
    when it runs off it, which the caller's bound then refuses)."""
    value = shift = 0
    size = len(data)
    while at < size:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
    return value, size + 1


def fields(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """The top-level fields serialized in `data`, in order, read from their tags and
    lengths alone: (number, wire type, where the field begins, where its value
    begins (a length-delimited one's content), where it ends). The last may end past the end
    of `data` (cut short): the caller decides. ValueError at a group (wire types 3
    and 4: in no message read this way), which cannot be skipped by its tag."""
    at, size = 0, len(data)
    while at < size:
        start = at
        tag, at = read_varint(data, at)
        wire_type = tag & 7
        value = at
        if wire_type == 0:
            _, at = read_varint(data, at)
        elif wire_type == 1:
            at += 8
        elif wire_type == 2:
            length, value = read_varint(data, at)
            at = value + length
        elif wire_type == 5:
            at += 4
        else:
            raise ValueError(f"wire type {wire_type} at byte {start}")
        yield tag >> 3, wire_type, start, value, at
