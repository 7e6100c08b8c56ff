"""`footfall serve`, in one process or in N (`--processes`) over one store.

Python runs one thread of Python code at a time, so one server process keeps about
one core busy. With `--processes N` this process serves nothing itself: it checks
the ports (picking free ones for `0`/`-1`), starts N server processes that listen
on the same ports with SO_REUSEPORT (the kernel spreads connections over them),
says the ready lines once all of them are ready, hands SIGTERM, SIGINT and SIGHUP
on to them, starts a new one in place of one that dies, and exits once all have
drained. They share the store (SQLite in WAL with a group commit each, or
PostgreSQL); jobs are claimed through it with leases, as replicas claim them.
/metrics sums over the processes: prometheus_client's multiprocess mode, in a
folder of this process's own, removed at exit (or, if it is killed, by a later start:
server.metrics_folders). Retention runs in the first one only, so that each interval
starts one purge, not N.

The server processes are spawned (a new interpreter each, never a fork of a
process with grpc's threads; their body: server.server_process) and end with this
one (PR_SET_PDEATHSIG), so a kill -9 of the parent leaves no server behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass, replace
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection

from server import metrics_folders, ready_file
from server.config import Settings
from server.ports import bind_refusal, grpc_refusal, http_refusal
from server.server_process import STOP_SIGNALS, serve_child
from server.store.rows import StoreRefused, StoreUnavailable, StoreUnusable

log = logging.getLogger("footfall")

METRICS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess mode
START_SECONDS = 60.0  # for every process to say it is ready
RESTART_DELAY = 1.0  # before a process that died is replaced
MAX_RESTARTS, RESTART_WINDOW = 5, 60.0  # more deaths than this in the window: give up
PARENT_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
STOP_POLL_SECONDS = 0.1  # how soon a stop is taken while the parent waits for a process


class _StopAsked(Exception):
    """SIGTERM or SIGINT came while the parent was waiting for a process."""


def run(settings: Settings) -> int:
    """Serve as `settings` say until SIGTERM or SIGINT; the exit code. --ready-file
    is removed before if its server has ended (one left by a server killed outright
    never says this one is ready) and after if this one wrote it (a fixture polling
    it never reads a stopped server's ports)."""
    try:
        ready_file.clear(settings.ready_file)
    except OSError as exc:
        log.error("cannot start: --ready-file %s: %s", settings.ready_file, one_line(exc))
        return 1
    try:
        if settings.processes == 1:
            return run_one(settings)
        return Supervisor(settings).run()
    finally:
        with contextlib.suppress(OSError):
            ready_file.remove_own(settings.ready_file)


def run_one(settings: Settings, **serve_options: object) -> int:
    """One server process; start-up failures as exit codes (see server.__main__)."""
    from server.app import serve  # grpc and the stores: only in a serving process

    try:
        return serve(settings, **serve_options)  # type: ignore[arg-type]
    except START_FAILURES as exc:
        return _cannot_start(exc)


# What stops a start, said in one line: an unknown store URL, no such database or role
# (the configuration is wrong: exit code 2); a port in use, an unwritable folder, a
# database that does not answer, a damaged or read-only database file (1).
START_FAILURES = (StoreRefused, ValueError, OSError, StoreUnavailable, StoreUnusable)


def _cannot_start(exc: BaseException) -> int:
    log.error("cannot start: %s", one_line(exc))
    return 2 if isinstance(exc, (StoreRefused, ValueError)) else 1


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())  # StoreUnavailable's str() has the detail too


@dataclass
class _Child:
    index: int
    process: multiprocessing.process.BaseProcess
    ready: Connection  # says True once the process serves
    count: int = 1  # of the server
    served: bool = False  # whether it said so

    def __str__(self) -> str:
        # as the process itself says it ('(process 2 of 2)'): the parent said 'process 1'
        # of the one that says 'process 2 of 2'
        return f"process {self.index + 1} of {self.count}"


