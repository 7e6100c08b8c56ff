"""The budget of reading time shared by the console's feeds and the watches
catching up (server/console/pace.py's Reading): reads in turn once it is spent,
charged what they cost, none held up by a reader that ended while it waited. No
timing is asserted: what waits and in which order."""

from __future__ import annotations

import asyncio

import pytest

from server.console.pace import Reading


async def settle() -> None:
    """Let every callback that is ready run (no timer fires this fast)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_no_bound_never_waits() -> None:
    async def main() -> None:
        reading = Reading(0)
        for _ in range(100):
            reading.spent(await reading.take(), 1.0)
        assert reading.waits == 0

    asyncio.run(main())


def test_within_the_budget_a_read_goes_at_once() -> None:
    async def main() -> None:
        reading = Reading(1.0)  # a second a second: up to 0.2 s unspent
        taken = await reading.take()
        reading.spent(taken, 0.0001)
        reading.spent(await reading.take(), 0.0001)
        assert reading.waits == 0 and reading.waiting == 0

    asyncio.run(main())


def test_a_read_that_cost_more_than_was_left_makes_the_next_wait() -> None:
    async def main() -> None:
        reading = Reading(0.1)  # up to 20 ms unspent
        reading.spent(await reading.take(), 0.03)  # 30 ms: the budget is spent, and more
        late = asyncio.ensure_future(reading.take())
        await settle()
        assert not late.done() and reading.waits == 1 and reading.waiting == 1
        reading.spent(await asyncio.wait_for(late, 5), 0.0)  # once the budget is back
        assert reading.waiting == 0

    asyncio.run(main())


def test_reads_go_in_the_order_they_asked() -> None:
    async def main() -> None:
        reading = Reading(0.5)
        reading.spent(await reading.take(), 0.15)  # 0.1 s unspent: now 0.05 s short
        order: list[str] = []

        async def read(name: str) -> None:
            taken = await reading.take()
            order.append(name)
            reading.spent(taken, 0.001)

        tasks = [asyncio.ensure_future(read(name)) for name in ("first", "second", "third")]
        await settle()
        assert order == [] and reading.waiting == 3
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert order == ["first", "second", "third"]

    asyncio.run(main())


def test_a_read_that_cost_less_than_it_took_lets_the_next_go_at_once() -> None:
    async def main() -> None:
        reading = Reading(0.005)  # 1 ms unspent; a read takes 1 ms (the first guess)
        first = await reading.take()
        await reading.take()  # none left, but none owed: it goes too
        third = asyncio.ensure_future(reading.take())  # 1 ms owed: it waits
        await settle()
        assert not third.done()
        reading.spent(first, 0.0)  # it read nothing after all: its time is back
        await settle()
        assert third.done() and reading.waits == 1

    asyncio.run(main())


def test_a_reader_that_ends_while_it_waits_holds_no_one_up() -> None:
    async def main() -> None:
        reading = Reading(0.1)
        reading.spent(await reading.take(), 0.03)
        gone = asyncio.ensure_future(reading.take())
        behind = asyncio.ensure_future(reading.take())
        await settle()
        assert reading.waiting == 2
        gone.cancel()
        await settle()
        assert reading.waiting == 1
        reading.spent(await asyncio.wait_for(behind, 5), 0.0)
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert reading.waiting == 0

    asyncio.run(main())


def test_a_read_takes_what_its_reader_expects_it_to_cost() -> None:
    """A feed whose reads cost 15 ms asks for 15 ms, not for what the reads of
    empty feeds cost: else many of them were let go at once, and owed seconds."""
    async def main() -> None:
        reading = Reading(0.1)  # 20 ms unspent
        taken = await reading.take(0.015)
        assert taken == 0.015
        await reading.take(0.015)  # 5 ms left: it goes, and 10 ms are owed
        late = asyncio.ensure_future(reading.take(0.0001))
        await settle()
        assert not late.done() and reading.waits == 1

    asyncio.run(main())
