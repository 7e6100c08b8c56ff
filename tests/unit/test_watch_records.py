"""How an admitted watch's call is counted however its stream ends. One that fails
on a bug of ours ends as a unary call does: INTERNAL, the caller told to see the
server log, the traceback there (it was counted OK, and left to the transport: an
aiohttp ERROR, a gRPC UNKNOWN). One closed before its first message was asked for
(its client gone before the answer began) is counted CANCELLED: it was not counted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from footfall.console.v1 import console_pb2

from server.console import watch
from server.console.service import SERVICE
from server.errors import Internal
from server.policy import Policy

METHOD = f"/{SERVICE}/WatchUserEvents"


class Context:
    """A caller that stays, with no deadline and no metadata."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    def done(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None


def counted(policy: Policy) -> dict[str, float]:
    return {code: policy.metrics.registry.get_sample_value(
        "footfall_requests_total", {"service": SERVICE, "method": "WatchUserEvents",
                                    "transport": "http", "code": code}) or 0.0
            for code in ("OK", "CANCELLED", "INTERNAL")}


def test_a_watch_that_fails_on_a_bug_ends_internal_and_is_counted_so(
        caplog: pytest.LogCaptureFixture) -> None:
    policy = Policy([SERVICE])
    sent: list[str] = []

    async def failing(_caller: Any) -> AsyncIterator[str]:
        async def messages() -> AsyncIterator[str]:
            yield "first"
            raise KeyError("a bug")
        return messages()

    async def main() -> None:
        stream = await watch.admitted(policy, METHOD, "http",
                                      console_pb2.WatchUserEventsRequest(), Context(),
                                      failing)
        with pytest.raises(Internal, match="see the server log") as ended:
            async for message in stream:
                sent.append(message)
        assert "a bug" not in str(ended.value)

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    assert sent == ["first"]
    failed = [r for r in caplog.records if r.getMessage() == f"{METHOD} failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert counted(policy) == {"OK": 0.0, "CANCELLED": 0.0, "INTERNAL": 1.0}


@pytest.mark.parametrize("how", ["closed", "dropped"])
def test_a_watch_closed_before_its_first_message_is_counted_cancelled(how: str) -> None:
    policy = Policy([SERVICE])
    opened: list[bool] = []

    async def endless(_caller: Any) -> AsyncIterator[str]:
        async def messages() -> AsyncIterator[str]:
            opened.append(True)
            while True:
                yield "never asked for"
        return messages()

    async def main() -> None:
        stream = await watch.admitted(policy, METHOD, "http",
                                      console_pb2.WatchUserEventsRequest(), Context(),
                                      endless)
        if how == "closed":
            await stream.aclose()  # type: ignore[attr-defined]
        else:
            del stream  # (the loop's hook closes it)
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert not opened
    assert counted(policy) == {"OK": 0.0, "CANCELLED": 1.0, "INTERNAL": 0.0}
