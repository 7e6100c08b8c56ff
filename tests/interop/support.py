"""Run Footfall as a subprocess and reach it with the official clients.

Nothing here imports `server` or `footfall`: the official client packages and
our generated modules register the same protobuf names, so this suite talks to
the server only over a socket (and reads the store through the `events` CLI).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.api_core import exceptions
from google.api_core.future import polling
from google.cloud import retail_v2, talent_v4, talent_v4beta1
from google.cloud.retail_v2.services.product_service.transports import (
    ProductServiceGrpcAsyncIOTransport,
    ProductServiceGrpcTransport,
)
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceGrpcAsyncIOTransport,
    UserEventServiceGrpcTransport,
)
from google.cloud.talent_v4.services.event_service.transports import (
    EventServiceGrpcAsyncIOTransport,
    EventServiceGrpcTransport,
)
from google.cloud.talent_v4beta1.services.event_service.transports import (
    EventServiceGrpcTransport as V4beta1EventServiceGrpcTransport,
)
from google.rpc import error_details_pb2

READY = re.compile(r"Footfall serving gRPC on (?P<host>\S+):(?P<port>\d+) ")
# Logged just before READY when the HTTP gateway is on.
HTTP_READY = re.compile(r"Footfall serving HTTP on (?P<host>\S+):(?P<port>\d+) ")
START_DEADLINE = 30.0  # seconds for the ready line; a cold start is well under one
STOP_GRACE = 10.0  # seconds SIGTERM may take before the process is killed
CLI_DEADLINE = 60.0
RPC_DEADLINE = 10.0  # every call a test makes carries this deadline
OPERATION_DEADLINE = 30.0  # how long a test waits for a long-running operation
DEFAULT_GCS_ROOT = "./data/gcs"  # the server's --gcs-root default, relative to its cwd
# The client's default polling starts at 1s and grows; an emulator is quicker.
QUICK_POLLING = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.25, multiplier=1.5)

T = TypeVar("T")

_running: set[ServerProcess] = set()

# `python -c _LIMIT_FILES N command...`: RLIMIT_NOFILE N (soft and hard), then exec.
_LIMIT_FILES = ("import os, resource, sys; n = int(sys.argv[1]); "
                "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
                "os.execv(sys.argv[2], sys.argv[2:])")


class ServerProcess:
    """A `python -m server serve` child: its address, its log, how to stop it."""

    def __init__(self, workdir: Path, store: str, args: Sequence[str],
                 max_files: int | None = None) -> None:
        self.workdir = workdir
        self.store = store
        # FOOTFALL_* from the developer's shell must not change what we test
        # (a FOOTFALL_LOG_LEVEL=WARNING would even hide the ready line).
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
        # The HTTP gateway on a free port too (`args` may say otherwise: last wins).
        self.command = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1",
                        "--port", "0", "--http-port", "-1", "--store", store, *args]
        # A descriptor limit is set by a launcher that execs the server, never by a
        # preexec_fn: Popen forks (no vfork) for one, and with gRPC channels open in
        # this process the child's gRPC fork handler can abort it before exec
        # (grpc/grpc#43055: "epoll_wait error: Bad file descriptor", SIGABRT).
        launch = [] if max_files is None else [sys.executable, "-c", _LIMIT_FILES, str(max_files)]
        self.log: list[str] = []
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.proc = subprocess.Popen([*launch, *self.command], cwd=workdir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                     errors="replace")
        _running.add(self)
        # Drain stderr for the whole life of the process so the pipe never fills.
        self._reader = threading.Thread(target=self._read_log, daemon=True,
                                        name=f"footfall-log-{self.proc.pid}")
        self._reader.start()
        self.port = self._wait_ready()
        self.address = f"127.0.0.1:{self.port}"
        http = [m for m in map(HTTP_READY.search, self.log) if m]
        self.http_port = int(http[-1]["port"]) if http else 0  # 0: gateway off
        self.http_address = f"127.0.0.1:{self.http_port}"
        self.gcs_root = _gcs_root(workdir, args)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self) -> int:
        """The port from the ready line; raises (and kills) if it never comes."""
        deadline = time.monotonic() + START_DEADLINE
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0))
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"no ready line within {START_DEADLINE}s from "
                                   f"{self.command}:\n{self.log_text()}") from None
            if line is None:
                code = self.proc.wait(timeout=STOP_GRACE)
                _running.discard(self)
                raise RuntimeError(f"server exited with {code} before it was ready:\n"
                                   f"{self.log_text()}")
            match = READY.search(line)
            if match:
                return int(match["port"])

    def log_text(self) -> str:
        return "".join(self.log)

    def stop(self) -> int | None:
        """SIGTERM and wait for the drain; kill if it takes over STOP_GRACE.
        Returns the exit code of a graceful stop, None if it had to be killed."""
        if self.proc.poll() is not None:
            _running.discard(self)
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        self._reader.join(timeout=STOP_GRACE)
        _running.discard(self)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_GRACE)
        _running.discard(self)


@atexit.register
def _kill_leftovers() -> None:
    """Last line of defence; fixtures stop every server they start."""
    for server in list(_running):
        server.kill()


@contextlib.contextmanager
def running_server(workdir: Path, store: str | None = None,
                   *args: str) -> Iterator[ServerProcess]:
    """A started server, stopped (or killed) when the block ends, however it ends."""
    server = ServerProcess(workdir, store or sqlite_url(workdir / "footfall.db"), args)
    try:
        yield server
    finally:
        server.stop()


def _gcs_root(workdir: Path, args: Sequence[str]) -> Path:
    """The folder the server reads for gs:// URIs: its --gcs-root, else the default,
    relative to its working directory."""
    value = DEFAULT_GCS_ROOT
    for i, arg in enumerate(args):
        if arg == "--gcs-root" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--gcs-root="):
            value = arg.partition("=")[2]
    return (workdir / value).resolve()


def sqlite_url(path: Path) -> str:
    """sqlite:////abs/path: absolute, so the server and the CLI agree whatever their cwd."""
    return f"sqlite:///{path.resolve()}"


