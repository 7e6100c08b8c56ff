"""A store URL's password is never said: for passwords of every awkward character, in
every form a store is named by, what logs and errors show of it (redacted, located,
open_store's refusals, what is said of a PostgreSQL URL before connecting) holds no
run of 3 of its characters that the rest of the URL does not hold too."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from server.config import store_url_of
from server.store import located, open_store, postgres_url_problem, redacted

# A password's characters: those a URL or libpq gives a meaning to, a space (and one
# of Unicode's, no space to libpq), others of Unicode, and letters and digits that no
# refusal's words hold three of in a row ("reads" holds "ead"). Not `=` nor `&`: a
# password DIGITS/DB?KEY=VALUE before an `@` reads as a query (see password_spans).
ALPHABET = "qxzjQXZJ0789" + "/?#@:% " + "é€ü\u2003😀"
PASSWORDS = st.text(alphabet=ALPHABET, min_size=3, max_size=14)

# The URL around a password: scheme, user, host, port, database, query
SCHEMES = ("postgresql://", "postgres://")
USERS = ("me", "", "first.last")
HOSTS = ("db.internal", "127.0.0.1", "[::1]", "h1:5432,h2")
PORTS = ("", ":5432")
DATABASES = ("", "/shop")
QUERIES = ("", "?sslmode=require", "?user=a@b", "?application_name=x&sslmode=require")


def parts() -> st.SearchStrategy[tuple[str, str, str, str, str]]:
    return st.tuples(st.sampled_from(USERS), st.sampled_from(HOSTS), st.sampled_from(PORTS),
                     st.sampled_from(DATABASES), st.sampled_from(QUERIES))


def said_none_of(password: str, url: tuple[str, str, str], *said: str) -> None:
    """Assert that no text in `said` holds a run of 3 characters of the password (as it
    is, and as written in `url`, its text before, as written, and after) that is not
    in the rest of the URL too (nor one of punctuation and spaces alone, nor one as
    written with a `%`: ` @ ` and `%40` are in the words of refusals; nor %00, the one
    value libpq forbids, which it names)."""
    before, written, after = url
    rest = f"{before}\0{after}"
    for form in {password, written}:
        for start in range(len(form) - 2):
            run = form[start:start + 3]
            if not any(char.isalnum() or not char.isascii() for char in run) or \
                    form is not password and "%" in run or run == "%00":
                continue
            for text in said:
                assert run not in text or run in rest, ("".join(url), text, run)


@settings(max_examples=300, deadline=None)
@given(PASSWORDS, st.sampled_from(SCHEMES), parts(), st.booleans())
@example("12/s?s", "postgresql://", ("u", "h", "", "/db", ""), False)
@example("a@b/c", "postgresql://", ("me", "host", "", "/db", ""), False)
@example("a@b?c", "postgresql://", ("me", "host", "", "/db", "?user=x@y"), False)
@example("00%\u2003", "postgresql://", ("me", "db.internal", "", "", ""), False)
@example("%a0", "postgresql://", ("me", "db.internal", "", "", ""), False)
def test_a_password_before_the_host_is_never_said(
        password: str, scheme: str, url_parts: tuple[str, str, str, str, str],
        encoded: bool) -> None:
    user, host, port, database, query = url_parts
    url = (f"{scheme}{user}:", quote(password, safe="") if encoded else password,
           f"@{host}{port if ',' not in host else ''}{database}{query}")
    said_none_of(password, url, redacted("".join(url)), located("".join(url)),
                 postgres_url_problem("".join(url)) or "")
    # (a scheme mistyped is refused quoting the URL)
    mistyped = (url[0].replace("postgres", "postgress", 1), *url[1:])
    with pytest.raises(ValueError, match="unknown store URL") as told:
        open_store("".join(mistyped))
    said_none_of(password, mistyped, str(told.value))


@settings(max_examples=200, deadline=None)
@given(PASSWORDS, st.sampled_from(("password", "sslpassword", "pass%77ord")),
       st.sampled_from(("me@", "me:other@", "")), parts(), st.booleans(), st.booleans())
@example("a@b/c", "password", "", ("", "h", "", "", ""), False, True)
def test_a_password_of_a_query_is_never_said(
        password: str, name: str, user: str, url_parts: tuple[str, str, str, str, str],
        encoded: bool, last: bool) -> None:
    _, host, port, database, query = url_parts
    others = query[1:]
    url = (f"postgresql://{user}{host}{port if ',' not in host else ''}{database}?"
           f"{others + '&' if others else ''}{name}=",
           quote(password, safe="") if encoded else password,
           "" if last else "&connect_timeout=5")
    said_none_of(password, url, redacted("".join(url)), located("".join(url)),
                 postgres_url_problem("".join(url)) or "")


def quoted(password: str) -> str:
    """`password` as a value of libpq's KEY=VALUE string, in quotes."""
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def escaped(password: str) -> str:
    """`password` as an unquoted value of libpq's KEY=VALUE string."""
    return re.sub(r"^'|[ \t\n\r\f\v\\]", lambda found: "\\" + found[0], password)


