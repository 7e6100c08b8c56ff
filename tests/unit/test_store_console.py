"""The console's store side (server/store/console.py) on every backend: memory, a
SQLite file and PostgreSQL (when FOOTFALL_TEST_POSTGRES_DSN is set)."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from footfall.talent.v4 import event_pb2
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from server import page_tokens
from server.console import client_filter, origin, queries
from server.errors import InvalidArgument
from server.store import ClientEventRow, EventQuery, console, open_store
from server.store.console import RejectionRow
from server.store.migrations import MIGRATIONS
from server.store.rows import LeaseLost, OperationRecord, Progress, Step, TimeBound

from . import test_store
from .joins import MadeBy
from .old_schema import make_old_schema
from .test_store import BRANCH, CATALOG, row, visitor

# The store contract's fixtures: every test here runs on memory, SQLite and PostgreSQL.
store_url, stores, store = test_store.store_url, test_store.stores, test_store.store
shared_url = test_store.shared_url

TENANT = "projects/p/tenants/t"


def client_event(event_id: str, tenant: str = TENANT, created: int = 1_000) -> ClientEventRow:
    return ClientEventRow(tenant, event_id, created, event_id.encode())


def test_user_events_newest_first_in_keyset_pages(store: Any) -> None:
    times = ["2024-01-03T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z",
             "2024-01-02T00:00:00Z", "2024-01-04T00:00:00Z"]
    store.write_user_events([row(f"v{i}", time=t) for i, t in enumerate(times)])
    store.write_user_events([row("other", catalog=CATALOG + "x")])
    seen, before = [], None
    while True:
        page = store.user_events_newest(EventQuery(CATALOG), 2, before)
        seen += [visitor(e.payload) for e in page]
        if len(page) < 2:
            break
        before = (page[-1].event_time_us, page[-1].id)
    # latest time first; of two at one time, the later stored first
    assert seen == ["v4", "v0", "v3", "v2", "v1"]


def test_user_events_newest_holding_some_bytes(store: Any) -> None:
    # The bytes are looked for in the database, in the event as stored (packed: its
    # session and product ids are among its bytes), each of them; pages go on alike.
    store.write_user_events([
        row("v0", sessionId="s-3", time="2024-01-01T00:00:00Z"),
        row("v1", sessionId="s-30", time="2024-01-02T00:00:00Z"),
        row("v2", sessionId="s-4", time="2024-01-03T00:00:00Z",
            productDetails=[{"product": {"id": "sku-é"}}]),
        row("v3", sessionId="s-3", time="2024-01-04T00:00:00Z",
            productDetails=[{"product": {"id": "sku-é"}}]),
        row("s-3", time="2024-01-05T00:00:00Z")])  # (a visitor id is a column, not stored)
    store.write_user_events([row("other", catalog=CATALOG + "x", sessionId="s-3")])

    def holding(*needles: bytes, limit: int = 10) -> list[str]:
        seen, before = [], None
        while page := store.user_events_newest(EventQuery(CATALOG), limit, before,
                                               containing=needles):
            seen += [visitor(e.payload) for e in page]
            before = (page[-1].event_time_us, page[-1].id)
        return seen

    assert holding(b"s-3") == ["v3", "v1", "v0"]
    assert holding(b"s-3", limit=1) == ["v3", "v1", "v0"]
    assert holding("sku-é".encode(), b"s-3") == ["v3"]
    assert holding(b"s-5") == []
    assert holding() == ["s-3", "v3", "v2", "v1", "v0"]


def test_the_time_an_event_some_places_past_a_position_has(store: Any) -> None:
    days = [1, 3, 2, 2, 4]  # newest first: 4, 3, 2, 2 (the later stored first), 1
    store.write_user_events([row(f"v{i}", "rare" if d == 1 else "home-page-view",
                                 time=f"2024-01-0{d}T00:00:00Z") for i, d in enumerate(days)])
    store.write_user_events([row("other", catalog=CATALOG + "x")])
    day = 86_400_000_000
    first = 1_704_067_200_000_000  # 2024-01-01
    rare = EventQuery(CATALOG, event_types=("rare",))  # its other terms are left out
    assert [store.user_event_time_past(rare, None, n) for n in range(6)] == \
        [first + 3 * day, first + 2 * day, first + day, first + day, first, None]
    newest = store.user_events_newest(EventQuery(CATALOG), 2)
    position = (newest[-1].event_time_us, newest[-1].id)
    assert store.user_event_time_past(rare, position, 0) == first + day
    assert store.user_event_time_past(rare, position, 3) is None
    since = TimeBound(first + day, True)
    assert store.user_event_time_past(EventQuery(CATALOG, after=since), None, 3) == first + day
    assert store.user_event_time_past(EventQuery(CATALOG, after=since), None, 4) is None


def test_a_visitors_events_newest_first(store: Any) -> None:
    store.write_user_events([row(v, time=f"2024-01-0{d}T00:00:00Z")
                             for d, v in ((1, "a"), (3, "a"), (2, "b"), (2, "a"))])
    page = store.user_events_newest(EventQuery(CATALOG, visitor_ids=("a",)), 2)
    assert [e.event_time_us for e in page] == [1_704_240_000_000_000, 1_704_153_600_000_000]
    rest = store.user_events_newest(EventQuery(CATALOG, visitor_ids=("a",)), 2,
                                    (page[-1].event_time_us, page[-1].id))
    assert [e.event_time_us for e in rest] == [1_704_067_200_000_000]


def test_stored_events_say_how_and_when_they_came(store: Any) -> None:
    origin.set_transport(origin.PIXEL)
    try:
        first = row("a")
    finally:
        origin.set_transport(origin.UNSPECIFIED)
    store.write_user_events([first, row("b", joined=False)])
    a, b = store.user_events_after(EventQuery(CATALOG), 0, 10)
    assert (a.transport, b.transport) == (origin.PIXEL, origin.UNSPECIFIED)
    assert a.received_us == first.received_us > 0
    assert (a.joined, b.joined) == (True, False)
    assert store.user_events_after(EventQuery(CATALOG, joined=False), 0, 10) == [b]
    assert store.user_events_after(EventQuery(CATALOG), a.id, 10) == [b]
    assert store.last_id("user_events") == b.id


def test_client_events_latest_create_time_first_in_keyset_pages(store: Any) -> None:
    """Issue 13: newest first by create time (they came in the order stored, so an
    event sent late stood on top), of one time the last stored first; pages of any
    size give each event once, however many share a time."""
    for event_id, created in (("e1", 3), ("e2", 1), ("e3", 2), ("e4", 2), ("e5", 4),
                              ("e6", 2)):
        store.create_client_event(client_event(event_id, created=created))
    store.create_client_event(client_event("e9", tenant=TENANT + "x", created=5))
    everything = ["e5", "e1", "e6", "e4", "e3", "e2"]
    assert [e.payload.decode() for e in store.client_events_newest(TENANT, 10)] == everything
    for size in (1, 2, 3, 4):
        seen, before = [], None
        while page := store.client_events_newest(TENANT, size, before):
            seen += [e.payload.decode() for e in page]
            before = (page[-1].create_time_us, page[-1].id)
        assert seen == everything, size
    newest = store.client_events_newest(TENANT, 2)
    assert [e.create_time_us for e in newest] == [4, 3]
    # a watch goes on in the order stored
    assert [e.payload for e in store.client_events_after(TENANT, newest[-1].id, 10)] == \
        [b"e2", b"e3", b"e4", b"e5", b"e6"]


def test_the_console_lists_client_events_by_create_time_in_pages_of_its_tokens(
        store: Any) -> None:
    """ListClientEvents (and so `talent-events list`): latest create time first, each
    event once across pages of any size, a page token going on after the last one
    shown; a token of the former form (an id alone) is not one of this list."""
    times = {"a": "2026-12-01T10:00:00Z", "b": "2026-12-01T09:00:00Z",
             "c": "2026-12-01T11:00:00.000001Z", "d": "2026-12-01T10:00:00Z",
             "e": "2026-12-01T10:00:00Z", "f": "2026-12-01T08:00:00Z"}
    for event_id, created in times.items():
        event = event_pb2.ClientEvent(event_id=event_id)
        event.create_time.FromJsonString(created)
        store.create_client_event(ClientEventRow(
            TENANT, event_id, event.create_time.ToMicroseconds(), event.SerializeToString()))
    newest = ["c", "e", "d", "a", "b", "f"]
    for size in (1, 2, 4, 6, 100):
        seen, token = [], ""
        while True:
            page = queries.list_client_events(store, TENANT, size, token)
            seen += [e.client_event.event_id for e in page.client_events]
            token = page.next_page_token
            if not token:
                break
        assert seen == newest, size
    with pytest.raises(InvalidArgument) as refused:
        # (a token as an earlier Footfall made them: the position, unsigned)
        unsigned = f"3.{page_tokens.question(TENANT)}".encode()
        queries.list_client_events(store, TENANT, 2, base64.urlsafe_b64encode(unsigned).decode())
    assert [v.field for v in refused.value.violations] == ["page_token"]


def test_a_client_event_filter_reads_a_bounded_number_of_rows_a_call(
        store: Any, monkeypatch: Any) -> None:
    """ListClientEvents by a type no column holds: a call stops once it has read
    SCAN_LIMIT rows and spent LIST_SECONDS, its page short (even empty) with a token
    that goes on, every selected event once across the calls; counts agree."""
    monkeypatch.setattr(queries, "SCAN_LIMIT", 10)
    monkeypatch.setattr(queries, "LIST_SECONDS", 0.0)
    for n in range(250):
        event = event_pb2.ClientEvent(event_id=f"e{n}", request_id=f"r{n % 7}")
        event.create_time.FromMicroseconds(1_000_000 * n)
        event.job_event.type = 2 if n % 50 == 7 else 1  # VIEW, else IMPRESSION
        event.job_event.jobs.append(f"{TENANT}/jobs/j{n % 3}")
        store.create_client_event(ClientEventRow(TENANT, event.event_id,
                                                 event.create_time.ToMicroseconds(),
                                                 event.SerializeToString()))
    views = client_filter.parse("eventType = VIEW", TENANT)
    seen, token, calls = [], "", 0
    while True:
        page = queries.list_client_events(store, views, 2, token)
        calls += 1
        seen += [e.client_event.event_id for e in page.client_events]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["e207", "e157", "e107", "e57", "e7"] and calls >= 3
    assert queries.count_client_events(store, views) == 5
    for text, expected in (('requestId = "r3"', 36), (f'job = "{TENANT}/jobs/j1"', 83),
                           # (a job's id alone, as the lists print it: it found none)
                           ('job = "j1"', 83),
                           (f'job = "{TENANT}/jobs/j1" requestId = "r3"', 12),
                           ('eventId = "e7" eventType = VIEW', 1),
                           ('createTime > "1970-01-01T00:00:10Z"', 239),
                           ('createTime >= "1970-01-01T00:00:10Z" '
                            'createTime < "1970-01-01T00:00:20Z"', 10)):
        events = client_filter.parse(text, TENANT)
        assert queries.count_client_events(store, events) == expected, text
        listed = queries.list_client_events(store, events, 1000, "")
        while listed.next_page_token:  # (short pages of the bounded reads)
            more = queries.list_client_events(store, events, 1000, listed.next_page_token)
            listed.client_events.extend(more.client_events)
            listed.next_page_token = more.next_page_token
        assert len(listed.client_events) == expected, text


def test_a_tenants_newest_client_events_are_read_from_its_time_index(store: Any) -> None:
    """Backwards along (tenant, create time, id), no sort of the tenant's events: on
    SQLite and on PostgreSQL (EXPLAIN), the first page and a later one."""
    # (enough that PostgreSQL's planner weighs the index against a sort: at a few
    # hundred rows it reads the table and sorts, as it should)
    dialect = store._sql.dialect.name
    numbers = ("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE "
               "i < 29999) " if dialect == "sqlite" else "")
    source = "n" if dialect == "sqlite" else "generate_series(0, 29999) AS i"
    store._write(lambda db: db.execute(store._sql.dialect.spell(
        f"{numbers}INSERT INTO client_events (tenant, event_id, create_time_us, event) "
        f"SELECT ? || (i - (i / 3) * 3), 'e' || i, i - (i / 500) * 500, ? FROM {source}"),
        (TENANT, b"x")))
    if dialect == "postgresql":
        store._write(lambda db: db.execute("ANALYZE client_events"))
    seen: list[tuple[str, list[Any]]] = []
    fetch = store._fetch

    def recorded(sql: str, params: Any) -> list[Any]:
        seen.append((sql, list(params)))
        return fetch(sql, params)

    store._fetch = recorded
    store.client_events_newest(f"{TENANT}1", 50)
    store.client_events_newest(f"{TENANT}1", 50, (480, 29_000))  # (a second page)
    store._fetch = fetch
    for sql, params in seen:
        if dialect == "postgresql":
            plan = [line for (line,) in fetch(f"EXPLAIN {sql}", params)]
            [scan] = [n for n, line in enumerate(plan) if "client_events_time" in line]
            assert "Index Scan Backward using client_events_time" in plan[scan], plan
            assert "Limit" in plan[scan - 1], plan  # (no Sort between them)
        else:
            plan = fetch(f"EXPLAIN QUERY PLAN {sql}", params)
            [(_, page, _, how)] = [row for row in plan if "client_events_time" in row[3]]
            assert how.startswith("SEARCH client_events USING INDEX client_events_time "
                                  "(tenant=?"), plan
            assert not [row for row in plan if row[1] == page and "TEMP B-TREE" in row[3]], plan


def test_rejections_stay_within_their_count_and_age(store: Any) -> None:
    def keep(n: int, project: str = "p", time_us: int = 10_000, keep: int = 5,
             since_us: int = 0) -> None:
        store.add_rejections([RejectionRow(project, f"projects/{project}", time_us,
                                           f"r{n}".encode())], keep, since_us).result()

    for n in range(8):
        keep(n)
    keep(8, project="q")
    assert [r for _, r in store.rejections_newest(None, 100)] == \
        [b"r8", b"r7", b"r6", b"r5", b"r4"]
    assert [r for _, r in store.rejections_newest("p", 2)] == [b"r7", b"r6"]
    last = store.rejections_newest("p", 1)[0][0]
    assert [r for _, r in store.rejections_newest("p", 10, last)] == [b"r6", b"r5", b"r4"]
    assert [r for _, r in store.rejections_after("q", 0, 10)] == [b"r8"]
    keep(9, time_us=20_000, since_us=15_000)  # the older ones are forgotten
    assert [r for _, r in store.rejections_after(None, 0, 10)] == [b"r9"]


def test_rejections_of_one_parent(store: Any) -> None:
    catalog = "projects/p/locations/global/catalogs/c"
    for n, parent in enumerate((catalog, "projects/p", catalog + "x", catalog)):
        store.add_rejections([RejectionRow("p", parent, 1, f"r{n}".encode())], 10, 0).result()
    store.add_rejections([RejectionRow("q", catalog.replace("/p/", "/q/"), 1, b"q")],
                         10, 0).result()
    assert [r for _, r in store.rejections_newest("p", 10, parent=catalog)] == [b"r3", b"r0"]
    last = store.rejections_newest("p", 1, parent=catalog)[0][0]
    assert [r for _, r in store.rejections_newest("p", 10, last, catalog)] == [b"r0"]
    assert [r for _, r in store.rejections_after("p", 0, 10, catalog)] == [b"r0", b"r3"]
    assert [r for _, r in store.rejections_after("p", 0, 10, "projects/p")] == [b"r1"]
    assert store.rejections_after("q", 0, 10, catalog) == []


def test_a_flood_of_one_projects_refusals_leaves_the_others(store: Any) -> None:
    """Each project keeps its latest `keep_per_project`, all of them the latest
    `keep`: refused requests of one project no longer push out another's."""
    def keep(project: str, n: int) -> None:
        store.add_rejections([RejectionRow(project, f"projects/{project}", 1, f"{project}{n}"
                                           .encode())], 10, 0, keep_per_project=3).result()

    keep("p", 0)
    keep("p", 1)
    for n in range(6):
        keep("flood", n)
    assert [r for _, r in store.rejections_newest(None, 100)] == \
        [b"flood5", b"flood4", b"flood3", b"p1", b"p0"]
    store.add_rejections([RejectionRow("q", "projects/q", 1, b"q0")] * 4, 4, 0,
                         keep_per_project=10).result()
    assert [r for _, r in store.rejections_newest(None, 100)] == [b"q0"] * 4  # the total


