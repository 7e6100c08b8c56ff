"""Google's user-event filter grammar (purge, and `footfall events`), parsed to a query.

    filter  := term ( ["AND"] term )*
    term    := ("eventType" | "visitorId" | "userId") "=" STRING
             | "eventType" "=" WORD          (left bare: eventType=search, as Google takes it)
             | "eventTime" (">" | ">=" | "<" | "<=") STRING        (RFC 3339)
             | ("event_time" | "eventTime") ":" "[" STRING "," STRING "]"
                                  (an extension: an inclusive range, from the seed docs;
                                  one that ends before it starts selects nothing)

Every input gives a query or an InvalidArgument that names the filter field and
says at which character the problem is; never another exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from google.protobuf import timestamp_pb2

from server import near_names, protojson
from server.errors import InvalidArgument
from server.retail.validation import too_long
from server.store.rows import EventQuery, TimeBound

MAX_FILTER_CHARS = 5_000
T = TypeVar("T")
STRING_FIELDS = {"eventType": "event_types", "visitorId": "visitor_ids", "userId": "user_ids"}
TIME_FIELDS = ("eventTime", "event_time")

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>>=|<=|=|>|<|:|\[|\]|,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_-]*)
""", re.VERBOSE)  # a word may hold "-" so that a value left bare (home-page-view) is one word


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    at: int


class Fail(Exception):
    def __init__(self, at: int, why: str) -> None:
        self.at, self.why = at, why


def tokens(text: str, pattern: re.Pattern[str] = _TOKEN) -> list[Token]:
    """`text` as the tokens `pattern` (named groups; `space` is skipped) finds;
    Fail at the first character it does not take."""
    found, broken = tokens_until_broken(text, pattern)
    if broken is not None:
        raise broken
    return found


