"""The filters of ExportUserEvents and ExportProducts (v2beta, v2alpha), parsed.

User events, Google's export grammar where it meets what the store selects:

    filter := ( term ["AND"] )*                 (an empty filter selects all)
    term   := "eventTime" (">" | ">=" | "<" | "<=") STRING   (RFC 3339; one bound
                                                  of each side at most)
            | "eventType" "=" VALUE
            | "eventType" "=" "(" ["NOT"] VALUE ( "OR" ["NOT"] VALUE )* ")"
                                                 (Google's examples, NOT among them)
            | "(" "eventType" "=" VALUE ( "OR" "eventType" "=" VALUE )* ")"
            | "eventsMissingCatalogItems"
    VALUE  := STRING | a bare word such as detail-page-view

As on Google, only joined events (every product found in the catalog; events
naming none count as joined) are exported unless the filter says
eventsMissingCatalogItems, which exports only the others. NOT is taken where
Google's reference says, before a value inside eventType's parentheses
(`eventType = (NOT search)`, its Example 3); elsewhere it is refused.

Products: `productType = primary|variant` and `availability = IN_STOCK|...`,
each alone or as an OR of its values: `availability = (IN_STOCK OR BACKORDER)`,
as Google's examples write it, or `(availability = IN_STOCK OR availability = ...)`.
lastModifiedTime, tags and NOT are refused (the store keeps no modification time).

Every input gives a query or an InvalidArgument naming the filter field, saying at
which character; never another exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from footfall.retail.v2 import product_pb2

from server.retail.purge_filter import (
    Cursor,
    Fail,
    Token,
    checked,
    rfc3339_nanos,
    time_bound,
    tokens,
    unquote,
)
from server.store.rows import EventQuery

MISSING = "eventsMissingCatalogItems"
PRODUCT_TYPES = {"primary": product_pb2.Product.PRIMARY, "variant": product_pb2.Product.VARIANT}
AVAILABILITIES = ("IN_STOCK", "OUT_OF_STOCK", "PREORDER", "BACKORDER")
_REFUSED_PRODUCT_FIELDS = {
    "lastModifiedTime": "Footfall keeps no modification time of products",
    "tag": "tag expressions are not supported by Footfall",
}

_KEYWORDS = ("OR", "AND")  # bare, never a value
_NO_NOT = "NOT is not supported by Footfall; list the values wanted (a OR b)"
_NOT_IN_PARENTHESES = ("NOT is taken inside eventType's parentheses only: "
                       "eventType = (NOT search)")
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>>=|<=|=|>|<|\(|\))
  | (?P<word>[A-Za-z_][A-Za-z0-9_.:-]*)
""", re.VERBOSE)


@dataclass(frozen=True)
class Negated:
    """A value after NOT inside `name = ( ... )`: the term holds for any other."""

    value: Any


