"""A gRPC client that asks for large answers and never reads them (its HTTP/2
window left at 0): what the server holds for it is bounded by its key's share of
the budget of large answers, the calls past it are refused RESOURCE_EXHAUSTED,
other keys are served meanwhile, and the share comes back once its calls end.
Before, grpc kept every answer until its client took it: four connections of 200
such calls took the server from 0.2 to 0.8 GB in 24 s, and on. Raw HTTP/2 (no
grpc client leaves its window shut); imports nothing of ours."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .console import Console
from .http2 import (
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PREFACE,
    SETTINGS,
    Frames,
    call_headers,
    frame,
    header,
)
from .support import RPC_DEADLINE, retail_client, running_server, sqlite_url, wait_until
from .trust import with_key, write_keys

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
LIST = "/footfall.console.v1.ConsoleService/ListUserEvents"
HOLDER = "unread-grpc-reader-key-0123456789ab"
OTHER = "unread-grpc-other-reader-0123456789"
WRITER = "unread-grpc-writer-key-0123456789ab"
PAGE = 100  # events of about 2 KB: a page of about 200 KB, a "large" answer
CALLS = 120  # 24 MB of answers, where the key's share is 4 MiB (a quarter of 16 MiB)
INITIAL_WINDOW_SIZE = 4  # a SETTINGS parameter


def _varint(value: int) -> bytes:
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def _list_request() -> bytes:
    """ListUserEventsRequest{parent: CATALOG, page_size: PAGE} as a gRPC message."""
    parent = CATALOG.encode()
    body = b"\x0a" + _varint(len(parent)) + parent + b"\x10" + _varint(PAGE)
    return b"\x00" + len(body).to_bytes(4, "big") + body


def _ended(frames: Frames, expected: int) -> set[int]:
    """The streams the server ends with a HEADERS frame (trailers only: its answer
    held back by the window would come as DATA first), read until `expected` of
    them have or RPC_DEADLINE has passed."""
    found: set[int] = set()
    deadline = time.monotonic() + RPC_DEADLINE * 3
    while len(found) < expected and time.monotonic() < deadline and not frames.closed:
        found |= {stream for kind, flags, stream, _ in frames.read(0.2)
                  if kind == HEADERS and flags & END_STREAM}
    return found


def _write_events(http_address: str, key: str | None) -> None:
    """PAGE events of about 2 KB."""
    with requests.Session() as http:
        for n in range(PAGE):
            answer = http.post(
                f"http://{http_address}/v2/{CATALOG}/userEvents:write",
                json={"eventType": "home-page-view", "visitorId": f"v{n}",
                      "uri": "https://shop.example/" + "p" * 2000},
                headers={"x-goog-api-key": key} if key else {}, timeout=RPC_DEADLINE)
            assert answer.status_code == 200, answer.text


def _never_read(port: int, calls: int, key: str | None) -> tuple[socket.socket, Frames]:
    """A connection that asks for `calls` pages and reads none (its window 0: the
    server may send headers, and no byte of an answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=RPC_DEADLINE)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, INITIAL_WINDOW_SIZE.to_bytes(2, "big")
                                 + (0).to_bytes(4, "big")))
    headers = call_headers(port, LIST) + (header("x-goog-api-key", key) if key else b"")
    sock.sendall(b"".join(frame(HEADERS, END_HEADERS, stream, headers)
                          + frame(DATA, END_STREAM, stream, _list_request())
                          for stream in range(1, 2 * calls, 2)))
    return sock, Frames(sock)


