"""What a `footfall serve` start leaves for later: work its first calls do not need.

Each check runs in a fresh interpreter (a subprocess) that imports what `serve`
imports, as `python -m server serve` does, and reads its `sys.modules`: a module
this process had imported already would prove nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
from aiohttp import connector
import server.http
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
