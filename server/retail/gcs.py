"""`gs://bucket/path` URIs mapped onto a local folder (the emulated Cloud Storage).

`gs://b/x/y.json` is `ROOT/b/x/y.json`. Nothing outside ROOT is ever read or
written: `..`, absolute parts and links that leave ROOT are refused.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from server.errors import InvalidArgument

MAX_FILES = 100
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


def _split(uri: str, field: str) -> tuple[str, str]:
    if not uri.startswith("gs://"):
        raise InvalidArgument.field(field, f"must be a gs://bucket/path URI, got {uri[:200]!r}")
    bucket, _, path = uri[len("gs://"):].partition("/")
    if not _BUCKET.match(bucket):
        raise InvalidArgument.field(field, f"{bucket[:100]!r} is not a valid bucket name")
    parts = path.split("/") if path else []
    if any(part in ("..", ".") for part in parts) or "\\" in path or "\0" in path:
        raise InvalidArgument.field(field, "must not contain '.', '..', backslashes or NUL")
    return bucket, path


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def input_files(root: Path, uri: str, field: str) -> list[Path]:
    """The files `uri` names (`*` matches within one path segment), sorted.

    INVALID_ARGUMENT naming `field` when the URI is malformed or matches nothing.
    """
    bucket, path = _split(uri, field)
    if not path or path.endswith("/"):
        raise InvalidArgument.field(field, f"{uri!r} names a folder; name files, e.g. "
                                           f"gs://{bucket}/events/*.json")
    base = root / bucket
    pattern = glob.escape(str(base)) + "/" + "/".join(
        "*".join(glob.escape(piece) for piece in part.split("*")) for part in path.split("/"))
    found = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
    found = [p for p in found if _inside(root, p)]
    if not found:
        raise InvalidArgument.field(field, f"no file matches {uri!r}")
    return found


def output_folder(root: Path, prefix: str, field: str) -> Path:
    """The local folder for an output prefix such as gs://bucket/errors/; created."""
    bucket, path = _split(prefix, field)
    folder = root / bucket / path.strip("/")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not _inside(root, existing):
        raise InvalidArgument.field(field, "must stay inside the emulated storage root")
    folder.mkdir(parents=True, exist_ok=True)
    if not _inside(root, folder):
        raise InvalidArgument.field(field, "must stay inside the emulated storage root")
    return folder
