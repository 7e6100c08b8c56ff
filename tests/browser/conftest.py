"""What every browser test needs: Debian's chromium (or a loud skip) and a server
started in process on free ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import Running, start
from server.config import Settings

from .cdp import find_chromium
from .pages import screenshots

SKIPPED = ("BROWSER TEST SKIPPED: Debian's chromium is not installed "
           "(`make test` installs it: apt-get install -y chromium)")


@pytest.fixture(scope="session")
def browser_executable() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip(SKIPPED)
    return found


@contextlib.contextmanager
def serve(tmp_path: Path, **more: Any) -> Iterator[Running]:
    """A server on free ports over a SQLite file in `tmp_path` (`more`: other
    settings), stopped however the block ends."""
    settings = Settings(port=0, http_port=-1, store=f"sqlite:///{tmp_path}/events.db",
                        gcs_root=str(tmp_path / "gcs"), grace_seconds=5, workers=4, **more)
    server = start(settings)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    with serve(tmp_path) as server:
        yield server


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where the screenshots go; copied to screenshots/ when the test ends."""
    with screenshots(tmp_path, request.node.name) as folder:
        yield folder
