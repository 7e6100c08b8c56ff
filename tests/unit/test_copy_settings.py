"""`footfall copy` reported `settings 1` one way (SQLite to PostgreSQL) and
`settings 0` the other: the table's one row is the key that signs page tokens
(SqlStore.page_token_key), made by the first server that gives a list a next page,
so one store holds it and another not yet, whatever its engine. A copy carries what
the source holds, either way: its key, byte for byte, so that a page token given
before the move still opens its next page after it; or none, and the target makes
its own when it first pages."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from server import page_tokens
from server.store import open_store
from server.store.copy import copied_text, copy_store


@pytest.mark.parametrize("keyed", [True, False], ids=["paged", "never paged"])
@pytest.mark.parametrize("direction", ["sqlite to postgresql", "postgresql to sqlite"])
def test_a_copy_carries_the_key_the_source_holds_in_either_direction(
        direction: str, keyed: bool, tmp_path: Path, postgres_databases: Any) -> None:
    sqlite = f"sqlite:///{tmp_path}/store.db"
    postgres = postgres_databases.create("settings")
    source, target = (sqlite, postgres) if direction.startswith("sqlite") else (postgres, sqlite)
    with closing(open_store(source)) as store:
        key = store.page_token_key() if keyed else None  # (as a server paging a list)
        token = page_tokens.signed(key, b"12.34") if key else None
    copied = copy_store(source, target)
    assert copied["settings"] == (1 if keyed else 0), copied
    assert f"settings {1 if keyed else 0}" in copied_text(copied)
    with closing(open_store(target, read_only=True)) as moved:
        assert moved.page_token_key_if_made() == key
        if token is not None:  # (a console's next page, asked of the new store)
            assert page_tokens.body_of(moved.page_token_key_if_made(), token) == b"12.34"
