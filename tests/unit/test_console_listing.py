"""The budget of the console's list pages (server/console/pace.py's Listing): a page
is charged what its read cost its thread (CPU, not what it expected), a page whose
caller went before its read began is charged nothing, and a caller's next page
expects what its last one cost. No timing is asserted: what waits, and what is
charged, in CPU burnt on purpose."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import pytest

from server.console.pace import FIRST_READ_SECONDS, SLICE, WRITING_SECONDS, Listing
from server.errors import Cancelled
from server.loop import LONG_READS_PER_SHARE, between_reads, long_read

# When the process last committed, for Listing: now (it writes all along).
WRITING = time.monotonic


def burn(seconds: float) -> str:
    """`seconds` of this thread's CPU."""
    began = time.thread_time()
    while time.thread_time() - began < seconds:
        pass
    return "page"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def turns_asked(listing: Listing) -> list[float]:
    """What each turn `listing` is asked for expects, as they are asked."""
    asked: list[float] = []
    turn = listing.turn

    async def noted(expected: float, party: Any) -> float | None:
        asked.append(expected)
        return await turn(expected, party)

    listing.turn = noted  # type: ignore[method-assign]
    return asked


def test_a_page_is_charged_its_threads_cpu_and_the_next_callers_page_waits() -> None:
    async def main() -> None:
        listing = Listing(100, WRITING)  # 0.1 s a second: up to 20 ms unspent
        assert await listing.read("a", asyncio.to_thread, burn, 0.03) == "page"
        # 30 ms charged, not the 1 ms expected: the budget is spent, another's page waits
        late = asyncio.ensure_future(listing.read("b", asyncio.to_thread, burn, 0.0))
        await settle()
        assert not late.done() and listing.reading.waits == 1
        assert await asyncio.wait_for(late, 5) == "page"

    asyncio.run(main())


def test_a_callers_next_page_expects_what_its_last_cost() -> None:
    async def main() -> None:
        listing = Listing(1000, WRITING)  # a second a second: up to 0.2 s unspent
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
        listing = Listing(100, WRITING)

        async def gone(fn: Any, *args: Any) -> str:
            raise asyncio.CancelledError  # (as while it waited for its project's thread)

        listing._costs["a"] = 0.05  # its last page cost 50 ms: this one expects as much
        with pytest.raises(asyncio.CancelledError):
            await listing.read("a", gone, burn, 0.03)
        # nothing spent: another caller's page goes at once
        await listing.read("b", asyncio.to_thread, burn, 0.0)
        assert listing.reading.waits == 0

    asyncio.run(main())


def test_a_process_that_writes_nothing_reads_its_pages_unpaced_and_uncharged() -> None:
    """The budget keeps the writes' pace: with none to keep, a rare filter's search on
    a quiet server came two calls a second, each reading for its tenth of a second."""
    async def main() -> None:
        last = [-math.inf]
        listing = Listing(100, lambda: last[0])
        for _ in range(3):  # 90 ms, of a budget of 20 ms unspent
            assert await listing.read("a", asyncio.to_thread, burn, 0.03) == "page"
        assert await listing.read("b", asyncio.to_thread, burn, 0.0) == "page"
        assert listing.reading.waits == 0
        # A write: the budget holds from now on, as it was (nothing was charged).
        last[0] = time.monotonic() + 60  # (and on: a loaded machine is slow)
        # (60 ms: more than its last page's 30 ms, which it expects and which the budget
        # refills meanwhile on a loaded machine)
        assert await listing.read("a", asyncio.to_thread, burn, 0.06) == "page"
        late = asyncio.ensure_future(listing.read("b", asyncio.to_thread, burn, 0.0))
        await settle()
        assert not late.done() and listing.reading.waits == 1
        assert await asyncio.wait_for(late, 5) == "page"
        # ... until WRITING_SECONDS have passed since
        last[0] = time.monotonic() - WRITING_SECONDS - 1
        for _ in range(3):
            await listing.read("a", asyncio.to_thread, burn, 0.03)
        assert listing.reading.waits == 1

    asyncio.run(main())


