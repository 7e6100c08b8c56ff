"""`gs://bucket/path` URIs mapped onto a local folder (the emulated Cloud Storage).

`gs://b/x/y.json` is `ROOT/b/x/y.json`. Nothing outside ROOT is ever read or
written, whatever else writes into ROOT:
- URIs with `.` or `..` segments, backslashes or NUL are refused;
- a link is followed only where its target stays inside the bucket it was named
  under (checked on the resolved path: a key limited to some buckets reads and
  writes no other bucket through a link), and the file is then opened one folder
  at a time from ROOT with `O_NOFOLLOW`: a link put in place after the check is
  refused, never followed. An output file (the errors file) is never a link at all;
- only regular files are opened, and without blocking: opening a FIFO or a
  device would hold an operation worker forever.
Listing stops as soon as a request names more than MAX_FILES files, and honours
the call's deadline, so a wildcard over a huge folder costs little.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from server.errors import DeadlineExceeded, InvalidArgument
from server.retail.validation import too_long

MAX_FILES = 100  # per import, as Google's
MAX_URI_CHARS = 2000  # Google's limit for one input URI
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CLOCK_EVERY = 256  # folder entries listed between two looks at the deadline


class _NotRegular(OSError):
    """Opened something that is not a regular file."""


class _Outside(OSError):
    """A path whose target is outside ROOT."""


class _OtherBucket(_Outside):
    """A path whose target is inside ROOT but in another bucket than it was named under."""


def _split(uri: str, field: str) -> tuple[str, str]:
    if len(uri) > MAX_URI_CHARS:
        raise InvalidArgument([too_long(field, uri, MAX_URI_CHARS)])
    if not uri.startswith("gs://"):
        raise InvalidArgument.field(field, f"must be a gs://bucket/path URI, got {uri[:200]!r}")
    bucket, _, path = uri[len("gs://"):].partition("/")
    if not _BUCKET.match(bucket):
        raise InvalidArgument.field(field, f"{bucket[:100]!r} is not a valid bucket name")
    parts = path.split("/") if path else []
    if any(part in ("..", ".") for part in parts) or "\\" in path or "\0" in path:
        raise InvalidArgument.field(field, "must not contain '.', '..', backslashes or NUL")
    return bucket, path


def check_uri(uri: str, field: str) -> None:
    """INVALID_ARGUMENT naming `field` when `uri` is no gs://bucket/path URI, or one
    whose parts the server does not take (see the module's words), whatever it names."""
    _split(uri, field)


def _parts_under(root_real: str, real: str) -> list[str]:
    """The names leading from ROOT to the resolved path `real`; _Outside if it is not
    inside ROOT."""
    relative = os.path.relpath(real, root_real)
    if relative == os.curdir:
        return []
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise _Outside(errno.EXDEV, "a link leads outside the storage root")
    return relative.split(os.sep)


def _bucket_named(root: Path, root_real: str, path: str | Path) -> str | None:
    """The bucket `path` was named under (its first name below ROOT, links
    unresolved); None for ROOT itself or a path not under it."""
    for base in (root, root_real):  # (a path may be built on either)
        relative = os.path.relpath(path, base)
        if relative == os.curdir:
            return None
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            return relative.split(os.sep)[0]
    return None


def _parts_in_bucket(root: Path, root_real: str, path: str | Path) -> list[str]:
    """The names leading from ROOT to `path` resolved; _Outside if it is not inside
    ROOT, _OtherBucket if it leaves the bucket it was named under (a link in one
    bucket into another would hand a key limited to the first the other's files)."""
    parts = _parts_under(root_real, os.path.realpath(path))
    bucket = _bucket_named(root, root_real, path)
    if bucket is not None and parts[:1] != [bucket]:
        raise _OtherBucket(errno.EXDEV, f"a link leads out of bucket {bucket!r}; links are "
                                        "followed only within their bucket")
    return parts


def _inside(root: Path, root_real: str, path: str | Path) -> bool:
    """Whether `path` resolved stays inside the bucket it was named under."""
    try:
        _parts_in_bucket(root, root_real, path)
    except _Outside:
        return False
    return True


def name_of(root: Path, path: str | Path) -> str:
    """`gs://bucket/path` for a path under ROOT, as the request named it (links unresolved)."""
    return "gs://" + Path(os.path.relpath(path, root)).as_posix()


def _why(exc: OSError) -> str:
    if isinstance(exc, _NotRegular | _Outside):
        return str(exc.strerror)
    if exc.errno == errno.ELOOP:
        return "it is a link, and links are not followed here"
    if exc.errno == errno.ENXIO:
        return "not a regular file"
    if exc.errno == errno.ENOENT:
        return "no such file (any more)"
    return exc.strerror or str(exc)


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceeded("listing the gs:// files passed the call's deadline; "
                               "name fewer files or narrower wildcards")


def _listing(root: Path, root_real: str, folder: str, deadline: float | None
             ) -> Iterator[os.DirEntry[str]]:
    """The entries of `folder` (none if it cannot be listed or leads out of its
    bucket), looking at the deadline as it goes: a folder may hold millions."""
    if not _inside(root, root_real, folder):
        return
    try:
        listing = os.scandir(folder)
    except OSError:
        return
    with listing:
        for i, entry in enumerate(listing):
            if i % _CLOCK_EVERY == 0:
                _check_deadline(deadline)
            yield entry


def _matcher(segment: str) -> Callable[[str], bool]:
    """Whether a name matches one path segment (holding a `*`) whose `*` matches any
    run of characters (a leading dot only explicitly, as in shell wildcards). Each
    piece between two `*` is taken where it is first found, in one pass over the
    name: a regular expression (`.*a.*a...b`) backtracked for hours, holding the
    GIL, so one import request stopped every call of the server."""
    first, *middle, last = segment.split("*")
    hidden_ok = segment.startswith(".")

    def matches(name: str) -> bool:
        if (not hidden_ok and name.startswith(".")) or not name.startswith(first):
            return False
        at = len(first)
        for piece in middle:
            at = name.find(piece, at)
            if at < 0:
                return False
            at += len(piece)
        return len(name) - at >= len(last) and name.endswith(last)

    return matches


def input_files(root: Path, uri: str, field: str, limit: int = MAX_FILES,
                deadline: float | None = None, unmatched: str = "") -> list[Path]:
    """The files `uri` names (`*` matches within one path segment), sorted; at most
    `limit + 1`: one more than `limit` means there are too many, and listing stopped.
    `unmatched`: why a URI may match nothing, said in its place (by a job that runs
    what a call found).

    INVALID_ARGUMENT naming `field` when the URI is malformed or matches nothing, a
    link leaving ROOT or its bucket, or something other than a regular file; DEADLINE_EXCEEDED
    when `deadline` (on time.monotonic()) passes while listing.
    """
    bucket, path = _split(uri, field)
    if not path:
        raise InvalidArgument.field(field, f"{uri!r} names only a bucket; a file is "
                                           f"gs://BUCKET/PATH, e.g. gs://{bucket}/events.json "
                                           f"(the file {bucket}/events.json under the server's "
                                           "--gcs-root)")
    if path.endswith("/"):
        raise InvalidArgument.field(field, f"{uri!r} names a folder; name files, e.g. "
                                           f"gs://{bucket}/events/*.json")
    root_real = os.path.realpath(root)
    *folders, leaf = path.split("/")
    candidates = [os.path.join(root, bucket)]
    for segment in folders:
        if "*" in segment:
            matches = _matcher(segment)
            candidates = [entry.path for folder in candidates
                          for entry in _listing(root, root_real, folder, deadline)
                          if matches(entry.name) and entry.is_dir()]
        else:
            candidates = [os.path.join(folder, segment) for folder in candidates]
    if "*" in leaf:
        matches = _matcher(leaf)
        named: Iterator[str] = (entry.path for folder in candidates
                                for entry in _listing(root, root_real, folder, deadline)
                                if matches(entry.name))
    else:
        named = (os.path.join(folder, leaf) for folder in candidates)
    files: list[Path] = []
    for i, candidate in enumerate(named):  # lazily: stops listing once past `limit`
        if i % _CLOCK_EVERY == 0:
            _check_deadline(deadline)
        checked = _regular_file(root, root_real, candidate, field)
        if checked is not None:
            files.append(checked)
            if len(files) > limit:
                break
    if not files and "*" not in path and os.path.isdir(os.path.join(root, bucket, path)):
        raise InvalidArgument.field(field, f"{uri!r} names a folder; name files, e.g. "
                                           f"gs://{bucket}/{path}/*.json")
    if not files:
        # The mapping is said, not the server's path: a caller new to the emulator
        # read only that nothing matched, and not where to put the file.
        raise InvalidArgument.field(field, f"no file matches {uri!r} (" + (
            unmatched or "gs://BUCKET/PATH is the file BUCKET/PATH under the server's "
                         "--gcs-root, which its ready line names") + ")")
    return sorted(files)


def _regular_file(root: Path, root_real: str, candidate: str, field: str) -> Path | None:
    """`candidate` if it is a regular file inside ROOT; None if it does not exist or is
    a folder; INVALID_ARGUMENT naming `field` otherwise."""
    try:
        mode = os.stat(candidate).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return None
    try:
        _parts_in_bucket(root, root_real, candidate)
    except _OtherBucket as exc:
        raise InvalidArgument.field(field, f"{name_of(root, candidate)}: {exc.strerror}") from None
    except _Outside:
        raise InvalidArgument.field(field, f"{name_of(root, candidate)} is a link that leaves "
                                           "the emulated storage root") from None
    if not stat.S_ISREG(mode):
        raise InvalidArgument.field(field, f"{name_of(root, candidate)} is not a regular file "
                                           "(a FIFO, socket or device)")
    return Path(candidate)


def root_problem(root: Path) -> str | None:
    """Why ROOT is not a folder and could not be made one (a file, or a link that
    leads nowhere, where it or one of its parents should be), or None. Only looked
    at: ROOT is made when a gs:// file is first written (a server that only reads,
    or a memory:// one in a test suite, leaves no folder behind)."""
    for place in (root, *root.parents):
        try:
            if place.is_dir():
                return None
            if os.path.lexists(place):
                return f"{place} is not a folder"
        except OSError as exc:  # (a name longer than the file system takes)
            return _why(exc)
    return None


def _existing_ancestor(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_output_folder(root: Path, prefix: str, field: str) -> Path:
    """The local folder for an output prefix such as gs://bucket/errors/, checked but
    not created (nothing is created before a request is accepted).

    INVALID_ARGUMENT naming `field` when the prefix is malformed, leaves ROOT or its
    bucket, or a file stands where a folder should be.
    """
    bucket, path = _split(prefix, field)
    folder = root / bucket / path.strip("/")
    try:
        existing = _existing_ancestor(folder)
    except OSError as exc:  # a part longer than the file system takes (ENAMETOOLONG)
        raise InvalidArgument.field(field, f"cannot use {prefix[:200]!r}: {_why(exc)}") from None
    if existing in root.parents:
        # ROOT itself is not made yet (it is made when first written to): nothing
        # under it exists, so nothing there can lead outside; only a name longer than
        # the file system takes can be known bad before it is made.
        longest = os.pathconf(existing, "PC_NAME_MAX")
        if any(len(os.fsencode(part)) > longest for part in folder.relative_to(existing).parts):
            raise InvalidArgument.field(field, f"cannot use {prefix[:200]!r}: "
                                               f"{os.strerror(errno.ENAMETOOLONG)}")
        return folder
    try:
        _parts_in_bucket(root, os.path.realpath(root), existing)
    except _OtherBucket as exc:
        raise InvalidArgument.field(field, f"cannot use {prefix[:200]!r}: {exc.strerror}"
                                    ) from None
    except _Outside:
        raise InvalidArgument.field(field, "must stay inside the emulated storage root") from None
    if not existing.is_dir():
        raise InvalidArgument.field(field, f"{name_of(root, existing)} is a file, not a folder")
    return folder


def make_output_folder(root: Path, prefix: str, field: str) -> Path:
    """The folder of check_output_folder, created (without following links into new
    parts), and ROOT too if it is not yet (a server that never writes a gs:// file
    leaves no folder behind); its resolved path. INVALID_ARGUMENT naming `field` as
    check_output_folder, or when it cannot be created."""
    check_output_folder(root, prefix, field)  # before anything is made
    try:
        root.mkdir(parents=True, exist_ok=True)  # the operator's folder: links followed
    except OSError as exc:
        raise InvalidArgument.field(field, f"cannot create {prefix}: the server's --gcs-root "
                                           f"cannot be made: {_why(exc)}") from None
    folder = check_output_folder(root, prefix, field)  # again, now with ROOT to look into
    root_real = os.path.realpath(root)
    existing = _existing_ancestor(folder)
    try:
        parts = (_parts_in_bucket(root, root_real, existing)
                 + list(folder.relative_to(existing).parts))
        os.close(_open_folder(root_real, parts, create=True))
    except OSError as exc:
        raise InvalidArgument.field(field, f"cannot create {prefix}: {_why(exc)}") from None
    return Path(root_real, *parts)


def _open_folder(root_real: str, parts: list[str], create: bool = False) -> int:
    """A descriptor of ROOT/parts, reached one folder at a time without following a
    link (ELOOP if one is met); missing folders are made when `create`."""
    fd = os.open(root_real, _FOLDER_FLAGS)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            inner = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_file(root_real: str, parts: list[str], flags: int) -> int:
    """A descriptor of the regular file ROOT/parts, opened without following any link
    and without blocking; OSError (_NotRegular for a FIFO, device, ...) if it cannot be."""
    if not parts:
        raise _NotRegular(errno.EISDIR, "not a regular file")
    folder = _open_folder(root_real, parts[:-1])
    try:
        fd = os.open(parts[-1], flags | _FILE_FLAGS, 0o666, dir_fd=folder)
    finally:
        os.close(folder)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegular(errno.EINVAL, "not a regular file (a FIFO, socket or device)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_input(root: Path, path: Path, field: str) -> BinaryIO:
    """`path` (a file input_files found) opened for reading; links inside its bucket are
    followed, checked again now. INVALID_ARGUMENT naming `field` and the file when it
    is gone, leaves ROOT or its bucket, or is not a regular file."""
    root_real = os.path.realpath(root)
    try:
        fd = _open_file(root_real, _parts_in_bucket(root, root_real, path), os.O_RDONLY)
    except OSError as exc:
        if (isinstance(exc, _Outside) and not isinstance(exc, _OtherBucket)
                and _under_another_root(root, path)):
            # (an import's checkpoint keeps its files' paths: the server resuming it was
            # given another --gcs-root, a data folder moved at an upgrade, say)
            raise InvalidArgument.field(field, f"cannot read {Path(path).name}: it was "
                                               "found under another --gcs-root than the "
                                               "server's (changed since this import "
                                               "began): import it again") from None
        raise InvalidArgument.field(field, f"cannot read {name_of(root, path)}: "
                                           f"{_why(exc)}") from None
    return os.fdopen(fd, "rb")


def _under_another_root(root: Path, path: str | Path) -> bool:
    """Whether `path` is outside ROOT as written (not only once links are resolved)."""
    relative = os.path.relpath(path, root)
    return relative == os.pardir or relative.startswith(os.pardir + os.sep)


def _output_fd(root: Path, path: Path, flags: int, field: str) -> int:
    root_real = os.path.realpath(root)
    try:
        parts = _parts_in_bucket(root, root_real, path.parent) + [path.name]
        return _open_file(root_real, parts, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InvalidArgument.field(field, f"cannot write {name_of(root, path)}: "
                                           f"{_why(exc)}") from None


def write_output(root: Path, path: Path, data: bytes, field: str, at: int) -> int:
    """Write `data` to the output file `path` (created if missing, never through a
    link) at byte `at`, the size its job's last step recorded (or at its end, if it
    is shorter), cutting whatever lies past; flush it to disk and return the new
    size. Not an append: a run that lost its job to another process and writes a
    batch before it learns so must not leave lines inside what the other records.
    INVALID_ARGUMENT naming `field` and the file when it cannot be written."""
    try:
        fd = _output_fd(root, path, os.O_WRONLY | os.O_CREAT, field)
    except FileNotFoundError:  # its folder is gone
        raise InvalidArgument.field(field, f"cannot write {name_of(root, path)}: its folder "
                                           "is gone") from None
    try:
        offset = min(at, os.fstat(fd).st_size)
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
        os.ftruncate(fd, offset)
        os.fsync(fd)
        return offset
    finally:
        os.close(fd)


def truncate_output(root: Path, path: Path, size: int, field: str) -> None:
    """Cut the output file `path` back to `size` bytes if it is longer (never through
    a link); nothing if it does not exist. INVALID_ARGUMENT as write_output."""
    try:
        fd = _output_fd(root, path, os.O_WRONLY, field)
    except FileNotFoundError:
        return
    try:
        if os.fstat(fd).st_size > size:
            os.ftruncate(fd, size)
            os.fsync(fd)
    finally:
        os.close(fd)


def _output_folder_fd(root: Path, folder: Path, field: str) -> int:
    root_real = os.path.realpath(root)
    try:
        return _open_folder(root_real, _parts_in_bucket(root, root_real, folder))
    except OSError as exc:
        raise InvalidArgument.field(field, f"cannot write in {name_of(root, folder)}: "
                                           f"{_why(exc)}") from None


def rename_output(root: Path, path: Path, name: str, field: str) -> None:
    """Give the output file `path` the name `name` in its folder (replacing a file of
    that name), the folder flushed to disk so that the new name lasts; a reader of the
    folder sees the file whole under either name, never in between. INVALID_ARGUMENT
    as write_output."""
    fd = _output_folder_fd(root, path.parent, field)
    try:
        os.rename(path.name, name, src_dir_fd=fd, dst_dir_fd=fd)
        os.fsync(fd)
    except OSError as exc:
        raise InvalidArgument.field(field, f"cannot name {name_of(root, path)} {name}: "
                                           f"{_why(exc)}") from None
    finally:
        os.close(fd)


def remove_output(root: Path, path: Path, field: str) -> None:
    """Remove the output file `path` (never through a link) if it is there.
    INVALID_ARGUMENT as write_output."""
    try:
        fd = _output_folder_fd(root, path.parent, field)
    except InvalidArgument:
        if not os.path.lexists(path.parent):
            return  # (its folder is gone: so is the file)
        raise
    try:
        os.unlink(path.name, dir_fd=fd)
        os.fsync(fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise InvalidArgument.field(field, f"cannot remove {name_of(root, path)}: "
                                           f"{_why(exc)}") from None
    finally:
        os.close(fd)
