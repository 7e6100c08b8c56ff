"""Storage: the Store interface and the backend chosen by a store URL."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from server.config import CONNECTION_STRING, store_url_of
from server.store.rows import ClientEventRow, EventQuery, EventRow, StoreUnavailable, TimeBound
from server.url_passwords import (
    Address,
    libpq_misreads,
    password_spans,
    postgres_address,
    redacted,
    without_passwords,
)

if TYPE_CHECKING:
    from server.store.base import Store

__all__ = ["ClientEventRow", "EventQuery", "EventRow", "Store", "TimeBound", "answered_stored",
           "check_url", "committed_a_while", "located", "open_store", "password_spans",
           "postgres_url_problem", "redacted", "sqlite_path", "store_url_of"]

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


def located(url: str) -> str:
    """`url` as the start line shows it: a password as ***, a SQLite path made
    absolute (a relative one depends on the folder the server started in)."""
    if url.startswith("sqlite:///"):
        path, mark, query = url[len("sqlite:///"):].partition("?")
        if path:
            url = f"sqlite:///{os.path.abspath(path)}{mark}{query}"
    return redacted(url)


def sqlite_path(url: str) -> str:
    """The file a sqlite:///PATH URL names (sqlite:///relative/path and
    sqlite:////absolute/path, as SQLAlchemy spells them; sqlite:///./data/x.db is
    relative to the working directory). ValueError when it names none, or when its
    path reads as a PostgreSQL address (see postgres_address): every command's --store
    takes a path, and `me:pa/ss@db:5432/shop` was served as a SQLite file of that
    name, its password in the start line (./NAME is still the file)."""
    path = url.split("?", 1)[0][len("sqlite:///"):] if url.startswith("sqlite:///") else ""
    if not path:
        raise ValueError(f"sqlite store URL needs a path, e.g. sqlite:///./data/footfall.db: "
                         f"{redacted(url)!r}")
    address = postgres_address(url[len("sqlite:///"):])
    if address is not None:
        raise _address_refused(url[len("sqlite:///"):], address)
    return path


def _address_refused(text: str, address: Address) -> ValueError:
    """The refusal of a PostgreSQL server's address given where a store's URL belongs,
    saying the URL of its database (a password as ***: the refusal is logged)."""
    shown = redacted(text)
    where, mark, query = shown.partition("?")
    meant = ("" if address.user else "USER@") + (shown if address.database
                                                  else f"{where.rstrip('/')}/DB{mark}{query}")
    return ValueError(f"unknown store URL {shown!r}: that is a server's address; a "
                      f"PostgreSQL database there is postgresql://{meant} (and a SQLite "
                      f"file of that name, ./{shown})")


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


def postgres_url_problem(url: str) -> str | None:
    """What is wrong with a PostgreSQL store URL, in one line that shows no password, or
    None (see server.store.postgres.url_problem), said before any connection is made."""
    if libpq_misreads(url):
        # (each was said with the password: USER:PA/SS@HOST/DB as a port that is no
        # number, USER:PA@SS@HOST/DB as host SS@HOST in every line of its outage)
        return ("PostgreSQL store URL: a / in its password is written %2F, an @ %40, an & "
                "%26, or libpq reads some of it as no password (USER:PA/SS@HOST/DB as host "
                "USER, port PA; USER:PA@SS@HOST/DB as host SS@HOST)")
    from server.store.postgres import url_problem

    try:
        problem = url_problem(url)
    except UnicodeDecodeError:  # (psycopg's conninfo_to_dict: `serve` ended in a traceback)
        return ("PostgreSQL store URL: a percent-encoded part of it is no UTF-8 text "
                "(psycopg reads UTF-8 alone)")
    # (libpq's words are made one line first, and a password's space of Unicode's made
    # a space was not found in them: `invalid percent-encoded token: "00% "` was said)
    return None if problem is None else without_passwords(problem, url)


# Schemes of a server's address, never of a store.
_SERVER_SCHEMES = frozenset({"http", "https", "grpc", "grpcs", "dns"})


def open_store(url: str, *, read_only: bool = False, any_version: bool = False) -> Store:
    """Open the store a URL names: sqlite:///PATH, memory://, postgresql://...

    Raises ValueError for a URL no backend understands (see check_url),
    StoreUnavailable when a PostgreSQL database does not answer within a few
    seconds (StoreRefused when it refuses us for good). `read_only` opens an
    existing store without creating or changing anything (ValueError when there
    is none at the URL); with `any_version` too, a SQLite store of an older or
    newer Footfall is opened (for `footfall backup`, which copies its pages and
    reads none of its rows).
    """
    # Imported here so that a process that opens no store (a CLI that asks a server,
    # and only parses a filter's EventQuery first) never loads the SQLite backend.
    from server.store.sqlite import SqliteStore

    check_url(url, read_only=read_only)
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return SqliteStore(None)
    if parsed.scheme == "sqlite":
        path = sqlite_path(url)
        _warn_if_meant_absolute(path)
        synchronous = parse_qs(parsed.query).get("synchronous", ["full"])[-1].upper()
        return SqliteStore(path, synchronous=synchronous, read_only=read_only,
                           any_version=any_version)
    # Imported here so that SQLite users never load the PostgreSQL driver.
    from server.store.postgres import PostgresStore

    return PostgresStore(url, read_only=read_only)


def check_url(url: str, *, read_only: bool = False) -> None:
    """Return if `url` is the URL of a store open_store opens (with `read_only`, as
    a read command does), else raise ValueError saying what is wrong and what is
    taken, in one line that shows no password. Nothing is opened or reached: a
    well-formed URL of a store that is not there passes (opening it says so)."""
    # (before the schemes: `postgres:PASSWORD@db:5432/shop` reads as one, the user
    # named postgres, and libpq's refusal of it quoted the password)
    address = postgres_address(url)
    if address is not None:
        raise _address_refused(url, address)
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        if url != "memory://":  # (memory:/ and memory://name read as some other store)
            raise ValueError(f"a memory store's URL is memory:// alone, got {redacted(url)!r}")
        if read_only:
            raise ValueError("a memory:// store lives inside the server that holds it: "
                             "ask that server (--server HOST:PORT)")
        return
    if parsed.scheme == "sqlite":
        sqlite_path(url)
        options = parse_qs(parsed.query)
        synchronous = options.pop("synchronous", ["full"])[-1].upper()
        if options or synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"sqlite store URL takes only ?synchronous=full|normal: "
                             f"{redacted(url)!r}")
        return
    if parsed.scheme in {"postgres", "postgresql"}:
        problem = postgres_url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return
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
