"""Watching whether the store's database answers, for health checks.

A thread of its own asks `store.healthy()` every `every` seconds and reports each
change, so a load balancer stops sending calls to a replica whose database is
away or whose disk is full (health NOT_SERVING) and sends them again once it is
back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from server.store.base import Store

log = logging.getLogger(__name__)


class HealthWatch:
    """Calls `on_change(healthy)` whenever `store.healthy()` changes its answer
    (the store starts out healthy: it has just opened)."""

    def __init__(self, store: Store, on_change: Callable[[bool], None], *,
                 every: float = 1.0) -> None:
        self._store = store
        self._on_change = on_change
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="footfall-store-health",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        healthy = True
        while not self._stop.wait(self._every):
            try:
                now = self._store.healthy()
            except Exception:  # a probe that breaks says "not healthy", never kills the watch
                log.exception("store health probe failed")
                now = False
            if now != healthy and not self._stop.is_set():
                healthy = now
                log.warning("store %s: health %s",
                            "healthy again" if now else f"unhealthy ({self._why()})",
                            "SERVING" if now else "NOT_SERVING")
                self._on_change(now)

    def _why(self) -> str:
        """Why the store is unhealthy, in its own words where it has them (the SQLite
        store's: a full disk, or one failing its writes), else what `healthy()` says
        of every store: it does not answer or does not take writes."""
        because = getattr(self._store, "unhealthy_because", None)
        if because is not None:
            try:
                return str(because())
            except Exception:  # a reason that breaks must not stop the watch
                log.exception("store health: its reason failed")
        return "its database does not answer, or does not take writes"
