"""The PostgreSQL proxy of the outage tests is tested itself where a race in it made a
test of the server fail: a cut that came while a connection was being made left that
connection open, and the store read through it as if no cut had come (CI, stop 63:
"gave up after 15.0s waiting for the watches to meet the outage")."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from tests.pg_proxy import CuttingProxy


def _echo_server() -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _echo(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(4096):
                conn.sendall(data)
        except OSError:
            pass


def _answer(port: int) -> bytes:
    """What comes back through the proxy at `port` for b"ping" (b"": closed)."""
    with socket.socket() as client:
        client.settimeout(5)
        client.connect(("127.0.0.1", port))
        try:
            client.sendall(b"ping")
            return client.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def test_a_cut_while_a_connection_is_made_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    listener = _echo_server()
    proxy = CuttingProxy("127.0.0.1", listener.getsockname()[1])
    try:
        assert _answer(proxy.port) == b"ping"
        made = socket.create_connection

        def cut_meanwhile(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            upstream = made(address, *args, **kwargs)
            proxy.cut()  # (as the test's cut, while the proxy connected upstream)
            return upstream

        monkeypatch.setattr(socket, "create_connection", cut_meanwhile)
        assert _answer(proxy.port) == b""
        monkeypatch.undo()
        assert _answer(proxy.port) == b""  # (still cut)
        proxy.restore()
        assert _answer(proxy.port) == b"ping"
    finally:
        proxy.close()
        listener.close()
