"""Run in a network namespace of its own (test_ipv6_sources), whose loopback has
addresses of two /64s: a server on SERVER, clients from the other addresses, each
socket bound to its own. Prints what each client met, as JSON."""

from __future__ import annotations

import functools
import json
import socket
import sys
import tempfile
from pathlib import Path

from server.app import start
from server.clock import FixedClock
from server.config import Settings
from tests.interop.http2 import (
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PREFACE,
    SETTINGS,
    Frames,
    call_headers,
    frame,
)

SERVER = "2001:db8:1:2::a"
SAME_64 = ("2001:db8:1:2::b", "2001:db8:1:2::c", "2001:db8:1:2::e")  # the server's /64 too
OTHER_64 = "2001:db8:1:3::d"
# Two /64s of the 6to4 site of 203.0.113.7 (one IPv4 client), and two Teredo clients
# (192.0.2.45 and 192.0.2.46) of one relay server, 65.54.227.120 (one /64)
SIX_TO_FOUR = ("2002:cb00:7107:1::b", "2002:cb00:7107:2::c")
TEREDO = ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e378:8000:63bf:3fff:fdd1")
# /64s of one /48 (a hosting provider's customer's), and one of another /48
SITE_64S = tuple(f"2001:db8:5:{n:x}::1" for n in range(64))
OTHER_SITE = "2001:db8:6::1"
BURST = 200  # the server's KEYLESS_REFUSALS_BURST, of one /64
# (what the namespace's loopback is given)
ADDRESSES = (SERVER, *SAME_64, OTHER_64, *SIX_TO_FOUR, *TEREDO, *SITE_64S, OTHER_SITE)
KEY = "ipv6-sources-reader-key-0123456789"
WRITER_KEY = "ipv6-sources-writer-key-0123456789"  # (a shop's public key)
# A writer key's read: refused for its role (PERMISSION_DENIED), spending the key's
# budget of refusals by client address (server.policy.refusal_budget)
A_WRITERS_READ = ("/console/v1/projects/p/locations/global/catalogs/default_catalog/"
                  f"userEvents HTTP/1.1\r\nx-goog-api-key: {WRITER_KEY}")
WATCH = "/grpc.health.v1.Health/Watch"


def connect(source: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect((SERVER, port))
    return sock


def http_answer(source: str, port: int) -> str:
    """The status line (and reason) a request of /healthz from `source` is answered."""
    sock = connect(source, port)
    with sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: [{SERVER}]:{port}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    head = answer.split(b"\r\n", 1)[0].decode()
    return head + (" (from this address)" if b"from this address" in answer else "")


def pipelined(source: str, port: int, count: int = BURST,
              target: str = "/healthz HTTP/1.1") -> int:
    """How many of `count` requests of `target` (/healthz without a key), sent at
    once from `source` on one connection, were answered before it closed (the first
    answered past the budgets of refusals, after its wait, closes it)."""
    sock = connect(source, port)
    with sock:
        sock.sendall(f"GET {target}\r\nHost: [{SERVER}]:{port}\r\n\r\n".encode() * count)
        answer = b""
        while answer.count(b"HTTP/1.1 ") < count:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    return answer.count(b"HTTP/1.1 ")


def watch(source: str, port: int) -> tuple[str, socket.socket]:
    """A health watch without a key from `source` (raw HTTP/2): whether it is
    "watching" (its first answer came, the stream open) or "refused" (ended at
    once); and its connection, left open."""
    sock = connect(source, port)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0)
                 + frame(HEADERS, END_HEADERS, 1, call_headers(port, WATCH))
                 + frame(DATA, END_STREAM, 1, b"\x00" + (0).to_bytes(4, "big")))
    frames = Frames(sock)
    for _ in range(20):
        for kind, flags, stream, _payload in frames.read(0.5):
            if stream == 1 and kind == HEADERS and flags & END_STREAM:
                return "refused", sock
            if stream == 1 and kind == DATA:
                return "watching", sock
    return "no answer", sock


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    keys = folder / "keys.json"
    keys.write_text(json.dumps({"keys": {KEY: {"projects": ["p"], "role": "reader"},
                                         WRITER_KEY: {"projects": ["p"], "role": "writer"}}}))
    keys.chmod(0o600)
    settings = Settings(host=SERVER, port=0, store=f"sqlite:///{folder}/events.db",
                        grace_seconds=5, http_port=-1, auth_file=str(keys),
                        max_keyless_streams_per_address=1, http_max_connections_per_address=2)
    server = start(settings, FixedClock(1_714_564_800 * 10**9))
    said: dict[str, object] = {}
    held: list[socket.socket] = []
    try:
        # HTTP: two idle connections from two addresses of one /64 are all its own
        held += [connect(source, server.http_port) for source in SAME_64[:2]]
        said["http, a third address of the /64"] = http_answer(SAME_64[2], server.http_port)
        said["http, another /64"] = http_answer(OTHER_64, server.http_port)
        for sock in held:
            sock.close()
        held.clear()
        # HTTP: the /64s of one /48, each within its own budget of refusals (a burst of
        # BURST), until one is paced (its site's budget spent), 64 /64s at most
        answered = [pipelined(source, server.http_port) for source in SITE_64S[:1]]
        while answered[-1] == BURST and len(answered) < len(SITE_64S):
            answered.append(pipelined(SITE_64S[len(answered)], server.http_port))
        said["http, /64s of one /48 answered at once"] = sum(answered[:-1]) // BURST
        said["http, the /64 of the /48 paced"] = answered[-1] < BURST
        said["http, another /48, answered at once"] = pipelined(OTHER_SITE, server.http_port)
        # The same of a writer key's refusals: its budget by /64, and by /48 as well
        writes = functools.partial(pipelined, port=server.http_port, target=A_WRITERS_READ)
        answered = [writes(SITE_64S[0])]
        while answered[-1] == BURST and len(answered) < len(SITE_64S):
            answered.append(writes(SITE_64S[len(answered)]))
        said["http, a writer key's /64s of one /48 answered at once"] = \
            sum(answered[:-1]) // BURST
        said["http, a writer key's /64 of the /48 paced"] = answered[-1] < BURST
        # gRPC: one health watch without a key per client address (the flag at 1)
        for source in (SAME_64[0], SAME_64[1], OTHER_64, *SIX_TO_FOUR, *TEREDO):
            outcome, sock = watch(source, server.port)
            held.append(sock)
            said[f"grpc watch from {source}"] = outcome
    finally:
        for sock in held:
            sock.close()
        server.stop()
    json.dump(said, sys.stdout)
    print()


if __name__ == "__main__":
    main()
