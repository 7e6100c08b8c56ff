"""The gRPC framing of every call: one guard (`CallGuard`) runs each unary call in the
shared envelope (`server.policy.envelope`: the key, the request decoded, the
policy, the servicer, the metrics and log line) and aborts a refused call with
its code, message and google.rpc details.

Requests are decoded here rather than by grpc, so that bytes that are no valid
message are INVALID_ARGUMENT (grpc itself would answer INTERNAL), and only once
the key is known good. A status is made to fit the trailers a client accepts
(8 KiB by default in grpc): a huge message or detail would otherwise reach the
client as RESOURCE_EXHAUSTED.

The server is grpc.aio's: every handler is a coroutine on the one event loop
(`server.loop`), so a call that stays open (WaitOperation, a stream, a health
Watch) holds no thread and cannot starve the others.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from server import wellknown
from server.errors import (
    MORE_THAN_VIOLATIONS,
    MORE_VIOLATIONS,
    FootfallError,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    more_violations,
    to_rpc_status,
)
from server.policy import KeylessRefusals, Policy
from server.policy.auth import READER_METHODS, Authenticator, Role
from server.policy.call_ends import at_call_end
from server.policy.call_shares import CallShares, Refused
from server.policy.envelope import LARGE_REQUEST_BYTES, Envelope
from server.policy.limits import EVENT_FIELDS
from server.policy.quota import TokenBuckets
from server.policy.request_room import SLOW, RequestRoom
from server.policy.unsent import Unsent
from server.ports import client_address
from server.store import packed

TRANSPORT = "grpc"
# The services open to callers without a key (health, reflection), whose requests
# are small: a service or symbol name.
_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
OPEN_REQUEST_BYTES = 16 * 1024
# Methods whose servicer reads a field its contract does not know before it drops
# them (see _decoder): talent v4beta1's former ClientEvent.profile_event, refused
# naming it (see server/talent/validation.py) where it went unseen and its event
# was refused as one lacking a job_event.
READS_UNKNOWN_FIELDS = frozenset({"/google.cloud.talent.v4beta1.EventService/CreateClientEvent"})
# Trailers a status may fill: grpc-message (percent-encoded) and
# grpc-status-details-bin (base64, so 4/3 of this), well under grpc's 8 KiB.
MESSAGE_BUDGET = 2048
DETAILS_BUDGET = 2048
MAX_FIELD_CHARS, MAX_DESCRIPTION_CHARS = 200, 300
# A cut BadRequest keeps room for its "and N more violations" entry and the Any around it.
MORE_ENTRY_BYTES, ANY_OVERHEAD_BYTES = 48, 64
_MORE = re.compile(MORE_VIOLATIONS.format(r"(\d+)", "s?"))
_MORE_THAN = re.compile(MORE_THAN_VIOLATIONS.format(r"(\d+)", "s?"))


def _char_cost(char: str) -> int:
    """Bytes `char` takes in grpc-message (percent-encoded UTF-8)."""
    return 1 if " " <= char <= "~" and char != "%" else 3 * len(char.encode("utf-8", "replace"))


def _clip(text: str, budget: int) -> str:
    """`text`, cut so that its percent-encoded UTF-8 takes at most `budget` bytes."""
    cost = 0
    for i, char in enumerate(text):
        cost += _char_cost(char)
        if cost > budget - 9:  # room for the "..." mark
            return text[:i] + "..."
    return text


def _fits(text: str) -> bool:
    """Whether `_clip` would leave `text` whole (looks at MESSAGE_BUDGET chars at most)."""
    return len(text) * 3 <= MESSAGE_BUDGET or _clip(text, MESSAGE_BUDGET) is text


def _fit_bad_request(bad: error_details_pb2.BadRequest, budget: int) -> None:
    """Cut `bad` in place to about `budget` bytes in one pass: long entries clipped,
    the first that fit kept, the rest counted in a final "and N more" entry (which
    also carries on any count InvalidArgument already made, "more than N" too)."""
    entries = bad.field_violations
    total, left_out, stopped = len(entries), 0, False
    last = entries[-1] if total else None
    if last is not None and not last.field:
        counted = _MORE.fullmatch(last.description)
        at_least = None if counted else _MORE_THAN.fullmatch(last.description)
        found = counted or at_least
        if found:
            total, left_out, stopped = total - 1, int(found[1]), at_least is not None
    kept: list[error_details_pb2.BadRequest.FieldViolation] = []
    size = 0
    for i in range(total):  # stops at the budget: cost in what is kept, not in `total`
        entry = error_details_pb2.BadRequest.FieldViolation(
            field=entries[i].field[:MAX_FIELD_CHARS],
            description=entries[i].description[:MAX_DESCRIPTION_CHARS])
        cost = entry.ByteSize() + 3  # its tag and length
        if size + cost > budget - MORE_ENTRY_BYTES:
            break
        kept.append(entry)
        size += cost
    left_out += total - len(kept)
    if left_out or stopped:
        more = more_violations(left_out, stopped)
        kept.append(error_details_pb2.BadRequest.FieldViolation(
            field=more.field, description=more.description))
    del bad.field_violations[:]
    bad.field_violations.extend(kept)


def _shrunk(details: list[any_pb2.Any]) -> list[any_pb2.Any]:
    """The details cut to DETAILS_BUDGET: a BadRequest cut by `_fit_bad_request`,
    then the last details left out while they do not fit."""
    kept: list[any_pb2.Any] = []
    for detail in details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            _fit_bad_request(bad, DETAILS_BUDGET - ANY_OVERHEAD_BYTES)
            detail = any_pb2.Any()
            detail.Pack(bad)
        kept.append(detail)
    sizes = [d.ByteSize() for d in kept]
    while kept and sum(sizes) > DETAILS_BUDGET:
        kept.pop()
        sizes.pop()
    return kept


def fit_in_trailers(status: status_pb2.Status) -> status_pb2.Status:
    """`status` small enough for any client's trailers (unchanged when it is)."""
    if len(status.message) * 3 <= MESSAGE_BUDGET and \
            sum(d.ByteSize() for d in status.details) <= DETAILS_BUDGET:
        return status
    details = list(status.details)
    if sum(d.ByteSize() for d in details) > DETAILS_BUDGET:
        details = _shrunk(details)
    return status_pb2.Status(code=status.code, message=_clip(status.message, MESSAGE_BUDGET),
                             details=details)


