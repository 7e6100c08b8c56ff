"""PostgreSQL store URLs checked before any connection (postgres.url_problem): no
password in what is said, and the forms libpq takes taken."""

from __future__ import annotations

import pytest

from server.store.postgres import _createdb_advice, url_problem


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgres://u:p@db.example/shop?sslmode=require",
    # an empty item of a list of ports is the default port (libpq; psql takes it)
    "postgresql://postgres@127.0.0.1:5432,127.0.0.1/db",
    # a password's `?` and `#` are libpq's as they are; an `@` in a query is no password's
    "postgresql://u:p?a#ss@db.example/shop",
    "postgresql://db.example:5432/shop?user=me@corp",
])
def test_urls_libpq_takes_are_taken(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(("url", "said"), [
    ("postgresql://footfall:hunter2@[::1]x/shop", 'unexpected character "x"'),
    ("postgresql://footfall:hun%zzter2@127.0.0.1/db", "invalid percent-encoded token"),
    ("postgresql://footfall@127.0.0.1/db?password=hun%zzter2", "invalid percent-encoded"),
    ("postgresql://footfall@127.0.0.1/db?password=hun ter2", "unexpected spaces"),
    # sslpassword= was not looked for: libpq's words quoted it
    ("postgresql://footfall@127.0.0.1/db?sslpassword=hun%zzter2", "invalid percent-encoded"),
    ("postgresql://footfall@127.0.0.1/db?pass%77ord=hun%zzter2", "invalid percent-encoded"),
    # libpq reads USER:PA/SS@HOST/DB as host USER, port PA: "got 'hun'" was said
    ("postgresql://footfall:hun/ter2@127.0.0.1/db", "a / in its password is written %2F"),
    ("postgresql://footfall:2024/hunter2@127.0.0.1/db", "a / in its password is written %2F"),
])
def test_what_libpq_says_of_a_url_shows_no_password(url: str, said: str) -> None:
    problem = url_problem(url)
    assert problem is not None and said in problem, problem
    assert "hun" not in problem and "ter2" not in problem and "2024" not in problem, problem


@pytest.mark.parametrize(("params", "command"), [
    ({"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "shop"},
     "createdb -h 127.0.0.1 -p 5432 -U postgres shop,"),
    ({"dbname": "shop"}, "createdb shop,"),
    # a name with two spaces in it is said as it is (they were made one)
    ({"dbname": "my  shop"}, "createdb 'my  shop',"),
])
def test_a_database_not_made_is_said_with_the_command_that_makes_it(
        params: dict[str, object], command: str) -> None:
    advice = _createdb_advice(params)
    assert command in advice, advice
    assert f'CREATE DATABASE "{params["dbname"]}"' in advice, advice


def test_a_connect_timeout_that_is_no_number_is_said_in_one_line() -> None:
    """psycopg checks it itself, at connect: `serve` ended in a traceback
    (ProgrammingError: bad value for connect_timeout)."""
    for value in ("abc", "--5", "1.5"):
        problem = url_problem(f"postgresql://postgres@127.0.0.1/db?connect_timeout={value}")
        assert problem == ("PostgreSQL store URL: connect_timeout must be a whole number of "
                           f"seconds, got {value!r}")
    # (what psycopg takes: `+5` was refused here, `--5` let through to its traceback)
    for value in ("5", "+5", "-1"):
        assert url_problem(f"postgresql://postgres@127.0.0.1/db?connect_timeout={value}") is None
