"""A reset ordered after every write answered before it, in any process.

A pixel (and a `write_async` event) is answered once queued, and committed with
its own process's next batch. A reset runs in the writer's queue of the process
that serves it, after what that process answered; but one answered by another
process (`--processes`) or replica just before was committed after the reset, and
the next test found it (27 of 200 rounds on SQLite, 39 on PostgreSQL).

So a reset records, in its transaction, when it came under its scope (a catalog's
name, or `projects/P/` for a project's), and every writer's transaction leaves out
the rows it was to insert that were answered before their commit and received
before a reset of their catalog it finds there (`leaving_out`). Transactions take
the writers' turn one after the other, and a batch reads the marks holding it:
committed before the reset, its rows are deleted by it; after, it finds the mark.
A row answered after the reset came is kept. Rows somebody waits for are never
left out: answered once committed, they were committed before a reset sent after
their answer.

The times are the wall clocks of the processes: replicas on several machines
rely on their clocks agreeing (to well within the time between a pixel and a
reset). Marks older than MARKS_KEPT_US are forgotten by the next reset: a row
waits in a writer's queue for its commit far less.

A batch that holds no row answered before its commit reads nothing, and one that
holds some reads the marks newer than its oldest such row: none, but within
moments of a reset (see `oldest_answered`). On PostgreSQL it reads a count of the
resets first, and the marks only when a reset was made since its writer last read
the count, or its rows came before that read (PostgresStore._send_events).

Refusals are kept the same way: gathered, and kept by a writer's transaction up to
0.1 s later (console.add_rejections). A reset of a tenant marks too, and the
transaction that keeps refusals leaves out those made before a reset that deletes
them (`resets_refusal`): one made by another process just before the reset was kept
after it, and listed among the refusals of the catalog or tenant it had reset.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from server.store.group_commit import Job
from server.store.rows import EventRow

MARKS_KEPT_US = 24 * 3600 * 10**6

# The marks newer than a time (parameter): (scope, at_us).
SINCE = "SELECT scope, at_us FROM reset_marks WHERE at_us > ?"


def mark(db: Any, spell: Callable[[str], str], postgres: bool, scope: str, at_us: int) -> None:
    """Record, in the reset's transaction on `db`, that a reset of `scope` came at
    `at_us` (the later of two resets' times kept), and forget marks older than
    MARKS_KEPT_US."""
    later = "GREATEST" if postgres else "max"
    db.execute(spell("INSERT INTO reset_marks (scope, at_us) VALUES (?, ?) ON CONFLICT (scope) "
                     f"DO UPDATE SET at_us = {later}(reset_marks.at_us, excluded.at_us)"),
               (scope, at_us))
    db.execute(spell("DELETE FROM reset_marks WHERE at_us < ?"), (at_us - MARKS_KEPT_US,))
    if postgres:  # (counted: see PostgresStore._send_events)
        db.execute("SELECT nextval('footfall_resets')")


def project_scope(project: str) -> str:
    """The scope a reset of `project` (its id) marks: every catalog under it."""
    return f"projects/{project}/"


def covers(scope: str, catalog: str) -> bool:
    """Whether a reset of `scope` resets `catalog` (a catalog's name)."""
    return catalog == scope or (scope.endswith("/") and catalog.startswith(scope))


def resets_refusal(scope: str, project: str, parent: str) -> bool:
    """Whether a reset of `scope` deletes a refusal of `project` kept under `parent`:
    a catalog's or tenant's those under its name, a project's every one of it."""
    if scope.endswith("/"):
        return scope == project_scope(project)
    return parent == scope or parent.startswith(scope + "/")


def answered_rows(jobs: Sequence[Job]) -> list[EventRow]:
    """The rows of `jobs` answered before their commit (nobody waits for them)."""
    return [row for job in jobs if not job.waited and job.rows is not None
            for row in job.rows]


def oldest_answered(rows: Sequence[EventRow]) -> int | None:
    """When the first of `rows` was received (None: there are none): only marks
    newer than that may leave one out."""
    return min((row.received_us for row in rows), default=None)


def stale(rows: Sequence[EventRow], marks: Collection[tuple[str, int]]) -> set[int]:
    """The ids (id()) of the `rows` a reset of `marks` (scope, at_us) came after."""
    return {id(row) for row in rows
            if any(row.received_us < at_us and covers(scope, row.catalog)
                   for scope, at_us in marks)}


def leaving_out(insert: Callable[[list[EventRow]], object],
                left_out: set[int]) -> Callable[[list[EventRow]], object]:
    """`insert` of the rows but those whose id() is in `left_out`."""
    if not left_out:
        return insert

    def insert_kept(rows: list[EventRow]) -> object:
        kept = [row for row in rows if id(row) not in left_out]
        return insert(kept) if kept else 0

    return insert_kept
