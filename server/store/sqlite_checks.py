"""What the SQLite store checks before it serves a file, and how it names a full disk.

Start-up must stay fast on a database of many gigabytes, and `PRAGMA quick_check`
reads every page: measured on a 3.9 GB store, 3.9 s with the file in the page
cache and 70 s from disk. So every file gets checks that cost a few page reads
whatever its size: the header (magic, page size), its length against the page
count the header gives (a copy cut short), the schema, and the first and last
entries of every table and index (the last ones are where the writes before a
crash or power cut landed). A file of up to FULL_CHECK_BYTES gets the whole
`quick_check` on top (measured at 64 MiB: 0.1-0.2 s cached, up to 1.5 s from
disk). Damage in the middle of a larger file is found only when a call reads or
writes that page.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import time
import urllib.parse

from server.store.rows import StoreUnusable

HEADER = b"SQLite format 3\x00"
FULL_CHECK_BYTES = 64 * 2**20
SQLITE_FULL = 13  # the primary result code; ENOSPC on the database, WAL or journal


def is_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk is full (SQLITE_FULL, also how SQLite reports
    ENOSPC when writing the WAL or a journal)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == SQLITE_FULL


def free_bytes(path: str) -> int:
    """What an unprivileged writer may still use on the file system holding `path`."""
    stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    return stats.f_bavail * stats.f_frsize


def check_file(path: str) -> None:
    """Before opening `path`: its folder exists (made if need be) and is writable,
    it is no directory, and an existing file starts with a sound SQLite header and
    is as long as that header says. Raises StoreUnusable naming the problem."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise StoreUnusable(f"{path}: cannot create its folder {folder}: {exc.strerror}") \
            from exc
    if os.path.isdir(path):
        raise StoreUnusable(f"{path} is a directory, not a database file")
    exists = os.path.exists(path)
    if not os.access(path if exists else folder, os.W_OK):
        read_only = os.statvfs(folder).f_flag & os.ST_RDONLY
        raise StoreUnusable(f"{path}: the file system is read-only" if read_only
                            else f"{path}: this user may not write it")
    if exists:
        check_header(path)


def check_header(path: str) -> None:
    """StoreUnusable unless `path` (a file) starts with a sound SQLite header and is as
    long as it says (an empty file is an empty database)."""
    with open(path, "rb") as file:
        header = file.read(100)
        size = os.fstat(file.fileno()).st_size
    if not header:
        return  # an empty file is an empty database
    if len(header) < 100 or not header.startswith(HEADER):
        raise StoreUnusable(f"{path} is not a SQLite database (it does not start with the "
                            "SQLite header)")
    (page_size,) = struct.unpack(">H", header[16:18])
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise StoreUnusable(f"{path} is damaged: its header gives an impossible page size "
                            f"({page_size})")
    # The header's page count is valid only when the change counter matches the
    # version-valid-for field; and a WAL with frames may hold pages the file lacks.
    change_counter, pages = struct.unpack(">II", header[24:32])
    (valid_for,) = struct.unpack(">I", header[92:96])
    wal = f"{path}-wal"
    wal_empty = not os.path.exists(wal) or os.path.getsize(wal) == 0
    if pages and change_counter == valid_for and wal_empty and size < pages * page_size:
        raise StoreUnusable(f"{path} is damaged: it is cut short ({size} bytes; its header "
                            f"says {pages} pages of {page_size} bytes)")


