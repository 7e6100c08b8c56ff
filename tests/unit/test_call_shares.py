"""The calls without a key (auth on) hold a share of --max-concurrent-rpcs together,
and one client address a part of it (server.policy.call_shares): what the keyless
pacing lets one address have in progress at once, never half the share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from server.policy.auth import Authenticator
from server.policy.call_shares import (
    KEYLESS_PER_ADDRESS,
    KEYLESS_STREAMS_PER_ADDRESS,
    CallShares,
    Refused,
)
from server.policy.metrics import Metrics
from server.policy.paces import KeyPaces, Paced


class Call:
    """The part of a grpc.aio servicer context CallShares reads, from `peer`."""

    def __init__(self, peer: str) -> None:
        self._peer = peer
        self._done: list[Callable[[Any], None]] = []

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def time_remaining(self) -> float | None:
        return None

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._done.append(callback)


async def entered(calls: CallShares, peer: str
                  ) -> tuple[Refused | Paced | None, Callable[[], Awaitable[None]]]:
    """What `calls.enter` says of a call from `peer`, made in a task of its own as
    grpc makes each call's; and what ends that call (its task and its context done)."""
    context, ended = Call(peer), asyncio.Event()
    said: asyncio.Future[Refused | Paced | None] = asyncio.get_running_loop().create_future()

    async def call() -> None:
        said.set_result(calls.enter(context))
        await ended.wait()

    task = asyncio.create_task(call())

    async def end() -> None:
        ended.set()
        await task
        for callback in context._done:
            callback(context)
        await asyncio.sleep(0)  # (the task's own done-callbacks)

    return await said, end


def shares(tmp_path: Path, most_calls: int) -> CallShares:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"call-shares-unit-key-0123456789": {
        "projects": ["p"], "role": "writer"}}}))
    keys.chmod(0o600)
    metrics = Metrics()
    return CallShares(most_calls, Authenticator(str(keys)), metrics, KeyPaces(metrics))


def test_the_keyless_part_of_an_address_grows_with_its_watches(tmp_path: Path) -> None:
    """--max-keyless-streams-per-address (its default: KEYLESS_STREAMS_PER_ADDRESS)
    adds to what one address may hold, within half the share."""
    assert Settings().max_keyless_streams_per_address == KEYLESS_STREAMS_PER_ADDRESS
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"call-shares-unit-key-0123456789": {
        "projects": ["p"], "role": "writer"}}}))
    keys.chmod(0o600)
    metrics = Metrics()
    for watches, part in [(16, KEYLESS_PER_ADDRESS), (500, KEYLESS_PER_ADDRESS - 16 + 500),
                          (10_000, 10_000 // 3 // 2)]:
        calls = CallShares(10_000, Authenticator(str(keys)), metrics, KeyPaces(metrics),
                           watches)
        assert calls.keyless_per_address == part


@pytest.mark.parametrize(("most_calls", "per_address"), [
    (10_000, KEYLESS_PER_ADDRESS),  # a share of 3,333
    (600, 100),  # a share of 200: never more than half of it
])
def test_one_address_holds_its_part_of_the_calls_without_a_key(
        tmp_path: Path, most_calls: int, per_address: int) -> None:
    calls = shares(tmp_path, most_calls)
    assert calls.keyless_per_address == per_address

    async def scenario() -> None:
        held = [await entered(calls, "ipv4:127.0.0.5:4242") for _ in range(per_address)]
        assert [said for said, _ in held] == [None] * per_address
        refusal, _ = await entered(calls, "ipv4:127.0.0.5:4343")  # (another connection)
        assert isinstance(refusal, Refused)
        assert refusal.budget == "127.0.0.5" and refusal.keyless  # (its address's)
        assert refusal.message.startswith(f"this client address has {per_address} calls without a "
                                  f"key in progress, the most one client address may have")
        # Another address's probe is answered, and the address has room once a call ends.
        probe, _ = await entered(calls, "ipv4:127.0.0.1:4444")
        assert probe is None
        await held.pop()[1]()
        again, _ = await entered(calls, "ipv4:127.0.0.5:4545")
        assert again is None

    asyncio.run(scenario())
