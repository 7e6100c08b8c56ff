"""Under `--log-format json` every line the server writes on stderr is a JSON object:
grpc's own (its C core logs through absl straight to descriptor 2) and the lines
printed outside logging too."""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import retail_v2
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceGrpcTransport,
)

from server.logsink import DRAIN_SECONDS

from .trust import make_certificates

CATALOG = "projects/json/locations/global/catalogs/default_catalog"
DEADLINE = 60.0


def test_grpcs_handshake_lines_and_the_start_warnings_are_json_too(tmp_path: Path) -> None:
    # A plaintext client at a TLS port: grpc logged `I1206 15:07:40.520016 16731
    # ssl_transport_security.cc:2563] Handshake failed ...` among the JSON lines, as
    # print() did the warning of an unknown FOOTFALL_* variable.
    certs = make_certificates(tmp_path)
    ready = tmp_path / "ready.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
         "--store", "memory://", "--tls-cert", str(certs.cert), "--tls-key", str(certs.key),
         "--log-format", "json", "--ready-file", str(ready)],
        cwd=tmp_path, env={**env, "FOOTFALL_STORRE": "x"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + DEADLINE
        while not ready.exists():
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        address = json.loads(ready.read_text())["grpc"]
        with grpc.insecure_channel(address) as channel:
            client = retail_v2.UserEventServiceClient(
                transport=UserEventServiceGrpcTransport(channel=channel))
            with pytest.raises(exceptions.ServiceUnavailable):
                client.write_user_event(retail_v2.WriteUserEventRequest(
                    parent=CATALOG, user_event=retail_v2.UserEvent(
                        event_type="home-page-view", visitor_id="v")), timeout=10)
        server.terminate()
        # (read to its end: the relay that writes grpc's lines has ended too)
        _, err = server.communicate(timeout=DEADLINE)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err.decode(errors="replace")
    lines = [json.loads(line) for line in err.decode().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    handshakes = [line for line in lines if "Handshake failed" in line["message"]]
    assert handshakes and all(line["logger"] == "grpc" and line["source"].startswith(
        "ssl_transport_security.cc:") for line in handshakes), lines
    assert any(line["logger"] == "stderr" and "FOOTFALL_STORRE" in line["message"]
               for line in lines), lines
    assert any(line["message"] == "stopped" for line in lines)


def test_a_stop_with_processes_does_not_wait_for_the_relay_to_end(tmp_path: Path) -> None:
    # multiprocessing's resource tracker, started with --processes, holds descriptor 2
    # (the relay's pipe) until the supervisor ends, and the supervisor waited for the
    # relay to end: every stop took DRAIN_SECONDS (2 s) more after its last line. The
    # children's lines are all there still.
    ready = tmp_path / "ready.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
         "--store", str(tmp_path / "store.db"), "--processes", "2", "--log-format", "json",
         "--ready-file", str(ready)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + DEADLINE
        while not ready.exists():
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        server.terminate()
        while server.poll() is None:
            assert time.monotonic() < deadline + DEADLINE
            time.sleep(0.005)
        exited = time.time()
        _, err = server.communicate(timeout=DEADLINE)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err.decode(errors="replace")
    lines = [json.loads(line) for line in err.decode().splitlines()]
    messages = [line["message"] for line in lines]
    assert "stopped (process 1 of 2)" in messages and "stopped (process 2 of 2)" in messages
    last = max(datetime.datetime.fromisoformat(line["time"]).timestamp() for line in lines)
    # (its last line to its end: milliseconds, against DRAIN_SECONDS waited)
    assert exited - last < DRAIN_SECONDS * 0.75, (exited - last, messages[-3:])


def test_a_setting_that_stops_the_server_is_said_as_an_error(tmp_path: Path) -> None:
    """`--processes 2` with a store the processes cannot share exits 2 saying why: the
    line came as WARNING, as any other line printed outside logging, and a collector
    alerting on ERROR was told nothing of a server that never started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    out = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
         "--store", "memory://", "--processes", "2", "--log-format", "json"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True,
        timeout=DEADLINE)
    assert out.returncode == 2, out.stderr
    lines = [json.loads(line) for line in out.stderr.decode().splitlines()]
    assert [(line["level"], line["logger"]) for line in lines] == [("ERROR", "stderr")], lines
    assert lines[0]["message"].startswith("footfall serve: error: --processes 2 needs a store"), \
        lines


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """An HTTP/2 frame (RFC 9113 §4.1)."""
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + \
        struct.pack(">I", stream) + payload


def _header(name: bytes, value: bytes) -> bytes:
    """A header field as an HPACK literal never added to the table (RFC 7541 §6.2.2)."""
    return b"\x00" + bytes((len(name),)) + name + bytes((len(value),)) + value


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_grpcs_lines_for_what_clients_send_are_bounded(tmp_path: Path, log_format: str) -> None:
    # grpc writes a line of its own for each call whose grpc-timeout header it cannot
    # read, before any key is asked for: one connection resetting such calls as it
    # sent them had 83,000 lines a second written (13 MB/s), no key needed. A window's
    # first 100 are written, then a line says how many more there were.
    ready = tmp_path / "ready.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
         "--store", "memory://", "--log-format", log_format, "--ready-file", str(ready)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    sent = 1_000
    try:
        deadline = time.monotonic() + DEADLINE
        while not ready.exists():
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        host, port = json.loads(ready.read_text())["grpc"].rsplit(":", 1)
        block = b"".join(_header(name, value) for name, value in (
            (b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"localhost"),
            (b":path", b"/grpc.health.v1.Health/Check"), (b"te", b"trailers"),
            (b"content-type", b"application/grpc"), (b"grpc-timeout", b"soon")))
        calls = b"".join(_frame(1, 0x4, stream, block) + _frame(3, 0, stream, b"\0\0\0\x08")
                         for stream in range(1, 2 * sent, 2))
        with socket.create_connection((host, int(port)), timeout=DEADLINE) as connection:
            connection.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"") +
                               calls + _frame(6, 0, 0, b"footfall"))
            answered = b""  # (until the ping's ack: every call before it was read)
            while _frame(6, 1, 0, b"footfall") not in answered:
                read = connection.recv(1 << 16)
                assert read, answered[-200:]
                answered += read
        server.terminate()
        _, err = server.communicate(timeout=DEADLINE)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err.decode(errors="replace")[-2000:]
    lines = err.decode().splitlines()
    if log_format == "json":
        lines = [json.loads(line)["message"] for line in lines]
    written = [line for line in lines if "Error parsing 'grpc-timeout'" in line]
    assert len(written) == 100, len(written)
    [counted] = [match for line in lines if (match := re.search(
        r"(\d+) more lines of grpc's from hpack_parser\.cc", line))]
    assert int(counted[1]) == sent - 100, counted.string
