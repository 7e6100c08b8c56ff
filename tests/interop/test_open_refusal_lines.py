"""With auth off (the emulator's default) every caller is anyone, so the log lines of
refused calls are written within a budget of each client address, as those of a
public writer key are with auth on: one client's loop of refused WriteUserEvent calls
had every refusal logged, about 40% of the server's CPU. Nothing else is lost: the
console keeps every refusal, and another address's refusal is logged. The official
client over a real socket, and REST from a second loopback address."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2

from .support import RPC_DEADLINE, retail_client, running_server, sqlite_url

PARENT = "projects/shop/locations/global/catalogs/default_catalog"
LINES = 100  # the server's PUBLIC_KEY_LINES: of one address, a window of 10 s


def test_with_auth_off_the_lines_of_refused_calls_are_budgeted_per_address(
        tmp_path: Path) -> None:
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db")) as server:
        client = retail_client(server.address)
        for i in range(3 * LINES):  # (an add-to-cart names the products added)
            with pytest.raises(exceptions.InvalidArgument):
                client.write_user_event(retail_v2.WriteUserEventRequest(
                    parent=PARENT, user_event=retail_v2.UserEvent(
                        event_type="add-to-cart", visitor_id=f"visitor-{i}")))
        # A browser's refused pixels (no visitor id), as many: within the same budget.
        pixels = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                            timeout=RPC_DEADLINE)
        for i in range(3 * LINES):
            event = urllib.parse.quote(json.dumps({"eventType": "home-page-view",
                                                   "sessionId": f"session-{i}"}))
            pixels.request("GET", f"/v2/{PARENT}/userEvents:collect?userEvent={event}")
            answer = pixels.getresponse()
            answer.read()
            assert "visitor_id: is required" in answer.getheader("X-Footfall-Error", "")
        pixels.close()
        # Another address has a budget of its own: its refusal is logged.
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                timeout=RPC_DEADLINE,
                                                source_address=("127.0.0.2", 0))
        connection.request("POST", f"/v2/{PARENT}/userEvents:write", body=json.dumps(
            {"eventType": "search", "visitorId": "from-elsewhere"}),
            headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 400
        connection.close()
        deadline = time.monotonic() + RPC_DEADLINE
        while not any("transport=http" in line and "WriteUserEvent" in line
                      for line in server.log):  # (its line comes after the others')
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        refused = [line for line in server.log if "WriteUserEvent" in line
                   and "transport=grpc" in line and "code=INVALID_ARGUMENT" in line]
        logged = [line for line in server.log if "CollectUserEvent" in line]
        # (the address's budget is shared: the writes took it, the pixels found it spent)
        assert len(refused) + len(logged) <= LINES, \
            f"{len(refused)} + {len(logged)} lines for {6 * LINES} refusals"
        assert refused, server.log_text()
        # Every refusal is kept all the same, for the console and `rejections list`.
        listed = requests.get(f"http://{server.http_address}/console/v1/projects/-/"
                              "rejections", params={"pageSize": 1000},
                              timeout=RPC_DEADLINE).json()["rejections"]
        visitors = {json.loads(r["requestJson"])["userEvent"]["visitorId"] for r in listed
                    if r["method"].endswith("WriteUserEvent")}
        assert {f"visitor-{i}" for i in range(3 * LINES)} | {"from-elsewhere"} <= visitors