class Supervisor:
    """Starts, watches and stops the server processes of one `footfall serve`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._children: list[_Child] = []
        # The auth file's text in force (None: auth off, or a file no process could
        # read): a process started in place of a dead one begins with it, as the others
        # serve with it. Read from the file, a key file being edited (or left broken
        # after a SIGHUP kept the old keys) stopped each replacement, and after five
        # the whole server.
        self._keys: str | None = None
        self._deaths: list[float] = []
        self._held: list[socket.socket] = []  # ports picked for 0/-1, kept until exit

    def run(self) -> int:
        # Started before the signals are blocked: starting it unblocks SIGINT and SIGTERM.
        resource_tracker.ensure_running()
        # The ports first, as one process checks them before it opens the store: a
        # start on a port in use (the old version's server, not stopped yet) migrated
        # the store under that server, for a start that never served.
        try:
            settings = self._with_ports(self.settings)
        except OSError as exc:
            log.error("cannot start: %s", one_line(exc))
            return 1
        try:
            return self._migrated_and_supervised(settings)
        finally:
            for sock in self._held:
                sock.close()

    def _migrated_and_supervised(self, settings: Settings) -> int:
        try:
            self._migrate()
        except START_FAILURES as exc:
            return _cannot_start(exc)
        signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS)
        swept = metrics_folders.sweep()
        if swept:
            log.info("removed the metrics folders that %d killed --processes servers left "
                     "(their supervisors no longer run): %s", len(swept), ", ".join(swept))
        folder = metrics_folders.make()
        os.environ[METRICS_FOLDER] = folder  # the spawned processes inherit it
        try:
            return self._supervise(settings)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _migrate(self) -> None:
        """Bring the store to this version once, before any server process opens it.
        A long migration (a large store of an older version: minutes) held up the
        process doing it past the start deadline, and the others past their wait
        for the database, so the start failed and rolled it back, at every start."""
        from server.store import open_store  # (the stores, not grpc: no thread is left)

        open_store(self.settings.store).close()

    def _supervise(self, settings: Settings) -> int:
        from server.policy.auth import AuthFileError

        self.settings = settings
        if settings.auth_file:
            try:
                self._keys = _read_keys(settings.auth_file)
            except AuthFileError as exc:
                # Said once, as one process says it: each process started with it
                # said it again (--processes 8: eight lines of one mistake).
                log.error("%s", exc)
                return 2
        for index in range(settings.processes):
            self._children.append(self._spawn(index))
        try:
            code = self._wait_ready()
            if code is not None:
                self._stop_all()
                return code
            from server.app import announce

            announce(settings, settings.port, max(settings.http_port, 0),
                     f"; {settings.processes} processes")
            while True:
                taken = signal.sigwait(PARENT_SIGNALS)
                if taken == signal.SIGHUP:  # each process reads the keys again, as this one
                    self._keys = _keys_in(settings.auth_file) or self._keys
                    self._signal_all(signal.SIGHUP)
                elif taken == signal.SIGCHLD:
                    code = self._replace_dead()
                    if code is not None:
                        self._stop_all()
                        return code
                else:
                    raise _StopAsked
        except _StopAsked:
            log.info("shutting down: %d processes drain their calls (up to %ss)",
                     len(self._children), settings.grace_seconds)
            return self._stop_all()

    def _spawn(self, index: int) -> _Child:
        settings = self.settings
        if index:  # one retention loop for the whole server
            settings = replace(settings, retain_days=0)
        ready, told = self._context.Pipe(duplex=False)
        # Starting a process starts the resource tracker again if it died, and that
        # unblocks SIGINT and SIGTERM: the next SIGTERM killed this process outright.
        # Started here, and the signals blocked again, before the process inherits them.
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS)
        process = self._context.Process(target=serve_child,
                                        args=(settings, index, told, self._keys, os.getpid()),
                                        name=f"footfall-{index}", daemon=False)
        process.start()
        told.close()  # the process's end
        return _Child(index, process, ready, settings.processes)

    def _wait_ready(self) -> int | None:
        """None once every process is ready; else the exit code of the first that
        ended before it was (a port, a store or a key file it could not use)."""
        deadline = time.monotonic() + START_SECONDS
        for child in self._children:
            while not _said_ready(child.ready, 0.05):
                _take_stop(0)
                if not child.process.is_alive():
                    # Said here: a process that ends before it logs anything (killed,
                    # out of memory, its interpreter failing) left only "stopped".
                    child.process.join()
                    log.error("cannot start: %s (pid %s) ended with %s before it was ready",
                              child, child.process.pid, _how_ended(child.process.exitcode))
                    code = child.process.exitcode or 1
                    return code if code > 0 else 1
                if time.monotonic() > deadline:
                    log.error("cannot start: %s was not ready within %gs",
                              child, START_SECONDS)
                    return 1
            child.served = True
        return None

    def _replace_dead(self) -> int | None:
        """Start a new process in place of each that ended; an exit code when they die
        too often to go on. A replacement that cannot start (the database away, the key
        file being edited) is one more death, and tried again while the others serve:
        it stopped the whole server at once."""
        for i, child in enumerate(self._children):
            while not child.process.is_alive():
                child.process.join()
                _forget_metrics(child.process.pid)
                log.warning("%s (pid %s) ended with %s%s; starting another",
                            child, child.process.pid, _how_ended(child.process.exitcode),
                            "" if child.served else " before it was ready")
                now = time.monotonic()
                self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW] + [now]
                if len(self._deaths) > MAX_RESTARTS:
                    log.error("%d processes ended within %gs: stopping", len(self._deaths),
                              RESTART_WINDOW)
                    return 1
                _take_stop(RESTART_DELAY)
                self._children[i] = child = self._spawn(child.index)
                if self._ready_unless_stopped(child, START_SECONDS):
                    child.served = True
                    log.info("%s serves again (pid %s)", child, child.process.pid)
                elif child.process.is_alive():
                    log.error("the process started in place of %s was not ready "
                              "within %gs: killed", child, START_SECONDS)
                    child.process.kill()
                    child.process.join()
        return None

    @staticmethod
    def _ready_unless_stopped(child: _Child, seconds: float) -> bool:
        """Whether `child` said it serves within `seconds`; _StopAsked if a stop
        came first."""
        deadline = time.monotonic() + seconds
        while not _said_ready(child.ready, STOP_POLL_SECONDS):
            _take_stop(0)
            if not child.process.is_alive() or time.monotonic() > deadline:
                return False
        return True

    def _signal_all(self, signum: int) -> None:
        for child in self._children:
            if child.process.is_alive() and child.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signum)

    def _stop_all(self) -> int:
        """SIGTERM to every process, wait for each to drain (killed after the grace
        period and some); 0 if all stopped cleanly."""
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.grace_seconds + 15
        code = 0
        for child in self._children:
            child.process.join(max(deadline - time.monotonic(), 0))
            if child.process.is_alive():
                log.warning("%s did not stop in time: killed", child)
                child.process.kill()
                child.process.join()
            if child.process.exitcode:
                code = 1
        log.info("stopped")
        return code

    def _with_ports(self, settings: Settings) -> Settings:
        """`settings` with the ports to share: free ones picked for 0 (gRPC) and -1
        (HTTP) and held, the given ones checked free (OSError if in use)."""
        port = self._port(settings.host, settings.port, pick=settings.port == 0, grpc=True)
        http_port = settings.http_port
        if http_port:
            http_port = self._port(settings.host, http_port, pick=http_port == -1)
        return replace(settings, port=port, http_port=http_port)

    def _port(self, host: str, port: int, pick: bool, grpc: bool = False) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if pick:  # held, bound but not listening, so no one else takes it meanwhile
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        else:  # bound without SO_REUSEPORT: fails if anyone listens there already
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, 0 if pick else port))
        except OSError as exc:
            sock.close()
            # (why, as one process's start says it: a port that a connection holds as its
            # own end, with nothing listening on it, was said "Address already in use"
            # alone under --processes)
            said = None if pick else bind_refusal(host, port, grpc_places=grpc)
            raise OSError(_refusal(host, port, said or exc, grpc)) from exc
        bound = int(sock.getsockname()[1])
        if pick:
            self._held.append(sock)
            return bound
        sock.close()
        # each address the host names, as the processes bind each (localhost: ::1 too,
        # where another process listening left them 127.0.0.1 alone, and its clients)
        refusal = bind_refusal(host, port, grpc_places=grpc)
        if refusal is not None and refusal.errno == errno.EADDRINUSE:
            raise OSError(_refusal(host, port, refusal, grpc))
        return bound


def _refusal(host: str, port: int, exc: OSError, grpc: bool) -> str:
    """Why a port cannot be listened on, said as one process's start says it."""
    if grpc:
        return grpc_refusal(f"{host}:{port}", exc)
    return http_refusal(host, port, exc)