def check_contents(conn: sqlite3.Connection, path: str) -> None:
    """After opening: the schema reads, the first and last entry of every table and
    index read, and a file of up to FULL_CHECK_BYTES passes `quick_check`.
    Raises StoreUnusable naming the problem; sqlite3.Error for what SQLite says
    while reading (callers name the file)."""
    objects = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                           "WHERE type IN ('table', 'index')").fetchall()
    for kind, name, table, sql in objects:
        _read_edges(conn, kind, name, table, sql or "")
    wal = f"{path}-wal"
    size = os.path.getsize(path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
    if size <= FULL_CHECK_BYTES:
        found = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
        if found != ["ok"]:
            # One line: SQLite heads its report "*** in database main ***\n".
            problems = [line for text in found for line in text.splitlines()
                        if line.strip() and not line.startswith("***")]
            raise StoreUnusable(f"{path} is damaged: {'; '.join(problems)}")


def has_wal(path: str) -> bool:
    """Whether a WAL file with frames lies beside `path`, a file that exists (where
    it does not, the WAL is no file's: SQLite drops it as it makes the file, and the
    check before it applies could not open the file, "unable to open database file",
    when `rm events.db` was to start a new store)."""
    try:
        return os.path.getsize(f"{path}-wal") > 0 and os.path.isfile(path)
    except OSError:
        return False


def read_only_uri(path: str) -> str:
    """The URI that opens `path` read-only (SQLite refusing every write through it).

    A file in WAL mode (every store, and its backups) is read with a `-shm` beside it,
    which SQLite makes on opening: in a folder that cannot be written (read-only
    media, a snapshot mounted read-only) the open failed, `unable to open database
    file`. With no `-wal` beside it nothing is writing the file (a writer keeps one),
    so it is opened `immutable`, as it is, with no `-shm`; with one, as before (SQLite
    reads a WAL only through its `-shm`)."""
    absolute = os.path.abspath(path)
    uri = f"file:{urllib.parse.quote(absolute)}?mode=ro"
    if not os.access(os.path.dirname(absolute), os.W_OK) and not os.path.exists(f"{absolute}-wal"):
        uri += "&immutable=1"
    return uri


def check_before_the_wal_applies(path: str) -> None:
    """check_contents for a file with a WAL beside it, on a read-only connection.

    A WAL holds no mark of the file it belongs to: one left beside a backup put in
    its file's place (README, "Restore") is read as the backup's, and the first
    connection of the writer to close copies its pages into the file and deletes it,
    so the damage stayed and its cause went. A read-only connection never does: a
    file found damaged here is left as it was, WAL included, and the line says so."""
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreUnusable(problem(path, exc)) from exc
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        check_contents(conn, path)
    except (sqlite3.Error, StoreUnusable) as exc:
        said = str(exc) if isinstance(exc, StoreUnusable) else problem(path, exc)
        if " is damaged: " not in said:
            # a full disk, a lock another connection holds, a file it may not read:
            # nothing says the WAL is not the file's, and removing it would lose the
            # transactions it holds
            raise StoreUnusable(said) from exc
        raise StoreUnusable(
            f"{said}. Nothing was written to it, and {path}-wal beside it was kept: if a "
            f"backup (or a copy) was just put in this file's place, that WAL is the old "
            f"file's; remove {path}-wal and {path}-shm, and start again; else keep both "
            f"and salvage with sqlite3 {path} .recover") from exc
    finally:
        conn.close()


def _read_edges(conn: sqlite3.Connection, kind: str, name: str, table: str, sql: str) -> None:
    """Read the first and last entry of one b-tree: a seek down its left and right
    edge (a few pages), never a scan."""
    quoted = _quote(name)
    if kind == "table":
        if not sql.upper().startswith("CREATE TABLE") or "WITHOUT ROWID" in sql.upper():
            return  # virtual or WITHOUT ROWID tables (product_days): no rowid to seek
        for end in ("min", "max"):
            # One aggregate per statement: min() and max() together would scan.
            conn.execute(f"SELECT * FROM {quoted} NOT INDEXED WHERE rowid = "
                         f"(SELECT {end}(rowid) FROM {quoted} NOT INDEXED)").fetchall()
        return
    columns = conn.execute(f"PRAGMA index_info({quoted})").fetchall()
    if not columns or columns[0][2] is None:
        return  # an index on an expression: no column to seek by
    first = _quote(columns[0][2])
    for end in ("min", "max"):
        conn.execute(f"SELECT {end}({first}) FROM {_quote(table)} INDEXED BY {quoted}").fetchall()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def problem(path: str, exc: sqlite3.Error) -> str:
    """One line for what SQLite said while opening or checking `path`."""
    if is_full(exc):
        return f"{path}: the disk is full ({exc})"
    text = str(exc)
    if "malformed" in text or "not a database" in text:
        return f"{path} is damaged: {text}"
    return f"{path}: {text}"


# How long `unreadable` reads the store's files for a read the disk fails, and in
# what pieces: through the page cache, so the pages cached go by at memory speed and
# the first one the disk must give and cannot ends the search.
UNREADABLE_PROBE_SECONDS = 1.0
_PROBE_CHUNK = 2**20


def is_damage_or_failing_read(exc: BaseException) -> bool:
    """Whether `exc` is SQLITE_CORRUPT: a damaged file, or a read the disk failed.
    SQLite reports a read that fails with EIO (SQLITE_IOERR_CORRUPTFS) inside a
    statement as SQLITE_CORRUPT, "database disk image is malformed"; see unreadable."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None \
        and code & 0xFF == sqlite3.SQLITE_CORRUPT


def unreadable(path: str, seconds: float = UNREADABLE_PROBE_SECONDS) -> OSError | None:
    """The error a read of the database at `path` or of its WAL meets now (EIO: the
    disk fails reads), or None when none is found within `seconds` (the files read,
    or the time up: a file damaged, or a failing sector past what was read)."""
    deadline = time.monotonic() + seconds
    for name in (path, path + "-wal"):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return exc
        try:
            offset = 0
            while time.monotonic() < deadline:
                piece = os.pread(fd, _PROBE_CHUNK, offset)
                if not piece:
                    break
                offset += len(piece)
        except OSError as exc:
            return exc
        finally:
            os.close(fd)
    return None
