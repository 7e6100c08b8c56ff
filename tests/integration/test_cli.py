"""The command line: clear one-line errors and exit codes, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format

from server.store import EventRow
from server.store.sqlite import SqliteStore

from .tmpfs import mounted

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


def footfall(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_unknown_store_url(tmp_path: Path) -> None:
    out = footfall("serve", "--port", "0", "--http-port", "0", "--store", "bogus://x",
                   cwd=tmp_path)
    assert out.returncode == 1
    assert "cannot start: unknown store URL 'bogus://x'" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = footfall("serve", "--port", str(port), "--http-port", "0", "--store", "memory://",
                       cwd=tmp_path)
    assert out.returncode == 1
    assert f"cannot start: cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr


def test_events_cli_counts_and_refuses_bad_filters(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/events.db"
    ok = footfall("events", "count", "--parent", CATALOG, "--store", store, cwd=tmp_path)
    assert (ok.returncode, ok.stdout.strip()) == (0, "0")
    bad = footfall("events", "list", "--parent", CATALOG, "--store", store, "--filter",
                   'visitorId > "x"', cwd=tmp_path)
    assert bad.returncode == 2
    assert "--filter: at character 11: expected '=' after visitorId" in bad.stderr
    wrong = footfall("events", "count", "--parent", "catalogs/x", "--store", store, cwd=tmp_path)
    assert wrong.returncode == 2 and "--parent: must be of the form" in wrong.stderr


def test_operations_cli_lists_nothing_on_a_fresh_store(tmp_path: Path) -> None:
    out = footfall("operations", "list", "--store", f"sqlite:///{tmp_path}/e.db", cwd=tmp_path)
    assert (out.returncode, out.stdout) == (0, "")


def test_unusable_store_is_one_line(tmp_path: Path) -> None:
    out = footfall("events", "count", "--parent", CATALOG, "--store", "mysql://x", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("footfall: cannot open the store: unknown store URL")
    assert "Traceback" not in out.stderr


# -- a store that cannot be served: one line naming the file and the problem, exit 1 ---


def assert_refused(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    [line] = out.stderr.splitlines()
    assert "ERROR footfall: cannot start: " in line
    for word in words:
        assert word in line, line


def serve(store: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    url = store if isinstance(store, str) else f"sqlite:///{store}"
    return footfall("serve", "--port", "0", "--http-port", "0", "--store", url, cwd=cwd)


def stored(path: Path, events: int = 2000) -> Path:
    """A closed store at `path` holding `events` events."""
    store = SqliteStore(str(path))
    store.write_user_events([EventRow.from_event(CATALOG, json_format.ParseDict(
        {"eventType": "home-page-view", "visitorId": f"v{i}", "eventTime": "2024-01-01T00:00:00Z"},
        user_event_pb2.UserEvent()), joined=True) for i in range(events)])
    store.close()
    return path


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "events.db").mkdir()
    assert_refused(serve(tmp_path / "events.db", tmp_path),
                   f"{tmp_path}/events.db is a directory, not a database file")


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "events.db").write_text("id,visitor\n" + "1,v1\n" * 100)
    assert_refused(serve(tmp_path / "events.db", tmp_path),
                   f"{tmp_path}/events.db is not a SQLite database")


def test_a_copy_cut_short_is_refused(tmp_path: Path) -> None:
    path = stored(tmp_path / "events.db")
    size = path.stat().st_size
    os.truncate(path, size // 2)
    assert_refused(serve(path, tmp_path), f"{path} is damaged: it is cut short")


def test_a_damaged_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = stored(tmp_path / "events.db")
    with open(path, "r+b") as file:  # a page in the middle, as a bad sector would
        file.seek((path.stat().st_size // 4096 // 2) * 4096)
        file.write(b"\xa5" * 4096)
    damaged = path.read_bytes()
    assert_refused(serve(path, tmp_path), f"{path} is damaged: ")
    assert path.read_bytes() == damaged  # nothing written into it


def test_a_read_only_file_system_is_refused(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", 4 * 2**20) as disk:
        path = stored(disk.path / "events.db", 10)
        disk.remount("ro")
        assert_refused(serve(path, tmp_path), f"{path}: the file system is read-only")


def test_a_full_disk_at_start_is_one_line(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", 2**20) as disk:
        disk.fill()
        path = disk.path / "events.db"
        assert_refused(serve(path, tmp_path), f"{path}: the disk is full")


def test_a_database_that_refuses_is_one_line(tmp_path: Path) -> None:
    dsn = os.environ.get("FOOTFALL_TEST_POSTGRES_DSN", "").strip()
    if not dsn:
        pytest.skip("PostgreSQL tests SKIPPED: FOOTFALL_TEST_POSTGRES_DSN is not set")
    url = dsn.rsplit("/", 1)[0] + "/footfall_no_such_database"
    assert_refused(serve(url, tmp_path), "cannot open PostgreSQL at ",
                   "footfall_no_such_database")
