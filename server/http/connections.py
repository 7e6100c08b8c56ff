"""Connections on the HTTP port: a cap on how many are open, a deadline for each
request head, and accept errors logged once per interval instead of per attempt.

With aiohttp's own site (asyncio's accept loop), a client that sends one header
byte now and then keeps its connection forever; enough of them use up the file
descriptors, after which every accept fails and asyncio logs each failure (some
thousand tracebacks a second) while the port answers nobody. So the accept loop
here is ours:

- beyond `max_connections` open connections, a new one gets a 503 and is closed
  at once, so the ones already open (and the process's other descriptors) are
  never starved;
- a connection must deliver a complete request head within `header_timeout`
  seconds, counted from accept and again from the end of each response (so an
  idle kept-alive connection is closed after as long): a deadline, which
  trickled bytes do not move;
- a TLS handshake gets the same time;
- a failed accept (EMFILE, ENFILE, ...) waits a moment before the next one, and
  is logged at most once per LOG_INTERVAL with a count.

The body has a deadline of its own, kept by the gateway where it reads it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from google.rpc import code_pb2, status_pb2

from server.http.errors import error_body

log = logging.getLogger(__name__)

LOG_INTERVAL = 60.0  # seconds between two reports of the same trouble
ACCEPT_RETRY = 0.1  # seconds to wait after a failed accept (the cause rarely clears sooner)
# HTTP connections may take at most this share of the process's descriptors;
# the rest are for gRPC, the store, the listening sockets and the logs.
DESCRIPTOR_SHARE = 0.75
_REFUSAL_STATUS = status_pb2.Status(
    code=code_pb2.UNAVAILABLE,
    message="too many open connections to this server; retry later")
_REFUSAL_BODY = error_body(_REFUSAL_STATUS, 503)
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
           b"charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: "
           + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY)


class RateLimitedLog:
    """A warning the first time, then at most once per `interval` seconds with how
    many times it happened since the last one."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._last_report: float | None = None
        self._unreported = 0
        self._message = ""
        self.total = 0

    def note(self, message: str) -> None:
        self.total += 1
        self._unreported += 1
        self._message = message
        if self._last_report is None or self._clock() >= self._last_report + self._interval:
            self.flush()

    def flush(self) -> None:
        """Report what is unreported now (at shutdown, say)."""
        if not self._unreported:
            return
        now = self._clock()
        if self._last_report is None:
            self._log.warning("%s (repeats are counted and reported at most every %.0f s)",
                              self._message, self._interval)
        else:
            self._log.warning("%s: %d times in the last %.0f s", self._message,
                              self._unreported, now - self._last_report)
        self._unreported = 0
        self._last_report = now


def plan_descriptors(wanted: int, soft: int, hard: int) -> tuple[int | None, int]:
    """(the soft RLIMIT_NOFILE to set or None, the connection cap) so that `wanted`
    connections stay within DESCRIPTOR_SHARE of the limit: the soft limit is raised
    as far as the hard one allows, and the cap lowered only if that is not enough."""
    needed = math.ceil(wanted / DESCRIPTOR_SHARE)
    unlimited = resource.RLIM_INFINITY
    if soft == unlimited or soft >= needed:
        return None, wanted
    reachable = needed if hard == unlimited else min(needed, hard)
    new_soft = reachable if reachable > soft else None
    usable = max(reachable, soft)
    return new_soft, wanted if usable >= needed else max(int(usable * DESCRIPTOR_SHARE), 1)


