"""How the rows of a multi-row statement (an INSERT's VALUES, an upsert's) are cut
into statements of few shapes.

Each row count is a statement text of its own, which SQLite parses (about 3.5 µs a
row) unless sqlite3's cache of a connection's statements holds it (the last 512:
sqlite._STATEMENTS_CACHED); on
PostgreSQL a new text is parsed and planned too, and psycopg prepares only a text it
has run several times. Writes of any other count were parsed anew (13-16% of the
SQLite writer's instructions under a stream of pixels). Cut by `statement_rows`, a
batch of up to 512 rows is at most two statements, of 47 shapes in all, which stay
cached.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TypeVar

# The counts one statement holds: fewer than ROWS_ROUNDED, or a multiple of it up to
# MOST_ROWS (times a row's parameters: under SQLite's limit of 32,766 for up to 63).
ROWS_ROUNDED = 32
MOST_ROWS = 512

T = TypeVar("T")


def statement_rows(left: int) -> int:
    """How many of `left` rows still to write the next statement takes."""
    if left < ROWS_ROUNDED:
        return left
    return min(left - left % ROWS_ROUNDED, MOST_ROWS)


def in_statements(rows: Sequence[T]) -> Iterator[Sequence[T]]:
    """`rows` in order, cut into the parts each statement takes."""
    start = 0
    while start < len(rows):
        end = start + statement_rows(len(rows) - start)
        yield rows[start:end]
        start = end


@functools.cache
def rows_sql(head: str, row: str, count: int, tail: str = "") -> str:
    """`head`, then `row` (its marks) `count` times over, comma-separated, then
    `tail`: a statement of `count` rows, the same str each time (its hash, what
    sqlite3's statement cache looks it up by, made once)."""
    return f"{head}{', '.join([row] * count)}{tail}"
