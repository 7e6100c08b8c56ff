"""The turns of the budget of reading time (server/console/pace.py's Reading) are
fair between parties (the projects read): a party with many reads waiting waits
behind its own, another's read has the next turn, and parties with reads waiting
share the time, not the turns. No timing is asserted: the order of the turns."""

from __future__ import annotations

import asyncio

from server.console.pace import PARTIES_KEPT, Reading, SendCost


async def settle() -> None:
    """Let every callback that is ready run (no timer fires this fast)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def turns(reading: Reading, reads: list[tuple[str, float]]) -> list[str]:
    """The parties of `reads` (party, cost), in the order their turns came, each
    asked in the order given once the budget is spent, and charged its cost."""
    reading.spent(await reading.take(), 0.25)  # spent, and more: every read waits
    order: list[str] = []

    async def read(party: str, cost: float) -> None:
        taken = await reading.take(cost, party)
        order.append(party)
        reading.spent(taken, cost)

    tasks = [asyncio.ensure_future(read(party, cost)) for party, cost in reads]
    await settle()
    assert order == [] and reading.waiting == len(reads)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    return order


def test_a_party_with_one_read_goes_before_the_many_of_another() -> None:
    async def main() -> list[str]:
        return await turns(Reading(1.0), [("a", 0.001)] * 20 + [("b", 0.001)])

    order = asyncio.run(main())
    assert order.index("b") <= 1, order  # after the first of a's at most, not the 20th


def test_a_partys_reads_keep_their_order_and_the_parties_take_turns() -> None:
    async def main() -> list[str]:
        reading = Reading(1.0)
        order: list[str] = []
        reading.spent(await reading.take(), 0.25)

        async def read(name: str) -> None:
            taken = await reading.take(0.001, name[0])
            order.append(name)
            reading.spent(taken, 0.001)

        tasks = [asyncio.ensure_future(read(name))
                 for name in ("a1", "a2", "a3", "b1", "b2", "c1")]
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return order

    assert asyncio.run(main()) == ["a1", "b1", "c1", "a2", "b2", "a3"]


def test_parties_share_the_time_not_the_turns() -> None:
    """Reads of 10 ms of one party, of 1 ms of another: ten of the second's for
    each of the first's, as long as both have reads waiting."""
    async def main() -> list[str]:
        return await turns(Reading(1.0), [("slow", 0.01)] * 4 + [("quick", 0.001)] * 40)

    order = asyncio.run(main())
    first = order[:22]
    assert first.count("slow") == 2 and first.count("quick") == 20, order


def test_a_party_whose_reader_ended_while_it_waited_holds_no_one_up() -> None:
    async def main() -> None:
        reading = Reading(0.1)
        reading.spent(await reading.take(), 0.03)
        gone = asyncio.ensure_future(reading.take(0.001, "a"))
        behind = asyncio.ensure_future(reading.take(0.001, "b"))
        await settle()
        assert reading.waiting == 2
        gone.cancel()
        await settle()
        assert reading.waiting == 1
        reading.spent(await asyncio.wait_for(behind, 5), 0.0, "b")
        assert reading.waiting == 0

    asyncio.run(main())


def test_parties_of_one_turn_each_are_not_remembered_without_end() -> None:
    # Each watch is a party of its own in the budget of sending (its SendCost): a
    # party that takes one turn never moves the clock, so each one stayed ahead of
    # it and was remembered for good (566 after a 20-minute soak of console watches
    # opened and dropped, one more for every watch ever opened).
    async def main() -> None:
        reading = Reading(0.2)
        for _ in range(5 * PARTIES_KEPT):
            party = SendCost()
            reading.spent(await reading.take(0.00005, party), 0.00005, party)
        assert len(reading._given) <= PARTIES_KEPT + 1

    asyncio.run(main())
