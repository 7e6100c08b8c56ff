"""SIGTERM, SIGINT and SIGHUP reach the server whichever of its threads the kernel
would pick: every thread but the main one blocks them, and the main thread takes
them with sigwait.

A Python signal handler runs only when the main thread runs; a signal the kernel
delivers to one of grpc's threads set the handler's flag without waking the main
thread, asleep in a wait, so a SIGHUP's key reload (or a SIGTERM) could wait for ever.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from .support import ServerProcess, wait_until

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
