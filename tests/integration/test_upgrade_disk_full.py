"""A store of an older Footfall upgraded on a disk without the room its migrations need
(one rewrites the events table whole, in the start's one transaction): the start stops
saying the disk is full and the store is left as it was; with room, the same start
upgrades it. Mounting needs root: without it the test skips, saying so loudly."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from pathlib import Path

from footfall.retail.v2 import user_event_pb2
from unit.old_schema import make_old_schema

from server.store import EventQuery, open_store

from .cli import footfall
from .tmpfs import mounted

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
EVENTS = 12_000  # of about 1.2 KB each: some 15 MB that the upgrade copies


def old_store(path: Path) -> None:
    """A store as Footfall left it before migration 8 (which rebuilds user_events)."""
    event = user_event_pb2.UserEvent(event_type="home-page-view",
                                     visitor_id="v").SerializeToString()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        make_old_schema(conn, "sqlite", 6)  # (1, 2, 3, 4, 6 and 7: there is no 5)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO user_events (catalog, event_type, visitor_id, user_id, event_time_us, "
            "event_time_ns, joined, dedup_key, event, source) VALUES (?, 'home-page-view', ?, "
            "'', ?, 0, 1, randomblob(16), ?, randomblob(1000))",
            [(CATALOG, f"v{i}", i, event) for i in range(EVENTS)])
        conn.execute("COMMIT")


def contents(path: Path) -> tuple[list[int], int]:
    """The migrations applied to the store at `path`, and its events."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return ([v for (v,) in conn.execute("SELECT version FROM schema_migrations")],
                conn.execute("SELECT count(*) FROM user_events").fetchone()[0])


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_an_upgrade_that_does_not_fit_says_the_disk_is_full_and_changes_nothing(
        tmp_path: Path) -> None:
    """Before, SQLite had rolled the transaction back itself as the disk filled, the
    start's own ROLLBACK failed, and its words were all that was said: `cannot start:
    ...: cannot rollback - no transaction is active`."""
    made = tmp_path / "old.db"
    old_store(made)
    with mounted(tmp_path / "disk", made.stat().st_size + 4 * 2**20) as disk:
        store = disk.path / "footfall.db"
        store.write_bytes(made.read_bytes())
        before = contents(store)
        assert before == ([1, 2, 3, 4, 6, 7], EVENTS)
        started = footfall("serve", "--port", free_port(), "--http-port", "0", "--store",
                           f"sqlite:///{store}", cwd=tmp_path)
        assert started.returncode == 1, started.stderr
        assert (f"cannot start: {store}: the disk is full: the store's upgrade to this "
                "version") in started.stderr, started.stderr
        assert "cannot rollback" not in started.stderr
        assert sorted(p.name for p in disk.path.iterdir()) == ["footfall.db"]
        assert contents(store) == before
        (tmp_path / "roomy.db").write_bytes(store.read_bytes())
    upgraded = open_store(f"sqlite:///{tmp_path}/roomy.db")  # (with room it upgrades)
    try:
        assert upgraded.count_user_events(EventQuery(CATALOG)) == EVENTS
    finally:
        upgraded.close()
