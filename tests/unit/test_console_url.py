"""The console's URL on the ready line: one a person can open as it is."""

from __future__ import annotations

import dataclasses
from urllib.parse import unquote, urlsplit

import pytest

from server.app import console_url
from server.config import Settings


@pytest.mark.parametrize(("host", "tls", "url"), [
    ("127.0.0.1", False, "http://127.0.0.1:8080/console/"),
    ("0.0.0.0", False, "http://localhost:8080/console/"),
    ("", False, "http://localhost:8080/console/"),
    ("::", True, "https://localhost:8080/console/"),
    ("::1", False, "http://[::1]:8080/console/"),
    # (a link-local address's zone, its % escaped as a URL's: RFC 6874)
    ("fe80::1%eth0", False, "http://[fe80::1%25eth0]:8080/console/"),
    ("shop.internal", True, "https://shop.internal:8080/console/"),
])
def test_the_console_url_names_a_host_to_open(host: str, tls: bool, url: str) -> None:
    settings = dataclasses.replace(Settings(), host=host,
                                   tls_cert="cert.pem" if tls else "")
    assert console_url(settings, 8080) == url
    parsed = urlsplit(url)  # (what a client reads of it: the host, and the port)
    assert (parsed.port, unquote(parsed.hostname or "")) == (
        8080, "localhost" if host in ("", "0.0.0.0", "::") else host)