def test_keeping_refusals_works_in_proportion_to_those_added_not_those_kept(
        tmp_path: Path) -> None:
    """The trim to the last `keep` counts the rows (SQLite counts the pages of an
    index) and deletes from the oldest end: finding the last `keep` from the newest
    end read every row kept, 2.2 ms at 12,000 rows for each job of refusals (ten a
    second under a flood), whatever the job added."""
    keep = 10_000
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    try:
        store.add_rejections([RejectionRow("p", "projects/p", n, b"r%d" % n)
                              for n in range(keep)], keep, 0).result()
        steps = [0]

        def stepped() -> int:
            steps[0] += 1
            return 0  # (go on)

        store._writer_conn.set_progress_handler(stepped, 100)  # each 100 VM instructions
        store.add_rejections([RejectionRow("p", "projects/p", n, b"r%d" % n)
                              for n in range(keep, keep + 10)], keep, 0).result()
        store._writer_conn.set_progress_handler(None, 0)
        kept = [r for _, r in store.rejections_newest(None, keep + 100)]
        assert kept == [b"r%d" % n for n in reversed(range(10, keep + 10))]
        assert steps[0] * 100 <= 2_000, steps  # (about 400 instructions; they were 20,400)
    finally:
        store.close()


def test_a_trim_alone_keeps_each_project_within_its_count(store: Any) -> None:
    """The trim made at start and every few minutes (no rows) cut only the total:
    a server restarted with a lower keep_per_project kept a project's older
    refusals past it until that project was refused again."""
    for project, count in (("p", 5), ("q", 2), ("", 4)):
        store.add_rejections([RejectionRow(project, f"projects/{project}", 1,
                                           f"{project}{n}".encode()) for n in range(count)],
                             100, 0).result()
    store.add_rejections([], 100, 0, keep_per_project=2).result()
    assert sorted(r for _, r in store.rejections_newest(None, 100)) == \
        [b"2", b"3", b"p3", b"p4", b"q0", b"q1"]


