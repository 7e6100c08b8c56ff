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
"""

from __future__ import annotations

import time
from collections.abc import Callable

from server.console.pace import Reading
from server.errors import ResourceExhausted
from server.policy.auth import Grant, Role

# The time a second that large requests of writer and reader keys take together
# (wall time from their decoding to their answer, at most the process's CPU meanwhile).
SECONDS_A_SECOND = 0.5
# The large requests of one key that may wait for their turn at once; past them it is
# answered RESOURCE_EXHAUSTED at once. Each holds its whole message while it waits (and
# over gRPC a call's slot): a public writer key sending many at once made the server keep
# --max-concurrent-rpcs of them, where it had decoded them, slowly, as they came.
MAX_WAITING_PER_KEY = 4
# What a large request is expected to cost before it is made, by its bytes: about
# the most that JSON of small list elements costs. A key's requests sent at once
# wait for the first's actual cost instead of all starting on a budget not yet spent.
EXPECTED_SECONDS_PER_BYTE = 1e-6


class Turn:
    """A large request's turn: it ends once its call has (`ended`: answered, refused
    or gone) and so has its decode (`decoding`), which runs on a decoder's thread and
    goes on when its caller goes (a turn that ended with the call let a key whose
    callers went decode its bodies side by side)."""

    __slots__ = ("_budget", "_party", "_taken", "_started", "_cpu", "_open")

    def __init__(self, budget: Reading, party: bytes, taken: float) -> None:
        self._budget, self._party, self._taken = budget, party, taken
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
                                                time.process_time() - self._cpu), self._party)


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

    async def turn(self, grant: Grant | None, size: int) -> Turn | None:
        """Once the turn of a request of `size` bytes has come: its Turn; None at once
        for one that is not paced (auth off, an admin key). RESOURCE_EXHAUSTED when
        MAX_WAITING_PER_KEY of the key's wait already."""
        if grant is None or grant.role is Role.ADMIN:
            return None
        # By the key itself (its digest), not its Grant: a SIGHUP makes a new one of
        # every key, and the requests waiting under the old one were not counted (8 of
        # one key waited across a reload), and a freed Grant's id, reused by another
        # key's, merged two keys' turns.
        party = grant.identity
        waiting = self._waiting.get(party, 0)
        if waiting >= MAX_WAITING_PER_KEY:
            raise ResourceExhausted(
                f"{waiting} large requests (over 64 KiB or 250 elements) of this key "
                f"already wait for their turn: a key's large requests take turns with every "
                f"other writer and reader key's; send it again once one is answered",
                retry_after=1.0)
        self._waiting[party] = waiting + 1
        try:
            taken = await self._budget.take(size * EXPECTED_SECONDS_PER_BYTE, party)
        finally:
            left = self._waiting[party] - 1
            if left:
                self._waiting[party] = left
            else:
                del self._waiting[party]
        return Turn(self._budget, party, taken)
