"""Per-product-per-day rollups of the shop's product events, kept in the
transaction that stores, rewrites or deletes the events they count, so that the
per-product table (server/insights/tables.py) reads a row per product and day
instead of decoding every event (bench/REPORT.md section 9).

A row of `product_days` is (catalog_id, day, product_id, currency). Currency ""
holds the counts of the events naming the product that day (views, add-to-carts,
purchases, units, units purchased without a price); a currency code holds the
revenue of the units priced in it. `lines` counts what was added to a row (an
event's part in it): a row whose lines fall to 0 counts nothing and is deleted,
so a product whose events were all purged is listed no more. One more row a day,
EVENTS (no product id, currency "*", never a code), counts the day's events of
the three types in `views`: what the table's `events_read` adds up.

Only events actually stored count: the writers add the contributions of the rows
their INSERT reports as inserted (a duplicate that dedup skips adds nothing),
and take away those of the rows a DELETE reports as deleted.

A purge whose filter is a time range only need not decode the events of the UTC
days it covers whole (9 µs each on the writer): its first batch opens a *gap*
(`rollup_gaps`, one row per operation), drops those days' rows, and counts again
only their events it will not delete (outside its fixed id range; normally none).
An event inside an open gap (its catalog, a whole day, an id in the range) counts
nowhere, so no writer decodes it: not the purge deleting it, not another purge or a
rejoin. The gap closes when its operation ends (done, cancelled, failed) or is
deleted: the events of it still stored (a cancelled purge's) are counted again.
New events always have higher ids than the range (see Gap.open), so they count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from footfall.retail.v2 import user_event_pb2

from server.store.packed import own_fields
from server.store.shapes import in_statements, rows_sql

if TYPE_CHECKING:
    from server.store.rows import EventQuery, EventRow
    from server.store.sql import Dialect, Executes

DAY_US = 86_400 * 1_000_000
NO_BOUND_US = 2**62  # a gap's time bound on a side the purge leaves open
PRODUCT_TYPES = ("detail-page-view", "add-to-cart", "purchase-complete")
_KIND = {kind: i for i, kind in enumerate(PRODUCT_TYPES)}
DEFAULT_CURRENCY = "USD"  # Google's default for a price without a currency code
_FILL_PAGE = 20_000  # events the migration decodes at once

# One event's part in one row: product id, currency ("": the counts), views,
# add-to-carts, purchases, units, unpriced units, revenue. Made once per event
# where it is parsed (EventRow), so the writer only sums.
Line = tuple[str, str, int, int, int, int, int, float]
Counts = tuple[Line, ...]
# the currency and counts of a view's and of an add-to-cart's line
_TAILS = (("", 1, 0, 0, 0, 0, 0.0), ("", 0, 1, 0, 0, 0, 0.0))
EVENTS = ("", "*")  # (product id, currency) of a day's count of events

COLUMNS = ("catalog_id, day, product_id, currency, views, add_to_carts, purchases, units, "
           "unpriced_units, revenue, lines")
_SUMMED = ("views", "add_to_carts", "purchases", "units", "unpriced_units", "revenue", "lines")
_ON_CONFLICT = ("ON CONFLICT (catalog_id, day, product_id, currency) DO UPDATE SET "
                + ", ".join(f"{c} = product_days.{c} + excluded.{c}" for c in _SUMMED))
_ARRAY_TYPES = ("integer", "bigint", "text", "text", "bigint", "bigint", "bigint", "bigint",
                "bigint", "float8", "bigint")


def product_counts(event: Any) -> Counts | None:
    """The lines a UserEvent adds to its day's rows; None when its type counts in none."""
    kind = _KIND.get(event.event_type)
    return None if kind is None else _lines(kind, event)


def _lines(kind: int, event: Any) -> Counts:
    """The lines of a UserEvent whose type is PRODUCT_TYPES[kind]."""
    details = event.product_details
    if kind != 2:
        tail = _TAILS[kind]
        if len(details) == 1:  # (most events: 20% less time, which writes and purges pay)
            return ((details[0].product.id, *tail),)
        return tuple((pid, *tail) for pid in dict.fromkeys(d.product.id for d in details))
    units: dict[str, list[int]] = {}  # product -> [units, unpriced units]
    revenue: dict[tuple[str, str], float] = {}
    for detail in details:
        pid = detail.product.id
        count = detail.quantity.value if detail.HasField("quantity") else 1
        of = units.setdefault(pid, [0, 0])
        of[0] += count
        price = detail.product.price_info
        if price.price:
            key = (pid, price.currency_code or DEFAULT_CURRENCY)
            revenue[key] = revenue.get(key, 0.0) + price.price * count
        else:
            of[1] += count
    return (*((pid, "", 0, 0, 1, n, unpriced, 0.0) for pid, (n, unpriced) in units.items()),
            *((pid, currency, 0, 0, 0, 0, 0, amount)
              for (pid, currency), amount in revenue.items()))


