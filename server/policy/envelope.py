"""The one envelope every call of either transport runs in: the key, the request
decoded, admission (role, project, faults, quotas, gone callers), the servicer,
any exception turned into a domain error, then the metrics and the log line.

`run` is a coroutine both transports await on the one event loop, and the
servicer's method a coroutine it awaits. A transport keeps only its framing:
gRPC decodes bytes and aborts with the status of a refusal; HTTP reads its
body first (after `screen`, so that nobody without a key makes the server read
or parse one) and renders Google's JSON
error. A refusal is returned (a FootfallError), not raised: each transport
renders it in its own framing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from server.console import origin
from server.console.rejections import KEY_MASK
from server.errors import ChosenStatus, FootfallError, Internal
from server.loop import in_decoder, set_large_call
from server.policy import Admission, Metadata, Policy, caller_gone, drop_if_gone
from server.policy.auth import (
    Grant,
    NotYourProject,
    Role,
    authorize,
    caller_identity,
    resource_names,
    set_caller,
)
from server.ports import client_address, ip_prefix

log = logging.getLogger(__name__)
# A request of more bytes than this (body and query over HTTP) is decoded off the
# loop, which serves every call of both transports: JSON to proto costs about 1 ms
# per 5 KB in Python (a 7 MB body held every call for 1.5 s), and a binary request of
# a million list elements took seconds to decode and check.
LARGE_REQUEST_BYTES = 64 * 1024
# ... and so is a request of more list elements (and map entries) than this, however
# few its bytes: what a request costs grows with its elements more than its bytes
# (each product of an event is decoded, checked, joined with the catalog and counted
# in its day's rollups: 5,500 products in 59 KB of binary took 64 ms, 1,950 in 61 KB
# of JSON 58 ms, most of it on the loop or the commit thread). Four such writes at once
# of a shop's writer key (public in its pages) took another project's durable writes
# from about 860 a second to 5, and four of GET pixels of 620 products (16 KiB, the
# most a GET carries) to 7. A page shows at most 120 products (Google's retail
# page_size), so an event of more than this is rare, and is paced only when large
# requests hold the budget.
LARGE_REQUEST_ELEMENTS = 250


def many_elements(message: Any, limit: int = LARGE_REQUEST_ELEMENTS) -> bool:
    """Whether `message` holds more than `limit` elements of repeated fields and maps,
    in itself and the messages its singular fields hold, at any depth, or of the JSON
    in its strings as their commas tell (CollectUserEvent carries its event as JSON
    text). The elements of a list are counted, not looked into: walking each of an
    event's products cost 2.5 us a product on the loop, for every write (616 us for
    240), where this costs about 3 us whatever the request."""
    left = limit
    pending = [message]
    while pending:
        for field, value in pending.pop().ListFields():
            if field.is_repeated:
                left -= len(value)
            elif field.message_type is not None:
                pending.append(value)
                continue
            elif isinstance(value, str):
                left -= value.count(",")
            if left < 0:
                return True
    return False


def json_large(body: bytes, query: str) -> bool:
    """Whether a JSON request (its body and URL query) is large: more than
    LARGE_REQUEST_BYTES, or as many elements as LARGE_REQUEST_ELEMENTS as its commas
    tell (one before each element of a list or member of an object but the first;
    those in its strings count too; in the query, `%2C` too, as a page's pixel sends
    them), judged before its JSON is decoded."""
    if len(body) + len(query) > LARGE_REQUEST_BYTES:
        return True
    commas = body.count(b",")
    if query:
        commas += query.count(",") + query.count("%2C") + query.count("%2c")
    return commas >= LARGE_REQUEST_ELEMENTS


def client_of(context: Any) -> str:
    """The client address (ports.ip_prefix) of the call of `context`: an HTTP call's
    as its requester has it (the forwarded one, with --trust-forwarded-for), a gRPC
    call's from its peer (`ipv4:1.2.3.4:5678`, `ipv6:%5B2001:db8::1%5D:5678`); ""
    when unknown."""
    requester = getattr(context, "requester", None)
    if requester is not None:
        return ip_prefix(requester.ip_address)
    peer = getattr(context, "peer", None)  # (a test's context may have none)
    return client_address(peer() if peer is not None else "")


def reader_of(context: Any) -> bytes | str:
    """Whose turns a read of the call of `context` takes in a budget of reading time
    (console.pace.Listing: list pages, insights): its key's, else (auth off) its client
    address's."""
    return caller_identity() or client_of(context)


