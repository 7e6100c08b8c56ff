"""ReadTrouble (server/console/read_trouble.py) on its own: what one spell of failed
feed reads is said as."""

from __future__ import annotations

import logging

import pytest

from server.console.read_trouble import ReadTrouble
from server.store.rows import StoreUnavailable


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("a watch could not read the store")]


def test_an_outage_whose_errors_differ_in_their_detail_alone_is_said_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """A PostgreSQL outage's reads fail with one message and details that differ (the
    pool waited 5 s for the first, 0.5 s for those after, once it knew the database
    away): one outage, said once (CI saw it said twice)."""
    caplog.set_level(logging.INFO)
    trouble = ReadTrouble()
    for feed, waited in (("a", "5.00"), ("b", "0.50"), ("a", "0.50")):
        trouble.failed(feed, StoreUnavailable(
            "the database is unreachable; try again later",
            f"couldn't get a connection after {waited} sec"))
    assert len(_said(caplog)) == 1, _said(caplog)
    # ... and it names the detail of the first
    assert "after 5.00 sec" in _said(caplog)[0]


def test_other_errors_are_said_each_once_with_their_text(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    trouble = ReadTrouble()
    for text in ("no such table: user_events", "no such table: user_events",
                 "disk I/O error"):
        try:
            raise RuntimeError(text)
        except RuntimeError as exc:
            trouble.failed("a", exc)
    assert [m.split(": ", 1)[1].split(" (said once")[0] for m in _said(caplog)] == [
        "RuntimeError: no such table: user_events", "RuntimeError: disk I/O error"]
