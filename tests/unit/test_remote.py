"""The CLI's channel to a running server (server/remote.py)."""

from __future__ import annotations

import socket
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.remote import RECONNECT_OPTIONS


def test_a_server_slow_to_answer_is_waited_for_within_the_calls_deadline() -> None:
    """grpc.min_reconnect_backoff_ms is also the least time grpc gives a connection
    attempt: at 250 ms, a server held a quarter of a second by a busy machine was
    "cannot reach a server" at once (UNAVAILABLE: connection attempt timed out before
    receiving SETTINGS frame), and CLI tests failed under CI's load."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []  # accepted, never answered: a server that is held

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # closed: the test is over
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        port = listener.getsockname()[1]
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=RECONNECT_OPTIONS) as channel:
            with pytest.raises(grpc.RpcError) as failed:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=1.5)
        assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED, failed.value
    finally:
        listener.close()
        for connection in held:
            connection.close()