def status_of(error: FootfallError) -> status_pb2.Status:
    """The status for `error`, fit for the trailers; a long list of violations is
    cut at a violation, still saying how many it leaves out."""
    status = to_rpc_status(error)
    if isinstance(error, InvalidArgument) and not _fits(status.message):
        # Fewer characters while escapes (non-ASCII) make it too long; _clip is the
        # last resort for a single violation longer than the budget.
        for chars in (MESSAGE_BUDGET - 16, MESSAGE_BUDGET // 2, MESSAGE_BUDGET // 4):
            status.message = error.shorter_message(chars)
            if _fits(status.message):
                break
    return fit_in_trailers(status)


def _heaviest_field(raw: bytes, kind: Any, most_fields: int = 64) -> str:
    """The name of the field of the message `kind` (a Descriptor, or None) whose
    values take the most of `raw`, looking at its first `most_fields` top-level
    fields (their tags and lengths alone, nothing decoded); "request" when no
    field `kind` knows does (bytes that are no message, unknown fields)."""
    sizes: dict[int, int] = {}
    try:
        for number, _, start, _, end in itertools.islice(packed.fields(raw), most_fields):
            sizes[number] = sizes.get(number, 0) + min(end, len(raw)) - start
    except ValueError:
        pass  # (a group: in no request served here; what came before it counts)
    fields = kind.fields_by_number if kind is not None else {}
    known = [(size, number) for number, size in sizes.items() if number in fields]
    return fields[max(known)[1]].name if known else "request"


def _decoder(deserializer: Callable[[bytes], Any] | None, method: str,
             most: int | None = None, max_event_bytes: int | None = None
             ) -> Callable[[Any], Any]:
    """How `method`'s requests are decoded: bytes that are no valid message are
    INVALID_ARGUMENT, as is a request over `most` bytes (OPEN_REQUEST_BYTES for the
    services open to anyone), naming the field that takes most of it, undecoded.
    The times of an event over `max_event_bytes` are not looked at: its servicer
    refuses it for its size alone."""
    if deserializer is None:
        return lambda raw: raw
    if method.startswith(_OPEN_SERVICES):
        # Anyone may call these, key or not: a health watch of a 10 MB service name
        # held some 30 MB for as long as it stayed open.
        most = OPEN_REQUEST_BYTES
    reads_unknown = method in READS_UNKNOWN_FIELDS
    kind = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    event_field = EVENT_FIELDS.get(kind.full_name) if kind is not None and \
        max_event_bytes is not None else None

    def decode(raw: Any) -> Any:
        if most is not None and isinstance(raw, bytes) and len(raw) > most:
            raise InvalidArgument.field(
                _heaviest_field(raw, kind),
                f"makes the request {len(raw)} bytes; {method} takes at most {most}")
        try:
            request = deserializer(raw)
        except (DecodeError, ValueError, TypeError) as exc:
            raise InvalidArgument.field("request", f"is not a valid serialized request of "
                                                   f"{method}: {exc}") from None
        if isinstance(request, Message):
            # Fields this contract does not know are dropped, as Google's front end
            # drops them: kept, they would be stored, echoed, and defeat deduplication.
            # (A method that reads one of them first drops them itself.)
            if not reads_unknown:
                request.DiscardUnknownFields()
            # (the walk of an event's times, ~5 us a product, took 16 s for a write
            # of 9 MB, a gzip-compressed few kB, whose size alone refuses it; the
            # event is measured only when the request is larger than the limit:
            # ByteSize serializes, 1.5 us for a small event)
            if event_field is None or max_event_bytes is None \
                    or (isinstance(raw, bytes) and len(raw) <= max_event_bytes) \
                    or getattr(request, event_field).ByteSize() <= max_event_bytes:
                wellknown.check(request)
        return request

    return decode


def _guard(handler: grpc.RpcMethodHandler, method: str, envelope: Envelope,
           unsent: Unsent, max_event_bytes: int | None = None
           ) -> Callable[[Any, grpc.aio.ServicerContext], Any]:
    behaviour = handler.unary_unary
    assert behaviour is not None  # only unary-unary handlers are guarded
    decode = _decoder(handler.request_deserializer, method, max_event_bytes=max_event_bytes)
    run = envelope.run
    authenticate = envelope.policy.authenticate_early
    refusable = method in READER_METHODS  # (the reads; others change what is stored)

    async def held(request: Any, context: grpc.aio.ServicerContext) -> bytes:
        """The answer, serialized and, when large, counted until its call ends."""
        answer = await behaviour(request, context)  # type: ignore[arg-type]

        def holder() -> str | None:  # (its key, looked up again for a large answer alone)
            try:
                grant = authenticate(method, context.invocation_metadata())  # type: ignore[arg-type]
            except FootfallError:
                # Its key taken away since it was admitted (the keys read again): what
                # the call did is done, a write stored, and is answered; the answer
                # counts in the room of all, as a call without a key's does.
                return None
            return grant.identity.hex() if grant is not None else None

        return unsent.held(answer, holder, refusable)

    async def guarded(raw: Any, context: grpc.aio.ServicerContext) -> Any:
        # grpc.aio's metadata is a tuple of (key, value) pairs; its stubs say otherwise
        # A large request (a million-element list) takes seconds to decode and
        # check: off the loop, as the HTTP gateway decodes its large bodies.
        answer = await run(method, context.invocation_metadata(), raw, decode,  # type: ignore[arg-type]
                           context, held,
                           large=isinstance(raw, bytes) and len(raw) > LARGE_REQUEST_BYTES)
        if isinstance(answer, FootfallError):
            if isinstance(answer, PermissionDenied):  # (past its key's budget, after a delay)
                await envelope.policy.denied(method, context.invocation_metadata(),  # type: ignore[arg-type]
                                             client_address(context.peer()))
            status = rpc_status.to_status(status_of(answer))
            # grpc keeps the abort's exception in the call's state, which this frame holds
            # through `context`: a cycle, freed by the collector alone. Held in it, each
            # refused request (its bytes, and through the refusal's traceback its decoded
            # message) waited for a collection: 30 refusals of 2 MB, some 120 MB more.
            del raw, answer
            await context.abort_with_status(status)
        return answer

    return guarded


def _as_is(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """`serializer`, except that bytes (a message serialized once for many
    streams, see console.feed; a large answer serialized where it was made, see
    console.service) are sent as they are."""
    if serializer is None:
        return None

    def serialize(message: Any) -> bytes:
        return message if isinstance(message, bytes) else serializer(message)

    return serialize


# Streams counted by the console's own cap (--max-watches, over HTTP too)
_WATCHES = "/footfall.console.v1.ConsoleService/"


# Requests a minute that one client address without a key, or one writer or reader
# key, may send on reflection streams, a minute's worth at once (grpcurl's `describe`
# of every service sends a few dozen): beyond, each waits its turn, so such a client
# takes 0.4% of a core at most. A shop's writer key is in its pages: four streams of
# it asking in a loop took 9-11 s of CPU in 13 s, and another client's durable
# writes from 690-960 a second to 32-62. Admin keys are not paced.
KEYLESS_REQUESTS_PER_MINUTE = 600
# A request of an open service read for a caller without a key: its bytes must all be
# in within READ_SECONDS, at most READS_PER_ADDRESS of one client address are read at
# once (up to WAITING_PER_ADDRESS more wait their turn, each at most READ_SECONDS), and
# READS_IN_ALL in all, the one read longest making room for another past them (see
# _KeylessReads).
READ_SECONDS = 2.0
READS_PER_ADDRESS, WAITING_PER_ADDRESS, READS_IN_ALL = 4, 64, 32
# The one request of a call (unary, or a watch) of a caller with a key (or of anyone,
# auth off): its bytes must all be
# in within REQUEST_SECONDS (as an HTTP body within --http-body-timeout's default), and
# at most UNREAD_SHARE of --max-concurrent-rpcs wait for theirs at once, the one waiting
# longest ended to make room (see _UnreadRequests).
REQUEST_SECONDS = 60.0
UNREAD_SHARE = 4


class _KeylessReads:
    """The requests of open services being read for callers without a key (touched
    on the loop only). grpc takes in a request up to --max-request-bytes before
    Footfall may look at it, and with no time limit: ten health checks without a
    key, each a 9 MB message left one byte short, held 70-85 MB for as long as
    their connection stayed open. Counted and timed, such reads hold at most
    READS_IN_ALL x --max-request-bytes, each for READ_SECONDS.

    A request of an address past READS_PER_ADDRESS waits for one of its reads to
    end before it is read (nothing of it is taken in meanwhile): refused at once,
    a client opening a few health checks or watches together, as a monitor of
    several services does, had some of them refused whenever the server ran their
    handlers before their requests were in.

    Past READS_IN_ALL the one read longest is ended to make room, not the newcomer
    refused: a whole request is read in moments, so the one read longest is one
    that is not coming; refused, 8 addresses (8 IPv6 /64s are anyone's) each
    holding 4 requests they never finished had every health check without a key
    refused (a Kubernetes gRPC probe sends none)."""

    def __init__(self, pace: KeylessRefusals | None = None) -> None:
        # Refusals of an address past its budget wait (see KeylessRefusals): refused
        # at once, 100 health checks in flight on each of 2 connections that never sent
        # their requests had 2,530 refused a second, and another client's durable
        # writes fell from 1,760 a second to 680.
        self._pace = pace
        self._by_address: dict[str, int] = {}
        # The requests of an address waiting to be read, first come first: each
        # one's notice that a place of the address is its own.
        self._waiting: dict[str, collections.deque[asyncio.Future[None]]] = {}
        # The reads holding a place, oldest first: each one's notice to make room.
        self._places: dict[asyncio.Future[None], None] = {}

    async def read(self, next_request: Awaitable[Any], address: str,
                   context: grpc.aio.ServicerContext) -> Any:
        """What `next_request` gives, read for `address`; the call ends
        RESOURCE_EXHAUSTED when too many of the address are being read and waiting,
        UNAVAILABLE when it does not come in time or makes room for another."""
        try:
            given = await self._turn(address)
        except asyncio.CancelledError:  # (its call ended while it waited its turn)
            _close(next_request)
            raise
        if not given:
            _close(next_request)
            if self._pace is not None:
                await _paced_or_abort(self._pace, address, context)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"requests without an API key are being read ({READS_PER_ADDRESS} from this "
                f"address, more waiting); send a key (x-goog-api-key), or retry")
        if len(self._places) >= READS_IN_ALL:
            oldest = next(iter(self._places))
            del self._places[oldest]
            oldest.set_result(None)
        room = asyncio.get_running_loop().create_future()
        self._places[room] = None
        request = asyncio.ensure_future(next_request)
        try:
            done, _ = await asyncio.wait((request, room), timeout=READ_SECONDS,
                                         return_when=asyncio.FIRST_COMPLETED)
            if request in done:
                return request.result()
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"a request without an API key must come whole within "
                                f"{READ_SECONDS:g} s" + (
                                    f" (the one read longest makes room once {READS_IN_ALL} "
                                    f"are being read)" if room in done else ""))
        finally:
            request.cancel()  # (nothing, once it came)
            self._places.pop(room, None)
            self._leave(address)

    async def _turn(self, address: str) -> bool:
        """Whether a place to read a request of `address` is now held (at once, or
        after waiting up to READ_SECONDS for one of its own to end)."""
        held = self._by_address.get(address, 0)
        if held < READS_PER_ADDRESS:
            self._by_address[address] = held + 1
            return True
        waiting = self._waiting.setdefault(address, collections.deque())
        if len(waiting) >= WAITING_PER_ADDRESS:
            return False
        turn = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        given = False
        try:
            await asyncio.wait((turn,), timeout=READ_SECONDS)  # (leaves `turn` as it is)
            given = turn.done()  # (the place of a read that ended, passed to this one)
            return given
        finally:
            if not turn.done():
                turn.cancel()
                waiting.remove(turn)
                if not waiting:
                    self._waiting.pop(address, None)
            elif not given:  # given a place as its call was cancelled: passed on
                self._leave(address)

    def _leave(self, address: str) -> None:
        """A read of `address` ended: its place passes to the first waiting, if any."""
        waiting = self._waiting.get(address)
        if waiting:
            turn = waiting.popleft()
            if not waiting:
                del self._waiting[address]
            turn.set_result(None)
            return
        left = self._by_address.pop(address) - 1
        if left:
            self._by_address[address] = left