class _Terms(Cursor):
    """What both grammars share: tokens, AND between terms, and `name = value`
    terms alone or as a parenthesised OR."""

    fields = ""
    negatable = False  # whether a value inside `name = ( ... )` may follow NOT
    no_not = _NO_NOT  # what a NOT the grammar does not take is told

    def __init__(self, text: str) -> None:
        super().__init__(text, tokens(text, _TOKEN))
        self.seen: set[str] = set()

    def run(self) -> None:
        while (token := self.peek()) is not None:
            if token.kind == "word" and token.text == "AND" and self.pos:
                self.pos += 1
                if self.peek() is None:
                    raise Fail(token.at, "AND must be followed by a term")
            elif token.text == "NOT":
                raise Fail(token.at, self.no_not)
            self.term()

    def term(self) -> None:
        raise NotImplementedError

    def next(self, what: str) -> Token:
        token = self.peek()
        if token is None:
            raise Fail(len(self.text), f"expected {what}, but the filter ends")
        self.pos += 1
        return token

    def values(self, name: str, check: Callable[[Token, str], Any]) -> list[Any]:
        """The values of a `name = VALUE` term, of `name = (VALUE OR VALUE ...)` (as
        Google's examples write it), or of a parenthesised OR of `name = VALUE`
        terms (the opening parenthesis or the name is next); each passed through
        `check`."""
        first = self.next(name)
        if first.text == "(":  # (name = a OR name = b)
            out = [self.one_value(name, check)]
            out += self.more_values(lambda: self.one_value(name, check))
        else:
            self.pos -= 1
            self.name_equals(name)
            token = self.peek()
            if token is not None and token.text == "(":  # name = (a OR b)
                self.pos += 1
                out = [self.parenthesised_value(name, check)]
                out += self.more_values(lambda: self.parenthesised_value(name, check))
            else:
                out = [self.bare_value(name, check)]
        if name in self.seen:
            raise Fail(first.at, f"{name} is given twice; give its values as "
                                 f"{name} = (a OR b)")
        self.seen.add(name)
        return out

    def more_values(self, value: Callable[[], Any]) -> list[Any]:
        """The values after the first of a parenthesised OR, up to its ')'."""
        out = []
        while (token := self.next("OR or ')'")).text != ")":
            if token.text != "OR":
                raise Fail(token.at, self.no_not if token.text == "NOT"
                           else f"expected OR or ')', got {token.text!r}")
            out.append(value())
        return out

    def parenthesised_value(self, name: str, check: Callable[[Token, str], Any]) -> Any:
        """A value inside `name = ( ... )`: a Negated one after NOT where the grammar
        takes it (`negatable`)."""
        token = self.peek()
        if not (self.negatable and token is not None and token.kind == "word"
                and token.text == "NOT"):
            return self.bare_value(name, check)
        self.pos += 1
        again = self.peek()
        if again is not None and again.kind == "word" and again.text == "NOT":
            raise Fail(again.at, f"expected a value for {name}, got 'NOT'")
        return Negated(self.bare_value(name, check))

    def one_value(self, name: str, check: Callable[[Token, str], Any]) -> Any:
        self.name_equals(name)
        return self.bare_value(name, check)

    def name_equals(self, name: str) -> None:
        token = self.peek()
        if token is not None and token.text == "NOT":
            raise Fail(token.at, self.no_not)
        self.take("word", name, (name,))
        self.take("op", f"'=' after {name}", ("=",))

    def bare_value(self, name: str, check: Callable[[Token, str], Any]) -> Any:
        token = self.peek()
        if token is not None and token.text == "NOT":
            raise Fail(token.at, self.no_not)
        value = self.next(f"a value for {name}")
        if value.kind not in ("string", "word") or value.text in _KEYWORDS:
            # (a bare OR or AND is no value: `eventType = (search OR OR)`, a slip,
            # exported the events of a type named OR; quoted, "OR" is one)
            raise Fail(value.at, f"expected a value for {name}, got {value.text!r}")
        return check(value, unquote(value) if value.kind == "string" else value.text)


class _EventTerms(_Terms):
    fields = f"eventTime, eventType, {MISSING}"
    negatable = True
    no_not = _NOT_IN_PARENTHESES

    def __init__(self, text: str, catalog: str) -> None:
        super().__init__(text)
        self.query = EventQuery(catalog, joined=True)
        self.types: frozenset[str] = frozenset()
        self.not_types: frozenset[str] = frozenset()

    def term(self) -> None:
        token = self.peek()
        assert token is not None
        if token.text == "(" or token.text == "eventType":
            values = self.values("eventType", lambda _t, v: v)
            self.types = frozenset(v for v in values if not isinstance(v, Negated))
            self.not_types = frozenset(v.value for v in values if isinstance(v, Negated))
            if len(self.types) == 1 and not self.not_types:  # one type: the store selects it
                self.query = replace(self.query, event_types=tuple(self.types))
        elif token.text == MISSING:
            self.pos += 1
            self.query = replace(self.query, joined=False)
        elif token.text == "eventTime":
            self.pos += 1
            op = self.take("op", "one of > >= < <= after eventTime", (">", ">=", "<", "<="))
            stamp = self.take("string", "a quoted RFC 3339 time")
            side = "after" if op.text.startswith(">") else "before"
            if getattr(self.query, side) is not None:
                raise Fail(op.at, f"eventTime {op.text[0]} is given twice; give one range")
            bound = time_bound(rfc3339_nanos(stamp), op.text in (">=", "<="))
            self.query = replace(self.query, after=bound) if side == "after" \
                else replace(self.query, before=bound)
            after, before = self.query.after, self.query.before
            if after is not None and before is not None and (
                    (before.micros, before.nanos) < (after.micros, after.nanos) or (
                    (before.micros, before.nanos) == (after.micros, after.nanos)
                    and not (before.inclusive and after.inclusive))):
                raise Fail(stamp.at, "the eventTime range is empty")
        else:
            raise Fail(token.at, f"unknown term {token.text!r}; filter on {self.fields}")