def test_data_sets_count_what_catalogs_and_tenants_hold(store: Any) -> None:
    store.write_user_events([row("a", time="2024-01-01T00:00:00Z"),
                             row("b", time="2024-01-02T00:00:00Z"),
                             row("c", catalog="projects/q/locations/global/catalogs/c")])
    store.create_client_event(client_event("e1"))
    catalogs, more = store.data_sets(False, "projects/p/")
    assert [(c.name, c.events, c.last_event_us) for c in catalogs] == \
        [(CATALOG, 2, 1_704_153_600_000_000)] and not more
    assert catalogs[0].last_received_us is not None
    tenants, _ = store.data_sets(True, "projects/p/")
    assert [(t.name, t.events, t.last_event_us) for t in tenants] == [(TENANT, 1, 1_000)]
    every, _ = store.data_sets(False)
    assert len(every) == 2


def test_data_sets_come_a_page_at_a_time(store: Any) -> None:
    """By name, after a given one, at most `limit`, saying whether more follow; a
    prefix keeps to one project (projects/p2 sorts between projects/p and p3)."""
    projects = ("p", "p2", "p3")

    def catalog(project: str, i: int) -> str:
        return f"projects/{project}/locations/global/catalogs/c{i}"

    store.write_user_events([row(f"v{i}", catalog=catalog(p, i)) for p in projects
                             for i in range(3)])
    for p in projects:
        for t in range(3):
            store.create_client_event(client_event(f"e-{p}-{t}", f"projects/{p}/tenants/t{t}"))

    def names(tenants: bool, prefix: str, after: str, limit: int) -> tuple[list[str], bool]:
        rows, more = store.data_sets(tenants, prefix, after, limit)
        return [r.name.split("/")[1] + "/" + r.name.rsplit("/", 1)[1] for r in rows], more

    assert names(False, "projects/p/", "", 2) == (["p/c0", "p/c1"], True)
    assert names(False, "projects/p/", catalog("p", 1), 2) == (["p/c2"], False)
    assert names(False, "projects/p2/", "", 3) == (["p2/c0", "p2/c1", "p2/c2"], False)
    assert names(False, "", catalog("p2", 2), 2) == (["p3/c0", "p3/c1"], True)
    assert names(True, "projects/p3/", "", 5) == (["p3/t0", "p3/t1", "p3/t2"], False)
    assert names(True, "projects/p/", "projects/p/tenants/t0", 1) == (["p/t1"], True)
    assert names(True, "", "", 0) == ([], True)  # none asked: are there any?
    assert names(True, "projects/q/", "", 0) == ([], False)


def test_catalogs_of_products_only_are_data_sets_too(store: Any) -> None:
    """A shop loads its catalog before its first event comes: a catalog holding only
    products was in no list, so the console could not show its products or its
    import's operation."""
    def catalog(name: str) -> str:
        return f"projects/p/locations/global/catalogs/{name}"

    store.write_user_events([row("v", catalog=catalog("b-events")),
                             row("v", catalog=catalog("d-both"))])
    for name in ("a-products", "c-products", "d-both", "e-products"):
        for branch in ("0", "1"):  # (two branches: one catalog)
            store.create_product(f"{catalog(name)}/branches/{branch}", "sku", b"")
    for counted in (True, False):
        rows, more = store.data_sets(False, "projects/p/", "", 10, counted)
        assert [(r.name.rsplit("/", 1)[1], r.events) for r in rows] == [
            ("a-products", 0), ("b-events", counted), ("c-products", 0), ("d-both", counted),
            ("e-products", 0)] and not more
    assert all(r.last_received_us is None for r in rows)
    # `shop-eu`'s branches sort before `shop`'s ('-' before '/'): every page keeps both
    for name in ("shop", "shop-eu", "shop-us"):
        store.create_product(f"{catalog(name)}/branches/0", "sku", b"")
    paged, after = [], ""
    while True:
        rows, more = store.data_sets(False, "projects/p/", after, 1)
        paged += [r.name.rsplit("/", 1)[1] for r in rows]
        if not more:
            break
        after = rows[-1].name
    assert paged == ["a-products", "b-events", "c-products", "d-both", "e-products", "shop",
                     "shop-eu", "shop-us"], paged
    for name in ("shop", "shop-eu", "shop-us"):
        store.reset_catalog(catalog(name))
    # a page at a time, the two kinds merged by name
    first, more = store.data_sets(False, "projects/p/", "", 2)
    assert [r.name for r in first] == [catalog("a-products"), catalog("b-events")] and more
    rest, more = store.data_sets(False, "projects/p/", first[-1].name, 2)
    assert [r.name for r in rest] == [catalog("c-products"), catalog("d-both")] and more
    last, more = store.data_sets(False, "projects/p/", rest[-1].name, 2)
    assert [r.name for r in last] == [catalog("e-products")] and not more


