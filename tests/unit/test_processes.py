"""The supervisor of `--processes`: what it takes for a stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

# The parent's wait between a process's death and its replacement, as it runs.
WAIT = """
import signal, sys
from server.processes import STOP_SIGNALS, _StopAsked, _take_stop
signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
print("waiting", flush=True)
try:
    _take_stop(1.0)
except _StopAsked:
    sys.exit("taken for a stop")
"""


def test_a_wait_stopped_past_its_end_and_continued_is_no_stop() -> None:
    # Continued after SIGSTOP, sigtimedwait ends with EINTR, and once its time is up
    # Python answers a siginfo of no signal instead of None: the supervisor took that
    # for SIGTERM and shut every process down.
    waiter = subprocess.Popen([sys.executable, "-c", WAIT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert waiter.stdout is not None and waiter.stdout.readline() == "waiting\n"
        time.sleep(0.2)  # (in the wait)
        os.kill(waiter.pid, signal.SIGSTOP)
        time.sleep(1.5)  # past the wait's end
        os.kill(waiter.pid, signal.SIGCONT)
        _, errors = waiter.communicate(timeout=30)
    finally:
        waiter.kill()
        waiter.wait()
    assert waiter.returncode == 0, errors


def test_sigterm_in_the_wait_is_a_stop() -> None:
    waiter = subprocess.Popen([sys.executable, "-c", WAIT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert waiter.stdout is not None and waiter.stdout.readline() == "waiting\n"
        os.kill(waiter.pid, signal.SIGTERM)
        _, errors = waiter.communicate(timeout=30)
    finally:
        waiter.kill()
        waiter.wait()
    assert waiter.returncode == 1 and "taken for a stop" in errors, errors
