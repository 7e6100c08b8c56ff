"""What a `footfall serve` start leaves for later: work its first calls do not need.

Each check runs in a fresh interpreter (a subprocess) that imports what `serve`
imports, as `python -m server serve` does, and reads its `sys.modules`: a module
this process had imported already would prove nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# What `footfall serve` imports before it serves: the command line, then the
# supervisor's module and the server's (server.processes.run_one imports server.app).
SERVE_IMPORTS = """
import json, sys
import server.__main__ as main
main._parser({}).parse_args(["serve"])
import server.processes, server.app
"""


def _run(code: str, cwd: Path) -> dict[str, object]:
    """What `code`, run after SERVE_IMPORTS in a new interpreter, printed as JSON."""
    done = subprocess.run([sys.executable, "-c", SERVE_IMPORTS + code], cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_a_start_imports_neither_package_metadata_nor_the_currency_table(
        tmp_path: Path) -> None:
    # importlib.metadata (read for --version alone) and pycountry (for the first
    # price's currency code) took some 45 ms of CPU of each start.
    found = _run("print(json.dumps(sorted({'importlib.metadata', 'pycountry'} "
                 "& set(sys.modules))))", tmp_path)
    assert found == []


def test_aiohttp_reads_the_ca_certificates_when_its_client_first_connects_not_at_start(
        tmp_path: Path) -> None:
    # aiohttp's client made two SSL contexts at import, each reading the system's
    # CA bundle: some 70 ms of each start, for a client the server never uses. A
    # client in the process still gets them, when it first wraps a connection.
    found = _run("""
import ssl
from server.http import HttpGateway  # (as a serve with HTTP on imports it)
from aiohttp import connector
contexts = (connector._SSL_CONTEXT_VERIFIED, connector._SSL_CONTEXT_UNVERIFIED)
at_start = [c.cert_store_stats()["x509_ca"] for c in contexts]
for context in contexts:
    context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
wrapped = [c.cert_store_stats()["x509_ca"] for c in contexts]
system = ssl.create_default_context().cert_store_stats()["x509_ca"]
print(json.dumps({"at_start": at_start, "wrapped": wrapped, "system": system,
                  "unpatched": "set_default_verify_paths" in vars(ssl.SSLContext)}))
""", tmp_path)
    assert found["system"], "this machine has no CA certificates to read"
    assert found["at_start"] == [0, 0]
    assert found["wrapped"] == [found["system"]] * 2
    assert found["unpatched"] is False


def _maps_of_a_serving_server(tmp_path: Path, http_port: str) -> str:
    """/proc/PID/maps of `footfall serve --http-port HTTP_PORT` once it serves."""
    ready = tmp_path / "ready.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--store", "memory://", "--port", "0",
         "--http-port", http_port, "--ready-file", str(ready)], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        return Path(f"/proc/{server.pid}/maps").read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0


@pytest.mark.parametrize(("http_port", "loaded"), [("0", False), ("-1", True)])
def test_a_serve_with_http_off_never_loads_aiohttp(http_port: str, loaded: bool,
                                                   tmp_path: Path) -> None:
    # The console service imported server.http.transcode, whose package imported the
    # gateway and so aiohttp (some 140 ms of CPU) whether HTTP was served or not.
    maps = _maps_of_a_serving_server(tmp_path, http_port)
    assert ("aiohttp/_http_parser" in maps) is loaded
