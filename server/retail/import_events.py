"""ImportUserEvents: checked when called, then run as a resumable operation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from footfall.retail.v2 import import_config_pb2, user_event_pb2

from server.config import Settings
from server.console import origin
from server.errors import FieldViolation, gather, raise_if_any
from server.names import parse_catalog
from server.operations.runner import JobContext
from server.policy.limits import event_size_violation
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
from server.store.rollups import Counts
from server.store.rows import Step, StepResult

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


class GoodEvent(NamedTuple):
    """A valid event: the columns of its row as received (what is stored unless it
    joins; flat, so it pickles fast), and the ids of its products (one per detail).
    Made in a worker process, with all that can be made there."""

    event_type: str
    visitor_id: str
    user_id: str
    event_time_us: int
    event_time_ns: int
    payload: bytes
    packed: bytes  # the payload as its row stores it (packed.pack)
    key: bytes
    product_ids: tuple[str, ...]
    counts: Counts | None  # its lines in the per-product rollups (server/store/rollups.py)

    @classmethod
    def of(cls, catalog: str, event: UserEvent) -> GoodEvent:
        ids = tuple(d.product.id for d in event.product_details)
        row = EventRow.from_event(catalog, event, joined=not ids)
        return cls(row.event_type, row.visitor_id, row.user_id, row.event_time_us,
                   row.event_time_ns, row.payload, row.stored(), row.key, ids, row.counts)

    def row(self, catalog: str, came: tuple[int, int]) -> EventRow:
        """Its row when it does not join (joined only if it names no product), which
        came as `came` (transport, received_us)."""
        return EventRow(catalog, self.event_type, self.visitor_id, self.user_id,
                        self.event_time_us, not self.product_ids, self.payload, self.key,
                        None, self.event_time_ns, *came, self.counts, self.packed)


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
        too_big = event_size_violation(item.message, path, self.max_event_bytes)
        if too_big is not None:  # one failure; its fields are not looked at
            return item.failure([too_big])
        violations = validation.user_event_violations(
            item.message, path, strict_event_types=self.strict_event_types,
            require_event_time=True, now_s=self.now_s)
        if violations:
            return item.failure(violations)
        return Item(item.where, GoodEvent.of(self.catalog, item.message), item.is_line)


class ImportJob(BulkImport[Request, UserEvent, GoodEvent]):
    """Runs import-user-events operations; events already stored are skipped."""

    what = "the import"
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
             for pid in item.message.product_ids if pid}))
        failures: list[str] = []
        rows: list[EventRow] = []
        came = (origin.transport(), origin.now_us())  # the rows of one batch come together
        for item in items:
            if isinstance(item, str):
                failures.append(item)
                continue
            good = item.message
            ids = good.product_ids
            if not (ids and all(pid in products for pid in ids)):
                rows.append(good.row(catalog, came))
                continue
            # it joins: filled in from the catalog
            rows.append(join.joined_row(catalog, UserEvent.FromString(good.payload),
                                        products, self._max_event_bytes, received=good.payload))
        return failures, Step(insert_events=rows)

    def account(self, state: ImportState, result: StepResult) -> None:
        state.joined += result.inserted_joined
        state.unjoined += result.inserted - result.inserted_joined

    def response(self, state: ImportState) -> import_config_pb2.ImportUserEventsResponse:
        return import_config_pb2.ImportUserEventsResponse(
            import_summary=import_config_pb2.UserEventImportSummary(
                joined_events_count=state.joined, unjoined_events_count=state.unjoined))
