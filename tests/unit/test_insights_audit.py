"""The insights' figures audited against the events stored: random histories of
writes (duplicates in a batch and across batches), purges by the real job (by
visitor, type and time, at microsecond edges: the whole days a purge drops from the
rollups among them), rejoins after the catalog's products change price, and
catalog resets, on memory, SQLite and PostgreSQL; then the per-product table and
the totals over ranges whose bounds fall on, just before and just after UTC
midnights, each compared with a plain recount of the events the store lists back.
Prices are not binary fractions (0.1, 19.99): sums in other orders (per write, per
day, then across days) may differ in the last bits, never by a cent."""

from __future__ import annotations

import itertools
import statistics
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from footfall.insights.v1 import insights_pb2
from footfall.retail.v2 import product_pb2, user_event_pb2, user_event_service_pb2
from footfall.talent.v4 import event_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.clock import SystemClock
from server.insights import funnel_request, read, tables, totals
from server.names import default_branch
from server.operations.runner import JobContext
from server.retail import rejoin
from server.store import ClientEventRow, EventQuery, EventRow
from server.store.rows import OperationRecord

from . import test_store
from .test_rollups import run_purge, start_purge

store_url, stores, store = test_store.store_url, test_store.stores, test_store.store

US, DAY_US, HOUR_US = 1_000_000, 86_400_000_000, 3_600_000_000
MIDNIGHT_US = 1_699_920_000 * US  # a UTC midnight
CENT = 0.005
_names = itertools.count()


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 3 events: every read of part days and every purge step pages."""
    monkeypatch.setattr(read, "ROWS_PAGE", 3)
    monkeypatch.setattr(read, "PAGE", 3)


# Times on, just before and just after the midnights of three days, and between.
OFFSETS = [0, 1, 999, DAY_US - 1, 6 * HOUR_US + 123, 12 * HOUR_US, 18 * HOUR_US]
times = st.builds(lambda day, offset: MIDNIGHT_US + day * DAY_US + offset,
                  st.integers(0, 2), st.sampled_from(OFFSETS))
details = st.lists(st.fixed_dictionaries({
    "id": st.sampled_from(["p0", "p1", "p2"]),
    "price": st.sampled_from([None, 0.0, 0.1, 0.2, 0.3, 19.99, 1234567.89]),
    "currency": st.sampled_from(["", "USD", "EUR", "JPY"]),
    "quantity": st.sampled_from([None, 0, 1, 3, -2]),  # (README: 0 or less as given)
}), min_size=1, max_size=3)
events = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from(["detail-page-view", "add-to-cart", "purchase-complete",
                             "search", "home-page-view"]),
    "visitor": st.sampled_from(["v0", "v1", "v2"]),
    "time": times,
    "nanos": st.sampled_from([0, 0, 100, 999]),
    "details": details,
    "revenue": st.sampled_from([0.1, 0.2, 19.99]),
    "paid_in": st.sampled_from(["USD", "EUR"]),
}), min_size=1, max_size=16)
# A bound of a purge's time range in nanoseconds, as a filter writes it (seconds and a
# fraction): at midnights, a microsecond off them, within a microsecond.
bounds = st.builds(lambda day, offset, ns: (MIDNIGHT_US + day * DAY_US + offset) * 1000 + ns,
                   st.integers(0, 3), st.sampled_from([0, 1, -1, 12 * HOUR_US]),
                   st.sampled_from([0, 0, 500]))
writes = st.tuples(st.just("write"), st.lists(st.integers(0, 11), min_size=1, max_size=6))
purges = st.tuples(st.just("purge"), st.fixed_dictionaries({
        "visitor": st.sampled_from([None, "v1"]),
        "type": st.sampled_from([None, "purchase-complete"]),
        "after": st.one_of(st.none(), st.tuples(bounds, st.sampled_from([">", ">="]))),
        "before": st.one_of(st.none(), st.tuples(bounds, st.sampled_from(["<", "<="]))),
    }))
operations = st.lists(st.one_of(
    writes, purges, writes, purges,
    st.tuples(st.just("rejoin"), st.fixed_dictionaries({
        "prices": st.lists(st.sampled_from([0.0, 0.7, 2.5]), min_size=3, max_size=3),
        "currency": st.sampled_from(["", "EUR"]),
        "scope": st.sampled_from(list(rejoin.Scope.values())),
    })),
    st.tuples(st.just("reset"), st.just(None)),
), min_size=0, max_size=5)
# The ranges asked (in nanoseconds): unbounded, at midnights, a microsecond off them,
# within a microsecond (as events are kept), part days.
EDGES = [None, *(us * 1000 + ns for us in (
    MIDNIGHT_US, MIDNIGHT_US + 1, MIDNIGHT_US + DAY_US - 1, MIDNIGHT_US + DAY_US,
    MIDNIGHT_US + DAY_US + 1, MIDNIGHT_US + DAY_US + 12 * HOUR_US, MIDNIGHT_US + 2 * DAY_US,
    MIDNIGHT_US + 3 * DAY_US) for ns in (0, 500))]
spans = st.tuples(st.sampled_from(EDGES), st.sampled_from(EDGES)).map(
    lambda s: s if s[0] is None or s[1] is None or s[0] < s[1] else (s[1], s[0])).filter(
    lambda s: s[0] != s[1] or s[0] is None)
AUDITS = settings(max_examples=40, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])


def user_event(d: dict[str, Any]) -> user_event_pb2.UserEvent:
    event = user_event_pb2.UserEvent(event_type=d["type"], visitor_id=d["visitor"])
    event.event_time.seconds, micros = divmod(d["time"], US)
    event.event_time.nanos = micros * 1000 + d["nanos"]
    if d["type"] in ("detail-page-view", "add-to-cart", "purchase-complete"):
        for p in d["details"]:
            detail = event.product_details.add()
            detail.product.id = p["id"]
            if p["price"] is not None:  # else the catalog's, once joined
                detail.product.price_info.price = p["price"]
                detail.product.price_info.currency_code = p["currency"]
            if p["quantity"] is not None:
                detail.quantity.value = p["quantity"]
    if d["type"] == "purchase-complete":
        event.purchase_transaction.revenue = d["revenue"]
        event.purchase_transaction.currency_code = d["paid_in"]
    return event


def stamp(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, US * 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime(f'"%Y-%m-%dT%H:%M:%S.{nanos:09d}Z"')


def purge_filter(d: dict[str, Any]) -> str:
    terms = []
    if d["visitor"]:
        terms.append(f'visitorId = "{d["visitor"]}"')
    if d["type"]:
        terms.append(f'eventType = "{d["type"]}"')
    for side in ("after", "before"):
        if d[side] is not None:
            time_ns, op = d[side]
            terms.append(f"eventTime {op} {stamp(time_ns)}")
    return " ".join(terms) or 'visitorId = "v0"'


def run_rejoin(store: Any, catalog: str, d: dict[str, Any]) -> None:
    """Set the catalog's products' prices, then rejoin the scope's events."""
    branch = default_branch(catalog)
    for i, price in enumerate(d["prices"]):
        product = product_pb2.Product(id=f"p{i}", title=f"p{i}")
        product.price_info.price = price
        product.price_info.currency_code = d["currency"]
        payload = product.SerializeToString()
        if not store.create_product(branch, f"p{i}", payload):
            store.update_product(branch, f"p{i}", lambda _, payload=payload: payload)
    name = f"{catalog}/operations/{rejoin.KIND}-{next(_names)}"
    request = user_event_service_pb2.RejoinUserEventsRequest(
        parent=catalog, user_event_rejoin_scope=d["scope"])
    store.create_operation(OperationRecord(name, rejoin.KIND, False, 0,
                                           request.SerializeToString(),
                                           rejoin.new_operation(name, 0).SerializeToString()))
    record = store.claim_operation("me", 0, 10**12, lambda _: False)
    assert record is not None and record.name == name
    rejoin.run_rejoin(JobContext(record, store, SystemClock(), "me", 10**12, threading.Event()))


