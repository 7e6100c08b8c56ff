"""Per-product and per-job tables: counts of each kind of event naming an item,
their rates, sorted and paged.

The per-product table sums the store's per-day rollups (server/store/rollups.py)
for the whole days of its range and decodes only the events of the part days at
its edges. A table is computed whole, then sorted, and kept for the pages that
follow while nothing is written (kept.py); a page token holds the offset of the
next row and a hash of what selects and sorts the rows, so a token is refused
by a different question, and is signed (server/page_tokens.py).
"""

from __future__ import annotations

import itertools
import operator
import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

from footfall.insights.v1 import insights_pb2
from footfall.talent.v4 import event_pb2

from server import page_tokens
from server.console.queries import page_size
from server.errors import FieldViolation, InvalidArgument, gather, raise_if_any
from server.insights import read
from server.insights.funnel_request import COMPANY_NOTE
from server.insights.kept import Kept
from server.store import Store, rollups
from server.store.rollups import DAY_US, PRODUCT_TYPES

T = TypeVar("T")
TYPE_BITS = {kind: i for i, kind in enumerate(PRODUCT_TYPES)}
PRICE_NOTE = ("purchased units that named no price: {}; they are counted in units, not in "
              "revenue")
_JOB_TYPE = event_pb2.JobEvent.JobEventType
# Which JobStats count each job event type adds to.
JOB_COUNTS = {
    _JOB_TYPE.IMPRESSION: "impressions",
    _JOB_TYPE.VIEW: "views",
    _JOB_TYPE.APPLICATION_START: "application_starts",
    _JOB_TYPE.APPLICATION_START_FROM_SEARCH: "application_starts",
    _JOB_TYPE.APPLICATION_FINISH: "application_finishes",
    _JOB_TYPE.APPLICATION_QUICK_SUBMISSION: "application_finishes",
    _JOB_TYPE.APPLICATION_COMPANY_SUBMIT: "application_finishes",
    _JOB_TYPE.VIEW_REDIRECT: "redirects",
    _JOB_TYPE.APPLICATION_REDIRECT: "redirects",
    _JOB_TYPE.APPLICATION_REDIRECT_FROM_SEARCH: "redirects",
    _JOB_TYPE.BOOKMARK: "bookmarks",
    _JOB_TYPE.NOTIFICATION: "notifications",
    _JOB_TYPE.SENT_CV: "sent_cvs",
    _JOB_TYPE.INTERVIEW_GRANTED: "interviews_granted",
    _JOB_TYPE.HIRED: "hires",
}


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def product_stats(store: Store, catalog: str, span: read.TimeRange
                  ) -> tuple[list[ProductRow], int, int]:
    """Every product's stats (unsorted), the events they count (the rollups' and
    those read), and the purchased units that named no price: the whole days of
    `span` from the store's per-day rollups, the part days at its edges from the
    events, decoded."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    revenue: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    # (a day starting at a bound of x.0000005 is not whole: its first microsecond is not)
    days = rollups.whole_days(span.first_whole_us(), span.end_us)
    edges, unpriced, events = [span], 0, 0
    if days is not None:
        first, end = days
        summed = store.product_days(catalog, first, end)
        events = sum(row[2] for row in summed if row[:2] == rollups.EVENTS)
        unpriced = _add_summed(summed, counts, revenue)
        edges = []
        if first is not None and span.start_us is not None:
            edges.append(span.clipped(None, first * DAY_US))
        if end is not None and span.end_us is not None:
            edges.append(span.clipped(end * DAY_US, None))
        edges = [edge for edge in edges if not edge.empty()]
    for edge in edges:
        # The store skips the other types; these are decoded (their products are in no
        # column), as the rollups count them.
        pages = read.typed_pages(store, catalog, edge, TYPE_BITS, None, PRODUCT_TYPES)
        for _, _, _, _, payload in itertools.chain.from_iterable(pages):
            events += 1
            unpriced += _add(rollups.counts_of_payload(payload) or (), counts, revenue)
    rows = [ProductRow(product_id, views, carts, purchases, units, _rate(purchases, views),
                       revenue.get(product_id))
            for product_id, (views, carts, purchases, units) in counts.items()]
    return rows, events, unpriced


class ProductRow(NamedTuple):
    """A product's stats as the table sorts them; its message is made for a page's
    rows only (a message for each of 600,000 products made one page of ten hold
    570 MB while it was answered)."""

    product_id: str
    views: int
    add_to_carts: int
    purchases: int
    units: int
    view_to_purchase_rate: float
    revenue: dict[str, float] | None  # per currency

    def message(self) -> insights_pb2.ProductStats:
        row = insights_pb2.ProductStats(
            product_id=self.product_id, views=self.views, add_to_carts=self.add_to_carts,
            purchases=self.purchases, units=self.units,
            view_to_purchase_rate=self.view_to_purchase_rate)
        for currency, amount in sorted((self.revenue or {}).items()):
            row.revenue.add(currency_code=currency, amount=amount)
        return row


def _add_summed(summed: Sequence[rollups.Line], counts: dict[str, list[int]],
                revenue: dict[str, dict[str, float]]) -> int:
    """_add of Store.product_days' rows (one per product and currency; EVENTS left
    out), into empty `counts` and `revenue`: as _add does, each row's numbers taken
    at once rather than added one by one to zeros (600,000 products: _add was a
    third of the table's CPU)."""
    unpriced = 0
    for product_id, currency, views, carts, purchases, units, priceless, amount in summed:
        if not currency:
            counts[product_id] = [views, carts, purchases, units]
            unpriced += priceless
        elif (product_id, currency) != rollups.EVENTS:
            revenue[product_id][currency] += amount
    return unpriced


def _add(lines: Iterable[rollups.Line], counts: dict[str, list[int]],
         revenue: dict[str, dict[str, float]]) -> int:
    """Add rollup lines (an event's, or summed days') to `counts` (views, add-to-carts,
    purchases, units per product) and `revenue` (per product and currency); the
    purchased units they say named no price."""
    unpriced = 0
    for product_id, currency, *summed, priceless, amount in lines:
        if currency:
            revenue[product_id][currency] += amount
            continue
        of = counts[product_id]
        for i, value in enumerate(summed):
            of[i] += value
        unpriced += priceless
    return unpriced


def job_stats(store: Store, tenant: str, span: read.TimeRange
              ) -> tuple[list[JobRow], int]:
    """Every job's stats (unsorted) and the events read."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(_JOB_FIELDS))
    events = 0
    for _, event in read.client_events(store, tenant, span):
        events += 1
        field = _JOB_INDEX.get(event.job_event.type)
        if field is None:
            continue
        for job in dict.fromkeys(event.job_event.jobs):
            counts[job][field] += 1
    rows = []
    for job, (impressions, views, starts, finishes, redirects, bookmarks, *later) \
            in counts.items():
        rows.append(JobRow(job, impressions, views, starts, finishes, redirects, bookmarks,
                           _rate(views, impressions), _rate(starts, views),
                           _rate(finishes, starts), *later))
    return rows, events


class JobRow(NamedTuple):
    """A job's stats as the table sorts them; its message is made for a page's rows
    only (as ProductRow: a writer key's ten client events named 500,000 jobs in 4 s,
    and a page of ten held 430 MB while it was answered)."""

    job: str
    impressions: int
    views: int
    application_starts: int
    application_finishes: int
    redirects: int
    bookmarks: int
    view_rate: float
    application_start_rate: float
    application_finish_rate: float
    # (the outcomes past an application, after the rates as in JobStats: a job site
    # saw no count of its hires but in a funnel's step)
    notifications: int
    sent_cvs: int
    interviews_granted: int
    hires: int

    def message(self) -> insights_pb2.JobStats:
        return insights_pb2.JobStats(**self._asdict())


# The counts of JobRow, in its order, and where each job event type counts.
_JOB_FIELDS = JobRow._fields[1:7] + JobRow._fields[10:]
_JOB_INDEX = {kind: _JOB_FIELDS.index(field) for kind, field in JOB_COUNTS.items()}


_ASCII_SPACES = re.compile(r"[ \t\r\n]+")


def _camel(field: str) -> str:
    """The proto3 JSON name of a snake_case field: view_rate is viewRate."""
    first, *rest = field.split("_")
    return first + "".join(word.capitalize() for word in rest)


def parse_order(order_by: str, fields: Sequence[str], default: str) -> tuple[str, bool]:
    """(field, descending) of an order_by such as "views desc"; INVALID_ARGUMENT. A field
    may be named by its JSON name too (viewRate for view_rate): the rows are printed
    and answered under those names, and `--order-by viewRate` copied from them was
    refused."""
    # (words apart by ASCII white space: split() took "views\u00a0desc" too)
    words = _ASCII_SPACES.split(order_by.strip(" \t\r\n") or default)
    descending = len(words) == 2 and words[1].lower() == "desc"
    field = {_camel(name): name for name in fields}.get(words[0], words[0])
    if not words or field not in fields or (len(words) == 2 and not descending
                                            and words[1].lower() != "asc") or len(words) > 2:
        raise InvalidArgument.field("order_by", f"must be one of {', '.join(fields)} (or "
                                                f"its JSON name: {_camel(fields[-1])} for "
                                                f"{fields[-1]}), "
                                                f"optionally followed by asc or desc; "
                                                f"got {order_by[:200]!r}")
    return field, descending


def ordered(rows: list[T], key: str, order: tuple[str, bool]) -> list[T]:
    """`rows`, sorted in place by `order` (ties by `key`)."""
    field, descending = order
    rows.sort(key=operator.attrgetter(key))
    rows.sort(key=operator.attrgetter(field), reverse=descending)
    return rows


def page(rows: list[T], size: int, start: int) -> tuple[list[T], int | None]:
    """The page of the sorted `rows` from `start`, and where the next begins (None:
    none follows)."""
    end = start + size
    return rows[start:end], end if end < len(rows) else None


def _table(kept: Kept | None, paging: Paging, compute: Callable[[], T],
           rows: Callable[[T], int]) -> T:
    """`compute()`, or the table `kept` holds of the question (see kept.py)."""
    if kept is None:
        return compute()
    return kept.table(paging.store, paging.question, compute, rows)


_TOKEN_BODY = re.compile(rb"([0-9]{1,19})\.([0-9]{1,10})")


class Paging(NamedTuple):
    """A table's page tokens: the store whose key signs them (see page_tokens; read only
    for a token: a table of one page writes no key, so a new store stays empty, a
    copy's target) and their question (what selects and sorts its rows)."""

    store: Store
    fingerprint: int
    question: tuple[str, str]  # the request's kind and what selects and sorts its rows

    @classmethod
    def of(cls, store: Store, request: Any) -> Paging:
        question = _question(request)
        return cls(store, zlib.crc32(question.encode()),
                   (request.DESCRIPTOR.full_name, question))

    def start(self, token: str) -> int:
        """The row `token` goes on at (0 for none). INVALID_ARGUMENT naming page_token
        for a token this store's servers did not sign, or of another question."""
        if not token:
            return 0
        match = _TOKEN_BODY.fullmatch(page_tokens.body_of(self.store.page_token_key_if_made(),
                                                          token))
        if match is None or int(match[2]) != self.fingerprint:
            raise InvalidArgument.field("page_token", "is not a page token of this list")
        return int(match[1])

    def token(self, start: int | None) -> str:
        """The token of the page at `start` ("" for None)."""
        if start is None:
            return ""
        return page_tokens.signed(self.store.page_token_key(),
                                  f"{start}.{self.fingerprint}".encode())


def _question(request: Any) -> str:
    """What selects and sorts a table's rows: the request less its paging."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("page_token")
    copy.ClearField("page_size")
    return str(copy.SerializeToString(deterministic=True))


PRODUCT_ORDERS = ("product_id", "views", "add_to_carts", "purchases", "units",
                  "view_to_purchase_rate")
JOB_ORDERS = ("job", "impressions", "views", "application_starts", "application_finishes",
              "redirects", "bookmarks", "notifications", "sent_cvs", "interviews_granted",
              "hires", "view_rate", "application_start_rate", "application_finish_rate")


def list_product_stats(store: Store, request: insights_pb2.ListProductStatsRequest,
                       kept: Kept | None = None) -> insights_pb2.ListProductStatsResponse:
    """INVALID_ARGUMENT for a bad parent, range, order, size or token. `kept`: the
    tables kept for the next pages (none: each page computes its table)."""
    violations: list[FieldViolation] = []
    catalog = gather(violations, read.parse_catalog_not_tenant, request.parent,
                     "per-product counts are a catalog's (projects/*/locations/*/catalogs/*), "
                     "got the talent tenant {parent!r}: a tenant's per-job counts are "
                     "ListJobStats'")
    span = gather(violations, read.parse_range, request)
    order = gather(violations, parse_order, request.order_by, PRODUCT_ORDERS, "views desc")
    size = gather(violations, page_size, request.page_size)
    raise_if_any(violations)
    paging = Paging.of(store, request)
    start = paging.start(request.page_token)  # (before the table is made)

    def compute() -> tuple[list[ProductRow], int, int]:
        rows, events, unpriced = product_stats(store, str(catalog), span)
        return ordered(rows, "product_id", order), events, unpriced

    rows, events, unpriced = _table(kept, paging, compute, lambda table: len(table[0]))
    shown, end = page(rows, size, start)
    answer = insights_pb2.ListProductStatsResponse(products=[r.message() for r in shown],
                                                   next_page_token=paging.token(end),
                                                   events_read=events)
    if unpriced:
        answer.notes.append(PRICE_NOTE.format(unpriced))
    return answer


def list_job_stats(store: Store, request: insights_pb2.ListJobStatsRequest,
                   kept: Kept | None = None) -> insights_pb2.ListJobStatsResponse:
    """INVALID_ARGUMENT for a bad parent, range, order, size or token. `kept`: as
    list_product_stats'."""
    violations: list[FieldViolation] = []
    tenant = gather(violations, read.parse_tenant_not_catalog, request.parent,
                    "per-job counts are a talent tenant's (projects/*/tenants/*), got the "
                    "retail catalog {parent!r}: a catalog's per-product counts are "
                    "ListProductStats'")
    span = gather(violations, read.parse_range, request)
    order = gather(violations, parse_order, request.order_by, JOB_ORDERS, "impressions desc")
    size = gather(violations, page_size, request.page_size)
    raise_if_any(violations)
    paging = Paging.of(store, request)
    start = paging.start(request.page_token)  # (before the table is made)

    def compute() -> tuple[list[JobRow], int]:
        rows, events = job_stats(store, str(tenant), span)
        return ordered(rows, "job", order), events

    rows, events = _table(kept, paging, compute, lambda table: len(table[0]))
    shown, end = page(rows, size, start)
    return insights_pb2.ListJobStatsResponse(jobs=[r.message() for r in shown],
                                             next_page_token=paging.token(end),
                                             events_read=events,
                                             notes=[COMPANY_NOTE])


