"""The budget of the console's list pages (server/console/pace.py's Listing): a page
is charged what its read cost its thread (CPU, not what it expected), a page whose
caller went before its read began is charged nothing, and a caller's next page
expects what its last one cost. No timing is asserted: what waits, and what is
charged, in CPU burnt on purpose."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from server.console.pace import FIRST_READ_SECONDS, Listing


def burn(seconds: float) -> str:
    """`seconds` of this thread's CPU."""
    began = time.thread_time()
    while time.thread_time() - began < seconds:
        pass
    return "page"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_page_is_charged_its_threads_cpu_and_the_next_callers_page_waits() -> None:
    async def main() -> None:
        listing = Listing(100)  # 0.1 s a second: up to 20 ms unspent
        assert await listing.read("a", asyncio.to_thread, burn, 0.03) == "page"
        # 30 ms charged, not the 1 ms expected: the budget is spent, another's page waits
        late = asyncio.ensure_future(listing.read("b", asyncio.to_thread, burn, 0.0))
        await settle()
        assert not late.done() and listing.reading.waits == 1
        assert await asyncio.wait_for(late, 5) == "page"

    asyncio.run(main())


def test_a_callers_next_page_expects_what_its_last_cost() -> None:
    async def main() -> None:
        listing = Listing(1000)  # a second a second: up to 0.2 s unspent
        taken: list[float] = []
        take = listing.reading.take

        async def noted(expected: float, party: Any = "", group: Any = None) -> float:
            taken.append(expected)
            return await take(expected, party, group)

        listing.reading.take = noted  # type: ignore[method-assign]
        await listing.read("a", asyncio.to_thread, burn, 0.02)
        await listing.read("a", asyncio.to_thread, burn, 0.0)
        await listing.read("b", asyncio.to_thread, burn, 0.0)
        assert taken[0] == FIRST_READ_SECONDS
        assert taken[1] >= 0.02
        assert taken[2] == FIRST_READ_SECONDS  # (another caller's: its own)

    asyncio.run(main())


def test_a_page_whose_caller_went_before_its_read_began_is_charged_nothing() -> None:
    async def main() -> None:
        listing = Listing(100)

        async def gone(fn: Any, *args: Any) -> str:
            raise asyncio.CancelledError  # (as while it waited for its project's thread)

        listing._costs["a"] = 0.05  # its last page cost 50 ms: this one expects as much
        with pytest.raises(asyncio.CancelledError):
            await listing.read("a", gone, burn, 0.03)
        # nothing spent: another caller's page goes at once
        await listing.read("b", asyncio.to_thread, burn, 0.0)
        assert listing.reading.waits == 0

    asyncio.run(main())
