"""The CLI's channel to a running server (server/remote.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.remote import RECONNECT_OPTIONS, Connection, RemoteError, ServerSource


def test_a_server_slow_to_answer_is_waited_for_within_the_calls_deadline() -> None:
    """grpc.min_reconnect_backoff_ms is also the least time grpc gives a connection
    attempt: at 250 ms, a server held a quarter of a second by a busy machine was
    "cannot reach a server" at once (UNAVAILABLE: connection attempt timed out before
    receiving SETTINGS frame), and CLI tests failed under CI's load."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []  # accepted, never answered: a server that is held

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # closed: the test is over
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        port = listener.getsockname()[1]
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=RECONNECT_OPTIONS) as channel:
            with pytest.raises(grpc.RpcError) as failed:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=1.5)
        assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED, failed.value
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_refused_tail_leaves_no_grpc_thread_polling_its_channel() -> None:
    """A tail watches its channel's state (grpc polls it on a thread of its own, every
    0.2 s, until its last watcher goes); closed while that thread still polled, the
    channel made it die with a traceback on stderr, printed before the tail's one
    line of refusal (CI saw it once under load). When a tail ends, the thread has
    ended too, and the channel can be closed."""
    server = grpc.server(futures.ThreadPoolExecutor(1))  # no service: UNIMPLEMENTED
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        source = ServerSource(Connection(f"127.0.0.1:{port}"))
        request = console_pb2.WatchUserEventsRequest(parent="projects/p/locations/global/"
                                                            "catalogs/default_catalog")
        with pytest.raises(RemoteError) as refused:
            next(source.follow(source.console.WatchUserEvents, request, print))
        assert refused.value.code == grpc.StatusCode.UNIMPLEMENTED
        pollers = [t for t in threading.enumerate() if t.name.endswith("(_run)")]
        assert not pollers, pollers
        source.close()
    finally:
        server.stop(None)


class DatabaseAway(console_pb2_grpc.ConsoleServiceServicer):
    """A server whose database goes away under a watch: it sends the watch's first
    event, then answers UNAVAILABLE, as Footfall does, to the watch and to the next
    `refusals` calls, and sends the next event to the one after."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls = 0

    def WatchUserEvents(self, request: console_pb2.WatchUserEventsRequest,  # noqa: N802
                        context: grpc.ServicerContext) -> Iterator[console_pb2.StoredUserEvent]:
        self.calls += 1
        if self.calls == 1:
            yield console_pb2.StoredUserEvent(id=1)
        if self.calls <= 1 + self.refusals:
            context.abort(grpc.StatusCode.UNAVAILABLE,
                          "the database is unreachable; try again later")
        yield console_pb2.StoredUserEvent(id=2)


def test_a_watch_refused_while_the_database_is_away_is_said_once() -> None:
    """A tail of a server whose database was away said "the server went away
    (UNAVAILABLE); reconnecting" seven times in five seconds: the server had not gone,
    it answered, and what it said was not shown."""
    away = DatabaseAway(refusals=4)
    server = grpc.server(futures.ThreadPoolExecutor(2))
    console_pb2_grpc.add_ConsoleServiceServicer_to_server(away, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    said: list[str] = []
    try:
        source = ServerSource(Connection(f"127.0.0.1:{port}"))
        request = console_pb2.WatchUserEventsRequest(parent="projects/p/locations/global/"
                                                            "catalogs/default_catalog")
        events = source.follow(source.console.WatchUserEvents, request, said.append)
        assert next(events).id == 1
        time.sleep(0.5)  # (grpc tells the channel's state every 0.2 s: it was reached)
        assert next(events).id == 2
        events.close()
        source.close()
    finally:
        server.stop(None)
    assert away.calls == 6
    assert said == ["the watch ended (UNAVAILABLE: the database is unreachable; try again "
                    "later); reconnecting, to go on after position 1"], said


class Quiet(console_pb2_grpc.ConsoleServiceServicer):
    """A watch of a quiet catalog: the first call sends event 1, the third event 2,
    and every call then stays open with nothing to send."""

    def __init__(self) -> None:
        self.calls = 0

    def WatchUserEvents(self, request: console_pb2.WatchUserEventsRequest,  # noqa: N802
                        context: grpc.ServicerContext) -> Iterator[console_pb2.StoredUserEvent]:
        self.calls += 1
        if self.calls in (1, 3):
            yield console_pb2.StoredUserEvent(id=self.calls // 2 + 1)
        while context.is_active():
            time.sleep(0.05)


def _until(done: object, said: list[str], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, said
        time.sleep(0.05)


def test_each_time_the_server_goes_away_from_a_quiet_tail_is_said() -> None:
    """The second restart of the server under a tail with nothing new to show was not
    said: its line was the first one's word for word, and a line is said once until a
    message comes; only 'reconnected' came, of an outage never told."""
    quiet = Quiet()
    port = 0
    said: list[str] = []
    seen: list[int] = []

    def serve() -> grpc.Server:
        nonlocal port
        server = grpc.server(futures.ThreadPoolExecutor(4))
        console_pb2_grpc.add_ConsoleServiceServicer_to_server(quiet, server)
        port = server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        return server

    server = serve()
    source = ServerSource(Connection(f"127.0.0.1:{port}"))
    request = console_pb2.WatchUserEventsRequest(parent="projects/p/locations/global/"
                                                        "catalogs/default_catalog")
    events = source.follow(source.console.WatchUserEvents, request, said.append)
    assert next(events).id == 1
    tail = threading.Thread(target=lambda: seen.append(next(events).id), daemon=True)
    tail.start()
    try:
        time.sleep(0.5)  # (grpc tells the channel's state every 0.2 s: it was reached)
        for outage in (1, 2):
            server.stop(None)
            _until(lambda outage=outage: len(said) == 2 * outage - 1, said)
            server = serve()
            _until(lambda outage=outage: quiet.calls == outage + 1
                   and len(said) == 2 * outage, said)
        _until(lambda: seen == [2], said)
    finally:
        server.stop(None)
        tail.join(10)
        source.close()
    back = "reconnected; going on after position 1"
    assert len(said) == 4 and said[1::2] == [back, back], said
    assert all(line.startswith("the watch ended (UNAVAILABLE: ")
               and line.endswith("; reconnecting, to go on after position 1")
               for line in said[::2]), said
