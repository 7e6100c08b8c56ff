"""One server process of `--processes`: a stop while it imports, a supervisor gone
before it is ready. Each in an interpreter of its own, as a spawned process is one:
signal handlers and masks are the main thread's, and a test runner has others."""

from __future__ import annotations

import subprocess
import sys

BLOCKED = """
import os, signal, sys
from server.server_process import STOP_SIGNALS, _stop_ends_the_import, _StoppedBeforeReady
signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # as a spawned process has them
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKED + script], capture_output=True,
                          text=True, timeout=60)


def test_a_stop_that_came_before_the_import_ends_it() -> None:
    done = run("""
os.kill(os.getpid(), signal.SIGTERM)  # blocked: pending, as one sent during the spawn
try:
    with _stop_ends_the_import():
        sys.exit("the import ran")
except _StoppedBeforeReady:
    pass
assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
assert STOP_SIGNALS <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
""")
    assert done.returncode == 0, done.stderr


def test_a_stop_during_the_import_ends_it() -> None:
    done = run("""
try:
    with _stop_ends_the_import():
        os.kill(os.getpid(), signal.SIGINT)
        import time; time.sleep(10)
        sys.exit("not stopped")
except _StoppedBeforeReady:
    pass
""")
    assert done.returncode == 0, done.stderr


def test_after_the_import_a_stop_waits_for_sigwait() -> None:
    done = run("""
with _stop_ends_the_import():
    pass
assert STOP_SIGNALS <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
os.kill(os.getpid(), signal.SIGINT)  # pending, for serve()'s sigwait
assert signal.sigwait(STOP_SIGNALS) == signal.SIGINT
""")
    assert done.returncode == 0, done.stderr


def test_a_supervisor_gone_before_the_process_is_ready_is_no_start_failure() -> None:
    """The error stopped the process undrained, saying "cannot start: [Errno 32]
    Broken pipe"; its parent-death SIGTERM, pending, now stops it in order."""
    done = run("""
import logging, multiprocessing
from server.server_process import _say_ready
logging.basicConfig()
ready, told = multiprocessing.Pipe(duplex=False)
ready.close()
_say_ready(told)
""")
    assert done.returncode == 0, done.stderr
    assert "the supervisor ended before this process was ready" in done.stderr


def test_a_stop_during_the_import_is_not_caught_by_what_the_import_runs() -> None:
    """A module imported may run code that catches Exception (an optional import, a
    probe): the stop that came within it still ends the import, as Ctrl-C would."""
    done = run("""
try:
    with _stop_ends_the_import():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            import time; time.sleep(10)
        except Exception:
            pass
        sys.exit("not stopped")
except _StoppedBeforeReady:
    pass
""")
    assert done.returncode == 0, done.stderr
