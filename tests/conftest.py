"""PostgreSQL for the tests: databases of this session's own on the server that
FOOTFALL_TEST_POSTGRES_DSN names (.ci/run always sets it), dropped at the end.

Without the variable every PostgreSQL test is skipped, and the run ends with a
line saying so. Imports nothing of ours: the interop suite uses this too.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

DSN_VARIABLE = "FOOTFALL_TEST_POSTGRES_DSN"
SKIPPED = (f"PostgreSQL tests SKIPPED: {DSN_VARIABLE} is not set "
           "(e.g. postgresql://postgres@127.0.0.1:5432/test: a database for tests alone; "
           ".ci/run sets it)")


class PostgresDatabases:
    """Creates uniquely named databases on one server; `drop_all` removes them."""

    def __init__(self, dsn: str) -> None:
        import psycopg  # here: only the PostgreSQL tests need the driver
        from psycopg.conninfo import conninfo_to_dict

        self._psycopg = psycopg
        self._dsn = dsn
        self._params = conninfo_to_dict(dsn)
        self._prefix = f"footfall_test_{os.getpid()}_{secrets.token_hex(3)}"
        self._created: list[str] = []

    def _connect(self, dsn: str) -> Any:
        return self._psycopg.connect(dsn, autocommit=True)

    def create(self, label: str = "db") -> str:
        """A new empty database; returns its URL (postgresql://...)."""
        name = f"{self._prefix}_{label}_{len(self._created)}"
        with self._connect(self._dsn) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        user = quote(str(self._params.get("user", "")), safe="")
        if self._params.get("password"):
            user += ":" + quote(str(self._params["password"]), safe="")
        host = self._params.get("host", "127.0.0.1")
        port = self._params.get("port", "5432")
        return f"postgresql://{user}{'@' if user else ''}{host}:{port}/{name}"

    def empty(self, url: str) -> None:
        """Delete every row (not the schema) of the database at `url`; ids restart."""
        with self._connect(url) as conn:
            tables = [t for (t,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_migrations'")]
            if tables:
                conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")

    def drop_all(self) -> None:
        with self._connect(self._dsn) as conn:
            for name in self._created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """Skips (loudly, see below) when FOOTFALL_TEST_POSTGRES_DSN is unset."""
    dsn = os.environ.get(DSN_VARIABLE, "").strip()
    if not dsn:
        pytest.skip(SKIPPED)
    databases = PostgresDatabases(dsn)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def postgres_url(postgres_databases: PostgresDatabases) -> str:
    """One database for the session's store tests (emptied between tests by them)."""
    return postgres_databases.create("store")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if any(SKIPPED in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_sep("!", "PostgreSQL tests SKIPPED", red=True, bold=True)
        terminalreporter.write_line(SKIPPED, red=True, bold=True)
        terminalreporter.write_sep("!", red=True, bold=True)