@pytest.mark.timeout(120)
def test_large_grpc_answers_never_read_hold_the_keys_share_and_no_more(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", {HOLDER: ("reader", ["p"]),
                                               OTHER: ("reader", ["p"]),
                                               WRITER: ("writer", ["p"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"), "--auth-file",
                        str(keys), "--max-request-bytes", str(1 << 20)) as server:
        _write_events(server.http_address, WRITER)
        sock, frames = _never_read(server.port, CALLS, HOLDER)
        try:
            # About 19 answers of 200 KB fill the share: the rest are refused.
            refused = _ended(frames, CALLS - 30)
            assert len(refused) >= CALLS - 30, f"{len(refused)} of {CALLS} calls refused"
            with grpc.insecure_channel(server.address) as channel:
                holder = Console(channel, with_key(HOLDER))
                other = Console(channel, with_key(OTHER))
                with pytest.raises(grpc.RpcError) as caught:
                    holder.call("ListUserEvents", parent=CATALOG, pageSize=PAGE)
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "large answers not yet taken" in (caught.value.details() or "")
                page = other.call("ListUserEvents", parent=CATALOG, pageSize=PAGE)
                assert len(page["userEvents"]) == PAGE
                sock.close()  # its calls end: the share is given back

                def answered() -> bool:
                    try:
                        return len(holder.call("ListUserEvents", parent=CATALOG,
                                               pageSize=PAGE)["userEvents"]) == PAGE
                    except grpc.RpcError as error:
                        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                        return False

                wait_until(answered, "the key's answers given back once its calls ended")
        finally:
            sock.close()


@pytest.mark.timeout(120)
def test_a_write_is_answered_while_large_answers_never_read_hold_the_room(
        tmp_path: Path) -> None:
    """Its answer comes once the event is stored: refused, the client would send the
    write again, and the event would be stored twice."""
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--max-request-bytes", str(1 << 20)) as server:
        _write_events(server.http_address, None)
        sock, frames = _never_read(server.port, CALLS, None)  # (no keys: one room for all)
        try:
            assert len(_ended(frames, CALLS - 100)) >= CALLS - 100  # the room is held
            written = retail_client(server.address).write_user_event(
                request=retail_v2.WriteUserEventRequest(
                    parent=CATALOG, user_event=retail_v2.UserEvent(
                        event_type="home-page-view", visitor_id="large",
                        attributes={f"a{n}": retail_v2.CustomAttribute(text=["x" * 250] * 10)
                                    for n in range(40)})),
                timeout=RPC_DEADLINE)  # (its answer, the event as sent: 100 KB)
            assert written.visitor_id == "large"
            with grpc.insecure_channel(server.address) as channel:
                with pytest.raises(grpc.RpcError) as caught:  # while a read is refused
                    Console(channel).call("ListUserEvents", parent=CATALOG, pageSize=PAGE)
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            sock.close()


WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
MOST_CALLS = 600  # --max-concurrent-rpcs; a caller's share is a third: 200


def _small_writes(port: int, calls: int, key: str) -> tuple[socket.socket, Frames]:
    """A connection that makes `calls` writes (answers of 100 bytes) and reads none of
    the answers (its window 0)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=RPC_DEADLINE)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, INITIAL_WINDOW_SIZE.to_bytes(2, "big")
                                 + (0).to_bytes(4, "big")))
    headers = call_headers(port, WRITE) + header("x-goog-api-key", key)
    sock.sendall(b"".join(
        frame(HEADERS, END_HEADERS, stream, headers) + frame(DATA, END_STREAM, stream, (
            lambda body: b"\x00" + len(body).to_bytes(4, "big") + body)(
                retail_v2.WriteUserEventRequest.serialize(retail_v2.WriteUserEventRequest(
                    parent=CATALOG, user_event=retail_v2.UserEvent(
                        event_type="home-page-view", visitor_id=f"unread-{stream}")))))
        for stream in range(1, 2 * calls, 2)))
    return sock, Frames(sock)


@pytest.mark.timeout(120)
def test_small_answers_never_read_hold_a_third_of_the_calls_and_no_more(
        tmp_path: Path) -> None:
    """grpc ends a unary call only once its client has taken the answer, and counts
    it against --max-concurrent-rpcs until then, however small the answer: with a
    shop's writer key (anyone's: it is in its pages), 11 connections of 1,000
    WriteUserEvent calls whose answers were never read held all 10,000, and every other
    call of every key, health checks too, was refused RESOURCE_EXHAUSTED for as long as
    they stayed open. Now one key (or, without one, one client address) holds at most
    a third of them: its calls past that are refused before their requests are read."""
    keys = write_keys(tmp_path / "keys.json", {WRITER: ("writer", ["p"]),
                                               OTHER: ("reader", ["p"])})
    share = MOST_CALLS // 3
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"), "--auth-file",
                        str(keys), "--max-concurrent-rpcs", str(MOST_CALLS),
                        "--max-streams", "100", "--max-watches", "100") as server:
        sock, frames = _small_writes(server.port, MOST_CALLS, WRITER)
        try:
            refused = _ended(frames, MOST_CALLS - share)
            refused |= {stream for kind, flags, stream, _ in frames.read(1.0)
                        if kind == HEADERS and flags & END_STREAM}  # (none: the rest held)
            assert len(refused) == MOST_CALLS - share
            with grpc.insecure_channel(server.address) as channel:
                page = Console(channel, with_key(OTHER)).call(
                    "ListUserEvents", parent=CATALOG, pageSize=1000)
            assert len(page["userEvents"]) == share  # (the writes held were stored)
            writer = retail_client(server.address)
            write = retail_v2.WriteUserEventRequest(parent=CATALOG, user_event=retail_v2.UserEvent(
                event_type="home-page-view", visitor_id="after"))
            with pytest.raises(exceptions.ResourceExhausted, match="calls in progress"):
                writer.write_user_event(request=write, metadata=with_key(WRITER),
                                        timeout=RPC_DEADLINE)
            sock.close()  # its calls end: the share is given back

            def written() -> bool:
                try:
                    writer.write_user_event(request=write, metadata=with_key(WRITER),
                                            timeout=RPC_DEADLINE)
                except exceptions.ResourceExhausted:
                    return False
                return True

            wait_until(written, "the key's calls given back once its connection closed")
        finally:
            sock.close()


HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def _health_checks_unread(port: int, calls: int, source: str) -> tuple[socket.socket, Frames]:
    """A connection from `source` (a loopback address) that makes `calls` health checks
    without a key and reads none of the answers (its window 0)."""
    sock = socket.socket()
    sock.settimeout(RPC_DEADLINE)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, INITIAL_WINDOW_SIZE.to_bytes(2, "big")
                                 + (0).to_bytes(4, "big")))
    headers = call_headers(port, HEALTH_CHECK)
    empty = b"\x00" + (0).to_bytes(4, "big")
    sock.sendall(b"".join(frame(HEADERS, END_HEADERS, stream, headers)
                          + frame(DATA, END_STREAM, stream, empty)
                          for stream in range(1, 2 * calls, 2)))
    return sock, Frames(sock)


@pytest.mark.timeout(120)
def test_health_checks_without_a_key_never_read_leave_the_keys_their_calls(
        tmp_path: Path) -> None:
    """With auth on, callers without a key are counted by client address, each a third
    of --max-concurrent-rpcs: three addresses (an IPv6 client has as many /64s as it
    likes; here 127.0.0.1-3) making health checks without a key and reading no answer
    held every call, and a call of any key, an admin's too, was refused
    RESOURCE_EXHAUSTED by grpc ("Concurrent RPC limit exceeded!") for as long. Callers
    without a key hold a share together, as their streams do (--max-keyless-streams),
    leaving the keys theirs."""
    keys = write_keys(tmp_path / "keys.json", {OTHER: ("reader", ["p"])})
    share = MOST_CALLS // 3
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"), "--auth-file",
                        str(keys), "--max-concurrent-rpcs", str(MOST_CALLS),
                        "--max-streams", "100", "--max-watches", "100") as server:
        held = [_health_checks_unread(server.port, share, f"127.0.0.{n}") for n in (1, 2, 3)]
        try:
            time.sleep(2.0)  # (the calls taken, each held as its answer waits)
            with grpc.insecure_channel(server.address) as channel:
                page = Console(channel, with_key(OTHER)).call(
                    "ListUserEvents", parent=CATALOG, pageSize=1)
            assert page.get("userEvents", []) == []
        finally:
            for sock, _ in held:
                sock.close()


@pytest.mark.timeout(120)
def test_one_address_holds_part_of_the_calls_without_a_key(tmp_path: Path) -> None:
    """Callers without a key hold a share together; within it one client address
    holds at most what the keyless pacing lets it have at once, and never half: one
    address keeping a share's health checks unread held all of it, and every other
    prober's health check without a key (a load balancer's, a kubelet's) was refused
    RESOURCE_EXHAUSTED for as long. (The share is 200 here: an address holds 100.)"""
    keys = write_keys(tmp_path / "keys.json", {OTHER: ("reader", ["p"])})
    share = MOST_CALLS // 3
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"), "--auth-file",
                        str(keys), "--max-concurrent-rpcs", str(MOST_CALLS),
                        "--max-streams", "100", "--max-watches", "100") as server:
        # (within the address's burst of 200: each answered at once, and held unread)
        sock, frames = _health_checks_unread(server.port, share, "127.0.0.5")
        try:
            refused = _ended(frames, share // 2)  # (all taken: the rest held)
            with grpc.insecure_channel(server.address) as channel:  # (from 127.0.0.1)
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=RPC_DEADLINE)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            refused |= {stream for kind, flags, stream, _ in frames.read(1.0)
                        if kind == HEADERS and flags & END_STREAM}  # (none: the rest held)
            assert len(refused) == share // 2
        finally:
            sock.close()
    said = [line for line in server.log if "call refused RESOURCE_EXHAUSTED" in line]
    assert said and all(
        "client address 127.0.0.5 has 100 calls without a key in progress, the most one "
        "client address may have (100 of the 200 the callers without a key may have "
        "together; it grows with --max-keyless-streams-per-address, up to half of them)"
        in line
        for line in said), said[:3]


@pytest.mark.timeout(120)
def test_calls_without_a_key_past_an_addresss_part_are_refused_within_its_budget(
        tmp_path: Path) -> None:
    """A call without a key refused past its client address's part of their share is
    answered as that address's other refusals for want of a key are: within its budget
    at once (a burst of 200, the calls it made taking theirs), past it after a delay.
    Refused at once, one address keeping its part (340) of health checks unread and
    asking on with 100 in flight had 2,200 refused a second, and another key's writes
    fell from 1,600 a second to 510."""
    keys = write_keys(tmp_path / "keys.json", {OTHER: ("reader", ["p"])})
    share = MOST_CALLS // 3
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"), "--auth-file",
                        str(keys), "--max-concurrent-rpcs", str(MOST_CALLS),
                        "--max-streams", "100", "--max-watches", "100") as server:
        sock, frames = _health_checks_unread(server.port, share // 2, "127.0.0.5")
        more = 200  # (refused: 100 within the budget left, the rest after a second)
        try:
            time.sleep(1.0)  # (the calls taken, each held as its answer waits)
            assert not {stream for kind, flags, stream, _ in frames.read(0.1)
                        if kind == HEADERS and flags & END_STREAM}  # (all held)
            asking, answers = _health_checks_unread(server.port, more, "127.0.0.5")
            try:
                began, at_once = time.monotonic(), set()
                while time.monotonic() - began < 0.5 and len(at_once) < more:
                    at_once |= {stream for kind, flags, stream, _ in answers.read(0.1)
                                if kind == HEADERS and flags & END_STREAM}
                assert len(at_once) < more * 3 // 4, len(at_once)  # (at once: all)
                refused = at_once | _ended(answers, more - len(at_once))
                assert len(refused) == more
            finally:
                asking.close()
        finally:
            sock.close()
