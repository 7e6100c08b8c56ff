"""The web console's files as the HTTP port serves them: types, a strict CSP,
revalidation by ETag, `/` leading to `/console/`, and the REST routes under
/console/v1/ still answered by the gateway."""

from __future__ import annotations

import dataclasses
import re

import pytest

from server.app import Running
from server.config import Settings
from server.http import console_pages
from server.retail import validation

from . import http_client

FILES = {"": "text/html", "index.html": "text/html", "app.js": "text/javascript",
         "console.css": "text/css", "icon.svg": "image/svg+xml"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, http_port=-1)


@pytest.mark.parametrize(("name", "content_type"), FILES.items())
def test_each_file_has_its_type_a_strict_csp_and_an_etag(running: Running, name: str,
                                                          content_type: str) -> None:
    reply = http_client.call(running.http_port, "GET", f"/console/{name}")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith(content_type)
    csp = reply.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Cache-Control"] == "no-cache"
    again = http_client.call(running.http_port, "GET", f"/console/{name}",
                             headers={"If-None-Match": reply.headers["ETag"]})
    assert again.status == 304 and again.body == b""
    head = http_client.call(running.http_port, "HEAD", f"/console/{name}")
    assert head.status == 200 and head.body == b""


def test_the_root_leads_to_the_console_whose_rest_routes_stay_the_gateways(
        running: Running) -> None:
    for path in ("/", "/console"):
        reply = http_client.call(running.http_port, "GET", path)
        assert reply.status == 302 and reply.headers["Location"] == "/console/"
    assert http_client.call(running.http_port, "GET", "/console/missing.js").status == 404
    assert http_client.call(running.http_port, "GET", "/console/../README.md").status == 404
    posted = http_client.call(running.http_port, "POST", "/console/app.js", body={})
    assert posted.status == 404
    reply = http_client.call(running.http_port, "GET", "/console/v1/projects/-/catalogs")
    assert reply.status == 200 and reply.json() == {}
    assert "Content-Security-Policy" not in reply.headers


def test_the_pages_have_no_inline_script_nor_style() -> None:
    """What the CSP would refuse to run: a <script> with a body, on* attributes,
    style attributes or elements."""
    for name, page in console_pages.PAGES.items():
        if not name.endswith(".html"):
            continue
        text = page.body.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), name
        assert not re.search(r"\son\w+=|\sstyle=|<style", text), name


def test_the_console_knows_googles_event_types_as_the_server_does() -> None:
    """The console tags the event types that are none of Google's, from a list of
    its own (the funnel form offers the same): it must be the server's."""
    text = console_pages.PAGES["funnel-form.js"].body.decode()
    listed = re.search(r"export const RETAIL_TYPES = \[(.*?)\];", text, re.S)
    assert listed is not None
    assert tuple(re.findall(r'"([^"]+)"', listed.group(1))) == validation.EVENT_TYPES
