"""Keeping refusals (server/console/rejections.py) over real stores: memory, a
SQLite file and PostgreSQL (when FOOTFALL_TEST_POSTGRES_DSN is set)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.protobuf import json_format, unknown_fields

from server.clock import FixedClock, SystemClock
from server.console import rejections
from server.console.rejections import KEPT_TEXT_CHARS, KEY_MASK, Rejections, shown
from server.errors import (
    MAX_REPORTED_CHARS,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from server.store import Store, sqlite
from server.store.console import RejectionRow
from server.store.group_commit import Job

from . import test_store
from .test_store import CATALOG

store_url, stores, store = test_store.store_url, test_store.stores, test_store.store
WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"


def refuse(rejections: Rejections, n: int, parent: str = CATALOG) -> None:
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=parent, user_event=user_event_pb2.UserEvent(session_id=f"s{n}"))
    rejections.refused(WRITE, "grpc", request,
                       InvalidArgument.field("user_event.visitor_id", "is required"), "k")


def sessions(store: Store) -> list[str]:
    kept = store.rejections_after(None, 0, 1000)
    return [json.loads(shown(*r).request_json)["userEvent"]["sessionId"][1:] for r in kept]


def writer_held(store: Store, seconds: float = 10) -> threading.Event:
    """Hold `store`'s writer busy (with a job of its own) until the event returned is
    set, or for `seconds`: what is refused meanwhile waits to be kept."""
    busy, free = threading.Event(), threading.Event()

    def hold(_db: Any) -> None:
        busy.set()
        free.wait(seconds)

    store._committer.submit(Job(fn=hold))  # type: ignore[attr-defined]  # noqa: SLF001
    assert busy.wait(10)
    return free


def test_a_flood_of_refusals_is_one_write_job_per_commit(store: Store) -> None:
    jobs: list[int] = []
    store.on_commit(lambda batch: jobs.append(len(batch)))
    rejections = Rejections(store, SystemClock(), 1000, 3600)
    free = writer_held(store)  # the writer is busy while the flood comes
    for n in range(100):
        refuse(rejections, n)
    free.set()
    store.flush()
    store.on_commit(None)
    assert sessions(store) == [str(n) for n in range(100)]
    # the held job and one job for the 100 refusals (then the flush's)
    assert sum(jobs) <= 3, jobs


def test_the_store_keeps_the_latest_within_the_count(store: Store) -> None:
    rejections = Rejections(store, SystemClock(), 10, 3600)
    for n in range(55):
        refuse(rejections, n)
        if n % 7 == 0:
            store.flush()
    store.flush()
    assert sessions(store) == [str(n) for n in range(45, 55)]


def test_a_flood_of_one_projects_refusals_keeps_the_others(store: Store) -> None:
    rejections = Rejections(store, SystemClock(), 10, 3600, keep_per_project=3)
    refuse(rejections, 0, "projects/other/locations/global/catalogs/c")
    for n in range(1, 30):
        refuse(rejections, n)
        if n % 7 == 0:
            store.flush()
    store.flush()
    assert sessions(store) == ["0", "27", "28", "29"]


def test_refusals_past_their_age_are_forgotten_when_no_new_one_comes(store: Store) -> None:
    """They were forgotten only when another refusal was kept: a server refusing
    nothing more kept (and listed) them, requests and addresses, for good."""
    clock = FixedClock(1_700_000_000_000_000_000)
    keeper = Rejections(store, clock, 10, 3600)
    for n in range(3):
        refuse(keeper, n)
    store.flush()
    clock.advance(1800)
    keeper.forget_old().result()
    assert sessions(store) == ["0", "1", "2"]  # half an hour old: kept
    clock.advance(3600)
    keeper.start(every_seconds=0.05)
    try:
        deadline = time.monotonic() + 10
        while sessions(store) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sessions(store) == []
    finally:
        keeper.stop()
    # started with keeping off, a server forgets those kept before
    refuse(Rejections(store, clock, 10, 3600), 9)
    store.flush()
    off = Rejections(store, clock, 0, 3600)
    off.start()
    off.stop()
    assert sessions(store) == []


def test_a_keep_count_of_0_keeps_none(store: Store) -> None:
    jobs: list[int] = []
    store.on_commit(lambda batch: jobs.append(len(batch)))
    rejections = Rejections(store, SystemClock(), 0, 3600)
    for n in range(5):
        refuse(rejections, n)
    assert rejections.import_rows(f"{CATALOG}/operations/import-1",
                                  ["gs://b/f line 1: x: bad"]) == []
    rejections.imported(f"{CATALOG}/operations/import-1")  # (a batch kept none: no trim)
    store.flush()
    # (the writer calls the listener just after it answers the flush)
    for _ in range(1000):
        if jobs:
            break
        threading.Event().wait(0.01)
    store.on_commit(None)
    assert sessions(store) == []
    assert jobs == [1]  # the flush's own: keeping off gives the writer nothing to do


def test_every_refusal_of_a_quick_flood_is_written_then_trimmed(store: Store) -> None:
    rejections = Rejections(store, SystemClock(), 10, 3600)
    for n in range(300):  # faster than the writer's delay for work that rides along
        refuse(rejections, n)
    store.flush()
    assert sessions(store) == [str(n) for n in range(290, 300)]
    assert store.last_id("rejections") >= 300  # each was written; the trim kept 10


def test_a_request_is_kept_as_bytes_and_shown_as_json_when_read(store: Store) -> None:
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG, user_event=user_event_pb2.UserEvent(session_id="s1", uri="é"))
    keeper = Rejections(store, SystemClock(), 10, 3600)
    keeper.refused(WRITE, "grpc", request, InvalidArgument.field("user_event.visitor_id", "x"),
                   "k")
    store.flush()
    [row] = store.rejections_after(None, 0, 10)
    raw = console_pb2.Rejection.FromString(row.payload)
    assert not raw.request_json  # no JSON made while refusing
    shown_now = shown(*row)
    assert shown_now.request_json == json_format.MessageToJson(request, indent=None)
    assert not shown_now.request_truncated and shown_now.id == row.id
    assert shown_now.field_violations[0].field == "user_event.visitor_id"
    assert request.SerializeToString() not in shown_now.SerializeToString()  # not sent


def test_a_large_request_is_kept_as_its_json_cut_at_once(store: Store) -> None:
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG, user_event=user_event_pb2.UserEvent(
            uri="u" * rejections.KEPT_REQUEST_BYTES))
    keeper = Rejections(store, SystemClock(), 10, 3600)
    keeper.refused(WRITE, "grpc", request, InvalidArgument.field("user_event.visitor_id", "x"),
                   "k")
    store.flush()
    [row] = store.rejections_after(None, 0, 10)
    assert len(row.payload) < 2 * rejections.REQUEST_JSON_CHARS  # the row stays small
    kept = shown(*row)
    assert kept.request_truncated
    assert len(kept.request_json) == rejections.REQUEST_JSON_CHARS
    assert console_pb2.Rejection.FromString(row.payload).request_json == kept.request_json


def test_the_callers_key_is_masked_where_the_cut_of_a_long_request_would_split_it(
        store: Store) -> None:
    key = "the-callers-key-7f3a"

    def request_of(uri: str) -> user_event_service_pb2.WriteUserEventRequest:
        return user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=user_event_pb2.UserEvent(uri=uri))

    before = json_format.MessageToJson(request_of("u"), indent=None).index('"uri": "') + 8
    request = request_of("u" * (rejections.REQUEST_JSON_CHARS - before - 5) + key)
    whole = json_format.MessageToJson(request, indent=None)
    assert whole[:rejections.REQUEST_JSON_CHARS].endswith(key[:5])  # cut inside the key
    keeper = Rejections(store, SystemClock(), 10, 3600)
    keeper.refused(WRITE, "grpc", request, InvalidArgument.field("user_event.visitor_id", "x"),
                   "k", key)
    store.flush()
    [row] = store.rejections_after(None, 0, 10)
    kept = shown(*row)
    assert kept.request_truncated and key[:5].encode() not in row.payload
    assert kept.request_json == whole.replace(key, rejections.KEY_MASK)[
        :rejections.REQUEST_JSON_CHARS]


@pytest.mark.parametrize("uri_size", [0, rejections.KEPT_REQUEST_BYTES])
def test_a_request_proto3_json_cannot_write_is_kept_without_its_json(
        store: Store, uri_size: int) -> None:
    # json_format refuses a FieldMask path with an upper-case letter: the refusal of a
    # large request raised out of the call (UNKNOWN, the fuzz test found it), and a
    # small one's out of every read of the list of refusals.
    event = user_event_pb2.UserEvent(uri="u" * uri_size)
    event.product_details.add().product.retrievable_fields.paths.append("À")
    request = user_event_service_pb2.WriteUserEventRequest(parent=CATALOG, user_event=event)
    with pytest.raises(json_format.SerializeToJsonError):
        json_format.MessageToJson(request)
    keeper = Rejections(store, SystemClock(), 10, 3600)
    keeper.refused(WRITE, "grpc", request, InvalidArgument.field("user_event.visitor_id", "x"),
                   "k")
    store.flush()
    [row] = store.rejections_after(None, 0, 10)
    kept = shown(*row)
    assert (kept.request_json, kept.request_truncated) == ("", True)
    assert kept.field_violations[0].field == "user_event.visitor_id"


def test_refusals_gathered_past_one_statement_are_all_kept_in_order(store: Store) -> None:
    rejections = Rejections(store, SystemClock(), 5000, 3600)
    free = writer_held(store)
    for n in range(1201):  # four INSERTs: 512, 512, 160 and 17 rows (shapes.statement_rows)
        refuse(rejections, n)
    free.set()
    store.flush()
    assert sessions(store)[:1000] == [str(n) for n in range(1000)]  # the first page read
    assert len(store.rejections_after(None, 1000, 1000)) == 201


def test_refusals_are_inserted_in_statements_of_the_event_rows_shapes(tmp_path: Any) -> None:
    # Each row count is a statement SQLite parses anew unless its cache holds it.
    store = sqlite.SqliteStore(str(tmp_path / "events.db"))
    try:
        inserted: list[int] = []
        store._writer_conn.set_trace_callback(  # noqa: SLF001
            lambda sql: inserted.append(sql.count("),")) if "INTO rejections" in sql else None)
        kept = [RejectionRow("p", CATALOG, n, b"r") for n in range(1201)]
        store.add_rejections(kept, 5000, 0).result()
        assert [rows + 1 for rows in inserted] == [512, 512, 160, 17]
        assert len(store.rejections_after(None, 0, 2000)) == 1201
    finally:
        store.close()


def test_refusals_alike_share_their_common_part_and_keep_their_own(store: Store) -> None:
    keeper = Rejections(store, FixedClock(1_700_000_000_000_000_000), 10, 3600 * 24 * 365 * 99)

    def refuse_as(key: str, session: str, error: InvalidArgument) -> None:
        request = user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=user_event_pb2.UserEvent(session_id=session))
        keeper.refused(WRITE, "http", request, error, key)
        keeper._clock.advance(1)  # type: ignore[attr-defined]  # noqa: SLF001

    missing = InvalidArgument.field("user_event.visitor_id", "is required")
    refuse_as("k1", "s1", missing)
    refuse_as("k2", "s2", InvalidArgument.field("user_event.event_type", "is required"))
    refuse_as("k1", "s3", InvalidArgument.field("user_event.visitor_id", "is required"))
    store.flush()
    kept = [shown(*row) for row in store.rejections_after(None, 0, 10)]
    assert [(r.key_name, r.field_violations[0].field) for r in kept] == [
        ("k1", "user_event.visitor_id"), ("k2", "user_event.event_type"),
        ("k1", "user_event.visitor_id")]
    assert [json.loads(r.request_json)["userEvent"]["sessionId"] for r in kept] == \
        ["s1", "s2", "s3"]
    assert [r.time.seconds for r in kept] == [1_700_000_000, 1_700_000_001, 1_700_000_002]
    assert {r.transport for r in kept} == {console_pb2.REST} and kept[0].parent == CATALOG
    assert len(keeper._alike) == 2  # noqa: SLF001  # the third was made of the first's part


def test_one_request_refused_again_before_the_writer_takes_it_is_one_row_counting_them(
        store: Store) -> None:
    keeper = Rejections(store, FixedClock(1_700_000_000_000_000_000), 10, 3600 * 24 * 365 * 99)
    def refuse_as(key: str, session: str) -> None:
        request = user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=user_event_pb2.UserEvent(session_id=session))
        keeper.refused(WRITE, "grpc", request,
                       InvalidArgument.field("user_event.visitor_id", "is required"), key)
        keeper._clock.advance(1)  # type: ignore[attr-defined]  # noqa: SLF001

    free = writer_held(store)  # the writer is busy while the refusals come
    for key, session in [("k", "a"), ("k", "b"), ("k", "a"), ("k", "a"), ("k", "b"),
                         ("k2", "a")]:
        refuse_as(key, session)
    free.set()
    store.flush()
    refuse_as("k", "a")  # the writer took the others: a row of its own
    store.flush()
    kept = [shown(*row) for row in store.rejections_after(None, 0, 10)]
    assert [(r.key_name, json.loads(r.request_json)["userEvent"]["sessionId"], r.repeats,
             r.time.seconds - 1_700_000_000,
             r.last_time.seconds - 1_700_000_000 if r.HasField("last_time") else None)
            for r in kept] == [("k", "a", 2, 0, 3), ("k", "b", 1, 1, 4), ("k2", "a", 0, 5, None),
                               ("k", "a", 0, 6, None)]
    as_json = json.loads(json_format.MessageToJson(kept[0]))
    assert (as_json["repeats"], as_json["lastTime"]) == ("2", "2023-11-14T22:13:23Z")


def test_a_flood_of_one_request_is_a_row_a_write_not_a_row_a_try(store: Store) -> None:
    rejections = Rejections(store, SystemClock(), 1000, 3600)
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG, user_event=user_event_pb2.UserEvent(session_id="same"))
    for _ in range(500):
        rejections.refused(WRITE, "grpc", request,
                           InvalidArgument.field("user_event.visitor_id", "is required"), "k")
    store.flush()
    kept = [shown(*row) for row in store.rejections_after(None, 0, 1000)]
    assert sum(r.repeats + 1 for r in kept) == 500  # every try counted
    assert len(kept) < 50  # the writer took them a few times at most, not 500


@contextlib.contextmanager
def failed_once(tmp_path: Any, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[tuple[Store, Rejections]]:
    """A SQLite store and its keeper of refusals, whose first job failed before it
    took refusal 1 (SQLite locked by another connection past its busy timeout, at
    BEGIN); the lock is gone when this yields. The busy timeout (10 s) and the
    retries (5 s) are cut to 0.2 s: the job fails the same way, without the wait."""
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 200)
    store = sqlite.SqliteStore(str(tmp_path / "events.db"), retry_seconds=0.2)
    keeper = Rejections(store, SystemClock(), 100, 3600)
    other = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        refuse(keeper, 1)
        assert keeper._last is not None  # noqa: SLF001
        with pytest.raises(Exception, match="locked"):
            keeper._last.result(30)  # noqa: SLF001
        # the future's waiters wake before its callbacks run: wait for the keeper's
        deadline = time.monotonic() + 10
        while keeper._queued:  # noqa: SLF001
            assert time.monotonic() < deadline, "the failed job's callback never ran"
            time.sleep(0.01)
        other.execute("COMMIT")
        yield store, keeper
    finally:
        other.close()
        store.close()


def test_refusals_are_kept_again_once_a_locked_store_is_free(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A failed job must not leave the refusals it did not take, and every later
    # one, waiting for good.
    with failed_once(tmp_path, monkeypatch) as (store, keeper):
        refuse(keeper, 1)  # the same again: counted, and a job queued again
        store.flush()
        [kept] = store.rejections_after(None, 0, 10)
        assert shown(*kept).repeats == 1
        refuse(keeper, 2)
        store.flush()
        assert sessions(store) == ["1", "2"]
        refuse(keeper, 3)
        keeper_waits = keeper.waiting()
        store.flush()
        assert sessions(store) == ["1", "2", "3"] and keeper_waits


def test_a_reader_queues_again_what_a_failed_job_left(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with failed_once(tmp_path, monkeypatch) as (store, keeper):
        assert keeper.waiting()  # what ListRejections asks before it flushes
        store.flush()
        assert sessions(store) == ["1"] and not keeper.waiting()


def test_refusals_waiting_for_the_writer_are_the_latest_gathered_limit(
        store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    # While the store is away (or the writer far behind), at most GATHERED_LIMIT
    # refusals wait, however many --rejections-keep keeps (a keep of millions held
    # millions in memory); the others are let go, oldest first, and the log says
    # how many.
    monkeypatch.setattr(rejections, "GATHERED_LIMIT", 5)
    keeper = Rejections(store, SystemClock(), 100, 3600)
    free = writer_held(store)
    for n in range(8):
        refuse(keeper, n)
    assert keeper.skipped == 3
    free.set()
    store.flush()
    assert sessions(store) == ["3", "4", "5", "6", "7"]
    assert "3 refused requests were not kept" in caplog.text


def test_refusals_let_go_count_their_repeats_and_those_left_keep_theirs(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Past GATHERED_LIMIT the oldest rows are let go: the repeats each stood for went
    # uncounted, and the repeats counted for the rows left were cleared (neither kept
    # nor counted in footfall_rejections_not_kept, their next alike a row again).
    monkeypatch.setattr(rejections, "GATHERED_LIMIT", 5)
    keeper = Rejections(store, SystemClock(), 100, 3600)
    free = writer_held(store)
    for n in range(5):
        refuse(keeper, n)
        refuse(keeper, n)  # (alike: counted by the row of the first)
    refuse(keeper, 5)  # (the sixth row: the oldest is let go)
    refuse(keeper, 0)  # (its alike, let go with it: a row of its own)
    free.set()
    store.flush()
    kept = [shown(*row) for row in store.rejections_after(None, 0, 1000)]
    assert sessions(store) == ["2", "3", "4", "5", "0"]
    assert [r.repeats for r in kept] == [1, 1, 1, 0, 0]
    assert keeper.skipped == 4  # (rows 0 and 1, each with its repeat)
    assert sum(r.repeats + 1 for r in kept) + keeper.skipped == 12  # none lost uncounted


def test_refusals_waiting_for_the_writer_hold_gathered_bytes_at_most(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    # A refusal is kept as a row of up to ~150 KB (message and violations of 12,288
    # characters each, of 4 bytes): GATHERED_LIMIT of them waiting for a store away
    # held a gigabyte, and ALIKE_KINDS kinds of them 50 MB more. What waits is bound by
    # its bytes too; each refusal let go is counted (/metrics) and the log says so at
    # once, then how many once the store takes the others.
    def error(kind: int) -> InvalidArgument:
        return InvalidArgument([FieldViolation(
            f"user_event.product_details[{n}].product.price_info.currency_code",
            f"must be a three-letter ISO 4217 code such as USD, got {kind}" + "\U0001d54f" * 990)
            for n in range(100)])

    refusals = 400
    keeper = Rejections(store, SystemClock(), 1000, 3600)
    free = writer_held(store, 600)  # (set once the refusals are made: 65 s at load 26)
    request = user_event_service_pb2.WriteUserEventRequest(parent=CATALOG)
    tracemalloc.start()
    try:
        for kind in range(refusals):
            keeper.refused(WRITE, "grpc", request, error(kind), "k")
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # (unbound: 400 rows of ~97 KB, and 256 kinds of ~200 KB: 90 MB; bound: 16 MiB
        # gathered, 4 MiB of kinds, and one kind's part and message being made)
        assert held < 24 * 1024 * 1024, held
        # (read while the writer is held: once free it takes what was gathered)
        gathered = keeper._gathered  # noqa: SLF001
        assert sum(len(row.payload) for row in gathered) <= 16 * 1024 * 1024
        assert keeper._gathered_bytes == sum(len(row.payload) for row in gathered)  # noqa: SLF001
        assert 0 < keeper.skipped == refusals - len(gathered)
    finally:
        tracemalloc.stop()
        free.set()
    assert "refused requests are being let go unkept" in caplog.text
    store.flush()
    kept = store.rejections_after(None, 0, 1000)
    assert len(kept) + keeper.skipped == refusals  # (none lost without being counted)
    assert f"{keeper.skipped} refused requests were not kept" in caplog.text
    assert not keeper._taken_bytes  # noqa: SLF001  (the job committed: nothing waits)


def test_refusals_a_failed_job_took_are_counted_as_not_kept(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A job that took the refusals gathered and then failed (the store refused the
    # insert: a disk full, a connection lost in the transaction) lost them: they were
    # counted nowhere, where footfall_rejections_not_kept says "or the store refused
    # them", and the bytes they held were no longer counted as waiting either.
    store = sqlite.SqliteStore(str(tmp_path / "events.db"), retry_seconds=0.2)
    keeper = Rejections(store, SystemClock(), 100, 3600)
    other = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    try:
        other.execute("CREATE TRIGGER refuse BEFORE INSERT ON rejections "
                      "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        free = writer_held(store)
        for n in range(3):
            refuse(keeper, n)
        free.set()
        assert keeper._last is not None  # noqa: SLF001
        with pytest.raises(Exception, match="refused by the test"):
            keeper._last.result(30)  # noqa: SLF001
        deadline = time.monotonic() + 10
        while keeper.skipped != 3:  # (its callback runs after the future's waiters wake)
            assert time.monotonic() < deadline, keeper.skipped
            time.sleep(0.01)
        assert not keeper._taken_bytes and not keeper._gathered  # noqa: SLF001
        other.execute("DROP TRIGGER refuse")
        refuse(keeper, 3)
        store.flush()
        assert sessions(store) == ["3"] and keeper.skipped == 3
    finally:
        other.close()
        store.close()


def test_large_requests_refused_again_are_not_held_to_be_counted(store: Store) -> None:
    # Alike requests are found by their bytes: a large one (kept as its JSON, cut)
    # is not held whole while it waits for the writer.
    keeper = Rejections(store, SystemClock(), 10, 3600)
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG, user_event=user_event_pb2.UserEvent(
            uri="u" * rejections.KEPT_REQUEST_BYTES))
    for _ in range(2):
        keeper.refused(WRITE, "grpc", request,
                       InvalidArgument.field("user_event.visitor_id", "x"), "k")
    assert not keeper._repeats  # noqa: SLF001
    store.flush()
    assert [shown(*row).repeats for row in store.rejections_after(None, 0, 10)] == [0, 0]


def test_hand_made_parts_are_what_protobuf_serializes() -> None:
    from google.protobuf import any_pb2, timestamp_pb2
    for ns in (0, 7, 1_000_000_000, 1_700_000_000_123_456_789, 2 ** 62):
        seconds, nanos = divmod(ns, 1_000_000_000)
        assert rejections._stamp(ns) == timestamp_pb2.Timestamp(  # noqa: SLF001
            seconds=seconds, nanos=nanos).SerializeToString()
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG, user_event=user_event_pb2.UserEvent(session_id="é" * 100))
    packed = any_pb2.Any()
    packed.Pack(request)
    kept = console_pb2.Rejection.FromString(
        rejections._request(request, request.SerializeToString()))  # noqa: SLF001
    unknown = unknown_fields.UnknownFieldSet(kept)
    assert [(f.field_number, f.data) for f in (unknown[i] for i in range(len(unknown)))] == \
        [(rejections.REQUEST_FIELD, packed.SerializeToString())]


def test_a_refusal_of_no_project_id_is_kept_under_none_and_spares_its_batch(
        store: Store) -> None:
    """A project segment of 1,500 four-byte characters went into the indexed project
    column: PostgreSQL cannot index a row past 2,704 bytes, so the refusals' job
    failed, and with it every other job of its batch (another client's product was
    answered INTERNAL)."""
    rejections = Rejections(store, SystemClock(), 1000, 3600)
    free = writer_held(store)  # the writer is busy: what follows is one batch
    # (characters that do not repeat: an index compresses a repeated one)
    wide = "".join(chr(0x20000 + n * 7) for n in range(1_500))
    refuse(rejections, 1, f"projects/{wide}/locations/global/catalogs/c")
    created = threading.Thread(target=store.create_product,
                               args=(f"{CATALOG}/branches/0", "sku", b""))
    created.start()
    time.sleep(0.2)  # (queued behind the held job, beside the refusal's)
    free.set()
    created.join(10)
    store.flush()
    assert list(store.get_products(f"{CATALOG}/branches/0", ["sku"])) == ["sku"]
    assert len(store.rejections_after(None, 0, 10)) == 1  # (its request cut: a long one)
    kept = store._fetch("SELECT project FROM rejections", ())  # type: ignore[attr-defined]
    assert [tuple(row) for row in kept] == [("",)]


@pytest.mark.parametrize(("method", "parent", "kept"), [
    ("/google.cloud.talent.v4beta1.EventService/CreateClientEvent", "projects/p",
     "projects/p/tenants/default_tenant"),
    ("/google.cloud.talent.v4beta1.EventService/CreateClientEvent", "projects/p/tenants/t",
     "projects/p/tenants/t"),
    ("/google.cloud.talent.v4beta1.EventService/CreateClientEvent", "projects/-", "projects/-"),
    ("/google.cloud.talent.v4beta1.EventService/CreateClientEvent", "projects/", "projects/"),
    ("/google.cloud.talent.v4beta1.EventService/CreateClientEvent", "projects/a b",
     "projects/a b"),
    ("/google.cloud.talent.v4.EventService/CreateClientEvent", "projects/p", "projects/p"),
    ("/google.cloud.retail.v2.UserEventService/WriteUserEvent", "projects/p", "projects/p"),
], ids=["v4beta1-project-alone", "v4beta1-tenant", "every-project", "no-project",
        "not-a-project-id", "v4", "retail"])
def test_a_v4beta1_refusal_of_a_project_alone_is_kept_under_its_default_tenant(
        method: str, parent: str, kept: str) -> None:
    """As its events are (the tenant's list of refusals held none of them)."""
    assert rejections.kept_under(method, parent) == kept


def test_the_trim_after_an_import_batch_takes_its_own_projects_refusals_only(
        store: Store) -> None:
    # Once a batch's step kept its failed lines, every project's refusals were trimmed
    # (one statement each), after every batch with a failure: beside 1,000 projects'
    # refusals, some 30 ms more of the writer (PostgreSQL) a batch. The others' are trimmed
    # as they get refusals, and by the periodic trim.
    other = "projects/other/locations/global/catalogs/c"
    for n in range(3):
        refuse(Rejections(store, SystemClock(), 10, 3600), n, other)
    store.flush()
    keeper = Rejections(store, SystemClock(), 10, 3600, keep_per_project=1)
    operation = f"{CATALOG}/operations/import-1"
    store.add_rejections(keeper.import_rows(operation, ["gs://b/f line 1: x: bad"] * 2),
                         10, 0, None).result()
    keeper.imported(operation)
    store.flush()
    kept = [shown(*r) for r in store.rejections_after(None, 0, 1000)]
    assert sorted(r.parent for r in kept) == sorted([CATALOG] + [other] * 3)


def test_a_refusal_naming_many_long_violations_is_kept_within_a_few_kb(store: Store) -> None:
    # An answer names up to 100 violations of up to 2,000 characters each (a
    # description may quote what was sent: `got 'XXX...'`), and the message and 20
    # violations were kept whole: 120 products of a currency code of 1,000 characters
    # made a kept row of 128 KB, 500 KB of 4-byte characters.
    few_kb = KEPT_TEXT_CHARS  # (of characters: the message's, and the violations' together)
    error = InvalidArgument([
        FieldViolation(
            f"user_event.product_details[{n}].product.price_info.currency_code",
            "must be a three-letter ISO 4217 code such as USD, got " + repr("\U0001d54f" * 990))
        for n in range(120)])
    keeper = Rejections(store, SystemClock(), 10, 3600)
    keeper.refused(WRITE, "grpc", user_event_service_pb2.WriteUserEventRequest(parent=CATALOG),
                   error, "k")
    store.flush()
    [row] = store.rejections_after(None, 0, 10)
    assert len(row.payload) < 4 * 3 * few_kb, len(row.payload)
    kept = shown(*row)
    assert len(kept.message) <= few_kb
    # (cut at a violation, still saying how many it leaves out, as the console reads it)
    shown_count = kept.message.count("; ")
    assert kept.message.endswith(f"; and {120 - shown_count} more violations"), kept.message[-80:]
    assert kept.field_violations[0] == error.details()[0].field_violations[0]
    assert sum(len(v.field) + len(v.description) for v in kept.field_violations[1:]) \
        <= few_kb


def test_a_failed_import_line_naming_many_long_violations_is_kept_within_a_few_kb(
        store: Store) -> None:
    # As a refused call's: an import line's failure was kept whole, 100 violations quoting
    # 990 4-byte characters each a row of 400 KB (and a batch's step held 1,000 of them).
    from server.errors import summary
    failure = "gs://b/f.json line 4: " + summary([FieldViolation(
        f"user_event.product_details[{n}].product.price_info.currency_code",
        "must be a three-letter ISO 4217 code such as USD, got " + repr("\U0001d54f" * 990))
        for n in range(100)])
    keeper = Rejections(store, SystemClock(), 10, 3600)
    [row] = keeper.import_rows(f"{CATALOG}/operations/import-1", [failure])
    assert len(row.payload) < 4 * 3 * KEPT_TEXT_CHARS, len(row.payload)
    kept = shown(0, row.payload)
    assert len(kept.message) <= KEPT_TEXT_CHARS
    assert kept.message.endswith(rejections.IMPORT_CUT) and failure.startswith(
        kept.message[:-len(rejections.IMPORT_CUT)] + "; ")  # (cut at a violation)
    assert kept.field_violations[0].field.endswith("[0].product.price_info.currency_code")
    assert sum(len(v.field) + len(v.description) for v in kept.field_violations[1:]) \
        <= KEPT_TEXT_CHARS


def test_refusals_of_long_messages_are_told_alike_by_their_message_as_kept(
        store: Store) -> None:
    # Refusals alike (the same call, key and answer) share their common part, made once
    # and held for up to ALIKE_KINDS kinds, each told by its answer's message: held
    # whole, 250 refusals of 100 long violations each grew a server by 180 MB.
    def error(kind: int) -> InvalidArgument:  # (made while traced, then let go)
        return InvalidArgument([FieldViolation(
            f"user_event.product_details[{n}].product.price_info.currency_code",
            f"must be a three-letter ISO 4217 code such as USD, got {kind}" + "\U0001d54f" * 990)
            for n in range(100)])

    request = user_event_service_pb2.WriteUserEventRequest(parent=CATALOG)
    keeper = Rejections(store, SystemClock(), 100, 3600)
    tracemalloc.start()
    try:
        for kind in range(50):
            keeper.refused(WRITE, "grpc", request, error(kind), "k")
        store.flush()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(store.rejections_after(None, 0, 100)) == 50
    # (each message is 400 KB: 50 of them held whole are 20 MB; as kept, about 100 KB of
    # message and violations each: 10-13 MB held in all)
    assert held < 16_000_000, held


def test_refusals_alike_in_their_message_as_kept_keep_their_own_violations(
        store: Store) -> None:
    # Refusals are told alike by their message as kept (cut to about KEPT_TEXT_CHARS),
    # while their violations are kept to as many characters counted otherwise (no
    # "field: " nor "; "): a violation past the message's cut but within the kept ones,
    # the fifteenth of these, was the first refusal's in every refusal alike that followed.
    def error(fifth: str) -> InvalidArgument:
        return InvalidArgument([
            *(FieldViolation(f"f{n}", "x" * 810) for n in range(14)),
            FieldViolation("g", fifth * 810), FieldViolation("h", "y" * 810)])

    first, second = error("a"), error("b")
    assert rejections._message(first) == rejections._message(second)  # (alike, as kept)
    keeper = Rejections(store, SystemClock(), 10, 3600)
    for fifth, refusal in (("a", first), ("b", second)):
        keeper.refused(WRITE, "grpc", user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=user_event_pb2.UserEvent(session_id=fifth)),
            refusal, "k")
    store.flush()
    kept = [shown(*row) for row in store.rejections_after(None, 0, 10)]
    assert len(kept) == 2
    fifths = sorted(v.description[:1] for k in kept for v in k.field_violations
                    if v.field == "g")
    assert fifths == ["a", "b"]  # (each its own)


