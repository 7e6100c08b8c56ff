"""Where two messages of one type first differ, as a field path: what an
ALREADY_EXISTS for a reused event id names, so that a client sees which part of its
retry is not the event it stored first."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message


def first_difference(stored: Message, sent: Message, path: str) -> str | None:
    """The path (under `path`, the messages' own) of the first field, in declaration
    order, whose value differs between `stored` and `sent`; a value of a
    well-known type (a Timestamp) is named whole, an element of a repeated field by
    its index (`jobs[1]`), a map's value by its key, a repeated field itself when one
    holds more elements than the other; `path` itself when only fields unknown to
    the type differ; None when the two are equal."""
    for field in stored.DESCRIPTOR.fields:
        where = f"{path}.{field.name}"
        if field.is_repeated:
            found = _repeated_difference(field, getattr(stored, field.name),
                                         getattr(sent, field.name), where)
        elif field.message_type is not None:
            has = stored.HasField(field.name)
            if has != sent.HasField(field.name):
                return where
            found = None if not has else _message_difference(
                field, getattr(stored, field.name), getattr(sent, field.name), where)
        else:
            found = where if getattr(stored, field.name) != getattr(sent, field.name) else None
        if found is not None:
            return found
    if stored.SerializeToString(deterministic=True) != sent.SerializeToString(deterministic=True):
        return path
    return None


def _message_difference(field: Any, stored: Message, sent: Message,
                        where: str) -> str | None:
    # A well-known type (a Timestamp, a wrapper) is one value: `create_time` differs,
    # not `create_time.seconds`.
    if field.message_type.full_name.startswith("google.protobuf."):
        return None if stored == sent else where
    return first_difference(stored, sent, where)


def _repeated_difference(field: Any, stored: Any, sent: Any,
                         where: str) -> str | None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if dict(stored) == dict(sent):
            return None
        keys = sorted(set(stored) | set(sent), key=str)
        key = next((k for k in keys if k not in stored or k not in sent
                    or stored[k] != sent[k]), keys[0])
        return f"{where}[{key!r}]"
    for i, (old, new) in enumerate(zip(stored, sent, strict=False)):
        if field.message_type is not None:
            found = _message_difference(field, old, new, f"{where}[{i}]")
            if found is not None:
                return found
        elif old != new:
            return f"{where}[{i}]"
    return where if len(stored) != len(sent) else None
