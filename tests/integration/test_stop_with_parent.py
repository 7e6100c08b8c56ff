"""--stop-with-parent: a server whose starter was killed outright stops by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEADLINE = 60.0

# The test runner's stand-in: starts the server, says its pid, and waits to be killed.
STARTER = """
import subprocess, sys, time
with open(sys.argv[1], "wb") as log:
    server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", "0",
                               "--http-port", "0", "--store", "memory://",
                               "--stop-with-parent"], stdout=log, stderr=log)
print(server.pid, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie, ended but not yet reaped by init, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(done: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_server_whose_starter_was_killed_stops(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    root = Path(__file__).resolve().parents[2]
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(log)], cwd=root,
                               stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    server = int(starter.stdout.readline())
    try:
        wait_until(lambda: "serving gRPC" in log.read_text() or not running(server),
                   "the server never got ready")
        assert running(server), log.read_text()
        starter.kill()  # as a runner killed with -9: no teardown
        starter.wait()
        wait_until(lambda: not running(server), "the server ran on without its starter")
    finally:
        if running(server):
            os.kill(server, signal.SIGKILL)
    said = log.read_text()
    assert "the process that started footfall serve" in said and "stopped" in said, said
