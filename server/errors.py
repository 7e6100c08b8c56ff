"""Domain errors and the one place that turns them into gRPC statuses.

Every error a client can cause is a `FootfallError` subclass with a fixed status
code; `to_rpc_status` adds the matching `google.rpc` detail (BadRequest,
ResourceInfo, RetryInfo, ...). Servicers raise; they never set codes themselves.
"""

from __future__ import annotations

import itertools
import logging
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request (`user_event.visitor_id`) and why."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


# The characters of a map's key that a violation's path repeats.
MAX_KEY_SHOWN = 50


def entry_path(path: str, key: str) -> str:
    """The path of the entry `key` of the map at `path`, in every message alike (the
    rules' and the JSON reader's): `user_event.attributes['colour']`. Quoted, since
    a key may hold `.` or `]`; one of over MAX_KEY_SHOWN characters is shortened."""
    return f"{path}[{key[:MAX_KEY_SHOWN]!r}]"


@dataclass(frozen=True)
class UnreadValue(FieldViolation):
    """A value of a JSON document that does not read as its field, the rest of which
    was read: `read`, the paths of the values that did (the same set for each of one
    document's), whose rules may be judged beside it."""

    read: frozenset[str] = frozenset()


class FootfallError(Exception):
    """Base of every error a client can cause; `code` is its gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[Message]:
        """The google.rpc detail messages that go with the status."""
        return []


# A request can break a rule a million times over (a 10 MiB event of empty
# attribute texts): an answer names the first violations and counts the rest.
MAX_REPORTED_VIOLATIONS = 100
# Descriptions may quote what the client sent (`got 'xxx...'`): each field path
# and description is cut to this many characters in what is reported.
MAX_REPORTED_CHARS = 1_000
MORE_VIOLATIONS = "and {} more violation{}"
# The same, of violations past a search that stopped short (see unlisted): a lower bound.
MORE_THAN_VIOLATIONS = "and more than {} other violation{}"


def _clipped(text: str) -> str:
    return text if len(text) <= MAX_REPORTED_CHARS else text[:MAX_REPORTED_CHARS - 3] + "..."


# What stands for a violation found past what any answer lists: counted, never shown
# (an answer shows the first MAX_REPORTED_VIOLATIONS), and one object however many.
_UNLISTED = FieldViolation("", "one more violation, not listed")
# What stands for the violations a search stopped short of (json_problems stops past
# WALKED): no violation itself, it makes the count of those left out a lower bound.
_UNCOUNTED = FieldViolation("", "more violations, not looked for")


def unlisted(count: int, stopped: bool = False) -> list[FieldViolation]:
    """`count` violations found and not kept, to go after the listed ones: they
    count in "and N more violations"; "and more than N other violations" when the
    search for them `stopped` before the end."""
    return [_UNLISTED] * count + ([_UNCOUNTED] if stopped else [])


def uncounted(violations: Sequence[FieldViolation]) -> bool:
    """Whether `violations` end a search that stopped short (see unlisted). (Compared
    in C: a request may break a rule hundreds of thousands of times.)"""
    return any(map(operator.is_, violations, itertools.repeat(_UNCOUNTED)))


def more_violations(count: int, stopped: bool = False) -> FieldViolation:
    """The entry that stands for `count` violations left out (field "": the request),
    and more not counted when the search for them `stopped`."""
    words = MORE_THAN_VIOLATIONS if stopped else MORE_VIOLATIONS
    return FieldViolation("", words.format(count, "" if count == 1 else "s"))


def summary(violations: Sequence[FieldViolation], limit: int = MAX_REPORTED_VIOLATIONS,
            max_chars: int | None = None, stopped: bool | None = None) -> str:
    """`a: why; b: why; and 39900 more violations`: the first `limit` violations (as
    many as fit in `max_chars`, but at least one; each field and description cut to
    MAX_REPORTED_CHARS) and how many were left out ("and more than N other
    violations" when a search for them `stopped`: see uncounted, asked when None).
    Linear in what it shows, whatever the number of violations (but for that
    question, asked in C)."""
    shown: list[str] = []
    used = 0
    reserve = len(MORE_THAN_VIOLATIONS) + 24  # "; " and the count
    for violation in violations[:limit]:
        text = (f"{_clipped(violation.field)}: " if violation.field else "") \
            + _clipped(violation.description)  # (field "": the request as a whole)
        if max_chars is not None and shown and used + len(text) + 2 > max_chars - reserve:
            break
        shown.append(text)
        used += len(text) + 2
    if stopped is None:
        stopped = uncounted(violations)
    left_out = len(violations) - len(shown) - stopped  # (its marker is no violation)
    if left_out or stopped:
        shown.append(more_violations(left_out, stopped).description)
    return "; ".join(shown)


class InvalidArgument(FootfallError):
    """INVALID_ARGUMENT naming every violation up to MAX_REPORTED_VIOLATIONS, the
    rest counted ("and N more violations"); the same in a BadRequest detail."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        self.violations = list(violations)  # all of them, for callers that merge lists
        self.stopped = uncounted(self.violations)
        super().__init__(summary(self.violations, stopped=self.stopped))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])

    def shorter_message(self, max_chars: int) -> str:
        """The message cut to about `max_chars`, still ending with the count of
        violations it leaves out."""
        return summary(self.violations, max_chars=max_chars, stopped=self.stopped)

    def details(self) -> list[Message]:
        reported = self.violations[:MAX_REPORTED_VIOLATIONS]
        left_out = len(self.violations) - len(reported) - self.stopped
        if left_out or self.stopped:
            reported.append(more_violations(left_out, self.stopped))
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=_clipped(v.field), description=_clipped(v.description)
                    )
                    for v in reported
                ]
            )
        ]


