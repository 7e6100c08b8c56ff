"""What the watches' feeds meet reading the store is said once for all of them (N
watches of distinct filters are N feeds), a line every STILL_SECONDS while it goes
on, and once as it ends: each feed said each failed read, every poll, with a
traceback for an error no outage explains (a table gone: 200 lines in 2 s)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc

from server.config import Settings
from server.console import feed, read_trouble

from .test_console import Watched, write
from .test_server import PARENT

FEEDS = 3
NOTICED = 15.0  # seconds within which a failed read, or one that works, is said


def eventually(probe: Callable[[], object], what: str) -> None:
    end = time.monotonic() + NOTICED
    while not probe():
        assert time.monotonic() < end, f"gave up after {NOTICED}s waiting for {what}"
        time.sleep(0.05)


def sent(channel: grpc.Channel, watched: Watched, visitor: str) -> None:
    """Write events of `visitor` until `watched` sends one (it begins at a position
    this side cannot see)."""
    for _ in range(100):
        write(channel, visitorId=visitor)
        if watched.wait_for(lambda: visitor in watched.got, 0.2):
            return
    raise AssertionError(f"the watch sent no event of {visitor}")


def test_a_read_every_feed_fails_is_said_once_then_now_and_then_and_its_end_once(
        channel: grpc.Channel, settings: Settings, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(read_trouble, "STILL_SECONDS", 1.0)
    console = console_pb2_grpc.ConsoleServiceStub(channel)
    watches = [Watched(console.WatchUserEvents(console_pb2.WatchUserEventsRequest(
        parent=PARENT, filter=f'visitorId = "w{i}"'), timeout=60)) for i in range(FEEDS)]

    def said(start: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith(start)]

    try:
        for i, watched in enumerate(watches):
            sent(channel, watched, f"w{i}")
        # A dropped table: an error of SQLite's that no outage explains.
        with contextlib.closing(sqlite3.connect(settings.store.removeprefix("sqlite:///"),
                                                isolation_level=None)) as conn:
            conn.execute("ALTER TABLE user_events RENAME TO user_events_away")
            eventually(lambda: said("a watch could not read the store"), "the failed reads")
            time.sleep(6 * feed.POLL_SECONDS)  # (18 failed reads of 3 feeds)
            conn.execute("ALTER TABLE user_events_away RENAME TO user_events")
        eventually(lambda: said("a watch reads the store again"), "the reads to work again")
        write(channel, visitorId="w1")  # the watches go on
        assert watches[1].wait_for(lambda: watches[1].got.count("w1") > 1, NOTICED)
    finally:
        for watched in watches:
            watched.close()
    first = said("a watch could not read the store")
    assert len(first) == 1, [r.getMessage() for r in first]
    assert "no such table: user_events" in first[0].getMessage()
    assert first[0].exc_info is not None  # (once: where an unexplained error came from)
    still = said("the watches still cannot read the store")
    assert 1 <= len(still) <= 4, [r.getMessage() for r in still]
    assert all(r.exc_info is None for r in still)
    again = said("a watch reads the store again")
    assert len(again) == 1, [r.getMessage() for r in again]
    failed = int(again[0].getMessage().split("(")[1].split()[0])
    assert failed >= 2 * FEEDS * 2, again[0].getMessage()  # (each feed, each poll)
