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
    except (FileNotFoundError, ProcessLookupError):  # (gone, or going: ESRCH)
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


# A starter that names itself with --parent-pid and ends at once: the server may not
# even have begun to run Python by then, so its parent is already init (or a subreaper).
QUICK_STARTER = """
import os, subprocess, sys
with open(sys.argv[1], "wb") as log:
    server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", "0",
                               "--http-port", "0", "--store", "memory://",
                               "--parent-pid", str(os.getpid())], stdout=log, stderr=log)
print(server.pid, flush=True)
"""

# `footfall serve` whose starter is killed during its start-up, after the server's first
# look at its parent: here the server ends the starter itself, right after importing
# server.__main__ (which reads the parent), and waits to be given to another parent.
LATE_SERVER = """
import os, signal, sys, time
import server.__main__ as footfall
first = os.getppid()
os.kill(first, signal.SIGKILL)
while os.getppid() == first:
    time.sleep(0.01)
sys.exit(footfall.main(["serve", "--port", "0", "--http-port", "0", "--store", "memory://",
                        "--stop-with-parent"]))
"""
LATE_STARTER = """
import subprocess, sys, time
with open(sys.argv[1], "wb") as log:
    server = subprocess.Popen([sys.executable, "-c", sys.argv[2]], stdout=log, stderr=log)
print(server.pid, flush=True)
time.sleep(600)
"""


def _server_of(starter_code: str, tmp_path: Path, *args: str) -> tuple[int, Path]:
    """Runs a starter; the pid of the server it started, and the server's log."""
    log = tmp_path / "server.log"
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    starter = subprocess.Popen([sys.executable, "-c", starter_code, str(log), *args],
                               cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    with starter:
        server = int(starter.stdout.readline())
        starter.wait(DEADLINE)  # it ended by itself (or was ended by the server)
    return server, log


def test_a_starter_that_ends_at_once_is_seen_when_it_names_itself(tmp_path: Path) -> None:
    """The parent was read some 0.1-0.3 s into the start: a starter that ended sooner
    was never seen to end, and the server ran on, a child of init."""
    server, log = _server_of(QUICK_STARTER, tmp_path)
    try:
        wait_until(lambda: not running(server), "the server ran on without its starter")
    finally:
        if running(server):
            os.kill(server, signal.SIGKILL)
    said = log.read_text()
    assert "the process named by --parent-pid (pid " in said and "has ended" in said, said


def test_a_starter_that_ends_during_the_start_stops_it_at_once(tmp_path: Path) -> None:
    server, log = _server_of(LATE_STARTER, tmp_path, LATE_SERVER)
    try:
        wait_until(lambda: not running(server), "the server ran on without its starter")
    finally:
        if running(server):
            os.kill(server, signal.SIGKILL)
    said = log.read_text()
    assert "not starting: the process that started footfall serve (pid " in said, said
    assert "serving gRPC" not in said, said


# `footfall serve --parent-pid PID` held back before it serves (as importing grpc and the
# stores can take seconds under load), saying so on stderr.
SLOW_SERVER = """
import sys, time
import server.app
serving = server.app.serve
def serve_later(*args, **kwargs):
    print("held back", file=sys.stderr, flush=True)
    time.sleep(3)
    return serving(*args, **kwargs)
server.app.serve = serve_later
import server.__main__ as footfall
sys.exit(footfall.main(["serve", "--port", "0", "--http-port", "0", "--store", "memory://",
                        "--parent-pid", sys.argv[1]]))
"""


def test_a_watched_process_that_ends_before_the_server_serves_stops_it_in_order(
        tmp_path: Path) -> None:
    """The watch says an end with SIGTERM, which ended the process outright until the
    server took its signals (app.serve): no line said why, and it exited by the signal."""
    log = tmp_path / "server.log"
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    watched = subprocess.Popen(["sleep", "600"])
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-c", SLOW_SERVER, str(watched.pid)],
                                  cwd=root, env=env, stdout=out, stderr=out)
    try:
        wait_until(lambda: "held back" in log.read_text() or server.poll() is not None,
                   "the server never began to start")
        watched.kill()
        watched.wait()
        code = server.wait(DEADLINE)
    finally:
        for process in (server, watched):
            if process.poll() is None:
                process.kill()
                process.wait()
    said = log.read_text()
    assert code == 0, said
    assert "stopping: the process named by --parent-pid (pid " in said, said
    assert said.rstrip().endswith("stopped"), said