def gather(violations: list[FieldViolation], parse: Callable[..., Any], *args: Any) -> Any:
    """`parse(*args)`, or None after adding its INVALID_ARGUMENT violations to
    `violations`: for checking every field of a request before answering (callers
    raise_if_any before using the results)."""
    try:
        return parse(*args)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        return None


def raise_if_any(violations: Iterable[FieldViolation]) -> None:
    """Raise InvalidArgument listing all `violations`, if there are any."""
    found = list(violations)
    if found:
        raise InvalidArgument(found)


class ResourceError(FootfallError):
    """An error about a named resource of a type: NotFound, AlreadyExists."""

    verb = ""

    def __init__(self, resource_type: str, name: str, message: str | None = None) -> None:
        self.resource_type = resource_type
        self.name = name
        super().__init__(message or f"{resource_type} {name!r} {self.verb}")

    def details(self) -> list[Message]:
        return [error_details_pb2.ResourceInfo(resource_type=self.resource_type,
                                               resource_name=self.name)]

    def retyped(self, resource_type: str) -> None:
        """Name the resource's type `resource_type` instead (in the message too)."""
        if self.message.startswith(f"{self.resource_type} "):
            self.message = resource_type + self.message[len(self.resource_type):]
            self.args = (self.message,)
        self.resource_type = resource_type


class NotFound(ResourceError):
    """NOT_FOUND for a named resource, with a ResourceInfo detail."""

    code = grpc.StatusCode.NOT_FOUND
    verb = "not found"


class AlreadyExists(ResourceError):
    """ALREADY_EXISTS for a named resource, with a ResourceInfo detail."""

    code = grpc.StatusCode.ALREADY_EXISTS
    verb = "already exists"


class FailedPrecondition(FootfallError):
    """FAILED_PRECONDITION: the request is valid, but what is stored forbids it; a
    PreconditionFailure detail names the rule (`kind`) and what it is about."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, kind: str, subject: str, message: str) -> None:
        self.kind = kind
        self.subject = subject
        super().__init__(message)

    def details(self) -> list[Message]:
        return [error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=self.kind, subject=_clipped(self.subject),
                description=_clipped(self.message))])]


class Aborted(FootfallError):
    """ABORTED: the work met concurrent writes too often to go on; worth trying again
    once they are fewer."""

    code = grpc.StatusCode.ABORTED


class Unauthenticated(FootfallError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(FootfallError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(FootfallError):
    code = grpc.StatusCode.UNAVAILABLE


class CallerGone(FootfallError):
    """The caller stopped waiting: what is left of its call is not done."""


class Cancelled(CallerGone):
    """The caller cancelled (or its connection closed) before the work started."""

    code = grpc.StatusCode.CANCELLED


class DeadlineExceeded(CallerGone):
    """The call's deadline passed before the server was done with it."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class BodyTooSlow(FootfallError):
    """An HTTP body not in within --http-body-timeout (HTTP answers 408 and closes
    the connection)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ChosenStatus(FootfallError):
    """A status whose code is picked when it is raised, not by its kind: the one an
    x-footfall-fail header asks for, or the one a servicer set on its context (the
    generated base classes do, for methods nobody implements)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Internal(FootfallError):
    """A bug of ours: the caller learns only where to look (the server log)."""

    @classmethod
    def bug(cls, method: str, log: logging.Logger) -> Internal:
        """INTERNAL for the exception being handled, its traceback in `log`."""
        log.exception("%s failed", method)
        return cls(f"internal error in {method}; see the server log")


class ResourceExhausted(FootfallError):
    """RESOURCE_EXHAUSTED; with `retry_after` seconds, a RetryInfo detail too."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def details(self) -> list[Message]:
        if self.retry_after is None:
            return []
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(self.retry_after * 1e9))
        return [error_details_pb2.RetryInfo(retry_delay=delay)]


class RequestTooLarge(ResourceExhausted):
    """A request over --max-request-bytes (HTTP answers 413)."""


def to_rpc_status(error: FootfallError) -> status_pb2.Status:
    """The google.rpc.Status for `error`, details packed as Any."""
    packed = []
    for detail in error.details():
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(code=error.code.value[0], message=error.message, details=packed)
