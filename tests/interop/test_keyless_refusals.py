"""With auth on, the refusals of callers without a key are paced per client address:
a client that goes on calling without one had the server refuse 4,800 HTTP calls a
second on 4 connections, and 3,500 gRPC calls a second on one. Past a burst of 200
and then 20 a second, each waits a second (over HTTP its connection then closes);
callers with a key, and other addresses, are answered at once. Real clients over
real sockets."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import grpc

from .support import RPC_DEADLINE, ServerProcess, running_server, sqlite_url
from .trust import with_key, write_keys

KEY = "admin-key-5d1f0c9a7e3b2468"
PARENT = "projects/shop/locations/global/catalogs/default_catalog"
METHOD = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
BURST, DELAY = 200, 1.0  # the server's KEYLESS_REFUSALS_BURST and KEYLESS_REFUSAL_DELAY


def write(server: ServerProcess, key: str | None = None, source: str = "127.0.0.1",
          connection: http.client.HTTPConnection | None = None
          ) -> tuple[http.client.HTTPResponse, float]:
    """An HTTP event write (on `connection`, else a new one from `source`): its
    answer, read, and the seconds it took."""
    connection = connection or http.client.HTTPConnection(
        "127.0.0.1", server.http_port, timeout=RPC_DEADLINE, source_address=(source, 0))
    headers = {"Content-Type": "application/json", **({"x-goog-api-key": key} if key else {})}
    began = time.monotonic()
    connection.request("POST", f"/v2/{PARENT}/userEvents:write", headers=headers,
                       body=json.dumps({"eventType": "home-page-view", "visitorId": "v1"}))
    answer = connection.getresponse()
    answer.read()
    return answer, time.monotonic() - began


def test_refusals_without_a_key_are_paced_per_address(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        # One keep-alive connection calling without a key: refused at once for the
        # burst, then each refusal waits, and closes the connection.
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        calls, took = 0, 0.0
        while took < DELAY * 0.9 and calls < 3 * BURST:
            answer, took = write(server, connection=connection)
            calls += 1
            assert answer.status == 401
        assert BURST <= calls < 2 * BURST, f"first refusal paced after {calls} calls"
        assert answer.getheader("Connection") == "close"
        connection.close()
        # The same address with a key, and another address without one: at once.
        answer, took = write(server, key=KEY)
        assert answer.status == 200 and took < DELAY / 2
        answer, took = write(server, source="127.0.0.2")
        assert answer.status == 401 and took < DELAY / 2
        # Over gRPC too (one budget for both transports): a caller without a key
        # waits, one with a key does not.
        with grpc.insecure_channel(server.address) as channel:
            call = channel.unary_unary(METHOD)
            began = time.monotonic()
            keyless = [call.future(b"", timeout=RPC_DEADLINE) for _ in range(50)]
            keyed = call.future(b"", timeout=RPC_DEADLINE, metadata=with_key(KEY))
            # (an empty request names no project: refused for that, not its key, at once)
            assert keyed.exception().code() is grpc.StatusCode.PERMISSION_DENIED
            assert time.monotonic() - began < DELAY / 2
            for future in keyless:
                assert future.exception().code() is grpc.StatusCode.UNAUTHENTICATED
            assert time.monotonic() - began >= DELAY * 0.9
