"""A writer key is public (a shop's pages carry it; a visitor's browser POSTs an event
of more than 16 KiB, and one sent as the page is left, with it): the request bodies it
holds at once are bounded for each of its client addresses too, a quarter of the key's
quarter of the room of all bodies (server.http.budget). Bounded by key alone, one
client of the key keeping bodies unfinished held the key's quarter, and every visitor's
POST was refused 429 meanwhile. Real sockets, a real server."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

from .support import RPC_DEADLINE, running_server, sqlite_url
from .trust import write_keys

WRITER_KEY = "writer-key-bodies-0123456789abcdef"
PATH = "/v2/projects/shop/locations/global/catalogs/default_catalog/userEvents:write"
MOST = 65536  # --max-request-bytes: the room of all bodies 1 MiB, a key's 256 KiB
SENT = 60000  # of each body held unfinished


def held_body(port: int) -> tuple[socket.socket, bool]:
    """A write with the key from 127.0.0.1 whose body comes SENT bytes short of its end
    (its connection, left open), and whether it was refused 429 at once."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=RPC_DEADLINE)
    sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Content-Type: application/json\r\nx-goog-api-key: {WRITER_KEY}\r\n"
                 f"Content-Length: {MOST}\r\n\r\n".encode() + b" " * SENT)
    sock.settimeout(0.5)
    try:
        answer = sock.recv(65536)
    except TimeoutError:
        return sock, False
    finally:
        sock.settimeout(RPC_DEADLINE)
    return sock, answer.startswith(b"HTTP/1.1 429")


def test_one_client_of_a_writer_key_holds_a_part_of_its_bodies_room(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", {WRITER_KEY: ("writer", ["shop"])})
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"), "--auth-file", str(keys),
                        "--max-request-bytes", str(MOST)) as server:
        held: list[socket.socket] = []
        try:
            # One client keeps bodies unfinished until one is refused.
            refused = False
            while not refused and len(held) < 16:
                sock, refused = held_body(server.http_port)
                held.append(sock)
            assert refused, "no body refused"
            # Another visitor's event, of 30 KB (a page's large event): written.
            connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                                    timeout=RPC_DEADLINE,
                                                    source_address=("127.0.0.2", 0))
            event = json.dumps({"eventType": "home-page-view", "visitorId": "v2"})
            began = time.monotonic()
            connection.request("POST", PATH, body=event + " " * 30000, headers={
                "Content-Type": "application/json", "x-goog-api-key": WRITER_KEY})
            answer = connection.getresponse()
            said = answer.read()
            assert answer.status == 200, (answer.status, said[:300], len(held))
            assert time.monotonic() - began < RPC_DEADLINE
            connection.close()
        finally:
            for sock in held:
                sock.close()
