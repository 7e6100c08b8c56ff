"""What `footfall serve` leaves in the folder it starts in: only what its store needs.
The folder for gs:// files (--gcs-root, ./data/gcs by default) is made when a gs://
file is first written, not at every start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEADLINE = 60.0


def serve_and_stop(cwd: Path, log: Path, *flags: str) -> str:
    """Start `footfall serve FLAGS` in `cwd`, wait until it serves, stop it as a user
    would (SIGTERM) and return what it logged."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", "0",
                                   "--http-port", "0", *flags], cwd=cwd, env=env,
                                  stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + DEADLINE
        while "serving gRPC" not in log.read_text() and server.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert server.poll() is None, log.read_text()
        server.send_signal(signal.SIGTERM)
        assert server.wait(DEADLINE) == 0, log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return log.read_text()


def test_a_memory_server_leaves_its_folder_as_it_found_it(tmp_path: Path) -> None:
    """A test suite's memory:// server left ./data/gcs wherever it was started."""
    cwd = tmp_path / "app"
    cwd.mkdir()
    said = serve_and_stop(cwd, tmp_path / "server.log", "--store", "memory://")
    assert f"gcs root {cwd / 'data' / 'gcs'}" in said, said  # still named where it would be
    assert list(cwd.iterdir()) == []


def test_the_default_store_makes_its_file_and_nothing_for_gs_files(tmp_path: Path) -> None:
    cwd = tmp_path / "app"
    cwd.mkdir()
    serve_and_stop(cwd, tmp_path / "server.log")
    assert [p.name for p in cwd.iterdir()] == ["data"]
    # the writers' turn across processes stays beside the store (see README)
    assert sorted(p.name for p in (cwd / "data").iterdir()) == ["footfall.db",
                                                                 "footfall.db-lock"]