# -- the events CLI: reads the store file directly ------------------------------


def _cli(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    proc = subprocess.run([sys.executable, "-m", "server", *args],
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=CLI_DEADLINE)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stderr}"
    return proc.stdout


def _events_cli(*args: str, cwd: Path) -> str:
    return _cli("events", *args, cwd=cwd)


def count_events(store: str, parent: str, cwd: Path, where: str = "") -> int:
    """Stored events of `parent` (those `where`, in the purge filter grammar, selects)."""
    return int(_events_cli("count", "--parent", parent, "--store", store, f"--filter={where}",
                           cwd=cwd).strip())


def count_client_events(store: str, tenant: str, cwd: Path) -> int:
    """Stored talent client events of `tenant`."""
    return len(_cli("talent-events", "list", "--parent", tenant, "--store", store,
                    "--limit", "0", "--json", cwd=cwd).splitlines())


def list_events(store: str, parent: str, cwd: Path, limit: int = 1000) -> list[dict[str, Any]]:
    """Stored events of `parent` in write order (by position), as proto3 JSON objects
    (camelCase); at most `limit`, those of the latest event times."""
    out = _events_cli("list", "--parent", parent, "--store", store, "--json",
                      "--limit", str(limit), cwd=cwd)
    stored = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [s["userEvent"] for s in sorted(stored, key=lambda s: int(s["id"]))]


# -- clients -----------------------------------------------------------------------


def retail_client(address: str) -> retail_v2.UserEventServiceClient:
    transport = UserEventServiceGrpcTransport(channel=grpc.insecure_channel(address))
    return retail_v2.UserEventServiceClient(transport=transport)


def retail_async_client(address: str) -> retail_v2.UserEventServiceAsyncClient:
    """Create inside the running event loop (an aio channel belongs to its loop)."""
    transport = UserEventServiceGrpcAsyncIOTransport(channel=grpc.aio.insecure_channel(address))
    return retail_v2.UserEventServiceAsyncClient(transport=transport)


def talent_client(address: str) -> talent_v4.EventServiceClient:
    transport = EventServiceGrpcTransport(channel=grpc.insecure_channel(address))
    return talent_v4.EventServiceClient(transport=transport)


def talent_beta_client(address: str) -> talent_v4beta1.EventServiceClient:
    transport = V4beta1EventServiceGrpcTransport(channel=grpc.insecure_channel(address))
    return talent_v4beta1.EventServiceClient(transport=transport)


