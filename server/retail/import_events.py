"""ImportUserEvents: checked when called, then run as a resumable operation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from footfall.retail.v2 import import_config_pb2, user_event_pb2

from server import json_problems
from server.config import Settings
from server.console import origin
from server.errors import FieldViolation, gather, raise_if_any
from server.names import parse_catalog
from server.operations.runner import JobContext
from server.policy.limits import largest_field, size_violation
from server.retail import join, ndjson, validation
from server.retail.bulk_import import (
    IN_THREAD,
    BulkImport,
    Checked,
    ImportState,
    Item,
    SourceRules,
    check_sources,
    new_operation,
)
from server.retail.line_pool import LinePool
from server.store import EventRow
from server.store.packed import pack
from server.store.rollups import Counts, product_counts
from server.store.rows import Step, StepResult, dedup_key, row_columns

__all__ = ["KIND", "ImportJob", "check_request", "new_operation"]

KIND = "import-user-events"
MAX_INLINE_EVENTS = 10_000
SOURCES = SourceRules("user_event_inline_source", "user_events", "event", ("", "user_event"),
                      "Footfall reads 'user_event' (one proto3-JSON UserEvent per line)",
                      max_inline=MAX_INLINE_EVENTS)
Request = import_config_pb2.ImportUserEventsRequest
UserEvent = user_event_pb2.UserEvent


def check_request(request: Request, gcs_root: Path, deadline: float | None = None) -> str:
    """Everything that can be checked before the job runs; returns the catalog.

    INVALID_ARGUMENT naming each bad field; DEADLINE_EXCEEDED when `deadline`
    (time.monotonic()) passes while gs:// files are listed.
    """
    violations: list[FieldViolation] = []
    catalog = gather(violations, parse_catalog, request.parent, "parent")
    violations.extend(check_sources(request, gcs_root, SOURCES, deadline))
    raise_if_any(violations)
    return str(catalog)


# A valid event, made in a worker process with all that can be made there: the columns
# of its row as received (what is stored unless it joins) and the ids of its products
# (one per detail), as `good_event` makes them. A plain tuple: a NamedTuple pickles
# through a Python call a row (a chunk of the bench corpus pickled in 2.1 µs a line,
# now 1.1, and unpickles in the server in 0.75, now 0.35).
GoodEvent = tuple[
    str, str, str, int, int,  # event_type, visitor_id, user_id, event_time_us and _ns
    bytes, bytes, bytes,  # payload, packed (the payload as the row stores it), dedup key
    tuple[str, ...],  # product ids
    Counts | None,  # its lines in the per-product rollups (server/store/rollups.py)
]
PAYLOAD: Final = 5  # (GoodEvent's)
PRODUCT_IDS: Final = 8


def good_event(catalog: str, event: UserEvent, payload: bytes) -> GoodEvent:
    """The GoodEvent of the valid `event`, whose deterministic serialization is
    `payload`: what EventRow.from_event makes of it, without the row (with the
    serialization, 8.4 µs an event of the bench corpus through the row, 6.8 without)."""
    details = event.product_details
    ids = tuple([d.product.id for d in details]) if details else ()
    event_type, visitor_id, user_id, time_us, time_ns = row_columns(event)
    return (event_type, visitor_id, user_id, time_us, time_ns, payload,
            pack(payload, event_type, visitor_id, user_id, time_us, time_ns),
            dedup_key(catalog, payload), ids, product_counts(event))


def unjoined_row(good: GoodEvent, catalog: str, came: tuple[int, int]) -> EventRow:
    """The row of `good` when it does not join (joined only if it names no product),
    which came as `came` (transport, received_us)."""
    event_type, visitor_id, user_id, time_us, time_ns, payload, packed, key, ids, counts = good
    return EventRow(catalog, event_type, visitor_id, user_id, time_us, not ids, payload, key,
                    None, time_ns, *came, counts, packed)


@dataclass(frozen=True)
class EventCheck:
    """An event's own rules (size, fields) and its row as received; in a worker."""

    catalog: str
    strict_event_types: bool
    max_event_bytes: int
    now_s: int  # the server's time when the job (or its resumption) began
    message_class = UserEvent

    def __call__(self, item: Item[UserEvent]) -> Checked[GoodEvent]:
        path = item.path("user_event")
        # (its serialization's length is its ByteSize, which event_size_violation
        # measures: the payload is made once)
        payload = item.message.SerializeToString(deterministic=True)
        if len(payload) > self.max_event_bytes:  # one failure; its fields are not looked at
            largest = largest_field(item.message, len(payload))
            return item.failure([size_violation(len(payload), path, self.max_event_bytes,
                                                largest=largest)])
        violations = self.rules(item.message, path)
        if violations:
            return item.failure(violations)
        return Item(item.where, good_event(self.catalog, item.message, payload),
                    item.is_line)

    def beside_unread(self, event: UserEvent, unread: list[FieldViolation]
                      ) -> list[FieldViolation]:
        """What the rules say of the values of a line's `event` that did read, beside
        its values of the wrong type (`unread`), as for a pixel's event: none when
        its type is one of them (most rules hang on it)."""
        if any(v.field == "event_type" for v in unread):
            return []
        root = "user_event."  # (said after "not a UserEvent:", as its wrong values are)
        rules = [FieldViolation(v.field.removeprefix(root), v.description)
                 for v in self.rules(event, root[:-1])]
        return json_problems.beside_unread(rules, unread)

    def rules(self, event: UserEvent, path: str) -> list[FieldViolation]:
        """The violations of an imported `event` whose fields are at `path`."""
        return validation.user_event_violations(
            event, path, strict_event_types=self.strict_event_types,
            require_event_time=True, now_s=self.now_s)


