"""The reads of requests without a key (rpc._KeylessReads): a place of an
address passes to the request waiting longest, including when the one it
passes to was cancelled meanwhile, and none is kept once all have ended."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import grpc
import pytest

from server import rpc


class Aborted(Exception):
    pass


class Call:
    """What _KeylessReads asks of a call's context: its abort."""

    def __init__(self) -> None:
        self.refusal: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        self.refusal = (code, message)
        raise Aborted(message)


def test_a_request_past_four_waits_for_a_place_and_gets_one_passed_on() -> None:
    async def main() -> None:
        reads, loop = rpc._KeylessReads(), asyncio.get_running_loop()
        requests = [loop.create_future() for _ in range(6)]
        calls = [asyncio.create_task(reads.read(request, "a", Call()))  # type: ignore[arg-type]
                 for request in requests]
        await asyncio.sleep(0.01)
        assert reads._by_address == {"a": 4} and len(reads._waiting["a"]) == 2
        # The fifth call is cancelled just as the first read's place passes to it:
        # the place goes on to the sixth, which is read.
        requests[0].set_result("first")
        calls[4].cancel()
        assert await calls[0] == "first"
        await asyncio.sleep(0.01)
        assert calls[4].cancelled() and "a" not in reads._waiting
        requests[5].set_result("sixth")
        assert await calls[5] == "sixth"
        for request, call in zip(requests[1:4], calls[1:4], strict=True):
            request.set_result("mine")
            assert await call == "mine"
        assert reads._by_address == {} and reads._waiting == {} and reads._places == {}
    asyncio.run(main())


def test_a_request_that_waits_too_long_is_refused_naming_the_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Four reads that never come hold their places READ_SECONDS: the four
    waiting first get them then (and are ended in their turn), the four after
    them are refused once they have waited READ_SECONDS."""
    monkeypatch.setattr(rpc, "READ_SECONDS", 0.2)

    async def main() -> None:
        reads, loop = rpc._KeylessReads(), asyncio.get_running_loop()

        def read() -> tuple[asyncio.Task[Any], Call]:
            call = Call()
            return asyncio.create_task(reads.read(loop.create_future(), "a", call)), call  # type: ignore[arg-type]
        held = [read() for _ in range(4)]
        await asyncio.sleep(0.05)
        waiting = [read() for _ in range(8)]
        # Another address is read meanwhile.
        other: Any = loop.create_future()
        other.set_result("other's")
        assert await reads.read(other, "b", Call()) == "other's"  # type: ignore[arg-type]
        await asyncio.gather(*(task for task, _ in held + waiting), return_exceptions=True)
        codes = [call.refusal[0] if call.refusal else None for _, call in held + waiting]
        assert codes == [grpc.StatusCode.UNAVAILABLE] * 8 + [
            grpc.StatusCode.RESOURCE_EXHAUSTED] * 4
        assert all("x-goog-api-key" in call.refusal[1] for _, call in waiting[4:])  # type: ignore[index]
        assert reads._by_address == {} and reads._waiting == {}
    asyncio.run(main())


def test_past_the_waiting_an_address_may_have_a_request_is_refused_at_once() -> None:
    async def main() -> None:
        reads, loop = rpc._KeylessReads(), asyncio.get_running_loop()
        count = rpc.READS_PER_ADDRESS + rpc.WAITING_PER_ADDRESS
        calls = [asyncio.create_task(reads.read(loop.create_future(), "a", Call()))  # type: ignore[arg-type]
                 for _ in range(count)]
        await asyncio.sleep(0.01)
        refused = Call()
        with pytest.raises(Aborted):
            await reads.read(loop.create_future(), "a", refused)  # type: ignore[arg-type]
        assert refused.refusal is not None and "being read" in refused.refusal[1]
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        assert reads._by_address == {} and reads._waiting == {}
    asyncio.run(main())


def test_past_its_budget_an_address_s_refusal_for_the_reads_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused at once, 100 health checks in flight on each of 2 connections that
    never sent their requests had 2,530 refused a second (another client's durable
    writes fell from 1,760 a second to 680): past the address's budget of refusals
    without a key, the refusal waits as any other does."""
    from server import policy as policy_module
    from server.clock import FixedClock

    monkeypatch.setattr(policy_module, "KEYLESS_REFUSAL_DELAY", 0.2)
    pace = policy_module.KeylessRefusals(clock=FixedClock(0))
    for _ in range(policy_module.KEYLESS_REFUSALS_BURST):
        assert not pace.past("a")

    async def main() -> None:
        reads, loop = rpc._KeylessReads(pace), asyncio.get_running_loop()
        count = rpc.READS_PER_ADDRESS + rpc.WAITING_PER_ADDRESS
        calls = [asyncio.create_task(reads.read(loop.create_future(), "a", Call()))  # type: ignore[arg-type]
                 for _ in range(count)]
        await asyncio.sleep(0.01)
        refused, began = Call(), loop.time()
        with pytest.raises(Aborted):
            await reads.read(loop.create_future(), "a", refused)  # type: ignore[arg-type]
        assert refused.refusal is not None and "being read" in refused.refusal[1]
        assert loop.time() - began >= 0.2
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    asyncio.run(main())


def test_a_request_whose_call_ends_while_it_waits_is_let_go_unread() -> None:
    """Its read, never awaited, is closed (grpc's, left so, had Python warn that it
    was never awaited), and its place in the line is given up."""
    async def main() -> None:
        reads, loop = rpc._KeylessReads(), asyncio.get_running_loop()
        held = [asyncio.create_task(reads.read(loop.create_future(), "a", Call()))  # type: ignore[arg-type]
                for _ in range(rpc.READS_PER_ADDRESS)]

        async def never_read() -> None:
            raise AssertionError("read though its call had ended")
        request = never_read()
        waiting = asyncio.create_task(reads.read(request, "a", Call()))
        await asyncio.sleep(0.01)
        assert len(reads._waiting["a"]) == 1
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert waiting.cancelled() and "a" not in reads._waiting
        assert inspect.getcoroutinestate(request) == inspect.CORO_CLOSED
        for call in held:
            call.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        assert reads._by_address == {} and reads._places == {}
    asyncio.run(main())
