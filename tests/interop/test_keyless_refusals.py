"""With auth on, the refusals of callers without a key are paced per client address:
a client that goes on calling without one had the server refuse 4,800 HTTP calls a
second on 4 connections, and 3,500 gRPC calls a second on one. Past a burst of 200
and then 20 a second, each waits a second (over HTTP its connection then closes);
callers with a key, and other addresses, are answered at once. Real clients over
real sockets."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from .support import RPC_DEADLINE, ServerProcess, running_server, sqlite_url
from .trust import with_key, write_keys

KEY = "admin-key-5d1f0c9a7e3b2468"
PARENT = "projects/shop/locations/global/catalogs/default_catalog"
METHOD = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
BURST, DELAY = 200, 1.0  # the server's KEYLESS_REFUSALS_BURST and KEYLESS_REFUSAL_DELAY
KEYLESS_LINES = 100  # the server's: lines of calls without a key logged, a window


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


def until_paced(call: Callable[[], tuple[http.client.HTTPResponse, float]], most: int,
                check: Callable[[http.client.HTTPResponse], None]
                ) -> tuple[int, http.client.HTTPResponse]:
    """`call` made until an answer of it waited (the first refusal paced), at most
    `most` times, `check`ing each answer: how many were made, and the last answer."""
    calls, took = 0, 0.0
    while took < DELAY * 0.9 and calls < most:
        answer, took = call()
        calls += 1
        check(answer)
    return calls, answer


def timed_get(connection: http.client.HTTPConnection, path: str,
              **headers: str) -> tuple[http.client.HTTPResponse, float]:
    """GET `path` on `connection`, read whole: the answer and how long it took."""
    began = time.monotonic()
    connection.request("GET", path, headers=headers)
    answer = connection.getresponse()
    answer.read()
    return answer, time.monotonic() - began


def first_paced(server: ServerProcess, path: str, status: int, most: int,
                **headers: str) -> tuple[int, http.client.HTTPResponse]:
    """GETs of `path` on one new connection until an answer waited (until_paced), each
    answered `status`: how many were made, and the last answer (its connection closed)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                            timeout=RPC_DEADLINE)

    def answered(answer: http.client.HTTPResponse) -> None:
        assert answer.status == status

    try:
        return until_paced(lambda: timed_get(connection, path, **headers), most, answered)
    finally:
        connection.close()


def at_once_with_a_key(server: ServerProcess, path: str, status: int) -> None:
    """BURST // 4 GETs of `path` with a key, on one connection, each answered `status`
    at once."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                            timeout=RPC_DEADLINE)
    try:
        for _ in range(BURST // 4):
            answer, took = timed_get(connection, path, **{"x-goog-api-key": KEY})
            assert answer.status == status and took < DELAY / 2
    finally:
        connection.close()

def test_refusals_without_a_key_are_paced_per_address(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        # One keep-alive connection calling without a key: refused at once for the
        # burst, then each refusal waits, and closes the connection.
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        def unauthenticated(answer: http.client.HTTPResponse) -> None:
            assert answer.status == 401
        calls, answer = until_paced(lambda: write(server, connection=connection), 3 * BURST,
                                    unauthenticated)
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


WRITER_KEY = "writer-key-8c2e4a6f0b1d3579"
PIXEL = (f"/v2/{PARENT}/userEvents:collect?userEvent="
         + urllib.parse.quote('{"eventType":"home-page-view","visitorId":"v1"}'))


def pixel(connection: http.client.HTTPConnection, path: str = PIXEL
          ) -> tuple[http.client.HTTPResponse, float]:
    """A browser's pixel GET on `connection`: its answer, read, and the seconds it took."""
    began = time.monotonic()
    connection.request("GET", path)
    answer = connection.getresponse()
    answer.read()
    return answer, time.monotonic() - began


