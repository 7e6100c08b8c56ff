"""Every command that takes a store treats a malformed store URL alike: a mistake in the
command line (exit 2, one line naming --store and what it takes), as `serve` always
did, where the read commands, backup and copy said it as a store they could not open
(exit 1). A well-formed URL of a store that does not answer is still the environment
failing (exit 1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .cli import CATALOG, footfall

TENANT = "projects/p/tenants/t"
# A PostgreSQL server's URL, well formed, where nothing listens (port 1).
UNREACHABLE = "postgresql://footfall@127.0.0.1:1/shop?connect_timeout=1"

# Every command that reads or writes a store it is given with --store.
COMMANDS = {
    "serve": ["serve", "--port", "0", "--http-port", "0"],
    "events count": ["events", "count", "--parent", CATALOG],
    "events list": ["events", "list", "--parent", CATALOG],
    "talent-events count": ["talent-events", "count", "--parent", TENANT],
    "talent-events list": ["talent-events", "list", "--parent", TENANT],
    "rejections list": ["rejections", "list"],
    "catalogs": ["catalogs"],
    "products list": ["products", "list", "--parent", CATALOG],
    "operations list": ["operations", "list"],
    "backup": ["backup", "copy.db"],
    "restore": ["restore", "backup.db"],
    "copy": ["copy", "copy.db"],
}
READS = ("sqlite:///PATH or postgresql://USER@HOST/DB")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_malformed_store_url_is_a_usage_error_for_every_command(
        command: str, tmp_path: Path) -> None:
    (tmp_path / "backup.db").write_bytes(b"")  # (restore's BACKUP, never reached)
    takes = "sqlite:///PATH, memory:// or postgresql://USER@HOST/DB" if command == "serve" \
        else READS
    for given in ("--store", "variable"):
        if given == "--store":
            out = footfall(*COMMANDS[command], "--store", "bogus://x", cwd=tmp_path)
            named = "argument --store"
        else:
            out = footfall(*COMMANDS[command], cwd=tmp_path, env={"FOOTFALL_STORE": "bogus://x"})
            named = "FOOTFALL_STORE (the default of --store)"
        assert (out.returncode, out.stderr) == (2, (
            f"footfall {command}: error: {named}: unknown store URL 'bogus://x': use "
            f"{takes}\n")), given
        assert out.stdout == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["backup.db"]  # nothing made


@pytest.mark.parametrize("command", [name for name in COMMANDS
                                     if name not in ("backup", "restore")])
def test_a_well_formed_store_that_does_not_answer_is_still_a_runtime_error(
        command: str, tmp_path: Path) -> None:
    # (backup and restore take SQLite files alone: a PostgreSQL URL is refused, saying
    # what to use instead)
    out = footfall(*COMMANDS[command], "--store", UNREACHABLE, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "127.0.0.1:1" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("command", [name for name in COMMANDS
                                     if name not in ("serve", "restore")])
def test_a_sqlite_store_that_is_not_there_is_a_runtime_error(command: str,
                                                             tmp_path: Path) -> None:
    # (`copy` said it as a mistake in the command, exit 2, where the reads and
    # `backup` say exit 1; `serve` makes the store, `restore` puts one there)
    out = footfall(*COMMANDS[command], "--store", "missing.db", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert f"no store at {tmp_path}/missing.db" in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [name for name in COMMANDS
                                     if name not in ("serve", "restore", "backup")])
def test_a_postgresql_database_that_is_not_there_is_a_runtime_error(
        command: str, tmp_path: Path) -> None:
    # As a SQLite file that is not there (above): `copy` said a source database of no
    # such name as a mistake in the command, exit 2, where the reads say exit 1.
    # (`serve` and copy's DEST make a store's tables, in a database made first: one not
    # made yet is a mistake in what the command names, exit 2, as README says;
    # `backup` and `restore` take SQLite files alone)
    out = footfall(*COMMANDS[command], "--store", missing_database(), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert 'database "footfall_no_such_database" does not exist' in out.stderr, out.stderr
    assert len(out.stderr.splitlines()) == 1 and out.stdout == "", out
    assert list(tmp_path.iterdir()) == []


def missing_database() -> str:
    """A URL of the test PostgreSQL server's, naming a database it does not hold;
    skips the test without FOOTFALL_TEST_POSTGRES_DSN."""
    dsn = os.environ.get("FOOTFALL_TEST_POSTGRES_DSN", "").strip()
    if not dsn:
        pytest.skip("PostgreSQL tests SKIPPED: FOOTFALL_TEST_POSTGRES_DSN is not set")
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    return (f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
            f"{params.get('port', 5432)}/footfall_no_such_database")


def test_copy_refuses_a_malformed_dest_as_a_usage_error(tmp_path: Path) -> None:
    out = footfall("copy", "bogus://y", "--store", "events.db", cwd=tmp_path)
    assert (out.returncode, out.stderr) == (2, (
        f"footfall copy: error: argument DEST: unknown store URL 'bogus://y': use {READS}\n"))


def test_a_malformed_variable_stops_no_command_that_asks_a_server(tmp_path: Path) -> None:
    # (the store is not read: --server names where to ask)
    out = footfall("catalogs", "--server", "127.0.0.1:1", cwd=tmp_path,
                   env={"FOOTFALL_STORE": "bogus://x"})
    assert out.returncode == 1 and "cannot reach a server at 127.0.0.1:1" in out.stderr, \
        out.stderr
