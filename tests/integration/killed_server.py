"""Real servers (`python -m server serve`) for crash tests: one started with a
few lines of Python run first (smaller batches, a kill -9 of itself at a chosen
point), then the next on the same store and --gcs-root (conftest's crash_store_url:
a SQLite file, then a PostgreSQL database of the test's own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from google.longrunning import operations_pb2

from server.store import Store

DEADLINE = 60.0

# `footfall serve ARGS` after the Python of its first argument.
_LAUNCH = """
import runpy, sys
exec(sys.argv[1])
sys.argv = ["server", "serve", *sys.argv[2:]]
runpy.run_module("server", run_name="__main__", alter_sys=True)
"""


def serve(tmp_path: Path, url: str, first: str) -> subprocess.Popen[bytes]:
    """A server on the store at `url`, --gcs-root tmp_path/gcs, logging to
    tmp_path/server.log, that runs the Python `first` before it starts."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    log = (tmp_path / "server.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, first, "--host", "127.0.0.1", "--port", "0",
         "--http-port", "-1", "--store", url, "--gcs-root", str(tmp_path / "gcs")],
        cwd=Path(__file__).resolve().parents[2], env=clean, stdout=log, stderr=log)


def log_of(tmp_path: Path) -> str:
    return (tmp_path / "server.log").read_text()


def killed(tmp_path: Path, server: subprocess.Popen[bytes]) -> None:
    """Wait for `server` to kill itself (kill -9)."""
    try:
        assert server.wait(DEADLINE) == -signal.SIGKILL, log_of(tmp_path)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def run_until(tmp_path: Path, server: subprocess.Popen[bytes], done: Callable[[], bool],
              what: str) -> None:
    """Poll `done` until true, then stop `server` (SIGTERM, or kill)."""
    try:
        deadline = time.monotonic() + DEADLINE
        while not done():
            assert server.poll() is None, f"the server ended; log:\n{log_of(tmp_path)}"
            assert time.monotonic() < deadline, f"{what}; log:\n{log_of(tmp_path)}"
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def ended(store: Store, name: str) -> operations_pb2.Operation | None:
    """The operation `name` once done; None while it runs."""
    record = store.get_operation(name)
    assert record is not None
    return operations_pb2.Operation.FromString(record.operation) if record.done else None