def inline_rules(request: Request, check: EventCheck, unread: list[FieldViolation]
                 ) -> list[FieldViolation]:
    """What the rules say of the inline events of a REST `request` read without its
    values of the wrong type (`unread`, UnreadValues), at their paths, as the import
    would report them: of the values that did read (json_problems.beside_unread), and
    none of an event whose type is one of them (most rules hang on it)."""
    wrong = {v.field for v in unread}
    rules: list[FieldViolation] = []
    source = getattr(request.input_config, SOURCES.inline)
    for i, event in enumerate(getattr(source, SOURCES.items)):
        path = f"input_config.{SOURCES.inline}.{SOURCES.items}[{i}]"
        if f"{path}.event_type" not in wrong:
            rules.extend(check.rules(event, path))
    return json_problems.beside_unread(rules, unread)


class ImportJob(BulkImport[Request, UserEvent, GoodEvent]):
    """Runs import-user-events operations; events already stored are skipped."""

    what = "the import"
    line_field = "user_event"
    method = "/google.cloud.retail.v2.UserEventService/ImportUserEvents"
    request_class = Request
    sources = SOURCES
    # A batch's preparation reads the catalog's products, which no event import writes.
    prepare_ahead = True

    def __init__(self, gcs_root: Path, strict_event_types: bool,
                 max_event_bytes: int = Settings.max_event_bytes,
                 pool: LinePool = IN_THREAD) -> None:
        super().__init__(gcs_root, pool)
        self._strict = strict_event_types
        self._max_event_bytes = max_event_bytes
        self.max_line_bytes = ndjson.line_limit(max_event_bytes)

    def item_check(self, request: Request, now_s: int) -> EventCheck:
        return EventCheck(str(parse_catalog(request.parent)), self._strict,
                          self._max_event_bytes, now_s)

    def prepare(self, ctx: JobContext, request: Request,
                items: list[Checked[GoodEvent]]) -> tuple[list[str], Step]:
        catalog = str(parse_catalog(request.parent))
        products = join.load_products(ctx.store, catalog, sorted(
            {pid for item in items if not isinstance(item, str)
             for pid in item.message[PRODUCT_IDS] if pid}))
        failures: list[str] = []
        rows: list[EventRow] = []
        came = (origin.transport(), origin.now_us())  # the rows of one batch come together
        for item in items:
            if isinstance(item, str):
                failures.append(item)
                continue
            good = item.message
            ids = good[PRODUCT_IDS]
            if not (ids and all(pid in products for pid in ids)):
                rows.append(unjoined_row(good, catalog, came))
                continue
            # it joins: filled in from the catalog
            payload = good[PAYLOAD]
            rows.append(join.joined_row(catalog, UserEvent.FromString(payload),
                                        products, self._max_event_bytes, received=payload))
        return failures, Step(insert_events=rows)

    def account(self, state: ImportState, result: StepResult) -> None:
        state.joined += result.inserted_joined
        state.unjoined += result.inserted - result.inserted_joined

    def response(self, state: ImportState) -> import_config_pb2.ImportUserEventsResponse:
        return import_config_pb2.ImportUserEventsResponse(
            import_summary=import_config_pb2.UserEventImportSummary(
                joined_events_count=state.joined, unjoined_events_count=state.unjoined))
