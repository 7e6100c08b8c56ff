"""Slow reads (insights, counts that decode every event) never hold the loop's
pool, whose few threads serve every other read of every caller."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from footfall.console.v1 import console_pb2
from footfall.insights.v1 import insights_pb2
from footfall.retail.v2 import product_service_pb2

from server.console.service import ConsoleService
from server.insights.service import InsightsService
from server.loop import LONG_READS_PER_SHARE, LoopThread, long_read, long_read_turn, off_loop
from server.retail.product_service import ProductService
from server.store import Store, open_store

CATALOG = "projects/p/locations/global/catalogs/c"
POOL = 2  # --workers


class HeldStore:
    """The real store, whose every call waits until `release` is set (a read over
    a large catalog, held as long as the test wants)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if not callable(real):  # a property (acknowledged_uncommitted) reads no rows
            return real

        def held(*args: Any, **kwargs: Any) -> Any:
            self.entered.release()
            self.release.wait()
            return real(*args, **kwargs)

        return held


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/events.db")
    yield opened
    opened.close()


def quick_read_beside(store: Store, held: HeldStore,
                      slow: Callable[[], Awaitable[Any]]) -> None:
    """Run POOL + 1 of the `slow` calls (each held in the store), then a quick read
    of anyone else's on the pool: it must be answered while they run. (On the pool
    they held every thread, and it waited for them all.)"""
    loop = LoopThread(POOL)
    calls = [asyncio.run_coroutine_threadsafe(slow(), loop.loop) for _ in range(POOL + 1)]
    try:
        assert held.entered.acquire(timeout=30)  # (one is reading: the rest are queued)
        assert loop.run(off_loop(store.last_id, "user_events"), timeout=30) == 0
    finally:
        held.release.set()
        for call in calls:
            call.result(timeout=30)
        loop.close()


def test_insights_running_long_leave_the_pool_to_other_reads(store: Store) -> None:
    held = HeldStore(store)
    service = InsightsService(held)  # type: ignore[arg-type]
    request = insights_pb2.ComputeTotalsRequest(parent=CATALOG)
    quick_read_beside(store, held, lambda: service.ComputeTotals(request, None))


def test_catalogs_listed_with_their_counts_leave_the_pool_to_other_reads(store: Store) -> None:
    held = HeldStore(store)
    # (a list of catalogs needs neither the watches nor the policy)
    service = ConsoleService(held, None, None)  # type: ignore[arg-type]
    request = console_pb2.ListCatalogsRequest(parent="projects/p",
                                              view=console_pb2.DATA_SET_VIEW_FULL)
    quick_read_beside(store, held, lambda: service.ListCatalogs(request, None))


def test_events_listed_by_a_decoded_term_leave_the_pool_to_other_reads(store: Store) -> None:
    """A list by sessionId or productId decodes up to 5,000 events a call: 64 of one
    reader key's at once held the pool, and another project's reads waited 7 s."""
    held = HeldStore(store)
    service = ConsoleService(held, None, None)  # type: ignore[arg-type]
    request = console_pb2.ListUserEventsRequest(parent=CATALOG, filter='sessionId = "s1"')
    quick_read_beside(store, held, lambda: service.ListUserEvents(request, None))


def test_filtered_products_leave_the_pool_to_other_reads(store: Store) -> None:
    """A filtered page (type = "COLLECTION" in a branch of primaries) reads the whole
    branch: 16 of one reader key's at once, over 200k products, held the pool, and
    another project's reads waited 5 to 10 s."""
    held = HeldStore(store)
    service = ProductService(held, None, None, None)  # type: ignore[arg-type]
    request = product_service_pb2.ListProductsRequest(parent=f"{CATALOG}/branches/0",
                                                      filter='type = "COLLECTION"')
    quick_read_beside(store, held, lambda: service.ListProducts(request, None))


class Held:
    """Reads of share "a" held until `release`, counting how many run at once."""

    def __init__(self) -> None:
        self.running = self.most = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def read(self) -> str:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.wait(30)
        with self._lock:
            self.running -= 1
        return "a"


def test_one_projects_long_reads_leave_threads_to_another_projects() -> None:
    """Six counts of one reader key's project, each decoding a whole catalog, held
    every long-read thread: another project's count waited 16 s behind them."""
    loop, held = LoopThread(POOL), Held()
    calls = [asyncio.run_coroutine_threadsafe(long_read(held.read, share="a"), loop.loop)
             for _ in range(6)]
    try:
        deadline = time.monotonic() + 30
        while held.running < LONG_READS_PER_SHARE:  # (threads start when they start)
            assert time.monotonic() < deadline, held.running
            time.sleep(0.01)
        # another project's read is answered while the first's are held
        assert loop.run(long_read(lambda: "b", share="b"), timeout=30) == "b"
        time.sleep(0.1)
        assert held.most == LONG_READS_PER_SHARE  # the others wait, holding no thread
    finally:
        held.release.set()
        assert [call.result(timeout=30) for call in calls] == ["a"] * 6
        loop.close()