@settings(max_examples=200, deadline=None)
@given(PASSWORDS, st.sampled_from(("password", "sslpassword")),
       st.sampled_from(("=", " = ")), st.sampled_from((quoted, escaped)),
       st.sampled_from(("first", "between", "last")))
@example("a b\u2003cd", "password", "=", escaped, "between")
def test_a_password_of_a_key_value_string_is_never_said(
        password: str, keyword: str, equals: str, spelled: Callable[[str], str],
        where: str) -> None:
    around = {"first": ("", " host=db.internal dbname=shop"),
              "between": ("host=db.internal ", " dbname=shop"),
              "last": ("host=db.internal dbname=shop ", "")}[where]
    url = (f"{around[0]}{keyword}{equals}", spelled(password), around[1])
    with pytest.raises(ValueError, match="KEY=VALUE connection string") as told:
        open_store(store_url_of("".join(url)))
    said_none_of(password, url, redacted("".join(url)), str(told.value))


@settings(max_examples=200, deadline=None)
@given(PASSWORDS.filter(lambda password: not password.startswith("//")),
       st.sampled_from(("me", "", "postgres", "me@corp")),
       st.sampled_from(("db.internal:5432", "db.internal:5432/shop", "db.internal/shop",
                        "[::1]:5432/shop", "db.internal:5432/shop?sslmode=require")))
@example("pa/ss", "me", "host:5432/db")
def test_a_postgresql_address_without_its_scheme_is_refused_saying_no_password(
        password: str, user: str, address: str) -> None:
    # (`//` after `me:` reads as the URL me://..., a store no backend takes, refused
    # quoting it)
    url = (f"{user}:", password, f"@{address}")
    for given_ in ("".join(url), store_url_of("".join(url)), f"sqlite:///{''.join(url)}"):
        with pytest.raises(ValueError, match="that is a server's address") as told:
            open_store(given_)
        said_none_of(password, url, str(told.value))
    said_none_of(password, url, redacted("".join(url)))


@settings(max_examples=200, deadline=None)
@given(PASSWORDS)
def test_a_password_of_an_address_query_is_refused_saying_no_password(password: str) -> None:
    url = ("localhost:5432/db?password=", password, "")
    with pytest.raises(ValueError, match="that is a server's address") as told:
        open_store(store_url_of("".join(url)))
    said_none_of(password, url, str(told.value), redacted("".join(url)))


