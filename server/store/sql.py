"""The SQL both stores run (SQLite and PostgreSQL), written once.

The two engines accept the same statements for everything here (`INSERT ... ON
CONFLICT ... DO NOTHING / DO UPDATE`, `RETURNING`, row values, recursive CTEs);
what they spell differently is said once, in a `Dialect`, and each statement is
spelled for a dialect once, at import (`Statements`). `SqlStore` holds the Store
methods written once over a DB-API connection or cursor; a backend keeps only
what truly differs: its connections, the batch apply, inserting and updating
event rows in bulk (multi-row INSERT, COPY, unnest) and claiming operations.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from server.store.console import ConsoleSql
from server.store.group_commit import GroupCommitter, Job, Join, row_size
from server.store.insights import InsightsSql
from server.store.packed import UNPACK_COLUMNS, unpack
from server.store.rollups import (
    PRODUCT_TYPES,
    Gap,
    Tally,
    counts_of_payload,
    held_by,
    stored_columns,
)
from server.store.rows import (
    OPERATION_COLUMNS,
    ClientEventRow,
    CreatedClientEvent,
    EventQuery,
    EventRow,
    LeaseLost,
    OperationRecord,
    ProductCheck,
    ProductsChanged,
    ProductsRead,
    Progress,
    Step,
    StepResult,
    StoreUnavailable,
    catalog_term,
)

PRODUCT_SCAN_BATCH = 500  # products a check reads at once when it looks for references
# Events answered before their commit (pixels, write_async) and not committed yet, at
# most: more are refused UNAVAILABLE until the writer catches up, so that a writer held
# up (a lock, a slow disk) cannot gather without end what a kill -9 would lose.
MAX_UNCOMMITTED = 20_000
# ... and at most this many bytes of them (past it, refused the same way unless none
# wait): 20,000 events of 1.8 MB each held 36 GB; 400 of them, behind a lock, 0.7 GB.
MAX_UNCOMMITTED_BYTES = 256 * 1024 * 1024
# Events a purge's step deletes with one statement. A step of more (purge.BATCH) goes
# on with its next chunk only while no write waits for it (for the writer, or for the
# writers' turn from another process: a replica on PostgreSQL, a process on the same
# SQLite file), so that a write queued behind a step waits for one chunk and the
# step's commit, not a whole step; alone, the step deletes its whole batch with one
# commit.
DELETE_CHUNK = 500
# The longest list Dialect.among pads to a power of two (a longer one, padded, could
# pass SQLite's limit of 32,766 parameters a statement)
MOST_PADDED = 8_192
# The settings row of the key that signs page tokens (server/page_tokens.py), and its size.
PAGE_TOKEN_KEY = "page_token_key"
PAGE_TOKEN_KEY_BYTES = 32


class Result(Protocol):
    """What a statement leaves to read: a sqlite3 or psycopg cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Executes(Protocol):
    """A sqlite3 connection or a psycopg connection or cursor."""

    def execute(self, query: str, params: Any = ..., /) -> Result: ...


class Cursor(Executes, Protocol):
    """What a write runs on: the SQLite writer's connection, the PostgreSQL writer's
    cursor, inside the group-commit transaction."""

    def executemany(self, query: str, params: Iterable[Any], /) -> object: ...


Fetch = Callable[[str, Sequence[Any]], list[Any]]
Db = TypeVar("Db", bound=Cursor)  # the backend's own Cursor
T = TypeVar("T")


@dataclass(frozen=True)
class Dialect:
    """What SQLite and PostgreSQL spell differently in the shared statements.

    Statements are written with `?` for a parameter (and so never hold a `?` or,
    for psycopg, a `%` of their own).
    """

    name: str  # as migrations.statement_for knows it: "sqlite" or "postgresql"
    mark: str  # the driver's parameter placeholder
    lock: str  # after a SELECT in a write: keep its rows locked until the commit
    # after `user_events` in a purge's batch and a watch's read of what came since:
    # how its rows are walked (SQLite: the rowid, not an index)
    walk: str
    # condition: the bytes of the column `{column}` contain the parameter's (`?` spelling)
    contains: str
    arrays: bool  # a list of values is one array parameter, not one parameter each

    def spell(self, sql: str) -> str:
        """`sql`, written with `?`, as this driver takes it. ValueError for a `%` when
        the driver marks parameters with %s (it would read it as one)."""
        if self.mark == "?":
            return sql
        if "%" in sql:
            raise ValueError(f"a literal % in a statement for the {self.name} driver: {sql!r}")
        return sql.replace("?", self.mark)

    def among(self, column: str, values: list[Any]) -> tuple[str, list[Any]]:
        """Condition and parameters: `column` is one of `values` (not empty). One
        parameter a value, as many as the next power of two (the last value again):
        each count of marks is a statement text of its own, which sqlite3 keeps
        parsed, with its program, in each connection's cache (512 texts:
        sqlite._STATEMENTS_CACHED). A rejoin reads each batch of 1 to 1,000 events by
        their ids: 512 such reads of counts of their own held 31 MiB of SQLite's
        memory in the writer's cache, for good (0.4 MiB padded)."""
        if self.arrays:  # one statement text whatever the count: the server plans it once
            return f"{column} = ANY({self.mark})", [values]
        marks = 1 << (len(values) - 1).bit_length() if values else 0
        if marks > MOST_PADDED:
            marks = len(values)
        padded = [*values, *[values[-1]] * (marks - len(values))] if values else values
        return f"{column} IN ({', '.join([self.mark] * marks)})", padded


