"""What earlier reviews found at the HTTP port and left: each over a real socket, each
refusal naming what it refuses."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import http.client
import json
import re
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.store import EventQuery

BOUND = 10.0  # seconds a call may take
WRITE = "/v2/projects/p/locations/global/catalogs/default_catalog/userEvents:write"
CATALOG = "projects/p/locations/global/catalogs/default_catalog"
EVENT = b'{"eventType": "home-page-view", "visitorId": "v"}'


def call(running: Running, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request over a connection of its own."""
    connection = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=BOUND)
    try:
        connection.request(method, path, body, headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def refusal(running: Running, body: bytes, headers: dict[str, str], http_status: int = 400
            ) -> dict[str, Any]:
    """The JSON error of a write of `body`, which must be `http_status` and
    INVALID_ARGUMENT; nothing is stored."""
    status, _, answer = call(running, "POST", WRITE, body, headers)
    error: dict[str, Any] = json.loads(answer)["error"]
    assert (status, error["status"]) == (http_status, "INVALID_ARGUMENT"), error
    running.store.flush()
    assert running.store.count_user_events(EventQuery(CATALOG)) == 0
    return error


def _cut(packed: bytes, by: int) -> bytes:
    return packed[:-by]


def _deflate_without_end() -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(EVENT) + packer.flush(zlib.Z_SYNC_FLUSH)


def _raw_deflate() -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(EVENT) + packer.flush()


CUT_SHORT = ("the request body is not valid {} (its Content-Encoding header): it ends "
             "before its packed data does")


# A gzip member without its trailer (CRC-32 and length) unpacks to all of EVENT: it
# was read as whole, and stored.
@pytest.mark.parametrize(("coding", "body"), [
    ("gzip", _cut(gzip.compress(EVENT, mtime=0), 8)),  # no trailer at all
    ("gzip", _cut(gzip.compress(EVENT, mtime=0), 1)),  # the length's last byte
    ("gzip", gzip.compress(EVENT, mtime=0) + _cut(gzip.compress(b" ", mtime=0), 3)),
    ("deflate", _deflate_without_end()),  # raw deflate, its final block never sent
    ("deflate", _cut(zlib.compress(EVENT), 2)),  # zlib's, its Adler-32 cut
], ids=["no-trailer", "length-cut", "second-member-cut", "raw-deflate-unended",
        "adler-cut"])
def test_a_packed_body_cut_short_is_refused_and_nothing_stored(
        served: Running, coding: str, body: bytes) -> None:
    error = refusal(served, body, {"Content-Type": "application/json",
                                   "Content-Encoding": coding})
    assert error["message"] == CUT_SHORT.format(coding)


@pytest.mark.parametrize(("coding", "body"), [
    ("gzip", gzip.compress(EVENT, mtime=0)),
    ("gzip", gzip.compress(EVENT[:20], mtime=0) + gzip.compress(EVENT[20:], mtime=0)),
    ("deflate", zlib.compress(EVENT)),
    ("deflate", _raw_deflate()),
], ids=["gzip", "two-members", "zlib", "raw-deflate"])
def test_a_whole_packed_body_is_read(served: Running, coding: str, body: bytes) -> None:
    status, _, answer = call(served, "POST", WRITE, body,
                             {"Content-Type": "application/json", "Content-Encoding": coding})
    assert status == 200, answer
    assert json.loads(answer)["visitorId"] == "v"


@pytest.mark.parametrize("path", ["/console/", "/console/app.js", "/footfall.js"])
def test_if_none_match_star_or_a_weak_tag_is_304_for_a_file_that_exists(
        served: Running, path: str) -> None:
    # RFC 9110 §13.1.2: "*" matches any current representation, and If-None-Match
    # compares weakly. Both were answered 200 and the whole file.
    status, headers, _ = call(served, "GET", path)
    assert status == 200
    etag = headers["ETag"]
    for given in ("*", f"W/{etag}", f'"other", W/{etag}'):
        status, _, body = call(served, "GET", path, headers={"If-None-Match": given})
        assert (status, body) == (304, b""), given
    status, _, body = call(served, "GET", path, headers={"If-None-Match": '"other"'})
    assert status == 200 and body


def test_if_none_match_star_does_not_make_a_missing_file_304(served: Running) -> None:
    status, _, _ = call(served, "GET", "/console/missing.js", headers={"If-None-Match": "*"})
    assert status == 404


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8; charset=latin-1",  # (read as UTF-8: the first)
    "application/json; charset=latin-1; charset=utf-8",  # (refused for latin-1)
    "application/json;charset=utf-8;CHARSET=\"utf-8\"",
])
def test_a_content_type_giving_charset_twice_is_refused_naming_it(
        served: Running, content_type: str) -> None:
    error = refusal(served, EVENT, {"Content-Type": content_type}, 415)
    assert error["message"].startswith("Content-Type: gives charset 2 times ("), error
    assert error["details"][0]["fieldViolations"][0]["field"] == "Content-Type"