def test_the_callers_key_is_masked_where_the_cut_of_a_long_message_would_split_it(
        store: Store) -> None:
    # A message past KEPT_TEXT_CHARS was cut first and masked after: a key standing
    # across the cut was kept in part, where no mask could find it.
    key = "the-callers-key-7f3a"
    message = "x" * (rejections.KEPT_TEXT_CHARS - 10) + key + "y" * 100
    keeper = Rejections(store, SystemClock(), 10, 3600)
    keeper.refused(WRITE, "grpc", user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG), PermissionDenied(message), "k", key)
    store.flush()
    [row] = store.rejections_after(None, 0, 10)
    kept = shown(*row)
    assert key[:5] not in kept.message, kept.message[-40:]
    assert kept.message.startswith("x" * (rejections.KEPT_TEXT_CHARS - 10))


def test_the_callers_key_is_masked_where_a_violations_clip_would_split_it(
        store: Store) -> None:
    # Each violation's field and description are clipped (MAX_REPORTED_CHARS) as the
    # error is made, its message too: masked after, a key standing across the clip of
    # a description quoting what was sent was kept in part, in the message and in the
    # violation, where no mask could find it.
    key = "the-callers-key-7f3a"
    description = "x" * (MAX_REPORTED_CHARS - 10) + key + "y" * 100
    keeper = Rejections(store, SystemClock(), 10, 3600)
    keeper.refused(WRITE, "grpc", user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG), InvalidArgument.field("user_event.uri", description), "k", key)
    store.flush()
    [row] = store.rejections_after(None, 0, 10)
    kept = shown(*row)
    assert key[:5] not in kept.message, kept.message[-40:]
    [violation] = kept.field_violations
    assert key[:5] not in violation.description, violation.description[-40:]
    assert violation.description.startswith("x" * (MAX_REPORTED_CHARS - 10) + KEY_MASK[:7])


def test_the_callers_key_is_masked_where_the_cut_of_a_long_parent_would_split_it(
        store: Store) -> None:
    key = "the-callers-key-7f3a"
    parent = CATALOG + "/x" + "x" * (rejections.KEPT_PARENT_CHARS - len(CATALOG) - 12) + key
    keeper = Rejections(store, SystemClock(), 10, 3600)
    keeper.refused(WRITE, "grpc", user_event_service_pb2.WriteUserEventRequest(
        parent=parent), InvalidArgument.field("parent", "bad"), "k", key)
    store.flush()
    [row] = store.rejections_after(None, 0, 10)
    kept = shown(*row)
    assert key[:5] not in kept.parent, kept.parent[-40:]
    assert key[:5].encode() not in row.payload
