"""Large requests of the keys that are handed out (writer and reader keys) take
turns in a budget of time a second, fair between keys.

A request of more than LARGE_REQUEST_BYTES is decoded and checked off the loop,
but on the interpreter's one lock, and what it costs depends on its shape more
than its bytes: json_format takes about 12 us for each small element of a list
(a 9 MB body of 400,000 product details, one bare id each: 6 s of CPU; a binary
event of 290,000 products, 1 s to check). Four such bodies at once of one shop's
writer key (public in its pages) took another project's durable writes from about
350 a second to 8 (the median 1.7 ms -> 69 ms, the longest 3.7 s). Now those of
all writer and reader keys together take at most SECONDS_A_SECOND of each second
(console.pace.Reading: the next turn to the key that has had the least), and
another key's small calls keep their pace. Admin keys (kept secret, and the ones
that send large inline imports) and calls with auth off are not paced.

Before its turn, a large request is paced by its client address too (LargeBytes):
the turns are fair between keys, but a writer key is shared by a shop's every
visitor, and anyone who reads its pages. An address past LARGE_BYTES_PER_SECOND
of large requests waits for its bytes; another address's large requests, and every
small call, do not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from server.clock import Clock
from server.console.pace import Reading
from server.errors import ResourceExhausted
from server.policy.auth import Grant, Role
from server.policy.quota import TokenBuckets

# The time a second that large requests of writer and reader keys take together
# (wall time from their decoding to their answer, at most the process's CPU meanwhile).
SECONDS_A_SECOND = 0.5
# The large requests of one key that may wait for their turn at once; past them it is
# answered RESOURCE_EXHAUSTED at once. Each holds its whole message while it waits (and
# over gRPC a call's slot): a public writer key sending many at once made the server keep
# --max-concurrent-rpcs of them, where it had decoded them, slowly, as they came.
MAX_WAITING_PER_KEY = 4
# ... of one client address of a writer key (see `turn`); and of a writer key from all
# its addresses, so that one client of many addresses (an IPv6 /48 holds 65,536 /64s)
# makes the server hold no more than this many messages of a key.
MAX_WAITING_PER_WRITER_KEY = 16
# What a large request is expected to cost before it is made, by its bytes: about
# the most that JSON of small list elements costs. A key's requests sent at once
# wait for the first's actual cost instead of all starting on a budget not yet spent.
EXPECTED_SECONDS_PER_BYTE = 1e-6


class Turn:
    """A large request's turn: it ends once its call has (`ended`: answered, refused
    or gone) and so has its decode (`decoding`), which runs on a decoder's thread and
    goes on when its caller goes (a turn that ended with the call let a key whose
    callers went decode its bodies side by side)."""

    __slots__ = ("_budget", "_party", "_group", "_taken", "_started", "_cpu", "_open")

    def __init__(self, budget: Reading, party: bytes, group: bytes | None,
                 taken: float) -> None:
        self._budget, self._party, self._group, self._taken = budget, party, group, taken
        self._started = time.perf_counter()
        self._cpu = time.process_time()
        self._open = 1  # the call, and its decode once begun

    def decoding(self) -> Callable[[], None]:
        """What to call once the decode about to begin has ended."""
        self._open += 1
        return self.ended

    def ended(self) -> None:
        self._open -= 1
        if self._open == 0:
            # Its wall time, but no more than the process's CPU meanwhile: a call that
            # waited for the store (locked by another connection, behind a long write)
            # cost nothing while it waited, and was charged the whole wait (3 s locked:
            # every key's next large request waited 6 s on an idle server).
            self._budget.spent(self._taken, min(time.perf_counter() - self._started,
                                                time.process_time() - self._cpu), self._party,
                               self._group)


class LargeRequests:
    """The budget of the large requests of writer and reader keys, on the server's
    loop."""

    def __init__(self, seconds_a_second: float = SECONDS_A_SECOND) -> None:
        self._budget = Reading(seconds_a_second)
        self._waiting: dict[bytes, int] = {}  # by key (see `turn`): its requests waiting

    @property
    def waiting(self) -> int:
        """Large requests waiting for their turn now."""
        return self._budget.waiting

    async def turn(self, grant: Grant | None, size: int, address: str = "") -> Turn | None:
        """Once the turn of a request of `size` bytes from client `address` has come:
        its Turn; None at once for one that is not paced (auth off, an admin key).
        RESOURCE_EXHAUSTED when MAX_WAITING_PER_KEY of the key's wait already (of a
        writer key, of the key from `address`)."""
        if grant is None or grant.role is Role.ADMIN:
            return None
        # By the key itself (its digest), not its Grant: a SIGHUP makes a new one of
        # every key, and the requests waiting under the old one were not counted (8 of
        # one key waited across a reload), and a freed Grant's id, reused by another
        # key's, merged two keys' turns.
        party = key = grant.identity
        sender = "this key"
        if grant.role is Role.WRITER and address:
            # A writer key is public (in its shop's pages): each client address of it is
            # a party of its own, or one client sending 4 large events at once had every
            # large event of the shop's visitors refused, and the next turns its own.
            # Within the key's share of the turns, though: a party alone per address
            # let one client of 8 addresses have 8 turns to another key's one.
            party += b" " + address.encode()
            sender = "this key from this client address"
        waiting = self._waiting.get(party, 0)
        of_key = self._waiting.get(key, 0) if party != key else 0
        if waiting >= MAX_WAITING_PER_KEY or of_key >= MAX_WAITING_PER_WRITER_KEY:
            if of_key >= MAX_WAITING_PER_WRITER_KEY:
                waiting, sender = of_key, "this key"
            raise ResourceExhausted(
                f"{waiting} large requests (over 64 KiB or 250 elements) of {sender} "
                f"already wait for their turn: a key's large requests take turns with every "
                f"other writer and reader key's; send it again once one is answered",
                retry_after=1.0)
        counted = (party, key) if party != key else (party,)
        for each in counted:
            self._waiting[each] = self._waiting.get(each, 0) + 1
        try:
            taken = await self._budget.take(size * EXPECTED_SECONDS_PER_BYTE, party,
                                            key if party != key else None)
        finally:
            for each in counted:
                left = self._waiting[each] - 1
                if left:
                    self._waiting[each] = left
                else:
                    del self._waiting[each]
        return Turn(self._budget, party, key if party != key else None, taken)


# The bytes a second of large requests (those over LARGE_REQUEST_BYTES) of writer and
# reader keys that one client address (an IPv6 client's /64) is served at once, and
# how much of that piles up unspent: an occasional large event (up to the burst) is
# served at once; a flood waits for its bytes. The turns above are fair between keys,
# not callers, and a writer key is public (in its shop's pages): one client sending
# events of 100,000 attributes (1.49 MB of binary, 2.4 MB of JSON; about 0.3 s of the
# server's CPU each, much of it on the interpreter's one lock outside its turn: its
# answer, the collector) took another project's durable writes from 2,022 a second to
# 843 under the turns alone. This budget bounds one address's share (about 0.7 such
# events a second) whatever the number of other keys and addresses; in the same flood
# it measured barely tighter than the turns (writes 1,440 -> 1,131 a second before it,
# 1,448 -> 978 with it, on a machine that moved more than that between runs): what an
# event of that size still costs the others is its stall of the loop, not its rate.
LARGE_BYTES_PER_SECOND = 1 << 20
LARGE_BYTES_BURST = 16 << 20  # (a few large requests at once are served as they come)
# Large requests of one address (of all of them) that may wait for their bytes at once;
# past them the next is answered RESOURCE_EXHAUSTED at once (each holds its message).
MAX_WAITING_PER_ADDRESS = 4
MAX_WAITING_LARGE = 64


class LargeBytes:
    """The bytes a second of the large requests of each client address, on the loop:
    past its budget, a request waits (paced, as the refusals of keyless callers are)
    until its bytes are due. `clock` and `sleep` are injectable for tests."""

    def __init__(self, per_second: int = LARGE_BYTES_PER_SECOND,
                 burst: int = LARGE_BYTES_BURST, clock: Clock | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._buckets = TokenBuckets(per_second * 60, clock, burst=burst)
        self._burst = burst
        self._sleep = sleep
        self._by_address: dict[str, int] = {}
        self.waiting = 0  # large requests waiting for their bytes now

    async def pace(self, address: str, size: int) -> float:
        """The seconds a large request of `size` bytes from `address` waited for its
        bytes (0.0: served at once; "", an address unknown, is not paced). One of more
        bytes than the burst takes a whole burst. RESOURCE_EXHAUSTED at once when
        MAX_WAITING_PER_ADDRESS of the address (MAX_WAITING_LARGE in all) wait."""
        if not address:
            return 0.0
        amount = min(size, self._burst)
        due = self._buckets.try_take(address, amount)
        if due is None:
            return 0.0
        held = self._by_address.get(address, 0)
        if held >= MAX_WAITING_PER_ADDRESS or self.waiting >= MAX_WAITING_LARGE:
            raise ResourceExhausted(
                f"{max(held, self.waiting)} large requests (over 64 KiB or 250 elements) "
                f"already wait for their bytes ({LARGE_BYTES_PER_SECOND >> 20} MiB a second "
                f"from one client address); send it again once one is answered",
                retry_after=max(1.0, round(due, 1)))
        self._by_address[address] = held + 1
        self.waiting += 1
        waited = 0.0
        try:
            while due is not None:
                # (at least a hundredth: a due rounded short left a sliver, due at once)
                due = max(due, 0.01)
                await self._sleep(due)
                waited += due
                due = self._buckets.try_take(address, amount)
        finally:
            self.waiting -= 1
            left = self._by_address.pop(address) - 1
            if left:
                self._by_address[address] = left
        return waited