def test_data_sets_by_name_alone_read_no_event(store: Any, monkeypatch: Any) -> None:
    """Counting a catalog reads each of its events' index entries (about 0.1 s a
    million on SQLite), and the console's chooser asked every 3 s: it asks for names."""
    store.write_user_events([row("a"), row("b", catalog=CATALOG + "x")])
    fetch = store._fetch
    reads: list[str] = []

    def counting(query: str, params: Any) -> Any:
        reads.append(query)
        return fetch(query, params)

    monkeypatch.setattr(store, "_fetch", counting)
    rows, more = store.data_sets(False, "projects/p/", "", 10, counted=False)
    assert [(r.name, r.events, r.last_event_us, r.last_received_us) for r in rows] == \
        [(CATALOG, 0, 0, None), (CATALOG + "x", 0, 0, None)] and not more
    assert len(reads) == 2  # the names (of catalogs with events, with products); no count
    rows, _ = store.data_sets(False, "projects/p/", "", 10)
    assert [r.events for r in rows] == [1, 1] and len(reads) == 6  # the names, a count each


def test_data_sets_leave_out_one_emptied_while_they_are_read(store: Any,
                                                             monkeypatch: Any) -> None:
    """A catalog listed, then emptied (a reset, a purge, retention) before it is
    counted, is left out; before, its count found no latest row and the console's
    ListCatalogs answered INTERNAL."""
    store.write_user_events([row("a"), row("b", catalog=CATALOG + "x")])
    fetch = store._fetch
    reads: list[str] = []

    def fetch_then_reset(query: str, params: Any) -> Any:
        found = fetch(query, params)
        reads.append(query)
        if len(reads) == 1:  # the catalogs are listed: one is emptied now
            store.reset_catalog(CATALOG)
        return found

    monkeypatch.setattr(store, "_fetch", fetch_then_reset)
    catalogs, _ = store.data_sets(False)
    assert [(c.name, c.events) for c in catalogs] == [(CATALOG + "x", 1)]


def test_reset_catalog_forgets_only_that_catalog(store: Any) -> None:
    store.write_user_events([row("a"), row("b"), row("c", catalog=CATALOG + "x")])
    store.create_operation(OperationRecord(f"{CATALOG}/operations/op-1", "k", False, 1, b"", b""))
    store.create_operation(OperationRecord(f"{CATALOG}/operations/op-2", "k", False, 1, b"", b""))
    store.claim_operation("me", 0, 10**12, lambda _: False)
    store.run_step(f"{CATALOG}/operations/op-1", "me", Step(), 0,
                   lambda _: Progress(b"", b"", True))
    store.create_product(BRANCH, "sku", b"product")
    store.add_rejections([RejectionRow("p", CATALOG, 1, b"r"),
                          RejectionRow("p", CATALOG + "x", 1, b"r")], 100, 0).result()
    counts = store.reset_catalog(CATALOG)
    assert counts == (2, 1, 1, 1, 1)  # the running operation stays, cancelled
    assert store.count_user_events(EventQuery(CATALOG)) == 0
    assert store.count_user_events(EventQuery(CATALOG + "x")) == 1
    cancelled = store.get_operation(f"{CATALOG}/operations/op-2")
    assert cancelled is not None and cancelled.done
    assert len(store.rejections_after(None, 0, 10)) == 1
    assert [c.name for c in store.data_sets(False)[0]] == [CATALOG + "x"]


def test_a_reset_cancels_its_catalogs_running_operations_and_their_next_step_writes_nothing(
        store: Any) -> None:
    """An import left running by a test stored its events in the catalog after the
    reset, under the next test's eyes: the reset ends it CANCELLED, naming itself, in
    its transaction, and its holder's next step writes nothing. An export (it writes
    nothing in the catalog) is asked to cancel, as CancelOperation does."""
    importing, queued, export, beside = (
        f"{CATALOG}/operations/import-user-events-1", f"{CATALOG}/operations/purge-2",
        f"{CATALOG}/operations/export-user-events-3", f"{CATALOG}x/operations/import-4")
    for name in (importing, queued, export, beside):
        store.create_operation(OperationRecord(
            name, name.rpartition("/")[2].rpartition("-")[0], False, 1, b"request",
            operations_pb2.Operation(name=name).SerializeToString()))
    claimed = store.claim_operation("me", 0, 10**12, lambda _: False,
                                    kinds=("import-user-events",))
    assert claimed is not None and claimed.name == importing

    def progress(_: Any) -> Progress:
        return Progress(b"1", operations_pb2.Operation(name=importing).SerializeToString(),
                        False)

    store.run_step(importing, "me", Step(insert_events=[row("before")]), 10**12, progress)
    counts = store.reset_catalog(CATALOG)
    assert (counts.events, counts.operations, counts.cancelled) == (1, 0, 3)
    with pytest.raises(LeaseLost):  # (its holder's next batch, the reset done)
        store.run_step(importing, "me", Step(insert_events=[row("after")]), 10**12, progress)
    assert store.count_user_events(EventQuery(CATALOG)) == 0
    for name in (importing, queued):
        ended = store.get_operation(name)
        assert (ended.done, ended.cancel_requested, ended.lease_owner, ended.request) == \
            (True, True, None, b"")
        answer = operations_pb2.Operation.FromString(ended.operation)
        assert answer.name == name and answer.done
        assert answer.error.code == code_pb2.CANCELLED
        assert answer.error.message.startswith(f"cancelled by the reset of {CATALOG},")
    left = store.get_operation(export)
    assert (left.done, left.cancel_requested) == (False, True)
    assert not store.get_operation(beside).cancel_requested
    # nobody claims an ended one (nor takes it over: its lease is gone)
    assert store.claim_operation("you", 10**13, 10**12, lambda _: True,
                                 kinds=("import-user-events", "purge")) is None
    # a project's reset cancels those of its catalogs (and ended ones are left as they are)
    assert store.reset_project("p").cancelled == 2
    assert store.get_operation(beside).done
    assert operations_pb2.Operation.FromString(store.get_operation(beside).operation) \
        .error.message.startswith("cancelled by the reset of projects/p,")


def test_a_reset_catalog_takes_new_events(store: Any) -> None:
    """Its events are gone, its id is not: later writes and filters of the catalog
    work as before, reset after reset."""
    for _ in range(2):
        store.write_user_events([row("a", time="2024-01-01T00:00:00Z"), row("b")])
        assert store.reset_catalog(CATALOG).events == 2
    store.write_user_events([row("a", time="2024-01-02T00:00:00Z"), row("b")])
    assert [visitor(e.payload) for e in store.user_events_newest(
        EventQuery(CATALOG, visitor_ids=("a",)), 10)] == ["a"]
    assert store.count_user_events(EventQuery(CATALOG, visitor_ids=("b",))) == 1
    [(name, events)] = [(c.name, c.events) for c in store.data_sets(False)[0]]
    assert (name, events) == (CATALOG, 2)


