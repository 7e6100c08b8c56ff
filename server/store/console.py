"""The console's reads and writes (footfall.console.v1), written once for both
SQL stores: events newest first and after a position, refusals kept within
their retention, the catalogs and tenants that hold data, and resets.

Pages are keyset pages: a position (event time and id, or id) rather than an
offset, so a page costs the same wherever it starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

from server.console.origin import now_us
from server.store import reset_marks
from server.store.packed import UNPACK_COLUMNS, unpack
from server.store.rows import ClientEventQuery, EventQuery, catalog_term, keep_latest, where_clause
from server.store.shapes import in_statements, rows_sql

if TYPE_CHECKING:
    from server.store.group_commit import GroupCommitter
    from server.store.sql import Dialect, Statements

T = TypeVar("T")
# The columns of a StoredEvent but its catalog (the query names it), in order.
_EVENT = f"id, {UNPACK_COLUMNS}, source, joined, received_us, transport"
_CLIENT_EVENT = "id, tenant, event, received_us, transport, create_time_us"
# A read of events stops at about READ_BYTES of them: an event may hold up to
# --max-event-bytes (and its copy as received as much again), so the thousands of
# rows of a page or a watch's catch-up could otherwise hold gigabytes. The ids
# and sizes are read first (the database gives a blob's length without reading
# it), then by id the rows up to the one that passes READ_BYTES (so always one),
# in one statement (`_within`).
READ_BYTES = 8 * 1024 * 1024
_EVENT_BYTES = "LENGTH(event) + COALESCE(LENGTH(source), 0)"


class StoredEvent(NamedTuple):
    """A user event row as the console shows it."""

    id: int
    catalog: str
    payload: bytes
    source: bytes | None  # as received, when enrichment changed it
    joined: bool
    received_us: int | None  # None: stored before Footfall kept it
    transport: int
    event_time_us: int

    @classmethod
    def of(cls, catalog: str, row: Sequence[Any]) -> StoredEvent:
        """The event of `catalog` whose `_EVENT` columns are `row` (unpacked)."""
        i, kind, visitor, user, time_us, time_ns, event, source, joined, received, transport = row
        return cls(int(i), catalog, unpack(bytes(event), kind, visitor, user, time_us, time_ns),
                   None if source is None else bytes(source), bool(joined), received,
                   int(transport), int(time_us))


class StoredClientEvent(NamedTuple):
    id: int
    tenant: str
    payload: bytes
    received_us: int | None
    transport: int
    create_time_us: int = 0  # (its column: the order of the newest first)

    @classmethod
    def of(cls, row: Sequence[Any]) -> StoredClientEvent:
        return cls(int(row[0]), row[1], bytes(row[2]), row[3], int(row[4]), int(row[5]))


class Read(list[Any]):
    """The rows of one read, and whether rows may follow them: the read found as
    many as it asked for, or stopped at READ_BYTES (then it holds fewer)."""

    more = False


def may_continue(rows: Sequence[Any], limit: int) -> bool:
    """Whether rows may follow `rows`, read with `limit` (a `Read` knows: it may
    stop short of `limit` at READ_BYTES, and not be ended)."""
    return rows.more if isinstance(rows, Read) else len(rows) >= limit


class RejectionRow(NamedTuple):
    """A refusal to keep: its project ("" when the request named none), the parent
    it named, when, and the serialized console.v1 Rejection (without its id); and
    when by the wall clock (origin.now_us, as the resets: see reset_marks), if the
    time said is another clock's (None: `time_us`)."""

    project: str
    parent: str
    time_us: int
    payload: bytes
    made_us: int | None = None

    @property
    def made(self) -> int:
        """When it was made, by the wall clock."""
        return self.time_us if self.made_us is None else self.made_us


class KeptRejection(NamedTuple):
    """A kept refusal: its id and the serialized console.v1 Rejection (without it)."""

    id: int
    payload: bytes


class DataSetRow(NamedTuple):
    """A catalog or tenant that holds events (or, a catalog, products only: no event,
    its last time 0)."""

    name: str
    events: int
    last_event_us: int
    last_received_us: int | None


_BRANCHES_A_READ = 1000


