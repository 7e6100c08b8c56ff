"""What the system says of binding a port, asked before the servers bind it: a
port another process listens on is refused before the store is opened (and, with
--processes, before any process starts); and what a client's address is counted
by. No grpc here: the --processes parent imports it."""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket
from typing import Any
from urllib.parse import unquote

# grpc's resolver names both loopback addresses for `localhost` (RFC 6761), whatever
# the system's hosts file says (one where it names 127.0.0.1 alone): grpc binds each.
_LOOPBACKS = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1", 0, 0))


def bind_refusal(host: str, port: int, grpc_places: bool = False) -> OSError | None:
    """Why the system refuses to bind `port` (as the servers do: SO_REUSEADDR), or
    None: on each address `host` names, as grpc and aiohttp bind each (with
    `grpc_places`, `localhost` is 127.0.0.1 and ::1 as grpc resolves it: with
    [::1]:port another process's, grpc served on 127.0.0.1 alone, and a client of
    localhost:port reached that process). An address in use is said first, naming
    it when `host` names several."""
    places: dict[tuple[int, tuple[Any, ...]], None] = {}  # (family, address), in order
    loopbacks = grpc_places and host.lower().rstrip(".") == "localhost"
    try:
        for found in socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                        flags=socket.AI_PASSIVE):
            places[(found[0], tuple(found[4]))] = None
    except OSError as exc:  # (a name that does not resolve)
        if not loopbacks:
            return exc
    if loopbacks:
        places.update(dict.fromkeys((family, (ip, port, *more))
                                    for family, ip, *more in _LOOPBACKS))
    refusals: list[OSError] = []
    for family, address in places:
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # (a family this machine lacks: the servers leave it out too)
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                said = exc.strerror
                if exc.errno == errno.EADDRINUSE and not _listened(family, address):
                    said = f"{said} ({_held_by_a_connection(port)})"
                if len(places) > 1:
                    shown = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
                    said = f"{said} (at {shown}:{port})"
                if said != exc.strerror:
                    exc = OSError(exc.errno, said)
                refusals.append(exc)
    in_use = [exc for exc in refusals if exc.errno == errno.EADDRINUSE]
    return next(iter(in_use or refusals), None)


def _listened(family: int, address: tuple[Any, ...]) -> bool:
    """Whether a process listens at `address` (a wildcard one: at its loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address[0], address[0])
    try:
        with socket.socket(family, socket.SOCK_STREAM) as client:
            client.settimeout(0.5)
            client.connect((host, *address[1:]))
    except OSError:
        return False
    return True


def _held_by_a_connection(port: int) -> str:
    """Why `port` is in use though nothing listens on it, and what to do: a new
    user, twice, found a port refused that `ss -ltn` showed free."""
    said = f"nothing listens on it: a connection of another process has {port} as its own port"
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as given:
            low, high = (int(part) for part in given.read().split())
    except (OSError, ValueError):
        return said
    if low <= port <= high:
        said += f"; this machine gives connections ports {low}-{high}, pick one outside them"
    return said


def grpc_refusal(address: str, exc: OSError) -> str:
    """Why the gRPC port cannot be listened on at `address` (host:port), and what to
    change; worded as the HTTP port's ("cannot listen for HTTP on ...")."""
    advice = {errno.EADDRINUSE: " (--port or FOOTFALL_PORT picks another port; 0 a "
                                "free one)",
              errno.EADDRNOTAVAIL: " (--host or FOOTFALL_HOST names an address of "
                                   "this machine)"}.get(exc.errno or 0, "")
    return f"cannot listen for gRPC on {address}: {exc.strerror or exc}{advice}"


def http_refusal(host: str, port: int, exc: OSError) -> str:
    """Why the HTTP port cannot be listened on, and what to change (here, not in the
    gateway: the --processes parent, which imports no aiohttp, says it too, and said
    it without the advice)."""
    advice = (" (--http-port or FOOTFALL_HTTP_PORT picks another port; -1 a free one, "
              "0 none)" if exc.errno == errno.EADDRINUSE else "")
    return f"cannot listen for HTTP on {host}:{port}: {exc.strerror or exc}{advice}"


# (cached: a refused call's log line and a keyless client's pacing count each call by its
# address, and ipaddress took 3 µs for an IPv4 address and 16 for an IPv6 one each time;
# bounded, as a client of IPv6 addresses has as many as it likes)
@functools.lru_cache(maxsize=4096)
def ip_prefix(host: str) -> str:
    """What a client's address (`1.2.3.4`, `2001:db8::1`) is counted by: an IPv4
    address, one seen as IPv6 too (`::ffff:1.2.3.4`, a dual-stack listener's; and
    `64:ff9b::1.2.3.4`, the well-known prefix a translator in front of an IPv6-only
    server (NAT64, SIIT) gives IPv4 clients: counted by its /64, every IPv4 client
    would be one); an IPv6 address that carries its client's IPv4 address (6to4's
    2002:AABB:CCDD::/48 is the site of one IPv4 address: by its /64s it had 65,536
    budgets; Teredo's 2001::/32 holds its relay server's address in its /64 and its
    client's NAT address, inverted, last: by its /64, every client of one relay was
    one), that IPv4 address; an IPv6 address's /64 (one client is given a whole /64,
    and the zone of a link-local one names the server's interface, not the client);
    else as it is.

    Not a coarser prefix: a /64 is what Cloudflare's rate limiting and GitLab's
    per-address limits (by default) count an IPv6 client by, and nginx counts every
    address alone. Providers hand a customer a /56 or a /48 too, but a /48 is as often
    a whole site of many (a campus, a mobile carrier's pool of /64s, one to a
    device): counted by it, their visitors would share one budget, and one of them
    would have every other's health checks, files and refusals wait. The budgets of
    refusals and files bound a /48's /64s together as well, at 16 times one's
    (server.policy.SITE_BUDGETS)."""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ip in _TRANSLATED:
            return str(ipaddress.IPv4Address(ip.packed[-4:]))
        carried = ip.sixtofour or (ip.teredo[1] if ip.teredo is not None else None)
        # (one that carries no address of a host elsewhere, 127.0.0.1 or 0.0.0.0, no
        # relay routes: counted as that address it would share the server's own
        # callers' budgets, health checks on the loopback among them)
        if carried is not None and not _routes_nowhere(carried):
            return str(carried)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _routes_nowhere(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast


# The well-known prefix of IPv4 addresses translated to IPv6 (RFC 6052)
_TRANSLATED = ipaddress.IPv6Network("64:ff9b::/96")


def client_address(peer: str) -> str:
    """What a gRPC call's peer (`ipv4:1.2.3.4:5678`, `ipv6:%5B2001:db8::1%5D:5678`:
    a URI, percent-encoded) is counted by: its IP address as ip_prefix has it;
    what is not IP (a Unix socket) as one."""
    kind, _, address = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return kind
    return ip_prefix(unquote(address).rpartition(":")[0].strip("[]"))
