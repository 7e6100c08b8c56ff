"""What the writer's connection says to PostgreSQL for a write: its round trips and
statements, read from libpq's trace of that connection (the real database answers).

At one caller a durable write waits for its round trips and little else: a batch of
rows is one statement in autocommit (turn, rows and rollups), so one round trip.
Skipped unless FOOTFALL_TEST_POSTGRES_DSN is set (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from psycopg import pq

from server.store.postgres import PostgresStore

from .test_store_postgres import BRANCH, CATALOG, product, row, write_joined

Messages = list[tuple[str, str]]


@pytest.fixture
def store(postgres_url: str, postgres_databases: Any) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_url)
    try:
        opened.write_user_events([row("warm-up")])  # its catalog committed
        opened.create_product(BRANCH, "sku-1", product("Title", 10.0))
        write_joined(opened, "joined-once")  # the branch's products read, and kept
        yield opened
    finally:
        opened.close()
        postgres_databases.empty(postgres_url)


@contextmanager
def traced(store: PostgresStore) -> Iterator[Messages]:
    """The protocol messages of the writer's connection while the block runs, in
    order: ("F", name) sent, ("B", name) received. (The writer is idle on entry
    and on exit: the block waits for what it writes.)"""
    conn = store._writer_conn  # noqa: SLF001
    assert conn is not None
    messages: Messages = []
    with tempfile.NamedTemporaryFile("r") as trace:
        fd = os.open(trace.name, os.O_WRONLY)
        try:
            conn.pgconn.trace(fd)  # (libpq writes through a stream of its own on fd)
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                yield messages
            finally:
                conn.pgconn.untrace()  # (flushes that stream)
        finally:
            os.close(fd)
        for line in trace.read().splitlines():
            direction, _, what = line.split("\t")[:3]
            messages.append((direction, what.split(" ", 1)[0]))


def round_trips(messages: Messages) -> int:
    """How many times the client sent something after hearing from the server."""
    return sum(1 for i, (direction, _) in enumerate(messages)
               if direction == "F" and (i == 0 or messages[i - 1][0] == "B"))


def statements(messages: Messages) -> int:
    return sum(1 for direction, name in messages
               if direction == "F" and name in ("Execute", "Query"))


def pixel_then_read(store: PostgresStore) -> None:
    """A pixel (answered before its commit), then a read that waits for it to be
    committed (answered_stored: the store's flush) within the writer's linger."""
    async def both() -> None:
        store.write_user_events([row("pixel")], wait=False)
        await store.flush_async()

    asyncio.run(both())


WRITES: dict[str, tuple[Callable[[PostgresStore], object], int, int]] = {
    # what is written: (it, round trips, statements)
    "one-row": (lambda store: store.write_user_events([row("one")]), 1, 1),
    "sixteen-rows": (lambda store: store.write_user_events(
        [row(f"r{n}") for n in range(16)]), 1, 1),
    "joined": (lambda store: write_joined(store, "joined"), 1, 1),
    # the turn, the catalog's row and the rows, in pipeline mode
    "new-catalog": (lambda store: store.write_user_events(
        [dataclasses.replace(row("first"), catalog=f"{CATALOG}-new")]), 1, 3),
    # BEGIN, the turn, the rows, SAVEPOINT and RELEASE of the flush's job, COMMIT: 6
    "pixel-then-read": (pixel_then_read, 1, 1),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_write_is_one_round_trip(store: PostgresStore, write: str) -> None:
    it, trips, sent = WRITES[write]
    # (a pixel's batch lingers for more, nobody waiting: here until the read's flush
    # comes, however slow this machine, as it does when the read comes in time)
    store._committer._linger_seconds = 30.0  # type: ignore[attr-defined]  # noqa: SLF001
    with traced(store) as messages:
        it(store)
    assert (round_trips(messages), statements(messages)) == (trips, sent), messages