def _merged(*lists: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """(name, key) lists each by name, as one by name; a name in several once, with
    its first key that is not None (a catalog's id before no id)."""
    by_name: dict[str, Any] = {}
    for items in lists:
        for name, key in items:
            if by_name.get(name) is None:
                by_name[name] = key
    return sorted(by_name.items())


class ResetCounts(NamedTuple):
    events: int = 0
    products: int = 0
    rejections: int = 0
    operations: int = 0  # finished ones, deleted
    cancelled: int = 0  # running ones, ended CANCELLED (see ConsoleSql._cancel_running)


# The distinct values of a leading index column after a given one, in order, by a
# loose index scan: one seek per value, whatever the number of rows.
_DISTINCT = """
    WITH RECURSIVE v(value) AS (
        SELECT MIN({column}) FROM {table} WHERE {column} > {mark}
        UNION ALL
        SELECT (SELECT MIN(t.{column}) FROM {table} t WHERE t.{column} > v.value)
        FROM v WHERE v.value IS NOT NULL)
    SELECT value FROM v WHERE value IS NOT NULL LIMIT {mark}"""

# A name `column` starting with a prefix (`_under`): a range of the column's index
# (bytes order in both stores: PostgreSQL's text is COLLATE "C"), where
# substr(column, ...) = prefix read the whole table: 60-125 ms for a project's
# reset beside 300,000 client events and 100,000 products of another project,
# 14-40 ms for a catalog's (the products).
_UNDER = "{0} >= ? AND {0} < ?"


def _under(prefix: str) -> tuple[str, str]:
    """The bounds of _UNDER for `prefix`: it, and the first text after all that
    start with it."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


# The catalog ids a statement of a project's reset names at most.
_IDS_A_STATEMENT = 1000

# What follows `projects/P/` in the name of what belongs to a catalog of P (its
# operations: `locations/L/catalogs/C/operations/...`, `.../branches/B/...`).
_CATALOG_PART = re.compile(r"locations/[^/]+/catalogs/[^/]+/")

# The kinds of operation that export (export-user-events, export-products): they
# write nothing in their catalog.
_EXPORTS = "export-"

# The projects that hold kept refusals (at most `keep` rows are read).
_KEPT_PROJECTS = "SELECT DISTINCT project FROM rejections"
# SQLite: the rows kept, and the least and greatest project among them (each a step of
# the project index: SQLite counts the table by its pages, and finds a MIN or MAX
# alone by its index).
_COUNTED = ("SELECT (SELECT COUNT(*) FROM rejections), (SELECT MIN(project) FROM rejections), "
            "(SELECT MAX(project) FROM rejections)")


class ConsoleSql:
    """The console's part of SqlStore, over the same `_fetch`, `_write` and
    dialect (see sql.SqlStore)."""

    _sql: ClassVar[Statements]
    _committer: GroupCommitter
    _fetch: Callable[[str, Sequence[Any]], list[Any]]
    # (see _planned_catalog_id)
    _known_catalog_ids: dict[str, int] | None = None

    def _write(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    @property
    def _dialect(self) -> Dialect:
        return self._sql.dialect

    @property
    def reads_elsewhere(self) -> bool:
        """Whether its reads' work is done in another process (PostgreSQL's), which
        no thread's CPU here counts (see console.pace.Listing.read)."""
        return self._dialect.name != "sqlite"

    # -- user events -----------------------------------------------------------

    def user_events_newest(self, query: EventQuery, limit: int,
                           before: tuple[int, int] | None = None,
                           containing: Sequence[bytes] = ()) -> list[StoredEvent]:
        """Up to `limit` events `query` selects, latest event time first (then the
        latest stored), after the (event_time_us, id) position `before`; only those
        whose stored bytes contain each of `containing` (compared in the database:
        a row that cannot match is neither sent nor unpacked)."""
        where, params = self._planned_where(query)
        # A visitor or user has few events: find them by their index and sort them
        # (the unary + keeps the planner off the time index, whose walk backwards
        # would read the whole catalog to find a rare visitor's). Measured at 300k
        # events, one visitor in 1,000: 3.6 ms against 109 ms.
        time = "+event_time_us" if query.visitor_ids or query.user_ids else "event_time_us"
        if before is not None:
            where, params = self._past(where, params, "event_time_us", before, time)
        for needle in containing:
            where += f" AND {self._dialect.spell(self._dialect.contains.format(column='event'))}"
            params.append(needle)
        return self._events(query.catalog, where, params, f"{time} DESC, id DESC", limit)

    def user_event_time_past(self, query: EventQuery, before: tuple[int, int] | None,
                             skip: int) -> int | None:
        """The event time (µs) of the event `skip` places past `before` (None: the
        newest) in `query`'s catalog and time range, latest first, its other terms
        left out; None when there are not that many. One walk of the (catalog, event
        time) index, reading no row."""
        mark = self._dialect.mark
        where, params = self._planned_where(query.time_range())
        if before is not None:
            where, params = self._past(where, params, "event_time_us", before)
        rows = self._fetch(f"SELECT event_time_us FROM user_events WHERE {where} "
                           f"ORDER BY event_time_us DESC LIMIT 1 OFFSET {mark}", [*params, skip])
        return int(rows[0][0]) if rows else None

    def user_events_after(self, query: EventQuery, after_id: int,
                          limit: int) -> list[StoredEvent]:
        """Up to `limit` events `query` selects stored after `after_id`, in id order."""
        mark = self._dialect.mark
        # (the unary + keeps the planner off the time index: given a time range with
        # both ends, SQLite walked the whole range for each read of what came since,
        # 27 ms at 300k events against 0.3 ms, and 300 watches of such filters held
        # every store thread, making another project's one-page list wait 4-15 s)
        where, params = self._planned_where(query, "+event_time_us")
        walk = ""
        if not (query.visitor_ids or query.user_ids):  # (those seek their index by bucket)
            # From after_id's id bucket on in a bucketed index, not the whole catalog:
            # a watch reads what came since, however large the catalog. SQLite walks
            # the rowid from after_id instead (`walk`): with no statistics (a server
            # never runs ANALYZE) its planner took the bucketed visitor/user index for
            # this, read every row of the bucket (up to 16,384 of them, from the table
            # when a term names another column) and sorted them by id, about 14 ms a
            # read whatever it found, where the rowid walk reads what came since and
            # stops at the limit.
            where += f" AND (id >> 14) >= {mark}"
            params.append(after_id >> 14)
            walk = self._dialect.walk
        return self._events(query.catalog, f"{where} AND id > {mark}", [*params, after_id],
                            "id", limit, walk)

    def _past(self, where: str, params: list[Any], column: str, before: tuple[int, int],
              spelt: str | None = None) -> tuple[str, list[Any]]:
        """`where` narrowed to what comes past the (time, id) position `before` in
        (`column` DESC, id DESC) order; `spelt` is how the first term names the column
        (`+column` keeps the planner off its index). The first term keeps the read a
        range of the (parent, time) index."""
        mark = self._dialect.mark
        where += (f" AND {spelt or column} <= {mark} AND ({column} < {mark} "
                  f"OR id < {mark})")
        return where, [*params, before[0], before[0], before[1]]

    def _planned_where(self, query: EventQuery,
                       time: str = "event_time_us") -> tuple[str, list[Any]]:
        """where_clause of `query`, naming its catalog by id where PostgreSQL's plan
        needs it (see _planned_catalog_id): for a read or delete whose walk follows
        the ids (the index chosen by the catalog's share of the table)."""
        return where_clause(query, self._dialect.mark, time,
                            self._planned_catalog_id(query.catalog))

    def _planned_catalog_id(self, catalog: str) -> int | None:
        """On PostgreSQL, the id of `catalog`, for the SQL of a read in id order (None
        when it has none yet); None on SQLite, whose reads in id order walk the rowid
        whatever the catalog. PostgreSQL's planner cannot see the value of a lookup
        by name, nor of a parameter in the generic plan of a statement prepared, so
        it took any catalog for an average one: beside one big catalog, half the
        rows. In id order it then walked the key, dropping the other catalogs' rows
        (200,000 for a read of 1,000 of a catalog of 5,000 beside one of 1M: 205 ms),
        rather than read the catalog's own range of user_events_order (4 ms). Kept
        once found: a catalog's id is never given to another, nor changed (unless the
        database is restored under the server, which the README says not to do: the
        writer lets them go, as its own, when it connects again or finds a catalog
        row gone)."""
        if self._dialect.name != "postgresql":
            return None
        known = self._known_catalog_ids
        if known is None:
            known = self._known_catalog_ids = {}
        if catalog not in known:
            rows = self._fetch(self._dialect.spell("SELECT id FROM catalogs WHERE name = ?"),
                               (catalog,))
            if not rows:
                return None
            found = known[catalog] = int(rows[0][0])
            keep_latest(known)  # (a reader key may name every catalog writers made)
            return found
        return known[catalog]

    def _events(self, catalog: str, where: str, params: list[Any], order: str,
                limit: int, walk: str = "") -> Read:
        read = self._within(_EVENT, _EVENT_BYTES, "user_events", where, params, order, limit,
                            walk=walk)
        read[:] = [StoredEvent.of(catalog, r) for r in read]
        return read

    def _within(self, columns: str, size: str, table: str, where: str, params: list[Any],
                order: str, limit: int, lead: tuple[str, Any] | None = None,
                walk: str = "") -> Read:
        """SELECT `columns` (plain column names, starting with id) FROM `table` WHERE
        `where` ORDER BY `order` LIMIT `limit`, cut to the rows before the one whose
        `size`s pass READ_BYTES, and that one (see READ_BYTES). One statement: the
        page's ids and sizes (no blob read), their running total over the page
        alone, then the rows kept fetched by id (with the `lead` column's value:
        on PostgreSQL, client_events has no index on id alone, only one that
        leads with the tenant). One snapshot, so no row stored or deleted between
        two statements can shift it. `walk` follows the table in the page's read:
        how the store walks its rows (the dialect's, SQLite's NOT INDEXED: the rowid)."""
        mark = self._dialect.mark
        # The page's own order again, over its columns (a planner's unary + dropped).
        terms = [term.split() for term in order.split(",")]
        keys = [name.lstrip("+") for name, *_ in terms]
        again = ", ".join(" ".join([name.lstrip("+"), *rest]) for name, *rest in terms)
        picked = ", ".join(f"t.{name.strip()}" for name in columns.split(","))
        leading, values = (f"t.{lead[0]} = {mark} AND ", [lead[1]]) if lead else ("", [])
        rows = self._fetch(
            f"WITH page AS (SELECT {', '.join(dict.fromkeys(['id', *keys]))}, {size} AS page_size "
            f"FROM {table}{walk} WHERE {where} ORDER BY {order} LIMIT {mark}), "
            f"sized AS (SELECT id AS page_id, page_size, ROW_NUMBER() OVER w AS page_n, "
            f"SUM(page_size) OVER w AS page_upto, COUNT(*) OVER () AS page_count FROM page "
            f"WINDOW w AS (ORDER BY {again} ROWS UNBOUNDED PRECEDING)) "
            f"SELECT {picked}, page_count FROM sized JOIN {table} t ON {leading}t.id = page_id "
            f"WHERE page_upto - page_size < {mark} ORDER BY page_n",
            [*params, limit, *values, READ_BYTES])
        read = Read(row[:-1] for row in rows)
        read.more = bool(rows) and (rows[0][-1] >= limit or len(rows) < rows[0][-1])
        return read

    def last_id(self, table: str) -> int:
        """The id of the last row stored in `table` (user_events, client_events or
        rejections); 0 when it is empty."""
        assert table in ("user_events", "client_events", "rejections")
        [(last,)] = self._fetch(f"SELECT MAX(id) FROM {table}", ())
        return int(last or 0)

    # -- client events ---------------------------------------------------------

    def client_events_newest(self, tenant: str | ClientEventQuery, limit: int,
                             before: tuple[int, int] | None = None) -> list[StoredClientEvent]:
        """Up to `limit` client events of `tenant` (or that a ClientEventQuery
        selects), latest create time first (then the last stored), after the
        (create_time_us, id) position `before`: one range of the (tenant, create
        time, id) index, read backwards."""
        where, params = self._client_where(tenant)
        if before is not None:
            where, params = self._past(where, params, "create_time_us", before)
        return self._client_events(where, params, "create_time_us DESC, id DESC", limit)

    def client_events_after(self, tenant: str | ClientEventQuery, after_id: int,
                            limit: int) -> list[StoredClientEvent]:
        mark = self._dialect.mark
        where, params = self._client_where(tenant)
        return self._client_events(f"{where} AND id > {mark}", [*params, after_id], "id", limit)

    def client_event_time_past(self, query: ClientEventQuery, before: tuple[int, int] | None,
                               skip: int) -> int | None:
        """The create time (µs) of the event `skip` places past `before` (None: the
        newest) in `query`'s tenant and create-time range, its other terms left out;
        None when there are not that many. One walk of the (tenant, create time, id)
        index, reading no row (as user_event_time_past)."""
        mark = self._dialect.mark
        where, params = self._client_where(replace(query, event_ids=(), containing=()))
        if before is not None:
            where, params = self._past(where, params, "create_time_us", before)
        rows = self._fetch(f"SELECT create_time_us FROM client_events WHERE {where} "
                           f"ORDER BY create_time_us DESC, id DESC LIMIT 1 OFFSET {mark}",
                           [*params, skip])
        return int(rows[0][0]) if rows else None

    def count_client_events(self, query: ClientEventQuery) -> int:
        """How many client events `query` selects (of its tenant's index alone
        unless it looks for bytes in the events)."""
        where, params = self._client_where(query)
        [(count,)] = self._fetch(f"SELECT COUNT(*) FROM client_events WHERE {where}", params)
        return int(count)

    def _client_where(self, tenant: str | ClientEventQuery) -> tuple[str, list[Any]]:
        """The SQL condition and parameters of `tenant`'s events (its first
        parameter the tenant, as _client_events wants it)."""
        query = tenant if isinstance(tenant, ClientEventQuery) else ClientEventQuery(tenant)
        return query.where(self._dialect.mark, self._dialect.spell(self._dialect.contains))

    def _client_events(self, where: str, params: list[Any], order: str, limit: int) -> Read:
        read = self._within(_CLIENT_EVENT, "LENGTH(event)", "client_events", where, params,
                            order, limit, lead=("tenant", params[0]))
        read[:] = [StoredClientEvent.of(r) for r in read]
        return read

    # -- rejections --------------------------------------------------------------

    def _insert_rejections(self, db: Any, rows: Sequence[RejectionRow]) -> None:
        """Insert `rows` in the transaction of `db` (trimmed by the next add_rejections)."""
        values = "(" + ", ".join([self._dialect.mark] * 4) + ")"
        # One statement for many rather than executemany, whose every step gives up
        # and retakes the GIL (a wait of up to a switch interval each while the loop
        # is busy: see sqlite._insert_events); of a few row counts (shapes.py).
        for chunk in in_statements(rows):
            db.execute(rows_sql("INSERT INTO rejections (project, parent, time_us, "
                                "rejection) VALUES ", values, len(chunk)),
                       [value for row in chunk for value in row[:4]])  # (not made_us)

    def add_rejections(self, rows: Sequence[RejectionRow] | Callable[[], Sequence[RejectionRow]],
                       keep: int, since_us: int, keep_per_project: int | None = None,
                       projects: Sequence[str] | None = None) -> Future[Any]:
        """Keep `rows` in a transaction of the writer (the first it makes for other
        writes once ALONG_SECONDS have passed, else its own once the writer has
        taken no other for ALONG_SECONDS), which also forgets the
        refusals of each of their projects beyond its last `keep_per_project`, those
        beyond the last `keep` of all, and those older than `since_us` (so no flood
        grows the table past them, and a flood of one project's leaves the others');
        the future of that transaction. `rows` may be a function, called on the
        writer in that transaction (once, should it be tried again): it takes the
        rows gathered until then. No rows: it only forgets (each project's beyond
        `keep_per_project` too, or with `projects` those projects' alone)."""
        mark = self._dialect.mark

        taken: list[Sequence[RejectionRow]] = []  # once: a retried batch inserts the same

        def keep_within(db: Any) -> None:
            if not taken:
                taken.append(rows() if callable(rows) else rows)
            kept = taken[0]
            self._insert_rejections(db, self._not_reset(db, kept))
            # by rows, not ids: those a project's trim took leave gaps in the ids
            count = None  # (SQLite: the rows kept, once counted)
            if keep_per_project is not None and keep_per_project < keep:
                # A trim alone (at start, then every few minutes) trims every project:
                # one started with a lower keep_per_project keeps no more than it says.
                trimmed = sorted({row.project for row in kept}) if kept else \
                    sorted(projects) if projects is not None else [
                        project for (project,) in db.execute(_KEPT_PROJECTS).fetchall()]
                if self._dialect.name == "sqlite" and trimmed:
                    # Found from the newest end, a project's last keep_per_project were
                    # walked each time, 2,000 rows for each job of a flood of one
                    # project's refusals (about a third of the job): when the table
                    # holds no more rows, or one project's alone, they are counted.
                    count, least, most = db.execute(_COUNTED).fetchone()
                    if count > keep_per_project and least == most and least in trimmed:
                        db.execute("DELETE FROM rejections WHERE id <= (SELECT id FROM "
                                   "rejections ORDER BY id LIMIT 1 OFFSET ?)",
                                   (count - keep_per_project - 1,))
                        count = keep_per_project
                    if count <= keep_per_project or least == most:
                        trimmed = []
                for project in trimmed:
                    db.execute(f"DELETE FROM rejections WHERE project = {mark} AND id <= "
                               f"(SELECT id FROM rejections WHERE project = {mark} ORDER BY id "
                               f"DESC LIMIT 1 OFFSET {mark})", (project, project, keep_per_project))
                    count = None
            if self._dialect.name == "sqlite":
                # The oldest (count - keep), found from the oldest end, once counted
                # (SQLite counts the entries of its smallest index: a page every ~250
                # rows). The last `keep` found from the newest end read every row of the
                # table: 2.2 ms at 12,000 rows, for each job of refusals. (PostgreSQL
                # counts them as slowly as it walks them: 0.67 against 0.48 ms.)
                if count is None:
                    (count,) = db.execute("SELECT COUNT(*) FROM rejections").fetchone()
                if count > keep:
                    db.execute(f"DELETE FROM rejections WHERE id <= (SELECT id FROM rejections "
                               f"ORDER BY id LIMIT 1 OFFSET {mark})", (count - keep - 1,))
            else:
                db.execute(f"DELETE FROM rejections WHERE id <= (SELECT id FROM rejections "
                           f"ORDER BY id DESC LIMIT 1 OFFSET {mark})", (keep,))
            db.execute(f"DELETE FROM rejections WHERE time_us < {mark}", (since_us,))

        return self._committer.submit_along(keep_within)

    def _not_reset(self, db: Any, rows: Sequence[RejectionRow]) -> Sequence[RejectionRow]:
        """`rows` but those made before a reset that deletes them (made by another
        process or replica just before it, they came after it: see reset_marks), read
        in the transaction of `db` (on PostgreSQL, holding the writers' turn)."""
        if not rows:
            return rows
        marks = db.execute(self._dialect.spell(reset_marks.SINCE),
                           (min(row.made for row in rows),)).fetchall()
        if not marks:
            return rows
        return [row for row in rows if not any(
            row.made < at_us and reset_marks.resets_refusal(scope, row.project, row.parent)
            for scope, at_us in marks)]

    def rejections_newest(self, project: str | None, limit: int,
                          before_id: int | None = None,
                          parent: str | None = None) -> list[KeptRejection]:
        """Up to `limit` (id, Rejection) of `project` (None: every one), last first;
        of requests kept under `parent` only, if given (the parent as sent, but for a
        talent v4beta1 project alone, kept under its default tenant: see
        console.rejections.kept_under)."""
        terms, params = self._rejections_of(project, parent)
        if before_id is not None:
            terms.append(f"id < {self._dialect.mark}")
            params.append(before_id)
        return self._rejections(terms, params, "DESC", limit)

    def rejections_after(self, project: str | None, after_id: int, limit: int,
                         parent: str | None = None) -> list[KeptRejection]:
        terms, params = self._rejections_of(project, parent)
        terms.append(f"id > {self._dialect.mark}")
        params.append(after_id)
        return self._rejections(terms, params, "", limit)

    def _rejections_of(self, project: str | None,
                       parent: str | None) -> tuple[list[str], list[Any]]:
        # (a parent is a project's: the project's index finds its rows, at most
        # --rejections-keep-per-project of them)
        terms, params = [], []
        for column, value in (("project", project), ("parent", parent)):
            if value is not None:
                terms.append(f"{column} = {self._dialect.mark}")
                params.append(value)
        return terms, params

    def _rejections(self, terms: list[str], params: list[Any], order: str,
                    limit: int) -> list[KeptRejection]:
        where = f"WHERE {' AND '.join(terms)} " if terms else ""
        rows = self._fetch(f"SELECT id, rejection FROM rejections {where}ORDER BY id {order} "
                           f"LIMIT {self._dialect.mark}", [*params, limit])
        return [KeptRejection(int(i), bytes(r)) for i, r in rows]

    # -- what holds data -------------------------------------------------------------

    def data_sets(self, tenants: bool, prefix: str = "", after: str = "",
                  limit: int = 1000, counted: bool = True) -> tuple[list[DataSetRow], bool]:
        """Up to `limit` of the catalogs (the tenants) whose names start with
        `prefix` that hold events, by name, the first after `after`, with their counts
        and latest times (`counted`; else names alone: 0 and None); and whether more
        follow them."""
        start = max(after, prefix)  # (the names of a prefix follow it, side by side)
        if tenants:
            found = [(t, t) for (t,) in self._fetch(_DISTINCT.format(
                column="tenant", table="client_events", mark=self._dialect.mark),
                (start, limit + 1))]
        else:
            # A catalog keeps its id when its events are gone (purged, reset): it is
            # listed only while it holds one (one seek each in the time index), or a
            # product (a shop loads its catalog before its first event comes).
            found = self._fetch(self._dialect.spell(
                "SELECT name, id FROM catalogs c WHERE name > ? AND EXISTS (SELECT 1 FROM "
                "user_events e WHERE e.catalog_id = c.id) ORDER BY name LIMIT ?"),
                (start, limit + 1))
            found = _merged(found, self._product_catalogs(start, limit + 1))[:limit + 1]
        named = [(name, key) for name, key in found if name.startswith(prefix)]
        if not counted:
            return [DataSetRow(name, 0, 0, None) for name, _ in named[:limit]], \
                len(named) > limit
        table, column, time = ("client_events", "tenant", "create_time_us") if tenants \
            else ("user_events", "catalog_id", "event_time_us")
        rows = [DataSetRow(name, 0, 0, None) if key is None
                else self._data_set(name, key, table, column, time)
                for name, key in named[:limit]]
        # (one emptied since it was listed, by a reset, a purge or retention, is left out)
        return [r for r in rows if r is not None], len(named) > limit

    def _product_catalogs(self, after: str, limit: int) -> list[tuple[str, None]]:
        """Up to `limit` catalogs after `after`, by name, that hold products. Read from
        every distinct branch after `after` (a skip over the products' key, a seek
        each; three branches at most a catalog): branches are not in the order of
        their catalogs (`shop-eu/branches/0` sorts before `shop/branches/0`), so a
        scan cut short skipped `shop` on every page."""
        catalogs: set[str] = set()
        start = after
        while True:
            branches = [b for (b,) in self._fetch(_DISTINCT.format(
                column="branch", table="products", mark=self._dialect.mark),
                (start, _BRANCHES_A_READ))]
            catalogs.update(c for b in branches if (c := b.rpartition("/branches/")[0]) > after)
            if len(branches) < _BRANCHES_A_READ:
                return [(name, None) for name in sorted(catalogs)[:limit]]
            start = branches[-1]

    def _data_set(self, name: str, key: Any, table: str, column: str,
                  time: str) -> DataSetRow | None:
        """The data set `name`: the rows of `table` whose `column` is `key` (None when
        there are none). One statement, so one snapshot: rows deleted meanwhile
        cannot leave the count without its latest row."""
        if table == "user_events" and self._dialect.name == "postgresql":
            # Three reads of indexes that hold what each needs: the entries of the
            # catalog's range of user_events_order counted, a seek at each end. As one
            # aggregate, PostgreSQL read the table itself (its indexes hold the time or
            # the id, not both; SQLite's hold the rowid): at 1M events of the catalog a
            # parallel scan of the whole table, 160-200 ms, against 55-70 ms. The id is
            # written in, as for a read in id order (see _planned_catalog_id): beside
            # a big catalog, a small one's count was planned as half the table.
            of = f"FROM user_events WHERE catalog_id = {int(key)}"
            counted = (f"SELECT (SELECT COUNT(*) {of}) AS n, (SELECT MAX({time}) {of}) AS t, "
                       f"(SELECT MAX(id) {of}) AS last")
            params: tuple[Any, ...] = ()
        else:
            counted = (f"SELECT COUNT(*) AS n, MAX({time}) AS t, MAX(id) AS last FROM {table} "
                       f"WHERE {column} = {self._dialect.mark}")
            params = (key,)
        [(count, last_time, received)] = self._fetch(
            f"WITH s AS ({counted}) "
            f"SELECT s.n, s.t, (SELECT received_us FROM {table} WHERE id = s.last) FROM s",
            params)
        return DataSetRow(name, int(count), int(last_time), received) if count else None

    # -- resets ------------------------------------------------------------------------

    def reset_catalog(self, catalog: str) -> ResetCounts:
        """Delete, in one transaction, the user events of `catalog`, the products of
        its branches, its refusals and its finished operations, and cancel those
        still running (see _cancel_running).

        Its row in `catalogs` stays (a catalog's id is given once): a write or a
        purge beside the reset, in this process or another, still finds it."""
        # On PostgreSQL the catalog named by its id (see _planned_catalog_id): beside
        # a big catalog, a small one's rows were planned as half the table, and its
        # reset read the whole of it (1M rows, 0.7 s, and 0.13 s of the rollups) while
        # every write waited for the writer; now its range of user_events_order, 41 ms.
        catalog_id = self._planned_catalog_id(catalog)
        came = now_us()

        def reset(db: Any) -> ResetCounts:
            self._mark_reset(db, catalog, came)
            of, of_params = catalog_term(catalog, "?", catalog_id)
            events = self._forget_user_events(db, of, of_params)
            products, operations = self._forget_catalog_parts(db, catalog + "/")
            cancelled = self._cancel_running(db, catalog, catalog + "/", came)
            return ResetCounts(events, products, self._forget_rejections(db, catalog),
                               operations, cancelled)

        return self._write(reset)

    def reset_tenant(self, tenant: str) -> ResetCounts:
        """Delete, in one transaction, the client events and refusals of `tenant`."""
        came = now_us()

        def reset(db: Any) -> ResetCounts:
            self._mark_reset(db, tenant, came)
            return ResetCounts(
                db.execute(self._dialect.spell("DELETE FROM client_events WHERE tenant = ?"),
                           (tenant,)).rowcount,
                rejections=self._forget_rejections(db, tenant))

        return self._write(reset)

    def reset_project(self, project: str) -> ResetCounts:
        """Delete, in one transaction, what reset_catalog deletes of every catalog of
        `project` and reset_tenant of every tenant of it, and every refusal kept
        under the project (those whose request named no catalog or tenant of it too:
        the project's list of refusals shows them). Its events are the user and the
        client events, counted together.

        One transaction, so a reader sees the project as it was or clean, never
        half reset, and a write beside it lands before (and is deleted) or after."""
        spell = self._dialect.spell
        under = reset_marks.project_scope(project)
        came = now_us()

        def reset(db: Any) -> ResetCounts:
            self._mark_reset(db, under, came)
            # The catalogs by their ids written in, as reset_catalog names one on
            # PostgreSQL (see _planned_catalog_id), a statement for many: a
            # statement each took 80-200 ms for 1,000 catalogs of an event there.
            # (The ids are read in this transaction: a catalog made meanwhile is
            # made before it, and reset, or after it.)
            ids = [int(key) for (key,) in db.execute(spell(
                f"SELECT id FROM catalogs WHERE {_UNDER.format('name')} ORDER BY id"),
                _under(under)).fetchall()]
            events = 0
            for start in range(0, len(ids), _IDS_A_STATEMENT):
                of = f"catalog_id IN ({', '.join(map(str, ids[start:start + _IDS_A_STATEMENT]))})"
                events += self._forget_user_events(db, of)
            # (every branch, product and operation named under a catalog of the
            # project, also of one whose events never came: products alone)
            products, operations = self._forget_catalog_parts(db, under, of_catalogs=True)
            cancelled = self._cancel_running(db, f"projects/{project}", under, came,
                                             of_catalogs=True)
            events += db.execute(spell(f"DELETE FROM client_events WHERE "
                                       f"{_UNDER.format('tenant')}"),
                                 _under(under + "tenants/")).rowcount
            rejections = db.execute(spell("DELETE FROM rejections WHERE project = ?"),
                                    (project,)).rowcount
            return ResetCounts(events, products, int(rejections), operations, cancelled)

        return self._write(reset)

    def _mark_reset(self, db: Any, scope: str, came: int) -> None:
        """Record that a reset of `scope` came at `came`: the pixels and write_async
        events answered before it by another process, and committed after it, are
        left out then (see reset_marks), and so are the refusals made before it.
        (Client events are answered once stored: a tenant's reset marks for its
        refusals alone.)"""
        reset_marks.mark(db, self._dialect.spell, self._dialect.name == "postgresql",
                         scope, came)

    def _forget_user_events(self, db: Any, of: str, of_params: Sequence[Any] = ()) -> int:
        """Delete the user events `of` (SQL naming their catalog_id, with `?`) selects,
        and their rollups; how many."""
        spell = self._dialect.spell
        db.execute(spell(f"DELETE FROM product_days WHERE {of}"), of_params)
        return int(db.execute(spell(f"DELETE FROM user_events WHERE {of}"), of_params).rowcount)

    def _forget_catalog_parts(self, db: Any, under: str,
                              of_catalogs: bool = False) -> tuple[int, int]:
        """Delete the products of the branches named under `under` (a catalog's name
        and '/', or with `of_catalogs` a project's: of each of its catalogs) and the
        finished operations named under it (a project's: those under one of its
        catalogs alone, as a catalog's reset deletes them); how many of each."""
        spell = self._dialect.spell
        # a write to the products of those branches, as any other (see
        # SqlStore._bump_generation): every branch with products has a generation
        branches = _UNDER.format("branch")
        db.execute(spell(f"UPDATE product_generations SET generation = generation + 1 "
                         f"WHERE {branches}"), _under(under))
        products = db.execute(spell(f"DELETE FROM products WHERE {branches}"),
                              _under(under)).rowcount
        finished = spell(f"FROM operations WHERE {_UNDER.format('name')} AND done = 1")
        if not of_catalogs:
            return int(products), int(db.execute(f"DELETE {finished}", _under(under)).rowcount)
        # A project's operations under a location alone (or the project alone) are no
        # catalog's: kept, as every catalog's reset keeps them.
        names = [name for (name,) in db.execute(f"SELECT name {finished}",
                                                _under(under)).fetchall()
                 if _CATALOG_PART.match(name, len(under))]
        for part in in_statements(names):
            term, params = self._dialect.among("name", list(part))
            db.execute(f"DELETE FROM operations WHERE {term}", params)
        return int(products), len(names)

    def _cancel_running(self, db: Any, reset: str, under: str, came: int,
                        of_catalogs: bool = False) -> int:
        """Cancel the operations not done named under `under` (as _forget_catalog_parts
        reads it), in the transaction of the reset of `reset` (come at `came`); how many.

        Left running, an import went on storing events in the catalog just reset (a
        purge deleting, a rejoin rewriting them), under the eyes of the test after it.
        A cancel alone (CancelOperation's mark) does not stop that: a job sees it at its
        next step, and that step's writes are kept. So each is ended here, CANCELLED
        with the reset as its reason, and let go: its holder's next step finds it held
        by nobody (LeaseLost) and writes nothing, and no process claims it again; a
        purge's rollup gap is closed, as at any ending. Every write of the store takes
        the writers' turn, so a step is wholly before the reset (and what it wrote is
        deleted by it) or finds the operation ended.

        An export writes nothing in the catalog, and its job names or removes the file
        it writes as it ends: it is asked to cancel, as CancelOperation does, and ends
        CANCELLED at its next step keeping the lines it wrote."""
        # (imported when a reset runs: a CLI reads queries of this module, and needs
        # neither the operations' protos nor the rollups')
        from server.operations.records import cancelled_by_reset
        from server.store.rollups import Gap

        spell = self._dialect.spell
        running = [(name, kind, payload) for name, kind, payload in db.execute(spell(
            f"SELECT name, kind, operation FROM operations WHERE {_UNDER.format('name')} "
            "AND done = 0"), _under(under)).fetchall()
            if not of_catalogs or _CATALOG_PART.match(name, len(under))]
        for name, kind, payload in running:
            if kind.startswith(_EXPORTS):
                db.execute(self._sql.request_cancel, (name,))
                continue
            Gap.close(db, self._dialect, name)
            # (lease_expires_us: when it ended, as a step's ending leaves it, for
            # --operations-keep-days; the request let go, as at any ending)
            db.execute(spell("UPDATE operations SET done = 1, cancel_requested = 1, "
                             "operation = ?, request = ?, lease_owner = NULL, "
                             "lease_expires_us = ? WHERE name = ?"),
                       (cancelled_by_reset(bytes(payload), reset), b"", came, name))
        return len(running)

    def _forget_rejections(self, db: Any, parent: str) -> int:
        """Delete the refusals whose parent is `parent` or under it; how many."""
        under = parent + "/"
        return int(db.execute(self._dialect.spell(
            "DELETE FROM rejections WHERE parent = ? OR substr(parent, 1, ?) = ?"),
            (parent, len(under), under)).rowcount)
