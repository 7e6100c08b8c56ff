"""The HTTP/JSON gateway: aiohttp on the server's one event loop (`server.loop`),
awaiting the very servicers gRPC calls, on routes derived from the contracts'
`google.api.http` annotations.

Besides the routes: `/footfall.js` (the tracker), `/metrics` (Prometheus),
`/healthz` (gRPC health's overall status, for checkers that speak HTTP only), the
web console's pages (`console_pages`: `/console/`, and `/` leads there), CORS
(preflight included) for pages on other origins, and the pixel's always-a-GIF
answer. Every routed call runs in the same envelope as over gRPC
(`server.policy.envelope`: keys, faults, quotas, metrics and the log line); the
key is checked before the body is read, then the body decoded. HEAD runs a GET
route as GET does, but its JSON is never written (`_answer`: no body, no
Content-Length), and the pixel's does nothing (`_pixel_head`). Connections
are capped and must send their heads in time (`connections`); pages of other
sites cannot change anything (`crosssite`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, overload

import grpc
from aiohttp import http_exceptions, web, web_protocol
from aiohttp.http import HttpVersion11
from footfall.retail.v2 import user_event_service_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2
from prometheus_client import CONTENT_TYPE_LATEST

from server.config import Settings
from server.console import origin, watch
from server.console.rejections import UnreadBody
from server.errors import (
    BodyTooSlow,
    Cancelled,
    ChosenStatus,
    DeadlineExceeded,
    FootfallError,
    InvalidArgument,
    PermissionDenied,
    RequestTooLarge,
    ResourceExhausted,
    Unauthenticated,
    to_rpc_status,
)
from server.http import console_pages, pixel, sse, tracker, transcode
from server.http.answers import Answers
from server.http.body_bounds import BodyBounds
from server.http.budget import Budget, holder_of
from server.http.connections import (
    CONTINUE,
    CONTINUE_EXPECTED,
    FREE_ANSWER_BYTES,
    HOLDER,
    Connection,
    GuardedSite,
    SlowBody,
    SmallChunks,
    expects_continue,
    keep,
    url_limit,
)
from server.http.crosssite import (
    HostCheck,
    OriginCheck,
    allowed_headers,
    authority,
    host_check,
)
from server.http.errors import http_status_of, json_error, not_unpacked, unknown_coding
from server.http.headers import EVERY, NO_STORE
from server.http.routes import Route, Router, derive_routes
from server.http.unpacking import NotUnpacked, Unpacker, packed_limit
from server.loop import off_loop
from server.operations import records
from server.policy import Policy, refusal_budget
from server.policy.auth import (
    READER_METHODS,
    Grant,
    MissingKey,
    NotYourProject,
    Role,
    other_scheme,
    project_of,
)
from server.policy.envelope import Envelope, json_large
from server.policy.paces import Paced, TooManyWaiting
from server.ports import http_refusal, ip_prefix
from server.retail.collect import Requester, pixel_body

log = logging.getLogger(__name__)
R = TypeVar("R", bound=web.StreamResponse)
T = TypeVar("T")
# The servicer's collect_queued: (request, requester, what keeps a refusal made later).
CollectQueued = Callable[[Any, Requester | None, Callable[[BaseException], None] | None], None]

# The Content-Encodings a request body may come with (unpacked as it is read: `_gather`).
_CODINGS = frozenset({"gzip", "deflate", "identity"})
_PACKED = frozenset({"gzip", "deflate"})  # (of _CODINGS, those unpacked)
_NO_BODY = frozenset({"GET", "HEAD"})  # (a body sent with them is not read)
HTTP_BODY = "google.api.HttpBody"
# Answers whose retail types are named in the version of the path (records.in_version)
_OPERATION_ANSWERS = frozenset({"google.longrunning.Operation",
                                "google.longrunning.ListOperationsResponse"})
TRACKER_PATH = "/footfall.js"
METRICS_PATH = "/metrics"
SCRAPE_SPACING = 0.1  # seconds between two renders of /metrics, at least (see Scrapes)
HEALTH_PATH = "/healthz"
# Whether the server serves now, as grpc.health.v1.Health says of it as a whole.
Serving = Callable[[], Coroutine[Any, Any, bool]]
MAX_WAIT_SECONDS = 86_400.0  # a longer X-Server-Timeout is no deadline at all
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")  # what X-Server-Timeout may be
# Request bodies being read or served at once hold at most this many times
# --max-request-bytes between them, and one key a quarter of that (budget.Budget); a
# body that would go past is refused (RESOURCE_EXHAUSTED, retry). Each body is bounded,
# but not their number: without it a thousand connections (or a few dozen gzip bodies,
# cheap to send and unpacked as they are read) could make the server hold gigabytes,
# and without the share one key held the room of every body for a minute with 16 gzip
# bodies sent slowly (every REST call with a body, of every project, was refused).
BODIES_HELD = 16
BODIES = "request bodies"
# The longest header line read: a browser sends the pixel every cookie of its domain,
# and a pixel served from a shop's subdomain (events.shop.com) gets the shop's too; past
# aiohttp's 8,190 bytes it was a plain-text 400, its event lost. What the heads hold
# together is bounded by the connections' (see connections.HEADS_HELD).
MAX_HEADER_LINE_BYTES = 64 * 1024
# Streams (watches as server-sent events) hold at most this share of the HTTP
# connections, so that idle watches can never leave no room for writes and pixels.
STREAM_SHARE = 0.5
TRANSPORT = "http"
JSON_HEADERS = {**NO_STORE, "Content-Type": "application/json; charset=utf-8"}


class Metadata(Sequence[tuple[str, str]]):
    """An HTTP request's headers as gRPC metadata (lower-case names), made when first
    read: most calls (no key to check, no fault to inject) never read them."""

    __slots__ = ("_headers", "_pairs")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = headers
        self._pairs: tuple[tuple[str, str], ...] | None = None

    def _all(self) -> tuple[tuple[str, str], ...]:
        if self._pairs is None:
            self._pairs = tuple((k.lower(), v) for k, v in self._headers.items())
        return self._pairs

    @overload
    def __getitem__(self, index: int) -> tuple[str, str]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[str, str]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._all())


# What a path of Google's services looks like, for a path that matched none (a catalog
# without its /locations/*, userEvent:write for userEvents:write).
_PATH_FORMS = (
    (re.compile(r"/v2(beta|alpha)?/"), "a retail path is /v2/projects/*/locations/*/catalogs/*"
     "/userEvents:write (or :collect, :import, :purge, :rejoin; /branches/*/products...)"),
    (re.compile(r"/v4(beta1)?/"), "a talent path is /v4/projects/*/tenants/*/clientEvents "
     "(or /v4beta1/...)"),
    (re.compile(r"/console/v1/"), "a console path is /console/v1/projects/*/locations/*/"
     "catalogs/*/userEvents (or userEvents:watch, userEvents:watchBatches, userEvents:count, "
     "rejections, rejections:watch, :reset), /console/v1/projects/*/tenants/*/clientEvents "
     "(or clientEvents:watch, rejections, :reset), /console/v1/projects/*/clientEvents (or "
     "clientEvents:watch: the project's default tenant), /console/v1/projects/*/catalogs, "
     "/console/v1/projects/*/rejections (projects/- for every project) or "
     "/console/v1/projects/*:reset (its every catalog and tenant)"),
    (re.compile(r"/insights/v1/"), "an insights path is /insights/v1/projects/*/locations/*/"
     "catalogs/*:runFunnel (or :computeTotals, /productStats), or /insights/v1/projects/*/"
     "tenants/*:runFunnel (or /jobStats)"),
    (re.compile(r"/v\d"), "retail is served under /v2 (and /v2beta, /v2alpha), talent under "
     "/v4 (and /v4beta1), the console's API under /console/v1 and insights under /insights/v1"),
)


def _request_of(route: Route, path_values: dict[str, str], query: Iterable[tuple[str, str]],
                context: CallContext, bounds: BodyBounds, body: bytes) -> Any:
    """transcode.build_request's request of a call on `route`; INVALID_ARGUMENT as it
    refuses, where a body of values of the wrong type (and nothing else wrong) is told
    of them beside what the servicer's rules say of the values that did read
    (Route.partly_read), as a pixel's event is, and as the rules would say of the same
    request sent over gRPC without those values."""
    try:
        return transcode.build_request(route, path_values, query, body, bounds)
    except transcode.PartlyRead as refused:
        judged = route.partly_read(refused.request, refused.violations, context) \
            if route.partly_read is not None else None
        if judged is None:
            raise
        raise judged from None


def _with_body(bare: Callable[[], Any], body: bytes, route: Route) -> Any:
    """For the refusal of a call whose body could not be read: the request its path
    names (`bare()`), with the body as sent beside it (rejections.UnreadBody)."""
    request = bare()
    if not body or request is None:
        return request
    field = request.DESCRIPTOR.fields_by_name.get(route.body) if route.body != "*" else None
    return UnreadBody(request, body, field.json_name if field is not None else "")


def _screened(envelope: Envelope, route: Route, request: web.Request, context: Any,
              query_key: str | None) -> Any:
    """Envelope.screen of an HTTP call; a missing key is told the ways HTTP sends one
    (auth.MissingKey.over_http)."""
    metadata = context.invocation_metadata()
    try:
        return envelope.screen(route.grpc_method, metadata, query_key)
    except MissingKey:
        if other_scheme(metadata) is not None:  # (told as it is)
            raise
        raise MissingKey.over_http(route.rpc in pixel.PIXEL_RPCS,
                                   "key" in request.query) from None


class Scrapes:
    """The /metrics page, rendered off the loop (a page of some 250 KB takes about
    15 ms), at most once every SCRAPE_SPACING seconds: the scrapes that come while
    one waits to be rendered share it, and each is rendered after it came (never a
    page older than its request). Rendered on the loop for each scrape, 40 keyless
    HEADs a second took another caller's writes from 579 a second to 6."""

    def __init__(self, render: Callable[[], tuple[bytes, str]]) -> None:
        self._render = render
        self._next: asyncio.Future[tuple[bytes, str]] | None = None  # the one to come
        self._last = -SCRAPE_SPACING  # when the last render began (loop time)

    async def page(self) -> tuple[bytes, str]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            asyncio.ensure_future(self._make(self._next))
        return await asyncio.shield(self._next)

    async def _make(self, page: asyncio.Future[tuple[bytes, str]]) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last + SCRAPE_SPACING - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next = None  # scrapes from now on wait for a render begun after they came
        self._last = loop.time()
        try:
            page.set_result(await off_loop(self._render))
        except Exception as exc:  # (a collector's bug: each scrape waiting is told)
            page.set_exception(exc)


