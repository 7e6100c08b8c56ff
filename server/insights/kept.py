"""The latest tables computed (every row of a question, sorted), kept for the pages
that follow, and one computation of a question at a time.

A per-product or per-job table costs time in proportion to its rows, and a page
of it was the whole table computed again: 600,000 products took 4-6 s of the
server's CPU a page (SQLite or PostgreSQL), and 8 readers of one first page at
once 48 s of CPU (bench/insights_products.py). So a table is kept under its question (what selects
and sorts its rows: the request less its paging) and the store's data version
(Store.data_version), read just before the table was computed; a page is served
from it only while that version is still the store's, that is while no write of
any process has committed since. So a page shows every write committed before it
was asked, as when each page was computed afresh: what a page token promises is
unchanged, the rows from its offset of the table as it is when the page is asked
(a write between two pages may move rows across their boundary, as it did).

Computations of one question take turns: a reader that comes while another
computes it waits, then takes the table computed next if not that one (whose
version was read before it came, unless nothing was written since): the table of
a version read after a reader came shows every write committed before it came.
So however busy the writes (on PostgreSQL, the whole cluster's), readers of one
question at once compute it twice at most.

Bounded: KEPT_TABLES tables, KEPT_ROWS rows in all (a table of more is not kept),
none older than KEPT_SECONDS.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from server.store import Store

T = TypeVar("T")

KEPT_TABLES = 8
# A kept row is some 200 bytes (a ProductRow and its id): 1,000,000 about 200 MB.
KEPT_ROWS = 1_000_000
KEPT_SECONDS = 600.0  # a reader pages on within minutes, or asks again


class _Table(NamedTuple):
    version: object  # the store's data version read before it was computed
    covers: int  # the readers (tickets) come before that version was read
    table: Any
    rows: int
    made: float  # clock seconds


class Kept:
    """Tables kept per question (see the module's docstring); thread-safe."""

    def __init__(self, tables: int = KEPT_TABLES, rows: int = KEPT_ROWS,
                 seconds: float = KEPT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._tables_kept, self._rows_kept, self._seconds = tables, rows, seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._tables: OrderedDict[Hashable, _Table] = OrderedDict()  # latest used last
        self._turns: dict[Hashable, list[Any]] = {}  # question -> [lock, holders]
        self._tickets = 0  # readers come so far, each numbered
        self.computed = 0  # tables computed so far (for tests and benchmarks)

    def table(self, store: Store, question: Hashable, compute: Callable[[], T],
              rows: Callable[[T], int]) -> T:
        """The table of `question` (hashable, and naming its kind of table):
        the one kept, when the store's data version is still the one it was
        computed at, else `compute()` (kept when its `rows` are few enough)."""
        with self._lock:
            self._tickets += 1
            ticket = self._tickets
        with self._turn(question):
            with self._lock:
                covers = self._tickets  # (read before the version: come before it)
            version = store.data_version()
            with self._lock:
                self._forget_old()
                kept = self._tables.get(question)
                if kept is not None and (kept.version == version or kept.covers >= ticket):
                    self._tables.move_to_end(question)
                    return kept.table  # type: ignore[no-any-return]
                self._tables.pop(question, None)  # (stale: let it go before computing)
            table = compute()
            self.computed += 1
            count = rows(table)
            if count <= self._rows_kept:
                with self._lock:
                    self._tables[question] = _Table(version, covers, table, count,
                                                    self._clock())
                    self._trim()
            return table

    @contextmanager
    def _turn(self, question: Hashable) -> Iterator[None]:
        """Held while `question` is looked up and computed: one reader at a time."""
        with self._lock:
            turn = self._turns.setdefault(question, [threading.Lock(), 0])
            turn[1] += 1
        try:
            with turn[0]:
                yield
        finally:
            with self._lock:
                turn[1] -= 1
                if not turn[1]:
                    del self._turns[question]

    def _forget_old(self) -> None:
        """Let go of the tables older than KEPT_SECONDS (the lock held)."""
        oldest = self._clock() - self._seconds
        for question in [q for q, kept in self._tables.items() if kept.made < oldest]:
            del self._tables[question]

    def _trim(self) -> None:
        """Let go of the least recently used tables past the bounds (the lock held)."""
        while (len(self._tables) > self._tables_kept
               or sum(kept.rows for kept in self._tables.values()) > self._rows_kept):
            self._tables.popitem(last=False)
