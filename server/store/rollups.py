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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from footfall.retail.v2 import user_event_pb2

from server.store.packed import UNPACK_COLUMNS, unpack

if TYPE_CHECKING:
    from server.store.sql import Dialect, Executes

DAY_US = 86_400 * 1_000_000
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
# (11 parameters a row: under SQLite's 32,766 per statement)
_ROWS_PER_STATEMENT = 1000
_ARRAY_TYPES = ("integer", "bigint", "text", "text", "bigint", "bigint", "bigint", "bigint",
                "bigint", "float8", "bigint")


def product_counts(event: Any) -> Counts | None:
    """The lines a UserEvent adds to its day's rows; None when its type counts in none."""
    kind = _KIND.get(event.event_type)
    if kind is None:
        return None
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


class Tally:
    """The changes one write makes to the rollups, summed per row, then applied with
    one upsert (a few for a very large write)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, int, str, str], list[Any]] = {}
        self._lost = False  # something was taken away: rows may have fallen to 0

    def add(self, catalog_id: int, time_us: int, counts: Counts, sign: int = 1) -> None:
        """Add (sign 1) or take away (-1) an event's lines, and the event to its day's
        EVENTS."""
        day = time_us // DAY_US
        rows = self._rows
        counts = ((*EVENTS, 1, 0, 0, 0, 0, 0.0), *counts)
        for pid, currency, *values in counts:
            key = (catalog_id, day, pid, currency)
            row = rows.get(key)
            if row is None:
                row = rows[key] = [0, 0, 0, 0, 0, 0.0, 0]
            for i, value in enumerate(values):
                row[i] += sign * value
            row[6] += sign
        if sign < 0:
            self._lost = True

    def add_stored(self, rows: Iterable[Sequence[Any]], sign: int) -> None:
        """Add or take away the events of stored rows: (catalog_id, then
        UNPACK_COLUMNS; event None for a type that counts nowhere)."""
        for catalog_id, kind, visitor, time_us, time_ns, event in rows:
            if event is None:
                continue
            counts = counts_of_payload(unpack(bytes(event), kind, visitor, time_us, time_ns))
            if counts is not None:
                self.add(int(catalog_id), int(time_us), counts, sign)

    def apply(self, db: Executes, dialect: Dialect) -> None:
        """Write the changes inside the caller's transaction."""
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
        else:
            for start in range(0, len(changed), _ROWS_PER_STATEMENT):
                chunk = changed[start:start + _ROWS_PER_STATEMENT]
                row_marks = "(" + ", ".join([dialect.mark] * 11) + ")"
                db.execute(f"INSERT INTO product_days ({COLUMNS}) VALUES "
                           f"{', '.join([row_marks] * len(chunk))} {_ON_CONFLICT}",
                           [value for row in chunk for value in row])
        if self._lost:
            for catalog_id, day in sorted({key[:2] for key in self._rows}):
                db.execute(dialect.spell("DELETE FROM product_days WHERE catalog_id = ? AND "
                                         "day = ? AND lines <= 0"), (catalog_id, day))
        self._rows.clear()
        self._lost = False


def stored_columns(dialect: Dialect) -> tuple[str, list[Any]]:
    """What to select (or return) of a user_events row for Tally.add_stored, and its
    parameters: the payload of the product types only."""
    wanted, params = dialect.among("event_type", list(PRODUCT_TYPES))
    kind, visitor, time_us, time_ns, _ = (c.strip() for c in UNPACK_COLUMNS.split(","))
    return (f"catalog_id, {kind}, {visitor}, {time_us}, {time_ns}, "
            f"CASE WHEN {wanted} THEN event END"), params


def fill(db: Executes, dialect: Dialect) -> None:
    """Count every stored event into the (new, empty) rollups: migration 9, so that a
    store upgraded from an older version answers right at once."""
    columns, column_params = stored_columns(dialect)
    wanted, type_params = dialect.among("event_type", list(PRODUCT_TYPES))
    mark = dialect.mark
    tally = Tally()
    after = -1
    while True:
        rows = db.execute(f"SELECT id, {columns} FROM user_events WHERE {wanted} AND "
                          f"id > {mark} ORDER BY id LIMIT {mark}",
                          [*column_params, *type_params, after, _FILL_PAGE]).fetchall()
        tally.add_stored((row[1:] for row in rows), 1)
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
