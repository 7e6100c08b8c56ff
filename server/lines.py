"""How the read commands print a console record: one line a person reads in a
terminal, or (`--json`) the message as one line of proto3 JSON, for `jq`.

Stored text may hold anything a client sent (line breaks of every kind, control
characters): a line escapes what is not printable, and JSON is kept ASCII, so a
record is one line whoever splits it."""

from __future__ import annotations

import json
from typing import Any

import grpc
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import product_pb2
from footfall.talent.v4 import event_pb2
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

_CODES = {code.value[0]: code.name for code in grpc.StatusCode}
_TRANSPORTS = {number: name.lower() for name, number in console_pb2.Transport.items() if number}


def as_json(message: Any) -> str:
    return json_format.MessageToJson(message, indent=None)


def printable(line: str) -> str:
    """`line` with each character that is not printable (U+2028, NEL, ESC...) escaped."""
    return line if line.isprintable() else "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)


def _time(message: Any, field: str) -> str:
    """The Timestamp `field` of `message` in RFC 3339, to the millisecond at most; "-"
    when unset (not when 1970-01-01T00:00:00Z, which is a time)."""
    if not message.HasField(field):
        return "-"
    stamp: Timestamp = getattr(message, field)
    seconds, _, fraction = stamp.ToJsonString().rstrip("Z").partition(".")
    return f"{seconds}.{fraction[:3]}Z" if fraction else f"{seconds}Z"


def _quoted(text: str, limit: int = 60) -> str:
    """`text` as one quoted token, cut to `limit` characters."""
    return json.dumps(text[:limit] + ("…" if len(text) > limit else ""), ensure_ascii=False)


def _transport(record: Any) -> str:
    return _TRANSPORTS.get(record.transport, "?")


def _facts(pairs: list[tuple[str, object]]) -> str:
    return " ".join(f"{name}={value}" for name, value in pairs if value not in ("", None))


# Products of a user event and jobs of a client event a line names (`--json` has them
# all): an impression names every job of a results page, and one of 5,000 made a line
# of 44 KB, its event id at the end; a search or home-page view may list a page's products.
SHOWN = 10


def _first_shown(ids: list[str], count: int) -> str:
    """The first SHOWN of `ids` (of `count` in all) joined by commas, then how many more."""
    more = count - SHOWN
    # (no thousands comma in a list of commas)
    return ",".join(ids[:SHOWN]) + (f" (+{more} more)" if more > 0 else "")


def user_event(stored: console_pb2.StoredUserEvent) -> str:
    """Event time, type, visitor, then what else the event says (user, session,
    products: the first SHOWN, then how many more; search, revenue), whether it joined
    the catalog and how it came."""
    event = stored.user_event
    # a quantity given is shown unless it is 1 (0 and negative ones too: a line that
    # left them out looked like a quantity of 1)
    products = _first_shown([d.product.id + (f"×{d.quantity.value}" if d.HasField("quantity")
                                             and d.quantity.value != 1 else "")
                             for d in event.product_details[:SHOWN]],
                            len(event.product_details))
    revenue = (f"{event.purchase_transaction.revenue:g}{event.purchase_transaction.currency_code}"
               if event.HasField("purchase_transaction") else None)
    facts = _facts([("visitor", event.visitor_id), ("user", event.user_info.user_id),
                    ("session", event.session_id), ("products", products),
                    ("search", event.search_query and _quoted(event.search_query)),
                    ("revenue", revenue)])
    unjoined = "" if stored.joined or not event.product_details else " not-joined"
    return printable(f"{_time(event, 'event_time')}  {event.event_type:<20} {facts}{unjoined}"
                      f"  [{_transport(stored)}]")


def client_event(stored: console_pb2.StoredClientEvent) -> str:
    """Create time, the job event's type, its jobs (by id: the tenant is known; the
    first SHOWN, then how many more), and the request and event ids."""
    event = stored.client_event
    types = event_pb2.JobEvent.JobEventType
    what = "(no job event)" if not event.HasField("job_event") else \
        types.Name(event.job_event.type) if event.job_event.type in types.values() else \
        f"type {event.job_event.type}"  # stored before unknown numbers were refused
    jobs = _first_shown([j.rpartition("/")[2] for j in event.job_event.jobs[:SHOWN]],
                        len(event.job_event.jobs))
    facts = _facts([("jobs", jobs),
                    ("request", event.request_id), ("event", event.event_id)])
    return printable(f"{_time(event, 'create_time')}  {what:<20} {facts}  [{_transport(stored)}]")


