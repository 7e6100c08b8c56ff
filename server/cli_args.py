"""Where a read command (`footfall events ...`, `insights ...`) reads: the store
itself, or a running server with its key and TLS. Light to import: `serve` builds
these parsers too."""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from server.config import DEFAULT_STORE, shown_store, store_url_of

EVERY_OPERATION = "projects/"  # the default of `operations list`: no key may list them all
AT_LEAST_TIMEOUT = 10.0  # seconds `events count --at-least` waits without --timeout


# HOST:PORT, the host a name, an IPv4 address or an IPv6 one in brackets, with its zone
# if it has one (`[fe80::1%eth0]`, which grpc connects to, and a ready line names).
_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+(?:%[^\]\s/]+)?\]|[^:\[\]/\s]+):([0-9]{1,5})")


class _NoStore(argparse.Action):
    """--store given to a command that only asks a running server."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        raise argparse.ArgumentError(self, (
            f"{parser.prog} takes no store: it asks a running server; give --server "
            "HOST:PORT, the gRPC port of a server on that store"))


def server_address(text: str) -> str:
    """argparse type of --server: HOST:PORT, as gRPC takes it. A URL is refused
    here (gRPC would read `http` as the host name), and so is a host without its
    port (gRPC would dial 443, a port Footfall never serves by default)."""
    if "://" in text:
        raise argparse.ArgumentTypeError(
            f"takes HOST:PORT (the server's gRPC port), not a URL: {text!r}")
    found = _HOST_PORT.fullmatch(text)
    host, _, port = text.rpartition(":")
    if found is None and _is_ipv6(host) and port.isdigit() and 0 < int(port) < 65536:
        # (as a server's ready line names a server on ::1: its `::1:50051` was told
        # only the form HOST:PORT, which it seemed to have)
        raise argparse.ArgumentTypeError(
            f"takes HOST:PORT with an IPv6 address in brackets: [{host}]:{port}, not {text!r}")
    if found is None or not 0 < int(found[1]) < 65536:
        raise argparse.ArgumentTypeError(
            f"takes HOST:PORT (the server's gRPC port, e.g. localhost:50051), got {text!r}")
    return text


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def row_limit(text: str) -> int:
    """argparse type of a --limit of rows: 0 (all) or more, checked before any call (a
    server refused -1 as "page_size: must not be negative", after a round trip)."""
    return whole_number(text, " (all)")


def whole_number(text: str, zero_means: str = "") -> int:
    """argparse type of a count: a whole number, 0 (which `zero_means`) or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0{zero_means} or more, got {value}")
    return value


def key_problem(text: str) -> str | None:
    """What makes --key (or FOOTFALL_KEY) a key no header can carry, if anything: one
    with a typographic quote or a letter beyond ASCII was refused by gRPC before it was
    sent, and said as the server's INTERNAL error ("Invalid metadata") with grpc's log.
    Asked only when a server is asked (a store read sends no key)."""
    for char in text:
        if not " " <= char <= "~":
            return (f"an API key is printable ASCII (a header carries it); this one holds "
                    f"{char!r} (from --key or FOOTFALL_KEY: was it copied with quotes?)")
    return None


@dataclass(frozen=True)
class StoreArgument:
    """An argument that names a store (--store, `copy`'s DEST), checked once the command
    line is parsed: a URL of no store Footfall opens (`bogus://x`, a server's address,
    memory:// for a read) is a mistake in the command line, refused in one line with
    exit 2 as `serve` refuses it, where a read command said it as a store it could not
    open, exit 1. A well-formed URL of a store that is not there, or does not answer,
    is still found out by opening it (exit 1)."""

    dest: str
    flag: str
    default: str | None  # the URL it holds when not given (from FOOTFALL_STORE, say)
    own_memory_refusal: bool  # memory:// refused by the command itself, saying what to
    # do instead (backup, restore, copy); a read is told to ask the server that holds it

    def problem(self, parsed: argparse.Namespace) -> str | None:
        """What is wrong with the URL `parsed` holds (see store_url_problem); None when
        nothing is, or when no store is read (a command given --server asks that
        server)."""
        url = getattr(parsed, self.dest, None)
        if url is None or getattr(parsed, "server", None) or \
                self.own_memory_refusal and url == "memory://":
            return None
        return store_url_problem(url, self.flag, self.default, read_only=True)


def store_url_problem(url: str, flag: str, default: str | None, *,
                      read_only: bool) -> str | None:
    """What makes `url` the URL of no store (server.store.check_url), naming `flag`, or
    FOOTFALL_STORE when `url` is the flag's `default` (DEFAULT_STORE is a store's URL:
    a default refused is the variable's); None when it is one."""
    from server.store import check_url  # (grpc and the stores' code: only here)

    try:
        check_url(url, read_only=read_only)
    except ValueError as exc:
        given = f"FOOTFALL_STORE (the default of {flag})" if url == default \
            else f"argument {flag}"
        return f"{given}: {exc}"
    return None


def names_a_store(parser: argparse.ArgumentParser, dest: str, *,
                  own_memory_refusal: bool = False) -> None:
    """Have `parser` (a command of server.__main__) check, once it has parsed it, the
    store URL held by its argument `dest` ("--store", or a positional's name)."""
    action = next(action for action in parser._actions if dest in action.option_strings
                  or action.dest == dest)
    default = store_url_of(action.default) if isinstance(action.default, str) else None
    flag = action.metavar if isinstance(action.metavar, str) else dest
    argument = StoreArgument(action.dest, flag, default, own_memory_refusal)
    parser.stores = [*getattr(parser, "stores", []), argument]  # type: ignore[attr-defined]


def add_source_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str],
                         store: bool = True) -> None:
    """--store (when `store`) or --server, --key, --tls and --tls-ca; without
    `store`, --server is required."""
    if store:
        # (a default from FOOTFALL_STORE shown without its passwords, its % written %%)
        shown = shown_store(env.get("FOOTFALL_STORE", DEFAULT_STORE)).replace("%", "%%")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--store", default=env.get("FOOTFALL_STORE", DEFAULT_STORE),
                           type=store_url_of,
                           help="read this store directly, read-only; it must exist: a "
                                "store URL or a SQLite file's path (FOOTFALL_STORE; "
                                f"default {shown})")
        where.add_argument("--server", metavar="HOST:PORT", type=server_address,
                           help="ask a running server at its gRPC port, through its public "
                                "API (a memory:// store can only be read this way)")
        names_a_store(parser, "--store")
    else:
        parser.add_argument("--server", metavar="HOST:PORT", type=server_address,
                            required=True, help="the running server to ask, at its gRPC port")
        # Not listed: said as soon as it is met, where `insights funnel --store x.db`
        # (as `events list` takes it) was told only that --server is required.
        parser.add_argument("--store", action=_NoStore, help=argparse.SUPPRESS)
    parser.add_argument("--key", default=env.get("FOOTFALL_KEY", ""),
                        help="API key sent to --server as x-goog-api-key; better given as "
                             "FOOTFALL_KEY, which other users cannot see in the process list")
    parser.add_argument("--tls", action="store_true",
                        help="reach --server over TLS, trusting the system's authorities")
    parser.add_argument("--tls-ca", metavar="FILE",
                        help="reach --server over TLS, trusting the authority (PEM) in FILE")
