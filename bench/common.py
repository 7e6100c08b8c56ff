"""Shared pieces of the benchmarks: servers in subprocesses, h2load, statistics."""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARENT = "projects/bench/locations/global/catalogs/default_catalog"
_READY = re.compile(r"serving gRPC on [^ ]+:(\d+)")
_HTTP_READY = re.compile(r"serving HTTP on [^ ]+:(\d+)")


def h2load_path() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise SystemExit("h2load is missing: apt-get install nghttp2-client (make bench does)")
    return path


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    http_port: int = 0
    store_url: str = ""

    def peak_rss_kib(self) -> int:
        """The server's peak RSS plus that of the processes it started (an upper
        bound of the peak of the whole: each at its own peak)."""
        return sum(_peak_rss_kib(pid) for pid in process_tree(self.process.pid))

    def cpu_seconds(self) -> float:
        """CPU (user + system) of the server and of the server processes it started
        (--processes, import workers), from /proc."""
        return cpu_seconds(self.process.pid)


def cpu_seconds(pid: int) -> float:
    """CPU (user + system) of process `pid` and its descendants, from /proc."""
    return sum(_cpu_ticks(p) for p in process_tree(pid)) / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # ended meanwhile
        return 0
    return int(fields[11]) + int(fields[12])


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            found.extend(process_tree(int(child)))
    return found


def _peak_rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # ended meanwhile
        return 0
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


@contextmanager
def footfall(store: str | None = None, *extra: str, sqlite_options: str = "") -> Iterator[Server]:
    """A Footfall server subprocess on a free port; stopped (SIGTERM) on exit.

    Without `store`, a fresh SQLite file in its work folder (plus `sqlite_options`,
    e.g. `?synchronous=normal`).
    """
    workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-"))
    store = store or f"sqlite:///{workdir}/events.db{sqlite_options}"
    args = [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
            "--store", store, "--gcs-root", str(workdir / "gcs"), *extra]
    env = {**os.environ, "FOOTFALL_LOG_LEVEL": "INFO"}
    process = subprocess.Popen(args, cwd=workdir, stderr=subprocess.PIPE, env=env)
    try:
        port, http_port = _wait_ready(process)
        yield Server(process, port, workdir, http_port, store)
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def empty_server(flavour: str) -> Iterator[Server]:
    """The empty-handler baseline server (bench/empty_server.py)."""
    process = subprocess.Popen([sys.executable, str(ROOT / "bench/empty_server.py"), flavour],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        port = int(line.split()[1])
        yield Server(process, port, ROOT)
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], timeout: float = 30.0) -> tuple[int, int]:
    """(gRPC port, HTTP port or 0) once the server logs that it serves."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    http_port = 0
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        http = _HTTP_READY.search(line)
        if http:
            http_port = int(http.group(1))
        match = _READY.search(line)
        if match:
            # keep draining stderr so the server never blocks on a full pipe
            _drain(process)
            return int(match.group(1)), http_port
    process.kill()
    raise RuntimeError("server did not start:\n" + "".join(seen))


def _drain(process: subprocess.Popen[bytes]) -> None:
    import threading

    def pump() -> None:
        assert process.stderr is not None
        for _ in process.stderr:
            pass

    threading.Thread(target=pump, daemon=True).start()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message, as h2load must send it."""
    return b"\0" + struct.pack(">I", len(message)) + message


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def h2load(port: int, path: str, frame_file: Path, callers: int, requests: int) -> Load:
    """Unary gRPC calls from h2load: `callers` connections, one call in flight each."""
    log = Path(tempfile.mktemp(prefix="h2load-", suffix=".log"))
    args = [h2load_path(), "-n", str(requests), "-c", str(callers), "-m", "1",
            "-d", str(frame_file), "-H", "content-type: application/grpc", "-H", "te: trailers",
            "--log-file", str(log), f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    number, unit = re.search(r"finished in ([\d.]+)(ms|s)", out).groups()  # type: ignore[union-attr]
    seconds = float(number) / (1000 if unit == "ms" else 1)
    failed = int(re.search(r"(\d+) failed", out).group(1))  # type: ignore[union-attr]
    times = sorted(int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines())
    log.unlink()
    return Load(requests, seconds, percentile(times, 50), percentile(times, 99), failed)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


ADMIN_DSN = os.environ.get("FOOTFALL_BENCH_POSTGRES_DSN",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(ADMIN_DSN, connect_timeout=3):
            return True
    except Exception:
        return False


@contextmanager
def postgres_database(prefix: str = "footfall_bench") -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one benchmark (named `prefix`_ and a
    random suffix); dropped afterwards."""
    import secrets

    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base = ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def wait_done(channel: Any, operation: Any) -> Any:
    """The operation once done, through google.longrunning.Operations/WaitOperation."""
    from google.longrunning import operations_pb2, operations_pb2_grpc
    from google.protobuf import duration_pb2

    ops = operations_pb2_grpc.OperationsStub(channel)
    while not operation.done:
        operation = ops.WaitOperation(operations_pb2.WaitOperationRequest(
            name=operation.name, timeout=duration_pb2.Duration(seconds=60)))
    return operation
