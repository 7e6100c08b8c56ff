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
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from server.store import sqlite_checks
from server.store.group_commit import GroupCommitter, Job
from server.store.migrations import MIGRATIONS, check_readable, statement_for
from server.store.rows import (
    CATALOGS_WITH_EVENTS_BEFORE,
    OPERATION_COLUMNS,
    ClientEventRow,
    EventQuery,
    EventRow,
    LeaseLost,
    OperationRecord,
    ProductCheck,
    Progress,
    Step,
    StepResult,
    StoreFull,
    StoreUnusable,
    where_clause,
)

log = logging.getLogger(__name__)

_INSERT_EVENTS = ("INSERT OR IGNORE INTO user_events (catalog, event_type, visitor_id, user_id, "
                  "event_time_us, event_time_ns, joined, dedup_key, event, source) VALUES ")
_ROW_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# How often the background checkpointer copies the WAL into the database, and the
# WAL size (4 KiB pages) past which the writer checkpoints itself.
CHECKPOINT_SECONDS = 0.5
# After a write failed for want of space, the free space the file system must have
# again before writes count as possible (health SERVING, write_async accepted):
# about twice what the WAL may grow to between checkpoints. Without this margin a
# nearly full disk flaps: a small write commits, the next large one does not.
ROOM_TO_RESUME = 32 * 2**20
# How long a health check waits for its probe write (the writer may be between two
# retries of a queued batch).
PROBE_SECONDS = 3.0
WAL_AUTOCHECKPOINT_PAGES = 4_000
# Rows per INSERT statement (10 parameters each, under SQLite's 32,766 limit).
_ROWS_PER_STATEMENT = 500
PRODUCT_SCAN_BATCH = 500  # products a check reads at once when it looks for references


def _insert_events(conn: sqlite3.Connection, rows: Sequence[EventRow]) -> int:
    """Insert `rows` (skipping duplicates); returns how many were new.

    One multi-row statement per chunk rather than executemany: sqlite3 releases
    and retakes the GIL around every step, and with the gRPC threads wanting it
    too each retake can wait a whole switch interval. Fewer steps, fewer waits.
    """
    before = conn.total_changes
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        params = [value for row in chunk for value in row.as_params()]
        conn.execute(_INSERT_EVENTS + ", ".join([_ROW_MARKS] * len(chunk)), params)
    return conn.total_changes - before


