"""What the log says: the start line names the store and the gcs root by absolute
path; every job that ends writes one INFO line with its kind, outcome, time and counts."""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import (
    import_config_pb2,
    purge_config_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.longrunning import operations_pb2_grpc

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

from .cli import CATALOG, event, wait
from .http_client import call
from .log_capture import Lines, lines_of


@pytest.fixture
def job_lines() -> Iterator[Lines]:
    yield from lines_of("server.operations.runner")


def test_a_job_that_ends_logs_one_line(running: Running, channel: grpc.Channel,
                                       job_lines: Lines) -> None:
    retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
    ops = operations_pb2_grpc.OperationsStub(channel)
    for visitor in ("a", "b", "c"):
        retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=event(visitor)))
    request = import_config_pb2.ImportUserEventsRequest(parent=CATALOG)
    request.input_config.user_event_inline_source.user_events.extend([event("d"), event("")])
    imported = wait(ops, retail.ImportUserEvents(request).name)
    purged = wait(ops, retail.PurgeUserEvents(purge_config_pb2.PurgeUserEventsRequest(
        parent=CATALOG, filter='visitorId = "a"', force=True)).name)

    line = job_lines.wait_for(lambda m: m.endswith(f"name={purged.name}"))
    assert re.fullmatch(r"operation ended: kind=purge-user-events state=done "
                        r"seconds=\d+\.\d{3} purged_events_count=1 name=\S+", line), line
    line = job_lines.wait_for(lambda m: m.endswith(f"name={imported.name}"))
    assert re.fullmatch(r"operation ended: kind=import-user-events state=done "
                        r"seconds=\d+\.\d{3} success_count=1 failure_count=1 error_samples=1 "
                        r"joined_events_count=1 unjoined_events_count=0 name=\S+", line), line
    ended = [m for m in job_lines.messages if m.startswith("operation ended:")]
    assert len(ended) == 2


def test_the_start_line_names_the_store_and_gcs_root_by_absolute_path(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
         "--store", "sqlite:///./shop/events.db", "--gcs-root", "./shop/gcs"],
        cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in server.stderr or ()])
    reader.start()
    try:
        while "serving gRPC" not in (line := lines.get(timeout=60)):
            pass
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        reader.join()
    assert f"(store sqlite:///{tmp_path}/shop/events.db; gcs root {tmp_path}/shop/gcs; " \
           "plaintext)" in line, line


def test_a_call_line_escapes_what_a_client_sent(settings: Settings, clock: FixedClock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # A refusal's message quotes the client (here, the name of a field the event does
    # not have): a carriage return in it let the client write over the line in a
    # terminal, an escape sequence recolour or hide it, U+2028 or NEL start a line of
    # its own for whatever splits the log by lines.
    forged = "x\r2024-05-01 12:00:00,000 WARNING footfall: \x1b[8mforged\x85\u2028\x0b"
    running = start(dataclasses.replace(settings, http_port=-1), clock)
    try:
        with caplog.at_level(logging.INFO, "footfall.requests"):
            reply = call(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                         {"eventType": "home-page-view", "visitorId": "v", forged: 1})
    finally:
        running.stop()
    assert reply.status == 400
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("call ")]
    assert "has no field named" in line
    assert line.isprintable(), repr(line)
    assert r"x\r2024-05-01 12:00:00,000 WARNING footfall: \x1b[8mforged\x85\u2028\x0b" in line



