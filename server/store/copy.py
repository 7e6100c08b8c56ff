"""`footfall copy DEST`: every row of one store put into another, empty one, of
either engine: how a SQLite store moves to PostgreSQL when it outgrows one
machine (or back, for a look at a PostgreSQL store on a laptop).

What Google's contract can carry (an export, an import) loses what only Footfall
keeps: each event's transport, receive time and copy as received, the kept
refusals, the operations, the rollups. A copy keeps them all, row for row and with
the same ids, so that a console or a watch that follows ids goes on where it was:
both stores hold the same schema (the same migrations), and only the engines'
types differ (BLOB / BYTEA, INTEGER / BIGINT identity). The `settings` row too, the
key that signs page tokens, so that a next page asked after the move opens: a store
holds it once a server gave a list a next page (`settings 0` where none has yet,
whatever the engine; the target then makes its own).

The source is read in one snapshot (a read transaction), so a copy of a store
that serves is consistent, as of the moment it began; what is written after that
is not in it. The target is written in one transaction: a copy that fails leaves
it as empty as it was.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import sys
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from typing import Any
from urllib.parse import urlparse

from server.store import check_url, open_store, redacted
from server.store.base import Store
from server.store.migrations import apply_missing
from server.store.rows import StoreRefused, StoreUnusable
from server.store.sqlite import SQLITE, SqliteStore
from server.store.sqlite_checks import read_only_uri

# Rows read at a time: at most BATCH_ROWS, and about BATCH_BYTES of them, so that what
# a copy holds stays flat whatever the rows weigh. An event may take 2 MiB, and 2 MiB
# more as received: 5,000 rows a time, a store of 1,202 such events (2.3 GB) held
# 2.3 GB copied from SQLite and 6.8 GB from PostgreSQL (its bytes come as hex).
BATCH_ROWS = 5_000
BATCH_BYTES = 16 * 2**20
FIRST_BATCH_ROWS = 16  # before a row was weighed
NOT_COPIED = ("schema_migrations",)  # each store has its own, made when it was opened


class CopyRefused(Exception):
    """This copy cannot be made as asked; the message says why and what to do."""


class _SourceFailed(Exception):
    """The source's table (args[0]) could not be read; the cause says why."""


class CopyFailed(Exception):
    """A store failed while the rows were copied, or the target's tables were made (the
    target is left as it was)."""


