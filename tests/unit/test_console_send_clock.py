"""The one timer of a gRPC watch that lets go of a client taking nothing
(server/console/service.py: _SendClock)."""

from __future__ import annotations

import asyncio

import pytest

from server.console import service
from server.console.service import _SendClock

SECONDS = 0.2


@pytest.fixture(autouse=True)
def short_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "SEND_SECONDS", SECONDS)


def test_a_write_is_let_go_send_seconds_after_it_began_not_after_the_first() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        late: list[float] = []
        clock = _SendClock(loop, lambda: late.append(loop.time()))
        for _ in range(3):  # quick writes: the timer, set at the first, outlives them
            clock.writing()
            await asyncio.sleep(SECONDS / 4)
            clock.written()
        clock.writing()  # one the client takes nothing of
        began = loop.time()
        while not late:
            await asyncio.sleep(0.01)
        clock.stop()
        return began, late[0]

    began, let_go = asyncio.run(main())
    assert let_go - began >= SECONDS - 0.002  # (the loop's clock counts milliseconds)


def test_writes_that_end_in_time_and_a_stopped_clock_let_nothing_go() -> None:
    async def main() -> list[bool]:
        called: list[bool] = []
        clock = _SendClock(asyncio.get_running_loop(), lambda: called.append(True))
        for _ in range(8):
            clock.writing()
            await asyncio.sleep(SECONDS / 4)
            clock.written()
        await asyncio.sleep(SECONDS * 1.5)  # between writes: nothing is being sent
        clock.writing()
        clock.stop()  # the watch ended while a message was being written
        await asyncio.sleep(SECONDS * 1.5)
        return called

    assert asyncio.run(main()) == []