def test_a_cancelled_long_read_keeps_its_turn_until_its_thread_ends() -> None:
    """A caller that gave up (its deadline passed) freed its turn while its read went on:
    eight calls of 50 ms deadlines and 2 s of work ran four at once (two allowed), and
    another project's read waited 1.5 s."""
    loop, held = LoopThread(POOL), Held()

    async def impatient() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(long_read(held.read, share="a"), 0.05)

    try:
        for _ in range(8):
            loop.run(impatient(), timeout=30)
        deadline = time.monotonic() + 30
        while held.running < LONG_READS_PER_SHARE:  # (threads start when they start)
            assert time.monotonic() < deadline, held.running
            time.sleep(0.01)
        time.sleep(0.2)
        assert held.most == LONG_READS_PER_SHARE, held.most  # the others never started
        assert loop.run(long_read(lambda: "b", share="b"), timeout=30) == "b"
    finally:
        held.release.set()
        loop.close()


def test_two_loops_share_no_turn() -> None:
    """Two servers of one process (tests): a turn of one loop's was awaited on the
    other (RuntimeError: bound to a different event loop)."""
    first, second, held = LoopThread(POOL), LoopThread(POOL), Held()
    try:
        calls = [asyncio.run_coroutine_threadsafe(long_read(held.read, share="p"),
                                                  first.loop) for _ in range(3)]
        deadline = time.monotonic() + 30
        while held.running < LONG_READS_PER_SHARE:  # the first loop's turns all taken
            assert time.monotonic() < deadline, held.running
            time.sleep(0.01)
        assert second.run(long_read(lambda: "other", share="p"), timeout=30) == "other"
        held.release.set()
        assert [call.result(timeout=30) for call in calls] == ["a"] * 3
    finally:
        held.release.set()
        first.close()
        second.close()


def test_one_projects_pages_of_events_are_read_two_at_once(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page of 1,000 events holds a thread, and the interpreter's one lock, for up
    to a second: 16 at once of one reader key, on the loop's pool, took another
    project's durable writes from 50 a second to 4-24. At most two of one project's
    pages are read at once (the others wait, holding no thread), and another
    project's page is read meanwhile."""
    from server.console import queries
    held = Held()

    def page(store: Store, events: queries.EventFilter, *rest: Any
             ) -> console_pb2.ListUserEventsResponse:
        if events.query.catalog == CATALOG:
            held.read()
        return console_pb2.ListUserEventsResponse()

    monkeypatch.setattr(queries, "list_user_events", page)
    service = ConsoleService(store, None, None)  # type: ignore[arg-type]
    loop = LoopThread(8)  # (room on the loop's pool for all six)
    calls = [asyncio.run_coroutine_threadsafe(service.ListUserEvents(
        console_pb2.ListUserEventsRequest(parent=CATALOG), None), loop.loop) for _ in range(6)]
    try:
        deadline = time.monotonic() + 30
        while held.running < LONG_READS_PER_SHARE:  # (threads start when they start)
            assert time.monotonic() < deadline, held.running
            time.sleep(0.01)
        other = console_pb2.ListUserEventsRequest(
            parent="projects/q/locations/global/catalogs/c")
        loop.run(service.ListUserEvents(other, None), timeout=30)
        time.sleep(0.1)
        assert held.most == LONG_READS_PER_SHARE, held.most
    finally:
        held.release.set()
        for call in calls:
            call.result(timeout=30)
        loop.close()


def test_a_read_cancelled_as_its_turn_is_passed_on_ends_cancelled() -> None:
    """A read whose caller went (its deadline passed) in the loop's step in which another
    read ended and passed its turn on: the turn skipped it (a cancelled waiter) and it
    then looked for itself in the line, ValueError; each such call was answered and
    counted INTERNAL and logged with a traceback (454 of 2,000 ListUserEvents of one
    reader key with 30 s deadlines in one attack run)."""

    async def scenario() -> None:
        release = [asyncio.Event() for _ in range(LONG_READS_PER_SHARE)]

        async def holding(event: asyncio.Event) -> None:
            async with long_read_turn("p"):
                await event.wait()

        holders = [asyncio.create_task(holding(event)) for event in release]
        await asyncio.sleep(0)  # (they take both turns)
        waiting = asyncio.create_task(holding(asyncio.Event()))
        await asyncio.sleep(0)  # (in line)
        release[0].set()  # its holder passes its turn on in the next step ...
        waiting.cancel()  # ... in which the one in line learns it was cancelled
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release[1].set()
        await asyncio.gather(*holders)
        # both turns free again: two more reads of the project go at once
        both = asyncio.Event()
        await asyncio.wait_for(asyncio.gather(holding(both), holding(both), _set(both)), 5)

    asyncio.run(scenario())


async def _set(event: asyncio.Event) -> None:
    event.set()