class SqliteStore:
    """Store on one SQLite database; `path=None` keeps it in memory.

    Opening raises StoreUnusable (one line naming the file and the problem) for a
    file that is no database, is damaged (see sqlite_checks), is a directory or
    cannot be written. A write that cannot commit for want of disk space raises
    StoreFull; from then on `healthy()` is False and write_async is refused until
    the disk has ROOM_TO_RESUME free and a write commits again.

    `read_only` (for the CLI) opens an existing file without changing it: no
    folder or file is created, no migration applied; ValueError when `path` is
    not a Footfall store this version can read.
    """

    def __init__(self, path: str | None, synchronous: str = "FULL", *,
                 read_only: bool = False) -> None:
        self.path = path
        # FULL: a commit survives a power cut. NORMAL: it survives a crash of the
        # process (kill -9), not of the machine; about twice the write throughput.
        self._synchronous = synchronous
        self._memory = path is None
        self._read_only = read_only
        if path is not None and read_only and not os.path.isfile(path):
            raise ValueError(f"no store at {os.path.abspath(path)}")
        if path is not None and not read_only:
            sqlite_checks.check_file(path)
        # In memory there is one database per connection, so everything shares
        # the writer's connection under a lock.
        self._shared_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._closed = False
        self._full = False  # the last write failed for want of disk space
        self._writer_conn = self._open_checked()
        self._committer = GroupCommitter(self._apply_batch, name="footfall-sqlite-writer")
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        if not self._memory and not read_only:
            # Most checkpointing (copying the WAL back into the database, with an
            # fsync) is done off the commit path by a background thread; by default
            # SQLite runs one inside whichever commit crosses 1,000 WAL pages, and that
            # writer's callers wait ~30 ms. The writer still checkpoints past
            # WAL_AUTOCHECKPOINT_PAGES: only it can finish a checkpoint between its
            # transactions, which lets the WAL start over; under a steady stream of
            # writes background checkpoints alone never catch up and the WAL grows
            # without bound.
            self._writer_conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="footfall-sqlite-checkpoint", daemon=True)
            self._checkpointer.start()

    # -- connections -------------------------------------------------------

    def _open_checked(self) -> sqlite3.Connection:
        """The writer's connection to a file that passed its checks, migrated."""
        if self._read_only:
            reader = self._connect()
            self._check_readable(reader, self.path)
            return reader
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            if self.path is not None:
                sqlite_checks.check_contents(conn, self.path)
            self._migrate(conn)
        except (sqlite3.Error, StoreUnusable) as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, StoreUnusable):
                raise
            raise StoreUnusable(sqlite_checks.problem(self.path or ":memory:", exc)) from exc
        return conn

    def _connect(self) -> sqlite3.Connection:
        if self._read_only and self.path is not None:
            # mode=ro: SQLite itself refuses every write through this connection.
            uri = f"file:{urllib.parse.quote(os.path.abspath(self.path))}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            return conn
        conn = sqlite3.connect(self.path or ":memory:", isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if not self._memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
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

    @staticmethod
    def _check_readable(conn: sqlite3.Connection, path: str | None) -> None:
        """ValueError (the connection closed) unless `conn` holds a Footfall store this
        version can read."""
        where = os.path.abspath(path or ":memory:")
        try:
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone()
            applied = None if has_table is None else {
                v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        except sqlite3.DatabaseError as exc:  # e.g. "file is not a database"
            conn.close()
            raise ValueError(f"{where} is not a Footfall store: {exc}") from exc
        try:
            check_readable(applied, where)
        except ValueError:
            conn.close()
            raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
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
                    sql = statement_for(statement, "sqlite")
                    if sql is not None:
                        conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                             (version, description))
                log.info("applied migration %d: %s", version, description)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- writes ------------------------------------------------------------

    def _apply_batch(self, jobs: list[Job]) -> None:
        """Run `jobs` in one transaction; StoreFull (jobs left for the committer to
        retry, except function jobs that already ran) when the disk is full."""
        results: list[tuple[Job, Any, BaseException | None]] = []
        row_jobs: list[Job] = []
        ran: list[Job] = []  # function jobs that started
        with self._shared_lock if self._memory else _nothing():
            conn = self._writer_conn
            conn.execute("BEGIN IMMEDIATE")  # the write lock now: no upgrade to fail later
            try:
                pending_rows: list[EventRow] = []
                for job in jobs:
                    if job.rows is not None:
                        pending_rows.extend(job.rows)
                        row_jobs.append(job)
                        continue
                    if pending_rows:
                        _insert_events(conn, pending_rows)
                        pending_rows = []
                    assert job.fn is not None
                    conn.execute("SAVEPOINT job")
                    ran.append(job)
                    try:
                        value = job.fn(conn)
                    except Exception as exc:  # one job's failure leaves the others intact
                        if sqlite_checks.is_full(exc):
                            raise  # the whole transaction is lost, not just this job
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                        results.append((job, None, exc))
                    else:
                        conn.execute("RELEASE job")
                        results.append((job, value, None))
                if pending_rows:
                    _insert_events(conn, pending_rows)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if sqlite_checks.is_full(exc):
                    raise self._disk_full(exc, ran) from exc
                raise
        if self._full and self._has_room():
            self._full = False
            log.warning("%s: the disk has room again; writes commit", self.path)
        for job in row_jobs:
            job.future.set_result(None)
        for job, value, error in results:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)

    def _disk_full(self, exc: BaseException, ran: list[Job]) -> StoreFull:
        """Note that writes cannot commit; fail the function jobs that ran (their
        effects are rolled back, and running them again could repeat what they did
        besides writing); the committer retries the event rows."""
        full = StoreFull(f"{self.path}: {exc}")
        if not self._full:
            log.error("%s: the disk is full; writes are refused until it has room (%s)",
                      self.path, exc)
        self._full = True
        for job in ran:
            job.future.set_exception(full)
        return full

    def write_user_events(self, rows: Sequence[EventRow], *, wait: bool = True) -> None:
        if not wait and self._full:
            # Never acknowledge what may not be stored: refused while the disk is full.
            raise StoreFull(f"{self.path}: write_async refused")
        future = self._committer.submit_rows(rows, waited=wait)
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

    def catalogs_with_events_before(self, time_us: int) -> list[str]:
        with self._reader() as conn:
            return [c for (c,) in conn.execute(CATALOGS_WITH_EVENTS_BEFORE, (time_us,))]

    def scan_user_events(self, query: EventQuery, limit: int,
                         after_id: int = 0) -> list[tuple[int, bytes, bytes | None]]:
        where, params = where_clause(query)
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT id, event, source FROM user_events WHERE {where} AND id > ? "
                "ORDER BY id LIMIT ?", [*params, after_id, limit]).fetchall()
        return [(int(i), bytes(e), None if s is None else bytes(s)) for i, e, s in rows]

    def backup(self, dest: str) -> None:
        """Copy the database into the new file `dest` as it is at one moment: SQLite's
        online backup in one step, one read transaction, so writers (in this process
        or in a server that has the file open) go on meanwhile."""
        with self._reader() as conn:
            target = sqlite3.connect(dest)
            try:
                conn.backup(target)
            finally:
                target.close()

    # -- products ----------------------------------------------------------

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `fn` in the writer's next transaction; its result once committed."""
        return self._committer.submit_fn(fn).result()

    def get_products(self, branch: str, product_ids: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(product_ids))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        with self._reader() as conn:
            rows = conn.execute(f"SELECT product_id, product FROM products WHERE branch = ? "
                                f"AND product_id IN ({marks})", [branch, *wanted]).fetchall()
        return {pid: bytes(payload) for pid, payload in rows}

    def list_products(self, branch: str, limit: int, after_id: str = "") -> list[tuple[str, bytes]]:
        with self._reader() as conn:
            rows = conn.execute("SELECT product_id, product FROM products WHERE branch = ? AND "
                                "product_id > ? ORDER BY product_id LIMIT ?",
                                (branch, after_id, limit)).fetchall()
        return [(pid, bytes(payload)) for pid, payload in rows]

    # Every product write bumps its branch's generation first, in its transaction.
    # Checks run on the writer's connection inside the transaction (BEGIN IMMEDIATE
    # holds the write lock: no other write, of this process or another, comes between);
    # a delete's check first runs on a reader, so that its scan of the branch does not
    # hold up the writer, and again inside only if the generation moved.

    def _reads(self, query: str, params: Sequence[Any]) -> list[Any]:
        with self._reader() as conn:
            return conn.execute(query, params).fetchall()

    def create_product(self, branch: str, product_id: str, payload: bytes,
                       check: ProductCheck | None = None) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            _bump_generation(conn, branch)
            if check is not None:
                check(payload, _BranchReader(_fetch_on(conn), branch))
            cursor = conn.execute("INSERT OR IGNORE INTO products VALUES (?, ?, ?)",
                                  (branch, product_id, payload))
            return cursor.rowcount == 1

        return bool(self._write(insert))

    def update_product(self, branch: str, product_id: str,
                       change: Callable[[bytes | None], bytes | None],
                       check: ProductCheck | None = None) -> bytes | None:
        def read_modify_write(conn: sqlite3.Connection) -> bytes | None:
            _bump_generation(conn, branch)
            found = conn.execute("SELECT product FROM products WHERE branch = ? AND "
                                 "product_id = ?", (branch, product_id)).fetchone()
            current = bytes(found[0]) if found else None
            updated = change(current)
            if updated is None:
                return current
            if check is not None:
                check(updated, _BranchReader(_fetch_on(conn), branch))
            conn.execute("INSERT OR REPLACE INTO products VALUES (?, ?, ?)",
                         (branch, product_id, updated))
            return updated

        result: bytes | None = self._write(read_modify_write)
        return result

    def delete_product(self, branch: str, product_id: str,
                       check: ProductCheck | None = None) -> bool:
        checked_at = None if check is None else _check_on_a_read(
            self._reads, branch, product_id, check)

        def delete(conn: sqlite3.Connection) -> bool:
            generation = _bump_generation(conn, branch)
            if check is not None and checked_at != generation - 1:
                found = conn.execute("SELECT product FROM products WHERE branch = ? AND "
                                     "product_id = ?", (branch, product_id)).fetchone()
                if found is None:
                    return False
                check(bytes(found[0]), _BranchReader(_fetch_on(conn), branch))
            return conn.execute("DELETE FROM products WHERE branch = ? AND product_id = ?",
                                (branch, product_id)).rowcount == 1

        return bool(self._write(delete))

    # -- operations --------------------------------------------------------

    def create_operation(self, record: OperationRecord) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            return conn.execute(f"INSERT INTO operations ({OPERATION_COLUMNS}) VALUES "
                                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                                record.as_params()).rowcount == 1

        return bool(self._write(insert))

    def get_operation(self, name: str) -> OperationRecord | None:
        with self._reader() as conn:
            row = conn.execute(f"SELECT {OPERATION_COLUMNS} FROM operations WHERE name = ?",
                               (name,)).fetchone()
        return None if row is None else OperationRecord.from_row(row)

    def list_operations(self, prefix: str, done: bool | None, limit: int,
                        after: tuple[int, str] | None = None) -> list[OperationRecord]:
        terms = ["substr(name, 1, ?) = ?"]
        params: list[Any] = [len(prefix), prefix]
        if done is not None:
            terms.append("done = ?")
            params.append(int(done))
        if after is not None:
            terms.append("(create_time_us > ? OR (create_time_us = ? AND name > ?))")
            params.extend([after[0], after[0], after[1]])
        with self._reader() as conn:
            rows = conn.execute(f"SELECT {OPERATION_COLUMNS} FROM operations WHERE "
                                f"{' AND '.join(terms)} ORDER BY create_time_us, name LIMIT ?",
                                [*params, limit]).fetchall()
        return [OperationRecord.from_row(r) for r in rows]

    def delete_operation(self, name: str) -> bool:
        return bool(self._write(lambda conn: conn.execute(
            "DELETE FROM operations WHERE name = ?", (name,)).rowcount == 1))

    def request_cancel(self, name: str) -> OperationRecord | None:
        def mark(conn: sqlite3.Connection) -> OperationRecord | None:
            conn.execute("UPDATE operations SET cancel_requested = 1 WHERE name = ? AND done = 0",
                         (name,))
            row = conn.execute(f"SELECT {OPERATION_COLUMNS} FROM operations WHERE name = ?",
                               (name,)).fetchone()
            return None if row is None else OperationRecord.from_row(row)

        result: OperationRecord | None = self._write(mark)
        return result

    def claim_operation(self, owner: str, now_us: int, lease_us: int,
                        can_take: Callable[[str], bool],
                        kinds: Collection[str] | None = None) -> OperationRecord | None:
        of_kind, params = "", list[str]()
        if kinds is not None:
            params = list(kinds)
            of_kind = f"AND kind IN ({', '.join('?' * len(params))})"

        def claim(conn: sqlite3.Connection) -> OperationRecord | None:
            rows = conn.execute(f"SELECT {OPERATION_COLUMNS} FROM operations WHERE done = 0 "
                                f"{of_kind} ORDER BY create_time_us, name", params).fetchall()
            for row in rows:
                record = OperationRecord.from_row(row)
                holder = record.lease_owner
                free = (holder is None or holder == owner
                        or (record.lease_expires_us or 0) < now_us or can_take(holder))
                if not free:
                    continue
                conn.execute("UPDATE operations SET lease_owner = ?, lease_expires_us = ? "
                             "WHERE name = ?", (owner, now_us + lease_us, record.name))
                return record
            return None

        result: OperationRecord | None = self._write(claim)
        return result

    def run_step(self, name: str, owner: str, step: Step, lease_until_us: int,
                 progress: Callable[[StepResult], Progress]) -> StepResult:
        def apply(conn: sqlite3.Connection) -> StepResult:
            found = conn.execute("SELECT lease_owner, cancel_requested FROM operations "
                                 "WHERE name = ?", (name,)).fetchone()
            if found is None or found[0] != owner:
                raise LeaseLost(name)
            inserted = inserted_joined = deleted = last_deleted = 0
            if step.insert_events:
                # Two passes so the answer says how many new events joined the catalog.
                for joined in (True, False):
                    inserted += _insert_events(
                        conn, [r for r in step.insert_events if r.joined is joined])
                    if joined:
                        inserted_joined = inserted
            if step.put_products:
                for branch in sorted({branch for branch, _, _ in step.put_products}):
                    _bump_generation(conn, branch)
                conn.executemany("INSERT OR REPLACE INTO products VALUES (?, ?, ?)",
                                 step.put_products)
            if step.update_events:
                conn.executemany(
                    "UPDATE user_events SET joined = ?, event = ?, source = ? WHERE id = ?",
                    [(int(j), p, src, i) for i, j, p, src in step.update_events])
            if step.delete_events is not None:
                where, params = where_clause(step.delete_events)
                # NOT INDEXED keeps the plan a walk along the rowid from the last
                # position: with the (catalog, time) index SQLite would gather every
                # matching row and sort it on each batch, which grows with the table.
                ids = [i for (i,) in conn.execute(
                    f"SELECT id FROM user_events NOT INDEXED WHERE {where} AND id > ? "
                    "ORDER BY id LIMIT ?",
                    [*params, step.delete_after_id, step.delete_limit])]
                if ids:
                    deleted = conn.execute(
                        f"DELETE FROM user_events NOT INDEXED WHERE {where} AND id > ? "
                        "AND id <= ?",
                        [*params, step.delete_after_id, ids[-1]]).rowcount
                    last_deleted = ids[-1]
            result = StepResult(inserted, inserted_joined, deleted, last_deleted,
                                bool(found[1]))
            done = progress(result)
            conn.execute("UPDATE operations SET checkpoint = ?, operation = ?, done = ?, "
                         "lease_expires_us = ? WHERE name = ?",
                         (done.checkpoint, done.operation, int(done.done), lease_until_us, name))
            return result

        result: StepResult = self._write(apply)
        return result

    def release_operation(self, name: str, owner: str) -> None:
        self._write(lambda conn: conn.execute(
            "UPDATE operations SET lease_owner = NULL, lease_expires_us = NULL "
            "WHERE name = ? AND lease_owner = ?", (name, owner)))

    # -- lifecycle ---------------------------------------------------------

    @property
    def commits(self) -> int:
        """Write transactions committed so far (one per group-commit batch)."""
        return self._committer.batches

    def healthy(self) -> bool:
        """Whether writes commit: False once closed, and after a write failed for want
        of space until the disk has ROOM_TO_RESUME free and a write commits again."""
        if self._closed:
            return False
        if not self._full:
            return True
        if not self._has_room():
            return False
        try:  # room enough: prove it with a write (that clears _full)
            self._committer.submit_fn(_probe_write).result(timeout=PROBE_SECONDS)
        except (StoreFull, TimeoutError, RuntimeError):  # full, busy retrying, or closed
            return False
        return not self._full

    def _has_room(self) -> bool:
        return self.path is None or sqlite_checks.free_bytes(self.path) >= ROOM_TO_RESUME

    def flush(self) -> None:
        self._committer.flush()

    def _checkpoint_loop(self) -> None:
        """PASSIVE checkpoints on a connection of their own: they never block a
        writer or a reader, and keep the WAL from growing without bound."""
        assert self.path is not None
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        full = False  # said once per spell of a full disk, not twice a second
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_SECONDS):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    full = False
                except sqlite3.Error as exc:
                    if not sqlite_checks.is_full(exc):
                        log.exception("WAL checkpoint failed; retrying later")
                    elif not full:
                        full = True
                        log.warning("WAL checkpoint: the disk is full; retrying (%s)", exc)
        finally:
            conn.close()

    def add_commit_listener(self, listener: Callable[[list[Job]], None]) -> None:
        self._committer.on_commit = listener

    def close(self) -> None:
        if self._closed:
            return
        self._committer.close()
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            try:
                self._writer_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                if not sqlite_checks.is_full(exc):
                    log.exception("final WAL checkpoint failed; the next start replays the WAL")
                else:  # nothing is lost: the WAL holds every commit
                    log.warning("final WAL checkpoint: the disk is full; the next start "
                                "replays the WAL")
        self._closed = True
        with self._shared_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer_conn.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _probe_write(conn: sqlite3.Connection) -> None:
    """The smallest write that must reach the disk: the database header's
    user_version (unused by Footfall), set to what it is."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.execute(f"PRAGMA user_version = {int(version)}")


Fetch = Callable[[str, Sequence[Any]], list[Any]]


def _fetch_on(conn: sqlite3.Connection) -> Fetch:
    return lambda query, params: conn.execute(query, params).fetchall()


def _bump_generation(conn: sqlite3.Connection, branch: str) -> int:
    """Count a write to the products of `branch`; the branch's new generation."""
    return int(conn.execute(
        "INSERT INTO product_generations (branch, generation) VALUES (?, 1) ON CONFLICT "
        "(branch) DO UPDATE SET generation = generation + 1 RETURNING generation",
        (branch,)).fetchone()[0])