@pytest.mark.parametrize(("url", "shown"), [
    # a password's `/` then `?` before its `@`: libpq's host USER, port 12, database S,
    # and a query parameter with no `=`, which it refuses; the password was shown whole
    ("postgresql://u:12/s?s@h/db", "postgresql://u:***@h/db"),
    # an `@` followed by `/`, `?` or `#` within the password: what followed it was shown
    ("postgresql://me:a@b/c@host/db", "postgresql://me:***@host/db"),
    ("postgresql://me:a@b?c@host/db?user=x@y", "postgresql://me:***@host/db?user=x@y"),
    ("postgresql://me:a@b#c@host/db", "postgresql://me:***@host/db"),
    # a query's password with an `@` and no path: libpq reads user HOST?password=A
    ("postgresql://h?password=a@b", "postgresql://h?password=***"),
    # a password parameter's `&` unencoded, a parameter with no `=` after it
    ("postgresql://h/db?password=s3&cret&sslmode=require",
     "postgresql://h/db?password=***&sslmode=require"),
    # a KEY=VALUE value's escaped space, and one of Unicode's (no space to libpq)
    ("host=h password=s3\\ cret dbname=shop", "host=h password=*** dbname=shop"),
    ("host=h password=s3\u2003cret dbname=shop", "host=h password=*** dbname=shop"),
    # an address without its scheme: as a URL's
    ("me:pa/ss@host:5432/db", "me:***@host:5432/db"),
    ("localhost:5432/db?password=s3/cret", "localhost:5432/db?password=***"),
    ("sqlite:///me:pa/ss@host:5432/db", "sqlite:///me:***@host:5432/db"),
    ("sqlite:///x.db?password=s3cret", "sqlite:///x.db?password=***"),
    ("memory://me:s3cret@x", "memory://me:***@x"),
    # no password: as it is (a query's `@` is no user's; a SQLite path is a file's)
    ("postgresql://db.internal:5432/shop?user=me@corp&sslmode=require",
     "postgresql://db.internal:5432/shop?user=me@corp&sslmode=require"),
    ("sqlite:///run:3@10:30/events.db", "sqlite:///run:3@10:30/events.db"),
    ("sqlite:///./me:pa/ss@host:5432/db", "sqlite:///./me:pa/ss@host:5432/db"),
])
def test_every_shape_of_a_password_is_hidden(url: str, shown: str) -> None:
    assert redacted(url) == shown


@pytest.mark.parametrize("given", [
    "me:pa/ss@db.internal:5432/shop", "me:pa ss@db.internal:5432/shop",
    "me:pa@ss@db.internal:5432/shop", "me@corp:pass@db.internal/shop",
    "postgres:pass@db.internal:5432/shop",  # (the user's name is a store's scheme)
    "me:pa/ss@db.internal:5432/shop?sslmode=require"])
def test_a_postgresql_address_without_its_scheme_is_no_sqlite_file(
        given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # It was served as a SQLite file of that name (a folder `me:pa`, ...), the password
    # in the start line; refused as an address is, the URL it names said, redacted.
    monkeypatch.chdir(tmp_path)
    for url in (store_url_of(given), given):
        with pytest.raises(ValueError, match="that is a server's address") as told:
            open_store(url)
        assert "pa" not in str(told.value).replace("PostgreSQL", ""), told.value
        assert "a PostgreSQL database there is postgresql://" in str(told.value), told.value
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("path", [
    "backup:monday.db", "run:3@10:30/events.db", "10:30/footfall.db",
    "snapshot:2024-06-01@10:30.db", "me@laptop/events", "backup:monday@home",
    "./me:pa/ss@db.internal:5432/shop"])
def test_a_sqlite_path_with_a_colon_and_an_at_is_still_a_file(
        path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_store(store_url_of(path)).close()
    assert (tmp_path / path).is_file()


def test_backup_restore_and_copy_refuse_an_address_saying_no_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each took it for a SQLite file's path: backup wrote its copy to a file of that
    # name, restore put the backup in place there, and said so, password and all.
    from server.store.backup import BackupRefused, backup, backup_file
    from server.store.copy import copy_store
    from server.store.restore import restore

    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///live.db").close()
    given = "me:pa/ss@db.internal:5432/shop"
    with pytest.raises(BackupRefused, match="a backup is a SQLite file") as told:
        backup_file(given)
    refusals = [str(told.value)]
    for attempt in (lambda: backup(store_url_of(given), "out.db"),
                    lambda: restore("live.db", store_url_of(given)),
                    lambda: copy_store("sqlite:///live.db", store_url_of(given))):
        with pytest.raises(ValueError, match="that is a server's address") as told:
            attempt()
        refusals.append(str(told.value))
    for said in refusals:
        assert "pa/ss" not in said and "me:***@db.internal:5432/shop" in said, said
    assert not [path for path in tmp_path.iterdir() if not path.name.startswith("live.db")]


def test_the_start_line_shows_no_password_of_a_sqlite_url() -> None:
    # (a SQLite URL's query is refused, quoting it; the start line shows the rest)
    assert located("sqlite:////srv/x.db?password=s3cret") == "sqlite:////srv/x.db?password=***"
    assert located("postgresql://me:s3/cr@et@db/shop") == "postgresql://me:***@db/shop"