def test_a_quoted_charset_of_another_parameter_is_its_text(served: Running) -> None:
    status, _, answer = call(served, "POST", WRITE, EVENT, {
        "Content-Type": 'application/json; note="a; charset=latin-1"; charset=utf-8'})
    assert status == 200, answer


@pytest.mark.parametrize(("attributes", "got"), [
    ([{"key": None, "value": {"text": ["a"]}}], '[{"key": null, "value": {"text": ["a"]}}]'),
    ([True, "it's"], '[true, "it\'s"]'),
])
def test_a_map_given_as_a_list_is_quoted_as_json_in_its_refusal(
        served: Running, attributes: Any, got: str) -> None:
    # It was quoted as Python writes it: [{'key': None, ...}], [True, "it's"].
    body = json.dumps({"eventType": "home-page-view", "visitorId": "v",
                       "attributes": attributes}).encode()
    error = refusal(served, body, {"Content-Type": "application/json"})
    assert error["message"] == ("user_event.attributes: Invalid JSON payload received: "
                                f"must be a JSON object, got {got}")


def _quantity(value: str) -> bytes:
    return (b'{"eventType": "add-to-cart", "visitorId": "v", "productDetails": '
            b'[{"product": {"id": "p"}, "quantity": ' + value.encode() + b"}]}")


@pytest.mark.parametrize("value", ["1e-400", '"1e-400"', "-1E-400", "1.0000000000000000001",
                                   '"1.0000000000000000001"'])
def test_an_integer_field_refuses_a_number_whose_double_only_is_whole(
        served: Running, value: str) -> None:
    # json_format reads the double (0.0, 1.0) and takes it: 1e-400 was stored as 0.
    # Google's Java parser reads the digits exactly and refuses them.
    error = refusal(served, _quantity(value), {"Content-Type": "application/json"})
    shown = repr(json.loads(value)) if value.startswith('"') else value
    assert error["message"] == (f"user_event.product_details[0].quantity: Invalid JSON "
                                f"payload received: must be a whole number, got {shown}")


@pytest.mark.parametrize(("value", "read"), [("1e2", 100), ('"1e2"', 100), ("2.0", 2),
                                             ("0.1e1", 1), ("-0.0", 0)])
def test_an_integer_field_takes_a_whole_number_written_with_a_point_or_exponent(
        served: Running, value: str, read: int) -> None:
    status, _, answer = call(served, "POST", WRITE, _quantity(value),
                             {"Content-Type": "application/json"})
    assert status == 200, answer
    assert json.loads(answer)["productDetails"][0].get("quantity", 0) == read


PACED = "h3-review-paced-key-0123456789ab"