def counts_of_payload(payload: bytes) -> Counts | None:
    """product_counts of a serialized UserEvent."""
    return product_counts(user_event_pb2.UserEvent.FromString(payload))


def counts_of_stored(stored: bytes, event_type: str) -> Counts | None:
    """product_counts of an event as a row stores it (packed.py), of type `event_type`
    (its column). Not rebuilt first: what a packed event leaves out (its type,
    visitor, time and user id) is none of what its lines read, and the rest parses
    as it is (a user_info without the user id is one still). For the 30,800 product
    events of a bench purge's part day: 1.2 µs each to parse, where rebuilding them
    took 3 µs more."""
    kind = _KIND.get(event_type)
    if kind is None:
        return None
    return _lines(kind, user_event_pb2.UserEvent.FromString(own_fields(stored)))


class Tally:
    """The changes one write makes to the rollups, summed per row, then applied with
    one upsert (a few for a very large write)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, int, str, str], list[Any]] = {}
        self._days: dict[tuple[int, int], int] = {}  # events added to a day's EVENTS
        self._lost = False  # something was taken away: rows may have fallen to 0

    def add(self, catalog_id: int, time_us: int, counts: Counts, sign: int = 1) -> None:
        """Add (sign 1) or take away (-1) an event's lines, and the event to its day's
        EVENTS. (Written out: every event of a product type stored passes here.)"""
        day = time_us // DAY_US
        days = self._days
        days[catalog_id, day] = days.get((catalog_id, day), 0) + sign
        rows = self._rows
        for pid, currency, views, carts, purchases, units, unpriced, revenue in counts:
            key = (catalog_id, day, pid, currency)
            row = rows.get(key)
            if row is None:
                rows[key] = [sign * views, sign * carts, sign * purchases, sign * units,
                             sign * unpriced, 0.0 + sign * revenue, sign]
                continue
            row[0] += sign * views
            row[1] += sign * carts
            row[2] += sign * purchases
            row[3] += sign * units
            row[4] += sign * unpriced
            row[5] += sign * revenue
            row[6] += sign
        if sign < 0:
            self._lost = True

    def add_stored(self, rows: Iterable[Sequence[Any]], sign: int) -> None:
        """Add or take away the events of stored rows: (id, catalog_id, event_type,
        event_time_us, event; event None for one that counts nowhere, see
        stored_columns)."""
        for _, catalog_id, kind, time_us, event in rows:
            if event is None:
                continue
            counts = counts_of_stored(bytes(event), kind)
            if counts is not None:
                self.add(int(catalog_id), int(time_us), counts, sign)

    def apply(self, db: Executes, dialect: Dialect) -> None:
        """Write the changes inside the caller's transaction."""
        for (catalog_id, day), events in self._days.items():
            row = self._rows.setdefault((catalog_id, day, *EVENTS), [0, 0, 0, 0, 0, 0.0, 0])
            row[0] += events  # an event's EVENTS line: one view, one line
            row[6] += events
        self._days.clear()
        # In key order: two writers (replicas) that touch the same rows lock them in
        # the same order, so neither waits for the other in a deadlock.
        changed = sorted((*key, *row) for key, row in self._rows.items() if any(row))
        if not changed:
            return
        if dialect.arrays:  # one statement whatever the count: planned once
            columns = [list(c) for c in zip(*changed, strict=True)]
            marks = ", ".join(f"{dialect.mark}::{t}[]" for t in _ARRAY_TYPES)
            db.execute(f"INSERT INTO product_days ({COLUMNS}) SELECT * FROM unnest({marks}) "
                       f"{_ON_CONFLICT}", columns)
        else:  # (a statement of each count parsed once: shapes.py)
            for chunk in in_statements(changed):
                db.execute(rows_sql(f"INSERT INTO product_days ({COLUMNS}) VALUES ",
                                    "(" + ", ".join([dialect.mark] * 11) + ")", len(chunk),
                                    f" {_ON_CONFLICT}"),
                           [value for row in chunk for value in row])
        if self._lost:
            for catalog_id, day in sorted({key[:2] for key in self._rows}):
                db.execute(dialect.spell("DELETE FROM product_days WHERE catalog_id = ? AND "
                                         "day = ? AND lines <= 0"), (catalog_id, day))
        self._rows.clear()
        self._lost = False


# PostgreSQL counts a write's new events in the statement that inserts them (see
# postgres.py): the lines of every event that may be new go along (new_lines), and
# only those of the rows its INSERT returns are summed.
LINE_COLUMNS = ("n integer, catalog text, event_time_us bigint, dedup_key text, day bigint, "
                "product_id text, currency text, views bigint, add_to_carts bigint, "
                "purchases bigint, units bigint, unpriced_units bigint, revenue float8")