def _rpc(method: str) -> str:
    """`retail.v2beta.UserEventService/WriteUserEvent` for the gRPC method name
    `/google.cloud.retail.v2beta.UserEventService/WriteUserEvent`: the API and its
    version stay (a refusal of v2 and one of v2beta are told apart), the prefix
    every retail and talent name shares goes."""
    return method.lstrip("/").removeprefix("google.cloud.")


def rejection(refused: console_pb2.Rejection) -> str:
    """When, the RPC (with its API version) and how it came, the parent it named, the status and its
    message, then the field violations the message does not already say."""
    said = [f"{v.field}: {v.description}" if v.field else v.description  # (a whole request's)
            for v in refused.field_violations]
    more = [s for s in said if s not in refused.message]
    where = _facts([("key", refused.key_name), ("operation", refused.operation),
                    ("times", str(refused.repeats + 1) if refused.repeats else ""),
                    ("last", _time(refused, 'last_time') if refused.repeats else "")])
    return printable("  ".join(part for part in (
        _time(refused, 'time'), _rpc(refused.method),
        f"[{_transport(refused)}]", refused.parent or "-",
        f"{_CODES.get(refused.code, refused.code)}: {refused.message}"
        + "".join(f"; {s}" for s in more), where) if part))


def data_set(found: console_pb2.DataSet) -> str:
    """Name, how many events, and the latest event and receive times."""
    what = ("client event" if "/tenants/" in found.name else "event") \
        + ("" if found.event_count == 1 else "s")
    if not found.event_count:  # a catalog of products only
        return printable(f"{found.name}  0 {what}  (products only)")
    return printable(f"{found.name}  {found.event_count:,} {what}  last event "
                      f"{_time(found, 'last_event_time')}  last received "
                      f"{_time(found, 'last_receive_time')}")


def _enum(kind: Any, number: int) -> str:
    """The name of `number` in the enum `kind` ('' when unset, the number when unknown)."""
    if not number:
        return ""
    return kind.Name(number) if number in kind.values() else str(number)


def product(found: product_pb2.Product) -> str:
    """Id and type, then its title, price, availability, categories, a variant's
    primary and a collection's member count."""
    price = found.price_info
    facts = _facts([
        ("title", found.title and _quoted(found.title)),
        ("price", f"{price.price:g}{price.currency_code}" if found.HasField("price_info")
         else None),
        ("availability", _enum(product_pb2.Product.Availability, found.availability)),
        ("categories", _quoted(" | ".join(found.categories)) if found.categories else None),
        ("primary", found.primary_product_id if found.type == product_pb2.Product.VARIANT
         else None),
        ("members", str(len(found.collection_member_ids)) if found.collection_member_ids
         else None)])
    kind = _enum(product_pb2.Product.Type, found.type) or "PRIMARY"  # (unset: a primary)
    return printable(f"{found.id}  {kind:<10} {facts}")


def counted(number: int, one: str) -> str:
    """`number` of `one` (a noun whose plural takes an s): "1 key", "1,046 keys" (with
    thousands commas, as `copy` counts its rows: `reset` said 1046 where `copy` 1,060)."""
    return f"{number:,} {one}{'' if number == 1 else 's'}"


def reset(name: str, deleted: console_pb2.ResetResponse) -> str:
    """What a reset of the catalog, tenant or project `name` deleted, counted."""
    if "/" not in name.removeprefix("projects/"):  # a project: user and client events
        parts = [counted(deleted.deleted_events_count, "event") + " (user and client events)",
                 counted(deleted.deleted_products_count, "product"),
                 counted(deleted.deleted_rejections_count, "refusal"),
                 counted(deleted.deleted_operations_count, "finished operation")]
    elif "/tenants/" in name:
        parts = [counted(deleted.deleted_events_count, "client event"),
                 counted(deleted.deleted_rejections_count, "refusal")]
    else:
        parts = [counted(deleted.deleted_events_count, "event"),
                 counted(deleted.deleted_products_count, "product"),
                 counted(deleted.deleted_rejections_count, "refusal"),
                 counted(deleted.deleted_operations_count, "finished operation")]
    cancelled = deleted.cancelled_operations_count
    running = f"; cancelled {counted(cancelled, 'running operation')}" if cancelled else ""
    return printable(f"reset {name}: deleted {', '.join(parts[:-1])} and {parts[-1]}{running}")