class _UnreadRequests:
    """The calls of one request (unary calls, watches) whose request is not in yet
    (touched on the loop only). grpc runs such a handler once the request is whole,
    and until then holds the call, one of --max-concurrent-rpcs, with no time limit:
    a public writer key's 10 connections of 1,000 calls each (WriteUserEvent, or a
    health Watch), headers sent and requests never, had every other call of every
    key refused RESOURCE_EXHAUSTED ("Concurrent RPC limit exceeded!") for as long as
    they stayed open, and grew the server by 216 MB.
    Here each request has `seconds` to come whole, and at most `most` wait at once:
    past them the one waiting longest is ended, as a request whole in moments never
    is the oldest (the newcomer refused instead, a client reopening its calls in a
    loop would keep every other one out)."""

    def __init__(self, most: int, seconds: float = REQUEST_SECONDS,
                 room: RequestRoom | None = None) -> None:
        self.most = max(1, most)
        self.seconds = seconds
        self.room = room  # (a request is read once it has room: see RequestRoom)
        # The tasks of the calls waiting, oldest first. (The call's own task is
        # cancelled to end its wait: a task and futures of their own for each call, as
        # asyncio.wait makes, held twice the memory while 10,000 such calls came.)
        self._tasks: dict[asyncio.Task[Any], None] = {}

    @property
    def waiting(self) -> int:
        return len(self._tasks)

    async def read(self, context: grpc.aio.ServicerContext) -> Any:
        """The call's request (its bytes, or grpc.aio.EOF); the call ends UNAVAILABLE
        when it does not come within `seconds`, or makes room for another."""
        if len(self._tasks) >= self.most:
            oldest = next(iter(self._tasks))
            del self._tasks[oldest]
            oldest.cancel(_MADE_ROOM)
        task = asyncio.current_task()
        assert task is not None
        self._tasks[task] = None
        timer = asyncio.get_running_loop().call_later(self.seconds, self._late, task)
        room, raw = self.room, None
        try:
            if room is not None:
                await room.enter()
            raw = await context.read()
            return raw
        except asyncio.CancelledError as exc:
            why = exc.args[0] if exc.args else None
            if why not in (_MADE_ROOM, _LATE, SLOW):
                raise  # (the call itself ended)
            task.uncancel()
        except ResourceExhausted as exc:  # (no room in time: RequestRoom.enter)
            status = rpc_status.to_status(status_of(exc))
            await context.abort_with_status(status)
        finally:
            timer.cancel()
            self._tasks.pop(task, None)
            if room is not None:
                _held_until_call_end(room, raw)
        await context.abort(grpc.StatusCode.UNAVAILABLE,
                            f"the request must come whole within {self.seconds:g} s" + (
                                f" (the one waited for longest makes room once {self.most} "
                                f"calls wait for theirs)" if why == _MADE_ROOM else
                                f" while other calls wait for room (its read took "
                                f"{room.slow_seconds:g} s, and the requests read at once "
                                f"hold at most --max-request-bytes-held)"
                                if why == SLOW and room is not None else ""))

    def _late(self, task: asyncio.Task[Any]) -> None:
        if self._tasks.pop(task, 0) is None:  # (still waiting)
            task.cancel(_LATE)


