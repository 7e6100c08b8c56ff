"""What the SQLite store checks at start: a few page reads whatever the file's
size, damage where the last writes landed found always, damage elsewhere found
by the full check on files small enough for it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format

from server.store import EventRow, sqlite_checks
from server.store.rows import StoreUnusable
from server.store.sqlite import SqliteStore

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


def stored(path: Path, events: int) -> Path:
    """A closed store at `path` holding `events` events (the WAL checkpointed away)."""
    store = SqliteStore(str(path))
    rows = [EventRow.from_event(CATALOG, json_format.ParseDict(
        {"eventType": "home-page-view", "visitorId": f"visitor-{i:06}",
         "eventTime": "2024-01-01T00:00:00Z"}, user_event_pb2.UserEvent()), joined=True)
        for i in range(events)]
    store.write_user_events(rows)
    store.close()
    return path


def leaf_pages(path: Path, btree: str) -> list[int]:
    """The leaf pages of one table or index, left to right (SQLite's dbstat table)."""
    with sqlite3.connect(path) as conn:
        try:
            rows = conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' "
                                "ORDER BY path", (btree,)).fetchall()
        except sqlite3.OperationalError as exc:
            pytest.skip(f"this SQLite has no dbstat table to find pages with: {exc}")
    conn.close()
    return [pageno for (pageno,) in rows]


def damage(path: Path, pageno: int) -> None:
    with open(path, "r+b") as file:
        file.seek((pageno - 1) * 4096)
        file.write(b"\xa5" * 4096)


def vm_steps(path: Path) -> int:
    """SQLite virtual machine steps that check_contents takes on `path`."""
    conn = sqlite3.connect(path)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 1)
    try:
        sqlite_checks.check_contents(conn, str(path))
    finally:
        conn.close()
    return steps


def test_the_checks_of_a_large_file_take_as_many_steps_as_of_a_small_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_checks, "FULL_CHECK_BYTES", 0)  # as for a file of gigabytes
    small = vm_steps(stored(tmp_path / "small.db", 10))
    large = vm_steps(stored(tmp_path / "large.db", 20_000))
    assert large == small  # seeks, never a scan: a scan steps once per row


def test_a_damaged_last_page_is_found_on_any_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_checks, "FULL_CHECK_BYTES", 0)
    path = stored(tmp_path / "events.db", 5_000)
    damage(path, leaf_pages(path, "user_events")[-1])  # where the last writes landed
    with pytest.raises(StoreUnusable, match=f"^{re.escape(str(path))} is damaged: "
                                            "database disk image is malformed$"):
        SqliteStore(str(path))


def test_a_damaged_middle_page_is_found_by_the_full_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = stored(tmp_path / "events.db", 5_000)
    pages = leaf_pages(path, "user_events_visitor")
    damage(path, pages[len(pages) // 2])
    with pytest.raises(StoreUnusable, match=f"^{re.escape(str(path))} is damaged: Page [0-9]+: "
                                            "[^\\n]*$"):
        SqliteStore(str(path))
    # The limit (see the README): above FULL_CHECK_BYTES it shows only when touched.
    monkeypatch.setattr(sqlite_checks, "FULL_CHECK_BYTES", 0)
    SqliteStore(str(path)).close()