def test_a_page_waiting_when_the_writes_stop_goes_then_before_its_callers_later_one() -> None:
    """A page waits for its turn only while events are written: one that waited behind
    a funnel's second (a deficit of five seconds' budget) went on waiting once the
    writes had stopped, while its caller's next page, asked later, was read at once."""
    async def main() -> None:
        last = [time.monotonic()]
        listing = Listing(100, lambda: last[0])
        await listing.read("a", asyncio.to_thread, burn, 0.2)  # about 2 s of budget owed
        started: list[str] = []

        def run(name: str) -> Any:
            async def started_then_read(fn: Any, *args: Any) -> str:
                started.append(name)
                return await asyncio.to_thread(fn, *args)
            return started_then_read

        # the last write was almost WRITING_SECONDS ago: the writes stop in 0.1 s
        last[0] = time.monotonic() - WRITING_SECONDS + 0.1
        first = asyncio.ensure_future(listing.read("b", run("first"), burn, 0.0))
        await settle()
        assert not first.done() and listing.reading.waiting == 1
        await asyncio.sleep(0.2)  # (the writes have stopped since)
        assert await listing.read("b", run("second"), burn, 0.0) == "page"
        assert await asyncio.wait_for(first, 30) == "page"
        assert started == ["first", "second"]
        assert listing.reading.waiting == 0  # (its place in line given up)

    asyncio.run(main())


def test_a_page_whose_caller_went_while_it_read_is_charged_its_cost_once_read() -> None:
    """A caller gone while its page is read (a short deadline) was charged what it
    expected (1 ms, or what its last such page was charged, the same) while its thread
    read on for its window: a caller that looped so was never held back."""
    async def main() -> None:
        listing = Listing(100, WRITING)  # up to 20 ms unspent
        started, go_on, ended = threading.Event(), threading.Event(), threading.Event()

        def page() -> str:
            started.set()
            go_on.wait(10)
            try:
                return burn(0.05)
            finally:
                ended.set()

        read = asyncio.ensure_future(listing.read("a", asyncio.to_thread, page))
        assert await asyncio.to_thread(started.wait, 10)
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        go_on.set()
        assert await asyncio.to_thread(ended.wait, 10)
        for _ in range(1000):  # (until its end is said to the loop: its caller's cost)
            if listing._costs["a"] >= 0.05:
                break
            await asyncio.sleep(0.01)
        # its 50 ms charged, not the 1 ms expected: another caller's page waits
        late = asyncio.ensure_future(listing.read("b", asyncio.to_thread, burn, 0.0))
        await settle()
        assert not late.done() and listing.reading.waits == 1
        assert await asyncio.wait_for(late, 5) == "page"

    asyncio.run(main())


class Chunks:
    """A read of `count` chunks of `each` seconds of its thread's CPU, a
    loop.between_reads before each (as an insight's pages), that waits after its
    first between_reads until the test lets it go on."""

    def __init__(self, count: int, each: float) -> None:
        self.count, self.each = count, each
        self.begun = threading.Event()
        self.go_on = threading.Event()
        self.cancelled = False

    def __call__(self) -> str:
        between_reads()
        self.begun.set()
        self.go_on.wait(30)
        try:
            for _ in range(self.count):
                between_reads()
                burn(self.each)
        except Cancelled:
            self.cancelled = True
            raise
        return "funnel"


async def until(done: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.005)


def test_a_read_let_go_unpaced_waits_for_its_turn_as_it_goes_once_events_are_written() -> None:
    """A funnel let go in a quiet spell ran its seconds beside the writes that came
    after: whether events are written is looked at between its reads, not once."""
    async def main() -> None:
        last = [time.monotonic()]
        listing = Listing(100, lambda: last[0])
        await listing.read("x", asyncio.to_thread, burn, 0.2)  # about 2 s of budget owed
        last[0] = -math.inf  # (quiet: let go unpaced)
        chunks = Chunks(3, 0.01)
        read = asyncio.ensure_future(listing.read("a", asyncio.to_thread, chunks))
        await asyncio.to_thread(chunks.begun.wait, 30)
        assert listing.reading.waiting == 0
        last[0] = time.monotonic() + 60  # events written from now on
        chunks.go_on.set()
        await until(lambda: listing.reading.waiting == 1, "the read never waited for its turn")
        assert not read.done()
        last[0] = time.monotonic() - WRITING_SECONDS - 1  # (the writes stop: it goes on)
        assert await asyncio.wait_for(read, 30) == "funnel"
        assert listing.reading.waiting == 0

    asyncio.run(main())


