"""A watch's opening takes its caller's turn in the lists' budget of reading time,
charged what opening and closing one costs (service.OPEN_SECONDS): one reader keeping
4 watches opening and cancelling at once took durable writes from 1,330-1,850 a second
to 240-510 (500 at once: to 7-35). No timing is asserted: what waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from footfall.console.v1 import console_pb2

from server.console.feed import Watches, close_stream
from server.console.pace import Listing
from server.console.service import ConsoleService
from server.console.watch import Commits
from server.store import Store, open_store


class Context:
    """A gRPC call's context, as a watch's opening reads it, from `peer`."""

    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer

    def done(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/events.db")
    yield opened
    opened.close()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


def test_a_callers_watch_opened_past_the_budget_waits_for_its_turn(store: Store) -> None:
    async def main() -> None:
        # 1 ms a second (up to 0.2 ms unspent): one opening (OPEN_SECONDS) spends it for
        # a second
        lists = Listing(1, time.monotonic)
        service = ConsoleService(store, Watches(Commits(), 100), None,  # type: ignore[arg-type]
                                 lists=lists)
        request = console_pb2.WatchRejectionsRequest(parent="projects/p")
        first = await service._rejections(request, Context("ipv4:127.0.0.1:5000"))
        second = asyncio.ensure_future(
            service._rejections(request, Context("ipv4:127.0.0.1:5001")))
        await settle()
        assert not second.done() and lists.reading.waits == 1
        second.cancel()
        await close_stream(first)

    asyncio.run(main())


def test_a_watch_opened_while_nothing_is_written_never_waits(store: Store) -> None:
    async def main() -> None:
        lists = Listing(1, lambda: -1e9)  # (no event written)
        service = ConsoleService(store, Watches(Commits(), 100), None,  # type: ignore[arg-type]
                                 lists=lists)
        request = console_pb2.WatchRejectionsRequest(parent="projects/p")
        opened: list[Any] = []
        for k in range(5):
            opened.append(await service._rejections(request, Context(f"ipv4:127.0.0.1:{k}")))
        assert lists.reading.waits == 0
        for stream in opened:
            await close_stream(stream)

    asyncio.run(main())
