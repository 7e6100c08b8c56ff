"""server.periodic: housekeeping at start and then every so often."""

from __future__ import annotations

import threading
import time

import pytest

from server.periodic import Periodic
from server.store.rows import StoreUnavailable


def test_runs_at_start_then_every_interval_and_lives_through_failures(
        caplog: pytest.LogCaptureFixture) -> None:
    runs: list[float] = []
    ran_thrice = threading.Event()

    def task() -> None:
        runs.append(time.monotonic())
        if len(runs) == 3:
            ran_thrice.set()
        if len(runs) == 1:
            raise StoreUnavailable("the database is away")
        if len(runs) == 2:
            raise RuntimeError("a bug")

    periodic = Periodic(task, 0.05, "test-periodic", "testing")
    periodic.start()
    assert len(runs) == 1  # done before start returned
    assert ran_thrice.wait(5)
    periodic.stop(5)
    stopped_at = len(runs)
    time.sleep(0.2)
    assert len(runs) == stopped_at
    assert "testing failed; next time: the database is away" in caplog.text
    assert "testing failed; next time" in caplog.text and "a bug" in caplog.text


def test_the_first_run_may_go_on_the_thread() -> None:
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)
        finished.set()

    periodic = Periodic(slow, 60, "test-periodic", "testing")
    periodic.start(first_on_thread=True)  # returns while the first run waits
    assert not finished.is_set()
    assert started.wait(5)
    release.set()
    assert finished.wait(5)
    periodic.stop(5)


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Periodic(lambda: None, 0, "test-periodic", "testing")