@pytest.fixture
def quarter_binds(settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Running]:
    """A server of 8 connections (a key's requests wait on 2 at most) and a key paced at
    2 a second (its pace would let 2 * 2 + 1 + 16 wait)."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {PACED: {"projects": ["p"], "role": "writer",
                                                 "calls_per_second": 2, "name": "paced"}}}))
    running = start(dataclasses.replace(settings, http_port=-1, auth_file=str(keys),
                                        http_max_connections=8,
                                        http_max_connections_per_address=0), clock)
    try:
        yield running
    finally:
        running.stop()


def _counted(running: Running, name: str) -> float:
    _, _, page = call(running, "GET", "/metrics")
    found = re.search(rf"^{name} (\S+)$", page.decode(), re.MULTILINE)
    assert found is not None, name
    return float(found[1])


def _refused_past_the_quarter(running: Running) -> dict[str, Any]:
    """The error of a request of the paced key refused at once (TooManyWaiting, 429):
    two on time, two waiting for their time, then it."""
    headers = {"Content-Type": "application/json", "X-Goog-Api-Key": PACED}
    for _ in range(2):  # (on time: its burst)
        assert call(running, "POST", WRITE, EVENT, headers)[0] == 200
    request = (f"POST {WRITE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
               f"application/json\r\nX-Goog-Api-Key: {PACED}\r\nContent-Length: "
               f"{len(EVENT)}\r\n\r\n").encode() + EVENT
    with contextlib.ExitStack() as stack:
        waiting = []
        for _ in range(2):  # (they wait 0.5 and 1 s for their time)
            sock = stack.enter_context(socket.create_connection(
                ("127.0.0.1", running.http_port), timeout=BOUND))
            sock.sendall(request)
            waiting.append(sock)
        deadline = time.monotonic() + BOUND
        while _counted(running, "footfall_calls_paced_total") < 2:  # (both are in, waiting)
            assert time.monotonic() < deadline, "the two requests were not paced"
        status, _, answer = call(running, "POST", WRITE, EVENT, headers)
        for sock in waiting:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    error: dict[str, Any] = json.loads(answer)["error"]
    assert (status, error["status"]) == (429, "RESOURCE_EXHAUSTED"), error
    return error


def test_a_request_refused_for_a_quarter_of_the_connections_names_the_flag(
        quarter_binds: Running) -> None:
    # It said "the most one key's may" with no word of --http-max-connections.
    assert _refused_past_the_quarter(quarter_binds)["message"] == (
        "this key is paced at 2 a second (calls_per_second in the keys file), and 2 of its "
        "requests over HTTP wait already for their time, the most one key's may: 2, a "
        "quarter of the connections the server takes (--http-max-connections): make fewer "
        "calls at once, or retry later")


def test_a_request_refused_at_once_is_counted_refused_not_paced(
        quarter_binds: Running) -> None:
    # It was counted in footfall_calls_paced_total though it never waited.
    _refused_past_the_quarter(quarter_binds)
    assert _counted(quarter_binds, "footfall_calls_paced_total") == 2
    assert _counted(quarter_binds, "footfall_calls_refused_over_pace_total") == 1


def _commented(comment_bytes: int) -> bytes:
    """EVENT gzipped, its header holding a comment (FCOMMENT) of `comment_bytes`,
    which unpacks to nothing."""
    packed = gzip.compress(EVENT, mtime=0)
    header = packed[:10]
    return (header[:3] + bytes([header[3] | 0x10]) + header[4:] + b"c" * comment_bytes
            + b"\0" + packed[10:])


@pytest.fixture
def small_bodies(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1,
                                        max_request_bytes=64 * 1024), clock)
    try:
        yield running
    finally:
        running.stop()


def test_a_packed_body_far_larger_than_the_limit_is_refused_as_it_comes(
        small_bodies: Running) -> None:
    # A gzip header's comment unpacks to nothing, and so counted in no limit: a body of
    # one endless comment was read for as long as its client sent it.
    assert call(small_bodies, "POST", WRITE, _commented(10), {
        "Content-Type": "application/json", "Content-Encoding": "gzip"})[0] == 200
    status, _, answer = call(small_bodies, "POST", WRITE, _commented(4 * 64 * 1024), {
        "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 413, answer
    assert json.loads(answer)["error"]["message"] == (
        "the request body came packed in more than 131727 bytes, more than any body of the "
        "65536 bytes this server accepts (its --max-request-bytes) packs into")


@pytest.mark.parametrize(("coding", "body", "why"), [
    ("deflate", zlib.compress(EVENT) + b"  ", "it goes on after its packed data ends"),
    ("gzip", gzip.compress(b"", mtime=0) * 1024 + gzip.compress(EVENT, mtime=0),
     "it holds more than 1024 gzip members"),
], ids=["deflate-then-more", "gzip-members"])
def test_a_packed_body_past_its_end_or_of_too_many_members_is_refused_saying_so(
        served: Running, coding: str, body: bytes, why: str) -> None:
    error = refusal(served, body, {"Content-Type": "application/json",
                                   "Content-Encoding": coding})
    assert error["message"] == (f"the request body is not valid {coding} (its "
                                f"Content-Encoding header): {why}")