def history(store: Any, pool: list[dict[str, Any]], steps: list[tuple[str, Any]]) -> str:
    """A new catalog with every event of `pool` written, then `steps` done to it
    (writes of events of `pool` again among them)."""
    catalog = f"projects/p/locations/global/catalogs/audit{next(_names)}"
    for kind, what in [("write", range(len(pool))), *steps]:
        if kind == "write":
            store.write_user_events([EventRow.from_event(catalog, user_event(pool[i % len(pool)]),
                                                         joined=False) for i in what])
        elif kind == "purge":
            run_purge(store, start_purge(store, catalog, purge_filter(what)))
        elif kind == "rejoin":
            run_rejoin(store, catalog, what)
        else:
            store.reset_catalog(catalog)
    return catalog


def stored(store: Any, catalog: str) -> list[tuple[int, user_event_pb2.UserEvent]]:
    """(event time in nanoseconds, event) of every event the store lists back."""
    return [(e.event_time.ToNanoseconds(), e) for e in (
        user_event_pb2.UserEvent.FromString(payload)
        for _, payload in store.list_user_events(EventQuery(catalog), 10**6))]


def within(span: tuple[int | None, int | None], time_ns: int) -> bool:
    return (span[0] is None or time_ns >= span[0]) and (span[1] is None or time_ns < span[1])


