"""Totals of a catalog over time: events per type per hour or day, distinct
visitors, revenue per day per currency (never added across currencies), and
the top search queries with how many led to a detail-page-view."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from typing import Any

from footfall.insights.v1 import insights_pb2
from footfall.retail.v2 import user_event_pb2

from server.errors import FieldViolation, InvalidArgument, gather, raise_if_any
from server.insights import read
from server.insights.funnel import US_PER_DAY, day
from server.lines import counted
from server.names import CatalogName
from server.store import Store

US_PER_HOUR = 3_600_000_000
DEFAULT_QUERIES, MAX_QUERIES = 10, 1000
DEFAULT_SEARCH_WINDOW_US = 30 * 60 * 1_000_000
_PURCHASE, _SEARCH, _VIEW = 1, 2, 3
# An answer stays well under a client's 4 MiB message limit (and the server's own)
# however many hours, event types, days or queries the events hold: the buckets
# count the most frequent event types only, and each of buckets, revenue and top
# queries keeps what fits in SECTION_BYTES (the latest, or the most searched).
MAX_EVENT_TYPES = 100
SECTION_BYTES = 1024 * 1024
_KINDS = {"purchase-complete": _PURCHASE, "search": _SEARCH, "detail-page-view": _VIEW}


def _catalog(parent: str) -> CatalogName:
    """The catalog the totals are asked of; INVALID_ARGUMENT naming `parent` otherwise
    (for a tenant, saying which of its insights answer instead)."""
    return read.parse_catalog_not_tenant(parent, (
        "totals are answered for a catalog (projects/*/locations/*/catalogs/*), got the "
        "talent tenant {parent!r}: a tenant's events by day are RunFunnel's with breakdown "
        "BY_DAY, and each job's counts ListJobStats' between start_time and end_time"))


def _top_queries(request: insights_pb2.ComputeTotalsRequest) -> int:
    if not 0 <= request.top_queries <= MAX_QUERIES:
        raise InvalidArgument.field("top_queries", f"must be between 0 and {MAX_QUERIES}, "
                                                   f"got {request.top_queries}")
    return request.top_queries or DEFAULT_QUERIES


def _granularity(request: insights_pb2.ComputeTotalsRequest) -> int:
    if request.granularity not in insights_pb2.Granularity.values():
        raise InvalidArgument.field("granularity", f"unknown value {request.granularity}")
    return US_PER_HOUR if request.granularity == insights_pb2.HOUR else US_PER_DAY


def compute_totals(store: Store, request: insights_pb2.ComputeTotalsRequest
                   ) -> insights_pb2.ComputeTotalsResponse:
    """The totals `request` asks for (blocking: reads every event of the range).
    INVALID_ARGUMENT for a bad parent, range, granularity, count or window."""
    violations: list[FieldViolation] = []
    catalog = gather(violations, _catalog, request.parent)
    span = gather(violations, read.parse_range, request)
    width = gather(violations, _granularity, request)
    top = gather(violations, _top_queries, request)
    window = gather(violations, read.parse_duration, request, "search_window",
                    DEFAULT_SEARCH_WINDOW_US)
    raise_if_any(violations)
    types: dict[int, Counter[str]] = defaultdict(Counter)
    visitors: dict[int, set[str]] = defaultdict(set)
    events = 0
    # Counted by the database, per bucket, type and visitor: no event decoded.
    for bucket, kind, visitor, count in read.visits(store, str(catalog), span, width):
        events += count
        types[bucket][kind] += count
        visitors[bucket].add(visitor)
    revenue: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0.0, 0])
    searched = _Searches(window)
    # Only purchases (their revenue) and searches (their query) are decoded; a detail
    # view needs its visitor and time, which columns hold. Read in time order, page
    # by page, nothing kept per event (see _Searches).
    pages = read.typed_pages(store, str(catalog), span, _KINDS, "visitor_id",
                             ("purchase-complete", "search"))
    for rows in pages:
        for time, _, kind, visitor, payload in rows:
            if kind == _VIEW:
                searched.viewed(visitor, time)
                continue
            event = user_event_pb2.UserEvent.FromString(payload)
            if kind == _PURCHASE and event.HasField("purchase_transaction"):
                paid = revenue[day(time), event.purchase_transaction.currency_code]
                paid[0] += event.purchase_transaction.revenue
                paid[1] += 1
            elif kind == _SEARCH and event.search_query:
                searched.searched(event.search_query, visitor, time)
        if rows:
            searched.forget_before(rows[-1][0])
    answer = insights_pb2.ComputeTotalsResponse(
        events_read=events, distinct_visitors=len(set().union(*visitors.values())))
    shown = _frequent_types(types, answer.notes)
    buckets = []
    for bucket in sorted(types, reverse=True):
        buckets.append(insights_pb2.TimeBucket(
            distinct_visitors=len(visitors[bucket]), event_counts=[
                insights_pb2.EventTypeCount(event_type=kind, count=count)
                for kind, count in sorted(types[bucket].items()) if kind in shown]))
        buckets[-1].start_time.FromMicroseconds(bucket * width)
    unit = "hours" if width == US_PER_HOUR else "days"
    answer.buckets.extend(reversed(_fitting(buckets, f"{unit} of event counts, the latest ones",
                                            answer.notes)))
    answer.revenue.extend(reversed(_fitting(
        [insights_pb2.DailyRevenue(day=when, currency_code=currency, revenue=amount,
                                   purchases=purchases)
         for (when, currency), (amount, purchases) in sorted(revenue.items(), reverse=True)],
        "days and currencies of revenue, the latest ones", answer.notes)))
    counts, led = searched.counts, searched.led
    answer.top_queries.extend(_fitting(
        [insights_pb2.SearchQueryCount(query=query, searches=count, led_to_detail_view=led[query])
         for query, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]],
        "top queries, the most searched", answer.notes))
    return answer


class _Searches:
    """The searches of each query and those that led to a detail view (one of the
    search's visitor within the window after it, at its time or later), from
    events given in time order: what waits is each visitor's searches of the last
    window not yet followed by a view, and the time of each visitor's last view (a
    view at a search's time may come before it), where a list of every view's time
    and of every search was kept (with the visits' rows held and pages of 50,000
    decoded rows, 1M events: +166 MB of peak memory; now 16)."""

    def __init__(self, window_us: int) -> None:
        self.window_us = window_us
        self.counts: Counter[str] = Counter()
        self.led: Counter[str] = Counter()
        self.waiting: dict[str, list[tuple[int, str]]] = {}
        self.last_view: dict[str, int] = {}

    def searched(self, query: str, visitor: str, time_us: int) -> None:
        self.counts[query] += 1
        if self.last_view.get(visitor) == time_us:
            self.led[query] += 1
        else:
            self.waiting.setdefault(visitor, []).append((time_us, query))

    def viewed(self, visitor: str, time_us: int) -> None:
        self.last_view[visitor] = time_us
        for searched_us, query in self.waiting.pop(visitor, ()):
            if time_us - searched_us <= self.window_us:
                self.led[query] += 1

    def forget_before(self, time_us: int) -> None:
        """Drop the searches that no view from `time_us` on can lead anywhere: a
        visitor's older ones too while its latest waits (a visitor searching all
        day, never viewing, kept every search of the day where the window's count)."""
        oldest = time_us - self.window_us
        gone = []
        for visitor, searches in self.waiting.items():
            if searches[0][0] >= oldest:
                continue
            if searches[-1][0] < oldest:
                gone.append(visitor)
            else:  # (in time order; one at `oldest` may yet lead to a view at `time_us`)
                del searches[:bisect.bisect_left(searches, (oldest,))]
        for visitor in gone:
            del self.waiting[visitor]


def _frequent_types(types: dict[int, Counter[str]], notes: Any) -> set[str]:
    """The MAX_EVENT_TYPES event types with the most events (ties by name); a note
    in `notes` when others are left out."""
    every: Counter[str] = Counter()
    for kinds in types.values():
        every.update(kinds)
    ranked = sorted(every.items(), key=lambda item: (-item[1], item[0]))
    if len(ranked) > MAX_EVENT_TYPES:
        left = sum(count for _, count in ranked[MAX_EVENT_TYPES:])
        notes.append(f"event counts of the {MAX_EVENT_TYPES} most frequent of {len(ranked):,} "
                     f"event types: {counted(left, 'event')} of the others are left out")
    return {kind for kind, _ in ranked[:MAX_EVENT_TYPES]}


def _fitting(items: list[Any], what: str, notes: Any) -> list[Any]:
    """The first of `items` that fit in SECTION_BYTES together; a note in `notes`
    saying how many of `what` were left out, when some were."""
    kept = read.fitting(items, SECTION_BYTES)
    if kept < len(items):
        notes.append(f"{kept:,} of {len(items):,} {what}: each part of an answer holds at "
                     f"most {SECTION_BYTES >> 20} MiB")
    return items[:kept]
