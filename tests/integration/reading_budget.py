"""What the tests of the watches' reading budget (--watch-read-ms, console/pace.py's
Reading) share: a server whose budget they can see, and filters of a feed each."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.console import feed, pace


class Counted(pace.Reading):
    """The server's budgets of time (of reading, then of sending: both `Reading`s),
    kept where the test can see its reads waiting."""

    made: list[Counted] = []

    def __init__(self, per_second: float) -> None:
        super().__init__(per_second)
        Counted.made.append(self)


@contextlib.contextmanager
def budgeted_server(settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
                    read_ms: int) -> Iterator[tuple[Running, list[Counted]]]:
    """A server (gRPC only) whose watches read the store at most `read_ms` a second
    together, and its budget."""
    made: list[Counted] = []
    monkeypatch.setattr(Counted, "made", made)
    monkeypatch.setattr(feed, "Reading", Counted)
    running = start(dataclasses.replace(settings, http_port=-1, watch_read_ms=read_ms), clock)
    try:
        yield running, made
    finally:
        running.stop()


def distinct_filter(k: int) -> str:
    """A filter of its own for watch `k` (a feed of its own): every event stamped
    since 2000."""
    return f'eventTime > "2000-01-01T00:00:{k:02d}Z"'


class Watch:
    """A watch of `parent` by `rpc` (WatchUserEvents or WatchUserEventBatches) in a
    thread of its own, keeping the ids and visitors of what it received until it has
    `wanted` events or ends; `on_event` is called as each comes (with the count so
    far). Nothing takes longer than `seconds`."""

    def __init__(self, channel: grpc.Channel, rpc: str, parent: str, wanted: int,
                 on_event: Callable[[int], None] = lambda _: None, seconds: float = 120.0,
                 **request: object) -> None:
        stub = console_pb2_grpc.ConsoleServiceStub(channel)
        self.call = getattr(stub, rpc)(
            console_pb2.WatchUserEventsRequest(parent=parent, **request), timeout=seconds)
        self.batches = rpc == "WatchUserEventBatches"
        self.wanted = wanted
        self.on_event = on_event
        self.seconds = seconds
        self.ids: list[int] = []
        self.visitors: list[str] = []
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            for message in self.call:
                for stored in (message.user_events if self.batches else [message]):
                    self.ids.append(stored.id)
                    self.visitors.append(stored.user_event.visitor_id)
                    self.on_event(len(self.visitors))
                if len(self.ids) >= self.wanted:
                    break
        except grpc.RpcError as error:
            self.error = error
        finally:
            self.call.cancel()

    def join(self) -> None:
        self.thread.join(self.seconds)
        assert not self.thread.is_alive(), f"{len(self.ids)} of {self.wanted} events came"
        assert self.error is None, self.error
