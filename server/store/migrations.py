"""Numbered schema migrations, applied in order at start-up, each exactly once.

A migration is a list of statements; the portable subset of SQL is used so that
every backend runs the same list (PostgreSQL maps the types, see `postgres_dialect`).
"""

from __future__ import annotations

import re

# Types are written in SQLite's spelling; the PostgreSQL store maps BLOB to BYTEA
# and INTEGER PRIMARY KEY to a BIGINT identity.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "user and client events", [
        """CREATE TABLE user_events (
            id INTEGER PRIMARY KEY,
            catalog TEXT NOT NULL,
            event_type TEXT NOT NULL,
            visitor_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            event_time_us BIGINT NOT NULL,
            joined SMALLINT NOT NULL,
            dedup_key BLOB NOT NULL UNIQUE,
            event BLOB NOT NULL
        )""",
        "CREATE INDEX user_events_time ON user_events (catalog, event_time_us)",
        "CREATE INDEX user_events_visitor ON user_events (catalog, visitor_id)",
        "CREATE INDEX user_events_user ON user_events (catalog, user_id)",
        """CREATE TABLE client_events (
            tenant TEXT NOT NULL,
            event_id TEXT NOT NULL,
            create_time_us BIGINT NOT NULL,
            event BLOB NOT NULL,
            PRIMARY KEY (tenant, event_id)
        )""",
    ]),
    (2, "product catalog and long-running operations", [
        """CREATE TABLE products (
            branch TEXT NOT NULL,
            product_id TEXT NOT NULL,
            product BLOB NOT NULL,
            PRIMARY KEY (branch, product_id)
        )""",
        """CREATE TABLE operations (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            done SMALLINT NOT NULL,
            create_time_us BIGINT NOT NULL,
            request BLOB NOT NULL,
            operation BLOB NOT NULL,
            checkpoint BLOB,
            cancel_requested SMALLINT NOT NULL,
            lease_owner TEXT,
            lease_expires_us BIGINT
        )""",
        "CREATE INDEX operations_pending ON operations (done, create_time_us)",
        # The event as received, when the stored one was enriched by a join.
        "ALTER TABLE user_events ADD COLUMN source BLOB",
    ]),
]


# SQLite spelling -> PostgreSQL. An `INTEGER PRIMARY KEY` is SQLite's rowid, which
# grows by itself; text compares byte-wise in SQLite, so PostgreSQL gets the "C"
# collation (the same order for paging by product id or operation name).
_POSTGRES_TYPES = [
    (re.compile(r"\b(\w+) INTEGER PRIMARY KEY\b"),
     r"\1 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
]


def postgres_dialect(statement: str) -> str:
    """`statement` of MIGRATIONS as PostgreSQL spells it."""
    for pattern, replacement in _POSTGRES_TYPES:
        statement = pattern.sub(replacement, statement)
    return statement
