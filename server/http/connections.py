"""Connections on the HTTP port: a cap on how many are open, a deadline for each
request head, and accept errors logged once per interval instead of per attempt.

With aiohttp's defaults and site (asyncio's accept loop), a client that sends one
header byte now and then keeps its connection for an hour; enough of them use up
the file descriptors, after which every accept fails and asyncio logs each
failure (thousands of tracebacks a second) while the port answers nobody. So the
accept loop here is ours:

- beyond `max_connections` open connections, a new one takes the place of one the
  server closed ROOM_AFTER ago at least whose client takes the rest of its answer
  slower than MIN_SEND_RATE (or has none left to take: over TLS it waits for the
  client's close_notify), of the one
  that has waited longest for a request (ROOM_AFTER at least; closed once the rest of
  its answers is sent, counted outside the cap meanwhile, while fewer than
  1/TAILS_SHARE of the cap are so), or of a TLS one accepted
  ROOM_AFTER ago whose handshake is not done, or of one whose request
  body comes slower than MIN_BODY_RATE (answered 408), or whose client takes its
  answer slower than MIN_SEND_RATE (closed), or else gets a 503 and is
  closed at once, so the ones already open (and the process's other descriptors) are
  never starved, and idle or trickling ones cannot keep everyone else out;
- a connection must deliver a complete request head within `header_timeout`
  seconds, counted from accept and again from the end of each response (so an
  idle kept-alive connection is closed after as long): a deadline, which
  trickled bytes do not move (aiohttp's keep-alive timer);
- a TLS handshake gets the same time;
- a failed accept (EMFILE, ENFILE, ...) waits a moment before the next one, and
  is logged at most once per LOG_INTERVAL with a count;
- a URL (the request line's target) is read up to MAX_URL_BYTES (or
  --max-request-bytes, if less): the longest a legal GET collect can be. A longer one
  is answered 414 and closed as soon as that much of it is in, unparsed: a pixel's
  URL of 3 MB was read whole and parsed (its query too) before its event was refused
  for being over 16 KiB: 8-11 ms of the loop each;
- the request heads held at once (arriving, queued behind another request on the
  connection, or being answered) hold at most HEADS_HELD times the longest URL
  between them: aiohttp keeps each head whole, so a thousand connections sending long
  request lines (or pipelining 32 each behind a watch) held gigabytes. Past that, a
  connection whose head would hold more is answered 429 and closed;
- a body with a Content-Encoding, or chunked, left unread once its request is
  answered is not drained (aiohttp would read it, unpacked once, or parse it on the
  loop for the lingering time): the connection is closed; so is one the client waits to be asked
  for (Expect: 100-continue), which is asked for only once the call's key is checked
  (gateway._expect_later);
- an HTTP/1.0 request naming a Transfer-Encoding is answered 400, one naming a coding
  besides chunked 501, and its connection closed (see framing_refusal);
- a request of another version than HTTP/1.0 or 1.1 (aiohttp's parser also reads 0.9
  and "2.0" request lines, and its answer's status line said the same version back) is
  answered 505 in HTTP/1.1 and its connection closed, unread past its head; so is an
  HTTP/0.9 request line (no version: `GET /path`) that begins a connection, at once,
  where it waited for a head that never ends until the head deadline (see
  Connection._check_version, _check_first_line);
- a request line of HTTP/1.2 to 1.9 is read as HTTP/1.1 and answered in it, as RFC 9110
  §2.5 asks of a recipient that knows 1.1 (aiohttp's parser, llhttp, takes no minor
  version past 1 and answered 400 "Bad status line"), where the line begins the bytes of
  a head as they come (see Connection._read_minor_as_1_1);
- a request that cannot be read is answered in HTTP/1.1 (aiohttp answered it in 1.0);
- a request asking to switch protocols (`Connection: Upgrade`, as curl --http2 sends
  `Upgrade: h2c` to an http:// URL) is answered as any, switching to nothing, and its
  connection closed (Connection: close): aiohttp's parser drops the bytes that came
  behind such a request in the same read (unless it names websocket), so a request
  pipelined behind it was neither run nor answered, and the answer to the next one sent
  on the connection came in its place;
- a chunked body in chunks too small (more than FREE_FRAMING_BYTES of framing beyond
  1/FRAMING_SHARE of its data) is refused 400, the rest unparsed (see
  Connection._check_framing);
- a URL whose path is longer than MAX_PATH_BYTES or has more than MAX_PATH_SEGMENTS
  segments is answered 414, and a query of more than MAX_QUERY_PARAMETERS
  parameters 400, before aiohttp routes or parses it: routing takes time in the
  square of the path's segments (a 320 KB path of "a/" held the loop, gRPC's calls
  too, for 17 s; a 10 MiB one, which the long request lines above allow, for good),
  and a query parsed holds about 60 times its bytes (5 million empty parameters:
  3.6 s of the loop and 600 MB). A pixel's event goes in the query, never the path.

- the kernel holds at most UNSENT_BYTES of a connection's answer not yet sent (it
  took up to 4 MiB a connection, outside the budget below);
- an answer is sent within two bounds (see Connection.finish_response): its client
  must take each SEND_PIECE_BYTES of it within `send_timeout` seconds
  (--http-send-timeout), else the connection is closed and the answer let go; and a
  large one (over FREE_ANSWER_BYTES) counts against the budget of large answers
  (answers.Answers), its key's share too, until it is sent: one past it is answered
  429 instead. 30 connections of one key that asked for pages of 8 MB and read none
  held 381 MiB of them, for as long as they were kept open.

The body has a deadline of its own, kept by the gateway where it reads it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import itertools
import logging
import re
import socket
import ssl
import sys
import termios
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import http_exceptions, payload, streams, web, web_protocol, web_request
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion10, HttpVersion11, RawRequestMessage
from google.rpc import code_pb2, status_pb2

from server.errors import ResourceExhausted, to_rpc_status
from server.http import url_cache
from server.http.answers import ADVICE, WHAT
from server.http.budget import Budget, Hold
from server.http.errors import error_body, json_error
from server.http.transcode import malformed_escape
from server.policy import PUBLIC_KEY_LINES, LineBudget
from server.ports import ip_prefix
from server.retail.collect import GET_EVENT_CHARS, MAX_URI_CHARS

log = logging.getLogger(__name__)

LOG_INTERVAL = 60.0  # seconds between two reports of the same trouble
# How an HTTP/2 connection begins (RFC 9113 §3.4): a gRPC client given the HTTP port
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n"
ACCEPT_RETRY = 0.1  # seconds to wait after a failed accept (the cause rarely clears sooner)


def _closing_answer(status_line: str, status: status_pb2.Status, retry: bool) -> bytes:
    """A whole HTTP/1.1 answer with Google's JSON error, that closes its connection:
    written straight to a socket or transport, with no request aiohttp read."""
    body = error_body(status, int(status_line.split()[0]))
    retry_after = "Retry-After: 1\r\n" if retry else ""
    return (f"HTTP/1.1 {status_line}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"X-Content-Type-Options: nosniff\r\n{retry_after}Connection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body


REFUSAL = _closing_answer("503 Service Unavailable", status_pb2.Status(
    code=code_pb2.UNAVAILABLE, message="too many open connections to this server; retry later"),
    retry=True)
ADDRESS_REFUSAL = _closing_answer("503 Service Unavailable", status_pb2.Status(
    code=code_pb2.UNAVAILABLE, message="too many open connections from this address "
    "(--http-max-connections-per-address); close one, or retry later"), retry=True)
# At the cap, a newcomer is let in in the place of the connection that has waited
# longest for a request, if it has waited this many seconds (GuardedSite._make_room):
# refused instead, four client addresses (an IPv6 client has as many /64s as it likes)
# opening --http-max-connections-per-address each and sending nothing had every other
# client refused 503, each connection opened again as its head deadline closed it.
ROOM_AFTER = 1.0
# ... or, failing one, in the place of a connection whose request body has come slower
# than this many bytes a second since the server began to read it (ROOM_AFTER at
# least, and never while the server itself has paused its reading): it is answered 408
# and closed (GuardedSite._cut_slow). Only SLOW_BODY_LOOK are looked at a time (no
# walk of every open one), those looked at longest ago first. Four client addresses
# holding their share each of POSTs trickling a byte now and then, until
# --http-body-timeout, had every other client refused 503 meanwhile.
MIN_BODY_RATE = 8 * 1024
SLOW_BODY_LOOK = 64
# ... and so, answered 408 no more but closed, in the place of one whose client takes
# its answer slower than this (the answer waiting for it ROOM_AFTER at least): four
# addresses holding their share each of connections that pipelined 20 requests of
# /console/app.js (no key needed) and took 64 KiB of the answers every 20 s, within
# --http-send-timeout, had every other client refused 503 for as long.
MIN_SEND_RATE = MIN_BODY_RATE
# What a TLS client taking the rest of its answers at that pace may be behind by at any
# moment (see _slack): it takes a record whole (up to 16 KiB and its framing), then nothing
# while it reads it. One taking 12 pipelined answers at 10 KiB a second, a record each
# 1.6 s, closed to make room just after it took one, took nothing in the first second of
# the close and was aborted: 7 answers of 12 came (Connection.slow_closing); one that
# took one just before its last answer was done was aborted as room was made a second
# later, the rest dropped (Connection.slow_tail).
TAKEN_SLACK = 17 * 1024
# A connection closed to make room whose client takes the rest of its answers at an
# honest pace is closed once they are sent, counted outside the cap until it is gone (see
# GuardedSite._make_room): at most 1/TAILS_SHARE of the cap are at once (at least one),
# within the quarter of the descriptors the caps leave (descriptors.DESCRIPTOR_SHARE).
# Each is bounded by its client address's share (an IPv6 client's /64), not by the
# number of addresses: a client of as many addresses as it liked, taking its answers at
# 12 KiB a second, had 80 such connections open at a cap of 16, and at a file descriptor
# limit of 64 (16 HTTP and 16 gRPC connections) the HTTP port's accepts failed (EMFILE).
TAILS_SHARE = 4
# Request heads held at once (see GuardedSite.hold_heads) hold at most this many times
# the longest URL (max_line_size: url_limit) between them, beyond
# the first FREE_HEAD_BYTES of each connection's: ordinary heads never wait for room,
# only long ones (a pixel of a large event) share it.
HEADS_HELD = 16
FREE_HEAD_BYTES = 64 * 1024
# A body sent with these is not drained once its request is answered (see
# Connection._handle_request): draining it costs the loop far more than its bytes, or
# (Expect) the client waits to be asked for it.
_NOT_DRAINED = frozenset({"Content-Encoding", "Transfer-Encoding", "Expect"})
# The longest path and the most segments a URL may have: Footfall's longest names (a
# product of a v2alpha branch, each segment at its 255-character bound, percent-encoded)
# stay well within both; routing such a path costs microseconds.
MAX_PATH_BYTES = 8 * 1024
MAX_PATH_SEGMENTS = 256
# A request target in absolute form (RFC 9112 §3.2.2), which a server must accept
_ABSOLUTE_FORM = re.compile(r"https?://", re.IGNORECASE)
# The most query parameters a request may have (a pixel has a handful, a list call a
# dozen).
MAX_QUERY_PARAMETERS = 1_000
# The longest URL read: that of the longest legal GET collect (no other request carries
# as much in its URL). Its event holds at most GET_EVENT_CHARS characters and its `uri`
# MAX_URI_CHARS, each character up to 4 bytes of UTF-8 and each byte percent-encoded
# as 3: 12 bytes a character (an event in ASCII takes 3 a character, 48 KiB). Beside
# them its path (MAX_PATH_BYTES) and 4 KiB for the parameters' names, `ets`, `key` and
# the system parameters: 268,896 bytes in all.
MAX_URL_BYTES = MAX_PATH_BYTES + 12 * (GET_EVENT_CHARS + MAX_URI_CHARS) + 4 * 1024
HEADS_REFUSAL = _closing_answer("429 Too Many Requests", status_pb2.Status(
    code=code_pb2.RESOURCE_EXHAUSTED,
    message="the server holds too many long request heads (request lines and headers) "
            "at once; retry shortly, or send a large event as a POST body"), retry=True)
# The HTTP versions served; a request of another is answered 505 (see _version_refusal).
SERVED_VERSIONS = frozenset({HttpVersion10, HttpVersion11})
# How a request line of a later minor version of HTTP/1 ends (RFC 9112 §2.3: one digit
# each side of the dot): read as HTTP/1.1 (see Connection._read_minor_as_1_1).
_LATER_MINOR = re.compile(rb" HTTP/1\.[2-9]\Z")
_LATER_MINOR_TAIL = len(b" HTTP/1.2")
_LINE_BREAKS = frozenset(b"\r\n")
# What aiohttp reads a request it cannot read as (web_protocol.ERROR, HTTP/1.0, its
# answer's status line said HTTP/1.0 too), made HTTP/1.1: this server speaks 1.1.
_UNREADABLE_REQUEST = web_protocol.ERROR._replace(version=HttpVersion11, should_close=True)
# An HTTP/0.9 request line: a method and a target, no version (RFC 1945 §4.1).
_SIMPLE_REQUEST = re.compile(rb"[A-Z]{1,20} \S+")
# The longest first line of a connection looked at for an HTTP/0.9 request line (one
# that arrives in pieces is kept meanwhile): a longer one is left to aiohttp.
_FIRST_LINE_BYTES = 1024
# What a plain http:// request to the port that speaks TLS (--tls-cert) is answered:
# the handshake it cannot make ended in an empty reply, which told the caller nothing.
PLAIN_REFUSAL = _closing_answer("400 Bad Request", status_pb2.Status(
    code=code_pb2.INVALID_ARGUMENT,
    message="this port speaks TLS (--tls-cert): send the request with https://, not http://"),
    retry=False)
TLS_HANDSHAKE = 0x16  # the first byte of every TLS record that starts a handshake
# What a client must take of an answer waiting to be sent (or all that is left of it)
# within --http-send-timeout, each time, to keep its connection.
SEND_PIECE_BYTES = 64 * 1024
# What the kernel holds at most of an answer not yet sent (see _bound_unsent). By
# default it took up to its send buffer's 4 MiB a connection on loopback, outside the
# budget of large answers: 40 clients that asked for a page of 3.4 MiB and read none
# of it held 136 MiB in the kernel's send queues, 6 MiB with this bound.
UNSENT_BYTES = 128 * 1024
# What a TLS connection's buffer holds at most of its answers before writing pauses, as
# the TCP transports do (64 KiB): TLS transports (uvloop's, asyncio's) pause only at
# 512 KiB (FLOW_CONTROL_HIGH_WATER_SSL_WRITE), and a client pipelining 60
# /console/app.js (no key needed) and taking none had 542 KB held for it until
# --http-send-timeout, 81 KB over plain HTTP.
TLS_BUFFER_BYTES = 64 * 1024
# Answers larger than this count against the budget of large answers while they are
# sent (ordinary answers never wait for room); below it, what connections that do not
# read hold is bounded by their number and --http-send-timeout.
FREE_ANSWER_BYTES = 64 * 1024
# What a client that sends Expect: 100-continue waits for before it sends its body.
CONTINUE_EXPECTED = "100-continue"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# A chunked body may come with this many bytes of chunk framing (size lines and line
# breaks), and an eighth of its data more: past that its chunks are too small (see
# Connection._check_framing).
FREE_FRAMING_BYTES = 64 * 1024
FRAMING_SHARE = 8
# The key a routed call was made with ("" for none): the holder of its bytes (see
# budget.Budget).
HOLDER = web.RequestKey("footfall.holder", str)


class SmallChunks(Exception):
    """A chunked request body framed in chunks too small to be worth parsing."""


class SlowBody(Exception):
    """A request body cut, at the connection cap, for coming slower than MIN_BODY_RATE
    (see GuardedSite._cut_slow)."""


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


class Connection(web.RequestHandler):
    """aiohttp's protocol for one connection, counted. Its keep-alive timer, set
    to the header timeout, is the head deadline: aiohttp (from 3.14.5) arms it at
    accept and again at the end of each response, bytes arriving do not move it,
    and when it fires a connection still waiting for a complete head is closed.
    So a request costs nothing extra here.

    The bytes of its request heads are counted (`GuardedSite.hold_heads`) from
    their arrival until their request is answered: a head arriving, the heads
    aiohttp queued behind the request being answered (it parses up to 32 ahead),
    and the one being answered. Bytes of a body are not (the gateway counts them,
    and aiohttp stops reading a body no one reads)."""

    __slots__ = ("_site", "made", "address", "_lost", "_arriving", "_heads", "_held", "_body",
                 "_answered", "_unreadable", "_http2", "_send_watch", "_unsent",
                 "_framed", "_handling", "_admitted", "_wrong_version", "_first_line",
                 "_line_end", "_head_tail", "waiting_since", "_reading", "_read_from",
                 "_read_base", "_send_from", "_send_base", "wire", "closing_since",
                 "_closing", "_closing_base", "_gone")

    def __init__(self, site: GuardedSite, manager: web.Server, **kwargs: Any) -> None:
        # A body left unread after the answer is drained for as long, no longer.
        super().__init__(manager, keepalive_timeout=site.header_timeout,
                         lingering_time=site.header_timeout, **kwargs)
        self._site = site
        self.made = False  # connection_made was called
        # When it began to wait for a request (accepted, or its last one answered): the
        # one waiting longest makes room at the cap (see GuardedSite._make_room)
        self.waiting_since = 0.0
        self.address: str | None = None  # counted by it in the site (see GuardedSite._accept)
        self._lost: list[Callable[[], Any]] = []  # called when the connection is lost
        self._arriving = 0  # bytes of the head that is arriving
        self._heads: collections.deque[int] = collections.deque()  # of those unanswered
        self._held = 0  # the two together
        self._body: streams.StreamReader | None = None  # of the last head in
        self._answered: streams.StreamReader | None = None  # of the last request answered
        self._unreadable = False  # a head came that aiohttp could not read (see data_received)
        self._http2 = False  # it began with HTTP/2's preface: a gRPC client at this port
        self._send_watch: asyncio.TimerHandle | None = None  # while writing is paused
        # Of a chunked body being read: the bytes that came for it less those of data
        # that came with its head (None: no such body; see _check_framing)
        self._framed: int | None = None
        self._handling: web_request.BaseRequest | None = None  # the request being answered
        # The bytes its answer holds in the budget of large answers, let in to be written
        # as JSON (answers.Answers.render): let go once the request is done (see keep).
        self._admitted: Hold | None = None
        self._unsent = 0  # bytes waiting to be sent when the watch last looked
        # A request of a version not served, as aiohttp reads it (made HTTP/1.1, so that
        # its refusal is said in HTTP/1.1), and the version it came with
        self._wrong_version: tuple[RawRequestMessage, str] | None = None
        # The connection's first line while it arrives (None once it ended, or too long)
        self._first_line: bytes | None = b""
        # The last bytes of a request line while it arrives (None: none is arriving, or
        # it is not known to be one; see _read_minor_as_1_1)
        self._line_end: bytes | None = b""
        # The last two bytes of the heads' data before this data (a head's end is seen
        # across two writes)
        self._head_tail = b""
        # The body the gateway is reading (None: none), since when its pace is measured
        # (the read began, or the server last resumed reading it) and its bytes then
        self._reading: streams.StreamReader | None = None
        self._read_from = 0.0
        self._read_base = 0
        # Since when its answer waits for its client (writing paused), and what it had
        # taken then (_taken)
        self._send_from = 0.0
        self._send_base = 0
        # Its transport until the connection is lost (aiohttp lets go of its own as it
        # closes one, while a close waits to send what waits: see GuardedSite._make_room)
        self.wire: asyncio.Transport | None = None
        # Since when the server closes it (aiohttp: at the head deadline, after a closing
        # answer, on an error), its transport then and what its client had taken (see
        # _closes); and whether it is gone (connection_lost)
        self.closing_since = 0.0
        self._closing: asyncio.Transport | None = None
        self._closing_base: int | None = None
        self._gone = False
        # A request aiohttp could not read is answered in HTTP/1.1 (see _UNREADABLE_REQUEST)
        made = self._request_factory
        assert made is not None  # (None only once the connection is lost)
        self._request_factory = lambda message, *rest: made(
            _UNREADABLE_REQUEST if message is web_protocol.ERROR else message, *rest)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if transport.get_extra_info("sslcontext") is not None:  # (uvloop's, or asyncio's)
            transport.set_write_buffer_limits(high=TLS_BUFFER_BYTES)  # type: ignore[attr-defined]
        super().connection_made(transport)
        self.wire = self.transport
        self.made = True
        self.waiting_since = self._loop.time()
        self._site.opened(self)

    @property
    def waiting(self) -> bool:
        """Whether it waits for a request: none is being answered or queued (a head
        may be arriving)."""
        return not self._heads and not self._request_in_progress

    def reads_body(self, body: streams.StreamReader | None) -> None:
        """The gateway begins (a body) or ends (None) to read a request's body: while
        it reads, a body slower than MIN_BODY_RATE may be cut at the cap."""
        self._reading = body
        self._read_from, self._read_base = self._loop.time(), \
            body.total_raw_bytes if body is not None else 0
        self._site.reads_body(self, body is not None)

    def slow_body(self, now: float) -> bool:
        """Whether the body being read has come slower than MIN_BODY_RATE for
        ROOM_AFTER at least, the server reading all the while."""
        body = self._reading
        if body is None or body.is_eof() or self._reading_paused \
                or self._buffer_paused:
            return False
        took = now - self._read_from
        return took >= ROOM_AFTER and body.total_raw_bytes - self._read_base < MIN_BODY_RATE * took

    def cut_body(self) -> None:
        """Its body's reader meets SlowBody: the gateway answers 408, closing the
        connection."""
        body = self._reading
        assert body is not None
        body.set_exception(SlowBody(
            f"the request body came slower than {MIN_BODY_RATE:,} bytes a second while the "
            f"server had no room for another connection ({body.total_raw_bytes:,} bytes "
            f"in {self._loop.time() - self._read_from:.1f} s)"))
        self._unreadable = True  # (the rest is not parsed; the 408 closes the connection)

    def cut(self) -> None:
        """Gone at once, to make room at the cap: aborted, not closed. Over TLS a close
        waits for the client's close_notify (up to 30 s, asyncio's ssl_shutdown_timeout),
        which a client holding its place never sends: its descriptor stayed open, and
        counted, as long. What was written (a 408) is the kernel's to send already."""
        wire = self.wire
        self.force_close()  # (aiohttp reads no more requests of it)
        if wire is not None:
            wire.abort()

    def slow_tail(self, now: float) -> bool:
        """Whether the rest of its answers waits for its client still, taken slower than
        MIN_SEND_RATE since they were done (or writing last paused), over TLS
        TAKEN_SLACK behind."""
        wire = self.wire
        return wire is not None and wire.get_write_buffer_size() > 0 and _taken(wire) \
            - self._send_base + _slack(wire) < MIN_SEND_RATE * (now - self._send_from)

    async def start(self) -> None:
        try:
            await super().start()
        finally:  # (a connection whose answer said Connection: close is closed as it ends)
            if self.transport is not None and self.transport.is_closing():
                self._closes(self.transport)

    def force_close(self) -> None:
        transport = self.transport
        super().force_close()  # (its transport closed, and let go of)
        if transport is not None:
            self._closes(transport)

    def _closes(self, transport: asyncio.Transport) -> None:
        """The server closes it: it is counted until it is gone, and over TLS that is
        once its client has taken what was left of its answer and sent its close_notify
        back, or 30 s after (ssl_shutdown_timeout); meanwhile it waits for no request.
        So a client that opened connections over TLS, sent nothing and never answered
        close_notify held each place about 40 s, not the head deadline's 10, and none
        of them was among those the cap could cut: now one may be, as a slow reader (see
        slow_closing)."""
        if self._closing is not None or self._gone:
            return
        self._closing = transport
        self.closing_since = self._loop.time()
        # (a plain one with nothing left to send goes at once: not measured, a syscall
        # of about 4 us spared)
        self._closing_base = _taken(transport) if transport.get_write_buffer_size() \
            or transport.get_extra_info("sslcontext") is not None else None
        self._site.closing(self)

    def slow_closing(self, now: float) -> bool:
        """Whether, closed by the server ROOM_AFTER ago at least, its client has taken
        what was left of its answer slower than MIN_SEND_RATE since, over TLS
        TAKEN_SLACK behind while some is left (a client left with nothing to take,
        only a close_notify to answer, takes nothing): what an honest reader takes of
        the tail of an answer that closed its connection is not cut. (A shorter
        ssl_shutdown_timeout would be simpler, but it bounds the time the tail may
        take: given 1 s, a client taking 12 answers of 17 KB at 48 KiB a second, the
        last closing, got 140,568 bytes of them, 8 answers.)"""
        transport, base = self._closing, self._closing_base
        took = now - self.closing_since
        if transport is None or took < ROOM_AFTER or base is None:
            return transport is not None and took >= ROOM_AFTER
        # (while some is left for the client to take)
        slack = _slack(transport) if _undelivered(transport) else 0
        return _taken(transport) - base + slack < MIN_SEND_RATE * took

    def watch_closing(self) -> None:
        """Closed to make room while its client takes the rest of its answers at an
        honest pace: aborted once it has taken it slower than MIN_SEND_RATE since (see
        slow_closing), looked at each ROOM_AFTER. A close waits to send the rest for
        ever, and aiohttp, closing it, let go of the transport --http-send-timeout
        watches: a client that stopped taking as room was made kept a descriptor for
        good, counted out of the cap (GuardedSite._making_room), one more each time."""
        def look() -> None:
            if self._gone:
                return
            if self.slow_closing(self._loop.time()):
                self.cut()
            else:
                self._loop.call_later(ROOM_AFTER, look)

        self._loop.call_later(ROOM_AFTER, look)

    def slow_send(self, now: float) -> bool:
        """Whether its client has taken its answer slower than MIN_SEND_RATE for
        ROOM_AFTER at least, since writing paused (over TLS, with the slack of a client
        taking a record at a time: writing pauses at 64 KiB there too, and a reader at
        10 KiB a second, 15 answers pipelined, was cut after 7 on a served port)."""
        transport = self.transport
        if transport is None or not self._paused:
            return False
        took = now - self._send_from
        return took >= ROOM_AFTER and \
            _taken(transport) - self._send_base + _slack(transport) < MIN_SEND_RATE * took

    def cut_send(self) -> None:
        """Closed, what waited for its client let go (aborted, as _check_sent does)."""
        self._site.sends_cut.note(
            f"HTTP: closed a connection whose client took its answer slower than "
            f"{MIN_SEND_RATE:,} bytes a second while the server had no room for another "
            f"connection")
        self.cut()

    def resume_reading(self, resume_parser: bool = True) -> None:
        paused = self._reading_paused  # (aiohttp calls this on every read of a body)
        super().resume_reading(resume_parser)
        if paused and self._reading is not None:  # (the server did not read meanwhile)
            self._read_from, self._read_base = self._loop.time(), self._reading.total_raw_bytes

    def data_received(self, data: bytes) -> None:
        if self._unreadable:
            # Its answer is the refusal, then the connection closes: the rest is not
            # parsed (aiohttp's parser, in error, wrote the repr of each 256 KiB read
            # into an error of its own: about 2 ms for the rest of a 3 MB URL).
            return
        body = self._body
        if (body is not None and not body.is_eof()) or self._force_close or self._close:
            before = self._request_count
            super().data_received(data)
            if self._request_count > before:
                # Heads that came with the end of the body are taken as any (unseen, one
                # of HTTP/2.0 was answered in it, and the chunk framing of its body was
                # never counted); where the next data begins is not known (b"").
                self._took_heads(self._request_count - before, b"")
                return
            if self._framed is not None and body is not None and not body.is_eof():
                self._framed += len(data)
                # (not while reading is paused: aiohttp's parser, paused as the body's
                # reader filled, keeps the rest of `data` unparsed until the handler
                # reads on, and those bytes, not yet counted as data, would be taken
                # for framing: a 1 MB body in chunks of 100 bytes was refused so once,
                # in CI, its handler slow to read on a busy machine)
                if not self._reading_paused:
                    self._check_framing(body)
            return
        if not self._hold(self._held + len(data)):
            self._refuse_heads()
            return
        if not self._request_count and not self._arriving:  # the connection's first bytes
            self._http2 = data.startswith(HTTP2_PREFACE)
        if self._line_end is not None:
            data = self._read_minor_as_1_1(data)
        if self._first_line is not None and self._check_first_line(data):
            return
        self._arriving += len(data)
        tail, self._head_tail = self._head_tail + data[-3:], (self._head_tail + data[-2:])[-2:]
        before = self._request_count
        super().data_received(data)
        if self._request_count > before:
            self._took_heads(self._request_count - before, tail)

    def _took_heads(self, came: int, tail: bytes) -> None:
        """The `came` whole heads data_received just parsed, taken in hand: each held
        (by its size) until answered, the last one's body followed. `tail`: the data's
        last bytes, from the bytes before it (whether a head ended it)."""
        if came == 1:  # (nearly always: no list made)
            message, self._body = self._messages[-1]
            self._heads.append(_head_bytes(message))
        else:
            messages = list(self._messages)[-came:]
            self._heads.extend(_head_bytes(message) for message, _ in messages)
            message, self._body = messages[-1]
        self._unreadable = not isinstance(message, RawRequestMessage)
        self._check_version(came)
        # A chunked body's framing is counted from the next data on (see
        # _check_framing): what came with the head is left out on both sides.
        self._framed = None
        if isinstance(message, RawRequestMessage) and message.chunked \
                and self._body is not None:
            self._framed = -self._body.total_raw_bytes
        # The rest of the data is a body, or the start of the next head (from
        # the next data on, that is counted).
        self._arriving = 0
        # The next data begins a request line only if this one ended with the
        # last head's end and no body follows it; else it may go on a head
        # pipelined behind (a header's value is no request line), or come after
        # a body: not looked at (see _read_minor_as_1_1).
        self._line_end = b"" if (self._body is None or self._body.is_eof()) \
            and tail.endswith((b"\n\r\n", b"\n\n")) else None
        self._hold(sum(self._heads))

    def _read_minor_as_1_1(self, data: bytes) -> bytes:
        """`data`, the next bytes of a request line, with the line's version made
        HTTP/1.1 if it says HTTP/1.2 to 1.9 and its minor digit is in `data`. RFC 9110
        §2.5: a recipient SHOULD read a later minor version of a major it implements as
        the highest minor it implements; llhttp refuses any but 1.0 and 1.1 as soon as
        it reads the digit (400, "Bad status line") and aiohttp has no setting for it.
        Only the end of the line is looked at: " HTTP/1.2" can only be its version (a
        target holds no space), and the parser reads the rest as it would. A line is
        looked at where its head begins the bytes of a data_received (a connection's
        first head, and each sent once the one before it, without a body, was read to
        the end of the data): a request a client pipelines behind another in the same
        write, or sends after a body, is refused as before (where the next data begins
        is not known then: a header's value of a head begun in the write before that
        ended in " HTTP/1.2" was made " HTTP/1.1")."""
        seen = self._line_end
        assert seen is not None
        start = 0
        while not seen and start < len(data) and data[start] in _LINE_BREAKS:
            start += 1  # (empty lines before a request line are allowed)
        # Where the line ends (find: memchr; a regex of [\r\n] took 1.2 ms on 260 KB)
        cut = data.find(b"\r", start)
        feed = data.find(b"\n", start, cut if cut >= 0 else len(data))
        cut = feed if feed >= 0 else cut
        ended = cut >= 0
        if not ended:
            cut = len(data)
        line = seen + data[max(start, cut - _LATER_MINOR_TAIL):cut]  # (its end)
        self._line_end = None if ended else line[-_LATER_MINOR_TAIL:]
        digit = cut - 1  # (where the line's last byte is, if in data)
        if digit < start or _LATER_MINOR.search(line) is None:
            return data  # (not of this version, or its digit was read already)
        if self._line_end is not None:
            self._line_end = self._line_end[:-1] + b"1"
        return data[:digit] + b"1" + data[digit + 1:]

    def _check_first_line(self, data: bytes) -> bool:
        """Whether the connection's first line, of which `data` is the next part, is
        an HTTP/0.9 request line (a method and a target, no version), now answered
        505 and the connection closed. HTTP/0.9 keeps no connection open, so such a
        line only ever begins one; aiohttp read it as the start of a head and waited
        for the rest until the head deadline, then closed without a word. A first
        line longer than _FIRST_LINE_BYTES is left to aiohttp."""
        seen = self._first_line
        assert seen is not None
        if not seen:
            data = data.lstrip(b"\r\n")  # (empty lines before a request line are allowed)
        end = data.find(b"\n", 0, _FIRST_LINE_BYTES + 1 - len(seen))
        if end < 0:
            more = len(seen) + len(data) <= _FIRST_LINE_BYTES
            self._first_line = seen + data if more else None
            return False
        self._first_line = None
        if _SIMPLE_REQUEST.fullmatch((seen + data[:end]).rstrip(b"\r")) is None:
            return False
        self._unreadable = True
        if self.transport is not None:
            self.transport.write(_version_answer("HTTP/0.9"))
        self.force_close()
        return True

    def _check_version(self, came: int) -> None:
        """The first of the `came` requests just read whose version is not served is
        made HTTP/1.1 for aiohttp to answer in, and noted: it is answered 505 and the
        connection closed (see _handle_request); nothing after it is read."""
        for index in range(len(self._messages) - came, len(self._messages)):
            message, body = self._messages[index]
            if isinstance(message, RawRequestMessage) and message.version not in SERVED_VERSIONS:
                said = f"HTTP/{message.version.major}.{message.version.minor}"
                message = message._replace(version=HttpVersion11, should_close=True)
                self._messages[index] = (message, body)
                self._wrong_version = (message, said)
                self._unreadable = True
                return

    def _check_framing(self, body: streams.StreamReader) -> None:
        """A chunked body whose chunk framing (size lines and line breaks: the bytes
        that came for it less the bytes of data) is over FREE_FRAMING_BYTES and
        1/FRAMING_SHARE of its data is refused: its reader meets SmallChunks, and the
        rest is not parsed (the connection closes after the answer). aiohttp's parser
        spends about 0.8 us of the loop on each chunk: 2 MB sent in chunks of one
        byte took 1.6 s of it. Chunks of 64 bytes and more, or fewer than about
        13,000 chunks of any size, are never refused."""
        data = body.total_raw_bytes
        framing = (self._framed or 0) - data
        if framing <= FREE_FRAMING_BYTES + data // FRAMING_SHARE:
            return
        self._framed = None
        self._unreadable = True
        body.set_exception(SmallChunks(
            f"the chunked request body came in chunks too small to read: {framing:,} bytes "
            f"of chunk framing for {data:,} bytes of data (at most {FREE_FRAMING_BYTES:,} "
            f"and 1/{FRAMING_SHARE} of the data); send it in larger chunks, or with a "
            f"Content-Length"))

    async def _handle_request(self, request: web_request.BaseRequest, start_time: float | None,
                              request_handler: Callable[[web_request.BaseRequest], Any]
                              ) -> tuple[web.StreamResponse, bool]:
        refusal = self._version_refusal(request) or url_refusal(request.raw_path) \
            or framing_refusal(request)
        if refusal is not None:  # answered without routing or parsing it (see above)
            # (answered at once whoever asked, 4 connections asking for /%ZZ in a loop
            # had 6,300 refused a second, and another client's durable writes fell from
            # 1,440 a second to 590)
            async def refuse(request: web_request.BaseRequest) -> web.Response:
                return await self._site.pace_refusal(request, refusal)

            request_handler = refuse
        self._handling = request
        self._site.answering(self)
        try:
            return await super()._handle_request(request, start_time, request_handler)
        finally:  # its head is let go (requests are answered in the order they came)
            self._handling = None  # (an answer written later is never sent: see keep)
            url_cache.answered(request.raw_path)
            self.waiting_since = self._loop.time()
            if self.wire is not None and self.wire.get_write_buffer_size():
                # (what its client takes of the rest is paced from now: see slow_tail)
                self._send_from, self._send_base = self.waiting_since, _taken(self.wire)
            self._site.waits(self)
            if self._admitted is not None:  # (its answer is sent, or never will be)
                self._admitted.let_go()
                self._admitted = None
            if not request.content.is_eof() and request.headers.keys() & _NOT_DRAINED:
                # A packed or chunked body left unread is not drained after the answer:
                # aiohttp read it, unpacking it when it unpacked bodies (the gateway
                # does since), or parsing it chunk by chunk, on the loop, as fast as it
                # comes, for the whole lingering time (4 connections sending gzip to
                # /healthz, no key needed, held every call of both transports up to
                # 11.8 s; in chunks of one byte, 2.1 s). Nor
                # is one the client waits to be asked for (Expect: 100-continue, see
                # gateway._expect_later) and was not, or that expected what the server
                # does not meet: it would wait for it as long.
                self.force_close()
            elif isinstance(request.content.exception(), SlowBody):  # (nor a body cut)
                self.cut()
            self._answered = request.content
            if self._heads:
                self._heads.popleft()
                self._hold(self._arriving + sum(self._heads))

    def _version_refusal(self, request: web_request.BaseRequest) -> web.Response | None:
        """505, closing the connection, for the request of a version not served (see
        _check_version); None for any other."""
        wrong = self._wrong_version
        # (the message it was made from: Request.message is deprecated, its attribute not)
        if wrong is None or request._message is not wrong[0]:
            return None
        return json_error(_version_status(wrong[1]), 505, closing=True)

    async def finish_response(self, request: web_request.BaseRequest,
                              resp: web.StreamResponse, start_time: float | None
                              ) -> tuple[web.StreamResponse, bool]:
        """Send `resp`; the body of a call's answer (a routed call's, whose key the
        gateway noted, "" for none) over FREE_ANSWER_BYTES is counted against the
        budget of large answers (its key's share too) until it is sent, or is
        answered 429 instead when they hold the room already. (Other pages, the
        largest /metrics, one page shared by the scrapes at a time, are bounded
        by the connections and --http-send-timeout: a client without a key must
        not fill the room of the answers of those with one.)"""
        if request._message.upgrade:  # (see the module's docstring)
            resp.force_close()
        answers, size, holder = self._site.answers, 0, None
        body = resp.body if isinstance(resp, web.Response) else None
        if isinstance(resp, web.Response) and isinstance(body, bytes) \
                and len(body) > FREE_ANSWER_BYTES and request.method != "HEAD":
            holder = request.get(HOLDER)
            try:
                if answers is not None and holder is not None:
                    holder = holder or None
                    # (one written as JSON within the budget is sent, whatever its
                    # JSON weighs: refused now, the work done would be lost)
                    answers.take(holder, len(body), WHAT, ADVICE,
                                 admitted=self._admitted is not None)
                    size = len(body)
                resp.body = _Pieces(body)  # (sent as it is, not copied whole into a buffer)
            except ResourceExhausted as exc:
                self._site.answers_refused.note(
                    f"HTTP: answered 429 instead of an answer of {len(body):,} bytes: the "
                    f"answers waiting to be sent hold the room of large answers "
                    f"({answers.room:,} bytes) or the key's share of it")  # type: ignore[union-attr]
                resp = _unsent_refusal(resp, exc)
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            if size:
                answers.give_back(holder, size)  # type: ignore[union-attr]

    def pause_writing(self) -> None:
        """The answer waits in our buffer for its client to take it: watched (see
        _check_sent)."""
        super().pause_writing()
        if self._send_watch is None and self.transport is not None:
            self._unsent = self.transport.get_write_buffer_size()
            self._send_from, self._send_base = self._loop.time(), _taken(self.transport)
            self._site.sends(self, True)
            self._send_watch = self._loop.call_later(self._site.send_timeout,
                                                     self._check_sent)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._site.sends(self, False)
        if self._send_watch is not None:
            self._send_watch.cancel()
            self._send_watch = None

    def _check_sent(self) -> None:
        """--http-send-timeout after writing paused, and again after each look: the
        client has taken SEND_PIECE_BYTES since (or all that was left), or its
        connection is closed and what waited for it let go (aborted: a close would
        wait to send it). What was written while paused would hide what the client
        took: the answers written in pieces wait for writing to go on (_Pieces, sse)."""
        self._send_watch = None
        transport = self.transport
        if transport is None or not self._paused:
            return
        unsent = transport.get_write_buffer_size()
        if unsent <= self._unsent - min(SEND_PIECE_BYTES, self._unsent):
            self._unsent = unsent
            self._send_watch = self._loop.call_later(self._site.send_timeout,
                                                     self._check_sent)
            return
        self._site.sends_cut.note(
            f"HTTP: closed a connection whose client took less than {SEND_PIECE_BYTES:,} "
            f"bytes of its answer in {self._site.send_timeout:g} s (--http-send-timeout)")
        transport.abort()

    def _hold(self, held: int) -> bool:
        """Hold `held` bytes of heads now; False (and nothing changed) when the
        server has no room for that many more. (Within FREE_HEAD_BYTES, before and
        after, the site has nothing to count: most requests.)"""
        if (held > FREE_HEAD_BYTES or self._held > FREE_HEAD_BYTES) \
                and not self._site.hold_heads(self._held, held):
            return False
        self._held = held
        return True

    def _refuse_heads(self) -> None:
        """429 and close: the server holds as many heads as it may."""
        self._site.heads_refused.note(
            f"HTTP: refusing long request heads: {self._site.head_budget} bytes of them "
            f"are held (beyond {FREE_HEAD_BYTES} a connection)")
        transport = self.transport
        if transport is not None and not self._heads and not self._request_in_progress:
            transport.write(HEADS_REFUSAL)  # (else mid-answer: just closed)
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.wire = None
        self._gone = True  # (aiohttp closes it again, below: not closing then)
        self._closing = None
        self._site.closed(self)
        if self._send_watch is not None:
            self._send_watch.cancel()
            self._send_watch = None
        self._heads.clear()
        self._arriving = 0
        self._hold(0)
        for call in self._lost:
            call()
        self._lost.clear()
        # After an answer aiohttp reads what is left of a body no one read, for up to
        # lingering_time; a caller gone meanwhile sends none of it, yet aiohttp's task
        # waited the whole time, and a stop meanwhile dropped it still pending (an
        # ERROR, "Task was destroyed but it is pending!", whenever it was collected).
        body, task = self._answered, self._task_handler
        lingering = body is not None and not body.is_eof()
        super().connection_lost(exc)
        if lingering and task is not None:
            task.cancel()

    def when_lost(self, call: Callable[[], Any]) -> Callable[[], None]:
        """Call `call` if the connection is lost; the function that stops that."""
        self._lost.append(call)

        def forget() -> None:
            with contextlib.suppress(ValueError):
                self._lost.remove(call)

        return forget

    def handle_error(self, request: web_request.BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not read, as Google's JSON error
        (aiohttp's is plain text, and quotes what the client sent): 400, or 414 for
        a URL over the limit, which it says."""
        limit = self._site.url_limit
        if not isinstance(exc, http_exceptions.LineTooLong) or exc.args[1] != limit:
            answer = super().handle_error(request, status, exc, message)
            if not isinstance(exc, http_exceptions.HttpProcessingError):
                return answer  # (a bug of ours: said as aiohttp says it)
            return json_error(http=answer.status, status=status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT,
                message=f"the request cannot be read as HTTP/1.1: {_unreadable(exc)}"),
                closing=True)
        peer = self._peer()
        if self._site.unreadable_lines.take(ip_prefix(peer)):
            log.info("a request whose URL is over %d bytes, from %s, was answered 414",
                     limit, peer)
        return json_error(http=414, status=status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT,
            message=f"the URL is longer than the {limit:,} bytes this server reads ("
                    f"{'its --max-request-bytes; ' if limit < MAX_URL_BYTES else ''}a GET "
                    f"collect carries at most {GET_EVENT_CHARS:,} characters of event); POST "
                    f"a larger event to the same URL, as JSON"), closing=True)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        error = kw.get("exc_info")
        # A body that does not unpack (its Content-Encoding lies) was answered 400
        # already; aiohttp meets the error again draining what is left, and closes.
        if isinstance(error, web_protocol.RequestPayloadError):
            return
        # A request aiohttp cannot read (a header line without a colon, a header
        # twice that may be there once, a Content-Encoding it cannot undo) is the
        # client's fault, answered 400 by aiohttp: a line of its own, not an ERROR
        # with a traceback that any client could have the log fill with.
        if isinstance(error, http_exceptions.HttpProcessingError):
            peer = self._peer()
            if not self._site.unreadable_lines.take(ip_prefix(peer)):
                return
            if self._http2:  # (aiohttp says "Pause on PRI/Upgrade:", or "*")
                log.info("an HTTP/2 connection from %s, a gRPC client's most likely, reached "
                         "the HTTP port and was answered 400: gRPC goes to the gRPC port "
                         "(--port, the 'Footfall serving gRPC on' line)", peer)
                return
            said = str(error.message or type(error).__name__).strip().splitlines()
            log.info("an unreadable HTTP request from %s was answered 400: %s",
                     peer, said[0][:200] if said else "")
            return
        super().log_exception(*args, **kw)

    def _peer(self) -> str:
        """The client's address, or "?"."""
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return str(peer[0]) if peer else "?"


class GuardedSite(web.BaseSite):
    """A TCP site with our accept loop: the connection cap, the head deadline, and
    accept errors that neither spin nor flood the log."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 header_timeout: float, max_connections: int,
                 handler_args: dict[str, Any], ssl_context: ssl.SSLContext | None = None,
                 backlog: int = 128, reuse_port: bool = False,
                 answers: Budget | None = None, send_timeout: float = 30.0,
                 per_address: int = 0) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        # One client address's connections at most (0: no bound): one client without a
        # key held all 1,000 by opening them again as each head deadline closed them,
        # and most other clients' connections were refused 503 meanwhile.
        self.per_address = per_address
        # The answer of a request refused here for its URL, given the request and the
        # refusal (the gateway paces a caller without a key past its address's budget,
        # as a refusal of its own: see Gateway._open); by default the refusal at once.
        self.pace_refusal: Callable[[web_request.BaseRequest, web.Response],
                                    Awaitable[web.Response]] = _at_once
        self._by_address: dict[str, int] = {}  # open or pending connections, of holders only
        self._handler_args = handler_args
        self._reuse_port = reuse_port  # --processes: the port is shared on purpose
        self._listeners: list[socket.socket] = []
        self._connecting: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._open: set[Connection] = set()
        self._making_room: set[Connection] = set()  # closed by _make_room, not gone yet
        # Those of them closed once the rest of their answers is sent (see _make_room)
        self._tails: set[Connection] = set()
        # The open connections waiting for a request, the one waiting longest first
        self._waiting: dict[Connection, None] = {}
        # The connections whose request body the gateway reads, and those whose answer
        # waits for their client to take it (writing paused): the first to begin, or
        # looked at longest ago (_first_slow), first
        self._reading: dict[Connection, None] = {}
        self._sending: dict[Connection, None] = {}
        # The connections the server closes, not gone yet: the first closed, or looked at
        # longest ago (_cut_closing), first
        self._closing: dict[Connection, None] = {}
        self.room_after = ROOM_AFTER
        self._pending = 0  # accepted, not connected yet (a TLS handshake, say)
        # Over TLS, the tasks of those pending (their handshake not done), the first
        # accepted first, with when and their connection once made; and those of them
        # cut to make room (see _cut_handshake), counted out of the cap until they end
        self._handshakes: dict[asyncio.Task[None], tuple[float, list[Connection]]] = {}
        self._handshakes_cut: set[asyncio.Task[None]] = set()
        self.refused = RateLimitedLog(log)
        self.refused_by_address = RateLimitedLog(log)  # (the last address said)
        self.accept_errors = RateLimitedLog(log)
        self.url_limit = int(handler_args.get("max_line_size", 8190))
        self.head_budget = HEADS_HELD * self.url_limit
        self.head_bytes = 0  # of heads held, beyond each connection's FREE_HEAD_BYTES
        self.heads_refused = RateLimitedLog(log)
        self.answers = answers  # large answers' bytes, being sent among them
        self.answers_refused = RateLimitedLog(log)
        # The lines of requests that cannot be read (HTTP/2 at this port, a URL too long,
        # a head aiohttp cannot parse), of one client address: each comes on a connection
        # of its own, before any key, and one client looping on 4 connections had 1,700
        # such lines a second logged (400 KB/s, 1.4 GB an hour).
        self.unreadable_lines = LineBudget(PUBLIC_KEY_LINES, "unreadable HTTP requests",
                                           " from one client address", counted="")
        self.send_timeout = send_timeout
        self.sends_cut = RateLimitedLog(log)

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
        self._listeners = _listen(self._host, self._port, self._backlog, self._reuse_port)
        self._watch(True)

    async def stop(self) -> None:
        self._watch(False)
        if self._retry is not None:
            self._retry.cancel()
        for sock in self._listeners:
            sock.close()
        for task in self._connecting:
            task.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        self.refused.flush()
        self.refused_by_address.flush()
        self.accept_errors.flush()
        self.heads_refused.flush()
        self.answers_refused.flush()
        self.sends_cut.flush()
        await super().stop()  # the open connections are the runner's to drain

    def opened(self, connection: Connection) -> None:
        self._pending -= 1  # the same moment, so it is never counted twice
        self._open.add(connection)
        self.waits(connection)

    def closed(self, connection: Connection) -> None:
        self._making_room.discard(connection)
        self._tails.discard(connection)
        self._closing.pop(connection, None)
        self._waiting.pop(connection, None)
        self._reading.pop(connection, None)
        self._sending.pop(connection, None)
        if connection in self._open:
            self._open.discard(connection)
            self._let_go(connection.address)

    def answering(self, connection: Connection) -> None:
        """`connection` begins to answer a request: it waits for none."""
        self._waiting.pop(connection, None)

    def waits(self, connection: Connection) -> None:
        """`connection` waits for a request from now (accepted, or answered), unless
        it is closed: an answer its client left during (a watch) ends after `closed`,
        and put back here, the connection was held for good."""
        self._waiting.pop(connection, None)
        if self._may_make_room(connection):
            self._waiting[connection] = None  # (the newest last)

    def closing(self, connection: Connection) -> None:
        """The server closes `connection` (see Connection._closes): it waits for no
        request, reads no body and sends no answer of its own any more."""
        self._waiting.pop(connection, None)
        self._reading.pop(connection, None)
        self._sending.pop(connection, None)
        if self._may_make_room(connection):
            self._closing[connection] = None  # (the newest last)

    def reads_body(self, connection: Connection, reading: bool) -> None:
        """`connection`'s request body begins (`reading`) or ends to be read."""
        self._reading.pop(connection, None)
        if reading and self._may_make_room(connection):
            self._reading[connection] = None

    def sends(self, connection: Connection, paused: bool) -> None:
        """`connection`'s answer waits (`paused`) or no longer waits for its client."""
        self._sending.pop(connection, None)
        if paused and self._may_make_room(connection):
            self._sending[connection] = None

    def _may_make_room(self, connection: Connection) -> bool:
        """Whether `connection` may be cut to make room (as it waits, reads or sends):
        it is open, and was not cut already (a body cut whose 408 then waited for its
        client would be cut again, and its newcomer let in with no room made), nor
        closed by the server (it may be cut as closing only: see _cut_closing)."""
        return connection in self._open and connection not in self._making_room \
            and connection not in self._closing

    def _cut_closing(self, now: float) -> bool:
        """At the cap: cut the first connection the server closed ROOM_AFTER ago at
        least (of the SLOW_BODY_LOOK looked at longest ago) whose client has taken the
        rest of its answer slower than MIN_SEND_RATE since, or has nothing left to take
        but never answered close_notify (TLS); whether one was. Its place is the
        newcomer's. Those looked at go to the back (see _first_slow): SLOW_BODY_LOOK
        clients taking the long tails of their `Connection: close` answers at an honest
        pace, closed first, kept those behind them that took nothing from ever being
        cut, and every newcomer was refused for as long."""
        oldest_allowed = now - self.room_after
        connection = _first_slow(self._closing, lambda each: each.closing_since
                                 <= oldest_allowed and each.slow_closing(now))
        if connection is None:
            return False
        self._making_room.add(connection)
        connection.cut()
        return True

    def _cut_slow(self) -> bool:
        """At the cap, with no connection waiting long enough for a request: cut the
        first (of the SLOW_BODY_LOOK looked at longest ago) whose body comes slower than
        MIN_BODY_RATE, or else whose client takes its answer slower than MIN_SEND_RATE;
        whether one was. Its place is the newcomer's."""
        now = asyncio.get_running_loop().time()
        connection = _first_slow(self._reading, lambda each: each.slow_body(now))
        if connection is not None:
            self._making_room.add(connection)
            connection.cut_body()
            return True
        connection = _first_slow(self._sending, lambda each: each.slow_send(now))
        if connection is not None:
            self._making_room.add(connection)
            connection.cut_send()
            return True
        return False

    def _make_room(self) -> bool:
        """At the cap: close the connection that has waited longest for a request,
        if it has waited ROOM_AFTER at least (one being answered never is); whether
        one was. Its place is the newcomer's (it counts until it is gone). The
        connections waiting are kept in the order they began to: looking costs no
        walk of every open one (a flood of connections at the cap comes here for
        each). Before them, one the server closed already that lingers (see
        _cut_closing): cutting it takes nothing from anyone. One whose client still
        takes the rest of its answers at an honest pace is closed once they are sent,
        counted outside the cap meanwhile: while the cap's 1/TAILS_SHARE are, such
        connections are passed over (SLOW_BODY_LOOK of them at most)."""
        now = asyncio.get_running_loop().time()
        if self._cut_closing(now):
            return True
        full = len(self._tails) >= max(1, self.max_connections // TAILS_SHARE)
        passed = 0
        for connection in self._waiting:
            if connection.waiting_since > now - self.room_after:
                break
            wire = connection.wire
            if not connection.waiting or wire is None:
                continue
            tail = _undelivered(wire) and not connection.slow_tail(now)
            if not (tail and full):
                self._close_waiting(connection, wire, tail)
                return True
            passed += 1
            if passed == SLOW_BODY_LOOK:
                break
        return self._cut_handshake(now) or self._cut_slow()

    def _close_waiting(self, connection: Connection, wire: asyncio.Transport,
                       tail: bool) -> None:
        """Close `connection`, waiting for a request, to make room: once the rest of
        its answers is sent if `tail` (watched, and counted among the tails until it is
        gone), else at once."""
        del self._waiting[connection]
        self._making_room.add(connection)
        if tail:
            # (the rest of its answers, taken at an honest pace: sent before it closes)
            self._tails.add(connection)
            connection.force_close()
            wire.close()
            connection.watch_closing()
        else:
            # (nothing left to deliver, and over TLS a close would wait for a close_notify;
            # or a close would wait to send the rest to a client that takes it slower than
            # MIN_SEND_RATE, or not at all, counted out of the cap all the while)
            connection.cut()

    def _cut_handshake(self, now: float) -> bool:
        """At the cap, with no connection waiting long enough for a request: cut the
        TLS connection accepted ROOM_AFTER ago at least, the first, whose handshake is
        not done (its client sent nothing, or not all of it); whether one was. Its place
        is the newcomer's. Counted (pending) from accept and waiting for no request,
        such a connection was never cut: 8 that sent nothing at a cap of 8, opened
        again as the handshake's time (--http-header-timeout) ran out, had every
        newcomer refused for good."""
        for task, (since, made) in self._handshakes.items():
            if since > now - self.room_after:
                return False  # (nor any accepted after it)
            if not made or not made[0].made:  # (else made, not yet let go of)
                del self._handshakes[task]
                self._handshakes_cut.add(task)
                task.cancel()  # (its socket closed and let go of as it ends: see _connect)
                return True
        return False

    def _let_go(self, address: str | None) -> None:
        """One connection fewer of `address` (None: not counted by address)."""
        if address is not None:
            held = self._by_address.pop(address) - 1
            if held:
                self._by_address[address] = held

    def hold_heads(self, was: int, now: int) -> bool:
        """A connection that held `was` bytes of request heads holds `now`: whether
        there is room (always, for fewer), counting what is beyond FREE_HEAD_BYTES."""
        more = max(now - FREE_HEAD_BYTES, 0) - max(was - FREE_HEAD_BYTES, 0)
        if more > 0 and self.head_bytes + more > self.head_budget:
            return False
        self.head_bytes += more
        return True

    def _watch(self, on: bool) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            if on:
                loop.add_reader(sock.fileno(), self._accept, sock)
            else:
                loop.remove_reader(sock.fileno())

    def _accept(self, listener: socket.socket) -> None:
        """On a readable listener: take what is waiting (up to a backlog's worth, so
        the loop gets to its other work)."""
        for _ in range(self._backlog):
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ECONNABORTED, ...
                self.accept_errors.note(f"HTTP: cannot accept a connection: {exc}")
                # The connection stays queued, so the listener stays readable:
                # look again in a while, not at once.
                self._watch(False)
                self._retry = asyncio.get_running_loop().call_later(
                    ACCEPT_RETRY, self._watch, True)
                return
            address = None
            if self.per_address and sock.family in (socket.AF_INET, socket.AF_INET6):
                address = ip_prefix(peer[0])
                if self._by_address.get(address, 0) >= self.per_address:
                    self.refused_by_address.note(
                        f"HTTP: refusing connections of {address}: it has {self.per_address} "
                        f"open (--http-max-connections-per-address)")
                    _refuse(sock, ADDRESS_REFUSAL)
                    continue
            if self.open_connections - len(self._making_room) - len(self._handshakes_cut) \
                    >= self.max_connections and not self._make_room():
                self.refused.note(f"HTTP: refusing connections: {self.max_connections} are "
                                  f"open (--http-max-connections), none of them waiting for "
                                  f"a request for {self.room_after:g} s")
                _refuse(sock)
                continue
            if address is not None:
                self._by_address[address] = self._by_address.get(address, 0) + 1
            sock.setblocking(False)
            _bound_unsent(sock)
            self._pending += 1
            task = asyncio.get_running_loop().create_task(self._connect(sock, address))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, sock: socket.socket, address: str | None) -> None:
        """Counted as pending from accept until connection_made, which a TLS
        handshake that fails never reaches; and by `address` until it is lost."""
        made: list[Connection] = []
        task = asyncio.current_task()
        assert task is not None
        if self._ssl_context is not None:
            self._handshakes[task] = (asyncio.get_running_loop().time(), made)

        def connection() -> Connection:
            made.append(Connection(self, self._runner.server,  # type: ignore[arg-type]
                                    loop=asyncio.get_running_loop(), **self._handler_args))
            made[0].address = address
            return made[0]

        try:
            if self._ssl_context is not None and not await self._speaks_tls(sock):
                return
            await asyncio.get_running_loop().connect_accepted_socket(
                connection, sock, ssl=self._ssl_context,
                ssl_handshake_timeout=self.header_timeout if self._ssl_context else None)
        except (OSError, ssl.SSLError, TimeoutError):
            pass  # gone already, or a failed or slow TLS handshake
        finally:
            self._handshakes.pop(task, None)
            self._handshakes_cut.discard(task)
            if not (made and made[0].made):  # else the transport has the socket
                sock.close()
                self._pending -= 1
                self._let_go(address)

    async def _speaks_tls(self, sock: socket.socket) -> bool:
        """Whether the client's first byte (looked at, not taken) starts a TLS
        handshake; a client that sends something else (plain HTTP) is answered
        PLAIN_REFUSAL if its socket takes it at once. TimeoutError past the
        handshake's time with nothing sent."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def ready() -> None:  # (called again if the loop looks before the wait resumes)
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(sock.fileno(), ready)
        try:
            await asyncio.wait_for(readable, self.header_timeout)
        finally:
            loop.remove_reader(sock.fileno())
        first = sock.recv(1, socket.MSG_PEEK)
        if not first or first[0] == TLS_HANDSHAKE:
            return bool(first)
        with contextlib.suppress(OSError):
            sock.send(PLAIN_REFUSAL)
        return False


def keep(request: web_request.BaseRequest, hold: Hold) -> None:
    """Hold `hold` (of `request`'s answer, let in to be written as JSON) until the
    request is done, its answer sent whatever its JSON weighs; let go of it at once
    if it is done already (a write whose deadline passed goes on, and its answer is
    never sent)."""
    connection = request.protocol
    if isinstance(connection, Connection) and connection._handling is request:
        connection._admitted = hold
    else:
        hold.let_go()


def expects_continue(request: web_request.BaseRequest) -> bool:
    """Whether `request` waits for 100 Continue before it sends its body."""
    return request.version == HttpVersion11 and \
        request.headers.get("Expect", "").strip().lower() == CONTINUE_EXPECTED


def url_refusal(raw: str) -> web.Response | None:
    """The answer to a request whose URL (`raw`: its path and query as sent) is no
    path, too long a path, has too many segments, a malformed percent-escape in its
    path or too many query parameters; None for any other. Counted in C over the
    text, before anything parses it."""
    path, _, query = raw.partition("?")
    if not path.startswith("/") and not _ABSOLUTE_FORM.match(path):
        # CONNECT's host:port, OPTIONS' *: answered aiohttp's plain-text 404
        return json_error(http=400, status=status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT,
            message=f"the request target {path[:100]!r} is not a path: this server answers "
                    f"requests for its paths only (no CONNECT, no OPTIONS *)"))
    segments = path.count("/")
    if len(path) > MAX_PATH_BYTES or segments > MAX_PATH_SEGMENTS:
        return json_error(http=414, status=status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT,
            message=f"the URL's path is {len(path):,} bytes in {segments:,} segments; at most "
                    f"{MAX_PATH_BYTES:,} bytes and {MAX_PATH_SEGMENTS} segments are served (an "
                    f"event goes in the query or the body)"))
    malformed = malformed_escape(path, "", "name") if "%" in path else None
    if malformed is not None:
        return json_error(http=400, status=status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message=f"the URL's path {path[:300]!r} {malformed}"))
    parameters = query.count("&") + 1 if query else 0
    if parameters > MAX_QUERY_PARAMETERS:
        return json_error(http=400, status=status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT,
            message=f"the URL's query has {parameters:,} parameters; at most "
                    f"{MAX_QUERY_PARAMETERS:,} are read"))
    return None


async def _at_once(_request: web_request.BaseRequest, refusal: web.Response) -> web.Response:
    return refusal


def url_limit(max_request_bytes: int) -> int:
    """The longest URL read (aiohttp's max_line_size): MAX_URL_BYTES, or
    --max-request-bytes if less."""
    return min(MAX_URL_BYTES, max_request_bytes)


def framing_refusal(request: web_request.BaseRequest) -> web.Response | None:
    """The answer to an HTTP/1.0 request that names a Transfer-Encoding, or to one
    whose Transfer-Encoding has a coding besides chunked, closing its connection; None
    for any other.

    HTTP/1.0 has none, so its framing is in doubt (RFC 9112 §6.1): aiohttp read its
    body as chunked and went on to the request behind it, which a proxy that framed
    the body otherwise (by its end, or a Content-Length) had passed on as part of this
    one's body. A coding it does not undo (gzip, chunked) aiohttp left as it came: the
    body was read as JSON and refused for a byte of gzip (501: RFC 9112 §6.1 too)."""
    coding = request.headers.get("Transfer-Encoding")
    if coding is None:
        return None
    if request.version == HttpVersion10:
        return json_error(http=400, status=status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT,
            message="an HTTP/1.0 request has no Transfer-Encoding: send HTTP/1.1, or a "
                    "Content-Length"), closing=True)
    if coding.strip().lower() != "chunked":
        return json_error(http=501, status=status_pb2.Status(
            code=code_pb2.UNIMPLEMENTED,
            message=f"the request's Transfer-Encoding {coding[:50]!r} is not one this server "
                    f"undoes: only chunked is (a packed body says Content-Encoding: gzip)"),
            closing=True)
    return None


def _version_status(version: str) -> status_pb2.Status:
    """What a request of `version` (not served) is told."""
    return status_pb2.Status(
        code=code_pb2.UNIMPLEMENTED,
        message=f"this server speaks HTTP/1.1 (and 1.0), not {version}: send the request "
                f"as HTTP/1.1" + (" (gRPC, over HTTP/2, goes to the gRPC port: --port)"
                                  if version.startswith("HTTP/2") else ""))


def _version_answer(version: str) -> bytes:
    """The whole HTTP/1.1 answer, closing, to a request of `version` aiohttp never read."""
    return _closing_answer("505 HTTP Version Not Supported", _version_status(version),
                           retry=False)


class _Pieces(payload.Payload):
    """The body of a large answer, handed to its connection SEND_PIECE_BYTES at a
    time as its client takes it: given whole, the transport copied what the socket
    did not take at once into a buffer of its own, and each answer waiting for a
    client that did not read was held twice."""

    _value: bytes

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self._size = len(body)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._value.decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        view = memoryview(self._value)
        for start in range(0, len(view), SEND_PIECE_BYTES):
            await writer.write(view[start:start + SEND_PIECE_BYTES])
            # No piece is added while writing is paused: Connection._check_sent
            # measures what the client took by what is left of the buffer. aiohttp's
            # writer waits only once 64 KiB were written since its last wait, so the
            # piece after each wait went into a paused buffer, and a client taking
            # 100 KiB each --http-send-timeout (more than the 64 KiB asked) was cut.
            await writer.drain()


def _first_slow(connections: dict[Connection, None],
                slow: Callable[[Connection], bool]) -> Connection | None:
    """The first of the SLOW_BODY_LOOK first `connections` that is `slow`, taken out
    of them; those looked at before it go last, to be looked at after the rest (a
    client's SLOW_BODY_LOOK bodies at an honest pace, begun first, hid its trickling
    ones behind them for good; so did the tails of closing answers: see
    GuardedSite._cut_closing)."""
    for connection in list(itertools.islice(connections, SLOW_BODY_LOOK)):
        del connections[connection]
        if slow(connection):
            return connection
        connections[connection] = None
    return None


def _taken(transport: asyncio.WriteTransport) -> int:
    """What the client of `transport` has taken of the answers, as a count that only
    grows (its difference is what it took meanwhile): the bytes its TCP acknowledged
    (TCP_INFO's tcpi_bytes_acked, Linux), else the opposite of what waits in the
    transport's buffer. Not the buffer over TLS: what waits below the TLS transport
    (its TCP transport's own 64 KiB) drains first, the TLS one's buffer staying as it
    was meanwhile, and a client taking its answer at 24 KiB a second, three times
    MIN_SEND_RATE, was seen taking nothing for a second and more (cut at the cap)."""
    sock = transport.get_extra_info("socket")
    info = b""
    # (Linux's layout: FreeBSD has a TCP_INFO too, another field at that offset)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(AttributeError, OSError):  # (not TCP, or no socket)
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES)
    if len(info) >= _TCP_INFO_BYTES:
        return int.from_bytes(info[_BYTES_ACKED:_TCP_INFO_BYTES], sys.byteorder)
    return -transport.get_write_buffer_size()


def _slack(transport: asyncio.BaseTransport) -> int:
    """What the client of `transport` may be behind MIN_SEND_RATE though it takes its
    answers at that pace: over TLS, TAKEN_SLACK (it takes a record at a time)."""
    return TAKEN_SLACK if transport.get_extra_info("sslcontext") is not None else 0


def _undelivered(transport: asyncio.WriteTransport) -> bool:
    """Whether some of the answers of `transport` have not reached its client yet:
    in its buffer, or below it. Over TLS the TLS transport's buffer is empty as soon as
    what it encrypted is in its TCP transport's, which an abort would drop (a client
    taking its answers at 24 KiB a second lost them); the kernel's queue (SIOCOUTQ,
    Linux) is not empty while that one is not. Where it cannot be read, some are."""
    if transport.get_write_buffer_size():
        return True
    sock = transport.get_extra_info("socket")
    if not sys.platform.startswith("linux") or sock is None:
        return True
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return True
    return int.from_bytes(queued, sys.byteorder) > 0


# Linux's struct tcp_info: 8 bytes of flags, 24 numbers of 4 bytes, 2 rates of 8, then
# tcpi_bytes_acked (since Linux 4.1; a shorter answer is an older kernel's)
_BYTES_ACKED = 8 + 24 * 4 + 2 * 8
_TCP_INFO_BYTES = _BYTES_ACKED + 8


def _unsent_refusal(answer: web.StreamResponse, refusal: ResourceExhausted) -> web.Response:
    """429 with Google's JSON error for `refusal`, in place of `answer` (whose CORS
    headers it keeps)."""
    response = json_error(to_rpc_status(refusal), 429)  # (Retry-After: its RetryInfo's)
    for name, value in answer.headers.items():
        if name.startswith("Access-Control-") or name == "Vary":
            response.headers[name] = value
    return response


def _unreadable(error: http_exceptions.HttpProcessingError) -> str:
    """What aiohttp says of a request it could not read, without the bytes it quotes."""
    said = str(error.message or type(error).__name__).strip().splitlines()
    first = said[0] if said else type(error).__name__
    return first.split(": b'")[0].split(': b"')[0].rstrip(": ")[:200]


def _head_bytes(message: Any) -> int:
    """The bytes of a parsed request head: its target and header lines (0 for a
    request aiohttp could not read, answered 400 and closed)."""
    if not isinstance(message, RawRequestMessage):
        return 0
    return len(message.path) + sum(len(name) + len(value) + 4
                                   for name, value in message.raw_headers)


def _bound_unsent(sock: socket.socket) -> None:
    """Let the kernel hold at most UNSENT_BYTES of an answer that its client has not
    taken yet (TCP_NOTSENT_LOWAT, where the system has it): the rest waits in the
    connection's buffer, within the budget of large answers and --http-send-timeout.
    The bytes in flight are not bounded by it (a smaller SO_SNDBUF would bound
    them too, and a far client's throughput to SO_SNDBUF / its round trip)."""
    option = getattr(socket, "TCP_NOTSENT_LOWAT", None)
    if option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, UNSENT_BYTES)


def _refuse(sock: socket.socket, answer: bytes = REFUSAL) -> None:
    """A 503 if the socket takes it at once, then close: never wait on a refused client."""
    with contextlib.suppress(OSError):
        sock.send(answer)
    sock.close()



def _listen(host: str, port: int, backlog: int, reuse_port: bool = False
            ) -> list[socket.socket]:
    """Listening sockets for every address of `host` (all of them for ""), on one
    port (the first one's when `port` is 0), shared with other processes that set
    SO_REUSEPORT too if `reuse_port`; OSError if one cannot be bound."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