def test_pixels_without_a_key_are_paced_per_address(tmp_path: Path) -> None:
    """A pixel GET is served inline (no coroutine of its own), and its refusal for
    want of a key was answered at once however many came: one client's loop of
    them on 4 connections had the server refuse 3,300 a second (78% of a core; a
    keyed writer beside it fell from 330 writes a second to 86). Now paced as any
    refusal without a key is, a pixel of a path no route serves too; a browser's
    pixel with its key is not."""
    keys = write_keys(tmp_path / "keys.json", {WRITER_KEY: ("writer", ["shop"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        def refused_gif(answer: http.client.HTTPResponse) -> None:
            assert answer.status == 200  # (the GIF, always)
            assert "requires an API key" in answer.getheader("X-Footfall-Error", "")
        calls, answer = until_paced(lambda: pixel(connection), 3 * BURST, refused_gif)
        assert BURST <= calls < 2 * BURST, f"first refusal paced after {calls} calls"
        assert answer.getheader("Connection") == "close"
        connection.close()
        # Pixels no route serves, without a key, from the same address: paced too,
        # once the budget that came back while the last one waited is spent.
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        def gif(answer: http.client.HTTPResponse) -> None:
            assert answer.status == 200
        calls, answer = until_paced(
            lambda: pixel(connection, "/v2/projects/shop/userEvents:collect"), BURST, gif)
        assert calls < BURST / 2, f"first refusal paced after {calls} calls"
        assert answer.getheader("Connection") == "close"
        connection.close()
        # A browser's pixel with its key, from the same address: at once, accepted.
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        answer, took = pixel(connection, f"{PIXEL}&key={WRITER_KEY}")
        assert answer.status == 200 and took < DELAY / 2
        assert answer.getheader("X-Footfall-Error") is None
        connection.close()


def test_pixels_refused_without_a_key_fill_no_log(tmp_path: Path) -> None:
    """Each pixel refused for want of a key wrote a line of its own ("pixel from ...
    refused") besides its call's, which the budget of lines without a key bounds:
    one client's loop of them wrote 3,300 lines a second, 780 KB. Now its call's
    line alone says it, within that budget."""
    keys = write_keys(tmp_path / "keys.json", {WRITER_KEY: ("writer", ["shop"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        for _ in range(BURST):  # (within the address's budget: answered at once)
            pixel(connection)
        pixel(connection, "/v2/projects/shop/userEvents:collect")
        connection.close()
        # (a pixel with its key and a bad event: said, after the others, in its own line)
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        answer, _ = pixel(connection, f"/v2/{PARENT}/userEvents:collect?userEvent=%7B"
                                      f"&key={WRITER_KEY}")
        assert "not valid JSON" in answer.getheader("X-Footfall-Error", "")
        connection.close()
        deadline = time.monotonic() + RPC_DEADLINE
        while not any("not valid JSON" in line for line in server.log):
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        lines = [line for line in server.log if "requires an API key" in line]
        assert len(lines) <= KEYLESS_LINES, f"{len(lines)} lines for {BURST + 1} pixels"


def test_calls_of_methods_not_served_without_a_key_are_paced_per_address(
        tmp_path: Path) -> None:
    """Answered UNIMPLEMENTED by grpc at once, with no key looked at: a client
    keeping 200 such calls in flight had 3,180 a second answered, 84% of a core,
    where calls of methods served were paced to 240 a second (12%). Now past the
    address's burst each waits as they do; a caller with a key is answered at once."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server, \
            grpc.insecure_channel(server.address) as channel:
        for method in ("/no.Such/Method", "/google.cloud.retail.v2.UserEventService/Nope"):
            call = channel.unary_unary(method)
            began = time.monotonic()
            # (past the burst, fewer than WAITING_PER_ADDRESS: each waits, none refused)
            keyless = [call.future(b"", timeout=RPC_DEADLINE) for _ in range(BURST + 50)]
            for future in keyless:
                assert future.exception().code() is grpc.StatusCode.UNIMPLEMENTED
            assert time.monotonic() - began >= DELAY * 0.9
            began = time.monotonic()
            with pytest.raises(grpc.RpcError) as keyed:
                call(b"", timeout=RPC_DEADLINE, metadata=with_key(KEY))
            assert keyed.value.code() is grpc.StatusCode.UNIMPLEMENTED
            assert time.monotonic() - began < DELAY / 2


def test_health_checks_without_a_key_are_paced_per_address(tmp_path: Path) -> None:
    """Health is open to anyone: a client keeping 200 checks in flight without a
    key had 2,000-2,300 a second answered, a core, and another client's durable
    writes went from 940 a second to 47 (p99 12 -> 317 ms). Past the address's
    burst each waits as a refusal does; a probe (a few a second) never does, nor
    does a caller with a key."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    check = health_pb2.HealthCheckRequest().SerializeToString()
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server, \
            grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary("/grpc.health.v1.Health/Check")
        began = time.monotonic()
        for _ in range(BURST // 4):  # a probe's pace and more, within the burst
            call(check, timeout=RPC_DEADLINE)
        assert time.monotonic() - began < DELAY
        began = time.monotonic()
        flood = [call.future(check, timeout=RPC_DEADLINE) for _ in range(2 * BURST)]
        for future in flood:
            future.result()
        assert time.monotonic() - began >= DELAY * 0.9
        began = time.monotonic()
        call(check, timeout=RPC_DEADLINE, metadata=with_key(KEY))
        assert time.monotonic() - began < DELAY / 2


def test_healthz_without_a_key_is_paced_per_address(tmp_path: Path) -> None:
    """/healthz is open to anyone: 4 keep-alive connections asking it in a loop
    without a key had 7,700 a second answered, a core, and another client's durable
    writes went from about 1,000 a second to 78 (p99 12 -> 311 ms). Past the
    address's burst each waits as a refusal does and closes its connection; a
    checker with a key is answered at once."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)

        def get(key: str | None) -> tuple[http.client.HTTPResponse, float]:
            began = time.monotonic()
            connection.request("GET", "/healthz",
                               headers={"x-goog-api-key": key} if key else {})
            answer = connection.getresponse()
            answer.read()
            return answer, time.monotonic() - began

        def serving(answer: http.client.HTTPResponse) -> None:
            assert answer.status == 200
        calls, answer = until_paced(lambda: get(None), 3 * BURST, serving)
        assert BURST <= calls < 2 * BURST, f"first check paced after {calls} calls"
        assert answer.getheader("Connection") == "close"
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        answer, took = get(KEY)
        assert answer.status == 200 and took < DELAY / 2


FILES_BURST = 500  # the server's KEYLESS_FILES_BURST
WAITING = 256  # the server's WAITING_PER_ADDRESS


def test_files_without_a_key_are_paced_per_address_on_a_budget_of_their_own(
        tmp_path: Path) -> None:
    """The console's files and /footfall.js need no key, and were answered at once
    however many came: 4 connections asking for /console/app.js in a loop had 5,800
    answered a second, and another client's durable writes went from 1,100 a second
    to 440 (/footfall.js: 4,400 and 590). Past a burst that many page loads do not
    spend, each waits and closes its connection; the address's refusals are not
    delayed by them; a path no route serves is paced as a refusal."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        calls, answer = first_paced(server, "/console/app.js", 200, 3 * FILES_BURST)
        assert FILES_BURST <= calls < 2 * FILES_BURST, f"first file paced after {calls}"
        assert answer.getheader("Connection") == "close"
        # (/footfall.js: the same budget, of which a second's worth came back meanwhile)
        calls, answer = first_paced(server, "/footfall.js", 200, FILES_BURST)
        assert calls < FILES_BURST / 2, f"first script paced after {calls}"
        # The address's refusals keep their budget, spent by a path no route serves.
        answer, took = write(server)
        assert answer.status == 401 and took < DELAY / 2
        calls, answer = first_paced(server, "/no/such/path", 404, 3 * BURST)
        assert BURST - 1 <= calls < 2 * BURST, f"first 404 paced after {calls}"
        # Another address, and the same one with a key: at once.
        other = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                           timeout=RPC_DEADLINE, source_address=("127.0.0.2", 0))
        began = time.monotonic()
        other.request("GET", "/console/app.js")
        assert other.getresponse().status == 200 and time.monotonic() - began < DELAY / 2
        other.close()
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        began = time.monotonic()
        connection.request("GET", "/console/app.js", headers={"x-goog-api-key": KEY})
        assert connection.getresponse().status == 200 and time.monotonic() - began < DELAY / 2
        connection.close()


def test_calls_past_the_waiting_bound_are_refused_not_served(tmp_path: Path) -> None:
    """An address's answers past its budget wait, at most WAITING_PER_ADDRESS at
    once; the calls past that were answered at once, as if the address had no
    budget: 600 gRPC calls in flight on 4 connections had 2,230 answered a second,
    and health checks were served so. Now they are refused RESOURCE_EXHAUSTED."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    check = health_pb2.HealthCheckRequest().SerializeToString()
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server, \
            grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary("/grpc.health.v1.Health/Check")
        for _ in range(BURST):  # (the burst, spent)
            call(check, timeout=RPC_DEADLINE)
        flood = [call.future(check, timeout=RPC_DEADLINE) for _ in range(WAITING + 40)]
        codes = [future.exception().code() if future.exception() else grpc.StatusCode.OK
                 for future in flood]
        exhausted = codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert codes.count(grpc.StatusCode.OK) + exhausted == len(flood), codes
        assert 20 <= exhausted <= 40 + 1, codes  # (a token may come back meanwhile)
        refused = next(f for f in flood if f.exception() is not None).exception()
        assert "waiting already" in refused.details()


def test_heads_of_the_pixel_without_a_key_are_paced_as_files(tmp_path: Path) -> None:
    """A HEAD of a collect route checks nothing (a link checker's or a prefetcher's:
    no visit) and was answered at once whoever asked: 4 connections sending them in
    a loop without a key had 7,400 answered a second, and another client's durable
    writes fell from 1,000 a second to 380. Now paced as a fetch of a file is; with
    the pixel's key in its URL, at once."""
    keys = write_keys(tmp_path / "keys.json", {WRITER_KEY: ("writer", ["shop"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)

        def head(path: str = PIXEL) -> tuple[http.client.HTTPResponse, float]:
            began = time.monotonic()
            connection.request("HEAD", path)
            answer = connection.getresponse()
            answer.read()
            return answer, time.monotonic() - began

        def served(answer: http.client.HTTPResponse) -> None:
            assert answer.status == 200
        calls, answer = until_paced(head, 3 * FILES_BURST, served)
        assert FILES_BURST <= calls < 2 * FILES_BURST, f"first HEAD paced after {calls}"
        assert answer.getheader("Connection") == "close"
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        # (more than the second's worth of budget that came back while it waited)
        for _ in range(150):
            answer, took = head(f"{PIXEL}&key={WRITER_KEY}")
            assert answer.status == 200 and took < DELAY / 2
        connection.close()


def test_refusals_before_the_key_is_looked_at_are_paced_too(tmp_path: Path) -> None:
    """What a call is refused for before its key is looked at (an `alt` not served, a
    page of another site embedding a read) was answered at once: 4 connections asking
    with alt=nonsense in a loop without a key had 3,350 refused a second, and another
    client's durable writes fell from 950 a second to 310 (a cross-site iframe's: 4,190
    and 530). Now, without a key, paced as a refusal for want of one; with one, not."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    read = f"/v2/{PARENT}/operations/x"
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        calls, answer = first_paced(server, f"{read}?alt=nonsense", 400, 3 * BURST)
        assert BURST <= calls < 2 * BURST, f"first refusal paced after {calls} calls"
        assert answer.getheader("Connection") == "close"
        calls, answer = first_paced(server, read, 403, BURST, **{
            "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "iframe"})
        assert calls < BURST / 2, f"first refusal paced after {calls} calls"
        at_once_with_a_key(server, f"{read}?alt=nonsense", 400)


REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def test_streams_past_an_address_s_share_without_a_key_are_refused_paced(
        tmp_path: Path) -> None:
    """An address without a key holds at most 16 streams of the open services; one
    more was refused RESOURCE_EXHAUSTED at once: 50 reflection streams opened in a
    loop beside 16 held had 1,990 refused a second, and another client's durable
    writes fell from 1,650 a second to 450. Past the burst, such refusals wait."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    ask = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()

    async def flood(address: str) -> tuple[list[grpc.StatusCode], float]:
        async with grpc.aio.insecure_channel(address) as channel:
            open_ = channel.stream_stream(REFLECTION)
            # (16 held, counted once open, before any request of theirs: they send none)
            held = [open_(_later(ask), timeout=RPC_DEADLINE) for _ in range(16)]
            await asyncio.sleep(0.3)

            async def more() -> grpc.StatusCode:
                try:
                    # (its request never sent: refused, a request sent after the
                    # answer came failed the client's call INTERNAL)
                    async for _ in open_(_later(ask), timeout=RPC_DEADLINE):
                        pass
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
                return grpc.StatusCode.OK
            began = time.monotonic()
            codes = await asyncio.gather(*(more() for _ in range(BURST + 50)))
            took = time.monotonic() - began
            for stream in held:
                stream.cancel()
            return list(codes), took

    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        codes, took = asyncio.run(flood(server.address))
    assert set(codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED}, sorted({c.name for c in codes})
    assert took >= DELAY * 0.9, f"{len(codes)} refused in {took:.2f} s"


async def _later(request: bytes) -> Any:
    await asyncio.sleep(RPC_DEADLINE)
    yield request


def test_urls_refused_before_routing_are_paced_without_a_key(tmp_path: Path) -> None:
    """A URL refused as it is read (a malformed percent-escape, too many segments) was
    answered at once, its connection kept: 4 connections asking for /%ZZ in a loop had
    6,300 refused a second, and another client's durable writes fell from 1,440 a
    second to 590 (a path of 300 segments, 414: 6,700 and 490). Now, without a key,
    paced as any refusal; with one, at once."""
    keys = write_keys(tmp_path / "keys.json", {KEY: ("admin", ["*"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        calls, answer = first_paced(server, "/%ZZ", 400, 3 * BURST)
        assert BURST <= calls < 2 * BURST, f"first refusal paced after {calls} calls"
        assert answer.getheader("Connection") == "close"
        calls, answer = first_paced(server, "/a" * 300, 414, BURST)
        assert calls < BURST / 2, f"first refusal paced after {calls} calls"
        at_once_with_a_key(server, "/%ZZ", 400)
