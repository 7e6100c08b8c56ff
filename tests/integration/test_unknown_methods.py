"""Calls to methods that do not exist: UNIMPLEMENTED, and nothing of them kept.

Anyone may call a made-up method (no key is asked for a method that is not
there), so the guard's per-method cache must hold only methods served.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from server.loop import LoopThread
from server.rpc import CallGuard

UNKNOWN_CALLS = 2_000
NAME_BYTES = 4_096


@pytest.fixture
def served() -> Iterator[tuple[CallGuard, grpc.Channel]]:
    """A grpc.aio server with the guard and one service (health), on port 0."""
    guard = CallGuard()
    loop = LoopThread(1)

    async def serve() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), guard)
        server.add_generic_rpc_handlers((guard,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = loop.run(serve())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield guard, channel
    finally:
        loop.run(server.stop(0))
        loop.close()


def test_unknown_methods_are_unimplemented_and_leave_nothing_cached(
        served: tuple[CallGuard, grpc.Channel]) -> None:
    guard, channel = served
    check = health_pb2_grpc.HealthStub(channel).Check
    assert check(health_pb2.HealthCheckRequest(), timeout=10).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert guard.cached_methods == 1
    for i in range(UNKNOWN_CALLS):
        made_up = channel.unary_unary(f"/made.up.Service{i}/" + "m" * NAME_BYTES)
        with pytest.raises(grpc.RpcError) as caught:
            made_up(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # A served method still answers, from the one cached handler.
    check(health_pb2.HealthCheckRequest(), timeout=10)
    assert guard.cached_methods == 1
