"""Keeping refusals (server/console/rejections.py) over real stores: memory, a
SQLite file and PostgreSQL (when FOOTFALL_TEST_POSTGRES_DSN is set)."""

from __future__ import annotations

import json
import threading
from typing import Any

from footfall.console.v1 import console_pb2
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2

from server.clock import SystemClock
from server.console.rejections import Rejections
from server.errors import InvalidArgument
from server.store import Store
from server.store.group_commit import Job

from . import test_store
from .test_store import CATALOG

store_url, stores, store = test_store.store_url, test_store.stores, test_store.store
WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"


def refuse(rejections: Rejections, n: int) -> None:
    request = user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG, user_event=user_event_pb2.UserEvent(session_id=f"s{n}"))
    rejections.refused(WRITE, "grpc", request,
                       InvalidArgument.field("user_event.visitor_id", "is required"), "k")


def sessions(store: Store) -> list[str]:
    kept = store.rejections_after(None, 0, 1000)
    return [json.loads(console_pb2.Rejection.FromString(r.payload).request_json)
            ["userEvent"]["sessionId"][1:] for r in kept]


def test_a_flood_of_refusals_is_one_write_job_per_commit(store: Store) -> None:
    jobs: list[int] = []
    store.on_commit(lambda batch: jobs.append(len(batch)))
    rejections = Rejections(store, SystemClock(), 1000, 3600)
    busy, free = threading.Event(), threading.Event()

    def hold(_db: Any) -> None:  # the writer is busy while the flood comes
        busy.set()
        free.wait(10)

    store._committer.submit(Job(fn=hold))  # type: ignore[attr-defined]  # noqa: SLF001
    assert busy.wait(10)
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


def test_a_keep_count_of_0_keeps_none(store: Store) -> None:
    jobs: list[int] = []
    store.on_commit(lambda batch: jobs.append(len(batch)))
    rejections = Rejections(store, SystemClock(), 0, 3600)
    for n in range(5):
        refuse(rejections, n)
    rejections.import_failures(f"{CATALOG}/operations/import-1", ["gs://b/f line 1: x: bad"])
    store.flush()
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