# (catalog, event_time_us, dedup key, day, product id, currency, views, add-to-carts,
# purchases, units, unpriced units, revenue)
NewLine = tuple[str, int, bytes, int, str, str, int, int, int, int, int, float]


def new_lines(rows: Sequence[EventRow]) -> list[NewLine]:
    """The lines of the events of `rows` that count, in their order (of the first of
    equal rows: dedup keeps it, not the others)."""
    lines: list[NewLine] = []
    seen: set[tuple[str, int, bytes]] = set()
    for row in rows:
        if row.event_type not in _KIND:
            continue
        key = (row.catalog, row.event_time_us, row.key)
        if key in seen:
            continue
        seen.add(key)
        counts = row.counts if row.counts is not None else counts_of_payload(row.payload)
        if counts is None:
            continue
        head = (row.catalog, row.event_time_us, row.key, row.event_time_us // DAY_US)
        lines.extend((*head, *line) for line in ((*EVENTS, 1, 0, 0, 0, 0, 0.0), *counts))
    return lines


def count_new(inserted: str, one_row: bool = False) -> str:
    """PostgreSQL: the statement that adds to the rollups the lines (parameter: JSON
    records of LINE_COLUMNS, `n` their order: new_lines) of the events `inserted`
    names (a data-modifying CTE returning catalog_id, event_time_us, dedup_key: the
    rows its INSERT really inserted), summed per row, upserted in key order as
    Tally.apply does (two writers lock rows in one order: C collation sorts text as
    Python does), revenue summed in the order of the lines as Tally sums it.
    `one_row`: `inserted` inserts one row at most, whose lines are all of them: they
    need not be matched to it by catalog and key (a join with the catalogs and
    `inserted`, some 15 us of the database's CPU a one-row write)."""
    summed = ", ".join(f"sum(l.{c})::bigint" for c in _SUMMED[:5])
    matched = (f"CROSS JOIN {inserted} i " if one_row else
               "JOIN catalogs c ON c.name = l.catalog "
               f"JOIN {inserted} i ON i.catalog_id = c.id AND i.event_time_us = l.event_time_us "
               "AND i.dedup_key = decode(l.dedup_key, 'hex') ")
    return (f"INSERT INTO product_days ({COLUMNS}) SELECT i.catalog_id, l.day, l.product_id, "
            f"l.currency, {summed}, sum(l.revenue ORDER BY l.n), count(*) "
            f"FROM json_to_recordset(%s::json) AS l({LINE_COLUMNS}) {matched}"
            "GROUP BY i.catalog_id, l.day, l.product_id, l.currency "
            'ORDER BY i.catalog_id, l.day, l.product_id COLLATE "C", l.currency COLLATE "C" '
            f"{_ON_CONFLICT}")


def stored_columns(dialect: Dialect, gaps: Sequence[Gap] = ()) -> tuple[str, list[Any]]:
    """What to select (or return) of a user_events row for Tally.add_stored, and its
    parameters: the payload of the product types only, and of no event in `gaps`
    (not even handed over: a purge by time returns no payload of its whole days)."""
    wanted, params = dialect.among("event_type", list(PRODUCT_TYPES))
    if gaps:
        held, held_params = held_by(dialect, gaps)
        wanted += f" AND NOT {held}"
        params += held_params
    return f"id, catalog_id, event_type, event_time_us, CASE WHEN {wanted} THEN event END", params


def held_by(dialect: Dialect, gaps: Sequence[Gap]) -> tuple[str, list[Any]]:
    """Condition and parameters: a user_events row is an event one of `gaps` holds."""
    m = dialect.mark
    one = (f"(catalog_id = {m} AND event_time_us >= {m} AND event_time_us < {m} AND "
           f"id > {m} AND id <= {m})")
    return "(" + " OR ".join([one] * len(gaps)) + ")", [v for gap in gaps for v in gap]


class Gap(NamedTuple):
    """Events that count in no rollup row: those of catalog `catalog_id` at a time in
    [first_us, end_us) (whole UTC days) with an id in (after_id, until_id]."""

    catalog_id: int
    first_us: int
    end_us: int
    after_id: int
    until_id: int

    @staticmethod
    def read(db: Executes) -> list[Gap]:
        """The open gaps, for a write about to change events (inside its transaction,
        whose writers' turn keeps what is read true until it commits: see open)."""
        return [Gap(*(int(v) for v in row)) for row in db.execute(
            "SELECT catalog_id, first_us, end_us, after_id, until_id FROM rollup_gaps"
        ).fetchall()]

    def open(self, db: Executes, dialect: Dialect, operation: str) -> None:
        """Open this gap for `operation` (once: a resumed purge finds it open), in the
        transaction of its first batch: drop the rows of its days and count again
        their events outside its id range (ones the purge will not delete)."""
        spell = dialect.spell
        if db.execute(spell("SELECT 1 FROM rollup_gaps WHERE operation = ?"),
                      (operation,)).fetchone() is not None:
            return
        # Every write that changes events holds the writers' turn from before it takes
        # an id or reads the gaps to its commit (SQLite's writer holds the whole
        # database; on PostgreSQL, the advisory lock of every replica's writes), and
        # so does this one: no event with an id in the range can still appear, and no
        # other writer acts on what it read of the gaps before this. (No table lock:
        # a batch of rows of another replica takes its table's lock before the turn,
        # and waiting for it here while holding the turn would be a deadlock.)
        db.execute(spell("INSERT INTO rollup_gaps (operation, catalog_id, first_us, end_us, "
                         "after_id, until_id) VALUES (?, ?, ?, ?, ?, ?)"), (operation, *self))
        db.execute(spell("DELETE FROM product_days WHERE catalog_id = ? AND day >= ? AND "
                         "day < ?"), (self.catalog_id, self.first_us // DAY_US,
                                      self.end_us // DAY_US))
        self._recount(db, dialect, "(id <= ? OR id > ?)", Gap.read(db))

    @staticmethod
    def close(db: Executes, dialect: Dialect, operation: str) -> None:
        """Close `operation`'s gap, if it has one: count again the events of it still
        stored (but those another gap holds)."""
        spell = dialect.spell
        found = db.execute(spell("SELECT catalog_id, first_us, end_us, after_id, until_id "
                                 "FROM rollup_gaps WHERE operation = ?"), (operation,)).fetchone()
        if found is None:
            return
        db.execute(spell("DELETE FROM rollup_gaps WHERE operation = ?"), (operation,))
        gap = Gap(*(int(v) for v in found))
        gap._recount(db, dialect, "id > ? AND id <= ?", Gap.read(db))

    def _recount(self, db: Executes, dialect: Dialect, ids: str, gaps: list[Gap]) -> None:
        """Add the events of this gap's days whose id meets `ids` (over after_id,
        until_id), but those `gaps` hold."""
        columns, params = stored_columns(dialect, gaps)
        wanted, types = dialect.among("event_type", list(PRODUCT_TYPES))
        tally = Tally()
        m = dialect.mark
        tally.add_stored(db.execute(
            f"SELECT {columns} FROM user_events WHERE catalog_id = {m} AND event_time_us >= "
            f"{m} AND event_time_us < {m} AND {ids.replace('?', m)} AND {wanted}",
            [*params, self.catalog_id, self.first_us, self.end_us, self.after_id,
             self.until_id, *types]).fetchall(), 1)
        tally.apply(db, dialect)


def time_only_gap(query: EventQuery) -> tuple[int, int] | None:
    """[first_us, end_us): the whole UTC days every event of which the EventQuery
    `query` selects, when it selects by time alone; else (or no whole day) None."""
    if (query.event_types or query.visitor_ids or query.user_ids or query.transports
            or query.joined is not None):
        return None
    start_us = end_us = None
    if query.after is not None:  # at x.000 or later: all of x's microsecond; else from x+1
        bound = query.after
        start_us = bound.micros + (0 if bound.inclusive and not bound.nanos else 1)
    if query.before is not None:  # x's microsecond is never wholly before x (or x.000)
        end_us = query.before.micros
    days = whole_days(start_us, end_us)
    if days is None:
        return None
    first, end = days
    return (-NO_BOUND_US if first is None else first * DAY_US,
            NO_BOUND_US if end is None else end * DAY_US)


def fill(db: Executes, dialect: Dialect) -> None:
    """Count every stored event into the (new, empty) rollups: migration 9, so that a
    store upgraded from an older version answers right at once."""
    columns, column_params = stored_columns(dialect)
    wanted, type_params = dialect.among("event_type", list(PRODUCT_TYPES))
    mark = dialect.mark
    tally = Tally()
    after = -1
    while True:
        rows = db.execute(f"SELECT {columns} FROM user_events WHERE {wanted} AND "
                          f"id > {mark} ORDER BY id LIMIT {mark}",
                          [*column_params, *type_params, after, _FILL_PAGE]).fetchall()
        tally.add_stored(rows, 1)
        tally.apply(db, dialect)  # a page at a time: memory stays bounded by the page
        if len(rows) < _FILL_PAGE:
            return
        after = rows[-1][0]


def whole_days(start_us: int | None, end_us: int | None) -> tuple[int | None, int | None] | None:
    """The days [first, end) lying wholly within [start_us, end_us) (None: no bound
    on that side), or None when no whole day does."""
    first = None if start_us is None else -(-start_us // DAY_US)
    end = None if end_us is None else end_us // DAY_US
    if first is not None and end is not None and first >= end:
        return None
    return first, end
