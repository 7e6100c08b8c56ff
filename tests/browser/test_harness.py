"""The browser harness itself: a Chromium it ends leaves nothing behind it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from .cdp import chromium


def test_an_ended_chromium_leaves_nothing_in_the_system_temp(
        browser_executable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The harness's temp folder is one of this test's own: the other Chromiums started
    # meanwhile (another pytest-xdist worker's browser tests, or another suite's) make
    # theirs in the system's, and it failed when one did. Its environment's TMPDIR too:
    # a Chromium not given a folder of the harness's own would leave its files there.
    # (A short path: the harness's folder must fit a socket's name.)
    own = Path(tempfile.mkdtemp(prefix="footfall-harness-"))
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(own))
        monkeypatch.setenv("TMPDIR", str(own))
        system = Path(tempfile.gettempdir())
        assert system == own
        with chromium(browser_executable, tmp_path / "profile"):
            pass
        assert list(own.iterdir()) == []
    finally:
        shutil.rmtree(own, ignore_errors=True)