def fit_descriptors(wanted: int) -> int:
    """The connection cap to use for `wanted` (--http-max-connections), after raising
    the soft descriptor limit if it must and can be; a lower cap is logged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new_soft, cap = plan_descriptors(wanted, soft, hard)
    if new_soft is not None:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            log.info("raised the file descriptor limit from %d to %d for %d HTTP connections",
                     soft, new_soft, cap)
        except (OSError, ValueError) as exc:
            _, cap = plan_descriptors(wanted, soft, soft)
            log.warning("cannot raise the file descriptor limit: %s", exc)
    if cap < wanted:
        log.warning("--http-max-connections %d does not fit the file descriptor limit "
                    "(RLIMIT_NOFILE soft %d, hard %d): at most %d HTTP connections; raise "
                    "the limit (ulimit -n) for more", wanted, soft, hard, cap)
    return cap


class _Connection(web.RequestHandler):
    """aiohttp's protocol for one connection, plus the head deadline and the count."""

    __slots__ = ("_site", "_head_due", "_head_timer", "_answered")

    def __init__(self, site: GuardedSite, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._site = site
        self._head_due = 0.0  # loop time by which a head must be complete; 0: none due
        self._head_timer: asyncio.TimerHandle | None = None
        self._answered = 0  # responses finished; aiohttp counts the heads parsed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._site.opened(self)
        self._expect_head()

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._head_due = 0.0  # a head is complete: the handler has it now

    def log_access(self, request: Any, response: Any, started: float | None) -> None:
        # aiohttp calls this once per finished response, logging or not.
        super().log_access(request, response, started)
        self._answered += 1
        if self._answered >= self._request_count:  # no pipelined head waiting
            self._expect_head()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._site.closed(self)
        super().connection_lost(exc)

    def _expect_head(self) -> None:
        self._head_due = self._loop.time() + self._site.header_timeout
        if self._head_timer is None:
            self._head_timer = self._loop.call_at(self._head_due, self._check_head)

    def _check_head(self) -> None:
        # One timer per connection, moved on lazily: a request answered in time
        # costs no timer of its own.
        self._head_timer = None
        due = self._head_due
        if not due or self.transport is None:
            return
        if self._loop.time() < due:
            self._head_timer = self._loop.call_at(due, self._check_head)
            return
        log.debug("closing an HTTP connection: no complete request head within %s s",
                  self._site.header_timeout)
        self.force_close()


class GuardedSite(web.BaseSite):
    """A TCP site with our accept loop: the connection cap, the head deadline, and
    accept errors that neither spin nor flood the log."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 header_timeout: float, max_connections: int,
                 handler_args: dict[str, Any], ssl_context: ssl.SSLContext | None = None,
                 backlog: int = 128) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self._handler_args = handler_args
        self._listeners: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._open: set[_Connection] = set()
        self._pending = 0  # accepted, connection not made yet (TLS handshake)
        self.refused = RateLimitedLog(log)
        self.accept_errors = RateLimitedLog(log)

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        return int(self._listeners[0].getsockname()[1]) if self._listeners else self._port

    @property
    def open_connections(self) -> int:
        return len(self._open) + self._pending

    async def start(self) -> None:
        await super().start()
        self._listeners = _listen(self._host, self._port, self._backlog)
        loop = asyncio.get_running_loop()
        self._accepting = [loop.create_task(self._accept(sock)) for sock in self._listeners]

    async def stop(self) -> None:
        for task in (*self._accepting, *self._handshakes):
            task.cancel()
        await asyncio.gather(*self._accepting, *self._handshakes, return_exceptions=True)
        for sock in self._listeners:
            sock.close()
        self.refused.flush()
        self.accept_errors.flush()
        await super().stop()  # the open connections are the runner's to drain

    def opened(self, connection: _Connection) -> None:
        self._open.add(connection)

    def closed(self, connection: _Connection) -> None:
        self._open.discard(connection)

    def _connection(self) -> _Connection:
        # Counted once connected: a TLS handshake that fails never tells the protocol.
        return _Connection(self, self._runner.server,  # type: ignore[arg-type]
                           loop=asyncio.get_running_loop(), **self._handler_args)

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ECONNABORTED, ...
                self.accept_errors.note(f"HTTP: cannot accept a connection: {exc}")
                await asyncio.sleep(ACCEPT_RETRY)
                continue
            if self.open_connections >= self.max_connections:
                self.refused.note(f"HTTP: refusing connections: {self.max_connections} are "
                                  f"open (--http-max-connections)")
                _refuse(sock)
            elif self._ssl_context is None:
                try:
                    await loop.connect_accepted_socket(self._connection, sock)
                except OSError:  # the client has already gone
                    sock.close()
            else:
                self._pending += 1
                task = loop.create_task(self._handshake(sock))
                self._handshakes.add(task)
                task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self._connection, sock, ssl=self._ssl_context,
                ssl_handshake_timeout=self.header_timeout)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
            sock.close()  # a failed or timed-out handshake: the client's problem
        finally:
            self._pending -= 1


def _refuse(sock: socket.socket) -> None:
    """A 503 if the socket takes it at once, then close: never wait on a refused client."""
    try:
        sock.send(REFUSAL)
    except OSError:
        pass
    sock.close()


def _listen(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for every address of `host` (all of them for ""), on one
    port (the first one's when `port` is 0); OSError if one cannot be bound."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
