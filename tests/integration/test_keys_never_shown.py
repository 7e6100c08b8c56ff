"""No API key, nor an authorization header, is ever written where others read: a
server at --log-level debug (in either --log-format) is sent pixels and writes with
keys in the query, in x-goog-api-key and in authorization, accepted and refused (the
refused ones quoting the key where the request holds it), and the key's text is
then looked for in its log, in its kept refusals (listed over gRPC and HTTP) and in
/metrics."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2, user_event_service_pb2_grpc

from .http_client import call, query_value

PROJECT = "p"
CATALOG = f"projects/{PROJECT}/locations/global/catalogs/default_catalog"
# Keys of the length a real one has, each told apart by its first letters.
WRITER = "wrtK3yQ9wqZk3vQ9wq-writer-secret-0001"
ADMIN = "admK3yP9dX2mL-admin-secret-000000002"
OTHER = "othK3yX7cV5bN-other-project-secret-3"  # a writer key of another project
UNKNOWN = "unkK3yL1mN8bV-no-such-key-000000004"  # a key the server does not know
KEYS = (WRITER, ADMIN, OTHER, UNKNOWN)
# A key of base64, as `openssl rand -base64` makes: its + / = are percent-encoded in a URL.
BASE64 = "b64K3y+Zm9v/YmFy+c2VjcmV0+MDAwNQ=="
COLLECT = f"/v2/{CATALOG}/userEvents:collect"
WRITE = f"/v2/{CATALOG}/userEvents:write"


class Served(NamedTuple):
    grpc_port: int
    http_port: int
    log: list[str]  # its lines so far


@pytest.fixture(params=["json", "text"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A `footfall serve --auth-file` at --log-level debug, its log in the format
    of the param."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {
        WRITER: {"projects": [PROJECT], "role": "writer", "name": "shop"},
        ADMIN: {"projects": ["*"], "role": "admin", "name": "ops"},
        OTHER: {"projects": ["elsewhere"], "role": "writer", "name": "elsewhere"},
        BASE64: {"projects": [PROJECT], "role": "writer", "name": "base64"}}}))
    keys.chmod(0o600)
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
         "--store", f"sqlite:///{tmp_path}/events.db", "--auth-file", str(keys),
         "--log-level", "debug", "--log-format", request.param],
        cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    reader = threading.Thread(target=lambda: [(lines.put(line), log.append(line))
                                              for line in process.stderr or ()])
    reader.start()
    try:
        grpc_port = http_port = 0
        while not (grpc_port and http_port):
            line = lines.get(timeout=60)
            found = re.search(r"serving (gRPC|HTTP) on 127\.0\.0\.1:(\d+)", line)
            if found is not None and found[1] == "gRPC":
                grpc_port = int(found[2])
            elif found is not None:
                http_port = int(found[2])
        yield Served(grpc_port, http_port, log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join()


def quoting(key: str, n: int) -> dict[str, object]:
    """An event refused for a field that quotes `key` (`got '...'`)."""
    return {"eventType": "home-page-view", "visitorId": f"v{n}",
            "userInfo": {"ipAddress": key}}


def good(n: int) -> dict[str, object]:
    return {"eventType": "home-page-view", "visitorId": f"v{n}"}


def send_over_http(port: int) -> None:
    n = 0
    for key in KEYS:
        for event in (good, lambda n, key=key: quoting(key, n)):  # type: ignore[misc]
            n += 1
            given = query_value(event(n))
            # a browser's pixel (the key in its URL), as `key` and as `$key`
            for name in ("key", "$key"):
                call(port, "GET", f"{COLLECT}?{name}={key}&userEvent={given}")
            # its JSON answer, the key in a header
            call(port, "GET", f"{COLLECT}?userEvent={given}&$alt=json",
                 headers={"x-goog-api-key": key})
            # a pixel of a mistyped catalog, and one naming no catalog
            call(port, "GET", f"/v2/projects/{PROJECT}/catalogs/x/userEvents:collect"
                              f"?key={key}&userEvent={given}")
            call(port, "GET", f"/v2/{key}/userEvents:collect?key={key}&userEvent={given}")
            # REST writes: header, bearer, query; a body that is not JSON naming it
            call(port, "POST", WRITE, event(n), headers={"x-goog-api-key": key})
            call(port, "POST", WRITE, event(n), headers={"Authorization": f"Bearer {key}"})
            call(port, "POST", f"{WRITE}?key={key}", event(n))
            call(port, "POST", WRITE, f'{{"visitorId": "{key}", "key": "{key}"'.encode(),
                 headers={"x-goog-api-key": key})
            call(port, "POST", WRITE, event(n), headers={"Authorization": f"Basic {key}"})
            call(port, "POST", f"/v2/{key}/userEvents:write", event(n),
                 headers={"x-goog-api-key": key})
        # two keys at once
        call(port, "GET", f"{COLLECT}?key={key}&$key={WRITER}&userEvent={query_value(good(0))}")


def send_over_grpc(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        for n, key in enumerate(KEYS):
            for event in (good(n), quoting(key, n)):
                request = user_event_service_pb2.WriteUserEventRequest(parent=CATALOG)
                request.user_event.CopyFrom(user_event_pb2.UserEvent(
                    event_type=str(event["eventType"]), visitor_id=str(event["visitorId"]),
                    user_info={"ip_address": key} if "userInfo" in event else None))
                for metadata in ((("x-goog-api-key", key),), (("authorization", f"Bearer {key}"),),
                                 (("authorization", key),)):
                    try:
                        stub.WriteUserEvent(request, metadata=metadata, timeout=30)
                    except grpc.RpcError:
                        pass


def test_no_key_is_logged_kept_or_counted(server: Served) -> None:
    send_over_http(server.http_port)
    send_over_grpc(server.grpc_port)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        console = console_pb2_grpc.ConsoleServiceStub(channel)
        listed = console.ListRejections(console_pb2.ListRejectionsRequest(
            parent="projects/-", page_size=1000), metadata=(("x-goog-api-key", ADMIN),))
    kept_grpc = str(listed)
    kept_http = call(server.http_port, "GET", "/console/v1/projects/-/rejections?pageSize=1000",
                     headers={"x-goog-api-key": ADMIN}).body.decode()
    metrics = call(server.http_port, "GET", "/metrics").body.decode()
    # (the refusals were kept: the keys were looked for where they would stand)
    assert len(listed.rejections) > 20, kept_grpc[:2000]
    assert "(not kept: an API key)" in kept_http
    log = "".join(server.log)
    assert "pixel from" in log and "refused" in log  # (the DEBUG lines were written)
    shown = [f"{key[:3]} in the {where}: {line[:400]}" for key in KEYS
             for where, text in (("log", log), ("kept (gRPC)", kept_grpc),
                                 ("kept (HTTP)", kept_http), ("/metrics", metrics))
             # (a part of it too: a key cut short by a line's bound is still a key)
             for line in text.splitlines() if key[:12] in line]
    assert not shown, "\n".join(shown)


def test_a_key_percent_encoded_in_a_path_is_not_logged(server: Served) -> None:
    """A path with no route quoting the key as the client encoded it (a base64 key's
    + / = as %2B %2F %3D, in either case of hex), where the query or a header gives it
    decoded: the path was logged whole in the call's line and the pixel's."""
    encoded = quote(BASE64, safe="")
    given = query_value(good(1))
    lower_hex = re.sub(r"%[0-9A-F]{2}", lambda found: found[0].lower(), encoded)
    for path in (encoded, lower_hex, BASE64.replace("+", "%2B")):
        call(server.http_port, "GET", f"/v2/{path}/userEvents:collect?key={encoded}"
                                      f"&userEvent={given}")
        # (a path naming a project, whose refusal is kept, its parent the path as sent)
        call(server.http_port, "GET", f"/v2/projects/{PROJECT}/{path}/userEvents:collect"
                                      f"?key={encoded}&userEvent={given}")
        answer = call(server.http_port, "POST", f"/v2/projects/{PROJECT}/x/{path}",
                      good(1), headers={"x-goog-api-key": BASE64})
        assert b"no route for POST" in answer.body and b"b64K3y" not in answer.body, answer.body
    deadline = time.monotonic() + 30  # (the log is read on a thread of its own)
    while "".join(server.log).count("refused: NOT_FOUND: no route for GET") < 3:
        assert time.monotonic() < deadline, "".join(server.log)[-2000:]
        time.sleep(0.05)
    log = "".join(server.log)
    assert "no route for GET /v2/" in log, log[-2000:]
    assert "b64K3y" not in log, [line for line in server.log if "b64K3y" in line]
    kept = call(server.http_port, "GET", "/console/v1/projects/-/rejections?pageSize=1000",
                headers={"x-goog-api-key": ADMIN}).body.decode()
    assert f"projects/{PROJECT}/(not kept: an API key)" in kept, kept[:2000]
    assert "b64K3y" not in kept, kept[:2000]
