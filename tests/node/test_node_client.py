"""A second language: the official Node.js client (@google-cloud/retail, installed by
`make test` with `npm ci` from package-lock.json) runs retail.test.js under
node's own test runner against an in-process server; the store then holds what
it wrote and imported."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import Running, start
from server.config import Settings
from server.store import EventQuery

HERE = Path(__file__).parent
CATALOG = "projects/node-test/locations/global/catalogs/default_catalog"
NODE_DEADLINE = 120.0
SKIPPED = "NODE CLIENT TEST SKIPPED: {why} (`make test` installs it)"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip(SKIPPED.format(why="node is not installed"))
    if not (HERE / "node_modules" / "@google-cloud" / "retail").is_dir():
        pytest.skip(SKIPPED.format(why="tests/node/node_modules is missing: npm ci "
                                       "--prefix tests/node"))
    return found


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    settings = Settings(port=0, store=f"sqlite:///{tmp_path}/events.db",
                        gcs_root=str(tmp_path / "gcs"), grace_seconds=5, workers=4)
    server = start(settings)
    yield server
    server.stop()


def test_official_node_client_writes_and_imports(node: str, running: Running) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(FOOTFALL_GRPC_ADDRESS=f"127.0.0.1:{running.port}", FOOTFALL_CATALOG=CATALOG,
               # google-auth-library must not look for a GCE metadata server.
               METADATA_SERVER_DETECTION="none", NO_COLOR="1")
    run = subprocess.run([node, "--test", str(HERE / "retail.test.js")], cwd=HERE, env=env,
                         capture_output=True, text=True, timeout=NODE_DEADLINE)
    assert run.returncode == 0, f"node --test failed ({run.returncode}):\n{run.stdout}\n" \
                                f"{run.stderr}"
    assert "# pass 3" in run.stdout and "# fail 0" in run.stdout, run.stdout
    assert running.store.count_user_events(EventQuery(CATALOG)) == 1 + 3
