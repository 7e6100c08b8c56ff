"""A budget of messages a second for the watches that send one message per row.

WatchUserEvents, WatchClientEvents and WatchRejections (and their server-sent
events) send a message for every row to every watch: with 200 of them open on a
busy catalog, 200 messages for every write took the loop from the writers
(durable writes fell to 0.04x, each costing 11 ms of server CPU). Those watches
share one budget instead: a token bucket of `per_second` messages, handed out in
grants of up to GRANT messages, to the watches in the order they asked. Past the
budget the watches fall behind (and, past their queue's bound, read what they
lack from the store at the pace they send it: see feed.py), and slow the writes
less (200 such watches: writes at about a third of their pace, not a twentieth).
A watch of batches (WatchUserEventBatches) is paced by its feed and
not counted here.

A waiting watch costs a future, not a timer: one timer wakes the first in line
when its grant is there.

`Reading` is a budget of the same kind for what the feeds read from the store: the
time a second that their reads (and those of the watches catching up by themselves)
take together, as the reading threads' CPU. Each distinct filter watched is a feed
of its own, reading the store after each commit; what one read costs depends less
on the rows it finds than on those the store walks to find them (a filtered read of
what came since walked its whole id bucket, up to 16,384 rows: about 14 ms a read,
whether it found 50 rows or 1,000), so the time is what is counted, not rows. Past
the budget, feeds read later (they fall behind the rows stored, their positions
exact, and catch up when the writes slow), and the writes keep their pace.

A second `Reading` (Watches.sending, --watch-send-ms) budgets alike the loop's
time that the watches of single rows take to make and send their messages (their
JSON, mostly): --watch-messages counts messages whatever each costs, and 100 REST
watches from the first event, a filter each, whose clients read nothing, over events
of 40 products each (1.9 KB of JSON, costly to print), took the loop at 4,000 messages
a second: durable writes fell from 1,737/s to 108/s; with 100 ms a second, from
1,749/s to 1,292/s. Each watch is a party of its own there: of the watches waiting,
the one that has sent the least goes first (see SendCost).

`Listing` budgets alike (--list-read-ms) the reading time of the console's list pages,
its parties the callers: page reads are bounded in number per project (loop.page_read)
but not in CPU, and 8 callers looping a filter that selects nothing (each call reads
windows for a tenth of a second) took another project's durable writes from 2,100-2,400
a second to 240; within 200 ms a second, to 1,560-1,570 (SQLite, bench.reader_flood).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from server.errors import Cancelled
from server.loop import long_read_turn, set_paced, threads_of

T = TypeVar("T")

# The most messages one watch sends for one grant: the other watches (and the
# writes answered meanwhile) wait for at most this many of its sends.
GRANT = 50
# What a reader expects its first read to cost (seconds), before it knows.
FIRST_READ_SECONDS = 0.001
# What a watch expects a message to cost the loop (seconds), before it knows (see
# SendCost).
FIRST_SEND_SECONDS = 0.00005
# How many parties' reading time Reading remembers before it forgets those neither
# waiting nor ahead of its clock (their next turn would start from the clock anyway),
# then, if as many are still ahead of it, those least ahead, down to half as many.
PARTIES_KEPT = 1024


class SendCost:
    """What one watch's messages cost the loop (seconds each), its party in the budget
    of sending. A message is measured (the loop's CPU) from its hand-over to the
    watch's client code, which makes its JSON or bytes and writes them, until the next
    is asked for, when the loop ran nothing else meanwhile. One whose writing waits
    ends the watch's turn, charged nothing: what the loop does meanwhile is others'
    work, and its own cost is not known. So over gRPC, whose every write waits (and
    whose messages cost alike: their bytes are the row's, made once), the sends are
    bounded by --watch-messages alone; server-sent events, whose writes wait only for
    a client's full socket, are charged their JSON."""

    __slots__ = ("each",)

    def __init__(self) -> None:
        self.each = FIRST_SEND_SECONDS  # the last measured: what a turn expects

    def measure(self, seconds: float) -> float:
        """`seconds`, what a message whose writing did not wait cost, noted."""
        self.each = seconds
        return seconds


class _Bucket:
    """What Pace and Reading share: a budget of `per_second` a second (of messages,
    of seconds of reading; 0: no bound), of which what is unspent piles up to
    `most`, refilled on the loop's clock. On the server's loop only."""

    def __init__(self, per_second: float, most: float) -> None:
        self.per_second = per_second
        self._most = most
        self._left = most  # what may be spent now
        self._at: float | None = None  # loop time of the last refill
        self._timer: asyncio.TimerHandle | None = None

    def _refill(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._at is not None:
            self._left = min(self._most, self._left + (now - self._at) * self.per_second)
        self._at = now


class Pace(_Bucket):
    """Messages a second shared by the watches of this process; `per_second` 0: no
    bound. On the server's loop only."""

    def __init__(self, per_second: int) -> None:
        # Unspent messages pile up to a twentieth of a second's (at least a grant), so
        # that a quiet spell buys no long burst.
        super().__init__(per_second, max(GRANT, per_second / 20))
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self.waits = 0  # grants that had to wait (a watch held back), for /metrics

    @property
    def waiting(self) -> int:
        """Watches waiting for a grant now (read by /metrics off the loop: a copy, made
        at once, of what the loop changes)."""
        return sum(1 for _, future in list(self._waiting) if not future.done())

    async def take(self, wanted: int) -> int:
        """How many messages (1 to `wanted`, at most GRANT) the caller may send now,
        after its turn has come."""
        if self.per_second <= 0:
            return wanted
        count = min(wanted, GRANT)
        self._refill()
        if not self._waiting and self._left >= count:
            self._left -= count
            return count
        self.waits += 1
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((count, future))
        self._schedule()
        await future  # (cancelled with its watch: `_hand_out` skips it)
        return count

    def _schedule(self) -> None:
        """A timer for when the first in line can have its grant (none if one is set)."""
        while self._waiting and self._waiting[0][1].done():
            self._waiting.popleft()  # its watch ended while it waited
        if self._timer is not None or not self._waiting:
            return
        short = self._waiting[0][0] - self._left
        self._timer = asyncio.get_running_loop().call_later(
            max(0.0, short / self.per_second), self._hand_out)

    def _hand_out(self) -> None:
        self._timer = None
        self._refill()
        while self._waiting:
            count, future = self._waiting[0]
            if future.done():
                self._waiting.popleft()
                continue
            if self._left < count:
                break
            self._waiting.popleft()
            self._left -= count
            future.set_result(None)
        self._schedule()


class Reading(_Bucket):
    """Seconds a second that the reads of this process's feeds (and of its watches
    catching up) take together; `per_second` 0: no bound. A read waits for its
    turn while the budget is spent, takes what its reader expects it to cost (what
    its last read cost: a read's cost is its own, an empty feed's a tenth of a
    millisecond, a filtered one's 15 ms), and once made is charged what it cost
    instead. On the server's loop only.

    The turns are fair between parties (the project a feed reads: see
    Watches.items), not first come first served: the next turn goes to the waiting
    party that has had the least reading time (start-time fair queuing: each party's
    time given, on one clock that moves to the start of each turn handed out; a party
    that had none, or fell back behind the clock, starts from it). In the order they
    asked, 400 watches of distinct filters of one project's reader key held every
    other project's live feed (the web console's too) behind their reads, about 30 s;
    now a party with hundreds of feeds waits behind its own reads, and a party with
    one gets the next turn. Within a party, reads come in the order they asked.

    A party may belong to a `group` (a writer key's client addresses: see
    policy.large): the turns are then fair between groups (and the parties of none)
    first, and between the parties of a group within its share, so that a group of
    many parties has no more than one party alone."""

    def __init__(self, per_second: float) -> None:
        # Unspent time piles up to a fifth of a second's: a quiet server's watch reads
        # at once; a quiet spell buys no long burst.
        super().__init__(per_second, per_second / 5)
        # the reads waiting, by party, each party's in the order they asked
        self._waiting: dict[Hashable, deque[tuple[float, asyncio.Future[float]]]] = {}
        # the reading time given to each party, on the clock of `_clock` (the parties
        # waiting or reading; one absent has had no more than the clock)
        self._given: dict[Hashable, float] = {}
        # the group of each party waiting that has one (see `take`)
        self._groups: dict[Hashable, Hashable] = {}
        self._clock = 0.0  # where the last turn handed out began (seconds of reading)
        self.waits = 0  # reads that had to wait (a feed held back), for /metrics

    @property
    def waiting(self) -> int:
        """Reads waiting for their turn now (read by /metrics off the loop: copies, made
        at once, of what the loop changes)."""
        return sum(1 for reads in list(self._waiting.values()) for _, future in list(reads)
                   if not future.done())

    async def take(self, expected: float = FIRST_READ_SECONDS, party: Hashable = "",
                   group: Hashable | None = None) -> float:
        """Once the caller's turn has come (among the reads of its `party`, the
        parties' in turn, those of a `group` within the group's turns): the time taken
        for its read (what it `expected` it to cost), to give to `spent` with what the
        read cost (and the same `party` and `group`)."""
        if self.per_second <= 0:
            return 0.0
        self._refill()
        if not self._waiting and self._left >= 0:
            self._give(party, expected, group)
            return expected
        self.waits += 1
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(party, deque()).append((expected, future))
        if group is not None:
            self._groups[party] = group
        self._schedule()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted as it was cancelled
                self.spent(future.result(), 0.0, party, group)
            raise

    def spent(self, taken: float, seconds: float, party: Hashable = "",
              group: Hashable | None = None) -> None:
        """A read of `party` (of `group`) that took `taken` (`take`) cost `seconds`
        (0: it was not made)."""
        if self.per_second <= 0:
            return
        self._refill()
        self._left = min(self._most, self._left + taken - seconds)
        for charged in (party,) if group is None else (party, group):
            given = self._given.get(charged)
            if given is not None:
                given += seconds - taken
                if given <= self._clock and charged not in self._waiting:
                    del self._given[charged]  # (no more than the clock: nothing to remember)
                else:
                    self._given[charged] = given
        if self._waiting and self._left >= 0:  # (it cost less than was taken: go on now)
            if self._timer is not None:
                self._timer.cancel()
            self._hand_out()

    def _give(self, party: Hashable, seconds: float, group: Hashable | None = None) -> None:
        """A turn of `seconds` (expected) to `party` (of `group`), now."""
        self._left -= seconds
        if group is None:
            self._clock = max(self._clock, self._given.get(party, self._clock))
            self._given[party] = self._clock + seconds
        else:  # (the clock moves with the group's turns; the party's own, within them)
            self._clock = max(self._clock, self._given.get(group, self._clock))
            self._given[group] = self._clock + seconds
            self._given[party] = max(self._clock, self._given.get(party, self._clock)) + seconds
        if len(self._given) > PARTIES_KEPT:
            kept = {p: given for p, given in self._given.items()
                    if given > self._clock or p in self._waiting}
            if len(kept) > PARTIES_KEPT:
                # Parties of one turn each (a watch's SendCost is a party of its own)
                # never move the clock: each stayed ahead of it, and was kept for
                # good. Of those not waiting, the ones given least are let go: back,
                # they start from the clock, the least ahead of their due.
                idle = sorted((given, i) for i, (p, given) in enumerate(kept.items())
                              if p not in self._waiting and p != party)
                dropped = {i for _, i in idle[:len(kept) - PARTIES_KEPT // 2]}
                kept = {p: given for i, (p, given) in enumerate(kept.items())
                        if i not in dropped}
            self._given = kept

    def _next(self) -> tuple[Hashable, Hashable | None, float, asyncio.Future[float]] | None:
        """The read whose turn is next (taken from the line), with its party and
        group, None if none waits: the first of the party given the least, of the
        group (or party of none) given the least (the first to wait of those given
        as little)."""
        given, clock, groups = self._given, self._clock, self._groups
        while self._waiting:
            party = min(self._waiting, key=lambda p: (
                given.get(groups.get(p, p), clock), given.get(p, clock)))
            group = groups.get(party)
            reads = self._waiting[party]
            expected, future = reads.popleft()
            if not reads:
                del self._waiting[party]
                groups.pop(party, None)
            if not future.done():  # (else its reader ended while it waited)
                return party, group, expected, future
        return None

    def _schedule(self) -> None:
        """A timer for when the next in line can have its turn (none if one is set)."""
        if self._timer is not None or not self._waiting:
            return
        self._timer = asyncio.get_running_loop().call_later(
            max(0.0, -self._left / self.per_second), self._hand_out)

    def _hand_out(self) -> None:
        self._timer = None
        self._refill()
        while self._left >= 0:
            turn = self._next()
            if turn is None:
                break
            party, group, expected, future = turn
            self._give(party, expected, group)
            future.set_result(expected)
        self._schedule()


# How long after an event write the process counts as writing, for Listing: writes a
# second apart keep the lists paced between them.
WRITING_SECONDS = 2.0
# The reading time (seconds of its thread's CPU) a read paced as it goes takes a turn
# for (see _Turn): half the most the budget keeps unspent at --list-read-ms 200, so
# that one goes little past it; each turn costs the loop and the thread a hand-over.
SLICE = 0.02


class Listing:
    """The time a second that the pages of the console's lists (ListUserEvents,
    ListClientEvents, ListRejections) take together to read (--list-read-ms), as the
    reading threads' CPU: a Reading whose parties are the callers (a key, or, with
    none, a client address). A page waits for its caller's turn before it takes its
    project's (see loop.page_read), so a page waiting holds no thread; it is charged
    what its read cost its thread, and expects what its caller's last one cost (a
    caller's pages asked at once wait for the first's cost, not all start on a budget
    not yet spent). `read_ms` 0: no bound. On the server's loop only.

    On PostgreSQL the database's own work is not counted (it is another process's
    CPU): 8 callers looping a filter that selects nothing had 24-28 pages a second,
    24-33 unbounded. Charged their threads' wall time instead, they had 0.1-0.2 a
    second, and another caller's first page waited 1.4-2.2 s (the median), the
    writes no faster (bench.reader_flood --postgres, one run on a loaded machine).

    The budget holds only while events are written (an event write admitted by this
    process within WRITING_SECONDS, by `last_write`): it is there to keep the writes'
    pace, and paced with no write to keep, a search of a rare filter over millions of
    events on a quiet server (each call reading its tenth of a second) came two calls a
    second, its walk through the store about 5 times as long. Unpaced reads are charged
    nothing, so the first write after a quiet spell finds the budget as it was; a page
    waiting for its turn when the writes stop goes then. Whether events are written is
    looked at as a read goes (at each loop.between_reads: each page of an insight, each
    window of a list): one let go in a quiet spell waits for its turn there once the
    writes come, and is charged from then on (see _Turn).

    The pages of ListProducts take turns in the lists' Listing too, and so do the
    console's watches as they open (each charged what opening one costs: see
    ConsoleService._start); the reads that may take seconds (the insights,
    server/insights/service.py; the console's counts, CountUserEvents,
    CountClientEvents and ListCatalogs with counts; v2alpha's total_size) in another,
    as large (server/app.py): whatever reader keys may ask that reads rows of the
    store by the thousand."""

    def __init__(self, read_ms: int, last_write: Callable[[], float],
                 sliced: bool = False) -> None:
        self.reading = Reading(read_ms / 1000)
        # Whether a read that took its turn goes on a SLICE at a time once it has cost
        # more than it expected (see _Turn): for reads that may take seconds.
        self.sliced = sliced and read_ms > 0
        self._costs: dict[Hashable, float] = {}  # each caller's last page's, the latest last
        self._last_write = last_write  # (time.monotonic() of the last event write admitted)

    async def read(self, party: Hashable, run: Callable[..., Awaitable[T]],
                   fn: Callable[..., T], /, *args: Any, elsewhere: bool = False,
                   **options: Any) -> T:
        """`await run(fn, *args, **options)` (a read on its threads), once the turn of
        `party` has come, charged what `fn` cost its thread (at once, and charged
        nothing, while no event is written). A read let go unpaced waits for its turn
        at its next `loop.between_reads` once events are written, and is charged what
        it costs from there.

        In a `sliced` Listing, a read of loop.long_read takes its project's turn there
        (`share`) first, then its caller's here: a read waiting for a thread of its
        project holds none of the budget. Taken in the other order, 500 counts of one
        reader key in flight each took a turn, expecting what the last count cost (2 s
        of a budget of 200 ms a second), then waited for one of its project's two
        threads, held by counts that waited for their next SLICE behind those turns:
        none of that project's long reads ran for minutes, the budget spent on reads
        that could not begin. (A page, which takes no more turns once under way, takes
        its caller's turn first: one project's callers' pages then come in turns, not
        in the order they asked.)

        `elsewhere`: the read's work is done mostly in another process (PostgreSQL's),
        which no thread's CPU here counts: it is charged its thread's time by the clock
        instead (but for what it waits for its turns). 500 counts of the store in
        flight on PostgreSQL, each some 40 ms of the database's CPU and none of their
        thread's, were charged 5 ms a second of a budget of 200 and took 340-590 ms a
        second of the database's CPU beside the writes'."""
        threads = threads_of(run) if self.sliced else None
        if threads is not None:
            async with long_read_turn(options.pop("share"), threads) as in_turn:
                return await self._read(party, in_turn, fn, *args, elsewhere=elsewhere,
                                        **options)
        return await self._read(party, run, fn, *args, elsewhere=elsewhere, **options)

    async def _read(self, party: Hashable, run: Callable[..., Awaitable[T]],
                    fn: Callable[..., T], /, *args: Any, elsewhere: bool = False,
                    **options: Any) -> T:
        """As `read`, `run` taken as it is."""
        expected = self._costs.get(party, FIRST_READ_SECONDS)
        turn = _Turn(self, party, expected, await self.turn(expected, party),
                     time.perf_counter if elsewhere else time.thread_time)

        def measured(*given: Any) -> T:
            turn.begin()
            try:
                return fn(*given)
            finally:
                turn.end()

        try:
            return await run(measured, *args, **options)
        finally:
            turn.close()
            self._costs.pop(party, None)
            self._costs[party] = turn.cost or expected
            if len(self._costs) > PARTIES_KEPT:
                del self._costs[next(iter(self._costs))]

    async def pay(self, party: Hashable, seconds: float) -> None:
        """Return once the turn of `party` has come (at once while no event is written),
        charged `seconds`: for work whose cost is known, not measured on a thread (a
        watch's opening, the loop's and grpc's mostly)."""
        taken = await self.turn(seconds, party)
        if taken is not None:
            self.reading.spent(taken, seconds, party)

    def _charge_rest(self, party: Hashable, charged: float, spent: float, cost: float) -> None:
        """A read of `party` whose caller went while it read, charged `charged` then,
        cost `spent` in its turn (`cost` in all): the rest charged, and what its
        caller's next read expects."""
        self.reading.spent(charged, spent, party)
        self._costs.pop(party, None)
        self._costs[party] = cost
        if len(self._costs) > PARTIES_KEPT:
            del self._costs[next(iter(self._costs))]

    def writing(self) -> bool:
        """Whether an event write was admitted (or an import wrote a batch) within
        WRITING_SECONDS; on any thread."""
        return self._last_write() + WRITING_SECONDS >= time.monotonic()

    async def turn(self, expected: float, party: Hashable) -> float | None:
        """The time taken (Reading.take) for a page of `party` once its turn has come,
        or None once no event has been written for WRITING_SECONDS, waiting or not: a
        page that waited behind a funnel's second (five seconds of the budget) went on
        waiting after the writes had stopped, while its caller's pages asked since were
        read at once, before it."""
        quiet_in = self._last_write() + WRITING_SECONDS - time.monotonic()
        if quiet_in < 0:
            return None
        turn = asyncio.ensure_future(self.reading.take(expected, party))
        try:
            while not turn.done() and quiet_in >= 0:
                await asyncio.wait((turn,), timeout=quiet_in)
                quiet_in = self._last_write() + WRITING_SECONDS - time.monotonic()
        except BaseException:  # (its caller went)
            if turn.done() and not turn.cancelled():
                self.reading.spent(turn.result(), 0.0, party)
            turn.cancel()
            raise
        if turn.done():
            return turn.result()
        turn.cancel()  # (a turn given meanwhile is given back: see Reading.take)
        return None


class _Turn:
    """One read's place in a Listing: the turn it holds (None: let go unpaced), and
    what its thread's CPU was when it began and when its turn began.

    A read let go unpaced, at each `loop.between_reads` on its thread, waits there for
    a turn (Listing.turn, on the loop) once events are written, and is charged from
    then on, a SLICE at a time: each slice charged, the next waits for its turn. A
    funnel of seconds let go in a quiet spell (or a count, or a page's tenth of a
    second) ran them all beside the writes that came after; taking one turn for the
    rest of it instead, expecting a millisecond, four funnels let go at once each had
    theirs at once and ran to their end as before (writes at 39-51 a second, as with
    none). Such a read holds its thread while it waits (it holds it anyway: it is
    under way). A read that took its turn before it began keeps it to its end, as a
    page does, and waits holding no thread; in a `sliced` Listing (the reads that may
    take seconds), only until it has cost what it expected, then a SLICE at a time: a
    caller's first counts, each expecting a millisecond, had their turns at once, 8 of
    them, and ran their 2 s each beside the writes (28-39 a second)."""

    def __init__(self, listing: Listing, party: Hashable, expected: float,
                 taken: float | None,
                 clock: Callable[[], float] = time.thread_time) -> None:
        self._listing = listing
        # What a read costs is measured on: its thread's CPU, or (a read whose work is
        # done in the database's process) the time by the clock, less its waits
        self._clock = clock
        self._waited = 0.0  # (by `clock`, for its turns in `_between`)
        self._party = party
        self._expected = expected
        self._loop = asyncio.get_running_loop()
        self.taken = taken  # (set on the loop only)
        self.cost = 0.0  # what the whole read cost its thread, once it ended
        self._began: float | None = None  # its thread's CPU when it began (set there)
        self._paced_from: float | None = None  # ... when its turn began (None: unpaced)
        self._allowed = 0.0  # (what its turn expected: past it, a SLICE at a time)
        self._ended = False
        self._closed = False  # (its caller has its answer, or went: no turn taken since)
        self._waiting: asyncio.Task[float | None] | None = None
        # What close charged a read its caller left while it went on (its turn's
        # expected), the rest charged once it ends; under _lock (closed on the loop,
        # ended on its thread).
        self._charged: float | None = None
        self._lock = threading.Lock()

    def begin(self) -> None:
        """On the read's thread, as it begins."""
        self._began = self._clock()
        if self.taken is not None:
            self._paced_from = self._began
            self._allowed = self.taken
            if self._listing.sliced:
                set_paced(self._between)
        else:
            set_paced(self._between)

    def end(self) -> None:
        """On the read's thread, as it ends: a read whose caller went meanwhile is
        charged the rest of what it cost now (Listing._charge_rest)."""
        with self._lock:
            now = self._clock()
            if self._began is not None:
                self.cost = now - self._began - self._waited
            self._ended = True
            charged, paced_from = self._charged, self._paced_from
        if charged is not None and paced_from is not None:
            with contextlib.suppress(RuntimeError):  # (the loop closed)
                self._loop.call_soon_threadsafe(self._listing._charge_rest, self._party,
                                                charged, now - paced_from, self.cost)

    def _between(self) -> None:
        """On the read's thread, between two of its reads: a turn waited for once events
        are written, then one for each SLICE of CPU it takes, each charged."""
        if self._paced_from is None:
            if not self._listing.writing():
                return
            spent, expected = 0.0, min(self._expected, SLICE)
        else:
            spent = self._clock() - self._paced_from
            if spent < max(self._allowed, SLICE):
                return
            expected = SLICE
        waiting = self._clock()
        try:
            taken = asyncio.run_coroutine_threadsafe(self._take(spent, expected),
                                                     self._loop).result()
        except concurrent.futures.CancelledError:
            raise Cancelled("the caller went before the answer was ready") from None
        now = self._clock()
        self._waited += now - waiting
        self._allowed = expected
        self._paced_from = None if taken is None else now

    async def _take(self, spent: float, expected: float) -> float | None:
        """On the loop: the turn held charged `spent`, then the next one, expecting
        `expected` (None: no event is written now; the read goes on unpaced)."""
        if self._closed:
            raise asyncio.CancelledError
        if self.taken is not None:
            self._listing.reading.spent(self.taken, spent, self._party)
            self.taken = None
        self._waiting = asyncio.current_task()
        try:
            self.taken = await self._listing.turn(expected, self._party)
        finally:
            self._waiting = None
        return self.taken

    def close(self) -> None:
        """On the loop, once its caller has the answer or went: the turn held charged
        what the read cost its thread since the turn began (gone while its read goes
        on: what the turn expected, the read stopping at its next between_reads; gone
        before it began: nothing), a turn being waited for given up."""
        self._closed = True
        if self._waiting is not None:
            self._waiting.cancel()  # (its thread raises Cancelled)
        if self.taken is None:
            return
        with self._lock:
            if self._ended and self._paced_from is not None and self._began is not None:
                # (its waits, all before `_paced_from`, are out of `cost`)
                spent = self.cost + self._waited - (self._paced_from - self._began)
            elif self._began is not None:
                # Gone while it reads on (a short deadline; ComputeTotals' grouping is
                # one statement, no between_reads in it): what it expected now, the
                # rest once it ends. Charged what it expected alone, a caller gone at
                # once again and again read on unbounded.
                spent = self._charged = self.taken
            else:
                spent = 0.0
        self._listing.reading.spent(self.taken, spent, self._party)
