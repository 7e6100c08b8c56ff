"""Compressed gRPC requests (`grpc-encoding: gzip`): grpc unpacks a request up to
--max-request-bytes before the server sees it, so a few KB sent could cost the server
megabytes and milliseconds each. The gRPC port takes requests uncompressed only."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .http2 import (
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PREFACE,
    SETTINGS,
    Frames,
    call_headers,
    frame,
    header,
)
from .support import RPC_DEADLINE, running_server, sqlite_url, wait_until
from .trust import write_keys

KEY = "admin-key-5d1f0c9a7e3b2468"
CHECK = "/grpc.health.v1.Health/Check"
UNPACKED = 9_000_000  # bytes each request unpacks to, within --max-request-bytes
CALLS = 100
REFUSED = b"Compression algorithm 'gzip' is disabled."


def process_figures(pid: int) -> tuple[int, int]:
    """(CPU ticks, peak resident MB) of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    peak = next(int(line.split()[1]) for line in
                Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:"))
    return int(fields[11]) + int(fields[12]), peak // 1024


def gzip_bomb(size: int) -> bytes:
    """A HealthCheckRequest whose `service` is `size` bytes of one letter, gzipped as a
    gRPC message (compressed flag set): about a thousandth of `size`."""
    message = health_pb2.HealthCheckRequest(service="a" * size).SerializeToString()
    packed = gzip.compress(message, 9)
    return b"\x01" + len(packed).to_bytes(4, "big") + packed


def test_compressed_requests_are_refused_before_they_are_unpacked(tmp_path: Path) -> None:
    """With auth on, health checks without a key are read a few at a time, the rest
    waiting their turn with nothing of them taken in; but grpc had already unpacked
    each compressed request as it came: one connection of 100 checks of 8.8 KB, each
    9 MB unpacked (880 KB sent, no key), took the server from 70 MB to 735 MB; 900
    (7.9 MB sent) to 2.6 GB and 10 s of CPU, and another client's health checks with a
    key waited up to 3.9 s (5 of 40 past their 5 s deadline). Now grpc refuses a compressed request
    UNIMPLEMENTED as its headers come, and unpacks nothing."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=RPC_DEADLINE)
        frames = Frames(sock)
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
        frames.read(0.5)
        ticks, peak = process_figures(server.proc.pid)
        bomb = gzip_bomb(UNPACKED)
        headers = call_headers(server.port, CHECK) + header("grpc-encoding", "gzip")
        sock.sendall(b"".join(frame(HEADERS, END_HEADERS, stream, headers) +
                              frame(DATA, END_STREAM, stream, bomb)
                              for stream in range(1, 2 * CALLS, 2)))
        ended: list[bytes] = []

        def all_ended() -> bool:
            ended.extend(payload for kind, flags, _, payload in frames.read(0.5)
                         if kind == HEADERS and flags & END_STREAM)
            return len(ended) >= CALLS or frames.closed

        wait_until(all_ended, "every call answered", deadline=60)
        spent, peak_after = process_figures(server.proc.pid)
        sock.close()
        assert len(ended) == CALLS
        assert peak_after - peak < 64, (peak, peak_after)  # MB: 665 before
        assert spent - ticks < 100, (ticks, spent)  # ticks: a few now
        assert all(REFUSED in trailers for trailers in ended), ended[0][:300]


def test_a_client_that_compresses_is_told_so_and_one_that_does_not_is_served(
        tmp_path: Path) -> None:
    """A grpc channel made with `compression=grpc.Compression.Gzip` (none of the official
    clients compresses by default) is refused at once with a status that says why."""
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db")) as server:
        with grpc.insecure_channel(server.address,
                                   compression=grpc.Compression.Gzip) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=RPC_DEADLINE)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert refused.value.details() == REFUSED.decode()
        with grpc.insecure_channel(server.address) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=RPC_DEADLINE)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
