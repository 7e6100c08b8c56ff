"""Where a store URL's passwords are, so that logs, errors and advice never show one.

A store is named by a URL (postgresql://USER:PASSWORD@HOST/DB?password=...), by
libpq's KEY=VALUE string (`host=db password=...`), or, mistakenly, by a PostgreSQL
address without its scheme (`me:pa/ss@db.internal:5432/shop`). A password is hidden
wherever libpq reads one, and wherever its owner plainly meant one that libpq misreads
(`/`, `?`, `#` or `@` unencoded within it): hiding too much costs a log line some
detail; hiding too little puts a password in the log.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote

from server.config import CONNECTION_STRING, SERVER_ADDRESS


def redacted(url: str) -> str:
    """`url` as logs may show it: every password in it becomes *** (see password_spans)."""
    shown, end = [], 0
    for start, stop in password_spans(url):
        shown += [url[end:start], "***"]
        end = stop
    return "".join(shown) + url[end:]


def password_spans(url: str) -> list[tuple[int, int]]:
    """Where the passwords of `url` are, as (start, end), in order, none overlapping:

    - USER:PASSWORD@ before the host, its `/`, `?`, `#`, `:` or `@` unencoded too
      (the user's part ends at the last `@` a host follows, unless that `@` is within
      a KEY=VALUE of the query: postgresql://db:5432/shop?user=me@corp has none);
    - a `password=` or `sslpassword=` parameter (its name percent-encoded too), to
      the next `&` that begins another KEY=VALUE;
    - such a keyword of libpq's KEY=VALUE string, its value quoted or `\\`-escaped;
    - in a PostgreSQL address written without its scheme (see postgres_address), or
      a sqlite:/// path that is one, as in a URL.

    Read as a query, as libpq reads it (its owner may mean it so): USER:PORT/DB?KEY=
    VALUE@HOST..., where the password would be digits, `/`, a name, `?`, a KEY= and
    a value before an `@`."""
    scheme, sep, rest = url.partition("://")
    if not sep or _SCHEME.fullmatch(scheme) is None:
        if (address := postgres_address(url)) is not None:
            return _merged(_address_spans(url, 0, address))
        return [found.span(2) for found in _KEYWORD_PASSWORD.finditer(url)]
    offset = len(scheme) + len(sep)
    if scheme.lower() == "sqlite" and rest.startswith("/"):
        if (address := postgres_address(rest[1:])) is not None:
            return _merged(_address_spans(rest[1:], offset + 1, address))
        return _query_spans(rest, offset, rest.find("?"))  # (a file's path: its query's)
    return _merged(_url_spans(rest, offset))


def without_passwords(text: str, url: str) -> str:
    """`text` (a driver's words, which may quote `url`) with the passwords of `url` (see
    password_spans) blotted out as ***: as written, percent-decoded, and with each
    run of spaces made one space, as a message made one line shows them."""
    written = {url[start:end] for start, end in password_spans(url)}
    forms = written | {unquote(password) for password in written}
    forms |= {" ".join(form.split()) for form in forms}
    for form in sorted(forms - {""}, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def libpq_misreads(url: str) -> bool:
    """Whether libpq reads some of a password of the URL `url` (see password_spans) as
    no password (a user's name, a host, a port, a parameter), which connection errors
    and log lines then name: a `/` in USER:PA/SS@HOST/DB (host USER, port PA), an `@`
    in USER:PA@SS@HOST/DB (libpq's password ends at its first `@`: host SS@HOST), one
    in a query with no `/` before it (HOST?password=PA@SS/DB: user HOST?password=PA),
    an `&` in a parameter's password (?password=PA&SS: parameter SS)."""
    scheme, sep, rest = url.partition("://")
    if not sep or _SCHEME.fullmatch(scheme) is None:
        return False
    offset = len(scheme) + len(sep)
    # The passwords libpq reads: before the first `@` if no `/` comes before it, and
    # in the query after it, each parameter's to its `&`
    at, slash = rest.find("@"), rest.find("/")
    user_end = at if at >= 0 and not 0 <= slash < at else -1
    read = _query_spans(rest, offset, rest.find("?", user_end + 1), to_next_parameter=False)
    if user_end >= 0 and (colon := rest.find(":", 0, user_end)) >= 0:
        read.append((offset + colon + 1, offset + user_end))
    taken = {index for start, end in read for index in range(start, end)}
    return any(index not in taken
               for start, end in password_spans(url) for index in range(start, end))


class Address(NamedTuple):
    """A PostgreSQL server's address written without its scheme (see postgres_address)."""

    user: bool  # a user (and maybe a password) is named before it
    database: bool  # a database is named after it
    user_end: int  # where USER[:PASSWORD] ends (its `@`), the last it may: -1 for none


def postgres_address(text: str) -> Address | None:
    """`text` read as a PostgreSQL server's address written without its scheme, or
    None: SERVER_ADDRESS (HOST:PORT, a user before it, a database after it), or
    USER:PASSWORD@HOST[:PORT][/DB] whose password SERVER_ADDRESS's user cannot hold
    (a `/`, `@` or space) and that names a port or a database. A file's path is none:
    ./NAME, /NAME, a database named as a SQLite file is (run:3@10:30/events.db,
    10:30/footfall.db), or a host alone (backup:monday@home); nor is a URL or libpq's
    KEY=VALUE string."""
    if _SCHEME_PREFIX.match(text) or CONNECTION_STRING.match(text):
        return None
    credentials = _credentials_end(text)
    address = SERVER_ADDRESS.fullmatch(text)
    if address is not None:
        user_end = address.end("user") if address["user"] is not None else -1
        return Address(user_end >= 0, bool(address["database"]),
                       max(user_end, credentials[0] if credentials else -1))
    if credentials is not None:
        return Address(True, bool(credentials[1]["database"]), credentials[0])
    # (a query's `/` or space is no path's: localhost:5432/db?password=a/b)
    address = SERVER_ADDRESS.fullmatch(text.partition("?")[0])
    if address is not None:
        return Address(address["user"] is not None, bool(address["database"]),
                       address.end("user") if address["user"] is not None else -1)
    return None


def _credentials_end(text: str) -> tuple[int, re.Match[str]] | None:
    """The last `@` of `text` read as USER:PASSWORD@HOST[:PORT][/DB] (a port or a
    database named), and the match of what follows it; None if there is none."""
    at = len(text)
    while (at := text.rfind("@", 0, at)) >= 0:
        tail = _HOST_AFTER_PASSWORD.fullmatch(text, at + 1)
        if tail is not None and _USER_COLON.match(text, 0, at) and \
                (tail["port"] is not None or tail["database"] is not None):
            return at, tail
    return None


def _address_spans(text: str, offset: int, address: Address) -> list[tuple[int, int]]:
    """The password spans of an address without its scheme, at `offset`: USER:PASSWORD
    to the last `@` it may end at, and its query's, wherever it may begin (as a URL's
    are read, its `@` may be a query's: either is hidden, the text being refused)."""
    spans = []
    if address.user_end >= 0 and (colon := text.find(":", 0, address.user_end)) >= 0:
        spans.append((offset + colon + 1, offset + address.user_end))
    for query in {text.find("?"), text.find("?", address.user_end + 1)}:
        spans += _query_spans(text, offset, query)
    return spans


def _url_spans(rest: str, offset: int) -> list[tuple[int, int]]:
    """The password spans of a URL whose text after `SCHEME://` is `rest`, at `offset`."""
    spans = []
    end = _user_part_end(rest)
    if end >= 0 and (colon := rest.find(":", 0, end)) >= 0:
        spans.append((offset + colon + 1, offset + end))
    # Its query where libpq finds it (a password's `?` may begin one when no `/` comes
    # before: postgresql://HOST?password=A@B is user HOST?password=A, host B), and
    # where it is meant, after the host
    for query in {rest.find("?"), rest.find("?", end + 1)}:
        spans += _query_spans(rest, offset, query)
    return spans


def _user_part_end(rest: str) -> int:
    """Where USER[:PASSWORD] ends in `rest` (a URL after its SCHEME://): the `@` after
    it, or -1 when there is none.

    libpq takes the first `@`, and only when no `/` comes before it: a password with a
    `/` or `@` unencoded was meant, and is hidden, to the last `@` a host follows
    (HOST[:PORT][,HOST...] then a `/`, a `?` or the end), unless that `@` is in a
    KEY=VALUE of the query that the URL read to there has (postgresql://HOST:5432/
    DB?user=me@corp, ...?password=A@B)."""
    ats = [index for index, char in enumerate(rest) if char == "@"]
    if not ats:
        return -1
    slash = rest.find("/")
    # (-1: the URL as libpq reads it, a host list before its first `/`, no user part;
    # None: no reading yet)
    end = -1 if 0 <= slash < ats[0] and _HOST_LIST.fullmatch(rest, 0, slash) else None
    for at in ats:
        if end is not None and _in_query_value(rest, end, at):
            break
        if _HOSTS_AFTER_USER.match(rest, at + 1):
            end = at
    return ats[-1] if end is None else end


def _in_query_value(rest: str, user_end: int, at: int) -> bool:
    """Whether the `@` at `at` is within a KEY=VALUE of the query of `rest` read with
    its user part ending at `user_end` (-1: none; its hosts and path hold no `?`)."""
    query = rest.find("?", user_end + 1, at)
    if query < 0:
        return False
    parameter = max(query, rest.rfind("&", query, at)) + 1
    return _PARAMETER_NAME.match(rest, parameter, at) is not None


def _query_spans(rest: str, offset: int, query: int, *,
                 to_next_parameter: bool = True) -> list[tuple[int, int]]:
    """The values of the password parameters of the query whose `?` is at `query` in
    `rest` (-1: none), at `offset`: each to its `&`, or to the `&` that begins the next
    KEY=VALUE with `to_next_parameter` (libpq refuses a parameter without `=`, quoting
    it: one after a password's `&` was meant as the password's)."""
    if query < 0:
        return []
    spans = []
    parameters = rest[query + 1:].split("&")
    at = offset + query + 1
    for index, parameter in enumerate(parameters):
        name, equals, _ = parameter.partition("=")
        if equals and unquote(name).strip().lower() in _PASSWORD_NAMES:
            stop = at + len(parameter)
            for following in parameters[index + 1:]:
                if "=" in following or not to_next_parameter:
                    break
                stop += 1 + len(following)
            spans.append((at + len(name) + 1, stop))
        at += len(parameter) + 1
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        elif start < end:
            merged.append((start, end))
    return merged


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A host of a URL's host list, as libpq ends it (at `:`, `/`, `?`, `,`)
_HOST = r"(?:\[[^\]@/?]*\]|[^@/?:,\[\]]*)"
# ... where libpq reads a host list (ports of digits, or none)
_HOST_LIST = re.compile(rf"{_HOST}(?::[0-9]*)?(?:,{_HOST}(?::[0-9]*)?)*")
# ... after the user's `@`: a host list, then its path, its query or the end
_HOSTS_AFTER_USER = re.compile(rf"{_HOST}(?::[^@/?,]*)?(?:,{_HOST}(?::[^@/?,]*)?)*(?:[/?]|$)")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_%]*=")
_PASSWORD_NAMES = frozenset({"password", "sslpassword"})
# USER: of an address without its scheme (a user's `@` unencoded too: me@corp:PASSWORD@)
_USER_COLON = re.compile(r"[^:/\s]*:")
# HOST[:PORT][/DB] after USER:PASSWORD@, as SERVER_ADDRESS's
_HOST_AFTER_PASSWORD = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/(?P<database>(?![^/\s]*\.(?i:db|db3|sqlite|sqlite3)$)[^/\s]*))?")
# (a KEY=VALUE string's value may be quoted, `\'` within, or not, `\ ` within, ending at
# an ASCII space as libpq's does (a space of Unicode's is the value's); `?` and `&`
# before the name: a server's address given a query)
_KEYWORD_PASSWORD = re.compile(
    r"((?:^|[?&\s])(?:ssl)?password[ \t\n\r\f\v]*=[ \t\n\r\f\v]*)"
    r"('(?:[^'\\]|\\.)*'?|(?:[^ \t\n\r\f\v\\]|\\.)*\\?)", re.IGNORECASE | re.DOTALL)
