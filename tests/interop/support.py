"""Run Footfall as a subprocess and reach it with the official clients.

Nothing here imports `server` or `footfall`: the official client packages and
our generated modules register the same protobuf names, so this suite talks to
the server only over a socket (and reads the store through the `events` CLI).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.api_core import exceptions
from google.cloud import retail_v2, talent_v4
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceGrpcAsyncIOTransport,
    UserEventServiceGrpcTransport,
)
from google.cloud.talent_v4.services.event_service.transports import (
    EventServiceGrpcAsyncIOTransport,
    EventServiceGrpcTransport,
)
from google.rpc import error_details_pb2

READY = re.compile(r"Footfall serving gRPC on (?P<host>\S+):(?P<port>\d+) ")
START_DEADLINE = 30.0  # seconds for the ready line; a cold start is well under one
STOP_GRACE = 10.0  # seconds SIGTERM may take before the process is killed
CLI_DEADLINE = 60.0
RPC_DEADLINE = 10.0  # every call a test makes carries this deadline

_running: set[ServerProcess] = set()


class ServerProcess:
    """A `python -m server serve` child: its address, its log, how to stop it."""

    def __init__(self, workdir: Path, store: str, args: Sequence[str]) -> None:
        self.workdir = workdir
        self.store = store
        # FOOTFALL_* from the developer's shell must not change what we test
        # (a FOOTFALL_LOG_LEVEL=WARNING would even hide the ready line).
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
        self.command = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1",
                        "--port", "0", "--store", store, *args]
        self.log: list[str] = []
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.proc = subprocess.Popen(self.command, cwd=workdir, env=env,
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


def sqlite_url(path: Path) -> str:
    """sqlite:////abs/path: absolute, so the server and the CLI agree whatever their cwd."""
    return f"sqlite:///{path.resolve()}"


# -- the events CLI: reads the store file directly ------------------------------


def _events_cli(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    proc = subprocess.run([sys.executable, "-m", "server", "events", *args],
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=CLI_DEADLINE)
    assert proc.returncode == 0, f"events {args} failed ({proc.returncode}):\n{proc.stderr}"
    return proc.stdout


def count_events(store: str, parent: str, cwd: Path) -> int:
    return int(_events_cli("count", "--parent", parent, "--store", store, cwd=cwd).strip())


def list_events(store: str, parent: str, cwd: Path, limit: int = 1000) -> list[dict[str, Any]]:
    """Stored events of `parent` in write order, as proto3 JSON objects (camelCase)."""
    out = _events_cli("list", "--parent", parent, "--store", store, "--json",
                      "--limit", str(limit), cwd=cwd)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


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


def talent_async_client(address: str) -> talent_v4.EventServiceAsyncClient:
    """Create inside the running event loop (an aio channel belongs to its loop)."""
    transport = EventServiceGrpcAsyncIOTransport(channel=grpc.aio.insecure_channel(address))
    return talent_v4.EventServiceAsyncClient(transport=transport)


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
