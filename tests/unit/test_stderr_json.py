"""The relay's lines under `--log-format json` (server/stderr_json.py)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from server import stderr_json
from server.stderr_json import as_json_line

RECORD = b'{"time":"2026-12-06T18:00:00.000Z","level":"INFO","logger":"footfall","message":"m"}'


def test_a_childs_record_is_passed_on_as_it_is() -> None:
    assert as_json_line(RECORD + b"\n") == RECORD + b"\n"


@pytest.mark.parametrize("cut", [
    RECORD[:40],  # a record longer than the pipe's atomic write, its end in another line
    RECORD[:40] + RECORD,  # another child's record written into it
    b'{"time": 1} {"time": 2}',
])
def test_a_cut_record_is_wrapped_not_passed_on(cut: bytes) -> None:
    """A line starting as a record was passed on as it came, whole or not: a line no
    collector could read."""
    line = json.loads(as_json_line(cut))
    assert (line["level"], line["logger"], line["message"]) == \
        ("WARNING", "stderr", cut.decode()), line


@pytest.mark.parametrize(("raw", "level"), [
    (b"footfall serve: error: --tls-cert and --tls-key go together", "ERROR"),
    (b"footfall events list: error: argument --page-size: invalid int value: 'x'", "ERROR"),
    (b"Traceback (most recent call last):", "ERROR"),
    (b"footfall: FOOTFALL_STORRE is no setting of footfall serve", "WARNING"),
    (b"/x.py:3: DeprecationWarning: the error: is not ours", "WARNING"),
])
def test_the_lines_that_say_why_a_server_stopped_are_errors(raw: bytes, level: str) -> None:
    assert json.loads(as_json_line(raw))["level"] == level


class _Clock:
    """time.monotonic for the relay, moved by the test (its windows' ends)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class _Selects:
    """select for the relay, counting its waits begun: a wait begun after a batch of
    lines means the batch is done, its counts looked at."""

    def __init__(self) -> None:
        self.begun = 0
        self._changed = threading.Condition()

    def select(self, *args: Any) -> Any:
        with self._changed:
            self.begun += 1
            self._changed.notify_all()
        return select.select(*args)

    def wait_for(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.begun >= count, timeout=10)


def _read_line(fd: int) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        got = os.read(fd, 1)
        assert got, line
        line += got
    return line


@contextlib.contextmanager
def relaying() -> Iterator[tuple[int, int]]:
    """A relay of text lines (_relay) on a thread of its own: the descriptor its
    lines are written into, and the one they come out of; ended and joined after."""
    pipe, into = os.pipe()
    out, written = os.pipe()
    drained, drained_into = os.pipe()
    relay = threading.Thread(target=stderr_json._relay,
                             args=(pipe, written, b"mark\n", drained_into, False))
    relay.start()
    try:
        yield into, out
    finally:
        os.close(into)
        relay.join(10)
        for fd in (out, written, drained, drained_into):
            os.close(fd)
    assert not relay.is_alive()


def test_a_place_whose_window_ended_while_quiet_has_its_next_line_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A place that filled its window, then went quiet past its end: its next line was
    still counted against that window (looked at only once a line had come), not
    written, and said as one line of grpc's not written."""
    clock, selects = _Clock(), _Selects()
    monkeypatch.setattr(stderr_json, "time", clock)
    monkeypatch.setattr(stderr_json, "select", selects)
    monkeypatch.setattr(stderr_json, "GRPC_LINES", 2)
    with relaying() as (into, out):
        grpc_line = b"E1206 21:00:00.000000   123 hpack_parser.cc:1048] Error parsing\n"
        for _ in range(2):  # (the window's whole allowance, each line a batch of its own)
            os.write(into, grpc_line)
            assert _read_line(out) == grpc_line
        selects.wait_for(3)  # (the first wait, and one after each batch)
        clock.now += stderr_json.WINDOW_SECONDS + 1
        os.write(into, grpc_line)
        assert _read_line(out) == grpc_line


def test_with_grpcs_tracers_on_every_line_of_grpcs_is_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator who set GRPC_TRACE asked for every line: kept to GRPC_LINES a
    place, a trace of one call was cut after its first lines."""
    monkeypatch.setenv("GRPC_TRACE", "http")
    monkeypatch.setattr(stderr_json, "GRPC_LINES", 2)
    with relaying() as (into, out):
        grpc_line = b"I1206 21:00:00.000000   123 chttp2_transport.cc:1234] frame\n"
        for _ in range(5):
            os.write(into, grpc_line)
            assert _read_line(out) == grpc_line