# The path of a pixel no route serves: its version (if one of retail's) and what
# stands where its catalog should. (Slashes before it are the endpoint's, written with
# a trailing one: its refusal was kept under "/v2/projects/...", shown to no reader
# of the project. Possessive: backtracked into, each of up to 250 slashes gave a scan
# of 1,024 characters, 5 ms of the loop for one GET.)
_UNROUTED_PIXEL = re.compile(r"/++(?:(v2|v2beta|v2alpha)/)?(.{1,1024}?)/userEvents:collect")


# A GET of the collection events are written to: Google's APIs read none back, the
# console's does (a job site's curl of its clientEvents was told only "this path answers
# POST"; a project alone is its default tenant, as v4beta1 writes). Possessive, as
# _UNROUTED_PIXEL is.
_EVENTS_READ = re.compile(r"/v(?:2|2beta|2alpha|4|4beta1)/(projects/[^/]++/(?:locations/[^/]++/"
                          r"catalogs/[^/]++/userEvents|(?:tenants/[^/]++/)?clientEvents))/?")


def _route_hint(raw_path: str) -> str:
    """"; " and the form of the paths of the service `raw_path` seems to be for, or ""."""
    return next((f"; {form}" for pattern, form in _PATH_FORMS if pattern.match(raw_path)), "")


def _read_hint(method: str, raw_path: str) -> str:
    """Of a GET of the events of a catalog or tenant, "; " and where they are read; else ""."""
    read = _EVENTS_READ.fullmatch(raw_path) if method in ("GET", "HEAD") else None
    return "" if read is None else (f"; Google's API reads no events back: GET /console/v1/"
                                    f"{read[1][:300]} lists them (Footfall's console API)")


class CallContext:
    """The part of grpc.ServicerContext servicers use, answered from an HTTP request."""

    def __init__(self, request: web.Request, requester: Requester, pixel: bool = False) -> None:
        self.requester = requester  # read by CollectUserEvent
        self.pixel = pixel  # the answer is the GIF whatever happens (see server.http.pixel)
        # A pixel's: keeps its refusal if its commit refuses it (Envelope.refused_later).
        self.refused_later: Callable[[BaseException], None] | None = None
        self._metadata = Metadata(request.headers)
        self._transport = request.transport
        self._deadline: float | None = None
        timeout = request.headers.get("X-Server-Timeout")
        if timeout:
            # (ASCII digits only: float() also reads "1_0", "inf" and other scripts' digits)
            if not _SECONDS.fullmatch(timeout):
                raise InvalidArgument.field("X-Server-Timeout", "must be a number of seconds")
            self._deadline = time.monotonic() + float(timeout)
        self._code: grpc.StatusCode | None = None
        self._details = ""

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(self._deadline - time.monotonic(), 0.0)

    def done(self) -> bool:
        """Whether the caller is gone (its connection closed)."""
        return self._transport is None or self._transport.is_closing()

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def peer(self) -> str:
        transport = self._transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        host, port = (peer[0], peer[1]) if peer else ("unknown", 0)
        return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details


