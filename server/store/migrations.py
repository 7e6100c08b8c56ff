"""Numbered schema migrations, applied in order at start-up, each exactly once.

A migration is a list of statements; the portable subset of SQL is used so that
every backend runs the same list (PostgreSQL maps the types, see `postgres_dialect`).
Where the backends must differ (SQLite cannot drop a constraint, only rebuild a
table), a statement is a mapping from dialect to SQL; `statement_for` picks it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from server.store import rollups
from server.store.rows import StoreUnusable
from server.store.sql import Dialect, Executes

log = logging.getLogger(__name__)

# Types are written in SQLite's spelling; the PostgreSQL store maps BLOB to BYTEA
# and INTEGER PRIMARY KEY to a BIGINT identity. A function is a step SQL cannot say
# (it runs on the migration's connection, in its transaction).
Statement = str | dict[str, str] | Callable[[Executes, Dialect], None]


def _rebuilt(table: str, version: int, columns: str, copy: str) -> list[Statement]:
    """SQLite's way to change what its ALTER TABLE cannot (a key, a constraint,
    AUTOINCREMENT): `table` made again as `{table}_v{version}` with `columns` (the
    parenthesized inside of a CREATE TABLE), its rows copied by `copy` (what follows
    INSERT INTO the new table: a SELECT from the old one), the old table dropped
    (its indexes with it) and the new one renamed. PostgreSQL runs none of it.
    """
    new = f"{table}_v{version}"
    return [{"sqlite": f"CREATE TABLE {new} {columns}"},
            {"sqlite": f"INSERT INTO {new} {copy}"},
            {"sqlite": f"DROP TABLE {table}"},
            {"sqlite": f"ALTER TABLE {new} RENAME TO {table}"}]


# There is no 5: it was written as 5 beside 6 and 7 and merged after them as 8 (see
# there); no store ever applied a 5.
MIGRATIONS: list[tuple[int, str, list[Statement]]] = [
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
    (3, "time-ordered dedup index; event times to the nanosecond", [
        # The dedup key is a hash, so a unique index on it alone is random: every
        # insert and every batch of a purge touches pages all over it. Prefixed with
        # the catalog and time it is ordered like the events (appends at the end,
        # purges of a time range touch neighbouring pages) and it also serves as the
        # time index. Same events have the same time, so the dedup rule is unchanged.
        # event_time_ns holds the nanoseconds within event_time_us (0-999), so time
        # filters compare to the nanosecond; events stored before this migration get 0.
        *_rebuilt("user_events", 3, """(
            id INTEGER PRIMARY KEY,
            catalog TEXT NOT NULL,
            event_type TEXT NOT NULL,
            visitor_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            event_time_us BIGINT NOT NULL,
            event_time_ns SMALLINT NOT NULL,
            joined SMALLINT NOT NULL,
            dedup_key BLOB NOT NULL,
            event BLOB NOT NULL,
            source BLOB
        )""", "SELECT id, catalog, event_type, visitor_id, user_id, event_time_us, 0, joined, "
              "dedup_key, event, source FROM user_events ORDER BY id"),
        {"postgresql": "ALTER TABLE user_events ADD COLUMN event_time_ns SMALLINT NOT NULL "
                       "DEFAULT 0"},
        {"postgresql": "ALTER TABLE user_events DROP CONSTRAINT user_events_dedup_key_key"},
        {"postgresql": "DROP INDEX user_events_time"},
        {"sqlite": "CREATE INDEX user_events_visitor ON user_events (catalog, visitor_id)"},
        {"sqlite": "CREATE INDEX user_events_user ON user_events (catalog, user_id)"},
        "CREATE UNIQUE INDEX user_events_dedup ON user_events "
        "(catalog, event_time_us, dedup_key)",
    ]),
    (4, "a generation per product branch", [
        # Bumped by every product write, in its transaction: a delete whose reference
        # check ran on a recent read knows whether anything changed since (and on
        # PostgreSQL the row lock orders the product writes of a branch).
        """CREATE TABLE product_generations (
            branch TEXT PRIMARY KEY,
            generation BIGINT NOT NULL
        )""",
    ]),
    (6, "the console: when and how events came, client events in order, refusals", [
        # When an event was stored and how it came (console.v1 Transport: 0 for events
        # stored before this migration, which have no receive time either).
        "ALTER TABLE user_events ADD COLUMN received_us BIGINT",
        "ALTER TABLE user_events ADD COLUMN transport SMALLINT NOT NULL DEFAULT 0",
        # Client events get an id (insertion order) for listing newest first and
        # watching; SQLite cannot add a key to a table, so it rebuilds it.
        *_rebuilt("client_events", 6, """(
            id INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            event_id TEXT NOT NULL,
            create_time_us BIGINT NOT NULL,
            event BLOB NOT NULL,
            received_us BIGINT,
            transport SMALLINT NOT NULL DEFAULT 0,
            UNIQUE (tenant, event_id)
        )""", "(tenant, event_id, create_time_us, event) SELECT tenant, event_id, "
              "create_time_us, event FROM client_events ORDER BY rowid"),
        {"postgresql": "ALTER TABLE client_events ADD COLUMN id BIGINT GENERATED ALWAYS AS "
                       "IDENTITY"},
        {"postgresql": "ALTER TABLE client_events ADD COLUMN received_us BIGINT"},
        {"postgresql": "ALTER TABLE client_events ADD COLUMN transport SMALLINT NOT NULL "
                       "DEFAULT 0"},
        "CREATE UNIQUE INDEX client_events_order ON client_events (tenant, id)",
        # Every refused write, pixel, client event and import line: the console.v1
        # Rejection as stored, with what listing and retention need beside it.
        # `project` is "" when the request named none.
        """CREATE TABLE rejections (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            parent TEXT NOT NULL,
            time_us BIGINT NOT NULL,
            rejection BLOB NOT NULL
        )""",
        "CREATE INDEX rejections_project ON rejections (project, id)",
        "CREATE INDEX rejections_time ON rejections (time_us)",
    ]),
    (7, "when each inventory field of a product was last set", [
        # SetInventory and the place RPCs never let an older update overwrite a newer
        # one: the times they compare with live beside the product (JSON, see
        # server/retail/inventory.py) and go with it when it is deleted.
        "ALTER TABLE products ADD COLUMN inventory_times BLOB",
    ]),
    (8, "catalog ids, 8-byte dedup keys, visitor and user indexes by id bucket", [
        # Numbered after 6 and 7 (written beside them): it rebuilds the table 6 extended,
        # so it runs after them on every store, a new one or one already at 7.
        # Measured on the bench corpus (bench/ANALYSIS.md): the catalog's name, repeated
        # in the row and in three indexes, was 40% of the bytes, so rows name their
        # catalog by a small id. The dedup key follows the catalog and the time in its
        # index, so 8 bytes of the hash are plenty (the first 8 of the 16 stored so far).
        # The visitor and user indexes lead with the id's bucket (id >> 14, 16,384 ids):
        # a batch of a purge, a run of neighbouring ids, then rewrites a few pages of
        # each, not pages all over them (one page per event), and a lookup by visitor
        # seeks once per bucket (`(id >> 14) = ? AND visitor_id = ?`).
        """CREATE TABLE catalogs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        )""",
        "INSERT INTO catalogs (name) SELECT DISTINCT catalog FROM user_events ORDER BY catalog",
        # AUTOINCREMENT: an id is never given twice, even after the newest events were
        # purged, so a reader that follows ids (a watch) never skips a new event.
        *_rebuilt("user_events", 8, """(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            catalog_id INTEGER NOT NULL,
            event_type TEXT NOT NULL,
            visitor_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            event_time_us BIGINT NOT NULL,
            event_time_ns SMALLINT NOT NULL,
            joined SMALLINT NOT NULL,
            dedup_key BLOB NOT NULL,
            event BLOB NOT NULL,
            source BLOB,
            received_us BIGINT,
            transport SMALLINT NOT NULL DEFAULT 0
        )""", "SELECT e.id, c.id, e.event_type, e.visitor_id, e.user_id, e.event_time_us, "
              "e.event_time_ns, e.joined, substr(e.dedup_key, 1, 8), e.event, e.source, "
              "e.received_us, e.transport FROM user_events e JOIN catalogs c "
              "ON c.name = e.catalog ORDER BY e.id"),
        {"postgresql": "ALTER TABLE user_events ADD COLUMN catalog_id INTEGER"},
        {"postgresql": "UPDATE user_events e SET catalog_id = c.id, "
                       "dedup_key = substr(e.dedup_key, 1, 8) "
                       "FROM catalogs c WHERE c.name = e.catalog"},
        {"postgresql": "ALTER TABLE user_events ALTER COLUMN catalog_id SET NOT NULL"},
        {"postgresql": "DROP INDEX user_events_visitor"},
        {"postgresql": "DROP INDEX user_events_user"},
        # (dropping the column drops user_events_dedup, which leads with it)
        {"postgresql": "ALTER TABLE user_events DROP COLUMN catalog"},
        "CREATE UNIQUE INDEX user_events_dedup ON user_events "
        "(catalog_id, event_time_us, dedup_key)",
        "CREATE INDEX user_events_visitor ON user_events (catalog_id, (id >> 14), visitor_id)",
        "CREATE INDEX user_events_user ON user_events (catalog_id, (id >> 14), user_id)",
    ]),
    (9, "per-product-per-day rollups", [
        # Kept by every write, purge, rejoin and reset in its transaction (rollups.py);
        # the per-product table reads them for whole days. The key leads with the
        # catalog and day: a table over a time range is one range of it.
        # (WITHOUT ROWID: the key is the table; PostgreSQL has no such clause, so its
        # spelling drops it)
        """CREATE TABLE product_days (
            catalog_id INTEGER NOT NULL,
            day INTEGER NOT NULL,
            product_id TEXT NOT NULL,
            currency TEXT NOT NULL,
            views BIGINT NOT NULL,
            add_to_carts BIGINT NOT NULL,
            purchases BIGINT NOT NULL,
            units BIGINT NOT NULL,
            unpriced_units BIGINT NOT NULL,
            revenue DOUBLE PRECISION NOT NULL,
            lines BIGINT NOT NULL,
            PRIMARY KEY (catalog_id, day, product_id, currency)
        ) WITHOUT ROWID""",
        # The open gaps of time-only purges (rollups.Gap): events they hold count nowhere.
        """CREATE TABLE rollup_gaps (
            operation TEXT PRIMARY KEY,
            catalog_id INTEGER NOT NULL,
            first_us BIGINT NOT NULL,
            end_us BIGINT NOT NULL,
            after_id BIGINT NOT NULL,
            until_id BIGINT NOT NULL
        )""",
        # The events already stored, counted once (decoded: SQL cannot read them).
        rollups.fill,
    ]),
    (10, "client events and refusals never give an id twice", [
        # As user_events in 8: SQLite gives the ids of deleted newest rows out again
        # unless AUTOINCREMENT, so after a reset of the tenant (or catalog) that held
        # them, new rows got ids a watch had passed and never sent. PostgreSQL's
        # identities never repeat. SQLite rebuilds the two tables (same columns, same
        # ids) to add it.
        *_rebuilt("client_events", 10, """(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            event_id TEXT NOT NULL,
            create_time_us BIGINT NOT NULL,
            event BLOB NOT NULL,
            received_us BIGINT,
            transport SMALLINT NOT NULL DEFAULT 0,
            UNIQUE (tenant, event_id)
        )""", "SELECT id, tenant, event_id, create_time_us, event, received_us, transport "
              "FROM client_events ORDER BY id"),
        {"sqlite": "CREATE UNIQUE INDEX client_events_order ON client_events (tenant, id)"},
        *_rebuilt("rejections", 10, """(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            project TEXT NOT NULL,
            parent TEXT NOT NULL,
            time_us BIGINT NOT NULL,
            rejection BLOB NOT NULL
        )""", "SELECT id, project, parent, time_us, rejection FROM rejections ORDER BY id"),
        {"sqlite": "CREATE INDEX rejections_project ON rejections (project, id)"},
        {"sqlite": "CREATE INDEX rejections_time ON rejections (time_us)"},
    ]),
    # Nothing to change in the tables: from here on a stored event may leave out its
    # user id (packed.PACKED_USER), which a Footfall that lacks this migration cannot
    # decode. Recorded, it makes a later Footfall refuse such a store at start-up
    # (`apply_missing`) rather than fail on its reads.
    (11, "stored events may leave out the user id, which its column holds", []),
    # Values a store keeps for every server on it. Written when first needed (the key
    # that signs page tokens: SqlStore.page_token_key), not here: a store just made
    # holds no row, so `footfall copy` still takes it as an empty target. (Not IF NOT
    # EXISTS: another application's `settings` beside a store on PostgreSQL must stop
    # the start, as a table of any other name here does, not be taken for this one.)
    (12, "the store's settings (the key that signs page tokens)", [
        """CREATE TABLE settings (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL
        )""",
    ]),
    (13, "a tenant's client events by create time", [
        # The console and `talent-events list` give a tenant's client events latest
        # create time first (they gave them in the order stored, which is not that of
        # events sent late, retried, or by several clients): keyset pages of this
        # index, read backwards. (SQLite's id is the rowid, which its indexes hold
        # anyway; PostgreSQL's is a column like any other.) IF NOT EXISTS: a store
        # whose record of it was lost applies it again.
        "CREATE INDEX IF NOT EXISTS client_events_time ON client_events "
        "(tenant, create_time_us, id)",
    ]),
    (14, "how many tries of an operation never let it go", [
        # A job that ends its process at every try (out of memory, a crash in native
        # code) was claimed again at every start, for ever: the runner's count of
        # failed tries lived in the process it killed. Counted here at each claim
        # that takes the operation over from such a try (OperationRecord.lost_tries).
        lambda db, dialect: _add_column(db, dialect, "operations",
                                        "lost_tries SMALLINT NOT NULL DEFAULT 0"),
    ]),
    (15, "a catalog's events in the order stored", [
        # A watch reads what its catalog stored after a position, in id order
        # (user_events_after). PostgreSQL had only the key (id) for that order, so it
        # walked every catalog's rows and dropped the others': at 1M events a watch of
        # a catalog of 5,000 beside one of 1M caught up in 1.3 s, each read of 1,000
        # filtering 200,000 rows. Here it is one range of this index. (SQLite's
        # indexes hold the rowid, but its watch walks the rowid: see user_events_after;
        # its schema is left as it is.) IF NOT EXISTS: a store whose record of it was
        # lost applies it again.
        {"postgresql": "CREATE INDEX IF NOT EXISTS user_events_order ON user_events "
                       "(catalog_id, id)"},
    ]),
    (16, "when each catalog or project was last reset", [
        # Read by every writer's transaction that inserts rows answered before their
        # commit (pixels, write_async), to leave out those a reset served by another
        # process or replica came after (see reset_marks). IF NOT EXISTS: a store
        # whose record of it was lost applies it again.
        """CREATE TABLE IF NOT EXISTS reset_marks (
            scope TEXT PRIMARY KEY,
            at_us BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS reset_marks_time ON reset_marks (at_us)",
        # PostgreSQL reads them inside the statement that inserts the rows, after it
        # took the writers' turn: a VOLATILE function's query takes a snapshot of its
        # own (READ COMMITTED), which sees a reset committed while the statement
        # waited for the turn; the statement's own snapshot was taken before it.
        # PL/pgSQL keeps its query's plan from call to call: a function in SQL was
        # planned at every call (66 against 17 us of the database's CPU a batch).
        # And a count of the resets, read by a batch as it is now whatever its
        # snapshot (a sequence is not transactional): unchanged since the batch
        # before, the function need not be called (see PostgresStore._send_events).
        {"postgresql": "CREATE SEQUENCE IF NOT EXISTS footfall_resets"},
        {"postgresql": "CREATE OR REPLACE FUNCTION footfall_reset_marks(since BIGINT, "
                       "after_turn BOOLEAN) RETURNS TABLE (mark_scope TEXT, mark_at_us "
                       "BIGINT) LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN QUERY SELECT "
                       "r.scope, r.at_us FROM reset_marks r WHERE r.at_us > since; END $$"},
    ]),
    (17, "a batch's products checked once the writers' turn is held", [
        # Whether the products of the branches a batch's rows were joined with are
        # unchanged (`relied`: JSON records of branch and generation), read inside the
        # statement that inserts the rows, after it took the writers' turn: as
        # footfall_reset_marks, a VOLATILE function's query takes a snapshot of its own,
        # which sees a product written by another replica while the statement waited
        # for the turn. Read in the statement, the change was not seen, and the batch
        # was stored joined with the product as it was before.
        {"postgresql": "CREATE OR REPLACE FUNCTION footfall_products_unchanged(relied JSON, "
                       "after_turn BOOLEAN) RETURNS BOOLEAN LANGUAGE plpgsql VOLATILE AS $$ "
                       "DECLARE ok BOOLEAN; BEGIN SELECT bool_and(e.generation IS NOT "
                       "DISTINCT FROM (SELECT g.generation FROM product_generations g WHERE "
                       "g.branch = e.branch)) INTO ok FROM json_to_recordset(relied) AS "
                       "e(branch TEXT, generation BIGINT); RETURN ok; END $$"},
    ]),
    (18, "one branch's products checked without JSON", [
        # footfall_products_unchanged for the products of one branch (those of every
        # batch whose rows are of one catalog: every batch at one caller), its branch and
        # generation given as they are: no JSON read into records, each looked up, the
        # answers aggregated, which cost the database ~30 us more of its CPU a write.
        {"postgresql": "CREATE OR REPLACE FUNCTION footfall_branch_unchanged(relied_branch "
                       "TEXT, relied_generation BIGINT, after_turn BOOLEAN) RETURNS BOOLEAN "
                       "LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN relied_generation IS NOT "
                       "DISTINCT FROM (SELECT g.generation FROM product_generations g WHERE "
                       "g.branch = relied_branch); END $$"},
    ]),
]


