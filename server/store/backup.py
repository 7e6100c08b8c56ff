"""`footfall backup DEST`: a consistent copy of a SQLite store, also while it serves.

Restore by copying the file back while the server is stopped (README "Backup,
restore and retention"). PostgreSQL has its own tools; memory:// has no file.
"""

from __future__ import annotations

import contextlib
import os
from urllib.parse import urlparse

from server.store import open_store, redacted
from server.store.sqlite import SqliteStore


class BackupRefused(Exception):
    """This store is not backed up by Footfall; the message says what to do instead."""


def backup(url: str, dest: str) -> int:
    """Copy the store `url` names to the new file `dest`; returns its size in bytes.

    Raises BackupRefused for PostgreSQL and memory://, FileExistsError when `dest`
    exists, ValueError when `url` names no store, OSError when `dest` cannot be
    written.
    """
    scheme = urlparse(url).scheme
    if scheme in ("postgres", "postgresql"):
        raise BackupRefused(
            "back up PostgreSQL with its own tools, which copy a running database "
            f"consistently: pg_dump --format=custom --file={dest} '{redacted(url)}' "
            "(restore into an empty database with pg_restore --dbname=URL FILE)")
    if scheme == "memory":
        raise BackupRefused("a memory:// store lives only inside its server process: there "
                            "is no file to back up")
    target = os.path.abspath(dest)
    if os.path.lexists(target):
        raise FileExistsError(f"{target} exists: back up to a new file")
    # Of any version: a store of an older Footfall is best backed up before a server
    # of this one first starts on it, as its migrations cannot be undone.
    store = open_store(url, read_only=True, any_version=True)
    assert isinstance(store, SqliteStore)
    # Written beside the target and renamed when complete, so that a file at
    # `dest` is always a whole backup.
    partial = f"{target}.partial"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        store.backup(partial)
        _fsync(partial)
        os.replace(partial, target)
        _fsync(os.path.dirname(target))
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
    finally:
        store.close()
    return os.path.getsize(target)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
