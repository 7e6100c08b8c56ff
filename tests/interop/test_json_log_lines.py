"""Under `--log-format json` every line the server writes on stderr is a JSON object:
grpc's own (its C core logs through absl straight to descriptor 2) and the lines
printed outside logging too."""

from __future__ import annotations

import datetime
import json
import os
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
