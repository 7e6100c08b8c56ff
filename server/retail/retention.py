"""Retention (`--retain-days N`): events older than N days are purged on a schedule.

At start and then every interval (an hour), each catalog holding such events gets
an ordinary purge operation, filter `eventTime < "<now - N days>"` with force: it
runs in batches like any purge, shows in ListOperations, and can be cancelled.
Replicas sharing a PostgreSQL store need not talk to agree on one purge per
catalog and period: the operation is named after the period, so the insert of a
second replica finds the name taken and stores nothing.

A wall clock wrong by days would purge the events of those days, so "now" is read
with care. The cutoff is never later than N days before the newest event the store
received (`received_us`, stamped by the clock of the server that took it): a clock
set far ahead at start purges nothing the store took in its last N days. And a
clock that steps forward while the server runs is not followed (server.clock.
Unstepped): retention goes on by the time elapsed.
"""

from __future__ import annotations

import logging

from footfall.retail.v2 import purge_config_pb2
from google.protobuf import timestamp_pb2

from server.clock import Clock, Unstepped
from server.operations.runner import OperationRunner
from server.periodic import Periodic
from server.retail import purge
from server.store import Store

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
# How far the clock may be ahead of the newest event received before retention says
# that it purges by that event's time instead: a store may go quiet for a night.
QUIET_SECONDS = DAY_SECONDS


def operation_name(catalog: str, period: int) -> str:
    """The one purge of `catalog` for schedule period `period` (a count of
    intervals since 1970, e.g. hours)."""
    return f"{catalog}/operations/{purge.KIND}-retention-{period}"


class Retention:
    """Creates the retention purges at start and every `interval_seconds`."""

    def __init__(self, store: Store, runner: OperationRunner, clock: Clock, days: int,
                 interval_seconds: float = 3600.0) -> None:
        if days < 1:  # (Periodic checks the interval)
            raise ValueError("retention needs at least one day")
        self._store = store
        self._runner = runner
        self._clock = Unstepped(clock, "retention")
        self._behind = False  # said that the newest event received is far behind the clock
        self._days = days
        self._interval = interval_seconds
        self._periodic = Periodic(self.tick, interval_seconds, "footfall-retention",
                                  "retention: creating the purges")

    def start(self) -> None:
        """Create this period's purges now (so they exist once the server is ready),
        then again every interval on a thread of their own."""
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()

    def tick(self) -> list[str]:
        """Create this period's purges; returns the names this call created (none for
        catalogs whose purge of this period exists already)."""
        now_ns = self._clock.now_ns()
        period = int(now_ns // (self._interval * 1e9))
        cutoff = timestamp_pb2.Timestamp(
            seconds=self._newest_trusted_ns(now_ns) // 10**9 - self._days * DAY_SECONDS)
        created = []
        for catalog in self._store.catalogs_with_events_before(cutoff.seconds * 10**6):
            request = purge_config_pb2.PurgeUserEventsRequest(
                parent=catalog, filter=f'eventTime < "{cutoff.ToJsonString()}"', force=True)
            name = operation_name(catalog, period)
            if self._runner.submit_named(name, purge.KIND, request,
                                         purge.new_operation) is not None:
                log.info("retention: purging events before %s in %s (%s)",
                         cutoff.ToJsonString(), catalog, name)
                created.append(name)
        return created

    def _newest_trusted_ns(self, now_ns: int) -> int:
        """`now_ns`, or the time the newest event stored was received if that is
        earlier: said once when it is more than QUIET_SECONDS earlier."""
        newest_us = self._store.newest_received_us()
        if newest_us is None or newest_us * 1000 >= now_ns:
            self._behind = False
            return now_ns
        newest_ns = newest_us * 1000
        behind = now_ns - newest_ns > QUIET_SECONDS * 1e9
        if behind and not self._behind:
            received = timestamp_pb2.Timestamp()
            received.FromNanoseconds(newest_ns)
            log.warning("retention: the clock is %.1f days past the newest event the store "
                        "received (%s): only events more than %d days older than that one "
                        "are purged, until events come in again", (now_ns - newest_ns) / 86.4e12,
                        received.ToJsonString(), self._days)
        self._behind = behind
        return newest_ns
