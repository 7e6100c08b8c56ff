"""Calls to methods that do not exist: UNIMPLEMENTED, and nothing of them kept.

Anyone may call a made-up method (no key is asked for a method that is not
there), so the interceptor's per-method cache must hold only methods served.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from server.rpc import ErrorInterceptor

UNKNOWN_CALLS = 2_000
NAME_BYTES = 4_096


@pytest.fixture
def served() -> Iterator[tuple[ErrorInterceptor, grpc.Channel]]:
    """A gRPC server with the interceptor and one service (health), on port 0."""
    interceptor = ErrorInterceptor()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[interceptor])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield interceptor, channel
    finally:
        server.stop(0).wait()


def test_unknown_methods_are_unimplemented_and_leave_nothing_cached(
        served: tuple[ErrorInterceptor, grpc.Channel]) -> None:
    interceptor, channel = served
    check = health_pb2_grpc.HealthStub(channel).Check
    assert check(health_pb2.HealthCheckRequest(), timeout=10).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert interceptor.cached_methods == 1
    for i in range(UNKNOWN_CALLS):
        made_up = channel.unary_unary(f"/made.up.Service{i}/" + "m" * NAME_BYTES)
        with pytest.raises(grpc.RpcError) as caught:
            made_up(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # A served method still answers, from the one cached handler.
    check(health_pb2.HealthCheckRequest(), timeout=10)
    assert interceptor.cached_methods == 1
