"""What the watch feeds' reads of the store met, said once for all of them.

Each feed reads every poll (POLL_SECONDS) while the store fails it: said by each feed,
a read it could not make was said every poll (with a traceback, for an error that no
outage explains: 200 lines in 2 s of three watches of a dropped table), and once per
feed (N watches of distinct filters, N feeds: N times). Now a spell of failures, from
the first failed read to the first read that works while no feed fails, is said as
it begins, each other error met in it once, a line every STILL_SECONDS while it lasts
(how long, how many reads failed), and once as it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable

from server.store.rows import StoreUnavailable

log = logging.getLogger(__name__)

STILL_SECONDS = 60.0  # between two lines of a spell that goes on
ERRORS_SAID = 10  # distinct errors said in a spell at most (the others are counted)


class ReadTrouble:
    """The spell of failed reads of the feeds of one server, if one is on."""

    def __init__(self) -> None:
        self._failing: set[Hashable] = set()  # the feeds whose last read failed
        self._began: float | None = None  # (monotonic) the spell's first failure
        self._failed = 0  # reads failed in the spell
        self._said: set[str] = set()  # the errors said in the spell
        self._said_at = 0.0  # (monotonic) its last line

    def failed(self, feed: Hashable, exc: Exception) -> None:
        """Feed `feed` could not read: said if the spell begins, if `exc` is an error
        not said in it, or if STILL_SECONDS passed since its last line."""
        now = time.monotonic()
        if self._began is None:
            self._began, self._failed, self._said = now, 0, set()
        self._failing.add(feed)
        self._failed += 1
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        # (an outage's errors differ in their detail alone, as how long the pool
        # waited: "after 5.00 sec", then "after 0.50 sec" once it is known away)
        kind = f"{type(exc).__name__}: {exc.message}" if isinstance(exc, StoreUnavailable) \
            else error
        if kind not in self._said and len(self._said) < ERRORS_SAID:
            self._said.add(kind)
            self._said_at = now
            # (an error no outage explains with its traceback, once: where it came from)
            log.warning("a watch could not read the store: %s (said once, and every %g s "
                        "while it goes on, until the watches read again)",
                        exc if isinstance(exc, StoreUnavailable) else error, STILL_SECONDS,
                        exc_info=None if isinstance(exc, StoreUnavailable) else exc)
        elif now - self._said_at >= STILL_SECONDS:
            self._said_at = now
            log.warning("the watches still cannot read the store, for %.0f s: %d reads "
                        "failed, by %d feeds; the last: %s", now - self._began,
                        self._failed, len(self._failing), error)

    def worked(self, feed: Hashable) -> None:
        """Feed `feed` read: the spell ends (said) once no feed's last read failed."""
        self._failing.discard(feed)
        if self._began is not None and not self._failing:
            log.info("a watch reads the store again, after %.1f s (%d reads failed)",
                     time.monotonic() - self._began, self._failed)
            self._began = None

    def ended(self, feed: Hashable) -> None:
        """Feed `feed` reads no more (its watches ended): the spell goes on until a
        read works (said then), or fails again (said as part of it)."""
        self._failing.discard(feed)
