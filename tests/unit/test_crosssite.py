"""Which Host names a loopback listener answers, and the flag that adds some."""

from __future__ import annotations

import argparse

import pytest

from server.config import add_serve_arguments, settings_from_args
from server.http.crosssite import HostCheck, host_check, is_loopback_listener, split_host


@pytest.mark.parametrize(("host", "name"), [
    ("localhost", "localhost"), ("LocalHost:8080", "localhost"), ("[::1]", "::1"),
    ("[::1]:80", "::1"), ("127.0.0.1:1", "127.0.0.1"),
    ("::1", None), ("[::1", None), ("host:", None), ("host:x", None), (":80", None),
    ("", None), ("[::1]x", None),
])
def test_split_host(host: str, name: str | None) -> None:
    assert split_host(host) == name


@pytest.mark.parametrize(("host", "allowed"), [
    ("localhost", True), ("localhost.", True), ("a.b.localhost:9", True),
    ("127.0.0.1", True), ("127.255.0.9:80", True), ("[::1]:8080", True),
    ("[::ffff:127.0.0.1]", True), (None, True),
    ("evil.example", False), ("localhost.evil.example", False), ("127.0.0.1.nip.io", False),
    ("0.0.0.0", False), ("10.0.0.1", False), ("[::2]", False), ("", False),
    ("events.shop.example:443", True), ("EVENTS.SHOP.EXAMPLE.", True),
    ("shop.example", False),
])
def test_host_check(host: str | None, allowed: bool) -> None:
    check = HostCheck(["events.shop.example"])
    assert check.allows(host) is allowed
    assert check.allows(host) is allowed  # the remembered verdict


def test_the_remembered_verdicts_are_bounded() -> None:
    check = HostCheck()
    for i in range(5000):
        assert not check.allows(f"evil-{i}.example")
    assert len(check._known) <= 1024


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.0.2.1", False),
])
def test_only_loopback_listeners_check_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_listener(host) is loopback


def test_the_allowed_hosts_flag() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, {"FOOTFALL_HTTP_ALLOWED_HOSTS": "a.example, b.example"})
    assert settings_from_args(parser.parse_args([])).http_allowed_hosts == \
        ("a.example", "b.example")
    assert settings_from_args(parser.parse_args(["--http-allowed-hosts", ""])) \
        .http_allowed_hosts == ()


def test_beyond_loopback_listed_hosts_pin_the_names_answered() -> None:
    assert host_check("0.0.0.0", ()) is None  # answers any Host, as before
    pinned = host_check("0.0.0.0", ["events.shop.example"])
    assert pinned is not None
    assert pinned.allows("events.shop.example:8080") and pinned.allows("localhost:8080")
    assert not pinned.allows("attacker.example:8080")  # a renamed address: DNS rebinding
    on_loopback = host_check("127.0.0.1", ())
    assert on_loopback is not None and not on_loopback.allows("attacker.example")