def test_a_reset_leaves_out_what_another_replica_answered_before_it(
        shared_url: str, stores: Any) -> None:
    """A pixel (or write_async event) answered by one process before a reset that
    another served, and committed after it, is left out, with its lines of the
    rollups; one answered after the reset is kept, as is one its caller waited for
    (answered once stored), and those of a catalog the reset is not of. A
    project's reset leaves out its catalogs' alike (README, "Reset")."""
    answering, resetting = stores(), stores()
    other = CATALOG.replace("projects/p/", "projects/q/")
    viewed = {"productDetails": [{"product": {"id": "sku"}}]}

    def view(name: str, catalog: str = CATALOG) -> Any:
        return row(name, "detail-page-view", catalog=catalog, **viewed)

    for reset in (lambda: resetting.reset_catalog(CATALOG),
                  lambda: resetting.reset_project("p")):
        before, waited, elsewhere = view("before"), view("waited"), view("before", other)
        reset()
        after = view("after")
        answering.write_user_events([before, after, elsewhere], wait=False)
        answering.write_user_events([waited])
        answering.flush()
        assert sorted(visitor(e.payload) for e in answering.user_events_newest(
            EventQuery(CATALOG), 10)) == ["after", "waited"]
        assert [(p, views) for p, _, views, *_ in answering.product_days(CATALOG, None, None)
                if p == "sku"] == [("sku", 2)]
        assert answering.count_user_events(EventQuery(other)) == 1
        resetting.reset_project("q")


def test_a_reset_leaves_out_the_refusals_another_replica_made_before_it(
        shared_url: str, stores: Any) -> None:
    """A refusal made by one process before a reset that another served, and kept
    (up to 0.1 s later, see console.add_rejections) after it, is left out; one made
    after the reset is kept, as are those the reset is not of: of a catalog, a
    tenant, or a project (every refusal of it, README "Reset")."""
    keeping, resetting = stores(), stores()
    tenant, other = TENANT, CATALOG.replace("projects/p/", "projects/q/")

    def refusal(name: str, parent: str, earlier: int = 0) -> RejectionRow:
        """Made now, or `earlier` microseconds ago (before a reset that comes within
        the same one)."""
        return RejectionRow(parent.split("/")[1], parent, console.now_us() - earlier,
                            name.encode())

    for scope, reset in ((CATALOG, lambda: resetting.reset_catalog(CATALOG)),
                         (tenant, lambda: resetting.reset_tenant(tenant)),
                         ("projects/p", lambda: resetting.reset_project("p"))):
        before, elsewhere = refusal("before", scope, 1), refusal("elsewhere", other, 1)
        beside = refusal("beside", CATALOG if scope == tenant else tenant, 1)
        reset()
        after = refusal("after", scope)
        keeping.add_rejections([before, elsewhere, beside, after], 100, 0).result()
        kept = [r for _, r in keeping.rejections_after(None, 0, 100)]
        assert sorted(kept) == sorted([b"after", b"elsewhere"] +
                                      ([] if scope == "projects/p" else [b"beside"])), scope
        resetting.reset_project("p")
        resetting.reset_project("q")


def test_joined_and_unacknowledged_writes_keep_how_they_came(store: Any) -> None:
    """The rows the writer makes itself (a join) and those nobody waits for (a
    pixel, write_async) are stored with their catalog, transport and receive time,
    and read back byte-equal."""
    other = CATALOG + "-joined"
    origin.set_transport(origin.PIXEL)
    try:
        pixel, joined = row("pixel"), row("joined", catalog=other,
                                          productDetails=[{"product": {"id": "sku"}}])
    finally:
        origin.set_transport(origin.UNSPECIFIED)
    reads: list[tuple[str, list[str]]] = []

    def read(catalog: str, ids: list[str]) -> dict[str, Any]:
        reads.append((catalog, ids))
        return {}

    async def write() -> None:
        await store.write_user_events_async([pixel], wait=False)
        await store.write_joined_async(MadeBy(other, ["sku"], read, lambda products: joined))

    asyncio.run(write())  # the pixel, queued first, is committed with or before the join
    for written in (pixel, joined):
        [stored] = store.user_events_newest(EventQuery(written.catalog), 10)
        assert (stored.catalog, stored.payload, stored.transport, stored.received_us) == \
            (written.catalog, written.payload, origin.PIXEL, written.received_us)
        [(_, payload, _)] = store.scan_user_events(EventQuery(written.catalog), 10)
        assert payload == written.payload
    assert reads == [(other, ["sku"])]


def test_reset_tenant(store: Any) -> None:
    store.create_client_event(client_event("e1"))
    store.create_client_event(client_event("e1", tenant=TENANT + "x"))
    assert store.reset_tenant(TENANT) == (1, 0, 0, 0, 0)
    assert store.client_events_newest(TENANT, 10) == []
    assert len(store.client_events_newest(TENANT + "x", 10)) == 1
    # the same event may be stored again once its tenant is reset
    assert store.create_client_event(client_event("e1"))[1]


def old_sqlite_store(db: Path, below: int) -> sqlite3.Connection:
    """A SQLite store at `db` as a release with the migrations before `below` made it
    (the steps SQL cannot say, which fill tables, have nothing to fill); open."""
    conn = sqlite3.connect(db, isolation_level=None)
    make_old_schema(conn, "sqlite", sum(version < below for version, _, _ in MIGRATIONS))
    return conn


def test_ids_are_never_given_twice_after_a_reset(store: Any) -> None:
    """A watch follows ids: after a reset deleted the newest rows, new rows of
    another tenant or project get higher ids than any given before, or the watch,
    past those, would never send them."""
    store.create_client_event(client_event("e1", tenant=TENANT + "x"))
    store.create_client_event(client_event("e1"))
    store.create_client_event(client_event("e2"))
    seen = store.client_events_newest(TENANT, 1)[0].id
    store.reset_tenant(TENANT)
    store.create_client_event(client_event("e3", tenant=TENANT + "x"))
    assert [e.payload for e in store.client_events_after(TENANT + "x", seen, 10)] == [b"e3"]

    store.add_rejections([RejectionRow("q", "projects/q", 1, b"q1"),
                          RejectionRow("p", CATALOG, 1, b"p1")], 100, 0).result()
    seen = store.rejections_newest(None, 1)[0][0]
    store.reset_catalog(CATALOG)
    store.add_rejections([RejectionRow("q", "projects/q", 1, b"q2")], 100, 0).result()
    assert [r for _, r in store.rejections_after("q", seen, 10)] == [b"q2"]


def test_version_9_database_never_gives_an_id_twice(tmp_path: Path) -> None:
    """Migration 10 keeps the client events and refusals of an older SQLite store,
    ids included, and from then on never gives an id twice."""
    db = tmp_path / "old.db"
    conn = old_sqlite_store(db, below=10)
    conn.execute("INSERT INTO client_events (id, tenant, event_id, create_time_us, event, "
                 "received_us, transport) VALUES (7, ?, 'old', 1, x'01', 5, 2)", (TENANT,))
    conn.execute("INSERT INTO rejections VALUES (4, 'p', ?, 1, x'02')", (CATALOG,))
    conn.close()
    upgraded = open_store(f"sqlite:///{db}")
    try:
        [old] = upgraded.client_events_newest(TENANT, 10)
        assert (old.id, old.payload, old.received_us, old.transport) == (7, b"\x01", 5, 2)
        assert upgraded.rejections_newest("p", 10) == [(4, b"\x02")]
        assert not upgraded.create_client_event(ClientEventRow(TENANT, "old", 1, b"x"))[1]
        upgraded.reset_tenant(TENANT)
        upgraded.create_client_event(client_event("new"))
        assert upgraded.client_events_newest(TENANT, 1)[0].id > 7
    finally:
        upgraded.close()


