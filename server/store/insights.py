"""The insights' reads of user events (server/insights/), written once for both SQL
stores: only the columns a question needs, what an event's type says worked out
in SQL, a payload only for the rows whose question needs a field no column holds,
and the counts per time bucket, type and visitor made by the database.

Measured on 1M stored events (bench/insights.py): decoding every event in Python
was about two thirds of a shop funnel's CPU, and reading rows into Python most
of the rest; so what a column answers is never decoded, and what the database
can count is not read row by row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from server.store.packed import unpack
from server.store.rows import EventQuery, where_clause

if TYPE_CHECKING:
    from server.store.sql import Statements

# The columns that may name a funnel's entrant.
ENTRANT_COLUMNS = ("visitor_id", "user_id")


# One event as an insight reads it: its event time (microseconds), its id, the bits (of
# `bits` in typed_rows) its event type alone gives, the entrant column's value
# (None: no column was asked) and, for a type in `decode` only, the serialized event
# (None otherwise; rows read without `decode` are 4 long). A plain tuple: a million
# are read per question.
TypedRow = tuple[Any, ...]


class InsightsSql:
    """The insights' part of SqlStore, over its `_fetch` and dialect."""

    _sql: ClassVar[Statements]

    def _fetch(self, query: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def typed_rows(self, query: EventQuery, bits: Mapping[str, int], entrant: str | None,
                   decode: Collection[str], limit: int,
                   after: tuple[int, int] | None = None) -> list[TypedRow]:
        """Up to `limit` events of `query`'s catalog and time range whose type is a
        key of `bits`, in (event time, id) order after the position `after`: each
        with its type's bits, the value of the `entrant` column (one of
        ENTRANT_COLUMNS, or None) and, when its type is in `decode`, its payload.
        `query`'s other terms are ignored."""
        dialect = self._sql.dialect
        mark = dialect.mark
        if entrant is not None and entrant not in ENTRANT_COLUMNS:
            raise ValueError(f"no entrant column {entrant!r}")
        where, params = where_clause(EventQuery(query.catalog, after=query.after,
                                                before=query.before), mark)
        types, type_params = dialect.among("event_type", list(bits))
        # (the bits are our own small numbers: written in, so no driver guesses a type)
        cases = " ".join(f"WHEN {mark} THEN {int(value)}" for value in bits.values())
        case_params = list(bits)
        columns = f"event_time_us, id, CASE event_type {cases} ELSE 0 END, {entrant or 'NULL'}"
        payload_params: list[Any] = []
        if decode:
            wanted, payload_params = dialect.among("event_type", list(decode))
            columns += (f", CASE WHEN {wanted} THEN event END, event_type, visitor_id, "
                        "event_time_ns")
        where += f" AND {types}"
        params += type_params
        if after is not None:
            # The first term keeps it a range of the (catalog, event time) index.
            where += (f" AND event_time_us >= {mark} AND (event_time_us > {mark} "
                      f"OR id > {mark})")
            params += [after[0], after[0], after[1]]
        rows = self._fetch(f"SELECT {columns} FROM user_events WHERE {where} "
                           f"ORDER BY event_time_us, id LIMIT {mark}",
                           [*case_params, *payload_params, *params, limit])
        if not decode:
            return rows  # (a million rows are read per question: no copy, no NamedTuple)
        return [(t, i, b, who, None if event is None else
                 unpack(bytes(event), kind, visitor, t, ns))
                for t, i, b, who, event, kind, visitor, ns in rows]

    def visits(self, query: EventQuery, width_us: int) -> list[tuple[int, str, str, int]]:
        """(bucket, event type, visitor id, events) of `query`'s catalog and time range,
        `width_us` wide buckets numbered from the epoch (floor(time / width)), in no
        order: what events per type per bucket and distinct visitors need, counted
        by the database. `query`'s other terms are ignored."""
        mark = self._sql.dialect.mark
        where, params = where_clause(EventQuery(query.catalog, after=query.after,
                                                before=query.before), mark)
        # (the width is our own number, written in; / truncates on both engines, so a
        # time before 1970 steps down one to the bucket Python's // gives)
        width = int(width_us)
        bucket = (f"event_time_us / {width} - (CASE WHEN event_time_us < 0 AND "
                  f"event_time_us / {width} * {width} <> event_time_us THEN 1 ELSE 0 END)")
        return [(int(b), kind, visitor, int(n)) for b, kind, visitor, n in self._fetch(
            f"SELECT {bucket}, event_type, visitor_id, COUNT(*) FROM user_events "
            f"WHERE {where} GROUP BY 1, 2, 3", params)]

