"""SQLite store: one file in WAL mode (or memory://), durable group commit.

All writes go through one writer thread (SQLite has one writer anyway), which
commits every queued write in one transaction with synchronous=FULL, so an
acknowledged write survives a crash or a power cut. Reads use their own
connections and never wait for the writer (WAL).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from server.store.group_commit import GroupCommitter, Job
from server.store.migrations import MIGRATIONS
from server.store.rows import ClientEventRow, EventQuery, EventRow, where_clause

log = logging.getLogger(__name__)

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO user_events (catalog, event_type, visitor_id, user_id, "
    "event_time_us, joined, dedup_key, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class SqliteStore:
    """Store on one SQLite database; `path=None` keeps it in memory."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._memory = path is None
        if path is not None:
            folder = os.path.dirname(os.path.abspath(path))
            os.makedirs(folder, exist_ok=True)
        # In memory there is one database per connection, so everything shares
        # the writer's connection under a lock.
        self._shared_lock = threading.Lock()
        self._writer_conn = self._connect()
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._closed = False
        self._migrate()
        self._committer = GroupCommitter(self._apply_batch, name="footfall-sqlite-writer")

    # -- connections -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path or ":memory:", isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if not self._memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        return conn

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError("store is closed")
        if self._memory:
            with self._shared_lock:
                yield self._writer_conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._shared_lock:
                self._readers.append(conn)
        yield conn

    def _migrate(self) -> None:
        conn = self._writer_conn
        # BEGIN IMMEDIATE takes the write lock, so two processes starting at once
        # apply each migration exactly once.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "version INTEGER PRIMARY KEY, description TEXT NOT NULL)")
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, description, statements in MIGRATIONS:
                if version in done:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                             (version, description))
                log.info("applied migration %d: %s", version, description)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- writes ------------------------------------------------------------

    def _apply_batch(self, jobs: list[Job]) -> None:
        with self._shared_lock if self._memory else _nothing():
            conn = self._writer_conn
            results: list[tuple[Job, Any, BaseException | None]] = []
            conn.execute("BEGIN")
            try:
                pending_rows: list[EventRow] = []
                row_jobs: list[Job] = []
                for job in jobs:
                    if job.rows is not None:
                        pending_rows.extend(job.rows)
                        row_jobs.append(job)
                        continue
                    if pending_rows:
                        conn.executemany(_INSERT_EVENT, [r.as_params() for r in pending_rows])
                        pending_rows = []
                    assert job.fn is not None
                    conn.execute("SAVEPOINT job")
                    try:
                        value = job.fn(conn)
                    except Exception as exc:  # one job's failure leaves the others intact
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                        results.append((job, None, exc))
                    else:
                        conn.execute("RELEASE job")
                        results.append((job, value, None))
                if pending_rows:
                    conn.executemany(_INSERT_EVENT, [r.as_params() for r in pending_rows])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        for job in row_jobs:
            job.future.set_result(None)
        for job, value, error in results:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)

    def write_user_events(self, rows: Sequence[EventRow], *, wait: bool = True) -> None:
        future = self._committer.submit_rows(rows)
        if wait:
            future.result()

    def create_client_event(self, row: ClientEventRow) -> tuple[bytes, bool]:
        def insert_unless_present(conn: sqlite3.Connection) -> tuple[bytes, bool]:
            found = conn.execute(
                "SELECT event FROM client_events WHERE tenant = ? AND event_id = ?",
                (row.tenant, row.event_id)).fetchone()
            if found is not None:
                return bytes(found[0]), False
            conn.execute("INSERT INTO client_events VALUES (?, ?, ?, ?)",
                         (row.tenant, row.event_id, row.create_time_us, row.payload))
            return row.payload, True

        result: tuple[bytes, bool] = self._committer.submit_fn(insert_unless_present).result()
        return result

    # -- reads -------------------------------------------------------------

    def count_user_events(self, query: EventQuery) -> int:
        where, params = where_clause(query)
        with self._reader() as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM user_events WHERE {where}",
                                    params).fetchone()[0])

    def list_user_events(self, query: EventQuery, limit: int,
                         after_id: int = 0) -> list[tuple[int, bytes]]:
        where, params = where_clause(query)
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT id, event FROM user_events WHERE {where} AND id > ? "
                "ORDER BY id LIMIT ?", [*params, after_id, limit]).fetchall()
        return [(int(i), bytes(e)) for i, e in rows]

    # -- lifecycle ---------------------------------------------------------

    @property
    def commits(self) -> int:
        """Write transactions committed so far (one per group-commit batch)."""
        return self._committer.batches

    def flush(self) -> None:
        self._committer.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._committer.close()
        self._closed = True
        with self._shared_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer_conn.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield
