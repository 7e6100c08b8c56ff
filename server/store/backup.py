"""`footfall backup DEST`: a consistent copy of a SQLite store, also while it serves.

Restore by copying the file back while the server is stopped (README "Backup,
restore and retention"). PostgreSQL has its own tools; memory:// has no file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from urllib.parse import urlparse

from server.store import open_store, redacted, sqlite_path
from server.store.sqlite import SqliteStore
from server.url_passwords import postgres_address


class BackupRefused(Exception):
    """This store is not backed up by Footfall; the message says what to do instead."""


def backup_file(dest: str) -> str:
    """The file `footfall backup DEST` writes: DEST, a path, or the file a sqlite:///
    URL names (given as `footfall copy` takes its DEST). BackupRefused for another
    URL, or a PostgreSQL server's address without its scheme (me:pa/ss@db:5432/shop
    was written as a file of that name, the password in the line saying so): a backup
    is a SQLite file; `footfall copy` fills a PostgreSQL store."""
    scheme = urlparse(dest).scheme
    if dest.startswith("sqlite:") or "://" in dest or postgres_address(dest) is not None:
        if scheme == "sqlite":
            return sqlite_path(dest)
        raise BackupRefused(
            f"a backup is a SQLite file: DEST is its path, or sqlite:///PATH, not "
            f"{redacted(dest)!r} (to copy a store's rows into PostgreSQL, or any store, use "
            "`footfall copy DEST`)")
    return dest


def backup(url: str, dest: str) -> int:
    """Copy the store `url` names to the new file `dest`; returns its size in bytes.

    Raises BackupRefused for PostgreSQL and memory://, FileExistsError when `dest`
    exists, appears while the backup is written, or another backup to it is running
    (or one was killed: see _claim), ValueError when `url` names no store, OSError
    when `dest` cannot be written.
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
    claimed: int | None = None
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        claimed = _claim(partial, target)
        store.backup(partial)
        fsync(partial)
        _put_in_place(partial, target)
        fsync(os.path.dirname(target))
    except BaseException:
        if claimed is not None:  # never another backup's
            with contextlib.suppress(OSError):
                os.remove(partial)
        raise
    finally:
        if claimed is not None:
            os.close(claimed)  # (its lock with it)
        store.close()
    return os.path.getsize(target)


def _claim(partial: str, target: str) -> int:
    """Make `partial` for this backup alone: an open descriptor, locked (flock) until
    it is closed, which says whether the backup that made it still runs.

    Two backups to one DEST at once both found it free, wrote the same `partial`,
    and one renamed the other's half-written file into place and reported success.
    A `partial` that is there is never taken over (a backup that made it may be
    writing it): FileExistsError says whether one holds it, or what to remove."""
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise FileExistsError(_held_by(partial, target)) from None
    fcntl.flock(fd, fcntl.LOCK_EX)
    # Another backup may have renamed its partial to `target` before this one made
    # its own: `target` must still be new.
    if os.path.lexists(target):
        os.remove(partial)
        os.close(fd)
        raise FileExistsError(f"{target} exists: back up to a new file")
    return fd


# What link() answers on a file system with no hard links (FAT, some network and FUSE
# ones), where a backup is still made.
NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


def _put_in_place(partial: str, target: str) -> None:
    """Name the whole backup `partial` `target`, unless `target` exists by now:
    FileExistsError then, and it is left as it is.

    Linked, not renamed: `target` was new when the backup began, but a file another
    program made there while it was written was replaced by the rename, and lost."""
    try:
        os.link(partial, target)
    except OSError as exc:
        if exc.errno == errno.EEXIST or (exc.errno in NO_HARD_LINKS and
                                         os.path.lexists(target)):
            raise FileExistsError(f"{target} was made by another program while the backup "
                                  "was written: it is left as it is; back up to a new "
                                  "file") from None
        if exc.errno not in NO_HARD_LINKS:
            raise
        # (no hard links here: renamed once `target` is seen new, as late as can be; a
        # file made in between is still replaced)
        os.replace(partial, target)
        return
    os.remove(partial)


def _held_by(partial: str, target: str) -> str:
    """Why `partial`, found there, stops a backup: another at work, or one killed."""
    try:
        fd = os.open(partial, os.O_RDONLY)
    except FileNotFoundError:  # it ended just now
        return (f"another backup to {target} was running (it just ended): back up to "
                "another file, or try again")
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return (f"another backup is writing {partial} now: wait for it to end, or back "
                "up to another file")
    finally:
        os.close(fd)
    return (f"{partial} is left from a backup that did not end (killed?), and none holds "
            "it now: remove it and back up again")


def fsync(path: str) -> None:
    """Flush the file or folder `path` to disk (a folder: the names renamed in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
