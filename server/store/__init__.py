"""Storage: the Store interface and the backend chosen by a store URL."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

from server.config import CONNECTION_STRING, SERVER_ADDRESS, store_url_of
from server.store.rows import ClientEventRow, EventQuery, EventRow, StoreUnavailable, TimeBound

if TYPE_CHECKING:
    from server.store.base import Store

__all__ = ["ClientEventRow", "EventQuery", "EventRow", "Store", "TimeBound", "answered_stored",
           "committed_a_while", "located", "open_store", "redacted", "sqlite_path",
           "store_url_of"]

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    """`Store`, imported when first asked for: the interface's module imports the
    console's and the group commit's, which a process that opens no store (a CLI that
    asks a server, having checked its filter's EventQuery) has no use for."""
    if name == "Store":
        from server.store.base import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# How long a read waits for what its process queued before it (the events answered
# before their commit, the refusals kept) to be committed.
ANSWERED_WAIT_SECONDS = 2.0


async def answered_stored(store: Store) -> None:
    """Return once the events this process answered before their commit (pixels,
    write_async) are stored, so that a read made after such an answer sees its
    event, as it sees a write's: a pixel is committed a few milliseconds after its
    GIF, and a test that sent one and read at once did not find it. A store that
    cannot commit them now (its database away, its disk full) is read as it is,
    after ANSWERED_WAIT_SECONDS at most: what it holds is still worth seeing then."""
    if store.acknowledged_uncommitted:
        await committed_a_while(store, "the events answered before their commit")


async def committed_a_while(store: Store, what: str) -> None:
    """Return once what was queued before this call is committed, or after
    ANSWERED_WAIT_SECONDS (or at once if the store says it cannot commit): a read
    that waits for `what` is read as the store is then, not held up for as long
    as the writer is (a long step, a lost database)."""
    try:
        await asyncio.wait_for(store.flush_async(), ANSWERED_WAIT_SECONDS)
    except (TimeoutError, StoreUnavailable) as exc:
        log.info("read without waiting for %s: %s", what, exc or "they are not committed yet")


def redacted(url: str) -> str:
    """`url` as logs may show it: every password in it becomes ***, as libpq reads
    them: before the host (`USER:PASSWORD@`, its `/`, `?`, `#` or `@` unencoded
    too), a `password=` or `sslpassword=` parameter (its name percent-encoded too),
    or such a keyword of libpq's KEY=VALUE connection string."""
    shown, end = [], 0
    for start, stop in password_spans(url):
        shown += [url[end:start], "***"]
        end = stop
    return "".join(shown) + url[end:]


def password_spans(url: str) -> list[tuple[int, int]]:
    """Where the passwords of `url` (see `redacted`) are, as (start, end), in order."""
    scheme, sep, rest = url.partition("://")
    if not sep or _SCHEME.fullmatch(scheme) is None:  # (KEY=VALUE, or a path)
        return [found.span(2) for found in _KEYWORD_PASSWORD.finditer(url)]
    offset = len(scheme) + len(sep)
    spans, host = [], 0
    first_at = rest.find("@")
    if first_at >= 0:
        # The user's part ends at the last `@` before the host's path or query (a
        # password's `@` unencoded is hidden too, where libpq takes the first).
        after = _PATH_OR_QUERY.search(rest, first_at)
        end = rest.rindex("@", 0, after.start() if after else len(rest))
        if "/" not in rest[:first_at]:
            # USER:PASSWORD@HOST as libpq reads it: a `?` or `#` within is the password's
            colon = rest.find(":", 0, end)
            host = end + 1
        elif (user := _USER.match(rest)) is not None and not (
                _PORTS.match(rest, user.end()) and _QUERY.search(rest, 0, first_at)):
            # USER:PA/SS@HOST/DB: libpq reads host USER and port PA (and refuses
            # it), but the password is meant; HOST:5432/DB?user=me@corp has none
            colon, host = user.end() - 1, end + 1
        else:
            colon = -1
        if colon >= 0:
            spans.append((offset + colon + 1, offset + end))
    query = rest.find("?", host)
    if query >= 0:
        at = offset + query + 1
        for parameter in url[at:].split("&"):
            name, equals, _ = parameter.partition("=")
            if equals and unquote(name).strip().lower() in _PASSWORD_NAMES:
                spans.append((at + len(name) + 1, at + len(parameter)))
            at += len(parameter) + 1
    return spans


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# A URL's USER: (before a password, or HOST: before a port)
_USER = re.compile(r"[^:/?#@\[]*:")
_PATH_OR_QUERY = re.compile(r"[/?#]")
_QUERY = re.compile(r"[?#]")
# HOST:'s port (a list of hosts' too), then the path
_PORTS = re.compile(r"[0-9]*(?:,[^/?#@]*)?/")
_PASSWORD_NAMES = frozenset({"password", "sslpassword"})
# (a KEY=VALUE string's value may be quoted, spaces and \' within; unquoted, it ends
# at a space; `?` and `&` before the name: a server's address given a query)
_KEYWORD_PASSWORD = re.compile(
    r"((?:^|[?&\s])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")


def located(url: str) -> str:
    """`url` as the start line shows it: a password as ***, a SQLite path made
    absolute (a relative one depends on the folder the server started in)."""
    if url.startswith("sqlite:///"):
        path, mark, query = url[len("sqlite:///"):].partition("?")
        return f"sqlite:///{os.path.abspath(path)}{mark}{query}" if path else url
    return redacted(url)


def sqlite_path(url: str) -> str:
    """The file a sqlite:///PATH URL names (sqlite:///relative/path and
    sqlite:////absolute/path, as SQLAlchemy spells them; sqlite:///./data/x.db is
    relative to the working directory). ValueError when it names none."""
    path = url.split("?", 1)[0][len("sqlite:///"):] if url.startswith("sqlite:///") else ""
    if not path:
        raise ValueError(f"sqlite store URL needs a path, e.g. sqlite:///./data/footfall.db: "
                         f"{url!r}")
    return path


def _warn_if_meant_absolute(path: str) -> None:
    """A warning when the relative path of a sqlite:/// URL reads as an absolute one
    with a slash left out: sqlite:///tmp/x.db made ./tmp/x.db under the working folder
    (and its folders), said only by the absolute path on the ready line."""
    first = path.split("/", 1)[0]
    if path.startswith("/") or first in ("", ".", "..") or os.path.exists(first) \
            or not os.path.isdir(f"/{first}"):
        return
    log.warning("sqlite:///%s is the file %s under the working folder; sqlite:////%s (four "
                "slashes) is /%s", path, os.path.abspath(path), path, path)


# Schemes of a server's address, never of a store.
_SERVER_SCHEMES = frozenset({"http", "https", "grpc", "grpcs", "dns"})


def open_store(url: str, *, read_only: bool = False, any_version: bool = False) -> Store:
    """Open the store a URL names: sqlite:///PATH, memory://, postgresql://...

    Raises ValueError for a URL no backend understands, StoreUnavailable when a
    PostgreSQL database does not answer within a few seconds (StoreRefused when
    it refuses us for good). `read_only` opens an existing store without
    creating or changing anything (ValueError when there is none at the URL);
    with `any_version` too, a SQLite store of an older or newer Footfall is opened
    (for `footfall backup`, which copies its pages and reads none of its rows).
    """
    # Imported here so that a process that opens no store (a CLI that asks a server,
    # and only parses a filter's EventQuery first) never loads the SQLite backend.
    from server.store.sqlite import SqliteStore

    parsed = urlparse(url)
    if parsed.scheme == "memory":
        if url != "memory://":  # (memory:/ and memory://name read as some other store)
            raise ValueError(f"a memory store's URL is memory:// alone, got {url!r}")
        if read_only:
            raise ValueError("a memory:// store lives inside the server that holds it: "
                             "ask that server (--server HOST:PORT)")
        return SqliteStore(None)
    if parsed.scheme == "sqlite":
        path = sqlite_path(url)
        _warn_if_meant_absolute(path)
        options = parse_qs(parsed.query)
        synchronous = options.pop("synchronous", ["full"])[-1].upper()
        if options or synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"sqlite store URL takes only ?synchronous=full|normal: {url!r}")
        return SqliteStore(path, synchronous=synchronous, read_only=read_only,
                           any_version=any_version)
    if parsed.scheme in {"postgres", "postgresql"}:
        # Imported here so that SQLite users never load the PostgreSQL driver.
        from server.store.postgres import PostgresStore, url_problem

        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return PostgresStore(url, read_only=read_only)
    address = SERVER_ADDRESS.fullmatch(url)
    if address is not None:
        # (a password given as USER:PASSWORD@ is said as ***, as `redacted` says it:
        # the refusal is logged, and it quoted the password three times)
        user, colon, _ = (address["user"] or "").partition(":")
        user = f"{user}:***" if colon else user
        shown = f"{user}@{url[address.end('user') + 1:]}" if address["user"] else url
        meant = f"postgresql://{user or 'USER'}@{address['address']}/" \
                f"{address['database'] or 'DB'}"
        raise ValueError(f"unknown store URL {shown!r}: that is a server's address; a "
                         f"PostgreSQL database there is {meant} (and a SQLite file of "
                         f"that name, ./{shown})")
    if CONNECTION_STRING.match(url):
        raise ValueError(f"unknown store URL {redacted(url)!r}: that is libpq's KEY=VALUE "
                         "connection string; give the database as a URL, "
                         "postgresql://USER:PASSWORD@HOST:PORT/DB (or its password in "
                         "PGPASSWORD or ~/.pgpass)")
    if not parsed.scheme and url.strip():
        # A path where a URL belongs (given in code: every command's --store takes
        # one, through store_url_of): say the URL that names it.
        raise ValueError(f"unknown store URL {redacted(url)!r}: a SQLite file is named by a URL, "
                         f"sqlite:///{redacted(url)} for that path; or memory:// or "
                         "postgresql://USER@HOST/DB")
    if read_only and parsed.scheme in _SERVER_SCHEMES:
        # The console's or a client's address where a store belongs (a reader who has
        # the server's URL at hand): the store is behind that server; ask it.
        raise ValueError(f"unknown store URL {redacted(url)!r}: that is a server's address; ask "
                         "the server with --server HOST:PORT (its gRPC port, not a URL)")
    # A read opens no memory:// store (it lives inside its server): not offered there.
    kinds = "sqlite:///PATH or postgresql://USER@HOST/DB" if read_only else \
        "sqlite:///PATH, memory:// or postgresql://USER@HOST/DB"
    # (a password said as ***: a scheme mistyped, postgress://me:PASSWORD@..., was
    # refused quoting it, in a line logged at ERROR)
    raise ValueError(f"unknown store URL {redacted(url)!r}: use {kinds}")
