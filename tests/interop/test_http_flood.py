"""A real server with few file descriptors, its HTTP port flooded by clients that
never finish a request head: it refuses what it cannot hold (503 at once, not a
hang), keeps serving gRPC, cuts the slow clients at --http-header-timeout, and
its log stays a few lines (it grew by megabytes a second, "Too many open
files", before the cap existed)."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .support import RPC_DEADLINE, ServerProcess, sqlite_url

DESCRIPTORS = 256  # the server's RLIMIT_NOFILE, soft and hard: it cannot raise it
# What --http-max-connections and --grpc-max-connections (1000 each) become under it:
# 3/4 of the descriptors, shared alike.
TOTAL = DESCRIPTORS * 3 // 4
CAP = TOTAL // 2
FLOOD = 300
# Long enough that the flood is open before the first clients are cut, on a loaded
# machine too: a listen queue full makes a connect wait for the kernel's retry (1 s).
HEADER_TIMEOUT = 5.0


@pytest.fixture
def small(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, sqlite_url(tmp_path / "events.db"),
                           ["--http-header-timeout", str(HEADER_TIMEOUT)],
                           max_files=DESCRIPTORS)
    try:
        yield server
    finally:
        server.stop()


def answer(sock: socket.socket, bound: float) -> bytes:
    """What the server sends before it closes `sock`; fails if it keeps it `bound` s."""
    received = b""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
    pytest.fail(f"the server kept a slow connection for {bound}s")


def test_a_flood_of_slow_clients_is_refused_and_cut(small: ServerProcess) -> None:
    assert f"at most {TOTAL}; raise the limit" in small.log_text()
    lines_before = len(small.log)
    flood = []
    opened = []  # when each was open
    try:
        for _ in range(FLOOD):
            sock = socket.create_connection(("127.0.0.1", small.http_port), timeout=RPC_DEADLINE)
            flood.append(sock)
            opened.append(time.monotonic())
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        # gRPC still has descriptors to serve with.
        with grpc.insecure_channel(small.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                               timeout=RPC_DEADLINE)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        answers = [answer(sock, HEADER_TIMEOUT + RPC_DEADLINE) for sock in flood]
    finally:
        for sock in flood:
            sock.close()
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503 ")]
    assert all(a == b"" for a in answers if a not in refused)  # cut, not answered
    # Of the clients that came before any could be cut (a second's margin for the
    # server's accept behind the client's connect), at most CAP were let in; the
    # rest were refused at once. (Those that came later found cut ones' places.)
    early = [a for a, at in zip(answers, opened, strict=True)
             if at - opened[0] < HEADER_TIMEOUT - 1]
    assert len(early) > CAP, f"the flood took {opened[-1] - opened[0]:.1f} s to open"
    assert sum(not a.startswith(b"HTTP/1.1 503 ") for a in early) <= CAP
    reply = requests.get(f"http://{small.http_address}/metrics", timeout=RPC_DEADLINE)
    assert reply.status_code == 200
    new_lines = small.log[lines_before:]
    assert not any("Too many open files" in line for line in new_lines), new_lines[:5]
    assert len(new_lines) < 10, new_lines


def test_one_address_cannot_take_every_connection(tmp_path: Path) -> None:
    """One client (no key needed) opened all --http-max-connections and opened them
    again as the head deadline closed them: most other clients were refused 503
    for as long as it went on. Now one address holds at most a quarter (at least
    16): 127.0.0.1 is refused past 16 of 64, while 127.0.0.2 is served."""
    server = ServerProcess(tmp_path, sqlite_url(tmp_path / "events.db"),
                           ["--http-max-connections", "64"])
    flood: list[socket.socket] = []
    try:
        for _ in range(64):
            sock = socket.create_connection(("127.0.0.1", server.http_port),
                                            timeout=RPC_DEADLINE)
            flood.append(sock)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answers = [answer(sock, HEADER_TIMEOUT + RPC_DEADLINE) for sock in flood[16:]]
        assert all(a.startswith(b"HTTP/1.1 503 ") for a in answers), answers[0][:200]
        assert b"--http-max-connections-per-address" in answers[0]
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=RPC_DEADLINE,
                                      source_address=("127.0.0.2", 0)) as other:
            other.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Connection: close\r\n\r\n")
            assert answer(other, RPC_DEADLINE).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in flood:
            sock.close()
        server.stop()