def talent_async_client(address: str) -> talent_v4.EventServiceAsyncClient:
    """Create inside the running event loop (an aio channel belongs to its loop)."""
    transport = EventServiceGrpcAsyncIOTransport(channel=grpc.aio.insecure_channel(address))
    return talent_v4.EventServiceAsyncClient(transport=transport)


def product_client(address: str) -> retail_v2.ProductServiceClient:
    transport = ProductServiceGrpcTransport(channel=grpc.insecure_channel(address))
    return retail_v2.ProductServiceClient(transport=transport)


def product_async_client(address: str) -> retail_v2.ProductServiceAsyncClient:
    """Create inside the running event loop (an aio channel belongs to its loop)."""
    transport = ProductServiceGrpcAsyncIOTransport(channel=grpc.aio.insecure_channel(address))
    return retail_v2.ProductServiceAsyncClient(transport=transport)


def insecure_channel_factory(host: str, **_: Any) -> grpc.Channel:
    """A `channel=` callable for a GAPIC transport: the client keeps choosing the
    endpoint (client_options.api_endpoint), we only take TLS away."""
    return grpc.insecure_channel(host)


def endpoint_retail_client(address: str, credentials: Any) -> retail_v2.UserEventServiceClient:
    """The documented `client_options={"api_endpoint": ...}` form. The stock
    transport always dials TLS, so the channel comes from a factory."""
    return retail_v2.UserEventServiceClient(
        client_options={"api_endpoint": address},
        credentials=credentials,
        transport=functools.partial(UserEventServiceGrpcTransport,
                                    channel=insecure_channel_factory),
    )


# -- error checks --------------------------------------------------------------------


def field_violations(error: exceptions.GoogleAPICallError) -> list[str]:
    """The fields of the google.rpc.BadRequest detail (exactly one must be present)."""
    bad = [d for d in error.details if isinstance(d, error_details_pb2.BadRequest)]
    assert len(bad) == 1, f"expected one BadRequest detail, got {error.details!r}"
    return [v.field for v in bad[0].field_violations]


@dataclass(frozen=True)
class MapEntry:
    """Expects the path of one map entry, e.g. `user_event.attributes[...]` naming
    `key` (or its start: long keys are shortened), however the key is quoted."""

    path: str
    key: str

    def matches(self, field: str) -> bool:
        return field.startswith(f"{self.path}[") and self.key[:20] in field


Expected = str | MapEntry


def _matches(expected: Expected, field: str) -> bool:
    return expected.matches(field) if isinstance(expected, MapEntry) else expected == field


def assert_names_fields(error: BaseException, expected: Sequence[Expected]) -> None:
    """INVALID_ARGUMENT whose BadRequest detail lists exactly the `expected` fields
    (any order), and whose message says `field: why` for each of them."""
    assert isinstance(error, exceptions.InvalidArgument), repr(error)
    assert error.grpc_status_code == grpc.StatusCode.INVALID_ARGUMENT
    reported = field_violations(error)
    unexpected = [f for f in reported if not any(_matches(e, f) for e in expected)]
    missing = [e for e in expected if not any(_matches(e, f) for f in reported)]
    assert not unexpected and not missing, (
        f"unexpected {unexpected}, missing {missing}; message: {error.message}")
    for field in reported:
        assert f"{field}: " in error.message, (field, error.message)


# -- long-running operations ------------------------------------------------------


def finish(operation: Any, deadline: float = OPERATION_DEADLINE) -> Any:
    """The response of a sync client's operation future (raises its error)."""
    return operation.result(timeout=deadline, polling=QUICK_POLLING)


async def finish_async(operation: Any, deadline: float = OPERATION_DEADLINE) -> Any:
    """The response of an async client's operation: polled every 50 ms up to
    `deadline` (AsyncOperation's own polling starts at one second)."""
    end = time.monotonic() + deadline
    while not await operation.done():
        assert time.monotonic() < end, f"{operation.operation.name} not done in {deadline}s"
        await asyncio.sleep(0.05)
    return await operation.result()


def wait_until(probe: Callable[[], T | None], what: str, deadline: float = OPERATION_DEADLINE,
               interval: float = 0.01) -> T:
    """Call `probe` every `interval` until it answers something truthy; returns that.
    Fails saying `what` was awaited when `deadline` seconds pass first."""
    end = time.monotonic() + deadline
    while True:
        answer = probe()
        if answer:
            return answer
        assert time.monotonic() < end, f"gave up after {deadline}s waiting for {what}"
        time.sleep(interval)


