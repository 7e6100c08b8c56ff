"""A store as an older Footfall left it, for the tests of upgrades and of what reads
such a store (backup, copy)."""

from __future__ import annotations

from typing import Any

from server.store.migrations import MIGRATIONS, statement_for


def make_old_schema(conn: Any, dialect: str, migrations: int) -> None:
    """The tables of the first `migrations` migrations, made on `conn` (a sqlite3 or
    psycopg connection in autocommit) as those versions made them, each recorded in
    schema_migrations as applied (the steps SQL cannot say, which fill tables, have
    nothing to fill)."""
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL)")
    for version, description, statements in MIGRATIONS[:migrations]:
        for statement in statements:
            sql = None if callable(statement) else statement_for(statement, dialect)
            if sql is not None:
                conn.execute(sql)
        mark = "?" if dialect == "sqlite" else "%s"  # (sqlite3's and psycopg's)
        conn.execute(f"INSERT INTO schema_migrations VALUES ({mark}, {mark})",
                     (version, description))
