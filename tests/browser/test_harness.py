"""The browser harness itself: a Chromium it ends leaves nothing behind it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .cdp import chromium


def test_an_ended_chromium_leaves_nothing_in_the_system_temp(browser_executable: str,
                                                              tmp_path: Path) -> None:
    system = Path(tempfile.gettempdir())
    before = set(system.glob("org.chromium.*")) | set(system.glob("footfall-chromium-*"))
    with chromium(browser_executable, tmp_path / "profile"):
        pass
    after = set(system.glob("org.chromium.*")) | set(system.glob("footfall-chromium-*"))
    assert after - before == set()
