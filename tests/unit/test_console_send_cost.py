"""The budget of the loop's time that the console's watches of single rows take to
make and send their messages (--watch-send-ms; server/console/pace.py's SendCost,
charged by feed.Watches._paced): a message is charged the loop's CPU its client code
took, a turn ends (charged what it spent) when a message's writing waits, past the
budget a watch waits for its turn, and a watch that sent little has the next one.
What waits and in which order, not how long."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from server.console.feed import Watches
from server.console.pace import FIRST_SEND_SECONDS, SendCost
from server.console.watch import Commits


def busy(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU (as a watch's JSON does)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_a_message_is_charged_what_it_cost() -> None:
    cost = SendCost()
    assert cost.each == FIRST_SEND_SECONDS  # (what its first turn expects)
    assert cost.measure(0.002) == 0.002
    assert cost.each == 0.002


async def drain(stream: AsyncIterator[Any], each: float = 0.0, pause: float = 0.0) -> int:
    """Take every item, spending `each` of CPU on it, and then waiting `pause`."""
    count = 0
    async for _ in stream:
        busy(each)
        if pause:
            await asyncio.sleep(pause)
        count += 1
    return count


def test_messages_that_cost_the_loop_more_than_the_budget_wait_for_their_turn() -> None:
    async def main() -> None:
        watches = Watches(Commits(), 10, send_ms=100)  # 100 ms a second; 20 ms unspent
        cost = SendCost()
        # 120 ms of messages (1 ms each) in turns of at most 2 ms: past the 20 ms
        # unspent, turns wait for theirs
        assert await drain(watches._paced(list(range(120)), cost), each=0.001) == 120
        assert 0.001 <= cost.each < 0.01  # its own CPU (what else ran was little)
        assert watches.sending.waits >= 2, "turns past a 20 ms budget never waited"

    asyncio.run(main())


def recorded_takes(watches: Watches) -> list[float]:
    """What each turn of `watches`' sending budget expects to spend, as they are taken."""
    taken: list[float] = []
    take = watches.sending.take

    async def recorded(expected: float, party: Any = "") -> float:
        taken.append(expected)
        return await take(expected, party)

    watches.sending.take = recorded  # type: ignore[method-assign]
    return taken


def test_a_turn_takes_at_most_a_fiftieth_of_the_budgets_second() -> None:
    """A turn is taken before it is spent: the budget ends each one as far below
    nothing as it overran, and every watch waits for that to refill. Turns of a
    grant's 50 messages left it 10-25 ms short, and a live watch beside 200 watches
    catching up waited 0.1-0.3 s for each of its turns."""
    async def main() -> None:
        watches = Watches(Commits(), 10, send_ms=100)  # turns of at most 2 ms
        taken = recorded_takes(watches)
        cost = SendCost()
        cost.measure(0.0005)  # half a millisecond a message: four a turn
        assert await drain(watches._paced(list(range(40)), cost), each=0.0005) == 40
        assert len(taken) >= 10 and max(taken) <= 0.002 + 1e-9, taken

    asyncio.run(main())


def test_without_a_bound_a_grant_is_one_turn() -> None:
    """--watch-send-ms 0: nothing to share, so a grant's messages go in one turn,
    not one turn (and its bookkeeping) each."""
    async def main() -> None:
        watches = Watches(Commits(), 10, send_ms=0)
        taken = recorded_takes(watches)
        cost = SendCost()
        cost.measure(0.0005)
        assert await drain(watches._paced(list(range(40)), cost)) == 40
        assert len(taken) == 1, taken

    asyncio.run(main())


def test_a_watch_whose_writing_waits_is_charged_nothing() -> None:
    async def main() -> None:
        # (as over gRPC) three turns of 2 ms messages within 10 ms a second, 2 ms
        # unspent: charged, the second and third would wait
        watches = Watches(Commits(), 10, send_ms=10)
        cost = SendCost()
        assert await drain(watches._paced(list(range(120)), cost), each=0.002,
                           pause=0.001) == 120
        assert cost.each == FIRST_SEND_SECONDS  # (never measured)
        assert watches.sending.waits == 0

    asyncio.run(main())


def test_a_watch_that_sends_little_has_the_next_turn() -> None:
    async def main() -> None:
        watches = Watches(Commits(), 10, send_ms=100)
        taken = [0, 0, 0]  # messages each heavy watch took
        ended: list[str] = []  # the watches, as they end

        async def heavy(k: int) -> None:  # two turns of 50 ms
            async for _ in watches._paced(list(range(100)), SendCost()):
                busy(0.001)
                taken[k] += 1
            ended.append(f"heavy {k}")

        async def light() -> None:
            await drain(watches._paced([0], SendCost()))
            ended.append("light")

        heavies = [asyncio.ensure_future(heavy(k)) for k in range(3)]
        while not all(taken):  # each has had its first turn; the others wait in line
            await asyncio.sleep(0.01)
        await asyncio.wait([asyncio.ensure_future(light()), *heavies],
                           return_when=asyncio.FIRST_COMPLETED)
        # in the order they asked, it would wait behind their second turns
        assert ended[0] == "light", (ended, taken)
        for watch in heavies:
            watch.cancel()
        await asyncio.gather(*heavies, return_exceptions=True)

    asyncio.run(main())


def test_a_watch_whose_client_stops_reading_holds_no_time_of_the_others() -> None:
    async def main() -> None:
        watches = Watches(Commits(), 10, send_ms=10)  # 2 ms unspent
        stuck = SendCost()
        stuck.measure(0.01)  # its turns expect 50 x 10 ms: half a second
        never = asyncio.Event()

        async def client_that_stopped_reading() -> None:
            async for _ in watches._paced(list(range(50)), stuck):
                await never.wait()  # (its socket full: the write waits)

        stopped = asyncio.ensure_future(client_that_stopped_reading())
        await asyncio.sleep(0.01)  # it has its turn, and waits in it
        # held while it waits, its turn's half second would keep this one in line 50 s
        assert await asyncio.wait_for(drain(watches._paced([0], SendCost())), 5) == 1
        assert watches.sending.waits == 0
        stopped.cancel()
        await asyncio.gather(stopped, return_exceptions=True)

    asyncio.run(main())


def test_a_turn_ended_by_a_write_that_waits_keeps_the_rest_of_its_grant_of_messages() -> None:
    async def main() -> None:
        # (10 a second: what refills while the first 50 are sent, even on a loaded
        # machine, is far from the next grant of 10; at 100 a second a slow run had it)
        watches = Watches(Commits(), 10, messages_per_second=10, send_ms=100)
        # every write waits (as over gRPC): each message a turn of the time of its own,
        # but the grants of messages (50 unspent, then 10) are its and used up
        assert await asyncio.wait_for(drain(watches._paced(list(range(60)), SendCost()),
                                            pause=0.001), 10) == 60
        assert watches.pace.waits == 1, "a grant of messages was let go with its turn"

    asyncio.run(main())
