"""With auth on, a call of a known key refused for its role or its project spends a
budget of refusals of the key's own (server.policy.refusal_budget), as a refusal for
want of a key spends its client address's: past a burst of 200 and then 20 a second,
each waits a second (over HTTP its connection then closes). Answered at once, one
client looping on a reader key's writes had the server refuse 640 HTTP calls a second
on 4 connections and 630 gRPC calls a second with 50 in flight (0.35-0.41 of a core).
A writer key is public (every visitor of a shop's pages calls with it): its budget is
its client address's, one browser's flood never pacing another's refusals. Real
clients over real sockets."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from pathlib import Path

import grpc
import pytest

from .support import RPC_DEADLINE, ServerProcess, running_server, sqlite_url
from .test_keyless_refusals import BURST, DELAY, until_paced
from .trust import with_key, write_keys

WRITER_KEY = "keyed-refusals-writer-key-0123456789"
READER_KEY = "keyed-refusals-reader-key-0123456789"
ADMIN_KEY = "keyed-refusals-admin-key-0123456789"
SHOP = "projects/shop/locations/global/catalogs/default_catalog"
OTHER = "projects/other/locations/global/catalogs/default_catalog"
WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
WATCH = "/footfall.console.v1.ConsoleService/WatchUserEvents"
EVENT = {"eventType": "home-page-view", "visitorId": "v1"}


def connection_from(server: ServerProcess, source: str) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=RPC_DEADLINE,
                                      source_address=(source, 0))


def write(connection: http.client.HTTPConnection, key: str, parent: str = SHOP
          ) -> tuple[http.client.HTTPResponse, float]:
    """An event write over HTTP with `key` on `connection`: its answer, read, and the
    seconds it took."""
    began = time.monotonic()
    connection.request("POST", f"/v2/{parent}/userEvents:write", body=json.dumps(EVENT),
                       headers={"Content-Type": "application/json", "x-goog-api-key": key})
    answer = connection.getresponse()
    answer.read()
    return answer, time.monotonic() - began


def pixel(connection: http.client.HTTPConnection, key: str
          ) -> tuple[http.client.HTTPResponse, float]:
    """A browser's pixel GET with `key` in its URL: its answer, read, and the seconds."""
    began = time.monotonic()
    connection.request("GET", f"/v2/{SHOP}/userEvents:collect?key={key}&userEvent="
                       + urllib.parse.quote(json.dumps(EVENT)))
    answer = connection.getresponse()
    answer.read()
    return answer, time.monotonic() - began


def forbidden(answer: http.client.HTTPResponse) -> None:
    assert answer.status == 403, answer.status


def refused_gif(answer: http.client.HTTPResponse) -> None:
    assert answer.status == 200  # (the GIF, always)
    assert "may not" in answer.getheader("X-Footfall-Error", ""), answer.getheaders()


# Calls made, at most, until one waits once a budget was spent before (while the last
# one waited, 20 came back)
SPENT = BURST // 4


