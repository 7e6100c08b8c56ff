"""The budget of messages shared by the console's watches of single rows
(server/console/pace.py): grants in turn, never past the budget for long, none
lost to a watch that ended while it waited. No timing is asserted: what waits
and in which order."""

from __future__ import annotations

import asyncio

import pytest

from server.console.pace import GRANT, Pace


async def settle() -> None:
    """Let every callback that is ready run (no timer fires this fast)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_no_bound_grants_whatever_is_asked() -> None:
    async def main() -> None:
        pace = Pace(0)
        assert await pace.take(10_000) == 10_000
        assert pace.waits == 0

    asyncio.run(main())


def test_within_the_budget_nothing_waits_and_a_grant_is_at_most_a_grant() -> None:
    async def main() -> None:
        pace = Pace(1_000)  # may keep up to a grant unspent (50 > 1,000 / 20)
        assert await pace.take(500) == GRANT
        assert pace.waits == 0 and pace.waiting == 0

    asyncio.run(main())


def test_past_the_budget_a_watch_waits_for_its_turn() -> None:
    async def main() -> None:
        pace = Pace(200)
        assert await pace.take(GRANT) == GRANT  # all that was unspent
        late = asyncio.ensure_future(pace.take(GRANT))
        await settle()
        assert not late.done()  # the budget is spent: it waits
        assert pace.waits == 1 and pace.waiting == 1
        assert await asyncio.wait_for(late, 5) == GRANT  # a quarter of a second's worth
        assert pace.waiting == 0

    asyncio.run(main())


def test_watches_are_served_in_the_order_they_asked() -> None:
    async def main() -> None:
        pace = Pace(2_000)
        await pace.take(GRANT * 2)  # 100 unspent (2,000 / 20): spent in two grants
        await pace.take(GRANT)
        order: list[str] = []

        async def watch(name: str, wanted: int) -> None:
            await pace.take(wanted)
            order.append(name)

        tasks = [asyncio.ensure_future(watch(name, wanted))
                 for name, wanted in (("first", GRANT), ("second", 1), ("third", GRANT))]
        await settle()
        assert order == [] and pace.waiting == 3
        # the second asks for less, but does not pass the first
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert order == ["first", "second", "third"]

    asyncio.run(main())


def test_a_watch_that_ends_while_it_waits_holds_no_one_up() -> None:
    async def main() -> None:
        pace = Pace(500)
        await pace.take(GRANT)
        gone = asyncio.ensure_future(pace.take(GRANT))
        behind = asyncio.ensure_future(pace.take(GRANT))
        await settle()
        assert pace.waiting == 2
        gone.cancel()
        await settle()
        assert pace.waiting == 1
        assert await asyncio.wait_for(behind, 5) == GRANT
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert pace.waiting == 0

    asyncio.run(main())
