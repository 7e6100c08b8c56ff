"""`footfall restore BACKUP --store URL`: a backup put in place of a SQLite store whose
server was killed, never read with the WAL the killed server left (the two stores
were served as one), refused while a server has the store open, and checked first."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.store import EventQuery, open_store

from .cli import footfall
from .tmpfs import mounted

SHOP = "projects/shop/locations/global/catalogs/default_catalog"
OTHER = "projects/other/locations/global/catalogs/default_catalog"

# Writes COUNT events of CATALOG into the store at URL, then is killed (kill -9), as a
# server is: its WAL, uncheckpointed, stays beside the file.
KILLED_WRITER = """
import os, signal, sys
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format
from server.store import open_store
from server.store.rows import EventRow
url, catalog, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store(url)
store.write_user_events([EventRow.from_event(catalog, json_format.ParseDict(
    {"eventType": "home-page-view", "visitorId": f"v{i}", "eventTime": "2024-01-01T00:00:00Z"},
    user_event_pb2.UserEvent()), joined=True) for i in range(count)])
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_after_writing(path: Path, catalog: str, count: int) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, f"sqlite:///{path}", catalog,
                           str(count)], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert os.path.getsize(f"{path}-wal") > 0


def catalogs(path: Path) -> dict[str, int]:
    """The events of each catalog in the store at `path`, as a server reads them."""
    store = open_store(f"sqlite:///{path}")
    try:
        counted = {catalog: store.count_user_events(EventQuery(catalog))
                   for catalog in (SHOP, OTHER)}
        return {catalog: count for catalog, count in counted.items() if count}
    finally:
        store.close()


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    """A backup (`footfall backup`) of another store: one event of OTHER."""
    killed_after_writing(tmp_path / "other.db", OTHER, 1)
    made = footfall("backup", "monday.db", "--store", "other.db", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path / "monday.db"


@pytest.fixture
def killed_store(tmp_path: Path) -> Path:
    """The store a server was writing when it was killed: 30 events of SHOP, most of
    them only in its WAL."""
    (tmp_path / "data").mkdir()
    live = tmp_path / "data" / "footfall.db"
    killed_after_writing(live, SHOP, 30)
    return live


def test_a_backup_restored_is_never_read_with_the_wal_of_the_store_it_replaces(
        tmp_path: Path, backup: Path, killed_store: Path) -> None:
    # The README's former way, a cp over the file with the WAL left: the killed
    # store's pages read over the backup's (its 30 events served, the backup's one gone).
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for suffix in ("-wal", "-shm"):
        shutil.copyfile(f"{killed_store}{suffix}", f"{mixed}/footfall.db{suffix}")
    shutil.copyfile(backup, mixed / "footfall.db")
    assert catalogs(mixed / "footfall.db") == {SHOP: 30}

    # the store's mode, and (run as root, as a restore often is) its owner: a server run
    # as another user must still write the file restored
    os.chmod(killed_store, 0o640)
    owner = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(killed_store, *owner)
    restored = footfall("restore", "monday.db", "--store", "data/footfall.db", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    made = killed_store.stat()
    assert (stat.S_IMODE(made.st_mode), made.st_uid, made.st_gid) == (0o640, *owner)
    [aside] = [p for p in killed_store.parent.iterdir() if ".replaced-" in p.name
               and not p.name.endswith(("-wal", "-shm"))]
    assert restored.stdout == (
        f"restored monday.db to {killed_store} (integrity checked); what it replaced is kept "
        f"as {aside}, {aside}-wal, {aside}-shm\n")
    assert not os.path.exists(f"{killed_store}-wal")
    assert catalogs(killed_store) == {OTHER: 1}
    assert catalogs(aside) == {SHOP: 30}  # (nothing lost: the killed store, whole)


def test_a_backup_with_a_wal_of_its_own_is_restored_whole_and_leftovers_are_kept(
        tmp_path: Path, killed_store: Path) -> None:
    """A killed server's file given as the backup is read with its WAL (its 30 events,
    most of them only there); a -wal and -shm with no database beside them are moved
    aside, not read as the backup's."""
    new = tmp_path / "new" / "footfall.db"
    new.parent.mkdir()
    for suffix in ("-wal", "-shm"):
        shutil.copyfile(f"{killed_store}{suffix}", f"{new}{suffix}")
    restored = footfall("restore", str(killed_store), "--store", str(new), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    [aside] = {str(p)[:-len("-wal")] for p in new.parent.iterdir() if ".replaced-" in p.name}
    assert restored.stdout == (f"restored {killed_store} to {new} (integrity checked); what "
                               f"it replaced is kept as {aside}-wal, {aside}-shm\n")
    assert sorted(p.name for p in new.parent.iterdir() if ".replaced-" not in p.name) == [
        "footfall.db"]
    assert catalogs(new) == {SHOP: 30}
    assert catalogs(killed_store) == {SHOP: 30}  # (the backup is left as it was)


def test_a_restore_is_refused_while_a_server_has_the_store_open(
        tmp_path: Path, backup: Path, killed_store: Path) -> None:
    with serving(killed_store, tmp_path) as pid:
        before = killed_store.stat().st_ino  # (the server writes it meanwhile)
        refused = footfall("restore", "monday.db", "--store", f"sqlite:///{killed_store}",
                           cwd=tmp_path)
        assert (refused.returncode, refused.stderr) == (2, (
            f"footfall: process {pid} has {killed_store} open (a server?): stop it, then "
            "restore; the store is left as it was\n"))
        assert killed_store.stat().st_ino == before
        assert sorted(p.name for p in killed_store.parent.iterdir()) == [
            "footfall.db", "footfall.db-lock", "footfall.db-shm", "footfall.db-wal"]
    assert catalogs(killed_store) == {SHOP: 30}


def test_a_damaged_backup_is_not_restored(tmp_path: Path, backup: Path,
                                          killed_store: Path) -> None:
    damaged = tmp_path / "damaged.db"
    data = bytearray(backup.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page + 8:3 * page] = b"\x55" * (page - 8)  # a b-tree page's cells
    damaged.write_bytes(bytes(data))
    refused = footfall("restore", "damaged.db", "--store", str(killed_store), cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"footfall: {damaged} fails SQLite's integrity check "
                                     "(*** in database main *** On tree page ")
    assert refused.stderr.endswith("): the store is left as it was\n")
    assert sorted(p.name for p in killed_store.parent.iterdir()) == [
        "footfall.db", "footfall.db-lock", "footfall.db-shm", "footfall.db-wal"]
    assert catalogs(killed_store) == {SHOP: 30}


def too_damaged_to_check(backup: Path) -> Path:
    """A copy of `backup` beside it, damaged.db, with an index's root page overwritten:
    integrity_check itself fails ('malformed')."""
    damaged = backup.parent / "damaged.db"
    data = bytearray(backup.read_bytes())
    page = 4096
    data[4 * page:4 * page + 8] = b"\x0d\x00\x00\x00\x05\x0f\xff\x00"  # page 5's header
    data[4 * page + 100:4 * page + 120] = b"\x09" * 20
    damaged.write_bytes(bytes(data))
    return damaged


def test_a_backup_too_damaged_to_check_is_refused_as_damaged(tmp_path: Path, backup: Path,
                                                             killed_store: Path) -> None:
    """The restore said 'cannot restore: database disk image is malformed', exit 1,
    naming neither the backup nor what became of the store."""
    damaged = too_damaged_to_check(backup)
    refused = footfall("restore", "damaged.db", "--store", str(killed_store), cwd=tmp_path)
    assert (refused.returncode, refused.stderr) == (
        2, f"footfall: {damaged} fails SQLite's integrity check (database disk image is "
        "malformed): the store is left as it was\n")
    assert sorted(p.name for p in killed_store.parent.iterdir()) == [
        "footfall.db", "footfall.db-lock", "footfall.db-shm", "footfall.db-wal"]
    assert catalogs(killed_store) == {SHOP: 30}


def test_a_restore_refused_for_a_new_path_leaves_no_folder_it_made(tmp_path: Path,
                                                                   backup: Path) -> None:
    """The folders made for the store stayed, empty; a folder that was there stays."""
    too_damaged_to_check(backup)
    (tmp_path / "srv").mkdir()
    store = tmp_path / "srv" / "shop" / "data" / "footfall.db"
    refused = footfall("restore", "damaged.db", "--store", str(store), cwd=tmp_path)
    assert refused.returncode == 2 and "fails SQLite's integrity check" in refused.stderr
    assert list((tmp_path / "srv").iterdir()) == []
    restored = footfall("restore", "monday.db", "--store", str(store), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert catalogs(store) == {OTHER: 1}


def test_a_restore_refused_for_a_name_taken_aside_leaves_no_copy(tmp_path: Path,
                                                                 backup: Path) -> None:
    """A second restore within the second of the one before found the name it moves the
    store to taken: refused, it said to restore again, and left its copy, so that the
    restore again was refused for it (footfall.db.restoring: remove it)."""
    store = tmp_path / "data" / "footfall.db"
    first = footfall("restore", "monday.db", "--store", str(store), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    now = time.time()
    for second in range(-2, 30):  # (the name of each second this restore might take)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + second))
        Path(f"{store}.replaced-{stamp}").touch(exist_ok=True)
    before = sorted(p.name for p in store.parent.iterdir())
    refused = footfall("restore", "monday.db", "--store", str(store), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.endswith(" exists (a restore of this second): restore again\n")
    assert sorted(p.name for p in store.parent.iterdir()) == before
    for taken in store.parent.glob("footfall.db.replaced-*"):
        taken.unlink()
    again = footfall("restore", "monday.db", "--store", str(store), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert catalogs(store) == {OTHER: 1}


def test_only_a_sqlite_store_is_restored(tmp_path: Path, backup: Path) -> None:
    refused = footfall("restore", "monday.db", "--store",
                       "postgresql://shop:secret@db.internal/footfall", cwd=tmp_path)
    assert refused.returncode == 2
    assert "pg_restore --dbname=URL FILE" in refused.stderr and "secret" not in refused.stderr
    # (a memory store was given PostgreSQL's way: it has none, it ends with its server)
    memory = footfall("restore", "monday.db", "--store", "memory://", cwd=tmp_path)
    assert memory.returncode == 2 and "pg_restore" not in memory.stderr
    assert "serve the backup itself with --store sqlite:///BACKUP" in memory.stderr
    same = footfall("restore", "monday.db", "--store", "monday.db", cwd=tmp_path)
    assert (same.returncode, same.stderr) == (
        2, f"footfall: {backup} is the store itself: nothing to restore\n")


@contextlib.contextmanager
def serving(path: Path, cwd: Path) -> Iterator[int]:
    """`footfall serve` on the store at `path` in a process of its own; yields its pid
    once it is ready, and stops it however the block ends."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
         "--store", f"sqlite:///{path}"], cwd=cwd, stderr=subprocess.PIPE, text=True,
        env=clean)
    watchdog = threading.Timer(30, server.kill)  # (its output then ends)
    watchdog.start()
    try:
        assert server.stderr is not None
        ready = any("Footfall serving gRPC" in line
                    for line in iter(server.stderr.readline, ""))
        watchdog.cancel()
        assert ready, "the server did not start"
        yield server.pid
    finally:
        watchdog.cancel()
        server.terminate()
        server.wait(30)


def test_a_backup_on_a_read_only_file_system_is_restored_and_read(
        tmp_path: Path, backup: Path) -> None:
    """A backup kept on read-only media (a mounted snapshot, a read-only share) is a
    WAL-mode file whose folder cannot take the `-shm` SQLite makes to read it: restore
    said `/media/monday.db is not a Footfall store: unable to open database file`, and
    so did `events count` on it. With no `-wal` beside it, nothing can be writing it:
    it is read as it is."""
    with mounted(tmp_path / "media", 8 * 2**20) as media:
        shutil.copyfile(backup, media.path / "monday.db")
        media.remount("ro")
        restored = footfall("restore", str(media.path / "monday.db"), "--store",
                            "data/footfall.db", cwd=tmp_path)
        assert restored.returncode == 0, restored.stderr
        counted = footfall("events", "count", "--store", f"sqlite:///{media.path}/monday.db",
                           "--parent", OTHER, cwd=tmp_path)
        assert (counted.returncode, counted.stdout.strip()) == (0, "1"), counted.stderr
    assert catalogs(tmp_path / "data" / "footfall.db") == {OTHER: 1}


def test_a_restore_that_meets_a_full_disk_leaves_the_store_and_nothing_else(
        tmp_path: Path, backup: Path) -> None:
    """The copy of the backup was written with a rollback journal beside it, which SQLite
    keeps when a write fails: a restore that met a full disk removed the copy,
    footfall.db.restoring, and left footfall.db.restoring-journal beside the store."""
    # More than SQLite's page cache holds (2 MiB): the pages it spills to the file
    # before the end are what the journal guards.
    killed_after_writing(backup.with_name("big.db"), OTHER, 20_000)
    made = footfall("backup", "big-backup.db", "--store", "big.db", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    with mounted(tmp_path / "data", 2**20) as data:
        killed_after_writing(data.path / "footfall.db", SHOP, 30)
        kept = sorted(p.name for p in data.path.iterdir())
        data.fill()
        data.make_room(48 * 1024)  # less than the backup: the copy fails midway
        restored = footfall("restore", "big-backup.db", "--store", "data/footfall.db",
                            cwd=tmp_path)
        assert restored.returncode == 1, restored.stderr
        assert restored.stderr == "footfall: cannot restore: database or disk is full\n"
        assert sorted(p.name for p in data.path.iterdir()) == sorted([*kept, "ballast"])
        data.empty()
        assert catalogs(data.path / "footfall.db") == {SHOP: 30}


def test_a_server_is_not_started_where_a_restore_did_not_end(tmp_path: Path,
                                                             backup: Path) -> None:
    """A restore killed between moving the store aside and renaming its copy into place
    left no store, and the next start (a service manager's restart) made a new, empty
    one there and served writes into it: those and the backup's events were then in
    two files. The start is refused until the restore is made again, or its copy
    removed."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(backup, data / "footfall.db.restoring")  # (what the restore left)
    started = footfall("serve", "--port", "0", "--http-port", "0", "--store",
                       "data/footfall.db", cwd=tmp_path, timeout=30)
    assert started.returncode == 1, started.stderr
    assert (f"cannot start: {data}/footfall.db is not there, and "
            f"{data}/footfall.db.restoring is: a `footfall restore` did not end. Restore "
            "again (remove that file first), or remove it to start on a new, empty "
            "store") in started.stderr, started.stderr
    assert sorted(p.name for p in data.iterdir()) == ["footfall.db.restoring"]
    os.remove(data / "footfall.db.restoring")
    restored = footfall("restore", str(backup), "--store", "data/footfall.db", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert catalogs(data / "footfall.db") == {OTHER: 1}
