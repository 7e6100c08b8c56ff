"""Google's Node.js user-event samples (event_samples.test.js, with
@google-cloud/retail) and its Talent CreateClientEvent samples
(talent_samples.test.js, with @google-cloud/talent), run by node's own test runner
against an in-process server over each of the clients' transports: gRPC, and the
REST transport (`fallback: true`) against the HTTP gateway. See test_node_client.py
for how the clients are had."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import Running, start
from server.config import Settings
from server.store import EventQuery

from .test_node_client import HERE, NODE_DEADLINE, SKIPPED, node  # noqa: F401 (a fixture)

# write-user-event.js and its fellows name the catalog by PROJECT_NUMBER
CATALOG = "projects/786512034455/locations/global/catalogs/default_catalog"
TALENT_PROJECT = "node-talent-samples"


@pytest.fixture(scope="module")
def talent_client(node: str) -> str:  # noqa: F811
    if not (HERE / "node_modules" / "@google-cloud" / "talent").is_dir():
        pytest.skip(SKIPPED.format(why="@google-cloud/talent is missing from "
                                       "tests/node/node_modules: npm ci --prefix tests/node"))
    return node


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    settings = Settings(port=0, http_port=-1, store=f"sqlite:///{tmp_path}/events.db",
                        gcs_root=str(tmp_path / "gcs"), grace_seconds=5, workers=2)
    server = start(settings)
    yield server
    server.stop()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_googles_node_event_samples(talent_client: str, running: Running, tmp_path: Path,
                                    transport: str) -> None:
    (tmp_path / "gcs").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(FOOTFALL_TRANSPORT=transport,
               FOOTFALL_GRPC_ADDRESS=f"127.0.0.1:{running.port}",
               FOOTFALL_HTTP_ADDRESS=f"127.0.0.1:{running.http_port}",
               FOOTFALL_CATALOG=CATALOG, FOOTFALL_GCS_ROOT=str(tmp_path / "gcs"),
               FOOTFALL_TALENT_PROJECT=TALENT_PROJECT,
               # google-auth-library must not look for a GCE metadata server.
               METADATA_SERVER_DETECTION="none", NO_COLOR="1")
    run = subprocess.run([talent_client, "--test", str(HERE / "event_samples.test.js"),
                          str(HERE / "talent_samples.test.js")], cwd=HERE, env=env,
                         capture_output=True, text=True, timeout=NODE_DEADLINE)
    assert run.returncode == 0, f"node --test failed ({run.returncode}):\n{run.stdout}\n" \
                                f"{run.stderr}"
    assert "# pass 14" in run.stdout and "# fail 0" in run.stdout, run.stdout
    # What the samples left: the inline import's 3 events, the GCS imports' 4 + 3, and
    # the test resources' 4 (each sample that writes for `test_visitor_id` purges it)
    assert running.store.count_user_events(EventQuery(CATALOG)) == 3 + 4 + 3 + 4
