"""What the tests of the watches' reading budget (--watch-read-ms, console/pace.py's
Reading) share: a server whose budget they can see, and filters of a feed each."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pytest

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.console import feed, pace


class Counted(pace.Reading):
    """The server's budget, kept where the test can see its reads waiting."""

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
