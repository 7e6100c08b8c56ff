"""A TLS private key that other users of the machine may read is said at start."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from server.app import _warn_if_key_open


def test_a_private_key_others_may_read_is_warned_of(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A keys file open to others was warned of; the TLS key beside it (openssl writes
    it 0600, but a `cp` or an editor under a umask of 022 makes it 0644) was served
    without a word."""
    caplog.set_level(logging.WARNING)
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    os.chmod(key, 0o600)
    _warn_if_key_open(str(key))
    assert not caplog.records
    os.chmod(key, 0o644)
    _warn_if_key_open(str(key))
    assert [record.getMessage() for record in caplog.records] == [
        f"--tls-key {key} is open to other users of this machine (mode 0644): any of them "
        f"may read the private key and pose as this server; chmod 600 {key}"]
