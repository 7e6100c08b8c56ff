"""HEAD of a REST read over a socket: the GET's status and headers, without the
JSON written only to be dropped (so without Content-Length, which a HEAD may
leave out: RFC 9110 section 8.6), and the connection goes on."""

from __future__ import annotations

import dataclasses
import http.client

import pytest

from server.app import Running
from server.config import Settings

from . import http_client

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
LIST = f"/console/v1/{CATALOG}/userEvents?pageSize=50"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, http_port=-1)


@pytest.fixture
def stored(running: Running) -> Running:
    for n in range(20):
        written = http_client.call(running.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                                   {"eventType": "detail-page-view", "visitorId": f"v{n}",
                                    "productDetails": [{"product": {"id": f"p{n}-{k}"}}
                                                       for k in range(50)]})
        assert written.status == 200, written.body
    return running


def test_a_head_of_a_list_is_its_status_and_headers_and_the_connection_goes_on(
        stored: Running) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", stored.http_port,
                                            timeout=http_client.TIMEOUT)
    try:
        connection.request("HEAD", LIST)
        head = connection.getresponse()
        assert head.read() == b""
        assert head.status == 200
        assert head.getheader("Content-Type") == "application/json; charset=utf-8"
        # (the JSON was not written: its length is not known)
        assert head.getheader("Content-Length") is None
        assert head.getheader("Transfer-Encoding") is None
        assert not head.will_close
        connection.request("GET", LIST)  # on the same connection: nothing was left in it
        page = connection.getresponse()
        body = page.read()
        assert page.status == 200 and int(page.getheader("Content-Length")) == len(body)
        assert body.startswith(b"{") and body.count(b'"visitorId"') == 20
    finally:
        connection.close()


@pytest.mark.parametrize("query", ["pageToken=bm90IGEgdG9rZW4", "pageSize=-1",
                                   "filter=colour%3D%22red%22"])
def test_a_head_refused_has_the_gets_status(stored: Running, query: str) -> None:
    path = f"/console/v1/{CATALOG}/userEvents?{query}"
    got = http_client.call(stored.http_port, "GET", path)
    head = http_client.call(stored.http_port, "HEAD", path)
    assert got.status == head.status == 400 and head.body == b""
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
