"""--stop-with-parent: `footfall serve` stops once the process that started it ends.

A test suite starts the server from a fixture and stops it at teardown; a runner killed
outright (kill -9, a crashed pytest-xdist worker, a CI step cut off) never tears down,
and its servers ran on until someone found them. An ended parent is seen as a change of
parent process id (the orphan is given to init or a subreaper), read twice a second; no
signal of the kernel's is used (Linux's parent-death signal follows the *thread* that
started the process, which a fixture's thread pool may end long before the runner).

The parent is read first of all (server.__main__, before its imports): one that ended
before that is unknown, and its orphan would watch init for ever. --parent-pid names
the process to watch instead (the starter's own pid), and it is seen ended however soon
it ends, and through a wrapper (`sh -c`, `uv run`) that is itself the parent. One found
ended before the server starts stops the start at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger("footfall")

POLL_SECONDS = 0.5
# The signals the server takes with sigwait (app.serve, processes.run), blocked as well.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def _start_time(pid: int) -> bytes | None:
    """What tells process `pid` from a later one given the same pid (its start time,
    field 22 of /proc/PID/stat; b"" where there is no /proc), or None when no process
    runs with it (a zombie, ended but not yet reaped, runs no more)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc (another system): whether the pid is taken
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:  # another user's
            pass
        return b""
    return None if fields[0] in (b"Z", b"X") else fields[19]


class Parent:
    """The process whose end stops the server: the parent read at start (`named`
    False), ended once the parent pid is another; or a process --parent-pid named,
    ended once it runs no more (or its pid is another process's)."""

    def __init__(self, pid: int, named: bool) -> None:
        self.pid = pid
        self._named = named
        self._started = _start_time(pid) if named else None

    def ended(self) -> bool:
        if not self._named:
            return os.getppid() != self.pid
        return self._started is None or _start_time(self.pid) != self._started

    def said(self) -> str:
        what = "named by --parent-pid" if self._named else "that started footfall serve"
        return f"the process {what} (pid {self.pid})"


def stop_with_parent(parent: Parent) -> threading.Thread:
    """Starts a thread that sends this process SIGTERM once `parent` has ended. The
    thread takes no signal itself: the server takes them with sigwait on one thread,
    which blocks them once it serves; the calling thread blocks them from here on, so
    that a SIGTERM sent before (the imports of grpc and the stores take seconds under
    load) waits for it, and stops the server in order. (Left to their default action
    meanwhile, it ended the process outright: no line said why.)"""
    def watch() -> None:
        while not parent.ended():
            time.sleep(POLL_SECONDS)
        log.warning("stopping: %s has ended (--stop-with-parent)", parent.said())
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="footfall-parent", daemon=True)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        watcher.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask | STOP_SIGNALS)
    return watcher
