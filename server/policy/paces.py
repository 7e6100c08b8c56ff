"""The pace of a key's calls: `calls_per_second` in its keys file entry.

A share of --max-concurrent-rpcs (server.policy.call_shares) bounds the calls a key
has in progress, not how fast it makes them: one reader key keeping 500 calls in
flight, each refused at once for a bad filter, took another project's durable writes
from about 2,500 a second to 40, every other call queued in grpc behind its own. Turns
among the calls taken cannot help: those calls wait in grpc before any of them is
taken, and each is over within a step of the loop once it is. A key others can use
(a shop's writer key is in its pages) or an untrusted caller's may be paced instead:
its calls past its pace, with a second's worth of burst (one call at least), wait on
the loop for their time before their requests are read, holding no thread and nothing
but the call; one that would wait more than PACE_WAIT is refused RESOURCE_EXHAUSTED,
after waiting that long itself (so that more calls in flight gain nothing), counted
and logged within a budget of lines as refusals past a share are. Paced at 300 a
second, the same flood left the other project's writes 0.3-1.1 of their rate without
it (three runs on a loaded machine; unpaced, 0.02-0.04).

Over gRPC the calls of a key that wait are bounded by its share; over HTTP a request
that waits holds its connection, and a key's were bounded only by the connection cap:
a key's holder (anyone, for a shop's writer key) could hold every connection, each
waiting its 2 s. So a key's HTTP requests wait at most those its pace serves within
PACE_WAIT and WAITING_PAST_PACE more (never more than the gateway allows one key, a
quarter of --http-max-connections); the next is refused (KeyPaces.hold), at once
within a budget of refusals of the key's own (a writer key's by client address:
server.policy.refusal_budget) and after their delay past it, as a
refusal for want of a key is past its address's (server.http.gateway): each answered
at once, a client keeping a key past that bound had the server refuse 1,900 a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from server.errors import ResourceExhausted
from server.policy import PUBLIC_KEY_LINES, LineBudget
from server.policy.auth import Grant
from server.policy.metrics import Metrics

log = logging.getLogger("footfall.requests")

# A paced key's call waits at most this many seconds for its time; one that would
# wait longer is refused after waiting this long.
PACE_WAIT = 2.0
# Seconds a time may be off by the sums of floats (ten calls 0.1 s apart are 1 s).
SLACK = 1e-6
# When more keys than this (or twice as many as were left the last time) have a time
# kept, those whose time has come are forgotten (a key given another pace, or dropped,
# by a reload leaves its own behind). Not at once past it: with more keys than this
# waiting for their time (5,000 paced at 0.01 a second), each call of one went through
# them all, 0.7 ms of the loop.
PACES_KEPT = 4096
# A paced key's requests over HTTP that wait at once, past those its pace serves within
# PACE_WAIT (each waiting to be refused, so that a client keeping more in flight gains
# nothing from them): past these, refused at once.
WAITING_PAST_PACE = 16

# What a key's time is kept by: its grant's identity and its pace. A reload that gives
# the key another pace starts it afresh: kept by identity alone, a key paced at 0.5 a
# second and raised to 100 by a SIGHUP had its calls wait, or refused, for the
# seconds its old pace had taken ahead.
_Kept = tuple[bytes, float]


class TooManyWaiting(ResourceExhausted):
    """A request of a paced key over HTTP refused, not waiting: as many of the key's wait
    already as it may have (KeyPaces.hold)."""


@dataclass(frozen=True)
class Paced:
    """A call's wait for its time (seconds); then `refusal`, if any, ends it. (`kept`
    and `every`: whose time it took, and how much, for KeyPaces.give_back.)"""

    seconds: float
    refusal: ResourceExhausted | None = None
    kept: _Kept | None = field(default=None, compare=False, repr=False)
    every: float = field(default=0.0, compare=False, repr=False)


class KeyPaces:
    """When the next call of each paced key is due (touched on the loop only)."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._paced = metrics.calls_paced
        self._refused = metrics.calls_refused_over_pace
        self._lines = LineBudget(PUBLIC_KEY_LINES, "calls refused past their key's pace",
                                 " of one key")
        # By key (_Kept): the clock's time when its next call is on time
        self._due: dict[_Kept, float] = {}
        self._most_kept = PACES_KEPT
        # By key (its grant's identity): its requests over HTTP waiting now (see hold)
        self._waiting: dict[bytes, int] = {}

    def of(self, grant: Grant | None,
           deadline_in: Callable[[], float | None] | None = None,
           held: bool = False) -> Paced | None:
        """When a call of `grant`'s key may start (None: now, or unpaced); and, if
        `deadline_in()` says in how many seconds its deadline passes, whether it
        would start before then. `held`: a request over HTTP, whose wait `hold`
        counts once it lets it wait."""
        if grant is None or grant.calls_per_second is None:
            return None
        return self.pace(grant, grant.calls_per_second,
                         None if deadline_in is None else deadline_in(), held)

    def pace(self, grant: Grant, pace: float, within: float | None = None,
             held: bool = False) -> Paced | None:
        """When a call of `grant`'s key, paced at `pace` calls a second, may start;
        None: now. (The generic cell rate algorithm: a call is on time unless the
        calls before it take the key's due time more than the burst ahead.) A call
        whose deadline passes `within` seconds, before its time, takes none of the
        key's: it waits until then, refused. A call that waits is counted paced,
        unless `held` (`hold` counts it, if it lets it wait)."""
        now = self._clock()
        every = 1.0 / pace
        kept = (grant.identity, pace)
        due = max(self._due.get(kept, now), now)
        wait = due - (max(pace, 1.0) - 1.0) * every - now
        if wait > PACE_WAIT + SLACK:
            return Paced(PACE_WAIT, self._refuse(grant, pace, wait))
        if within is not None and wait > within + SLACK:
            # (taken by calls given up when their deadline came, a key's time had the
            # calls after them wait for nothing, and be given up in turn: of 300 calls
            # in flight, each with a deadline of 0.3 s, a key paced at 100 a second had
            # 490-580 served in 10 s, their time given back as each was given up;
            # 580-810 so. None given back, 120.)
            return Paced(max(within, 0.0), self._refuse(grant, pace, wait, within))
        if len(self._due) >= self._most_kept:
            self._due = {key: when for key, when in self._due.items() if when > now}
            self._most_kept = max(PACES_KEPT, 2 * len(self._due))
        self._due[kept] = due + every
        if wait < SLACK:
            return None
        if not held:
            self._paced.inc()
        return Paced(wait, kept=kept, every=every)

    def give_back(self, paced: Paced) -> None:
        """Give the key of a call that waited for its time (`paced`) and ended before
        it came, its client gone, the time it took: its next call may have it (a call
        to be refused took none). (Kept, a client's 250 calls at once with a 1 s deadline, its key
        paced at 100 a second, had the 55 past their deadline, sent again at once,
        served in 1.1 s, behind the time of those given up; given back, in 0.55 s.)"""
        if paced.kept is not None and paced.kept in self._due:  # (its time is to come)
            self._due[paced.kept] -= paced.every

    def hold(self, grant: Grant, paced: Paced, most: int) -> TooManyWaiting | None:
        """Count `paced`, the wait of a request of `grant`'s key over HTTP (made by
        `of(..., held=True)`), among the key's (`let_go` once it ends), and as paced
        if it waits for its time; unless as many wait already as the key may have:
        those its pace serves within PACE_WAIT and WAITING_PAST_PACE more, `most` (a
        quarter of --http-max-connections) at most. Then its refusal (counted and
        logged as any past the key's pace, and not as paced: it never waited),
        answered at once, its time given back."""
        pace = grant.calls_per_second or 1.0
        held = self._waiting.get(grant.identity, 0)
        by_pace = int(pace * PACE_WAIT) + 1 + WAITING_PAST_PACE
        if held < min(most, by_pace):
            self._waiting[grant.identity] = held + 1
            if paced.refusal is None:  # (a refusal's wait was counted as one: _refuse)
                self._paced.inc()
            return None
        self.give_back(paced)
        name = f"key {grant.name}"
        if paced.refusal is None:  # (else counted, and logged, as past its pace already)
            self._refused.inc()
            if log.isEnabledFor(logging.INFO) and self._lines.take(name):
                log.info("call refused RESOURCE_EXHAUSTED: %s is paced at %g a second and "
                         "%d of its requests over HTTP wait already, the most one key's may",
                         name, pace, held)
        # (the bound that binds: a key paced at 1,000 a second may have 2,017 wait,
        # but one key's requests wait on at most a quarter of the connections)
        bound = (f"the most its pace lets wait (those it serves within {PACE_WAIT:g} s, "
                 f"and {WAITING_PAST_PACE} more)" if by_pace <= most else
                 f"the most one key's may: {most}, a quarter of the connections the "
                 f"server takes (--http-max-connections)")
        return TooManyWaiting(
            f"this key is paced at {pace:g} a second (calls_per_second in the keys file), "
            f"and {held} of its requests over HTTP wait already for their time, {bound}: "
            f"make fewer calls at once, or retry later",
            # (when its wait would have ended: its time, or that of its refusal)
            retry_after=paced.seconds + (0.0 if paced.refusal is None
                                         else paced.refusal.retry_after or 0.0))

    def let_go(self, grant: Grant) -> None:
        """A wait of `grant`'s key's request over HTTP, counted by `hold`, ended."""
        held = self._waiting.pop(grant.identity) - 1
        if held:
            self._waiting[grant.identity] = held

    def _refuse(self, grant: Grant, pace: float, wait: float,
                within: float | None = None) -> ResourceExhausted:
        """Count and log (within the key's budget of lines) a call of a paced key that
        would wait `wait` seconds for its time, more than PACE_WAIT or its deadline
        leaves it (`within`); its refusal, answered after as long."""
        self._refused.inc()
        name = f"key {grant.name}"
        bound = (f"more than {PACE_WAIT:g} s" if within is None
                 else f"past its deadline, {max(within, 0.0):.1f} s away")
        if log.isEnabledFor(logging.INFO) and self._lines.take(name):
            log.info("call refused RESOURCE_EXHAUSTED: %s is paced at %g a second and "
                     "its call would wait %.1f s for its time, %s", name, pace, wait, bound)
        return ResourceExhausted(
            f"this key is paced at {pace:g} a second (calls_per_second in the keys "
            f"file), and the calls it made already take its next one's time {wait:.1f} s "
            f"ahead, {bound}: make fewer calls at once, or retry later",
            # (counted from its answer, when its wait is over: from its coming,
            # RetryInfo had a client that honoured it wait 2 s more than its key's time
            # asked)
            retry_after=wait - (PACE_WAIT if within is None else max(within, 0.0)))