def start_log(cwd: Path, *flags: str) -> list[str]:
    """The lines `footfall serve` logs up to its ready line (then it is stopped)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--store", "memory://",
         *flags], cwd=cwd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in server.stderr or ()])
    reader.start()
    said: list[str] = []
    try:
        while "serving gRPC" not in (line := lines.get(timeout=60)):
            said.append(line)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        reader.join()
    return said


@pytest.mark.parametrize(("flags", "warned"), [
    (("--host", "0.0.0.0"), True),  # (bound on every address; the test talks to none)
    (("--host", "0.0.0.0", "--http-allowed-hosts", "shop.example"), False),
    (("--host", "0.0.0.0", "--http-port", "0"), False),  # no HTTP port
    (("--host", "127.0.0.1"), False),  # loopback: only loopback Host names are answered
])
def test_the_start_log_warns_of_dns_rebinding_when_any_host_is_answered_with_auth_off(
        tmp_path: Path, flags: tuple[str, ...], warned: bool) -> None:
    """A server beyond loopback with auth off answered any Host, and said only that
    auth was off: a page renamed to its address could read and reset it."""
    said = [line for line in start_log(tmp_path, "--http-port", "-1", *flags)
            if "DNS rebinding" in line]
    assert len(said) == int(warned), said
    if warned:
        assert "WARNING" in said[0] and "--http-allowed-hosts" in said[0], said


def test_a_call_refused_for_its_keys_role_or_project_names_the_key(
        settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    """A call refused before it was admitted logged no key: an operator could not tell
    which key was misused."""
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": {"writer-secret": {"projects": ["p"], "role": "writer", '
                    '"name": "shop-frontend"}, "reader-secret": {"projects": ["p"], '
                    '"role": "reader", "name": "dashboard"}}}')
    logger = logging.getLogger("footfall.requests")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    running = start(dataclasses.replace(settings, http_port=-1, auth_file=str(keys)), clock)
    try:
        key = {"x-goog-api-key": "writer-secret"}
        assert call(running.http_port, "GET", f"/console/v1/{CATALOG}/userEvents",
                    headers=key).status == 403  # the role may not read
        other = CATALOG.replace("projects/p/", "projects/other/")
        assert call(running.http_port, "POST", f"/v2/{other}/userEvents:write",
                    {"eventType": "home-page-view", "visitorId": "v"}, headers=key).status == 403
        # A watch refused, over either transport, before it opens (and after it was
        # admitted: its filter) named no key either.
        assert call(running.http_port, "GET", f"/console/v1/{CATALOG}/userEvents:watch",
                    headers=key).status == 403
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            watch = console_pb2_grpc.ConsoleServiceStub(channel).WatchUserEvents
            for secret, code, query in (("writer-secret", grpc.StatusCode.PERMISSION_DENIED, ""),
                                        ("reader-secret", grpc.StatusCode.INVALID_ARGUMENT,
                                         "nonsense")):
                with pytest.raises(grpc.RpcError) as refused:
                    next(watch(console_pb2.WatchUserEventsRequest(parent=CATALOG, filter=query),
                               metadata=[("x-goog-api-key", secret)], timeout=30))
                assert refused.value.code() is code
        for method, transport, name in (
                ("ListUserEvents", "http", "shop-frontend"),
                ("WriteUserEvent", "http", "shop-frontend"),
                ("WatchUserEvents", "http", "shop-frontend"),
                ("WatchUserEvents", "grpc", "shop-frontend"),
                ("WatchUserEvents", "grpc", "dashboard")):
            line = handler.wait_for(lambda m, method=method, transport=transport, name=name:
                                    f"/{method} " in m and f"transport={transport} " in m
                                    and f"key={name} " in m)
            assert "code=OK" not in line and "secret" not in line, line
    finally:
        running.stop()
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_the_start_log_says_http_is_off_and_how_to_pick_a_free_port(tmp_path: Path) -> None:
    """`--http-port 0` turns HTTP off, where `--port 0` picks a free port: a test suite
    that gave both 0 saw a gRPC ready line, no HTTP one, and nothing saying why."""
    [said] = [line for line in start_log(tmp_path, "--http-port", "0") if "HTTP" in line]
    assert "HTTP is off (--http-port 0)" in said and "--http-port -1 picks a free port" in said
    assert not [line for line in start_log(tmp_path, "--http-port", "-1")
                if "HTTP is off" in line]


def test_a_stderr_pipe_nobody_reads_holds_up_no_call(tmp_path: Path) -> None:
    """A test harness read the ready line from a pipe and stopped reading: once the
    pipe held 64 KiB of the log (a line per refused call, about 240 of them), every
    call waited on the log and the server answered nothing more. (From six client
    addresses: the refused calls of one are logged up to 100 every 10 s.)"""
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
         "--store", "memory://"], cwd=tmp_path, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True)
    assert server.stderr is not None
    said = []
    while "serving gRPC" not in (line := server.stderr.readline()):
        said.append(line)
        assert line, "".join(said)
    http_port = int(re.findall(r"serving HTTP on [\d.]+:(\d+)", "".join(said))[0])
    try:
        refused = 0
        for n in range(600):  # then no more is read until the server is stopped
            answer = call(http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                          {"eventType": "add-to-cart", "visitorId": "v" * 200},
                          source=f"127.0.0.{n // 100 + 1}")
            refused += answer.status == 400
        assert refused == 600
    finally:
        server.send_signal(signal.SIGTERM)
        rest = server.stderr.read()
        code = server.wait(timeout=60)
    assert code == 0, rest
    assert rest.count("code=INVALID_ARGUMENT") == 600  # queued, none lost


def test_a_refusal_quoting_the_callers_key_neither_logs_nor_keeps_it(
        settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    # A key sent in a field by mistake (an ip_address, a catalog's name: arguments
    # swapped) was masked in the refusal's request JSON only: its message and field
    # violations (`got 'KEY'`), its parent and its log line held the key, which the
    # project's reader keys read in the console.
    secret = "admin-secret-4kQ2vX9pLm"
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {secret: {"projects": ["*"], "role": "admin",
                                                  "name": "ops"}}}))
    logger = logging.getLogger("footfall.requests")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    running = start(dataclasses.replace(settings, http_port=-1, auth_file=str(keys)), clock)
    try:
        key = {"x-goog-api-key": secret}
        assert call(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                    {"eventType": "home-page-view", "visitorId": "v",
                     "userInfo": {"ipAddress": secret}}, headers=key).status == 400
        named = CATALOG.replace("default_catalog", f"{secret}%20")
        assert call(running.http_port, "POST", f"/v2/{named}/userEvents:write",
                    {"eventType": "home-page-view", "visitorId": "v"}, headers=key).status == 400
        kept = call(running.http_port, "GET", "/console/v1/projects/p/rejections",
                    headers=key)
        assert kept.status == 200 and len(kept.json()["rejections"]) == 2, kept.body
        assert secret not in kept.body.decode(), kept.body
        assert "(not kept: an API key)" in kept.json()["rejections"][0]["parent"]
        for quoted in ("ip_address: must be", "parent: the catalog"):
            line = handler.wait_for(lambda m, quoted=quoted: quoted in m)
            assert secret not in line and "(not kept: an API key)" in line, line
    finally:
        running.stop()
        logger.removeHandler(handler)
        logger.setLevel(level)
