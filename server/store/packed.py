"""An event as stored: without the leading fields its row's columns already hold.

A deterministic serialization of a UserEvent starts with event_type (field 1),
visitor_id (2) and event_time (3), which the row keeps as columns too; stored twice
they were about 40 of the 240 bytes of a row of the bench corpus. So the stored
event is a 0 byte (no field is numbered 0: no serialized event starts with it)
followed by the rest, and a read puts the fields back from the columns, byte for
byte. An event the columns cannot rebuild exactly is stored whole, as every event
stored before migration 8 is.
"""

from __future__ import annotations

PACKED = b"\0"
# What a read of an event selects for `unpack`, in its order.
UNPACK_COLUMNS = "event_type, visitor_id, event_time_us, event_time_ns, event"


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
    return ((b"\x08" + varint(seconds & 0xFFFF_FFFF_FFFF_FFFF) if seconds else b"")
            + (b"\x10" + varint(nanos) if nanos else b""))


def _prefix(event_type: str, visitor_id: str, time_us: int, time_ns: int) -> bytes:
    """Fields 1-3 as a deterministic serialization writes them (proto3 omits empty
    strings and zero numbers; an event_time that is set is always written). Tags
    written out (field 1, 2, 3 length-delimited; seconds 1, nanos 2 varint): this
    runs for every stored and every read event."""
    seconds, micros = divmod(time_us, 1_000_000)
    nanos = micros * 1000 + time_ns
    parts: list[bytes] = []
    if event_type:
        data = event_type.encode()
        parts += (b"\x0a", varint(len(data)), data)
    if visitor_id:
        data = visitor_id.encode()
        parts += (b"\x12", varint(len(data)), data)
    stamp = timestamp(seconds, nanos)
    parts += (b"\x1a", varint(len(stamp)), stamp)
    return b"".join(parts)


def pack(payload: bytes, event_type: str, visitor_id: str, time_us: int, time_ns: int) -> bytes:
    """`payload` as stored in a row with these columns."""
    if "\0" in event_type or "\0" in visitor_id:
        return payload  # PostgreSQL's columns hold NUL as U+FFFD: not rebuilt exactly
    prefix = _prefix(event_type, visitor_id, time_us, time_ns)
    if not payload.startswith(prefix):
        return payload
    return PACKED + payload[len(prefix):]


def unpack(stored: bytes, event_type: str, visitor_id: str, time_us: int,
           time_ns: int) -> bytes:
    """The serialized event a row with these columns holds as `stored`."""
    if stored[:1] != PACKED:
        return stored
    return _prefix(event_type, visitor_id, time_us, time_ns) + stored[1:]