_MADE_ROOM, _LATE = "made room", "late"  # why _UnreadRequests ended a wait


def _held_until_call_end(room: RequestRoom, raw: Any) -> None:
    """The request `raw` (None, or EOF: none came) counted in `room` until the
    current call ends; else its read let go of."""
    if not isinstance(raw, bytes):
        room.leave()
        return
    size = len(raw)
    room.read(size)
    at_call_end(lambda _: room.done(size))


def _read_in_time(handler: grpc.RpcMethodHandler, unread: _UnreadRequests,
                  shares: CallShares) -> grpc.RpcMethodHandler:
    """`handler` (one taking one request, its bytes: a unary-unary or unary-stream
    handler made by CallGuard) as one taking a stream of requests, which grpc runs as
    soon as the headers are in, counting the call in its caller's `shares` and
    reading the request as `unread` has it."""
    behaviour = handler.unary_unary or handler.unary_stream
    assert behaviour is not None

    async def request(_requests: Any, context: grpc.aio.ServicerContext) -> Any:
        await _entered(shares, context)
        raw = await unread.read(context)
        if raw is grpc.aio.EOF:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request: none was sent")
        return raw

    served = _given(behaviour, request)
    if handler.unary_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            served, response_serializer=handler.response_serializer)
    return grpc.stream_stream_rpc_method_handler(
        served, response_serializer=handler.response_serializer)