def with_range(request: Any, span: tuple[int | None, int | None]) -> Any:
    for field, time_ns in zip(("start_time", "end_time"), span, strict=True):
        if time_ns is not None:
            getattr(request, field).FromNanoseconds(time_ns)
    return request


def same_money(got: dict[Any, float], expected: dict[Any, float]) -> bool:
    """The same keys, each amount within half a cent."""
    return got.keys() == expected.keys() and all(
        abs(got[key] - expected[key]) < CENT for key in expected)


def recounted_products(listed: list[tuple[int, Any]], span: Any
                       ) -> tuple[dict[str, tuple[int, ...]], dict[str, dict[str, float]], int,
                                  int]:
    """{product: (views, add-to-carts, purchases, units)}, {product: {currency:
    revenue}}, the product events and the unpriced units of the range: README's
    definitions (a product once an event; units the quantity, 1 without one;
    revenue price x quantity in the price's currency, USD without one; a price of 0
    is none)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    revenue: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    read_, unpriced = 0, 0
    kinds = ("detail-page-view", "add-to-cart", "purchase-complete")
    for time_ns, e in listed:
        if e.event_type not in kinds or not within(span, time_ns):
            continue
        read_ += 1
        for product_id in {d.product.id for d in e.product_details}:
            counts[product_id][e.event_type] += 1
        if e.event_type != "purchase-complete":
            continue
        for d in e.product_details:
            units = d.quantity.value if d.HasField("quantity") else 1
            counts[d.product.id]["units"] += units
            price = d.product.price_info
            if price.price:
                revenue[d.product.id][price.currency_code or "USD"] += price.price * units
            else:
                unpriced += units
    return ({p: (c["detail-page-view"], c["add-to-cart"], c["purchase-complete"], c["units"])
             for p, c in counts.items()},
            {p: dict(r) for p, r in revenue.items() if r}, read_, unpriced)


@AUDITS
@given(pool=events, steps=operations, asked=st.lists(spans, min_size=1, max_size=3))
def test_product_stats_are_the_recount_of_the_stored_events(
        store: Any, pool: Any, steps: Any, asked: Any) -> None:
    catalog = history(store, pool, steps)
    listed = stored(store, catalog)
    for span in asked:
        counts, revenue, events_read, unpriced = recounted_products(listed, span)
        answer = tables.list_product_stats(store, with_range(
            insights_pb2.ListProductStatsRequest(parent=catalog, page_size=1000), span))
        got = {r.product_id: (r.views, r.add_to_carts, r.purchases, r.units)
               for r in answer.products}
        assert (span, got, answer.events_read) == (span, counts, events_read)
        for r in answer.products:
            amounts = {m.currency_code: m.amount for m in r.revenue}
            assert same_money(amounts, revenue.get(r.product_id, {})), (span, r.product_id)
            assert r.view_to_purchase_rate == (r.purchases / r.views if r.views else 0.0)
        assert list(answer.notes) == ([tables.PRICE_NOTE.format(unpriced)] if unpriced else [])


@AUDITS
@given(pool=events, steps=operations, span=spans, hourly=st.booleans())
def test_totals_are_the_recount_of_the_stored_events(
        store: Any, pool: Any, steps: Any, span: Any, hourly: bool) -> None:
    catalog = history(store, pool, steps)
    listed = [(t, e) for t, e in stored(store, catalog) if within(span, t)]
    answer = totals.compute_totals(store, with_range(insights_pb2.ComputeTotalsRequest(
        parent=catalog, granularity=insights_pb2.HOUR if hourly else insights_pb2.DAY), span))
    width = HOUR_US if hourly else DAY_US
    buckets: dict[int, Counter[str]] = defaultdict(Counter)
    visitors: dict[int, set[str]] = defaultdict(set)
    money: dict[tuple[str, str], float] = defaultdict(float)
    purchases: Counter[tuple[str, str]] = Counter()
    for time_ns, e in listed:
        time_us = time_ns // 1000
        buckets[time_us // width * width][e.event_type] += 1
        visitors[time_us // width * width].add(e.visitor_id)
        if e.event_type == "purchase-complete":
            day = datetime.fromtimestamp(time_us // US, UTC).date().isoformat()
            money[day, e.purchase_transaction.currency_code] += e.purchase_transaction.revenue
            purchases[day, e.purchase_transaction.currency_code] += 1
    assert answer.events_read == len(listed)
    assert answer.distinct_visitors == len({e.visitor_id for _, e in listed})
    assert [(b.start_time.ToMicroseconds(), {c.event_type: c.count for c in b.event_counts},
             b.distinct_visitors) for b in answer.buckets] == [
        (start, dict(buckets[start]), len(visitors[start])) for start in sorted(buckets)]
    assert [(r.day, r.currency_code) for r in answer.revenue] == sorted(money)
    assert same_money({(r.day, r.currency_code): r.revenue for r in answer.revenue}, money)
    assert Counter({(r.day, r.currency_code): r.purchases for r in answer.revenue}) == purchases


# Two events within one microsecond (100 and 900 ns past it), a range bound between them.
WITHIN_US = MIDNIGHT_US + 12 * HOUR_US
BETWEEN_NS = WITHIN_US * 1000 + 500


@pytest.mark.parametrize("condition", ["", "p0"])
def test_a_funnel_range_splits_a_microsecond_as_its_events_do(
        store: Any, condition: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # (no condition: the database gathers each visitor's events; a product
    # condition: rows read one by one)
    catalog = history(store, [
        {"type": "detail-page-view", "visitor": visitor, "time": time_us, "nanos": nanos,
         "details": [{"id": "p0", "price": None, "currency": "", "quantity": None}],
         "revenue": 0.1, "paid_in": "USD"} for visitor, time_us, nanos in (
            ("early", WITHIN_US, 100), ("late", WITHIN_US, 900), ("later", WITHIN_US + 4, 0))],
        [])
    for span, entrants in (((BETWEEN_NS, None), 2), ((None, BETWEEN_NS), 1),
                           ((BETWEEN_NS - 400, BETWEEN_NS + 401), 2),
                           ((BETWEEN_NS - 399, BETWEEN_NS + 400), 0),
                           ((BETWEEN_NS, (WITHIN_US + 4) * 1000 + 1), 2),
                           ((BETWEEN_NS, (WITHIN_US + 4) * 1000), 1)):
        request = with_range(insights_pb2.RunFunnelRequest(parent=catalog, steps=[
            insights_pb2.FunnelStep(event_type="detail-page-view", product_id=condition)]),
            span)
        answer = funnel_request.run(store, funnel_request.parse(request))
        assert (span, answer.steps[0].entrants) == (span, entrants)


def test_job_stats_split_a_microsecond_as_the_client_events_do(store: Any) -> None:
    tenant = f"projects/p/tenants/audit{next(_names)}"
    for event_id, nanos in (("early", 100), ("late", 900)):
        event = event_pb2.ClientEvent(request_id="r", event_id=event_id)
        event.create_time.FromNanoseconds(WITHIN_US * 1000 + nanos)
        event.job_event.type = event_pb2.JobEvent.IMPRESSION
        event.job_event.jobs.append(f"{tenant}/jobs/j")
        store.create_client_event(ClientEventRow(tenant, event_id, WITHIN_US,
                                                 event.SerializeToString()))
    for span, impressions in (((BETWEEN_NS, None), 1), ((None, BETWEEN_NS), 1),
                              ((None, None), 2)):
        answer = tables.list_job_stats(store, with_range(
            insights_pb2.ListJobStatsRequest(parent=tenant), span))
        assert (span, [j.impressions for j in answer.jobs]) == (span, [impressions])


JOB_FIELDS = {"IMPRESSION": "impressions", "VIEW": "views",
              "APPLICATION_START": "application_starts",
              "APPLICATION_START_FROM_SEARCH": "application_starts",
              "APPLICATION_FINISH": "application_finishes",
              "APPLICATION_QUICK_SUBMISSION": "application_finishes",
              "APPLICATION_REDIRECT": "redirects", "BOOKMARK": "bookmarks",
              "NOTIFICATION": "notifications", "SENT_CV": "sent_cvs",
              "INTERVIEW_GRANTED": "interviews_granted", "HIRED": "hires"}
client_events = st.lists(st.fixed_dictionaries({
    "id": st.integers(0, 20).map(str),  # (a used id keeps the first event)
    "type": st.sampled_from(list(JOB_FIELDS)),
    "jobs": st.lists(st.sampled_from(["j0", "j1", "j2"]), min_size=1, max_size=3),
    "time": times,
    "nanos": st.sampled_from([0, 100, 999]),
}), max_size=20)


@AUDITS
@given(drawn=client_events, span=spans)
def test_job_stats_are_the_recount_of_the_stored_client_events(
        store: Any, drawn: Any, span: Any) -> None:
    tenant = f"projects/p/tenants/audit{next(_names)}"
    kept: dict[str, event_pb2.ClientEvent] = {}
    for d in drawn:
        event = event_pb2.ClientEvent(request_id="r", event_id=d["id"])
        event.create_time.FromNanoseconds(d["time"] * 1000 + d["nanos"])
        event.job_event.type = event_pb2.JobEvent.JobEventType.Value(d["type"])
        event.job_event.jobs.extend(f"{tenant}/jobs/{job}" for job in d["jobs"])
        store.create_client_event(ClientEventRow(tenant, d["id"], d["time"],
                                                 event.SerializeToString()))
        kept.setdefault(d["id"], event)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    read_ = 0
    for e in kept.values():
        if not within(span, e.create_time.ToNanoseconds()):
            continue
        read_ += 1
        field = JOB_FIELDS.get(event_pb2.JobEvent.JobEventType.Name(e.job_event.type))
        for job in set(e.job_event.jobs):
            if field is not None:
                counts[job][field] += 1
    answer = tables.list_job_stats(store, with_range(
        insights_pb2.ListJobStatsRequest(parent=tenant, page_size=1000), span))
    assert answer.events_read == read_
    assert {j.job: {f: getattr(j, f) for f in set(JOB_FIELDS.values())} for j in answer.jobs} == {
        job: {f: c[f] for f in set(JOB_FIELDS.values())} for job, c in counts.items()}
    for j in answer.jobs:
        assert j.view_rate == (j.views / j.impressions if j.impressions else 0.0)
        assert j.application_start_rate == (
            j.application_starts / j.views if j.views else 0.0)
        assert j.application_finish_rate == (
            j.application_finishes / j.application_starts if j.application_starts else 0.0)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 40), st.sampled_from("vw"),
                                 st.sampled_from(["view", "q1", "q2"])), max_size=40),
       window=st.integers(0, 10), cuts=st.lists(st.integers(1, 40), max_size=6))
def test_searches_led_to_a_view_are_those_the_first_view_after_each_finds(
        events: list[tuple[int, str, str]], window: int, cuts: list[int]) -> None:
    # (ComputeTotals' top queries, read page by page: `cuts` are where pages end)
    events.sort(key=lambda e: e[0])  # stable: ties keep the order drawn (their storage order)
    searches = totals._Searches(window)
    for i, (time, visitor, what) in enumerate(events):
        if what == "view":
            searches.viewed(visitor, time)
        else:
            searches.searched(what, visitor, time)
        if i + 1 in cuts:
            searches.forget_before(time)
            # What waits is what a view from here on may yet count: a search of the window.
            assert all(time - t <= window for waiting in searches.waiting.values()
                       for t, _ in waiting)
    counts: Counter[str] = Counter()
    led: Counter[str] = Counter()
    for time, visitor, what in events:
        if what != "view":
            counts[what] += 1
            # the visitor's first view at the search's time or later (stored before it or after)
            later = [t for t, v, w in events if v == visitor and w == "view" and t >= time]
            led[what] += bool(later) and min(later) - time <= window
    assert searches.counts == counts
    assert +searches.led == +led


def test_a_visitor_searching_all_day_keeps_a_windows_searches_waiting() -> None:
    minute = 60 * US
    searches = totals._Searches(totals.DEFAULT_SEARCH_WINDOW_US)
    for i in range(24 * 60):  # a search a minute, no view
        searches.searched("q", "bot", i * minute)
        searches.forget_before(i * minute)  # (a page a search)
    # 1,440 searches waited for a view that 30 min past each could not count
    assert len(searches.waiting["bot"]) == 31


talent_events = st.lists(st.fixed_dictionaries({
    "id": st.integers(0, 20).map(str),  # (a used id keeps the first event)
    "request": st.sampled_from(["", "r0", "r1"]),
    "type": st.sampled_from(["IMPRESSION", "VIEW", "APPLICATION_START", "NOTIFICATION"]),
    "jobs": st.lists(st.sampled_from(["j0", "j1", "j2"]), min_size=1, max_size=2),
    "time": times,
    "nanos": st.sampled_from([0, 100, 999]),
}), max_size=20)


@AUDITS
@given(drawn=talent_events, span=spans, count_by=st.sampled_from(["REQUEST", "JOB"]),
       breakdown=st.sampled_from(["BREAKDOWN_UNSPECIFIED", "BY_ITEM"]),
       window_us=st.sampled_from([1, HOUR_US, DAY_US]), job=st.sampled_from(["", "j0"]))
def test_talent_funnels_are_the_recount_of_the_stored_client_events(
        store: Any, drawn: Any, span: Any, count_by: str, breakdown: str, window_us: int,
        job: str) -> None:
    # Stored out of time order, many in one microsecond (ties broken by storage
    # order, not by the nanoseconds), read 3 a page: the funnel walks the events
    # in (time, storage) order as the pages come.
    tenant = f"projects/p/tenants/audit{next(_names)}"
    kept: dict[str, tuple[int, event_pb2.ClientEvent]] = {}
    for d in drawn:
        event = event_pb2.ClientEvent(request_id=d["request"], event_id=d["id"])
        event.create_time.FromNanoseconds(d["time"] * 1000 + d["nanos"])
        event.job_event.type = event_pb2.JobEvent.JobEventType.Value(d["type"])
        event.job_event.jobs.extend(f"{tenant}/jobs/{j}" for j in d["jobs"])
        store.create_client_event(ClientEventRow(tenant, d["id"], d["time"],
                                                 event.SerializeToString()))
        kept.setdefault(d["id"], (len(kept), event))
    kinds = ["IMPRESSION", "VIEW", "APPLICATION_START"]
    condition = f"{tenant}/jobs/{job}" if job else ""

    def matches(k: int, e: Any) -> bool:
        return (event_pb2.JobEvent.JobEventType.Name(e.job_event.type) == kinds[k]
                and (k != 1 or not condition or condition in e.job_event.jobs))

    trails: dict[Any, list[tuple[int, int, Any]]] = defaultdict(list)
    read_ = 0
    for order, e in kept.values():
        if not within(span, e.create_time.ToNanoseconds()):
            continue
        read_ += 1
        jobs = sorted(set(e.job_event.jobs))
        entrants = jobs if count_by == "JOB" else [e.request_id] if e.request_id else []
        keys = [(None, x) for x in entrants]
        if breakdown == "BY_ITEM":
            keys += [(j, x) for j in jobs for x in entrants if count_by != "JOB" or x == j]
        for key in keys:
            trails[key].append((e.create_time.ToMicroseconds(), order, e))
    gaps: dict[Any, list[list[int]]] = defaultdict(lambda: [[] for _ in kinds])
    for (group, _), trail in trails.items():
        trail.sort(key=lambda t: (t[0], t[1]))
        for k in range(len(kinds), 0, -1):  # the first of the most steps within the window
            chosen = next((c for c in itertools.combinations(trail, k)
                           if all(matches(i, c[i][2]) for i in range(k))
                           and c[-1][0] - c[0][0] <= window_us), None)
            if chosen:
                for i in range(k):
                    gaps[group][i].append(chosen[i][0] - chosen[i - 1][0] if i else 0)
                break
    expected = {g: [(len(x), statistics.median(x) if x and i else None)
                    for i, x in enumerate(v)] for g, v in gaps.items()}
    request = with_range(insights_pb2.RunFunnelRequest(
        parent=tenant, count_by=count_by, breakdown=breakdown,
        steps=[insights_pb2.FunnelStep(event_type=kind, job=condition if i == 1 else "")
               for i, kind in enumerate(kinds)]), span)
    request.conversion_window.FromMicroseconds(window_us)
    answer = funnel_request.run(store, funnel_request.parse(request))

    def answered(results: Any) -> list[tuple[int, float | None]]:
        return [(r.entrants, r.median_time_from_previous.ToNanoseconds() / 1000
                 if r.HasField("median_time_from_previous") else None) for r in results]

    assert answer.events_read == read_
    assert answered(answer.steps) == expected.pop(None, [(0, None)] * len(kinds))
    assert {g.key: answered(g.steps) for g in answer.groups} == (
        expected if breakdown == "BY_ITEM" else {})
