"""Insights against an independent reference: random event histories (visitors,
sessions, out-of-order times, exact duplicates, purged visitors, several
currencies) written to memory, SQLite and PostgreSQL, every answer compared with
a plain-Python computation over the events that should remain."""

from __future__ import annotations

import itertools
import re
import sqlite3
import statistics
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from footfall.insights.v1 import insights_pb2
from footfall.retail.v2 import product_pb2, user_event_pb2
from footfall.talent.v4 import event_pb2
from google.protobuf import json_format
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server import loop
from server.errors import Cancelled, InvalidArgument
from server.insights import funnel, funnel_request, read, tables, totals
from server.names import default_branch
from server.store import ClientEventRow, EventQuery, EventRow, TimeBound
from server.store import insights as insights_sql
from server.store.rows import OperationRecord, Progress, Step

from . import test_store

store_url, stores, store = test_store.store_url, test_store.stores, test_store.store

T0 = 1_700_000_000  # seconds; event times spread over a few days after it
HOUR, DAY = 3600, 86400
SHOP = ("home-page-view", "detail-page-view", "add-to-cart", "purchase-complete")
EXAMPLES = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
_names = itertools.count()


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Histories here are a few dozen events: pages of 4 make every answer read
    several, so the keyset paging (ties in time included) is part of what is checked."""
    monkeypatch.setattr(read, "ROWS_PAGE", 4)
    monkeypatch.setattr(read, "PAGE", 4)  # (client events, and read.user_events)

products = st.lists(st.fixed_dictionaries({
    "id": st.sampled_from(["p0", "p1", "p2"]),
    "quantity": st.one_of(st.none(), st.integers(1, 3)),
    "price": st.sampled_from([0.0, 1.5, 10.0]),
    "currency": st.sampled_from(["", "USD", "EUR"]),
    "categories": st.lists(st.sampled_from(["shoes", "hats"]), max_size=2, unique=True),
}), max_size=2)
retail_events = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from([*SHOP, "search", "home-page-view", "detail-page-view"]),
    "visitor": st.sampled_from(["v0", "v1", "v2", "v3"]),
    "session": st.sampled_from(["", "s0", "s1"]),
    "user": st.sampled_from(["", "u0", "u1"]),
    # coarse times so that ties happen; listed out of order
    "time": st.integers(0, 60).map(lambda n: T0 + n * 1800),
    "products": products,
    "query": st.sampled_from(["", "boots", "caps"]),
    "color": st.sampled_from(["", "red", "blue"]),
    "revenue": st.sampled_from([5.0, 12.5]),
    "currency": st.sampled_from(["USD", "EUR", "JPY"]),
    "pages": st.lists(st.sampled_from(["shoes", "hats"]), max_size=1),
}), max_size=30)


def user_event(d: dict[str, Any]) -> user_event_pb2.UserEvent:
    event = user_event_pb2.UserEvent(event_type=d["type"], visitor_id=d["visitor"],
                                      session_id=d["session"], page_categories=d["pages"])
    event.event_time.FromSeconds(d["time"])
    if d["user"]:
        event.user_info.user_id = d["user"]
    if d["type"] == "search":
        event.search_query = d["query"]
    if d["color"]:
        event.attributes["color"].text.append(d["color"])
    if d["type"] in SHOP[1:]:
        for p in d["products"]:
            detail = event.product_details.add()
            detail.product.id = p["id"]
            detail.product.categories.extend(p["categories"])
            detail.product.price_info.price = p["price"]
            detail.product.price_info.currency_code = p["currency"]
            if p["quantity"] is not None:
                detail.quantity.value = p["quantity"]
    if d["type"] == "purchase-complete":
        event.purchase_transaction.revenue = d["revenue"]
        event.purchase_transaction.currency_code = d["currency"]
    return event


def stored_history(store: Any, drawn: list[dict[str, Any]], duplicates: list[int],
                   purged: str | None) -> tuple[str, list[user_event_pb2.UserEvent]]:
    """Write the events (and copies of some) to a new catalog, purge a visitor;
    the catalog and what should remain, in storage order."""
    catalog = f"projects/p/locations/global/catalogs/c{next(_names)}"
    events = [user_event(d) for d in drawn]
    events += [events[i % len(events)] for i in duplicates] if events else []
    store.write_user_events([EventRow.from_event(catalog, e, joined=True) for e in events])
    if purged is not None:
        name = f"{catalog}/operations/purge"
        store.create_operation(OperationRecord(name, "k", False, 1, b"", b""))
        store.claim_operation("me", 0, 10**12, lambda _: False)
        store.run_step(name, "me", Step(delete_events=EventQuery(catalog, visitor_ids=(purged,)),
                                        delete_until_id=2**62, delete_limit=1000),
                       10**12, lambda _: Progress(b"", b"", True))
    remaining, seen = [], set()
    for e in events:
        payload = e.SerializeToString(deterministic=True)
        if payload not in seen and e.visitor_id != purged:
            seen.add(payload)
            remaining.append(e)
    return catalog, remaining


def seconds(event: Any) -> int:
    time = event.event_time if hasattr(event, "event_time") else event.create_time
    return int(time.seconds)


# -- the reference ----------------------------------------------------------------


def step_matches(step: insights_pb2.FunnelStep, e: Any) -> bool:
    if hasattr(e, "job_event"):
        return (event_pb2.JobEvent.JobEventType.Name(e.job_event.type) == step.event_type
                and (not step.job or step.job in e.job_event.jobs))
    ids = [d.product.id for d in e.product_details]
    categories = list(e.page_categories) + [c for d in e.product_details
                                            for c in d.product.categories]
    color = e.attributes["color"].text if "color" in e.attributes else []
    return (e.event_type == step.event_type
            and (not step.product_id or step.product_id in ids)
            and (not step.category or step.category in categories)
            and (not step.search_query_present or e.search_query != "")
            and (not step.attribute_key or (step.attribute_key == "color" and bool(color)
                                            and (not step.attribute_value
                                                 or step.attribute_value in color))))


def reference_funnel(events: list[Any], steps: list[insights_pb2.FunnelStep],
                     keys: Any, window_s: int, by_day: bool = False
                     ) -> dict[Any, list[tuple[int, float | None]]]:
    """{group: [(entrants, median seconds from the previous step)]}; `keys(e)` gives
    an event's (group, entrant) pairs; `by_day`: grouped by the UTC day of the
    counted first step instead. Brute force: the first combination, in order,
    of the most steps that fits the window."""
    trails: dict[Any, list[tuple[int, int, Any]]] = defaultdict(list)
    for order, e in enumerate(events):
        for key in keys(e):
            trails[key].append((seconds(e), order, e))
    gaps: dict[Any, list[list[int]]] = defaultdict(lambda: [[] for _ in steps])
    for (group, _), trail in trails.items():
        trail.sort(key=lambda t: (t[0], t[1]))
        for k in range(len(steps), 0, -1):
            chosen = next((c for c in itertools.combinations(trail, k)
                           if all(step_matches(steps[i], c[i][2]) for i in range(k))
                           and c[-1][0] - c[0][0] <= window_s), None)
            if chosen:
                if by_day:
                    group = datetime.fromtimestamp(chosen[0][0], UTC).date().isoformat()
                for i in range(k):
                    gaps[group][i].append(chosen[i][0] - chosen[i - 1][0] if i else 0)
                break
    return {g: [(len(x), statistics.median(x) if x and i else None) for i, x in enumerate(v)]
            for g, v in gaps.items()}


def answered(results: Any) -> list[tuple[int, float | None]]:
    return [(r.entrants, r.median_time_from_previous.ToNanoseconds() / 1e9
             if r.HasField("median_time_from_previous") else None) for r in results]


def check_steps(results: Any, expected: list[tuple[int, float | None]], n: int) -> None:
    expected = expected or [(0, None)] * n
    assert answered(results) == expected
    first = expected[0][0]
    for i, r in enumerate(results):
        previous = expected[i - 1][0] if i else expected[i][0]
        assert r.conversion_from_previous == pytest.approx(
            expected[i][0] / previous if previous else 0.0)
        assert r.conversion_from_first == pytest.approx(expected[i][0] / first if first else 0)


custom_steps = st.lists(st.builds(
    insights_pb2.FunnelStep,
    event_type=st.sampled_from([*SHOP, "search"]),
    product_id=st.sampled_from(["", "", "p0", "p1"]),
    category=st.sampled_from(["", "", "shoes"]),
    search_query_present=st.booleans(),
    attribute_key=st.sampled_from(["", "color"]),
    attribute_value=st.sampled_from(["", "red"]),
).filter(lambda s: s.attribute_key or not s.attribute_value), min_size=1, max_size=4)


def drawn_event(kind: str, visitor: str, time: int, **more: Any) -> dict[str, Any]:
    return {"type": kind, "visitor": visitor, "session": "", "user": "", "time": time,
            "products": [], "query": "", "color": "", "revenue": 5.0, "currency": "USD",
            "pages": [], **more}


# At the window's edge, ties at one time, and a later start that gets further.
EDGES = [drawn_event("home-page-view", "v0", T0 + HOUR),
         drawn_event("detail-page-view", "v0", T0 + 2 * HOUR),
         drawn_event("home-page-view", "v1", T0), drawn_event("detail-page-view", "v1", T0),
         drawn_event("home-page-view", "v2", T0), drawn_event("home-page-view", "v2", T0 + HOUR),
         drawn_event("detail-page-view", "v2", T0 + 2 * HOUR),
         drawn_event("add-to-cart", "v2", T0 + 2 * HOUR)]


def funnel_of(catalog: str, steps: Any, count_by: str, window: int, breakdown: str,
              span: Any) -> insights_pb2.RunFunnelRequest:
    """The RunFunnelRequest the drawn values of a funnel test make."""
    request = insights_pb2.RunFunnelRequest(
        parent=catalog, steps=steps, count_by=insights_pb2.CountBy.Value(count_by),
        breakdown=insights_pb2.Breakdown.Value(breakdown))
    request.conversion_window.FromSeconds(window)
    if span[0] is not None:
        request.start_time.FromSeconds(span[0])
        request.end_time.FromSeconds(span[1])
    return request


@settings(EXAMPLES, max_examples=80)
@example(drawn=EDGES, duplicates=[], purged=None, steps=[], count_by="VISITOR", window=HOUR,
         breakdown="BY_DAY", span=(None, None))
@given(drawn=retail_events, duplicates=st.lists(st.integers(0, 29), max_size=5),
       purged=st.sampled_from([None, "v1"]), steps=st.one_of(st.just([]), custom_steps),
       count_by=st.sampled_from(["VISITOR", "USER", "SESSION"]),
       window=st.sampled_from([HOUR, DAY, 10 * DAY]),
       breakdown=st.sampled_from(["BREAKDOWN_UNSPECIFIED", "BY_DAY", "BY_ITEM"]),
       span=st.sampled_from([(None, None), (T0 + 6 * HOUR, T0 + 2 * DAY)]))
def test_funnels_match_the_reference(store: Any, drawn: Any, duplicates: Any, purged: Any,
                                     steps: Any, count_by: str, window: int, breakdown: str,
                                     span: Any) -> None:
    catalog, events = stored_history(store, drawn, duplicates, purged)
    request = funnel_of(catalog, steps, count_by, window, breakdown, span)
    if span[0] is not None:
        events = [e for e in events if span[0] <= seconds(e) < span[1]]
    answer = funnel_request.run(store, funnel_request.parse(request))
    steps = steps or [insights_pb2.FunnelStep(event_type=t) for t in SHOP]
    field = {"VISITOR": lambda e: e.visitor_id, "USER": lambda e: e.user_info.user_id,
             "SESSION": lambda e: e.session_id}[count_by]

    def keys(e: Any) -> list[tuple[Any, str]]:
        if not field(e):
            return []
        found = [(None, field(e))]
        if breakdown == "BY_ITEM":
            found += [(p, field(e)) for p in {d.product.id for d in e.product_details}]
        return found

    expected = reference_funnel(events, steps, keys, window)
    check_steps(answer.steps, expected.pop(None, []), len(steps))
    assert [s.step for s in answer.steps] == steps
    if breakdown == "BY_DAY":
        expected = reference_funnel(events, steps, keys, window, by_day=True)
    groups = {g.key: answered(g.steps) for g in answer.groups}
    if breakdown == "BREAKDOWN_UNSPECIFIED":
        assert not groups
    else:
        assert groups.keys() == expected.keys()
        for key, value in expected.items():
            assert groups[key] == value


# T0 is 80,000 s into a UTC day: the whole days (rollups) and part days (events) of a
# range mix in these, and one range is whole days only.
MIDNIGHT = T0 - 80_000
SPANS = [(None, None), (T0 + 2 * HOUR, None), (None, T0 + 20 * HOUR),
         (MIDNIGHT + DAY, MIDNIGHT + 2 * DAY), (T0 + 2 * HOUR + 1, T0 + 28 * HOUR + 7),
         (T0 + HOUR, T0 + 3 * HOUR)]


@EXAMPLES
@given(drawn=retail_events, duplicates=st.lists(st.integers(0, 29), max_size=5),
       purged=st.sampled_from([None, "v2"]),
       order=st.sampled_from(["", "product_id", "purchases desc", "view_to_purchase_rate"]),
       size=st.integers(1, 4), span=st.sampled_from(SPANS))
def test_product_stats_match_the_reference(store: Any, drawn: Any, duplicates: Any,
                                           purged: Any, order: str, size: int,
                                           span: Any) -> None:
    catalog, events = stored_history(store, drawn, duplicates, purged)
    events = [e for e in events if (span[0] is None or seconds(e) >= span[0])
              and (span[1] is None or seconds(e) < span[1])]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    revenue: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        if e.event_type not in SHOP[1:]:
            continue
        for product_id in {d.product.id for d in e.product_details}:
            counts[product_id][e.event_type] += 1
        if e.event_type == "purchase-complete":
            for d in e.product_details:
                units = d.quantity.value if d.HasField("quantity") else 1
                counts[d.product.id]["units"] += units
                if d.product.price_info.price:
                    revenue[d.product.id][d.product.price_info.currency_code or "USD"] += \
                        d.product.price_info.price * units
    expected = {p: (c["detail-page-view"], c["add-to-cart"], c["purchase-complete"],
                    c["units"], dict(revenue[p])) for p, c in counts.items()}
    rows, token = [], ""
    while True:
        request = insights_pb2.ListProductStatsRequest(
            parent=catalog, order_by=order, page_size=size, page_token=token)
        if span[0] is not None:
            request.start_time.FromSeconds(span[0])
        if span[1] is not None:
            request.end_time.FromSeconds(span[1])
        page = tables.list_product_stats(store, request)
        # every event of the three types in the range, from the rollups or read
        assert page.events_read == sum(e.event_type in SHOP[1:] for e in events)
        rows += page.products
        token = page.next_page_token
        if not token:
            break
    got = {r.product_id: (r.views, r.add_to_carts, r.purchases, r.units,
                          {m.currency_code: m.amount for m in r.revenue}) for r in rows}
    assert got == expected  # prices and revenues are sums of exact binary fractions
    for r in rows:
        assert r.view_to_purchase_rate == pytest.approx(r.purchases / r.views if r.views else 0)
    field, _, desc = (order or "views desc").partition(" ")
    keys = [(getattr(r, field), r.product_id) for r in rows]
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=bool(desc))


@EXAMPLES
@given(drawn=retail_events, duplicates=st.lists(st.integers(0, 29), max_size=5),
       purged=st.sampled_from([None, "v3"]),
       types=st.sampled_from([(), ("search",), ("add-to-cart", "purchase-complete")]),
       span=st.sampled_from([(None, None), (T0 + 6 * HOUR, T0 + 2 * DAY)]))
def test_user_events_read_every_event_once_latest_first(
        store: Any, drawn: Any, duplicates: Any, purged: Any, types: tuple[str, ...],
        span: tuple[int | None, int | None]) -> None:
    # read.user_events (bench/insights.py's read of every event) pages backwards
    # through ties of time: each remaining event of the types and span once, latest
    # time first, then the latest stored.
    catalog, events = stored_history(store, drawn, duplicates, purged)
    start, end = span
    wanted = [(seconds(e), n, e) for n, e in enumerate(events)
              if (not types or e.event_type in types)
              and (start is None or seconds(e) >= start) and (end is None or seconds(e) < end)]
    wanted.sort(key=lambda t: (t[0], t[1]), reverse=True)
    read_back = [e for _, e in read.user_events(
        store, catalog, read.TimeRange(None if start is None else start * 1_000_000,
                                       None if end is None else end * 1_000_000), types)]
    assert read_back == [e for _, _, e in wanted]


@EXAMPLES
@example(drawn=[drawn_event("search", "v0", T0, query="boots"),
                drawn_event("detail-page-view", "v0", T0 + HOUR),
                drawn_event("search", "v1", T0, query="boots"),
                drawn_event("detail-page-view", "v1", T0 + HOUR + 1)],
         duplicates=[], purged=None, hourly=True, window=HOUR)
@given(drawn=retail_events, duplicates=st.lists(st.integers(0, 29), max_size=5),
       purged=st.sampled_from([None, "v0"]), hourly=st.booleans(),
       window=st.sampled_from([HOUR, DAY]))
def test_totals_match_the_reference(store: Any, drawn: Any, duplicates: Any, purged: Any,
                                    hourly: bool, window: int) -> None:
    catalog, events = stored_history(store, drawn, duplicates, purged)
    request = insights_pb2.ComputeTotalsRequest(
        parent=catalog, granularity=insights_pb2.HOUR if hourly else insights_pb2.DAY)
    request.search_window.FromSeconds(window)
    answer = totals.compute_totals(store, request)
    width = HOUR if hourly else DAY
    buckets: dict[int, Counter[str]] = defaultdict(Counter)
    visitors: dict[int, set[str]] = defaultdict(set)
    money: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for e in events:
        start = seconds(e) - seconds(e) % width
        buckets[start][e.event_type] += 1
        visitors[start].add(e.visitor_id)
        if e.event_type == "purchase-complete":
            day = datetime.fromtimestamp(seconds(e), UTC).date().isoformat()
            money[day, e.purchase_transaction.currency_code][0] += e.purchase_transaction.revenue
            money[day, e.purchase_transaction.currency_code][1] += 1
    assert [(b.start_time.seconds, {c.event_type: c.count for c in b.event_counts},
             b.distinct_visitors) for b in answer.buckets] == \
        [(s, dict(buckets[s]), len(visitors[s])) for s in sorted(buckets)]
    assert answer.distinct_visitors == len({e.visitor_id for e in events})
    assert [(r.day, r.currency_code, r.revenue, r.purchases) for r in answer.revenue] == \
        [(d, c, *money[d, c]) for d, c in sorted(money)]
    searches = [e for e in events if e.event_type == "search" and e.search_query]
    queries = Counter(e.search_query for e in searches)
    led = Counter(s.search_query for s in searches if any(
        v.event_type == "detail-page-view" and v.visitor_id == s.visitor_id
        and 0 <= seconds(v) - seconds(s) <= window for v in events))
    assert [(q.query, q.searches, q.led_to_detail_view) for q in answer.top_queries] == \
        [(q, n, led[q]) for q, n in sorted(queries.items(), key=lambda x: (-x[1], x[0]))]


JOB_TENANT = "projects/p/tenants/t"
JOBS = [f"{JOB_TENANT}/jobs/j{i}" for i in range(3)]
client_events = st.lists(st.fixed_dictionaries({
    "id": st.integers(0, 40).map(str),
    "request": st.sampled_from(["", "r0", "r1", "r2"]),
    "type": st.sampled_from(["IMPRESSION", "VIEW", "APPLICATION_START", "APPLICATION_FINISH",
                             "BOOKMARK", "APPLICATION_REDIRECT", "NOTIFICATION"]),
    "jobs": st.lists(st.sampled_from(JOBS), min_size=1, max_size=2),
    "time": st.integers(0, 60).map(lambda n: T0 + n * 1800),
}), max_size=30)


def stored_client_events(store: Any, drawn: list[dict[str, Any]]
                         ) -> tuple[str, list[event_pb2.ClientEvent]]:
    """Create the events in a new tenant; a used event id keeps the first."""
    tenant = f"projects/p/tenants/t{next(_names)}"
    kept: dict[str, event_pb2.ClientEvent] = {}
    for d in drawn:
        event = event_pb2.ClientEvent(request_id=d["request"], event_id=d["id"])
        event.create_time.FromSeconds(d["time"])
        event.job_event.type = event_pb2.JobEvent.JobEventType.Value(d["type"])
        # (the jobs of the tenant made here: a funnel refuses a job of another tenant)
        event.job_event.jobs.extend(j.replace(JOB_TENANT, tenant) for j in d["jobs"])
        store.create_client_event(ClientEventRow(tenant, d["id"], d["time"] * 10**6,
                                                 event.SerializeToString()))
        kept.setdefault(d["id"], event)
    return tenant, list(kept.values())


@EXAMPLES
@given(drawn=client_events, count_by=st.sampled_from(["REQUEST", "JOB"]),
       breakdown=st.sampled_from(["BREAKDOWN_UNSPECIFIED", "BY_ITEM"]),
       window=st.sampled_from([HOUR, DAY]), job=st.sampled_from(["", JOBS[0]]))
def test_talent_funnels_and_job_stats_match_the_reference(
        store: Any, drawn: Any, count_by: str, breakdown: str, window: int, job: str) -> None:
    tenant, events = stored_client_events(store, drawn)
    steps = [insights_pb2.FunnelStep(event_type=t) for t in funnel_request.TALENT_FUNNEL]
    steps[1].job = job.replace(JOB_TENANT, tenant)
    request = insights_pb2.RunFunnelRequest(
        parent=tenant, steps=steps, count_by=insights_pb2.CountBy.Value(count_by),
        breakdown=insights_pb2.Breakdown.Value(breakdown))
    request.conversion_window.FromSeconds(window)
    answer = funnel_request.run(store, funnel_request.parse(request))

    def keys(e: Any) -> list[tuple[Any, str]]:
        entrants = sorted(set(e.job_event.jobs)) if count_by == "JOB" else \
            [e.request_id] if e.request_id else []
        found = [(None, x) for x in entrants]
        if breakdown == "BY_ITEM":
            found += [(j, x) for j in set(e.job_event.jobs) for x in entrants
                      if count_by != "JOB" or x == j]
        return found

    expected = reference_funnel(events, steps, keys, window)
    check_steps(answer.steps, expected.pop(None, []), len(steps))
    assert {g.key: answered(g.steps) for g in answer.groups} == (
        expected if breakdown == "BY_ITEM" else {})

    stats = tables.list_job_stats(store, insights_pb2.ListJobStatsRequest(
        parent=tenant, order_by="job", page_size=1000))
    fields = {"IMPRESSION": "impressions", "VIEW": "views",
              "APPLICATION_START": "application_starts",
              "APPLICATION_FINISH": "application_finishes", "BOOKMARK": "bookmarks",
              "APPLICATION_REDIRECT": "redirects", "NOTIFICATION": "notifications",
              "SENT_CV": "sent_cvs", "INTERVIEW_GRANTED": "interviews_granted",
              "HIRED": "hires"}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        name = event_pb2.JobEvent.JobEventType.Name(e.job_event.type)
        for j in set(e.job_event.jobs):
            if name in fields:
                counts[j][fields[name]] += 1
    assert [j.job for j in stats.jobs] == sorted(counts)
    for j in stats.jobs:
        assert {f: getattr(j, f) for f in fields.values()} == \
            {f: counts[j.job][f] for f in fields.values()}
        assert j.view_rate == pytest.approx(j.views / j.impressions if j.impressions else 0)
    assert stats.notes == [funnel_request.COMPANY_NOTE]


@pytest.mark.parametrize(("fields", "bad"), [
    ({"parent": "catalogs/x"}, "parent"),
    ({"parent": "projects/p/locations/tenants/catalogs/c/x"}, "parent"),
    ({"steps": [{"event_type": ""}]}, "steps[0].event_type"),
    ({"steps": [{"event_type": "search", "job": "j"}]}, "steps[0].job"),
    ({"steps": [{"event_type": "search", "attribute_value": "red"}]},
     "steps[0].attribute_value"),
    ({"steps": [{"event_type": "search"}] * 11}, "steps"),
    ({"count_by": "REQUEST"}, "count_by"),
    ({"conversion_window": "-5s"}, "conversion_window"),
    ({"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}, "end_time"),
    ({"parent": "projects/p/tenants/t", "steps": [{"event_type": "VIEWED"}]},
     "steps[0].event_type"),
    ({"parent": "projects/p/tenants/t", "count_by": "SESSION"}, "count_by"),
    ({"parent": "projects/p/tenants/t", "steps": [{"event_type": "VIEW", "product_id": "x"}]},
     "steps[0].product_id"),
])
def test_bad_funnels_are_refused_naming_the_field(fields: dict[str, Any], bad: str) -> None:
    from google.protobuf import json_format

    request = json_format.ParseDict({"parent": "projects/p/locations/global/catalogs/c",
                                     **fields}, insights_pb2.RunFunnelRequest())
    with pytest.raises(InvalidArgument) as caught:
        funnel_request.parse(request)
    assert [v.field for v in caught.value.violations] == [bad]


def test_only_the_steps_a_funnel_may_have_are_checked() -> None:
    # (a million empty steps, each told it had no event type, held the loop 2.6 s)
    request = insights_pb2.RunFunnelRequest(parent="projects/p/locations/global/catalogs/c")
    request.steps.extend([insights_pb2.FunnelStep()] * 100_000)
    with pytest.raises(InvalidArgument) as caught:
        funnel_request.parse(request)
    assert [v.field for v in caught.value.violations] == [
        "steps", *(f"steps[{i}].event_type" for i in range(funnel_request.MAX_STEPS))]
    assert caught.value.violations[0].description == "must be at most 10, got 100000"


def test_bad_table_and_totals_requests_are_refused_naming_the_field(store: Any) -> None:
    catalog = "projects/p/locations/global/catalogs/c"
    cases = [
        (tables.list_product_stats, insights_pb2.ListProductStatsRequest(
            parent=catalog, order_by="revenue"), "order_by"),
        (tables.list_product_stats, insights_pb2.ListProductStatsRequest(
            parent=catalog, page_token="bm9wZQ=="), "page_token"),
        (tables.list_job_stats, insights_pb2.ListJobStatsRequest(
            parent=catalog), "parent"),
        (tables.list_job_stats, insights_pb2.ListJobStatsRequest(
            parent="projects/p/tenants/t", page_size=-1), "page_size"),
        (totals.compute_totals, insights_pb2.ComputeTotalsRequest(
            parent=catalog, top_queries=1001), "top_queries"),
        (totals.compute_totals, insights_pb2.ComputeTotalsRequest(
            parent=catalog, granularity=7), "granularity"),
    ]
    for call, request, bad in cases:
        with pytest.raises(InvalidArgument) as caught:
            call(store, request)
        assert [v.field for v in caught.value.violations] == [bad]


def test_a_table_of_the_other_api_says_which_table_answers_instead(store: Any) -> None:
    # Each was told only the form of its own parent, as if the name were mistyped.
    catalog, tenant = "projects/p/locations/global/catalogs/c", "projects/p/tenants/t"
    with pytest.raises(InvalidArgument) as caught:
        tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(parent=tenant))
    assert [(v.field, v.description) for v in caught.value.violations] == [(
        "parent", "per-product counts are a catalog's (projects/*/locations/*/catalogs/*), "
                  f"got the talent tenant '{tenant}': a tenant's per-job counts are "
                  "ListJobStats'")]
    with pytest.raises(InvalidArgument) as caught:
        tables.list_job_stats(store, insights_pb2.ListJobStatsRequest(parent=catalog))
    assert [(v.field, v.description) for v in caught.value.violations] == [(
        "parent", "per-job counts are a talent tenant's (projects/*/tenants/*), got the "
                  f"retail catalog '{catalog}': a catalog's per-product counts are "
                  "ListProductStats'")]
    with pytest.raises(InvalidArgument) as caught:  # a name of neither: its form
        tables.list_job_stats(store, insights_pb2.ListJobStatsRequest(parent="projects/p"))
    assert caught.value.violations[0].description.startswith("must be of the form")


@pytest.mark.parametrize(("order", "said"), [
    ("views\u00a0desc", "'views\\xa0desc'"),  # (split() took any Unicode space)
    ("views up", "optionally followed by asc or desc"),
])
def test_an_order_is_words_apart_by_ascii_spaces(store: Any, order: str, said: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(
            parent="projects/p/locations/global/catalogs/c", order_by=order))
    [violation] = caught.value.violations
    assert violation.field == "order_by" and said in violation.description, violation
    assert tables.parse_order(" views  asc ", tables.PRODUCT_ORDERS, "") == ("views", False)
    assert tables.parse_order("views\tdesc\n", tables.PRODUCT_ORDERS, "") == ("views", True)
    assert tables.parse_order("\t", tables.PRODUCT_ORDERS, "units") == ("units", False)


@pytest.mark.parametrize("window", ["0.000000001s", "0s", "-1s"])
def test_a_window_below_a_microsecond_says_so(window: str) -> None:
    from google.protobuf import json_format

    request = json_format.ParseDict({"parent": "projects/p/locations/global/catalogs/c",
                                     "conversionWindow": window}, insights_pb2.RunFunnelRequest())
    with pytest.raises(InvalidArgument) as caught:
        funnel_request.parse(request)
    [violation] = caught.value.violations
    assert violation.description == f"must be at least a microsecond (0.000001s), got {window}"


def test_a_page_token_of_another_question_is_refused(store: Any) -> None:
    catalog, _ = stored_history(store, [drawn_event(
        "detail-page-view", "v", T0, products=[{"id": f"p{i}", "quantity": None, "price": 0.0,
                                                "currency": "", "categories": []}])
        for i in range(3)], [], None)
    first = tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(
        parent=catalog, page_size=1))
    assert first.next_page_token
    with pytest.raises(InvalidArgument):
        tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(
            parent=catalog, page_size=1, order_by="product_id",
            page_token=first.next_page_token))



def counted(monkeypatch: pytest.MonkeyPatch, name: str) -> list[None]:
    """A list that grows by one for every `insights_pb2.<name>` the tables make."""
    made: list[None] = []
    message = getattr(insights_pb2, name)

    def count(*args: Any, **kwargs: Any) -> Any:
        made.append(None)
        return message(*args, **kwargs)

    monkeypatch.setattr(tables.insights_pb2, name, count)
    return made


def test_a_page_of_product_stats_makes_messages_for_its_rows_only(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A message for every product (600,000 a writer key's ten events named) made a page
    # of ten hold 570 MB while it was answered.
    catalog, _ = stored_history(store, [drawn_event(
        "detail-page-view", "v", T0, products=[{"id": f"p{i}", "quantity": None, "price": 1.0,
                                                "currency": "EUR", "categories": []}])
        for i in range(30)], [], None)
    made = counted(monkeypatch, "ProductStats")
    page = tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(
        parent=catalog, page_size=4, order_by="product_id"))
    assert [p.product_id for p in page.products] == ["p0", "p1", "p10", "p11"]
    assert len(made) == 4


def test_a_page_of_job_stats_makes_messages_for_its_rows_only(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant, _ = stored_client_events(store, [
        {"request": "r", "id": "e1", "time": T0, "type": "IMPRESSION",
         "jobs": [f"j{i}" for i in range(30)]},
        {"request": "r", "id": "e2", "time": T0 + 1, "type": "VIEW", "jobs": ["j7"]}])
    made = counted(monkeypatch, "JobStats")
    page = tables.list_job_stats(store, insights_pb2.ListJobStatsRequest(
        parent=tenant, page_size=2, order_by="views desc"))
    assert [(j.job, j.impressions, j.views, j.view_rate) for j in page.jobs] == \
        [("j7", 1, 1, 1.0), ("j0", 1, 0, 0.0)]
    assert len(made) == 2


def test_a_category_step_also_asks_the_catalog_for_products_the_event_did_not_join(
        store: Any) -> None:
    catalog, _ = stored_history(store, [drawn_event(
        "detail-page-view", "v", T0, products=[{"id": "p9", "quantity": None, "price": 0.0,
                                                "currency": "", "categories": []}])], [], None)
    request = insights_pb2.RunFunnelRequest(parent=catalog, steps=[
        insights_pb2.FunnelStep(event_type="detail-page-view", category="boots")])

    def entrants() -> int:
        answer = funnel_request.run(store, funnel_request.parse(request))
        assert answer.notes == [funnel_request.CATEGORY_NOTE]
        return int(answer.steps[0].entrants)

    assert entrants() == 0
    store.create_product(default_branch(catalog), "p9", product_pb2.Product(
        id="p9", title="Boots", categories=["boots"]).SerializeToString())
    assert entrants() == 1


def test_typed_rows_give_columns_and_only_the_payloads_asked_for(store: Any) -> None:
    catalog, events = stored_history(store, [
        drawn_event("home-page-view", "v0", T0 + HOUR, user="u0"),
        drawn_event("search", "v1", T0, query="boots"),
        drawn_event("detail-page-view", "v1", T0),
        drawn_event("purchase-complete", "v0", T0 + 2 * HOUR),
        drawn_event("add-to-cart", "v2", T0 + DAY)], [], None)
    query = EventQuery(catalog, after=TimeBound(T0 * 10**6, True),
                       before=TimeBound((T0 + DAY) * 10**6, False))
    kinds = {"search": 1, "detail-page-view": 2, "home-page-view": 4, "add-to-cart": 8}
    rows = store.typed_rows(query, kinds, "user_id", ["search"], 100)
    # (time, id) order: the search and the detail view share a time, stored in that order
    assert [(t // 10**6 - T0, bits, who) for t, _, bits, who, _ in rows] == \
        [(0, 1, ""), (0, 2, ""), (HOUR, 4, "u0")]
    assert [e is not None for *_, e in rows] == [True, False, False]
    assert user_event_pb2.UserEvent.FromString(rows[0][4]) == events[1]
    first, *rest = store.typed_rows(query, kinds, "visitor_id", [], 1)
    assert len(first) == 4 and first[3] == "v1" and not rest
    assert [r[3] for r in store.typed_rows(query, kinds, None, [], 100, first[:2])] == \
        [None, None]


def test_totals_put_times_before_1970_in_the_buckets_floor_division_gives(store: Any) -> None:
    catalog, _ = stored_history(store, [
        drawn_event("search", "v0", -1), drawn_event("search", "v1", -HOUR),
        drawn_event("search", "v2", -HOUR - 1), drawn_event("search", "v3", 0)], [], None)
    answer = totals.compute_totals(store, insights_pb2.ComputeTotalsRequest(
        parent=catalog, granularity=insights_pb2.HOUR))
    assert [(b.start_time.seconds, b.distinct_visitors) for b in answer.buckets] == \
        [(-2 * HOUR, 1), (-HOUR, 2), (0, 1)]


def test_totals_keep_what_an_answer_can_carry_and_say_what_they_left_out(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Unbounded, 100,000 event types over a few hundred hours answered RESOURCE_EXHAUSTED
    # (11 MB past the server's 10 MiB; clients take 4 MiB).
    catalog, _ = stored_history(store, [
        drawn_event(kind, f"v{i}", T0 + i * HOUR, query=f"q{i}")
        for i, kind in enumerate(["a", "b", "b", "c", "c", "c", "search", "search"])]
        + [drawn_event("purchase-complete", "v", T0 + k * DAY) for k in range(3)], [], None)
    monkeypatch.setattr(totals, "MAX_EVENT_TYPES", 2)
    whole = totals.compute_totals(store, insights_pb2.ComputeTotalsRequest(
        parent=catalog, granularity=insights_pb2.HOUR))
    assert {c.event_type for b in whole.buckets for c in b.event_counts} == \
        {"c", "purchase-complete"}
    assert whole.notes == ["event counts of the 2 most frequent of 5 event types: 5 events of "
                           "the others are left out"]
    assert len(whole.buckets) == 10 and len(whole.top_queries) == 2
    # Each part keeps what fits: the latest hours and days, the most searched queries.
    monkeypatch.setattr(totals, "SECTION_BYTES", whole.buckets[-1].ByteSize() * 3)
    cut = totals.compute_totals(store, insights_pb2.ComputeTotalsRequest(
        parent=catalog, granularity=insights_pb2.HOUR))
    assert [b.start_time.seconds for b in cut.buckets] == \
        [b.start_time.seconds for b in whole.buckets][-len(cut.buckets):]
    assert 0 < len(cut.buckets) < 10
    assert cut.notes[1].startswith(f"{len(cut.buckets)} of 10 hours of event counts, the latest")
    assert cut.revenue[-1] == whole.revenue[-1] and cut.events_read == whole.events_read


def test_a_stored_job_event_type_the_contract_does_not_name_counts_nowhere(
        store: Any) -> None:
    # Stored before such numbers were refused: the funnel and the job table go on.
    tenant = f"projects/p/tenants/t{next(_names)}"
    for event_id, kind in (("e1", 999), ("e2", event_pb2.JobEvent.IMPRESSION)):
        event = event_pb2.ClientEvent(request_id="r1", event_id=event_id)
        event.create_time.FromSeconds(1_700_000_000)
        event.job_event.type = kind
        event.job_event.jobs.append(f"{tenant}/jobs/j1")
        store.create_client_event(ClientEventRow(tenant, event_id, 1_700_000_000 * 10**6,
                                                 event.SerializeToString()))
    steps = [insights_pb2.FunnelStep(event_type=t) for t in funnel_request.TALENT_FUNNEL]
    answer = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent=tenant, steps=steps)))
    assert [s.entrants for s in answer.steps] == [1, 0, 0, 0]
    [job] = tables.list_job_stats(store, insights_pb2.ListJobStatsRequest(
        parent=tenant, page_size=10)).jobs
    assert job.impressions == 1


def test_a_breakdown_by_product_of_a_funnel_whose_first_step_names_none_says_why(
        store: Any) -> None:
    product = [{"id": "p1", "quantity": None, "price": 0.0, "currency": "", "categories": []}]
    catalog, _ = stored_history(store, [
        drawn_event("home-page-view", "v", T0),
        drawn_event("detail-page-view", "v", T0 + 1, products=product)], [], None)
    steps = [insights_pb2.FunnelStep(event_type=t) for t in ("home-page-view",
                                                              "detail-page-view")]
    answer = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent=catalog, steps=steps, breakdown=insights_pb2.BY_ITEM)))
    assert (list(answer.groups), [s.entrants for s in answer.steps]) == ([], [1, 1])
    assert answer.notes == [funnel_request.NO_ITEM_NOTE.format(item="product")]
    # Begun where products are named, the groups are there and the note is not.
    answer = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent=catalog, steps=steps[1:], breakdown=insights_pb2.BY_ITEM)))
    assert [g.key for g in answer.groups] == ["p1"] and not answer.notes


@pytest.mark.parametrize(("count_by", "read_as", "note"), [
    ("USER", {}, "events of the steps that name no user (user_info.user_id), left out: 2 "
                 "(counted by USER)"),
    ("USER", {"by_rows": True}, "events of the steps that name no user (user_info.user_id), "
                                "left out: 2 "),
    ("USER", {"decode_all": True}, "events of the steps that name no user (user_info."
                                   "user_id), left out: 2 "),
    ("SESSION", {}, "events of the steps that name no session (session_id), left out: 2 "
                    "(counted by SESSION)"),
    ("VISITOR", {}, None),
])
def test_a_funnel_says_how_many_of_its_events_name_no_entrant(
        store: Any, count_by: str, read_as: dict[str, bool], note: str | None) -> None:
    # They were left out with no word: a funnel of zeros looked like one of no events.
    catalog, _ = stored_history(store, [
        drawn_event("home-page-view", "v1", T0, user="u1", session="s1"),
        drawn_event("detail-page-view", "v1", T0 + 1, user="u1", session="s1"),
        drawn_event("home-page-view", "v2", T0 + 2),
        drawn_event("detail-page-view", "v2", T0 + 3),
        drawn_event("search", "v3", T0 + 4)], [], None)  # no step's: not counted
    steps = [insights_pb2.FunnelStep(event_type=t) for t in ("home-page-view",
                                                              "detail-page-view")]
    answer = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent=catalog, steps=steps, count_by=insights_pb2.CountBy.Value(count_by))),
        **read_as)
    assert [s.entrants for s in answer.steps] == ([2, 2] if note is None else [1, 1])
    if note is None:
        assert not answer.notes
    else:
        [said] = answer.notes
        assert said.startswith(note), said


def test_a_talent_funnel_says_how_many_client_events_name_no_request(store: Any) -> None:
    tenant, _ = stored_client_events(store, [
        {"request": "r1", "id": "e1", "time": T0, "type": "IMPRESSION", "jobs": ["j1"]},
        {"request": "", "id": "e2", "time": T0 + 1, "type": "IMPRESSION", "jobs": ["j1"]},
        {"request": "", "id": "e3", "time": T0 + 2, "type": "BOOKMARK", "jobs": ["j1"]}])
    steps = [insights_pb2.FunnelStep(event_type=t) for t in funnel_request.TALENT_FUNNEL]
    answer = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent=tenant, steps=steps)))
    assert answer.steps[0].entrants == 1
    assert list(answer.notes) == ["events of the steps that name no request (request_id), "
                                  "left out: 1 (counted by REQUEST)"]


def test_a_breakdown_keeps_the_groups_an_answer_can_carry_and_says_how_many_it_left(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # One group per product or day: unbounded, an answer grew past the 10 MiB the
    # server sends (and clients' 4 MiB), and failed RESOURCE_EXHAUSTED.
    def viewed(product: str) -> list[dict[str, Any]]:
        return [{"id": product, "quantity": None, "price": 0.0, "currency": "",
                 "categories": []}]
    # p0 has 1 entrant, p1 2, ... p4 5; one day each, p4's the latest.
    catalog, _ = stored_history(store, [
        drawn_event("detail-page-view", f"v{k}-{v}", T0 + k * DAY, products=viewed(f"p{k}"))
        for k in range(5) for v in range(k + 1)], [], None)
    steps = [insights_pb2.FunnelStep(event_type="detail-page-view")]
    monkeypatch.setattr(funnel_request, "MAX_GROUPS", 3)

    def groups(breakdown: int) -> tuple[list[str], list[str]]:
        answer = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
            parent=catalog, steps=steps, breakdown=breakdown)))
        assert answer.steps[0].entrants == 15
        return [g.key for g in answer.groups], list(answer.notes)

    assert groups(insights_pb2.BY_ITEM) == (["p2", "p3", "p4"], [
        "3 of 5 product groups, those with the most entrants at the first step: an answer "
        "holds at most 3 groups and 3 MiB"])
    days = [datetime.fromtimestamp(T0 + k * DAY, UTC).strftime("%Y-%m-%d") for k in (2, 3, 4)]
    keys, notes = groups(insights_pb2.BY_DAY)
    assert keys == days and notes[0].startswith("3 of 5 days, the latest ones")
    # The size bound: only as many groups as fit in it.
    whole = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent=catalog, steps=steps)))
    group = insights_pb2.FunnelGroup(key="p4", steps=whole.steps).ByteSize() + 6
    monkeypatch.setattr(funnel_request, "MAX_GROUP_BYTES", whole.ByteSize() + group * 3 // 2)
    assert groups(insights_pb2.BY_ITEM)[0] == ["p4"]


def test_a_breakdown_takes_the_first_products_of_an_event_and_says_so(store: Any) -> None:
    # An event of 150,000 products made 150,000 trails: 55 MB of memory an event.
    most = funnel_request.MAX_ITEMS_PER_EVENT
    many = [{"id": f"p{k:05}", "quantity": None, "price": 0.0, "currency": "",
             "categories": []} for k in range(most + 50)]
    catalog, _ = stored_history(store, [
        drawn_event("detail-page-view", "v-many", T0, products=many),
        drawn_event("detail-page-view", "v-one", T0 + 1, products=many[-1:])], [], None)
    answer = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent=catalog, steps=[insights_pb2.FunnelStep(event_type="detail-page-view")],
        breakdown=insights_pb2.BY_ITEM)))
    assert answer.steps[0].entrants == 2  # (the whole funnel: every entrant)
    groups = {g.key: g.steps[0].entrants for g in answer.groups}
    # the first `most` of the first event's, and the last (named alone by the second)
    assert groups == {**{f"p{k:05}": 1 for k in range(most)}, f"p{most + 49:05}": 1}
    assert list(answer.notes) == [f"events that name more than {most} products, of which the "
                                  f"first {most} were counted: 1"]


def test_a_talent_funnel_by_job_takes_the_first_jobs_of_an_event(store: Any) -> None:
    # Counted by JOB and broken down by job, each of an event's jobs was compared with
    # each: 37,000 jobs (1.5 MB) made 1.4 billion comparisons.
    most = funnel_request.MAX_ITEMS_PER_EVENT
    tenant, _ = stored_client_events(store, [{
        "id": "e1", "request": "r1", "type": "VIEW", "time": T0,
        "jobs": [f"{JOB_TENANT}/jobs/j{k:05}" for k in range(most * 100)]}])
    request = insights_pb2.RunFunnelRequest(
        parent=tenant, steps=[insights_pb2.FunnelStep(event_type="VIEW")],
        count_by=insights_pb2.JOB, breakdown=insights_pb2.BY_ITEM)
    answer = funnel_request.run(store, funnel_request.parse(request))
    assert answer.steps[0].entrants == most
    assert sorted(g.key for g in answer.groups) == [f"{tenant}/jobs/j{k:05}"
                                                    for k in range(most)]
    assert list(answer.notes) == [f"events that name more than {most} jobs, of which the "
                                  f"first {most} were counted: 1"]
    # counted by request, the event is one entrant whatever its jobs, and cut in its groups
    request.count_by = insights_pb2.REQUEST
    answer = funnel_request.run(store, funnel_request.parse(request))
    assert answer.steps[0].entrants == 1 and len(answer.groups) == most
    request.breakdown = insights_pb2.BREAKDOWN_UNSPECIFIED  # (its jobs not read: no note)
    assert list(funnel_request.run(store, funnel_request.parse(request)).notes) == []


def test_a_breakdown_keeps_the_groups_with_the_most_entrants_at_the_first_step(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every group's path was walked (points sorted, then bisected) and counted before
    # all but MAX_GROUPS were dropped: ten events naming 60,000 products each took 10 s
    # and 640 MB. Now a retail group's point is walked as it is read (funnel.Walks:
    # a few steps' work, what gathering it cost) and only the kept groups are counted.
    def viewed(first: int) -> list[dict[str, Any]]:
        return [{"id": f"p{k:05}", "quantity": None, "price": 0.0, "currency": "",
                 "categories": []} for k in range(first, first + 300)]
    # visitor k views products 100k .. 100k + 299: p00200 .. p00999 have three
    # entrants at the first step, p00100 .. p00199 and p01000 .. p01099 two, the
    # other 200 one.
    catalog, _ = stored_history(store, [
        drawn_event("detail-page-view", f"v{k}", T0 + k, products=viewed(100 * k))
        for k in range(10)], [], None)
    monkeypatch.setattr(funnel_request, "MAX_GROUPS", 900)
    monkeypatch.setattr(funnel_request, "MAX_ITEMS_PER_EVENT", 300)  # (each event's all)
    answer = funnel_request.run(store, funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent=catalog, steps=[insights_pb2.FunnelStep(event_type="detail-page-view"),
                               insights_pb2.FunnelStep(event_type="add-to-cart")],
        breakdown=insights_pb2.BY_ITEM)))
    assert answer.steps[0].entrants == 10
    groups = {g.key: g.steps[0].entrants for g in answer.groups}
    # the 800 of three, then the first 100 of two by key text
    assert groups == {f"p{k:05}": 3 if k >= 200 else 2 for k in range(100, 1000)}
    assert list(answer.notes) == [
        "900 of 1,200 product groups, those with the most entrants at the first step: an "
        "answer holds at most 900 groups and 3 MiB"]


def test_a_step_condition_longer_than_any_stored_value_is_refused() -> None:
    # Each step comes back in the answer once per group: its texts are bounded.
    step = insights_pb2.FunnelStep(event_type="detail-page-view", product_id="p" * 129,
                                   category="c" * 5001)
    with pytest.raises(InvalidArgument) as caught:
        funnel_request.parse(insights_pb2.RunFunnelRequest(
            parent="projects/p/locations/global/catalogs/c", steps=[step]))
    assert [v.field for v in caught.value.violations] == ["steps[0].product_id",
                                                          "steps[0].category"]


@settings(max_examples=400, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 20), st.sampled_from("abc")), max_size=25),
       steps=st.text("abc", min_size=1, max_size=5), window=st.integers(0, 12))
def test_a_funnel_of_types_walks_a_string_of_kinds_as_path_walks_points(
        events: list[tuple[int, str]], steps: str, window: int) -> None:
    events.sort(key=lambda e: e[0])  # stable: ties keep the order drawn (their storage order)
    points = [(time, order, sum(1 << i for i, step in enumerate(steps) if step == kind))
              for order, (time, kind) in enumerate(events)]
    expected = funnel.path([p for p in points if p[2]], len(steps), window)
    kinds, times = "".join(k for _, k in events), [t for t, _ in events]
    assert funnel.kind_path(kinds, times, steps, window) == expected


@settings(max_examples=400, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 20), st.sampled_from("ab"),
                                 st.integers(0, 15)), max_size=30),
       steps=st.integers(1, 4), window=st.integers(0, 12))
def test_walks_in_time_order_find_the_path_that_path_finds_of_all_the_points(
        events: list[tuple[int, str, int]], steps: int, window: int) -> None:
    # (bits drawn freely: a point may match several steps, or none)
    events.sort(key=lambda e: e[0])  # stable: ties keep the order drawn (their storage order)
    walks = funnel.Walks(steps, window)
    for time, who, bits in events:
        walks.add(who, time, bits % (1 << steps))
    found = walks.paths()
    for who in "ab":
        points = [(time, order, bits % (1 << steps))
                  for order, (time, whose, bits) in enumerate(events) if whose == who]
        expected = funnel.path([p for p in points if p[2]], steps, window)
        assert found.get(who, []) == expected


def test_entrant_events_come_in_time_then_storage_order_however_they_were_stored(
        store: Any) -> None:
    catalog, _ = stored_history(store, [
        drawn_event("add-to-cart", "v0", T0 + HOUR, user="u0"),
        drawn_event("home-page-view", "v0", T0, user="u0"),  # earlier, stored later
        drawn_event("detail-page-view", "v0", T0 + HOUR, user="u0"),  # a tie, stored after
        drawn_event("search", "v0", T0),  # a type not asked for
        drawn_event("home-page-view", "v1", T0 + DAY),  # no user
        drawn_event("home-page-view", "v2", T0 + 2 * DAY)], [], None)  # after the range
    query = EventQuery(catalog, after=TimeBound(T0 * 10**6, True),
                       before=TimeBound((T0 + 2 * DAY) * 10**6, False))
    kinds = {"home-page-view": "a", "detail-page-view": "b", "add-to-cart": "c"}
    by_visitor = list(store.entrant_events(query, kinds, "visitor_id"))
    assert sorted((who, n, [t // 10**6 - T0 for t in times], k)
                  for who, n, times, k in by_visitor) \
        == [("v0", 3, [0, HOUR, HOUR], "acb"), ("v1", 1, [DAY], "a")]
    by_user = list(store.entrant_events(query, kinds, "user_id"))
    assert sorted((who, n, k) for who, n, _, k in by_user) == [("", 1, ""), ("u0", 3, "acb")]
    assert store.time_bounds(catalog) == (T0 * 10**6, (T0 + 2 * DAY) * 10**6)
    assert store.time_bounds(catalog + "x") is None
    with pytest.raises(ValueError):
        next(store.entrant_events(query, {"search": "'"}, "visitor_id"))



def test_an_entrant_stream_left_unfinished_holds_no_read_open(
        store: Any, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A funnel whose caller went (or failed) leaves its stream after a few entrants:
    # SQLite's read transaction, left open, held back every checkpoint of the WAL;
    # PostgreSQL's, a pooled connection idle in a transaction.
    monkeypatch.setattr(insights_sql, "GROUPS_AT_ONCE", 1)
    store.write_user_events([test_store.row(f"v{i}") for i in range(5)])
    stream = store.entrant_events(EventQuery(test_store.CATALOG), {"home-page-view": "a"},
                                  "visitor_id")
    assert next(stream)[1] == 1
    stream.close()
    store.write_user_events([test_store.row(f"w{i}") for i in range(5)])
    if store_url.startswith("sqlite:"):
        other = sqlite3.connect(store_url.removeprefix("sqlite:///"), timeout=0.2)
        try:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            other.close()
        assert busy == 0
    elif store_url.startswith("postgresql:"):
        with psycopg.connect(store_url, autocommit=True) as other:
            assert other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'").fetchone() == (0,)
    assert len(list(store.entrant_events(EventQuery(test_store.CATALOG),
                                         {"home-page-view": "a"}, "visitor_id"))) == 10



def test_totals_whose_caller_went_stop_within_the_visits_read(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The visits (a row per bucket, type and visitor) are streamed: a call whose caller
    # went read every one of them before the first check, between the pages after them.
    monkeypatch.setattr(read, "VISITS_CHECKED", 2, raising=False)
    store.write_user_events([test_store.row(f"v{i}") for i in range(20)])
    gone = threading.Event()
    handed: list[Any] = []
    stored_visits = store.visits

    def visits(*args: Any) -> Any:
        for row in stored_visits(*args):
            handed.append(row)
            gone.set()  # the caller goes once the read has begun
            yield row

    monkeypatch.setattr(store, "visits", visits)
    abandoned = loop._ABANDONED.set(gone)  # noqa: SLF001  # (as off_loop sets it)
    try:
        with pytest.raises(Cancelled):
            totals.compute_totals(store, insights_pb2.ComputeTotalsRequest(
                parent=test_store.CATALOG))
    finally:
        loop._ABANDONED.reset(abandoned)  # noqa: SLF001
    assert len(handed) <= 2  # of 20


def test_totals_whose_caller_went_leave_no_read_open(
        store: Any, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The call's exception (Cancelled) is kept by the future of its thread until the
    # loop lets it go; its traceback holds read.visits' frame. The visits' stream was
    # a local of that frame: SQLite's read transaction stayed open (every checkpoint
    # of the WAL held back), PostgreSQL's pooled connection idle in its transaction,
    # until the loop thread dropped the exception and closed them there.
    monkeypatch.setattr(read, "VISITS_CHECKED", 2, raising=False)
    monkeypatch.setattr(insights_sql, "STREAM_ROWS", 1)
    store.write_user_events([test_store.row(f"v{i}") for i in range(20)])
    gone = threading.Event()
    stored_visits = store.visits

    def visits(*args: Any) -> Any:
        for row in stored_visits(*args):
            gone.set()  # the caller goes once the read has begun
            yield row

    monkeypatch.setattr(store, "visits", visits)
    abandoned = loop._ABANDONED.set(gone)  # noqa: SLF001  # (as off_loop sets it)
    try:
        with pytest.raises(Cancelled) as kept:  # (kept, as a thread's future keeps it)
            totals.compute_totals(store, insights_pb2.ComputeTotalsRequest(
                parent=test_store.CATALOG))
    finally:
        loop._ABANDONED.reset(abandoned)  # noqa: SLF001
    open_reads = 0
    if store_url.startswith("sqlite:"):
        other = sqlite3.connect(store_url.removeprefix("sqlite:///"), timeout=0.2)
        try:
            open_reads, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            other.close()
    elif store_url.startswith("postgresql:"):
        with psycopg.connect(store_url, autocommit=True) as other:
            [(open_reads,)] = other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'").fetchall()
    del kept  # (a stream it held open would hold the next test's TRUNCATE, waiting for ever)
    assert open_reads == 0


type_steps = st.lists(st.builds(insights_pb2.FunnelStep,
                                event_type=st.sampled_from([*SHOP, "search"])),
                      min_size=1, max_size=4)


@EXAMPLES
@example(drawn=EDGES, duplicates=[], purged=None, steps=[], count_by="VISITOR", window=HOUR,
         breakdown="BY_DAY", span=(T0, T0 + 2 * HOUR))
@given(drawn=retail_events, duplicates=st.lists(st.integers(0, 29), max_size=5),
       purged=st.sampled_from([None, "v1"]), steps=st.one_of(st.just([]), type_steps),
       count_by=st.sampled_from(["VISITOR", "USER"]),
       window=st.sampled_from([HOUR, DAY, 10 * DAY]),
       breakdown=st.sampled_from(["BREAKDOWN_UNSPECIFIED", "BY_DAY"]),
       span=st.sampled_from([(None, None), (T0 + 6 * HOUR, T0 + 2 * DAY), (T0, T0 + HOUR)]))
def test_a_funnel_of_event_types_alone_gives_what_its_rows_give(
        store: Any, drawn: Any, duplicates: Any, purged: Any, steps: Any, count_by: str,
        window: int, breakdown: str, span: Any) -> None:
    """Grouped by the database and walked as strings, or read row by row and walked
    as points: ties, times stored out of order, duplicates, purged events, windows
    and ranges that end on an event."""
    catalog, _ = stored_history(store, drawn, duplicates, purged)
    request = funnel_of(catalog, steps, count_by, window, breakdown, span)
    spec = funnel_request.parse(request)
    assert funnel_request.run(store, spec) == funnel_request.run(store, spec, by_rows=True)


def test_a_funnel_of_event_types_alone_reads_no_row_per_event(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, _ = stored_history(store, EDGES, [], None)

    def row_by_row(*_: Any) -> None:
        raise AssertionError("read row by row")

    monkeypatch.setattr(read, "typed_pages", row_by_row)
    answer = funnel_request.run(store, funnel_request.parse(
        insights_pb2.RunFunnelRequest(parent=catalog)))
    assert [s.entrants for s in answer.steps] == [3, 3, 1, 0] and answer.events_read == 8


def test_the_cli_step_takes_every_condition_and_refuses_one_without_a_value() -> None:
    from server.insights.client import _step

    assert _step("search, searchQueryPresent=true") == {"eventType": "search",
                                                         "searchQueryPresent": True}
    assert _step("add-to-cart,productId=sku-1,attributeKey=k") == {
        "eventType": "add-to-cart", "productId": "sku-1", "attributeKey": "k"}
    # A condition without a value was dropped unsaid: the funnel ran without it.
    for bad, said in (("detail-page-view,productId", "a condition is FIELD=VALUE"),
                      ("search,searchQueryPresent=yes", "searchQueryPresent is true or false")):
        with pytest.raises(json_format.ParseError, match=said):
            _step(bad)


def test_the_cli_step_reads_a_quoted_value_and_refuses_a_condition_twice() -> None:
    from server.insights.client import _step

    # quoted as in a filter: the quotes were taken as part of the value (0 entrants)
    assert _step('detail-page-view,productId="sku-1",category=\'Shoes\'') == {
        "eventType": "detail-page-view", "productId": "sku-1", "category": "Shoes"}
    # the last of two was taken, unsaid
    for twice in ("detail-page-view,productId=sku-1,productId=sku-2",
                  "detail-page-view,productId=sku-1,product_id=sku-2"):
        with pytest.raises(json_format.ParseError, match="is given twice"):
            _step(twice)
    # a quote at one end was kept in the value; an empty one named what was never typed
    for bad, said in (('VIEW,job="j1', "job's value has a quote at one end only: '\"j1'"),
                      ("VIEW,job=", "job has no value"), ("VIEW,job=''", "job has no value")):
        with pytest.raises(json_format.ParseError, match=re.escape(said)):
            _step(bad)


@pytest.mark.parametrize(("job", "said"), [
    ("j1", "must be of the form"),  # a bare id over the API
    ("projects/p/tenants/other/jobs/j1", "is a job of projects/p/tenants/other; this funnel "
                                         "reads the events of projects/p/tenants/t"),
])
def test_a_talent_funnel_refuses_a_job_that_is_not_one_of_its_tenant(job: str,
                                                                     said: str) -> None:
    # (each matched nothing, unsaid: the funnel answered 0 entrants)
    request = insights_pb2.RunFunnelRequest(parent="projects/p/tenants/t", steps=[
        insights_pb2.FunnelStep(event_type="VIEW", job=job)])
    with pytest.raises(InvalidArgument) as refused:
        funnel_request.parse(request)
    [violation] = refused.value.violations
    assert violation.field == "steps[0].job" and said in violation.description, violation
    ok = insights_pb2.RunFunnelRequest(parent="projects/p/tenants/t", steps=[
        insights_pb2.FunnelStep(event_type="VIEW", job="projects/p/tenants/t/jobs/j1")])
    assert funnel_request.parse(ok).steps[0].job == "projects/p/tenants/t/jobs/j1"


def test_the_cli_names_a_tenants_job_by_its_id_as_talent_events_list_shows_it() -> None:
    import argparse

    from server.insights.client import _request

    args = argparse.Namespace(parent="projects/p/tenants/t", start="", end="",
                              insights_command="funnel", count_by=None, window=None,
                              breakdown=None, step=["IMPRESSION,job=j1",
                                                    "VIEW,job=projects/p/tenants/t/jobs/j2"])
    request = _request(args)
    assert [s.job for s in request.steps] == ["projects/p/tenants/t/jobs/j1",
                                              "projects/p/tenants/t/jobs/j2"]


@pytest.mark.parametrize(("text", "step"), [
    # (a comma in a quoted value cut it in two: "quoted as in a filter" could not hold one)
    ('detail-page-view,productId="a,b"', {"eventType": "detail-page-view", "productId": "a,b"}),
    ("search,category='Tents, 2p',attributeKey=color",
     {"eventType": "search", "category": "Tents, 2p", "attributeKey": "color"}),
    ("detail-page-view,productId=O'Brien", {"eventType": "detail-page-view",
                                             "productId": "O'Brien"}),
])
def test_a_cli_step_holds_commas_in_quoted_values(text: str, step: dict[str, str]) -> None:
    from server.insights import client

    assert client._step(text) == step


def test_the_cli_shows_an_amount_to_its_currencys_minor_unit() -> None:
    # "123.00 JPY" and "1.25 KWD": the console showed 123 JPY and 1.250 KWD
    from server.insights import client

    row = insights_pb2.ProductStats(product_id="sku", purchases=1, units=1)
    for currency, amount in (("USD", 20), ("JPY", 123), ("KWD", 1.25)):
        row.revenue.add(currency_code=currency, amount=amount)
    assert "revenue=20.00 USD,123 JPY,1.250 KWD " in client._row_text(row, "")
    daily = insights_pb2.ComputeTotalsResponse(revenue=[insights_pb2.DailyRevenue(
        day="2024-01-02", currency_code="JPY", revenue=1500, purchases=2)])
    assert list(client._text(daily, "totals", ""))[:1] == ["2024-01-02  JPY 1500 (2 purchases)"]


def test_a_step_of_one_of_googles_types_in_capitals_is_told_its_name() -> None:
    # the note offered no name for DETAIL-PAGE-VIEW (difflib tells case apart), while
    # a tenant's `--step view` is taken: a catalog's type is any text, kept as given
    spec = funnel_request.parse(insights_pb2.RunFunnelRequest(
        parent="projects/p/locations/global/catalogs/default_catalog",
        steps=[insights_pb2.FunnelStep(event_type="DETAIL-PAGE-VIEW")]))
    results = [insights_pb2.FunnelStepResult(step=spec.steps[0])]
    assert list(funnel_request._unknown_types(spec, results)) == [
        "step 1's event type 'DETAIL-PAGE-VIEW' is none of Google's (did you mean "
        "'detail-page-view'?), and no entrant reached it"]


def test_the_cli_says_counts_with_thousands_commas() -> None:
    # as `copy` and `reset` say theirs: "1046 events read" beside "1,060 rows"
    from server.insights.client import _text

    answer = insights_pb2.RunFunnelResponse(events_read=1046, steps=[
        insights_pb2.FunnelStepResult(step=insights_pb2.FunnelStep(event_type="search"),
                                      entrants=12345, conversion_from_previous=1,
                                      conversion_from_first=1)])
    text = list(_text(answer, "funnel", "projects/p/locations/global/catalogs/c"))
    assert text[2].split()[:2] == ["search", "12,345"] and text[3] == "1,046 events read", text
    totals = insights_pb2.ComputeTotalsResponse(distinct_visitors=2000, top_queries=[
        insights_pb2.SearchQueryCount(query="red", searches=1500, led_to_detail_view=1200)])
    assert list(_text(totals, "totals", "projects/p/locations/global/catalogs/c")) == [
        "distinct visitors: 2,000", "'red': 1,500 searches, 1,200 led to a detail view"]


def test_the_cli_says_a_rate_that_rounds_to_nothing_as_the_console_does() -> None:
    from server.insights.client import _rate

    # 25 of 166,000 read "0.0%", as if none converted; the console says "<0.1%"
    assert _rate(25 / 166_000, 166_000) == "<0.1%"
    assert (_rate(0.0, 166_000), _rate(0.0005, 2_000), _rate(1 / 3, 3)) == ("0.0%", "0.1%", "33.3%")
    assert _rate(0.0, 0) == "–"


def test_the_cli_says_a_median_time_as_the_console_does() -> None:
    """It printed the Duration's JSON: "0.016837500s" for 17 ms, "93784.500s" for a
    day and two hours; the console says "<0.1 s" and "1 d 2 h"."""
    from google.protobuf import duration_pb2

    from server.insights.client import _text

    def median(seconds: float) -> str:
        gap = duration_pb2.Duration()
        gap.FromNanoseconds(int(seconds * 1e9))
        answer = insights_pb2.RunFunnelResponse(steps=[
            insights_pb2.FunnelStepResult(step=insights_pb2.FunnelStep(event_type="VIEW"),
                                          entrants=1),
            insights_pb2.FunnelStepResult(
                step=insights_pb2.FunnelStep(event_type="APPLICATION_START"), entrants=1,
                median_time_from_previous=gap)])
        line = list(_text(answer, "funnel", "projects/p/tenants/t"))[3]
        return line.split("%  ")[-1]

    assert [median(s) for s in (0.0168375, 3, 7.5, 90, 3600, 5417.28, 93784.5)] == [
        "<0.1 s", "3 s", "7.5 s", "1 min 30 s", "1 h", "1 h 30 min", "1 d 2 h"]
    assert median(90.5) == "1 min 31 s"  # half up, as the console's Math.round
    # ... and a tenth of a second, as its toFixed(1): round() wrote 0.25 s as 0.2 s
    assert [median(s) for s in (0.25, 1.25, 0.75, 59.96)] == ["0.3 s", "1.3 s", "0.8 s", "60 s"]


@pytest.mark.parametrize("text", ["2024-05-01T00:00:00+99:99", "2024-05-01T00:00:00-05:60",
                                  "2024-05-01T00:00:00+24:00"])
def test_the_cli_refuses_a_start_whose_offset_is_no_offset(text: str) -> None:
    import argparse

    from server.insights.cli import _time

    # Timestamp.FromJsonString read "+99:99" as 100 hours and 39 minutes
    with pytest.raises(argparse.ArgumentTypeError, match="is no offset"):
        _time(text)
    assert _time("2024-05-01T00:00:00+23:59") == "2024-05-01T00:00:00+23:59"


def test_an_order_may_name_a_field_as_the_rows_print_it(store: Any) -> None:
    """The CLI prints a row's fields by their JSON names (viewRate=20.0%), and the
    answer holds them so: an order copied from there is taken as the field's own name."""
    assert tables.parse_order("viewRate desc", tables.JOB_ORDERS, "") == ("view_rate", True)
    assert tables.parse_order("applicationFinishRate", tables.JOB_ORDERS, "") == (
        "application_finish_rate", False)
    assert tables.parse_order("viewToPurchaseRate asc", tables.PRODUCT_ORDERS, "") == (
        "view_to_purchase_rate", False)
    assert tables.parse_order("addToCarts", tables.PRODUCT_ORDERS, "") == ("add_to_carts", False)
    # a JSON name of the other table is no field of this one
    with pytest.raises(InvalidArgument) as caught:
        tables.list_product_stats(store, insights_pb2.ListProductStatsRequest(
            parent="projects/p/locations/global/catalogs/c", order_by="viewRate"))
    [violation] = caught.value.violations
    assert violation.field == "order_by", violation
    assert "(or its JSON name: viewToPurchaseRate for view_to_purchase_rate)" in \
        violation.description, violation