def _close(next_request: Awaitable[Any]) -> None:
    """Let go of a request's read that will never be awaited. (grpc's read is a
    coroutine of Cython's, which inspect does not call one: left unclosed, Python
    warned it was never awaited.)"""
    close = getattr(next_request, "close", None)
    if close is not None:
        close()


class _OpenStreams:
    """The streams of the open services (health watches, reflection) open now and
    how many may be (touched on the loop only): `limit` in all. With auth on, those
    of callers without a known key at most `keyless` in all, `per_address` of them
    from one client address, each ended after `keyless_seconds` (None: never); the
    rest of `limit` stays for callers with a key, one key at most a quarter of it
    (a writer key in a web page is anyone's)."""

    def __init__(self, limit: int, keyless: int | None = None, per_address: int = 16,
                 keyless_seconds: float | None = None,
                 pace: KeylessRefusals | None = None) -> None:
        self.limit = limit
        self.keyless_limit = limit if keyless is None else keyless
        self.per_address = per_address
        self.per_key = max(1, (limit - self.keyless_limit) // 4)
        self.keyless_seconds = keyless_seconds
        # What one client address without a key may ask of reflection streams: a
        # file_containing_symbol answer is a file and all it imports, 34 KB and 0.4 ms
        # of the loop, and one stream asking in a loop took 55% of a core.
        self.keyless_requests = TokenBuckets(KEYLESS_REQUESTS_PER_MINUTE)
        self.key_requests = TokenBuckets(KEYLESS_REQUESTS_PER_MINUTE)  # (by key)
        self.reads = _KeylessReads(pace)
        self.pace = pace  # (a keyless caller's refusal, past its address's budget, waits)
        self.open = 0
        self.keyless = 0
        # Streams held now by client address (keyless) and by key: only holders are kept.
        self._held: dict[object, int] = {}

    def enter(self, holder: object | None, keyed: bool) -> str | None:
        """Count one more stream of `holder` (a key's identity, an address; None:
        auth is off, counted in all only); why not when it may not be opened."""
        if self.open >= self.limit:
            return f"{self.limit} streams are open (--max-streams)"
        if holder is not None:
            if not keyed and self.keyless >= self.keyless_limit:
                return (f"{self.keyless} streams without an API key are open "
                        f"(--max-keyless-streams); send a key (x-goog-api-key)")
            held = self._held.get(holder, 0)
            if held >= (self.per_key if keyed else self.per_address):
                return (f"this key holds {held} streams, a quarter of those for callers "
                        f"with a key" if keyed else
                        f"this client address holds {held} streams without an API key "
                        f"(--max-keyless-streams-per-address); send a key (x-goog-api-key)")
            self._held[holder] = held + 1
            self.keyless += not keyed
        self.open += 1
        return None

    def leave(self, holder: object | None, keyed: bool) -> None:
        self.open -= 1
        if holder is not None:
            self.keyless -= not keyed
            held = self._held.pop(holder) - 1
            if held:
                self._held[holder] = held


async def _keyless(requests: Any, streams: _OpenStreams, address: str,
                   context: grpc.aio.ServicerContext) -> Any:
    """`requests` (a stream's, of a caller without a key): each read as
    _KeylessReads has it, then let through once `address` has a token for it."""
    requests = aiter(requests)
    while True:
        try:
            request = await streams.reads.read(anext(requests), address, context)
        except StopAsyncIteration:
            return
        await _turn(streams.keyless_requests, address)
        yield request


async def _paced(requests: Any, buckets: TokenBuckets, holder: str) -> Any:
    """`requests` (a stream's), each let through once `holder` has a token for it."""
    async for request in requests:
        await _turn(buckets, holder)
        yield request


async def _turn(buckets: TokenBuckets, holder: str) -> None:
    while (wait := buckets.try_take(holder)) is not None:
        await asyncio.sleep(wait)


def _written(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    """`behaviour` (a streaming method) as a coroutine that writes to its context:
    an async generator's replies are written as they come."""
    if not inspect.isasyncgenfunction(behaviour):
        return behaviour

    async def write(request: Any, context: grpc.aio.ServicerContext) -> None:
        async for reply in behaviour(request, context):
            await context.write(reply)
    return write


def _counted(behaviour: Callable[..., Any], streams: _OpenStreams, method: str,
             auth: Authenticator, streaming: bool = False) -> Callable[..., Any]:
    """`behaviour` (a streaming method of an open service) counted against `streams`
    while it runs, as the call's key (or its address, without one) has it;
    `streaming`: its requests are a stream, read and paced as _keyless has it
    without a key, and paced by key for a writer or reader key."""
    run = _written(behaviour)
    rpc = method.rpartition("/")[2]

    async def counted(request: Any, context: grpc.aio.ServicerContext) -> None:
        holder: object | None = None
        keyed, paced = True, False
        if auth.enabled:
            try:
                grant = auth.authenticate(context.invocation_metadata())  # type: ignore[arg-type]
                holder, paced = grant.identity, grant.role is not Role.ADMIN
            except FootfallError:
                holder, keyed = client_address(context.peer()), False
        if not keyed and streaming:
            request = _keyless(request, streams, str(holder), context)
        elif paced and streaming:
            request = _paced(request, streams.key_requests, str(holder))
        call = run(request, context)
        del request  # (as _decoded_or_abort's `raw`)
        refusal = streams.enter(holder, keyed)
        if refusal is not None:
            call.close()  # (never run)
            # (at once, 50 reflection streams opened in a loop beside the 16 an address
            # without a key may hold had 1,990 refused a second, and another client's
            # durable writes fell from 1,650 a second to 450)
            if not keyed and streams.pace is not None:
                await _paced_or_abort(streams.pace, str(holder), context)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"{refusal}: {rpc} is refused until one ends")
        try:
            if keyed or streams.keyless_seconds is None:
                return await call
            # Run as a task of its own, so that it ends even while it waits for a
            # client that reads nothing (a write held by flow control).
            try:
                return await asyncio.wait_for(call, streams.keyless_seconds)
            except TimeoutError:
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    f"a stream without an API key is ended after "
                    f"{streams.keyless_seconds:g} s (--keyless-stream-seconds): open another, "
                    f"or send a key (x-goog-api-key) to keep it open")
        finally:
            streams.leave(holder, keyed)
    return counted


