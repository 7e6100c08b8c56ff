"""PostgreSQL store: several replicas on one database, durable group commit.

Same contract as the SQLite store (both pass tests/unit/test_store.py), and the same
SQL where the engines agree (sql.py). The writes of one process go through one
writer thread and connection that commits every queued write in one transaction
(group commit). A batch's event rows go in with one statement that also counts the
new ones in the per-product rollups (a data-modifying CTE: a row that dedup skips
returns nothing, so it counts nothing): a small batch as one JSON parameter (a
batch of one row, every batch at one caller: its columns and its rollup lines as
parameters of their own, see ONE_ROW_LINES), a large one (COPY_FROM_ROWS) by COPY
into a temporary table first (measured on the 2-core machine, JSON against COPY:
100-row batches about even, 1,000-row batches 12k against 14k rows/s). A batch of
rows alone (most of them) is one statement sent in autocommit, the writers' turn taken
by the statement itself, so one round trip (or, when
a catalog of the batch may lack its row, the turn, the catalogs and the rows in pipeline
mode: one round trip too). The pipeline made a durable write of one row 1.0 ms and
430 us of the writer's CPU against 1.5 to 2.5 ms and 800 us with the former executemany,
rollups upsert and explicit transaction (six round trips); the one statement, at 16
callers, 466 against 544 us of the server's CPU per write (bench.ab write-postgres,
2026-12-03). Reads use a connection pool.

The driver is psycopg 3, synchronous, with psycopg_pool: asyncpg measured no faster
at what matters here (COPY of 1,000-row batches, median of five rounds: asyncpg
64k rows/s, psycopg 65k), and the store is called from the gRPC server's threads,
which an asyncio driver would make hop to an event loop and back on every call.

Operations are claimed with SELECT ... FOR UPDATE SKIP LOCKED, and every step
locks its operation's row and checks the lease inside its own transaction, so
two replicas never both apply a step.

A lost connection never crashes anything: event rows are idempotent (dedup key)
and are sent again once the database is back (see group_commit), and so are the
function jobs that may run again (Job.again: all but a job's step) when their
transaction was rolled back; one whose commit was on its way when the connection
dropped, or a job's step, fails with StoreUnavailable (callers retry, jobs resume
from their last committed checkpoint); reads retry once on a fresh connection, then
raise StoreUnavailable. `healthy()` says whether the database answers. A database that
hangs (its connections open, nothing answered) is taken for one that is away once a
statement has waited HANG_SECONDS and a probe found no answer: see hang.py.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shlex
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as NotYet
from dataclasses import replace
from functools import cache, partial
from typing import Any

import orjson
import psycopg
from psycopg.adapt import AdaptersMap
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.string import StrBinaryDumper, StrDumper, StrDumperUnknown
from psycopg_pool import ConnectionPool, PoolTimeout

from server.console.origin import now_us
from server.names import default_branch
from server.store import password_spans, reset_marks
from server.store.group_commit import (
    GroupCommitter,
    Job,
    Outcome,
    apply_in_order,
    commit_only,
)
from server.store.hang import HangWatch, select_one, socket_of
from server.store.migrations import apply_missing, check_readable
from server.store.rollups import COLUMNS as ROLLUP_COLUMNS
from server.store.rollups import NewLine, count_new, new_lines
from server.store.rows import (
    OPERATION_COLUMNS,
    EventRow,
    OperationRecord,
    StoreRefused,
    StoreUnavailable,
    StoreUnusable,
    keep_latest,
)
from server.store.sql import Dialect, SqlStore, Statements

log = logging.getLogger(__name__)

COPY_FROM_ROWS = 100  # below this executemany is quicker than COPY (measured crossover 50..200)
MIGRATION_LOCK = 0x466F6F7466616C6C  # pg_advisory_xact_lock key: "Footfall"
# The writers' turn, taken first by every write transaction (see `_apply_batch`).
WRITERS_LOCK = MIGRATION_LOCK + 1
WRITER_IDLE_SECONDS = 60.0  # a write transaction no statement is sent to ends then
# How long a write waits for a lock (another replica's turn left held, a migration of a
# newer version, a LOCK TABLE by hand) before its batch is tried again as if the
# database were away, its waiting callers told UNAVAILABLE.
LOCK_WAIT_SECONDS = 10.0
_TAKE_TURN = f"SELECT pg_advisory_xact_lock({WRITERS_LOCK})"
# Whether a session of this database waits for the writers' turn: another replica's
# write, held up by a purge's step of this one (see _writes_waiting). (An advisory lock
# of a bigint key shows as its high and low 32 bits, objsubid 1.) A read of the lock
# table: about 0.1 ms, once per chunk a step deletes.
_TURN_WAITED = ("SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND "
                "NOT granted AND database = (SELECT oid FROM pg_database WHERE "
                f"datname = current_database()) AND classid = {WRITERS_LOCK >> 32} AND "
                f"objid = {WRITERS_LOCK & 0xFFFF_FFFF} AND objsubid = 1)")
POOL_SIZE = 10
READ_TIMEOUT = 5.0  # seconds to wait for a pooled connection before UNAVAILABLE
# How long a write somebody waits for is retried while the database is away, unless
# the store is given its own `retry_seconds` (see GroupCommitter).
RETRY_SECONDS = 5.0
DOWN_READ_TIMEOUT = 0.5  # the same while the database is known to be away
PROBE_CONNECT_TIMEOUT = 2  # seconds; the health probe has a connection of its own
# A database that does not answer the probe's SELECT 1 within this many seconds hangs
# (its processes stopped, packets dropped): see server/store/hang.py. Not less: a
# database that is only slow (a busy machine, a checkpoint's fsync) would have its
# statements cut, a purge's step rolled back, writes refused until it answers; with
# HANG_SECONDS and a tick, a write still hears within RETRY_SECONDS.
PROBE_SECONDS = 2.0
# A statement in flight this long has the database probed (see hang.py): one that
# does not answer has its statements cut, the writer's batch retried or its callers
# told UNAVAILABLE within RETRY_SECONDS, as when it is away. A statement of a database
# that answers is never cut, however long (a purge's step, a wait for a lock).
HANG_SECONDS = 1.0
# The pool retries a failed connection with a doubling delay until this many seconds,
# then starts over at 1 s: measured, a 30 s outage is then over for the pool 1.0 s
# after the database is back, against 15 s after a 45 s outage with its default (300).
RECONNECT_SECONDS = 3.0
STARTUP_SECONDS = 15.0  # how long opening the store waits for the database to answer
# ... when read-only, for a command of the CLI (`serve` keeps the longer wait): a
# `talent-events list` of a database that was away waited 13.5 s, saying so 10 times.
READ_ONLY_STARTUP_SECONDS = 4.0
# Defaults for the connection; the URL's own parameters win.
CONNECTION_DEFAULTS = {"application_name": "footfall", "connect_timeout": "5", "keepalives": "1",
                       "keepalives_idle": "10", "keepalives_interval": "5",
                       "keepalives_count": "3"}

_EVENT_COLUMNS = ("event_type, visitor_id, user_id, event_time_us, event_time_ns, joined, "
                  "dedup_key, event, source, received_us, transport")
_DEDUP = "ON CONFLICT (catalog_id, event_time_us, dedup_key) DO NOTHING"
# The events of a small batch go in as one JSON parameter (bytes in hex), read by
# one statement whatever their count: psycopg dumps a list parameter at ~10 us,
# a row's 12 values at ~1 us each, JSON of a few rows at a few.
_JSON_COLUMNS = ("seq integer, catalog text, event_type text, visitor_id text, user_id text, "
                 "event_time_us bigint, event_time_ns smallint, joined smallint, "
                 "dedup_key text, event text, source text, received_us bigint, "
                 "transport smallint, answered bigint")
_JSON_VALUES = ("event_type, visitor_id, user_id, event_time_us, event_time_ns, joined, "
                "decode(dedup_key, 'hex'), decode(event, 'hex'), decode(source, 'hex'), "
                "received_us, transport")
_JSON_ROWS = f"json_to_recordset(%s::json) AS v({_JSON_COLUMNS})"
# The row of a batch of one as parameters (row_params) instead: no JSON to make, parse
# and decode (with one_row: 25-30 us less of the database's CPU, measured beside the
# JSON form, bench/pg_write.py).
_ONE_ROW = ("(SELECT %s::text AS catalog, %s::text AS event_type, %s::text AS visitor_id, "
            "%s::text AS user_id, %s::bigint AS event_time_us, %s::smallint AS event_time_ns, "
            "%s::smallint AS joined, %s::bytea AS dedup_key, %s::bytea AS event, "
            "%s::bytea AS source, %s::bigint AS received_us, %s::smallint AS transport, "
            "%s::bigint AS answered) AS v")
# What the rollups need to know which rows were new (a duplicate returns nothing).
_INSERTED = " RETURNING catalog_id, event_time_us, dedup_key"
_INCOMING = "footfall_incoming_events"
_CREATE_INCOMING = (f"CREATE TEMP TABLE IF NOT EXISTS {_INCOMING} (seq INTEGER, catalog TEXT, "
                    "event_type TEXT, visitor_id TEXT, user_id TEXT, event_time_us BIGINT, "
                    "event_time_ns SMALLINT, joined SMALLINT, dedup_key BYTEA, event BYTEA, "
                    "source BYTEA, received_us BIGINT, transport SMALLINT, answered BIGINT) "
                    "ON COMMIT DELETE ROWS")
_COPY_TYPES = ["int4", "text", "text", "text", "text", "int8", "int2", "int2", "bytea", "bytea",
               "bytea", "int8", "int2", "int8"]
# How many resets were made (a sequence: read as it is now, whatever the snapshot).
_RESETS_MADE = "(SELECT last_value + is_called::int FROM footfall_resets{})"
# The resets newer than a time (second parameter: the batch's oldest row answered
# before its commit), read with a snapshot taken once the writers' turn is held (see
# reset_marks, and migration 16), unless as many resets were made as the first
# parameter says (see _send_events). In a statement that takes the turn itself, the
# count is read for the turn's row (a subquery of it: a one-time filter of the whole
# statement, which its count alone would be, ran before the turn was taken) and the
# function called for the count's row, if there is one; else after the turn's
# statement.
_MARKS_IN_TURN = (
    "marks AS MATERIALIZED (SELECT m.* FROM turn CROSS JOIN LATERAL (SELECT made FROM "
    f"(SELECT {_RESETS_MADE.format(' WHERE turn.held IS NOT NULL')} AS made) AS r "
    "WHERE made <> %s) AS s CROSS JOIN LATERAL footfall_reset_marks(%s, s.made IS NULL) "
    "AS m), ")
_MARKS = (f"marks AS MATERIALIZED (SELECT m.* FROM (SELECT made FROM (SELECT "
          f"{_RESETS_MADE.format('')} AS made) AS r WHERE made <> %s) AS s CROSS JOIN LATERAL "
          "footfall_reset_marks(%s, s.made IS NULL) AS m), ")
# A row not answered before its commit (`answered` NULL), or answered before no reset
# of its catalog (a catalog's, or its project's: a scope that ends with /) found.
_NOT_RESET = ("NOT EXISTS (SELECT FROM marks m WHERE m.mark_at_us > v.answered AND "
              "(m.mark_scope = v.catalog OR (right(m.mark_scope, 1) = '/' AND "
              "left(v.catalog, length(m.mark_scope)) = m.mark_scope)))")
_TURN_FIRST = f"turn AS MATERIALIZED ({_TAKE_TURN} AS held), "


def _inserting(values: str, source: str, first: str = "", answer: str = "count(*)",
               where: str = "", marked: bool = False, one: bool = False) -> tuple[str, str]:
    """The statements that insert the events of `source` (rows `v` numbered by `seq`,
    naming their catalog; `values`: what they give for _EVENT_COLUMNS) in order,
    skipping duplicates, and answer how many were new: the first counts nothing in
    the rollups (no row of the batch would), the second counts the new rows (its
    last parameter: rollups.new_lines). A catalog without a row fails the statement
    (catalog_id NOT NULL), never drops its events: see _send_events. `first`: common
    table expressions that come before the insert's; `answer`: what the statement
    answers (of `ins`, the rows inserted); `where`: which rows of `source` it inserts.
    `marked`: and not those answered before a reset of their catalog came (their
    `answered` time before it; the oldest such time its parameter after `first`'s),
    see reset_marks. `one`: `source` is one row, which needs no order, nor its lines
    matched to it (rollups.count_new)."""
    if marked:
        first += _MARKS_IN_TURN if first.startswith(_TURN_FIRST) else _MARKS
        where = f"{where} AND {_NOT_RESET}" if where else _NOT_RESET
        answer += f", {_RESETS_MADE.format('')}"  # (the resets made, last)
    source += f" WHERE {where}" if where else ""
    order = "" if one else " ORDER BY v.seq"
    insert = (f"INSERT INTO user_events (catalog_id, {_EVENT_COLUMNS}) SELECT (SELECT id "
              f"FROM catalogs WHERE name = v.catalog), {values} FROM {source}{order} "
              f"{_DEDUP}{_INSERTED}")
    return (f"WITH {first}ins AS ({insert}) SELECT {answer} FROM ins",
            f"WITH {first}ins AS ({insert}), counted AS ({count_new('ins', one_row=one)}) "
            f"SELECT {answer} FROM ins")




# A one-row batch's rollup lines as parameters of their own (_one_row_lines) rather
# than JSON summed per product: the rows of a VALUES list, upserted as they are, when
# no two of them are the same product and currency (else nothing to sum) and they are
# this many at most (each count its own statement: see _with_lines). The JSON read,
# grouped, summed and sorted cost the database 30-45 us of its CPU a one-row write of
# a product (in-process, commits not waited for), 20-25 us by bench/pg_write.py at
# load 4.5 (351 against 330 us a write, the writer's as before), 2026-12-07.
ONE_ROW_LINES = 8
_ONE_ROW_COUNTED = count_new("ins", one_row=True)
_LINE = ("(%s::text, %s::text, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, "
         "%s::float8)")
_ROLLUP_UPSERT = _ONE_ROW_COUNTED[_ONE_ROW_COUNTED.index(" ON CONFLICT "):]


@cache
def _with_lines(statement: str, count: int) -> str:
    """`statement` (the second of a one-row pair of _small's: its rollup lines as
    JSON) with `count` lines given as parameters (_one_row_lines's) instead, in the
    same place: the row's day, then each line's product id, currency and sums. Every
    line is a row of its own in product_days (one line each), upserted in key
    order as count_new's are."""
    values = ", ".join([_LINE] * count)
    counted = (f"INSERT INTO product_days ({ROLLUP_COLUMNS}) SELECT i.catalog_id, "
               "%s::bigint, l.product_id, l.currency, l.views, l.add_to_carts, l.purchases, "
               "l.units, l.unpriced_units, l.revenue, 1 "
               f"FROM (VALUES {values}) AS l(product_id, currency, views, add_to_carts, "
               "purchases, units, unpriced_units, revenue) CROSS JOIN ins i "
               'ORDER BY l.product_id COLLATE "C", l.currency COLLATE "C"'
               f"{_ROLLUP_UPSERT}")
    assert statement.count(_ONE_ROW_COUNTED) == 1
    return statement.replace(_ONE_ROW_COUNTED, counted)


def _one_row_lines(lines: Sequence[NewLine]) -> list[Any] | None:
    """The parameters of _with_lines for the lines of one row, or None when they
    are more than ONE_ROW_LINES or two are of the same product and currency (as
    PostgreSQL keeps their text: see _nul_safe), which only JSON's sums count."""
    if len(lines) > ONE_ROW_LINES:
        return None
    seen: set[tuple[str, str]] = set()
    params: list[Any] = [lines[0][3]]  # (the day: the row's, every line's)
    for _, _, _, _, product, currency, views, carts, purchases, units, unpriced, revenue \
            in lines:
        key = (_text(product), _text(currency))
        if key in seen:
            return None
        seen.add(key)
        params += [product, currency, views, carts, purchases, units, unpriced, revenue]
    return params


def _small(joined: str = "", first: str = "", answer: str = "count(*)",
           where: str = "") -> list[list[tuple[str, str]]]:
    """_inserting's pairs for a small batch, by `marked` then by whether the batch is
    one row (_ONE_ROW, else _JSON_ROWS), its source followed by `joined`. One row is
    every batch at one caller: planned as a batch, it cost 25-30 us more of the
    database's CPU a write (2026-12-07, bench/pg_write.py)."""
    return [[_inserting(_EVENT_COLUMNS, f"{_ONE_ROW}{joined}", first, answer, where, marked,
                        one=True) if one else
             _inserting(_JSON_VALUES, f"{_JSON_ROWS}{joined}", first, answer, where, marked)
             for one in (False, True)] for marked in (False, True)]


# Each statement below as a pair, by whether its batch holds rows answered before
# their commit, which it checks against the resets (`marked`); those of a small batch
# by whether it is one row too (see _small).
_SMALL = _small()
_FROM_COPY = [_inserting(_EVENT_COLUMNS, f"{_INCOMING} v", where="v.seq >= %s", marked=m)
              for m in (False, True)]
# The same as _SMALL, the writers' turn taken by the statement itself: a row of
# the batch joins the turn's one row, so no row (and no id from the sequence, taken
# as rows are inserted) comes before the turn is held. One statement, sent alone in
# autocommit, is its own transaction: one round trip, no pipeline, no turn statement.
_SMALL_IN_TURN = _small(" CROSS JOIN turn", _TURN_FIRST)
# Whether no product of the branches a batch's rows were joined with changed since
# they were read (see `products_to_join`): a generation moves with every product write,
# in its transaction. Read by a function with a snapshot of its own, taken when it is
# called: after the writers' turn is held, in a statement that takes it (see
# _MARKS_IN_TURN; `{}`: an argument that makes the call wait for the turn). One branch
# (every batch of one catalog's rows) given by its name and generation (migration 18),
# several by JSON records of both (migration 17; for one branch, 19-41 us more of the
# database's CPU a write, median 31, bench/pg_write.py at load 4-13, 2026-12-07):
# see _unchanged.
_BRANCH_UNCHANGED = "footfall_branch_unchanged(%s::text, %s::bigint, {})"
_BRANCHES_UNCHANGED = "footfall_products_unchanged(%s::json, {})"
_UNCHANGED = {call: f"SELECT {call.format('true')}"
              for call in (_BRANCH_UNCHANGED, _BRANCHES_UNCHANGED)}
# _SMALL_IN_TURN that inserts nothing when the call (a key) says no (its parameters
# first), and answers it beside the count. (Read with the statement's snapshot, taken
# before it waited for the turn, a product another replica changed meanwhile went
# unseen, and the batch was stored joined with what it was before.)
_SMALL_IF_UNCHANGED = {call: _small(
    " CROSS JOIN turn CROSS JOIN unchanged",
    f"{_TURN_FIRST}unchanged AS MATERIALIZED (SELECT "
    f"{call.format('turn.held IS NOT NULL')} AS ok FROM turn), ",
    "count(*), (SELECT ok FROM unchanged)", where="unchanged.ok") for call in _UNCHANGED}


def _unchanged(relied: Collection[tuple[str, int | None]]) -> tuple[str, list[Any]]:
    """The call that says whether the products of the branches `relied` on (branch
    and generation read) are unchanged (a key of _UNCHANGED), and its parameters."""
    if len(relied) == 1:
        [(branch, generation)] = relied
        return _BRANCH_UNCHANGED, [branch, generation]
    return _BRANCHES_UNCHANGED, [orjson.dumps([{"branch": branch, "generation": generation}
                                               for branch, generation in relied]).decode()]


# The products of a branch among some ids, with the branch's generation, as of one
# snapshot (one statement): at least one row, whose product_id is NULL if none is found.
_PRODUCTS_AS_OF = ("SELECT (SELECT generation FROM product_generations WHERE branch = %s), "
                   "p.product_id, p.product FROM (SELECT 1) AS one LEFT JOIN products p "
                   "ON p.branch = %s AND p.product_id = ANY(%s)")
# How many products (or ids found missing) the writer keeps for its joins, all
# branches together: it forgets them all when more would be kept.
JOIN_CACHE_PRODUCTS = 10_000
# How many times a batch is joined again when its products changed before its commit;
# then it is committed as joined with what it last read, as a read before the
# transaction would have done.
REJOIN_TRIES = 3


class _ProductsChanged(Exception):
    """A product a batch's rows were joined with changed before the batch committed."""


# FOR UPDATE: the rows a write reads stay locked against other replicas until it commits.
POSTGRES = Dialect(name="postgresql", mark="%s", lock=" FOR UPDATE", walk="",
                   contains="position(?::bytea in {column}) > 0", arrays=True)


def _text(value: str) -> str:
    """`value` as _nul_safe writes it (JSON may hold NUL, PostgreSQL's text not)."""
    return value.replace("\0", "\ufffd") if "\0" in value else value


def _as_json(rows: Sequence[EventRow], answered: Collection[int] = ()) -> str:
    """The parameter of _JSON_ROWS: `rows` as JSON (text as _nul_safe writes it);
    those whose id() is among `answered` (answered before their commit) say when
    they were received as `answered` too (see _NOT_RESET)."""
    records = [
        {"seq": seq, "catalog": _text(catalog), "event_type": _text(event_type),
         "visitor_id": _text(visitor_id), "user_id": _text(user_id),
         "event_time_us": time_us, "event_time_ns": time_ns, "joined": joined,
         "dedup_key": key.hex(), "event": event.hex(),
         "source": None if source is None else source.hex(), "received_us": received_us,
         "transport": transport}
        for seq, (catalog, event_type, visitor_id, user_id, time_us, time_ns, joined, key,
                  event, source, received_us, transport)
        in enumerate(row.as_params() for row in rows)]
    if answered:
        for record, row in zip(records, rows, strict=True):
            if id(row) in answered:
                record["answered"] = row.received_us
    return orjson.dumps(records).decode()


def _row_params(row: EventRow, answered: Collection[int]) -> list[Any]:
    """The parameters of _ONE_ROW (and a row of COPY): `row`'s columns, and when it was
    received if its id() is among `answered` (answered before its commit, see
    _NOT_RESET)."""
    return [*row.as_params(), row.received_us if id(row) in answered else None]


def _lines_json(lines: Sequence[NewLine]) -> str:
    """The last parameter of the second statement of each of _SMALL's and
    _FROM_COPY's pairs: rollups.new_lines as JSON (a revenue as text: NaN and
    infinities are no JSON numbers)."""
    return orjson.dumps([
        {"n": n, "catalog": _text(catalog), "event_time_us": time_us, "dedup_key": key.hex(),
         "day": day, "product_id": _text(product), "currency": _text(currency),
         "views": views, "add_to_carts": carts, "purchases": purchases, "units": units,
         "unpriced_units": unpriced, "revenue": repr(revenue)}
        for n, (catalog, time_us, key, day, product, currency, views, carts, purchases,
                units, unpriced, revenue) in enumerate(lines)]).decode()


def _nul_safe(dumper: type[Any]) -> type[Any]:
    """`dumper` for str that writes NUL as U+FFFD: SQLite keeps NUL in text, PostgreSQL
    refuses it, and one such text must not fail a whole group-commit batch.
    Only the indexed columns are text; the events themselves are kept as bytes.
    Validation refuses NUL in every id and name kept in a column (README,
    Validation), since here it would merge with U+FFFD; this stays for what is
    kept unchecked (the parent of a refused request)."""

    class NulSafe(dumper):  # type: ignore[misc, valid-type]
        def dump(self, obj: str) -> Any:
            return super().dump(obj.replace("\0", "\ufffd") if "\0" in obj else obj)

    return NulSafe


# Every connection copies its adapters from here. The last dumper registered is the
# one parameters use (unknown-typed text, as in psycopg's defaults); COPY finds the
# others by type.
_ADAPTERS = AdaptersMap(psycopg.adapters)
for _dumper in (StrBinaryDumper, StrDumper, StrDumperUnknown):
    _ADAPTERS.register_dumper(str, _nul_safe(_dumper))


# FATAL answers to a connection attempt that pass with time; any other (no such
# database or role, a refused password) will not, so opening the store fails at once.
_PASSING = ("starting up", "shutting down", "too many", "recovery", "administrator command")
# Words of libpq for a URL it cannot use whatever the server does (a parameter's value
# it refuses, an encryption or a way of authenticating the URL requires that the server
# or client lacks): no FATAL in them, they were waited for 15 s as an outage, then said
# with exit 1.
_NEVER_PASSING = ("for connection option", "invalid target_session_attrs",
                  "invalid load_balance_hosts", "SSL was required",
                  "GSSAPI encryption required", "channel binding required",
                  "authentication method requirement")


_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def url_problem(url: str) -> str | None:
    """What is wrong with a PostgreSQL store URL, in one line that shows no password,
    or None: a parameter libpq does not know (it raised a traceback), no database
    named (libpq then took the user's name, or PGDATABASE's, and Footfall made its
    tables in the `postgres` database), a port or sslmode that no retry makes
    reachable (each was waited for as an outage)."""
    if any("/" in url[start:end] and url[end:end + 1] == "@"
           for start, end in password_spans(url)):
        # libpq reads USER:PA/SS@HOST/DB as host USER, port PA and database SS@HOST/DB,
        # and each was said (a port that is no number, where it waited) with the password
        return ("PostgreSQL store URL: a / in its password is written %2F (libpq reads "
                "USER:PA/SS@HOST/DB as host USER, port PA)")
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        return f"PostgreSQL store URL: {_without_password(_why(exc), url)}"
    if not params.get("dbname"):
        return ("a PostgreSQL store URL names its database: postgresql://USER@HOST:PORT/DB "
                "(create it first: createdb -h HOST -U USER DB)")
    port = str(params.get("port") or "5432")
    # (an empty item of a list of ports is the default port, as libpq reads it)
    if not all(not part or (part.isdigit() and 0 < int(part) < 65536)
               for part in port.split(",")):
        return f"PostgreSQL store URL: the port must be a number from 1 to 65535, got {port!r}"
    timeout = str(params.get("connect_timeout") or "0").strip()
    try:
        int(timeout)  # psycopg's own check, at connect: a traceback (`--5`, `abc`)
    except ValueError:
        return (f"PostgreSQL store URL: connect_timeout must be a whole number of seconds, "
                f"got {timeout[:50]!r}")
    mode = params.get("sslmode")
    if mode is not None and mode not in _SSL_MODES:
        return (f"PostgreSQL store URL: sslmode must be one of {', '.join(_SSL_MODES)}, "
                f"got {str(mode)[:50]!r}")
    return None


def _without_password(text: str, url: str) -> str:
    """`text` (libpq's words, which may quote the URL) with the URL's passwords (see
    server.store.redacted), as written and as decoded, blotted out."""
    written = {url[start:end] for start, end in password_spans(url)} - {""}
    for form in sorted(written | {urllib.parse.unquote(password) for password in written},
                       key=len, reverse=True):
        text = text.replace(form, "***")
    return text


# libpq's words for a database that is not there (a server in another language says
# them otherwise, and is then told no advice)
_NO_DATABASE = re.compile(r'FATAL:\s+database "[^"]*" does not exist')


def _createdb_advice(params: Mapping[str, Any]) -> str:
    """How to make the database a URL names: Footfall makes its tables, never the
    database itself (its role may not be allowed to, and a typo would make one)."""
    where = " ".join(f"-{flag} {shlex.quote(str(params[key]))}"
                     for flag, key in (("h", "host"), ("p", "port"), ("U", "user"))
                     if params.get(key))
    database = str(params.get("dbname", ""))
    command = " ".join(part for part in ("createdb", where, shlex.quote(database)) if part)
    return (f"create it first (Footfall makes its tables, not the database): "
            f"{command}, or CREATE DATABASE \"{database}\" in psql")


def _will_pass(exc: psycopg.OperationalError) -> bool:
    text = str(exc)
    if any(marker in text for marker in _NEVER_PASSING):
        return False
    return "FATAL:" not in text or any(marker in text for marker in _PASSING)


def _why(exc: BaseException) -> str:
    """What the driver said, for the log only: it names the host, port, database or
    user, which callers must not learn."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _told(started: Sequence[Job], unavailable: StoreUnavailable,
          unknown: bool = False) -> StoreUnavailable:
    """`unavailable`, once the function jobs of a batch that ran (`started`) and may
    not run again are answered with it; with `unknown` (the connection broke while
    the commit was on its way: whether they committed is not known), every one. The
    others ran in a transaction rolled back: retried with the batch's rows, their
    callers wait out an outage as an event's do (the one in flight at the cut
    answered UNAVAILABLE at once: a talent client event, a product write)."""
    for job in started:
        if unknown or not job.again:
            job.future.set_exception(unavailable)
    return unavailable


def _close_made(made: Future[psycopg.Connection[Any]]) -> None:
    """Close the connection `made` for nothing (the store closed meanwhile)."""
    if made.exception() is None:
        made.result().close()


def _unreachable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable("the database is unreachable; try again later", _why(exc))


# (claim_operation joins operations, as `o`, with their turns)
_QUALIFIED_OPERATION_COLUMNS = ", ".join(f"o.{c.strip()}" for c in OPERATION_COLUMNS.split(","))


class PostgresStore(SqlStore[psycopg.Cursor[Any]]):
    """Store on one PostgreSQL database, named by a libpq URL (postgresql://...).

    `read_only` (for the CLI): no migration is applied, every session is read-only
    on the server's side, and ValueError when the database is not a Footfall
    store this version can read.
    """

    _sql = Statements(POSTGRES)

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE, retry_seconds: float | None = None,
                 close_seconds: float = 30.0, startup_seconds: float | None = None,
                 read_only: bool = False, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        self.url = url
        self._lock_wait_ms = int(lock_wait_seconds * 1000)
        params = conninfo_to_dict(url)
        for key, value in CONNECTION_DEFAULTS.items():
            params.setdefault(key, value)
        self._read_only = read_only
        if read_only:
            # the server itself then refuses any write in these sessions
            options = params.get("options", "")
            params["options"] = f"{options} -c default_transaction_read_only=on".strip()
        self._conninfo = make_conninfo("", **params)
        self._where = (f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/"
                       f"{params.get('dbname', '')}")
        self._createdb = _createdb_advice(params)
        self._role = str(params.get("user") or "the role")
        self._closed = False
        self._reachable = True
        # The last probe found the database hung (see hang.py): nothing is sent to it,
        # no connection made, until a probe finds it answering (the watch's, or the
        # health check's), so that nothing waits on it meanwhile.
        self._hung = False
        self.outages = 0  # (see Store.outages)
        self._schema_changed: str | None = None  # why no write can commit until a restart
        self._writer_conn: psycopg.Connection[Any] | None = None
        # Of the writer's connection, while it is: the socket the hang watch would cut
        # (hang.socket_of) and the cursor of its one-statement batches, made once
        # (each made and closed at every batch: some 30 us of the writer's CPU a write).
        self._writer_socket: socket.socket | None = None
        self._writer_cursor: psycopg.Cursor[Any] | None = None
        # The writer's next connection while it is being made (see _writer_connection)
        self._connecting: Future[psycopg.Connection[Any]] | None = None
        self._probe_conn: psycopg.Connection[Any] | None = None
        self._probe_lock = threading.Lock()
        self._probed = (0.0, True)  # when the last probe ended (time.monotonic()), its answer
        self._copy_seq = 0
        # Catalogs whose row the writer saw committed (the latest CATALOG_IDS_KEPT, as
        # keys): a batch adds only the others, as no catalog row is ever deleted (a
        # reset keeps it: see console.py). Touched on the writer's thread only.
        self._catalogs: dict[str, None] = {}
        # How many resets were made when the writer last read the count, and when it
        # read it (wall-clock us): see _send_events.
        self._resets_seen: tuple[int, int] | None = None
        # Products the writer read for its joins, per branch: (generation, {id: the
        # product, or None where none was found}); and the generation of the last
        # answer of each branch (see products_to_join). Writer's thread only.
        self._join_products: dict[str, tuple[int | None, dict[str, bytes | None]]] = {}
        # (one entry a branch joined with, forgotten once the batch is applied, never
        # while it is made: its jobs ask for theirs after reads of other branches)
        self._joined_as_of: dict[str, int | None] = {}
        self._join_kept = 0  # products (and ids found missing) in _join_products
        self._migrate(startup_seconds if startup_seconds is not None else
                      READ_ONLY_STARTUP_SECONDS if read_only else STARTUP_SECONDS)
        self._pool = ConnectionPool(self._conninfo, min_size=1, max_size=pool_size, open=True,
                                    kwargs={"autocommit": True, "context": _ADAPTERS},
                                    timeout=READ_TIMEOUT, reconnect_timeout=RECONNECT_SECONDS,
                                    name="footfall-postgres")
        self._committer = GroupCommitter(self._apply_batch, name="footfall-postgres-writer",
                                         retry_seconds=RETRY_SECONDS if retry_seconds is None
                                         else retry_seconds, close_seconds=close_seconds,
                                         relied=self._relied)
        self._hang_watch = HangWatch(self._hangs, lambda: self._hung, after=HANG_SECONDS,
                                     name="footfall-postgres-hang-watch")

    # -- connections -------------------------------------------------------

    def _connect(self, **options: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self._conninfo, autocommit=True, context=_ADAPTERS, **options)

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of its own (in read-only sessions if the store is), in
        autocommit, for `footfall copy`; the caller closes it."""
        return self._connect()

    def _migrate(self, startup_seconds: float) -> None:
        """Apply the migrations this database lacks; the advisory lock makes two
        processes starting at once apply each exactly once (DDL is transactional)."""
        deadline = time.monotonic() + startup_seconds
        delay = 0.1
        said = False
        while True:
            try:
                with self._connect() as conn, conn.transaction():
                    if self._read_only:
                        self._check_readable(conn)
                        return
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                    apply_missing(conn, POSTGRES, f"PostgreSQL at {self._where}")
                return
            except (psycopg.errors.DuplicateTable, psycopg.errors.DuplicateObject) as exc:
                # Another application's table (or index) of a name Footfall's schema
                # uses: one line, as SQLite's "table products already exists" is (it
                # ended the start in a traceback); nothing was applied.
                raise StoreUnusable(
                    f"cannot make Footfall's tables in PostgreSQL at {self._where}: "
                    f"{str(exc).strip()[:200]}, and is not Footfall's: give Footfall a "
                    f"database of its own") from exc
            except psycopg.errors.InsufficientPrivilege as exc:
                # (it ended the start in a traceback)
                raise StoreRefused(self._privilege_refusal(exc)) from exc
            except psycopg.OperationalError as exc:
                # (one line: libpq's "Connection refused\n\tIs the server running ..."
                # came out as two in the log, and as a literal \n\t in the CLI's message)
                why = f"cannot open PostgreSQL at {self._where}: {_why(exc)}"
                if not _will_pass(exc):
                    if not self._read_only and _NO_DATABASE.search(str(exc)):
                        why = f"{why}; {self._createdb}"
                    raise StoreRefused(why) from exc
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(why) from exc
                if not (said and self._read_only):  # (a CLI command says it once)
                    log.warning("waiting for PostgreSQL at %s: %s%s", self._where, _why(exc),
                                f" (up to {startup_seconds:g} s)" if self._read_only else "")
                said = True
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _privilege_refusal(self, exc: psycopg.errors.InsufficientPrivilege) -> str:
        """What a start refused a privilege says: CREATE on the schema lacking (PostgreSQL
        15 gives it on `public` to its owner alone) for tables to make or upgrade; else
        the rows of tables made already (another role's, never granted). The role
        named is the one the session runs as (`options=-c role=...` too)."""
        said = str(exc).splitlines()[0]
        role = self._role
        with contextlib.suppress(psycopg.Error), self._connect() as conn:
            [(role,)] = conn.execute("SELECT current_user").fetchall()
        rows = ("SELECT, INSERT, UPDATE, DELETE on the tables and USAGE on the sequences"
                if not self._read_only else "SELECT on the tables")
        if "must be owner" in said:
            # An upgrade changing a table (an index, a column) of another role's: the
            # grants of its rows are no help (they were said, and the role had them).
            return (f"cannot upgrade Footfall's tables in PostgreSQL at {self._where}: "
                    f"{said}: {role} may use them but an upgrade changes them: start this "
                    f"version once as the tables' owner (the role that made them), or make "
                    f"{role} their owner")
        if "for schema" not in said:
            return (f"cannot {'read' if self._read_only else 'use'} Footfall's tables in "
                    f"PostgreSQL at {self._where}: {said}: grant {role} {rows} (as their "
                    f"owner)")
        return (f"cannot make or upgrade Footfall's tables in PostgreSQL at {self._where}: "
                f"{said}: {role} needs CREATE on the schema for the first start and for each "
                f"upgrade (GRANT CREATE ON SCHEMA public TO {role}, or make it the database's "
                f"owner), or start once as a role that has it and grant {role} {rows}")

    def _check_readable(self, conn: psycopg.Connection[Any]) -> None:
        [(table,)] = conn.execute("SELECT to_regclass('schema_migrations')").fetchall()
        applied = None if table is None else {
            v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        check_readable(applied, f"PostgreSQL at {self._where}",
                       backup="`pg_dump --format=custom`")

    def _writer(self, answer_by: float | None) -> psycopg.Connection[Any]:
        """The writer's connection, made if need be (see _writer_connection)."""
        self._refuse_hung()
        conn = self._writer_conn
        if conn is None or conn.closed:
            self._drop_writer()
            conn = None
            try:
                conn = self._writer_connection(answer_by)
                with self._hang_watch.watching(conn):
                    conn.execute(_CREATE_INCOMING)
                    # A transaction of this connection left open (its process stopped,
                    # its host gone) ends within WRITER_IDLE_SECONDS, and lets go of
                    # the writers' turn every replica waits for.
                    conn.execute(f"SET idle_in_transaction_session_timeout = "
                                 f"{int(WRITER_IDLE_SECONDS * 1000)}")
                    conn.execute(f"SET lock_timeout = {self._lock_wait_ms}")
            except psycopg.OperationalError as exc:
                if conn is not None:
                    conn.close()
                self._set_reachable(False, exc)
                raise _unreachable(exc) from exc
            self._writer_conn = conn
            self._writer_socket = socket_of(conn)
            self._writer_cursor = conn.cursor()
            # (a new connection may be to a database restored meanwhile)
            self._catalogs.clear()
            self._known_catalog_ids = None  # (the reads' too: see _planned_catalog_id)
            self._forget_products()
        return conn

    def _drop_writer(self) -> None:
        """Close the writer's connection, if any, and what is kept of it."""
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None
        if self._writer_socket is not None:
            self._writer_socket.close()
            self._writer_socket = None
        self._writer_cursor = None

    def _writer_connection(self, answer_by: float | None) -> psycopg.Connection[Any]:
        """A new connection for the writer, made on a thread of its own and waited
        for until `answer_by` (time.monotonic(): when the first write of the batch
        that needs it is to be answered), else StoreUnavailable, the connection
        still under way for the next try. A database that takes connections and
        answers nothing (its processes stopped, packets dropped) kept a write
        waiting for its connect_timeout (5 s), and the writes queued meanwhile for
        the next try's as well (9.7 s): a connection is not a statement, which the
        hang watch cuts."""
        if self._connecting is None:
            made: Future[psycopg.Connection[Any]] = Future()
            self._connecting = made

            def connect() -> None:
                try:
                    made.set_result(self._connect())
                except BaseException as exc:  # (raised on the writer's thread)
                    made.set_exception(exc)

            threading.Thread(target=connect, name="footfall-postgres-connect",
                             daemon=True).start()
        try:
            conn = self._connecting.result(
                None if answer_by is None else max(0.0, answer_by - time.monotonic()))
        except NotYet:
            unavailable = StoreUnavailable("the database is unreachable; try again later",
                                           "no connection taken yet")
            self._set_reachable(False, unavailable)
            raise unavailable from None
        finally:
            if self._connecting.done():
                self._connecting = None
        return conn

    def _writes_waiting(self, cur: psycopg.Cursor[Any]) -> bool:
        """Whether writes wait for the step being applied: this process's, queued for
        its writer, or another replica's, waiting for the writers' turn the step
        holds (which its own queue cannot show: a step that looked at that alone
        held another replica's writes for its whole batch)."""
        if self._committer.waiting:
            return True
        found = cur.execute(_TURN_WAITED).fetchone()
        return bool(found and found[0])

    def _set_reachable(self, reachable: bool, why: BaseException | None = None) -> None:
        if reachable != self._reachable:
            if reachable:
                log.warning("PostgreSQL at %s answers again", self._where)
            else:
                log.error("PostgreSQL at %s is unreachable: %s", self._where, why)
                self.outages += 1
        self._reachable = reachable

    def _refuse_hung(self) -> None:
        """StoreUnavailable, at once, while the database is found hung (see hang.py)."""
        if self._hung:
            raise StoreUnavailable("the database is unreachable; try again later",
                                   f"PostgreSQL at {self._where} does not answer")

    def data_version(self) -> str:
        """See Store.data_version: the database cluster's current snapshot (the
        transactions completed and under way). Every write of every replica commits
        a transaction with an id, which changes it once it commits: it completes,
        ending its place among those under way or moving the snapshot's end past
        it. (Writes to the cluster's other databases change it too.)"""
        return str(self._fetch("SELECT txid_current_snapshot()::text", ())[0][0])

    def _fetch(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows of a read; a stale pooled connection (database restarted) is retried
        once on a fresh one. StoreUnavailable when the database does not answer."""
        self._refuse_hung()
        timeout = READ_TIMEOUT if self._reachable else DOWN_READ_TIMEOUT
        for attempt in (1, 2):
            try:
                with self._pool.connection(timeout=timeout) as conn, \
                        self._hang_watch.watching(conn):
                    return conn.execute(query, params).fetchall()
            except PoolTimeout as exc:
                raise _unreachable(exc) from exc
            except psycopg.OperationalError as exc:
                # (cut for a database that hangs: the pool's check would hang on it)
                if attempt == 2 or self._hung:
                    raise _unreachable(exc) from exc
                self._pool.check()  # drop the other connections that died with this one
        raise AssertionError("unreachable")

    def _stream(self, query: str, params: Sequence[Any], size: int) -> Iterator[Any]:
        """As _fetch, through a server-side cursor (in a transaction of its own):
        `size` rows at a time cross the socket, where a client cursor received them
        all before the first was used; planned as _fetch's query is (a cursor is
        planned for its first tenth of rows by default, cursor_tuple_fraction, where
        the whole is read). A stale pooled connection is retried once, before any
        row was handed over."""
        self._refuse_hung()
        timeout = READ_TIMEOUT if self._reachable else DOWN_READ_TIMEOUT
        for attempt in (1, 2):
            handed = False
            try:
                with self._pool.connection(timeout=timeout) as conn, conn.transaction(), \
                        conn.cursor(name="footfall_stream") as cursor:
                    with self._hang_watch.watching(conn):
                        conn.execute("SET LOCAL cursor_tuple_fraction = 1")
                        cursor.execute(query, params)
                        rows = cursor.fetchmany(size)
                    while rows:
                        handed = True
                        yield from rows
                        with self._hang_watch.watching(conn):
                            rows = cursor.fetchmany(size)
                    return
            except PoolTimeout as exc:
                raise _unreachable(exc) from exc
            except psycopg.OperationalError as exc:
                if handed or attempt == 2 or self._hung:
                    raise _unreachable(exc) from exc
                self._pool.check()
        raise AssertionError("unreachable")

    # -- writes ------------------------------------------------------------

    def _insert_events(self, cur: psycopg.Cursor[Any], rows: Sequence[EventRow],
                       answered: Collection[int] = ()) -> int:
        """Insert `rows` in order, skipping duplicates; how many were new. `answered`:
        see _send_events."""
        if not rows:
            return 0
        marked = self._send_events(cur, rows, answered=answered)
        found = cur.fetchone()
        assert found is not None
        if marked:
            self._saw_resets(int(found[-1]))
        return int(found[0])

    def _send_events(self, cur: psycopg.Cursor[Any], rows: Sequence[EventRow],
                     in_turn: bool = False, unchanged: tuple[str, list[Any]] | None = None,
                     answered: Collection[int] = ()) -> bool:
        """Insert `rows` in order, skipping duplicates, and count the new ones in the
        rollups, with one statement (after the catalogs'), whose one row is how many
        rows were new. In pipeline mode (`_apply_batch`) nothing waits for it.
        `in_turn`: the statement takes the writers' turn itself (a small batch whose
        catalogs all have their row); and with `unchanged` (_unchanged's call and its
        parameters) inserts nothing unless the products its rows were joined with are
        unchanged, which its row says beside the count. `answered`: the id() of the rows
        answered before their commit, left out if a reset of their catalog came
        after them (see reset_marks), read once the turn is held. Whether the
        statement checks them (and answers the count of resets made, last)."""
        # (but the catalogs seen committed: a tenth less of the writer's CPU a one-row
        # write, a statement less)
        self._add_catalogs(cur, rows, known=self._catalogs)
        oldest = reset_marks.oldest_answered([row for row in rows if id(row) in answered]) \
            if answered else None
        marked = oldest is not None
        if len(rows) < COPY_FROM_ROWS:
            one = len(rows) == 1
            params = _row_params(rows[0], answered) if one else [_as_json(rows, answered)]
            if not in_turn:
                statements = _SMALL[marked][one]
            elif unchanged is None:
                statements = _SMALL_IN_TURN[marked][one]
            else:
                call, checked = unchanged
                statements = _SMALL_IF_UNCHANGED[call][marked][one]
                params[0:0] = checked
        else:
            first = self._copy_seq
            with cur.copy(f"COPY {_INCOMING} (seq, catalog, {_EVENT_COLUMNS}, answered) FROM "
                          "STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_COPY_TYPES)
                for seq, row in enumerate(rows, start=first):
                    copy.write_row((seq, *_row_params(row, answered)))
            self._copy_seq = first + len(rows)
            params = [first]
            statements = _FROM_COPY[marked]
        if oldest is not None:  # (its parameters follow those of the turn and `unchanged`)
            # The resets need not be read when as many were made as when this writer
            # last saw a count and the oldest row came after: a reset made since
            # counts one more, and one made before that came before the row.
            seen = self._resets_seen
            made = seen[0] if seen is not None and oldest >= seen[1] else -1
            at = 0 if unchanged is None or not in_turn else len(unchanged[1])
            params[at:at] = [made, oldest]
        lines = new_lines(rows)
        given = _one_row_lines(lines) if lines and len(rows) == 1 else None
        if given is not None:
            cur.execute(_with_lines(statements[1], len(lines)), [*params, *given])
        elif lines:
            cur.execute(statements[1], [*params, _lines_json(lines)])
        else:
            cur.execute(statements[0], params)
        return marked

    def _saw_resets(self, made: int) -> None:
        """Note that `made` resets were made (a marked statement's last answer), as
        of now: a row received from now on needs no reset made before."""
        if self._resets_seen is None or self._resets_seen[0] != made:
            self._resets_seen = (made, now_us())

    def _update_events(self, cur: psycopg.Cursor[Any],
                       updates: Sequence[tuple[int, bool, bytes, bytes | None]]) -> None:
        # One statement for the batch; an id updated twice keeps its last update (as
        # executemany would), which one UPDATE ... FROM could not say.
        latest = {i: (i, int(j), p, src) for i, j, p, src in updates}
        ids, joined, payloads, sources = (list(c) for c in zip(*latest.values(), strict=True))
        cur.execute("UPDATE user_events AS u SET joined = v.joined, event = v.event, "
                    "source = v.source FROM unnest(%s::bigint[], %s::smallint[], "
                    "%s::bytea[], %s::bytea[]) AS v(id, joined, event, source) "
                    "WHERE u.id = v.id", (ids, joined, payloads, sources))

    def _apply_batch(self, jobs: list[Job]) -> None:
        """Commit `jobs`; the rows of join jobs made from products that changed since
        they were read are made again (in `jobs`, in place) and the batch tried again."""
        try:
            for tries in range(1, REJOIN_TRIES + 1):
                if tries == REJOIN_TRIES:
                    for job in jobs:  # as joined with what was just read, unchecked
                        job.relied = None
                if self._applied(jobs):
                    return
                log.debug("products changed before a batch of %d writes committed: joined "
                          "again", len(jobs))
                self._forget_products()
                self._committer.rejoin(jobs)
        finally:
            # Its join jobs hold what they relied on (Join.relied), and the next
            # batch's are told theirs again as they are read: kept, one entry for
            # each catalog ever joined grew without end.
            self._joined_as_of.clear()

    def _applied(self, jobs: list[Job]) -> bool:
        """Commit `jobs` and settle them; False (nothing committed) when a product
        their rows were joined with changed since it was read."""
        conn = self._writer(self._committer.answer_by(jobs))
        with self._hang_watch.watching(conn, self._writer_socket):
            return self._applied_on(conn, jobs)

    def _applied_on(self, conn: psycopg.Connection[Any], jobs: list[Job]) -> bool:
        """_applied on the writer's connection `conn`."""
        started: list[Job] = []
        relied = {job.relied for job in jobs if job.relied is not None}
        unchanged = _unchanged(relied) if relied else None

        def call(cur: psycopg.Cursor[Any], job: Job) -> tuple[Any, BaseException | None]:
            assert job.fn is not None
            started.append(job)
            try:
                with conn.transaction():  # a savepoint: one job's failure spares the rest
                    return job.fn(cur), None
            except Exception as exc:
                # (a value the database can never take fails its own job, as any
                # other error of the job's, not the batch: it is no outage)
                if conn.broken or (isinstance(exc, psycopg.OperationalError) and
                                   not isinstance(exc, psycopg.errors.ProgramLimitExceeded)):
                    raise
                return None, exc

        # Every write transaction of every replica takes the writers' turn before it
        # takes an id or a row lock, and keeps it until it has committed: so ids
        # (taken from a sequence as rows are inserted) become visible in their order,
        # and a watch, which reads after the last id it saw, never steps over an id
        # whose row commits later through another replica. Replicas' commits follow
        # each other, each a whole group of writes. No deadlock: the one statement of
        # a batch of rows takes its tables' locks (ROW EXCLUSIVE, which no write
        # conflicts with) before the turn, and no write holding the turn waits for a
        # table lock that conflicts with those (rollups.Gap.open takes none).
        self._copy_seq = 0
        committing = False  # the COMMIT of the batch's transaction is on its way
        rows = [row for job in jobs if job.rows is not None for row in job.rows]
        known = self._catalogs.keys() >= {row.catalog for row in rows}
        # (those answered before their commit, checked against the resets)
        answered = {id(row) for row in reset_marks.answered_rows(jobs)}
        # A flush's jobs (commit_only) are answered by the commit of the rows beside
        # them, which is all they wait for: with them, a pixel and the flush of a read
        # that waits for it went the long way (BEGIN, turn, rows, SAVEPOINT, RELEASE,
        # COMMIT: six round trips, not one). Alone, a flush still commits a
        # transaction, which says whether the database answers.
        flushes = [job for job in jobs if job.rows is None]
        rows_alone = all(job.fn is commit_only for job in flushes) and bool(rows or not flushes)
        try:
            if len(rows) < COPY_FROM_ROWS and rows_alone and (known or unchanged is None):
                # Rows alone (most batches): one round trip. Their catalogs known to
                # have a row, one statement in autocommit, turn included. Else in
                # pipeline mode: the statements go out at once, and up to the Sync
                # that ends the pipeline they are one implicit transaction, committed
                # at the Sync (rolled back whole on an error), answered once
                # committed. (Not conn.transaction(): inside a pipeline it syncs after
                # BEGIN and before COMMIT, three round trips.) A batch joined with
                # products to check whose catalog may lack its row takes the long way.
                outcomes: list[Outcome] = [(job, None, None) for job in flushes]
                if rows and known:
                    cur = self._writer_cursor
                    assert cur is not None  # (made with the connection)
                    marked = self._send_events(cur, rows, in_turn=True,
                                               unchanged=unchanged, answered=answered)
                    if unchanged is not None or marked:
                        answer = cur.fetchone()
                        if unchanged is not None and (answer is None or not answer[1]):
                            return False
                        if marked and answer is not None:
                            self._saw_resets(int(answer[-1]))
                elif rows:
                    with conn.pipeline(), conn.cursor() as cur:
                        cur.execute(_TAKE_TURN)
                        self._send_events(cur, rows, answered=answered)
            else:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(_TAKE_TURN)
                    if unchanged is not None:
                        self._check_unchanged(cur, unchanged)
                    outcomes = apply_in_order(
                        jobs, partial(self._insert_events, cur, answered=answered),
                        partial(call, cur))
                    committing = True  # (as the block ends)
        except _ProductsChanged:
            return False
        except psycopg.errors.ProgramLimitExceeded:
            # A value past what the database can ever take (an index row over 2,704
            # bytes, SQLSTATE 54000): no retry makes it pass, so it is no outage (taken
            # for one, it was tried again for seconds, every write refused meanwhile).
            # Raised as it is, its batch is committed again one job at a time, and
            # the job that holds it fails alone (group_commit).
            raise
        except psycopg.OperationalError as exc:
            # Connection lost, deadlock, serialization failure, admin shutdown: the
            # rows are sent again, and so are the function jobs that may run again,
            # unless the connection broke with the commit on its way (it may have
            # committed or not: their callers hear StoreUnavailable, and retry).
            unknown = committing and (conn.broken or conn.closed)
            if conn.broken or conn.closed:
                self._drop_writer()
                self._set_reachable(False, exc)
                unavailable = _unreachable(exc)
            elif isinstance(exc, psycopg.errors.LockNotAvailable):
                unavailable = StoreUnavailable(
                    f"the database kept the write waiting for a lock over "
                    f"{self._lock_wait_ms / 1000:g} s; try again later", _why(exc))
            else:
                unavailable = StoreUnavailable("the write was interrupted; try again",
                                               _why(exc))
            raise _told(started, unavailable, unknown) from exc
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            # The tables changed under this server: a newer version migrated the
            # database. What it cannot write now stays queued, and the health check
            # says NOT_SERVING, until it is restarted as that version.
            self._schema_changed = ("the database was migrated by a newer Footfall: this "
                                    "server must be restarted as that version")
            log.error("%s (%s)", self._schema_changed, _why(exc))
            self._drop_writer()  # (its prepared statements name what is gone)
            unavailable = StoreUnavailable(f"{self._schema_changed}; try again later",
                                           _why(exc))
            raise _told(started, unavailable) from exc
        except psycopg.errors.NotNullViolation as exc:
            # A catalog row deleted by hand (or a database restored meanwhile): when
            # the batch skipped adding a catalog, it is tried again (StoreUnavailable:
            # see group_commit) and then adds every one; else it fails.
            skipped = self._catalogs.keys() & {row.catalog for row in rows}
            self._catalogs.clear()
            self._known_catalog_ids = None
            if not skipped:
                raise
            unavailable = StoreUnavailable("the write was interrupted; try again", _why(exc))
            raise _told(started, unavailable) from exc
        self._set_reachable(True)
        self._schema_changed = None
        # The rows of row jobs were inserted outside any savepoint: their catalogs are
        # committed now.
        self._catalogs.update(dict.fromkeys(row.catalog for row in rows))
        keep_latest(self._catalogs)  # (see rows.CATALOG_IDS_KEPT)
        self._committer.settle(jobs, outcomes)
        return True

    @staticmethod
    def _check_unchanged(cur: psycopg.Cursor[Any], unchanged: tuple[str, list[Any]]) -> None:
        """_ProductsChanged (rolling back the transaction) unless the products named
        by `unchanged` (_unchanged's call and parameters) are unchanged."""
        call, params = unchanged
        found = cur.execute(_UNCHANGED[call], params).fetchone()
        if found is None or not found[0]:
            raise _ProductsChanged

    # -- the products of the writer's joins ---------------------------------

    def products_to_join(self, branch: str, product_ids: Sequence[str]) -> dict[str, bytes]:
        """The products of `branch` among `product_ids`, from those the writer read
        before when it knows them all (read again otherwise): the batch's statement
        then inserts nothing if the branch's generation has moved since (`relied`),
        and the batch is joined again. A round trip less per batch. Writer only."""
        wanted = list(dict.fromkeys(product_ids))
        entry = self._join_products.get(branch)
        if entry is None or any(pid not in entry[1] for pid in wanted):
            rows = self._fetch(_PRODUCTS_AS_OF, (branch, branch, wanted))
            generation = rows[0][0]
            if self._join_kept + len(wanted) > JOIN_CACHE_PRODUCTS:
                # (what the jobs made meanwhile were read as of stays: see _relied)
                self._join_products.clear()
                self._join_kept = 0
                entry = None
            if entry is None or entry[0] != generation:
                self._join_kept -= 0 if entry is None else len(entry[1])
                entry = (generation, {})
                self._join_products[branch] = entry
            known = entry[1]
            before = len(known)
            known.update(dict.fromkeys(wanted))
            known.update((pid, bytes(payload)) for _, pid, payload in rows if pid is not None)
            self._join_kept += len(known) - before
        known = entry[1]
        self._joined_as_of[branch] = entry[0]
        return {pid: payload for pid in wanted if (payload := known[pid]) is not None}

    def _relied(self, catalog: str) -> tuple[str, int | None] | None:
        """What the products a join job of `catalog` was just made from were read as
        of (the committer keeps it on the job): its branch and generation; None when
        they were not read by products_to_join (nothing to check)."""
        branch = default_branch(catalog)
        if branch not in self._joined_as_of:
            return None
        return branch, self._joined_as_of[branch]

    def _forget_products(self) -> None:
        self._join_products.clear()
        self._joined_as_of.clear()
        self._join_kept = 0

    def _refuse_unwaited(self, through_outage: bool = False) -> None:
        # Never acknowledge what may not be stored: refused while the database is away
        # (a write_async caller hears UNAVAILABLE and sends it again). A browser's pixel
        # (`through_outage`) is never sent again: refused, it was lost for good (kept
        # only as a refusal, itself queued until the database is back), so it waits in
        # the queue, within MAX_UNCOMMITTED, as the refusal would have.
        if not self._reachable and not through_outage:
            raise StoreUnavailable("the database is unreachable; events cannot be accepted")
        if self._schema_changed is not None:
            raise StoreUnavailable(f"{self._schema_changed}; events cannot be accepted")

    # -- operations --------------------------------------------------------

    def claim_operation(self, owner: str, now_us: int, lease_us: int,
                        can_take: Callable[[str], bool],
                        kinds: Collection[str] | None = None,
                        lapsed_before_us: int | None = None) -> OperationRecord | None:
        of_kind = "" if kinds is None else "AND kind = ANY(%(kinds)s) "
        lapsed = now_us if lapsed_before_us is None else lapsed_before_us

        def claim(cur: psycopg.Cursor[Any]) -> OperationRecord | None:
            # Holders with a live lease that `can_take` still calls dead (a process
            # of this host that is gone), then the oldest free operation nobody has
            # locked: another replica claiming or stepping it right now is skipped.
            holders = cur.execute(
                "SELECT DISTINCT lease_owner FROM operations WHERE done = 0 AND "
                "lease_owner <> %s AND lease_expires_us >= %s", (owner, lapsed)).fetchall()
            dead = [holder for (holder,) in holders if can_take(holder)]
            # Each project's n-th operation not done before any project's (n+1)-th,
            # oldest first within a turn (rows.in_turn).
            row = cur.execute(
                f"WITH turns AS (SELECT name, row_number() OVER (PARTITION BY "
                f"split_part(name, '/', 2) ORDER BY create_time_us, name) AS turn "
                f"FROM operations WHERE done = 0 {of_kind}) "
                f"SELECT {_QUALIFIED_OPERATION_COLUMNS} FROM operations o JOIN turns USING (name) "
                "WHERE (lease_owner IS NULL OR lease_owner = %(owner)s OR "
                "COALESCE(lease_expires_us, 0) < %(lapsed)s OR lease_owner = ANY(%(dead)s)) "
                "ORDER BY turns.turn, o.create_time_us, o.name LIMIT 1 FOR UPDATE OF o SKIP LOCKED",
                {"owner": owner, "lapsed": lapsed, "dead": dead,
                 "kinds": None if kinds is None else list(kinds)}).fetchone()
            if row is None:
                return None
            record = OperationRecord.from_row(row)
            lost = int(record.lease_owner is not None and record.lease_owner != owner)
            cur.execute(self._sql.take_lease, (owner, now_us + lease_us, lost, record.name))
            return replace(record, lost_tries=record.lost_tries + lost)

        return self._write(claim)

    # -- lifecycle ---------------------------------------------------------

    def healthy(self) -> bool:
        """Whether the database answers now (SELECT 1 on a connection of the probe's
        own, so that a busy pool never reads as an outage, within PROBE_SECONDS) and
        takes this server's writes (not since a newer version migrated it)."""
        return self._answers(time.monotonic()) and self._schema_changed is None

    def _answers(self, since: float) -> bool:
        """Whether the database answers the probe now; one that does not within its
        deadlines (PROBE_CONNECT_TIMEOUT, PROBE_SECONDS) is noted as hung, until one
        that does (see hang.py). `since` (time.monotonic()): what a probe that ended
        after it found will do, so that the health check and the hang watch, which
        wait for each other's probe, do not each wait as long again for their own."""
        with self._probe_lock:
            if self._closed:
                return False
            if self._probed[0] > since:
                return self._probed[1]
            answered = self._probe()
            self._probed = (time.monotonic(), answered)
            return answered

    def _hangs(self, since: float) -> bool:
        """Whether the database hangs, as _answers finds (not one that refuses a
        connection, or answers with an error: its statements are not waiting on it)."""
        return not self._answers(since) and self._hung

    def _probe(self) -> bool:
        """_answers, probing (with the probe's lock held)."""
        for attempt in (1, 2):  # a connection that died in a restart: once more, fresh
            try:
                if self._probe_conn is None:
                    self._probe_conn = self._connect(connect_timeout=PROBE_CONNECT_TIMEOUT)
                select_one(self._probe_conn, PROBE_SECONDS)
                break
            except (psycopg.Error, TimeoutError) as exc:
                if self._probe_conn is not None:
                    self._probe_conn.close()
                    self._probe_conn = None
                # (no second try for a database that hangs: it would wait as long again)
                hung = isinstance(exc, (TimeoutError, psycopg.errors.ConnectionTimeout))
                if attempt == 2 or hung:
                    self._hung = hung
                    self._set_reachable(False, exc)
                    return False
        self._hung = False
        self._set_reachable(True)
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._committer.close()
        with self._probe_lock:
            self._closed = True
        self._hang_watch.close()
        with self._probe_lock:
            if self._probe_conn is not None:
                self._probe_conn.close()
        self._pool.close()
        if self._connecting is not None:  # (made once nobody will use it)
            self._connecting.add_done_callback(_close_made)
        self._drop_writer()