def _check_on_a_read(fetch: Fetch, branch: str, product_id: str,
                     check: ProductCheck) -> int | None:
    """Run `check` on what `fetch` reads now; the generation of the branch read before
    it, or None when there is no such product (nothing was checked)."""
    found = fetch("SELECT generation FROM product_generations WHERE branch = ?", (branch,))
    products = _BranchReader(fetch, branch)
    current = products.get([product_id]).get(product_id)
    if current is None:
        return None
    check(current, products)
    return int(found[0][0]) if found else 0


class _BranchReader:
    """ProductReader through `fetch`: a reader connection, or the writer's inside its
    transaction."""

    def __init__(self, fetch: Fetch, branch: str) -> None:
        self._fetch = fetch
        self._branch = branch

    def get(self, product_ids: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(product_ids))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self._fetch(f"SELECT product_id, product FROM products WHERE branch = ? "
                           f"AND product_id IN ({marks})", [self._branch, *wanted])
        return {pid: bytes(payload) for pid, payload in rows}

    def containing(self, text: str) -> Iterator[tuple[str, bytes]]:
        # instr() over two BLOBs compares bytes, in C: only candidates reach Python.
        after = ""
        while True:
            rows = self._fetch(
                "SELECT product_id, product FROM products WHERE branch = ? AND product_id > ? "
                "AND instr(product, ?) > 0 ORDER BY product_id LIMIT ?",
                (self._branch, after, text.encode(), PRODUCT_SCAN_BATCH))
            for pid, payload in rows:
                yield pid, bytes(payload)
            if len(rows) < PRODUCT_SCAN_BATCH:
                return
            after = rows[-1][0]