def _decoded(behaviour: Callable[..., Any], deserializer: Callable[[bytes], Any] | None,
             method: str) -> Callable[..., Any]:
    """`behaviour` (a server-streaming method) given its request decoded as _decoder
    does: bytes that are no valid message end the call INVALID_ARGUMENT before it
    starts (grpc's own decoding answered UNKNOWN, and logged an ERROR with a
    traceback for each such call of anyone: health watches need no key)."""
    # A watch is decoded here, on the loop: a valid one is small (a parent, a filter
    # of at most 5,000 characters, a position), so one over LARGE_REQUEST_BYTES (up
    # to --max-request-bytes of any reader key's) is refused before it is decoded.
    decode = _decoder(deserializer, method,
                      LARGE_REQUEST_BYTES if method.startswith(_WATCHES) else None)

    async def request(raw: Any, context: grpc.aio.ServicerContext) -> Any:
        decoding = _decoded_or_abort(decode, raw, context)
        del raw  # (see _decoded_or_abort)
        return await decoding

    return _given(behaviour, request)


def _decoding_each(behaviour: Callable[..., Any], deserializer: Callable[[bytes], Any] | None,
                   method: str) -> Callable[..., Any]:
    """`behaviour` (a client-streaming method: server reflection) given each of its
    requests decoded as _decoder does: the first that is no valid message ends
    the call INVALID_ARGUMENT, not UNKNOWN."""
    decode = _decoder(deserializer, method)

    async def requests(raws: Any, context: grpc.aio.ServicerContext) -> Any:
        async def decoded() -> Any:
            async for raw in raws:
                decoding = _decoded_or_abort(decode, raw, context)
                del raw  # (see _decoded_or_abort)
                yield await decoding
        return decoded()

    return _given(behaviour, requests)


def _given(behaviour: Callable[..., Any],
           made: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
           ) -> Callable[..., Any]:
    """`behaviour` (an async generator, or a coroutine that writes to its context)
    called with `await made(what grpc passes, context)` in place of what grpc passes."""
    if inspect.isasyncgenfunction(behaviour):
        async def replies(given: Any, context: grpc.aio.ServicerContext) -> Any:
            making = made(given, context)
            del given  # (as _decoded_or_abort's `raw`)
            async for reply in behaviour(await making, context):
                yield reply
        return replies

    async def run(given: Any, context: grpc.aio.ServicerContext) -> Any:
        making = made(given, context)
        del given  # (as _decoded_or_abort's `raw`)
        return await behaviour(await making, context)
    return run


async def _decoded_or_abort(decode: Callable[[Any], Any], raw: Any,
                            context: grpc.aio.ServicerContext) -> Any:
    try:
        return decode(raw)
    except FootfallError as refusal:
        status = rpc_status.to_status(status_of(refusal))
    # grpc keeps the abort's exception in the call's state, which the frames it goes
    # through hold (by `context`): a cycle, freed by the collector alone. A frame of it
    # that holds the request's bytes (here, and in the callers that handed them on) held
    # them until then: a health watch of 10 MB from anyone, no key needed, each.
    del raw
    await context.abort_with_status(status)
    raise AssertionError("abort_with_status raises")  # (never reached)


# The Google APIs Footfall serves part of: their other RPCs (Search, Catalog,
# Prediction, ..., of every version) are named in an UNIMPLEMENTED message.
GOOGLE_APIS = ("/google.cloud.retail.", "/google.cloud.talent.")
SERVED_PARTS = ("Footfall serves UserEventService and ProductService of google.cloud.retail "
                "v2, v2beta and v2alpha, EventService of google.cloud.talent.v4 and v4beta1, and "
                "google.longrunning.Operations (the README's RPC table lists every RPC)")


def _out_of_scope(method: str) -> grpc.RpcMethodHandler:
    """A handler answering UNIMPLEMENTED, naming `method`, for an RPC of a Google API
    that Footfall does not serve (made per call, never cached)."""
    message = f"{_clip(method.lstrip('/'), MAX_FIELD_CHARS)} is not served: {SERVED_PARTS}"

    async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    return grpc.unary_unary_rpc_method_handler(refuse)


