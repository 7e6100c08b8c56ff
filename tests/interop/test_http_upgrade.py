"""A request asking to switch protocols (`Connection: Upgrade`, as curl --http2 sends
`Upgrade: h2c` to an http:// URL) is answered as any, and closes its connection: the
server switches to nothing. aiohttp's parser drops the bytes that came behind such a
request in the same read, unless it names websocket: a request pipelined behind it
was never run nor answered, and the answer to the next one sent on the connection
came in its place, so that a client (or a proxy pipelining to the server) took a
later call's answer for the dropped one's."""

from __future__ import annotations

import json
import socket
import time

import pytest

from .support import ServerProcess, list_events

CATALOG = "projects/upgrade/locations/global/catalogs/default_catalog"
WRITE = f"/v2/{CATALOG}/userEvents:write"
WAIT = 2.0  # seconds an answer may take to come


def write_request(visitor: str, *more_headers: str) -> bytes:
    body = json.dumps({"eventType": "home-page-view", "visitorId": visitor}).encode()
    head = [f"POST {WRITE} HTTP/1.1", "Host: localhost", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *more_headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


def answers(connection: socket.socket, until: float) -> tuple[list[tuple[str, str]], bool]:
    """The (visitorId, Connection header) of each write answer read by `until`, and
    whether the server closed the connection."""
    data, closed = b"", False
    connection.settimeout(0.1)
    while time.monotonic() < until:
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            closed = True
            break
        data += chunk
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        size = int(headers["content-length"])
        body, data = rest[:size], rest[size:]
        found.append((json.loads(body).get("visitorId", lines[0]),
                      headers.get("connection", "")))
    return found, closed


@pytest.mark.parametrize("upgrade", ["h2c", "foo", "websocket"])
def test_a_request_asking_to_upgrade_is_answered_and_closes_its_connection(
        server: ServerProcess, upgrade: str) -> None:
    asking = f"upgraded-{upgrade}"
    sent = [asking, f"pipelined-{upgrade}"]
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=WAIT) as connection:
        connection.sendall(write_request(asking, "Connection: Upgrade, HTTP2-Settings",
                                         f"Upgrade: {upgrade}", "HTTP2-Settings: AAMAAABkAAQ")
                           + write_request(sent[1]))
        found, closed = answers(connection, time.monotonic() + WAIT)
        if not closed:  # a request sent later on the same connection
            sent.append(f"later-{upgrade}")
            connection.sendall(write_request(sent[-1]))
            more, closed = answers(connection, time.monotonic() + WAIT)
            found += more
    # Each answer is its own request's, in order; the connection closes after the
    # first (Connection: close), the requests behind it unread, as HTTP lets a
    # server do: a client sends them again on a new connection.
    assert [visitor for visitor, _ in found] == sent[:len(found)], found
    assert found[0] == (asking, "close") and len(found) == 1 and closed, found
    stored = {e["visitorId"] for e in list_events(server.store, CATALOG, server.workdir)}
    assert asking in stored and not stored & set(sent[1:]), stored
