"""The unary requests waited for (rpc._UnreadRequests): one that does not come in
time is ended UNAVAILABLE, and past the bound the one waiting longest makes room."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from server import rpc


class Aborted(Exception):
    pass


class Call:
    """What _UnreadRequests asks of a call's context: its read and its abort."""

    def __init__(self, request: asyncio.Future[Any]) -> None:
        self.request = request
        self.refusal: tuple[grpc.StatusCode, str] | None = None

    async def read(self) -> Any:
        return await self.request

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        self.refusal = (code, message)
        raise Aborted(message)


def test_a_request_that_does_not_come_in_time_ends_its_call() -> None:
    async def main() -> None:
        unread, loop = rpc._UnreadRequests(most=4, seconds=0.1), asyncio.get_running_loop()
        late, prompt = Call(loop.create_future()), Call(loop.create_future())
        prompt.request.set_result(b"bytes")
        assert await unread.read(prompt) == b"bytes"  # type: ignore[arg-type]
        try:
            await unread.read(late)  # type: ignore[arg-type]
        except Aborted:
            pass
        assert late.refusal == (grpc.StatusCode.UNAVAILABLE,
                                "the request must come whole within 0.1 s")
        assert unread.waiting == 0
    asyncio.run(main())


def test_past_the_bound_the_call_waiting_longest_makes_room() -> None:
    async def main() -> None:
        unread, loop = rpc._UnreadRequests(most=2, seconds=30), asyncio.get_running_loop()
        calls = [Call(loop.create_future()) for _ in range(3)]
        tasks = []
        for call in calls:
            tasks.append(asyncio.create_task(unread.read(call)))  # type: ignore[arg-type]
            await asyncio.sleep(0)  # (each in its turn: the first is the oldest)
        await asyncio.sleep(0.01)
        assert calls[0].refusal is not None and calls[0].refusal[0] == \
            grpc.StatusCode.UNAVAILABLE and "makes room once 2 calls" in calls[0].refusal[1]
        assert unread.waiting == 2
        for call in calls[1:]:
            call.request.set_result(b"mine")
        assert [await task for task in tasks[1:]] == [b"mine", b"mine"]
        assert unread.waiting == 0 and isinstance(tasks[0].exception(), Aborted)
    asyncio.run(main())


def test_a_call_that_ends_while_it_waits_is_let_go() -> None:
    async def main() -> None:
        unread, loop = rpc._UnreadRequests(most=2, seconds=30), asyncio.get_running_loop()
        call = Call(loop.create_future())
        task = asyncio.create_task(unread.read(call))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        task.cancel()  # (as grpc does when its client goes)
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled() and call.refusal is None and unread.waiting == 0
    asyncio.run(main())