def _unserved_paced(method: str, pace: KeylessRefusals) -> grpc.RpcMethodHandler:
    """A handler answering UNIMPLEMENTED, as grpc or _out_of_scope would, to a call
    of a method not served that carries no known key, without reading its request
    and past its client address's budget after a delay, as _refused_unread does:
    answered by grpc at once, a client keeping 200 in flight had 3,180 a second
    answered (84% of a core) where calls of methods served were paced to 240 (12%)."""
    message = (f"{_clip(method.lstrip('/'), MAX_FIELD_CHARS)} is not served: {SERVED_PARTS}"
               if method.startswith(GOOGLE_APIS) else "Method not found!")  # (grpc's words)

    async def refuse(_requests: Any, context: grpc.aio.ServicerContext) -> None:
        await _paced_or_abort(pace, client_address(context.peer()), context)
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    return grpc.stream_unary_rpc_method_handler(refuse)


def _refused_unread(refusal: FootfallError, pace: KeylessRefusals) -> grpc.RpcMethodHandler:
    """A handler answering `refusal` without reading the request. A call without
    a known key gets it the moment its headers arrive: as a unary call's handler,
    grpc would first wait for the whole request, however long the caller takes
    to send it (a call never finished held one of --max-concurrent-rpcs for
    good) and hold however much it is (up to --max-request-bytes a call). A
    request-streaming handler runs before any message: the calling client's
    kind of call does not matter, the status ends it. Past its client address's
    budget of such refusals (`pace`), it is answered after a delay."""
    status = rpc_status.to_status(status_of(refusal))

    async def refuse(_requests: Any, context: grpc.aio.ServicerContext) -> None:
        await _paced_or_abort(pace, client_address(context.peer()), context)
        await context.abort_with_status(status)

    return grpc.stream_unary_rpc_method_handler(refuse)


async def _paced_or_abort(pace: KeylessRefusals, address: str,
                          context: grpc.aio.ServicerContext) -> None:
    """Wait as `pace` has the calls of `address` past its budget wait; when too many
    wait already, end the call RESOURCE_EXHAUSTED (neither served nor answered as
    one that waited, so that more calls in flight gain nothing)."""
    try:
        await pace.refused(address)
    except ResourceExhausted as exc:
        await context.abort_with_status(rpc_status.to_status(status_of(exc)))


async def _entered(shares: CallShares, context: grpc.aio.ServicerContext) -> None:
    """Counts the call in its caller's share, RESOURCE_EXHAUSTED past it; and waits for
    its time if its key is paced (see CallShares). Its request is not read meanwhile.
    A refusal waits as the refusals of its budget (Refused.budget: its key's, else its
    client address's) wait past it (see _refused_unread); when too many wait already,
    it is answered at once. Refused at once, one address keeping its part of the
    keyless share's health checks unread (340) and asking on with 100 in flight had
    2,200 refused a second, and another key's writes fell from 1,600 a second to 510;
    a key holding its share with 200 more calls in flight had 2,970 refused a second,
    0.81 of a core (see CallShares)."""
    entered = shares.enter(context)
    if entered is None:
        return
    if isinstance(entered, Refused):
        if entered.keyless:
            await _paced_or_abort(shares.refusals, entered.budget, context)
        else:
            try:
                await shares.refusals.refused(entered.budget)
            except ResourceExhausted:  # (too many of its budget's wait: at once)
                pass
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, entered.message)
    try:
        await asyncio.sleep(entered.seconds)
    except asyncio.CancelledError:  # (its client cancelled it, or its deadline passed)
        shares.gone(entered)
        raise
    if entered.refusal is not None:
        await context.abort_with_status(rpc_status.to_status(status_of(entered.refusal)))


def _read_first(handler: grpc.RpcMethodHandler, reads: _KeylessReads,
                pace: KeylessRefusals, shares: CallShares) -> grpc.RpcMethodHandler:
    """`handler` (one taking one request, its bytes: a unary-unary or unary-stream
    handler made by CallGuard) as one taking a stream of requests, which reads the
    first as `reads` has it: grpc runs it before any of the request is in, where it
    would read a unary request whole before running the handler. Past its client
    address's budget (`pace`, that of refusals for want of a key), the call is run
    after a delay: a client keeping 200 health checks in flight without a key had
    2,000-2,300 a second answered, a core, and another client's durable writes went
    from 940 a second to 47."""
    behaviour = handler.unary_unary or handler.unary_stream
    assert behaviour is not None

    async def read_first(_requests: Any, context: grpc.aio.ServicerContext) -> Any:
        await _entered(shares, context)
        address = client_address(context.peer())
        raw = await reads.read(context.read(), address, context)
        if raw is grpc.aio.EOF:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request: none was sent")
        await _paced_or_abort(pace, address, context)
        return await behaviour(raw, context)  # type: ignore[arg-type,misc]

    if handler.unary_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            read_first, response_serializer=handler.response_serializer)
    return grpc.stream_stream_rpc_method_handler(
        read_first, response_serializer=handler.response_serializer)


