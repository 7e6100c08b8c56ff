"""`--operations-keep-days N`: ended operations are deleted N days after they end.

Every job is an operation, and an hourly retention purge (`--retain-days`) makes
one each hour, so without this the operations table grows for ever. At start and
then every hour, the operations that ended more than N days ago are deleted (in
one statement of the store's writer); a running operation never is. Replicas
sharing a store may each sweep: a second delete finds nothing. A wall clock that
steps forward while the server runs is not followed (server.clock.Unstepped).
"""

from __future__ import annotations

import logging

from server.clock import Clock, Unstepped
from server.lines import counted
from server.periodic import Periodic
from server.store import Store
from server.store.rollups import DAY_US

log = logging.getLogger(__name__)

SWEEP_SECONDS = 3600.0


class OperationSweep:
    """Deletes the operations that ended more than `days` ago, at start and then
    every `every_seconds` on a thread of its own."""

    def __init__(self, store: Store, clock: Clock, days: int,
                 every_seconds: float = SWEEP_SECONDS) -> None:
        if days < 1:  # (Periodic checks the interval)
            raise ValueError("the sweep needs at least one day")
        self._store = store
        # (a step of the wall clock forward would delete operations that ended lately)
        self._clock = Unstepped(clock, "the operation sweep")
        self._days = days
        self._periodic = Periodic(self.sweep, every_seconds, "footfall-operation-sweep",
                                  "deleting old operations")

    def start(self) -> None:
        """Sweep now, then every interval."""
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()

    def sweep(self) -> int:
        """Delete the operations that ended more than `days` ago; how many."""
        deleted = self._store.forget_operations(self._clock.now_ns() // 1000
                                                - self._days * DAY_US)
        if deleted:
            log.info("deleted %s that ended more than %s ago", counted(deleted, "operation"),
                     counted(self._days, "day"))
        return deleted
