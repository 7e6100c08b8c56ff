"""What a file store keeps across a restart: every acknowledged write, once.

Each test starts its own servers on one SQLite file (function scope), stops them
with SIGTERM (they must drain and exit 0) and reads the file with the events CLI.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import retail_v2

from .examples import ALL_EVENTS, as_json, example, user_event
from .support import (
    CLI_DEADLINE,
    RPC_DEADLINE,
    ServerProcess,
    count_events,
    finish,
    list_events,
    retail_client,
    sqlite_url,
)

CATALOG = "projects/footfall-interop/locations/global/catalogs/restart"
SYNC_EVENTS = 40
ASYNC_BURST = 400


def distinct_events(count: int) -> list[retail_v2.UserEvent]:
    """`count` different valid events cycling through every type (own event_time each)."""
    kinds = list(ALL_EVENTS)
    return [user_event(example(kinds[i % len(kinds)], visitorId=f"visitor-{i:05d}",
                               eventTime=f"2024-05-20T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:"
                                         f"{i % 60:02d}.{i:06d}Z"))
            for i in range(count)]


def write(client: Any, event: retail_v2.UserEvent, **request: Any) -> retail_v2.UserEvent:
    return client.write_user_event(request={"parent": CATALOG, "user_event": event, **request},
                                   timeout=RPC_DEADLINE)


def stop_cleanly(server: ServerProcess) -> None:
    code = server.stop()
    assert code == 0, f"exit code {code}; log:\n{server.log_text()}"


def test_sync_writes_survive_a_restart_and_refusals_leave_nothing(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    sent = distinct_events(SYNC_EVENTS)
    first = server_factory()
    with retail_client(first.address) as client:
        for event in sent:
            write(client, event)
        for refused in (example("purchase-complete", purchaseTransaction=None),
                        example("search", searchQuery=None), example("login", visitorId=None)):
            with pytest.raises(exceptions.InvalidArgument):
                write(client, user_event(refused))
    stop_cleanly(first)

    second = server_factory()  # same file
    assert second.store == first.store
    assert count_events(second.store, CATALOG, tmp_path) == SYNC_EVENTS
    assert list_events(second.store, CATALOG, tmp_path) == [as_json(e) for e in sent]
    stop_cleanly(second)


def test_an_identical_event_is_stored_once_even_across_a_restart(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    event = user_event(example("purchase-complete", eventTime="2024-05-20T14:03:07.5Z"))
    first = server_factory()
    with retail_client(first.address) as client:
        assert as_json(write(client, event)) == as_json(event)
        assert as_json(write(client, event)) == as_json(event)  # answered, not stored again
    stop_cleanly(first)
    assert count_events(first.store, CATALOG, tmp_path) == 1

    second = server_factory()
    with retail_client(second.address) as client:
        write(client, event)
        # The same content at another time is another event.
        write(client, user_event(example("purchase-complete", eventTime="2024-05-20T14:03:08Z")))
    assert count_events(second.store, CATALOG, tmp_path) == 2
    stop_cleanly(second)


def test_a_write_async_burst_is_flushed_by_sigterm(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    sent = distinct_events(ASYNC_BURST)
    first = server_factory()
    with retail_client(first.address) as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda e: write(client, e, write_async=True), sent))
    assert len(answers) == ASYNC_BURST
    stop_cleanly(first)  # right after the last answer: the queue is flushed on the way out

    second = server_factory()
    assert count_events(second.store, CATALOG, tmp_path) == ASYNC_BURST
    with retail_client(second.address) as client:
        write(client, user_event(example("home-page-view", visitorId="after-restart")))
    assert count_events(second.store, CATALOG, tmp_path) == ASYNC_BURST + 1
    stored = {(e["visitorId"], e["eventTime"])
              for e in list_events(second.store, CATALOG, tmp_path, limit=ASYNC_BURST + 1)
              if e["visitorId"] != "after-restart"}
    assert stored == {(e.visitor_id, as_json(e)["eventTime"]) for e in sent}
    stop_cleanly(second)


def _import(server: ServerProcess, events: list[retail_v2.UserEvent]) -> None:
    with retail_client(server.address) as client:
        finish(client.import_user_events(request={
            "parent": CATALOG,
            "input_config": {"user_event_inline_source": {"user_events": events}}},
            timeout=RPC_DEADLINE))


def test_a_backup_put_beside_the_old_files_wal_is_refused_and_left_as_it_was(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """README, Restore: remove the old store's -wal and -shm before putting a backup in
    its place. Forgotten, the old WAL (a server killed with frames in it) was read as
    the backup's, the start said the file was damaged, and closing merged that WAL into
    the backup and deleted it: the restored file stayed damaged and the cause was gone.
    Now nothing is written, the line names the WAL, and removing it starts the backup."""
    small = tmp_path / "small"
    small.mkdir()
    backup_of = ServerProcess(small, sqlite_url(small / "shop.db"), [])
    _import(backup_of, distinct_events(50))
    stop_cleanly(backup_of)
    backup = tmp_path / "monday.db"
    made = subprocess.run([sys.executable, "-m", "server", "backup", str(backup), "--store",
                           sqlite_url(small / "shop.db")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=CLI_DEADLINE)
    assert made.returncode == 0, made.stderr

    live = tmp_path / "events.db"  # grown since, then killed with frames in its WAL
    first = server_factory()
    _import(first, distinct_events(3000))
    stop_cleanly(first)
    second = server_factory()
    _import(second, distinct_events(3300)[3000:])
    second.kill()
    assert Path(f"{live}-wal").stat().st_size > 0

    shutil.copyfile(backup, live)  # the restore, without removing events.db-wal
    with pytest.raises(RuntimeError, match="server exited with 1") as caught:
        server_factory()
    said = str(caught.value)
    assert f"{live} is damaged" in said, said
    assert f"remove {live}-wal and {live}-shm, and start again" in said, said
    assert live.read_bytes() == backup.read_bytes()  # the backup as it was put there

    Path(f"{live}-wal").unlink()
    Path(f"{live}-shm").unlink(missing_ok=True)
    restored = server_factory()
    assert count_events(restored.store, CATALOG, tmp_path) == 50
    stop_cleanly(restored)


def test_a_store_locked_by_another_connection_is_not_told_to_lose_its_wal(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """A store killed with frames in its WAL, then held by another connection (the
    sqlite3 shell in exclusive locking mode, a backup tool): the start is refused as
    locked, as it was before the WAL check, and is not told to remove the WAL (which
    holds the last transactions: removing it loses them)."""
    live = tmp_path / "events.db"
    first = server_factory()
    _import(first, distinct_events(300))
    first.kill()
    assert Path(f"{live}-wal").stat().st_size > 0
    holder = sqlite3.connect(live, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(RuntimeError, match="server exited with 1") as caught:
            server_factory()
    finally:
        holder.close()
    said = str(caught.value)
    assert f"{live}: database is locked" in said, said
    assert "remove" not in said and ".recover" not in said, said
    again = server_factory()  # the lock let go: every event is there
    assert count_events(again.store, CATALOG, tmp_path) == 300
    stop_cleanly(again)


def test_a_store_removed_with_its_wal_left_beside_starts_anew(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """`rm events.db` to start again, after a server killed with frames in its WAL:
    the WAL left beside belongs to no file, and the start was refused, 'unable to open
    database file' (the check before the WAL applies opens the file read-only). As
    before that check: a new store, the stray WAL dropped by SQLite."""
    live = tmp_path / "events.db"
    first = server_factory()
    _import(first, distinct_events(300))
    first.kill()
    assert Path(f"{live}-wal").stat().st_size > 0
    live.unlink()
    again = server_factory()
    assert count_events(again.store, CATALOG, tmp_path) == 0
    _import(again, distinct_events(5))
    assert count_events(again.store, CATALOG, tmp_path) == 5
    stop_cleanly(again)