def test_version_4_database_gets_the_console_tables(tmp_path: Path) -> None:
    """Client events stored before migration 6 keep their order and their rule."""
    db = tmp_path / "old.db"
    conn = old_sqlite_store(db, below=6)
    for event_id in ("old-2", "old-1"):
        conn.execute("INSERT INTO client_events VALUES (?, ?, 1, ?)",
                     (TENANT, event_id, event_id.encode()))
    conn.close()
    upgraded = open_store(f"sqlite:///{db}")
    try:
        assert not upgraded.create_client_event(client_event("old-1"))[1]
        upgraded.create_client_event(client_event("new"))
        assert [e.payload for e in upgraded.client_events_newest(TENANT, 10)] == \
            [b"new", b"old-1", b"old-2"]
    finally:
        upgraded.close()


def test_reads_of_large_events_stop_at_about_read_bytes(store: Any, monkeypatch: Any) -> None:
    # Events of up to --max-event-bytes: a page of a thousand must not hold gigabytes.
    monkeypatch.setattr(console, "READ_BYTES", 10_000)
    store.write_user_events([row(f"v{n}", time=f"2024-01-01T00:00:{n:02}Z", uri="u" * 3_000)
                             for n in range(10)])
    for n in range(10):
        store.create_client_event(ClientEventRow(TENANT, f"e{n}", 1_000, b"x" * 3_000))
    # each read takes the rows up to the one that passes the bound, then says so
    after = store.user_events_after(EventQuery(CATALOG), 0, 1000)
    assert [visitor(e.payload) for e in after] == ["v0", "v1", "v2", "v3"]
    assert console.may_continue(after, 1000)
    newest = store.user_events_newest(EventQuery(CATALOG), 1000)
    assert [visitor(e.payload) for e in newest] == ["v9", "v8", "v7", "v6"]
    assert len(store.client_events_after(TENANT, 0, 1000)) == 4
    assert len(store.client_events_newest(TENANT, 1000)) == 4
    # read on while it may continue: every event once, in order
    seen, position = [], 0
    while rows := store.user_events_after(EventQuery(CATALOG), position, 1000):
        seen += [visitor(e.payload) for e in rows]
        position = rows[-1].id
        if not console.may_continue(rows, 1000):
            break
    assert seen == [f"v{n}" for n in range(10)]
    # one event larger than the bound still comes, alone
    store.write_user_events([row("huge", time="2024-01-02T00:00:00Z", uri="u" * 20_000)])
    assert [visitor(e.payload) for e in store.user_events_newest(EventQuery(CATALOG), 1000)] \
        == ["huge"]
    # small events: one read takes all that were asked for
    monkeypatch.setattr(console, "READ_BYTES", 8 * 1024 * 1024)
    assert len(store.user_events_after(EventQuery(CATALOG), 0, 1000)) == 11
    assert not console.may_continue(store.user_events_after(EventQuery(CATALOG), 0, 1000), 1000)


def test_a_bounded_read_is_one_statement_so_one_snapshot(store: Any, monkeypatch: Any) -> None:
    """Ids and sizes, then rows by id, read in one statement: a row stored or deleted
    between two of them could have shifted the read by one."""
    store.write_user_events([row(f"v{n}", time=f"2024-01-01T00:00:{n:02}Z") for n in range(5)])
    store.create_client_event(ClientEventRow(TENANT, "e0", 1_000, b"x"))
    # (PostgreSQL looks a catalog's id up once, before its first read in id order: an
    # id that never changes, see ConsoleSql._planned_catalog_id)
    store.user_events_after(EventQuery(CATALOG), 0, 1)
    statements: list[str] = []
    fetch = store._fetch
    monkeypatch.setattr(store, "_fetch", lambda sql, params: (statements.append(sql),
                                                              fetch(sql, params))[1])
    reads = [lambda: store.user_events_after(EventQuery(CATALOG), 0, 1000),
             lambda: store.user_events_newest(EventQuery(CATALOG), 3),
             lambda: store.client_events_after(TENANT, 0, 10),
             lambda: store.client_events_newest(TENANT, 10)]
    for read, expected in zip(reads, (5, 3, 1, 1), strict=True):
        statements.clear()
        assert len(read()) == expected
        assert len(statements) == 1



def project_names(p: str) -> dict[str, str]:
    """The names fill_project fills in project `p` (and beside it, in `p`p)."""
    catalog = f"projects/{p}/locations/global/catalogs/default_catalog"
    return {"catalog": catalog, "branch": f"{catalog}/branches/0",
            "shop_eu": f"projects/{p}/locations/eu/catalogs/shop",
            "products_only": f"projects/{p}/locations/global/catalogs/products-only",
            "tenant": f"projects/{p}/tenants/t",
            "default_tenant": f"projects/{p}/tenants/default_tenant",
            # (its name starts as p's does)
            "other": f"projects/{p}{p}/locations/global/catalogs/default_catalog",
            "other_tenant": f"projects/{p}{p}/tenants/t"}


def fill_project(store: Any, p: str = "p") -> dict[str, str]:
    """Project `p`: user events in two catalogs, products in one of them and in a
    catalog that holds no event, client events in two tenants, finished operations
    of a catalog and of a branch, a running one, a finished one of a location alone,
    refusals of a catalog, a tenant, the project itself and a name of no catalog;
    and beside it the like of project `p`p. The names (project_names)."""
    n = project_names(p)
    store.write_user_events([row("a", productDetails=[{"product": {"id": "sku"}}],
                                 event_type="detail-page-view", catalog=n["catalog"]),
                             row("b", catalog=n["catalog"]), row("c", catalog=n["shop_eu"]),
                             row("d", catalog=n["other"])])
    for branch in (n["branch"], f"{n['products_only']}/branches/1", f"{n['other']}/branches/0"):
        store.create_product(branch, "sku", b"product")
    for tenant in (n["tenant"], n["default_tenant"], n["other_tenant"]):
        store.create_client_event(client_event("e1", tenant=tenant))
    done = [f"{n['catalog']}/operations/op-1", f"{n['shop_eu']}/branches/0/operations/op-2",
            f"projects/{p}/locations/global/operations/op-3", f"{n['other']}/operations/op-4"]
    for name in done:  # (each claimed, of its kind the oldest to run, run, and done)
        store.create_operation(OperationRecord(name, "done", False, 1, b"", b""))
        store.claim_operation("me", 0, 10**12, lambda _: False, kinds=("done",))
        store.run_step(name, "me", Step(), 0, lambda _: Progress(b"", b"", True))
    store.create_operation(OperationRecord(f"{n['catalog']}/operations/running", "k", False, 1,
                                           b"", b""))
    store.add_rejections([RejectionRow(p, n["catalog"], 1, b"r"),
                          RejectionRow(p, n["tenant"], 1, b"r"),
                          RejectionRow(p, f"projects/{p}", 1, b"r"),
                          RejectionRow(p, f"projects/{p}/locations/global/catalogs", 1, b"r"),
                          RejectionRow(p + p, n["other"], 1, b"r")], 100, 0).result()
    return n


