"""The relay's lines under `--log-format json` (server/stderr_json.py)."""

from __future__ import annotations

import json

import pytest

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