def test_refusals_of_a_keys_role_or_project_are_paced(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", {READER_KEY: ("reader", ["shop"]),
                                               WRITER_KEY: ("writer", ["shop"]),
                                               ADMIN_KEY: ("admin", ["*"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        # A reader key's writes (its role) on one keep-alive connection: refused at
        # once for the burst, then each waits, and closes the connection.
        connection = connection_from(server, "127.0.0.1")
        calls, answer = until_paced(lambda: write(connection, READER_KEY), 3 * BURST,
                                    forbidden)
        assert BURST <= calls < 2 * BURST, f"first refusal paced after {calls} calls"
        assert answer.getheader("Connection") == "close"
        connection.close()
        # The key's budget is the key's, from any address (a reader key is its
        # holder's): from another address too, its refusals wait.
        connection = connection_from(server, "127.0.0.2")
        calls, answer = until_paced(lambda: write(connection, READER_KEY), SPENT, forbidden)
        assert calls < SPENT and answer.getheader("Connection") == "close"
        # Its pixels too (a reader key may not collect): the GIF after a second.
        connection = connection_from(server, "127.0.0.3")
        calls, answer = until_paced(lambda: pixel(connection, READER_KEY), SPENT, refused_gif)
        assert calls < SPENT and answer.getheader("Connection") == "close"
        # Another key's calls from the same address, and an admin's refusal: at once.
        answer, took = write(connection_from(server, "127.0.0.1"), WRITER_KEY)
        assert answer.status == 200 and took < DELAY / 2
        answer, took = write(connection_from(server, "127.0.0.1"), ADMIN_KEY, "projects/")
        assert answer.status != 200 and took < DELAY / 2
        # Over gRPC (one budget for both transports): the reader key's write waits.
        with grpc.insecure_channel(server.address) as channel:
            call = channel.unary_unary(WRITE)
            took = []
            while len(took) < SPENT and (not took or took[-1] < DELAY * 0.9):
                began = time.monotonic()
                refused = call.future(b"", timeout=RPC_DEADLINE, metadata=with_key(READER_KEY))
                assert refused.exception().code() is grpc.StatusCode.PERMISSION_DENIED
                took.append(time.monotonic() - began)
            assert took[-1] >= DELAY * 0.9, "no refusal waited"
            # A writer key's watches (its role may not read) on one channel: the same.
            watch = channel.unary_stream(WATCH)
            took.clear()
            while len(took) < 3 * BURST and (not took or took[-1] < DELAY * 0.9):
                began = time.monotonic()
                with pytest.raises(grpc.RpcError) as refusal:
                    next(watch(b"", timeout=RPC_DEADLINE, metadata=with_key(WRITER_KEY)))
                assert refusal.value.code() is grpc.StatusCode.PERMISSION_DENIED
                took.append(time.monotonic() - began)
            assert BURST < len(took) <= 2 * BURST, f"first refusal paced after {len(took)}"


def test_a_writer_keys_refusals_are_paced_per_client_address(tmp_path: Path) -> None:
    """A writer key is public: one client of it refused on and on (calls naming no
    project, or one the key is not granted) is paced, on both transports together,
    and the shop's other visitors' refusals (a page of another catalog) are answered
    at once, from their own addresses."""
    keys = write_keys(tmp_path / "keys.json", {WRITER_KEY: ("writer", ["shop"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        with grpc.insecure_channel(server.address) as channel:  # (from 127.0.0.1)
            call = channel.unary_unary(WRITE)
            began = time.monotonic()
            # (an empty request names no project: PERMISSION_DENIED; past the burst,
            # fewer than WAITING_PER_ADDRESS: each waits)
            flood = [call.future(b"", timeout=RPC_DEADLINE, metadata=with_key(WRITER_KEY))
                     for _ in range(BURST + 50)]
            for future in flood:
                assert future.exception().code() is grpc.StatusCode.PERMISSION_DENIED
            assert time.monotonic() - began >= DELAY * 0.9
        # The abuser's address over HTTP: the same budget, spent; it waits.
        connection = connection_from(server, "127.0.0.1")
        calls, _ = until_paced(lambda: write(connection, WRITER_KEY, OTHER), SPENT, forbidden)
        assert calls < SPENT
        # Other visitors of the shop, with the same key: at once, more refusals each
        # than the key's budget took back meanwhile (20 while the last one waited).
        for visitor in ("127.0.0.2", "127.0.0.3"):
            connection = connection_from(server, visitor)
            for _ in range(SPENT):
                answer, took = write(connection, WRITER_KEY, OTHER)
                assert answer.status == 403 and took < DELAY / 2, (visitor, took)
            answer, took = pixel(connection, WRITER_KEY)
            assert answer.status == 200 and took < DELAY / 2, (visitor, took)
            assert answer.getheader("X-Footfall-Error") is None
