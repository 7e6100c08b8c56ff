"""The budget of reading time shared by the console's feeds and the watches
catching up (server/console/pace.py's Reading): reads in turn once it is spent,
charged what they cost, none held up by a reader that ended while it waited; and a
feed whose read is skipped (every watch reads by itself) skips no row for a watch
that caught up meanwhile. No timing is asserted: what waits and in which order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from server.console.feed import Feed, Held, Item, Page, _Queue
from server.console.pace import Reading
from server.console.watch import Commits


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


class _Stored:
    """Rows 1 to `count`, read as a feed reads them; `last` waits at `gate` once
    `entered` is cleared, so a test acts while a feed's read is made."""

    def __init__(self, count: int) -> None:
        self.ids = list(range(1, count + 1))
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.looks = 0  # calls of `last`

    def read(self, after: int) -> Page:
        items = [Item(row_id, None) for row_id in self.ids if row_id > after]
        return Page(items[-1].id if items else after, items, False)

    def last(self) -> int:
        self.looks += 1
        self.entered.set()
        self.gate.wait(10)
        return self.ids[-1]


class _Open:
    def done(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None


def _feed_of_a_watch_behind(stored: _Stored, poll: float) -> tuple[Feed, _Queue]:
    """A feed of `stored` (not started) whose one watch reads by itself."""
    feed = Feed(stored, 0, Commits(), poll, False, lambda _: 0.0, Reading(0))  # type: ignore[arg-type]
    queue = _Queue(_Open(), Held(1 << 30))
    queue.behind = True
    feed.queues.add(queue)
    return feed, queue


def test_a_watch_that_catches_up_while_its_feed_skips_a_read_misses_nothing() -> None:
    # A feed whose every watch reads by itself skips its read and goes on to the last
    # row; a watch that caught up meanwhile, to the feed's position then, takes the
    # feed's chunks from there: the rows between are read for it, not skipped.
    async def main() -> None:
        stored = _Stored(5)
        feed, queue = _feed_of_a_watch_behind(stored, 0.05)
        stored.gate.clear()
        feed.start()
        await asyncio.get_running_loop().run_in_executor(None, stored.entered.wait, 10)
        queue.behind = False  # (as Watches._watch: it catches up to feed.position)
        upto = feed.position
        stored.gate.set()
        for _ in range(200):
            if queue.chunks:
                break
            await asyncio.sleep(0.01)
        got = [item.id for chunk in queue.chunks for item in chunk.items if item.id > upto]
        assert feed.task is not None
        feed.task.cancel()
        assert upto == 0 and got == [1, 2, 3, 4, 5]

    asyncio.run(main())


def test_a_feed_whose_watches_all_read_by_themselves_waits_for_a_commit() -> None:
    # Its read skipped (none is made for them), it waits for the next commit (or a
    # poll) as after a read that found nothing, not reads again at once.
    async def main() -> None:
        stored = _Stored(5)
        feed, queue = _feed_of_a_watch_behind(stored, 60.0)
        feed.start()
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert feed.task is not None
        feed.task.cancel()
        assert feed.position == 5 and stored.looks == 1 and not queue.chunks

    asyncio.run(main())
