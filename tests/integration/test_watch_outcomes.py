"""How a watch that ends before its messages do is counted (footfall_requests_total)
and logged: alike over gRPC and server-sent events. A caller that goes is CANCELLED, a
deadline that passes DEADLINE_EXCEEDED; counted OK, an HTTP watch cut off by its client
or its X-Server-Timeout looked like a watch that ended well, and a gRPC watch's
deadline like a cancel."""

from __future__ import annotations

import socket
import time

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc

from server.app import Running

from .http_client import call

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
PATH = f"/console/v1/{CATALOG}/userEvents:watch"


def counted(running: Running, transport: str) -> dict[str, float]:
    """WatchUserEvents calls of `transport` by code."""
    text = call(running.http_port, "GET", "/metrics").body.decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("footfall_requests_total{") and 'method="WatchUserEvents"' in line \
                and f'transport="{transport}"' in line:
            code = line.split('code="', 1)[1].split('"', 1)[0]
            found[code] = float(line.rsplit(" ", 1)[1])
    return found


def wait_for(running: Running, transport: str, expected: dict[str, float]) -> None:
    deadline = time.monotonic() + 10
    while counted(running, transport) != expected:
        assert time.monotonic() < deadline, counted(running, transport)
        time.sleep(0.05)


def open_http_watch(running: Running, *headers: str) -> socket.socket:
    """A server-sent events watch, its answer's headers read."""
    client = socket.create_connection(("127.0.0.1", running.http_port), timeout=10)
    head = "".join(f"{h}\r\n" for h in headers)
    client.sendall(f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += client.recv(4096)
    assert received.startswith(b"HTTP/1.1 200"), received
    return client


def test_a_grpc_watch_past_its_deadline_is_counted_deadline_exceeded(served: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        watch = console_pb2_grpc.ConsoleServiceStub(channel).WatchUserEvents(
            console_pb2.WatchUserEventsRequest(parent=CATALOG), timeout=0.5)
        with pytest.raises(grpc.RpcError) as ended:
            list(watch)
        assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(served, "grpc", {"DEADLINE_EXCEEDED": 1})


def test_a_grpc_watch_its_caller_cancels_is_counted_cancelled(served: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        watch = console_pb2_grpc.ConsoleServiceStub(channel).WatchUserEvents(
            console_pb2.WatchUserEventsRequest(parent=CATALOG), timeout=30)
        watch.initial_metadata()  # (sent as the watch opens)
        watch.cancel()
    wait_for(served, "grpc", {"CANCELLED": 1})


def test_a_server_sent_events_watch_its_client_leaves_is_counted_cancelled(
        served: Running) -> None:
    open_http_watch(served).close()
    wait_for(served, "http", {"CANCELLED": 1})


def test_a_server_sent_events_watch_past_its_deadline_ends_deadline_exceeded(
        served: Running) -> None:
    client = open_http_watch(served, "X-Server-Timeout: 0.5")
    received = b""
    while not received.endswith(b"0\r\n\r\n"):  # the chunked answer's end
        piece = client.recv(4096)
        assert piece, received
        received += piece
    client.close()
    assert b"event: error" in received and b"DEADLINE_EXCEEDED" in received, received
    wait_for(served, "http", {"DEADLINE_EXCEEDED": 1})


def test_a_head_of_a_watch_is_answered_and_counted_ok(served: Running) -> None:
    # (its stream was opened, then dropped unread: never counted nor logged)
    answer = call(served.http_port, "HEAD", PATH)
    assert answer.status == 200, answer
    wait_for(served, "http", {"OK": 1})
