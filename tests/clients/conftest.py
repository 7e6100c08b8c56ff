"""Fixtures: one `footfall serve` subprocess for the generated clients, and each language's
programs (`client`, `console`) generated and built once a session (the three languages'
builds at the same time).

A language whose toolchain is missing skips, loudly (`make test-tools` installs them
from Debian); with FOOTFALL_TEST_REQUIRE_CLIENTS=1 (.ci/run sets it) it fails instead.
Imports nothing of ours: it runs in the interop suite's process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from interop.support import ServerProcess, running_server, sqlite_url

from . import builds

REQUIRED = "FOOTFALL_TEST_REQUIRE_CLIENTS"
SKIPPED = "GENERATED CLIENT TEST SKIPPED"
T = TypeVar("T")


def _available(language: str, build: Callable[[], T]) -> T:
    """What `build` makes, or a skip (a failure in CI) when a toolchain is missing."""
    try:
        return build()
    except builds.Unavailable as missing:
        why = f"{SKIPPED}: {language}: {missing} (`make test-tools` installs them)"
        if os.environ.get(REQUIRED) == "1":
            pytest.fail(f"{why}; {REQUIRED}=1 makes this a failure")
        pytest.skip(why)


@pytest.fixture(scope="session")
def protos(tmp_path_factory: pytest.TempPathFactory) -> builds.Protos:
    staging = tmp_path_factory.mktemp("protos")
    return _available("every language", lambda: builds.Protos.stage(staging))


@pytest.fixture(scope="session")
def client_builds(protos: builds.Protos, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[dict[str, Future[builds.Programs]]]:
    """Every language's build, started together the first time one is asked for, each
    on a thread of its own: the Go and Ruby builds are done while the C++ one (the
    longest) compiles, not after it. A build's error (Unavailable included) is raised
    by its future's result()."""
    folders = {language: tmp_path_factory.mktemp(language) for language in ("cpp", "gopath",
                                                                            "ruby")}
    pool = ThreadPoolExecutor(3, thread_name_prefix="client-build")
    started = {"cpp": pool.submit(builds.build_cpp, protos, folders["cpp"]),
               "go": pool.submit(builds.build_go, protos, folders["gopath"]),
               "ruby": pool.submit(builds.build_ruby, protos, folders["ruby"])}
    yield started
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def cpp(client_builds: dict[str, Future[builds.Programs]]) -> builds.Programs:
    return _available("C++", client_builds["cpp"].result)


@pytest.fixture(scope="session")
def go(client_builds: dict[str, Future[builds.Programs]]) -> builds.Programs:
    return _available("Go", client_builds["go"].result)


@pytest.fixture(scope="session")
def ruby(client_builds: dict[str, Future[builds.Programs]]) -> builds.Programs:
    return _available("Ruby", client_builds["ruby"].result)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """On a SQLite file, so the events CLI can read back what the clients stored."""
    workdir: Path = tmp_path_factory.mktemp("clients-server")
    with running_server(workdir, sqlite_url(workdir / "events.db")) as running:
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    reasons = sorted({str(r.longrepr[2]) for r in skipped
                      if isinstance(r.longrepr, tuple) and SKIPPED in str(r.longrepr[2])})
    if reasons:
        terminalreporter.write_sep("!", SKIPPED, red=True, bold=True)
        for reason in reasons:
            terminalreporter.write_line(reason, red=True, bold=True)
        terminalreporter.write_sep("!", red=True, bold=True)
