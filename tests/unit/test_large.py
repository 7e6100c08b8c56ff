"""The bytes a second of each client address's large requests (policy.large.LargeBytes):
past its budget a caller waits for its bytes; other addresses do not. On a fixed
clock that the pacing's sleeps move: no time passes. And the turns of large requests
between keys (policy.large.LargeRequests), whatever addresses a key sends from."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.clock import FixedClock
from server.errors import ResourceExhausted
from server.policy.auth import Grant, Role
from server.policy.large import (
    LARGE_BYTES_BURST,
    LARGE_BYTES_PER_SECOND,
    MAX_WAITING_PER_ADDRESS,
    LargeBytes,
    LargeRequests,
)

BIG = 1_488_970  # an event of 100,000 attributes, in binary
FLOOD, VISITOR = "192.0.2.1", "198.51.100.7"


class Sleeps:
    """A sleep that moves `clock` as far as asked, at once."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.clock.advance(seconds)


def paced() -> tuple[LargeBytes, FixedClock]:
    clock = FixedClock(0)
    return LargeBytes(clock=clock, sleep=Sleeps(clock)), clock


def test_an_address_flooding_large_events_waits_for_its_bytes() -> None:
    # 100,000 attributes an event, sent one after another from one address: 11 are
    # served at once (the burst), then one about every 1.4 s (1 MiB a second).
    pace, clock = paced()

    async def flood(seconds: float) -> list[float]:
        waits = []
        while clock.now_ns() < seconds * 1e9:
            waits.append(await pace.pace(FLOOD, BIG))
        return waits

    waits = asyncio.run(flood(10.0))
    at_once = LARGE_BYTES_BURST // BIG
    assert waits[:at_once] == [0.0] * at_once and all(wait > 0 for wait in waits[at_once:])
    served = (LARGE_BYTES_BURST + 10 * LARGE_BYTES_PER_SECOND) // BIG
    assert len(waits) in (served, served + 1)
    assert all(wait == pytest.approx(BIG / LARGE_BYTES_PER_SECOND)
               for wait in waits[at_once + 1:])


def test_another_address_is_served_at_once_while_one_is_paced() -> None:
    pace, _ = paced()

    async def body() -> list[float]:
        for _ in range(LARGE_BYTES_BURST // BIG + 3):
            await pace.pace(FLOOD, BIG)
        return [await pace.pace(VISITOR, BIG), await pace.pace(VISITOR, BIG),
                await pace.pace("", BIG)]  # (an address unknown: not paced)

    assert asyncio.run(body()) == [0.0, 0.0, 0.0]


def test_one_larger_than_the_burst_takes_a_burst() -> None:
    pace, _ = paced()

    async def body() -> list[float]:
        return [await pace.pace(FLOOD, 10 * LARGE_BYTES_BURST) for _ in range(2)]

    first, second = asyncio.run(body())
    assert first == 0.0
    assert second == pytest.approx(LARGE_BYTES_BURST / LARGE_BYTES_PER_SECOND)


def test_too_many_of_one_address_waiting_are_answered_at_once() -> None:
    # Each holds its whole message while it waits.
    clock = FixedClock(0)
    release = asyncio.Event

    async def body() -> tuple[BaseException | None, float, list[float]]:
        go = release()

        async def held(seconds: float) -> None:
            await go.wait()
            clock.advance(seconds)

        pace = LargeBytes(clock=clock, sleep=held)
        for _ in range(LARGE_BYTES_BURST // BIG):
            await pace.pace(FLOOD, BIG)  # the burst
        waiting = [asyncio.create_task(pace.pace(FLOOD, BIG))
                   for _ in range(MAX_WAITING_PER_ADDRESS)]
        await asyncio.sleep(0)
        assert pace.waiting == MAX_WAITING_PER_ADDRESS
        refused: BaseException | None = None
        try:
            await pace.pace(FLOOD, BIG)
        except ResourceExhausted as exc:
            refused = exc
        visitor = await pace.pace(VISITOR, BIG)
        go.set()
        return refused, visitor, [await asyncio.wait_for(w, 5) for w in waiting]

    refused, visitor, waits = asyncio.run(body())
    assert isinstance(refused, ResourceExhausted) and refused.retry_after >= 1.0
    assert "large requests (over 64 KiB or 250 elements) already wait for their bytes" \
        in refused.message
    assert visitor == 0.0
    assert all(wait > 0 for wait in waits)


def _busy(seconds: float) -> None:
    """Spend `seconds` of CPU (what a turn is charged is its CPU at most)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_keys_take_turns_fairly_however_many_addresses_one_sends_from() -> None:
    # Each client address of a writer key is a party of its own (2537b75), but the
    # turns are fair between keys: a writer key sending from 8 addresses (an IPv6 /56
    # holds 256 /64s) had all 8 served before another key's first, each party starting
    # from the clock, and took 8 of every 9 turns from every other key.
    writer = Grant(Role.WRITER, frozenset({"shop"}), "shop's writer key", identity=b"w")
    reader = Grant(Role.READER, frozenset({"other"}), "other's reader key", identity=b"r")
    size = 1_000_000  # expected to cost more than the budget holds: one turn at a time

    async def body() -> list[str]:
        large = LargeRequests(seconds_a_second=1.0)
        first = await large.turn(writer, size, "192.0.2.1")
        assert first is not None
        order: list[str] = []

        async def one(grant: Grant, address: str) -> None:
            turn = await large.turn(grant, size, address)
            assert turn is not None
            order.append(grant.name)
            _busy(0.005)
            turn.ended()

        sent = [asyncio.create_task(one(writer, f"2001:db8:{i}::")) for i in range(8)]
        sent += [asyncio.create_task(one(reader, "198.51.100.7")) for _ in range(2)]
        while large.waiting < 10:
            await asyncio.sleep(0.001)
        _busy(0.005)
        first.ended()
        await asyncio.wait_for(asyncio.gather(*sent), 30)
        return order

    order = asyncio.run(body())
    assert order.count(reader.name) == 2 and order.count(writer.name) == 8
    # the other key's two turns come among the first four, as they would were the
    # writer key's requests all from one address
    assert [i for i, name in enumerate(order) if name == reader.name][-1] <= 3, order
