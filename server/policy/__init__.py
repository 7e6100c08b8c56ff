"""What every call goes through on both transports, in one place: API keys and
roles, fault injection, write quotas, dropping work whose caller is gone, and
the per-call metrics and log line.

Both transports reach it through one envelope (`server.policy.envelope`), which
hands it the full method name (`/google.cloud.retail.v2.UserEventService/WriteUserEvent`),
the call's metadata (lower-case names), the request message and a context with
`done()` (the caller is gone) and `time_remaining()`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import Message

from server.clock import Clock
from server.config import Settings
from server.errors import (
    Cancelled,
    DeadlineExceeded,
    FootfallError,
    NotFound,
    ResourceExhausted,
)
from server.names import is_project_id
from server.policy import faults
from server.policy.auth import (
    WRITER_METHODS,
    Authenticator,
    Grant,
    Role,
    authorize,
    project_of,
    resource_fields,
    resource_names,
)
from server.policy.faults import FaultInjector
from server.policy.large import LargeBytes, LargeRequests
from server.policy.metrics import Metrics, split_method
from server.policy.quota import ByteQuota, TokenBuckets, WriteQuota

if TYPE_CHECKING:
    from server.console.rejections import Rejections

log = logging.getLogger("footfall.requests")

# Event writes: what a writer key may call and what the write quota counts.
QUOTA_METHODS = WRITER_METHODS
# Codes that say the server (not the client) has a problem: logged as warnings.
SERVER_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                          grpc.StatusCode.DATA_LOSS, grpc.StatusCode.UNAVAILABLE})
Metadata = Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class Admission:
    """Who a call was admitted for (what its log line says)."""

    project: str | None = None
    key_name: str | None = None
    key: str = dataclasses.field(default="", repr=False)  # the key itself (Grant.key)


OPEN = Admission()


_GOOGLE_CATALOG = re.compile(r"^projects/[^/]+/locations/(?P<location>[^/]+)"
                             r"(?:/catalogs/(?P<catalog>[^/]+))?")


def check_strict_names(method: str, request: Message) -> None:
    """With --strict-names, NOT_FOUND for a retail call that names a catalog Google
    has not, as Google answers (`catalog_id '...' not found for project`): each
    project has one, `default_catalog` in location `global`. Footfall otherwise makes
    any catalog its first event names, so a mistyped name in CI went unseen. The
    operations service is asked about retail names too (ListOperations of a catalog
    Google has not would otherwise answer an empty page); its talent names never
    match, having no location."""
    if not method.startswith(("/google.cloud.retail.", "/google.longrunning.")):
        return
    for field, name in resource_fields(request):
        match = _GOOGLE_CATALOG.match(name)
        if match is None or (match["location"] == "global"
                             and match["catalog"] in (None, "default_catalog")):
            continue
        wrong = (f"catalog_id {match['catalog'][:100]!r}" if match["location"] == "global"
                 else f"location {match['location'][:100]!r}")
        raise NotFound("google.cloud.retail.v2.Catalog", match[0],
                       f"{field}: {wrong} not found for project (with --strict-names only "
                       f"default_catalog in location global is)")


class Policy:
    """Admits (or refuses) calls to the `guarded` services and records every call."""

    def __init__(self, guarded: Iterable[str], auth: Authenticator | None = None,
                 quota: WriteQuota | None = None, faults_: FaultInjector | None = None,
                 metrics: Metrics | None = None, byte_quota: ByteQuota | None = None) -> None:
        self._guarded = frozenset(guarded)
        self._guards: dict[str, bool] = {}  # by method: the answer of `guards`
        self.auth = auth or Authenticator(None)
        self.quota = quota
        self.faults = faults_
        self.metrics = metrics or Metrics()
        self.byte_quota = byte_quota
        self.rejections: Rejections | None = None  # where refused event writes are kept
        self.strict_names = False  # --strict-names (see check_strict_names)
        self.large_requests = LargeRequests()
        self.large_bytes = LargeBytes()  # of each client address (see policy.large)
        self._keyless_lines = LineBudget()
        self._public_key_lines = LineBudget(PUBLIC_KEY_LINES, "calls of writer keys",
                                             " from one client address")
        self._open_lines = LineBudget(PUBLIC_KEY_LINES, "refused calls",
                                       " from one client address")
        self.keyless_refusals = KeylessRefusals()
        # (imported here: paces counts its lines by this module's LineBudget)
        from server.policy.paces import KeyPaces
        self.key_paces = KeyPaces(self.metrics)  # the keys' calls_per_second, both transports
        # time.monotonic() when an event write (WRITER_METHODS) was last admitted, or an
        # import wrote a batch (`wrote`): the console's reads are paced while writes come
        # (see console.pace.Listing)
        self.last_write = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings, guarded: Iterable[str],
                      clock: Clock | None = None, keys: str | None = None) -> Policy:
        """Raises AuthFileError when the auth file cannot be used. `keys`: the auth
        file's text to begin with, in place of what the file holds now."""
        quota = (WriteQuota(settings.quota_writes_per_minute, clock)
                 if settings.quota_writes_per_minute else None)
        byte_quota = (ByteQuota(settings.quota_bytes_per_minute, clock)
                      if settings.quota_bytes_per_minute else None)
        policy = cls(guarded, Authenticator(settings.auth_file or None, keys), quota,
                     FaultInjector() if settings.allow_fault_injection else None,
                     byte_quota=byte_quota)
        policy.strict_names = settings.strict_names
        policy.keyless_refusals = KeylessRefusals(max(1, settings.max_concurrent_rpcs // 10))
        return policy

    def guards(self, method: str) -> bool:
        """Whether `method` is one the policy applies to (not health or reflection)."""
        guarded = self._guards.get(method)
        if guarded is None:
            guarded = self._guards[method] = split_method(method)[0] in self._guarded
        return guarded

    def authenticate_early(self, method: str, metadata: Metadata,
                           query_key: str | None = None) -> Grant | None:
        """The grant of the call's key, before its request is even read or decoded;
        None when auth is off or `method` is open. UNAUTHENTICATED when the call
        carries no known key (admit() checks the rest)."""
        if self.auth.enabled and self.guards(method):
            return self.auth.authenticate(metadata, query_key, method)
        return None

    async def admit(self, method: str, metadata: Metadata, request: Message, context: Any,
                    query_key: str | None = None, grant: Grant | None = None) -> Admission:
        """Let the call through or raise why not; `grant` is what authenticate_early
        found (else the key is looked up here).

        UNAUTHENTICATED (no or unknown key), PERMISSION_DENIED (role or project),
        the injected code of an x-footfall-fail header (INVALID_ARGUMENT for a bad
        header), RESOURCE_EXHAUSTED (write or byte quota, with RetryInfo), CANCELLED or
        DEADLINE_EXCEEDED when the caller is gone already.
        """
        if not self.guards(method):
            return OPEN
        admission = self._authorized(method, metadata, request, query_key, grant)
        if self.strict_names:
            check_strict_names(method, request)
        if self.faults is not None:
            await self._inject(method, metadata, context)
        self._charge(method, admission, request, context)
        self._note_write(method)
        return admission

    def recheck(self, method: str, metadata: Metadata, request: Message
                ) -> Callable[[], FootfallError | None] | None:
        """For a call admitted now that goes on (a watch): what refuses it once the
        keys are read again without one that still allows it (None while they do,
        and until they are read again); None when auth is off or `method` open."""
        if not (self.auth.enabled and self.guards(method)):
            return None
        auth = self.auth
        checked = auth.generation

        def recheck() -> FootfallError | None:
            nonlocal checked
            if auth.generation == checked:
                return None
            checked = auth.generation
            try:
                self._authorized(method, metadata, request, None, None)
            except FootfallError as refusal:
                return refusal
            return None

        return recheck

    async def denied(self, method: str, metadata: Metadata, client: str) -> bool:
        """For a call of `method` refused PERMISSION_DENIED (its key's role or project)
        from `client` (ports.ip_prefix): whether its key's budget of refusals
        (refusal_budget) is past, after their delay if it is, as a refusal for want of
        a key waits past its address's (KeylessRefusals). Answered at once, one
        client's loop of a reader key's writes had the server refuse 630-875 a second
        over gRPC (~0.4 of a core), as fast as the client asked."""
        try:
            grant = self.authenticate_early(method, metadata)
        except FootfallError:  # (its key taken away meanwhile: refused for that)
            return False
        return grant is not None and grant.role is not Role.ADMIN and \
            await self.keyless_refusals.spend(refusal_budget(grant, client))

    def has_fault(self, header: str | None) -> bool:
        """Whether a call whose x-footfall-fail header is `header` may have a fault
        injected (it then needs `admit`)."""
        return header is not None and self.faults is not None

    def admit_now(self, method: str, metadata: Metadata, request: Message, context: Any,
                  grant: Grant | None = None) -> Admission:
        """`admit` for a call with no fault to inject (`has_fault` is False), without a
        coroutine; raises as `admit` does."""
        if not self.guards(method):
            return OPEN
        admission = self._authorized(method, metadata, request, None, grant)
        if self.strict_names:
            check_strict_names(method, request)
        self._charge(method, admission, request, context)
        self._note_write(method)
        return admission

    def wrote(self) -> None:
        """`last_write` now, for events or products written otherwise than by a call
        admitted here: an import's batch (retail.bulk_import), on its job's thread."""
        self.last_write = time.monotonic()

    def _note_write(self, method: str) -> None:
        """`last_write` now if `method` writes events: here, where every admitted call
        passes (a browser's pixel, served inline, skips the envelope, and the lists of
        a shop written to by pixels alone were never paced)."""
        if method in WRITER_METHODS:
            self.last_write = time.monotonic()

    def _authorized(self, method: str, metadata: Metadata, request: Message,
                    query_key: str | None, grant: Grant | None) -> Admission:
        """Who the call is admitted for (auth off: nobody in particular);
        UNAUTHENTICATED or PERMISSION_DENIED."""
        if not self.auth.enabled:
            return OPEN
        if grant is None:
            grant = self.auth.authenticate(metadata, query_key, method)
        return Admission(authorize(grant, method, request), grant.name, grant.key)

    def _charge(self, method: str, admission: Admission, request: Message,
                context: Any) -> None:
        """Take the call's share of the quotas (RESOURCE_EXHAUSTED), unless its caller
        is gone (CANCELLED, DEADLINE_EXCEEDED): a call refused, or one nobody waits
        for any more, spends nothing."""
        drop_if_gone(context)
        if (self.quota is not None or self.byte_quota is not None) and method in QUOTA_METHODS:
            project = admission.project or next(
                (p for p in map(project_of, resource_names(request)) if p), None)
            # No project, or none a name may hold: the servicer refuses the name. (A
            # bucket kept the id: writes naming projects of a megabyte each, refused
            # all the same, held a megabyte each until 10,000 buckets were swept.)
            if project is not None and is_project_id(project):
                if self.quota is not None:
                    self.quota.take(project)
                if self.byte_quota is not None:
                    try:
                        self.byte_quota.take(project, request.ByteSize())
                    except ResourceExhausted:
                        if self.quota is not None:
                            self.quota.give_back(project)
                        raise

    async def _inject(self, method: str, metadata: Metadata, context: Any) -> None:
        assert self.faults is not None
        header = next((value for key, value in metadata
                       if key == faults.HEADER and isinstance(value, str)), None)
        if header is None:
            return
        spec = faults.parse_spec(header)
        if spec.delay:
            await _wait(spec.delay, context)
        if self.faults.fires(method, header, spec):
            assert spec.code is not None
            raise faults.injected(spec.code, header)

    def record(self, method: str, transport: str, code: grpc.StatusCode, seconds: float,
               admission: Admission | None = None, message: str = "",
               key_name: str | None = None, public_from: str | None = None) -> None:
        """Count the call and write its log line: DEBUG when OK, INFO for a client's
        error, WARNING for the server's. `key_name`: the key's, when the call was
        refused before it was admitted (a role or a project not granted);
        `public_from`: the client address (ports.ip_prefix) of a call refused with a
        writer key, or of any call refused with auth off, whose lines are written
        within that address's budget (PUBLIC_KEY_LINES)."""
        self.metrics.observe_call(method, transport, code, seconds)
        level = (logging.DEBUG if code is grpc.StatusCode.OK else
                 logging.WARNING if code in SERVER_CODES else logging.INFO)
        if not log.isEnabledFor(level):
            return
        if self.auth.enabled and not key_name and (admission is None or not admission.key_name) \
                and not self._keyless_lines.take():
            return
        if public_from is not None and code is not grpc.StatusCode.OK \
                and not (self._public_key_lines if self.auth.enabled
                         else self._open_lines).take(public_from):
            return
        fields: dict[str, Any] = {"method": method.lstrip("/"), "transport": transport,
                                  "code": code.name, "duration_ms": round(seconds * 1000, 3)}
        if admission is not None and admission.project:
            fields["project"] = admission.project
        key_name = admission.key_name if admission is not None else key_name
        if key_name:
            fields["key"] = key_name
        if message:
            fields["message"] = message[:300]
        text = " ".join(f"{k}={_logfmt(v)}" for k, v in fields.items())
        log.log(level, "call %s", text, extra={"call": fields})


# The log lines of calls without a known key (with auth on) written at most, a window:
# one client without a key, its calls reset as soon as sent, had 2,000 refusals a
# second logged, 520 KB of log a second. The rest are counted, and said in one line.
KEYLESS_LINES, KEYLESS_LINES_SECONDS = 100, 10.0
# ... and those of calls refused with a writer key, from one client address, a window
# of as long: a writer key is public (a shop's pages carry it), and one client with it
# sending pixels that were refused had 2,250 refusals a second logged, two lines each,
# 850 KB of log a second (REST writes refused: 1,300 a second, 370 KB). A shop's own
# mistakes come from its visitors' many addresses, and are logged as before. With auth
# off every caller is anyone, and the refused calls of one address have a budget of as
# many (of their own): one client's loop of refused WriteUserEvent calls had every one
# logged, about 40% of the server's CPU (490 against 300 µs a refusal, 2,400 against
# 4,200 refusals a second at --log-level WARNING); the console keeps every refusal.
PUBLIC_KEY_LINES = 100
# The client addresses counted in a window, at most (more share one count): a client
# of IPv6 addresses has as many as it likes.
COUNTED_ADDRESSES = 10_000


class LineBudget:
    """How many log lines of calls without a key (`what`), or of each client address
    (the one `take` is given), may be written now (also of the HTTP requests that
    cannot be read: server.http.connections)."""

    def __init__(self, lines: int | None = None, what: str = "calls without an API key",
                 each: str = "", clock: Callable[[], float] = time.monotonic,
                 counted: str = "; /metrics counts them all") -> None:
        self._lines = KEYLESS_LINES if lines is None else lines
        self._what, self._each, self._counted = what, each, counted
        self._clock = clock
        self._lock = threading.Lock()
        self._began = clock()
        self._written: dict[str, int] = {}  # by client address ("" for all)
        self._left_out = 0

    def take(self, address: str = "") -> bool:
        """Whether one more line (of `address`'s) may be written (one saying how many
        were not, first, once a window that left some out has passed)."""
        with self._lock:
            now = self._clock()
            if now - self._began >= KEYLESS_LINES_SECONDS:
                self._say_left_out(now)
                self._began = now
                self._written.clear()
            if address not in self._written and len(self._written) >= COUNTED_ADDRESSES:
                address = ""
            written = self._written.get(address, 0)
            if written < self._lines:
                self._written[address] = written + 1
                return True
            self._left_out += 1
            if self._left_out == 1:
                # Said when the window ends, not only at the next call without a key:
                # the last window of a flood has none after it.
                timer = threading.Timer(self._began + KEYLESS_LINES_SECONDS - now, self._ended)
                timer.daemon = True
                timer.start()
            return False

    def _ended(self) -> None:
        with self._lock:
            now = self._clock()
            if now - self._began >= KEYLESS_LINES_SECONDS:
                self._say_left_out(now)

    def _say_left_out(self, now: float) -> None:
        if self._left_out:
            log.info("%d more %s were not logged in the last %.0f s (at most %d lines "
                     "every %.0f s%s%s)", self._left_out, self._what, now - self._began,
                     self._lines, KEYLESS_LINES_SECONDS, self._each, self._counted)
            self._left_out = 0


# Refusals for want of a key that one client address (ports.ip_prefix) is answered at
# once: a burst of KEYLESS_REFUSALS_BURST, then KEYLESS_REFUSALS_PER_SECOND; beyond,
# each is answered after KEYLESS_REFUSAL_DELAY (a timer on the loop, no thread), and over
# HTTP its connection closed. A browser's page or a probe without a key stays well
# within; a client refusing to stop had the server refuse 5,400 a second on 4 HTTP
# connections (86% of a core), or 3,100 a second with 100 gRPC calls in flight (81%).
# Refusals waiting are at most WAITING_PER_ADDRESS of one address and a tenth of
# --max-concurrent-rpcs in all, so that one client's waiting calls never take the room
# of the calls of keys; past that, a call is refused at once RESOURCE_EXHAUSTED (over
# HTTP 429, closing), never answered as if it had waited: with 600 gRPC calls in flight
# on 4 connections, the 344 past the bound were answered at once, 2,230 a second, and
# another client's durable writes went from 2,500 a second to 760.
KEYLESS_REFUSALS_PER_SECOND, KEYLESS_REFUSALS_BURST = 20, 200
KEYLESS_REFUSAL_DELAY = 1.0
WAITING_PER_ADDRESS = 256
# (The refusals past that bound are answered at once on purpose. A refusal that waits
# holds its place: over gRPC one of --max-concurrent-rpcs (grpc counts a call until it
# ends; one refused past its caller's share holds one outside that share), over HTTP a
# connection. A wait only paces a caller by the places it may hold (it is refused
# `waiting / KEYLESS_REFUSAL_DELAY` times a second), so waiting past the bound would not
# slow a caller that has more, only let it hold every place, and every other caller
# would be refused: worse than a refusal's CPU. Past it, over HTTP, the connection is
# closed too, and the caller pays a new one for each. A client of one budget keeping
# 600 calls in flight (a reader key's writes, refused for its role) had 490-630 refused
# a second, 0.35-0.46 of a core, as fast as it asked (a loaded machine, load 17).)
# The files anyone may fetch (the console's pages, /footfall.js, /metrics) and the CORS
# preflights a browser sends before a call have a budget of their own per address, of
# this much: a person opening the console fetches some 30 files (an unchanged one a
# 304), a shop's pages /footfall.js once per visitor and 5 minutes, and a visitor's
# refusals must not delay them, nor they a refusal. Unpaced, 4 connections asking for
# /console/app.js without a key had 5,800 answered a second and another client's
# durable writes went from 1,100 a second to 440.
KEYLESS_FILES_PER_SECOND, KEYLESS_FILES_BURST = 100, 500
# An IPv6 client's budgets are its /64's (ports.ip_prefix), and a hosting provider's
# customer is given a /56 or a /48 as well: 256 or 65,536 /64s, each with budgets of its
# own. So the /64s of one /48 (its "site") share budgets of SITE_BUDGETS times one
# /64's as well (a burst of 3,200 refusals and 320 a second; of files, 8,000 and 1,600),
# and at most WAITING_PER_ADDRESS of its answers wait at once, as one address's: never
# one /48 for one budget, which a campus or a mobile carrier's pool of /64s (one to a
# phone) is, whose visitors would all wait for one of them. (Cloudflare and GitLab
# count an IPv6 client by its /64 alone; a provider's /48 had 65,536 times a client's
# budget, and with 4 of its /64s held every place the refusals of all addresses wait in.)
SITE_BUDGETS = 16
SITE_PREFIX = 48


def refusal_budget(grant: Grant, client: str) -> str:
    """The budget of refusals (KeylessRefusals) that a refusal of a call of `grant`'s key
    from `client` (ports.ip_prefix) spends, when it is refused for the key's own doing (past
    its share of calls, its pace's waiting, its role or project): the key's own, and a
    writer key's by client address too. A writer key is public (a shop's pages carry it)
    and each of the shop's visitors calls with it: one budget of the key's, one client
    with it spent it, and every visitor's refusals (a pixel of a page naming another
    catalog, one past the pace of the key) waited a second each. Never its address's
    alone: a flood of the key's then had the address's health checks and probes wait."""
    budget = f"key {grant.identity.hex()}"
    return f"{budget} from {client}" if grant.role is Role.WRITER else budget


class KeylessRefusals:
    """Delays the refusals of calls without a known key of a client address past
    its budget (see KEYLESS_REFUSALS_PER_SECOND), and such callers' health checks
    (server.rpc._read_first) and fetches of files (KEYLESS_FILES_PER_SECOND);
    touched on the loop only."""

    def __init__(self, most_waiting: int = 1000, clock: Clock | None = None) -> None:
        self._buckets = TokenBuckets(KEYLESS_REFUSALS_PER_SECOND * 60, clock,
                                     burst=KEYLESS_REFUSALS_BURST)
        self._files = TokenBuckets(KEYLESS_FILES_PER_SECOND * 60, clock,
                                   burst=KEYLESS_FILES_BURST)
        # (of the /48s of IPv6 clients: see SITE_BUDGETS)
        self._site_buckets = TokenBuckets(KEYLESS_REFUSALS_PER_SECOND * SITE_BUDGETS * 60,
                                          clock, burst=KEYLESS_REFUSALS_BURST * SITE_BUDGETS)
        self._site_files = TokenBuckets(KEYLESS_FILES_PER_SECOND * SITE_BUDGETS * 60, clock,
                                        burst=KEYLESS_FILES_BURST * SITE_BUDGETS)
        self._most = most_waiting
        self.waiting = 0
        self._by_address: dict[str, int] = {}

    async def refused(self, address: str) -> bool:
        """Whether `address` is past its budget, after waiting KEYLESS_REFUSAL_DELAY
        if it is. Raises ResourceExhausted (see `wait`)."""
        if not self.past(address):
            return False
        await self.wait(address)
        return True

    def past(self, address: str) -> bool:
        """Whether `address` is past its budget (within it, one refusal of it is
        taken): for a caller that answers at once without a coroutine when it is
        not, and awaits `wait` when it is (a browser's pixel, see gateway._pixel).
        An IPv6 /64's is its own and its /48's (SITE_BUDGETS)."""
        return _past(self._buckets, self._site_buckets, address)

    def past_files(self, address: str) -> bool:
        """As `past`, of the budget of fetches of files and preflights of `address`."""
        return _past(self._files, self._site_files, address)

    async def spend(self, budget: str) -> bool:
        """For a refusal of a known key's call (see refusal_budget), which has an answer
        of its own: whether `budget` is past, after waiting KEYLESS_REFUSAL_DELAY if it
        is; at once when too many of its answers wait already (WAITING_PER_ADDRESS),
        its own refusal then answered, not the one `wait` raises for want of a key."""
        if not self.past(budget):
            return False
        try:
            await self.wait(budget)
        except ResourceExhausted:
            pass
        return True

    async def wait(self, address: str) -> None:
        """Wait KEYLESS_REFUSAL_DELAY before the answer of `address`, past its
        budget, is sent. Raises ResourceExhausted at once when too many answers
        wait already (of the address, or in all): the call is then refused, never
        answered as one that waited."""
        site = site_of(address)
        for holder, who in ((address, "client address"), (site, "client network")):
            held = self._by_address.get(holder, 0) if holder is not None else 0
            if held >= WAITING_PER_ADDRESS:
                raise ResourceExhausted(
                    f"this {who} has {held} calls without an API key waiting already, "
                    f"each past its budget answered after {KEYLESS_REFUSAL_DELAY:g} s; send "
                    f"a key (x-goog-api-key), or fewer calls", retry_after=KEYLESS_REFUSAL_DELAY)
        if self.waiting >= self._most:
            raise ResourceExhausted(
                f"{self.waiting} calls without an API key are waiting already; send a key "
                f"(x-goog-api-key)", retry_after=KEYLESS_REFUSAL_DELAY)
        holders = (address,) if site is None else (address, site)
        for holder in holders:
            self._by_address[holder] = self._by_address.get(holder, 0) + 1
        self.waiting += 1
        try:
            await asyncio.sleep(KEYLESS_REFUSAL_DELAY)
        finally:
            self.waiting -= 1
            for holder in holders:
                left = self._by_address.pop(holder) - 1
                if left:
                    self._by_address[holder] = left


@functools.lru_cache(maxsize=4096)
def site_of(budget: str) -> str | None:
    """The /48 (SITE_PREFIX) of an IPv6 client's /64 as ports.ip_prefix writes it
    (`2001:db8:1:2::/64` -> `2001:db8:1::/48`), a writer key's by client address too
    (`key K from 2001:db8:1:2::/64` -> `key K from 2001:db8:1::/48`: refusal_budget;
    by /64 alone, a client of the public key with a /48 had 65,536 budgets of its
    refusals); None for anything else (an IPv4 address, a key's own budget)."""
    key, party, address = budget.rpartition(" from ")
    if not address.endswith("/64"):
        return None
    try:
        network = ipaddress.IPv6Network(address)
    except ValueError:
        return None
    return f"{key}{party}{network.supernet(new_prefix=SITE_PREFIX)}"


def _past(buckets: TokenBuckets, sites: TokenBuckets, address: str) -> bool:
    """Whether `address` is past its budget of `buckets`, or its /48 its budget of
    `sites` (within both, one of each is taken)."""
    if buckets.try_take(address) is not None:
        return True
    site = site_of(address)
    if site is not None and sites.try_take(site) is not None:
        buckets.give_back(address)
        return True
    return False


async def _wait(seconds: float, context: Any) -> None:
    """Sleep up to `seconds`, returning early once the caller is gone."""
    step, waited = 0.02, 0.0
    while waited < seconds and not context.done():
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return
        await asyncio.sleep(min(step, seconds - waited))
        waited += step


def deadline_of(context: Any) -> float | None:
    """The call's deadline on time.monotonic(), or None when it has none: for work
    whose length the request decides (e.g. listing gs:// files)."""
    remaining = context.time_remaining() if context is not None else None
    return None if remaining is None else time.monotonic() + remaining


def drop_if_gone(context: Any) -> None:
    """CANCELLED / DEADLINE_EXCEEDED when nobody waits for the answer any more:
    work (and writes) for a caller that is gone are not done."""
    if context is None:
        return
    remaining = context.time_remaining()
    if context.done() or (remaining is not None and remaining <= 0):
        raise caller_gone(context)


def caller_gone(context: Any) -> Cancelled | DeadlineExceeded:
    """Why a call whose caller is gone ends: its deadline passed, or it went away."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return DeadlineExceeded("the caller's deadline passed before the call was served")
    return Cancelled("the caller went away before the call was served")


def _logfmt(value: Any) -> str:
    """`value` as one logfmt token: bare when it is a plain word, else quoted, with
    every character that is not printable escaped (`\\r`, `\\x1b`, `\\u2028`): a
    message quotes what a client sent, and a carriage return or a terminal's escape
    sequence in it would let the client forge or hide lines of the log."""
    text = str(value)
    if text and all(c.isalnum() or c in "-_./:@" for c in text):
        return text
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                       for c in text)
    return '"' + text + '"'
