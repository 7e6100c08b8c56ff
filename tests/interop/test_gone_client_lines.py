"""A client that makes a health check (no key needed), reads no answer and closes its
connection, again and again: grpc logged an ERROR with a traceback for each answer it
could not send (36 a second, 440 KB in 12 s, from one client). Now each is one INFO
line, a few a window, and the rest are counted. Raw HTTP/2 (no grpc client leaves its
window shut); real sockets, a server of its own."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

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
)
from .support import RPC_DEADLINE, running_server, sqlite_url, wait_until

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
INITIAL_WINDOW_SIZE = 4  # a SETTINGS parameter
CONNECTIONS = 40
GONE_LINES = 10  # the server's: such lines written, a window of 10 s


def _check_and_leave(port: int) -> None:
    """One connection that makes a health check, takes none of the answer (its window
    0), and closes once the server has had time to answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=RPC_DEADLINE) as sock:
        empty = b"\x00" + (0).to_bytes(4, "big")
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0, INITIAL_WINDOW_SIZE.to_bytes(2, "big")
                                     + (0).to_bytes(4, "big"))
                     + frame(HEADERS, END_HEADERS, 1, call_headers(port, HEALTH_CHECK))
                     + frame(DATA, END_STREAM, 1, empty))
        Frames(sock).read(0.05)


@pytest.mark.timeout(90)
def test_answers_left_by_clients_gone_are_a_few_short_lines(tmp_path: Path) -> None:
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db")) as server:
        for _ in range(CONNECTIONS):
            _check_and_leave(server.port)
        said = re.compile(r"call ended: its client went away as its answer was sent "
                          r"\(/grpc.health.v1.Health/Check\)")
        wait_until(lambda: said.search(server.log_text()) or "ExecuteBatchError" in
                   server.log_text(), "a line of a client gone")
        time.sleep(1.0)  # (the last answers' ends logged, if any)
        log = server.log_text()
        assert "ExecuteBatchError" not in log and "Traceback" not in log, log[-3000:]
        lines = len(said.findall(log))
        assert 1 <= lines <= GONE_LINES, log[-3000:]
        if lines == GONE_LINES:  # (some not written: counted once the window ends)
            wait_until(lambda: re.search(r"\d+ more lines of calls whose client went away "
                                         r"as their answer was sent were not logged",
                                         server.log_text()),
                       "the count of the lines left out", deadline=20)