# The fewest connections one address is let hold by default: a browser opens up to 6
# to a server, and an office's browsers come from one address.
FEWEST_PER_ADDRESS = 16


def per_address(settings: Settings) -> int:
    """The most connections one client address may hold (0: no bound), as
    --http-max-connections-per-address says: behind a proxy every connection is
    the proxy's, so by default there is none with --trust-forwarded-for."""
    given = settings.http_max_connections_per_address
    if given >= 0:
        return given
    return 0 if settings.trust_forwarded_for else max(FEWEST_PER_ADDRESS,
                                                       settings.http_max_connections // 4)


class HttpGateway:
    """Serves the routes of `servicers` (full service name -> servicer) over HTTP."""

    def __init__(self, settings: Settings, servicers: Mapping[str, Any],
                 policy: Policy | None = None, serving: Serving | None = None) -> None:
        self._settings = settings
        self._serving = serving
        self._policy = policy or Policy(servicers)
        self._envelope = Envelope(self._policy, TRANSPORT)
        self.router = Router(derive_routes(servicers))
        self._origins = OriginCheck(settings.cors_origins)
        self._hosts = host_check(settings.host, settings.http_allowed_hosts)
        self._runner: web.AppRunner | None = None
        self.site: GuardedSite | None = None
        self.port = 0
        self._running: set[asyncio.Task[Any]] = set()  # calls past their X-Server-Timeout
        self._bodies = Budget(BODIES_HELD * settings.max_request_bytes,  # read or served
                              f"{BODIES_HELD} x --max-request-bytes")
        self._answers = Answers(settings.max_request_bytes)  # large, being written as JSON
        self._body_bounds = BodyBounds(settings.max_event_bytes)
        self._scrapes = Scrapes(self._policy.metrics.render)
        self._streams = 0  # open server-sent-event streams (see STREAM_SHARE)
        self._project_streams: dict[str, int] = {}  # of those, each project's
        # A paced key's requests waiting for their time at most (see KeyPaces.hold):
        # each holds its connection, and a key's holder held every one.
        self._paced_waiting = max(1, settings.http_max_connections // 4)
        # The servicer's CollectUserEvent for pixels answered once queued, or None
        # (--durable-pixels, or no retail v2 servicer): see pixel.inline.
        events: Any = servicers.get(pixel.INLINE_RPC.rpartition(".")[0])
        self._collect_queued: CollectQueued | None = \
            events.collect_queued if getattr(events, "queues_pixels", False) else None

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> int:
        """Bind and serve on the running loop; returns the port. Raises OSError if
        the address cannot be bound."""
        settings = self._settings
        app = web.Application(client_max_size=settings.max_request_bytes)
        # Every path (a line break in it too: `.` would stop there, and aiohttp answer
        # with its own plain-text 404) comes to the gateway.
        app.router.add_route("*", r"/{path:[\s\S]*}", self._handle,
                             expect_handler=_expect_later)
        # A pixel carries its event in the URL: allow URLs as long as the longest
        # legal one (aiohttp's default is 8 KiB), and no longer (see connections).
        # Bodies are unpacked by the gateway, which can tell one cut short (`unpacking`).
        handler_args: dict[str, Any] = {"access_log": None, "auto_decompress": False,
                                        "max_line_size": url_limit(settings.max_request_bytes),
                                        "max_field_size": MAX_HEADER_LINE_BYTES}
        self._runner = web.AppRunner(app, handle_signals=False,
                                     shutdown_timeout=settings.grace_seconds, **handler_args)
        await self._runner.setup()
        port = max(settings.http_port, 0)  # -1: any free port
        site = GuardedSite(self._runner, settings.host, port,
                           header_timeout=settings.http_header_timeout,
                           max_connections=settings.http_max_connections,
                           handler_args=handler_args, ssl_context=_ssl_context(settings),
                           reuse_port=settings.processes > 1, answers=self._answers,
                           send_timeout=settings.http_send_timeout,
                           per_address=per_address(settings))
        site.pace_refusal = self._open
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise OSError(http_refusal(settings.host, port, exc)) from exc
        self.site = site
        self.port = site.port
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let in-flight calls finish (up to grace_seconds), stop."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        try:
            async with asyncio.timeout(self._settings.grace_seconds + 5):
                await runner.cleanup()
                await asyncio.gather(*self._running, return_exceptions=True)
        except TimeoutError:
            log.warning("HTTP gateway: in-flight calls still running after the grace period")
        except Exception:  # the rest of the shutdown must go on
            log.exception("HTTP gateway: shutdown failed")

    # -- requests ------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        if self._hosts is not None:
            named_by, host = authority(request)
            if not self._hosts.allows(host):
                refusal = HostCheck.refusal(host or "", named_by)
                return await self._open(request, json_error(to_rpc_status(refusal),
                                                            http_status_of(refusal)))
        # What anyone may ask without a key (files, preflights, a path no route
        # serves) is paced per client address past its budget as refusals are
        # (KeylessRefusals: files and preflights have a budget of their own).
        if request.method == "OPTIONS":
            return await self._open(request, self._preflight(request, raw_path), files=True)
        if raw_path == TRACKER_PATH and request.method in ("GET", "HEAD"):
            return await self._open(request, self._cors(request, None, tracker.answer(
                request.headers.get("If-None-Match"))), files=True)
        if raw_path == METRICS_PATH and request.method in ("GET", "HEAD"):
            # (HEAD: the headers alone, nothing rendered)
            body, content_type = await self._scrapes.page() if request.method == "GET" \
                else (b"", CONTENT_TYPE_LATEST)
            return await self._open(request, web.Response(
                body=body, headers={**NO_STORE, "Content-Type": content_type}), files=True)
        if raw_path == HEALTH_PATH and request.method in ("GET", "HEAD") \
                and self._serving is not None:
            # 503 while draining or while the database is away, as health says over gRPC
            serving = await self._serving()
            health = web.Response(text="SERVING\n" if serving else "NOT_SERVING\n",
                                  status=200 if serving else 503, headers=NO_STORE)
            # Open to anyone: 4 connections asking in a loop without a key had 7,700 a
            # second answered, a core, and another client's writes went from about
            # 1,000 a second to 78. Past its address's budget, as a refusal is.
            address = self._keyless(request)
            if address is not None and self._policy.keyless_refusals.past(address):
                return await self._paced(health, address)
            return health
        page = console_pages.answer(request.method, raw_path, request.headers.get("If-None-Match"))
        if page is not None:
            return await self._open(request, page, files=True)
        found = self.router.match(request.method, raw_path)
        if found is None:
            if request.method == "GET" and raw_path.endswith("/userEvents:collect") \
                    and transcode.default_output(request.query):
                # a browser's pixel of a mistyped catalog still gets its GIF ("always a
                # 1x1 GIF": a JSON 404 showed as a broken image), the reason in its header
                status = self._no_route_status(request.method, raw_path,
                                               pixel.given_keys(request))
                keyless = self._keep_unrouted_pixel(request, raw_path, status.message)
                gif = self._cors(request, None, pixel.refused(status, request.remote or ""))
                if keyless:  # (paced as a routed pixel's refusal without a key is: see _pixel)
                    address = ip_prefix(pixel.requester(
                        request.headers, request.remote or "",
                        self._settings.trust_forwarded_for).ip_address)
                    if self._policy.keyless_refusals.past(address):
                        return await self._paced(gif, address)
                return gif
            return await self._open(request, self._cors(
                request, None, self._no_route(request.method, raw_path,
                                              pixel.given_keys(request))))
        route, path_values = found
        if request.method == "HEAD" and route.rpc in pixel.PIXEL_RPCS:
            # (nothing checked, but paced as a file is: 4 connections sending HEADs of
            # a collect route without a key had 7,400 answered a second, and another
            # client's durable writes fell from 1,000 a second to 380)
            return await self._open(request, self._pixel_head(request, route), files=True,
                                    key_in_url=True)
        collect_queued = self._collect_queued
        if collect_queued is not None and route.rpc == pixel.INLINE_RPC \
                and request.method == "GET" and pixel.inline(request, self._policy) \
                and not json_large(b"", request.query_string):  # (else off the loop, paced)
            served = self._pixel(request, route, path_values, collect_queued)
            # (a coroutine: a refusal without a key past its address's budget, paced)
            return served if isinstance(served, web.Response) else await served
        method, envelope = route.grpc_method, self._envelope
        started = time.perf_counter()
        output = transcode.Output()
        bare = functools.partial(transcode.path_request, route, path_values)
        grant = None
        requester = pixel.requester(request.headers, request.remote or "",
                                    self._settings.trust_forwarded_for,
                                    in_url=request.method == "GET")
        try:
            if request.method not in _NO_BODY:  # (as the charset the type check reads)
                transcode.check_content_type(request.headers.get("Content-Type"))
            self._origins.check(request, route)
            output = transcode.output_of(request.query)
            context = CallContext(request, requester, pixel.is_pixel(route, output))
            query_key = pixel.query_key(request.query) if route.rpc in pixel.PIXEL_RPCS else None
            # The key before the body: nobody without one makes the server read
            # (up to --max-request-bytes of) a body, let alone parse it.
            grant = _screened(envelope, route, request, context, query_key)
            envelope.check_named(method, grant, bare)  # (the role and project, too)
            paced = self._policy.key_paces.of(grant, context.time_remaining, held=True)
            if paced is not None:  # (its body not read meanwhile)
                assert grant is not None
                await self._wait_for_time(request, paced, grant,
                                          ip_prefix(requester.ip_address))
                if paced.refusal is not None:
                    raise paced.refusal
            transcode.check_query_text(request.query, request.rel_url.raw_query_string)
            # (by the key itself, not its name, which need not be unique, nor its
            # Grant, made anew by a SIGHUP: the bodies and answers held meanwhile
            # were not counted in the key's share, and a freed Grant's id, reused by
            # another key's, merged two keys' shares)
            holder = holder_of(grant, ip_prefix(requester.ip_address))
            request[HOLDER] = holder or ""  # (its answer is sent within the key's share)
            body = await self._read_body(request, holder)
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:  # late already: nothing is run
                self._bodies.give_back(holder, len(body))
                raise DeadlineExceeded("the deadline (X-Server-Timeout) passed before the "
                                       "request was read")
        except Exception as exc:
            named, kept_as = envelope.bare_request(method, bare, grant)
            # (a call refused for its project is never kept; its log line names its key)
            client = ip_prefix(requester.ip_address)
            refused = envelope.refuse(method, exc, started,
                                      context if grant is not None else None, request=named,
                                      grant=grant if isinstance(exc, NotYourProject)
                                      else kept_as, client=client)
            # The refusal of a caller without a known key, for that or for what was
            # refused before its key was looked at (its alt, a page of another site),
            # past its address's budget: the client's loop waits, and connects again.
            # (4 connections asking with alt=nonsense in a loop had 3,350 refused a
            # second, at once, and another client's writes fell from 950 a second to 310)
            keyless = isinstance(exc, Unauthenticated) or grant is None and \
                self._keyless(request, route.rpc in pixel.PIXEL_RPCS) is not None
            try:
                past = keyless and await self._policy.keyless_refusals.refused(client)
            except ResourceExhausted as waiting:  # (too many wait: at once, closing)
                return self._refused(request, route, output, waiting, closing=True)
            # A known key refused for its role or project, past the key's budget of
            # refusals (refusal_budget), as well: answered at once, 4 connections of a
            # reader key's writes had 640 refused a second, 0.35 of a core.
            if grant is not None and grant.role is not Role.ADMIN \
                    and isinstance(refused, PermissionDenied):
                past = await self._policy.keyless_refusals.spend(refusal_budget(grant, client))
            return self._refused(request, route, output, refused,
                                 closing=past or isinstance(exc, TooManyWaiting))
        if route.method.server_streaming:
            self._bodies.give_back(holder, len(body))
            return await self._stream(request, route, path_values, context, output, started,
                                      grant)
        work = self._holding(holder, len(body), envelope.run(
            method, context.invocation_metadata(), body,
            functools.partial(_request_of, route, path_values, request.query.items(), context,
                              self._body_bounds),
            context, functools.partial(_answer, route, output, self._answers, holder, request),
            grant, started,
            large=json_large(body, request.query_string),
            bare=functools.partial(_with_body, bare, body, route)))
        # A read is for its caller alone: it ends when the caller goes or its
        # deadline passes (a write goes on: what it started still commits).
        reading = method in READER_METHODS
        stop = _cancel_when_lost(request) if reading else None
        try:
            answer = await (work if remaining is None
                            else self._within(work, remaining, go_on=not reading))
        except DeadlineExceeded as exc:  # the call, ended or still running, records itself
            answer = exc
        finally:
            if stop is not None:
                stop()
        if isinstance(answer, FootfallError):
            # (its role or project refused once its body named them: paced as above)
            past = grant is not None and grant.role is not Role.ADMIN \
                and isinstance(answer, PermissionDenied) and \
                await self._policy.keyless_refusals.spend(
                    refusal_budget(grant, ip_prefix(requester.ip_address)))
            return self._refused(request, route, output, answer, closing=past)
        body, headers = answer
        return self._cors(request, route, web.Response(body=body, headers=headers))

    def _pixel(self, request: web.Request, route: Route, path_values: dict[str, str],
               collect_queued: CollectQueued
               ) -> web.Response | Coroutine[Any, Any, web.Response]:
        """A browser's pixel, inline: the steps of `_handle` and `Envelope.run` in
        their order, none of them awaited, the servicer's `collect_queued` for its
        call (see server.http.pixel). A refusal for want of a key past its client
        address's budget is a coroutine that answers it once it has waited, as
        `_handle` paces one; so is a pixel of a paced key that comes early (KeyPaces)."""
        method, envelope, policy = route.grpc_method, self._envelope, self._policy
        started = time.perf_counter()
        query = request.query
        requester = pixel.requester(request.headers, request.remote or "",
                                    self._settings.trust_forwarded_for, in_url=True)
        try:
            context = CallContext(request, requester, pixel=True)
            grant = _screened(envelope, route, request, context, pixel.query_key(query))
        except Exception as exc:
            refused = envelope.refuse(method, exc, started)
            address = ip_prefix(requester.ip_address)
            if isinstance(exc, Unauthenticated) and policy.keyless_refusals.past(address):
                # (answered at once each time, one client's loop of pixels without a
                # key had the server refuse 3,300 a second, 78% of a core)
                return self._paced(self._refused(request, route, transcode.DEFAULT_OUTPUT,
                                                 refused), address)
            return self._refused(request, route, transcode.DEFAULT_OUTPUT, refused)
        paced = self._policy.key_paces.of(grant, context.time_remaining, held=True)
        if paced is None:
            return self._collect(request, route, path_values, collect_queued, started, context,
                                 grant)
        assert grant is not None
        return self._paced_pixel(request, paced, grant, functools.partial(
            self._collect, request, route, path_values, collect_queued, started, context, grant),
            ip_prefix(requester.ip_address))

    async def _paced_pixel(self, request: web.Request, paced: Paced, grant: Grant,
                           collect: Callable[[ResourceExhausted | None],
                                             web.Response | Coroutine[Any, Any, web.Response]],
                           client: str) -> web.Response:
        """The answer of `collect()`, a pixel's rest, once its paced key's time has
        come; its refusal after as long when that is too far off (KeyPaces), or,
        closing, when too many of the key's requests wait already (at once within its
        client address's budget of refusals: see _wait_for_time)."""
        try:
            await self._wait_for_time(request, paced, grant, client)
        except TooManyWaiting as refusal:
            answer = collect(refusal)
            if not isinstance(answer, web.Response):  # (a pace refusal: never Denied)
                answer = await answer
            answer.force_close()
            return answer
        answer = collect(paced.refusal)
        return answer if isinstance(answer, web.Response) else await answer

    async def _wait_for_time(self, request: web.Request, paced: Paced, grant: Grant,
                             client: str) -> None:
        """Wait for a paced key's call's time (`paced`); given up (its task cancelled)
        if its connection is lost meanwhile, its time given back to the key. aiohttp
        cancels no handler when its client goes: 2,202 paced requests sent, each
        connection closed at once, held their places and took their key's time for
        the 2 s of their waits, and were counted refused after their clients had
        gone. TooManyWaiting when as many of the key's requests wait already as it
        may have (KeyPaces.hold): each holds its connection, and one key's holder,
        waiting 2 s on each, held every connection the server takes. That refusal is
        answered as a refusal for want of a key is, within a budget of them (the
        key's own) at once, past it after their delay (KeylessRefusals): answered
        at once whatever the rate, 40 connections of one client keeping a key paced
        at 1 a second past its bound had 1,900 refused a second, 0.85 of a core, and
        another key's writes fell from 1,150 a second to 135."""
        paces = self._policy.key_paces
        too_many = paces.hold(grant, paced, self._paced_waiting)
        if too_many is not None:
            refusals = self._policy.keyless_refusals
            # (a budget of the key's own, a writer key's by `client` too: see
            # refusal_budget)
            budget = refusal_budget(grant, client)
            if refusals.past(budget):
                stop = _cancel_when_lost(request)
                try:
                    await refusals.wait(budget)
                except ResourceExhausted:  # (too many of the address's wait: at once)
                    pass
                finally:
                    if stop is not None:
                        stop()
            raise too_many
        stop = _cancel_when_lost(request)
        try:
            await asyncio.sleep(paced.seconds)
        except asyncio.CancelledError:
            paces.give_back(paced)
            raise
        finally:
            paces.let_go(grant)
            if stop is not None:
                stop()

    def _collect(self, request: web.Request, route: Route, path_values: dict[str, str],
                 collect_queued: CollectQueued, started: float, context: CallContext,
                 grant: Grant | None, refusal: ResourceExhausted | None = None
                 ) -> web.Response | Coroutine[Any, Any, web.Response]:
        """A pixel whose key is known good (`grant`), the rest of `_pixel`: collected,
        or refused (by `refusal`, that of its key's pace, if any); a coroutine that
        answers a refusal of its key's role or project once it has waited, past the
        key's budget of refusals (see _handle)."""
        method, envelope, policy = route.grpc_method, self._envelope, self._policy
        query = request.query
        origin.set_transport(origin.PIXEL)
        admission = message = None
        try:
            if refusal is not None:
                raise refusal
            transcode.check_query_text(request.query, request.rel_url.raw_query_string)
            message = transcode.build_request(route, path_values, query.items(), b"")
            admission = policy.admit_now(method, context.invocation_metadata(), message,
                                         context, grant=grant)
            collect_queued(message, context.requester,
                           envelope.refused_later(method, message, admission, grant))
        except Exception as exc:
            known = grant
            if message is None:  # its query could not be read: kept as its path names it
                message, grant = envelope.bare_request(
                    method, functools.partial(transcode.path_request, route, path_values),
                    grant)
            refused = envelope.refuse(method, exc, started, context, admission, message, grant)
            answer = self._refused(request, route, transcode.DEFAULT_OUTPUT, refused)
            if known is not None and known.role is not Role.ADMIN \
                    and isinstance(refused, PermissionDenied):
                budget = refusal_budget(known, ip_prefix(context.requester.ip_address))
                if policy.keyless_refusals.past(budget):
                    return self._delayed(answer, budget)
            return answer
        policy.record(method, TRANSPORT, grpc.StatusCode.OK, time.perf_counter() - started,
                      admission)
        return self._cors(request, route, pixel.gif())

    async def _delayed(self, answer: web.Response, budget: str) -> web.Response:
        """`answer`, a refusal of a known key's call past its `budget` of refusals
        (server.policy.refusal_budget), after their delay, closing its connection; at
        once, closing, when too many of the budget's answers wait already."""
        try:
            await self._policy.keyless_refusals.wait(budget)
        except ResourceExhausted:
            pass
        answer.force_close()
        return answer

    async def _paced(self, answer: web.Response, address: str) -> web.Response:
        """`answer`, the refusal of a pixel without a key from `address` past its
        budget of such refusals (or another answer to such a caller: see _open),
        after its wait and closing its connection (the client's loop waits, and
        connects again), as `_handle` answers any call so refused. When too many of
        the address's answers wait already, a 429 at once, closing: never `answer`
        unpaced, which more connections would have had at full speed."""
        try:
            await self._policy.keyless_refusals.wait(address)
        except ResourceExhausted as waiting:
            return json_error(to_rpc_status(waiting), closing=True)
        answer.force_close()
        return answer

    async def _open(self, request: web.BaseRequest, answer: web.Response,
                    files: bool = False, key_in_url: bool = False) -> web.Response:
        """`answer` to a request that needs no key; with auth on, when it carries
        none (`key_in_url`: a pixel's, in its URL, counts too) and its client address
        is past its budget (`files`: that of fetches of files and preflights), paced
        as `_paced` has it."""
        address = self._keyless(request, key_in_url)
        if address is None:
            return answer
        refusals = self._policy.keyless_refusals
        if not (refusals.past_files(address) if files else refusals.past(address)):
            return answer
        return await self._paced(answer, address)

    def _keyless(self, request: web.BaseRequest, key_in_url: bool = False) -> str | None:
        """With auth on, the client address (as KeylessRefusals counts it) of a
        request that carries no known key (in a header, or with `key_in_url`, as a
        pixel's `key` in its URL); else None."""
        auth = self._policy.auth
        if not auth.enabled:
            return None
        try:
            auth.authenticate(Metadata(request.headers),
                              pixel.query_key(request.query) if key_in_url else None)
        except FootfallError:
            return ip_prefix(pixel.requester(request.headers, request.remote or "",
                                             self._settings.trust_forwarded_for).ip_address)
        return None

    def _keep_unrouted_pixel(self, request: web.Request, raw_path: str, message: str) -> bool:
        """Keeps the refusal of a pixel whose path names no catalog (a tracker's
        data-parent without its location, say) among the refusals of the project it
        names, as a refused pixel of a catalog is kept: each of the shop's events was
        lost with nothing said but a header of the GIF and a log line. With auth on,
        only when its key may use that project (as Envelope.bare_request decides).
        Whether it came without a key the server knows (with auth on)."""
        found = _UNROUTED_PIXEL.fullmatch(raw_path)
        version = (found.group(1) if found is not None else None) or "v2"
        method = f"/google.cloud.retail.{version}.UserEventService/CollectUserEvent"
        query = request.query
        envelope, started = self._envelope, time.perf_counter()
        refusal = ChosenStatus(grpc.StatusCode.NOT_FOUND, message)
        try:
            grant = self._policy.authenticate_early(method, Metadata(request.headers),
                                                    pixel.query_key(query))
        except FootfallError:  # no key the server knows: counted, not kept
            envelope.refuse(method, refusal, started)
            return True
        client = ip_prefix(pixel.requester(request.headers, request.remote or "",
                                           self._settings.trust_forwarded_for).ip_address)
        if found is None:  # (no project named: counted and logged, not kept)
            envelope.refuse(method, refusal, started, grant=grant, client=client, keep=False)
            return False
        # (the path as sent: a key in it percent-encoded is masked here, the refusal's
        # own mask finding the key as the query gives it, decoded)
        bare = user_event_service_pb2.CollectUserEventRequest(
            parent=pixel.masked(found.group(2), pixel.given_keys(request)),
            uri=query.get("uri", ""),
            user_event=query.get("user_event", query.get("userEvent", "")),
            raw_json=query.get("raw_json", query.get("rawJson", "")))
        kept, grant = envelope.bare_request(method, lambda: bare, grant)
        # (a key of another project: counted, not kept; with auth on, refuse keeps
        # nothing without the grant)
        envelope.refuse(method, refusal, started, request=kept, grant=grant, client=client)
        return False

    def _pixel_head(self, request: web.Request, route: Route) -> web.Response:
        """HEAD of a collect route: the status and headers of an accepted pixel, and
        nothing done. HEAD is safe (RFC 9110 section 9.2.1) while the GET records an
        event, so a link checker or prefetcher asking for the headers is no visit:
        nothing is checked, recorded or kept (a refusal kept would be a write too)."""
        try:
            output = transcode.output_of(request.query)  # the form of the answer
        except FootfallError as exc:
            return self._refused(request, route, transcode.DEFAULT_OUTPUT, exc)
        body, headers = _render(route, output, pixel_body())
        return self._cors(request, route, web.Response(body=body, headers=headers))

    async def _stream(self, request: web.Request, route: Route, path_values: dict[str, str],
                      context: CallContext, output: transcode.Output,
                      started: float, grant: Grant | None) -> web.StreamResponse:
        """A server-streaming RPC as server-sent events: the servicer admits and
        opens it (`open_stream`; `grant`: the key's, as screened) before the answer
        starts, so a refusal is an ordinary JSON error."""
        most = max(1, int(self._settings.http_max_connections * STREAM_SHARE))
        project = project_of(path_values.get("parent", "")) or ""
        # One project's share of them, as of --max-watches: one project's reader key
        # opened every HTTP stream there was (500 of 500, its watches' share being 500
        # too), and every other project's console live feed was refused.
        settings = self._settings
        share = settings.max_watches_per_project / settings.max_watches \
            if settings.max_watches_per_project >= 0 else 0.5
        mine = max(1, int(most * min(1.0, share)))
        full = None
        if self._streams >= most:
            full = ResourceExhausted(
                f"{most} HTTP streams are open, as many as may be (half of "
                f"--http-max-connections, so that writes always find room); watch "
                f"over gRPC, which has room for --max-watches", retry_after=1.0)
        elif self._project_streams.get(project, 0) >= mine:
            full = ResourceExhausted(
                f"project {project[:100]!r} has {mine} HTTP streams open, its share of "
                f"the {most} there may be (as --max-watches-per-project is of "
                f"--max-watches); close one, or watch over gRPC", retry_after=1.0)
        if full is not None:
            return self._refused(request, route, output,
                                 self._envelope.refuse(route.grpc_method, full, started,
                                                       context, grant=grant))
        self._streams += 1  # taken before the stream opens: opens at once count too
        self._project_streams[project] = self._project_streams.get(project, 0) + 1
        try:
            try:
                message = sse.resumed(transcode.build_request(
                    route, path_values, request.query.items(), b""),
                    request.headers.get(sse.LAST_EVENT_ID))
                servicer: Any = getattr(route.call, "__self__")  # noqa: B009
                messages = await servicer.open_stream(route.method.name, message, context,
                                                      grant=grant)
            except Exception as exc:
                return self._refused(request, route, output, self._envelope.refuse(
                    route.grpc_method, exc, started, context, grant=grant))
            if request.method == "HEAD":  # the opened stream's headers; its messages unread
                await watch.end_answered(messages)
                return self._cors(request, route, web.StreamResponse(headers=sse.HEADERS))
            return await sse.respond(request, messages, output,
                                     functools.partial(self._cors, request, route),
                                     sse.start_of(message))
        finally:
            self._streams -= 1
            left = self._project_streams.pop(project) - 1
            if left:
                self._project_streams[project] = left

    async def _within(self, work: Awaitable[Any], seconds: float | None,
                      go_on: bool = True) -> Any:
        """`work`'s result, or DEADLINE_EXCEEDED once the caller's `seconds` (its
        X-Server-Timeout) are up; the work itself goes on if `go_on` (a write it
        started still commits) and records its own outcome, and `stop` waits for
        it; else it is cancelled (and records that)."""
        if seconds is None or seconds > MAX_WAIT_SECONDS:
            return await work
        if go_on:
            task = asyncio.ensure_future(work)
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            work = asyncio.shield(task)
        try:
            return await asyncio.wait_for(work, timeout=seconds)
        except TimeoutError:
            raise DeadlineExceeded("the deadline (X-Server-Timeout) passed before the "
                                   "answer was ready") from None

    def _refused(self, request: web.Request, route: Route, output: transcode.Output,
                 error: FootfallError, closing: bool = False) -> web.Response:
        """Google's JSON error for `error`, or the pixel's GIF; `closing`: its
        connection is closed after it."""
        status = to_rpc_status(error)
        if pixel.is_pixel(route, output):
            answer = pixel.refused(status, request.remote or "?", pixel.given_keys(request))
            if closing:
                answer.force_close()
            return self._cors(request, route, answer)
        # (a body too large or too slow: the rest is not worth reading)
        response = json_error(status, http_status_of(error), closing=closing or isinstance(
            error, (BodyTooSlow, RequestTooLarge)))
        return self._cors(request, route, response)

    async def _read_body(self, request: web.Request, holder: str | None) -> bytes:
        """The body; RequestTooLarge past --max-request-bytes, BodyTooSlow if it is
        not in within --http-body-timeout, ResourceExhausted while the bodies being
        read hold the room of all bodies, or `holder`'s share of it (BODIES_HELD)."""
        limit = self._settings.max_request_bytes
        encoding = request.headers.get("Content-Encoding")
        if encoding is not None and encoding.strip().lower() not in _CODINGS:
            # aiohttp hands any other (gzip, gzip; compress) over as it came: its
            # bytes would be read as JSON and refused for what they are not.
            raise InvalidArgument.field("", unknown_coding(encoding))
        if (request.content_length or 0) > limit and "Content-Encoding" not in request.headers:
            # Said in its head: refused before it is sent (and the connection closed).
            raise RequestTooLarge(f"the request body is larger than the {limit} bytes this "
                                  f"server accepts (its --max-request-bytes; Content-Length: "
                                  f"{request.content_length})")
        try:
            if request.content.is_eof():  # it came with the head: no timer needed
                return await self._gather(request, holder)
            async with asyncio.timeout(self._settings.http_body_timeout):
                if expects_continue(request):  # (asked for by now: see _expect_later)
                    await request.writer.write(CONTINUE)
                    request.writer.output_size = 0  # (the answer has not begun)
                connection = request.protocol
                if not isinstance(connection, Connection):  # (a test's own server)
                    return await self._gather(request, holder)
                connection.reads_body(request.content)  # (paced from now: see SlowBody)
                try:
                    return await self._gather(request, holder)
                finally:
                    connection.reads_body(None)
        except SlowBody as exc:  # (the rest is not read: the connection closes)
            raise BodyTooSlow(str(exc)) from None
        except ConnectionError:  # not a bug of ours: no traceback, no INTERNAL
            raise Cancelled("the caller closed the connection before its body was in") \
                from None
        except SmallChunks as exc:  # (the rest is not read: the connection closes)
            raise InvalidArgument.field("", str(exc)) from None
        except NotUnpacked as exc:  # (the connection closes after the answer: see
            raise InvalidArgument.field("", str(exc)) from None  # connections.Connection)
        except (http_exceptions.PayloadEncodingError, web_protocol.RequestPayloadError):
            raise InvalidArgument.field(  # (a body aiohttp could not read)
                "", not_unpacked(request.headers.get("Content-Encoding", ""))) from None
        except TimeoutError:
            raise BodyTooSlow(f"the request body did not arrive within "
                              f"{self._settings.http_body_timeout:g} s "
                              f"(--http-body-timeout)") from None

    async def _gather(self, request: web.Request, holder: str | None) -> bytes:
        """The body as it arrives (unpacked, if it came with a Content-Encoding),
        counted against the bytes bodies being read or served may hold, `holder`'s
        and all: the caller gives them back (`_holding`) once its call is done with
        the body."""
        limit = self._settings.max_request_bytes
        body = bytearray()
        coding = request.headers.get("Content-Encoding", "").strip().lower()
        unpacker = Unpacker(coding) if coding in _PACKED else None
        packed = 0  # (bytes of a packed body as they came)
        try:
            while chunk := await request.content.readany():
                packed += len(chunk)
                if unpacker is not None and packed > packed_limit(limit):
                    raise RequestTooLarge(f"the request body came packed in more than "
                                          f"{packed_limit(limit)} bytes, more than any body "
                                          f"of the {limit} bytes this server accepts (its "
                                          f"--max-request-bytes) packs into")
                for piece in unpacker.pieces(chunk) if unpacker else (chunk,):
                    self._bodies.take(holder, len(piece), BODIES)
                    body += piece
                    if len(body) > limit:
                        raise RequestTooLarge(f"the request body is larger than the "
                                              f"{limit} bytes this server accepts (its "
                                              f"--max-request-bytes)")
            if unpacker is not None:
                unpacker.end()
        except BaseException:
            self._bodies.give_back(holder, len(body))
            raise
        return bytes(body)

    def _holding(self, holder: str | None, size: int, work: Coroutine[Any, Any, T]
                 ) -> asyncio.Task[T]:
        """`work`, as a task; the `size` bytes of its body count against the budget
        (BODIES_HELD) until it is done, deadline passed or not (a large body waits
        for a decoder thread, and is decoded, while it is held). Given back when the
        task ends, even one cancelled before it started: a coroutine cancelled so
        never runs its `finally` (a deadline of 0 leaked its body's bytes for good,
        and 16 such calls held the budget of every body)."""
        task = asyncio.ensure_future(work)
        task.add_done_callback(lambda _: self._bodies.give_back(holder, size))
        return task

    def _no_route(self, method: str, raw_path: str, keys: tuple[str, ...] = ()
                  ) -> web.Response:
        return json_error(self._no_route_status(method, raw_path, keys))

    def _no_route_status(self, method: str, raw_path: str, keys: tuple[str, ...] = ()
                         ) -> status_pb2.Status:
        """NOT_FOUND naming the path, `keys` (the request's credentials, given_keys)
        masked in it: a key in a path (a tracker's setting misplaced) was logged in
        its call's line, with no key of the server's to mask when it is none."""
        others = self.router.methods_for(raw_path)
        read = _read_hint(method, raw_path)
        why = f"; this path answers {', '.join(others)}{read}" if others else \
            read or _route_hint(raw_path)
        return status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message=pixel.masked(
            f"no route for {method} {pixel.masked(raw_path, keys)[:300]}{why}", keys))

    # -- CORS ----------------------------------------------------------------

    def _cors(self, request: web.Request, route: Route | None, response: R) -> R:
        """`response` with the CORS headers --cors-origins grants the page's Origin
        for `route`."""
        origin = request.headers.get("Origin")
        if origin and self._origins.allows_origin(origin, route):
            listed = self._origins.lists(origin)
            response.headers["Access-Control-Allow-Origin"] = origin if listed else "*"
            response.headers["Access-Control-Expose-Headers"] = pixel.ERROR_HEADER
            if listed:
                response.headers["Vary"] = "Origin"
        return response

    def _preflight(self, request: web.Request, raw_path: str) -> web.Response:
        methods = ["GET", "HEAD"] if raw_path == TRACKER_PATH else \
            self.router.methods_for(raw_path)
        if not methods:
            return self._no_route("OPTIONS", raw_path)
        allow = ", ".join([*methods, "OPTIONS"])
        response = web.Response(status=204, headers={"Allow": allow, **EVERY})
        origin = request.headers.get("Origin")
        asked = self.router.match(request.headers.get("Access-Control-Request-Method", "GET"),
                                  raw_path)
        route = asked[0] if asked is not None else None
        if origin and (route is not None or raw_path == TRACKER_PATH) \
                and self._origins.allows_origin(origin, route):
            response.headers.update({
                "Access-Control-Allow-Methods": allow,
                "Access-Control-Allow-Headers": allowed_headers(
                    request.headers.get("Access-Control-Request-Headers")),
                "Access-Control-Max-Age": "3600",
            })
        return self._cors(request, route, response)


async def _answer(route: Route, output: transcode.Output, answers: Answers,
                  holder: str | None, request: web.Request, message: Message,
                  context: CallContext) -> tuple[bytes, dict[str, str]]:
    """The servicer's answer to `message`, as the body and headers of the HTTP
    response (written off the loop when large, within the room of `answers` and
    `holder`'s share of it: RESOURCE_EXHAUSTED past it; one so written is held in
    the budget until `request` is done, and is sent whatever its JSON weighs: see
    connections.keep). A servicer may answer a large message as its bytes (see
    console.service)."""
    answer = await route.call(message, context)
    if request.method == "HEAD" and _answers_json(route, output):
        # Its status and headers alone: a HEAD may leave out Content-Length (RFC 9110
        # section 8.6: sent, it must be the GET's exact length), so its JSON is not
        # written only to be counted (a page of 1,000 events took 55 ms of CPU to
        # write, as its GET did). Refused as its GET would be when large answers
        # hold their room (429): no room is taken, none being needed.
        size = len(answer) if isinstance(answer, bytes) else answer.ByteSize()
        if isinstance(answer, bytes) or transcode.written_off_loop(answer, size):
            answers.check(holder, size)
        elif answers.total:
            # A small message's JSON may pass FREE_ANSWER_BYTES all the same (its
            # GET is then counted as it is sent, and was refused 429 where the HEAD
            # answered 200): written as its GET writes it, only when large answers
            # hold some of their room already (else one of any size is let in).
            body = _render(route, output, answer)[0]
            if len(body) > FREE_ANSWER_BYTES:
                answers.check(holder, len(body))
        return b"", JSON_HEADERS
    if isinstance(answer, bytes):
        kind, wire = route.response_class, answer
    elif not transcode.written_off_loop(answer, answer.ByteSize()):
        return _render(route, output, answer)
    else:
        kind, wire = type(answer), answer.SerializeToString()
    del answer  # (while it waits, its bytes are held, not the decoded message)
    return await answers.render(kind, wire, functools.partial(_render, route, output), holder,
                                functools.partial(keep, request))


def _answers_json(route: Route, output: transcode.Output) -> bool:
    """Whether `route` answers JSON (JSON_HEADERS) whatever its answer holds: not an
    HttpBody's own bytes."""
    kind = route.response_class.DESCRIPTOR
    if route.response_body:
        kind = kind.fields_by_name[route.response_body].message_type
    return output.explicit_json or kind is None or kind.full_name != HTTP_BODY


def _render(route: Route, output: transcode.Output, answer: Any
            ) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the HTTP response that carries `answer`."""
    if route.response_body:
        answer = getattr(answer, route.response_body)
    if route.retail_version and answer.DESCRIPTOR.full_name in _OPERATION_ANSWERS:
        answer = records.in_version(answer, route.retail_version)
    if answer.DESCRIPTOR.full_name == HTTP_BODY and not output.explicit_json:
        return answer.data, {**NO_STORE, "Content-Type": answer.content_type
                             or "application/octet-stream"}
    return transcode.response_json(answer, output), JSON_HEADERS


async def _expect_later(request: web.Request) -> web.StreamResponse | None:
    """What aiohttp calls on a request with an Expect header, before the handler: an
    expectation other than 100-continue is answered 417; a body expected is asked for
    (100 Continue) only once the call's key is checked and the body is to be read
    (`_read_body`). aiohttp's own asked for it at once: a caller without a key was
    invited to send its body, then refused. Unasked, it is never sent, and the
    connection closes after the answer (connections.Connection._handle_request)."""
    expect = request.headers.get("Expect", "")
    if request.version != HttpVersion11 or expect.strip().lower() == CONTINUE_EXPECTED:
        return None
    return json_error(status_pb2.Status(  # (closing: its body, if any, is not read)
        code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
        message=f"the Expect header {expect[:50]!r} is not one this server meets: only "
                f"100-continue is"), 417, closing=True)


def _cancel_when_lost(request: web.Request) -> Callable[[], None] | None:
    """Cancel the task serving `request` if its connection is lost before it is
    done; the function that stops watching (None: not a connection of ours)."""
    connection = request.protocol
    task = asyncio.current_task()
    if not isinstance(connection, Connection) or task is None:
        return None
    return connection.when_lost(task.cancel)


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS for the HTTP port from --tls-cert/--tls-key, or None."""
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context
