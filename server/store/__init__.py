"""Storage: the Store interface and the backend chosen by a store URL."""

from __future__ import annotations

from urllib.parse import urlparse

from server.store.base import Store
from server.store.rows import ClientEventRow, EventQuery, EventRow, TimeBound
from server.store.sqlite import SqliteStore

__all__ = ["ClientEventRow", "EventQuery", "EventRow", "Store", "TimeBound", "open_store"]


def open_store(url: str) -> Store:
    """Open the store a URL names: sqlite:///PATH, memory://, postgresql://...

    Raises ValueError for a URL no backend understands.
    """
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return SqliteStore(None)
    if parsed.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them;
        # sqlite:///./data/x.db is relative to the working directory.
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError(f"sqlite store URL needs a path, e.g. sqlite:///./data/footfall.db: "
                             f"{url!r}")
        return SqliteStore(path)
    if parsed.scheme in {"postgres", "postgresql"}:
        raise ValueError("the PostgreSQL store is not built yet; use sqlite:///PATH or memory://")
    raise ValueError(f"unknown store URL {url!r}: use sqlite:///PATH, memory:// "
                     "or postgresql://USER@HOST/DB")