# The catalogs that hold an event older than the parameter (event_time_us): one
# seek in the (catalog_id, event_time_us, ...) index per catalog.
CATALOGS_WITH_EVENTS_BEFORE = """
    SELECT name FROM catalogs c WHERE EXISTS (
        SELECT 1 FROM user_events e WHERE e.catalog_id = c.id AND e.event_time_us < ?)
    ORDER BY name"""


# The bytes of the rows before each of the rows picked, in their order: a page bounded
# by its bytes ends where this passes the bound. Only lengths are read for it, from the
# rows' headers (SQLite's length() of a blob and PostgreSQL's of a bytea read no
# content, TOASTed or not), before the rows kept are read whole.
BYTES_AHEAD = "SUM(n) OVER (ORDER BY {order}) - n AS ahead"


class Statements:
    """The fixed statements of SqlStore, spelled for `dialect` (once: at import)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        spell = dialect.spell
        self.insert_client_event = spell(
            "INSERT INTO client_events (tenant, event_id, create_time_us, event, received_us, "
            "transport) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, event_id) DO NOTHING")
        self.client_event = spell(
            "SELECT event FROM client_events WHERE tenant = ? AND event_id = ?")
        self.catalogs_with_events_before = spell(CATALOGS_WITH_EVENTS_BEFORE)
        # NOT EXISTS first: on PostgreSQL a conflict would still use up an id.
        self.add_catalog = spell(
            "INSERT INTO catalogs (name) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM catalogs "
            "WHERE name = ?) ON CONFLICT (name) DO NOTHING")
        self.catalog_id = spell("SELECT id FROM catalogs WHERE name = ?")
        self.list_products = spell("SELECT product_id, product FROM products WHERE branch = ? "
                                   "AND product_id > ? ORDER BY product_id LIMIT ?")
        # The same, ending with the product that passes a number of bytes: lengths
        # are read first, not the products (see BYTES_AHEAD).
        self.list_products_within = spell(
            "SELECT p.product_id, p.product FROM products p JOIN ("
            f"SELECT product_id, {BYTES_AHEAD.format(order='product_id')} FROM ("
            "SELECT product_id, length(product) AS n FROM products WHERE branch = ? "
            "AND product_id > ? ORDER BY product_id LIMIT ?) AS picked) AS r "
            "ON p.branch = ? AND p.product_id = r.product_id WHERE r.ahead < ? "
            "ORDER BY p.product_id")
        self.products_containing = spell(
            "SELECT product_id, product FROM products WHERE branch = ? AND product_id > ? "
            f"AND {dialect.contains.format(column='product')} ORDER BY product_id LIMIT ?")
        self.product_for_write = spell("SELECT product FROM products WHERE branch = ? AND "
                                       f"product_id = ?{dialect.lock}")
        self.insert_product = spell("INSERT INTO products (branch, product_id, product, "
                                    "inventory_times) VALUES (?, ?, ?, ?) "
                                    "ON CONFLICT (branch, product_id) DO NOTHING")
        self.put_product = spell("INSERT INTO products (branch, product_id, product) "
                                 "VALUES (?, ?, ?) ON CONFLICT (branch, product_id) "
                                 "DO UPDATE SET product = excluded.product")
        self.delete_product = spell("DELETE FROM products WHERE branch = ? AND product_id = ?")
        self.put_product_and_times = spell(
            "INSERT INTO products (branch, product_id, product, inventory_times) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (branch, product_id) DO UPDATE SET "
            "product = excluded.product, inventory_times = excluded.inventory_times")
        self.inventory_for_write = spell("SELECT product, inventory_times FROM products WHERE "
                                         f"branch = ? AND product_id = ?{dialect.lock}")
        self.put_inventory = spell("UPDATE products SET product = ?, inventory_times = ? "
                                   "WHERE branch = ? AND product_id = ?")
        self.generation = spell("SELECT generation FROM product_generations WHERE branch = ?")
        self.bump_generation = spell(
            "INSERT INTO product_generations (branch, generation) VALUES (?, 1) ON CONFLICT "
            "(branch) DO UPDATE SET generation = product_generations.generation + 1 "
            "RETURNING generation")
        self.insert_operation = spell(
            f"INSERT INTO operations ({OPERATION_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING")
        self.operation = spell(f"SELECT {OPERATION_COLUMNS} FROM operations WHERE name = ?")
        self.delete_operation = spell("DELETE FROM operations WHERE name = ?")
        # An ended operation's lease_expires_us is the lease its last step took (every
        # ending is a step: JobContext.finish, OperationRunner._end_with), so when it
        # ended plus --lease-seconds; it has none only if it was stored done: then its
        # creation time.
        self.forget_operations = spell(
            "DELETE FROM operations WHERE done = 1 AND "
            "COALESCE(lease_expires_us, create_time_us) < ?")
        self.request_cancel = spell(
            "UPDATE operations SET cancel_requested = 1 WHERE name = ? AND done = 0")
        self.lease = spell("SELECT lease_owner, cancel_requested FROM operations "
                           f"WHERE name = ?{dialect.lock}")
        self.record_progress = spell("UPDATE operations SET checkpoint = ?, operation = ?, "
                                     "done = ?, lease_expires_us = ? WHERE name = ?")
        # An ended operation's request is let go: nothing reads it again, and an inline
        # import's was kept for --operations-keep-days (100 imports of 9 MB: 0.4 GB).
        self.let_go_request = spell("UPDATE operations SET request = ? WHERE name = ?")
        # `lost_tries + ?`: 1 when the claim takes the operation over from a holder
        # that never let it go (Store.claim_operation), else 0.
        self.take_lease = spell(
            "UPDATE operations SET lease_owner = ?, lease_expires_us = ?, "
            "lost_tries = lost_tries + ? WHERE name = ?")
        self.release = spell("UPDATE operations SET lease_owner = NULL, lease_expires_us = NULL "
                             "WHERE name = ? AND lease_owner = ?")
        self.setting = spell("SELECT value FROM settings WHERE name = ?")
        self.add_setting = spell("INSERT INTO settings (name, value) VALUES (?, ?) "
                                 "ON CONFLICT (name) DO NOTHING")


class SqlStore(ConsoleSql, InsightsSql, ABC, Generic[Db]):
    """The Store methods SQLite and PostgreSQL share, over `_sql` (their dialect's
    statements), `_fetch` (a read) and `_write` (a function run in the writer's
    next group-commit transaction on a `Cursor`)."""

    _sql: ClassVar[Statements]
    _committer: GroupCommitter
    _read_only: bool
    _page_token_key: bytes | None = None
    outages = 0  # (see Store.outages; SQLite's file is never away)

    # -- what a backend provides ----------------------------------------------

    @abstractmethod
    def _fetch(self, query: str, params: Sequence[Any]) -> list[Any]:
        """The rows of a read, off the writer."""

    @abstractmethod
    def _stream(self, query: str, params: Sequence[Any], size: int) -> Iterator[Any]:
        """The rows of a read, off the writer, fetched `size` at once: what holds a
        few of a read's rows at a time, never a list of them all (close the iterator,
        or read it to its end, to give its connection back)."""

    @abstractmethod
    def _insert_events(self, db: Db, rows: Sequence[EventRow]) -> int:
        """Insert `rows` in order inside a write, skipping duplicates; how many were new.
        Rows name their catalog by id: `_add_catalogs` first."""

    @abstractmethod
    def _update_events(self, db: Db,
                       updates: Sequence[tuple[int, bool, bytes, bytes | None]]) -> None:
        """Apply Step.update_events inside a write (the last update of an id wins)."""

    @abstractmethod
    def _refuse_unwaited(self, through_outage: bool = False) -> None:
        """Raise why rows nobody waits for cannot be accepted now (the disk is full,
        the database away unless `through_outage`), if they cannot."""

    def _accept_unwaited(self, count: int, size: int, through_outage: bool = False) -> None:
        """Raise why `count` more rows nobody waits for, of `size` bytes of events,
        cannot be accepted now: the backend's reasons, or MAX_UNCOMMITTED rows (or
        MAX_UNCOMMITTED_BYTES) answered and not committed already (the writer blocked
        or far behind: a kill -9 would lose them all, and they are held in memory)."""
        committer = self._committer
        if committer.acknowledged_uncommitted + count > MAX_UNCOMMITTED:
            raise StoreUnavailable(
                f"more than {MAX_UNCOMMITTED:,} events wait for their commit (the event "
                "store is blocked or slow); try again later")
        held = committer.acknowledged_uncommitted_bytes
        if held and held + size > MAX_UNCOMMITTED_BYTES:
            raise StoreUnavailable(
                f"more than {MAX_UNCOMMITTED_BYTES // 2**20:,} MiB of events wait for their "
                "commit (the event store is blocked or slow); try again later")
        self._refuse_unwaited(through_outage)

    def write_user_events(self, rows: Sequence[EventRow], *, wait: bool = True,
                          through_outage: bool = False) -> None:
        if not wait:
            self._accept_unwaited(len(rows), sum(map(row_size, rows)), through_outage)
        future = self._committer.submit_rows(rows, waited=wait)
        if wait:
            future.result()

    async def write_user_events_async(self, rows: Sequence[EventRow], *,
                                      wait: bool = True) -> None:
        """See Store.write_user_events_async."""
        if wait:
            await self._committer.submit_awaited(rows)
        else:
            self._accept_unwaited(len(rows), sum(map(row_size, rows)))
            self._committer.submit_rows(rows, waited=False)

    async def write_joined_async(self, join: Join, *, wait: bool = True) -> None:
        """See Store.write_joined_async."""
        if wait:
            await self._committer.submit_awaited(join=join)
        else:
            self.queue_joined(join)

    def queue_joined(self, join: Join, *, through_outage: bool = False) -> None:
        """See Store.queue_joined."""
        self._accept_unwaited(1, join.size, through_outage)
        self._committer.submit(join)

    @property
    def acknowledged_uncommitted(self) -> int:
        """See Store.acknowledged_uncommitted."""
        return self._committer.acknowledged_uncommitted

    def _count_inserted(self, db: Db, rows: Sequence[EventRow],
                        inserted: Iterable[tuple[int, bytes]], ids: Mapping[str, int]) -> None:
        """Add to the rollups the rows of `rows` their insert reported as new, by
        (event_time_us, dedup_key): a duplicate dedup skipped counts nothing. `ids`:
        the id of each catalog the rows name."""
        inserted = list(inserted)
        if len(inserted) == len(rows):  # all new (most writes): no matching needed
            new: Iterable[EventRow] = (row for row in rows if row.event_type in PRODUCT_TYPES)
        else:
            counted = {(row.event_time_us, row.key): row for row in reversed(rows)
                       if row.event_type in PRODUCT_TYPES}  # (reversed: the first of equals)
            new = (row for row in (counted.pop((time_us, bytes(key)), None)
                                   for time_us, key in inserted) if row is not None)
        tally = Tally()
        for row in new:
            counts = row.counts if row.counts is not None else counts_of_payload(row.payload)
            if counts is not None:
                tally.add(ids[row.catalog], row.event_time_us, counts)
        tally.apply(db, self._sql.dialect)

    def _rewrite_events(self, db: Db,
                        updates: Sequence[tuple[int, bool, bytes, bytes | None]]) -> None:
        """Apply Step.update_events, and in the rollups replace the events' lines by
        those of their new payloads (a join may change a product's price)."""
        latest = {i: payload for i, _, payload, _ in updates}
        dialect = self._sql.dialect
        columns, params = stored_columns(dialect, Gap.read(db))
        among, ids = dialect.among("id", list(latest))
        old = db.execute(f"SELECT {columns} FROM user_events WHERE {among}",
                         [*params, *ids]).fetchall()
        self._update_events(db, updates)
        tally = Tally()
        for stored in old:
            row_id, catalog_id, _, time_us, event = stored  # stored_columns
            if event is None:
                continue  # a type that counts nowhere (the update keeps it), or in a gap
            tally.add_stored([stored], -1)
            counts = counts_of_payload(latest[row_id])
            if counts is not None:
                tally.add(int(catalog_id), int(time_us), counts)
        tally.apply(db, dialect)

    def product_days(self, catalog: str, first_day: int | None,
                     end_day: int | None) -> list[tuple[str, str, int, int, int, int, int, float]]:
        """See Store.product_days."""
        mark = self._sql.dialect.mark
        # On PostgreSQL the catalog named by its id (see _planned_catalog_id): beside a
        # big catalog's, a small one's rows were planned as half the table, read whole
        # (1M rows beside its 2,000: 44 ms against 0.7).
        terms, params = catalog_term(catalog, mark, self._planned_catalog_id(catalog))
        for bound, op in ((first_day, ">="), (end_day, "<")):
            if bound is not None:
                terms += f" AND day {op} {mark}"
                params.append(bound)
        summed = self._fetch(
            "SELECT product_id, currency, SUM(views), SUM(add_to_carts), SUM(purchases), "
            "SUM(units), SUM(unpriced_units), SUM(revenue) FROM product_days "
            f"WHERE {terms} GROUP BY product_id, currency", params)
        if self._sql.dialect.name == "sqlite":
            # (SQLite's sums of integers are ints already, of floats floats: a copy of
            # each of 600,000 rows, converted, was a third of the table's CPU)
            return summed
        return [(pid, currency, int(v), int(c), int(p), int(u), int(n), float(r))
                for pid, currency, v, c, p, u, n, r in summed]

    def _add_catalogs(self, db: Db, rows: Sequence[EventRow],
                      known: Collection[str] = ()) -> None:
        """Give the catalogs of `rows` an id (rows name theirs by id), inside a write;
        but the `known` ones, seen to have one."""
        for catalog in sorted({row.catalog for row in rows}.difference(known)):
            db.execute(self._sql.add_catalog, (catalog, catalog))

    def _write(self, fn: Callable[[Db], T], first: bool = False, alone: bool = False,
               again: bool = True) -> T:
        """Run `fn` in the writer's next transaction (`first`: before the rest of
        it, see group_commit.apply_in_order; `alone`: in a transaction of its own,
        see group_commit); its result once committed. `again`: `fn` does nothing but
        its statements, so it may run once more if its transaction is rolled back
        (see group_commit.Job): the caller then waits out an outage as an event's
        writer does, rather than hearing UNAVAILABLE at once."""
        result: T = self._committer.submit_fn(fn, first=first, alone=alone,
                                              again=again).result()
        return result

    # -- group commit -------------------------------------------------------------

    @property
    def commits(self) -> int:
        """Write transactions committed so far (one per group-commit batch)."""
        return self._committer.batches

    def on_commit(self, listener: Callable[[list[Job]], None] | None) -> None:
        """See Store.on_commit."""
        self._committer.on_commit = listener

    def flush(self) -> None:
        self._committer.flush()

    async def flush_async(self) -> None:
        """See Store.flush_async."""
        await self._committer.flush_awaited()

    # -- events ---------------------------------------------------------------------

    def create_client_event(self, row: ClientEventRow) -> CreatedClientEvent:
        def insert_unless_present(db: Db) -> CreatedClientEvent:
            inserted = db.execute(self._sql.insert_client_event, (
                row.tenant, row.event_id, row.create_time_us, row.payload, row.received_us,
                row.transport)).rowcount
            if inserted == 1:
                return CreatedClientEvent(row.payload, True)
            found = db.execute(self._sql.client_event, (row.tenant, row.event_id)).fetchone()
            return CreatedClientEvent(bytes(found[0]), False)

        return self._write(insert_unless_present)

    def count_user_events(self, query: EventQuery) -> int:
        where, params = self._planned_where(query)
        [(count,)] = self._fetch(f"SELECT COUNT(*) FROM user_events WHERE {where}", params)
        return int(count)

    def list_user_events(self, query: EventQuery, limit: int,
                         after_id: int = 0) -> list[tuple[int, bytes]]:
        return [(i, e) for i, e, _ in self.scan_user_events(query, limit, after_id)]

    def scan_user_events(self, query: EventQuery, limit: int, after_id: int = 0,
                         max_bytes: int | None = None) -> list[tuple[int, bytes, bytes | None]]:
        mark = self._sql.dialect.mark
        where, params = self._planned_where(query)
        if max_bytes is None:
            rows = self._fetch(f"SELECT id, {UNPACK_COLUMNS}, source FROM user_events "
                               f"WHERE {where} AND id > {mark} ORDER BY id LIMIT {mark}",
                               [*params, after_id, limit])
        else:
            columns = ", ".join(f"u.{column.strip()}" for column in UNPACK_COLUMNS.split(","))
            rows = self._fetch(
                f"SELECT u.id, {columns}, u.source FROM user_events u JOIN ("
                f"SELECT id, {BYTES_AHEAD.format(order='id')} FROM ("
                f"SELECT id, length(event) + COALESCE(length(source), 0) AS n "
                f"FROM user_events WHERE {where} AND id > {mark} ORDER BY id LIMIT {mark}"
                f") AS picked) AS r ON u.id = r.id WHERE r.ahead < {mark} ORDER BY u.id",
                [*params, after_id, limit, max_bytes])
        return [(int(i), unpack(bytes(e), kind, visitor, user, us, ns),
                 None if s is None else bytes(s))
                for i, kind, visitor, user, us, ns, e, s in rows]

    def catalogs_with_events_before(self, time_us: int) -> list[str]:
        return [c for (c,) in self._fetch(self._sql.catalogs_with_events_before, (time_us,))]

    def newest_received_us(self) -> int | None:
        # (the last row by id: one step down the primary key, where MAX(received_us)
        # would read every row)
        found = self._fetch("SELECT received_us FROM user_events ORDER BY id DESC LIMIT 1", ())
        return None if not found or found[0][0] is None else int(found[0][0])

    # -- products -------------------------------------------------------------------

    def get_products(self, branch: str, product_ids: Sequence[str]) -> dict[str, bytes]:
        return BranchReader(self._fetch, branch, self._sql).get(product_ids)

    def products_to_join(self, branch: str, product_ids: Sequence[str]) -> dict[str, bytes]:
        return self.get_products(branch, product_ids)

    def read_products(self, branch: str, product_ids: Sequence[str]) -> ProductsRead:
        # The generation first: a write that comes between the two reads moves it, and
        # the step then looks again (_check_as_read).
        found = self._fetch(self._sql.generation, (branch,))
        wanted = list(dict.fromkeys(product_ids))
        return ProductsRead(branch, int(found[0][0]) if found else 0, wanted,
                            self.get_products(branch, wanted))

    def list_products(self, branch: str, limit: int, after_id: str = "",
                      max_bytes: int | None = None) -> list[tuple[str, bytes]]:
        rows = self._fetch(self._sql.list_products, (branch, after_id, limit)) \
            if max_bytes is None else \
            self._fetch(self._sql.list_products_within,
                        (branch, after_id, limit, branch, max_bytes))
        return [(pid, bytes(payload)) for pid, payload in rows]

    # Every product write bumps its branch's generation first, in its transaction, so
    # its check sees every product write committed before it and no other can commit
    # until it is done: on SQLite the writer's BEGIN IMMEDIATE holds the database's
    # write lock (no write of this process or another comes between), on PostgreSQL
    # the generation's row lock orders the product writes of a branch across
    # replicas. A delete's check first runs on a read, so that its scan of the branch
    # does not hold up the writer, and again inside only if the generation moved.

    def _bump_generation(self, db: Db, branch: str) -> int:
        """Count a write to the products of `branch`; the branch's new generation."""
        return int(db.execute(self._sql.bump_generation, (branch,)).fetchone()[0])

    def _branch_in(self, db: Db, branch: str) -> BranchReader:
        """ProductReader inside a write, on its transaction."""
        return BranchReader(lambda query, params: db.execute(query, params).fetchall(), branch,
                            self._sql)

    def create_product(self, branch: str, product_id: str, payload: bytes,
                       check: ProductCheck | None = None,
                       inventory_times: bytes | None = None) -> bool:
        checked_at = None if check is None else self._check_on_a_read(
            branch, check, lambda _: payload)

        def insert(db: Db) -> bool:
            generation = self._bump_generation(db, branch)
            if check is not None and checked_at != generation - 1:
                check(payload, self._branch_in(db, branch))
            return db.execute(self._sql.insert_product,
                              (branch, product_id, payload, inventory_times)).rowcount == 1

        return self._write(insert)

    def update_product(self, branch: str, product_id: str,
                       change: Callable[[bytes | None], bytes | None],
                       check: ProductCheck | None = None,
                       inventory_times: Callable[[bytes | None], bytes] | None = None
                       ) -> bytes | None:
        checked_at = None if check is None else self._check_on_a_read(
            branch, check, lambda products: change(products.get([product_id]).get(product_id)))

        def read_modify_write(db: Db) -> bytes | None:
            generation = self._bump_generation(db, branch)
            found = db.execute(self._sql.inventory_for_write, (branch, product_id)).fetchone()
            current = bytes(found[0]) if found else None
            updated = change(current)
            if updated is None:
                return current
            if check is not None and checked_at != generation - 1:
                check(updated, self._branch_in(db, branch))
            if inventory_times is None:
                db.execute(self._sql.put_product, (branch, product_id, updated))
            else:
                times = inventory_times(bytes(found[1]) if found and found[1] is not None
                                        else None)
                db.execute(self._sql.put_product_and_times, (branch, product_id, updated, times))
            return updated

        return self._write(read_modify_write)

    def update_inventory(self, branch: str, product_id: str,
                         change: Callable[[bytes, bytes | None], tuple[bytes, bytes] | None],
                         record: OperationRecord | None = None) -> bool:
        def read_modify_write(db: Db) -> bool:
            self._bump_generation(db, branch)
            found = db.execute(self._sql.inventory_for_write, (branch, product_id)).fetchone()
            if found is None:
                return False
            changed = change(bytes(found[0]), None if found[1] is None else bytes(found[1]))
            if changed is not None:
                db.execute(self._sql.put_inventory, (*changed, branch, product_id))
            if record is not None:
                db.execute(self._sql.insert_operation, record.as_params())
            return True

        return self._write(read_modify_write)

    def delete_product(self, branch: str, product_id: str,
                       check: ProductCheck | None = None) -> bool:
        checked_at = None if check is None else self._check_on_a_read(
            branch, check, lambda products: products.get([product_id]).get(product_id))

        def delete(db: Db) -> bool:
            generation = self._bump_generation(db, branch)
            if check is not None and checked_at != generation - 1:
                found = db.execute(self._sql.product_for_write, (branch, product_id)).fetchone()
                if found is None:
                    return False
                check(bytes(found[0]), self._branch_in(db, branch))
            return db.execute(self._sql.delete_product, (branch, product_id)).rowcount == 1

        return self._write(delete)

    def _check_on_a_read(self, branch: str, check: ProductCheck,
                         product: Callable[[BranchReader], bytes | None]) -> int | None:
        """Run `check` on the product `product` gives from what a read sees now: the
        product as stored (a delete) or as it is to be (a create, an update); the
        generation of the branch read before it, or None when there is no such product
        (nothing was checked). A product write checks again in its transaction only if
        the branch changed since: the check's scans of the branch (what refers to a
        product, a primary's variants) would otherwise run on the writer, holding up
        every event write behind them."""
        found = self._fetch(self._sql.generation, (branch,))
        products = BranchReader(self._fetch, branch, self._sql)
        current = product(products)
        if current is None:
            return None
        check(current, products)
        return int(found[0][0]) if found else 0

    # -- settings -------------------------------------------------------------------

    def page_token_key(self) -> bytes:
        """The key that signs the page tokens of this store's lists: made at random by
        the first server that needs it and kept in the store, so every server on it
        (replicas on one database, --processes on one file) checks another's tokens;
        a memory:// store's goes with its process. A read-only store that holds none
        yet (the CLI on a file no server has paged) gets one for this process alone:
        it has nowhere to keep one, and its tokens serve its own pages."""
        if self._page_token_key is None:
            made = secrets.token_bytes(PAGE_TOKEN_KEY_BYTES)
            rows = self._fetch(self._sql.setting, (PAGE_TOKEN_KEY,))
            if not rows and not self._read_only:
                # ... the first kept wins: two servers making one at once read the same
                self._write(lambda db: db.execute(self._sql.add_setting, (PAGE_TOKEN_KEY, made)))
                rows = self._fetch(self._sql.setting, (PAGE_TOKEN_KEY,))
            self._page_token_key = bytes(rows[0][0]) if rows else made
        return self._page_token_key

    def page_token_key_if_made(self) -> bytes | None:
        """page_token_key if one was made (by any server on the store, or for this
        process alone); None when none was: checking a stale token (of another store)
        must not make one, or the store, otherwise empty, holds a row (a `settings`
        one) and is refused as a target of `footfall copy`."""
        if self._page_token_key is None:
            rows = self._fetch(self._sql.setting, (PAGE_TOKEN_KEY,))
            if rows:
                self._page_token_key = bytes(rows[0][0])
        return self._page_token_key

    # -- long-running operations ----------------------------------------------------

    def create_operation(self, record: OperationRecord) -> bool:
        return bool(self._write(lambda db: db.execute(
            self._sql.insert_operation, record.as_params()).rowcount == 1))

    def get_operation(self, name: str) -> OperationRecord | None:
        rows = self._fetch(self._sql.operation, (name,))
        return OperationRecord.from_row(rows[0]) if rows else None

    def list_operations(self, prefix: str, done: bool | None, limit: int,
                        after: tuple[int, str] | None = None) -> list[OperationRecord]:
        mark = self._sql.dialect.mark
        terms, params = self._operation_terms(prefix, done)
        if after is not None:
            terms.append(f"(create_time_us, name) > ({mark}, {mark})")
            params.extend(after)
        rows = self._fetch(f"SELECT {OPERATION_COLUMNS} FROM operations WHERE "
                           f"{' AND '.join(terms)} ORDER BY create_time_us, name LIMIT {mark}",
                           [*params, limit])
        return [OperationRecord.from_row(r) for r in rows]

    def count_operations(self, prefix: str, done: bool | None) -> int:
        terms, params = self._operation_terms(prefix, done)
        [(count,)] = self._fetch(f"SELECT COUNT(*) FROM operations WHERE {' AND '.join(terms)}",
                                 params)
        return int(count)

    def _operation_terms(self, prefix: str, done: bool | None) -> tuple[list[str], list[Any]]:
        """The WHERE terms (and their values) of the operations whose name starts with
        `prefix`, and are `done` (or not; None: either)."""
        mark = self._sql.dialect.mark
        terms = [f"substr(name, 1, {mark}) = {mark}"]
        params: list[Any] = [len(prefix), prefix]
        if done is not None:
            terms.append(f"done = {mark}")
            params.append(int(done))
        return terms, params

    def delete_operation(self, name: str) -> bool:
        def delete(db: Db) -> bool:
            # The row first: a step of the operation in flight (which locks it) then
            # commits before, or finds it gone; a running purge stops here.
            deleted = db.execute(self._sql.delete_operation, (name,)).rowcount == 1
            Gap.close(db, self._sql.dialect, name)
            return bool(deleted)

        return bool(self._write(delete, first=True))

    def forget_operations(self, ended_before_us: int) -> int:
        # An ended operation has closed its purge's gap (run_step): nothing else to do.
        return int(self._write(lambda db: db.execute(self._sql.forget_operations,
                                                     (ended_before_us,)).rowcount))

    def request_cancel(self, name: str) -> OperationRecord | None:
        def mark(db: Db) -> OperationRecord | None:
            db.execute(self._sql.request_cancel, (name,))
            row = db.execute(self._sql.operation, (name,)).fetchone()
            return None if row is None else OperationRecord.from_row(row)

        return self._write(mark)

    def run_step(self, name: str, owner: str, step: Step, lease_until_us: int,
                 progress: Callable[[StepResult], Progress]) -> StepResult:
        # (the catalog's id looked up here, if it must be, not on the writer)
        selected = None if step.delete_events is None else \
            self._planned_where(step.delete_events)

        def apply(db: Db) -> StepResult:
            # On PostgreSQL the row lock orders this step against a claim or step of
            # another replica.
            found = db.execute(self._sql.lease, (name,)).fetchone()
            if found is None or found[0] != owner:
                raise LeaseLost(name)
            # Two inserts so the answer says how many new events joined the catalog.
            inserted_joined = self._insert_events(
                db, [r for r in step.insert_events if r.joined])
            inserted = inserted_joined + self._insert_events(
                db, [r for r in step.insert_events if not r.joined])
            # (an import's puts merged with the products read, a purge's deletes chosen
            # from them: either commits only while they are as read)
            for branch in sorted({branch for branch, _, _ in step.put_products} |
                                 {branch for branch, _ in step.delete_products}):
                generation = self._bump_generation(db, branch)
                self._check_as_read(db, step.products_read, branch, generation)
            if step.put_products:
                db.executemany(self._sql.put_product, step.put_products)
            deleted = through = 0
            for branch, product_id in step.delete_products:
                deleted += db.execute(self._sql.delete_product, (branch, product_id)).rowcount
            if step.update_events:
                self._rewrite_events(db, step.update_events)
            if step.rejections:
                self._insert_rejections(db, step.rejections)
            if step.uncount is not None and step.delete_events is not None:
                self._open_gap(db, name, step.delete_events.catalog, step.uncount)
            if selected is not None:
                deleted, through = self._delete_events(db, step, *selected)
            result = StepResult(inserted, inserted_joined, deleted, through, bool(found[1]))
            done = progress(result)
            if done.done:  # however it ends: what its purge left is counted again
                Gap.close(db, self._sql.dialect, name)
            db.execute(self._sql.record_progress, (done.checkpoint, done.operation,
                                                   int(done.done), lease_until_us, name))
            if done.done:
                db.execute(self._sql.let_go_request, (b"", name))
            return result

        # A purge's step may open or close a gap (a table lock on PostgreSQL): first. It
        # commits alone, so that the writes queued behind it wait for it only once (not
        # again in their own transaction), and it ends early when they wait. Never run
        # twice: `progress` counts in the job's memory (its job resumes from its
        # checkpoint instead).
        purging = step.delete_events is not None
        return self._write(apply, first=purging, alone=purging, again=False)

    def _check_as_read(self, db: Db, read: ProductsRead | None, branch: str,
                         generation: int) -> None:
        """ProductsChanged unless the products `read` (if of `branch`) are as they were
        read, in a step's transaction once it holds the branch's generation (its new
        value `generation`): looked at again only when a product write of the branch
        came since the read."""
        if read is None or read.branch != branch or read.generation == generation - 1:
            return
        if self._branch_in(db, branch).get(read.product_ids) != read.products:
            raise ProductsChanged(branch)

    def _delete_events(self, db: Db, step: Step, where: str,
                       params: list[Any]) -> tuple[int, int]:
        """Delete the first `step.delete_limit` events its query selects (`where` and
        `params`: its where_clause) with an id in (delete_after_id, delete_until_id],
        DELETE_CHUNK at a time, or only the first chunks when writes wait for the
        writer (see DELETE_CHUNK); how many went, and the id up to which none is left.

        The batch walks the rowid (`walk`) over that range only, so what it reads is
        bounded by the range, and the pages it changes are neighbours in the table,
        the time index and the bucketed visitor and user indexes. On PostgreSQL the
        catalog is named by its id (see _planned_catalog_id): a step of a catalog of
        5,000 events beside one of 1M read the key's 20,000 ids of its window and
        dropped those of the other catalog, rather than its own range of
        user_events_order."""
        gaps: list[Gap] | None = None  # (read once there is something to delete)
        tally = Tally()
        deleted, after = 0, step.delete_after_id
        while True:
            limit = min(DELETE_CHUNK, step.delete_limit - deleted)
            found, last = self._chunk_to_delete(db, where, params, after, step.delete_until_id,
                                                limit)
            if found:
                if gaps is None:
                    gaps = Gap.read(db)
                deleted += self._delete_through(db, where, params, gaps, tally, after, last)
            if found < limit:  # none left in the range
                through = step.delete_until_id
                break
            after = through = last
            if deleted >= step.delete_limit or self._writes_waiting(db):
                break
        tally.apply(db, self._sql.dialect)
        return deleted, through

    def _writes_waiting(self, db: Db) -> bool:
        """Whether writes wait for the step being applied on `db` (see DELETE_CHUNK):
        those queued for this store's writer (SQLite and PostgreSQL add those of
        other processes)."""
        return self._committer.waiting

    def _chunk_to_delete(self, db: Db, where: str, params: list[Any], after_id: int,
                         until_id: int, limit: int) -> tuple[int, int]:
        """How many of the first `limit` events `where` selects with an id in (after_id,
        until_id] there are, and the last one's id (0 when none). Counted in the
        database, not handed over id by id: 0.09 s of the writer's CPU for the 1,000
        chunks of a purge of 500k, against 0.17 s for their ids as rows."""
        mark, walk = self._sql.dialect.mark, self._sql.dialect.walk
        found, last = db.execute(
            f"SELECT COUNT(*), MAX(id) FROM (SELECT id FROM user_events{walk} WHERE {where} "
            f"AND id > {mark} AND id <= {mark} ORDER BY id LIMIT {mark}) AS chunk",
            [*params, after_id, until_id, limit]).fetchone()
        return int(found), int(last or 0)

    def _delete_through(self, db: Db, where: str, params: list[Any], gaps: list[Gap],
                        tally: Tally, after_id: int, last_id: int) -> int:
        """Delete the events `where` selects with an id in (after_id, last_id], taking
        what they counted (but those `gaps` hold) out of `tally`; how many went."""
        mark, walk = self._sql.dialect.mark, self._sql.dialect.walk
        delete = f"DELETE FROM user_events{walk} WHERE {where} AND id > {mark} AND id <= {mark}"
        span = [*params, after_id, last_id]
        uncounted = 0
        if gaps:  # the events gaps hold count nowhere: deleted first, nothing returned
            held, held_params = held_by(self._sql.dialect, gaps)
            uncounted = db.execute(f"{delete} AND {held}", [*span, *held_params]).rowcount
        # RETURNING: the rollups lose what exactly these rows counted, in this transaction.
        columns, column_params = stored_columns(self._sql.dialect)
        returned = db.execute(f"{delete} RETURNING {columns}", [*span, *column_params]).fetchall()
        tally.add_stored(returned, -1)
        return uncounted + len(returned)

    def _open_gap(self, db: Db, name: str, catalog: str,
                  uncount: tuple[int, int, int, int]) -> None:
        """Open the gap of Step.uncount for operation `name` (see rollups.Gap.open)."""
        found = db.execute(self._sql.catalog_id, (catalog,)).fetchone()
        if found is not None:  # (else the catalog has no event to purge)
            Gap(int(found[0]), *uncount).open(db, self._sql.dialect, name)

    def event_id_range(self, query: EventQuery) -> tuple[int, int] | None:
        time_bound = query.after is not None or query.before is not None
        if not time_bound and self._sql.dialect.name == "sqlite":
            # two seeks at the ends of the rowid (no index of SQLite's holds a
            # catalog's ids in order)
            rows = self._fetch("SELECT MIN(id), MAX(id) FROM user_events", ())
        else:
            # one pass over the time range in the (catalog_id, event_time_us) index; on
            # PostgreSQL, with no time term, two seeks at the ends of the catalog's range
            # of user_events_order: the walk of a catalog beside a bigger one (or of one
            # emptied) covered every id of the table, 50 steps at 1M events for a catalog
            # of none
            where, params = self._planned_where(query.time_range())
            rows = self._fetch(f"SELECT MIN(id), MAX(id) FROM user_events WHERE {where}", params)
        first, last = rows[0]
        return None if first is None else (int(first), int(last))

    def release_operation(self, name: str, owner: str) -> None:
        self._write(lambda db: db.execute(self._sql.release, (name, owner)))


class BranchReader:
    """ProductReader of one branch through `fetch`: a read connection, or the writer's
    inside its transaction."""

    def __init__(self, fetch: Fetch, branch: str, sql: Statements) -> None:
        self._fetch = fetch
        self._branch = branch
        self._sql = sql

    def get(self, product_ids: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(product_ids))
        if not wanted:
            return {}
        among, params = self._sql.dialect.among("product_id", wanted)
        rows = self._fetch(f"SELECT product_id, product FROM products WHERE branch = "
                           f"{self._sql.dialect.mark} AND {among}", [self._branch, *params])
        return {pid: bytes(payload) for pid, payload in rows}

    def containing(self, text: str) -> Iterator[tuple[str, bytes]]:
        # The byte search runs in the database: only candidates reach Python.
        after = ""
        while True:
            rows = self._fetch(self._sql.products_containing,
                               (self._branch, after, text.encode(), PRODUCT_SCAN_BATCH))
            for pid, payload in rows:
                yield pid, bytes(payload)
            if len(rows) < PRODUCT_SCAN_BATCH:
                return
            after = rows[-1][0]
