"""With auth on, a writer key is public (a shop's pages carry it), so the log lines
of the calls refused with one are written within a budget of each client address:
one client with it, sending pixels whose events were refused, had 2,250 refusals a
second logged, two lines each (850 KB of log a second). Real clients over real
sockets."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from pathlib import Path

from .support import RPC_DEADLINE, ServerProcess, running_server, sqlite_url
from .trust import write_keys

WRITER_KEY = "writer-key-3e5a7c9b1d2f4680"
PARENT = "projects/shop/locations/global/catalogs/default_catalog"
LINES = 100  # the server's PUBLIC_KEY_LINES: of one address, a window of 10 s


def refused_pixel(connection: http.client.HTTPConnection, visitor: str) -> None:
    """A pixel of an event the server refuses (no visitor id), with the writer key."""
    event = urllib.parse.quote(json.dumps({"eventType": "home-page-view",
                                           "userInfo": {"userId": visitor}}))
    connection.request("GET", f"/v2/{PARENT}/userEvents:collect?userEvent={event}"
                              f"&key={WRITER_KEY}")
    answer = connection.getresponse()
    answer.read()
    assert "visitor_id: is required" in answer.getheader("X-Footfall-Error", "")


def refused_write(server: ServerProcess, source: str) -> None:
    """A REST write the server refuses, with the writer key, from `source`."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                            timeout=RPC_DEADLINE, source_address=(source, 0))
    connection.request("POST", f"/v2/{PARENT}/userEvents:write", body=json.dumps(
        {"eventType": "add-to-cart", "visitorId": "from-" + source}),
        headers={"Content-Type": "application/json", "x-goog-api-key": WRITER_KEY})
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 400
    connection.close()


def test_the_lines_of_calls_refused_with_a_writer_key_are_budgeted_per_address(
        tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", {WRITER_KEY: ("writer", ["shop"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE)
        for i in range(3 * LINES):
            refused_pixel(connection, f"user-{i}")
        connection.close()
        refused_write(server, "127.0.0.1")
        # Another address: its own budget, so its refusal is logged.
        refused_write(server, "127.0.0.2")
        deadline = time.monotonic() + RPC_DEADLINE
        while not any("add-to-cart events" in line for line in server.log):  # (in order)
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        pixels = [line for line in server.log if "CollectUserEvent" in line
                  or "pixel from" in line]
        assert len(pixels) <= LINES, f"{len(pixels)} lines for {3 * LINES} refused pixels"
        # The address's write is past its budget; the other address's is logged.
        writes = [line for line in server.log if "add-to-cart events" in line]
        assert len(writes) == 1, writes