class CallGuard(grpc.GenericRpcHandler):
    """The servicers' handlers, each unary-unary one run in the envelope, each
    server-streaming one free to yield messages serialized already.

    The generated `add_*Servicer_to_server` functions register their services
    here (it has the two methods of a server they call); the grpc.aio server then
    finds every method through this one handler. Wrapping happens once per
    method, on its first call, and is cached: only methods that exist are kept.
    This costs a call no coroutine of its own, as a grpc.aio interceptor would.
    """

    def __init__(self, policy: Policy | None = None, max_streams: int = 1000,
                 max_keyless_streams: int = -1, per_address: int = 16,
                 keyless_seconds: float = 0.0, max_answer_bytes: int = 10 << 20,
                 max_event_bytes: int | None = None, max_concurrent_rpcs: int = 10000,
                 request_room: RequestRoom | None = None) -> None:
        self._envelope = Envelope(policy or Policy(()), TRANSPORT)
        self._unread = _UnreadRequests(max_concurrent_rpcs // UNREAD_SHARE, room=request_room)
        self._max_event_bytes = max_event_bytes  # (--max-event-bytes: see _decoder)
        self._unsent = Unsent(max_answer_bytes)  # unary answers not yet taken
        # Calls of one request (all but reflection's) by caller: answers never taken
        # hold theirs for good.
        self._shares = CallShares(max_concurrent_rpcs, self._envelope.policy.auth,
                                  self._envelope.policy.metrics,
                                  self._envelope.policy.key_paces, per_address,
                                  self._envelope.policy.keyless_refusals)
        # Streams anyone may open (health watches, reflection): never all the calls
        # --max-concurrent-rpcs allows, so writes and health checks stay possible; and
        # of them, never all to callers without a key (one client held all 1,000 with
        # health watches on one connection, for as long as it liked).
        self._streams = _OpenStreams(
            max_streams, max_keyless_streams if max_keyless_streams >= 0
            else max(1, max_streams // 2), per_address,
            keyless_seconds if 0 < keyless_seconds < math.inf else None,
            self._envelope.policy.keyless_refusals)
        self._generic: list[grpc.GenericRpcHandler] = []
        self._registered: dict[str, grpc.RpcMethodHandler] = {}
        self._cache: dict[str, grpc.RpcMethodHandler] = {}
        self._keyless_cache: dict[str, grpc.RpcMethodHandler] = {}  # see _keyless_read
        self._timed_cache: dict[str, grpc.RpcMethodHandler] = {}  # see _timed

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        self._registered.update({f"/{service}/{name}": h for name, h in handlers.items()})

    @property
    def cached_methods(self) -> int:
        """How many methods have a wrapped handler cached (only methods served)."""
        return len(self._cache)

    def service(self, handler_call_details: grpc.HandlerCallDetails
                ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return self._unread_refusal(handler_call_details) or \
                self._keyless_read(handler_call_details, cached) or self._timed(method, cached)
        handler = self._registered.get(method)
        for generic in self._generic:
            if handler is not None:
                break
            handler = generic.service(handler_call_details)
        if handler is None:
            # No such method: UNIMPLEMENTED. Its name is not kept, since anyone (no
            # key needed) can make up endless names of kilobytes each.
            if not self._known_key(handler_call_details):
                return _unserved_paced(method, self._envelope.policy.keyless_refusals)
            return _out_of_scope(method) if method.startswith(GOOGLE_APIS) else None
        if handler.unary_unary is not None:
            handler = grpc.unary_unary_rpc_method_handler(
                _guard(handler, method, self._envelope, self._unsent, self._max_event_bytes),
                request_deserializer=None,  # decoded in the guard
                response_serializer=_as_is(handler.response_serializer),
            )
        elif handler.unary_stream is not None:
            behaviour = _decoded(handler.unary_stream, handler.request_deserializer, method)
            if not method.startswith(_WATCHES):
                behaviour = _counted(behaviour, self._streams, method, self._envelope.policy.auth)
            handler = grpc.unary_stream_rpc_method_handler(
                behaviour, request_deserializer=None,  # decoded in _decoded
                response_serializer=_as_is(handler.response_serializer))
        elif (streamed := handler.stream_stream or handler.stream_unary) is not None:
            make = (grpc.stream_stream_rpc_method_handler if handler.stream_stream is not None
                    else grpc.stream_unary_rpc_method_handler)
            handler = make(
                _counted(_decoding_each(streamed, handler.request_deserializer, method),
                         self._streams, method, self._envelope.policy.auth, streaming=True),
                request_deserializer=None,  # decoded in _decoding_each
                response_serializer=handler.response_serializer)
        self._cache[method] = handler
        return self._unread_refusal(handler_call_details) or \
            self._keyless_read(handler_call_details, handler) or self._timed(method, handler)

    def _timed(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` as it serves a call that CallGuard lets through: one taking one
        request (a unary call, a watch) reading it as _UnreadRequests has it."""
        if handler.request_streaming:
            return handler
        timed = self._timed_cache.get(method)
        if timed is None:
            timed = self._timed_cache[method] = _read_in_time(handler, self._unread,
                                                              self._shares)
        return timed

    def _known_key(self, handler_call_details: grpc.HandlerCallDetails) -> bool:
        """Whether a call carries a known key, or auth is off."""
        auth = self._envelope.policy.auth
        if not auth.enabled:
            return True
        try:
            auth.authenticate(handler_call_details.invocation_metadata)  # type: ignore[arg-type]
        except FootfallError:
            return False
        return True

    def _keyless_read(self, handler_call_details: grpc.HandlerCallDetails,
                      handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        """With auth on, for a call without a known key of an open service's method
        that takes one request (health Check and Watch), `handler` reading it as
        _KeylessReads does; None to serve the call with `handler` as it is."""
        method = handler_call_details.method
        if handler.request_streaming or not method.startswith(_OPEN_SERVICES) or \
                self._known_key(handler_call_details):
            return None
        reader = self._keyless_cache.get(method)
        if reader is None:
            reader = self._keyless_cache[method] = _read_first(
                handler, self._streams.reads, self._envelope.policy.keyless_refusals,
                self._shares)
        return reader

    def _unread_refusal(self, handler_call_details: grpc.HandlerCallDetails
                        ) -> grpc.RpcMethodHandler | None:
        """With auth on, a handler refusing a call of a method served here that
        carries no known key, before its request is read (see _refused_unread);
        None to serve it. (Only methods served: the policy remembers each method
        it is asked about, and anyone can make up endless names.)"""
        if not self._envelope.policy.auth.enabled:
            return None
        started = time.perf_counter()
        method = handler_call_details.method
        try:
            self._envelope.screen(method, handler_call_details.invocation_metadata)  # type: ignore[arg-type]
        except FootfallError as exc:
            return _refused_unread(self._envelope.refuse(method, exc, started),
                                   self._envelope.policy.keyless_refusals)
        return None
