"""Requests refused while the store cannot be written (SQLite locked by another
connection past its busy timeout): each is still answered at once, and those kept
wait for the store, then are written once it is free again, the latest
--rejections-keep of them (see console/rejections.py: at most 10,000 wait, however
many are kept). Imports nothing of ours."""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import requests

from .support import RPC_DEADLINE, ServerProcess, wait_until

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
KEEP = 20
REFUSED = 60
LOCKED_FOR = 30.0  # seconds: the refusals' job waits the busy timeout (10 s), then fails


def refused_pixel(session: requests.Session, server: ServerProcess, n: int) -> None:
    """A pixel without a visitor: refused (a browser still gets its GIF), and kept."""
    event = urllib.parse.quote(json.dumps({"eventType": "home-page-view", "sessionId": f"s{n}"}))
    answer = session.get(f"http://{server.http_address}/v2/{CATALOG}/userEvents:collect"
                         f"?userEvent={event}", timeout=RPC_DEADLINE)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/gif"


def kept_sessions(server: ServerProcess) -> list[str]:
    listed = requests.get(f"http://{server.http_address}/console/v1/projects/-/rejections",
                          params={"pageSize": 1000}, timeout=RPC_DEADLINE)
    assert listed.status_code == 200, listed.text
    return [json.loads(json.loads(r["requestJson"])["userEvent"])["sessionId"]
            for r in listed.json().get("rejections", [])]


def test_refusals_made_while_the_store_is_locked_are_kept_once_it_is_free(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_factory("--rejections-keep", str(KEEP))
    lock = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        with requests.Session() as session:
            for n in range(REFUSED):  # each answered while the store is locked
                refused_pixel(session, server, n)
        wait_until(lambda: "could not keep refusals" in server.log_text(),
                   "the refusals' job to fail on the lock", deadline=LOCKED_FOR)
    finally:
        lock.close()
    # A reader asks for what waits to be written (the failed job left it).
    expected = [f"s{n}" for n in reversed(range(REFUSED - KEEP, REFUSED))]
    wait_until(lambda: kept_sessions(server) == expected, "the latest refusals kept",
               deadline=RPC_DEADLINE)
