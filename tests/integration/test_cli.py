"""The command line: clear one-line errors and exit codes, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

CATALOG = "projects/p/locations/global/catalogs/default_catalog"


def footfall(*args: str, cwd: Path,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m server ARGS`, with FOOTFALL_* variables from `env` only."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**clean, **(env or {})})


def test_unknown_store_url(tmp_path: Path) -> None:
    out = footfall("serve", "--port", "0", "--http-port", "0", "--store", "bogus://x",
                   cwd=tmp_path)
    assert out.returncode == 1
    assert "cannot start: unknown store URL 'bogus://x'" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = footfall("serve", "--port", str(port), "--http-port", "0", "--store", "memory://",
                       cwd=tmp_path)
    assert out.returncode == 1
    assert f"cannot start: cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr


def test_events_cli_counts_and_refuses_bad_filters(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/events.db"
    ok = footfall("events", "count", "--parent", CATALOG, "--store", store, cwd=tmp_path)
    assert (ok.returncode, ok.stdout.strip()) == (0, "0")
    bad = footfall("events", "list", "--parent", CATALOG, "--store", store, "--filter",
                   'visitorId > "x"', cwd=tmp_path)
    assert bad.returncode == 2
    assert "--filter: at character 11: expected '=' after visitorId" in bad.stderr
    wrong = footfall("events", "count", "--parent", "catalogs/x", "--store", store, cwd=tmp_path)
    assert wrong.returncode == 2 and "--parent: must be of the form" in wrong.stderr


def test_operations_cli_lists_nothing_on_a_fresh_store(tmp_path: Path) -> None:
    out = footfall("operations", "list", "--store", f"sqlite:///{tmp_path}/e.db", cwd=tmp_path)
    assert (out.returncode, out.stdout) == (0, "")


def test_unusable_store_is_one_line(tmp_path: Path) -> None:
    out = footfall("events", "count", "--parent", CATALOG, "--store", "mysql://x", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("footfall: cannot open the store: unknown store URL")
    assert "Traceback" not in out.stderr


def test_a_bad_variable_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    out = footfall("serve", "--store", "memory://", cwd=tmp_path, env={"FOOTFALL_PORT": "abc"})
    assert (out.returncode, out.stderr) == (2, "footfall: FOOTFALL_PORT: not an integer: 'abc'\n")
    # only `serve` reads it: the other commands still work
    ok = footfall("events", "count", "--parent", CATALOG, "--store",
                  f"sqlite:///{tmp_path}/events.db", cwd=tmp_path, env={"FOOTFALL_PORT": "abc"})
    assert (ok.returncode, ok.stdout.strip()) == (0, "0")