def tokens_until_broken(text: str, pattern: re.Pattern[str] = _TOKEN
                        ) -> tuple[list[Token], Fail | None]:
    """The tokens of `text` up to the first character `pattern` does not take, and
    the Fail that says so (None when it takes them all)."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        match = pattern.match(text, pos)
        if match is None:
            return out, Fail(pos, f"unexpected character {text[pos]!r}{_advice(text, pos)}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append(Token(kind, match.group(), pos))
        pos = match.end()
    return out, None


def _advice(text: str, pos: int) -> str:
    """What to write instead, for a character no token starts with: a value left
    bare or in single quotes, or an operator the grammar does not have."""
    if text[pos] == "'" or text[pos].isdigit():
        return ': values go in double quotes, times too (eventTime > "2024-01-31T23:59:59Z")'
    if text.startswith("!=", pos):
        return ": '!=' is not in the grammar: a term selects what equals its value"
    return ""


def unquote(token: Token) -> str:
    """The text of a quoted value; Fail for one holding a NUL, which no stored id or
    type holds (validation refuses it) and PostgreSQL's text cannot: the store
    writes it as U+FFFD, so it selected (and purged) what another value names."""
    value = re.sub(r"\\(.)", r"\1", token.text[1:-1])
    if "\0" in value:
        raise Fail(token.at, "a value must not hold a NUL character (U+0000)")
    return value


def rfc3339_nanos(token: Token) -> int:
    """Nanoseconds since the epoch of a quoted RFC 3339 time."""
    stamp = timestamp_pb2.Timestamp()
    text = unquote(token)
    offset = protojson.offset_problem(text)
    if offset is not None:
        raise Fail(token.at, f"{token.text} is not an RFC 3339 time: {offset}")
    try:
        stamp.FromJsonString(text)
    except ValueError:
        raise Fail(token.at, f"{token.text} is not an RFC 3339 time such as "
                              '"2024-01-31T23:59:59Z"') from None
    return stamp.seconds * 1_000_000_000 + stamp.nanos


def time_bound(nanos: int, inclusive: bool) -> TimeBound:
    return TimeBound.at(nanos // 1_000_000_000, nanos % 1_000_000_000, inclusive)


class Cursor:
    """A filter's tokens and how far a parse has read them (every filter grammar
    reads this way)."""

    def __init__(self, text: str, tokens: list[Token], broken: Fail | None = None) -> None:
        self.text = text
        self.tokens = tokens
        self.broken = broken  # what ends `tokens` before the text ends
        self.pos = 0

    def peek(self) -> Token | None:
        """The next token; None at the end; `broken` where the tokens end before the
        text does (so that a mistake before that character is said first)."""
        if self.pos < len(self.tokens):
            return self.tokens[self.pos]
        if self.broken is not None:
            raise self.broken
        return None

    def quoted_value(self, field: str) -> str:
        """The quoted value after `field =`; Fail for a value left bare, saying how
        to write it."""
        token = self.peek()
        if token is not None and token.kind == "word":
            raise Fail(token.at, f"expected a quoted value for {field}, got {token.text!r}: "
                                 f'write {field} = "{token.text}"')
        return unquote(self.take("string", f"a quoted value for {field}"))

    def take(self, kind: str, what: str, texts: tuple[str, ...] = ()) -> Token:
        """The next token, which must be of `kind` (and one of `texts`); Fail
        saying `what` was expected otherwise."""
        token = self.peek()
        if token is None:
            raise Fail(len(self.text), f"expected {what}, but the filter ends")
        if token.kind != kind or (texts and token.text not in texts):
            raise Fail(token.at, f"expected {what}, got {token.text!r}")
        self.pos += 1
        return token


class Parser(Cursor):
    """The grammar above; a subclass adds fields through `other_term`."""

    fields = "eventType, visitorId, userId, eventTime"

    def __init__(self, text: str, catalog: str) -> None:
        super().__init__(text, *tokens_until_broken(text))
        self.query = EventQuery(catalog)

    def parse(self) -> EventQuery:
        if not self.tokens and self.broken is None:
            raise Fail(0, "is empty; name the events to select, e.g. "
                           'eventType = "detail-page-view"')
        self.term()
        while self.peek() is not None:
            token = self.peek()
            if token is not None and token.kind == "word" and token.text == "AND":
                self.pos += 1
            self.term()
        return self.query

    def term(self) -> None:
        name = self.take("word", f"a field ({self.fields})")
        if name.text in STRING_FIELDS:
            self.take("op", f"'=' after {name.text}", ("=",))
            value = self.bare_event_type() if name.text == "eventType" \
                else self.quoted_value(name.text)
            attribute = STRING_FIELDS[name.text]
            current: tuple[str, ...] = getattr(self.query, attribute)
            self.query = replace(self.query, **{attribute: (*current, value)})  # type: ignore[arg-type]
        elif name.text in TIME_FIELDS:
            op = self.take("op", f"one of > >= < <= or ':' after {name.text}",
                           (">", ">=", "<", "<=", ":"))
            if op.text == ":":
                self.range()
            elif name.text != "eventTime":
                raise Fail(name.at, "use eventTime with > >= < <=")
            else:
                nanos = rfc3339_nanos(self.take("string", "a quoted RFC 3339 time"))
                inclusive = op.text in (">=", "<=")
                if op.text.startswith(">"):
                    self.bound_after(time_bound(nanos, inclusive))
                else:
                    self.bound_before(time_bound(nanos, inclusive))
        elif name.text in ("OR", "NOT"):
            raise Fail(name.at, f"{name.text} is not in the grammar: terms one after another "
                                "(or joined by AND) must all hold")
        elif not self.other_term(name):
            raise Fail(name.at, f"unknown field {name.text!r}{self.spelled_as(name.text)}; "
                                f"filter on {self.fields}")

    def spelled_as(self, text: str) -> str:
        """" (did you mean visitorId?)" when `text` is a field of the grammar in another
        case or in snake_case (`visitor_id`, `VisitorID`, the column's and the proto's
        spellings), or looks like one word by word (`visitor`, `event_timestamp`:
        server.near_names), else "": the list alone left the one letter that differs to
        the eye."""
        fields = self.fields.split(", ")
        camel = re.sub(r"_+(.)", lambda m: m.group(1).upper(), text).lower()
        near = [f for f in fields if f.lower() == camel] or [
            f for f in [near_names.nearest(text, fields)] if f is not None]
        return f" (did you mean {near[0]}?)" if near else ""

    def bare_event_type(self) -> str:
        """The value after `eventType =`, quoted or bare (`eventType=search`: Google's
        own purge refusal lists it among valid filters, as its export filter takes it)."""
        token = self.peek()
        if token is not None and token.kind == "word":
            self.pos += 1
            return token.text
        return self.quoted_value("eventType")

    def other_term(self, name: Token) -> bool:
        """Parse the term of field `name` that the grammar above does not know, if
        it is one this parser adds (False: it is not)."""
        return False

    def range(self) -> None:
        self.take("op", "'['", ("[",))
        start = rfc3339_nanos(self.take("string", "a quoted RFC 3339 start time"))
        self.take("op", "','", (",",))
        end = rfc3339_nanos(self.take("string", "a quoted RFC 3339 end time"))
        self.take("op", "']'", ("]",))
        # One that ends before it starts selects nothing, as the same bounds written
        # with >= and <= do (Google's form, which Google documents no refusal of)
        self.bound_after(time_bound(start, True))
        self.bound_before(time_bound(end, True))

    def bound_after(self, bound: TimeBound) -> None:
        old = self.query.after
        if old is None or ((bound.micros, bound.nanos, not bound.inclusive)
                           > (old.micros, old.nanos, not old.inclusive)):
            self.query = replace(self.query, after=bound)

    def bound_before(self, bound: TimeBound) -> None:
        old = self.query.before
        if old is None or ((bound.micros, bound.nanos, bound.inclusive)
                           < (old.micros, old.nanos, old.inclusive)):
            self.query = replace(self.query, before=bound)


def parse(text: str, catalog: str, field: str = "filter") -> EventQuery:
    """The EventQuery `text` selects in `catalog`.

    Raises INVALID_ARGUMENT naming `field` for an empty, over-long or malformed
    filter, saying at which character.
    """
    return checked(text, field, lambda: Parser(text, catalog).parse())


def checked(text: str, field: str, run: Callable[[], T]) -> T:
    """`run()`, which parses `text`: INVALID_ARGUMENT naming `field` for a `text`
    that is too long, or a Fail of the parse."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidArgument([too_long(field, text, MAX_FILTER_CHARS)])
    try:
        return run()
    except Fail as fail:
        if fail.why.startswith("is empty"):
            raise InvalidArgument.field(field, fail.why) from None
        raise InvalidArgument.field(field, f"at character {fail.at + 1}: {fail.why}") from None
