"""--ready-file: a fixture on free ports (`--port 0 --http-port -1`) reads the
addresses bound from one JSON file, not from the log's words; a file left by a
server killed outright never says the next one is ready."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def start(tmp_path: Path, ready: Path, *flags: str) -> subprocess.Popen[bytes]:
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (the process holds it)
    with log:
        return subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", "0",
                                 "--ready-file", str(ready), *flags],
                                cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def ready_lines_said(tmp_path: Path, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE
    while "serving gRPC" not in (tmp_path / "server.log").read_text():
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.05)


def stop(server: subprocess.Popen[bytes], tmp_path: Path) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=DEADLINE) == 0, (tmp_path / "server.log").read_text()


def test_the_ready_file_names_both_ports_bound_and_goes_at_the_stop(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    gone = subprocess.Popen(["true"])
    gone.wait()
    ready.write_text(json.dumps({"grpc": "127.0.0.1:1", "http": "127.0.0.1:2",
                                 "pid": gone.pid}))  # a killed run's
    server = start(tmp_path, ready, "--http-port", "-1", "--store", "memory://")
    try:
        ready_lines_said(tmp_path, server)
        said = json.loads(ready.read_text())
        assert said["pid"] == server.pid
        assert said["grpc"] == f"127.0.0.1:{said['grpcPort']}"
        assert said["http"] == f"127.0.0.1:{said['httpPort']}"
        assert f"serving gRPC on {said['grpc']} " in (tmp_path / "server.log").read_text()
        with grpc.insecure_channel(said["grpc"]) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        with urllib.request.urlopen(f"http://{said['http']}/healthz", timeout=10) as answer:
            assert answer.status == 200
    finally:
        stop(server, tmp_path)
    assert not ready.exists()
    assert os.listdir(tmp_path) == ["server.log"]  # (no partial file left either)


def test_with_http_off_and_processes_the_ready_file_says_so(tmp_path: Path) -> None:
    ready = tmp_path / "made" / "for it" / "ready.json"  # its folder is made
    server = start(tmp_path, ready, "--http-port", "0", "--processes", "2",
                   "--store", f"sqlite:///{tmp_path / 'footfall.db'}")
    try:
        ready_lines_said(tmp_path, server)
        said = json.loads(ready.read_text())
        assert said["http"] is None and said["httpPort"] is None
        assert said["pid"] == server.pid  # the supervisor: the one to signal
        assert said["grpc"] == f"127.0.0.1:{said['grpcPort']}" and said["grpcPort"] > 0
    finally:
        stop(server, tmp_path)
    assert not ready.exists()


def test_a_second_start_told_the_same_file_leaves_the_first_ones(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    first = start(tmp_path, ready, "--http-port", "-1", "--store", "memory://")
    try:
        ready_lines_said(tmp_path, first)
        said = ready.read_text()
        port = str(json.loads(said)["grpcPort"])
        second = subprocess.run([sys.executable, "-m", "server", "serve", "--port", port,
                                 "--http-port", "-1", "--store", "memory://",
                                 "--ready-file", str(ready)], cwd=ROOT, capture_output=True,
                                text=True, timeout=DEADLINE)
        assert second.returncode == 1 and "Address already in use" in second.stderr
        assert ready.read_text() == said  # the running server's, still
    finally:
        stop(first, tmp_path)
    assert not ready.exists()


def test_a_killed_runs_file_is_gone_even_when_the_start_then_fails(tmp_path: Path) -> None:
    """The stale file goes at the start, before the ports are bound: a fixture polling
    it never reads a dead server's ports as this start's, even one that fails (the
    first test's file was overwritten at ready anyway, so only this one sees it go)."""
    ready = tmp_path / "ready.json"
    gone = subprocess.Popen(["true"])
    gone.wait()
    ready.write_text(json.dumps({"grpc": "127.0.0.1:1", "pid": gone.pid}))  # a killed run's
    with socket.create_server(("127.0.0.1", 0)) as taken:
        failed = subprocess.run([sys.executable, "-m", "server", "serve", "--port",
                                 str(taken.getsockname()[1]), "--http-port", "-1", "--store",
                                 "memory://", "--ready-file", str(ready)], cwd=ROOT,
                                capture_output=True, text=True, timeout=DEADLINE)
    assert failed.returncode == 1 and "Address already in use" in failed.stderr
    assert not ready.exists()