def left_of(store: Any, p: str) -> dict[str, Any]:
    """What `store` holds of fill_project's rows of `p` (and `p`p), by kind, its
    names written with P for `p` and Q for `p`p (so two projects' compare)."""
    n = project_names(p)

    def general(name: str) -> str:
        return name.replace(f"projects/{p}{p}/", "projects/Q/").replace(f"projects/{p}/",
                                                                        "projects/P/")

    return {
        "events": [store.count_user_events(EventQuery(n[c]))
                   for c in ("catalog", "shop_eu", "other")],
        "products": [store.get_products(b, ["sku"]) != {} for b in (
            n["branch"], f"{n['products_only']}/branches/1", f"{n['other']}/branches/0")],
        "client events": [len(store.client_events_newest(n[t], 10))
                          for t in ("tenant", "default_tenant", "other_tenant")],
        "operations": [general(o.name) for o in
                       store.list_operations(f"projects/{p}", None, 100, None)],
        "refusals": [len(store.rejections_newest(q, 10)) for q in (p, p + p)],
        "catalogs": [general(c.name)
                     for c in store.data_sets(False, f"projects/{p}")[0]],
        "tenants": [general(t.name)
                    for t in store.data_sets(True, f"projects/{p}")[0]]}


def test_reset_project_resets_its_every_catalog_and_tenant(store: Any) -> None:
    n = fill_project(store)
    # 3 user events and 2 client events; 2 products; 4 refusals; 2 finished operations
    # (that of a location alone is no catalog's: no catalog's reset deletes it)
    assert store.reset_project("p") == (5, 2, 4, 2, 1)  # (the running operation: cancelled)
    assert left_of(store, "p") == {
        "events": [0, 0, 1], "products": [False, False, True], "client events": [0, 0, 1],
        "operations": ["projects/P/locations/global/catalogs/default_catalog/operations/running",
                       "projects/P/locations/global/operations/op-3",
                       "projects/Q/locations/global/catalogs/default_catalog/operations/op-4"],
        "refusals": [0, 1], "catalogs": ["projects/Q/locations/global/catalogs/default_catalog"],
        "tenants": ["projects/Q/tenants/t"]}
    # its catalogs take events again, as a reset catalog does; nothing is left to reset
    store.write_user_events([row("e", catalog=n["catalog"])])
    assert store.count_user_events(EventQuery(n["catalog"])) == 1
    assert store.reset_project("p") == (1, 0, 0, 1, 0)  # (the one cancelled, now done)
    assert store.reset_project("nothing") == (0, 0, 0, 0, 0)


def test_reset_project_deletes_what_resets_of_each_would(store: Any) -> None:
    """A project's reset deletes what resets of each of its catalogs and tenants
    delete, and the refusals kept under it of no catalog or tenant."""
    n = fill_project(store, "a")
    counts = [store.reset_catalog(n[c]) for c in ("catalog", "shop_eu", "products_only")]
    counts += [store.reset_tenant(n[t]) for t in ("tenant", "default_tenant")]
    summed = [sum(c) for c in zip(*counts, strict=True)]
    fill_project(store, "b")
    assert store.reset_project("b") == (summed[0], summed[1], summed[2] + 2, summed[3],
                                        summed[4])
    each, whole = left_of(store, "a"), left_of(store, "b")
    assert each.pop("refusals") == [2, 1] and whole.pop("refusals") == [0, 1]
    assert whole == each


@pytest.mark.parametrize("neighbour", ["p0", "p-", "p.", "pé", "p\U0001f600"])
def test_a_reset_leaves_what_sorts_next_to_it(store: Any, neighbour: str) -> None:
    """The names under a project (a catalog) are read as a range of their index:
    those of a project (catalog) whose name sorts right before or after it are not
    in it, whichever character follows."""
    mine = "projects/p/locations/global/catalogs/c"
    theirs = [f"projects/{neighbour}/locations/global/catalogs/c",
              f"projects/p/locations/global/catalogs/c{neighbour[1:]}"]
    for catalog in [mine, *theirs]:
        store.write_user_events([row("v", catalog=catalog)])
        store.create_product(f"{catalog}/branches/0", "sku", b"product")
        store.create_operation(OperationRecord(f"{catalog}/operations/o", "done", False, 1,
                                               b"", b""))
        store.claim_operation("me", 0, 10**12, lambda _: False, kinds=("done",))
        store.run_step(f"{catalog}/operations/o", "me", Step(), 0,
                       lambda _: Progress(b"", b"", True))
        store.create_operation(OperationRecord(f"{catalog}/operations/r", "k", False, 1,
                                               b"", b""))
    for tenant in ("projects/p/tenants/t", f"projects/{neighbour}/tenants/t"):
        store.create_client_event(client_event("e", tenant=tenant))

    def left() -> list[Any]:
        return [(store.count_user_events(EventQuery(c)),
                 store.get_products(f"{c}/branches/0", ["sku"]) != {},
                 store.get_operation(f"{c}/operations/o") is not None,
                 store.get_operation(f"{c}/operations/r").done)
                for c in theirs] + [len(store.client_events_newest(
                    f"projects/{neighbour}/tenants/t", 10))]

    assert store.reset_catalog(mine) == (1, 1, 0, 1, 1)
    assert left() == [(1, True, True, False), (1, True, True, False), 1]
    # (the neighbour catalog's, and "t"; of operations, its finished one and mine, ended
    # by my reset)
    assert store.reset_project("p") == (2, 1, 0, 2, 1)
    assert left() == [(1, True, True, False), (0, False, False, True), 1]


