"""An in-process server on port 0 with our own stubs; stopped by the fixture."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

# 2024-05-01T12:00:00Z
NOW_NS = 1_714_564_800 * 10**9


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW_NS)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path}/events.db",
                    grace_seconds=5, workers=8)


@pytest.fixture
def running(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    server = start(settings, clock)
    yield server
    server.stop()


@pytest.fixture
def served(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    """`running` with its HTTP port open too (a free one)."""
    server = start(dataclasses.replace(settings, http_port=-1), clock)
    yield server
    server.stop()


@pytest.fixture
def channel(running: Running) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        yield chan


@pytest.fixture(params=["sqlite", "postgresql"])
def crash_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store of a crash test's servers (killed_server): a SQLite file, then a
    PostgreSQL database of its own (skipped without FOOTFALL_TEST_POSTGRES_DSN)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    url: str = request.getfixturevalue("postgres_databases").create("crash")
    return url
