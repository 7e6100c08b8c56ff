"""The health watch's log line says why the store is unhealthy in the store's own
words (the SQLite store's: a full disk, or a disk failing its writes); before, it
said "unreachable, or its disk is full" of every store and every cause, an I/O error
among them."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from server.store.watch import HealthWatch


class Unhealthy:
    def __init__(self, because: str | None) -> None:
        self.asked = threading.Event()
        if because is not None:
            self.unhealthy_because = lambda: because

    def healthy(self) -> bool:
        self.asked.set()
        return False


def said_when_unhealthy(store: Any, caplog: pytest.LogCaptureFixture) -> list[str]:
    changed = threading.Event()
    watch = HealthWatch(store, lambda healthy: changed.set(), every=0.01)
    with caplog.at_level(logging.WARNING, logger="server.store.watch"):
        watch.start()
        try:
            assert changed.wait(10)
        finally:
            watch.stop()
    return [r.getMessage() for r in caplog.records if r.name == "server.store.watch"]


def test_a_store_that_says_why_is_quoted(caplog: pytest.LogCaptureFixture) -> None:
    said = said_when_unhealthy(
        Unhealthy("its disk fails the store's writes (I/O errors)"), caplog)
    assert said == ["store unhealthy (its disk fails the store's writes (I/O errors)): "
                    "health NOT_SERVING"]


def test_a_store_that_does_not_is_not_guessed_at(caplog: pytest.LogCaptureFixture) -> None:
    said = said_when_unhealthy(Unhealthy(None), caplog)
    assert said == ["store unhealthy (its database does not answer, or does not take "
                    "writes): health NOT_SERVING"]