def test_a_failed_reset_project_deletes_nothing(store: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction: a reset that fails past the deletion of the events has
    deleted nothing, events included."""
    fill_project(store)
    before = left_of(store, "p")

    def fail(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(store, "_forget_catalog_parts", fail)
    with pytest.raises(RuntimeError):
        store.reset_project("p")
    assert left_of(store, "p") == before


def _listed(store: Any, text: str, size: int) -> list[list[str]]:
    """The pages (their events' visitors) of the console's list of `text`, in pages
    of `size`, each token followed to the end."""
    events = queries.parse_filter(text, CATALOG)
    pages, token = [], ""
    while True:
        page = queries.list_user_events(store, events, size, token)
        pages.append([e.user_event.visitor_id for e in page.user_events])
        if not (token := page.next_page_token):
            return pages


@pytest.mark.parametrize("text", ['sessionId = "rare"', 'eventType = "rare"', "joined = false",
                                  'productId = "rare"', 'sessionId = "rare" AND joined = false'])
def test_a_filter_of_one_old_event_finds_it_in_the_first_call(
        store: Any, monkeypatch: Any, text: str) -> None:
    """A filter no index seeks that selects the oldest of 26 events: a call looked at
    SCAN_LIMIT events (a window of the time order), so its first pages came back
    empty, 600 of them for a session among the oldest of 3M events. Now a call goes
    on through at least MIN_WINDOWS windows (and then on for LIST_SECONDS), each at
    least SCAN_LIMIT wide: 3 x 10 events here, whatever the machine's pace."""
    monkeypatch.setattr(queries, "SCAN_LIMIT", 10)
    store.write_user_events([
        row("old", "rare", time="2024-01-01T00:00:00Z", joined=False, sessionId="rare",
            productDetails=[{"product": {"id": "rare"}}])])
    store.write_user_events([
        row(f"v{n}", time=f"2024-01-02T00:00:{n:02d}Z", sessionId=f"s{n}",
            productDetails=[{"product": {"id": f"p{n}"}}]) for n in range(25)])
    assert _listed(store, text, 5) == [["old"]]


def test_filtered_pages_hold_each_event_once_newest_first_while_writes_come(
        store: Any, monkeypatch: Any) -> None:
    """A filter read window by window (a session's bytes sought in the database, the
    windows as wide as the machine's pace allows) pages as any list: latest time first
    (of one time, the later stored first), each event once across pages of any size,
    while newer events (and older ones of other sessions) are written between calls;
    a window's end at a microsecond several events share splits none of them."""
    monkeypatch.setattr(queries, "SCAN_LIMIT", 10)
    monkeypatch.setattr(queries, "MIN_WINDOWS", 1, raising=False)
    monkeypatch.setattr(queries, "LIST_SECONDS", 0.0, raising=False)  # a window a call
    rows = []
    for n in range(60):
        second = n // 3  # three events a second
        rows.append(row(f"v{n}", time=f"2024-01-01T00:{second // 60:02d}:{second % 60:02d}Z",
                        sessionId="s" if n % 4 == 0 else f"other{n}"))
    store.write_user_events(rows)
    expected = [f"v{n}" for n in sorted(range(0, 60, 4), key=lambda n: (-(n // 3), -n))]
    for size in (1, 2, 7, 100):
        newer = [e.user_event.visitor_id for e in queries.list_user_events(
            store, queries.parse_filter('visitorId = "new"', CATALOG), 1000, "").user_events]
        events = queries.parse_filter('sessionId = "s"', CATALOG)
        seen, token, calls = [], "", 0
        while True:
            page = queries.list_user_events(store, events, size, token)
            seen += [e.user_event.visitor_id for e in page.user_events]
            calls += 1
            store.write_user_events([
                row("new", time="2024-02-01T00:00:00Z", sessionId="s"),
                row(f"old{size}-{calls}", time="2023-01-01T00:00:00Z", sessionId="x")])
            if not (token := page.next_page_token):
                break
        assert seen == ["new"] * len(newer) + expected, size


@pytest.mark.parametrize("text", ['sessionId = "s1"', 'productId = "p1"'])
def test_an_id_others_start_with_reads_none_of_theirs(
        store: Any, monkeypatch: Any, text: str) -> None:
    """A session or product id is sought in the stored bytes as the field that holds
    it (its tag, length and bytes): `s1` read s10 to s19 too, each sent, unpacked and
    decoded to be left out (`session-12`: 111,000 events of 3M of the bench corpus
    for its 10)."""
    store.write_user_events([
        row(f"v{n}", time=f"2024-01-01T00:00:{n:02d}Z", sessionId=f"s{n}",
            productDetails=[{"product": {"id": f"p{n}"}}]) for n in range(1, 20)])
    read = store.user_events_newest
    rows: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = read(*args, **kwargs)
        rows.extend(e.id for e in found)
        return found

    monkeypatch.setattr(store, "user_events_newest", counted)
    events = queries.parse_filter(text, CATALOG)
    assert queries.count_user_events(store, events) == 1
    assert [e.user_event.visitor_id for e in queries.list_user_events(
        store, events, 10, "").user_events] == ["v1"]
    assert len(rows) == 2  # (once for the count, once for the page)


def test_a_count_of_time_bounds_that_select_nothing_is_zero(store: Any) -> None:
    """CountClientEvents of bounds no time lies within (one within its microsecond,
    settled on the decoded events): none, not minus the events of that microsecond
    left out by a bound the store's range had already left out."""
    for event_id, nanos in (("a", 0), ("b", 500)):
        event = event_pb2.ClientEvent(event_id=event_id)
        event.create_time.FromJsonString("2026-12-01T10:00:00Z")
        event.create_time.nanos = nanos
        store.create_client_event(ClientEventRow(
            TENANT, event_id, event.create_time.ToMicroseconds(), event.SerializeToString()))
    for text in ('createTime > "2026-12-01T10:00:00Z" createTime < "2026-12-01T09:00:00Z"',
                 'createTime > "2026-12-01T11:00:00Z" createTime <= "2026-12-01T10:00:00Z"',
                 'createTime > "2026-12-01T10:00:00.0000004Z" '
                 'createTime < "2026-12-01T10:00:00.0000003Z"'):
        events = client_filter.parse(text, TENANT)
        assert queries.count_client_events(store, events) == 0, text
        assert not queries.list_client_events(store, events, 10, "").client_events, text


def test_an_empty_request_id_selects_the_client_events_that_name_none(store: Any) -> None:
    """`requestId = ""`: the events that name no request (as the decoded event and a
    watch have it), though their bytes hold no request id field at all (proto3
    leaves an empty string out): not none of them."""
    for n in range(6):
        event = event_pb2.ClientEvent(event_id=f"e{n}", request_id="r" if n % 2 else "")
        event.create_time.FromMicroseconds(1_000_000 * n)
        event.job_event.type = 1
        store.create_client_event(ClientEventRow(TENANT, event.event_id,
                                                 event.create_time.ToMicroseconds(),
                                                 event.SerializeToString()))
    for text, expected in (('requestId = ""', ["e4", "e2", "e0"]),
                           ('requestId = "" eventType = IMPRESSION', ["e4", "e2", "e0"]),
                           ('requestId = "r"', ["e5", "e3", "e1"])):
        events = client_filter.parse(text, TENANT)
        assert queries.count_client_events(store, events) == len(expected), text
        listed = queries.list_client_events(store, events, 10, "")
        assert [e.client_event.event_id for e in listed.client_events] == expected, text


def test_a_job_of_a_projects_default_tenant_is_found_by_either_name(store: Any) -> None:
    """In a project's default tenant an event may name a job as talent v4beta1 does
    (projects/P/jobs/J) or as the tenant does (projects/P/tenants/default_tenant/jobs/J):
    the insights count both as one job, named the tenant's way, and that name copied
    into the filter found none of the events that gave the other. Either name finds
    both; a longer job holding the name is not found, nor is another tenant's."""
    tenant = "projects/p/tenants/default_tenant"
    named = {"e0": "projects/p/jobs/j1", "e1": f"{tenant}/jobs/j1",
             "e2": "projects/p/jobs/j10", "e3": f"{tenant}/jobs/j2"}
    for n, (event_id, job) in enumerate(named.items()):
        event = event_pb2.ClientEvent(event_id=event_id)
        event.create_time.FromMicroseconds(1_000_000 * n)
        event.job_event.type = 1
        event.job_event.jobs.append(job)
        store.create_client_event(ClientEventRow(tenant, event_id,
                                                 event.create_time.ToMicroseconds(),
                                                 event.SerializeToString()))
    for job in ("projects/p/jobs/j1", f"{tenant}/jobs/j1", "j1"):  # (or its id alone)
        events = client_filter.parse(f'job = "{job}"', tenant)
        assert queries.count_client_events(store, events) == 2, job
        listed = queries.list_client_events(store, events, 10, "")
        assert [e.client_event.event_id for e in listed.client_events] == ["e1", "e0"], job
    other = client_filter.parse('job = "projects/p/tenants/t/jobs/j1"', "projects/p/tenants/t")
    assert client_filter.job_names(other.tenant, other.jobs[0]) == other.jobs


def test_a_store_says_whether_its_reads_work_in_another_process(store: Any,
                                                                 store_url: str) -> None:
    # (PostgreSQL's reads are its server's CPU, which the console's budgets of reading
    # time charge by the clock: see console.pace.Listing.read)
    assert store.reads_elsewhere == store_url.startswith("postgresql://")
