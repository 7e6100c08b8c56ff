"""connections._taken: what a client took of its answers, read from TCP_INFO's
tcpi_bytes_acked where that is at the offset Linux gives it, else from what waits in
the transport's buffer."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest

from server.http import connections


class Socket:
    """A socket whose TCP_INFO is 128 bytes, `acked` where Linux has tcpi_bytes_acked."""

    def __init__(self, acked: int) -> None:
        self.info = bytes(120) + acked.to_bytes(8, sys.byteorder)

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        assert (level, option) == (socket.IPPROTO_TCP, getattr(socket, "TCP_INFO", -1))
        return self.info[:size]


class Transport:
    def __init__(self, sock: Any, unsent: int) -> None:
        self.sock, self.unsent = sock, unsent

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None

    def get_write_buffer_size(self) -> int:
        return self.unsent


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="no TCP_INFO here")
def test_tcp_info_is_read_on_linux_only(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = Transport(Socket(acked=5_000_000), unsent=70_000)
    monkeypatch.setattr(sys, "platform", "linux")
    assert connections._taken(transport) == 5_000_000  # type: ignore[arg-type]
    # FreeBSD has a TCP_INFO of its own, longer, another field at that offset: read
    # as bytes acknowledged, a client's pace was made of a count of retransmissions
    monkeypatch.setattr(sys, "platform", "freebsd14")
    assert connections._taken(transport) == -70_000  # type: ignore[arg-type]


def test_without_a_socket_the_buffer_says_it() -> None:
    assert connections._taken(Transport(None, unsent=123)) == -123  # type: ignore[arg-type]
