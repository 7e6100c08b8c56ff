"""A browser's pixel sent over HTTP, for the tests of what becomes of one that comes
while the store cannot commit (tests/integration/test_disk_full.py, PostgreSQL away
in tests/unit/test_store_postgres.py). Stdlib only."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any


def pixel_refusal(http_port: int, parent: str, event: dict[str, Any],
                  timeout: float) -> str | None:
    """Send `event` as a browser's pixel (GET `parent`/userEvents:collect) to the
    server on 127.0.0.1:`http_port`: its X-Footfall-Error, None when it was queued
    (the GIF is answered 200 either way, which this asserts)."""
    query = urllib.parse.quote(json.dumps(event), safe="")
    connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=timeout)
    try:
        connection.request("GET", f"/v2/{parent}/userEvents:collect?userEvent={query}")
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200
        return answer.getheader("X-Footfall-Error")
    finally:
        connection.close()