def _read_keys(path: str) -> str:
    """The text of the auth file at `path`, which holds keys a process can serve
    with; AuthFileError saying why not, as a process says it. The file's warnings are
    not said here: each process says what it finds in the file, and this said it all
    once more."""
    from server.policy.auth import AuthFileError, KeyRing  # (no grpc in this process)

    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthFileError(f"cannot read auth file {path}: {exc}") from None
    auth_log = logging.getLogger(KeyRing.__module__)
    quiet, auth_log.disabled = auth_log.disabled, True
    try:
        KeyRing.parse(text, f"auth file {path}")
    finally:
        auth_log.disabled = quiet
    return text


def _keys_in(path: str) -> str | None:
    """The text of the auth file at `path` if it holds keys a process can serve with;
    None for no file, or one that cannot be read or used (each process says why)."""
    from server.policy.auth import AuthFileError

    if not path:
        return None
    try:
        return _read_keys(path)
    except AuthFileError:
        return None


def _take_stop(seconds: float) -> None:
    """Wait up to `seconds` for SIGTERM or SIGINT (blocked in the parent); _StopAsked
    if one came. Other signals stay pending for the supervising loop."""
    taken = signal.sigtimedwait(STOP_SIGNALS, seconds)
    # Stopped (SIGSTOP, a debugger) past the deadline and continued, the wait ends with
    # EINTR, and Python answers a siginfo of no signal (si_signo 0), not None: taken
    # for a stop, the server shut down while it put a process in place of a dead one.
    if taken is not None and taken.si_signo in STOP_SIGNALS:
        raise _StopAsked


def _said_ready(ready: Connection, seconds: float) -> bool:
    """Whether the process said it serves within `seconds` (False if it ended)."""
    try:
        return ready.poll(seconds) and bool(ready.recv())
    except EOFError:
        return False


def _how_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return signal.Signals(-exitcode).name
    return f"exit code {exitcode}"


def _forget_metrics(pid: int | None) -> None:
    """Drop a dead process's live gauges (its counters stay in the sums)."""
    if pid is None or METRICS_FOLDER not in os.environ:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)