# -- processes that take as long as the machine makes them -------------------------

def _work_done(pid: int) -> tuple[int, ...]:
    """What `pid` and the processes it started have done so far: CPU ticks, and bytes
    read and written through files and sockets, each; it changes while any works."""
    done: list[int] = []
    pids = [pid]
    while pids:
        one = pids.pop()
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
            moved = dict(line.split(": ") for line in
                         Path(f"/proc/{one}/io").read_text().splitlines())
            done += [int(fields[11]) + int(fields[12]), int(moved["rchar"]),
                     int(moved["wchar"])]
            for task in Path(f"/proc/{one}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # (it ended meanwhile)
    return tuple(done)


def communicate_while_working(proc: subprocess.Popen[str], what: str,
                              stall: float = CLI_DEADLINE) -> tuple[str, str]:
    """`proc.communicate()` once it ends, however long it works (a loaded machine
    makes a copy of 400 MB take minutes): it fails, killing `proc`, only once `proc`
    and what it started have used no CPU and moved no byte for `stall` seconds."""
    last, since = _work_done(proc.pid), time.monotonic()
    while True:
        try:
            return proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        now = _work_done(proc.pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"{what} did nothing for {stall:g} s: {out}{err}")


def run_while_working(args: Sequence[str], what: str, **popen: Any
                      ) -> subprocess.CompletedProcess[str]:
    """subprocess.run(args, capture_output=True, text=True, **popen), waited for by
    communicate_while_working rather than for a fixed time."""
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **popen) as proc:
        try:
            out, err = communicate_while_working(proc, what)
        except BaseException:
            proc.kill()
            raise
        return subprocess.CompletedProcess(args, proc.returncode, out, err)


# -- the emulated Cloud Storage (--gcs-root) ----------------------------------------

GCS_BUCKET = "footfall-interop"


def gcs_path(root: Path, uri: str) -> Path:
    """Where the server reads `gs://bucket/path`: ROOT/bucket/path."""
    assert uri.startswith("gs://"), uri
    return root / uri[len("gs://"):]


def put_gcs(root: Path, uri: str, content: str | Iterable[str]) -> str:
    """Write a file the server can read as `uri`: `content` as is, or one line per
    item. Returns `uri`."""
    path = gcs_path(root, uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else "".join(f"{line}\n" for line in content)
    path.write_text(text, encoding="utf-8")
    return uri


_EVENT_LINE = ('{"eventType":"%s","visitorId":"%s-%d","eventTime":"2024-05-20T%02d:%02d:%02dZ"}'
               "\n")


def event_lines(count: int, *, start: int = 0, visitor: str = "bulk",
                event_type: str = "home-page-view") -> str:
    """`count` distinct valid events, one proto3-JSON line each (visitor `visitor-i`),
    built from a template: hundreds of thousands take a fraction of a second."""
    return "".join(_EVENT_LINE % (event_type, visitor, i, i // 3600 % 24, i // 60 % 60, i % 60)
                   for i in range(start, start + count))


# -- a progress probe ---------------------------------------------------------------


def sqlite_event_count(store: str, catalog: str) -> int:
    """How many events of `catalog` a SQLite store holds, read straight from the file.

    Only to decide *when* to act while a job runs (a CLI call costs a process
    start, longer than a purge batch); what a test asserts is read with the
    events CLI. Knows the tables' names and how events name their catalog, nothing else.
    """
    assert store.startswith("sqlite:///"), store
    path = store[len("sqlite:///"):]
    with contextlib.closing(sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro",
                                            uri=True, timeout=5.0)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM user_events WHERE catalog_id = "
                                "(SELECT id FROM catalogs WHERE name = ?)",
                                (catalog,)).fetchone()[0])


def workers(pid: int) -> list[int]:
    """The worker processes `pid` spawned that still run (not multiprocessing's
    resource tracker, which the first starts beside it)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:  # (ended meanwhile)
                continue
            if b"spawn_main" in command:
                found.append(int(child))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` still runs: a zombie waiting to be reaped does not, nor does one
    going as /proc is read (ESRCH: ProcessLookupError)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