@dataclass(frozen=True)
class EventSelection:
    """The events an export writes: those `query` selects, of one of `types` or
    of a type other than one of `not_types` (the literals of an OR, `a OR NOT b`;
    any type when both are empty). A query's type terms are ANDed, so a choice of
    several types, or one by NOT, is checked on each event read."""

    query: EventQuery
    types: frozenset[str] = frozenset()
    not_types: frozenset[str] = frozenset()

    def matches(self, event: Any) -> bool:
        if not self.types and not self.not_types:
            return True
        kind = event.event_type
        return kind in self.types or any(kind != other for other in self.not_types)


@dataclass(frozen=True)
class ProductSelection:
    """Which products an export writes: all, or those of these types/availabilities."""

    types: tuple[int, ...] = ()
    availabilities: tuple[int, ...] = ()

    def matches(self, product: Any) -> bool:
        # unset availability means in stock
        availability = product.availability or product_pb2.Product.IN_STOCK
        return (not self.types or product.type in self.types) and (
            not self.availabilities or availability in self.availabilities)


class _ProductTerms(_Terms):
    fields = "productType, availability"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.selection = ProductSelection()

    def term(self) -> None:
        token = self.peek()
        assert token is not None
        name = token.text
        if name == "(":
            following = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else token
            name = following.text
        if name == "productType":
            types = self.values(name, self._type)
            self.selection = replace(self.selection, types=tuple(types))
        elif name == "availability":
            found = self.values(name, self._availability)
            self.selection = replace(self.selection, availabilities=tuple(found))
        elif name in _REFUSED_PRODUCT_FIELDS:
            raise Fail(token.at, f"{name}: {_REFUSED_PRODUCT_FIELDS[name]}; filter on "
                                 f"{self.fields}")
        else:
            raise Fail(token.at, f"unknown term {name!r}; filter on {self.fields}")

    @staticmethod
    def _type(token: Token, value: str) -> int:
        if value.lower() not in PRODUCT_TYPES:
            raise Fail(token.at, f"productType must be primary or variant, got {value!r}")
        return PRODUCT_TYPES[value.lower()]

    @staticmethod
    def _availability(token: Token, value: str) -> int:
        if value not in AVAILABILITIES:
            raise Fail(token.at, f"availability must be one of {', '.join(AVAILABILITIES)}, "
                                 f"got {value!r}")
        return int(product_pb2.Product.Availability.Value(value))


def parse_events(text: str, catalog: str, field: str = "filter") -> EventSelection:
    """The events of `catalog` an export with filter `text` writes. INVALID_ARGUMENT
    naming `field` for an over-long or malformed filter, saying at which character."""
    def run() -> EventSelection:
        terms = _EventTerms(text, catalog)
        terms.run()
        return EventSelection(terms.query, terms.types, terms.not_types)

    return checked(text, field, run)


def parse_products(text: str, field: str = "filter") -> ProductSelection:
    """The products an export with filter `text` writes. INVALID_ARGUMENT naming
    `field` as parse_events."""
    def run() -> ProductSelection:
        terms = _ProductTerms(text)
        terms.run()
        return terms.selection

    return checked(text, field, run)

