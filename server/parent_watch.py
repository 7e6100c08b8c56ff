"""--stop-with-parent: `footfall serve` stops once the process that started it ends.

A test suite starts the server from a fixture and stops it at teardown; a runner killed
outright (kill -9, a crashed pytest-xdist worker, a CI step cut off) never tears down,
and its servers ran on until someone found them. An ended parent is seen as a change of
parent process id (the orphan is given to init or a subreaper), read twice a second; no
signal of the kernel's is used (Linux's parent-death signal follows the *thread* that
started the process, which a fixture's thread pool may end long before the runner).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger("footfall")

POLL_SECONDS = 0.5


def stop_with_parent(parent: int) -> threading.Thread:
    """Starts a thread that sends this process SIGTERM once its parent is no longer
    `parent` (the pid read at start). The thread takes no signal itself: the server
    takes them with sigwait on one thread."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        log.warning("stopping: the process that started footfall serve (pid %d) has ended "
                    "(--stop-with-parent)", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="footfall-parent", daemon=True)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        watcher.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return watcher
