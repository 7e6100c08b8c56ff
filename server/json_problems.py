"""Every wrong value of a refused proto3-JSON document, each with its field path.

json_format stops at the first value it cannot read: an event sent as
`{"eventType": 3, "visitorId": true, "eventTime": "yesterday"}` was refused naming
`event_type` alone, and its sender learnt of the next field only by sending again.
`refused` reads a document that a parse has refused once more, field by field, and
gathers what is wrong with each value, in the words and the path spelling of a
refusal of that value alone (protojson.parse_error). It runs only after a refusal:
an accepted document costs nothing more.

Objects of messages (one, a list's, a map's) are walked into; any other value (a
text, a number, a list of them, a Timestamp, a Struct) is a leaf: taken when the
fast path reads it (protojson.reads_field), else parsed alone, `{key: value}` into
a message of its own type, by protojson.parse_into, which says why it is refused.
So each leaf is read once, and a wrong one parsed once more: about what the parse
that refused the document cost. The walk stops once it has found WALKED problems
and sees one more: the answer then counts "more than" the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from server import protojson
from server.errors import MAX_REPORTED_VIOLATIONS, FieldViolation, UnreadValue

# How many problems are kept with their path and reason: no answer lists more (a
# request with 10,000 wrong fields is told of the first and counted the rest).
KEPT = MAX_REPORTED_VIOLATIONS
# How many problems the walk finds at most: past them it stops, and the answer says
# "and more than N other violations". Each costs a parse of its value alone: a body of
# 77 KB with 2,700 wrong values took 23 ms of CPU to refuse, against 6.4 ms to accept,
# and a body of 64 KB or less is read on the event loop.
WALKED = 1_000


class Refusal(protojson.PlacedError):
    """A document's problems: `problems` ((path, reason), proto field paths below
    the message parsed, the first KEPT found in the document's order), `more`, how
    many others were found, and `stopped`: whether the walk stopped at WALKED with
    more to find. As a PlacedError it is the first problem, for a caller that names
    one."""

    def __init__(self, found: _Found, data: Any, descriptor: Descriptor) -> None:
        super().__init__(*found.problems[0])
        self.problems = found.problems
        self.more = found.count - len(found.problems)
        self.stopped = found.stopped
        self._found, self._data, self._descriptor = found, data, descriptor

    def rest(self) -> Any:
        """The document without its wrong values (made when asked: most callers
        only report)."""
        return _without(self._data, self._found.wrong)

    def read(self) -> frozenset[str]:
        """The paths of the values of the document that read as their fields."""
        return frozenset(protojson.proto_path(self._descriptor, names)
                         for names in self._found.read.values())


def refused(error: json_format.ParseError, descriptor: Descriptor,
            data: Any) -> json_format.ParseError:
    """A Refusal holding every problem of `data`, a document refused as a
    `descriptor` message with `error`; `error` itself when the walk finds none
    (what it does not judge: json_format's depth limit)."""
    if type(data) is not dict:
        return error
    found = _Found()
    try:
        _walk(data, descriptor, descriptor, [], found, 0)
    except RecursionError:  # (nesting past json_format's limit or the stack: its error
        return error        # says so)
    except _Enough:
        found.stopped = True
    if not found.count:
        return error
    return Refusal(found, data, descriptor)


def read_around(error: json_format.ParseError, message: Message) -> bool:
    """Whether `error` is a Refusal whose document reads without its wrong values: they
    are then merged into `message` (of the document's type; what a parse that failed
    left in it, its caller clears), for the rules about them to be judged. Not when
    more are wrong than are listed: the rules would not be shown."""
    if not isinstance(error, Refusal) or error.more:
        return False
    try:
        protojson.merge_into(error.rest(), message)
    except (json_format.ParseError, RecursionError):
        return False
    return True


def listed(error: json_format.ParseError, descriptor: Descriptor,
           data: Any = None) -> tuple[list[tuple[str, str]], int]:
    """(path, reason) of each problem `error` stands for, and how many more it
    counts: a Refusal's, else its one (protojson.parse_error)."""
    if isinstance(error, Refusal):
        return error.problems, error.more
    return [protojson.parse_error(error, descriptor, data)], 0


def stopped(error: json_format.ParseError) -> bool:
    """Whether `error` is a Refusal whose walk stopped with more to find: the count
    of `listed` is then a lower bound (errors.unlisted)."""
    return isinstance(error, Refusal) and error.stopped


def beside_unread(rules: Sequence[FieldViolation], found: Sequence[FieldViolation]
                  ) -> list[FieldViolation]:
    """Of the violations `rules` of a message whose JSON had values of the wrong type
    (UnreadValue among `found`), those said beside them: about values that read (in
    each document read around, a REST body and the event it carries as text). A rule
    about a value not given (`is required`) or about the message whole waits for the
    values to read, since whether it holds may hang on the wrong ones (a search
    event's page_categories given as a number leaves it without them). All `rules`
    when no value was left unread."""
    reads = {v.read for v in found if isinstance(v, UnreadValue)}
    if not reads:
        return list(rules)
    return [v for v in rules if all(read_value(v.field, read) for read in reads)]


def read_value(path: str, read: frozenset[str]) -> bool:
    """Whether the field `path` is (or lies in) one of the values `read`."""
    while True:
        if path in read:
            return True
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return False
        path = path[:cut]


# A value of the document: the object holding it (by id) and its key there.
_Place = tuple[int, str]


class _Enough(Exception):
    """Raised out of the walk at the problem past WALKED."""


class _Found:
    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []
        self.count = 0
        self.stopped = False  # (at WALKED, with more to find)
        self.wrong: set[_Place] = set()
        self.read: dict[_Place, list[str]] = {}  # -> its JSON names from the root

    def add(self, problem: tuple[str, str] | None, *places: _Place) -> None:
        if self.count == WALKED:
            raise _Enough
        self.count += 1
        if problem is not None and len(self.problems) < KEPT:
            self.problems.append(problem)
        for place in places:
            self.wrong.add(place)
            self.read.pop(place, None)


def _walk(data: Any, descriptor: Descriptor, root: Descriptor, above: list[str],
          found: _Found, depth: int) -> None:
    """Add the problems of `data`, the JSON of a `descriptor` message that the JSON
    names `above` reach from `root`."""
    message_class = message_factory.GetMessageClass(descriptor)
    fields = protojson.fields_by_any_name(descriptor)
    keys: dict[str, str] = {}  # field name -> the key that gave it
    oneofs: dict[str, str] = {}  # oneof name -> the key that set it
    for key, value in data.items():
        here = (id(data), key)
        field = fields.get(key)
        if field is not None:
            if keys.setdefault(field.name, key) != key:
                found.add((protojson.proto_path(root, [*above, key]),
                           protojson.given_twice(keys[field.name], key)), here)
                continue
            group = field.containing_oneof
            if group is not None and value is not None:
                if group.name in oneofs:  # json_format's words for two of one oneof,
                    # each given a value that reads (else the parse names the first wrong
                    # value in either, the first's once more, and never the two); the
                    # second's own are told below, as the first's were
                    first = oneofs[group.name]
                    _leaf(message_class, {first: _reads_as(message_class, fields[first]),
                                          key: _reads_as(message_class, field)}, descriptor,
                          root, above, found, (id(data), first), here)
                else:
                    oneofs[group.name] = key
            if _walked_into(value, field, root, above, key, found, depth, message_class):
                continue
        if protojson.reads_field(message_class, key, value) or not (
                _wrong_members(message_class, key, value, descriptor, root, above, found,
                               here) if _is_list(field, value)
                else _leaf(message_class, {key: value}, descriptor, root, above, found, here)):
            found.read[here] = [*above, key]


def _reads_as(message_class: type[Message], field: FieldDescriptor) -> Any:
    """A JSON value that reads as `field` of a `message_class` message: its default
    (an empty object for a message, "1970-01-01T00:00:00Z" for a Timestamp)."""
    stand_in = message_class()
    if field.message_type is not None:
        getattr(stand_in, field.name).SetInParent()
    else:
        setattr(stand_in, field.name, field.default_value)
    return json_format.MessageToDict(stand_in, preserving_proto_field_name=True)[field.name]


def _walked_into(value: Any, field: FieldDescriptor, root: Descriptor, above: list[str],
                 key: str, found: _Found, depth: int, message_class: type[Message]) -> bool:
    """Whether `value`, given as `key` of a `message_class` message, holds messages'
    objects (one, a list of them, a map of them), whose problems are then added;
    False: it is a leaf. RecursionError past json_format's depth limit."""
    kind = field.message_type
    if kind is None:
        return False
    entry = protojson.is_map_entry(kind)
    if entry:
        kind = kind.fields_by_name["value"].message_type
        if kind is None or type(value) is not dict:
            return False
    if kind.full_name.startswith("google.protobuf."):
        return False  # a well-known type: its own JSON forms
    if depth >= protojson.MAX_DEPTH:  # (json_format's limit, which a part alone passes)
        raise RecursionError  # (the refusal's own words say so)
    if entry:
        for name, item in value.items():
            if type(item) is dict:
                _walk(item, kind, root, [*above, f"{key}[{name}]"], found, depth + 1)
            else:  # (said of the map in the words of a refusal of it alone)
                _leaf(message_class, {key: {name: item}},
                      cast(Descriptor, message_class.DESCRIPTOR), root, above, found,
                      (id(value), name))
    elif field.is_repeated:
        if type(value) is not list or not all(type(item) is dict for item in value):
            return False
        for i, item in enumerate(value):
            _walk(item, kind, root, [*above, f"{key}[{i}]"], found, depth + 1)
    elif type(value) is dict:
        _walk(value, kind, root, [*above, key], found, depth + 1)
    else:
        return False
    return True


def _is_list(field: FieldDescriptor | None, value: Any) -> bool:
    """Whether `value` is a JSON list given for the repeated `field` (not a map's)."""
    return field is not None and type(value) is list and field.is_repeated and not (
        field.message_type is not None and protojson.is_map_entry(field.message_type))


def _wrong_members(message_class: type[Message], key: str, value: list[Any],
                   descriptor: Descriptor, root: Descriptor, above: list[str],
                   found: _Found, place: _Place) -> bool:
    """Whether the list `value`, given as `key` of a `descriptor` message (at `place`),
    is refused: the problem of each member that is wrong is added, at its index
    (`experiment_ids[1]`, as a list of messages names its members), and the list
    does not read. A member is read alone, as a list of one; the halves of a part of
    the list are read before its members (a refused list of 200,000 texts and one
    number took 0.2 s more to walk member by member, as long as its parse)."""
    def wrong_in(start: int, end: int) -> bool:
        if protojson.reads_field(message_class, key, value[start:end]):
            return False
        if end - start == 1:
            return _leaf(message_class, {key: value[start:end]}, descriptor, root, above,
                         found, place, member=start)
        middle = (start + end) // 2
        return wrong_in(start, middle) | wrong_in(middle, end)  # (both: every member)

    # (each member reads alone: what is wrong, if anything, is the list whole)
    return wrong_in(0, len(value)) or _leaf(message_class, {key: value}, descriptor, root,
                                            above, found, place)


def _leaf(message_class: type[Message], document: dict[str, Any], descriptor: Descriptor,
          root: Descriptor, above: list[str], found: _Found, *places: _Place,
          member: int | None = None) -> bool:
    """Whether `document` (a field or two of a `descriptor` message, the message the
    JSON names `above` reach from `root`, at `places`) is refused; its problem is
    then added. `member`: the document is that member of a list, given alone."""
    try:
        protojson.parse_into(document, message_class())
    except json_format.ParseError as error:
        # (past what is kept, counted only: its path and words are not made)
        found.add(_said(error, descriptor, document, root, above, member)
                  if len(found.problems) < KEPT else None, *places)
        return True
    except RecursionError:  # (nesting past the stack: the parse that refused the
        return True         # document said so)
    return False


def _said(error: json_format.ParseError, descriptor: Descriptor, document: Any,
          root: Descriptor, above: list[str], member: int | None = None) -> tuple[str, str]:
    if isinstance(error, protojson.PlacedError):  # (its path starts at `descriptor`)
        start = protojson.proto_path(root, above)
        path, reason = ".".join(p for p in (start, error.path) if p), error.reason
    else:
        names, reason = protojson.said(error)
        path, reason = protojson.placed_names(descriptor, names, reason, document, root, above)
    if member is None:
        return path, reason
    # a member given alone is the first of its list: named at its own index
    [key] = document
    alone, listed_at = (protojson.proto_path(root, [*above, f"{key}[{index}]"])
                        for index in (0, member))
    after = path[len(alone):] if path.startswith(alone) else ""
    return listed_at + after, reason


def _without(data: Any, wrong: set[_Place]) -> Any:
    """`data` without the values at the places `wrong` (a new object where one is
    left out)."""
    if not wrong:
        return data
    if type(data) is dict:
        return {key: _without(value, wrong) for key, value in data.items()
                if (id(data), key) not in wrong}
    if type(data) is list:
        return [_without(item, wrong) for item in data]
    return data