def test_a_read_paced_as_it_goes_is_charged_what_it_cost_from_then_on() -> None:
    async def main() -> None:
        last = [-math.inf]
        listing = Listing(100, lambda: last[0])  # up to 20 ms unspent
        charged = charges(listing)
        chunks = Chunks(5, 0.01)
        read = asyncio.ensure_future(listing.read("a", asyncio.to_thread, chunks))
        await asyncio.to_thread(chunks.begun.wait, 30)
        last[0] = time.monotonic() + 60  # (written from now on: a loaded machine's read
        # outlasted WRITING_SECONDS, and went on unpaced)
        chunks.go_on.set()
        assert await asyncio.wait_for(read, 30) == "funnel"
        # 50 ms of its thread's CPU charged (in turns that expected 1 ms, then a SLICE).
        # (Not told by another caller's page waiting: the budget fills by the clock, and
        # on a busy machine 50 ms of a thread's CPU took long enough to pay it back.)
        assert 0.05 <= sum(charged) < 0.08, charged

    asyncio.run(main())


def test_a_read_paced_as_it_goes_takes_a_turn_for_each_slice_of_its_cpu() -> None:
    """Four funnels let go at once in a quiet spell, each taking one turn for the rest
    of its read (expecting a millisecond) once the writes came, each had its turn at
    once and ran to its end: the writes went at 39-51 a second, as with none."""
    async def main() -> None:
        last = [-math.inf]
        listing = Listing(100, lambda: last[0])  # up to 20 ms unspent
        asked = turns_asked(listing)
        chunks = Chunks(10, 0.01)  # 100 ms once the writes come: 5 budgets' unspent
        read = asyncio.ensure_future(listing.read("a", asyncio.to_thread, chunks))
        await asyncio.to_thread(chunks.begun.wait, 30)
        last[0] = time.monotonic() + 60  # (written all along)
        chunks.go_on.set()
        assert await asyncio.wait_for(read, 30) == "funnel"
        # The turns asked for, not those waited for (the budget fills by the clock: on a
        # busy machine none waited): expecting a millisecond (its page's, then its first
        # once the writes came), then one a SLICE of its CPU.
        assert asked[:2] == [FIRST_READ_SECONDS] * 2 and asked.count(SLICE) >= 4, asked
        assert set(asked[2:]) == {SLICE}, asked

    asyncio.run(main())


def test_a_read_uncharged_for_what_it_read_before_events_were_written() -> None:
    async def main() -> None:
        last = [-math.inf]
        listing = Listing(100, lambda: last[0])

        def quiet_then_chunks() -> str:
            burn(0.1)  # (a quiet spell's: not charged)
            last[0] = time.monotonic()
            between_reads()
            return "funnel"

        assert await listing.read("a", asyncio.to_thread, quiet_then_chunks) == "funnel"
        assert await listing.read("b", asyncio.to_thread, burn, 0.0) == "page"
        assert listing.reading.waits == 0  # (100 ms charged would owe 0.8 s: it waited)

    asyncio.run(main())


def test_a_read_whose_caller_went_while_it_waited_for_its_turn_stops_there() -> None:
    async def main() -> None:
        last = [time.monotonic()]
        listing = Listing(100, lambda: last[0])
        await listing.read("x", asyncio.to_thread, burn, 0.2)  # about 2 s of budget owed
        last[0] = -math.inf
        chunks = Chunks(3, 0.01)
        read = asyncio.ensure_future(listing.read("a", asyncio.to_thread, chunks))
        await asyncio.to_thread(chunks.begun.wait, 30)
        last[0] = time.monotonic() + 60  # (written from now on)
        chunks.go_on.set()
        await until(lambda: listing.reading.waiting == 1, "the read never waited for its turn")
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        await until(lambda: chunks.cancelled, "the read's thread went on")
        assert listing.reading.waiting == 0

    asyncio.run(main())


def test_a_lone_read_with_no_write_never_asks_the_loop_for_a_turn() -> None:
    async def main() -> None:
        listing = Listing(100, lambda: -math.inf)
        asked = turns_asked(listing)
        chunks = Chunks(20, 0.005)
        chunks.go_on.set()
        assert await listing.read("a", asyncio.to_thread, chunks) == "funnel"
        assert asked == [FIRST_READ_SECONDS]  # (at its start alone)
        assert listing.reading.waits == 0

    asyncio.run(main())


