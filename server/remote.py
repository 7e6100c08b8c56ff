"""What the CLI reads from a running server (`--server HOST:PORT`), through the
public API only, so that any store, `memory://` included, can be inspected.

- Events, client events, refusals and catalogs: footfall.console.v1
  ConsoleService (a key with the reader or admin role).
- Products: google.cloud.retail.v2 ProductService/ListProducts (reader or admin).
- Operations: google.longrunning.Operations/ListOperations (an admin key).
- Tails: the console's Watch* streams, resumed after the last position seen when
  the server goes away and comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, cast

import grpc
from footfall.console.v1 import console_pb2_grpc
from google.longrunning import operations_pb2, operations_pb2_grpc

CALL_SECONDS = 30.0  # per unary call
# How often a channel whose server went away tries again: quickly, as a restart
# takes seconds (grpc's own backoff grows to two minutes). Not
# grpc.min_reconnect_backoff_ms: grpc takes it as the least time a connection
# attempt is given (its default 20 s), and at 250 ms a server held a quarter of a
# second by a busy machine was "cannot reach a server" at once.
RECONNECT_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 250),
                     ("grpc.max_reconnect_backoff_ms", 2000))
# How a watch ends when its server stops or restarts: the stream closes (a
# graceful stop ends every watch) or breaks.
_GONE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}


class RemoteError(Exception):
    """The server answered with an error status (or could not be reached)."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason  # its google.rpc.ErrorInfo's (ROLE_NOT_ALLOWED...), if any

    @property
    def unreached(self) -> bool:
        """Whether no server answered: gRPC found no address to connect to (nothing
        listening, a name that does not resolve, a failed handshake). A server that
        answers UNAVAILABLE itself (its database away) says more than that."""
        return self.code is grpc.StatusCode.UNAVAILABLE and self.message.startswith(
            ("failed to connect to all addresses", "DNS resolution failed",
             "errors resolving"))

    @property
    def nothing_listens(self) -> bool:
        """Whether no server was reached because nothing listens at its address (its
        connection refused): a server stopped or not started yet, or a wrong port."""
        return self.unreached and "Connection refused" in self.message


class PagesWithoutEnd(RemoteError):
    """The server answered a page token it had already given: following it would
    list the same pages again and again."""

    def __init__(self, pages: int) -> None:
        super().__init__(grpc.StatusCode.UNKNOWN, "")
        self.pages = pages

    def __str__(self) -> str:
        return (f"a page token it had already given, after {self.pages:,} pages: its pages "
                "would repeat without end, so the listing stopped there")


def pages(fetch: Callable[[Any], Any], request: Any) -> Iterator[Any]:
    """The answers of a list RPC, page after page: `fetch(request)`, then again
    with each `next_page_token` until an answer has none (a caller may change the
    request's page size between pages). PagesWithoutEnd when a token comes back:
    a server (or whatever listens at its address) must not keep a CLI busy forever."""
    seen: set[int] = set()  # hashes: a token may be as long as a message allows
    while True:
        reply = fetch(request)
        yield reply
        token = reply.next_page_token
        if not token:
            return
        if hash(token) in seen:
            raise PagesWithoutEnd(len(seen) + 1)
        seen.add(hash(token))
        request.page_token = token


@dataclass(frozen=True)
class Connection:
    """How to reach the server: its address, TLS (`ca`: a PEM authority; None
    with `tls`: the system's roots) and the API key sent with every call."""

    address: str
    key: str = ""
    tls: bool = False
    ca: bytes | None = None

    def channel(self) -> grpc.Channel:
        if not (self.tls or self.ca):
            return grpc.insecure_channel(self.address, options=RECONNECT_OPTIONS)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca)
        return grpc.secure_channel(self.address, credentials, options=RECONNECT_OPTIONS)


