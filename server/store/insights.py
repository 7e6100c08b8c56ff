"""The insights' reads of user events (server/insights/), written once for both SQL
stores: only the columns a question needs, what an event's type says worked out
in SQL, a payload only for the rows whose question needs a field no column holds,
each entrant's events gathered into one row by the database (for a funnel of
event types alone), and the counts per time bucket, type and visitor made by the
database.

Measured on 1M stored events (bench/insights.py): decoding every event in Python
was about two thirds of a shop funnel's CPU, and reading rows into Python most
of the rest; so what a column answers is never decoded, and what the database
can count is not read row by row.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from server.store.packed import unpack
from server.store.rows import EventQuery

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

# One entrant's events as a funnel of event types alone reads them: the entrant (the
# value of its column; '' for the events of no entrant), how many events, their
# times (microseconds) in (event time, id) order, and their kinds in the same order
# (one character each: the event type's, of `kinds` in entrant_events); no times and
# no kinds for ''.
EntrantEvents = tuple[str, int, list[int], str]

# Rows a streamed read hands over at once (see _stream): a few hundred KB of
# counts, however many the range holds; and of entrants' groups, each as long as
# the entrant's events (1M events of 10,000 visitors: 2,000 groups at once were
# +14 MB of the shop funnel's peak memory, 256 +5.5 MB, the same CPU).
STREAM_ROWS = 2000
GROUPS_AT_ONCE = 256

# How each engine gathers a group's numbers, and its text: SQLite as text (the
# numbers comma-separated), PostgreSQL as an array.
_GATHER = {"sqlite": "group_concat", "postgresql": "array_agg"}
_CONCAT = {"sqlite": "group_concat", "postgresql": "string_agg"}


class InsightsSql:
    """The insights' part of SqlStore, over its `_fetch` and dialect."""

    _sql: ClassVar[Statements]
    _fetch: Callable[[str, Sequence[Any]], list[Any]]
    _stream: Callable[[str, Sequence[Any], int], Iterator[Any]]

    def _planned_where(self, query: EventQuery) -> tuple[str, list[Any]]:
        """where_clause of `query`, its catalog named by id on PostgreSQL (see
        ConsoleSql._planned_catalog_id): beside a big catalog, a small one's events
        were planned as half the table, and an insight of it read the whole table
        (a seq scan of 1,005,000 rows for its 5,000: 0.5-0.9 s)."""
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
        where, params = self._planned_where(query.time_range())
        types, type_params = dialect.among("event_type", list(bits))
        # (the bits are our own small numbers: written in, so no driver guesses a type)
        cases = " ".join(f"WHEN {mark} THEN {int(value)}" for value in bits.values())
        case_params = list(bits)
        columns = f"event_time_us, id, CASE event_type {cases} ELSE 0 END, {entrant or 'NULL'}"
        payload_params: list[Any] = []
        if decode:
            wanted, payload_params = dialect.among("event_type", list(decode))
            columns += (f", CASE WHEN {wanted} THEN event END, event_type, visitor_id, "
                        "user_id, event_time_ns")
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
                 unpack(bytes(event), kind, visitor, user, t, ns))
                for t, i, b, who, event, kind, visitor, user, ns in rows]

    def time_bounds(self, catalog: str) -> tuple[int, int] | None:
        """The earliest and the latest event time (microseconds) of the catalog's user
        events, None when it has none: two seeks of the (catalog, event time) index."""
        mark = self._sql.dialect.mark
        of = f"FROM user_events WHERE catalog_id = (SELECT id FROM catalogs WHERE name = {mark})"
        first, last = self._fetch(f"SELECT (SELECT MIN(event_time_us) {of}), "
                                  f"(SELECT MAX(event_time_us) {of})", [catalog, catalog])[0]
        return None if first is None else (int(first), int(last))

    def entrant_events(self, query: EventQuery, kinds: Mapping[str, str],
                       entrant: str) -> Iterator[EntrantEvents]:
        """Each entrant's events of `query`'s catalog and time range whose type is a
        key of `kinds`, gathered per value of the `entrant` column (one of
        ENTRANT_COLUMNS) by the database, each type as its value in `kinds` (a
        lowercase letter), in no order of entrants; the events of no entrant ('')
        are counted, not gathered. `query`'s other terms are ignored.

        The database groups (a sort or a hash of the rows, in C, spilling to disk
        past its memory) and hands over one row per entrant, where row by row Python
        built a tuple per event (measured on 1M events: 0.6 s of CPU against 1.0 s
        for the rows alone). The groups are streamed, GROUPS_AT_ONCE at once: a list of
        them held every event's time and kind (bench/insights_memory.py, 1M events of
        10,000 visitors: the shop funnel's peak memory grew 69 MB, streamed 5.5)."""
        dialect = self._sql.dialect
        mark = dialect.mark
        if entrant not in ENTRANT_COLUMNS:
            raise ValueError(f"no entrant column {entrant!r}")
        if not all(re.fullmatch("[a-z]", kind) for kind in kinds.values()):
            raise ValueError(f"kinds must be lowercase letters, got {list(kinds.values())}")
        where, params = self._planned_where(query.time_range())
        types, type_params = dialect.among("event_type", list(kinds))
        # (the kinds are letters of our own: written in)
        cases = " ".join(f"WHEN {mark} THEN '{kind}'" for kind in kinds.values())
        gather, concat = _GATHER[dialect.name], _CONCAT[dialect.name]
        # The events of no user (often most of them) are counted, not gathered; every
        # event names a visitor (a required field), and the filter costs 7% of the read.
        named = f" FILTER (WHERE {entrant} <> '')" if entrant != "visitor_id" else ""
        rows = self._stream(
            f"SELECT {entrant}, COUNT(*), {gather}(event_time_us){named}, {gather}(id){named}, "
            f"{concat}(CASE event_type {cases} END, ''){named} FROM user_events "
            f"WHERE {where} AND {types} GROUP BY {entrant}",
            [*kinds, *params, *type_params], GROUPS_AT_ONCE)
        numbers: Callable[[Any], list[int]] = (_split if dialect.name == "sqlite" else list)
        for who, count, times, ids, kinds_in_order in rows:
            if who:
                yield (who, count, *_in_time_order(numbers(times), ids, kinds_in_order,
                                                   numbers))
            else:
                yield "", count, [], ""

    def visits(self, query: EventQuery, width_us: int
               ) -> Generator[tuple[int, str, str, int], None, None]:
        """(bucket, event type, visitor id, events) of `query`'s catalog and time range,
        `width_us` wide buckets numbered from the epoch (floor(time / width)), in no
        order: what events per type per bucket and distinct visitors need, counted
        by the database, streamed (STREAM_ROWS at once). `query`'s other terms are
        ignored."""
        where, params = self._planned_where(query.time_range())
        # (the width is our own number, written in; / truncates on both engines, so a
        # time before 1970 steps down one to the bucket Python's // gives)
        width = int(width_us)
        bucket = (f"event_time_us / {width} - (CASE WHEN event_time_us < 0 AND "
                  f"event_time_us / {width} * {width} <> event_time_us THEN 1 ELSE 0 END)")
        for b, kind, visitor, n in self._stream(
                f"SELECT {bucket}, event_type, visitor_id, COUNT(*) FROM user_events "
                f"WHERE {where} GROUP BY 1, 2, 3", params, STREAM_ROWS):
            yield int(b), kind, visitor, int(n)


def _split(text: str) -> list[int]:
    """The numbers of SQLite's group_concat of integers: read as a JSON array (orjson,
    in C), about twice as fast as int() on each piece (the shop funnel's 900,000
    times at 1M events: 0.10 s of CPU against 0.22)."""
    numbers: list[int] = orjson.loads(f"[{text}]")
    return numbers


def _in_time_order(times: list[int], ids: Any, kinds: str,
                   numbers: Callable[[Any], list[int]]) -> tuple[list[int], str]:
    """`times` and `kinds`, given in one order (the database's, which neither engine
    promises for an aggregate), in the order of (time, id): as they come when the
    times rise (one check in C, the common case), else sorted by (time, `ids`)."""
    if all(map(operator.lt, times, itertools.islice(times, 1, None))):
        return times, kinds
    order = sorted(range(len(times)), key=list(zip(times, numbers(ids), strict=True)).__getitem__)
    return [times[i] for i in order], "".join([kinds[i] for i in order])
