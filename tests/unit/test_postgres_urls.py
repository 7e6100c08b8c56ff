"""PostgreSQL store URLs checked before any connection (postgres.url_problem): no
password in what is said, and the forms libpq takes taken."""

from __future__ import annotations

import pytest

from server.store.postgres import url_problem


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgres://u:p@db.example/shop?sslmode=require",
    # an empty item of a list of ports is the default port (libpq; psql takes it)
    "postgresql://postgres@127.0.0.1:5432,127.0.0.1/db",
])
def test_urls_libpq_takes_are_taken(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(("url", "said"), [
    ("postgresql://footfall:hunter2@[::1]x/shop", 'unexpected character "x"'),
    ("postgresql://footfall:hun%zzter2@127.0.0.1/db", "invalid percent-encoded token"),
    ("postgresql://footfall@127.0.0.1/db?password=hun%zzter2", "invalid percent-encoded"),
    ("postgresql://footfall@127.0.0.1/db?password=hun ter2", "unexpected spaces"),
])
def test_what_libpq_says_of_a_url_shows_no_password(url: str, said: str) -> None:
    problem = url_problem(url)
    assert problem is not None and said in problem, problem
    assert "hun" not in problem and "ter2" not in problem, problem