def _add_column(db: Executes, dialect: Dialect, table: str, column: str) -> None:
    """ALTER TABLE `table` ADD COLUMN `column` (its name, then its type) unless it is
    there: a store whose record of the migration was lost applies it again, and
    SQLite's ADD COLUMN has no IF NOT EXISTS."""
    name = column.split()[0]
    if dialect.name == "postgresql":
        db.execute(postgres_dialect(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column}"))
    elif db.execute("SELECT 1 FROM pragma_table_info(?) WHERE name = ?",
                    (table, name)).fetchone() is None:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}  # as a log line names them


def apply_missing(db: Executes, dialect: Dialect, where: str) -> None:
    """Apply, in order, the migrations `db` (the store at `where`) lacks, creating
    the table that records them, in the caller's transaction: it holds the lock that
    makes two processes starting at once apply each exactly once. StoreUnusable
    when a newer Footfall migrated it: this one could misread what that one wrote."""
    # Made only when missing: on PostgreSQL even CREATE TABLE IF NOT EXISTS needs CREATE
    # on the schema, which a role that only reads and writes the tables (PostgreSQL 15
    # gives no other role CREATE on `public`) lacks, and every start failed so.
    exists = "SELECT to_regclass('schema_migrations')" if dialect.name == "postgresql" \
        else "SELECT name FROM sqlite_master WHERE name = 'schema_migrations'"
    if db.execute(exists).fetchone() in (None, (None,)):
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                   "version INTEGER PRIMARY KEY, description TEXT NOT NULL)")
    done = {v for (v,) in db.execute("SELECT version FROM schema_migrations").fetchall()}
    newer = _unknown(done, where)
    if newer:
        raise StoreUnusable(newer)
    # A new store (memory:// at every start, a test suite's fresh file) gets one line,
    # not one per migration: ten lines of "applied migration" read like an upgrade.
    say = log.debug if not done else log.info
    for version, description, statements in MIGRATIONS:
        if version in done:
            continue
        changed = False
        for statement in statements:
            if callable(statement):
                statement(db, dialect)
                changed = True
                continue
            sql = statement_for(statement, dialect.name)
            if sql is not None:
                db.execute(sql)
                changed = True
        db.execute(dialect.spell("INSERT INTO schema_migrations VALUES (?, ?)"),
                   (version, description))
        # (A migration of the other engine alone, 15 on SQLite, is recorded all the same:
        # its line said "applied migration 15: PostgreSQL: ..." on a SQLite store.)
        say("applied migration %d: %s%s", version, description,
            "" if changed else f" (nothing to change on {ENGINE_NAMES[dialect.name]})")
    if not done:
        log.info("created the store's tables (schema version %d)", MIGRATIONS[-1][0])