def copy_store(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row of the store at `source_url` into the empty store at
    `target_url` (made, and migrated, if new); the rows copied, by table.

    CopyRefused for memory:// on either side, the same store on both, or a target
    that holds anything (read before it is opened, which migrates it); ValueError
    for a URL that names no store; StoreUnavailable or StoreUnusable when a store
    cannot be opened (StoreRefused: the target's database, role or password refused),
    CopyFailed when there is no source store (none this version reads, or a source
    database PostgreSQL refuses), when one fails while copying or the target's tables
    cannot be made (another application's table of the same name).
    """
    for url in (source_url, target_url):
        if urlparse(url).scheme == "memory":
            raise CopyRefused("a memory:// store lives only inside its server process: copy "
                              "from and to sqlite:/// or postgresql:// stores")
    if _same(source_url, target_url):
        raise CopyRefused(f"{redacted(source_url)} is both the source and the target")
    check_url(source_url, read_only=True)
    try:
        source = open_store(source_url, read_only=True)
    except (ValueError, StoreRefused) as exc:
        # (a URL of the right form: no store there, none this version reads, or a
        # database PostgreSQL refuses, as every read command says it, exit 1; a SQLite
        # file missing was a mistake, exit 2, and so was a database missing)
        raise CopyFailed(getattr(exc, "message", str(exc))) from exc
    try:
        # (before opening it: opening a store migrates it, and a store that holds rows,
        # of an older version, the arguments swapped, must be left as it was)
        held = _table_with_rows(target_url)
        if held is not None:
            raise _holds_rows(held)
        refusals: tuple[type[Exception], ...] = (StoreUnusable, *_database_errors())
        try:
            target = open_store(target_url)
        except refusals as exc:
            # PostgreSQL: a table of another application (a name Footfall's schema
            # uses), said by the driver's error: duplicate table or object
            said = exc.__cause__ if isinstance(exc, StoreUnusable) else exc
            if not isinstance(said, Exception) or isinstance(exc, StoreUnusable) and \
                    getattr(said, "sqlstate", None) not in ("42P07", "42710"):
                raise
            raise CopyFailed(f"cannot make Footfall's tables in the target: {_said(said)} "
                             "(nothing was made: the target is as it was)") from exc
        try:
            return _copy(source, target)
        except _SourceFailed as exc:
            assert isinstance(exc.__cause__, Exception)
            raise CopyFailed(f"the source's table {exc.args[0]!r} cannot be read: "
                             f"{_said(exc.__cause__)} (nothing was copied: the target is "
                             "as it was)") from exc
        except _database_errors() as exc:
            raise CopyFailed(f"{_said(exc)} (nothing was copied: the target is as it "
                             "was)") from exc
        finally:
            target.close()
    finally:
        source.close()


def _said(exc: Exception) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


def _holds_rows(table: str) -> CopyRefused:
    return CopyRefused(f"the target holds rows already (table {table!r}): copy into an "
                       "empty store, one no server has written to")


def _table_with_rows(url: str) -> str | None:
    """A Footfall table that holds rows in the store at `url`, read as it is (None when
    there is none, or no store to read: opening it says why)."""
    try:
        with closing(_as_it_is(url)) as target:
            tables = set(target.tables()) & _footfall_tables()
            return next((table for table in sorted(tables) if target.has_rows(table)), None)
    except FileNotFoundError:
        return None
    except _database_errors():
        return None


def _as_it_is(url: str) -> _Engine:
    """A connection to the store at `url` that changes nothing (FileNotFoundError for a
    SQLite file not made yet)."""
    if urlparse(url).scheme == "sqlite":
        path = _sqlite_path(url)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise FileNotFoundError(path)
        return _Sqlite(sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None))
    import psycopg

    return _Postgres(psycopg.connect(url, autocommit=True, connect_timeout=5))


def _database_errors() -> tuple[type[Exception], ...]:
    """What the two drivers raise (psycopg's only if it was loaded: a SQLite user's
    copy never loads it)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)


def _same(source_url: str, target_url: str) -> bool:
    source, target = urlparse(source_url), urlparse(target_url)
    if source.scheme == target.scheme == "sqlite":
        return _sqlite_path(source_url) == _sqlite_path(target_url)
    return source_url == target_url


def _sqlite_path(url: str) -> str:
    return os.path.realpath(url.split("?", 1)[0][len("sqlite:///"):])


@functools.cache
def _footfall_tables() -> frozenset[str]:
    """The tables a store of this version holds (its migrations applied once to an
    empty store in memory): a PostgreSQL database may hold another application's
    beside them, which are not the copy's to read or fill."""
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        apply_missing(db, SQLITE, "a new store")
        return frozenset(_Sqlite(db).tables())


def _copy(source: Store, target: Store) -> dict[str, int]:
    copied: dict[str, int] = {}
    footfall = _footfall_tables()
    with closing(_Engine.of(source)) as reading, closing(_Engine.of(target)) as writing:
        tables = [table for table in reading.tables() if table in footfall]
        missing = sorted(set(tables) - set(writing.tables()))
        if missing:  # (opening the target migrated it to this version, as the source is)
            raise CopyRefused(f"the target has no table {missing[0]!r}: it is not a store of "
                              "this Footfall's version")
        with reading.snapshot(), writing.transaction():
            for table in tables:
                if writing.has_rows(table):
                    raise _holds_rows(table)
            for table in tables:
                columns = writing.columns(table)
                if set(reading.columns(table)) != set(columns):
                    raise CopyRefused(f"table {table!r} has other columns in the source and "
                                      "the target: they are not stores of one version")
                # (closed here, before its connection, also when the copy is stopped)
                with closing(reading.rows(table, columns)) as rows:
                    copied[table] = writing.put(table, columns, rows)
                writing.set_next_id(table, reading.next_id(table))
        writing.analyze([table for table in tables if copied.get(table)])
    return copied


class _Engine:
    """One store's own connection, as the copy reads or writes it."""

    def __init__(self, connection: Any) -> None:
        self.db = connection

    @staticmethod
    def of(store: Store) -> _Engine:
        if isinstance(store, SqliteStore):
            return _Sqlite(store.connect())
        from server.store.postgres import PostgresStore

        assert isinstance(store, PostgresStore)
        return _Postgres(store.connect())

    def close(self) -> None:
        self.db.close()

    def _one(self, sql: str, *values: Any) -> Any:
        row = self.db.execute(sql, values).fetchone()
        return row[0] if row else None

    def has_rows(self, table: str) -> bool:
        return self._one(f"SELECT 1 FROM {table} LIMIT 1") is not None

    def rows(self, table: str, columns: list[str]) -> Generator[tuple[Any, ...], None, None]:
        """The rows of `table`; _SourceFailed when they cannot be read (a damaged file):
        they are read while the target writes them, whose errors look alike."""
        order = " ORDER BY id" if "id" in columns else ""
        try:
            with closing(self._cursor(table)) as cursor:
                cursor.execute(f"SELECT {', '.join(columns)} FROM {table}{order}")
                size = FIRST_BATCH_ROWS
                while batch := cursor.fetchmany(size):
                    yield from batch
                    size = _batch_rows(batch)
        except _database_errors() as exc:
            raise _SourceFailed(table) from exc

    def _cursor(self, table: str) -> Any:
        return self.db.cursor()

    def tables(self) -> list[str]:
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def snapshot(self) -> Any:
        raise NotImplementedError

    def transaction(self) -> Any:
        raise NotImplementedError

    def put(self, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
        raise NotImplementedError

    def next_id(self, table: str) -> int:
        """Past every id `table` gave (0 when it gives none)."""
        raise NotImplementedError

    def set_next_id(self, table: str, next_id: int) -> None:
        raise NotImplementedError

    def analyze(self, tables: list[str]) -> None:
        """Once the copy is committed: what the engine's planner must know of the
        tables just filled (SQLite's plans are fixed by the store: nothing)."""


def _batch_rows(batch: list[tuple[Any, ...]]) -> int:
    """How many rows to read next: about BATCH_BYTES of rows like those of `batch`."""
    weight = sum(len(value) for row in batch for value in row
                 if isinstance(value, bytes | memoryview | str))
    per_row = max(1, weight // len(batch))
    return max(1, min(BATCH_ROWS, BATCH_BYTES // per_row))


class _Sqlite(_Engine):
    def tables(self) -> list[str]:
        return [name for (name,) in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name") if name not in NOT_COPIED]

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.db.execute(f"PRAGMA table_info({table})")]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self.db.execute("BEGIN")  # (a read transaction: one snapshot of the WAL)
        try:
            yield
        finally:
            self.db.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            # (SQLite ends the transaction itself on some errors, a full disk among
            # them: a ROLLBACK then failed, and its error was said instead)
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def put(self, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
        count = 0
        insert = (f"INSERT INTO {table} ({', '.join(columns)}) "
                  f"VALUES ({', '.join('?' * len(columns))})")

        def counted() -> Iterator[tuple[Any, ...]]:
            nonlocal count
            for row in rows:  # (PostgreSQL's BYTEA reads as memoryview)
                count += 1
                yield tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)

        self.db.executemany(insert, counted())
        return count

    def next_id(self, table: str) -> int:
        if "id" not in self.columns(table):
            return 0
        given = self._one("SELECT seq FROM sqlite_sequence WHERE name = ?", table) or 0
        return max(given, self._one(f"SELECT max(id) FROM {table}") or 0) + 1

    def set_next_id(self, table: str, next_id: int) -> None:
        autoincrement = self._one("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
        if next_id <= 1 or autoincrement is None or self._one(
                "SELECT 1 FROM sqlite_master WHERE name = ? AND sql LIKE '%AUTOINCREMENT%'",
                table) is None:
            return  # (without AUTOINCREMENT, SQLite gives max(id) + 1)
        if not self.db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?",
                               (next_id - 1, table)).rowcount:
            self.db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                            (table, next_id - 1))


class _Postgres(_Engine):
    def tables(self) -> list[str]:
        return [name for (name,) in self.db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name")
            if name not in NOT_COPIED]

    def columns(self, table: str) -> list[str]:
        return [name for (name,) in self.db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = %s ORDER BY ordinal_position", (table,))]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with self.db.transaction():
            self.db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    @contextmanager
    def transaction(self) -> Iterator[None]:
        from server.store.postgres import WRITERS_LOCK

        with self.db.transaction():
            # The writers' turn every replica's write transaction takes first: a server
            # already running on the target (or started meanwhile) writes after the copy,
            # with ids past it, rather than beside it (its event took id 1, and the copy
            # failed on it, leaving that event in a target said to be as it was).
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITERS_LOCK,))
            yield

    def _cursor(self, table: str) -> Any:
        # (a server-side cursor: a client-side one holds the whole table, 650 MB
        # for a million events, before the first row is written; binary: bytes come
        # as they are, not as hex twice their size)
        return self.db.cursor(name=f"footfall_copy_{table}", binary=True)

    def put(self, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
        count = 0
        # (COPY writes the values given to an identity column, as OVERRIDING SYSTEM
        # VALUE does)
        with self.db.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def _sequence(self, table: str) -> str | None:
        if "id" not in self.columns(table):
            return None
        sequence: str | None = self._one("SELECT pg_get_serial_sequence(%s, 'id')", table)
        return sequence

    def next_id(self, table: str) -> int:
        sequence = self._sequence(table)
        if sequence is None:
            return 0
        last, called = self.db.execute(
            f"SELECT last_value, is_called FROM {sequence}").fetchone()
        given = last if called else last - 1
        return max(given, self._one(f"SELECT max(id) FROM {table}") or 0) + 1

    def set_next_id(self, table: str, next_id: int) -> None:
        sequence = self._sequence(table)
        if sequence is not None and next_id > 1:
            self.db.execute("SELECT setval(%s, %s, true)", (sequence, next_id - 1))

    def analyze(self, tables: list[str]) -> None:
        # Filled by COPY, the tables have no statistics until autovacuum's next
        # ANALYZE (never, where it is off): the planner took 500,000 events for a few
        # dozen, and a purge's chunk (the retention purge of replicas started on the
        # copy) read the whole time index each time, 2,500 events a second while it
        # held every replica's writes, against 200,000 once analyzed.
        for table in tables:
            self.db.execute(f"ANALYZE {table}")


def copied_text(copied: dict[str, int]) -> str:
    """What `footfall copy` prints: the rows of each table, those with rows first."""
    return ", ".join(f"{table} {rows:,}" for table, rows in
                     sorted(copied.items(), key=lambda item: (item[1] == 0, item[0])))

