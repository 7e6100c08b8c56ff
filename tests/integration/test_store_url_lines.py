"""A store URL's password is in nothing a running server says of its store: its start
line, its log, its ready file, /metrics (the password is one PostgreSQL's trust
authentication takes and ignores)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

PASSWORD = "s3cretXYZ"


@pytest.mark.parametrize("with_password", [
    lambda url: url.replace("://postgres@", f"://postgres:{PASSWORD}%2F%40@", 1),
    lambda url: f"{url}?sslmode=disable&password={PASSWORD}"])
def test_a_server_on_postgresql_says_no_password(
        tmp_path: Path, postgres_url: str, with_password: Callable[[str], str]) -> None:
    url = with_password(postgres_url)
    assert PASSWORD in url and url.startswith("postgresql://postgres")
    ready = tmp_path / "ready.json"
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
         "--store", url, "--ready-file", str(ready)],
        cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        written = ready.read_text()
        port = json.loads(written)["httpPort"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            metrics = answer.read().decode()
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=60)
    assert "serving gRPC" in log and "(store postgresql://postgres" in log, log
    for said in (log, written, metrics):
        assert PASSWORD not in said and "%2F%40" not in said, said