def check_readable(applied: set[int] | None, where: str, *, any_version: bool = False,
                   backup: str = "`footfall backup`") -> None:
    """For read-only use (the CLI): ValueError unless `where`, whose applied
    migrations are `applied` (None: it has no migrations table), is a Footfall
    store this version can read as it is; `any_version`: a Footfall store of any
    version (a backup copies its pages and reads none of its rows). `backup` names
    what backs the store up before an upgrade (`footfall backup` refuses PostgreSQL)."""
    if applied is None:
        raise ValueError(f"{where} is not a Footfall store (it has no schema_migrations table)")
    if any_version:
        return
    newer = _unknown(applied, where)
    if newer:
        raise ValueError(newer)
    missing = sorted({version for version, _, _ in MIGRATIONS} - applied)
    if missing:
        raise ValueError(f"{where} has an older schema (it lacks migration {missing[0]}); "
                         f"start `footfall serve` on it once to upgrade it ({backup} "
                         "copies it first: an upgrade cannot be undone)")


def _unknown(applied: set[int], where: str) -> str:
    """What is wrong when `applied` holds migrations this version does not know;
    empty when it holds none."""
    unknown = sorted(applied - {version for version, _, _ in MIGRATIONS})
    if not unknown:
        return ""
    return (f"{where} was migrated by a newer Footfall (it has migration {unknown[-1]}, "
            "which this version does not know, and may hold rows this version would "
            "misread): run that version or a later one on it")


# SQLite spelling -> PostgreSQL. An `INTEGER PRIMARY KEY` is SQLite's rowid, which
# grows by itself; text compares byte-wise in SQLite, so PostgreSQL gets the "C"
# collation (the same order for paging by product id or operation name).
_POSTGRES_TYPES = [
    (re.compile(r"\b(\w+) INTEGER PRIMARY KEY\b"),
     r"\1 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
    (re.compile(r"\)\s*WITHOUT ROWID\s*\Z"), ")"),
]


def statement_for(statement: str | dict[str, str], dialect: str) -> str | None:
    """The SQL `dialect` ("sqlite" or "postgresql") runs for `statement`, or None
    when that backend has nothing to do for it."""
    if isinstance(statement, str):
        return postgres_dialect(statement) if dialect == "postgresql" else statement
    return statement.get(dialect)


def postgres_dialect(statement: str) -> str:
    """`statement` of MIGRATIONS as PostgreSQL spells it."""
    for pattern, replacement in _POSTGRES_TYPES:
        statement = pattern.sub(replacement, statement)
    return statement
