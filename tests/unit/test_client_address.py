"""What a client's address is counted by wherever it keys a budget or a share
(ports.ip_prefix, ports.client_address): an IPv4 address as it is, an IPv6 one by
its /64 (a home or a cloud host is given a whole /64: 2^64 addresses of one client),
IPv4 seen through IPv6 as the IPv4 address; and each way an address reaches the
server (a gRPC peer, aiohttp's remote, a trusted X-Forwarded-For) read so.
tests/integration/test_ipv6_sources.py proves it over sockets of many addresses."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from server.http import pixel
from server.http.gateway import CallContext
from server.policy.auth import Authenticator
from server.policy.call_shares import CallShares, Refused
from server.policy.envelope import client_of
from server.policy.metrics import Metrics
from server.policy.paces import KeyPaces
from server.ports import client_address, ip_prefix


@pytest.mark.parametrize(("host", "counted_as"), [
    ("203.0.113.7", "203.0.113.7"),
    # IPv4 through IPv6: a dual-stack listener's, in either spelling, and the
    # well-known prefix of a translator (NAT64, SIIT) in front of an IPv6-only server
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("::FFFF:CB00:7107", "203.0.113.7"),
    ("64:ff9b::203.0.113.7", "203.0.113.7"),
    ("64:ff9b::cb00:7107", "203.0.113.7"),
    ("64:ff9b::1:cb00:7107", "64:ff9b::/64"),  # (outside its /96: an address as any)
    # an IPv4 address carried in IPv6: 6to4's site (2002:AABB:CCDD::/48, every /64 of
    # it), and a Teredo client's NAT address (its last 32 bits inverted; the /64 before
    # them is its relay server's, shared by every client of that relay)
    ("2002:cb00:7107::1", "203.0.113.7"),
    ("2002:cb00:7107:ffff:1::9", "203.0.113.7"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd1", "192.0.2.46"),  # (the same relay: another)
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),  # (2001:db8::/32 is not Teredo's)
    # one carrying an address no relay routes to (the loopback, 0.0.0.0): its /64, not
    # the server's own callers' address
    ("2002:7f00:1::5", "2002:7f00:1::/64"),
    ("2002::5", "2002::/64"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378::/64"),
    # one /64, however its address is spelled
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:0DB8:0001:0002:0000:0000:0000:0001", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),  # (the next /64: another client)
    # a zone names the server's interface, not the client
    ("fe80::1%eth0", "fe80::/64"),
    ("fe80::2%2", "fe80::/64"),
    ("::1", "::/64"),
    # what is no address is counted as it is
    ("", ""), ("?", "?"), ("unknown", "unknown"),
])
def test_an_address_is_counted_by_its_64_or_as_ipv4(host: str, counted_as: str) -> None:
    assert ip_prefix(host) == counted_as


@pytest.mark.parametrize(("peer", "counted_as"), [
    ("ipv4:203.0.113.7:50123", "203.0.113.7"),
    ("ipv6:%5B::ffff:203.0.113.7%5D:50123", "203.0.113.7"),  # (as grpc writes it)
    ("ipv6:[::ffff:203.0.113.7]:50123", "203.0.113.7"),
    ("ipv6:%5B2001:db8:1:2:aaaa::1%5D:443", "2001:db8:1:2::/64"),
    ("ipv6:%5B2001:db8:1:2:bbbb::9%5D:1", "2001:db8:1:2::/64"),
    ("ipv6:%5Bfe80::1%25eth0%5D:443", "fe80::/64"),
    ("ipv6:%5B64:ff9b::203.0.113.7%5D:443", "203.0.113.7"),
    ("unix:/tmp/footfall.sock", "unix"),
    ("", ""),
])
def test_a_grpc_peer_is_counted_by_its_address(peer: str, counted_as: str) -> None:
    assert client_address(peer) == counted_as


def test_the_calls_without_a_key_of_one_64_hold_one_part(tmp_path: Path) -> None:
    """CallShares counts the calls without a key of every address of a /64 in one
    part (and their refusals spend one budget): per address, one client of a /64 held
    as many parts as it liked of the share, and every other prober was refused."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"client-address-unit-key-0123456789": {
        "projects": ["p"], "role": "writer"}}}))
    keys.chmod(0o600)
    metrics = Metrics()
    calls = CallShares(600, Authenticator(str(keys)), metrics, KeyPaces(metrics))
    part = calls.keyless_per_address  # (100: half the share of 200)

    class Call:
        def __init__(self, peer: str) -> None:
            self._peer = peer

        def peer(self) -> str:
            return self._peer

        def invocation_metadata(self) -> tuple[()]:
            return ()

        def add_done_callback(self, _callback: Any) -> None:
            pass

    async def scenario() -> list[Any]:
        said = []
        for n in range(part):  # each from an address of its own, of one /64
            said.append(calls.enter(Call(f"ipv6:%5B2001:db8:1:2::{n + 1:x}%5D:{1000 + n}")))
        assert said == [None] * part
        return [calls.enter(Call("ipv6:%5B2001:db8:1:2:ffff::1%5D:5")),
                calls.enter(Call("ipv6:%5B2001:db8:1:3::1%5D:5"))]

    refused, other = asyncio.run(scenario())
    assert isinstance(refused, Refused) and refused.budget == "2001:db8:1:2::/64"
    assert other is None  # (another /64 is another client)


def test_an_http_client_is_counted_by_its_address_as_aiohttp_gives_it() -> None:
    """Over a real socket: the address aiohttp gives an IPv6 client (`::1`) and a
    trusted X-Forwarded-For (IPv4 through IPv6 too) counted as ip_prefix has them, by
    every reader of a request's client (the gateway's budgets, the envelope's, a
    CallContext's peer as a gRPC one)."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        for trusted in (False, True):
            requester = pixel.requester(request.headers, request.remote or "", trusted)
            context = CallContext(request, requester)
            seen.append({"requester": ip_prefix(requester.ip_address),
                         "envelope": client_of(context),
                         "peer": client_address(context.peer())})
        return web.Response(text="ok")

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "::1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with ClientSession() as session:
                for forwarded in ("::ffff:203.0.113.7", "2001:db8:1:2::99", "64:ff9b::cb00:7107"):
                    async with session.get(f"http://[::1]:{port}/",
                                           headers={"X-Forwarded-For": forwarded}) as answer:
                        assert answer.status == 200
        finally:
            await runner.cleanup()

    asyncio.run(run())
    on_the_socket = {"requester": "::/64", "envelope": "::/64", "peer": "::/64"}
    forwarded = [{"requester": address, "envelope": address, "peer": "::/64"}
                 for address in ("203.0.113.7", "2001:db8:1:2::/64", "203.0.113.7")]
    assert seen == [on_the_socket, forwarded[0], on_the_socket, forwarded[1],
                    on_the_socket, forwarded[2]]
