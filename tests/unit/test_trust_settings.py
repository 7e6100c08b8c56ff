"""The trust flags of `footfall serve` and their FOOTFALL_* variables."""

from __future__ import annotations

import argparse

import pytest

from server.config import Settings, add_serve_arguments, settings_from_args


def parse(args: list[str], env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, env or {})
    return settings_from_args(parser.parse_args(args))


def test_everything_is_off_by_default() -> None:
    settings = parse([])
    assert (settings.auth_file, settings.tls_cert, settings.tls_key) == ("", "", "")
    assert settings.quota_writes_per_minute == 0 and not settings.allow_fault_injection
    assert settings.max_request_bytes == 10 * 1024 * 1024
    assert (settings.max_event_bytes, settings.quota_bytes_per_minute) == (2 * 1024 * 1024, 0)


def test_flags_and_variables() -> None:
    settings = parse(["--auth-file", "k.json", "--tls-cert", "c.pem", "--tls-key", "k.pem",
                      "--quota-writes-per-minute", "600", "--max-request-bytes", "2048",
                      "--allow-fault-injection"])
    assert (settings.auth_file, settings.tls_cert, settings.tls_key) == \
        ("k.json", "c.pem", "k.pem")
    assert (settings.quota_writes_per_minute, settings.max_request_bytes) == (600, 2048)
    assert settings.allow_fault_injection
    from_env = parse([], {"FOOTFALL_AUTH_FILE": "e.json", "FOOTFALL_QUOTA_WRITES_PER_MINUTE": "5",
                          "FOOTFALL_ALLOW_FAULT_INJECTION": "true",
                          "FOOTFALL_MAX_REQUEST_BYTES": "4096"})
    assert (from_env.auth_file, from_env.quota_writes_per_minute,
            from_env.allow_fault_injection, from_env.max_request_bytes) == \
        ("e.json", 5, True, 4096)


@pytest.mark.parametrize(("args", "words"), [
    (["--tls-cert", "c.pem"], "go together"),
    (["--tls-key", "k.pem"], "go together"),
    (["--quota-writes-per-minute", "-1"], "must not be negative"),
    (["--max-request-bytes", "10"], "must be 1024..2147483647"),
    (["--max-event-bytes", "1000"], "at least 1024"),
    (["--quota-bytes-per-minute", "-1"], "must not be negative"),
    (["--quota-bytes-per-minute", "4096", "--max-event-bytes", "8192"], "could never be written"),
    # The quota counts the whole request: the event and its parent.
    (["--quota-bytes-per-minute", "8192", "--max-event-bytes", "8192"], "could never be written"),
])
def test_bad_combinations_stop_the_start(args: list[str], words: str) -> None:
    with pytest.raises(SystemExit, match=words):
        parse(args)


def test_a_byte_quota_must_hold_a_request_of_the_largest_event() -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(["--quota-bytes-per-minute", "8192", "--max-event-bytes", "8192"])
    assert stopped.value.code == (
        "--quota-bytes-per-minute (8192) must be more than --max-event-bytes (8192): it "
        "counts the whole request, so an event of the largest size could never be written")
    assert parse(["--quota-bytes-per-minute", "8193", "--max-event-bytes", "8192"]
                 ).quota_bytes_per_minute == 8193


def test_event_size_and_byte_quota_flags_and_variables() -> None:
    settings = parse(["--max-event-bytes", "65536", "--quota-bytes-per-minute", "1000000"])
    assert (settings.max_event_bytes, settings.quota_bytes_per_minute) == (65536, 1_000_000)
    from_env = parse([], {"FOOTFALL_MAX_EVENT_BYTES": "2048",
                          "FOOTFALL_QUOTA_BYTES_PER_MINUTE": "4096"})
    assert (from_env.max_event_bytes, from_env.quota_bytes_per_minute) == (2048, 4096)