def test_a_long_read_past_what_it_expected_takes_a_turn_for_each_slice_of_its_cpu() -> None:
    """A caller's first counts (reads that may take seconds), each expecting a
    millisecond, had their turns at once, 8 of them, and ran their 2 s each beside the
    writes. In a `sliced` Listing (the long reads') a read goes a slice at a time once
    it has cost what it expected; in the pages' it keeps its turn to its end."""
    async def main(sliced: bool) -> list[float]:
        listing = Listing(100, WRITING, sliced=sliced)
        asked = turns_asked(listing)
        chunks = Chunks(10, 0.01)  # 100 ms of its thread's CPU, of a turn of 1 ms
        chunks.go_on.set()
        assert await listing.read("a", asyncio.to_thread, chunks) == "funnel"
        return asked

    # The turns asked for, not those waited for: the budget fills by the clock, and
    # on a busy machine 100 ms of a thread's CPU took long enough that none waited.
    asked = asyncio.run(main(sliced=True))
    assert asked[0] == FIRST_READ_SECONDS and len(asked) >= 4, asked  # (100 ms / SLICE)
    assert set(asked[1:]) == {SLICE}, asked
    assert asyncio.run(main(sliced=False)) == [FIRST_READ_SECONDS]


def test_a_read_waiting_for_its_projects_thread_holds_none_of_the_budget() -> None:
    """500 counts of one reader key in flight each took a turn of the long reads'
    budget, expecting what the last count cost, then waited for one of its project's
    two threads, held by counts waiting for their next slice behind those turns: the
    project's long reads ran none of the budget for minutes. Now only the reads that
    hold their project's turn (LONG_READS_PER_SHARE) take the budget's."""
    release = threading.Event()

    def held() -> str:
        release.wait(30)
        return "count"

    async def main() -> None:
        listing = Listing(1000, WRITING, sliced=True)  # up to 0.2 s unspent
        listing._costs["a"] = 0.02  # (each expects 20 ms: ten turns' worth unspent)
        taken: list[float] = []
        take = listing.reading.take

        async def noted(expected: float, party: Any = "", group: Any = None) -> float:
            given = await take(expected, party, group)
            taken.append(given)
            return given

        listing.reading.take = noted  # type: ignore[method-assign]
        reads = [asyncio.ensure_future(listing.read("a", long_read, held, share="p-budget"))
                 for _ in range(8)]
        try:
            await settle()
            assert len(taken) == LONG_READS_PER_SHARE, taken
        finally:
            release.set()
        assert await asyncio.wait_for(asyncio.gather(*reads), 30) == ["count"] * 8

    asyncio.run(main())


def charges(listing: Listing) -> list[float]:
    """What each read (or slice of one) of `listing` is charged, as it is."""
    charged: list[float] = []
    spent = listing.reading.spent

    def noted(taken: float, seconds: float, party: Any = "", group: Any = None) -> None:
        charged.append(seconds)
        spent(taken, seconds, party, group)

    listing.reading.spent = noted  # type: ignore[method-assign]
    return charged


def test_a_read_done_elsewhere_is_charged_its_time_by_the_clock() -> None:
    """A count of the store on PostgreSQL is one statement, some 40 ms of the
    database's CPU and none of its thread's: 500 of them in flight were charged 5 ms a
    second of a budget of 200, and took 340-590 ms a second of the database's CPU."""
    def in_the_database() -> str:
        time.sleep(0.05)  # (its thread waits for the database's answer)
        return "count"

    async def main(elsewhere: bool) -> list[float]:
        listing = Listing(1000, WRITING, sliced=True)
        charged = charges(listing)
        assert await listing.read("a", asyncio.to_thread, in_the_database,
                                  elsewhere=elsewhere) == "count"
        return charged

    assert sum(asyncio.run(main(elsewhere=True))) >= 0.05
    assert sum(asyncio.run(main(elsewhere=False))) < 0.01


def test_a_read_done_elsewhere_is_not_charged_its_waits_for_its_turns() -> None:
    def in_the_database() -> str:
        for _ in range(2):
            time.sleep(0.03)
            between_reads()  # (past a SLICE: charged, then it waits for its next turn)
        return "count"

    async def main() -> tuple[list[float], float]:
        listing = Listing(50, WRITING, sliced=True)  # 50 ms a second: 30 ms waits 0.4 s
        charged = charges(listing)
        began = time.perf_counter()
        assert await listing.read("a", asyncio.to_thread, in_the_database,
                                  elsewhere=True) == "count"
        assert listing._costs["a"] < 0.3  # (what its caller's next read expects)
        return charged, time.perf_counter() - began

    charged, took = asyncio.run(main())
    assert took >= 0.3 and 0.06 <= sum(charged) < 0.3, (charged, took)
