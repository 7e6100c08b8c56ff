"""A `footfall restore` killed after it moved the store aside and before it renamed its
copy of the backup into place: the start refused there names where the store it
replaced is, and says that the copy is whole (h7's review of stop 63). It said only
"Restore again (remove that file first), or remove it to start on a new, empty store",
no word of the store moved aside with every event it held, and an operator who took
the second way served an empty store with the old one forgotten beside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .cli import footfall
from .test_restore import OTHER, SHOP, backup, catalogs, killed_store

__all__ = ["backup", "killed_store"]  # (fixtures)

# `footfall restore BACKUP --store URL`, killed (kill -9) as it renames its copy into place.
KILLED_RESTORE = """
import os, signal, sys
from server.store import restore
rename = os.rename
def killed_at_the_last_rename(src, dst):
    if src.endswith(".restoring"):
        os.kill(os.getpid(), signal.SIGKILL)
    rename(src, dst)
restore.os.rename = killed_at_the_last_rename
restore.restore(sys.argv[1], sys.argv[2])
"""


def test_a_start_refused_after_a_killed_restore_names_the_store_moved_aside(
        tmp_path: Path, backup: Path, killed_store: Path) -> None:
    data = killed_store.parent
    done = subprocess.run([sys.executable, "-c", KILLED_RESTORE, str(backup),
                           f"sqlite:///{killed_store}"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == -9, done.stderr
    aside = [p.name for p in data.iterdir() if p.name.startswith("footfall.db.replaced-")
             and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1, sorted(p.name for p in data.iterdir())
    assert catalogs(data / aside[0]) == {SHOP: 30}  # (every event, moved aside)

    started = footfall("serve", "--port", "0", "--http-port", "0", "--store",
                       "data/footfall.db", cwd=tmp_path, timeout=30)
    assert started.returncode == 1, started.stderr
    assert f"{data}/{aside[0]}" in started.stderr, started.stderr
    assert "start on a new, empty store" not in started.stderr, started.stderr
    # (the copy is whole: the store is moved aside only once it is checked)
    (data / "footfall.db.restoring").rename(data / "footfall.db")
    assert catalogs(data / "footfall.db") == {OTHER: 1}
