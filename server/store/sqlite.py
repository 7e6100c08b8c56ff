"""SQLite store: one file in WAL mode (or memory://), durable group commit.

All writes go through one writer thread (SQLite has one writer anyway), which
commits every queued write in one transaction with synchronous=FULL, so an
acknowledged write survives a crash or a power cut. Reads use their own
connections and never wait for the writer (WAL). The SQL it shares with
PostgreSQL is in sql.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import stat
import struct
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from functools import partial
from typing import Any

from server.names import default_branch
from server.store import reset_marks, sqlite_checks
from server.store.group_commit import GroupCommitter, Job, apply_in_order
from server.store.migrations import apply_missing, check_readable
from server.store.rows import (
    OPERATION_COLUMNS,
    EventRow,
    OperationRecord,
    StoreFull,
    StoreUnavailable,
    StoreUnusable,
    in_turn,
    keep_latest,
)
from server.store.shapes import in_statements, rows_sql
from server.store.sql import Dialect, SqlStore, Statements

log = logging.getLogger(__name__)

# What a write's caller hears when the disk fails the store's writes (see _disk_failed).
DISK_FAILED = ("the disk holding the event store failed a write (an I/O error): nothing "
               "was written; try again later")
# What a read's caller hears when the disk fails the store's reads (see _refuse_failed_read).
DISK_READ_FAILED = ("the disk holding the event store failed a read (an I/O error); try "
                    "again later")
# The attribute that keeps on an sqlite3.Error whether it was found to be the disk's
# (see _disk_fault): a batch's failure is asked about twice, and a probe reads.
_DISK_FAULT = "footfall_disk_fault"

_INSERT_EVENTS = ("INSERT OR IGNORE INTO user_events (catalog_id, event_type, visitor_id, "
                  "user_id, event_time_us, event_time_ns, joined, dedup_key, event, source, "
                  "received_us, transport) VALUES ")
_ROW_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# How often the background checkpointer copies the WAL into the database, and the
# WAL size (4 KiB pages) past which the writer checkpoints itself. The former is
# short enough that the writer's own checkpoint (inside a commit, which the writes
# queued behind it wait for) finds few pages left to copy while a purge or a stream
# of writes adds 2,000-7,000 pages a second: every 0.5 s, it found up to ~3,000
# and took 20-35 ms, about once a second during a purge.
CHECKPOINT_SECONDS = 0.1
# How long a connection waits for another's lock on the file before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 10_000
# After a write failed for want of space, the free space the file system must have
# again before writes count as possible (health SERVING, write_async accepted):
# about twice what the WAL may grow to between checkpoints. Without this margin a
# nearly full disk flaps: a small write commits, the next large one does not.
ROOM_TO_RESUME = 32 * 2**20
# How long a health check waits for its probe write (the writer may be between two
# retries of a queued batch).
PROBE_SECONDS = 3.0
WAL_AUTOCHECKPOINT_PAGES = 4_000
# How long a writer waits for another process's turn (`_Writers`) before it goes on
# to SQLite's own lock: as long as SQLite's busy_timeout.
TURN_SECONDS = 10.0
CLOSE_WAIT_SECONDS = 1.0  # how long closing waits for the thread waiting for the turn
# The byte of the writers' lock file (`_Writers`) read-locked by every writer that waits
# for the turn, and Linux's open file description locks that say so (None elsewhere).
_WAITING_BYTE = 0
_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
_OFD_GETLK: int | None = getattr(fcntl, "F_OFD_GETLK", None)
# Linux's `struct flock`: type, whence, start, length, pid (0 for an OFD lock), padding.
_FLOCK = struct.Struct("@hhqqi4x")


# Statements a connection keeps parsed (sqlite3's default: 128). The writer alone
# may use 47 shapes each of the event INSERT, the rollups' upsert and the refusals'
# INSERT (see shapes.py) beside its other statements.
_STATEMENTS_CACHED = 512


def _as_it_is(value: Any) -> Any:
    return value


# sqlite3 binds an int, a float or a str as it is, but looks any other parameter (bytes,
# None) up among its adapters and, finding none, asks the parameter and its protocol
# for `__conform__` and `__adapt__`: AttributeErrors made, formatted and dropped, for
# each of an event row's three (its dedup key, its event, its source), about half the
# Python cost of its INSERT. Found among the adapters, handed back as they are, they
# are bound as before. (The adapters are the process's: every connection's, none of
# which adapts bytes or None otherwise.)
sqlite3.register_adapter(bytes, bytes)  # (bytes of a bytes is the same object)
sqlite3.register_adapter(type(None), _as_it_is)


# The (id, event_time_us, dedup_key) of the user_events stored under some
# (catalog_id, event_time_us, dedup_key) keys, each looked up in the dedup index:
# the keys' rows go between the two.
_STORED_UNDER_KEYS = ("SELECT e.id, e.event_time_us, e.dedup_key FROM (VALUES ",
                      ") AS k JOIN user_events e ON e.catalog_id = k.column1 AND "
                      "e.event_time_us = k.column2 AND e.dedup_key = k.column3")

# The products of a branch among some ids (the condition on p.product_id follows), with
# the branch's generation (NULL: no product of it was ever written), in one snapshot: at
# least one row, whose product_id is NULL if none is found.
_PRODUCTS_AS_OF = ("SELECT (SELECT generation FROM product_generations WHERE branch = ?), "
                   "p.product_id, p.product FROM (SELECT 1) AS one LEFT JOIN products p "
                   "ON p.branch = ? AND ")

# No row locks: the writer's BEGIN IMMEDIATE holds the whole database's. NOT INDEXED
# keeps a purge's batch a walk along the rowid from the last position: with the
# (catalog, time) index SQLite would gather every matching row and sort it on each
# batch, which grows with the table. instr() over two BLOBs compares bytes, in C.
SQLITE = Dialect(name="sqlite", mark="?", lock="", walk=" NOT INDEXED",
                 contains="instr({column}, ?) > 0", arrays=False)


class SqliteStore(SqlStore[sqlite3.Connection]):
    """Store on one SQLite database; `path=None` keeps it in memory.

    Opening raises StoreUnusable (one line naming the file and the problem) for a
    file that is no database, is damaged (see sqlite_checks), is a directory or
    cannot be written. A write that cannot commit for want of disk space raises
    StoreFull; from then on `healthy()` is False and write_async is refused until
    the disk has ROOM_TO_RESUME free and a write commits again. One that meets an I/O
    error (SQLITE_IOERR) raises StoreUnavailable (DISK_FAILED), and so it stays until
    a write commits again. A read that meets one (or SQLite's "malformed" while the
    files cannot be read: see _disk_fault) raises StoreUnavailable (DISK_READ_FAILED).

    `read_only` (for the CLI) opens an existing file without changing it: no
    folder or file is created, no migration applied; ValueError when `path` is
    not a Footfall store this version can read (with `any_version`, of any version:
    for a backup, which reads no row). `retry_seconds`: how long a write
    somebody waits for is retried while the file is locked by another connection
    (see GroupCommitter).
    """

    _sql = Statements(SQLITE)

    def __init__(self, path: str | None, synchronous: str = "FULL", *,
                 read_only: bool = False, any_version: bool = False,
                 retry_seconds: float = 5.0) -> None:
        self.path = path
        # FULL: a commit survives a power cut. NORMAL: it survives a crash of the
        # process (kill -9), not of the machine; about twice the write throughput.
        self._synchronous = synchronous
        self._memory = path is None
        self._read_only = read_only
        self._any_version = any_version
        if path is not None and read_only:
            # said as `serve` says it (a directory was "no store at", a text file "not
            # a Footfall store: file is not a database")
            if os.path.isdir(path):
                raise ValueError(f"{os.path.abspath(path)} is a directory, not a database file")
            if not os.path.isfile(path):
                raise ValueError(f"no store at {os.path.abspath(path)}")
            try:
                sqlite_checks.check_header(path)
            except StoreUnusable as exc:
                raise ValueError(str(exc)) from None
        if path is not None and not read_only:
            _refuse_if_restore_unfinished(path)
            sqlite_checks.check_file(path)
        # In memory there is one database per connection, so everything shares
        # the writer's connection under a lock.
        self._shared_lock = threading.Lock()
        # Each reading thread's connection, with the thread (see _reader).
        self._readers: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._local = threading.local()
        # A connection that never writes, for data_version (see there), and its lock.
        self._version_conn: sqlite3.Connection | None = None
        self._version_lock = threading.Lock()
        self._closed = False
        self._full = False  # the last write failed for want of disk space
        self._failing = False  # the last write met an I/O error (see _disk_failed)
        self._reads_failing = False  # the last read met one (see _refuse_failed_read)
        self._reads_lock = threading.Lock()  # (reads run on many threads)
        self._busy = False  # the last write found the file locked by another connection
        # Each catalog's id, once committed (the latest CATALOG_IDS_KEPT): catalogs are
        # never deleted nor renamed, so a batch of a known catalog's rows needs no
        # statement to learn it (two fewer of the seven a durable write's batch ran,
        # each a GIL hand-off under load).
        # Ids given in the transaction under way wait in _new_catalogs for its commit.
        self._catalog_ids: dict[str, int] = {}
        self._new_catalogs: dict[str, int] = {}
        self._writer_conn = self._open_checked()
        self._writers = None if path is None or read_only else _writers_beside(path)
        # The generation of each branch the writer's joins of the batch being made read
        # their products as of (see products_to_join); writer's thread only.
        self._joined_as_of: dict[str, int] = {}
        # (in memory no other connection writes: nothing to check)
        self._committer = GroupCommitter(self._apply_batch, name="footfall-sqlite-writer",
                                         retry_seconds=retry_seconds, turn=self._writers,
                                         relied=None if self._memory else self._relied)
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
            self._check_readable(reader, self.path, self._any_version)
            return reader
        checked = self.path is not None and sqlite_checks.has_wal(self.path)
        if checked:
            assert self.path is not None
            sqlite_checks.check_before_the_wal_applies(self.path)
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            if self.path is not None and not checked:
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
            uri = sqlite_checks.read_only_uri(self.path)
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                   cached_statements=_STATEMENTS_CACHED)
        else:
            conn = sqlite3.connect(self.path or ":memory:", isolation_level=None,
                                   check_same_thread=False, cached_statements=_STATEMENTS_CACHED)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not self._memory and not self._read_only:
            _enter_wal(conn)
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
                # The connections of threads that ended are closed here (an import's
                # helper thread lives for one run), not left open until close().
                for thread, ended in self._readers:
                    if not thread.is_alive():
                        ended.close()
                self._readers = [(thread, reader) for thread, reader in self._readers
                                 if thread.is_alive()]
                self._readers.append((threading.current_thread(), conn))
        yield conn

    @staticmethod
    def _check_readable(conn: sqlite3.Connection, path: str | None,
                        any_version: bool) -> None:
        """ValueError (the connection closed) unless `conn` holds a Footfall store this
        version can read (`any_version`: of any version)."""
        where = os.path.abspath(path or ":memory:")
        try:
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone()
            applied = None if has_table is None else {
                v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        except sqlite3.DatabaseError as exc:
            conn.close()
            # The header was checked (read-only) or the file opened: what SQLite refuses
            # now is a damaged file, said as `serve` says it ("not a Footfall store" had
            # `events list` and `backup` tell its owner to name another store).
            said = sqlite_checks.problem(where, exc)
            raise ValueError(said if " is damaged: " in said
                             else f"{where} is not a Footfall store: {exc}") from exc
        try:
            check_readable(applied, where, any_version=any_version)
        except ValueError:
            conn.close()
            raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock, so two processes starting at once
        # apply each migration exactly once.
        conn.execute("BEGIN IMMEDIATE")
        try:
            apply_missing(conn, SQLITE, os.path.abspath(self.path) if self.path
                          else "the memory store")
            conn.execute("COMMIT")
        except BaseException as exc:
            # SQLite rolls a transaction back itself on some errors, a full disk's among
            # them: a ROLLBACK then failed too, and its words were all a start said
            # (`cannot rollback - no transaction is active`), for an upgrade of a store
            # larger than the room its rebuilt tables needed.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if sqlite_checks.is_full(exc):
                raise StoreUnusable(
                    f"{self.path}: the disk is full: the store's upgrade to this version "
                    "(its migrations, which may rewrite a table whole) did not fit, and "
                    f"left it as it was; make room and start again ({exc})") from exc
            raise

    # -- writes ------------------------------------------------------------

    def _apply_batch(self, jobs: list[Job]) -> None:
        """Run `jobs` in one transaction; StoreFull (jobs left for the committer to
        retry, except function jobs that already ran) when the disk is full."""
        conn = self._writer_conn
        ran: list[Job] = []  # function jobs that started

        # A job that is its transaction's only one (a purge's step: `alone`) runs
        # without a savepoint, and its failure rolls the transaction back: under a
        # savepoint SQLite copies every page the job changes first into a statement
        # journal, which a step's thousands of deletions spill to a temporary file
        # (a purge of 500k of 1M events: 130 MB more written, and read back at its
        # end, beside the 135 MB of its WAL frames).
        lone = len(jobs) == 1

        def call(job: Job) -> tuple[Any, BaseException | None]:
            assert job.fn is not None
            if not lone:
                conn.execute("SAVEPOINT job")
            ran.append(job)
            catalogs = len(self._new_catalogs)
            try:
                value = job.fn(conn)
            except Exception as exc:  # one job's failure leaves the others intact
                if sqlite_checks.is_full(exc) or self._disk_fault(exc):
                    raise  # the whole transaction is lost, not just this job
                if lone:
                    # (commit() below has nothing to do.) SQLite may have rolled the
                    # transaction back itself (an interrupt, a read that met a disk
                    # failing, SQLITE_CORRUPT): a ROLLBACK then raised "no transaction
                    # is active", which the caller heard instead of its own error.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                else:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                for catalog in list(self._new_catalogs)[catalogs:]:  # (rolled back too)
                    del self._new_catalogs[catalog]
                return None, exc
            if not lone:
                conn.execute("RELEASE job")
            return value, None

        with self._shared_lock if self._memory else nullcontext():
            try:
                # (in the try: BEGIN IMMEDIATE reads the database's first page, and
                # met a failing disk as the statements after it do)
                self._begin_write(conn)
                self._rejoin_if_changed(conn, jobs)
                outcomes = apply_in_order(jobs, self._inserting(conn, jobs), call)
                # commit(), not execute("COMMIT"): it lets the GIL go once around the
                # statement (with its fsync), where execute lets it go five times
                # (Python 3.11), and each time the loop may take it and the writer
                # wait to get it back.
                conn.commit()
            except BaseException as exc:
                self._new_catalogs.clear()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if sqlite_checks.is_full(exc):
                    raise self._disk_full(exc, ran) from exc
                if self._disk_fault(exc):
                    raise self._disk_failed(exc, ran) from exc
                raise
        self._busy = False
        if self._new_catalogs:
            self._catalog_ids.update(self._new_catalogs)
            self._new_catalogs.clear()
            # (kept whole, 60,000 catalogs more, of names of 180 characters, grew a
            # server by 18 MB, about 0.3 KB each, and so on without end; now 6 MB)
            keep_latest(self._catalog_ids)
        if self._full and self._has_room():
            self._full = False
            log.warning("%s: the disk has room again; writes commit", self.path)
        if self._failing:
            self._failing = False
            log.warning("%s: the disk takes writes again; writes commit", self.path)
        self._committer.settle(jobs, outcomes)

    # -- the products of the writer's joins ---------------------------------
    # The writer joins the first jobs of a batch before it takes the writers' turn and
    # the write lock: another process (`serve --processes N`, the CLI) may change a
    # product and commit meanwhile. So, as on PostgreSQL, each join job keeps the
    # generation of its branch read before its products (Job.relied), and the batch
    # looks at them once it holds the lock: if one moved, its joins are made again
    # then, from products read under the lock, which nothing can change before the
    # commit (one statement per branch joined; none for a batch without joins).

    def products_to_join(self, branch: str, product_ids: Sequence[str]) -> dict[str, bytes]:
        """See Store.products_to_join: read with the branch's generation, in one
        statement (one snapshot, and no statement more than the products alone).
        StoreUnavailable (DISK_READ_FAILED) when the disk fails the read, as for every
        read: the committer keeps the joins for another try (it let SQLite's own error
        out, and a write naming a product answered INTERNAL, a pixel was dropped)."""
        wanted = list(dict.fromkeys(product_ids))
        if not wanted:
            return {}
        among, params = SQLITE.among("p.product_id", wanted)
        query, params = f"{_PRODUCTS_AS_OF}{among}", [branch, branch, *params]
        # On the writer's own connection (this is its thread), which needs no reader's
        # lookup, in memory shared with the readers under their lock. Read outside the
        # batch's transaction, or inside it before any write (a join made again).
        if self._memory:
            rows = self._fetch(query, params)
        else:
            try:
                rows = self._writer_conn.execute(query, params).fetchall()
            except sqlite3.Error as exc:
                self._refuse_failed_read(exc)
                raise
            self._reads_work()
        self._joined_as_of[branch] = int(rows[0][0] or 0)
        return {pid: bytes(payload) for _, pid, payload in rows if pid is not None}

    def _relied(self, catalog: str) -> tuple[str, int] | None:
        """The branch and generation the products a join job of `catalog` was just
        made from were read as of (kept on the job); None when they were not read by
        products_to_join (an event naming no product)."""
        branch = default_branch(catalog)
        generation = self._joined_as_of.get(branch)
        return None if generation is None else (branch, generation)

    def _rejoin_if_changed(self, conn: sqlite3.Connection, jobs: list[Job]) -> None:
        """In the batch's transaction (the write lock held): `jobs` with their joins
        made again, in place, when a product of a branch they relied on changed since
        they were read."""
        relied = {job.relied for job in jobs if job.relied is not None}
        self._joined_as_of.clear()  # (what the next batch's joins read, they say again)
        for branch, generation in relied:
            found = conn.execute(self._sql.generation, (branch,)).fetchone()
            if (int(found[0]) if found else 0) != generation:
                log.debug("products changed before a batch of %d writes took the write "
                          "lock: joined again", len(jobs))
                self._committer.rejoin(jobs)
                self._joined_as_of.clear()
                return

    def _inserting(self, conn: sqlite3.Connection,
                   jobs: list[Job]) -> Callable[[list[EventRow]], object]:
        """How the batch `jobs` inserts its rows, in its transaction (the write lock
        held): all of them, but those answered before their commit that a reset
        came after (see reset_marks)."""
        insert = partial(self._insert_events, conn)
        answered = reset_marks.answered_rows(jobs)
        if not answered:
            return insert
        marks = conn.execute(reset_marks.SINCE, (reset_marks.oldest_answered(answered),)
                             ).fetchall()
        return reset_marks.leaving_out(insert, reset_marks.stale(answered, marks)) \
            if marks else insert

    def _begin_write(self, conn: sqlite3.Connection) -> None:
        """Take the write lock (no upgrade to fail later); StoreUnavailable when
        another connection to the file (the sqlite3 shell, a second server) holds
        it past busy_timeout: nothing ran, so the committer keeps the batch for
        another try rather than dropping the events it acknowledged."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            self._busy = True
            raise StoreUnavailable("the event store is locked by another connection; "
                                   "try again later", f"{self.path}: {exc}") from exc

    def _disk_full(self, exc: BaseException, ran: list[Job]) -> StoreFull:
        """Note that writes cannot commit; fail the function jobs that ran and may not
        run again (their effects are rolled back, and running them again could repeat
        what they did besides writing: a job's step); the committer retries the event
        rows and the others (Job.again), whose callers wait for room as an event's do."""
        full = StoreFull(f"{self.path}: {exc}")
        if not self._full:
            log.error("%s: the disk is full; writes are refused until it has room (%s)",
                      self.path, exc)
        self._full = True
        for job in ran:
            if not job.again:
                job.future.set_exception(full)
        return full

    def _disk_failed(self, exc: BaseException, ran: list[Job]) -> StoreUnavailable:
        """Note that writes meet I/O errors, and fail the function jobs that ran, as
        _disk_full does. The disk (a thin-provisioned or network volume out of room, a
        path to it lost for a while) may take writes again: the committer keeps the
        batch for another try, as for a full disk. Before, the batch was committed again
        one job at a time, each failing alike: the callers waiting heard INTERNAL, and
        the pixels and write_async events acknowledged in it were dropped."""
        failed = StoreUnavailable(DISK_FAILED, f"{self.path}: {exc}")
        if not self._failing:
            log.error("%s: the disk fails the store's writes (%s); they are retried until "
                      "one commits", self.path, exc)
        self._failing = True
        for job in ran:
            if not job.again:
                job.future.set_exception(failed)
        return failed

    def _disk_fault(self, exc: BaseException) -> bool:
        """Whether `exc` is the disk failing the store's I/O: SQLite's I/O error, or
        its SQLITE_CORRUPT when the store's files cannot be read now (SQLite says
        "database disk image is malformed" of a read that met EIO inside a
        statement; a damaged file reads, and stays a bug's INTERNAL)."""
        if _is_io_error(exc):
            return True
        if self.path is None or not sqlite_checks.is_damage_or_failing_read(exc):
            return False
        found = getattr(exc, _DISK_FAULT, None)
        if found is None:
            found = sqlite_checks.unreadable(self.path) is not None
            setattr(exc, _DISK_FAULT, found)
        return bool(found)

    def _refuse_failed_read(self, exc: sqlite3.Error) -> None:
        """Raises StoreUnavailable (DISK_READ_FAILED) from `exc` when the read it
        ended met the disk failing (logged once until a read works again, not a
        traceback a call); returns for any other error, for its caller to raise."""
        if not self._disk_fault(exc):
            return
        with self._reads_lock:
            if not self._reads_failing:
                self._reads_failing = True
                log.error("%s: the disk fails the store's reads (%s); they are refused "
                          "UNAVAILABLE until one works", self.path, exc)
        raise StoreUnavailable(DISK_READ_FAILED, f"{self.path}: {exc}") from exc

    def _reads_work(self) -> None:
        """A read worked: say so once after reads the disk failed."""
        if self._reads_failing:
            with self._reads_lock:
                if self._reads_failing:
                    self._reads_failing = False
                    log.warning("%s: the disk gives the store's reads again", self.path)

    def _writes_waiting(self, db: sqlite3.Connection) -> bool:
        """Whether writes wait for the step being applied: this process's, queued for
        its writer, or another process's on the file, waiting for the writers' turn
        the step holds (which its own queue cannot show: a step that looked at that
        alone held the other processes' writes for its whole batch)."""
        return self._committer.waiting or (self._writers is not None
                                           and self._writers.others_wait())

    def _refuse_unwaited(self, through_outage: bool = False) -> None:
        # Never acknowledge what may not be stored: refused while the disk is full,
        # or while another connection holds the write lock; but a browser's pixel
        # (`through_outage`) is never sent again, and its refusal would wait in memory
        # for room all the same: it waits in the queue instead (see PostgresStore's).
        if through_outage:
            return
        if self._full:
            raise StoreFull(f"{self.path}: write_async refused")
        if self._failing:
            raise StoreUnavailable(DISK_FAILED, f"{self.path}: write_async refused")
        if self._busy:
            raise StoreUnavailable("the event store is locked by another connection; "
                                   "try again later", f"{self.path}: write_async refused")

    def _insert_events(self, conn: sqlite3.Connection, rows: Sequence[EventRow]) -> int:
        """Insert `rows` (skipping duplicates); returns how many were new.

        One multi-row statement per chunk rather than executemany: sqlite3 releases
        and retakes the GIL around every step, and with the gRPC threads wanting it
        too each retake can wait a whole switch interval. Fewer steps, fewer waits.
        """
        ids = self._catalog_ids_of(conn, rows)
        inserted: list[tuple[int, bytes]] = []
        for chunk in in_statements(rows):  # (each count a statement parsed once: shapes.py)
            params: list[Any] = []
            for row in chunk:
                values = row.as_params()
                params.append(ids[row.catalog])  # (its catalog by id, not by name)
                params += values[1:]
            # What the rollups need to know: which rows were new. Most often all are
            # (no RETURNING to read, no statement more); else see `_added`.
            added = conn.execute(rows_sql(_INSERT_EVENTS, _ROW_MARKS, len(chunk)),
                                 params).rowcount
            if added == len(chunk):
                inserted += [(row.event_time_us, row.key) for row in chunk]
            elif added:
                inserted += self._added(conn, chunk, ids, added)
        self._count_inserted(conn, rows, inserted, ids)
        return len(inserted)

    @staticmethod
    def _added(conn: sqlite3.Connection, chunk: Sequence[EventRow], ids: dict[str, int],
               added: int) -> list[tuple[int, bytes]]:
        """(event_time_us, dedup_key) of the `added` rows of `chunk` that its INSERT
        stored, in id order, when it skipped some as duplicates: of the rows stored
        under the chunk's keys, the `added` with the highest ids, since a row stored
        before has a lower id than any added after it (AUTOINCREMENT). Each key is
        looked up in the dedup index. (Not by id from lastrowid: a skipped row may
        use up an id.)"""
        keys = list(dict.fromkeys((ids[row.catalog], row.event_time_us, row.key)
                                  for row in chunk))
        stored: list[Any] = []
        for part in in_statements(keys):
            head, tail = _STORED_UNDER_KEYS
            stored += conn.execute(rows_sql(head, "(?, ?, ?)", len(part), tail),
                                   [value for key in part for value in key]).fetchall()
        stored.sort()
        return [(time_us, bytes(key)) for _, time_us, key in stored[len(stored) - added:]]

    def _catalog_ids_of(self, conn: sqlite3.Connection, rows: Sequence[EventRow]) -> dict[str, int]:
        """The id of each catalog `rows` name, given one in this transaction if it has
        none yet (kept in `_catalog_ids` once it commits)."""
        ids: dict[str, int] = {}
        for row in rows:
            catalog = row.catalog
            if catalog in ids:
                continue
            known = self._catalog_ids.get(catalog, self._new_catalogs.get(catalog))
            if known is None:
                conn.execute(self._sql.add_catalog, (catalog, catalog))
                known = int(conn.execute(self._sql.catalog_id, (catalog,)).fetchone()[0])
                self._new_catalogs[catalog] = known
            ids[catalog] = known
        return ids

    def _update_events(self, conn: sqlite3.Connection,
                       updates: Sequence[tuple[int, bool, bytes, bytes | None]]) -> None:
        conn.executemany("UPDATE user_events SET joined = ?, event = ?, source = ? WHERE id = ?",
                         [(int(j), p, src, i) for i, j, p, src in updates])

    # -- reads -------------------------------------------------------------

    def _fetch(self, query: str, params: Sequence[Any]) -> list[Any]:
        """The rows of `query`; StoreUnavailable when the disk fails the read."""
        try:
            with self._reader() as conn:
                rows = conn.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            self._refuse_failed_read(exc)
            raise
        self._reads_work()
        return rows

    def data_version(self) -> int:
        """See Store.data_version. In memory, the rows its one connection (every
        write's) has changed; in a file, PRAGMA data_version of a connection of its
        own that never writes: SQLite changes it for every commit of another
        connection, of this process's writer or of any other process."""
        if self._closed:
            raise RuntimeError("store is closed")
        if self._memory:
            with self._shared_lock:
                return int(self._writer_conn.total_changes)
        try:
            with self._version_lock:
                if self._version_conn is None:
                    self._version_conn = self._connect()
                    self._version_conn.execute("PRAGMA query_only = ON")
                return int(self._version_conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            self._refuse_failed_read(exc)
            raise

    def _stream(self, query: str, params: Sequence[Any], size: int) -> Iterator[Any]:
        if self._memory:
            # (its reader is the writer, under the lock: not held while the rows are
            # used; the database is in memory already)
            yield from self._fetch(query, params)
            return
        try:
            with self._reader() as conn:
                cursor = conn.execute(query, params)
                try:
                    while rows := cursor.fetchmany(size):
                        yield from rows
                finally:
                    # (a read left unfinished ends its read transaction now, not when
                    # the cursor is collected: an open one holds back the WAL's
                    # checkpoints)
                    cursor.close()
        except sqlite3.Error as exc:
            self._refuse_failed_read(exc)
            raise
        self._reads_work()

    def backup(self, dest: str) -> None:
        """Copy the database into the new file `dest` as it is at one moment: SQLite's
        online backup in one step, one read transaction, so writers (in this process
        or in a server that has the file open) go on meanwhile."""
        with self._reader() as conn:
            target = sqlite3.connect(dest)
            try:
                # The rollback journal in memory, never beside `dest`: a copy that fails
                # midway (a full disk) is removed by its caller, but SQLite keeps the
                # journal of a failed write as a hot journal for the next opener, and
                # DEST.partial-journal (a restore's footfall.db.restoring-journal) was
                # left behind. A new file has nothing for a journal to restore.
                target.execute("PRAGMA journal_mode = MEMORY")
                conn.backup(target)
            finally:
                target.close()

    def connect(self) -> sqlite3.Connection:
        """A connection of its own to the file (read-only if the store is), with no
        transaction open, for `footfall copy`; the caller closes it."""
        assert self.path is not None, "a memory store has no file to connect to"
        return self._connect()

    # -- operations --------------------------------------------------------

    def claim_operation(self, owner: str, now_us: int, lease_us: int,
                        can_take: Callable[[str], bool],
                        kinds: Collection[str] | None = None,
                        lapsed_before_us: int | None = None) -> OperationRecord | None:
        of_kind, params = "", list[str]()
        lapsed = now_us if lapsed_before_us is None else lapsed_before_us
        if kinds is not None:
            among, params = SQLITE.among("kind", list(kinds))
            of_kind = f"AND {among}"

        def claim(conn: sqlite3.Connection) -> OperationRecord | None:
            rows = conn.execute(f"SELECT {OPERATION_COLUMNS} FROM operations WHERE done = 0 "
                                f"{of_kind} ORDER BY create_time_us, name", params).fetchall()
            for record in in_turn(OperationRecord.from_row(row) for row in rows):
                holder = record.lease_owner
                free = (holder is None or holder == owner
                        or (record.lease_expires_us or 0) < lapsed or can_take(holder))
                if not free:
                    continue
                lost = int(holder is not None and holder != owner)
                conn.execute(self._sql.take_lease, (owner, now_us + lease_us, lost, record.name))
                return replace(record, lost_tries=record.lost_tries + lost)
            return None

        return self._write(claim)

    # -- lifecycle ---------------------------------------------------------

    def healthy(self) -> bool:
        """Whether writes commit: False once closed, after a write failed for want of
        space until the disk has ROOM_TO_RESUME free and a write commits again, and
        after one met an I/O error until a write commits again."""
        if self._closed:
            return False
        if not self._full and not self._failing:
            return True
        if self._full and not self._has_room():
            return False
        try:  # room enough: prove it with a write (that clears _full and _failing)
            self._committer.submit_fn(_probe_write).result(timeout=PROBE_SECONDS)
        except (StoreUnavailable, TimeoutError, RuntimeError):  # full or failing, busy
            return False  # retrying, or closed
        return not self._full and not self._failing

    def unhealthy_because(self) -> str:
        """What `healthy()` found False, for the health watch's log line."""
        if self._closed:
            return "closed"
        if self._full:
            return "its disk is full"
        if self._failing:
            return "its disk fails the store's writes (I/O errors)"
        return "its writes do not commit"

    def _has_room(self) -> bool:
        return self.path is None or sqlite_checks.free_bytes(self.path) >= ROOM_TO_RESUME

    def _checkpoint_loop(self) -> None:
        """PASSIVE checkpoints on a connection of their own: they never block a
        writer or a reader, and keep the WAL from growing without bound."""
        assert self.path is not None
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        full = False  # said once per spell of a full or failing disk, not twice a second
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_SECONDS):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    full = False
                except sqlite3.Error as exc:
                    if not sqlite_checks.is_full(exc) and not self._disk_fault(exc):
                        log.exception("WAL checkpoint failed; retrying later")
                    elif not full:
                        full = True
                        log.warning("WAL checkpoint: the disk is full or fails its I/O; "
                                    "retrying (%s)", exc)
        finally:
            conn.close()

    def close(self) -> None:
        if self._closed:
            return
        if self._writers is not None:
            self._writers.stop_waiting()
        self._committer.close()
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            try:
                self._writer_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                if not sqlite_checks.is_full(exc) and not self._disk_fault(exc):
                    log.exception("final WAL checkpoint failed; the next start replays the WAL")
                else:  # nothing is lost: the WAL holds every commit
                    log.warning("final WAL checkpoint: the disk is full or fails its I/O; "
                                "the next start replays the WAL (%s)", exc)
        self._closed = True
        with self._shared_lock:
            for _, conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._version_lock:
            if self._version_conn is not None:
                self._version_conn.close()
        self._writer_conn.close()
        if self._writers is not None:
            self._writers.close()


