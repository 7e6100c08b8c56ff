"""Which SQLite errors the store takes for its disk failing (UNAVAILABLE, retried)
rather than for a bug or a damaged file (INTERNAL): SQLite reports a read that met
EIO inside a statement as SQLITE_CORRUPT, "database disk image is malformed", so that
one is the disk's only when the store's files cannot be read now. The real disk is
in tests/integration/test_disk_read_errors.py."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.store import sqlite_checks
from server.store.rows import StoreUnavailable
from server.store.sqlite import SqliteStore


def said(code: int) -> sqlite3.DatabaseError:
    error = sqlite3.DatabaseError("database disk image is malformed")
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "events.db"))
    try:
        yield opened
    finally:
        opened.close()


def test_malformed_on_files_that_read_is_damage_not_the_disk(store: SqliteStore) -> None:
    assert store.path is not None
    assert sqlite_checks.unreadable(store.path) is None
    assert not store._disk_fault(said(sqlite3.SQLITE_CORRUPT))
    store._refuse_failed_read(said(sqlite3.SQLITE_CORRUPT))  # (not raised: INTERNAL, as before)


def test_malformed_on_files_the_disk_cannot_read_is_the_disk(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(fd: int, size: int, offset: int) -> Any:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "pread", failing)
    assert store._disk_fault(said(sqlite3.SQLITE_CORRUPT))
    with pytest.raises(StoreUnavailable) as refused:
        store._refuse_failed_read(said(sqlite3.SQLITE_CORRUPT))
    assert "failed a read (an I/O error)" in refused.value.message


def test_io_errors_are_the_disk_and_others_are_not(store: SqliteStore) -> None:
    assert store._disk_fault(said(sqlite3.SQLITE_IOERR | (33 << 8)))  # IOERR_CORRUPTFS
    assert not store._disk_fault(said(sqlite3.SQLITE_CONSTRAINT))
    assert not store._disk_fault(ValueError("not SQLite's"))


def test_the_probe_stops_at_its_time(tmp_path: Path) -> None:
    big = tmp_path / "big.db"
    big.write_bytes(b"\0" * (4 * 2**20))
    assert sqlite_checks.unreadable(str(big), seconds=0.0) is None  # (nothing read)
    assert sqlite_checks.unreadable(str(tmp_path / "missing.db")) is None
