"""The body of one server process of `footfall serve --processes N`, which
server.processes spawns. A spawned interpreter imports the module of its target
before it runs it, and with SIGTERM and SIGINT blocked (as its supervisor has them):
so this module imports little, and grpc and the stores are imported after, where a
stop ends the process at once (see _stop_ends_the_import).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection

from server import cores
from server.config import Settings
from server.logsink import logging_to_stderr

log = logging.getLogger("footfall")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class _StoppedBeforeReady(BaseException):
    """SIGTERM or SIGINT came while the process was importing what it serves with.
    (Not an Exception, as KeyboardInterrupt is not: code a module runs as it is
    imported may catch Exception, and would have lost the stop, the process then
    serving as if none had come.)"""


def serve_child(settings: Settings, index: int, ready: Connection, keys: str | None,
                parent: int) -> None:
    """Server process `index` (a spawned interpreter) of the supervisor `parent` (its
    pid), beginning with the auth file's text `keys` (None: the file's). It keeps to a
    core of its own (server.cores; not with `--share-cores`), before any thread starts."""
    if not settings.share_cores:
        cores.keep_to(index, settings.processes)
    with contextlib.suppress(OSError, AttributeError):  # Linux only: end with the parent
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    # The parent died before the line above took effect (the process was given to an
    # init or a subreaper). Not "the parent is pid 1": a supervisor that is (a
    # container's entry point) saw each process end so, and exited 1 saying only
    # "stopped".
    if os.getppid() != parent:
        sys.exit(1)
    with logging_to_stderr(settings.log_level, LOG_FORMAT,
                           json_lines=settings.log_format == "json"):
        try:
            with _stop_ends_the_import():
                processes = importlib.import_module("server.processes")
                importlib.import_module("server.app")  # grpc, the protos, the stores
        except _StoppedBeforeReady:
            log.info("stopped before it was ready (process %d of %d)", index + 1,
                     settings.processes)
            sys.exit(0)
        code = processes.run_one(settings, on_ready=lambda: _say_ready(ready),
                                 ready_lines=False, trust_lines=index == 0, process=index,
                                 keys=keys)
    sys.exit(code)


@contextlib.contextmanager
def _stop_ends_the_import() -> Iterator[None]:
    """_StoppedBeforeReady as soon as SIGTERM or SIGINT comes (or came, blocked since
    the spawn) while the block runs: a process still importing has served nothing
    and opened nothing. The stop was taken only once the process served, so a
    supervisor stopped while a replacement started on a busy core waited out the whole
    start (about 5 s at load 20; past its grace and 15 s at a tenth of a core, when it
    killed the process and exited 1). No thread runs yet, so the handler runs in this
    one; the signals are blocked again before serve() starts any."""
    def stop(signum: int, frame: object) -> None:
        raise _StoppedBeforeReady

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # (one pending: raises)
        yield
    finally:
        # Python runs the handler of a signal that came just before this, within the
        # call: the handlers put back after it lose no stop.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _say_ready(ready: Connection) -> None:
    """Tells the supervisor this process serves. One that is gone (killed) has closed
    its end: this process then stops as its parent-death SIGTERM, pending, says,
    draining its calls. The pipe's error stopped it undrained, saying "cannot start:
    [Errno 32] Broken pipe"."""
    try:
        ready.send(True)
    except BrokenPipeError:
        log.warning("the supervisor ended before this process was ready: stopping")
