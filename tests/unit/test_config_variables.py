"""FOOTFALL_* variables: read as their flag's type; a bad one is reported by
settings_from_args (so only `serve` stops on it), naming the variable."""

from __future__ import annotations

import argparse

import pytest

from server.config import Settings, add_serve_arguments, settings_from_args


def parse(args: list[str], env: dict[str, str]) -> Settings:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, env)
    return settings_from_args(parser.parse_args(args))


def test_variables_are_read_as_their_flags_type() -> None:
    settings = parse([], {"FOOTFALL_PORT": "6000", "FOOTFALL_GRACE_SECONDS": "2.5",
                          "FOOTFALL_STRICT_EVENT_TYPES": "yes", "FOOTFALL_HOST": "::1",
                          "FOOTFALL_TRUST_FORWARDED_FOR": "0"})
    assert (settings.port, settings.grace_seconds, settings.strict_event_types,
            settings.host, settings.trust_forwarded_for) == (6000, 2.5, True, "::1", False)
    assert parse(["--port", "7000"], {"FOOTFALL_PORT": "6000"}).port == 7000


@pytest.mark.parametrize(("env", "said"), [
    ({"FOOTFALL_PORT": "abc"}, "FOOTFALL_PORT='abc': must be a whole number"),
    ({"FOOTFALL_WORKERS": "1.5"}, "FOOTFALL_WORKERS='1.5': must be a whole number"),
    ({"FOOTFALL_LEASE_SECONDS": "long"}, "FOOTFALL_LEASE_SECONDS='long': must be a number"),
    ({"FOOTFALL_ALLOW_FAULT_INJECTION": "sure"},
     "FOOTFALL_ALLOW_FAULT_INJECTION='sure': must be true or false"),
])
def test_a_bad_variable_is_named_when_settings_are_made(env: dict[str, str], said: str) -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, env)  # building the parser never fails on a variable
    args = parser.parse_args([])
    with pytest.raises(SystemExit, match=said):
        settings_from_args(args)


def test_every_bad_variable_is_named_at_once() -> None:
    with pytest.raises(SystemExit) as raised:
        parse([], {"FOOTFALL_PORT": "abc", "FOOTFALL_HTTP_PORT": "x"})
    assert str(raised.value.code) == ("FOOTFALL_PORT='abc': must be a whole number; "
                                      "FOOTFALL_HTTP_PORT='x': must be a whole number")
