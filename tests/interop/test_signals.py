"""SIGTERM, SIGINT and SIGHUP reach the server whichever of its threads the kernel
would pick: every thread but the main one blocks them, and the main thread takes
them with sigwait.

A Python signal handler runs only when the main thread runs; a signal the kernel
delivers to one of grpc's threads set the handler's flag without waking the main
thread, asleep in a wait, so a SIGHUP's key reload (or a SIGTERM) could wait for ever.
A SIGHUP without --auth-file, or while the server starts, is said and served through.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import requests

from .support import RPC_DEADLINE, START_DEADLINE, ServerProcess, wait_until

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CATALOG = "projects/p/locations/global/catalogs/default_catalog"


def blocked_signals(pid: int, tid: int) -> int:
    """The SigBlk mask of one thread of `pid`."""
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("SigBlk:")), 16)


def test_only_the_main_thread_takes_the_signals(
        server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory()
    pid = server.proc.pid
    threads = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    others = [t for t in threads if t != pid]
    assert len(others) >= 5  # grpc's, the writer's, the HTTP loop's, ...
    for tid in others:
        mask = blocked_signals(pid, tid)
        for sig in HANDLED:
            assert mask & (1 << (sig - 1)), f"thread {tid} may be handed {sig.name}"


def test_sighup_then_sigterm_are_taken_at_once(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": {"k-0001-aaaa": {"projects": ["p"], "role": "writer"}}}')
    server = server_factory("--auth-file", str(keys))
    for reloads in range(1, 6):  # one at a time: a signal already pending is not counted twice
        server.proc.send_signal(signal.SIGHUP)
        wait_until(lambda n=reloads: sum("SIGHUP: re-read" in line for line in server.log) == n,
                   f"key reload {reloads}", deadline=10)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=20) == 0


def test_sighup_without_an_auth_file_says_so_and_serves_on(
        server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory()
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: any("WARNING footfall: SIGHUP: no --auth-file to re-read" in line
                           for line in server.log), "the SIGHUP's line", deadline=10)
    written = requests.post(f"http://{server.http_address}/v2/{CATALOG}/userEvents:write",
                            json={"eventType": "home-page-view", "visitorId": "v"},
                            timeout=RPC_DEADLINE)
    assert written.status_code == 200, written.text
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=20) == 0, server.log_text()


# Put on the PYTHONPATH of a server, it runs as its Python starts: the server sends
# itself a SIGHUP as it first imports grpc, within its start wherever the machine's
# load puts that (a test that sent it once it saw SIGHUP blocked, from outside, raced
# the start: at load, grpc was loaded already).
HANG_UP_AS_GRPC_LOADS = """\
import os
import signal
import sys


class HangUpAsGrpcLoads:
    def find_spec(self, name, path=None, target=None):
        if name == "grpc":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGHUP)
        return None


sys.meta_path.insert(0, HangUpAsGrpcLoads())
"""


def test_a_sighup_while_it_starts_is_taken_once_it_serves(tmp_path: Path) -> None:
    # A service manager's reload, or a key file written, as the server starts (its
    # imports, its store: seconds under load) ended it: SIGHUP's default action, exit
    # 129, not a line said. It is blocked from the first lines of `serve` on.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HANG_UP_AS_GRPC_LOADS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])}
    log = tmp_path / "footfall.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
             "--store", "memory://", "--gcs-root", str(tmp_path / "gcs"),
             "--stop-with-parent"], stdout=out, stderr=out, stdin=subprocess.DEVNULL,
            cwd=tmp_path, env=env)
    try:
        wait_until(lambda: proc.poll() is not None or "SIGHUP: no --auth-file" in log.read_text(),
                   "the SIGHUP taken", deadline=START_DEADLINE)
        said = log.read_text()
        assert proc.poll() is None, f"exit {proc.returncode}: {said}"
        assert said.index("Footfall serving gRPC") < said.index("SIGHUP: no --auth-file"), said
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
