"""Raw HTTP/2 frames, for tests that must send what no grpc client sends (requests
left unfinished, calls reset as soon as they are sent) and see the server's frames."""

from __future__ import annotations

import select
import socket

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0, 1, 3, 4, 6, 7
END_STREAM = ACK = 1
END_HEADERS = 4
MAX_CONCURRENT_STREAMS = 3  # a SETTINGS parameter
CANCEL, REFUSED_STREAM = 8, 7  # RST_STREAM error codes


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + \
        stream.to_bytes(4, "big") + payload


def header(name: str, value: str) -> bytes:
    """An HPACK literal header field without indexing (names and values < 127 bytes)."""
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def call_headers(port: int, method: str) -> bytes:
    """The header block of a gRPC call of `method` ("/package.Service/Method")."""
    return b"".join(header(name, value) for name, value in (
        (":method", "POST"), (":scheme", "http"), (":path", method),
        (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
        ("te", "trailers")))


class Frames:
    """The server's frames on `sock`, as they come; its SETTINGS and PINGs are
    acknowledged as a client must."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._received = b""
        self.closed = False

    def read(self, timeout: float) -> list[tuple[int, int, int, bytes]]:
        """The whole frames in within `timeout` seconds of silence (kind, flags,
        stream, payload); fewer once the server closes the connection."""
        frames = []
        while not self.closed and select.select([self.sock], [], [], timeout)[0]:
            data = self.sock.recv(1 << 20)
            if not data:
                self.closed = True
            self._received += data
            while len(self._received) >= 9 and \
                    len(self._received) >= 9 + int.from_bytes(self._received[:3], "big"):
                length = int.from_bytes(self._received[:3], "big")
                kind, flags = self._received[3], self._received[4]
                stream = int.from_bytes(self._received[5:9], "big") & 0x7FFFFFFF
                payload, self._received = self._received[9:9 + length], \
                    self._received[9 + length:]
                if kind == SETTINGS and not flags & ACK:
                    self.sock.sendall(frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    self.sock.sendall(frame(PING, ACK, 0, payload))
                frames.append((kind, flags, stream, payload))
        return frames


def settings_of(frames: list[tuple[int, int, int, bytes]]) -> dict[int, int]:
    """The parameters of the server's SETTINGS frames among `frames` (the last wins)."""
    found: dict[int, int] = {}
    for kind, flags, _, payload in frames:
        if kind == SETTINGS and not flags & ACK:
            for at in range(0, len(payload) - 5, 6):
                found[int.from_bytes(payload[at:at + 2], "big")] = \
                    int.from_bytes(payload[at + 2:at + 6], "big")
    return found