class ServerSource:
    """Reads a running server; the key goes as x-goog-api-key with every call."""

    def __init__(self, connection: Connection) -> None:
        self._channel = connection.channel()
        self._address = connection.address
        self._metadata = (("x-goog-api-key", connection.key),) if connection.key else ()
        self.console = console_pb2_grpc.ConsoleServiceStub(self._channel)
        self._operations = operations_pb2_grpc.OperationsStub(self._channel)
        # Followed by tails: whether the channel was ever connected, and whom to tell
        # when it is again after the server went away.
        self._reached = False
        self._back: Callable[[], None] | None = None
        self._said = ""  # (see _follow)

    @cached_property
    def products(self) -> Any:
        """ProductService's stub, made when first used: its messages' module took some
        5 ms of CPU of every other command's start."""
        from footfall.retail.v2 import product_service_pb2_grpc

        return product_service_pb2_grpc.ProductServiceStub(self._channel)

    def _state(self, state: grpc.ChannelConnectivity) -> None:
        if state is grpc.ChannelConnectivity.READY:
            self._reached = True
            back, self._back = self._back, None
            if back is not None:
                back()

    def close(self) -> None:
        self._channel.close()

    def call(self, method: Any, request: Any) -> Any:
        """`method(request)`'s answer; RemoteError for an error status."""
        try:
            return method(request, metadata=self._metadata, timeout=CALL_SECONDS)
        except grpc.RpcError as exc:
            raise _remote(exc) from None

    def operations(self, parent: str, done: bool | None) -> Iterator[operations_pb2.Operation]:
        """The operations under `parent`, oldest first, page by page; RemoteError."""
        request = operations_pb2.ListOperationsRequest(
            name=parent, filter="" if done is None else f"done={str(done).lower()}",
            page_size=1000)
        for reply in pages(partial(self.call, self._operations.ListOperations), request):
            yield from reply.operations

    def follow(self, watch: Callable[..., Any], request: Any,
               say: Callable[[str], None]) -> Iterator[Any]:
        """Every message of the `watch` stream, without end: when the server goes
        away, or nothing listens at its address yet, `say` so and call again after
        the last position seen (`after_id`) once it is back. RemoteError for a
        refusal (key, request), or when no server was ever reached for another
        reason than that (a handshake that failed, a name that does not resolve:
        no wait mends those)."""
        # Watching the channel's state costs its close a poll (about 0.2 s): tails only.
        self._channel.subscribe(self._state)
        try:
            yield from self._follow(watch, request, say)
        finally:
            # (left to the channel's close, grpc's polling thread once died at exit with
            # a traceback, and once the close after a Ctrl-C hung a test for 30 s)
            self._channel.unsubscribe(self._state)
            _polling_ended(self._channel)

    def _follow(self, watch: Callable[..., Any], request: Any,
                say: Callable[[str], None]) -> Iterator[Any]:
        again = False  # the first call fails at once; the next ones wait for the server
        # A server whose database is away answers each watch UNAVAILABLE at once: the
        # same failure is said once (it was said every 0.7 s, as "the server went
        # away", of a server that answered) and tried again less and less often.
        # (`_said` is also forgotten once the channel is back: the next outage of a tail
        # with nothing new to show, in the same words, was not said, only its 'reconnected')
        self._said, pause = "", RETRY_SECONDS
        while True:
            waiting = False  # for a server never reached: nothing listens at its address
            try:
                for message in watch(request, metadata=self._metadata, wait_for_ready=again):
                    request.after_id = message.id
                    self._said, pause = "", RETRY_SECONDS
                    yield message
                why = "the server ended the stream"
            except grpc.RpcError as exc:
                error = _remote(exc)
                # A server that stopped before the tail first reached it (or has not
                # started yet) is waited for as one that stopped after it was reached.
                waiting = not self._reached and error.nothing_listens
                if exc.code() not in _GONE or (error.unreached and not self._reached
                                               and not waiting):
                    raise error from None
                why = f"the watch ended ({exc.code().name}: {exc.details() or 'no message'})"
            again = True
            where = (f"after position {request.after_id}" if request.HasField("after_id")
                     else "from what is stored once it is back (nothing had arrived yet)")
            line = f"{why}; reconnecting, to go on {where}"
            if waiting:
                where = (f"after position {request.after_id}" if request.HasField("after_id")
                         else "from what is stored once it is there")
                line = (f"nothing listens at {self._address} (is the server running, and is "
                        f"that its gRPC port?); waiting for it, to go on {where}")
            if line != self._said:
                say(line)
            else:
                pause = min(pause * 2, MAX_RETRY_SECONDS)
            self._said = line
            self._back = partial(self._reconnected, say,
                                 "connected" if waiting else "reconnected", where)
            time.sleep(pause)  # a stream that ends at once (a stopping server) is not a loop

    def _reconnected(self, say: Callable[[str], None], what: str, where: str) -> None:
        self._said = ""
        say(f"{what}; going on {where}")


RETRY_SECONDS = 0.2  # after a watch ended, before it is called again
MAX_RETRY_SECONDS = 2.0  # ... when it ended the same way each time
POLL_END_SECONDS = 0.5  # grpc's polling thread looks every 0.2 s whether to go on


def _polling_ended(channel: grpc.Channel) -> None:
    """Wait (POLL_END_SECONDS at most) for grpc's thread that polled the channel's
    state for `subscribe` to end, after the last unsubscribe: a channel closed while
    it still polled made it die with a traceback on stderr ("Exception in thread
    Thread-1 (_run): ... closed channel"), printed before the one line a refused tail
    says (CI saw it once under load). grpc keeps that state privately: where it is
    not found, nothing is waited for."""
    state = getattr(channel, "_connectivity_state", None)
    deadline = time.monotonic() + POLL_END_SECONDS
    while getattr(state, "polling", False) and time.monotonic() < deadline:
        time.sleep(0.01)


def _remote(exc: grpc.RpcError) -> RemoteError:
    return RemoteError(exc.code(), exc.details() or "", _reason(exc))


def _reason(exc: grpc.RpcError) -> str:
    """The reason of the google.rpc.ErrorInfo in `exc`'s status details; "" without one
    (or with details that do not decode: whatever listens there may be no Footfall)."""
    # (here: a call that succeeds needs neither)
    from google.protobuf.message import DecodeError
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(cast(grpc.Call, exc))
    except (ValueError, DecodeError):
        return ""
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""
