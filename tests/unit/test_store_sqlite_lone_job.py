"""A write job alone in its transaction (a purge's step, or any write that found no
other queued beside it) runs without a savepoint: its failure rolls the whole
transaction back. SQLite may have done so itself already (an interrupted statement,
a read that met a failing disk); the job's caller then
hears its own error, not the "no transaction is active" of a second ROLLBACK."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.store.sqlite import SqliteStore


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "events.db") if request.param == "file" else None)
    try:
        yield opened
    finally:
        opened.close()


def interrupted(conn: sqlite3.Connection) -> None:
    """A write whose statement SQLite interrupts: SQLITE_INTERRUPT ends the whole
    transaction (as its documentation says), before the job's failure is handled."""
    conn.execute("INSERT INTO settings (name, value) VALUES ('lone', x'00')")
    conn.set_progress_handler(lambda: 1, 1)
    try:
        conn.execute("DELETE FROM settings")
    finally:
        conn.set_progress_handler(None, 0)


def test_a_lone_job_that_sqlite_rolled_back_fails_with_its_own_error(
        store: SqliteStore) -> None:
    """Before, the caller heard `cannot rollback - no transaction is active`, and the
    committer logged the batch as failed as a whole (committed again one by one)."""
    with pytest.raises(sqlite3.OperationalError, match="^interrupted$"):
        store._write(interrupted, alone=True)
    assert not store._writer_conn.in_transaction
    store._write(lambda conn: conn.execute(
        "INSERT INTO settings (name, value) VALUES ('after', x'01')"))
    assert store._fetch("SELECT name FROM settings WHERE name IN ('lone', 'after')", ()) \
        == [("after",)]
