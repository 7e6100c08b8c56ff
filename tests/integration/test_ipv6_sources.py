"""Over real sockets, the addresses of one IPv6 /64 are one client (ports.ip_prefix),
and an IPv6 address that carries an IPv4 one (6to4, Teredo) is that IPv4 client:
in a network namespace of its own (`unshare -rn`: no privilege needed where user
namespaces are allowed; skipped where they are not), whose loopback holds addresses
of two /64s, clients bind each socket to an address of their own. On the host's
loopback (::1/128) every IPv6 client has one address, and the /64 of many was
proved by units alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .ipv6_sources import ADDRESSES, BURST, OTHER_64, SAME_64, SIX_TO_FOUR, TEREDO

ROOT = Path(__file__).resolve().parents[2]


def _namespaced(command: str) -> subprocess.CompletedProcess[str]:
    """`command` (sh) in a network namespace of its own, its loopback up with ADDRESSES."""
    setup = " && ".join(["ip link set lo up", *(f"ip -6 addr add {address}/64 dev lo nodad"
                                                   for address in ADDRESSES)])
    return subprocess.run(["unshare", "-rn", "sh", "-c", f"{setup} && {command}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(150)
def test_the_addresses_of_one_64_are_one_client() -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2)")
    if _namespaced("true").returncode != 0:
        pytest.skip("no network namespace may be made here (user namespaces not allowed)")
    ran = _namespaced(f"exec {sys.executable} -m tests.integration.ipv6_sources")
    assert ran.returncode == 0, ran.stderr[-3000:]
    said = json.loads(ran.stdout.splitlines()[-1])
    # The /64s of one /48 share budgets of 16 /64s' (and what comes back meanwhile):
    # past them, a /64 of it is paced within its own burst; another /48 is not.
    at_once = said.pop("http, /64s of one /48 answered at once")
    assert 16 <= at_once < 48 and said.pop("http, the /64 of the /48 paced"), ran.stderr[-3000:]
    assert said.pop("http, another /48, answered at once") == BURST
    # A writer key's budgets of refusals by /64 share budgets by /48 as well: by /64
    # alone, a client of the public key with a /48 had 65,536 of them, none paced.
    at_once = said.pop("http, a writer key's /64s of one /48 answered at once")
    assert 16 <= at_once < 48 and said.pop("http, a writer key's /64 of the /48 paced"), \
        (at_once, ran.stderr[-3000:])
    assert said == {
        # --http-max-connections-per-address 2: two addresses of a /64 hold its two
        "http, a third address of the /64": "HTTP/1.1 503 Service Unavailable (from this address)",
        "http, another /64": "HTTP/1.1 200 OK",
        # --max-keyless-streams-per-address 1: a second address of the /64 is refused
        f"grpc watch from {SAME_64[0]}": "watching",
        f"grpc watch from {SAME_64[1]}": "refused",
        f"grpc watch from {OTHER_64}": "watching",
        # 6to4: two /64s of one IPv4 address's site are one client
        f"grpc watch from {SIX_TO_FOUR[0]}": "watching",
        f"grpc watch from {SIX_TO_FOUR[1]}": "refused",
        # Teredo: two clients of one relay (one /64) are two
        f"grpc watch from {TEREDO[0]}": "watching",
        f"grpc watch from {TEREDO[1]}": "watching",
    }, ran.stderr[-3000:]
