"""Housekeeping that runs at start and then every so often: retention purges, the
sweep of ended operations, the trim of kept refusals."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from server.store.rows import StoreUnavailable

log = logging.getLogger(__name__)


class Periodic:
    """Runs `task` once in `start` (done by the time the server is ready), then every
    `seconds` on a daemon thread of its own until `stop`. A failure is logged as
    `what` failing and the task is tried again next time."""

    def __init__(self, task: Callable[[], object], seconds: float, name: str,
                 what: str) -> None:
        if seconds <= 0:
            raise ValueError(f"{what}: the interval must be positive")
        self._task = task
        self._seconds = seconds
        self._name = name
        self._what = what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, first_on_thread: bool = False) -> None:
        """Run the task now, here (or first thing on the thread), then every interval."""
        if not first_on_thread:
            self._run_safely()
        self._thread = threading.Thread(target=self._loop, args=(first_on_thread,),
                                        name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread (after the run it is in, waiting at most `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self, first: bool) -> None:
        if first:
            self._run_safely()
        while not self._stop.wait(self._seconds):
            self._run_safely()

    def _run_safely(self) -> None:
        try:
            self._task()
        except StoreUnavailable as exc:
            log.warning("%s failed; next time: %s", self._what, exc.message)
        except Exception:
            log.exception("%s failed; next time", self._what)
