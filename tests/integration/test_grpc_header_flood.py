"""An endless HTTP/2 header block on the gRPC port (found by helper h5's probe): a
HEADERS frame without END_HEADERS, then CONTINUATION frames without end. The test
passes once the server ends such a connection when its header block passes a bound."""

from __future__ import annotations

import select
import socket
import struct

import pytest

from server.app import Running

LIMIT = 32 << 20  # bytes of one header block; the metadata limit is 16 KiB


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload))[1:] + bytes([kind, flags])
            + struct.pack(">I", stream) + payload)


def header(name: bytes, value: bytes) -> bytes:
    """An HPACK literal without indexing, of a new name."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def header_block_taken(port: int) -> int:
    """Bytes of one header block sent before the server ended the connection
    (LIMIT when it never did)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
        connection.sendall(frame(1, 0, 1, b"\x83\x86"
                                 + header(b":path", b"/grpc.health.v1.Health/Check")
                                 + header(b":authority", b"localhost")))
        continuation = frame(9, 0, 1, header(b"x-a", b"b" * 100) * 100)
        sent = 0
        try:
            while sent < LIMIT:
                connection.sendall(continuation)
                sent += len(continuation)
                while select.select([connection], [], [], 0)[0]:
                    if not connection.recv(65536):
                        return sent
        except OSError:
            return sent
        return sent


# Out of Footfall's reach (grpcio 1.85.4, the newest on PyPI): grpc-core's chttp2
# init_frame_parser (src/core/ext/transport/chttp2/transport/parsing.cc) hands every
# CONTINUATION of an open block to init_header_frame_parser with no count or byte
# bound, and HPackParser (hpack_parser.cc) past the hard limit only marks the stream
# failed and keeps parsing to keep its HPACK table in step. No channel arg bounds it:
# grpc.absolute_max_metadata_size / grpc.max_metadata_size (tried at 16 KiB) change
# nothing (32 MiB taken either way, about 0.17 s of server CPU and +22 MB of RSS kept
# per block). The fix lies in grpc-core: end the connection when a block passes a bound.
@pytest.mark.xfail(strict=True, reason="h5: grpc-core's chttp2 parser takes an endless header "
                   "block (CONTINUATION frames, parsing.cc init_frame_parser) without "
                   "ending the connection, and no channel arg bounds it; each such "
                   "connection costs about a quarter of a core and 50-100 MB of RSS")
def test_an_endless_header_block_ends_its_connection(running: Running) -> None:
    assert header_block_taken(running.port) < LIMIT