def _chosen(context: Any) -> ChosenStatus | None:
    """The status a servicer set on `context` before it raised, if it set one (the
    generated base classes do: UNIMPLEMENTED)."""
    code = context.code() if context is not None else None
    if code is None:
        return None
    details = context.details() or ""
    if isinstance(details, bytes):  # grpc keeps them encoded
        details = details.decode("utf-8", "replace")
    return ChosenStatus(code, details)


def _key_of(admission: Admission | None, grant: Grant | None) -> tuple[str | None, str]:
    """The name of the key a call came with, and the key itself ("" if none known)."""
    if admission is not None:
        return admission.key_name, admission.key
    return (grant.name, grant.key) if grant is not None else (None, "")


class Envelope:
    """Runs the calls of one transport ("grpc" or "http") under `policy`."""

    def __init__(self, policy: Policy, transport: str) -> None:
        self.policy = policy
        self.transport = transport

    def screen(self, method: str, metadata: Metadata, query_key: str | None = None
               ) -> Grant | None:
        """The call's grant before anything of its request is read (None when auth
        is off or the method open); raises UNAUTHENTICATED. For a transport that
        reads the request before `run` (HTTP bodies come after the head)."""
        return self.policy.authenticate_early(method, metadata, query_key)

    @staticmethod
    def check_named(method: str, grant: Grant | None, named: Callable[[], Any]) -> None:
        """PERMISSION_DENIED when `grant` may not call `method` on the projects that
        `named()`, the request as far as the URL path gives it, names (nothing to
        check when it names none, or auth is off): a key may not make the server read,
        and hold, the body of a call it could not make (a page's public writer key
        held the room of every body with gzip bodies sent to another project's reads)."""
        if grant is not None:
            request = named()
            if resource_names(request):  # (else its body names the project: checked then)
                authorize(grant, method, request)

    async def run(self, method: str, metadata: Metadata, raw: Any,
                  decode: Callable[[Any], Any], context: Any,
                  call: Callable[[Any, Any], Awaitable[Any]], grant: Grant | None = None,
                  started: float | None = None, large: bool = False,
                  bare: Callable[[], Any] | None = None) -> Any:
        """`await call(decode(raw), context)`'s answer, or the FootfallError that refuses
        the call (see `refuse`). `grant`: what `screen` found (else the key is
        checked here, before decoding); `started`: when the transport began; `large`:
        decode off the loop (server.loop.in_decoder), in a turn of the key's large
        requests once the bytes of its client address are due (policy.large);
        `bare`: the request without `raw` (its URL path's fields), for the refusal of
        one `decode` refuses."""
        if started is None:
            started = time.perf_counter()
        origin.set_transport(origin.of_call(self.transport, method))
        admission: Admission | None = None
        request = None
        turn = None
        try:
            if grant is None:
                grant = self.policy.authenticate_early(method, metadata)
            set_caller(grant)
            if large:
                set_large_call()
                size = max(len(raw) if isinstance(raw, bytes) else 0, LARGE_REQUEST_BYTES)
                client = client_of(context)
                if grant is not None and grant.role is not Role.ADMIN \
                        and await self.policy.large_bytes.pace(client, size):
                    drop_if_gone(context)  # (gone while it waited: not decoded)
                turn = await self.policy.large_requests.turn(grant, size, client)
                if turn is not None:
                    # Its caller may have gone while it waited (an HTTP write goes on
                    # past its deadline): not decoded only to be refused by `admit`.
                    drop_if_gone(context)
                request = await in_decoder(decode, raw,
                                           ended=turn.decoding() if turn is not None else None)
            else:
                request = decode(raw)
                # (decoded on the loop: of few bytes, a binary one cheaply; a JSON one of
                # many elements came `large`, see json_large)
                if isinstance(raw, bytes) and len(raw) > LARGE_REQUEST_ELEMENTS \
                        and many_elements(request):
                    client = client_of(context)
                    # (its address's bytes too, as 64 KiB: a binary one of many elements
                    # took a turn alone, and its address was never paced)
                    if grant is not None and grant.role is not Role.ADMIN \
                            and await self.policy.large_bytes.pace(client, LARGE_REQUEST_BYTES):
                        drop_if_gone(context)
                    turn = await self.policy.large_requests.turn(grant, LARGE_REQUEST_BYTES,
                                                                 client)
                    if turn is not None:
                        drop_if_gone(context)
            admission = await self.policy.admit(method, metadata, request, context,
                                                grant=grant)
            if getattr(context, "pixel", False):  # answered before its commit
                context.refused_later = self.refused_later(method, request, admission, grant)
            answer = await call(request, context)
        except asyncio.CancelledError:  # grpc.aio: the caller went, or its deadline passed
            self.refuse(method, caller_gone(context), started, context, admission)
            raise
        except Exception as exc:
            if request is None and bare is not None:
                request, grant = self.bare_request(method, bare, grant)
            return self.refuse(method, exc, started, context, admission, request, grant)
        finally:
            if turn is not None:
                turn.ended()
        self.policy.record(method, self.transport, grpc.StatusCode.OK,
                           time.perf_counter() - started, admission)
        return answer

    def bare_request(self, method: str, bare: Callable[[], Any], grant: Grant | None
                     ) -> tuple[Any, Grant | None]:
        """For the refusal of a call to `method` whose request could not be read (its
        body, its query): the request as far as its URL path names it (`bare()`;
        None if that cannot be read either), so that it is kept among its project's
        refusals; and `grant`, or None when the key may not use that project, so
        that it is not kept at all (as a call on a project its key is not granted)."""
        try:
            request = bare()
        except FootfallError:
            return None, grant
        if grant is not None:
            try:
                # (an UnreadBody: the request its path names, beside the body as sent)
                authorize(grant, method, getattr(request, "bare", request))
            except NotYourProject:
                return request, None
            except FootfallError:  # its role, say: kept as such refusals are
                pass
        return request, grant

    def refused_later(self, method: str, request: Any, admission: Admission | None,
                      grant: Grant | None) -> Callable[[BaseException], None]:
        """What keeps the refusal of a call to `method` already answered as accepted
        (a pixel, answered before its commit) when its commit refuses it: counted in
        /metrics and kept as `refuse` keeps one, from the writer's thread."""
        key_name, key = _key_of(admission, grant)
        return functools.partial(self._refused_later, method, request, key_name, key)

    def _refused_later(self, method: str, request: Any, key_name: str | None, key: str,
                       exc: BaseException) -> None:
        if isinstance(exc, FootfallError):
            refusal = exc
        else:
            log.error("%s: an event acknowledged before its commit was not stored",
                      method, exc_info=exc)
            refusal = Internal(f"internal error in {method}; see the server log")
        self.policy.metrics.refused_after_answer(method, self.transport, refusal.code)
        if self.policy.rejections is not None and (key_name or not self.policy.auth.enabled):
            self.policy.rejections.refused(method, self.transport, request, refusal, key_name,
                                           key)

    def refuse(self, method: str, exc: Exception, started: float, context: Any = None,
               admission: Admission | None = None, request: Any = None,
               grant: Grant | None = None, client: str | None = None,
               keep: bool = True) -> FootfallError:
        """What answers `exc`, recorded (and kept, for an event write: see
        server.console.rejections, with the name of the key: `admission`'s, or
        `grant`'s when the key was known but the call not admitted): itself if a
        FootfallError, else the status the servicer set on `context`, else Internal
        (a bug of ours, logged with its traceback). Call it while handling `exc`.
        `client`: the caller's address (ports.ip_prefix) where `context` has none;
        `keep`: False for a refusal counted and logged only (no request to keep)."""
        refusal = (exc if isinstance(exc, FootfallError)
                   else _chosen(context) or Internal.bug(method, log))
        key_name, key = _key_of(admission, grant)
        # (a writer key is public, and with auth off every caller is anyone: their
        # refusals' lines are budgeted by client address)
        public_from = (client if client is not None else client_of(context)) \
            if not self.policy.auth.enabled or (grant is not None
                                                and grant.role is Role.WRITER) else None
        # (the message may quote the request, and so the caller's key where a field
        # holds it: `ip_address: ... got 'KEY'`; a key is never logged)
        self.policy.record(method, self.transport, refusal.code,
                           time.perf_counter() - started, admission,
                           refusal.message.replace(key, KEY_MASK) if key else refusal.message,
                           key_name, public_from)
        # With auth on, only the refusals of a known key are kept: whoever sends no key
        # (refused for anything before the key was looked at) cannot fill the table.
        if self.policy.rejections is not None and keep \
                and (key_name or not self.policy.auth.enabled):
            self.policy.rejections.refused(method, self.transport, request, refusal, key_name,
                                           key)
        return refusal
