"""`footfall restore BACKUP --store URL`: a backup put in place of a SQLite store.

Copying a backup over the store's file left the old store's `-wal` and `-shm` beside
it, and SQLite read that WAL as the backup's: a server started on it served the old
store's events under the backup's catalogs, without a word. A WAL names no database:
its header holds salts and checksums that tie its frames to one another, none that
ties it to a file (https://www.sqlite.org/fileformat2.html#walformat), so a server
cannot tell a foreign WAL from its own. Restore moves the store aside whole, its
WAL with it, and puts the backup in its place alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import stat
import struct
import time
from urllib.parse import urlparse

from server.store import open_store, redacted, sqlite_path
from server.store.backup import fsync
from server.store.sqlite import SqliteStore

# The byte of a WAL database's -shm file that every connection to it read-locks for as
# long as it is open (SQLite's os_unix.c: UNIX_SHM_DMS, (22 + 8) * 4 + 8). A process
# that could write-lock it would be the file's only user: SQLite itself asks so.
_SHM_IN_USE_BYTE = 128
# Linux's `struct flock`: type, whence, start, length, pid, padding.
_FLOCK = struct.Struct("@hhqqi4x")


class RestoreRefused(Exception):
    """The backup is not put in place; the message says why and what to do."""


def restore(backup: str, url: str) -> tuple[str, list[str]]:
    """Put the Footfall SQLite store in the file `backup` in place of the store `url`
    names: the backup copied beside it (SQLite's online backup, so a backup with a
    WAL of its own is read whole), checked (integrity_check), then renamed in place;
    the store it replaces, if any, renamed aside with its -wal and -shm. Returns the
    store's path and the names the files it replaced were given (none: there were none;
    a -wal or -shm without its database counts: it is not removed).

    RestoreRefused for a store that is not a SQLite file, a store a process has open
    (a server), a backup that is the store itself or fails its check, or a copy left
    by a restore that did not end; ValueError when `backup` is no Footfall store
    (open_store's words); OSError when a file cannot be read or written.
    """
    scheme = urlparse(url).scheme
    if scheme == "memory":
        raise RestoreRefused(
            "footfall restore puts a SQLite backup in place of a SQLite store; a memory:// "
            "store lives in its server and ends with it: serve the backup itself with "
            "--store sqlite:///BACKUP, or copy its rows into a running store's database "
            "with `footfall copy DEST --store sqlite:///BACKUP`")
    if scheme != "sqlite":
        raise RestoreRefused(
            f"footfall restore puts a SQLite backup in place of a SQLite store, not of "
            f"{redacted(url)!r}: restore PostgreSQL with pg_restore --dbname=URL FILE into "
            "an empty database, or copy a backup's rows into any store with `footfall copy "
            "DEST --store sqlite:///BACKUP`")
    target = os.path.abspath(sqlite_path(url))
    source = os.path.abspath(backup)
    if not os.path.isfile(source):
        raise RestoreRefused(f"no backup at {source}")
    if os.path.exists(target) and os.path.samefile(source, target):
        raise RestoreRefused(f"{source} is the store itself: nothing to restore")
    _refuse_if_open(target)
    made = _make_folder(os.path.dirname(target))
    partial = f"{target}.restoring"
    try:
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise RestoreRefused(f"{partial} is left from a restore that did not end (or "
                                 "one runs now): remove it and restore again") from None
        os.close(fd)
        try:
            _copy_checked(source, partial)
            _as_open_as(partial, target)
            _refuse_if_open(target)  # (a server started while the copy was made)
            aside = _aside_name(target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise
    except BaseException:
        # (refused for a new path, the empty folders it made for the store were left)
        _remove_folders(made)
        raise
    # (from here on the partial is kept whatever happens: once the store is aside, it
    # is the one copy of the backup in place)
    replaced = _move_aside(target, aside)
    os.rename(partial, target)
    fsync(os.path.dirname(target))
    return target, replaced


def _make_folder(folder: str) -> list[str]:
    """Make `folder` and the folders above it that are missing; the ones made here,
    deepest first (one another process made meanwhile is not among them)."""
    missing = []
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    made: list[str] = []
    try:
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
                made.insert(0, path)
    except BaseException:
        _remove_folders(made)
        raise
    return made


def _remove_folders(folders: list[str]) -> None:
    """Remove `folders` (deepest first), each only while empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:  # (not empty: something else is in it now, and so it stays)
            return


def _as_open_as(partial: str, target: str) -> None:
    """Give `partial` the mode, and where this user may, the owner and group, of the
    store at `target` it replaces: restored by root, the file of a server run as
    another user was root's, 0644, and that server could not write it."""
    try:
        was = os.stat(target)
    except FileNotFoundError:
        return
    os.chmod(partial, stat.S_IMODE(was.st_mode))
    with contextlib.suppress(PermissionError):
        os.chown(partial, was.st_uid, was.st_gid)


def _copy_checked(source: str, partial: str) -> None:
    """Copy the store at `source` into `partial` and check the copy whole; RestoreRefused
    when it is not."""
    store = open_store(f"sqlite:///{source}", read_only=True, any_version=True)
    assert isinstance(store, SqliteStore)
    try:
        store.backup(partial)
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(partial)) as conn:
        try:
            found = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as exc:  # (damage the check cannot read past)
            found = [str(exc)]
    if found != ["ok"]:
        said = "; ".join(" ".join(str(line).split()) for line in found[:3])
        raise RestoreRefused(f"{source} fails SQLite's integrity check ({said}): the store "
                             "is left as it was")
    fsync(partial)


def _refuse_if_open(target: str) -> None:
    """RestoreRefused when another process has the store at `target` open: a read lock
    on its -shm's in-use byte (every connection to a WAL database holds one; this
    process's own are not seen, as a POSIX lock never conflicts with its owner's)."""
    try:
        fd = os.open(f"{target}-shm", os.O_RDONLY)
    except FileNotFoundError:
        return  # (no process has it open: the last one to close removes the -shm)
    try:
        found = fcntl.fcntl(fd, fcntl.F_GETLK,
                            _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, _SHM_IN_USE_BYTE, 1, 0))
    finally:
        os.close(fd)
    kind, _, _, _, pid = _FLOCK.unpack(found)
    if kind != fcntl.F_UNLCK:
        raise RestoreRefused(f"process {pid} has {target} open (a server?): stop it, then "
                             "restore; the store is left as it was")


def _aside_name(target: str) -> str:
    """TARGET.replaced-TIME, the name the store at `target` is to be given; RestoreRefused
    when it, or its -wal or -shm, is taken (a rename would replace it). Asked before the
    store is moved, while the copy can still be removed: refused after, the copy stayed
    as TARGET.restoring, and the restore again that the refusal advised was refused for
    it."""
    aside = f"{target}.replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    if any(os.path.lexists(f"{aside}{suffix}") for suffix in ("", "-wal", "-shm")):
        raise RestoreRefused(f"{aside} exists (a restore of this second): restore again")
    return aside


def _move_aside(target: str, aside: str) -> list[str]:
    """Rename the store at `target` to `aside`, its -wal and -shm first (so that the two
    stay one store, and none is ever beside the backup); the new names of the files
    there were (none: no store, nor any file of one, was there)."""
    moved = []
    for suffix in ("-wal", "-shm", ""):
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{target}{suffix}", f"{aside}{suffix}")
            moved.append(f"{aside}{suffix}")
    return [f"{aside}{suffix}" for suffix in ("", "-wal", "-shm") if f"{aside}{suffix}" in moved]
