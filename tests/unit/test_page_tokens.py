"""Signed page tokens (server/page_tokens.py) and the key a store keeps for them:
one key for every store opened on one file or database, made once; its own for
each memory:// store; a read-only store that holds none yet still pages."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server import page_tokens
from server.errors import InvalidArgument
from server.store import open_store
from server.store.rows import StoreUnusable

KEY = b"k" * 32


@pytest.fixture(params=["file", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL two stores (two replicas) open at once."""
    if request.param == "file":
        yield f"sqlite:///{tmp_path}/events.db"
        return
    url: str = request.getfixturevalue("postgres_url")
    request.getfixturevalue("postgres_databases").empty(url)  # (no key left by another)
    yield url
    request.getfixturevalue("postgres_databases").empty(url)


@pytest.fixture
def stores() -> Iterator[Callable[..., Any]]:
    """`open(url, **options)` opens a store; all are closed at teardown."""
    opened: list[Any] = []

    def open_one(url: str, **options: Any) -> Any:
        opened.append(open_store(url, **options))
        return opened[-1]

    yield open_one
    for each in opened:
        each.close()


def refusal(key: bytes, token: str) -> str:
    with pytest.raises(InvalidArgument) as refused:
        page_tokens.body_of(key, token)
    [violation] = refused.value.violations
    assert violation.field == "page_token"
    return str(violation.description)


def test_a_token_carries_its_body_and_only_its_key_opens_it() -> None:
    token = page_tokens.signed(KEY, b"1716213787000000.2.12345")
    assert page_tokens.body_of(KEY, token) == b"1716213787000000.2.12345"
    assert "changed" in refusal(b"x" * 32, token)


@pytest.mark.parametrize("change", [
    lambda t: t.replace(t[0], "A" if t[0] != "A" else "B", 1),  # the body
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the tag
    lambda t: t[:3] + "*" + t[3:],  # a character a base64 decoder would skip
    lambda t: t + "==",  # padding the signed form leaves out
    lambda t: t.partition(".")[0],  # the tag left out
    lambda t: "é" + t,
    lambda t: "",
])
def test_a_changed_token_is_refused(change: Callable[[str], str]) -> None:
    token = change(page_tokens.signed(KEY, b"catalogs:projects/p/locations/global/catalogs/c"))
    if not token:
        return  # (no token is the first page: the lists never ask)
    assert refusal(KEY, token) == ("is not a page token this server issued (it was changed, "
                                   "or made up; or it is of another store, or of a "
                                   "memory:// server since restarted: start from the "
                                   "first page)")


@pytest.mark.parametrize("body", [
    b"1716213787000000.2.12345", b"7.1", b"-3.99", b"tenants:projects/p/tenants/t",
    # ListOperations': CREATED:NAME up to 2026-12-04 (as 055eccd and 0152ba3 gave it),
    # then CREATED:QUESTION:NAME
    b"1796581497397922:projects/p/locations/global/catalogs/c/operations/import-user-events-6",
    b"1796581497397922:2718281828:projects/p/locations/global/catalogs/c/operations/purge-1"])
def test_an_unsigned_token_of_an_earlier_footfall_says_to_start_again(body: bytes) -> None:
    assert refusal(KEY, base64.urlsafe_b64encode(body).decode()) == (
        "is a page token of an earlier Footfall, which this one does not take: start from "
        "the first page (no page_token)")


def test_stores_on_one_file_or_database_share_one_key(shared_url: str,
                                                      stores: Callable[..., Any]) -> None:
    one, two = stores(shared_url), stores(shared_url)
    assert len(one.page_token_key()) == 32
    assert two.page_token_key() == one.page_token_key()
    assert stores(shared_url).page_token_key() == one.page_token_key()  # (kept: read again)


def test_each_memory_store_has_a_key_of_its_own(stores: Callable[..., Any]) -> None:
    one, two = stores("memory://"), stores("memory://")
    assert one.page_token_key() == one.page_token_key() != two.page_token_key()


def test_a_read_only_store_without_a_key_pages_with_one_of_its_own(
        tmp_path: Path, stores: Callable[..., Any]) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    stores(url).close()
    reading = stores(url, read_only=True)
    key = reading.page_token_key()
    assert reading.page_token_key() == key  # (the same for all its pages)
    # ... written nowhere: the first server to need one makes the store's
    served = stores(url).page_token_key()
    assert served != key and stores(url, read_only=True).page_token_key() == served


def test_another_applications_settings_table_is_not_taken_for_the_stores(
        postgres_databases: Any) -> None:
    """A PostgreSQL database may hold another application's tables beside Footfall's
    (see server/store/copy.py), and `settings` is a common name: migration 12 made its
    table only IF NOT EXISTS, so Footfall started on such a database, took the other
    table for its own, and every console page with a next one answered INTERNAL
    (`column "value" does not exist`), or wrote its key among the other's rows. As a
    table of any other name Footfall uses, it now stops the start, the table left as
    it was, in one line (a DuplicateTable's traceback before)."""
    import psycopg

    url = postgres_databases.create("settings")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE settings (id BIGINT PRIMARY KEY, key TEXT, val TEXT)")
        db.execute("INSERT INTO settings VALUES (1, 'theme', 'dark')")
    with pytest.raises(StoreUnusable, match='"settings" already exists, and is not '
                                            "Footfall's: give Footfall a database of its own"):
        open_store(url).close()
    with psycopg.connect(url) as db:
        assert db.execute("SELECT * FROM settings").fetchall() == [(1, "theme", "dark")]
        assert db.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_a_token_refused_by_a_store_without_a_key_leaves_it_empty(
        tmp_path: Path, stores: Callable[..., Any]) -> None:
    # Checking a stale token (of another store, or of a memory:// server since
    # restarted) made the store's key, a `settings` row: the store, empty but for it,
    # was refused as a target of `footfall copy` ("holds rows"). With no key, no
    # token can be of this store.
    from server.console import queries
    from server.store.copy import copy_store

    url = f"sqlite:///{tmp_path}/events.db"
    stale = page_tokens.signed(KEY, b"1.2.3")
    with pytest.raises(InvalidArgument) as refused:
        queries.list_client_events(stores(url), "projects/p/tenants/t", 10, stale)
    assert refused.value.violations[0].field == "page_token"
    source = f"sqlite:///{tmp_path}/source.db"
    stores(source).close()
    copy_store(source, url)  # (CopyRefused: "the target holds rows already")