class _Writers:
    """The turn of the writers of one file across processes (`--processes`, or
    two servers on one file): an flock on a file beside the database, held by the
    group commit around each transaction. SQLite's own wait for its write lock
    sleeps and tries again, up to 100 ms between tries, so a process that finds
    the other's commit under way would wait long after it ended (write p99 ×6 with
    two processes); the kernel hands the flock over the moment it is let go, and
    lets it go when its process dies, even by kill -9. Processes that do not take
    it (an older version, the CLI) still meet SQLite's lock, which stays the guard.

    The writer tries the flock without waiting; when another process holds it, a
    thread of its own waits for it (an flock cannot be waited for with a time
    limit), and the writer waits for that thread up to TURN_SECONDS, or until the
    store closes: then it goes on without the turn, to SQLite's lock (a process
    stopped while it holds the turn, SIGSTOP or a debugger, must not hang the
    others' writes for ever, nor their shutdown). The two hold the flock through
    two opens of the file: an flock belongs to an open file, and one open's lock
    does not stop another open of the same process.

    A writer that waits for the turn says so to the one holding it (`others_wait`;
    on Linux): it read-locks a byte of the file with an open file description lock while it
    waits, which the holder's purge step sees (F_OFD_GETLK) between its chunks and
    gives way. Held by the open, not the process, the lock shows across two stores
    of one process too; the kernel lets it go when the process dies, so no count is
    left behind to make steps give way for ever. Nothing else is written to the
    file, which stays empty (and is never replaced while servers run)."""

    def __init__(self, path: str, mode: int) -> None:
        self._path = path
        self._fd = self._open(path, mode)  # the writer's
        try:
            self._waiter_fd = self._open(path, mode)  # the waiting thread's
        except OSError:
            os.close(self._fd)
            raise
        self._held: int | None = None  # the fd whose flock this process holds
        self._changed = threading.Condition()
        self._asked = 0  # the turn the writer waits for (0: none)
        self._granted = 0  # the last turn the waiting thread took for it
        self._turns = 0
        self._closing = False
        self._waiter: threading.Thread | None = None

    @staticmethod
    def _open(path: str, mode: int) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        except PermissionError:  # made by another user: an flock needs reading only
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # made now, or by us: as open as the database
            os.fchmod(fd, mode)
        return fd

    def __enter__(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._held = self._fd
            return
        except BlockingIOError:  # another process's turn: wait for its end
            pass
        with self._changed:
            if self._closing:  # the store closes: no wait, and no thread started for one
                return
            self._turns += 1
            turn = self._asked = self._turns
            if self._waiter is None:
                self._waiter = threading.Thread(target=self._wait_for_turns, daemon=True,
                                                name="footfall-sqlite-turn")
                self._waiter.start()
            self._changed.notify_all()
            self._mark_waiting(True)
            try:
                self._changed.wait_for(lambda: self._granted == turn or self._closing,
                                       TURN_SECONDS)
            finally:
                self._mark_waiting(False)
            if self._granted == turn:
                self._held = self._waiter_fd
                return
            self._asked = 0  # given up: the waiting thread lets it go when it comes
        if not self._closing:
            log.warning("%s: another process has held the writers' turn for %g s; this "
                        "write goes on to SQLite's own lock", self._path, TURN_SECONDS)

    def __exit__(self, *_exc: object) -> None:
        held, self._held = self._held, None
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)

    def _wait_for_turns(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._asked or self._closing)
                if self._closing:
                    return
                turn = self._asked
            fcntl.flock(self._waiter_fd, fcntl.LOCK_EX)  # (the GIL is let go meanwhile)
            with self._changed:
                if self._asked == turn and not self._closing:
                    self._granted, self._asked = turn, 0
                    self._changed.notify_all()
                    continue
            fcntl.flock(self._waiter_fd, fcntl.LOCK_UN)  # the writer gave up on it

    def _mark_waiting(self, waiting: bool) -> None:
        """Show the writers of other processes that this one waits for the turn, or
        no longer: a read lock of _WAITING_BYTE, or none, through the waiting thread's
        open of the file. An open file description's lock, so the kernel drops it
        with the open: a process killed while its writer waits leaves none behind."""
        if _OFD_SETLK is None:
            return
        kind = fcntl.F_RDLCK if waiting else fcntl.F_UNLCK
        try:
            fcntl.fcntl(self._waiter_fd, _OFD_SETLK,
                        _FLOCK.pack(kind, os.SEEK_SET, _WAITING_BYTE, 1, 0))
        except OSError as exc:  # (no one takes a conflicting lock: not expected)
            log.debug("%s: the lock that says a writer waits: %s", self._path, exc)

    def others_wait(self) -> bool:
        """Whether a writer of another process (or of another store of this one) on
        the file waits for the turn, which this one holds: asked by a purge's step
        between its chunks, a system call each. False where the system has no open
        file description locks (not Linux): there a step gives way to the writes of
        its own process only."""
        if _OFD_GETLK is None:
            return False
        try:
            found = fcntl.fcntl(self._fd, _OFD_GETLK,
                                _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, _WAITING_BYTE, 1, 0))
        except OSError:
            return False
        return bool(_FLOCK.unpack(found)[0] != fcntl.F_UNLCK)

    def stop_waiting(self) -> None:
        """The store closes: a write waiting for its turn goes on without it."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()

    def close(self) -> None:
        """After the writer's last transaction: end the waiting thread and close the
        files (one waiting for a process that holds the turn keeps its file open;
        it is a daemon)."""
        self.stop_waiting()
        os.close(self._fd)
        if self._waiter is not None:
            self._waiter.join(CLOSE_WAIT_SECONDS)  # an idle one ends at once
        if self._waiter is None or not self._waiter.is_alive():
            os.close(self._waiter_fd)


def _writers_beside(path: str) -> _Writers | None:
    """The writers' turn of the database at `path` (made as open as the database
    is), or None when its file cannot be opened at all: then SQLite's lock alone
    orders the writers, as it always does those that do not take the turn."""
    try:
        return _Writers(path + "-lock", stat.S_IMODE(os.stat(path).st_mode))
    except OSError as exc:
        log.warning("%s-lock: %s; the writers of several processes on this store wait "
                    "for each other by SQLite's lock alone (slower)", path, exc)
        return None


def _enter_wal(conn: sqlite3.Connection, seconds: float = 10.0) -> None:
    """journal_mode = WAL, waiting for other connections like busy_timeout would.

    Switching a new file to WAL needs it to itself, and SQLite answers "database is
    locked" at once, without its busy handler, while another connection (another
    process starting on the same new file) holds it: so try again, briefly."""
    deadline = time.monotonic() + seconds
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _refuse_if_restore_unfinished(path: str) -> None:
    """StoreUnusable when there is no store at `path` but a restore's copy beside it
    (`footfall restore`, server/store/restore.py): the restore did not end, killed
    after it moved the store aside and before it renamed the copy into place, or
    while it copied the backup to a new path. A start made a new, empty store there,
    and served writes into it: those and the backup's events were then in two files."""
    copy = f"{path}.restoring"
    if not os.path.lexists(path) and os.path.lexists(copy):
        store, copy = os.path.abspath(path), os.path.abspath(copy)
        aside = _moved_aside_for(store, copy)
        if aside is not None:
            # (killed between the two renames: said as the rest, the store moved aside
            # with every event it held went unnamed, and "remove it to start on a new,
            # empty store" was one of the two ways given)
            raise StoreUnusable(
                f"{store} is not there, and {copy} is: a `footfall restore` stopped after "
                f"it moved the store aside, to {aside}, and before it put the backup's "
                f"copy in its place. That copy is whole (checked before the store was "
                f"moved): rename it to {store} to end the restore, or rename {aside} "
                "(and its -wal and -shm) back to undo it")
        raise StoreUnusable(
            f"{store} is not there, and {copy} is: a "
            "`footfall restore` did not end. Restore again (remove that file first), or "
            "remove it to start on a new, empty store")


def _moved_aside_for(store: str, copy: str) -> str | None:
    """The store a restore whose copy is `copy` moved aside (`store`.replaced-TIME, see
    server.store.restore), if it did: named after the copy was made and checked (its
    time not before the copy's last change), else None."""
    folder, prefix = os.path.split(f"{store}.replaced-")
    try:
        made = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(os.stat(copy).st_mtime)))
        names = os.listdir(folder or ".")
    except OSError:
        return None
    found = sorted(name for name in names if name.startswith(prefix)
                   and name[len(prefix):] >= made and not name.endswith(("-wal", "-shm")))
    return os.path.join(folder, found[-1]) if found else None


def _is_io_error(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's I/O error (SQLITE_IOERR: a read, write or fsync the
    operating system failed, EIO say)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None \
        and code & 0xFF == sqlite3.SQLITE_IOERR


def _probe_write(conn: sqlite3.Connection) -> None:
    """The smallest write that must reach the disk: the database header's
    user_version (unused by Footfall), set to what it is."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.execute(f"PRAGMA user_version = {int(version)}")
